/*
 * GET /tasks: Locust's task ratio JSON (see webui_ratio.h). The scenario is
 * immutable by now, so this only reads it; nothing is cached because the
 * answer is small and asked for rarely (when the tab is open).
 */
#include "loadgen/webui_ratio.h"

#include <errno.h>
#include <string.h>

#include "loadgen/scenario_int.h"
#include "loadgen/webui_render.h"

void webui_ratio_shares(const scenario *sc, const webui_ratio_input *in, double *share)
{
    size_t nc = sc->nclasses;
    double live_sum = 0, fixed_sum = 0, weight_sum = 0;
    for (size_t k = 0; in->live && in->nlive == nc && k < nc; k++) live_sum += in->live[k];
    if (live_sum > 0 && !in->open_model) {
        for (size_t k = 0; k < nc; k++) share[k] = in->live[k];
        return;
    }
    for (size_t k = 0; k < nc; k++) {
        const sc_class *c = &sc->classes[k];
        fixed_sum += c->fixed_count;
        if (!c->fixed_count && c->weight > 0) weight_sum += c->weight;
    }
    if (in->open_model) {
        for (size_t k = 0; k < nc; k++)
            share[k] = sc->classes[k].weight > 0 ? sc->classes[k].weight : 0;
        return;
    }
    double n = in->users > 0 ? in->users : 1;
    /* Below the fixed counts' sum the fixed classes share the users in
     * proportion to their counts (scenario_split_users); weighted get none. */
    double fixed_scale = n < fixed_sum ? n / fixed_sum : 1;
    double weighted_users = n > fixed_sum ? n - fixed_sum : 0;
    for (size_t k = 0; k < nc; k++) {
        const sc_class *c = &sc->classes[k];
        if (c->fixed_count)
            share[k] = c->fixed_count * fixed_scale;
        else
            share[k] =
                weight_sum > 0 && c->weight > 0 ? weighted_users * c->weight / weight_sum : 0;
    }
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

/* 1 when another running task of c uses t's name with another method: the
 * name alone would then not tell the stats rows apart. */
static int name_has_several_methods(const sc_class *c, size_t t)
{
    const sc_request *r = &c->tasks[t];
    for (size_t u = 0; u < c->ntasks; u++)
        if (task_count(c, u) > 0 && strcmp(c->tasks[u].method, r->method) &&
            !strcmp(task_name(&c->tasks[u]), task_name(r)))
            return 1;
    return 0;
}

/* 1 when tasks t and u of c have the same key in the JSON. */
static int same_key(const sc_class *c, size_t t, size_t u)
{
    const sc_request *a = &c->tasks[t], *b = &c->tasks[u];
    if (strcmp(task_name(a), task_name(b))) return 0;
    /* same name: one key unless the name is split by method */
    return !strcmp(a->method, b->method) || !name_has_several_methods(c, t);
}

static int put_key(buf *out, const sc_class *c, size_t t)
{
    const sc_request *r = &c->tasks[t];
    if (!name_has_several_methods(c, t)) return webui_json_str(out, task_name(r));
    buf k = BUF_INIT;
    int rc = buf_printf(&k, "%s %s", r->method, task_name(r));
    if (!rc) rc = webui_json_str(out, k.data);
    buf_free(&k);
    return rc;
}

static int render_class_tasks(const sc_class *c, double parent, buf *out)
{
    double total = 0;
    for (size_t t = 0; t < c->ntasks; t++) total += task_count(c, t);
    int rc = buf_puts(out, "{");
    int first = 1;
    for (size_t t = 0; t < c->ntasks && !rc; t++) {
        if (task_count(c, t) <= 0) continue;
        size_t u = 0;
        while (u < t && !(task_count(c, u) > 0 && same_key(c, t, u))) u++;
        if (u < t) continue; /* counted with its first occurrence */
        double sum = 0;
        for (u = t; u < c->ntasks; u++)
            if (task_count(c, u) > 0 && same_key(c, t, u)) sum += task_count(c, u);
        if (!first) rc |= buf_puts(out, ",");
        first = 0;
        rc |= put_key(out, c, t);
        rc |= buf_printf(out, ":{\"ratio\":%.15g}", total > 0 ? parent * sum / total : 0);
    }
    rc |= buf_puts(out, "}");
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
        rc |= webui_json_str(out, c->name);
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
