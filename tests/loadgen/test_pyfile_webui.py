"""The web UI and --html over a Python locustfile: a real aiload runs
tests/loadgen/pyfiles/webui.py against a real aiserve hosting
tests/loadgen/pyfile_app.py, driven through Locust's REST endpoints."""
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import binary, free_port, post_form, procs, wait_port  # noqa: F401
from harness import http_request as get
from harness import wait_until as wait_for
from pyfilekit import app  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BROWSER_JS = os.path.join(ROOT, "tests", "webui", "browser.js")
LOCUSTFILE = os.path.join(HERE, "pyfiles", "webui.py")


def get_json(url):
    st, _, body = get(url)
    assert st == 200, (url, st, body[:300])
    return json.loads(body)


def row(stats, name):
    return next((r for r in stats["stats"] if r["name"] == name), None)


def start_ui(procs, tmp_path, app, *extra):  # noqa: F811
    port = free_port()
    p = procs.start([binary("aiload"), "-f", LOCUSTFILE, "-P", str(port), "--web-host", "127.0.0.1",
                     "-H", app, *extra], cwd=str(tmp_path))
    wait_port(port, timeout=60, proc=p)
    return p, f"http://127.0.0.1:{port}"


def history_json(report_html):
    m = re.search(r'<script id="aiload-history" type="application/json">(.*?)</script>',
                  report_html, re.S)
    assert m, "the report embeds its chart data"
    return json.loads(m.group(1))


def test_rest_endpoints_drive_a_python_locustfile(procs, tmp_path, app):  # noqa: F811
    report = tmp_path / "report.html"
    p, base = start_ui(procs, tmp_path, app, "--html", str(report))
    st, _, page = get(base + "/")
    assert st == 200 and b"<html" in page
    assert get_json(base + "/stats/requests")["state"] == "ready"
    assert get_json(base + "/defaults")["host"] == app
    # the Current ratio tab before a run: the form's users, Locust's task ratios
    t = get_json(base + "/tasks")
    assert t["per_class"]["Web"]["ratio"] == 1.0
    ratios = {k: v["ratio"] for k, v in t["per_class"]["Web"]["tasks"].items()}
    assert ratios == pytest.approx({"home": 0.6, "item": 0.2, "broken": 0.2}, abs=1e-9)
    assert t["total"]["Web"]["tasks"]["home"]["ratio"] == pytest.approx(0.6, abs=1e-9)

    # bad input is refused and starts nothing
    st, _, body = post_form(base + "/swarm", user_count="0", spawn_rate="5")
    assert st == 400 and b"user_count" in body
    st, _, body = post_form(base + "/swarm", user_count="2", spawn_rate="5", host="ftp://x")
    assert st == 400 and b"not an http:// or https:// URL" in body, body
    st, _, body = post_form(base + "/swarm", user_count="2", spawn_rate="5",
                            host="http://no-such-host.invalid")
    assert st == 400 and b"no-such-host.invalid" in body, body
    assert get_json(base + "/stats/requests")["state"] == "ready"

    st, _, body = post_form(base + "/swarm", user_count="4", spawn_rate="20")
    assert st == 200, body
    reply = json.loads(body)
    assert reply["success"] and reply["message"] == "Swarming started" and reply["host"] == app

    # live statistics: both names, from the users' Python code
    def running():
        s = get_json(base + "/stats/requests")
        ok = (s["state"] == "running" and s["user_count"] == 4 and row(s, "home")
              and row(s, "item") and row(s, "home")["num_requests"] > 0)
        return s if ok else None
    s = wait_for(running, what="4 users running with home and item rows")
    assert s["host"] == app
    assert row(s, "home")["num_failures"] == 0
    assert s["user_classes_count"] == {"Web": 4}
    assert get_json(base + "/tasks")["total"]["Web"]["tasks"]["item"]["ratio"] == pytest.approx(0.2)

    # the charts' history grows once a second
    h = wait_for(lambda: (lambda d: d if len(d["time"]) >= 2 else None)(
        get_json(base + "/stats/history")), what="two history points")
    assert max(h["rps"]) > 0 and max(h["user_count"]) >= 1

    # the Exceptions tab: the task that raises, with its traceback
    exc = wait_for(lambda: get_json(base + "/exceptions")["exceptions"], what="an exception")
    assert len(exc) == 1, exc
    e = exc[0]
    assert e["count"] > 0 and e["msg"] == "webui test boom 1"
    assert "webui.py" in e["traceback"] and "in explode" in e["traceback"]
    assert e["nodes"] == "local"
    st, hdr, body = get(base + "/exceptions/csv")
    assert st == 200 and hdr["Content-Disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [r["Message"] for r in rows] == ["webui test boom 1"]
    assert int(rows[0]["Count"]) > 0 and "in explode" in rows[0]["Traceback"]

    # Locust's "Edit": a new user count while running
    st, _, body = post_form(base + "/swarm", user_count="2", spawn_rate="20")
    assert st == 200 and json.loads(body)["message"] == "Swarming changed"
    wait_for(lambda: get_json(base + "/stats/requests")["user_count"] == 2, what="2 users")

    # stop: the counts freeze
    st, _, body = get(base + "/stop")
    assert st == 200 and json.loads(body)["success"]
    s = wait_for(lambda: (lambda d: d if d["state"] == "stopped" else None)(
        get_json(base + "/stats/requests")), what="stopped")
    assert s["user_count"] == 0
    time.sleep(0.5)
    s2 = get_json(base + "/stats/requests")
    assert row(s2, "home")["num_requests"] == row(s, "home")["num_requests"]

    # downloads agree with the statistics
    st, hdr, body = get(base + "/stats/requests/csv")
    assert st == 200 and hdr["Content-Type"].startswith("text/csv")
    by_name = {r["Name"]: r for r in csv.DictReader(io.StringIO(body.decode()))}
    assert int(by_name["home"]["Request Count"]) == row(s2, "home")["num_requests"]
    assert int(by_name["item"]["Request Count"]) == row(s2, "item")["num_requests"]
    st, _, body = get(base + "/stats/failures/csv")
    assert st == 200 and body.decode().startswith("Method,Name,Error,Occurrences")
    st, _, body = get(base + "/stats/requests_full_history/csv")
    lines = body.decode().splitlines()
    assert st == 200 and lines[0].startswith("Timestamp,User Count") and len(lines) >= 3
    summary = get_json(base + "/stats/summary")
    assert summary["scenario"].endswith("webui.py") and summary["requests"] > 0
    st, _, body = get(base + "/stats/report")
    assert st == 200 and b"home" in body and b"webui test boom 1" in body

    # reset: the counts clear at once, the exceptions with them
    st, _, _ = get(base + "/stats/reset")
    assert st == 200
    assert get_json(base + "/stats/requests")["total_rps"] == 0
    assert all(r["num_requests"] == 0 for r in get_json(base + "/stats/requests")["stats"])
    wait_for(lambda: get_json(base + "/exceptions")["exceptions"] == [], what="exceptions cleared")

    # a new test with a run time stops by itself
    st, _, body = post_form(base + "/swarm", user_count="3", spawn_rate="30", run_time="2s")
    assert st == 200 and json.loads(body).get("run_time") == 2
    wait_for(lambda: get_json(base + "/stats/requests")["state"] in ("spawning", "running"),
             what="the second test running")
    s = wait_for(lambda: (lambda d: d if d["state"] == "stopped" else None)(
        get_json(base + "/stats/requests")), timeout=40, what="the run time to end the test")
    assert row(s, "home")["num_requests"] > 0

    # Ctrl+C: aiload ends, prints the final table and writes the report
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1, err.decode()[-2000:]  # the exceptions count as errors, as in Locust
    assert b"Aggregated" in out
    html = report.read_text()
    assert "home" in html and "item" in html and "webui test boom 1" in html
    assert len(history_json(html)["time"]) >= 1


def test_autostart_autoquit_and_report(procs, tmp_path, app):  # noqa: F811
    report = tmp_path / "auto.html"
    p, base = start_ui(procs, tmp_path, app, "--autostart", "--autoquit", "0", "-u", "3", "-r", "30",
                       "-t", "2", "--html", str(report))
    out, err = p.communicate(timeout=90)
    assert p.returncode == 1, err.decode()[-2000:]
    html = report.read_text()
    assert "home" in html and "item" in html
    assert len(history_json(html)["time"]) >= 1
    assert_final_ratio(html)


def assert_final_ratio(html):
    """Locust's report ends with the task ratios: Web 100 %, home 60 %, item and broken 20 %."""
    m = re.search(r'<section id="final-ratio">.*?</section>', html, re.S)
    assert m, "the report has a Final ratio section"
    sec = m.group(0)
    for pct, name in (("100.0", "Web"), ("60.0", "home"), ("20.0", "item"), ("20.0", "broken")):
        assert f'<span class="pct">{pct}%</span> <span class="rname">{name}</span>' in sec, sec


def test_headless_html_report(procs, tmp_path, app):  # noqa: F811
    report = tmp_path / "headless.html"
    r = subprocess.run([binary("aiload"), "-f", LOCUSTFILE, "--headless", "--only-summary", "-u", "3",
                        "-r", "30", "-t", "3", "-H", app, "--html", str(report)],
                       capture_output=True, text=True, timeout=90, cwd=str(tmp_path))
    assert r.returncode == 1, r.stderr[-2000:]
    html = report.read_text()
    assert html.startswith("<!doctype html>")
    for name in ("home", "item", "webui test boom 1", "in explode"):
        assert name in html, name
    h = history_json(html)
    assert len(h["time"]) >= 2 and max(h["rps"]) > 0
    # the report's request count is the run's
    m = re.search(r"<tr class=\"total\"><td></td><td>Aggregated</td><td class=\"n\">(\d+)</td>", html)
    assert m and int(m.group(1)) > 0
    assert_final_ratio(html)


def test_html_to_an_unwritable_path_fails_clearly(procs, tmp_path, app):  # noqa: F811
    r = subprocess.run([binary("aiload"), "-f", LOCUSTFILE, "--headless", "--only-summary", "-u", "1",
                        "-r", "10", "-t", "1", "-H", app, "--html", str(tmp_path / "no" / "r.html")],
                       capture_output=True, text=True, timeout=90, cwd=str(tmp_path))
    assert r.returncode == 1
    assert "--html" in r.stderr and "r.html" in r.stderr


def test_browser_runs_a_python_locustfile(procs, tmp_path, app):  # noqa: F811
    if not shutil.which("node") or not os.access("/usr/bin/chromium", os.X_OK):
        pytest.fail("node and /usr/bin/chromium are needed: run scripts/install-deps.sh")
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core")):
        pytest.fail("node_modules/playwright-core is missing: run scripts/install-deps.sh")
    _, base = start_ui(procs, tmp_path, app)
    r = subprocess.run(["node", BROWSER_JS, "pyfile", base, app], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["initial_state"] == "ready"
    assert {"home", "item"} <= set(out["rows"])
    assert out["canvases"] == 3 and out["chart_rps_max"] > 0
    assert len(out["exceptions"]) == 1, out["exceptions"]
    count, msg, tb, nodes = out["exceptions"][0]
    assert int(count.replace(",", "")) > 0 and msg == "webui test boom 1"
    assert "in explode" in tb and nodes == "local"
    assert out["exceptions_csv"].startswith("Count,Message,Traceback,Nodes")
    assert "webui test boom 1" in out["exceptions_csv"]
    assert out["final_state"] == "stopped"
    assert out["page_errors"] == [] and out["foreign_requests"] == []


def test_host_from_the_form_when_the_command_line_has_none(procs, tmp_path, app):  # noqa: F811
    port = free_port()
    p = procs.start([binary("aiload"), "-f", LOCUSTFILE, "-P", str(port), "--web-host", "127.0.0.1"],
                    cwd=str(tmp_path))
    wait_port(port, timeout=60, proc=p)
    base = f"http://127.0.0.1:{port}"
    st, _, body = post_form(base + "/swarm", user_count="1", spawn_rate="5")
    assert st == 400 and b"no host for Web" in body, body
    st, _, body = post_form(base + "/swarm", user_count="1", spawn_rate="5", host=app)
    assert st == 200, body
    wait_for(lambda: (row(get_json(base + "/stats/requests"), "home") or {}).get("num_requests", 0) > 0,
             what="requests to the form's host")
    assert get_json(base + "/stats/requests")["host"] == app


def test_port_in_use_exits_2(procs, tmp_path, app):  # noqa: F811
    p, base = start_ui(procs, tmp_path, app)
    port = base.rsplit(":", 1)[1]
    r = subprocess.run([binary("aiload"), "-f", LOCUSTFILE, "-P", port, "--web-host", "127.0.0.1",
                        "-H", app], capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == 2 and "aiload:" in r.stderr, r.stderr


def test_web_auth_guards_a_python_run(procs, tmp_path, app):  # noqa: F811
    import base64

    p, base = start_ui(procs, tmp_path, app, "--web-auth", "ann:secret")
    st, hdr, _ = get(base + "/stats/requests")
    assert st == 401 and hdr["WWW-Authenticate"].startswith("Basic")
    st, _, _ = post_form(base + "/swarm", user_count="1", spawn_rate="5")
    assert st == 401
    req = urllib.request.Request(base + "/stats/requests", headers={
        "Authorization": "Basic " + base64.b64encode(b"ann:secret").decode()})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and json.loads(r.read())["state"] == "ready"


SHAPE = os.path.join(HERE, "pyfiles", "shape.py")


def test_a_load_test_shape_runs_from_the_web_ui(procs, tmp_path, app):  # noqa: F811
    """Locust's web UI runs a LoadTestShape: /swarm takes no user count and starts the
    shape, a running shape test is not edited, the shape's end stops it (the UI stays)."""
    port = free_port()
    p = procs.start([binary("aiload"), "-f", SHAPE, "-P", str(port), "--web-host", "127.0.0.1",
                     "-H", app], cwd=str(tmp_path))
    wait_port(port, timeout=60, proc=p)
    base = f"http://127.0.0.1:{port}"
    assert get_json(base + "/defaults")["shape"] == "Steps"
    st, _, body = post_form(base + "/swarm", user_count="0", spawn_rate="0")  # Locust's shape form
    assert st == 200 and json.loads(body)["message"] == "Swarming started using shape class", body
    wait_for(lambda: get_json(base + "/stats/requests")["user_count"] == 2, what="2 users")
    st, _, body = post_form(base + "/swarm", user_count="9", spawn_rate="5")
    assert st == 400 and b"Steps (a LoadTestShape) drives this test" in body, body
    wait_for(lambda: get_json(base + "/stats/requests")["user_count"] == 4, timeout=20,
             what="the shape's second step")
    wait_for(lambda: get_json(base + "/stats/requests")["state"] == "stopped", timeout=20,
             what="the shape ending the test")
    assert p.poll() is None, "the web UI outlives the shape's test"
    assert row(get_json(base + "/stats/requests"), "/")["num_requests"] > 0
    # a second test runs the shape again from its start
    st, _, body = post_form(base + "/swarm")
    assert st == 200, body
    wait_for(lambda: get_json(base + "/stats/requests")["user_count"] == 2, what="2 users again")


def test_browser_runs_a_load_test_shape(procs, tmp_path, app):  # noqa: F811
    if not shutil.which("node") or not os.access("/usr/bin/chromium", os.X_OK):
        pytest.fail("node and /usr/bin/chromium are needed: run scripts/install-deps.sh")
    port = free_port()
    p = procs.start([binary("aiload"), "-f", SHAPE, "-P", str(port), "--web-host", "127.0.0.1",
                     "-H", app], cwd=str(tmp_path))
    wait_port(port, timeout=60, proc=p)
    r = subprocess.run(["node", BROWSER_JS, "shape", f"http://127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["users_disabled"] and out["rate_disabled"]
    assert out["users_placeholder"] == "set by Steps" and "Steps (a LoadTestShape)" in out["note"]
    assert out["edit_hidden"] and out["final_state"] == "stopped"
    assert out["page_errors"] == [] and out["foreign_requests"] == []
