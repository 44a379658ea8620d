/*
 * What the command line does to a parsed scenario before a run (Locust's task
 * tags, --equal-weights) and how users are split over the classes (weights and
 * fixed_count). Filtering happens once, in place, before the scenario is
 * shared: the worker threads never see a filtered-out task.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/scenario_int.h"

#define TAG_SEPS " \t,"

static int has_tag(const sc_request *r, const char *tag, size_t len)
{
    for (size_t i = 0; i < r->ntags; i++)
        if (strlen(r->tags[i]) == len && !memcmp(r->tags[i], tag, len)) return 1;
    return 0;
}

int sc_tags_add(sc_request *r, const char *v)
{
    int added = 0;
    for (const char *p = v + strspn(v, TAG_SEPS); *p; p += strspn(p, TAG_SEPS)) {
        size_t len = strcspn(p, TAG_SEPS);
        added = 1;
        if (!has_tag(r, p, len)) {
            char **n = realloc(r->tags, (r->ntags + 1) * sizeof(*n));
            if (!n) return -ENOMEM;
            r->tags = n;
            if (!(r->tags[r->ntags] = strndup(p, len))) return -ENOMEM;
            r->ntags++;
        }
        p += len;
    }
    return added ? 0 : -EINVAL;
}

/* 1 when r has a tag named in any of the n lists (each a comma/space list). */
static int tagged_any(const sc_request *r, const char *const *lists, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *p = lists[i] + strspn(lists[i], TAG_SEPS);
        for (; *p; p += strspn(p, TAG_SEPS)) {
            size_t len = strcspn(p, TAG_SEPS);
            if (has_tag(r, p, len)) return 1;
            p += len;
        }
    }
    return 0;
}

/* Locust's filter_tasks_by_tags: with -T a task needs one of its tags; with
 * -E it must have none of those. */
static int task_passes(const sc_request *r, const scenario_options *o)
{
    if (o->ntags && !tagged_any(r, o->tags, o->ntags)) return 0;
    return !tagged_any(r, o->exclude_tags, o->nexclude_tags);
}

/* Would class c still run something? Weight-0 tasks never run when tasks are
 * picked by weight (Locust leaves them out), so they do not count. */
static int class_survives(const sc_class *c, const scenario_options *o)
{
    for (size_t t = 0; t < c->ntasks; t++)
        if (task_passes(&c->tasks[t], o) && (c->sequential || c->tasks[t].weight > 0)) return 1;
    return 0;
}

static void join_lists(buf *b, const char *flag, const char *const *lists, size_t n)
{
    if (!n) return;
    buf_printf(b, "%s%s", b->len ? " " : "", flag);
    for (size_t i = 0; i < n; i++) buf_printf(b, " %s", lists[i]);
}

static void no_task_error(const scenario_options *o, char *err, size_t errlen)
{
    buf b = BUF_INIT;
    join_lists(&b, "-T", o->tags, o->ntags);
    join_lists(&b, "-E", o->exclude_tags, o->nexclude_tags);
    snprintf(err, errlen, "no user class has a task left after filtering by tags (%s)",
             b.data ? b.data : "out of memory");
    buf_free(&b);
}

/* Notes every -T tag that no task of the file carries (a likely typo). */
static void note_unused_tags(const scenario *sc, const scenario_options *o, buf *notes)
{
    for (size_t i = 0; notes && i < o->ntags; i++) {
        const char *p = o->tags[i] + strspn(o->tags[i], TAG_SEPS);
        for (; *p; p += strspn(p, TAG_SEPS)) {
            size_t len = strcspn(p, TAG_SEPS);
            int found = 0;
            for (size_t k = 0; k < sc->nclasses && !found; k++)
                for (size_t t = 0; t < sc->classes[k].ntasks && !found; t++)
                    found = has_tag(&sc->classes[k].tasks[t], p, len);
            if (!found) buf_printf(notes, "tag '%.*s' (-T) is on no task\n", (int)len, p);
            p += len;
        }
    }
}

/* Keeps the tasks of c that pass, in file order. */
static void filter_class(sc_class *c, const scenario_options *o)
{
    size_t kept = 0;
    for (size_t t = 0; t < c->ntasks; t++) {
        if (task_passes(&c->tasks[t], o))
            c->tasks[kept++] = c->tasks[t];
        else
            sc_request_free(&c->tasks[t]);
    }
    c->ntasks = kept;
    c->total_weight = 0;
    for (size_t t = 0; t < kept; t++) c->total_weight += c->tasks[t].weight;
}

/* Stats rows are rebuilt so that a filtered-out task leaves no empty row. */
static int rebuild_entries(scenario *sc)
{
    sc->nentries = 0;
    for (size_t k = 0; k < sc->nclasses; k++) {
        sc_class *c = &sc->classes[k];
        for (int pass = 0; pass < 2; pass++) {
            sc_request *rs = pass ? c->tasks : c->on_start;
            size_t n = pass ? c->ntasks : c->non_start;
            for (size_t i = 0; i < n; i++) {
                rs[i].entry =
                    sc_entry_of(sc, rs[i].method, rs[i].name ? rs[i].name : rs[i].path_raw);
                if (rs[i].entry < 0) return -ENOMEM;
            }
        }
    }
    return 0;
}

static void equalize(scenario *sc)
{
    /* Locust drops weight-0 classes and tasks before equalizing: they stay 0. */
    for (size_t k = 0; k < sc->nclasses; k++) {
        sc_class *c = &sc->classes[k];
        if (c->weight > 0) c->weight = 1;
        c->total_weight = 0;
        for (size_t t = 0; t < c->ntasks; t++) {
            if (c->tasks[t].weight > 0) c->tasks[t].weight = 1;
            c->total_weight += c->tasks[t].weight;
        }
    }
}

static int class_named(const scenario_options *o, const char *name)
{
    for (size_t i = 0; i < o->nclasses; i++)
        if (!strcmp(o->classes[i], name)) return 1;
    return 0;
}

/* Locust's positional UserClass arguments: every name must be a class of the
 * file ("Unknown User(s): X", nothing changed), then the others are dropped
 * (the kept ones stay in file order; a name given twice counts once). */
static int select_classes(scenario *sc, const scenario_options *o, char *err, size_t errlen)
{
    buf b = BUF_INIT;
    for (size_t i = 0; i < o->nclasses; i++) {
        size_t k = 0;
        while (k < sc->nclasses && strcmp(sc->classes[k].name, o->classes[i])) k++;
        if (k == sc->nclasses) buf_printf(&b, "%s%s", b.len ? ", " : "", o->classes[i]);
    }
    if (b.len) {
        buf_puts(&b, " (the scenario has ");
        for (size_t k = 0; k < sc->nclasses; k++)
            buf_printf(&b, "%s%s", k ? ", " : "", sc->classes[k].name);
        buf_puts(&b, ")");
        snprintf(err, errlen, "Unknown User(s): %s", b.data ? b.data : "out of memory");
        buf_free(&b);
        return -ENOENT;
    }
    buf_free(&b);
    size_t kept = 0;
    for (size_t k = 0; k < sc->nclasses; k++) {
        if (class_named(o, sc->classes[k].name))
            sc->classes[kept++] = sc->classes[k];
        else
            sc_class_free(&sc->classes[k]);
    }
    sc->nclasses = kept;
    if (rebuild_entries(sc)) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

int scenario_apply_options(scenario *sc, const scenario_options *o, buf *notes, char *err,
                           size_t errlen)
{
    if (errlen) err[0] = '\0';
    if (o->nclasses) {
        int rc = select_classes(sc, o, err, errlen);
        if (rc) return rc;
    }
    int filtering = o->ntags || o->nexclude_tags;
    if (filtering) {
        size_t alive = 0;
        for (size_t k = 0; k < sc->nclasses; k++) {
            const sc_class *c = &sc->classes[k];
            alive += class_survives(c, o) && (c->weight > 0 || c->fixed_count > 0);
        }
        note_unused_tags(sc, o, notes);
        if (!alive) {
            no_task_error(o, err, errlen);
            return -ENOENT;
        }
        size_t kept = 0;
        for (size_t k = 0; k < sc->nclasses; k++) {
            sc_class *c = &sc->classes[k];
            if (class_survives(c, o)) {
                filter_class(c, o);
                sc->classes[kept++] = *c;
                continue;
            }
            if (notes)
                buf_printf(notes, "user class '%s' has no task left after filtering by tags%s\n",
                           c->name, c->fixed_count ? " (its fixed_count is dropped too)" : "");
            sc_class_free(c);
        }
        sc->nclasses = kept;
        if (rebuild_entries(sc)) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    }
    if (o->equal_weights) equalize(sc);
    return 0;
}

/* Largest-remainder apportionment of n over the classes with w[k] > 0;
 * ties go to the earlier class. Adds into out. */
static void apportion(int n, const double *w, size_t nc, int *out, double *frac)
{
    double sum = 0;
    for (size_t k = 0; k < nc; k++) sum += w[k] > 0 ? w[k] : 0;
    if (n <= 0 || sum <= 0) return;
    int used = 0;
    for (size_t k = 0; k < nc; k++) {
        double ideal = w[k] > 0 ? n * (w[k] / sum) : 0;
        int whole = (int)floor(ideal);
        out[k] += whole;
        frac[k] = w[k] > 0 ? ideal - whole : -1;
        used += whole;
    }
    while (used < n) {
        size_t best = 0;
        for (size_t k = 1; k < nc; k++)
            if (frac[k] > frac[best]) best = k;
        if (frac[best] < 0) break;
        out[best]++;
        frac[best] = -1;
        used++;
    }
}

int scenario_split_users(const scenario *sc, int n, int *per_class)
{
    size_t nc = sc->nclasses;
    double *w = calloc(nc ? nc * 2 : 1, sizeof(double));
    if (!w) return 0;
    double *frac = w + nc;
    long fixed_sum = 0;
    for (size_t k = 0; k < nc; k++) {
        per_class[k] = 0;
        fixed_sum += sc->classes[k].fixed_count;
        w[k] = sc->classes[k].fixed_count;
    }
    int fixed_n = n < fixed_sum ? n : (int)fixed_sum;
    apportion(fixed_n, w, nc, per_class, frac);
    for (size_t k = 0; k < nc; k++) w[k] = sc->classes[k].fixed_count ? 0 : sc->classes[k].weight;
    apportion(n - fixed_n, w, nc, per_class, frac);
    free(w);
    int placed = 0;
    for (size_t k = 0; k < nc; k++) placed += per_class[k];
    return placed;
}

int scenario_class_fixed_count(const scenario *sc, size_t i)
{
    return i < sc->nclasses ? sc->classes[i].fixed_count : 0;
}
