/*
 * dist/master: `aiload -f FILE --master`, a Locust 2.x master
 * (locust/runners.py MasterRunner) on a ZeroMQ ROUTER socket. The runner
 * (created with opts.remote) stays the one place that knows the run: the web
 * UI and the headless loop start, retarget and stop it as usual, its ramp
 * gives the user count wanted now, and this thread dispatches that count to
 * the workers (spawn messages with exact users per class), merges their stats
 * reports into the runner (runner_dist_inject) and keeps Locust's worker
 * rules: ack with an index, heartbeats (missing after 3 s without one,
 * dropped after 60 s more), users redistributed when a worker joins, quits or
 * goes missing, "stop" when the run stops, "quit" to all at the end.
 *
 * Workers may be aiload or real Locust 2.x processes; the scenario's class
 * names and request names must match theirs (a Locust worker fails on a
 * class it does not define; rows the scenario lacks are not counted).
 */
#ifndef LOADGEN_DIST_MASTER_H
#define LOADGEN_DIST_MASTER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "loadgen/runner.h"
#include "loadgen/scenario.h"

typedef struct dist_master dist_master;

typedef struct dist_master_opts {
    const char *bind_host; /* NULL or "": every interface ("*") */
    int bind_port;         /* 0: 5557; -1: an ephemeral port (tests), see dist_master_port */
    double stop_timeout_s; /* sent to the workers in spawn; <= 0: None */
    /* the command line, sent as spawn's parsed_options under Locust's names
     * (locustfile, host, num_users, spawn_rate, run_time, tags, ...); may be NULL */
    const struct cli_opts *cli;
} dist_master_opts;

/* Binds and starts the master thread. NULL with err on failure. */
dist_master *dist_master_start(runner *r, const scenario *sc, const dist_master_opts *o, char *err,
                               size_t errlen);
int dist_master_port(const dist_master *m);
/* Workers connected and not missing (ready, spawning or running). */
int dist_master_workers(dist_master *m);
/* Waits until want workers are connected (checked every 100 ms), as a
 * headless Locust master does. 0, or -1 with a message on stderr when
 * max_wait_s (> 0) passed or *quit became nonzero. */
int dist_master_await(dist_master *m, int want, double max_wait_s, volatile sig_atomic_t *quit);
/* The Workers tab: [{"id","index","state","user_count","cpu_usage","memory_usage"}, ...]. */
void dist_master_workers_json(dist_master *m, buf *out);
/* Sends quit to every worker, waits briefly for their last reports, joins
 * the thread, frees. NULL is fine. */
void dist_master_free(dist_master *m);

#endif
