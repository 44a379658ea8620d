"""Helpers the benchmarks under bench/ (and scripts/soak.py) share: loopback
ports, starting and stopping servers, nginx configurations, process trees."""
import os
import signal
import socket
import subprocess
import time
import urllib.request


def free_port():
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    """Wait until something accepts on 127.0.0.1:port."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def wait_ready(url, proc, timeout=120):
    """Wait until GET url answers 200; raises if proc exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.1)
    raise TimeoutError(url)


def stop(proc, sig=signal.SIGTERM, timeout=10):
    """Stop the process group of proc (started with start_new_session): sig,
    then SIGKILL after timeout seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.wait(timeout=10)


def proc_tree(root):
    """root and its descendants (from /proc)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


# nginx answering `return 200 "hello\n"` itself, access log off, temp paths
# under dir; the caller fills user, workers, extra main/events lines, the
# listen flags and server lines (TLS).
NGINX_CONF = """\
{user}
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
{main}
events {{ worker_connections {conns}; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    default_type text/plain;
    keepalive_requests 1000000;
{http}
    server {{
        listen 127.0.0.1:{port}{listen} backlog=1024;
{server}
        location / {{ return 200 "hello\\n"; }}
    }}
}}
"""


def start_nginx(d, port, workers=2, conns=4096, main="", listen="", http="", server="",
                user="user root;"):
    """Writes d/nginx.conf (NGINX_CONF) and starts Debian's nginx on it, in its
    own session; returns the Popen once the port accepts."""
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(user=user, workers=workers, dir=d, main=main, conns=conns,
                                  http=http, port=port, listen=listen, server=server))
    p = subprocess.Popen(["/usr/sbin/nginx", "-c", conf, "-p", d], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port)
    return p
