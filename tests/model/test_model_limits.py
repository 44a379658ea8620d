"""Sizes over a model's limits are 413 and say which limit and its value."""
import json

import numpy as np

import mdl_kit as K


def test_batch_tensor_and_image_limits_name_the_option_and_the_allowed_value(tmp_path, procs):
    tiny, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    img, _, _ = K.make_image_classifier(str(tmp_path / "img.onnx"))
    s = K.start(procs, ["--processes=1", "--model=tiny=" + tiny, "--model=img=" + img,
                        "--max-batch-size=8", "--image-max-side=64", "--image-max-pixels=2000"])
    # 9 samples: over the bytes a request may carry, which says where that limit comes from
    for body, hd in [K.v2_binary_request([("x", np.ones((9, 4), np.float32))]),
                     (K.v2_json_request([("x", np.ones((9, 4), np.float32))]), {})]:
        st, _, data = s.request("POST", "/v2/models/tiny/infer", body, hd)
        assert st == 413, data
        err = json.loads(data)["error"]
        assert "144 bytes exceed the 128-byte limit (max-batch-size 8 x 16 bytes" in err, err
    # images: each limit by its option name and value
    st, _, data = s.request("POST", "/predict/img", K.png_bytes(np.zeros((10, 100), np.uint8)))
    assert st == 413 and "image-max-side" in json.loads(data)["error"] and b"64" in data, data
    st, _, data = s.request("POST", "/predict/img", K.png_bytes(np.zeros((50, 50), np.uint8)))
    err = json.loads(data)["error"]
    assert st == 413 and "image-max-pixels" in err and "2000" in err and "2500" in err, err
