#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen/cli_conf.h"

static cli_conf parse_ok(const char *text)
{
    cli_conf c;
    char err[256];
    cr_assert_eq(cli_conf_parse(text, strlen(text), "t.conf", &c, err, sizeof(err)), 0, "%s", err);
    return c;
}

static const char *val(const cli_conf *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->items[i].key, key)) return c->items[i].nvals ? c->items[i].vals[0] : NULL;
    return NULL;
}

Test(cli_conf, reads_every_spelling_of_configargparse)
{
    cli_conf c = parse_ok("# comment\n; comment\n[locust]\n---\n"
                          "a value\nb = value\nc: value\n--d value\nflag\n"
                          "e = \"quoted # kept\"  # comment\nf = x ; comment\ng = x;y\n"
                          "h =\ni \"\"\nj = ''\nk  # not a comment here\n");
    cr_assert_str_eq(val(&c, "a"), "value");
    cr_assert_str_eq(val(&c, "b"), "value");
    cr_assert_str_eq(val(&c, "c"), "value");
    cr_assert_str_eq(val(&c, "--d"), "value");
    cr_assert_str_eq(val(&c, "flag"), "true");
    cr_assert_str_eq(val(&c, "e"), "quoted # kept");
    cr_assert_str_eq(val(&c, "f"), "x");
    cr_assert_str_eq(val(&c, "g"), "x;y");
    cr_assert_str_eq(val(&c, "h"), "");
    cr_assert_str_eq(val(&c, "i"), "true"); /* as configargparse: `key ""` is a bare key */
    cr_assert_str_eq(val(&c, "j"), "");
    cr_assert_str_eq(val(&c, "k"), "# not a comment here");
    cr_assert_eq(c.n, 12);
    cli_conf_free(&c);
}

Test(cli_conf, a_repeated_key_keeps_its_place_and_takes_the_last_value)
{
    cli_conf c = parse_ok("users = 1\r\nhost = h\rusers = 2\n");
    cr_assert_eq(c.n, 2);
    cr_assert_str_eq(c.items[0].key, "users");
    cr_assert_str_eq(c.items[0].vals[0], "2");
    cr_assert_eq(c.items[0].line, 3);
    cli_conf_free(&c);
}

Test(cli_conf, lists_are_json_or_comma_separated)
{
    cli_conf c = parse_ok("a = [\"x\\u00e9\", 1, true, null]\nb = [web, api ,]\nc = []\n");
    cr_assert(c.items[0].is_list);
    cr_assert_eq(c.items[0].nvals, 4);
    cr_assert_str_eq(c.items[0].vals[0], "x\xc3\xa9");
    cr_assert_str_eq(c.items[0].vals[1], "1");
    cr_assert_str_eq(c.items[0].vals[2], "True");
    cr_assert_str_eq(c.items[0].vals[3], "None");
    cr_assert_eq(c.items[1].nvals, 3);
    cr_assert_str_eq(c.items[1].vals[0], "web");
    cr_assert_str_eq(c.items[1].vals[1], "api");
    cr_assert_str_eq(c.items[1].vals[2], "");
    cr_assert(c.items[2].is_list);
    cr_assert_eq(c.items[2].nvals, 0);
    cli_conf_free(&c);
}

Test(cli_conf, a_bad_line_is_named_with_file_and_line)
{
    cli_conf c;
    char err[256];
    const char *t = "users = 1\n\n= 5\n";
    cr_assert_eq(cli_conf_parse(t, strlen(t), "t.conf", &c, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "t.conf:3: unexpected line '= 5' (want key = value)");
    cr_assert_eq(c.n, 0);
    const char *t2 = "a#b\n";
    cr_assert_eq(cli_conf_parse(t2, strlen(t2), "t.conf", &c, err, sizeof(err)), -1);
    const char *t3 = "a = [[1]]\n";
    cr_assert_eq(cli_conf_parse(t3, strlen(t3), "t.conf", &c, err, sizeof(err)), -1);
    cr_assert(strstr(err, "t.conf:1: nested"), "%s", err);
}

/* ---- merging ---- */

static char dir[] = "/tmp/cli_conf_testXXXXXX";

static void put(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    strcpy(dir, "/tmp/cli_conf_testXXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static char *joined(const cli_args *a)
{
    static char out[2048];
    out[0] = '\0';
    for (int i = 1; i < a->argc; i++) {
        strcat(out, i > 1 ? " " : "");
        strcat(out, a->argv[i]);
    }
    return out;
}

static int merge(char **argv, int argc, char **envp, cli_args *a, buf *notes, char *err)
{
    cli_conf_env env = {.envp = envp, .home = dir, .cwd = dir};
    return cli_conf_merge(argc, argv, &env, a, notes, err, 512);
}

Test(cli_conf, sources_add_only_what_is_missing_in_configargparse_order, .init = setup,
     .fini = teardown)
{
    put(".locust.conf", "host = home\nusers = 9\nheadless = true\nrun-time = 5s\n");
    put("locust.conf", "host = local\nusers = 8\nheadless = false\nloglevel = DEBUG\n");
    put("my.conf", "users = 7\n");
    char *argv[] = {"aiload", "-f", "s.ini", "--config", "my.conf", "UserA"};
    char *envp[] = {"LOCUST_HOST=env", "LOCUST_TAGS=[a, b]", "OTHER=1", NULL};
    char cfg[256];
    snprintf(cfg, sizeof(cfg), "%s/my.conf", dir);
    argv[4] = cfg;
    cli_args a;
    buf notes = BUF_INIT;
    char err[512];
    cr_assert_eq(merge(argv, 6, envp, &a, &notes, err), 0, "%s", err);
    char want[1024];
    snprintf(want, sizeof(want),
             "--headless --run-time=5s --users=7 -f s.ini --config %s UserA --host=env --tags a b",
             cfg);
    cr_assert_str_eq(joined(&a), want);
    cr_assert_null(a.argv[a.argc]);
    cr_assert(strstr(notes.data, "locust.conf:4: 'loglevel' is a Locust option"), "%s", notes.data);
    cli_args_free(&a);
    buf_free(&notes);
}

Test(cli_conf, the_command_line_wins_and_help_reads_no_file, .init = setup, .fini = teardown)
{
    put("locust.conf", "bad line =\n= x\n");
    char *argv[] = {"aiload", "--help"};
    char *envp[] = {"LOCUST_USERS=3", NULL};
    cli_args a;
    char err[512];
    cr_assert_eq(merge(argv, 2, envp, &a, NULL, err), 0, "%s", err);
    cr_assert_str_eq(joined(&a), "--users=3 --help");
    cli_args_free(&a);
    char *argv2[] = {"aiload", "-u", "1"};
    cr_assert_eq(merge(argv2, 3, envp, &a, NULL, err), -1);
    cr_assert(strstr(err, "locust.conf:2: unexpected line"), "%s", err);
}

Test(cli_conf, unknown_keys_and_bad_flags_are_errors, .init = setup, .fini = teardown)
{
    char *argv[] = {"aiload"};
    char *envp[] = {"LOCUST_HEADLESS=maybe", NULL};
    cli_args a;
    char err[512];
    cr_assert_eq(merge(argv, 1, envp, &a, NULL, err), -1);
    cr_assert(strstr(err, "Unexpected value for LOCUST_HEADLESS: 'maybe'"), "%s", err);
    put("locust.conf", "\nnosuch = 1\n");
    cr_assert_eq(merge(argv, 1, (char *[]){NULL}, &a, NULL, err), -1);
    cr_assert(strstr(err, "locust.conf:2: unknown option 'nosuch'"), "%s", err);
    put("locust.conf", "header = [\"A: 1\", \"B: 2\"]\nheadless = no\n");
    cr_assert_eq(merge(argv, 1, (char *[]){NULL}, &a, NULL, err), 0, "%s", err);
    cr_assert_str_eq(joined(&a), "--header=A: 1 --header=B: 2");
    cli_args_free(&a);
}
