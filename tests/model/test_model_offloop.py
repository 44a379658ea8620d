"""Work off the event loop: image decoding and tensor parsing run on the
model's batcher thread under max-queue, so a decompression-heavy PNG (a
4096x4096 16-bit RGB image of a few hundred KB) neither stalls the worker's
other requests nor piles up: excess requests get 503 + Retry-After."""
import http.client
import json
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np

import mdl_kit as K


def png16_bomb(w=4096, h=4096):
    """A valid 16-bit RGB PNG, black but for a diagonal line: ~100 KB on the
    wire, 96 MiB of samples for libpng to inflate and convert."""
    zero = bytes(w * 6)
    raw = b"".join(b"\x00" + zero[:6 * y] + b"\xff" * 6 + zero[6 * y + 6:] for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


LOADER = r"""
import http.client, json, sys, threading, time
port, path, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
body = open(path, "rb").read()
counts, lock = {}, threading.Lock()
def run():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c.request("POST", "/predict/img", body, {"Content-Type": "image/png"})
        r = c.getresponse()
        r.read()
        key = "%d%s" % (r.status, "+retry" if r.getheader("Retry-After") == "1" else "")
        with lock:
            counts[key] = counts.get(key, 0) + 1
        if r.status == 503:
            time.sleep(0.01)  # an eager client: retries long before Retry-After says
ts = [threading.Thread(target=run) for _ in range(4)]
[t.start() for t in ts]
print("started", flush=True)
[t.join() for t in ts]
print(json.dumps(counts), flush=True)
"""


def _hello_latencies(port, n, interval):
    """GET /hello on a fixed schedule (one every interval seconds), each latency
    counted from when it was due, not from when it was sent: a sequential
    sampler would see a stall of the loop once, while a stream of clients
    waits through all of it (coordinated omission)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/hello")  # connected and accepted before the clock starts
    c.getresponse().read()
    lat = []
    start = time.perf_counter()
    for i in range(n):
        due = start + i * interval
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        c.request("GET", "/hello")
        r = c.getresponse()
        r.read()
        lat.append(time.perf_counter() - due)
        assert r.status == 200
    c.close()
    return sorted(lat)


def _p99(lat):
    return lat[int(len(lat) * 0.99)]


def test_png_bomb_does_not_stall_the_loop_and_excess_is_503(tmp_path, procs):
    img, _, _ = K.make_image_classifier(str(tmp_path / "img.onnx"))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png16_bomb())
    assert len(bomb.read_bytes()) < 200 << 10
    # no access log: nobody reads the test's pipe, and thousands of 503 lines would fill it
    s = K.start(procs, ["--processes=1", "--model=img=" + img, "--max-queue=2",
                        "--disable-logging"])
    st, _, data = s.request("POST", "/predict/img", bomb.read_bytes())
    assert st == 200, data  # within the default pixel limit: it is a real, valid image
    # Other engineers' builds share this 2-core machine and its load swings from
    # second to second: measure the baseline right before each loaded run, and
    # allow up to three rounds. The regression this guards against (decoding on
    # the loop) puts p99 in the seconds in every round.
    counts, rounds = {}, []
    for _ in range(3):
        base = _hello_latencies(s.port, 400, 0.005)
        loader = procs.start([sys.executable, "-c", LOADER, str(s.port), str(bomb), "4.5"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert loader.stdout.readline().strip() == "started"
        time.sleep(0.5)  # all four clients are looping
        loaded = _hello_latencies(s.port, 400, 0.005)
        out, err = loader.communicate(timeout=120)
        for k, v in json.loads(out.strip().splitlines()[-1]).items():
            counts[k] = counts.get(k, 0) + v
        rounds.append((_p99(base), _p99(loaded)))
        if rounds[-1][1] <= rounds[-1][0] + 0.050:
            break
    msg = "hello p99 under the PNG bomb vs before, per round (ms): %s; bomb answers %s" % (
        ["%.1f vs %.1f" % (l * 1e3, b * 1e3) for b, l in rounds], counts)
    print(msg)
    assert rounds[-1][1] <= rounds[-1][0] + 0.050, msg
    assert counts.get("200", 0) >= 2, msg  # the bomb is decoded and classified
    assert counts.get("503+retry", 0) >= 1, msg  # the excess is shed
    assert not set(counts) - {"200", "503+retry"}, msg
    t = s.metrics()
    assert K.metric(t, "aiserve_model_request_failure_total", "img", ',reason="REJECTED"') >= 1


def test_big_json_tensors_parse_off_the_loop(tmp_path, procs):
    """A MobileNet-sized JSON body (~1.5 MB of text) still answers right."""
    tiny, w, b = K.make_tiny(str(tmp_path / "tiny.onnx"))
    s = K.start(procs, ["--processes=1", "--model=tiny=" + tiny, "--max-batch-size=1024"])
    x = np.random.default_rng(3).standard_normal((1024, 4)).astype(np.float32)
    st, hd, data = s.request("POST", "/v2/models/tiny/infer", K.v2_json_request([("x", x)]))
    assert st == 200, data[:300]
    y = K.decode_v2(hd, data)[1]["y"]
    np.testing.assert_allclose(y, x @ w + b, rtol=1e-5, atol=1e-5)
