"""Dynamic batching: concurrent requests share batches (average batch > 1)
and every batched response equals the unbatched one: bit for bit with
batch-invariant (the code guarantees it), within K.BATCH_TOL of the largest
output without (oneDNN picks other kernels per batch size); the bounded queue
answers 503 + Retry-After; queued requests time out with 503."""
import concurrent.futures as cf
import json
import socket
import time

import numpy as np
import pytest

import mdl_kit as K


def _metrics(s, model):
    t = s.metrics()
    return (K.metric(t, "aiserve_model_inference_count_total", model),
            K.metric(t, "aiserve_model_execution_count_total", model))


@pytest.mark.parametrize("invariant", [False, True], ids=["default", "batch-invariant"])
def test_tiny_model_batches_under_32_clients_and_answers_equal_unbatched(tmp_path, procs,
                                                                          invariant):
    path, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    inv = ["--batch-invariant=%s" % str(invariant).lower()]
    s = K.start(procs, ["--processes=1", "--model=tiny=" + path, "--max-batch-size=32",
                        "--batch-delay-us=20000"] + inv)
    rng = np.random.default_rng(11)
    xs = [rng.standard_normal((1 + i % 2, 4)).astype(np.float32) for i in range(96)]
    reqs = [K.v2_binary_request([("x", x)], outputs=[
        {"name": "y", "parameters": {"binary_data": True}}]) for x in xs]
    with cf.ThreadPoolExecutor(32) as ex:
        futs = [ex.submit(s.request, "POST", "/v2/models/tiny/infer", b, h) for b, h in reqs]
        batched = [f.result() for f in futs]
    inf, ex_count = _metrics(s, "tiny")
    assert all(st == 200 for st, _, _ in batched)
    assert ex_count and inf / ex_count > 1.0, "average batch %s/%s" % (inf, ex_count)
    s2 = K.start(procs, ["--processes=1", "--model=tiny=" + path, "--max-batch-size=2"] + inv)
    for i, ((st, hd, data), (b, h)) in enumerate(zip(batched, reqs)):
        st2, hd2, data2 = s2.request("POST", "/v2/models/tiny/infer", b, h)
        assert st2 == 200
        got, want = K.decode_v2(hd, data)[1]["y"], K.decode_v2(hd2, data2)[1]["y"]
        if invariant:  # guaranteed by the code: every sample ran alone on the batch-1 kernels
            assert got.tobytes() == want.tobytes(), (i, np.abs(got - want).max())
        else:
            K.assert_batch_close(got, want, "request %d" % i)


@pytest.mark.parametrize("invariant", [False, True], ids=["default", "batch-invariant"])
def test_mobilenet_batches_and_matches_unbatched(procs, invariant):
    s = K.start(procs, ["--processes=1", "--model=mnv2=" + K.MOBILENET, "--max-batch-size=8",
                        "--batch-delay-us=5000",
                        "--batch-invariant=%s" % str(invariant).lower()])
    rng = np.random.default_rng(12)
    reqs = [K.v2_binary_request([("input", rng.standard_normal((1, 3, 160, 160)).astype(
        np.float32))], outputs=[{"name": "logits", "parameters": {"binary_data": True}}])
        for _ in range(48)]
    with cf.ThreadPoolExecutor(32) as ex:
        futs = [ex.submit(s.request, "POST", "/v2/models/mnv2/infer", b, h) for b, h in reqs]
        batched = [f.result() for f in futs]
    assert all(st == 200 for st, _, _ in batched), [d[:200] for st, _, d in batched if st != 200]
    inf, ex_count = _metrics(s, "mnv2")
    assert inf / ex_count > 1.0
    for i, ((st, hd, data), (b, h)) in enumerate(zip(batched[:16], reqs[:16])):
        st2, hd2, data2 = s.request("POST", "/v2/models/mnv2/infer", b, h)  # alone: batch 1
        got = K.decode_v2(hd, data)[1]["logits"]
        want = K.decode_v2(hd2, data2)[1]["logits"]
        if invariant:  # bit for bit, on any ISA: the code runs each sample alone
            assert got.tobytes() == want.tobytes(), (i, np.abs(got - want).max())
        else:  # other kernels for other batch sizes: equal within float rounding
            K.assert_batch_close(got, want, "request %d" % i)


def test_full_queue_is_503_with_retry_after(tmp_path, procs):
    path, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    # a batch only leaves after 3 s (or when 64 samples wait): queued requests stay queued
    s = K.start(procs, ["--processes=1", "--model=tiny=" + path, "--max-batch-size=64",
                        "--batch-delay-us=3000000", "--max-queue=2"])
    body = K.v2_json_request([("x", np.ones((1, 4), np.float32))])
    with cf.ThreadPoolExecutor(3) as ex:
        first = [ex.submit(s.request, "POST", "/v2/models/tiny/infer", body) for _ in range(2)]
        deadline = time.monotonic() + 10
        while K.metric(s.metrics(), "aiserve_model_pending_requests", "tiny") != 2:
            assert time.monotonic() < deadline, "the first two requests never queued"
            time.sleep(0.02)
        st, hd, data = s.request("POST", "/v2/models/tiny/infer", body)
        assert st == 503, data
        assert hd.get("Retry-After") == "1"
        assert "Exceeds maximum queue size" in json.loads(data)["error"]
        assert all(f.result()[0] == 200 for f in first)
    t = s.metrics()
    assert K.metric(t, "aiserve_model_request_failure_total", "tiny", ',reason="REJECTED"') == 1
    assert K.metric(t, "aiserve_model_pending_requests", "tiny") == 0


def test_queued_past_model_timeout_is_503(tmp_path, procs):
    path, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    s = K.start(procs, ["--processes=1", "--model=tiny=" + path, "--max-batch-size=64",
                        "--batch-delay-us=4000000", "--model-timeout-ms=100"])
    t0 = time.monotonic()
    st, _, data = s.request("POST", "/v2/models/tiny/infer",
                            K.v2_json_request([("x", np.ones((1, 4), np.float32))]))
    assert st == 503 and b"Request timeout expired" in data
    assert time.monotonic() - t0 < 3.5  # failed at its deadline, not when the batch left
    assert K.metric(s.metrics(), "aiserve_model_request_failure_total", "tiny",
                    ',reason="TIMEOUT"') == 1


def test_a_request_whose_client_left_is_not_computed(tmp_path, procs):
    path, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    s = K.start(procs, ["--processes=1", "--model=tiny=" + path, "--max-batch-size=64",
                        "--batch-delay-us=1000000"])
    body = K.v2_json_request([("x", np.ones((1, 4), np.float32))])
    with socket.create_connection(("127.0.0.1", s.port)) as c:
        c.sendall(b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body)
        deadline = time.monotonic() + 10
        while K.metric(s.metrics(), "aiserve_model_pending_requests", "tiny") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    deadline = time.monotonic() + 10
    while K.metric(s.metrics(), "aiserve_model_request_failure_total", "tiny",
                   ',reason="CANCELED"') != 1:
        assert time.monotonic() < deadline, "the abandoned request was not cancelled"
        time.sleep(0.05)
    t = s.metrics()
    assert K.metric(t, "aiserve_model_inference_count_total", "tiny") == 0
    st, _, _ = s.request("POST", "/v2/models/tiny/infer", body)
    assert st == 200


def test_a_request_timeout_parameter_shortens_the_queue_wait(tmp_path, procs):
    path, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    s = K.start(procs, ["--processes=1", "--model=tiny=" + path, "--max-batch-size=64",
                        "--batch-delay-us=3000000"])
    req = json.loads(K.v2_json_request([("x", np.ones((1, 4), np.float32))]))
    req["parameters"] = {"timeout": 50000}
    st, err = s.json("POST", "/v2/models/tiny/infer", req)
    assert st == 503 and "Request timeout expired" in err["error"], err
