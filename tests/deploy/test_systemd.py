"""aiserve under systemd, without systemd: a fake NOTIFY_SOCKET (a unix
datagram socket this test binds) receives Type=notify's messages, and
systemd-socket-activate passes a bound socket in LISTEN_FDS."""
import os
import signal
import socket
import subprocess
import time

import pytest

from harness import ROOT, binary, free_port
from srvutil import get

UNIT_DIR = os.path.join(ROOT, "deploy", "systemd")


class Notify:
    """The manager's end of sd_notify: collects every message."""

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.msgs = []

    def wait_for(self, line, timeout=30.0):
        """Returns once a message holding `line` (e.g. READY=1) arrived."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.msgs):
                if line in m.split("\n"):
                    del self.msgs[: i + 1]
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {line} within {timeout}s; got {self.msgs}")
            self.sock.settimeout(left)
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass


def test_type_notify_ready_watchdog_reload_and_stopping(procs, tmp_path):
    n = Notify(tmp_path)
    port = free_port()
    env = dict(os.environ, NOTIFY_SOCKET=n.path, WATCHDOG_USEC="400000")
    p = procs.start([binary("aiserve"), f"--http=127.0.0.1:{port}", "--processes=2"], env=env)
    ready = n.wait_for("READY=1")
    assert "STATUS=serving: 2 worker(s) ready" in ready
    assert f"MAINPID={p.pid}" in ready
    assert get(port, "/health/ready")[0] == 200  # READY=1 came once it serves
    # The watchdog wants a ping every half interval (200 ms): several per second.
    t0 = time.monotonic()
    for _ in range(3):
        n.wait_for("WATCHDOG=1", timeout=2)
    assert time.monotonic() - t0 < 2
    # A reload says RELOADING=1, then READY=1 again once the new workers serve.
    p.send_signal(signal.SIGHUP)
    n.wait_for("RELOADING=1")
    n.wait_for("READY=1")
    assert get(port, "/health/ready")[0] == 200
    p.send_signal(signal.SIGTERM)
    n.wait_for("STOPPING=1")
    assert p.wait(timeout=30) == 0


def test_no_watchdog_pings_when_not_asked(procs, tmp_path):
    n = Notify(tmp_path)
    port = free_port()
    env = dict(os.environ, NOTIFY_SOCKET=n.path)
    env.pop("WATCHDOG_USEC", None)
    procs.start([binary("aiserve"), f"--http=127.0.0.1:{port}"], env=env)
    n.wait_for("READY=1")
    with pytest.raises(AssertionError):
        n.wait_for("WATCHDOG=1", timeout=1)


def activate(procs, port, *args):
    """systemd-socket-activate binds the port, then starts aiserve on the first
    connection with the socket in LISTEN_FDS=1 (fd 3)."""
    argv = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", binary("aiserve"), *args]
    return procs.start(argv)


def connect_when_bound(port, timeout=30.0):
    """systemd-socket-activate binds a moment after it starts."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def first_get(port, path, timeout=30.0):
    """The first connection waits in the socket's queue until aiserve starts."""
    s = connect_when_bound(port, timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return int(data.split()[1]), data


def test_socket_activation_serves_the_passed_socket(procs):
    port = free_port()
    # A plain bind of this address would fail: systemd-socket-activate holds it.
    p = activate(procs, port, f"--http=127.0.0.1:{port}")
    status, _ = first_get(port, "/health/live")
    assert status == 200
    assert get(port, "/hello")[0] == 200
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    err = p.stderr.read().decode()
    assert "cannot listen" not in err, err


def test_socket_activation_matches_a_wildcard_address_by_port(procs):
    port = free_port()
    p = activate(procs, port, f"--http=:{port}")
    assert first_get(port, "/health/live")[0] == 200
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)


def test_a_passed_socket_no_address_names_is_closed_with_a_warning(procs):
    port, other = free_port(), free_port()
    p = activate(procs, port, f"--http=127.0.0.1:{other}")
    # Connecting to the passed socket starts aiserve, which closes it (refused or reset).
    with connect_when_bound(port, 5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(30)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    deadline = time.monotonic() + 15
    while get(other, "/health/live")[0] != 200 if _up(other) else True:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    err = p.stderr.read().decode()
    assert "socket activation: 1 of 1 passed socket(s) match no" in err, err


def _up(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_unit_files_parse_and_name_the_binary():
    """systemd-analyze verifies the units when it can run here; the fields
    aiserve relies on are checked either way."""
    svc = open(os.path.join(UNIT_DIR, "aiserve.service")).read()
    sock = open(os.path.join(UNIT_DIR, "aiserve.socket")).read()
    for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM",
                 "WatchdogSec=", "NotifyAccess=main"]:
        assert line in svc, line
    assert "ListenStream=8000" in sock
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        os.path.join(UNIT_DIR, "aiserve.socket")],
                       capture_output=True, text=True, timeout=60)
    # Outside a booted systemd only "not found" complaints about the ExecStart
    # path may remain; a syntax error in either unit fails.
    bad = [l for l in (r.stdout + r.stderr).splitlines()
           if ("Unknown" in l or "Invalid" in l or "Failed to parse" in l)]
    assert not bad, bad
