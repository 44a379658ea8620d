#!/usr/bin/python3
"""MobileNetV2@160's inverted residual block shapes as one-block ONNX models (seeded
random weights, BatchNorm already folded: Conv + bias, Clip(0, 6)), each behind a
1x1 Conv that makes its input (so the residual Add fuses into the project Conv as in
the real network), for A/B probes of the fused kernel (engine/irb.c) against oneDNN
with tools/ab_probe.c, block by block:

    /usr/bin/python3 tools/irb_blocks.py OUTDIR
    for f in OUTDIR/*.onnx; do build/ab_probe $f 400 AIINFER_FUSE_IRB=0 AIINFER_FUSE_IRB=1; done
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# (name, h, w, cin, cexp or None (no expand), cout, stride, residual)
BLOCKS = [
    ("b01", 80, 80, 32, None, 16, 1, False), ("b02", 80, 80, 16, 96, 24, 2, False),
    ("b03", 40, 40, 24, 144, 24, 1, True), ("b04", 40, 40, 24, 144, 32, 2, False),
    ("b05", 20, 20, 32, 192, 32, 1, True), ("b07", 20, 20, 32, 192, 64, 2, False),
    ("b08", 10, 10, 64, 384, 64, 1, True), ("b11", 10, 10, 64, 384, 96, 1, False),
    ("b12", 10, 10, 96, 576, 96, 1, True), ("b14", 10, 10, 96, 576, 160, 2, False),
    ("b15", 5, 5, 160, 960, 160, 1, True), ("b17", 5, 5, 160, 960, 320, 1, False),
]


def make(name, h, w, cin, cexp, cout, stride, residual, rng):
    inits, nodes = [], []

    def const(n, a):
        inits.append(numpy_helper.from_array(a.astype(np.float32), n))
        return n

    def conv(x, y, co, ci, k, group=1, stride=1):
        wn = const(f"{y}_w", rng.uniform(-0.3, 0.3, (co, ci // group, k, k)))
        bn = const(f"{y}_b", rng.uniform(-0.3, 0.3, (co,)))
        nodes.append(helper.make_node("Conv", [x, wn, bn], [y], kernel_shape=[k, k],
                                      pads=[k // 2] * 4, strides=[stride] * 2, group=group))
        return y

    lo, hi = const("lo", np.array(0)), const("hi", np.array(6))

    def relu6(x):
        nodes.append(helper.make_node("Clip", [x, lo, hi], [x + "6"]))
        return x + "6"

    x = conv("in", "x", cin, cin, 1)
    e = relu6(conv(x, "e", cexp, cin, 1)) if cexp else x
    c = cexp or cin
    d = relu6(conv(e, "d", c, c, 3, group=c, stride=stride))
    y = conv(d, "p", cout, c, 1)
    if residual:
        nodes.append(helper.make_node("Add", [y, x], ["y"]))
        y = "y"
    oh, ow = (h - 1) // stride + 1, (w - 1) // stride + 1
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(
        "in", TensorProto.FLOAT, [1, cin, h, w])], [helper.make_tensor_value_info(
            y, TensorProto.FLOAT, [1, cout, oh, ow])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/irb-blocks"
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(160)
    for b in BLOCKS:
        onnx.save(make(*b, rng), os.path.join(out, f"{b[0]}.onnx"))
    print(out)


if __name__ == "__main__":
    main()
