#!/usr/bin/python3
"""How well aiinfer --int8 keeps a trained network's answers: trains a small
MobileNetV2-style network (inverted residual blocks: 1x1 expand, ReLU6,
depthwise 3x3, 1x1 project, residual adds, BatchNorm folded at export) on
sklearn's digits upsampled to 32x32, exports it to ONNX, and runs the 450
held-out images through aiinfer in f32 and with --int8 calibrated on 64
training images. Prints accuracy both ways and top-1 agreement.

    /usr/bin/python3 tools/int8_agreement.py [OUTDIR]   (default: a temp dir)

Needs build/aiinfer (AISERVE_BUILD). Takes about a minute of CPU (training).
The committed MobileNetV2 has random weights, so this is the trained check of
the int8 path's MobileNet-shaped layers; docs/engine.md quotes its result."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AIINFER = os.path.join(os.environ.get("AISERVE_BUILD", os.path.join(ROOT, "build")), "aiinfer")


def block(cin, cout, stride, t=6):
    h = cin * t
    return nn.Sequential(nn.Conv2d(cin, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
                         nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h),
                         nn.ReLU6(), nn.Conv2d(h, cout, 1, bias=False), nn.BatchNorm2d(cout))


class Residual(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def main(argv):
    out = argv[1] if len(argv) > 1 else tempfile.mkdtemp(prefix="int8-")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    d = load_digits()
    x = torch.nn.functional.interpolate(torch.tensor((d.images / 16).astype(np.float32)[:, None]),
                                        size=32, mode="bilinear", align_corners=False)
    y = d.target
    idx = np.random.default_rng(0).permutation(len(y))
    train, test = idx[:1347], idx[1347:]
    net = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU6(),
                        block(16, 24, 1), Residual(block(24, 24, 1)),
                        block(24, 32, 2), Residual(block(32, 32, 1)),
                        block(32, 64, 2), Residual(block(64, 64, 1)),
                        nn.Conv2d(64, 256, 1), nn.BatchNorm2d(256), nn.ReLU6(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(12):
        net.train()
        perm = torch.randperm(len(train))
        for i in range(0, len(train), 64):
            b = train[perm[i:i + 64].numpy()]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[b]), torch.tensor(y[b])).backward()
            opt.step()
    net.eval()
    model = os.path.join(out, "inverted-residual-digits.onnx")
    torch.onnx.export(net, x[:1], model, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}}, opset_version=13)
    files = {k: os.path.join(out, k + ".npy") for k in ("test", "calib", "f32", "int8")}
    np.save(files["test"], x[test].numpy())
    np.save(files["calib"], x[train[:64]].numpy())
    run = [AIINFER, "run", model, "--input", files["test"], "--output"]
    subprocess.run(run + [files["f32"]], check=True)
    r = subprocess.run(run + [files["int8"], "--int8", files["calib"]], check=True,
                       capture_output=True, text=True)
    f, q = np.load(files["f32"]), np.load(files["int8"])
    labels = y[test]
    print(r.stderr.strip())
    print(f"{len(labels)} held-out images: accuracy f32 {(f.argmax(1) == labels).mean():.4f}, "
          f"int8 {(q.argmax(1) == labels).mean():.4f}; top-1 agreement "
          f"{(f.argmax(1) == q.argmax(1)).sum()}/{len(labels)}; largest logit error "
          f"{(np.abs(q - f).max(1) / np.abs(f).max(1)).max():.3f} of the item's largest logit")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
