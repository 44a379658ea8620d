/*
 * core: the aiserve core's private types, shared by master.c, worker.c,
 * conn.c, resp.c, builtin.c, static.c, accept.c, sb.c and log.c. Apps see
 * only app.h.
 *
 * Who calls whom on the request path (no file calls back into one above it,
 * except the loop/connection pair): worker.c (loop, threads, completion
 * queue) <-> conn.c (read, parse, route, dispatch) -> static.c, resp.c
 * (framing) -> conn_io.c, accept.c (policy, pure). static.c and the
 * built-ins answer through app.h like any app.
 *
 * Processes and threads:
 *   master   binds, loads apps (unless lazy-apps), forks and supervises
 *            workers; never serves a request.
 *   worker   one event loop thread (accept, read, parse, write, loop
 *            handlers, timers) + `threads` app threads for blocking handlers.
 *            The loop accepts every connection up to max-connections; only a
 *            complete request waits for an app thread, in the worker's queue.
 * A connection (srv_conn) belongs to its worker's loop except while a handler
 * holds it (on an app thread or PENDING): then the loop does not watch its fd
 * and only the holder touches it, until app_finish hands it back.
 */
#ifndef SERVER_CORE_H
#define SERVER_CORE_H

/* Longest reason phrase an app may set (bytes, with the NUL); longer ones are cut. */
#define SRV_REASON_MAX 96

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/http1.h"
#include "server/app.h"
#include "server/config.h"

#define SRV_MAX_HEADERS   100
#define SRV_MAX_LISTEN    8
#define SRV_MAX_APPS      8
#define SRV_MAX_ROUTES    64
#define SRV_METRIC_ROUTES 48
#define SRV_NSTATUS       32
#define SRV_NBUCKETS      16
#define SRV_OUT_BUFFER    (64 * 1024)
/* The connections' timer wheel: slots of SRV_TW_MS (the worker's tick), one
 * turn 51.2 s (conn_set_deadline). */
#define SRV_TW_MS    100
#define SRV_TW_SLOTS 512

/* What a listen socket speaks: HTTP/1.x (`http`, `http-socket`) or the uwsgi
 * protocol (`socket`, `uwsgi-socket`: nginx's uwsgi_pass, one request per
 * connection, the response in HTTP form). */
enum { SRV_PROTO_HTTP = 0, SRV_PROTO_UWSGI = 1 };

/* ---- settings: the core options, typed ---- */

typedef struct srv_static {
    char *prefix;      /* "/static", no trailing '/' */
    char *dir;         /* realpath of the directory */
    size_t prefix_len; /* 0 when the prefix is "/" */
    int metric;
} srv_static;

typedef struct srv_settings {
    int processes, threads, listen_backlog, need_app, lazy_apps;
    int harakiri, socket_timeout, keepalive, mercy;
    int64_t max_requests, max_requests_delta, reload_on_rss_mb;
    /* Set by master_run from the config (before the first fork). */
    int max_connections;                        /* per worker, clamped to RLIMIT_NOFILE */
    int64_t evil_reload_on_rss_mb, limit_as_mb; /* 0: off */
    int64_t buffer_size, limit_post, post_buffering;
    int disable_logging, log_json;
    int server_timing; /* `server-timing`: a Server-Timing header on every response */
    int chmod_socket;  /* mode of unix sockets, -1: as the umask leaves it */
    int vacuum;        /* unlink unix socket files at exit */
    const char *pidfile, *logto;
    const char *hello_route, *health_route, *metrics_route, *delay_route, *sleep_route;
    /* `builtins`: 0 = auto (a built-in answers on the main listeners where no
     * app route covers its path); 1 = only those in builtins_on, ahead of apps. */
    int builtins_explicit;
    unsigned builtins_on; /* SRV_BI_* bits */
    srv_static *statics;
    size_t nstatics;
} srv_settings;

/* ---- routes ---- */

/* SRV_MATCH_SELF is only an argument of srv_route_add: a prefix route that
 * takes its own path alone (app_route_add_exact); it is kept as a PREFIX
 * route with `narrow` set, so SCRIPT_NAME/PATH_INFO split as for a prefix. */
enum { SRV_MATCH_PREFIX = 0, SRV_MATCH_EXACT = 1, SRV_MATCH_SELF = 2 };

/* The built-ins, as bits: a route's `builtin`, and the `builtins` option. */
enum {
    SRV_BI_HELLO = 1,
    SRV_BI_HEALTH = 2,
    SRV_BI_METRICS = 4,
    SRV_BI_DELAY = 8,
    SRV_BI_SLEEP = 16,
    SRV_BI_ALL = 31,
};

typedef struct srv_route {
    char *prefix; /* owned */
    size_t len;
    int match;        /* SRV_MATCH_* */
    int narrow;       /* a prefix route that takes only its own path (and path/) */
    unsigned builtin; /* SRV_BI_* of a built-in; 0 for an app's route */
    int run_on;
    app_handler_fn fn;
    void *data;
    int metric; /* index into the scoreboard's route names */
} srv_route;

/* ---- scoreboard: shared memory between the master and all workers ---- */

enum { SB_FREE = 0, SB_RUNNING, SB_RETIRING };

typedef struct sb_thread {
    _Atomic uint64_t deadline_ms; /* harakiri deadline (CLOCK_MONOTONIC ms), 0: idle */
    _Atomic uint64_t started_ms;
    char what[160];            /* "GET /path" of the running request */
    _Atomic uint64_t requests; /* stats: requests this thread ran (since the spawn) */
    _Atomic int in_request;    /* stats: running one now */
} sb_thread;

typedef struct sb_slot {
    _Atomic int state;
    _Atomic int pid;
    int worker_id;
    _Atomic int ready;        /* apps loaded and ready */
    _Atomic int want_replace; /* the worker asks for a successor (max-requests, rss) */
    _Atomic int in_flight;
    _Atomic int busy_threads;
    _Atomic int conns;   /* open connections, for balancing accepts */
    _Atomic int held;    /* requests held by app threads, running or queued */
    _Atomic int fresh;   /* connections just accepted, request most likely on its way */
    _Atomic int waiting; /* requests queued for an app thread */
    /* App threads that take requests (1..threads; 0 reads as all). The one
     * writer is the master (cheaper `queue`); the worker's threads with a
     * higher index wait until it rises. */
    _Atomic int active_threads;
    _Atomic int accepting; /* watching the listen sockets now */
    _Atomic int able;      /* may accept: serving, not draining, below max-connections */
    int wake_fd;           /* eventfd (made by the master before forking): "check your accepting" */
    _Atomic int full;      /* at max-connections: new ones wait in the kernel queue */
    _Atomic uint64_t requests;
    uint64_t retire_deadline_ms; /* master only */
    uint64_t hup_deadline_ms;    /* master only: SIGHUP by then even if successors are not ready */
    int harakiri_fired;          /* master only: 1 logged, 2 killed */
    int hup_pending;             /* master only: drain (SIGHUP) once successors are ready */
    /* Counters live on across respawns into this slot, so sums stay monotonic. */
    _Atomic uint64_t req_count[SRV_METRIC_ROUTES][SRV_NSTATUS];
    _Atomic uint64_t hist[SRV_NBUCKETS];
    _Atomic uint64_t lat_sum_us;
    /* For the stats server, since the spawn (the master zeroes them). */
    _Atomic uint64_t tx, exceptions, running_us, avg_rt_us;
    /* Time a request waited for an app thread, and the handler's time. */
    _Atomic uint64_t queue_hist[SRV_NBUCKETS], app_hist[SRV_NBUCKETS];
    _Atomic uint64_t queue_sum_us, app_sum_us;
    sb_thread threads[]; /* `threads` entries */
} sb_slot;

typedef struct sb {
    int nslots;
    int nthreads;
    size_t slot_size;
    _Atomic uint64_t respawns;
    _Atomic uint64_t harakiris;
    _Atomic int route_lock;
    _Atomic int nroutes;
    _Atomic int active; /* workers the master keeps running now (cheaper); 0: processes */
    char route_names[SRV_METRIC_ROUTES][64];
    /* slots follow, each slot_size bytes */
} sb;

sb *sb_create(int processes, int threads);
void sb_destroy(sb *s);
sb_slot *sb_slot_at(sb *s, int i);
/* Index of a metric route name, added if new (any process). 0 is "other". */
int sb_route_metric(sb *s, const char *name);
/* Counts one finished request. sb_count and sb_count_timing have one writer
 * per slot, the worker's loop (plain adds, no locked instructions). */
void sb_count(sb_slot *slot, int metric, int status, uint64_t elapsed_us);
/* Counts the bytes of one finished response (stats `tx`). */
void sb_count_tx(sb_slot *slot, uint64_t bytes);
/* Counts one request's wait for a thread and its handler time. */
void sb_count_timing(sb_slot *slot, uint64_t queue_us, uint64_t app_us);
/* Renders /metrics into out; listen fds give the queue depth. */
int sb_render_metrics(sb *s, const int *listen_fds, const char *const *listen_names, int nlisten,
                      buf *out);

/* ---- the server object: built by the master, inherited by workers ---- */

typedef struct srv_app {
    const app_kind *kind;
    void *state;
    int loaded;
} srv_app;

typedef struct srv {
    cfg *cfg;
    srv_settings s;
    int listen_fds[SRV_MAX_LISTEN];
    char *listen_names[SRV_MAX_LISTEN];
    int listen_ports[SRV_MAX_LISTEN];           /* 0 for unix sockets */
    int listen_proto[SRV_MAX_LISTEN];           /* SRV_PROTO_* */
    int listen_unix[SRV_MAX_LISTEN];            /* a unix socket: no TCP_INFO queue depth */
    int listen_admin[SRV_MAX_LISTEN];           /* an `admin` listener: routes only to built-ins */
    struct srv_tls *listen_tls[SRV_MAX_LISTEN]; /* an `https` listener's context, else NULL */
    struct srv_access *access;                  /* access.c: tokens, limits; NULL: none */
    int nlisten;
    srv_app apps[SRV_MAX_APPS];
    int napps;
    srv_route routes[SRV_MAX_ROUTES];
    int nroutes;
    sb *sb;
    int logfd;
    char **argv;     /* the command line, for the re-exec on SIGHUP */
    char *start_cwd; /* where it started: relative paths in argv resolve from here */
    /* The app kinds the program links (NULL-terminated), given by main.c: the
     * core never names a kind, so it builds and tests without any of them. */
    const app_kind *const *kinds;
} srv;

/* srv.c: settings, sockets, apps, routes. The functions below that take err
 * return 0, or -1 with a one-line message in err (the convention of docs/ARCHITECTURE.md). */
int srv_init(srv *s, cfg *c, char *err, size_t errlen);
int srv_bind(srv *s, char *err, size_t errlen);
/* Loads what a new image would read besides the configuration (https
 * certificates and keys, the token file) and frees it: a reload with a bad
 * one is refused while the running image serves on. 0 or -1 with err. */
int srv_check_files(cfg *c, char *err, size_t errlen);
/* Removes the files of unix listen sockets (vacuum); the master, at exit. */
void srv_unlink_sockets(srv *s);
int srv_drop_privileges(srv *s, char *err, size_t errlen);
/* Loads every configured app; worker_id 0 in the master. */
int srv_load_apps(srv *s, int worker_id, char *err, size_t errlen);
/* Workers running with every app ready, and how many the master keeps
 * running now (cheaper's active count, else processes). Any thread. */
int srv_workers_ready(const srv *s, int *want);
void srv_free_apps(srv *s);
/* The route for a (normalized) path on a connection from listener
 * listen_idx: on an admin listener only built-ins; on the others apps and
 * the built-ins `builtins` allows (see srv.c). NULL: none. */
const srv_route *srv_route_find(const srv *s, int listen_idx, const char *path, size_t len);
/* builtin: SRV_BI_* for a built-in's route, 0 for an app's. */
int srv_route_add(srv *s, const char *prefix, int match, int run_on, app_handler_fn fn, void *data,
                  unsigned builtin);
void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The option tables of the core and of every kind in kinds (NULL-terminated
 * lists both; kinds may be NULL: the core's table alone). */
void srv_option_tables(const app_kind *const *kinds, const cfg_option **tables, int max);

/* master.c */
int master_run(srv *s);

/* ---- worker ---- */

typedef struct srv_worker srv_worker;

enum conn_state {
    CS_HEAD = 0, /* reading a request head (or idle keep-alive) */
    CS_BODY,     /* reading a body before dispatch */
    CS_HANDLER,  /* a handler holds it (loop call in progress, thread, or PENDING) */
    CS_WRITE,    /* the loop is writing the response */
    CS_LINGER,   /* answered and shut for writing: dropping what the client still sends */
    CS_CLOSED,
};

/* A connection and its current request, in three parts, each written by one
 * file (issue 12: one writer per field); the others only read it, or ask the
 * owner through a function (resp_begin_error, handler_done, ...). The parts
 * are anonymous structs, so a field keeps its plain name (c->fd, c->status). */
struct srv_conn {
    /* ---- connection + request parsing: written by conn.c (conn_io.c only
     * reads). Exceptions, each a single writer: access.c sets ip_counted,
     * request_id_made and request_id (conn.c clears request_id per request);
     * worker.c sets ar.thread_id when an app thread takes the request. */
    struct {
        srv_worker *w;
        int fd;
        enum conn_state state;
        int watched; /* fd registered with the loop */
        unsigned events;
        srv_conn *prev, *next;       /* the worker's connection list (and its free list) */
        uint64_t deadline_ms;        /* timeout sweep; 0: none (set by conn_set_deadline) */
        srv_conn *tw_prev, *tw_next; /* its timer wheel slot's list */
        int tw_slot;                 /* slot + 1 in w->tw; 0: in none */
        char remote[64];
        int remote_port;
        int server_port;
        int listen_idx;
        int uwsgi;           /* accepted on a uwsgi-protocol socket: one request, then close */
        int linger;          /* answered with an error: the client may still be sending */
        int https;           /* TLS here, or the front end said so (uwsgi HTTPS var) */
        struct ssl_st *ssl;  /* an https listener's connection (tls.c), else NULL */
        int tls_hs;          /* the TLS handshake is still running */
        char https_dn[256];  /* the verified client certificate's subject, "" if none */
        char request_id[72]; /* X-Request-Id: the client's (if sane) or made here */
        int request_id_made; /* made here: the app sees it as HTTP_X_REQUEST_ID */
        int ip_counted;      /* counted in the per-address connection table (access.c) */
        _Atomic int gone;    /* the client hung up (app_client_gone saw it) */

        /* input: rbuf = [head][unconsumed bytes] */
        char *rbuf;
        size_t rlen, rcap, last_len, head_len;
        http1_request req;
        http1_header hdrs[SRV_MAX_HEADERS];
        app_request ar;
        const srv_route *route;
        int metric;
        buf path_info;
        buf utarget; /* uwsgi: PATH_INFO?QUERY_STRING when REQUEST_URI is absent */
        char server_name[256];
        int head_only; /* HEAD request: the response carries no body */
        int req_close; /* the request ends the connection (Connection: close, HTTP/1.0, uwsgi) */

        /* request body */
        int has_body;
        int chunked;
        int64_t body_left; /* Content-Length bytes not yet read */
        int64_t body_total;
        int body_eof;
        http1_chunked dec;
        buf body;
        size_t body_rpos; /* app_read position in body */
        int continue_pending;

        int in_req; /* between the head (or a parse error) and the end of its answer */
        uint64_t t_start_us;
    };

    /* ---- response framing: written by resp.c ---- */
    struct {
        int status;
        char reason[SRV_REASON_MAX]; /* the app's reason phrase; "" = the standard one */
        buf rhead;                   /* app headers as "Name: value\r\n" */
        int64_t app_clen;            /* Content-Length given by the app, -1 if none */
        int app_close;               /* the app asked for Connection: close */
        buf out;                     /* body bytes not yet sent */
        int head_sent, chunked_out;
        int close_after; /* the response says Connection: close (decided in build_head) */
        int failed;      /* the connection broke (a write, or app_read, failed) */
        int send_fd;
        off_t send_off;
        int64_t send_left;
        buf wbuf; /* serialized bytes the loop still has to write */
        size_t woff;
        uint64_t out_total; /* body bytes the app wrote */
        uint64_t bytes_sent;
        int finished_sent; /* an app thread already sent the whole response */
    };

    /* ---- handoff to handlers and threads, completion queue, accept
     * accounting: written by worker.c ---- */
    struct {
        int finished;   /* the handler is done with it (APP_DONE or app_finish) */
        int in_handler; /* a loop handler is running it now */
        int on_thread;  /* an app thread is running its handler now */
        uint64_t t_queued_us, t_thread_us; /* handed to a handler / taken by a thread; 0: not yet */
        srv_conn *done_next;               /* completion queue link */
        app_complete_fn done_fn;           /* app_complete_async: run on the loop, else NULL */
        void *done_arg;
        int fresh; /* accepted, no request yet: counted as expected work (prefer_other) */
        uint64_t accepted_ms;
    };
};

struct srv_worker {
    srv *srv;
    int id, slot_idx;
    pid_t master_pid;
    sb_slot *slot;
    ev_loop *loop;
    pthread_t loop_tid;
    int sigfd;
    /* app threads */
    pthread_t *threads;
    int nthreads, stop_threads;
    _Atomic int idle; /* app threads without a job */
    int inline_app;   /* the loop is the (one) app thread: uwsgi listeners, threads = 1 */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t gate_cv; /* threads past the slot's active_threads wait here */
    int gate_seen;          /* loop only: active_threads when last looked at */
    srv_conn **jobs;
    int jobs_head, jobs_len, jobs_cap;
    /* completions from other threads */
    pthread_mutex_t done_mu;
    srv_conn *done_head, *done_tail; /* FIFO */
    /* connections */
    srv_conn *conns, *free_conns;
    int nconns, nfree, in_flight, max_conns;
    int nfresh;            /* connections accepted in the last FRESH_MS with no request yet */
    int accepting;         /* the listen sockets are watched */
    int deferred;          /* left accepting to a less loaded worker (prefer_other) */
    _Atomic int draining;  /* read by app threads when they frame a response */
    int listen_closed;     /* this worker's copies of the listen sockets are closed */
    uint64_t accept_pause; /* out of fds: no accept before this (ms) */
    uint64_t requests, max_requests;
    uint64_t drain_deadline_ms;
    int mem_fd; /* /proc/self/statm, kept open for the per-request memory check; -1: off */
    _Atomic int mem_over; /* an app thread saw a memory limit crossed; the loop acts */
    /* connection deadlines (conn.c writes them): a timer wheel, the slot
     * for tick t is tw[t % SRV_TW_SLOTS]; tw[SRV_TW_SLOTS] is the sweep's
     * pending list; tw_tick the last tick swept */
    srv_conn *tw[SRV_TW_SLOTS + 1];
    uint64_t tw_tick;
    /* cached Date header line, double-buffered for readers on app threads */
    char date[2][48];
    _Atomic int date_idx;
    long date_sec;
};

int worker_main(srv *s, int worker_id, int slot_idx);
/* Re-evaluates whether the worker should watch the listen sockets. Loop only. */
void worker_update_accept(srv_worker *w);
/* Marks a request done for accounting (max-requests, memory limits). Loop only. */
void worker_request_done(srv_worker *w);
/* c's first request began, or c closed: it no longer counts as expected work. */
void worker_conn_used(srv_conn *c);
/* How long an idle keep-alive connection of a draining worker waits for a
 * request already on its way before it is closed (lingering). */
#define SRV_DRAIN_IDLE_MS 1000
/* A request begins on c (conn.c): c no longer counts as fresh, and the
 * hand-off state of the previous request is cleared. Loop only. */
void worker_request_start(srv_conn *c);
/* The end of a handler, wherever it ran (the one place for it): rc is its
 * return value. 0 when the request is PENDING (its holder calls app_finish);
 * else 1, c finished, with a 500 in place of a response that failed before
 * its head was sent. */
int handler_done(srv_conn *c, int rc);
/* Runs c's APP_RUN_LOOP handler now, then handler_done. Loop only. */
int worker_run_loop(srv_conn *c);
/* With inline_app: runs c's APP_RUN_THREAD handler here on the loop as app
 * thread 0 and sends the whole response (blocking); then as handler_done. */
int worker_run_inline(srv_conn *c);
/* Queues a conn for a thread; loop only. */
int worker_dispatch_thread(srv_worker *w, srv_conn *c);
/* From any thread: hand a finished request back to the loop (the completion
 * queue; app_complete_async queues there too). */
void worker_complete(srv_worker *w, srv_conn *c);
/* Registers the completion queue's wake-up with w's loop. 0 or -errno. */
int worker_async_init(srv_worker *w);
/* The conn whose handler runs on this app thread, NULL elsewhere (worker.c
 * writes it; resp.c and conn.c read it to know they may block). */
extern __thread srv_conn *srv_thread_conn;
void worker_begin_drain(srv_worker *w, const char *why);

/* conn.c */
srv_conn *conn_new(srv_worker *w, int fd);
void conn_close(srv_conn *c);
void conn_on_io(ev_loop *loop, int fd, unsigned events, void *data);
/* Called on the loop when the handler has finished and (maybe) sent the response. */
void conn_handler_done(srv_conn *c);
/* conn_handler_done, then serves pipelined requests already buffered. */
void conn_resume(srv_conn *c);
/* Answers an error status with a short body and closes after it. Loop only. */
void conn_error(srv_conn *c, int status, const char *msg);
/* conn_error with one more header (hname NULL: none); close: close after it. */
void conn_error_hdr(srv_conn *c, int status, const char *msg, const char *hname, const char *hval,
                    int close);
/* After accept: the listener li and the peer's address ss (a struct
 * sockaddr_storage), then TLS and the per-address count. May close c. Loop only. */
struct sockaddr_storage;
void conn_accepted(srv_conn *c, int li, const struct sockaddr_storage *ss);
void conn_sweep(srv_worker *w, uint64_t now_ms);
/* c's deadline (ms on the loop's clock; 0: none), in the worker's timer
 * wheel: O(1). The only writer of c->deadline_ms. Loop only. */
void conn_set_deadline(srv_conn *c, uint64_t ms);

/* The worker began draining: idle keep-alive connections get SRV_DRAIN_IDLE_MS
 * for a request already on its way, then a lingering close. Loop only. */
void conn_drain_idle(srv_worker *w);
/* Reads body bytes into c->body; blocking (app thread) or not. 1 progress,
 * 0 end of body, -EAGAIN (non-blocking, nothing now), other -errno. */
int conn_body_fill(srv_conn *c, int blocking);
/* The body limit for c's request: limit-post, or (when that is 0) SRV_LOOP_BODY_MAX
 * for event-loop routes, which hold the whole body in memory. 0: none. */
int64_t conn_body_limit(const srv_conn *c);
#define SRV_LOOP_BODY_MAX (100ll << 20)

/* conn_io.c: the socket calls, through TLS on an https connection */
ssize_t conn_io_recv(srv_conn *c, void *dst, size_t cap);
ssize_t conn_io_send(srv_conn *c, const void *src, size_t len);
ssize_t conn_io_writev(srv_conn *c, const struct iovec *iov, int cnt);
/* conn_io_writev with MSG_MORE: the last bytes of a response on a connection
 * closed right after, so the close's FIN leaves in the same segment. */
ssize_t conn_io_writev_more(srv_conn *c, const struct iovec *iov, int cnt);
ssize_t conn_io_sendfile(srv_conn *c, int fd, off_t *off, size_t len);

/* resp.c: the response part of srv_conn. It calls nothing above it but
 * conn_io.c and the accept policy (accept.c). */
void resp_reset(srv_conn *c);
/* The connection closed: the file being sent is closed, large buffers shrink. */
void resp_release(srv_conn *c);
/* resp_reset, then status, and Connection: close when close. */
void resp_begin_error(srv_conn *c, int status, int close);
/* A handler failed before its head was sent: the response becomes a 500 that closes. */
void resp_internal_error(srv_conn *c);
/* App thread, handler done: sends the whole response (unless the connection
 * broke) and marks it sent, for the loop to take over. */
void resp_finish_thread(srv_conn *c);
/* The connection broke while reading (app_read): nothing more is sent. */
void resp_fail(srv_conn *c);
/* Sends what is buffered on the loop (non-blocking, continues on EV_WRITE).
 * Returns 1 when all is written, 0 when waiting, -errno on failure. */
int resp_send_loop(srv_conn *c);
/* Sends the whole response from an app thread (blocking). 0 or -errno. */
int resp_send_blocking(srv_conn *c);
int resp_continue_write(srv_conn *c);
/* Date line "Date: ...\r\n" for now. */
void resp_update_date(srv_worker *w);

/* log.c */
void log_access(srv_conn *c);

/* builtin.c */
int builtin_register(srv *s);

#endif
