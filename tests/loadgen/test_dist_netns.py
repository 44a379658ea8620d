"""Distributed aiload across hosts: the target server, the master and each
worker in its own network namespace (the lab of tests/netns.py: veth pairs
on a bridge that lives in a namespace of its own, addresses from TEST-NET-1
192.0.2.0/24). A worker killed mid-run is reported missing and the run goes on; a worker that joins late gets its share; a real Locust
worker on another host takes part too."""
import csv
import json
import os
import time

import pytest

import netns
from distkit import two_classes
from harness import binary
from netns import NET, in_ns, wait_http

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
HOSTS = {"srv": 10, "master": 11, "w1": 21, "w2": 22, "w3": 23, "lw": 24}

pytestmark = netns.needs()

SCENARIO, LOCUSTFILE = two_classes("0.05")


@pytest.fixture
def lab():
    with netns.lab("aild", HOSTS, "d") as names:
        yield names


def test_workers_on_other_hosts_missing_and_late(lab, procs, tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    srv = f"http://{NET}.10:8080"
    in_ns(procs, lab["srv"], [PY, os.path.join(HERE, "lgserver.py"), "8080", "--bind", f"{NET}.10"])
    wait_http(lab["master"], srv + "/count")  # the master's host reaches the server
    master = in_ns(procs, lab["master"], [
        binary("aiload"), "-f", "sc.ini", "--master", "--headless", "-u", "6", "-r", "6", "-t",
        "16s", "--expect-workers", "3", "--expect-workers-max-wait", "30", "--master-bind-host",
        f"{NET}.11", "--master-bind-port", "5557", "-H", srv, "--csv", "m"], cwd=tmp_path)

    def worker(h):
        return in_ns(procs, lab[h], [binary("aiload"), "-f", "sc.ini", "--worker", "--master-host",
                                     f"{NET}.11", "--threads", "1"], cwd=tmp_path)

    w1, w2 = worker("w1"), worker("w2")
    lw = in_ns(procs, lab["lw"], [PY, "-m", "locust", "-f", "locustfile.py", "--worker",
                                  "--master-host", f"{NET}.11"], cwd=tmp_path)
    time.sleep(6)
    assert master.poll() is None
    # w2's host dies: no quit, no more heartbeats
    netns.kill_all(lab["w2"])
    time.sleep(1)
    w3 = worker("w3")  # joins late
    out, err = master.communicate(timeout=60)
    err = err.decode()
    assert master.returncode == 0, err
    assert "3 workers connected; starting" in err
    assert "failed to send heartbeat, setting state to missing" in err
    assert w1.wait(timeout=20) == 0 and w3.wait(timeout=20) == 0 and lw.wait(timeout=20) == 0
    w3err = w3.stderr.read().decode()
    assert "connected to the master as worker 3" in w3err, w3err
    shares = [int(l.split()[3]) for l in w3err.splitlines() if "running" in l and "users" in l]
    assert shares and max(shares) >= 1, w3err
    with open(tmp_path / "m_stats.csv", newline="") as f:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}
    seen = json.loads(wait_http(lab["master"], srv + "/count"))["paths"]
    total = int(rows[("", "Aggregated")]["Request Count"])
    # the killed worker's last report (up to 3 s) never arrived; all else did
    assert 100 < total <= seen["/hello"] + seen["/delay/0.05"]
    assert int(rows[("", "Aggregated")]["Failure Count"]) == 0
