/*
 * cli: aiload's command line (Locust's headless flags, the wrk-like quick
 * mode, output options) and the --fail-if thresholds. Pure functions of their
 * input, so they are unit-tested without running a load.
 */
#ifndef LOADGEN_CLI_H
#define LOADGEN_CLI_H

#include <stddef.h>

#include "lib/buf.h"
#include "loadgen/runner.h"

#define CLI_MAX_LIST 64

/* A threshold: METRIC OP VALUE, e.g. p99<200ms, error_rate<1%, rps>100. */
typedef enum cli_metric {
    CLI_M_PCT, /* arg: which of runner_pcts (RUNNER_P50...), or median/avg/min/max below */
    CLI_M_AVG,
    CLI_M_MIN,
    CLI_M_MAX,
    CLI_M_ERROR_RATE, /* failures / requests, as a fraction */
    CLI_M_RPS,
    CLI_M_REQUESTS,
    CLI_M_FAILURES,
    CLI_M_DROPPED,
    CLI_M_LATE,
} cli_metric;

typedef enum cli_op { CLI_LT, CLI_LE, CLI_GT, CLI_GE, CLI_EQ, CLI_NE } cli_op;

typedef struct cli_threshold {
    char text[128]; /* as given, for messages */
    cli_metric metric;
    int pct; /* CLI_M_PCT: a runner_pct, index into runner_pcts and pct_ms */
    cli_op op;
    double value; /* ms for times, fraction for rates, plain otherwise */
} cli_threshold;

typedef struct cli_opts {
    int help, version;
    int quick;        /* a URL was given instead of -f */
    const char *url;  /* quick mode target */
    const char *file; /* -f */
    int headless, autostart;
    int headful;        /* --headful: cancels headless (from a config file), as in Locust */
    const char *config; /* --config FILE, already read by cli_conf_merge() */
    double autoquit_s;  /* < 0: never */
    const char *web_host;
    const char *web_auth; /* --web-auth USER:PASS */
    int web_port;
    int users;         /* -u / -c; 0: not given */
    double spawn_rate; /* -r; 0: not given */
    double run_time_s; /* -t / -d; 0: not given */
    const char *host;  /* -H */
    const char *csv_prefix;
    int csv_full_history;
    const char *html, *json;
    int only_summary, reset_stats;
    double stop_timeout_s;
    int exit_code_on_error;
    int threads;
    double rate;
    runner_stage stages[CLI_MAX_LIST];
    size_t nstages;
    const char *method; /* upper-cased, points at method_up */
    char method_up[16];
    const char *headers[CLI_MAX_LIST];
    size_t nheaders;
    const char *body_file;
    double timeout_s, connect_timeout_s;
    unsigned seed;
    cli_threshold thresholds[CLI_MAX_LIST];
    size_t nthresholds;
    /* Locust's -T/-E: each entry is one argument as given, which may itself
     * be a comma list (scenario_options splits it) */
    const char *tags[CLI_MAX_LIST];
    size_t ntags;
    const char *exclude_tags[CLI_MAX_LIST];
    size_t nexclude_tags;
    int equal_weights;
    /* Locust's positional UserClass arguments (with -f): run only these */
    const char *user_classes[CLI_MAX_LIST];
    size_t nuser_classes;
    int list_classes;   /* -l/--list: print the user classes and exit */
    int insecure;       /* -k/--insecure: no TLS certificate check */
    const char *cacert; /* --cacert FILE: extra trusted CAs for https */
    /* distributed mode (loadgen/dist, Locust's flags) */
    int worker;                     /* --worker */
    const char *master_host;        /* --master-host (127.0.0.1) */
    int master_port;                /* --master-port (5557); 0: not given */
    int master;                     /* --master */
    const char *master_bind_host;   /* --master-bind-host ("*") */
    int master_bind_port;           /* --master-bind-port (5557); 0: not given */
    int expect_workers;             /* --expect-workers (1) */
    double expect_workers_max_wait; /* --expect-workers-max-wait seconds; 0: forever */
    int processes; /* --processes N: a local master and N worker processes; -1: one per core */
} cli_opts;

/* Parses argv into o (strings point into argv). Returns 0, or -1 with a
 * message naming the problem in err (the caller exits 2). */
int cli_parse(int argc, char **argv, cli_opts *o, char *err, size_t errlen);

/* "90", "90s", "1.5m", "1h30m", "250ms" -> seconds. 0 or -1. */
int cli_parse_duration(const char *s, double *seconds);

/* Parses one --fail-if expression. 0 or -1 with a message. */
int cli_parse_threshold(const char *s, cli_threshold *t, char *err, size_t errlen);

/* Evaluates t on a finished run: 1 when it holds; *actual gets the measured
 * value in the threshold's unit (ms, fraction, count). */
int cli_threshold_check(const cli_threshold *t, const runner_snapshot *s, double *actual);

void cli_usage(buf *out);

/* What an option takes, for the config files and environment (cli_conf.h). */
typedef enum cli_kind {
    CLI_K_FLAG,   /* no value: present or not */
    CLI_K_VALUE,  /* one value; the last one given wins */
    CLI_K_MANY,   /* one or more values after it, as argparse's nargs (-T, -E) */
    CLI_K_REPEAT, /* one value, repeatable, each adds one (--header, --fail-if) */
} cli_kind;

/* Looks up a long option by name, with or without its leading "--". Returns
 * its kind, or -1 when aiload has no such option; *lname gets the "--name"
 * spelling and *sname the short one (or NULL). */
int cli_option_lookup(const char *name, const char **lname, const char **sname);

#endif
