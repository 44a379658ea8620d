/*
 * advise: `aiload advise [options] -- COMMAND [ARGS...]` answers the
 * article's open question "threads or processes?" by measuring. It starts
 * COMMAND (any server taking uWSGI's --http, --processes and --threads flags)
 * on configurations it picks adaptively, drives each with the runner (closed
 * model to saturation, then an open model at a fixed fraction of it), reads
 * the server's CPU clocks and PSS from /proc, and recommends the best one.
 *
 * The pure parts (options, the search plan, the choice, /proc parsing) are
 * here so they can be tested without processes; advise.c runs them.
 */
#ifndef LOADGEN_ADVISE_H
#define LOADGEN_ADVISE_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/buf.h"

#define ADVISE_MAX_CONFIGS   32
#define ADVISE_LOAD_FRACTION 0.7  /* the open-model check runs at this share of saturation */
#define ADVISE_NOISE         0.10 /* two rates closer than this (relative) are within noise */

typedef struct advise_opts {
    const char *path;  /* --url PATH (default "/") */
    const char *file;  /* -f SCENARIO: drives each configuration instead of GET PATH */
    double p99_ms;     /* --p99: latency bound for the recommendation; 0: none */
    double budget_s;   /* --budget: total time for the search (default 300 s) */
    const char *json;  /* --json FILE */
    const char *html;  /* --html FILE */
    int max_threads;   /* --max-threads (default 64) */
    int max_processes; /* --max-processes (default: online cores + 1) */
    double startup_s;  /* --startup-timeout: readiness wait per start (default 120 s) */
    int batch;         /* --batch: a native model: also try max-batch-size / batch-delay-us */
    int help;
    char **cmd; /* COMMAND ARGS..., borrowed from argv, NULL-terminated */
    int ncmd;
} advise_opts;

/* Parses argv (argv[0] is "advise"). 0, or -1 with a message in err. */
int advise_parse(int argc, char **argv, advise_opts *o, char *err, size_t errlen);
void advise_usage(buf *b);

/* One measured configuration. */
typedef struct advise_result {
    int processes, threads;
    int batch, delay_us;           /* --max-batch-size / --batch-delay-us passed; 0: not passed */
    double rps;                    /* closed model, saturated (the fastest run) */
    int runs;                      /* how many saturation runs the rate averages */
    double p50_ms, p99_ms;         /* open model at ADVISE_LOAD_FRACTION * rps */
    double check_rps;              /* rate the open model achieved */
    double cpu_ms_per_req;         /* server process tree CPU (user+sys) per request */
    double wall_ms_per_req;        /* slots / rps: how long a request holds a slot */
    double runq_ms_per_req;        /* of that, time runnable but not running (a busy machine) */
    double pss_mib;                /* server process tree PSS after the run */
    double idle_cores;             /* the machine's idle cores during the saturated run */
    double st_app_ms, st_queue_ms; /* Server-Timing means (app, queue) when sent; else 0 */
    unsigned long long requests, failures;
    int failed_start; /* 1: the server did not come up */
} advise_result;

/* The search: which configuration to measure next given what was measured.
 * Returns 1 and sets *p, *t, or 0 when the search is done. ncpu bounds the
 * processes (with max_processes); results are in measurement order. */
int advise_next(const advise_result *res, size_t n, int ncpu, const advise_opts *o, int *p, int *t);

/* After advise_next() is done, with --batch: the batcher's settings to try
 * at the best processes x threads (max-batch-size 1, 4, 16, then
 * batch-delay-us 500 and 2000 at the best size). 1 and the next, or 0. */
int advise_next_batch(const advise_result *res, size_t n, int *p, int *t, int *batch,
                      int *delay_us);

/* The ratio rps(1 process, 2 threads) / rps(1, 1): the gain from a second
 * thread, about 1 when the GIL (or the CPU) serialises requests. 0 if unknown. */
double advise_thread_gain(const advise_result *res, size_t n);
double advise_process_gain(const advise_result *res, size_t n);

/* Share of a request's own time spent on CPU at 1 process x 1 thread, 0..1;
 * -1 when not measured. Its own time is the app phase of Server-Timing when
 * the server sends it, else the wall time minus the run-queue wait. */
double advise_cpu_share(const advise_result *res, size_t n);

/* Index of the recommended result: the highest rate among those meeting the
 * p99 bound (all, if none does). Rates within noise of it are equal; among
 * them a CPU-bound app (cpu share > 0.6) gets one thread per process and the
 * process count nearest the cores, any other app the fewest slots (processes
 * x threads), then fewest processes. -1 if none ran. */
int advise_choose(const advise_result *res, size_t n, double p99_ms, double noise, int ncpu);

/* The noise band the choice uses: 0.10, or 0.03 once the leaders were
 * measured again (repeated & 1); 0.20 when the app is CPU-bound and the
 * machine had no idle core (< 0.5) while 1 process x 1 thread ran saturated:
 * rates then measure the scheduler's share more than the app. */
double advise_noise(const advise_result *res, size_t n, int ncpu, int repeated);

/* Indices of results within noise of the best, best first (for repeats). */
size_t advise_close_calls(const advise_result *res, size_t n, double p99_ms, double noise, int *out,
                          size_t max);

/* /proc parsing (pure, for tests): utime+stime in clock ticks and the
 * process group from a /proc/PID/stat line; -1 when malformed. */
int advise_parse_stat(const char *line, unsigned long long *ticks, pid_t *pgrp);
/* The "Pss:" line of smaps_rollup in KiB; -1 when absent. */
long long advise_parse_pss(const char *text);

/* Sum over every process whose process group is pgrp: CPU seconds, seconds
 * its threads sat runnable on a run queue (other load on the machine:
 * /proc/PID/task/TID/schedstat) and PSS in MiB (any may be NULL). Returns
 * how many processes were found. */
int advise_tree_usage(pid_t pgrp, double *cpu_s, double *runq_s, double *pss_mib);
/* Idle (idle + iowait) and total jiffies of the machine from /proc/stat's
 * first line; -1 when unreadable. */
int advise_parse_cpu_line(const char *line, unsigned long long *idle, unsigned long long *total);
int advise_machine_idle(unsigned long long *idle, unsigned long long *total);

/* The second field of a schedstat line (ns waiting to run); -1 when malformed. */
long long advise_parse_schedstat(const char *line);

/* Writes the report pieces (pure). */
void advise_json(buf *b, const advise_result *res, size_t n, int best, double noise,
                 const char *reasoning);
void advise_html(buf *b, const advise_result *res, size_t n, int best, const char *reasoning,
                 const char *ini);
void advise_table(buf *b, const advise_result *res, size_t n, int best);
/* Explains the measurements; writes the ini snippet for res[best] into ini. */
void advise_explain(buf *b, buf *ini, const advise_result *res, size_t n, int best,
                    const advise_opts *o, int ncpu, int repeated);

/* `aiload advise ...`: the subcommand; returns the exit code. */
int advise_main(int argc, char **argv);

#endif
