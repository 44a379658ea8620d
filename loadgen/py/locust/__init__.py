"""aiload's `locust` package: Locust 2.12's API for locustfiles, run by
aiload (users on gevent, HTTP by aiload's C client, exact statistics in C).
See docs/aiload.md, section "Python locustfiles"."""
from gevent import monkey

monkey.patch_all()

from .event import Events  # noqa: E402

events = Events()

from . import user  # noqa: E402,F401
from .contrib.fasthttp import FastHttpUser  # noqa: E402
from .debug import run_single_user  # noqa: E402,F401
from .shape import LoadTestShape  # noqa: E402
from .user import wait_time  # noqa: E402,F401
from .user.sequential_taskset import SequentialTaskSet  # noqa: E402
from .user.task import TaskSet, tag, task  # noqa: E402
from .user.users import HttpUser, User  # noqa: E402
from .user.wait_time import between, constant, constant_pacing, constant_throughput  # noqa: E402

__version__ = "2.12.1+aiload"
version = __version__

__all__ = (
    "SequentialTaskSet",
    "wait_time",
    "task",
    "tag",
    "TaskSet",
    "HttpUser",
    "FastHttpUser",
    "User",
    "between",
    "constant",
    "constant_pacing",
    "constant_throughput",
    "events",
    "LoadTestShape",
)
