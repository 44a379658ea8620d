/*
 * ev: a small epoll event loop with fd watchers, one-shot timers and a
 * cross-thread wake-up. One loop belongs to one thread; only ev_async_send()
 * may be called from other threads.
 *
 * Ownership: the loop never owns the fds or the callback data it is given.
 * Remove a watcher (ev_io_del) before closing its fd.
 */
#ifndef EV_H
#define EV_H

#include <stdint.h>

typedef struct ev_loop ev_loop;

enum {
    EV_READ = 1u << 0,
    EV_WRITE = 1u << 1,
    EV_EXCLUSIVE = 1u << 2, /* EPOLLEXCLUSIVE: for a listen socket shared by processes */
    EV_ERROR = 1u << 3,     /* reported only: EPOLLERR or EPOLLHUP */
};

typedef void (*ev_io_cb)(ev_loop *loop, int fd, unsigned events, void *data);
typedef void (*ev_timer_cb)(ev_loop *loop, void *data);
typedef void (*ev_async_cb)(ev_loop *loop, void *data);

/* Returns NULL on failure (errno set). */
ev_loop *ev_loop_new(void);
void ev_loop_free(ev_loop *loop);

/* Runs until ev_loop_stop(); returns 0, or -errno if epoll_wait fails. */
int ev_loop_run(ev_loop *loop);
/* Runs one iteration, waiting at most timeout_ms (-1: until an event or timer). */
int ev_loop_run_once(ev_loop *loop, int timeout_ms);
void ev_loop_stop(ev_loop *loop);

/* Monotonic time, cached per loop iteration (ev_now) or read now (ev_clock_*). */
uint64_t ev_now_ms(const ev_loop *loop);
/* The same cached time in microseconds: when the loop last woke (after
 * epoll_wait, or before running timers). A request that starts in this batch
 * of events is timed from it, which costs no clock read per request. */
uint64_t ev_now_us(const ev_loop *loop);
uint64_t ev_clock_ms(void);
uint64_t ev_clock_us(void);
uint64_t ev_clock_ns(void);

/* fd watchers. Level-triggered. 0 or -errno. One watcher per fd. */
int ev_io_add(ev_loop *loop, int fd, unsigned events, ev_io_cb cb, void *data);
int ev_io_mod(ev_loop *loop, int fd, unsigned events);
int ev_io_del(ev_loop *loop, int fd);
/* Removes fd's watcher (if any) and closes fd. The close drops the epoll
 * registration by itself when fd is this process's only reference to its
 * file, which saves the EPOLL_CTL_DEL, a system call per connection (nginx
 * saves it too); once this process has forked since the loop was made (a
 * child may hold a copy, keeping the registration and its events alive), it
 * deletes first. Not for an fd that was dup()ed. 0 or -errno (of close). */
int ev_io_close(ev_loop *loop, int fd);

/* One-shot timers. Returns an id > 0, or 0 on allocation failure. Cancelling an
 * id that already fired or was cancelled is a no-op. */
uint64_t ev_timer_add(ev_loop *loop, uint64_t after_ms, ev_timer_cb cb, void *data);
void ev_timer_cancel(ev_loop *loop, uint64_t id);

/* Cross-thread wake-up: ev_async_send() from any thread makes the loop call cb
 * once soon after (sends coalesce). Only one async callback per loop. */
int ev_async_init(ev_loop *loop, ev_async_cb cb, void *data);
void ev_async_send(ev_loop *loop);

#endif
