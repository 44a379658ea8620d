"""A raw PEP 3333 app touching every corner the server must get right:
environ keys, input methods, write(), exc_info, streaming, file_wrapper,
cookies, redirects, unicode paths, errors. Used under aiserve and under
wsgiref, and the answers must match."""
import hashlib
import io
import json
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STARTED = []  # threads the app started, to check they keep running
_event = threading.Event()


def _ticker():
    while True:
        STARTED[0] += 1
        time.sleep(0.01)


def _text(start_response, body, status="200 OK", ctype="text/plain; charset=utf-8", extra=()):
    data = body.encode("utf-8") if isinstance(body, str) else body
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))] + list(extra))
    return [data]


CLOSED = []  # one entry per _Forever whose close() the server called


class _Forever:
    """An endless streaming body: only a client disconnect ends it, and the
    server must then call close()."""

    def __iter__(self):
        while True:
            yield b"tick\n" * 100
            time.sleep(0.01)

    def close(self):
        CLOSED.append(1)


def _os_sigint():
    """The process's real SIGINT disposition (sigaction), not the signal
    module's bookkeeping: "default", "ignore" or "handler"."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    old = ctypes.create_string_buffer(256)  # struct sigaction; sa_handler comes first
    if libc.sigaction(signal.SIGINT, None, old) != 0:
        return "unknown"
    h = ctypes.c_void_p.from_buffer(old).value or 0
    return {0: "default", 1: "ignore"}.get(h, "handler")


def _input(environ):
    """wsgi.input itself where the server ends it at the body's end
    (wsgi.input_terminated); servers without it, like wsgiref, hand over the
    raw socket, so only CONTENT_LENGTH bytes may be read there."""
    inp = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        return inp
    return io.BytesIO(inp.read(int(environ.get("CONTENT_LENGTH") or 0)))


def app(environ, start_response):
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    inp = _input(environ)
    if path == "/":
        return _text(start_response, "hello from raw wsgi\n")
    if path == "/environ":
        keys = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
                "CONTENT_LENGTH", "SERVER_PROTOCOL", "HTTP_X_CUSTOM", "HTTP_COOKIE",
                "REMOTE_ADDR", "HTTPS"]
        # "" and absent are both PEP 3333 for these; wsgiref also invents
        # CONTENT_TYPE "text/plain" for requests without a body.
        out = {k: environ.get(k) or None for k in keys}
        if not out["CONTENT_LENGTH"]:
            out["CONTENT_TYPE"] = None
        out["url_scheme"] = environ["wsgi.url_scheme"]
        out["version"] = list(environ["wsgi.version"])
        out["types_ok"] = all(type(v) is str for k, v in environ.items() if "." not in k)
        return _text(start_response, json.dumps(out, sort_keys=True), ctype="application/json")
    if path == "/flags":
        out = {k: environ[k] for k in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once")}
        return _text(start_response, json.dumps(out, sort_keys=True), ctype="application/json")
    if path == "/echo":
        n = environ.get("CONTENT_LENGTH")
        body = inp.read(int(n)) if n else inp.read()
        return _text(start_response, body, ctype="application/octet-stream")
    if path == "/digest":
        h = hashlib.sha256()
        n = 0
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            n += len(chunk)
            h.update(chunk)
        return _text(start_response, "%d %s" % (n, h.hexdigest()))
    if path == "/lines":
        first = inp.readline()
        second = inp.readline(3)
        rest = inp.readlines()
        tail = [line for line in inp]
        return _text(start_response, json.dumps([first.decode(), second.decode(),
                                                 [r.decode() for r in rest], len(tail)]))
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            for i in range(5):
                yield ("part %d\n" % i).encode()
        return gen()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written, ")
        return [b"then ", b"returned\n"]
    if path == "/cookies":
        return _text(start_response, "cookie: %s\n" % environ.get("HTTP_COOKIE", ""),
                     extra=[("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; HttpOnly")])
    if path == "/reason":  # a reason phrase of the app's own, latin-1
        return _text(start_response, "custom\n", status="299 Caf\u00e9 Is Open")
    if path == "/redirect":
        start_response("302 Found", [("Location", "/"), ("Content-Type", "text/plain"),
                                     ("Content-Length", "0")])
        return [b""]
    if path.startswith("/unicode/"):
        return _text(start_response, path.encode("latin-1"), ctype="application/octet-stream")
    if path == "/file":
        f = open(os.path.join(HERE, "static.txt"), "rb")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](f, 1024)
    if path == "/excinfo":
        try:
            raise RuntimeError("handled")
        except RuntimeError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                           sys.exc_info())
            return [b"handled error\n"]
    if path == "/error":
        raise RuntimeError("deliberate failure in raw_app")
    if path == "/errors-stream":
        environ["wsgi.errors"].write("raw_app says hello to the log\n")
        environ["wsgi.errors"].flush()
        return _text(start_response, "logged\n")
    if path == "/big":
        n = int(environ.get("QUERY_STRING") or "1000000")
        return _text(start_response, b"x" * n, ctype="application/octet-stream")
    if path == "/thread":
        if not STARTED:
            STARTED.append(0)
            threading.Thread(target=_ticker, daemon=True).start()
        before = STARTED[0]
        time.sleep(0.2)
        return _text(start_response, "ticks %d\n" % (STARTED[0] - before))
    if path == "/wait":
        ok = _event.wait(10)
        _event.clear()
        return _text(start_response, "released\n" if ok else "timeout\n")
    if path == "/release":
        _event.set()
        return _text(start_response, "ok\n")
    if path == "/signal":
        return _text(start_response, "SIGINT handler: %s\n" % _os_sigint())
    if path == "/forever":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _Forever()
    if path == "/closed":
        return _text(start_response, "closed %d\n" % len(CLOSED))
    if path == "/pid":
        return _text(start_response, "%d\n" % os.getpid())
    if method == "HEAD":
        pass
    return _text(start_response, "not found: %s\n" % path.encode("latin-1").decode("utf-8", "replace"),
                 status="404 Not Found")


application = app
if os.environ.get("WSGI_VALIDATE"):
    import warnings
    from wsgiref.validate import WSGIWarning, validator
    warnings.simplefilter("error", WSGIWarning)
    application = validator(app)
