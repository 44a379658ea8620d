"""Multi-host failover: two aiserve hosts and an nginx load balancer, each in
its own network namespace (the project's own test hosts on a private bridge,
addresses from TEST-NET-1), and a client in a fourth. Under load one host is
killed with SIGKILL and later comes back; with nginx's proxy_next_upstream for
idempotent requests no client request fails, and the access logs account for
every request."""
import json
import os
import signal
import time

import pytest

import netns
from harness import binary
from netns import NET, in_ns, wait_http

HOSTS = {"lb": 10, "a": 11, "b": 12, "c": 20}

pytestmark = netns.needs("nginx")


@pytest.fixture
def lab():
    """Four namespaces on one bridge (tests/netns.py). Yields ns name by host;
    removes all."""
    with netns.lab("aisv", HOSTS, "v") as names:
        yield names


def start_host(procs, names, h, logdir):
    addr = f"{NET}.{HOSTS[h]}:8000"
    return in_ns(procs, names[h], [binary("aiserve"), f"--http={addr}", "--processes=1",
                                   "--threads=1", f"--logto={logdir}/{h}.log"])


NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format lb '$status|$upstream_addr|$upstream_status|$request_uri';
    upstream aiserve {{
        server {net}.11:8000 max_fails=1 fail_timeout=2s;
        server {net}.12:8000 max_fails=1 fail_timeout=2s;
        keepalive 16;
    }}
    server {{
        listen {net}.10:8080;
        access_log {d}/lb.log lb;
        location / {{
            proxy_pass http://aiserve;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # GET is idempotent: a request the dead host never answered goes to the other.
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 1s;
        }}
    }}
}}
"""


def lines(path):
    try:
        with open(path) as f:
            return [l for l in f.read().splitlines() if l.strip()]
    except FileNotFoundError:
        return []


def access_lines(path):
    """The access-log lines of a host (its log file also holds start-up lines)."""
    return [l for l in lines(path) if '"GET /delay/' in l]


def test_a_killed_host_loses_no_request_and_comes_back(lab, procs, tmp_path):
    d = str(tmp_path)
    for sub in ("body", "proxy", "fcgi", "uwsgi", "scgi"):
        os.mkdir(os.path.join(d, sub))
    a = start_host(procs, lab, "a", d)
    start_host(procs, lab, "b", d)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(d=d, net=NET))
    in_ns(procs, lab["lb"], ["nginx", "-c", conf, "-p", d])
    for h in ("a", "b"):
        wait_http(lab["c"], f"http://{NET}.{HOSTS[h]}:8000/health/ready")
    wait_http(lab["c"], f"http://{NET}.10:8080/health/ready")
    before = len(lines(os.path.join(d, "lb.log")))

    # 8 keep-alive clients, each request 20 ms on the host: always some in flight.
    out = os.path.join(d, "load.json")
    load = in_ns(procs, lab["c"], [binary("aiload"), f"http://{NET}.10:8080/delay/0.02",
                                   "-c", "8", "-d", "8s", "--json", out, "--only-summary"])
    time.sleep(2)
    os.killpg(a.pid, signal.SIGKILL)  # the whole host: master and worker, mid-request
    a.wait(timeout=10)
    killed_at = len(access_lines(os.path.join(d, "a.log")))
    time.sleep(2.5)
    start_host(procs, lab, "a", d)  # the host comes back
    assert load.wait(timeout=60) == 0, load.stderr.read().decode()[-2000:]

    with open(out) as f:
        summary = json.load(f)
    nreq, nfail = summary["requests"], summary["failures"]
    assert nreq > 200 and nfail == 0, (nreq, nfail, summary["errors"])

    lb = [l.split("|") for l in lines(os.path.join(d, "lb.log"))[before:] if "/delay/" in l]
    # nginx logged every client request once, all answered 200 ...
    assert len(lb) == nreq, (len(lb), nreq)
    assert all(f[0] == "200" for f in lb), [f for f in lb if f[0] != "200"][:5]
    # ... the last upstream that nginx tried answered it; some were retried on
    # the other host after the dead one failed them.
    final = [f[1].split(", ")[-1] for f in lb]
    retried = sum(1 for f in lb if "," in f[1])
    served_by = {h: final.count(f"{NET}.{HOSTS[h]}:8000") for h in ("a", "b")}
    assert served_by["a"] + served_by["b"] == nreq
    # Every response nginx took from a host is in that host's access log. The
    # first life of host a may miss the few it answered in the instant of the
    # kill (one per connection at most): the kill lands between its write and
    # its log line.
    a_log = access_lines(os.path.join(d, "a.log"))
    b_log = access_lines(os.path.join(d, "b.log"))
    assert len(b_log) == served_by["b"], (len(b_log), served_by)
    assert served_by["a"] - 8 <= len(a_log) <= served_by["a"], (len(a_log), served_by)
    # The host came back and took requests again.
    assert len(a_log) > killed_at, "host a served nothing after its restart"
    print(f"requests {nreq}, failed 0; host a {len(a_log)} (killed after {killed_at}), "
          f"host b {len(b_log)}; retried {retried}")
