#include "loadgen/scenario_int.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static scenario *parse(const char *text, char *err)
{
    return scenario_parse(text, strlen(text), "t.ini", err, 256);
}

static void expect_error(const char *text, const char *where, const char *what)
{
    char err[256];
    scenario *sc = parse(text, err);
    cr_assert_null(sc, "parsed: %s", text);
    cr_assert(strstr(err, where) == err, "want '%s' first in '%s'", where, err);
    cr_assert(strstr(err, what), "want '%s' in '%s'", what, err);
}

Test(scenario, parses_classes_tasks_waits_and_entries)
{
    char err[256];
    scenario *sc = parse("[settings]\nhost = http://h:8080\n"
                         "[user A]\nweight = 3\nwait_time = between(5, 15)\n"
                         "[on_start A]\nmethod = POST\npath = /login\n"
                         "[task A]\nweight = 2\npath = /\n"
                         "[task A]\npath = /item/${randint(1,9)}\nname = /item/[id]\n"
                         "[user B]\nwait_time = constant_throughput(4)\nsequential = yes\n"
                         "[task]\npath = /\n",
                         err);
    cr_assert_not_null(sc, "%s", err);
    cr_assert_str_eq(scenario_host(sc), "http://h:8080");
    cr_assert_eq(scenario_class_count(sc), 2);
    const sc_class *a = &sc->classes[0], *b = &sc->classes[1];
    cr_assert_eq(a->weight, 3);
    cr_assert_eq(a->wait, SC_WAIT_BETWEEN);
    cr_assert_eq(a->wait_a, 5);
    cr_assert_eq(a->wait_b, 15);
    cr_assert_eq(a->ntasks, 2);
    cr_assert_eq(a->non_start, 1);
    cr_assert_eq(a->total_weight, 3);
    cr_assert_eq(b->wait, SC_WAIT_PACING);
    cr_assert_float_eq(b->wait_a, 0.25, 1e-9);
    cr_assert(b->sequential);
    /* GET / is shared by both classes: one stats entry */
    cr_assert_eq(sc->nentries, 3);
    cr_assert_eq(a->tasks[0].entry, b->tasks[0].entry);
    cr_assert_str_eq(sc->entries[a->tasks[1].entry].name, "/item/[id]");
    cr_assert_str_eq(sc->entries[a->on_start[0].entry].method, "POST");
    scenario_free(sc);
}

Test(scenario, tasks_without_a_class_get_an_implicit_one)
{
    char err[256];
    scenario *sc = parse("[task]\npath = /a\n[task]\npath = /b\n", err);
    cr_assert_not_null(sc, "%s", err);
    cr_assert_eq(sc->nclasses, 1);
    cr_assert_eq(sc->classes[0].ntasks, 2);
    cr_assert_eq(sc->classes[0].wait, SC_WAIT_CONSTANT);
    cr_assert_eq(sc->classes[0].wait_a, 0);
    scenario_free(sc);
}

Test(scenario, substitutions_render_within_their_ranges)
{
    char err[256];
    scenario *sc =
        parse("[task]\npath = /u/${user_id}/${seq}/${randint(3,5)}/${choice(x, y)}$$\n", err);
    cr_assert_not_null(sc, "%s", err);
    const sc_tmpl *t = &sc->classes[0].tasks[0].path;
    cr_assert_not(t->is_static);
    uint64_t rng = 1;
    buf b = BUF_INIT;
    for (int i = 0; i < 200; i++) {
        buf_reset(&b);
        cr_assert_eq(sc_render(t, &b, &rng, 7, 9), 0);
        int n;
        char c;
        cr_assert_eq(sscanf(b.data, "/u/7/9/%d/%c$", &n, &c), 2, "%s", b.data);
        cr_assert(n >= 3 && n <= 5);
        cr_assert(c == 'x' || c == 'y');
        cr_assert_eq(b.data[b.len - 1], '$');
    }
    buf_free(&b);
    scenario_free(sc);
}

Test(scenario, quoted_values_keep_spaces_and_escapes)
{
    char err[256];
    scenario *sc = parse("[task]\nmethod = POST\npath = /\nbody = \"  a\\n\\\"b\\\"  \"\n", err);
    cr_assert_not_null(sc, "%s", err);
    const sc_request *r = &sc->classes[0].tasks[0];
    cr_assert(r->has_body);
    cr_assert_eq(r->body.len, 9);
    cr_assert_eq(memcmp(r->body.text, "  a\n\"b\"  ", 9), 0);
    scenario_free(sc);
}

Test(scenario, errors_name_the_file_and_line)
{
    expect_error("[user A]\n\nwait_time = sometimes\n[task]\npath=/\n", "t.ini:3:", "wait_time");
    expect_error("[user A]\n[task]\npath = /${nope}\n", "t.ini:3:", "unknown substitution");
    expect_error("[user A]\n[task]\npath = /${randint(1,2\n", "t.ini:3:", "unterminated");
    expect_error("[user A]\n[user A]\n", "t.ini:2:", "defined twice");
    expect_error("[user A]\n[task]\npath = /\nbody = x\nbody_file = y\n", "t.ini:5:", "both set");
    expect_error("[user A]\n[task]\nmethod = GET\n", "t.ini:2:", "no path");
    expect_error("[user A]\n[task]\npath = /\nheader = nocolon\n", "t.ini:4:", "Name: value");
    expect_error("[user A]\nwait_time = between(3, 1)\n[task]\npath = /\n",
                 "t.ini:2:", "min > max");
    expect_error("[user A]\nwait_time = constant_throughput(0)\n[task]\npath = /\n",
                 "t.ini:2:", "r > 0");
    expect_error("[user A]\n[task]\nweight = 0\npath = /\n", "t.ini:2:", "weight 0");
    expect_error("key = value\n", "t.ini:1:", "outside any section");
    expect_error("[bogus]\n", "t.ini:1:", "unknown section");
}

Test(scenario, a_nul_byte_is_refused)
{
    char err[256];
    scenario *sc = scenario_parse("[task]\0path = /\n", 15, "t.ini", err, sizeof(err));
    cr_assert_null(sc);
    cr_assert(strstr(err, "NUL"));
}

Test(scenario, quick_mode_builds_one_literal_task)
{
    char err[256];
    const char *hdr[] = {"X-A: 1"};
    scenario_quick q = {
        .url = "http://127.0.0.1:81/p?a=$x", .method = "PUT", .headers = hdr, .nheaders = 1};
    scenario *sc = scenario_from_quick(&q, err, sizeof(err));
    cr_assert_not_null(sc, "%s", err);
    const sc_request *r = &sc->classes[0].tasks[0];
    cr_assert_str_eq(r->method, "PUT");
    cr_assert(r->path.is_static);
    cr_assert_eq(r->path.len, strlen("/p?a=$x"));
    cr_assert_eq(memcmp(r->path.text, "/p?a=$x", r->path.len), 0);
    cr_assert_str_eq(scenario_host(sc), "http://127.0.0.1:81");
    scenario_free(sc);
    q.url = "https://x/";
    sc = scenario_from_quick(&q, err, sizeof(err));
    cr_assert_not_null(sc, "%s", err);
    cr_assert_str_eq(scenario_host(sc), "https://x");
    scenario_free(sc);
    q.url = "ftp://x/";
    cr_assert_null(scenario_from_quick(&q, err, sizeof(err)));
    cr_assert(strstr(err, "https://"), "%s", err);
}

Test(scenario, task_tags_parse_space_or_comma_separated_without_duplicates)
{
    char err[256];
    scenario *sc = parse("[user A]\n[task]\npath = /\ntags = web, slow fast,,web\n"
                         "[task]\npath = /b\ntags = a\ntags = b\n",
                         err);
    cr_assert_not_null(sc, "%s", err);
    const sc_request *r = &sc->classes[0].tasks[0];
    cr_assert_eq(r->ntags, 3);
    cr_assert_str_eq(r->tags[0], "web");
    cr_assert_str_eq(r->tags[1], "slow");
    cr_assert_str_eq(r->tags[2], "fast");
    cr_assert_eq(sc->classes[0].tasks[1].ntags, 2, "repeated tags lines add up");
    scenario_free(sc);
}

Test(scenario, fixed_count_parses_and_bad_values_name_the_line)
{
    char err[256];
    scenario *sc = parse("[user A]\nfixed_count = 3\n[task]\npath = /\n", err);
    cr_assert_not_null(sc, "%s", err);
    cr_assert_eq(scenario_class_fixed_count(sc, 0), 3);
    cr_assert_eq(scenario_class_fixed_count(sc, 9), 0);
    scenario_free(sc);
    expect_error("[user A]\nfixed_count = 1.5\n[task]\npath = /\n", "t.ini:2:", "whole number");
    expect_error("[user A]\nfixed_count = -1\n[task]\npath = /\n", "t.ini:2:", "fixed_count");
    expect_error("[user A]\nfixed_count = lots\n[task]\npath = /\n", "t.ini:2:", "fixed_count");
    expect_error("[user A]\nfixed_count = 1e9\n[task]\npath = /\n", "t.ini:2:", "whole number");
}

Test(scenario, a_fixed_class_counts_even_with_weight_0)
{
    char err[256];
    scenario *sc = parse("[user A]\nweight = 0\nfixed_count = 2\n[task]\npath = /\n", err);
    cr_assert_not_null(sc, "%s", err);
    scenario_free(sc);
    expect_error("[user A]\nweight = 0\n[task]\npath = /\n", "t.ini:", "weight 0");
}

Test(scenario, tag_errors_name_the_line)
{
    expect_error("[user A]\n[task]\npath = /\ntags = , ,\n", "t.ini:4:", "at least one tag");
    expect_error("[user A]\n[task]\npath = /\ntags =\n", "t.ini:4:", "at least one tag");
    expect_error("[user A]\n[on_start A]\npath = /\ntags = x\n", "t.ini:4:", "never filtered");
    expect_error("[user A]\ntags = x\n[task]\npath = /\n", "t.ini:2:", "unknown key 'tags'");
}
