"""A Flask app covering what users do: JSON, cookies, redirects, streaming,
uploads (multipart and raw), unicode routes, send_file, 404 and 500."""
import hashlib
import os

from flask import Flask, Response, jsonify, make_response, redirect, request, send_file, stream_with_context

HERE = os.path.dirname(os.path.abspath(__file__))
app = Flask(__name__)


@app.route("/")
def index():
    return "Hello, World!"


@app.route("/json", methods=["GET", "POST"])
def as_json():
    return jsonify(method=request.method, args=request.args.to_dict(flat=False),
                   json=request.get_json(silent=True), agent=request.headers.get("X-Custom"))


@app.route("/cookie/set")
def cookie_set():
    r = make_response("set")
    r.set_cookie("flavour", "oatmeal")
    r.set_cookie("count", "1", httponly=True)
    return r


@app.route("/cookie/get")
def cookie_get():
    return jsonify(sorted(request.cookies.items()))


@app.route("/go")
def go():
    return redirect("/json?from=go")


@app.route("/stream")
def stream():
    def gen():
        for i in range(10):
            yield "line %d\n" % i
    return Response(stream_with_context(gen()), mimetype="text/plain")


@app.route("/upload", methods=["POST"])
def upload():
    out = {}
    for name, f in request.files.items():
        data = f.read()
        out[name] = [f.filename, len(data), hashlib.sha256(data).hexdigest()]
    out["form"] = request.form.to_dict()
    return jsonify(out)


@app.route("/raw", methods=["POST", "PUT"])
def raw():
    data = request.get_data()
    return jsonify(length=len(data), sha=hashlib.sha256(data).hexdigest(),
                   chunked=request.headers.get("Transfer-Encoding"))


@app.route("/u/<name>")
def unicode_name(name):
    return "name=%s" % name


@app.route("/file")
def a_file():
    return send_file(os.path.join(HERE, "static.txt"), mimetype="text/plain")


@app.route("/boom")
def boom():
    raise ValueError("deliberate failure in flask_app")


@app.route("/teapot")
def teapot():
    return "short and stout", 418, {"X-Tea": "earl grey"}


application = app
if os.environ.get("WSGI_VALIDATE"):
    import warnings
    from wsgiref.validate import WSGIWarning, validator
    warnings.simplefilter("error", WSGIWarning)
    app.wsgi_app = validator(app.wsgi_app)
