#!/usr/bin/python3
"""Exports torchvision classifiers with seeded random weights to ONNX, with a
seeded input and PyTorch's output, for aiinfer's whole-model checks.

    /usr/bin/python3 tools/make_fixtures.py [--data-only] OUTDIR [NAME...]

Each OUTDIR/NAME/ gets model.onnx and test_data_set_0/input_0.pb, output_0.pb
(the layout of ONNX's backend tests, so `aiinfer check OUTDIR/NAME` runs it).
The seeded inputs and PyTorch outputs are committed under tests/engine/fixtures
(regenerate with --data-only tests/engine/fixtures: the models are too large to
commit, and the tests re-export them, which is deterministic).
Models that fail to export are reported and skipped. Uses Debian's
python3-torch/torchvision only; nothing is downloaded."""
import os
import sys

import numpy as np
import torch
import torchvision.models as tvm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_export as te  # noqa: E402

# name: (builder, input size, opset)
MODELS = {
    "mobilenet_v2": (tvm.mobilenet_v2, 160, 13),
    "resnet18": (tvm.resnet18, 112, 13),
    "squeezenet1_1": (tvm.squeezenet1_1, 112, 13),
    "shufflenet_v2_x0_5": (tvm.shufflenet_v2_x0_5, 112, 15),
    "mnasnet0_5": (tvm.mnasnet0_5, 112, 17),
    "efficientnet_b0": (tvm.efficientnet_b0, 112, 13),
    "mobilenet_v3_small": (tvm.mobilenet_v3_small, 112, 17),
}


def make(name, out):
    builder, size, opset = MODELS[name]
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    model = te.seeded(builder)
    path = os.path.join(d, "model.onnx")
    te.export(model, (1, 3, size, size), path, opset=opset)
    x = np.random.default_rng(42).standard_normal((2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    te.save_pb(x, os.path.join(d, "test_data_set_0", "input_0.pb"), "input")
    te.save_pb(y, os.path.join(d, "test_data_set_0", "output_0.pb"), "logits")
    return d


def main():
    args = sys.argv[1:]
    data_only = "--data-only" in args
    args = [a for a in args if a != "--data-only"]
    if not args:
        print(__doc__)
        return 2
    out = args[0]
    names = args[1:] or list(MODELS)
    torch.set_num_threads(1)
    bad = 0
    for n in names:
        try:
            d = make(n, out)
            if data_only:
                os.remove(os.path.join(d, "model.onnx"))
            print("exported", d)
        except Exception as e:  # a model that does not export is reported, not fatal
            print(f"skip {n}: {type(e).__name__}: {e}")
            bad += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
