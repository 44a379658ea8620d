"""server-timing = true on the model server: the core's queue/app figures and
the batch's own (the batcher's queue, compute, batch size), in headers."""
import concurrent.futures as cf
import http.client
import re

import numpy as np

import mdl_kit as K


def test_model_responses_carry_batch_timing(tmp_path, procs):
    path, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    s = K.start(procs, ["--processes=1", "--model=tiny=" + path, "--max-batch-size=8",
                        "--batch-delay-us=20000", "--server-timing"])
    x = np.ones((1, 4), np.float32)
    b, h = K.v2_binary_request([("x", x)])
    def infer():
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        try:
            c.request("POST", "/v2/models/tiny/infer", body=b, headers=h)
            r = c.getresponse()
            r.read()
            return r.status, r.getheader("Server-Timing"), None  # several headers joined
        finally:
            c.close()

    with cf.ThreadPoolExecutor(8) as ex:
        res = [f.result() for f in [ex.submit(infer) for _ in range(8)]]
    sizes = []
    for st, hd, _ in res:
        assert st == 200
        timing = hd
        assert timing
        assert re.search(r"queue;dur=0\.000, app;dur=[\d.]+", timing), timing
        m = re.search(r"batch-queue;dur=([\d.]+), compute;dur=([\d.]+), batch;desc=(\d+)", timing)
        assert m, timing
        sizes.append(int(m.group(3)))
        assert float(m.group(2)) >= 0
    assert max(sizes) > 1, sizes  # concurrent requests shared batches
    assert all(1 <= n <= 8 for n in sizes)
