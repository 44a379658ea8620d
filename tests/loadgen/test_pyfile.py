"""aiload -f locustfile.py: real locustfiles (tests/loadgen/pyfiles/) run by
aiload against a real aiserve hosting tests/loadgen/pyfile_app.py; where the
file is deterministic (every user runs a fixed number of rounds, then stops)
the request names, counts and failures are compared with what Locust 2.12
(Debian's python3-locust) records for the same file against the same server."""
import csv
import io
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from harness import ROOT, binary, free_port, procs  # noqa: F401
from pyfilekit import app  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = os.path.join(HERE, "pyfiles")
LOCUST = shutil.which("locust") or "/usr/bin/locust"


def run(prog, f, host, tmp_path, tag, *args, timeout=90, env=None):
    prefix = str(tmp_path / tag)
    cmd = [prog, "-f", f, "--headless", "--only-summary", "--csv", prefix]
    if host:
        cmd += ["-H", host]
    cmd += [str(a) for a in args]
    e = dict(os.environ, **(env or {}))
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, cwd=str(tmp_path))
    r.elapsed = time.monotonic() - t0
    r.prefix = prefix
    return r


def aiload(f, host, tmp_path, *args, **kw):
    return run(binary("aiload"), f, host, tmp_path, "aiload", *args, **kw)


def locust(f, host, tmp_path, *args, **kw):
    if not os.access(LOCUST, os.X_OK):
        pytest.skip("Locust (python3-locust) is not installed")
    return run(LOCUST, f, host, tmp_path, "locust", *args, **kw)


def rows(prefix):
    with open(prefix + "_stats.csv", newline="") as f:
        return {(r["Type"], r["Name"]): (int(r["Request Count"]), int(r["Failure Count"]))
                for r in csv.DictReader(f)}


def failures(prefix):
    with open(prefix + "_failures.csv", newline="") as f:
        return sorted((r["Method"], r["Name"], r["Error"], int(r["Occurrences"])) for r in csv.DictReader(f))


def exceptions(prefix):
    with open(prefix + "_exceptions.csv", newline="") as f:
        return sorted((int(r["Count"]), r["Message"], r["Traceback"].strip().splitlines()[-2].strip())
                      for r in csv.DictReader(f))


def pyfile(name):
    return os.path.join(FILES, name)


def test_the_articles_locustfile_runs_unchanged(app, tmp_path):
    # between(5, 15): each user's first task runs at once, the next >= 5 s later
    r = aiload(os.path.join(ROOT, "examples/locust/load_testing.py"), app, tmp_path,
               "-u", 3, "-r", 100, "-t", "3s", "--json", tmp_path / "s.json", "--fail-if", "p99<5s")
    assert r.returncode == 0, r.stderr
    assert rows(r.prefix) == {("GET", "/"): (3, 0), ("", "Aggregated"): (3, 0)}
    js = json.loads((tmp_path / "s.json").read_text())
    assert js["requests"] == 3 and js["failures"] == 0 and js["thresholds"][0]["ok"]
    assert js["entries"][0]["name"] == "/"
    # Locust's console tables, as on the ini path
    assert "Type     Name" in r.stdout and "Aggregated" in r.stdout
    assert "Response time percentiles (approximated)" in r.stdout
    with open(r.prefix + "_stats.csv") as f:
        head = f.readline()
    assert head.startswith("Type,Name,Request Count,Failure Count,Median Response Time,")
    with open(r.prefix + "_exceptions.csv", newline="") as f:
        assert f.read() == "Count,Message,Traceback,Nodes\r\n"


def test_api_surface_matches_locust(app, tmp_path):
    """on_start login with a token and a cookie, catch_response on .json(),
    name=, params/data/json/files/headers/cookies/timeout, every verb,
    redirects, nested TaskSet with interrupt(), SequentialTaskSet, a module-
    level task in a tasks dict, fixed_count, an exception in a task, events
    (init, test_start/stop, request, spawning_complete), custom arguments."""
    args = ("-u", 3, "-r", 100, "-t", "4s", "--rounds", 2)
    a = aiload(pyfile("api.py"), app, tmp_path, *args, "--out-file", tmp_path / "a.json")
    assert a.returncode == 1, a.stderr  # failures and an exception: exit_code_on_error
    got = rows(a.prefix)
    assert got[("POST", "/login")] == (2, 0)
    assert got[("GET", "/api/session")] == (4, 0)  # the login's cookie came back
    assert got[("GET", "/item?id=[id]")] == (12, 0)
    assert got[("GET", "inner")] == (4, 0)
    assert got[("GET", "module_task")] == (2, 0)
    assert got[("GET", "/status/500")] == (4, 4)
    assert got[("GET", "/status/404")] == (4, 0)  # response.success()
    assert got[("GET", "/")] == (4, 4)  # response.failure()
    ex = exceptions(a.prefix)
    assert len(ex) == 1 and ex[0][0] == 4 and ex[0][1] == "division by zero"
    assert "division by zero" in a.stderr  # logged as Locust logs it
    st = json.loads((tmp_path / "a.json").read_text())
    assert st["init"] == st["test_start"] == st["test_stop"] == 1
    assert st["rounds"] == 2 and st["requests"] == st["total"] == got[("", "Aggregated")][0]

    lo = locust(pyfile("api.py"), app, tmp_path, *args, "--out-file", tmp_path / "l.json")
    assert lo.returncode == 1, lo.stderr
    assert got == rows(lo.prefix)
    assert failures(a.prefix) == failures(lo.prefix)
    assert ex == exceptions(lo.prefix)
    ls = json.loads((tmp_path / "l.json").read_text())
    for k in ("init", "test_start", "test_stop", "requests", "rounds", "total"):
        assert st[k] == ls[k], k


def test_fasthttpuser_matches_locust(app, tmp_path):
    args = ("-u", 2, "-r", 100, "-t", "3s")
    a = aiload(pyfile("fast.py"), app, tmp_path, *args)
    assert a.returncode == 1, a.stderr
    got = rows(a.prefix)
    assert got[("GET", "/status/404")] == (8, 4)
    assert got[("GET", "noauth")] == (4, 4)
    lo = locust(pyfile("fast.py"), app, tmp_path, *args)
    assert got == rows(lo.prefix)
    assert failures(a.prefix) == failures(lo.prefix)


def test_rest_helper_parses_json_and_fails_on_assert(app, tmp_path):
    a = aiload(pyfile("rest.py"), app, tmp_path, "-u", 2, "-r", 100, "-t", "2s")
    got = rows(a.prefix)
    assert got[("POST", "/login")] == (2, 0) and got[("GET", "/api/items")] == (2, 0)
    fails = {(n, e) for _, n, e, _ in failures(a.prefix)}
    assert ("wrong", "CatchResponseError('user is not dave')") in fails
    assert any(n == "not-json" and "Could not parse response as JSON" in e for n, e in fails)


def test_custom_arguments_show_in_help_and_reach_parsed_options(app, tmp_path):
    r = subprocess.run([binary("aiload"), "-f", pyfile("api.py"), "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0
    assert "--rounds" in r.stdout and "rounds each ApiUser runs" in r.stdout
    assert "--headless" in r.stdout  # aiload's own options are there too
    # from the environment (Locust's LOCUST_ prefix) when not on the command line
    a = aiload(pyfile("api.py"), app, tmp_path, "-u", 3, "-r", 100, "-t", "3s",
               "--out-file", tmp_path / "e.json", env={"LOCUST_ROUNDS": "3"})
    assert json.loads((tmp_path / "e.json").read_text())["rounds"] == 3
    assert rows(a.prefix)[("GET", "inner")] == (6, 0)


def test_weights_lambdas_tags_custom_users_and_runner_state(app, tmp_path):
    a = aiload(pyfile("misc.py"), app, tmp_path, "-u", 6, "-r", 100, "-t", "2s")
    assert a.returncode == 0, a.stderr
    got = rows(a.prefix)
    for name in ("list-task", "tag-a", "tag-b"):
        assert got[("GET", name)][0] > 10
    assert got[("GET", "state-ok")][0] > 10
    assert got[("CUSTOM", "work")][0] > 10  # events.request.fire from user code is recorded
    assert "Weighted: 3, Lambda: 1, Quitter: 1, Custom: 1" in a.stderr
    # the deprecated request_success hook still hears every successful request
    m = re.search(r"deprecated request_success fired (\d+) times", a.stdout)
    assert m and int(m.group(1)) == got[("", "Aggregated")][0], a.stdout[-500:]
    # -T keeps only tagged tasks; classes left without one are dropped
    t = aiload(pyfile("misc.py"), app, tmp_path, "-u", 6, "-r", 100, "-t", "2s", "-T", "a")
    names = {n for _, n in rows(t.prefix)}
    assert names == {"tag-a", "Aggregated"}, names
    x = aiload(pyfile("misc.py"), app, tmp_path, "-u", 6, "-r", 100, "-t", "2s", "-E", "a")
    names = {n for _, n in rows(x.prefix)}
    assert "tag-a" not in names and "tag-b" in names and "list-task" in names


def test_load_test_shape_drives_and_ends_the_test(app, tmp_path):
    a = aiload(pyfile("shape.py"), app, tmp_path, "-t", "30s")
    assert a.returncode == 0, a.stderr
    assert a.elapsed < 20, a.elapsed  # the shape ended it (~4 s), not -t
    assert "Shape test stopping" in a.stderr
    n = rows(a.prefix)[("GET", "/")][0]
    assert 60 <= n <= 160, n  # 2 users for 2 s then 4 for 2 s, a request every ~0.1 s


def test_load_test_shape_over_processes(app, tmp_path):
    """--processes with a shape: the parent ticks it and splits each step over the
    children (2 users: one each; 4: two each); its None ends the test."""
    a = aiload(pyfile("shape.py"), app, tmp_path, "-t", "30s", "--processes", "2")
    assert a.returncode == 0, a.stderr
    assert a.elapsed < 20, a.elapsed
    assert "shape test (Steps) over 2 processes" in a.stderr, a.stderr
    assert "Shape test stopping" in a.stderr
    n = rows(a.prefix)[("GET", "/")][0]
    assert 60 <= n <= 160, n  # the same load as one process: 2 users for 2 s, then 4
    with open(a.prefix + "_stats_history.csv", newline="") as f:
        counts = {r["User Count"] for r in csv.DictReader(f)}
    assert {"2", "4"} <= counts, counts


def test_a_user_that_never_yields_does_not_freeze_the_stop(app, tmp_path):
    a = aiload(pyfile("stuck.py"), app, tmp_path, "-u", 2, "-r", 100, "-t", "3s", timeout=60)
    assert a.elapsed < 13, a.elapsed
    # while it runs: a warning after 2 s naming the code that holds the thread
    assert "spin_forever (" in a.stderr and "has not yielded for 2 s" in a.stderr, a.stderr
    assert "task spin_forever" in a.stderr and "stuck.py:12" in a.stderr, a.stderr
    assert "never yielded" in a.stderr
    assert rows(a.prefix)[("GET", "/")][0] >= 1


def test_a_name_aiload_does_not_provide_fails_at_start_naming_file_and_line(tmp_path):
    r = subprocess.run([binary("aiload"), "-f", pyfile("missing.py"), "--headless", "-t", "1s",
                        "-H", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "missing.py:2:" in r.stderr and "'NotProvidedAnywhere'" in r.stderr
    assert "docs/aiload.md" in r.stderr


def test_a_directory_of_locustfiles_runs_every_file(app, tmp_path):
    d = tmp_path / "files"
    d.mkdir()
    for name, path in (("one", "/item?id=1"), ("two", "/item?id=2")):
        (d / f"{name}.py").write_text(
            "from locust import HttpUser, task, constant\n"
            f"class {name.title()}(HttpUser):\n    wait_time = constant(0.05)\n"
            f"    @task\n    def t(self):\n        self.client.get('{path}', name='{name}')\n")
    (d / "_helper.py").write_text("raise RuntimeError('files starting with _ are not locustfiles')\n")
    a = aiload(str(d), app, tmp_path, "-u", 2, "-r", 100, "-t", "2s")
    assert a.returncode == 0, a.stderr
    got = rows(a.prefix)
    assert got[("GET", "one")][0] > 5 and got[("GET", "two")][0] > 5
    # positional user class names pick classes, as Locust's do
    b = aiload(str(d), app, tmp_path, "-u", 2, "-r", 100, "-t", "1s", "Two")
    assert {n for _, n in rows(b.prefix)} == {"two", "Aggregated"}


def test_connection_refused_is_a_failure_with_locusts_text(tmp_path):
    port = free_port()  # nothing listens there
    a = aiload(os.path.join(ROOT, "examples/locust/load_testing.py"), f"http://127.0.0.1:{port}",
               tmp_path, "-u", 1, "-r", 1, "-t", "1s")
    assert a.returncode == 1
    assert failures(a.prefix) == [("GET", "/", "ConnectionRefusedError(111, 'Connection refused')", 1)]


def test_ini_scenarios_still_run_on_the_c_path(app, tmp_path):
    ini = tmp_path / "s.ini"
    ini.write_text("[user U]\nwait_time = constant(0.1)\n[task U]\nmethod = GET\npath = /\n")
    r = subprocess.run([binary("aiload"), "-f", str(ini), "--headless", "-u", "1", "-r", "1", "-t", "1s",
                        "-H", app, "--only-summary"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "(Python locustfile)" not in r.stderr


def test_a_locustfile_without_a_user_class_or_host_exits_2(app, tmp_path):
    lf = tmp_path / "locustfile.py"
    lf.write_text("from locust import HttpUser\n")
    r = subprocess.run([binary("aiload"), "-f", str(lf), "--headless", "-t", "1s", "-H", app],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no User class found" in r.stderr, r.stderr
    r = subprocess.run([binary("aiload"), "-f", os.path.join(ROOT, "examples/locust/load_testing.py"),
                        "--headless", "-t", "1s"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no host" in r.stderr, r.stderr
    r = subprocess.run([binary("aiload"), "-f", os.path.join(ROOT, "examples/locust/load_testing.py"),
                        "--headless", "-t", "1s", "-H", "http://no-such-host.invalid:80"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot resolve 'no-such-host.invalid'" in r.stderr, r.stderr


def test_processes_split_the_users_and_merge_the_stats(app, tmp_path):
    """--processes 2: the same counts as one process (each class split over
    the children, fixed_count included), exceptions merged."""
    args = ("-u", 3, "-r", 100, "-t", "4s", "--rounds", 2)
    one = aiload(pyfile("api.py"), app, tmp_path, *args)
    two = run(binary("aiload"), pyfile("api.py"), app, tmp_path, "two", *args, "--processes", 2)
    assert two.returncode == 1, two.stderr
    assert "over 2 processes" in two.stderr
    assert rows(two.prefix) == rows(one.prefix)
    assert failures(two.prefix) == failures(one.prefix)
    assert exceptions(two.prefix) == exceptions(one.prefix)


def test_runner_quit_from_a_task_ends_the_test(app, tmp_path):
    a = aiload(pyfile("misc.py"), app, tmp_path, "-u", 6, "-r", 100, "-t", "60s", "--quit-after", 1)
    assert a.returncode == 0, a.stderr
    assert a.elapsed < 20, a.elapsed
    assert rows(a.prefix)[("GET", "quitter")][0] >= 2


def test_https_with_the_c_client(procs, tmp_path):  # noqa: F811
    """https through loadgen/tls.c: verified with --cacert, a 320 kB body read
    whole, a wrong certificate fails the request, -k skips the check."""
    from test_https import Nginx

    ng = Nginx(procs, tmp_path)
    lf = tmp_path / "tls.py"
    lf.write_text("from locust import HttpUser, task, constant\n"
                  "from locust.exception import StopUser\n"
                  "class U(HttpUser):\n    wait_time = constant(0)\n    @task\n    def t(self):\n"
                  "        self.client.get('/')\n"
                  "        r = self.client.get('/big')\n"
                  "        assert r.text.endswith('THE-END\\n') and len(r.content) == 320008, (r.status_code, r.headers, r.content[:50], len(r.content))\n"
                  "        raise StopUser()\n")
    a = aiload(str(lf), f"https://127.0.0.1:{ng.port}", tmp_path, "-u", 2, "-r", 100, "-t", "2s",
               "--cacert", ng.good)
    assert a.returncode == 0, a.stderr
    assert rows(a.prefix)[("GET", "/big")] == (2, 0)
    # the server for wrong.example: no /big there, only /
    lf2 = tmp_path / "tls2.py"
    lf2.write_text("from locust import HttpUser, task, constant\n"
                   "class U(HttpUser):\n    wait_time = constant(0.1)\n    @task\n    def t(self):\n"
                   "        self.client.get('/')\n")
    b = aiload(str(lf2), f"https://127.0.0.1:{ng.wrong_port}", tmp_path, "-u", 1, "-r", 100, "-t", "1s")
    assert b.returncode == 1
    assert any("certificate" in e for _, _, e, _ in failures(b.prefix)), failures(b.prefix)
    c = aiload(str(lf2), f"https://127.0.0.1:{ng.wrong_port}", tmp_path, "-u", 1, "-r", 100, "-t", "1s", "-k")
    assert c.returncode == 0, c.stderr
    assert rows(c.prefix)[("GET", "/")][0] > 3
