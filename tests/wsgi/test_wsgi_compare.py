"""Flask, Django and a raw WSGI app answer identically under aiserve and under
Python's own wsgiref server, across headers, cookies, redirects, streaming,
uploads (multipart, chunked, large), unicode paths, HEAD, 404 and 500. Every
app runs wrapped in wsgiref.validate.validator with its warnings turned into
errors, so any PEP 3333 violation by aiserve turns into a 500 and a mismatch."""
import hashlib
import os
import re

import pytest

from harness import Procs
import wsgihelp as wh

BIG = os.urandom(3 * 1024 * 1024 + 17)
MULTIPART_BOUNDARY = "aiserveboundary42"


def multipart(fields, files):
    out = []
    for k, v in fields.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                    % (MULTIPART_BOUNDARY, k, v)).encode())
    for k, (fname, data) in files.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n"
                    % (MULTIPART_BOUNDARY, k, fname)).encode() + data + b"\r\n")
    out.append(("--%s--\r\n" % MULTIPART_BOUNDARY).encode())
    return b"".join(out)


def chunks(data, size=70000):
    """An iterator body: http.client sends it with Transfer-Encoding: chunked."""
    return (data[i:i + size] for i in range(0, len(data), size))


UPLOAD = multipart({"title": "caf\u00e9 report"}, {"doc": ("a.bin", BIG[:500000]),
                                                   "small": ("s.txt", b"tiny\n")})
MP = {"Content-Type": "multipart/form-data; boundary=%s" % MULTIPART_BOUNDARY}

# (id, method, path, headers, body); a body given as bytes under key "chunked"
# goes chunked to aiserve and with Content-Length to wsgiref (which cannot de-chunk).
RAW_CASES = [
    ("root", "GET", "/", {}, None),
    ("environ", "GET", "/environ?a=1&b=%20x", {"X-Custom": "v1", "Cookie": "k=v"}, None),
    ("environ-post", "POST", "/environ", {"Content-Type": "text/plain"}, b"abc"),
    ("echo", "POST", "/echo", {}, b"hello body"),
    ("echo-empty", "POST", "/echo", {}, b""),
    ("digest-big", "POST", "/digest", {}, BIG),
    ("digest-chunked", "POST", "/digest", {}, {"chunked": BIG}),
    ("lines", "POST", "/lines", {}, b"first line\nsecond\nthird\nfourth"),
    ("lines-chunked", "POST", "/lines", {}, {"chunked": b"a\nbb\nccc\ndddd\n"}),
    ("stream", "GET", "/stream", {}, None),
    ("write", "GET", "/write", {}, None),
    ("cookies", "GET", "/cookies", {"Cookie": "x=1; y=2"}, None),
    ("redirect", "GET", "/redirect", {}, None),
    ("reason", "GET", "/reason", {}, None),
    ("unicode", "GET", "/unicode/caf%C3%A9/%E2%82%AC%20x", {}, None),
    ("file", "GET", "/file", {}, None),
    ("excinfo", "GET", "/excinfo", {}, None),
    ("head", "HEAD", "/", {}, None),
    ("head-stream", "HEAD", "/stream", {}, None),
    ("big", "GET", "/big?2000000", {}, None),
    ("404", "GET", "/nope/%C3%A9", {}, None),
    ("500", "GET", "/error", {}, None),
]

FLASK_CASES = [
    ("index", "GET", "/", {}, None),
    ("json", "GET", "/json?x=1&x=2&y=%C3%A9", {"X-Custom": "agent/1"}, None),
    ("json-post", "POST", "/json", {"Content-Type": "application/json"}, b'{"k": [1, 2, "\\u00e9"]}'),
    ("cookie-set", "GET", "/cookie/set", {}, None),
    ("cookie-get", "GET", "/cookie/get", {"Cookie": "flavour=oatmeal; count=3"}, None),
    ("redirect", "GET", "/go", {}, None),
    ("stream", "GET", "/stream", {}, None),
    ("upload", "POST", "/upload", MP, UPLOAD),
    ("upload-chunked", "POST", "/upload", MP, {"chunked": UPLOAD}),
    ("raw-big", "PUT", "/raw", {"Content-Type": "application/octet-stream"}, BIG),
    ("unicode", "GET", "/u/%C3%A9t%C3%A9", {}, None),
    ("file", "GET", "/file", {}, None),
    ("head", "HEAD", "/", {}, None),
    ("teapot", "GET", "/teapot", {}, None),
    ("404", "GET", "/missing", {}, None),
    ("405", "DELETE", "/", {}, None),
    ("500", "GET", "/boom", {}, None),
]

DJANGO_CASES = [
    ("index", "GET", "/", {}, None),
    ("append-slash", "GET", "/form", {}, None),
    ("form", "GET", "/form/", {}, None),
    ("form-no-csrf", "POST", "/form/", {"Content-Type": "application/x-www-form-urlencoded"},
     b"name=Ann&age=30"),
    ("hello-unicode", "GET", "/hello/%C3%A9l%C3%A8ve/", {}, None),
    ("headers", "GET", "/headers/?q=1", {"X-Custom": "dj"}, None),
    ("static", "GET", "/static/css/site.css", {}, None),
    ("static-head", "HEAD", "/static/css/site.css", {}, None),
    ("static-404", "GET", "/static/css/none.css", {}, None),
    ("404", "GET", "/no/such/page/", {}, None),
    ("500", "GET", "/boom/", {}, None),
]

COMPARED = ("content-type", "location", "set-cookie", "x-tea", "allow", "content-disposition")
CSRF = re.compile(rb'(name="csrfmiddlewaretoken" value=")[^"]+"|(csrftoken=)[A-Za-z0-9]+')


def normalise(body):
    return CSRF.sub(lambda m: (m.group(1) or m.group(2)) + b"X", body)


def view(resp):
    status, reason, headers, body = resp
    hs = {}
    for k, v in headers:
        k = k.lower()
        if k == "allow":  # a set: its order follows Python's hash seed
            v = ", ".join(sorted(v.split(", ")))
        if k in COMPARED:
            v = re.sub(r"csrftoken=[A-Za-z0-9]+", "csrftoken=X", v)
            # The two servers answer a second apart at times: the cookie's
            # expiry follows the clock, not the server.
            v = re.sub(r"expires=[^;]+", "expires=T", v)
            hs.setdefault(k, []).append(v)
    for v in hs.values():
        v.sort()
    length = [v for k, v in headers if k.lower() == "content-length"]
    return status, hs, normalise(body), length, len(body), reason


def send(port, case, chunked):
    _id, method, path, headers, body = case
    if isinstance(body, dict):
        body = chunks(body["chunked"]) if chunked else body["chunked"]
    return wh.request(port, method, path, headers=headers, body=body)


def servers(spec, tmp_path_factory, extra=()):
    procs = Procs()
    tmp = tmp_path_factory.mktemp("wsgi")
    env = {"WSGI_VALIDATE": "1"}
    _p, aport = wh.start_aiserve(procs, tmp, [("module", spec), ("processes", "2"),
                                              ("threads", "2"), ("need-app", "true"),
                                              ("env", "WSGI_VALIDATE=1")] + list(extra))
    _r, rport = wh.start_wsgiref(procs, spec, env)
    return procs, aport, rport


@pytest.fixture(scope="module")
def raw_servers(tmp_path_factory):
    procs, a, r = servers("raw_app:application", tmp_path_factory)
    yield a, r
    procs.stop_all()


@pytest.fixture(scope="module")
def flask_servers(tmp_path_factory):
    procs, a, r = servers("flask_app:app", tmp_path_factory)
    yield a, r
    procs.stop_all()


@pytest.fixture(scope="module")
def django_servers(tmp_path_factory):
    procs, a, r = servers("djsite.wsgi:application", tmp_path_factory)
    yield a, r
    procs.stop_all()


def check_same(ports, case, server_body=False):
    """server_body: the server itself writes the answer (an unhandled
    exception), so only the status must match."""
    aport, rport = ports
    mine = view(send(aport, case, chunked=True))
    ref = view(send(rport, case, chunked=False))
    assert mine[0] == ref[0], "status differs for %s" % case[0]
    if server_body:
        return mine
    assert mine[1] == ref[1], "headers differ for %s" % case[0]
    assert mine[2] == ref[2], "body differs for %s (%d vs %d bytes)" % (case[0], len(mine[2]),
                                                                       len(ref[2]))
    assert mine[5] == ref[5], "reason phrase differs for %s" % case[0]
    if mine[3] and case[1] != "HEAD":
        assert int(mine[3][0]) == mine[4], "Content-Length matches the body"
    return mine


@pytest.mark.parametrize("case", RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_raw_app_answers_like_wsgiref(raw_servers, case):
    check_same(raw_servers, case, server_body=case[0] == "500")


@pytest.mark.parametrize("case", FLASK_CASES, ids=[c[0] for c in FLASK_CASES])
def test_flask_app_answers_like_wsgiref(flask_servers, case):
    check_same(flask_servers, case)


@pytest.mark.parametrize("case", DJANGO_CASES, ids=[c[0] for c in DJANGO_CASES])
def test_django_app_answers_like_wsgiref(django_servers, case):
    check_same(django_servers, case)


def form_post(port):
    """GET the form, then POST it back with its CSRF cookie and token."""
    status, _r, headers, body = wh.get(port, "/form/")
    assert status == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    cookie = [v for k, v in headers if k.lower() == "set-cookie"][0].split(";")[0]
    return wh.request(port, "POST", "/form/", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
        "Referer": "http://127.0.0.1:%d/form/" % port},
        body=("csrfmiddlewaretoken=%s&name=Ann&age=30" % token).encode())


def test_django_form_post_with_csrf_succeeds_like_wsgiref(django_servers):
    aport, rport = django_servers
    mine, ref = form_post(aport), form_post(rport)
    assert mine[0] == ref[0] == 200
    assert mine[3] == ref[3] == b"Thanks, Ann (age 30)\n"


def test_django_static_file_is_served_whole(django_servers):
    aport, _ = django_servers
    status, _r, headers, body = wh.get(aport, "/static/css/site.css")
    path = os.path.join(wh.APPS, "djsite", "static", "css", "site.css")
    assert status == 200
    assert body == open(path, "rb").read()


def test_chunked_upload_reaches_the_app_whole(raw_servers):
    aport, _ = raw_servers
    status, _r, _h, body = wh.request(aport, "POST", "/digest", body=chunks(BIG, 4096))
    assert status == 200
    assert body.decode() == "%d %s" % (len(BIG), hashlib.sha256(BIG).hexdigest())


def test_file_wrapper_is_sent_whole_without_the_validator(procs, tmp_path):
    """The validator hides wsgi.file_wrapper behind its own iterator; without
    it aiserve takes the sendfile path (raw app, Flask's send_file, Django's
    static serve), and also the one-item-list Content-Length path."""
    static = open(os.path.join(wh.APPS, "static.txt"), "rb").read()
    css = open(os.path.join(wh.APPS, "djsite", "static", "css", "site.css"), "rb").read()
    for spec, path, want in (("raw_app:application", "/file", static),
                             ("flask_app:app", "/file", static),
                             ("djsite.wsgi:application", "/static/css/site.css", css)):
        p, port = wh.start_aiserve(procs, tmp_path, [("module", spec)])
        for method in ("GET", "HEAD"):
            status, _r, headers, body = wh.request(port, method, path)
            assert status == 200
            lengths = [v for k, v in headers if k.lower() == "content-length"]
            assert lengths == [str(len(want))], (spec, method, headers)
            assert body == (want if method == "GET" else b"")
        wh.stderr_of(p)
