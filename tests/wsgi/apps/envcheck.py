"""Reports the working directory, an env option and where a module came from."""
import os


def application(environ, start_response):
    try:
        import venv_only_module
        where = venv_only_module.WHERE
    except ImportError:
        where = "none"
    body = ("%s|%s|%s\n" % (os.getcwd(), os.environ.get("AISERVE_TEST_ENV"), where)).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
