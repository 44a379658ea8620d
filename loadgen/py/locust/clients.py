"""HttpSession: HttpUser's self.client, with the API of Locust's
requests-based session; the requests themselves are aiload's C client."""
import time
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

import _aiload

from . import _http
from ._http import (REDIRECTS, USER_AGENT, CaseInsensitiveDict, CookieJar, PreparedRequest,
                    RequestException, Response, basic_auth, encode_body, encode_params, origin,
                    render, set_cookies)
from .exception import CatchResponseError, LocustError, ResponseError, StopUser
from .stats import entry_of, parse_error

_now = _aiload.now_ns
_rec = _aiload.record
_Conn = _aiload.Conn
LocustResponse = Response
_STOPPING = "stopping"


class _Failure(RequestException):
    """A request that got no response (connection refused, reset, timeout...):
    its repr() is the failure text (Locust's unwrapped exception)."""

    def __init__(self, text, kind, code):
        super().__init__(text)
        self.text, self.kind, self.code = text, kind, code

    def __repr__(self):
        return self.text

    def __str__(self):
        return self.text


class SessionBase:
    """Connections per origin, cookies, headers, the redirect loop and the
    recording; HttpSession and FastHttpSession differ in names and errors."""

    max_redirects = 30

    def __init__(self, base_url, request_event, user, *args, **kwargs):
        self.base_url = base_url or ""
        self.request_event = request_event
        self.user = user
        self.request_name = None
        self._conns = {}
        self.cookies = CookieJar()
        self.headers = CaseInsensitiveDict({"User-Agent": USER_AGENT, "Accept": "*/*"})
        self.auth = None
        opts = getattr(getattr(user, "environment", None), "parsed_options", None)
        self.timeout = getattr(opts, "timeout", None) or 60.0
        self.connect_timeout = getattr(opts, "connect_timeout", None) or 10.0

    def _build_url(self, path):
        if path[:4].lower() == "http" and "://" in path[:8]:
            return path
        return f"{self.base_url}{path}"

    @contextmanager
    def rename_request(self, name):
        """with self.client.rename_request("name"): requests inside count as `name`."""
        self.request_name = name
        try:
            yield
        finally:
            self.request_name = None

    def close(self):
        for c in self._conns.values():
            c.close()
        self._conns.clear()

    def _headers_for(self, headers, ctype, auth, cookies):
        if not (headers or ctype or auth or cookies or self.cookies or self.auth):
            return self.headers
        h = self.headers.copy()
        if headers:
            for k, v in headers.items():
                if v is None:
                    h.pop(k, None)
                else:
                    h[k] = v
        if ctype and "content-type" not in h:
            h["Content-Type"] = ctype
        auth = auth or self.auth
        if auth and "authorization" not in h:
            h["Authorization"] = basic_auth(*auth)
        jar = dict(self.cookies)
        if cookies:
            jar.update(cookies)
        if jar and "cookie" not in h:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        return h

    def _exchange(self, method, url, hdrs, body, timeout):
        """One request/response on the user's connection to url's origin:
        (Response, t_start_ns, t_end_ns, wire_bytes)."""
        p = urlsplit(url)
        try:
            o = origin(p.scheme, p.netloc)
        except (OSError, ValueError) as e:  # no DNS answer, a bad scheme: a failed request
            resp = Response()
            resp.url = url
            resp.request = PreparedRequest(method, url, hdrs, body)
            resp.error = _Failure(f"ConnectionError({str(e)!r})", 0, 0)
            now = _now()
            return resp, now, now, 0
        conn = self._conns.get(o.key)
        if conn is None:
            conn = self._conns[o.key] = _Conn(o.addr, o.tls_host)
        target = (p.path or "/") + ("?" + p.query if p.query else "")
        if isinstance(timeout, tuple):
            ctimeout, rtimeout = timeout
        else:
            ctimeout = rtimeout = timeout
        r = conn.request(render(method, target, o.authority, hdrs, body), method == "HEAD",
                         rtimeout or self.timeout, ctimeout or self.connect_timeout)
        resp = Response()
        resp.url = url
        resp.request = PreparedRequest(method, url, hdrs, body)
        status, reason = r[0], r[1]
        if status is None:
            resp.error = _Failure(reason, r[2], r[3])
            resp._elapsed_ns = r[5] - r[4]
            return resp, r[4], r[5], 0
        resp.status_code = status
        resp.reason = reason
        resp._raw = r[2]
        resp.content = r[3]
        resp._elapsed_ns = r[5] - r[4]
        if b"ookie" in r[2] or b"OOKIE" in r[2]:
            got = {}
            for k, v in set_cookies(r[2]):
                self.cookies.set(k, v)
                if v is not None:
                    got[k] = v
            resp.cookies = got
        return resp, r[4], r[5], r[6]

    def _send(self, method, url, params, data, headers, cookies, files, auth, timeout,
              allow_redirects, json, redirect_codes=REDIRECTS):
        """The request and its redirects: (final Response, first start, end)."""
        user = self.user
        if user is not None and user._state == _STOPPING:
            raise StopUser()  # the test is stopping: no new request starts
        url = self._build_url(url)
        if params:
            q = encode_params(params)
            if q:
                url += ("&" if "?" in url else "?") + q
        body, ctype = encode_body(data, json, files, headers)
        hdrs = self._headers_for(headers, ctype, auth, cookies)
        resp, t0, t1, wire = self._exchange(method, url, hdrs, body, timeout)
        history = []
        while (allow_redirects and resp.error is None and resp.status_code in redirect_codes
               and "location" in resp.headers and len(history) < self.max_redirects):
            history.append(resp)
            url = urljoin(resp.url, resp.headers["location"])
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                method, body = ("GET" if method != "HEAD" else "HEAD"), None
                hdrs = self._headers_for({k: v for k, v in (headers or {}).items()
                                          if k.lower() != "content-type"}, None, auth, cookies)
            else:
                hdrs = self._headers_for(headers, ctype, auth, cookies)
            resp, _, t1, w = self._exchange(method, url, hdrs, body, timeout)
            wire += w
        resp.history = history
        return resp, t0, t1

    def _report(self, method, name, t0, t1, length, error, resp, context, url, start_wall):
        """Records the request (exact timings) and fires events.request for
        user listeners, as Locust's request event does."""
        user = self.user
        lat0 = t0
        if user is not None:
            due = user._due_ns
            if due:
                user._due_ns = 0
                if due < t0:
                    lat0 = due
        _rec(entry_of(method, name), (t1 - lat0) // 1000, (t1 - t0) // 1000, length,
             None if error is None else parse_error(error))
        ev = self.request_event
        if ev is not None and ev._user_handlers:
            if user is not None:
                context = {**user.context(), **context}
            ev.fire_listeners(request_type=method, name=name, response_time=(t1 - t0) / 1e6,
                              response_length=length, response=resp, context=context,
                              exception=error, start_time=start_wall, url=url)


class HttpSession(SessionBase):
    """self.client of HttpUser (Locust's HttpSession, requests' API)."""

    def request(self, method, url, name=None, catch_response=False, context={}, *, params=None,
                data=None, headers=None, cookies=None, files=None, auth=None, timeout=None,
                allow_redirects=True, json=None, stream=False, verify=None, proxies=None,
                cert=None, hooks=None):
        if self.request_name and not name:
            name = self.request_name
        method = method.upper()
        start_wall = time.time()
        resp, t0, t1 = self._send(method, url, params, data, headers, cookies, files, auth,
                                  timeout, allow_redirects, json)
        first = resp.history[0] if resp.history else resp
        given = name
        if not name:
            name = first.request.path_url
        length = len(resp.content or b"")
        if catch_response:
            return ResponseContextManager(resp, self, (method, name, t0, t1, length, context,
                                                       first.request.url, start_wall))
        error = resp.error
        if error is None and resp.status_code >= 400:
            url0 = resp.url
            if given:
                resp.url = given  # the failure text names the request as the stats do
            try:
                resp.raise_for_status()
            except RequestException as e:
                error = e
            resp.url = url0
        self._report(method, name, t0, t1, length, error, resp, context, first.request.url, start_wall)
        return resp

    def get(self, url, **kwargs):
        kwargs.setdefault("allow_redirects", True)
        return self.request("GET", url, **kwargs)

    def options(self, url, **kwargs):
        kwargs.setdefault("allow_redirects", True)
        return self.request("OPTIONS", url, **kwargs)

    def head(self, url, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        return self.request("HEAD", url, **kwargs)

    def post(self, url, data=None, json=None, **kwargs):
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url, data=None, **kwargs):
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url, data=None, **kwargs):
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url, **kwargs):
        return self.request("DELETE", url, **kwargs)


class ResponseContextManager(Response):
    """What catch_response=True returns: a response that is recorded when its
    with-block ends, as a success or failure the block decides."""

    _manual_result = None
    _entered = False

    def __init__(self, response, session, meta):
        self.__dict__ = response.__dict__
        self._session = session
        self._meta = meta

    def __enter__(self):
        self._entered = True
        return self

    def __exit__(self, exc, value, traceback):
        if self._manual_result is not None:
            self._report(None if self._manual_result is True else self._manual_result)
            return exc is None
        if exc:
            if isinstance(value, ResponseError):
                self._report(value)
                return True
            return False
        self._report(self._default_error())
        return True

    def _default_error(self):
        try:
            self.raise_for_status()
        except RequestException as e:
            return e
        return None

    def _report(self, error):
        method, name, t0, t1, length, context, url, start_wall = self._meta
        self._session._report(method, name, t0, t1, length, error, self, context, url, start_wall)

    def success(self):
        if not self._entered:
            raise LocustError(
                "Tried to set status on a request that has not yet been made. Make sure you use "
                "a with-block, like this:\n\nwith self.client.request(..., catch_response=True) "
                "as response:\n    response.success()")
        self._manual_result = True

    def failure(self, exc):
        if not self._entered:
            raise LocustError(
                "Tried to set status on a request that has not yet been made. Make sure you use "
                "a with-block, like this:\n\nwith self.client.request(..., catch_response=True) "
                "as response:\n    response.failure(...)")
        if not isinstance(exc, Exception):
            exc = CatchResponseError(exc)
        self._manual_result = exc


__all__ = ["HttpSession", "ResponseContextManager", "LocustResponse", "Response"]
_ = _http
