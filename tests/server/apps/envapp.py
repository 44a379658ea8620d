"""WSGI app for the https and access tests: echoes the environ keys they check."""
import json


def app(environ, start_response):
    keys = ("HTTPS", "HTTPS_DN", "wsgi.url_scheme", "HTTP_X_REQUEST_ID", "REMOTE_ADDR")
    body = json.dumps({k: environ.get(k) for k in keys}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def big(environ, start_response):
    """A streamed 12 MB body (no Content-Length) or, with ?file=PATH, the file
    through wsgi.file_wrapper (app_sendfile on the app thread)."""
    q = environ.get("QUERY_STRING", "")
    if q.startswith("file="):
        f = open(q[5:], "rb")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 65536)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (bytes([65 + i % 26]) * 100000 for i in range(120))
