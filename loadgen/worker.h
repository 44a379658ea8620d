/*
 * worker: one load-generating thread. It owns an epoll loop, its users (or,
 * in the open model, its connections), their sockets and buffers, and its
 * lg_stats. Nothing it touches per request is shared with another thread.
 *
 * The runner talks to a worker only through this header: it posts a command
 * (targets, user counts, model, stop) and asks for a stats hand-over; both
 * are a mutex-protected mailbox plus an ev_async wake-up, handled by the
 * worker between events.
 */
#ifndef LOADGEN_WORKER_H
#define LOADGEN_WORKER_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "loadgen/runner.h"
#include "loadgen/scenario_int.h"
#include "loadgen/stats.h"
#include "loadgen/tls.h"

typedef struct lg_worker lg_worker;

/* Where one user class sends its requests. */
typedef struct lg_target {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char authority[272]; /* Host header value */
    const lg_tls *tls;   /* https: the run's context (owned by the runner); NULL: http */
    char tls_host[256];  /* https: the name (or address) for SNI and the certificate check */
    char prefix[2048];   /* the host URL's path, put before every request path (url.h) */
} lg_target;

#define LG_MAX_STAGES 64

typedef enum lg_phase {
    LG_IDLE,  /* nothing to do */
    LG_RUN,   /* run users / arrivals */
    LG_DRAIN, /* no new request; finish the ones in flight */
    LG_ABORT, /* fail whatever is still in flight, then idle */
} lg_phase;

/* A worker's orders. Copied into the worker; the latest one wins. */
typedef struct lg_cmd {
    lg_phase phase;
    uint64_t epoch;           /* changes on every new test: the worker restarts its users */
    const lg_target *targets; /* one per class; owned by the runner, stable while running */
    int *want;                /* closed model: users wanted per class (copied) */
    int open_model;
    uint64_t t0_ns;  /* open model: schedule origin (CLOCK_MONOTONIC) */
    uint64_t end_ns; /* no request starts at or after this (0: no run time) */
    double rate;     /* open model: total arrivals/s at t0 (all workers) */
    runner_stage stages[LG_MAX_STAGES];
    size_t nstages;
    int max_conns;      /* open model: this worker's connection cap */
    uint64_t user_base; /* first user id of this worker (ids are unique per run) */
} lg_cmd;

/* What a worker reports at each hand-over. */
typedef struct lg_worker_info {
    int users;    /* users (closed) or open connections (open) */
    int inflight; /* requests sent and not yet recorded */
    double cpu;   /* thread CPU use since the previous hand-over, 0..1 */
} lg_worker_info;

typedef struct lg_worker_cfg {
    int id, nworkers;
    const scenario *sc;
    uint64_t connect_timeout_ns, timeout_ns;
    uint64_t seed;
} lg_worker_cfg;

/* Creates the worker and starts its thread. NULL on failure. */
lg_worker *lg_worker_create(const lg_worker_cfg *cfg);
/* Asks the thread to exit, joins it, closes every socket and frees. */
void lg_worker_free(lg_worker *w);

void lg_worker_command(lg_worker *w, const lg_cmd *cmd, size_t nclasses);

/* Asks the worker to hand its stats over and waits for it (at most
 * timeout_ms); then adds them into dst under the mailbox lock. Returns 0, or
 * -ETIMEDOUT if the worker did not answer in time (its stats come next time).
 * class_users (2 x nclasses slots, may be NULL) gets this worker's users of
 * each class added, as of its last hand-over (closed model), then the most it
 * ran of each at once since the test started. */
int lg_worker_collect(lg_worker *w, lg_stats *dst, lg_worker_info *info, int *class_users,
                      int timeout_ms);

#endif
