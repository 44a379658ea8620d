"""scripts/check-layers.sh: the repository passes it, and each rule fails on a
small tree that breaks it (so the check run by `make test` can fail)."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "check-layers.sh")

# A tree that keeps every rule: the shape of the real one, a few files.
CLEAN = {
    "lib/buf.h": '#include <stddef.h>\n#include <sys/types.h>\n',
    "lib/buf.c": '#include "lib/buf.h"\n',
    "engine/engine.h": '#include "lib/buf.h"\n',
    "server/core.h": '#include "lib/buf.h"\n#include "server/app.h"\n',
    "server/app.h": '#include "lib/buf.h"\n',
    "server/main.c": '#include "server/core.h"\n#include "server/model/model.h"\n'
                     '#include "server/wsgi/wsgi.h"\n',
    "server/model/app.c": '#include "engine/engine.h"\n#include "server/app.h"\n',
    "server/model/api.h": '#include "lib/buf.h"\n',
    "server/wsgi/app.c": '#include <Python.h>\n#include "server/model/api.h"\n',
    "server/wsgi/wsgi.h": '#include "server/app.h"\n',
    "loadgen/py/pymod.c": '#define PY_SSIZE_T_CLEAN\n#include <Python.h>\n#include "lib/buf.h"\n',
    "loadgen/runner.c": '#include "loadgen/runner.h"\n#include "lib/buf.h"\n',
    "fuzz/server_access.c": '#include "server/core.h"\n',
    "fuzz/model_kserve.c": '#include "server/model/api.h"\n',
}

# (file, text, words the failure names): one violation per rule.
VIOLATIONS = [
    ("server/srv.c", '#include "server/wsgi/wsgi.h"\n', "core includes an app kind"),
    ("server/conn.c", '  #  include "server/model/model.h"\n', "core includes an app kind"),
    ("server/resp.c", '#include "engine/engine.h"\n', "core includes the engine"),
    ("server/wsgi/py.c", '#include "engine/engine.h"\n', "only server/model/ includes the engine"),
    ("server/model/http.c", '#include "server/wsgi/wsgi.h"\n', "model kind includes the WSGI kind"),
    ("server/log.c", '#include <Python.h>\n', "Python.h outside"),
    ("server/model/image.c", '#include "Python.h"\n', "Python.h outside"),
    ("lib/json.c", '#include "server/core.h"\n', "lib/ includes a program"),
    ("lib/ev.c", '#include "loadgen/runner.h"\n', "lib/ includes a program"),
    ("engine/dnn.c", '#include "server/core.h"\n', "engine/ includes a program"),
    ("loadgen/conn.c", '#include "server/app.h"\n', "aiload includes another program"),
    ("fuzz/server_kserve.c", '#include "server/model/kserve.h"\n', "core includes an app kind"),
]


def make_tree(tmp_path, extra=None):
    files = dict(CLEAN)
    if extra:
        files[extra[0]] = extra[1]
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def run(root):
    return subprocess.run(["bash", SCRIPT, str(root)], capture_output=True, text=True, timeout=120)


def test_the_repository_keeps_its_layers():
    r = run(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "check-layers: ok" in r.stdout


def test_a_tree_that_keeps_the_rules_passes(tmp_path):
    r = run(make_tree(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("rel,text,why", VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_each_rule_fails_naming_the_file_and_line(tmp_path, rel, text, why):
    # the violation on line 2, after a harmless include
    r = run(make_tree(tmp_path, (rel, '#include <stdio.h>\n' + text)))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"check-layers: {rel}:2:" in r.stdout
    assert why in r.stdout
    assert "1 include(s) cross a layer" in r.stdout
