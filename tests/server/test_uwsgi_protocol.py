"""The uwsgi protocol (`socket =`, nginx's uwsgi_pass): raw packets against the
real server, unix sockets, and nginx in front of a WSGI app."""
import json
import os
import socket
import stat
import struct
import subprocess
import time

import pytest

from harness import binary, free_port, wait_port
from srvutil import read_to_close

APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "wsgi", "apps")


def packet(vars, body=b"", modifier1=0):
    block = b"".join(struct.pack("<H", len(k)) + k.encode("latin-1") +
                     struct.pack("<H", len(v)) + v.encode("latin-1") for k, v in vars)
    return bytes([modifier1]) + struct.pack("<H", len(block)) + b"\0" + block + body


def nginx_vars(method, uri, body=b"", **extra):
    """What nginx's uwsgi_params send for a request."""
    path, _, query = uri.partition("?")
    v = [("QUERY_STRING", query), ("REQUEST_METHOD", method),
         ("CONTENT_TYPE", "text/plain" if body else ""),
         ("CONTENT_LENGTH", str(len(body)) if body else ""), ("REQUEST_URI", uri),
         ("PATH_INFO", path), ("DOCUMENT_ROOT", "/var/www"), ("SERVER_PROTOCOL", "HTTP/1.1"),
         ("REQUEST_SCHEME", "http"), ("REMOTE_ADDR", "203.0.113.7"), ("REMOTE_PORT", "40000"),
         ("SERVER_PORT", "80"), ("SERVER_NAME", "example.org"), ("HTTP_HOST", "example.org")]
    v += list(extra.items())
    return v


def exchange(addr, data, timeout=10):
    """Sends data and reads the whole answer."""
    fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(data)
        out = read_to_close(s)
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def start(procs, tmp_path, options, http=True, processes=2, threads=2):
    """aiserve with the raw WSGI app, a uwsgi socket, and an HTTP port for health."""
    port = free_port()
    lines = ["[uwsgi]", "pythonpath = %s" % APPS, "module = raw_app:app", "need-app = true",
             "processes = %d" % processes, "threads = %d" % threads]
    lines += ["%s = %s" % kv for kv in options]
    if http:
        lines.append("http = 127.0.0.1:%d" % port)
    ini = os.path.join(str(tmp_path), "u.ini")
    with open(ini, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = procs.start([binary("aiserve"), ini], cwd=str(tmp_path))
    if http:
        wait_port(port, proc=p)
    return p, port


@pytest.fixture
def tcp_server(procs, tmp_path):
    uport = free_port()
    p, _ = start(procs, tmp_path, [("socket", "127.0.0.1:%d" % uport)])
    wait_port(uport, proc=p)
    return ("127.0.0.1", uport)


def test_an_nginx_style_packet_reaches_the_wsgi_app_with_its_cgi_variables(tcp_server):
    st, h, body = exchange(tcp_server, packet(nginx_vars("GET", "/environ?a=1",
                                                         HTTP_X_CUSTOM="v", HTTPS="on")))
    assert st == 200
    env = json.loads(body)
    assert env["PATH_INFO"] == "/environ" and env["QUERY_STRING"] == "a=1"
    assert env["HTTP_X_CUSTOM"] == "v"
    assert env["REMOTE_ADDR"] == "203.0.113.7", "the client nginx saw, not nginx itself"
    assert env["url_scheme"] == "https" and env["HTTPS"] == "on"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert h.get("connection") == "close"


def test_a_body_comes_through_and_a_streamed_answer_is_close_delimited(tcp_server):
    data = os.urandom(300000)
    st, _, body = exchange(tcp_server, packet(nginx_vars("POST", "/echo", data), data))
    assert st == 200 and body == data
    st, h, body = exchange(tcp_server, packet(nginx_vars("GET", "/stream")))
    assert st == 200
    assert "transfer-encoding" not in h, "the front end reads to the close, unframed"
    assert body == b"".join(b"part %d\n" % i for i in range(5))


def test_path_info_without_request_uri_reaches_the_root_app(tcp_server):
    v = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/environ"), ("SERVER_PROTOCOL", "HTTP/1.0")]
    st, _, body = exchange(tcp_server, packet(v))
    assert st == 200 and json.loads(body)["PATH_INFO"] == "/environ"
    # the app at / owns /hello too: the built-in does not shadow it
    v = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/hello"), ("SERVER_PROTOCOL", "HTTP/1.0")]
    st, _, body = exchange(tcp_server, packet(v))
    assert st == 404 and body != b"hello\n"


def test_bad_packets_get_clear_errors_and_the_server_keeps_serving(tcp_server):
    st, _, body = exchange(tcp_server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 400 and b"uwsgi" in body and b"http-socket" in body
    st, _, _ = exchange(tcp_server, packet(nginx_vars("GET", "/")[:3], modifier1=5))
    assert st == 400
    big = packet(nginx_vars("GET", "/", HTTP_X_BIG="x" * 20000))
    st, _, body = exchange(tcp_server, big)
    assert st == 431
    st, _, _ = exchange(tcp_server, packet(nginx_vars("GET", "/", HTTP_X_EVIL="a\r\nb: c")))
    assert st == 400
    st, _, _ = exchange(tcp_server, packet(nginx_vars("GET", "/")))
    assert st == 200


def test_unix_socket_with_chmod_and_vacuum(procs, tmp_path):
    path = os.path.join(str(tmp_path), "app.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # a socket file left by an earlier run is replaced
    stale.close()
    p, _ = start(procs, tmp_path, [("socket", path), ("chmod-socket", "660"),
                                   ("vacuum", "true")])
    deadline = time.monotonic() + 20
    while True:
        try:
            st, _, body = exchange(path, packet(nginx_vars("GET", "/")))
            break
        except (ConnectionRefusedError, FileNotFoundError):
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.05)
    assert st == 200 and body == b"hello from raw wsgi\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    p.terminate()
    p.wait(20)
    assert not os.path.exists(path), "vacuum removes the socket file at exit"


def test_bad_socket_options_name_the_option(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("not a socket")
    for args, want in ((["--socket=%s" % f], "exists and is not a socket"),
                       (["--socket=127.0.0.1:1", "--chmod-socket=9x"], "chmod-socket")):
        r = subprocess.run([binary("aiserve"), "--hello-route=/h"] + args, capture_output=True,
                           text=True, timeout=20)
        assert r.returncode != 0 and want in r.stderr, r.stderr
        assert "socket" in r.stderr


@pytest.mark.parametrize("threads", [2, 1], ids=["app-threads", "app-on-the-loop"])
def test_nginx_uwsgi_pass_in_front(procs, tmp_path, threads):
    nginx = "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        pytest.fail("nginx is not installed (scripts/install-deps.sh installs nginx-light)")
    sock = os.path.join(str(tmp_path), "app.sock")
    # threads = 1 with the uwsgi socket alone: the app runs on the worker's loop
    p, _ = start(procs, tmp_path, [("socket", sock), ("chmod-socket", "666")],
                 http=threads != 1, threads=threads)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text("""
daemon off; worker_processes 1; user root; error_log %(d)s/error.log; pid %(d)s/nginx.pid;
events { worker_connections 64; }
http {
  access_log off; client_body_temp_path %(d)s; uwsgi_temp_path %(d)s;
  server {
    listen 127.0.0.1:%(port)d;
    location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:%(sock)s; }
  }
}
""" % {"d": tmp_path, "port": port, "sock": sock})
    procs.start([nginx, "-c", str(conf), "-p", str(tmp_path)])
    wait_port(port)
    import http.client
    deadline = time.monotonic() + 20
    while True:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/environ?x=1", headers={"X-Custom": "through nginx"})
        r = c.getresponse()
        body = r.read()
        if r.status != 502 or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # aiserve still loading the app
    assert r.status == 200, body
    env = json.loads(body)
    assert env["HTTP_X_CUSTOM"] == "through nginx" and env["QUERY_STRING"] == "x=1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    # keep-alive to nginx, a streamed answer, and a chunked upload nginx de-chunks
    c.request("GET", "/stream")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"".join(b"part %d\n" % i for i in range(5))
    data = os.urandom(200000)
    # an iterable body: http.client sends it chunked
    c.request("POST", "/echo", body=iter([data[:70000], data[70000:]]))
    r = c.getresponse()
    got = r.read()
    assert r.status == 200 and got == data, got[:300]
    c.request("GET", "/reason")
    r = c.getresponse()
    assert r.status == 299 and r.read() == b"custom\n"
    c.close()


def test_http_on_a_unix_socket(procs, tmp_path):
    path = os.path.join(str(tmp_path), "http.sock")
    p = procs.start([binary("aiserve"), "--http=%s" % path, "--hello-route=/hello"],
                    cwd=str(tmp_path))
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        for _ in range(2):  # keep-alive, as on TCP
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"hello" not in data:
                chunk = s.recv(4096)
                assert chunk, data
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")
    r = subprocess.run([binary("aiserve"), "--http=app.sock"], capture_output=True, text=True,
                       timeout=20, cwd=str(tmp_path))
    assert r.returncode != 0 and "not HOST:PORT or a unix socket path" in r.stderr, r.stderr


def worker_threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def get_pid(addr):
    st, _, body = exchange(addr, packet(nginx_vars("GET", "/pid")))
    assert st == 200
    return int(body)


def wait_new_worker(addr, old, what):
    """Waits (30 s at most) until a worker other than pid `old` answers on addr."""
    deadline = time.time() + 30
    while True:
        try:
            if get_pid(addr) != old:
                return
        except (OSError, ValueError, IndexError):
            pass
        assert time.time() < deadline, what
        time.sleep(0.2)


def test_one_thread_runs_the_app_on_the_loop_with_streaming_bodies_and_harakiri(procs, tmp_path):
    """threads = 1 on a uwsgi socket alone (the article's 2 x 1): the app runs on
    the worker's loop thread (no hand-off per connection), as uWSGI's does."""
    uport = free_port()
    p, _ = start(procs, tmp_path, [("socket", "127.0.0.1:%d" % uport), ("harakiri", "2")],
                 http=False, processes=1, threads=1)
    wait_port(uport, proc=p)
    addr = ("127.0.0.1", uport)
    pid = get_pid(addr)
    assert worker_threads(pid) == 1, "no app thread: the loop runs the app"
    data = os.urandom(300000)
    st, _, body = exchange(addr, packet(nginx_vars("POST", "/echo", data), data))
    assert st == 200 and body == data
    st, h, body = exchange(addr, packet(nginx_vars("GET", "/stream")))
    assert st == 200 and "transfer-encoding" not in h
    assert body == b"".join(b"part %d\n" % i for i in range(5))
    # the GIL is free while the app waits: a Python thread of the app runs
    st, _, body = exchange(addr, packet(nginx_vars("GET", "/thread")))
    assert st == 200 and int(body.split()[1]) > 0
    # harakiri still kills a stuck request (the master watches thread 0)
    with socket.create_connection(addr, timeout=30) as s:
        s.sendall(packet(nginx_vars("GET", "/forever")))
        s.settimeout(30)
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
    wait_new_worker(addr, pid, "no new worker after harakiri")


def test_one_thread_finishes_a_running_request_across_a_graceful_reload(procs, tmp_path):
    import signal
    import threading
    uport = free_port()
    p, _ = start(procs, tmp_path, [("socket", "127.0.0.1:%d" % uport)], http=False,
                 processes=1, threads=1)
    wait_port(uport, proc=p)
    addr = ("127.0.0.1", uport)
    old = get_pid(addr)
    got = []
    t = threading.Thread(target=lambda: got.append(exchange(addr, packet(nginx_vars("GET", "/thread")))))
    t.start()
    time.sleep(0.05)
    p.send_signal(signal.SIGHUP)
    t.join(30)
    assert got and got[0][0] == 200, "the request running at the reload is answered"
    wait_new_worker(addr, old, "the reload brought no new worker")


def test_one_thread_keeps_the_app_thread_when_an_http_listener_needs_the_loop(procs, tmp_path):
    uport = free_port()
    p, _ = start(procs, tmp_path, [("socket", "127.0.0.1:%d" % uport)], processes=1, threads=1)
    wait_port(uport, proc=p)
    pid = get_pid(("127.0.0.1", uport))
    assert worker_threads(pid) == 2, "loop + one app thread"


@pytest.mark.parametrize("threads", [2, 1], ids=["app-threads", "app-on-the-loop"])
def test_a_packet_that_comes_in_pieces_after_the_connect_is_served(procs, tmp_path, threads):
    """The worker reads a uwsgi connection right at its accept; what has not
    come yet (a slow front end, a body on its way) is waited for on the loop."""
    uport = free_port()
    p, _ = start(procs, tmp_path, [("socket", "127.0.0.1:%d" % uport)], http=False,
                 processes=1, threads=threads)
    wait_port(uport, proc=p)
    data = os.urandom(100000)
    pkt = packet(nginx_vars("POST", "/echo", data), data)
    for cut in (0, 2, 40, len(pkt) - len(data) + 10):
        with socket.create_connection(("127.0.0.1", uport), timeout=10) as s:
            time.sleep(0.1)  # accepted (and read) before anything came
            s.sendall(pkt[:cut])
            time.sleep(0.1)
            s.sendall(pkt[cut:])
            out = read_to_close(s)
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and body == data, (cut, head[:100])


def test_one_thread_serves_a_connection_whose_packet_came_before_newer_ones(procs, tmp_path):
    """The app on the loop: a connection accepted before its packet came (nginx
    connects, then sends) is answered as soon as its packet is there, before
    connections made after it; it used to wait until the accept batch that
    was running ran dry (the p99 behind nginx)."""
    import threading
    uport = free_port()
    p, _ = start(procs, tmp_path, [("socket", "127.0.0.1:%d" % uport)], http=False,
                 processes=1, threads=1)
    wait_port(uport, proc=p)
    addr = ("127.0.0.1", uport)
    assert exchange(addr, packet(nginx_vars("GET", "/")))[0] == 200
    done = {}

    def answer(name, s):
        out = read_to_close(s)
        done[name] = (time.monotonic(), out)

    a = socket.create_connection(addr, timeout=30)
    time.sleep(0.3)  # a: accepted, nothing to read yet
    b = socket.create_connection(addr, timeout=30)
    b.sendall(packet(nginx_vars("GET", "/thread")))  # 0.2 s on the loop
    time.sleep(0.05)
    x = socket.create_connection(addr, timeout=30)  # queued, packet and all,
    x.sendall(packet(nginx_vars("GET", "/thread")))  # so served in an accept batch
    answer("b", b)
    time.sleep(0.05)  # while x runs: a's packet comes, then c connects
    a.sendall(packet(nginx_vars("GET", "/")))
    c = socket.create_connection(addr, timeout=30)
    c.sendall(packet(nginx_vars("GET", "/thread")))
    ts = [threading.Thread(target=answer, args=(n, s)) for n, s in (("a", a), ("x", x), ("c", c))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    for s in (a, b, x, c):
        s.close()
    assert all(done[n][1].startswith(b"HTTP/1.1 200") for n in "abxc"), done
    assert done["a"][0] < done["c"][0], "a's packet came first, yet c was answered before it"
