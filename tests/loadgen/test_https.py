"""Black-box tests of aiload's https: Debian's nginx serves TLS on 127.0.0.1
with throw-away self-signed certificates made by the openssl CLI in tmp_path;
aiload runs against it with -k, with --cacert, with neither, against the wrong
name, through keep-alive and reconnects (session resumption, read from
nginx's own access log), in quick mode, in a scenario with on_start, and from
the web UI's host field. Bad input (a missing CA file, TLS to a plain server,
a server that never answers the handshake) fails clearly and never hangs."""
import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from harness import binary, free_port, wait_port

NGINX = "/usr/sbin/nginx"


def aiload(*args, timeout=30):
    return subprocess.run([binary("aiload"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def make_cert(tmp_path, name, san):
    """A self-signed certificate (its own CA) for the subjectAltName san."""
    key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days",
                    "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}"],
                   check=True, capture_output=True, timeout=30)
    return str(key), str(crt)


def localhost_is_v6_first():
    info = socket.getaddrinfo("localhost", 443, type=socket.SOCK_STREAM)
    return info[0][0] == socket.AF_INET6


class Nginx:
    """nginx with four TLS ports: good (cert for localhost and 127.0.0.1),
    wrong (cert for wrong.example), short (good cert, 5 requests per
    connection, so clients reconnect) and short12 (the same, TLS 1.2 only). The access log has one line per
    request: connection serial, request number on it, session reused, URI, port."""

    def __init__(self, procs, tmp_path):
        self.tmp = tmp_path
        self.good_key, self.good = make_cert(tmp_path, "good", "DNS:localhost,IP:127.0.0.1")
        self.wrong_key, self.wrong = make_cert(tmp_path, "wrong", "DNS:wrong.example")
        self.port, self.wrong_port, self.short_port = free_port(), free_port(), free_port()
        self.short12_port = free_port()
        self.log = tmp_path / "access.log"
        # 320 kB: many TLS records per response, more than one read buffer
        (tmp_path / "big.txt").write_text("0123456789abcdef" * 20000 + "THE-END\n")
        big = (f"location /big {{ alias {tmp_path}/big.txt; }} "
               f"location /gz {{ gzip on; gzip_types *; gzip_min_length 0; "
               f"alias {tmp_path}/big.txt; }}")
        v6 = localhost_is_v6_first()

        def server(port, key, crt, extra=""):
            listen = f"listen 127.0.0.1:{port} ssl;"
            if v6:
                listen += f" listen [::1]:{port} ssl;"
            return f"""
    server {{
        {listen}
        ssl_certificate {crt};
        ssl_certificate_key {key};
        {extra}
        location / {{ return 200 "hello\\n"; }}
    }}"""

        # a root master hands workers to "nobody", who cannot read tmp_path
        user = "user root;" if os.geteuid() == 0 else ""
        conf = tmp_path / "nginx.conf"
        conf.write_text(f"""worker_processes 1;
{user}
daemon off;
error_log {tmp_path}/error.log;
pid {tmp_path}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    log_format t '$connection $connection_requests $ssl_session_reused $request_uri $server_port';
    access_log {self.log} t;
    keepalive_requests 100000;
    {server(self.port, self.good_key, self.good, big)}
    {server(self.wrong_port, self.wrong_key, self.wrong)}
    {server(self.short_port, self.good_key, self.good, "keepalive_requests 5;")}
    {server(self.short12_port, self.good_key, self.good,
            "keepalive_requests 5; ssl_protocols TLSv1.2;")}
}}
""")
        p = procs.start([NGINX, "-c", str(conf), "-p", str(tmp_path), "-e",
                         str(tmp_path / "error.log")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in (self.port, self.wrong_port, self.short_port, self.short12_port):
            wait_port(port, proc=p)

    def requests(self):
        """Access log lines as (connection, n on it, reused, uri), once nginx wrote them."""
        time.sleep(0.2)
        if not self.log.exists():
            return []
        return [tuple(line.split()) for line in self.log.read_text().splitlines()]

    def clear(self):
        self.log.write_text("")


@pytest.fixture
def nginx(procs, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.fail("nginx is not installed (scripts/install-deps.sh)")
    return Nginx(procs, tmp_path)


def run_json(tmp_path, *args, timeout=30):
    out = tmp_path / "summary.json"
    if out.exists():
        out.unlink()
    r = aiload(*args, "--json", out, timeout=timeout)
    assert out.exists(), r.stdout + r.stderr
    return r, json.loads(out.read_text())


def errors(js):
    return {e["error"]: e["occurrences"] for e in js["errors"]}


def test_insecure_requests_succeed_over_few_keep_alive_connections(nginx, tmp_path):
    r, js = run_json(tmp_path, f"https://127.0.0.1:{nginx.port}/", "-k", "-c", 2, "-d", 1,
                     "--threads", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert js["failures"] == 0, js["errors"]
    log = nginx.requests()
    assert js["requests"] == len(log) >= 100
    conns = {line[0] for line in log}
    assert len(conns) == 2, "each connection carries many requests"
    assert max(int(line[1]) for line in log) > 40


def test_large_and_chunked_bodies_arrive_whole(nginx, tmp_path):
    """A 320 kB body spans many TLS records and more than one read; its last
    bytes are checked (expect_body), and a chunked gzip body is framed right."""
    sc = tmp_path / "s.ini"
    sc.write_text("""
[user U]
[task U]
path = /big
expect_body = THE-END
[task U]
path = /gz
header = Accept-Encoding: gzip
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 3, "-r", 100, "-t", 1, "-H",
                     f"https://127.0.0.1:{nginx.port}", "-k", "--threads", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    got = {e["name"]: e for e in js["entries"]}
    assert got["/big"]["num_requests"] > 10
    assert got["/big"]["avg_content_length"] == 320008
    assert got["/gz"]["num_requests"] > 10
    assert 0 < got["/gz"]["avg_content_length"] < 10000, "gzip made it small, chunked"
    assert js["failures"] == 0, js["errors"]
    uris = [line[3] for line in nginx.requests()]
    assert uris.count("/big") == got["/big"]["num_requests"]


def test_cacert_and_the_right_name_or_address_succeed(nginx, tmp_path):
    for host in ("localhost", "127.0.0.1"):
        r, js = run_json(tmp_path, f"https://{host}:{nginx.port}/", "--cacert", nginx.good,
                         "-c", 1, "-d", 0.5, "--threads", 1)
        assert r.returncode == 0, r.stdout + r.stderr
        assert js["requests"] > 10 and js["failures"] == 0, (host, js["errors"])


def test_without_insecure_or_cacert_every_request_fails_with_the_verify_reason(nginx, tmp_path):
    prefix = tmp_path / "run"
    r, js = run_json(tmp_path, f"https://localhost:{nginx.port}/", "-c", 2, "-d", 0.5,
                     "--threads", 1, "--csv", prefix)
    assert r.returncode == 1, r.stdout + r.stderr
    assert js["requests"] > 0 and js["failures"] == js["requests"]
    why = "SSLError('TLS: certificate verify failed: self-signed certificate')"
    assert errors(js) == {why: js["requests"]}
    failures = (tmp_path / "run_failures.csv").read_text()
    assert "TLS: certificate verify failed: self-signed certificate" in failures
    assert "TLS: certificate verify failed: self-signed certificate" in r.stdout
    assert nginx.requests() == [], "no request reached the server"


def test_a_certificate_for_another_name_fails(nginx, tmp_path):
    for host, why in (("localhost", "hostname mismatch"), ("127.0.0.1", "IP address mismatch")):
        r, js = run_json(tmp_path, f"https://{host}:{nginx.wrong_port}/", "--cacert",
                         nginx.wrong, "-c", 1, "-d", 0.3, "--threads", 1)
        assert r.returncode == 1
        assert js["failures"] == js["requests"] > 0
        assert list(errors(js)) == [f"SSLError('TLS: certificate verify failed: {why}')"]
    # the same certificate is fine once checks are off
    r, js = run_json(tmp_path, f"https://localhost:{nginx.wrong_port}/", "-k", "-c", 1, "-d",
                     0.3, "--threads", 1)
    assert r.returncode == 0 and js["failures"] == 0, js["errors"]


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_reconnecting_users_resume_their_tls_session(nginx, tmp_path, version):
    """nginx closes each connection after 5 requests: users reconnect, and
    nginx's $ssl_session_reused says the handshakes were resumed (a TLS 1.3
    ticket, or a TLS 1.2 session ticket)."""
    port = nginx.short_port if version == "TLSv1.3" else nginx.short12_port
    r, js = run_json(tmp_path, f"https://127.0.0.1:{port}/", "--cacert", nginx.good,
                     "-c", 2, "-d", 1, "--threads", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert js["failures"] == 0, js["errors"]
    log = nginx.requests()
    assert js["requests"] == len(log)
    firsts = [line for line in log if line[1] == "1"]
    assert len(firsts) >= 10, "connections were reopened"
    full = [line for line in firsts if line[2] != "r"]
    assert len(full) == 2, f"only each user's first handshake is a full one: {len(full)} full"


def test_closed_model_scenario_with_on_start_over_https(nginx, tmp_path):
    sc = tmp_path / "s.ini"
    sc.write_text("""
[user U]
wait_time = constant(0.01)
[on_start U]
path = /login
[task U]
path = /hello
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 3, "-r", 100, "-t", 1, "-H",
                     f"https://127.0.0.1:{nginx.port}", "-k", "--threads", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    got = {e["name"]: e["num_requests"] for e in js["entries"]}
    log = nginx.requests()
    uris = [line[3] for line in log]
    assert got["/login"] == uris.count("/login") == 3
    assert got["/hello"] == uris.count("/hello") > 20
    assert js["failures"] == 0


def test_scenario_hosts_in_settings_and_user_classes_take_https(nginx, tmp_path):
    sc = tmp_path / "s.ini"
    sc.write_text(f"""
[settings]
host = https://localhost:{nginx.port}
[user A]
wait_time = constant(0.01)
[task A]
path = /a
[user B]
host = https://127.0.0.1:{nginx.port}
wait_time = constant(0.01)
[task B]
path = /b
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 2, "-r", 100, "-t", 1,
                     "--cacert", nginx.good, "--threads", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    got = {e["name"]: e["num_requests"] for e in js["entries"]}
    uris = [line[3] for line in nginx.requests()]
    assert got["/a"] == uris.count("/a") > 5
    assert got["/b"] == uris.count("/b") > 5


def test_open_model_connections_follow_each_class_to_its_own_host(nginx, tmp_path):
    """In the open model a connection serves arrivals of every class: a
    request of a class with another host must not ride a connection opened
    for the first one."""
    sc = tmp_path / "s.ini"
    sc.write_text(f"""
[user A]
host = https://127.0.0.1:{nginx.port}
[task A]
path = /a
[user B]
host = https://localhost:{nginx.wrong_port}
[task B]
path = /b
""")
    r, js = run_json(tmp_path, "-f", sc, "--headless", "-u", 2, "-t", 1, "--rate", 300, "-k",
                     "--threads", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    log = nginx.requests()
    ports = {(line[3], line[4]) for line in log}
    assert ports == {("/a", str(nginx.port)), ("/b", str(nginx.wrong_port))}, ports
    assert js["requests"] == len(log) > 100


def test_web_ui_host_field_takes_https(nginx, procs, tmp_path):
    sc = tmp_path / "s.ini"
    sc.write_text("[user U]\nwait_time = constant(0.01)\n[task U]\npath = /ui\n")
    port = free_port()
    p = procs.start([binary("aiload"), "-f", str(sc), "-P", str(port), "--cacert", nginx.good],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=p)
    base = f"http://127.0.0.1:{port}"
    form = urllib.parse.urlencode({"user_count": 2, "spawn_rate": 10,
                                   "host": f"https://localhost:{nginx.port}"}).encode()
    with urllib.request.urlopen(base + "/swarm", data=form, timeout=5) as resp:
        assert json.loads(resp.read())["success"] is True
    deadline = time.monotonic() + 5
    stats = {}
    while time.monotonic() < deadline:
        time.sleep(0.5)
        with urllib.request.urlopen(base + "/stats/requests", timeout=5) as resp:
            stats = json.loads(resp.read())
        total = [s for s in stats["stats"] if s["name"] == "Aggregated"][0]
        if total["num_requests"] >= 20:
            break
    urllib.request.urlopen(base + "/stop", timeout=5).read()
    assert total["num_requests"] >= 20, stats
    assert total["num_failures"] == 0, stats["errors"]
    assert "/ui" in [line[3] for line in nginx.requests()]


def test_a_missing_or_bad_cacert_is_a_command_line_error(tmp_path):
    r = aiload("https://127.0.0.1:1/", "--cacert", tmp_path / "nope.pem", "-d", 1)
    assert r.returncode == 2
    assert "--cacert" in r.stderr and "No such file" in r.stderr
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    r = aiload("https://127.0.0.1:1/", "--cacert", bad, "-d", 1)
    assert r.returncode == 2
    assert "no PEM certificate" in r.stderr


def test_https_to_a_plain_http_server_fails_the_handshake_clearly(procs, tmp_path):
    port = free_port()
    conf = tmp_path / "plain.conf"
    conf.write_text(f"""worker_processes 1;
daemon off;
error_log {tmp_path}/error.log;
pid {tmp_path}/nginx.pid;
events {{ worker_connections 64; }}
http {{ access_log off; server {{ listen 127.0.0.1:{port};
    location / {{ return 200 "plain\\n"; }} }} }}
""")
    p = procs.start([NGINX, "-c", str(conf), "-p", str(tmp_path), "-e",
                     str(tmp_path / "error.log")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=p)
    r, js = run_json(tmp_path, f"https://127.0.0.1:{port}/", "-k", "-c", 1, "-d", 0.3,
                     "--threads", 1)
    assert r.returncode == 1
    assert js["failures"] == js["requests"] > 0
    (why,) = errors(js)
    assert why.startswith("SSLError('TLS: handshake failed: "), why
    assert p.poll() is None


def test_plain_http_to_a_tls_port_is_an_http_error_not_a_hang(nginx, tmp_path):
    r, js = run_json(tmp_path, f"http://127.0.0.1:{nginx.port}/", "-c", 1, "-d", 0.3,
                     "--threads", 1)
    assert r.returncode == 1
    assert list(errors(js)) == ["HTTPError('400 Client Error: Bad Request')"]


def test_a_server_that_never_answers_the_handshake_times_out_as_a_connect(procs, tmp_path):
    """TCP is accepted (by the kernel's backlog) but no TLS byte ever comes:
    the handshake falls under --connect-timeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        port = s.getsockname()[1]
        t0 = time.monotonic()
        r, js = run_json(tmp_path, f"https://127.0.0.1:{port}/", "-k", "-c", 2, "-d", 1,
                         "--threads", 1, "--connect-timeout", 0.3, "--stop-timeout", 2)
        assert time.monotonic() - t0 < 10
    assert r.returncode == 1
    assert js["failures"] == js["requests"] > 0
    assert set(errors(js)) == {"ConnectTimeout('TLS handshake timed out')"}
