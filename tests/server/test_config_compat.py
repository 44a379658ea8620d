"""aiserve configuration against real uWSGI habits: flags and the environment
override the ini (list options replaced, not appended), real-world uWSGI ini
files load, and the processes carry readable titles. Every test starts the
real binary with real files and checks real sockets and processes."""
import os
import signal
import socket
import subprocess
import time

import pytest

from harness import binary, free_port, wait_port
from srvutil import get, wait_for, worker_pids


def clean_env(**extra):
    """The test's environment without any UWSGI_*/AISERVE_* option variables
    (AISERVE_BUILD stays: it is no option), plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("UWSGI_") or (k.startswith("AISERVE_") and k != "AISERVE_BUILD"))}
    env.update(extra)
    return env


def busy_port():
    """A loopback port held by a listening socket of ours (so aiserve cannot
    bind it): returns (socket, port)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def serve(procs, argv, env=None, cwd=None):
    return procs.start([binary("aiserve"), *argv], env=clean_env(**(env or {})), cwd=cwd)


def ready(port, p, timeout=20):
    wait_port(port, timeout=timeout, proc=p)
    assert wait_for(lambda: get(port, "/health/ready")[0] == 200, timeout=timeout)


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
    return p.stderr.read().decode()


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---- 2. flags and the environment override the ini ----

def test_a_flag_replaces_the_ini_listener_even_when_its_port_is_busy(procs, tmp_path):
    held, busy = busy_port()
    free = free_port()
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(f"[uwsgi]\nhttp = 127.0.0.1:{busy}\nprocesses = 1\n")
    with held:
        p = serve(procs, [str(ini), f"--http=127.0.0.1:{free}"])
        ready(free, p)
        assert get(free, "/hello")[0] == 200
        err = stop(p)
    assert p.returncode == 0, err
    assert f"127.0.0.1:{busy}" not in err, "the ini's listener must be gone, not added to"


def test_a_socket_flag_replaces_the_ini_socket_list_and_leaves_http_alone(procs, tmp_path):
    held, busy = busy_port()
    http, usock = free_port(), free_port()
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(f"[uwsgi]\nhttp = 127.0.0.1:{http}\nsocket = 127.0.0.1:{busy}\n"
                   f"socket = {tmp_path}/never.sock\n")
    with held:
        p = serve(procs, [str(ini), "--socket", f"127.0.0.1:{usock}"])
        ready(http, p)
        assert listening(usock)
        assert not (tmp_path / "never.sock").exists()
        stop(p)


@pytest.mark.parametrize("var", ["UWSGI_HTTP", "AISERVE_HTTP", "UWSGI_HTTP_SOCKET"])
def test_the_environment_sets_options_and_replaces_the_ini_list(procs, tmp_path, var):
    held, busy = busy_port()
    port = free_port()
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(f"[uwsgi]\nhttp = 127.0.0.1:{busy}\n")
    with held:
        p = serve(procs, [str(ini)], env={var: f"127.0.0.1:{port}", "UWSGI_PROCESSES": "2"})
        ready(port, p)
        assert len(worker_pids(p.pid)) == 2
        stop(p)


def test_the_command_line_beats_the_environment_which_beats_the_ini(procs, tmp_path):
    port = free_port()
    ini = tmp_path / "uwsgi.ini"
    ini.write_text("[uwsgi]\nprocesses = 4\nthreads = 3\n")
    p = serve(procs, [str(ini), f"--http=127.0.0.1:{port}", "--processes=1"],
              env={"UWSGI_PROCESSES": "3", "AISERVE_THREADS": "2", "UWSGI_THREADS": "5"})
    ready(port, p)
    assert len(worker_pids(p.pid)) == 1
    err = stop(p)
    assert "1 worker(s) x 2 thread(s)" in err, err


def test_uwsgi_ini_in_the_environment_is_the_config_file(procs, tmp_path):
    port = free_port()
    ini = tmp_path / "env.ini"
    ini.write_text(f"[uwsgi]\nhttp = 127.0.0.1:{port}\n")
    p = serve(procs, ["--processes=1"], env={"UWSGI_INI": str(ini)})
    ready(port, p)
    stop(p)


def test_a_bad_value_in_the_environment_names_the_variable():
    r = subprocess.run([binary("aiserve"), "--http=127.0.0.1:0"], capture_output=True, text=True,
                       timeout=20, env=clean_env(UWSGI_THREADS="many"))
    assert r.returncode == 1
    assert "environment UWSGI_THREADS" in r.stderr and "integer" in r.stderr, r.stderr
