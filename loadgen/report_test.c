#include "loadgen/report.h"

#include <criterion/criterion.h>
#include <string.h>

static const char *pyf(buf *b, double v)
{
    buf_reset(b);
    report_py_float(b, v);
    return b->data;
}

Test(report, floats_print_as_python_repr)
{
    buf b = BUF_INIT;
    cr_assert_str_eq(pyf(&b, 0.0), "0.0");
    cr_assert_str_eq(pyf(&b, 3.0), "3.0");
    cr_assert_str_eq(pyf(&b, 2.8936), "2.8936");
    cr_assert_str_eq(pyf(&b, 0.1), "0.1");
    cr_assert_str_eq(pyf(&b, 1.0 / 3.0), "0.3333333333333333");
    cr_assert_str_eq(pyf(&b, 123456.5), "123456.5");
    cr_assert_str_eq(pyf(&b, 1e20), "1e+20");
    buf_free(&b);
}

Test(report, csv_fields_quote_like_python_csv)
{
    buf b = BUF_INIT;
    report_csv_field(&b, "plain");
    buf_puts(&b, "|");
    report_csv_field(&b, "a,b");
    buf_puts(&b, "|");
    report_csv_field(&b, "say \"hi\"");
    cr_assert_str_eq(b.data, "plain|\"a,b\"|\"say \"\"hi\"\"\"");
    buf_free(&b);
}

static runner_snapshot *snap(void)
{
    runner_snapshot *s = calloc(1, sizeof(*s));
    s->entries = calloc(1, sizeof(runner_entry));
    s->errors = calloc(1, sizeof(runner_error));
    s->nentries = 1;
    runner_entry *e = &s->entries[0];
    strcpy(e->method, "GET");
    strcpy(e->name, "/");
    e->num_requests = 88;
    e->avg_ms = 2.9;
    e->max_ms = 10.2;
    e->median_ms = 2;
    e->current_rps = 22.68;
    s->total = *e;
    strcpy(s->total.method, "");
    strcpy(s->total.name, "Aggregated");
    s->nerrors = 1;
    strcpy(s->errors[0].method, "GET");
    strcpy(s->errors[0].name, "/nope");
    strcpy(s->errors[0].error, "HTTPError('404 Client Error: Not Found')");
    s->errors[0].occurrences = 37;
    return s;
}

Test(report, console_table_uses_locusts_columns)
{
    runner_snapshot *s = snap();
    buf b = BUF_INIT;
    report_console_stats(&b, s, 1, 28);
    /* expected lines printed by Locust's own format strings for STATS_NAME_WIDTH 28 */
    const char *want_head =
        "Type     Name                      # reqs      # fails |    Avg     Min "
        "    Max    Med |   req/s  failures/s\n";
    cr_assert_eq(strncmp(b.data, want_head, strlen(want_head)), 0, "%s", b.data);
    cr_assert(strstr(b.data, "GET      /                             88     0(0.00%) |      2      "
                             " 0      10      2 |   22.68        0.00\n"),
              "%s", b.data);
    cr_assert(strstr(b.data, "\n         Aggregated"), "%s", b.data);
    buf_reset(&b);
    report_console_errors(&b, s, 28);
    cr_assert(strstr(b.data, "37                 GET /nope: HTTPError('404 Client Error: Not "
                             "Found')"),
              "%s", b.data);
    buf_free(&b);
    runner_snapshot_free(s);
}

Test(report, name_width_follows_the_terminal)
{
    cr_assert_eq(report_name_width(0), 80);
    cr_assert_eq(report_name_width(100), 20);
    cr_assert_eq(report_name_width(60), 0);
    cr_assert_eq(report_name_width(300), 80);
}
