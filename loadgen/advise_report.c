/*
 * advise: the table, the reasoning, the ini snippet, JSON and the HTML
 * report (inline SVG bar charts; no scripts, no downloads).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "loadgen/advise.h"

void advise_table(buf *b, const advise_result *res, size_t n, int best)
{
    buf_printf(b, "  %-3s %9s %7s %10s %9s %9s %12s %12s %9s %9s\n", "", "processes", "threads",
               "RPS (sat)", "p50 ms", "p99 ms", "CPU ms/req", "wall ms/req", "PSS MiB", "failures");
    for (size_t i = 0; i < n; i++) {
        const advise_result *r = &res[i];
        const char *mark = (int)i == best ? "=>" : "";
        if (r->failed_start) {
            buf_printf(b, "  %-3s %9d %7d   did not start\n", mark, r->processes, r->threads);
            continue;
        }
        buf_printf(b, "  %-3s %9d %7d %10.1f %9.1f %9.1f %12.2f %12.2f %9.1f %9llu", mark,
                   r->processes, r->threads, r->rps, r->p50_ms, r->p99_ms, r->cpu_ms_per_req,
                   r->wall_ms_per_req, r->pss_mib, r->failures);
        if (r->batch)
            buf_printf(b, "  max-batch-size %d, batch-delay-us %d", r->batch, r->delay_us);
        buf_printf(b, "%s\n", r->runs > 1 ? "  (best of repeats)" : "");
    }
}

static const char *kind_of(const advise_result *r)
{
    if (r->processes > 1 && r->threads > 1) return "processes and threads";
    if (r->threads > 1) return "threads";
    if (r->processes > 1) return "processes";
    return "one process, one thread";
}

void advise_explain(buf *b, buf *ini, const advise_result *res, size_t n, int best,
                    const advise_opts *o, int ncpu, int repeated)
{
    double tg = advise_thread_gain(res, n), pg = advise_process_gain(res, n);
    const advise_result *one = NULL;
    for (size_t i = 0; i < n; i++)
        if (res[i].processes == 1 && res[i].threads == 1 && !res[i].failed_start) one = &res[i];
    double share = advise_cpu_share(res, n);
    if (one && share >= 0) {
        buf_printf(b,
                   "- CPU vs wall time (1 process x 1 thread): a request holds the worker for "
                   "%.2f ms, of which %.2f ms it waited for a core (run queue), and burns %.2f ms "
                   "of CPU (process clocks of the server's process tree): %.0f%% of its own time "
                   "is CPU, so the app is %s.\n",
                   one->wall_ms_per_req, one->runq_ms_per_req, one->cpu_ms_per_req, share * 100,
                   share > 0.6   ? "CPU-bound"
                   : share < 0.3 ? "I/O-bound (it mostly waits)"
                                 : "partly CPU-bound");
        if (one->st_app_ms > 0)
            buf_printf(b,
                       "- Server-Timing: the app phase takes %.2f ms per request and the "
                       "server queue %.2f ms; the CPU share above is CPU over the app phase.\n",
                       one->st_app_ms, one->st_queue_ms);
        if (one->runq_ms_per_req > 0.3 * one->wall_ms_per_req)
            buf_printf(b,
                       "- This machine is busy: the server waited %.0f%% of its time for a core, "
                       "so rates understate what more processes give on an idle machine; among "
                       "rates within noise of the best, the CPU share decides (a CPU-bound app "
                       "gets one thread per process, as many processes as cores).\n",
                       100 * one->runq_ms_per_req / one->wall_ms_per_req);
    }
    if (tg > 0)
        buf_printf(b,
                   "- GIL effect: a second thread in one process gives x%.2f the rate of one "
                   "thread%s.\n",
                   tg,
                   tg < 1 + 2 * ADVISE_NOISE ? " (within noise of none: requests are serialised, "
                                               "by the GIL or the CPU)"
                   : share > 0.6 ? " (requests overlap although they are CPU-bound: the work runs "
                                   "in native code that releases the GIL, e.g. torch, so the "
                                   "threads of one process use several cores)"
                                 : " (requests overlap: they wait outside the GIL)");
    if (pg > 0)
        buf_printf(b, "- A second process gives x%.2f (this machine has %d online core%s).\n", pg,
                   ncpu, ncpu == 1 ? "" : "s");
    if (one && ncpu > 1 && share > 0.6 && one->idle_cores < 0.5)
        buf_printf(b,
                   "- While 1 process x 1 thread ran saturated, the machine had only %.2f idle "
                   "cores: other work took the rest, so a second process had no core to gain "
                   "from; on a machine of its own this CPU-bound app would gain from processes.\n",
                   one->idle_cores);
    if (repeated & 2)
        buf_puts(b, "- The three probes (1x1, 1x2, 2x1) decide the direction, so they were "
                    "measured twice, in reverse order the second time.\n");
    if (repeated & 1)
        buf_printf(b,
                   "- The leading configurations were within %.0f%% of each other, so they "
                   "were measured again; other load only slows a run down, so each keeps its "
                   "fastest run.\n",
                   2 * ADVISE_NOISE * 100);
    if (best < 0) {
        buf_puts(b, "- No configuration answered: no recommendation.\n");
        return;
    }
    const advise_result *r = &res[best];
    if (o->p99_ms > 0)
        buf_printf(b, "- Latency bound: p99 <= %.1f ms at %.0f%% of saturation%s.\n", o->p99_ms,
                   ADVISE_LOAD_FRACTION * 100,
                   r->p99_ms <= o->p99_ms ? ""
                                          : " (no configuration met it; the fastest is shown)");
    buf_printf(b,
               "- Recommendation: %s: %d process%s x %d thread%s, %.1f req/s at saturation, "
               "p50 %.1f ms / p99 %.1f ms at %.0f%% of it (open model). Rates within %.0f%% of the "
               "best count as equal; among them a CPU-bound app gets one thread per process and "
               "the process count nearest the cores, any other the fewest slots.\n",
               kind_of(r), r->processes, r->processes == 1 ? "" : "es", r->threads,
               r->threads == 1 ? "" : "s", r->rps, r->p50_ms, r->p99_ms, ADVISE_LOAD_FRACTION * 100,
               advise_noise(res, n, ncpu, repeated) * 100);
    buf_printf(ini,
               "[uwsgi]\nmaster = true\nprocesses = %d\nthreads = %d\n%slisten = 1024\n"
               "need-app = true\n",
               r->processes, r->threads, r->threads > 1 ? "enable-threads = true\n" : "");
    if (r->batch)
        buf_printf(ini, "max-batch-size = %d\nbatch-delay-us = %d\n", r->batch, r->delay_us);
}

static void json_result(buf *b, const advise_result *r)
{
    buf_printf(
        b,
        "{\"processes\":%d,\"threads\":%d,\"started\":%s,\"rps\":%.3f,\"runs\":%d,"
        "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"check_rps\":%.3f,\"cpu_ms_per_req\":%.4f,"
        "\"wall_ms_per_req\":%.4f,\"runq_ms_per_req\":%.4f,\"pss_mib\":%.2f,\"requests\":%"
        "llu,\"failures\":%llu,\"server_timing_app_ms\":%.4f,\"server_timing_queue_ms\":%.4f",
        r->processes, r->threads, r->failed_start ? "false" : "true", r->rps, r->runs, r->p50_ms,
        r->p99_ms, r->check_rps, r->cpu_ms_per_req, r->wall_ms_per_req, r->runq_ms_per_req,
        r->pss_mib, r->requests, r->failures, r->st_app_ms, r->st_queue_ms);
    buf_printf(b, ",\"idle_cores\":%.3f", r->idle_cores);
    if (r->batch)
        buf_printf(b, ",\"max_batch_size\":%d,\"batch_delay_us\":%d", r->batch, r->delay_us);
    buf_puts(b, "}");
}

void advise_json(buf *b, const advise_result *res, size_t n, int best, double noise,
                 const char *reasoning)
{
    buf_puts(b, "{\"recommendation\":");
    if (best >= 0) {
        json_result(b, &res[best]);
        b->len--; /* reopen the object for the kind */
        buf_printf(b, ",\"kind\":\"%s\"}", kind_of(&res[best]));
    } else {
        buf_puts(b, "null");
    }
    double tg = advise_thread_gain(res, n), pg = advise_process_gain(res, n);
    buf_printf(b, ",\"thread_gain\":%.4f,\"process_gain\":%.4f,\"noise\":%.2f,\"reasoning\":", tg,
               pg, noise);
    buf_json_str(b, reasoning, strlen(reasoning));
    buf_puts(b, ",\"results\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) buf_puts(b, ",");
        json_result(b, &res[i]);
    }
    buf_puts(b, "]}\n");
}

static void html_text(buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': buf_puts(b, "&lt;"); break;
        case '>': buf_puts(b, "&gt;"); break;
        case '&': buf_puts(b, "&amp;"); break;
        case '"': buf_puts(b, "&quot;"); break;
        default: buf_append(b, s, 1);
        }
    }
}

/* A horizontal bar chart of one field over the results. */
static void svg_bars(buf *b, const advise_result *res, size_t n, int best, const char *title,
                     int which)
{
    double max = 0;
    for (size_t i = 0; i < n; i++) {
        double v = which == 0 ? res[i].rps : which == 1 ? res[i].p99_ms : res[i].cpu_ms_per_req;
        if (v > max) max = v;
    }
    int h = 24 * (int)n + 40;
    buf_printf(
        b, "<h3>%s</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"%d\">\n",
        title, h);
    for (size_t i = 0; i < n; i++) {
        double v = which == 0 ? res[i].rps : which == 1 ? res[i].p99_ms : res[i].cpu_ms_per_req;
        double w = max > 0 ? 440.0 * v / max : 0;
        int y = 10 + 24 * (int)i;
        buf_printf(b,
                   "<text x=\"0\" y=\"%d\" font-size=\"12\">%dp x %dt</text>"
                   "<rect x=\"90\" y=\"%d\" width=\"%.1f\" height=\"18\" fill=\"%s\"/>"
                   "<text x=\"%.1f\" y=\"%d\" font-size=\"12\">%.1f</text>\n",
                   y + 13, res[i].processes, res[i].threads, y, w, (int)i == best ? "#2a7" : "#58a",
                   95 + w, y + 13, v);
    }
    buf_puts(b, "</svg>\n");
}

void advise_html(buf *b, const advise_result *res, size_t n, int best, const char *reasoning,
                 const char *ini)
{
    buf_puts(b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>aiload advise"
                "</title><style>body{font-family:sans-serif;max-width:900px;margin:2em auto}"
                "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
                "text-align:right}tr.best{background:#dfd}</style></head><body>\n"
                "<h1>aiload advise: threads or processes?</h1>\n<table><tr><th>processes</th>"
                "<th>threads</th><th>RPS (saturated)</th><th>p50 ms</th><th>p99 ms</th>"
                "<th>CPU ms/req</th><th>wall ms/req</th><th>PSS MiB</th><th>failures</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        const advise_result *r = &res[i];
        buf_printf(b,
                   "<tr%s><td>%d</td><td>%d</td><td>%.1f</td><td>%.1f</td><td>%.1f</td>"
                   "<td>%.2f</td><td>%.2f</td><td>%.1f</td><td>%llu</td></tr>\n",
                   (int)i == best ? " class=\"best\"" : "", r->processes, r->threads, r->rps,
                   r->p50_ms, r->p99_ms, r->cpu_ms_per_req, r->wall_ms_per_req, r->pss_mib,
                   r->failures);
    }
    buf_puts(b, "</table>\n<h2>Reasoning</h2>\n<pre>");
    html_text(b, reasoning);
    buf_puts(b, "</pre>\n<h2>ini</h2>\n<pre>");
    html_text(b, ini);
    buf_puts(b, "</pre>\n<h2>Charts</h2>\n");
    svg_bars(b, res, n, best, "Requests/s at saturation", 0);
    svg_bars(b, res, n, best, "p99 (ms) at 70% of saturation", 1);
    svg_bars(b, res, n, best, "CPU ms per request", 2);
    buf_puts(b, "</body></html>\n");
}
