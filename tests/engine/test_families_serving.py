"""The new model families through aiserve's KServe v2 endpoint (JSON), compared
with PyTorch and scikit-learn: a BERT-class encoder with int64 ids and mask and
three outputs, a YOLO-style detector with int64 class output, a bidirectional
LSTM, and a scikit-learn forest classifier (int64 labels + probabilities).
Out-of-range token ids are a 400 naming the node."""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "model"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))

import mdl_kit as K  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import family_models as fm
    import ml_models
    import onnx
    d = tmp_path_factory.mktemp("serve")
    out = {}
    for name in ("bert", "yolo", "lstm"):
        p = str(d / f"{name}.onnx")
        ins, want = fm.export(name, p, opset=17)
        out[name] = (p, ins, want)
    model, x, want = ml_models.forest_classifier(3)
    p = str(d / "forest.onnx")
    onnx.save(model, p)
    out["forest"] = (p, [x[:8]], [w[:8] for w in want])
    return out


@pytest.fixture
def server(models, procs):
    args = ["--processes=1", "--max-batch-size=8", "--limit-post=8m"]
    for name, (p, _, _) in models.items():
        args.append(f"--model={name}={p}")
    return K.start(procs, args)


def infer(server, name, model_inputs, ins):
    body = {"inputs": [{"name": n, "shape": list(x.shape), "datatype": K.dtype_name(x),
                        "data": x.ravel().tolist()} for n, x in zip(model_inputs, ins)]}
    return server.json("POST", f"/v2/models/{name}/infer", body)


def input_names(server, name):
    st, meta = server.json("GET", f"/v2/models/{name}")
    assert st == 200, meta
    return [i["name"] for i in meta["inputs"]], meta


@pytest.mark.parametrize("name", ["bert", "yolo", "lstm", "forest"])
def test_family_over_v2_json_matches_the_framework(server, models, name):
    _, ins, want = models[name]
    names, meta = input_names(server, name)
    assert meta["inputs"][0]["shape"][0] == -1  # dynamic batch shown as -1
    st, res = infer(server, name, names, ins)
    assert st == 200, res
    assert len(res["outputs"]) == len(want)
    for o, w in zip(res["outputs"], want):
        w = np.asarray(w)
        got = np.asarray(o["data"]).reshape(o["shape"])
        assert got.size == w.size
        got = got.reshape(w.shape)
        if w.dtype.kind in "iu":
            assert o["datatype"] == "INT64" and (got == w).all()
        else:
            assert o["datatype"] == "FP32"
            assert float(np.abs(got - w).max()) <= 1e-4 * max(float(np.abs(w).max()), 1e-6)


def test_out_of_range_token_id_is_a_400_naming_the_node(server, models):
    _, ins, _ = models["bert"]
    names, _ = input_names(server, "bert")
    ids = ins[0].copy()
    ids[0, 1] = 1000
    st, res = infer(server, "bert", names, [ids, ins[1]])
    assert st == 400, res
    assert "Gather" in res["error"] and "1000" in res["error"]
    st, _ = infer(server, "bert", names, ins)  # the worker still serves
    assert st == 200
