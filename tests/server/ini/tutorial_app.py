"""The app of tutorial_uwsgi.ini: answers with where it runs and how it was
reached, so the test can check chdir, the worker and the body it read."""
import os


def application(environ, start_response):
    body = environ["wsgi.input"].read()
    text = "cwd=%s pid=%d len=%d scheme=%s\n" % (
        os.getcwd(), os.getpid(), len(body), environ["wsgi.url_scheme"])
    data = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
