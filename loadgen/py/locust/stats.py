"""The statistics, as environment.stats shows them. The numbers live in C
(_aiload: exact histograms per (method, name)); this module records into
them and reads them back in Locust's shapes (stats.total, stats.get(),
stats.entries, stats.errors)."""
import _aiload

PERCENTILES_TO_REPORT = list(_aiload.PERCENTILES)  # the C table (loadgen/runner.h)

_entries = {}
_entry = _aiload.entry
_record = _aiload.record


def entry_of(method, name):
    key = (method, name)
    e = _entries.get(key)
    if e is None:
        e = _entries[key] = _entry(method, str(name))
    return e


def parse_error(error):
    """Locust's failure text: repr() of the exception, 'object at 0x....'."""
    s = error if isinstance(error, str) else repr(error)
    i = s.find("object at 0x")
    if i < 0:
        return s
    start = i + len("object at 0x") - 2
    end = s.find(">", start)
    return s if end < 0 else s.replace(s[start:end], "0x....")


def record(method, name, lat_us, svc_us, length, error):
    """error: None, or an exception / text (then the request failed)."""
    _record(entry_of(method, name), lat_us, svc_us, length,
            None if error is None else parse_error(error))


def on_request(request_type, name, response_time, response_length, exception=None, **kwargs):
    """The listener that records requests fired by user code (custom clients)."""
    us = int(float(response_time or 0) * 1000)
    record(request_type, name, us, us, int(response_length or 0), exception)


on_request._aiload_stats = True


class StatsEntry:
    """A read-only view of one row (or of the total) at the time it was taken."""

    def __init__(self, row):
        (self.method, self.name, self.num_requests, self.num_failures, self.avg_response_time,
         self.min_response_time, self.max_response_time, self.median_response_time,
         self.avg_content_length, self.total_rps, self.current_rps, self._p95) = row
        self.fail_ratio = self.num_failures / self.num_requests if self.num_requests else 0.0
        self.total_fail_per_sec = self.num_failures / (self.num_requests / self.total_rps) \
            if self.num_requests and self.total_rps else 0.0

    def get_response_time_percentile(self, percent):
        if abs(percent - 0.95) < 1e-9:
            return self._p95
        raise NotImplementedError("aiload: only the 95th percentile is readable from Python; "
                                  "the reports have them all")

    def __repr__(self):
        return f"<StatsEntry {self.method} {self.name} requests={self.num_requests} failures={self.num_failures}>"


class StatsError:
    def __init__(self, method, name, error, occurrences):
        self.method, self.name, self.error, self.occurrences = method, name, error, occurrences

    def to_name(self):
        return f"{self.method} {self.name}: {self.error}"


class RequestStats:
    """environment.stats: every read takes a fresh snapshot from C."""

    def __init__(self, use_response_times_cache=True):
        self.use_response_times_cache = use_response_times_cache

    @property
    def total(self):
        return StatsEntry(_aiload.rows()[0])

    @property
    def entries(self):
        return {(r[1], r[0]): StatsEntry(r) for r in _aiload.rows()[1]}

    @property
    def errors(self):
        return {(m, n, e): StatsError(m, n, e, c) for m, n, e, c in _aiload.rows()[2]}

    @property
    def num_requests(self):
        return self.total.num_requests

    @property
    def num_failures(self):
        return self.total.num_failures

    def get(self, name, method):
        for r in _aiload.rows()[1]:
            if r[1] == name and r[0] == method:
                return StatsEntry(r)
        return StatsEntry((method, name, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))

    def log_request(self, method, name, response_time, content_length):
        record(method, name, int(response_time * 1000), int(response_time * 1000), content_length, None)

    def log_error(self, method, name, error):
        raise NotImplementedError("aiload records a failure with its request: fire events.request "
                                  "with exception= instead")

    def reset_all(self):
        _aiload.reset()
