"""Options: wsgi-file, callable, mount (SCRIPT_NAME/PATH_INFO split), chdir,
env, home/virtualenv and pythonpath, and the article's uwsgi.ini run as is."""
import json
import os
import re
import subprocess

import wsgihelp as wh
from harness import binary, free_port, wait_port

ROOT = os.path.dirname(os.path.dirname(wh.HERE))


def test_wsgi_file_and_callable(procs, tmp_path):
    _p, port = wh.start_aiserve(procs, tmp_path, [("wsgi-file", os.path.join(wh.APPS, "mounted.py")),
                                                  ("callable", "second")])
    assert wh.get(port, "/x/y")[3] == b"second  /x/y\n"


def test_module_spec_names_the_callable(procs, tmp_path):
    _p, port = wh.start_aiserve(procs, tmp_path, [("module", "mounted:first")])
    assert wh.get(port, "/")[3] == b"first  /\n"


def test_mounts_split_script_name_and_path_info(procs, tmp_path):
    _p, port = wh.start_aiserve(procs, tmp_path, [("mount", "/one=mounted:first"),
                                                  ("mount", "/one/two=mounted:second"),
                                                  ("module", "mounted:root")])
    assert wh.get(port, "/one/x")[3] == b"first /one /x\n"
    assert wh.get(port, "/one")[3] == b"first /one \n"
    assert wh.get(port, "/one/two/three")[3] == b"second /one/two /three\n"
    assert wh.get(port, "/oneself")[3] == b"root  /oneself\n"
    assert wh.get(port, "/caf%C3%A9")[3] == "root  /caf\u00c3\u00a9\n".encode("latin-1")


def test_chdir_env_and_virtualenv(procs, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([wh.PY, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    site = venv / "lib" / "python3.11" / "site-packages"
    (site / "venv_only_module.py").write_text("WHERE = 'venv'\n")
    work = tmp_path / "work"
    work.mkdir()
    _p, port = wh.start_aiserve(procs, tmp_path, [("module", "envcheck:application"),
                                                  ("chdir", str(work)), ("virtualenv", str(venv)),
                                                  ("env", "AISERVE_TEST_ENV=yes")])
    body = wh.get(port, "/")[3].decode()
    assert body == "%s|yes|venv\n" % work


def test_a_missing_virtualenv_is_refused(procs, tmp_path):
    p, _ = wh.start_aiserve(procs, tmp_path, [("module", "envcheck:application"),
                                              ("home", str(tmp_path / "nope")),
                                              ("need-app", "true")], wait=False)
    assert p.wait(timeout=30) != 0
    assert "nope" in p.stderr.read().decode(errors="replace")


def test_article_ini_runs_unchanged_but_for_the_bind_address(procs, tmp_path):
    src = open(os.path.join(ROOT, "examples", "article", "uwsgi.ini")).read()
    port = free_port()
    ini = tmp_path / "uwsgi.ini"
    ini.write_text(re.sub(r"http = .*", "http = 127.0.0.1:%d" % port, src))
    # The ini names `module = demo:app`; run it from the example's directory,
    # as the article runs `uwsgi uwsgi.ini` from the project directory.
    p = procs.start([binary("aiserve"), str(ini)], cwd=os.path.join(ROOT, "examples", "article"))
    wait_port(port, timeout=120, proc=p)
    assert wh.get(port, "/", timeout=60)[3] == b"Hello, World!"


def test_article_io_demo_calls_its_upstream_with_requests(procs, tmp_path):
    article = os.path.join(ROOT, "examples", "article")
    up = free_port()
    u = procs.start([wh.PY, os.path.join(article, "upstream.py"), str(up)])
    wait_port(up, timeout=20, proc=u)
    _p, port = wh.start_aiserve(procs, tmp_path, [
        ("module", "io_demo:app"), ("pythonpath", article), ("processes", "2"), ("threads", "4"),
        ("env", "UPSTREAM=http://127.0.0.1:%d/delay/0.1" % up)])
    status, _r, _h, body = wh.get(port, "/")
    assert status == 200
    assert b'"delay":0.1' in body.replace(b" ", b"")


def test_atexit_handlers_run_at_worker_exit_unless_skip_atexit(procs, tmp_path):
    for skip in ("false", "true"):
        marks = tmp_path / ("marks-" + skip)
        marks.mkdir()
        p, port = wh.start_aiserve(procs, tmp_path, [
            ("module", "atexit_app:application"), ("processes", "1"), ("lazy-apps", "true"),
            ("env", "ATEXIT_DIR=%s" % marks), ("skip-atexit", skip)])
        pid = int(wh.get(port, "/")[3])
        wh.stderr_of(p)
        assert os.path.exists(marks / ("exit-%d" % pid)) == (skip == "false")


def test_wsgi_disable_file_wrapper_leaves_it_out(procs, tmp_path):
    _p, port = wh.start_aiserve(procs, tmp_path, [("module", "raw_app:application"),
                                                  ("wsgi-disable-file-wrapper", "true")])
    assert wh.get(port, "/file")[0] == 500, "raw_app needs environ['wsgi.file_wrapper']"
    assert wh.get(port, "/")[0] == 200


def test_django_mounted_under_a_prefix_sees_its_script_name(procs, tmp_path):
    _p, port = wh.start_aiserve(procs, tmp_path, [("mount", "/dj=djsite.wsgi:application")])
    status, _r, _h, body = wh.get(port, "/dj/headers/?q=1")
    assert status == 200
    assert json.loads(body)["script"] == "/dj"
    status, _r, headers, _b = wh.get(port, "/dj/form")
    assert status == 301
    assert dict((k.lower(), v) for k, v in headers)["location"] == "/dj/form/"


def test_pythonpath_globs_expand(procs, tmp_path):
    for name in ("liba", "libb"):
        d = tmp_path / "vendor" / name
        d.mkdir(parents=True)
        (d / ("mod_%s.py" % name)).write_text("X = %r\n" % name)
    app = tmp_path / "globapp.py"
    app.write_text("import mod_liba, mod_libb\n"
                   "def application(env, sr):\n"
                   "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
                   "    return [(mod_liba.X + mod_libb.X).encode()]\n")
    _p, port = wh.start_aiserve(procs, tmp_path, [("wsgi-file", str(app)),
                                                  ("pythonpath", str(tmp_path / "vendor" / "*"))])
    assert wh.get(port, "/")[3] == b"libalibb"
