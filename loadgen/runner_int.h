/*
 * runner internals shared by runner.c (control thread, merging, snapshots),
 * runner_dist.c (distributed mode) and runner_files.c (Locust's files and
 * the JSON summary from a snapshot). Fields below "mu"
 * are guarded by it; the control thread is the only writer of the stats.
 */
#ifndef LOADGEN_RUNNER_INT_H
#define LOADGEN_RUNNER_INT_H

#include <pthread.h>

#include "lib/hist.h"
#include "loadgen/runner.h"
#include "loadgen/stats.h"
#include "loadgen/worker.h"

#define LG_WINDOW 10              /* seconds in Locust's "current" window */
#define LG_RING   (LG_WINDOW + 1) /* the window plus the second in progress */

/* One second of counts, kept for the current-window figures. Index nentries
 * is the aggregate. */
typedef struct lg_second {
    uint64_t *nreq, *nfail;
    hist **lat; /* 2-digit histograms: cheap to sum over the window */
} lg_second;

struct runner {
    const scenario *sc;
    runner_opts opts;
    int nworkers;
    lg_worker **workers;
    size_t nentries;
    pthread_t ctl;
    int ctl_started;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit;
    runner_state state;
    uint64_t epoch;
    int open_model;
    int target_users;
    double spawn_rate;
    double cur_users; /* users started so far (moves toward target_users) */
    int dispatched;   /* the count last sent to the workers */
    double rate;
    runner_stage stages[LG_MAX_STAGES];
    size_t nstages;
    double run_time_s;
    char host[256];
    lg_target *targets;
    lg_tls *tls; /* https: one context per runner, made at the first https host (or at
                    creation with a cacert), read-only once a worker has seen it */
    uint64_t t0_ns, stop_ns, last_tick_ns, stats_t0_ns;
    int64_t start_wall;
    int stop_requested, reset_requested, spawn_done_reset, abort_requested;
    int user_count; /* reported by the workers at the last merge */
    /* per class (4 x nclasses ints in one block): users now and the most at
     * once since the start (under mu), then the control thread's scratch
     * (the same two, summed over the workers) */
    int *class_users, *class_peak, *class_tmp;
    int *class_fixed;   /* distributed worker: users per class set by the master, or NULL */
    runner_delta *dist; /* distributed worker: stats since the last report, or NULL */
    /* distributed master (opts.remote): what the workers reported */
    lg_stats *remote;  /* stats not merged yet */
    int *remote_class; /* users per class on the workers */
    int remote_users;
    int remote_busy;        /* workers still stopping; -1: the master has not seen the stop yet */
    struct runner_exc *exc; /* master: the workers' exceptions (Locust's runner.exceptions) */
    size_t nexc;
    double cpu;
    int cpu_warning;

    /* statistics */
    lg_stats *total; /* whole run, per entry */
    lg_stats *sec;   /* the second being collected (control thread only) */
    hist *agg_lat, *agg_svc;
    lg_second ring[LG_RING];
    size_t ring_pos, ring_filled;
    hist *win_tmp; /* scratch for window percentiles (under mu) */
    runner_history_point *history;
    size_t nhistory, caphistory;
    buf history_csv; /* data rows of PREFIX_stats_history.csv so far */
};

/* Merges r->sec into the totals and the second in progress (advance: close
 * that second). Caller holds mu. */
void runner_merge_locked(runner *r, int advance);

/* runner_dist.c (caller holds mu): a master's remote stats into r->sec, its
 * users into r->user_count and class_tmp, the workers still stopping into
 * *inflight. */
void runner_dist_collect(runner *r, int *users, int *inflight);
/* runner_dist.c: frees the exceptions table (runner_free). */
void runner_dist_free_exceptions(runner *r);

#endif
