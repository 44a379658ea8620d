/*
 * The percentile table and the snapshot rows shared by the runner and the
 * Python locustfile stats (see snapshot.h).
 */
#include "loadgen/snapshot.h"

#include <stdlib.h>
#include <string.h>

const runner_pct_info runner_pcts[RUNNER_NPCT] = {
    [RUNNER_P50] = {0.50, "50%"},     [RUNNER_P66] = {0.66, "66%"},
    [RUNNER_P75] = {0.75, "75%"},     [RUNNER_P80] = {0.80, "80%"},
    [RUNNER_P90] = {0.90, "90%"},     [RUNNER_P95] = {0.95, "95%"},
    [RUNNER_P98] = {0.98, "98%"},     [RUNNER_P99] = {0.99, "99%"},
    [RUNNER_P999] = {0.999, "99.9%"}, [RUNNER_P9999] = {0.9999, "99.99%"},
    [RUNNER_P100] = {1.0, "100%"},
};

const double runner_spectrum[RUNNER_NSPECTRUM] = {0,  10, 20, 30, 40,   50,    60,     70,
                                                  80, 90, 95, 99, 99.9, 99.99, 99.999, 100};

runner_snapshot *lg_snapshot_alloc(size_t nentries, size_t nerrors)
{
    runner_snapshot *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->entries = calloc(nentries ? nentries : 1, sizeof(runner_entry));
    s->errors = calloc(nerrors ? nerrors : 1, sizeof(runner_error));
    if (!s->entries || !s->errors) {
        runner_snapshot_free(s);
        return NULL;
    }
    return s;
}

void runner_snapshot_free(runner_snapshot *s)
{
    if (!s) return;
    free(s->entries);
    free(s->errors);
    free(s->class_users);
    free(s->class_names);
    free(s->class_weight);
    free(s->class_fixed);
    free(s);
}

static double pct_ms(const hist *h, runner_pct k)
{
    return (double)hist_percentile(h, runner_pcts[k].fraction * 100) / 1000.0;
}

void lg_snapshot_fill(runner_entry *o, const lg_estat *e, double secs)
{
    o->num_requests = e->nreq;
    if (!e->nreq) return;
    o->num_failures = e->nfail;
    o->avg_ms = hist_mean(e->lat) / 1000.0;
    o->min_ms = (double)hist_min(e->lat) / 1000.0;
    o->max_ms = (double)hist_max(e->lat) / 1000.0;
    o->median_ms = (double)hist_percentile(e->lat, 50) / 1000.0;
    o->avg_content_length = (double)e->bytes / (double)e->nreq;
    o->total_rps = (double)e->nreq / secs;
    o->total_fail_per_sec = (double)e->nfail / secs;
    for (int k = 0; k < RUNNER_NPCT; k++) {
        o->pct_ms[k] = pct_ms(e->lat, k);
        o->service_pct_ms[k] = pct_ms(e->svc, k);
    }
    o->service_avg_ms = hist_mean(e->svc) / 1000.0;
    o->not_on_time = e->late;
}

void lg_snapshot_window(runner_entry *o, uint64_t nreq, uint64_t nfail, const hist *win,
                        size_t filled)
{
    double secs = filled ? (double)filled : 1;
    o->current_rps = (double)nreq / secs;
    o->current_fail_per_sec = (double)nfail / secs;
    for (int k = 0; k < RUNNER_NPCT; k++) o->current_pct_ms[k] = pct_ms(win, k);
}

runner_history_point lg_snapshot_point(const runner_snapshot *s, int64_t now)
{
    const runner_entry *t = &s->total;
    return (runner_history_point){
        .time = now,
        .user_count = s->user_count,
        .current_rps = t->current_rps,
        .current_fail_per_sec = t->current_fail_per_sec,
        .current_p50_ms = t->current_pct_ms[RUNNER_P50],
        .current_p95_ms = t->current_pct_ms[RUNNER_P95],
        .current_p99_ms = t->current_pct_ms[RUNNER_P99],
        .total_requests = t->num_requests,
        .total_failures = t->num_failures,
    };
}

static int cmp_entry(const void *a, const void *b)
{
    const runner_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->method, y->method);
}

static int cmp_error(const void *a, const void *b)
{
    const runner_error *x = a, *y = b;
    return x->occurrences < y->occurrences ? 1 : x->occurrences > y->occurrences ? -1 : 0;
}

void lg_snapshot_sort(runner_snapshot *s)
{
    qsort(s->entries, s->nentries, sizeof(runner_entry), cmp_entry);
    qsort(s->errors, s->nerrors, sizeof(runner_error), cmp_error);
}
