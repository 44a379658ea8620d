#include "server/cheaper.h"

#include <criterion/criterion.h>

static cheaper_conf conf(int algo)
{
    return (cheaper_conf){.algo = algo,
                          .min = 1,
                          .max = 4,
                          .initial = 1,
                          .step = 1,
                          .overload = 3,
                          .idle = 10,
                          .busy_min = 25,
                          .busy_max = 50,
                          .multiplier = 2,
                          .penalty = 2,
                          .backlog_alert = 33,
                          .backlog_step = 2};
}

Test(cheaper, algo_names_round_trip)
{
    for (int a = CHEAPER_SPARE; a <= CHEAPER_MANUAL; a++)
        cr_assert_eq(cheaper_algo_parse(cheaper_algo_name(a)), a);
    cr_assert_eq(cheaper_algo_parse("sparse"), -1);
}

Test(cheaper, spare_spawns_after_overload_all_busy_ticks_and_cheaps_when_idle)
{
    cheaper_conf c = conf(CHEAPER_SPARE);
    cheaper_state st;
    cheaper_state_init(&st, &c);
    cheaper_sample all = {.active = 2, .busy = 2};
    for (int i = 0; i < 3; i++) cr_assert_eq(cheaper_decide(&c, &st, &all), 0, "tick %d", i);
    cr_assert_eq(cheaper_decide(&c, &st, &all), 1, "overload_count > 3 spawns a step");
    /* A free worker decays the count, so bursts below a full overload spawn nothing. */
    cheaper_sample one_idle = {.active = 3, .busy = 2};
    cr_assert_eq(cheaper_decide(&c, &st, &one_idle), 0);
    cheaper_sample idle = {.active = 3, .busy = 0};
    cr_assert_eq(cheaper_decide(&c, &st, &idle), 0);
    cr_assert_eq(cheaper_decide(&c, &st, &idle), 0);
    cr_assert_eq(cheaper_decide(&c, &st, &idle), -1, "one every cheaper-overload idle ticks");
    cheaper_sample at_min = {.active = 1, .busy = 0};
    for (int i = 0; i < 10; i++) cr_assert_eq(cheaper_decide(&c, &st, &at_min), 0);
}

Test(cheaper, spawns_stop_at_the_maximum_and_soft_rss)
{
    cheaper_conf c = conf(CHEAPER_SPARE);
    c.step = 3;
    cheaper_state st;
    cheaper_state_init(&st, &c);
    cheaper_sample s = {.active = 3, .busy = 3};
    int d = 0;
    for (int i = 0; i < 4; i++) d = cheaper_decide(&c, &st, &s);
    cr_assert_eq(d, 1, "clamped to processes - active");
    s.active = s.busy = 4;
    for (int i = 0; i < 8; i++) cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
    c.rss_soft = 100;
    s.active = s.busy = 2;
    s.rss = 200;
    for (int i = 0; i < 8; i++) cr_assert_eq(cheaper_decide(&c, &st, &s), 0, "soft limit");
    c.rss_hard = 150;
    cr_assert_eq(cheaper_decide(&c, &st, &s), -1, "hard limit cheaps even when busy");
}

Test(cheaper, spare2_keeps_min_idle_workers)
{
    cheaper_conf c = conf(CHEAPER_SPARE2);
    c.min = 2;
    c.step = 4;
    c.idle = 3;
    cheaper_state st;
    cheaper_state_init(&st, &c);
    cheaper_sample s = {.active = 2, .busy = 2};
    cr_assert_eq(cheaper_decide(&c, &st, &s), 2);
    s = (cheaper_sample){.active = 4, .busy = 1};
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
    cr_assert_eq(cheaper_decide(&c, &st, &s), -1);
}

Test(cheaper, backlog_compares_the_queue_with_overload)
{
    cheaper_conf c = conf(CHEAPER_BACKLOG);
    cheaper_state st;
    cheaper_state_init(&st, &c);
    cheaper_sample s = {.active = 2, .backlog = 10};
    cr_assert_eq(cheaper_decide(&c, &st, &s), 1);
    s.backlog = 3;
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
    s.backlog = 0;
    cr_assert_eq(cheaper_decide(&c, &st, &s), -1);
}

Test(cheaper, busyness_windows_multiplier_and_penalty)
{
    cheaper_conf c = conf(CHEAPER_BUSYNESS);
    cheaper_state st;
    cheaper_state_init(&st, &c);
    cheaper_sample hi = {.active = 2, .busy = 2, .busy_frac = 0.9};
    cr_assert_eq(cheaper_decide(&c, &st, &hi), 0);
    cr_assert_eq(cheaper_decide(&c, &st, &hi), 0);
    cr_assert_eq(cheaper_decide(&c, &st, &hi), 1, "window mean 90%% > 50%%");
    cheaper_sample mid = {.active = 3, .busy = 1, .busy_frac = 0.3};
    for (int i = 0; i < 6; i++) cr_assert_eq(cheaper_decide(&c, &st, &mid), 0);
    cheaper_sample lo = {.active = 3, .busy = 0, .busy_frac = 0.1};
    for (int i = 0; i < 5; i++) cr_assert_eq(cheaper_decide(&c, &st, &lo), 0, "tick %d", i);
    cr_assert_eq(cheaper_decide(&c, &st, &lo), -1, "two low windows (multiplier)");
    /* Busy again in the next window: the cheap was premature. */
    for (int i = 0; i < 2; i++) cheaper_decide(&c, &st, &hi);
    cr_assert_eq(cheaper_decide(&c, &st, &hi), 1);
    cr_assert_eq(st.cur_multiplier, 4, "penalty raised the multiplier");
    cheaper_sample flood = {.active = 2, .busy = 2, .busy_frac = 1, .backlog = 40};
    cr_assert_eq(cheaper_decide(&c, &st, &flood), 2, "backlog alert spawns backlog-step");
}

Test(cheaper, manual_never_decides)
{
    cheaper_conf c = conf(CHEAPER_MANUAL);
    cheaper_state st;
    cheaper_state_init(&st, &c);
    cheaper_sample s = {.active = 2, .busy = 2, .busy_frac = 1, .backlog = 99};
    for (int i = 0; i < 10; i++) cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
}

static cheaper_conf queue_conf(void)
{
    cheaper_conf c = conf(CHEAPER_QUEUE);
    c.max = 8;
    c.queue_target_ms = 100;
    c.threads = 2;
    c.ncpu = 2;
    return c;
}

/* Ticks of 100 ms at `rate` requests/s on a 50 ms handler that waits
 * (0.1 ms CPU each): `in_service` threads running, `backlog` queued. */
static int tick(const cheaper_conf *c, cheaper_state *st, int active, double rate, int running,
                int backlog)
{
    int done = (int)(rate * 0.1 + 0.5);
    cheaper_sample s = {.active = active,
                        .busy = running < active ? running : active,
                        .backlog = backlog,
                        .queue_ms = backlog ? 60 : 0,
                        .cpu = done * 0.1e-3 / 0.1,
                        .dt = 0.1,
                        .done = done,
                        .service_ms = 50,
                        .running = running};
    return cheaper_decide(c, st, &s);
}

Test(cheaper, queue_need_is_littles_law_plus_the_backlog_over_the_target)
{
    cheaper_conf c = queue_conf();
    /* 300/s x 50 ms = 15 threads busy; 2 a process. */
    cr_assert_float_eq(cheaper_queue_need(&c, 300, 50, 0.1, 0, 0), 7.5, 1e-9);
    /* 20 waiting x 50 ms within 100 ms: 10 threads more. */
    cr_assert_float_eq(cheaper_queue_need(&c, 300, 50, 0.1, 20, 0), 12.5, 1e-9);
    /* Computing: the cores the rate keeps busy (60/s x 15 ms = 0.9) at 75%,
     * never more than the cores whatever waits. */
    cr_assert_float_eq(cheaper_queue_need(&c, 60, 20, 15, 0, 1), 1.2, 1e-9);
    cr_assert_float_eq(cheaper_queue_need(&c, 300, 20, 15, 50, 1), 2, 1e-9);
    /* Nothing measured yet: a process per `threads` waiting. */
    cr_assert_float_eq(cheaper_queue_need(&c, 0, -1, 0, 6, 0), 3, 1e-9);
}

Test(cheaper, queue_adds_the_whole_shortfall_within_a_tick_of_a_step)
{
    cheaper_conf c = queue_conf();
    cheaper_state st;
    cheaper_state_init(&st, &c);
    cr_assert_eq(tick(&c, &st, 1, 20, 1, 0), 0, "the first sample only sets the baseline");
    for (int i = 0; i < 30; i++) cr_assert_eq(tick(&c, &st, 1, 20, 1, 0), 0, "20/s fits one");
    /* 300/s arrive: the two threads finish 4 a tick, 26 queue. */
    int d = tick(&c, &st, 1, 40, 2, 26);
    cr_assert_geq(d, 6, "one tick after the step: %d", d);
    cr_assert_eq(cheaper_decide(&c, &st,
                                &(cheaper_sample){.active = 8,
                                                  .busy = 8,
                                                  .backlog = 30,
                                                  .queue_ms = 300,
                                                  .dt = 0.1,
                                                  .done = 30,
                                                  .service_ms = 50,
                                                  .running = 16}),
                 0, "clamped to processes");
}

Test(cheaper, queue_adds_nothing_while_nothing_waits)
{
    cheaper_conf c = queue_conf();
    cheaper_state st;
    cheaper_state_init(&st, &c);
    tick(&c, &st, 2, 60, 3, 0);
    /* The rate says 5 processes, but no request waits: the threads cope. */
    for (int i = 0; i < 10; i++) cr_assert_eq(tick(&c, &st, 2, 200, 4, 0), 0);
    cr_assert_gt(tick(&c, &st, 2, 200, 4, 3), 0, "one waits: now it adds");
}

Test(cheaper, queue_removes_slowly_after_the_load_falls_and_not_below_the_need)
{
    cheaper_conf c = queue_conf();
    cheaper_state st;
    cheaper_state_init(&st, &c);
    tick(&c, &st, 8, 300, 15, 0);
    for (int i = 0; i < 20; i++) tick(&c, &st, 8, 300, 15, 0);
    /* 300 -> 20/s: nothing goes within the hold, then one at a time. */
    int active = 8, first = -1, last = -1;
    for (int i = 0; i < 100; i++) {
        int d = tick(&c, &st, active, 20, 1, 0);
        cr_assert_geq(d, -1);
        cr_assert_leq(d, 0);
        if (d < 0) {
            active--;
            if (first < 0) first = i;
            last = i;
        }
    }
    cr_assert_eq(active, 1, "down to the one 20/s needs");
    cr_assert_geq(first, 5, "held for Q_HOLD_S after the rate fell: %d", first);
    cr_assert_geq(last - first, 6 * 2, "at most one every 250 ms: %d..%d", first, last);
    /* At 100/s (2.5 processes) it keeps 3. */
    cheaper_state_init(&st, &c);
    active = 8;
    for (int i = 0; i < 100; i++) active += tick(&c, &st, active, 100, 5, 0);
    cr_assert_eq(active, 3);
}

Test(cheaper, queue_keeps_a_computing_app_within_the_cores)
{
    cheaper_conf c = queue_conf();
    c.ncpu = 2;
    cheaper_state st;
    cheaper_state_init(&st, &c);
    /* 15 ms of CPU a request, each busy process on a core, requests
     * waiting: a waiting app would get 8 processes, this one gets 2. */
    int active = 1;
    cheaper_sample s = {.busy = 1, .running = 2, .dt = 0, .service_ms = 30};
    for (int i = 0; i < 50; i++) {
        s.active = active;
        s.busy = active;
        s.running = 2 * active;
        s.backlog = 20;
        s.queue_ms = 200;
        s.done = 6 * active;
        s.cpu = 0.9 * active;
        int d = cheaper_decide(&c, &st, &s);
        s.dt = 0.1;
        active += d;
        cr_assert_leq(active, 2, "tick %d: %d processes", i, active);
    }
    cr_assert_eq(active, 2);
    cr_assert(st.cpu_bound);
    /* The cores full with 2 workers of a 4-core share: none added. */
    c.ncpu = 4;
    st.cpu_cores = 3.8;
    s.cpu = 3.8;
    s.active = s.busy = 2;
    s.running = 4;
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
}

Test(cheaper, queue_tells_a_waiting_app_from_a_computing_one)
{
    cheaper_conf c = queue_conf();
    cheaper_state st;
    cheaper_state_init(&st, &c);
    /* Two threads of one process waiting 50 ms on I/O, 0.1 ms CPU. */
    tick(&c, &st, 1, 40, 2, 0);
    tick(&c, &st, 1, 40, 2, 0);
    cr_assert_not(st.cpu_bound);
    /* Two threads sharing one core (the GIL): 20 ms handlers, 10 ms CPU
     * each: computing, though CPU is only half the handler time. */
    cheaper_state_init(&st, &c);
    cheaper_sample s = {.active = 1, .busy = 1, .running = 2, .service_ms = 20, .done = 10};
    s.cpu = 1.0;
    cheaper_decide(&c, &st, &s);
    s.dt = 0.1;
    cheaper_decide(&c, &st, &s);
    cr_assert(st.cpu_bound, "cpu %.1f ms of %.1f", st.cpu_ms, st.svc_ms);
    /* A busy machine: 6 ms of CPU a request, but 90 ms of the 100 ms
     * handler spent ready to run, waiting for a core: computing, and kept
     * within the cores whatever waits. */
    cheaper_state_init(&st, &c);
    s = (cheaper_sample){.active = 1,
                         .busy = 1,
                         .running = 1,
                         .service_ms = 100,
                         .done = 10,
                         .cpu = 0.6,
                         .runq = 9.0,
                         .backlog = 20,
                         .queue_ms = 300};
    cheaper_decide(&c, &st, &s);
    s.dt = 0.1;
    cr_assert_leq(cheaper_decide(&c, &st, &s), 1, "at most the 2 cores");
    cr_assert(st.cpu_bound, "want %.1f ms of %.1f", st.want_ms, st.svc_ms);
    /* The same 100 ms handlers on two threads with 6 ms of CPU each and no
     * run-queue wait: they wait on I/O. */
    cheaper_state_init(&st, &c);
    s.running = 2;
    s.done = 2;
    s.cpu = 0.12;
    s.runq = 0;
    s.dt = 0;
    cheaper_decide(&c, &st, &s);
    s.dt = 0.1;
    cr_assert_geq(cheaper_decide(&c, &st, &s), 3);
    cr_assert_not(st.cpu_bound);
}

Test(cheaper, queue_waits_a_few_ticks_before_adding_blind)
{
    cheaper_conf c = queue_conf();
    cheaper_state st;
    cheaper_state_init(&st, &c);
    /* A burst whose first requests have not finished: no handler time yet. */
    cheaper_sample s = {.active = 1, .busy = 1, .running = 2, .backlog = 6, .queue_ms = -1};
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0, "baseline");
    s.dt = 0.1;
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
    cr_assert_eq(cheaper_decide(&c, &st, &s), 2, "300 ms waiting with none done: 6 / 2 threads");
}

Test(cheaper, queue_counts_the_wait_for_the_gil_as_a_wait_for_a_core)
{
    cheaper_conf c = queue_conf();
    c.ncpu = 4;
    cheaper_state st;
    cheaper_state_init(&st, &c);
    /* One process, its 2 threads sharing its core (GIL): 100/s finish at
     * 9.5 ms CPU each, the core 95% busy, handlers 70 ms (60 of them waiting
     * for the GIL), nothing in the queue. Computing (a core per process),
     * and that wait is over half the target: a second process, not the 3
     * that 100/s x 70 ms over 2 threads would ask for. */
    cheaper_sample s = {.active = 1,
                        .busy = 1,
                        .running = 2,
                        .service_ms = 70,
                        .done = 10,
                        .cpu = 0.95,
                        .queue_ms = 0};
    int d = 0;
    for (int i = 0; i < 20 && d == 0; i++) {
        d = cheaper_decide(&c, &st, &s);
        s.dt = 0.1;
    }
    cr_assert(st.cpu_bound);
    cr_assert_eq(d, 1, "a second process for a second core");
    /* Two processes, 1.2 cores in use, handlers 20 ms: kept, not a third. */
    s.active = s.busy = 2;
    s.running = 4;
    s.cpu = 1.2;
    s.done = 13;
    s.service_ms = 20;
    for (int i = 0; i < 30; i++) cr_assert_eq(cheaper_decide(&c, &st, &s), 0, "tick %d", i);
}

Test(cheaper, queue_says_how_many_threads_an_app_waiting_past_processes_needs)
{
    cheaper_conf c = queue_conf(); /* max 8 processes of 2 threads */
    cheaper_state st;
    cheaper_state_init(&st, &c);
    for (int i = 0; i < 20; i++) tick(&c, &st, 8, 400, 16, 0);
    cr_assert_eq(st.threads_hint, 0, "nothing waits");
    /* 400/s x 50 ms = 20 threads, 5 waiting x 50 / 100 = 2.5 more: 22.5
     * threads over 8 processes: 3 each. */
    cr_assert_eq(tick(&c, &st, 8, 400, 16, 5), 0, "already at processes");
    cr_assert_gt(st.rate, 0);
    double t = cheaper_queue_need(&c, st.rate, st.svc_ms, st.cpu_ms, 5, 0) * 2 / 8;
    cr_assert_eq(st.threads_hint, (int)t + ((int)t < t), "%d for %.2f", st.threads_hint, t);
    cr_assert_geq(st.threads_hint, 3);
    /* A computing app gets no such hint: threads would share the cores. */
    cheaper_state_init(&st, &c);
    cheaper_sample s = {.active = 2,
                        .busy = 2,
                        .running = 4,
                        .service_ms = 30,
                        .done = 6,
                        .cpu = 1.8,
                        .backlog = 20,
                        .queue_ms = 300};
    for (int i = 0; i < 10; i++) {
        cheaper_decide(&c, &st, &s);
        s.dt = 0.1;
    }
    cr_assert(st.cpu_bound);
    cr_assert_eq(st.threads_hint, 0);
}

/* processes = 2 of 8 threads, cheaper = 1, cheaper-threads-initial = 1. */
static cheaper_conf threads_conf(void)
{
    cheaper_conf c = queue_conf();
    c.min = 1;
    c.max = 2;
    c.threads = 8;
    c.threads_initial = 1;
    return c;
}

Test(cheaper, queue_threads_start_at_threads_initial_default_threads)
{
    cheaper_conf c = threads_conf();
    cheaper_state st;
    cheaper_state_init(&st, &c);
    cr_assert_eq(st.threads_now, 1);
    c.threads_initial = 0; /* unset */
    cheaper_state_init(&st, &c);
    cr_assert_eq(st.threads_now, 8);
}

Test(cheaper, queue_grows_threads_before_processes_for_waiting_handlers)
{
    cheaper_conf c = threads_conf();
    cheaper_state st;
    cheaper_state_init(&st, &c);
    tick(&c, &st, 1, 10, 1, 0);
    for (int i = 0; i < 10; i++) cr_assert_eq(tick(&c, &st, 1, 10, 1, 0), 0, "10/s fits one");
    cr_assert_eq(st.threads_now, 1, "nothing waits: threads stay");
    /* 60/s x 50 ms = 3 threads busy, requests queue behind the one thread:
     * threads rise, no process is added. */
    int d = tick(&c, &st, 1, 60, 1, 4);
    cr_assert_eq(d, 0, "threads first, not a process: %d", d);
    cr_assert_gt(st.threads_now, 1);
    cr_assert_leq(st.threads_now, 8);
    cr_assert_not(st.cpu_bound);
    /* 300/s: 15 threads busy, more than a worker's 8: threads to the most,
     * then the second process. */
    for (int i = 0; i < 3 && d == 0; i++) d = tick(&c, &st, 1, 300, st.threads_now, 20);
    cr_assert_eq(st.threads_now, 8);
    cr_assert_eq(d, 1, "then processes: %d", d);
}

Test(cheaper, queue_gives_back_processes_then_threads_when_idle)
{
    cheaper_conf c = threads_conf();
    cheaper_state st;
    cheaper_state_init(&st, &c);
    st.threads_now = 8;
    int active = 2, first_thread_drop = -1, last_rm = -1;
    tick(&c, &st, active, 300, 16, 0);
    for (int i = 0; i < 20; i++) tick(&c, &st, active, 300, 16, 20);
    for (int i = 0; i < 200; i++) {
        int before = st.threads_now;
        int d = tick(&c, &st, active, 2, 0, 0);
        if (d < 0) {
            cr_assert_eq(st.threads_now, 8, "the process goes before any thread");
            active--;
            last_rm = i;
        }
        if (st.threads_now < before) {
            cr_assert_eq(before - st.threads_now, 1, "one thread a step");
            if (first_thread_drop < 0) first_thread_drop = i;
            cr_assert_geq(i - last_rm, 2, "at most one step every 250 ms");
            last_rm = i;
        }
    }
    cr_assert_eq(active, 1);
    cr_assert_geq(first_thread_drop, 5, "held for Q_HOLD_S first");
    cr_assert_eq(st.threads_now, 1, "2/s x 50 ms needs one thread");
}

Test(cheaper, queue_keeps_threads_and_scales_processes_for_computing_handlers)
{
    cheaper_conf c = threads_conf();
    c.threads_initial = 2;
    cheaper_state st;
    cheaper_state_init(&st, &c);
    /* 15 ms of CPU in 30 ms handlers, requests waiting: computing. */
    int active = 1;
    cheaper_sample s = {.dt = 0, .service_ms = 30};
    for (int i = 0; i < 20; i++) {
        s.active = s.busy = active;
        s.running = 2 * active;
        s.backlog = 20;
        s.queue_ms = 200;
        s.done = 6 * active;
        s.cpu = 0.9 * active;
        active += cheaper_decide(&c, &st, &s);
        s.dt = 0.1;
        cr_assert_eq(st.threads_now, 2, "tick %d: threads stay as they are", i);
    }
    cr_assert(st.cpu_bound);
    cr_assert_eq(active, 2, "processes, up to the cores");
    /* Idle again: computing handlers keep their threads too. */
    for (int i = 0; i < 100; i++) {
        s.active = s.busy = active;
        s.running = 0;
        s.backlog = 0;
        s.queue_ms = 0;
        s.done = 1;
        s.cpu = 0.15; /* still 15 ms of CPU a request */
        active += cheaper_decide(&c, &st, &s);
    }
    cr_assert_eq(active, 1);
    cr_assert_eq(st.threads_now, 2);
}
