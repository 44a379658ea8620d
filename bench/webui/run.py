#!/usr/bin/python3
"""Web UI benchmark: aiload's UI vs Locust's (Debian python3-locust), each started with
--autostart and the same closed-model load against the same nginx target, side by side,
rounds interleaved. Measured while the load runs:

  * how fast the UI answers GET /stats/requests (median and p95 of N polls, one at a time),
  * the achieved load (requests/s from the tool's own final stats),
  * GET /stats/report: time to produce it and its size, and whether it holds chart data.

    bench/webui/run.py [--rounds 2] [--seconds 8] [--users 20] [--aiload build/aiload]

Prints medians over rounds and aiload/Locust ratios. Never a test: timings on a shared
machine are noisy; compare only numbers from the same run.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import free_port, start_nginx, stop  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wait_http(url, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                r.read()
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def start(args, **kw):
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, **kw)


def nginx_target(tmp):
    port = free_port()
    p = start_nginx(os.path.join(tmp, "nginx"), port, workers=1, conns=1024)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/hello")
    return p, url


def get(url, timeout=30):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return (time.perf_counter() - t0) * 1000, body


def measure(base, seconds, polls):
    time.sleep(2)  # let the users spawn
    lat = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(lat) < polls:
        ms, _ = get(base + "/stats/requests")
        lat.append(ms)
        time.sleep(0.02)
    _, body = get(base + "/stats/requests")
    st = json.loads(body)
    agg = st["stats"][-1]
    rps = agg.get("total_rps") or agg.get("current_rps") or 0
    rep_ms, rep = get(base + "/stats/report")
    tasks = sorted(get(base + "/tasks")[0] for _ in range(50))  # the Current ratio tab
    text = rep.decode("utf-8", "replace")
    charts = ("aiload-history" in text) or ("rps" in text and "echarts" in text.lower())
    lat.sort()
    return {"poll_p50": statistics.median(lat), "poll_p95": lat[int(len(lat) * 0.95) - 1],
            "polls": len(lat), "rps": rps, "report_ms": rep_ms, "report_kb": len(rep) / 1024,
            "charts": charts, "tasks_p50": statistics.median(tasks)}


def run_aiload(binary, tmp, target, users, seconds, polls):
    sc = os.path.join(tmp, "bench.ini")
    with open(sc, "w") as f:
        f.write(f"[settings]\nhost = {target}\n\n[user web]\nwait_time = constant(0)\n\n"
                "[task]\npath = /hello\n")
    port = free_port()
    p = start([binary, "-f", sc, "-P", str(port), "--autostart", "-u", str(users),
               "-r", str(users), "--threads", "1"])
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/stats/requests")
        return measure(base, seconds, polls)
    finally:
        stop(p)


def run_locust(tmp, target, users, seconds, polls):
    lf = os.path.join(tmp, "locustfile.py")
    with open(lf, "w") as f:
        f.write("from locust import FastHttpUser, task, constant\n\n"
                "class Web(FastHttpUser):\n    wait_time = constant(0)\n\n"
                "    @task\n    def hello(self):\n        self.client.get('/hello')\n")
    port = free_port()
    p = start(["/usr/bin/python3", "-m", "locust", "-f", lf, "--web-host", "127.0.0.1",
               "-P", str(port), "--autostart", "-u", str(users), "-r", str(users),
               "-H", target], cwd=tmp)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/stats/requests")
        return measure(base, seconds, polls)
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--polls", type=int, default=200)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--aiload", default=os.path.join(ROOT, "build", "aiload"))
    a = ap.parse_args()
    for need in ("nginx",):
        if not shutil.which(need):
            sys.exit(f"{need} is needed: run scripts/install-deps.sh")
    res = {"aiload": [], "locust": []}
    with tempfile.TemporaryDirectory() as tmp:
        ng, target = nginx_target(tmp)
        try:
            for r in range(a.rounds):
                res["aiload"].append(run_aiload(a.aiload, tmp, target, a.users, a.seconds, a.polls))
                res["locust"].append(run_locust(tmp, target, a.users, a.seconds, a.polls))
                print(f"round {r + 1}: " + "; ".join(
                    f"{k} poll p50 {v[-1]['poll_p50']:.2f} ms, {v[-1]['rps']:.0f} req/s"
                    for k, v in res.items()), flush=True)
        finally:
            stop(ng)
    med = {k: {m: statistics.median(x[m] for x in v) for m in v[0] if m != "charts"}
           for k, v in res.items()}
    print(f"\nweb UI under load: {a.users} users, wait 0, nginx target, aiload --threads 1 vs "
          f"Locust 2.12 FastHttpUser (1 process); {a.rounds} rounds, medians")
    print(f"{'metric':34} {'aiload':>10} {'locust':>10} {'aiload/locust':>14}")
    rows = [("GET /stats/requests p50 (ms)", "poll_p50"), ("GET /stats/requests p95 (ms)", "poll_p95"),
            ("load while polled (req/s)", "rps"), ("GET /stats/report (ms)", "report_ms"),
            ("HTML report size (KB)", "report_kb"), ("GET /tasks p50 (ms)", "tasks_p50")]
    for label, m in rows:
        x, y = med["aiload"][m], med["locust"][m]
        print(f"{label:34} {x:10.2f} {y:10.2f} {x / y if y else float('nan'):14.2f}")
    print(f"{'report has chart data':34} {str(all(x['charts'] for x in res['aiload'])):>10} "
          f"{str(all(x['charts'] for x in res['locust'])):>10}")


if __name__ == "__main__":
    main()
