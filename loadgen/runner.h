/*
 * runner: one load test, controllable while it runs. This is the control and
 * statistics API shared by the headless CLI (loadgen/main.c) and the web UI.
 *
 * Threads: runner_create() starts N worker threads (each with its own epoll
 * loop, users, connections and histograms; nothing shared on the hot path)
 * and one control thread (spawning, run-time limit, merging worker stats once
 * a second, per-second history). Every function below may be called from any
 * thread, e.g. an HTTP handler of the web UI; they lock briefly and never wait
 * on the network. Only runner_wait() blocks.
 *
 * Units: times in the snapshot are milliseconds as doubles (measured in
 * microseconds); rates are per second.
 *
 * Ownership: the runner borrows the scenario (it must outlive the runner);
 * strings passed in are copied; snapshots and buffers belong to the caller.
 */
#ifndef LOADGEN_RUNNER_H
#define LOADGEN_RUNNER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/buf.h"
#include "loadgen/scenario.h"

typedef struct runner runner;

/* Locust's runner states (lower-case names via runner_state_name()). */
typedef enum runner_state {
    RUNNER_READY,    /* created, never started */
    RUNNER_SPAWNING, /* users are being started at the spawn rate */
    RUNNER_RUNNING,  /* all users started (or the open model is running) */
    RUNNER_STOPPING, /* no new requests; in-flight ones are being awaited */
    RUNNER_STOPPED,  /* all requests recorded; may be started again */
} runner_state;

/* Fixed at creation. Zero fields take the defaults shown. */
typedef struct runner_opts {
    int threads;              /* worker threads; 0: one per online core */
    double connect_timeout_s; /* 0: 10 s */
    double timeout_s;         /* response timeout per request; 0: 60 s */
    double stop_timeout_s;    /* how long stop awaits in-flight requests; 0: 10 s */
    int reset_stats;          /* 1: reset stats once spawning completes (--reset-stats) */
    int full_history;         /* 1: history keeps per-name rows too (--csv-full-history) */
    unsigned seed;            /* random seed for wait times and substitutions; 0: time */
    int tls_insecure;         /* https: 1 skips certificate and host name checks (--insecure) */
    const char *tls_cacert;   /* https: extra trusted CAs, PEM (--cacert); read by runner_create */
    int remote;               /* 1: distributed master; its own threads get no users, remote workers
                                 generate the load and their stats come in via runner_dist_inject() */
} runner_opts;

/* One stage of a ramping open model: the arrival rate goes linearly from the
 * previous stage's end rate (or rate_start) to target over duration_s. */
typedef struct runner_stage {
    double duration_s;
    double target;
} runner_stage;

/* Parameters of a start (or of a change while running). */
typedef struct runner_start_params {
    int users;         /* closed model: peak users; open model: max connections */
    double spawn_rate; /* users started per second (> 0) */
    const char *host;  /* "http[s]://host[:port]"; NULL: the scenario's host */
    double run_time_s; /* 0: until runner_stop(); counted from start, ramp-up included */
    double rate;       /* > 0: open model, arrivals per second (constant or the start rate) */
    const runner_stage *stages; /* open model ramping stages, copied; may be NULL */
    size_t nstages;
} runner_start_params;

/* Returns NULL and a message in err on failure (bad options, no threads). */
runner *runner_create(const scenario *sc, const runner_opts *opts, char *err, size_t errlen);

/* Stops (awaiting in-flight requests), joins every thread, frees the runner. */
void runner_free(runner *r);

/* Starts a test. While SPAWNING or RUNNING this retargets the run instead:
 * the new user count and spawn rate apply from now on (Locust's "Edit");
 * host and run_time are then ignored. From STOPPED it starts a fresh test with
 * reset stats. Returns 0, or -EINVAL with a message in err (bad host, users < 1,
 * spawn_rate <= 0, host unresolvable). */
int runner_start(runner *r, const runner_start_params *p, char *err, size_t errlen);

/* Changes users and spawn rate of a running test. 0, or -EINVAL when not running. */
int runner_set_users(runner *r, int users, double spawn_rate);

/* Asks the run to stop: no new request starts; in-flight requests are awaited
 * for up to stop_timeout_s, then the rest are recorded as failed ("aborted at
 * stop"). Returns at once; the state goes STOPPING, then STOPPED. */
void runner_stop(runner *r);

/* Like runner_stop(), but requests in flight are failed at once instead of
 * awaited (a second Ctrl+C). */
void runner_abort(runner *r);

/* Blocks until the state is STOPPED (or READY), or timeout_ms passes (-1: no
 * limit). Returns 1 when stopped, 0 on timeout. */
int runner_wait(runner *r, int timeout_ms);

/* Clears every statistic, error and the history; the run goes on. */
void runner_reset_stats(runner *r);

runner_state runner_get_state(const runner *r);
const char *runner_state_name(runner_state s); /* "ready", "spawning", ... */

/* The scenario the runner was created with (borrowed, immutable; e.g. for the
 * web UI's task ratios). */
const scenario *runner_scenario(const runner *r);

/* ---- statistics snapshot ---- */

/* Locust's PERCENTILES_TO_REPORT, the one table of them: every percentile
 * array below (pct_ms[RUNNER_P99], ...) and every column, key and label the
 * console, CSV, JSON, HTML report and web UI write come from it. */
typedef enum runner_pct {
    RUNNER_P50,
    RUNNER_P66,
    RUNNER_P75,
    RUNNER_P80,
    RUNNER_P90,
    RUNNER_P95,
    RUNNER_P98,
    RUNNER_P99,
    RUNNER_P999,
    RUNNER_P9999,
    RUNNER_P100,
    RUNNER_NPCT
} runner_pct;

typedef struct runner_pct_info {
    double fraction;   /* 0.5 ... 1.0 */
    const char *label; /* Locust's column label, "50%" ... "100%"; JSON keys drop the '%' */
} runner_pct_info;

extern const runner_pct_info runner_pcts[RUNNER_NPCT];

/* The aggregate's latency spectrum of the --json summary (as wrk2 --latency
 * prints it), in percent: 0, 10, ..., 90, 95, 99, 99.9, 99.99, 99.999, 100. */
#define RUNNER_NSPECTRUM 16
extern const double runner_spectrum[RUNNER_NSPECTRUM];

typedef struct runner_entry {
    char method[16]; /* "GET"; "" for the aggregate */
    char name[256];  /* stats name; "Aggregated" for the aggregate */
    uint64_t num_requests;
    uint64_t num_failures;
    double avg_ms, min_ms, max_ms, median_ms; /* 0 when num_requests == 0 */
    double avg_content_length;                /* bytes */
    double total_rps, total_fail_per_sec;     /* whole run */
    double current_rps, current_fail_per_sec; /* Locust's current window */
    double pct_ms[RUNNER_NPCT];               /* whole run, corrected latency */
    double current_pct_ms[RUNNER_NPCT];       /* last 10 s window, corrected */
    double service_pct_ms[RUNNER_NPCT];       /* whole run, uncorrected service time */
    double service_avg_ms;
    uint64_t not_on_time; /* requests sent more than 10 ms after their intended start */
} runner_entry;

typedef struct runner_error {
    char method[16];
    char name[256];
    char error[256]; /* e.g. "HTTPError(404)", "ConnectionRefusedError" */
    uint64_t occurrences;
    int64_t first_seen, last_seen; /* Unix seconds */
} runner_error;

typedef struct runner_snapshot {
    runner_state state;
    int user_count;   /* users running now */
    int target_users; /* the -u of the test */
    double spawn_rate;
    int open_model;     /* 1 when --rate drives the run */
    double target_rate; /* open model: arrivals per second now */
    char host[256];
    int64_t start_time; /* Unix seconds the test started; 0 before */
    double elapsed_s;   /* seconds since start (frozen at stop) */
    double run_time_s;  /* requested limit, 0: none */
    size_t nentries;    /* per-name rows, sorted by (name, method) */
    runner_entry *entries;
    runner_entry total; /* the Aggregated row */
    size_t nerrors;
    runner_error *errors;     /* sorted by occurrences, descending */
    double fail_ratio;        /* failures / requests of the aggregate, 0..1 */
    uint64_t dropped;         /* open model: arrivals never sent (run ended first) */
    int cpu_warning;          /* 1 once a worker thread ran above 90 % CPU */
    double cpu_percent;       /* busiest worker thread's CPU over the last second */
    size_t nclasses;          /* closed model, per user class (scenario order): */
    int *class_users;         /* users running now */
    int *class_peak;          /* the most users seen at once since the start */
    const char **class_names; /* borrowed from the scenario (it outlives the runner) */
    /* where the time went: successful responses that carried Server-Timing,
     * their service time split into network+client, server queue and app
     * (loadgen/servertiming.h order); whole run, all names together */
    uint64_t timing_count;
    double timing_avg_ms[3];
    double timing_pct_ms[3][RUNNER_NPCT];
    /* runner_snapshot_take_full() only (the --json summary), else 0 and NULL:
     * per class its weight, fixed count and share of target_users (closed
     * model), and the aggregate's spectrum (runner_spectrum order), corrected
     * and service time */
    int full;
    double *class_weight;
    int *class_fixed, *class_target;
    double spectrum_ms[RUNNER_NSPECTRUM], service_spectrum_ms[RUNNER_NSPECTRUM];
} runner_snapshot;

/* Takes a consistent snapshot (fresh up to the last 1 s merge). NULL on OOM. */
runner_snapshot *runner_snapshot_take(runner *r);
/* The same plus the fields under "full" (costlier: the spectrum walks the
 * whole-run histograms). */
runner_snapshot *runner_snapshot_take_full(runner *r);
void runner_snapshot_free(runner_snapshot *s);

/* ---- per-second history (one sample per second since the start) ---- */

typedef struct runner_history_point {
    int64_t time; /* Unix seconds */
    int user_count;
    double current_rps, current_fail_per_sec;
    double current_p50_ms, current_p95_ms;
    double current_p99_ms; /* the web UI and HTML report chart p50/p95/p99 */
    uint64_t total_requests, total_failures;
} runner_history_point;

/* Copies up to max points starting at index from (0 = the first second) into
 * out; returns how many were copied. runner_history_len() gives the total. */
size_t runner_history_len(runner *r);
size_t runner_history_get(runner *r, size_t from, runner_history_point *out, size_t max);

/* ---- Locust-compatible files (exact names and headers, see docs/aiload.md) ----
 * (loadgen/runner_files.c: a snapshot taken here, formatted by loadgen/report.c) */

/* PREFIX_stats.csv: the current snapshot, one row per name plus Aggregated. */
int runner_csv_stats(runner *r, buf *out);
/* PREFIX_stats_history.csv: header plus every row recorded so far (all names
 * when full_history, otherwise the Aggregated rows only). */
int runner_csv_history(runner *r, buf *out);
/* Only the rows recorded after *cursor (0 at first, header included then);
 * *cursor advances. For appending to an open file once a second. */
int runner_csv_history_append(runner *r, buf *out, size_t *cursor);
/* PREFIX_failures.csv and PREFIX_exceptions.csv (a scenario raises nothing:
 * header only, as Locust writes it for a run without any; a distributed
 * master lists its workers' exceptions). */
int runner_csv_failures(runner *r, buf *out);
int runner_csv_exceptions(runner *r, buf *out);

/* Machine-readable summary: every entry with full percentiles (corrected and
 * service time), errors, totals, open-model counters. */
int runner_json_summary(runner *r, buf *out);
/* PREFIX_server_timing.csv: the Server-Timing split of the service time
 * (nothing when no response carried the header). */
int runner_csv_timing(runner *r, buf *out);

/* ---- distributed mode (loadgen/dist): what a worker reports, what a master merges ---- */

#define RUNNER_DELTA_SECS 16
struct lg_stats;
/* The statistics recorded since the last hand-over (a Locust worker sends
 * such a stripped report every 3 s), with per-second request and failure
 * counts for the master's current-RPS window. Index nentries of sec_nreq and
 * sec_nfail is the aggregate. */
typedef struct runner_delta {
    struct lg_stats *st;
    size_t nentries;
    size_t nsec;
    int64_t sec[RUNNER_DELTA_SECS]; /* Unix seconds, ascending */
    uint64_t *sec_nreq, *sec_nfail; /* [k * (nentries + 1) + i] */
    double last_ts;                 /* Unix time of the last merge with requests; 0: none */
} runner_delta;
runner_delta *runner_delta_create(size_t nentries);
void runner_delta_free(runner_delta *d);
void runner_delta_reset(runner_delta *d);
/* Adds st (merged at Unix second now) to d. */
void runner_delta_add(runner_delta *d, const struct lg_stats *st, int64_t now);

/* Worker: from now on the runner also accumulates every merge into a delta;
 * this hands back what accumulated (an empty delta at the first call) and
 * installs fresh (reset here) in its place. Both must have the runner's
 * nentries. */
runner_delta *runner_dist_take(runner *r, runner_delta *fresh);

/* Worker: the master dispatches exact users per class (Locust's
 * user_classes_count), counts in scenario class order. While spawning or
 * running the run is retargeted at once (the master does the ramp-up); from
 * READY/STOPPED it starts with the given host (NULL: the scenario's). A total
 * of 0 users stops nothing and starts nothing. 0 or -EINVAL with err. */
int runner_dist_set_users(runner *r, const int *per_class, const char *host, char *err,
                          size_t errlen);

/* Master (opts.remote): the users the run wants now (the ramp moves it at the
 * spawn rate), the state and the run's host. For the dispatcher. */
runner_state runner_dist_target(runner *r, int *users, char *host, size_t hostlen);
/* Master: remote stats, merged at the next tick as if recorded here. */
void runner_dist_inject(runner *r, const struct lg_stats *st);
/* Master: users running on the workers per class (scenario order), and how
 * many workers are still stopping, as counted when the run was in state seen
 * (STOPPING waits until the master has seen the stop and its workers
 * answered, up to the stop timeout, so their last reports are in the
 * totals). Reports injected after STOPPED are merged at once. */
void runner_dist_set_remote(runner *r, const int *per_class, int busy, runner_state seen);

/* Master: 1 when the run is open-model, with its schedule (rate, stages:
 * LG_MAX_STAGES room) and the seconds since it started. */
int runner_dist_open_model(runner *r, double *rate, runner_stage *stages, size_t *nstages,
                           double *elapsed_s);
/* Worker: the master's open model, this worker's share: a schedule (rate,
 * stages) elapsed_s into its run, at most users connections. From READY or
 * STOPPED the test starts at the schedule's point elapsed_s; while an
 * open-model test runs the schedule changes from now on without a burst or a
 * gap (the arrivals so far stay). 0 or -EINVAL with err. */
int runner_dist_set_open(runner *r, int users, double rate, const runner_stage *stages,
                         size_t nstages, double elapsed_s, const char *host, char *err,
                         size_t errlen);

/* Worker: the master's stop_timeout (seconds, > 0) replaces the runner's own
 * from the next stop on, as a Locust worker takes it from spawn. */
void runner_dist_set_stop_timeout(runner *r, double seconds);

/* Master: an "exception" message from worker node (Locust's
 * runner.exceptions): rows are counted per (msg, traceback) with the nodes
 * that sent them. Texts are truncated at 64 KiB, at most 1000 rows are kept
 * (later new ones are counted into the last row). Returns the row's count
 * (0: out of memory). */
uint64_t runner_dist_exception(runner *r, const char *msg, const char *traceback, const char *node);
/* Master: empties the table (a new test starts, as Locust's master does). */
void runner_dist_exceptions_clear(runner *r);
/* The table as PREFIX_exceptions.csv rows (after the header), as GET
 * /exceptions's array items, as the report's HTML section body and as the
 * console summary (nothing when empty). 0 or -ENOMEM. */
int runner_exceptions_csv_rows(runner *r, buf *out);
int runner_exceptions_json(runner *r, buf *out);
int runner_exceptions_html(runner *r, buf *out);
int runner_exceptions_console(runner *r, buf *out);
/* 1 when the runner keeps an exceptions table (a distributed master). */
int runner_has_exceptions(const runner *r);

/* Helpers: write a buf produced above to a FILE* / to path (atomic rename). */
int runner_write_file(const char *path, const buf *b);
int runner_write_stream(FILE *f, const buf *b);

#endif
