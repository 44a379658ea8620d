/*
 * builtin: the endpoints every worker serves with no app: health, metrics,
 * the httpbin-style delay (on the event loop: a timer, no thread) and hello
 * (static-map is static.c's). Where they answer (main listeners, the admin
 * listener, the `builtins` option) is the route table's business (srv.c).
 */
#define _GNU_SOURCE
#include "server/core.h"

#include "lib/pct.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void reply(app_request *r, int status, const char *ctype, const char *body, size_t len)
{
    app_set_status(r, status);
    app_add_header(r, "Content-Type", 12, ctype, strlen(ctype));
    app_write(r, body, len);
}

static int method_is(const app_request *r, const char *m)
{
    return http1_method_is(r->method, r->method_len, m);
}

static int only_get(app_request *r)
{
    if (method_is(r, "GET") || method_is(r, "HEAD")) return 0;
    app_add_header(r, "Allow", 5, "GET, HEAD", 9);
    reply(r, 405, "text/plain", "method not allowed\n", 19);
    return 1;
}

static int hello_handler(app_request *r, void *data)
{
    (void)data;
    reply(r, 200, "text/plain", "hello\n", 6);
    return APP_DONE;
}

static int live_handler(app_request *r, void *data)
{
    (void)data;
    if (only_get(r)) return APP_DONE;
    reply(r, 200, "application/json", "{\"status\":\"live\"}\n", 18);
    return APP_DONE;
}

static int ready_handler(app_request *r, void *data)
{
    srv *s = data;
    if (only_get(r)) return APP_DONE;
    int want, ready = srv_workers_ready(s, &want);
    char why[512] = "";
    int ok = ready >= want;
    /* Strict readiness (Triton's): an app or model that failed to load keeps it 503. */
    for (int i = 0; i < s->napps && !why[0]; i++)
        if (!s->apps[i].loaded)
            snprintf(why, sizeof(why), "app '%s' failed to load (see the log)",
                     s->apps[i].kind->name);
        else if (s->apps[i].kind->failed)
            s->apps[i].kind->failed(s->apps[i].state, why, sizeof(why));
    ok = ok && !why[0];
    buf b = BUF_INIT;
    int rc = buf_printf(&b, "{\"status\":\"%s\",\"ready_workers\":%d,\"workers\":%d",
                        ok ? "ready" : "not ready", ready, want);
    if (!rc && why[0]) rc = buf_puts(&b, ",\"reason\":") || buf_json_str(&b, why, strlen(why));
    if (!rc) rc = buf_puts(&b, "}\n");
    if (rc)
        reply(r, 503, "application/json", "{\"status\":\"not ready\"}\n", 24);
    else
        reply(r, ok ? 200 : 503, "application/json", b.data, b.len);
    buf_free(&b);
    return APP_DONE;
}

static int metrics_handler(app_request *r, void *data)
{
    srv *s = data;
    if (only_get(r)) return APP_DONE;
    buf out = BUF_INIT;
    sb_render_metrics(s->sb, s->listen_fds, (const char *const *)s->listen_names, s->nlisten, &out);
    for (int i = 0; i < s->napps; i++)
        if (s->apps[i].loaded && s->apps[i].kind->metrics)
            s->apps[i].kind->metrics(s->apps[i].state, &out);
    reply(r, 200, "text/plain; version=0.0.4", out.data ? out.data : "", out.len);
    buf_free(&out);
    return APP_DONE;
}

/* ---- /delay/{seconds}: httpbin.org's, on a timer ---- */

/* Form-decodes s[0..n) ('+' is a space) and appends it as a JSON string. */
static void json_decoded(buf *b, const char *s, size_t n)
{
    char tmp[512];
    buf t = BUF_INIT;
    int heap = n > sizeof(tmp);
    if (heap && buf_reserve(&t, n + 1)) return;
    char *d = heap ? t.data : tmp;
    long j = pct_decode(s, n, d, n, PCT_PLUS | PCT_LENIENT); /* never fails: lenient, room for n */
    buf_json_str(b, d, j > 0 ? (size_t)j : 0);
    buf_free(&t);
}

/* "a=1&b=2" -> {"a":"1","b":"2"} */
static void json_form(buf *b, const char *q, size_t n)
{
    buf_puts(b, "{");
    size_t i = 0;
    int first = 1;
    while (i < n) {
        size_t s = i;
        while (i < n && q[i] != '&') i++;
        const char *eq = memchr(q + s, '=', i - s);
        size_t kl = eq ? (size_t)(eq - (q + s)) : i - s;
        if (i > s) {
            if (!first) buf_puts(b, ", ");
            first = 0;
            json_decoded(b, q + s, kl);
            buf_puts(b, ": ");
            if (eq)
                json_decoded(b, eq + 1, (size_t)(q + i - eq - 1));
            else
                buf_puts(b, "\"\"");
        }
        i++;
    }
    buf_puts(b, "}");
}

static void delay_fire(ev_loop *loop, void *data)
{
    (void)loop;
    app_request *r = data;
    buf b = BUF_INIT;
    const http1_header *ct = app_header(r, "content-type");
    int form = ct && ct->value_len >= 33 &&
               http1_token_eq(ct->value, 33, "application/x-www-form-urlencoded");
    buf_puts(&b, "{\n  \"args\": ");
    json_form(&b, r->query, r->query_len);
    buf_puts(&b, ",\n  \"data\": ");
    if (form)
        buf_json_str(&b, "", 0);
    else
        buf_json_str(&b, r->body ? r->body : "", r->body_len);
    buf_puts(&b, ",\n  \"files\": {},\n  \"form\": ");
    if (form)
        json_form(&b, r->body ? r->body : "", r->body_len);
    else
        buf_puts(&b, "{}");
    buf_puts(&b, ",\n  \"headers\": {");
    for (size_t i = 0; i < r->num_headers; i++) {
        buf_puts(&b, i ? ", " : "");
        buf_json_str(&b, r->headers[i].name, r->headers[i].name_len);
        buf_puts(&b, ": ");
        buf_json_str(&b, r->headers[i].value, r->headers[i].value_len);
    }
    buf_puts(&b, "},\n  \"origin\": ");
    buf_json_str(&b, r->remote_addr, strlen(r->remote_addr));
    buf_puts(&b, ",\n  \"url\": ");
    const http1_header *host = app_header(r, "host");
    buf u = BUF_INIT;
    buf_puts(&u, "http://");
    if (host)
        buf_append(&u, host->value, host->value_len);
    else
        buf_printf(&u, "%s:%d", r->server_name, r->server_port);
    buf_append(&u, r->uri, r->uri_len);
    buf_json_str(&b, u.data, u.len);
    buf_free(&u);
    buf_puts(&b, "\n}\n");
    if (b.data)
        reply(r, 200, "application/json", b.data, b.len);
    else
        reply(r, 500, "text/plain", "out of memory\n", 14);
    buf_free(&b);
    app_finish(r);
}

static int delay_handler(app_request *r, void *data)
{
    (void)data;
    if (!method_is(r, "GET") && !method_is(r, "POST") && !method_is(r, "HEAD")) {
        app_add_header(r, "Allow", 5, "GET, POST, HEAD", 15);
        reply(r, 405, "text/plain", "method not allowed\n", 19);
        return APP_DONE;
    }
    const char *p = r->path_info;
    char *end;
    double secs = -1;
    if (p[0] == '/' && p[1] && p[1] != ' ' && p[1] != '+' && p[1] != '-') {
        errno = 0;
        secs = strtod(p + 1, &end);
        if (errno || *end || !isfinite(secs)) secs = -1;
    }
    if (secs < 0) {
        reply(r, 400, "application/json", "{\"error\":\"expected /delay/{seconds}\"}\n", 38);
        return APP_DONE;
    }
    if (secs > 10) secs = 10; /* httpbin's cap */
    if (!ev_timer_add(r->loop, (uint64_t)(secs * 1000 + 0.5), delay_fire, r)) {
        reply(r, 503, "text/plain", "out of memory\n", 14);
        return APP_DONE;
    }
    return APP_PENDING;
}

/* /sleep/{seconds}: blocks an app thread (tests of harakiri, threads, drain). */
static int sleep_handler(app_request *r, void *data)
{
    (void)data;
    char *end;
    double secs = r->path_info[0] == '/' ? strtod(r->path_info + 1, &end) : -1;
    if (secs < 0 || secs > 3600 || (r->path_info[0] == '/' && *end)) {
        reply(r, 400, "text/plain", "expected /{seconds}\n", 20);
        return APP_DONE;
    }
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"slept\":%g,\"worker\":%d,\"thread\":%d}\n", secs,
                     r->worker_id, r->thread_id);
    reply(r, 200, "application/json", body, (size_t)n);
    return APP_DONE;
}

/* The built-ins' routes, each tagged with its SRV_BI_* bit: srv_route_find
 * decides per listener (and `builtins`) whether a request reaches them. */
int builtin_register(srv *s)
{
    const srv_settings *st = &s->s;
    char path[512];
    int rc = 0;
    if (st->hello_route)
        rc |= srv_route_add(s, st->hello_route, SRV_MATCH_EXACT, APP_RUN_LOOP, hello_handler, s,
                            SRV_BI_HELLO);
    if (st->health_route) {
        snprintf(path, sizeof(path), "%s/live",
                 strcmp(st->health_route, "/") ? st->health_route : "");
        rc |= srv_route_add(s, path, SRV_MATCH_EXACT, APP_RUN_LOOP, live_handler, s, SRV_BI_HEALTH);
        snprintf(path, sizeof(path), "%s/ready",
                 strcmp(st->health_route, "/") ? st->health_route : "");
        rc |=
            srv_route_add(s, path, SRV_MATCH_EXACT, APP_RUN_LOOP, ready_handler, s, SRV_BI_HEALTH);
    }
    if (st->metrics_route)
        rc |= srv_route_add(s, st->metrics_route, SRV_MATCH_EXACT, APP_RUN_LOOP, metrics_handler, s,
                            SRV_BI_METRICS);
    if (st->delay_route)
        rc |= srv_route_add(s, st->delay_route, SRV_MATCH_PREFIX, APP_RUN_LOOP, delay_handler, s,
                            SRV_BI_DELAY);
    if (st->sleep_route)
        rc |= srv_route_add(s, st->sleep_route, SRV_MATCH_PREFIX, APP_RUN_THREAD, sleep_handler, s,
                            SRV_BI_SLEEP);
    for (size_t i = 0; i < st->nstatics; i++) {
        snprintf(path, sizeof(path), "static:%s", st->statics[i].prefix);
        s->s.statics[i].metric = sb_route_metric(s->sb, path);
    }
    return rc ? -1 : 0;
}
