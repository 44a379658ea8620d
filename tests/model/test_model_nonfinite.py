"""One rule for NaN and infinity (docs/serving.md): valid float values in
binary tensors, and in JSON as the strings "NaN"/"Infinity"/"-Infinity" or
the bare literals Python's json writes; written back as those strings. A
decimal beyond the type's range (1e999) is a 400 naming the input."""
import json

import numpy as np
import requests

import mdl_kit as K


def test_nan_and_infinity_round_trip_in_json_and_binary(tmp_path, procs):
    two = K.make_two_inputs(str(tmp_path / "two.onnx"))
    s = K.start(procs, ["--processes=1", "--model=two=" + two])
    url = "http://127.0.0.1:%d/v2/models/two/infer" % s.port
    a = np.array([[np.nan, np.inf, -np.inf, 1.5]], np.float32)
    zero = np.zeros((1, 4), np.float32)
    want = ["NaN", "Infinity", "-Infinity", 1.5]
    # Python's json.dumps writes bare NaN/Infinity literals (requests' json= refuses them)
    body = {"inputs": [{"name": "a", "shape": [1, 4], "datatype": "FP32", "data": a[0].tolist()},
                       {"name": "b", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 0]}],
            "outputs": [{"name": "sum"}]}
    text = json.dumps(body)
    assert "NaN" in text and "-Infinity" in text
    r = requests.post(url, data=text, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == want
    # the string forms, any case
    body["inputs"][0]["data"] = ["NaN", "inf", "-Infinity", 1.5]
    r = requests.post(url, data=json.dumps(body), timeout=30)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == want, r.text
    # binary in, binary out: the bits come back
    bb, hd = K.v2_binary_request([("a", a), ("b", zero)],
                                 outputs=[{"name": "sum", "parameters": {"binary_data": True}}])
    st, rh, data = s.request("POST", "/v2/models/two/infer", bb, hd)
    assert st == 200, data
    got = K.decode_v2(rh, data)[1]["sum"]
    assert np.isnan(got[0, 0]) and got[0, 1] == np.inf and got[0, 2] == -np.inf
    # binary in, JSON out: the strings
    bb, hd = K.v2_binary_request([("a", a), ("b", zero)], outputs=[{"name": "sum"}])
    st, rh, data = s.request("POST", "/v2/models/two/infer", bb, hd)
    assert st == 200 and json.loads(data)["outputs"][0]["data"] == want, data


def test_an_out_of_range_decimal_is_400_naming_the_input(tmp_path, procs):
    two = K.make_two_inputs(str(tmp_path / "two.onnx"))
    s = K.start(procs, ["--processes=1", "--model=two=" + two])
    body = ('{"inputs":[{"name":"a","shape":[1,4],"datatype":"FP32","data":[1,2,1e999,4]},'
            '{"name":"b","shape":[1,4],"datatype":"FP32","data":[0,0,0,0]}]}')
    st, _, data = s.request("POST", "/v2/models/two/infer", body.encode())
    assert st == 400, data
    err = json.loads(data)["error"]
    assert "input 'a'" in err and "element 2 (1e999)" in err and "out of range for FP32" in err
    assert '"Infinity"' in err, err
    body = body.replace("1e999", '"a lot"')
    st, _, data = s.request("POST", "/v2/models/two/infer", body.encode())
    assert st == 400 and b"input 'a'" in data and b"element 2" in data, data
