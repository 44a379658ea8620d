"""`import aiserve` in a Flask app hosted by aiserve: aiserve.infer / classify /
models against the server's own models, through the worker's batcher.

Every test starts the real server with a real Flask app (apps/native_app.py)
and real ONNX models (MobileNetV2, and small ones built with onnx.helper).
"""
import http.client
import io
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from harness import binary, free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "model"))
import mdl_kit as K  # noqa: E402

APPS = os.path.join(HERE, "apps")
PY = "/usr/bin/python3"


class Srv:
    def __init__(self, proc, port, log):
        self.proc, self.port, self.log = proc, port, log

    def request(self, method, path, body=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def infer(self, path, x):
        """POSTs x (an array, or a dict of them) to the app; (status, outputs or error JSON)."""
        b = io.BytesIO()
        np.savez(b, **x) if isinstance(x, dict) else np.save(b, x)
        st, _, data = self.request("POST", path, b.getvalue())
        if st != 200:
            return st, json.loads(data)
        z = np.load(io.BytesIO(data))
        return st, {k: z[k] for k in z.files}

    def json(self, path):
        st, _, data = self.request("GET", path)
        assert st == 200, data[:300]
        return json.loads(data)

    def logs(self):
        with open(self.log, errors="replace") as f:
            return f.read()


def start(procs, tmp_path, models, options=(), timeout=120):
    """aiserve with native_app at / and models [(name, path)]; waits until the
    models are warm in every worker and the app answers."""
    port = free_port()
    lines = ["[uwsgi]", "http = 127.0.0.1:%d" % port, "pythonpath = %s" % APPS,
             "module = native_app:app", "need-app = true", "builtins = metrics"]
    lines += ["model = %s=%s" % m for m in models]
    lines += ["%s = %s" % kv for kv in options]
    ini = tmp_path / "native.ini"
    ini.write_text("\n".join(lines) + "\n")
    log = str(tmp_path / "server.log")
    p = procs.start([binary("aiserve"), str(ini)], cwd=str(tmp_path), stdout=subprocess.DEVNULL,
                    stderr=open(log, "w"))
    s = Srv(p, port, log)
    try:
        wait_port(port, timeout=timeout, proc=p)
        deadline = time.monotonic() + timeout
        while True:
            st, _, _ = s.request("GET", "/v2/health/ready")
            if st == 200 and s.request("GET", "/models")[0] == 200:
                return s
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.2)
    except BaseException:
        raise AssertionError("aiserve did not start:\n" + s.logs()[-3000:])


@pytest.fixture
def small(tmp_path):
    """tiny (x[N,4] -> y, p), two (a, b -> sum, prod), img (an 8x8 grey classifier)."""
    tiny, w, b = K.make_tiny(str(tmp_path / "tiny.onnx"))
    two = K.make_two_inputs(str(tmp_path / "two.onnx"))
    img, iw, ib = K.make_image_classifier(str(tmp_path / "img.onnx"))
    return {"models": [("tiny", tiny), ("two", two), ("img", img)], "w": w, "b": b}


def tiny_ref(small, x):
    y = x.astype(np.float64) @ small["w"] + small["b"]
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return y, e / e.sum(axis=1, keepdims=True)


def close(got, want, what):
    # the engine's tolerance (docs/serving.md, "Batching and numerics"): 1e-5 of the largest magnitude
    tol = 1e-5 * max(1.0, float(np.abs(want).max()))
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert np.abs(got.astype(np.float64) - want).max() <= tol, what


def test_mobilenet_matches_aiinfer_run(tmp_path, procs):
    inp = K.MOBILENET.replace(".onnx", "-input.npy")
    out = tmp_path / "logits.npy"
    r = subprocess.run([binary("aiinfer"), "run", K.MOBILENET, "--input", inp, "--output", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    want = np.load(out).astype(np.float64)
    s = start(procs, tmp_path, [("mnv2", K.MOBILENET)], [("processes", 1), ("threads", 2)])
    x = np.load(inp).astype(np.float32)
    st, got = s.infer("/infer/mnv2", {"input": x})
    assert st == 200, got
    assert list(got) == ["logits"] and got["logits"].dtype == np.float32
    close(got["logits"], want, "logits")
    # a batch of 3 (the same sample thrice): each row within tolerance of batch 1
    st, got = s.infer("/infer/mnv2", np.concatenate([x, x, x]))
    assert st == 200, got
    for i in range(3):
        close(got["logits"][i:i + 1], want, "row %d" % i)
    m = s.json("/models")
    assert m["import_models"] == ["mnv2"]  # models load before the app is imported
    info = m["models"]["mnv2"]
    assert info["inputs"] == [{"name": "input", "datatype": "FP32", "dtype": "float32",
                               "shape": [-1, 3, 160, 160]}]
    assert info["outputs"][0]["name"] == "logits" and info["outputs"][0]["shape"] == [-1, 1000]
    assert info["ready"] is True and info["classify"] is True and info["error"] is None


def test_many_threads_batch_together(tmp_path, procs, small):
    # One worker, 8 app threads, 8 clients: the requests meet in the batcher.
    s = start(procs, tmp_path, small["models"],
              [("processes", 1), ("threads", 8), ("batch-delay-us", 20000), ("max-batch-size", 8)])
    errors, results = [], {}
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((1 + i % 3, 4)).astype(np.float32) for i in range(64)]

    def client(k):
        for i in range(k, len(xs), 8):
            st, got = s.infer("/infer/tiny", xs[i])
            if st != 200:
                errors.append(got)
            else:
                results[i] = got

    ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    [t.start() for t in ts]
    [t.join(180) for t in ts]
    assert not errors, errors[:3]
    assert len(results) == len(xs)
    for i, x in enumerate(xs):  # every answer is its own request's, not a neighbour's
        y, p = tiny_ref(small, x)
        close(results[i]["y"], y, "y %d" % i)
        close(results[i]["p"], p, "p %d" % i)
    text = s.request("GET", "/metrics")[2].decode()
    inf = K.metric(text, "aiserve_model_inference_count_total", "tiny")
    exe = K.metric(text, "aiserve_model_execution_count_total", "tiny")
    ok = K.metric(text, "aiserve_model_request_success_total", "tiny")
    assert ok == len(xs) and inf == sum(len(x) for x in xs)
    # the same metrics as HTTP requests, and batching visible: fewer runs than requests (two
    # requests of one worker share a batch only if the GIL is released while they wait)
    assert exe < len(xs), (inf, exe)


def test_input_errors_are_value_errors_and_4xx(tmp_path, procs, small):
    s = start(procs, tmp_path, small["models"], [("processes", 1), ("threads", 2)])
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    y, _ = tiny_ref(small, x)
    for view in ("float64", "bigendian"):
        st, e = s.infer("/infer/tiny?view=" + view, x)
        assert st == 400 and e["type"] == "InvalidInput" and e["valueerror"], e
    st, e = s.infer("/infer/tiny?view=float64", x)
    assert "float64" in e["error"] and "astype(numpy.float32)" in e["error"], e
    st, e = s.infer("/infer/tiny?view=bigendian", x)
    assert "big-endian" in e["error"], e
    st, e = s.infer("/infer/tiny", np.zeros((2, 5), np.float32))
    assert st == 400 and "[2,5]" in e["error"] and "[N,4]" in e["error"], e
    st, e = s.infer("/infer/tiny", np.zeros((9, 4), np.float32))  # past max-batch-size 8
    assert st == 400 and "max-batch-size" in e["error"], e
    st, e = s.infer("/infer/two", {"a": x})
    assert st == 400 and "2 inputs" in e["error"], e
    st, e = s.infer("/infer/two", {"a": x, "c": x})
    assert st == 400 and "unknown input 'c'" in e["error"], e
    st, e = s.infer("/infer/tiny?outputs=nope", x)
    assert st == 400 and "unknown output 'nope'" in e["error"], e
    st, e = s.infer("/infer/nope", x)
    assert st == 404 and e["type"] == "ModelNotFound" and "unknown model 'nope'" in e["error"], e
    st, _, e = s.request("POST", "/classify/tiny", b"\x89PNG\r\n\x1a\n")
    assert st == 400 and "does not take an image" in json.loads(e)["error"]
    st, _, e = s.request("POST", "/classify/img", b"not an image")
    assert st == 400 and "JPEG or PNG" in json.loads(e)["error"]
    # what does fit: a non-contiguous view (copied), a list (converted), a subset of outputs
    for view in ("transpose", "list"):
        st, got = s.infer("/infer/tiny?view=" + view, x)
        assert st == 200, got
        close(got["y"], y, view)
    st, got = s.infer("/infer/tiny?outputs=p", x)
    assert st == 200 and list(got) == ["p"]
    st, got = s.infer("/infer/two", {"b": x, "a": x + 1})
    assert st == 200
    np.testing.assert_array_equal(got["sum"], x + x + 1)
    np.testing.assert_array_equal(got["prod"], x * (x + 1))
    # the model's 4xx count includes the app's refusals, as for HTTP
    text = s.request("GET", "/metrics")[2].decode()
    bad = K.metric(text, "aiserve_model_request_failure_total", "tiny", ',reason="BAD_INPUT"')
    assert bad >= 6, bad


def test_queue_full_and_timeout_are_exceptions(tmp_path, procs, small):
    # max-queue 1 and a 3 s batch delay: a second request finds the queue full
    s = start(procs, tmp_path, small["models"],
              [("processes", 1), ("threads", 4), ("max-queue", 1), ("batch-delay-us", 3000000)])
    x = np.ones((1, 4), np.float32)
    first = {}
    t = threading.Thread(target=lambda: first.update(r=s.infer("/infer/tiny", x)))
    t.start()
    time.sleep(0.5)
    st, e = s.infer("/infer/tiny", x)
    t.join(60)
    assert st == 503 and e["type"] == "QueueFull" and "max-queue 1" in e["error"], e
    assert first["r"][0] == 200
    text = s.request("GET", "/metrics")[2].decode()
    assert K.metric(text, "aiserve_model_request_failure_total", "tiny", ',reason="REJECTED"') == 1
    # model-timeout-ms shorter than the delay: the job expires in the queue
    t2 = tmp_path / "t2"
    t2.mkdir()
    s = start(procs, t2, small["models"], [("processes", 1), ("model-timeout-ms", 200),
                                          ("batch-delay-us", 3000000)])
    st, e = s.infer("/infer/tiny", x)
    assert st == 500 and e["type"] == "Timeout" and "model-timeout-ms 200" in e["error"], e


def test_classify_equals_predict(tmp_path, procs, small):
    s = start(procs, tmp_path, small["models"], [("processes", 1), ("threads", 2)])
    rng = np.random.default_rng(3)
    png = K.png_bytes((rng.random((20, 20)) * 255).astype(np.uint8))
    st, _, data = s.request("POST", "/classify/img?top_k=3", png)
    assert st == 200, data
    got = json.loads(data)
    st, _, data = s.request("POST", "/predict/img?top_k=3", png)
    assert st == 200, data
    want = json.loads(data)["predictions"]
    assert [g["index"] for g in got] == [w["index"] for w in want]
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want):
        assert abs(g["score"] - w["score"]) <= 1e-6


def test_thread_started_by_the_app(tmp_path, procs, small):
    s = start(procs, tmp_path, small["models"], [("processes", 1), ("threads", 1)])
    x = np.ones((3, 4), np.float32)
    st, got = s.infer("/thread/tiny", x)
    assert st == 200, got
    close(got["y"], tiny_ref(small, x)[0], "y")


def test_infer_at_import_time_in_the_master_raises(tmp_path, procs, small):
    s = start(procs, tmp_path, small["models"], [("processes", 1)])
    m = s.json("/models")
    assert m["import_pid"] != m["pid"]  # imported in the master (preload)
    assert m["import_infer"].startswith("InferenceError") and "workers" in m["import_infer"], m


def test_lazy_apps(tmp_path, procs, small):
    s = start(procs, tmp_path, small["models"],
              [("processes", 2), ("threads", 2), ("lazy-apps", "true")])
    m = s.json("/models")
    assert m["import_pid"] == m["pid"]  # imported in the worker
    assert m["import_models"] == ["img", "tiny", "two"]
    # the worker's batchers start after the app is imported: import-time calls still refuse
    assert m["import_infer"].startswith("InferenceError"), m
    x = np.ones((2, 4), np.float32)
    for _ in range(6):
        st, got = s.infer("/infer/tiny", x)
        assert st == 200, got
        close(got["p"], tiny_ref(small, x)[1], "p")


def test_worker_recycled_mid_flight(tmp_path, procs, small):
    # max-requests 5 with 4 threads: workers exit while other threads wait in infer
    s = start(procs, tmp_path, small["models"],
              [("processes", 1), ("threads", 4), ("max-requests", 5), ("batch-delay-us", 5000)])
    x = np.ones((1, 4), np.float32)
    want = tiny_ref(small, x)[0]
    bad, done = [], []
    lock = threading.Lock()

    def client():
        for _ in range(8):
            # spread over a second or so: a recycled worker serves until its
            # successor is ready, which takes longer than 32 quick requests
            time.sleep(0.1)
            for attempt in range(20):  # a connection refused while the worker restarts is retried
                try:
                    st, got = s.infer("/infer/tiny", x)
                    break
                except (ConnectionError, OSError):
                    time.sleep(0.1)
            else:
                st, got = 0, "no answer"
            with lock:  # recorded, not asserted: an assert in a thread would go unseen
                if st != 200:
                    bad.append((st, got))
                elif np.abs(got["y"] - want).max() > 1e-5 * max(1.0, np.abs(want).max()):
                    bad.append(("wrong y", got["y"]))
                else:
                    done.append(1)

    ts = [threading.Thread(target=client) for _ in range(4)]
    [t.start() for t in ts]
    [t.join(240) for t in ts]
    assert not bad, bad[:3]
    assert len(done) == 32
    assert s.logs().count("worker 1 started") >= 2, s.logs()[-2000:]
    assert "Traceback" not in s.logs()


def test_module_missing_outside_aiserve():
    r = subprocess.run([PY, "-c", "import aiserve"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "ModuleNotFoundError: No module named 'aiserve'" in r.stderr


def test_article_native_example_runs(tmp_path, procs):
    ex = os.path.join(K.ROOT, "examples", "article")
    port = free_port()
    log = str(tmp_path / "server.log")
    p = procs.start([binary("aiserve"), "uwsgi_native.ini", "--http=127.0.0.1:%d" % port],
                    cwd=ex, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    wait_port(port, timeout=120, proc=p)
    s = Srv(p, port, log)
    deadline = time.monotonic() + 120
    while s.request("GET", "/v2/health/ready")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    st, _, data = s.request("GET", "/")
    assert st == 200 and data == b"Hello, World!", data
    b = io.BytesIO()
    np.save(b, np.load(K.MOBILENET.replace(".onnx", "-input.npy")).astype(np.float32))
    st, _, data = s.request("POST", "/infer", b.getvalue())
    ref = np.load(K.MOBILENET.replace(".onnx", "-output.npy"))
    assert st == 200 and json.loads(data)["argmax"] == ref.argmax(axis=1).tolist(), data
    b = io.BytesIO()
    np.save(b, np.zeros((1, 160, 160, 3), np.float32))  # NHWC: the model takes NCHW
    st, _, data = s.request("POST", "/infer", b.getvalue())
    assert st == 400 and b"[N,3,160,160]" in data, data
