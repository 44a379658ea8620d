#!/usr/bin/python3
"""Dump a MobileNet-style ONNX model (Conv, Clip, Add, GlobalAveragePool,
Flatten, Gemm) to the flat file xnn_bench.c reads, weights already in
XNNPACK's layouts (NHWC activations):

    /usr/bin/python3 bench/engine/xnn/export.py MODEL.onnx OUT.xnnw

File (little-endian): magic b"AIXNNW01", u32 C, H, W of the input, u32 number
of values, u32 number of ops, then per op a record of 20 u32 followed by its
float data:

    kind in0 in1 out  kh kw sh sw  pt pl pb pr  dh dw group cin  cout nw nb 0
    f32 out_min, out_max; f32 weights[nw]; f32 bias[nb]

kind 1 conv (cin/cout per whole op, group == cin == cout means depthwise),
2 clamp, 3 add, 4 global average pool, 5 fully connected. Value 0 is the
network input, value 1 its output. Anything else in the graph is refused
with the node's name, so a different model fails loudly instead of being
benchmarked wrong."""
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper

CONV, CLAMP, ADD, GAP, FC = 1, 2, 3, 4, 5


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    m = onnx.load(argv[1])
    g = m.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    consts = {}
    for n in g.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(attrs(n)["value"])
    inp = [i for i in g.input if i.name not in inits][0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    c, h, w = dims[1], dims[2], dims[3]
    ids = {inp.name: 0, g.output[0].name: 1}
    alias = {}  # Flatten output -> its input (the FC reshapes itself)

    def vid(name):
        name = alias.get(name, name)
        if name not in ids:
            ids[name] = len(ids)
        return ids[name]

    ops = []
    for n in g.node:
        a = attrs(n)
        rec = [0] * 20
        data = [np.array([-np.inf, np.inf], np.float32)]
        if n.op_type == "Constant":
            continue
        if n.op_type == "Conv":
            wt = inits[n.input[1]].astype(np.float32)
            b = inits[n.input[2]].astype(np.float32) if len(n.input) > 2 else \
                np.zeros(wt.shape[0], np.float32)
            grp = a.get("group", 1)
            o, ipg, kh, kw = wt.shape
            cin = ipg * grp
            pads = a.get("pads", [0, 0, 0, 0])
            st = a.get("strides", [1, 1])
            dl = a.get("dilations", [1, 1])
            if grp == 1:
                xw = wt.transpose(0, 2, 3, 1)  # OIHW -> OHWI
            elif grp == cin and ipg == 1:
                xw = wt.transpose(1, 2, 3, 0)  # [C*m,1,kh,kw] -> [1,kh,kw,C*m]
            else:
                raise SystemExit(f"{n.name}: grouped convolution not supported")
            rec[:20] = [CONV, vid(n.input[0]), 0, vid(n.output[0]), kh, kw, st[0], st[1],
                        pads[0], pads[1], pads[2], pads[3], dl[0], dl[1], grp, cin, o,
                        xw.size, b.size, 0]
            data += [np.ascontiguousarray(xw).ravel(), b]
        elif n.op_type == "Clip":
            lo = float(consts.get(n.input[1], inits.get(n.input[1], -np.inf)))
            hi = float(consts.get(n.input[2], inits.get(n.input[2], np.inf)))
            rec[:4] = [CLAMP, vid(n.input[0]), 0, vid(n.output[0])]
            data = [np.array([lo, hi], np.float32)]
        elif n.op_type == "Add":
            rec[:4] = [ADD, vid(n.input[0]), vid(n.input[1]), vid(n.output[0])]
        elif n.op_type == "GlobalAveragePool":
            rec[:4] = [GAP, vid(n.input[0]), 0, vid(n.output[0])]
        elif n.op_type == "Flatten":
            alias[n.output[0]] = alias.get(n.input[0], n.input[0])
            continue
        elif n.op_type == "Gemm":
            wt = inits[n.input[1]].astype(np.float32)
            if not a.get("transB", 0):
                wt = wt.T
            if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                raise SystemExit(f"{n.name}: only Gemm(alpha=1, beta=1, transA=0)")
            b = inits[n.input[2]].astype(np.float32)
            rec[:4] = [FC, vid(n.input[0]), 0, vid(n.output[0])]
            rec[15], rec[16], rec[17], rec[18] = wt.shape[1], wt.shape[0], wt.size, b.size
            data += [np.ascontiguousarray(wt).ravel(), b]
        else:
            raise SystemExit(f"{n.name}: operator {n.op_type} not supported by the exporter")
        ops.append((rec, data))
    with open(argv[2], "wb") as f:
        f.write(b"AIXNNW01")
        f.write(struct.pack("<5I", c, h, w, len(ids), len(ops)))
        for rec, data in ops:
            f.write(struct.pack("<20I", *rec))
            for d in data:
                f.write(np.asarray(d, "<f4").tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
