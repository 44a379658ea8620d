"""Tasks and TaskSets: @task, @tag, TaskSet, the user's DefaultTaskSet.

The control flow follows Locust 2.12: a TaskSet picks a task (weighted by
repetition in its task list), runs it, waits; InterruptTaskSet hands control
back to the parent; an exception in a task is reported (user_error, the
Exceptions table) and the user goes on after its wait."""
import logging
import random
import sys
import traceback

import gevent
from gevent import GreenletExit

import _aiload

from ..exception import (InterruptTaskSet, LocustError, MissingWaitTimeError, RescheduleTask,
                         RescheduleTaskImmediately, StopUser, StuckUserError)

logger = logging.getLogger(__name__)

_beat = _aiload.beat
LOCUST_STATE_RUNNING, LOCUST_STATE_WAITING, LOCUST_STATE_STOPPING = ["running", "waiting", "stopping"]


def task(weight=1):
    """@task or @task(weight) on a method or a nested TaskSet class."""

    def decorator_func(func):
        if func.__name__ in ("on_stop", "on_start"):
            logging.warning("You have tagged your on_stop/start function with @task. This will "
                            "make the method get called both as a task AND on stop/start.")
        if func.__name__ == "run":
            raise Exception("User.run() is a method used internally by Locust, and you must not "
                            "override it or register it as a task")
        func.locust_task_weight = weight
        return func

    if callable(weight):
        func, weight = weight, 1
        return decorator_func(func)
    return decorator_func


def tag(*tags):
    """@tag("a", "b"): the task (or every task of a TaskSet) gets these tags."""
    if len(tags) == 0 or callable(tags[0]):
        raise ValueError("No tag name was supplied")

    def decorator_func(decorated):
        if hasattr(decorated, "tasks"):
            decorated.tasks = list(map(tag(*tags), decorated.tasks))
        else:
            if "locust_tag_set" not in decorated.__dict__:
                decorated.locust_tag_set = set()
            decorated.locust_tag_set |= set(tags)
        return decorated

    return decorator_func


def get_tasks_from_base_classes(bases, class_dict):
    """The task list of a class: its bases' tasks, then `tasks` (a list, or a
    dict of task: weight), then @task methods, each repeated weight times."""
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
                for _ in range(count):
                    new_tasks.append(t)
            else:
                new_tasks.append(t)
    for item in class_dict.values():
        if "locust_task_weight" in dir(item):
            for _ in range(item.locust_task_weight):
                new_tasks.append(item)
    return new_tasks


def filter_tasks_by_tags(task_holder, tags=None, exclude_tags=None, checked=None):
    """Keeps the tasks that have one of tags (when given) and none of
    exclude_tags; TaskSets are filtered recursively (Locust's rules)."""
    new_tasks = []
    if checked is None:
        checked = {}
    for t in task_holder.tasks:
        if t in checked:
            if checked[t]:
                new_tasks.append(t)
            continue
        passing = True
        if hasattr(t, "tasks"):
            filter_tasks_by_tags(t, tags, exclude_tags, checked)
            passing = len(t.tasks) > 0
        else:
            if tags is not None:
                passing &= "locust_tag_set" in dir(t) and len(t.locust_tag_set & tags) > 0
            if exclude_tags is not None:
                passing &= "locust_tag_set" not in dir(t) or len(t.locust_tag_set & exclude_tags) == 0
        if passing:
            new_tasks.append(t)
        checked[t] = passing
    task_holder.tasks = new_tasks


class TaskSetMeta(type):
    def __new__(mcs, classname, bases, class_dict):
        class_dict["tasks"] = get_tasks_from_base_classes(bases, class_dict)
        return type.__new__(mcs, classname, bases, class_dict)


def _where(tb):
    """'file:line in func' of the innermost frame of tb that is not aiload's."""
    last = None
    for frame, lineno in traceback.walk_tb(tb):
        fn = frame.f_code.co_filename
        if not fn.startswith("loadgen/py/locust/"):
            last = f"{fn}:{lineno} in {frame.f_code.co_name}"
    return last or "?"


class TaskSet(metaclass=TaskSetMeta):
    """A group of tasks a user runs; see Locust's TaskSet."""

    tasks = []
    min_wait = None
    max_wait = None
    wait_function = None

    def __init__(self, parent):
        self._task_queue = []
        self._time_start = gevent.get_hub().loop.now()
        from .users import User

        if isinstance(parent, TaskSet):
            self._user = parent.user
        elif isinstance(parent, User):
            self._user = parent
        else:
            raise LocustError("TaskSet should be called with User instance or TaskSet instance as first argument")
        self._parent = parent
        if not self.min_wait:
            self.min_wait = self.user.min_wait if hasattr(self.user, "min_wait") else None
        if not self.max_wait:
            self.max_wait = self.user.max_wait if hasattr(self.user, "max_wait") else None
        if not self.wait_function:
            self.wait_function = getattr(self.user, "wait_function", None)

    @property
    def user(self):
        return self._user

    @property
    def parent(self):
        return self._parent

    @property
    def client(self):
        return self._user.client

    def on_start(self):
        pass

    def on_stop(self):
        pass

    def run(self):
        try:
            self.on_start()
        except InterruptTaskSet as e:
            if e.reschedule:
                raise RescheduleTaskImmediately(e.reschedule).with_traceback(e.__traceback__)
            raise RescheduleTask(e.reschedule).with_traceback(e.__traceback__)
        user = self._user
        while True:
            try:
                if not self._task_queue:
                    self.schedule_task(self.get_next_task())
                try:
                    self._check_stop_condition()
                    self.execute_next_task()
                except RescheduleTaskImmediately:
                    pass
                except RescheduleTask:
                    self.wait()
                else:
                    self.wait()
            except InterruptTaskSet as e:
                self.on_stop()
                if e.reschedule:
                    raise RescheduleTaskImmediately(e.reschedule) from e
                raise RescheduleTask(e.reschedule) from e
            except (StopUser, GreenletExit, StuckUserError):
                try:
                    self.on_stop()
                finally:
                    raise
            except Exception as e:
                user.environment.events.user_error.fire(user_instance=self, exception=e, tb=e.__traceback__)
                if user.environment.catch_exceptions:
                    logger.error("%s\n%s", e, traceback.format_exc())
                    self.wait()
                else:
                    raise

    def execute_next_task(self):
        _beat()  # the stall watchdog learns that a new task starts
        self.execute_task(self._task_queue.pop(0))

    def execute_task(self, task):
        if hasattr(task, "tasks") and issubclass(task, TaskSet):
            task(self).run()
        else:
            task(self)

    def schedule_task(self, task_callable, first=False):
        if first:
            self._task_queue.insert(0, task_callable)
        else:
            self._task_queue.append(task_callable)

    def get_next_task(self):
        if not self.tasks:
            if getattr(self, "task", None):
                extra_message = ", but you have set a 'task' attribute - maybe you meant to set 'tasks'?"
            else:
                extra_message = "."
            raise Exception(
                f"No tasks defined on {self.__class__.__name__}{extra_message} use the @task "
                "decorator or set the 'tasks' attribute of the TaskSet")
        return random.choice(self.tasks)

    def wait_time(self):
        if self.user.wait_time:
            return self.user.wait_time()
        if self.min_wait is not None and self.max_wait is not None:
            return random.randint(self.min_wait, self.max_wait) / 1000.0
        raise MissingWaitTimeError(
            "You must define a wait_time method on either the %s or %s class"
            % (type(self.user).__name__, type(self).__name__))

    def wait(self):
        self._check_stop_condition()
        self.user._state = LOCUST_STATE_WAITING
        self._sleep(self.wait_time())
        self._check_stop_condition()
        self.user._state = LOCUST_STATE_RUNNING

    def _sleep(self, seconds):
        user = self.user
        user._due_ns = user._now_ns() + int(seconds * 1e9)
        gevent.sleep(seconds)

    def _check_stop_condition(self):
        if self.user._state == LOCUST_STATE_STOPPING:
            raise StopUser()

    def interrupt(self, reschedule=True):
        """Ends this TaskSet: control goes back to the parent."""
        raise InterruptTaskSet(reschedule)


class DefaultTaskSet(TaskSet):
    """The TaskSet a user runs its own tasks in."""

    def get_next_task(self):
        if not self.user.tasks:
            raise Exception(
                f"No tasks defined on {self.user.__class__.__name__}. use the @task decorator "
                "or set the 'tasks' attribute of the User (or mark it with abstract = True if "
                "you only intend to subclass it)")
        return random.choice(self.user.tasks)

    def execute_task(self, task):
        if hasattr(task, "tasks") and issubclass(task, TaskSet):
            task(self.user).run()
        else:
            task(self.user)


