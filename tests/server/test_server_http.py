"""aiserve core: HTTP/1.1 behaviour and every bad-input status, on a real server."""
import json
import os
import socket
import time

from srvutil import closed_after, get, recv_response, request, start


def test_hello_and_health_endpoints_answer_with_no_app(procs):
    _, port = start(procs, "--processes=2")
    st, h, body = get(port, "/hello")
    assert (st, body) == (200, b"hello\n")
    assert "date" in h and h["content-length"] == "6"
    assert get(port, "/health/live")[0] == 200
    st, _, body = get(port, "/health/ready")
    assert st == 200 and json.loads(body)["ready_workers"] == 2


def test_keepalive_and_pipelined_requests_are_answered_in_order(procs):
    _, port = start(procs)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n" * 50 +
                  b"GET /health/live HTTP/1.1\r\nHost: a\r\n\r\n")
        for _ in range(50):
            assert recv_response(s)[2] == b"hello\n"
        assert recv_response(s)[0] == 200
        # the connection stays open for more
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        assert recv_response(s)[0] == 200


def test_http10_closes_unless_keepalive_is_asked(procs):
    _, port = start(procs)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
        st, h, _ = recv_response(s)
        assert st == 200 and h.get("connection") == "close"
        assert closed_after(s)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert recv_response(s)[1].get("connection") == "keep-alive"
        s.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert recv_response(s)[0] == 200


def test_head_gets_headers_without_body(procs):
    _, port = start(procs)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        s.settimeout(3)
        data = b""
        while data.count(b"hello\n") < 1:
            data += s.recv(4096)
        heads = data.split(b"\r\n\r\n")
        assert b"Content-Length: 6" in heads[0]
        assert heads[1].startswith(b"HTTP/1.1 200")  # no body between the two responses


def test_content_length_and_chunked_bodies_reach_the_handler(procs):
    _, port = start(procs)
    st, _, body = request(port, b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde")
    assert st == 200 and json.loads(body)["data"] == "abcde"
    raw = (b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nT: 1\r\n\r\n")
    st, _, body = request(port, raw)
    assert st == 200 and json.loads(body)["data"] == "abcdefg"


def test_expect_100_continue_gets_an_interim_response(procs):
    _, port = start(procs)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        st, _, _ = recv_response(s)
        assert st == 100
        s.sendall(b"wxyz")
        st, _, body = recv_response(s)
        assert st == 200 and json.loads(body)["data"] == "wxyz"
    assert request(port, b"GET /hello HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n")[0] == 417


def test_unknown_route_is_404_and_query_args_reach_delay(procs):
    _, port = start(procs)
    assert get(port, "/no/such/thing")[0] == 404
    st, _, body = get(port, "/delay/0?x=1&y=a%20b")
    assert st == 200 and json.loads(body)["args"] == {"x": "1", "y": "a b"}
    assert get(port, "/delay/abc")[0] == 400
    assert request(port, b"PUT /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")[0] == 405


BAD = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/9.9\r\nHost: a\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
    (b"GET /hello HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
    (b"GET /he%zzllo HTTP/1.1\r\nHost: a\r\n\r\n", 400),  # bad escape
    (b"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", 400),  # NUL in the path
    (b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\n", 400),
    (b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", 400),
]


def test_every_bad_input_gets_its_status_and_a_close(procs):
    p, port = start(procs)
    for raw, want in BAD:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(raw)
            st, h, _ = recv_response(s)
            assert st == want, raw
            assert h.get("connection") == "close", raw
            assert closed_after(s), raw
    assert get(port, "/hello")[0] == 200 and p.poll() is None


def test_head_over_buffer_size_is_431(procs):
    _, port = start(procs, "--buffer-size=1k")
    big = b"GET /hello HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n"
    assert request(port, big)[0] == 431
    many = b"GET /hello HTTP/1.1\r\nHost: a\r\n" + b"A: b\r\n" * 150 + b"\r\n"
    _, port2 = start(procs, "--buffer-size=64k")
    assert request(port2, many)[0] == 431
    assert get(port, "/hello")[0] == 200


def test_body_over_limit_post_is_413_for_both_framings(procs):
    _, port = start(procs, "--limit-post=10")
    assert request(port, b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")[0] == 413
    raw = (b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n")
    assert request(port, raw)[0] == 413
    ok = b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"
    assert request(port, ok)[0] == 200


def test_event_loop_routes_cap_bodies_even_without_limit_post(procs):
    _, port = start(procs)
    huge = b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000000\r\n\r\n"
    assert request(port, huge)[0] == 413


def test_vanishing_clients_never_crash_a_worker(procs):
    p, port = start(procs, "--threads=2", "--sleep-route=/sleep")
    from srvutil import worker_pids
    before = worker_pids(p.pid)
    partials = [
        b"GET /hel",
        b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc",
        b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"GET /delay/0.2 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /sleep/0.2 HTTP/1.1\r\nHost: a\r\n\r\n",
    ]
    for raw in partials * 4:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(raw)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
    time.sleep(0.5)
    assert get(port, "/hello")[0] == 200
    assert worker_pids(p.pid) == before and p.poll() is None


def test_slow_client_gets_408_after_socket_timeout(procs):
    _, port = start(procs, "--socket-timeout=1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n")
        t0 = time.monotonic()
        st, _, _ = recv_response(s, timeout=5)
        assert st == 408 and time.monotonic() - t0 < 3.5


def test_idle_keepalive_connection_is_closed_after_http_keepalive(procs):
    _, port = start(procs, "--http-keepalive=1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        assert recv_response(s)[0] == 200
        assert closed_after(s, timeout=4)


def test_static_map_serves_files_and_refuses_traversal(procs, tmp_path):
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>hi</h1>")
    (root / "sub" / "a.txt").write_text("A")
    (tmp_path / "secret.txt").write_text("SECRET")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    _, port = start(procs, f"--static-map=/static={root}")
    st, h, body = get(port, "/static/index.html")
    assert st == 200 and body == b"<h1>hi</h1>" and h["content-type"].startswith("text/html")
    assert get(port, "/static/sub/a.txt")[2] == b"A"
    for path in ["/static/../secret.txt", "/static/sub/../../secret.txt",
                 "/static/%2e%2e/secret.txt", "/static/sub/%2E%2E/%2e%2e/secret.txt",
                 "/static/link.txt", "/static/nope", "/static/sub"]:
        st, _, body = get(port, path)
        assert st in (403, 404), path
        assert b"SECRET" not in body
    assert request(port, b"POST /static/index.html HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")[0] == 405


def test_static_map_sends_a_large_file_whole_to_a_slow_reader(procs, tmp_path):
    blob = os.urandom(8 << 20)
    (tmp_path / "big.bin").write_bytes(blob)
    _, port = start(procs, f"--static-map=/f={tmp_path}")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # before connect
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /f/big.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.3)  # let the server hit a full socket buffer
        st, h, body = recv_response(s, timeout=10)
        assert st == 200 and h["content-length"] == str(len(blob)) and body == blob
        assert recv_response(s)[2] == b"hello\n"


def test_a_large_loop_response_survives_partial_writes(procs):
    payload = b"x" * (4 << 20)
    _, port = start(procs)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(b"POST /delay/0 HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(payload) + payload +
                  b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.3)
        st, _, body = recv_response(s, timeout=10)
        assert st == 200 and json.loads(body)["data"] == payload.decode()
        assert recv_response(s)[2] == b"hello\n"


def test_configurable_routes_move_and_disable_builtins(procs):
    _, port = start(procs, "--hello-route=/hi", "--metrics-route=", "--health-route=/hz")
    assert get(port, "/hi")[2] == b"hello\n"
    assert get(port, "/hello")[0] == 404
    assert get(port, "/metrics")[0] == 404
    assert get(port, "/hz/live")[0] == 200


def test_metrics_count_requests_by_route_and_status(procs):
    _, port = start(procs)
    for _ in range(3):
        get(port, "/hello")
    get(port, "/nope")
    st, h, body = get(port, "/metrics")
    text = body.decode()
    assert st == 200 and h["content-type"].startswith("text/plain")
    assert 'aiserve_requests_total{route="/hello",status="200"} 3' in text
    assert 'status="404"} 1' in text
    for name in ["aiserve_request_duration_seconds_bucket", "aiserve_requests_in_flight",
                 'aiserve_workers{state="idle"}', "aiserve_worker_respawns_total",
                 "aiserve_listen_queue{", "aiserve_listen_queue_max{"]:
        assert name in text, name


def test_access_log_clf_by_default_and_json_on_request(procs, tmp_path):
    log = tmp_path / "access.log"
    p, port = start(procs, f"--logto={log}")
    get(port, "/hello?q=1")
    time.sleep(0.2)
    lines = [l for l in log.read_text().splitlines() if '"GET /hello?q=1 HTTP/1.1" 200 6' in l]
    assert lines and lines[0].startswith("127.0.0.1 - - [")
    _, port2 = start(procs, "--log-format=json")
    get(port2, "/hello")
    rec = None
    deadline = time.monotonic() + 3
    while rec is None and time.monotonic() < deadline:
        time.sleep(0.1)
    p2 = procs.procs[-1]
    p2.terminate()
    err = p2.stderr.read().decode()
    recs = [json.loads(l) for l in err.splitlines() if l.startswith("{")]
    assert any(r["uri"] == "/hello" and r["status"] == 200 and r["bytes"] == 6 for r in recs)


def test_disable_logging_writes_no_access_lines(procs):
    p, port = start(procs, "--disable-logging")
    get(port, "/hello")
    p.terminate()
    err = p.stderr.read().decode()
    assert "GET /hello" not in err


def test_methods_are_case_sensitive(procs):
    """RFC 9110 §9.1: "get" is not GET (lib/http1 http1_method_is, the one
    method check of the server and aiload's web UI)."""
    _, port = start(procs)
    assert request(port, b"GET /health/live HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 200
    assert request(port, b"get /health/live HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 405
    assert request(port, b"Head /health/live HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 405
