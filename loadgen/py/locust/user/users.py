"""User and HttpUser."""
import logging
import sys
import traceback

from gevent import GreenletExit

import _aiload

from ..exception import LocustError, StopUser, StuckUserError
from .wait_time import constant
from .task import (LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING,
                   DefaultTaskSet, TaskSet, get_tasks_from_base_classes)

logger = logging.getLogger(__name__)


def _stuck_report(exc):
    """The warning printed when the watchdog had to interrupt a user."""
    where = "?"
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        fn = frame.f_code.co_filename
        if not fn.startswith("loadgen/py/locust/"):
            where = f"{frame.f_code.co_name} ({fn}:{lineno})"
    sys.stderr.write(f"aiload: warning: task {where} never yielded (a loop without a request, "
                     "sleep or gevent call): it held the only thread and was interrupted so "
                     "that the test could stop on time\n")


class UserMeta(type):
    def __new__(mcs, classname, bases, class_dict):
        class_dict["tasks"] = get_tasks_from_base_classes(bases, class_dict)
        # a user class is abstract only when it says so itself
        if not class_dict.get("abstract"):
            class_dict["abstract"] = False
        return type.__new__(mcs, classname, bases, class_dict)


class User(metaclass=UserMeta):
    """A simulated user: runs its tasks until the test stops."""

    host = None
    min_wait = None
    max_wait = None
    wait_time = constant(0)
    wait_function = None
    tasks = []
    weight = 1
    fixed_count = 0
    abstract = True

    _now_ns = staticmethod(_aiload.now_ns)

    def __init__(self, environment):
        super().__init__()
        self.environment = environment
        self._state = None
        self._greenlet = None
        self._group = None
        self._taskset_instance = None
        self._due_ns = 0

    def on_start(self):
        pass

    def on_stop(self):
        pass

    def run(self):
        self._state = LOCUST_STATE_RUNNING
        self._taskset_instance = DefaultTaskSet(self)
        try:
            try:
                self.on_start()
            except Exception as e:
                logger.error("%s\n%s", e, traceback.format_exc())
                self.environment.events.user_error.fire(user_instance=self, exception=e, tb=e.__traceback__)
                raise
            self._taskset_instance.run()
        except (GreenletExit, StopUser):
            self.on_stop()
        except StuckUserError as e:
            _stuck_report(e)

    def wait(self):
        self._taskset_instance.wait()

    def start(self, group):
        def run_user(user):
            user.run()

        self._greenlet = group.spawn(run_user, self)
        self._greenlet.user = self
        self._group = group
        return self._greenlet

    def stop(self, force=False):
        """Stops the user: at once when waiting (or force), else after its task."""
        if self._greenlet is None or self._greenlet.dead:
            return True
        if force or self._state == LOCUST_STATE_WAITING:
            self._group.killone(self._greenlet, block=False)
            return True
        if self._state == LOCUST_STATE_RUNNING:
            self._state = LOCUST_STATE_STOPPING
            return False
        return False

    @property
    def group(self):
        return self._group

    @property
    def greenlet(self):
        return self._greenlet

    def context(self):
        return {}

    @classmethod
    def fullname(cls):
        return ".".join(filter(lambda x: x != "<locals>", (cls.__module__ + "." + cls.__qualname__).split(".")))


class HttpUser(User):
    """A user with self.client, an HTTP session (requests-like API) whose
    requests aiload's C client makes."""

    abstract = True
    pool_manager = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.host is None:
            raise LocustError(
                "You must specify the base host. Either in the host attribute in the User class, "
                "or on the command line using the --host option.")
        from ..clients import HttpSession

        self.client = HttpSession(base_url=self.host, request_event=self.environment.events.request, user=self)
