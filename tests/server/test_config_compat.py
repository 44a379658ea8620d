"""aiserve configuration against real uWSGI habits: flags and the environment
override the ini (list options replaced, not appended), real-world uWSGI ini
files load, and the processes carry readable titles. Every test starts the
real binary with real files and checks real sockets and processes."""
import os
import shutil
import signal
import socket
import subprocess

import pytest

from harness import binary, free_port, wait_port
from srvutil import get, read_to_close, wait_for, worker_pids


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


# ---- 3. real-world uWSGI ini files ----

INI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ini")


def copy_inis(tmp_path):
    for name in os.listdir(INI_DIR):
        shutil.copy(os.path.join(INI_DIR, name), tmp_path / name)


def uwsgi_get(path, sock_path, timeout=10):
    """One GET over the uwsgi protocol on a unix socket: the whole response."""
    pairs = {"REQUEST_METHOD": "GET", "REQUEST_URI": path, "PATH_INFO": path,
             "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "t",
             "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "t"}
    body = b"".join(len(k).to_bytes(2, "little") + k.encode() + len(v).to_bytes(2, "little") +
                    v.encode() for k, v in pairs.items())
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(bytes([0]) + len(body).to_bytes(2, "little") + bytes([0]) + body)
        return read_to_close(s)


def ps(pid, field):
    r = subprocess.run(["ps", "-o", f"{field}=", "-p", str(pid)], capture_output=True, text=True)
    return r.stdout.strip()


def test_a_tutorial_uwsgi_ini_loads_and_what_matters_works(procs, tmp_path):
    copy_inis(tmp_path)
    port = free_port()
    ini = tmp_path / "tutorial_uwsgi.ini"
    # --http replaces the file's :5000 (which may well be taken on this machine)
    p = serve(procs, [str(ini), f"--http=127.0.0.1:{port}"], cwd="/")
    ready(port, p, timeout=60)
    st, _, body = get(port, "/")
    assert st == 200 and f"cwd={tmp_path}".encode() in body, body  # chdir = %(base)
    # buffer-size = 32768: a 20 KiB header fits, a 40 KiB one gets 431
    assert get(port, "/", headers="X-Big: " + "a" * 20000 + "\r\n")[0] == 200
    assert get(port, "/", headers="X-Big: " + "a" * 40000 + "\r\n")[0] == 431
    # socket = %(base)%(project).sock with chmod-socket = 660, speaking uwsgi
    sock = tmp_path / "tutorial.sock"
    assert sock.exists() and (os.stat(sock).st_mode & 0o777) == 0o660
    assert uwsgi_get("/", str(sock)).startswith(b"HTTP/1.1 200")
    # processes = 2, named in ps as the procname options ask
    workers = wait_for(lambda: (lambda w: w if len(w) == 2 else None)(worker_pids(p.pid)),
                       timeout=30)
    assert workers, worker_pids(p.pid)
    assert ps(p.pid, "args") == "tutorial aiserve master"
    assert sorted(ps(w, "args") for w in workers) == ["tutorial aiserve worker 1",
                                                      "tutorial aiserve worker 2"]
    assert ps(p.pid, "comm") == "tutorial aiserve master"[:15]
    err = stop(p)
    assert p.returncode == 0, err
    assert not sock.exists(), "vacuum removes the socket"
    notes = [l for l in err.splitlines() if "has no meaning here" in l]
    lineno = {l.split("=")[0].strip(): i + 1 for i, l in enumerate(ini.read_text().splitlines())}
    for opt in ["thunder-lock", "log-x-forwarded-for", "ignore-sigpipe", "ignore-write-errors",
                "disable-write-exception", "memory-report"]:
        assert any(f"{ini}:{lineno[opt]}: '{opt}'" in n for n in notes), (opt, notes)
    assert len(notes) == 6, notes
    assert "unknown" not in err and "warning" not in err, err


def test_titles_stay_off_without_procname_options_and_a_reload_keeps_them(procs, tmp_path):
    port = free_port()
    ini = tmp_path / "plain.ini"
    ini.write_text(f"[uwsgi]\nhttp = 127.0.0.1:{port}\nprocesses = 1\n")
    p = serve(procs, [str(ini)])
    ready(port, p)
    assert ps(p.pid, "args") == f"{binary('aiserve')} {ini}"
    stop(p)
    ini.write_text(f"[uwsgi]\nhttp = 127.0.0.1:{port}\nprocesses = 1\nauto-procname = true\n")
    p = serve(procs, [str(ini)])
    ready(port, p)
    assert ps(p.pid, "args") == "aiserve master"
    old = worker_pids(p.pid)
    p.send_signal(signal.SIGHUP)  # re-executes itself with the original command line
    assert wait_for(lambda: (lambda w: w and w != old and len(w) == 1)(worker_pids(p.pid)),
                    timeout=30)
    assert wait_for(lambda: ps(p.pid, "args") == "aiserve master", timeout=30)
    assert wait_for(lambda: [ps(w, "args") for w in worker_pids(p.pid)] == ["aiserve worker 1"],
                    timeout=30)
    assert get(port, "/hello")[0] == 200
    stop(p)


def test_includes_and_a_section_on_the_command_line(procs, tmp_path):
    copy_inis(tmp_path)
    port = free_port()
    layered = tmp_path / "layered.ini"
    p = serve(procs, [str(layered), f"--http=127.0.0.1:{port}"], cwd="/")
    ready(port, p)
    assert len(worker_pids(p.pid)) == 2  # from base.ini
    assert (tmp_path / "layered.pid").read_text().strip() == str(p.pid)
    err = stop(p)
    assert "2 worker(s) x 3 thread(s)" in err, err
    p = serve(procs, [f"{layered}:canary", f"--http=127.0.0.1:{port}"], cwd="/")
    ready(port, p)
    assert len(worker_pids(p.pid)) == 1  # base.ini:staging
    assert (tmp_path / "layered-canary.pid").exists()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        s.settimeout(5)
        data = b""
        while True:  # http-keepalive = 0 from [staging]: the server closes
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    stop(p)


def test_strict_names_every_unknown_key_with_file_line_and_a_suggestion(tmp_path):
    ini = tmp_path / "typos.ini"
    ini.write_text("[uwsgi]\nhttp = 127.0.0.1:0\nproceses = 2   ; typo\nthreads = 2\n"
                   "harakri = 30\nfrobnicate = yes\n[other]\nwhatever = 1\n")
    r = subprocess.run([binary("aiserve"), str(ini)], capture_output=True, text=True, timeout=20,
                       env=clean_env())
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert f"aiserve: {ini}:3: unknown option 'proceses' (did you mean 'processes'?)" in lines
    assert f"aiserve: {ini}:5: unknown option 'harakri' (did you mean 'harakiri'?)" in lines
    assert f"aiserve: {ini}:6: unknown option 'frobnicate'" in lines
    assert any("3 unknown options" in l for l in lines), lines
    assert "whatever" not in r.stderr, "other sections are not aiserve's"


def test_config_errors_in_an_included_file_name_that_file(tmp_path):
    (tmp_path / "inner.ini").write_text("[uwsgi]\n\nthreads = 0\n")
    ini = tmp_path / "outer.ini"
    ini.write_text("[uwsgi]\nhttp = 127.0.0.1:0\nini = inner.ini\nbad = %(nothing)\n")
    r = subprocess.run([binary("aiserve"), str(ini)], capture_output=True, text=True, timeout=20,
                       env=clean_env())
    assert r.returncode == 1
    assert f"{ini}:4: %(nothing)" in r.stderr, r.stderr
    ini.write_text("[uwsgi]\nhttp = 127.0.0.1:0\nini = inner.ini\n")
    r = subprocess.run([binary("aiserve"), str(ini)], capture_output=True, text=True, timeout=20,
                       env=clean_env())
    assert r.returncode == 1 and f"{tmp_path}/inner.ini:3: option 'threads'" in r.stderr, r.stderr


# ---- 9. what a newcomer sees first ----

def help_entries(text):
    """--help as {group: [(option, entry text joined)]}."""
    groups, group, entry = {}, None, None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            group = line[:-1]
            groups[group] = []
        elif line.startswith("  --") and group:
            entry = [line.split()[0][2:].rstrip(","), line]
            groups[group].append(entry)
        elif line.startswith(" " * 34) and entry:
            entry[1] += " " + line.strip()
    return groups


def test_help_wraps_at_100_columns_groups_options_and_says_each_default_once():
    r = subprocess.run([binary("aiserve"), "--help"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0
    long = [l for l in r.stdout.splitlines() if len(l) > 100]
    assert not long, long
    groups = help_entries(r.stdout)
    # the app kinds' groups follow their load order (models first, so WSGI apps see them)
    assert list(groups)[:5] == ["Server", "Processes", "Logging", "Model serving (ONNX)",
                                "Python (WSGI apps)"], list(groups)
    where = {name: g for g, entries in groups.items() for name, _ in entries}
    assert where["http"] == "Server" and where["buffer-size"] == "Server"
    assert where["processes"] == "Processes" and where["auto-procname"] == "Processes"
    assert where["logto"] == "Logging" and where["log-format"] == "Logging"
    assert where["module"] == "Python (WSGI apps)" and where["model"] == "Model serving (ONNX)"
    names = [name for entries in groups.values() for name, _ in entries]
    assert len(names) == len(set(names)), "each option once"
    text = {name: t for entries in groups.values() for name, t in entries}
    for name, t in text.items():
        assert t.count("default") <= 1, t
    assert "(default: unset)" not in r.stdout
    assert "(default: 8k)" in text["buffer-size"]
    assert "(default 0: off)" in text["harakiri"]
    assert "(default: 1)" in text["processes"]
    assert "thunder-lock" in groups["Other"][-1][1] or "thunder-lock" in r.stdout.split("Other:")[1]


def test_parsing_the_makefile_runs_no_pkg_config(tmp_path):
    """make demo / make test install the packages first; the Makefile must not
    ask pkg-config about them while it is read (a fresh machine printed
    'Package libjpeg was not found' before installing anything)."""
    fake = tmp_path / "pkg-config"
    fake.write_text("#!/bin/sh\necho \"pkg-config $* called\" >&2\nexit 1\n")
    fake.chmod(0o755)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run(["make", "-n", "-C", root, f"PKG_CONFIG={fake}", "clean"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "pkg-config" not in r.stderr, r.stderr
