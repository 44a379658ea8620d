"""A small HTTP/1.1 keep-alive test server for the aiload tests (asyncio, one
thread: delays are timers, not sleeping threads, so /delay/0.1 answers within
a fraction of a millisecond of 100 ms even on a busy machine).

Run: python3 lgserver.py PORT [--stall-at S --stall-for S] [--bind ADDR]

Routes:
  GET /, /hello         -> 200 "Hello, World!"
  /delay/<seconds>      -> 200 after that long
  /status/<code>        -> that status
  /chunked              -> 200, chunked body "hello chunked world"
  /close                -> 200 with Connection: close, then closes
  /echo                 -> 200, echoes the request body
  /garbage, /bighead, /badchunk, /short -> broken responses (then close)
  /rst                  -> the connection is reset (RST) instead of an answer
  /splithead            -> 200 "split", the head sent in three pieces 10 ms apart
  /count                -> JSON {"requests": N, "paths": {...}} (not counted itself)
  /reset                -> zeroes the counters (not counted)
With --stall-at A --stall-for D every request that arrives between A and A+D
seconds after the first request is held until A+D (a server stall).
"""
import asyncio
import concurrent.futures
import json
import socket
import struct
import sys
import time

SLEEPERS = concurrent.futures.ThreadPoolExecutor(max_workers=256)
REASONS = {200: "OK", 201: "Created", 404: "Not Found", 500: "Internal Server Error"}


class State:
    def __init__(self, stall_at, stall_for):
        self.count = 0
        self.paths = {}
        self.first = None
        self.holds = []  # ms from request head to response, for /delay
        self.stall_at = stall_at
        self.stall_for = stall_for


def response(code, body=b"", extra=()):
    head = [f"HTTP/1.1 {code} {REASONS.get(code, 'Status')}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def route(st, method, path, body):
    """Returns (bytes to send, close after)."""
    if path == "/count":
        out = json.dumps({"requests": st.count, "paths": st.paths, "holds_ms": st.holds}).encode()
        return response(200, out, [("Content-Type", "application/json")]), False
    if path == "/reset":
        st.count, st.paths, st.first, st.holds = 0, {}, None, []
        return response(200, b"ok"), False
    now = time.monotonic()
    st.count += 1
    st.paths[path] = st.paths.get(path, 0) + 1
    if st.first is None:
        st.first = now
    if st.stall_for > 0:
        t = now - st.first
        if st.stall_at <= t < st.stall_at + st.stall_for:
            await asyncio.sleep(st.stall_at + st.stall_for - t)
    if path in ("/", "/hello"):
        return response(200, b"Hello, World!"), False
    if path.startswith("/delay/"):
        # Timers of the event loop fire up to ~1 ms late (epoll's ms timeout);
        # a thread's sleep wakes within ~0.1 ms and wakes the loop at once.
        delay = float(path.split("/")[2])
        await asyncio.get_running_loop().run_in_executor(SLEEPERS, time.sleep, delay)
        st.holds.append((time.monotonic() - now) * 1000)
        return response(200, b"delayed"), False
    if path.startswith("/status/"):
        code = int(path.split("/")[2])
        return response(code, b"status %d" % code), False
    if path == "/chunked":
        parts = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"hello ", b"chunked ", b"world"))
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        return head + parts + b"0\r\n\r\n", False
    if path == "/garbage":
        return b"NOT HTTP AT ALL\r\n\r\n", True
    if path == "/bighead":
        return response(200, b"x", [("X-Big", "y" * 70000)]), False
    if path == "/badchunk":
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", True
    if path == "/short":  # promises 100 bytes, sends 5, closes
        return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", True
    if path == "/bighead20k":  # large but acceptable head, arriving in pieces
        return response(200, b"ok", [("X-Big", "y" * 20000)]), False
    if path == "/close":
        return response(200, b"bye", [("Connection", "close")]), True
    if path == "/echo":
        return response(200, body), False
    return response(404, b"not found"), False


async def serve(st, reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            if path == "/rst":  # reset the connection instead of answering
                st.count += 1
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            if path == "/splithead":  # the head arrives in three pieces
                st.count += 1
                st.paths[path] = st.paths.get(path, 0) + 1
                for part in (b"HTTP/1.1 200 OK\r\nX-A: 1", b"\r\nContent-Le",
                             b"ngth: 5\r\n\r\nsplit"):
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0.01)
                continue
            out, close = await route(st, method, path, body)
            if method == "HEAD":
                out = out.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            writer.write(out)
            if close:
                await writer.drain()
                break
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    port = int(sys.argv[1])
    stall_at = stall_for = 0.0
    bind = "127.0.0.1"
    args = sys.argv[2:]
    for i, a in enumerate(args):
        if a == "--bind":  # another address (the distributed tests' namespaces)
            bind = args[i + 1]
        if a == "--stall-at":
            stall_at = float(args[i + 1])
        if a == "--stall-for":
            stall_for = float(args[i + 1])
    sys.setswitchinterval(0.0002)  # a woken sleeper gets the GIL quickly
    st = State(stall_at, stall_for)
    srv = await asyncio.start_server(lambda r, w: serve(st, r, w), bind, port,
                                     backlog=1024)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
