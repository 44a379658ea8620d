"""LoadTestShape: tick() drives the user count and spawn rate over time."""
import time


class LoadTestShapeMeta(type):
    def __new__(mcs, classname, bases, class_dict):
        class_dict["abstract"] = class_dict.get("abstract", False)
        return super().__new__(mcs, classname, bases, class_dict)


class LoadTestShape(metaclass=LoadTestShapeMeta):
    """Subclass it and define tick(): return (user_count, spawn_rate) or
    (user_count, spawn_rate, [user classes]) to apply, or None to stop."""

    runner = None
    abstract = True
    use_common_options = False

    def __init__(self):
        self.start_time = time.perf_counter()

    def reset_time(self):
        self.start_time = time.perf_counter()

    def get_run_time(self):
        return time.perf_counter() - self.start_time

    def get_current_user_count(self):
        return self.runner.user_count

    def tick(self):
        raise NotImplementedError()
