"""Shared by the Python-locustfile tests (test_pyfile.py, test_pyfile_webui.py):
the real aiserve that hosts tests/loadgen/pyfile_app.py for them to load."""
import os
import subprocess

import pytest

from harness import binary, free_port, procs, wait_port  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def app(procs, tmp_path):  # noqa: F811
    """A real aiserve serving the test app; yields its base URL."""
    port = free_port()
    ini = tmp_path / "app.ini"
    ini.write_text(f"[uwsgi]\nhttp = 127.0.0.1:{port}\nwsgi-file = {HERE}/pyfile_app.py\n"
                   "processes = 1\nthreads = 4\n")
    p = procs.start([binary("aiserve"), str(ini)], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, cwd=str(tmp_path))
    wait_port(port, timeout=60, proc=p)
    return f"http://127.0.0.1:{port}"
