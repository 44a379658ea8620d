"""The digits model's held-out split (models/digits-test-{x,y}.npy, made by
tools/make_models.py): 8x8 grey images in [0, 1], sent as PNG files."""
import os

import numpy as np


def held_out(models_dir):
    x = np.load(os.path.join(models_dir, "digits-test-x.npy"))  # [N,1,8,8] float32 in [0,1]
    y = np.load(os.path.join(models_dir, "digits-test-y.npy"))
    images = [np.rint(a[0] * 255).astype(np.uint8) for a in x]
    opts = ["--labels=digits=" + os.path.join(models_dir, "digits.labels.txt")]
    return images, y, opts
