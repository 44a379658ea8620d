/*
 * pyweb: the web UI (loadgen/webui/webui.h) over a Python locustfile's run, and the
 * per-second history its charts and the --html report draw.
 *
 * Threads: the users' Python runs on the process's one Python thread under
 * gevent; the web UI serves on a thread of its own (its lib/ev loop). The
 * stats table (pystats) is written with the GIL held, so the UI thread takes
 * the GIL to read it: the GIL is the lock. What changes the run (start, stop,
 * reset) must run on the Python thread, in gevent: the UI thread queues it
 * (under mu, never while waiting for the GIL) and a greenlet of
 * locust/main.py takes the queue every 100 ms with webui_poll().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loadgen/py/pyrun_int.h"
#include "loadgen/report.h"
#include "loadgen/snapshot.h"
#include "loadgen/webui/render.h"
#include "loadgen/webui/webui.h"

enum { CMD_START, CMD_STOP, CMD_RESET };

typedef struct pyweb_cmd {
    int kind;
    int users;
    double spawn_rate, run_time_s;
    char host[256];
} pyweb_cmd;

#define PYWEB_MAXCMD 64

/* The process's one web UI (one interpreter per process). */
static struct {
    /* GIL-guarded: the history and its CSV rows, the exceptions callback */
    runner_history_point *hist;
    size_t nhist, caphist;
    buf hist_csv;
    PyObject *exceptions_fn; /* () -> [(count, msg, traceback, nodes)] */
    PyObject *check_host_fn; /* (host or "") -> None, or why the test can not start */
    PyObject *tasks_fn;      /* (form_users) -> GET /tasks's JSON text */
    PyObject *workers_fn;    /* a master's: () -> (worker count, the Workers tab's JSON) */
    int form_users;          /* the form's user count (-u), for the ratios before a run */
    /* the UI thread */
    webui *w;
    pthread_t thread;
    int started;
    volatile sig_atomic_t quit;
    /* mu: the command queue and what it implies for the state */
    pthread_mutex_t mu;
    pyweb_cmd cmds[PYWEB_MAXCMD];
    size_t ncmds;
    int pending_start, pending_stop;
    int done; /* the UI thread has left webui_run */
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .hist_csv = BUF_INIT};

/* ---- history (Python thread, GIL held) ---- */

void pyweb_history_clear(void)
{
    P.nhist = 0;
    buf_reset(&P.hist_csv);
}

PyObject *pyweb_m_history_tick(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    runner_snapshot *s = pymod_snapshot();
    if (!s) return PyErr_NoMemory();
    if (P.nhist == P.caphist) {
        size_t cap = P.caphist ? P.caphist * 2 : 256;
        runner_history_point *h = realloc(P.hist, cap * sizeof(*h));
        if (!h) {
            runner_snapshot_free(s);
            return PyErr_NoMemory();
        }
        P.hist = h;
        P.caphist = cap;
    }
    P.hist[P.nhist++] = lg_snapshot_point(s, (int64_t)time(NULL));
    int rc = report_csv_history_rows(&P.hist_csv, s, (int64_t)time(NULL), 0);
    runner_snapshot_free(s);
    if (rc) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ---- exceptions (GIL held) ---- */

enum { EXC_JSON, EXC_CSV, EXC_HTML };

/* Renders the runner's Exceptions table (Locust's runner.exceptions) as
 * GET /exceptions's JSON, the exceptions CSV or the report's HTML. */
static int render_exceptions(int how, buf *out)
{
    int rc = how == EXC_JSON  ? buf_puts(out, "{\"exceptions\":[")
             : how == EXC_CSV ? report_csv_exceptions(out)
                              : 0;
    PyObject *list = P.exceptions_fn ? PyObject_CallNoArgs(P.exceptions_fn) : PyList_New(0);
    PyObject *seq = list ? PySequence_Fast(list, "exceptions: not a list") : NULL;
    Py_ssize_t n = seq ? PySequence_Fast_GET_SIZE(seq) : 0;
    if (!seq) PyErr_Clear(); /* a broken table shows as empty rather than failing the page */
    if (how == EXC_HTML)
        rc |= n ? buf_puts(out, "<div class=\"scroll\"><table class=\"grid\" id=\"exceptions\">"
                                "<thead><tr><th class=\"n\">Count</th><th>Message</th>"
                                "<th>Traceback</th><th>Nodes</th></tr></thead><tbody>\n")
                : buf_puts(out, "<p class=\"empty\">No exceptions.</p>");
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long count;
        const char *msg, *tb, *nodes;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "Ksss", &count, &msg, &tb,
                              &nodes)) {
            PyErr_Clear();
            continue;
        }
        if (how == EXC_JSON) {
            rc |= buf_printf(out, "%s{\"count\":%llu,\"msg\":", i ? "," : "", count);
            rc |= buf_json_cstr(out, msg) | buf_puts(out, ",\"traceback\":");
            rc |= buf_json_cstr(out, tb) | buf_puts(out, ",\"nodes\":");
            rc |= buf_json_cstr(out, nodes) | buf_puts(out, "}");
        } else if (how == EXC_CSV) {
            rc |= buf_printf(out, "%llu,", count) | report_csv_field(out, msg) | buf_puts(out, ",");
            rc |= report_csv_field(out, tb) | buf_puts(out, ",") | report_csv_field(out, nodes);
            rc |= buf_puts(out, "\r\n");
        } else {
            rc |= buf_printf(out, "<tr><td class=\"n\">%llu</td><td class=\"err\">", count);
            rc |= webui_html_escape(out, msg) | buf_puts(out, "</td><td class=\"err\"><pre>");
            rc |= webui_html_escape(out, tb) | buf_puts(out, "</pre></td><td>");
            rc |= webui_html_escape(out, nodes) | buf_puts(out, "</td></tr>\n");
        }
    }
    if (how == EXC_JSON) rc |= buf_puts(out, "]}");
    if (how == EXC_HTML && n) rc |= buf_puts(out, "</tbody></table></div>");
    Py_XDECREF(seq);
    Py_XDECREF(list);
    return rc ? -ENOMEM : 0;
}

/* ---- the backend (UI thread) ---- */

/* The state as the page should see it: a start or stop the Python thread has
 * not taken yet counts as done, so the page (and --autoquit) never see the
 * old state after the click. */
static void pending_state(runner_state *st)
{
    pthread_mutex_lock(&P.mu);
    if (P.pending_start) *st = RUNNER_SPAWNING;
    if (P.pending_stop && *st != RUNNER_STOPPED && *st != RUNNER_READY) *st = RUNNER_STOPPING;
    pthread_mutex_unlock(&P.mu);
}

static runner_snapshot *be_snapshot(void *ctx)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    runner_snapshot *s = pymod_snapshot();
    PyGILState_Release(g);
    if (s) pending_state(&s->state);
    return s;
}

static runner_state be_state(void *ctx)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    runner_state st = pymod_info()->state;
    PyGILState_Release(g);
    pending_state(&st);
    return st;
}

static size_t be_history_len(void *ctx)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    size_t n = P.nhist;
    PyGILState_Release(g);
    return n;
}

static size_t be_history_get(void *ctx, size_t from, runner_history_point *out, size_t max)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    size_t n = from < P.nhist ? P.nhist - from : 0;
    if (n > max) n = max;
    if (n) memcpy(out, P.hist + from, n * sizeof(*out));
    PyGILState_Release(g);
    return n;
}

static int push(const pyweb_cmd *c)
{
    pthread_mutex_lock(&P.mu);
    int ok = P.ncmds < PYWEB_MAXCMD;
    if (ok) {
        P.cmds[P.ncmds++] = *c;
        if (c->kind == CMD_START) P.pending_start = 1, P.pending_stop = 0;
        if (c->kind == CMD_STOP) P.pending_stop = 1, P.pending_start = 0;
    }
    pthread_mutex_unlock(&P.mu);
    return ok ? 0 : -EBUSY;
}

static int be_start(void *ctx, const runner_start_params *p, char *err, size_t errlen)
{
    (void)ctx;
    if (p->rate > 0 || p->nstages) {
        snprintf(err, errlen,
                 "the open model (--rate) drives ini scenarios, not Python locustfiles");
        return -EINVAL;
    }
    /* a new test (not an edit) checks its host first, as runner_start does */
    PyGILState_STATE g = PyGILState_Ensure();
    runner_state st = pymod_info()->state;
    PyObject *why = NULL;
    if (st != RUNNER_SPAWNING && st != RUNNER_RUNNING && P.check_host_fn)
        why = PyObject_CallFunction(P.check_host_fn, "s", p->host ? p->host : "");
    int bad = why && why != Py_None;
    if (bad) {
        const char *text = PyUnicode_Check(why) ? PyUnicode_AsUTF8(why) : NULL;
        snprintf(err, errlen, "%s", text ? text : "bad host");
    }
    if (!why) PyErr_Clear(); /* a broken check does not stop the test */
    PyErr_Clear();
    Py_XDECREF(why);
    PyGILState_Release(g);
    if (bad) return -EINVAL;
    pyweb_cmd c = {.kind = CMD_START,
                   .users = p->users,
                   .spawn_rate = p->spawn_rate,
                   .run_time_s = p->run_time_s};
    snprintf(c.host, sizeof(c.host), "%s", p->host ? p->host : "");
    if (push(&c)) {
        snprintf(err, errlen, "busy: too many commands waiting for the Python thread");
        return -EINVAL;
    }
    return 0;
}

static void be_stop(void *ctx)
{
    (void)ctx;
    pyweb_cmd c = {.kind = CMD_STOP};
    push(&c);
}

/* The counts clear at once (GET /stats/reset answers after it); the
 * Exceptions table and the reset_stats event follow on the Python thread. */
static void be_reset(void *ctx)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    pymod_reset();
    PyGILState_Release(g);
    pyweb_cmd c = {.kind = CMD_RESET};
    push(&c);
}

static int be_csv(void *ctx, webui_csv what, buf *out)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = 0;
    if (what == WEBUI_CSV_EXCEPTIONS) {
        rc = render_exceptions(EXC_CSV, out);
    } else if (what == WEBUI_CSV_HISTORY) {
        report_csv_history_header(out);
        rc = buf_append(out, P.hist_csv.data ? P.hist_csv.data : "", P.hist_csv.len);
    } else {
        runner_snapshot *s = pymod_snapshot();
        rc = !s                           ? -ENOMEM
             : what == WEBUI_CSV_FAILURES ? report_csv_failures(out, s)
                                          : report_csv_stats(out, s);
        runner_snapshot_free(s);
    }
    PyGILState_Release(g);
    return rc ? -ENOMEM : 0;
}

static int be_summary(void *ctx, buf *out)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    runner_snapshot *s = pymod_snapshot();
    int rc = s ? report_json(out, s, pymod_source(), 1) : -ENOMEM;
    runner_snapshot_free(s);
    PyGILState_Release(g);
    return rc ? -ENOMEM : 0;
}

static int be_exceptions(void *ctx, buf *out, int how)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    int rc = render_exceptions(how, out);
    PyGILState_Release(g);
    return rc;
}

static int be_exceptions_json(void *ctx, buf *out)
{
    return be_exceptions(ctx, out, EXC_JSON);
}

static int be_exceptions_html(void *ctx, buf *out)
{
    return be_exceptions(ctx, out, EXC_HTML);
}

static int be_tasks_json(void *ctx, buf *out)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = P.tasks_fn ? PyObject_CallFunction(P.tasks_fn, "i", P.form_users) : NULL;
    const char *text = r && PyUnicode_Check(r) ? PyUnicode_AsUTF8(r) : NULL;
    int rc = buf_puts(out, text ? text : "{\"per_class\":{},\"total\":{}}");
    PyErr_Clear(); /* a broken table shows as empty rather than failing the page */
    Py_XDECREF(r);
    PyGILState_Release(g);
    return rc ? -ENOMEM : 0;
}

/* A Python master's workers for /stats/requests (UI thread). */
static PyObject *call_workers(void)
{
    PyObject *r = P.workers_fn ? PyObject_CallNoArgs(P.workers_fn) : NULL;
    if (r && (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2 ||
              !PyLong_Check(PyTuple_GET_ITEM(r, 0)) || !PyUnicode_Check(PyTuple_GET_ITEM(r, 1))))
        Py_CLEAR(r);
    PyErr_Clear();
    return r;
}

static void py_workers_json(void *ctx, buf *out)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = call_workers();
    const char *text = r ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(r, 1)) : NULL;
    buf_puts(out, text ? text : "[]");
    PyErr_Clear();
    Py_XDECREF(r);
    PyGILState_Release(g);
}

static int py_worker_count(void *ctx)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = call_workers();
    int n = r ? (int)PyLong_AsLong(PyTuple_GET_ITEM(r, 0)) : 0;
    PyErr_Clear();
    Py_XDECREF(r);
    PyGILState_Release(g);
    return n < 0 ? 0 : n;
}

static const webui_backend backend = {
    .snapshot = be_snapshot,
    .history_len = be_history_len,
    .history_get = be_history_get,
    .start = be_start,
    .stop = be_stop,
    .reset = be_reset,
    .state = be_state,
    .csv = be_csv,
    .summary = be_summary,
    .exceptions_json = be_exceptions_json,
    .exceptions_html = be_exceptions_html,
    .tasks_json = be_tasks_json,
};

/* ---- module functions (Python thread) ---- */

static void *ui_main(void *arg)
{
    (void)arg;
    webui_run(P.w, &P.quit);
    pthread_mutex_lock(&P.mu);
    P.done = 1;
    pthread_mutex_unlock(&P.mu);
    return NULL;
}

static void set_fn(PyObject **slot, PyObject *fn)
{
    Py_XINCREF(fn);
    Py_XSETREF(*slot, fn == Py_None ? NULL : fn);
    if (fn == Py_None) Py_DECREF(fn);
}

/* webui_start(web_host, web_port, users, spawn_rate, host, run_time_s,
 *             autostart, autoquit_s, auth, exceptions_fn, check_host_fn, tasks_fn
 *             [, workers_fn[, shape]]) -> port; workers_fn (a master's) adds the Workers
 * tab; shape, a LoadTestShape's class name, makes a start run the shape */
PyObject *pyweb_m_start(PyObject *m, PyObject *args)
{
    (void)m;
    const char *web_host, *host, *auth, *shape = NULL;
    int port, users, autostart;
    double rate, run_time, autoquit;
    PyObject *fn, *check, *tasks, *workers = Py_None;
    if (!PyArg_ParseTuple(args, "ziidzdidzOOO|Oz", &web_host, &port, &users, &rate, &host,
                          &run_time, &autostart, &autoquit, &auth, &fn, &check, &tasks, &workers,
                          &shape))
        return NULL;
    if (P.w) {
        PyErr_SetString(PyExc_RuntimeError, "the web UI runs already");
        return NULL;
    }
    set_fn(&P.exceptions_fn, fn);
    set_fn(&P.check_host_fn, check);
    set_fn(&P.tasks_fn, tasks);
    set_fn(&P.workers_fn, workers);
    P.form_users = users;
    webui_opts o = {
        .web_host = web_host,
        .web_port = port,
        .autostart = autostart,
        .autoquit_s = autoquit,
        .start = {.users = users, .spawn_rate = rate, .host = host, .run_time_s = run_time},
        .script = pymod_source(),
        .auth = auth,
        .workers_json = P.workers_fn ? py_workers_json : NULL,
        .worker_count = P.workers_fn ? py_worker_count : NULL,
        .shape = shape};
    char err[512];
    if (!(P.w = webui_create_backend(&backend, &o, err, sizeof(err)))) {
        PyErr_SetString(PyExc_OSError, err);
        return NULL;
    }
    /* signals stay with the Python thread, whose handlers stop the run */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    P.quit = 0;
    P.done = 0;
    int rc = pthread_create(&P.thread, NULL, ui_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        webui_free(P.w);
        P.w = NULL;
        PyErr_SetString(PyExc_OSError, "cannot start the web UI thread");
        return NULL;
    }
    P.started = 1;
    return PyLong_FromLong(webui_port(P.w));
}

/* At a poll with nothing new queued, the commands of the previous poll are
 * applied and published: the state the Python side publishes is the truth. */
static void clear_pending(void)
{
    pthread_mutex_lock(&P.mu);
    if (!P.ncmds) P.pending_start = P.pending_stop = 0;
    pthread_mutex_unlock(&P.mu);
}

/* webui_poll() -> [("start", users, spawn_rate, host, run_time_s) | ("stop",)
 * | ("reset",) | ("quit",)]: what the UI asked since the last call; "quit"
 * once the UI has ended (--autoquit). */
PyObject *pyweb_m_poll(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    pyweb_cmd cmds[PYWEB_MAXCMD];
    clear_pending();
    pthread_mutex_lock(&P.mu);
    size_t n = P.ncmds;
    memcpy(cmds, P.cmds, n * sizeof(cmds[0]));
    P.ncmds = 0;
    int done = P.done;
    pthread_mutex_unlock(&P.mu);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < n; i++) {
        const pyweb_cmd *c = &cmds[i];
        PyObject *t = c->kind == CMD_START  ? Py_BuildValue("(sidsd)", "start", c->users,
                                                            c->spawn_rate, c->host, c->run_time_s)
                      : c->kind == CMD_STOP ? Py_BuildValue("(s)", "stop")
                                            : Py_BuildValue("(s)", "reset");
        if (!t || PyList_Append(list, t)) Py_CLEAR(list);
        Py_XDECREF(t);
    }
    if (list && done) {
        PyObject *t = Py_BuildValue("(s)", "quit");
        if (!t || PyList_Append(list, t)) Py_CLEAR(list);
        Py_XDECREF(t);
    }
    return list;
}

/* webui_stop(): ends the UI thread (it may be waiting for the GIL) */
PyObject *pyweb_m_stop(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    if (!P.started) Py_RETURN_NONE;
    P.quit = 1;
    Py_BEGIN_ALLOW_THREADS pthread_join(P.thread, NULL);
    Py_END_ALLOW_THREADS P.started = 0;
    webui_free(P.w);
    P.w = NULL;
    Py_RETURN_NONE;
}

/* write_html(path, exceptions_fn[, tasks_fn, users]): the --html report of the
 * run so far; tasks_fn (as webui_start's) gives its Final ratio for users */
PyObject *pyweb_m_write_html(PyObject *m, PyObject *args)
{
    (void)m;
    const char *path;
    PyObject *fn, *tasks = NULL;
    int users = P.form_users;
    if (!PyArg_ParseTuple(args, "sO|Oi", &path, &fn, &tasks, &users)) return NULL;
    set_fn(&P.exceptions_fn, fn);
    if (tasks) set_fn(&P.tasks_fn, tasks);
    P.form_users = users;
    buf b = BUF_INIT;
    /* the backend takes the GIL: give it up (it is taken again at once) */
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = webui_report_backend(&backend, pymod_source(), &b);
    if (!rc) rc = runner_write_file(path, &b);
    Py_END_ALLOW_THREADS buf_free(&b);
    if (rc) {
        errno = rc < 0 ? -rc : rc;
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        return NULL;
    }
    Py_RETURN_NONE;
}

void pyweb_shutdown(void)
{
    if (P.started) {
        P.quit = 1;
        Py_BEGIN_ALLOW_THREADS pthread_join(P.thread, NULL);
        Py_END_ALLOW_THREADS P.started = 0;
    }
    webui_free(P.w);
    P.w = NULL;
    Py_CLEAR(P.exceptions_fn);
    Py_CLEAR(P.check_host_fn);
    Py_CLEAR(P.tasks_fn);
    Py_CLEAR(P.workers_fn);
    free(P.hist);
    P.hist = NULL;
    P.nhist = P.caphist = 0;
    buf_free(&P.hist_csv);
}
