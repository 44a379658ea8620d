#include "loadgen/webui/ratio.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "loadgen/scenario_int.h"
#include "loadgen/webui/render.h"

static scenario *load(const char *text)
{
    char err[256];
    scenario *sc = scenario_parse(text, strlen(text), "t.ini", err, sizeof(err));
    cr_assert_not_null(sc, "%s", err);
    return sc;
}

/* The /tasks JSON of sc for in, parsed (the text stays in *b). */
static json_doc tasks_json(const scenario *sc, const webui_ratio_input *in, buf *b)
{
    double share[16];
    cr_assert_leq(scenario_class_count(sc), 16);
    webui_ratio_shares(sc, in, share);
    cr_assert_eq(webui_render_tasks_json(sc, share, b), 0);
    json_doc d;
    char err[128];
    cr_assert_eq(json_parse(&d, b->data, b->len, NULL, err, sizeof(err)), 0, "%s\n%s", err,
                 b->data);
    return d;
}

/* The ratio at half/cls (task NULL) or half/cls/tasks/task; -1 when absent. */
static double ratio(const json_doc *d, const char *half, const char *cls, const char *task)
{
    int h = json_obj_get(d, 0, half);
    int c = h < 0 ? -1 : json_obj_get(d, h, cls);
    if (c >= 0 && task) {
        int ts = json_obj_get(d, c, "tasks");
        c = ts < 0 ? -1 : json_obj_get(d, ts, task);
    }
    int r = c < 0 ? -1 : json_obj_get(d, c, "ratio");
    double v = -1;
    if (r >= 0) cr_assert_eq(json_num_f64(d, r, &v), 0);
    return v;
}

#define near(a, b) cr_assert(fabs((a) - (b)) < 1e-9, "%s = %.12g, want %.12g", #a, (a), (double)(b))

static const char *shop = "[user A]\n"
                          "[task]\npath = /a\nweight = 3\ntags = api\n"
                          "[task]\npath = /b\ntags = web\n"
                          "[user B]\nweight = 3\n"
                          "[task]\npath = /c\ntags = api\n";

Test(webui_ratio, weights_give_class_ratio_times_task_ratio_in_total)
{
    scenario *sc = load(shop);
    buf b = BUF_INIT;
    webui_ratio_input in = {.users = 4};
    json_doc d = tasks_json(sc, &in, &b);
    near(ratio(&d, "per_class", "A", NULL), 0.25);
    near(ratio(&d, "per_class", "B", NULL), 0.75);
    near(ratio(&d, "per_class", "A", "/a"), 0.75);
    near(ratio(&d, "per_class", "A", "/b"), 0.25);
    near(ratio(&d, "per_class", "B", "/c"), 1);
    near(ratio(&d, "total", "A", NULL), 0.25);
    near(ratio(&d, "total", "A", "/a"), 0.1875);
    near(ratio(&d, "total", "A", "/b"), 0.0625);
    near(ratio(&d, "total", "B", "/c"), 0.75);
    json_doc_free(&d);
    buf_free(&b);
    scenario_free(sc);
}

Test(webui_ratio, tag_filtering_before_the_run_leaves_only_kept_tasks)
{
    scenario *sc = load(shop);
    const char *tags[] = {"api"};
    scenario_options o = {.tags = tags, .ntags = 1};
    char err[256];
    cr_assert_eq(scenario_apply_options(sc, &o, NULL, err, sizeof(err)), 0, "%s", err);
    buf b = BUF_INIT;
    webui_ratio_input in = {.users = 4};
    json_doc d = tasks_json(sc, &in, &b);
    near(ratio(&d, "per_class", "A", "/a"), 1);
    cr_assert_eq(ratio(&d, "per_class", "A", "/b"), -1, "filtered-out task listed: %s", b.data);
    near(ratio(&d, "total", "A", "/a"), 0.25);
    json_doc_free(&d);
    buf_free(&b);

    /* -E web as well: a class left empty by -E disappears from /tasks */
    scenario *sc2 = load(shop);
    const char *ex[] = {"api"};
    scenario_options o2 = {.exclude_tags = ex, .nexclude_tags = 1};
    cr_assert_eq(scenario_apply_options(sc2, &o2, NULL, err, sizeof(err)), 0, "%s", err);
    b = (buf)BUF_INIT;
    d = tasks_json(sc2, &in, &b);
    near(ratio(&d, "per_class", "A", NULL), 1);
    near(ratio(&d, "total", "A", "/b"), 1);
    cr_assert_eq(ratio(&d, "total", "B", NULL), -1, "%s", b.data);
    json_doc_free(&d);
    buf_free(&b);
    scenario_free(sc2);
    scenario_free(sc);
}

Test(webui_ratio, equal_weights_make_classes_and_tasks_equally_likely)
{
    scenario *sc = load(shop);
    scenario_options o = {.equal_weights = 1};
    char err[256];
    cr_assert_eq(scenario_apply_options(sc, &o, NULL, err, sizeof(err)), 0, "%s", err);
    buf b = BUF_INIT;
    webui_ratio_input in = {.users = 10};
    json_doc d = tasks_json(sc, &in, &b);
    near(ratio(&d, "per_class", "A", NULL), 0.5);
    near(ratio(&d, "per_class", "A", "/a"), 0.5);
    near(ratio(&d, "total", "A", "/b"), 0.25);
    near(ratio(&d, "total", "B", "/c"), 0.5);
    json_doc_free(&d);
    buf_free(&b);
    scenario_free(sc);
}

static const char *fixed = "[user Admin]\nfixed_count = 1\n[task]\npath = /admin\n"
                           "[user Shopper]\nweight = 3\n[task]\npath = /shop\n"
                           "[user Browser]\n[task]\npath = /browse\n"
                           "[user Ops]\nfixed_count = 3\nweight = 0\n[task]\npath = /ops\n";

Test(webui_ratio, fixed_count_classes_take_their_users_first)
{
    scenario *sc = load(fixed);
    double share[4];
    /* 10 users: Admin 1, Ops 3, the other 6 split 3:1 = 4.5:1.5, the tied
     * remainder going to the earlier class, as the runner spawns them */
    webui_ratio_input in = {.users = 10};
    webui_ratio_shares(sc, &in, share);
    near(share[0], 1);
    near(share[1], 5);
    near(share[2], 1);
    near(share[3], 3);
    buf b = BUF_INIT;
    json_doc d = tasks_json(sc, &in, &b);
    near(ratio(&d, "per_class", "Admin", NULL), 0.1);
    near(ratio(&d, "total", "Shopper", "/shop"), 0.5);
    near(ratio(&d, "total", "Ops", "/ops"), 0.3);
    json_doc_free(&d);
    buf_free(&b);
    /* 3 users, below the fixed counts' sum 4: shared 1:3, weighted get none */
    in.users = 3;
    webui_ratio_shares(sc, &in, share);
    near(share[0], 1);
    near(share[1], 0);
    near(share[2], 0);
    near(share[3], 2);
    /* the open model picks classes by weight alone: Ops (weight 0) gets none */
    in.open_model = 1;
    webui_ratio_shares(sc, &in, share);
    near(share[0], 1);
    near(share[1], 3);
    near(share[3], 0);
    scenario_free(sc);
}

Test(webui_ratio, running_users_decide_class_ratios_like_locust)
{
    scenario *sc = load(fixed);
    int live[4] = {1, 1, 0, 2};
    webui_ratio_input in = {.users = 10, .live = live, .nlive = 4};
    buf b = BUF_INIT;
    json_doc d = tasks_json(sc, &in, &b);
    near(ratio(&d, "per_class", "Admin", NULL), 0.25);
    near(ratio(&d, "per_class", "Browser", NULL), 0);
    near(ratio(&d, "per_class", "Browser", "/browse"), 1); /* within its class */
    near(ratio(&d, "total", "Browser", "/browse"), 0);
    near(ratio(&d, "total", "Ops", "/ops"), 0.5);
    json_doc_free(&d);
    buf_free(&b);
    /* nobody running (between tests): the plan for the user count again */
    memset(live, 0, sizeof(live));
    b = (buf)BUF_INIT;
    d = tasks_json(sc, &in, &b);
    near(ratio(&d, "per_class", "Admin", NULL), 0.1);
    json_doc_free(&d);
    buf_free(&b);
    /* a count array of another size is not trusted */
    int short_live[1] = {5};
    webui_ratio_input bad = {.users = 10, .live = short_live, .nlive = 1};
    b = (buf)BUF_INIT;
    d = tasks_json(sc, &bad, &b);
    near(ratio(&d, "per_class", "Ops", NULL), 0.3);
    json_doc_free(&d);
    buf_free(&b);
    scenario_free(sc);
}

Test(webui_ratio, sequential_tasks_each_run_once_per_loop_whatever_their_weight)
{
    scenario *sc = load("[user Flow]\nsequential = true\n"
                        "[task]\npath = /login\nweight = 5\n"
                        "[task]\npath = /cart\n"
                        "[task]\npath = /pay\nweight = 0\n"
                        "[user Other]\n[task]\npath = /x\n");
    buf b = BUF_INIT;
    webui_ratio_input in = {.users = 2};
    json_doc d = tasks_json(sc, &in, &b);
    near(ratio(&d, "per_class", "Flow", "/login"), 1.0 / 3);
    near(ratio(&d, "per_class", "Flow", "/pay"), 1.0 / 3);
    near(ratio(&d, "total", "Flow", "/cart"), 1.0 / 6);
    json_doc_free(&d);
    buf_free(&b);
    scenario_free(sc);
}

Test(webui_ratio, tasks_are_keyed_by_stats_row_and_zero_weight_tasks_left_out)
{
    scenario *sc = load("[user U]\n"
                        "[task]\npath = /item/1\nname = /item/[id]\nweight = 2\n"
                        "[task]\npath = /item/2\nname = /item/[id]\n"
                        "[task]\npath = /never\nweight = 0\n"
                        "[task]\nmethod = POST\npath = /x\n"
                        "[task]\npath = /x\nweight = 2\n"
                        "[task]\npath = /q\nname = \"quote \\\" <b>\"\n");
    buf b = BUF_INIT;
    webui_ratio_input in = {.users = 1};
    json_doc d = tasks_json(sc, &in, &b);
    near(ratio(&d, "per_class", "U", "/item/[id]"), 3.0 / 7);
    cr_assert_eq(ratio(&d, "per_class", "U", "/never"), -1, "%s", b.data);
    near(ratio(&d, "per_class", "U", "POST /x"), 1.0 / 7);
    near(ratio(&d, "per_class", "U", "GET /x"), 2.0 / 7);
    cr_assert_eq(ratio(&d, "per_class", "U", "/x"), -1, "%s", b.data);
    near(ratio(&d, "total", "U", "quote \" <b>"), 1.0 / 7);
    json_doc_free(&d);
    buf_free(&b);
    scenario_free(sc);
}

Test(webui_ratio, without_shares_every_class_is_zero_as_locust_before_a_run)
{
    scenario *sc = load(shop);
    buf b = BUF_INIT;
    cr_assert_eq(webui_render_tasks_json(sc, NULL, &b), 0);
    json_doc d;
    char err[128];
    cr_assert_eq(json_parse(&d, b.data, b.len, NULL, err, sizeof(err)), 0, "%s", err);
    near(ratio(&d, "per_class", "B", NULL), 0);
    near(ratio(&d, "per_class", "A", "/a"), 0.75);
    near(ratio(&d, "total", "A", "/a"), 0);
    json_doc_free(&d);
    buf_free(&b);
    scenario_free(sc);
}

Test(webui_ratio, thousands_of_tasks_sharing_rows_add_up)
{
    buf text = BUF_INIT;
    buf_puts(&text, "[user Big]\n");
    for (int i = 0; i < 4000; i++)
        buf_printf(&text, "[task]\npath = /p/%d\nname = /p%d\n%s", i, i % 2000,
                   i % 2000 == 7 ? "method = POST\n" : "");
    scenario *sc = load(text.data);
    buf_free(&text);
    buf b = BUF_INIT;
    webui_ratio_input in = {.users = 1};
    json_doc d = tasks_json(sc, &in, &b);
    near(ratio(&d, "per_class", "Big", "/p0"), 2.0 / 4000);
    near(ratio(&d, "total", "Big", "/p1999"), 2.0 / 4000);
    near(ratio(&d, "total", "Big", "/p7"), 2.0 / 4000); /* POST twice: one row, one method */
    json_doc_free(&d);
    buf_free(&b);
    scenario_free(sc);
}

Test(webui_ratio, html_lists_show_percentages_and_escape_names)
{
    scenario *sc = load("[user <A&B>]\n"
                        "[task]\npath = /a\nname = <script>x</script>\nweight = 3\n"
                        "[task]\nmethod = POST\npath = /a\nname = <script>x</script>\n"
                        "[user C]\nweight = 3\n[task]\npath = /c\n");
    double share[2] = {1, 3};
    buf b = BUF_INIT;
    cr_assert_eq(webui_render_tasks_html(sc, share, &b), 0);
    cr_assert_null(strstr(b.data, "<script>"), "names are escaped: %s", b.data);
    cr_assert(strstr(b.data, "<span class=\"pct\">25.0%</span> <span class=\"rname\">&lt;A&amp;B"),
              "%s", b.data);
    /* per class 75 %, in total 18.8 % (0.25 * 0.75), the name split by method */
    cr_assert(strstr(b.data, "75.0%</span> <span class=\"rname\">GET &lt;script&gt;x"), "%s",
              b.data);
    cr_assert(strstr(b.data, "18.8%</span> <span class=\"rname\">GET &lt;script&gt;x"), "%s",
              b.data);
    cr_assert(strstr(b.data, "id=\"final-total\""));
    buf_free(&b);
    scenario_free(sc);
}

Test(webui_ratio, report_carries_final_ratio_only_when_given_a_scenario)
{
    scenario *sc = load(shop);
    runner_snapshot *s = calloc(1, sizeof(*s));
    s->state = RUNNER_STOPPED;
    s->target_users = 4;
    s->entries = calloc(1, sizeof(runner_entry));
    strcpy(s->total.name, "Aggregated");
    double share[2] = {1, 3};
    webui_report_meta meta = {.script = "s.ini", .sc = sc, .class_share = share};
    buf b = BUF_INIT;
    cr_assert_eq(webui_render_report(s, NULL, 0, &meta, &b), 0);
    const char *fr = strstr(b.data, "<h2>Final ratio</h2>");
    cr_assert_not_null(fr);
    cr_assert(strstr(fr, "18.8%</span> <span class=\"rname\">/a"), "%s", fr);
    buf_reset(&b);
    meta.sc = NULL;
    cr_assert_eq(webui_render_report(s, NULL, 0, &meta, &b), 0);
    cr_assert_null(strstr(b.data, "Final ratio"));
    buf_free(&b);
    free(s->entries);
    free(s);
    scenario_free(sc);
}

/* A Python locustfile's report has only /tasks's JSON: the section made from
 * it is the one the scenario gives, byte for byte (names escaped, methods
 * split, both halves). */
Test(webui_ratio, final_ratio_from_the_json_equals_the_one_from_the_scenario)
{
    scenario *sc = load(shop);
    double share[8];
    webui_ratio_input in = {.users = 3};
    webui_ratio_shares(sc, &in, share);
    buf json = BUF_INIT, from_sc = BUF_INIT, from_json = BUF_INIT;
    cr_assert_eq(webui_render_tasks_json(sc, share, &json), 0);
    cr_assert_eq(webui_render_tasks_html(sc, share, &from_sc), 0);
    cr_assert_eq(webui_render_tasks_html_json(json.data, json.len, &from_json), 0);
    cr_assert_eq(from_json.len, from_sc.len, "%.*s\n---\n%.*s", (int)from_sc.len, from_sc.data,
                 (int)from_json.len, from_json.data);
    cr_assert(!memcmp(from_json.data, from_sc.data, from_sc.len));
    cr_assert(strstr(from_sc.data, "id=\"final-total\""));
    buf_free(&json), buf_free(&from_sc), buf_free(&from_json);
    scenario_free(sc);
}

Test(webui_ratio, final_ratio_from_text_that_is_not_the_tasks_json_writes_nothing)
{
    buf out = BUF_INIT;
    const char *bad[] = {"", "[1,2]", "{\"per_class\": {\"A\": 3}}", "{\"per_class\":", "null"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_reset(&out);
        cr_assert_eq(webui_render_tasks_html_json(bad[i], strlen(bad[i]), &out), 0);
        if (bad[i][0] == '{' && strchr(bad[i], '}'))
            cr_assert_null(strstr(out.data, "<li>"), "%s -> %s", bad[i], out.data);
        else
            cr_assert_eq(out.len, 0, "%s -> %.*s", bad[i], (int)out.len, out.data);
    }
    buf_free(&out);
}
