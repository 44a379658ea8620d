#include "loadgen/webui/render.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "loadgen/webui/webui.h"

static runner_snapshot *snap(size_t nentries, const char *name)
{
    runner_snapshot *s = calloc(1, sizeof(*s));
    s->state = RUNNER_RUNNING;
    s->user_count = 4;
    s->target_users = 4;
    s->spawn_rate = 2;
    strcpy(s->host, "http://127.0.0.1:8000");
    s->start_time = 1700000000;
    s->elapsed_s = 12;
    s->nentries = nentries;
    s->entries = calloc(nentries ? nentries : 1, sizeof(runner_entry));
    for (size_t i = 0; i < nentries; i++) {
        runner_entry *e = &s->entries[i];
        strcpy(e->method, "GET");
        snprintf(e->name, sizeof(e->name), "%s%zu", name, i);
        e->num_requests = 100;
        e->num_failures = 1;
        e->median_ms = 1.5;
        for (int k = 0; k < RUNNER_NPCT; k++) e->pct_ms[k] = 1.0 + k;
    }
    strcpy(s->total.name, "Aggregated");
    s->total.num_requests = 100 * nentries;
    s->total.current_rps = 250.5;
    s->total.current_pct_ms[RUNNER_P50] = 1.25;
    s->total.current_pct_ms[RUNNER_P95] = 4.5;
    s->nerrors = 1;
    s->errors = calloc(1, sizeof(runner_error));
    strcpy(s->errors[0].method, "GET");
    strcpy(s->errors[0].name, "/fail");
    strcpy(s->errors[0].error, "HTTPError(500) <b>\"x\"</b>");
    s->errors[0].occurrences = 7;
    return s;
}

static void snap_free(runner_snapshot *s)
{
    free(s->entries);
    free(s->errors);
    free(s);
}

static json_doc parse_ok(const buf *b)
{
    json_doc d;
    char err[128];
    int rc = json_parse(&d, b->data, b->len, NULL, err, sizeof(err));
    cr_assert_eq(rc, 0, "valid JSON: %s\n%.400s", err, b->data);
    return d;
}

Test(webui_render, stats_json_carries_both_locust_key_sets)
{
    runner_snapshot *s = snap(2, "/hello");
    buf b = BUF_INIT;
    cr_assert_eq(webui_render_stats_json(s, &b), 0);
    json_doc d = parse_ok(&b);
    const char *top[] = {"stats",
                         "errors",
                         "current_rps",
                         "total_rps",
                         "fail_ratio",
                         "state",
                         "user_count",
                         "current_response_time_percentile_50",
                         "current_response_time_percentile_95",
                         "current_response_time_percentiles",
                         "host"};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
        cr_assert_geq(json_obj_get(&d, 0, top[i]), 0, "top-level key %s", top[i]);
    int stats = json_obj_get(&d, 0, "stats");
    cr_assert_eq(d.tok[stats].count, 3, "two names and the Aggregated row");
    int row = stats + 1;
    const char *keys[] = {"response_time_percentile_0.95",
                          "response_time_percentile_0.99",
                          "ninetieth_response_time",
                          "ninety_ninth_response_time",
                          "median_response_time",
                          "current_fail_per_sec",
                          "avg_content_length"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_assert_geq(json_obj_get(&d, row, keys[i]), 0, "row key %s", keys[i]);
    double v;
    json_num_f64(&d, json_obj_get(&d, row, "response_time_percentile_0.99"), &v);
    cr_assert_float_eq(v, 8.0, 1e-9, "p99 is the 8th reported percentile");
    json_num_f64(&d, json_obj_get(&d, 0, "total_rps"), &v);
    cr_assert_float_eq(v, 250.5, 1e-9, "top-level total_rps is the current aggregate rate");
    cr_assert(json_str_eq(&d, json_obj_get(&d, 0, "state"), "running"));
    json_doc_free(&d);
    buf_free(&b);
    snap_free(s);
}

Test(webui_render, stats_json_stays_valid_with_hostile_names)
{
    runner_snapshot *s = snap(1, "x");
    strcpy(s->entries[0].name, "/a\"b\\c\n\x01\xff\xc3(");
    buf b = BUF_INIT;
    cr_assert_eq(webui_render_stats_json(s, &b), 0);
    json_doc d = parse_ok(&b);
    json_doc_free(&d);
    buf_free(&b);
    snap_free(s);
}

Test(webui_render, stats_rows_are_capped_like_locust)
{
    runner_snapshot *s = snap(WEBUI_MAX_ROWS + 40, "/n");
    buf b = BUF_INIT;
    cr_assert_eq(webui_render_stats_json(s, &b), 0);
    json_doc d = parse_ok(&b);
    cr_assert_eq(d.tok[json_obj_get(&d, 0, "stats")].count, WEBUI_MAX_ROWS + 1);
    json_doc_free(&d);
    buf_free(&b);
    snap_free(s);
}

static runner_history_point *points(size_t n)
{
    runner_history_point *p = calloc(n, sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        p[i].time = 1700000000 + (int64_t)i;
        p[i].user_count = (int)(i % 50);
        p[i].current_rps = 100;
        p[i].current_p50_ms = 1;
        p[i].current_p95_ms = 2;
        p[i].current_p99_ms = i == 1234 ? 900 : 3; /* one spike */
    }
    return p;
}

Test(webui_render, history_json_is_columnar_with_gaps_for_idle_seconds)
{
    runner_history_point *p = points(3);
    p[1].current_rps = 0;
    p[1].current_p50_ms = p[1].current_p95_ms = p[1].current_p99_ms = 0;
    buf b = BUF_INIT;
    cr_assert_eq(webui_render_history_json(p, 3, 7, 2, &b), 0);
    json_doc d = parse_ok(&b);
    double v;
    json_num_f64(&d, json_obj_get(&d, 0, "next"), &v);
    cr_assert_float_eq(v, 10, 1e-9, "next = from + count");
    int p99 = json_obj_get(&d, 0, "p99");
    cr_assert_eq(d.tok[p99].count, 3);
    cr_assert_eq(d.tok[p99 + 2].type, JSON_NULL, "an idle second is a gap, not a zero");
    cr_assert_eq(d.tok[p99 + 1].type, JSON_NUMBER);
    json_doc_free(&d);
    buf_free(&b);
    free(p);
}

Test(webui_render, downsampling_an_hour_keeps_spikes_and_bounds_points)
{
    size_t n = 3600;
    runner_history_point *p = points(n);
    runner_history_point *out = calloc(WEBUI_REPORT_POINTS, sizeof(*out));
    size_t m = webui_history_downsample(p, n, out, WEBUI_REPORT_POINTS);
    cr_assert_leq(m, WEBUI_REPORT_POINTS);
    cr_assert_geq(m, WEBUI_REPORT_POINTS / 2);
    double peak = 0;
    for (size_t i = 0; i < m; i++) {
        cr_assert_float_eq(out[i].current_rps, 100, 1e-9, "rates are averaged");
        if (out[i].current_p99_ms > peak) peak = out[i].current_p99_ms;
        if (i) cr_assert_gt(out[i].time, out[i - 1].time);
    }
    cr_assert_float_eq(peak, 900, 1e-9, "a one-second spike survives downsampling");
    cr_assert_eq(webui_history_downsample(p, 10, out, WEBUI_REPORT_POINTS), 10,
                 "short histories are kept as they are");
    cr_assert_eq(out[9].time, p[9].time);
    free(out);
    free(p);
}

Test(webui_render, report_is_self_contained_escaped_and_light_for_an_hour)
{
    runner_snapshot *s = snap(3, "<script>alert(1)</script>");
    size_t n = 3600;
    runner_history_point *p = points(n);
    buf b = BUF_INIT;
    webui_report_meta meta = {.script = "a&b.ini"};
    cr_assert_eq(webui_render_report(s, p, n, &meta, &b), 0);
    cr_assert_null(strstr(b.data, "<script>alert"), "names are HTML-escaped");
    cr_assert(strstr(b.data, "&lt;script&gt;alert(1)&lt;/script&gt;0"));
    cr_assert(strstr(b.data, "HTTPError(500) &lt;b&gt;&quot;x&quot;&lt;/b&gt;"));
    cr_assert(strstr(b.data, "Script: a&amp;b.ini"));
    cr_assert_null(strstr(b.data, "src="), "no external script");
    cr_assert_null(strstr(b.data, "<link"), "no external stylesheet");
    cr_assert(strstr(b.data, "id=\"aiload-history\""));
    cr_assert(strstr(b.data, "99.99%ile (ms)"));
    cr_assert_lt(b.len, 250 * 1024, "an hour's report stays light (%zu bytes)", b.len);
    buf_free(&b);
    free(p);
    snap_free(s);
}

Test(webui_render, report_without_traffic_says_na)
{
    runner_snapshot *s = snap(0, "");
    s->nerrors = 0;
    s->total.num_requests = 0;
    buf b = BUF_INIT;
    cr_assert_eq(webui_render_report(s, NULL, 0, NULL, &b), 0);
    cr_assert(strstr(b.data, "N/A"));
    cr_assert(strstr(b.data, "No failures."));
    buf_free(&b);
    snap_free(s);
}

Test(webui_render, report_carries_the_exceptions_section_it_is_given)
{
    runner_snapshot *s = snap(1, "/x");
    buf b = BUF_INIT, exc = BUF_INIT;
    cr_assert_eq(webui_render_report(s, NULL, 0, NULL, &b), 0);
    cr_assert(strstr(b.data, "runs no user code that can raise"), "ini runs: none, and why");
    buf_reset(&b);
    buf_puts(&exc, "<table id=\"exceptions\"><tr><td>ValueError: boom</td></tr></table>");
    webui_report_meta meta = {.exceptions_html = &exc};
    cr_assert_eq(webui_render_report(s, NULL, 0, &meta, &b), 0);
    const char *h = strstr(b.data, "<h2>Exceptions Statistics</h2>");
    cr_assert(h && strstr(h, "<td>ValueError: boom</td></tr></table></section>"));
    cr_assert_null(strstr(b.data, "runs no user code"), "a Python run's section replaces it");
    buf_free(&exc);
    buf_free(&b);
    snap_free(s);
}

Test(webui_render, run_time_accepts_locust_forms_and_rejects_the_rest)
{
    double s;
    cr_assert_eq(webui_parse_run_time("90", &s), 0);
    cr_assert_float_eq(s, 90, 1e-9);
    cr_assert_eq(webui_parse_run_time("1h30m", &s), 0);
    cr_assert_float_eq(s, 5400, 1e-9);
    cr_assert_eq(webui_parse_run_time("2m5s", &s), 0);
    cr_assert_float_eq(s, 125, 1e-9);
    cr_assert_eq(webui_parse_run_time(" 20s ", &s), 0);
    cr_assert_float_eq(s, 20, 1e-9);
    cr_assert_eq(webui_parse_run_time("", &s), 0);
    cr_assert_float_eq(s, 0, 1e-9);
    const char *bad[] = {"abc", "5x", "5s3m", "1h1h", "-5", "10 minutes", "1e999", "9999999h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(webui_parse_run_time(bad[i], &s), -EINVAL, "'%s' is refused", bad[i]);
}

Test(webui_render, metrics_are_prometheus_text_with_escaped_labels)
{
    runner_snapshot *s = snap(1, "/a\"b\\c\nd");
    s->entries[0].pct_ms[RUNNER_P99] = 12.5; /* p99 */
    buf b = BUF_INIT;
    cr_assert_eq(webui_render_metrics(s, &b), 0);
    cr_assert(strstr(b.data, "# TYPE aiload_requests_total counter\n"));
    cr_assert(strstr(b.data, "aiload_state{state=\"running\"} 1\n"));
    cr_assert(
        strstr(b.data, "aiload_requests_total{method=\"GET\",name=\"/a\\\"b\\\\c\\nd0\"} 100\n"),
        "%s", b.data);
    cr_assert(strstr(b.data, "name=\"/a\\\"b\\\\c\\nd0\",quantile=\"0.99\"} 0.0125\n"), "%s",
              b.data);
    cr_assert(strstr(b.data, "aiload_requests_total{method=\"\",name=\"Aggregated\"}"));
    for (const char *l = b.data; *l; l = strchr(l, '\n') + 1) /* every line ends */
        cr_assert(strchr(l, '\n'));
    buf_free(&b);
    snap_free(s);
}

Test(webui_render, stats_json_counts_users_per_class_like_locust)
{
    runner_snapshot *s = snap(1, "x");
    int users[4] = {2, 3, 2, 3};
    const char *names[2] = {"Fixed", "We\"b"};
    s->nclasses = 2;
    s->class_users = users;
    s->class_peak = users + 2;
    s->class_names = names;
    buf b = BUF_INIT;
    cr_assert_eq(webui_render_stats_json(s, &b), 0);
    cr_assert(strstr(b.data, "\"user_classes_count\":{\"Fixed\":2,\"We\\\"b\":3}"), "%s", b.data);
    json_doc d = parse_ok(&b);
    json_doc_free(&d);
    buf_free(&b);
    s->nclasses = 0; /* the arrays above are the test's */
    s->class_users = NULL;
    s->class_names = NULL;
    snap_free(s);
}
