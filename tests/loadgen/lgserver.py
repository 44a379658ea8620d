"""A small HTTP/1.1 keep-alive test server for the aiload tests.

Run: python3 lgserver.py PORT [--stall-at S --stall-for S]

Routes:
  GET /, /hello         -> 200 "Hello, World!"
  /delay/<seconds>      -> 200 after sleeping that long
  /status/<code>        -> that status
  /chunked              -> 200, chunked body "hello chunked world"
  /close                -> 200 with Connection: close
  /echo                 -> 200, echoes the request body (POST/PUT)
  /count                -> JSON {"requests": N, "paths": {...}} (not counted itself)
  /reset                -> zeroes the counters (not counted)
With --stall-at A --stall-for D every request that arrives between A and A+D
seconds after the first request is held until A+D (a server stall).
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, stall_at, stall_for):
        self.lock = threading.Lock()
        self.count = 0
        self.paths = {}
        self.first = None
        self.stall_at = stall_at
        self.stall_for = stall_for


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 65536  # one send per response (flushed by handle_one_request)
    state = None

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def count(self):
        st = self.state
        now = time.monotonic()
        with st.lock:
            st.count += 1
            st.paths[self.path] = st.paths.get(self.path, 0) + 1
            if st.first is None:
                st.first = now
            first = st.first
        if st.stall_for > 0:
            t = now - first
            if st.stall_at <= t < st.stall_at + st.stall_for:
                time.sleep(st.stall_at + st.stall_for - t)

    def handle_any(self):
        st = self.state
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        p = self.path
        if p == "/count":
            with st.lock:
                out = json.dumps({"requests": st.count, "paths": st.paths}).encode()
            return self.reply(200, out, [("Content-Type", "application/json")])
        if p == "/reset":
            with st.lock:
                st.count = 0
                st.paths = {}
                st.first = None
            return self.reply(200, b"ok")
        self.count()
        if p in ("/", "/hello"):
            return self.reply(200, b"Hello, World!")
        if p.startswith("/delay/"):
            time.sleep(float(p.split("/")[2]))
            return self.reply(200, b"delayed")
        if p.startswith("/status/"):
            code = int(p.split("/")[2])
            return self.reply(code, b"status %d" % code)
        if p == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if p == "/close":
            self.close_connection = True
            return self.reply(200, b"bye", [("Connection", "close")])
        if p == "/echo":
            return self.reply(200, body)
        return self.reply(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any


def main():
    port = int(sys.argv[1])
    stall_at = stall_for = 0.0
    args = sys.argv[2:]
    for i, a in enumerate(args):
        if a == "--stall-at":
            stall_at = float(args[i + 1])
        if a == "--stall-for":
            stall_for = float(args[i + 1])
    Handler.state = State(stall_at, stall_for)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 1024
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.serve_forever()


if __name__ == "__main__":
    main()
