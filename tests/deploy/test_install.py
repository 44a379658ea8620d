"""make install / uninstall / deb, and the man pages they ship."""
import os
import re
import subprocess

import pytest

from harness import ROOT, binary

MANS = ["aiserve", "aiinfer", "aiload"]


def make(*args, timeout=300):
    r = subprocess.run(["make", "--no-print-directory", "-C", ROOT, *args], capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


def test_install_then_uninstall_leaves_nothing(tmp_path):
    dest = tmp_path / "dest"
    make("install", f"DESTDIR={dest}", "PREFIX=/opt/ai")
    files = tree(dest)
    for p in ["opt/ai/bin/aiserve", "opt/ai/bin/aiinfer", "opt/ai/bin/aiload",
              "opt/ai/share/man/man1/aiserve.1", "opt/ai/share/aiserve/models/digits.onnx",
              "opt/ai/share/aiserve/container.ini", "opt/ai/share/aiserve/examples/article/uwsgi.ini",
              "opt/ai/lib/systemd/system/aiserve.service", "opt/ai/lib/systemd/system/aiserve.socket"]:
        assert p in files, p
    for prog in ["aiserve", "aiinfer", "aiload"]:
        r = subprocess.run([str(dest / "opt/ai/bin" / prog), "--version"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0 and prog in r.stdout + r.stderr
    r = subprocess.run([str(dest / "opt/ai/bin/aiinfer"), "info",
                        str(dest / "opt/ai/share/aiserve/models/digits.onnx")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    make("uninstall", f"DESTDIR={dest}", "PREFIX=/opt/ai")
    assert tree(dest) == []


@pytest.mark.parametrize("name", MANS)
def test_man_pages_render_cleanly_and_name_real_options(name):
    page = os.path.join(ROOT, "man", name + ".1")
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    # Every long option the page documents is one the program knows.
    helptext = subprocess.run([binary(name), "--help"], capture_output=True, text=True,
                              timeout=10)
    helptext = helptext.stdout + helptext.stderr
    src = open(page).read().replace("\\-", "-")
    opts = set(re.findall(r"^\.B[IR]? (--[a-z][a-z0-9-]*)", src, re.M))
    assert opts, "no options found in " + page
    for opt in opts:
        assert re.search(re.escape(opt) + r"\b", helptext), f"{name}.1 documents {opt}"


def test_deb_has_its_files_and_dependencies(tmp_path):
    out = make("deb", f"BUILD={os.path.relpath(os.path.join(ROOT, 'build'), ROOT)}")
    deb = re.search(r"^deb: (\S+)$", out, re.M).group(1)
    deb = os.path.join(ROOT, deb)
    info = subprocess.run(["dpkg-deb", "-f", deb], capture_output=True, text=True).stdout
    assert re.search(r"^Package: aiserve$", info, re.M)
    assert re.search(r"^Depends: .*libdnnl2", info, re.M)
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True).stdout
    for p in ["./usr/bin/aiserve", "./usr/share/man/man1/aiload.1",
              "./usr/lib/systemd/system/aiserve.service"]:
        assert p in listing, p
    # Owned by root whoever built it.
    assert "root/root" in listing.splitlines()[0]
