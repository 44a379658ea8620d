#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "loadgen/advise.h"

static advise_result R(int p, int t, double rps)
{
    advise_result r = {.processes = p, .threads = t, .rps = rps, .runs = 1, .p99_ms = 10};
    r.wall_ms_per_req = rps > 0 ? p * t * 1000.0 / rps : 0;
    return r;
}

static int parse(advise_opts *o, char *err, int argc, char **argv)
{
    return advise_parse(argc, argv, o, err, 256);
}

Test(advise, parse_options_and_command)
{
    advise_opts o;
    char err[256];
    char *argv[] = {"advise", "--url",    "/x", "--p99",   "250",         "--budget", "2m",
                    "--json", "out.json", "--", "aiserve", "--wsgi-file", "app.py"};
    cr_assert_eq(parse(&o, err, 13, argv), 0, "%s", err);
    cr_assert_str_eq(o.path, "/x");
    cr_assert_float_eq(o.p99_ms, 250, 1e-9);
    cr_assert_float_eq(o.budget_s, 120, 1e-9);
    cr_assert_str_eq(o.json, "out.json");
    cr_assert_eq(o.ncmd, 3);
    cr_assert_str_eq(o.cmd[0], "aiserve");
    cr_assert_str_eq(o.cmd[2], "app.py");
}

Test(advise, parse_errors_name_the_problem)
{
    advise_opts o;
    char err[256];
    char *a1[] = {"advise", "--budget", "soon", "--", "x"};
    cr_assert_neq(parse(&o, err, 5, a1), 0);
    cr_assert(strstr(err, "--budget"), "%s", err);
    char *a2[] = {"advise", "--url", "/"};
    cr_assert_neq(parse(&o, err, 3, a2), 0);
    cr_assert(strstr(err, "no server command"), "%s", err);
    char *a3[] = {"advise", "--url", "x", "--", "srv"};
    cr_assert_neq(parse(&o, err, 5, a3), 0);
    cr_assert(strstr(err, "'/'"), "%s", err);
    char *a4[] = {"advise", "--bogus", "1", "--", "srv"};
    cr_assert_neq(parse(&o, err, 5, a4), 0);
    cr_assert(strstr(err, "--bogus"), "%s", err);
    char *a5[] = {"advise", "--p99", "-3", "--", "srv"};
    cr_assert_neq(parse(&o, err, 5, a5), 0);
    char *a6[] = {"advise", "--max-threads=0", "--", "srv"};
    cr_assert_neq(parse(&o, err, 4, a6), 0);
}

Test(advise, search_starts_with_the_three_probes)
{
    advise_opts o = {.max_threads = 64};
    advise_result res[8] = {0};
    int p, t;
    cr_assert(advise_next(res, 0, 2, &o, &p, &t));
    cr_assert(p == 1 && t == 1);
    res[0] = R(1, 1, 100);
    cr_assert(advise_next(res, 1, 2, &o, &p, &t));
    cr_assert(p == 1 && t == 2);
    res[1] = R(1, 2, 100);
    cr_assert(advise_next(res, 2, 2, &o, &p, &t));
    cr_assert(p == 2 && t == 1);
}

Test(advise, search_stops_when_the_first_config_fails)
{
    advise_opts o = {.max_threads = 64};
    advise_result res[1] = {R(1, 1, 0)};
    res[0].failed_start = 1;
    int p, t;
    cr_assert_not(advise_next(res, 1, 2, &o, &p, &t));
}

Test(advise, io_bound_doubles_threads_until_no_gain)
{
    advise_opts o = {.max_threads = 64};
    advise_result res[16] = {R(1, 1, 10), R(1, 2, 20), R(2, 1, 20)};
    size_t n = 3;
    int p, t;
    double rates[] = {40, 80, 82}; /* 1x4, 1x8, 1x16: no gain at 16 */
    for (int k = 0; k < 3; k++) {
        cr_assert(advise_next(res, n, 2, &o, &p, &t));
        cr_assert_eq(p, 1);
        cr_assert_eq(t, 4 << k);
        res[n++] = R(p, t, rates[k]);
    }
    /* then a second process at the best thread count */
    cr_assert(advise_next(res, n, 2, &o, &p, &t));
    cr_assert(p == 2 && t == 16, "%d x %d", p, t);
    res[n++] = R(2, 16, 83);
    cr_assert_not(advise_next(res, n, 2, &o, &p, &t));
    int best = advise_choose(res, n, 0, ADVISE_NOISE, 2);
    /* 1x8, 1x16 and 2x16 are within noise: the fewest slots wins */
    cr_assert_eq(res[best].processes, 1);
    cr_assert_eq(res[best].threads, 8);
}

Test(advise, cpu_bound_adds_processes_up_to_the_cores)
{
    advise_opts o = {.max_threads = 64};
    advise_result res[16] = {R(1, 1, 100), R(1, 2, 101), R(2, 1, 195)};
    size_t n = 3;
    int p, t;
    cr_assert(advise_next(res, n, 2, &o, &p, &t));
    cr_assert(p == 3 && t == 1, "%d x %d", p, t);
    res[n++] = R(3, 1, 196);
    /* no gain from the third: try a second thread at the best process count */
    cr_assert(advise_next(res, n, 2, &o, &p, &t));
    cr_assert(p == 3 && t == 2, "%d x %d", p, t);
    res[n++] = R(3, 2, 150);
    cr_assert_not(advise_next(res, n, 2, &o, &p, &t));
}

Test(advise, max_processes_bounds_the_search)
{
    advise_opts o = {.max_threads = 64, .max_processes = 2};
    advise_result res[16] = {R(1, 1, 100), R(1, 2, 101), R(2, 1, 195)};
    int p, t;
    cr_assert(advise_next(res, 3, 2, &o, &p, &t));
    cr_assert(p == 2 && t == 2, "%d x %d", p, t);
}

Test(advise, choose_prefers_processes_for_cpu_bound_ties)
{
    advise_result res[4] = {R(1, 1, 100), R(1, 2, 99), R(2, 1, 104), R(3, 1, 103)};
    for (int i = 0; i < 4; i++) res[i].cpu_ms_per_req = res[i].wall_ms_per_req * 0.95;
    int best = advise_choose(res, 4, 0, ADVISE_NOISE, 2);
    cr_assert_eq(res[best].processes, 2);
    cr_assert_eq(res[best].threads, 1);
}

Test(advise, choose_takes_the_clear_winner)
{
    advise_result res[3] = {R(1, 1, 100), R(1, 2, 101), R(2, 1, 190)};
    cr_assert_eq(advise_choose(res, 3, 0, ADVISE_NOISE, 2), 2);
}

Test(advise, choose_respects_the_p99_bound_and_failures)
{
    advise_result res[3] = {R(1, 1, 100), R(1, 4, 300), R(1, 8, 500)};
    res[1].p99_ms = 50;
    res[2].p99_ms = 900;
    cr_assert_eq(advise_choose(res, 3, 100, ADVISE_NOISE, 2), 1);
    res[1].requests = 1000;
    res[1].failures = 50; /* 5 % failed: not eligible */
    cr_assert_eq(advise_choose(res, 3, 100, ADVISE_NOISE, 2), 0);
    /* no configuration meets the bound: the fastest */
    cr_assert_eq(advise_choose(res, 3, 1, ADVISE_NOISE, 2), 2);
    cr_assert_eq(advise_choose(res, 0, 0, ADVISE_NOISE, 2), -1);
}

Test(advise, close_calls_best_first)
{
    advise_result res[4] = {R(1, 1, 100), R(1, 2, 195), R(2, 1, 200), R(3, 1, 150)};
    int out[3];
    size_t k = advise_close_calls(res, 4, 0, ADVISE_NOISE, out, 3);
    cr_assert_eq(k, 2);
    cr_assert_eq(out[0], 2);
    cr_assert_eq(out[1], 1);
}

Test(advise, gains)
{
    advise_result res[3] = {R(1, 1, 100), R(1, 2, 150), R(2, 1, 190)};
    cr_assert_float_eq(advise_thread_gain(res, 3), 1.5, 1e-9);
    cr_assert_float_eq(advise_process_gain(res, 3), 1.9, 1e-9);
    cr_assert_float_eq(advise_thread_gain(res, 1), 0, 1e-9);
}

Test(advise, proc_stat_parsing)
{
    unsigned long long ticks;
    pid_t g;
    const char *line = "4242 (my (odd) name) S 1 4240 4240 0 -1 4194560 100 0 0 0 "
                       "250 31 0 0 20 0 3 0 1000 0 0";
    cr_assert_eq(advise_parse_stat(line, &ticks, &g), 0);
    cr_assert_eq(ticks, 281);
    cr_assert_eq(g, 4240);
    cr_assert_eq(advise_parse_stat("4242 (x S 1", &ticks, &g), -1);
    cr_assert_eq(advise_parse_stat("4242 (x) S 1 2", &ticks, &g), -1);
}

Test(advise, pss_and_schedstat_parsing)
{
    cr_assert_eq(advise_parse_pss("Rss:  100 kB\nPss:   2048 kB\nPss_Anon: 5 kB\n"), 2048);
    cr_assert_eq(advise_parse_pss("Rss: 1 kB\n"), -1);
    cr_assert_eq(advise_parse_schedstat("123456 7890 12\n"), 7890);
    cr_assert_eq(advise_parse_schedstat("junk"), -1);
}

Test(advise, tree_usage_sees_this_process_group)
{
    double cpu = -1, pss = -1, runq = -1;
    int n = advise_tree_usage(getpgrp(), &cpu, &runq, &pss);
    cr_assert_geq(n, 1);
    cr_assert_geq(cpu, 0);
    cr_assert_geq(runq, 0);
    cr_assert_gt(pss, 0);
}

Test(advise, json_has_the_documented_shape)
{
    advise_result res[2] = {R(1, 1, 100), R(2, 1, 190)};
    res[1].pss_mib = 12.5;
    buf b = BUF_INIT;
    advise_json(&b, res, 2, 1, 0.1, "why \"so\"");
    cr_assert(strstr(b.data, "{\"recommendation\":{\"processes\":2,\"threads\":1,"), "%s", b.data);
    cr_assert(strstr(b.data, "\"kind\":\"processes\""), "%s", b.data);
    cr_assert(strstr(b.data, "\"reasoning\":\"why \\\"so\\\"\""), "%s", b.data);
    cr_assert(strstr(b.data, "\"results\":[{\"processes\":1,"), "%s", b.data);
    cr_assert(strstr(b.data, "\"pss_mib\":12.50"), "%s", b.data);
    buf_free(&b);
    advise_json(&b, res, 0, -1, 0.1, "");
    cr_assert(strstr(b.data, "{\"recommendation\":null"), "%s", b.data);
    buf_free(&b);
}

Test(advise, html_escapes_and_charts)
{
    advise_result res[2] = {R(1, 1, 100), R(2, 1, 190)};
    buf b = BUF_INIT;
    advise_html(&b, res, 2, 1, "a <b> & c", "[uwsgi]\n");
    cr_assert(strstr(b.data, "a &lt;b&gt; &amp; c"));
    cr_assert(strstr(b.data, "<svg"));
    cr_assert(strstr(b.data, "class=\"best\""));
    buf_free(&b);
}

Test(advise, batch_search_after_processes)
{
    advise_opts o;
    char err[256];
    char *argv[] = {"advise", "--batch", "--", "aiserve"};
    cr_assert_eq(advise_parse(4, argv, &o, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(o.batch, 1);
    cr_assert_str_eq(o.cmd[0], "aiserve");
    advise_result res[16] = {R(1, 1, 50), R(2, 1, 95)};
    size_t n = 2;
    int p, t, b, d;
    int sizes[] = {1, 4, 16};
    double rates[] = {60, 120, 110};
    for (int k = 0; k < 3; k++) {
        cr_assert(advise_next_batch(res, n, &p, &t, &b, &d));
        cr_assert(p == 2 && t == 1 && b == sizes[k] && d == 0, "%d %d %d %d", p, t, b, d);
        res[n] = R(p, t, rates[k]);
        res[n].batch = b;
        n++;
    }
    /* then delays at the best size (4) */
    cr_assert(advise_next_batch(res, n, &p, &t, &b, &d));
    cr_assert(b == 4 && d == 500, "%d %d", b, d);
    res[n] = R(p, t, 121);
    res[n].batch = 4;
    res[n].delay_us = 500;
    n++;
    cr_assert(advise_next_batch(res, n, &p, &t, &b, &d));
    cr_assert(b == 4 && d == 2000);
    res[n] = R(p, t, 122);
    res[n].batch = 4;
    res[n].delay_us = 2000;
    n++;
    cr_assert_not(advise_next_batch(res, n, &p, &t, &b, &d));
    /* 120, 121, 122 are equal within noise: the shortest delay wins */
    int best = advise_choose(res, n, 0, ADVISE_NOISE, 2);
    cr_assert_eq(res[best].batch, 4);
    cr_assert_eq(res[best].delay_us, 0);
    buf j = BUF_INIT;
    advise_json(&j, res, n, best, 0.1, "");
    cr_assert(strstr(j.data, "\"max_batch_size\":4,\"batch_delay_us\":0"), "%s", j.data);
    buf_free(&j);
}

Test(advise, cpu_share_prefers_server_timing)
{
    advise_result res[1] = {R(1, 1, 10)}; /* 100 ms of wall per request */
    res[0].cpu_ms_per_req = 5;
    res[0].runq_ms_per_req = 50;
    cr_assert_float_eq(advise_cpu_share(res, 1), 0.1, 1e-9); /* 5 of 100 - 50 */
    res[0].st_app_ms = 10;
    cr_assert_float_eq(advise_cpu_share(res, 1), 0.5, 1e-9); /* 5 of the app's 10 */
    res[0].cpu_ms_per_req = 20;
    cr_assert_float_eq(advise_cpu_share(res, 1), 1, 1e-9); /* capped */
    cr_assert_float_eq(advise_cpu_share(res, 0), -1, 1e-9);
}

Test(advise, machine_cpu_line)
{
    unsigned long long idle, total;
    cr_assert_eq(advise_parse_cpu_line("cpu  100 10 50 800 40 0 5 0 0 0\n", &idle, &total), 0);
    cr_assert_eq(idle, 840);
    cr_assert_eq(total, 1005);
    cr_assert_eq(advise_parse_cpu_line("cpu0 1 2 3 4\n", &idle, &total), -1);
    cr_assert_eq(advise_parse_cpu_line("cpu  1 2\n", &idle, &total), -1);
    cr_assert_eq(advise_machine_idle(&idle, &total), 0);
    cr_assert_gt(total, 0);
}

Test(advise, noise_band_widens_on_a_busy_machine)
{
    advise_result res[2] = {R(1, 1, 100), R(2, 1, 88)};
    res[0].cpu_ms_per_req = res[0].wall_ms_per_req; /* CPU-bound */
    res[0].idle_cores = 1.0;
    cr_assert_float_eq(advise_noise(res, 2, 2, 0), ADVISE_NOISE, 1e-9);
    cr_assert_float_eq(advise_noise(res, 2, 2, 1), 0.03, 1e-9);
    cr_assert_eq(advise_choose(res, 2, 0, advise_noise(res, 2, 2, 0), 2), 0);
    res[0].idle_cores = 0.1; /* no core was free: 12 % apart is within noise */
    cr_assert_float_eq(advise_noise(res, 2, 2, 1), 0.20, 1e-9);
    cr_assert_eq(advise_choose(res, 2, 0, advise_noise(res, 2, 2, 0), 2), 1);
    cr_assert_float_eq(advise_noise(res, 2, 1, 0), ADVISE_NOISE, 1e-9); /* one core */
}

Test(advise, cpu_bound_skips_the_mixed_check)
{
    advise_opts o = {.max_threads = 64};
    advise_result res[8] = {R(1, 1, 100), R(1, 2, 101), R(2, 1, 195), R(3, 1, 196)};
    for (int i = 0; i < 4; i++) res[i].cpu_ms_per_req = res[i].wall_ms_per_req; /* all CPU */
    int p, t;
    cr_assert_not(advise_next(res, 4, 2, &o, &p, &t), "%d x %d", p, t);
}
