#include "loadgen/cli.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <string.h>

#include "loadgen/url.h"

static int parse(cli_opts *o, char *err, int argc, ...)
{
    char *argv[32] = {"aiload"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    return cli_parse(argc + 1, argv, o, err, 256);
}

Test(cli, durations_accept_locust_forms)
{
    double s;
    cr_assert_eq(cli_parse_duration("90", &s), 0);
    cr_assert_eq(s, 90);
    cr_assert_eq(cli_parse_duration("1h30m", &s), 0);
    cr_assert_eq(s, 5400);
    cr_assert_eq(cli_parse_duration("2m15s", &s), 0);
    cr_assert_eq(s, 135);
    cr_assert_eq(cli_parse_duration("250ms", &s), 0);
    cr_assert_float_eq(s, 0.25, 1e-12);
    cr_assert_eq(cli_parse_duration("1.5h", &s), 0);
    cr_assert_eq(s, 5400);
    cr_assert_eq(cli_parse_duration("", &s), -1);
    cr_assert_eq(cli_parse_duration("5x", &s), -1);
    cr_assert_eq(cli_parse_duration("-3s", &s), -1);
}

Test(cli, locust_headless_flags_parse)
{
    cli_opts o;
    char err[256];
    cr_assert_eq(parse(&o, err, 11, "-f", "s.ini", "--headless", "-u", "50", "-r5", "-t", "1m",
                       "--csv=out", "-H", "http://x:1"),
                 0, "%s", err);
    cr_assert(!o.quick);
    cr_assert(o.headless);
    cr_assert_eq(o.users, 50);
    cr_assert_eq(o.spawn_rate, 5);
    cr_assert_eq(o.run_time_s, 60);
    cr_assert_str_eq(o.csv_prefix, "out");
    cr_assert_eq(o.exit_code_on_error, 1);
}

Test(cli, quick_mode_flags_parse)
{
    cli_opts o;
    char err[256];
    cr_assert_eq(parse(&o, err, 11, "http://x/", "-c", "64", "-d", "5s", "--threads", "2", "--rate",
                       "1000", "-m", "post"),
                 0, "%s", err);
    cr_assert(o.quick && o.headless);
    cr_assert_eq(o.users, 64);
    cr_assert_eq(o.threads, 2);
    cr_assert_eq(o.rate, 1000);
    cr_assert_str_eq(o.method, "POST");
}

Test(cli, conflicting_or_missing_options_are_refused)
{
    cli_opts o;
    char err[256];
    cr_assert_eq(parse(&o, err, 3, "http://x/", "-f", "s.ini"), -1);
    cr_assert(strstr(err, "not both"));
    cr_assert_eq(parse(&o, err, 3, "-f", "s.ini", "--header"), -1);
    cr_assert(strstr(err, "needs a value"));
    cr_assert_eq(parse(&o, err, 3, "-f", "s.ini", "--stage=10s"), -1);
    cr_assert(strstr(err, "DURATION:RATE"));
    cr_assert_eq(parse(&o, err, 4, "-f", "s.ini", "--exit-code-on-error", "300"), -1);
    cr_assert_eq(parse(&o, err, 4, "-f", "s.ini", "--spawn-rate", "fast"), -1);
}

Test(cli, tags_take_several_values_repeated_flags_and_comma_lists)
{
    cli_opts o;
    char err[256];
    cr_assert_eq(parse(&o, err, 12, "-f", "s.ini", "-T", "a", "b", "--tags=c,d", "-u", "3", "-E",
                       "x", "--exclude-tags", "y"),
                 0, "%s", err);
    cr_assert_eq(o.ntags, 3);
    cr_assert_str_eq(o.tags[0], "a");
    cr_assert_str_eq(o.tags[1], "b");
    cr_assert_str_eq(o.tags[2], "c,d");
    cr_assert_eq(o.users, 3, "-u ends the tag list");
    cr_assert_eq(o.nexclude_tags, 2);
    cr_assert_str_eq(o.exclude_tags[0], "x");
    cr_assert_str_eq(o.exclude_tags[1], "y");
    cr_assert_not(o.equal_weights);
    cr_assert_eq(parse(&o, err, 4, "-f", "s.ini", "-Tweb", "--equal-weights"), 0, "%s", err);
    cr_assert_eq(o.ntags, 1);
    cr_assert_str_eq(o.tags[0], "web");
    cr_assert(o.equal_weights);
}

Test(cli, bad_tag_flags_are_refused_naming_the_flag)
{
    cli_opts o;
    char err[256];
    cr_assert_eq(parse(&o, err, 3, "-f", "s.ini", "-T"), -1);
    cr_assert(strstr(err, "'-T' needs at least one value"), "%s", err);
    cr_assert_eq(parse(&o, err, 5, "-f", "s.ini", "--exclude-tags", "-u", "2"), -1);
    cr_assert(strstr(err, "'--exclude-tags' needs at least one value"), "%s", err);
    cr_assert_eq(parse(&o, err, 3, "-f", "s.ini", "--tags=,"), -1);
    cr_assert(strstr(err, "-T/--tags needs tag names"), "%s", err);
    cr_assert_eq(parse(&o, err, 4, "-f", "s.ini", "-E", "a\tb"), -1);
    cr_assert(strstr(err, "-E/--exclude-tags"), "%s", err);
    cr_assert_eq(parse(&o, err, 3, "http://x/", "-T", "a"), -1);
    cr_assert(strstr(err, "-T/--tags"), "%s", err);
    cr_assert_eq(parse(&o, err, 3, "-f", "s.ini", "--equal-weights=1"), -1);
    cr_assert(strstr(err, "unknown option"), "%s", err);
}

Test(cli, thresholds_parse_units_and_operators)
{
    cli_threshold t;
    char err[256];
    cr_assert_eq(cli_parse_threshold("p99<200ms", &t, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(t.metric, CLI_M_PCT);
    cr_assert_eq(t.pct, 7);
    cr_assert_eq(t.op, CLI_LT);
    cr_assert_eq(t.value, 200);
    cr_assert_eq(cli_parse_threshold("p99.9 <= 1.5s", &t, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(t.pct, 8);
    cr_assert_eq(t.op, CLI_LE);
    cr_assert_eq(t.value, 1500);
    cr_assert_eq(cli_parse_threshold("error_rate<1%", &t, err, sizeof(err)), 0);
    cr_assert_float_eq(t.value, 0.01, 1e-12);
    cr_assert_eq(cli_parse_threshold("rps>=100", &t, err, sizeof(err)), 0);
    cr_assert_eq(t.op, CLI_GE);
    cr_assert_eq(cli_parse_threshold("rps>100ms", &t, err, sizeof(err)), -1);
    cr_assert_eq(cli_parse_threshold("p98.5<1", &t, err, sizeof(err)), -1);
    cr_assert_eq(cli_parse_threshold("avg 100", &t, err, sizeof(err)), -1);
}

Test(cli, thresholds_evaluate_against_a_snapshot)
{
    runner_snapshot s = {0};
    s.total.pct_ms[RUNNER_P99] = 150;
    s.total.total_rps = 90;
    s.fail_ratio = 0.02;
    cli_threshold t;
    char err[256];
    double v;
    cli_parse_threshold("p99<200ms", &t, err, sizeof(err));
    cr_assert(cli_threshold_check(&t, &s, &v));
    cr_assert_eq(v, 150);
    cli_parse_threshold("rps>100", &t, err, sizeof(err));
    cr_assert_not(cli_threshold_check(&t, &s, &v));
    cli_parse_threshold("error_rate<1%", &t, err, sizeof(err));
    cr_assert_not(cli_threshold_check(&t, &s, &v));
}

Test(url, parses_host_port_path_and_refuses_other_schemes)
{
    lg_url u;
    char err[256];
    cr_assert_eq(lg_url_parse("http://example.com", &u, err, sizeof(err)), 0);
    cr_assert_str_eq(u.host, "example.com");
    cr_assert_str_eq(u.port, "80");
    cr_assert_str_eq(u.path, "/");
    cr_assert_eq(lg_url_parse("http://[::1]:8080/a?b=1#frag", &u, err, sizeof(err)), 0);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_str_eq(u.port, "8080");
    cr_assert_str_eq(u.authority, "[::1]:8080");
    cr_assert_str_eq(u.path, "/a?b=1");
    cr_assert_eq(lg_url_parse("http://h?x=1", &u, err, sizeof(err)), 0);
    cr_assert_str_eq(u.path, "/?x=1");
    cr_assert_eq(u.tls, 0);
    cr_assert_eq(lg_url_parse("ftp://h/", &u, err, sizeof(err)), -1);
    cr_assert(strstr(err, "http:// or https://"), "%s", err);
    cr_assert_eq(lg_url_parse("http://h:99999/", &u, err, sizeof(err)), -1);
    cr_assert_eq(lg_url_parse("http://:80/", &u, err, sizeof(err)), -1);
    cr_assert_eq(lg_url_parse("http://h/a b", &u, err, sizeof(err)), -1);
}

Test(url, a_host_path_is_a_prefix_only_when_written)
{
    lg_url u;
    char err[256];
    cr_assert_eq(lg_url_parse("http://h:81", &u, err, sizeof(err)), 0);
    cr_assert_eq(u.prefix_len, 0);
    cr_assert_eq(lg_url_parse("http://h:81/api/v1", &u, err, sizeof(err)), 0);
    cr_assert_eq(u.prefix_len, 7);
    cr_assert_eq(lg_url_parse("http://h/", &u, err, sizeof(err)), 0);
    cr_assert_eq(u.prefix_len, 1); /* Locust sends "//x" for "http://h/" + "/x" */
    cr_assert_eq(lg_url_parse("http://h#top", &u, err, sizeof(err)), 0);
    cr_assert_eq(u.prefix_len, 0);
}

Test(url, https_defaults_to_port_443_and_keeps_an_explicit_port)
{
    lg_url u;
    char err[256];
    cr_assert_eq(lg_url_parse("https://example.com/a?b", &u, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(u.tls, 1);
    cr_assert_str_eq(u.host, "example.com");
    cr_assert_str_eq(u.port, "443");
    cr_assert_str_eq(u.authority, "example.com");
    cr_assert_str_eq(u.path, "/a?b");
    cr_assert_eq(lg_url_parse("HTTPS://[::1]:8443", &u, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(u.tls, 1);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_str_eq(u.port, "8443");
    cr_assert_str_eq(u.authority, "[::1]:8443");
    cr_assert_eq(lg_url_parse("https://h:0/", &u, err, sizeof(err)), -1);
    cr_assert_eq(lg_url_parse("https:///", &u, err, sizeof(err)), -1);
    cr_assert_eq(lg_url_parse("https//h/", &u, err, sizeof(err)), -1);
}

Test(cli, insecure_and_cacert_flags_are_parsed)
{
    cli_opts o;
    char err[256];
    char *a1[] = {"aiload", "https://h/", "-k", "--cacert", "ca.pem", NULL};
    cr_assert_eq(cli_parse(5, a1, &o, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(o.insecure, 1);
    cr_assert_str_eq(o.cacert, "ca.pem");
    char *a2[] = {"aiload", "https://h/", "--insecure", "--cacert=x.pem", NULL};
    cr_assert_eq(cli_parse(4, a2, &o, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(o.insecure, 1);
    cr_assert_str_eq(o.cacert, "x.pem");
    char *a3[] = {"aiload", "https://h/", "--cacert", NULL};
    cr_assert_eq(cli_parse(3, a3, &o, err, sizeof(err)), -1);
    cr_assert(strstr(err, "--cacert"), "%s", err);
}

Test(cli, positionals_are_user_classes_with_a_file_and_a_url_without)
{
    cli_opts o;
    char err[256];
    char *a1[] = {"aiload", "UserA", "-f", "s.ini", "UserB", "--headless"};
    cr_assert_eq(cli_parse(6, a1, &o, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(o.nuser_classes, 2);
    cr_assert_str_eq(o.user_classes[0], "UserA");
    cr_assert_str_eq(o.user_classes[1], "UserB");
    cr_assert_eq(o.quick, 0);
    char *a2[] = {"aiload", "http://h/", "-c", "2"};
    cr_assert_eq(cli_parse(4, a2, &o, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(o.quick, 1);
    cr_assert_eq(o.nuser_classes, 0);
    char *a3[] = {"aiload", "http://h/", "UserA"};
    cr_assert_eq(cli_parse(3, a3, &o, err, sizeof(err)), -1);
    char *a4[] = {"aiload", "-f", "s.ini", "http://h/"};
    cr_assert_eq(cli_parse(4, a4, &o, err, sizeof(err)), -1);
    cr_assert(strstr(err, "not both"), "%s", err);
}

Test(cli, distributed_flags)
{
    cli_opts o;
    char err[256];
    cr_assert_eq(parse(&o, err, 9, "-f", "x.ini", "--master", "--master-bind-host", "10.0.0.1",
                       "--master-bind-port=6000", "--expect-workers", "3",
                       "--expect-workers-max-wait=2.5"),
                 0, "%s", err);
    cr_assert(o.master);
    cr_assert_str_eq(o.master_bind_host, "10.0.0.1");
    cr_assert_eq(o.master_bind_port, 6000);
    cr_assert_eq(o.expect_workers, 3);
    cr_assert_float_eq(o.expect_workers_max_wait, 2.5, 1e-12);
    cr_assert_eq(parse(&o, err, 7, "-f", "x.ini", "--worker", "--master-host", "h.example",
                       "--master-port", "5558"),
                 0, "%s", err);
    cr_assert(o.worker);
    cr_assert_str_eq(o.master_host, "h.example");
    cr_assert_eq(o.master_port, 5558);
    cr_assert_eq(parse(&o, err, 4, "-f", "x.ini", "--processes", "-1"), 0, "%s", err);
    cr_assert_eq(o.processes, -1);
    cr_assert_eq(parse(&o, err, 4, "-f", "x.ini", "--processes", "0"), -1);
    cr_assert(strstr(err, "--processes"), "%s", err);
    cr_assert_eq(parse(&o, err, 4, "-f", "x.ini", "--master-port", "0"), -1);
    cr_assert_eq(parse(&o, err, 4, "-f", "x.ini", "--expect-workers", "1.5"), -1);
    cr_assert(strstr(err, "--expect-workers"), "%s", err);
    /* Locust's flag: accepted (aiload always rebalances); it takes no value */
    cr_assert_eq(parse(&o, err, 4, "-f", "x.ini", "--master", "--enable-rebalancing"), 0, "%s",
                 err);
    cr_assert_eq(parse(&o, err, 3, "-f", "x.ini", "--enable-rebalancing=yes"), -1);
}
