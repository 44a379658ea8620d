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

typedef struct dist_worker_opts {
    const char *master_host;          /* NULL: 127.0.0.1 */
    int master_port;                  /* 0: 5557 */
    const char *host;                 /* -H: overrides the master's host when set */
    double report_s;                  /* stats interval; 0: 3 s (Locust's WORKER_REPORT_INTERVAL) */
    int connect_retries;              /* client_ready attempts 5 s apart; 0: 60 */
    volatile sig_atomic_t *quit_flag; /* set by a signal: send "quit" and leave */
} dist_worker_opts;

/* Runs until the master says quit or *quit_flag is set. r must be freshly
 * created for sc. Returns 0, or 1 with a message on stderr (the master never
 * answered, socket failure). */
int dist_worker_run(runner *r, const scenario *sc, const dist_worker_opts *o);

#endif
