"""Event hooks, with Locust's names, arguments and firing rules."""
import logging
import traceback

from .exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopUser


class EventHook:
    """Listeners are called in the order added (reverse=True: the other way);
    an exception in a listener is logged, except the ones that steer users."""

    def __init__(self):
        self._handlers = []

    def add_listener(self, handler):
        self._handlers.append(handler)
        return handler

    def remove_listener(self, handler):
        self._handlers.remove(handler)

    def fire(self, *, reverse=False, **kwargs):
        for handler in (reversed(self._handlers) if reverse else list(self._handlers)):
            try:
                handler(**kwargs)
            except (StopUser, RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet):
                raise
            except Exception:
                logging.error("Uncaught exception in event handler: \n%s", traceback.format_exc())


class DeprecatedEventHook(EventHook):
    def __init__(self, message):
        self.message = message
        super().__init__()

    def add_listener(self, handler):
        logging.warning(self.message)
        return super().add_listener(handler)


class RequestHook(EventHook):
    """events.request: aiload records its own HTTP requests in C with exact
    timings; this hook is fired for them only when a listener was added. A
    request fired by user code (a custom client) is recorded by the
    statistics listener that the runner adds first."""

    def __init__(self):
        super().__init__()
        self._user_handlers = 0

    def add_listener(self, handler):
        if not getattr(handler, "_aiload_stats", False):
            self._user_handlers += 1
        return super().add_listener(handler)

    def remove_listener(self, handler):
        super().remove_listener(handler)
        if not getattr(handler, "_aiload_stats", False):
            self._user_handlers -= 1

    def fire_listeners(self, **kwargs):
        """Fires every listener but the statistics one (the request is recorded),
        then the deprecated request_success / request_failure hooks."""
        self._fire_deprecated(kwargs)
        for handler in list(self._handlers):
            if getattr(handler, "_aiload_stats", False):
                continue
            try:
                handler(**kwargs)
            except (StopUser, RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet):
                raise
            except Exception:
                logging.error("Uncaught exception in event handler: \n%s", traceback.format_exc())


    _deprecated = None

    def _fire_deprecated(self, kw):
        if not self._deprecated:
            return
        ok, bad = self._deprecated
        base = {k: kw.get(k) for k in ("request_type", "name", "response_time", "response_length")}
        if kw.get("exception") is None:
            if ok._handlers:
                ok.fire(**base)
        elif bad._handlers:
            bad.fire(exception=kw["exception"], **base)

    def fire(self, *, reverse=False, **kwargs):
        self._fire_deprecated(kwargs)
        super().fire(reverse=reverse, **kwargs)


class _DeprecatedRequestHook(DeprecatedEventHook):
    """request_success / request_failure: listeners still work (fired from
    every request), with Locust's deprecation warning."""

    def __init__(self, message, request_hook):
        super().__init__(message)
        self._request = request_hook

    def add_listener(self, handler):
        self._request._user_handlers += 1
        return super().add_listener(handler)


class Events:
    """The hooks of Locust 2.12. Every attribute is an EventHook."""

    def __init__(self):
        self.request = RequestHook()
        self.request_success = _DeprecatedRequestHook(
            "request_success event deprecated. Use the request event.", self.request)
        self.request_failure = _DeprecatedRequestHook(
            "request_failure event deprecated. Use the request event.", self.request)
        self.request._deprecated = (self.request_success, self.request_failure)
        for name in ("user_error", "report_to_master", "worker_report", "spawning_complete",
                     "quitting", "quit", "init", "init_command_line_parser", "test_start",
                     "test_stopping", "test_stop", "reset_stats", "cpu_warning", "usage_monitor"):
            setattr(self, name, EventHook())

    def __getattr__(self, name):
        # an unknown event: fail at the listener's line with a clear message
        raise AttributeError(
            f"locust.events has no event '{name}' in aiload (supported: "
            + ", ".join(sorted(k for k in self.__dict__)) + ")")
