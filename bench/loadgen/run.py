#!/usr/bin/python3
"""aiload vs wrk vs Locust (FastHttpUser), requests per second per generator core.

Rows: aiload's quick mode (`aiload URL`), aiload with an ini scenario (one
user class, one `GET /` task, `constant(0)`: the scenario path of the same
request), wrk, Locust FastHttpUser (`constant(0)`, same users), and the https
pair. Locust's CPU is counted from the moment it starts ramping users (its
`/proc` CPU read when it logs "Ramping to"), so its start-up (imports, about
a second of CPU) is not charged to the load; the start-up is printed apart.

Target: Debian's nginx, `return 200`, keep-alive, one worker, on 127.0.0.1.
The https rows use the same nginx on a second port with TLS (a throw-away
self-signed P-256 certificate made with the openssl CLI; TLS 1.3, keep-alive):
aiload -k and wrk (which does not verify either), same threads/connections.
Each generator runs with the same threads and connections/users for the same
time, rounds interleaved (aiload, wrk, locust, then again). Per-core RPS =
requests / CPU seconds (user + system) the generator process used, so a
generator that cannot saturate nginx is not penalised for nginx's limits.

Usage: bench/loadgen/run.py [--rounds 3] [--duration 10] [--connections 50]
                            [--threads 1] [--no-locust] [--no-https] [--no-ini]
                            [--build DIR]
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import free_port, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_cert(tmp):
    key, crt = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days",
                    "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return key, crt


def start_nginx(tmp, port, tls_port=None):
    tls = ""
    if tls_port:
        key, crt = make_cert(tmp)
        tls = f"""
    server {{
        listen 127.0.0.1:{tls_port} ssl backlog=4096;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location / {{ return 200 "ok\\n"; }}
    }}"""
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
daemon off;
error_log {tmp}/error.log;
pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok\\n"; }}
    }}{tls}
}}
""")
    p = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    if tls_port:
        wait_port(tls_port)
    return p


def run_timed(args, timeout, **kw):
    """Runs args; returns (stdout+stderr text, CPU seconds of it and its children)."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True, **kw)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
    return out, p.returncode


class CpuMeter:
    """CPU seconds consumed by reaped children since the last mark."""

    def __init__(self):
        self.mark()

    def mark(self):
        r = os.times()
        self.last = r.children_user + r.children_system

    def delta(self):
        r = os.times()
        now = r.children_user + r.children_system
        d, self.last = now - self.last, now
        return d


def bench_wrk(url, a, meter):
    meter.mark()
    out, rc = run_timed(["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{a.duration}s",
                         url], a.duration + 30)
    cpu = meter.delta()
    m = re.search(r"(\d+) requests in ([\d.]+)s", out)
    if rc != 0 or not m:
        raise RuntimeError("wrk failed:\n" + out)
    return int(m.group(1)), float(m.group(2)), cpu


SCENARIO = """[user U]
wait_time = constant(0)

[task U]
method = GET
path = /
"""


def bench_aiload(url, a, meter, tmp, ini=False):
    js = os.path.join(tmp, "aiload.json")
    tls = ["-k"] if url.startswith("https:") else []
    if ini:
        sc = os.path.join(tmp, "scenario.ini")
        with open(sc, "w") as f:
            f.write(SCENARIO)
        # -H joins as Locust does (text): no trailing slash, so the task's
        # "/" stays "/". Every user starts at once, as in quick mode: with
        # -r = users they would ramp over the first second, with fewer
        # requests per epoll_wait meanwhile (about 7 % more CPU per request
        # in a 2 s probe).
        mode = ["-f", sc, "--headless", "-u", str(a.connections), "-r",
                str(a.connections * 1000),
                "-t", f"{a.duration}s", "-H", url.rstrip("/"), "--only-summary"]
    else:
        mode = [url, "-c", str(a.connections), "-d", str(a.duration)]
    meter.mark()
    out, rc = run_timed([os.path.join(a.build, "aiload"), *mode, "--threads", str(a.threads),
                         "--json", js, *tls], a.duration + 30)
    cpu = meter.delta()
    if rc != 0:
        raise RuntimeError("aiload failed:\n" + out)
    with open(js) as f:
        j = json.load(f)
    if j["failures"]:
        raise RuntimeError(f"aiload: {j['failures']} failed requests: {j['errors'][:3]}")
    return j["requests"], j["duration_s"], cpu


LOCUSTFILE = """
from locust import FastHttpUser, task, constant

class U(FastHttpUser):
    wait_time = constant(0)
    @task
    def t(self):
        self.client.get("/")
"""


def proc_cpu(pid):
    """CPU seconds (user + system) process pid has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_locust(url, a, meter, tmp):
    """Returns (requests, seconds, CPU seconds from the start of the load to
    the end, start-up CPU seconds before it)."""
    lf = os.path.join(tmp, "lf.py")
    with open(lf, "w") as f:
        f.write(LOCUSTFILE)
    meter.mark()
    p = subprocess.Popen([sys.executable, "-m", "locust", "-f", lf, "--headless", "-u",
                          str(a.connections), "-r", str(a.connections), "-t", f"{a.duration}s",
                          "-H", url, "--only-summary", "--stop-timeout", "5"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True, cwd=tmp,
                         env=dict(os.environ, PYTHONWARNINGS="ignore"))
    lines, startup = [], []
    timer = threading.Timer(a.duration + 60, lambda: os.killpg(p.pid, signal.SIGKILL))
    timer.start()
    try:
        for line in p.stdout:  # Locust logs "Ramping to N users ..." as the load begins
            if not startup and "Ramping to" in line:
                try:
                    startup.append(proc_cpu(p.pid))
                except OSError:
                    pass
            lines.append(line)
        p.wait()
    finally:
        timer.cancel()
    cpu = meter.delta()
    out = "".join(lines)
    rows = re.findall(r"^\s+Aggregated\s+(\d+)\s", out, re.M)
    if not rows or not startup:
        raise RuntimeError("locust failed (or never logged 'Ramping to'):\n" + out[-2000:])
    return int(rows[0]), float(a.duration), cpu - startup[0], startup[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-locust", action="store_true")
    ap.add_argument("--no-https", action="store_true", help="leave out the https rows")
    ap.add_argument("--no-ini", action="store_true", help="leave out the ini-scenario row")
    ap.add_argument("--build", default=os.environ.get("AISERVE_BUILD", os.path.join(ROOT, "build")))
    a = ap.parse_args()
    for tool in ("nginx", "wrk") + (() if a.no_https else ("openssl",)):
        if not shutil.which(tool):
            sys.exit(f"bench/loadgen: {tool} is not installed (scripts/install-deps.sh)")
    tmp = tempfile.mkdtemp(prefix="aiload-bench-")
    port = free_port()
    tls_port = None if a.no_https else free_port()
    nginx = start_nginx(tmp, port, tls_port)
    url = f"http://127.0.0.1:{port}/"
    surl = f"https://127.0.0.1:{tls_port}/"
    meter = CpuMeter()
    res = {"aiload": []}
    if not a.no_ini:
        res["aiload-ini"] = []
    res["wrk"] = []
    startups = []
    if not a.no_locust:
        res["locust"] = []
    if tls_port:
        res["aiload-tls"] = []
        res["wrk-tls"] = []
    try:
        print(f"target: nginx return 200 on {url}; {a.threads} thread(s), {a.connections} "
              f"connections/users, {a.duration} s per run, {a.rounds} rounds", flush=True)
        for rnd in range(a.rounds):
            for tool in res:
                if tool == "aiload":
                    n, secs, cpu = bench_aiload(url, a, meter, tmp)
                elif tool == "aiload-ini":
                    n, secs, cpu = bench_aiload(url, a, meter, tmp, ini=True)
                elif tool == "wrk":
                    n, secs, cpu = bench_wrk(url, a, meter)
                elif tool == "aiload-tls":
                    n, secs, cpu = bench_aiload(surl, a, meter, tmp)
                elif tool == "wrk-tls":
                    n, secs, cpu = bench_wrk(surl, a, meter)
                else:
                    n, secs, cpu, boot = bench_locust(url, a, meter, tmp)
                    startups.append(boot)
                rps, per_core = n / secs, n / cpu if cpu > 0 else 0.0
                res[tool].append((rps, per_core, cpu / secs))
                print(f"  round {rnd + 1} {tool:10s} {rps:10.0f} req/s  {cpu / secs:5.2f} cores  "
                      f"{per_core:10.0f} req/s per core", flush=True)
    finally:
        os.killpg(nginx.pid, signal.SIGTERM)
        nginx.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    med = {t: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v),
               statistics.median(r[2] for r in v)) for t, v in res.items()}
    print("\nmedians (per core = requests / generator CPU seconds)")
    print(f"  {'tool':10s} {'req/s':>10s} {'cores':>6s} {'req/s/core':>11s} {'aiload ÷ tool':>14s}")
    for t, (rps, pc, cores) in med.items():
        ours = med["aiload-tls" if t.endswith("-tls") else "aiload"][1]
        ratio = ours / pc if pc else float("nan")
        print(f"  {t:10s} {rps:10.0f} {cores:6.2f} {pc:11.0f} {ratio:13.2f}×")
    if startups:
        print(f"(locust: CPU from the start of its load; its start-up before that, left out: "
              f"median {statistics.median(startups):.2f} s)")
    for ours in ("aiload", "aiload-ini"):
        if ours not in med:
            continue
        print(f"{ours} vs wrk per core: {med[ours][1] / med['wrk'][1]:.2f}×"
              + (f"; vs Locust FastHttpUser: {med[ours][1] / med['locust'][1]:.1f}×"
                 if "locust" in med else ""))
    if "wrk-tls" in med:
        print(f"https: aiload vs wrk per core: {med['aiload-tls'][1] / med['wrk-tls'][1]:.2f}×; "
              f"aiload https vs http per core: {med['aiload-tls'][1] / med['aiload'][1]:.2f}×")


if __name__ == "__main__":
    main()
