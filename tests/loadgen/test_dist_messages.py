"""aiload's distributed mode beyond load: the workers' exceptions in the
master's Exceptions table (console, CSV, JSON, HTML, web UI), the master's
stop_timeout and parsed_options in spawn, and an aiload worker honouring that
stop_timeout. Real Locust 2.12 (Debian's python3-locust) on the other side;
loopback only, bounded in time."""
import csv
import json
import time
import urllib.request

import msgpack
import pytest
import zmq

from harness import binary, free_port, wait_port
from distkit import PY, SCENARIO, server  # noqa: F401 (server: a fixture)
from test_dist_worker import FakeMaster

RAISING_LOCUSTFILE = """
from locust import HttpUser, task, constant
class UserA(HttpUser):
    wait_time = constant(0.05)
    @task
    def t(self):
        self.client.get("/hello")
        raise ValueError("boom from the task")
class UserB(HttpUser):
    wait_time = constant(0.05)
    @task
    def t(self):
        self.client.get("/delay/0.12", name="slow")
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    (tmp_path / "locustfile.py").write_text(RAISING_LOCUSTFILE)
    return tmp_path


def master_cmd(mport, server, extra=()):
    return [binary("aiload"), "-f", "sc.ini", "--master", "--master-bind-host", "127.0.0.1",
            "--master-bind-port", str(mport), "-H", f"http://127.0.0.1:{server}", "-u", "4",
            "-r", "4", *extra]


def locust_worker(procs, cwd, mport):
    # its log holds a traceback per raise: to a file, as a full pipe would stall it
    log = open(cwd / "worker.log", "wb")
    return procs.start([PY, "-m", "locust", "-f", "locustfile.py", "--worker", "--master-host",
                        "127.0.0.1", "--master-port", str(mport)], cwd=cwd, stdout=log,
                       stderr=log)


def test_locust_worker_exceptions_reach_every_master_output(procs, server, files):
    mport = free_port()
    master = procs.start(master_cmd(mport, server, ["--headless", "-t", "5s", "--expect-workers",
                                                    "1", "--csv", "m", "--json", "m.json",
                                                    "--html", "m.html"]), cwd=files)
    w = locust_worker(procs, files, mport)
    out, err = master.communicate(timeout=60)
    out, err = out.decode(), err.decode()
    assert master.returncode == 0, err
    assert w.wait(timeout=20) == 0
    with open(files / "m_exceptions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1, rows
    row = rows[0]
    # one row per (msg, traceback), counted, with the node that raised
    assert row["Message"] == "boom from the task"
    assert "locustfile.py" in row["Traceback"] and "raise ValueError" in row["Traceback"]
    assert int(row["Count"]) > 5
    node = row["Nodes"]
    assert node and "," not in node
    summary = json.loads((files / "m.json").read_text())
    assert summary["exceptions"] == [{"count": int(row["Count"]), "msg": row["Message"],
                                      "traceback": row["Traceback"], "nodes": node}]
    html = (files / "m.html").read_text()
    assert "boom from the task" in html and 'id="exceptions"' in html
    assert "Exceptions (from the workers)" in out and "boom from the task" in out
    # every raise is counted: the CSV's /hello count is the exceptions' count
    # give or take the requests in flight at the stop
    with open(files / "m_stats.csv", newline="") as f:
        hello = [r for r in csv.DictReader(f) if r["Name"] == "/hello"][0]
    assert abs(int(hello["Request Count"]) - int(row["Count"])) <= 4


def test_web_ui_exceptions_tab_lists_worker_exceptions(procs, server, files):
    mport, wport = free_port(), free_port()
    master = procs.start(master_cmd(mport, server, ["--web-port", str(wport), "--autostart",
                                                    "--expect-workers", "1"]), cwd=files)
    locust_worker(procs, files, mport)  # --autostart: the UI comes once it is connected
    wait_port(wport, timeout=30, proc=master)
    base = f"http://127.0.0.1:{wport}"
    deadline = time.monotonic() + 30
    exc = []
    while not exc and time.monotonic() < deadline:
        time.sleep(0.5)
        with urllib.request.urlopen(base + "/exceptions", timeout=5) as r:
            exc = json.loads(r.read())["exceptions"]
    assert exc and exc[0]["msg"] == "boom from the task" and exc[0]["count"] >= 1
    assert "raise ValueError" in exc[0]["traceback"] and exc[0]["nodes"]
    with urllib.request.urlopen(base + "/exceptions/csv", timeout=5) as r:
        assert "boom from the task" in r.read().decode()


def test_master_sends_stop_timeout_and_parsed_options(procs, server, files):
    mport = free_port()
    master = procs.start(master_cmd(mport, server, ["--headless", "-t", "3s", "--expect-workers",
                                                    "1", "--stop-timeout", "7", "-E",
                                                    "zzz"]), cwd=files)
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.IDENTITY, b"fake_worker")
    s.connect(f"tcp://127.0.0.1:{mport}")
    try:
        s.send(msgpack.dumps(("client_ready", "2.12.1", "fake_worker")))
        spawn = None
        deadline = time.monotonic() + 20
        while spawn is None and time.monotonic() < deadline:
            s.send(msgpack.dumps(("heartbeat", {"state": "ready", "current_cpu_usage": 1.0,
                                                "current_memory_usage": 1}, "fake_worker")))
            if s.poll(500):
                t, data, _ = msgpack.loads(s.recv(), raw=False)
                if t == "spawn":
                    spawn = data
        assert spawn is not None
        # a custom message type and an exception without a msg string: logged, dropped
        s.send(msgpack.dumps(("my_custom", {"x": 1}, "fake_worker")))
        s.send(msgpack.dumps(("exception", {"msg": 5}, "fake_worker")))
        s.send(msgpack.dumps(("exception", {"msg": "fake", "traceback": "tb"}, "fake_worker")))
        s.send(msgpack.dumps(("quit", None, "fake_worker")))
        out, err = master.communicate(timeout=30)
    finally:
        s.close(linger=0)
        ctx.term()
    assert spawn["stop_timeout"] == 7.0
    po = spawn["parsed_options"]
    assert po["num_users"] == 4 and po["spawn_rate"] == 4.0 and po["run_time"] == 3
    assert po["host"] == f"http://127.0.0.1:{server}" and po["locustfile"] == "sc.ini"
    assert po["tags"] is None and po["exclude_tags"] == ["zzz"] and po["stop_timeout"] == 7.0
    err = err.decode()
    assert "ignoring message 'my_custom'" in err
    assert "dropped an exception message from fake_worker" in err
    assert "exception on worker fake_worker: fake" in err


SLOW_SCENARIO = """
[user UserA]
wait_time = constant(0)
[task UserA]
name = slow
path = /delay/6
"""


@pytest.mark.parametrize("master_timeout,bound", [(1.0, (0.5, 4.5)), (None, (5.0, 12.0))])
def test_worker_honours_the_masters_stop_timeout(procs, server, tmp_path, master_timeout, bound):
    (tmp_path / "sc.ini").write_text(SLOW_SCENARIO)
    m = FakeMaster()
    try:
        w = procs.start([binary("aiload"), "-f", "sc.ini", "--worker", "--master-port",
                         str(m.port), "--threads", "1", "--stop-timeout", "30"], cwd=tmp_path)
        ident, _, _, _ = m.recv(want="client_ready", timeout=20)
        m.send(ident, "ack", {"index": 0})
        m.send(ident, "spawn", {"timestamp": time.time(), "user_classes_count": {"UserA": 2},
                                "host": f"http://127.0.0.1:{server}",
                                "stop_timeout": master_timeout, "parsed_options": {}})
        m.recv(want="spawning_complete", timeout=20)
        time.sleep(1)  # both users wait on a 6 s response
        t0 = time.monotonic()
        m.send(ident, "stop", None)
        m.recv(want="client_stopped", timeout=40)
        took = time.monotonic() - t0
        m.send(ident, "quit", None)
        assert w.wait(timeout=20) == 0
    finally:
        m.close()
    # 1 s: the master's; None: the worker keeps its own 30 s, so the requests
    # in flight (about 5 s left) complete
    assert bound[0] <= took <= bound[1], took
