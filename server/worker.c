/*
 * worker: one worker process: its event loop (accept, connections, loop
 * handlers, housekeeping tick), its app threads and its graceful exit.
 *
 * Accepting: the shared listen sockets are watched with EPOLLEXCLUSIVE, so a
 * new connection wakes one worker, not all (no thundering herd), and the
 * accept queue outlives any one worker. A worker watches them only while it
 * has an idle app thread and is not draining (no over-accept): a busy worker
 * leaves new connections in the kernel queue for an idle one. Only when every
 * worker has been busy for 20 to 30 ms does one take queued connections
 * anyway, so keep-alive clients cannot starve new ones (accept_starving).
 */
#define _GNU_SOURCE
#include "server/core.h"
#include "server/proctitle.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS 100
/* While every app thread of this worker is busy, the listen queue is checked
 * this often for connections that no worker takes (accept_starving). */
#define STARVE_CHECK_MS 10
#define STARVE_CHECKS   3

static void on_accept(ev_loop *loop, int fd, unsigned events, void *data);
static void arm_starve_check(srv_worker *w);

/* 1 if another serving worker (that accepts, with only_accepting) holds at
 * least 2 fewer connections: leave the next ones to it. EPOLLEXCLUSIVE alone lets whichever
 * worker loops fastest take a whole burst of keep-alive connections (nginx
 * shows the same skew), which halves a 2-worker server under a fixed set of
 * clients. A connection this leaves queued is picked up by the other worker's
 * wake-up or, at worst, its next tick (rearm_if_queued). */
static int ahead_of(srv_worker *w, int only_accepting)
{
    sb *s = w->srv->sb;
    int mine = w->nconns;
    for (int i = 0; i < s->nslots; i++) {
        sb_slot *sl = sb_slot_at(s, i);
        if (sl == w->slot || atomic_load_explicit(&sl->state, memory_order_relaxed) != SB_RUNNING ||
            (only_accepting && !atomic_load_explicit(&sl->accepting, memory_order_relaxed)))
            continue;
        if (atomic_load_explicit(&sl->conns, memory_order_relaxed) + 2 <= mine) return 1;
    }
    return 0;
}

void worker_update_accept(srv_worker *w)
{
    srv *s = w->srv;
    /* A connection just accepted will most likely bring a request: it holds a
     * claim on an idle thread until that request is dispatched (or 100 ms
     * pass, so an idle pre-connect cannot stop accepting). */
    int able = !w->draining && atomic_load(&w->idle) > 0;
    atomic_store_explicit(&w->slot->accepting, able, memory_order_relaxed);
    int want = able && atomic_load(&w->idle) - w->nreserved > 0 && !ahead_of(w, 1);
    if (want == w->accepting) return;
    for (int i = 0; i < s->nlisten; i++) {
        if (want)
            ev_io_add(w->loop, s->listen_fds[i], EV_READ | EV_EXCLUSIVE, on_accept, w);
        else
            ev_io_del(w->loop, s->listen_fds[i]);
    }
    w->accepting = want;
    arm_starve_check(w);
}

/* Accepts one connection from listen socket li. reserve: the connection
 * holds a claim on an idle thread until its first request is dispatched.
 * Returns 0, or -1 when nothing was accepted. */
static int accept_one(srv_worker *w, int li, int reserve)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd =
        accept4(w->srv->listen_fds[li], (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE)
            srv_log("worker %d: out of file descriptors; accept paused", w->id);
        return -1;
    }
    srv_conn *c = conn_new(w, fd);
    if (!c) {
        close(fd);
        return -1;
    }
    c->listen_idx = li;
    c->uwsgi = w->srv->listen_proto[li] == SRV_PROTO_UWSGI;
    c->https = 0;
    c->reserved = reserve;
    c->accepted_ms = ev_now_ms(w->loop);
    w->nreserved += reserve;
    c->server_port = w->srv->listen_ports[li];
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, c->remote, sizeof(c->remote));
        c->remote_port = ntohs(a->sin6_port);
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, c->remote, sizeof(c->remote));
        c->remote_port = ntohs(a->sin_port);
    } else {
        strcpy(c->remote, "unix");
        c->remote_port = 0;
    }
    return 0;
}

static void on_accept(ev_loop *loop, int lfd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    srv_worker *w = data;
    int li = 0;
    while (li < w->srv->nlisten && w->srv->listen_fds[li] != lfd) li++;
    /* One accept per wake-up: the socket is level-triggered, so a backlog
     * wakes us (or another worker) again at once; taking a whole burst here
     * would pile every new connection on the first worker to wake. */
    if (w->accepting && li < w->srv->nlisten) accept_one(w, li, 1);
    worker_update_accept(w);
}

void worker_unreserve(srv_conn *c)
{
    if (!c->reserved) return;
    c->reserved = 0;
    c->w->nreserved--;
    worker_update_accept(c->w);
}

/* EPOLLEXCLUSIVE wakes one waiting worker per new connection; if that worker
 * then turns busy before accepting, the connection waits in the queue while
 * idle workers sleep. A worker that accepts re-registers the sockets when the
 * queue is not empty, which makes epoll poll them afresh. */
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

/* ---- app threads ---- */

int worker_dispatch_thread(srv_worker *w, srv_conn *c)
{
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
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    atomic_fetch_sub(&w->idle, 1);
    worker_update_accept(w);
    return 0;
}

void worker_complete(srv_worker *w, srv_conn *c)
{
    pthread_mutex_lock(&w->done_mu);
    c->done_next = w->done_head;
    w->done_head = c;
    pthread_mutex_unlock(&w->done_mu);
    ev_async_send(w->loop);
}

static void on_async(ev_loop *loop, void *data)
{
    (void)loop;
    srv_worker *w = data;
    pthread_mutex_lock(&w->done_mu);
    srv_conn *list = w->done_head;
    w->done_head = NULL;
    pthread_mutex_unlock(&w->done_mu);
    /* The list is LIFO; order does not matter between connections. */
    while (list) {
        srv_conn *c = list;
        list = c->done_next;
        conn_resume(c);
    }
    worker_update_accept(w);
}

typedef struct thread_arg {
    srv_worker *w;
    int tid;
} thread_arg;

static void run_job(srv_worker *w, int tid, srv_conn *c)
{
    sb_thread *t = &w->slot->threads[tid];
    int hk = w->srv->s.harakiri;
    uint64_t now = ev_clock_ms();
    snprintf(t->what, sizeof(t->what), "%.*s %.*s", (int)c->ar.method_len, c->ar.method,
             (int)(c->ar.uri_len > 120 ? 120 : c->ar.uri_len), c->ar.uri);
    atomic_store(&t->started_ms, now);
    if (hk) atomic_store(&t->deadline_ms, now + (uint64_t)hk * 1000);
    atomic_fetch_add(&w->slot->busy_threads, 1);
    c->ar.thread_id = tid;
    c->on_thread = 1;
    resp_set_thread_conn(c);
    const srv_route *rt = c->route;
    int rc = rt->fn(&c->ar, rt->data);
    atomic_store(&t->deadline_ms, 0);
    atomic_fetch_sub(&w->slot->busy_threads, 1);
    resp_set_thread_conn(NULL);
    c->on_thread = 0;
    if (rc == APP_PENDING && !c->finished) return; /* whoever holds it calls app_finish */
    if (rc < 0 && !c->head_sent) {
        resp_reset(c);
        c->status = 500;
        c->close_after = 1;
        app_write(&c->ar, "internal server error\n", 22);
    }
    c->finished = 1;
    if (!c->failed) resp_send_blocking(c);
    c->finished_sent = 1;
    c->head_sent = 1;
    worker_complete(w, c);
}

static void *thread_main(void *arg)
{
    thread_arg a = *(thread_arg *)arg;
    free(arg);
    srv_worker *w = a.w;
    srv *s = w->srv;
    for (int i = 0; i < s->napps; i++)
        if (s->apps[i].loaded && s->apps[i].kind->thread_init)
            s->apps[i].kind->thread_init(s->apps[i].state, a.tid);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->jobs_len && !w->stop_threads) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->jobs_len) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        srv_conn *c = w->jobs[w->jobs_head];
        w->jobs_head = (w->jobs_head + 1) % w->jobs_cap;
        w->jobs_len--;
        pthread_mutex_unlock(&w->mu);
        run_job(w, a.tid, c);
        /* Wake the loop when this thread turns the worker from full to free. */
        if (atomic_fetch_add(&w->idle, 1) == 0) ev_async_send(w->loop);
    }
    for (int i = 0; i < s->napps; i++)
        if (s->apps[i].loaded && s->apps[i].kind->thread_free)
            s->apps[i].kind->thread_free(s->apps[i].state, a.tid);
    return NULL;
}

static int start_threads(srv_worker *w)
{
    int n = w->srv->s.threads;
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
    pthread_mutex_lock(&w->mu);
    w->stop_threads = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nthreads; i++) pthread_join(w->threads[i], NULL);
}

/* ---- lifecycle ---- */

void worker_begin_drain(srv_worker *w, const char *why)
{
    if (w->draining) return;
    srv_log("worker %d: %s: finishing in-flight requests", w->id, why);
    w->draining = 1;
    uint64_t now = ev_now_ms(w->loop);
    w->drain_deadline_ms = now + (uint64_t)w->srv->s.mercy * 1000;
    /* A client that sent its next request just now must not see it reset:
     * idle keep-alive connections get a short grace before closing. */
    w->drain_idle_ms = now + 1000;
    worker_update_accept(w);
}

void worker_request_done(srv_worker *w)
{
    w->requests++;
    atomic_fetch_add_explicit(&w->slot->requests, 1, memory_order_relaxed);
    if (w->max_requests && w->requests >= w->max_requests && !w->draining) {
        atomic_store(&w->slot->want_replace, 1);
        worker_begin_drain(w, "max-requests reached");
    }
}

static long rss_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
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

/* Connections a busy worker may hold per app thread when it takes queued
 * ones anyway (accept_starving): the bound that leaves a flood of idle
 * sockets in the kernel queue, where a full queue is logged. */
#define BUSY_CONNS_PER_THREAD 32

static int listen_queued(srv_worker *w, int li)
{
    if (w->srv->listen_unix[li]) return 1; /* no TCP_INFO: accept4 tells, EAGAIN is cheap */
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    if (getsockopt(w->srv->listen_fds[li], IPPROTO_TCP, TCP_INFO, &ti, &tl)) return 0;
    return ti.tcpi_unacked > 0; /* on a listen socket: the accept queue length */
}

/* 1 if no other serving worker has an idle thread. */
static int others_busy(srv_worker *w)
{
    sb *s = w->srv->sb;
    for (int i = 0; i < s->nslots; i++) {
        sb_slot *sl = sb_slot_at(s, i);
        if (sl == w->slot || atomic_load_explicit(&sl->state, memory_order_relaxed) != SB_RUNNING)
            continue;
        if (atomic_load_explicit(&sl->accepting, memory_order_relaxed)) return 0;
    }
    return 1;
}

/* Under keep-alive load the accepted clients can keep every app thread busy
 * for good (a thread that finishes one request finds the next one queued, so
 * it never comes idle); a worker that accepts only while idle would then leave
 * a new client in the kernel queue for seconds. So when the queue has waited
 * STARVE_CHECKS checks in a row (20 to 30 ms), this worker has requests
 * waiting for a thread and no worker is idle, this worker takes the queued
 * connections anyway (up to a bound): they join its FIFO of requests behind
 * the others instead of starving. While any worker is idle this never
 * applies, so a busy worker still leaves new connections to an idle one; and
 * with no backlog of its own a thread comes idle soon and accepts normally. */
static void accept_starving(srv_worker *w)
{
    int queued = 0;
    for (int li = 0; li < w->srv->nlisten; li++) queued |= listen_queued(w, li);
    pthread_mutex_lock(&w->mu);
    int backlogged = w->jobs_len > 0; /* requests wait for a thread: none comes idle soon */
    pthread_mutex_unlock(&w->mu);
    if (!queued || !backlogged || w->accepting || w->draining || atomic_load(&w->idle) > 0 ||
        !others_busy(w)) {
        w->queued_checks = 0;
        return;
    }
    if (++w->queued_checks < STARVE_CHECKS) return;
    int cap = w->srv->s.threads * BUSY_CONNS_PER_THREAD;
    for (int li = 0; li < w->srv->nlisten; li++)
        /* a burst is shared: each busy worker stops 2 ahead of the others, and
         * their own checks take the rest */
        while (w->nconns < cap && !ahead_of(w, 0) && listen_queued(w, li) &&
               accept_one(w, li, 0) == 0) {
        }
}

static void on_starve_check(ev_loop *loop, void *data)
{
    (void)loop;
    srv_worker *w = data;
    w->starve_timer = 0;
    accept_starving(w);
    arm_starve_check(w);
}

/* The check runs only while every app thread is busy, so an idle server never
 * wakes for it; worker_update_accept() arms it on each change of load. */
static void arm_starve_check(srv_worker *w)
{
    if (w->starve_timer || w->draining || atomic_load(&w->idle) > 0) {
        if (!w->starve_timer) w->queued_checks = 0;
        return;
    }
    w->starve_timer = ev_timer_add(w->loop, STARVE_CHECK_MS, on_starve_check, w);
}

static void on_tick(ev_loop *loop, void *data)
{
    srv_worker *w = data;
    uint64_t now = ev_now_ms(loop);
    resp_update_date(w);
    for (srv_conn *c = w->conns; c; c = c->next)
        if (c->reserved && now - c->accepted_ms >= 100) worker_unreserve(c);
    worker_update_accept(w);
    rearm_if_queued(w);
    conn_sweep(w, now);
    atomic_store(&w->slot->ready, apps_ready(w));
    if (w->srv->s.reload_on_rss_mb && !w->draining && (now / TICK_MS) % 10 == 0 &&
        rss_mb() > w->srv->s.reload_on_rss_mb) {
        atomic_store(&w->slot->want_replace, 1);
        worker_begin_drain(w, "reload-on-rss exceeded");
    }
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
        worker_begin_drain(w, si.ssi_signo == SIGHUP ? "reload" : "shutdown");
    }
}

static int setup_signals(srv_worker *w)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    /* Blocked before the threads start, so only the signalfd sees them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
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
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_mutex_init(&w->done_mu, NULL);
    if (s->s.max_requests)
        w->max_requests = (uint64_t)(s->s.max_requests + (worker_id - 1) * s->s.max_requests_delta);
    w->loop = ev_loop_new();
    if (!w->loop || setup_signals(w) || ev_async_init(w->loop, on_async, w)) {
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
    if (start_threads(w)) {
        srv_log("worker %d: cannot start %d app threads", worker_id, s->s.threads);
        return 1;
    }
    resp_update_date(w);
    worker_update_accept(w);
    atomic_store(&w->slot->ready, apps_ready(w));
    ev_timer_add(w->loop, TICK_MS, on_tick, w);
    ev_loop_run(w->loop);
    /* Mercy over with requests still running: their threads may never
     * return, so do not wait for them. */
    if (w->nconns) _exit(0);
    stop_threads(w);
    srv_free_apps(s);
    return 0;
}
