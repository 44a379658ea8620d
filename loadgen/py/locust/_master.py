"""--master for a Python locustfile: the master side of Locust 2.x's ZeroMQ +
msgpack protocol (ROUTER socket) in gevent, so that a locustfile's init
handlers, custom messages and LoadTestShape run where Locust runs them.
Workers are real Locust 2.x processes or aiload ones (ini scenario or Python
locustfile). The rules are Locust 2.12's (locust/runners.py MasterRunner) and
those of aiload's C master (loadgen/dist/master.c): an ack with an index per
client_ready, heartbeats (missing after 3 s without one, dropped after 60 s
more), users re-dispatched when a worker joins, quits or goes missing (so
--enable-rebalancing is always on), "stop" when the test stops, "quit" at the
end, and the workers' last reports awaited.

Only the control traffic is Python: messages arrive a few per worker and
second. The statistics of a report are merged in C (_aiload.merge_report:
per row and histogram bucket, never per request), into the same table the
reports, CSV files and thresholds read."""
import sys
import time

import zmq.green as zmq

import _aiload

from ._worker import MAX_MSG, VERSION, Message
from .runners import STATE_INIT, STATE_MISSING, STATE_RUNNING, STATE_SPAWNING

HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_LIVENESS = 3
HEARTBEAT_DEAD_INTERNAL = -60
DEFAULT_PORT = 5557


def _say(text):
    sys.stderr.write(f"aiload master: {text}\n")
    sys.stderr.flush()


class WorkerNode:
    """Locust's WorkerNode: what the master knows of one worker."""

    def __init__(self, id, index):
        self.id = id
        self.index = index
        self.state = STATE_INIT
        self.heartbeat = HEARTBEAT_LIVENESS
        self.cpu_usage = 0.0
        self.cpu_warning_emitted = False
        self.memory_usage = 0
        self.user_classes_count = {}
        self.sent = None  # the last spawn's user_classes_count
        self.stopping = False

    @property
    def user_count(self):
        return sum(self.user_classes_count.values())


class WorkerNodes(dict):
    """Locust's runner.clients: id -> WorkerNode, with its state views."""

    def _in(self, *states):
        return [w for w in self.values() if w.state in states]

    @property
    def all(self):
        return list(self.values())

    @property
    def ready(self):
        return self._in(STATE_INIT)

    @property
    def spawning(self):
        return self._in(STATE_SPAWNING)

    @property
    def running(self):
        return self._in(STATE_RUNNING)

    @property
    def missing(self):
        return self._in(STATE_MISSING)


def _plain(v, depth=0):
    """v when msgpack can carry it (parsed_options may hold anything)."""
    if v is None or isinstance(v, (bool, int, float, str, bytes)):
        return True
    if depth < 4 and isinstance(v, (list, tuple)):
        return all(_plain(x, depth + 1) for x in v)
    if depth < 4 and isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x, depth + 1) for k, x in v.items())
    return False


def dispatch_shares(per_class, class_names, current):
    """per_class users ({name: count}) over the workers whose current shares
    are given (a list of {name: count}, {} for a new worker): users are added
    to and taken from the least and the most loaded workers, then moved
    until the workers' totals differ by at most one. So a ramp only adds
    users where they run (Locust's UsersDispatcher does the same: a worker
    is not asked to stop a user of a class and start it again a moment
    later) and a worker that joins or leaves moves only its share."""
    shares = [{c: max(0, int(cur.get(c, 0))) for c in class_names} for cur in current]
    if not shares:
        return shares
    total = [sum(s.values()) for s in shares]
    n = len(shares)
    for c in class_names:
        want, have = max(0, per_class.get(c, 0)), sum(s[c] for s in shares)
        while have < want:
            j = min(range(n), key=lambda i: (total[i], shares[i][c], i))
            shares[j][c] += 1
            total[j] += 1
            have += 1
        while have > want:
            j = max((i for i in range(n) if shares[i][c]), key=lambda i: (total[i], shares[i][c], -i))
            shares[j][c] -= 1
            total[j] -= 1
            have -= 1
    while max(total) - min(total) > 1:
        hi = max(range(n), key=lambda i: (total[i], -i))
        lo = min(range(n), key=lambda i: (total[i], i))
        c = max((c for c in class_names if shares[hi][c]),
                key=lambda c: (shares[hi][c] - shares[lo][c], -class_names.index(c)))
        shares[hi][c] -= 1
        shares[lo][c] += 1
        total[hi] -= 1
        total[lo] += 1
    return shares


class MasterLink:
    """The socket, the worker table and the message loop."""

    def __init__(self, runner, bind_host, bind_port):
        self.runner = runner
        self.env = runner.environment
        self.clients = WorkerNodes()
        self.next_index = 0
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_MSG)
        self.sock.setsockopt(zmq.LINGER, 500)
        host = bind_host if bind_host and bind_host != "*" else "*"
        # port 0: an ephemeral one (--processes' local master)
        self.port = DEFAULT_PORT if bind_port is None else bind_port
        endpoint = f"tcp://{host}:{self.port or '*'}"
        try:
            self.sock.bind(endpoint)
            if not self.port:
                self.port = int(self.sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        except zmq.ZMQError as e:
            self.sock.close(linger=0)
            self.ctx.term()
            raise OSError(f"--master: cannot bind {endpoint}: {e}") from None
        self.closed = False
        self.last_spawn_ts = 0.0
        self.unknown_logged = 0

    # ---- sending ----

    def send(self, client_id, mtype, data):
        try:
            self.sock.send_multipart([client_id.encode(), Message(mtype, data, client_id).serialize()],
                                     zmq.NOBLOCK)
        except zmq.ZMQError as e:
            _say(f"cannot send {mtype} to worker {client_id}: {e}")

    def live(self):
        return [w for w in self.clients.values() if w.state != STATE_MISSING]

    def parsed_options(self):
        po = self.env.parsed_options
        if po is None:
            return {}
        return {k: v for k, v in vars(po).items() if _plain(v)}

    def send_spawn(self, w, counts):
        ts = time.time()
        if ts <= self.last_spawn_ts:
            ts = self.last_spawn_ts + 1e-6  # strictly increasing: a worker drops older ones
        self.last_spawn_ts = ts
        st = self.env.stop_timeout
        self.send(w.id, "spawn", {"timestamp": ts, "user_classes_count": counts,
                                  "host": self.env.host or "",
                                  "stop_timeout": st if st and st > 0 else None,
                                  "parsed_options": self.parsed_options()})
        w.sent = dict(counts)

    def dispatch(self, per_class):
        """per_class ({class name: users}) over the live workers; spawn goes
        to those whose share changed."""
        names = self.runner._class_names
        act = sorted((w for w in self.live() if not w.stopping), key=lambda w: w.index)
        for w, share in zip(act, dispatch_shares(per_class, names, [w.sent or {} for w in act])):
            if w.sent != share:
                self.send_spawn(w, share)

    def stop_all(self):
        for w in self.live():
            w.sent = None
            w.stopping = True
            self.send(w.id, "stop", None)

    # ---- receiving ----

    def on_ready(self, cid, data):
        if not isinstance(data, str):
            _say(f"an old (pre 2.0) Locust worker tried to connect ({cid}); it speaks another "
                 "protocol and is refused")
            return
        if data and not data.startswith("2.") and data != "-1":
            _say(f"worker {cid} runs Locust {data}, but aiload speaks Locust 2.x's protocol "
                 f"({VERSION}); refused")
            return
        w = self.clients.get(cid)
        if w is None:
            w = self.clients[cid] = WorkerNode(cid, self.next_index)
            self.next_index += 1
        w.state, w.heartbeat, w.stopping, w.sent = STATE_INIT, HEARTBEAT_LIVENESS, False, None
        w.user_classes_count = {}
        self.send(cid, "ack", {"index": w.index})
        _say(f"worker {cid} (index {w.index}) reported as ready. {len(self.live())} workers "
             "connected.")
        self.runner._rebalance()

    def on_heartbeat(self, cid, data):
        w = self.clients.get(cid)
        if w is None:  # Locust's master: a worker it forgot is told to start over
            self.send(cid, "reconnect", None)
            return
        healed = w.state == STATE_MISSING
        w.heartbeat = HEARTBEAT_LIVENESS
        data = data if isinstance(data, dict) else {}
        st = data.get("state")
        if isinstance(st, str) and st in (STATE_INIT, STATE_SPAWNING, STATE_RUNNING, "stopped",
                                          "cleanup", "stopping"):
            w.state = st
        elif healed:
            w.state = STATE_INIT
        if healed:
            _say(f"worker {cid} self-healed with a heartbeat")
            self.runner._rebalance()
        cpu = data.get("current_cpu_usage")
        if isinstance(cpu, (int, float)) and not isinstance(cpu, bool):
            w.cpu_usage = float(cpu)
            if cpu > 90 and not w.cpu_warning_emitted:
                w.cpu_warning_emitted = True
                _say(f"worker {cid} exceeded the CPU threshold ({cpu:.0f} %); its numbers may be off")
        mem = data.get("current_memory_usage")
        if isinstance(mem, int) and not isinstance(mem, bool):
            w.memory_usage = mem

    def _counts(self, ucc):
        if not isinstance(ucc, dict):
            return None
        return {k: v for k, v in ucc.items() if isinstance(k, str) and isinstance(v, int)
                and not isinstance(v, bool) and 0 <= v <= 10_000_000}

    def on_stats(self, cid, data):
        try:
            dropped = _aiload.merge_report(data)
        except ValueError as e:
            _say(f"dropped a report from {cid}: {e}")
            return
        if dropped and self.unknown_logged < 5:
            self.unknown_logged += 1
            _say(f"worker {cid}: {dropped} malformed rows of a report dropped")
        w = self.clients.get(cid)
        counts = self._counts(data.get("user_classes_count"))
        if w is not None and w.state != STATE_MISSING and counts is not None:
            w.user_classes_count = counts
        self.env.events.worker_report.fire(client_id=cid, data=data)

    def handle(self, cid, raw):
        try:
            if len(raw) > MAX_MSG:
                raise ValueError("message over 64 MiB")
            m = Message.unserialize(raw)
        except Exception as e:  # noqa: BLE001 (anything a peer sends: logged and dropped)
            _say(f"dropped a message from {cid}: {e}")
            return
        t, data = m.type, m.data
        if t == "client_ready":
            self.on_ready(cid, data)
        elif t == "heartbeat":
            self.on_heartbeat(cid, data)
        elif t == "stats":
            self.on_stats(cid, data if isinstance(data, dict) else {})
        elif t in ("spawning", "spawning_complete"):
            w = self.clients.get(cid)
            if w is not None:
                w.state = STATE_RUNNING if t == "spawning_complete" else STATE_SPAWNING
                counts = self._counts(data.get("user_classes_count")) if isinstance(data, dict) else None
                if counts is not None:
                    w.user_classes_count = counts
        elif t == "client_stopped":
            w = self.clients.get(cid)
            if w is not None:
                w.stopping, w.state, w.user_classes_count = False, "stopped", {}
        elif t == "quit":
            if self.clients.pop(cid, None) is not None:
                _say(f"worker {cid} quit. {len(self.live())} workers connected.")
                self.runner._worker_left()
        elif t == "exception":
            if not isinstance(data, dict) or not isinstance(data.get("msg"), str):
                _say(f"dropped an exception message from {cid}: no msg string")
                return
            tb = data.get("traceback")
            self.runner.log_exception(cid, data["msg"], tb if isinstance(tb, str) else "")
        elif t in self.runner.custom_messages:
            try:
                self.runner.custom_messages[t](environment=self.env, msg=m)
            except Exception:  # noqa: BLE001 (the handler's error is the locustfile's)
                import traceback

                _say(f"handler of '{t}' raised:\n{traceback.format_exc()}")
        else:
            _say(f"ignoring message '{t}' from worker {cid} (no handler registered)")

    def drain(self):
        while not self.closed:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError as e:
                _say(f"receive failed: {e}")
                return
            if len(frames) != 2 or not frames[0]:
                _say("dropped a malformed message (bad identity or frames)")
                continue
            try:
                cid = frames[0].decode()
            except UnicodeDecodeError:
                _say("dropped a message from a worker whose identity is not UTF-8")
                continue
            self.handle(cid, frames[1])

    def heartbeats(self):
        for w in list(self.clients.values()):
            if w.state == STATE_MISSING and w.heartbeat <= HEARTBEAT_DEAD_INTERNAL:
                _say(f"worker {w.id} missing for 60 s; removed")
                del self.clients[w.id]
                continue
            if w.heartbeat < 0 and w.state != STATE_MISSING:
                _say(f"worker {w.id} failed to send heartbeat, setting state to missing")
                w.state, w.stopping, w.sent, w.user_classes_count = STATE_MISSING, False, None, {}
                self.runner._worker_left()
            w.heartbeat -= 1

    def serve(self):
        next_hb = time.monotonic() + HEARTBEAT_INTERVAL
        while not self.closed:
            try:
                self.sock.poll(100)
            except zmq.ZMQError:
                pass
            self.drain()
            now = time.monotonic()
            if now >= next_hb:
                self.heartbeats()
                next_hb = now + HEARTBEAT_INTERVAL

    def close(self):
        self.closed = True
        self.sock.close(linger=500)
        self.ctx.term()

