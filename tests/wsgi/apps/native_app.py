"""A Flask app that calls the server's models in-process (tests/wsgi/test_aiserve_module.py).

Bodies and answers are numpy files: POST /infer/NAME takes a .npy (one input)
or .npz (inputs by name) and answers an .npz of the outputs; model errors
become 4xx/5xx JSON as an app would map them.
"""
import io
import os
import threading

import aiserve
import numpy as np
from flask import Flask, jsonify, request

# What the app saw when it was imported (in the master, or a worker with lazy-apps).
IMPORT_MODELS = sorted(aiserve.models())
try:
    aiserve.infer("tiny", [np.zeros((1, 4), np.float32)]) if "tiny" in IMPORT_MODELS else None
    IMPORT_INFER = "ok"
except aiserve.InferenceError as e:
    IMPORT_INFER = "%s: %s" % (type(e).__name__, e)
IMPORT_PID = os.getpid()

app = Flask(__name__)


def _inputs(body):
    data = np.load(io.BytesIO(body), allow_pickle=False)
    if isinstance(data, np.ndarray):
        return [data]
    return {k: data[k] for k in data.files}


def _npz(out):
    b = io.BytesIO()
    np.savez(b, **out)
    return b.getvalue(), 200, {"Content-Type": "application/octet-stream"}


@app.route("/infer/<name>", methods=["POST"])
def infer(name):
    inputs = _inputs(request.get_data())
    view = request.args.get("view")
    if view == "transpose":  # a non-contiguous view of the same values
        inputs = [np.ascontiguousarray(inputs[0].T).T]
        assert not inputs[0].flags.c_contiguous
    elif view == "bigendian":
        inputs = [inputs[0].astype(inputs[0].dtype.newbyteorder(">"))]
    elif view == "float64":
        inputs = [inputs[0].astype(np.float64)]
    elif view == "list":
        inputs = [inputs[0].tolist()]
    outputs = request.args.get("outputs")
    out = aiserve.infer(name, inputs, outputs=outputs.split(",") if outputs else None)
    return _npz(out)


@app.route("/thread/<name>", methods=["POST"])
def in_own_thread(name):
    """Calls infer from a thread the app starts itself."""
    inputs = _inputs(request.get_data())
    box = {}

    def run():
        try:
            box["out"] = aiserve.infer(name, inputs)
        except Exception as e:  # reported to the client below
            box["err"] = "%s: %s" % (type(e).__name__, e)

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    if "err" in box:
        return jsonify(error=box["err"]), 500
    return _npz(box["out"])


@app.route("/classify/<name>", methods=["POST"])
def classify(name):
    top_k = request.args.get("top_k", default=5, type=int)
    return jsonify(aiserve.classify(name, request.get_data(), top_k=top_k))


@app.route("/models")
def models():
    return jsonify(models=aiserve.models(), import_models=IMPORT_MODELS,
                   import_infer=IMPORT_INFER, import_pid=IMPORT_PID, pid=os.getpid())


@app.errorhandler(aiserve.InvalidInput)
def bad_input(e):
    return jsonify(error=str(e), type=type(e).__name__,
                   valueerror=isinstance(e, ValueError)), 400


@app.errorhandler(aiserve.ModelNotFound)
def not_found(e):
    return jsonify(error=str(e), type=type(e).__name__), 404


@app.errorhandler(aiserve.QueueFull)
def busy(e):
    return jsonify(error=str(e), type=type(e).__name__), 503


@app.errorhandler(aiserve.InferenceError)
def failed(e):
    return jsonify(error=str(e), type=type(e).__name__), 500
