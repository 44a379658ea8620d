/*
 * The HTML report: server-rendered tables (readable without JavaScript) plus
 * three uPlot charts drawn from history embedded as JSON. Styles, uPlot and
 * the chart code are inlined from the embedded assets, so the one file opens
 * offline. The history holds only numbers, so the JSON needs no escaping to
 * sit inside <script>.
 */
#include "loadgen/webui/render.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loadgen/report.h"
#include "loadgen/webui/assets.h"
#include "loadgen/webui/ratio.h"

static int asset(buf *out, const char *path)
{
    const webui_asset *a = webui_asset_find(path, strlen(path));
    return a ? buf_append(out, a->data, a->len) : -ENOENT;
}

static int utc(buf *out, int64_t t)
{
    if (t <= 0) return buf_puts(out, "-");
    time_t tt = (time_t)t;
    struct tm tm;
    char s[40];
    gmtime_r(&tt, &tm);
    strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf_puts(out, s);
}

/* Milliseconds with precision that matches their size (µs below 10 ms). */
static int ms(buf *out, double v)
{
    if (!isfinite(v)) v = 0;
    if (v >= 100) return buf_printf(out, "<td class=\"n\">%.0f</td>", v);
    if (v >= 10) return buf_printf(out, "<td class=\"n\">%.1f</td>", v);
    return buf_printf(out, "<td class=\"n\">%.2f</td>", v);
}

static int name_cells(buf *out, const runner_entry *e, int total)
{
    int rc = buf_puts(out, total ? "<tr class=\"total\"><td>" : "<tr><td>");
    rc |= webui_html_escape(out, e->method) | buf_puts(out, "</td><td>");
    return rc | webui_html_escape(out, e->name) | buf_puts(out, "</td>");
}

static int request_row(buf *out, const runner_entry *e, int total)
{
    int rc = name_cells(out, e, total);
    rc |= buf_printf(out, "<td class=\"n\">%llu</td><td class=\"n\">%llu</td>",
                     (unsigned long long)e->num_requests, (unsigned long long)e->num_failures);
    if (e->num_requests) {
        rc |= ms(out, e->avg_ms) | ms(out, e->min_ms) | ms(out, e->max_ms);
    } else {
        rc |= buf_puts(out, "<td class=\"n\">N/A</td><td class=\"n\">N/A</td>"
                            "<td class=\"n\">N/A</td>");
    }
    return rc | buf_printf(out,
                           "<td class=\"n\">%.0f</td><td class=\"n\">%.2f</td>"
                           "<td class=\"n\">%.2f</td></tr>\n",
                           e->avg_content_length, e->total_rps, e->total_fail_per_sec);
}

static int pct_row(buf *out, const runner_entry *e, int total)
{
    int rc = name_cells(out, e, total);
    for (int i = 0; i < RUNNER_NPCT; i++)
        rc |= e->num_requests ? ms(out, e->pct_ms[i]) : buf_puts(out, "<td class=\"n\">N/A</td>");
    return rc |
           buf_printf(out, "<td class=\"n\">%llu</td></tr>\n", (unsigned long long)e->num_requests);
}

static int tables(buf *out, const runner_snapshot *s)
{
    size_t rows = s->nentries < WEBUI_MAX_ROWS ? s->nentries : WEBUI_MAX_ROWS;
    int rc =
        buf_puts(out, "<section><h2>Request Statistics</h2><div class=\"scroll\">"
                      "<table class=\"grid\" id=\"requests\"><thead><tr><th>Type</th>"
                      "<th>Name</th><th class=\"n\"># Requests</th><th class=\"n\"># Fails</th>"
                      "<th class=\"n\">Average (ms)</th><th class=\"n\">Min (ms)</th>"
                      "<th class=\"n\">Max (ms)</th><th class=\"n\">Average size (bytes)</th>"
                      "<th class=\"n\">RPS</th><th class=\"n\">Failures/s</th></tr></thead>"
                      "<tbody>\n");
    for (size_t i = 0; i < rows; i++) rc |= request_row(out, &s->entries[i], 0);
    rc |= request_row(out, &s->total, 1) | buf_puts(out, "</tbody></table></div></section>\n");

    rc |= buf_puts(out, "<section><h2>Response Time Statistics</h2><div class=\"scroll\">"
                        "<table class=\"grid\" id=\"percentiles\"><thead><tr><th>Type</th>"
                        "<th>Name</th>");
    for (int i = 0; i < RUNNER_NPCT; i++)
        rc |= buf_printf(out, "<th class=\"n\">%sile (ms)</th>", runner_pcts[i].label);
    rc |= buf_puts(out, "<th class=\"n\"># Requests</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < rows; i++) rc |= pct_row(out, &s->entries[i], 0);
    rc |= pct_row(out, &s->total, 1) | buf_puts(out, "</tbody></table></div></section>\n");

    rc |= buf_puts(out, "<section><h2>Failures Statistics</h2>");
    if (!s->nerrors) return rc | buf_puts(out, "<p class=\"empty\">No failures.</p></section>\n");
    rc |= buf_puts(out, "<div class=\"scroll\"><table class=\"grid\" id=\"failures\"><thead><tr>"
                        "<th>Method</th><th>Name</th><th>Error</th>"
                        "<th class=\"n\">Occurrences</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < s->nerrors && i < WEBUI_MAX_ROWS; i++) {
        const runner_error *e = &s->errors[i];
        rc |= buf_puts(out, "<tr><td>") | webui_html_escape(out, e->method);
        rc |= buf_puts(out, "</td><td>") | webui_html_escape(out, e->name);
        rc |= buf_puts(out, "</td><td class=\"err\">") | webui_html_escape(out, e->error);
        rc |= buf_printf(out, "</td><td class=\"n\">%llu</td></tr>\n",
                         (unsigned long long)e->occurrences);
    }
    return rc | buf_puts(out, "</tbody></table></div></section>\n");
}

static int header(buf *out, const runner_snapshot *s, const webui_report_meta *m)
{
    int64_t end = m && m->end_time ? m->end_time : s->start_time + (int64_t)llround(s->elapsed_s);
    int rc = buf_puts(out, "<header><h1>aiload test report</h1><p>During: ");
    rc |= utc(out, s->start_time) | buf_puts(out, " &ndash; ") | utc(out, end);
    rc |= buf_printf(out, " (%.0f s)</p><p>Target host: ", s->elapsed_s);
    rc |= webui_html_escape(out, s->host[0] ? s->host : "-");
    rc |= buf_puts(out, "</p><p>Script: ");
    rc |= webui_html_escape(out, m && m->script ? m->script : "-");
    if (s->open_model)
        rc |= buf_printf(out, "</p><p>Open model: %.1f arrivals/s, %llu dropped", s->target_rate,
                         (unsigned long long)s->dropped);
    else
        rc |=
            buf_printf(out, "</p><p>Users: %d (spawn rate %.2f/s)", s->target_users, s->spawn_rate);
    return rc | buf_puts(out, "</p><p>Latency is measured from each request's intended start "
                              "(corrected for coordinated omission).</p></header>\n");
}

static int charts(buf *out, const runner_history_point *p, size_t n)
{
    int rc = buf_puts(out, "<section><h2>Charts</h2>"
                           "<p id=\"charts-error\" class=\"empty\" hidden>The chart data could "
                           "not be read.</p>"
                           "<div class=\"chart\" id=\"chart-rps\"><h3>Total Requests per "
                           "Second</h3></div>"
                           "<div class=\"chart\" id=\"chart-rt\"><h3>Response Times (ms)</h3></div>"
                           "<div class=\"chart\" id=\"chart-users\"><h3>Number of Users</h3></div>"
                           "</section>\n<script>");
    rc |= asset(out, "/uplot.js") | buf_puts(out, "</script>\n<script>");
    rc |= asset(out, "/common.js");
    rc |= buf_puts(out, "</script>\n<script id=\"aiload-history\" type=\"application/json\">");
    size_t cap = n < WEBUI_REPORT_POINTS ? n : WEBUI_REPORT_POINTS;
    runner_history_point *d = malloc((cap ? cap : 1) * sizeof(*d));
    if (!d) return -ENOMEM;
    size_t m = webui_history_downsample(p, n, d, WEBUI_REPORT_POINTS);
    rc |= webui_render_history_json(d, m, 0, 0, out);
    free(d);
    rc |= buf_puts(out, "</script>\n<script>") | asset(out, "/report.js");
    return rc | buf_puts(out, "</script>\n");
}

int webui_render_report(const runner_snapshot *s, const runner_history_point *p, size_t n,
                        const webui_report_meta *meta, buf *out)
{
    /* The meta policy travels with the saved file: opened anywhere, the report
     * can fetch nothing, so it is provably self-contained. */
    int rc = buf_puts(out, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                           "'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                           "img-src data:\">"
                           "<meta name=\"viewport\" content=\"width=device-width, "
                           "initial-scale=1\"><title>aiload report: ");
    rc |= webui_html_escape(out, s->host[0] ? s->host : "-");
    rc |= buf_puts(out, "</title>\n<style>") | asset(out, "/uplot.css") | asset(out, "/app.css");
    rc |= buf_puts(out, "</style></head>\n<body class=\"report\">\n");
    rc |= header(out, s, meta) | tables(out, s) | report_html_timing(out, s);
    if (meta && meta->exceptions_html)
        rc |= buf_puts(out, "<section><h2>Exceptions Statistics</h2>") |
              buf_append(out, meta->exceptions_html->data, meta->exceptions_html->len) |
              buf_puts(out, "</section>\n");
    else
        rc |= buf_puts(out, "<section><h2>Exceptions Statistics</h2><p class=\"empty\">aiload "
                            "runs no user code that can raise: no exceptions.</p></section>\n");
    rc |= charts(out, p, n);
    if (meta && meta->sc)
        rc |= webui_render_tasks_html(meta->sc, meta->class_share, out);
    else if (meta && meta->tasks_json)
        rc |= webui_render_tasks_html_json(meta->tasks_json->data, meta->tasks_json->len, out);
    rc |= buf_puts(out, "</body></html>\n");
    return rc ? -ENOMEM : 0;
}
