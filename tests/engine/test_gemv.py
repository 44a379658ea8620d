"""The batch-1 Gemm kernel (engine/gemv.c), black box through `aiinfer`: a Gemm with
constant weights of 256 KB or more runs on it at batch 1 and 1 thread
(`aiinfer layers` says "streaming gemv"), matching numpy (tolerance 1e-5 of the
output's scale) for B as [K, N] and [N, K], with the bias and without; batch 2, two
threads, AIINFER_GEMV=0 and an SSE4.1-capped oneDNN keep oneDNN's inner product."""
import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness import binary

RNG = np.random.default_rng(11)
K, N = 301, 333  # odd K, N not a multiple of the column block; 401 KB of weights


def aiinfer(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([binary("aiinfer"), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=e)


def capped_below_avx2():
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    with open("/proc/cpuinfo") as f:
        flags = next((ln for ln in f if ln.startswith("flags")), "").split()
    return cap.startswith("SSE") or "avx2" not in flags or "fma" not in flags


def gemm_model(tmp_path, trans_b, bias):
    b = RNG.uniform(-1, 1, (N, K) if trans_b else (K, N)).astype(np.float32)
    c = RNG.uniform(-1, 1, (N,)).astype(np.float32)
    inits = [numpy_helper.from_array(b, "B")] + ([numpy_helper.from_array(c, "C")] if bias else [])
    node = helper.make_node("Gemm", ["x", "B"] + (["C"] if bias else []), ["y"], transB=trans_b)
    g = helper.make_graph([node], "gemv", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", K])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", N])], inits)
    p = tmp_path / "gemv.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), p)
    want = lambda x: x.astype(np.float64) @ (b.T if trans_b else b).astype(np.float64) + \
        (c if bias else 0)
    return p, want


def run(tmp_path, path, x, env=None):
    np.save(tmp_path / "x.npy", x)
    r = aiinfer("run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
                env=env)
    assert r.returncode == 0, r.stderr
    return np.load(tmp_path / "y.npy")


def kernel(path, *extra, env=None):
    r = aiinfer("layers", path, *extra, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("bias", [False, True])
def test_batch_1_gemm_streams_and_matches_numpy(tmp_path, trans_b, bias):
    path, want = gemm_model(tmp_path, trans_b, bias)
    out = kernel(path)
    assert ("streaming gemv" in out) == (not capped_below_avx2()), out
    for batch in (1, 2):
        x = RNG.uniform(-1, 1, (batch, K)).astype(np.float32)
        ref = want(x)
        got = run(tmp_path, path, x)
        assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


def test_other_plans_keep_onednn(tmp_path):
    path, _ = gemm_model(tmp_path, 1, True)
    assert "Gemm: onednn" in kernel(path, "--batch", 2)
    assert "Gemm: onednn" in kernel(path, "--threads", 2)
    assert "Gemm: onednn" in kernel(path, env={"AIINFER_GEMV": "0"})
    assert "Gemm: onednn" in kernel(path, env={"ONEDNN_MAX_CPU_ISA": "SSE41"})
