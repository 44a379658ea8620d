#!/usr/bin/python3
"""aiload vs Locust on the same Python locustfile (issue 17's benchmarks).

1. Throughput: a one-task locustfile (`self.client.get("/")`, no wait) against
   Debian's nginx (`return 200`, keep-alive, one worker), once with
   FastHttpUser and once with HttpUser. Requests per generator CPU-second
   (user + system of the generator process, start-up included) for aiload and
   for Locust, rounds interleaved. Targets: aiload >= 3x Locust with
   FastHttpUser, >= 10x with HttpUser.
2. Scale: the article's locustfile (between(5, 15)) with --users users on one
   process: the generator's peak RSS divided by the users (memory per user,
   the interpreter's baseline included) and the time from start to "All users
   spawned" (spawn time), for aiload and Locust.

Usage: bench/loadgen/pyfile.py [--rounds 3] [--duration 10] [--users 50]
                               [--scale-users 10000] [--no-locust] [--build DIR]
"""
import argparse
import csv
import os
import re
import resource
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
ONE_TASK = """from locust import {cls}, task


class U({cls}):
    @task
    def index(self):
        self.client.get("/")
"""


def children_cpu():
    r = os.times()
    return r.children_user + r.children_system


def run_gen(prog, locustfile, host, users, rate, duration, tmp, tag):
    """Runs one headless test; (requests, cpu seconds, peak RSS KiB, spawn s)."""
    prefix = os.path.join(tmp, tag)
    cmd = [prog, "-f", locustfile, "--headless", "-u", str(users), "-r", str(rate), "-t",
           f"{duration}s", "-H", host, "--csv", prefix, "--only-summary"]
    before = children_cpu()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         cwd=tmp)
    spawn = None
    for line in p.stderr:
        if spawn is None and "All users spawned" in line:
            spawn = time.monotonic() - t0
    p.wait(timeout=duration + 120)
    cpu = children_cpu() - before
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far
    with open(prefix + "_stats.csv", newline="") as f:
        total = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"][0]
    return int(total["Request Count"]), cpu, rss, spawn


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--scale-users", type=int, default=10000)
    ap.add_argument("--no-locust", action="store_true")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    aiload = os.path.join(a.build, "aiload")
    locust = shutil.which("locust")
    gens = [("aiload", aiload)] + ([] if a.no_locust or not locust else [("locust", locust)])
    tmp = tempfile.mkdtemp(prefix="bench-pyfile-")
    port = free_port()
    nginx = start_nginx(tmp, port)
    host = f"http://127.0.0.1:{port}"
    try:
        print(f"# throughput: {a.users} users, no wait, {a.duration}s, {a.rounds} rounds, nginx")
        for cls in ("FastHttpUser", "HttpUser"):
            lf = os.path.join(tmp, f"{cls}.py")
            with open(lf, "w") as f:
                f.write(ONE_TASK.format(cls=cls))
            per = {g: [] for g, _ in gens}
            for r in range(a.rounds):
                for g, prog in gens:
                    n, cpu, _, _ = run_gen(prog, lf, host, a.users, a.users, a.duration, tmp, f"{g}-{cls}-{r}")
                    per[g].append(n / cpu if cpu > 0 else 0)
                    print(f"  {cls:13} {g:7} round {r + 1}: {n} requests, {cpu:.2f} CPU s, {per[g][-1]:.0f} req/CPU-s", flush=True)
            med = {g: statistics.median(v) for g, v in per.items()}
            line = f"{cls:13} " + "  ".join(f"{g} {v:.0f} req/CPU-s" for g, v in med.items())
            if "locust" in med and med["locust"]:
                line += f"  ratio {med['aiload'] / med['locust']:.1f}x"
            print(line, flush=True)
        print(f"# scale: the article's locustfile, {a.scale_users} users on one process")
        lf = os.path.join(ROOT, "examples/locust/load_testing.py")
        for g, prog in gens:
            # a fresh process per generator so that ru_maxrss is its own
            out = subprocess.run([sys.executable, __file__, "--_scale", g, prog, lf, host,
                                  str(a.scale_users), tmp], capture_output=True, text=True)
            print(out.stdout.strip() or out.stderr.strip(), flush=True)
    finally:
        nginx.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def scale(g, prog, lf, host, users, tmp):
    n, cpu, rss, spawn = run_gen(prog, lf, host, int(users), int(users), 30, tmp, f"scale-{g}")
    spawn_s = f"{spawn:.2f} s" if spawn is not None else "not reached"
    print(f"{g:7} {users} users: peak RSS {rss / 1024:.0f} MiB, {rss / int(users):.1f} KiB/user, "
          f"spawn time {spawn_s}, {n} requests, {cpu:.2f} CPU s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_scale":
        scale(*sys.argv[2:])
    else:
        main()
