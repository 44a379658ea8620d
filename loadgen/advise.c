/*
 * advise: runs the search of advise_plan.c against real processes.
 *
 * Each configuration: COMMAND --http 127.0.0.1:PORT --processes P --threads T
 * in its own process group (so stopping it stops every worker it forked),
 * wait until GET PATH answers, warm up, then a closed model with more users
 * than slots (saturation: rate counted between two stats merges of the
 * runner, CPU clocks of the process group read at the same moments), then an
 * open model at ADVISE_LOAD_FRACTION of that rate for the latencies. The
 * group is stopped (INT, then KILL) on every path out, Ctrl+C included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loadgen/advise.h"
#include "loadgen/runner.h"
#include "loadgen/scenario.h"

/* Signal flag of the process model (set by SIGINT/SIGTERM). */
static volatile sig_atomic_t advise_quit;

static void on_signal(int sig)
{
    (void)sig;
    advise_quit = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps up to s seconds; returns -1 early when a signal asked to quit. */
static int nap(double s)
{
    double end = now_s() + s;
    while (!advise_quit) {
        double left = end - now_s();
        if (left <= 0) return 0;
        if (left > 0.05) left = 0.05;
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int online_cpus(void)
{
    cpu_set_t set;
    if (!sched_getaffinity(0, sizeof(set), &set)) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* ---- the server under test ---- */

typedef struct server {
    pid_t pid; /* also its process group; 0: none */
    int port;
    char log[64];
} server;

static pid_t spawn(const advise_opts *o, const advise_result *r, int port, const char *log)
{
    char http[32], ps[16], ts[16], bs[16], ds[16];
    snprintf(http, sizeof(http), "127.0.0.1:%d", port);
    snprintf(ps, sizeof(ps), "%d", r->processes);
    snprintf(ts, sizeof(ts), "%d", r->threads);
    snprintf(bs, sizeof(bs), "%d", r->batch);
    snprintf(ds, sizeof(ds), "%d", r->delay_us);
    char **argv = calloc((size_t)o->ncmd + 11, sizeof(char *));
    if (!argv) return -1;
    for (int i = 0; i < o->ncmd; i++) argv[i] = o->cmd[i];
    char *extra[] = {"--http",           http, "--processes",      ps, "--threads", ts,
                     "--max-batch-size", bs,   "--batch-delay-us", ds};
    for (int i = 0; i < (r->batch ? 10 : 6); i++) argv[o->ncmd + i] = extra[i];
    pid_t pid = fork();
    if (pid == 0) {
        /* a session of its own: its own process group, to stop it whole, and
         * its own scheduler autogroup, so aiload's CPU is not counted against it */
        setsid();
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* aiload killed hard: the master goes too */
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, STDIN_FILENO);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        fprintf(stderr, "aiload advise: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(argv);
    return pid;
}

/* INT to the whole group, KILL after 5 s, then reap; any straggler of the
 * group (a worker whose master died first) gets KILL too. */
static void server_stop(server *s)
{
    if (s->pid <= 0) return;
    /* SIGINT: aiserve and gunicorn shut down, uWSGI too (its SIGTERM reloads
     * unless die-on-term is set); the load has stopped, nothing is in flight */
    kill(-s->pid, SIGINT);
    kill(s->pid, SIGINT); /* in case it had not yet made its session */
    double end = now_s() + 5;
    int reaped = 0;
    while (now_s() < end) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            reaped = 1;
            break;
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    kill(-s->pid, SIGKILL);
    kill(s->pid, SIGKILL);
    if (!reaped) waitpid(s->pid, NULL, 0);
    for (int i = 0; i < 100 && advise_tree_usage(s->pid, NULL, NULL, NULL) > 0; i++) {
        kill(-s->pid, SIGKILL);
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    s->pid = 0;
}

static void print_log_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    char lines[20][256];
    int n = 0;
    while (fgets(lines[n % 20], sizeof(lines[0]), f)) n++;
    fclose(f);
    for (int i = n > 20 ? n - 20 : 0; i < n; i++) fprintf(stderr, "  | %s", lines[i % 20]);
}

/* One GET; returns the status, or -1 when nothing (complete) answered. */
static int probe(int port, const char *path, double timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {(time_t)timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int status = -1;
    if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        char req[1200];
        int n =
            snprintf(req, sizeof(req),
                     "GET %.1000s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
        char head[64] = {0};
        if (send(fd, req, (size_t)n, MSG_NOSIGNAL) == n && recv(fd, head, sizeof(head) - 1, 0) > 12)
            if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) status = -1;
    }
    close(fd);
    return status;
}

/* Starts the server and waits for a first answer that is not a gateway
 * error (uwsgi's router answers 502 before its workers are up). */
static int server_start(server *s, const advise_opts *o, const advise_result *r)
{
    s->port = free_port();
    if (s->port < 0) return -1;
    s->pid = spawn(o, r, s->port, s->log);
    if (s->pid < 0) {
        s->pid = 0;
        return -1;
    }
    const char *path = o->file ? "/" : o->path;
    double end = now_s() + o->startup_s;
    while (now_s() < end && !advise_quit) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            fprintf(stderr, "aiload advise: the server exited (%s %d) before answering:\n",
                    WIFEXITED(st) ? "status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            print_log_tail(s->log);
            kill(-s->pid, SIGKILL);
            s->pid = 0;
            return -1;
        }
        int status = probe(s->port, path, 30);
        if (status > 0 && status != 502 && status != 503) return 0;
        nap(0.1);
    }
    if (!advise_quit) {
        fprintf(stderr, "aiload advise: the server did not answer within %.0f s:\n", o->startup_s);
        print_log_tail(s->log);
    }
    server_stop(s);
    return -1;
}

/* ---- load ---- */

typedef struct load {
    scenario *sc;
    runner *r;
    char host[64];
} load;

static int load_create(load *l, const advise_opts *o, int port, char *err, size_t errlen)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->host, sizeof(l->host), "http://127.0.0.1:%d", port);
    if (o->file) {
        l->sc = scenario_load(o->file, err, errlen);
    } else {
        char url[1200];
        snprintf(url, sizeof(url), "%s%.1000s", l->host, o->path);
        scenario_quick q = {.url = url};
        l->sc = scenario_from_quick(&q, err, errlen);
    }
    if (!l->sc) return -1;
    /* one client thread: its stats merge once a second as one piece, which
     * the saturation window is aligned to, and it leaves the cores to the server */
    runner_opts ro = {.threads = 1, .timeout_s = 30, .stop_timeout_s = 10, .seed = 1};
    l->r = runner_create(l->sc, &ro, err, errlen);
    if (!l->r) {
        scenario_free(l->sc);
        l->sc = NULL;
        return -1;
    }
    return 0;
}

static void load_free(load *l)
{
    if (l->r) {
        runner_abort(l->r);
        runner_wait(l->r, -1);
        runner_free(l->r);
    }
    if (l->sc) scenario_free(l->sc);
    memset(l, 0, sizeof(*l));
}

/* Runs one closed- or open-model test to its run time; the snapshot, or
 * NULL when interrupted or it could not start. */
static runner_snapshot *run_for(load *l, const runner_start_params *sp)
{
    char err[512];
    if (runner_start(l->r, sp, err, sizeof(err))) {
        fprintf(stderr, "aiload advise: %s\n", err);
        return NULL;
    }
    while (!runner_wait(l->r, 50))
        if (advise_quit) return NULL;
    return runner_snapshot_take(l->r);
}

/* The measurement of one started server; fills res. A test that reaches its
 * run time stops sending then and records every request in flight, so the
 * rate is the run's own count over its own time: no sampling of a moving
 * counter. */
static int measure(const advise_opts *o, server *sv, advise_result *res, double phase_s)
{
    char err[512];
    load l;
    if (load_create(&l, o, sv->port, err, sizeof(err))) {
        fprintf(stderr, "aiload advise: %s\n", err);
        return -2;
    }
    int slots = res->processes * res->threads;
    int users = 2 * slots + 2; /* more users than slots: the server never idles */
    if (users > 512) users = 512;
    runner_start_params sp = {.users = users, .spawn_rate = 1e9, .host = l.host};
    int rc = -1;
    double c0, c1, q0, q1;
    /* warm-up: connections, caches, lazy imports; not counted */
    sp.run_time_s = phase_s / 3 < 1 ? phase_s / 3 : 1;
    runner_snapshot *s = run_for(&l, &sp);
    if (!s) goto out;
    runner_snapshot_free(s);
    unsigned long long i0 = 0, j0 = 0, i1 = 0, j1 = 0;
    advise_machine_idle(&i0, &j0);
    advise_tree_usage(sv->pid, &c0, &q0, NULL);
    sp.run_time_s = phase_s;
    if (!(s = run_for(&l, &sp))) goto out;
    advise_tree_usage(sv->pid, &c1, &q1, &res->pss_mib);
    advise_machine_idle(&i1, &j1);
    double idle_cores = j1 > j0 ? (double)(i1 - i0) / (double)(j1 - j0) * online_cpus() : 0;
    unsigned long long n = s->total.num_requests, f = s->total.num_failures;
    /* with no wait time every user has a request in flight at the run time's
     * end; those complete after it but are counted: take them out */
    if (!o->file && n > (unsigned long long)users) n -= (unsigned long long)users;
    double rps = s->elapsed_s > 0 ? (double)n / s->elapsed_s : 0;
    /* other load on the machine only ever slows a run down: of repeated runs
     * the fastest is the best estimate, and its clocks go with it */
    int faster = rps > res->rps;
    if (faster && s->timing_count) { /* the server says where its time went */
        res->st_queue_ms = s->timing_avg_ms[1];
        res->st_app_ms = s->timing_avg_ms[2];
    }
    runner_snapshot_free(s);
    res->runs++;
    res->requests += n;
    res->failures += f;
    if (faster && n) {
        res->rps = rps;
        res->idle_cores = idle_cores;
        res->cpu_ms_per_req = (c1 - c0) * 1000 / (double)n;
        /* run-queue time of all the server's threads, per slot in use */
        res->runq_ms_per_req = (q1 - q0) * 1000 / (double)n;
        res->wall_ms_per_req = slots * 1000.0 / res->rps;
        if (res->runq_ms_per_req > res->wall_ms_per_req)
            res->runq_ms_per_req = res->wall_ms_per_req;
    }
    if (!n || res->runs > 1) { /* a repeat only refines the rate */
        rc = n ? 0 : -1;
        goto out;
    }
    /* open model at a fixed share of saturation: the latencies a user sees there */
    runner_start_params op = {.users = users > 64 ? users : 64,
                              .spawn_rate = 1e9,
                              .host = l.host,
                              .rate = res->rps * ADVISE_LOAD_FRACTION,
                              .run_time_s = phase_s};
    if (op.rate < 1) op.rate = 1;
    if (!(s = run_for(&l, &op))) goto out;
    res->p50_ms = s->total.pct_ms[RUNNER_P50];
    res->p99_ms = s->total.pct_ms[RUNNER_P99];
    res->check_rps = s->total.total_rps;
    res->requests += s->total.num_requests;
    res->failures += s->total.num_failures;
    runner_snapshot_free(s);
    rc = 0;
out:
    load_free(&l);
    return rc;
}

/* Starts, measures and stops one configuration. -1: interrupted. */
static int run_config(const advise_opts *o, server *sv, advise_result *r, double phase_s)
{
    fprintf(stderr, "aiload advise: %d process%s x %d thread%s", r->processes,
            r->processes == 1 ? "" : "es", r->threads, r->threads == 1 ? "" : "s");
    if (r->batch) fprintf(stderr, ", max-batch-size %d, batch-delay-us %d", r->batch, r->delay_us);
    fprintf(stderr, "%s ...", r->runs ? " (again)" : "");
    if (server_start(sv, o, r)) {
        if (advise_quit) return -1;
        if (!r->runs) r->failed_start = 1;
        fprintf(stderr, " did not start\n");
        return 0;
    }
    int rc = measure(o, sv, r, phase_s);
    server_stop(sv);
    if (advise_quit) return -1;
    if (rc == -2) return -2;
    if (rc) {
        if (!r->runs) r->failed_start = 1;
        fprintf(stderr, " no answers\n");
    } else {
        fprintf(stderr, " %.1f req/s, p99 %.1f ms at %.0f%%, %.2f CPU ms/req, %.0f MiB\n", r->rps,
                r->p99_ms, ADVISE_LOAD_FRACTION * 100, r->cpu_ms_per_req, r->pss_mib);
    }
    return 0;
}

static int write_file(const char *path, const buf *b)
{
    return runner_write_file(path, b);
}

int advise_main(int argc, char **argv)
{
    advise_opts o;
    char err[512];
    buf b = BUF_INIT;
    if (advise_parse(argc, argv, &o, err, sizeof(err))) {
        fprintf(stderr, "aiload %s\n", err);
        return 2;
    }
    if (o.help) {
        advise_usage(&b);
        fwrite(b.data, 1, b.len, stdout);
        buf_free(&b);
        return 0;
    }
    if (o.file) { /* a bad scenario is a bad command line, found before any start */
        scenario *sc = scenario_load(o.file, err, sizeof(err));
        if (!sc) {
            fprintf(stderr, "aiload advise: %s\n", err);
            return 2;
        }
        scenario_free(sc);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    server sv = {0};
    snprintf(sv.log, sizeof(sv.log), "/tmp/aiload-advise-%d.log", (int)getpid());
    int ncpu = online_cpus();
    /* the phase length scales with the budget: ~6 phases per configuration
     * and ~5 configurations fit, at least 1.5 s so a rate spans a merge */
    double phase = o.budget_s / 30;
    if (phase < 1.5) phase = 1.5;
    if (phase > 10) phase = 10;
    fprintf(stderr,
            "aiload advise: %d core%s, budget %.0f s, %.1f s per measurement, load: %s %s\n", ncpu,
            ncpu == 1 ? "" : "s", o.budget_s, phase, o.file ? "scenario" : "GET",
            o.file ? o.file : o.path);

    advise_result res[ADVISE_MAX_CONFIGS];
    size_t n = 0;
    double t_start = now_s(), cost = 0;
    int code = 0, p, t, bs = 0, dl = 0, repeated = 0;
    int reprobed = 0;
    for (;;) {
        /* the three probes decide the direction: measure them again, in
         * reverse order, so a burst of other load cannot decide it alone */
        if (!reprobed && n >= 3) {
            reprobed = 1;
            repeated |= 2;
            for (int i = 2; i >= 0; i--) {
                if (now_s() - t_start + 0.7 * cost > o.budget_s) break;
                if (res[i].failed_start) continue;
                if (run_config(&o, &sv, &res[i], phase) == -1) goto interrupted;
            }
        }
        if (!advise_next(res, n, ncpu, &o, &p, &t) &&
            !(o.batch && advise_next_batch(res, n, &p, &t, &bs, &dl)))
            break;
        double spent = now_s() - t_start;
        if (n && spent + cost > o.budget_s) {
            fprintf(stderr, "aiload advise: budget spent; stopping the search here\n");
            break;
        }
        memset(&res[n], 0, sizeof(res[n]));
        res[n].processes = p;
        res[n].threads = t;
        res[n].batch = bs;
        res[n].delay_us = dl;
        double t0 = now_s();
        int rc = run_config(&o, &sv, &res[n], phase);
        n++;
        if (rc == -1) goto interrupted;
        if (rc == -2) {
            code = 2;
            goto done;
        }
        cost = now_s() - t0 > cost ? now_s() - t0 : cost;
    }
    /* noise: repeat the leaders when they are within noise of each other */
    int close[3];
    /* twice the band: a burst of other load can push a run that far down */
    size_t k = advise_close_calls(res, n, o.p99_ms, 2 * ADVISE_NOISE, close, 3);
    for (size_t i = 0; k > 1 && i < k; i++) {
        if (now_s() - t_start + cost > o.budget_s) break;
        repeated |= 1;
        if (run_config(&o, &sv, &res[close[i]], phase) == -1) goto interrupted;
    }
    double noise = advise_noise(res, n, ncpu, repeated);
    int best = advise_choose(res, n, o.p99_ms, noise, ncpu);

    buf why = BUF_INIT, ini = BUF_INIT;
    advise_explain(&why, &ini, res, n, best, &o, ncpu, repeated);
    buf_puts(&b, "\nConfigurations measured (RPS: closed model, saturated; latencies: open "
                 "model at 70% of it; CPU: the server's process tree):\n");
    advise_table(&b, res, n, best);
    buf_puts(&b, "\nReasoning:\n");
    buf_append(&b, why.data, why.len);
    if (best >= 0) {
        buf_puts(&b, "\nini:\n");
        buf_append(&b, ini.data, ini.len);
    }
    fwrite(b.data, 1, b.len, stdout);
    fflush(stdout);
    int rc_io;
    if (o.json) {
        buf j = BUF_INIT;
        advise_json(&j, res, n, best, noise, why.data ? why.data : "");
        if ((rc_io = write_file(o.json, &j)))
            fprintf(stderr, "aiload advise: writing %s: %s\n", o.json, strerror(-rc_io));
        buf_free(&j);
    }
    if (o.html) {
        buf h = BUF_INIT;
        advise_html(&h, res, n, best, why.data ? why.data : "", ini.data ? ini.data : "");
        if ((rc_io = write_file(o.html, &h)))
            fprintf(stderr, "aiload advise: writing %s: %s\n", o.html, strerror(-rc_io));
        buf_free(&h);
    }
    buf_free(&why);
    buf_free(&ini);
    code = best >= 0 ? 0 : 1;
    goto done;
interrupted:
    fprintf(stderr, "\naiload advise: interrupted; the server was stopped\n");
    code = 130;
done:
    server_stop(&sv);
    unlink(sv.log);
    buf_free(&b);
    return code;
}
