/*
 * aiload: Locust-compatible load tester with wrk's speed.
 *
 *   aiload -f SCENARIO --headless -u N -r R -t T -H URL [outputs]   Locust headless
 *   aiload -f SCENARIO [-P 8089]                                    web UI (loadgen/webui/)
 *   aiload URL -c N -d T [--threads N] [--rate R] [outputs]         wrk-like quick mode
 *
 * Exit: 0 ok; exit_code_on_error (1) when requests failed; 2 bad command
 * line or scenario; 3 a --fail-if threshold broke.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "loadgen/advise.h"
#include "loadgen/cli.h"
#include "loadgen/cli_conf.h"
#include "loadgen/py/pyrun.h"
#include "loadgen/dist/master.h"
#include "loadgen/dist/procs.h"
#include "loadgen/dist/worker.h"
#include "loadgen/report.h"
#include "loadgen/runner.h"
#include "loadgen/scenario.h"
#include "loadgen/tls.h"
#include "loadgen/webui/webui.h"

/* Signal flag of the process model (the only mutable global). */
static volatile sig_atomic_t quit_flag;

static void on_signal(int sig)
{
    (void)sig;
    quit_flag++;
}

static void print_buf(FILE *f, buf *b)
{
    if (b->len) fwrite(b->data, 1, b->len, f);
    fflush(f);
    buf_reset(b);
}

static int term_cols(void)
{
    struct winsize ws;
    if (!isatty(STDOUT_FILENO) || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0) return 0;
    return ws.ws_col;
}

/* ---- --csv: Locust's four files, rewritten every second and at exit ---- */

typedef struct csv_out {
    const char *prefix;
    size_t history_cursor;
    FILE *history;
} csv_out;

static int csv_path(char *out, size_t len, const char *prefix, const char *suffix)
{
    return snprintf(out, len, "%s%s", prefix, suffix) >= (int)len ? -1 : 0;
}

static int csv_write(runner *r, csv_out *c)
{
    char path[4096];
    buf b = BUF_INIT;
    int rc = 0;
    static const char *names[] = {"_stats.csv", "_failures.csv", "_exceptions.csv"};
    for (int i = 0; i < 3 && !rc; i++) {
        buf_reset(&b);
        rc = i == 0   ? runner_csv_stats(r, &b)
             : i == 1 ? runner_csv_failures(r, &b)
                      : runner_csv_exceptions(r, &b);
        if (!rc && csv_path(path, sizeof(path), c->prefix, names[i])) rc = -ENAMETOOLONG;
        if (!rc) rc = runner_write_file(path, &b);
    }
    buf_reset(&b); /* Server-Timing phases: a file only when responses carried them */
    if (!rc && !(rc = runner_csv_timing(r, &b)) && b.len) {
        if (csv_path(path, sizeof(path), c->prefix, "_server_timing.csv")) rc = -ENAMETOOLONG;
        if (!rc) rc = runner_write_file(path, &b);
    }
    if (!rc && !c->history) {
        if (csv_path(path, sizeof(path), c->prefix, "_stats_history.csv"))
            rc = -ENAMETOOLONG;
        else if (!(c->history = fopen(path, "w")))
            rc = -errno;
    }
    if (!rc) {
        buf_reset(&b);
        rc = runner_csv_history_append(r, &b, &c->history_cursor);
        if (!rc) rc = runner_write_stream(c->history, &b);
    }
    buf_free(&b);
    return rc;
}

/* ---- end of run ---- */

static void print_time(buf *b, double ms)
{
    if (ms < 1)
        buf_printf(b, "%8.2fus", ms * 1000);
    else if (ms < 1000)
        buf_printf(b, "%8.2fms", ms);
    else
        buf_printf(b, "%8.2fs ", ms / 1000);
}

/* wrk-like summary of the quick mode. */
static void quick_summary(buf *b, const cli_opts *o, const runner_snapshot *s, int threads)
{
    const runner_entry *e = &s->total;
    buf_printf(b, "Running %.0fs test @ %s\n", o->run_time_s, o->url);
    buf_printf(b, "  %d threads and %d connections, %s model", threads, s->target_users,
               s->open_model ? "open" : "closed");
    if (s->open_model) buf_printf(b, " at %.0f req/s", o->rate);
    buf_puts(b, "\n  Latency      avg");
    print_time(b, e->avg_ms);
    buf_puts(b, "   min");
    print_time(b, e->min_ms);
    buf_puts(b, "   max");
    print_time(b, e->max_ms);
    buf_printf(b, "\n  Latency Distribution (%s)\n",
               s->open_model ? "from the intended start; service time in brackets"
                             : "from the send");
    static const runner_pct show[] = {RUNNER_P50,  RUNNER_P75,   RUNNER_P90, RUNNER_P99,
                                      RUNNER_P999, RUNNER_P9999, RUNNER_P100};
    for (size_t i = 0; i < sizeof(show) / sizeof(show[0]); i++) {
        buf_printf(b, "  %8s ", runner_pcts[show[i]].label);
        print_time(b, e->pct_ms[show[i]]);
        if (s->open_model) {
            buf_puts(b, "  (");
            print_time(b, e->service_pct_ms[show[i]]);
            buf_puts(b, ")");
        }
        buf_puts(b, "\n");
    }
    double mb = e->avg_content_length * (double)e->num_requests / 1048576.0;
    buf_printf(b, "  %llu requests in %.2fs, %.2fMB read\n", (unsigned long long)e->num_requests,
               s->elapsed_s, mb);
    if (e->num_failures) {
        buf_printf(b, "  Failed requests: %llu\n", (unsigned long long)e->num_failures);
        for (size_t i = 0; i < s->nerrors; i++)
            buf_printf(b, "    %llu  %s\n", (unsigned long long)s->errors[i].occurrences,
                       s->errors[i].error);
    }
    if (s->open_model)
        buf_printf(b, "  Sent late (>10 ms): %llu, never sent: %llu\n",
                   (unsigned long long)e->not_on_time, (unsigned long long)s->dropped);
    buf_printf(b, "Requests/sec: %10.2f\n", e->total_rps);
    buf_printf(b, "Transfer/sec: %8.2fMB\n", s->elapsed_s > 0 ? mb / s->elapsed_s : 0);
}

static int check_thresholds(const cli_opts *o, const runner_snapshot *s, FILE *f)
{
    int broken = 0;
    for (size_t i = 0; i < o->nthresholds; i++) {
        double v;
        int ok = cli_threshold_check(&o->thresholds[i], s, &v);
        if (!ok) broken++;
        fprintf(f, "threshold %-24s %s (measured %g)\n", o->thresholds[i].text,
                ok ? "ok" : "FAILED", v);
    }
    return broken;
}

static int write_json(runner *r, const cli_opts *o, const runner_snapshot *s)
{
    buf b = BUF_INIT;
    int rc = runner_json_summary(r, &b);
    if (!rc && o->nthresholds && b.len && b.data[b.len - 1] == '}') {
        b.len--; /* splice the threshold results in before the closing brace */
        buf_puts(&b, ",\"thresholds\":[");
        for (size_t i = 0; i < o->nthresholds; i++) {
            double v;
            int ok = cli_threshold_check(&o->thresholds[i], s, &v);
            buf_puts(&b, i ? ",{\"expr\":" : "{\"expr\":");
            buf_json_str(&b, o->thresholds[i].text, strlen(o->thresholds[i].text));
            buf_printf(&b, ",\"ok\":%s,\"measured\":%.6g}", ok ? "true" : "false", v);
        }
        buf_puts(&b, "]}");
    }
    if (!rc) rc = runner_write_file(o->json, &b);
    buf_free(&b);
    return rc;
}

static void progress(const runner_snapshot *s)
{
    double p99 = s->total.current_pct_ms[RUNNER_P99];
    fprintf(stderr, "\r\033[K[aiload] %s %.0fs", runner_state_name(s->state), s->elapsed_s);
    if (s->run_time_s > 0) fprintf(stderr, "/%.0fs", s->run_time_s);
    fprintf(stderr, "  users %d/%d  %.1f req/s  fail %.2f%%  p99 %.1f ms  reqs %llu", s->user_count,
            s->target_users, s->total.current_rps, s->fail_ratio * 100, p99,
            (unsigned long long)s->total.num_requests);
    fflush(stderr);
}

/* Periodic work while the test runs: tables, progress line, CSV, warnings. */
static void tick(runner *r, const cli_opts *o, csv_out *csv, int nw, double *next_table,
                 double *next_csv, int *warned)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    int tty = isatty(STDERR_FILENO);
    runner_snapshot *s = runner_snapshot_take(r);
    if (!s) return;
    buf b = BUF_INIT;
    if (!o->only_summary && !o->quick && now >= *next_table) {
        if (tty) fprintf(stderr, "\r\033[K");
        report_console_stats(&b, s, 1, nw);
        print_buf(stdout, &b);
        *next_table = now + 2;
    }
    if (s->cpu_warning && !*warned) {
        fprintf(stderr,
                "%sCPU usage above 90%%! This may constrain your throughput and may even "
                "give inconsistent response time measurements!\n",
                tty ? "\r\033[K" : "");
        *warned = 1;
    }
    if (csv->prefix && now >= *next_csv) {
        int rc = csv_write(r, csv);
        if (rc) fprintf(stderr, "aiload: writing CSV files: %s\n", strerror(-rc));
        *next_csv = now + 1;
    }
    if (tty) progress(s);
    buf_free(&b);
    runner_snapshot_free(s);
}

static int finish(runner *r, const cli_opts *o, const scenario *sc, csv_out *csv, int nw,
                  int threads)
{
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\r\033[K");
    runner_snapshot *s = runner_snapshot_take(r);
    if (!s) {
        fprintf(stderr, "aiload: out of memory\n");
        return 1;
    }
    buf b = BUF_INIT;
    if (o->quick) {
        quick_summary(&b, o, s, threads);
    } else {
        report_console_stats(&b, s, 0, nw);
        report_console_percentiles(&b, s, nw);
        if (s->open_model || s->total.not_on_time) report_console_service(&b, s, nw);
        report_console_errors(&b, s, nw);
        if (o->master) runner_exceptions_console(r, &b); /* the workers' exceptions */
    }
    report_console_timing(&b, s);
    print_buf(stdout, &b);
    int rc_io = 0;
    if (csv->prefix && (rc_io = csv_write(r, csv)))
        fprintf(stderr, "aiload: writing CSV files: %s\n", strerror(-rc_io));
    if (o->json && (rc_io = write_json(r, o, s)))
        fprintf(stderr, "aiload: writing %s: %s\n", o->json, strerror(-rc_io));
    if (o->html) {
        rc_io = webui_report(r, scenario_source(sc), &b);
        if (!rc_io) rc_io = runner_write_file(o->html, &b);
        if (rc_io) fprintf(stderr, "aiload: writing %s: %s\n", o->html, strerror(-rc_io));
        buf_reset(&b);
    }
    buf_free(&b);
    int broken = check_thresholds(o, s, stdout);
    int code = 0;
    if (broken) {
        fprintf(stderr, "aiload: %d threshold%s failed\n", broken, broken > 1 ? "s" : "");
        code = 3;
    } else if (s->total.num_failures) {
        code = o->exit_code_on_error;
    } else if (rc_io) {
        code = 1;
    }
    runner_snapshot_free(s);
    return code;
}

static int run_headless(runner *r, const cli_opts *o, const runner_start_params *sp);

/* -T, -E and --equal-weights, applied once before the scenario is shared.
 * Returns sc, or NULL (sc freed) after printing why. */
static scenario *apply_options(const cli_opts *o, scenario *sc, char *err, size_t errlen)
{
    scenario_options so = {.tags = o->tags,
                           .ntags = o->ntags,
                           .exclude_tags = o->exclude_tags,
                           .nexclude_tags = o->nexclude_tags,
                           .equal_weights = o->equal_weights,
                           .classes = o->user_classes,
                           .nclasses = o->nuser_classes};
    buf notes = BUF_INIT;
    int rc = scenario_apply_options(sc, &so, &notes, err, errlen);
    for (char *line = notes.data, *nl; line && *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n'))) break;
        fprintf(stderr, "aiload: note: %.*s\n", (int)(nl - line), line);
    }
    buf_free(&notes);
    if (rc) {
        fprintf(stderr, "aiload: %s: %s\n", scenario_source(sc), err);
        scenario_free(sc);
        return NULL;
    }
    return sc;
}

/* The scenario file, or the quick mode's one task. NULL after printing why. */
static scenario *load_scenario(const cli_opts *o, char *err, size_t errlen)
{
    scenario *sc;
    if (o->quick) {
        scenario_quick q = {.url = o->url,
                            .method = o->method,
                            .headers = o->headers,
                            .nheaders = o->nheaders,
                            .body_file = o->body_file};
        sc = scenario_from_quick(&q, err, errlen);
    } else {
        sc = scenario_load(o->file, err, errlen);
    }
    if (!sc) {
        fprintf(stderr, "aiload: %s\n", err);
        size_t n = o->file ? strlen(o->file) : 0;
        if (n > 3 && !strcmp(o->file + n - 3, ".py"))
            fprintf(stderr, "aiload: scenarios are ini files, not Python: see docs/scenario.md "
                            "(examples/locust/locustfile.ini is the article's locustfile)\n");
        return NULL;
    }
    if (o->list_classes) return sc; /* -l lists every class of the file, as Locust */
    return apply_options(o, sc, err, errlen);
}

/* A worker's dist_refilter_fn: the scenario file loaded again, filtered by the
 * master's tags instead of the worker's own, and a runner for it. */
typedef struct worker_refilter {
    const cli_opts *o;
    const runner_opts *ro;
} worker_refilter;

static int refilter_worker(void *ctx, const char *const *tags, size_t ntags,
                           const char *const *exclude, size_t nexclude, runner **r, scenario **sc,
                           char *err, size_t errlen)
{
    const worker_refilter *wr = ctx;
    cli_opts o = *wr->o;
    if (ntags > CLI_MAX_LIST || nexclude > CLI_MAX_LIST) {
        snprintf(err, errlen, "more than %d tags", CLI_MAX_LIST);
        return -EINVAL;
    }
    o.ntags = ntags;
    for (size_t i = 0; i < ntags; i++) o.tags[i] = tags[i];
    o.nexclude_tags = nexclude;
    for (size_t i = 0; i < nexclude; i++) o.exclude_tags[i] = exclude[i];
    scenario *nsc = load_scenario(&o, err, errlen);
    if (!nsc) return -ENOENT;
    runner *nr = runner_create(nsc, wr->ro, err, errlen);
    if (!nr) {
        scenario_free(nsc);
        return -ENOMEM;
    }
    runner_free(*r);
    scenario_free(*sc);
    *r = nr;
    *sc = nsc;
    return 0;
}

/* -l/--list: Locust's "Available Users:" list. */
static void list_classes(const scenario *sc)
{
    printf("Available Users:\n");
    for (size_t k = 0; k < scenario_class_count(sc); k++)
        printf("    %s\n", scenario_class_name(sc, k));
}

/* The web UI's Workers tab on a master. */
static void master_workers_json(void *ctx, buf *out)
{
    dist_master_workers_json(ctx, out);
}

static int master_worker_count(void *ctx)
{
    return dist_master_workers(ctx);
}

/* Serves the web UI until it quits; the test is stopped and awaited after. */
static int run_webui(runner *r, const cli_opts *o, const runner_start_params *sp, dist_master *dm)
{
    char err[512];
    webui_opts wo = {.web_host = o->web_host,
                     .web_port = o->web_port,
                     .autostart = o->autostart,
                     .autoquit_s = o->autoquit_s,
                     .start = *sp,
                     .script = o->file,
                     .html_path = o->html,
                     .auth = o->web_auth,
                     .workers_json = dm ? master_workers_json : NULL,
                     .worker_count = dm ? master_worker_count : NULL,
                     .workers_ctx = dm};
    webui *w = webui_create(r, &wo, err, sizeof(err));
    if (!w) {
        fprintf(stderr, "aiload: %s\n", err);
        return 2;
    }
    const char *h = !o->web_host ? "127.0.0.1" : *o->web_host ? o->web_host : "*";
    fprintf(stderr, "aiload: web UI on http://%s:%d/%s\n", h, webui_port(w),
            o->web_auth ? " (HTTP Basic auth)" : "");
    if (!o->web_auth && strcmp(h, "127.0.0.1") && strcmp(h, "localhost") && strcmp(h, "::1"))
        fprintf(stderr,
                "aiload: note: the web UI listens on %s without --web-auth: whoever "
                "reaches this port can start load from here\n",
                h);
    webui_run(w, &quit_flag);
    runner_stop(r);
    runner_wait(r, -1);
    webui_free(w);
    return 0;
}

/* Headless: start, then tables/CSV/progress until the run ends or a signal. */
static int run_headless_loop(runner *r, const cli_opts *o, const runner_start_params *sp,
                             csv_out *csv, int nw)
{
    int code = run_headless(r, o, sp);
    double next_table = 0, next_csv = 0;
    int warned = 0, stopping = 0;
    while (!code && !runner_wait(r, 250)) {
        if (quit_flag && !stopping) {
            runner_stop(r);
            stopping = 1;
            fprintf(stderr,
                    "%saiload: stopping; awaiting requests in flight (Ctrl+C again to "
                    "abort them)\n",
                    isatty(STDERR_FILENO) ? "\r\033[K" : "");
        }
        if (quit_flag > 1 && stopping == 1) {
            runner_abort(r);
            stopping = 2;
        }
        tick(r, o, csv, nw, &next_table, &next_csv, &warned);
    }
    return code;
}

static int run_headless(runner *r, const cli_opts *o, const runner_start_params *sp)
{
    char err[512];
    if (runner_start(r, sp, err, sizeof(err))) {
        fprintf(stderr, "aiload: %s\n", err);
        return 2;
    }
    if (!o->quick)
        fprintf(stderr, "aiload: %s test: %d users, spawn rate %g/s, %s, host %s\n",
                sp->rate > 0 ? "open-model" : "closed-model", sp->users, sp->spawn_rate,
                sp->run_time_s > 0 ? "run time set" : "until Ctrl+C", sp->host ? sp->host : "-");
    return 0;
}

/* With several classes (closed model), says how -u is split over them. */
static void print_class_split(const cli_opts *o, const scenario *sc)
{
    size_t nc = scenario_class_count(sc);
    int *per = nc > 1 && o->rate <= 0 && !o->nstages ? calloc(nc, sizeof(int)) : NULL;
    if (!per) return;
    scenario_split_users(sc, o->users, per);
    fprintf(stderr, "aiload: users per class at -u %d:", o->users);
    for (size_t k = 0; k < nc; k++)
        fprintf(stderr, "%s %s %d%s", k ? "," : "", scenario_class_name(sc, k), per[k],
                scenario_class_fixed_count(sc, k) ? " (fixed_count)" : "");
    fputc('\n', stderr);
    free(per);
}

/* Every user holds a socket: raise the soft fd limit to the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* A --cacert that cannot be used is a bad command line (exit 2), reported
 * before any load starts (the runner loads it again for the run). */
static int check_cacert(const char *path, char *err, size_t errlen)
{
    lg_tls *t;
    lg_tls_opts to = {.cacert = path};
    if (lg_tls_create(&to, &t, err, errlen)) return -1;
    lg_tls_free(t);
    return 0;
}

/* --master: binds, then (headless or --autostart) awaits --expect-workers
 * workers, as Locust does, before the test starts. 0, or an exit code. */
static int start_master(runner *r, const scenario *sc, const cli_opts *o,
                        const dist_master_opts *mo, dist_master **out, char **argv, pid_t *children)
{
    char err[512];
    dist_master *m = dist_master_start(r, sc, mo, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "aiload: %s\n", err);
        return 1;
    }
    fprintf(stderr, "aiload master: listening on port %d\n", dist_master_port(m));
    *out = m;
    if (o->processes > 0 &&
        dist_procs_spawn(o->processes, dist_master_port(m), argv, children) < o->processes)
        fprintf(stderr, "aiload: could not start every worker process: %s\n", strerror(errno));
    if (!o->headless && !o->autostart) return 0;
    if (dist_master_await(m, o->expect_workers > 0 ? o->expect_workers : 1,
                          o->expect_workers_max_wait, &quit_flag)) {
        dist_master_free(m);
        *out = NULL;
        return 1;
    }
    return 0;
}

/* Defaults that depend on the mode (quick or scenario, closed or open). */
static void apply_defaults(cli_opts *o)
{
    if (!o->run_time_s && o->nstages) /* a ramp runs for its stages */
        for (size_t i = 0; i < o->nstages; i++) o->run_time_s += o->stages[i].duration_s;
    if (!o->users && (o->rate > 0 || o->nstages)) o->users = 100; /* open model: connection cap */
    if (o->quick) {
        if (!o->users) o->users = 10;
        if (!o->run_time_s) o->run_time_s = 10;
        if (!o->spawn_rate) o->spawn_rate = 1e9; /* all connections at once, as wrk */
    }
    if (!o->users) o->users = 1;
    if (!o->spawn_rate) o->spawn_rate = 1;
}

static int aiload_main(int argc, char **argv, char **orig_argv)
{
    /* a Python locustfile (-f x.py or a directory) runs in loadgen/py/ */
    if (pyrun_wants(argc, argv)) return pyrun_main_from(argc, argv, orig_argv);
    cli_opts o;
    char err[1024];
    buf b = BUF_INIT;
    if (argc > 1 && !strcmp(argv[1], "advise")) return advise_main(argc - 1, argv + 1);
    if (cli_parse(argc, argv, &o, err, sizeof(err))) {
        fprintf(stderr, "aiload: %s\n", err);
        return 2;
    }
    if (o.help) {
        cli_usage(&b);
        print_buf(stdout, &b);
        buf_free(&b);
        return 0;
    }
    if (o.version) {
        printf("aiload %s\n", AISERVE_VERSION);
        return 0;
    }
    scenario *sc = load_scenario(&o, err, sizeof(err));
    if (!sc) return 2;
    if (o.list_classes) {
        list_classes(sc);
        scenario_free(sc);
        return 0;
    }
    if (o.cacert && check_cacert(o.cacert, err, sizeof(err))) {
        fprintf(stderr, "aiload: %s\n", err);
        scenario_free(sc);
        return 2;
    }
    apply_defaults(&o);
    dist_procs_apply(&o);
    if (!o.worker) print_class_split(&o, sc);
    raise_fd_limit();

    runner_opts ro = {.threads = o.threads,
                      .connect_timeout_s = o.connect_timeout_s,
                      .timeout_s = o.timeout_s,
                      .stop_timeout_s = o.stop_timeout_s,
                      .reset_stats = o.reset_stats,
                      .full_history = o.csv_full_history,
                      .seed = o.seed,
                      .tls_insecure = o.insecure,
                      .tls_cacert = o.cacert};
    if (o.master) {
        if (o.worker) {
            fprintf(stderr, "aiload: --master is not a worker; drop --worker\n");
            scenario_free(sc);
            return 2;
        }
        ro.remote = 1;  /* the workers generate the load */
        ro.threads = 1; /* the runner's own thread stays idle */
    }
    runner *r = runner_create(sc, &ro, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "aiload: %s\n", err);
        scenario_free(sc);
        return 1;
    }
    runner_start_params sp = {.users = o.users,
                              .spawn_rate = o.spawn_rate,
                              .host = o.host,
                              .run_time_s = o.run_time_s,
                              .rate = o.rate,
                              .stages = o.stages,
                              .nstages = o.nstages};
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (o.worker) { /* distributed: a Locust (or aiload) master drives this runner */
        worker_refilter wr = {.o = &o, .ro = &ro};
        dist_worker_opts wo = {.master_host = o.master_host,
                               .master_port = o.master_port,
                               .host = o.host,
                               .quit_flag = &quit_flag,
                               .refilter = o.quick ? NULL : refilter_worker,
                               .refilter_ctx = &wr,
                               .tags = o.tags,
                               .ntags = o.ntags,
                               .exclude_tags = o.exclude_tags,
                               .nexclude_tags = o.nexclude_tags};
        int code = dist_worker_run(&r, &sc, &wo);
        runner_free(r);
        scenario_free(sc);
        return code;
    }
    dist_master *dm = NULL;
    pid_t children[1024] = {0};
    if (o.master) {
        dist_master_opts mo = {.bind_host = o.master_bind_host,
                               .bind_port = o.processes ? -1 : o.master_bind_port,
                               .stop_timeout_s = o.stop_timeout_s,
                               .cli = &o};
        int code = start_master(r, sc, &o, &mo, &dm, orig_argv, children);
        if (code) {
            runner_free(r);
            scenario_free(sc);
            return code;
        }
    }
    csv_out csv = {.prefix = o.csv_prefix};
    int nw = report_name_width(term_cols());
    int threads = ro.threads ? ro.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    int code = o.headless ? run_headless_loop(r, &o, &sp, &csv, nw) : run_webui(r, &o, &sp, dm);
    dist_master_free(dm); /* quit to every worker; their last reports are merged */
    if (o.processes > 0) dist_procs_reap(children, o.processes, 5000);
    if (!code) code = finish(r, &o, sc, &csv, nw, threads);
    if (csv.history) fclose(csv.history);
    runner_free(r);
    scenario_free(sc);
    buf_free(&b);
    return code;
}

/* The command line plus LOCUST_* variables and config files (cli_conf.h). */
int main(int argc, char **argv)
{
    extern char **environ;
    cli_conf_env env = {.envp = environ, .home = getenv("HOME")};
    cli_args args;
    char err[1024];
    buf notes = BUF_INIT;
    int rc = cli_conf_merge(argc, argv, &env, &args, &notes, err, sizeof(err));
    for (char *line = notes.data, *nl; line && (nl = strchr(line, '\n')); line = nl + 1)
        fprintf(stderr, "aiload: note: %.*s\n", (int)(nl - line), line);
    buf_free(&notes);
    if (rc) {
        fprintf(stderr, "aiload: %s\n", err);
        return 2;
    }
    int code = aiload_main(args.argc, args.argv, argv);
    cli_args_free(&args);
    return code;
}
