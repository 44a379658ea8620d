"""aiserve core: process options (uid/gid, chdir, env, need-app, mount syntax,
reload-on-rss, SIGINT) observed from outside, through /proc and HTTP."""
import os
import signal
import subprocess
import time

from harness import binary
from srvutil import get, start, wait_for, worker_pids


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split()[1]
    return None


def test_uid_gid_and_chdir_apply_to_the_workers(procs, tmp_path):
    os.chmod(tmp_path, 0o755)
    p, port = start(procs, "--uid=nobody", "--gid=nogroup", f"--chdir={tmp_path}",
                    "--env=AISERVE_TEST_X=42", "--env=AISERVE_TEST_Y=a=b")
    workers = worker_pids(p.pid)
    assert workers
    w = workers[0]
    assert proc_status(w, "Uid") == "65534" and proc_status(w, "Gid") == "65534"
    assert os.readlink(f"/proc/{w}/cwd") == str(tmp_path)
    # (env is set with setenv, which /proc/PID/environ does not show; the WSGI
    # tests observe it from Python.)
    assert get(port, "/hello")[0] == 200


def test_need_app_without_any_app_refuses_to_start():
    r = subprocess.run([binary("aiserve"), "--http=127.0.0.1:0", "--need-app"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "need-app" in r.stderr


def test_bad_mount_env_and_route_values_are_refused():
    for flag, word in [("--mount=app", "mount"), ("--env=NOEQUALS", "env"),
                       ("--hello-route=hi", "hello-route"), ("--uid=no-such-user-xyz", "uid")]:
        r = subprocess.run([binary("aiserve"), "--http=127.0.0.1:0", flag], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 1 and word in r.stderr, (flag, r.stderr)


def test_a_port_out_of_range_is_refused_not_wrapped():
    # getaddrinfo alone would serve 80999 on port 15463.
    for addr in ["127.0.0.1:80999", "127.0.0.1:-1", "127.0.0.1:http"]:
        r = subprocess.run([binary("aiserve"), "--http=" + addr], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 1 and "0 to 65535" in r.stderr, (addr, r.stderr)


def test_reload_on_rss_recycles_workers_and_serving_continues(procs):
    p, port = start(procs, "--reload-on-rss=1")
    first = worker_pids(p.pid)
    assert wait_for(lambda: set(worker_pids(p.pid)) - set(first), timeout=6)
    assert get(port, "/hello")[0] == 200
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 0
    assert "reload-on-rss" in p.stderr.read().decode()


def test_sigint_drains_like_sigterm(procs):
    p, port = start(procs)
    assert get(port, "/hello")[0] == 200
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 0 and time.monotonic() - t0 < 5
    assert "SIGINT: graceful shutdown" in p.stderr.read().decode()
