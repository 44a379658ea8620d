"""Classic ML (ai.onnx.ml) through aiinfer: models built with onnx.helper from
scikit-learn estimators trained in the test on seeded data (tools/ml_models.py),
run on both backends with `aiinfer run`, and compared with scikit-learn's own
predict / predict_proba / transform. Labels must match exactly; scores within
1e-4 of their scale."""
import os
import subprocess
import sys

import numpy as np
import pytest

from harness import binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import ml_models  # noqa: E402


def aiinfer(*args, timeout=120):
    return subprocess.run([binary("aiinfer"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def run_model(tmp_path, model, x, nout, reference):
    import onnx
    p, xi = tmp_path / "m.onnx", tmp_path / "x.npy"
    onnx.save(model, p)
    np.save(xi, x)
    outs = [tmp_path / f"o{k}.npy" for k in range(nout)]
    args = ["run", p, "--input", xi]
    for o in outs:
        args += ["--output", o]
    r = aiinfer(*args, *(["--reference"] if reference else []))
    assert r.returncode == 0, r.stderr
    return [np.load(o) for o in outs]


@pytest.mark.parametrize("mode", ["onednn", "reference"])
@pytest.mark.parametrize("name", sorted(ml_models.BUILDERS))
def test_sklearn_model_matches_sklearn(tmp_path, name, mode):
    model, x, want = ml_models.BUILDERS[name]()
    got = run_model(tmp_path, model, x, len(model.graph.output), mode == "reference")
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.size == w.size, (g.shape, w.shape)
        g = g.reshape(w.shape)
        if w.dtype.kind in "iu":
            assert g.dtype == np.int64
            assert (g == w).all(), f"{int((g != w).sum())} labels differ"
        else:
            scale = max(float(np.abs(w).max()), 1e-6)
            assert float(np.abs(g - w).max()) <= 1e-4 * scale


def test_info_lists_the_ml_ops(tmp_path):
    import onnx
    model, _, _ = ml_models.pipeline()
    p = tmp_path / "p.onnx"
    onnx.save(model, p)
    r = aiinfer("info", p)
    assert r.returncode == 0, r.stderr
    assert "LinearClassifier" in r.stdout and "ArrayFeatureExtractor" in r.stdout
    assert "output label int64 [N]" in r.stdout


def test_zipmap_is_refused_with_the_export_option_named(tmp_path):
    import onnx
    from onnx import helper
    model, _, _ = ml_models.logistic_regression(3)
    g = model.graph
    g.node.append(helper.make_node("ZipMap", ["probabilities"], ["zipped"], domain="ai.onnx.ml",
                                   classlabels_int64s=[0, 1, 2]))
    p = tmp_path / "zip.onnx"
    onnx.save(model, p)
    r = aiinfer("info", p)
    assert r.returncode != 0
    assert "ZipMap" in r.stderr and "zipmap" in r.stderr


def test_tree_pointing_to_a_missing_node_is_a_load_error(tmp_path):
    import onnx
    model, _, _ = ml_models.forest_classifier(3)
    node = model.graph.node[0]
    for a in node.attribute:
        if a.name == "nodes_truenodeids":
            a.ints[0] = 100000
    p = tmp_path / "bad.onnx"
    onnx.save(model, p)
    r = aiinfer("info", p)
    assert r.returncode != 0
    assert "forest" in r.stderr and "missing node" in r.stderr


def test_feature_index_out_of_range_is_named(tmp_path):
    import onnx
    from onnx import numpy_helper
    model, x, _ = ml_models.pipeline()
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.array([2, 9, 3], np.int64),
                                                                "cols"))
    p, xi = tmp_path / "bad.onnx", tmp_path / "x.npy"
    onnx.save(model, p)
    np.save(xi, x)
    r = aiinfer("run", p, "--input", xi, "--output", tmp_path / "a.npy", "--output",
                tmp_path / "b.npy")
    assert r.returncode != 0
    assert "pick" in r.stderr and "index 9" in r.stderr
