"""Typed configuration (issue 12): an option table entry binds a struct field
with CFG_BIND, and a misspelt field or a field of the wrong type must not
compile. Compiles small C files against server/config.h with the project's
compiler flags; the correct binding is compiled too, so a failure is the
binding's and not the set-up's."""
import os
import shutil
import subprocess

import pytest

from harness import ROOT

CC = os.environ.get("CC", "cc")

TEMPLATE = """#include "server/config.h"
static const cfg_option t[] = {
    {"harakiri", NULL, CFG_BIND(cfg_core, %s, %s), "0", 0, 86400, "x"},
    CFG_END(cfg_core),
};
const cfg_option *table(void) { return t; }
"""


def compiles(tmp_path, opt_type, field):
    src = tmp_path / "bind.c"
    src.write_text(TEMPLATE % (opt_type, field))
    r = subprocess.run([CC, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I", ROOT, "-c",
                        str(src), "-o", str(tmp_path / "bind.o")],
                       capture_output=True, text=True, timeout=120)
    return r.returncode == 0, r.stderr


@pytest.mark.skipif(shutil.which(CC) is None, reason="no C compiler")
def test_a_correct_binding_compiles(tmp_path):
    ok, err = compiles(tmp_path, "CFG_INT", "harakiri")
    assert ok, err


@pytest.mark.skipif(shutil.which(CC) is None, reason="no C compiler")
def test_a_misspelt_field_does_not_compile(tmp_path):
    ok, err = compiles(tmp_path, "CFG_INT", "harakri")
    assert not ok
    assert "harakri" in err, err


@pytest.mark.skipif(shutil.which(CC) is None, reason="no C compiler")
@pytest.mark.parametrize("opt_type,field", [
    ("CFG_STR", "harakiri"),      # an int field for a string
    ("CFG_SIZE", "harakiri"),     # a size needs int64_t
    ("CFG_INT", "pidfile"),       # a string field for an integer
    ("CFG_LIST", "chdir"),        # a list needs cfg_list
    ("CFG_BOOL", "max_requests"),  # a boolean needs int
])
def test_a_field_of_the_wrong_type_does_not_compile(tmp_path, opt_type, field):
    ok, err = compiles(tmp_path, opt_type, field)
    assert not ok
    assert "negative" in err, err
