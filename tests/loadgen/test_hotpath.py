"""aiload's per-response header handling (loadgen/conn.c parse_head): names
in any case, found after decoy headers of the same length, each deciding how
the body ends and whether the connection is reused. A raw server of the
test's own counts requests per connection, so a missed header shows as a
hang (body framing) or as a connection reused after `Connection: close`."""
import json
import socket
import socketserver
import subprocess
import threading

import pytest

from harness import binary

BODY = b"hello"
RESPONSES = {
    # 14-letter decoy before the length; the name in odd case
    "/length": b"HTTP/1.1 200 OK\r\nX-Padding-Hdr1: y\r\ncontent-LENGTH: 5\r\n\r\n" + BODY,
    # 17-letter decoy before the encoding
    "/chunked": (b"HTTP/1.1 200 OK\r\nX-Seventeen-Chars: y\r\nTRANSFER-encoding: Chunked\r\n\r\n"
                 b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"),
    # 10-letter decoy before the connection header; the server does not close
    # itself, so only aiload's reading of the header opens a new connection
    "/close": (b"HTTP/1.1 200 OK\r\nSet-Cookie: a=b\r\nCONNECTION: Close\r\n"
               b"Content-Length: 5\r\n\r\n" + BODY),
}


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        with srv.lock:
            srv.conns += 1
        buf, n = b"", 0
        self.request.settimeout(30)
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    data = self.request.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            path = head.split(b" ", 2)[1].decode()
            n += 1
            with srv.lock:
                srv.requests += 1
                if n > 1 and path == "/close":
                    srv.reused_after_close += 1
            try:
                self.request.sendall(RESPONSES[path])
            except OSError:
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.conns = self.requests = self.reused_after_close = 0


@pytest.fixture
def raw_server():
    srv = Server()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def run(tmp_path, srv, path):
    out = tmp_path / "s.json"
    url = f"http://127.0.0.1:{srv.server_address[1]}{path}"
    r = subprocess.run([binary("aiload"), url, "-c", "2", "-d", "1s", "--threads", "1",
                        "--timeout", "5", "--json", str(out)], capture_output=True, text=True,
                       timeout=60)
    assert out.exists(), r.stderr
    return r, json.loads(out.read_text())


@pytest.mark.parametrize("path", ["/length", "/chunked"])
def test_body_framing_headers_found_in_any_case_after_decoys(raw_server, tmp_path, path):
    r, js = run(tmp_path, raw_server, path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert js["failures"] == 0
    assert js["requests"] >= 20
    assert js["requests"] == raw_server.requests
    assert js["entries"][0]["avg_content_length"] == len(BODY)
    assert raw_server.conns == 2  # keep-alive: each user kept its one connection


def test_connection_close_in_any_case_after_a_decoy_is_honoured(raw_server, tmp_path):
    r, js = run(tmp_path, raw_server, "/close")
    assert r.returncode == 0, r.stdout + r.stderr
    assert js["failures"] == 0
    assert js["requests"] >= 20
    assert js["requests"] == raw_server.requests == raw_server.conns
    assert raw_server.reused_after_close == 0


def test_raw_server_answers(raw_server):
    """The fixture itself: one request, one answer (guards the tests above)."""
    with socket.create_connection(raw_server.server_address, timeout=5) as s:
        s.sendall(b"GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while not got.endswith(BODY):
            got += s.recv(4096)
    assert got == RESPONSES["/length"]
