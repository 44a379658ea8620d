#!/usr/bin/python3
"""Runs the black-box pytest suite as concurrent shards, then the tests that
must run alone, and writes one JUnit XML with every case.

usage: scripts/pytest-shards.py OUT.xml [PATH...]      (default PATH: tests)
       scripts/pytest-shards.py --update JUNIT.xml     (re-time tests/durations.txt)

Most black-box tests wait on the processes they start (servers' readiness,
fixed-length load runs against a Python server, Locust's start-up), so two
pytest processes on 2 cores finish in little more than half the time. Tests
that measure the machine (throughput, latency bounds, scaling decisions under
load, the advisor's "is a core free" check) would measure the other shard as
well: tests/durations.txt marks them S and they run after the parallel part,
alone. The other files (less their S tests, named by pytest node id) are
packed into parts by the seconds recorded there, longest first, and each
shard starts the next part when its last one ends, so the shards end close
together however the recorded times drift. A file the table does not know
runs alone (safe until it is timed and marked P).

PYTEST_SHARDS=N sets the number of parallel shards (default 2; 1 runs
everything in one pytest as before). Each part's output is in
tests/artifacts/pytest-p<N>.log (pytest-alone.log); failures are printed at the end."""
import fnmatch
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "tests", "durations.txt")
PY = "/usr/bin/python3"
DEFAULT_S = 5.0  # seconds assumed for a file the table does not list
NORECURSE = ("*.egg", "_darcs", "build", "CVS", "dist", "node_modules", "venv", "{arch}")
CHUNK_S = 25.0  # recorded seconds of shorter files one pytest run takes at a time


def read_table():
    """{file or node id: (seconds, mode)} from tests/durations.txt."""
    table = {}
    with open(TABLE) as f:
        for ln, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 2)
            if len(parts) != 3 or parts[1] not in ("P", "S"):
                sys.exit(f"{TABLE}:{ln}: want 'SECONDS P|S PATH[::TEST]', got {line!r}")
            table[parts[2]] = (float(parts[0]), parts[1])
    return table


def test_files(paths):
    """The test files under paths (files or folders, relative to ROOT, the
    working directory), in pytest's order."""
    out = []
    for p in paths:
        if os.path.isfile(p):
            out.append(p)
            continue
        for d, dirs, fs in os.walk(p):
            # what `pytest tests` skips (its default norecursedirs), so the
            # count stays that of one pytest run
            dirs[:] = sorted(x for x in dirs if not x.startswith(("__", ".")) and
                             not any(fnmatch.fnmatch(x, g) for g in NORECURSE))
            out += [os.path.join(d, f) for f in sorted(fs)
                    if f.startswith("test_") and f.endswith(".py")]
    return out


def plan(files, table, nshards):
    """([args of each parallel chunk, longest first], [args of the serial run],
    {part: recorded seconds})."""
    serial, units = [], []  # units: (seconds, file, [--deselect args])
    for f in files:
        secs, mode = table.get(f, (DEFAULT_S, "S"))
        alone = [(k, s) for k, (s, m) in table.items() if k.startswith(f + "::") and m == "S"]
        if mode == "S" or nshards < 2:
            serial.append(f)
            continue
        deselect = []
        for node, s in alone:
            serial.append(node)
            deselect += ["--deselect", node]
            secs -= s
        units.append((secs, f, deselect))
    # Longest first, files under CHUNK_S packed together (one pytest start-up
    # each chunk): the shards pull the next chunk when one ends, so they end
    # within about a chunk of each other however the recorded times drift.
    chunks, cur, cur_s = [], [], 0.0
    for secs, f, deselect in sorted(units, key=lambda u: (-u[0], u[1])):
        cur.append((f, deselect))
        cur_s += secs
        if cur_s >= CHUNK_S:
            chunks.append((cur_s, cur))
            cur, cur_s = [], 0.0
    if cur:
        chunks.append((cur_s, cur))
    args = []
    for _, chunk in chunks:
        a = [f for f, _ in sorted(chunk)]
        for _, d in chunk:
            a += d
        args.append(a)
    est = {"parallel": round(sum(c[0] for c in chunks)),
           "alone": round(sum(table.get(x, (DEFAULT_S, "S"))[0] for x in serial))}
    return args, serial, est


def pytest_cmd(xml, args):
    if os.path.exists(xml):
        os.unlink(xml)  # a run that crashes must not be counted by an old file
    return [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", ROOT,
            "--junitxml", xml, *args]


def suites_of(xml):
    """The <testsuite> elements of a pytest JUnit file; a run that wrote none
    (it crashed) counts as one error."""
    try:
        r = ET.parse(xml).getroot()
        return [r] if r.tag == "testsuite" else list(r)
    except (OSError, ET.ParseError):
        s = ET.Element("testsuite", name=os.path.basename(xml), tests="1", errors="1",
                       failures="0", skipped="0")
        ET.SubElement(ET.SubElement(s, "testcase", classname="pytest", name=os.path.basename(xml)),
                      "error", message="pytest wrote no JUnit XML (crashed?)")
        return [s]


def run(out_xml, paths):
    nshards = int(os.environ.get("PYTEST_SHARDS", "2"))
    out_xml = os.path.abspath(out_xml)
    if os.path.exists(out_xml):
        os.unlink(out_xml)
    paths = [os.path.relpath(os.path.abspath(p), ROOT) for p in paths]
    os.chdir(ROOT)
    files = test_files(paths or ["tests"])
    chunks, serial, est = plan(files, read_table(), nshards)
    art = os.path.dirname(os.path.abspath(out_xml))
    base = os.path.splitext(os.path.basename(out_xml))[0]
    print("pytest plan (recorded seconds): " + ", ".join("%s ~%ds" % kv for kv in est.items()),
          flush=True)
    runs = []  # (name, xml, log, returncode, seconds)
    running = []
    t0 = time.monotonic()
    try:
        todo = list(enumerate(chunks, 1))
        while todo or running:
            while todo and len(running) < nshards:
                i, args = todo.pop(0)
                xml, log = (os.path.join(art, "%s-p%02d.%s" % (base, i, e)) for e in ("xml", "log"))
                with open(log, "w") as lf:
                    running.append(("part %d" % i, xml, log, time.monotonic(), subprocess.Popen(
                        pytest_cmd(xml, args), cwd=ROOT, stdout=lf, stderr=subprocess.STDOUT)))
            time.sleep(0.05)
            for r in [r for r in running if r[4].poll() is not None]:
                running.remove(r)
                runs.append((*r[:3], r[4].returncode, time.monotonic() - r[3]))
        if chunks:
            print("-- %d parts in %d shards: %.0f s" % (len(chunks), nshards,
                                                       time.monotonic() - t0))
        if serial:
            t1 = time.monotonic()
            xml, log = (os.path.join(art, "%s-alone.%s" % (base, e)) for e in ("xml", "log"))
            with open(log, "w") as lf:
                rc = subprocess.run(pytest_cmd(xml, serial), cwd=ROOT, stdout=lf,
                                    stderr=subprocess.STDOUT).returncode
            runs.append(("alone", xml, log, rc, time.monotonic() - t1))
    finally:
        for *_, p in running:
            if p.poll() is None:
                p.kill()
                p.wait()

    root = ET.Element("testsuites")
    tot = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for name, xml, log, rc, secs in runs:
        with open(log) as f:
            lines = f.read().splitlines()
        if name == "alone" or rc not in (0, 5):  # 5: nothing collected
            print("-- %s (%.0f s): %s" % (name, secs, lines[-1] if lines else "no output"))
        if rc not in (0, 5):
            # pytest's short summary (the FAILED lines); the tracebacks are in the log
            at = max([i for i, ln in enumerate(lines) if "short test summary info" in ln] or [-30])
            print("\n".join(lines[at:][-40:]))
            print("   (output: %s)" % os.path.relpath(log, ROOT))
        for s in suites_of(xml):
            s.set("name", "pytest %s" % name)
            root.append(s)
            for k in tot:
                tot[k] += int(s.get(k, 0))
    ET.ElementTree(root).write(out_xml, encoding="utf-8", xml_declaration=True)
    bad = tot["failures"] + tot["errors"]
    print("pytest: %d passed, %d failed, %d skipped in %.0f s" % (
        tot["tests"] - bad - tot["skipped"], bad, tot["skipped"], time.monotonic() - t0))
    return 1 if bad or any(rc not in (0, 5) for *_, rc, _ in runs) else 0


def update(junit):
    """Rewrites the seconds of tests/durations.txt from a JUnit file (modes
    kept; new files added as S, to be looked at and marked P)."""
    table = read_table()
    secs = {}
    for tc in ET.parse(junit).getroot().iter("testcase"):
        parts = tc.get("classname", "").split(".")  # tests.x.test_y[.TestClass]
        while parts and not os.path.isfile(os.path.join(ROOT, *parts) + ".py"):
            parts.pop()
        f = "/".join(parts) + ".py"
        t = float(tc.get("time", 0))
        secs[f] = secs.get(f, 0) + t
        node = f + "::" + tc.get("name", "")
        secs[node] = secs.get(node, 0) + t
    os.chdir(ROOT)
    for f in test_files(["tests"]):
        table.setdefault(f, (DEFAULT_S, "S"))
    with open(TABLE) as f:
        head = [ln for ln in f if ln.startswith("#")]
    with open(TABLE, "w") as f:
        f.writelines(head)
        for k in sorted(table):
            f.write("%6.1f %s %s\n" % (secs.get(k, table[k][0]), table[k][1], k))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--update"] and len(sys.argv) == 3:
        update(os.path.abspath(sys.argv[2]))
    elif len(sys.argv) >= 2 and not sys.argv[1].startswith("-"):
        sys.exit(run(sys.argv[1], sys.argv[2:]))
    else:
        sys.exit(__doc__)
