"""--worker for a Python locustfile: the worker side of Locust 2.x's ZeroMQ +
msgpack protocol (DEALER socket, identity "<hostname>_<32 hex>") in gevent,
so a locustfile's users run under a Locust or aiload master. The messages are
Locust 2.12's (locust/runners.py WorkerRunner): client_ready with the version,
heartbeat every second, stats every 3 s, spawning / spawning_complete,
client_stopped, exception, quit; from the master ack, spawn, stop, quit,
reconnect and custom messages (runner.register_message). Each request's exact
timings come from the runtime's sample stream (_aiload.ship_take, the one
--processes uses) and are reported in Locust's StatsEntry form, response times
in its rounded buckets, plus the exact histogram an aiload master reads
("aiload_hist", "aiload_sum_us"). A malformed message is logged and dropped."""
import hashlib
import logging
import os
import socket
import struct
import sys
import time
import uuid

import gevent
import gevent.event
import msgpack
import zmq.green as zmq

import _aiload

from .runners import STATE_RUNNING, STATE_SPAWNING, STATE_STOPPED

logger = logging.getLogger("locust.runners")

VERSION = "2.12.1"  # the protocol aiload follows, as its C worker announces
HEARTBEAT_INTERVAL = 1.0
REPORT_INTERVAL = 3.0
CONNECT_TIMEOUT = 5.0
CONNECT_RETRIES = 60
MAX_MSG = 64 << 20


def _builtin_options():
    """aiload's own option names (a Locust worker's default_args_dict)."""
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = set(_aiload.cli_parse(["-f", "locustfile.py"])) | {"user_classes", "master", "worker", "processes",
                                                  "web_ui", "master_host", "master_port"}
    return _BUILTIN


_BUILTIN = None


class Message:
    """Locust's rpc Message: what a custom message handler gets as msg."""

    def __init__(self, mtype, data, node_id):
        self.type, self.data, self.node_id = mtype, data, node_id

    def serialize(self):
        return msgpack.dumps((self.type, self.data, self.node_id))

    @classmethod
    def unserialize(cls, raw):
        t = msgpack.loads(raw, raw=False, strict_map_key=False)
        if not isinstance(t, (list, tuple)) or len(t) != 3 or not isinstance(t[0], str):
            raise ValueError("not a (type, data, node_id) message")
        return cls(*t)


def round_ms(ms):
    """Locust's response-time bucket (StatsEntry._log_response_time)."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return int(round(ms, -1))
    if ms < 10000:
        return int(round(ms, -2))
    return int(round(ms, -3))


def slot_us(us):
    """The lowest value of us's slot in aiload's histogram (lib/hist.h: 3
    significant digits, 2048 sub-buckets): exact below 2048 us, then 11
    significant bits."""
    shift = us.bit_length() - 11
    return us if shift <= 0 else (us >> shift) << shift


class _Row:
    __slots__ = ("method", "name", "n", "fail", "total", "min", "max", "bytes", "rt", "rps", "fps",
                 "us", "sum_us", "min_us", "max_us")

    def __init__(self, method, name):
        self.method, self.name = method, name
        self.n = self.fail = self.bytes = 0
        self.total = 0.0
        self.min = self.max = None
        self.rt, self.rps, self.fps = {}, {}, {}
        # aiload's own extension (as the ini worker's, loadgen/dist/wire.h): the
        # histogram at full precision, so an aiload master keeps exact percentiles
        self.us, self.sum_us, self.min_us, self.max_us = {}, 0, None, None

    def add(self, us, nbytes, failed, sec):
        ms = us / 1000.0
        self.n += 1
        self.total += ms
        self.min = ms if self.min is None or ms < self.min else self.min
        self.max = ms if self.max is None or ms > self.max else self.max
        self.bytes += nbytes
        k = round_ms(ms)
        self.rt[k] = self.rt.get(k, 0) + 1
        us = max(us, 0)
        k = slot_us(us)
        self.us[k] = self.us.get(k, 0) + 1
        self.sum_us += us
        self.min_us = us if self.min_us is None or us < self.min_us else self.min_us
        self.max_us = us if self.max_us is None or us > self.max_us else self.max_us
        self.rps[sec] = self.rps.get(sec, 0) + 1
        if failed:
            self.fail += 1
            self.fps[sec] = self.fps.get(sec, 0) + 1

    def merge(self, o):
        self.n += o.n
        self.fail += o.fail
        self.total += o.total
        self.bytes += o.bytes
        if o.min is not None:
            self.min = o.min if self.min is None or o.min < self.min else self.min
            self.max = o.max if self.max is None or o.max > self.max else self.max
        for d, od in ((self.rt, o.rt), (self.rps, o.rps), (self.fps, o.fps), (self.us, o.us)):
            for k, v in od.items():
                d[k] = d.get(k, 0) + v
        self.sum_us += o.sum_us
        if o.min_us is not None:
            self.min_us = o.min_us if self.min_us is None or o.min_us < self.min_us else self.min_us
            self.max_us = o.max_us if self.max_us is None or o.max_us > self.max_us else self.max_us

    def exact(self):
        """[[us, count], ...] by slot, ascending; the first pair's value is
        the exact min and the last's the exact max (each lies in its slot;
        a lone slot holding both becomes two pairs), as the ini worker sends."""
        pairs = [[k, c] for k, c in sorted(self.us.items())]
        if not pairs:
            return pairs
        if len(pairs) == 1 and self.n >= 2 and self.min_us != self.max_us:
            return [[self.min_us, pairs[0][1] - 1], [self.max_us, 1]]
        pairs[0][0] = self.min_us
        pairs[-1][0] = self.max_us
        return pairs

    def serialize(self, start_time):
        return {"name": self.name, "method": self.method, "last_request_timestamp": time.time(),
                "start_time": start_time, "num_requests": self.n, "num_none_requests": 0,
                "num_failures": self.fail, "total_response_time": self.total,
                "max_response_time": self.max or 0, "min_response_time": self.min,
                "total_content_length": self.bytes, "response_times": self.rt,
                "num_reqs_per_sec": self.rps, "num_fail_per_sec": self.fps,
                "aiload_hist": self.exact(), "aiload_sum_us": self.sum_us}


class SampleReader:
    """The runtime's sample stream (loadgen/py/pyship.h: 'E' names a row,
    'R' one request, 'J' a control message) into per-row deltas."""

    def __init__(self):
        self.names = {}
        self.rows = {}
        self.errors = {}
        self.rest = b""

    def feed(self, data, sec):
        buf = self.rest + data
        i, n = 0, len(buf)
        while i < n:
            kind = buf[i:i + 1]
            if kind == b"E":
                if i + 7 > n:
                    break
                row, ml = struct.unpack_from("=IH", buf, i + 1)
                j = i + 7 + ml
                if j + 2 > n:
                    break
                (nl,) = struct.unpack_from("=H", buf, j)
                if j + 2 + nl > n:
                    break
                self.names[row] = (buf[i + 7:j].decode("utf-8", "replace"),
                                   buf[j + 2:j + 2 + nl].decode("utf-8", "replace"))
                i = j + 2 + nl
            elif kind == b"R":
                if i + 31 > n:
                    break
                row, lat_us, _svc, nbytes, el = struct.unpack_from("=IqqQH", buf, i + 1)
                if i + 31 + el > n:
                    break
                err = buf[i + 31:i + 31 + el].decode("utf-8", "replace") if el else None
                i += 31 + el
                method, name = self.names.get(row, ("", f"row {row}"))
                r = self.rows.get((method, name))
                if r is None:
                    r = self.rows[(method, name)] = _Row(method, name)
                r.add(lat_us, nbytes, err is not None, sec)
                if err is not None:
                    self.errors[(method, name, err)] = self.errors.get((method, name, err), 0) + 1
            elif kind == b"J":
                if i + 5 > n:
                    break
                (jl,) = struct.unpack_from("=I", buf, i + 1)
                if i + 5 + jl > n:
                    break
                i += 5 + jl
            else:  # not this format: drop it all rather than misread the rest
                logger.error("aiload worker: unreadable sample stream; %d bytes dropped", n - i)
                i = n
        self.rest = buf[i:]

    def take(self):
        rows, errors = self.rows, self.errors
        self.rows, self.errors = {}, {}
        return rows, errors


class WorkerLink:
    def __init__(self, runner, master_host, master_port):
        self.runner = runner
        self.env = runner.environment
        self.client_id = f"{socket.gethostname()}_{uuid.uuid4().hex}"
        self.endpoint = f"tcp://{master_host or '127.0.0.1'}:{master_port or 5557}"
        self.ctx = zmq.Context()
        self.sock = None
        self.worker_state = "ready"
        self.last_spawn_ts = 0.0
        self.acked = gevent.event.Event()
        self.quit = False
        self.samples = SampleReader()
        self.start_time = time.time()
        self.cpu = (time.process_time(), time.monotonic())
        self.cpu_pct = 0.0
        self.host_given = bool(self.env.host)
        # classes that take the master's host (-H on the worker wins, a class's own host stays)
        self.hostless = [c for c in self.env.user_classes if not getattr(c, "host", None)]

    # ---- sending ----

    def send(self, mtype, data):
        try:
            self.sock.send(Message(mtype, data, self.client_id).serialize(), zmq.NOBLOCK)
        except zmq.ZMQError as e:
            sys.stderr.write(f"aiload worker: cannot send {mtype} to the master: {e}\n")

    def send_exception(self, msg, tb):
        self.send("exception", {"msg": msg, "traceback": tb})

    def _collect(self):
        data = _aiload.ship_take()
        if data:
            self.samples.feed(data, int(time.time()))

    def send_stats(self):
        self._collect()
        rows, errors = self.samples.take()
        total = _Row("", "Aggregated")
        for r in rows.values():
            total.merge(r)
        errs = {}
        for (method, name, err), n in errors.items():
            key = hashlib.sha256(f"{method}.{name}.{err!r}".encode()).hexdigest()
            errs[key] = {"method": method, "name": name, "error": err, "occurrences": n}
        self.send("stats", {"stats": [r.serialize(self.start_time) for r in rows.values()],
                            "stats_total": total.serialize(self.start_time), "errors": errs,
                            "user_count": self.runner.user_count,
                            "user_classes_count": self.runner.user_classes_count})

    def heartbeat(self):
        cpu, now = time.process_time(), time.monotonic()
        if now > self.cpu[1]:
            self.cpu_pct = 100.0 * (cpu - self.cpu[0]) / (now - self.cpu[1])
        self.cpu = (cpu, now)
        try:
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")
        except (OSError, ValueError, IndexError):
            rss = 0
        self.send("heartbeat", {"state": self.worker_state, "current_cpu_usage": self.cpu_pct,
                                "current_memory_usage": rss})

    # ---- receiving ----

    def on_spawn(self, job):
        self.send("spawning", None)
        if not isinstance(job, dict) or not isinstance(job.get("timestamp"), (int, float)):
            sys.stderr.write("aiload worker: spawn message without a timestamp; dropped\n")
            return
        if job["timestamp"] <= self.last_spawn_ts:
            sys.stderr.write("aiload worker: discarding a spawn message older than the last one\n")
            return
        ucc = job.get("user_classes_count")
        if not isinstance(ucc, dict):
            sys.stderr.write("aiload worker: spawn message without user_classes_count; dropped\n")
            return
        self.last_spawn_ts = job["timestamp"]
        by_name = {c.__name__: c for c in self.env.user_classes}
        targets = {c: 0 for c in self.env.user_classes}
        for name, n in ucc.items():
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 1_000_000:
                self.send_exception("spawn message with a bad user count; dropped", "")
                return
            if name not in by_name:
                if n:
                    self.send_exception(f"the master asked for {n} users of class '{name}', which "
                                        f"{self.env.locustfile} does not define; they are not "
                                        "started", "")
                continue
            targets[by_name[name]] = n
        if isinstance(job.get("host"), str) and job["host"] and not self.host_given:
            self.env.host = job["host"]
            for c in self.hostless:
                c.host = job["host"]
        st = job.get("stop_timeout")
        if isinstance(st, (int, float)) and not isinstance(st, bool) and st > 0:
            self.env.stop_timeout = float(st)
        po = job.get("parsed_options")
        if isinstance(po, dict) and self.env.parsed_options is not None:
            ns = vars(self.env.parsed_options)
            for k, v in po.items():  # as Locust: the custom arguments, plus these three
                if isinstance(k, str) and (k not in _builtin_options() or
                                           k in ("expect_workers", "tags", "exclude_tags")):
                    ns[k] = v
        r = self.runner
        if r.state not in (STATE_SPAWNING, STATE_RUNNING):
            self.start_time = time.time()
            self._collect()
            self.samples.take()  # what the last test left
        total = sum(targets.values())
        r._targets = targets
        self.worker_state = "spawning"
        r.start(total, 1e9, wait=True)
        self.worker_state = "running"
        sys.stderr.write(f"aiload worker: running {total} users\n")
        self.send("spawning_complete", {"user_classes_count": r.user_classes_count,
                                        "user_count": r.user_count})

    def on_stop(self):
        self.runner.stop()
        self.worker_state = "stopped"
        self.send_stats()
        self.send("client_stopped", None)
        self.send("client_ready", VERSION)
        self.worker_state = "ready"

    def handle(self, raw):
        try:
            if len(raw) > MAX_MSG:
                raise ValueError("message over 64 MiB")
            m = Message.unserialize(raw)
        except Exception as e:  # noqa: BLE001 (anything a peer sends: logged and dropped)
            sys.stderr.write(f"aiload worker: dropped a message from the master: {e}\n")
            return
        if m.type == "ack":
            if not self.acked.is_set():
                idx = m.data.get("index") if isinstance(m.data, dict) else None
                sys.stderr.write(f"aiload worker: connected to the master as worker {idx} "
                                 f"({self.client_id})\n")
            self.acked.set()
        elif m.type == "spawn":
            gevent.spawn(self.on_spawn, m.data)
        elif m.type == "stop":
            gevent.spawn(self.on_stop)
        elif m.type == "quit":
            sys.stderr.write("aiload worker: the master said quit; shutting down\n")
            self.quit = True
        elif m.type == "reconnect":
            sys.stderr.write("aiload worker: the master asked to reconnect; resetting the "
                             "connection\n")
            self.sock.close(linger=0)
            self.open()
            self.send("client_ready", VERSION)
        elif m.type in self.runner.custom_messages:
            try:
                self.runner.custom_messages[m.type](environment=self.env, msg=m)
            except Exception:  # noqa: BLE001 (the handler's error is the locustfile's)
                import traceback

                sys.stderr.write(f"aiload worker: handler of '{m.type}' raised:\n"
                                 f"{traceback.format_exc()}")
        else:
            sys.stderr.write(f"aiload worker: ignoring message '{m.type}' from the master (no "
                             "handler registered)\n")

    def open(self):
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, self.client_id.encode())
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_MSG)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.sock.connect(self.endpoint)

    def drain(self):
        """Everything queued, without waiting (polled from the main loop)."""
        while not self.quit:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError as e:
                sys.stderr.write(f"aiload worker: receive failed: {e}\n")
                return
            if len(frames) != 1:
                sys.stderr.write("aiload worker: dropped a multi-part message from the master\n")
                continue
            self.handle(frames[0])

    def run(self):
        _aiload.set_shipping(True)
        self.open()
        self.send("client_ready", VERSION)
        tries, ready_at = 1, time.monotonic()
        while not self.acked.is_set():
            if self.runner._quit_flag:
                self.sock.close(linger=0)
                return 0
            self.drain()
            _aiload.beat()
            gevent.sleep(0.05)
            if self.acked.is_set() or time.monotonic() - ready_at < CONNECT_TIMEOUT:
                continue
            ready_at = time.monotonic()
            if tries >= CONNECT_RETRIES:
                sys.stderr.write(f"aiload worker: no answer from the master at {self.endpoint} "
                                 f"after {tries} attempts; is it a Locust 2.x or aiload master?\n")
                self.sock.close(linger=0)
                return 1
            if tries >= 3:
                sys.stderr.write(f"aiload worker: failed to connect to the master at "
                                 f"{self.endpoint}, retry {tries}/{CONNECT_RETRIES}\n")
            self.send("client_ready", VERSION)
            tries += 1
        next_hb = next_report = time.monotonic()
        while not self.quit and not self.runner._quit_flag:
            self.drain()
            now = time.monotonic()
            _aiload.beat()
            if now >= next_hb:
                self.heartbeat()
                next_hb = now + HEARTBEAT_INTERVAL
            if now >= next_report + REPORT_INTERVAL:
                self.send_stats()
                next_report = now
            else:
                self._collect()  # per-second counts for the master's current RPS
            gevent.sleep(0.05)
        self.runner.stop()
        self.send_stats()
        self.send("quit", None)
        self.sock.close(linger=2000)
        self.ctx.term()
        return 0
