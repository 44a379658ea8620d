"""Registers an atexit handler that leaves a mark (one file per process) in
$ATEXIT_DIR, to check that worker exit runs it (or skips it with skip-atexit)."""
import atexit
import os


def _mark():
    with open(os.path.join(os.environ["ATEXIT_DIR"], "exit-%d" % os.getpid()), "w") as f:
        f.write("bye\n")


atexit.register(_mark)


def application(environ, start_response):
    body = b"%d\n" % os.getpid()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
