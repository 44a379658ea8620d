/*
 * runner_dist: the runner's side of distributed mode (runner.h, "distributed
 * mode"): the delta a worker reports and the master's per-class dispatch.
 * Kept apart from runner.c, which only calls runner_delta_add() at each merge
 * and honours class_fixed when splitting users over its threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loadgen/report.h"
#include "loadgen/runner_int.h"

runner_delta *runner_delta_create(size_t nentries)
{
    runner_delta *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->nentries = nentries;
    d->st = lg_stats_create(nentries);
    d->sec_nreq = calloc(RUNNER_DELTA_SECS * (nentries + 1), sizeof(uint64_t));
    d->sec_nfail = calloc(RUNNER_DELTA_SECS * (nentries + 1), sizeof(uint64_t));
    if (!d->st || !d->sec_nreq || !d->sec_nfail) {
        runner_delta_free(d);
        return NULL;
    }
    return d;
}

void runner_delta_free(runner_delta *d)
{
    if (!d) return;
    lg_stats_free(d->st);
    free(d->sec_nreq);
    free(d->sec_nfail);
    free(d);
}

void runner_delta_reset(runner_delta *d)
{
    lg_stats_reset(d->st);
    size_t n = RUNNER_DELTA_SECS * (d->nentries + 1);
    memset(d->sec_nreq, 0, n * sizeof(uint64_t));
    memset(d->sec_nfail, 0, n * sizeof(uint64_t));
    d->nsec = 0;
    d->last_ts = 0;
}

void runner_delta_add(runner_delta *d, const lg_stats *st, int64_t now)
{
    size_t n = d->nentries, w = n + 1;
    uint64_t req = 0;
    for (size_t i = 0; i < n; i++) req += st->e[i].nreq;
    lg_stats_add(d->st, st);
    if (!req) return;
    /* the slot of this second: a new one, or the last when the ring is full
     * (a report is due every 3 s, so only a stalled reporter gets there) */
    if (!d->nsec || d->sec[d->nsec - 1] < now) {
        if (d->nsec < RUNNER_DELTA_SECS) d->sec[d->nsec++] = now;
    }
    size_t k = d->nsec - 1;
    for (size_t i = 0; i < n; i++) {
        d->sec_nreq[k * w + i] += st->e[i].nreq;
        d->sec_nfail[k * w + i] += st->e[i].nfail;
        d->sec_nreq[k * w + n] += st->e[i].nreq;
        d->sec_nfail[k * w + n] += st->e[i].nfail;
    }
    d->last_ts = (double)now;
}

runner_delta *runner_dist_take(runner *r, runner_delta *fresh)
{
    runner_delta_reset(fresh);
    pthread_mutex_lock(&r->mu);
    runner_delta *out = r->dist;
    r->dist = fresh;
    pthread_mutex_unlock(&r->mu);
    return out;
}

int runner_dist_set_users(runner *r, const int *per_class, const char *host, char *err,
                          size_t errlen)
{
    size_t nc = r->sc->nclasses;
    long total = 0;
    for (size_t k = 0; k < nc; k++) {
        if (per_class[k] < 0) {
            snprintf(err, errlen, "negative user count for class %s",
                     scenario_class_name(r->sc, k));
            return -EINVAL;
        }
        total += per_class[k];
    }
    if (total > 1000000) {
        snprintf(err, errlen, "%ld users is more than one worker takes (1000000)", total);
        return -EINVAL;
    }
    pthread_mutex_lock(&r->mu);
    if (!r->class_fixed && !(r->class_fixed = calloc(nc ? nc : 1, sizeof(int)))) {
        pthread_mutex_unlock(&r->mu);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memcpy(r->class_fixed, per_class, nc * sizeof(int));
    if (r->state == RUNNER_SPAWNING || r->state == RUNNER_RUNNING) {
        r->target_users = (int)total;
        r->spawn_rate = 1e9; /* the master paces the ramp-up, the worker follows at once */
        r->dispatched = -1;  /* the split may change at the same total */
        r->state = RUNNER_SPAWNING;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    pthread_mutex_unlock(&r->mu);
    if (!total) return 0;
    runner_start_params p = {.users = (int)total, .spawn_rate = 1e9, .host = host};
    return runner_start(r, &p, err, errlen);
}

/* ---- master ---- */

runner_state runner_dist_target(runner *r, int *users, char *host, size_t hostlen)
{
    pthread_mutex_lock(&r->mu);
    runner_state st = r->state;
    *users = r->dispatched < 0 ? 0 : r->dispatched;
    if (st != RUNNER_SPAWNING && st != RUNNER_RUNNING) *users = 0;
    snprintf(host, hostlen, "%s", r->host);
    pthread_mutex_unlock(&r->mu);
    return st;
}

void runner_dist_inject(runner *r, const lg_stats *st)
{
    pthread_mutex_lock(&r->mu);
    if (r->remote && (r->state == RUNNER_STOPPED || r->state == RUNNER_READY)) {
        /* a worker's last report after the stop (Locust's workers send it at
         * quit): the control thread no longer merges, so merge here */
        lg_stats_add(r->sec, st);
        runner_merge_locked(r, 0);
    } else if (r->remote) {
        lg_stats_add(r->remote, st);
    }
    pthread_mutex_unlock(&r->mu);
}

void runner_dist_set_remote(runner *r, const int *per_class, int busy, runner_state seen)
{
    pthread_mutex_lock(&r->mu);
    /* a count made before the master saw the stop says nothing about it */
    int stale = r->state == RUNNER_STOPPING &&
                (seen == RUNNER_SPAWNING || seen == RUNNER_RUNNING || seen == RUNNER_READY);
    if (r->remote_class) {
        r->remote_users = 0;
        for (size_t k = 0; k < r->sc->nclasses; k++)
            r->remote_users += r->remote_class[k] = per_class[k];
    }
    if (!stale) r->remote_busy = busy;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void runner_dist_collect(runner *r, int *users, int *inflight)
{
    size_t nc = r->sc->nclasses;
    lg_stats_add(r->sec, r->remote);
    lg_stats_reset(r->remote);
    *users = r->user_count = r->remote_users;
    *inflight += r->remote_busy != 0;
    for (size_t k = 0; k < nc; k++) {
        r->class_tmp[k] = r->remote_class[k];
        int peak = r->class_peak[k] > r->remote_class[k] ? r->class_peak[k] : r->remote_class[k];
        r->class_tmp[nc + k] = peak;
    }
}

void runner_dist_set_stop_timeout(runner *r, double seconds)
{
    if (!(seconds > 0) || seconds > 86400) return;
    pthread_mutex_lock(&r->mu);
    r->opts.stop_timeout_s = seconds;
    pthread_mutex_unlock(&r->mu);
}

/* ---- the master's exceptions table ---- */

#define EXC_MAX_ROWS  1000
#define EXC_MAX_NODES 256
#define EXC_MAX_TEXT  (64 << 10)

struct runner_exc {
    char *msg, *tb;
    uint64_t count;
    char **nodes;
    size_t nnodes;
};

static void exc_row_free(struct runner_exc *e)
{
    free(e->msg);
    free(e->tb);
    for (size_t i = 0; i < e->nnodes; i++) free(e->nodes[i]);
    free(e->nodes);
}

void runner_dist_free_exceptions(runner *r)
{
    for (size_t i = 0; i < r->nexc; i++) exc_row_free(&r->exc[i]);
    free(r->exc);
    r->exc = NULL;
    r->nexc = 0;
}

void runner_dist_exceptions_clear(runner *r)
{
    pthread_mutex_lock(&r->mu);
    runner_dist_free_exceptions(r);
    pthread_mutex_unlock(&r->mu);
}

int runner_has_exceptions(const runner *r)
{
    return r->opts.remote;
}

static void exc_add_node(struct runner_exc *e, const char *node)
{
    for (size_t i = 0; i < e->nnodes; i++)
        if (!strcmp(e->nodes[i], node)) return;
    if (e->nnodes >= EXC_MAX_NODES) return;
    char **n = realloc(e->nodes, (e->nnodes + 1) * sizeof(*n));
    if (!n) return;
    e->nodes = n;
    if ((n[e->nnodes] = strndup(node, 255))) e->nnodes++;
}

uint64_t runner_dist_exception(runner *r, const char *msg, const char *traceback, const char *node)
{
    uint64_t count = 0;
    pthread_mutex_lock(&r->mu);
    struct runner_exc *e = NULL;
    for (size_t i = 0; i < r->nexc && !e; i++)
        if (!strncmp(r->exc[i].msg, msg, EXC_MAX_TEXT) &&
            !strncmp(r->exc[i].tb, traceback, EXC_MAX_TEXT))
            e = &r->exc[i];
    if (!e && r->nexc >= EXC_MAX_ROWS) e = &r->exc[r->nexc - 1];
    if (!e) {
        struct runner_exc *n = realloc(r->exc, (r->nexc + 1) * sizeof(*n));
        if (n) {
            r->exc = n;
            e = &n[r->nexc];
            memset(e, 0, sizeof(*e));
            e->msg = strndup(msg, EXC_MAX_TEXT);
            e->tb = strndup(traceback, EXC_MAX_TEXT);
            if (e->msg && e->tb)
                r->nexc++;
            else {
                exc_row_free(e);
                e = NULL;
            }
        }
    }
    if (e) {
        count = ++e->count;
        exc_add_node(e, node);
    }
    pthread_mutex_unlock(&r->mu);
    return count;
}

/* The nodes as Locust lists them: ", "-joined. */
static int exc_nodes(buf *out, const struct runner_exc *e)
{
    int rc = 0;
    for (size_t i = 0; i < e->nnodes; i++)
        rc |= buf_puts(out, i ? ", " : "") | buf_puts(out, e->nodes[i]);
    return rc;
}

static int html_escape(buf *out, const char *s)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        switch (*s) {
        case '&': rc = buf_puts(out, "&amp;"); break;
        case '<': rc = buf_puts(out, "&lt;"); break;
        case '>': rc = buf_puts(out, "&gt;"); break;
        case '"': rc = buf_puts(out, "&quot;"); break;
        case '\'': rc = buf_puts(out, "&#39;"); break;
        default: rc = buf_append(out, s, 1);
        }
    }
    return rc;
}

enum { EXC_CSV, EXC_JSON, EXC_HTML, EXC_CONSOLE };

static int exc_render(runner *r, buf *out, int how)
{
    buf nodes = BUF_INIT;
    int rc = how == EXC_JSON ? buf_puts(out, "[") : 0;
    pthread_mutex_lock(&r->mu);
    if (how == EXC_HTML)
        rc |= r->nexc ? buf_puts(out, "<div class=\"scroll\"><table class=\"grid\" "
                                      "id=\"exceptions\"><thead><tr><th class=\"n\">Count</th>"
                                      "<th>Message</th><th>Traceback</th><th>Nodes</th></tr>"
                                      "</thead><tbody>\n")
                      : buf_puts(out, "<p class=\"empty\">No exceptions.</p>");
    if (how == EXC_CONSOLE && r->nexc)
        rc |= buf_puts(out, "Exceptions (from the workers)\n"
                            "Count      Message / Nodes / Traceback\n");
    for (size_t i = 0; i < r->nexc; i++) {
        const struct runner_exc *e = &r->exc[i];
        unsigned long long n = (unsigned long long)e->count;
        buf_reset(&nodes);
        rc |= exc_nodes(&nodes, e) | buf_puts(&nodes, "");
        const char *nd = nodes.data ? nodes.data : "";
        switch (how) {
        case EXC_CSV:
            rc |= buf_printf(out, "%llu,", n) | report_csv_field(out, e->msg) | buf_puts(out, ",");
            rc |= report_csv_field(out, e->tb) | buf_puts(out, ",") | report_csv_field(out, nd);
            rc |= buf_puts(out, "\r\n");
            break;
        case EXC_JSON:
            rc |= buf_printf(out, "%s{\"count\":%llu,\"msg\":", i ? "," : "", n);
            rc |= buf_json_cstr(out, e->msg) | buf_puts(out, ",\"traceback\":");
            rc |= buf_json_cstr(out, e->tb) | buf_puts(out, ",\"nodes\":");
            rc |= buf_json_cstr(out, nd) | buf_puts(out, "}");
            break;
        case EXC_HTML:
            rc |= buf_printf(out, "<tr><td class=\"n\">%llu</td><td class=\"err\">", n);
            rc |= html_escape(out, e->msg) | buf_puts(out, "</td><td class=\"err\"><pre>");
            rc |= html_escape(out, e->tb) | buf_puts(out, "</pre></td><td>");
            rc |= html_escape(out, nd) | buf_puts(out, "</td></tr>\n");
            break;
        default:
            rc |= buf_printf(out, "%-10llu %s\n           on %s\n", n, e->msg, nd);
            for (const char *l = e->tb; *l;) { /* the traceback, indented */
                const char *nl = strchr(l, '\n');
                size_t len = nl ? (size_t)(nl - l) : strlen(l);
                rc |= buf_printf(out, "           %.*s\n", (int)len, l);
                l += len + (nl != NULL);
            }
        }
    }
    if (how == EXC_HTML && r->nexc) rc |= buf_puts(out, "</tbody></table></div>");
    if (how == EXC_CONSOLE && r->nexc) rc |= buf_puts(out, "\n");
    pthread_mutex_unlock(&r->mu);
    if (how == EXC_JSON) rc |= buf_puts(out, "]");
    buf_free(&nodes);
    return rc ? -ENOMEM : 0;
}

int runner_exceptions_csv_rows(runner *r, buf *out)
{
    return exc_render(r, out, EXC_CSV);
}

int runner_exceptions_json(runner *r, buf *out)
{
    return exc_render(r, out, EXC_JSON);
}

int runner_exceptions_html(runner *r, buf *out)
{
    return exc_render(r, out, EXC_HTML);
}

int runner_exceptions_console(runner *r, buf *out)
{
    return exc_render(r, out, EXC_CONSOLE);
}

/* ---- the open model across workers ---- */

/* Arrivals from 0 to t of a schedule (rate, then stages ramping linearly;
 * the last rate holds). */
static double sched_integral(double rate, const runner_stage *st, size_t n, double t)
{
    double acc = 0, r0 = rate;
    for (size_t i = 0; i < n && t > 0; i++) {
        double d = st[i].duration_s, r1 = st[i].target;
        if (t < d) {
            double rt = r0 + (r1 - r0) * t / d;
            return acc + t * (r0 + rt) / 2;
        }
        acc += d * (r0 + r1) / 2;
        t -= d;
        r0 = r1;
    }
    return acc + (t > 0 ? t * r0 : 0);
}

/* The schedule from t on: its rate at t and the stages left (the one in
 * progress cut). Returns how many stages are left. */
static size_t sched_cut(double rate, const runner_stage *st, size_t n, double t, double *rate_out,
                        runner_stage *out)
{
    double r0 = rate;
    size_t i = 0, k = 0;
    for (; i < n && t >= st[i].duration_s; i++) {
        t -= st[i].duration_s;
        r0 = st[i].target;
    }
    if (i < n && t > 0) {
        double d = st[i].duration_s;
        r0 = r0 + (st[i].target - r0) * t / d;
        out[k++] = (runner_stage){.duration_s = d - t, .target = st[i].target};
        i++;
    }
    for (; i < n; i++) out[k++] = st[i];
    *rate_out = r0;
    return k;
}

int runner_dist_open_model(runner *r, double *rate, runner_stage *stages, size_t *nstages,
                           double *elapsed_s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    pthread_mutex_lock(&r->mu);
    int open = r->open_model;
    *rate = r->rate;
    *nstages = r->nstages;
    memcpy(stages, r->stages, r->nstages * sizeof(runner_stage));
    *elapsed_s = now > r->t0_ns ? (double)(now - r->t0_ns) / 1e9 : 0;
    pthread_mutex_unlock(&r->mu);
    return open;
}

int runner_dist_set_open(runner *r, int users, double rate, const runner_stage *stages,
                         size_t nstages, double elapsed_s, const char *host, char *err,
                         size_t errlen)
{
    if (nstages > LG_MAX_STAGES - 2 || !(rate >= 0) || !(elapsed_s >= 0) || users < 1) {
        snprintf(err, errlen, "bad open-model share (rate %g, %zu stages, %d connections)", rate,
                 nstages, users);
        return -EINVAL;
    }
    for (size_t i = 0; i < nstages; i++)
        if (!(stages[i].duration_s > 0) || !(stages[i].target >= 0)) {
            snprintf(err, errlen, "bad open-model stage %zu", i + 1);
            return -EINVAL;
        }
    /* what is left of the master's schedule, from now on */
    runner_stage left[LG_MAX_STAGES];
    double now_rate;
    size_t nleft = sched_cut(rate, stages, nstages, elapsed_s, &now_rate, left);
    if (now_rate <= 0) now_rate = 1e-9; /* a ramp from 0: the runner's open model needs a rate */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    pthread_mutex_lock(&r->mu);
    int active = r->state == RUNNER_SPAWNING || r->state == RUNNER_RUNNING;
    int running = active && r->open_model, closed = active && !r->open_model;
    if (running) {
        /* A new share mid-run: the worker threads keep counting arrivals from
         * t0, so the new schedule starts with a constant stage as long as
         * the run so far at the rate that gives the arrivals made so far,
         * then moves to the new rate within 1 ms: the arrivals go on from
         * where they are, at the new rate. */
        double e = now > r->t0_ns ? (double)(now - r->t0_ns) / 1e9 : 0;
        double done = sched_integral(r->rate, r->stages, r->nstages, e);
        if (e > 0.01) {
            r->rate = done / e > 0 ? done / e : 1e-9;
            r->stages[0] = (runner_stage){.duration_s = e, .target = r->rate};
            r->stages[1] = (runner_stage){.duration_s = 0.001, .target = now_rate};
            memcpy(r->stages + 2, left, nleft * sizeof(runner_stage));
            r->nstages = nleft + 2;
        } else {
            r->rate = now_rate;
            memcpy(r->stages, left, nleft * sizeof(runner_stage));
            r->nstages = nleft;
        }
    }
    pthread_mutex_unlock(&r->mu);
    runner_start_params p = {.users = users,
                             .spawn_rate = 1e9,
                             .host = host,
                             .rate = now_rate,
                             .stages = left,
                             .nstages = nleft};
    if (closed) { /* a closed-model run turns open: a new test */
        runner_stop(r);
        runner_wait(r, -1);
    }
    return runner_start(r, &p, err, errlen);
}
