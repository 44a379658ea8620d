/*
 * webui_render: turns runner snapshots and history into the web UI's JSON and
 * into the self-contained HTML report. Pure functions over the data they are
 * given (no runner calls, no I/O), so they are unit-tested with built data.
 *
 * Every function appends to out and returns 0 or -ENOMEM.
 */
#ifndef LOADGEN_WEBUI_RENDER_H
#define LOADGEN_WEBUI_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "loadgen/runner.h"

/* Rows of /stats/requests and of the report's tables are capped here, like
 * Locust's 500 (the Aggregated row comes on top). */
#define WEBUI_MAX_ROWS 500
/* The report's history is downsampled to at most this many points, which
 * keeps the report of a one-hour run around 100 KB of chart data. */
#define WEBUI_REPORT_POINTS 720

/* GET /stats/requests: Locust's JSON with both key sets (2.12's flat
 * current_response_time_percentile_50/95, ninetieth_response_time... and
 * 2.46's response_time_percentile_0.95, current_response_time_percentiles).
 * Adds host, target_users, spawn_rate, start_time, elapsed and run_time. */
int webui_render_stats_json(const runner_snapshot *s, buf *out);

/* GET /stats/history: the column-oriented history the charts draw,
 * {"epoch":E,"from":F,"next":F+n,"time":[..],"user_count":[..],"rps":[..],
 *  "fail_per_sec":[..],"p50":[..],"p95":[..],"p99":[..]}; a percentile is
 * null for a point with no traffic in its window. */
int webui_render_history_json(const runner_history_point *p, size_t n, size_t from, uint64_t epoch,
                              buf *out);

/* Merges consecutive points so that at most max remain (max >= 1): rates are
 * averaged, percentiles take the group's highest (a spike stays visible), the
 * user count and totals take the group's last. Writes into out (room for max
 * points; may alias in) and returns the count. */
size_t webui_history_downsample(const runner_history_point *in, size_t n, runner_history_point *out,
                                size_t max);

/* GET /exceptions (aiload records none: {"exceptions":[]}) is written inline;
 * the report needs the scenario's source file name for its header. */
typedef struct webui_report_meta {
    const char *script;         /* scenario file; NULL: unknown */
    int64_t end_time;           /* Unix seconds the report covers up to; 0: start + elapsed */
    const scenario *sc;         /* non-NULL: a "Final ratio" section (webui/ratio.h) ... */
    const double *class_share;  /* ... with these class shares (scenario order) */
    const buf *exceptions_html; /* non-NULL: the Exceptions section's body (Python mode) */
    const buf *tasks_json;      /* without sc: "Final ratio" from /tasks's JSON (Python mode) */
} webui_report_meta;

/* The HTML report: one self-contained file (styles, uPlot and the chart data
 * inlined; no network at view time) with request, response-time-percentile
 * and failure tables and three charts over the whole run. p/n is the history
 * (it is downsampled here to WEBUI_REPORT_POINTS). */
int webui_render_report(const runner_snapshot *s, const runner_history_point *p, size_t n,
                        const webui_report_meta *meta, buf *out);

/* GET /metrics: Prometheus text exposition (version 0.0.4) of the snapshot,
 * named like locust_exporter's series with an aiload_ prefix: users, state,
 * requests and failures per name (counters), current rates, whole-run
 * response-time quantiles in seconds, fail ratio. */
int webui_render_metrics(const runner_snapshot *s, buf *out);

/* Appends s as HTML text (& < > " ' escaped). */
int webui_html_escape(buf *out, const char *s);

#endif
