#include "ev.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
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
