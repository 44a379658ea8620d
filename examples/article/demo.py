"""The article's CPU-bound demo: a MobileNetV2 forward pass per request.

The article builds tf.keras.applications.MobileNetV2(input_shape=(160, 160, 3))
and predicts on zeros; TensorFlow is not packaged for Debian, so this is the
same network from torchvision (random weights: the work, not the answer,
matters). TORCH_THREADS=n calls torch.set_num_threads(n) at import, the set-up
that hangs preforked uWSGI workers when n = 2.
"""
import os

import torch
import torchvision
from flask import Flask

if os.environ.get("TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["TORCH_THREADS"]))

model = torchvision.models.mobilenet_v2()
model.eval()
zeros = torch.zeros(1, 3, 160, 160)

app = Flask(__name__)


@app.route("/")
def predict():
    with torch.no_grad():
        model(zeros)
    return "Hello, World!"


@app.route("/info")
def info():
    return {"torch_threads": torch.get_num_threads(), "pid": os.getpid()}


if __name__ == "__main__":
    app.run(host="0.0.0.0", threaded=False)
