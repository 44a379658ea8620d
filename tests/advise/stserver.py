"""A small keep-alive HTTP/1.1 server for aiload's Server-Timing tests:
python3 stserver.py PORT [HEADER]. Every GET waits 5 ms and answers with
`Server-Timing: HEADER` (default `queue;dur=1.2, app;dur=3.4`); HEADER
`none` sends no Server-Timing at all."""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timing = "queue;dur=1.2, app;dur=3.4"

    def do_GET(self):
        time.sleep(0.005)
        body = b"ok\n"
        self.send_response(200)
        if self.timing != "none":
            self.send_header("Server-Timing", self.timing)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    if len(sys.argv) > 2:
        Handler.timing = sys.argv[2]
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
