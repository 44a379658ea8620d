"""A local stand-in for httpbin.org/delay/N: python3 upstream.py [PORT]."""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Delay(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "delay":
            self.send_error(404)
            return
        try:
            secs = min(float(parts[1]), 10.0)
        except ValueError:
            self.send_error(400)
            return
        time.sleep(secs)
        body = json.dumps({"delay": secs, "url": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    ThreadingHTTPServer(("127.0.0.1", port), Delay).serve_forever()
