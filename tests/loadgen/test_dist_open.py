"""The open model on an aiload master (--rate, --stage): the arrival rate is
split over the aiload workers in proportion to their share and re-split when
one joins, so the total stays the rate asked for; a real Locust worker (no
open model) gets no share, said on stderr, and a run of only Locust workers
stops with an error. Loopback only, bounded in time."""
import csv
import os

from harness import binary, free_port
from distkit import LOCUSTFILE, PY, server, server_count  # noqa: F401 (server: a fixture)

import time

SCENARIO = """
[user UserA]
[task UserA]
path = /hello
"""

LOCUSTFILE_A = """
from locust import HttpUser, task, constant
class UserA(HttpUser):
    wait_time = constant(1)
    @task
    def t(self):
        self.client.get("/hello")
"""


def aiload_worker(procs, cwd, mport):
    return procs.start([binary("aiload"), "-f", "sc.ini", "--worker", "--master-host", "127.0.0.1",
                        "--master-port", str(mport), "--threads", "1"], cwd=cwd)


def master(procs, cwd, mport, server, workers, extra):
    return procs.start([binary("aiload"), "-f", "sc.ini", "--master", "--headless", "-u", "20",
                        "--expect-workers", str(workers), "--master-bind-host", "127.0.0.1",
                        "--master-bind-port", str(mport), "-H", f"http://127.0.0.1:{server}",
                        "--csv", "m", *extra], cwd=cwd)


def hello_count(path):
    with open(path, newline="") as f:
        return int([r for r in csv.DictReader(f) if r["Name"] == "/hello"][0]["Request Count"])


def test_rate_is_split_over_workers_and_resplit_on_join(procs, server, tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    mport = free_port()
    rate, secs = 60, 8
    m = master(procs, tmp_path, mport, server, 2, ["--rate", str(rate), "-t", f"{secs}s"])
    ws = [aiload_worker(procs, tmp_path, mport) for _ in range(2)]
    time.sleep(4)
    late = aiload_worker(procs, tmp_path, mport)  # joins mid-run: the rate is re-split
    out, err = m.communicate(timeout=60)
    err = err.decode()
    assert m.returncode == 0, err
    for w in ws + [late]:
        assert w.wait(timeout=20) == 0
    late_err = late.stderr.read().decode()
    assert "running" in late_err and "users" in late_err, late_err
    n = hello_count(tmp_path / "m_stats.csv")
    assert n == server_count(server)["paths"]["/hello"]
    # the total rate is the one asked for, within 10 %, through the re-split
    assert abs(n - rate * secs) <= 0.1 * rate * secs, (n, err)


def test_stages_with_a_locust_worker_that_gets_no_share(procs, server, tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE_A)
    mport = free_port()
    # 2 s ramp 2 -> 40/s, then 4 s at 40/s: 42 + 160 = 202 arrivals
    m = master(procs, tmp_path, mport, server, 2, ["--rate", "2", "--stage", "2s:40", "--stage",
                                                   "4s:40"])
    a = aiload_worker(procs, tmp_path, mport)
    log = open(tmp_path / "locust.log", "wb")
    loc = procs.start([PY, "-m", "locust", "-f", "locustfile.py", "--worker", "--master-host",
                       "127.0.0.1", "--master-port", str(mport)], cwd=tmp_path, stdout=log,
                      stderr=log)
    out, err = m.communicate(timeout=60)
    err = err.decode()
    assert m.returncode == 0, err
    assert "runs no open model (--rate/--stage: a Locust worker" in err
    assert a.wait(timeout=20) == 0 and loc.wait(timeout=20) == 0
    n = hello_count(tmp_path / "m_stats.csv")
    assert n == server_count(server)["paths"]["/hello"]
    assert abs(n - 202) <= 20, (n, err)


def test_open_model_with_only_locust_workers_is_an_error(procs, server, tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE_A)
    mport = free_port()
    m = master(procs, tmp_path, mport, server, 1, ["--rate", "10", "-t", "20s"])
    log = open(tmp_path / "locust.log", "wb")
    loc = procs.start([PY, "-m", "locust", "-f", "locustfile.py", "--worker", "--master-host",
                       "127.0.0.1", "--master-port", str(mport)], cwd=tmp_path, stdout=log,
                      stderr=log)
    t0 = time.monotonic()
    out, err = m.communicate(timeout=60)
    err = err.decode()
    assert "need aiload workers" in err and "stopping the test" in err, err
    assert time.monotonic() - t0 < 18  # stopped, not run to the end
    assert loc.wait(timeout=20) == 0
    assert os.path.exists(tmp_path / "m_stats.csv")


def test_processes_split_the_rate(procs, server, tmp_path):
    (tmp_path / "sc.ini").write_text(SCENARIO)
    p = procs.start([binary("aiload"), "-f", "sc.ini", "--processes", "2", "--headless", "--rate",
                     "40", "-t", "5s", "-H", f"http://127.0.0.1:{server}", "--csv", "p"],
                    cwd=tmp_path)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err.decode()
    n = hello_count(tmp_path / "p_stats.csv")
    assert n == server_count(server)["paths"]["/hello"]
    assert abs(n - 200) <= 20, (n, err.decode())
