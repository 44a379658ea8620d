"""aiserve routing on a real server: the app owns its paths (built-ins yield
to an app at /, unless `builtins` names them; an `admin` listener serves the
built-ins alone; the start-up log says which answer where); request paths are
normalized before routing (dot-segments, RFC 3986 §5.2.4); empty lines before
a request line; chunk extensions with a bare CR."""
import json
import os
import re
import socket
import subprocess
import time

from harness import binary, free_port, wait_port
from srvutil import recv_response, request, wait_for

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")


def serve(procs, tmp_path, *flags):
    """aiserve on a fresh port, its log in tmp_path/aiserve.log; returns
    (proc, port, log path). The first request waits in the listen queue until
    a worker takes it, so the callers' generous timeouts cover the start."""
    port = free_port()
    log = os.path.join(str(tmp_path), "aiserve.log")
    p = procs.start([binary("aiserve"), f"--http=127.0.0.1:{port}", f"--pythonpath={APPS}",
                     f"--logto={log}", "--need-app=false", *flags], cwd=str(tmp_path))
    wait_port(port, timeout=30, proc=p)
    return p, port, log


def get(port, path, timeout=30.0):
    return request(port, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode(), timeout)


def echo_of(port, path):
    st, _, body = get(port, path)
    assert st == 200, (path, st, body)
    return json.loads(body)


def wait_ready(port, proc):
    assert wait_for(lambda: proc.poll() is not None or get(port, "/health/ready")[0] == 200,
                    timeout=60), "not ready"
    assert proc.poll() is None


def log_lines(log, needle, timeout=30.0):
    """The log lines containing needle, once there is at least one."""
    def lines():
        with open(log) as f:
            return [ln for ln in f.read().splitlines() if needle in ln]
    return wait_for(lines, timeout=timeout)


BUILTIN_PATHS = "/hello /health/live /health/ready /metrics /delay/*"


# ---- issue 11: the app owns its paths ----

def test_a_flask_app_at_the_root_gets_its_own_hello_and_health(procs, tmp_path):
    admin = free_port()
    p, port, log = serve(procs, tmp_path, "--module=routes_app:app", f"--admin=127.0.0.1:{admin}",
                         "--processes=2")
    wait_port(admin, timeout=30, proc=p)
    wait_ready(admin, p)
    st, _, body = get(port, "/hello")
    assert (st, body) == (200, b"hello from flask\n")
    st, _, body = get(port, "/health/live")
    assert st == 200 and json.loads(body) == {"flask": "live"}
    for path in ("/health/ready", "/metrics", "/delay/0"):
        st, h, _ = get(port, path)
        assert st == 404 and h["content-type"].startswith("text/html"), (path, "Flask's 404")
    # the admin listener: every built-in, and nothing of the app
    st, _, body = get(admin, "/hello")
    assert (st, body) == (200, b"hello\n")
    assert json.loads(get(admin, "/health/live")[2]) == {"status": "live"}
    st, _, body = get(admin, "/health/ready")
    assert st == 200 and json.loads(body)["ready_workers"] == 2
    st, _, body = get(admin, "/metrics")
    assert st == 200 and b'aiserve_requests_total{route="/hello"' in body
    assert get(admin, "/delay/0")[0] == 200
    for path in ("/", "/anything", "/health"):
        st, _, body = get(admin, path)
        assert (st, body) == (404, b"not found\n"), path
    main, = log_lines(log, f"built-ins on http://127.0.0.1:{port} ")
    assert "(builtins = auto): none" in main
    adm, = log_lines(log, "built-ins on admin listener")
    assert adm.endswith(f"http://127.0.0.1:{admin}: {BUILTIN_PATHS}")


def test_builtins_named_in_the_option_answer_ahead_of_a_root_app(procs, tmp_path):
    p, port, log = serve(procs, tmp_path, "--module=routes_app:app", "--builtins=health, metrics")
    wait_ready(port, p)
    assert json.loads(get(port, "/health/live")[2]) == {"status": "live"}, "the built-in's"
    st, _, body = get(port, "/metrics")
    assert st == 200 and b"aiserve_requests_total" in body
    assert get(port, "/hello")[2] == b"hello from flask\n", "not named: the app's"
    main, = log_lines(log, "built-ins on http://")
    assert main.endswith("(builtins = health,metrics): /health/live /health/ready /metrics")


def test_with_no_app_at_the_root_the_builtins_answer_on_the_main_port(procs, tmp_path):
    p, port, log = serve(procs, tmp_path, "--mount=/api=routes_app:echo", "--lazy-apps")
    wait_ready(port, p)
    assert get(port, "/hello")[2] == b"hello\n"
    assert get(port, "/metrics")[0] == 200
    assert json.loads(get(port, "/api/hello")[2])["PATH_INFO"] == "/hello"
    # with lazy-apps the routes are known in the workers: worker 1 logs them
    main, = log_lines(log, "built-ins on http://")
    assert main.endswith(f"(builtins = auto): {BUILTIN_PATHS}")


def test_bad_builtins_and_admin_values_refuse_start_up(tmp_path):
    port = free_port()
    for flags, needle in [(["--builtins=health,bogus"], "'bogus' is not auto, all, none"),
                          (["--builtins=auto,health"], "auto cannot be combined"),
                          ([f"--admin=127.0.0.1:{port}"], "also a 'http' address"),
                          (["--admin=9191"], "option 'admin'")]:
        r = subprocess.run([binary("aiserve"), f"--http=127.0.0.1:{port}", *flags],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and needle in r.stderr, (flags, r.stderr)
        assert "builtins" in r.stderr or "admin" in r.stderr


# ---- issue 21: minor HTTP points ----

def test_dot_segments_are_removed_before_routing_and_path_info(procs, tmp_path):
    _, port, _ = serve(procs, tmp_path, "--module=routes_app:echo")
    e = echo_of(port, "/a/b/../c/./d")
    assert e["PATH_INFO"] == "/a/c/d" and e["REQUEST_URI"] == "/a/b/../c/./d"
    assert echo_of(port, "/x/%2e%2E/y/%2E")["PATH_INFO"] == "/y/"
    assert echo_of(port, "/x/..%2fz")["PATH_INFO"] == "/z", "an encoded '/' separates too"
    assert echo_of(port, "/a/..")["PATH_INFO"] == "/"
    for path in ("/..", "/../etc/passwd", "/a/../../etc/passwd", "/%2e%2e/x", "/a/.%2E/%2e./b"):
        st, _, body = get(port, path)
        assert st == 400, (path, st, body)
    e = echo_of(port, "/still/serving")
    assert e["PATH_INFO"] == "/still/serving"


def test_a_normalized_path_is_routed_by_what_it_names(procs, tmp_path):
    _, port, _ = serve(procs, tmp_path, "--mount=/api=routes_app:echo")
    e = echo_of(port, "/api/v1/../v2")
    assert (e["SCRIPT_NAME"], e["PATH_INFO"]) == ("/api", "/v2")
    st, _, body = get(port, "/api/../hello")
    assert (st, body) == (200, b"hello\n"), "left the mount: the built-in answers"
    e = echo_of(port, "/x/../api/y")
    assert (e["SCRIPT_NAME"], e["PATH_INFO"]) == ("/api", "/y")


def test_empty_lines_before_the_request_line_are_ignored_up_to_a_bound(procs, tmp_path):
    _, port, _ = serve(procs, tmp_path)
    for lead in (b"\r\n", b"\r\n\r\n", b"\n\r\n\n", b"\r\n" * 8):
        st, _, body = request(port, lead + b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", 30)
        assert (st, body) == (200, b"hello\n"), lead
    st, _, _ = request(port, b"\r\n" * 9 + b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", 30)
    assert st == 400
    # a client that ends a POST body with an extra CRLF keeps its connection
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\r\n"
                  b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        st, _, body = recv_response(s, 30)
        assert st == 200 and json.loads(body)["data"] == "hi"
        assert recv_response(s, 30)[2] == b"hello\n"


def test_a_bare_cr_in_a_chunk_extension_or_trailer_is_refused(procs, tmp_path):
    _, port, _ = serve(procs, tmp_path)
    head = b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    st, _, body = request(port, head + b"2;ext=v\r\nhi\r\n0\r\n\r\n", 30)
    assert st == 200 and json.loads(body)["data"] == "hi"
    for framing in (b"2;ext=v\rX\r\nhi\r\n0\r\n\r\n",
                    b"2;a\rGET /hello HTTP/1.1\r\nhi\r\n0\r\n\r\n",
                    b"2\r\nhi\r\n0\r\nT: a\rb\r\n\r\n"):
        st, _, body = request(port, head + framing, 30)
        assert st == 400, (framing, st, body)
