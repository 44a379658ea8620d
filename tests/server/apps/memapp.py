"""A WSGI app that grows on request, for the memory-limit tests: /grow keeps
16 MiB more (touched, so it counts in RSS); /big?MB tries to allocate MB at once
and answers 507 on MemoryError."""
import os

KEEP = []


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/grow":
        KEEP.append(b"x" * (16 << 20))
    elif path == "/big":
        try:
            b = b"x" * (int(environ.get("QUERY_STRING") or "4096") << 20)
            del b
        except MemoryError:
            start_response("507 Insufficient Storage", [("Content-Type", "text/plain")])
            return [b"MemoryError\n"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%d %d\n" % (os.getpid(), len(KEEP))).encode()]
