"""WSGI apps for test_routes.py. `app` is a Flask app that defines /hello and
/health/live itself (paths aiserve also has built-ins for); `echo` answers
every path with the path variables the server handed it."""
import json

from flask import Flask

app = Flask(__name__)


@app.route("/hello")
def hello():
    return "hello from flask\n"


@app.route("/health/live")
def live():
    return {"flask": "live"}


def echo(environ, start_response):
    body = json.dumps({k: environ.get(k) for k in ("SCRIPT_NAME", "PATH_INFO", "REQUEST_URI")})
    data = body.encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
