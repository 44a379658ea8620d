/*
 * JSON for the live page and the HTML report. Buffer appends are OR-ed into
 * one rc: after the first -ENOMEM the rest are wasted work, but the caller
 * gets a clean failure and the code stays linear.
 */
#include "loadgen/webui/render.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* A JSON number: integers exactly, others to 1 us / 0.001 req/s; never NaN. */
static int jnum(buf *b, double v)
{
    if (!isfinite(v)) v = 0;
    if (v == floor(v) && fabs(v) < 1e15) return buf_printf(b, "%.0f", v);
    return buf_printf(b, "%.3f", v);
}

static int jkey(buf *b, const char *k, double v)
{
    return buf_printf(b, "\"%s\":", k) | jnum(b, v) | buf_puts(b, ",");
}

static int jstr_key(buf *b, const char *k, const char *v)
{
    return buf_printf(b, "\"%s\":", k) | buf_json_cstr(b, v) | buf_puts(b, ",");
}

static void trim_comma(buf *b)
{
    if (b->len && b->data[b->len - 1] == ',') b->data[--b->len] = '\0';
}

int webui_html_escape(buf *out, const char *s)
{
    int rc = 0;
    for (const char *p = s; *p && !rc; p++) {
        switch (*p) {
        case '&': rc = buf_puts(out, "&amp;"); break;
        case '<': rc = buf_puts(out, "&lt;"); break;
        case '>': rc = buf_puts(out, "&gt;"); break;
        case '"': rc = buf_puts(out, "&quot;"); break;
        case '\'': rc = buf_puts(out, "&#39;"); break;
        default: rc = buf_append(out, p, 1);
        }
    }
    return rc;
}

static int stats_row(buf *b, const runner_entry *e)
{
    buf safe = BUF_INIT;
    int rc = webui_html_escape(&safe, e->name);
    rc |= buf_puts(b, "{") | jstr_key(b, "method", e->method) | jstr_key(b, "name", e->name);
    rc |= jstr_key(b, "safe_name", safe.data ? safe.data : "");
    buf_free(&safe);
    rc |= jkey(b, "num_requests", (double)e->num_requests);
    rc |= jkey(b, "num_failures", (double)e->num_failures);
    rc |= jkey(b, "min_response_time", e->min_ms) | jkey(b, "max_response_time", e->max_ms);
    rc |= jkey(b, "avg_response_time", e->avg_ms);
    rc |= jkey(b, "median_response_time", e->median_ms);
    rc |= jkey(b, "current_rps", e->current_rps);
    rc |= jkey(b, "current_fail_per_sec", e->current_fail_per_sec);
    rc |= jkey(b, "total_rps", e->total_rps);
    rc |= jkey(b, "total_fail_per_sec", e->total_fail_per_sec);
    rc |= jkey(b, "avg_content_length", e->avg_content_length);
    /* 2.46 keys */
    rc |= jkey(b, "response_time_percentile_0.5", e->pct_ms[RUNNER_P50]);
    rc |= jkey(b, "response_time_percentile_0.9", e->pct_ms[RUNNER_P90]);
    rc |= jkey(b, "response_time_percentile_0.95", e->pct_ms[RUNNER_P95]);
    rc |= jkey(b, "response_time_percentile_0.99", e->pct_ms[RUNNER_P99]);
    rc |= jkey(b, "response_time_percentile_0.999", e->pct_ms[RUNNER_P999]);
    /* 2.12 keys */
    rc |= jkey(b, "ninetieth_response_time", e->pct_ms[RUNNER_P90]);
    rc |= jkey(b, "ninety_ninth_response_time", e->pct_ms[RUNNER_P99]);
    trim_comma(b);
    return rc | buf_puts(b, "}");
}

static int errors_json(buf *b, const runner_snapshot *s)
{
    int rc = buf_puts(b, "\"errors\":[");
    for (size_t i = 0; i < s->nerrors && i < WEBUI_MAX_ROWS; i++) {
        const runner_error *e = &s->errors[i];
        rc |= buf_puts(b, i ? ",{" : "{") | jstr_key(b, "method", e->method);
        rc |= jstr_key(b, "name", e->name) | jstr_key(b, "error", e->error);
        rc |= jkey(b, "occurrences", (double)e->occurrences);
        rc |= jkey(b, "first_seen", (double)e->first_seen);
        rc |= jkey(b, "last_seen", (double)e->last_seen);
        trim_comma(b);
        rc |= buf_puts(b, "}");
    }
    return rc | buf_puts(b, "],");
}

int webui_render_stats_json(const runner_snapshot *s, buf *out)
{
    const runner_entry *t = &s->total;
    int rc = buf_puts(out, "{\"stats\":[");
    for (size_t i = 0; i < s->nentries && i < WEBUI_MAX_ROWS; i++)
        rc |= stats_row(out, &s->entries[i]) | buf_puts(out, ",");
    rc |= stats_row(out, t) | buf_puts(out, "],");
    rc |= errors_json(out, s);
    rc |= jkey(out, "current_rps", t->current_rps);
    rc |= jkey(out, "current_fail_per_sec", t->current_fail_per_sec);
    /* Locust's top-level total_rps is the aggregate's current rate. */
    rc |= jkey(out, "total_rps", t->current_rps);
    rc |= jkey(out, "total_fail_per_sec", t->current_fail_per_sec);
    rc |= jkey(out, "fail_ratio", s->fail_ratio);
    rc |= jkey(out, "total_avg_response_time", t->avg_ms);
    rc |= jkey(out, "current_response_time_percentile_50", t->current_pct_ms[RUNNER_P50]);
    rc |= jkey(out, "current_response_time_percentile_95", t->current_pct_ms[RUNNER_P95]);
    rc |= buf_puts(out, "\"current_response_time_percentiles\":{");
    rc |= jkey(out, "response_time_percentile_0.5", t->current_pct_ms[RUNNER_P50]);
    rc |= jkey(out, "response_time_percentile_0.95", t->current_pct_ms[RUNNER_P95]);
    rc |= jkey(out, "response_time_percentile_0.99", t->current_pct_ms[RUNNER_P99]);
    trim_comma(out);
    rc |= buf_puts(out, "},");
    rc |= jstr_key(out, "state", runner_state_name(s->state));
    rc |= jkey(out, "user_count", s->user_count);
    /* Locust's runner.user_classes_count: users per class now */
    rc |= buf_puts(out, "\"user_classes_count\":{");
    for (size_t k = 0; k < s->nclasses; k++) {
        const char *n = s->class_names[k];
        rc |= buf_json_str(out, n, strlen(n)) | buf_printf(out, ":%d,", s->class_users[k]);
    }
    trim_comma(out);
    rc |= buf_puts(out, "},");
    rc |= jkey(out, "target_users", s->target_users);
    rc |= jkey(out, "spawn_rate", s->spawn_rate);
    rc |= jstr_key(out, "host", s->host);
    rc |= jkey(out, "start_time", (double)s->start_time);
    rc |= jkey(out, "elapsed", s->elapsed_s);
    rc |= jkey(out, "run_time", s->run_time_s);
    rc |= jkey(out, "open_model", s->open_model);
    rc |= jkey(out, "target_rate", s->target_rate);
    rc |= jkey(out, "dropped", (double)s->dropped);
    rc |= jkey(out, "cpu_warning", s->cpu_warning);
    rc |= jkey(out, "cpu_percent", s->cpu_percent);
    trim_comma(out);
    rc |= buf_puts(out, "}");
    return rc ? -ENOMEM : 0;
}

/* A percentile is drawn as a gap when its window saw no traffic. */
static int pct_or_null(buf *b, const runner_history_point *p, double v)
{
    if (p->current_rps <= 0 && v <= 0) return buf_puts(b, "null");
    return jnum(b, v);
}

int webui_render_history_json(const runner_history_point *p, size_t n, size_t from, uint64_t epoch,
                              buf *out)
{
    static const char *const cols[] = {"time", "user_count", "rps", "fail_per_sec",
                                       "p50",  "p95",        "p99"};
    int rc = buf_printf(out, "{\"epoch\":%llu,\"from\":%zu,\"next\":%zu", (unsigned long long)epoch,
                        from, from + n);
    for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
        rc |= buf_printf(out, ",\"%s\":[", cols[c]);
        for (size_t i = 0; i < n; i++) {
            const runner_history_point *q = &p[i];
            if (i) rc |= buf_puts(out, ",");
            switch (c) {
            case 0: rc |= jnum(out, (double)q->time); break;
            case 1: rc |= jnum(out, q->user_count); break;
            case 2: rc |= jnum(out, q->current_rps); break;
            case 3: rc |= jnum(out, q->current_fail_per_sec); break;
            case 4: rc |= pct_or_null(out, q, q->current_p50_ms); break;
            case 5: rc |= pct_or_null(out, q, q->current_p95_ms); break;
            default: rc |= pct_or_null(out, q, q->current_p99_ms); break;
            }
        }
        rc |= buf_puts(out, "]");
    }
    rc |= buf_puts(out, "}");
    return rc ? -ENOMEM : 0;
}

size_t webui_history_downsample(const runner_history_point *in, size_t n, runner_history_point *out,
                                size_t max)
{
    if (max == 0) return 0;
    size_t group = (n + max - 1) / max;
    if (group <= 1) {
        if (n) memmove(out, in, n * sizeof(*in));
        return n;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i += group, m++) {
        size_t end = i + group < n ? i + group : n;
        runner_history_point g = in[i];
        double rps = 0, fps = 0;
        for (size_t j = i; j < end; j++) {
            rps += in[j].current_rps;
            fps += in[j].current_fail_per_sec;
            if (in[j].current_p50_ms > g.current_p50_ms) g.current_p50_ms = in[j].current_p50_ms;
            if (in[j].current_p95_ms > g.current_p95_ms) g.current_p95_ms = in[j].current_p95_ms;
            if (in[j].current_p99_ms > g.current_p99_ms) g.current_p99_ms = in[j].current_p99_ms;
        }
        g.current_rps = rps / (double)(end - i);
        g.current_fail_per_sec = fps / (double)(end - i);
        g.user_count = in[end - 1].user_count;
        g.total_requests = in[end - 1].total_requests;
        g.total_failures = in[end - 1].total_failures;
        out[m] = g; /* m <= i: writing in place never clobbers unread input */
    }
    return m;
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static int prom_label(buf *b, const char *v)
{
    int rc = 0;
    for (const char *p = v; *p && !rc; p++) {
        if (*p == '\\' || *p == '"')
            rc = buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            rc = buf_puts(b, "\\n");
        else
            rc = buf_append(b, p, 1);
    }
    return rc;
}

static int prom_series(buf *b, const char *metric, const runner_entry *e, const char *extra,
                       double v)
{
    int rc = buf_printf(b, "%s{method=\"", metric) | prom_label(b, e->method);
    rc |= buf_puts(b, "\",name=\"") | prom_label(b, e->name);
    return rc | buf_printf(b, "\"%s} %.9g\n", extra ? extra : "", isfinite(v) ? v : 0);
}

static int prom_family(buf *b, const runner_snapshot *s, const char *metric, const char *type,
                       const char *help, int which)
{
    static const struct {
        const char *q;
        int idx;
    } qs[] = {{",quantile=\"0.5\"", RUNNER_P50},
              {",quantile=\"0.95\"", RUNNER_P95},
              {",quantile=\"0.99\"", RUNNER_P99},
              {",quantile=\"0.999\"", RUNNER_P999},
              {",quantile=\"1\"", RUNNER_P100}};
    int rc = buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
    size_t rows = s->nentries < WEBUI_MAX_ROWS ? s->nentries : WEBUI_MAX_ROWS;
    for (size_t i = 0; i <= rows; i++) {
        const runner_entry *e = i < rows ? &s->entries[i] : &s->total;
        switch (which) {
        case 0: rc |= prom_series(b, metric, e, NULL, (double)e->num_requests); break;
        case 1: rc |= prom_series(b, metric, e, NULL, (double)e->num_failures); break;
        case 2: rc |= prom_series(b, metric, e, NULL, e->current_rps); break;
        case 3: rc |= prom_series(b, metric, e, NULL, e->current_fail_per_sec); break;
        default:
            for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++)
                rc |= prom_series(b, metric, e, qs[k].q, e->pct_ms[qs[k].idx] / 1000.0);
        }
    }
    return rc;
}

int webui_render_metrics(const runner_snapshot *s, buf *out)
{
    static const char *const states[] = {"ready", "spawning", "running", "stopping", "stopped"};
    int rc = buf_puts(out, "# HELP aiload_users Users running now.\n# TYPE aiload_users gauge\n");
    rc |= buf_printf(out, "aiload_users %d\n", s->user_count);
    rc |= buf_puts(out, "# HELP aiload_state The runner state (1 for the current one).\n"
                        "# TYPE aiload_state gauge\n");
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        rc |= buf_printf(out, "aiload_state{state=\"%s\"} %d\n", states[i],
                         !strcmp(states[i], runner_state_name(s->state)));
    rc |= buf_puts(out, "# HELP aiload_fail_ratio Failures over requests, whole run.\n"
                        "# TYPE aiload_fail_ratio gauge\naiload_fail_ratio ");
    rc |= jnum(out, s->fail_ratio) | buf_puts(out, "\n");
    rc |= prom_family(out, s, "aiload_requests_total", "counter", "Requests sent, by name.", 0);
    rc |= prom_family(out, s, "aiload_failures_total", "counter", "Failed requests, by name.", 1);
    rc |= prom_family(out, s, "aiload_current_rps", "gauge", "Requests per second now.", 2);
    rc |=
        prom_family(out, s, "aiload_current_fail_per_sec", "gauge", "Failures per second now.", 3);
    rc |= prom_family(out, s, "aiload_response_time_seconds", "gauge",
                      "Response time quantiles over the whole run (corrected latency).", 4);
    return rc ? -ENOMEM : 0;
}
