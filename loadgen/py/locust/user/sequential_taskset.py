"""SequentialTaskSet: the tasks run in the order declared, then again."""
from .task import TaskSet, TaskSetMeta


class SequentialTaskSetMeta(TaskSetMeta):
    def __new__(mcs, classname, bases, class_dict):
        new_tasks = []
        for base in bases:
            if hasattr(base, "tasks") and base.tasks:
                new_tasks += base.tasks
        if "tasks" in class_dict and class_dict["tasks"] is not None:
            tasks = class_dict["tasks"]
            if isinstance(tasks, dict):
                tasks = tasks.items()
            for t in tasks:
                if isinstance(t, tuple):
                    t, count = t
                    new_tasks.extend([t] * count)
                else:
                    new_tasks.append(t)
        for item in class_dict.values():
            if hasattr(item, "locust_task_weight"):
                new_tasks.extend([item] * item.locust_task_weight)
        class_dict["tasks"] = new_tasks
        return type.__new__(mcs, classname, bases, class_dict)


class SequentialTaskSet(TaskSet, metaclass=SequentialTaskSetMeta):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._task_index = 0

    def get_next_task(self):
        if not self.tasks:
            raise Exception(f"No tasks defined on {self.__class__.__name__}. use the @task "
                            "decorator or set the 'tasks' attribute of the SequentialTaskSet")
        task = self.tasks[self._task_index % len(self.tasks)]
        self._task_index += 1
        return task
