"""aiload's "where the time went": a server that sends Server-Timing has each
response's service time split into network+client, server queue and app, in
the console, the JSON summary and PREFIX_server_timing.csv; a server that
does not send it changes nothing."""
import csv
import json
import os
import subprocess

from harness import binary, free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


def start(procs, *extra):
    port = free_port()
    p = procs.start([PY, os.path.join(HERE, "stserver.py"), str(port), *extra])
    wait_port(port, proc=p)
    return port


def run(port, tmp_path):
    prefix = str(tmp_path / "run")
    out = subprocess.run([binary("aiload"), "http://127.0.0.1:%d/" % port, "-c", "2", "-d", "2s",
                          "--threads", "1", "--json", prefix + ".json", "--csv", prefix,
                          "--html", prefix + ".html"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with open(prefix + ".json") as f:
        return out.stdout, json.load(f), prefix


def test_phases_from_server_timing(procs, tmp_path):
    port = start(procs)
    stdout, doc, prefix = run(port, tmp_path)
    st = doc["server_timing"]
    assert st["responses"] == doc["total"]["num_requests"] > 20
    # the server says 1.2 ms queue and 3.4 ms app for every response (the
    # histograms keep 3 significant digits)
    for p in ("50", "99", "100"):
        assert abs(st["queue"]["percentiles_ms"][p] - 1.2) < 0.01, st["queue"]
        assert abs(st["app"]["percentiles_ms"][p] - 3.4) < 0.01, st["app"]
    # the rest of the service time is network and client: >= 0, and the
    # three add up to the service time on average
    net = st["network_client"]
    assert net["percentiles_ms"]["50"] >= 0
    total = doc["total"]["service_avg_ms"]
    assert abs(net["avg_ms"] + 1.2 + 3.4 - total) < 0.05 * total + 0.05, (net, total)
    assert "Where the time went (Server-Timing of %d responses" % st["responses"] in stdout
    for phase in ("network+client", "server queue", "app"):
        assert phase in stdout
    with open(prefix + "_server_timing.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["Phase"] for r in rows] == ["network+client", "server queue", "app"]
    assert abs(float(rows[2]["50%"]) - 3.4) < 0.01
    assert int(rows[1]["Responses"]) == st["responses"]
    # the HTML report (the web UI's /stats/report) has the section too
    with open(prefix + ".html") as f:
        html = f.read()
    assert "<h2>Where the time went</h2>" in html and 'id="server-timing"' in html


def test_no_header_no_section(procs, tmp_path):
    port = start(procs, "none")
    stdout, doc, prefix = run(port, tmp_path)
    assert "server_timing" not in doc
    assert "Where the time went" not in stdout
    assert not os.path.exists(prefix + "_server_timing.csv")
    assert os.path.exists(prefix + "_stats.csv")
    with open(prefix + ".html") as f:
        assert "Where the time went" not in f.read()


def test_other_metrics_only(procs, tmp_path):
    port = start(procs, 'db;dur=2, cache;desc="hit"')
    _, doc, _ = run(port, tmp_path)
    assert "server_timing" not in doc


def ui_stats(procs, tmp_path, port, timeout=30):
    """aiload's web UI driving 2 users at the server: /stats/requests once a
    few responses are in."""
    import time
    import urllib.request
    sc = tmp_path / "st.ini"
    sc.write_text("[settings]\nhost = http://127.0.0.1:%d\n\n[user web]\nwait_time = "
                  "constant(0.01)\n\n[task]\npath = /\n" % port)
    ui = free_port()
    p = procs.start([binary("aiload"), "-f", str(sc), "-P", str(ui), "-u", "2", "-r", "20",
                     "--autostart"])
    wait_port(ui, proc=p)
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen("http://127.0.0.1:%d/stats/requests" % ui, timeout=5) as r:
            d = json.load(r)
        total = [s for s in d["stats"] if s["name"] == "Aggregated"][0]["num_requests"]
        if total > 20 or time.monotonic() > deadline:
            return d
        time.sleep(0.2)


def test_web_ui_stats_carry_the_split(procs, tmp_path):
    d = ui_stats(procs, tmp_path, start(procs))
    st = d["server_timing"]
    assert st["responses"] > 20
    assert abs(st["queue"]["percentiles_ms"]["50"] - 1.2) < 0.01, st
    assert abs(st["app"]["percentiles_ms"]["50"] - 3.4) < 0.01, st


def test_web_ui_stats_without_the_header_have_no_split(procs, tmp_path):
    d = ui_stats(procs, tmp_path, start(procs, "none"))
    assert "server_timing" not in d
