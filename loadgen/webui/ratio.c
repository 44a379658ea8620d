/*
 * GET /tasks: Locust's task ratio JSON (see webui/ratio.h). The scenario is
 * immutable by now, so this only reads it; nothing is cached because the
 * answer is small and asked for rarely (when the tab is open).
 */
#include "loadgen/webui/ratio.h"

#include "lib/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/scenario_int.h"
#include "loadgen/webui/render.h"

void webui_ratio_shares(const scenario *sc, const webui_ratio_input *in, double *share)
{
    size_t nc = sc->nclasses;
    double live_sum = 0;
    for (size_t k = 0; in->live && in->nlive == nc && k < nc; k++) live_sum += in->live[k];
    if (live_sum > 0 && !in->open_model) {
        for (size_t k = 0; k < nc; k++) share[k] = in->live[k];
        return;
    }
    int *split = in->open_model ? NULL : calloc(nc ? nc : 1, sizeof(int));
    /* the runner's own split, so the plan is exactly what a full spawn runs */
    if (split && scenario_split_users(sc, in->users > 0 ? in->users : 1, split) > 0) {
        for (size_t k = 0; k < nc; k++) share[k] = split[k];
    } else {
        /* open model (or no memory for the split): each arrival picks a class by weight */
        for (size_t k = 0; k < nc; k++)
            share[k] = sc->classes[k].weight > 0 ? sc->classes[k].weight : 0;
    }
    free(split);
}

/* How often task t of c runs per pick (weighted) or per loop (sequential);
 * 0: never (a weight-0 task of a weighted class). */
static double task_count(const sc_class *c, size_t t)
{
    if (c->sequential) return 1;
    return c->tasks[t].weight > 0 ? c->tasks[t].weight : 0;
}

static const char *task_name(const sc_request *r)
{
    return r->name ? r->name : r->path_raw;
}

/* Per-class work space: rows[t] is the first running task with t's stats
 * row (SIZE_MAX: t never runs), sum[t] that row's count, split[t] 1 when the
 * row's name is used by another row of the class with another method. */
typedef struct ratio_rows {
    size_t *rows;
    double *sum;
    unsigned char *split;
} ratio_rows;

/* Groups the tasks of c by stats row: O(n^2) integer compares, strcmp only
 * between distinct rows, so a class of thousands of tasks stays quick. */
static int group_rows(const sc_class *c, ratio_rows *g)
{
    size_t n = c->ntasks ? c->ntasks : 1;
    char *mem = calloc(n, sizeof(size_t) + sizeof(double) + 1);
    if (!mem) return -ENOMEM;
    g->rows = (size_t *)mem;
    g->sum = (double *)(mem + n * sizeof(size_t));
    g->split = (unsigned char *)(mem + n * (sizeof(size_t) + sizeof(double)));
    for (size_t t = 0; t < c->ntasks; t++) {
        g->rows[t] = SIZE_MAX;
        if (task_count(c, t) <= 0) continue;
        g->rows[t] = t;
        for (size_t u = 0; u < t; u++)
            if (g->rows[u] == u && c->tasks[u].entry == c->tasks[t].entry) {
                g->rows[t] = u;
                break;
            }
        g->sum[g->rows[t]] += task_count(c, t);
    }
    for (size_t t = 0; t < c->ntasks; t++)
        for (size_t u = 0; u < c->ntasks && g->rows[t] == t && !g->split[t]; u++)
            g->split[t] = u != t && g->rows[u] == u &&
                          !strcmp(task_name(&c->tasks[u]), task_name(&c->tasks[t]));
    return 0;
}

static int put_key(buf *out, const sc_request *r, int split)
{
    if (!split) return buf_json_cstr(out, task_name(r));
    buf k = BUF_INIT;
    int rc = buf_printf(&k, "%s %s", r->method, task_name(r));
    if (!rc) rc = buf_json_cstr(out, k.data);
    buf_free(&k);
    return rc;
}

static int render_class_tasks(const sc_class *c, double parent, buf *out)
{
    ratio_rows g;
    if (group_rows(c, &g)) return -ENOMEM;
    double total = 0;
    for (size_t t = 0; t < c->ntasks; t++) total += task_count(c, t);
    int rc = buf_puts(out, "{");
    int first = 1;
    for (size_t t = 0; t < c->ntasks && !rc; t++) {
        if (g.rows[t] != t) continue; /* never runs, or counted with its row's first task */
        if (!first) rc |= buf_puts(out, ",");
        first = 0;
        rc |= put_key(out, &c->tasks[t], g.split[t]);
        rc |= buf_printf(out, ":{\"ratio\":%.15g}", total > 0 ? parent * g.sum[t] / total : 0);
    }
    rc |= buf_puts(out, "}");
    free(g.rows);
    return rc ? -ENOMEM : 0;
}

/* One of the two halves: per_class (tasks within their class) or total (the
 * class's ratio times the task's). */
static int render_half(const scenario *sc, const double *share, double share_sum, int total,
                       buf *out)
{
    int rc = buf_puts(out, "{");
    for (size_t k = 0; k < sc->nclasses && !rc; k++) {
        const sc_class *c = &sc->classes[k];
        double r = share && share_sum > 0 ? share[k] / share_sum : 0;
        if (k) rc |= buf_puts(out, ",");
        rc |= buf_json_cstr(out, c->name);
        rc |= buf_printf(out, ":{\"ratio\":%.15g,\"tasks\":", r);
        rc |= render_class_tasks(c, total ? r : 1.0, out);
        rc |= buf_puts(out, "}");
    }
    rc |= buf_puts(out, "}");
    return rc ? -ENOMEM : 0;
}

int webui_render_tasks_json(const scenario *sc, const double *share, buf *out)
{
    double sum = 0;
    for (size_t k = 0; share && k < sc->nclasses; k++) sum += share[k] > 0 ? share[k] : 0;
    int rc = buf_puts(out, "{\"per_class\":");
    rc |= render_half(sc, share, sum, 0, out);
    rc |= buf_puts(out, ",\"total\":");
    rc |= render_half(sc, share, sum, 1, out);
    rc |= buf_puts(out, "}");
    return rc ? -ENOMEM : 0;
}

static int html_item(buf *out, double ratio, const char *name, const char *method)
{
    int rc = buf_printf(out, "<li><span class=\"pct\">%.1f%%</span> <span class=\"rname\">",
                        ratio * 100);
    if (method) rc |= webui_html_escape(out, method) | buf_puts(out, " ");
    return rc | webui_html_escape(out, name) | buf_puts(out, "</span>");
}

static int html_half(const scenario *sc, const double *share, double share_sum, int total, buf *out)
{
    int rc = 0;
    for (size_t k = 0; k < sc->nclasses && !rc; k++) {
        const sc_class *c = &sc->classes[k];
        double r = share && share_sum > 0 ? share[k] / share_sum : 0, parent = total ? r : 1.0;
        ratio_rows g;
        if (group_rows(c, &g)) return -ENOMEM;
        double sum = 0;
        for (size_t t = 0; t < c->ntasks; t++) sum += task_count(c, t);
        rc |= html_item(out, r, c->name, NULL) | buf_puts(out, "<ul>");
        for (size_t t = 0; t < c->ntasks; t++) {
            if (g.rows[t] != t) continue;
            const sc_request *q = &c->tasks[t];
            rc |= html_item(out, sum > 0 ? parent * g.sum[t] / sum : 0, task_name(q),
                            g.split[t] ? q->method : NULL);
            rc |= buf_puts(out, "</li>");
        }
        free(g.rows);
        rc |= buf_puts(out, "</ul></li>\n");
    }
    return rc ? -ENOMEM : 0;
}

/* The "Final ratio" section around its two lists (per class, then total). */
static const char FINAL_HEAD[] =
    "<section id=\"final-ratio\"><h2>Final ratio</h2><div class=\"ratios\">"
    "<div class=\"ratio-card\"><h3>Ratio per User class</h3>"
    "<ul id=\"final-per-class\" class=\"ratio-list\">\n";
static const char FINAL_MID[] = "</ul></div><div class=\"ratio-card\"><h3>Total ratio</h3>"
                                "<ul id=\"final-total\" class=\"ratio-list\">\n";
static const char FINAL_TAIL[] = "</ul></div></div></section>\n";

/* One half of /tasks's JSON ("per_class" or "total", the object at half):
 * each class's ratio and, under it, its tasks' ratios, as html_half writes
 * them from a scenario. Members that are not so shaped are skipped. */
static int html_half_json(const json_doc *d, int half, buf *out)
{
    int rc = 0;
    if (half < 0 || d->tok[half].type != JSON_OBJECT) return 0;
    for (uint32_t k = (uint32_t)half + 1; k < d->tok[half].next && !rc; k = d->tok[k + 1].next) {
        char name[256];
        double r = 0;
        int v = (int)k + 1, tasks = json_obj_get(d, v, "tasks");
        if (d->tok[v].type != JSON_OBJECT || json_str_copy(d, (int)k, name, sizeof(name)) < 0 ||
            json_num_f64(d, json_obj_get(d, v, "ratio"), &r) || tasks < 0 ||
            d->tok[tasks].type != JSON_OBJECT)
            continue;
        rc |= html_item(out, r, name, NULL) | buf_puts(out, "<ul>");
        for (uint32_t t = (uint32_t)tasks + 1; t < d->tok[tasks].next && !rc;
             t = d->tok[t + 1].next) {
            double tr = 0;
            if (d->tok[t + 1].type != JSON_OBJECT ||
                json_str_copy(d, (int)t, name, sizeof(name)) < 0 ||
                json_num_f64(d, json_obj_get(d, (int)t + 1, "ratio"), &tr))
                continue;
            rc |= html_item(out, tr, name, NULL) | buf_puts(out, "</li>");
        }
        rc |= buf_puts(out, "</ul></li>\n");
    }
    return rc ? -ENOMEM : 0;
}

int webui_render_tasks_html_json(const char *json, size_t len, buf *out)
{
    json_doc d;
    if (json_parse(&d, json, len, NULL, NULL, 0))
        return 0; /* no section rather than a broken one */
    int rc = 0;
    if (d.tok[0].type == JSON_OBJECT) {
        rc = buf_puts(out, FINAL_HEAD);
        rc |= html_half_json(&d, json_obj_get(&d, 0, "per_class"), out);
        rc |= buf_puts(out, FINAL_MID);
        rc |= html_half_json(&d, json_obj_get(&d, 0, "total"), out);
        rc |= buf_puts(out, FINAL_TAIL);
    }
    json_doc_free(&d);
    return rc ? -ENOMEM : 0;
}

int webui_render_tasks_html(const scenario *sc, const double *share, buf *out)
{
    double sum = 0;
    for (size_t k = 0; share && k < sc->nclasses; k++) sum += share[k] > 0 ? share[k] : 0;
    int rc = buf_puts(out, FINAL_HEAD);
    rc |= html_half(sc, share, sum, 0, out);
    rc |= buf_puts(out, FINAL_MID);
    rc |= html_half(sc, share, sum, 1, out);
    rc |= buf_puts(out, FINAL_TAIL);
    return rc ? -ENOMEM : 0;
}
