"""aiload as a Locust 2.x master (loadgen/dist/master.c): it drives real
Locust 2.12 workers (Debian's python3-locust) mixed with aiload workers,
merges their statistics into its own CSV, refuses a worker of another
protocol version with a clear message, and keeps Locust's missing-worker and
late-joiner rules. Loopback only, bounded in time."""
import csv
import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import msgpack
import pytest

from harness import binary, free_port, wait_port
from distkit import LOCUSTFILE, SCENARIO, raw_worker, server, server_count  # noqa: F401 (server: a fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"



def read_csv(path):
    with open(path, newline="") as f:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}


def aiload_worker(procs, cwd, mport):
    return procs.start([binary("aiload"), "-f", "sc.ini", "--worker", "--master-host", "127.0.0.1",
                        "--master-port", str(mport), "--threads", "1"], cwd=cwd)


def locust_worker(procs, cwd, mport):
    return procs.start([PY, "-m", "locust", "-f", "locustfile.py", "--worker", "--master-host",
                        "127.0.0.1", "--master-port", str(mport)], cwd=cwd)


def master_cmd(mport, server, users, run_time, workers, extra=()):
    return [binary("aiload"), "-f", "sc.ini", "--master", "--headless", "-u", str(users), "-r",
            str(users), "-t", run_time, "--expect-workers", str(workers), "--master-bind-host",
            "127.0.0.1", "--master-bind-port", str(mport), "-H", f"http://127.0.0.1:{server}",
            "--csv", "m", "--json", "m.json", *extra]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    return tmp_path


def test_aiload_master_drives_locust_and_aiload_workers(procs, server, files):
    mport = free_port()
    master = procs.start(master_cmd(mport, server, 8, "8s", 3), cwd=files)
    ws = [aiload_worker(procs, files, mport), aiload_worker(procs, files, mport),
          locust_worker(procs, files, mport)]
    out, err = master.communicate(timeout=50)
    err = err.decode()
    assert master.returncode == 0, err
    assert "3 workers connected; starting" in err
    for w in ws:
        assert w.wait(timeout=20) == 0
    rows = read_csv(files / "m_stats.csv")
    hello, slow, agg = rows[("GET", "/hello")], rows[("GET", "slow")], rows[("", "Aggregated")]
    seen = server_count(server)["paths"]
    # the Locust worker kills its users at stop: requests it had in flight are
    # never recorded by Locust itself (at most its UserB users, 120 ms each)
    assert 0 <= seen["/hello"] - int(hello["Request Count"]) <= 3
    assert 0 <= seen["/delay/0.12"] - int(slow["Request Count"]) <= 3
    assert int(hello["Request Count"]) > 50 and int(slow["Request Count"]) > 20
    assert int(agg["Request Count"]) == int(hello["Request Count"]) + int(slow["Request Count"])
    assert int(agg["Failure Count"]) == 0
    assert 110 <= float(slow["50%"]) <= 200
    summary = json.loads((files / "m.json").read_text())
    assert sum(e["num_requests"] for e in summary["entries"]) == int(agg["Request Count"])


def test_all_aiload_run_is_exact(procs, server, files):
    mport = free_port()
    master = procs.start(master_cmd(mport, server, 6, "6s", 2), cwd=files)
    ws = [aiload_worker(procs, files, mport) for _ in range(2)]
    out, err = master.communicate(timeout=50)
    assert master.returncode == 0, err.decode()
    for w in ws:
        assert w.wait(timeout=20) == 0
    rows = read_csv(files / "m_stats.csv")
    seen = server_count(server)["paths"]
    # every request sent is counted once: the CSV equals the server's count
    assert int(rows[("GET", "/hello")]["Request Count"]) == seen["/hello"]
    assert int(rows[("GET", "slow")]["Request Count"]) == seen["/delay/0.12"]
    # full-precision histograms travel between aiload processes: the JSON's
    # percentiles keep sub-millisecond digits where Locust's buckets would
    # give exactly 120 or 130
    summary = json.loads((files / "m.json").read_text())
    slow = [e for e in summary["entries"] if e["name"] == "slow"][0]
    p50 = slow["percentiles_ms"]["50"]
    assert 119 <= p50 <= 160 and p50 % 10 != 0, slow["percentiles_ms"]
    assert slow["min_ms"] % 10 != 0


def test_missing_worker_and_late_joiner(procs, server, files):
    mport = free_port()
    master = procs.start(master_cmd(mport, server, 4, "14s", 2), cwd=files)
    w1, w2 = aiload_worker(procs, files, mport), aiload_worker(procs, files, mport)
    time.sleep(4)
    os.killpg(w2.pid, signal.SIGKILL)  # gone without a word: heartbeats stop
    time.sleep(1)
    w3 = aiload_worker(procs, files, mport)  # joins late and gets a share
    out, err = master.communicate(timeout=50)
    err = err.decode()
    assert master.returncode == 0, err
    assert "failed to send heartbeat, setting state to missing" in err
    assert w1.wait(timeout=20) == 0 and w3.wait(timeout=20) == 0
    w3err = w3.stderr.read().decode()
    assert "connected to the master" in w3err
    rows = read_csv(files / "m_stats.csv")
    assert int(rows[("", "Aggregated")]["Request Count"]) > 50


def test_version_mismatch_and_garbage_are_refused(procs, files):
    mport = free_port()
    master = procs.start([binary("aiload"), "-f", "sc.ini", "--master", "--headless", "-u", "1",
                          "-t", "3s", "--expect-workers", "1", "--expect-workers-max-wait", "4",
                          "--master-bind-host", "127.0.0.1", "--master-bind-port", str(mport)],
                         cwd=files)
    with raw_worker(mport, b"old_worker") as s:
        s.send(msgpack.dumps(("client_ready", "1.4.3", "old_worker")))
        s.send(msgpack.dumps(("client_ready", None, "old_worker")))
        for raw in (b"\xc1", b"\xdd\xff\xff\xff\xff", msgpack.dumps(("stats", "x", "old_worker")),
                    msgpack.dumps(("heartbeat", [1, 2], "old_worker")), b"\x91" * 50000):
            s.send(raw)
        assert not s.poll(1500), "a refused worker must not get an ack"
        out, err = master.communicate(timeout=20)
    err = err.decode()
    assert "runs Locust 1.4.3, but aiload speaks Locust 2.x's protocol" in err
    assert "pre 2.0" in err
    assert "dropped a message" in err
    assert "gave up waiting for workers to connect: 0 of 1" in err
    assert master.returncode == 1


def test_processes_uses_the_protocol_locally(procs, server, files):
    p = procs.start([binary("aiload"), "-f", "sc.ini", "--processes", "2", "--headless", "-u", "4",
                     "-r", "4", "-t", "5s", "-H", f"http://127.0.0.1:{server}", "--csv", "p"],
                    cwd=files)
    out, err = p.communicate(timeout=50)
    err = err.decode()
    assert p.returncode == 0, err
    assert "2 workers connected; starting" in err
    assert err.count("connected to the master as worker") == 2
    rows = read_csv(files / "p_stats.csv")
    seen = server_count(server)["paths"]
    assert int(rows[("GET", "/hello")]["Request Count"]) == seen["/hello"] > 20
    assert int(rows[("GET", "slow")]["Request Count"]) == seen["/delay/0.12"] > 5
    # the children are gone with the master
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", f"{binary('aiload')} -f sc.ini --processes"],
                          capture_output=True, text=True).stdout.split()
    assert [pid for pid in left if int(pid) != p.pid] == []


def test_web_ui_master_lists_workers(procs, server, files):
    mport, wport = free_port(), free_port()
    master = procs.start([binary("aiload"), "-f", "sc.ini", "--master", "--master-bind-host",
                          "127.0.0.1", "--master-bind-port", str(mport), "--web-port", str(wport),
                          "-H", f"http://127.0.0.1:{server}"], cwd=files)
    wait_port(wport, proc=master)
    aiload_worker(procs, files, mport)
    locust_worker(procs, files, mport)
    base = f"http://127.0.0.1:{wport}"

    def stats():
        with urllib.request.urlopen(base + "/stats/requests", timeout=5) as r:
            return json.loads(r.read())

    deadline = time.monotonic() + 20
    while stats()["worker_count"] < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stats()["worker_count"] == 2
    form = urllib.parse.urlencode({"user_count": "4", "spawn_rate": "4",
                                   "host": f"http://127.0.0.1:{server}"}).encode()
    with urllib.request.urlopen(base + "/swarm", data=form, timeout=5) as r:
        assert json.loads(r.read())["success"] is True
    deadline = time.monotonic() + 20
    d = stats()
    while (d["user_count"] < 4 or d["total_rps"] == 0) and time.monotonic() < deadline:
        time.sleep(0.5)
        d = stats()
    assert d["user_count"] == 4, d
    ws = d["workers"]
    assert len(ws) == 2 and sorted(w["user_count"] for w in ws) == [2, 2], ws
    assert all(w["state"] == "running" and "cpu_usage" in w for w in ws), ws
    with urllib.request.urlopen(base + "/", timeout=5) as r:
        page = r.read().decode()
    assert 'data-tab="workers"' in page and "workers-table" in page
    urllib.request.urlopen(base + "/stop", timeout=5).read()
    master.send_signal(signal.SIGINT)
    assert master.wait(timeout=30) in (0, 1)


TAGGED = """
[user Web]
wait_time = constant(0.05)
[task Web]
path = /hello
tags = web
[task Web]
name = slow
path = /delay/0.01
tags = slow
"""


def test_workers_take_the_masters_tags(procs, server, tmp_path):
    """As on a Locust worker, the master's -T/-E (its parsed_options) replace the
    worker's own at each new test: an ini worker filters its scenario again."""
    (tmp_path / "sc.ini").write_text(TAGGED)
    mport = free_port()
    master = procs.start(master_cmd(mport, server, 4, "3s", 2, ("-T", "web")), cwd=tmp_path)
    ws = [aiload_worker(procs, tmp_path, mport),
          procs.start([binary("aiload"), "-f", "sc.ini", "--worker", "--master-host", "127.0.0.1",
                       "--master-port", str(mport), "--threads", "1", "-T", "slow"], cwd=tmp_path)]
    out, err = master.communicate(timeout=50)
    assert master.returncode == 0, err.decode()
    logs = []
    for w in ws:
        assert w.wait(timeout=20) == 0
        logs.append(w.stderr.read().decode())
    seen = server_count(server)["paths"]
    assert seen.get("/hello", 0) > 10 and "/delay/0.01" not in seen, seen
    assert "/delay/0.01" not in seen
    rows = read_csv(tmp_path / "m_stats.csv")
    assert int(rows[("GET", "/hello")]["Request Count"]) == seen["/hello"]
    for log in logs:  # the worker started with -T slow as well as the one without
        assert "sc.ini filtered by the master's tags (-T web)" in log, log
