/*
 * snapshot: a runner_snapshot's rows computed from counts and histograms.
 * The runner (loadgen/runner.c) and the Python locustfile stats
 * (loadgen/py/pystats.c) keep their counts differently but build their
 * snapshots with these, so both report the same figures the same way.
 */
#ifndef LOADGEN_SNAPSHOT_H
#define LOADGEN_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/hist.h"
#include "loadgen/runner.h"
#include "loadgen/stats.h"

/* A zeroed snapshot with room for nentries rows and nerrors errors (counts
 * 0 until filled). NULL on OOM. */
runner_snapshot *lg_snapshot_alloc(size_t nentries, size_t nerrors);

/* The whole-run figures of a row from its counts and histograms (e->lat:
 * corrected, e->svc: service time) over secs seconds; a row without requests
 * gets its count only. */
void lg_snapshot_fill(runner_entry *o, const lg_estat *e, double secs);

/* The current-window figures of a row: nreq and nfail over the last filled
 * seconds (at least 1) and win, the sum of their latency histograms. */
void lg_snapshot_window(runner_entry *o, uint64_t nreq, uint64_t nfail, const hist *win,
                        size_t filled);

/* The history sample of a snapshot taken at Unix second now. */
runner_history_point lg_snapshot_point(const runner_snapshot *s, int64_t now);

/* Rows by (name, method), errors by occurrences, most first. */
void lg_snapshot_sort(runner_snapshot *s);

#endif
