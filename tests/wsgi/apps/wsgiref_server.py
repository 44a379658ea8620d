"""Serves a WSGI app with Python's own wsgiref (the reference the tests
compare aiserve against): python3 wsgiref_server.py MODULE:CALLABLE PORT."""
import importlib
import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    spec, port = sys.argv[1], int(sys.argv[2])
    mod, _, name = spec.partition(":")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    app = getattr(importlib.import_module(mod), name or "application")
    srv = make_server("127.0.0.1", port, app, server_class=Threaded, handler_class=Quiet)
    srv.serve_forever()


if __name__ == "__main__":
    main()
