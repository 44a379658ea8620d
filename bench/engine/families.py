#!/usr/bin/python3
"""aiinfer vs ONNX Runtime (npm onnxruntime-node) on the transformer and detector
families, on the same .onnx files and the same input files, 1 thread, batch 1:

- minilm:  a MiniLM-L6-shaped sentence encoder (all-MiniLM-L6-v2's shape: 384 wide,
           6 layers, 12 heads, 1536 FFN, 30522-token vocabulary), int64 input_ids
           and attention_mask of 128 tokens, exported with a dynamic sequence axis;
- yolo320: the YOLO-style detector of tests/engine/test_families.py at 320x320
           (32/64/128 channels, C2f blocks with Split/Concat, SiLU, nearest
           Resize, box decoding, TopK), 80 classes.

Both are built by tools/family_models.py from seeded random weights and exported
with torch into a cache directory (AISERVE_BENCH_CACHE, default
~/.cache/aiserve/bench-engine) the first time, or again when that file changes;
nothing is committed or downloaded. Rounds interleave the two engines (the order
alternates); medians of the rounds are printed with the ratio aiinfer / ORT and
each engine's share of the core's FMA peak (the MACs of every MatMul, Gemm,
Conv and fused attention at these shapes, from `aiinfer bench`).

    /usr/bin/python3 bench/engine/families.py [--family F...] [--seconds S] [--rounds R]

Needs a built aiinfer (AISERVE_BUILD, default build/), node_modules and torch."""
import argparse
import hashlib
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AIINFER = os.path.join(os.environ.get("AISERVE_BUILD", os.path.join(ROOT, "build")), "aiinfer")
ORT = ["node", os.path.join(ROOT, "bench", "engine", "ort_bench.js")]
CACHE = os.environ.get("AISERVE_BENCH_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache", "aiserve", "bench-engine"))
# family -> (exported dynamic axes, target ratio aiinfer/ORT from issue 13)
FAMILIES = {"minilm": ("all", 1.0), "yolo320": ("batch", 1.2)}


def generate(name):
    """(model path, [input .npy paths]); exports when missing or stale."""
    src = os.path.join(ROOT, "tools", "family_models.py")
    with open(src, "rb") as f:
        tag = hashlib.sha256(f.read()).hexdigest()[:12]
    d = os.path.join(CACHE, f"{name}-{tag}")
    model = os.path.join(d, f"{name}.onnx")
    if not os.path.exists(model):
        os.makedirs(d, exist_ok=True)
        code = ("import sys, numpy as np; sys.path.insert(0, %r); import family_models as fm; "
                "ins, _ = fm.export(%r, %r, opset=17, dynamic=%r); "
                "[np.save(%r + '/in%%d.npy' %% k, x) for k, x in enumerate(ins)]"
                % (os.path.join(ROOT, "tools"), name, model + ".tmp", FAMILIES[name][0], d))
        subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=900)
        os.replace(model + ".tmp", model)
    ins = sorted(os.path.join(d, f) for f in os.listdir(d) if re.fullmatch(r"in\d+\.npy", f))
    return model, ins


def ours(model, ins, seconds):
    cmd = [AIINFER, "bench", model, "--threads", "1", "--seconds", str(seconds)]
    for f in ins:
        cmd += ["--input", f]
    return cmd


def peer(model, ins, seconds):
    return ORT + [model, "1", "1", str(seconds), "spin"] + ins


def parse(out):
    """(inferences/s, p50 ms, % of the FMA peak or None) from either tool."""
    m = re.search(r"throughput ([0-9.]+) inferences/s", out) or re.search(r"ips ([0-9.]+)", out)
    p = re.search(r"p50 ([0-9.]+) ms", out) or re.search(r"p50_ms ([0-9.]+)", out)
    share = re.search(r"= ([0-9.]+)% of the measured FMA peak", out)
    if not m or not p:
        raise RuntimeError("cannot parse benchmark output:\n" + out)
    return float(m.group(1)), float(p.group(1)), float(share.group(1)) if share else None


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {r.stderr}")
    return parse(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", action="append", choices=sorted(FAMILIES))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    fams = a.family or list(FAMILIES)
    files = {f: generate(f) for f in fams}
    res = {}  # (family, engine) -> [(ips, p50, share)]
    for r in range(a.rounds):
        for f in fams:
            order = [("aiinfer", ours), ("ort", peer)]
            if r % 2:
                order.reverse()
            for name, cmd in order:
                res.setdefault((f, name), []).append(run(cmd(*files[f], a.seconds)))
    print(f"1 thread, batch 1; {a.rounds} interleaved rounds x {a.seconds:g} s; medians; "
          f"{os.cpu_count()} CPUs; ORT {ort_version()}")
    print(f"{'family':10} {'aiinfer inf/s':>14} {'ORT inf/s':>10} {'ratio':>6} {'target':>7}"
          f" {'aiinfer p50':>12} {'ORT p50':>10} {'aiinfer peak':>13} {'ORT peak':>9}")
    for f in fams:
        o, p = res[(f, "aiinfer")], res[(f, "ort")]
        oi, pi = statistics.median(x[0] for x in o), statistics.median(x[0] for x in p)
        ol, pl = statistics.median(x[1] for x in o), statistics.median(x[1] for x in p)
        share = statistics.median(x[2] for x in o if x[2] is not None)
        # same FLOPs per inference: ORT's share scales with its throughput
        print(f"{f:10} {oi:14.1f} {pi:10.1f} {oi / pi:6.2f} {FAMILIES[f][1]:6.1f}x"
              f" {ol:9.2f} ms {pl:7.2f} ms {share:12.0f}% {share * pi / oi:8.0f}%")
    return 0


def ort_version():
    r = subprocess.run(["node", "-e", "console.log(require('onnxruntime-node/package.json')"
                        ".version)"], capture_output=True, text=True, cwd=ROOT)
    return r.stdout.strip() or "?"


if __name__ == "__main__":
    sys.exit(main())
