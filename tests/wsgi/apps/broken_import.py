"""Fails at import, as a typo in an app does."""
import no_such_module_for_aiserve_tests  # noqa: F401


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"unreachable\n"]
