"""Errors: an exception in the app is a 500 with a traceback in the log and the
worker keeps serving; an import error refuses start-up with need-app and is a
clear 500 without it; Python never takes over aiserve's signals."""
import os
import signal
import socket
import subprocess
import time

import pytest

import wsgihelp as wh


def test_exception_is_500_with_traceback_and_the_worker_keeps_serving(procs, tmp_path):
    p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application"),
                                                 ("processes", "1")])
    pid = wh.get(port, "/pid")[3]
    status, _r, _h, body = wh.get(port, "/error")
    assert status == 500
    assert b"deliberate failure" not in body, "the traceback stays in the log"
    assert wh.get(port, "/")[0] == 200
    assert wh.get(port, "/pid")[3] == pid, "the same worker process keeps serving"
    log = wh.stderr_of(p)
    assert "Traceback (most recent call last)" in log
    assert "RuntimeError: deliberate failure in raw_app" in log


def test_import_error_with_need_app_exits_nonzero_with_the_traceback(procs, tmp_path):
    p, _port = wh.start_aiserve(procs, tmp_path, [("module", "broken_import:application"),
                                                  ("need-app", "true")], wait=False)
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("aiserve kept running with an app that cannot import")
    err = p.stderr.read().decode(errors="replace")
    assert rc != 0
    assert "Traceback (most recent call last)" in err
    assert "No module named 'no_such_module_for_aiserve_tests'" in err
    assert "broken_import" in err


def test_import_error_without_need_app_answers_500_with_a_clear_body(procs, tmp_path):
    p, port = wh.start_aiserve(procs, tmp_path, [("module", "broken_import:application"),
                                                 ("need-app", "false")])
    status, _r, _h, body = wh.get(port, "/anything")
    assert status == 500
    assert b"no WSGI app" in body
    assert b"No module named 'no_such_module_for_aiserve_tests'" in body
    log = wh.stderr_of(p)
    assert "cannot load WSGI app 'broken_import:application'" in log


def test_a_missing_callable_or_non_callable_is_refused_by_name(procs, tmp_path):
    for spec, why in (("raw_app:no_such_name", "no_such_name"), ("not_callable:application",
                                                                 "not a WSGI callable")):
        p, _ = wh.start_aiserve(procs, tmp_path, [("module", spec), ("need-app", "true")],
                                wait=False)
        rc = p.wait(timeout=30)
        err = p.stderr.read().decode(errors="replace")
        assert rc != 0
        assert why in err, err


def test_a_missing_wsgi_file_is_refused_by_name(procs, tmp_path):
    p, _ = wh.start_aiserve(procs, tmp_path, [("wsgi-file", "nowhere/app.py"),
                                              ("need-app", "true")], wait=False)
    assert p.wait(timeout=30) != 0
    assert "nowhere/app.py" in p.stderr.read().decode(errors="replace")


def test_bad_option_values_are_refused_with_the_option_named(procs, tmp_path):
    cases = [("module", "demo:"), ("module", "9bad:app"), ("callable", "not valid"),
             ("mount", "/x=bad name:app")]
    for key, value in cases:
        p, _ = wh.start_aiserve(procs, tmp_path, [("module", "raw_app"), (key, value),
                                                  ("need-app", "true")], wait=False)
        rc = p.wait(timeout=30)
        err = p.stderr.read().decode(errors="replace")
        assert rc != 0, (key, value)
        assert key in err, err


@pytest.mark.parametrize("launcher", ["default", "ignoring"])
def test_python_installs_no_signal_handlers(procs, tmp_path, launcher):
    """The app imports `signal`, which in a default CPython would install its
    SIGINT handler; the worker's SIGINT disposition must stay aiserve's. Also
    when the launcher ignored SIGINT and SIGQUIT, as a shell's `cmd &` does
    (inherited across exec): aiserve takes its signals back."""
    keep = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGQUIT)}
    try:
        if launcher == "ignoring":
            for s in keep:
                signal.signal(s, signal.SIG_IGN)
        p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application"),
                                                     ("processes", "1")])
    finally:
        for s, h in keep.items():
            if h is not None:  # None: a handler not set from Python, left as it is
                signal.signal(s, h)
    body = wh.get(port, "/signal")[3]
    assert body == b"SIGINT handler: default\n"
    os.killpg(p.pid, signal.SIGINT)
    assert p.wait(timeout=30) is not None, "SIGINT still stops aiserve"


def test_sigterm_stops_aiserve_with_python_loaded(procs, tmp_path):
    p, port = wh.start_aiserve(procs, tmp_path, [("module", "flask_app:app"),
                                                 ("processes", "2")])
    assert wh.get(port, "/")[0] == 200
    os.killpg(p.pid, signal.SIGTERM)
    assert p.wait(timeout=30) == 0


def test_wsgi_errors_lines_reach_the_log(procs, tmp_path):
    p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application")])
    assert wh.get(port, "/errors-stream")[0] == 200
    assert "raw_app says hello to the log" in wh.stderr_of(p)


def test_client_disconnect_mid_stream_calls_close(procs, tmp_path):
    _p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application"),
                                                  ("processes", "1"), ("threads", "2")])
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    s.close()
    assert wh.wait_for(lambda: wh.get(port, "/closed")[3] == b"closed 1\n", timeout=20), \
        "close() was called on the response after the client went away"
    assert wh.get(port, "/")[0] == 200


def test_import_error_with_lazy_apps_and_need_app_exits_nonzero(procs, tmp_path):
    p, _port = wh.start_aiserve(procs, tmp_path, [("module", "broken_import:application"),
                                                  ("lazy-apps", "true"), ("processes", "2"),
                                                  ("need-app", "true")], wait=False)
    rc = p.wait(timeout=30)
    err = p.stderr.read().decode(errors="replace")
    assert rc != 0
    assert "ModuleNotFoundError: No module named 'no_such_module_for_aiserve_tests'" in err


def test_malformed_chunked_body_is_a_400_and_the_worker_keeps_serving(procs, tmp_path):
    for buffering in ("0", "1m"):
        p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application"),
                                                     ("post-buffering", buffering)])
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /digest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n")
        time.sleep(0.2)
        s.sendall(b"zz-not-hex\r\n\r\n")
        reply = s.recv(4096)
        s.close()
        assert reply.startswith(b"HTTP/1.1 400"), reply[:80]
        assert wh.get(port, "/")[0] == 200
        wh.stderr_of(p)
