"""The HTTP machinery shared by HttpSession and FastHttpSession: origins,
connections, request rendering, the gevent waiter, responses, recording.

Each request is rendered here into one bytes object and handed to
_aiload.Conn.request, which does the connect/TLS/send/receive in C and
parks the calling greenlet on gevent's hub whenever the socket would block;
the timings it returns are CLOCK_MONOTONIC nanoseconds from C."""
import base64
import datetime
import json as _json
import re
import time
import uuid
from collections.abc import Mapping, MutableMapping
from urllib.parse import urlencode, urlsplit

import gevent
from gevent import getcurrent

import _aiload

try:  # the requests exception types, so `except requests.exceptions.X` works
    from requests import exceptions as _rexc

    RequestException, HTTPError = _rexc.RequestException, _rexc.HTTPError
    ConnectionError_, Timeout = _rexc.ConnectionError, _rexc.Timeout
    JSONDecodeError = _rexc.JSONDecodeError
except Exception:  # pragma: no cover (requests is optional)

    class RequestException(IOError):
        def __init__(self, *args, **kwargs):
            self.response = kwargs.pop("response", None)
            self.request = kwargs.pop("request", None)
            super().__init__(*args)

    class HTTPError(RequestException):
        pass

    class ConnectionError_(RequestException):
        pass

    class Timeout(RequestException):
        pass

    JSONDecodeError = _json.JSONDecodeError

USER_AGENT = "aiload/" + _aiload.VERSION
REDIRECTS = (301, 302, 303, 307, 308)
_NO_BODY_OK = frozenset(("GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"))
_SET_COOKIE = re.compile(rb"^set-cookie:[ \t]*(.*?)[ \t]*$", re.I | re.M)

# ---- waiting: the function Conn calls when a socket would block ----

_hub = None


def _waiter(fd, events, timeout):
    """Parks the current greenlet until fd is ready (True) or timeout (False)."""
    global _hub
    hub = _hub or gevent.get_hub()
    _hub = hub
    loop = hub.loop
    io = loop.io(fd, events)
    tm = loop.timer(timeout)
    sw = getcurrent().switch
    io.start(sw, True)
    tm.start(sw, False)
    try:
        return hub.switch()
    finally:
        io.close()
        tm.close()


_aiload.set_waiter(_waiter)

# ---- origins and connections ----


class Origin:
    __slots__ = ("key", "addr", "tls_host", "authority", "https")

    def __init__(self, scheme, netloc):
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"aiload speaks http and https, not '{scheme}'")
        parts = urlsplit(f"{scheme}://{netloc}")
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        self.https = scheme == "https"
        self.key = f"{scheme}://{netloc}"
        self.addr = _aiload.resolve(host, str(port))
        self.tls_host = host if self.https else None
        self.authority = netloc.rpartition("@")[2]


_origins = {}


def origin(scheme, netloc):
    key = (scheme, netloc)
    o = _origins.get(key)
    if o is None:
        o = _origins[key] = Origin(scheme, netloc)
    return o


# ---- small types: headers, cookies ----


class CaseInsensitiveDict(MutableMapping):
    """A dict whose keys compare case-insensitively; keeps the last spelling."""

    def __init__(self, data=None, **kwargs):
        self._store = {}
        self.update(data or {}, **kwargs)

    def __setitem__(self, key, value):
        self._store[key.lower()] = (key, value)

    def __getitem__(self, key):
        return self._store[key.lower()][1]

    def __delitem__(self, key):
        del self._store[key.lower()]

    def __iter__(self):
        return (k for k, _ in self._store.values())

    def __len__(self):
        return len(self._store)

    def __contains__(self, key):
        return isinstance(key, str) and key.lower() in self._store

    def lower_items(self):
        return ((k, v[1]) for k, v in self._store.items())

    def copy(self):
        return CaseInsensitiveDict(self._store.values())

    def __eq__(self, other):
        if isinstance(other, Mapping):
            other = CaseInsensitiveDict(other)
        else:
            return NotImplemented
        return dict(self.lower_items()) == dict(other.lower_items())

    def __repr__(self):
        return str(dict(self.items()))


class CookieJar(dict):
    """A user's cookies (name -> value), sent to every origin the user talks
    to; Set-Cookie updates it, Max-Age=0 or a past Expires removes."""

    def set(self, name, value, **kwargs):
        if value is None:
            self.pop(name, None)
        else:
            self[name] = value

    def get_dict(self, domain=None, path=None):
        return dict(self)

    def clear_session_cookies(self):
        pass


def parse_headers(raw):
    h = CaseInsensitiveDict()
    for line in raw.decode("latin-1").split("\r\n"):
        k, sep, v = line.partition(":")
        if not sep:
            continue
        k, v = k.strip(), v.strip()
        if k in h:
            h[k] = h[k] + ", " + v
        else:
            h[k] = v
    return h


def set_cookies(raw):
    """(name, value or None when deleted) of every Set-Cookie in raw."""
    out = []
    for m in _SET_COOKIE.finditer(raw):
        fields = m.group(1).decode("latin-1").split(";")
        name, _, value = fields[0].partition("=")
        gone = False
        for attr in fields[1:]:
            k, _, v = attr.strip().partition("=")
            k = k.lower()
            if k == "max-age" and v.strip().lstrip("-").isdigit() and int(v) <= 0:
                gone = True
        out.append((name.strip(), None if gone else value.strip().strip('"')))
    return out


# ---- requests and responses ----


class PreparedRequest:
    """What was sent: response.request (url, method, headers, body, path_url)."""

    def __init__(self, method, url, headers, body):
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body

    @property
    def path_url(self):
        p = urlsplit(self.url)
        return (p.path or "/") + ("?" + p.query if p.query else "")


class Response:
    """A response with the requests.Response attributes locustfiles use."""

    def __init__(self):
        self.status_code = 0
        self.reason = None
        self._raw = b""
        self._headers = None
        self.content = None
        self._text = None
        self.url = None
        self.request = None
        self.history = []
        self.error = None
        self.encoding = None
        self._elapsed_ns = 0
        self.cookies = {}

    @property
    def headers(self):
        h = self._headers
        if h is None:
            h = self._headers = parse_headers(self._raw)
        return h

    @headers.setter
    def headers(self, value):
        self._headers = value

    @property
    def elapsed(self):
        return datetime.timedelta(microseconds=self._elapsed_ns // 1000)

    @property
    def ok(self):
        try:
            self.raise_for_status()
        except RequestException:
            return False
        return True

    @property
    def text(self):
        if self._text is None:
            c = self.content
            if c is None:
                return ""
            enc = self.encoding or self._encoding()
            try:
                self._text = c.decode(enc, errors="replace")
            except LookupError:
                self._text = c.decode("utf-8", errors="replace")
        return self._text

    def _encoding(self):
        ct = self.headers.get("content-type", "")
        for part in ct.split(";")[1:]:
            k, _, v = part.strip().partition("=")
            if k.lower() == "charset":
                return v.strip("'\" ")
        return "ISO-8859-1" if ct.startswith("text") else "utf-8"

    def json(self, **kwargs):
        try:
            return _json.loads(self.text, **kwargs)
        except _json.JSONDecodeError as e:
            raise JSONDecodeError(e.msg, e.doc, e.pos) from None

    @property
    def is_redirect(self):
        return "location" in self.headers and self.status_code in REDIRECTS

    def iter_content(self, chunk_size=1, decode_unicode=False):
        c = self.content or b""
        for i in range(0, len(c), chunk_size or len(c) or 1):
            yield c[i:i + chunk_size]

    def raise_for_status(self):
        if self.error is not None and not isinstance(self.error, HTTPError):
            raise self.error
        code = self.status_code
        if 400 <= code < 600:
            kind = "Client" if code < 500 else "Server"
            raise HTTPError(f"{code} {kind} Error: {self.reason} for url: {self.url}", response=self)

    def close(self):
        pass

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"<Response [{self.status_code}]>"

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def encode_params(params):
    if params is None:
        return ""
    if isinstance(params, (str, bytes)):
        return params.decode() if isinstance(params, bytes) else params
    return urlencode(params, doseq=True)


def encode_multipart(data, files):
    boundary = uuid.uuid4().hex
    out = []
    fields = data.items() if isinstance(data, Mapping) else (data or [])
    for k, v in fields:
        for item in v if isinstance(v, (list, tuple)) else [v]:
            if not isinstance(item, bytes):
                item = str(item).encode()
            out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + item + b"\r\n")
    for k, v in (files.items() if isinstance(files, Mapping) else files):
        ctype = None
        if isinstance(v, (tuple, list)):
            fname, fobj = v[0], v[1]
            if len(v) > 2:
                ctype = v[2]
        else:
            fname, fobj = getattr(v, "name", k), v
        body = fobj if isinstance(fobj, bytes) else fobj.encode() if isinstance(fobj, str) else fobj.read()
        if isinstance(body, str):
            body = body.encode()
        disp = f'form-data; name="{k}"' + (f'; filename="{fname.rsplit("/", 1)[-1]}"' if fname else "")
        head = f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        out.append(head.encode() + b"\r\n" + body + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def encode_body(data, json, files, headers):
    """(body bytes or None, content type or None)."""
    if files:
        return encode_multipart(data, files)
    if data is not None and data != {} and data != []:
        if isinstance(data, bytes):
            return data, None
        if isinstance(data, str):
            return data.encode("utf-8"), None
        if hasattr(data, "read"):
            b = data.read()
            return (b.encode() if isinstance(b, str) else b), None
        return urlencode(data, doseq=True).encode(), "application/x-www-form-urlencoded"
    if json is not None:
        return _json.dumps(json).encode("utf-8"), "application/json"
    return None, None


def basic_auth(user, password):
    if isinstance(user, str):
        user = user.encode("latin-1")
    if isinstance(password, str):
        password = password.encode("latin-1")
    return "Basic " + base64.b64encode(user + b":" + password).decode()


def render(method, target, authority, headers, body):
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {authority}\r\n"]
    for k, v in headers.items():
        if v is not None:
            lines.append(f"{k}: {v}\r\n")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    elif method not in _NO_BODY_OK:
        lines.append("Content-Length: 0\r\n\r\n")
    else:
        lines.append("\r\n")
    head = "".join(lines)
    try:
        raw = head.encode("latin-1")
    except UnicodeEncodeError:
        raw = head.encode("utf-8")
    return raw + body if body is not None else raw


def now_wall():
    return time.time()
