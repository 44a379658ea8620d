"""Helpers for the process-control tests (cheaper, stats, fifo): start aiserve
with its log in a file (a pipe nobody reads could fill and stall the master),
read the stats server, and run a bounded keep-alive load that counts every
request."""
import http.client
import json
import os
import socket
import threading
import time

from harness import binary, free_port, wait_port
from srvutil import get


def start_logged(procs, tmp_path, *args, ready_workers=1):
    """Starts aiserve on free ports with --stats and --logto; waits until
    /health/ready. Returns (proc, port, stats_port, log_path)."""
    port, sport = free_port(), free_port()
    log = tmp_path / "aiserve.log"
    argv = [binary("aiserve"), f"--http=127.0.0.1:{port}", f"--stats=127.0.0.1:{sport}",
            f"--logto={log}", "--disable-logging", *args]
    p = procs.start(argv, stdout=open(os.devnull, "wb"), stderr=open(os.devnull, "wb"))
    wait_port(port, timeout=20, proc=p)
    deadline = time.monotonic() + 30
    while get(port, "/health/ready")[0] != 200:
        if time.monotonic() > deadline or p.poll() is not None:
            raise RuntimeError("aiserve did not become ready: " + log.read_text())
        time.sleep(0.05)
    return p, port, sport, log


def stats(sport, timeout=10.0, host="127.0.0.1"):
    """One stats document from a TCP stats server."""
    with socket.create_connection((host, sport), timeout=timeout) as s:
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def running(doc):
    """Worker ids that are not cheap."""
    return [w["id"] for w in doc["workers"] if w["status"] != "cheap"]


class Load:
    """n threads of clients requesting path until stopped (keep-alive, or a
    connection per request); every request is counted, and anything but a 200
    is a failure."""

    def __init__(self, port, n, path, keepalive=True, pause=0.0):
        self.port, self.path, self.keepalive, self.pause = port, path, keepalive, pause
        self.ok = 0
        self.failed = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", self.path,
                             headers={} if self.keepalive else {"Connection": "close"})
                r = conn.getresponse()
                r.read()
                with self.lock:
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.failed.append(r.status)
                if not self.keepalive or r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
                if self.pause:
                    self.stop.wait(self.pause)
            except (OSError, http.client.HTTPException) as e:
                # Any error counts: a draining worker closes keep-alive
                # connections only with a lingering close after answering.
                with self.lock:
                    self.failed.append(repr(e))
                conn = None
        if conn:
            conn.close()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        return self.ok, self.failed


def wait_until(pred, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
