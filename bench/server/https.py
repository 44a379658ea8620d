#!/usr/bin/python3
"""TLS termination: aiserve's `https` listener vs nginx's, same certificate
(ECDSA P-256), same OpenSSL, same negotiated cipher (checked with
`openssl s_client` and printed), 2 workers each, a tiny response served by
the server itself (aiserve's built-in /hello, nginx's `return 200`).

Cases, each with wrk against both servers, rounds interleaved, medians:
  keepalive  wrk -c --connections keep-alive connections (one handshake each,
             then requests): the cost of TLS records on the hot path
  newconn    the same with `Connection: close`: a full handshake per request
             (wrk does not resume sessions), the cost of the handshake path
Prints requests/s and the ratio aiserve/nginx per case (goal >= 0.9x).

    bench/server/https.py [--rounds 3] [--seconds 10] [--connections 50]
                          [--threads 2] [--aiserve build/aiserve]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import free_port, start_nginx, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256"


def make_cert(tmp):
    key, crt = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, crt


def start(name, tmp, aiserve, key, crt):
    port = free_port()
    if name == "nginx":
        p = start_nginx(os.path.join(tmp, "nginx"), port, conns=8192, listen=" ssl",
                        http="    ssl_session_cache shared:SSL:10m;",
                        server=f"        ssl_certificate {crt};\n"
                        f"        ssl_certificate_key {key};\n"
                        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
                        f"        ssl_ciphers {CIPHERS};\n"
                        "        ssl_prefer_server_ciphers on;",
                        user="user root;" if os.geteuid() == 0 else "")
        return p, port, "/"
    cmd = [aiserve, f"--https=127.0.0.1:{port},{crt},{key},{CIPHERS}", "--processes=2",
           "--disable-logging", "--builtins=hello", "--max-connections=20000"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port, "/hello"


def cipher_of(port):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}"], input="",
                       capture_output=True, text=True, timeout=30)
    m = re.search(r"(New|Reused), (\S+), Cipher is (\S+)", r.stdout)
    return f"{m.group(2)} {m.group(3)}" if m else "?"


def wrk(port, path, seconds, conns, threads, close):
    args = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s"]
    if close:
        args += ["-H", "Connection: close"]
    out = subprocess.run(args + [f"https://127.0.0.1:{port}{path}"], capture_output=True,
                         text=True, timeout=seconds + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--aiserve", default=os.path.join(ROOT, "build", "aiserve"))
    a = ap.parse_args()
    secs = max(1, int(round(a.seconds)))
    with tempfile.TemporaryDirectory() as tmp:
        key, crt = make_cert(tmp)
        servers = {n: start(n, tmp, a.aiserve, key, crt) for n in ("aiserve", "nginx")}
        try:
            for n, (_, port, _) in servers.items():
                print(f"{n:8} {cipher_of(port)}")
            res = {(n, c): [] for n in servers for c in ("keepalive", "newconn")}
            for _ in range(a.rounds):
                for case in ("keepalive", "newconn"):
                    for n, (_, port, path) in servers.items():
                        res[(n, case)].append(wrk(port, path, secs, a.connections, a.threads,
                                                  case == "newconn"))
            print(f"\n{'case':10} {'aiserve req/s':>14} {'nginx req/s':>12} {'ratio':>7}")
            for case in ("keepalive", "newconn"):
                ai = statistics.median(res[("aiserve", case)])
                ng = statistics.median(res[("nginx", case)])
                ratio = ai / ng if ng else float("nan")
                flag = "" if ratio >= 0.9 else "  (below the 0.9x goal)"
                print(f"{case:10} {ai:14.0f} {ng:12.0f} {ratio:6.2f}x{flag}")
        finally:
            for p, _, _ in servers.values():
                p.terminate()
                p.wait(timeout=10)


if __name__ == "__main__":
    main()
