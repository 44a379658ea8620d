"""Locust's exceptions (same names and meanings), plus aiload's StuckUserError."""


class LocustError(Exception):
    pass


class ResponseError(Exception):
    pass


class CatchResponseError(Exception):
    pass


class MissingWaitTimeError(LocustError):
    pass


class InterruptTaskSet(Exception):
    """Raised by TaskSet.interrupt(): control goes back to the parent TaskSet
    (or the user); reschedule=True picks the parent's next task at once."""

    def __init__(self, reschedule=True):
        super().__init__()
        self.reschedule = reschedule


class StopUser(Exception):
    pass


class RescheduleTask(Exception):
    pass


class RescheduleTaskImmediately(Exception):
    pass


class RunnerAlreadyExistsError(Exception):
    pass


class StuckUserError(BaseException):
    """aiload: raised inside a user's code that held the only thread past the
    end of the run without yielding (a busy loop); the user then ends. A
    BaseException so that a bare `except Exception` in the loop cannot keep it
    alive."""
