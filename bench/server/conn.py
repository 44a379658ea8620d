#!/usr/bin/python3
"""Connection handling under real traffic shapes: aiserve vs nginx vs gunicorn.

1. New-connection latency under keep-alive saturation: wrk holds --keepalive
   keep-alive connections (default 200) on the app of a 2 x 1 server, while
   a probe opens a fresh connection every 20 ms, sends one request and reads
   the answer; p50/p99/max of those probes and how many took over 5 s.
     aiserve  the article's Flask hello app (tests/wsgi/apps/hello.py), 2 x 1;
              probes of "/" (behind the app's queue) and of /health/live
              (answered on the event loop)
     gunicorn the same app, -w 2, gthread with 1 thread (keep-alive capable)
              or sync (--gunicorn-worker); probes of "/"
     nginx    2 workers, `return 200` (no app): the floor for an accept
2. Connections accepted per second with --idle idle sockets open (default
   5,000, spread by each server itself): wrk with `Connection: close` (a new
   connection per request), --connections at a time, against aiserve's /hello,
   nginx's `return 200` and gunicorn's Flask hello (as a reference: a Python
   app per connection).
Repetitions are interleaved; medians over rounds.

    bench/server/conn.py [--rounds 3] [--seconds 10] [--keepalive 200]
                         [--idle 5000] [--connections 16] [--aiserve build/aiserve]
                         [--gunicorn-worker gthread|sync] [--only latency|accept]
"""
import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import free_port, start_nginx, stop, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPDIR = os.path.join(ROOT, "tests", "wsgi", "apps")


def start(name, tmp, aiserve, gworker):
    """Returns (Popen, port, app path, probe paths)."""
    port = free_port()
    if name == "nginx":
        cmd = None
        paths = ("/", ["/"], "/")
    elif name == "aiserve":
        cmd = [aiserve, f"--http=127.0.0.1:{port}", "--processes=2", "--threads=1",
               f"--pythonpath={APPDIR}", "--module=hello:app", "--disable-logging",
               "--listen=1024", "--need-app",
               # the app owns /; the probe's /health/live and the accept test's /hello
               # are the loop's built-ins, named to answer ahead of it
               "--builtins=health,hello"]
        paths = ("/", ["/", "/health/live"], "/hello")
    else:
        cmd = ["gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", APPDIR,
               "--backlog", "1024", "--worker-connections", "4096"]
        if gworker == "gthread":
            cmd += ["-k", "gthread", "--threads", "1"]
        cmd.append("hello:app")
        paths = ("/", ["/"], "/")
    if cmd is None:
        p = start_nginx(os.path.join(tmp, "nginx"), port, conns=8192,
                        main="worker_rlimit_nofile 20000;")
    else:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    wait_port(port, timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the app, not only the socket
        try:
            if probe(port, paths[0], timeout=5) is not None:
                break
        except OSError:
            pass
        time.sleep(0.1)
    return p, port, paths[0], paths[1], paths[2]


def probe(port, path, timeout=5.0):
    """Seconds for a fresh connection to get a whole answer; None past timeout."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 200") and not data.startswith(b"HTTP/1.0 200"):
        return None
    return time.monotonic() - t0


def pct(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * q))] if s else float("nan")


def latency_round(name, port, app, probes, seconds, keepalive):
    """wrk saturates with keep-alive clients; the probes run meanwhile."""
    w = subprocess.Popen(["wrk", "-t1", f"-c{keepalive}", f"-d{seconds + 2}s",
                          f"http://127.0.0.1:{port}{app}"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    out = {path: [] for path in probes}
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        for path in probes:
            t = probe(port, path)
            out[path].append(t * 1000 if t is not None else None)
        time.sleep(0.02)
    w.wait(timeout=seconds + 60)
    return out


def hold_idle(port, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    time.sleep(1.0)  # let the server take them
    return socks


def accept_round(port, path, seconds, conns, idle):
    socks = hold_idle(port, idle)
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "-H",
                              "Connection: close", f"http://127.0.0.1:{port}{path}"],
                             capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        for s in socks:
            s.close()
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    return float(m.group(1)) if m else 0.0, errs.group(1) if errs else "none"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--keepalive", type=int, default=200)
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--aiserve", default=os.path.join(ROOT, "build", "aiserve"))
    ap.add_argument("--gunicorn-worker", choices=["gthread", "sync"], default="gthread")
    ap.add_argument("--only", choices=["latency", "accept"])
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < a.idle + a.keepalive + 256:
        sys.exit(f"the fd limit ({hard}) is too low for --idle {a.idle}")
    tmp = tempfile.mkdtemp(prefix="aiserve-connbench-")
    names = ["nginx", "aiserve", "gunicorn"]
    servers = {}
    try:
        for n in names:
            servers[n] = start(n, tmp, a.aiserve, a.gunicorn_worker)
        print(f"{os.cpu_count()} CPUs; {a.rounds} interleaved rounds of {a.seconds} s; "
              f"gunicorn {a.gunicorn_worker}")
        if a.only != "accept":
            lat = {}
            print(f"\n1. new-connection latency, {a.keepalive} keep-alive wrk clients on the app")
            for r in range(a.rounds):
                for n in names:
                    _, port, app, probes, _ = servers[n]
                    res = latency_round(n, port, app, probes, a.seconds, a.keepalive)
                    for path, xs in res.items():
                        lat.setdefault((n, path), []).append(xs)
                        ok = [x for x in xs if x is not None]
                        print(f"  round {r + 1} {n:8s} probe {path:13s} {len(xs):4d} probes  "
                              f"p50 {pct(ok, 0.5):8.1f} ms  p99 {pct(ok, 0.99):8.1f} ms  "
                              f"over 5 s {len(xs) - len(ok)}", flush=True)
            print(f"\n{'server':8s} | {'probe':13s} | {'p50 ms':>8s} | {'p99 ms':>8s} | "
                  f"{'max ms':>8s} | {'over 5 s':>8s}")
            for (n, path), rounds in lat.items():
                p50 = statistics.median(pct([x for x in xs if x is not None], 0.5) for xs in rounds)
                p99 = statistics.median(pct([x for x in xs if x is not None], 0.99)
                                        for xs in rounds)
                mx = max(max((x for x in xs if x is not None), default=float("nan"))
                         for xs in rounds)
                lost = sum(sum(1 for x in xs if x is None) for xs in rounds)
                print(f"{n:8s} | {path:13s} | {p50:8.1f} | {p99:8.1f} | {mx:8.1f} | {lost:8d}")
        if a.only != "latency":
            acc = {}
            print(f"\n2. connections accepted per second with {a.idle} idle sockets open "
                  f"(wrk -c{a.connections}, Connection: close)")
            for r in range(a.rounds):
                for n in names:
                    _, port, _, _, path = servers[n]
                    rate, errs = accept_round(port, path, a.seconds, a.connections, a.idle)
                    acc.setdefault(n, []).append(rate)
                    print(f"  round {r + 1} {n:8s} {path:7s} {rate:10.0f} conn/s  "
                          f"socket errors {errs}", flush=True)
            print(f"\n{'server':8s} | {'conn/s (median)':>15s}")
            for n in names:
                print(f"{n:8s} | {statistics.median(acc[n]):15.0f}")
    finally:
        for n, s in servers.items():
            stop(s[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
