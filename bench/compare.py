#!/usr/bin/python3
"""Two builds of the project on the same benchmarks, interleaved: the ratio
per figure, so a performance change is measured against the previous build
in one run (issue 20 point 6).

    bench/compare.py REV_A REV_B [--bench server,wsgi,engine,loadgen]
                     [--rounds 3] [--seconds S] [--cache DIR] [--keep-going]

Each revision (anything `git rev-parse` takes; WORK is the working tree as
it is, built in place) is exported with `git archive` into the cache
(~/.cache/aiserve-builds/<commit>, or $AISERVE_BUILD_CACHE: a plain tree,
so the repository gains no worktree entry) and built there once
(`make -j2 all`); a later run of the same commit reuses it. The
benchmark scripts are this checkout's, so both builds run the same
measurement; only the binaries differ (--aiserve/--build and AISERVE_BUILD
point at the revision's build/). Each round runs every chosen bench once
for A and once for B, alternating which goes first, each with one round of
its own (--rounds 1), so the machine's drift lands on both.

Figures are read from the benches' own output, whatever its layout: every
number on a line that is not a per-round line ("round 2 ...") is a figure,
named by its table row and column header where the line is a row of a
table ("queue · p99 ms"), else by its line with the figure as {} (numbers
that are the same in every run, such as a worker count, stay in the name:
they label the row), and
identified by the line's shape and its place in the output, which the same
script prints alike for both builds. The table gives each figure's median
over the rounds for A and B and B/A. Which way is better depends on the
figure (req/s up, ms down): the ratio only says how far B moved.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"

# name: (script, its arguments for a build dir B and duration S or None)
BENCHES = {
    "server": ("bench/server/run.py",
               lambda b, s: ["--rounds", "1", "--aiserve", f"{b}/aiserve"] +
               (["--seconds", str(s)] if s else [])),
    "wsgi": ("bench/wsgi/run.py",
             lambda b, s: ["--app", "hello", "--rounds", "1", "--aiserve", f"{b}/aiserve"] +
             (["--seconds", str(s)] if s else [])),
    "engine": ("bench/engine/run.py",
               lambda b, s: ["--rounds", "1"] + (["--seconds", str(s)] if s else [])),
    "loadgen": ("bench/loadgen/run.py",
                lambda b, s: ["--rounds", "1", "--build", b, "--no-locust"] +
                (["--duration", str(s)] if s else [])),
    "model": ("bench/model/run.py",
              lambda b, s: ["--rounds", "1", "--build", b, "--no-pss"] +
              (["--seconds", str(s)] if s else [])),
    "cheaper": ("bench/server/cheaper.py",
                lambda b, s: ["--only", "busyness,queue"] +
                ([f"--stages={s}s:20,{s}s:300,{s}s:20"] if s else [])),
}

NUM = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev_a")
    ap.add_argument("rev_b")
    ap.add_argument("--bench", default="server,wsgi,engine,loadgen",
                    help="comma-separated: " + ",".join(BENCHES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=0,
                    help="each bench's duration flag (0: the bench's default)")
    ap.add_argument("--cache", default=os.environ.get(
        "AISERVE_BUILD_CACHE", os.path.expanduser("~/.cache/aiserve-builds")))
    ap.add_argument("--keep-going", action="store_true",
                    help="a bench that fails is left out instead of stopping the run")
    a = ap.parse_args(argv)
    a.benches = [b for b in a.bench.split(",") if b]
    unknown = [b for b in a.benches if b not in BENCHES]
    if unknown or not a.benches:
        ap.error(f"unknown bench {', '.join(unknown) or '(none)'}; known: {', '.join(BENCHES)}")
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    if a.seconds < 0:
        ap.error("--seconds must not be negative")
    return a


def _git(*args, cwd=ROOT):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def build(rev, cache):
    """The build/ directory of rev, built once per commit. WORK: this tree."""
    if rev == "WORK":
        subprocess.run(["make", "-j2", "all"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        return os.path.join(ROOT, "build")
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    tree = os.path.join(cache, commit)
    stamp = os.path.join(tree, ".built")
    if not os.path.exists(stamp):
        os.makedirs(cache, exist_ok=True)
        os.makedirs(tree, exist_ok=True)
        arc = subprocess.Popen(["git", "archive", "--format=tar", commit], cwd=ROOT,
                               stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", tree], stdin=arc.stdout, check=True)
        arc.stdout.close()
        if arc.wait():
            raise SystemExit(f"{rev} ({commit[:12]}): git archive failed")
        # npm's packages are installed, not tracked: the build embeds some.
        nm = os.path.join(ROOT, "node_modules")
        if os.path.isdir(nm) and not os.path.exists(os.path.join(tree, "node_modules")):
            os.symlink(os.path.realpath(nm), os.path.join(tree, "node_modules"))
        log = os.path.join(cache, f"{commit}.log")
        with open(log, "w") as f:
            r = subprocess.run(["make", "-j2", "all"], cwd=tree, stdout=f, stderr=f)
        if r.returncode:
            raise SystemExit(f"{rev} ({commit[:12]}): make failed, see {log}")
        open(stamp, "w").close()
    return os.path.join(tree, "build")


def run_bench(name, build_dir, seconds):
    script, args = BENCHES[name]
    env = dict(os.environ, AISERVE_BUILD=build_dir)
    r = subprocess.run([PY, os.path.join(ROOT, script), *args(build_dir, seconds)], cwd=ROOT,
                       env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{script} exited {r.returncode}: {(r.stderr or r.stdout)[-400:]}")
    return r.stdout


def _num(tok):
    return float(tok.replace(",", ""))


def _cells(line):
    """A table line's cells: split on '|', else on runs of 2+ spaces."""
    if "|" in line:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
    else:
        cells = re.split(r"\s{2,}", line.strip())
    return cells


def _labels(line, header):
    """For each number of a table row under header: "row · column"."""
    cells = _cells(line)
    if not header or len(cells) < len(header):
        return None
    labels = []
    for j, cell in enumerate(cells):
        for _ in NUM.finditer(cell):
            labels.append(f"{cells[0]} · {header[j]}" if 0 < j < len(header) else None)
    return labels


def extract(text):
    """{(shape, nth line of that shape): (line, [numbers], [labels] or None)}
    of one output; a label names a number by its table row and column header
    (the last line without numbers that has 3 cells or more)."""
    lines, seen, header, prev = {}, {}, None, None
    for line in text.splitlines():
        # Paths (temporary files, logs) name no figure; columns align by width.
        line = re.sub(r"(?<!\S)(?:\.{0,2}|~)/\S*", "<path>", line)
        s = re.sub(r"\s+", " ", line).strip()
        if not s or re.match(r"(?i)round\s+\d", s):
            continue
        if re.fullmatch(r"[|:\-+= ]+", s):  # a markdown table's rule, not a header
            # ... but the line above it is one, even with a digit in a name
            # ("non-2xx"): it is no figure, it names the columns.
            if prev is not None and "|" in prev[0] and "|" in s:
                header = _cells(prev[0])
                if prev[1] is not None:
                    lines.pop(prev[1], None)
                    seen[prev[1][0]] -= 1
            prev = None
            continue
        nums = [_num(m.group()) for m in NUM.finditer(s)]
        if not nums:
            cells = _cells(line)
            header = cells if len(cells) >= 3 else header
            prev = (line, None)
            continue
        shape = NUM.sub("#", s)
        k = seen.get(shape, 0)
        seen[shape] = k + 1
        labels = _labels(line, header)
        if labels is not None and len(labels) != len(nums):
            labels = None
        lines[(shape, k)] = (s, nums, labels)
        prev = (line, (shape, k))
    return lines


def figures(runs_a, runs_b):
    """Rows (name, A median, B median, B/A) from the extracts of A's and B's
    runs of one bench. A number that never changes is a label, not a figure;
    a line missing from any run is left out."""
    runs = runs_a + runs_b
    if not runs:
        return []
    rows = []
    for key in runs_a[0]:
        if not all(key in r and len(r[key][1]) == len(runs_a[0][key][1]) for r in runs):
            continue
        line, _, labels = runs_a[0][key]
        cols = list(zip(*[r[key][1] for r in runs]))
        varying = [len(set(c)) > 1 for c in cols]
        toks = list(NUM.finditer(line))
        named = [lb for lb in labels or [] if lb]
        for i, v in enumerate(varying):
            if not v:
                continue
            if labels and labels[i] and named.count(labels[i]) == 1:
                a = statistics.median(r[key][1][i] for r in runs_a)
                b = statistics.median(r[key][1][i] for r in runs_b)
                rows.append((labels[i], a, b, b / a if a else float("nan")))
                continue
            name, last = [], 0
            for j, m in enumerate(toks):
                name.append(line[last:m.start()])
                name.append("{}" if j == i else ("#" if varying[j] else m.group()))
                last = m.end()
            name.append(line[last:])
            name = re.sub(r"\s+", " ", "".join(name)).strip()
            a = statistics.median(r[key][1][i] for r in runs_a)
            b = statistics.median(r[key][1][i] for r in runs_b)
            rows.append((name, a, b, b / a if a else float("nan")))
    return rows


def _fmt(x):
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def table(rows_by_bench):
    out = []
    w = max([len(n[:70]) for rows in rows_by_bench.values() for n, *_ in rows] + [6])
    out.append(f"{'figure':<{w}}  {'A median':>12}  {'B median':>12}  {'B/A':>6}")
    for bench, rows in rows_by_bench.items():
        out.append(f"[{bench}]")
        for n, a, b, r in rows:
            out.append(f"{n[:70]:<{w}}  {_fmt(a):>12}  {_fmt(b):>12}  {r:>6.3f}")
    return "\n".join(out)


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    builds = {"A": build(a.rev_a, a.cache), "B": build(a.rev_b, a.cache)}
    print(f"A = {a.rev_a}: {builds['A']}\nB = {a.rev_b}: {builds['B']}", flush=True)
    runs = {b: {"A": [], "B": []} for b in a.benches}
    failed = set()
    for rnd in range(a.rounds):
        order = ("A", "B") if rnd % 2 == 0 else ("B", "A")
        for bench in a.benches:
            if bench in failed:
                continue
            for side in order:
                try:
                    out = run_bench(bench, builds[side], a.seconds)
                except RuntimeError as e:
                    if not a.keep_going:
                        raise SystemExit(f"round {rnd + 1} {bench} {side}: {e}")
                    print(f"round {rnd + 1} {bench} {side}: {e}; left out", flush=True)
                    failed.add(bench)
                    break
                runs[bench][side].append(extract(out))
            print(f"round {rnd + 1}/{a.rounds} {bench}: done", flush=True)
    rows = {b: figures(r["A"], r["B"]) for b, r in runs.items() if b not in failed}
    print(f"\nmedians of {a.rounds} interleaved round(s); B/A > 1: B's figure is larger")
    print(table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
