"""The build modules (Makefile, */module.mk): the server core links without
CPython, oneDNN or libjpeg; the WSGI and model kinds are modules of their own
with their own packages and test binaries; aiserve links all of them."""
import os
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("AISERVE_BUILD", "build"))

# Prints make variables (and expressions) as the Makefile computes them, building nothing.
PRINT_MK = """
print-%:
\t@echo '$@=$($*)'
closure-%:
\t@echo '$@=$(call mod_closure,$*)'
pkgs-%:
\t@echo '$@=$(foreach m,$(call mod_closure,$*),$($(m)_PKGS) $($(m)_LDLIBS))'
progmods-%:
\t@echo '$@=$(call prog_mods,$*)'
"""


def make_vars(*goals):
    with tempfile.NamedTemporaryFile("w", suffix=".mk", delete=False) as f:
        f.write(PRINT_MK)
    try:
        r = subprocess.run(["make", "-s", "--no-print-directory", "-f", "Makefile", "-f", f.name,
                            *goals], cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(f.name)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition("=")
        out[k] = v.split()
    return out


HEAVY = ("python3-embed", "libjpeg", "libpng", "-ldnnl", "-lgomp", "libprotobuf-c")


def test_the_core_links_only_lib_and_no_heavy_package():
    v = make_vars("closure-server", "pkgs-server")
    assert v["closure-server"][0] == "server" and set(v["closure-server"]) == {"server", "lib"}
    for heavy in HEAVY:
        assert heavy not in v["pkgs-server"], f"the server core links {heavy}"


def test_the_kinds_are_modules_with_their_own_packages():
    v = make_vars("print-MODULES", "pkgs-wsgi", "pkgs-model", "print-wsgi_DIR", "print-model_DIR")
    assert {"wsgi", "model"} <= set(v["print-MODULES"])
    assert v["print-wsgi_DIR"] == ["server/wsgi"] and v["print-model_DIR"] == ["server/model"]
    assert "python3-embed" in v["pkgs-wsgi"]
    assert "libjpeg" in v["pkgs-model"] and "-ldnnl" in v["pkgs-model"]
    assert "python3-embed" not in v["pkgs-model"], "the model kind must not need CPython"


def test_each_source_belongs_to_exactly_one_module():
    v = make_vars("print-server_ALL_SRCS", "print-wsgi_ALL_SRCS", "print-model_ALL_SRCS")
    core, wsgi, model = (v["print-server_ALL_SRCS"], v["print-wsgi_ALL_SRCS"],
                         v["print-model_ALL_SRCS"])
    assert core and wsgi and model
    assert not [s for s in core if s.startswith(("server/wsgi/", "server/model/"))]
    assert all(s.startswith("server/wsgi/") for s in wsgi)
    assert all(s.startswith("server/model/") for s in model)
    assert "server/wsgi/call_test.c" in wsgi and "server/model/kserve_test.c" in model
    on_disk = sorted(os.path.relpath(os.path.join(d, f), ROOT)
                     for d, _, fs in os.walk(os.path.join(ROOT, "server"))
                     for f in fs if f.endswith(".c"))
    assert sorted(core + wsgi + model) == on_disk


def test_aiserve_links_the_kinds_after_the_core_needs_them():
    mods = make_vars("progmods-server")["progmods-server"]
    # a static library comes before the libraries it uses
    assert mods.index("wsgi") < mods.index("model") < mods.index("server") < mods.index("lib")
    assert mods.index("engine") < mods.index("lib") and len(mods) == len(set(mods))


def needed(binary):
    r = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split("[")[1].rstrip("]") for line in r.stdout.splitlines() if "(NEEDED)" in line]


@pytest.mark.parametrize("binary,absent,present", [
    ("tests/server_tests", ("libpython", "libdnnl", "libjpeg", "libpng"), ()),
    ("tests/model_tests", ("libpython",), ("libjpeg",)),
    # wsgi depends on the model kind (aiserve.infer runs its models), so a test
    # that loads the WSGI kind links libjpeg through it; never the reverse
    ("tests/wsgi_tests", (), ("libpython",)),
    ("aiserve", (), ("libpython", "libdnnl", "libjpeg")),
])
def test_the_built_binaries_need_what_their_module_says(binary, absent, present):
    path = os.path.join(BUILD, binary)
    if not os.path.exists(path):
        pytest.skip(f"{path} not built")
    libs = needed(path)
    for a in absent:
        assert not [lib for lib in libs if lib.startswith(a)], f"{binary} needs {a}: {libs}"
    for p in present:
        assert [lib for lib in libs if lib.startswith(p)], f"{binary} lacks {p}: {libs}"
