"""The input's nchw->nhwc conversion before a oneDNN Conv (engine/ref_tensor.c: RGB
inputs interleave 4 pixels per step with SSE shuffles, then a scalar tail), black box
through `aiinfer run`: 3-channel inputs whose pixel count is and is not a multiple of
4, batch 1 and 2, against numpy (tolerance 1e-5 of the output's scale) and against
`--reference` (no conversion)."""
import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness import binary

RNG = np.random.default_rng(9)


def aiinfer(*args):
    return subprocess.run([binary("aiinfer"), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (1, 3, 7, 5), (2, 3, 9, 3), (1, 3, 1, 1)])
def test_rgb_input_converts_to_nhwc_exactly(tmp_path, shape):
    w = RNG.uniform(-1, 1, (8, 3, 1, 1)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "W"], ["y"])
    g = helper.make_graph([node], "rgb", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, shape[2], shape[3]])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], [numpy_helper.from_array(w, "W")])
    path = tmp_path / "rgb.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    x = RNG.uniform(-1, 1, shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    ref = np.einsum("nchw,oc->nohw", x.astype(np.float64), w[:, :, 0, 0].astype(np.float64))
    for extra in ([], ["--reference"]):
        r = aiinfer("run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
                    "--shape", ",".join(map(str, shape)), *extra)
        assert r.returncode == 0, r.stderr
        got = np.load(tmp_path / "y.npy")
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()
    r = aiinfer("layers", path, "--batch", shape[0])
    assert r.returncode == 0 and "nchw->nhwc" in r.stdout, r.stdout + r.stderr
