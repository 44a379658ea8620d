"""I/O-bound: every request waits 100 ms (time.sleep releases the GIL, as a
call to another service would), so threads overlap the waits."""
import time


def application(environ, start_response):
    time.sleep(0.1)
    body = b"waited\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
