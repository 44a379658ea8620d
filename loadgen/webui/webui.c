/*
 * Routes of the web UI. Every handler runs on the UI thread and talks to the
 * runner only through its thread-safe API, which never blocks on the network,
 * so a slow target can not stall the page.
 */
#define _GNU_SOURCE
#include "loadgen/report.h"
#include "loadgen/webui/webui.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/ev.h"
#include "loadgen/webui/assets.h"
#include "loadgen/webui/auth.h"
#include "loadgen/webui/http.h"
#include "loadgen/webui/ratio.h"
#include "loadgen/webui/render.h"

#define TICK_MS 100

/* The page loads and talks to nothing but this aiload, and no other site may
 * frame it. The report inlines everything and carries its own, stricter
 * policy (webui/report.c). */
#define PAGE_CSP                                                                                   \
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "                 \
    "frame-ancestors 'none'"
#define REPORT_CSP                                                                                 \
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

struct webui {
    webui_backend be;
    ev_loop *loop;
    webui_http *http;
    webui_auth auth;
    uint64_t epoch; /* bumped whenever the history starts over */
    int64_t history_first;
    double autoquit_s;
    int autoquit_armed;  /* a test has run, so its end may quit the UI */
    uint64_t stopped_at; /* monotonic ms the run was first seen stopped; 0: running */
    char *html_path;
    char *script;
    /* the form's defaults */
    int users;
    double spawn_rate;
    char host[256];
    double run_time_s;
    double rate; /* --rate: the form's test runs the open model too */
    const runner_stage *stages;
    size_t nstages;
    volatile sig_atomic_t *quit;
    uint64_t tick;
    void (*workers_json)(void *ctx, buf *out); /* distributed master, or NULL */
    int (*worker_count)(void *ctx);
    void *workers_ctx;
    char shape[128]; /* the LoadTestShape driving the test ("": none) */
};

typedef void (*route_fn)(webui *w, const webui_req *q, webui_resp *p);

int webui_parse_run_time(const char *s, double *seconds)
{
    double total = 0;
    const char *p = s;
    int parts = 0, last_unit = 4; /* units must come in the order h, m, s */
    while (isspace((unsigned char)*p)) p++;
    while (*p && !isspace((unsigned char)*p)) {
        char *end;
        if (!isdigit((unsigned char)*p) && *p != '.') return -EINVAL;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v) || v < 0) return -EINVAL;
        p = end;
        int unit = *p == 'h' ? 3 : *p == 'm' ? 2 : *p == 's' ? 1 : 0;
        if (unit == 0) {
            if (parts || (*p && !isspace((unsigned char)*p))) return -EINVAL;
            total = v; /* a bare number means seconds */
            parts++;
            break;
        }
        if (unit >= last_unit) return -EINVAL;
        last_unit = unit;
        total += v * (unit == 3 ? 3600 : unit == 2 ? 60 : 1);
        parts++;
        p++;
    }
    while (isspace((unsigned char)*p)) p++;
    if (*p || total > 366.0 * 86400) return -EINVAL;
    *seconds = total;
    return 0;
}

/* ---- response helpers ---- */

static void reply_json_msg(webui_resp *p, int status, int success, const char *msg)
{
    p->status = status;
    p->type = "application/json";
    buf_printf(&p->body, "{\"success\":%s,\"message\":", success ? "true" : "false");
    buf_json_cstr(&p->body, msg);
    buf_puts(&p->body, "}");
}

static void reply_text(webui_resp *p, int status, const char *text)
{
    p->status = status;
    p->type = "text/plain; charset=utf-8";
    buf_puts(&p->body, text);
}

static void attachment(webui_resp *p, const char *what, const char *ext)
{
    time_t now = time(NULL);
    snprintf(p->disposition, sizeof(p->disposition), "attachment; filename=\"aiload_%s_%lld.%s\"",
             what, (long long)now, ext);
}

static void reply_csv(webui_resp *p, int rc, const char *what)
{
    if (rc) return reply_text(p, 500, "out of memory\n");
    p->type = "text/csv; charset=utf-8";
    attachment(p, what, "csv");
}

static int query_flag(const webui_req *q, const char *key)
{
    char v[8];
    int n = webui_form_get(q->query, q->query_len, key, v, sizeof(v));
    return n > 0 && strcmp(v, "0") && strcmp(v, "false");
}

/* ---- routes ---- */

static void history_sync(webui *w)
{
    /* The runner clears its history on a reset or a fresh start; a different
     * first second tells the page to drop what it has drawn. */
    runner_history_point first;
    int64_t t = w->be.history_get(w->be.ctx, 0, &first, 1) ? first.time : 0;
    if (t != w->history_first) {
        if (w->history_first) w->epoch++;
        w->history_first = t;
    }
}

/* Reads a form field of POST /swarm. Returns its length, -ENOENT when absent
 * or empty, or -1 after answering 400 (bad %-encoding, too long). */
static int swarm_field(const webui_req *q, webui_resp *p, const char *key, char *out, size_t len)
{
    int n = webui_form_get(q->body, q->body_len, key, out, len);
    if (n == 0) return -ENOENT;
    if (n >= 0 || n == -ENOENT) return n;
    char msg[96];
    snprintf(msg, sizeof(msg), "%s: %s", key,
             n == -ENAMETOOLONG ? "value too long" : "bad %-encoding or a NUL byte");
    reply_json_msg(p, 400, 0, msg);
    return -1;
}

/* The form's user_count and spawn_rate into sp. 0, or -1 once p holds the 400. */
static int parse_users(const webui_req *q, webui_resp *p, runner_start_params *sp)
{
    char users[32], rate[32], *end;
    const char *bad = NULL;
    int n = swarm_field(q, p, "user_count", users, sizeof(users));
    if (n == -1) return -1;
    long u = n > 0 ? strtol(users, &end, 10) : 0;
    if (n < 0)
        bad = "user_count is required";
    else if (end == users || *end || u < 1 || u > 1000000)
        bad = "user_count must be a whole number from 1 to 1000000";
    sp->users = (int)u;
    if (!bad && (n = swarm_field(q, p, "spawn_rate", rate, sizeof(rate))) == -1) return -1;
    if (!bad && n > 0) {
        sp->spawn_rate = strtod(rate, &end);
        if (end == rate || *end || !isfinite(sp->spawn_rate) || sp->spawn_rate <= 0)
            bad = "spawn_rate must be a number above 0";
    }
    if (!bad) return 0;
    reply_json_msg(p, 400, 0, bad);
    return -1;
}

static void route_swarm(webui *w, const webui_req *q, webui_resp *p)
{
    char host[256], run_time[64], err[256];
    runner_start_params sp = {
        .spawn_rate = w->spawn_rate, .rate = w->rate, .stages = w->stages, .nstages = w->nstages};
    runner_state st = w->be.state(w->be.ctx);
    int editing = st == RUNNER_SPAWNING || st == RUNNER_RUNNING;
    int n;
    if (w->shape[0]) { /* the shape sets users and spawn rate: the form's are not read */
        if (editing) {
            char msg[256];
            snprintf(msg, sizeof(msg),
                     "%s (a LoadTestShape) drives this test: stop it to start another", w->shape);
            return reply_json_msg(p, 400, 0, msg);
        }
    } else if (parse_users(q, p, &sp)) {
        return;
    }
    if ((n = swarm_field(q, p, "host", host, sizeof(host))) == -1) return;
    sp.host = n > 0 ? host : (w->host[0] ? w->host : NULL);
    if ((n = swarm_field(q, p, "run_time", run_time, sizeof(run_time))) == -1) return;
    if (n > 0 && webui_parse_run_time(run_time, &sp.run_time_s))
        return reply_json_msg(p, 400, 0,
                              "run_time is not a time span (use e.g. 20, 20s, 3m, 2h, 1h20m)");
    if (w->be.start(w->be.ctx, &sp, err, sizeof(err))) return reply_json_msg(p, 400, 0, err);
    w->autoquit_armed = 1;
    w->stopped_at = 0;
    history_sync(w);
    p->type = "application/json";
    buf_puts(&p->body, "{\"success\":true,\"message\":");
    const char *msg = editing       ? "Swarming changed"
                      : w->shape[0] ? "Swarming started using shape class"
                                    : "Swarming started";
    buf_json_cstr(&p->body, msg);
    runner_snapshot *s = w->be.snapshot(w->be.ctx);
    if (s) {
        buf_puts(&p->body, ",\"host\":");
        buf_json_cstr(&p->body, s->host);
        runner_snapshot_free(s);
    }
    if (sp.run_time_s > 0 && !editing) buf_printf(&p->body, ",\"run_time\":%.0f", sp.run_time_s);
    buf_puts(&p->body, "}");
}

static void route_stop(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    w->be.stop(w->be.ctx);
    reply_json_msg(p, 200, 1, "Test stopped");
}

static void route_reset(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    w->be.reset(w->be.ctx);
    w->epoch++;
    w->history_first = 0;
    reply_text(p, 200, "ok");
}

static void route_requests(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    runner_snapshot *s = w->be.snapshot(w->be.ctx);
    if (!s || webui_render_stats_json(s, &p->body)) {
        runner_snapshot_free(s);
        return reply_text(p, 500, "out of memory\n");
    }
    /* "where the time went" when responses carried Server-Timing (an extra
     * key Locust's page ignores; ours shows it under the statistics) */
    if (s->timing_count && p->body.len && p->body.data[p->body.len - 1] == '}') {
        p->body.len--;
        report_json_timing(&p->body, s);
        buf_puts(&p->body, "}");
    }
    runner_snapshot_free(s);
    /* a master's workers, as Locust's /stats/requests lists them */
    if (w->workers_json && p->body.len && p->body.data[p->body.len - 1] == '}') {
        p->body.len--;
        buf_printf(&p->body, ",\"worker_count\":%d,\"workers\":", w->worker_count(w->workers_ctx));
        w->workers_json(w->workers_ctx, &p->body);
        buf_printf(&p->body, "}");
    }
    p->type = "application/json";
}

static void route_history(webui *w, const webui_req *q, webui_resp *p)
{
    char v[24];
    size_t from = 0;
    if (webui_form_get(q->query, q->query_len, "from", v, sizeof(v)) > 0) {
        char *end;
        unsigned long long f = strtoull(v, &end, 10);
        if (end == v || *end || v[0] == '-') return reply_text(p, 400, "from: not a number\n");
        from = (size_t)f;
    }
    history_sync(w);
    size_t len = w->be.history_len(w->be.ctx);
    size_t n = from < len ? len - from : 0;
    runner_history_point *pts = malloc((n ? n : 1) * sizeof(*pts));
    if (!pts) return reply_text(p, 500, "out of memory\n");
    n = w->be.history_get(w->be.ctx, from, pts, n);
    int rc = webui_render_history_json(pts, n, from, w->epoch, &p->body);
    free(pts);
    if (rc) return reply_text(p, 500, "out of memory\n");
    p->type = "application/json";
}

static void route_csv_stats(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    reply_csv(p, w->be.csv(w->be.ctx, WEBUI_CSV_STATS, &p->body), "requests");
}

static void route_csv_history(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    reply_csv(p, w->be.csv(w->be.ctx, WEBUI_CSV_HISTORY, &p->body), "stats_history");
}

static void route_csv_failures(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    reply_csv(p, w->be.csv(w->be.ctx, WEBUI_CSV_FAILURES, &p->body), "failures");
}

static void route_csv_exceptions(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    reply_csv(p, w->be.csv(w->be.ctx, WEBUI_CSV_EXCEPTIONS, &p->body), "exceptions");
}

static void route_exceptions(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    p->type = "application/json";
    if (!w->be.exceptions_json) {
        buf_puts(&p->body, "{\"exceptions\":[]}");
    } else if (w->be.exceptions_json(w->be.ctx, &p->body)) {
        buf_reset(&p->body);
        reply_text(p, 500, "out of memory\n");
    }
}

static void route_summary(webui *w, const webui_req *q, webui_resp *p)
{
    if (w->be.summary(w->be.ctx, &p->body)) return reply_text(p, 500, "out of memory\n");
    p->type = "application/json";
    if (query_flag(q, "download")) attachment(p, "summary", "json");
}

static void route_report(webui *w, const webui_req *q, webui_resp *p)
{
    if (webui_report_backend(&w->be, w->script, &p->body))
        return reply_text(p, 500, "out of memory\n");
    p->type = "text/html; charset=utf-8";
    p->csp = REPORT_CSP;
    if (query_flag(q, "download")) attachment(p, "report", "html");
}

static void route_metrics(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    runner_snapshot *s = w->be.snapshot(w->be.ctx);
    if (!s || webui_render_metrics(s, &p->body)) {
        runner_snapshot_free(s);
        return reply_text(p, 500, "out of memory\n");
    }
    runner_snapshot_free(s);
    p->type = "text/plain; version=0.0.4; charset=utf-8";
}

/* The class shares of GET /tasks and the report's "Final ratio": users
 * running now weigh the classes (Locust 2.12); before a test or after it, the
 * split of the test's user count (or of form_users before any test), so the
 * tab is useful before pressing Start. A calloc'd array of
 * scenario_class_count() shares, or NULL (out of memory). */
static double *class_shares(const scenario *sc, const runner_snapshot *s, int form_users,
                            double form_rate)
{
    size_t nc = scenario_class_count(sc);
    double *share = calloc(nc ? nc : 1, sizeof(double));
    if (!share) return NULL;
    int live = s->state == RUNNER_SPAWNING || s->state == RUNNER_RUNNING;
    webui_ratio_input in = {
        .users = s->target_users > 0 ? s->target_users : form_users,
        .open_model = s->state == RUNNER_READY ? form_rate > 0 : s->open_model,
        .live = live ? s->class_users : NULL,
        .nlive = s->nclasses,
    };
    webui_ratio_shares(sc, &in, share);
    return share;
}

/* GET /tasks: Locust's "Current ratio". */
static void route_tasks(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    runner_snapshot *s = w->be.snapshot(w->be.ctx);
    if (!w->be.sc) { /* a Python locustfile: the backend knows its classes */
        runner_snapshot_free(s);
        p->type = "application/json";
        if (!w->be.tasks_json) {
            buf_puts(&p->body, "{\"per_class\":{},\"total\":{}}");
        } else if (w->be.tasks_json(w->be.ctx, &p->body)) {
            buf_reset(&p->body);
            reply_text(p, 500, "out of memory\n");
        }
        return;
    }
    double *share = s ? class_shares(w->be.sc, s, w->users, w->rate) : NULL;
    int rc = share ? webui_render_tasks_json(w->be.sc, share, &p->body) : -ENOMEM;
    free(share);
    runner_snapshot_free(s);
    if (rc) return reply_text(p, 500, "out of memory\n");
    p->type = "application/json";
}

static void route_defaults(webui *w, const webui_req *q, webui_resp *p)
{
    (void)q;
    p->type = "application/json";
    buf_printf(&p->body, "{\"user_count\":%d,\"spawn_rate\":%g,\"host\":", w->users, w->spawn_rate);
    buf_json_cstr(&p->body, w->host);
    buf_printf(&p->body, ",\"run_time\":%g", w->run_time_s);
    if (w->shape[0]) buf_puts(&p->body, ",\"shape\":"), buf_json_cstr(&p->body, w->shape);
    buf_puts(&p->body, "}");
}

static const struct route {
    const char *method;
    const char *path;
    route_fn fn;
} routes[] = {
    {"POST", "/swarm", route_swarm},
    {"GET", "/stop", route_stop},
    {"GET", "/stats/reset", route_reset},
    {"GET", "/stats/requests", route_requests},
    {"GET", "/stats/history", route_history},
    {"GET", "/stats/requests/csv", route_csv_stats},
    {"GET", "/stats/requests_full_history/csv", route_csv_history},
    {"GET", "/stats/failures/csv", route_csv_failures},
    {"GET", "/exceptions/csv", route_csv_exceptions},
    {"GET", "/exceptions", route_exceptions},
    {"GET", "/stats/summary", route_summary},
    {"GET", "/stats/report", route_report},
    {"GET", "/defaults", route_defaults},
    {"GET", "/metrics", route_metrics},
    {"GET", "/tasks", route_tasks},
};

/* A browser sends Origin with every cross-site POST: a page elsewhere must not
 * be able to start load from the user's machine (CSRF). Non-browser clients
 * send no Origin and are let through. */
static int cross_site(const webui_req *q)
{
    const http1_header *o = http1_find_header(q->headers, q->nheaders, "Origin");
    const http1_header *h = http1_find_header(q->headers, q->nheaders, "Host");
    if (!o) return 0;
    const char *v = o->value;
    size_t n = o->value_len;
    if (n > 7 && !memcmp(v, "http://", 7))
        v += 7, n -= 7;
    else if (n > 8 && !memcmp(v, "https://", 8))
        v += 8, n -= 8;
    else
        return 1;
    return !h || h->value_len != n || memcmp(h->value, v, n) != 0;
}

static void handle(const webui_req *q, webui_resp *p, void *data)
{
    webui *w = data;
    int is_get = webui_req_method_is(q, "GET") || webui_req_method_is(q, "HEAD");
    p->csp = PAGE_CSP;
    /* before anything else: an unauthenticated client learns nothing, not
     * even which paths exist */
    const http1_header *a = http1_find_header(q->headers, q->nheaders, "Authorization");
    if (!webui_auth_check(&w->auth, a ? a->value : NULL, a ? a->value_len : 0)) {
        p->www_authenticate = WEBUI_AUTH_CHALLENGE;
        return reply_text(p, 401, "401 Unauthorized: this aiload needs --web-auth credentials\n");
    }
    if (webui_req_method_is(q, "POST") && cross_site(q))
        return reply_json_msg(p, 403, 0, "cross-site request refused (Origin does not match Host)");
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!webui_req_path_is(q, routes[i].path)) continue;
        int ok = !strcmp(routes[i].method, "GET") ? is_get : webui_req_method_is(q, "POST");
        if (!ok) return reply_text(p, 405, "405 Method Not Allowed\n");
        return routes[i].fn(w, q, p);
    }
    const webui_asset *as = webui_asset_find(q->path, q->path_len);
    if (as && webui_req_path_is(q, "/report.js")) as = NULL; /* report-only code */
    if (!as) return reply_text(p, 404, "404 Not Found\n");
    if (!is_get) return reply_text(p, 405, "405 Method Not Allowed\n");
    p->type = as->type;
    p->static_data = as->data;
    p->static_len = as->len;
}

/* ---- lifecycle ---- */

int webui_report_backend(const webui_backend *b, const char *script, buf *out)
{
    runner_snapshot *s = b->snapshot(b->ctx);
    if (!s) return -ENOMEM;
    size_t n = b->history_len(b->ctx);
    runner_history_point *pts = malloc((n ? n : 1) * sizeof(*pts));
    buf exc = BUF_INIT, tasks = BUF_INIT;
    int rc = pts && (!b->exceptions_html || !b->exceptions_html(b->ctx, &exc)) ? 0 : -ENOMEM;
    /* without a scenario (a Python locustfile) the ratios come as /tasks's JSON */
    int py_tasks = !b->sc && b->tasks_json && !b->tasks_json(b->ctx, &tasks);
    if (!rc) {
        n = b->history_get(b->ctx, 0, pts, n);
        double *share = b->sc ? class_shares(b->sc, s, 1, 0) : NULL;
        webui_report_meta meta = {.script = script,
                                  .sc = share ? b->sc : NULL,
                                  .class_share = share,
                                  .exceptions_html = b->exceptions_html ? &exc : NULL,
                                  .tasks_json = py_tasks ? &tasks : NULL};
        rc = webui_render_report(s, pts, n, &meta, out);
        free(share);
    }
    buf_free(&exc);
    buf_free(&tasks);
    free(pts);
    runner_snapshot_free(s);
    return rc;
}

int webui_report(runner *r, const char *script, buf *out)
{
    webui_backend b = webui_backend_runner(r);
    return webui_report_backend(&b, script, out);
}

static void tick(ev_loop *loop, void *data)
{
    webui *w = data;
    w->tick = 0;
    if (w->quit && *w->quit) return ev_loop_stop(loop);
    runner_state st = w->be.state(w->be.ctx);
    if (st == RUNNER_SPAWNING || st == RUNNER_RUNNING) {
        w->autoquit_armed = 1;
        w->stopped_at = 0;
    } else if (st == RUNNER_STOPPED && w->autoquit_armed && w->autoquit_s >= 0) {
        uint64_t now = ev_now_ms(loop);
        if (!w->stopped_at) w->stopped_at = now;
        if ((double)(now - w->stopped_at) >= w->autoquit_s * 1000.0) return ev_loop_stop(loop);
    }
    w->tick = ev_timer_add(loop, TICK_MS, tick, w);
}

webui *webui_create(runner *r, const webui_opts *o, char *err, size_t errlen)
{
    webui_backend b = webui_backend_runner(r);
    return webui_create_backend(&b, o, err, errlen);
}

webui *webui_create_backend(const webui_backend *b, const webui_opts *o, char *err, size_t errlen)
{
    webui *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->be = *b;
    if (webui_auth_init(&w->auth, o->auth, err, errlen)) {
        free(w);
        return NULL;
    }
    w->autoquit_s = o->autoquit_s;
    w->workers_json = o->workers_json;
    w->worker_count = o->worker_count;
    w->workers_ctx = o->workers_ctx;
    snprintf(w->shape, sizeof(w->shape), "%s", o->shape ? o->shape : "");
    w->users = o->start.users > 0 ? o->start.users : 1;
    w->rate = o->start.rate;
    w->stages = o->start.stages;
    w->nstages = o->start.nstages;
    w->spawn_rate = o->start.spawn_rate > 0 ? o->start.spawn_rate : 1;
    w->run_time_s = o->start.run_time_s;
    const char *host = o->start.host && o->start.host[0] ? o->start.host : o->default_host;
    snprintf(w->host, sizeof(w->host), "%s", host ? host : "");
    w->script = o->script ? strdup(o->script) : NULL;
    w->html_path = o->html_path ? strdup(o->html_path) : NULL;
    w->loop = ev_loop_new();
    if (!w->loop || (o->script && !w->script) || (o->html_path && !w->html_path)) {
        snprintf(err, errlen, "out of memory");
        webui_free(w);
        return NULL;
    }
    w->http = webui_http_create(w->loop, o->web_host ? o->web_host : "127.0.0.1", o->web_port,
                                handle, w, err, errlen);
    if (!w->http) {
        webui_free(w);
        return NULL;
    }
    if (o->autostart && w->be.start(w->be.ctx, &o->start, err, errlen)) {
        webui_free(w);
        return NULL;
    }
    return w;
}

void webui_free(webui *w)
{
    if (!w) return;
    webui_http_free(w->http);
    if (w->loop) ev_loop_free(w->loop);
    free(w->script);
    free(w->html_path);
    free(w);
}

int webui_port(const webui *w)
{
    return webui_http_port(w->http);
}

int webui_run(webui *w, volatile sig_atomic_t *quit)
{
    w->quit = quit;
    w->tick = ev_timer_add(w->loop, TICK_MS, tick, w);
    if (!w->tick) return -ENOMEM;
    int rc = ev_loop_run(w->loop);
    ev_timer_cancel(w->loop, w->tick);
    if (w->html_path) {
        buf b = BUF_INIT;
        int wr = webui_report_backend(&w->be, w->script, &b);
        if (!wr) wr = runner_write_file(w->html_path, &b);
        buf_free(&b);
        if (wr && !rc) rc = wr;
    }
    return rc;
}
