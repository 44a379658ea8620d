"""A Python locustfile as a distributed worker (aiload -f x.py --worker,
loadgen/py/locust/_worker.py): driven by a real Locust 2.12 master (Debian's
python3-locust) and by an aiload master, its requests counted there, its
users' exceptions in the master's Exceptions table, and custom messages
(runner.register_message / send_message) exchanged both ways with Locust.
Loopback only, bounded in time."""
import csv
import time

from harness import binary, free_port
from distkit import PY, SCENARIO, server, server_count  # noqa: F401 (server: a fixture)

LOCUSTFILE = """
from locust import HttpUser, task, constant, events
from locust.runners import MasterRunner, WorkerRunner

class UserA(HttpUser):
    wait_time = constant(0.05)
    @task
    def t(self):
        self.client.get("/hello")
        raise ValueError("boom from a python worker")

class UserB(HttpUser):
    wait_time = constant(0.05)
    @task
    def t(self):
        self.client.get("/delay/0.12", name="slow")

@events.init_command_line_parser.add_listener
def add_args(parser):
    parser.add_argument("--my-arg", default="worker default")

def on_ping(environment, msg, **kw):
    print("WORKER GOT", msg.type, msg.data, flush=True)
    environment.runner.send_message("pong", {"back": msg.data, "po": environment.parsed_options.my_arg})

def on_pong(environment, msg, **kw):
    print("MASTER GOT", msg.type, msg.data, flush=True)

@events.init.add_listener
def on_init(environment, **kw):
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message("ping", on_ping)
    else:
        environment.runner.register_message("pong", on_pong)

@events.spawning_complete.add_listener
def on_spawned(user_count, **kw):  # after the spawn: the worker has the parsed_options
    runner = MASTER[0]
    if isinstance(runner, MasterRunner):
        runner.send_message("ping", {"n": 1})

MASTER = []

@events.init.add_listener
def keep(environment, **kw):
    MASTER.append(environment.runner)
"""


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def py_worker(procs, cwd, mport):
    log = open(cwd / "worker.log", "wb")  # a traceback per raise: a full pipe would stall it
    return procs.start([binary("aiload"), "-f", "locustfile.py", "--worker", "--master-host",
                        "127.0.0.1", "--master-port", str(mport)], cwd=cwd, stdout=log, stderr=log)


def test_locust_master_drives_a_python_worker(procs, server, tmp_path):
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    mport = free_port()
    mlog = open(tmp_path / "master.log", "wb")
    m = procs.start([PY, "-m", "locust", "-f", "locustfile.py", "--master", "--master-bind-host",
                     "127.0.0.1", "--master-bind-port", str(mport), "--headless", "-u", "4", "-r",
                     "4", "-t", "6s", "-H", f"http://127.0.0.1:{server}", "--expect-workers", "1",
                     "--csv", "lm", "--my-arg", "from the master"], cwd=tmp_path, stdout=mlog, stderr=mlog)
    w = py_worker(procs, tmp_path, mport)
    m.wait(timeout=60)
    assert w.wait(timeout=30) == 0
    mout = (tmp_path / "master.log").read_text()
    wout = (tmp_path / "worker.log").read_text()
    # the custom message went there and back
    assert "WORKER GOT ping {'n': 1}" in wout, wout[-3000:]
    # ... with the master's custom argument forwarded in parsed_options
    assert "MASTER GOT pong {'back': {'n': 1}, 'po': 'from the master'}" in mout, mout[-3000:]
    stats = {(r["Type"], r["Name"]): r for r in read_csv(tmp_path / "lm_stats.csv")}
    seen = server_count(server)["paths"]
    hello, slow = int(stats[("GET", "/hello")]["Request Count"]), int(stats[("GET", "slow")]["Request Count"])
    assert hello > 20 and slow > 10
    # the worker reports every request it recorded; Locust's master stops
    # listening 0.5 s after quit, so requests in flight then may be missing
    assert 0 <= seen["/hello"] - hello <= 3 and 0 <= seen["/delay/0.12"] - slow <= 3
    assert int(stats[("", "Aggregated")]["Failure Count"]) == 0
    exc = read_csv(tmp_path / "lm_exceptions.csv")
    assert len(exc) == 1 and exc[0]["Message"] == "boom from a python worker", exc
    assert int(exc[0]["Count"]) >= hello - 3
    assert "raise ValueError" in exc[0]["Traceback"]


def test_aiload_master_lists_a_python_workers_exceptions(procs, server, tmp_path):
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    (tmp_path / "sc.ini").write_text(SCENARIO)
    mport = free_port()
    m = procs.start([binary("aiload"), "-f", "sc.ini", "--master", "--headless", "-u", "4", "-r",
                     "4", "-t", "6s", "--expect-workers", "1", "--master-bind-host", "127.0.0.1",
                     "--master-bind-port", str(mport), "-H", f"http://127.0.0.1:{server}",
                     "--csv", "m", "--stop-timeout", "3"], cwd=tmp_path)
    w = py_worker(procs, tmp_path, mport)
    out, err = m.communicate(timeout=60)
    err = err.decode()
    assert m.returncode == 0, err
    assert w.wait(timeout=30) == 0
    stats = {(r["Type"], r["Name"]): r for r in read_csv(tmp_path / "m_stats.csv")}
    seen = server_count(server)["paths"]
    # the aiload master waits for the worker's last report: every request counted
    assert int(stats[("GET", "/hello")]["Request Count"]) == seen["/hello"] > 20
    assert int(stats[("GET", "slow")]["Request Count"]) == seen["/delay/0.12"] > 10
    exc = read_csv(tmp_path / "m_exceptions.csv")
    assert len(exc) == 1 and exc[0]["Message"] == "boom from a python worker", exc
    assert "locustfile.py" in exc[0]["Traceback"] and exc[0]["Nodes"]
    assert abs(int(exc[0]["Count"]) - seen["/hello"]) <= 4
    # an ini scenario has no handlers: the worker's custom message is logged and dropped
    # (the worker sends pong only when pinged, so here: the worker said nothing)
    assert "Exceptions (from the workers)" in out.decode()


def test_python_locustfile_master_and_worker_together_is_refused(tmp_path):
    import subprocess

    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    for extra, text in ((["--worker"], b"--master and --worker: give one"),
                        (["--processes", "2"], b"--master and --processes")):
        p = subprocess.run([binary("aiload"), "-f", "locustfile.py", "--master", "--headless", "-t",
                            "1s", *extra], cwd=tmp_path, capture_output=True, timeout=30)
        assert p.returncode == 2 and text in p.stderr, p.stderr


def test_python_worker_survives_bad_messages(procs, server, tmp_path):
    import msgpack

    from test_dist_worker import FakeMaster

    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    m = FakeMaster()
    try:
        w = procs.start([binary("aiload"), "-f", "locustfile.py", "--worker", "--master-port",
                         str(m.port)], cwd=tmp_path)
        ident, _, data, _ = m.recv(want="client_ready", timeout=30)
        assert data == "2.12.1"
        m.send(ident, "ack", {"index": 0})
        for raw in [b"\xc1", b"\x93\xa5spawn", b"\xdd\xff\xff\xff\xff", msgpack.dumps({"type": 1}),
                    msgpack.dumps((1, 2, 3)), msgpack.dumps(("spawn", {"timestamp": "soon"}, "n")),
                    msgpack.dumps(("spawn", {"timestamp": 1.0, "user_classes_count": {"UserA": -5}},
                                   "n"))]:
            m.send_raw(ident, raw)
        m.sock.send_multipart([ident, b"a", b"b"])
        m.send(ident, "nobody_listens", {"x": 1})
        _, _, hb, _ = m.recv(want="heartbeat")
        assert hb["state"] == "ready" and w.poll() is None
        m.send(ident, "spawn", {"timestamp": time.time(), "user_classes_count": {"UserA": 0,
                                "UserB": 2, "Nope": 1}, "host": f"http://127.0.0.1:{server}",
                                "stop_timeout": None, "parsed_options": {}})
        _, _, exc, _ = m.recv(want="exception")
        while "Nope" not in exc["msg"]:
            _, _, exc, _ = m.recv(want="exception")
        _, _, done, _ = m.recv(want="spawning_complete")
        assert done == {"user_classes_count": {"UserA": 0, "UserB": 2}, "user_count": 2}
        total = 0
        deadline = time.monotonic() + 20
        while total < 10 and time.monotonic() < deadline:
            _, _, st, _ = m.recv(want="stats")
            total += st["stats_total"]["num_requests"]
            for e in st["stats"]:
                assert (e["method"], e["name"]) == ("GET", "slow")
                assert sum(e["response_times"].values()) == e["num_requests"]
                assert sum(e["num_reqs_per_sec"].values()) == e["num_requests"]
                assert 120 <= e["min_response_time"] <= e["max_response_time"] < 1000
        assert total >= 10
        m.send(ident, "stop", None)
        m.recv(want="client_stopped", timeout=20)
        m.recv(want="client_ready")
        m.send(ident, "quit", None)
        m.recv(want="quit", timeout=20)
        assert w.wait(timeout=20) == 0
    finally:
        m.close()
    err = w.stderr.read().decode()
    assert err.count("dropped a message from the master") >= 5, err
    assert "dropped a multi-part message" in err
    assert "ignoring message 'nobody_listens'" in err
