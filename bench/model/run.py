#!/usr/bin/python3
"""Model-serving benchmark: MobileNetV2@160 end to end over HTTP, driven by
aiload, side by side with its peers; rounds interleaved; medians and ratios.

    bench/model/run.py [--rounds N] [--seconds S] [--users U] [--build DIR]
                       [--only engine,hello,infer,uwsgi] [--no-int8] [--no-pss]

Configurations (each round runs every one, in this order):
  engine        `aiinfer bench` alone, no HTTP: 2 processes x 1 thread, batch 1
  engine-b8     the same at batch 8 (what batching can reach at best)
  hello-b1      aiserve 2p x 1t, the article's GET / (model-route), batching off
  hello-b8      the same, max-batch-size 8 (batch-delay-us 0)
  hello-i8      hello-b1 with `model-int8` (calibrated on models/mobilenetv2-160-input.npy):
                dense Convs and the Gemm in int8; outputs differ from f32 (docs/engine.md)
  infer-b1      aiserve 2p x 1t, binary KServe v2 infer of a random image, batching off
  infer-b8      the same, max-batch-size 8
  uwsgi         uWSGI + Flask + PyTorch, the article's ini (2p x 1t, http router),
                torch threads 1, GET /
Load: aiload quick mode, U connections (closed model), one generator
thread, a 2 s warm-up run first. Also measured once: total PSS of aiserve's
master + 2 workers with the model loaded before fork vs with lazy-apps.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import free_port, stop, wait_ready  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(os.path.dirname(ROOT), "shared", "models", "mobilenetv2_160.onnx")
if not os.path.exists(MODEL):
    MODEL = os.path.join(ROOT, "models", "mobilenetv2-160.onnx")


TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid):
    """CPU seconds (user + system) used so far by pid and its descendants."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            f = open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / TICK
            for t in os.listdir("/proc/%d/task" % p):
                todo += [int(c) for c in open("/proc/%d/task/%s/children" % (p, t)).read().split()]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total


CALIB = os.path.join(ROOT, "models", "mobilenetv2-160-input.npy")


def aiserve(build, port, batch, lazy=False, int8=False):
    args = [os.path.join(build, "aiserve"), "--http=127.0.0.1:%d" % port, "--processes=2",
            "--threads=1", "--model=mnv2=" + MODEL, "--model-route=/=mnv2",
            "--max-batch-size=%d" % batch, "--batch-delay-us=0", "--max-queue=1024",
            "--disable-logging", "--limit-post=16m"]
    if lazy:
        args.append("--lazy-apps")
    if int8:
        args.append("--model-int8=mnv2=" + CALIB)
    p = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait_ready("http://127.0.0.1:%d/v2/health/ready" % port, p)
    return p


def uwsgi(port):
    ini = tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False)
    ini.write("[uwsgi]\nplugins = python3,http\nchdir = %s\nmodule = demo:app\nmaster = true\n"
              "processes = 2\nthreads = 1\nenable-threads = true\nlisten = 1024\n"
              "need-app = true\nhttp = 127.0.0.1:%d\ndisable-logging = true\n"
              % (os.path.join(ROOT, "examples", "article"), port))
    ini.close()
    env = dict(os.environ, TORCH_THREADS="1")
    p = subprocess.Popen(["uwsgi", "--ini", ini.name], start_new_session=True, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready("http://127.0.0.1:%d/" % port, p)
    return p


def load(build, url, seconds, users, body=None, header_len=None, warm=2, server=None):
    base = [os.path.join(build, "aiload"), url, "-c", str(users), "--threads", "1",
            "--only-summary", "--timeout", "60"]
    if body:
        base += ["-m", "POST", "--body-file", body, "--header",
                 "Content-Type: application/octet-stream", "--header",
                 "Inference-Header-Content-Length: %d" % header_len]
    subprocess.run(base + ["-d", "%ds" % warm], capture_output=True, timeout=warm + 60)
    cpu0 = tree_cpu(server.pid) if server else 0.0
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        r = subprocess.run(base + ["-d", "%ds" % seconds, "--json", out.name],
                           capture_output=True, text=True, timeout=seconds + 90)
        s = json.load(open(out.name))
    cpu = (tree_cpu(server.pid) - cpu0) if server else 0.0
    t = s["total"]
    return {"rps": s["rps"], "p50": t["percentiles_ms"]["50"], "p99": t["percentiles_ms"]["99"],
            "fail": s["failures"], "n": s["requests"], "rc": r.returncode,
            "per_cpu_s": s["requests"] / cpu if cpu > 0 else float("nan")}


def engine_run(build, seconds, batch):
    """2 x `aiinfer bench` in parallel: (inferences/s summed, inferences, CPU seconds)."""
    cmd = [os.path.join(build, "aiinfer"), "bench", MODEL, "--threads", "1", "--batch",
           str(batch), "--seconds", str(seconds)]
    outs = [tempfile.TemporaryFile("w+") for _ in range(2)]
    ps = [subprocess.Popen(cmd, stdout=o, text=True) for o in outs]
    total, runs, cpu = 0.0, 0, 0.0
    for p, o in zip(ps, outs):
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        cpu += ru.ru_utime + ru.ru_stime
        o.seek(0)
        for line in o.read().splitlines():
            if line.startswith("throughput"):
                total += float(line.split()[1])
            if " runs " in line:
                w = line.split()
                runs += int(w[w.index("runs") + 1]) * batch
    return total, runs, cpu


def engine_alone(build, seconds, batch):
    # CPU per inference from the difference of a long and a 1 s run, so the
    # model load and warm-up (in both) cancel out, as the server's do.
    rps, runs, cpu = engine_run(build, seconds, batch)
    _, runs1, cpu1 = engine_run(build, 1, batch)
    eff = (runs - runs1) / (cpu - cpu1) if cpu - cpu1 > 0.05 else float("nan")
    return {"rps": rps, "p50": float("nan"), "p99": float("nan"), "fail": 0, "n": runs, "rc": 0,
            "per_cpu_s": eff}


def infer_body(tmp):
    x = np.random.default_rng(0).standard_normal((1, 3, 160, 160)).astype("<f4")
    head = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 160, 160],
                                   "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "outputs": [{"name": "logits",
                                    "parameters": {"binary_data": True}}]}).encode()
    path = os.path.join(tmp, "infer.bin")
    with open(path, "wb") as f:
        f.write(head + x.tobytes())
    return path, len(head)


def pss_kib(pid):
    total = 0
    pids = [pid] + [int(c) for c in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
    for p in pids:
        for line in open("/proc/%d/smaps_rollup" % p):
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total, len(pids)


def measure_pss(build, body, hl):
    res = {}
    for lazy in (False, True):
        port = free_port()
        p = aiserve(build, port, 8, lazy)
        try:
            load(build, "http://127.0.0.1:%d/v2/models/mnv2/infer" % port, 3, 8, body, hl, warm=1)
            res["lazy-apps" if lazy else "load before fork"] = pss_kib(p.pid)
        finally:
            stop(p)
    return res


def run_one(name, args, tmp, body, hl):
    if name.startswith("engine"):
        return engine_alone(args.build, args.seconds, 8 if name.endswith("b8") else 1)
    port = free_port()
    if name == "uwsgi":
        p = uwsgi(port)
    else:
        p = aiserve(args.build, port, 8 if name.endswith("b8") else 1,
                    int8=name.endswith("i8"))
    try:
        if name.startswith("infer"):
            return load(args.build, "http://127.0.0.1:%d/v2/models/mnv2/infer" % port,
                        args.seconds, args.users, body, hl, server=p)
        return load(args.build, "http://127.0.0.1:%d/" % port, args.seconds, args.users,
                    server=p)
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", default="")
    ap.add_argument("--no-pss", action="store_true")
    ap.add_argument("--no-int8", action="store_true", help="skip the hello-i8 configuration")
    args = ap.parse_args()
    names = ["engine", "engine-b8", "hello-b1", "hello-b8", "hello-i8", "infer-b1", "infer-b8", "uwsgi"]
    if args.no_int8:
        names.remove("hello-i8")
    if args.only:
        keep = args.only.split(",")
        names = [n for n in names if any(n.startswith(k) for k in keep)]
    results = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        body, hl = infer_body(tmp)
        for r in range(args.rounds):
            for n in names:
                res = run_one(n, args, tmp, body, hl)
                results[n].append(res)
                print("round %d %-10s %8.1f req/s  p50 %8.2f ms  p99 %8.2f ms  failures %d"
                      "  %7.1f req per CPU-s" % (r + 1, n, res["rps"], res["p50"], res["p99"],
                                                 res["fail"], res["per_cpu_s"]), flush=True)
        pss = {} if args.no_pss else measure_pss(args.build, body, hl)
    med = {n: {k: statistics.median(x[k] for x in v) for k in ("rps", "p50", "p99", "per_cpu_s")}
           for n, v in results.items() if v}
    print("\nMobileNetV2@160, %d users, %d s x %d rounds (medians), model %s"
          % (args.users, args.seconds, args.rounds, os.path.basename(MODEL)))
    print("%-10s %10s %10s %10s %16s" % ("config", "req/s", "p50 ms", "p99 ms",
                                         "req per CPU-s"))
    for n, m in med.items():
        print("%-10s %10.1f %10.2f %10.2f %16.1f" % (n, m["rps"], m["p50"], m["p99"],
                                                    m["per_cpu_s"]))

    def ratio(a, b, what, key="rps"):
        # the median of per-round ratios: both sides of a ratio ran minutes
        # apart at most, so machine noise cancels better than in medians
        if a in results and b in results:
            rs = [x[key] / y[key] for x, y in zip(results[a], results[b]) if y[key] > 0]
            if rs:
                print("  %-48s %6.2fx  (rounds: %s)" % (what, statistics.median(rs),
                                                      ", ".join("%.2f" % r for r in rs)))
    print("\nratios of req per CPU-second (server CPU only; robust to a busy machine):")
    ratio("hello-b1", "uwsgi", "aiserve GET / vs uWSGI+Flask+PyTorch", "per_cpu_s")
    ratio("hello-i8", "uwsgi", "aiserve GET / int8 vs uWSGI+Flask+PyTorch", "per_cpu_s")
    ratio("infer-b1", "engine", "aiserve v2 infer vs engine alone", "per_cpu_s")
    ratio("infer-b8", "engine", "aiserve v2 infer batching vs engine alone", "per_cpu_s")
    ratio("infer-b8", "infer-b1", "v2 infer: batching on vs off", "per_cpu_s")
    print("\nratios of req/s (median of per-round ratios):")
    ratio("hello-b1", "uwsgi", "aiserve GET / vs uWSGI+Flask+PyTorch (goal 20x)")
    ratio("hello-i8", "uwsgi", "aiserve GET / int8 vs uWSGI+Flask+PyTorch (goal 20x)")
    ratio("hello-i8", "hello-b1", "GET /: int8 vs f32")
    ratio("hello-b8", "uwsgi", "aiserve GET / batching vs uWSGI")
    ratio("infer-b1", "engine", "aiserve v2 infer vs engine alone (goal 0.9x)")
    ratio("infer-b8", "engine", "aiserve v2 infer batching vs engine alone")
    ratio("infer-b8", "infer-b1", "v2 infer: batching on vs off")
    ratio("hello-b8", "hello-b1", "GET /: batching on vs off")
    ratio("engine-b8", "engine", "engine alone: batch 8 vs batch 1")
    for k, (kib, n) in pss.items():
        print("PSS, aiserve master + 2 workers, %-17s %7.1f MiB (%d processes)"
              % (k + ":", kib / 1024, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
