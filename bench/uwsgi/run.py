#!/usr/bin/python3
"""uwsgi protocol benchmark: nginx (1 worker, uwsgi_pass) in front of the Flask
hello app served over `socket =` by aiserve and by uWSGI, both with the
article's 2 processes x 1 thread and logging off; the same wrk load through
nginx; rounds interleaved; medians and the ratio.

    bench/uwsgi/run.py [--rounds N] [--seconds S] [--aiserve [NAME=]build/aiserve]...
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "wsgi"))
from benchlib import free_port  # noqa: E402
from run import APPS, article_lines, group_cpu, ini, stop, wrk  # noqa: E402  (bench/wsgi/run.py)

ROOT = os.path.dirname(os.path.dirname(HERE))


def backend(name, port, aiserve):
    appdir, spec = APPS["hello"]
    lines = ["disable-logging = true"] + article_lines(appdir, spec, port, "socket")
    if name == "aiserve":
        return [aiserve, ini(lines)]
    return ["uwsgi", "--ini", ini(["plugins = python3"] + lines)]


def nginx_conf(tmp, port, bport):
    path = os.path.join(tmp, "nginx.conf")
    with open(path, "w") as f:
        f.write("""daemon off; worker_processes 1; user root; pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 1024; }
http {
  access_log off; client_body_temp_path %(d)s; uwsgi_temp_path %(d)s;
  server {
    listen 127.0.0.1:%(port)d;
    location / { include /etc/nginx/uwsgi_params; uwsgi_pass 127.0.0.1:%(bport)d; }
  }
}
""" % {"d": tmp, "port": port, "bport": bport})
    return path


def one_round(name, aiserve, seconds):
    tmp = tempfile.mkdtemp(prefix="bench-uwsgi-")
    bport, port = free_port(), free_port()
    b = subprocess.Popen(backend(name, bport, aiserve), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    n = subprocess.Popen(["/usr/sbin/nginx", "-c", nginx_conf(tmp, port, bport), "-p", tmp],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as r:
                    if r.status == 200:
                        break
            except Exception:
                if time.monotonic() > deadline or b.poll() is not None:
                    raise RuntimeError("%s behind nginx did not answer" % name)
                time.sleep(0.1)
        wrk(port, 1)  # warm-up
        cpu0 = group_cpu(b.pid)
        r = wrk(port, seconds)
        r["cpu_us"] = (group_cpu(b.pid) - cpu0) * 1e6 / max(1, r["rps"] * seconds)
        return r
    finally:
        stop(n)
        stop(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--aiserve", action="append",
                    help="the aiserve binary (default build/aiserve); repeat as NAME=PATH to "
                         "interleave builds, e.g. --aiserve old=/tmp/a --aiserve new=build/aiserve")
    a = ap.parse_args()
    builds = {}
    for spec in a.aiserve or [os.path.join(ROOT, "build", "aiserve")]:
        name, _, path = spec.rpartition("=")
        builds["aiserve" + ("-" + name if name else "")] = path
    names = list(builds) + ["uwsgi"]
    res = {k: [] for k in names}
    for i in range(a.rounds):
        for k in names:
            r = one_round("uwsgi" if k == "uwsgi" else "aiserve", builds.get(k), a.seconds)
            res[k].append(r)
            print("  round %d %-12s %9.1f rps  p50 %6.2f ms  p99 %7.2f ms  %5.0f us backend CPU/req"
                  % (i + 1, k, r["rps"], r["p50"], r["p99"], r["cpu_us"]), flush=True)
    med = {k: {f: statistics.median(x[f] for x in res[k]) for f in ("rps", "p50", "p99", "cpu_us")}
           for k in names}
    print("\nFlask hello over the uwsgi protocol, nginx uwsgi_pass in front, wrk -t1 -c16, "
          "2 processes x 1 thread, medians of %d rounds" % a.rounds)
    print("| backend | RPS | p50 ms | p99 ms | backend CPU us/req | RPS vs uWSGI |")
    print("|---|---|---|---|---|---|")
    for k in names:
        m = med[k]
        print("| %s | %.1f | %.2f | %.2f | %.0f | %.2fx |" % (k, m["rps"], m["p50"], m["p99"],
                                                             m["cpu_us"],
                                                             m["rps"] / med["uwsgi"]["rps"]))


if __name__ == "__main__":
    main()
