"""The master fifo (uWSGI's one-letter commands) and the touch files."""
import os
import time

from ctlutil import Load, running, start_logged, stats, wait_until
from srvutil import get, worker_pids


def _send(fifo, cmds):
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, cmds)
    finally:
        os.close(fd)


def _pids(sport):
    return sorted(w["pid"] for w in stats(sport)["workers"] if w["pid"])


def test_add_remove_pause_and_stats(procs, tmp_path):
    fifo = str(tmp_path / "master.fifo")
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=3", "--cheaper=1",
                                       "--cheaper-algo=manual", f"--master-fifo={fifo}")
    assert running(stats(sport)) == [1]
    _send(fifo, b"+")
    assert wait_until(lambda: running(stats(sport)) == [1, 2], 10)
    _send(fifo, b"++")
    assert wait_until(lambda: running(stats(sport)) == [1, 2, 3], 10)
    _send(fifo, b"+")  # none left to add: logged, nothing else
    assert wait_until(lambda: "no worker to add" in log.read_text(), 10)
    assert wait_until(lambda: get(port, "/health/ready")[0] == 200, 10)
    load = Load(port, 2, "/hello")
    try:
        _send(fifo, b"-")
        assert wait_until(lambda: len(running(stats(sport))) == 2, 10)
        assert wait_until(lambda: len(worker_pids(p.pid)) == 2, 15), "the removed one exits"
    finally:
        ok, failed = load.finish()
    assert failed == [] and ok > 0
    # p pauses (status "pause", no request is answered), p again resumes.
    _send(fifo, b"p")
    assert wait_until(lambda: all(w["status"] in ("pause", "cheap")
                                  for w in stats(sport)["workers"]), 10)
    _send(fifo, b"p")
    assert wait_until(lambda: "resuming the workers" in log.read_text(), 10)
    assert get(port, "/hello", timeout=10)[0] == 200
    # s logs the stats document.
    _send(fifo, b"s")
    assert wait_until(lambda: '"workers":[' in log.read_text(), 10)


def test_bad_commands_are_logged_and_change_nothing(procs, tmp_path):
    fifo = str(tmp_path / "master.fifo")
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=2",
                                       f"--master-fifo={fifo}")
    pids = _pids(sport)
    _send(fifo, b"xyz\x00\xff\n" * 200)  # a flood of garbage
    assert wait_until(lambda: "unknown command 'x'" in log.read_text(), 10)
    assert "unknown command byte 0xff" in log.read_text()
    assert _pids(sport) == pids
    assert get(port, "/hello")[0] == 200
    # A writer that opens and closes without writing does not make the master spin.
    for _ in range(20):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    cpu0 = sum(os.times()[:2])
    with open(f"/proc/{p.pid}/stat") as f:
        t0 = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
    time.sleep(1.0)
    with open(f"/proc/{p.pid}/stat") as f:
        t1 = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
    assert t1 - t0 < 50, "master busy-looping on the fifo"  # clock ticks (1/100 s)
    del cpu0
    _send(fifo, b"q")
    assert p.wait(timeout=30) == 0
    assert not os.path.exists(fifo)


def test_reloads(procs, tmp_path):
    fifo = str(tmp_path / "master.fifo")
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=2", "--reload-mercy=10",
                                       f"--master-fifo={fifo}")
    load = Load(port, 2, "/hello")
    try:
        for cmd, what in ((b"w", "workers reload"), (b"c", "chain reload"),
                          (b"r", "graceful reload")):
            before = set(_pids(sport))
            _send(fifo, cmd)
            ok = wait_until(lambda: len(_pids(sport)) == 2 and not (set(_pids(sport)) & before)
                            and get(port, "/health/ready")[0] == 200, 30)
            assert ok, f"{what}: {before} -> {_pids(sport)}\n{log.read_text()}"
            assert wait_until(lambda: len(worker_pids(p.pid)) == 2, 30), what
        assert stats(sport)["pid"] == p.pid, "the master keeps its pid across r"
        assert "chain reload done" in log.read_text()
    finally:
        ok, failed = load.finish()
    assert failed == [] and ok > 0


def test_touch_files(procs, tmp_path):
    files = {k: tmp_path / f"{k}.touch" for k in ("reload", "chain", "workers")}
    for f in files.values():
        f.write_text("")
    p, port, sport, log = start_logged(
        procs, tmp_path, "--processes=2", "--reload-mercy=10",
        f"--touch-reload={files['reload']}", f"--touch-chain-reload={files['chain']}",
        f"--touch-workers-reload={files['workers']}")
    time.sleep(1.2)
    for k in ("workers", "chain", "reload"):
        before = set(_pids(sport))
        t = time.time() + 5
        os.utime(files[k], (t, t))
        ok = wait_until(lambda: len(_pids(sport)) == 2 and not (set(_pids(sport)) & before)
                        and get(port, "/health/ready")[0] == 200, 30)
        assert ok, f"touch {k}: {before} -> {_pids(sport)}\n{log.read_text()}"
        assert f"{files[k]} was touched" in log.read_text()
        assert wait_until(lambda: len(worker_pids(p.pid)) == 2, 30)
        time.sleep(1.2)


def test_py_autoreload_reloads_when_an_imported_module_changes(procs, tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = b'one'\n")
    (tmp_path / "app.py").write_text(
        "import helper\n\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [helper.VALUE]\n")
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=1", "--py-autoreload=1",
                                       f"--pythonpath={tmp_path}", "--module=app:application")
    assert get(port, "/")[2] == b"one"
    assert "py-autoreload: watching" in log.read_text(), log.read_text()
    (tmp_path / "helper.py").write_text("VALUE = b'two'\n")
    t = time.time() + 5
    os.utime(tmp_path / "helper.py", (t, t))
    assert wait_until(lambda: get(port, "/")[2] == b"two", 30), log.read_text()
    assert "helper.py changed; reloading" in log.read_text()
    assert p.poll() is None


def test_py_autoreload_with_lazy_apps_says_it_watches_nothing(procs, tmp_path):
    (tmp_path / "app.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'x']\n")
    p, port, sport, log = start_logged(procs, tmp_path, "--processes=1", "--py-autoreload=1",
                                       "--lazy-apps", f"--pythonpath={tmp_path}",
                                       "--module=app:application")
    assert "py-autoreload: no module files to watch" in log.read_text()
