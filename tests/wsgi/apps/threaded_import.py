"""Starts a Python thread at import time: preloading it in a master and then
forking would lose the thread in every worker."""
import threading
import time

TICKS = [0]


def _tick():
    while True:
        TICKS[0] += 1
        time.sleep(0.01)


threading.Thread(target=_tick, daemon=True).start()


def application(environ, start_response):
    before = TICKS[0]
    time.sleep(0.2)
    body = ("ticks %d\n" % (TICKS[0] - before)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
