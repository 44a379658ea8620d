#include "server/config.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A kind's table, as app kinds bring them. */
typedef struct extra_opts {
    const char *module;
    cfg_list pythonpath;
    const char *home;
} extra_opts;

static const cfg_option extra[] = {
    {"module", NULL, CFG_BIND(extra_opts, CFG_STR, module), NULL, 0, 0, "a kind's option"},
    {"pythonpath", NULL, CFG_BIND(extra_opts, CFG_LIST, pythonpath), NULL, 0, 0, "repeated"},
    {"home", "virtualenv|venv|pyhome", CFG_BIND(extra_opts, CFG_STR, home), NULL, 0, 0,
     "several aliases"},
    CFG_END(extra_opts),
};
static const cfg_option *const tables[] = {cfg_core_options, extra, NULL};

static const cfg_core *core(const cfg *c)
{
    return cfg_core_values(c);
}

static const extra_opts *ex(const cfg *c)
{
    return cfg_values(c, extra);
}

static char *write_ini(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/aiserve-cfg-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int load(const char *ini, int argc, char **argv, cfg **c, char *err)
{
    char *args[16];
    int n = 0;
    if (ini) args[n++] = write_ini(ini);
    for (int i = 0; i < argc; i++) args[n++] = argv[i];
    int rc = cfg_load(n, args, tables, c, err, 512);
    if (ini) unlink(args[0]);
    return rc;
}

Test(config, value_forms_parse_like_uwsgi)
{
    int b;
    int64_t v;
    cr_assert(!cfg_parse_bool("Yes", &b) && b == 1);
    cr_assert(!cfg_parse_bool("off", &b) && b == 0);
    cr_assert(cfg_parse_bool("maybe", &b));
    cr_assert(!cfg_parse_size("64k", &v) && v == 65536);
    cr_assert(!cfg_parse_size("10M", &v) && v == 10 << 20);
    cr_assert(!cfg_parse_size("1gb", &v) && v == 1 << 30);
    cr_assert(cfg_parse_size("-1", &v));
    cr_assert(cfg_parse_size("12q", &v));
    cr_assert(cfg_parse_int("12x", &v));
}

Test(config, both_sections_read_lists_repeat_and_defaults_apply)
{
    cfg *c;
    char err[512];
    int rc = load("[uwsgi]\nprocesses = 3\nenv = A=1\n[other]\nprocesses = 9\n[aiserve]\nenv = "
                  "B=2\nmodule = app:app\npythonpath = /a\npythonpath = /b\n",
                  0, NULL, &c, err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(core(c)->processes, 3);
    size_t n;
    const char *const *env = core(c)->env.v;
    n = core(c)->env.n;
    cr_assert_eq(n, 2);
    cr_assert_str_eq(env[1], "B=2");
    n = ex(c)->pythonpath.n;
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ex(c)->module, "app:app");
    cr_assert_eq(core(c)->buffer_size, 8192);
    cr_assert_eq(core(c)->threads, 1);
    cr_assert(cfg_is_set(c, &core(c)->processes));
    cr_assert(!cfg_is_set(c, &core(c)->threads));
    cr_assert(strstr(cfg_where(c, &core(c)->processes, 0), ":2"));
    cr_assert_str_eq(cfg_name(c, &core(c)->processes), "processes");
    cr_assert_str_eq(cfg_name(c, &core(c)->max_requests_delta), "max-requests-delta");
    cr_assert_str_eq(cfg_name(c, &ex(c)->pythonpath), "pythonpath", "a kind's table too");
    cr_assert_str_eq(cfg_name(c, &err), "?", "a pointer to no option's field");
    cfg_free(c);
}

Test(config, flags_override_the_file_and_booleans_may_be_bare)
{
    cfg *c;
    char err[512];
    char *argv[] = {"--processes", "5", "--master", "--threads=4", "--lazy-apps=no"};
    cr_assert_eq(load("[uwsgi]\nprocesses = 2\nlazy-apps = true\n", 5, argv, &c, err), 0, "%s",
                 err);
    cr_assert_eq(core(c)->processes, 5);
    cr_assert_eq(core(c)->threads, 4);
    cr_assert(core(c)->master);
    cr_assert(!core(c)->lazy_apps);
    cfg_free(c);
}

Test(config, errors_name_option_reason_and_file_line)
{
    cfg *c;
    char err[512];
    cr_assert_eq(load("[uwsgi]\n\nprocesses = many\n", 0, NULL, &c, err), -1);
    cr_assert(strstr(err, ":3:") && strstr(err, "processes") && strstr(err, "not an integer"), "%s",
              err);
    cr_assert_eq(load("[uwsgi]\nbogus = 1\n", 0, NULL, &c, err), -1);
    cr_assert(strstr(err, ":2:") && strstr(err, "unknown option 'bogus'"), "%s", err);
    cr_assert_eq(load("[uwsgi]\nthreads = 0\n", 0, NULL, &c, err), -1);
    cr_assert(strstr(err, "out of range"), "%s", err);
    cr_assert_eq(load("[uwsgi]\nthis is not ini\n", 0, NULL, &c, err), -1);
    cr_assert(strstr(err, ":2:"), "%s", err);
    char *argv[] = {"--buffer-size=lots"};
    cr_assert_eq(load(NULL, 1, argv, &c, err), -2, "a bad flag is a usage error");
    cr_assert(strstr(err, "--buffer-size") && strstr(err, "size"), "%s", err);
    char *argv2[] = {"--processes"};
    cr_assert_eq(load(NULL, 1, argv2, &c, err), -2);
    cr_assert(strstr(err, "needs a value"), "%s", err);
}

Test(config, strict_false_turns_unknown_options_into_warnings)
{
    cfg *c;
    char err[512];
    cr_assert_eq(load("[uwsgi]\nbogus = 1\nstrict = false\n", 0, NULL, &c, err), 0, "%s", err);
    cfg_free(c);
}

Test(config, missing_file_is_an_error)
{
    cfg *c;
    char err[512];
    char *argv[] = {"--ini", "/nonexistent/x.ini"};
    cr_assert_eq(cfg_load(2, argv, tables, &c, err, sizeof(err)), -1);
    cr_assert(strstr(err, "/nonexistent/x.ini"), "%s", err);
}

Test(config, ini_values_expand_environment_variables_like_uwsgi)
{
    cfg *c;
    char err[512];
    setenv("AISERVE_T_PORT", "5123", 1);
    unsetenv("AISERVE_T_NONE");
    cr_assert_eq(load("[uwsgi]\nhttp = 127.0.0.1:$(AISERVE_T_PORT)\nenv = X=$(AISERVE_T_NONE)y\n"
                      "env = Y=$(unclosed\n",
                      0, NULL, &c, err),
                 0, "%s", err);
    cr_assert_str_eq(core(c)->http.v[0], "127.0.0.1:5123");
    cr_assert_str_eq(core(c)->env.v[0], "X=y");
    cr_assert_str_eq(core(c)->env.v[1], "Y=$(unclosed");
    cfg_free(c);
}

Test(config, every_alias_of_an_option_reaches_it)
{
    char err[512];
    cfg *c;
    const char *forms[] = {"home", "virtualenv", "venv", "pyhome"};
    for (int i = 0; i < 4; i++) {
        char text[128];
        snprintf(text, sizeof(text), "[uwsgi]\nhttp = :1\n%s = /v%d\n", forms[i], i);
        cr_assert_eq(load(text, 0, NULL, &c, err), 0, "%s: %s", forms[i], err);
        char want[8];
        snprintf(want, sizeof(want), "/v%d", i);
        cr_assert_str_eq(ex(c)->home, want);
        cfg_free(c);
    }
    char *argv[] = {"--http=:1", "--pyhome=/p"};
    cr_assert_eq(load(NULL, 2, argv, &c, err), 0, "%s", err);
    cr_assert_str_eq(ex(c)->home, "/p");
    cfg_free(c);
    cr_assert_neq(load("[uwsgi]\nhttp = :1\nven = /x\n", 0, NULL, &c, err), 0,
                  "a prefix of an alias is no alias");
    cr_assert_neq(strstr(err, "'ven'"), NULL, "%s", err);
}

Test(config, a_list_flag_replaces_the_files_list_and_repeats_within_a_source_accumulate)
{
    cfg *c;
    char err[512];
    char *argv[] = {"--http=:5601", "--env", "C=3", "--env=D=4"};
    cr_assert_eq(
        load("[uwsgi]\nhttp = :5000\nhttp = :5001\nenv = A=1\nsocket = /s\n", 4, argv, &c, err), 0,
        "%s", err);
    size_t n;
    const char *const *http = core(c)->http.v;
    n = core(c)->http.n;
    cr_assert_eq(n, 1, "the file's two listeners are replaced, not added to");
    cr_assert_str_eq(http[0], ":5601");
    cr_assert_str_eq(cfg_where(c, &core(c)->http, 0), "--http");
    const char *const *env = core(c)->env.v;
    n = core(c)->env.n;
    cr_assert_eq(n, 2);
    cr_assert_str_eq(env[0], "C=3");
    cr_assert_str_eq(env[1], "D=4");
    n = core(c)->socket.n;
    cr_assert_eq(n, 1, "a list no flag names keeps the file's items");
    cfg_free(c);
}

Test(config, environment_sets_options_between_the_file_and_the_flags)
{
    cfg *c;
    char err[512];
    setenv("UWSGI_PROCESSES", "3", 1);
    setenv("UWSGI_HTTP", ":7000", 1);
    setenv("AISERVE_HTTP_KEEPALIVE", "7", 1);
    setenv("UWSGI_HTTP_KEEPALIVE", "9", 1);
    setenv("AISERVE_NOT_AN_OPTION", "x", 1); /* other names under the prefix are left alone */
    char *argv[] = {"--processes=5"};
    int rc = load("[uwsgi]\nprocesses = 2\nhttp = :5000\nthreads = 4\n", 1, argv, &c, err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(core(c)->http.v[0], ":7000");
    cr_assert_eq(core(c)->http.n, 1, "the environment replaces the file's list");
    cr_assert_str_eq(cfg_where(c, &core(c)->http, 0), "environment UWSGI_HTTP");
    cr_assert_eq(core(c)->processes, 5, "a flag beats the environment");
    cr_assert_eq(core(c)->threads, 4, "the file still sets what nothing else does");
    cr_assert_eq(core(c)->http_keepalive, 7, "AISERVE_ beats UWSGI_");
    cfg_free(c);
    setenv("UWSGI_THREADS", "lots", 1);
    cr_assert_eq(load("[uwsgi]\nhttp = :1\n", 0, NULL, &c, err), -1);
    cr_assert(strstr(err, "environment UWSGI_THREADS") && strstr(err, "not an integer"), "%s", err);
    unsetenv("UWSGI_THREADS");
    unsetenv("UWSGI_PROCESSES");
    unsetenv("UWSGI_HTTP");
    unsetenv("AISERVE_HTTP_KEEPALIVE");
    unsetenv("UWSGI_HTTP_KEEPALIVE");
    unsetenv("AISERVE_NOT_AN_OPTION");
}

Test(config, uwsgi_ini_in_the_environment_names_the_file)
{
    cfg *c;
    char err[512];
    char *path = write_ini("[uwsgi]\nprocesses = 6\n");
    setenv("UWSGI_INI", path, 1);
    char *argv[] = {"--http=:1"};
    cr_assert_eq(cfg_load(1, argv, tables, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(core(c)->processes, 6);
    cr_assert_str_eq(cfg_file(c), path);
    cfg_free(c);
    unsetenv("UWSGI_INI");
    unlink(path);
}

Test(config, strict_names_every_unknown_key_with_file_line_and_the_closest_name)
{
    cfg *c;
    char err[2048];
    char *path = write_ini("[uwsgi]\nproceses = 2\nhttp = :1\nchmod_socket = 660\n"
                           "threads = lots\nfrobnicate = 1\nvenvv = /v\n");
    char *argv[] = {path};
    cr_assert_eq(cfg_load(1, argv, tables, &c, err, sizeof(err)), -1);
    unlink(path);
    char want[4][256];
    snprintf(want[0], 256, "%s:2: unknown option 'proceses' (did you mean 'processes'?)", path);
    snprintf(want[1], 256, "%s:4: unknown option 'chmod_socket' (did you mean 'chmod-socket'?)",
             path);
    snprintf(want[2], 256, "%s:6: unknown option 'frobnicate'\n", path);
    snprintf(want[3], 256, "%s:7: unknown option 'venvv' (did you mean 'venv'?)", path);
    for (int i = 0; i < 4; i++) cr_assert(strstr(err, want[i]), "%s\nnot in\n%s", want[i], err);
    cr_assert(strstr(err, ":5: option 'threads': 'lots' is not an integer"), "%s", err);
    cr_assert(strstr(err, "4 unknown options"), "%s", err);
}

Test(config, many_faults_fit_the_message_with_a_count_of_the_rest)
{
    cfg *c;
    char err[600], text[8192] = "[uwsgi]\n";
    for (int i = 0; i < 200; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof(text) - n, "bogus%d = 1\n", i);
    }
    char *path = write_ini(text);
    char *argv[] = {path};
    cr_assert_eq(cfg_load(1, argv, tables, &c, err, sizeof(err)), -1);
    unlink(path);
    cr_assert(strlen(err) < sizeof(err));
    cr_assert(strstr(err, "more") && strstr(err, "200 unknown options"), "%s", err);
}

Test(config, uwsgi_options_without_meaning_load_with_one_note_each)
{
    cfg *c;
    char err[512];
    cr_assert_eq(load("[uwsgi]\nhttp = :1\nthunder-lock = true\nignore-sigpipe = true\n"
                      "thunder-lock = 1\nno-orphans\nmemory-report = true\n",
                      0, NULL, &c, err),
                 -1, "a line without '=' is still a syntax error");
    cr_assert_eq(load("[uwsgi]\nhttp = :1\nthunder-lock = true\nignore-sigpipe = true\n"
                      "thunder-lock = 1\nmemory-report = true\n",
                      0, NULL, &c, err),
                 0, "%s", err);
    size_t n;
    const char *const *m = cfg_messages(c, &n);
    cr_assert_eq(n, 3, "one note per option, not per line");
    cr_assert(strstr(m[0], ":3: 'thunder-lock' has no meaning here") && strstr(m[0], "note:"), "%s",
              m[0]);
    cr_assert(strstr(m[1], "'ignore-sigpipe'"), "%s", m[1]);
    cfg_free(c);
    cr_assert_eq(load("[uwsgi]\nstrict = false\nthreds = 2\n", 0, NULL, &c, err), 0, "%s", err);
    m = cfg_messages(c, &n);
    cr_assert_eq(n, 1);
    cr_assert(strstr(m[0], "warning:") && strstr(m[0], "did you mean 'threads'"), "%s", m[0]);
    cfg_free(c);
}

Test(config, booleans_and_sizes_take_uwsgis_forms)
{
    cfg *c;
    char err[512];
    cr_assert_eq(load("[uwsgi]\nhttp = :1\nvacuum =\nlazy-apps = True\nneed-app = ON\n"
                      "buffer-size = 32KiB\npost-buffering = 64kb\nlimit-post = 1M\n",
                      0, NULL, &c, err),
                 0, "%s", err);
    cr_assert(core(c)->vacuum, "an empty boolean is true, as in uWSGI");
    cr_assert(core(c)->lazy_apps && core(c)->need_app);
    cr_assert_eq(core(c)->buffer_size, 32768);
    cr_assert_eq(core(c)->post_buffering, 65536);
    cr_assert_eq(core(c)->limit_post, 1 << 20);
    cfg_free(c);
}

Test(config, a_section_after_the_file_name_picks_it_and_placeholders_expand)
{
    cfg *c;
    char err[512];
    char *path = write_ini("[uwsgi]\nprocesses = 2\n[staging]\nprocesses = 5\nchdir = %d\n"
                           "pidfile = %(chdir)%n.pid ; inline comment\n");
    char spec[128];
    snprintf(spec, sizeof(spec), "%s:staging", path);
    char *argv[] = {spec};
    cr_assert_eq(cfg_load(1, argv, tables, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(core(c)->processes, 5);
    cr_assert_str_eq(cfg_file(c), path, "cfg_file is the file, without its section");
    cr_assert_str_eq(core(c)->chdir, "/tmp/");
    char want[128];
    snprintf(want, sizeof(want), "/tmp/%s.pid", strrchr(path, '/') + 1);
    cr_assert_str_eq(core(c)->pidfile, want);
    cfg_free(c);
    unlink(path);
}

Test(config, procname_options_are_known)
{
    cfg *c;
    char err[512];
    cr_assert_eq(load("[uwsgi]\nhttp = :1\nauto-procname = true\nprocname-prefix-spaced = app\n", 0,
                      NULL, &c, err),
                 0, "%s", err);
    cr_assert(core(c)->auto_procname);
    cr_assert_str_eq(core(c)->procname_prefix_spaced, "app");
    cfg_free(c);
}

Test(config, meaningless_uwsgi_flags_are_bare_unless_they_take_a_value)
{
    cfg *c;
    char err[512];
    char *argv[] = {"--thunder-lock", "--processes", "2", "--log-slow", "1", "--no-orphans"};
    cr_assert_eq(load(NULL, 6, argv, &c, err), 0, "%s", err);
    cr_assert_eq(core(c)->processes, 2, "--thunder-lock took no value");
    size_t n;
    const char *const *m = cfg_messages(c, &n);
    cr_assert_eq(n, 3);
    cr_assert(strstr(m[0], "--thunder-lock: 'thunder-lock' has no meaning here"), "%s", m[0]);
    cfg_free(c);
    setenv("UWSGI_IGNORE_SIGPIPE", "true", 1);
    cr_assert_eq(load(NULL, 0, NULL, &c, err), 0, "%s", err);
    m = cfg_messages(c, &n);
    cr_assert_eq(n, 1);
    cr_assert(strstr(m[0], "environment UWSGI_IGNORE_SIGPIPE"), "%s", m[0]);
    cfg_free(c);
    unsetenv("UWSGI_IGNORE_SIGPIPE");
}

Test(config, an_environment_name_a_letter_off_an_option_warns)
{
    cfg *c;
    char err[512];
    setenv("UWSGI_PROCESES", "3", 1);
    setenv("AISERVE_BUILD", "build", 1); /* not near enough to anything: silent */
    cr_assert_eq(load(NULL, 0, NULL, &c, err), 0, "%s", err);
    cr_assert_eq(core(c)->processes, 1);
    size_t n;
    const char *const *m = cfg_messages(c, &n);
    cr_assert_eq(n, 1);
    cr_assert(strstr(m[0], "UWSGI_PROCESES") && strstr(m[0], "did you mean UWSGI_PROCESSES?"), "%s",
              m[0]);
    cfg_free(c);
    unsetenv("UWSGI_PROCESES");
    unsetenv("AISERVE_BUILD");
}
