/*
 * The web UI's backend over an ini scenario's runner: every call goes
 * straight to the runner's thread-safe API (loadgen/runner.h).
 */
#include "loadgen/webui/webui.h"

static runner_snapshot *rb_snapshot(void *ctx)
{
    return runner_snapshot_take(ctx);
}

static size_t rb_history_len(void *ctx)
{
    return runner_history_len(ctx);
}

static size_t rb_history_get(void *ctx, size_t from, runner_history_point *out, size_t max)
{
    return runner_history_get(ctx, from, out, max);
}

static int rb_start(void *ctx, const runner_start_params *p, char *err, size_t errlen)
{
    return runner_start(ctx, p, err, errlen);
}

static void rb_stop(void *ctx)
{
    runner_stop(ctx);
}

static void rb_reset(void *ctx)
{
    runner_reset_stats(ctx);
}

static runner_state rb_state(void *ctx)
{
    return runner_get_state(ctx);
}

static int rb_csv(void *ctx, webui_csv what, buf *out)
{
    switch (what) {
    case WEBUI_CSV_STATS: return runner_csv_stats(ctx, out);
    case WEBUI_CSV_HISTORY: return runner_csv_history(ctx, out);
    case WEBUI_CSV_FAILURES: return runner_csv_failures(ctx, out);
    case WEBUI_CSV_EXCEPTIONS: return runner_csv_exceptions(ctx, out);
    }
    return -1;
}

static int rb_summary(void *ctx, buf *out)
{
    return runner_json_summary(ctx, out);
}

static int rb_exceptions_json(void *ctx, buf *out)
{
    int rc = buf_puts(out, "{\"exceptions\":");
    if (!rc) rc = runner_exceptions_json(ctx, out);
    return rc ? rc : buf_puts(out, "}");
}

static int rb_exceptions_html(void *ctx, buf *out)
{
    return runner_exceptions_html(ctx, out);
}

webui_backend webui_backend_runner(runner *r)
{
    int exc = runner_has_exceptions(r); /* a master lists its workers' exceptions */
    return (webui_backend){.ctx = r,
                           .exceptions_json = exc ? rb_exceptions_json : NULL,
                           .exceptions_html = exc ? rb_exceptions_html : NULL,
                           .snapshot = rb_snapshot,
                           .history_len = rb_history_len,
                           .history_get = rb_history_get,
                           .start = rb_start,
                           .stop = rb_stop,
                           .reset = rb_reset,
                           .state = rb_state,
                           .csv = rb_csv,
                           .summary = rb_summary,
                           .sc = runner_scenario(r)};
}
