"""The local runner: spawns the users as greenlets at the spawn rate, stops
them, keeps the Exceptions table. Locust's names and states."""
import logging
import math
import sys
import time
import traceback

import gevent
from gevent.pool import Group

import _aiload

from .exception import StopUser, StuckUserError
from .stats import on_request
from .user.task import LOCUST_STATE_RUNNING

logger = logging.getLogger(__name__)

STATE_INIT, STATE_SPAWNING, STATE_RUNNING, STATE_CLEANUP, STATE_STOPPING, STATE_STOPPED, STATE_MISSING = [
    "ready", "spawning", "running", "cleanup", "stopping", "stopped", "missing"]
_STATE_CODE = {STATE_INIT: 0, STATE_SPAWNING: 1, STATE_RUNNING: 2, STATE_CLEANUP: 3,
               STATE_STOPPING: 3, STATE_STOPPED: 4, STATE_MISSING: 4}


def split_users(user_classes, n):
    """n users over the classes as Locust (and aiload's ini path) does:
    fixed_count classes first, the rest by weight, largest remainder."""
    counts = {u: 0 for u in user_classes}
    fixed = [u for u in user_classes if u.fixed_count]
    weighted = [u for u in user_classes if not u.fixed_count]
    left = n
    total_fixed = sum(u.fixed_count for u in fixed)
    if fixed:
        if n >= total_fixed:
            for u in fixed:
                counts[u] = u.fixed_count
            left = n - total_fixed
        else:
            shares = [(u, n * u.fixed_count / total_fixed) for u in fixed]
            for u, s in shares:
                counts[u] = int(s)
            rest = n - sum(counts.values())
            for u, s in sorted(shares, key=lambda x: -(x[1] - int(x[1])))[:rest]:
                counts[u] += 1
            return counts
    wsum = sum(u.weight for u in weighted)
    if weighted and wsum > 0 and left > 0:
        shares = [(i, u, left * u.weight / wsum) for i, u in enumerate(weighted)]
        for _, u, s in shares:
            counts[u] = int(s)
        rest = left - sum(int(s) for _, _, s in shares)
        for _, u, s in sorted(shares, key=lambda x: (-(x[2] - int(x[2])), x[0]))[:rest]:
            counts[u] += 1
    return counts


def _proportional(targets, n):
    """n users split like targets (a child's share of each class)."""
    total = sum(targets.values()) or 1
    shares = [(c, n * t / total) for c, t in targets.items()]
    counts = {c: int(x) for c, x in shares}
    rest = n - sum(counts.values())
    for c, x in sorted(shares, key=lambda s: -(s[1] - int(s[1])))[:rest]:
        counts[c] += 1
    return counts


class Runner:
    def __init__(self, environment):
        self.environment = environment
        self.user_greenlets = Group()
        self.greenlet = Group()
        self.state = STATE_INIT
        self.spawning_greenlet = None
        self.shape_greenlet = None
        self.shape_last_tick = None
        self.target_user_count = 0
        self.target_user_classes_count = {}
        self.spawn_rate = 0.0
        self.exceptions = {}
        self.cpu_warning_emitted = False
        self.worker_cpu_warning_emitted = False
        self.current_cpu_usage = 0
        self.custom_messages = {}
        self._users = []  # every user started by the runner and not stopped by it
        self._targets = None  # --processes child: its users per class at full count
        self.start_time = None
        self._t0_ns = 0
        environment.events.request.add_listener(on_request)

        def on_user_error(user_instance, exception, tb):
            self.log_exception("local", str(exception), "".join(traceback.format_tb(tb)))

        environment.events.user_error.add_listener(on_user_error)

    @property
    def user_classes(self):
        return self.environment.user_classes

    @property
    def user_classes_by_name(self):
        return {u.__name__: u for u in self.user_classes}

    @property
    def stats(self):
        return self.environment.stats

    @property
    def errors(self):
        return self.stats.errors

    @property
    def user_count(self):
        return sum(1 for g in self.user_greenlets if not g.dead)

    @property
    def user_classes_count(self):
        out = {u.__name__: 0 for u in self.user_classes}
        for g in self.user_greenlets:
            if not g.dead:
                out[type(g.user).__name__] = out.get(type(g.user).__name__, 0) + 1
        return out

    def log_exception(self, node_id, msg, formatted_tb):
        key = hash(formatted_tb)
        row = self.exceptions.setdefault(key, {"count": 0, "msg": msg, "traceback": formatted_tb, "nodes": set()})
        row["count"] += 1
        row["nodes"].add(node_id)

    def register_message(self, msg_type, listener):
        self.custom_messages[msg_type] = listener

    def send_message(self, msg_type, data=None, client_id=None):
        # one process: the message goes to this process's own listener
        if msg_type in self.custom_messages:
            self.custom_messages[msg_type](environment=self.environment, msg=type("Msg", (), {"data": data})())

    # ---- spawning ----

    def _spawn_one(self, cls):
        user = cls(self.environment)
        user.start(self.user_greenlets)
        self._users.append(user)

    def _retire_one(self, cls):
        for i in range(len(self._users) - 1, -1, -1):
            u = self._users[i]
            if type(u) is cls:
                del self._users[i]
                u.stop(force=False)
                return

    def _apply(self, n):
        """Brings the users the runner started to n, class by class."""
        want = _proportional(self._targets, n) if self._targets else split_users(self.user_classes, n)
        have = {u: 0 for u in self.user_classes}
        for u in self._users:
            have[type(u)] = have.get(type(u), 0) + 1
        # interleave the classes as they grow (the largest relative deficit first)
        while True:
            deficits = [(want[c] - have.get(c, 0), c) for c in self.user_classes if want[c] > have.get(c, 0)]
            if not deficits:
                break
            _, c = max(deficits, key=lambda d: (d[0] / max(want[d[1]], 1), d[0]))
            self._spawn_one(c)
            have[c] = have.get(c, 0) + 1
        for c in self.user_classes:
            for _ in range(have.get(c, 0) - want[c]):
                self._retire_one(c)

    def _ramp(self, cur, applied, pause):
        """Moves the user count from cur to target_user_count at spawn_rate,
        calling self._apply(n) each time the whole count changes (applied()
        is the count applied so far) and pause() seconds between steps; the
        target may change on the way. Returns the final count."""
        last = time.monotonic()
        if cur < self.target_user_count:
            cur = max(cur, 1.0 if self.spawn_rate < 1e6 else float(self.target_user_count))
        while True:
            target = self.target_user_count
            now = time.monotonic()
            step = self.spawn_rate * (now - last)
            last = now
            cur = min(target, cur + step) if cur < target else max(target, cur - step)
            n = int(math.floor(cur + 1e-9))
            if n != applied():
                self._apply(n)
            if n == target:
                return n
            gevent.sleep(pause())

    def _spawning_done(self, n, summary):
        """The end of a ramp: running, spawning_complete and the optional
        stats reset, as Locust does them; summary is logged."""
        if self.state != STATE_SPAWNING:
            return
        self.state = STATE_RUNNING
        self._publish()
        logger.info(summary)
        self.environment.events.spawning_complete.fire(user_count=n)
        if self.environment.reset_stats:
            logger.info("Resetting stats")
            self.stats.reset_all()
            self.environment.events.reset_stats.fire()

    def _spawn_loop(self):
        n = self._ramp(float(len(self._users)), lambda: len(self._users),
                       lambda: min(0.05, max(0.001, 1.0 / self.spawn_rate)))
        started = {c.__name__: 0 for c in self.user_classes}
        for u in self._users:
            started[type(u).__name__] = started.get(type(u).__name__, 0) + 1
        self._spawning_done(n, "All users spawned: %s (%d total users)"
                            % (", ".join(f"{k}: {v}" for k, v in started.items()), n))

    def _begin(self):
        _aiload.reset()
        self.exceptions = {}
        self.start_time = time.time()
        self._t0_ns = _aiload.now_ns()
        self.environment.events.test_start.fire(environment=self.environment)

    def start(self, user_count, spawn_rate, wait=False, user_classes=None):
        if self.state not in (STATE_SPAWNING, STATE_RUNNING):
            self._begin()
        if user_classes:
            self.environment.user_classes = list(user_classes)
        self.target_user_count = user_count
        self.spawn_rate = spawn_rate if spawn_rate and spawn_rate > 0 else float(user_count or 1)
        self.state = STATE_SPAWNING
        self._publish()
        if self.spawning_greenlet is None or self.spawning_greenlet.dead:
            self.spawning_greenlet = self.greenlet.spawn(self._spawn_loop)
        if wait:
            self.spawning_greenlet.join()

    def start_shape(self):
        shape = self.environment.shape_class
        shape.runner = self
        shape.reset_time()
        self._begin()
        self.state = STATE_SPAWNING
        self.shape_greenlet = self.greenlet.spawn(self._shape_loop)

    def _shape_loop(self):
        shape = self.environment.shape_class
        while self.state in (STATE_SPAWNING, STATE_RUNNING, STATE_INIT):
            t = shape.tick()
            if t is None:
                logger.info("Shape test stopping")
                gevent.spawn(self.stop)
                return
            if t != self.shape_last_tick:
                self.shape_last_tick = t
                users, rate = t[0], t[1]
                classes = t[2] if len(t) > 2 else None
                self.start(users, rate, user_classes=classes)
            gevent.sleep(1)

    def _publish(self):
        env = self.environment
        _aiload.set_info(_STATE_CODE.get(self.state, 0), self.user_count, self.target_user_count,
                         float(self.spawn_rate), env.host or "", float(getattr(env, "_run_time", 0) or 0),
                         int(self.start_time or 0), self.user_classes_count)

    def stop(self):
        """Stops every user: waiting ones at once, the others after their
        request in flight (no new request starts), killed after stop_timeout."""
        if self.state in (STATE_STOPPED, STATE_STOPPING, STATE_INIT):
            return
        if gevent.getcurrent() in self.user_greenlets:
            gevent.spawn(self.stop)
            raise StopUser()
        self.state = STATE_STOPPING
        self.environment.events.test_stopping.fire(environment=self.environment)
        if self.spawning_greenlet is not None:
            self.spawning_greenlet.kill(block=False)
        if self.shape_greenlet is not None and self.shape_greenlet is not gevent.getcurrent():
            self.shape_greenlet.kill(block=False)
        users = [g.user for g in self.user_greenlets if not g.dead]
        self._users = []
        for u in users:
            u.stop(force=False)
        timeout = self.environment.stop_timeout
        timeout = 10.0 if timeout is None or timeout <= 0 else timeout
        self.user_greenlets.join(timeout=timeout)
        if self.user_count:
            for g in list(self.user_greenlets):
                g.user._state = "stopping"
            self.user_greenlets.kill(block=True, timeout=5)
        _aiload.stop_clock(_aiload.now_ns())
        self.state = STATE_STOPPED
        self._publish()
        self.environment.events.test_stop.fire(environment=self.environment)

    def quit(self):
        if gevent.getcurrent() in self.user_greenlets:
            # from a user's own code: the stop runs beside it and this user ends
            # here, as Locust's quit kills the calling user too
            gevent.spawn(self.quit)
            raise StopUser()
        self.stop()
        self.greenlet.kill(block=False)


class LocalRunner(Runner):
    pass


class DistributedRunner(Runner):
    """Locust's base of the master and worker runners (isinstance checks)."""


class MasterRunner(DistributedRunner):
    """--master: the users run on the workers (Locust or aiload), this
    process dispatches them (_master.py), merges their reports, runs the
    locustfile's events, custom message handlers and LoadTestShape."""

    def __init__(self, environment, master_bind_host=None, master_bind_port=None):
        super().__init__(environment)
        from ._master import MasterLink

        self.master_bind_host, self.master_bind_port = master_bind_host, master_bind_port
        self._class_names = [c.__name__ for c in environment.user_classes]
        self._link = MasterLink(self, master_bind_host, master_bind_port)
        self.master_bind_port = self._link.port  # the one bound when 0 asked for any
        self._dispatched = 0
        self._stopper = None
        self._quit_flag = False  # a signal while awaiting the workers
        self.spawning_completed = False
        self.greenlet.spawn(self._link.serve)

    # ---- Locust's MasterRunner API ----

    @property
    def clients(self):
        return self._link.clients

    @property
    def worker_count(self):
        return sum(1 for w in self.clients.values() if w.state in (STATE_INIT, STATE_SPAWNING, STATE_RUNNING))

    @property
    def user_classes_count(self):
        out = {n: 0 for n in self._class_names}
        for w in self._link.live():
            for k, v in w.user_classes_count.items():
                out[k] = out.get(k, 0) + v
        return out

    @property
    def reported_user_classes_count(self):
        return self.user_classes_count

    @property
    def user_count(self):
        return sum(self.user_classes_count.values())

    def get_worker_index(self, client_id):
        w = self.clients.get(client_id)
        return w.index if w is not None else None

    def send_message(self, msg_type, data=None, client_id=None):
        """To one worker (client_id) or to every connected one."""
        if client_id is not None:  # as Locust: one that left drops it (ROUTER)
            self._link.send(client_id, msg_type, data)
            return
        for w in self._link.live():
            self._link.send(w.id, msg_type, data)

    # ---- the test ----

    def _per_class(self, n):
        classes = [c for c in self.user_classes]
        return {c.__name__: k for c, k in split_users(classes, n).items()}

    def _rebalance(self):
        """A worker came or went: its share moves (Locust's rebalancing)."""
        if self.state in (STATE_SPAWNING, STATE_RUNNING):
            self._link.dispatch(self._per_class(self._dispatched))

    def _worker_left(self):
        if self.state not in (STATE_SPAWNING, STATE_RUNNING):
            return
        if not self._link.live():
            sys.stderr.write("aiload master: the last worker left, stopping the test\n")
            gevent.spawn(self.stop)
            return
        self._rebalance()

    def _apply(self, n):
        self._dispatched = n
        self._link.dispatch(self._per_class(n))

    def _spawning_done(self, n, summary):
        if self.state == STATE_SPAWNING:
            self.spawning_completed = True
        super()._spawning_done(n, summary)

    def _spawn_loop(self):
        # one spawn message per worker per step, as Locust's dispatcher paces them
        n = self._ramp(float(self._dispatched), lambda: self._dispatched,
                       lambda: min(1.0, max(0.1, 1.0 / self.spawn_rate)))
        self._spawning_done(n, "All users dispatched: %s (%d total users, %d workers)"
                            % (", ".join(f"{k}: {v}" for k, v in self._per_class(n).items()), n,
                               len(self._link.live())))

    def stop(self):
        """Tells every worker to stop and awaits their client_stopped (with
        their last reports) for the stop timeout plus 5 s."""
        if self.state in (STATE_STOPPED, STATE_STOPPING, STATE_INIT):
            if self._stopper is not None and self._stopper is not gevent.getcurrent():
                self._stopper.join()
            return
        self._stopper = gevent.getcurrent()
        self.state = STATE_STOPPING
        self._publish()
        self.environment.events.test_stopping.fire(environment=self.environment)
        for g in (self.spawning_greenlet, self.shape_greenlet):
            if g is not None and g is not gevent.getcurrent():
                g.kill(block=False)
        self._dispatched = 0
        self.spawning_completed = False
        self._link.stop_all()
        timeout = self.environment.stop_timeout
        deadline = time.monotonic() + (timeout if timeout and timeout > 0 else 0) + 5
        while any(w.stopping for w in self._link.live()) and time.monotonic() < deadline:
            gevent.sleep(0.05)
        _aiload.stop_clock(_aiload.now_ns())
        self.state = STATE_STOPPED
        self._publish()
        self.environment.events.test_stop.fire(environment=self.environment)
        self._stopper = None

    def quit(self):
        """Stops the test, sends quit to every worker and awaits their quit
        (their final reports) for the stop timeout plus 2 s."""
        self.stop()
        if self._link.closed:
            return
        for w in self._link.live():
            self._link.send(w.id, "quit", None)
        timeout = self.environment.stop_timeout
        deadline = time.monotonic() + (timeout if timeout and timeout > 0 else 0) + 2
        while self._link.live() and time.monotonic() < deadline:
            gevent.sleep(0.05)
        self._link.close()
        self.greenlet.kill(block=False)

    def await_workers(self, want, max_wait):
        """Headless: until want workers are connected (Locust's
        --expect-workers); False when max_wait (> 0) s passed first."""
        t0 = time.monotonic()
        while self.worker_count < want:
            if self._quit_flag:
                return False
            if max_wait and time.monotonic() - t0 >= max_wait:
                sys.stderr.write(f"aiload master: gave up waiting for workers to connect: "
                                 f"{self.worker_count} of {want} after {max_wait:g} s\n")
                return False
            gevent.sleep(0.1)
        sys.stderr.write(f"aiload master: {self.worker_count} workers connected; starting\n")
        return True


class WorkerRunner(DistributedRunner):
    """--worker: the users run here, a Locust or aiload master drives them
    over Locust's protocol (_worker.py). Exceptions and custom messages go to
    the master."""

    def __init__(self, environment, master_host=None, master_port=None):
        super().__init__(environment)
        from ._worker import WorkerLink

        self._quit_flag = False
        self._link = WorkerLink(self, master_host, master_port)
        self.client_id = self._link.client_id

    def log_exception(self, node_id, msg, formatted_tb):
        super().log_exception(node_id, msg, formatted_tb)
        self._link.send_exception(msg, formatted_tb)

    def send_message(self, msg_type, data=None, client_id=None):
        """To the master (Locust's worker signature has no client_id)."""
        self._link.send(msg_type, data)

    def run(self):
        return self._link.run()


def stall_warning(thread_id):
    """Called by the watchdog thread when the hub has not run for 2 s."""
    frame = sys._current_frames().get(thread_id)
    where = None
    while frame is not None:
        fn = frame.f_code.co_filename
        if where is None and not fn.startswith(("loadgen/py/locust/", "/usr/lib/python3")):
            where = f"{frame.f_code.co_name} ({fn}:{frame.f_lineno})"
        frame = frame.f_back
    sys.stderr.write(f"aiload: warning: {where or 'user code'} has not yielded for 2 s: the other "
                     "users wait (a loop without a request, sleep or gevent call?)\n")


_ = (LOCUST_STATE_RUNNING, StuckUserError)
