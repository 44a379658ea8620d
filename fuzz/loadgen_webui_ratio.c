/*
 * Fuzzes GET /tasks and the report's Final ratio (loadgen/webui/ratio.c):
 * for any scenario that parses, after any -T/-E/--equal-weights and any user
 * count, the JSON must parse, every ratio be a finite number in [0, 1], and
 * nothing crash or leak. Input: byte 0 picks the options (bit 0 equal
 * weights, bit 1 -T a, bit 2 -E b, bit 3 open model), byte 1 the user count,
 * bytes 2.. live per-class counts when bit 4 is set, the rest is the file.
 * With bit 5 the rest is instead /tasks's JSON for a Python run's Final ratio
 * (webui_render_tasks_html_json): any text, no crash, no leak.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/buf.h"
#include "lib/json.h"
#include "loadgen/scenario_int.h"
#include "loadgen/webui/ratio.h"

/* obj maps names to {"ratio": r[, "tasks": {...}]}: every r is a number in
 * [0, 1] and the ratios of one level add up to at most 1. */
static void check_level(const json_doc *d, int obj)
{
    if (obj < 0 || d->tok[obj].type != JSON_OBJECT) __builtin_trap();
    double sum = 0;
    uint32_t i = (uint32_t)obj + 1;
    for (uint32_t m = 0; m < d->tok[obj].count; m++) {
        int val = (int)i + 1;
        double r;
        if (json_num_f64(d, json_obj_get(d, val, "ratio"), &r) || !isfinite(r) || r < 0 || r > 1)
            __builtin_trap();
        sum += r;
        int tasks = json_obj_get(d, val, "tasks");
        if (tasks >= 0) check_level(d, tasks);
        i = d->tok[val].next;
    }
    if (sum > 1 + 1e-9) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    uint8_t flags = data[0];
    int users = data[1];
    int live[4] = {data[2] & 15, data[2] >> 4, data[3] & 15, data[3] >> 4};
    if (flags & 32) {
        buf h = BUF_INIT;
        webui_render_tasks_html_json((const char *)data + 4, size - 4, &h);
        buf_free(&h);
        return 0;
    }
    char err[512];
    scenario *sc = scenario_parse((const char *)data + 4, size - 4, "fuzz.ini", err, sizeof(err));
    if (!sc) return 0;
    const char *tag_a[] = {"a"}, *tag_b[] = {"b"};
    scenario_options o = {.tags = tag_a,
                          .ntags = (flags & 2) ? 1 : 0,
                          .exclude_tags = tag_b,
                          .nexclude_tags = (flags & 4) ? 1 : 0,
                          .equal_weights = flags & 1};
    if (scenario_apply_options(sc, &o, NULL, err, sizeof(err)) == -ENOMEM) {
        scenario_free(sc);
        return 0;
    }
    size_t nc = scenario_class_count(sc);
    double *share = calloc(nc ? nc : 1, sizeof(double));
    webui_ratio_input in = {.users = users,
                            .open_model = (flags & 8) != 0,
                            .live = (flags & 16) ? live : NULL,
                            .nlive = nc <= 4 ? nc : 0};
    buf b = BUF_INIT;
    if (share) {
        webui_ratio_shares(sc, &in, share);
        if (!webui_render_tasks_json(sc, share, &b)) {
            json_doc d;
            if (json_parse(&d, b.data, b.len, NULL, err, sizeof(err))) __builtin_trap();
            check_level(&d, json_obj_get(&d, 0, "per_class"));
            check_level(&d, json_obj_get(&d, 0, "total"));
            json_doc_free(&d);
        }
        buf_reset(&b);
        webui_render_tasks_html(sc, share, &b);
    }
    buf_free(&b);
    free(share);
    scenario_free(sc);
    return 0;
}
