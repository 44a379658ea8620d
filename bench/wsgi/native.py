#!/usr/bin/python3
"""Python apps calling the native engine in-process (issue 14): the article's
Flask app with its forward pass through `aiserve.infer`
(examples/article/demo_native.py), against

  route   the same model's native `GET /` (model-route, no Python), same processes
  torch   the article's stack: uWSGI + Flask + torch (examples/article/demo.py, its ini)

and the batching it gets with 8 app threads per worker. aiload drives `GET /`
on each in turn (never in parallel), rounds interleaved; medians and ratios.

    bench/wsgi/native.py [--rounds 3] [--seconds 10] [--users 64] [--build build]
                         [--only native,route,torch,native8]

Goals printed with the table: native >= 0.8x route; native >= 10x torch;
native8 (2 x 8 threads) average batch > 1 (inference_count / execution_count
from /v2/models/mnv2/stats).
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import free_port, stop, wait_ready  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTICLE = os.path.join(ROOT, "examples", "article")
MODEL = os.path.join(ROOT, "models", "mobilenetv2-160.onnx")


def spawn(args, cwd=None, env=None):
    return subprocess.Popen(args, cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start(case, build, port):
    aiserve = os.path.join(build, "aiserve")
    common = ["--http=127.0.0.1:%d" % port, "--disable-logging", "--max-queue=1024"]
    if case in ("native", "native8"):
        threads = 4 if case == "native" else 8
        p = spawn([aiserve, "uwsgi_native.ini", "--threads=%d" % threads] + common, cwd=ARTICLE)
        wait_ready("http://127.0.0.1:%d/v2/health/ready" % port, p, timeout=180)
    elif case == "route":
        p = spawn([aiserve, "--processes=2", "--threads=1", "--model=mnv2=" + MODEL,
                   "--model-route=/=mnv2"] + common)
        wait_ready("http://127.0.0.1:%d/v2/health/ready" % port, p, timeout=180)
    elif case == "torch":
        ini = tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False)
        with open(os.path.join(ARTICLE, "uwsgi.ini")) as f:
            text = f.read().replace("http = 0.0.0.0:5000", "http = 127.0.0.1:%d" % port)
        ini.write(text + "plugins = python3,http\nchdir = %s\ndisable-logging = true\n" % ARTICLE)
        ini.close()
        p = spawn(["uwsgi", "--ini", ini.name], env=dict(os.environ, TORCH_THREADS="1"))
    else:
        raise ValueError(case)
    wait_ready("http://127.0.0.1:%d/" % port, p, timeout=180)
    return p


def load(build, url, seconds, users, warm=2):
    base = [os.path.join(build, "aiload"), url, "-c", str(users), "--threads", "1",
            "--only-summary", "--timeout", "60"]
    subprocess.run(base + ["-d", "%ds" % warm], capture_output=True, timeout=warm + 60)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(base + ["-d", "%ds" % seconds, "--json", out.name], capture_output=True,
                       text=True, timeout=seconds + 90)
        s = json.load(open(out.name))
    t = s["total"]
    return {"rps": s["rps"], "p50": t["percentiles_ms"]["50"], "p99": t["percentiles_ms"]["99"],
            "fail": s["failures"]}


def avg_batch(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/v2/models/mnv2/stats" % port) as r:
        s = json.load(r)["model_stats"][0]
    return s["inference_count"] / max(1, s["execution_count"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", default="native,route,torch,native8")
    a = ap.parse_args()
    cases = [c for c in a.only.split(",") if c]
    runs = {c: [] for c in cases}
    for r in range(a.rounds):
        for c in cases:
            port = free_port()
            try:
                p = start(c, a.build, port)
            except Exception as e:
                print("  %s: did not start: %s" % (c, e), flush=True)
                continue
            try:
                res = load(a.build, "http://127.0.0.1:%d/" % port, a.seconds, a.users)
                if c != "torch":
                    res["batch"] = avg_batch(port)
            finally:
                stop(p, signal.SIGKILL)
            runs[c].append(res)
            print("  round %d %-8s %8.1f rps  p50 %7.2f ms  p99 %7.2f ms  fail %d%s" %
                  (r + 1, c, res["rps"], res["p50"], res["p99"], res["fail"],
                   "  avg batch %.2f" % res["batch"] if "batch" in res else ""), flush=True)
    med = {c: statistics.median(x["rps"] for x in v) for c, v in runs.items() if v}
    print("\nGET /, aiload -c %d, medians of %d rounds" % (a.users, a.rounds))
    print("| case | RPS | p50 ms | p99 ms | failures | avg batch |")
    print("|---|---|---|---|---|---|")
    for c, v in runs.items():
        if not v:
            print("| %s | failed | | | | |" % c)
            continue
        b = [x["batch"] for x in v if "batch" in x]
        print("| %s | %.1f | %.2f | %.2f | %d | %s |" % (
            c, med[c], statistics.median(x["p50"] for x in v),
            statistics.median(x["p99"] for x in v), sum(x["fail"] for x in v),
            "%.2f" % statistics.median(b) if b else "-"))

    def goal(what, ok):
        print("- %s: %s" % (what, "met" if ok else "NOT met"))
    if "native" in med and "route" in med:
        goal("native / route = %.2fx (goal >= 0.8x)" % (med["native"] / med["route"]),
             med["native"] >= 0.8 * med["route"])
    if "native" in med and "torch" in med:
        goal("native / torch = %.1fx (goal >= 10x)" % (med["native"] / med["torch"]),
             med["native"] >= 10 * med["torch"])
    if runs.get("native8"):
        b = statistics.median(x["batch"] for x in runs["native8"])
        goal("native8 average batch %.2f (goal > 1)" % b, b > 1)


if __name__ == "__main__":
    main()
