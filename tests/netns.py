"""Network-namespace labs for multi-host tests: each test host in its own
namespace with an eth0 on one bridge, the bridge itself in a namespace of its
own so the machine's network is never touched; addresses from TEST-NET-1
(192.0.2.0/24, documentation addresses, here only on our bridge). Used by
tests/deploy/test_failover.py and tests/loadgen/test_dist_netns.py."""
import contextlib
import os
import shutil
import signal
import subprocess
import time

import pytest

NET = "192.0.2"


def needs(*tools):
    """Skip marker: root, iproute2 and the given programs."""
    missing = [t for t in ("ip", *tools) if not shutil.which(t)]
    what = ", ".join(["root", "iproute2", *tools])
    return pytest.mark.skipif(os.geteuid() != 0 or bool(missing), reason=f"needs {what}")


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if check and r.returncode:
        raise RuntimeError(f"{args}: {r.stderr}")
    return r


def kill_all(ns):
    """SIGKILL every process inside namespace ns (a host that dies)."""
    for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


@contextlib.contextmanager
def lab(prefix, hosts, veth):
    """hosts: {name: last octet of its NET address}. Yields {name: namespace}
    and removes every namespace (and what runs in it) afterwards. prefix and
    the one-letter veth tag keep the names of concurrent labs apart (a veth
    name has at most 15 characters)."""
    tag = str(os.getpid() % 100000)
    br = f"{prefix}-br-{tag}"
    names = {h: f"{prefix}-{h}-{tag}" for h in hosts}
    made = []
    try:
        sh("ip", "netns", "add", br)
        made.append(br)
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        for h, octet in hosts.items():
            ns = names[h]
            sh("ip", "netns", "add", ns)
            made.append(ns)
            peer = f"{veth}{h}{tag}"[:15]
            sh("ip", "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", peer, "netns", br)
            sh("ip", "-n", br, "link", "set", peer, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{NET}.{octet}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield names
    finally:
        for ns in reversed(made):
            kill_all(ns)  # anything still running inside goes first
            sh("ip", "netns", "del", ns, check=False)


def in_ns(procs, ns, argv, **kw):
    """Starts argv inside namespace ns under the harness's procs fixture."""
    return procs.start(["ip", "netns", "exec", ns, *argv], **kw)


def wait_http(ns, url, timeout=30):
    """GETs url from inside ns until it answers 2xx; returns the body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-fsS", "--max-time", "1", url],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout
        time.sleep(0.1)
    raise TimeoutError(url)
