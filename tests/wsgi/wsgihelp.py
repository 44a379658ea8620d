"""Helpers for the WSGI black-box tests: start aiserve on a generated ini and
wsgiref on the same app, and speak HTTP to both."""
import http.client
import os
import sys
import time

from harness import binary, free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
PY = "/usr/bin/python3"


def write_ini(tmp_path, port, options, name="app.ini"):
    """options: list of (key, value); repeated keys allowed."""
    lines = ["[uwsgi]", "http = 127.0.0.1:%d" % port]
    lines += ["%s = %s" % kv for kv in options]
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start_aiserve(procs, tmp_path, options, timeout=60, wait=True):
    """Starts aiserve on a fresh port with the apps dir on pythonpath; returns (proc, port)."""
    port = free_port()
    ini = write_ini(tmp_path, port, [("pythonpath", APPS)] + list(options))
    p = procs.start([binary("aiserve"), ini], cwd=str(tmp_path))
    if wait:
        try:
            wait_port(port, timeout=timeout, proc=p)
        except Exception:
            out, err = p.communicate(timeout=5) if p.poll() is not None else (b"", b"")
            raise AssertionError("aiserve did not start: %s" % (err or b"").decode(errors="replace"))
    return p, port


def start_wsgiref(procs, spec, env=None):
    port = free_port()
    e = dict(os.environ)
    e.update(env or {})
    e["PYTHONPATH"] = APPS
    p = procs.start([PY, os.path.join(APPS, "wsgiref_server.py"), spec, str(port)], env=e)
    wait_port(port, timeout=30, proc=p)
    return p, port


def request(port, method, path, headers=None, body=None, timeout=30):
    """One request on a new connection: (status, reason, [(name, value)], body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            c.request(method, path, body=body, headers=hs, encode_chunked=True)
        else:
            c.request(method, path, body=body, headers=hs)
        r = c.getresponse()
        data = r.read()
        return r.status, r.reason, r.getheaders(), data
    finally:
        c.close()


def get(port, path, **kw):
    return request(port, "GET", path, **kw)


def stderr_of(p, timeout=10):
    """Stops p (SIGTERM, then SIGKILL) and returns its stderr as text."""
    import signal
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=timeout)
        except Exception:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
    return p.stderr.read().decode(errors="replace")


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


if APPS not in sys.path:
    sys.path.insert(0, APPS)
