#!/usr/bin/python3
"""cheaper algorithms on a stepped load: latency against the workers they
keep. For each configuration aiserve runs with a stats server; aiload (open
model, --stage) sends a low, high, low arrival rate to a route, and a thread
samples the running workers every 0.5 s. The table gives requests, failures,
p50/p99 latency, mean and peak workers (worker-seconds / run time: the cost).

    bench/server/cheaper.py [--load sleep|cpu] [--path P] [--max 8] [--threads 2]
                            [--stages S] [--only queue,spare]

--load sleep (the default): a 50 ms /sleep route, requests that wait (an
app calling a backend); stages 10s:20,10s:300,15s:20 (aiload ramps the rate
linearly to each stage's figure). --load cpu: a Python WSGI app hashing for
about 8 ms a request under the GIL, requests that compute; stages
10s:10,10s:150,15s:10, about 1.2 cores at the peak: more processes than
cores cannot help it, and `queue` must not add them.

The lead runs it (never in tests). Configurations: fixed-max (processes =
max, no cheaper), fixed-min (processes = 1), spare, busyness, queue (its
log lines give each decision with the figures it was made on: the log
paths are printed).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("AISERVE_BUILD", os.path.join(ROOT, "build"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats(sport):
    with socket.create_connection(("127.0.0.1", sport), timeout=5) as s:
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return json.loads(data)
            data += chunk


def wait_ready(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("aiserve exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health/ready HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if b" 200 " in s.recv(4096):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("aiserve not ready")


CPU_APP = """\
import hashlib


def application(environ, start_response):
    path = environ["PATH_INFO"]
    n = int(path.rsplit("/", 1)[-1] or 20000) if path.startswith("/cpu/") else 0
    h = b"x"
    for _ in range(n):  # 32-byte digests: hashlib keeps the GIL
        h = hashlib.sha256(h).digest()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [h.hex().encode()]
"""


def run(name, extra, args):
    port, sport = free_port(), free_port()
    log = tempfile.NamedTemporaryFile(prefix=f"cheaper-{name}-", suffix=".log", delete=False)
    argv = [os.path.join(BUILD, "aiserve"), f"--http=127.0.0.1:{port}",
            f"--stats=127.0.0.1:{sport}", f"--threads={args.threads}", "--sleep-route=/sleep",
            "--disable-logging", f"--logto={log.name}", *args.app_args, *extra]
    srv = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples, stop = [], threading.Event()
    try:
        wait_ready(port, srv)

        def sample():
            while not stop.is_set():
                try:
                    doc = stats(sport)
                    samples.append(sum(w["status"] != "cheap" for w in doc["workers"]))
                except (OSError, ValueError):
                    pass
                stop.wait(0.5)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        cmd = [os.path.join(BUILD, "aiload"), f"http://127.0.0.1:{port}{args.path}",
               "-c", "1000", "--only-summary", "--json", out, "--exit-code-on-error", "0"]
        stages = args.stages.split(",")
        # --rate makes it the open model (quick mode is closed without it).
        cmd += ["--rate", stages[0].split(":")[1]]
        for st in stages:
            cmd += ["--stage", st]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        stop.set()
        t.join()
        with open(out) as f:
            res = json.load(f)
        os.unlink(out)
    finally:
        stop.set()
        srv.terminate()
        try:
            srv.wait(timeout=60)
        except subprocess.TimeoutExpired:
            srv.kill()
    total = res["total"]
    pct = total.get("percentiles_ms", {})
    mean = sum(samples) / len(samples) if samples else 0
    return {"name": name, "requests": res["requests"], "failures": res["failures"],
            "p50": pct.get("50"), "p99": pct.get("99"), "mean_workers": mean,
            "max_workers": max(samples) if samples else 0, "log": log.name}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--load", choices=["sleep", "cpu"], default="sleep")
    ap.add_argument("--path")
    ap.add_argument("--max", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stages")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    args.app_args = []
    if args.load == "cpu":
        app = tempfile.NamedTemporaryFile("w", prefix="cheaper-cpu-", suffix=".py", delete=False)
        app.write(CPU_APP)
        app.close()
        args.app_args = [f"--wsgi-file={app.name}"]
        args.path = args.path or "/cpu/20000"
        args.stages = args.stages or "10s:10,10s:150,15s:10"
    args.path = args.path or "/sleep/0.05"
    args.stages = args.stages or "10s:20,10s:300,15s:20"
    m = args.max
    configs = [
        ("fixed-max", [f"--processes={m}"]),
        ("fixed-min", ["--processes=1"]),
        ("spare", [f"--processes={m}", "--cheaper=1", "--cheaper-algo=spare"]),
        ("busyness", [f"--processes={m}", "--cheaper=1", "--cheaper-algo=busyness",
                      "--cheaper-overload=2", "--cheaper-busyness-multiplier=3"]),
        ("queue", [f"--processes={m}", "--cheaper=1", "--cheaper-algo=queue",
                   "--cheaper-queue-target-ms=100"]),
    ]
    only = set(filter(None, args.only.split(",")))
    print(f"{'config':<10} {'requests':>9} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'mean wk':>8} {'max wk':>7}")
    for name, extra in configs:
        if only and name not in only:
            continue
        r = run(name, extra, args)
        print(f"{r['name']:<10} {r['requests']:>9} {r['failures']:>7} {r['p50'] or 0:>8.1f} "
              f"{r['p99'] or 0:>8.1f} {r['mean_workers']:>8.2f} {r['max_workers']:>7}  "
              f"{r['log']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
