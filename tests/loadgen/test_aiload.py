"""Black-box tests of aiload against a small keep-alive HTTP/1.1 server of the
suite's own (lgserver.py): exact counts, latency accuracy, coordinated
omission, Locust-compatible files, thresholds and bad input."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from harness import binary, free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"


def start_server(procs, *extra):
    port = free_port()
    p = procs.start([PY, os.path.join(HERE, "lgserver.py"), str(port), *extra])
    wait_port(port, proc=p)
    return port


def server_counts(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=5) as r:
        return json.loads(r.read())


def aiload(*args, timeout=60, **kw):
    return subprocess.run([binary("aiload"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.fixture
def server(procs):
    return start_server(procs)


def run_json(tmp_path, *args, **kw):
    out = tmp_path / "summary.json"
    r = aiload(*args, "--json", out, **kw)
    assert out.exists(), r.stderr
    return r, json.loads(out.read_text())


def test_quick_mode_requests_sent_equal_recorded_equal_served(server, tmp_path):
    r, js = run_json(tmp_path, f"http://127.0.0.1:{server}/hello", "-c", 4, "-d", "2s",
                     "--threads", 2)
    assert r.returncode == 0, r.stderr
    served = server_counts(server)["requests"]
    assert js["requests"] > 100
    assert js["requests"] == served
    assert js["failures"] == 0
    assert "Requests/sec:" in r.stdout


def test_scenario_counts_per_name_match_the_server(server, tmp_path):
    sc = write(tmp_path, "s.ini", f"""
[settings]
host = http://127.0.0.1:{server}
[user U]
wait_time = constant(0)
[on_start U]
path = /chunked
name = start
[task U]
weight = 3
path = /hello
[task U]
method = POST
path = /echo
body = {{"n": ${{randint(1, 9)}}}}
expect_body = "n"
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 3, "-r", 100, "-t", 2)
    assert r.returncode == 0, r.stdout + r.stderr
    paths = server_counts(server)["paths"]
    got = {(e["method"], e["name"]): e["num_requests"] for e in js["entries"]}
    assert got[("GET", "start")] == paths["/chunked"] == 3
    assert got[("GET", "/hello")] == paths["/hello"]
    assert got[("POST", "/echo")] == paths["/echo"]
    assert js["requests"] == sum(paths.values())
    assert got[("GET", "/hello")] > got[("POST", "/echo")]  # weight 3 vs 1


def nearest_rank(values, p):
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(p / 100 * len(v) + 0.5) - 1))]


def raise_priority():
    """Runs in the child before exec: ahead of compilers sharing the machine
    (root may lower niceness; otherwise this is a no-op)."""
    try:
        os.nice(-10)
    except OSError:
        pass


def test_percentiles_of_delay_100ms_are_within_2_percent(procs, tmp_path):
    """aiload's percentiles agree within 2 % with the server's own clock, and
    that clock says 100 ms. (On a machine shared with compilers, the Python
    server itself sometimes wakes late; its own hold times show that, so the
    check compares against them rather than against an ideal 100 ms.)"""
    port = free_port()
    p = procs.start([PY, os.path.join(HERE, "lgserver.py"), str(port)],
                    preexec_fn=raise_priority)
    wait_port(port, proc=p)
    for attempt in range(3):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/reset", timeout=5).read()
        r, js = run_json(tmp_path, f"http://127.0.0.1:{port}/delay/0.1", "-c", 4, "-d", 3,
                         "--threads", 1, preexec_fn=raise_priority)
        assert r.returncode == 0, r.stderr
        pct = js["total"]["percentiles_ms"]
        holds = server_counts(port)["holds_ms"]
        assert js["requests"] == len(holds) >= 100
        assert 100.0 <= pct["50"] <= 102.0, pct
        assert 100.0 <= js["total"]["min_ms"] <= 102.0
        ok = all(nearest_rank(holds, float(k)) <= pct[k] <= nearest_rank(holds, float(k)) + 2.0
                 for k in ("50", "90", "99", "100"))
        if ok:
            return
    pytest.fail(f"aiload {pct} vs server {[nearest_rank(holds, p) for p in (50, 90, 99, 100)]}")


def test_coordinated_omission_corrected_p99_shows_a_1s_stall(procs, tmp_path):
    port = start_server(procs, "--stall-at", "4", "--stall-for", "1")
    r, js = run_json(tmp_path, f"http://127.0.0.1:{port}/hello", "-c", 2, "-d", 10,
                     "--rate", 100, "--threads", 1, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    t = js["total"]
    assert js["model"] == "open"
    assert t["percentiles_ms"]["99"] >= 500, t  # corrected: the stall shows
    assert t["service_percentiles_ms"]["99"] < 100, t  # uncorrected: it hides
    spec = dict((p, v) for p, v in js["spectrum_ms"])
    assert spec[99.999] >= 900 and spec[50] < 100, spec  # the stall is ~1 s at the top
    assert js["not_on_time"] >= 50  # arrivals during the stall were sent late
    assert js["requests"] == server_counts(port)["requests"]
    assert 998 <= js["requests"] <= 1002  # 100/s for 10 s, stall or not


def locust_headers(tmp_path, port):
    """Runs Debian's Locust for 2 s and returns the first line of each CSV file."""
    lf = write(tmp_path, "lf.py", """
from locust import HttpUser, task, constant
class U(HttpUser):
    wait_time = constant(0.1)
    @task
    def t(self):
        self.client.get("/hello")
""")
    prefix = str(tmp_path / "locust")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    subprocess.run([PY, "-m", "locust", "-f", lf, "--headless", "-u", "1", "-r", "1", "-t", "2s",
                    "-H", f"http://127.0.0.1:{port}", "--csv", prefix, "--csv-full-history"],
                   capture_output=True, timeout=60, env=env, cwd=str(tmp_path))
    out = {}
    for suffix in ("stats", "stats_history", "failures", "exceptions"):
        with open(f"{prefix}_{suffix}.csv", "rb") as f:
            out[suffix] = f.readline()
    return out


def test_csv_headers_are_byte_identical_to_locusts(server, tmp_path):
    want = locust_headers(tmp_path, server)
    prefix = str(tmp_path / "ai")
    r = aiload(f"http://127.0.0.1:{server}/hello", "-c", 1, "-d", 1, "--csv", prefix,
               "--csv-full-history")
    assert r.returncode == 0, r.stderr
    for suffix, line in want.items():
        with open(f"{prefix}_{suffix}.csv", "rb") as f:
            assert f.readline() == line, suffix


def test_csv_files_hold_the_final_counts(server, tmp_path):
    prefix = str(tmp_path / "ai")
    r, js = run_json(tmp_path, f"http://127.0.0.1:{server}/hello", "-c", 2, "-d", 2,
                     "--csv", prefix)
    rows = (tmp_path / "ai_stats.csv").read_text().splitlines()
    agg = rows[-1].split(",")
    assert agg[1] == "Aggregated" and int(agg[2]) == js["requests"]
    hist = (tmp_path / "ai_stats_history.csv").read_text().splitlines()
    assert len(hist) >= 3  # header + one row per second + the final row
    assert int(hist[-1].split(",")[17]) == js["requests"]


def test_thresholds_exit_3_naming_the_broken_one_and_0_when_met(server):
    url = f"http://127.0.0.1:{server}/hello"
    ok = aiload(url, "-c", 2, "-d", 1, "--fail-if", "p99<5s", "--fail-if", "error_rate<1%",
                "--fail-if", "rps>1")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = aiload(url, "-c", 2, "-d", 1, "--fail-if", "p50<1us", "--fail-if", "rps>1")
    assert bad.returncode == 3
    assert "p50<1us" in bad.stdout and "FAILED" in bad.stdout
    assert "rps>1                    ok" in bad.stdout


def test_failed_requests_exit_with_exit_code_on_error(server):
    url = f"http://127.0.0.1:{server}/status/500"
    r = aiload(url, "-c", 1, "-d", 1)
    assert r.returncode == 1
    assert "HTTPError('500 Server Error: Internal Server Error')" in r.stdout
    r = aiload(url, "-c", 1, "-d", 1, "--exit-code-on-error", 7)
    assert r.returncode == 7


def test_connection_refused_is_classified_and_counted(tmp_path):
    port = free_port()  # nothing listens there
    r, js = run_json(tmp_path, f"http://127.0.0.1:{port}/", "-c", 2, "-d", 1)
    assert r.returncode == 1
    assert js["failures"] == js["requests"] > 0
    assert js["errors"][0]["error"].startswith("ConnectionRefusedError")


def test_response_timeout_is_classified(server, tmp_path):
    r, js = run_json(tmp_path, f"http://127.0.0.1:{server}/delay/3", "-c", 2, "-d", 1,
                     "--timeout", 0.3)
    assert r.returncode == 1
    assert js["failures"] >= 2
    assert any(e["error"].startswith("ReadTimeout") for e in js["errors"])


@pytest.mark.parametrize("path,error", [
    ("/garbage", "ProtocolError('malformed response head')"),
    ("/bighead", "ProtocolError('response head too large')"),
    ("/badchunk", "ProtocolError('bad chunked encoding')"),
    ("/short", "RemoteDisconnected"),
    ("/rst", "ConnectionResetError"),
])
def test_broken_responses_are_classified_without_a_crash(server, tmp_path, path, error):
    r, js = run_json(tmp_path, f"http://127.0.0.1:{server}{path}", "-c", 2, "-d", 1)
    assert r.returncode == 1, r.stdout + r.stderr
    assert js["failures"] == js["requests"] > 0
    assert js["errors"][0]["error"].startswith(error), js["errors"]
    if path != "/rst":  # a reset keep-alive request is resent once on a fresh connection
        assert js["requests"] == server_counts(server)["requests"]


def test_a_20k_response_head_is_accepted(server, tmp_path):
    r, js = run_json(tmp_path, f"http://127.0.0.1:{server}/bighead20k", "-c", 2, "-d", 1)
    assert r.returncode == 0, r.stdout
    assert js["requests"] == server_counts(server)["requests"] > 0
    assert js["total"]["avg_content_length"] == 2


def test_a_head_arriving_in_pieces_is_reassembled(server, tmp_path):
    sc = write(tmp_path, "s.ini", f"""
[user U]
host = http://127.0.0.1:{server}
[task]
path = /splithead
expect_body = split
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 3, "-r", 10, "-t", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert js["requests"] == server_counts(server)["requests"] > 10
    assert js["failures"] == 0


def test_stop_awaits_requests_in_flight(server, tmp_path):
    r, js = run_json(tmp_path, f"http://127.0.0.1:{server}/delay/1.5", "-c", 3, "-d", 1)
    assert r.returncode == 0, r.stdout
    assert js["requests"] == 3 == server_counts(server)["requests"]
    assert js["failures"] == 0


def test_stop_timeout_records_what_is_still_in_flight(server, tmp_path):
    r, js = run_json(tmp_path, f"http://127.0.0.1:{server}/delay/3", "-c", 2, "-d", 0.5,
                     "--stop-timeout", 0.5)
    assert r.returncode == 1
    assert js["requests"] == 2
    assert js["errors"][0]["error"].startswith("StopTimeout")


def test_checks_and_sequential_tasks_fail_requests_as_configured(server, tmp_path):
    sc = write(tmp_path, "s.ini", f"""
[user Seq]
host = http://127.0.0.1:{server}
sequential = true
[task]
path = /hello
expect_body = Goodbye
[task]
path = /status/201
expect_status = 200 202
[task]
path = /close
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 1, "-r", 1, "-t", 1)
    assert r.returncode == 1
    by = {e["name"]: e for e in js["entries"]}
    assert by["/hello"]["num_failures"] == by["/hello"]["num_requests"] > 0
    assert by["/status/201"]["num_failures"] == by["/status/201"]["num_requests"]
    assert by["/close"]["num_failures"] == 0
    # sequential: the counts differ by at most one
    n = [by[k]["num_requests"] for k in ("/hello", "/status/201", "/close")]
    assert max(n) - min(n) <= 1
    errs = {e["error"] for e in js["errors"]}
    assert "CheckFailed('body does not contain expect_body')" in errs
    assert "CheckFailed('status 201 not in expect_status')" in errs


def test_head_requests_have_no_body_and_fail_a_body_check(server, tmp_path):
    sc = write(tmp_path, "s.ini", f"""
[user U]
host = http://127.0.0.1:{server}
[task]
method = HEAD
path = /hello
expect_body = Hello
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 2, "-r", 10, "-t", 1)
    assert r.returncode == 1
    assert js["failures"] == js["requests"] == server_counts(server)["requests"] > 0
    assert js["errors"][0]["error"] == "CheckFailed('body does not contain expect_body')"


def test_binary_body_file_is_sent_byte_for_byte(server, tmp_path):
    blob = bytes(range(256)) * 40 + b"\x89PNG\r\n\x1a\n\x00MARK"
    (tmp_path / "img.png").write_bytes(blob)
    sc = write(tmp_path, "s.ini", f"""
[user Model]
host = http://127.0.0.1:{server}
[task]
method = POST
path = /echo
header = Content-Type: image/png
body_file = img.png
expect_body = MARK
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 2, "-r", 10, "-t", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    e = js["entries"][0]
    assert e["num_requests"] > 10 and e["num_failures"] == 0
    assert e["avg_content_length"] == len(blob)  # echoed back whole


def test_quick_mode_writes_html_and_csv(server, tmp_path):
    html = tmp_path / "r.html"
    r = aiload(f"http://127.0.0.1:{server}/hello", "-c", 2, "-d", 1, "--html", html, "--csv",
               tmp_path / "q")
    assert r.returncode == 0, r.stderr
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") or text.lower().startswith("<!doctype html>")
    assert "/hello" in text
    assert (tmp_path / "q_stats.csv").read_bytes().count(b"\r\n") == 3


def test_article_locustfile_scenario_runs(server, tmp_path):
    sc = os.path.join(ROOT, "examples", "locust", "locustfile.ini")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 3, "-r", 10, "-t", 2, "-H",
                     f"http://127.0.0.1:{server}")
    assert r.returncode == 0, r.stdout + r.stderr
    # between(5, 15): each user fires once at start, then thinks past the end
    assert js["requests"] == 3 == server_counts(server)["paths"]["/"]
    assert "Response time percentiles (approximated)" in r.stdout


def test_on_start_runs_once_per_user_then_tasks_without_think_time(server, tmp_path):
    sc = write(tmp_path, "s.ini", f"""
[user U]
host = http://127.0.0.1:{server}
wait_time = between(5, 15)
[on_start U]
path = /chunked
[on_start U]
path = /echo
method = POST
[task U]
path = /hello
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 3, "-r", 30, "-t", 1.5)
    assert r.returncode == 0, r.stdout + r.stderr
    paths = server_counts(server)["paths"]
    assert paths == {"/chunked": 3, "/echo": 3, "/hello": 3}, paths
    assert js["requests"] == 9


def test_open_model_ramping_stages_follow_the_integral(server, tmp_path):
    # 0 -> 200/s over 2 s, then 200/s for 1 s: 200 + 200 = 400 arrivals
    r, js = run_json(tmp_path, f"http://127.0.0.1:{server}/hello", "-c", 8, "--rate", 0.001,
                     "--stage", "2s:200", "--stage", "1s:200", "--threads", 2)
    assert r.returncode == 0, r.stderr
    assert 398 <= js["requests"] <= 402, js["requests"]
    assert js["requests"] == server_counts(server)["requests"]


def test_stages_alone_run_the_open_model_from_zero(server, tmp_path):
    # no --rate: the first stage ramps 0 -> 100/s over 2 s (100 arrivals), not a closed model
    r, js = run_json(tmp_path, f"http://127.0.0.1:{server}/hello", "-c", 8,
                     "--stage", "2s:100", "--threads", 2)
    assert r.returncode == 0, r.stderr
    assert js["model"] == "open"
    assert 98 <= js["requests"] <= 102, js["requests"]


def test_sigint_stops_gracefully_and_writes_outputs(server, tmp_path, procs):
    out = tmp_path / "s.json"
    p = procs.start([binary("aiload"), f"http://127.0.0.1:{server}/hello", "-c", "2", "-d", "60",
                     "--json", str(out)], text=True)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    stdout, _ = p.communicate(timeout=20)
    assert p.returncode == 0
    js = json.loads(out.read_text())
    assert js["requests"] == server_counts(server)["requests"] > 0
    assert "Requests/sec:" in stdout


def aiserve_counts(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("aiserve_requests_total{") and 'route="/metrics"' not in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_against_the_real_aiserve_counts_match_its_metrics(procs, tmp_path):
    import harness
    path = os.path.join(harness.BUILD, "aiserve")
    if not os.access(path, os.X_OK):
        pytest.skip("aiserve is not built")
    port = free_port()
    # its access log would fill an unread pipe and stall it: discard it
    p = procs.start([path, "--http", f"127.0.0.1:{port}", "--processes", "1"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=p)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=5) as r:
            r.read()
    except (OSError, RuntimeError, TimeoutError) as e:
        pytest.skip(f"aiserve does not serve /hello yet: {e}")
    base = aiserve_counts(port)
    r, js = run_json(tmp_path, f"http://127.0.0.1:{port}/hello", "-c", 8, "-d", 2, "--threads", 2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert js["requests"] > 100
    assert js["requests"] == aiserve_counts(port) - base
    r, js = run_json(tmp_path, f"http://127.0.0.1:{port}/delay/0.1", "-c", 4, "-d", 2)
    assert r.returncode == 0
    assert 98.0 <= js["total"]["percentiles_ms"]["50"] <= 102.0


def test_second_sigint_aborts_requests_in_flight(server, tmp_path, procs):
    out = tmp_path / "s.json"
    p = procs.start([binary("aiload"), f"http://127.0.0.1:{server}/delay/30", "-c", "2", "-d",
                     "60", "--json", str(out)], text=True)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert p.poll() is None  # still awaiting the two requests in flight
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=10)
    assert time.monotonic() - t0 < 5
    assert p.returncode == 1
    assert "Ctrl+C again" in err
    js = json.loads(out.read_text())
    assert js["requests"] == js["failures"] == 2
    assert js["errors"][0]["error"].startswith("StopTimeout")


BAD_SCENARIOS = [
    # task tags and fixed_count (Locust's @tag and fixed_count)
    ("[user A]\n[task]\npath = /\ntags = ,\n", 4, "at least one tag"),
    ("[user A]\n[on_start A]\npath = /\ntags = x\n[task]\npath = /\n", 4, "never filtered"),
    ("[user A]\nfixed_count = 2.5\n[task]\npath = /\n", 2, "whole number"),
    ("[user A]\nfixed_count = many\n[task]\npath = /\n", 2, "fixed_count"),
    ("[user A]\nweight = 0\n[task]\npath = /\n", 1, "no fixed_count"),
    ("[user A]\nwait_time = between(5)\n[task]\npath = /\n", 2, "between"),
    ("[user A]\n[task]\npath = nope\n", 3, "path must start with '/'"),
    ("[user A]\n[task]\npath = /\nfrobnicate = 1\n", 4, "unknown key 'frobnicate'"),
    ("[user A]\n[task]\npath = /${randint(9,1)}\n", 3, "lo > hi"),
    ("[user A]\nweight = -1\n[task]\npath = /\n", 2, "weight"),
    ("[settings]\nhost = ftp://x\n[user A]\n[task]\npath=/\n", 2, "http:// or https://"),
    ("[user A]\nhost = https://x:0\n[task]\npath=/\n", 2, "bad port"),
    ("[user A]\n[task]\nbody_file = /nonexistent/x.png\npath = /\n", 3, "body_file"),
    ("[user A]\nwait_time = constant(1)\n", 1, "has no [task]"),
    ("[task B]\npath = /\n", 1, "no user class 'B'"),
    ("[user A]\n[task]\nmethod = get\npath = /\n", 3, "upper-case"),
    ("[user A]\n[task]\npath = /\nexpect_status = 99\n", 4, "status code"),
    ("just text\n", 1, "expected 'key = value'"),
    ("[user A\n", 1, "section header"),
    ("", 1, "nothing to run"),
]


@pytest.mark.parametrize("text,line,what", BAD_SCENARIOS)
def test_bad_scenario_exits_2_naming_file_and_line(tmp_path, text, line, what):
    sc = write(tmp_path, "bad.ini", text)
    r = aiload("-f", sc, "--headless", "-u", 1, "-t", 1, "-H", "http://127.0.0.1:9", timeout=10)
    assert r.returncode == 2, r.stderr
    assert f"{sc}:{line}:" in r.stderr, r.stderr
    assert what in r.stderr


@pytest.mark.parametrize("args,what", [
    (["--bogus"], "unknown option '--bogus'"),
    (["http://127.0.0.1:9/", "-c", "0"], "-u/--users"),
    (["http://127.0.0.1:9/", "-d", "soon"], "duration"),
    (["https://127.0.0.1:9/", "--cacert", "/nonexistent.pem"], "--cacert /nonexistent.pem"),
    (["ftp://x/"], "http://"),
    (["--headless", "-u", "3"], "no scenario"),
    (["http://127.0.0.1:9/", "--fail-if", "p42<1ms"], "unknown metric"),
    (["http://127.0.0.1:9/", "--fail-if", "p99<fast"], "not a number"),
    (["http://127.0.0.1:9/", "--header", "NoColon"], "Name: value"),
    (["http://127.0.0.1:9/", "--body-file", "/nonexistent"], "body_file"),
    (["http://127.0.0.1:9/", "--csv-full-history"], "needs --csv"),
    (["http://127.0.0.1:9/", "--threads"], "needs a value"),
    (["-f", "/nonexistent.ini", "--headless"], "No such file"),
    (["http://127.0.0.1:9/", "-H", "Accept: text/html"], "--header"),
    (["-f", "/etc", "--headless"], "not a regular file"),
])
def test_bad_command_line_exits_2_with_a_message(args, what):
    r = aiload(*args, timeout=10)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert what in r.stderr, r.stderr


def test_missing_or_unresolvable_host_exits_2(tmp_path):
    sc = write(tmp_path, "s.ini", "[user A]\n[task]\npath = /\n")
    r = aiload("-f", sc, "--headless", "-t", 1, timeout=10)
    assert r.returncode == 2 and "no host" in r.stderr, r.stderr
    r = aiload("-f", sc, "--headless", "-t", 1, "-H", "http://no-such-host.invalid:80", timeout=30)
    assert r.returncode == 2 and "cannot resolve 'no-such-host.invalid'" in r.stderr, r.stderr


# Python locustfiles (-f x.py) run in loadgen/py/: tests/loadgen/test_pyfile.py


def test_help_lists_the_locust_flags():
    r = aiload("--help")
    assert r.returncode == 0
    for flag in ("--headless", "--spawn-rate", "--run-time", "--csv-full-history", "--fail-if",
                 "--rate", "--exit-code-on-error", "--stop-timeout", "--reset-stats"):
        assert flag in r.stdout
