"""Shared by the distributed-mode tests (test_dist_master.py, test_dist_worker.py,
test_dist_pymaster.py): the same two user classes as an aiload scenario and as a
Locust file, the counting test server (lgserver.py) they load, and a hand-driven
worker socket."""
import contextlib
import json
import os
import urllib.request

import pytest
import zmq

from harness import free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


def two_classes(delay):
    """The two user classes, UserA on /hello and UserB on /delay/<delay>
    (named "slow"), as (aiload scenario, Locust file)."""
    scenario = f"""
[user UserA]
wait_time = constant(0.05)
[task UserA]
path = /hello
[user UserB]
wait_time = constant(0.05)
[task UserB]
name = slow
path = /delay/{delay}
"""
    locustfile = f"""
from locust import HttpUser, task, constant
class UserA(HttpUser):
    wait_time = constant(0.05)
    @task
    def t(self):
        self.client.get("/hello")
class UserB(HttpUser):
    wait_time = constant(0.05)
    @task
    def t(self):
        self.client.get("/delay/{delay}", name="slow")
"""
    return scenario, locustfile


SCENARIO, LOCUSTFILE = two_classes("0.12")


@pytest.fixture
def server(procs):
    port = free_port()
    p = procs.start([PY, os.path.join(HERE, "lgserver.py"), str(port)])
    wait_port(port, proc=p)
    return port


def server_count(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/count", timeout=10) as r:
        return json.loads(r.read())


@contextlib.contextmanager
def raw_worker(mport, ident):
    """A ZeroMQ DEALER connected to the master on 127.0.0.1:mport as worker ident
    (bytes), for messages sent by hand; closed on leaving."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.IDENTITY, ident)
    s.connect(f"tcp://127.0.0.1:{mport}")
    try:
        yield s
    finally:
        s.close(linger=0)
        ctx.term()
