"""Image classification over HTTP: JPEG/PNG decode, resize, normalize,
top-k with labels; every bad image case; the digits model's held-out
accuracy."""
import json
import os

import numpy as np
import pytest

import mdl_kit as K


@pytest.fixture
def cls(tmp_path, procs):
    path, w, b = K.make_image_classifier(str(tmp_path / "img.onnx"))
    labels = tmp_path / "labels.txt"
    labels.write_text("".join("class-%d\n" % i for i in range(10)))
    s = K.start(procs, ["--processes=1", "--model=img=" + path, "--labels=img=" + str(labels),
                        "--image-max-side=256", "--model=tiny=" + K.make_tiny(
                            str(tmp_path / "tiny.onnx"))[0]])
    s.w, s.b = w, b
    return s


def _expected(s, px):
    x = (px.astype(np.float32) / 255.0).reshape(1, -1)
    z = x @ s.w + s.b
    e = np.exp(z - z.max())
    return e[0] / e.sum()


def test_png_top_k_matches_the_model_with_labels(cls):
    px = np.random.default_rng(5).integers(0, 256, (8, 8), dtype=np.uint8)
    st, hd, data = cls.request("POST", "/v2/models/img/classify?top_k=3", K.png_bytes(px),
                               {"Content-Type": "image/png"})
    assert st == 200, data
    res = json.loads(data)
    preds = res["predictions"]
    assert len(preds) == 3
    p = _expected(cls, px)
    order = np.argsort(-p)
    assert [q["index"] for q in preds] == list(order[:3])
    assert preds[0]["label"] == "class-%d" % order[0]
    for q in preds:
        assert abs(q["score"] - p[q["index"]]) < 1e-5
    assert preds[0]["score"] >= preds[1]["score"] >= preds[2]["score"]


def test_jpeg_rgb_is_converted_and_predict_route_agrees(cls):
    px = np.random.default_rng(6).integers(0, 256, (8, 8), dtype=np.uint8)
    rgb = np.stack([px] * 3, axis=-1)
    st, _, d1 = cls.request("POST", "/v2/models/img/classify", K.jpeg_bytes(rgb, 100))
    st2, _, d2 = cls.request("POST", "/predict/img", K.jpeg_bytes(rgb, 100))
    assert st == 200 and st2 == 200
    assert json.loads(d1) == json.loads(d2)
    assert len(json.loads(d1)["predictions"]) == 5  # default top_k


def test_larger_images_are_resized(cls):
    big = np.kron(np.random.default_rng(7).integers(0, 256, (8, 8), dtype=np.uint8),
                  np.ones((4, 4), np.uint8))  # 32x32, every pixel repeated 4x4
    st, _, data = cls.request("POST", "/predict/img?top_k=1", K.png_bytes(big))
    assert st == 200, data
    small = big[::4, ::4]
    assert json.loads(data)["predictions"][0]["index"] == int(np.argmax(_expected(cls, small)))


def test_bad_images_are_4xx_naming_the_problem(cls):
    px = np.random.default_rng(8).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    png, jpg = K.png_bytes(px), K.jpeg_bytes(px)
    corrupt = bytearray(png)
    corrupt[60] ^= 0xFF
    cases = [
        (b"GIF89a not an image at all", 415, "not a JPEG or PNG"),
        (b"", 400, "empty body"),
        (png[: len(png) // 2], 400, "corrupt PNG"),
        (bytes(corrupt), 400, "corrupt PNG"),
        (jpg[: len(jpg) // 2], 400, "corrupt JPEG"),
        (K.png_bytes(np.zeros((300, 20), np.uint8)), 413, "300"),
    ]
    for body, status, needle in cases:
        st, hd, data = cls.request("POST", "/v2/models/img/classify", body)
        assert st == status, (needle, data)
        assert needle in json.loads(data)["error"], data
    st, _, data = cls.request("POST", "/predict/img?top_k=zero", png)
    assert st == 400 and b"top_k" in data
    st, _, data = cls.request("POST", "/v2/models/tiny/classify", png)
    assert st == 400 and b"does not take an image" in data
    st, _, _ = cls.request("GET", "/predict/img")
    assert st == 405
    st, _, _ = cls.request("POST", "/predict/nope", png)
    assert st == 404
    # still serving
    st, _, _ = cls.request("POST", "/predict/img", K.png_bytes(px[:8, :8, 0].copy()))
    assert st == 200
    text = cls.metrics()
    assert K.metric(text, "aiserve_model_request_failure_total", "img",
                    ',reason="BAD_INPUT"') >= 7


def _digits_files():
    d = os.path.join(K.ROOT, "models")
    names = sorted(os.listdir(d)) if os.path.isdir(d) else []
    return d, names


def test_digits_held_out_accuracy_over_http(procs):
    d, names = _digits_files()
    model = os.path.join(d, "digits.onnx")
    if not os.path.exists(model):
        pytest.skip("models/digits.onnx is not built yet (tools/ makes it)")
    from digits_data import held_out  # noqa: E402  (next to this file)
    images, labels, opts = held_out(d)
    s = K.start(procs, ["--processes=2", "--model=digits=" + model] + opts)
    right = 0
    for img, lab in zip(images, labels):
        st, _, data = s.request("POST", "/predict/digits?top_k=1", K.png_bytes(img))
        assert st == 200, data
        right += json.loads(data)["predictions"][0]["index"] == int(lab)
    acc = right / len(labels)
    assert len(labels) >= 100
    assert acc >= 0.97, "accuracy %.4f on %d held-out digits" % (acc, len(labels))


def _flat_or_nhwc_model(path, kind, rng):
    from onnx import TensorProto, helper, numpy_helper
    if kind == "flat":  # [N,64] grey 8x8, needs image-size
        shape, k = ["N", 64], 64
        nodes = [helper.make_node("Gemm", ["image", "W", "B"], ["logits"])]
    else:  # NHWC [N,8,8,3]
        shape, k = ["N", 8, 8, 3], 192
        nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
                 helper.make_node("Gemm", ["flat", "W", "B"], ["logits"])]
    w = rng.standard_normal((k, 10)).astype(np.float32)
    b = rng.standard_normal(10).astype(np.float32)
    g = helper.make_graph(nodes, kind, [helper.make_tensor_value_info(
        "image", TensorProto.FLOAT, shape)], [helper.make_tensor_value_info(
            "logits", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    return K._save(g, path), w, b


@pytest.mark.parametrize("kind", ["flat", "nhwc"])
def test_flat_and_nhwc_inputs_with_mean_std_scale(tmp_path, procs, kind):
    rng = np.random.default_rng(21)
    path, w, b = _flat_or_nhwc_model(str(tmp_path / (kind + ".onnx")), kind, rng)
    opts = ["--processes=1", "--model=m=" + path, "--image-scale=m=1",
            "--image-mean=m=100,120,140", "--image-std=m=50,60,70"]
    if kind == "flat":
        opts.append("--image-size=m=8x8")
    s = K.start(procs, opts)
    chans = 1 if kind == "flat" else 3
    px = rng.integers(0, 256, (8, 8, chans) if chans == 3 else (8, 8), dtype=np.uint8)
    st, _, data = s.request("POST", "/predict/m?top_k=10", K.png_bytes(px))
    assert st == 200, data
    mean = np.array([100, 120, 140][:chans], np.float32)
    std = np.array([50, 60, 70][:chans], np.float32)
    x = ((px.reshape(8, 8, chans).astype(np.float32) - mean) / std).reshape(1, -1)  # HWC order
    z = (x @ w + b)[0]
    p = np.exp(z - z.max())
    p /= p.sum()
    got = json.loads(data)["predictions"]
    assert [q["index"] for q in got] == list(np.argsort(-p))
    for q in got:
        assert abs(q["score"] - p[q["index"]]) < 1e-4


def test_an_image_posted_to_infer_is_415_pointing_to_predict(cls):
    px = np.random.default_rng(9).integers(0, 256, (8, 8), dtype=np.uint8)
    for body, hd in [(K.png_bytes(px), {"Content-Type": "image/png"}),
                     (K.jpeg_bytes(np.stack([px] * 3, -1)), {}),  # sniffed, no type given
                     (K.png_bytes(px), {"Content-Type": "application/json"}),
                     (b"--x\r\n\r\n--x--\r\n", {"Content-Type": "multipart/form-data; boundary=x"})]:
        st, _, data = cls.request("POST", "/v2/models/img/infer", body, hd)
        assert st == 415, data
        assert "/predict/img" in json.loads(data)["error"], data
