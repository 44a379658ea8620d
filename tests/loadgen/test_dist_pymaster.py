"""A Python locustfile as the distributed master (aiload -f x.py --master,
loadgen/py/locust/_master.py): its events fire once on the master, custom
messages go both ways with a real Locust 2.12 worker (Debian's python3-locust)
and an aiload Python worker (an ini-scenario worker beside them), a LoadTestShape on the master steps the workers'
users, the workers' requests are all counted, bad messages and a locustfile
that raises at import are clear errors. Loopback only, bounded in time."""
import csv
import os
import subprocess
import time
import urllib.request

import msgpack
import zmq

from harness import binary, free_port
from distkit import LOCUSTFILE, PY, SCENARIO, raw_worker, server, server_count  # noqa: F401 (server: a fixture)

# distkit's two classes (UserA on /hello, UserB on /delay/0.12 named "slow")
USERS = """
from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner
""" + LOCUSTFILE + """
def say(*a):
    print(*a, flush=True)
"""

# what each runner saw of the test's start and stop
TEST_EVENTS = """
@events.test_start.add_listener
def on_start(environment, **kw):
    say("TEST_START", type(environment.runner).__name__)

@events.test_stop.add_listener
def on_stop(environment, **kw):
    say("TEST_STOP", type(environment.runner).__name__)
"""

MESSAGES = USERS + TEST_EVENTS + """
@events.init_command_line_parser.add_listener
def add_args(parser):
    parser.add_argument("--my-arg", default="worker default")

def on_ping(environment, msg, **kw):  # on a worker
    say("WORKER GOT ping", msg.data)
    environment.runner.send_message("pong", {"back": msg.data, "po": environment.parsed_options.my_arg})

def on_thanks(environment, msg, **kw):  # on a worker: the master answered it alone
    say("WORKER GOT thanks", msg.data)

def on_pong(environment, msg, **kw):  # on the master
    say("MASTER GOT pong", msg.data, "from", msg.node_id in environment.runner.clients)
    environment.runner.send_message("thanks", {"to": msg.node_id}, client_id=msg.node_id)

@events.init.add_listener
def on_init(environment, runner, **kw):
    say("INIT", type(runner).__name__)
    if isinstance(runner, WorkerRunner):
        runner.register_message("ping", on_ping)
        runner.register_message("thanks", on_thanks)
    else:
        runner.register_message("pong", on_pong)

@events.quitting.add_listener
def on_quitting(environment, **kw):
    say("QUITTING", type(environment.runner).__name__)

@events.spawning_complete.add_listener
def on_spawned(user_count, **kw):
    runner = RUNNER[0]
    if isinstance(runner, MasterRunner):
        say("MASTER SPAWNED", user_count, "workers", runner.worker_count, "state", runner.state)
        runner.send_message("ping", {"n": 1})

RUNNER = []

@events.init.add_listener
def keep(environment, **kw):
    RUNNER.append(environment.runner)
"""

SHAPE = USERS + TEST_EVENTS + """

class Steps(LoadTestShape):
    # 2 users, then 4, then 2 of UserB only, then stop
    def tick(self):
        t = self.get_run_time()
        counts = self.runner.user_classes_count
        say("TICK", round(t, 1), self.runner.user_count, sorted(counts.items()))
        if t < 4:
            return (2, 10)
        if t < 8:
            return (4, 10)
        if t < 12:
            return (2, 10, [UserB])
        return None
"""


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def start_logged(procs, args, cwd, name):
    log = open(cwd / name, "wb")  # files, not pipes: a full pipe would stall a process
    return procs.start(args, cwd=cwd, stdout=log, stderr=log)


def py_master(procs, cwd, mport, server, extra, workers=2):
    return start_logged(procs, [binary("aiload"), "-f", "locustfile.py", "--master", "--headless",
                                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(mport),
                                "-H", f"http://127.0.0.1:{server}", "--expect-workers", str(workers),
                                "--expect-workers-max-wait", "60", "--csv", "m", *extra],
                        cwd, "master.log")


def py_master_ui(procs, cwd, mport, wport, server):
    """A Python master serving the web UI on wport (no test until the UI starts one)."""
    from harness import wait_port

    m = start_logged(procs, [binary("aiload"), "-f", "locustfile.py", "--master", "--master-bind-host",
                             "127.0.0.1", "--master-bind-port", str(mport), "--web-port", str(wport),
                             "-H", f"http://127.0.0.1:{server}"], cwd, "master.log")
    wait_port(wport, proc=m)
    return m


def ui_stats(base):
    """() -> the web UI's /stats/requests as JSON."""
    import json

    def stats():
        with urllib.request.urlopen(base + "/stats/requests", timeout=10) as r:
            return json.loads(r.read())
    return stats


def py_worker(procs, cwd, mport, name):
    return start_logged(procs, [binary("aiload"), "-f", "locustfile.py", "--worker",
                                "--master-host", "127.0.0.1", "--master-port", str(mport)], cwd, name)


def locust_worker(procs, cwd, mport):
    return start_logged(procs, [PY, "-m", "locust", "-f", "locustfile.py", "--worker",
                                "--master-host", "127.0.0.1", "--master-port", str(mport)], cwd,
                        "locust.log")


def test_python_master_exchanges_messages_with_locust_and_aiload_workers(procs, server, tmp_path):
    (tmp_path / "locustfile.py").write_text(MESSAGES)
    (tmp_path / "sc.ini").write_text(SCENARIO)  # the same classes and request names
    mport = free_port()
    m = py_master(procs, tmp_path, mport, server, ["-u", "6", "-r", "12", "-t", "6s", "--stop-timeout",
                                                    "3", "--my-arg", "from the master",
                                                    "--enable-rebalancing"], workers=3)
    w1 = py_worker(procs, tmp_path, mport, "aiload.log")
    w2 = locust_worker(procs, tmp_path, mport)
    w3 = start_logged(procs, [binary("aiload"), "-f", "sc.ini", "--worker", "--master-port", str(mport)],
                      tmp_path, "ini.log")
    assert m.wait(timeout=90) == 0, (tmp_path / "master.log").read_text()[-3000:]
    assert w1.wait(timeout=30) == 0 and w2.wait(timeout=30) == 0 and w3.wait(timeout=30) == 0
    mout = (tmp_path / "master.log").read_text()
    aout = (tmp_path / "aiload.log").read_text()
    lout = (tmp_path / "locust.log").read_text()
    # events fire once on the master, with a master runner
    for ev in ("INIT MasterRunner", "TEST_START MasterRunner", "TEST_STOP MasterRunner",
               "QUITTING MasterRunner"):
        assert mout.count(ev) == 1, (ev, mout[-3000:])
    assert "MASTER SPAWNED 6 workers 3 state running" in mout, mout[-3000:]
    assert mout.index("TEST_START") < mout.index("MASTER SPAWNED") < mout.index("TEST_STOP")
    # master -> every worker, each worker -> master (with the master's parsed_options),
    # master -> that one worker (client_id)
    for out in (aout, lout):
        assert "WORKER GOT ping {'n': 1}" in out, out[-3000:]
        assert out.count("WORKER GOT thanks") == 1, out[-3000:]
    assert mout.count("MASTER GOT pong {'back': {'n': 1}, 'po': 'from the master'} from True") == 2, \
        mout[-3000:]
    # an ini scenario has no handlers: the master's ping is logged and dropped there
    assert "ignoring message 'ping' from the master" in (tmp_path / "ini.log").read_text()
    # every request the workers made is in the master's statistics (it awaits their last
    # reports; a Locust worker's requests in flight at its quit may be left out)
    stats = {(r["Type"], r["Name"]): r for r in read_csv(tmp_path / "m_stats.csv")}
    seen = server_count(server)["paths"]
    hello, slow = int(stats[("GET", "/hello")]["Request Count"]), int(stats[("GET", "slow")]["Request Count"])
    assert hello > 20 and slow > 10, stats
    assert 0 <= seen["/hello"] - hello <= 3 and 0 <= seen["/delay/0.12"] - slow <= 3, (seen, hello, slow)
    assert int(stats[("", "Aggregated")]["Failure Count"]) == 0
    # Locust's /delay/0.12 bucket and aiload's exact histogram: both near 120 ms
    assert 120 <= float(stats[("GET", "slow")]["Average Response Time"]) < 200


def test_all_aiload_python_run_keeps_exact_percentiles(procs, server, tmp_path):
    """Python workers send their full-precision histogram beside Locust's rounded
    buckets (as ini workers do), so a master of aiload workers alone counts every
    request once and keeps sub-millisecond percentiles and an exact min."""
    import json

    (tmp_path / "locustfile.py").write_text(USERS)
    mport = free_port()
    m = py_master(procs, tmp_path, mport, server, ["-u", "4", "-r", "40", "-t", "5s", "--json", "m.json"])
    ws = [py_worker(procs, tmp_path, mport, f"w{k}.log") for k in range(2)]
    assert m.wait(timeout=90) == 0, (tmp_path / "master.log").read_text()[-3000:]
    assert all(w.wait(timeout=30) == 0 for w in ws)
    stats = {(r["Type"], r["Name"]): r for r in read_csv(tmp_path / "m_stats.csv")}
    seen = server_count(server)["paths"]
    assert int(stats[("GET", "/hello")]["Request Count"]) == seen["/hello"]
    assert int(stats[("GET", "slow")]["Request Count"]) == seen["/delay/0.12"] > 5
    summary = json.loads((tmp_path / "m.json").read_text())
    slow = [e for e in summary["entries"] if e["name"] == "slow"][0]
    p50 = slow["percentiles_ms"]["50"]
    # Locust's buckets would give exactly 120 or 130
    assert 119 <= p50 <= 160 and p50 % 10 != 0, slow["percentiles_ms"]
    assert slow["min_ms"] % 10 != 0 and 119 <= slow["min_ms"] <= p50


def test_shape_on_the_master_steps_the_workers_users(procs, server, tmp_path):
    (tmp_path / "locustfile.py").write_text(SHAPE)
    mport = free_port()
    m = py_master(procs, tmp_path, mport, server, ["--stop-timeout", "2"])
    w1 = py_worker(procs, tmp_path, mport, "w1.log")
    w2 = locust_worker(procs, tmp_path, mport)
    # no -t: the shape's None ends the test, the master quits its workers and exits
    assert m.wait(timeout=90) == 0, (tmp_path / "master.log").read_text()[-3000:]
    assert w1.wait(timeout=30) == 0 and w2.wait(timeout=30) == 0
    mout = (tmp_path / "master.log").read_text()
    assert mout.count("TEST_START MasterRunner") == 1 and mout.count("TEST_STOP MasterRunner") == 1
    ticks = []
    for line in mout.splitlines():
        if line.startswith("TICK "):
            _, t, users, counts = line.split(" ", 3)
            ticks.append((float(t), int(users), counts))
    # the workers' reported users, as the shape saw them: 2, then 4, then UserB only (a
    # worker's report may lag its spawn by one report: the step shows before its end)
    first = [u for t, u, _ in ticks if 2 <= t < 4]
    second = [u for t, u, _ in ticks if 5 <= t < 8]
    third = [c for t, _, c in ticks if 9 <= t < 12]
    assert first and first[-1] == 2 and max(first) == 2, ticks
    assert second and second[-1] == 4 and max(second) == 4, ticks
    assert third and third[-1] == "[('UserA', 0), ('UserB', 2)]", ticks
    assert max(t for t, _, _ in ticks) < 16, ticks  # it stopped at the shape's None
    assert "Shape test stopping" in mout
    # each worker ran its share: one user at the first step, two at the second
    assert "(1 total users)" in (tmp_path / "w1.log").read_text()
    assert "(2 total users)" in (tmp_path / "w1.log").read_text()
    hist = read_csv(tmp_path / "m_stats_history.csv")
    assert {"2", "4"} <= {r["User Count"] for r in hist}, [r["User Count"] for r in hist]
    stats = {(r["Type"], r["Name"]): r for r in read_csv(tmp_path / "m_stats.csv")}
    assert int(stats[("GET", "slow")]["Request Count"]) > 10


def test_locustfile_that_raises_on_the_master_is_a_clear_error(tmp_path):
    (tmp_path / "locustfile.py").write_text(USERS + "\nraise RuntimeError('no config here')\n")
    p = subprocess.run([binary("aiload"), "-f", "locustfile.py", "--master", "--headless",
                        "--master-bind-host", "127.0.0.1", "--master-bind-port", str(free_port())],
                       cwd=tmp_path, capture_output=True, timeout=30)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert "Traceback (most recent call last)" in err and "raise RuntimeError('no config here')" in err, err
    line = USERS.count("\n") + 2
    assert f"locustfile.py:{line}: RuntimeError: no config here" in err, err


def test_python_master_survives_bad_messages_and_gives_up_waiting(procs, tmp_path):
    (tmp_path / "locustfile.py").write_text(MESSAGES)
    mport = free_port()
    m = procs.start([binary("aiload"), "-f", "locustfile.py", "--master", "--headless", "-u", "1",
                     "-t", "3s", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(mport),
                     "--expect-workers", "1", "--expect-workers-max-wait", "5",
                     # the workers resolve the host, not the master (another network, maybe)
                     "-H", "http://no-such-host.invalid:1"], cwd=tmp_path)
    with raw_worker(mport, b"odd_worker") as s:
        s.send(msgpack.dumps(("client_ready", "1.4.3", "odd_worker")))
        s.send(msgpack.dumps(("client_ready", None, "odd_worker")))
        for raw in (b"\xc1", b"\xdd\xff\xff\xff\xff", msgpack.dumps(("stats", "x", "odd_worker")),
                    msgpack.dumps(("stats", {"stats": [{"name": 1}, 7]}, "odd_worker")),
                    msgpack.dumps(("heartbeat", [1, 2], "odd_worker")), b"\x91" * 50000,
                    msgpack.dumps(("exception", {"msg": 3}, "odd_worker")),
                    msgpack.dumps(("pong", {"x": 1}, "odd_worker")),
                    msgpack.dumps(("nobody_listens", None, "odd_worker"))):
            s.send(raw)
        s.send_multipart([b"a", b"b"])
        # a heartbeat from a worker it does not know: Locust's "reconnect"
        s.send(msgpack.dumps(("heartbeat", {"state": "ready"}, "odd_worker")))
        assert s.poll(10000), "no reconnect"
        got = []
        while s.poll(1500):
            got.append(msgpack.loads(s.recv(), raw=False)[0])
        # never an ack (refused), but the heartbeats' reconnect and the handler's answer
        assert set(got) == {"reconnect", "thanks"}, got
        out, err = m.communicate(timeout=30)
    err, out = err.decode(), out.decode()
    assert "runs Locust 1.4.3, but aiload speaks Locust 2.x's protocol" in err
    assert "pre 2.0" in err
    assert err.count("dropped a message from odd_worker") >= 3, err
    assert "malformed rows of a report dropped" in err
    assert "dropped an exception message" in err
    assert "dropped a malformed message" in err
    assert "ignoring message 'nobody_listens'" in err
    # the locustfile's handler ran for its own message type
    assert "MASTER GOT pong {'x': 1} from False" in out
    assert "gave up waiting for workers to connect: 0 of 1" in err
    assert m.returncode == 1
    assert "TEST_START" not in out and out.count("QUITTING MasterRunner") == 1


def test_master_port_in_use_is_a_clear_error(tmp_path):
    (tmp_path / "locustfile.py").write_text(USERS)
    with zmq.Context() as ctx:
        s = ctx.socket(zmq.ROUTER)
        port = s.bind_to_random_port("tcp://127.0.0.1")
        try:
            p = subprocess.run([binary("aiload"), "-f", "locustfile.py", "--master", "--headless",
                                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)],
                               cwd=tmp_path, capture_output=True, timeout=30)
        finally:
            s.close(linger=0)
    assert p.returncode == 2
    assert f"--master: cannot bind tcp://127.0.0.1:{port}" in p.stderr.decode()


def test_python_master_under_the_web_ui(procs, server, tmp_path):
    import signal

    from harness import post_form, wait_until

    (tmp_path / "locustfile.py").write_text(MESSAGES)
    mport, wport = free_port(), free_port()
    m = py_master_ui(procs, tmp_path, mport, wport, server)
    w = py_worker(procs, tmp_path, mport, "aiload.log")
    base = f"http://127.0.0.1:{wport}"
    stats = ui_stats(base)

    wait_until(lambda: "reported as ready" in (tmp_path / "master.log").read_text(), timeout=30)
    wait_until(lambda: stats()["worker_count"] == 1, timeout=30)
    (row,) = stats()["workers"]  # the Workers tab, as an ini master's
    assert row["index"] == 0 and row["state"] == "ready" and "_" in row["id"]
    st, _, _ = post_form(base + "/swarm", user_count="3", spawn_rate="30")
    assert st == 200
    wait_until(lambda: stats()["user_count"] == 3, timeout=30)
    wait_until(lambda: stats()["workers"][0]["user_count"] == 3, timeout=30)
    wait_until(lambda: stats()["total_rps"] > 0 or any(
        r["num_requests"] for r in stats()["stats"]), timeout=30)
    with urllib.request.urlopen(base + "/stop", timeout=30) as r:
        assert r.status == 200
    wait_until(lambda: stats()["state"] == "stopped", timeout=30)
    m.send_signal(signal.SIGTERM)
    assert m.wait(timeout=60) == 0, (tmp_path / "master.log").read_text()[-3000:]
    assert w.wait(timeout=30) == 0
    mout = (tmp_path / "master.log").read_text()
    assert mout.count("TEST_START MasterRunner") == 1 and mout.count("TEST_STOP MasterRunner") == 1
    assert "WORKER GOT ping" in (tmp_path / "aiload.log").read_text()


def test_shape_on_a_python_master_under_the_web_ui(procs, server, tmp_path):
    """The web UI's Start runs the master's LoadTestShape on the workers; its end
    stops the test and leaves the UI (and the workers) up for the next one."""
    import json

    from harness import post_form, wait_until

    (tmp_path / "locustfile.py").write_text(SHAPE)
    mport, wport = free_port(), free_port()
    m = py_master_ui(procs, tmp_path, mport, wport, server)
    py_worker(procs, tmp_path, mport, "w1.log")
    base = f"http://127.0.0.1:{wport}"
    stats = ui_stats(base)

    wait_until(lambda: stats()["worker_count"] == 1, timeout=30)
    with urllib.request.urlopen(base + "/defaults", timeout=10) as r:
        assert json.loads(r.read())["shape"] == "Steps"
    st, _, body = post_form(base + "/swarm", host=f"http://127.0.0.1:{server}")
    assert st == 200, body
    wait_until(lambda: stats()["user_count"] == 2, timeout=30, what="the first step")
    wait_until(lambda: stats()["user_count"] == 4, timeout=30, what="the second step")
    wait_until(lambda: stats()["state"] == "stopped", timeout=30, what="the shape's end")
    assert m.poll() is None, (tmp_path / "master.log").read_text()[-3000:]
    assert stats()["worker_count"] == 1, "the workers stay for the next test"
    mout = (tmp_path / "master.log").read_text()
    assert "Shape test stopping" in mout and mout.count("TEST_STOP MasterRunner") == 1


def test_processes_under_the_web_ui_run_a_local_master_and_its_workers(procs, server, tmp_path):
    """--processes 2 without --headless: a master on loopback with two copies of the
    command line as its workers (the Workers tab lists them); Start splits the users,
    Stop counts every request they made, and a signal ends the children too."""
    import signal

    from harness import post_form, wait_port, wait_until

    (tmp_path / "locustfile.py").write_text(MESSAGES)
    wport = free_port()
    m = start_logged(procs, [binary("aiload"), "-f", "locustfile.py", "--processes", "2", "--web-port",
                             str(wport), "-H", f"http://127.0.0.1:{server}"], tmp_path, "master.log")
    wait_port(wport, proc=m, timeout=60)
    base = f"http://127.0.0.1:{wport}"
    stats = ui_stats(base)
    assert stats()["worker_count"] == 2, "the UI opens once the local workers are connected"
    kids = [int(p) for t in os.listdir(f"/proc/{m.pid}/task")
            for p in open(f"/proc/{m.pid}/task/{t}/children").read().split()]
    assert len(kids) == 2
    st, _, body = post_form(base + "/swarm", user_count="4", spawn_rate="40")
    assert st == 200, body
    wait_until(lambda: sorted(w["user_count"] for w in stats()["workers"]) == [2, 2], timeout=30,
               what="two users on each worker")
    wait_until(lambda: sum(r["num_requests"] for r in stats()["stats"] if r["name"] != "Aggregated") >= 20,
               timeout=30, what="requests")
    with urllib.request.urlopen(base + "/stop", timeout=30) as r:
        assert r.status == 200
    wait_until(lambda: stats()["state"] == "stopped", timeout=30)
    got = {r["name"]: r["num_requests"] for r in stats()["stats"] if r["name"] != "Aggregated"}
    seen = server_count(server)["paths"]
    assert got == {"/hello": seen["/hello"], "slow": seen.get("/delay/0.12", 0)}, (got, seen)
    m.send_signal(signal.SIGTERM)
    assert m.wait(timeout=60) == 0, (tmp_path / "master.log").read_text()[-3000:]
    wait_until(lambda: not any(os.path.exists(f"/proc/{k}") and open(f"/proc/{k}/stat").read().split()[2] != "Z"
                               for k in kids), timeout=10, what="the workers' exit")
    out = (tmp_path / "master.log").read_text()
    assert "2 local worker processes for the web UI" in out
    assert out.count("INIT MasterRunner") == 1 and out.count("INIT WorkerRunner") == 2, out[-3000:]
    assert out.count("TEST_START MasterRunner") == 1 and out.count("TEST_STOP MasterRunner") == 1


REBALANCE = USERS + """
import gevent

@events.init.add_listener
def on_init(environment, runner, **kw):
    if isinstance(runner, MasterRunner):
        def watch():
            while True:
                gevent.sleep(0.5)
                say("WORKERS", sorted((w.index, w.state, w.user_count) for w in runner.clients.values()))
        gevent.spawn(watch)
"""


def test_python_master_rebalances_when_workers_come_and_go(procs, server, tmp_path):
    import ast
    import signal

    (tmp_path / "locustfile.py").write_text(REBALANCE)
    mport = free_port()
    m = start_logged(procs, [binary("aiload"), "-f", "locustfile.py", "--master", "--headless",
                             "--master-bind-host", "127.0.0.1", "--master-bind-port", str(mport),
                             "-H", f"http://127.0.0.1:{server}", "-u", "4", "-r", "100", "-t", "40s",
                             "--enable-rebalancing"], tmp_path, "master.log")
    w1 = py_worker(procs, tmp_path, mport, "w1.log")

    def workers():
        rows = [ast.literal_eval(line[len("WORKERS "):]) for line in
                (tmp_path / "master.log").read_text().splitlines() if line.startswith("WORKERS ")]
        return rows[-1] if rows else []

    def until(want, timeout=40):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if workers() == want:
                return
            time.sleep(0.2)
        raise AssertionError(f"workers {workers()}, wanted {want}")

    until([(0, "running", 4)])
    w2 = locust_worker(procs, tmp_path, mport)  # joins mid-run: gets half
    until([(0, "running", 2), (1, "running", 2)])
    w2.send_signal(signal.SIGKILL)  # no quit, no heartbeat: missing after 3 s, its share moves
    until([(0, "running", 4), (1, "missing", 0)])
    m.send_signal(signal.SIGINT)
    assert m.wait(timeout=60) == 0, (tmp_path / "master.log").read_text()[-3000:]
    assert w1.wait(timeout=30) == 0
    mout = (tmp_path / "master.log").read_text()
    assert "failed to send heartbeat, setting state to missing" in mout
