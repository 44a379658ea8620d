#include "loadgen/py/pystats.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#define S(x) ((int64_t)(x)*1000000000)

Test(pystats, rows_appear_by_name_and_method_and_sort_in_the_snapshot)
{
    pystats *p = pystats_create();
    cr_assert(p);
    int b = pystats_entry(p, "GET", "/b");
    int a = pystats_entry(p, "POST", "/a");
    cr_assert_eq(pystats_entry(p, "GET", "/b"), b);
    cr_assert_neq(a, b);
    cr_assert_eq(pystats_entry(p, "GET", "/a"), 2);
    pystats_record(p, b, 2000, 1000, 10, NULL, S(0));
    pystats_record(p, a, 4000, 4000, 30, NULL, S(0));
    runner_snapshot *s = pystats_snapshot(p, S(1));
    cr_assert_eq(s->nentries, 2); /* GET /a has no request: left out */
    cr_assert_str_eq(s->entries[0].name, "/a");
    cr_assert_str_eq(s->entries[0].method, "POST");
    cr_assert_str_eq(s->entries[1].name, "/b");
    cr_assert_eq(s->total.num_requests, 2);
    cr_assert_float_eq(s->total.avg_content_length, 20.0, 1e-9);
    cr_assert_float_eq(s->entries[1].avg_ms, 2.0, 0.01);         /* from the intended start */
    cr_assert_float_eq(s->entries[1].service_avg_ms, 1.0, 0.01); /* from the actual start */
    cr_assert_str_eq(s->total.name, "Aggregated");
    runner_snapshot_free(s);
    pystats_free(p);
}

Test(pystats, failures_count_per_row_and_text)
{
    pystats *p = pystats_create();
    int e = pystats_entry(p, "GET", "/x");
    for (int i = 0; i < 3; i++) pystats_record(p, e, 1000, 1000, 0, "HTTPError('500')", S(0));
    pystats_record(p, e, 1000, 1000, 0, "CatchResponseError('no')", S(0));
    pystats_record(p, e, 1000, 1000, 0, NULL, S(0));
    runner_snapshot *s = pystats_snapshot(p, S(0));
    cr_assert_eq(s->entries[0].num_failures, 4);
    cr_assert_eq(s->nerrors, 2);
    cr_assert_str_eq(s->errors[0].error, "HTTPError('500')"); /* most frequent first */
    cr_assert_eq(s->errors[0].occurrences, 3);
    cr_assert_float_eq(s->fail_ratio, 0.8, 1e-9);
    runner_snapshot_free(s);
    pystats_reset(p, S(5));
    s = pystats_snapshot(p, S(5));
    cr_assert_eq(s->nentries, 0);
    cr_assert_eq(s->nerrors, 0);
    cr_assert_eq(s->total.num_requests, 0);
    runner_snapshot_free(s);
    pystats_free(p);
}

Test(pystats, current_rps_is_the_last_ten_seconds)
{
    pystats *p = pystats_create();
    int e = pystats_entry(p, "GET", "/");
    int64_t t0 = S(100);
    pystats_reset(p, t0);
    /* 20 s at 5 requests per second, then 5 s of nothing */
    for (int sec = 0; sec < 20; sec++)
        for (int k = 0; k < 5; k++) pystats_record(p, e, 1000, 1000, 0, NULL, t0 + S(sec) + k);
    runner_snapshot *s = pystats_snapshot(p, t0 + S(20));
    cr_assert_float_eq(s->total.current_rps, 5.0, 1e-9);
    cr_assert_float_eq(s->total.total_rps, 5.0, 0.01);
    runner_snapshot_free(s);
    s = pystats_snapshot(p, t0 + S(25));
    cr_assert_float_eq(s->total.current_rps, 2.5, 1e-9); /* 25 of the last 10 s */
    runner_snapshot_free(s);
    pystats_stop(p, t0 + S(20));
    s = pystats_snapshot(p, t0 + S(40));
    cr_assert_float_eq(s->elapsed_s, 20.0, 1e-6); /* frozen at the stop */
    runner_snapshot_free(s);
    pystats_free(p);
}

Test(pystats, exact_percentiles_of_a_known_distribution)
{
    pystats *p = pystats_create();
    int e = pystats_entry(p, "GET", "/");
    for (int i = 1; i <= 1000; i++) pystats_record(p, e, i * 1000, i * 1000, 0, NULL, S(0));
    runner_snapshot *s = pystats_snapshot(p, S(0));
    cr_assert_float_eq(s->entries[0].median_ms, 500.0, 0.5);
    cr_assert_float_eq(s->entries[0].pct_ms[RUNNER_P99], 990.0, 1.0); /* p99 */
    cr_assert_float_eq(s->entries[0].max_ms, 1000.0, 1.0);
    cr_assert_float_eq(s->entries[0].min_ms, 1.0, 0.01);
    runner_snapshot_free(s);
    pystats_free(p);
}

#include "loadgen/py/pyship.h"

static void count_json(void *ctx, const char *text, size_t len)
{
    (void)text;
    *(size_t *)ctx += len;
}

Test(pyship, a_stream_cut_anywhere_records_every_request_once)
{
    buf b = BUF_INIT;
    cr_assert_eq(pyship_put_entry(&b, 7, "GET", "/a"), 0);
    cr_assert_eq(pyship_put_record(&b, 7, 2000, 1000, 5, NULL), 0);
    cr_assert_eq(pyship_put_json(&b, "{\"users\":3}", 11), 0);
    cr_assert_eq(pyship_put_record(&b, 7, 3000, 3000, 5, "HTTPError('500')"), 0);
    for (size_t piece = 1; piece <= b.len; piece++) {
        pystats *p = pystats_create();
        pyship_peer pe = {0};
        size_t json = 0;
        for (size_t off = 0; off < b.len; off += piece) {
            size_t n = b.len - off < piece ? b.len - off : piece;
            cr_assert_eq(pyship_ingest(&pe, p, b.data + off, n, S(1), count_json, &json), 0);
        }
        runner_snapshot *s = pystats_snapshot(p, S(1));
        cr_assert_eq(s->nentries, 1);
        cr_assert_str_eq(s->entries[0].name, "/a");
        cr_assert_eq(s->entries[0].num_requests, 2);
        cr_assert_eq(s->entries[0].num_failures, 1);
        cr_assert_eq(json, 11);
        runner_snapshot_free(s);
        pyship_peer_free(&pe);
        pystats_free(p);
    }
    buf_free(&b);
}

Test(pyship, a_record_for_an_unnamed_row_is_refused)
{
    buf b = BUF_INIT;
    pyship_put_record(&b, 3, 1000, 1000, 0, NULL);
    pystats *p = pystats_create();
    pyship_peer pe = {0};
    cr_assert_eq(pyship_ingest(&pe, p, b.data, b.len, 0, NULL, NULL), -EINVAL);
    pyship_peer_free(&pe);
    pystats_free(p);
    buf_free(&b);
}

Test(pystats, a_workers_report_merges_buckets_counts_sums_and_errors)
{
    pystats *p = pystats_create();
    int e = pystats_entry(p, "GET", "/w");
    pystats_record(p, e, 1000, 1000, 5, NULL, S(0)); /* a local one, 1 ms */
    int64_t vals[] = {10000, 20000};
    uint64_t cnt[] = {3, 1};
    /* 4 requests, 1 failed, exact sum 3*10.2 + 19.9 ms */
    cr_assert_eq(pystats_merge(p, e, 4, 1, 40, vals, cnt, 2, 30600 + 19900, S(0)), 0);
    cr_assert_eq(pystats_add_error(p, e, "HTTPError('503')", 1), 0);
    cr_assert_eq(pystats_add_error(p, e, "HTTPError('503')", 2), 0);
    cr_assert_eq(pystats_merge(p, 7, 1, 0, 0, vals, cnt, 1, -1, S(0)), -EINVAL);
    runner_snapshot *s = pystats_snapshot(p, S(1));
    cr_assert_eq(s->nentries, 1);
    cr_assert_eq(s->entries[0].num_requests, 5);
    cr_assert_eq(s->entries[0].num_failures, 1);
    cr_assert_eq(s->total.num_requests, 5);
    cr_assert_float_eq(s->entries[0].avg_ms, (1.0 + 30.6 + 19.9) / 5, 0.01);
    cr_assert_float_eq(s->entries[0].avg_content_length, 9.0, 1e-9);
    cr_assert_float_eq(s->entries[0].max_ms, 20.0, 0.05);
    cr_assert_eq(s->nerrors, 1);
    cr_assert_eq(s->errors[0].occurrences, 3);
    runner_snapshot_free(s);
    pystats_free(p);
}
