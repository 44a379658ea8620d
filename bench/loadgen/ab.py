#!/usr/bin/python3
"""A/B of two aiload builds on the plain-http hot path, against aiserve's
built-in /hello: did a change to loadgen/ slow the inner loop down?

Both builds run the same quick mode (same connections, threads, duration),
rounds interleaved (A, B, A, B, ...) so machine noise hits both alike.
Reported per build: requests per second and requests per generator CPU
second (requests / user+system CPU of the aiload process), medians, and the
ratio B / A. The per-CPU-second figure is the one to compare on a shared
machine: it does not depend on how much CPU the server got.

Usage: bench/loadgen/ab.py --a OLD/aiload --b NEW/aiload [--aiserve build/aiserve]
                           [--rounds 3] [--duration 5] [--connections 50] [--threads 1]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import free_port, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_one(aiload, url, a, tmp):
    js = os.path.join(tmp, "summary.json")
    if os.path.exists(js):
        os.unlink(js)
    before = os.times()
    r = subprocess.run([aiload, url, "-c", str(a.connections), "-d", str(a.duration),
                        "--threads", str(a.threads), "--json", js],
                       capture_output=True, text=True, timeout=a.duration + 30)
    after = os.times()
    cpu = (after.children_user - before.children_user) + \
        (after.children_system - before.children_system)
    if r.returncode != 0 or not os.path.exists(js):
        raise RuntimeError(f"{aiload} failed:\n{r.stdout}{r.stderr}")
    with open(js) as f:
        j = json.load(f)
    if j["failures"]:
        raise RuntimeError(f"{aiload}: {j['failures']} failed requests")
    return j["requests"] / j["duration_s"], j["requests"] / cpu if cpu > 0 else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="the baseline aiload binary")
    ap.add_argument("--b", required=True, help="the changed aiload binary")
    ap.add_argument("--aiserve", default=os.path.join(ROOT, "build", "aiserve"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    port = free_port()
    srv = subprocess.Popen([a.aiserve, "--http", f"127.0.0.1:{port}", "--processes", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    res = {"A": [], "B": []}
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/hello"
        print(f"target: aiserve /hello on {url}; {a.threads} thread(s), {a.connections} "
              f"connections, {a.duration} s per run, {a.rounds} rounds\n  A = {a.a}\n  B = {a.b}",
              flush=True)
        with tempfile.TemporaryDirectory(prefix="aiload-ab-") as tmp:
            for rnd in range(a.rounds):
                for name, binpath in (("A", a.a), ("B", a.b)):
                    rps, per_cpu = run_one(binpath, url, a, tmp)
                    res[name].append((rps, per_cpu))
                    print(f"  round {rnd + 1} {name} {rps:10.0f} req/s {per_cpu:10.0f} req/CPU-s",
                          flush=True)
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait(timeout=10)
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for k, v in res.items()}
    print("\nmedians")
    for k, (rps, pc) in med.items():
        print(f"  {k} {rps:10.0f} req/s {pc:10.0f} req/CPU-s")
    print(f"B / A: {med['B'][0] / med['A'][0]:.3f}x req/s, "
          f"{med['B'][1] / med['A'][1]:.3f}x req per CPU-second")


if __name__ == "__main__":
    main()
