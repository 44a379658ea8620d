#!/usr/bin/python3
"""WSGI hosting benchmark: aiserve vs uWSGI (`http =` router and `http-socket`)
vs gunicorn (sync and gthread), all with the article's 2 processes x 1 thread,
the same wrk load, side by side; repetitions interleaved; medians and ratios.

    bench/wsgi/run.py [--app hello|torch|all] [--rounds N] [--seconds S]
                      [--aiserve build/aiserve] [--hang-check]

Apps: `hello` is the Flask hello app (tests/wsgi/apps/hello.py); `torch` is
the article's MobileNetV2 demo (examples/article/demo.py). --hang-check runs
the torch demo with TORCH_THREADS=2 preloaded (the set-up that hangs uWSGI)
on aiserve and on uWSGI, each bounded by a timeout.
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import free_port  # noqa: E402
from benchlib import stop as stop_group  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = {"hello": (os.path.join(ROOT, "tests", "wsgi", "apps"), "hello:app"),
        "torch": (os.path.join(ROOT, "examples", "article"), "demo:app")}


def ini(lines):
    f = tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False)
    f.write("\n".join(["[uwsgi]"] + lines) + "\n")
    f.close()
    return f.name


def article_lines(appdir, spec, port, bind="http"):
    """The article's ini, bound to loopback."""
    return ["module = %s" % spec, "pythonpath = %s" % appdir, "master = true",
            "processes = 2", "threads = 1", "enable-threads = true", "listen = 1024",
            "need-app = true", "%s = 127.0.0.1:%d" % (bind, port)]


def cmd_for(name, app, port, aiserve):
    appdir, spec = APPS[app]
    if name == "aiserve":
        return [aiserve, ini(article_lines(appdir, spec, port))]
    if name == "aiserve-nolog":  # the same terms as uwsgi-http-socket below
        return [aiserve, ini(["disable-logging = true"] + article_lines(appdir, spec, port))]
    if name == "uwsgi-http":
        return ["uwsgi", "--ini", ini(["plugins = python3,http"] +
                                      article_lines(appdir, spec, port))]
    if name == "uwsgi-http-socket":
        return ["uwsgi", "--ini", ini(["plugins = python3", "disable-logging = true"] +
                                      article_lines(appdir, spec, port, "http-socket"))]
    if name == "gunicorn-sync":
        return ["gunicorn", "-w", "2", "-b", "127.0.0.1:%d" % port, "--chdir", appdir, spec]
    if name == "gunicorn-gthread":
        return ["gunicorn", "-k", "gthread", "-w", "2", "--threads", "1", "-b",
                "127.0.0.1:%d" % port, "--chdir", appdir, spec]
    raise ValueError(name)


SERVERS = ["aiserve", "aiserve-nolog", "uwsgi-http", "uwsgi-http-socket", "gunicorn-sync", "gunicorn-gthread"]


def start(name, app, aiserve, env=None, ready_timeout=120):
    port = free_port()
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.Popen(cmd_for(name, app, port, aiserve), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, env=e)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError("%s exited with %s" % (name, p.returncode))
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=30) as r:
                if r.status == 200:
                    return p, port
        except Exception:
            time.sleep(0.1)
    stop(p)
    raise RuntimeError("%s did not answer in %ds" % (name, ready_timeout))


def stop(p):
    """Kills the server's process group at once (bench/uwsgi/run.py uses it too)."""
    stop_group(p, signal.SIGKILL)


def group_cpu(pgid):
    """utime+stime (seconds) of every live process in the server's process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 (pgrp), counted after the comm
            total += int(fields[11]) + int(fields[12])
    return total / tick


def to_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port, seconds, conns=16):
    out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency",
                          "--timeout", "10s", "http://127.0.0.1:%d/" % port],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict((m.group(1), to_ms(m.group(2), m.group(3)))
               for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"timeout (\d+)", out)
    return {"rps": rps, "p50": lat.get("50", 0.0), "p99": lat.get("99", 0.0),
            "bad": int(non2xx.group(1)) if non2xx else 0,
            "timeouts": int(timeouts.group(1)) if timeouts else 0}


def bench(app, rounds, seconds, aiserve, servers):
    runs = {s: [] for s in servers}
    for r in range(rounds):  # interleaved: round 1 of everyone, then round 2...
        for name in servers:
            try:
                p, port = start(name, app, aiserve)
            except RuntimeError as e:
                print("  %s: %s" % (name, e), flush=True)
                continue
            try:
                wrk(port, 2)  # warm-up
                cpu0 = group_cpu(p.pid)
                res = wrk(port, seconds)
                cpu = group_cpu(p.pid) - cpu0
                res["us_per_req"] = cpu * 1e6 / max(1.0, res["rps"] * seconds)
            finally:
                stop(p)
            runs[name].append(res)
            print("  round %d %-18s %9.1f rps  p50 %7.2f ms  p99 %7.2f ms  %7.0f us CPU/req" %
                  (r + 1, name, res["rps"], res["p50"], res["p99"], res["us_per_req"]), flush=True)
    return runs


def report(app, runs, ref="uwsgi-http"):
    print("\n%s app, wrk -t1 -c16, 2 processes x 1 thread, medians of %d rounds" %
          (app, max(len(v) for v in runs.values())))
    print("| server | RPS | min-max | p50 ms | p99 ms | server CPU us/req | non-2xx | vs uWSGI http= "
          "| vs uWSGI http-socket | vs best peer |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    med = {k: statistics.median(r["rps"] for r in v) for k, v in runs.items() if v}
    peers = [v for k, v in med.items() if not k.startswith("aiserve")]
    best = max(peers) if peers else 0
    for name, v in runs.items():
        if not v:
            print("| %s | failed | | | | | | | | |" % name)
            continue
        rps = [r["rps"] for r in v]

        def ratio(other):
            return "%.2fx" % (med[name] / med[other]) if other in med else "-"
        print("| %s | %.1f | %.1f-%.1f | %.2f | %.2f | %.0f | %d | %s | %s | %s |" % (
            name, med[name], min(rps), max(rps), statistics.median(r["p50"] for r in v),
            statistics.median(r["p99"] for r in v),
            statistics.median(r["us_per_req"] for r in v), sum(r["bad"] for r in v), ratio(ref),
            ratio("uwsgi-http-socket"), "%.2fx" % (med[name] / best) if best else "-"))


def hang_check(aiserve, seconds=5):
    """TORCH_THREADS=2, preloaded: does the first request answer?"""
    print("\ntorch demo with TORCH_THREADS=2, preload (article ini), first request bounded by 60 s")
    for name in ("aiserve", "uwsgi-http"):
        port = free_port()
        e = dict(os.environ, TORCH_THREADS="2")
        p = subprocess.Popen(cmd_for(name, "torch", port, aiserve), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, env=e)
        verdict = "hangs (no answer in 60 s)"
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=60) as r:
                    if r.status == 200:
                        res = wrk(port, seconds)
                        verdict = "answers: %.1f rps over %ds, %d timeouts" % (
                            res["rps"], seconds, res["timeouts"])
                        break
            except Exception:
                time.sleep(0.2)
        stop(p)
        print("  %-12s %s" % (name, verdict), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", default="all", choices=["hello", "torch", "all"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--aiserve", default=os.path.join(ROOT, "build", "aiserve"))
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--hang-check", action="store_true")
    a = ap.parse_args()
    servers = a.servers.split(",")
    apps = ["hello", "torch"] if a.app == "all" else [a.app]
    results = {}
    for app in apps:
        print("== %s" % app, flush=True)
        results[app] = bench(app, a.rounds, a.seconds, a.aiserve, servers)
    for app in apps:
        report(app, results[app])
    if a.hang_check or a.app == "all":
        hang_check(a.aiserve)


if __name__ == "__main__":
    sys.exit(main())
