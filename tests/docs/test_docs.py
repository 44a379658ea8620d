"""The documentation's examples run: every command in the fenced ```sh / ```console
blocks of README.md and docs/*.md (and every ```ini block that is an aiserve
configuration) is either executed here or listed in SKIPS with the reason.

How a block runs (one test per block, named FILE:LINE):
- in a scratch directory whose build/, models/, examples/, tests/, tools/,
  bench/ and scripts/ link to the repository, with build/ first on PATH (so
  `aiserve` and `build/aiserve` both work) and outputs (logits.npy, out.json)
  landing in the scratch directory;
- an `aiserve` command starts a server: its documented port (`--http=:8000`,
  `http = 0.0.0.0:5000` in an ini, which is copied with the port replaced) is
  replaced by a free one; the test waits for /health/ready, and stops it with
  SIGTERM at the end of the block, which must exit 0 (docs: SIGTERM drains and
  exits 0). A later `aiserve` in the same block replaces the earlier one;
- `curl` and `aiload` commands go to the block's server (the documented
  host:port replaced by the server's): curl must exit 0 with a status < 400,
  aiload must exit 0 (it exits non-zero when requests fail or --fail-if
  thresholds miss; a missed latency threshold alone is accepted: on a shared
  machine it measures the machine, not the example); a block with such commands and no server of its own gets
  the server its file documents (FILE_SERVERS);
- anything else that is classified in RUN runs and must exit 0.
Durations are shortened (DURATIONS) so the whole file runs in about a minute.
A command that matches no rule fails the test, naming FILE:LINE: add a rule or
a skip reason here when you document a new kind of command."""
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("AISERVE_BUILD", "build"))
DOCS = ["README.md"] + sorted("docs/" + f for f in os.listdir(os.path.join(ROOT, "docs"))
                              if f.endswith(".md"))
LINKED = ["build", "models", "examples", "tests", "tools", "bench", "scripts"]

# Commands not run, each with why. Matched against the command text (comment stripped).
SKIPS = [
    (r"^make demo\b", "installs Debian packages as root, then serves and load-tests two "
                      "services for ~40 s: too long and too invasive for a test"),
    (r"^make test\b", "the whole suite, which runs this test"),
    (r"^make bench\b|^bench/|^/usr/bin/python3 bench/", "benchmarks run alone by the lead, "
                                                       "never inside the test suite"),
    (r"^aiload https://(?!127\.0\.0\.1)", "needs the network and a real HTTPS host"),
    (r"^(docker|podman) (run|build)\b", "container images: scripts/container-test.sh (run by "
                                        ".ci/run after make test) builds and runs them"),
    (r"^make (install|uninstall|deb)\b", "writes to the system's prefix; tests/deploy/"
                                         "test_install.py runs them into a staging DESTDIR"),
    (r"^aiload advise\b", "measures a server on several configurations for minutes; "
                          "tests/advise/ runs it on a CPU-bound, an I/O-bound and a model app"),
    (r"^(aiload|locust) .*--(master|worker|processes)\b", "distributed runs need several "
     "hosts (the docs name their addresses); tests/loadgen/test_dist_*.py run them on loopback "
     "and in network namespaces"),
    (r"^kubectl\b", "needs a Kubernetes cluster; tests/deploy/test_k8s.py checks the manifests "
                    "and runs the command lines they hold"),
    (r"^aiload https://127\.0\.0\.1", "needs an HTTPS server and its CA file (my-ca.pem); "
                                      "tests/loadgen/test_https.py covers --cacert and -k"),
    (r"^aiserve --https=|^curl --cacert cert\.pem", "needs a certificate, key and token file; "
     "tests/server/test_server_https.py and test_server_access.py make throw-away ones"),
]

# Command kinds that run (first word after an optional build/ prefix).
SERVER, CLIENT, RUN = "server", "client", "run"


def _kind(argv):
    prog = os.path.basename(argv[0])
    if prog == "aiserve":
        return RUN if any(a in ("--help", "-h", "--version") for a in argv[1:]) else SERVER
    if prog in ("curl", "aiload"):
        return CLIENT
    if prog == "aiinfer":
        return RUN
    return None


# The servers a file's curl/aiload examples assume when their block starts none,
# by the port the examples use (None: any port). Each value is a command, run
# like a documented one (its port replaced). A file not listed here gets the
# configuration it shows in its first ```ini block with [uwsgi] (serving.md).
FILE_SERVERS = {
    "docs/aiload.md": {
        # the article's Flask app on :5000, what the locustfile example targets
        5000: "aiserve examples/article/uwsgi.ini",
        # the quick-mode examples' :8080: a model "m" for the PNG example and a
        # fast GET / (the article's native Hello World), so a 1-s run ends cleanly
        8080: "aiserve --http=:8080 --model=m=models/digits.onnx --model-route=/=m",
    },
    "docs/scenario.md": {5000: "aiserve examples/article/uwsgi.ini"},
}


# Files the examples name that a reader would have made themselves.
def _make_fixture_files(d):
    import numpy as np
    from PIL import Image
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)).save(
        os.path.join(d, "cat.png"))
    with open(os.path.join(d, "app.ini"), "w") as f:  # docs/config.md: "aiserve app.ini"
        f.write("[uwsgi]\nhttp = 0.0.0.0:8000\nprocesses = 1\nmodule = demo:app\n"
                "pythonpath = %s/examples/article\n" % ROOT)


# Shortened durations: (pattern, replacement) on the command text.
DURATIONS = [
    (r"(\s-d\s+)\d+s\b", r"\g<1>1s"),         # aiload -d 30s
    (r"(\s-t\s+)\d+[smh]\b", r"\g<1>2s"),     # aiload -t 60s (Locust's run time)
    (r"(--seconds\s+)[\d.]+", r"\g<1>0.3"),   # aiinfer bench --seconds 5
]
PORT_RE = re.compile(r"(^|[=\s/])(?:localhost|127\.0\.0\.1|0\.0\.0\.0)?:(\d{4,5})\b")


class Block:
    def __init__(self, path, line, lang, commands, text):
        self.path, self.line, self.lang, self.commands, self.text = path, line, lang, commands, text

    def __repr__(self):
        return "%s:%d" % (self.path, self.line)


def _commands(path, first_line, lines, lang):
    """(line number, command text) of a sh/console block: continuation lines and
    quotes spanning lines are joined; console blocks take only `$ ` lines."""
    out, cur, start, joint = [], "", 0, "\n"
    for i, raw in enumerate(lines):
        ln = first_line + 1 + i
        if not cur:
            if lang == "console":
                if not raw.startswith("$ "):
                    continue
                raw = raw[2:]
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            start = ln
            cur = raw
        else:
            cur += joint + raw
        if cur.endswith("\\"):  # backslash-newline: the shell deletes both
            cur, joint = cur[:-1], ""
            continue
        joint = "\n"  # a newline inside quotes stays
        try:
            shlex.split(cur, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        out.append((start, cur))
        cur = ""
    if cur:
        out.append((start, cur))
    return out


def extract():
    blocks = []
    for path in DOCS:
        full = os.path.join(ROOT, path)
        if not os.path.exists(full):
            continue
        lines = open(full, encoding="utf-8").read().split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", lines[i])
            if not m:
                i += 1
                continue
            fence, lang, start = m.group(1), m.group(2).lower(), i + 1
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith(fence):
                j += 1
            body = lines[i + 1:j]
            if lang in ("sh", "bash", "shell", "console"):
                blocks.append(Block(path, start, lang, _commands(path, start, body, lang),
                                    "\n".join(body)))
            elif lang == "ini" and any(b.strip() == "[uwsgi]" for b in body):
                blocks.append(Block(path, start, "ini", [], "\n".join(body)))
            i = j + 1
    return blocks


BLOCKS = extract()


def _strip_comment(cmd):
    """The command without a trailing # comment (outside quotes)."""
    lex = shlex.shlex(cmd, posix=True, punctuation_chars=False)
    lex.whitespace_split = True
    lex.commenters = "#"
    toks = list(lex)
    # rebuild from the original text up to the comment, keeping the author's quoting
    q = None
    for k, ch in enumerate(cmd):
        if q:
            if ch == q:
                q = None
        elif ch in "'\"":
            q = ch
        elif ch == "#" and (k == 0 or cmd[k - 1].isspace()):
            return cmd[:k].rstrip(), toks
    return cmd.rstrip(), toks


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port, path, timeout=5):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class Server:
    def __init__(self, proc, port, line, what, log):
        self.proc, self.port, self.line, self.what, self.log = proc, port, line, what, log


def _doc_port(text):
    """The port a command or an ini names (the first one), or None."""
    m = PORT_RE.search(text)
    return int(m.group(2)) if m else None


class Runner:
    """Runs one block: servers by the port the docs give them, clients against them."""

    def __init__(self, block, tmp):
        self.block, self.tmp = block, tmp
        self.servers = {}  # documented port -> Server
        self.admins = {}  # documented admin port -> Server on its admin listener
        self.latest = None
        self.env = dict(os.environ, PATH=BUILD + os.pathsep + os.environ.get("PATH", ""))

    def where(self, line):
        return "%s:%d" % (self.block.path, line)

    def _ini_copy(self, path, port, admin_port, extra_lines=()):
        """A copy of an ini with its http and admin ports replaced; its directory stays on
        sys.path. Returns (copy, documented http port, documented admin port)."""
        src = path if os.path.isabs(path) else os.path.join(self.tmp, path)
        text = open(src, encoding="utf-8").read()
        out, seen, doc_port, doc_admin = [], False, None, None
        for ln in text.split("\n"):
            m = re.match(r"^\s*admin\s*=(.*)", ln)
            if m:
                doc_admin = doc_admin or _doc_port(" " + m.group(1).strip())
                out.append("admin = 127.0.0.1:%d" % admin_port)
                continue
            m = re.match(r"^\s*(http|http-socket)\s*=(.*)", ln)
            if m:
                if seen:
                    continue
                seen, doc_port = True, _doc_port(" " + m.group(2).strip())
                ln = "%s = 127.0.0.1:%d" % (m.group(1), port)
            out.append(ln)
        out += ["pythonpath = %s" % os.path.dirname(os.path.realpath(src))] + list(extra_lines)
        dst = os.path.join(self.tmp, "doc-%d-%s" % (port, os.path.basename(src)))
        with open(dst, "w") as f:
            f.write("\n".join(out) + "\n")
        return dst, doc_port, doc_admin

    def start_server(self, line, cmd, argv, extra_ini=()):
        """Readiness is polled on an admin listener (the documented one, on a free port, or
        one of our own): an app mounted at / owns /health/ready of the http port."""
        port, admin_port, doc_port, doc_admin, args = _free_port(), _free_port(), None, None, []
        for k, a in enumerate(argv[1:]):
            if a.endswith(".ini") and not a.startswith("-"):
                a, p, ap = self._ini_copy(a, port, admin_port, extra_ini)
                doc_port, doc_admin = doc_port or p, doc_admin or ap
            elif re.match(r"--http(-socket)?=", a):
                doc_port = _doc_port(" " + a.split("=", 1)[1]) or doc_port
                a = a.split("=", 1)[0] + "=127.0.0.1:%d" % port
            elif a.startswith("--admin="):
                doc_admin = _doc_port(" " + a.split("=", 1)[1]) or doc_admin
                a = "--admin=127.0.0.1:%d" % admin_port
            args.append(a)
        if not any(a.startswith("--http") or a.endswith(".ini") for a in args):
            args.append("--http=127.0.0.1:%d" % port)
        if not any(a.startswith("--admin=") for a in args):
            args.append("--admin=127.0.0.1:%d" % admin_port)
        self.stop_server(doc_port)
        log = open(os.path.join(self.tmp, "server-%d.log" % port), "w+")
        proc = subprocess.Popen([os.path.join(BUILD, "aiserve")] + args, cwd=self.tmp,
                                env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        srv = Server(proc, port, line, cmd.strip(), log)
        self.servers[doc_port] = self.latest = srv
        if doc_admin:
            self.admins[doc_admin] = Server(proc, admin_port, line, cmd.strip(), log)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("%s: `%s` exited with %s before serving:\n%s" % (
                    self.where(line), srv.what, proc.returncode, self._log_tail(srv)))
            if _get(admin_port, "/health/ready") == 200:
                return srv
            time.sleep(0.1)
        pytest.fail("%s: `%s` not ready after 90 s:\n%s" % (self.where(line), srv.what,
                                                              self._log_tail(srv)))

    def start_ini(self, text):
        src = os.path.join(self.tmp, "block.ini")
        with open(src, "w") as f:
            f.write(text + "\n")
        # the docs' module = demo:app is the article's, in examples/article/
        extra = ["pythonpath = %s/examples/article" % ROOT]
        return self.start_server(self.block.line, "the [uwsgi] block", ["aiserve", src], extra)

    @staticmethod
    def _log_tail(srv):
        srv.log.flush()
        srv.log.seek(0)
        return "".join(srv.log.readlines()[-15:])

    def stop_server(self, doc_port):
        srv = self.servers.pop(doc_port, None)
        if not srv:
            return
        self.admins = {k: a for k, a in self.admins.items() if a.proc is not srv.proc}
        p = srv.proc
        try:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=40)
        except subprocess.TimeoutExpired:
            rc = "none (still running 40 s after SIGTERM)"
        finally:
            self._kill(srv)
        assert rc == 0, "%s: `%s` exited %s on SIGTERM:\n%s" % (self.where(srv.line), srv.what,
                                                                 rc, self._log_tail(srv))

    @staticmethod
    def _kill(srv):
        try:
            os.killpg(srv.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        srv.proc.wait()
        srv.log.close()

    def stop_all(self):
        for dp in list(self.servers):
            self.stop_server(dp)

    def kill_all(self):
        for srv in self.servers.values():
            self._kill(srv)
        self.servers.clear()

    def server_for(self, line, cmd):
        """The server a client command targets: the one started for its documented port,
        else the file's server for that port (FILE_SERVERS, or its [uwsgi] ini block),
        else the block's latest server."""
        dp = _doc_port(cmd)
        if dp in self.servers:
            return self.servers[dp]
        if dp in self.admins:
            return self.admins[dp]
        fs = FILE_SERVERS.get(self.block.path, {})
        if dp in fs:
            return self.start_server(self.block.line, fs[dp], shlex.split(fs[dp]))
        if self.latest is None and None not in fs:
            for b in BLOCKS:
                if b.path == self.block.path and b.lang == "ini":
                    return self.start_ini(b.text)
        if self.latest is None and None in fs:
            return self.start_server(self.block.line, fs[None], shlex.split(fs[None]))
        if self.latest is None:
            pytest.fail("%s: `%s` needs a server: start one in the block, or give the file's "
                        "server for port %s in FILE_SERVERS of tests/docs/test_docs.py"
                        % (self.where(line), cmd, dp))
        return self.latest

    def run(self, line, cmd, kind):
        for pat, rep in DURATIONS:
            cmd = re.sub(pat, rep, cmd)
        is_curl = kind == CLIENT and shlex.split(cmd)[0] == "curl"
        if kind == CLIENT:
            port = self.server_for(line, cmd).port
            cmd = PORT_RE.sub(lambda m: "%s127.0.0.1:%d" % (m.group(1), port), cmd)
        if is_curl:  # the status goes to stderr, so a pipeline after curl still works
            cmd = re.sub(r"^\s*curl\b", lambda m: "curl --max-time 60 -sS -w "
                         "'%{stderr}DOCTEST_STATUS=%{http_code}\\n'", cmd, count=1)
        r = subprocess.run(["bash", "-c", cmd], cwd=self.tmp, env=self.env, capture_output=True,
                           text=True, timeout=180)
        rc = r.returncode
        if rc == 3 and shlex.split(cmd)[0] == "aiload":
            # A broken latency threshold (--fail-if 'p99<500ms') says this shared box was
            # slow, not that the example is wrong; a broken error-rate threshold does.
            broken = re.findall(r"^threshold (\S+)\s+FAILED", r.stdout + r.stderr, re.M)
            if broken and not any(re.match(r"(error|fail)", b) for b in broken):
                rc = 0
        assert rc == 0, "%s: `%s` exited %d\nstdout: %s\nstderr: %s" % (
            self.where(line), cmd, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
        if is_curl:
            status = re.findall(r"DOCTEST_STATUS=(\d+)", r.stderr)
            assert status and int(status[-1]) < 400, "%s: `%s` answered %s: %s" % (
                self.where(line), cmd, status[-1] if status else "nothing", r.stdout[:500])


def classify(cmd):
    """(kind, argv) or (None, reason) for a skipped command."""
    text, toks = _strip_comment(cmd)
    norm = re.sub(r"^build/", "", text)
    for pat, why in SKIPS:
        if re.search(pat, norm):
            return None, why
    if not toks:
        return None, "empty"
    kind = _kind(toks)
    return kind, toks


@pytest.fixture
def scratch(tmp_path):
    for d in LINKED:
        os.symlink(os.path.join(ROOT, d), tmp_path / d)
    _make_fixture_files(str(tmp_path))
    return str(tmp_path)


@pytest.mark.parametrize("block", BLOCKS, ids=[repr(b) for b in BLOCKS])
def test_documented_commands_run(block, scratch):
    r = Runner(block, scratch)
    try:
        if block.lang == "ini":
            r.start_ini(block.text)
        skipped = []
        for line, cmd in block.commands:
            kind, what = classify(cmd)
            if kind is None and isinstance(what, str):
                skipped.append("%s:%d `%s`: %s" % (block.path, line, cmd.split("#")[0].strip(),
                                                   what))
                continue
            assert kind, ("%s:%d: `%s` is neither run nor skipped by tests/docs/test_docs.py: "
                          "add a rule (or a SKIPS entry with the reason)"
                          % (block.path, line, cmd.strip()))
            text = _strip_comment(cmd)[0]
            if kind == SERVER:
                r.start_server(line, text, what)
            else:
                r.run(line, text, kind)
        r.stop_all()
        if skipped and len(skipped) == len(block.commands):
            pytest.skip("; ".join(skipped))
    finally:
        r.kill_all()


def test_every_skip_rule_still_matches_a_documented_command():
    """A SKIPS entry that matches nothing any more hides nothing: drop it."""
    cmds = [_strip_comment(c)[0] for b in BLOCKS for _, c in b.commands]
    for pat, why in SKIPS:
        assert any(re.search(pat, re.sub(r"^build/", "", c)) for c in cmds), (
            "SKIPS rule %r (%s) matches no command in the docs any more" % (pat, why))
