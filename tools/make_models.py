#!/usr/bin/python3
"""Makes the project's committed models with Debian's python3-torch and
python3-sklearn; nothing is downloaded.

    /usr/bin/python3 tools/make_models.py [OUTDIR]     (default: models/)

- mobilenetv2-160.onnx: torchvision MobileNetV2, seeded random weights
  (torch.manual_seed(0), BatchNorm statistics from seed 1), input [N,3,160,160],
  output logits [N,1000], opset 13: the article's CPU-bound workload.
- digits.onnx: a small CNN trained on sklearn.datasets.load_digits (8x8 grey
  images of handwritten digits, 1797 samples). Input "image" [N,1,8,8] float32
  with pixel values 0..16 scaled to 0..1; output "logits" [N,10].
  Beside it: digits.labels.txt (class names, one per line) and the held-out test
  split digits-test-x.npy [N,1,8,8] float32, digits-test-y.npy [N] int64.
  Training is seeded and deterministic on one thread."""
import os
import sys

import numpy as np
import torch
import torchvision.models as tvm
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_export as te  # noqa: E402


class DigitsNet(torch.nn.Module):
    """Conv-BN-ReLU x2, max-pool, conv, global average pool, linear."""

    def __init__(self):
        super().__init__()
        c = torch.nn
        self.features = c.Sequential(
            c.Conv2d(1, 16, 3, padding=1), c.BatchNorm2d(16), c.ReLU(),
            c.Conv2d(16, 32, 3, padding=1), c.BatchNorm2d(32), c.ReLU(),
            c.MaxPool2d(2),
            c.Conv2d(32, 64, 3, padding=1), c.BatchNorm2d(64), c.ReLU(),
        )
        self.pool = c.AdaptiveAvgPool2d(1)
        self.drop = c.Dropout(0.2)
        self.fc = c.Linear(64, 10)

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return self.fc(self.drop(x))


def make_digits(out):
    torch.manual_seed(0)
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    model = DigitsNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(40):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    print(f"digits: torch accuracy on the held-out split {acc:.4f} ({len(yte)} images)")
    te.export(model, (1, 1, 8, 8), os.path.join(out, "digits.onnx"), opset=13, in_name="image")
    np.save(os.path.join(out, "digits-test-x.npy"), xte)
    np.save(os.path.join(out, "digits-test-y.npy"), yte)
    with open(os.path.join(out, "digits.labels.txt"), "w") as f:
        f.write("".join(f"{n}\n" for n in d.target_names))
    return acc


def make_mobilenet(out):
    model = te.seeded(tvm.mobilenet_v2)
    path = os.path.join(out, "mobilenetv2-160.onnx")
    te.export(model, (1, 3, 160, 160), path, opset=13)
    x = np.random.default_rng(42).standard_normal((1, 3, 160, 160)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    np.save(os.path.join(out, "mobilenetv2-160-input.npy"), x)
    np.save(os.path.join(out, "mobilenetv2-160-output.npy"), y)
    print(f"mobilenetv2-160: argmax {int(y.argmax())}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    make_mobilenet(out)
    acc = make_digits(out)
    return 0 if acc >= 0.97 else 1


if __name__ == "__main__":
    sys.exit(main())
