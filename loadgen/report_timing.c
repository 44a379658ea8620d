/*
 * "Where the time went": the Server-Timing split of the service time
 * (network+client, server queue, app) in the console, JSON and CSV. Nothing
 * is written when no response carried the header.
 */
#include <stdio.h>
#include <string.h>

#include "loadgen/report.h"
#include "loadgen/servertiming.h"

int report_console_timing(buf *b, const runner_snapshot *s)
{
    if (!s->timing_count) return 0;
    static const runner_pct cols[] = {RUNNER_P50, RUNNER_P90, RUNNER_P99, RUNNER_P999, RUNNER_P100};
    buf_printf(b,
               "Where the time went (Server-Timing of %llu responses; ms, from the send)\n"
               "%-16s %9s",
               (unsigned long long)s->timing_count, "Phase", "avg");
    for (size_t j = 0; j < sizeof(cols) / sizeof(cols[0]); j++)
        buf_printf(b, " %9s", runner_pcts[cols[j]].label);
    buf_puts(b, "\n");
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
            buf_printf(b, "%s\"%.*s\":%.6g", j ? "," : "", (int)strlen(runner_pcts[j].label) - 1,
                       runner_pcts[j].label, s->timing_pct_ms[k][j]);
        buf_puts(b, "}}");
    }
    return buf_puts(b, "}");
}

int report_csv_timing(buf *b, const runner_snapshot *s)
{
    int rc = 0;
    if (s->timing_count) {
        buf_puts(b, "Phase,Responses,Average (ms)");
        for (int j = 0; j < RUNNER_NPCT; j++) buf_printf(b, ",%s", runner_pcts[j].label);
        buf_puts(b, "\r\n");
        for (int k = 0; k < LG_ST_NPHASES; k++) {
            buf_printf(b, "%s,%llu,%.6g", lg_st_phase_name(k), (unsigned long long)s->timing_count,
                       s->timing_avg_ms[k]);
            for (int j = 0; j < RUNNER_NPCT; j++) buf_printf(b, ",%.6g", s->timing_pct_ms[k][j]);
            rc = buf_puts(b, "\r\n");
        }
    }
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
    for (int j = 0; j < RUNNER_NPCT; j++)
        rc |= buf_printf(b, "<th class=\"n\">%s</th>", runner_pcts[j].label);
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
