#!/usr/bin/python3
"""Where MobileNetV2's time goes, by layer kind, and each layer's share of the FMA
peak: runs `aiinfer layers --time` (each step's mean over 50 runs) ROUNDS times and
keeps each step's fastest round (the machine is shared: the minimum is the least
disturbed), counts each Conv's and Gemm's MACs from the ONNX shapes, and measures
the FMA peak of the ISA oneDNN runs with `aiinfer bench` (engine/peak.c).

    /usr/bin/python3 tools/layer_shares.py [MODEL] [--rounds R] [--per-layer]
    ONEDNN_MAX_CPU_ISA=AVX2 /usr/bin/python3 tools/layer_shares.py

Kinds: stem (the first Conv), expand (1x1, more channels out than in), dw
(depthwise 3x3), project (the other 1x1s of the blocks), fused (a whole inverted
residual block on engine/irb.c: its expand and depthwise steps fold into it), head
(the last 1x1 Conv, pooling, the classifier) and other. A probe, not a benchmark."""
import os
import re
import subprocess
import sys
from collections import OrderedDict

import onnx
from onnx import shape_inference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, os.environ.get("AISERVE_BUILD", "build"), "aiinfer")


def dims(vi):
    return [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]


def macs_by_node(path):
    m = shape_inference.infer_shapes(onnx.load(path))
    g = m.graph
    shapes = {vi.name: dims(vi) for vi in list(g.value_info) + list(g.input) + list(g.output)}
    inits = {t.name: list(t.dims) for t in g.initializer}
    out = OrderedDict()
    for n in g.node:
        if n.op_type == "Conv":
            w = inits[n.input[1]]
            y = shapes[n.output[0]]
            group = next((a.i for a in n.attribute if a.name == "group"), 1)
            x = shapes[n.input[0]]
            out[n.name] = (w[0] * y[2] * y[3] * w[1] * w[2] * w[3],
                           "dw" if group > 1 else ("1x1" if w[2] == 1 else "kxk"), x[1], w[0])
        elif n.op_type == "Gemm":
            w = inits[n.input[1]]
            out[n.name] = (w[0] * w[1], "gemm", 0, 0)
    return out


def timed(path, rounds):
    best = OrderedDict()
    for _ in range(rounds):
        r = subprocess.run([BIN, "layers", path, "--time"], capture_output=True, text=True,
                           check=True)
        for ln in r.stdout.splitlines():
            m = re.match(r"(\S+) (\S+): (.*?)\s+([0-9.]+) us\s+[0-9.]+%$", ln) or \
                re.match(r"(layout)(): (.*?)\s+([0-9.]+) us\s+[0-9.]+%$", ln)
            if m:
                key = (m[1], m[3])
                best[key] = min(best.get(key, 1e18), float(m[4]))
    return best


def peak():
    r = subprocess.run([BIN, "bench", os.path.join(ROOT, "models/digits.onnx"), "--threads", "1",
                        "--seconds", "0.3"], capture_output=True, text=True, check=True)
    m = re.search(r"measured FMA peak ([0-9.]+) GFLOP/s \(([^,]+),", r.stdout)
    return float(m[1]), m[2]


def main():
    args = sys.argv[1:]
    path = next((a for a in args if a.endswith(".onnx")),
                os.path.join(ROOT, "models/mobilenetv2-160.onnx"))
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 5
    macs = macs_by_node(path)
    steps = timed(path, rounds)
    pk, isa = peak()
    convs = [k for k in macs if macs[k][1] != "gemm"]
    kinds, rows = OrderedDict(), []
    fused_macs = {}
    pending = 0
    for (name, kern), us in steps.items():
        mac, kind = macs.get(name, (0, "other", 0, 0))[:2], None
        mac, typ = mac
        if "folded into its fused" in kern:
            pending += mac
            continue
        if "fused inverted residual" in kern:
            kind, mac = "fused", mac + pending
            pending = 0
        elif name == convs[0]:
            kind = "stem"
        elif name == convs[-1] or typ == "gemm" or "GlobalAveragePool" in name or \
                "Flatten" in name:
            kind = "head"
        elif typ == "dw":
            kind = "dw"
        elif typ == "1x1":
            kind = "expand" if macs[name][3] > macs[name][2] else "project"
        else:
            kind = "other"
        k = kinds.setdefault(kind, [0.0, 0])
        k[0] += us
        k[1] += mac
        rows.append((name, kind, kern, us, mac))
    total = sum(v[0] for v in kinds.values())
    allmac = sum(v[1] for v in kinds.values())
    print(f"{os.path.basename(path)}: {total / 1000:.3f} ms per run (sum of each step's best of "
          f"{rounds} rounds), {2 * allmac / total / 1e3:.1f} GFLOP/s = "
          f"{100 * 2 * allmac / total / 1e3 / pk:.0f}% of the measured {isa} FMA peak {pk:.0f} "
          f"GFLOP/s")
    print(f"{'kind':8} {'time us':>9} {'share':>6} {'GFLOP/s':>8} {'% peak':>7}")
    for kind, (us, mac) in kinds.items():
        gf = 2 * mac / us / 1e3 if us else 0
        print(f"{kind:8} {us:9.1f} {100 * us / total:5.1f}% {gf:8.1f} {100 * gf / pk:6.0f}%")
    if "--per-layer" in args:
        for name, kind, kern, us, mac in rows:
            gf = 2 * mac / us / 1e3 if us else 0
            print(f"{kind:8} {us:8.1f} us {gf:6.1f} GFLOP/s {100 * gf / pk:4.0f}%  {name}  [{kern}]")


if __name__ == "__main__":
    main()
