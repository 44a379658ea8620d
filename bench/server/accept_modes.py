#!/usr/bin/python3
"""EPOLLEXCLUSIVE on one shared listen socket (what aiserve does) vs a
SO_REUSEPORT socket per worker, measured on the two properties aiserve's
choice rests on. Two worker processes, each an epoll loop that accepts and
holds connections:

1. spread: --conns connections opened one after another; how many each
   worker took (a shared socket with EPOLLEXCLUSIVE wakes the first waiter,
   so without a policy one worker takes most; SO_REUSEPORT spreads by a hash
   of the addresses, whatever the workers' load);
2. drain: worker 1 stops accepting (as a draining worker does) while
   --conns more connections arrive, then closes its listen socket; how many
   of those connections were reset. With one shared socket the other worker
   accepts them all; with SO_REUSEPORT those hashed to worker 1's socket are
   reset when it closes (unless net.ipv4.tcp_migrate_req is set).

    bench/server/accept_modes.py [--conns 400]
"""
import argparse
import os
import select
import signal
import socket
import sys
import time


def worker(mode, port, shared, ctl_r, res_w, idx):
    if mode == "reuseport":
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        ls.bind(("127.0.0.1", port))
        ls.listen(1024)
    else:
        ls = shared
    ls.setblocking(False)
    ep = select.epoll()
    flags = select.EPOLLIN | (select.EPOLLEXCLUSIVE if mode == "exclusive" else 0)
    ep.register(ls.fileno(), flags)
    ep.register(ctl_r, select.EPOLLIN)
    held, accepting = [], True
    os.write(res_w, b"R")
    while True:
        for fd, _ in ep.poll(1.0):
            if fd == ctl_r:
                cmd = os.read(ctl_r, 1)
                if cmd == b"P":  # stop accepting (drain begins)
                    ep.unregister(ls.fileno())
                    accepting = False
                elif cmd == b"C":  # close the listen socket (drain goes on)
                    ls.close()
                elif cmd == b"S":  # how many so far
                    os.write(res_w, f"{len(held)}\n".encode())
                elif cmd == b"Q":
                    os.write(res_w, f"{len(held)}\n".encode())
                    os._exit(0)
            elif accepting:
                try:
                    while True:
                        c, _ = ls.accept()
                        held.append(c)
                except BlockingIOError:
                    pass
    del idx


def run(mode, conns):
    port = 0
    shared = None
    if mode == "exclusive":
        shared = socket.socket()
        shared.bind(("127.0.0.1", 0))
        shared.listen(1024)
        port = shared.getsockname()[1]
    else:
        probe = socket.socket()
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
    kids, ctls, ress = [], [], []
    for i in range(2):
        cr, cw = os.pipe()
        rr, rw = os.pipe()
        pid = os.fork()
        if pid == 0:
            worker(mode, port, shared, cr, rw, i)
        kids.append(pid)
        ctls.append(cw)
        ress.append(rr)
        os.read(rr, 1)
    if shared:
        shared.close()  # the workers hold it, as aiserve's master and workers do
    clients = []
    for _ in range(conns):
        clients.append(socket.create_connection(("127.0.0.1", port)))
    time.sleep(0.5)
    spread = []
    for i in range(2):
        os.write(ctls[i], b"S")
        spread.append(int(os.read(ress[i], 64).split()[0]))
    # drain: worker 1 stops accepting, more clients arrive, then it closes
    os.write(ctls[1], b"P")
    time.sleep(0.1)
    late = []
    for _ in range(conns):
        late.append(socket.create_connection(("127.0.0.1", port)))
    time.sleep(0.3)
    os.write(ctls[1], b"C")
    time.sleep(0.3)
    reset = 0
    for s in late:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                reset += 1
        except BlockingIOError:
            pass
        except ConnectionResetError:
            reset += 1
    for i in range(2):
        os.write(ctls[i], b"Q")
        os.read(ress[i], 64)
        os.waitpid(kids[i], 0)
    for s in clients + late:
        s.close()
    return spread, reset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=400)
    a = ap.parse_args()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    print(f"{a.conns} connections, then worker 1 drains while {a.conns} more arrive")
    print(f"{'mode':10s} | {'worker 0':>8s} | {'worker 1':>8s} | {'reset in drain':>14s}")
    for mode in ("exclusive", "reuseport"):
        (w0, w1), reset = run(mode, a.conns)
        print(f"{mode:10s} | {w0:8d} | {w1:8d} | {reset:14d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
