"""Serving a model with a dynamic sequence length: a BERT-class encoder (int64
input_ids and attention_mask, both [N, S]) exported from PyTorch inside the test
with dynamic batch and sequence axes (tools/family_models.py, seeded weights).
The metadata shows the dynamic dims as -1; requests of several lengths run
concurrently over the JSON and the binary endpoints, and every response equals
the same request run alone (within K.BATCH_TOL, docs/serving.md) and PyTorch
(1e-4 of the output's scale); requests batch only with requests of the same
shape (bucketing, docs/serving.md). Errors: ids and mask of different lengths
(400 naming both), a length beyond max-sequence (413 naming the limit, also
when the body is over the parser's limits), an out-of-range id (400). With
batch-invariant, batched answers are bit-identical to unbatched ones; the
article's model-route runs a dynamic model at length 1."""
import concurrent.futures as cf
import os
import sys

import numpy as np
import pytest

import mdl_kit as K

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

MAX_SEQ = 32
OUTS = ["last_hidden_state", "pooler_output", "sentence_embedding"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    import family_models as fm
    p = str(tmp_path_factory.mktemp("dyn") / "bert.onnx")
    fm.export("bert", p, opset=17, dynamic="all")
    return p


@pytest.fixture
def server(bert, procs):
    s = K.start(procs, ["--processes=1", "--model=bert=" + bert, "--max-batch-size=8",
                        "--batch-delay-us=50000", "--max-sequence=bert=%d" % MAX_SEQ])
    K.wait_model_ready(s, "bert")
    return s


def sample(rng, batch, seq):
    ids = rng.integers(0, 100, (batch, seq)).astype(np.int64)
    mask = np.ones((batch, seq), np.int64)
    if seq > 2:
        mask[0, seq - 2:] = 0  # a padded sentence, as a tokenizer makes them
    return ids, mask


def infer(s, ids, mask, binary=False):
    ins = [("input_ids", ids), ("attention_mask", mask)]
    if binary:
        body, hd = K.v2_binary_request(ins, outputs=[{"name": n, "parameters": {
            "binary_data": True}} for n in OUTS])
    else:
        body, hd = K.v2_json_request(ins), {"Content-Type": "application/json"}
    st, headers, data = s.request("POST", "/v2/models/bert/infer", body, hd, timeout=60)
    if st != 200:
        return st, data.decode()
    return st, K.decode_v2(headers, data)[1]


def test_metadata_shows_dynamic_dims_as_minus_one(server):
    st, meta = server.json("GET", "/v2/models/bert")
    assert st == 200, meta
    shapes = {t["name"]: t["shape"] for t in meta["inputs"] + meta["outputs"]}
    assert shapes["input_ids"] == [-1, -1] and shapes["attention_mask"] == [-1, -1], meta
    assert shapes["last_hidden_state"][:2] == [-1, -1], meta
    assert shapes["pooler_output"][0] == -1 and shapes["pooler_output"][1] > 0, meta


def test_lengths_mixed_concurrently_equal_unbatched_and_pytorch(server):
    import family_models as fm
    rng = np.random.default_rng(5)
    reqs = [sample(rng, 1 + k % 2, seq) for k, seq in enumerate([3, 7, 12, 7, 3, 12, 20, 7] * 3)]
    alone = []
    for ids, mask in reqs:  # run alone, one after another: the unbatched answers
        st, out = infer(server, ids, mask)
        assert st == 200, out
        alone.append(out)
    for (ids, mask), out in zip(reqs[:6], alone):
        want = fm.run_torch("bert", [ids, mask])
        for n, w in zip(OUTS, want):
            w = np.asarray(w)
            assert out[n].shape == w.shape, (n, out[n].shape, w.shape)
            assert float(np.abs(out[n] - w).max()) <= 1e-4 * max(float(np.abs(w).max()), 1e-6)
    before = server.metrics()
    with cf.ThreadPoolExecutor(len(reqs)) as ex:
        futs = [ex.submit(infer, server, ids, mask, k % 2 == 1) for k, (ids, mask) in
                enumerate(reqs)]
        got = [f.result() for f in futs]
    for k, (st, out) in enumerate(got):
        assert st == 200, out
        ref = alone[k]
        for n in OUTS:
            K.assert_batch_close(out[n], ref[n], "request %d %s" % (k, n))
    after = server.metrics()
    runs = [K.metric(t, "aiserve_model_inference_count_total", "bert") for t in (before, after)]
    execs = [K.metric(t, "aiserve_model_execution_count_total", "bert") for t in (before, after)]
    assert runs[1] - runs[0] == sum(ids.shape[0] for ids, _ in reqs)
    print("samples %d in %d batches" % (runs[1] - runs[0], execs[1] - execs[0]))
    # 4 lengths, so at least 4 batches; fewer batches than requests shows equal
    # shapes joined (a client per request, a 50 ms window)
    assert 4 <= execs[1] - execs[0] < len(reqs)


def test_ids_and_mask_of_other_lengths_are_a_400_naming_both(server):
    ids, _ = sample(np.random.default_rng(1), 1, 9)
    st, msg = infer(server, ids, np.ones((1, 6), np.int64))
    assert st == 400, msg
    assert "input_ids" in msg and "attention_mask" in msg and "9" in msg and "6" in msg, msg
    assert infer(server, ids, np.ones((1, 9), np.int64))[0] == 200  # the worker still serves


def test_a_length_beyond_max_sequence_is_a_413_naming_the_limit(server):
    ids, mask = sample(np.random.default_rng(2), 1, MAX_SEQ + 1)
    st, msg = infer(server, ids, mask, binary=True)
    assert st == 413, msg
    assert "max-sequence %d" % MAX_SEQ in msg and "input_ids" in msg, msg
    ids, mask = sample(np.random.default_rng(2), 1, MAX_SEQ)
    assert infer(server, ids, mask)[0] == 200


def test_an_out_of_range_id_is_a_400(server):
    ids, mask = sample(np.random.default_rng(3), 2, 5)
    ids[1, 2] = 100000
    st, msg = infer(server, ids, mask)
    assert st == 400, msg
    assert "100000" in msg, msg


def test_batch_invariant_answers_are_bit_identical_to_unbatched(bert, procs):
    s = K.start(procs, ["--processes=1", "--model=bert=" + bert, "--max-batch-size=8",
                        "--batch-delay-us=50000", "--batch-invariant=true"])
    K.wait_model_ready(s, "bert")
    rng = np.random.default_rng(9)
    reqs = [sample(rng, 1 + k % 2, seq) for k, seq in enumerate([4, 9, 4, 9, 4, 9, 4, 9])]
    alone = [infer(s, ids, mask, binary=True) for ids, mask in reqs]
    with cf.ThreadPoolExecutor(len(reqs)) as ex:
        got = list(ex.map(lambda r: infer(s, r[0], r[1], binary=True), reqs))
    for k, ((st, out), (st0, ref)) in enumerate(zip(got, alone)):
        assert st == 200 and st0 == 200, (out, ref)
        for n in OUTS:
            assert out[n].tobytes() == ref[n].tobytes(), "request %d %s" % (k, n)


def test_a_huge_length_is_refused_while_parsing_naming_max_sequence(server):
    ids, mask = sample(np.random.default_rng(4), 1, 4000)  # over max-sequence x max-batch-size
    st, msg = infer(server, ids, mask)
    assert st == 413, msg
    assert "max-sequence" in msg, msg


def test_model_route_runs_a_dynamic_model_at_length_one(bert, procs):
    s = K.start(procs, ["--processes=1", "--model=bert=" + bert, "--model-route=/hi=bert"])
    K.wait_model_ready(s, "bert")
    st, _, body = s.request("GET", "/hi")
    assert (st, body) == (200, b"Hello, World!")
    assert K.metric(s.metrics(), "aiserve_model_inference_count_total", "bert") == 1
