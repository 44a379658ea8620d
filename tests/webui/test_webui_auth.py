"""The web UI exposed safely: --web-auth (HTTP Basic on every route, as
Locust 2.12's flag, compared with real Locust on the same routes) and
--web-host '*' (every address; the loopback default stays)."""
import base64
import os
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from harness import binary, free_port, wait_port
from test_webui import run_browser

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"

SCENARIO = "[user web]\nwait_time = constant(0.1)\n[task]\npath = /hello\n"
LOCUSTFILE = """
from locust import HttpUser, task, constant
class web(HttpUser):
    wait_time = constant(0.1)
    @task
    def hello(self):
        self.client.get("/hello")
"""

# (method, path): every kind of route: the page, assets, REST, control, downloads, unknown
ROUTES = [("GET", "/"), ("GET", "/app.js"), ("GET", "/app.css"), ("GET", "/favicon.svg"),
          ("GET", "/stats/requests"), ("GET", "/stats/history"), ("GET", "/stats/summary"),
          ("GET", "/stats/requests/csv"), ("GET", "/stats/requests_full_history/csv"),
          ("GET", "/stats/failures/csv"), ("GET", "/exceptions/csv"), ("GET", "/exceptions"),
          ("GET", "/stats/report?download=1"), ("GET", "/metrics"), ("GET", "/tasks"),
          ("GET", "/defaults"), ("GET", "/stop"), ("GET", "/stats/reset"), ("GET", "/nosuch"),
          ("POST", "/swarm"), ("HEAD", "/"), ("DELETE", "/stats/requests")]
# the routes Locust 2.12 has too
LOCUST_ROUTES = [("GET", "/"), ("GET", "/stats/requests"), ("GET", "/stats/requests/csv"),
                 ("GET", "/stats/failures/csv"), ("GET", "/exceptions"), ("GET", "/exceptions/csv"),
                 ("GET", "/stats/report?download=1"), ("GET", "/tasks"), ("GET", "/stop"),
                 ("GET", "/stats/reset"), ("POST", "/swarm")]


def basic(user_pass):
    return "Basic " + base64.b64encode(user_pass.encode()).decode()


def call(base, method, path, auth=None):
    """(status, WWW-Authenticate) of one request."""
    data = b"user_count=1&spawn_rate=1&host=http://127.0.0.1:9" if method == "POST" else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if auth is not None:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
            return r.status, r.headers.get("WWW-Authenticate")
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, e.headers.get("WWW-Authenticate")


def start_aiload(procs, tmp_path, *args, env=None):
    sc = tmp_path / "s.ini"
    sc.write_text(SCENARIO)
    port = free_port()
    e = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    e.update(env or {}, HOME=str(tmp_path))
    p = procs.start([binary("aiload"), "-f", str(sc), "-P", str(port), *args], env=e,
                    cwd=str(tmp_path))
    wait_port(port, proc=p)
    return p, f"http://127.0.0.1:{port}"


def start_locust(procs, tmp_path, *args):
    lf = tmp_path / "lf.py"
    lf.write_text(LOCUSTFILE)
    port = free_port()
    e = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    e.update(HOME=str(tmp_path), PYTHONWARNINGS="ignore")
    p = procs.start([PY, "-m", "locust", "-f", str(lf), "--web-host", "127.0.0.1", "-P", str(port),
                     *args], env=e, cwd=str(tmp_path))
    wait_port(port, timeout=60, proc=p)
    return p, f"http://127.0.0.1:{port}"


WRONG = [None, basic("admin:wrong"), basic("admin:s3cret!x"), basic("admin:s3cret"),
         basic("Admin:s3cret!"), "Bearer " + base64.b64encode(b"admin:s3cret!").decode(),
         "Basic !!!not-base64", "Basic " + base64.b64encode(b"admin:s3cret!").decode()[:-1], "Basic"]


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_web_auth_guards_every_route(procs, tmp_path, how):
    args, env = [], {}
    if how == "flag":
        args = ["--web-auth", "admin:s3cret!"]
    elif how == "env":
        env = {"LOCUST_WEB_AUTH": "admin:s3cret!"}
    else:
        (tmp_path / "locust.conf").write_text("web-auth = admin:s3cret!\n")
    _, base = start_aiload(procs, tmp_path, *args, env=env)
    good = basic("admin:s3cret!")
    for method, path in ROUTES:
        for bad in WRONG:
            st, challenge = call(base, method, path, bad)
            assert st == 401, (method, path, bad, st)
            assert challenge and challenge.startswith("Basic realm="), (method, path, challenge)
        st, challenge = call(base, method, path, good)
        assert st != 401 and challenge is None, (method, path, st)
    # the right credentials really drive the UI
    assert call(base, "GET", "/stats/requests", "basic  " + good[6:])[0] == 200


def test_web_auth_status_codes_match_locust(procs, tmp_path):
    _, ai = start_aiload(procs, tmp_path, "--web-auth", "u:p")
    _, lo = start_locust(procs, tmp_path, "--web-auth", "u:p")
    for method, path in LOCUST_ROUTES:
        for auth in (None, basic("u:x"), basic("u:p")):
            a, l = call(ai, method, path, auth), call(lo, method, path, auth)
            assert (a[0] == 401) == (l[0] == 401), (method, path, auth, a, l)
            assert (a[1] is None) == (l[1] is None), (method, path, auth, a, l)
        call(ai, "GET", "/stop", basic("u:p"))
        call(lo, "GET", "/stop", basic("u:p"))


@pytest.mark.parametrize("bad", ["nocolon", "a:b:c"])
def test_bad_web_auth_is_refused(tmp_path, bad):
    sc = tmp_path / "s.ini"
    sc.write_text(SCENARIO)
    r = subprocess.run([binary("aiload"), "-f", str(sc), "-P", "0", "--web-auth", bad],
                       capture_output=True, text=True, timeout=30, env=dict(os.environ, HOME=str(tmp_path)))
    assert r.returncode == 2
    assert "--web-auth must be 'username:password'" in r.stderr


def test_browser_with_credentials_runs_a_test_and_downloads(procs, tmp_path):
    """The page in chromium behind --web-auth: 401 without credentials; with
    them every poll, the start form and a download link work."""
    port = free_port()
    srv = subprocess.Popen([PY, "-c", TARGET_SRC, str(port)])
    try:
        wait_port(port, proc=srv)
        _, base = start_aiload(procs, tmp_path, "--web-auth", "admin:s3cret!")
        out = run_browser("auth", base, f"http://127.0.0.1:{port}", "admin:s3cret!")
    finally:
        srv.terminate()
        srv.wait(timeout=10)
    assert out["anonymous_status"] == 401 and out["status"] == 200, out
    assert out["anonymous_challenge"].startswith("Basic realm="), out
    assert out["csv"].startswith("Type,Name,Request Count"), out["csv"][:200]
    assert ",/hello," in out["csv"]
    assert out["page_errors"] == []


TARGET_SRC = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"hello\\n")
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def reachable(host, port):
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def test_web_host_star_listens_everywhere_and_the_default_stays_on_loopback(procs, tmp_path):
    """Linux routes all of 127/8 to lo: a socket bound to 127.0.0.1 does not
    answer on 127.0.0.2, one bound to every address does."""
    p, base = start_aiload(procs, tmp_path)
    port = int(base.rsplit(":", 1)[1])
    assert reachable("127.0.0.1", port) and not reachable("127.0.0.2", port)
    p2, base2 = start_aiload(procs, tmp_path, "--web-host", "*", "--web-auth", "a:b")
    port2 = int(base2.rsplit(":", 1)[1])
    assert reachable("127.0.0.2", port2)
    assert call(f"http://127.0.0.2:{port2}", "GET", "/stats/requests")[0] == 401
    assert call(f"http://127.0.0.2:{port2}", "GET", "/stats/requests", basic("a:b"))[0] == 200


def test_web_host_star_without_auth_warns(procs, tmp_path):
    sc = tmp_path / "s.ini"
    sc.write_text(SCENARIO)
    port = free_port()
    p = subprocess.Popen([binary("aiload"), "-f", str(sc), "-P", str(port), "--web-host", "*",
                          "--autoquit", "0"], stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, HOME=str(tmp_path)))
    try:
        wait_port(port, proc=p)
        assert reachable("127.0.0.2", port)
    finally:
        p.terminate()
        err = p.communicate(timeout=30)[1]
    assert "listens on * without --web-auth" in err, err
