#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "loadgen/scenario_int.h"

/* Two classes: A (tasks web+slow, api, untagged) and B (one api task). */
static const char *two_classes = "[user A]\n"
                                 "[on_start A]\npath = /login\n"
                                 "[task]\npath = /page\ntags = web slow\n"
                                 "[task]\npath = /api/a\nweight = 3\ntags = api\n"
                                 "[task]\npath = /plain\n"
                                 "[user B]\nweight = 2\n"
                                 "[task]\npath = /api/b\ntags = api, b\n";

static scenario *load(const char *text)
{
    char err[256];
    scenario *sc = scenario_parse(text, strlen(text), "t.ini", err, sizeof(err));
    cr_assert_not_null(sc, "%s", err);
    return sc;
}

static int apply(scenario *sc, const char **tags, size_t nt, const char **ex, size_t ne, int eq,
                 buf *notes, char *err)
{
    scenario_options o = {
        .tags = tags, .ntags = nt, .exclude_tags = ex, .nexclude_tags = ne, .equal_weights = eq};
    return scenario_apply_options(sc, &o, notes, err, 256);
}

static const char *path_of(const sc_request *r)
{
    return r->path_raw;
}

Test(scenario_opts, include_tags_keep_only_tasks_having_one_of_them)
{
    scenario *sc = load(two_classes);
    const char *tags[] = {"web", "nosuch"};
    char err[256];
    buf notes = BUF_INIT;
    cr_assert_eq(apply(sc, tags, 2, NULL, 0, 0, &notes, err), 0, "%s", err);
    cr_assert_eq(sc->nclasses, 1, "B has no web task: removed");
    cr_assert_str_eq(sc->classes[0].name, "A");
    cr_assert_eq(sc->classes[0].ntasks, 1);
    cr_assert_str_eq(path_of(&sc->classes[0].tasks[0]), "/page");
    cr_assert_eq(sc->classes[0].non_start, 1, "on_start is not a task: never filtered");
    cr_assert_eq(sc->classes[0].total_weight, 1);
    cr_assert(strstr(notes.data, "user class 'B' has no task left"), "%s", notes.data);
    cr_assert(strstr(notes.data, "tag 'nosuch' (-T) is on no task"), "%s", notes.data);
    /* stats rows: /login and /page only */
    cr_assert_eq(sc->nentries, 2);
    cr_assert_str_eq(sc->entries[sc->classes[0].tasks[0].entry].name, "/page");
    cr_assert_str_eq(sc->entries[sc->classes[0].on_start[0].entry].name, "/login");
    buf_free(&notes);
    scenario_free(sc);
}

Test(scenario_opts, comma_lists_in_one_value_count_as_several_tags)
{
    scenario *sc = load(two_classes);
    const char *tags[] = {"slow,b"};
    char err[256];
    cr_assert_eq(apply(sc, tags, 1, NULL, 0, 0, NULL, err), 0, "%s", err);
    cr_assert_eq(sc->nclasses, 2);
    cr_assert_eq(sc->classes[0].ntasks, 1);
    cr_assert_str_eq(path_of(&sc->classes[0].tasks[0]), "/page");
    cr_assert_str_eq(path_of(&sc->classes[1].tasks[0]), "/api/b");
    scenario_free(sc);
}

Test(scenario_opts, exclude_tags_remove_tasks_having_any_of_them)
{
    scenario *sc = load(two_classes);
    const char *ex[] = {"slow", "b"};
    char err[256];
    cr_assert_eq(apply(sc, NULL, 0, ex, 2, 0, NULL, err), 0, "%s", err);
    cr_assert_eq(sc->nclasses, 1);
    cr_assert_eq(sc->classes[0].ntasks, 2, "untagged tasks survive -E");
    cr_assert_str_eq(path_of(&sc->classes[0].tasks[0]), "/api/a");
    cr_assert_str_eq(path_of(&sc->classes[0].tasks[1]), "/plain");
    cr_assert_eq(sc->classes[0].total_weight, 4);
    scenario_free(sc);
}

Test(scenario_opts, include_and_exclude_together_need_both)
{
    scenario *sc = load(two_classes);
    const char *tags[] = {"api"}, *ex[] = {"b"};
    char err[256];
    cr_assert_eq(apply(sc, tags, 1, ex, 1, 0, NULL, err), 0, "%s", err);
    cr_assert_eq(sc->nclasses, 1);
    cr_assert_eq(sc->classes[0].ntasks, 1);
    cr_assert_str_eq(path_of(&sc->classes[0].tasks[0]), "/api/a");
    scenario_free(sc);
}

Test(scenario_opts, no_task_left_is_an_error_naming_the_tags_and_changes_nothing)
{
    scenario *sc = load(two_classes);
    const char *tags[] = {"web"}, *ex[] = {"slow"};
    char err[256];
    cr_assert_eq(apply(sc, tags, 1, ex, 1, 0, NULL, err), -ENOENT);
    cr_assert(strstr(err, "no user class has a task left"), "%s", err);
    cr_assert(strstr(err, "-T web -E slow"), "%s", err);
    cr_assert_eq(sc->nclasses, 2);
    cr_assert_eq(sc->classes[0].ntasks, 3);
    scenario_free(sc);
}

Test(scenario_opts, a_class_left_with_only_weight_0_tasks_is_removed)
{
    scenario *sc = load("[user A]\n[task]\npath = /z\nweight = 0\ntags = t\n"
                        "[task]\npath = /x\n"
                        "[user B]\n[task]\npath = /y\ntags = t\n");
    const char *tags[] = {"t"};
    char err[256];
    cr_assert_eq(apply(sc, tags, 1, NULL, 0, 0, NULL, err), 0, "%s", err);
    cr_assert_eq(sc->nclasses, 1);
    cr_assert_str_eq(sc->classes[0].name, "B");
    scenario_free(sc);
}

Test(scenario_opts, only_weight_0_classes_left_is_an_error)
{
    scenario *sc = load("[user A]\nweight = 0\n[task]\npath = /a\ntags = t\n"
                        "[user B]\n[task]\npath = /b\n");
    const char *tags[] = {"t"};
    char err[256];
    cr_assert_eq(apply(sc, tags, 1, NULL, 0, 0, NULL, err), -ENOENT);
    scenario_free(sc);
}

Test(scenario_opts, sequential_classes_keep_file_order_of_remaining_tasks)
{
    scenario *sc = load("[user S]\nsequential = true\n"
                        "[task]\npath = /1\ntags = x\n[task]\npath = /2\n"
                        "[task]\npath = /3\ntags = x\n[task]\npath = /4\ntags = x y\n");
    const char *ex[] = {"y"}, *tags[] = {"x"};
    char err[256];
    cr_assert_eq(apply(sc, tags, 1, ex, 1, 0, NULL, err), 0, "%s", err);
    cr_assert_eq(sc->classes[0].ntasks, 2);
    cr_assert_str_eq(path_of(&sc->classes[0].tasks[0]), "/1");
    cr_assert_str_eq(path_of(&sc->classes[0].tasks[1]), "/3");
    scenario_free(sc);
}

Test(scenario_opts, equal_weights_make_tasks_and_classes_equally_likely)
{
    scenario *sc = load("[user A]\nweight = 5\n[task]\npath = /a\nweight = 9\n"
                        "[task]\npath = /b\nweight = 0.5\n[task]\npath = /never\nweight = 0\n"
                        "[user B]\nweight = 0.25\n[task]\npath = /c\n"
                        "[user Z]\nweight = 0\n[task]\npath = /z\n");
    char err[256];
    cr_assert_eq(apply(sc, NULL, 0, NULL, 0, 1, NULL, err), 0, "%s", err);
    const sc_class *a = &sc->classes[0];
    cr_assert_eq(a->weight, 1);
    cr_assert_eq(a->tasks[0].weight, 1);
    cr_assert_eq(a->tasks[1].weight, 1);
    cr_assert_eq(a->tasks[2].weight, 0, "a weight-0 task stays off, as in Locust");
    cr_assert_eq(a->total_weight, 2);
    cr_assert_eq(sc->classes[1].weight, 1);
    cr_assert_eq(sc->classes[2].weight, 0, "a weight-0 class stays off");
    int per[3];
    cr_assert_eq(scenario_split_users(sc, 10, per), 10);
    cr_assert_eq(per[0], 5);
    cr_assert_eq(per[1], 5);
    cr_assert_eq(per[2], 0);
    scenario_free(sc);
}

Test(scenario_opts, no_options_change_nothing)
{
    scenario *sc = load(two_classes);
    char err[256];
    cr_assert_eq(apply(sc, NULL, 0, NULL, 0, 0, NULL, err), 0, "%s", err);
    cr_assert_eq(sc->nclasses, 2);
    cr_assert_eq(sc->classes[0].ntasks, 3);
    cr_assert_eq(sc->nentries, 5);
    scenario_free(sc);
}

/* A: fixed 2, B: fixed 2, C: weight 3, D: weight 1. The expected counts are
 * what Locust 2.12's UsersDispatcher gives for the same classes. */
static const char *fixed_mix = "[user A]\nfixed_count = 2\n[task]\npath = /a\n"
                               "[user B]\nfixed_count = 2\nweight = 100\n[task]\npath = /b\n"
                               "[user C]\nweight = 3\n[task]\npath = /c\n"
                               "[user D]\n[task]\npath = /d\n";

static void expect_split(scenario *sc, int n, int a, int b, int c, int d)
{
    int per[4] = {-1, -1, -1, -1};
    int placed = scenario_split_users(sc, n, per);
    cr_assert_eq(placed, a + b + c + d);
    cr_assert(per[0] == a && per[1] == b && per[2] == c && per[3] == d,
              "-u %d: got %d %d %d %d, want %d %d %d %d", n, per[0], per[1], per[2], per[3], a, b,
              c, d);
}

Test(scenario_opts, fixed_count_classes_fill_first_then_weights_share_the_rest)
{
    scenario *sc = load(fixed_mix);
    expect_split(sc, 0, 0, 0, 0, 0);
    expect_split(sc, 1, 1, 0, 0, 0);
    expect_split(sc, 3, 2, 1, 0, 0);
    expect_split(sc, 4, 2, 2, 0, 0);
    expect_split(sc, 5, 2, 2, 1, 0);
    expect_split(sc, 10, 2, 2, 5, 1);
    expect_split(sc, 104, 2, 2, 75, 25);
    scenario_free(sc);
}

Test(scenario_opts, fixed_counts_below_their_sum_share_in_proportion)
{
    /* Locust interleaves fixed classes by fixed_count: E=3, F=2 with -u 2 is 1/1 */
    scenario *sc = load("[user E]\nfixed_count = 3\n[task]\npath = /e\n"
                        "[user F]\nfixed_count = 2\n[task]\npath = /f\n");
    int per[2];
    cr_assert_eq(scenario_split_users(sc, 2, per), 2);
    cr_assert(per[0] == 1 && per[1] == 1, "%d %d", per[0], per[1]);
    cr_assert_eq(scenario_split_users(sc, 4, per), 4);
    cr_assert(per[0] == 2 && per[1] == 2, "%d %d", per[0], per[1]);
    /* no weighted class: the surplus over the fixed sum is not started */
    cr_assert_eq(scenario_split_users(sc, 9, per), 5);
    cr_assert(per[0] == 3 && per[1] == 2, "%d %d", per[0], per[1]);
    scenario_free(sc);
}

Test(scenario_opts, equal_weights_keep_fixed_counts)
{
    scenario *sc = load(fixed_mix);
    char err[256];
    cr_assert_eq(apply(sc, NULL, 0, NULL, 0, 1, NULL, err), 0, "%s", err);
    expect_split(sc, 10, 2, 2, 3, 3);
    scenario_free(sc);
}

Test(scenario_opts, positional_classes_keep_only_the_named_ones_in_file_order)
{
    scenario *sc = load(two_classes);
    const char *names[] = {"B", "B"};
    scenario_options o = {.classes = names, .nclasses = 2};
    char err[256];
    cr_assert_eq(scenario_apply_options(sc, &o, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(sc->nclasses, 1);
    cr_assert_str_eq(sc->classes[0].name, "B");
    cr_assert_eq(sc->nentries, 1); /* A's rows are gone */
    scenario_free(sc);
}

Test(scenario_opts, an_unknown_positional_class_is_named_and_changes_nothing)
{
    scenario *sc = load(two_classes);
    const char *names[] = {"A", "X", "Y"};
    scenario_options o = {.classes = names, .nclasses = 3};
    char err[256];
    cr_assert_eq(scenario_apply_options(sc, &o, NULL, err, sizeof(err)), -ENOENT);
    cr_assert_str_eq(err, "Unknown User(s): X, Y (the scenario has A, B)");
    cr_assert_eq(sc->nclasses, 2);
    scenario_free(sc);
}
