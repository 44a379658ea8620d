"""FastHttpUser: Locust's geventhttpclient-based user. In aiload both user
kinds use the same C client; this one keeps FastHttpSession's behaviour:
stats names are the URL as given, statuses outside geventhttpclient's valid
set fail with BadStatusCode, and rest() parses JSON."""
import json as _json
import re
import time
import traceback
from contextlib import contextmanager

from ..clients import ResponseContextManager, SessionBase
from ..exception import LocustError
from ..user import User

VALID_CODES = frozenset([200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 301, 302, 303, 307])
FAST_REDIRECTS = (301, 302, 303, 307)


class BadStatusCode(ConnectionError):
    """geventhttpclient's error for a status outside the valid set."""

    def __init__(self, url, code):
        super().__init__(url)
        self.url, self.code = url, code

    def __repr__(self):
        return f"BadStatusCode({self.url!r}, code={self.code})"

    def __str__(self):
        return f"URL {self.url}: code={self.code}"


class FastResponseContextManager(ResponseContextManager):
    def _default_error(self):
        return self.error


class FastHttpSession(SessionBase):
    def __init__(self, environment, base_url, user, insecure=True, client_pool=None, **kwargs):
        super().__init__(base_url, environment.events.request, user)
        self.environment = environment
        self.auth_header = None

    def request(self, method, url, name=None, data=None, catch_response=False, stream=False,
                headers=None, auth=None, json=None, allow_redirects=True, context={}, **kwargs):
        method = method.upper()
        start_wall = time.time()
        headers = dict(headers) if headers else {}
        if self.auth_header and not auth and "authorization" not in {k.lower() for k in headers}:
            headers["Authorization"] = self.auth_header
        if json is not None and not data:
            lower = {k.lower() for k in headers}
            if "content-type" not in lower:
                headers["Content-Type"] = "application/json"
            if "accept" not in lower:
                headers["Accept"] = "application/json"
        resp, t0, t1 = self._send(method, url, kwargs.get("params"), data, headers or None,
                                  kwargs.get("cookies"), kwargs.get("files"), auth,
                                  kwargs.get("timeout"), allow_redirects, json, FAST_REDIRECTS)
        built = self._build_url(url)
        if resp.error is None and resp.status_code not in VALID_CODES:
            resp.error = BadStatusCode(built, resp.status_code)
        length = len(resp.content or b"")
        name = name or url
        if catch_response:
            return FastResponseContextManager(resp, self, (method, name, t0, t1, length, context,
                                                           built, start_wall))
        self._report(method, name, t0, t1, length, resp.error, resp, context, built, start_wall)
        return resp

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, data=None, **kwargs):
        return self.request("POST", url, data=data, **kwargs)

    def put(self, url, data=None, **kwargs):
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url, data=None, **kwargs):
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url, **kwargs):
        return self.request("DELETE", url, **kwargs)

    def head(self, url, **kwargs):
        return self.request("HEAD", url, **kwargs)

    def options(self, url, **kwargs):
        return self.request("OPTIONS", url, **kwargs)


_FRAME = re.compile(r'.*File "(.*)", line (\d+), in (.*)')


class FastHttpUser(User):
    """A user whose self.client is a FastHttpSession."""

    abstract = True
    network_timeout = 60.0
    connection_timeout = 60.0
    max_redirects = 5
    max_retries = 1
    insecure = True
    default_headers = None
    concurrency = 10
    client_pool = None

    def __init__(self, environment):
        super().__init__(environment)
        if self.host is None:
            raise LocustError(
                "You must specify the base host. Either in the host attribute in the User class, "
                "or on the command line using the --host option.")
        self.client = FastHttpSession(self.environment, base_url=self.host, user=self)
        self.client.max_redirects = self.max_redirects
        self.client.timeout = self.network_timeout
        self.client.connect_timeout = self.connection_timeout
        if self.default_headers:
            self.client.headers.update(self.default_headers)

    @contextmanager
    def rest(self, method, url, headers=None, **kwargs):
        """A catch_response request for JSON APIs: resp.js holds the parsed
        body; a failed assert inside the block fails the request with its
        message, another exception with its type, text and location."""
        headers = headers or {"Content-Type": "application/json", "Accept": "application/json"}
        with self.client.request(method, url, catch_response=True, headers=headers, **kwargs) as resp:
            resp.js = None
            if resp.error is not None and not resp.content:
                resp.failure(str(resp.error))
            elif resp.text:
                try:
                    resp.js = resp.json()
                except ValueError as e:
                    resp.failure(f"Could not parse response as JSON. {resp.text[:250]}, "
                                 f"response code {resp.status_code}, error {e}")
            try:
                yield resp
            except AssertionError as e:
                if e.args:
                    msg = e.args[0]
                    if isinstance(msg, str) and msg.endswith(","):
                        resp.failure(f"{msg[:-1]}, response was {resp.text[:200]}")
                    else:
                        resp.failure(msg)
                else:
                    resp.failure("Assertion failed")
            except Exception as e:
                where = []
                for line in traceback.format_exc().split("\n"):
                    m = _FRAME.match(line)
                    if m:
                        where.append(f"{m.group(1)}:{m.group(2)}{m.group(3)}")
                resp.failure(f"{e.__class__.__name__}: {e} at {', '.join(where)}. "
                             f"Response was {resp.text[:200]}")


_ = _json
