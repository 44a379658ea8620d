"""The WSGI app the Python-locustfile tests load: a login that issues a token
and a cookie, a JSON API that checks them, echo routes, redirects, statuses.
Served by a real aiserve (tests/loadgen/test_pyfile.py), stdlib only."""
import json
import time
from urllib.parse import parse_qs


def _json(start, code, obj, extra=()):
    body = json.dumps(obj).encode()
    start(f"{code} {'OK' if code == 200 else 'Error'}",
          [("Content-Type", "application/json"), ("Content-Length", str(len(body)))] + list(extra))
    return [body]


def _text(start, status, text, extra=()):
    body = text.encode()
    start(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))] + list(extra))
    return [body]


def application(environ, start):
    path = environ.get("PATH_INFO", "/")
    method = environ["REQUEST_METHOD"]
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n) if n else b""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    cookie = environ.get("HTTP_COOKIE", "")
    if path == "/":
        return _text(start, "200 OK", "Hello, World!")
    if path == "/login" and method == "POST":
        who = json.loads(body or b"{}").get("user", "")
        if not who:
            return _json(start, 400, {"error": "no user"})
        return _json(start, 200, {"token": "tok-" + who}, [("Set-Cookie", f"session=s-{who}; Path=/")])
    if path == "/api/items":
        if not auth.startswith("Bearer tok-"):
            return _json(start, 401, {"error": "no token"})
        return _json(start, 200, {"items": [{"id": i} for i in range(3)], "user": auth[11:]})
    if path == "/api/session":
        ok = "session=s-" in cookie
        return _json(start, 200 if ok else 403, {"cookie": cookie})
    if path == "/item":
        return _json(start, 200, {"id": qs.get("id", [""])[0]})
    if path == "/echo":
        return _json(start, 200, {
            "method": method, "query": environ.get("QUERY_STRING", ""),
            "type": environ.get("CONTENT_TYPE", ""), "body": body.decode("utf-8", "replace"),
            "cookie": cookie, "x": environ.get("HTTP_X_TEST", "")})
    if path.startswith("/status/"):
        code = int(path.split("/")[2])
        return _text(start, f"{code} Status", f"status {code}")
    if path == "/redirect":
        start("302 Found", [("Location", "/"), ("Content-Length", "0")])
        return [b""]
    if path.startswith("/sleep/"):
        time.sleep(float(path.split("/")[2]))
        return _text(start, "200 OK", "slept")
    return _text(start, "404 Not Found", "not found")
