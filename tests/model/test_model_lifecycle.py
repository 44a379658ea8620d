"""Model loading and the process model: need-app with a model that fails to
load (start-up refused with the reason) and without it (that model 503, the
rest serve); lazy-apps; the article's model-route; /metrics; bad options;
engine errors answered 500 while the worker keeps serving."""
import json
import subprocess

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import mdl_kit as K
from harness import binary, free_port


def _run_to_exit(args, timeout=30):
    return subprocess.run([binary("aiserve"), "--http=127.0.0.1:%d" % free_port()] + args,
                          capture_output=True, text=True, timeout=timeout)


def test_need_app_refuses_start_naming_the_model_and_reason(tmp_path):
    good, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"this is not protobuf \x00\xff" * 10)
    r = _run_to_exit(["--need-app", "--model=tiny=" + good, "--model=broken=" + str(bad)])
    assert r.returncode != 0
    assert "broken" in r.stderr and str(bad) in r.stderr, r.stderr
    r = _run_to_exit(["--need-app", "--model=gone=" + str(tmp_path / "missing.onnx")])
    assert r.returncode != 0 and "gone" in r.stderr and "missing.onnx" in r.stderr, r.stderr


def test_without_need_app_a_broken_model_answers_503_and_the_rest_serve(tmp_path, procs):
    good, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x08\x07" + b"\xff" * 64)
    s = K.start(procs, ["--processes=2", "--model=tiny=" + good, "--model=broken=" + str(bad)],
                ready=False)
    K.wait_model_ready(s, "tiny")
    st, err = s.json("POST", "/v2/models/broken/infer", {"inputs": []})
    assert st == 503 and "model 'broken' is not available" in err["error"], err
    assert s.request("GET", "/v2/models/broken/ready")[0] == 400
    assert s.request("GET", "/v2/models/tiny/ready")[0] == 200
    st, _, _ = s.request("POST", "/v2/models/tiny/infer",
                         K.v2_json_request([("x", np.ones((1, 4), np.float32))]))
    assert st == 200
    t = s.metrics()
    assert 'aiserve_model_loaded{model="broken"} 0' in t
    assert 'aiserve_model_loaded{model="tiny"} 1' in t


@pytest.mark.parametrize("lazy", [False, True])
def test_both_workers_serve_with_and_without_lazy_apps(tmp_path, procs, lazy):
    good, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    s = K.start(procs, ["--processes=2", "--model=tiny=" + good, "--lazy-apps=%s" % str(lazy).lower()])
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    outs = set()
    for _ in range(20):
        st, hd, data = s.request("POST", "/v2/models/tiny/infer", K.v2_json_request([("x", x)]))
        assert st == 200
        outs.add(K.decode_v2(hd, data)[1]["y"].tobytes())
    assert len(outs) == 1
    assert K.metric(s.metrics(), "aiserve_model_request_success_total", "tiny") >= (20 if not lazy else 1)


def test_model_route_is_the_articles_hello_world(procs):
    s = K.start(procs, ["--processes=2", "--model=mnv2=" + K.MOBILENET, "--model-route=/=mnv2"])
    for _ in range(5):
        st, hd, data = s.request("GET", "/")
        assert st == 200 and data == b"Hello, World!"
        assert hd["Content-Type"].startswith("text/plain")
    assert s.request("POST", "/", b"x")[0] == 405
    assert s.request("GET", "/elsewhere")[0] == 404
    t = s.metrics()
    assert K.metric(t, "aiserve_model_request_success_total", "mnv2") == 5
    assert K.metric(t, "aiserve_model_inference_count_total", "mnv2") == 5


@pytest.mark.parametrize("opt,needle", [
    ("--max-batch-size=0", "max-batch-size"),
    ("--max-batch-size=other=3", "names no model"),
    ("--batch-delay-us=soon", "batch-delay-us"),
    ("--batch-invariant=maybe", "batch-invariant"),
    ("--image-mean=1,2", "image-mean"),
    ("--image-std=0", "image-std"),
    ("--image-layout=chwn", "image-layout"),
    ("--model-threads=257", "option 'model-threads': '257' is not valid"),
    ("--max-queue=0", "option 'max-queue'"),
    ("--max-sequence=tiny=x", "option 'max-sequence': 'tiny=x' is not valid"),
    ("--model-timeout-ms=-1", "option 'model-timeout-ms'"),
    ("--image-size=3x", "option 'image-size'"),
    ("--image-scale=big", "option 'image-scale'"),
    ("--model-route=nopath=tiny", "model-route"),
    ("--model-route=/x=ghost", "model-route"),
])
def test_bad_model_options_refuse_start_naming_the_option(tmp_path, opt, needle):
    good, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    r = _run_to_exit(["--need-app", "--model=tiny=" + good, opt])
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr


def test_bad_model_spec_refuses_start(tmp_path):
    for spec in ("noequals", "=x.onnx", "bad name=x.onnx"):
        r = _run_to_exit(["--need-app", "--model=" + spec])
        assert r.returncode != 0 and "model" in r.stderr, (spec, r.stderr)


def _gather_model(tmp_path):
    # Gather rows of a constant by an INT64 input: index 99 fails inside the engine.
    g = helper.make_graph(
        [helper.make_node("Gather", ["W", "idx"], ["y"], axis=0)], "gather",
        [helper.make_tensor_value_info("idx", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(np.arange(40, dtype=np.float32).reshape(10, 4), "W")])
    return K._save(g, str(tmp_path / "gather.onnx"))


def test_an_index_out_of_range_is_400_naming_the_input_and_the_worker_keeps_serving(
        tmp_path, procs):
    path = _gather_model(tmp_path)
    good, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    s = K.start(procs, ["--processes=1", "--model=g=" + path, "--model=tiny=" + good])
    bad = K.v2_json_request([("idx", np.array([1, 99], np.int64))])
    ok = K.v2_json_request([("idx", np.array([3, 0], np.int64))])
    for _ in range(3):
        st, _, data = s.request("POST", "/v2/models/g/infer", bad)
        assert st == 400, data
        err = json.loads(data)["error"]
        assert "input 'idx'" in err and "99" in err and "out of range" in err, err
        st, hd, data = s.request("POST", "/v2/models/g/infer", ok)
        assert st == 200
        np.testing.assert_array_equal(K.decode_v2(hd, data)[1]["y"],
                                      np.arange(40, dtype=np.float32).reshape(10, 4)[[3, 0]])
        assert s.request("POST", "/v2/models/tiny/infer", K.v2_json_request(
            [("x", np.ones((1, 4), np.float32))]))[0] == 200
    t = s.metrics()
    assert K.metric(t, "aiserve_model_request_failure_total", "g", ',reason="BAD_INPUT"') == 3
    assert K.metric(t, "aiserve_model_request_failure_total", "g", ',reason="BACKEND"') == 0


def test_a_bad_index_in_a_batch_fails_only_its_own_request(tmp_path, procs):
    import concurrent.futures as cf
    path = _gather_model(tmp_path)
    # a batch leaves after 300 ms: the three requests below share one
    s = K.start(procs, ["--processes=1", "--model=g=" + path, "--max-batch-size=8",
                        "--batch-delay-us=300000"])
    bodies = [K.v2_json_request([("idx", np.array(v, np.int64))]) for v in ([2], [1, 50], [7])]
    with cf.ThreadPoolExecutor(3) as ex:
        res = list(ex.map(lambda b: s.request("POST", "/v2/models/g/infer", b), bodies))
    assert [r[0] for r in res] == [200, 400, 200], res
    assert b"input 'idx'" in res[1][2] and b"50" in res[1][2]
    w = np.arange(40, dtype=np.float32).reshape(10, 4)
    np.testing.assert_array_equal(K.decode_v2(res[0][1], res[0][2])[1]["y"], w[[2]])
    np.testing.assert_array_equal(K.decode_v2(res[2][1], res[2][2])[1]["y"], w[[7]])


def test_fixed_batch_model_takes_exactly_its_batch(tmp_path, procs):
    path = K.make_fixed_batch(str(tmp_path / "fixed.onnx"))
    s = K.start(procs, ["--processes=1", "--model=f=" + path, "--model-route=/zero=f",
                        "--max-batch-size=8"])
    st, m = s.json("GET", "/v2/models/f")
    assert m["inputs"][0]["shape"] == [2, 4]
    x = np.array([[-1, 2, -3, 4], [5, -6, 7, -8]], np.float32)
    st, hd, data = s.request("POST", "/v2/models/f/infer", K.v2_json_request([("x", x)]))
    assert st == 200, data
    np.testing.assert_array_equal(K.decode_v2(hd, data)[1]["y"], np.maximum(x, 0))
    st, err = s.json("POST", "/v2/models/f/infer", json.loads(K.v2_json_request([("x", x[:1])])))
    assert st == 400 and "shape [1,4], but the model expects [2,4]" in err["error"]
    assert s.request("GET", "/zero")[2] == b"Hello, World!"
    st, _, data = s.request("POST", "/predict/f", K.png_bytes(np.zeros((8, 8), np.uint8)))
    assert st == 400


def test_a_taken_route_refuses_start_with_need_app(tmp_path):
    good, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    r = _run_to_exit(["--need-app", "--model=t=" + good, "--model-route=/a=t",
                      "--model-route=/a=t"])
    assert r.returncode != 0 and "path /a is already taken" in r.stderr, r.stderr
