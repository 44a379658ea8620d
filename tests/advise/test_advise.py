"""Black-box tests of `aiload advise` against aiserve hosting two small WSGI
apps: one CPU-bound in pure Python (the GIL serialises it: processes must
win), one waiting on time.sleep (threads overlap the waits: threads must
win). Each run has a short budget; every process advise starts must be gone
when it exits, also when it is stopped by SIGTERM."""
import json
import os
import signal
import subprocess
import time

import pytest

from harness import binary

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
NOISE = 0.10  # the advisor's own noise band (loadgen/advise.h)


def server_cmd(app):
    return [binary("aiserve"), "--wsgi-file", os.path.join(APPS, app), "--disable-logging"]


def run_advise(tmp_path, app, *extra, budget="40s", timeout=120):
    out = tmp_path / "advice.json"
    html = tmp_path / "advice.html"
    cmd = [binary("aiload"), "advise", "--budget", budget, "--json", str(out), "--html", str(html),
           *extra, "--", *server_cmd(app)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout + p.stderr
    with open(out) as f:
        doc = json.load(f)
    return doc, p.stdout, p.stderr, html.read_text()


def best_measured(doc):
    rec = doc["recommendation"]
    started = [r for r in doc["results"] if r["started"] and r["failures"] == 0]
    top = max(r["rps"] for r in started)
    # the recommendation is the fastest measured configuration, within the
    # noise band the advisor states (10 %; 20 % where no core was idle)
    assert doc["noise"] <= 0.2
    assert rec["rps"] >= top * (1 - max(NOISE, doc["noise"])) - 1e-9, (rec, doc["results"])
    assert any(r["processes"] == rec["processes"] and r["threads"] == rec["threads"]
               for r in started)
    return rec


def no_children_left(stderr):
    # every server start goes through a fresh session; nothing of ours may
    # still run: look for processes whose command line names our apps
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        assert APPS.encode() not in cmdline or b"advise" in cmdline, \
            f"process {pid} still runs: {cmdline!r}\n{stderr}"


def free_cores(seconds=1.0):
    """Idle CPU over a second, in cores (/proc/stat)."""
    def idle():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)
    i0, t0 = idle()
    time.sleep(seconds)
    i1, t1 = idle()
    return (os.cpu_count() or 1) * (i1 - i0) / max(t1 - t0, 1)


def test_cpu_bound_app_gets_processes(tmp_path):
    # processes can only win where a second core is free; on a machine other
    # work keeps busy the advisor measures (and says) that they do not
    if os.cpu_count() < 2:
        pytest.skip("one core: a second process has no core to run on")
    for attempt in range(2):
        if free_cores() < 1.0:
            if attempt:
                pytest.skip("the machine is too busy for a two-core scaling test "
                            "(less than 1 core idle)")
            time.sleep(10)
            continue
        doc, out, err, html = run_advise(tmp_path, "cpu_app.py")
        rec = best_measured(doc)
        if rec["processes"] >= 2 or attempt:
            break
    assert rec["processes"] >= 2 and rec["threads"] == 1, out + err
    # the GIL effect: a second thread gives about nothing for pure Python
    assert doc["thread_gain"] < 1 + 2 * NOISE, out
    assert "CPU-bound" in out and "GIL effect" in out, out
    assert "[uwsgi]\nmaster = true\nprocesses = %d\nthreads = 1\n" % rec["processes"] in out
    assert "<svg" in html
    for r in doc["results"]:
        if r["started"]:
            assert r["cpu_ms_per_req"] > 0.3, r  # it burns CPU per request
            assert r["pss_mib"] > 1, r
    no_children_left(err)


def test_io_bound_app_gets_threads(tmp_path):
    doc, out, err, _ = run_advise(tmp_path, "io_app.py")
    rec = best_measured(doc)
    assert rec["threads"] >= 4 and rec["threads"] > rec["processes"], out + err
    assert doc["thread_gain"] > 1.5, out
    assert "I/O-bound" in out, out
    one = [r for r in doc["results"] if r["processes"] == 1 and r["threads"] == 1][0]
    # 100 ms of sleep per request: about 10 req/s for one thread, little CPU
    assert 6 < one["rps"] < 11, one
    assert one["cpu_ms_per_req"] < 0.5 * one["wall_ms_per_req"], one
    assert one["p50_ms"] >= 99, one
    # the app sends Server-Timing: advise takes its app phase as the request's own time
    assert 99 <= one["server_timing_app_ms"] < 150, one
    assert "Server-Timing: the app phase takes" in out
    no_children_left(err)


def test_sigterm_stops_every_server_process(tmp_path):
    p = subprocess.Popen([binary("aiload"), "advise", "--budget", "5m", "--", *server_cmd("io_app.py")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server = None
        deadline = time.monotonic() + 30
        while server is None and time.monotonic() < deadline:
            for pid in os.listdir("/proc"):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if int(fields[1]) == p.pid:
                    server = int(pid)
            time.sleep(0.05)
        assert server, "advise started no server"
        time.sleep(1.5)  # let it fork its workers and take load
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
        assert p.returncode == 130, err
        assert "interrupted" in err
        left = []
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == server and fields[0] != "Z":
                left.append(pid)
        assert not left, f"processes of the server's group still run: {left}"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_server_that_does_not_start(tmp_path):
    p = subprocess.run([binary("aiload"), "advise", "--budget", "10s", "--", "/bin/sh", "-c",
                        "echo cannot bind >&2; exit 3", "sh"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "exited (status 3)" in p.stderr and "cannot bind" in p.stderr
    assert "No configuration answered" in p.stdout


@pytest.mark.parametrize("args,needle", [
    (["--", ], "no server command"),
    (["--budget", "soon", "--", "x"], "--budget"),
    (["--url", "noslash", "--", "x"], "'/'"),
    (["-f", "/nonexistent.ini", "--", "x"], "nonexistent"),
])
def test_bad_command_lines(args, needle):
    p = subprocess.run([binary("aiload"), "advise", *args], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 2
    assert needle in p.stderr, p.stderr


def test_help():
    p = subprocess.run([binary("aiload"), "advise", "--help"], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 0
    assert "threads" in p.stdout and "--budget" in p.stdout


def test_native_model_batcher_settings(tmp_path):
    """aiserve's native MobileNetV2 route (examples/models/mobilenet.ini's
    model and route): --batch also tries the batcher's settings and the
    ini snippet carries them."""
    model = os.path.join(os.path.dirname(os.path.dirname(HERE)), "models", "mobilenetv2-160.onnx")
    out = tmp_path / "advice.json"
    p = subprocess.run([binary("aiload"), "advise", "--budget", "45s", "--batch", "--max-threads", "1",
                        "--max-processes", "2", "--json", str(out), "--", binary("aiserve"),
                        "--disable-logging", "--model", "mnv2=" + model, "--model-route", "/=mnv2"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(out.read_text())
    rec = best_measured(doc)
    batches = {r.get("max_batch_size") for r in doc["results"] if r["started"]}
    assert {1, 4} <= batches, doc["results"]
    if "max_batch_size" in rec:
        assert "max-batch-size = %d\nbatch-delay-us = %d\n" % (
            rec["max_batch_size"], rec["batch_delay_us"]) in p.stdout
    assert "max-batch-size" in p.stdout
