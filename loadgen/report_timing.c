/*
 * "Where the time went": the Server-Timing split of the service time
 * (network+client, server queue, app) in the console, JSON and CSV. Nothing
 * is written when no response carried the header.
 */
#include <stdio.h>
#include <string.h>

#include "loadgen/report.h"
#include "loadgen/servertiming.h"

static const char *labels[RUNNER_NPCT] = {"50%", "66%", "75%",   "80%",    "90%", "95%",
                                          "98%", "99%", "99.9%", "99.99%", "100%"};

int report_console_timing(buf *b, const runner_snapshot *s)
{
    if (!s->timing_count) return 0;
    buf_printf(b,
               "Where the time went (Server-Timing of %llu responses; ms, from the send)\n"
               "%-16s %9s %9s %9s %9s %9s %9s\n",
               (unsigned long long)s->timing_count, "Phase", "avg", "50%", "90%", "99%", "99.9%",
               "100%");
    static const int cols[] = {0, 4, 7, 8, 10};
    for (int k = 0; k < LG_ST_NPHASES; k++) {
        buf_printf(b, "%-16s %9.2f", lg_st_phase_name(k), s->timing_avg_ms[k]);
        for (size_t j = 0; j < sizeof(cols) / sizeof(cols[0]); j++)
            buf_printf(b, " %9.2f", s->timing_pct_ms[k][cols[j]]);
        buf_puts(b, "\n");
    }
    return buf_puts(b, "\n");
}

int report_json_timing(buf *b, const runner_snapshot *s)
{
    if (!s->timing_count) return 0;
    static const char *keys[LG_ST_NPHASES] = {"network_client", "queue", "app"};
    buf_printf(b, ",\"server_timing\":{\"responses\":%llu", (unsigned long long)s->timing_count);
    for (int k = 0; k < LG_ST_NPHASES; k++) {
        buf_printf(b, ",\"%s\":{\"avg_ms\":%.6g,\"percentiles_ms\":{", keys[k],
                   s->timing_avg_ms[k]);
        for (int j = 0; j < RUNNER_NPCT; j++)
            buf_printf(b, "%s\"%.*s\":%.6g", j ? "," : "", (int)strlen(labels[j]) - 1, labels[j],
                       s->timing_pct_ms[k][j]);
        buf_puts(b, "}}");
    }
    return buf_puts(b, "}");
}

int runner_csv_timing(runner *r, buf *b)
{
    runner_snapshot *s = runner_snapshot_take(r);
    if (!s) return -12; /* -ENOMEM */
    int rc = 0;
    if (s->timing_count) {
        buf_puts(b, "Phase,Responses,Average (ms)");
        for (int j = 0; j < RUNNER_NPCT; j++) buf_printf(b, ",%s", labels[j]);
        buf_puts(b, "\r\n");
        for (int k = 0; k < LG_ST_NPHASES; k++) {
            buf_printf(b, "%s,%llu,%.6g", lg_st_phase_name(k), (unsigned long long)s->timing_count,
                       s->timing_avg_ms[k]);
            for (int j = 0; j < RUNNER_NPCT; j++) buf_printf(b, ",%.6g", s->timing_pct_ms[k][j]);
            rc = buf_puts(b, "\r\n");
        }
    }
    runner_snapshot_free(s);
    return rc;
}

int report_html_timing(buf *b, const runner_snapshot *s)
{
    if (!s->timing_count) return 0;
    int rc = buf_printf(b,
                        "<section><h2>Where the time went</h2><p>Server-Timing of %llu "
                        "responses, ms from the send.</p><div class=\"scroll\"><table "
                        "class=\"grid\" id=\"server-timing\"><thead><tr><th>Phase</th>"
                        "<th class=\"n\">Average</th>",
                        (unsigned long long)s->timing_count);
    for (int j = 0; j < RUNNER_NPCT; j++) rc |= buf_printf(b, "<th class=\"n\">%s</th>", labels[j]);
    rc |= buf_puts(b, "</tr></thead><tbody>\n");
    for (int k = 0; k < LG_ST_NPHASES; k++) {
        rc |= buf_printf(b, "<tr><td>%s</td><td class=\"n\">%.2f</td>", lg_st_phase_name(k),
                         s->timing_avg_ms[k]);
        for (int j = 0; j < RUNNER_NPCT; j++)
            rc |= buf_printf(b, "<td class=\"n\">%.2f</td>", s->timing_pct_ms[k][j]);
        rc |= buf_puts(b, "</tr>\n");
    }
    return rc | buf_puts(b, "</tbody></table></div></section>\n");
}
