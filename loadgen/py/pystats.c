/*
 * pystats: growable rows with exact histograms (3 significant digits) for the
 * whole run, and a ring of 2-digit per-second histograms for Locust's 10 s
 * "current" window, as the runner keeps them for a scenario.
 */
#define _GNU_SOURCE
#include "loadgen/py/pystats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/hist.h"
#include "loadgen/snapshot.h"
#include "loadgen/stats.h"

#define PS_WINDOW 10
#define PS_RING   (PS_WINDOW + 1)

typedef struct ps_sec {
    uint64_t nreq, nfail;
    hist *lat;
} ps_sec;

typedef struct ps_row {
    char method[16];
    char name[256];
    lg_estat st; /* whole run */
    ps_sec ring[PS_RING];
} ps_row;

typedef struct ps_err {
    int entry;
    char *text;
    uint64_t count;
    int64_t first, last;
} ps_err;

struct pystats {
    ps_row **rows;
    size_t nrows, caprows;
    ps_row agg; /* the Aggregated row (its method and name unused) */
    ps_err *errs;
    size_t nerrs, caperrs;
    size_t ring_pos, ring_filled;
    int64_t t0_ns, sec_ns, stop_ns;
    hist *win_tmp;
};

static void row_free(ps_row *r)
{
    hist_free(r->st.lat);
    hist_free(r->st.svc);
    for (int i = 0; i < PS_RING; i++) hist_free(r->ring[i].lat);
}

static int row_init(ps_row *r)
{
    r->st.lat = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, LG_HIST_SIG);
    r->st.svc = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, LG_HIST_SIG);
    int ok = r->st.lat && r->st.svc;
    for (int i = 0; ok && i < PS_RING; i++)
        ok = (r->ring[i].lat = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, 2)) != NULL;
    return ok ? 0 : -ENOMEM;
}

static void row_clear(ps_row *r)
{
    hist_reset(r->st.lat);
    hist_reset(r->st.svc);
    r->st.nreq = r->st.nfail = r->st.bytes = r->st.late = 0;
    for (int i = 0; i < PS_RING; i++) {
        r->ring[i].nreq = r->ring[i].nfail = 0;
        hist_reset(r->ring[i].lat);
    }
}

pystats *pystats_create(void)
{
    pystats *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->win_tmp = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, 2);
    if (!p->win_tmp || row_init(&p->agg)) {
        pystats_free(p);
        return NULL;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    p->t0_ns = p->sec_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return p;
}

void pystats_free(pystats *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->nrows; i++) {
        row_free(p->rows[i]);
        free(p->rows[i]);
    }
    free(p->rows);
    row_free(&p->agg);
    for (size_t i = 0; i < p->nerrs; i++) free(p->errs[i].text);
    free(p->errs);
    hist_free(p->win_tmp);
    free(p);
}

int pystats_entry(pystats *p, const char *method, const char *name)
{
    for (size_t i = 0; i < p->nrows; i++)
        if (!strncmp(p->rows[i]->name, name, sizeof(p->rows[i]->name) - 1) &&
            !strncmp(p->rows[i]->method, method, sizeof(p->rows[i]->method) - 1))
            return (int)i;
    if (p->nrows == p->caprows) {
        size_t cap = p->caprows ? p->caprows * 2 : 16;
        ps_row **n = realloc(p->rows, cap * sizeof(*n));
        if (!n) return -ENOMEM;
        p->rows = n;
        p->caprows = cap;
    }
    ps_row *r = calloc(1, sizeof(*r));
    if (!r) return -ENOMEM;
    if (row_init(r)) {
        row_free(r);
        free(r);
        return -ENOMEM;
    }
    snprintf(r->method, sizeof(r->method), "%s", method);
    snprintf(r->name, sizeof(r->name), "%s", name);
    p->rows[p->nrows] = r;
    return (int)p->nrows++;
}

int pystats_entry_name(const pystats *p, int e, char *method, size_t mlen, char *name, size_t nlen)
{
    if (e < 0 || (size_t)e >= p->nrows) return -EINVAL;
    snprintf(method, mlen, "%s", p->rows[e]->method);
    snprintf(name, nlen, "%s", p->rows[e]->name);
    return 0;
}

static void row_add(ps_row *r, size_t pos, int64_t lat, int64_t svc, uint64_t bytes, int failed)
{
    hist_record(r->st.lat, lat);
    hist_record(r->st.svc, svc);
    hist_record(r->ring[pos].lat, lat);
    r->st.nreq++;
    r->ring[pos].nreq++;
    r->st.nfail += failed;
    r->ring[pos].nfail += failed;
    r->st.bytes += bytes;
    r->st.late += lat - svc > LG_LATE_US;
}

static int add_error(pystats *p, int e, const char *text, int64_t now_s, uint64_t count)
{
    for (size_t i = 0; i < p->nerrs; i++)
        if (p->errs[i].entry == e && !strcmp(p->errs[i].text, text)) {
            p->errs[i].count += count;
            p->errs[i].last = now_s;
            return 0;
        }
    if (p->nerrs == p->caperrs) {
        size_t cap = p->caperrs ? p->caperrs * 2 : 16;
        ps_err *n = realloc(p->errs, cap * sizeof(*n));
        if (!n) return -ENOMEM;
        p->errs = n;
        p->caperrs = cap;
    }
    char *t = strdup(text);
    if (!t) return -ENOMEM;
    p->errs[p->nerrs++] =
        (ps_err){.entry = e, .text = t, .count = count, .first = now_s, .last = now_s};
    return 0;
}

int pystats_record(pystats *p, int e, int64_t lat_us, int64_t svc_us, uint64_t bytes,
                   const char *error, int64_t now_ns)
{
    if (e < 0 || (size_t)e >= p->nrows) return -EINVAL;
    pystats_tick(p, now_ns);
    if (lat_us < LG_HIST_LOWEST) lat_us = LG_HIST_LOWEST;
    if (svc_us < LG_HIST_LOWEST) svc_us = LG_HIST_LOWEST;
    if (svc_us > lat_us) lat_us = svc_us;
    row_add(p->rows[e], p->ring_pos, lat_us, svc_us, bytes, error != NULL);
    row_add(&p->agg, p->ring_pos, lat_us, svc_us, bytes, error != NULL);
    return error ? add_error(p, e, error, (int64_t)time(NULL), 1) : 0;
}

static void row_merge(ps_row *r, size_t pos, uint64_t nreq, uint64_t nfail, uint64_t bytes,
                      const int64_t *val_us, const uint64_t *cnt, size_t n, int64_t sum_us)
{
    uint64_t before = hist_sum(r->st.lat), before_svc = hist_sum(r->st.svc);
    for (size_t i = 0; i < n; i++) {
        int64_t v = val_us[i] < LG_HIST_LOWEST ? LG_HIST_LOWEST : val_us[i];
        hist_record_n(r->st.lat, v, cnt[i]);
        hist_record_n(r->st.svc, v, cnt[i]);
        hist_record_n(r->ring[pos].lat, v, cnt[i]);
    }
    if (sum_us >= 0) { /* a worker reports no queueing: service time is latency */
        hist_set_sum(r->st.lat, before + (uint64_t)sum_us);
        hist_set_sum(r->st.svc, before_svc + (uint64_t)sum_us);
    }
    r->st.nreq += nreq;
    r->ring[pos].nreq += nreq;
    r->st.nfail += nfail;
    r->ring[pos].nfail += nfail;
    r->st.bytes += bytes;
}

int pystats_merge(pystats *p, int e, uint64_t nreq, uint64_t nfail, uint64_t bytes,
                  const int64_t *val_us, const uint64_t *cnt, size_t n, int64_t sum_us,
                  int64_t now_ns)
{
    if (e < 0 || (size_t)e >= p->nrows) return -EINVAL;
    pystats_tick(p, now_ns);
    row_merge(p->rows[e], p->ring_pos, nreq, nfail, bytes, val_us, cnt, n, sum_us);
    row_merge(&p->agg, p->ring_pos, nreq, nfail, bytes, val_us, cnt, n, sum_us);
    return 0;
}

int pystats_add_error(pystats *p, int e, const char *text, uint64_t count)
{
    if (e < 0 || (size_t)e >= p->nrows) return -EINVAL;
    return count ? add_error(p, e, text, (int64_t)time(NULL), count) : 0;
}

static void clear_slot(pystats *p, size_t pos)
{
    for (size_t i = 0; i < p->nrows; i++) {
        p->rows[i]->ring[pos].nreq = p->rows[i]->ring[pos].nfail = 0;
        hist_reset(p->rows[i]->ring[pos].lat);
    }
    p->agg.ring[pos].nreq = p->agg.ring[pos].nfail = 0;
    hist_reset(p->agg.ring[pos].lat);
}

void pystats_tick(pystats *p, int64_t now_ns)
{
    /* at most a window's worth of empty seconds are closed at once */
    for (int k = 0; now_ns - p->sec_ns >= 1000000000 && k < PS_RING; k++) {
        p->sec_ns += 1000000000;
        p->ring_pos = (p->ring_pos + 1) % PS_RING;
        clear_slot(p, p->ring_pos);
        if (p->ring_filled < PS_WINDOW) p->ring_filled++;
    }
    if (now_ns - p->sec_ns >= 1000000000) p->sec_ns = now_ns;
}

void pystats_reset(pystats *p, int64_t now_ns)
{
    for (size_t i = 0; i < p->nrows; i++) row_clear(p->rows[i]);
    row_clear(&p->agg);
    for (size_t i = 0; i < p->nerrs; i++) free(p->errs[i].text);
    p->nerrs = 0;
    p->ring_filled = 0;
    p->t0_ns = p->sec_ns = now_ns;
    p->stop_ns = 0;
}

void pystats_stop(pystats *p, int64_t now_ns)
{
    p->stop_ns = now_ns;
}

/* The row's current-window figures and whole-run figures. */
static void fill(pystats *p, const ps_row *r, runner_entry *o, double secs)
{
    uint64_t nreq = 0, nfail = 0;
    hist_reset(p->win_tmp);
    for (size_t k = 0; k < p->ring_filled; k++) {
        const ps_sec *s = &r->ring[(p->ring_pos + PS_RING - 1 - k) % PS_RING];
        nreq += s->nreq;
        nfail += s->nfail;
        hist_add(p->win_tmp, s->lat);
    }
    lg_snapshot_window(o, nreq, nfail, p->win_tmp, p->ring_filled);
    lg_snapshot_fill(o, &r->st, secs);
}

runner_snapshot *pystats_snapshot(pystats *p, int64_t now_ns)
{
    pystats_tick(p, now_ns);
    runner_snapshot *s = lg_snapshot_alloc(p->nrows, p->nerrs);
    if (!s) return NULL;
    int64_t end = p->stop_ns ? p->stop_ns : now_ns;
    double secs = (double)(end - p->t0_ns) / 1e9;
    if (secs < 0.001) secs = 0.001;
    s->elapsed_s = secs;
    for (size_t i = 0; i < p->nrows; i++) {
        const ps_row *r = p->rows[i];
        if (!r->st.nreq) continue;
        runner_entry *o = &s->entries[s->nentries++];
        snprintf(o->method, sizeof(o->method), "%s", r->method);
        snprintf(o->name, sizeof(o->name), "%s", r->name);
        fill(p, r, o, secs);
    }
    snprintf(s->total.name, sizeof(s->total.name), "Aggregated");
    fill(p, &p->agg, &s->total, secs);
    for (size_t i = 0; i < p->nerrs; i++) {
        const ps_err *e = &p->errs[i];
        runner_error *o = &s->errors[s->nerrors++];
        snprintf(o->method, sizeof(o->method), "%s", p->rows[e->entry]->method);
        snprintf(o->name, sizeof(o->name), "%s", p->rows[e->entry]->name);
        snprintf(o->error, sizeof(o->error), "%s", e->text);
        o->occurrences = e->count;
        o->first_seen = e->first;
        o->last_seen = e->last;
    }
    lg_snapshot_sort(s);
    s->fail_ratio = p->agg.st.nreq ? (double)p->agg.st.nfail / (double)p->agg.st.nreq : 0;
    return s;
}
