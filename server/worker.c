/*
 * worker: one worker process: its event loop (accept, connections, loop
 * handlers, housekeeping tick), its app threads and its graceful exit.
 *
 * Accepting: an idle connection costs no thread, only a connection struct
 * on the loop, so the loop accepts every connection up to max-connections
 * (beyond it the kernel queue holds them, and /metrics says so). The shared
 * listen sockets are watched with EPOLLEXCLUSIVE, so a new connection wakes
 * one worker, not all, and the accept queue outlives any one worker. Which
 * worker takes it is decided by load, not by connections held: a worker whose
 * app threads are all taken leaves new connections to one with less work
 * queued, and among equally loaded workers the one with fewer connections
 * takes them (prefer_other, asked before each accept). Built-in routes answer
 * on the loop, so a health probe never waits behind the app.
 */
#define _GNU_SOURCE
#include "server/core.h"
#include "server/accept.h"
#include "server/proctitle.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS 100
/* Connections taken per wake-up before other events get their turn. */
#define ACCEPT_BATCH 16
/* A new connection counts as expected work (its request is most likely on
 * the way) until its first request, or this long. */
#define FRESH_MS 1000

static void on_accept(ev_loop *loop, int fd, unsigned events, void *data);

/* The slot of another serving worker that should take the next connection
 * instead of this one, or NULL (the policy: accept.h). The load is the
 * requests held by app threads (slot->held, kept by the loop and the threads
 * as it changes) plus the connections just accepted whose request is most
 * likely on its way (slot->fresh: two clients connecting at once to two idle
 * workers get one each). It only chooses the worker; the least loaded one
 * always accepts. */
static sb_slot *prefer_other(srv_worker *w)
{
    accept_load me = {w->nthreads - atomic_load_explicit(&w->idle, memory_order_relaxed) +
                          w->nfresh,
                      w->nconns, !atomic_load_explicit(&w->slot->ready, memory_order_relaxed)};
    return accept_prefer_other(w->srv->sb, w->slot, me, w->nthreads);
}

static void accept_batch(srv_worker *w, int li);

/* Another worker's eventfd said: accepting may be yours now, and connections
 * may be queued already. Their wake-up went to that worker (EPOLLEXCLUSIVE),
 * so epoll will not report them here: try accepting instead of waiting. */
static void on_wake(ev_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    srv_worker *w = data;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    worker_update_accept(w);
    for (int li = 0; li < w->srv->nlisten && w->accepting; li++) accept_batch(w, li);
}

void worker_update_accept(srv_worker *w)
{
    srv *s = w->srv;
    int full = w->nconns >= w->max_conns;
    atomic_store_explicit(&w->slot->full, full, memory_order_relaxed);
    int able = accept_able(w->draining, w->listen_closed, w->nconns, w->max_conns, w->accept_pause,
                           w->accept_pause ? ev_now_ms(w->loop) : 0);
    atomic_store_explicit(&w->slot->able, able, memory_order_relaxed);
    /* Deferring is decided when a connection comes (defer_accept), not on
     * every change of load: under steady keep-alive load nobody connects, and
     * the listen sockets stay registered. A worker that deferred watches
     * again once no other is preferable. */
    int want = accept_want(able, &w->deferred, w->deferred && able && prefer_other(w));
    if (want != w->accepting) {
        for (int i = 0; i < s->nlisten; i++) {
            if (want)
                ev_io_add(w->loop, s->listen_fds[i], EV_READ | EV_EXCLUSIVE, on_accept, w);
            else
                ev_io_del(w->loop, s->listen_fds[i]);
        }
        w->accepting = want;
        atomic_store_explicit(&w->slot->accepting, want, memory_order_relaxed);
    }
}

/* Called before each accept: 1 if another worker should take it. Then this
 * one stops watching and wakes the other: it may have deferred itself, and
 * the EPOLLEXCLUSIVE wake-ups for the queued connections came here. */
static int defer_accept(srv_worker *w)
{
    sb_slot *other = prefer_other(w);
    if (!other) return 0;
    w->deferred = 1;
    worker_update_accept(w);
    if (other->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(other->wake_fd, &one, sizeof(one));
        (void)n;
    }
    return 1;
}

/* Accepts one connection from listen socket li. Returns 0, or -1 when
 * nothing was accepted. */
static int accept_one(srv_worker *w, int li)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd =
        accept4(w->srv->listen_fds[li], (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
            /* level-triggered: without a pause the loop would spin on it */
            srv_log("worker %d: out of file descriptors at %d connections; accept paused for "
                    "100 ms (raise the fd limit or lower max-connections)",
                    w->id, w->nconns);
            w->accept_pause = ev_now_ms(w->loop) + TICK_MS;
        }
        return -1;
    }
    srv_conn *c = conn_new(w, fd);
    if (!c) {
        close(fd);
        return -1;
    }
    c->fresh = 1;
    c->accepted_ms = ev_now_ms(w->loop);
    w->nfresh++;
    atomic_store_explicit(&w->slot->fresh, w->nfresh, memory_order_relaxed);
    conn_accepted(c, li, &ss); /* addresses, https, per-address limits */
    return 0;
}

/* With the app on the loop (inline_app), a connection accepted before its
 * request came (nginx connects, then sends on a later turn of its loop) was
 * left to the loop's next turn, while the accept batch served up to
 * ACCEPT_BATCH newer connections, each a whole app call: behind nginx 17% of
 * the requests were accepted before their packet, and 1 in 9 of those waited
 * 2 to 10 ms so (the p99: 5.1 ms against uWSGI's 3.7). So before each accept
 * the batch reads the pending ones, oldest first, and serves a request that
 * has come: the order stays the one they connected in, as with uWSGI's
 * blocking read, and the worker still takes the next connection while one is
 * on its way. (TCP_DEFER_ACCEPT, uWSGI's
 * way, gave the lowest p99 but 4-11% fewer requests a second: a worker then
 * wakes only once the request is there, instead of while it comes; see
 * docs/wsgi.md.) New connections join the list at its head, so the pending
 * ones are among the first few. */
#define PENDING_PEEK 8
static void serve_pending(srv_worker *w)
{
    /* Again after one was served: an older one's packet may have come
     * meanwhile (it was read before that request ran). */
    for (int round = 0; round < PENDING_PEEK && w->inline_app && w->nfresh; round++) {
        srv_conn *p[PENDING_PEEK];
        int n = 0, seen = 0, before = w->nfresh;
        for (srv_conn *c = w->conns; c && seen < PENDING_PEEK; c = c->next, seen++)
            if (c->fresh && c->uwsgi && c->state == CS_HEAD) p[n++] = c;
        /* each closes at most itself */
        for (int i = n - 1; i >= 0 && w->nfresh == before; i--)
            conn_on_io(w->loop, p[i]->fd, EV_READ, p[i]);
        if (w->nfresh == before) return;
    }
}

/* A few per wake-up, each followed by the load check: a burst is shared
 * with the other workers rather than piled on the first to wake. */
static void accept_batch(srv_worker *w, int li)
{
    for (int n = 0; n < ACCEPT_BATCH; n++) {
        serve_pending(w);
        if (!w->accepting || defer_accept(w) || accept_one(w, li)) break;
        worker_update_accept(w);
    }
}

static void on_accept(ev_loop *loop, int lfd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    srv_worker *w = data;
    int li = 0;
    while (li < w->srv->nlisten && w->srv->listen_fds[li] != lfd) li++;
    if (li < w->srv->nlisten) accept_batch(w, li);
    worker_update_accept(w);
}

void worker_conn_used(srv_conn *c)
{
    if (!c->fresh) return;
    c->fresh = 0;
    c->w->nfresh--;
    atomic_store_explicit(&c->w->slot->fresh, c->w->nfresh, memory_order_relaxed);
}

/* EPOLLEXCLUSIVE wakes one waiting worker per new connection; if that worker
 * then stops watching before accepting, the connection waits in the queue
 * while the others sleep. A worker that watches re-registers the sockets when
 * the queue is not empty, which makes epoll poll them afresh. */
static void rearm_if_queued(srv_worker *w)
{
    if (!w->accepting) return;
    for (int i = 0; i < w->srv->nlisten; i++) {
        struct tcp_info ti;
        socklen_t tl = sizeof(ti);
        int fd = w->srv->listen_fds[i];
        /* a unix socket shows no queue depth: re-register it every tick */
        if (!w->srv->listen_unix[i] &&
            (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) || ti.tcpi_unacked == 0))
            continue;
        ev_io_del(w->loop, fd);
        ev_io_add(w->loop, fd, EV_READ | EV_EXCLUSIVE, on_accept, w);
    }
}

/* TCP_NODELAY on the TCP listen sockets (again for ones inherited from
 * systemd or a reload): Linux copies it into every accepted socket, which
 * saves a setsockopt per connection. */
static void listen_nodelay(srv_worker *w)
{
    int one = 1;
    for (int i = 0; i < w->srv->nlisten; i++)
        if (!w->srv->listen_unix[i] && w->srv->listen_fds[i] >= 0)
            setsockopt(w->srv->listen_fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A draining worker closes its copies of the listen sockets at once: on
 * shutdown, once the master has closed its own, the kernel refuses new
 * connections (a load balancer fails over) instead of queueing them for a
 * worker that will never accept; on a reload or recycle the master and the
 * successors still hold the sockets. */
static void close_listeners(srv_worker *w)
{
    srv *s = w->srv;
    if (w->listen_closed) return;
    for (int i = 0; i < s->nlisten; i++) {
        if (w->accepting) ev_io_del(w->loop, s->listen_fds[i]);
        if (s->listen_fds[i] >= 0) close(s->listen_fds[i]);
        s->listen_fds[i] = -1;
    }
    w->accepting = 0;
    w->listen_closed = 1;
    atomic_store(&w->slot->accepting, 0);
    atomic_store(&w->slot->able, 0);
}

/* ---- app threads ---- */

/* The conn whose handler runs on this app thread (NULL elsewhere). */
__thread srv_conn *srv_thread_conn;

void worker_request_start(srv_conn *c)
{
    worker_conn_used(c);
    c->finished = c->in_handler = c->on_thread = 0;
    c->t_queued_us = c->t_thread_us = 0; /* server timing */
    c->done_fn = NULL;
}

int handler_done(srv_conn *c, int rc)
{
    if (rc == APP_PENDING && !c->finished) return 0; /* whoever holds it calls app_finish */
    if (rc < 0 && !c->head_sent) resp_internal_error(c);
    c->finished = 1;
    return 1;
}

int worker_run_loop(srv_conn *c)
{
    const srv_route *rt = c->route;
    c->t_queued_us = c->t_thread_us = ev_clock_us(); /* server timing: it starts now */
    c->in_handler = 1;
    int rc = rt->fn(&c->ar, rt->data);
    c->in_handler = 0;
    return handler_done(c, rc);
}

/* Threads at or past the slot's active_threads (the master's, `queue`) take
 * no job; the loop wakes them when the count changes. Called with mu held. */
static void gate_wake(srv_worker *w)
{
    int n = atomic_load_explicit(&w->slot->active_threads, memory_order_relaxed);
    if (n != w->gate_seen) {
        w->gate_seen = n;
        pthread_cond_broadcast(&w->gate_cv);
    }
}

static int gated(srv_worker *w, int tid)
{
    int n = atomic_load_explicit(&w->slot->active_threads, memory_order_relaxed);
    return n > 0 && tid >= n && !w->stop_threads;
}

int worker_dispatch_thread(srv_worker *w, srv_conn *c)
{
    c->t_queued_us = ev_clock_us(); /* server timing: the wait for a thread begins */
    c->t_thread_us = 0;
    pthread_mutex_lock(&w->mu);
    if (w->jobs_len == w->jobs_cap) {
        int cap = w->jobs_cap ? w->jobs_cap * 2 : 64;
        srv_conn **j = malloc((size_t)cap * sizeof(*j));
        if (!j) {
            pthread_mutex_unlock(&w->mu);
            return -ENOMEM;
        }
        for (int i = 0; i < w->jobs_len; i++) j[i] = w->jobs[(w->jobs_head + i) % w->jobs_cap];
        free(w->jobs);
        w->jobs = j;
        w->jobs_head = 0;
        w->jobs_cap = cap;
    }
    w->jobs[(w->jobs_head + w->jobs_len++) % w->jobs_cap] = c;
    atomic_fetch_add_explicit(&w->slot->waiting, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->slot->held, 1, memory_order_relaxed);
    gate_wake(w);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    atomic_fetch_sub(&w->idle, 1);
    worker_update_accept(w);
    return 0;
}

/* The completion queue: app threads, and apps finishing a PENDING request on
 * their own threads (app_complete_async), append under done_mu and wake the
 * loop; the loop takes the whole list at once, oldest first. */
void worker_complete(srv_worker *w, srv_conn *c)
{
    c->done_next = NULL;
    pthread_mutex_lock(&w->done_mu);
    if (w->done_tail)
        w->done_tail->done_next = c;
    else
        w->done_head = c;
    w->done_tail = c;
    pthread_mutex_unlock(&w->done_mu);
    ev_async_send(w->loop);
}

void app_complete_async(app_request *r, app_complete_fn fn, void *arg)
{
    srv_conn *c = r->_conn;
    c->done_fn = fn;
    c->done_arg = arg;
    worker_complete(c->w, c);
}

static void on_async(ev_loop *loop, void *data)
{
    (void)loop;
    srv_worker *w = data;
    pthread_mutex_lock(&w->done_mu);
    srv_conn *list = w->done_head;
    w->done_head = w->done_tail = NULL;
    pthread_mutex_unlock(&w->done_mu);
    while (list) {
        srv_conn *c = list;
        list = c->done_next;
        if (c->done_fn) { /* the app writes its response here, then app_finish */
            app_complete_fn fn = c->done_fn;
            c->done_fn = NULL;
            fn(&c->ar, c->done_arg);
        } else {
            conn_resume(c);
        }
    }
    worker_update_accept(w);
}

int worker_async_init(srv_worker *w)
{
    return ev_async_init(w->loop, on_async, w);
}

static int on_loop(const srv_conn *c)
{
    return pthread_equal(pthread_self(), c->w->loop_tid);
}

int app_finish(app_request *r)
{
    srv_conn *c = r->_conn;
    c->finished = 1;
    /* The handler itself (a thread's or a loop handler's): it returns next. */
    if (srv_thread_conn == c || (c->in_handler && on_loop(c))) return 0;
    if (on_loop(c))
        conn_resume(c);
    else
        worker_complete(c->w, c);
    return 0;
}

typedef struct thread_arg {
    srv_worker *w;
    int tid;
} thread_arg;

/* Runs c's handler as app thread tid (on that thread, or on the loop when
 * the app runs there): the harakiri deadline, stats, srv_thread_conn (so
 * resp.c and conn.c may block). Returns the handler's return value. */
static int run_handler(srv_worker *w, int tid, srv_conn *c)
{
    sb_thread *t = &w->slot->threads[tid];
    int hk = w->srv->s.harakiri;
    uint64_t now = ev_clock_ms();
    /* "GET /path" by hand: snprintf was a tenth of the uwsgi hello's C time */
    size_t ml = c->ar.method_len < 32 ? c->ar.method_len : 32;
    size_t ul = c->ar.uri_len < 120 ? c->ar.uri_len : 120;
    _Static_assert(sizeof(t->what) >= 32 + 1 + 120 + 1, "what holds a method and 120 of the uri");
    if (ml) memcpy(t->what, c->ar.method, ml);
    t->what[ml] = ' ';
    if (ul) memcpy(t->what + ml + 1, c->ar.uri, ul);
    t->what[ml + 1 + ul] = '\0';
    atomic_store(&t->started_ms, now);
    if (hk) atomic_store(&t->deadline_ms, now + (uint64_t)hk * 1000);
    atomic_fetch_add(&w->slot->busy_threads, 1);
    atomic_store(&t->in_request, 1); /* stats: cores[].in_request */
    c->ar.thread_id = tid;
    c->t_thread_us = ev_clock_us(); /* server timing: the wait for a thread ends */
    c->on_thread = 1;
    srv_thread_conn = c;
    const srv_route *rt = c->route;
    int rc = rt->fn(&c->ar, rt->data);
    atomic_store(&t->deadline_ms, 0);
    atomic_fetch_sub(&w->slot->busy_threads, 1);
    atomic_store(&t->in_request, 0);
    atomic_fetch_add(&t->requests, 1);
    srv_thread_conn = NULL;
    c->on_thread = 0;
    return rc;
}

static void run_job(srv_worker *w, int tid, srv_conn *c)
{
    int rc = run_handler(w, tid, c);
    /* The handler is done: for the choice of worker (prefer_other) this thread
     * is free already; the client may have its answer before it comes idle. */
    atomic_fetch_sub_explicit(&w->slot->held, 1, memory_order_relaxed);
    if (!handler_done(c, rc)) return;
    resp_finish_thread(c); /* the whole response, from this thread */
    worker_complete(w, c);
}

int worker_run_inline(srv_conn *c)
{
    srv_worker *w = c->w;
    c->t_queued_us = ev_clock_us();
    atomic_fetch_add_explicit(&w->slot->held, 1, memory_order_relaxed);
    atomic_store(&w->idle, 0);
    int rc = run_handler(w, 0, c);
    atomic_store(&w->idle, 1);
    atomic_fetch_sub_explicit(&w->slot->held, 1, memory_order_relaxed);
    if (!handler_done(c, rc)) return 0;
    resp_finish_thread(c); /* blocking, bounded by socket-timeout, like a thread's */
    return 1;
}

/* The apps' per-thread hooks, for app thread tid (run on that thread). */
static void apps_thread_init(srv_worker *w, int tid)
{
    srv *s = w->srv;
    for (int i = 0; i < s->napps; i++)
        if (s->apps[i].loaded && s->apps[i].kind->thread_init)
            s->apps[i].kind->thread_init(s->apps[i].state, tid);
}

static void apps_thread_free(srv_worker *w, int tid)
{
    srv *s = w->srv;
    for (int i = 0; i < s->napps; i++)
        if (s->apps[i].loaded && s->apps[i].kind->thread_free)
            s->apps[i].kind->thread_free(s->apps[i].state, tid);
}

/* Whether a worker of s runs its app (APP_RUN_THREAD) handlers on the loop
 * thread instead of handing them to an app thread: with `threads = 1` and
 * only uwsgi-protocol listeners (besides `admin` ones), as uWSGI does with
 * one thread. Every connection there carries one request, so the hand-off
 * (a queue, a wake-up of the thread, the completion queue, a wake-up of the
 * loop) was paid per connection; run in place it costs nothing. The price,
 * the same as uWSGI's: while the app runs, the worker's loop does not (no
 * accepts, the built-ins of an admin listener wait); other workers take the
 * new connections. An http listener keeps the thread (keep-alive clients
 * need the loop to stay responsive). */
static int app_runs_on_loop(const srv *s)
{
    if (s->s.threads != 1) return 0;
    int n = 0;
    for (int i = 0; i < s->nlisten; i++) {
        if (s->listen_admin[i]) continue;
        if (s->listen_proto[i] != SRV_PROTO_UWSGI || s->listen_tls[i]) return 0;
        n++;
    }
    return n > 0;
}

static void *thread_main(void *arg)
{
    thread_arg a = *(thread_arg *)arg;
    free(arg);
    srv_worker *w = a.w;
    apps_thread_init(w, a.tid);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        for (;;) {
            if (gated(w, a.tid)) {
                /* A job's signal may have woken this thread: pass it on. */
                if (w->jobs_len) pthread_cond_signal(&w->cv);
                pthread_cond_wait(&w->gate_cv, &w->mu);
            } else if (!w->jobs_len && !w->stop_threads) {
                pthread_cond_wait(&w->cv, &w->mu);
            } else {
                break;
            }
        }
        if (!w->jobs_len) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        srv_conn *c = w->jobs[w->jobs_head];
        w->jobs_head = (w->jobs_head + 1) % w->jobs_cap;
        w->jobs_len--;
        atomic_fetch_sub_explicit(&w->slot->waiting, 1, memory_order_relaxed);
        pthread_mutex_unlock(&w->mu);
        run_job(w, a.tid, c);
        /* Wake the loop when this thread turns the worker from full to free. */
        if (atomic_fetch_add(&w->idle, 1) == 0) ev_async_send(w->loop);
    }
    apps_thread_free(w, a.tid);
    return NULL;
}

static int start_threads(srv_worker *w)
{
    int n = w->srv->s.threads;
    if (w->inline_app) { /* the loop itself is app thread 0 */
        apps_thread_init(w, 0);
        w->nthreads = 1;
        atomic_store(&w->idle, 1);
        return 0;
    }
    w->threads = calloc((size_t)n, sizeof(pthread_t));
    if (!w->threads) return -ENOMEM;
    atomic_store(&w->idle, n);
    for (int i = 0; i < n; i++) {
        thread_arg *a = malloc(sizeof(*a));
        if (!a) return -ENOMEM;
        *a = (thread_arg){w, i};
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 8u << 20);
        int rc = pthread_create(&w->threads[i], &attr, thread_main, a);
        pthread_attr_destroy(&attr);
        if (rc) {
            free(a);
            return -rc;
        }
        w->nthreads++;
    }
    return 0;
}

static void stop_threads(srv_worker *w)
{
    if (w->inline_app) {
        apps_thread_free(w, 0);
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->stop_threads = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_cond_broadcast(&w->gate_cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nthreads; i++) pthread_join(w->threads[i], NULL);
}

/* ---- lifecycle ---- */

/* Wakes the master for a change it acts on (a successor wanted, readiness),
 * instead of leaving it to the master's next 100 ms tick; never whoever
 * adopted this process if the master is gone. */
static void poke_master(srv_worker *w)
{
    if (getppid() == w->master_pid) kill(w->master_pid, SIGUSR1);
}

void worker_begin_drain(srv_worker *w, const char *why)
{
    if (w->draining) return;
    srv_log("worker %d: %s: finishing in-flight requests", w->id, why);
    atomic_store(&w->draining, 1);
    w->drain_deadline_ms = ev_now_ms(w->loop) + (uint64_t)w->srv->s.mercy * 1000;
    close_listeners(w);
    conn_drain_idle(w);
    worker_update_accept(w);
}

/* Reads the process's size and RSS (pages) from /proc/self/statm, kept open:
 * one pread, cheap enough to do after every request (as uWSGI does). */
static int mem_pages(srv_worker *w, long *vsz, long *rss)
{
    char b[128];
    ssize_t n = pread(w->mem_fd, b, sizeof(b) - 1, 0);
    if (n <= 0) return -1;
    b[n] = 0;
    return sscanf(b, "%ld %ld", vsz, rss) == 2 ? 0 : -1;
}

/* The memory limits, after each request: evil-reload-on-rss kills the worker
 * at once (the master starts its successor without counting it as a crash);
 * reload-on-rss and limit-as recycle it gracefully before it grows further. */
static void check_memory(srv_worker *w)
{
    const srv_settings *st = &w->srv->s;
    long vsz, rss, mb = sysconf(_SC_PAGESIZE);
    if (mem_pages(w, &vsz, &rss)) return;
    int64_t rss_mb = (int64_t)rss * mb >> 20, vsz_mb = (int64_t)vsz * mb >> 20;
    if (st->evil_reload_on_rss_mb && rss_mb > st->evil_reload_on_rss_mb) {
        srv_log("worker %d: RSS %lld MiB over evil-reload-on-rss (%lld MiB): killing it", w->id,
                (long long)rss_mb, (long long)st->evil_reload_on_rss_mb);
        atomic_store(&w->slot->want_replace, 1);
        kill(getpid(), SIGKILL);
    }
    if (w->draining) return;
    if (st->reload_on_rss_mb && rss_mb > st->reload_on_rss_mb) {
        atomic_store(&w->slot->want_replace, 1);
        srv_log("worker %d: RSS %lld MiB over reload-on-rss (%lld MiB)", w->id, (long long)rss_mb,
                (long long)st->reload_on_rss_mb);
        poke_master(w);
        worker_begin_drain(w, "reload-on-rss exceeded");
    } else if (st->limit_as_mb && vsz_mb > st->limit_as_mb) {
        atomic_store(&w->slot->want_replace, 1);
        srv_log("worker %d: address space %lld MiB over limit-as (%lld MiB)", w->id,
                (long long)vsz_mb, (long long)st->limit_as_mb);
        poke_master(w);
        worker_begin_drain(w, "limit-as exceeded");
    }
}

void worker_request_done(srv_worker *w)
{
    w->requests++;
    /* One writer, this loop (the master zeroes it only for a new worker). */
    atomic_store_explicit(&w->slot->requests,
                          atomic_load_explicit(&w->slot->requests, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (w->mem_fd >= 0) check_memory(w);
    /* max-requests: ask for a successor and keep serving; the master sends
     * SIGHUP (drain) once the successor is ready, so the worker id never has
     * nobody accepting. */
    if (w->max_requests && w->requests == w->max_requests && !w->draining) {
        srv_log("worker %d: max-requests (%llu) reached: asking for a successor", w->id,
                (unsigned long long)w->max_requests);
        atomic_store(&w->slot->want_replace, 1);
        poke_master(w);
    }
}

static int apps_ready(srv_worker *w)
{
    srv *s = w->srv;
    for (int i = 0; i < s->napps; i++)
        if (s->apps[i].loaded && s->apps[i].kind->ready &&
            !s->apps[i].kind->ready(s->apps[i].state))
            return 0;
    return 1;
}

static void on_tick(ev_loop *loop, void *data)
{
    srv_worker *w = data;
    uint64_t now = ev_now_ms(loop);
    resp_update_date(w);
    /* Only as far as the last fresh one: new connections join the list at
     * its head, so under churn the fresh ones are the first few, not all. */
    int left = w->nfresh;
    for (srv_conn *c = w->conns; c && left > 0; c = c->next)
        if (c->fresh) {
            left--;
            if (now - c->accepted_ms >= FRESH_MS) worker_conn_used(c);
        }
    /* Readiness first: a worker that just got ready takes its share of new
     * connections at once rather than a tick later (accept.h: warming). */
    int ready = apps_ready(w);
    if (ready != atomic_exchange(&w->slot->ready, ready)) poke_master(w);
    worker_update_accept(w);
    rearm_if_queued(w);
    if (atomic_load_explicit(&w->slot->active_threads, memory_order_relaxed) != w->gate_seen) {
        pthread_mutex_lock(&w->mu); /* a raise with no dispatch since */
        gate_wake(w);
        pthread_mutex_unlock(&w->mu);
    }
    conn_sweep(w, now);
    if (w->draining && (w->nconns == 0 || now >= w->drain_deadline_ms)) {
        if (w->nconns) srv_log("worker %d: mercy over, %d connections dropped", w->id, w->nconns);
        ev_loop_stop(loop);
        return;
    }
    ev_timer_add(loop, TICK_MS, on_tick, w);
}

static void on_signal(ev_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    srv_worker *w = data;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGQUIT) _exit(0);
        worker_begin_drain(w, si.ssi_signo == SIGHUP ? "reload or recycle" : "shutdown");
    }
}

static int setup_signals(srv_worker *w)
{
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1};
    const size_t nsigs = sizeof(sigs) / sizeof(sigs[0]);
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < nsigs; i++) sigaddset(&set, sigs[i]);
    /* Blocked before the threads start, so only the signalfd sees them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* and ours, not left ignored by the launcher (the app sees the defaults) */
    for (size_t i = 0; i < nsigs; i++) signal(sigs[i], SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w->sigfd < 0) return -errno;
    return ev_io_add(w->loop, w->sigfd, EV_READ, on_signal, w);
}

int worker_main(srv *s, int worker_id, int slot_idx)
{
    srv_worker *w = calloc(1, sizeof(*w));
    char err[1024];
    if (!w) return 1;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    proctitle_set(s->cfg, "worker", worker_id);
    w->srv = s;
    w->id = worker_id;
    w->slot_idx = slot_idx;
    w->slot = sb_slot_at(s->sb, slot_idx);
    w->loop_tid = pthread_self();
    w->master_pid = getppid();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_cond_init(&w->gate_cv, NULL);
    pthread_mutex_init(&w->done_mu, NULL);
    if (s->s.max_requests)
        w->max_requests = (uint64_t)(s->s.max_requests + (worker_id - 1) * s->s.max_requests_delta);
    w->max_conns = s->s.max_connections > 0 ? s->s.max_connections : 1;
    w->mem_fd = -1;
    if (s->s.reload_on_rss_mb || s->s.evil_reload_on_rss_mb || s->s.limit_as_mb)
        w->mem_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (s->s.limit_as_mb) {
        /* uWSGI's limit-as: an allocation past it fails (Python: MemoryError) */
        struct rlimit rl = {(rlim_t)s->s.limit_as_mb << 20, (rlim_t)s->s.limit_as_mb << 20};
        if (setrlimit(RLIMIT_AS, &rl) < 0)
            srv_log("worker %d: limit-as: setrlimit: %s", worker_id, strerror(errno));
    }
    w->loop = ev_loop_new();
    if (!w->loop || setup_signals(w) || worker_async_init(w) ||
        (w->slot->wake_fd >= 0 && ev_io_add(w->loop, w->slot->wake_fd, EV_READ, on_wake, w))) {
        srv_log("worker %d: cannot set up its event loop", worker_id);
        return 1;
    }
    if (s->s.lazy_apps && srv_load_apps(s, worker_id, err, sizeof(err))) {
        srv_log("worker %d: %s", worker_id, err);
        return 3;
    }
    for (int i = 0; i < s->napps; i++)
        if (s->apps[i].loaded && s->apps[i].kind->worker_init &&
            s->apps[i].kind->worker_init(s->apps[i].state, worker_id)) {
            srv_log("worker %d: app '%s' failed its worker init", worker_id, s->apps[i].kind->name);
            if (s->s.need_app) return 3;
        }
    w->inline_app = app_runs_on_loop(s);
    if (start_threads(w)) {
        srv_log("worker %d: cannot start %d app threads", worker_id, s->s.threads);
        return 1;
    }
    resp_update_date(w);
    listen_nodelay(w);
    worker_update_accept(w);
    atomic_store(&w->slot->ready, apps_ready(w));
    if (atomic_load(&w->slot->ready)) poke_master(w);
    ev_timer_add(w->loop, TICK_MS, on_tick, w);
    ev_loop_run(w->loop);
    /* Mercy over with requests still running: their threads may never
     * return, so do not wait for them. */
    if (w->nconns) _exit(0);
    stop_threads(w);
    srv_free_apps(s);
    return 0;
}
