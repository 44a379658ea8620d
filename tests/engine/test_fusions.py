"""The transformer and detector fusions, black box through `aiinfer`: each graph is
built here with onnx.helper in the form torch exports, run on both backends and
compared with numpy's unfused computation (tolerance 1e-4 of the output's scale);
`aiinfer info` must show that the fusion happened (the fused op in the kernel
table, the absorbed ops gone) -- or, for a graph it must not touch, that it did
not.

- attention: MatMul(Q, K^T) -> Div/Mul by a scalar -> Add(mask) -> Softmax ->
  MatMul(., V) with the head Transposes becomes aiinfer:FusedAttention;
- residual: LayerNormalization(Add(x, r)) takes r as a fused input;
- nearest Resize of an NHWC tensor between convs (the row-copy path)."""
import os
import re
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness import binary

B, S, H, D = 2, 7, 3, 4
E = H * D


def aiinfer(*args, timeout=120):
    return subprocess.run([binary("aiinfer"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def kernels(path, *extra):
    """{(op, kernel): count} from `aiinfer info`."""
    r = aiinfer("info", path, *extra)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    start = lines.index(next(ln for ln in lines if ln.split() == ["op", "count", "kernel"]))
    rows = {}
    for ln in lines[start + 1:]:
        if ln.startswith("verdict:"):
            break
        op, count, kernel = ln.split()
        rows[(op, kernel)] = int(count)
    return rows


def save(tmp_path, nodes, inputs, outputs, inits, name="m"):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    p = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    return p


def run(tmp_path, path, arrays, reference):
    args = ["run", path]
    for k, a in enumerate(arrays):
        f = tmp_path / f"in{k}.npy"
        np.save(f, a)
        args += ["--input", f]
    out = tmp_path / "out.npy"
    r = aiinfer(*args, "--output", out, *(["--reference"] if reference else []))
    assert r.returncode == 0, r.stderr
    return np.load(out)


def close(got, want):
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(float(np.abs(want).max()), 1e-6)
    assert float(np.abs(got - want).max()) <= 1e-4 * scale


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attention_graph(tmp_path, mask_shape, scale_op, k_pre_transposed, out_transpose):
    """x [B, S, E] -> q/k/v projections -> heads -> attention -> [B, S, E] (or
    [B, H, S, D] without the output Transpose); returns (path, numpy function)."""
    rng = np.random.default_rng(1)
    w = {n: rng.standard_normal((E, E)).astype(np.float32) * 0.3 for n in "qkv"}
    inits = [numpy_helper.from_array(w[n], f"w{n}") for n in "qkv"]
    inits.append(numpy_helper.from_array(np.array([B, S, H, D], np.int64), "heads"))
    inits.append(numpy_helper.from_array(np.array([B, S, E], np.int64), "flat"))
    sc = 1 / np.sqrt(D)
    inits.append(numpy_helper.from_array(
        np.array(np.sqrt(D) if scale_op == "Div" else sc, np.float32), "c"))
    nodes = []
    for n in "qkv":
        nodes += [helper.make_node("MatMul", ["x", f"w{n}"], [f"{n}p"]),
                  helper.make_node("Reshape", [f"{n}p", "heads"], [f"{n}r"])]
    nodes.append(helper.make_node("Transpose", ["qr"], ["qh"], perm=[0, 2, 1, 3]))
    nodes.append(helper.make_node("Transpose", ["vr"], ["vh"], perm=[0, 2, 1, 3]))
    if k_pre_transposed:  # K^T made by two Transposes: only the last one is absorbed
        nodes.append(helper.make_node("Transpose", ["kr"], ["kh"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Transpose", ["kh"], ["kt"], perm=[0, 1, 3, 2]))
    else:
        nodes.append(helper.make_node("Transpose", ["kr"], ["kt"], perm=[0, 2, 3, 1]))
    nodes.append(helper.make_node("MatMul", ["qh", "kt"], ["s"]))
    nodes.append(helper.make_node(scale_op, ["s", "c"], ["ss"]))
    soft_in = "ss"
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [B, S, E])]
    if mask_shape:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, mask_shape))
        nodes.append(helper.make_node("Add", ["mask", "ss"], ["sm"]))  # mask first, as BERT's
        soft_in = "sm"
    nodes.append(helper.make_node("Softmax", [soft_in], ["p"], axis=-1))
    nodes.append(helper.make_node("MatMul", ["p", "vh"], ["ctx"]))
    if out_transpose:
        nodes += [helper.make_node("Transpose", ["ctx"], ["ct"], perm=[0, 2, 1, 3]),
                  helper.make_node("Reshape", ["ct", "flat"], ["y"])]
    else:
        nodes.append(helper.make_node("Identity", ["ctx"], ["y"]))
    path = save(tmp_path, nodes, inputs,
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)

    def want(x, mask=None):
        q, k, v = ((x @ w[n]).reshape(B, S, H, D).transpose(0, 2, 1, 3) for n in "qkv")
        s = (q @ k.transpose(0, 1, 3, 2)) * sc
        if mask is not None:
            s = s + mask
        y = softmax(s) @ v
        return y.transpose(0, 2, 1, 3).reshape(B, S, E) if out_transpose else y

    return path, want


@pytest.mark.parametrize("mask_shape,scale_op,k_pre,out_t", [
    ([B, 1, 1, S], "Div", False, True),    # BERT's export
    ([B, H, S, S], "Mul", False, True),    # a full mask, scale by Mul
    (None, "Div", True, False),            # no mask, K^T by two Transposes, no output one
    ([1, 1, S, S], "Mul", True, True),     # a causal-style mask shared by the batch
])
@pytest.mark.parametrize("reference", [False, True])
def test_attention_is_fused_and_matches_numpy(tmp_path, mask_shape, scale_op, k_pre, out_t,
                                              reference):
    path, want = attention_graph(tmp_path, mask_shape, scale_op, k_pre, out_t)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, S, E)).astype(np.float32)
    ins = [x]
    if mask_shape:
        mask = np.zeros(mask_shape, np.float32)
        mask[..., S - 2:] = -10000.0  # padded keys
        if mask_shape[2] == S:
            mask[..., 0, 1:3] = -10000.0
        ins.append(mask)
    close(run(tmp_path, path, ins, reference), want(*ins).astype(np.float32))
    rows = kernels(path, *(["--reference"] if reference else []))
    assert rows.get(("aiinfer:FusedAttention", "c")) == 1, rows
    ops = {op for op, _ in rows}
    assert "Softmax" not in ops and "Div" not in ops and "Mul" not in ops, rows
    assert "Add" not in ops, rows
    # the Q, V (and output) head Transposes are absorbed as strides; K^T made by
    # two Transposes (not the [0, 2, 3, 1] of a Reshape) is read as it comes
    assert rows.get(("Transpose", "c"), 0) == (2 if k_pre else 0), rows
    assert rows[("MatMul", "onednn" if not reference else "c")] == 3, rows


def test_attention_with_a_second_reader_of_the_scores_is_left_alone(tmp_path):
    # the scores are also a graph output: fusing would lose them
    path, _ = attention_graph(tmp_path, [B, 1, 1, S], "Div", False, True)
    m = onnx.load(path)
    m.graph.output.append(helper.make_tensor_value_info("p", TensorProto.FLOAT, None))
    onnx.save(m, path)
    rows = kernels(path)
    assert ("aiinfer:FusedAttention", "c") not in rows and ("Softmax", "c") in rows, rows


def ln_graph(tmp_path, r_shape):
    rng = np.random.default_rng(3)
    g, b = rng.standard_normal(E).astype(np.float32), rng.standard_normal(E).astype(np.float32)
    w = rng.standard_normal((E, E)).astype(np.float32) * 0.3
    inits = [numpy_helper.from_array(a, n) for a, n in ((g, "g"), (b, "b"), (w, "w"))]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xm"]),
             helper.make_node("Add", ["xm", "r"], ["s"]),
             helper.make_node("LayerNormalization", ["s", "g", "b"], ["y"], axis=-1,
                              epsilon=1e-5)]
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [B, S, E]),
           helper.make_tensor_value_info("r", TensorProto.FLOAT, r_shape)]
    path = save(tmp_path, nodes, ins, [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, None)], inits, name="ln")

    def want(x, r):
        s = x @ w + r
        mu = s.mean(-1, keepdims=True)
        var = ((s - mu) ** 2).mean(-1, keepdims=True)
        return (s - mu) / np.sqrt(var + 1e-5) * g + b

    return path, want


@pytest.mark.parametrize("reference", [False, True])
def test_residual_add_is_fused_into_layernorm(tmp_path, reference):
    path, want = ln_graph(tmp_path, [B, S, E])
    rng = np.random.default_rng(4)
    x, r = (rng.standard_normal((B, S, E)).astype(np.float32) * 3 for _ in range(2))
    close(run(tmp_path, path, [x, r], reference), want(x, r).astype(np.float32))
    rows = kernels(path, *(["--reference"] if reference else []))
    assert ("Add", "c") not in rows and rows[("LayerNormalization", "c")] == 1, rows


def test_broadcast_residual_is_not_fused(tmp_path):
    path, want = ln_graph(tmp_path, [1, 1, E])
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, S, E)).astype(np.float32)
    r = rng.standard_normal((1, 1, E)).astype(np.float32)
    close(run(tmp_path, path, [x, r], False), want(x, r).astype(np.float32))
    assert kernels(path).get(("Add", "c")) == 1


@pytest.mark.parametrize("reference", [False, True])
def test_nearest_resize_between_convs(tmp_path, reference):
    # Conv (NHWC on oneDNN) -> Resize x2 nearest -> Conv: the resize runs on the
    # NHWC rows; on the reference backend the same fast path runs in NCHW
    rng = np.random.default_rng(6)
    w1 = rng.standard_normal((5, 3, 1, 1)).astype(np.float32)
    w2 = rng.standard_normal((4, 5, 1, 1)).astype(np.float32)
    scales = np.array([1, 1, 2, 3], np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"),
                                                         (scales, "sc"))]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"]),
             helper.make_node("Resize", ["a", "", "sc"], ["u"], mode="nearest"),
             helper.make_node("Conv", ["u", "w2"], ["y"])]
    path = save(tmp_path, nodes, [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 5, 6])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], inits, name="up")
    x = rng.standard_normal((1, 3, 5, 6)).astype(np.float32)
    a = np.einsum("oc,nchw->nohw", w1[:, :, 0, 0], x)
    u = a.repeat(2, axis=2).repeat(3, axis=3)  # asymmetric scales, half_pixel, floor
    want = np.einsum("oc,nchw->nohw", w2[:, :, 0, 0], u)
    close(run(tmp_path, path, [x], reference), want.astype(np.float32))


def test_reshape_of_a_tensor_read_once_is_a_view(tmp_path):
    # q/k/v projections feed one Reshape each: those become views (no copy); a
    # tensor a second node reads keeps its copying Reshape
    path, want = attention_graph(tmp_path, [B, 1, 1, S], "Div", False, True)
    r = aiinfer("layers", path)
    assert r.returncode == 0, r.stderr
    views = [ln for ln in r.stdout.splitlines() if "view of its input (no copy)" in ln]
    assert len(views) == 4, r.stdout  # three head splits and the merge
    m = onnx.load(path)
    m.graph.node.append(helper.make_node("Relu", ["qp"], ["qrelu"]))
    m.graph.output.append(helper.make_tensor_value_info("qrelu", TensorProto.FLOAT, None))
    onnx.save(m, path)
    r = aiinfer("layers", path)
    assert r.returncode == 0, r.stderr
    assert sum("view of its input" in ln for ln in r.stdout.splitlines()) == 3, r.stdout
    rng = np.random.default_rng(7)
    x = rng.standard_normal((B, S, E)).astype(np.float32)
    mask = np.zeros((B, 1, 1, S), np.float32)
    args = ["run", path]
    for k, a in enumerate([x, mask]):
        np.save(tmp_path / f"v{k}.npy", a)
        args += ["--input", tmp_path / f"v{k}.npy"]
    r = aiinfer(*args, "--output", tmp_path / "y.npy", "--output", tmp_path / "q.npy")
    assert r.returncode == 0, r.stderr
    close(np.load(tmp_path / "y.npy"), want(x, mask).astype(np.float32))


def head_graph(tmp_path, perm, second_reader=False, sigmoid=False):
    """x [1, 8, 5, 6] -> 1x1 Conv to 3*4 channels (oneDNN, NHWC) -> Reshape [1, 3, 4, 5, 6]
    -> Transpose(perm): the detector head's layout."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((12, 8, 1, 1)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array([1, 3, 4, 5, 6], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]),
             helper.make_node("Reshape", ["c", "shape"], ["r"]),
             helper.make_node("Transpose", ["r"], ["y"], perm=perm)]
    if sigmoid:
        nodes[-1].output[0] = "t"
        nodes.append(helper.make_node("Sigmoid", ["t"], ["y"]))
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if second_reader:
        nodes.append(helper.make_node("Relu", ["r"], ["z"]))
        outs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    path = save(tmp_path, nodes, [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 8, 5, 6])], outs, inits, name="head")
    x = rng.standard_normal((1, 8, 5, 6)).astype(np.float32)
    c = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x) + b.reshape(1, 12, 1, 1)
    y = c.reshape(1, 3, 4, 5, 6).transpose(perm)
    return path, x, 1 / (1 + np.exp(-y)) if sigmoid else y


@pytest.mark.parametrize("perm", [[0, 1, 3, 4, 2], [0, 2, 1, 4, 3], [4, 3, 2, 1, 0]])
def test_head_transpose_gathers_from_nhwc(tmp_path, perm):
    # Conv -> Reshape (splitting channels) -> Transpose: one gather from the conv's
    # NHWC bytes, no nhwc->nchw step; same values as the copying (--reference) path
    path, x, want = head_graph(tmp_path, perm)
    r = aiinfer("layers", path)
    assert r.returncode == 0, r.stderr
    assert "gather from nhwc" in r.stdout and "nhwc->nchw" not in r.stdout, r.stdout
    got = run(tmp_path, path, [x], False)
    close(got, want.astype(np.float32))
    close(got, run(tmp_path, path, [x], True))


@pytest.mark.parametrize("second_reader", [False, True])
def test_head_sigmoid_runs_as_the_convs_post_op(tmp_path, second_reader):
    # Conv -> Reshape -> Transpose -> Sigmoid: the Sigmoid commutes with the data
    # movement and becomes the Conv's logistic post-op (the node a view); with a
    # second reader of the Reshape's output it must stay a Sigmoid of its own
    path, x, want = head_graph(tmp_path, [0, 1, 3, 4, 2], second_reader, sigmoid=True)
    r = aiinfer("layers", path)
    assert r.returncode == 0, r.stderr
    folded = "Sigmoid: view of its input (no copy)" in r.stdout
    assert folded != second_reader, r.stdout
    got = run(tmp_path, path, [x], False)
    close(got, want.astype(np.float32))
    close(got, run(tmp_path, path, [x], True))


def test_head_reshape_with_a_second_reader_is_converted(tmp_path):
    path, x, want = head_graph(tmp_path, [0, 1, 3, 4, 2], second_reader=True)
    r = aiinfer("layers", path)
    assert r.returncode == 0, r.stderr
    assert "gather from nhwc" not in r.stdout and "nhwc->nchw" in r.stdout, r.stdout
    close(run(tmp_path, path, [x], False), want.astype(np.float32))


def c2f_graph(tmp_path, a_is_output=False):
    """The C2f block: x [1, 4, 5, 6] -> 1x1 Conv to 8 (NHWC) -> Split [4, 4] -> a, b;
    3x3 Conv(b) -> m; Concat(a, b, m) -> 1x1 Conv to 6."""
    rng = np.random.default_rng(5)
    w1 = rng.standard_normal((8, 4, 1, 1)).astype(np.float32)
    wm = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((6, 12, 1, 1)).astype(np.float32)
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(wm, "wm"),
             numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.array([4, 4], np.int64), "sizes")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"]),
             helper.make_node("Split", ["c", "sizes"], ["a", "b"], axis=1),
             helper.make_node("Conv", ["b", "wm"], ["m"], pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["a", "b", "m"], ["cat"], axis=1),
             helper.make_node("Conv", ["cat", "w2"], ["y"])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if a_is_output:
        outs.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, None))
    path = save(tmp_path, nodes, [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4, 5, 6])], outs, inits, name="c2f")
    x = rng.standard_normal((1, 4, 5, 6)).astype(np.float32)
    c = np.einsum("oc,nchw->nohw", w1[:, :, 0, 0], x)
    bp = np.pad(c[:, 4:], ((0, 0), (0, 0), (1, 1), (1, 1)))
    m = np.zeros((1, 4, 5, 6))
    for i in range(3):
        for j in range(3):
            m += np.einsum("oc,nchw->nohw", wm[:, :, i, j], bp[:, :, i:i + 5, j:j + 6])
    y = np.einsum("oc,nchw->nohw", w2[:, :, 0, 0], np.concatenate([c, m], 1))
    return path, x, y.astype(np.float32), c[:, :4].astype(np.float32)


@pytest.mark.parametrize("a_is_output", [False, True])
def test_concat_reads_split_parts_from_the_splits_source(tmp_path, a_is_output):
    # C2f: Concat(a, b, m) of Split(c) parts reads a and b straight from c (one copy
    # per pixel for both); the Split then writes only what another node reads
    path, x, want, a = c2f_graph(tmp_path, a_is_output)
    r = aiinfer("layers", path)
    assert r.returncode == 0, r.stderr
    assert "2 copies per pixel (reads split parts in place)" in r.stdout, r.stdout
    args = ["run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy"]
    np.save(tmp_path / "x.npy", x)
    if a_is_output:
        args += ["--output", tmp_path / "a.npy"]
    for ref in ([], ["--reference"]):
        r = aiinfer(*args, *ref)
        assert r.returncode == 0, r.stderr
        close(np.load(tmp_path / "y.npy"), want)
        if a_is_output:  # a graph output: the Split still writes it
            close(np.load(tmp_path / "a.npy"), a)


@pytest.mark.parametrize("mode,ctm,folded", [("nearest", "asymmetric", True),
                                              ("nearest", "half_pixel", True),
                                              ("linear", "half_pixel", False)])
def test_concat_reads_a_nearest_resize_from_its_source(tmp_path, mode, ctm, folded):
    # the neck: Concat(Resize(p2), p1) of NHWC tensors; a nearest Resize read only by
    # the Concat folds into it (the Concat maps each pixel to its source pixel), a
    # linear one stays a step; batch 2 checks the map keeps images apart
    rng = np.random.default_rng(8)
    w1 = rng.standard_normal((5, 3, 1, 1)).astype(np.float32)
    w2 = rng.standard_normal((4, 3, 1, 1)).astype(np.float32)
    w3 = rng.standard_normal((2, 9, 1, 1)).astype(np.float32)
    scales = np.array([1, 1, 2, 3], np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (w3, "w3"),
                                                         (scales, "sc"))]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"]),
             helper.make_node("Resize", ["a", "", "sc"], ["u"], mode=mode,
                              coordinate_transformation_mode=ctm),
             helper.make_node("Conv", ["z", "w2"], ["b"]),
             helper.make_node("Concat", ["u", "b"], ["cat"], axis=1),
             helper.make_node("Conv", ["cat", "w3"], ["y"])]
    path = save(tmp_path, nodes, [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 5, 6]),
        helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3, 10, 18])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits, name="neck")
    r = aiinfer("layers", path)
    assert r.returncode == 0, r.stderr
    assert ("Resize: folded into its Concat" in r.stdout) == folded, r.stdout
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    z = rng.standard_normal((2, 3, 10, 18)).astype(np.float32)
    got = run(tmp_path, path, [x, z], False)
    close(got, run(tmp_path, path, [x, z], True))
    if mode == "nearest" and ctm == "half_pixel":  # rounds like a floor at these scales
        a = np.einsum("oc,nchw->nohw", w1[:, :, 0, 0], x).repeat(2, axis=2).repeat(3, axis=3)
        b = np.einsum("oc,nchw->nohw", w2[:, :, 0, 0], z)
        want = np.einsum("oc,nchw->nohw", w3[:, :, 0, 0], np.concatenate([a, b], 1))
        close(got, want.astype(np.float32))


@pytest.mark.parametrize("case", ["decode", "other_axis", "second_reader", "scalar"])
def test_binary_op_reads_last_axis_slices_in_place(tmp_path, case):
    # the decode's y[..., 4:5] * y[..., 5:]: the Mul reads both slices from y (row
    # stride 9) and the Slices do not run; a slice of another axis, or one that is
    # also a graph output, keeps its step
    rng = np.random.default_rng(9)
    ax = 2 if case == "other_axis" else 3
    consts = {"s1": [4], "e1": [5], "s2": [5], "e2": [9], "ax": [ax]}
    if case == "other_axis":
        consts = {"s1": [1], "e1": [2], "s2": [0], "e2": [6], "ax": [ax]}
    inits = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in consts.items()]
    inits.append(numpy_helper.from_array(np.array(2.5, np.float32), "two"))
    nodes = [helper.make_node("Sigmoid", ["x"], ["y"]),
             helper.make_node("Slice", ["y", "s1", "e1", "ax"], ["obj"]),
             helper.make_node("Slice", ["y", "s2", "e2", "ax"], ["cls"]),
             helper.make_node("Mul", ["obj", "cls"], ["conf"])]
    if case == "scalar":  # the box decode's xy * 2 (the scalar first: Sub(2.5, .) order kept)
        nodes[1:] = [helper.make_node("Slice", ["y", "s2", "e2", "ax"], ["cls"]),
                     helper.make_node("Sub", ["two", "cls"], ["conf"])]
    outs = [helper.make_tensor_value_info("conf", TensorProto.FLOAT, None)]
    if case == "second_reader":
        outs.append(helper.make_tensor_value_info("cls", TensorProto.FLOAT, None))
    path = save(tmp_path, nodes, [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 3, 6, 9])], outs, inits, name="dec")
    r = aiinfer("layers", path)
    assert r.returncode == 0, r.stderr
    folded = r.stdout.count("Slice: folded into its reader (no copy)")
    assert folded == {"decode": 2, "other_axis": 0, "second_reader": 1, "scalar": 1}[case], r.stdout
    x = rng.standard_normal((2, 3, 6, 9)).astype(np.float32)
    y = 1 / (1 + np.exp(-x))
    if case == "other_axis":
        want = y[:, :, 1:2] * y[:, :, 0:6]
    elif case == "scalar":
        want = 2.5 - y[..., 5:9]
    else:
        want = y[..., 4:5] * y[..., 5:9]
    got = run(tmp_path, path, [x], False)
    close(got, want.astype(np.float32))
    close(got, run(tmp_path, path, [x], True))


@pytest.mark.parametrize("opset,axis,folded", [(17, -1, True), (17, 1, True), (17, 0, False),
                                               (18, -1, True)])
def test_reducemax_and_argmax_of_the_same_rows_run_as_one_pass(tmp_path, opset, axis, folded):
    # the decode's conf.max(-1): ReduceMax and ArgMax over the last axis of the same
    # tensor are one step; ties give the first index, a row with a NaN gives what
    # each op gives alone (the --reference run), another axis keeps two steps
    x = np.random.default_rng(10).standard_normal((6, 37)).astype(np.float32)
    x[1, 5] = x[1, 20] = 9.0  # a tie
    x[2, 7] = np.nan
    x[3, 0] = np.nan
    inits = []
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array([axis], np.int64), "axes"))
        rmax = helper.make_node("ReduceMax", ["y", "axes"], ["m"], keepdims=0)
    else:
        rmax = helper.make_node("ReduceMax", ["y"], ["m"], axes=[axis], keepdims=0)
    nodes = [helper.make_node("Neg", ["x"], ["n"]), helper.make_node("Neg", ["n"], ["y"]), rmax,
             helper.make_node("ArgMax", ["y"], ["i"], axis=axis, keepdims=0)]
    g = helper.make_graph(nodes, "rm", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [6, 37])], [helper.make_tensor_value_info(
            "m", TensorProto.FLOAT, None), helper.make_tensor_value_info(
            "i", TensorProto.INT64, None)], inits)
    path = tmp_path / "rm.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), path)
    r = aiinfer("layers", path)
    assert r.returncode == 0, r.stderr
    assert ("ReduceMax and ArgMax in one pass" in r.stdout) == folded, r.stdout
    np.save(tmp_path / "x.npy", x)
    got = []
    for ref in ([], ["--reference"]):
        r = aiinfer("run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "m.npy",
                    "--output", tmp_path / "i.npy", *ref)
        assert r.returncode == 0, r.stderr
        got.append((np.load(tmp_path / "m.npy"), np.load(tmp_path / "i.npy")))
    (m, i), (mr, ir) = got
    np.testing.assert_array_equal(m, mr)  # same NaN rows, bit for bit
    np.testing.assert_array_equal(i, ir)
    clean = ~np.isnan(x).any(axis=axis)
    np.testing.assert_array_equal(m[clean], x.max(axis=axis)[clean])
    np.testing.assert_array_equal(i[clean], x.argmax(axis=axis)[clean])


# ---- no allocation per run ---------------------------------------------------------

COUNTER = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* Counts the heap allocations made by code of the main executable (the engine is
 * linked into aiinfer); oneDNN's own (its C API builds an argument map in every
 * dnnl_primitive_execute) come from libdnnl/libstdc++ and are not counted. */
static unsigned long n;
static char early[1 << 16], exe[4096];
static size_t used;
static void *(*real_malloc)(size_t), *(*real_calloc)(size_t, size_t),
    *(*real_realloc)(void *, size_t), *(*real_aligned)(size_t, size_t);
static int (*real_memalign)(void **, size_t, size_t);
static void init(void)
{
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned = dlsym(RTLD_NEXT, "aligned_alloc");
    ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[k > 0 ? k : 0] = 0;
}
static void count(void *ra)
{
    Dl_info di;
    if (exe[0] && dladdr(ra, &di) && di.dli_fname && !strcmp(di.dli_fname, exe))
        __atomic_add_fetch(&n, 1, 0);
}
#define RA __builtin_return_address(0)
void *malloc(size_t s) { if (!real_malloc) init(); count(RA); return real_malloc(s); }
void *calloc(size_t a, size_t b)
{
    if (!real_calloc) { /* dlsym's own calloc, before init finished */
        void *p = early + used; used += (a * b + 15) & ~(size_t)15; return p;
    }
    count(RA); return real_calloc(a, b);
}
void *realloc(void *p, size_t s) { if (!real_realloc) init(); count(RA); return real_realloc(p, s); }
int posix_memalign(void **p, size_t a, size_t s) { if (!real_memalign) init(); count(RA); return real_memalign(p, a, s); }
void *aligned_alloc(size_t a, size_t s) { if (!real_aligned) init(); count(RA); return real_aligned(a, s); }
void free(void *p)
{
    static void (*real_free)(void *);
    if ((char *)p >= early && (char *)p < early + sizeof(early)) return;
    if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
    real_free(p);
}
__attribute__((destructor)) static void report(void)
{
    char b[64]; int k = snprintf(b, sizeof(b), "allocations %lu\n", n);
    if (write(2, b, (size_t)k) < 0) _exit(1);
}
"""


@pytest.mark.parametrize("family,dynamic", [("bert", "all"), ("yolo", "batch")])
def test_a_run_allocates_nothing(tmp_path, family, dynamic):
    # bench runs the same plan over and over: a short and a long bench of the BERT-class
    # encoder (fused attention, residual LayerNorm, views) or of the detector (NHWC
    # convs, Split/Concat, the head's folded gather) must make the same number
    # of engine heap allocations, give or take bench's own doubling latency array,
    # however many more runs the long one made (the counter sees the engine's calls;
    # oneDNN allocates inside every primitive execution, which no caller can avoid)
    import shutil
    import sys
    if not shutil.which("cc"):
        pytest.skip("no C compiler for the allocation counter")
    src = tmp_path / "count.c"
    src.write_text(COUNTER)
    so = tmp_path / "count.so"
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", so, src, "-ldl"], check=True)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tools"))
    import family_models as fm
    path = tmp_path / f"{family}.onnx"
    ins, _ = fm.export(family, str(path), opset=17, dynamic=dynamic)
    args = []
    for k, x in enumerate(ins):
        np.save(tmp_path / f"b{k}.npy", x)
        args += ["--input", tmp_path / f"b{k}.npy"]
    counts = []
    for seconds in (0.3, 1.5):
        r = subprocess.run([binary("aiinfer"), "bench", path, *map(str, args), "--seconds",
                            str(seconds)], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "LD_PRELOAD": str(so)})
        assert r.returncode == 0, r.stderr
        runs = int(re.search(r"runs (\d+)", r.stdout).group(1))
        allocs = int(re.search(r"allocations (\d+)", r.stderr).group(1))
        counts.append((runs, allocs))
    (r1, a1), (r2, a2) = counts
    assert r2 > r1 + 50, counts  # enough extra runs to see one allocation each
    assert a1 > 100, counts  # the counter sees the engine: loading allocates plenty
    assert a2 - a1 <= 8, counts


@pytest.mark.parametrize("op,last", [("ArgMax", 0), ("ArgMax", 1), ("ArgMin", 0), ("ArgMin", 1),
                                     ("ReduceMax", 0), ("ReduceMin", 0)])
def test_row_extremes_keep_ties_and_order(tmp_path, op, last):
    # a detector's best class per box: rows of 37 (vector tails), ties rounded to
    # few values so the first (or last) of equals must be picked as numpy does
    rng = np.random.default_rng(8)
    x = np.round(rng.standard_normal((5, 9, 37)) * 2).astype(np.float32)
    x[0, 0, :] = 3.0  # a row of equals
    attrs = {"axis": -1, "keepdims": 0, "select_last_index": last} if op.startswith("Arg") \
        else {"axes": [-1], "keepdims": 0}
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    path = save(tmp_path, [node], [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, list(x.shape))], [helper.make_tensor_value_info(
            "y", TensorProto.INT64 if op.startswith("Arg") else TensorProto.FLOAT, None)], [],
        name="ext")
    if op in ("ArgMax", "ArgMin"):
        f = np.argmax if op == "ArgMax" else np.argmin
        want = (x.shape[-1] - 1 - f(x[..., ::-1], -1)) if last else f(x, -1)
    else:
        want = x.max(-1) if op == "ReduceMax" else x.min(-1)
    got = run(tmp_path, path, [x], False)
    assert np.array_equal(got.reshape(want.shape), want)


def test_the_fused_op_is_refused_in_a_file(tmp_path):
    # the fused node exists only as a pass's output: a file naming it is not loaded
    node = helper.make_node("aiinfer:FusedAttention", ["q", "k", "v"], ["y"])
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 3, 4]) for n in "qkv"]
    g = helper.make_graph([node], "f", ins, [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, None)])
    p = tmp_path / "f.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    r = aiinfer("run", p, "--input", p, "--output", tmp_path / "y.npy")
    assert r.returncode != 0 and "unsupported op 'aiinfer:FusedAttention'" in r.stderr, r.stderr
