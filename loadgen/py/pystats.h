/*
 * pystats: the statistics of a Python locustfile run. Unlike a scenario's
 * fixed rows, the rows appear as the users' code names them (name= or the
 * URL path), and errors are Locust's own exception texts. One table per
 * process, written and read by the process's Python thread only (gevent runs
 * every user on it), so nothing here locks.
 *
 * The snapshot it produces is a runner_snapshot, so the console tables, CSV
 * files and JSON come out of loadgen/report.c exactly as on the ini path.
 */
#ifndef LOADGEN_PY_PYSTATS_H
#define LOADGEN_PY_PYSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "loadgen/runner.h"

typedef struct pystats pystats;

pystats *pystats_create(void);
void pystats_free(pystats *p);

/* The row of (method, name), created when new: its index, or -ENOMEM.
 * Names longer than a row holds are cut (as runner_entry's 255 bytes). */
int pystats_entry(pystats *p, const char *method, const char *name);

/* The method and name of row e (cut to the sizes given). 0 or -EINVAL. */
int pystats_entry_name(const pystats *p, int e, char *method, size_t mlen, char *name, size_t nlen);

/* One request of row e: lat_us from its intended start, svc_us from its
 * actual start; error: NULL on success, else Locust's text of the failure. */
int pystats_record(pystats *p, int e, int64_t lat_us, int64_t svc_us, uint64_t bytes,
                   const char *error, int64_t now_ns);

/* A worker's report of row e (a Python master merging Locust's StatsEntry
 * deltas): nreq requests, nfail of them failed, bytes; response times as n
 * buckets (val_us[i] recorded cnt[i] times); sum_us: the exact sum of the
 * response times when the worker sent it, else < 0 (the mean is then the
 * buckets'). Counted in the current second's window. 0 or -EINVAL. */
int pystats_merge(pystats *p, int e, uint64_t nreq, uint64_t nfail, uint64_t bytes,
                  const int64_t *val_us, const uint64_t *cnt, size_t n, int64_t sum_us,
                  int64_t now_ns);

/* count occurrences of error text on row e (a worker's report). 0, -EINVAL
 * or -ENOMEM. */
int pystats_add_error(pystats *p, int e, const char *text, uint64_t count);

/* Clears every count (--reset-stats, or a new test); the rows stay. */
void pystats_reset(pystats *p, int64_t now_ns);

/* Closes the second in progress when a second has passed since the last
 * close (the current-window figures). Call at least once a second. */
void pystats_tick(pystats *p, int64_t now_ns);

/* Freezes elapsed-time figures at now_ns (the end of the run); 0 thaws. */
void pystats_stop(pystats *p, int64_t now_ns);

/* A snapshot in the runner's form; the fields the runner knows and a table
 * does not (state, users, host...) are left to the caller. NULL on OOM. */
runner_snapshot *pystats_snapshot(pystats *p, int64_t now_ns);

#endif
