"""`make article` in its short mode (ARTICLE_SECONDS=3): every row of the
article's experiments is run against a real server, or says why not, and the
report with its charts and conclusions is written."""
import json
import os
import subprocess

from harness import ROOT, binary

ROWS = ["io-flask-single", "io-flask-threaded", "cpu-flask-single", "cpu-flask-threaded",
        "cpu-uwsgi-1x2", "cpu-uwsgi-2x1", "cpu-gunicorn-2x1", "cpu-aiserve-wsgi-2x1",
        "cpu-aiserve-infer-2x1", "cpu-aiserve-native-2x1"]


def test_make_article_short_mode(tmp_path):
    binary("aiserve"), binary("aiload")
    env = dict(os.environ, ARTICLE_SECONDS="3", ARTICLE_OUT=str(tmp_path))
    p = subprocess.run(["make", "--no-print-directory", "article"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    report = (tmp_path / "report.md").read_text()
    with open(tmp_path / "results.json") as f:
        results = {r["id"]: r for r in json.load(f)["results"]}
    assert list(results) == ROWS
    for rid, r in results.items():
        if rid == "cpu-aiserve-infer-2x1" and r["rps"] is None:
            assert "not available" in r["note"], r  # said so in the report
            continue
        assert r["rps"] and r["rps"] > 0 and r["failures"] == 0, r
        assert r["history"], r
        assert "%.2f" % r["rps"] in report
    for server in ("Flask dev server", "uWSGI", "gunicorn", "aiserve WSGI", "aiserve + aiserve.infer",
                   "aiserve native"):
        assert "| " + server in report, server
    for conclusion in ("threads give the I/O-bound app", "threads help the CPU-bound app",
                       "two processes raise"):
        assert conclusion in report
    assert "torch" in report and "TensorFlow" in report
    # the article's open question, answered by aiload advise on its CPU-bound app
    assert "## The article's open question: threads or processes?" in report
    assert "**Recommendation: " in report and "Reasoning:" in report, report
    for svg in ("io_rps.svg", "cpu_rps.svg", "native_rps.svg"):
        text = (tmp_path / svg).read_text()
        assert text.startswith("<svg") and "<polyline" in text
