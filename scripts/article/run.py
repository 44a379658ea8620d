"""The article's experiments, reproduced with aiload against real servers on
this machine (`make article`; ARTICLE_SECONDS=N sets the load per row,
default 20). Writes article/report.md and one SVG chart of RPS over time per
experiment (like the article's Locust screenshots), and states each of the
article's conclusions next to the measured numbers.

Nothing is downloaded: the I/O upstream is aiserve's own built-in /delay/2
(the article calls httpbin.org/delay/2), and torch from Debian stands in for
TensorFlow (examples/article/demo.py: torchvision's MobileNetV2 at 160x160,
random weights). Every server runs in its own session and is killed with it.
"""
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "scripts", "article")
APPS = os.path.join(ROOT, "examples", "article")
BUILD = os.environ.get("AISERVE_BUILD", os.path.join(ROOT, "build"))
PY = "/usr/bin/python3"
MODEL = os.path.join(ROOT, "models", "mobilenetv2-160.onnx")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process in its own session; stop() kills the whole group."""

    def __init__(self, argv, cwd, env, log):
        self.log = log
        self.p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.p.wait(timeout=5)
                if sig == signal.SIGTERM:
                    os.killpg(self.p.pid, signal.SIGKILL)  # workers left behind
            except (subprocess.TimeoutExpired, ProcessLookupError):
                continue
            break
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def wait_ready(port, server, timeout):
    """Until GET / answers 200 (the first forward pass included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            return "exited with %s before answering" % server.p.returncode
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=30) as r:
                if r.status == 200:
                    return None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return "no answer within %d s" % timeout


def log_tail(path, n=6):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(line.strip() for line in f.readlines()[-n:])
    except OSError:
        return ""


# ---- the rows ----

def torch_env():
    env = dict(os.environ)
    # one intra-op thread per worker: the experiment is about processes vs
    # threads, not about torch's own pool (and it keeps preforking safe)
    env["TORCH_THREADS"] = "1"
    return env


def aiserve(*args):
    return [os.path.join(BUILD, "aiserve"), "--disable-logging", *args]


def uwsgi(port, processes, threads):
    return ["uwsgi", "--plugins", "http,python3", "--http", "127.0.0.1:%d" % port, "--module", "demo:app",
            "--master", "--processes", str(processes), "--threads", str(threads),
            "--enable-threads", "--need-app", "--lazy-apps", "--listen", "100",
            "--disable-logging", "--die-on-term"]


ROWS = [
    # (id, experiment, server, configuration, argv(port, upstream), cwd, env)
    ("io-flask-single", "io", "Flask dev server", "threaded=False",
     lambda p: [PY, os.path.join(HERE, "flask_dev.py"), "io_demo", str(p), "single"], "io"),
    ("io-flask-threaded", "io", "Flask dev server", "threaded=True",
     lambda p: [PY, os.path.join(HERE, "flask_dev.py"), "io_demo", str(p), "threaded"], "io"),
    ("cpu-flask-single", "cpu", "Flask dev server", "threaded=False",
     lambda p: [PY, os.path.join(HERE, "flask_dev.py"), "demo", str(p), "single"], "cpu"),
    ("cpu-flask-threaded", "cpu", "Flask dev server", "threaded=True",
     lambda p: [PY, os.path.join(HERE, "flask_dev.py"), "demo", str(p), "threaded"], "cpu"),
    ("cpu-uwsgi-1x2", "cpu", "uWSGI", "1 process x 2 threads", lambda p: uwsgi(p, 1, 2), "cpu"),
    ("cpu-uwsgi-2x1", "cpu", "uWSGI", "2 processes x 1 thread", lambda p: uwsgi(p, 2, 1), "cpu"),
    ("cpu-gunicorn-2x1", "cpu", "gunicorn", "2 workers x 1 thread",
     lambda p: ["gunicorn", "-w", "2", "--threads", "1", "-b", "127.0.0.1:%d" % p, "demo:app"],
     "cpu"),
    ("cpu-aiserve-wsgi-2x1", "cpu", "aiserve WSGI", "2 processes x 1 thread",
     lambda p: aiserve("--http", "127.0.0.1:%d" % p, "--module", "demo:app", "--master",
                       "--processes", "2", "--threads", "1", "--need-app"), "cpu"),
    ("cpu-aiserve-infer-2x1", "cpu", "aiserve + aiserve.infer", "2 processes x 1 thread",
     None, "infer"),
    ("cpu-aiserve-native-2x1", "cpu", "aiserve native (model-route = /=mnv2)",
     "2 processes x 1 thread, max-batch-size 8",
     lambda p: aiserve("--http", "127.0.0.1:%d" % p, "--master", "--processes", "2", "--threads",
                       "1", "--model", "mnv2=" + MODEL, "--model-route", "/=mnv2",
                       "--max-batch-size", "8", "--batch-delay-us", "0"), "native"),
]


def infer_available():
    """Whether aiserve gives its apps an `aiserve.infer` module: a probe app
    that imports it must load (need-app refuses to start otherwise)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        app = os.path.join(d, "probe.py")
        with open(app, "w") as f:
            f.write("import aiserve.infer  # noqa\n\n"
                    "def application(e, s):\n    s('200 OK', [])\n    return [b'ok']\n")
        log = open(os.path.join(d, "log"), "w+")
        s = Server(aiserve("--http", "127.0.0.1:%d" % port, "--wsgi-file", app, "--need-app"),
                   d, dict(os.environ), log)
        why = wait_ready(port, s, 30)
        s.stop()
        log.close()
        return why is None, log_tail(os.path.join(d, "log"), 3)


def run_load(port, users, seconds, prefix):
    """aiload's quick mode, closed model; its JSON summary and CSV history."""
    argv = [os.path.join(BUILD, "aiload"), "http://127.0.0.1:%d/" % port, "-c", str(users), "-d",
            "%ds" % seconds, "--threads", "1", "--timeout", "30", "-s", "0.01", "--json", prefix + ".json",
            "--csv", prefix]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    with open(prefix + ".json") as f:
        summary = json.load(f)
    history = []
    with open(prefix + "_stats_history.csv") as f:
        for row in csv.DictReader(f):
            if row.get("Name") == "Aggregated":
                history.append(float(row["Requests/s"]))
    return summary, history, p


def total_entry(summary):
    return summary["total"]


def pct(entry, label):
    return float(entry["percentiles_ms"][label])


# ---- charts (SVG written here: no plotting library) ----

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def svg_lines(title, series, path):
    w, h, left, bottom, top, right = 860, 360, 60, 40, 30, 350
    pw, ph = w - left - right, h - top - bottom
    ymax = max([v for _, ys in series for v in ys] + [1]) * 1.1
    xmax = max([len(ys) for _, ys in series] + [2]) - 1
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18" font-size="14">%s</text>' % (left, esc(title))]
    for k in range(5):
        y = top + ph - ph * k / 4
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>'
                   % (left, y, left + pw, y))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%.1f</text>'
                   % (left - 5, y + 4, ymax * k / 4))
    out.append('<text x="%d" y="%d">seconds</text>' % (left + pw // 2, h - 8))
    out.append('<text x="12" y="%d" transform="rotate(-90 12 %d)">requests/s</text>'
               % (top + ph // 2, top + ph // 2))
    for i, (name, ys) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        pts = " ".join("%.1f,%.1f" % (left + pw * x / max(xmax, 1), top + ph - ph * y / ymax)
                       for x, y in enumerate(ys))
        if pts:
            out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                       % (c, pts))
        ly = top + 14 + 18 * i
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                   % (left + pw + 10, ly - 10, c))
        out.append('<text x="%d" y="%d">%s</text>' % (left + pw + 28, ly, esc(name)))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---- the run ----

def measure_row(row, seconds, work, upstream):
    rid, exp, server, config, argv_of, kind = row
    res = {"id": rid, "experiment": exp, "server": server, "config": config, "rps": None,
           "p50_ms": None, "p99_ms": None, "requests": 0, "failures": 0, "history": [],
           "note": ""}
    if argv_of is None:
        ok, tail = infer_available()
        tail = tail.split(" | ")[-1][:200]
        if not ok:
            res["note"] = ("not available: aiserve does not give its apps an `aiserve.infer` "
                           "module yet (another issue adds it); a probe app importing it fails "
                           "to load" + (" (" + tail + ")" if tail else ""))
            return res
        res["note"] = "aiserve.infer imports, but this runner has no app for it yet"
        return res
    port = free_port()
    env = torch_env() if kind in ("cpu", "native") else dict(os.environ)
    if kind == "io":
        env["UPSTREAM"] = upstream
    log_path = os.path.join(work, rid + ".log")
    log = open(log_path, "w")
    s = Server(argv_of(port), APPS, env, log)
    try:
        why = wait_ready(port, s, 180)
        if why:
            res["note"] = "did not start: %s (%s)" % (why, log_tail(log_path))
            return res
        users = 10 if exp == "io" else 4
        summary, hist, p = run_load(port, users, seconds, os.path.join(work, rid))
        e = total_entry(summary)
        # requests still in flight at the run time's end are cut (-s 0.01) and
        # recorded as StopTimeout failures: they are not the server's failures,
        # and counting them late would lift the rate of a slow server
        cut = sum(x.get("occurrences", 0) for x in summary.get("errors", [])
                  if "StopTimeout" in x.get("error", ""))
        done = int(e["num_requests"]) - cut
        res.update(rps=done / float(summary["duration_s"] or seconds), p50_ms=pct(e, "50"),
                   p99_ms=pct(e, "99"), requests=done, failures=int(e["num_failures"]) - cut,
                   history=hist, users=users)
    finally:
        s.stop()
        log.close()
    return res


def run_advise(seconds, work):
    """The article's open question for its CPU-bound app: aiload advise on
    demo.py under aiserve. Returns (recommendation or None, its output)."""
    budget = max(24, 6 * seconds)
    out = os.path.join(work, "advise.json")
    argv = [os.path.join(BUILD, "aiload"), "advise", "--budget", "%ds" % budget, "--max-threads",
            "4", "--json", out, "--", os.path.join(BUILD, "aiserve"), "--disable-logging",
            "--module", "demo:app", "--need-app"]
    p = subprocess.run(argv, cwd=APPS, env=torch_env(), capture_output=True, text=True,
                       timeout=budget + 300)
    rec = None
    if p.returncode == 0 and os.path.exists(out):
        with open(out) as f:
            rec = json.load(f)["recommendation"]
    return rec, p.stdout.strip() or p.stderr.strip()[-2000:]


def fmt(v, f="%.2f"):
    return "n/a" if v is None else f % v


def ratio(a, b):
    return a["rps"] / b["rps"] if a["rps"] and b["rps"] else None


def verdict(r, yes_above, what):
    if r is None:
        return "not measured"
    return ("**yes**: x%.2f %s" % (r, what)) if r >= yes_above else \
        ("**no** (x%.2f %s)" % (r, what))


def report(results, seconds, outdir, advice=None):
    by = {r["id"]: r for r in results}
    io_series = [(r["server"] + " " + r["config"], r["history"])
                 for r in results if r["experiment"] == "io" and r["history"]]
    # the native server is an order of magnitude faster: its own chart, so
    # the Python servers' lines stay readable
    cpu_series = [(r["server"] + " " + r["config"], r["history"]) for r in results
                  if r["experiment"] == "cpu" and r["history"] and "native" not in r["id"]]
    native_series = [(r["server"].split(" (")[0] + " " + r["config"].split(",")[0], r["history"])
                     for r in results if "native" in r["id"] and r["history"]]
    svg_lines("I/O-bound app (upstream answers after 2 s): requests/s", io_series,
              os.path.join(outdir, "io_rps.svg"))
    svg_lines("CPU-bound app (MobileNetV2 forward pass, Python): requests/s", cpu_series,
              os.path.join(outdir, "cpu_rps.svg"))
    svg_lines("CPU-bound app, aiserve native (no Python): requests/s", native_series,
              os.path.join(outdir, "native_rps.svg"))
    t_io = ratio(by["io-flask-threaded"], by["io-flask-single"])
    t_cpu = ratio(by["cpu-flask-threaded"], by["cpu-flask-single"])
    p_cpu = ratio(by["cpu-uwsgi-2x1"], by["cpu-uwsgi-1x2"])
    lines = [
        "# The article, reproduced",
        "",
        "Generated by `make article` (scripts/article/run.py) on %s: %d s of load per row, "
        "aiload's closed model (10 users for the I/O app, 4 for the CPU app, no wait time), "
        "%d online cores." % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), seconds,
                              os.cpu_count()),
        "",
        "- The I/O upstream is aiserve's built-in `/delay/2` on this machine (the article "
        "calls `https://httpbin.org/delay/2`); nothing is downloaded.",
        "- TensorFlow is not packaged for Debian: torch (Debian's python3-torch) stands in, "
        "with torchvision's MobileNetV2 at 160x160 (random weights) and one intra-op thread per "
        "worker (`TORCH_THREADS=1`).",
        "- uWSGI is Debian's uwsgi-core with its python3 plugin, `lazy-apps = true` as the "
        "article advises for TensorFlow.",
        "",
        "## The article's conclusions, next to the numbers",
        "",
        "| the article says | measured here |",
        "| --- | --- |",
        "| threads give the I/O-bound app a much higher RPS | %s (threaded=True %s req/s vs "
        "threaded=False %s req/s) |" % (verdict(t_io, 1.5, "with threads"),
                                         fmt(by["io-flask-threaded"]["rps"]),
                                         fmt(by["io-flask-single"]["rps"])),
        "| threads help the CPU-bound app only a little | %s (threaded=True %s req/s vs "
        "threaded=False %s req/s) |" % (
            ("**yes**: x%.2f, at most a little" % t_cpu) if t_cpu is not None and t_cpu < 1.3 else
            verdict(t_cpu, 1e9, "with threads"),
            fmt(by["cpu-flask-threaded"]["rps"]), fmt(by["cpu-flask-single"]["rps"])),
        "| two processes raise the CPU-bound app's RPS fundamentally over 1 process x 2 "
        "threads (uWSGI) | %s (2x1 %s req/s vs 1x2 %s req/s) |" % (
            verdict(p_cpu, 1.3, "with processes"), fmt(by["cpu-uwsgi-2x1"]["rps"]),
            fmt(by["cpu-uwsgi-1x2"]["rps"])),
        "",
        "Load average of this machine when the report was written: %.1f on %d cores. On a "
        "loaded machine (other work on the same cores) the process gain shrinks: a second "
        "process only helps as far as a second core is free." % (os.getloadavg()[0],
                                                                   os.cpu_count()),
        "",
        "## Results",
        "",
        "| experiment | server | configuration | RPS | p50 ms | p99 ms | requests | failures "
        "| note |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append("| %s | %s | %s | %s | %s | %s | %d | %d | %s |" % (
            "I/O-bound" if r["experiment"] == "io" else "CPU-bound", r["server"], r["config"],
            fmt(r["rps"]), fmt(r["p50_ms"], "%.1f"), fmt(r["p99_ms"], "%.1f"), r["requests"],
            r["failures"], r["note"].replace("|", "/")))
    if advice is not None:
        rec, text = advice
        lines += ["", "## The article's open question: threads or processes?", "",
                  "The article ends on it: whether an app is I/O- or CPU-bound \"is not always "
                  "obvious\". `aiload advise` measures it; here for the CPU-bound app under "
                  "aiserve (`aiload advise -- aiserve --module demo:app`):", ""]
        if rec:
            lines += ["**Recommendation: %d process%s x %d thread%s** (%s), %.2f req/s at "
                      "saturation." % (rec["processes"], "" if rec["processes"] == 1 else "es",
                                       rec["threads"], "" if rec["threads"] == 1 else "s",
                                       rec["kind"], rec["rps"]), ""]
        else:
            lines += ["The advisor gave no recommendation (see its output).", ""]
        lines += ["```", text, "```"]
    lines += ["", "## RPS over time", "", "![I/O-bound app](io_rps.svg)", "",
              "![CPU-bound app](cpu_rps.svg)", "",
              "![CPU-bound app, native](native_rps.svg)", ""]
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"seconds": seconds, "results": results}, f, indent=1)


def main():
    seconds = int(os.environ.get("ARTICLE_SECONDS", "20"))
    outdir = os.environ.get("ARTICLE_OUT", os.path.join(ROOT, "article"))
    only = os.environ.get("ARTICLE_ONLY")  # comma list of row ids (development)
    os.makedirs(outdir, exist_ok=True)
    for tool in ("aiserve", "aiload"):
        if not os.access(os.path.join(BUILD, tool), os.X_OK):
            sys.exit("article: %s is not built (make all)" % tool)
    work = tempfile.mkdtemp(prefix="article-")
    up_port = free_port()
    up_log = open(os.path.join(work, "upstream.log"), "w")
    upstream = Server(aiserve("--http", "127.0.0.1:%d" % up_port, "--processes", "1"), ROOT,
                      dict(os.environ), up_log)
    results = []

    def on_term(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", up_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        url = "http://127.0.0.1:%d/delay/2" % up_port
        for row in ROWS:
            if only and row[0] not in only.split(","):
                continue
            print("article: %s (%s, %s) ..." % (row[0], row[2], row[3]), file=sys.stderr,
                  flush=True)
            r = measure_row(row, seconds, work, url)
            print("article:   %s req/s, %d failures%s" % (fmt(r["rps"]), r["failures"], "  " + r["note"] if r["note"] else ""),
                  file=sys.stderr, flush=True)
            results.append(r)
        if not only:
            print("article: aiload advise on the CPU-bound app ...", file=sys.stderr, flush=True)
            advice = run_advise(seconds, work)
            print("article:   %s" % (advice[0] and "%dx%d" % (advice[0]["processes"],
                                                             advice[0]["threads"])),
                  file=sys.stderr, flush=True)
            report(results, seconds, outdir, advice)
            print("article: wrote %s" % os.path.join(outdir, "report.md"), file=sys.stderr)
    finally:
        upstream.stop()
        up_log.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
