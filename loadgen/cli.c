/*
 * Command-line parsing. Options are a table: each names its short and long
 * spelling, whether it takes a value and a setter. "--opt=value", "--opt
 * value" and "-u10" / "-u 10" are all accepted, as Locust's argparse does.
 */
#define _GNU_SOURCE
#include "loadgen/cli.h"

#include "lib/err.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_duration(const char *s, double *seconds)
{
    if (!s || !*s) return -1;
    char *e;
    double total = 0;
    const char *p = s;
    int parts = 0;
    while (*p) {
        errno = 0;
        double v = strtod(p, &e);
        if (e == p || errno || v < 0 || !isfinite(v)) return -1;
        p = e;
        double unit = 1;
        if (!strncmp(p, "ms", 2))
            unit = 0.001, p += 2;
        else if (*p == 'h')
            unit = 3600, p++;
        else if (*p == 'm')
            unit = 60, p++;
        else if (*p == 's')
            unit = 1, p++;
        else if (*p)
            return -1;
        total += v * unit;
        parts++;
    }
    if (!parts) return -1;
    *seconds = total;
    return 0;
}

static int parse_num(const char *v, double lo, double *out)
{
    char *e;
    errno = 0;
    double d = strtod(v, &e);
    if (e == v || *e || errno || !isfinite(d) || d < lo) return -1;
    *out = d;
    return 0;
}

static int parse_int(const char *v, long lo, long hi, int *out)
{
    char *e;
    errno = 0;
    long d = strtol(v, &e, 10);
    if (e == v || *e || errno || d < lo || d > hi) return -1;
    *out = (int)d;
    return 0;
}

/* ---- thresholds ---- */

static int parse_metric(const char *m, size_t n, cli_threshold *t)
{
    char name[32];
    if (n >= sizeof(name)) return -1;
    memcpy(name, m, n);
    name[n] = '\0';
    static const struct {
        const char *name;
        cli_metric m;
    } simple[] = {{"avg", CLI_M_AVG},
                  {"min", CLI_M_MIN},
                  {"max", CLI_M_MAX},
                  {"error_rate", CLI_M_ERROR_RATE},
                  {"fail_ratio", CLI_M_ERROR_RATE},
                  {"rps", CLI_M_RPS},
                  {"requests", CLI_M_REQUESTS},
                  {"failures", CLI_M_FAILURES},
                  {"dropped", CLI_M_DROPPED},
                  {"late", CLI_M_LATE}};
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        if (!strcmp(name, simple[i].name)) {
            t->metric = simple[i].m;
            return 0;
        }
    }
    const char *p = !strcmp(name, "median") ? "50" : name[0] == 'p' ? name + 1 : NULL;
    if (!p) return -1;
    for (int k = 0; k < RUNNER_NPCT; k++) {
        /* "p99.9" names the column labelled "99.9%" */
        const char *label = runner_pcts[k].label;
        size_t len = strlen(p);
        if (len + 1 == strlen(label) && !strncmp(p, label, len)) {
            t->metric = CLI_M_PCT;
            t->pct = k;
            return 0;
        }
    }
    return -1;
}

static int is_time(cli_metric m)
{
    return m == CLI_M_PCT || m == CLI_M_AVG || m == CLI_M_MIN || m == CLI_M_MAX;
}

int cli_parse_threshold(const char *s, cli_threshold *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->text, sizeof(t->text), "%s", s);
    const char *op = strpbrk(s, "<>=!");
    if (!op) return err_fmt(err, errlen, "--fail-if '%s': want METRIC OP VALUE, e.g. p99<200ms", s);
    size_t mlen = (size_t)(op - s);
    while (mlen && isspace((unsigned char)s[mlen - 1])) mlen--;
    const char *m = s;
    while (isspace((unsigned char)*m)) m++, mlen--;
    if (parse_metric(m, mlen, t))
        return err_fmt(
            err, errlen,
            "--fail-if '%s': unknown metric '%.*s' (want p50..p99.99, p100, median, avg, "
            "min, max, error_rate, rps, requests, failures, dropped, late)",
            s, (int)mlen, m);
    const char *v;
    if (!strncmp(op, "<=", 2))
        t->op = CLI_LE, v = op + 2;
    else if (!strncmp(op, ">=", 2))
        t->op = CLI_GE, v = op + 2;
    else if (!strncmp(op, "==", 2))
        t->op = CLI_EQ, v = op + 2;
    else if (!strncmp(op, "!=", 2))
        t->op = CLI_NE, v = op + 2;
    else if (*op == '<')
        t->op = CLI_LT, v = op + 1;
    else if (*op == '>')
        t->op = CLI_GT, v = op + 1;
    else if (*op == '=')
        t->op = CLI_EQ, v = op + 1;
    else
        return err_fmt(err, errlen, "--fail-if '%s': bad operator", s);
    while (isspace((unsigned char)*v)) v++;
    char *e;
    errno = 0;
    double val = strtod(v, &e);
    if (e == v || errno || !isfinite(val))
        return err_fmt(err, errlen, "--fail-if '%s': '%s' is not a number", s, v);
    while (isspace((unsigned char)*e)) e++;
    if (is_time(t->metric)) {
        if (!*e || !strcmp(e, "ms"))
            t->value = val;
        else if (!strcmp(e, "s"))
            t->value = val * 1000;
        else if (!strcmp(e, "us"))
            t->value = val / 1000;
        else
            return err_fmt(err, errlen, "--fail-if '%s': time unit must be us, ms or s", s);
    } else if (t->metric == CLI_M_ERROR_RATE) {
        if (!strcmp(e, "%"))
            t->value = val / 100;
        else if (!*e)
            t->value = val;
        else
            return err_fmt(err, errlen, "--fail-if '%s': a rate is a fraction or N%%", s);
    } else {
        if (*e) return err_fmt(err, errlen, "--fail-if '%s': '%s' takes a plain number", s, m);
        t->value = val;
    }
    return 0;
}

int cli_threshold_check(const cli_threshold *t, const runner_snapshot *s, double *actual)
{
    const runner_entry *e = &s->total;
    double v = 0;
    switch (t->metric) {
    case CLI_M_PCT: v = e->pct_ms[t->pct]; break;
    case CLI_M_AVG: v = e->avg_ms; break;
    case CLI_M_MIN: v = e->min_ms; break;
    case CLI_M_MAX: v = e->max_ms; break;
    case CLI_M_ERROR_RATE: v = s->fail_ratio; break;
    case CLI_M_RPS: v = e->total_rps; break;
    case CLI_M_REQUESTS: v = (double)e->num_requests; break;
    case CLI_M_FAILURES: v = (double)e->num_failures; break;
    case CLI_M_DROPPED: v = (double)s->dropped; break;
    case CLI_M_LATE: v = (double)e->not_on_time; break;
    }
    *actual = v;
    switch (t->op) {
    case CLI_LT: return v < t->value;
    case CLI_LE: return v <= t->value;
    case CLI_GT: return v > t->value;
    case CLI_GE: return v >= t->value;
    case CLI_EQ: return v == t->value;
    case CLI_NE: return v != t->value;
    }
    return 0;
}

/* ---- options ---- */

#define OPT_MANY   2
#define OPT_REPEAT 3 /* one value, each occurrence adds one */

typedef int (*opt_set)(cli_opts *o, const char *v, char *err, size_t errlen);

typedef struct opt {
    const char *sname, *lname;
    int arg; /* takes a value; OPT_MANY: one or more, as argparse's nargs='+';
              * OPT_REPEAT: one, repeatable */
    opt_set set;
    const char *help;
} opt;

#define NUM_SETTER(fn, field, lo, what)                                                            \
    static int fn(cli_opts *o, const char *v, char *err, size_t errlen)                            \
    {                                                                                              \
        if (parse_num(v, lo, &o->field))                                                           \
            return err_fmt(err, errlen, what " must be a number >= %g, not '%s'", (double)lo, v);  \
        return 0;                                                                                  \
    }
#define DUR_SETTER(fn, field, what)                                                                \
    static int fn(cli_opts *o, const char *v, char *err, size_t errlen)                            \
    {                                                                                              \
        if (cli_parse_duration(v, &o->field))                                                      \
            return err_fmt(err, errlen,                                                            \
                           what " must be a duration like 30, 30s, 5m or 1h30m, not '%s'", v);     \
        return 0;                                                                                  \
    }
#define STR_SETTER(fn, field)                                                                      \
    static int fn(cli_opts *o, const char *v, char *err, size_t errlen)                            \
    {                                                                                              \
        (void)err;                                                                                 \
        (void)errlen;                                                                              \
        o->field = v;                                                                              \
        return 0;                                                                                  \
    }
#define FLAG_SETTER(fn, field)                                                                     \
    static int fn(cli_opts *o, const char *v, char *err, size_t errlen)                            \
    {                                                                                              \
        (void)v;                                                                                   \
        (void)err;                                                                                 \
        (void)errlen;                                                                              \
        o->field = 1;                                                                              \
        return 0;                                                                                  \
    }

NUM_SETTER(set_spawn_rate, spawn_rate, 0, "-r/--spawn-rate")
NUM_SETTER(set_rate, rate, 0, "--rate")
NUM_SETTER(set_timeout, timeout_s, 0.001, "--timeout")
NUM_SETTER(set_ctimeout, connect_timeout_s, 0.001, "--connect-timeout")
NUM_SETTER(set_stop_timeout, stop_timeout_s, 0, "--stop-timeout")
DUR_SETTER(set_run_time, run_time_s, "-t/--run-time")
DUR_SETTER(set_autoquit, autoquit_s, "--autoquit")
STR_SETTER(set_file, file)
STR_SETTER(set_host, host)
STR_SETTER(set_csv, csv_prefix)
STR_SETTER(set_html, html)
STR_SETTER(set_json, json)
STR_SETTER(set_body_file, body_file)
STR_SETTER(set_web_host, web_host)
STR_SETTER(set_cacert, cacert)
STR_SETTER(set_config, config)
STR_SETTER(set_web_auth, web_auth)
FLAG_SETTER(set_help, help)
FLAG_SETTER(set_version, version)
FLAG_SETTER(set_headless, headless)
FLAG_SETTER(set_autostart, autostart)
FLAG_SETTER(set_headful, headful)
FLAG_SETTER(set_full_history, csv_full_history)
FLAG_SETTER(set_only_summary, only_summary)
FLAG_SETTER(set_reset_stats, reset_stats)
FLAG_SETTER(set_equal_weights, equal_weights)
FLAG_SETTER(set_insecure, insecure)
FLAG_SETTER(set_list, list_classes)
FLAG_SETTER(set_worker, worker)
FLAG_SETTER(set_master, master)
STR_SETTER(set_master_bind_host, master_bind_host)
NUM_SETTER(set_expect_wait, expect_workers_max_wait, 0, "--expect-workers-max-wait")

/* Locust's --enable-rebalancing: an aiload master always moves users when a
 * worker joins or leaves, so the flag is accepted and changes nothing. */
static int set_rebalancing(cli_opts *o, const char *v, char *err, size_t errlen)
{
    (void)o, (void)v, (void)err, (void)errlen;
    return 0;
}

static int set_master_bind_port(cli_opts *o, const char *v, char *err, size_t errlen)
{
    double d;
    if (parse_num(v, 1, &d) || d > 65535 || d != (int)d)
        return err_fmt(err, errlen, "--master-bind-port must be a port number 1..65535, not '%s'",
                       v);
    o->master_bind_port = (int)d;
    return 0;
}

static int set_processes(cli_opts *o, const char *v, char *err, size_t errlen)
{
    double d;
    if (!strcmp(v, "-1")) {
        o->processes = -1;
        return 0;
    }
    if (parse_num(v, 1, &d) || d > 1024 || d != (int)d)
        return err_fmt(err, errlen, "--processes must be 1..1024 or -1 (one per core), not '%s'",
                       v);
    o->processes = (int)d;
    return 0;
}

static int set_expect_workers(cli_opts *o, const char *v, char *err, size_t errlen)
{
    double d;
    if (parse_num(v, 1, &d) || d > 100000 || d != (int)d)
        return err_fmt(err, errlen, "--expect-workers must be a whole number >= 1, not '%s'", v);
    o->expect_workers = (int)d;
    return 0;
}
STR_SETTER(set_master_host, master_host)

static int set_master_port(cli_opts *o, const char *v, char *err, size_t errlen)
{
    double d;
    if (parse_num(v, 1, &d) || d > 65535 || d != (int)d)
        return err_fmt(err, errlen, "--master-port must be a port number 1..65535, not '%s'", v);
    o->master_port = (int)d;
    return 0;
}

/* One -T/-E value: a tag or a comma list of them, no control bytes. */
static int tag_value_ok(const char *v)
{
    int any = 0;
    for (const char *c = v; *c; c++) {
        if ((unsigned char)*c < ' ' || *c == 0x7f) return 0;
        any |= *c != ',' && *c != ' ';
    }
    return any;
}

static int add_tag(const char **list, size_t *n, const char *flag, const char *v, char *err,
                   size_t errlen)
{
    if (!tag_value_ok(v)) return err_fmt(err, errlen, "%s needs tag names, not '%s'", flag, v);
    if (*n == CLI_MAX_LIST) return err_fmt(err, errlen, "too many %s values", flag);
    list[(*n)++] = v;
    return 0;
}

static int set_tags(cli_opts *o, const char *v, char *err, size_t errlen)
{
    return add_tag(o->tags, &o->ntags, "-T/--tags", v, err, errlen);
}

static int set_exclude_tags(cli_opts *o, const char *v, char *err, size_t errlen)
{
    return add_tag(o->exclude_tags, &o->nexclude_tags, "-E/--exclude-tags", v, err, errlen);
}

static int set_users(cli_opts *o, const char *v, char *err, size_t errlen)
{
    if (parse_int(v, 1, 10000000, &o->users))
        return err_fmt(err, errlen, "-u/--users (or -c) must be an integer >= 1, not '%s'", v);
    return 0;
}

static int set_threads(cli_opts *o, const char *v, char *err, size_t errlen)
{
    if (parse_int(v, 1, 256, &o->threads))
        return err_fmt(err, errlen, "--threads must be an integer 1..256, not '%s'", v);
    return 0;
}

static int set_exit_code(cli_opts *o, const char *v, char *err, size_t errlen)
{
    if (parse_int(v, 0, 255, &o->exit_code_on_error))
        return err_fmt(err, errlen, "--exit-code-on-error must be 0..255, not '%s'", v);
    return 0;
}

static int set_web_port(cli_opts *o, const char *v, char *err, size_t errlen)
{
    if (parse_int(v, 0, 65535, &o->web_port))
        return err_fmt(err, errlen, "-P/--web-port must be 0..65535, not '%s'", v);
    return 0;
}

static int set_seed(cli_opts *o, const char *v, char *err, size_t errlen)
{
    int s;
    if (parse_int(v, 1, 2147483647, &s))
        return err_fmt(err, errlen, "--seed must be a positive integer, not '%s'", v);
    o->seed = (unsigned)s;
    return 0;
}

static int set_method(cli_opts *o, const char *v, char *err, size_t errlen)
{
    char *up = o->method_up;
    size_t n = strlen(v);
    if (n == 0 || n >= sizeof(o->method_up))
        return err_fmt(err, errlen, "-m/--method: bad method '%s'", v);
    for (size_t i = 0; i < n; i++) {
        if (!isalpha((unsigned char)v[i])) return err_fmt(err, errlen, "-m: bad method '%s'", v);
        up[i] = (char)toupper((unsigned char)v[i]);
    }
    up[n] = '\0';
    o->method = up;
    return 0;
}

static int set_header(cli_opts *o, const char *v, char *err, size_t errlen)
{
    if (o->nheaders == CLI_MAX_LIST) return err_fmt(err, errlen, "too many --header options");
    const char *colon = strchr(v, ':');
    if (!colon || colon == v)
        return err_fmt(err, errlen, "--header must be 'Name: value', not '%s'", v);
    o->headers[o->nheaders++] = v;
    return 0;
}

static int set_stage(cli_opts *o, const char *v, char *err, size_t errlen)
{
    if (o->nstages == CLI_MAX_LIST) return err_fmt(err, errlen, "too many --stage options");
    const char *colon = strchr(v, ':');
    char dur[64];
    if (!colon || (size_t)(colon - v) >= sizeof(dur))
        return err_fmt(err, errlen, "--stage must be DURATION:RATE (e.g. 30s:500), not '%s'", v);
    memcpy(dur, v, (size_t)(colon - v));
    dur[colon - v] = '\0';
    runner_stage *s = &o->stages[o->nstages];
    if (cli_parse_duration(dur, &s->duration_s) || s->duration_s <= 0 ||
        parse_num(colon + 1, 0, &s->target))
        return err_fmt(err, errlen, "--stage must be DURATION:RATE (e.g. 30s:500), not '%s'", v);
    o->nstages++;
    return 0;
}

static int set_fail_if(cli_opts *o, const char *v, char *err, size_t errlen)
{
    if (o->nthresholds == CLI_MAX_LIST) return err_fmt(err, errlen, "too many --fail-if options");
    if (cli_parse_threshold(v, &o->thresholds[o->nthresholds], err, errlen)) return -1;
    o->nthresholds++;
    return 0;
}

static const opt opts[] = {
    {"-h", "--help", 0, set_help, "show this help"},
    {NULL, "--version", 0, set_version, "print the version"},
    {"-f", "--locustfile", 1, set_file, "scenario file (docs/scenario.md)"},
    {NULL, "--headless", 0, set_headless, "run without the web UI"},
    {NULL, "--headful", 0, set_headful,
     "cancel a --headless from a config file or LOCUST_HEADLESS"},
    {NULL, "--config", 1, set_config,
     "config file (Locust's format; ~/.locust.conf and ./locust.conf are read too)"},
    {"-u", "--users", 1, set_users, "peak number of users (open model: connections)"},
    {"-c", "--connections", 1, set_users, "quick mode: connections (= users)"},
    {"-r", "--spawn-rate", 1, set_spawn_rate, "users started per second"},
    {"-t", "--run-time", 1, set_run_time, "stop after this long (30s, 5m, 1h30m)"},
    {"-d", "--duration", 1, set_run_time, "quick mode: same as --run-time"},
    {"-H", "--host", 1, set_host, "target, http[s]://host[:port]"},
    {"-k", "--insecure", 0, set_insecure, "https: do not verify the server's certificate"},
    {NULL, "--cacert", 1, set_cacert, "https: also trust the CAs in this PEM file"},
    {NULL, "--csv", 1, set_csv,
     "write PREFIX_stats.csv, _stats_history.csv, _failures.csv, "
     "_exceptions.csv"},
    {NULL, "--csv-full-history", 0, set_full_history, "history rows for every name"},
    {NULL, "--html", 1, set_html, "write the HTML report at the end"},
    {NULL, "--json", 1, set_json, "write a JSON summary with full percentiles"},
    {NULL, "--only-summary", 0, set_only_summary, "print only the final tables"},
    {"-s", "--stop-timeout", 1, set_stop_timeout, "seconds to await in-flight requests (10)"},
    {NULL, "--reset-stats", 0, set_reset_stats, "reset statistics once spawning completes"},
    {NULL, "--exit-code-on-error", 1, set_exit_code, "exit code when requests failed (1)"},
    {NULL, "--fail-if", OPT_REPEAT, set_fail_if,
     "threshold, e.g. 'p99<200ms' (exit 3 when broken)"},
    {NULL, "--threads", 1, set_threads, "worker threads (one per core)"},
    {NULL, "--rate", 1, set_rate, "open model: arrivals per second (total)"},
    {NULL, "--stage", OPT_REPEAT, set_stage, "open model ramp DURATION:RATE (repeatable)"},
    {"-m", "--method", 1, set_method, "quick mode: HTTP method (GET)"},
    {NULL, "--header", OPT_REPEAT, set_header,
     "quick mode: request header 'Name: value' (repeatable)"},
    {NULL, "--body-file", 1, set_body_file, "quick mode: request body from a file"},
    {NULL, "--timeout", 1, set_timeout, "response timeout in seconds (60)"},
    {NULL, "--connect-timeout", 1, set_ctimeout, "connect timeout in seconds (10)"},
    {NULL, "--seed", 1, set_seed, "random seed for wait times and substitutions"},
    {"-T", "--tags", OPT_MANY, set_tags, "run only tasks with one of these tags (TAG...)"},
    {"-E", "--exclude-tags", OPT_MANY, set_exclude_tags, "leave out tasks with any of these tags"},
    {"-l", "--list", 0, set_list, "print the scenario's user classes and exit"},
    {NULL, "--equal-weights", 0, set_equal_weights,
     "ignore task and class weights: all equally likely"},
    {NULL, "--autostart", 0, set_autostart, "web UI: start the test at once"},
    {NULL, "--autoquit", 1, set_autoquit, "web UI: exit this long after the test stops"},
    {NULL, "--web-host", 1, set_web_host, "web UI bind address (127.0.0.1; '*': all)"},
    {NULL, "--web-auth", 1, set_web_auth,
     "web UI: require HTTP Basic auth USER:PASS (or LOCUST_WEB_AUTH)"},
    {"-P", "--web-port", 1, set_web_port, "web UI port (8089)"},
    {NULL, "--master", 0, set_master, "run as a master of Locust or aiload workers"},
    {NULL, "--master-bind-host", 1, set_master_bind_host, "master: address to bind ('*': all)"},
    {NULL, "--master-bind-port", 1, set_master_bind_port, "master: port to bind (5557)"},
    {NULL, "--expect-workers", 1, set_expect_workers,
     "master, headless: workers to await before the test starts (1)"},
    {NULL, "--expect-workers-max-wait", 1, set_expect_wait,
     "master: give up awaiting them after this many seconds (0: never)"},
    {NULL, "--enable-rebalancing", 0, set_rebalancing,
     "master: accepted for Locust's sake (aiload always rebalances)"},
    {NULL, "--worker", 0, set_worker, "run as a worker of a Locust or aiload master"},
    {NULL, "--processes", 1, set_processes,
     "a local master and N worker processes (-1: one per core)"},
    {NULL, "--master-host", 1, set_master_host, "worker: the master's address (127.0.0.1)"},
    {NULL, "--master-port", 1, set_master_port, "worker: the master's port (5557)"},
};

static const opt *find_opt(const char *a, const char **inline_val)
{
    *inline_val = NULL;
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        const opt *o = &opts[i];
        if (a[1] == '-') {
            size_t n = strlen(o->lname);
            if (!strncmp(a, o->lname, n) && (a[n] == '\0' || (a[n] == '=' && o->arg))) {
                if (a[n] == '=') *inline_val = a + n + 1;
                return o;
            }
        } else if (o->sname && a[1] == o->sname[1]) {
            if (a[2] && !o->arg) continue;
            if (a[2]) *inline_val = a + 2;
            return o;
        }
    }
    return NULL;
}

/* Positional arguments: with -f they name user classes (Locust's
 * "locust -f FILE UserA UserB"), without it the one URL of the quick mode. */
static int sort_positionals(cli_opts *o, const char **pos, size_t npos, char *err, size_t errlen)
{
    if (!o->file) {
        if (npos > 1) return err_fmt(err, errlen, "unexpected argument '%s'", pos[1]);
        o->url = npos ? pos[0] : NULL;
        return 0;
    }
    for (size_t i = 0; i < npos; i++) {
        if (strstr(pos[i], "://"))
            return err_fmt(err, errlen, "give either a URL (quick mode) or -f SCENARIO, not both");
        o->user_classes[o->nuser_classes++] = pos[i];
    }
    return 0;
}

int cli_parse(int argc, char **argv, cli_opts *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    o->exit_code_on_error = 1;
    o->autoquit_s = -1;
    o->web_port = 8089;
    const char *pos[CLI_MAX_LIST];
    size_t npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (npos == CLI_MAX_LIST) return err_fmt(err, errlen, "too many arguments");
            pos[npos++] = a;
            continue;
        }
        const char *val;
        const opt *op = find_opt(a, &val);
        if (!op) return err_fmt(err, errlen, "unknown option '%s' (see --help)", a);
        if (op->arg == OPT_MANY && !val && (i + 1 >= argc || argv[i + 1][0] == '-'))
            return err_fmt(err, errlen, "option '%s' needs at least one value", a);
        int inline_val = val != NULL;
        if (op->arg && !val) {
            if (i + 1 >= argc) return err_fmt(err, errlen, "option '%s' needs a value", a);
            val = argv[++i];
        }
        if (op->set(o, val, err, errlen)) return -1;
        /* "-T a b c": more values up to the next option (a URL is not a tag);
         * "--tags=a" takes only its own value, as in argparse */
        while (op->arg == OPT_MANY && !inline_val && i + 1 < argc && argv[i + 1][0] != '-' &&
               !strstr(argv[i + 1], "://"))
            if (op->set(o, argv[++i], err, errlen)) return -1;
    }
    if (o->help || o->version) return 0;
    if (o->headful) o->headless = 0;
    if (sort_positionals(o, pos, npos, err, errlen)) return -1;
    if (o->list_classes && !o->file) return err_fmt(err, errlen, "-l/--list needs -f SCENARIO");
    o->quick = o->url != NULL;
    if (o->quick && o->file)
        return err_fmt(err, errlen, "give either a URL (quick mode) or -f SCENARIO, not both");
    if (!o->quick && !o->file)
        return err_fmt(err, errlen, "no scenario: give -f SCENARIO or a URL (see --help)");
    if (!o->quick && (o->method || o->nheaders || o->body_file))
        return err_fmt(err, errlen, "-m, --header and --body-file belong to the quick mode (URL)");
    if (o->quick && (o->ntags || o->nexclude_tags))
        return err_fmt(
            err, errlen,
            "-T/--tags and -E/--exclude-tags filter a scenario's tasks: give -f SCENARIO");
    if (o->csv_full_history && !o->csv_prefix)
        return err_fmt(err, errlen, "--csv-full-history needs --csv PREFIX");
    if (o->nstages && o->rate <= 0 && o->stages[0].target <= 0)
        return err_fmt(err, errlen,
                       "--stage ramps the open model: give --rate or a first stage > 0");
    if (o->host && !strstr(o->host, "://"))
        return err_fmt(err, errlen,
                       "-H/--host takes the target URL (as in Locust), not '%s'; headers go in "
                       "--header 'Name: value'",
                       o->host);
    if (o->quick) o->headless = 1;
    return 0;
}

int cli_option_lookup(const char *name, const char **lname, const char **sname)
{
    if (!strncmp(name, "--", 2)) name += 2;
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        if (strcmp(opts[i].lname + 2, name)) continue;
        *lname = opts[i].lname;
        *sname = opts[i].sname;
        return opts[i].arg == OPT_MANY     ? CLI_K_MANY
               : opts[i].arg == OPT_REPEAT ? CLI_K_REPEAT
               : opts[i].arg               ? CLI_K_VALUE
                                           : CLI_K_FLAG;
    }
    return -1;
}

void cli_usage(buf *out)
{
    buf_puts(out,
             "usage: aiload -f SCENARIO [--headless] [-u USERS] [-r SPAWN_RATE] [-t RUN_TIME]\n"
             "              [-H HOST] [options] [UserClass ...]\n"
             "       aiload URL [-c CONNECTIONS] [-d DURATION] [--threads N] [--rate R]\n"
             "              [-m METHOD] [--header 'K: V'] [--body-file F] [options]\n\n"
             "Locust-compatible load tester with wrk's speed (see docs/aiload.md).\n\n");
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        char names[48];
        snprintf(names, sizeof(names), "%s%s%s%s", opts[i].sname ? opts[i].sname : "",
                 opts[i].sname ? ", " : "    ", opts[i].lname,
                 opts[i].arg == OPT_MANY ? " X..."
                 : opts[i].arg           ? " X"
                                         : "");
        buf_printf(out, "  %-28s %s\n", names, opts[i].help);
    }
    buf_puts(out, "\nExit codes: 0 ok; 1 (or --exit-code-on-error) some requests failed;\n"
                  "2 bad command line or scenario; 3 a --fail-if threshold was broken.\n");
}
