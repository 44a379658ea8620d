"""I/O-bound: every request waits 100 ms (time.sleep releases the GIL, as a
call to another service would), so threads overlap the waits. It says so in
Server-Timing (app;dur=MS), which aiload advise reads when a server sends it."""
import time


def application(environ, start_response):
    t0 = time.monotonic()
    time.sleep(0.1)
    body = b"waited\n"
    app_ms = (time.monotonic() - t0) * 1000
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                              ("Server-Timing", "app;dur=%.3f" % app_ms)])
    return [body]
