/*
 * runner: the control thread of a load test. Every 100 ms it moves the user
 * count toward its target at the spawn rate, enforces the run time and the
 * stop timeout; every second it collects each worker's stats (the workers
 * hand them over between events, see worker.h), merges them into the run's
 * totals and the 10 s window, and appends a history sample.
 *
 * Stop protocol: DRAIN (no new request; idle users end) until every worker
 * reports nothing in flight or stop_timeout passes; then ABORT (what is left
 * is recorded as failed); then a last collection. So every request that was
 * sent is in the statistics.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadgen/report.h"
#include "loadgen/runner_int.h"
#include "loadgen/snapshot.h"
#include "loadgen/url.h"

#define TICK_MS 100

const char *runner_state_name(runner_state s)
{
    static const char *names[] = {"ready", "spawning", "running", "stopping", "stopped"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- per-second ring ---- */

static void second_free(lg_second *s, size_t n)
{
    if (s->lat)
        for (size_t i = 0; i <= n; i++) hist_free(s->lat[i]);
    free(s->lat);
    free(s->nreq);
    free(s->nfail);
}

static int second_init(lg_second *s, size_t n)
{
    s->nreq = calloc(n + 1, sizeof(uint64_t));
    s->nfail = calloc(n + 1, sizeof(uint64_t));
    s->lat = calloc(n + 1, sizeof(hist *));
    if (!s->nreq || !s->nfail || !s->lat) return -ENOMEM;
    for (size_t i = 0; i <= n; i++)
        if (!(s->lat[i] = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, 2))) return -ENOMEM;
    return 0;
}

static void second_clear(lg_second *s, size_t n)
{
    for (size_t i = 0; i <= n; i++) {
        s->nreq[i] = s->nfail[i] = 0;
        hist_reset(s->lat[i]);
    }
}

/* ---- statistics (caller holds mu) ---- */

static void clear_stats(runner *r)
{
    lg_stats_reset(r->total);
    hist_reset(r->agg_lat);
    hist_reset(r->agg_svc);
    for (size_t i = 0; i < LG_RING; i++) second_clear(&r->ring[i], r->nentries);
    r->ring_filled = 0;
    r->stats_t0_ns = now_ns();
}

/* Merges what was just collected (r->sec) into the totals and the ring slot
 * of the second in progress; advance closes that second. */
void runner_merge_locked(runner *r, int advance)
{
    lg_second *s = &r->ring[r->ring_pos];
    size_t n = r->nentries;
    for (size_t i = 0; i < n; i++) {
        const lg_estat *e = &r->sec->e[i];
        if (!e->nreq) continue;
        s->nreq[i] += e->nreq;
        s->nfail[i] += e->nfail;
        s->nreq[n] += e->nreq;
        s->nfail[n] += e->nfail;
        hist_add(s->lat[i], e->lat);
        hist_add(s->lat[n], e->lat);
        hist_add(r->agg_lat, e->lat);
        hist_add(r->agg_svc, e->svc);
    }
    lg_stats_add(r->total, r->sec);
    if (r->dist) runner_delta_add(r->dist, r->sec, (int64_t)time(NULL));
    lg_stats_reset(r->sec);
    if (!advance) return;
    r->ring_pos = (r->ring_pos + 1) % LG_RING;
    second_clear(&r->ring[r->ring_pos], n);
    if (r->ring_filled < LG_WINDOW) r->ring_filled++;
}

/* Current-window figures of entry i (nentries: the aggregate). */
static void window(runner *r, size_t i, runner_entry *out)
{
    uint64_t nreq = 0, nfail = 0;
    hist_reset(r->win_tmp);
    for (size_t k = 0; k < r->ring_filled; k++) {
        const lg_second *s = &r->ring[(r->ring_pos + LG_RING - 1 - k) % LG_RING];
        nreq += s->nreq[i];
        nfail += s->nfail[i];
        hist_add(r->win_tmp, s->lat[i]);
    }
    lg_snapshot_window(out, nreq, nfail, r->win_tmp, r->ring_filled);
}

static double elapsed_s(const runner *r)
{
    if (r->state == RUNNER_READY) return 0;
    uint64_t end = r->stop_ns ? r->stop_ns : now_ns();
    return (double)(end - r->t0_ns) / 1e9;
}

static double stats_elapsed_s(const runner *r)
{
    uint64_t end = r->stop_ns ? r->stop_ns : now_ns();
    double d = (double)(end - r->stats_t0_ns) / 1e9;
    return d > 0.001 ? d : 0.001;
}

static void fill_entry(runner *r, runner_entry *out, size_t i, const lg_estat *e)
{
    window(r, i, out);
    lg_snapshot_fill(out, e, stats_elapsed_s(r));
}

/* The --json summary's extras: each class's weight, fixed count and share of
 * the target users; the aggregate's spectrum. */
static int snapshot_full(runner *r, runner_snapshot *s)
{
    const scenario *sc = r->sc;
    size_t n = sc->nclasses;
    s->class_weight = calloc(n ? n : 1, sizeof(double));
    s->class_fixed = calloc(n ? 2 * n : 1, sizeof(int));
    if (!s->class_weight || !s->class_fixed) return -ENOMEM;
    s->class_target = s->class_fixed + n;
    for (size_t k = 0; k < n; k++) {
        s->class_weight[k] = sc->classes[k].weight;
        s->class_fixed[k] = sc->classes[k].fixed_count;
    }
    if (!s->open_model) scenario_split_users(sc, s->target_users, s->class_target);
    for (size_t i = 0; i < RUNNER_NSPECTRUM; i++) {
        s->spectrum_ms[i] = (double)hist_percentile(r->agg_lat, runner_spectrum[i]) / 1000.0;
        s->service_spectrum_ms[i] =
            (double)hist_percentile(r->agg_svc, runner_spectrum[i]) / 1000.0;
    }
    s->full = 1;
    return 0;
}

/* Builds a snapshot; caller holds mu. */
static runner_snapshot *snapshot_locked(runner *r, int full)
{
    runner_snapshot *s = lg_snapshot_alloc(r->nentries, r->total->nerrs);
    if (!s) return NULL;
    s->nclasses = r->sc->nclasses;
    s->class_users = calloc(s->nclasses * 2, sizeof(int));
    s->class_names = calloc(s->nclasses, sizeof(char *));
    if (!s->class_users || !s->class_names) {
        runner_snapshot_free(s);
        return NULL;
    }
    s->class_peak = s->class_users + s->nclasses;
    memcpy(s->class_users, r->class_users, s->nclasses * 2 * sizeof(int));
    for (size_t k = 0; k < s->nclasses; k++) s->class_names[k] = scenario_class_name(r->sc, k);
    s->state = r->state;
    s->user_count = r->user_count;
    s->target_users = r->target_users;
    s->spawn_rate = r->spawn_rate;
    s->open_model = r->open_model;
    s->target_rate = r->rate;
    snprintf(s->host, sizeof(s->host), "%s", r->host);
    s->start_time = r->start_wall;
    s->elapsed_s = elapsed_s(r);
    s->run_time_s = r->run_time_s;
    uint64_t agg_late = 0, agg_fail = 0, agg_bytes = 0, agg_req = 0;
    for (size_t i = 0; i < r->nentries; i++) {
        const lg_estat *e = &r->total->e[i];
        agg_late += e->late;
        agg_fail += e->nfail;
        agg_bytes += e->bytes;
        agg_req += e->nreq;
        if (!e->nreq) continue;
        runner_entry *o = &s->entries[s->nentries++];
        snprintf(o->method, sizeof(o->method), "%s", r->sc->entries[i].method);
        snprintf(o->name, sizeof(o->name), "%s", r->sc->entries[i].name);
        fill_entry(r, o, i, e);
    }
    lg_estat agg = {.lat = r->agg_lat,
                    .svc = r->agg_svc,
                    .nreq = agg_req,
                    .nfail = agg_fail,
                    .bytes = agg_bytes,
                    .late = agg_late};
    snprintf(s->total.name, sizeof(s->total.name), "Aggregated");
    fill_entry(r, &s->total, r->nentries, &agg);
    for (size_t i = 0; i < r->total->nerrs; i++) {
        const lg_err *e = &r->total->errs[i];
        runner_error *o = &s->errors[s->nerrors++];
        snprintf(o->method, sizeof(o->method), "%s", r->sc->entries[e->entry].method);
        snprintf(o->name, sizeof(o->name), "%s", r->sc->entries[e->entry].name);
        lg_err_format(e->kind, e->code, o->error, sizeof(o->error));
        o->occurrences = e->count;
        o->first_seen = e->first;
        o->last_seen = e->last;
    }
    lg_snapshot_sort(s);
    s->fail_ratio = agg_req ? (double)agg_fail / (double)agg_req : 0;
    s->dropped = r->total->dropped;
    s->cpu_warning = r->cpu_warning;
    s->cpu_percent = r->cpu * 100;
    s->timing_count = r->total->st_n;
    for (int k = 0; s->timing_count && k < LG_ST_NPHASES; k++) {
        s->timing_avg_ms[k] = hist_mean(r->total->st[k]) / 1000.0;
        for (int j = 0; j < RUNNER_NPCT; j++)
            s->timing_pct_ms[k][j] =
                (double)hist_percentile(r->total->st[k], runner_pcts[j].fraction * 100) / 1000.0;
    }
    if (full && snapshot_full(r, s)) {
        runner_snapshot_free(s);
        return NULL;
    }
    return s;
}

runner_snapshot *runner_snapshot_take(runner *r)
{
    pthread_mutex_lock(&r->mu);
    runner_snapshot *s = snapshot_locked(r, 0);
    pthread_mutex_unlock(&r->mu);
    return s;
}

runner_snapshot *runner_snapshot_take_full(runner *r)
{
    pthread_mutex_lock(&r->mu);
    runner_snapshot *s = snapshot_locked(r, 1);
    pthread_mutex_unlock(&r->mu);
    return s;
}

/* ---- history ---- */

static void add_history(runner *r)
{
    runner_snapshot *s = snapshot_locked(r, 0);
    if (!s) return;
    if (r->nhistory == r->caphistory) {
        size_t cap = r->caphistory ? r->caphistory * 2 : 256;
        runner_history_point *h = realloc(r->history, cap * sizeof(*h));
        if (!h) {
            runner_snapshot_free(s);
            return;
        }
        r->history = h;
        r->caphistory = cap;
    }
    int64_t now = (int64_t)time(NULL);
    r->history[r->nhistory++] = lg_snapshot_point(s, now);
    report_csv_history_rows(&r->history_csv, s, now, r->opts.full_history);
    runner_snapshot_free(s);
}

size_t runner_history_len(runner *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->nhistory;
    pthread_mutex_unlock(&r->mu);
    return n;
}

size_t runner_history_get(runner *r, size_t from, runner_history_point *out, size_t max)
{
    pthread_mutex_lock(&r->mu);
    size_t n = 0;
    for (size_t i = from; i < r->nhistory && n < max; i++) out[n++] = r->history[i];
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* ---- dispatch: users per class and per worker ---- */

/* Splits n users over the classes (weights and fixed counts, see
 * scenario_split_users), then each class over the workers; want is
 * [worker][class]. Returns the users placed (fewer than n when only fixed
 * classes exist and n exceeds their sum). */
static int split_users(const runner *r, int n, int *want)
{
    const scenario *sc = r->sc;
    size_t nc = sc->nclasses;
    int *per_class = calloc(nc ? nc : 1, sizeof(int));
    if (!per_class) return 0;
    int placed = 0;
    if (r->class_fixed) /* distributed worker: the master's split */
        for (size_t k = 0; k < nc; k++) placed += per_class[k] = r->class_fixed[k];
    else
        placed = scenario_split_users(sc, n, per_class);
    int T = r->nworkers, offset = 0;
    for (size_t k = 0; k < nc; k++) {
        int c = per_class[k];
        for (int j = 0; j < T; j++) {
            int slot = (j - offset % T + T) % T;
            want[j * (int)nc + (int)k] = c / T + (slot < c % T ? 1 : 0);
        }
        offset += c % T;
    }
    free(per_class);
    return placed;
}

static void send_all(runner *r, lg_phase phase, int users)
{
    size_t nc = r->sc->nclasses;
    int *want = calloc((size_t)r->nworkers * nc, sizeof(int));
    if (!want) return;
    int placed = r->open_model ? users : split_users(r, users, want);
    if (r->opts.remote) { /* a master: the dispatcher reads r->dispatched */
        free(want);
        r->dispatched = users;
        return;
    }
    for (int j = 0; j < r->nworkers; j++) {
        lg_cmd cmd = {.phase = phase,
                      .epoch = r->epoch,
                      .targets = r->targets,
                      .want = &want[(size_t)j * nc],
                      .open_model = r->open_model,
                      .t0_ns = r->t0_ns,
                      .end_ns = r->run_time_s > 0 ? r->t0_ns + (uint64_t)(r->run_time_s * 1e9) : 0,
                      .rate = r->rate,
                      .nstages = r->nstages,
                      .max_conns = (r->target_users + r->nworkers - 1 - j) / r->nworkers,
                      .user_base = (uint64_t)j};
        memcpy(cmd.stages, r->stages, r->nstages * sizeof(runner_stage));
        lg_worker_command(r->workers[j], &cmd, nc);
    }
    free(want);
    r->dispatched = users;
    if (!r->open_model) r->user_count = placed; /* until the workers report the real count */
}

/* ---- the control thread ---- */

/* Collects every worker's stats into r->sec (without mu: it may wait). */
static int collect(runner *r, int *users, int *inflight, double *cpu)
{
    *users = *inflight = 0;
    *cpu = 0;
    int late = 0;
    memset(r->class_tmp, 0, r->sc->nclasses * 2 * sizeof(int));
    for (int j = 0; j < r->nworkers; j++) {
        lg_worker_info info = {0};
        if (lg_worker_collect(r->workers[j], r->sec, &info, r->class_tmp, 500)) late = 1;
        *users += info.users;
        *inflight += info.inflight;
        if (info.cpu > *cpu) *cpu = info.cpu;
    }
    return late;
}

static void spawn_step(runner *r, double dt)
{
    if (r->state != RUNNER_SPAWNING && r->state != RUNNER_RUNNING) return;
    if (r->open_model) {
        if (r->state == RUNNER_SPAWNING) r->state = RUNNER_RUNNING;
        return;
    }
    double target = r->target_users, step = r->spawn_rate * dt;
    if (r->cur_users < target)
        r->cur_users = fmin(target, r->cur_users + step);
    else if (r->cur_users > target)
        r->cur_users = fmax(target, r->cur_users - step);
    int n = (int)floor(r->cur_users + 1e-9);
    if (n != r->dispatched) send_all(r, LG_RUN, n);
    if (n == r->target_users && r->state == RUNNER_SPAWNING) {
        r->state = RUNNER_RUNNING;
        if (r->opts.reset_stats) r->spawn_done_reset = 1;
    }
}

static void begin_stop(runner *r)
{
    if (r->state != RUNNER_SPAWNING && r->state != RUNNER_RUNNING) return;
    r->state = RUNNER_STOPPING;
    r->stop_ns = now_ns();
    if (r->opts.remote) r->remote_busy = -1; /* until the master has told its workers */
    send_all(r, LG_DRAIN, 0);
}

static void wait_tick(runner *r)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += TICK_MS * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->cv, &r->mu, &dl);
}

/* STOPPING: done once nothing is in flight (or the stop timeout passed: then
 * abort what is left and collect the failures). Caller holds mu. */
static void maybe_finish_stop(runner *r, uint64_t now, int inflight, int late)
{
    double waited = now > r->stop_ns ? (double)(now - r->stop_ns) / 1e9 : 0;
    /* a worker that did not answer may still hold requests or stats */
    if ((inflight > 0 || late) && waited < r->opts.stop_timeout_s && !r->abort_requested) return;
    if (r->opts.remote && r->remote_busy != 0 && waited < r->opts.stop_timeout_s + 5) return;
    if (inflight > 0 || late) {
        send_all(r, LG_ABORT, 0);
        pthread_mutex_unlock(&r->mu);
        int users;
        double cpu;
        /* after an abort every worker answers promptly; retry to be sure */
        for (int i = 0; i < 10 && collect(r, &users, &inflight, &cpu); i++) {
        }
        pthread_mutex_lock(&r->mu);
        runner_merge_locked(r, 0);
    }
    r->user_count = 0;
    memset(r->class_users, 0, r->sc->nclasses * sizeof(int));
    r->state = RUNNER_STOPPED;
    add_history(r);
    pthread_cond_broadcast(&r->cv);
}

/* Collects the workers' stats and merges them (mu is dropped meanwhile: a
 * worker may take up to 500 ms to answer). */
static void collect_and_merge(runner *r, uint64_t now, uint64_t *next_merge)
{
    int stopping = r->state == RUNNER_STOPPING;
    pthread_mutex_unlock(&r->mu);
    int users, inflight;
    double cpu;
    int late = collect(r, &users, &inflight, &cpu);
    pthread_mutex_lock(&r->mu);
    r->user_count = users;
    if (r->opts.remote) runner_dist_collect(r, &users, &inflight);
    /* each worker's peak: their sum is the class's peak as users ramp up
     * and stop (a retarget may move users between workers: then an upper bound) */
    memcpy(r->class_users, r->class_tmp, r->sc->nclasses * 2 * sizeof(int));
    r->cpu = cpu;
    if (cpu > 0.9) r->cpu_warning = 1;
    if (r->reset_requested || r->spawn_done_reset) {
        lg_stats_reset(r->sec);
        clear_stats(r);
        r->reset_requested = r->spawn_done_reset = 0;
        return;
    }
    int second = now >= *next_merge;
    runner_merge_locked(r, second);
    if (second) {
        add_history(r);
        *next_merge += 1000000000ull;
        if (*next_merge < now) *next_merge = now + 1000000000ull;
    }
    if (stopping) maybe_finish_stop(r, now, inflight, late);
}

static void *control_main(void *arg)
{
    runner *r = arg;
    uint64_t last = now_ns(), next_merge = last + 1000000000ull;
    pthread_mutex_lock(&r->mu);
    while (!r->quit) {
        wait_tick(r);
        if (r->quit) break;
        uint64_t now = now_ns();
        spawn_step(r, (double)(now - last) / 1e9);
        last = now;
        int active = r->state == RUNNER_SPAWNING || r->state == RUNNER_RUNNING;
        if (active && r->run_time_s > 0 && (double)(now - r->t0_ns) / 1e9 >= r->run_time_s)
            r->stop_requested = 1;
        if (r->stop_requested) {
            r->stop_requested = 0;
            begin_stop(r);
            /* stopped by the run time: the workers stopped sending exactly then */
            uint64_t end = r->run_time_s > 0 ? r->t0_ns + (uint64_t)(r->run_time_s * 1e9) : 0;
            if (end && end < r->stop_ns) r->stop_ns = end;
        }
        if (r->state == RUNNER_READY || r->state == RUNNER_STOPPED) {
            next_merge = now + 1000000000ull;
            continue;
        }
        if (r->state == RUNNER_STOPPING || r->reset_requested || r->spawn_done_reset ||
            now >= next_merge)
            collect_and_merge(r, now, &next_merge);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- public control API ---- */

/* The run's TLS context, made once; the workers then share it read-only. */
static int tls_context(runner *r, char *err, size_t errlen)
{
    if (r->tls) return 0;
    lg_tls_opts o = {.insecure = r->opts.tls_insecure, .cacert = r->opts.tls_cacert};
    return lg_tls_create(&o, &r->tls, err, errlen);
}

runner *runner_create(const scenario *sc, const runner_opts *opts, char *err, size_t errlen)
{
    runner *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->sc = sc;
    r->opts = opts ? *opts : (runner_opts){0};
    if (r->opts.threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        r->opts.threads = n > 0 ? (int)n : 1;
    }
    if (r->opts.threads > 256) r->opts.threads = 256;
    if (r->opts.connect_timeout_s <= 0) r->opts.connect_timeout_s = 10;
    if (r->opts.timeout_s <= 0) r->opts.timeout_s = 60;
    if (r->opts.stop_timeout_s <= 0) r->opts.stop_timeout_s = 10;
    if (!r->opts.seed) r->opts.seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    r->nentries = sc->nentries;
    r->nworkers = r->opts.threads;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->total = lg_stats_create(r->nentries);
    r->sec = lg_stats_create(r->nentries);
    if (r->opts.remote) {
        r->remote = lg_stats_create(r->nentries);
        r->remote_class = calloc(sc->nclasses ? sc->nclasses : 1, sizeof(int));
    }
    r->agg_lat = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, LG_HIST_SIG);
    r->agg_svc = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, LG_HIST_SIG);
    r->win_tmp = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, 2);
    r->targets = calloc(sc->nclasses, sizeof(lg_target));
    r->workers = calloc((size_t)r->nworkers, sizeof(lg_worker *));
    r->class_users = calloc(sc->nclasses * 4, sizeof(int));
    r->class_peak = r->class_users ? r->class_users + sc->nclasses : NULL;
    r->class_tmp = r->class_users ? r->class_users + 2 * sc->nclasses : NULL;
    int ok = (!r->opts.remote || (r->remote && r->remote_class)) && r->total && r->sec &&
             r->agg_lat && r->agg_svc && r->win_tmp && r->targets && r->workers && r->class_users;
    if (ok && r->opts.tls_cacert && tls_context(r, err, errlen)) {
        runner_free(r);
        return NULL;
    }
    r->opts.tls_cacert = NULL; /* read; the caller's string is not kept */
    for (size_t i = 0; ok && i < LG_RING; i++) ok = second_init(&r->ring[i], r->nentries) == 0;
    for (int j = 0; ok && j < r->nworkers; j++) {
        lg_worker_cfg cfg = {.id = j,
                             .nworkers = r->nworkers,
                             .sc = sc,
                             .connect_timeout_ns = (uint64_t)(r->opts.connect_timeout_s * 1e9),
                             .timeout_ns = (uint64_t)(r->opts.timeout_s * 1e9),
                             .seed = (uint64_t)r->opts.seed * 0x100000001b3ull + (uint64_t)j};
        r->workers[j] = lg_worker_create(&cfg);
        ok = r->workers[j] != NULL;
    }
    if (ok && pthread_create(&r->ctl, NULL, control_main, r) == 0)
        r->ctl_started = 1;
    else
        ok = 0;
    if (!ok) {
        snprintf(err, errlen, "cannot create the runner (out of memory or threads)");
        runner_free(r);
        return NULL;
    }
    return r;
}

void runner_free(runner *r)
{
    if (!r) return;
    if (r->ctl_started) {
        runner_stop(r);
        runner_wait(r, (int)(r->opts.stop_timeout_s * 1000) + 3000);
        pthread_mutex_lock(&r->mu);
        r->quit = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->ctl, NULL);
    }
    for (int j = 0; r->workers && j < r->nworkers; j++) lg_worker_free(r->workers[j]);
    runner_delta_free(r->dist);
    runner_dist_free_exceptions(r);
    lg_stats_free(r->remote);
    free(r->remote_class);
    free(r->class_fixed);
    free(r->workers);
    lg_tls_free(r->tls); /* after the workers: their connections use it */
    for (size_t i = 0; i < LG_RING; i++) second_free(&r->ring[i], r->nentries);
    lg_stats_free(r->total);
    lg_stats_free(r->sec);
    hist_free(r->agg_lat);
    hist_free(r->agg_svc);
    hist_free(r->win_tmp);
    free(r->targets);
    free(r->class_users);
    free(r->history);
    buf_free(&r->history_csv);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

static int resolve(runner *r, const char *host, lg_target *t, char *err, size_t errlen)
{
    lg_url u;
    if (lg_url_parse(host, &u, err, errlen)) return -EINVAL;
    t->tls = NULL;
    if (u.tls) {
        if (tls_context(r, err, errlen)) return -EINVAL;
        t->tls = r->tls;
        snprintf(t->tls_host, sizeof(t->tls_host), "%s", u.host);
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(u.host, u.port, &hints, &res);
    if (rc || !res) {
        snprintf(err, errlen, "cannot resolve '%s': %s", u.host, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    snprintf(t->authority, sizeof(t->authority), "%s", u.authority);
    snprintf(t->prefix, sizeof(t->prefix), "%.*s", (int)u.prefix_len, u.path);
    freeaddrinfo(res);
    return 0;
}

static int check_params(const runner_start_params *p, char *err, size_t errlen)
{
    if (p->users < 1) {
        snprintf(err, errlen, "users must be at least 1");
        return -EINVAL;
    }
    if (!(p->spawn_rate > 0) && p->rate <= 0) {
        snprintf(err, errlen, "spawn rate must be above 0");
        return -EINVAL;
    }
    if (p->run_time_s < 0 || p->rate < 0 || p->nstages > LG_MAX_STAGES) {
        snprintf(err, errlen, "bad run time, rate or too many stages (at most %d)", LG_MAX_STAGES);
        return -EINVAL;
    }
    for (size_t i = 0; i < p->nstages; i++) {
        if (!(p->stages[i].duration_s > 0) || p->stages[i].target < 0) {
            snprintf(err, errlen, "stage %zu: duration must be > 0 and target >= 0", i + 1);
            return -EINVAL;
        }
    }
    return 0;
}

/* Resolves every class's host (-H, else the class's, else the scenario's). */
static int resolve_targets(runner *r, const runner_start_params *p, const char *fallback, char *err,
                           size_t errlen)
{
    for (size_t k = 0; k < r->sc->nclasses; k++) {
        const char *h = p->host && *p->host ? p->host : r->sc->classes[k].host;
        if (!h) h = fallback;
        if (!h) {
            snprintf(err, errlen, "no host: give -H/--host or set host in the scenario");
            return -EINVAL;
        }
        if (resolve(r, h, &r->targets[k], err, errlen)) return -EINVAL;
    }
    return 0;
}

int runner_start(runner *r, const runner_start_params *p, char *err, size_t errlen)
{
    if (check_params(p, err, errlen)) return -EINVAL;
    pthread_mutex_lock(&r->mu);
    if (r->state == RUNNER_SPAWNING || r->state == RUNNER_RUNNING) {
        r->target_users = p->users;
        r->spawn_rate = p->spawn_rate > 0 ? p->spawn_rate : r->spawn_rate;
        if (!r->open_model)
            r->state = RUNNER_SPAWNING;
        else
            send_all(r, LG_RUN, p->users);
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    if (r->state == RUNNER_STOPPING) {
        pthread_mutex_unlock(&r->mu);
        snprintf(err, errlen, "the previous test is still stopping");
        return -EBUSY;
    }
    const char *fallback = p->host && *p->host ? p->host : scenario_host(r->sc);
    if (resolve_targets(r, p, fallback, err, errlen)) {
        pthread_mutex_unlock(&r->mu);
        return -EINVAL;
    }
    snprintf(r->host, sizeof(r->host), "%s", fallback ? fallback : "");
    clear_stats(r);
    r->nhistory = 0;
    buf_reset(&r->history_csv);
    r->epoch++;
    r->open_model = p->rate > 0 || p->nstages > 0; /* --stage alone ramps from 0 */
    r->rate = p->rate;
    r->nstages = p->nstages;
    if (p->nstages) memcpy(r->stages, p->stages, p->nstages * sizeof(runner_stage));
    r->target_users = p->users;
    r->spawn_rate = p->spawn_rate > 0 ? p->spawn_rate : p->users;
    r->run_time_s = p->run_time_s;
    r->cur_users = 0;
    r->dispatched = -1;
    memset(r->class_peak, 0, r->sc->nclasses * sizeof(int));
    r->t0_ns = r->stats_t0_ns = now_ns();
    r->stop_ns = 0;
    r->start_wall = (int64_t)time(NULL);
    r->cpu_warning = 0;
    r->stop_requested = r->reset_requested = r->spawn_done_reset = r->abort_requested = 0;
    r->state = RUNNER_SPAWNING;
    if (r->open_model) {
        send_all(r, LG_RUN, p->users);
    } else {
        /* Like Locust, the first user starts at once; a rate of 1e6/s or more
         * (the quick mode) starts them all at once, as wrk does. */
        r->cur_users = r->spawn_rate >= 1e6 ? r->target_users : 1;
        spawn_step(r, 0);
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int runner_set_users(runner *r, int users, double spawn_rate)
{
    if (users < 1 || !(spawn_rate > 0)) return -EINVAL;
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    if (r->state == RUNNER_SPAWNING || r->state == RUNNER_RUNNING) {
        r->target_users = users;
        r->spawn_rate = spawn_rate;
        if (r->open_model)
            send_all(r, LG_RUN, users);
        else
            r->state = RUNNER_SPAWNING;
        pthread_cond_broadcast(&r->cv);
    } else {
        rc = -EINVAL;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void runner_stop(runner *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->state == RUNNER_SPAWNING || r->state == RUNNER_RUNNING) {
        r->stop_requested = 1;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

void runner_abort(runner *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->state == RUNNER_SPAWNING || r->state == RUNNER_RUNNING) r->stop_requested = 1;
    if (r->state != RUNNER_READY && r->state != RUNNER_STOPPED) r->abort_requested = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int runner_wait(runner *r, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    while (r->state != RUNNER_STOPPED && r->state != RUNNER_READY && rc != ETIMEDOUT) {
        if (timeout_ms < 0)
            pthread_cond_wait(&r->cv, &r->mu);
        else
            rc = pthread_cond_timedwait(&r->cv, &r->mu, &dl);
    }
    int done = r->state == RUNNER_STOPPED || r->state == RUNNER_READY;
    pthread_mutex_unlock(&r->mu);
    return done;
}

void runner_reset_stats(runner *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->state == RUNNER_SPAWNING || r->state == RUNNER_RUNNING)
        r->reset_requested = 1;
    else
        clear_stats(r);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

const scenario *runner_scenario(const runner *r)
{
    return r->sc; /* set at creation, never changed */
}

runner_state runner_get_state(const runner *r)
{
    runner *m = (runner *)r; /* the lock is not part of the logical state */
    pthread_mutex_lock(&m->mu);
    runner_state s = r->state;
    pthread_mutex_unlock(&m->mu);
    return s;
}
