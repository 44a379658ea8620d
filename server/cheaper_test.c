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

Test(cheaper, queue_adds_for_the_waiting_and_stops_at_full_cores)
{
    cheaper_conf c = conf(CHEAPER_QUEUE);
    c.max = 16;
    c.queue_target_ms = 50;
    c.threads = 4;
    c.ncpu = 8;
    cheaper_state st;
    cheaper_state_init(&st, &c);
    /* I/O-bound: waits over target, little CPU: a process per 4 waiting. */
    cheaper_sample s = {
        .active = 2, .busy = 2, .busy_frac = 1, .backlog = 10, .queue_ms = 200, .cpu = 0.3};
    cr_assert_eq(cheaper_decide(&c, &st, &s), 3);
    /* Under target: nothing, even with some waiting. */
    s.queue_ms = 20;
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
    /* CPU-bound and the cores full: adding processes cannot help. */
    s = (cheaper_sample){
        .active = 8, .busy = 8, .busy_frac = 1, .backlog = 30, .queue_ms = 500, .cpu = 7.8};
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
    /* CPU-bound (a core per busy worker) below the core count: up to it. */
    s = (cheaper_sample){
        .active = 6, .busy = 6, .busy_frac = 1, .backlog = 40, .queue_ms = 500, .cpu = 5.5};
    cr_assert_eq(cheaper_decide(&c, &st, &s), 2);
    /* No wait measured yet but requests waiting: add. */
    s = (cheaper_sample){.active = 1, .busy = 1, .busy_frac = 1, .backlog = 2, .queue_ms = -1};
    cr_assert_eq(cheaper_decide(&c, &st, &s), 1);
}

Test(cheaper, queue_removes_when_calm_and_the_rest_fit)
{
    cheaper_conf c = conf(CHEAPER_QUEUE);
    c.queue_target_ms = 40;
    c.threads = 2;
    c.ncpu = 4;
    cheaper_state st;
    cheaper_state_init(&st, &c);
    cheaper_sample s = {.active = 3, .busy = 1, .busy_frac = 0.1, .queue_ms = 1};
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
    cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
    cr_assert_eq(cheaper_decide(&c, &st, &s), -1, "calm for cheaper-overload seconds");
    /* Busy threads would not fit at half load in one worker fewer: keep. */
    s.busy_frac = 0.6;
    for (int i = 0; i < 5; i++) cr_assert_eq(cheaper_decide(&c, &st, &s), 0);
}
