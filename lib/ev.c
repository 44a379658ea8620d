/*
 * Design: fd watchers live in an array indexed by fd (fds are small and dense),
 * timers in a binary min-heap keyed by deadline. Cancelling a timer marks its
 * heap slot dead (lazy deletion); the heap pops it later without a call.
 */
#define _GNU_SOURCE
#include "ev.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct ev_watch {
    ev_io_cb cb;
    void *data;
    unsigned events;
    int active;
};

struct ev_timer {
    uint64_t deadline;
    uint64_t id;
    ev_timer_cb cb;
    void *data;
};

struct ev_loop {
    int epfd;
    int stop;
    uint64_t now, now_us; /* cached: ms and us of the same clock read */
    struct ev_watch *watch;
    int nwatch;
    struct ev_timer *heap;
    size_t nheap, capheap;
    uint64_t next_id;
    int asyncfd;
    ev_async_cb async_cb;
    void *async_data;
    unsigned forks; /* ev_forks when the loop was made */
};

/* fork() calls in this process (pthread_atfork), for ev_io_close: the one
 * piece of process-wide state here, because a fork is a process-wide event. */
static _Atomic unsigned ev_forks;
static pthread_once_t ev_forks_once = PTHREAD_ONCE_INIT;

static void count_fork(void)
{
    atomic_fetch_add_explicit(&ev_forks, 1, memory_order_relaxed);
}

static void watch_forks(void)
{
    pthread_atfork(count_fork, NULL, NULL);
}

uint64_t ev_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ev_clock_us(void)
{
    return ev_clock_ns() / 1000u;
}

uint64_t ev_clock_ms(void)
{
    return ev_clock_ns() / 1000000u;
}

uint64_t ev_now_ms(const ev_loop *loop)
{
    return loop->now;
}

uint64_t ev_now_us(const ev_loop *loop)
{
    return loop->now_us;
}

/* One clock read for both cached times. */
static void update_now(ev_loop *loop)
{
    uint64_t us = ev_clock_us();
    loop->now_us = us;
    loop->now = us / 1000u;
}

ev_loop *ev_loop_new(void)
{
    ev_loop *loop = calloc(1, sizeof(*loop));
    if (!loop) return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    loop->asyncfd = -1;
    update_now(loop);
    pthread_once(&ev_forks_once, watch_forks);
    loop->forks = atomic_load_explicit(&ev_forks, memory_order_relaxed);
    return loop;
}

void ev_loop_free(ev_loop *loop)
{
    if (!loop) return;
    if (loop->asyncfd >= 0) close(loop->asyncfd);
    close(loop->epfd);
    free(loop->watch);
    free(loop->heap);
    free(loop);
}

void ev_loop_stop(ev_loop *loop)
{
    loop->stop = 1;
}

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & EV_READ) e |= EPOLLIN | (events & EV_EXCLUSIVE ? 0 : EPOLLRDHUP);
    if (events & EV_WRITE) e |= EPOLLOUT;
    if (events & EV_EXCLUSIVE) e |= EPOLLEXCLUSIVE;
    return e;
}

static int grow_watch(ev_loop *loop, int fd)
{
    if (fd < loop->nwatch) return 0;
    int n = loop->nwatch ? loop->nwatch : 64;
    while (n <= fd) n *= 2;
    struct ev_watch *w = realloc(loop->watch, (size_t)n * sizeof(*w));
    if (!w) return -ENOMEM;
    memset(w + loop->nwatch, 0, (size_t)(n - loop->nwatch) * sizeof(*w));
    loop->watch = w;
    loop->nwatch = n;
    return 0;
}

int ev_io_add(ev_loop *loop, int fd, unsigned events, ev_io_cb cb, void *data)
{
    if (fd < 0) return -EBADF;
    int rc = grow_watch(loop, fd);
    if (rc) return rc;
    struct epoll_event ee = {.events = to_epoll(events), .data.fd = fd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ee) < 0) return -errno;
    loop->watch[fd] = (struct ev_watch){.cb = cb, .data = data, .events = events, .active = 1};
    return 0;
}

int ev_io_mod(ev_loop *loop, int fd, unsigned events)
{
    if (fd < 0 || fd >= loop->nwatch || !loop->watch[fd].active) return -ENOENT;
    if (loop->watch[fd].events == events) return 0;
    struct epoll_event ee = {.events = to_epoll(events), .data.fd = fd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ee) < 0) return -errno;
    loop->watch[fd].events = events;
    return 0;
}

int ev_io_del(ev_loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->nwatch || !loop->watch[fd].active) return -ENOENT;
    loop->watch[fd].active = 0;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0) return -errno;
    return 0;
}

/* ---- timers: binary min-heap on deadline ---- */

int ev_io_close(ev_loop *loop, int fd)
{
    if (fd < 0) return -EBADF;
    int watched = fd < loop->nwatch && loop->watch[fd].active;
    if (watched) {
        loop->watch[fd].active = 0;
        if (atomic_load_explicit(&ev_forks, memory_order_relaxed) != loop->forks)
            epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    }
    return close(fd) < 0 ? -errno : 0;
}

static void heap_swap(struct ev_timer *h, size_t a, size_t b)
{
    struct ev_timer t = h[a];
    h[a] = h[b];
    h[b] = t;
}

static int timer_less(const struct ev_timer *a, const struct ev_timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id);
}

uint64_t ev_timer_add(ev_loop *loop, uint64_t after_ms, ev_timer_cb cb, void *data)
{
    if (loop->nheap == loop->capheap) {
        size_t cap = loop->capheap ? loop->capheap * 2 : 64;
        struct ev_timer *h = realloc(loop->heap, cap * sizeof(*h));
        if (!h) return 0;
        loop->heap = h;
        loop->capheap = cap;
    }
    uint64_t id = ++loop->next_id;
    size_t i = loop->nheap++;
    loop->heap[i] =
        (struct ev_timer){.deadline = ev_clock_ms() + after_ms, .id = id, .cb = cb, .data = data};
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!timer_less(&loop->heap[i], &loop->heap[p])) break;
        heap_swap(loop->heap, i, p);
        i = p;
    }
    return id;
}

void ev_timer_cancel(ev_loop *loop, uint64_t id)
{
    if (id == 0) return;
    for (size_t i = 0; i < loop->nheap; i++) {
        if (loop->heap[i].id == id) {
            loop->heap[i].cb = NULL; /* dead: popped without a call */
            return;
        }
    }
}

static void heap_pop(ev_loop *loop)
{
    struct ev_timer *h = loop->heap;
    h[0] = h[--loop->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->nheap && timer_less(&h[l], &h[m])) m = l;
        if (r < loop->nheap && timer_less(&h[r], &h[m])) m = r;
        if (m == i) break;
        heap_swap(h, i, m);
        i = m;
    }
}

static void run_timers(ev_loop *loop)
{
    update_now(loop);
    uint64_t now = loop->now;
    while (loop->nheap && loop->heap[0].deadline <= now) {
        struct ev_timer t = loop->heap[0];
        heap_pop(loop);
        if (t.cb) t.cb(loop, t.data);
    }
}

static int next_timeout(ev_loop *loop, int timeout_ms)
{
    /* Drop dead timers at the top so they don't cause needless wake-ups. */
    while (loop->nheap && !loop->heap[0].cb) heap_pop(loop);
    if (!loop->nheap) return timeout_ms;
    uint64_t now = ev_clock_ms();
    uint64_t d = loop->heap[0].deadline;
    int t = d <= now ? 0 : (d - now > 3600000u ? 3600000 : (int)(d - now));
    return (timeout_ms < 0 || t < timeout_ms) ? t : timeout_ms;
}

/* ---- async wake-up ---- */

static void async_read(ev_loop *loop, int fd, unsigned events, void *data)
{
    (void)events;
    (void)data;
    uint64_t v;
    /* One read takes the whole counter (a plain eventfd, not a semaphore):
     * a second would only say EAGAIN, a syscall per wake-up for nothing. */
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    if (loop->async_cb) loop->async_cb(loop, loop->async_data);
}

int ev_async_init(ev_loop *loop, ev_async_cb cb, void *data)
{
    if (loop->asyncfd >= 0) return -EEXIST;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -errno;
    loop->async_cb = cb;
    loop->async_data = data;
    int rc = ev_io_add(loop, fd, EV_READ, async_read, NULL);
    if (rc) {
        close(fd);
        return rc;
    }
    loop->asyncfd = fd;
    return 0;
}

void ev_async_send(ev_loop *loop)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: a wake-up is pending anyway. */
    ssize_t n = write(loop->asyncfd, &one, sizeof(one));
    (void)n;
}

/* ---- running ---- */

int ev_loop_run_once(ev_loop *loop, int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(loop->epfd, evs, 256, next_timeout(loop, timeout_ms));
    if (n < 0 && errno != EINTR) return -errno;
    update_now(loop);
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        /* A callback earlier in this batch may have removed this watcher. */
        if (fd >= loop->nwatch || !loop->watch[fd].active) continue;
        uint32_t e = evs[i].events;
        unsigned got = 0;
        if (e & (EPOLLIN | EPOLLRDHUP)) got |= EV_READ;
        if (e & EPOLLOUT) got |= EV_WRITE;
        if (e & (EPOLLERR | EPOLLHUP)) got |= EV_ERROR | EV_READ;
        struct ev_watch w = loop->watch[fd];
        w.cb(loop, fd, got, w.data);
    }
    run_timers(loop);
    return 0;
}

int ev_loop_run(ev_loop *loop)
{
    loop->stop = 0;
    while (!loop->stop) {
        int rc = ev_loop_run_once(loop, -1);
        if (rc) return rc;
    }
    return 0;
}
