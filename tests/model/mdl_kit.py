"""Helpers for the model-serving black-box tests: small ONNX models made on
the fly with onnx.helper, an aiserve launcher, and a tiny KServe v2 client
(JSON and Triton's binary extension) over http.client."""
import http.client
import io
import json
import os
import re
import struct
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from harness import binary, free_port, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MOBILENET = os.path.join(ROOT, "models", "mobilenetv2-160.onnx")


def _save(graph, path, opset=13):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def make_tiny(path, seed=0):
    """x[N,4] -> Gemm -> y[N,3], p = Softmax(y). Returns (path, W, b)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "B"], ["y"]),
         helper.make_node("Softmax", ["y"], ["p"], axis=1)],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    return _save(g, path), w, b


def make_two_inputs(path):
    """a[N,4], b[N,4] -> sum = a + b, prod = a * b."""
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["prod"])],
        "two",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("prod", TensorProto.FLOAT, ["N", 4])])
    return _save(g, path)


def make_image_classifier(path, side=8, channels=1, classes=10, seed=1):
    """image[N,C,side,side] -> Flatten -> Gemm -> logits[N,classes]."""
    rng = np.random.default_rng(seed)
    k = channels * side * side
    w = rng.standard_normal((k, classes)).astype(np.float32)
    b = rng.standard_normal(classes).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "W", "B"], ["logits"])],
        "imgcls",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", channels, side, side])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    return _save(g, path), w, b


def make_fixed_batch(path):
    """x[2,4] (batch fixed at 2) -> Relu -> y[2,4]."""
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])])
    return _save(g, path)


class Server:
    def __init__(self, proc, port):
        self.proc, self.port = proc, port

    def request(self, method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def json(self, method, path, obj=None):
        body = None if obj is None else json.dumps(obj).encode()
        st, hd, data = self.request(method, path, body,
                                    {"Content-Type": "application/json"} if body else {})
        return st, (json.loads(data) if data else None)

    def metrics(self):
        st, _, data = self.request("GET", "/metrics")
        assert st == 200
        return data.decode()


def metric(text, name, model, extra=""):
    """The value of one metric line (summed if several match), or None."""
    pat = re.compile(r"^%s\{model=\"%s\"%s\} (\S+)$" % (re.escape(name), re.escape(model),
                                                      re.escape(extra)), re.M)
    vals = [float(v) for v in pat.findall(text)]
    return sum(vals) if vals else None


def start(procs, args, ready=True, timeout=60):
    """Starts aiserve on a free port with args (a list of --opt=value)."""
    port = free_port()
    p = procs.start([binary("aiserve"), "--http=127.0.0.1:%d" % port] + args)
    wait_port(port, timeout=timeout, proc=p)
    s = Server(p, port)
    if ready:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st, _, _ = s.request("GET", "/v2/health/ready")
            if st == 200:
                break
            time.sleep(0.05)
        else:
            raise TimeoutError("aiserve not ready")
    return s


def wait_model_ready(s, name, timeout=60):
    """Waits until every worker has warmed up (the core's /health/ready counts them
    in its body even while it answers 503 because another model failed to load)
    and GET /v2/models/NAME/ready answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st, _, data = s.request("GET", "/health/ready")
        body = json.loads(data) if data else {}
        if (body.get("ready_workers") == body.get("workers") and
                s.request("GET", "/v2/models/%s/ready" % name)[0] == 200):
            return
        time.sleep(0.05)
    raise TimeoutError("model %s not ready" % name)


def v2_json_request(inputs, outputs=None, rid=None, binary_output=False):
    """inputs: list of (name, np.ndarray). Returns the JSON body as bytes."""
    req = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": dtype_name(a),
                       "data": a.flatten().tolist()} for n, a in inputs]}
    if rid is not None:
        req["id"] = rid
    if outputs is not None:
        req["outputs"] = outputs
    if binary_output:
        req["parameters"] = {"binary_data_output": True}
    return json.dumps(req).encode()


def v2_binary_request(inputs, outputs=None, rid=None):
    """Triton's binary extension: JSON header, then raw tensors. Returns (body, headers)."""
    req = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": dtype_name(a),
                       "parameters": {"binary_data_size": a.nbytes}} for n, a in inputs]}
    if rid is not None:
        req["id"] = rid
    if outputs is not None:
        req["outputs"] = outputs
    head = json.dumps(req).encode()
    body = head + b"".join(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
                           for _, a in inputs)
    return body, {"Inference-Header-Content-Length": str(len(head)),
                  "Content-Type": "application/octet-stream"}


DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32,
          "BOOL": np.bool_, "UINT8": np.uint8}


def dtype_name(a):
    for k, v in DTYPES.items():
        if a.dtype == v:
            return k
    raise ValueError(a.dtype)


def decode_v2(headers, data):
    """Returns (json header, {name: np.ndarray}) from a v2 response (JSON or binary)."""
    hl = headers.get("Inference-Header-Content-Length")
    if hl is None:
        head, rest = json.loads(data), b""
    else:
        head, rest = json.loads(data[:int(hl)]), data[int(hl):]
    out, off = {}, 0
    for o in head["outputs"]:
        dt = DTYPES[o["datatype"]]
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            out[o["name"]] = np.frombuffer(rest[off:off + size], dtype=dt).reshape(o["shape"])
            off += size
        else:
            out[o["name"]] = np.array(o["data"], dtype=dt).reshape(o["shape"])
    assert off == len(rest), "unclaimed binary bytes in the response"
    return head, out


def png_bytes(arr):
    from PIL import Image
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "PNG")
    return b.getvalue()


def jpeg_bytes(arr, quality=95):
    from PIL import Image
    b = io.BytesIO()
    Image.fromarray(arr).save(b, "JPEG", quality=quality)
    return b.getvalue()


# Batched vs unbatched outputs without batch-invariant: a batch runs the oneDNN
# primitives built for its size, which may block and sum in another order (on
# AVX2 and SSE4.1 they do; on AVX-512 they happen not to), so outputs agree
# within float rounding only. Measured on MobileNetV2: 3.8e-7 (AVX2) and 4.7e-7
# (SSE4.1) of the largest output; the bound leaves a 20x margin.
BATCH_TOL = 1e-5


def assert_batch_close(got, want, what=""):
    """|got - want| <= BATCH_TOL * max|want|, elementwise."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    scale = max(float(np.abs(want).max()), 1e-30)
    worst = float(np.abs(got - want).max())
    assert worst <= BATCH_TOL * scale, "%s: max difference %.3g > %g x largest output %.3g" % (
        what, worst, BATCH_TOL, scale)
