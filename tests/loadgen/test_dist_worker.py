"""aiload as a Locust 2.x worker (loadgen/dist/worker.c): a real Locust 2.12
master (Debian's python3-locust) drives aiload workers over ZeroMQ + msgpack,
and a scripted master (pyzmq + msgpack, Locust's wire format) sends the
worker malformed, oversized and unexpected messages. Everything on loopback,
bounded in time."""
import csv
import os
import subprocess
import time

import msgpack
import pytest
import zmq

from harness import binary, free_port
from distkit import LOCUSTFILE, SCENARIO, server, server_count  # noqa: F401 (server: a fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"



def read_csv(path):
    with open(path, newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def test_locust_master_drives_aiload_workers(procs, server, tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    mport = free_port()
    master = procs.start(
        [PY, "-m", "locust", "-f", "locustfile.py", "--master", "--headless", "-u", "6", "-r", "6",
         "-t", "8s", "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", str(mport), "-H", f"http://127.0.0.1:{server}", "--csv", "m"],
        cwd=tmp_path)
    workers = [
        procs.start([binary("aiload"), "-f", "sc.ini", "--worker", "--master-host", "127.0.0.1",
                     "--master-port", str(mport), "--threads", "1"], cwd=tmp_path)
        for _ in range(2)
    ]
    try:
        out, err = master.communicate(timeout=50)
    except subprocess.TimeoutExpired:
        pytest.fail("the Locust master did not finish")
    logs = []
    for w in workers:
        wout, werr = w.communicate(timeout=20)
        logs.append(werr.decode())
        assert w.returncode == 0, werr.decode()
    err = err.decode()
    assert master.returncode == 0, err
    assert err.count("reported as ready") >= 2, err
    for log in logs:
        assert "connected to the master as worker" in log
        assert "the master said quit" in log

    rows = read_csv(tmp_path / "m_stats.csv")
    hello, slow, agg = rows[("GET", "/hello")], rows[("GET", "slow")], rows[("", "Aggregated")]
    served = server_count(server)["paths"]
    # every request the workers sent reached the master's statistics, exactly
    assert int(hello["Request Count"]) == served.get("/hello", 0) > 20
    assert int(slow["Request Count"]) == served.get("/delay/0.12", 0) > 10
    assert int(agg["Request Count"]) == int(hello["Request Count"]) + int(slow["Request Count"])
    assert int(agg["Failure Count"]) == 0
    # Locust's rounded buckets: 120 ms delays land in the 120-130 ms buckets
    for col in ("50%", "90%"):
        assert 110 <= float(slow[col]) <= 200, slow
    assert float(hello["50%"]) < 50, hello
    assert 110 <= float(slow["Average Response Time"]) <= 200


class FakeMaster:
    """A ROUTER socket speaking Locust's wire format, for scripted exchanges."""

    def __init__(self):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")

    def recv(self, timeout=10.0, want=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sock.poll(100):
                ident, data = self.sock.recv_multipart()
                mtype, mdata, node = msgpack.loads(data, raw=False, strict_map_key=False)
                if want is None or mtype == want:
                    return ident, mtype, mdata, node
        raise TimeoutError(f"no {want or 'message'} from the worker")

    def send(self, ident, mtype, data):
        self.sock.send_multipart([ident, msgpack.dumps((mtype, data, ident.decode()))])

    def send_raw(self, ident, raw):
        self.sock.send_multipart([ident, raw])

    def close(self):
        self.sock.close(linger=0)
        self.ctx.term()


@pytest.fixture
def fake_master():
    m = FakeMaster()
    yield m
    m.close()


def spawn(ident, users, host, ts):
    return {"timestamp": ts, "user_classes_count": users, "host": host, "stop_timeout": None,
            "parsed_options": {}}


def test_worker_survives_bad_messages_and_reports(procs, server, fake_master, tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    w = procs.start([binary("aiload"), "-f", "sc.ini", "--worker", "--master-port",
                     str(fake_master.port), "--threads", "1"], cwd=tmp_path)
    ident, mtype, data, node = fake_master.recv(want="client_ready")
    assert data == "2.12.1" and node == ident.decode()
    fake_master.send(ident, "ack", {"index": 0})
    # malformed: not msgpack, truncated, a lying array header, extra data,
    # wrong shape, deep nesting, a 2 MiB message, a multi-part message
    bad = [b"\xc1", b"\x93\xa5spawn", b"\xdd\xff\xff\xff\xff", msgpack.dumps(("ack", None, "x")) + b"\x00",
           msgpack.dumps({"type": "spawn"}), msgpack.dumps((1, 2, 3)),
           b"\x91" * 100000 + b"\xc0", msgpack.dumps(("spawn", "x" * (2 << 20), "n")),
           msgpack.dumps(("spawn", {"timestamp": "soon"}, "n")),
           msgpack.dumps(("spawn", {"timestamp": 1.0, "user_classes_count": {"UserA": -5}}, "n"))]
    for raw in bad:
        fake_master.send_raw(ident, raw)
    fake_master.sock.send_multipart([ident, b"a", b"b"])
    fake_master.send(ident, "my_custom_message", {"x": 1})
    # still alive: heartbeats keep coming, then a real spawn works
    _, _, hb, _ = fake_master.recv(want="heartbeat")
    assert hb["state"] == "ready" and "current_cpu_usage" in hb
    assert w.poll() is None
    fake_master.send(ident, "spawn", spawn(ident, {"UserA": 2, "UserB": 0, "Nope": 3},
                                           f"http://127.0.0.1:{server}", time.time()))
    fake_master.recv(want="spawning")
    # the bad spawns above may have left their own exception messages first
    _, _, exc, _ = fake_master.recv(want="exception")
    while "bad user count" in exc["msg"]:
        _, _, exc, _ = fake_master.recv(want="exception")
    assert "Nope" in exc["msg"]
    _, _, done, _ = fake_master.recv(want="spawning_complete")
    assert done == {"user_classes_count": {"UserA": 2, "UserB": 0}, "user_count": 2}
    total = 0
    deadline = time.monotonic() + 20
    while total < 20 and time.monotonic() < deadline:
        _, _, st, _ = fake_master.recv(want="stats")
        total += st["stats_total"]["num_requests"]
        if st["stats"]:
            e = st["stats"][0]
            assert (e["method"], e["name"]) == ("GET", "/hello")
            assert sum(e["response_times"].values()) == e["num_requests"]
            assert sum(c for _, c in e["aiload_hist"]) == e["num_requests"]
            assert sum(e["num_reqs_per_sec"].values()) == e["num_requests"]
    assert total >= 20
    fake_master.send(ident, "stop", None)
    fake_master.recv(want="client_stopped", timeout=15)
    fake_master.recv(want="client_ready")
    fake_master.send(ident, "quit", None)
    fake_master.recv(want="quit", timeout=15)
    assert w.wait(timeout=15) == 0
    err = w.stderr.read().decode()
    assert err.count("dropped") >= len(bad), err
    assert "ignoring message 'my_custom_message'" in err


def test_worker_without_a_master_stops_on_sigterm(procs, tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    port = free_port()  # nothing listens: client_ready is never answered
    w = procs.start([binary("aiload"), "-f", "sc.ini", "--worker", "--master-port", str(port),
                     "--threads", "1"], cwd=tmp_path)
    # like Locust's worker it retries (60 x 5 s); a signal ends it cleanly meanwhile
    time.sleep(1.0)
    w.terminate()
    assert w.wait(timeout=15) == 0


def test_bad_master_port_is_a_command_line_error(tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    p = subprocess.run([binary("aiload"), "-f", "sc.ini", "--worker", "--master-port", "70000"],
                       cwd=tmp_path, capture_output=True, timeout=10)
    assert p.returncode == 2
    assert b"--master-port must be a port number" in p.stderr


def test_locust_environment_variables_make_a_worker(procs, fake_master, tmp_path):
    """Locust's Helm chart style: LOCUST_MODE_WORKER and LOCUST_MASTER_NODE_*."""
    (tmp_path / "sc.ini").write_text(SCENARIO)
    env = {**os.environ, "LOCUST_MODE_WORKER": "true", "LOCUST_MASTER_NODE_HOST": "127.0.0.1",
           "LOCUST_MASTER_NODE_PORT": str(fake_master.port), "LOCUST_LOCUSTFILE": "sc.ini"}
    w = procs.start([binary("aiload"), "--threads", "1"], cwd=tmp_path, env=env)
    ident, mtype, data, node = fake_master.recv(want="client_ready")
    assert data == "2.12.1"
    fake_master.send(ident, "ack", {"index": 0})
    fake_master.send(ident, "quit", None)
    fake_master.recv(want="quit", timeout=15)
    assert w.wait(timeout=15) == 0


def test_master_tags_that_leave_nothing_or_are_not_a_list(procs, server, fake_master, tmp_path):
    """The master's tags replace the worker's own at a new test (Locust's rule); tags that
    leave no task are an exception to the master and start nothing, a malformed list is
    reported and the worker's own filter stays."""
    (tmp_path / "sc.ini").write_text(SCENARIO)
    w = procs.start([binary("aiload"), "-f", "sc.ini", "--worker", "--master-port",
                     str(fake_master.port), "--threads", "1"], cwd=tmp_path)
    ident, _, _, _ = fake_master.recv(want="client_ready")
    fake_master.send(ident, "ack", {"index": 0})
    host = f"http://127.0.0.1:{server}"
    msg = spawn(ident, {"UserA": 1}, host, time.time())
    msg["parsed_options"] = {"tags": ["nope"], "exclude_tags": None}
    fake_master.send(ident, "spawn", msg)
    _, _, exc, _ = fake_master.recv(want="exception")
    assert "the master's tags leave nothing to run here" in exc["msg"], exc
    assert "nope" in exc["msg"], exc
    msg = spawn(ident, {"UserA": 1}, host, time.time() + 1)
    msg["parsed_options"] = {"tags": 5}
    fake_master.send(ident, "spawn", msg)
    _, _, exc, _ = fake_master.recv(want="exception")
    assert "not a list of strings" in exc["msg"], exc
    _, _, done, _ = fake_master.recv(want="spawning_complete")
    assert done["user_count"] == 1
    fake_master.send(ident, "quit", None)
    fake_master.recv(want="quit", timeout=15)
    assert w.wait(timeout=15) == 0
