"""Black-box tests of aiserve's `https` listeners: throw-away certificates made
with the openssl CLI in tmp_path, real curl and `openssl s_client` against a
real aiserve: TLS 1.2 and 1.3, ALPN, session resumption, client certificates
(accepted, refused, HTTPS_DN in a WSGI app), the certificate read again on
SIGHUP, and bad input (plain HTTP, a truncated handshake, a stalled one)
that never stops the server serving others."""
import json
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from harness import free_port, wait_port
from srvutil import start, wait_for

APPS = os.path.join(os.path.dirname(__file__), "apps")


def openssl(*args, inp=None, timeout=30):
    return subprocess.run(["openssl", *map(str, args)], input=inp, capture_output=True,
                          text=True, timeout=timeout)


def make_ca(tmp_path, name):
    key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    r = openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={name}")
    assert r.returncode == 0, r.stderr
    return str(key), str(crt)


def make_cert(tmp_path, name, ca=None, serial=None):
    """A server or client certificate: self-signed, or signed by ca (key, crt)."""
    key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    if ca is None:
        args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={name}",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        if serial:
            args += ["-set_serial", str(serial)]
        r = openssl(*args)
        assert r.returncode == 0, r.stderr
        return str(key), str(crt)
    csr = tmp_path / f"{name}.csr"
    r = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={name}/O=aiserve-tests")
    assert r.returncode == 0, r.stderr
    r = openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-out", crt, "-days",
                "2", "-set_serial", "7")
    assert r.returncode == 0, r.stderr
    return str(key), str(crt)


def serve(procs, tmp_path, *args, spec_extra=""):
    key, crt = make_cert(tmp_path, "server")
    hport = free_port()
    p, port = start(procs, f"--https=127.0.0.1:{hport},{crt},{key}{spec_extra}", *args)
    wait_port(hport, proc=p)
    return p, port, hport, crt


def curl(hport, path="/hello", *extra):
    r = subprocess.run(["curl", "-sS", "-k", "--max-time", "20", "-o", "-", "-w",
                        "\n%{http_code} %{http_version}", *extra,
                        f"https://127.0.0.1:{hport}{path}"], capture_output=True, text=True,
                       timeout=30)
    return r


def s_client(hport, *args, inp="", timeout=30):
    return openssl("s_client", "-connect", f"127.0.0.1:{hport}", "-servername", "localhost",
                   *(("-ign_eof",) if inp else ()),
                   *args, inp=inp, timeout=timeout)


def test_curl_tls12_tls13_alpn_and_environ(procs, tmp_path):
    _, _, hport, crt = serve(procs, tmp_path, f"--pythonpath={APPS}", "--module=envapp:app",
                             "--builtins=hello,health")
    for ver, want in (("--tlsv1.2", "TLSv1.2"), ("--tlsv1.3", "TLSv1.3")):
        extra = [ver, "--tls-max", ver[6:]]
        r = curl(hport, "/hello", "-v", *extra)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[-1] == "200 1.1"
        assert r.stdout.startswith("hello")
        assert f"SSL connection using {want}" in r.stderr
        assert "ALPN: server accepted http/1.1" in r.stderr or \
            "ALPN, server accepted to use http/1.1" in r.stderr
    # the app sees https
    r = curl(hport, "/app", "--cacert", crt)
    env = json.loads(r.stdout.rsplit("\n", 1)[0])
    assert env["HTTPS"] == "on" and env["wsgi.url_scheme"] == "https"
    assert env["HTTPS_DN"] is None
    # keep-alive: several requests on one connection, one handshake
    r = curl(hport, "/hello", "-v", "--next", "-k", f"https://127.0.0.1:{hport}/hello")
    assert r.stdout.count("hello") == 2
    assert "Re-using existing connection" in r.stderr or "Reusing existing" in r.stderr


def test_python_ssl_pipelined_and_large_body(procs, tmp_path):
    """Pipelined requests in one TLS write and a large upload through an app."""
    _, _, hport, crt = serve(procs, tmp_path, f"--pythonpath={APPS}", "--module=envapp:app",
                             "--builtins=hello,health")
    ctx = ssl.create_default_context(cafile=crt)
    with socket.create_connection(("127.0.0.1", hport), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            body = b"x" * 300000
            s.sendall(b"POST /app HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body + b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n" * 3)
            data = b""
            deadline = time.monotonic() + 15
            while data.count(b"HTTP/1.1 200") < 4 and time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data.count(b"HTTP/1.1 200") == 4, data[:500]
            assert data.count(b"\r\n\r\nhello\n") == 3


def test_session_resumption(procs, tmp_path):
    _, _, hport, _ = serve(procs, tmp_path, "--processes=2")
    for ver in ("-tls1_2", "-tls1_3"):
        sess = tmp_path / f"sess{ver}"
        r = s_client(hport, ver, "-sess_out", sess, inp="GET /hello HTTP/1.1\r\nHost: a\r\n"
                     "Connection: close\r\n\r\n", timeout=30)
        assert "New," in r.stdout, r.stdout + r.stderr
        reused = 0
        for _ in range(4):  # tickets are shared by the workers: any of them resumes it
            r = s_client(hport, ver, "-sess_in", sess, inp="GET /hello HTTP/1.1\r\nHost: a\r\n"
                         "Connection: close\r\n\r\n")
            reused += "Reused," in r.stdout
            assert "hello" in r.stdout
        assert reused == 4, r.stdout



def test_session_cache_without_tickets(procs, tmp_path):
    """A TLS 1.2 client that refuses tickets resumes from the session cache
    (each worker's own: one worker here)."""
    _, _, hport, _ = serve(procs, tmp_path, "--processes=1")
    sess = tmp_path / "sess"
    req = "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    r = s_client(hport, "-tls1_2", "-no_ticket", "-sess_out", sess, inp=req)
    assert "New," in r.stdout and "TLS session ticket:" not in r.stdout
    r = s_client(hport, "-tls1_2", "-no_ticket", "-sess_in", sess, inp=req)
    assert "Reused," in r.stdout and "hello" in r.stdout


def test_client_certificate_required(procs, tmp_path):
    ca = make_ca(tmp_path, "clientca")
    ckey, ccrt = make_cert(tmp_path, "alice", ca=ca)
    other = make_ca(tmp_path, "otherca")
    okey, ocrt = make_cert(tmp_path, "mallory", ca=other)
    _, _, hport, _ = serve(procs, tmp_path, f"--pythonpath={APPS}", "--module=envapp:app",
                           "--builtins=hello,health", spec_extra=f",,!{ca[1]}")
    r = curl(hport, "/app", "--cert", ccrt, "--key", ckey)
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout.rsplit("\n", 1)[0])
    assert env["HTTPS_DN"] == "/CN=alice/O=aiserve-tests"
    # no certificate, or one from another CA: refused in the handshake
    assert curl(hport, "/app").returncode != 0
    assert curl(hport, "/app", "--cert", ocrt, "--key", okey).returncode != 0
    # the server still serves the good client
    assert curl(hport, "/hello", "--cert", ccrt, "--key", ckey).stdout.startswith("hello")


def test_client_certificate_checked_when_sent(procs, tmp_path):
    ca = make_ca(tmp_path, "clientca")
    ckey, ccrt = make_cert(tmp_path, "bob", ca=ca)
    _, _, hport, _ = serve(procs, tmp_path, f"--pythonpath={APPS}", "--module=envapp:app",
                           "--builtins=hello,health", spec_extra=f",HIGH,{ca[1]}")
    env = json.loads(curl(hport, "/app").stdout.rsplit("\n", 1)[0])
    assert env["HTTPS_DN"] is None and env["HTTPS"] == "on"
    env = json.loads(curl(hport, "/app", "--cert", ccrt, "--key", ckey).stdout.rsplit("\n", 1)[0])
    assert env["HTTPS_DN"] == "/CN=bob/O=aiserve-tests"
    # a certificate that is sent must verify
    other = make_ca(tmp_path, "otherca")
    okey, ocrt = make_cert(tmp_path, "mallory", ca=other)
    assert curl(hport, "/app", "--cert", ocrt, "--key", okey).returncode != 0


def serial_of(hport):
    r = s_client(hport, inp="")
    pem = r.stdout[r.stdout.index("-----BEGIN CERTIFICATE-----"):
                   r.stdout.index("-----END CERTIFICATE-----") + 25]
    out = openssl("x509", "-noout", "-serial", inp=pem)
    return out.stdout.strip()


def test_certificate_reloaded_on_sighup(procs, tmp_path):
    key, crt = make_cert(tmp_path, "server", serial=1111)
    hport = free_port()
    p, port = start(procs, f"--https=127.0.0.1:{hport},{crt},{key}")
    wait_port(hport, proc=p)
    assert serial_of(hport) == "serial=0457"  # 1111
    # renew in place (as certbot does), then reload
    make_cert(tmp_path, "server", serial=2222)
    p.send_signal(signal.SIGHUP)
    assert wait_for(lambda: serial_of(hport) == "serial=08AE", timeout=30)
    assert curl(hport).stdout.startswith("hello")


def test_bad_tls_input_keeps_serving(procs, tmp_path):
    p, port, hport, _ = serve(procs, tmp_path, "--socket-timeout=2")
    # plain HTTP to the https port: a clean 400, then close
    with socket.create_connection(("127.0.0.1", hport), timeout=5) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 400") and b"plain HTTP" in data
    # a truncated ClientHello, then close
    with socket.create_connection(("127.0.0.1", hport), timeout=5) as s:
        s.sendall(bytes.fromhex("16030100c8010000c40303") + os.urandom(20))
    # garbage that is neither TLS nor HTTP
    with socket.create_connection(("127.0.0.1", hport), timeout=5) as s:
        s.sendall(os.urandom(2000))
        s.settimeout(5)
        try:
            s.recv(100)
        except (ConnectionResetError, socket.timeout):
            pass
    # a client that stalls mid-handshake: timed out by socket-timeout
    stalled = socket.create_connection(("127.0.0.1", hport), timeout=10)
    stalled.sendall(bytes.fromhex("16030100c8010000c40303") + os.urandom(20))
    t0 = time.monotonic()
    # others are served meanwhile (one worker: the loop is not held)
    assert curl(hport).stdout.startswith("hello")
    stalled.settimeout(15)
    try:
        assert stalled.recv(100) == b""
    except ConnectionResetError:
        pass
    waited = time.monotonic() - t0
    assert 1.0 <= waited < 12, waited
    stalled.close()
    assert p.poll() is None
    assert curl(hport).stdout.startswith("hello")


def test_bad_https_config_is_refused(procs, tmp_path):
    key, crt = make_cert(tmp_path, "server")
    from harness import binary
    for spec, want in ((f"127.0.0.1:1,{crt}", "is not addr,cert,key"),
                       (f"127.0.0.1:1,{tmp_path}/nope.pem,{key}", "cannot load the certificate"),
                       (f"127.0.0.1:1,{crt},{crt}", "cannot load the key"),
                       (f"127.0.0.1:1,{crt},{key},NOSUCHCIPHER", "bad cipher list")):
        r = subprocess.run([binary("aiserve"), f"--https={spec}"], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode != 0
        assert "option 'https'" in r.stderr and want in r.stderr, r.stderr


def slow_get(hport, crt, path):
    """GET over TLS, reading late and in small pieces: the server's writes
    meet a full socket (EAGAIN, then EV_WRITE or poll) many times."""
    ctx = ssl.create_default_context(cafile=crt)
    with socket.create_connection(("127.0.0.1", hport), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
            time.sleep(0.5)
            data = bytearray()
            n = 0
            while True:
                chunk = s.recv(16384)
                if not chunk:
                    break
                data += chunk
                n += 1
                if n % 64 == 0:
                    time.sleep(0.02)
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def dechunk(body):
    out, pos = bytearray(), 0
    while True:
        eol = body.index(b"\r\n", pos)
        n = int(body[pos:eol], 16)
        if n == 0:
            return bytes(out)
        out += body[eol + 2:eol + 2 + n]
        pos = eol + 4 + n


def test_large_responses_to_slow_readers(procs, tmp_path):
    """Responses far larger than the socket buffer, from the loop (static-map,
    sendfile through TLS) and from app threads (streamed, file_wrapper)."""
    blob = os.urandom(12 << 20)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "blob.bin").write_bytes(blob)
    _, _, hport, crt = serve(procs, tmp_path, f"--pythonpath={APPS}", "--mount=/big=envapp:big",
                             f"--static-map=/s={tmp_path}/static", "--builtins=hello,health")
    head, body = slow_get(hport, crt, "/s/blob.bin")
    assert head.startswith(b"HTTP/1.1 200") and body == blob
    head, body = slow_get(hport, crt, "/big")
    assert head.startswith(b"HTTP/1.1 200")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    assert body == b"".join(bytes([65 + i % 26]) * 100000 for i in range(120))
    head, body = slow_get(hport, crt, f"/big?file={tmp_path}/static/blob.bin")
    assert head.startswith(b"HTTP/1.1 200")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    assert body == blob
