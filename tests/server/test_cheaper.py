"""cheaper: the worker count follows the load (uWSGI's keys), and adding or
removing workers fails no request. Loopback load, bounded in time."""
import shutil
import time

import pytest

from ctlutil import Load, running, start_logged, stats, wait_until


def _rise_and_fall(procs, tmp_path, algo_args, heavy, light):
    p, port, sport, log = start_logged(
        procs, tmp_path, "--processes=4", "--threads=1", "--cheaper=1", "--sleep-route=/sleep",
        "--reload-mercy=10", *algo_args)
    assert running(stats(sport)) == [1]
    assert stats(sport)["aiserve"]["active"] == 1
    # Heavy: more concurrent sleeping requests than workers: all busy. A
    # connection per request, as behind nginx's uwsgi_pass: a keep-alive
    # connection stays with the worker that accepted it, so only new
    # connections reach an added worker.
    load = Load(port, heavy, "/sleep/0.1", keepalive=False)
    try:
        peak = wait_until(lambda: len(running(stats(sport))) >= 3, timeout=40)
        assert peak, f"workers did not rise: {stats(sport)['workers']}\n{log.read_text()}"
    finally:
        ok1, failed1 = load.finish()
    # Light: one client with think time keeps requests flowing through the
    # removals (a thread busy about a sixth of the time).
    load = Load(port, light, "/sleep/0.02", keepalive=False, pause=0.1)
    try:
        # Down to one, whichever: the master removes the least busy worker,
        # and with quick removals that may be worker 1.
        fell = wait_until(lambda: len(running(stats(sport))) == 1, timeout=60)
        assert fell, f"workers did not fall: {stats(sport)['workers']}\n{log.read_text()}"
        time.sleep(0.5)
    finally:
        ok2, failed2 = load.finish()
    assert failed1 == [] and failed2 == [], (failed1[:5], failed2[:5])
    assert ok1 > 5 and ok2 > 5, (ok1, ok2)
    text = log.read_text()
    assert "cheaper" in text and "adding worker" in text and "removing worker" in text
    # Removed workers drained and exited cleanly (no kill).
    assert "mercy over" not in text
    doc = stats(sport)
    assert [w["status"] for w in doc["workers"]].count("cheap") == 3
    return doc


def test_spare_rises_under_load_and_falls_when_idle(procs, tmp_path):
    _rise_and_fall(procs, tmp_path, ["--cheaper-algo=spare", "--cheaper-overload=1"], 6, 1)


def test_busyness_rises_under_load_and_falls_when_idle(procs, tmp_path):
    _rise_and_fall(procs, tmp_path,
                   ["--cheaper-algo=busyness", "--cheaper-overload=1",
                    "--cheaper-busyness-multiplier=2", "--cheaper-busyness-min=20",
                    "--cheaper-busyness-max=50", "--cheaper-busyness-backlog-alert=0"], 6, 1)


def test_queue_rises_on_waits_over_target_and_falls_when_calm(procs, tmp_path):
    doc = _rise_and_fall(procs, tmp_path, ["--cheaper-algo=queue", "--cheaper-overload=1",
                                           "--cheaper-queue-target-ms=30"], 6, 1)
    assert doc["aiserve"]["cheaper"] == "queue"


def test_added_workers_take_over_keepalive_clients(procs, tmp_path):
    """Keep-alive connections stay with the worker that accepted them; a
    worker with requests queued answers `Connection: close` while a sibling
    holds no connection, so an added worker gets clients too."""
    p, port, sport, log = start_logged(
        procs, tmp_path, "--processes=4", "--threads=1", "--cheaper=1", "--sleep-route=/sleep",
        "--cheaper-algo=spare", "--cheaper-overload=1")
    load = Load(port, 6, "/sleep/0.1")  # keep-alive
    try:
        assert wait_until(lambda: len(running(stats(sport))) >= 3, timeout=40), log.read_text()
        assert wait_until(lambda: sum(1 for w in stats(sport)["workers"]
                                      if w["status"] != "cheap" and w["requests"] > 0) >= 3, 20)
    finally:
        ok, failed = load.finish()
    assert failed == [] and ok > 20


def test_backlog_adds_on_queued_requests(procs, tmp_path):
    p, port, sport, log = start_logged(
        procs, tmp_path, "--processes=3", "--threads=1", "--cheaper=1", "--sleep-route=/sleep",
        "--cheaper-algo=backlog", "--cheaper-overload=2")
    load = Load(port, 8, "/sleep/0.1", keepalive=False)
    try:
        assert wait_until(lambda: len(running(stats(sport))) >= 2, timeout=40), log.read_text()
    finally:
        ok, failed = load.finish()
    assert failed == []
    assert wait_until(lambda: running(stats(sport)) == [1], timeout=40)


def test_cheaper_initial_and_limits(procs, tmp_path):
    p, port, sport, log = start_logged(
        procs, tmp_path, "--processes=3", "--cheaper=1", "--cheaper-initial=2",
        "--cheaper-algo=manual")
    doc = stats(sport)
    assert running(doc) == [1, 2]
    assert doc["aiserve"]["cheaper"] == "manual" and doc["aiserve"]["max"] == 3


@pytest.mark.parametrize("args,msg", [
    (["--processes=2", "--cheaper=2"], "must be below processes"),
    (["--processes=3", "--cheaper=1", "--cheaper-algo=sparse"], "unknown algorithm 'sparse'"),
    (["--processes=3", "--threads=2", "--cheaper=1", "--cheaper-threads-initial=3"],
     "'cheaper-threads-initial': 3 must be 1..threads (2)"),
    (["--processes=3", "--threads=2", "--cheaper=1", "--cheaper-threads-initial=0"],
     "must be 1..threads"),
])
def test_bad_cheaper_settings_refuse_start(procs, tmp_path, args, msg):
    from harness import binary, free_port
    log = tmp_path / "log"
    p = procs.start([binary("aiserve"), f"--http=127.0.0.1:{free_port()}", f"--logto={log}",
                     *args])
    assert p.wait(timeout=30) != 0
    text = log.read_text()
    assert msg in text and "--cheaper" in text, text


CPU_APP = """\
import hashlib
import time


def application(environ, start_response):
    h = b"x"
    if environ["PATH_INFO"].startswith("/cpu"):
        for _ in range(20000):  # about 8 ms: 32-byte digests keep the GIL
            h = hashlib.sha256(h).digest()
    elif environ["PATH_INFO"].startswith("/wait"):
        time.sleep(0.05)  # a backend call
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [h.hex().encode()]
"""


def _running_peak(sport, seconds):
    peak, end = 1, time.monotonic() + seconds
    while time.monotonic() < end:
        peak = max(peak, len(running(stats(sport))))
        time.sleep(0.1)
    return peak


@pytest.mark.parametrize("kind", ["cpu", "wait"])
def test_queue_adds_processes_for_waiting_requests_not_beyond_the_cores_for_computing(
        procs, tmp_path, kind, monkeypatch):
    """On one core (taskset), requests that compute must not get a second
    process (it could only share the core), while requests that wait on the
    same core do: the algorithm tells the two apart by the CPU a request uses
    or waits for against its handler time."""
    if not shutil.which("taskset"):
        pytest.skip("taskset (util-linux) is not installed")
    app = tmp_path / "app.py"
    app.write_text(CPU_APP)
    real_start = procs.start
    monkeypatch.setattr(procs, "start", lambda argv, **kw: real_start(
        ["taskset", "-c", "0", *argv], **kw))
    p, port, sport, log = start_logged(
        procs, tmp_path, "--processes=4", "--threads=1", "--cheaper=1", f"--wsgi-file={app}",
        "--cheaper-algo=queue", "--cheaper-queue-target-ms=20")
    load = Load(port, 6, "/cpu" if kind == "cpu" else "/wait", keepalive=False)
    try:
        peak = _running_peak(sport, 6)
    finally:
        ok, failed = load.finish()
    assert failed == [] and ok > 20, (ok, failed[:5])
    text = log.read_text()
    if kind == "cpu":
        assert peak == 1, f"a computing app got {peak} processes on one core\n{text}"
    else:
        assert peak >= 3, f"a waiting app got {peak} processes\n{text}"
        assert "waiting), " in text and "adding worker" in text


SLEEP_APP = """\
import time


def application(environ, start_response):
    time.sleep(0.2)  # a backend call: the handler waits, it does not compute
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def _active_threads(doc):
    return [w["active_threads"] for w in doc["workers"] if w["status"] != "cheap"]


def test_queue_grows_threads_for_waiting_handlers_and_gives_them_back(procs, tmp_path):
    """A worker starts on cheaper-threads-initial of its 8 threads; requests
    that wait (0.2 s sleeps, 20 at once) make the queue algorithm raise the
    active threads (before a second process), none fails, and with no load
    the threads fall back."""
    app = tmp_path / "app.py"
    app.write_text(SLEEP_APP)
    p, port, sport, log = start_logged(
        procs, tmp_path, "--processes=2", "--threads=8", "--cheaper=1",
        "--cheaper-threads-initial=1", "--cheaper-algo=queue", f"--wsgi-file={app}")
    doc = stats(sport)
    assert _active_threads(doc) == [1], doc["workers"]
    assert all(len(w["cores"]) == 8 for w in doc["workers"])
    load = Load(port, 20, "/", keepalive=False)
    peak = 1
    try:
        end = time.monotonic() + 40
        while time.monotonic() < end:
            peak = max([peak, *_active_threads(stats(sport))])
            if peak >= 8:
                break
            time.sleep(0.1)
        time.sleep(1)  # a while longer at the raised count
    finally:
        ok, failed = load.finish()
    text = log.read_text()
    assert failed == [], (failed[:5], text)
    assert ok >= 20, ok
    assert peak > 1, f"active threads stayed at 1\n{text}"
    assert "raising threads to" in text, text
    # Idle: processes go first, then threads, down to one a worker.
    fell = wait_until(lambda: _active_threads(stats(sport)) == [1], timeout=60)
    assert fell, f"{_active_threads(stats(sport))}\n{log.read_text()}"
    assert "lowering threads to 1 per worker" in log.read_text()
