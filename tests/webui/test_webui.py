"""aiload's web UI and HTML report against a real target: REST endpoints with
urllib, bad input over raw sockets, and the page itself in Debian's chromium
driven by playwright-core (tests/webui/browser.js)."""
import html
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import ROOT, binary, free_port, post_form, wait_port
from harness import http_request as get
from harness import wait_until as wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
ART = os.path.join(ROOT, "tests", "artifacts", "webui")
BROWSER_JS = os.path.join(HERE, "browser.js")


class Target(BaseHTTPRequestHandler):
    """Stand-in for aiserve's built-ins when aiserve does not answer: /hello at once,
    /delay/{seconds} after that long, anything else 404."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        status = 200 if path == "/hello" or path.startswith("/delay/") else 404
        if path.startswith("/delay/"):
            time.sleep(min(float(path[7:] or 0), 2))
        body = b"hello\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


_aiserve_answers = [None]  # probed once per session: None unknown, then True/False


def aiserve_target(procs):
    """Starts the real aiserve (its built-in /hello and /delay/{s}); None when it is not
    built or does not answer."""
    path = os.path.join(os.environ.get("AISERVE_BUILD", os.path.join(ROOT, "build")), "aiserve")
    if not os.access(path, os.X_OK) or _aiserve_answers[0] is False:
        return None
    port = free_port()
    p = procs.start([path, f"--http=127.0.0.1:{port}", "--disable-logging"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and p.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=1) as r:
                if r.status == 200:
                    _aiserve_answers[0] = True
                    return f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    _aiserve_answers[0] = False
    return None


class TargetUrl(str):
    """The target's base URL; .kind says which server it is ("aiserve" or "python")."""

    kind = "python"


@pytest.fixture
def target(procs):
    host = aiserve_target(procs)
    if host:
        t = TargetUrl(host)
        t.kind = "aiserve"
        yield t
        return
    # aiserve not usable (yet): a Python stand-in keeps the UI tests meaningful
    print("webui tests: aiserve did not answer /hello; using the Python stand-in target")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield TargetUrl(f"http://127.0.0.1:{srv.server_address[1]}")
    srv.shutdown()
    srv.server_close()


def scenario(tmp_path, host, fail=False):
    text = f"""[settings]
host = {host}

[user web]
wait_time = constant(0.05)

[task]
weight = 3
path = /hello

[task]
path = /delay/0.005
name = /delay
"""
    if fail:
        text += "\n[task]\npath = /fail\n"
    p = tmp_path / "scenario.ini"
    p.write_text(text)
    return str(p)


def start_ui(procs, tmp_path, host, *extra, fail=False):
    port = free_port()
    p = procs.start([binary("aiload"), "-f", scenario(tmp_path, host, fail), "-P", str(port),
                     "--web-host", "127.0.0.1", *extra])
    wait_port(port, proc=p)
    return p, f"http://127.0.0.1:{port}"


def stats(base):
    st, _, body = get(base + "/stats/requests")
    assert st == 200
    return json.loads(body)


def node_or_fail():
    if not shutil.which("node") or not os.access("/usr/bin/chromium", os.X_OK):
        pytest.fail("node and /usr/bin/chromium are needed: run scripts/install-deps.sh")
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core")):
        pytest.fail("node_modules/playwright-core is missing: run scripts/install-deps.sh")


def run_browser(*args, timeout=90):
    node_or_fail()
    r = subprocess.run(["node", BROWSER_JS, *args], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def history_json(report_html):
    m = re.search(r'<script id="aiload-history" type="application/json">(.*?)</script>',
                  report_html, re.S)
    assert m, "the report embeds its chart data"
    return json.loads(m.group(1))


def assert_self_contained(report_html):
    assert "Content-Security-Policy\" content=\"default-src 'none'" in report_html, \
        "the saved report forbids itself any fetch"
    assert not re.search(r"<script[^>]+src=", report_html), "no external scripts"
    assert not re.search(r"<link[^>]+href=", report_html), "no external stylesheets"
    assert not re.search(r"url\(\s*['\"]?https?:", report_html), "no remote CSS resources"


# ---- the page in a real browser ----

def test_browser_fills_form_watches_live_charts_edits_stops_and_downloads(procs, tmp_path, target):
    assert target.kind == "aiserve", "the browser test loads a real aiserve (build it first)"
    _, base = start_ui(procs, tmp_path, target)
    art = os.path.join(ART, "live")
    out = run_browser("live", base, target, art)
    assert out["initial_state"] == "ready"
    assert out["rps"] > 0
    assert out["points_after"] >= out["points_before"] + 2, "charts update without a reload"
    assert out["chart_rps_max"] > 0
    for col in ("Median (ms)", "95%ile (ms)", "99%ile (ms)", "Current RPS", "Current Failures/s"):
        assert col in out["columns"]
    assert "99th percentile" in " ".join(out["rt_legend"])
    assert out["phone_overflow"] <= 0
    assert out["table_overflow_1280"] <= 0, f"the statistics table fits a 1280 px screen: {out}"
    assert out["rps_after_stop"] == 0
    # Average size: the first test's /hello body, then (new test, host with a /nosuch prefix)
    # the target's 404 body for /nosuch/hello, never a mix of both runs
    sizes = [len(get(target + p)[2]) for p in ("/hello", "/nosuch/hello")]
    assert sizes[0] != sizes[1]
    assert [int(out["size_first"]), int(out["size_second"])] == sizes, out
    assert int(out["size_second_total"]) == sizes[1], "every path of the prefix is a 404 now"
    # the Current ratio tab: one class "web", /hello weight 3 and /delay weight 1
    assert out["ratios"] == [["100.0% web", "  75.0% /hello", "  25.0% /delay"]] * 2, out["ratios"]
    assert out["ratio_phone_overflow"] <= 0
    assert out["foreign_requests"] == [], "the page loads nothing from outside aiload"
    assert out["page_errors"] == []
    lines = out["csv"].splitlines()
    assert lines[0].startswith("Type,Name,Request Count,Failure Count,Median Response Time")
    hello = [ln for ln in lines if ",/hello," in ln]
    assert hello and int(hello[0].split(",")[2]) > 0, out["csv"]
    assert out["csv_name"].endswith(".csv")
    assert os.path.getsize(os.path.join(art, "webui-charts.png")) > 10000
    # the report downloaded from the page opens offline with its charts
    rep = run_browser("report", out["report_path"], art)
    assert rep["canvases"] == 3 and rep["points"] > 0 and rep["max_rps"] > 0
    assert rep["requests"] == [] and rep["page_errors"] == []


def test_headless_html_report_opens_offline_with_chart_data(procs, tmp_path, target):
    report = tmp_path / "report.html"
    p = procs.start([binary("aiload"), "-f", scenario(tmp_path, target, fail=True), "--headless",
                     "-u", "3", "-r", "30", "-t", "3s", "--html", str(report)])
    p.wait(timeout=30)
    assert report.exists(), p.stderr.read().decode()[-2000:]
    text = report.read_text()
    assert_self_contained(text)
    h = history_json(text)
    n = len(h["time"])
    assert n >= 2
    for k in ("user_count", "rps", "fail_per_sec", "p50", "p95", "p99"):
        assert len(h[k]) == n, k
    assert max(h["rps"]) > 0 and max(h["fail_per_sec"]) > 0
    assert max(v for v in h["p99"] if v is not None) > 0
    for section in ("Request Statistics", "Response Time Statistics", "Failures Statistics"):
        assert section in text
    assert "/hello" in text and "/fail" in text and "HTTPError" in html.unescape(text)
    rep = run_browser("report", str(report), os.path.join(ART, "headless"))
    assert rep["canvases"] == 3
    assert rep["history_len"] == n and rep["points"] == n
    assert rep["requests"] == [], "nothing is fetched when the report is viewed"
    assert rep["page_errors"] == []
    assert "/hello" in rep["names"] and "Aggregated" in rep["names"]


# ---- REST endpoints ----

def test_stats_requests_carries_both_locust_key_sets(procs, tmp_path, target):
    _, base = start_ui(procs, tmp_path, target)
    st, _, body = post_form(base + "/swarm", user_count=3, spawn_rate=30, host=target)
    assert st == 200 and json.loads(body)["success"] is True
    d = wait_for(lambda: (s := stats(base))["stats"][-1]["num_requests"] > 0 and s,
                 what="requests to be counted")
    for k in ("stats", "errors", "total_rps", "total_fail_per_sec", "fail_ratio", "state",
              "user_count", "current_response_time_percentile_50",
              "current_response_time_percentile_95", "current_response_time_percentiles"):
        assert k in d, k
    assert "response_time_percentile_0.95" in d["current_response_time_percentiles"]
    row = d["stats"][0]
    for k in ("method", "name", "num_requests", "num_failures", "min_response_time",
              "max_response_time", "current_rps", "current_fail_per_sec", "avg_response_time",
              "median_response_time", "total_rps", "total_fail_per_sec",
              "response_time_percentile_0.95", "response_time_percentile_0.99",
              "avg_content_length", "ninetieth_response_time", "ninety_ninth_response_time"):
        assert k in row, k
    assert d["stats"][-1]["name"] == "Aggregated"
    assert d["state"] in ("spawning", "running")
    assert d["host"] == target
    st, hd, body = get(base + "/metrics")
    assert st == 200 and hd["Content-Type"].startswith("text/plain; version=0.0.4")
    m = re.search(rb'aiload_requests_total\{method="",name="Aggregated"\} (\d+)', body)
    assert m and int(m.group(1)) > 0, body[:500]
    assert re.search(rb'aiload_response_time_seconds\{method="GET",name="/hello",quantile="0.99"\} ',
                     body)
    assert get(base + "/stop")[0] == 200
    wait_for(lambda: stats(base)["state"] == "stopped", what="stopped")


def test_csv_json_and_report_downloads(procs, tmp_path, target):
    _, base = start_ui(procs, tmp_path, target, "-u", "2", "-r", "20", "--autostart", fail=True)
    wait_for(lambda: stats(base)["stats"][-1]["num_failures"] > 0, what="failures")
    heads = {
        "/stats/requests/csv": "Type,Name,Request Count,Failure Count",
        "/stats/requests_full_history/csv": "Timestamp,User Count,Type,Name,Requests/s",
        "/stats/failures/csv": "Method,Name,Error,Occurrences",
        "/exceptions/csv": "Count,Message,Traceback,Nodes",
    }
    for path, head in heads.items():
        st, hd, body = get(base + path)
        assert st == 200, path
        assert hd["Content-Type"].startswith("text/csv")
        assert hd["Content-Disposition"].startswith("attachment"), path
        assert body.decode().startswith(head), (path, body[:200])
    assert b"/fail" in get(base + "/stats/failures/csv")[2]
    st, hd, body = get(base + "/stats/summary?download=1")
    assert st == 200 and hd["Content-Type"].startswith("application/json")
    json.loads(body)
    st, hd, body = get(base + "/stats/report?download=1")
    assert st == 200 and "attachment" in hd["Content-Disposition"]
    assert_self_contained(body.decode())
    assert history_json(body.decode())["time"]
    st, _, body = get(base + "/exceptions")
    assert json.loads(body) == {"exceptions": []}


def test_swarm_rejects_bad_input_with_a_message_and_keeps_serving(procs, tmp_path, target):
    p, base = start_ui(procs, tmp_path, target)
    bad = [
        {},
        {"user_count": "ten"},
        {"user_count": "-3"},
        {"user_count": "0"},
        {"user_count": "99999999999"},
        {"user_count": "5", "spawn_rate": "0"},
        {"user_count": "5", "spawn_rate": "fast"},
        {"user_count": "5", "run_time": "10 minutes"},
        {"user_count": "5", "run_time": "5s3m"},
        {"user_count": "5", "host": "ftp://example.com"},
        {"user_count": "5", "host": "not a url"},
    ]
    for form in bad:
        st, hd, body = post_form(base + "/swarm", **form)
        assert st == 400, (form, body)
        d = json.loads(body)
        assert d["success"] is False and d["message"], form
    st, _, body = get(base + "/swarm", b"user_count=%zz&spawn_rate=1")
    assert st == 400 and "encoding" in json.loads(body)["message"]
    st, _, body = get(base + "/swarm", b"user_count=2&host=" + b"x" * 300)
    assert st == 400 and "too long" in json.loads(body)["message"]
    assert stats(base)["state"] == "ready", "nothing started"
    assert p.poll() is None


def test_ui_answers_while_every_user_waits_on_a_slow_target(procs, tmp_path, target):
    sc = tmp_path / "slow.ini"
    sc.write_text(f"[settings]\nhost = {target}\n\n[user slow]\n\n[task]\npath = /delay/1.5\n")
    port = free_port()
    p = procs.start([binary("aiload"), "-f", str(sc), "-P", str(port), "--autostart",
                     "-u", "30", "-r", "100"])
    wait_port(port, proc=p)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: stats(base)["user_count"] == 30, what="30 users waiting on the target")
    for _ in range(5):  # the UI thread never waits on the target: each poll is prompt
        st, _, body = get(base + "/stats/requests", timeout=2)
        assert st == 200 and json.loads(body)["state"] in ("spawning", "running")
    assert get(base + "/stop", timeout=2)[0] == 200


def test_cross_site_post_is_refused(procs, tmp_path, target):
    _, base = start_ui(procs, tmp_path, target)
    req = urllib.request.Request(base + "/swarm", data=b"user_count=1&spawn_rate=1",
                                 headers={"Origin": "http://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 403
    assert stats(base)["state"] == "ready", "a page on another site cannot start load"


def test_stats_reset_restarts_counts_and_history(procs, tmp_path, target):
    _, base = start_ui(procs, tmp_path, target, "-u", "2", "-r", "20", "--autostart")
    wait_for(lambda: json.loads(get(base + "/stats/history?from=0")[2])["time"], what="history")
    h0 = json.loads(get(base + "/stats/history?from=0")[2])
    st, _, body = get(base + "/stats/reset")
    assert st == 200 and body == b"ok"
    h1 = json.loads(get(base + "/stats/history?from=0")[2])
    assert h1["epoch"] != h0["epoch"], "the page learns that its charts must start over"
    assert len(h1["time"]) <= 1
    st, _, body = get(base + "/stats/history?from=abc")
    assert st == 400


def test_unknown_paths_and_wrong_methods(procs, tmp_path, target):
    _, base = start_ui(procs, tmp_path, target)
    assert get(base + "/nope")[0] == 404
    assert get(base + "/report.js")[0] == 404, "report-only code is not served"
    assert get(base + "/stop", b"x=1")[0] == 405
    st, hd, body = get(base + "/")
    assert st == 200 and hd["Content-Type"].startswith("text/html") and b"start-form" in body
    assert "default-src 'self'" in hd["Content-Security-Policy"], "the page talks only to aiload"
    assert "default-src 'none'" in get(base + "/stats/report")[1]["Content-Security-Policy"]
    st, hd, body = get(base + "/uplot.js")
    assert st == 200 and len(body) > 20000


# ---- GET /tasks: Locust's "Current ratio" ----

RATIO_SCENARIO = """[settings]
host = {host}

[user Admin]
fixed_count = 1
wait_time = constant(0.05)
[task]
path = /hello
name = admin
tags = api

[user Shop]
weight = 3
wait_time = constant(0.05)
[task]
path = /hello
weight = 3
tags = api
[task]
path = /delay/0.005
name = /delay
tags = web

[user Browse]
sequential = true
wait_time = constant(0.05)
[task]
path = /hello
name = browse-home
weight = 5
tags = web
[task]
path = /delay/0.005
name = /delay
tags = web
"""

# The same classes as a locustfile, for Locust 2.12's own get_ratio() (task functions are
# renamed to aiload's stats names; Browse runs its tasks through a SequentialTaskSet,
# once each per loop as aiload's sequential class does).
LOCUST_RATIO = r"""
import json, sys
from locust import SequentialTaskSet, User, constant
from locust.user.inspectuser import get_ratio

def fn(name):
    def f(self):
        pass
    f.__name__ = name
    return f

class BrowseFlow(SequentialTaskSet):
    tasks = [fn("browse-home"), fn("/delay")]

class Admin(User):
    fixed_count = 1
    wait_time = constant(0)
    tasks = {fn("admin"): 1}

class Shop(User):
    weight = 3
    wait_time = constant(0)
    tasks = {fn("/hello"): 3, fn("/delay"): 1}

class Browse(User):
    wait_time = constant(0)
    tasks = [BrowseFlow]

spawned = json.loads(sys.argv[1])
classes = [Admin, Shop, Browse]
print(json.dumps({"per_class": get_ratio(classes, spawned, False),
                  "total": get_ratio(classes, spawned, True)}))
"""


def ratio_ui(procs, tmp_path, target, *extra):
    sc = tmp_path / "ratio.ini"
    sc.write_text(RATIO_SCENARIO.format(host=target))
    port = free_port()
    p = procs.start([binary("aiload"), "-f", str(sc), "-P", str(port), *extra])
    wait_port(port, proc=p)
    return f"http://127.0.0.1:{port}"


def tasks_json(base):
    st, hd, body = get(base + "/tasks")
    assert st == 200 and hd["Content-Type"] == "application/json", body
    return json.loads(body)


def assert_ratios_equal(got, want, where="tasks"):
    """Same keys at every level and ratios within 1e-9 (aiload prints 15 digits)."""
    assert set(got) == set(want), f"{where}: {sorted(got)} != {sorted(want)}"
    for k in want:
        assert abs(got[k]["ratio"] - want[k]["ratio"]) < 1e-9, f"{where}/{k}: {got[k]} != {want[k]}"
        assert ("tasks" in got[k]) == ("tasks" in want[k]), f"{where}/{k}"
        if "tasks" in want[k]:
            assert_ratios_equal(got[k]["tasks"], want[k]["tasks"], f"{where}/{k}")


def test_tasks_while_running_match_locust_get_ratio(procs, tmp_path, target):
    base = ratio_ui(procs, tmp_path, target, "-u", "6", "-r", "100", "--autostart")
    # per-class counts are merged from the worker threads once a second
    d = wait_for(lambda: (s := stats(base))["state"] == "running"
                 and sum(s["user_classes_count"].values()) == 6 and s, what="6 users running")
    got = tasks_json(base)
    # 6 users: Admin's fixed 1, then 5 split 3:1 by largest remainder: Shop 4, Browse 1
    spawned = {"Admin": 1, "Shop": 4, "Browse": 1}
    r = subprocess.run(["/usr/bin/python3", "-c", LOCUST_RATIO, json.dumps(spawned)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    want = json.loads(r.stdout)
    for half in ("per_class", "total"):
        # aiload's sequential class is the task set itself: Locust's one extra level is flattened
        flow = want[half]["Browse"]["tasks"].pop("BrowseFlow")
        want[half]["Browse"]["tasks"] = flow["tasks"]
        assert_ratios_equal(got[half], want[half], half)
    assert list(got) == ["per_class", "total"]
    assert list(got["total"]) == ["Admin", "Shop", "Browse"], "classes in file order"
    assert abs(got["total"]["Shop"]["tasks"]["/hello"]["ratio"] - 0.5) < 1e-9
    assert abs(sum(t["ratio"] for c in got["total"].values() for t in c["tasks"].values()) - 1) < 1e-9
    assert d["user_classes_count"] == spawned
    # stopped: nobody runs, so the split of the test's 6 users is shown (what ran at the end)
    assert get(base + "/stop")[0] == 200
    wait_for(lambda: stats(base)["state"] == "stopped", what="stopped")
    got = tasks_json(base)
    for cls, share in (("Admin", 1 / 6), ("Shop", 4 / 6), ("Browse", 1 / 6)):
        assert abs(got["per_class"][cls]["ratio"] - share) < 1e-9, (cls, got)
    # the HTML report ends with Locust's "Final ratio", as plain nested lists
    st, _, body = get(base + "/stats/report")
    final = body.decode().split("<h2>Final ratio</h2>", 1)
    assert st == 200 and len(final) == 2, "the report has a Final ratio section"
    total = final[1].split('id="final-total"', 1)[1]
    for pct, name in (("16.7%", "Admin"), ("50.0%", "/hello"), ("8.3%", "browse-home")):
        assert f'<span class="pct">{pct}</span> <span class="rname">{name}</span>' in total, total


def test_tasks_follow_tag_filters_and_equal_weights_before_a_run(procs, tmp_path, target):
    # -T api keeps admin and Shop's /hello; Browse has no api task and is dropped
    base = ratio_ui(procs, tmp_path, target, "-T", "api", "-u", "4")
    got = tasks_json(base)
    assert list(got["per_class"]) == ["Admin", "Shop"], got
    assert got["per_class"]["Shop"]["tasks"] == {"/hello": {"ratio": 1}}
    # -u 4: Admin 1, Shop 3
    assert abs(got["total"]["Shop"]["tasks"]["/hello"]["ratio"] - 0.75) < 1e-9
    assert abs(got["total"]["Admin"]["tasks"]["admin"]["ratio"] - 0.25) < 1e-9

    # -E api --equal-weights: Admin dropped; Shop keeps /delay, Browse both tasks; classes 1:1
    base = ratio_ui(procs, tmp_path, target, "-E", "api", "--equal-weights", "-u", "10")
    got = tasks_json(base)
    assert list(got["total"]) == ["Shop", "Browse"], got
    assert got["per_class"]["Shop"] == {"ratio": 0.5, "tasks": {"/delay": {"ratio": 1}}}
    assert got["total"]["Browse"] == {
        "ratio": 0.5, "tasks": {"browse-home": {"ratio": 0.25}, "/delay": {"ratio": 0.25}}}

    # --equal-weights alone: Shop's 3:1 becomes 1:1; the sequential class is 1/2 each anyway
    base = ratio_ui(procs, tmp_path, target, "--equal-weights", "-u", "3")
    got = tasks_json(base)
    assert got["per_class"]["Shop"]["tasks"] == {"/hello": {"ratio": 0.5}, "/delay": {"ratio": 0.5}}
    assert got["per_class"]["Browse"]["tasks"] == {"browse-home": {"ratio": 0.5},
                                                   "/delay": {"ratio": 0.5}}
    # bad requests: wrong method, junk query (ignored), and the UI keeps serving
    assert get(base + "/tasks", b"x=1")[0] == 405
    st, _, body = get(base + "/tasks?%zz")
    assert st == 200 and json.loads(body) == got


def raw(port, data, read=True):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def test_malformed_http_gets_errors_and_never_crashes(procs, tmp_path, target):
    p, base = start_ui(procs, tmp_path, target)
    port = int(base.rsplit(":", 1)[1])
    assert raw(port, b"\x00\x01\x02garbage\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 40000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431")
    assert raw(port, b"POST /swarm HTTP/1.1\r\nHost: h\r\nContent-Length: 999999\r\n\r\n"
               ).startswith(b"HTTP/1.1 413")
    assert raw(port, b"POST /swarm HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
               ).startswith(b"HTTP/1.1 501")
    # aiserve's request rules (lib/http1): smuggling shapes, Host count, Expect
    for bad, status in [
            (b"POST /swarm HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400"),
            (b"POST /swarm HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
             b"400"),
            (b"GET / HTTP/1.1\r\n\r\n", b"400"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),
            (b"POST /swarm HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", b"501"),
            (b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", b"417")]:
        assert raw(port, bad).startswith(b"HTTP/1.1 " + status), bad
    hdrs = b"".join(b"H%d: v\r\n" % i for i in range(200))
    assert raw(port, b"GET / HTTP/1.1\r\n" + hdrs + b"\r\n").startswith(b"HTTP/1.1 431")
    # half-sent requests and abrupt disconnects
    for _ in range(20):
        raw(port, b"GET /stats/requ", read=False)
    assert raw(port, b"GET /stats/requests HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert p.poll() is None


def test_autostart_and_autoquit_exit_on_their_own_with_report(procs, tmp_path, target):
    report = tmp_path / "ui.html"
    p, base = start_ui(procs, tmp_path, target, "-u", "2", "-r", "20", "-t", "2s", "--autostart",
                       "--autoquit", "1", "--html", str(report))
    rc = p.wait(timeout=30)
    # 1: Locust's exit code when the run saw failures (e.g. requests cut off at stop)
    assert rc in (0, 1), p.stderr.read().decode()[-2000:]
    text = report.read_text()
    assert_self_contained(text)
    assert max(history_json(text)["rps"]) > 0


def test_web_port_in_use_is_a_clear_error(procs, tmp_path, target):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = procs.start([binary("aiload"), "-f", scenario(tmp_path, target), "-P", str(port)])
        rc = p.wait(timeout=10)
        err = p.stderr.read().decode()
    assert rc != 0
    assert "in use" in err, err


@pytest.mark.parametrize("args", [["-P", "70000"], ["-P", "http"], ["--autoquit", "soon"],
                                  ["--web-host", "no.such.host.invalid"]])
def test_bad_web_flags_are_refused(procs, tmp_path, target, args):
    p = procs.start([binary("aiload"), "-f", scenario(tmp_path, target), *args])
    rc = p.wait(timeout=10)
    assert rc != 0 and p.stderr.read().strip(), args
