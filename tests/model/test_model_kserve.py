"""KServe v2 over REST: metadata, health, JSON and binary round trips,
requested outputs, id echo, and every bad-input case answered 4xx naming the
problem while the worker keeps serving."""
import json
import socket
import subprocess

import numpy as np
import pytest

import mdl_kit as K
from harness import binary


@pytest.fixture
def tiny(tmp_path, procs):
    path, w, b = K.make_tiny(str(tmp_path / "tiny.onnx"))
    two = K.make_two_inputs(str(tmp_path / "two.onnx"))
    s = K.start(procs, ["--processes=1", "--model=tiny=" + path, "--model=two=" + two,
                        "--max-batch-size=4", "--limit-post=1m"])
    s.w, s.b = w, b
    return s


def test_server_and_model_metadata_and_health(tiny):
    st, meta = tiny.json("GET", "/v2")
    assert st == 200 and meta["name"] == "aiserve" and "binary_tensor_data" in meta["extensions"]
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/tiny/ready",
                 "/v2/models/tiny/versions/1/ready"):
        assert tiny.request("GET", path)[0] == 200, path
    st, m = tiny.json("GET", "/v2/models/tiny")
    assert st == 200
    assert m["name"] == "tiny" and m["platform"] == "onnx_onnxv1"
    assert m["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in m["outputs"]] == ["y", "p"]
    st, err = tiny.json("GET", "/v2/models/nope")
    assert st == 404 and "unknown model 'nope'" in err["error"]
    assert tiny.request("GET", "/v2/models/tiny/versions/2")[0] == 404
    assert tiny.request("GET", "/v2/models/nope/ready")[0] == 404
    st, hd, _ = tiny.request("GET", "/v2/models/tiny/infer")
    assert st == 405 and hd.get("Allow") == "POST"


def test_json_and_binary_round_trips_agree_bit_for_bit(tiny):
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    st, hd, data = tiny.request("POST", "/v2/models/tiny/infer",
                                K.v2_json_request([("x", x)], rid="req-7"))
    assert st == 200, data
    head, out_json = K.decode_v2(hd, data)
    assert head["id"] == "req-7" and head["model_name"] == "tiny"
    assert out_json["y"].shape == (3, 3) and out_json["p"].shape == (3, 3)
    body, hdrs = K.v2_binary_request([("x", x)], outputs=[
        {"name": "y", "parameters": {"binary_data": True}},
        {"name": "p", "parameters": {"binary_data": True}}])
    st, hd, data = tiny.request("POST", "/v2/models/tiny/infer", body, hdrs)
    assert st == 200, data
    assert hd["Content-Type"] == "application/octet-stream"
    head, out_bin = K.decode_v2(hd, data)
    assert "id" not in head
    for k in ("y", "p"):
        assert out_json[k].tobytes() == out_bin[k].tobytes(), k
    ref = x @ tiny.w + tiny.b
    np.testing.assert_allclose(out_json["y"], ref, rtol=1e-5, atol=1e-5)
    e = np.exp(ref - ref.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out_json["p"], e / e.sum(axis=1, keepdims=True), rtol=1e-5,
                               atol=1e-6)


def test_requested_outputs_are_the_only_ones_in_their_order(tiny):
    x = np.ones((1, 4), np.float32)
    st, hd, data = tiny.request("POST", "/v2/models/tiny/infer", K.v2_json_request(
        [("x", x)], outputs=[{"name": "p", "parameters": {"binary_data": True}}, {"name": "y"}]))
    assert st == 200, data
    head, out = K.decode_v2(hd, data)
    assert [o["name"] for o in head["outputs"]] == ["p", "y"]
    assert "data" not in head["outputs"][0] and "data" in head["outputs"][1]
    st, hd, data = tiny.request("POST", "/v2/models/tiny/infer",
                                K.v2_json_request([("x", x)], binary_output=True))
    head, out2 = K.decode_v2(hd, data)
    assert int(hd["Inference-Header-Content-Length"]) < len(data)
    assert out2["p"].tobytes() == out["p"].tobytes()


def test_two_inputs_in_any_order(tiny):
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.full((2, 4), 0.5, np.float32)
    st, hd, data = tiny.request("POST", "/v2/models/two/infer",
                                K.v2_json_request([("b", b), ("a", a)]))
    assert st == 200, data
    _, out = K.decode_v2(hd, data)
    np.testing.assert_array_equal(out["sum"], a + b)
    np.testing.assert_array_equal(out["prod"], a * b)
    st, err = tiny.json("POST", "/v2/models/two/infer", json.loads(
        K.v2_json_request([("a", a)])))
    assert st == 400 and "missing input 'b'" in err["error"]


def _inp(shape=(1, 4), dtype="FP32", data=None, name="x"):
    n = int(np.prod(shape))
    return {"name": name, "shape": list(shape), "datatype": dtype,
            "data": list(range(n)) if data is None else data}


BAD_JSON = [
    ({"inputs": [_inp(name="image")]}, 400, "unknown input 'image'"),
    ({"inputs": [_inp(dtype="INT64")]}, 400, "datatype INT64, but the model expects FP32"),
    ({"inputs": [_inp(dtype="FLOAT")]}, 400, "unknown datatype 'FLOAT'"),
    ({"inputs": [_inp(shape=(1, 5))]}, 400, "shape [1,5], but the model expects [-1,4]"),
    ({"inputs": [_inp(shape=(1, 4, 1))]}, 400, "shape [1,4,1]"),
    ({"inputs": [_inp(data=[1, 2, 3])]}, 400, "shape has 4 elements but data has 3"),
    ({"inputs": [_inp(data=[1, "two", 3, 4])]}, 400,
     'element 1 is a string other than "NaN", "Infinity" or "-Infinity"'),
    ({"inputs": [_inp(data=[1, None, 3, 4])]}, 400, "element 1 is not a number"),
    ({"inputs": [_inp(data=[1, 2, 3, 1e39])]}, 400, "out of range for FP32"),
    ({"inputs": [_inp(shape=(9, 4))]}, 413, "144 bytes exceed the 64-byte limit"),
    ({"inputs": [_inp(shape=(0, 4), data=[])]}, 400, "batch size 0 is outside 1..4"),
    ({"inputs": [_inp()], "outputs": [{"name": "zz"}]}, 400, "unknown output 'zz'"),
    ({"inputs": []}, 400, "'inputs' is empty"),
    ({"id": 12, "inputs": [_inp()]}, 400, "'id' must be a string"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32"}]}, 400, "no 'data'"),
]


@pytest.mark.parametrize("req,status,needle", BAD_JSON, ids=[c[2] for c in BAD_JSON])
def test_bad_json_requests_name_the_problem(tiny, req, status, needle):
    st, err = tiny.json("POST", "/v2/models/tiny/infer", req)
    assert st == status, err
    assert needle in err["error"], err
    # the worker keeps serving
    st, _, _ = tiny.request("POST", "/v2/models/tiny/infer",
                            K.v2_json_request([("x", np.zeros((1, 4), np.float32))]))
    assert st == 200


def test_malformed_bodies_are_400(tiny):
    for body, needle in ((b"{\"inputs\": [", "invalid JSON"), (b"", "invalid JSON"),
                         (b"[1,2]", "must be a JSON object"),
                         (b"{\"inputs\":[1,],}", "invalid JSON")):
        st, hd, data = tiny.request("POST", "/v2/models/tiny/infer", body,
                                    {"Content-Type": "application/json"})
        assert st == 400 and needle in json.loads(data)["error"], (body, data)
        assert hd["Content-Type"] == "application/json"


def test_truncated_and_oversized_binary_bodies(tiny):
    x = np.ones((2, 4), np.float32)
    body, hdrs = K.v2_binary_request([("x", x)])
    st, _, data = tiny.request("POST", "/v2/models/tiny/infer", body[:-3], hdrs)
    assert st == 400 and b"binary data truncated" in data
    st, _, data = tiny.request("POST", "/v2/models/tiny/infer", body + b"xyz", hdrs)
    assert st == 400 and b"not claimed" in data
    bad = dict(hdrs, **{"Inference-Header-Content-Length": str(len(body) + 1)})
    st, _, data = tiny.request("POST", "/v2/models/tiny/infer", body, bad)
    assert st == 400 and b"exceeds" in data
    bad = dict(hdrs, **{"Inference-Header-Content-Length": "12x"})
    st, _, data = tiny.request("POST", "/v2/models/tiny/infer", body, bad)
    assert st == 400 and b"not a number" in data
    head = json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                   "parameters": {"binary_data_size": 31}}]}).encode()
    st, _, data = tiny.request("POST", "/v2/models/tiny/infer", head + b"\0" * 31,
                               {"Inference-Header-Content-Length": str(len(head))})
    assert st == 400 and b"does not match shape and datatype" in data
    # a body over limit-post is refused from its Content-Length, before it is read
    with socket.create_connection(("127.0.0.1", tiny.port), timeout=10) as c:
        c.sendall(b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: %d\r\n\r\n" % (2 << 20))
        assert c.recv(4096).startswith(b"HTTP/1.1 413")
    st, _, _ = tiny.request("POST", "/v2/models/tiny/infer", body, hdrs)
    assert st == 200


def test_mobilenet_json_and_binary_equal_aiinfer_run_exactly(tmp_path, procs):
    # The project's own MobileNetV2 with its seeded input and PyTorch's logits.
    inp = K.MOBILENET.replace(".onnx", "-input.npy")
    x = np.load(inp).astype(np.float32)
    out = tmp_path / "logits.npy"
    r = subprocess.run([binary("aiinfer"), "run", K.MOBILENET, "--input", inp,
                        "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    want = np.load(out)
    s = K.start(procs, ["--processes=1", "--model=mnv2=" + K.MOBILENET, "--max-batch-size=1"])
    st, hd, data = s.request("POST", "/v2/models/mnv2/infer", K.v2_json_request([("input", x)]))
    assert st == 200, data[:300]
    got_json = K.decode_v2(hd, data)[1]["logits"]
    body, hdrs = K.v2_binary_request([("input", x)], outputs=[
        {"name": "logits", "parameters": {"binary_data": True}}])
    st, hd, data = s.request("POST", "/v2/models/mnv2/infer", body, hdrs)
    assert st == 200, data[:300]
    got_bin = K.decode_v2(hd, data)[1]["logits"]
    assert got_json.shape == want.shape == (1, 1000)
    # Bit equality is guaranteed here, on any ISA: aiinfer run and a batch-1
    # request run the same batch-1, 1-thread primitives on the same machine.
    # PyTorch's logits come from other kernels: 1e-5 absolute (logits ~1).
    assert got_json.tobytes() == want.astype(np.float32).tobytes()
    assert got_bin.tobytes() == want.astype(np.float32).tobytes()
    ref = np.load(K.MOBILENET.replace(".onnx", "-output.npy"))
    np.testing.assert_allclose(got_bin.ravel(), ref.ravel(), atol=1e-5)


def test_statistics_extension_counts_requests(tiny):
    x = np.ones((2, 4), np.float32)
    for _ in range(3):
        assert tiny.request("POST", "/v2/models/tiny/infer", K.v2_json_request([("x", x)]))[0] == 200
    tiny.json("POST", "/v2/models/tiny/infer", {"inputs": []})  # one bad input
    st, s = tiny.json("GET", "/v2/models/tiny/stats")
    assert st == 200 and len(s["model_stats"]) == 1
    m = s["model_stats"][0]
    assert m["name"] == "tiny" and m["inference_count"] == 6
    assert m["inference_stats"]["success"]["count"] == 3
    assert m["inference_stats"]["fail"]["count"] == 1
    assert 1 <= m["execution_count"] <= 3
    assert m["inference_stats"]["compute_infer"]["ns"] > 0
    st, s = tiny.json("GET", "/v2/models/stats")
    assert sorted(x["name"] for x in s["model_stats"]) == ["tiny", "two"]
    assert tiny.json("GET", "/v2/models/nope/stats")[0] == 404
