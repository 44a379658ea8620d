"""The fused inverted residual block (engine/irb.c), black box through `aiinfer`:
graphs of MobileNetV2-style blocks (Conv 1x1 + Clip(0, 6) -> depthwise Conv 3x3 +
Clip(0, 6) -> Conv 1x1, + the residual Add) built here with onnx.helper, run with
the fused kernel forced on (AIINFER_FUSE_IRB=1), forced off (=0) and by the
engine's own per-shape choice, each compared with numpy's unfused computation
(tolerance 1e-4 of the output's scale) and with `--reference`; `aiinfer layers`
must show which blocks were fused, and that a block whose expanded tensor has a
second reader, a 2-thread plan, or an SSE4.1-capped oneDNN is left to oneDNN.
The ISA-capped test stages (ONEDNN_MAX_CPU_ISA=AVX2) run the AVX2 kernel."""
import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness import binary

RNG = np.random.default_rng(7)


def aiinfer(*args, env=None, timeout=120):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([binary("aiinfer"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=e)


def capped_below_avx2():
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if cap.startswith("SSE") or cap == "DEFAULT_NONE":
        return True
    with open("/proc/cpuinfo") as f:
        flags = next((ln for ln in f if ln.startswith("flags")), "").split()
    return "avx2" not in flags or "fma" not in flags


def block(nodes, inits, x, cin, cexp, cout, stride, name, residual, extra_reader=False):
    """Appends one inverted residual block reading value x; returns its output."""
    def w(shape, scale):
        return RNG.uniform(-scale, scale, shape).astype(np.float32)
    ws = {"we": w((cexp, cin, 1, 1), 0.5), "be": w((cexp,), 0.5),
          "wd": w((cexp, 1, 3, 3), 0.5), "bd": w((cexp,), 0.5),
          "wp": w((cout, cexp, 1, 1), 0.3), "bp": w((cout,), 0.5)}
    for k, v in ws.items():
        inits.append(numpy_helper.from_array(v, f"{name}_{k}"))
    lo, hi = f"{name}_lo", f"{name}_hi"
    inits += [numpy_helper.from_array(np.array(0, np.float32), lo),
              numpy_helper.from_array(np.array(6, np.float32), hi)]
    nodes += [
        helper.make_node("Conv", [x, f"{name}_we", f"{name}_be"], [f"{name}_e"],
                         kernel_shape=[1, 1]),
        helper.make_node("Clip", [f"{name}_e", lo, hi], [f"{name}_e6"]),
        helper.make_node("Conv", [f"{name}_e6", f"{name}_wd", f"{name}_bd"], [f"{name}_d"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[stride, stride],
                         group=cexp),
        helper.make_node("Clip", [f"{name}_d", lo, hi], [f"{name}_d6"]),
        helper.make_node("Conv", [f"{name}_d6", f"{name}_wp", f"{name}_bp"], [f"{name}_p"],
                         kernel_shape=[1, 1]),
    ]
    out = f"{name}_p"
    if residual:
        nodes.append(helper.make_node("Add", [out, x], [f"{name}_y"]))
        out = f"{name}_y"
    if extra_reader:  # a second reader of the expanded tensor: nothing may fuse
        nodes.append(helper.make_node("ReduceMean", [f"{name}_e6"], [f"{name}_m"], axes=[1]))
        out = (out, f"{name}_m")
    return out, ws


def numpy_block(x, ws, stride, residual):
    e = np.clip(np.einsum("nchw,ec->nehw", x, ws["we"][:, :, 0, 0]) +
                ws["be"][None, :, None, None], 0, 6)
    n, c, h, w = e.shape
    oh, ow = (h - 1) // stride + 1, (w - 1) // stride + 1
    p = np.pad(e, ((0, 0), (0, 0), (1, 1), (1, 1)))
    d = np.zeros((n, c, oh, ow), np.float64) + ws["bd"][None, :, None, None]
    for ky in range(3):
        for kx in range(3):
            d += p[:, :, ky:ky + stride * oh:stride, kx:kx + stride * ow:stride] * \
                ws["wd"][None, :, 0, ky, kx, None, None]
    d = np.clip(d, 0, 6)
    y = np.einsum("nehw,oe->nohw", d, ws["wp"][:, :, 0, 0]) + ws["bp"][None, :, None, None]
    return y + x if residual else y


def model(tmp_path, h, w, cin, blocks, extra_reader=False):
    """blocks: [(cexp, cout, stride, residual)], chained from an input of cin channels."""
    nodes, inits, specs = [], [], []
    x, c, hh, ww = "x", cin, h, w
    for i, (cexp, cout, stride, residual) in enumerate(blocks):
        out, ws = block(nodes, inits, x, c, cexp, cout, stride, f"b{i}", residual,
                        extra_reader and i == 0)
        extra = None
        if isinstance(out, tuple):
            out, extra = out
        specs.append((ws, stride, residual))
        x, c = out, cout
        hh, ww = (hh - 1) // stride + 1, (ww - 1) // stride + 1
    outputs = [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", c, hh, ww])]
    if extra_reader:
        outputs.append(helper.make_tensor_value_info("b0_m", TensorProto.FLOAT, ["N", 1, h, w]))
    g = helper.make_graph(nodes, "irb", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", cin, h, w])], outputs, inits)
    p = tmp_path / "irb.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), p)
    return p, specs


def want(x, specs):
    for ws, stride, residual in specs:
        x = numpy_block(x.astype(np.float64), ws, stride, residual)
    return x


def run(tmp_path, path, x, env=None, extra=()):
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    r = aiinfer("run", path, "--input", tmp_path / "x.npy", "--output", out, *extra, env=env)
    assert r.returncode == 0, r.stderr
    return np.load(out)


def close(got, ref):
    assert got.shape == ref.shape, (got.shape, ref.shape)
    scale = max(float(np.abs(ref).max()), 1e-6)
    assert float(np.abs(got - ref).max()) <= 1e-4 * scale, float(np.abs(got - ref).max()) / scale


def fused_count(path, env=None, *extra):
    r = aiinfer("layers", path, *extra, env=env)
    assert r.returncode == 0, r.stderr
    fused = r.stdout.count("fused inverted residual block (")
    folded = r.stdout.count("folded into its fused inverted residual block")
    assert fused <= folded <= 2 * fused, r.stdout  # expand and depthwise, or the depthwise
    return fused, r.stdout


# 16 -> 48 -> 16 (stride 1, residual), then 16 -> 40 (odd: 8 mod 16) -> 24 (stride 2), on
# odd rows and columns, then 24 -> 96 -> 24 (residual) on the 2x smaller map
BLOCKS = [(48, 16, 1, True), (40, 24, 2, False), (96, 24, 1, True)]


@pytest.mark.parametrize("batch", [1, 3])
def test_forced_fusion_matches_numpy_and_the_reference(tmp_path, batch):
    path, specs = model(tmp_path, 23, 19, 16, BLOCKS)
    x = RNG.uniform(-1, 1, (batch, 16, 23, 19)).astype(np.float32)
    ref = want(x, specs)
    fused, out = fused_count(path, {"AIINFER_FUSE_IRB": "1"}, "--batch", batch)
    assert fused == (0 if capped_below_avx2() else 3), out
    got = run(tmp_path, path, x, {"AIINFER_FUSE_IRB": "1"})
    close(got, ref)
    close(got, run(tmp_path, path, x, extra=["--reference"]))
    off = run(tmp_path, path, x, {"AIINFER_FUSE_IRB": "0"})
    close(off, ref)
    assert fused_count(path, {"AIINFER_FUSE_IRB": "0"})[0] == 0


def test_the_default_fuses_only_the_large_blocks(tmp_path):
    """The expanded tensors of the first two blocks (48x48x96, 884 KB; 48x48x64 before the
    stride-2 depthwise, 590 KB) are where the fused kernel measured faster, on AVX2 and
    AVX-512; the last block's (24x24x64, 147 KB) stays on oneDNN's kernels."""
    path, specs = model(tmp_path, 48, 48, 16, [(96, 16, 1, True), (64, 16, 2, False),
                                               (64, 16, 1, True)])
    fused, out = fused_count(path)
    assert fused == (0 if capped_below_avx2() else 2), out
    last = [ln for ln in out.splitlines() if ln.startswith("#1") and "Conv" in ln][-3:]
    assert all("Conv: onednn" in ln for ln in last), out
    x = RNG.uniform(-1, 1, (1, 16, 48, 48)).astype(np.float32)
    close(run(tmp_path, path, x), want(x, specs))


def test_two_threads_and_int8_keep_onednn(tmp_path):
    path, specs = model(tmp_path, 23, 19, 16, BLOCKS)
    assert fused_count(path, {"AIINFER_FUSE_IRB": "1"}, "--threads", 2)[0] == 0
    x = RNG.uniform(-1, 1, (2, 16, 23, 19)).astype(np.float32)
    np.save(tmp_path / "calib.npy", x)
    fused, out = fused_count(path, {"AIINFER_FUSE_IRB": "1"}, "--int8", tmp_path / "calib.npy")
    assert fused == 0, out


def test_a_second_reader_of_the_expanded_tensor_keeps_the_expand_apart(tmp_path):
    """The expanded tensor must then be written: the expand stays on oneDNN and only the
    depthwise + project run fused (the depthwise reads the expanded tensor)."""
    path, specs = model(tmp_path, 12, 12, 16, [(48, 16, 1, True)], extra_reader=True)
    fused, out = fused_count(path, {"AIINFER_FUSE_IRB": "1"})
    assert fused == (0 if capped_below_avx2() else 1), out
    assert out.count("folded into its fused") == fused, out
    expand = next(ln for ln in out.splitlines() if ln.startswith("#0 "))
    assert "Conv: onednn" in expand, out
    x = RNG.uniform(-1, 1, (1, 16, 12, 12)).astype(np.float32)
    close(run(tmp_path, path, x, {"AIINFER_FUSE_IRB": "1"}), want(x, specs))


def test_the_block_without_an_expand_fuses_depthwise_and_project(tmp_path):
    """MobileNetV2's first block (depthwise 3x3 + Clip -> project 1x1, no expand)."""
    nodes, inits = [], []
    rng = np.random.default_rng(3)
    wd = rng.uniform(-0.5, 0.5, (32, 1, 3, 3)).astype(np.float32)
    bd = rng.uniform(-0.5, 0.5, (32,)).astype(np.float32)
    wp = rng.uniform(-0.3, 0.3, (16, 32, 1, 1)).astype(np.float32)
    bp = rng.uniform(-0.5, 0.5, (16,)).astype(np.float32)
    for n, a in (("wd", wd), ("bd", bd), ("wp", wp), ("bp", bp), ("lo", np.array(0, np.float32)),
                 ("hi", np.array(6, np.float32))):
        inits.append(numpy_helper.from_array(a, n))
    nodes = [helper.make_node("Conv", ["x", "wd", "bd"], ["d"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], group=32),
             helper.make_node("Clip", ["d", "lo", "hi"], ["d6"]),
             helper.make_node("Conv", ["d6", "wp", "bp"], ["y"], kernel_shape=[1, 1])]
    g = helper.make_graph(nodes, "dwp", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 32, 17, 21])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 16, 17, 21])], inits)
    path = tmp_path / "dwp.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    fused, out = fused_count(path, {"AIINFER_FUSE_IRB": "1"})
    assert fused == (0 if capped_below_avx2() else 1), out
    x = RNG.uniform(-1, 1, (2, 32, 17, 21)).astype(np.float32)
    p = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    d = np.zeros(x.shape) + bd[None, :, None, None]
    for ky in range(3):
        for kx in range(3):
            d += p[:, :, ky:ky + 17, kx:kx + 21] * wd[None, :, 0, ky, kx, None, None]
    ref = np.einsum("nehw,oe->nohw", np.clip(d, 0, 6), wp[:, :, 0, 0]) + bp[None, :, None, None]
    close(run(tmp_path, path, x, {"AIINFER_FUSE_IRB": "1"}), ref)
    close(run(tmp_path, path, x, {"AIINFER_FUSE_IRB": "0"}), ref)
