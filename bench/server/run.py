#!/usr/bin/python3
"""aiserve core overhead: the built-in C hello handler vs Debian's nginx
(`return 200 "hello\\n"`), both with 1 and 2 workers, access logs off on both,
under the same wrk load (-t1, same connections). Repetitions are interleaved
(nginx, aiserve, nginx, aiserve, ...) so machine noise hits both alike;
prints per-run numbers, then medians of RPS, p99, server CPU time per request
(user+system of the server's processes, from /proc: the figure that machine
noise disturbs least) and the ratios.

    bench/server/run.py [--rounds 3] [--seconds 5] [--connections 16]
                        [--aiserve build/aiserve]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import free_port, proc_tree, start_nginx as nginx, stop, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_nginx(workers, tmp):
    port = free_port()
    p = nginx(os.path.join(tmp, f"nginx{workers}"), port, workers=workers)
    return p, f"http://127.0.0.1:{port}/"


def start_aiserve(binary, workers):
    port = free_port()
    p = subprocess.Popen([binary, f"--http=127.0.0.1:{port}", f"--processes={workers}",
                          "--disable-logging", "--listen=1024"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port)
    return p, f"http://127.0.0.1:{port}/hello"


def cpu_seconds(root):
    """utime + stime of a process tree, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in proc_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return total / tick


def to_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def sockets(root):
    """Socket fds per worker (the processes below root, by pid)."""
    out = {}
    for pid in proc_tree(root):
        if pid == root:
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        n = 0
        for fd in fds:
            try:
                n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
        out[pid] = n
    return out


def wrk(url, seconds, conns, root):
    """Runs wrk; also samples, halfway, how many of its connections each
    worker holds (socket fds then, less those before): the split decides the
    tail with more workers than the CPUs wrk leaves free."""
    before = sockets(root)
    p = subprocess.Popen(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", url],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(seconds / 2)
    during = sockets(root)
    out = p.communicate(timeout=seconds + 30)[0]
    split = "/".join(str(during[k] - before.get(k, 0)) for k in sorted(during))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return rps, to_ms(m.group(1), m.group(2)), (errs.group(1) if errs else "0"), (
        sock.group(1) if sock else "none"), total, split


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--aiserve", default=os.path.join(ROOT, "build", "aiserve"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="aiserve-bench-")
    servers, procs = {}, []
    try:
        for w in (1, 2):
            p, url = start_nginx(w, tmp)
            procs.append(p)
            servers[("nginx", w)] = (url, p.pid)
            p, url = start_aiserve(a.aiserve, w)
            procs.append(p)
            servers[("aiserve", w)] = (url, p.pid)
        res = {k: [] for k in servers}
        print(f"wrk -t1 -c{a.connections} -d{a.seconds}s, {a.rounds} interleaved rounds, "
              f"{os.cpu_count()} CPUs")
        for r in range(a.rounds):
            for w in (1, 2):
                for name in ("nginx", "aiserve"):
                    url, pid = servers[(name, w)]
                    c0 = cpu_seconds(pid)
                    rps, p99, non2xx, sockerr, total, split = wrk(url, a.seconds,
                                                                   a.connections, pid)
                    us = (cpu_seconds(pid) - c0) * 1e6 / max(total, 1)
                    res[(name, w)].append((rps, p99, us))
                    print(f"  round {r + 1} {name:8s} {w} worker(s): {rps:10.0f} RPS  "
                          f"p99 {p99:7.3f} ms  {us:5.2f} us CPU/req  non-2xx {non2xx}  "
                          f"socket errors {sockerr}  connections per worker {split}",
                          flush=True)
        print()
        print(f"{'workers':>7} | {'nginx RPS':>10} | {'aiserve RPS':>11} | {'ratio':>5} | "
              f"{'nginx p99':>9} | {'aiserve p99':>11} | {'nginx CPU/req':>13} | "
              f"{'aiserve CPU/req':>15} | {'CPU ratio':>9}")
        for w in (1, 2):
            n = res[("nginx", w)]
            s = res[("aiserve", w)]
            nr, sr = statistics.median(x[0] for x in n), statistics.median(x[0] for x in s)
            np_, sp = statistics.median(x[1] for x in n), statistics.median(x[1] for x in s)
            nc, sc = statistics.median(x[2] for x in n), statistics.median(x[2] for x in s)
            print(f"{w:>7} | {nr:10.0f} | {sr:11.0f} | {sr / nr:5.2f} | {np_:7.3f}ms | "
                  f"{sp:9.3f}ms | {nc:11.2f}us | {sc:13.2f}us | {nc / sc:9.2f}")
        print("ratio = aiserve RPS / nginx RPS; CPU ratio = nginx CPU per request / aiserve's "
              "(above 1: aiserve is cheaper)")
    finally:
        for p in procs:
            stop(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
