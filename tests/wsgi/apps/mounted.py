"""Two tiny apps for mount tests: each reports SCRIPT_NAME and PATH_INFO."""


def _report(tag):
    def app(environ, start_response):
        body = ("%s %s %s\n" % (tag, environ["SCRIPT_NAME"], environ["PATH_INFO"])).encode("latin-1")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    return app


first = _report("first")
second = _report("second")
root = _report("root")
