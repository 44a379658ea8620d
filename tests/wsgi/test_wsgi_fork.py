"""Fork safety: preload (import in the master, then fork) and lazy-apps both
work; an app whose import starts threads (a Python thread, or torch's OpenMP
pool with 2 threads, which hangs uWSGI) is imported after the fork instead,
or refused with a clear message; it never hangs."""
import os
import subprocess

import pytest

import wsgihelp as wh

ARTICLE = os.path.join(os.path.dirname(os.path.dirname(wh.HERE)), "examples", "article")


def pids(port, n=12):
    return {wh.get(port, "/pid")[3] for _ in range(n)}


def test_preload_serves_from_every_worker(procs, tmp_path):
    p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application"),
                                                 ("processes", "2")])
    assert wh.get(port, "/")[0] == 200
    assert wh.get(port, "/thread")[0] == 200, "threads started after the fork run"
    log = wh.stderr_of(p)
    assert "after fork" not in log, "a plain app is preloaded in the master"


def test_lazy_apps_imports_in_each_worker(procs, tmp_path):
    _p, port = wh.start_aiserve(procs, tmp_path, [("module", "flask_app:app"),
                                                  ("processes", "2"), ("lazy-apps", "true")])
    for _ in range(5):
        assert wh.get(port, "/")[3] == b"Hello, World!"


def test_import_that_starts_a_thread_is_moved_after_fork(procs, tmp_path):
    p, port = wh.start_aiserve(procs, tmp_path, [("module", "threaded_import:application"),
                                                 ("processes", "2")])
    status, _r, _h, body = wh.get(port, "/")
    assert status == 200
    assert int(body.split()[1]) > 0, "the thread started at import runs in the worker"
    log = wh.stderr_of(p)
    assert "imports the app after fork" in log


def test_without_the_probe_a_threaded_import_is_refused_not_hung(procs, tmp_path):
    p, _ = wh.start_aiserve(procs, tmp_path, [("module", "threaded_import:application"),
                                              ("wsgi-fork-probe", "false"),
                                              ("need-app", "true")], wait=False)
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("aiserve neither served nor refused")
    err = p.stderr.read().decode(errors="replace")
    assert rc != 0
    assert "forking now would hang the workers" in err
    assert "lazy-apps" in err


@pytest.mark.parametrize("torch_threads", ["1", "2"])
def test_article_torch_app_answers_with_torch_threads(procs, tmp_path, torch_threads):
    """The article's set-up (2 processes x 1 thread, preload) with torch at 1
    and at 2 threads: uWSGI hangs on the first request at 2."""
    p, port = wh.start_aiserve(procs, tmp_path, [("module", "demo:app"), ("pythonpath", ARTICLE),
                                                 ("processes", "2"), ("threads", "1"),
                                                 ("env", "TORCH_THREADS=" + torch_threads)],
                               timeout=120)
    for _ in range(4):
        status, _r, _h, body = wh.get(port, "/", timeout=60)
        assert (status, body) == (200, b"Hello, World!")
    info = wh.get(port, "/info")[3]
    assert b'"torch_threads":' + torch_threads.encode() in info.replace(b" ", b"")
