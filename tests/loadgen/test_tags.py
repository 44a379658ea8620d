"""Black-box tests of Locust's task tags (-T/-E), fixed_count and --equal-weights
in aiload, run headless against the real aiserve (its built-in /hello and
/delay routes), checked through the --json summary and aiserve's own
/metrics."""
import json
import os
import subprocess
import urllib.request

import pytest

from harness import binary, free_port, wait_port


def aiload(*args, timeout=30):
    return subprocess.run([binary("aiload"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.fixture
def aiserve(procs):
    port = free_port()
    # its access log would fill an unread pipe and stall it: discard it
    p = procs.start([binary("aiserve"), "--http", f"127.0.0.1:{port}", "--processes", "1"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=p)
    return port


def run_json(tmp_path, *args):
    out = tmp_path / "summary.json"
    if out.exists():
        out.unlink()
    r = aiload(*args, "--json", out)
    assert out.exists(), r.stderr
    return r, json.loads(out.read_text())


def metric(port, route):
    """aiserve's own count of requests on one route (all methods and codes)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("aiserve_requests_total{") and f'route="{route}"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


TAGGED = """
[settings]
host = http://127.0.0.1:{port}

[user Web]
wait_time = constant(0.01)
[task]
path = /hello?t=web
name = hello-web
tags = web
[task]
path = /hello?t=api
name = hello-api
tags = api
[task]
path = /delay/0?t=slow
name = delay-slow
tags = web, slow
[task]
path = /hello?t=plain
name = plain

[user Other]
weight = 5
[task]
path = /hello?t=other
name = other
tags = other

[user Fixed]
weight = 100
fixed_count = 2
wait_time = constant_pacing(0.2)
[on_start Fixed]
path = /hello?t=start
name = start
[task]
path = /delay/0
name = fixed-delay
tags = fixed
"""


def test_tags_select_rows_and_fixed_count_gets_exactly_its_users(aiserve, tmp_path):
    sc = write(tmp_path, "tags.ini", TAGGED.format(port=aiserve))
    delay_before = metric(aiserve, "/delay")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 5, "-r", 100, "-t", "2s",
                     "--threads", 2, "-T", "web", "fixed", "-E", "slow")
    assert r.returncode == 0, r.stderr
    assert "user class 'Other' has no task left after filtering by tags" in r.stderr
    assert "users per class at -u 5: Web 3, Fixed 2 (fixed_count)" in r.stderr, r.stderr
    rows = {e["name"]: e["num_requests"] for e in js["entries"]}
    # only the selected tasks (and on_start, never filtered) got requests
    assert set(rows) == {"hello-web", "fixed-delay", "start"}, rows
    assert rows["hello-web"] > 20
    assert js["failures"] == 0
    classes = {c["name"]: c for c in js["user_classes"]}
    assert set(classes) == {"Web", "Fixed"}
    # Fixed ignores its weight 100: exactly 2 users; Web takes the other 3
    assert classes["Fixed"]["fixed_count"] == 2
    assert classes["Fixed"]["target_users"] == 2
    assert classes["Fixed"]["peak_users"] == 2
    assert classes["Web"]["peak_users"] == 3
    assert rows["start"] == 2, "one on_start per Fixed user"
    # 2 users paced at 0.2 s for 2 s: at most 2 * 11 requests, and well over half
    assert 12 <= rows["fixed-delay"] <= 22, rows
    # the only /delay requests aiserve saw were the fixed class's (delay-slow is excluded)
    assert metric(aiserve, "/delay") - delay_before == rows["fixed-delay"]


def test_users_below_the_fixed_sum_go_to_fixed_classes_first(aiserve, tmp_path):
    sc = write(tmp_path, "fixed.ini", f"""
[settings]
host = http://127.0.0.1:{aiserve}
[user A]
fixed_count = 2
wait_time = constant(0.05)
[task]
path = /hello?a
name = a
[user B]
fixed_count = 2
wait_time = constant(0.05)
[task]
path = /hello?b
name = b
[user W]
weight = 10
wait_time = constant(0.05)
[task]
path = /hello?w
name = w
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 3, "-r", 100, "-t", "1s")
    assert r.returncode == 0, r.stderr
    peak = {c["name"]: c["peak_users"] for c in js["user_classes"]}
    assert peak == {"A": 2, "B": 1, "W": 0}, peak
    rows = {e["name"]: e["num_requests"] for e in js["entries"]}
    assert "w" not in rows and rows["a"] > 0 and rows["b"] > 0, rows


def test_equal_weights_flatten_task_and_class_weights(aiserve, tmp_path):
    sc = write(tmp_path, "eq.ini", f"""
[settings]
host = http://127.0.0.1:{aiserve}
[user Heavy]
weight = 9
[task]
weight = 9
path = /hello?n=nine
name = nine
[task]
weight = 1
path = /hello?n=one
name = one
[user Light]
weight = 1
wait_time = constant(0.05)
[task]
path = /hello?n=light
name = light
""")
    args = ("-f", sc, "--headless", "-u", 4, "-r", 100, "-t", "1.5s", "--threads", 2)
    r, js = run_json(tmp_path, *args)
    assert r.returncode == 0, r.stderr
    rows = {e["name"]: e["num_requests"] for e in js["entries"]}
    peak = {c["name"]: c["peak_users"] for c in js["user_classes"]}
    assert peak == {"Heavy": 4, "Light": 0}, peak  # 9:1 of 4 users rounds to 4:0
    assert rows["nine"] > 4 * rows["one"], rows
    r, js = run_json(tmp_path, *args, "--equal-weights")
    assert r.returncode == 0, r.stderr
    rows = {e["name"]: e["num_requests"] for e in js["entries"]}
    peak = {c["name"]: c["peak_users"] for c in js["user_classes"]}
    assert peak == {"Heavy": 2, "Light": 2}, peak
    assert rows["light"] > 0
    # thousands of picks at 1:1: far from the 9:1 of the file
    assert 0.75 < rows["nine"] / rows["one"] < 1.33, rows


def test_no_task_left_exits_2_naming_the_tags(tmp_path):
    sc = write(tmp_path, "s.ini", "[user A]\n[task]\npath = /\ntags = a\n"
                                  "[user B]\n[task]\npath = /b\n")
    r = aiload("-f", sc, "--headless", "-t", 1, "-H", "http://127.0.0.1:9", "-T", "nosuch,zzz",
               "-E", "a", timeout=10)
    assert r.returncode == 2, r.stderr
    assert "no user class has a task left" in r.stderr
    assert "-T nosuch,zzz -E a" in r.stderr, r.stderr
    assert "tag 'nosuch' (-T) is on no task" in r.stderr


@pytest.mark.parametrize("args,what", [
    (["-T"], "'-T' needs at least one value"),
    (["--tags", "--headless"], "'--tags' needs at least one value"),
    (["-E", ","], "-E/--exclude-tags needs tag names"),
    (["--equal-weights=yes"], "unknown option '--equal-weights=yes'"),
])
def test_bad_tag_flags_exit_2_naming_the_flag(tmp_path, args, what):
    sc = write(tmp_path, "s.ini", "[user A]\n[task]\npath = /\n")
    r = aiload("-f", sc, "--headless", "-t", 1, "-H", "http://127.0.0.1:9", *args, timeout=10)
    assert r.returncode == 2, r.stderr
    assert what in r.stderr, r.stderr
    r = aiload("http://127.0.0.1:9/", "-T", "a", timeout=10)
    assert r.returncode == 2 and "give -f SCENARIO" in r.stderr, r.stderr


def test_help_lists_the_tag_flags():
    r = aiload("--help")
    assert r.returncode == 0
    for flag in ("--tags", "--exclude-tags", "--equal-weights"):
        assert flag in r.stdout
