"""The article's CPU-bound demo with the forward pass in aiserve's engine.

demo.py runs MobileNetV2 (160x160) in torch on every request. Here the same
Flask app hands the forward pass to the model the server loaded
(`model = mnv2=...` in uwsgi_native.ini) through `aiserve.infer`: the request
joins the worker's dynamic batcher with the other app threads' requests, and
the GIL is released while it waits, so Python only does the request and the
response. Run it under aiserve (it cannot run under plain python or uWSGI:
`import aiserve` exists only inside aiserve):

    cd examples/article && ../../build/aiserve uwsgi_native.ini

Routes: GET / (the article's: a forward pass on zeros, "Hello, World!"),
POST /classify (a JPEG or PNG body: top-5 classes, through aiserve.classify),
POST /infer (a .npy body shaped [N,3,160,160] float32: the logits' argmax).
"""
import io

import aiserve
import numpy as np
from flask import Flask, jsonify, request

MODEL = "mnv2"
# The models are loaded before the app is imported, so their shapes are known here.
_input = aiserve.models()[MODEL]["inputs"][0]
zeros = np.zeros([1] + list(_input["shape"][1:]), dtype=_input["dtype"])

app = Flask(__name__)


@app.route("/")
def predict():
    aiserve.infer(MODEL, {_input["name"]: zeros})
    return "Hello, World!"


@app.route("/classify", methods=["POST"])
def classify():
    top_k = request.args.get("top_k", default=5, type=int)
    return jsonify(aiserve.classify(MODEL, request.get_data(), top_k=top_k))


@app.route("/infer", methods=["POST"])
def infer():
    x = np.load(io.BytesIO(request.get_data()), allow_pickle=False)
    out = aiserve.infer(MODEL, [x])
    logits = next(iter(out.values()))
    return jsonify(argmax=logits.argmax(axis=1).tolist())


@app.errorhandler(aiserve.InvalidInput)
def bad_input(e):
    return jsonify(error=str(e)), 400


@app.errorhandler(ValueError)  # np.load of a body that is not .npy
def bad_body(e):
    return jsonify(error=str(e)), 400


@app.errorhandler(aiserve.QueueFull)
def busy(e):
    return jsonify(error=str(e)), 503, {"Retry-After": "1"}
