/*
 * webui_ratio: the JSON of GET /tasks, Locust's "Current ratio": how the load
 * splits over the user classes and, within each class, over its tasks.
 *
 *   {"per_class": {"Class": {"ratio": r, "tasks": {"name": {"ratio": t}}}},
 *    "total":     {"Class": {"ratio": r, "tasks": {"name": {"ratio": r*t}}}}}
 *
 * as Locust 2.12's get_ratio() builds it. It is computed from the scenario as
 * the run uses it: after -T/-E filtering and --equal-weights
 * (scenario_apply_options() has already changed the scenario in place).
 * Pure functions over the data given (no runner calls, no I/O).
 */
#ifndef LOADGEN_WEBUI_RATIO_H
#define LOADGEN_WEBUI_RATIO_H

#include <stddef.h>

#include "lib/buf.h"
#include "loadgen/scenario.h"

/* Where the class shares come from (what the ratio of a class means). */
typedef struct webui_ratio_input {
    int users;       /* the test's user count (-u or the form's); < 1 counts as 1 */
    int open_model;  /* 1: --rate picks a class per arrival, by weight alone */
    const int *live; /* users running now per class (scenario order), or NULL */
    size_t nlive;    /* slots in live; ignored unless it equals the class count */
} webui_ratio_input;

/* Writes one share per class (any scale; only proportions matter) into share
 * (scenario_class_count() slots):
 *  - users running (live sums above 0, closed model): their counts, as
 *    Locust 2.12 does with runner.user_classes_count;
 *  - no user running: the users each class gets when `users` are spawned
 *    (scenario_split_users(), as the runner splits them and as Locust's
 *    --show-task-ratio rounds them): fixed_count classes first, the rest by
 *    weight;
 *  - open model: the weights (fixed_count plays no part there).
 */
void webui_ratio_shares(const scenario *sc, const webui_ratio_input *in, double *share);

/* Appends the /tasks JSON for the given class shares (share may be NULL: all
 * classes 0, as Locust answers before a run). Within a class a weighted
 * task's ratio is its weight over the class's total (weight-0 tasks never run
 * and are left out, as Locust leaves them out); a sequential class runs each
 * task once per loop, so each has 1/n whatever its weight. Tasks are named by
 * their stats row (the task's name, else its path as written); tasks sharing
 * a row add up, and when one name is used with several methods the key is
 * "METHOD name". Returns 0 or -ENOMEM. */
int webui_render_tasks_json(const scenario *sc, const double *share, buf *out);

/* The same two trees as HTML nested lists with percentages (the HTML
 * report's "Final ratio", as in Locust's report): a <section> with
 * ul.ratio-list#final-per-class and ul.ratio-list#final-total, names escaped.
 * Returns 0 or -ENOMEM. */
int webui_render_tasks_html(const scenario *sc, const double *share, buf *out);
/* The same section from /tasks's JSON (a Python locustfile's, which has no
 * scenario): classes and tasks in the JSON's order. Text that is not such a
 * JSON object writes nothing. Returns 0 or -ENOMEM. */
int webui_render_tasks_html_json(const char *json, size_t len, buf *out);

#endif
