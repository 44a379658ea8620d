/*
 * The "wsgi" app kind: glue between the aiserve core (app.h) and the WSGI
 * machinery (wsgi_call, wsgi_py).
 *
 * Where Python is imported. Default (preload): the master starts CPython and
 * imports the apps, then the core forks; each worker runs CPython's after-fork
 * code. Before importing in the master, a throw-away child imports the apps
 * once and counts its threads: an import that leaves threads running (an
 * OpenMP/torch pool, a Python thread) would deadlock or vanish in forked
 * workers (uWSGI hangs on the first request), so such apps are imported in
 * each worker after the fork instead, with a log line saying so. With
 * lazy-apps the core calls load in each worker and no probe is needed.
 *
 * Threads. Each app thread pins its own Python thread state (thread_init) and
 * takes the GIL per request; wsgi_call releases it around every socket wait.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "server/wsgi/wsgi.h"
#include "server/wsgi/call.h"
#include "server/wsgi/conf.h"
#include "server/wsgi/py.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(http1_header) == sizeof(wsgi_header), "header views share a layout");
_Static_assert(offsetof(http1_header, value_len) == offsetof(wsgi_header, value_len),
               "header views share a layout");

#define PROBE_TIMEOUT_MS 300000

typedef struct wsgi_host wsgi_host;

/* One mount point: the routes' data. */
typedef struct wsgi_app {
    wsgi_host *host;
    const wsgi_mount *mount;
    PyObject *callable; /* NULL when the import failed (need-app off) */
    char error[512];    /* why callable is NULL */
} wsgi_app;

struct wsgi_host {
    wsgi_conf conf;
    char *conf_dir;
    wsgi_mount *mounts;
    size_t nmounts;
    wsgi_app *apps;
    wsgi_types *types;
    wsgi_flags flags;
    int need_app;
    int deferred; /* import in each worker after fork (the probe saw threads) */
    int skip_atexit;
    pid_t py_pid;      /* the process that owns the interpreter state */
    void *main_tstate; /* the worker's main thread state once the GIL is released */
    int *tokens;       /* per app thread, from wsgi_py_thread_enter */
    int ntokens;
};

static void wlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The core's log line, tagged "wsgi: ". */
static void wlog(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    app_vlog("wsgi: ", fmt, ap);
    va_end(ap);
}

static void io_log_line(void *ctx, const char *msg, size_t len)
{
    (void)ctx;
    wlog("%.*s", (int)len, msg);
}

static const wsgi_io log_only_io = {.log = io_log_line};

/* ---- the options this kind adds to the core's table ---- */

typedef struct wsgi_opts {
    const char *module;
    const char *wsgi_file;
    const char *callable;
    cfg_list pythonpath;
    const char *home;
    int wsgi_fork_probe;
    int py_call_osafterfork;
    int single_interpreter;
    const char *plugins;
    int wsgi_disable_file_wrapper;
    int skip_atexit;
    int manage_script_name;
} wsgi_opts;

#define WSGI(type, f) CFG_BIND(wsgi_opts, type, f)

static const cfg_option wsgi_options[] = {
    {"module", "wsgi", WSGI(CFG_STR, module), NULL, 0, 0, "WSGI app to load: pkg.mod:callable"},
    {"wsgi-file", "file", WSGI(CFG_STR, wsgi_file), NULL, 0, 0, "WSGI app to load from a .py file"},
    {"callable", NULL, WSGI(CFG_STR, callable), NULL, 0, 0,
     "name of the WSGI callable (unset: application)"},
    {"pythonpath", "python-path|pp", WSGI(CFG_LIST, pythonpath), NULL, 0, 0,
     "directory added to sys.path (repeatable)"},
    {"home", "virtualenv|venv|pyhome", WSGI(CFG_STR, home), NULL, 0, 0,
     "virtualenv whose site-packages the apps use"},
    {"wsgi-fork-probe", NULL, WSGI(CFG_BOOL, wsgi_fork_probe), "true", 0, 0,
     "before preloading, import once in a child: apps that start threads load after fork"},
    {"py-call-osafterfork", NULL, WSGI(CFG_BOOL, py_call_osafterfork), "true", 0, 0,
     "accepted; CPython's after-fork handling always runs"},
    {"single-interpreter", NULL, WSGI(CFG_BOOL, single_interpreter), "true", 0, 0,
     "accepted; one interpreter per process"},
    {"plugins", "plugin", WSGI(CFG_STR, plugins), NULL, 0, 0,
     "accepted and ignored: Python is built in"},
    {"wsgi-disable-file-wrapper", NULL, WSGI(CFG_BOOL, wsgi_disable_file_wrapper), "false", 0, 0,
     "leave wsgi.file_wrapper out of the environ"},
    {"skip-atexit", NULL, WSGI(CFG_BOOL, skip_atexit), "false", 0, 0,
     "do not run the apps' atexit handlers"},
    {"manage-script-name", NULL, WSGI(CFG_BOOL, manage_script_name), "true", 0, 0,
     "accepted; mounts always split SCRIPT_NAME and PATH_INFO"},
    CFG_END(wsgi_opts),
};

static int is_model_target(const char *mount)
{
    const char *eq = strchr(mount, '=');
    size_t n = eq ? strlen(eq + 1) : 0;
    return n >= 5 && !strcmp(eq + 1 + n - 5, ".onnx");
}

static int wsgi_configured(const cfg *c)
{
    const wsgi_opts *w = cfg_values(c, wsgi_options);
    if (w->module || w->wsgi_file) return 1;
    const cfg_list *m = &cfg_core_values(c)->mount;
    for (size_t i = 0; i < m->n; i++)
        if (!is_model_target(m->v[i])) return 1;
    return 0;
}

/* Applies one value through its setter; the message names the option bound to
 * field (a pointer into cfg_values) and where item i of it came from. */
static int set_opt(wsgi_conf *wc, const cfg *c, wsgi_conf_setter set, const void *field,
                   const char *v, size_t i, char *err, size_t errlen)
{
    char why[400];
    const char *name = cfg_name(c, field);
    if (set(wc, name, v, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s: option '%s': %s", cfg_where(c, field, i), name, why);
        return -1;
    }
    return 0;
}

/* The string options go through wsgi_conf's setters, bound to the fields of
 * wsgi_opts and cfg_core (callable before module: module is checked against
 * it); the typed ones are already checked by the config reader. */
static int conf_from_cfg(wsgi_conf *wc, const cfg *c, char *err, size_t errlen)
{
    const wsgi_opts *w = cfg_values(c, wsgi_options);
    const cfg_core *o = cfg_core_values(c);
    const struct {
        const char *const *v;
        wsgi_conf_setter set;
    } scalars[] = {{&w->callable, wsgi_conf_callable},
                   {&w->module, wsgi_conf_module},
                   {&w->wsgi_file, wsgi_conf_wsgi_file},
                   {&o->chdir, wsgi_conf_chdir},
                   {&w->home, wsgi_conf_home}};
    const struct {
        const cfg_list *v;
        wsgi_conf_setter set;
    } lists[] = {{&w->pythonpath, wsgi_conf_pythonpath},
                 {&o->env, wsgi_conf_env},
                 {&o->mount, wsgi_conf_mount}};
    for (size_t k = 0; k < sizeof(scalars) / sizeof(*scalars); k++) {
        const char *v = *scalars[k].v;
        if (v && set_opt(wc, c, scalars[k].set, scalars[k].v, v, 0, err, errlen)) return -1;
    }
    for (size_t k = 0; k < sizeof(lists) / sizeof(*lists); k++) {
        const cfg_list *l = lists[k].v;
        for (size_t i = 0; i < l->n; i++) {
            if (l == &o->mount && is_model_target(l->v[i])) continue;
            if (set_opt(wc, c, lists[k].set, l, l->v[i], i, err, errlen)) return -1;
        }
    }
    wc->need_app = o->need_app;
    wc->lazy_apps = o->lazy_apps;
    wc->threads = o->threads;
    wc->processes = o->processes;
    wc->fork_probe = w->wsgi_fork_probe;
    return 0;
}

/* The config file's directory, absolute, so `aiserve dir/app.ini` finds dir/demo.py. */
static char *conf_dir_of(const cfg *c)
{
    const char *file = cfg_file(c);
    char abs[PATH_MAX];
    if (!file || !realpath(file, abs)) return NULL;
    return strdup(dirname(abs));
}

/* ---- loading ---- */

/* Imports every mount's app. With need-app a failure is fatal (-1), else the
 * mount answers 500 with the reason. GIL held. */
static int import_apps(wsgi_host *h, char *err, size_t errlen)
{
    for (size_t i = 0; i < h->nmounts; i++) {
        wsgi_app *a = &h->apps[i];
        a->callable = wsgi_py_load(&h->mounts[i].target, h->conf_dir, &log_only_io, a->error,
                                   sizeof(a->error));
        if (a->callable) continue;
        if (h->need_app) {
            snprintf(err, errlen, "%s", a->error);
            return -1;
        }
        wlog("%s; mount '%s' answers 500 until fixed (need-app is off)", a->error,
             *a->mount->prefix ? a->mount->prefix : "/");
    }
    return 0;
}

/* Decides, in the master, whether importing here is safe for the fork to come. */
static int preload_or_defer(wsgi_host *h, char *err, size_t errlen)
{
    if (h->conf.fork_probe) {
        int threads = 0;
        int r = wsgi_py_probe(h->mounts, h->nmounts, h->conf_dir, PROBE_TIMEOUT_MS, &threads);
        if (r == 0 && threads > 0) {
            wlog("importing the app started %d thread%s (a native pool such as OpenMP/torch, or a "
                 "Python thread); forked workers would hang or lose them, so each worker imports "
                 "the app after fork (as with lazy-apps)",
                 threads, threads == 1 ? "" : "s");
            h->deferred = 1;
            return 0;
        }
        if (r < 0) {
            wlog("the import probe failed (%s); each worker imports the app after fork",
                 r == -ETIMEDOUT ? "timed out"
                 : r == -EPIPE   ? "the import crashed"
                                 : strerror(-r));
            h->deferred = 1;
            return 0;
        }
    }
    int before = wsgi_py_count_threads();
    if (import_apps(h, err, errlen)) return -1;
    int after = wsgi_py_count_threads();
    if (after > before) {
        snprintf(err, errlen,
                 "importing the app in the master started %d thread%s; forking now would hang the "
                 "workers: set lazy-apps = true (or leave wsgi-fork-probe on)",
                 after - before, after - before == 1 ? "" : "s");
        return -1;
    }
    return 0;
}

static int register_routes(wsgi_host *h, app_ctx *ctx, char *err, size_t errlen);

static void host_free(wsgi_host *h)
{
    if (!h) return;
    wsgi_mounts_free(h->mounts, h->nmounts);
    wsgi_conf_free(&h->conf);
    free(h->conf_dir);
    free(h->apps);
    free(h->tokens);
    free(h);
}

static int wsgi_load(app_ctx *ctx, void **state, char *err, size_t errlen)
{
    const cfg *c = app_ctx_cfg(ctx);
    wsgi_host *h = calloc(1, sizeof(*h));
    if (!h) return snprintf(err, errlen, "out of memory"), -1;
    wsgi_conf_init(&h->conf);
    h->conf_dir = conf_dir_of(c);
    if (conf_from_cfg(&h->conf, c, err, errlen)) goto fail;
    h->need_app = h->conf.need_app;
    h->flags.multithread = h->conf.threads > 1;
    h->flags.multiprocess = h->conf.processes > 1;
    const wsgi_opts *w = cfg_values(c, wsgi_options);
    h->flags.no_file_wrapper = w->wsgi_disable_file_wrapper;
    h->skip_atexit = w->skip_atexit;
    int n = wsgi_conf_mounts(&h->conf, &h->mounts, err, errlen);
    if (n <= 0) {
        if (n == 0) snprintf(err, errlen, "no WSGI app configured");
        goto fail;
    }
    h->nmounts = (size_t)n;
    h->apps = calloc(h->nmounts, sizeof(*h->apps));
    h->ntokens = h->conf.threads;
    h->tokens = calloc((size_t)h->ntokens, sizeof(*h->tokens));
    if (!h->apps || !h->tokens) goto oom;
    for (size_t i = 0; i < h->nmounts; i++) h->apps[i] = (wsgi_app){h, &h->mounts[i], NULL, ""};
    if (wsgi_py_start(&h->conf, h->conf_dir, err, errlen)) goto fail;
    h->py_pid = getpid();
    if (!(h->types = wsgi_types_new())) {
        PyErr_Clear();
        goto oom;
    }
    int in_worker = app_ctx_worker_id(ctx) > 0;
    if (in_worker ? import_apps(h, err, errlen) : preload_or_defer(h, err, errlen)) goto fail;
    if (register_routes(h, ctx, err, errlen)) goto fail;
    *state = h;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    host_free(h);
    return -1;
}

static int wsgi_worker_init(void *state, int worker_id)
{
    wsgi_host *h = state;
    (void)worker_id;
    if (h->py_pid != getpid()) {
        wsgi_py_after_fork(); /* the master held the GIL across fork() */
        h->py_pid = getpid();
    }
    if (h->deferred) {
        char err[512];
        if (import_apps(h, err, sizeof(err))) {
            wlog("%s (need-app is set): this worker cannot serve", err);
            h->main_tstate = wsgi_py_release();
            return -1;
        }
    }
    h->main_tstate = wsgi_py_release();
    return 0;
}

static int wsgi_thread_init(void *state, int thread_id)
{
    wsgi_host *h = state;
    int token = wsgi_py_thread_enter();
    if (thread_id >= 0 && thread_id < h->ntokens) h->tokens[thread_id] = token;
    return 0;
}

static void wsgi_thread_free(void *state, int thread_id)
{
    wsgi_host *h = state;
    if (thread_id >= 0 && thread_id < h->ntokens) wsgi_py_thread_leave(h->tokens[thread_id]);
}

static int wsgi_ready(void *state)
{
    wsgi_host *h = state;
    for (size_t i = 0; i < h->nmounts; i++)
        if (!h->apps[i].callable) return 0;
    return 1;
}

/* Runs the app's atexit handlers; the interpreter itself is left alone, since
 * tearing down native extensions (torch) crashes (uWSGI #2211). */
static void wsgi_free(void *state)
{
    wsgi_host *h = state;
    if (h->py_pid == getpid()) {
        if (h->main_tstate) wsgi_py_acquire(h->main_tstate);
        wsgi_py_shutdown(!h->skip_atexit);
        if (h->main_tstate) h->main_tstate = wsgi_py_release();
    }
    host_free(h);
}

/* ---- requests ---- */

/* wsgi_io over app.h: one per request, on the handler's stack. */
typedef struct req_io {
    app_request *r;
    int64_t length; /* announced Content-Length, or -1 */
    int64_t sent;
    int ok;
} req_io;

static long rio_read(void *ctx, void *b, size_t n)
{
    return (long)app_read(((req_io *)ctx)->r, b, n);
}

static int rio_start(void *ctx, int status, const char *reason, size_t rlen, const wsgi_header *hs,
                     size_t n, int64_t cl)
{
    req_io *io = ctx;
    int r = app_set_status(io->r, status);
    if (!r) r = app_set_reason(io->r, reason, rlen);
    for (size_t i = 0; i < n && !r; i++)
        r = app_add_header(io->r, hs[i].name, hs[i].name_len, hs[i].value, hs[i].value_len);
    if (!r && cl >= 0) { /* digits by hand: snprintf was a tenth of this path's libc time */
        char num[20];
        size_t k = sizeof(num);
        uint64_t v = (uint64_t)cl;
        do num[--k] = (char)('0' + v % 10);
        while ((v /= 10));
        r = app_add_header(io->r, "Content-Length", 14, num + k, sizeof(num) - k);
    }
    io->length = cl;
    return r;
}

/* Each block goes out before the app is asked for the next (PEP 3333), except
 * the last block of a known length, which app_finish sends with the head. */
static int rio_write(void *ctx, const void *d, size_t n)
{
    req_io *io = ctx;
    int r = app_write(io->r, d, n);
    io->sent += (int64_t)n;
    if (!r && (io->length < 0 || io->sent < io->length)) r = app_flush(io->r);
    return r;
}

static int rio_sendfile(void *ctx, int fd, int64_t off, int64_t len)
{
    req_io *io = ctx;
    io->sent += len;
    return app_sendfile(io->r, fd, (off_t)off, len);
}

static void rio_finish(void *ctx, int ok)
{
    ((req_io *)ctx)->ok = ok;
}

static int wsgi_handle(app_request *r, void *data)
{
    wsgi_app *a = data;
    req_io rio = {r, -1, 0, 0};
    wsgi_io io = {&rio, rio_read, rio_start, rio_write, rio_sendfile, rio_finish, io_log_line};
    if (!a->callable) {
        char body[700];
        snprintf(body, sizeof(body), "500 Internal Server Error: no WSGI app is loaded here (%s)\n",
                 a->error);
        wsgi_call_error(&io, 500, body);
        return rio.ok ? APP_DONE : -EPIPE;
    }
    wsgi_request rq = {
        .method = r->method,
        .method_len = r->method_len,
        .target = r->uri,
        .target_len = r->uri_len,
        .script_name = r->script_name,
        .script_name_len = r->script_name_len,
        .path_info = r->path_info,
        .path_info_len = r->path_info_len,
        .query = r->query,
        .query_len = r->query_len,
        .version_minor = r->minor_version,
        .headers = (const wsgi_header *)r->headers,
        .nheaders = r->num_headers,
        .remote_addr = r->remote_addr,
        .remote_port = r->remote_port,
        .server_name = r->server_name,
        .server_port = r->server_port,
        .content_length = r->content_length,
        .chunked = r->chunked,
        .https = r->https,
        .https_dn = r->https_dn,
        .request_id = r->request_id,
    };
    PyGILState_STATE g = PyGILState_Ensure();
    wsgi_call_run(a->host->types, a->callable, &rq, 0, &a->host->flags, &io);
    PyGILState_Release(g);
    return rio.ok ? APP_DONE : -EPIPE;
}

static int register_routes(wsgi_host *h, app_ctx *ctx, char *err, size_t errlen)
{
    for (size_t i = 0; i < h->nmounts; i++) {
        const char *prefix = *h->mounts[i].prefix ? h->mounts[i].prefix : "/";
        int r = app_route_add(ctx, prefix, APP_RUN_THREAD, wsgi_handle, &h->apps[i]);
        if (r) {
            snprintf(err, errlen, "cannot mount a WSGI app at '%s': %s", prefix,
                     r == -EEXIST ? "the prefix is taken" : strerror(-r));
            return -1;
        }
    }
    return 0;
}

/* py-autoreload: the modules the master imported (none when the import was
 * deferred to the workers: lazy-apps, or the fork probe saw threads). */
static int wsgi_source_files(void *state, void (*add)(void *ctx, const char *path), void *ctx)
{
    wsgi_host *h = state;
    if (!h || h->deferred) return 0;
    return wsgi_py_module_files(add, ctx);
}

const app_kind app_kind_wsgi = {
    .name = "wsgi",
    .options = wsgi_options,
    .configured = wsgi_configured,
    .load = wsgi_load,
    .worker_init = wsgi_worker_init,
    .thread_init = wsgi_thread_init,
    .thread_free = wsgi_thread_free,
    .ready = wsgi_ready,
    .free = wsgi_free,
    .source_files = wsgi_source_files,
};
