"""Strict readiness (Triton's): /health/ready and /v2/health/ready are 503 with
the reason while a configured model failed to load; 200 once every model is
loaded and warm."""
import json
import time

import numpy as np

import mdl_kit as K


def _poll(s, path, want, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        st, hd, data = s.request("GET", path)
        if st == want or time.monotonic() > deadline:
            return st, hd, data
        time.sleep(0.05)


def test_a_model_that_failed_to_load_keeps_both_ready_probes_503_with_the_reason(tmp_path, procs):
    good, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x08\x07" + b"\xff" * 64)
    s = K.start(procs, ["--processes=2", "--model=tiny=" + good, "--model=broken=" + str(bad)],
                ready=False)
    K.wait_model_ready(s, "tiny")  # both workers have warmed up: only the broken model holds it
    for _ in range(4):  # either worker may answer
        st, hd, data = s.request("GET", "/health/ready")
        assert st == 503, data
        body = json.loads(data)
        assert body["status"] == "not ready"
        assert "model 'broken' failed to load" in body["reason"], body
        st, hd, data = s.request("GET", "/v2/health/ready")
        assert st == 503, data
        assert "model 'broken' failed to load" in json.loads(data)["error"]
        assert hd.get("Retry-After") == "1"
    # liveness is unaffected, and the healthy model serves
    assert s.request("GET", "/health/live")[0] == 200
    assert s.request("GET", "/v2/health/live")[0] == 200
    st, _, _ = s.request("POST", "/v2/models/tiny/infer",
                         K.v2_json_request([("x", np.ones((1, 4), np.float32))]))
    assert st == 200


def test_all_models_loaded_is_ready_on_both_probes(tmp_path, procs):
    good, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    s = K.start(procs, ["--processes=2", "--model=tiny=" + good])
    st, _, data = _poll(s, "/health/ready", 200)
    assert st == 200, data
    assert json.loads(data)["status"] == "ready" and "reason" not in json.loads(data)
    assert s.request("GET", "/v2/health/ready")[0] == 200


def test_get_v2_models_lists_every_model_with_its_state(tmp_path, procs):
    good, _, _ = K.make_tiny(str(tmp_path / "tiny.onnx"))
    img, _, _ = K.make_image_classifier(str(tmp_path / "img.onnx"))
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x08\x07" + b"\xff" * 64)
    s = K.start(procs, ["--processes=1", "--model=tiny=" + good, "--model=broken=" + str(bad),
                        "--model=img=" + img], ready=False)
    K.wait_model_ready(s, "tiny")
    K.wait_model_ready(s, "img")
    st, body = s.json("GET", "/v2/models")
    assert st == 200, body
    models = {m["name"]: m for m in body["models"]}
    assert [m["name"] for m in body["models"]] == ["tiny", "broken", "img"]  # config order
    assert models["tiny"] == {"name": "tiny", "versions": ["1"], "platform": "onnx_onnxv1",
                              "state": "READY", "reason": ""}
    assert models["broken"]["state"] == "UNAVAILABLE" and models["broken"]["reason"]
    # Triton's repository index, and its ready filter
    st, idx = s.json("POST", "/v2/repository/index")
    assert st == 200
    assert idx[0] == {"name": "tiny", "version": "1", "state": "READY", "reason": ""}
    assert {m["name"]: m["state"] for m in idx} == {"tiny": "READY", "broken": "UNAVAILABLE",
                                                     "img": "READY"}
    st, idx = s.json("POST", "/v2/repository/index", {"ready": True})
    assert st == 200 and [m["name"] for m in idx] == ["tiny", "img"]
    assert s.json("POST", "/v2/repository/index", {"ready": 1})[0] == 400
    assert s.request("POST", "/v2/models")[0] == 405
    assert s.request("GET", "/v2/repository/index")[0] == 405


def test_a_warming_worker_leaves_new_connections_to_a_ready_one(tmp_path, procs):
    """A chain reload's new worker warms its model up (16 batch sizes of
    MobileNetV2: about half a second) while the other worker is ready. New
    connections go to the ready one, so the model's ready probe never answers
    400 and no request waits behind a warm-up; the same holds at start-up once
    the first worker is ready (the KServe manifest's probe, then a request)."""
    def worker_pids(pid):
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]

    fifo = tmp_path / "master.fifo"
    s = K.start(procs, ["--processes=2", "--model=m=" + K.MOBILENET, "--max-batch-size=16",
                        "--disable-logging", f"--master-fifo={fifo}"])
    K.wait_model_ready(s, "m")
    for _ in range(2):
        before = set(worker_pids(s.proc.pid))
        with open(fifo, "wb") as f:
            f.write(b"c")
        answers, replaced = [], False
        deadline = time.monotonic() + 60
        while not replaced and time.monotonic() < deadline:
            answers.append(s.request("GET", "/v2/models/m/ready")[0])
            now = set(worker_pids(s.proc.pid))
            replaced = len(now) == 2 and not now & before
        assert replaced, "the chain reload did not replace both workers"
        K.wait_model_ready(s, "m")
        assert len(answers) > 20 and set(answers) == {200}, \
            f"{answers.count(400)} of {len(answers)} new connections reached a warming worker"
