/*
 * accept: the accept policy of a worker as plain functions of the
 * scoreboard's counts: whether a worker may accept at all, whether it should
 * leave the next connection to a less loaded sibling (prefer_other), whether
 * it keeps watching the listen sockets, and whether a keep-alive response
 * should hand its client over to an idle sibling (cheaper). worker.c reads
 * the counts and acts (epoll, eventfd wake-ups); nothing here does I/O, so
 * the policy is testable without sockets or processes (accept_test.c).
 */
#ifndef SERVER_ACCEPT_H
#define SERVER_ACCEPT_H

#include <stdint.h>

/* One worker's counts as the policy sees them. */
typedef struct accept_load {
    int load;    /* requests held by app threads + connections just accepted (fresh) */
    int conns;   /* open connections */
    int warming; /* apps not ready yet (a new worker warming its models up) */
} accept_load;

/* 1 when the worker may accept: serving, not draining, below max-connections,
 * not paused after running out of fds (pause_until, ms; 0: none). */
int accept_able(int draining, int listen_closed, int nconns, int max_conns, uint64_t pause_until,
                uint64_t now_ms);

/* Connections count as balanced within 1/64 of self's (accept_conns_slack):
 * below 64 the exact count decides; with thousands open, a worker does not
 * hand every other connection of a burst to a sibling that holds a few less,
 * since each hand-off costs epoll re-registrations and an eventfd wake-up
 * (bench/server/conn.py, 5000 idle sockets). */
#define ACCEPT_CONNS_SLACK_SHIFT 6
int accept_conns_slack(int conns);

/* 1 when a serving, able peer should take the next connection instead of
 * self. A warming worker leaves it to a ready peer, and a ready one never to
 * a warming peer: a request never waits behind a warm-up (a reload's new
 * workers, one started late) while another worker can serve it, and a
 * readiness probe answered 200 is not followed by a request that lands on a
 * worker still warming up. When none is ready, all accept as before. Between
 * workers alike in that, the peer takes it when it holds less work while all of self's app threads
 * are taken (saturated), or as much work or less and fewer connections (by more than
 * accept_conns_slack(self.conns)). Both rules
 * only point to a peer with no more load and, at equal load, fewer
 * connections, so among workers able to accept one always prefers no other. */
int accept_prefer_peer(accept_load self, int saturated, accept_load peer);

/* The first peer of peers[0..n) that self should defer to, or -1.
 * saturated: self.load >= nthreads. */
int accept_choose(accept_load self, int nthreads, const accept_load *peers, int n);

/* Whether to watch the listen sockets. *deferred: this worker left accepting
 * to a peer; the deferral ends once it may not accept or no peer is preferred
 * any more (peer_preferred). */
int accept_want(int able, int *deferred, int peer_preferred);

/* A sibling as worker_should_shed sees it. */
typedef struct accept_peer {
    int running, ready, able, conns;
} accept_peer;

/* 1 when a keep-alive response should say close so its client reconnects to
 * a sibling: requests wait for this worker's threads (waiting > 0) while a
 * serving sibling that is ready and able holds no connection at all (one the
 * cheaper just added). */
int accept_shed(int waiting, const accept_peer *peers, int n);

/* ---- the same over the scoreboard (any process; reads only) ---- */

struct sb;
struct sb_slot;
/* The slot of a serving, able sibling of self that should take the next
 * connection (accept_prefer_peer), or NULL. */
struct sb_slot *accept_prefer_other(struct sb *b, const struct sb_slot *self, accept_load me,
                                    int nthreads);
/* accept_shed for the worker in slot self_idx. Any thread. */
int accept_should_shed(struct sb *b, int self_idx);

#endif
