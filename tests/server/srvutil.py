"""Helpers for the aiserve core tests: start a server, speak raw HTTP/1.1."""
import os
import socket
import time
import weakref

from harness import binary, free_port, wait_port


def start(procs, *args, port=None, ini=None, env=None, ready=True, cwd=None):
    """Starts aiserve on a free port and (unless ready=False) waits until every
    worker is ready: the port accepts as soon as the master has bound it.
    Returns (proc, port)."""
    port = port or free_port()
    argv = [binary("aiserve")]
    if ini:
        argv.append(ini)
    argv += [f"--http=127.0.0.1:{port}", *args]
    p = procs.start(argv, env=env, cwd=cwd)
    wait_port(port, proc=p)
    if ready and not any(a.startswith("--health-route") for a in args):
        deadline = time.monotonic() + 15
        while get(port, "/health/ready")[0] != 200:
            if time.monotonic() > deadline or p.poll() is not None:
                raise RuntimeError("aiserve did not become ready")
            time.sleep(0.02)
    return p, port


_leftover = weakref.WeakKeyDictionary()


def recv_response(sock, timeout=5.0):
    """Reads one response (Content-Length, chunked or close-delimited); bytes
    of later (pipelined) responses are kept for the next call.
    Returns (status, headers dict lower-case, body bytes)."""
    status, headers, body, rest = _recv(sock, timeout, _leftover.pop(sock, b""))
    _leftover[sock] = rest
    return status, headers, body


def _recv(sock, timeout, data):
    sock.settimeout(timeout)
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if status in (100,) or status in (204, 304):
        return status, headers, b"", rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        acc = bytearray(rest)  # linear time for large bodies
        while len(acc) < n:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed mid-body")
            acc += chunk
        return status, headers, bytes(acc[:n]), bytes(acc[n:])
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                return status, headers, body, rest
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return status, headers, rest, b""
        rest += chunk


def request(port, raw, timeout=5.0):
    """Sends raw bytes on a new connection, returns the first response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        return recv_response(s, timeout)


def get(port, path, timeout=5.0, headers=""):
    return request(port, f"GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode(), timeout)


def read_to_close(sock):
    """Everything sock receives until the peer closes (a uwsgi answer: one per connection)."""
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def closed_after(sock, timeout=3.0):
    """True if the peer closes the connection (EOF) within timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def worker_pids(master_pid):
    """Live child pids of the master, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == master_pid and fields[0] != "Z":  # not zombies
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return sorted(out)


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
