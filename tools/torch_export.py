"""Shared helpers for the tools/ scripts: seeded torchvision models exported to
ONNX with Debian's python3-torch, and TensorProto I/O for fixtures."""
import io
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper


def seeded(builder, seed=0):
    """A torchvision model with seeded random weights and randomized (but fixed)
    BatchNorm statistics, so BN folding is really exercised, in eval mode."""
    torch.manual_seed(seed)
    return seeded_bn(builder(weights=None), seed)


def seeded_bn(m, seed=0):
    """Randomized (but fixed) BatchNorm statistics for module m, in eval mode."""
    g = torch.Generator().manual_seed(seed + 1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            mod.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            mod.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return m.eval()


def export(model, shape, path, opset=13, dynamic=True, in_name="input", out_name="logits"):
    x = torch.zeros(*shape)
    kw = {}
    if dynamic:
        kw["dynamic_axes"] = {in_name: {0: "N"}, out_name: {0: "N"}}
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=opset, do_constant_folding=True,
                          input_names=[in_name], output_names=[out_name], **kw)
    onnx.checker.check_model(onnx.load(path))


def save_pb(arr, path, name=""):
    t = numpy_helper.from_array(np.ascontiguousarray(arr), name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)
