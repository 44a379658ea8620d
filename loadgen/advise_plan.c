/*
 * advise: options, the adaptive search, the choice and /proc readings.
 * Nothing here starts processes or sends requests (see advise.c).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen/advise.h"

/* ---- options ---- */

void advise_usage(buf *b)
{
    buf_puts(b,
             "usage: aiload advise [--url PATH | -f SCENARIO] [--p99 MS] [--budget 5m]\n"
             "                     [--json FILE] [--html FILE] [--max-threads N]\n"
             "                     [--max-processes N] [--startup-timeout S] -- COMMAND [ARGS...]\n"
             "\n"
             "Starts COMMAND (a server taking uWSGI's --http, --processes and --threads flags:\n"
             "aiserve or uwsgi) on configurations it picks, drives each with aiload (closed\n"
             "model to saturation, then an open model at 70% of it), and recommends processes\n"
             "and threads. COMMAND gets --http 127.0.0.1:PORT --processes N --threads M\n"
             "appended. Every process it starts is stopped on exit (also on Ctrl+C).\n"
             "\n"
             "  --url PATH         request GET PATH (default /)\n"
             "  -f SCENARIO        drive each configuration with this scenario file instead\n"
             "  --p99 MS           recommend only configurations whose p99 stays below MS\n"
             "  --budget T         time for the whole search (s, m, h; default 5m)\n"
             "  --json FILE        write the recommendation and every result as JSON\n"
             "  --html FILE        write a report with charts\n"
             "  --max-threads N    largest thread count tried (default 64)\n"
             "  --max-processes N  largest process count tried (default: cores + 1)\n"
             "  --startup-timeout S  how long a start may take to answer (default 120)\n"
             "  --batch            a native model (aiserve model-route): then also try\n"
             "                     max-batch-size 1, 4, 16 and batch-delay-us 500, 2000\n");
}

/* "90", "90s", "5m", "1h" -> seconds; -1 when malformed. */
static double parse_duration(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || !isfinite(v)) return -1;
    if (!*end || !strcmp(end, "s")) return v;
    if (!strcmp(end, "m")) return v * 60;
    if (!strcmp(end, "h")) return v * 3600;
    return -1;
}

static int parse_pos_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 4096) return -1;
    *out = (int)v;
    return 0;
}

int advise_parse(int argc, char **argv, advise_opts *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    o->path = "/";
    o->budget_s = 300;
    o->max_threads = 64;
    o->startup_s = 120;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            o->help = 1;
            return 0;
        }
        if (a[0] != '-') break;      /* the command starts without a "--" */
        if (!strcmp(a, "--batch")) { /* the one flag without a value */
            o->batch = 1;
            continue;
        }
        const char *v = NULL;
        char name[64];
        const char *eq = strchr(a, '=');
        if (eq && (size_t)(eq - a) < sizeof(name)) {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else {
            snprintf(name, sizeof(name), "%s", a);
            if (i + 1 >= argc) {
                snprintf(err, errlen, "advise: option '%s' needs a value", a);
                return -1;
            }
            v = argv[++i];
        }
        if (!strcmp(name, "--url")) {
            if (v[0] != '/') {
                snprintf(err, errlen, "advise: --url takes a path starting with '/', got '%s'", v);
                return -1;
            }
            o->path = v;
        } else if (!strcmp(name, "-f") || !strcmp(name, "--locustfile")) {
            o->file = v;
        } else if (!strcmp(name, "--p99")) {
            char *end;
            o->p99_ms = strtod(v, &end);
            if (end == v || *end || !(o->p99_ms > 0)) {
                snprintf(err, errlen, "advise: --p99 takes milliseconds > 0, got '%s'", v);
                return -1;
            }
        } else if (!strcmp(name, "--budget")) {
            o->budget_s = parse_duration(v);
            if (o->budget_s < 1) {
                snprintf(err, errlen,
                         "advise: --budget takes a duration >= 1s (90, 90s, 5m), got '%s'", v);
                return -1;
            }
        } else if (!strcmp(name, "--startup-timeout")) {
            o->startup_s = parse_duration(v);
            if (o->startup_s < 1) {
                snprintf(err, errlen, "advise: --startup-timeout takes seconds >= 1, got '%s'", v);
                return -1;
            }
        } else if (!strcmp(name, "--json")) {
            o->json = v;
        } else if (!strcmp(name, "--html")) {
            o->html = v;
        } else if (!strcmp(name, "--max-threads") || !strcmp(name, "--max-processes")) {
            int n;
            if (parse_pos_int(v, &n)) {
                snprintf(err, errlen, "advise: %s takes an integer 1..4096, got '%s'", name, v);
                return -1;
            }
            if (name[6] == 't')
                o->max_threads = n;
            else
                o->max_processes = n;
        } else {
            snprintf(err, errlen, "advise: unknown option '%s' (see aiload advise --help)", name);
            return -1;
        }
    }
    if (i >= argc) {
        snprintf(err, errlen,
                 "advise: no server command: aiload advise [options] -- COMMAND [ARGS...]");
        return -1;
    }
    o->cmd = argv + i;
    o->ncmd = argc - i;
    return 0;
}

/* ---- the search ---- */

static int find_b(const advise_result *res, size_t n, int p, int t, int b, int d)
{
    for (size_t i = 0; i < n; i++)
        if (res[i].processes == p && res[i].threads == t && res[i].batch == b &&
            res[i].delay_us == d)
            return (int)i;
    return -1;
}

/* The processes x threads search runs with the server's batcher defaults. */
static int find(const advise_result *res, size_t n, int p, int t)
{
    return find_b(res, n, p, t, 0, 0);
}

static double rate_of(const advise_result *res, size_t n, int p, int t)
{
    int i = find(res, n, p, t);
    return i < 0 || res[i].failed_start ? 0 : res[i].rps;
}

static double rate_of_b(const advise_result *res, size_t n, int p, int t, int b)
{
    int i = find_b(res, n, p, t, b, 0);
    return i < 0 || res[i].failed_start ? 0 : res[i].rps;
}

double advise_thread_gain(const advise_result *res, size_t n)
{
    double one = rate_of(res, n, 1, 1), two = rate_of(res, n, 1, 2);
    return one > 0 ? two / one : 0;
}

double advise_process_gain(const advise_result *res, size_t n)
{
    double one = rate_of(res, n, 1, 1), two = rate_of(res, n, 2, 1);
    return one > 0 ? two / one : 0;
}

/* Threads win when a second thread gains clearly and about as much as a
 * second process (threads share memory and the app's caches). */
static int threads_path(const advise_result *res, size_t n)
{
    double tg = advise_thread_gain(res, n), pg = advise_process_gain(res, n);
    return tg > 1 + 2 * ADVISE_NOISE && tg >= 0.9 * pg;
}

static int want(const advise_result *res, size_t n, int p, int t, int *op, int *ot)
{
    if (find(res, n, p, t) >= 0) return 0;
    *op = p;
    *ot = t;
    return 1;
}

int advise_next(const advise_result *res, size_t n, int ncpu, const advise_opts *o, int *p, int *t)
{
    int maxp = o->max_processes ? o->max_processes : ncpu + 1;
    int maxt = o->max_threads;
    if (n >= ADVISE_MAX_CONFIGS) return 0;
    if (want(res, n, 1, 1, p, t)) return 1;
    if (rate_of(res, n, 1, 1) <= 0) return 0; /* the simplest one does not work: stop */
    if (maxt >= 2 && want(res, n, 1, 2, p, t)) return 1;
    if (maxp >= 2 && want(res, n, 2, 1, p, t)) return 1;
    if (threads_path(res, n)) {
        /* double the threads of one process while that still gains */
        int top = 2;
        while (top * 2 <= maxt && find(res, n, 1, top * 2) >= 0) top *= 2;
        if (top * 2 <= maxt &&
            rate_of(res, n, 1, top) >= (1 + ADVISE_NOISE) * rate_of(res, n, 1, top / 2))
            return want(res, n, 1, top * 2, p, t);
        /* then a second process at the best thread count */
        int bt = 1;
        for (int k = 2; k <= top; k *= 2)
            if (rate_of(res, n, 1, k) > rate_of(res, n, 1, bt)) bt = k;
        if (maxp >= 2 && want(res, n, 2, bt, p, t)) return 1;
        return 0;
    }
    /* processes: one more while that gains, up to the cores (+1) */
    int top = 2;
    while (top + 1 <= maxp && find(res, n, top + 1, 1) >= 0) top++;
    if (maxp >= 2 && top + 1 <= maxp &&
        rate_of(res, n, top, 1) >= (1 + ADVISE_NOISE) * rate_of(res, n, top - 1, 1))
        return want(res, n, top + 1, 1, p, t);
    int bp = 1;
    for (int k = 2; k <= top && k <= maxp; k++)
        if (rate_of(res, n, k, 1) > rate_of(res, n, bp, 1)) bp = k;
    /* a mixed app (some I/O) may still gain from a second thread per process;
     * one that is all CPU cannot, and trying would only invite noise */
    double share = advise_cpu_share(res, n);
    if (bp > 1 && maxt >= 2 && share < 0.6 && want(res, n, bp, 2, p, t)) return 1;
    return 0;
}

int advise_next_batch(const advise_result *res, size_t n, int *p, int *t, int *batch, int *delay_us)
{
    if (n >= ADVISE_MAX_CONFIGS) return 0;
    int best = -1; /* the fastest of the processes x threads search */
    for (size_t i = 0; i < n; i++)
        if (!res[i].batch && !res[i].failed_start && (best < 0 || res[i].rps > res[best].rps))
            best = (int)i;
    if (best < 0) return 0;
    *p = res[best].processes;
    *t = res[best].threads;
    static const int sizes[] = {1, 4, 16};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        if (find_b(res, n, *p, *t, sizes[k], 0) < 0) {
            *batch = sizes[k];
            *delay_us = 0;
            return 1;
        }
    int bb = 0; /* the best size, waiting for fuller batches */
    for (size_t i = 0; i < n; i++)
        if (res[i].batch && !res[i].delay_us && !res[i].failed_start &&
            (!bb || res[i].rps > rate_of_b(res, n, *p, *t, bb)))
            bb = res[i].batch;
    static const int delays[] = {500, 2000};
    for (size_t k = 0; bb > 1 && k < sizeof(delays) / sizeof(delays[0]); k++)
        if (find_b(res, n, *p, *t, bb, delays[k]) < 0) {
            *batch = bb;
            *delay_us = delays[k];
            return 1;
        }
    return 0;
}

/* ---- the choice ---- */

static int eligible(const advise_result *r, double p99_ms)
{
    if (r->failed_start || r->rps <= 0) return 0;
    if (r->requests && (double)r->failures > 0.01 * (double)r->requests) return 0;
    return !(p99_ms > 0) || r->p99_ms <= p99_ms;
}

static int any_eligible(const advise_result *res, size_t n, double p99_ms)
{
    for (size_t i = 0; i < n; i++)
        if (eligible(&res[i], p99_ms)) return 1;
    return 0;
}

static double best_rate(const advise_result *res, size_t n, double p99_ms)
{
    double best = 0;
    for (size_t i = 0; i < n; i++)
        if (eligible(&res[i], p99_ms) && res[i].rps > best) best = res[i].rps;
    return best;
}

double advise_cpu_share(const advise_result *res, size_t n)
{
    int i = find(res, n, 1, 1);
    if (i < 0 || res[i].failed_start || !(res[i].wall_ms_per_req > 0)) return -1;
    double own =
        res[i].st_app_ms > 0 ? res[i].st_app_ms : res[i].wall_ms_per_req - res[i].runq_ms_per_req;
    double share = own > 0 ? res[i].cpu_ms_per_req / own : 1;
    return share > 1 ? 1 : share;
}

/* 1 when a should be preferred over b among equally fast results. */
static int better_tie(const advise_result *a, const advise_result *b, int cpu_bound, int ncpu)
{
    int sa = a->processes * a->threads, sb = b->processes * b->threads;
    if (cpu_bound) {
        if ((a->threads == 1) != (b->threads == 1)) return a->threads == 1;
        int da = abs(a->processes - ncpu), db = abs(b->processes - ncpu);
        if (da != db) return da < db;
    }
    if (sa != sb) return sa < sb;
    if (a->processes != b->processes) return a->processes < b->processes;
    return a->delay_us < b->delay_us; /* the batcher: less added latency */
}

int advise_choose(const advise_result *res, size_t n, double p99_ms, double noise, int ncpu)
{
    int cpu_bound =
        advise_cpu_share(res, n) > 0.6 && advise_thread_gain(res, n) < 1 + 2 * ADVISE_NOISE;
    if (p99_ms > 0 && !any_eligible(res, n, p99_ms)) p99_ms = 0; /* nothing meets it */
    double best = best_rate(res, n, p99_ms);
    int pick = -1;
    for (size_t i = 0; i < n; i++) {
        const advise_result *r = &res[i];
        if (!eligible(r, p99_ms) || r->rps < best * (1 - noise)) continue;
        if (pick < 0) {
            pick = (int)i;
            continue;
        }
        if (better_tie(r, &res[pick], cpu_bound, ncpu)) pick = (int)i;
    }
    return pick;
}

double advise_noise(const advise_result *res, size_t n, int ncpu, int repeated)
{
    int i = find(res, n, 1, 1);
    if (ncpu > 1 && i >= 0 && advise_cpu_share(res, n) > 0.6 && res[i].idle_cores < 0.5)
        return 0.20;
    return repeated & 1 ? 0.03 : ADVISE_NOISE;
}

size_t advise_close_calls(const advise_result *res, size_t n, double p99_ms, double noise, int *out,
                          size_t max)
{
    if (p99_ms > 0 && !any_eligible(res, n, p99_ms)) p99_ms = 0;
    double best = best_rate(res, n, p99_ms);
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        if (eligible(&res[i], p99_ms) && res[i].rps >= best * (1 - noise)) out[k++] = (int)i;
    /* best first */
    for (size_t a = 1; a < k; a++)
        for (size_t b = a; b > 0 && res[out[b]].rps > res[out[b - 1]].rps; b--) {
            int tmp = out[b];
            out[b] = out[b - 1];
            out[b - 1] = tmp;
        }
    return k;
}

/* ---- /proc ---- */

int advise_parse_stat(const char *line, unsigned long long *ticks, pid_t *pgrp)
{
    /* "pid (comm) state ppid pgrp ..." where comm may hold spaces and ')' */
    const char *rp = strrchr(line, ')');
    if (!rp) return -1;
    char state;
    int ppid, pg;
    unsigned long long f[12];
    /* after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
     */
    int k =
        sscanf(rp + 1, " %c %d %d %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &state, &ppid,
               &pg, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9]);
    if (k != 13) return -1;
    *ticks = f[8] + f[9];
    *pgrp = pg;
    return 0;
}

long long advise_parse_pss(const char *text)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        long long kb;
        if (!strncmp(p, "Pss:", 4) && sscanf(p + 4, "%lld", &kb) == 1) return kb;
    }
    return -1;
}

static int read_small(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, len - 1, f);
    fclose(f);
    out[n] = 0;
    return 0;
}

int advise_parse_cpu_line(const char *line, unsigned long long *idle, unsigned long long *total)
{
    unsigned long long v[8] = {0};
    if (strncmp(line, "cpu ", 4)) return -1;
    int k = sscanf(line + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    if (k < 4) return -1;
    *idle = v[3] + v[4];
    *total = 0;
    for (int i = 0; i < 8; i++) *total += v[i];
    return 0;
}

int advise_machine_idle(unsigned long long *idle, unsigned long long *total)
{
    char text[512];
    if (read_small("/proc/stat", text, sizeof(text))) return -1;
    return advise_parse_cpu_line(text, idle, total);
}

long long advise_parse_schedstat(const char *line)
{
    unsigned long long run, wait;
    if (sscanf(line, "%llu %llu", &run, &wait) != 2) return -1;
    return (long long)wait;
}

/* Run-queue wait of every thread of process pid, in ns. */
static long long proc_runq_ns(const char *pid)
{
    char path[96], text[256];
    snprintf(path, sizeof(path), "/proc/%.20s/task", pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    long long sum = 0, v;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof(path), "/proc/%.20s/task/%.20s/schedstat", pid, e->d_name);
        if (!read_small(path, text, sizeof(text)) && (v = advise_parse_schedstat(text)) > 0)
            sum += v;
    }
    closedir(d);
    return sum;
}

int advise_tree_usage(pid_t pgrp, double *cpu_s, double *runq_s, double *pss_mib)
{
    DIR *d = opendir("/proc");
    if (!d) return 0;
    long hz = sysconf(_SC_CLK_TCK);
    unsigned long long ticks = 0;
    long long pss = 0, runq = 0;
    int found = 0;
    struct dirent *e;
    char path[64], text[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof(path), "/proc/%.20s/stat", e->d_name);
        unsigned long long t;
        pid_t g;
        if (read_small(path, text, sizeof(text)) || advise_parse_stat(text, &t, &g) || g != pgrp)
            continue;
        found++;
        ticks += t;
        if (runq_s) runq += proc_runq_ns(e->d_name);
        if (pss_mib) {
            snprintf(path, sizeof(path), "/proc/%.20s/smaps_rollup", e->d_name);
            long long kb;
            if (!read_small(path, text, sizeof(text)) && (kb = advise_parse_pss(text)) > 0)
                pss += kb;
        }
    }
    closedir(d);
    if (cpu_s) *cpu_s = hz > 0 ? (double)ticks / (double)hz : 0;
    if (pss_mib) *pss_mib = (double)pss / 1024.0;
    if (runq_s) *runq_s = (double)runq / 1e9;
    return found;
}
