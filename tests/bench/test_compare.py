"""bench/compare.py: its arguments and how it reads figures from a bench's
output and tabulates them (no build, no bench run: fake outputs)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bench"))
import compare  # noqa: E402

SERVER = """wrk -t1 -c16 -d5s, 1 interleaved rounds, 2 processes
  round 1 nginx    1 worker(s):      {r1} RPS  0.21 ms
workers | nginx RPS | aiserve RPS | ratio | p50
      1 |      {n1} |       {a1} |  {q1} | {p1}ms
      2 |      {n2} |       {a2} |  {q2} | 0.300ms
log in /tmp/bench-{tmp}.log
aiserve vs nginx at 1 worker: {v}x, CPU {c}x
"""


def out(tmp="x1", r1=9000, n1=10000, a1=12000, q1=1.20, p1="0.100", n2=18000, a2=20000,
        q2=1.11, v=1.2, c=0.9):
    return SERVER.format(tmp=tmp, r1=r1, n1=n1, a1=a1, q1=q1, p1=p1, n2=n2, a2=a2, q2=q2, v=v,
                         c=c)


def test_arguments_defaults_and_errors(capsys):
    a = compare.parse_args(["HEAD~1", "HEAD"])
    assert (a.rev_a, a.rev_b) == ("HEAD~1", "HEAD")
    assert a.benches == ["server", "wsgi", "engine", "loadgen"] and a.rounds == 3
    a = compare.parse_args(["v1", "WORK", "--bench", "engine,cheaper", "--rounds", "5",
                            "--seconds", "2", "--cache", "/tmp/c"])
    assert a.benches == ["engine", "cheaper"] and a.rounds == 5 and a.seconds == 2
    assert a.cache == "/tmp/c"
    for bad in (["A", "B", "--bench", "server,nope"], ["A", "B", "--rounds", "0"], ["A"],
                ["A", "B", "--seconds", "-1"], ["A", "B", "--bench", ","]):
        with pytest.raises(SystemExit) as e:
            compare.parse_args(bad)
        assert e.value.code == 2
    assert "unknown bench nope" in capsys.readouterr().err


def test_each_bench_gets_its_build_and_duration_flags():
    script, args = compare.BENCHES["server"]
    assert os.path.exists(os.path.join(compare.ROOT, script))
    assert args("/b", 0) == ["--rounds", "1", "--aiserve", "/b/aiserve"]
    assert args("/b", 2)[-2:] == ["--seconds", "2"]
    assert "--build" in compare.BENCHES["loadgen"][1]("/b", 0)
    assert compare.BENCHES["loadgen"][1]("/b", 3)[-2:] == ["--duration", "3"]
    for name, (script, _) in compare.BENCHES.items():
        assert os.path.exists(os.path.join(compare.ROOT, script)), name


def test_extract_skips_round_lines_paths_and_wordy_digits():
    ex = compare.extract(out())
    lines = [s for s, _, _ in ex.values()]
    assert not any(s.startswith("round") for s in lines)
    assert "log in <path>" not in lines  # a path alone carries no figure
    (nums, labels), = [(v[1], v[2]) for v in ex.values() if v[0].startswith("1 |")]
    assert nums == [1, 10000, 12000, 1.2, 0.1]
    # A table row's numbers are named by the row and the column header.
    assert labels == [None, "1 · nginx RPS", "1 · aiserve RPS", "1 · ratio", "1 · p50"]
    # "p50" and "-c16" are words, not figures; the header has none.
    assert not any(s.startswith("workers") for s in lines)
    # Column widths do not change a line's shape.
    assert set(compare.extract(out(n1=9, a1=123456789))) == set(ex)


def test_figures_are_medians_per_side_named_by_row_and_column():
    a = [compare.extract(out(tmp=t, a1=v, p1=p)) for t, v, p in
         (("a", 12000, "0.100"), ("b", 11000, "0.120"), ("c", 13000, "0.110"))]
    b = [compare.extract(out(tmp=t, a1=v, p1=p)) for t, v, p in
         (("d", 15000, "0.090"), ("e", 16000, "0.080"), ("f", 14000, "0.085"))]
    rows = {n: (ma, mb, r) for n, ma, mb, r in compare.figures(a, b)}
    # Only the numbers that moved are figures.
    assert set(rows) == {"1 · aiserve RPS", "1 · p50"}
    assert rows["1 · aiserve RPS"] == (12000, 15000, pytest.approx(1.25, rel=1e-12))
    ma, mb, r = rows["1 · p50"]
    assert ma == pytest.approx(0.11) and mb == pytest.approx(0.085)
    assert r == pytest.approx(0.085 / 0.11, rel=1e-12)


def test_a_line_outside_a_table_names_its_figure_by_the_line():
    a = [compare.extract(out(v=1.2, c=0.9)), compare.extract(out(v=1.3, c=0.9))]
    b = [compare.extract(out(v=1.5, c=0.8))]
    rows = {n: (ma, mb) for n, ma, mb, _ in compare.figures(a, b)}
    # Constant numbers (the 1 worker) stay; the other figure shows as #.
    assert rows == {"aiserve vs nginx at 1 worker: {}x, CPU #x": (1.25, 1.5),
                    "aiserve vs nginx at 1 worker: #x, CPU {}x": (0.9, 0.8)}


def test_a_line_missing_from_a_run_is_left_out_and_the_table_prints():
    a = [compare.extract(out(a1=12000)), compare.extract(out(a1=12500))]
    b = [compare.extract(out(a1=13000).replace("      2 |", "      two |"))]
    rows = compare.figures(a, b)
    assert rows and all(not n.startswith("2 |") for n, *_ in rows)
    t = compare.table({"server": rows})
    lines = t.splitlines()
    assert lines[0].split() == ["figure", "A", "median", "B", "median", "B/A"]
    assert lines[1] == "[server]"
    assert "12250" in t and "13000" in t and "1.061" in t
    assert compare.figures([], []) == []


def test_a_markdown_tables_rule_line_is_not_taken_for_its_header():
    text = ("| server | RPS | p99 ms |\n"
            "|---|---|---|\n"
            "| aiserve | 16793 | 2.42 |\n")
    rows = list(compare.extract(text).values())
    assert rows[0][2] == ["aiserve · RPS", "aiserve · p99 ms"], rows


def test_a_header_with_a_digit_in_a_name_still_names_the_columns():
    # bench/wsgi/run.py's header has "non-2xx": a number to the parser, yet
    # the line above a markdown rule is the header, never a row of figures.
    text = ("| server | RPS | non-2xx | vs uWSGI |\n"
            "|---|---|---|---|\n"
            "| aiserve | 16793 | 0 | 1.10x |\n")
    rows = list(compare.extract(text).values())
    assert len(rows) == 1, rows
    assert rows[0][1] == [16793, 0, 1.10]
    assert rows[0][2] == ["aiserve · RPS", "aiserve · non-2xx", "aiserve · vs uWSGI"], rows
