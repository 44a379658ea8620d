"""The stats server: uWSGI's JSON, field by field, against Debian's uWSGI run
once here; TCP, unix socket and stats-http; a client that never reads cannot
block the master."""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from ctlutil import running, start_logged, stats, wait_until
from harness import free_port, wait_port
from srvutil import get, read_to_close

UWSGI = shutil.which("uwsgi-core") or shutil.which("uwsgi")



@pytest.fixture(scope="module")
def uwsgi_doc(tmp_path_factory):
    if not UWSGI:
        pytest.skip("uWSGI (uwsgi-core) is not installed")
    port, sport = free_port(), free_port()
    d = tmp_path_factory.mktemp("uwsgi")
    p = subprocess.Popen([UWSGI, "--master", "--processes=2", "--threads=2",
                          f"--http-socket=127.0.0.1:{port}", f"--stats=127.0.0.1:{sport}"],
                         cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        wait_port(sport, timeout=20, proc=p)
        deadline = time.monotonic() + 20
        while True:
            doc = stats(sport)
            if all(w["pid"] for w in doc["workers"]) or time.monotonic() > deadline:
                return doc
            time.sleep(0.1)
    finally:
        p.kill()
        p.wait(timeout=10)


def _types(d):
    return {k: type(v) for k, v in d.items()}


def _same_shape(ours, theirs, where):
    missing = set(theirs) - set(ours)
    assert not missing, f"{where}: uWSGI has {sorted(missing)}, aiserve does not"
    for k, t in _types(theirs).items():
        assert isinstance(ours[k], t) or (t is int and isinstance(ours[k], int)), \
            f"{where}.{k}: uWSGI's is {t.__name__}, ours {type(ours[k]).__name__}"


def test_document_has_uwsgis_fields_and_types(procs, tmp_path, uwsgi_doc):
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=2", "--threads=2")
    for _ in range(5):
        assert get(port, "/hello")[0] == 200
    doc = stats(sport)
    _same_shape(doc, uwsgi_doc, "top")
    _same_shape(doc["workers"][0], uwsgi_doc["workers"][0], "workers[0]")
    _same_shape(doc["workers"][0]["cores"][0], uwsgi_doc["workers"][0]["cores"][0],
                "workers[0].cores[0]")
    _same_shape(doc["sockets"][0], uwsgi_doc["sockets"][0], "sockets[0]")


def test_values_are_right(procs, tmp_path):
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=2", "--threads=2",
                                       "--sleep-route=/sleep")
    n = 20
    time.sleep(0.2)
    base = sum(w["requests"] for w in stats(sport)["workers"])  # readiness probes
    for _ in range(n):
        st, _, body = get(port, "/hello")
        assert st == 200
    assert get(port, "/nope")[0] == 404
    assert wait_until(lambda: sum(w["requests"] for w in stats(sport)["workers"]) == base + n + 1,
                      5, 0.02)
    doc = stats(sport)
    assert doc["pid"] == p.pid
    import os
    assert doc["uid"] == os.getuid() and doc["gid"] == os.getgid()
    assert doc["cwd"] == os.getcwd()
    assert isinstance(doc["version"], str) and doc["version"]
    assert doc["listen_queue"] == 0 and doc["listen_queue_errors"] == 0
    assert doc["sockets"][0]["name"] == f"127.0.0.1:{port}"
    assert doc["sockets"][0]["proto"] == "http" and doc["sockets"][0]["max_queue"] > 0
    ws = doc["workers"]
    assert [w["id"] for w in ws] == [1, 2]
    from srvutil import worker_pids
    assert sorted(w["pid"] for w in ws) == worker_pids(p.pid)
    assert sum(w["requests"] for w in ws) == base + n + 1
    assert all(w["requests"] == w["delta_requests"] for w in ws)
    assert all(w["status"] == "idle" and w["accepting"] == 1 for w in ws)
    assert all(w["rss"] > 0 and w["vsz"] >= w["rss"] for w in ws)
    assert all(w["respawn_count"] == 0 and w["harakiri_count"] == 0 for w in ws)
    assert all(abs(w["last_spawn"] - time.time()) < 120 for w in ws)
    assert sum(w["tx"] for w in ws) >= n * len(body)  # head and body bytes sent
    assert all(w["avg_rt"] > 0 for w in ws if w["requests"])
    assert all(len(w["cores"]) == 2 for w in ws)
    assert doc["aiserve"]["cheaper"] == "off" and doc["aiserve"]["active"] == 2
    # A thread running a request shows busy, in_request and load.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /sleep/1.5 HTTP/1.1\r\nHost: t\r\n\r\n")
    busy = wait_until(lambda: [w for w in stats(sport)["workers"] if w["status"] == "busy" and
                               sum(c["in_request"] for c in w["cores"]) == 1], 5, 0.05)
    assert busy
    assert stats(sport)["load"] >= 1
    s.close()
    # A 5xx counts as an exception; the app thread's requests count per core.
    wait_until(lambda: not [w for w in stats(sport)["workers"] if w["status"] == "busy"], 5)
    doc = stats(sport)
    assert sum(c["requests"] for w in doc["workers"] for c in w["cores"]) >= 1


def test_respawned_worker_keeps_its_totals(procs, tmp_path):
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=1")
    base = stats(sport)["workers"][0]["requests"]
    for _ in range(7):
        get(port, "/hello")
    # Counted once the response is out: the client may read it a moment before,
    # so the readiness probe's request may still have been uncounted in `base`.
    # The loop counts in order, so once the 7th is counted every earlier one is.
    assert wait_until(lambda: stats(sport)["workers"][0]["requests"] >= base + 7, 5, 0.02)
    before = stats(sport)["workers"][0]["requests"]
    assert before in (base + 7, base + 8)
    pid = stats(sport)["workers"][0]["pid"]
    import os
    import signal
    os.kill(pid, signal.SIGKILL)
    w = wait_until(lambda: [w for w in stats(sport)["workers"] if w["pid"] not in (0, pid)], 20)
    assert w, log.read_text()
    assert w[0]["respawn_count"] == 1 and w[0]["requests"] == before and w[0]["delta_requests"] == 0


def test_stats_http_and_unix_socket(procs, tmp_path):
    path = str(tmp_path / "stats.sock")
    port = free_port()
    log = tmp_path / "log"
    from harness import binary
    p = procs.start([binary("aiserve"), f"--http=127.0.0.1:{port}", f"--stats={path}",
                     "--stats-http", f"--logto={log}"])
    wait_port(port, proc=p)
    wait_until(lambda: (tmp_path / "stats.sock").exists(), 10)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_to_close(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK") and b"application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body)["pid"] == p.pid
    p.terminate()
    assert p.wait(timeout=30) == 0
    assert not (tmp_path / "stats.sock").exists(), "the master removes its stats socket"


def test_clients_that_never_read_cannot_block_the_master(procs, tmp_path):
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=2", "--threads=4",
                                       "--cheaper=1", "--cheaper-algo=manual")
    hogs = []
    for _ in range(100):  # more than the server keeps: the oldest are dropped
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.connect(("127.0.0.1", sport))
        hogs.append(s)
    # The master still answers a reader at once and still supervises.
    t0 = time.monotonic()
    doc = stats(sport, timeout=5)
    assert time.monotonic() - t0 < 3
    assert running(doc) == [1]
    assert get(port, "/health/ready")[0] == 200
    for s in hogs:
        s.close()


def test_aiserve_top_shows_the_workers(procs, tmp_path):
    from harness import binary
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=3", "--cheaper=2",
                                       "--cheaper-algo=manual")
    out = subprocess.run([binary("aiserve"), "top", f"127.0.0.1:{sport}", "--once"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"pid {p.pid}" in out.stdout and "workers 2/3 (cheaper: manual)" in out.stdout
    rows = [line.split() for line in out.stdout.splitlines()[3:] if line.strip()]
    assert [r[0] for r in rows] == ["1", "2", "3"] and rows[2][2] == "cheap", out.stdout
    bad = subprocess.run([binary("aiserve"), "--top", f"127.0.0.1:{free_port()}", "--once"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "cannot read" in bad.stderr


def test_server_timing_header_and_metrics_histograms(procs, tmp_path):
    import re
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=1", "--threads=1",
                                       "--sleep-route=/sleep", "--server-timing")
    # Two requests on a one-thread worker: the second waits for the first.
    a = socket.create_connection(("127.0.0.1", port))
    b = socket.create_connection(("127.0.0.1", port))
    a.sendall(b"GET /sleep/0.5 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.1)
    b.sendall(b"GET /sleep/0.1 HTTP/1.1\r\nHost: t\r\n\r\n")
    from srvutil import recv_response
    _, ha, _ = recv_response(a, timeout=10)
    _, hb, _ = recv_response(b, timeout=10)
    a.close()
    b.close()
    timing = {}
    for name, h in (("a", ha), ("b", hb)):
        m = re.fullmatch(r"queue;dur=([\d.]+), app;dur=([\d.]+)", h["server-timing"])
        assert m, h
        timing[name] = (float(m.group(1)), float(m.group(2)))
    assert timing["a"][0] < 100 and timing["a"][1] >= 490, timing  # ms
    assert timing["b"][0] >= 300 and timing["b"][1] >= 95, timing  # waited for a's thread
    # A loop handler waits for no thread.
    st, h, _ = get(port, "/hello")
    assert h["server-timing"].startswith("queue;dur=0.000, app;dur=")
    st, _, body = get(port, "/metrics")
    text = body.decode()
    assert "# TYPE aiserve_request_queue_seconds histogram" in text
    assert "# TYPE aiserve_request_app_seconds histogram" in text
    q_count = int(re.search(r"^aiserve_request_queue_seconds_count (\d+)$", text, re.M).group(1))
    assert q_count >= 3
    q_sum = float(re.search(r"^aiserve_request_queue_seconds_sum ([\d.]+)$", text, re.M).group(1))
    assert q_sum >= 0.3
    # Off by default.
    (tmp_path / "off").mkdir()
    p2, port2, _, _ = start_logged(procs, tmp_path / "off", "--processes=1")
    assert "server-timing" not in get(port2, "/hello")[1]


def test_model_entries(procs, tmp_path):
    from harness import ROOT
    import urllib.request
    model = os.path.join(ROOT, "models", "digits.onnx")
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=1",
                                       f"--model=digits={model}")
    doc = stats(sport)
    assert [m["name"] for m in doc["models"]] == ["digits"], doc["models"]
    m = doc["models"][0]
    assert m["inference_count"] == 0 and m["pending"] == 0
    assert set(m["inference_stats"]) >= {"success", "fail", "queue", "compute_infer"}
    # The same figures as the model server's own statistics endpoint.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/digits/stats") as r:
        triton = json.loads(r.read())["model_stats"][0]
    assert triton["inference_count"] == m["inference_count"]


def _tx(sport):
    return sum(w["tx"] for w in stats(sport)["workers"])


def test_tx_counts_every_byte_written_head_and_body(procs, tmp_path):
    # uWSGI's tx is the whole response; ours is counted at the socket, so
    # it equals what the client read, to the byte.
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=1")
    # A probe's response may still be on its way out when /health/ready
    # returns to the harness: wait for a quiet figure.
    assert wait_until(lambda: _tx(sport) == _tx(sport) and _tx(sport) > 0, 5, 0.05)
    base = _tx(sport)
    got = 0
    for path in ("/hello", "/nope", "/hello"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            data = read_to_close(s)
        assert data.startswith(b"HTTP/1.1 ") and b"\r\n\r\n" in data
        got += len(data)
    assert wait_until(lambda: _tx(sport) - base == got, 5, 0.02), (_tx(sport) - base, got)


def test_listen_queue_errors_count_connections_dropped_at_a_full_queue(procs, tmp_path):
    # One worker holding one connection at most and a backlog of 1: the
    # worker stops accepting once it holds the first, the kernel queue takes
    # one or two, and the rest are dropped (each SYN and its retries).
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=1", "--max-connections=1",
                                       "--listen=1", "--socket-timeout=30")
    assert stats(sport)["listen_queue_errors"] == 0
    held = socket.create_connection(("127.0.0.1", port), timeout=10)
    socks = []
    try:
        assert wait_until(lambda: stats(sport)["workers"][0]["conns"] == 1, 5, 0.02)
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        assert wait_until(lambda: stats(sport)["listen_queue_errors"] > 0, 10, 0.1), stats(sport)
        doc = stats(sport)
        assert doc["listen_queue"] >= 1
        assert doc["sockets"][0]["queue"] == doc["listen_queue"]
    finally:
        held.close()
        for s in socks:
            s.close()
