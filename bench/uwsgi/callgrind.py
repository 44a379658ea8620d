#!/usr/bin/python3
"""Instructions per request of a uwsgi-protocol backend, noise-free: the
Flask hello app served over `socket =` (1 process x 1 thread, logging off) by
aiserve or by uWSGI under valgrind's callgrind; a small client sends the
packet nginx's uwsgi_pass would (uwsgi_params and a Host header), one request
per connection. Counts are zeroed after a warm-up and dumped after N requests,
so the totals are N requests' worth of the worker's instructions.

    bench/uwsgi/callgrind.py [--backend aiserve|uwsgi] [--aiserve build/aiserve]
                             [--requests N] [--out DIR] [--http] [--logging]

--cpu runs without valgrind and reports CPU time per request (noisy: a probe).
--http serves aiserve's own HTTP instead (keep-alive requests on one connection,
as wrk sends them), for the Flask hello over HTTP (bench/wsgi/run.py).

A probe for the CPU-per-request work (issue 20), not a benchmark: it prints the
instructions per request and the top functions (callgrind_annotate).
"""
import argparse
import glob
import os
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "wsgi"))
from benchlib import free_port  # noqa: E402
from run import APPS, ini  # noqa: E402  (bench/wsgi/run.py)


def packet(port, bport, rport):
    """What nginx 1.22 sends for `GET /` from wrk, with /etc/nginx/uwsgi_params."""
    vs = [("QUERY_STRING", ""), ("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", ""),
          ("CONTENT_LENGTH", ""), ("REQUEST_URI", "/"), ("PATH_INFO", "/"),
          ("DOCUMENT_ROOT", "/usr/share/nginx/html"), ("SERVER_PROTOCOL", "HTTP/1.1"),
          ("REQUEST_SCHEME", "http"), ("REMOTE_ADDR", "127.0.0.1"),
          ("REMOTE_PORT", str(rport)), ("SERVER_PORT", str(port)), ("SERVER_NAME", ""),
          ("HTTP_HOST", "127.0.0.1")]
    body = b"".join(struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v)) +
                    v.encode() for k, v in vs)
    return struct.pack("<BHB", 0, len(body), 0) + body


def one(bport, pkt):
    s = socket.create_connection(("127.0.0.1", bport), timeout=60)
    try:
        s.sendall(pkt)
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    if b"Hello, World!" not in data:
        raise RuntimeError("unexpected answer: %r" % data[:200])


class Http:
    """One keep-alive HTTP/1.1 connection, as wrk uses."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
        self.rest = b""

    def one(self):
        self.s.sendall(self.req)
        data = self.rest
        while b"\r\n\r\n" not in data:
            b = self.s.recv(65536)
            if not b:
                raise RuntimeError("connection closed")
            data += b
        head, _, body = data.partition(b"\r\n\r\n")
        n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(body) < n:
            body += self.s.recv(65536)
        self.rest = body[n:]
        if b"Hello, World!" not in body[:n]:
            raise RuntimeError("unexpected answer: %r" % data[:200])


def cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def control(pid, what):
    subprocess.run(["callgrind_control", what, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="aiserve", choices=["aiserve", "uwsgi"])
    ap.add_argument("--aiserve", default=os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                      "build", "aiserve"))
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--out", default="/tmp/cg-uwsgi")
    ap.add_argument("--http", action="store_true",
                    help="aiserve's own HTTP (`http =`, keep-alive) instead of the uwsgi protocol")
    ap.add_argument("--logging", action="store_true", help="request logging on")
    ap.add_argument("--cpu", action="store_true",
                    help="no valgrind: the worker's CPU time (user + system) per request instead")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for f in glob.glob(os.path.join(args.out, "callgrind.out.*")):
        os.unlink(f)
    appdir, spec = APPS["hello"]
    bport = free_port()
    lines = ([] if args.logging else ["disable-logging = true"]) + ["module = %s" % spec, "pythonpath = %s" % appdir,
             "master = true", "processes = 1", "threads = 1", "need-app = true",
             "%s = 127.0.0.1:%d" % ("http" if args.http else "socket", bport)]
    if args.backend == "aiserve":
        cmd = [args.aiserve, ini(lines)]
    else:
        cmd = ["uwsgi", "--ini", ini(["plugins = python3"] + lines)]
    vg = ["valgrind", "--tool=callgrind", "--trace-children=yes",
          "--callgrind-out-file=%s/callgrind.out.%%p" % args.out]
    if args.cpu:
        vg = []
    p = subprocess.Popen(vg + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    pkt = packet(8080, bport, 40000)
    conn = []

    def request():
        if not args.http:
            return one(bport, pkt)
        if not conn:
            conn.append(Http(bport))
        conn[0].one()

    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                request()
                break
            except Exception:
                conn.clear()
                if time.monotonic() > deadline or p.poll() is not None:
                    raise RuntimeError("%s did not answer" % args.backend)
                time.sleep(0.5)
        for _ in range(50):
            request()
        # the worker: the child process of the master under valgrind
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                              text=True).stdout.split()
        pids = [p.pid] + [int(k) for k in kids]
        if args.cpu:
            cpu0 = sum(cpu_s(pid) for pid in pids)
        else:
            for pid in pids:
                control(pid, "-z")
        t0 = time.monotonic()
        for _ in range(args.requests):
            request()
        wall = time.monotonic() - t0
        if args.cpu:
            cpu = sum(cpu_s(pid) for pid in pids) - cpu0
        else:
            for pid in pids:
                control(pid, "-d")
    finally:
        os.killpg(p.pid, 15)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
        for c in conn:
            c.s.close()
    if args.cpu:
        print("%s: %d requests, %.1f us CPU/request (master and worker, user + system; %.1f s)"
              % (args.backend, args.requests, cpu * 1e6 / args.requests, wall))
        return
    best = None
    for f in glob.glob(os.path.join(args.out, "callgrind.out.*.1")):  # the -d dumps
        with open(f) as fh:
            txt = fh.read()
        if "summary:" not in txt and "totals:" not in txt:
            continue
        for line in txt.splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                n = int(line.split()[1])
                if best is None or n > best[0]:
                    best = (n, f)
    if not best:
        raise RuntimeError("no callgrind dump")
    print("%s: %d requests, %.0f instructions/request (busiest process: %s; %.1f s under valgrind)"
          % (args.backend, args.requests, best[0] / args.requests, best[1], wall))


if __name__ == "__main__":
    main()
