/*
 * report: Locust's console tables, CSV files and the JSON summary, formatted
 * from a runner snapshot (and rows of history) it is given, with the same
 * format strings Locust uses (locust/stats.py), so scripts that scrape
 * Locust's output keep working. It never sees a runner: the runner
 * (loadgen/runner_files.c) and the Python locustfile path (loadgen/py/) take
 * the snapshots.
 */
#ifndef LOADGEN_REPORT_H
#define LOADGEN_REPORT_H

#include "lib/buf.h"
#include "loadgen/runner.h"

/* Locust's STATS_NAME_WIDTH for a terminal of `cols` columns (80 when the
 * output is not a terminal: pass cols <= 0). */
int report_name_width(int cols);

/* The stats table; current = 1: current req/s (periodic), 0: totals (end). */
int report_console_stats(buf *out, const runner_snapshot *s, int current, int name_width);
/* "Response time percentiles (approximated)" table. */
int report_console_percentiles(buf *out, const runner_snapshot *s, int name_width);
/* Open-model table of the uncorrected service time and the late/dropped counts. */
int report_console_service(buf *out, const runner_snapshot *s, int name_width);
/* "Error report" table (nothing when there are no errors). */
int report_console_errors(buf *out, const runner_snapshot *s, int name_width);

/* Locust's CSV files from a snapshot. report_csv_exceptions writes the
 * header of PREFIX_exceptions.csv (all of it for a scenario, which runs no
 * user code that could raise). */
int report_csv_stats(buf *out, const runner_snapshot *s);
int report_csv_failures(buf *out, const runner_snapshot *s);
int report_csv_exceptions(buf *out);
void report_csv_history_header(buf *out);
/* The --json summary of a snapshot (runner_json_summary's format); a full
 * snapshot (runner_snapshot_take_full) adds the per-class users and the
 * latency spectrum. */
int report_json(buf *out, const runner_snapshot *s, const char *scenario, int threads);
/* The history rows of one second: every row too when full (--csv-full-history). */
int report_csv_history_rows(buf *out, const runner_snapshot *s, int64_t now_s, int full);
/* "Where the time went" (loadgen/report_timing.c): the Server-Timing split
 * of the service time, when responses carried it (else nothing is written).
 * The console table; the JSON member ",\"server_timing\":{...}"; the CSV
 * file PREFIX_server_timing.csv. */
int report_console_timing(buf *out, const runner_snapshot *s);
int report_json_timing(buf *out, const runner_snapshot *s);
int report_csv_timing(buf *out, const runner_snapshot *s);
/* The HTML report's section (web UI's /stats/report and --html). */
int report_html_timing(buf *out, const runner_snapshot *s);

/* Python-compatible scalars (exposed for the tests): a float as repr()
 * writes it; a field as csv.writer quotes it (QUOTE_MINIMAL). */
void report_py_float(buf *b, double v);
int report_csv_field(buf *b, const char *s);

#endif
