#define _GNU_SOURCE
#include "ev.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void count_timer(ev_loop *loop, void *data)
{
    int *n = data;
    (*n)++;
    (void)loop;
}

Test(ev, timers_fire_in_deadline_order_and_cancel_skips)
{
    ev_loop *loop = ev_loop_new();
    cr_assert_not_null(loop);
    int a = 0, b = 0;
    uint64_t ida = ev_timer_add(loop, 5, count_timer, &a);
    ev_timer_add(loop, 1, count_timer, &b);
    ev_timer_cancel(loop, ida);
    uint64_t start = ev_clock_ms();
    while (ev_clock_ms() - start < 30) ev_loop_run_once(loop, 10);
    cr_assert_eq(a, 0, "a cancelled timer never fires");
    cr_assert_eq(b, 1, "a live timer fires exactly once");
    ev_loop_free(loop);
}

static void on_read(ev_loop *loop, int fd, unsigned events, void *data)
{
    char buf[16];
    int *got = data;
    if (events & EV_READ) *got += (int)read(fd, buf, sizeof(buf));
    ev_loop_stop(loop);
}

Test(ev, io_watcher_sees_readable_pipe)
{
    ev_loop *loop = ev_loop_new();
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int got = 0;
    cr_assert_eq(ev_io_add(loop, p[0], EV_READ, on_read, &got), 0);
    cr_assert_eq(write(p[1], "abc", 3), 3);
    cr_assert_eq(ev_loop_run(loop), 0);
    cr_assert_eq(got, 3);
    cr_assert_eq(ev_io_del(loop, p[0]), 0);
    cr_assert_eq(ev_io_del(loop, p[0]), -ENOENT, "deleting twice reports ENOENT");
    close(p[0]);
    close(p[1]);
    ev_loop_free(loop);
}

static void on_async(ev_loop *loop, void *data)
{
    (*(int *)data)++;
    ev_loop_stop(loop);
}

static void *sender(void *arg)
{
    usleep(2000);
    ev_async_send(arg);
    return NULL;
}

Test(ev, async_send_from_another_thread_wakes_the_loop)
{
    ev_loop *loop = ev_loop_new();
    int n = 0;
    cr_assert_eq(ev_async_init(loop, on_async, &n), 0);
    pthread_t t;
    pthread_create(&t, NULL, sender, loop);
    cr_assert_eq(ev_loop_run(loop), 0);
    pthread_join(t, NULL);
    cr_assert_eq(n, 1);
    ev_loop_free(loop);
}

/* ---- timers ---- */

typedef struct order {
    int seq[128];
    int n;
} order;

typedef struct tag {
    order *o;
    int id;
} tag;

static void record(ev_loop *loop, void *data)
{
    tag *t = data;
    (void)loop;
    if (t->o->n < 128) t->o->seq[t->o->n++] = t->id;
}

/* Runs the loop until want callbacks were recorded or limit_ms passed. */
static void run_until(ev_loop *loop, const order *o, int want, uint64_t limit_ms)
{
    uint64_t start = ev_clock_ms();
    while (o->n < want && ev_clock_ms() - start < limit_ms) ev_loop_run_once(loop, 50);
}

Test(ev, timers_fire_by_deadline_and_equal_deadlines_in_arming_order)
{
    ev_loop *loop = ev_loop_new();
    order o = {.n = 0};
    /* 48 timers on 6 deadlines 25 ms apart, armed in a scrambled order: the
     * deadlines are far apart enough that arming them all (microseconds, or
     * a few ms on a loaded machine) cannot reorder two of them. */
    tag tags[48];
    for (int i = 0; i < 48; i++) {
        int k = (i * 29) % 48;
        tags[i] = (tag){&o, k};
        cr_assert_neq(ev_timer_add(loop, (uint64_t)(k % 6) * 25, record, &tags[i]), 0);
    }
    run_until(loop, &o, 48, 5000);
    cr_assert_eq(o.n, 48);
    for (int i = 1; i < 48; i++) {
        int a = o.seq[i - 1], b = o.seq[i];
        cr_assert(a % 6 <= b % 6, "deadline order: %d before %d", a, b);
        if (a % 6 == b % 6) {
            /* same after_ms: the one armed first fires first */
            int ia = -1, ib = -1;
            for (int j = 0; j < 48; j++) {
                if (tags[j].id == a) ia = j;
                if (tags[j].id == b) ib = j;
            }
            cr_assert_lt(ia, ib, "arming order within a deadline: %d before %d", a, b);
        }
    }
    ev_loop_free(loop);
}

Test(ev, a_zero_timeout_fires_on_the_next_iteration_without_waiting, .timeout = 10)
{
    ev_loop *loop = ev_loop_new();
    order o = {.n = 0};
    tag t = {&o, 1};
    cr_assert_neq(ev_timer_add(loop, 0, record, &t), 0);
    /* timeout -1 would block forever if the timer were not due already */
    cr_assert_eq(ev_loop_run_once(loop, -1), 0);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(ev_loop_run_once(loop, 0), 0);
    cr_assert_eq(o.n, 1, "a one-shot timer fires once");
    ev_loop_free(loop);
}

Test(ev, run_once_sleeps_until_the_next_deadline_not_less, .timeout = 10)
{
    ev_loop *loop = ev_loop_new();
    order o = {.n = 0};
    tag t = {&o, 1};
    uint64_t start = ev_clock_ms();
    ev_timer_add(loop, 30, record, &t);
    while (o.n == 0) cr_assert_eq(ev_loop_run_once(loop, -1), 0);
    cr_assert_geq(ev_clock_ms() - start, 30, "fired before its deadline");
    ev_loop_free(loop);
}

typedef struct canceller {
    ev_loop *loop;
    uint64_t victim;
    order *o;
} canceller;

static void cancel_other(ev_loop *loop, void *data)
{
    canceller *c = data;
    ev_timer_cancel(loop, c->victim);
    if (c->o->n < 128) c->o->seq[c->o->n++] = 0;
}

Test(ev, cancel_is_safe_twice_after_firing_and_from_a_callback)
{
    ev_loop *loop = ev_loop_new();
    order o = {.n = 0};
    tag t1 = {&o, 1}, t2 = {&o, 2}, t3 = {&o, 3};
    uint64_t id1 = ev_timer_add(loop, 0, record, &t1);
    uint64_t id2 = ev_timer_add(loop, 0, record, &t2);
    cr_assert_neq(id1, id2);
    ev_timer_cancel(loop, id2);
    ev_timer_cancel(loop, id2); /* twice: a no-op */
    ev_timer_cancel(loop, 0);   /* the "no timer" id */
    run_until(loop, &o, 1, 1000);
    ev_loop_run_once(loop, 0);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.seq[0], 1);
    ev_timer_cancel(loop, id1); /* already fired: a no-op */
    /* a callback cancels a timer due in the same iteration: it never fires */
    canceller c = {loop, 0, &o};
    ev_timer_add(loop, 5, cancel_other, &c);
    c.victim = ev_timer_add(loop, 5, record, &t3);
    run_until(loop, &o, 2, 1000);
    uint64_t start = ev_clock_ms();
    while (ev_clock_ms() - start < 30) ev_loop_run_once(loop, 10);
    cr_assert_eq(o.n, 2, "the cancelled timer stayed silent");
    cr_assert_eq(o.seq[1], 0);
    ev_loop_free(loop);
}

typedef struct rearm {
    int left, fired;
    uint64_t last_id;
    int ids_grow;
} rearm;

static void rearm_cb(ev_loop *loop, void *data)
{
    rearm *r = data;
    r->fired++;
    if (--r->left > 0) {
        uint64_t id = ev_timer_add(loop, 1, rearm_cb, r);
        if (id <= r->last_id) r->ids_grow = 0;
        r->last_id = id;
    }
}

Test(ev, a_callback_may_rearm_its_timer)
{
    ev_loop *loop = ev_loop_new();
    rearm r = {.left = 20, .ids_grow = 1};
    r.last_id = ev_timer_add(loop, 1, rearm_cb, &r);
    uint64_t start = ev_clock_ms();
    while (r.left > 0 && ev_clock_ms() - start < 5000) ev_loop_run_once(loop, 50);
    cr_assert_eq(r.fired, 20, "each re-armed timer fires once");
    cr_assert(r.ids_grow, "ids are never reused");
    /* nothing left armed: the loop waits for its timeout, not a stale timer */
    ev_loop_run_once(loop, 0);
    cr_assert_eq(r.fired, 20);
    ev_loop_free(loop);
}

static void count_calls(ev_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    (*(int *)data)++;
}

/* ev_io_close closes the fd and ends its watcher; after a fork, whose child
 * still holds the file, no event of the old file reaches a new watcher that
 * got the same fd number (the registration was deleted, not left behind). */
Test(ev, io_close_closes_and_leaves_no_registration_behind_after_a_fork)
{
    ev_loop *loop = ev_loop_new();
    cr_assert_not_null(loop);
    int sv[2], calls = 0;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    cr_assert_eq(ev_io_add(loop, sv[0], EV_READ, count_calls, &calls), 0);
    cr_assert_eq(ev_io_close(loop, sv[0]), 0);
    cr_assert_eq(fcntl(sv[0], F_GETFD), -1, "the fd is closed");
    close(sv[1]);

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    cr_assert_eq(ev_io_add(loop, sv[0], EV_READ, count_calls, &calls), 0);
    int hold[2];
    cr_assert_eq(pipe(hold), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) { /* holds a copy of sv[0] until the parent says */
        char b;
        close(hold[1]);
        ssize_t n = read(hold[0], &b, 1);
        _exit(n < 0);
    }
    close(hold[0]);
    int old = sv[0];
    cr_assert_eq(ev_io_close(loop, old), 0);
    cr_assert_eq(write(sv[1], "x", 1), 1, "the old file is readable now (the child holds it)");
    int p2[2];
    cr_assert_eq(pipe2(p2, O_NONBLOCK), 0);
    int nfd = p2[0] == old ? p2[0] : dup2(p2[0], old); /* the old number, a new file */
    cr_assert_eq(nfd, old);
    int quiet = 0;
    cr_assert_eq(ev_io_add(loop, nfd, EV_READ, count_calls, &quiet), 0);
    for (int i = 0; i < 5; i++) ev_loop_run_once(loop, 10);
    cr_assert_eq(quiet, 0, "an event of the closed file reached the new watcher");
    cr_assert_eq(calls, 0);
    cr_assert_eq(write(hold[1], "x", 1), 1);
    waitpid(pid, NULL, 0);
    ev_io_del(loop, nfd);
    close(nfd);
    if (p2[0] != nfd) close(p2[0]);
    close(p2[1]);
    close(sv[1]);
    close(hold[1]);
    ev_loop_free(loop);
}

Test(ev, the_cached_time_in_us_and_ms_come_from_one_clock_read)
{
    ev_loop *loop = ev_loop_new();
    cr_assert_not_null(loop);
    uint64_t before = ev_clock_us();
    usleep(2000);
    ev_loop_run_once(loop, 1);
    uint64_t us = ev_now_us(loop);
    cr_assert_gt(us, before, "the loop's time moves on when it wakes");
    cr_assert_leq(us, ev_clock_us());
    cr_assert_eq(ev_now_ms(loop), us / 1000, "ms and us are the same read");
    ev_loop_free(loop);
}
