/*
 * Internals of a worker thread shared by worker.c (users, arrivals, timers,
 * mailbox) and conn.c (the HTTP/1.1 keep-alive client). Everything here is
 * touched by the worker's own thread only, except the fields marked
 * "mailbox", which are guarded by mu.
 */
#ifndef LOADGEN_WORKER_INT_H
#define LOADGEN_WORKER_INT_H

#include <pthread.h>
#include <sys/uio.h>

#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/http1.h"
#include "loadgen/worker.h"

#define LG_SCRATCH   65536      /* per-worker receive buffer */
#define LG_HEAD_MAX  65536      /* largest response head accepted */
#define LG_BODY_KEEP (1u << 20) /* body kept for expect_body checks */

typedef enum conn_state {
    CS_FREE,       /* slot unused */
    CS_IDLE,       /* between requests (thinking, or waiting for an arrival) */
    CS_CONNECTING, /* request pending, TCP connect in progress */
    CS_HANDSHAKE,  /* request pending, TLS handshake in progress */
    CS_WRITING,    /* request partly written */
    CS_READING,    /* request written, response not complete */
} conn_state;

/* A prebuilt request head (static requests only: built once per test). */
typedef struct lg_pre {
    char *head;
    size_t len;
} lg_pre;

/* One simulated user (closed model) or one connection (open model). */
typedef struct lg_conn {
    lg_worker *w;
    uint32_t slot;
    uint32_t gen; /* bumped when the slot ends or a pending wake is void */
    int fd;
    conn_state state;
    int cls;
    int retiring;
    int reused;   /* the socket already carried a response */
    int retried;  /* this request was resent once after a stale keep-alive */
    int waking;   /* a wake for this user is in the heap */
    int starting; /* the request in flight is an on_start request */
    uint64_t user_id, seq, rng;
    size_t on_start_next, seq_next;
    uint64_t pace_next; /* constant_pacing: intended start of the next task */

    /* the request in flight (fields from req on survive a new user in the slot) */
    const sc_request *req;
    const lg_pre *pre;
    uint64_t t_intended, t_start, deadline; /* ns, CLOCK_MONOTONIC */
    struct iovec iov[2];
    int iovcnt;
    buf out, obody; /* rendered head and body of a dynamic request */

    /* the response */
    char *rbuf; /* a head that spans reads (LG_HEAD_MAX, allocated on first need) */
    size_t rlen, last_len;
    int head_done, status, chunked, close_after;
    int64_t remaining; /* body bytes left; -1: until the connection closes */
    uint64_t body_bytes;
    http1_chunked ch;
    buf body;                       /* kept only when req->contains */
    int st_have;                    /* LG_ST_HAVE_* of its Server-Timing header; 0: none */
    int64_t st_queue_us, st_app_us; /* what that header said */

    /* https only: NULL / 0 on plain http. ssl belongs to the socket (freed by
     * lg_conn_close); sess to the user (kept across reconnects, freed when the
     * user ends). */
    struct ssl_st *ssl;
    struct ssl_session_st *sess;
    int tls_code; /* the last TLS error (LG_ERR_TLS code) */
    int tls_kick; /* EV_WRITE is watched only to be woken again (see conn.c) */
} lg_conn;

typedef struct lg_wake {
    uint64_t at;
    uint32_t slot, gen;
} lg_wake;

struct lg_worker {
    lg_worker_cfg cfg;
    const scenario *sc;
    pthread_t thread;
    int started;
    ev_loop *loop;
    int tfd;           /* timerfd driving wakes, arrivals and the timeout sweep */
    char *scratch;     /* LG_SCRATCH bytes every read lands in first */
    uint64_t armed_at; /* 0: not armed */

    /* mailbox */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    lg_cmd cmd;
    int *cmd_want;
    int cmd_pending, quit;
    uint64_t flush_req, flush_done;
    lg_stats *outbox;
    lg_worker_info info;
    int *info_have; /* have[], then peak[], per class at the last hand-over */

    /* thread-local */
    lg_cmd cur;
    int *want, *have;
    int *peak; /* the most users of each class at once in this test (epoch) */
    lg_stats *st;
    lg_conn **conns;
    size_t nconns, capconns;
    uint32_t *free_slots; /* stack of CS_FREE slots (capacity capconns) */
    size_t nfree;
    lg_wake *heap;
    size_t nheap, capheap;
    lg_pre **pre_tasks, **pre_start; /* [class][request] */
    size_t nclasses;
    uint64_t spawned;
    int users, inflight;
    uint64_t sweep_at;
    uint64_t cpu_prev, wall_prev;
    /* open model */
    uint64_t next_k, next_at;
    uint32_t *idle; /* stack of idle connection slots */
    size_t nidle;
    int open_conns;
};

/* conn.c */
void lg_conn_begin(lg_worker *w, lg_conn *c, const sc_request *r, const lg_pre *pre,
                   uint64_t intended, uint64_t now);
void lg_conn_close(lg_worker *w, lg_conn *c);
/* lg_conn_close, and forgets the user's TLS session: the slot's next user is a
 * new client. */
void lg_conn_end_user(lg_worker *w, lg_conn *c);
void lg_conn_fail(lg_worker *w, lg_conn *c, int kind, int code, uint64_t now);
void lg_conn_sweep(lg_worker *w, uint64_t now);
int lg_conn_build_pre(const sc_request *r, const lg_target *t, lg_pre *out);

/* worker.c: called by conn.c when a request has been recorded. */
void lg_worker_request_done(lg_worker *w, lg_conn *c, int failed, uint64_t now);

#endif
