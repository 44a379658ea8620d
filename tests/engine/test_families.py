"""Model families beyond CNN classifiers, end to end through `aiinfer run` on both
backends against PyTorch's own outputs: a BERT-class encoder (opset 17 with
LayerNormalization and opset 14 with its decomposition), torchvision's
VisionTransformer, a YOLO-style detector, a U-Net segmenter, and bidirectional
batch_first LSTM / GRU / RNN. Models are built in tools/family_models.py from
seeded random weights and exported inside the test; nothing is downloaded.
Tolerance: 1e-4 of each output's scale (measured ~1e-6)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from harness import binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

CASES = [("bert", 17), ("bert", 14), ("vit", 17), ("yolo", 17), ("unet", 17), ("lstm", 17),
         ("gru", 17), ("rnn", 17)]


def aiinfer(*args, timeout=300):
    return subprocess.run([binary("aiinfer"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import family_models as fm
    d = tmp_path_factory.mktemp("families")
    out = {}
    for name, opset in CASES:
        p = d / f"{name}-{opset}.onnx"
        ins, want = fm.export(name, str(p), opset=opset)
        files = []
        for k, x in enumerate(ins):
            files.append(d / f"{name}-{opset}-in{k}.npy")
            np.save(files[-1], x)
        out[(name, opset)] = (p, files, want)
    return out


def run(path, ins, nout, outdir, reference):
    args = ["run", path]
    for f in ins:
        args += ["--input", f]
    outs = [outdir / f"out{k}.npy" for k in range(nout)]
    for o in outs:
        args += ["--output", o]
    return aiinfer(*args, *(["--reference"] if reference else [])), outs


def assert_close(got, want):
    assert got.size == want.size, (got.shape, want.shape)
    got = got.reshape(want.shape)
    if want.dtype.kind in "iu":
        assert (got == want).all()
        return
    scale = max(float(np.abs(want).max()), 1e-6)
    err = float(np.abs(got - want).max())
    assert err <= 1e-4 * scale, f"max error {err:g}, scale {scale:g}"


@pytest.mark.parametrize("mode", ["onednn", "reference"])
@pytest.mark.parametrize("name,opset", CASES)
def test_family_matches_pytorch(exported, tmp_path, name, opset, mode):
    path, ins, want = exported[(name, opset)]
    r, outs = run(path, ins, len(want), tmp_path, mode == "reference")
    assert r.returncode == 0, r.stderr
    for o, w in zip(outs, want):
        assert_close(np.load(o), w)


@pytest.mark.parametrize("name", ["bert", "unet", "lstm"])
def test_another_batch_size_matches_pytorch(exported, tmp_path, name):
    import family_models as fm
    path, ins, _ = exported[(name, 17)]
    xs = [np.load(f) for f in ins]
    xs = [np.concatenate([x, x[:1]], 0) for x in xs]  # batch + 1
    if name == "bert":
        xs[1][-1, 4:] = 0
    files = []
    for k, x in enumerate(xs):
        files.append(tmp_path / f"in{k}.npy")
        np.save(files[-1], x)
    want = fm.run_torch(name, xs)
    r, outs = run(path, files, len(want), tmp_path, False)
    assert r.returncode == 0, r.stderr
    for o, w in zip(outs, want):
        assert_close(np.load(o), w)


def test_out_of_range_token_id_names_the_node_and_index(exported, tmp_path):
    path, ins, want = exported[("bert", 17)]
    ids = np.load(ins[0])
    ids[0, 2] = 500
    bad = tmp_path / "ids.npy"
    np.save(bad, ids)
    r, _ = run(path, [bad, ins[1]], len(want), tmp_path, False)
    assert r.returncode != 0
    assert "Gather" in r.stderr and "index 500 out of range" in r.stderr


def test_mask_of_another_length_names_the_input(exported, tmp_path):
    path, ins, want = exported[("bert", 17)]
    mask = np.load(ins[1])[:, :5]
    bad = tmp_path / "mask.npy"
    np.save(bad, mask)
    r, _ = run(path, [ins[0], bad], len(want), tmp_path, False)
    assert r.returncode != 0
    assert "attention_mask" in r.stderr
