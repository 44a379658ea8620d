"""--processes N: Locust's way of using several cores. The parent forks N
children after the locustfile is imported and the options are parsed; each
runs its share of the users (each class split over the children) as a
headless run of its own, and ships every request's exact timings to the
parent (loadgen/py/pymod.c: ship_record/ingest) through a pipe. The parent
records them into its statistics, so the periodic tables, the final tables
and the CSV files are those of one run. With a LoadTestShape the parent ticks
the shape and sends each child its share of every step (users per class and
spawn rate) as a JSON line on a second pipe; the shape's None stops them."""
import json
import logging
import os
import signal
import sys
import time

import gevent
import gevent.os

import _aiload

from .runners import STATE_RUNNING, STATE_SPAWNING, STATE_STOPPED, split_users

logger = logging.getLogger("locust.main")


def _child_targets(classes, users, n):
    """[{class: users}] per child: each class's count dealt round-robin."""
    per = split_users(classes, users)
    out = [{c: 0 for c in classes} for _ in range(n)]
    k = 0
    for c in classes:
        for _ in range(per[c]):
            out[k % n][c] += 1
            k += 1
    return out


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        k = gevent.os.nb_write(fd, view)
        view = view[k:]


def _read_lines(fd):
    """Yields the JSON objects written to fd one per line, until its end."""
    gevent.os.make_nonblocking(fd)
    pending = b""
    while True:
        data = gevent.os.nb_read(fd, 1 << 16)
        if not data:
            return
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield json.loads(line)


def _follow_steps(env, runner, ctl):
    """A shape child: applies each step the parent sends (its users per class
    and spawn rate), and stops at the shape's end or when the parent goes."""
    by_name = {c.__name__: c for c in env.user_classes}
    for msg in _read_lines(ctl):
        if msg.get("stop"):
            break
        runner._targets = {by_name[k]: v for k, v in msg["targets"].items() if k in by_name}
        runner.start(sum(runner._targets.values()), msg["rate"])
    os.close(ctl)
    runner.quit()


def _child(env, runner, d, targets, rate, fd, ctl=None):
    from . import main as m

    _aiload.set_shipping(True)
    gevent.os.make_nonblocking(fd)
    run_time = d["run_time"] or 0
    stop = {"n": 0}

    def on_signal(signum, frame):
        stop["n"] += 1
        if stop["n"] == 1:
            gevent.spawn(runner.quit)
        else:
            env.stop_timeout = 0.001
            gevent.spawn(lambda: runner.user_greenlets.kill(block=False))

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if ctl is None:
        runner._targets = targets
        runner.start(sum(targets.values()), rate)
    else:  # the shape's steps come from the parent; the clock starts now, as the parent's
        runner._begin()
        runner.state = STATE_RUNNING
        gevent.spawn(_follow_steps, env, runner, ctl)
    _aiload.watchdog(runner._t0_ns + int(run_time * 1e9) + 200_000_000 if run_time else 1 << 62)

    def heartbeat():
        while True:
            _aiload.beat()
            gevent.sleep(0.05)

    def stopper():
        gevent.sleep(run_time)
        runner.quit()

    def status():
        while True:
            _aiload.ship_json(json.dumps({"users": runner.user_count, "state": runner.state,
                                          "classes": runner.user_classes_count}).encode())
            gevent.sleep(1)

    def shipper():
        while True:
            data = _aiload.ship_take()
            if data:
                _write_all(fd, data)
            gevent.sleep(0.1)

    helpers = [gevent.spawn(heartbeat), gevent.spawn(status), gevent.spawn(shipper)]
    if run_time:
        helpers.append(gevent.spawn(stopper))
    while runner.state != STATE_STOPPED:
        gevent.sleep(0.1)
    _aiload.watchdog(0)
    for g in helpers:
        g.kill(block=False)
    env.events.quitting.fire(environment=env)
    exc = [{"count": e["count"], "msg": e["msg"], "traceback": e["traceback"]} for e in runner.exceptions.values()]
    code = env.process_exit_code
    _aiload.ship_json(json.dumps({"done": True, "exceptions": exc, "code": code, "users": 0}).encode())
    _write_all(fd, _aiload.ship_take())
    os.close(fd)
    return 0


class _ShapeView:
    """What a LoadTestShape on the parent reads of its runner: the children's
    users as they last reported them."""

    def __init__(self, env, state):
        self.environment, self._state = env, state
        self.target_user_count, self.spawn_rate = 0, 0.0

    @property
    def user_count(self):
        return sum(s["users"] for s in self._state.values())

    @property
    def user_classes_count(self):
        out = {c.__name__: 0 for c in self.environment.user_classes}
        for s in self._state.values():
            for k, v in s.get("classes", {}).items():
                out[k] = out.get(k, 0) + v
        return out


def _run_shape(env, view, ctls, n):
    """Ticks the shape every second and sends each child its share of a new
    step; at the shape's None, tells them to stop."""
    shape = env.shape_class
    shape.runner = view
    shape.reset_time()
    last = None
    while True:
        t = shape.tick()
        if t is None:
            logger.info("Shape test stopping")
            break
        if t != last:
            last = t
            users, rate = t[0], t[1]
            classes = list(t[2]) if len(t) > 2 and t[2] else list(env.user_classes)
            view.target_user_count, view.spawn_rate = users, rate
            for k, share in enumerate(_child_targets(classes, users, n)):
                got = sum(share.values())
                msg = {"targets": {c.__name__: share.get(c, 0) for c in env.user_classes},
                       "rate": rate * got / users if users else rate}
                _write_all(ctls[k], (json.dumps(msg) + "\n").encode())
        gevent.sleep(1)
    for fd in ctls:
        _write_all(fd, b'{"stop": true}\n')


def run_processes(env, runner, d, n):
    from . import main as m

    shaped = env.shape_class is not None
    users = d["num_users"] or 1
    rate = d["spawn_rate"] or 1
    n = n if shaped else min(n, users)
    env._processes = n
    targets = _child_targets(env.user_classes, users, n)
    _aiload.reset()
    children, ctls = [], []
    for k in range(n):
        r, w = os.pipe()
        cr, cw = os.pipe() if shaped else (None, None)
        pid = os.fork()
        if pid == 0:
            os.close(r)
            if shaped:
                os.close(cw)
            for fd in [rfd for _, _, rfd in children] + ctls:
                os.close(fd)
            code = 1
            try:
                code = _child(env, runner, d, targets[k], rate * sum(targets[k].values()) / users, w,
                              cr)
            except BaseException:  # noqa: B036 (a child must never return into the parent's code)
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(w)
        if shaped:
            os.close(cr)
            ctls.append(cw)
        children.append((k, pid, r))
    if shaped:
        sys.stderr.write(f"aiload: shape test ({type(env.shape_class).__name__}) over {n} processes, "
                         f"host {env.host or '-'} (Python locustfile)\n")
    else:
        sys.stderr.write(f"aiload: closed-model test: {users} users over {n} processes, spawn rate "
                         f"{rate:g}/s, {'run time set' if d['run_time'] else 'until Ctrl+C'}, host "
                         f"{env.host or '-'} (Python locustfile)\n")

    state = {k: {"users": 0, "state": STATE_SPAWNING, "done": False, "exceptions": [], "code": None}
             for k, _, _ in children}
    nw = m._name_width()
    csvout = m.CsvOut(d["csv_prefix"], d["csv_full_history"]) if d["csv_prefix"] else None
    runner.start_time = time.time()
    runner.state = STATE_SPAWNING

    def reader(k, fd):
        gevent.os.make_nonblocking(fd)
        while True:
            data = gevent.os.nb_read(fd, 1 << 16)
            if not data:
                break
            for msg in _aiload.ingest(k, data):
                state[k].update(json.loads(msg))
        os.close(fd)

    def forward(signum, frame):
        for _, pid, _ in children:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        if signum == signal.SIGINT:
            sys.stderr.write("aiload: stopping; awaiting requests in flight (Ctrl+C again to abort them)\n")

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)

    view = _ShapeView(env, state)

    def publish():
        u = sum(s["users"] for s in state.values())
        states = {s["state"] for s in state.values()}
        runner.state = STATE_RUNNING if states <= {STATE_RUNNING} else runner.state
        runner.target_user_count = view.target_user_count if shaped else users
        runner.spawn_rate = view.spawn_rate if shaped else rate
        _aiload.set_info({"spawning": 1, "running": 2, "stopping": 3, "stopped": 4}.get(runner.state, 1), u,
                         runner.target_user_count, float(runner.spawn_rate), env.host or "",
                         float(d["run_time"] or 0), int(runner.start_time))

    def ticker():
        next_table = time.monotonic() + 2
        while True:
            gevent.sleep(1)
            publish()
            _aiload.history_tick()
            if csvout:
                csvout.history_row()
                csvout.write(runner)
            if not d["only_summary"] and time.monotonic() >= next_table:
                sys.stdout.write(_aiload.report("current", nw))
                sys.stdout.flush()
                next_table += 2

    readers = [gevent.spawn(reader, k, fd) for k, _, fd in children]
    tick = gevent.spawn(ticker)
    shaper = gevent.spawn(_run_shape, env, view, ctls, n) if shaped else None
    if csvout:
        csvout.write(runner)
    gevent.joinall(readers)
    codes = []
    for _, pid, _ in children:
        _, status = os.waitpid(pid, 0)
        codes.append(os.waitstatus_to_exitcode(status))
    tick.kill()
    if shaper is not None:
        shaper.kill()
        for fd in ctls:
            os.close(fd)
    _aiload.stop_clock(_aiload.now_ns())
    runner.state = STATE_STOPPED
    publish()
    for k, s in state.items():
        for e in s["exceptions"]:
            row = runner.exceptions.setdefault(hash(e["traceback"]), {"count": 0, "msg": e["msg"], "traceback": e["traceback"], "nodes": set()})
            row["count"] += e["count"]
            row["nodes"].add(f"process-{k}")
    env.events.quitting.fire(environment=env)
    for k, s in state.items():
        if not s.get("done"):
            sys.stderr.write(f"aiload: process {k} ended without its final report (exit {codes[k]})\n")
    return m.finish(env, runner, d, nw, csvout, extra_codes=[s["code"] for s in state.values() if s["code"]])
