#!/usr/bin/python3
"""Distributed aiload against its peers (issue 18's benchmark): one aiload
process alone, an aiload master with 2 aiload workers, and Locust's own master
with 2 FastHttpUser workers, each driving Debian's nginx (`return 200`) on
loopback with the same users and no wait, rounds interleaved. (Debian's Locust
refuses its own workers as "pre 2.0", its version string being empty, so the
Locust workers run under aiload's master: the total is still what 2 Locust
worker processes generate.) Prints total RPS
per set-up, the ratios (aiload master+2 vs aiload alone: goal >= 0.9x; vs
Locust master+2: goal >= 10x) and the master's CPU seconds per second of run.
Also requests per generator CPU-second (the workers' CPU from wait4, or the
lone process's), which other load on the machine disturbs far less than
req/s; it includes each worker's start-up (Locust's imports: a few tenths of
a second per worker), so use --seconds 10 or more for that ratio.

Usage: bench/loadgen/dist.py [--rounds 2] [--seconds 10] [--users 50] [--build DIR]
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from benchlib import free_port  # noqa: E402
from run import start_nginx  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
SCENARIO = "[user web]\nwait_time = constant(0)\n\n[task]\npath = /\n"
LOCUSTFILE = """from locust import FastHttpUser, task


class web(FastHttpUser):  # the scenario's class name: the master dispatches by name
    @task
    def index(self):
        self.client.get("/")
"""


def wait_cpu(p, timeout):
    """Waits for p; returns its CPU seconds (user + system) from wait4."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return ru.ru_utime + ru.ru_stime
        time.sleep(0.05)
    p.kill()
    _, _, ru = os.wait4(p.pid, 0)
    return ru.ru_utime + ru.ru_stime


def total_rps(prefix, seconds):
    with open(prefix + "_stats.csv", newline="") as f:
        row = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"][0]
    return int(row["Request Count"]) / seconds, int(row["Failure Count"])


def run(kind, a, host, tmp, tag):
    """One test of a set-up; (RPS, failures, master CPU s per s or None,
    requests per generator CPU-second: the workers', or the lone process's)."""
    prefix = os.path.join(tmp, tag)
    common = ["--headless", "-u", str(a.users), "-r", str(a.users), "-t", f"{a.seconds}s",
              "-H", host, "--csv", prefix]
    aiload = os.path.join(a.build, "aiload")
    workers = []
    if kind == "aiload":
        m = subprocess.Popen([aiload, "-f", a.sc, *common, "--only-summary"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    else:
        port = free_port()
        if kind == "aiload-dist":
            head = [aiload, "-f", a.sc]
            worker = [aiload, "-f", a.sc, "--worker", "--threads", "1"]
        else:
            # Debian's Locust 2.12 reports an empty version, which its own master refuses
            # as a pre-2.0 worker ("An old (pre 2.0) worker tried to connect"): Locust's
            # workers run under aiload's master, which does not generate load itself,
            # so the total is what the two Locust workers generate
            head = [aiload, "-f", a.sc]
            worker = ["locust", "-f", a.lf, "--worker"]
        m = subprocess.Popen(head + ["--master", "--master-bind-host", "127.0.0.1",
                                     "--master-bind-port", str(port), "--expect-workers", "2",
                                     *common], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, cwd=tmp)
        time.sleep(0.5)
        for _ in range(2):
            workers.append(subprocess.Popen(worker + ["--master-host", "127.0.0.1",
                                                      "--master-port", str(port)],
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, cwd=tmp))
    cpu = wait_cpu(m, a.seconds + 120)
    gen = sum(wait_cpu(w, 30) for w in workers) if workers else cpu
    rps, fails = total_rps(prefix, a.seconds)
    per_cpu = rps * a.seconds / gen if gen > 0 else 0.0
    return rps, fails, (cpu / a.seconds if workers else None), per_cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-dist-")
    a.sc = os.path.join(tmp, "sc.ini")
    a.lf = os.path.join(tmp, "lf.py")
    with open(a.sc, "w") as f:
        f.write(SCENARIO)
    with open(a.lf, "w") as f:
        f.write(LOCUSTFILE)
    port = free_port()
    nginx = start_nginx(tmp, port)
    host = f"http://127.0.0.1:{port}"
    kinds = ["aiload", "aiload-dist", "locust-dist"]
    res = {k: [] for k in kinds}
    try:
        print(f"{os.cpu_count()} CPUs; {a.users} users, no wait, {a.rounds} interleaved rounds "
              f"of {a.seconds} s against nginx")
        for r in range(a.rounds):
            for k in kinds:
                rps, fails, mcpu, per_cpu = run(k, a, host, tmp, f"{k}-{r}")
                res[k].append((rps, mcpu, per_cpu))
                m = f"  master CPU {mcpu:.2f} s/s" if mcpu is not None else ""
                print(f"  round {r + 1} {k:12} {rps:10.0f} req/s  {per_cpu:8.0f} req per "
                      f"generator CPU-s  failures {fails}{m}", flush=True)
    finally:
        nginx.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(x for x, _, _ in v) for k, v in res.items()}
    cpu = {k: statistics.median(c for _, c, _ in v) for k, v in res.items()
           if v[0][1] is not None}
    eff = {k: statistics.median(e for _, _, e in v) for k, v in res.items()}
    print()
    print("set-up       | req/s (median) | req per generator CPU-s | master CPU s/s")
    for k in kinds:
        c = f"{cpu[k]:.2f}" if k in cpu else "-"
        print(f"{k:12} | {med[k]:14.0f} | {eff[k]:23.0f} | {c}")
    print(f"aiload master+2 / aiload alone = {med['aiload-dist'] / med['aiload']:.2f}x "
          f"(goal >= 0.9x)")
    print(f"aiload master+2 / 2 Locust workers = {med['aiload-dist'] / max(med['locust-dist'], 1):.1f}x "
          f"(goal >= 10x); per generator CPU-second "
          f"{eff['aiload-dist'] / max(eff['locust-dist'], 1):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
