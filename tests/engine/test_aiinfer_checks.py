"""aiinfer's checks on what users hand it: `info` lists every op of a model the
engine does not run (with counts) instead of the first one only; `run` converts
a float64 .npy with a note and refuses other dtypes by name; `run` refuses an
input whose rank or fixed dims differ from the model's."""
import os
import subprocess

import numpy as np
import onnx
from onnx import TensorProto, helper

from harness import binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(ROOT, "models", "digits.onnx")


def aiinfer(*args, timeout=120):
    return subprocess.run([binary("aiinfer"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _vi(name):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 4])


def test_info_lists_every_unsupported_op_with_counts(tmp_path):
    # Made-up op names, so that no op the engine learns later changes the answer.
    body = helper.make_graph([helper.make_node("InnerOp", ["x"], ["z"])], "body",
                             [], [_vi("z")])
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Frobnicate", ["a"], ["b"], name="first_bad"),
             helper.make_node("Frobnicate", ["b"], ["c"]),
             helper.make_node("Zorble", ["c"], ["d"]),
             helper.make_node("Fancy", ["d"], ["e"], domain="com.example"),
             helper.make_node("Wrapper", ["e"], ["f"], body=body),
             helper.make_node("Frobnicate", ["f"], ["y"])]
    g = helper.make_graph(nodes, "g", [_vi("x")], [_vi("y")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.example", 1)])
    p = tmp_path / "unsupported.onnx"
    onnx.save(m, p)  # no onnx.checker: it refuses unknown ops, which is the point here
    r = aiinfer("info", p)
    assert r.returncode == 1
    assert "first_bad" in r.stderr and "Frobnicate" in r.stderr  # the loader's own error
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("unsupported ops")]
    assert line, r.stdout
    assert line[0] == ("unsupported ops: 5 types, 7 nodes: Frobnicate=3 Zorble=1 "
                       "com.example:Fancy=1 Wrapper=1 InnerOp=1"), line[0]


def test_info_on_a_supported_model_prints_no_unsupported_line():
    r = aiinfer("info", DIGITS)
    assert r.returncode == 0, r.stderr
    assert "unsupported" not in r.stdout


def test_float64_npy_is_converted_with_a_note(tmp_path):
    x = np.random.default_rng(3).standard_normal((3, 1, 8, 8))  # float64: numpy's default
    np.save(tmp_path / "x64.npy", x)
    np.save(tmp_path / "x32.npy", x.astype(np.float32))
    r64 = aiinfer("run", DIGITS, "--input", tmp_path / "x64.npy", "--output", tmp_path / "y64.npy")
    assert r64.returncode == 0, r64.stderr
    assert "float64" in r64.stderr and "converted to float32" in r64.stderr, r64.stderr
    r32 = aiinfer("run", DIGITS, "--input", tmp_path / "x32.npy", "--output", tmp_path / "y32.npy")
    assert r32.returncode == 0 and "float64" not in r32.stderr, r32.stderr
    # The conversion rounds to nearest, as numpy's astype does: the engine then sees the
    # same float32 input, and the same kernels give the same bits.
    assert np.load(tmp_path / "y64.npy").tobytes() == np.load(tmp_path / "y32.npy").tobytes()


def test_float64_beyond_float32_range_becomes_infinity(tmp_path):
    # Identity passes values through: what comes out is what the conversion made.
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id", [_vi("x")],
                          [_vi("y")])
    p = tmp_path / "id.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), p)
    x = np.array([[1e300, -1e300, 3.4028235e38, 0.1]], np.float64)
    np.save(tmp_path / "x.npy", x)
    r = aiinfer("run", p, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    with np.errstate(over="ignore"):
        want = x.astype(np.float32)
    assert np.load(tmp_path / "y.npy").tobytes() == want.tobytes()


def test_other_npy_dtypes_are_refused_by_name(tmp_path):
    for dtype, names in [(np.float16, ("<f2", "float16")), (np.uint8, ("|u1", "uint8")),
                         (">f4", (">f4", "big-endian float32"))]:
        p = tmp_path / "x.npy"
        np.save(p, np.zeros((1, 1, 8, 8), dtype))
        r = aiinfer("run", DIGITS, "--input", p, "--output", tmp_path / "y.npy")
        assert r.returncode != 0
        for n in names:
            assert n in r.stderr, (dtype, r.stderr)
        assert "Traceback" not in r.stderr and "Sanitizer" not in r.stderr


def test_run_refuses_an_input_of_another_rank_or_fixed_dims(tmp_path):
    out = tmp_path / "y.npy"
    cases = [((1, 64), "rank 2"),            # flat: the same 64 values, rank 2 not 4
             ((64,), "rank 1"),
             ((1, 8, 8, 1), "dim 1 is 8, not 1"),  # NHWC where the model takes NCHW
             ((1, 2, 8, 4), "dim 1 is 2, not 1")]
    for shape, needle in cases:
        np.save(tmp_path / "x.npy", np.zeros(shape, np.float32))
        r = aiinfer("run", DIGITS, "--input", tmp_path / "x.npy", "--output", out)
        assert r.returncode == 1, (shape, r.stderr)
        assert "input 'image'" in r.stderr and needle in r.stderr, (shape, r.stderr)
        assert "model wants [N,1,8,8]" in r.stderr, r.stderr
    np.save(tmp_path / "x.npy", np.zeros((3, 1, 8, 8), np.float32))  # any batch is fine
    r = aiinfer("run", DIGITS, "--input", tmp_path / "x.npy", "--output", out)
    assert r.returncode == 0, r.stderr
    assert np.load(out).shape == (3, 10)


def _table(stdout):
    """`aiinfer info`'s readiness table as {(op, kernel): count}, and its verdict."""
    lines = stdout.splitlines()
    start = lines.index(next(ln for ln in lines if ln.split() == ["op", "count", "kernel"]))
    rows = {}
    for ln in lines[start + 1:]:
        if ln.startswith("verdict:"):
            return rows, ln
        op, count, kernel = ln.split()
        rows[(op, kernel)] = int(count)
    raise AssertionError("no verdict line:\n" + stdout)


def test_info_prints_the_kernel_of_every_op_and_a_verdict(tmp_path):
    # Conv runs on oneDNN, Reshape and LayerNormalization on the C kernels, and
    # Frobnicate has no kernel: all three kinds in one table, although the loader
    # refuses the model.
    from onnx import numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.ones(8, np.float32), "sc"),
             numpy_helper.from_array(np.array([1, -1, 8], np.int64), "shp")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Reshape", ["c", "shp"], ["r"]),
             helper.make_node("LayerNormalization", ["r", "sc"], ["ln"], axis=-1),
             helper.make_node("Frobnicate", ["ln"], ["f"]),
             helper.make_node("LayerNormalization", ["f", "sc"], ["y"], axis=-1)]
    g = helper.make_graph(nodes, "mix", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 8, 8])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], inits)
    p = tmp_path / "mix.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    r = aiinfer("info", p)
    assert r.returncode == 1
    rows, verdict = _table(r.stdout)
    assert rows == {("Conv", "onednn"): 1, ("Reshape", "c"): 1,
                    ("LayerNormalization", "c"): 2, ("Frobnicate", "unsupported"): 1}, r.stdout
    assert verdict.startswith("verdict: NOT READY: 1 op type (1 node) without a kernel"), verdict

    # The same graph without the made-up op loads: the table is the same, minus it.
    nodes[3] = helper.make_node("Relu", ["ln"], ["f"])
    g = helper.make_graph(nodes, "mix", g.input, g.output, inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    r = aiinfer("info", p)
    assert r.returncode == 0, r.stderr
    rows, verdict = _table(r.stdout)
    assert rows[("Conv", "onednn")] == 1 and rows[("LayerNormalization", "c")] == 2, r.stdout
    assert not any(k == "unsupported" for _, k in rows), r.stdout
    assert verdict.startswith("verdict: ready: "), verdict


def test_info_kernels_follow_the_reference_flag():
    r = aiinfer("info", DIGITS)
    rows, verdict = _table(r.stdout)
    assert rows[("Conv", "onednn")] == 3 and rows[("Gemm", "onednn")] == 1, r.stdout
    r = aiinfer("info", DIGITS, "--reference")
    rows, _ = _table(r.stdout)
    assert rows.get(("Conv", "c")) == 3 and not any(k == "onednn" for _, k in rows), r.stdout


def test_info_counts_ai_onnx_ml_ops_the_engine_runs_as_c(tmp_path):
    import sys
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import ml_models
    model, _, _ = ml_models.forest_classifier(3)
    p = tmp_path / "forest.onnx"
    onnx.save(model, p)
    r = aiinfer("info", p)
    assert r.returncode == 0, r.stderr
    rows, verdict = _table(r.stdout)
    assert rows == {("ai.onnx.ml:TreeEnsembleClassifier", "c"): 1}, r.stdout
    assert verdict == "verdict: ready: 1 node, 0 on oneDNN, 1 in C", verdict
