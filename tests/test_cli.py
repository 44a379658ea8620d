"""Every program answers --help and --version and refuses an unknown flag with exit 2."""
import subprocess

import pytest

from harness import binary

PROGRAMS = ["aiserve", "aiinfer", "aiload"]


@pytest.mark.parametrize("prog", PROGRAMS)
def test_help_exits_zero_and_names_the_program(prog):
    r = subprocess.run([binary(prog), "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    assert prog in r.stdout


@pytest.mark.parametrize("prog", PROGRAMS)
def test_version_prints_the_version_file(prog):
    r = subprocess.run([binary(prog), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    version = open(__file__.rsplit("/tests/", 1)[0] + "/VERSION").read().strip()
    assert version in r.stdout


@pytest.mark.parametrize("prog", PROGRAMS)
def test_unknown_flag_exits_two_naming_it(prog):
    r = subprocess.run([binary(prog), "--no-such-flag"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "--no-such-flag" in r.stderr
