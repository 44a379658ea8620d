/*
 * dist/worker: `aiload -f FILE --worker --master-host H [--master-port P]`,
 * a Locust 2.x worker (locust/runners.py WorkerRunner) on ZeroMQ + msgpack:
 * a DEALER socket whose identity is "<hostname>_<32 hex>", client_ready with
 * the protocol version, heartbeats every second, a stats report every 3 s;
 * spawn / stop / quit / reconnect from the master; unknown and custom
 * messages are logged and ignored. The master (real Locust or aiload) paces
 * the ramp-up; the worker starts what it is told at once.
 *
 * One thread: the caller's. The runner's threads generate the load.
 */
#ifndef LOADGEN_DIST_WORKER_H
#define LOADGEN_DIST_WORKER_H

#include <signal.h>

#include "loadgen/runner.h"
#include "loadgen/scenario.h"

/* The Locust version aiload's protocol follows (sent in client_ready). */
#define DIST_LOCUST_VERSION "2.12.1"
#define DIST_DEFAULT_PORT   5557

/* Makes the runner of the scenario filtered by the master's -T/-E (Locust's
 * workers take tags and exclude_tags from the master's parsed_options at each
 * new test): n 0 means no filter. On success *r and *sc are replaced and the
 * old ones freed; on failure (no task left) both are kept and err says why. */
typedef int (*dist_refilter_fn)(void *ctx, const char *const *tags, size_t ntags,
                                const char *const *exclude, size_t nexclude, runner **r,
                                scenario **sc, char *err, size_t errlen);

typedef struct dist_worker_opts {
    const char *master_host;          /* NULL: 127.0.0.1 */
    int master_port;                  /* 0: 5557 */
    const char *host;                 /* -H: overrides the master's host when set */
    double report_s;                  /* stats interval; 0: 3 s (Locust's WORKER_REPORT_INTERVAL) */
    int connect_retries;              /* client_ready attempts 5 s apart; 0: 60 */
    volatile sig_atomic_t *quit_flag; /* set by a signal: send "quit" and leave */
    /* NULL: the master's tags are not applied (the quick mode's one task) */
    dist_refilter_fn refilter;
    void *refilter_ctx;
    const char *const *tags; /* the filter *sc was made with (the worker's -T/-E) */
    size_t ntags;
    const char *const *exclude_tags;
    size_t nexclude_tags;
} dist_worker_opts;

/* Runs until the master says quit or *quit_flag is set. *r must be freshly
 * created for *sc; a master's tags may replace both (o->refilter), so the
 * caller frees *r and *sc afterwards. Returns 0, or 1 with a message on stderr
 * (the master never answered, socket failure). */
int dist_worker_run(runner **r, scenario **sc, const dist_worker_opts *o);

#endif
