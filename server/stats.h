/*
 * stats: uWSGI's stats server in the master (`stats`, `stats-http`): one JSON
 * document per connection, the field names uwsgitop and exporters read, plus
 * aiserve's own (`aiserve` at the top, `waiting`/`conns` per worker).
 *
 * The master owns the stats_srv; it polls the fds stats_pollfds gives and
 * calls stats_io. Every socket is non-blocking and each client's document is
 * written from its own bounded buffer with a deadline, so a client that never
 * reads costs a buffer until the deadline and never blocks the master.
 */
#ifndef SERVER_STATS_H
#define SERVER_STATS_H

#include <poll.h>
#include <stdint.h>

#include "lib/buf.h"
#include "server/core.h"

/* What the master knows of a worker id beyond the scoreboard. */
typedef struct stats_worker {
    int cheap; /* removed by cheaper */
    int slot;  /* current scoreboard slot, -1: none */
    /* Totals of the id's earlier instances (a slot's counters start at its spawn). */
    uint64_t requests_done, tx_done, exceptions_done, running_done;
    int respawns, harakiris;
    int64_t last_spawn; /* epoch seconds */
} stats_worker;

typedef struct stats_view {
    srv *s;
    const stats_worker *w; /* [1..processes] */
    int paused;
    const char *algo; /* cheaper algorithm, "off" */
    int active, min, max;
} stats_view;

/* Renders the document (minified JSON and a newline). 0 or -ENOMEM. */
int stats_render(const stats_view *v, buf *out);

typedef struct stats_srv stats_srv;
/* Binds addr ("host:port", ":port" or a unix socket path). NULL with err. */
stats_srv *stats_open(const char *addr, int http, char *err, size_t errlen);
/* Fills up to max pollfds (the listener, then clients); returns how many. */
int stats_pollfds(stats_srv *ss, struct pollfd *p, int max);
/* Acts on the polled fds (as filled by stats_pollfds) and expires clients. */
void stats_io(stats_srv *ss, const struct pollfd *p, int n, const stats_view *v, uint64_t now);
/* Before the master's re-exec (SIGHUP): the listening socket survives it
 * (AISERVE_STATS_FD), so connections queued meanwhile are served by the new
 * image, not reset. keep 0 undoes it (the exec failed). */
void stats_keep_across_exec(stats_srv *ss, int keep);
/* The new image has no stats (or another address): close what the previous one kept. */
void stats_drop_inherited(void);
/* Closes everything; unlink_path: remove a unix socket file (the master at exit, not a worker). */
void stats_close(stats_srv *ss, int unlink_path);

#endif
