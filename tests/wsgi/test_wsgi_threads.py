"""Threads: N Python threads per worker, each with its own thread state; the
GIL is released while one waits; threads the app starts keep running; the
wsgi.multithread and wsgi.multiprocess flags match the configuration."""
import json
import socket
import threading
import time

import wsgihelp as wh


def test_a_blocked_thread_does_not_block_the_others(procs, tmp_path):
    _p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application"),
                                                  ("processes", "1"), ("threads", "2")])
    got = {}

    def waiter():
        got["wait"] = wh.get(port, "/wait")[3]

    t = threading.Thread(target=waiter)
    t.start()
    # /wait blocks its thread on an Event for up to 10 s; /release, served by
    # the other thread, sets it. Without a second thread, or with the GIL held
    # while blocked, /wait would answer "timeout".
    time.sleep(0.5)
    assert wh.get(port, "/release")[3] == b"ok\n"
    t.join(15)
    assert got["wait"] == b"released\n"


def test_threads_the_app_starts_keep_running(procs, tmp_path):
    _p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application"),
                                                  ("processes", "1")])
    assert wh.get(port, "/thread")[0] == 200
    ticks = int(wh.get(port, "/thread")[3].split()[1])
    assert ticks > 0, "the app's background thread ran while the request slept"


def test_flags_follow_threads_and_processes(procs, tmp_path):
    for processes, threads in ((1, 1), (2, 1), (1, 4)):
        p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application"),
                                                     ("processes", str(processes)),
                                                     ("threads", str(threads))])
        flags = json.loads(wh.get(port, "/flags")[3])
        assert flags == {"wsgi.multithread": threads > 1, "wsgi.multiprocess": processes > 1,
                         "wsgi.run_once": False}
        wh.stderr_of(p)


def test_many_concurrent_requests_all_answer(procs, tmp_path):
    _p, port = wh.start_aiserve(procs, tmp_path, [("module", "flask_app:app"),
                                                  ("processes", "2"), ("threads", "4")])
    results = []

    def worker():
        for _ in range(20):
            results.append(wh.get(port, "/json?x=1")[0])

    ts = [threading.Thread(target=worker) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert results == [200] * 160


def test_the_gil_is_released_while_a_thread_waits_for_the_request_body(procs, tmp_path):
    """Thread A blocks in wsgi.input.read() on a body the client holds back
    (post-buffering 0: the app reads it from the socket); the client sends the
    rest only once thread B has answered, so if A held the GIL while waiting,
    B could not run Python and its request would time out."""
    _p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application"),
                                                  ("processes", "1"), ("threads", "2"),
                                                  ("post-buffering", "0")])
    a = socket.create_connection(("127.0.0.1", port), timeout=20)
    a.sendall(b"POST /digest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n")
    time.sleep(0.3)  # let thread A enter read()
    status, _r, _h, body = wh.get(port, "/", timeout=10)
    assert (status, body) == (200, b"hello from raw wsgi\n")
    a.sendall(b"6\r\n world\r\n0\r\n\r\n")
    digest = b"11 b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    reply = b""
    while digest not in reply:
        chunk = a.recv(4096)
        if not chunk:
            break
        reply += chunk
    a.close()
    assert reply.startswith(b"HTTP/1.1 200")
    assert digest in reply
