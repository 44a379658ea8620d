"""WSGI app for the https and access tests: echoes the environ keys they check."""
import json


def app(environ, start_response):
    keys = ("HTTPS", "HTTPS_DN", "wsgi.url_scheme", "HTTP_X_REQUEST_ID", "REMOTE_ADDR")
    body = json.dumps({k: environ.get(k) for k in keys}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
