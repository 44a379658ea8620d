"""Chaos suite: aiserve under the traffic shapes where real load differs from
wrk against /hello (issue 21): keep-alive crowds, idle and slowloris sockets,
SIGHUP under load and in storms, max-requests recycling, SIGTERM. Bounded:
loopback only, each case a few seconds, socket counts fixed.

Latency bounds are the issue's (100 ms p99) over 150+ samples; on a loaded
2-core machine the figures here are typically a few milliseconds."""
import json
import os
import resource
import signal
import socket
import threading
import time

import pytest

from harness import ROOT, binary
from srvutil import closed_after, get, recv_response, start, wait_for, worker_pids

APPS = os.path.join(ROOT, "tests", "wsgi", "apps")


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        pytest.skip(f"needs {want} file descriptors, the hard limit is {soft}")


def flask(procs, *args):
    """2 x 1 Flask app (the article's hello), access log off. The app is mounted at /, so
    the health and metrics built-ins are named to answer on its port (from the loop, ahead of it)."""
    return start(procs, f"--pythonpath={APPS}", "--module=hello:app", "--processes=2",
                 "--threads=1", "--disable-logging", "--builtins=health,metrics", *args)


def aiload(procs, tmp_path, port, path, users, seconds):
    """aiload with keep-alive users (closed model) for `seconds`; returns a
    function that waits for it and gives its JSON summary."""
    out = tmp_path / f"aiload-{time.monotonic_ns()}.json"
    p = procs.start([binary("aiload"), f"http://127.0.0.1:{port}{path}", "-c", str(users),
                     "-d", f"{seconds}s", "--threads", "1", "--timeout", "20", "--only-summary",
                     "--json", str(out)])

    def result():
        p.wait(timeout=seconds + 60)
        with open(out) as f:
            return json.load(f)
    return result


def probe_ms(port, path="/health/live"):
    """A fresh client: connect, GET, whole response. Milliseconds."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n".encode())
        st, _, _ = recv_response(s, timeout=10)
    assert st == 200
    return (time.monotonic() - t0) * 1000


def p99(samples):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def probes(port, n=150, every=0.02):
    out = []
    for _ in range(n):
        out.append(probe_ms(port))
        time.sleep(every)
    return out


def metric(port, name):
    body = get(port, "/metrics", timeout=10)[2].decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_a_fresh_client_gets_health_live_within_100ms_p99_under_400_keepalive_clients(
        procs, tmp_path):
    raise_fd_limit(4096)
    p, port = flask(procs)
    done = aiload(procs, tmp_path, port, "/", 400, 6)
    time.sleep(1.5)  # all 400 connected and every app thread saturated
    waits = probes(port)
    res = done()
    print(f"probe p50 {sorted(waits)[len(waits) // 2]:.1f} ms p99 {p99(waits):.1f} ms "
          f"max {max(waits):.1f} ms; load {res['requests']} requests")
    assert res["requests"] > 500, res["requests"]
    assert p99(waits) < 100, f"p99 {p99(waits):.1f} ms, max {max(waits):.1f} ms"
    assert res["failures"] == 0, res.get("errors")


def test_2000_idle_sockets_and_200_slowloris_lock_nobody_out(procs):
    raise_fd_limit(8192)
    p, port = flask(procs)
    idle, slow = [], []
    try:
        for i in range(2200):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            (idle if i < 2000 else slow).append(s)
        # every one is accepted, none waits in the kernel queue for a thread
        assert wait_for(lambda: (metric(port, "aiserve_connections") or 0) >= 2200, timeout=15), \
            metric(port, "aiserve_connections")
        for s in slow:
            s.setblocking(True)
            s.sendall(b"GET / HTTP/1.1\r\nHost: slow\r\n")
        stop = time.monotonic() + 4

        def trickle():
            while time.monotonic() < stop:
                for s in slow:
                    try:
                        s.send(b"X")
                    except OSError:
                        pass
                time.sleep(0.5)

        t = threading.Thread(target=trickle)
        t.start()
        waits = probes(port)
        t.join()
        print(f"probe p50 {sorted(waits)[len(waits) // 2]:.1f} ms p99 {p99(waits):.1f} ms "
              f"max {max(waits):.1f} ms")
        assert p99(waits) < 100, f"p99 {p99(waits):.1f} ms, max {max(waits):.1f} ms"
        assert get(port, "/", timeout=10)[0] == 200  # the app too
    finally:
        for s in idle + slow:
            s.close()


def test_sighup_every_2s_under_keepalive_load_loses_no_request(procs, tmp_path):
    raise_fd_limit(4096)
    p, port = flask(procs)
    done = aiload(procs, tmp_path, port, "/", 50, 7)
    for _ in range(3):
        time.sleep(1.8)
        p.send_signal(signal.SIGHUP)
    res = done()
    print(f"{res['requests']} requests, {res['failures']} failed")
    assert res["requests"] > 1000, res["requests"]
    assert res["failures"] == 0, res.get("errors")
    assert wait_for(lambda: len(worker_pids(p.pid)) == 2, timeout=20)
    assert get(port, "/")[0] == 200


def test_a_sighup_storm_never_holds_more_than_2x_processes_workers(procs):
    p, port = start(procs, "--processes=2", "--disable-logging")
    most, stop = 0, time.monotonic() + 5
    next_hup = time.monotonic()
    while time.monotonic() < stop:
        if time.monotonic() >= next_hup:
            p.send_signal(signal.SIGHUP)
            next_hup += 0.1
        most = max(most, len(worker_pids(p.pid)))
        time.sleep(0.01)
    # the SIGHUPs meanwhile make one more reload; then it settles
    assert wait_for(lambda: len(worker_pids(p.pid)) == 2 and get(port, "/health/ready")[0] == 200,
                    timeout=30)
    print(f"at most {most} workers")
    assert most <= 4, most
    assert get(port, "/hello")[0] == 200
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0
    assert "one more follows" in p.stderr.read().decode()


def test_max_requests_under_load_never_leaves_zero_workers_and_loses_nothing(procs, tmp_path):
    p, port = start(procs, "--processes=2", "--max-requests=300", "--disable-logging",
                    f"--pythonpath={APPS}", "--module=hello:app", "--builtins=health")
    done = aiload(procs, tmp_path, port, "/", 20, 5)
    fewest, seen = 99, set()
    stop = time.monotonic() + 5
    while time.monotonic() < stop:
        pids = worker_pids(p.pid)
        if len(pids) < 2:
            # /proc is listed, then read: a predecessor reaped in between and
            # a successor forked after the listing both go unseen; a real gap
            # (the respawn-loop guard's delay) lasts 100 ms or more
            time.sleep(0.005)
            pids = max(pids, worker_pids(p.pid), key=len)
        fewest = min(fewest, len(pids))
        seen.update(pids)
        time.sleep(0.01)
    res = done()
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    log = p.stderr.read().decode()
    assert res["failures"] == 0, res.get("errors")
    assert len(seen) >= 4, f"no recycling seen: {seen}"
    # the successor starts before the predecessor drains
    assert fewest >= 2, (fewest, log[-3000:])
    assert "respawn-loop guard" not in log


def test_sigterm_refuses_new_connections_at_once_while_in_flight_requests_finish(procs):
    p, port = start(procs, "--processes=2", "--threads=2", "--sleep-route=/sleep")
    res = {}

    def fetch(name):
        try:
            res[name] = get(port, "/sleep/1", timeout=10)
        except Exception as e:  # noqa: BLE001
            res[name] = e

    ts = [threading.Thread(target=fetch, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    refused = None
    while time.monotonic() - t0 < 2:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except (ConnectionRefusedError, ConnectionResetError):
            # reset: the probe sat in the accept queue as the listener closed,
            # never accepted; also a refusal
            refused = time.monotonic() - t0
            break
        time.sleep(0.002)
    for t in ts:
        t.join(10)
    print(f"refused {refused * 1000 if refused else -1:.1f} ms after SIGTERM")
    assert refused is not None and refused < 0.1, refused
    for i in range(3):
        assert not isinstance(res[i], Exception), res
        assert res[i][0] == 200 and res[i][1].get("connection") == "close", res[i]
    assert p.wait(timeout=10) == 0


def test_a_draining_worker_serves_what_an_idle_keepalive_client_sends_and_says_close(procs):
    p, port = start(procs, "--processes=1", "--threads=2", "--sleep-route=/sleep")
    a = socket.create_connection(("127.0.0.1", port), timeout=10)
    a.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
    st, h, _ = recv_response(a)
    assert st == 200 and h.get("connection") != "close"  # an idle keep-alive connection now
    b = threading.Thread(target=lambda: get(port, "/sleep/1", timeout=10))
    b.start()
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    a.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")  # already on its way when it drains
    st, h, body = recv_response(a)
    assert (st, body, h.get("connection")) == (200, b"hello\n", "close")
    assert closed_after(a)
    a.close()
    b.join(10)
    assert p.wait(timeout=10) == 0
