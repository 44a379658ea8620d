"""Memory limits that hold: reload-on-rss and evil-reload-on-rss are checked
after every request (as uWSGI does), limit-as caps the address space. The app
(apps/memapp.py) keeps 16 MiB more on each /grow."""
import os
import signal

from srvutil import get, start, wait_for, worker_pids

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")
STEP = 16  # MiB per /grow


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    except OSError:
        return 0.0


def grow_under(procs, limit_opt, limit, n=30):
    p, port = start(procs, f"--pythonpath={APPS}", "--module=memapp:application",
                    "--processes=1", "--threads=1", f"--{limit_opt}={limit}")
    base = max(rss_mb(w) for w in worker_pids(p.pid))
    peak, pids, statuses = 0.0, set(), []
    for _ in range(n):
        try:
            st, _, body = get(port, "/grow", timeout=20)
        except ConnectionError:  # a connection the killed worker had taken
            st = 0
        statuses.append(st)
        if st == 200:
            pids.add(int(body.split()[0]))
        for w in worker_pids(p.pid):
            peak = max(peak, rss_mb(w))
    return p, port, base, peak, pids, statuses


def ready(port):
    """/health/ready is 200; a probe the killed worker had accepted (the last
    /grow crossed the limit, the kill was on its way) is reset: not yet."""
    try:
        return get(port, "/health/ready")[0] == 200
    except ConnectionError:
        return False


def test_reload_on_rss_recycles_after_the_request_that_crossed_it(procs):
    limit = 120
    p, port, base, peak, pids, statuses = grow_under(procs, "reload-on-rss", limit)
    assert statuses == [200] * len(statuses), statuses
    # n x 16 MiB would reach ~500 MiB; each recycle starts again from the base
    assert len(pids) >= 3, pids
    # one request's growth past the limit, plus what Python touches besides
    assert peak <= limit + 2 * STEP + 8, f"peak {peak:.0f} MiB over {limit} (base {base:.0f})"
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
    log = p.stderr.read().decode()
    assert "over reload-on-rss" in log and "respawn-loop guard" not in log


def test_evil_reload_on_rss_kills_the_worker_and_a_successor_serves(procs):
    limit = 120
    p, port, base, peak, pids, statuses = grow_under(procs, "evil-reload-on-rss", limit)
    # the request that crossed the limit is answered before the kill; a
    # connection the worker had accepted but not served dies with it (the
    # "evil" in the name: uWSGI's kill loses it too)
    assert len(pids) >= 3, pids
    assert statuses.count(200) >= len(statuses) - (len(pids) - 1), statuses
    # one request's growth past the limit, plus what Python touches besides
    assert peak <= limit + 2 * STEP + 8, f"peak {peak:.0f} MiB over {limit} (base {base:.0f})"
    assert wait_for(lambda: ready(port), timeout=20)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
    log = p.stderr.read().decode()
    assert "evil-reload-on-rss" in log and "respawn-loop guard" not in log


def test_limit_as_makes_a_huge_allocation_fail_and_the_worker_keeps_serving(procs):
    p, port = start(procs, f"--pythonpath={APPS}", "--module=memapp:application",
                    "--processes=1", "--threads=1", "--limit-as=2048")
    before = worker_pids(p.pid)
    st, _, body = get(port, "/big?4096", timeout=20)
    assert (st, body) == (507, b"MemoryError\n")
    assert get(port, "/big?64", timeout=20)[0] == 200
    assert get(port, "/grow", timeout=20)[0] == 200
    assert worker_pids(p.pid) == before
