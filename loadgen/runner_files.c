/*
 * The runner's Locust files and JSON summary: each takes a snapshot (or the
 * history rows kept since the start) and hands it to loadgen/report.c, which
 * only formats. Also the file writers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen/report.h"
#include "loadgen/runner_int.h"

/* Formats a fresh snapshot with fn. */
static int with_snapshot(runner *r, buf *out, int (*fn)(buf *, const runner_snapshot *))
{
    runner_snapshot *s = runner_snapshot_take(r);
    if (!s) return -ENOMEM;
    int rc = fn(out, s);
    runner_snapshot_free(s);
    return rc;
}

int runner_csv_stats(runner *r, buf *out)
{
    return with_snapshot(r, out, report_csv_stats);
}

int runner_csv_failures(runner *r, buf *out)
{
    return with_snapshot(r, out, report_csv_failures);
}

int runner_csv_timing(runner *r, buf *out)
{
    return with_snapshot(r, out, report_csv_timing);
}

int runner_csv_exceptions(runner *r, buf *out)
{
    int rc = report_csv_exceptions(out);
    return rc ? rc : runner_exceptions_csv_rows(r, out);
}

int runner_csv_history(runner *r, buf *out)
{
    size_t cursor = 0;
    return runner_csv_history_append(r, out, &cursor);
}

int runner_csv_history_append(runner *r, buf *out, size_t *cursor)
{
    /* *cursor is 0 before the header, then 1 + the bytes of rows handed out;
     * the rows were formatted once a second as the history grew (runner.c) */
    if (*cursor == 0) report_csv_history_header(out);
    pthread_mutex_lock(&r->mu);
    size_t len = r->history_csv.len, off = *cursor ? *cursor - 1 : 0;
    int rc = 0;
    if (off > len) off = 0; /* a new test restarted the history */
    if (len > off) rc = buf_append(out, r->history_csv.data + off, len - off);
    if (rc == 0) *cursor = len + 1;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int runner_json_summary(runner *r, buf *out)
{
    runner_snapshot *s = runner_snapshot_take_full(r);
    if (!s) return -ENOMEM;
    int rc = report_json(out, s, scenario_source(r->sc), r->nworkers);
    runner_snapshot_free(s);
    if (!rc && runner_has_exceptions(r) && out->len && out->data[out->len - 1] == '}') {
        out->len--; /* a master's workers' exceptions, before the closing brace */
        rc = buf_puts(out, ",\"exceptions\":");
        if (!rc) rc = runner_exceptions_json(r, out);
        if (!rc) rc = buf_puts(out, "}");
    }
    return rc;
}

int runner_write_stream(FILE *f, const buf *b)
{
    if (b->len && fwrite(b->data, 1, b->len, f) != b->len) return -EIO;
    return fflush(f) ? -EIO : 0;
}

int runner_write_file(const char *path, const buf *b)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp) return -ENOMEM;
    snprintf(tmp, n + 16, "%s.tmp%d", path, (int)getpid());
    int rc = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f)
        rc = -errno;
    else {
        rc = runner_write_stream(f, b);
        if (fclose(f) && !rc) rc = -EIO;
        if (!rc && rename(tmp, path)) rc = -errno;
        if (rc) unlink(tmp);
    }
    free(tmp);
    return rc;
}
