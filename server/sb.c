/*
 * sb: the scoreboard, one MAP_SHARED anonymous mapping made by the master
 * before the first fork, so every worker and the master see it. Each worker
 * writes only its own slot (relaxed atomics: counters, not synchronisation);
 * /metrics sums the slots of every process. There are 3 x processes slots so
 * that old workers still draining after a reload, a harakiri or a recycle
 * coexist with their successors.
 */
#define _GNU_SOURCE
#include "server/core.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

static const int status_codes[SRV_NSTATUS - 1] = {
    100, 200, 201, 202, 204, 206, 301, 302, 304, 307, 400, 401, 403, 404, 405, 408,
    409, 411, 413, 414, 415, 417, 422, 429, 431, 500, 501, 502, 503, 504, 505};

/* Upper bounds in microseconds; the last bucket is +Inf. */
static const uint64_t bucket_us[SRV_NBUCKETS - 1] = {100,    500,     1000,    2500,    5000,
                                                     10000,  25000,   50000,   100000,  250000,
                                                     500000, 1000000, 2500000, 5000000, 10000000};

static int status_index(int status)
{
    for (int i = 0; i < SRV_NSTATUS - 1; i++)
        if (status_codes[i] == status) return i;
    return SRV_NSTATUS - 1;
}

sb *sb_create(int processes, int threads)
{
    size_t slot_size = sizeof(sb_slot) + (size_t)threads * sizeof(sb_thread);
    slot_size = (slot_size + 63) & ~(size_t)63;
    int nslots = processes * 3 + 2;
    size_t total = sizeof(sb) + 64 + (size_t)nslots * slot_size;
    void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    sb *s = p;
    s->nslots = nslots;
    s->nthreads = threads;
    s->slot_size = slot_size;
    strcpy(s->route_names[0], "other");
    s->nroutes = 1;
    return s;
}

void sb_destroy(sb *s)
{
    if (!s) return;
    munmap(s, sizeof(sb) + 64 + (size_t)s->nslots * s->slot_size);
}

sb_slot *sb_slot_at(sb *s, int i)
{
    char *base = (char *)s + ((sizeof(sb) + 63) & ~(size_t)63);
    return (sb_slot *)(base + (size_t)i * s->slot_size);
}

int sb_route_metric(sb *s, const char *name)
{
    if (!s) return 0;
    int expect = 0;
    /* A spinlock: routes are added at start-up only, by few processes. */
    while (!atomic_compare_exchange_weak(&s->route_lock, &expect, 1)) expect = 0;
    int n = atomic_load(&s->nroutes), idx = 0;
    for (int i = 0; i < n; i++)
        if (!strncmp(s->route_names[i], name, sizeof(s->route_names[i]) - 1)) idx = i;
    if (!idx && strcmp(name, "other") && n < SRV_METRIC_ROUTES) {
        snprintf(s->route_names[n], sizeof(s->route_names[n]), "%s", name);
        atomic_store(&s->nroutes, n + 1);
        idx = n;
    }
    atomic_store(&s->route_lock, 0);
    return idx;
}

/* An add by the counter's one writer (a slot's worker loop; the master
 * writes only while no worker holds the slot): a plain load and store, which
 * readers in other processes still see whole, instead of a locked
 * read-modify-write per counter per request on the hot path. */
static void add_1w(_Atomic uint64_t *p, uint64_t v)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

void sb_count(sb_slot *slot, int metric, int status, uint64_t elapsed_us)
{
    if (metric < 0 || metric >= SRV_METRIC_ROUTES) metric = 0;
    add_1w(&slot->req_count[metric][status_index(status)], 1);
    int b = 0;
    while (b < SRV_NBUCKETS - 1 && elapsed_us > bucket_us[b]) b++;
    add_1w(&slot->hist[b], 1);
    add_1w(&slot->lat_sum_us, elapsed_us);
    add_1w(&slot->running_us, elapsed_us);
    if (status >= 500) add_1w(&slot->exceptions, 1);
    /* uWSGI's avg_rt: (avg + rt) / 2, a decaying value; one writer (the loop). */
    uint64_t avg = atomic_load_explicit(&slot->avg_rt_us, memory_order_relaxed);
    atomic_store_explicit(&slot->avg_rt_us, avg ? (avg + elapsed_us) / 2 : elapsed_us,
                          memory_order_relaxed);
}

static void hist_add(_Atomic uint64_t *h, _Atomic uint64_t *sum, uint64_t us)
{
    int b = 0;
    while (b < SRV_NBUCKETS - 1 && us > bucket_us[b]) b++;
    add_1w(&h[b], 1);
    add_1w(sum, us);
}

void sb_count_timing(sb_slot *slot, uint64_t queue_us, uint64_t app_us)
{
    hist_add(slot->queue_hist, &slot->queue_sum_us, queue_us);
    hist_add(slot->app_hist, &slot->app_sum_us, app_us);
}

void sb_count_tx(sb_slot *slot, uint64_t bytes)
{
    atomic_fetch_add_explicit(&slot->tx, bytes, memory_order_relaxed);
}

static int slot_alive(sb_slot *sl)
{
    int st = atomic_load(&sl->state);
    int pid = atomic_load(&sl->pid);
    return st != SB_FREE && pid > 0 && (kill(pid, 0) == 0);
}

static void render_counts(sb *s, buf *out)
{
    buf_puts(out, "# HELP aiserve_requests_total Requests answered, by route and status.\n"
                  "# TYPE aiserve_requests_total counter\n");
    int nr = atomic_load(&s->nroutes);
    for (int r = 0; r < nr; r++) {
        for (int st = 0; st < SRV_NSTATUS; st++) {
            uint64_t sum = 0;
            for (int i = 0; i < s->nslots; i++)
                sum +=
                    atomic_load_explicit(&sb_slot_at(s, i)->req_count[r][st], memory_order_relaxed);
            if (!sum) continue;
            buf_puts(out, "aiserve_requests_total{route=");
            buf_json_str(out, s->route_names[r], strlen(s->route_names[r]));
            if (st == SRV_NSTATUS - 1)
                buf_printf(out, ",status=\"other\"} %llu\n", (unsigned long long)sum);
            else
                buf_printf(out, ",status=\"%d\"} %llu\n", status_codes[st],
                           (unsigned long long)sum);
        }
    }
    buf_puts(out, "# HELP aiserve_request_duration_seconds Time from request head to response "
                  "sent.\n# TYPE aiserve_request_duration_seconds histogram\n");
    uint64_t cum = 0, total_us = 0;
    for (int b = 0; b < SRV_NBUCKETS; b++) {
        for (int i = 0; i < s->nslots; i++)
            cum += atomic_load_explicit(&sb_slot_at(s, i)->hist[b], memory_order_relaxed);
        if (b < SRV_NBUCKETS - 1)
            buf_printf(out, "aiserve_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                       (double)bucket_us[b] / 1e6, (unsigned long long)cum);
        else
            buf_printf(out, "aiserve_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                       (unsigned long long)cum);
    }
    for (int i = 0; i < s->nslots; i++) total_us += atomic_load(&sb_slot_at(s, i)->lat_sum_us);
    buf_printf(out, "aiserve_request_duration_seconds_sum %.6f\n", (double)total_us / 1e6);
    buf_printf(out, "aiserve_request_duration_seconds_count %llu\n", (unsigned long long)cum);
}

/* A histogram summed over the slots; hist_off/sum_off: offsets in sb_slot. */
static void render_hist(sb *s, buf *out, const char *name, const char *help, size_t hist_off,
                        size_t sum_off)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0, total_us = 0;
    for (int b = 0; b < SRV_NBUCKETS; b++) {
        for (int i = 0; i < s->nslots; i++) {
            _Atomic uint64_t *h = (_Atomic uint64_t *)((char *)sb_slot_at(s, i) + hist_off);
            cum += atomic_load_explicit(&h[b], memory_order_relaxed);
        }
        if (b < SRV_NBUCKETS - 1)
            buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bucket_us[b] / 1e6,
                       (unsigned long long)cum);
        else
            buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    for (int i = 0; i < s->nslots; i++)
        total_us += atomic_load((_Atomic uint64_t *)((char *)sb_slot_at(s, i) + sum_off));
    buf_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, (double)total_us / 1e6, name,
               (unsigned long long)cum);
}

int sb_render_metrics(sb *s, const int *listen_fds, const char *const *listen_names, int nlisten,
                      buf *out)
{
    render_counts(s, out);
    render_hist(s, out, "aiserve_request_queue_seconds",
                "Time a complete request waited for an app thread (0 for event-loop handlers).",
                offsetof(sb_slot, queue_hist), offsetof(sb_slot, queue_sum_us));
    render_hist(s, out, "aiserve_request_app_seconds",
                "Time from the handler's start to the response sent.", offsetof(sb_slot, app_hist),
                offsetof(sb_slot, app_sum_us));
    int busy = 0, idle = 0, in_flight = 0, conns = 0, waiting = 0, full = 0;
    for (int i = 0; i < s->nslots; i++) {
        sb_slot *sl = sb_slot_at(s, i);
        if (!slot_alive(sl)) continue;
        int f = atomic_load(&sl->in_flight);
        in_flight += f;
        conns += atomic_load(&sl->conns);
        waiting += atomic_load(&sl->waiting);
        if (atomic_load(&sl->state) != SB_RUNNING) continue;
        full += atomic_load(&sl->full);
        if (f > 0)
            busy++;
        else
            idle++;
    }
    buf_printf(out,
               "# HELP aiserve_requests_in_flight Requests being handled now.\n"
               "# TYPE aiserve_requests_in_flight gauge\naiserve_requests_in_flight %d\n"
               "# HELP aiserve_workers Serving workers by state (busy: a request in flight).\n"
               "# TYPE aiserve_workers gauge\naiserve_workers{state=\"busy\"} %d\n"
               "aiserve_workers{state=\"idle\"} %d\n"
               "# HELP aiserve_worker_respawns_total Workers started to replace others.\n"
               "# TYPE aiserve_worker_respawns_total counter\naiserve_worker_respawns_total %llu\n"
               "# HELP aiserve_harakiri_total Workers replaced for a request over harakiri.\n"
               "# TYPE aiserve_harakiri_total counter\naiserve_harakiri_total %llu\n",
               in_flight, busy, idle, (unsigned long long)atomic_load(&s->respawns),
               (unsigned long long)atomic_load(&s->harakiris));
    buf_printf(out,
               "# HELP aiserve_connections Client connections open (idle keep-alive included).\n"
               "# TYPE aiserve_connections gauge\naiserve_connections %d\n"
               "# HELP aiserve_requests_waiting Requests read and queued for an app thread.\n"
               "# TYPE aiserve_requests_waiting gauge\naiserve_requests_waiting %d\n"
               "# HELP aiserve_workers_full Serving workers at max-connections (new connections "
               "wait in the listen queue).\n"
               "# TYPE aiserve_workers_full gauge\naiserve_workers_full %d\n",
               conns, waiting, full);
    struct tcp_info ti[SRV_MAX_LISTEN];
    for (int i = 0; i < nlisten && i < SRV_MAX_LISTEN; i++) {
        socklen_t tl = sizeof(ti[i]);
        memset(&ti[i], 0, sizeof(ti[i]));
        getsockopt(listen_fds[i], IPPROTO_TCP, TCP_INFO, &ti[i], &tl);
    }
    /* For a listening socket, TCP_INFO's unacked is the accept-queue length
     * and sacked its maximum (the backlog). */
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "aiserve_listen_queue_max" : "aiserve_listen_queue";
        buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", name,
                   k ? "Accept-queue capacity (the backlog)."
                     : "Connections waiting in the accept queue.",
                   name);
        for (int i = 0; i < nlisten && i < SRV_MAX_LISTEN; i++) {
            buf_printf(out, "%s{listener=", name);
            buf_json_str(out, listen_names[i], strlen(listen_names[i]));
            buf_printf(out, "} %u\n", k ? ti[i].tcpi_sacked : ti[i].tcpi_unacked);
        }
    }
    return 0;
}
