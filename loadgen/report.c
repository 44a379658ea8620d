/*
 * Locust-compatible output: console tables, the four CSV files and a JSON
 * summary. CSV follows Python's csv.writer (QUOTE_MINIMAL, "\r\n" line ends)
 * and floats are written as Python's repr() would, so the files are
 * byte-for-byte what Locust's own writer produces for the same numbers.
 * Everything here formats a snapshot it is given; the runner (or the Python
 * locustfile path) takes it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/report.h"
#include "loadgen/stats.h"

/* ---- Python-compatible scalars ---- */

void report_py_float(buf *b, double v)
{
    if (!isfinite(v)) {
        buf_puts(b, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    /* repr() switches to exponent notation outside [1e-4, 1e16) */
    if (strchr(tmp, 'e') && fabs(v) >= 1e-4 && fabs(v) < 1e16)
        snprintf(tmp, sizeof(tmp), "%.1f", v);
    buf_puts(b, tmp);
    if (!strpbrk(tmp, ".eninf")) buf_puts(b, ".0");
}

int report_csv_field(buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) return buf_puts(b, s);
    int rc = buf_puts(b, "\"");
    for (const char *q; (q = strchr(s, '"')); s = q + 1)
        rc |= buf_append(b, s, (size_t)(q - s + 1)) | buf_puts(b, "\"");
    return rc | buf_puts(b, s) | buf_puts(b, "\"");
}

static void put_int(buf *b, long long v)
{
    buf_printf(b, "%lld", v);
}

/* Locust's percentile and median values are integer milliseconds. */
static long long ms_int(double ms)
{
    return (long long)llround(ms);
}

static void put_percentiles(buf *b, const runner_entry *e, const double *pct)
{
    for (int k = 0; k < RUNNER_NPCT; k++) {
        buf_puts(b, ",");
        if (!e->num_requests)
            buf_puts(b, "N/A");
        else
            put_int(b, ms_int(pct[k]));
    }
}

/* ---- PREFIX_stats.csv ---- */

static void stats_header(buf *b)
{
    buf_puts(b, "Type,Name,Request Count,Failure Count,Median Response Time,"
                "Average Response Time,Min Response Time,Max Response Time,"
                "Average Content Size,Requests/s,Failures/s");
    for (int k = 0; k < RUNNER_NPCT; k++) buf_printf(b, ",%s", runner_pcts[k].label);
    buf_puts(b, "\r\n");
}

/* "median,average,min,max,average size": Locust writes 0 for the ones an
 * entry without requests cannot have. */
static void put_response_times(buf *b, const runner_entry *e)
{
    int any = e->num_requests > 0;
    put_int(b, any ? ms_int(e->median_ms) : 0);
    buf_puts(b, ",");
    report_py_float(b, e->avg_ms);
    const double rest[] = {e->min_ms, e->max_ms, e->avg_content_length};
    for (int i = 0; i < 3; i++) {
        buf_puts(b, ",");
        if (any)
            report_py_float(b, rest[i]);
        else
            buf_puts(b, "0");
    }
}

static void stats_row(buf *b, const runner_entry *e)
{
    report_csv_field(b, e->method);
    buf_puts(b, ",");
    report_csv_field(b, e->name);
    buf_printf(b, ",%llu,%llu,", (unsigned long long)e->num_requests,
               (unsigned long long)e->num_failures);
    put_response_times(b, e);
    buf_puts(b, ",");
    report_py_float(b, e->total_rps);
    buf_puts(b, ",");
    report_py_float(b, e->total_fail_per_sec);
    put_percentiles(b, e, e->pct_ms);
    buf_puts(b, "\r\n");
}

int report_csv_stats(buf *out, const runner_snapshot *s)
{
    size_t before = out->len;
    stats_header(out);
    for (size_t i = 0; i < s->nentries; i++) stats_row(out, &s->entries[i]);
    stats_row(out, &s->total);
    return out->len > before ? 0 : -ENOMEM;
}

/* ---- PREFIX_stats_history.csv ---- */

void report_csv_history_header(buf *b)
{
    buf_puts(b, "Timestamp,User Count,Type,Name,Requests/s,Failures/s");
    for (int k = 0; k < RUNNER_NPCT; k++) buf_printf(b, ",%s", runner_pcts[k].label);
    buf_puts(b, ",Total Request Count,Total Failure Count,Total Median Response Time,"
                "Total Average Response Time,Total Min Response Time,Total Max Response Time,"
                "Total Average Content Size\r\n");
}

static void history_row(buf *b, const runner_snapshot *s, const runner_entry *e, int64_t now,
                        int current)
{
    buf_printf(b, "%lld,%d,", (long long)now, s->user_count);
    report_csv_field(b, e->method);
    buf_puts(b, ",");
    report_csv_field(b, e->name);
    buf_printf(b, ",%f,%f", e->current_rps, e->current_fail_per_sec);
    put_percentiles(b, e, current ? e->current_pct_ms : e->pct_ms);
    buf_printf(b, ",%llu,%llu,", (unsigned long long)e->num_requests,
               (unsigned long long)e->num_failures);
    put_response_times(b, e);
    buf_puts(b, "\r\n");
}

int report_csv_history_rows(buf *out, const runner_snapshot *s, int64_t now_s, int full)
{
    size_t before = out->len;
    if (full)
        for (size_t i = 0; i < s->nentries; i++) history_row(out, s, &s->entries[i], now_s, 1);
    history_row(out, s, &s->total, now_s, full);
    return out->len > before ? 0 : -ENOMEM;
}

/* ---- PREFIX_failures.csv, PREFIX_exceptions.csv ---- */

int report_csv_failures(buf *out, const runner_snapshot *s)
{
    buf_puts(out, "Method,Name,Error,Occurrences\r\n");
    for (size_t i = 0; i < s->nerrors; i++) {
        const runner_error *e = &s->errors[i];
        report_csv_field(out, e->method);
        buf_puts(out, ",");
        report_csv_field(out, e->name);
        buf_puts(out, ",");
        report_csv_field(out, e->error);
        buf_printf(out, ",%llu\r\n", (unsigned long long)e->occurrences);
    }
    return 0;
}

int report_csv_exceptions(buf *out)
{
    /* a scenario runs no user code, so nothing raises: header only (the
     * Python path appends its rows, loadgen/py/pyweb.c) */
    return buf_puts(out, "Count,Message,Traceback,Nodes\r\n");
}

/* ---- JSON summary ---- */

static void json_num(buf *b, double v)
{
    if (!isfinite(v)) v = 0;
    buf_printf(b, "%.6g", v);
}

static void json_pcts(buf *b, const char *key, const double *pct)
{
    buf_printf(b, "\"%s\":{", key);
    for (int k = 0; k < RUNNER_NPCT; k++) {
        buf_printf(b, "%s\"%.*s\":", k ? "," : "", (int)strlen(runner_pcts[k].label) - 1,
                   runner_pcts[k].label);
        json_num(b, pct[k]);
    }
    buf_puts(b, "}");
}

static void json_entry(buf *b, const runner_entry *e)
{
    buf_puts(b, "{\"method\":");
    buf_json_str(b, e->method, strlen(e->method));
    buf_puts(b, ",\"name\":");
    buf_json_str(b, e->name, strlen(e->name));
    buf_printf(b, ",\"num_requests\":%llu,\"num_failures\":%llu",
               (unsigned long long)e->num_requests, (unsigned long long)e->num_failures);
    const struct {
        const char *k;
        double v;
    } f[] = {{"avg_ms", e->avg_ms},
             {"min_ms", e->min_ms},
             {"max_ms", e->max_ms},
             {"median_ms", e->median_ms},
             {"avg_content_length", e->avg_content_length},
             {"rps", e->total_rps},
             {"fail_per_sec", e->total_fail_per_sec},
             {"current_rps", e->current_rps},
             {"service_avg_ms", e->service_avg_ms}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        buf_printf(b, ",\"%s\":", f[i].k);
        json_num(b, f[i].v);
    }
    buf_printf(b, ",\"not_on_time\":%llu,", (unsigned long long)e->not_on_time);
    json_pcts(b, "percentiles_ms", e->pct_ms);
    buf_puts(b, ",");
    json_pcts(b, "service_percentiles_ms", e->service_pct_ms);
    buf_puts(b, "}");
}

/* The aggregate's percentile spectrum (as wrk2 --latency prints it): value in
 * ms at 0, 10, ..., 90, 95, 99, 99.9, 99.99, 99.999 and 100 %, corrected and
 * service time. */
static void json_spectrum(const runner_snapshot *s, buf *b)
{
    const double *vs[2] = {s->spectrum_ms, s->service_spectrum_ms};
    const char *keys[2] = {"spectrum_ms", "service_spectrum_ms"};
    for (int h = 0; h < 2; h++) {
        buf_printf(b, "%s\"%s\":[", h ? "," : "", keys[h]);
        for (size_t i = 0; i < RUNNER_NSPECTRUM; i++) {
            buf_printf(b, "%s[%g,", i ? "," : "", runner_spectrum[i]);
            json_num(b, vs[h][i]);
            buf_puts(b, "]");
        }
        buf_puts(b, "]");
    }
}

/* "user_classes": each class with its weight and fixed_count, the users the
 * split gives it at the test's -u, and the most it really ran at once. */
static void json_classes(const runner_snapshot *s, buf *b)
{
    buf_puts(b, ",\"user_classes\":[");
    for (size_t k = 0; k < s->nclasses; k++) {
        buf_puts(b, k ? ",{\"name\":" : "{\"name\":");
        buf_json_str(b, s->class_names[k], strlen(s->class_names[k]));
        buf_puts(b, ",\"weight\":");
        json_num(b, s->class_weight[k]);
        buf_printf(b, ",\"fixed_count\":%d,\"target_users\":%d,\"users\":%d,\"peak_users\":%d}",
                   s->class_fixed[k], s->class_target[k], s->class_users[k], s->class_peak[k]);
    }
    buf_puts(b, "]");
}

int report_json(buf *out, const runner_snapshot *s, const char *src, int threads)
{
    buf *b = out;
    buf_puts(b, "{\"tool\":\"aiload\",\"version\":\"" AISERVE_VERSION "\",\"state\":");
    buf_json_str(b, runner_state_name(s->state), strlen(runner_state_name(s->state)));
    buf_puts(b, ",\"host\":");
    buf_json_str(b, s->host, strlen(s->host));
    buf_puts(b, ",\"scenario\":");
    buf_json_str(b, src, strlen(src));
    buf_printf(b, ",\"start_time\":%lld,\"duration_s\":", (long long)s->start_time);
    json_num(b, s->elapsed_s);
    buf_printf(b, ",\"model\":\"%s\",\"users\":%d,\"threads\":%d,\"rate\":",
               s->open_model ? "open" : "closed", s->target_users, threads);
    json_num(b, s->open_model ? s->target_rate : 0);
    buf_printf(b, ",\"requests\":%llu,\"failures\":%llu,\"fail_ratio\":",
               (unsigned long long)s->total.num_requests,
               (unsigned long long)s->total.num_failures);
    json_num(b, s->fail_ratio);
    buf_puts(b, ",\"rps\":");
    json_num(b, s->total.total_rps);
    buf_printf(b, ",\"not_on_time\":%llu,\"dropped\":%llu,\"cpu_warning\":%s,\"total\":",
               (unsigned long long)s->total.not_on_time, (unsigned long long)s->dropped,
               s->cpu_warning ? "true" : "false");
    json_entry(b, &s->total);
    if (s->full) json_classes(s, b);
    buf_puts(b, ",\"entries\":[");
    for (size_t i = 0; i < s->nentries; i++) {
        if (i) buf_puts(b, ",");
        json_entry(b, &s->entries[i]);
    }
    buf_puts(b, "]");
    if (s->full) {
        buf_puts(b, ",");
        json_spectrum(s, b);
    }
    report_json_timing(b, s);
    buf_puts(b, ",\"errors\":[");
    for (size_t i = 0; i < s->nerrors; i++) {
        const runner_error *e = &s->errors[i];
        buf_puts(b, i ? ",{\"method\":" : "{\"method\":");
        buf_json_str(b, e->method, strlen(e->method));
        buf_puts(b, ",\"name\":");
        buf_json_str(b, e->name, strlen(e->name));
        buf_puts(b, ",\"error\":");
        buf_json_str(b, e->error, strlen(e->error));
        buf_printf(b, ",\"occurrences\":%llu}", (unsigned long long)e->occurrences);
    }
    return buf_puts(b, "]}");
}

/* ---- console tables (locust/stats.py format strings) ---- */

int report_name_width(int cols)
{
    if (cols <= 0) return 80;
    int w = cols - 80;
    return w < 0 ? 0 : w > 80 ? 80 : w;
}

static void dashes(buf *b, int n)
{
    for (int i = 0; i < n; i++) buf_puts(b, "-");
}

static void stats_line(buf *b, const runner_entry *e, int current, int nw)
{
    char type[24], fails[48];
    snprintf(type, sizeof(type), "%s%s", e->method, e->method[0] ? " " : "");
    double ratio = e->num_requests ? (double)e->num_failures / (double)e->num_requests : 0;
    snprintf(fails, sizeof(fails), "%llu(%.2f%%)", (unsigned long long)e->num_failures,
             ratio * 100);
    double rps = current ? e->current_rps : e->total_rps;
    double fps = current ? e->current_fail_per_sec : e->total_fail_per_sec;
    buf_printf(b, "%-8s %-*s %7llu %12s |%7lld %7lld %7lld%7lld | %7.2f %11.2f\n", type, nw - 8 + 4,
               e->name, (unsigned long long)e->num_requests, fails, (long long)e->avg_ms,
               (long long)e->min_ms, (long long)e->max_ms,
               e->num_requests ? ms_int(e->median_ms) : 0, rps, fps);
}

static void stats_sep(buf *b, int nw)
{
    dashes(b, 8);
    buf_puts(b, "|");
    dashes(b, nw - 8 + 4);
    buf_puts(b, "|-------|-------------|-------|-------|-------|-------|--------|-----------\n");
}

int report_console_stats(buf *b, const runner_snapshot *s, int current, int nw)
{
    buf_printf(b, "%-8s %-*s %7s %12s |%7s %7s %7s%7s | %7s %11s\n", "Type", nw - 8 + 4, "Name",
               "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s", "failures/s");
    stats_sep(b, nw);
    for (size_t i = 0; i < s->nentries; i++) stats_line(b, &s->entries[i], current, nw);
    stats_sep(b, nw);
    stats_line(b, &s->total, current, nw);
    return buf_puts(b, "\n");
}

static void pct_table(buf *b, const runner_snapshot *s, int nw, int service)
{
    buf_printf(b, "%-8s %-*s %8s", "Type", nw, "Name", "# reqs");
    for (int k = 0; k < RUNNER_NPCT; k++) buf_printf(b, " %6s", runner_pcts[k].label);
    buf_puts(b, "\n");
    dashes(b, 8);
    buf_puts(b, "|");
    dashes(b, nw);
    buf_puts(b, "|--------");
    for (int k = 0; k < RUNNER_NPCT; k++) buf_puts(b, k + 1 < RUNNER_NPCT ? "|------" : "|------");
    buf_puts(b, "\n");
    for (size_t i = 0; i <= s->nentries; i++) {
        const runner_entry *e = i < s->nentries ? &s->entries[i] : &s->total;
        if (i == s->nentries) {
            dashes(b, 8);
            buf_puts(b, "|");
            dashes(b, nw);
            buf_puts(b, "|--------");
            for (int k = 0; k < RUNNER_NPCT; k++) buf_puts(b, "|------");
            buf_puts(b, "\n");
        }
        if (!e->num_requests) continue;
        const double *p = service ? e->service_pct_ms : e->pct_ms;
        buf_printf(b, "%-8s %-*s %8llu", e->method, nw, e->name,
                   (unsigned long long)e->num_requests);
        for (int k = 0; k < RUNNER_NPCT; k++) buf_printf(b, " %6lld", ms_int(p[k]));
        buf_puts(b, "\n");
    }
}

int report_console_percentiles(buf *b, const runner_snapshot *s, int nw)
{
    buf_puts(b, "Response time percentiles (approximated)\n");
    pct_table(b, s, nw, 0);
    return buf_puts(b, "\n");
}

int report_console_service(buf *b, const runner_snapshot *s, int nw)
{
    buf_puts(b, "Service time percentiles (uncorrected: from the actual send, as wrk -U)\n");
    pct_table(b, s, nw, 1);
    buf_printf(b,
               "Requests sent more than %d ms after their intended time: %llu; arrivals never "
               "sent: %llu\n",
               LG_LATE_US / 1000, (unsigned long long)s->total.not_on_time,
               (unsigned long long)s->dropped);
    return buf_puts(b, "\n");
}

int report_console_errors(buf *b, const runner_snapshot *s, int nw)
{
    if (!s->nerrors) return 0;
    buf_puts(b, "Error report\n");
    buf_printf(b, "%-18s %-100s\n", "# occurrences", "Error");
    dashes(b, 18);
    buf_puts(b, "|");
    dashes(b, 80 + nw - 19);
    buf_puts(b, "\n");
    for (size_t i = 0; i < s->nerrors; i++) {
        const runner_error *e = &s->errors[i];
        char line[600];
        snprintf(line, sizeof(line), "%s %s: %s", e->method, e->name, e->error);
        buf_printf(b, "%-18llu %-100s\n", (unsigned long long)e->occurrences, line);
    }
    dashes(b, 18);
    buf_puts(b, "|");
    dashes(b, 80 + nw - 19);
    return buf_puts(b, "\n\n");
}
