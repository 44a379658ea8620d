"""Image uploads in the forms clients send: multipart/form-data (real `curl -F`
and Python requests' files=), base64 in JSON ({"image": ...}, {"image":
{"b64": ...}}, a data URL, a KServe v2 BYTES input); every form classifies
exactly like the raw bytes, and broken uploads are 400s naming the problem."""
import base64
import json
import subprocess

import numpy as np
import pytest
import requests

import mdl_kit as K


@pytest.fixture
def cls(tmp_path, procs):
    path, _, _ = K.make_image_classifier(str(tmp_path / "img.onnx"))
    labels = tmp_path / "labels.txt"
    labels.write_text("".join("class-%d\n" % i for i in range(10)))
    s = K.start(procs, ["--processes=1", "--model=img=" + path, "--labels=img=" + str(labels)])
    px = np.random.default_rng(31).integers(0, 256, (8, 8), dtype=np.uint8)
    s.png = K.png_bytes(px)
    s.pngfile = tmp_path / "digit 7.png"
    s.pngfile.write_bytes(s.png)
    st, _, data = s.request("POST", "/predict/img?top_k=3", s.png)
    assert st == 200
    s.want = json.loads(data)
    s.url = "http://127.0.0.1:%d" % s.port
    return s


def _curl(*args):
    r = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True,
                       text=True, timeout=60)
    body, code = r.stdout.rsplit("\n", 1)
    return int(code), body


def test_curl_dash_f_uploads_classify_like_the_raw_image(cls):
    for path in ("/predict/img?top_k=3", "/v2/models/img/classify?top_k=3"):
        code, body = _curl("-F", "image=@%s" % cls.pngfile, cls.url + path)
        assert code == 200, body
        assert json.loads(body) == cls.want
    # a text field before the file, and a file sent with another type: the image part is found
    code, body = _curl("-F", "note=hello", "-F", "upload=@%s;type=application/octet-stream"
                       % cls.pngfile, cls.url + "/predict/img?top_k=3")
    assert code == 200 and json.loads(body) == cls.want, body


def test_requests_files_and_json_base64_forms_classify_like_the_raw_image(cls):
    r = requests.post(cls.url + "/predict/img?top_k=3",
                      files={"file": ("x.png", open(cls.pngfile, "rb"), "image/png")}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == cls.want
    b64 = base64.b64encode(cls.png).decode()
    forms = [{"image": b64},
             {"image": {"b64": b64}},
             {"image": "data:image/png;base64," + b64},
             {"image": base64.urlsafe_b64encode(cls.png).decode().rstrip("=")},
             {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64]}]},
             {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "BYTES", "data": [[b64]]}]}]
    for body in forms:
        r = requests.post(cls.url + "/v2/models/img/classify?top_k=3", json=body, timeout=30)
        assert r.status_code == 200, (str(body)[:80], r.text)
        assert r.json() == cls.want
    # JSON sniffed without a Content-Type, and with MIME line breaks in the base64
    wrapped = base64.encodebytes(cls.png).decode()
    st, _, data = cls.request("POST", "/predict/img?top_k=3",
                              json.dumps({"image": wrapped}).encode())
    assert st == 200 and json.loads(data) == cls.want, data


def test_broken_uploads_are_400_naming_the_problem(cls):
    b64 = base64.b64encode(cls.png).decode()
    cases = [
        ({"image": b64[:-5] + "!" + b64[-4:]}, "not valid base64"),
        ({"image": 42}, "not a string"),
        ({"picture": b64}, "needs \"image\""),
        ({"inputs": [{"name": "x", "shape": [2], "datatype": "BYTES", "data": [b64, b64]}]},
         "one image"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}, "BYTES"),
    ]
    for body, needle in cases:
        r = requests.post(cls.url + "/predict/img", json=body, timeout=30)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["error"], r.text
    r = requests.post(cls.url + "/predict/img", data=b"{not json",
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]
    # base64 of something that is not an image: 415 like raw bytes
    r = requests.post(cls.url + "/predict/img", json={"image": base64.b64encode(b"GIF89a").decode()},
                      timeout=30)
    assert r.status_code == 415, r.text
    # a form with no file, and a truncated form
    r = requests.post(cls.url + "/predict/img", files={"note": (None, "just text")}, timeout=30)
    assert r.status_code == 400 and "no file part" in r.json()["error"], r.text
    req = requests.Request("POST", cls.url + "/predict/img",
                           files={"image": ("a.png", cls.png, "image/png")}).prepare()
    st, _, data = cls.request("POST", "/predict/img", req.body[:-20],
                              {"Content-Type": req.headers["Content-Type"]})
    assert st == 400 and b"no closing boundary" in data, data
    st, _, data = cls.request("POST", "/predict/img", req.body,
                              {"Content-Type": "multipart/form-data"})
    assert st == 400 and b"boundary" in data, data
    # still serving
    assert requests.post(cls.url + "/predict/img", json={"image": b64}, timeout=30).ok
