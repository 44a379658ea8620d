#!/usr/bin/python3
"""aiinfer vs ONNX Runtime (npm onnxruntime-node, the peer) on the same .onnx,
side by side: 1 and 2 threads x batch 1 and 8, then 2 processes x 1 thread at
once (aggregate inferences/s). Rounds interleave the engines; medians of
the rounds are printed with the ratio aiinfer / ORT. For MobileNet-style
models (Conv/Clip/Add/GlobalAveragePool/Gemm) XNNPACK is a third column:
bench/engine/xnn/ is compiled into the build folder (needs libxnnpack-dev,
libpthreadpool-dev), the ONNX weights exported for it, and its output checked
against models/<model>-output.npy before it is timed; --no-xnn skips it.
When models/<model>-input.npy exists, two more rows time aiinfer --int8
(calibrated on that input) against the same f32 peers; --no-int8 skips them.
The aiinfer f32 rows also show the median share of the measured FMA peak that
aiinfer bench prints (1 thread: of its core's peak; 2 processes: the mean of
the two; 2 threads: of 2 cores). The whole table runs once per --isa entry
(default native,AVX2): aiinfer under ONEDNN_MAX_CPU_ISA=<entry> (native: unset),
so AVX-512 and AVX2 are both reported in one run; the peers ignore that
variable and run their own dispatch each time, re-timed beside it.

    /usr/bin/python3 bench/engine/run.py [--model M] [--seconds S] [--rounds R] [--isa LIST]

Needs a built aiinfer (AISERVE_BUILD, default build/) and node_modules."""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AIINFER = os.path.join(os.environ.get("AISERVE_BUILD", os.path.join(ROOT, "build")), "aiinfer")
ORT = ["node", os.path.join(ROOT, "bench", "engine", "ort_bench.js")]


def ours_cmd(model, threads, batch, seconds, spin=True):
    return [AIINFER, "bench", model, "--threads", str(threads), "--batch", str(batch),
            "--seconds", str(seconds), "--omp-wait", "active" if spin else "passive"]


def peer_cmd(model, threads, batch, seconds, spin=True):
    return ORT + [model, str(threads), str(batch), str(seconds), "spin" if spin else "nospin"]


XNN_DIR = os.path.join(ROOT, "bench", "engine", "xnn")


def xnn_prepare(model, build):
    """Compile xnn_bench and export the model's weights; returns the command
    prefix, or None (with the reason printed) when XNNPACK cannot run it."""
    out = os.path.join(build, "bench")
    os.makedirs(out, exist_ok=True)
    exe = os.path.join(out, "xnn_bench")
    src = os.path.join(XNN_DIR, "xnn_bench.c")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        cc = subprocess.run(["cc", "-O2", "-o", exe, src, "-lXNNPACK", "-lpthreadpool", "-lm"],
                            capture_output=True, text=True)
        if cc.returncode:
            print("XNNPACK column skipped: cannot build xnn_bench:\n" + cc.stderr)
            return None
    stem = os.path.splitext(model)[0]
    weights = os.path.join(out, os.path.basename(stem) + ".xnnw")
    ex = subprocess.run(["/usr/bin/python3", os.path.join(XNN_DIR, "export.py"), model, weights],
                        capture_output=True, text=True)
    if ex.returncode:
        print("XNNPACK column skipped: " + (ex.stderr or ex.stdout).strip())
        return None
    cmd = [exe, weights, stem + "-input.npy", stem + "-output.npy"]
    chk = subprocess.run(cmd + ["--seconds", "0"], capture_output=True, text=True)
    print("XNNPACK " + chk.stdout.strip())
    return cmd if chk.returncode == 0 else None


def xnn_cmd_for(prefix):
    def cmd(model, threads, batch, seconds, spin=True):
        return prefix + ["--threads", str(threads), "--batch", str(batch),
                         "--seconds", str(seconds)] + ([] if spin else ["--nospin"])
    return cmd


def parse(out):
    """(inferences/s, p50 ms, % of the FMA peak or None, ISA or None) from either
    tool's output (only aiinfer prints the last two)."""
    m = re.search(r"throughput ([0-9.]+) inferences/s", out) or re.search(r"ips ([0-9.]+)", out)
    p = re.search(r"p50 ([0-9.]+) ms", out) or re.search(r"p50_ms ([0-9.]+)", out)
    if not m or not p:
        raise RuntimeError("cannot parse benchmark output:\n" + out)
    k = re.search(r"= ([0-9]+)% of the measured FMA peak [0-9.]+ GFLOP/s \((?:[0-9]+ cores x "
                  r"[0-9.]+ GFLOP/s, )?([A-Za-z0-9.-]+),", out)
    return (float(m.group(1)), float(p.group(1)), int(k.group(1)) if k else None,
            k.group(2) if k else None)


def run_parallel(cmds, env=None):
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for c in cmds]
    outs = []
    for p in procs:
        o, e = p.communicate(timeout=600)
        if p.returncode:
            raise RuntimeError(f"{p.args[0]} failed: {e}")
        outs.append(parse(o))
    return outs


def together(outs):
    """One row from processes run at once: summed inferences/s, worst p50, mean
    peak share."""
    shares = [o[2] for o in outs if o[2] is not None]
    return (sum(o[0] for o in outs), max(o[1] for o in outs),
            statistics.mean(shares) if shares else None, outs[0][3])


def run_table(a, engines, int8, env):
    """All configurations, a.rounds interleaved rounds; (label, engine) -> [rows]."""
    # (threads, batch, threads spin between ops?)
    configs = [(1, 1, True), (2, 1, True), (2, 1, False), (1, 8, True), (2, 8, True)]
    if a.issue20:  # the rows issue 20 sets targets for: 1 thread batch 1, 2 processes x 1
        configs = configs[:1]
    res = {}
    for r in range(a.rounds):
        for t, b, spin in configs:
            # rotate the engines' order each round so none always runs first
            order = engines[r % len(engines):] + engines[:r % len(engines)]
            label = f"{t} thread{'s' if t > 1 else ''}, batch {b}{'' if spin else ', no spin'}"
            for name, cmd in order:
                res.setdefault((label, name), []).append(
                    run_parallel([cmd(a.model, t, b, a.seconds, spin)], env)[0])
        for name, cmd in engines:
            outs = run_parallel([cmd(a.model, 1, 1, a.seconds)] * 2, env)
            res.setdefault(("2 processes x 1 thread", name), []).append(together(outs))
        for name, cmd in int8[r % max(len(int8), 1):] + int8[:r % max(len(int8), 1)]:
            res.setdefault(("1 thread, batch 1, int8", name), []).append(
                run_parallel([cmd(a.model, 1, 1, a.seconds)], env)[0])
        for name, cmd in int8:
            outs = run_parallel([cmd(a.model, 1, 1, a.seconds)] * 2, env)
            res.setdefault(("2 processes x 1 thread, int8", name), []).append(together(outs))
    return res


def print_table(res, xnn):
    xh = f" {'XNN inf/s':>10} {'/ XNN':>6} {'XNN p50':>9}" if xnn else ""
    print(f"{'configuration':28} {'aiinfer inf/s':>14} {'ORT inf/s':>10} {'ratio':>6}"
          f" {'aiinfer p50':>12} {'ORT p50':>9} {'% FMA peak':>10}" + xh)
    labels = []
    for (label, _) in res:
        if label not in labels:
            labels.append(label)
    for label in labels:
        o, p = res[(label, "aiinfer")], res[(label, "ort")]
        oi, pi = statistics.median(x[0] for x in o), statistics.median(x[0] for x in p)
        ol, pl = statistics.median(x[1] for x in o), statistics.median(x[1] for x in p)
        shares = [x[2] for x in o if x[2] is not None]
        # int8 rows: bench's share counts f32-equivalent work, not FMAs; left out
        share = f"{statistics.median(shares):9.0f}%" if shares and "int8" not in label \
            else f"{'-':>10}"
        xc = ""
        if xnn:
            x = res[(label, "xnnpack")]
            xi, xl = statistics.median(v[0] for v in x), statistics.median(v[1] for v in x)
            xc = f" {xi:10.1f} {oi / xi:6.2f} {xl:6.3f} ms"
        print(f"{label:28} {oi:14.1f} {pi:10.1f} {oi / pi:6.2f} {ol:9.3f} ms {pl:6.3f} ms "
              f"{share}" + xc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "mobilenetv2-160.onnx"))
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-xnn", action="store_true", help="skip the XNNPACK column")
    ap.add_argument("--no-int8", action="store_true", help="skip aiinfer's --int8 rows")
    ap.add_argument("--issue20", action="store_true",
                    help="only 1 thread batch 1 and 2 processes x 1 thread (and the int8 rows)")
    ap.add_argument("--isa", default="native,AVX2",
                    help="comma-separated ONEDNN_MAX_CPU_ISA values for aiinfer, one table "
                    "each (native: unset)")
    a = ap.parse_args()
    engines = [("aiinfer", ours_cmd), ("ort", peer_cmd)]
    xnn = None if a.no_xnn else xnn_prepare(a.model, os.path.dirname(AIINFER))
    if xnn:
        engines.append(("xnnpack", xnn_cmd_for(xnn)))
    # aiinfer --int8 (calibrated on the model's reference input) against the
    # same f32 peers, 1 thread and 2 processes x 1 thread
    calib = os.path.splitext(a.model)[0] + "-input.npy"
    int8 = [] if a.no_int8 or not os.path.exists(calib) else [
        ("aiinfer", lambda *args, **kw: ours_cmd(*args, **kw) + ["--int8", calib])] + engines[1:]
    print(f"model {os.path.relpath(a.model, ROOT)}; {a.rounds} rounds x {a.seconds:g} s; "
          f"medians; {os.cpu_count()} CPUs")
    for isa in [i.strip() for i in a.isa.split(",") if i.strip()]:
        env = dict(os.environ)
        env.pop("ONEDNN_MAX_CPU_ISA", None)
        if isa.lower() != "native":
            env["ONEDNN_MAX_CPU_ISA"] = isa
        res = run_table(a, engines, int8, env)
        ran = sorted({x[3] for x in res[("1 thread, batch 1", "aiinfer")] if x[3]})
        print(f"\nONEDNN_MAX_CPU_ISA={isa if isa.lower() != 'native' else '(unset)'}: "
              f"aiinfer's oneDNN ran {', '.join(ran) or 'an unknown ISA'}; the peers their own")
        print_table(res, xnn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
