#!/usr/bin/python3
"""make soak: aiserve under a long mixed load, its memory and descriptors
sampled, growth fitted.

A 2 x 2 Flask app (tests/wsgi/apps/hello.py) with max-requests recycling
serves, for SOAK_SECONDS (default 600):
  - aiload, 50 keep-alive users on the Flask app (closed model);
  - aiload, 20 keep-alive users on the built-in /health/live;
  - a churn of 200 idle sockets opened and closed every few seconds, and 20
    slowloris clients trickling a request head;
  - a SIGHUP every SOAK_HUP_EVERY seconds (default 60; 0: none).
Every second it samples the RSS (MiB) and open descriptors of the master and
every worker, summed. Reloads and recycles briefly add processes, so the fit
uses the steady samples (master + 2 workers) after a warm-up (the first
fifth): a least-squares line for each, reported as growth per hour and over
the fitted window. It fails when a request failed, or when the fitted growth
over the window exceeds a tenth of the mean level (at least 8 MiB, 20 fds):
a leak shows as a trend, a recycle or the socket churn as a saw tooth that
the fit averages out.

    SOAK_SECONDS=60 make soak
"""
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("AISERVE_BUILD", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchlib import free_port, proc_tree, wait_port  # noqa: E402


def env_int(name, default):
    return int(os.environ.get(name, default))


def sample(root):
    """(RSS MiB, open fds, processes) of the aiserve process tree."""
    page = os.sysconf("SC_PAGE_SIZE")
    rss = fds = n = 0
    for pid in proc_tree(root):
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss += int(f.read().split()[1]) * page
            fds += len(os.listdir(f"/proc/{pid}/fd"))
            n += 1
        except (OSError, ValueError, IndexError):
            pass
    return rss / (1 << 20), fds, n


def fit(ts, ys):
    """Least-squares slope (per second) and intercept."""
    n = len(ts)
    mt, my = sum(ts) / n, sum(ys) / n
    var = sum((t - mt) ** 2 for t in ts)
    slope = sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / var if var else 0.0
    return slope, my - slope * mt


def churn(port, stop):
    """Idle sockets opened and dropped, slowloris clients trickling."""
    slow = []
    while not stop.is_set():
        idle = []
        for _ in range(200):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            idle.append(s)
        while len(slow) < 20:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.sendall(b"GET / HTTP/1.1\r\nHost: slow\r\n")
                slow.append(s)
            except OSError:
                break
        for _ in range(6):
            if stop.wait(0.5):
                break
            for s in list(slow):
                try:
                    s.send(b"X")
                except OSError:  # the server's socket-timeout ended it: replace it
                    slow.remove(s)
                    s.close()
        for s in idle:
            s.close()
    for s in slow:
        s.close()


def main():
    seconds = env_int("SOAK_SECONDS", 600)
    hup_every = env_int("SOAK_HUP_EVERY", 60)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    tmp = tempfile.mkdtemp(prefix="aiserve-soak-")
    port = free_port()
    log = open(os.path.join(tmp, "aiserve.log"), "w")
    srv = subprocess.Popen(
        [os.path.join(BUILD, "aiserve"), f"--http=127.0.0.1:{port}", "--processes=2",
         "--threads=2", f"--pythonpath={os.path.join(ROOT, 'tests', 'wsgi', 'apps')}",
         "--module=hello:app", "--disable-logging", "--max-requests=300000",
         "--max-requests-delta=50000", "--socket-timeout=10",
         # the app owns /; the probe load's /health/live is named to answer from the loop
         "--builtins=health,metrics"],
        stdout=log, stderr=log, start_new_session=True)
    loads, stop = [], threading.Event()
    try:
        wait_port(port, timeout=30)
        time.sleep(1)
        for path, users in (("/", 50), ("/health/live", 20)):
            out = os.path.join(tmp, f"aiload{len(loads)}.json")
            loads.append((subprocess.Popen(
                [os.path.join(BUILD, "aiload"), f"http://127.0.0.1:{port}{path}", "-c", str(users),
                 "-d", f"{seconds}s", "--threads", "1", "--only-summary", "--json", out],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out, path))
        ch = threading.Thread(target=churn, args=(port, stop))
        ch.start()
        t0 = time.monotonic()
        samples, next_hup = [], t0 + hup_every if hup_every else None
        print(f"soak: {seconds} s, samples every second (RSS MiB, fds, processes)", flush=True)
        while time.monotonic() - t0 < seconds:
            now = time.monotonic()
            if next_hup and now >= next_hup:
                srv.send_signal(signal.SIGHUP)
                next_hup += hup_every
            rss, fds, n = sample(srv.pid)
            samples.append((now - t0, rss, fds, n))
            if len(samples) % max(1, seconds // 20) == 0:
                print(f"  t={now - t0:6.0f}s  rss {rss:8.1f} MiB  fds {fds:5d}  procs {n}",
                      flush=True)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
        stop.set()
        ch.join()
        failed = 0
        for p, out, path in loads:
            p.wait(timeout=120)
            with open(out) as f:
                r = json.load(f)
            print(f"aiload {path}: {r['requests']} requests, {r['failures']} failed, "
                  f"p99 {r['total']['percentiles_ms']['99']} ms")
            failed += r["failures"]
    finally:
        stop.set()
        for p, _, _ in loads:
            if p.poll() is None:
                p.kill()
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(srv.pid, signal.SIGKILL)
    steady = [s for s in samples if s[0] >= seconds / 5 and s[3] == 3]
    bad = []
    if failed:
        bad.append(f"{failed} requests failed")
    if len(steady) < 10:
        bad.append(f"only {len(steady)} steady samples: run longer")
    else:
        ts = [s[0] for s in steady]
        window = ts[-1] - ts[0]
        for i, what, floor in ((1, "RSS MiB", 8.0), (2, "fds", 20.0)):
            ys = [s[i] for s in steady]
            slope, _ = fit(ts, ys)
            mean = sum(ys) / len(ys)
            grown = slope * window
            print(f"{what}: {min(ys):.1f}..{max(ys):.1f}, mean {mean:.1f} over {len(steady)} "
                  f"steady samples ({window:.0f} s); fitted {slope * 3600:+.1f}/h, "
                  f"{grown:+.1f} over the window")
            if grown > max(mean / 10, floor):
                bad.append(f"{what} grew {grown:.1f} over {window:.0f} s (mean {mean:.1f})")
    print("soak: " + ("FAILED: " + "; ".join(bad) if bad else "ok") + f" (log: {tmp}/aiserve.log)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
