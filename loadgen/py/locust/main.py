"""aiload's Python mode: import the locustfile(s), parse the command line
(aiload's options through its C parser, the file's custom ones through
argparse), run the test (headless, or under the web UI: loadgen/py/pyweb.c), print
Locust's tables, write the CSVs and the reports."""
import argparse
import csv
import importlib.util
import inspect
import io
import json
import logging
import os
import signal
import socket
import sys
import time
import traceback

import gevent

import _aiload
import locust

from .env import Environment
from .runners import STATE_INIT, STATE_RUNNING, STATE_SPAWNING, STATE_STOPPED, LocalRunner, MasterRunner
from .shape import LoadTestShape
from .user.users import User

HELP_URL = "docs/aiload.md, section 'Python locustfiles'"


class StartupError(Exception):
    pass


def _locustfile_paths(spec):
    paths = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if os.path.isdir(part):
            for f in sorted(os.listdir(part)):
                if f.endswith(".py") and not f.startswith("_"):
                    paths.append(os.path.join(part, f))
        else:
            if not os.path.exists(part):
                raise StartupError(f"{part}: no such locustfile")
            paths.append(part)
    if not paths:
        raise StartupError(f"{spec}: no .py locustfile found")
    return paths


def _where_in(path, tb):
    """The line of path in traceback tb (the innermost one), or None."""
    line = None
    ap = os.path.abspath(path)
    for frame, lineno in traceback.walk_tb(tb):
        if os.path.abspath(frame.f_code.co_filename) == ap:
            line = lineno
    return line


def _explain(path, e):
    """One message for a locustfile that cannot be imported: file:line, what
    is missing, what to do."""
    if isinstance(e, SyntaxError) and e.filename and os.path.abspath(e.filename) == os.path.abspath(path):
        return f"{path}:{e.lineno}: SyntaxError: {e.msg}"
    line = _where_in(path, e.__traceback__)
    loc = f"{path}:{line}" if line else path
    name = getattr(e, "name", None)
    if isinstance(e, ImportError) and not isinstance(e, ModuleNotFoundError):
        mod = getattr(e, "name", "") or ""
        msg = str(e)
        if mod == "locust" or mod.startswith("locust.") or "locust" in msg:
            missing = msg.split("'")[1] if "'" in msg else msg
            return (f"{loc}: '{missing}' is not provided by aiload's locust package ({msg}). "
                    f"aiload implements the Locust API that locustfiles use most; see {HELP_URL} "
                    "for the list, and replace or remove this use")
        return f"{loc}: ImportError: {msg}"
    if isinstance(e, ModuleNotFoundError):
        if name and (name == "locust" or name.startswith("locust.")):
            return (f"{loc}: module '{name}' is not provided by aiload's locust package; see "
                    f"{HELP_URL} for what is, and replace or remove this import")
        return (f"{loc}: No module named '{name}': the locustfile needs a Python package that is "
                "not installed (aiload runs Debian's python3: install it with apt-get, e.g. "
                f"python3-{(name or '').split('.')[0]})")
    if isinstance(e, AttributeError) and "locust" in str(e):
        return (f"{loc}: {e}: aiload does not provide this name; see {HELP_URL} and replace "
                "or remove this use")
    return f"{loc}: {type(e).__name__}: {e}"


def load_locustfile(path):
    """Imports path as a module; returns (module, user classes, shape classes)."""
    directory, fname = os.path.split(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    modname = os.path.splitext(fname)[0]
    if modname == "locust":
        raise StartupError(f"{path}: a locustfile must not be named locust.py (it would hide the "
                           "locust package)")
    spec = importlib.util.spec_from_file_location(modname, os.path.abspath(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: B036 (any failure at import is the file's)
        if not isinstance(e, (SyntaxError, ImportError)):  # where the file's code raised
            tb = e.__traceback__
            while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != os.path.abspath(path):
                tb = tb.tb_next
            sys.stderr.write("".join(traceback.format_exception(type(e), e, tb or e.__traceback__)))
        raise StartupError(_explain(path, e)) from None
    users, shapes = {}, []
    for name, item in vars(module).items():
        if inspect.isclass(item) and issubclass(item, User) and item.abstract is False:
            users[name] = item
        elif inspect.isclass(item) and issubclass(item, LoadTestShape) and item is not LoadTestShape \
                and not item.__dict__.get("abstract", False):
            shapes.append(item)
    return module, users, shapes


def _setup_logging(level):
    host = socket.gethostname()
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format=f"[%(asctime)s] {host}/%(levelname)s/%(name)s: %(message)s",
                        stream=sys.stderr)


def _split_argv(argv):
    """(-f value or None, -L/--loglevel value, the argv without them)."""
    spec, level, rest, i = None, "INFO", [], 0
    while i < len(argv):
        a = argv[i]
        if a in ("-L", "--loglevel") and i + 1 < len(argv):
            level = argv[i + 1]
            i += 2
            continue
        if a.startswith("--loglevel="):
            level = a.split("=", 1)[1]
        elif a in ("-f", "--locustfile") and i + 1 < len(argv):
            spec = argv[i + 1]
            rest += [a, argv[i + 1]]
            i += 2
            continue
        elif a.startswith("--locustfile="):
            spec = a.split("=", 1)[1]
            rest.append(a)
        elif a.startswith("-f") and len(a) > 2:
            spec = a[3:] if a[2] == "=" else a[2:]
            rest.append(a)
        elif a in ("--skip-log-setup",):
            pass
        else:
            rest.append(a)
        i += 1
    return spec or os.environ.get("LOCUST_LOCUSTFILE"), level, rest


def _custom_help(parser):
    actions = [a for a in parser._actions if a.option_strings]
    if not actions:
        return ""
    f = argparse.HelpFormatter("aiload")
    f.start_section("Custom arguments (from the locustfile's init_command_line_parser)")
    f.add_arguments(actions)
    f.end_section()
    return "\n" + f.format_help()


def _pull_processes(rest):
    """--processes N (Locust's; -1: one per core), taken out of the options."""
    out, n, i = [], 1, 0
    while i < len(rest):
        a = rest[i]
        if a == "--processes" and i + 1 < len(rest):
            n = rest[i + 1]
            i += 2
            continue
        if a.startswith("--processes="):
            n = a.split("=", 1)[1]
        else:
            out.append(a)
        i += 1
    try:
        n = int(n)
    except ValueError:
        raise StartupError(f"--processes must be an integer, not '{n}'") from None
    if n == -1:
        n = os.cpu_count() or 1
    if not 1 <= n <= 64:
        raise StartupError(f"--processes must be 1..64 or -1 (one per core), not {n}")
    return n, out


def _namespace(d, custom_ns, classes):
    ns = argparse.Namespace(**vars(custom_ns))
    opts = dict(d)
    opts["num_users"] = d["num_users"] or None
    opts["spawn_rate"] = d["spawn_rate"] or None
    opts["run_time"] = int(d["run_time"]) if d["run_time"] else None
    opts["tags"] = [t for a in d["tags"] for t in a.replace(",", " ").split()] or None
    opts["exclude_tags"] = [t for a in d["exclude_tags"] for t in a.replace(",", " ").split()] or None
    opts["user_classes"] = classes
    opts["master"] = bool(d.get("master"))
    opts["worker"] = bool(d.get("worker"))
    opts["processes"] = 1
    opts["web_ui"] = not d["headless"]
    for k, v in opts.items():
        setattr(ns, k, v)
    return ns


def _exceptions_csv(runner):
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Count", "Message", "Traceback", "Nodes"])
    for exc in runner.exceptions.values():
        w.writerow([exc["count"], exc["msg"], exc["traceback"], ", ".join(sorted(exc["nodes"]))])
    return out.getvalue()


class CsvOut:
    def __init__(self, prefix, full):
        self.prefix, self.full = prefix, full
        self.history = None

    def write(self, runner):
        files = {"_stats.csv": _aiload.report("csv_stats"), "_failures.csv": _aiload.report("csv_failures"),
                 "_exceptions.csv": _exceptions_csv(runner)}
        for suffix, text in files.items():
            path = self.prefix + suffix
            tmp = path + ".tmp"
            with open(tmp, "w", newline="") as f:
                f.write(text)
            os.replace(tmp, path)
        if self.history is None:
            self.history = open(self.prefix + "_stats_history.csv", "w", newline="")
            self.history.write(_aiload.report("history_header"))
        self.history.flush()

    def history_row(self):
        if self.history is not None:
            self.history.write(_aiload.report("history", 1 if self.full else 0))
            self.history.flush()


def _name_width():
    cols = 0
    if sys.stdout.isatty():
        try:
            cols = os.get_terminal_size(sys.stdout.fileno()).columns
        except OSError:
            cols = 0
    return _aiload.name_width(cols)


def run(argv):
    spec, level, rest = _split_argv(argv)
    _setup_logging(level)
    if not spec:
        raise StartupError("no locustfile: give -f FILE.py")
    paths = _locustfile_paths(spec)
    user_classes, shapes = {}, []
    for p in paths:
        _, users, sh = load_locustfile(p)
        user_classes.update(users)
        shapes += [s for s in sh if s not in shapes]
    if len(shapes) > 1:
        raise StartupError("more than one LoadTestShape class: " + ", ".join(s.__name__ for s in shapes))

    # the locustfile's own options
    from .argument_parser import LocustArgumentParser

    parser = LocustArgumentParser(prog="aiload")
    locust.events.init_command_line_parser.fire(parser=parser)
    custom_ns, rest = parser.parse_known_args(rest)
    given = {a.dest for a in parser._actions for o in a.option_strings
             if any(r == o or r.startswith(o + "=") for r in argv)}
    parser.apply_env(custom_ns, given)
    nproc, rest = _pull_processes(rest)
    # positional user class names (Locust: `locust -f file.py UserA UserB`)
    picked = [a for a in rest if a in user_classes]
    rest = [a for a in rest if a not in user_classes]
    try:
        d = _aiload.cli_parse(rest)
    except ValueError as e:
        raise StartupError(str(e)) from None
    if d["help"]:
        sys.stdout.write(_aiload.cli_usage() + _custom_help(parser))
        return 0
    if d["version"]:
        print(f"aiload {_aiload.VERSION} (locust API 2.12, Python {sys.version.split()[0]})")
        return 0
    if d["quick"]:
        raise StartupError("a URL and a locustfile together: give one (the host goes in -H)")
    _aiload.set_source(spec)
    local_port = _aiload.procs_master_port() if nproc > 1 else 0
    if local_port:  # a worker that --processes under the web UI started (below)
        d.update(worker=True, master=False, master_host="127.0.0.1", master_port=local_port)
        nproc = 1
    if d.get("master") and d.get("worker"):
        raise StartupError("--master and --worker: give one")
    if d.get("worker") and nproc > 1:
        raise StartupError("--worker and --processes: start one worker per process instead")
    if d.get("master") and nproc > 1:
        raise StartupError("--master and --processes: --processes runs a local master of its own; "
                           "give one of them")
    if d["rate"]:
        raise StartupError("--rate/--stage (the open model) drive ini scenarios; a Python "
                           "locustfile's users pace themselves with wait_time")

    classes = [user_classes[n] for n in picked] if picked else list(user_classes.values())
    if not classes and not shapes:
        raise StartupError(f"{spec}: no User class found (a class derived from HttpUser, "
                           "FastHttpUser or User, without abstract = True)")
    options = _namespace(d, custom_ns, picked or None)
    env = Environment(user_classes=classes, shape_class=shapes[0]() if shapes else None,
                      tags=options.tags, exclude_tags=options.exclude_tags, events=locust.events,
                      host=d["host"], reset_stats=bool(d["reset_stats"]), stop_timeout=d["stop_timeout"],
                      parsed_options=options, locustfile=spec,
                      available_user_classes=user_classes)
    env._run_time = d["run_time"] or 0
    if d["host"]:
        for c in classes:
            c.host = d["host"]
    if options.tags or options.exclude_tags:
        env._filter_tasks_by_tags()
        kept = [c for c in env.user_classes if c.tasks]
        if not kept:
            raise StartupError("no task is left after --tags/--exclude-tags")
        env.user_classes = kept
    if d["equal_weights"]:
        env.assign_equal_weights()
    # the web UI's form may give it; a master's workers may have their own -H
    for c in env.user_classes if d["headless"] and not d.get("master") else ():
        if c.host is None and _needs_host(c):
            raise StartupError(f"no host for {c.__name__}: give -H/--host or set host on the class")
    for c in env.user_classes if not d.get("master") else ():  # the workers resolve it
        if c.host and _needs_host(c):
            from urllib.parse import urlsplit

            from ._http import origin

            u = urlsplit(c.host)
            try:
                origin(u.scheme, u.netloc)
            except (OSError, ValueError) as e:
                raise StartupError(f"host of {c.__name__}: {e}") from None
    if d["insecure"] or d["cacert"]:
        _aiload.tls_setup(bool(d["insecure"]), d["cacert"])
    if d.get("worker"):
        if env.shape_class is not None:  # the same file runs everywhere, as with Locust
            sys.stderr.write(f"aiload worker: {type(env.shape_class).__name__} (a LoadTestShape) "
                             "runs on the master; ignored here\n")
            env.shape_class = None
        runner = env.create_worker_runner(d.get("master_host"), d.get("master_port"))
        env.events.init.fire(environment=env, runner=runner, web_ui=None)
        return _run_worker(env, runner)
    if d.get("master"):
        try:
            runner = env.create_master_runner(d.get("master_bind_host") or "*",
                                              d.get("master_bind_port") or 5557)
        except OSError as e:
            raise StartupError(str(e)) from None
        env.events.init.fire(environment=env, runner=runner, web_ui=None)
        return _run_master(env, runner, d)
    if nproc > 1 and not d["headless"]:
        return _run_local_master(env, d, nproc)
    runner = env.create_local_runner()
    env.events.init.fire(environment=env, runner=runner, web_ui=None)
    if nproc > 1:
        from .processes import run_processes

        return run_processes(env, runner, d, nproc)
    if not d["headless"]:
        return _run_webui(env, runner, d)
    return _run_headless(env, runner, d)


def _run_local_master(env, d, n):
    """--processes N under the web UI, as Locust's: this process is a master
    on 127.0.0.1 (an ephemeral port) whose workers are N copies of this
    command line on Locust's protocol, so the UI's Workers tab lists them and
    Start, Edit and Stop drive them all. (Headless, the children ship their
    exact timings through pipes instead: processes.py.)"""
    try:
        runner = env.create_master_runner("127.0.0.1", 0)
    except OSError as e:
        raise StartupError(str(e)) from None
    env.events.init.fire(environment=env, runner=runner, web_ui=None)
    pids = _aiload.procs_spawn(n, runner.master_bind_port)
    started = sum(1 for p in pids if p > 0)
    sys.stderr.write(f"aiload: {started} local worker processes for the web UI (--processes {n})\n")
    try:
        if not started or not runner.await_workers(started, 60):
            runner.quit()
            env.events.quitting.fire(environment=env)
            return 1
        return _run_webui(env, runner, d)
    finally:
        timeout = env.stop_timeout
        _aiload.procs_reap(pids, int(((timeout if timeout and timeout > 0 else 0) + 5) * 1000))


def _run_worker(env, runner):
    def on_signal(signum, frame):
        runner._quit_flag = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = runner.run()
    env.events.quitting.fire(environment=env)
    return code


def _run_master(env, runner, d):
    """--master: headless, await --expect-workers first (the web UI starts
    when asked, with whatever workers are connected then)."""
    if not d["headless"]:
        return _run_webui(env, runner, d)
    signal.signal(signal.SIGINT, lambda signum, frame: setattr(runner, "_quit_flag", True))
    signal.signal(signal.SIGTERM, lambda signum, frame: setattr(runner, "_quit_flag", True))
    if not runner.await_workers(d["expect_workers"] or 1, d["expect_workers_max_wait"] or 0):
        runner.quit()
        env.events.quitting.fire(environment=env)
        return 1
    return _run_headless(env, runner, d)


def _needs_host(cls):
    from .contrib.fasthttp import FastHttpUser
    from .user.users import HttpUser

    return issubclass(cls, (HttpUser, FastHttpUser))


def _run_headless(env, runner, d):
    users = d["num_users"] or 1
    rate = d["spawn_rate"] or 1
    run_time = d["run_time"] or 0
    nw = _name_width()
    csvout = CsvOut(d["csv_prefix"], d["csv_full_history"]) if d["csv_prefix"] else None
    signals = {"n": 0}

    def on_signal(signum, frame):
        signals["n"] += 1
        if _stale():
            from .exception import StuckUserError

            raise StuckUserError("interrupted by a signal")
        if signals["n"] == 1:
            sys.stderr.write("aiload: stopping; awaiting requests in flight (Ctrl+C again to abort them)\n")
            gevent.spawn(runner.quit)
        else:
            env.stop_timeout = 0.001
            gevent.spawn(lambda: runner.user_greenlets.kill(block=False))

    last_beat = [0]

    def _stale():
        return _aiload.now_ns() - last_beat[0] > 300_000_000 and last_beat[0] > 0

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    if env.shape_class is not None:
        sys.stderr.write(f"aiload: shape test ({type(env.shape_class).__name__}), host {env.host or '-'}\n")
        runner.start_shape()
    else:
        sys.stderr.write(f"aiload: closed-model test: {users} users, spawn rate {rate:g}/s, "
                         f"{'run time set' if run_time else 'until Ctrl+C'}, host {env.host or '-'} "
                         "(Python locustfile)\n")
        runner.start(users, rate)
    # the stall watchdog: warns when user code holds the thread for 2 s, and
    # interrupts it once the run time is over (no run time: stall warnings only)
    _aiload.watchdog(runner._t0_ns + int(run_time * 1e9) + 200_000_000 if run_time else 1 << 62)

    def heartbeat():
        while True:
            last_beat[0] = _aiload.beat()
            gevent.sleep(0.05)

    def stopper():
        gevent.sleep(max(0, run_time - (_aiload.now_ns() - runner._t0_ns) / 1e9))
        logging.getLogger("locust.main").info("--run-time limit reached, shutting down")
        runner.quit()

    def ticker():
        next_table = time.monotonic() + 2
        while True:
            gevent.sleep(1)
            runner._publish()
            _aiload.history_tick()
            if csvout:
                csvout.history_row()
                csvout.write(runner)
            if not d["only_summary"] and time.monotonic() >= next_table:
                sys.stdout.write(_aiload.report("current", nw))
                sys.stdout.flush()
                next_table += 2
            if runner.state == STATE_STOPPED:
                return

    helpers = [gevent.spawn(heartbeat), gevent.spawn(ticker)]
    if run_time:
        helpers.append(gevent.spawn(stopper))
    if csvout:
        csvout.write(runner)
    while runner.state != STATE_STOPPED:
        gevent.sleep(0.1)
    if isinstance(runner, MasterRunner):
        runner.quit()  # a shape that ended stopped the test: now the workers go too
    _aiload.watchdog(0)
    for g in helpers:
        g.kill(block=False)
    env.events.quitting.fire(environment=env)
    return finish(env, runner, d, nw, csvout)


def _exceptions_fn(runner):
    """The Exceptions table for the web UI and the HTML report (called by C
    with the GIL held, possibly from the UI thread: it only reads)."""
    def rows():
        return [(e["count"], e["msg"], e["traceback"], ", ".join(sorted(e["nodes"])))
                for e in list(runner.exceptions.values())]
    return rows


def _host_check(env):
    """Checks the host of a test started from the web UI (called by C with
    the GIL held, from the UI thread): None, or why it can not start."""
    def check(host):
        from urllib.parse import urlsplit

        from ._http import origin

        if not host:
            for c in env.user_classes:
                if c.host is None and _needs_host(c):
                    return f"no host for {c.__name__}: fill in Host or set host on the class"
            return None
        u = urlsplit(host)
        if u.scheme not in ("http", "https") or not u.netloc:
            return f"host '{host}' is not an http:// or https:// URL"
        try:
            origin(u.scheme, u.netloc)
        except (OSError, ValueError) as e:
            return f"host '{host}': {e}"
        return None
    return check


def _task_ratios(env, runner):
    """GET /tasks, Locust 2.12's get_ratio: the running users weigh the
    classes; before a run (or after it) the split of the form's user count.
    Called by C with the GIL held, from the UI thread: it only reads."""
    from .runners import split_users

    def tasks(classes, total, parent):
        parent = parent if total else 1.0
        share = {}
        for t in classes:
            share[t] = share.get(t, 0) + 1 / len(classes)
        out = {}
        for t, r in share.items():
            d = {"ratio": r * parent}
            if getattr(t, "tasks", None):
                d["tasks"] = tasks(t.tasks, total, r * parent)
            out[getattr(t, "__name__", str(t))] = d
        return out

    def ratios(form_users):
        classes = list(env.user_classes)
        spawned = runner.user_classes_count if runner.user_count else {
            c.__name__: n for c, n in split_users(classes, runner.target_user_count or form_users).items()}
        n = sum(spawned.values()) or 1
        return json.dumps({half: {c.__name__: {"ratio": spawned.get(c.__name__, 0) / n,
                                               "tasks": tasks(c.tasks, half == "total",
                                                              spawned.get(c.__name__, 0) / n)}
                                  for c in classes if c.tasks}
                           for half in ("per_class", "total")})
    return ratios


def _workers_fn(runner):
    """A master's Workers tab: (worker count, JSON rows as the C master's).
    Called by C with the GIL held, from the UI thread: it only reads."""
    def workers():
        rows = [{"id": w.id, "index": w.index, "state": w.state, "user_count": w.user_count,
                 "cpu_usage": round(w.cpu_usage, 1), "memory_usage": w.memory_usage}
                for w in sorted(list(runner.clients.values()), key=lambda w: w.index)]
        return runner.worker_count, json.dumps(rows)
    return workers


def _run_webui(env, runner, d):
    """The web UI: a C thread serves it (loadgen/py/pyweb.c); this greenlet
    applies what it asks (start, stop, reset) on the Python thread."""
    users = d["num_users"] or 1
    rate = d["spawn_rate"] or 1
    nw = _name_width()
    csvout = CsvOut(d["csv_prefix"], d["csv_full_history"]) if d["csv_prefix"] else None
    try:
        port = _aiload.webui_start(d["web_host"], d["web_port"], users, float(rate), env.host,
                                   float(d["run_time"] or 0), int(bool(d["autostart"])),
                                   float(d["autoquit"]), d["web_auth"], _exceptions_fn(runner),
                                   _host_check(env), _task_ratios(env, runner),
                                   _workers_fn(runner) if isinstance(runner, MasterRunner) else None,
                                   type(env.shape_class).__name__ if env.shape_class is not None else None)
    except OSError as e:
        raise StartupError(str(e)) from None
    h = d["web_host"] if d["web_host"] is not None else "127.0.0.1"
    sys.stderr.write(f"aiload: web UI on http://{h or '*'}:{port}/"
                     f"{' (HTTP Basic auth)' if d['web_auth'] else ''} (Python locustfile)\n")
    sys.stderr.flush()
    signals = {"n": 0}

    def on_signal(signum, frame):
        signals["n"] += 1

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    _aiload.watchdog(1 << 62)  # stall warnings only

    def heartbeat():
        while True:
            _aiload.beat()
            gevent.sleep(0.05)

    def ticker():
        while True:
            gevent.sleep(1)
            if runner.state not in (STATE_INIT, STATE_STOPPED):
                _aiload.history_tick()
                if csvout:
                    csvout.history_row()
            if csvout:
                csvout.write(runner)

    def stop_after(seconds):
        gevent.sleep(seconds)
        logging.getLogger("locust.main").info("--run-time limit reached, stopping the test")
        runner.stop()

    helpers = [gevent.spawn(heartbeat), gevent.spawn(ticker)]
    timer, stopper, quit_ui = None, None, False
    while not signals["n"] and not quit_ui:
        for cmd in _aiload.webui_poll():
            if cmd[0] == "quit":
                quit_ui = True
            elif cmd[0] == "stop":
                if timer is not None:
                    timer.kill(block=False)
                stopper = gevent.spawn(runner.stop)
            elif cmd[0] == "reset":  # the counts were cleared by the UI thread
                runner.exceptions = {}
                env.events.reset_stats.fire()
            elif cmd[0] == "start":
                _, n, r, host, run_time = cmd
                if runner.state in (STATE_SPAWNING, STATE_RUNNING):
                    if env.shape_class is None:  # a shape's test is not edited (the UI says so)
                        runner.start(n, r)  # Locust's "Edit": new user count and spawn rate
                    continue
                if stopper is not None:
                    stopper.join()
                if host and host != env.host:
                    env.host = host
                    for c in env.user_classes:
                        c.host = host
                env._run_time = run_time
                if env.shape_class is not None:
                    runner.start_shape()  # the UI sent no user count: the shape sets it
                else:
                    runner.start(n, r)
                if timer is not None:
                    timer.kill(block=False)
                timer = gevent.spawn(stop_after, run_time) if run_time else None
        runner._publish()
        gevent.sleep(0.1)
    if stopper is not None:
        stopper.join()  # a stop from the UI in progress ends as it began
    if runner.state not in (STATE_INIT, STATE_STOPPED):
        sys.stderr.write("aiload: stopping; awaiting requests in flight\n")
        runner.quit()
    elif isinstance(runner, MasterRunner):
        runner.quit()  # no test runs: only the workers are told to quit
    _aiload.watchdog(0)
    _aiload.webui_stop()
    for g in helpers + [t for t in (timer, stopper) if t is not None]:
        g.kill(block=False)
    env.events.quitting.fire(environment=env)
    return finish(env, runner, d, nw, csvout)


def finish(env, runner, d, nw, csvout, extra_codes=()):
    """The final tables, CSV files and thresholds; the exit code."""
    sys.stdout.write(_aiload.report("final", nw))
    sys.stdout.flush()
    code = 0
    if csvout:
        csvout.history_row()
        csvout.write(runner)
        csvout.history.close()
    if d["html_file"]:
        try:
            _aiload.write_html(d["html_file"], _exceptions_fn(runner), _task_ratios(env, runner),
                               d["num_users"] or 1)
        except OSError as e:
            sys.stderr.write(f"aiload: --html: {e}\n")
            code = 1
    if d["json_file"]:
        text = _aiload.report("json", getattr(env, "_processes", 1))
        results = _aiload.fail_if(d["fail_if"]) if d["fail_if"] else []
        if results and text.endswith("}"):
            text = text[:-1] + ',"thresholds":' + json.dumps(
                [{"expr": t, "ok": bool(ok), "measured": v} for t, ok, v in results]) + "}"
        tmp = d["json_file"] + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, d["json_file"])
    if d["fail_if"]:
        broken = 0
        for text, ok, measured in _aiload.fail_if(d["fail_if"]):
            print(f"threshold {text:<24} {'ok' if ok else 'FAILED'} (measured {measured:g})")
            broken += not ok
        if broken:
            sys.stderr.write(f"aiload: {broken} threshold{'s' if broken > 1 else ''} failed\n")
            code = 3
    if not code:
        if env.process_exit_code is not None:
            code = env.process_exit_code
        elif extra_codes:
            code = max(extra_codes)
        elif env.stats.total.num_failures or runner.exceptions:
            code = d["exit_code_on_error"]
    return code


def aiload_main(argv):
    try:
        return run(list(argv))
    except StartupError as e:
        sys.stderr.write(f"aiload: {e}\n")
        return 2
