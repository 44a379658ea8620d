"""aiload's command line against real Locust 2.12 (Debian's python3-locust) on
the same input: the -H path prefix, positional user classes, LOCUST_*
environment variables and config files (--config, ./locust.conf,
~/.locust.conf) with configargparse's precedence. Both tools run against the
suite's lgserver.py and the paths it served are compared."""
import os
import subprocess
import urllib.request
import json

import pytest

from harness import binary, free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"

SCENARIO = """
[user UserT]
wait_time = constant(0.2)
[task UserT]
path = /tx
tags = x
[task UserT]
path = /ty
tags = y
[user UserA]
wait_time = constant(0.2)
[task UserA]
path = /a
[user UserB]
wait_time = constant(0.2)
[task UserB]
path = /b
[user UserC]
wait_time = constant(0.2)
[task UserC]
path = /c
"""

LOCUSTFILE = """
from locust import HttpUser, task, constant, tag
class UserT(HttpUser):
    wait_time = constant(0.2)
    @tag("x")
    @task
    def tx(self):
        self.client.get("/tx")
    @tag("y")
    @task
    def ty(self):
        self.client.get("/ty")
class UserA(HttpUser):
    wait_time = constant(0.2)
    @task
    def t(self):
        self.client.get("/a")
class UserB(HttpUser):
    wait_time = constant(0.2)
    @task
    def t(self):
        self.client.get("/b")
class UserC(HttpUser):
    wait_time = constant(0.2)
    @task
    def t(self):
        self.client.get("/c")
"""


@pytest.fixture
def server(procs):
    port = free_port()
    p = procs.start([PY, os.path.join(HERE, "lgserver.py"), str(port)])
    wait_port(port, proc=p)
    return port


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read()) if path == "/count" else r.read()


@pytest.fixture
def files(tmp_path):
    """A working directory with both scenario files and an empty HOME."""
    (tmp_path / "s.ini").write_text(SCENARIO)
    (tmp_path / "lf.py").write_text(LOCUSTFILE)
    home = tmp_path / "home"
    home.mkdir()
    return tmp_path


def clean_env(home, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env.update(HOME=str(home), PYTHONWARNINGS="ignore")
    env.update(extra or {})
    return env


def run_both(port, cwd, args, env=None, seconds="1s", conf=None):
    """Runs Locust (-t 2s) then aiload (-t seconds) with the same arguments
    from cwd; conf maps a config file path to its text, where "LOCUSTFILE"
    becomes lf.py or s.ini (without, -f is on the command line). Returns
    {tool: (returncode, served paths, stderr)}. aiload's clock starts with its
    users, whose first task runs at once, so 1 s serves every class spawned;
    Locust's can run out before its users start on a busy machine (at -t 1s,
    35 ms after spawning), so it keeps 2 s."""
    out = {}
    env = clean_env(cwd / "home", env)
    for tool, cmd, lf, run_time in (("locust", [PY, "-m", "locust"], "lf.py", "2s"),
                                    ("aiload", [binary("aiload")], "s.ini", seconds)):
        for path, text in (conf or {}).items():
            (cwd / path).write_text(text.replace("LOCUSTFILE", lf))
        if not conf or not any("LOCUSTFILE" in t for t in conf.values()):
            cmd = cmd + ["-f", lf]
        if seconds:
            cmd = cmd + ["--headless", "-t", run_time]
        get(port, "/reset")
        r = subprocess.run(cmd + [str(a) for a in args],
                           capture_output=True, text=True, timeout=90, env=env, cwd=str(cwd))
        out[tool] = (r.returncode, sorted(get(port, "/count")["paths"]), r.stderr)
    return out


def same(out):
    (lrc, lpaths, lerr), (arc, apaths, aerr) = out["locust"], out["aiload"]
    assert lpaths == apaths, f"locust {lpaths} aiload {apaths}\n{lerr[-2000:]}\n{aerr[-2000:]}"
    assert (lrc == 0) == (arc == 0), f"locust rc {lrc} aiload rc {arc}\n{lerr[-2000:]}\n{aerr}"
    return lpaths


@pytest.mark.parametrize("suffix,want", [
    ("/api/v1", ["/api/v1/a"]),
    ("/api/", ["/api//a"]),
    ("/", ["//a"]),
    ("/p?q=1", ["/p?q=1/a"]),
    ("", ["/a"]),
])
def test_host_path_prefix_is_kept_as_locust_does(server, files, suffix, want):
    out = run_both(server, files, ["-u", 1, "-r", 1, "-H", f"http://127.0.0.1:{server}{suffix}",
                                   "UserA"])
    assert same(out) == want


@pytest.mark.parametrize("classes,users,want", [
    (["UserB"], 2, ["/b"]),
    (["UserA", "UserC"], 2, ["/a", "/c"]),
    (["UserC", "UserC"], 1, ["/c"]),
    ([], 4, ["/a", "/b", "/c", "/tx", "/ty"]),
])
def test_positional_user_classes_select_as_in_locust(server, files, classes, users, want):
    # UserT picks /tx or /ty at random every 0.2 s: 2 s gives it ~10 picks for both
    out = run_both(server, files, ["-u", users, "-r", users, "-H", f"http://127.0.0.1:{server}",
                                   *classes], seconds="2s" if "/tx" in want else "1s")
    assert same(out) == want


def test_an_unknown_user_class_fails_both_and_names_it(server, files):
    out = run_both(server, files, ["-u", 1, "-H", f"http://127.0.0.1:{server}", "UserA", "Nope"])
    assert same(out) == []
    assert "Unknown User(s): Nope" in out["locust"][2]
    rc, _, err = out["aiload"]
    assert rc == 2 and "Unknown User(s): Nope (the scenario has UserT, UserA, UserB, UserC)" in err, err


def test_list_prints_the_classes_as_locust_does(files):
    env = clean_env(files / "home")
    lo = subprocess.run([PY, "-m", "locust", "-f", "lf.py", "-l"], capture_output=True,
                        text=True, timeout=60, env=env, cwd=str(files))
    ai = subprocess.run([binary("aiload"), "-f", "s.ini", "--list"], capture_output=True,
                        text=True, timeout=60, env=env, cwd=str(files))
    assert lo.returncode == ai.returncode == 0, ai.stderr
    assert ai.stdout == lo.stdout == \
        "Available Users:\n    UserT\n    UserA\n    UserB\n    UserC\n"


# ---- LOCUST_* variables and config files: which source wins ----

SOURCES = ("cmd", "env", "config", "local", "home")


@pytest.mark.parametrize("present", [SOURCES, SOURCES[1:], SOURCES[2:], SOURCES[3:], SOURCES[4:],
                                     ("cmd", "home"), ("env", "local"), ("config", "home")])
def test_host_precedence_matches_locust(server, files, present):
    """Each source points -H at its own prefix: the paths served say which
    one won (command line > environment > --config > ./locust.conf >
    ~/.locust.conf)."""
    url = f"http://127.0.0.1:{server}"
    args, env, conf = ["-u", 1, "UserA"], {}, {}
    if "cmd" in present:
        args += ["-H", f"{url}/cmd"]
    if "env" in present:
        env["LOCUST_HOST"] = f"{url}/env"
    if "config" in present:
        conf["my.conf"] = f"[locust]\nhost = {url}/config  # a comment\n"
        args += ["--config", "my.conf"]
    if "local" in present:
        conf["locust.conf"] = f"host: '{url}/local'\n"
    if "home" in present:
        conf["home/.locust.conf"] = f"--host {url}/home\n"
    assert same(run_both(server, files, args, env, conf=conf)) == [f"/{present[0]}/a"]


def test_everything_from_config_files_and_the_environment(server, files):
    """locustfile, users, run time, headless, host and tags from the files and
    LOCUST_*: a flag set in ~/.locust.conf stays set although ./locust.conf
    says false (configargparse only adds what is missing)."""
    conf = {"home/.locust.conf": "headless = true\nrun-time = 2s\n",
            "locust.conf": f"locustfile = LOCUSTFILE\nheadless = false\nusers = 1\n"
                           f"host = http://127.0.0.1:{server}/l\n"}
    out = run_both(server, files, ["UserT"], {"LOCUST_TAGS": "[y]"}, seconds=None, conf=conf)
    assert same(out) == ["/l/ty"]


@pytest.mark.parametrize("conf,env", [
    ({"locust.conf": "tags = x\n"}, {}),
    ({"locust.conf": "tags = [y]\n"}, {"LOCUST_TAGS": "x"}),
    ({}, {"LOCUST_EXCLUDE_TAGS": "[x]"}),
])
def test_tags_from_files_and_variables_match_locust(server, files, conf, env):
    out = run_both(server, files, ["-u", 1, "-H", f"http://127.0.0.1:{server}", "UserT"], env,
                   conf=conf)
    assert same(out) in (["/tx"], ["/ty"])


@pytest.mark.parametrize("conf,env,what", [
    ({"locust.conf": "nosuch = 1\n"}, {}, "locust.conf:1: unknown option 'nosuch'"),
    ({"locust.conf": "\nspawn-rate = [1, 2]\n"}, {}, "locust.conf:2: spawn-rate takes one value"),
    ({"locust.conf": "only-summary = maybe\n"}, {},
     "locust.conf:1: Unexpected value for only-summary: 'maybe'"),
    ({}, {"LOCUST_RESET_STATS": "maybe"}, "Unexpected value for LOCUST_RESET_STATS: 'maybe'"),
    ({"locust.conf": "= 1\n"}, {}, "locust.conf:1: unexpected line '= 1'"),
])
def test_bad_config_fails_both_and_aiload_names_it(server, files, conf, env, what):
    """(A key also on the command line is never looked at, in both.)"""
    out = run_both(server, files, ["-u", 1, "-H", f"http://127.0.0.1:{server}", "UserA"], env,
                   conf=conf)
    assert same(out) == []
    rc, _, err = out["aiload"]
    assert rc == 2 and what in err, err


def test_a_missing_config_file_fails_both(server, files):
    out = run_both(server, files, ["-u", 1, "--config", "nope.conf", "UserA"])
    assert same(out) == []
    assert "cannot open config file nope.conf" in out["aiload"][2]


def test_the_command_line_hides_a_bad_config_value_as_in_locust(server, files):
    conf = {"locust.conf": "headless = maybe\nusers = [1, 2]\n"}
    out = run_both(server, files, ["-u", 1, "-H", f"http://127.0.0.1:{server}", "UserA"],
                   {"LOCUST_HEADLESS": "maybe"}, conf=conf)
    assert same(out) == ["/a"]
