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
from locust import HttpUser, task, constant
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


def run_both(port, cwd, args, env=None, seconds="2s"):
    """Runs Locust then aiload with the same arguments (-f swapped) from cwd;
    returns {tool: (returncode, served paths, stderr)}."""
    out = {}
    env = clean_env(cwd / "home", env)
    for tool, cmd in (("locust", [PY, "-m", "locust", "-f", "lf.py"]),
                      ("aiload", [binary("aiload"), "-f", "s.ini"])):
        get(port, "/reset")
        r = subprocess.run(cmd + ["--headless", "-t", seconds] + [str(a) for a in args],
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
    ([], 3, ["/a", "/b", "/c"]),
])
def test_positional_user_classes_select_as_in_locust(server, files, classes, users, want):
    out = run_both(server, files, ["-u", users, "-r", users, "-H", f"http://127.0.0.1:{server}",
                                   *classes])
    assert same(out) == want


def test_an_unknown_user_class_fails_both_and_names_it(server, files):
    out = run_both(server, files, ["-u", 1, "-H", f"http://127.0.0.1:{server}", "UserA", "Nope"])
    assert same(out) == []
    assert "Unknown User(s): Nope" in out["locust"][2]
    rc, _, err = out["aiload"]
    assert rc == 2 and "Unknown User(s): Nope (the scenario has UserA, UserB, UserC)" in err, err


def test_list_prints_the_classes_as_locust_does(files):
    env = clean_env(files / "home")
    lo = subprocess.run([PY, "-m", "locust", "-f", "lf.py", "-l"], capture_output=True,
                        text=True, timeout=60, env=env, cwd=str(files))
    ai = subprocess.run([binary("aiload"), "-f", "s.ini", "--list"], capture_output=True,
                        text=True, timeout=60, env=env, cwd=str(files))
    assert lo.returncode == ai.returncode == 0, ai.stderr
    assert ai.stdout == lo.stdout == "Available Users:\n    UserA\n    UserB\n    UserC\n"
