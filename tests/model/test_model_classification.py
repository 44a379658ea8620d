"""Triton's classification extension over real HTTP: outputs[].parameters.
classification = K returns, per sample, the top K "score:index:label" strings
as a BYTES output (JSON strings, or length-prefixed in the binary part)."""
import json
import struct

import numpy as np

import mdl_kit as K


def _top(p, k, labels):
    order = np.argsort(-p, kind="stable")[:k]
    return [(float(p[i]), int(i), labels[i] if i < len(labels) else None) for i in order]


def _parse(strings):
    out = []
    for s in strings:
        parts = s.split(":", 2)
        out.append((float(parts[0]), int(parts[1]), parts[2] if len(parts) > 2 else None))
    return out


def test_classification_parameter_returns_top_k_with_labels(tmp_path, procs):
    path, w, b = K.make_tiny(str(tmp_path / "tiny.onnx"))
    labels = tmp_path / "labels.txt"
    labels.write_text("red:ish\nGreen\n")  # a ':' in a label, and class 2 without one
    s = K.start(procs, ["--processes=1", "--model=tiny=" + path, "--labels=tiny=" + str(labels)])
    x = np.random.default_rng(41).standard_normal((3, 4)).astype(np.float32)
    z = x @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    names = ["red:ish", "Green"]
    body = K.v2_json_request([("x", x)], outputs=[
        {"name": "p", "parameters": {"classification": 2}}, {"name": "y"}])
    st, hd, data = s.request("POST", "/v2/models/tiny/infer", body)
    assert st == 200, data
    out = json.loads(data)["outputs"]
    assert out[0]["name"] == "p" and out[0]["datatype"] == "BYTES" and out[0]["shape"] == [3, 2]
    got = _parse(out[0]["data"])
    for row in range(3):
        want = _top(p[row], 2, names)
        for (gs, gi, gl), (ws, wi, wl) in zip(got[2 * row:2 * row + 2], want):
            assert gi == wi and gl == wl and abs(gs - ws) < 1e-5, (got, want)
    assert out[1]["name"] == "y" and out[1]["datatype"] == "FP32"  # unclassified: the tensor
    # binary: K above the class count is capped at it; strings are length-prefixed
    body = K.v2_json_request([("x", x[:1])], outputs=[
        {"name": "y", "parameters": {"classification": 10, "binary_data": True}}])
    st, hd, data = s.request("POST", "/v2/models/tiny/infer", body)
    assert st == 200, data
    hl = int(hd["Inference-Header-Content-Length"])
    head, rest = json.loads(data[:hl]), data[hl:]
    o = head["outputs"][0]
    assert o["datatype"] == "BYTES" and o["shape"] == [1, 3]
    assert o["parameters"]["binary_data_size"] == len(rest)
    strings, off = [], 0
    while off < len(rest):
        (n,) = struct.unpack_from("<I", rest, off)
        strings.append(rest[off + 4:off + 4 + n].decode())
        off += 4 + n
    got = _parse(strings)
    assert [g[1] for g in got] == list(np.argsort(-z[0], kind="stable"))
    assert got[0][2] == (names[got[0][1]] if got[0][1] < 2 else None)
    for gs, gi, _ in got:
        assert abs(gs - z[0][gi]) < 1e-5  # the raw output value, as Triton reports it
    # bad parameter values are 400 naming the output
    for bad in ("2", -1, 1.5):
        body = K.v2_json_request([("x", x[:1])], outputs=[
            {"name": "p", "parameters": {"classification": bad}}])
        st, _, data = s.request("POST", "/v2/models/tiny/infer", body)
        assert st == 400 and b"output 'p'" in data and b"classification" in data, data
