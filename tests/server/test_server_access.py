"""Black-box tests of aiserve's access control on a real server: bearer tokens
(`auth-token-file`: missing, wrong and right tokens, health open, metrics only
on the admin listener, `auth-apps`, the file read again on SIGHUP, a bad file
refused), `rate-limit` (429 with Retry-After), `max-connections-per-ip`, and
request ids (taken, replaced, made; logged, returned, given to the app)."""
import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest

from harness import binary, free_port
from srvutil import get, recv_response, request, start, wait_for

HERE = os.path.dirname(__file__)
APPS = os.path.join(HERE, "apps")
sys.path.insert(0, os.path.join(HERE, "..", "model"))

INFER = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                "data": [1, 2, 3, 4]}]})


def tiny_model(tmp_path):
    import mdl_kit
    path, _, _ = mdl_kit.make_tiny(str(tmp_path / "tiny.onnx"))
    return path


def infer(port, token=None, path="/v2/models/tiny/infer"):
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    raw = (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{auth}"
           f"Content-Length: {len(INFER)}\r\n\r\n{INFER}").encode()
    return request(port, raw, timeout=15)


def write_tokens(path, *tokens):
    path.write_text("# tokens for the tests\n\n" + "".join(f"  {t}  \n" for t in tokens))


def test_tokens_guard_model_endpoints(procs, tmp_path):
    tokens = tmp_path / "tokens"
    write_tokens(tokens, "alpha-token-1", "beta.token/2==")
    admin = free_port()
    p, port = start(procs, f"--model=tiny={tiny_model(tmp_path)}", f"--auth-token-file={tokens}",
                    f"--admin=127.0.0.1:{admin}", f"--pythonpath={APPS}",
                    "--mount=/app=envapp:app", "--builtins=health,metrics,hello")
    st, h, body = infer(port)
    assert st == 401 and h["www-authenticate"].startswith("Bearer")
    assert infer(port, "wrong-token")[0] == 401
    assert infer(port, "alpha-token-")[0] == 401  # a prefix is not the token
    assert infer(port, "alpha-token-1x")[0] == 401
    st, _, body = infer(port, "alpha-token-1")
    assert st == 200, body
    assert infer(port, "beta.token/2==")[0] == 200
    # scheme case-insensitive; Basic is not Bearer
    raw = (f"GET /v2/models/tiny HTTP/1.1\r\nHost: t\r\n"
           f"Authorization: bEaReR alpha-token-1\r\n\r\n").encode()
    assert request(port, raw)[0] == 200
    assert get(port, "/v2/models/tiny", headers="Authorization: Basic YTpi\r\n")[0] == 401
    assert get(port, "/predict/tiny")[0] == 401
    # health is open; metrics only on the admin listener
    assert get(port, "/health/live")[0] == 200
    assert get(port, "/v2/health/ready")[0] == 200
    assert get(port, "/metrics")[0] == 404
    assert get(admin, "/metrics")[0] == 200
    # the apps are open without auth-apps
    assert get(port, "/app")[0] == 200


def test_auth_apps_and_reload(procs, tmp_path):
    tokens = tmp_path / "tokens"
    write_tokens(tokens, "first-token")
    p, port = start(procs, f"--auth-token-file={tokens}", "--auth-apps", f"--pythonpath={APPS}",
                    "--module=envapp:app", "--builtins=health")
    assert get(port, "/x")[0] == 401
    assert get(port, "/x", headers="Authorization: Bearer first-token\r\n")[0] == 200
    write_tokens(tokens, "second-token")
    p.send_signal(signal.SIGHUP)
    assert wait_for(lambda: get(port, "/x", headers="Authorization: Bearer second-token\r\n")[0]
                    == 200, timeout=30)
    assert wait_for(lambda: get(port, "/x", headers="Authorization: Bearer first-token\r\n")[0]
                    == 401, timeout=30)
    # a reload with a broken token file is refused; the server serves on
    tokens.write_text("two words\n")
    p.send_signal(signal.SIGHUP)
    assert wait_for(lambda: p.poll() is None, timeout=2)
    assert get(port, "/x", headers="Authorization: Bearer second-token\r\n")[0] == 200


def test_bad_access_options_refused(tmp_path):
    bad = tmp_path / "tokens"
    bad.write_text("ok-token\nbad token\n")
    for args, want in (([f"--auth-token-file={bad}"], ":2: a token is one word"),
                       ([f"--auth-token-file={tmp_path}/none"], "No such file"),
                       (["--rate-limit=fast"], "option 'rate-limit'"),
                       (["--auth-apps"], "needs auth-token-file")):
        r = subprocess.run([binary("aiserve"), "--http=127.0.0.1:1", *args],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode != 0 and want in r.stderr, r.stderr


def test_rate_limit(procs, tmp_path):
    p, port = start(procs, "--rate-limit=2/s,burst=4", "--builtins=hello,health")
    statuses, after = [], []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for _ in range(12):
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            st, h, _ = recv_response(s, 10)
            statuses.append(st)
            if st == 429:
                after.append(int(h["retry-after"]))
    # the burst passes, then most are refused (2/s refill over a short loop)
    assert statuses[:4] == [200] * 4
    assert statuses.count(429) >= 5, statuses
    assert all(1 <= a <= 2 for a in after)
    # health checks are never limited
    assert all(get(port, "/health/live")[0] == 200 for _ in range(10))
    # the bucket refills
    assert wait_for(lambda: get(port, "/hello")[0] == 200, timeout=5)


def test_max_connections_per_ip(procs, tmp_path):
    p, port = start(procs, "--max-connections-per-ip=3", "--processes=2",
                    "--builtins=hello,health")
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
    for s in held:  # all three are served
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        assert recv_response(s, 10)[0] == 200
    st, h, body = get(port, "/hello")
    assert st == 429 and h["retry-after"] == "1" and b"too many connections" in body
    held.pop().close()
    assert wait_for(lambda: get(port, "/hello")[0] == 200, timeout=5)
    for s in held:
        s.close()


def test_request_ids(procs, tmp_path):
    log = tmp_path / "access.log"
    p, port = start(procs, "--request-id", f"--logto={log}", f"--pythonpath={APPS}",
                    "--mount=/app=envapp:app", "--builtins=hello,health")
    st, h, _ = get(port, "/hello", headers="X-Request-Id: abc-123.XYZ\r\n")
    assert st == 200 and h["x-request-id"] == "abc-123.XYZ"
    st, h, body = get(port, "/app", headers="X-Request-Id: given:42\r\n")
    assert json.loads(body)["HTTP_X_REQUEST_ID"] == "given:42"
    made = get(port, "/hello")[1]["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert get(port, "/hello")[1]["x-request-id"] != made
    # unfit ids (too long, bad characters) are replaced, also for the app
    for bad in ("x" * 65, "a b", "<script>", "a;b"):
        h = get(port, "/hello", headers=f"X-Request-Id: {bad}\r\n")[1]
        assert re.fullmatch(r"[0-9a-f]{32}", h["x-request-id"]), bad
    st, h, body = get(port, "/app", headers="X-Request-Id: a;b\r\n")
    assert json.loads(body)["HTTP_X_REQUEST_ID"] == h["x-request-id"]
    assert wait_for(lambda: log.exists() and "rid=abc-123.XYZ" in log.read_text()
                    and f"rid={made}" in log.read_text())
    # every well-formed request has one, a 404 too
    st, h, _ = get(port, "/nowhere", headers="X-Request-Id: lost-1\r\n")
    assert st == 404 and h["x-request-id"] == "lost-1"
