"""aiinfer --int8: dense convolutions and Gemms on oneDNN's int8 kernels after a
calibration run (opt-in). The results differ from f32 by quantization error,
so these tests measure what matters: top-1 agreement with f32 on a trained
model's real test set (the digits CNN, 450 labelled images), and how far
MobileNetV2's logits move. Runs under the ISA caps of scripts/run-tests.sh
too (AVX2, SSE41), where oneDNN's int8 kernels differ; the bounds hold there.

MobileNetV2's committed weights are random (../shared/models/README.md): its
logits barely depend on the input, so agreement on it would prove nothing;
it checks the logits' error instead."""
import os

import numpy as np

from test_aiinfer import DIGITS, MNV2, MODELS, aiinfer, assert_clean_failure


def run(model, x, out, *extra):
    r = aiinfer("run", model, "--input", x, "--output", out, *extra)
    assert r.returncode == 0, r.stderr
    return np.load(out), r.stderr


def test_int8_digits_agree_with_f32_on_the_whole_test_set(tmp_path):
    x = os.path.join(MODELS, "digits-test-x.npy")
    y = np.load(os.path.join(MODELS, "digits-test-y.npy"))
    calib = tmp_path / "calib.npy"
    np.save(calib, np.load(x)[:64])  # calibrate on a slice, judge on all 450
    f, _ = run(DIGITS, x, tmp_path / "f.npy")
    q, err = run(DIGITS, x, tmp_path / "q.npy", "--int8", calib)
    # two Convs and the Gemm; the 1-channel stem stays f32
    assert "int8: 3 layers (dense Conv, Gemm), calibrated on 64 input(s)" in err
    agree = float((f.argmax(1) == q.argmax(1)).mean())
    acc_f, acc_q = float((f.argmax(1) == y).mean()), float((q.argmax(1) == y).mean())
    # measured: 450/450 agree, 99.3 % accuracy both ways (AVX-512 VNNI, AVX2, SSE4.1)
    assert agree >= 0.99, (agree, acc_f, acc_q)
    assert acc_q >= acc_f - 0.01, (acc_f, acc_q)
    assert not np.array_equal(f, q)  # int8 really ran


def test_int8_mobilenet_logits_stay_close_to_pytorch(tmp_path):
    x = os.path.join(MODELS, "mobilenetv2-160-input.npy")
    ref = np.load(os.path.join(MODELS, "mobilenetv2-160-output.npy"))
    rng = np.random.default_rng(7)
    calib = tmp_path / "calib.npy"
    np.save(calib, np.concatenate([np.load(x)] + [rng.standard_normal((1, 3, 160, 160))
                                                  .astype(np.float32) for _ in range(3)]))
    q, err = run(MNV2, x, tmp_path / "q.npy", "--int8", calib)
    assert "int8: 35 layers (dense Conv, Gemm), calibrated on 4 input(s)" in err  # 1x1s, Gemm
    rel = float(np.abs(q - ref).max() / np.abs(ref).max())
    # measured 1.1 % (AVX-512 VNNI) and 1.5 % (AVX2, SSE4.1) of the largest logit
    assert 1e-4 < rel < 0.03, rel
    assert q.argmax() == ref.argmax()


def test_int8_layers_quantize_in_front_of_int8_kernels():
    r = aiinfer("layers", MNV2, "--int8", os.path.join(MODELS, "mobilenetv2-160-input.npy"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    quant = [k for k, line in enumerate(lines) if ": quantize " in line]
    assert len(quant) == 35  # the 34 1x1 Convs and the classifier Gemm
    for k in quant:  # each quantizing step feeds its own layer, on a oneDNN kernel
        assert lines[k].split()[0] == lines[k + 1].split()[0]
        assert "Conv: onednn " in lines[k + 1] or "Gemm: onednn " in lines[k + 1]
    assert "ref:" not in r.stdout and "ref_" not in r.stdout
    assert r.stdout.count("Conv: onednn") == 52  # depthwise and the stem stay f32, on oneDNN


def test_int8_bad_calibration_input_is_a_clean_error(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 7), np.float32))
    out = tmp_path / "y.npy"
    x = os.path.join(MODELS, "mobilenetv2-160-input.npy")
    assert_clean_failure(aiinfer("run", MNV2, "--input", x, "--output", out, "--int8", bad),
                         "--int8", "76800")
    assert_clean_failure(aiinfer("run", MNV2, "--input", x, "--output", out, "--int8",
                                 tmp_path / "missing.npy"), "missing.npy")
    assert_clean_failure(aiinfer("run", MNV2, "--input", x, "--output", out, "--reference",
                                 "--int8", x), "oneDNN")
    assert not out.exists()


def test_int8_batches_and_threads_give_the_same_classes(tmp_path):
    # the 450 digits as one batch: 1 thread, and 2 threads (split over 1-thread
    # sub-contexts, each building its own int8 plan from the shared weights)
    x = os.path.join(MODELS, "digits-test-x.npy")
    calib = tmp_path / "calib.npy"
    np.save(calib, np.load(x)[:64])
    one, _ = run(DIGITS, x, tmp_path / "one.npy", "--int8", calib)
    two, _ = run(DIGITS, x, tmp_path / "two.npy", "--int8", calib, "--threads", 2)
    first = np.load(x)[:1]
    np.save(tmp_path / "first.npy", first)
    alone, _ = run(DIGITS, tmp_path / "first.npy", tmp_path / "alone.npy", "--int8", calib)
    assert (one.argmax(1) == two.argmax(1)).all()
    # int32 sums are exact; only the f32 parts (bias, pooling, Gemm) may round differently
    assert np.abs(one - two).max() <= 1e-4 * np.abs(one).max()
    assert np.abs(one[:1] - alone).max() <= 1e-4 * np.abs(alone).max()
