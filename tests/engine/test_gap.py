"""GlobalAveragePool over an NHWC tensor (a oneDNN Conv's output, as in MobileNetV2's
head), black box through `aiinfer run`: the kernel sums 64 channels at a time
(engine/ref_nn.c), so channel counts below, at and past a multiple of 64, odd spatial
sizes and batch 2 are checked against numpy (tolerance 1e-5 of the output's scale) and
against `--reference` (the op-by-op NCHW plan)."""
import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness import binary

RNG = np.random.default_rng(5)


def aiinfer(*args):
    return subprocess.run([binary("aiinfer"), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))


def conv_gap_model(tmp_path, cin, cout):
    w = RNG.uniform(-1, 1, (cout, cin, 1, 1)).astype(np.float32)
    b = RNG.uniform(-1, 1, (cout,)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["y"])]
    g = helper.make_graph(nodes, "gap", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", cin, "H", "W"])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    p = tmp_path / "gap.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), p)

    def want(x):
        c = np.einsum("nchw,oc->nohw", x.astype(np.float64), w[:, :, 0, 0].astype(np.float64))
        return np.maximum(c + b[None, :, None, None], 0).mean(axis=(2, 3), keepdims=True)
    return p, want


@pytest.mark.parametrize("cout", [8, 64, 72, 200])
def test_nhwc_global_average_pool_matches_numpy(tmp_path, cout):
    path, want = conv_gap_model(tmp_path, 16, cout)
    for shape in [(1, 16, 5, 5), (2, 16, 7, 3)]:
        x = RNG.uniform(-1, 1, shape).astype(np.float32)
        np.save(tmp_path / "x.npy", x)
        outs = []
        for extra in ([], ["--reference"]):
            r = aiinfer("run", path, "--input", tmp_path / "x.npy", "--output",
                        tmp_path / "y.npy", "--shape", ",".join(map(str, shape)), *extra)
            assert r.returncode == 0, r.stderr
            outs.append(np.load(tmp_path / "y.npy"))
        ref = want(x)
        for got in outs:
            assert got.shape == ref.shape
            assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()
