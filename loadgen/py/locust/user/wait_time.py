"""Wait-time functions: each returns a function of the user (or TaskSet)."""
import random
import time


def between(min_wait, max_wait):
    """A uniformly random wait in [min_wait, max_wait] seconds."""
    return lambda instance: min_wait + random.random() * (max_wait - min_wait)


def constant(wait_time):
    return lambda instance: wait_time


def constant_pacing(wait_time):
    """Tasks start every wait_time seconds (the wait makes up the rest)."""

    def wait_time_func(self):
        if not hasattr(self, "_cp_last_wait_time"):
            self._cp_last_wait_time = 0
        run_time = time.monotonic() - self._cp_last_run - self._cp_last_wait_time \
            if hasattr(self, "_cp_last_run") else 0
        self._cp_last_wait_time = max(0, wait_time - run_time)
        self._cp_last_run = time.monotonic()
        return self._cp_last_wait_time

    return wait_time_func


def constant_throughput(task_runs_per_second):
    return constant_pacing(1 / task_runs_per_second)
