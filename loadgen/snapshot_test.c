#include "loadgen/snapshot.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/report.h"

Test(snapshot, one_percentile_table_in_locusts_order)
{
    static const double want[] = {0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1};
    cr_assert_eq(RUNNER_NPCT, 11);
    for (int k = 0; k < RUNNER_NPCT; k++) {
        cr_assert_float_eq(runner_pcts[k].fraction, want[k], 1e-12, "%d", k);
        /* the label is the fraction in percent, as Locust's csv header writes it */
        char label[40];
        snprintf(label, sizeof(label), "%.10g%%", runner_pcts[k].fraction * 100);
        cr_assert_str_eq(runner_pcts[k].label, label);
    }
    cr_assert_str_eq(runner_pcts[RUNNER_P99].label, "99%");
    cr_assert_str_eq(runner_pcts[RUNNER_P999].label, "99.9%");
    cr_assert_str_eq(runner_pcts[RUNNER_P100].label, "100%");
}

static lg_estat row(uint64_t n, int64_t step_us)
{
    lg_estat e = {.lat = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, LG_HIST_SIG),
                  .svc = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, LG_HIST_SIG)};
    cr_assert(e.lat && e.svc);
    for (uint64_t i = 1; i <= n; i++) {
        hist_record(e.lat, (int64_t)i * step_us);
        hist_record(e.svc, (int64_t)i * step_us / 2);
    }
    e.nreq = n;
    e.nfail = n / 10;
    e.bytes = n * 100;
    e.late = 3;
    return e;
}

Test(snapshot, fill_computes_the_whole_run_figures)
{
    lg_estat e = row(1000, 1000); /* 1 ms ... 1000 ms */
    runner_entry o = {0};
    lg_snapshot_fill(&o, &e, 4.0);
    cr_assert_eq(o.num_requests, 1000);
    cr_assert_eq(o.num_failures, 100);
    cr_assert_float_eq(o.avg_ms, 500.5, 0.5);
    cr_assert_float_eq(o.min_ms, 1.0, 0.01);
    cr_assert_float_eq(o.max_ms, 1000.0, 1.0);
    cr_assert_float_eq(o.median_ms, 500.0, 1.0);
    cr_assert_float_eq(o.avg_content_length, 100.0, 1e-9);
    cr_assert_float_eq(o.total_rps, 250.0, 1e-9);
    cr_assert_float_eq(o.total_fail_per_sec, 25.0, 1e-9);
    /* 3 significant digits: within 0.1 % */
    cr_assert_float_eq(o.pct_ms[RUNNER_P66], 660.0, 1.0);
    cr_assert_float_eq(o.pct_ms[RUNNER_P99], 990.0, 1.0);
    cr_assert_float_eq(o.pct_ms[RUNNER_P100], 1000.0, 1.0);
    cr_assert_float_eq(o.service_pct_ms[RUNNER_P99], 495.0, 0.5);
    cr_assert_float_eq(o.service_avg_ms, 250.25, 0.3);
    cr_assert_eq(o.not_on_time, 3);
    hist_free(e.lat);
    hist_free(e.svc);
}

Test(snapshot, a_row_without_requests_gets_its_count_only)
{
    lg_estat e = row(0, 1);
    runner_entry o = {0};
    lg_snapshot_fill(&o, &e, 1.0);
    cr_assert_eq(o.num_requests, 0);
    cr_assert_eq(o.avg_ms, 0);
    cr_assert_eq(o.pct_ms[RUNNER_P50], 0);
    hist_free(e.lat);
    hist_free(e.svc);
}

Test(snapshot, window_divides_by_the_filled_seconds)
{
    hist *w = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, 2);
    for (int i = 1; i <= 100; i++) hist_record(w, i * 1000);
    runner_entry o = {0};
    lg_snapshot_window(&o, 100, 5, w, 4);
    cr_assert_float_eq(o.current_rps, 25.0, 1e-9);
    cr_assert_float_eq(o.current_fail_per_sec, 1.25, 1e-9);
    cr_assert_float_eq(o.current_pct_ms[RUNNER_P95], 95.0, 1.0); /* 2 digits */
    lg_snapshot_window(&o, 7, 0, w, 0); /* nothing closed yet: one second */
    cr_assert_float_eq(o.current_rps, 7.0, 1e-9);
    hist_free(w);
}

Test(snapshot, sort_and_history_point)
{
    runner_snapshot *s = lg_snapshot_alloc(3, 2);
    cr_assert(s);
    const char *names[][2] = {{"POST", "/b"}, {"GET", "/b"}, {"GET", "/a"}};
    for (int i = 0; i < 3; i++) {
        runner_entry *e = &s->entries[s->nentries++];
        strcpy(e->method, names[i][0]);
        strcpy(e->name, names[i][1]);
    }
    s->errors[0].occurrences = 2;
    s->errors[1].occurrences = 9;
    s->nerrors = 2;
    lg_snapshot_sort(s);
    cr_assert_str_eq(s->entries[0].name, "/a");
    cr_assert_str_eq(s->entries[1].method, "GET");
    cr_assert_str_eq(s->entries[2].method, "POST");
    cr_assert_eq(s->errors[0].occurrences, 9);
    s->user_count = 4;
    s->total.current_rps = 12.5;
    s->total.current_pct_ms[RUNNER_P50] = 1;
    s->total.current_pct_ms[RUNNER_P95] = 2;
    s->total.current_pct_ms[RUNNER_P99] = 3;
    s->total.num_requests = 40;
    runner_history_point p = lg_snapshot_point(s, 1700000000);
    cr_assert_eq(p.time, 1700000000);
    cr_assert_eq(p.user_count, 4);
    cr_assert_float_eq(p.current_rps, 12.5, 1e-12);
    cr_assert(p.current_p50_ms == 1 && p.current_p95_ms == 2 && p.current_p99_ms == 3);
    cr_assert_eq(p.total_requests, 40);
    runner_snapshot_free(s);
}

/* report.c writes the per-class split and the spectrum from the snapshot it
 * is given, and leaves them out of a snapshot that does not carry them. */
Test(snapshot, json_extras_come_from_a_full_snapshot)
{
    runner_snapshot *s = lg_snapshot_alloc(0, 0);
    cr_assert(s);
    snprintf(s->total.name, sizeof(s->total.name), "Aggregated");
    buf b = BUF_INIT;
    cr_assert_eq(report_json(&b, s, "sc.ini", 2), 0);
    cr_assert_null(strstr(b.data, "user_classes"), "%s", b.data);
    cr_assert_null(strstr(b.data, "spectrum_ms"), "%s", b.data);
    cr_assert(strstr(b.data, "\"percentiles_ms\":{\"50\":0,\"66\":0,"), "%s", b.data);
    static const char *cls[] = {"A"};
    int users[2] = {3, 5};
    s->nclasses = 1;
    s->class_names = malloc(sizeof(cls));
    memcpy(s->class_names, cls, sizeof(cls));
    s->class_users = malloc(sizeof(users));
    memcpy(s->class_users, users, sizeof(users));
    s->class_peak = s->class_users + 1;
    s->class_weight = calloc(1, sizeof(double));
    s->class_fixed = calloc(2, sizeof(int));
    s->class_weight[0] = 2.5;
    s->class_fixed[0] = 1;
    s->class_target = s->class_fixed + 1;
    s->class_target[0] = 4;
    for (int i = 0; i < RUNNER_NSPECTRUM; i++) s->spectrum_ms[i] = s->service_spectrum_ms[i] = i;
    s->full = 1;
    buf_reset(&b);
    cr_assert_eq(report_json(&b, s, "sc.ini", 2), 0);
    cr_assert(strstr(b.data, ",\"user_classes\":[{\"name\":\"A\",\"weight\":2.5,\"fixed_count\":1,"
                             "\"target_users\":4,\"users\":3,\"peak_users\":5}]"),
              "%s", b.data);
    cr_assert(strstr(b.data, "\"spectrum_ms\":[[0,0],[10,1],"), "%s", b.data);
    cr_assert(strstr(b.data, "[99.999,14],[100,15]]"), "%s", b.data);
    buf_free(&b);
    runner_snapshot_free(s);
}
