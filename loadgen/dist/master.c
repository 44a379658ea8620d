/*
 * dist/master: see master.h. One thread owns the socket and the worker table;
 * the table is also read by the web UI (dist_master_workers_json), hence mu.
 * Timings are Locust 2.12's: HEARTBEAT_INTERVAL 1 s, HEARTBEAT_LIVENESS 3,
 * HEARTBEAT_DEAD_INTERNAL -60.
 */
#define _GNU_SOURCE
#include "loadgen/dist/master.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "loadgen/cli.h"
#include "loadgen/dist/dispatch.h"
#include "loadgen/dist/msg.h"
#include "loadgen/dist/wire.h"
#include "loadgen/dist/worker.h"
#include "loadgen/dist/zsock.h"
#include "loadgen/scenario_int.h"
#include "loadgen/stats.h"
#include "loadgen/worker.h"

#define LIVENESS   3
#define DEAD_AFTER (-60)
#define MAX_PEERS  4096

typedef struct peer {
    char id[256];
    int index;
    char state[16]; /* ready, spawning, running, stopped, missing */
    int heartbeat;
    int stopping; /* sent "stop", awaiting client_stopped */
    double cpu;
    int64_t mem;
    int *users; /* reported per class */
    int *sent;  /* last spawn's per class; sent_valid says whether one was sent */
    int sent_valid;
    double sent_share; /* open model: the share of the rate last sent; < 0: closed */
    int cpu_warned;
    int kind;        /* from its heartbeats: 0 not seen yet, PEER_AILOAD, PEER_OTHER */
    int open_warned; /* told that a Locust worker gets no share of an open-model run */
} peer;

enum { PEER_AILOAD = 1, PEER_OTHER = 2 };

/* The open model's schedule, for the spawn of one worker. */
typedef struct open_share {
    double share; /* of the master's rate */
    double rate, elapsed_s;
    const runner_stage *stages;
    size_t nstages;
} open_share;

struct dist_master {
    runner *r;
    const scenario *sc;
    dist_master_opts o;
    size_t nc;
    void *ctx, *sock;
    int port;
    pthread_t th;
    int started;
    pthread_mutex_t mu; /* guards peers (read by the web UI) and quit */
    peer *peers;
    size_t npeers;
    int next_index;
    int quit;
    dist_pack pk;
    lg_stats *tmp;
    int *class_tmp;
    runner_state last_state;
    double last_spawn_ts;
    size_t unknown_logged;
};

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void send_to(dist_master *m, const char *id)
{
    zmq_send(m->sock, id, strlen(id), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (zmq_send(m->sock, m->pk.sb.data, m->pk.sb.size, ZMQ_DONTWAIT) < 0)
        fprintf(stderr, "aiload master: cannot send to worker %s: %s\n", id, zmq_strerror(errno));
}

static void send_nil(dist_master *m, const char *type, const char *id)
{
    dist_pack_begin(&m->pk, type);
    msgpack_pack_nil(&m->pk.pk);
    dist_pack_end(&m->pk, id);
    send_to(m, id);
}

static peer *find_peer(dist_master *m, const char *id)
{
    for (size_t i = 0; i < m->npeers; i++)
        if (!strcmp(m->peers[i].id, id)) return &m->peers[i];
    return NULL;
}

static int live(const peer *p)
{
    return strcmp(p->state, "missing") != 0;
}

/* Removes peer i (caller holds mu). */
static void drop_peer(dist_master *m, size_t i)
{
    free(m->peers[i].users);
    free(m->peers[i].sent);
    m->peers[i] = m->peers[--m->npeers];
}

static void set_state(peer *p, const char *s)
{
    snprintf(p->state, sizeof(p->state), "%s", s);
}

/* ---- messages from the workers ---- */

static void on_ready(dist_master *m, const char *id, const msgpack_object *data)
{
    char ver[64] = "";
    if (dist_obj_str(data, ver, sizeof(ver))) { /* Locust 1.x sent None */
        fprintf(stderr,
                "aiload master: an old (pre 2.0) Locust worker tried to connect (%s); it speaks "
                "another protocol and is refused\n",
                id);
        return;
    }
    /* "": a Locust built without its version (Debian's python3-locust) */
    if (ver[0] && strncmp(ver, "2.", 2) && strcmp(ver, "-1")) {
        fprintf(stderr,
                "aiload master: worker %s runs Locust %s, but aiload speaks Locust 2.x's protocol "
                "(%s); refused\n",
                id, ver, DIST_LOCUST_VERSION);
        return;
    }
    if (ver[0] && strncmp(ver, DIST_LOCUST_VERSION, 4))
        fprintf(stderr, "aiload master: worker %s runs Locust %s (aiload follows %s)\n", id, ver,
                DIST_LOCUST_VERSION);
    pthread_mutex_lock(&m->mu);
    peer *p = find_peer(m, id);
    if (!p && m->npeers < MAX_PEERS) {
        p = &m->peers[m->npeers];
        memset(p, 0, sizeof(*p));
        p->users = calloc(m->nc ? m->nc : 1, sizeof(int));
        p->sent = calloc(m->nc ? m->nc : 1, sizeof(int));
        if (!p->users || !p->sent) {
            free(p->users);
            free(p->sent);
            p = NULL;
        } else {
            snprintf(p->id, sizeof(p->id), "%s", id);
            p->index = m->next_index++;
            m->npeers++;
        }
    }
    if (p) {
        set_state(p, "ready");
        p->heartbeat = LIVENESS;
        p->stopping = 0;
        p->sent_valid = 0;
        memset(p->users, 0, m->nc * sizeof(int));
    }
    int index = p ? p->index : -1;
    size_t n = 0;
    for (size_t i = 0; i < m->npeers; i++) n += live(&m->peers[i]);
    pthread_mutex_unlock(&m->mu);
    if (!p) {
        fprintf(stderr, "aiload master: too many workers; %s refused\n", id);
        return;
    }
    dist_pack_begin(&m->pk, "ack");
    msgpack_pack_map(&m->pk.pk, 1);
    dist_pack_str(&m->pk, "index");
    msgpack_pack_int64(&m->pk.pk, index);
    dist_pack_end(&m->pk, id);
    send_to(m, id);
    fprintf(stderr,
            "aiload master: worker %s (index %d) reported as ready. %zu workers connected.\n", id,
            index, n);
}

static void on_stats(dist_master *m, const char *id, const msgpack_object *data)
{
    char err[128];
    size_t unknown = 0;
    int users = 0;
    lg_stats_reset(m->tmp);
    if (dist_parse_report(m->sc, data, m->tmp, m->class_tmp, &users, &unknown, err, sizeof(err))) {
        fprintf(stderr, "aiload master: dropped a report from %s: %s\n", id, err);
        return;
    }
    runner_dist_inject(m->r, m->tmp);
    if (unknown && m->unknown_logged < 5) {
        m->unknown_logged++;
        fprintf(stderr,
                "aiload master: worker %s reported %zu rows that %s does not define; they are "
                "not counted (the scenario must name the same requests)\n",
                id, unknown, scenario_source(m->sc));
    }
    pthread_mutex_lock(&m->mu);
    peer *p = find_peer(m, id);
    if (p && live(p)) memcpy(p->users, m->class_tmp, m->nc * sizeof(int));
    pthread_mutex_unlock(&m->mu);
}

static void on_heartbeat(dist_master *m, const char *id, const msgpack_object *data)
{
    char st[16] = "";
    pthread_mutex_lock(&m->mu);
    peer *p = find_peer(m, id);
    if (p) {
        if (!live(p))
            fprintf(stderr, "aiload master: worker %s self-healed with a heartbeat\n", id);
        p->heartbeat = LIVENESS;
        if (!dist_obj_str(dist_map_get(data, "state"), st, sizeof(st)) && st[0])
            set_state(p, st);
        else if (!live(p))
            set_state(p, "ready");
        dist_obj_num(dist_map_get(data, "current_cpu_usage"), &p->cpu);
        if (p->cpu > 90 && !p->cpu_warned) { /* Locust's threshold, once per worker */
            p->cpu_warned = 1;
            fprintf(stderr,
                    "aiload master: worker %s exceeded the CPU threshold (%.0f %%); its numbers "
                    "may be off\n",
                    id, p->cpu);
        }
        dist_obj_int(dist_map_get(data, "current_memory_usage"), &p->mem);
        /* aiload workers add "aiload" (a Locust master ignores it): they run the open model */
        p->kind = dist_map_get(data, "aiload") ? PEER_AILOAD : PEER_OTHER;
    }
    pthread_mutex_unlock(&m->mu);
}

static void on_gone(dist_master *m, const char *id, const char *why)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->npeers; i++)
        if (!strcmp(m->peers[i].id, id)) {
            drop_peer(m, i);
            break;
        }
    size_t n = 0;
    for (size_t i = 0; i < m->npeers; i++) n += live(&m->peers[i]);
    pthread_mutex_unlock(&m->mu);
    fprintf(stderr, "aiload master: worker %s %s. %zu workers connected.\n", id, why, n);
    runner_state st = runner_get_state(m->r);
    if (!n && (st == RUNNER_SPAWNING || st == RUNNER_RUNNING)) {
        fprintf(stderr, "aiload master: the last worker quit, stopping the test\n");
        runner_stop(m->r);
    }
}

/* Locust's {"msg": str, "traceback": str}: into the run's Exceptions table. */
static void on_exception(dist_master *m, const char *id, const msgpack_object *data)
{
    char *text = NULL, *tb = NULL, err[128];
    int rc = dist_parse_exception(data, &text, &tb, err, sizeof(err));
    if (rc == -EINVAL)
        fprintf(stderr, "aiload master: dropped an exception message from %s: %s\n", id, err);
    /* logged once per row: the table counts the rest */
    if (!rc && runner_dist_exception(m->r, text, tb, id) == 1)
        fprintf(stderr, "aiload master: exception on worker %s: %.200s\n", id, text);
    free(text);
    free(tb);
}

static void handle(dist_master *m, const char *id, const void *data, size_t len)
{
    dist_msg msg;
    char err[256];
    if (dist_msg_decode(data, len, &msg, err, sizeof(err))) {
        fprintf(stderr, "aiload master: dropped a message from %s: %s\n", id, err);
        return;
    }
    const char *t = msg.type;
    if (!strcmp(t, "client_ready")) {
        on_ready(m, id, &msg.data);
    } else if (!strcmp(t, "heartbeat")) {
        on_heartbeat(m, id, &msg.data);
    } else if (!strcmp(t, "stats")) {
        on_stats(m, id, &msg.data);
    } else if (!strcmp(t, "spawning") || !strcmp(t, "spawning_complete")) {
        int done = t[8] != 0;
        const msgpack_object *ucc = done ? dist_map_get(&msg.data, "user_classes_count") : NULL;
        pthread_mutex_lock(&m->mu);
        peer *p = find_peer(m, id);
        if (p) set_state(p, done ? "running" : "spawning");
        /* the users it runs now, before its next report (Locust does the same) */
        for (size_t k = 0; p && ucc && k < m->nc; k++) {
            int64_t v;
            if (!dist_obj_int(dist_map_get(ucc, scenario_class_name(m->sc, k)), &v) && v >= 0 &&
                v <= 10000000)
                p->users[k] = (int)v;
        }
        pthread_mutex_unlock(&m->mu);
    } else if (!strcmp(t, "client_stopped")) {
        pthread_mutex_lock(&m->mu);
        peer *p = find_peer(m, id);
        if (p) {
            p->stopping = 0;
            set_state(p, "stopped");
            memset(p->users, 0, m->nc * sizeof(int));
        }
        pthread_mutex_unlock(&m->mu);
    } else if (!strcmp(t, "quit")) {
        on_gone(m, id, "quit");
    } else if (!strcmp(t, "exception")) {
        on_exception(m, id, &msg.data);
    } else {
        fprintf(stderr, "aiload master: ignoring message '%s' from worker %s\n", t, id);
    }
    dist_msg_free(&msg);
}

static void drain(dist_master *m)
{
    for (;;) {
        zmq_msg_t idf, body;
        zmq_msg_init(&idf);
        if (zmq_msg_recv(&idf, m->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&idf);
            return;
        }
        char id[256] = "";
        size_t n = zmq_msg_size(&idf);
        int ok = zmq_msg_more(&idf) && n > 0 && n < sizeof(id);
        if (ok) {
            memcpy(id, zmq_msg_data(&idf), n);
            ok = !memchr(id, 0, n);
        }
        zmq_msg_init(&body);
        int more = zmq_msg_more(&idf);
        zmq_msg_close(&idf);
        if (!more) {
            zmq_msg_close(&body);
            continue;
        }
        if (zmq_msg_recv(&body, m->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&body);
            return;
        }
        if (zmq_msg_more(&body)) { /* more frames than Locust sends: drop them all */
            ok = 0;
            zmq_msg_t rest;
            int again = 1;
            while (again) {
                zmq_msg_init(&rest);
                again = zmq_msg_recv(&rest, m->sock, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&rest);
                zmq_msg_close(&rest);
            }
        }
        if (ok)
            handle(m, id, zmq_msg_data(&body), zmq_msg_size(&body));
        else
            fprintf(stderr,
                    "aiload master: dropped a malformed message (bad identity or frames)\n");
        zmq_msg_close(&body);
    }
}

/* ---- heartbeats, dispatch, stop ---- */

static void heartbeats(dist_master *m)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->npeers;) {
        peer *p = &m->peers[i];
        if (!live(p) && p->heartbeat <= DEAD_AFTER) {
            fprintf(stderr, "aiload master: worker %s missing for 60 s; removed\n", p->id);
            drop_peer(m, i);
            continue;
        }
        if (p->heartbeat < 0 && live(p)) {
            fprintf(stderr,
                    "aiload master: worker %s failed to send heartbeat, setting state to missing\n",
                    p->id);
            set_state(p, "missing");
            p->stopping = 0;
            p->sent_valid = 0;
            memset(p->users, 0, m->nc * sizeof(int));
        }
        p->heartbeat--;
        i++;
    }
    size_t n = 0;
    for (size_t i = 0; i < m->npeers; i++) n += live(&m->peers[i]);
    pthread_mutex_unlock(&m->mu);
    runner_state st = runner_get_state(m->r);
    if (!n && m->npeers && (st == RUNNER_SPAWNING || st == RUNNER_RUNNING)) {
        fprintf(stderr, "aiload master: the last worker went missing, stopping the test\n");
        runner_stop(m->r);
    }
}

static void pack_opt_str(msgpack_packer *pk, const char *s)
{
    if (s)
        msgpack_pack_str_with_body(pk, s, strlen(s));
    else
        msgpack_pack_nil(pk);
}

static void pack_opt_list(msgpack_packer *pk, const char *const *v, size_t n)
{
    if (!n) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) pack_opt_str(pk, v[i]);
}

/* Locust sends vars(parsed_options); its workers keep the keys that are not
 * its defaults, plus expect_workers, tags and exclude_tags. The master's
 * command line under Locust's names: what a locustfile's code may read. */
static void pack_parsed_options(dist_master *m)
{
    msgpack_packer *pk = &m->pk.pk;
    const cli_opts *c = m->o.cli;
    if (!c) {
        msgpack_pack_map(pk, 0);
        return;
    }
    msgpack_pack_map(pk, 13);
    dist_pack_str(&m->pk, "locustfile");
    pack_opt_str(pk, c->file);
    dist_pack_str(&m->pk, "host");
    pack_opt_str(pk, c->host);
    dist_pack_str(&m->pk, "num_users");
    msgpack_pack_int64(pk, c->users);
    dist_pack_str(&m->pk, "spawn_rate");
    msgpack_pack_double(pk, c->spawn_rate);
    dist_pack_str(&m->pk, "run_time");
    if (c->run_time_s > 0)
        msgpack_pack_int64(pk, (int64_t)c->run_time_s);
    else
        msgpack_pack_nil(pk);
    dist_pack_str(&m->pk, "headless");
    c->headless ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    dist_pack_str(&m->pk, "stop_timeout");
    if (c->stop_timeout_s > 0)
        msgpack_pack_double(pk, c->stop_timeout_s);
    else
        msgpack_pack_nil(pk);
    dist_pack_str(&m->pk, "reset_stats");
    c->reset_stats ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    dist_pack_str(&m->pk, "expect_workers");
    msgpack_pack_int64(pk, c->expect_workers > 0 ? c->expect_workers : 1);
    dist_pack_str(&m->pk, "tags");
    pack_opt_list(pk, c->tags, c->ntags);
    dist_pack_str(&m->pk, "exclude_tags");
    pack_opt_list(pk, c->exclude_tags, c->nexclude_tags);
    dist_pack_str(&m->pk, "csv_prefix");
    pack_opt_str(pk, c->csv_prefix);
    dist_pack_str(&m->pk, "master");
    msgpack_pack_true(pk);
}

static void send_spawn(dist_master *m, peer *p, const int *want, const char *host,
                       const open_share *os)
{
    double ts = wall();
    if (ts <= m->last_spawn_ts) ts = m->last_spawn_ts + 1e-6; /* strictly increasing */
    m->last_spawn_ts = ts;
    dist_pack_begin(&m->pk, "spawn");
    msgpack_pack_map(&m->pk.pk, os ? 6 : 5);
    dist_pack_str(&m->pk, "timestamp");
    msgpack_pack_double(&m->pk.pk, ts);
    dist_pack_str(&m->pk, "user_classes_count");
    dist_pack_class_counts(&m->pk, m->sc, want);
    dist_pack_str(&m->pk, "host");
    dist_pack_str(&m->pk, host);
    dist_pack_str(&m->pk, "stop_timeout");
    if (m->o.stop_timeout_s > 0)
        msgpack_pack_double(&m->pk.pk, m->o.stop_timeout_s);
    else
        msgpack_pack_nil(&m->pk.pk);
    dist_pack_str(&m->pk, "parsed_options");
    pack_parsed_options(m);
    if (os) { /* aiload's own: this worker's part of the arrival rate, in the master's time */
        dist_pack_str(&m->pk, "aiload_open");
        msgpack_pack_map(&m->pk.pk, 3);
        dist_pack_str(&m->pk, "rate");
        msgpack_pack_double(&m->pk.pk, os->rate * os->share);
        dist_pack_str(&m->pk, "stages");
        msgpack_pack_array(&m->pk.pk, os->nstages);
        for (size_t i = 0; i < os->nstages; i++) {
            msgpack_pack_array(&m->pk.pk, 2);
            msgpack_pack_double(&m->pk.pk, os->stages[i].duration_s);
            msgpack_pack_double(&m->pk.pk, os->stages[i].target * os->share);
        }
        dist_pack_str(&m->pk, "elapsed");
        msgpack_pack_double(&m->pk.pk, os->elapsed_s);
    }
    dist_pack_end(&m->pk, p->id);
    send_to(m, p->id);
    memcpy(p->sent, want, m->nc * sizeof(int));
    p->sent_valid = 1;
    p->sent_share = os ? os->share : -1;
}

static int cmp_index(const void *a, const void *b)
{
    const peer *x = *(peer *const *)a, *y = *(peer *const *)b;
    return (x->index > y->index) - (x->index < y->index);
}

/* Splits users over the live workers (dist/dispatch.h) and sends spawn to
 * those whose share changed. */
static void dispatch(dist_master *m, int users, const char *host)
{
    int *per_class = calloc(m->nc ? m->nc : 1, sizeof(int));
    int *want = calloc(m->nc ? m->nc : 1, sizeof(int));
    peer **act = calloc(m->npeers ? m->npeers : 1, sizeof(peer *));
    if (!per_class || !want || !act) goto out;
    scenario_split_users(m->sc, users, per_class);
    runner_stage stages[LG_MAX_STAGES];
    open_share os = {.stages = stages};
    int open = runner_dist_open_model(m->r, &os.rate, stages, &os.nstages, &os.elapsed_s);
    pthread_mutex_lock(&m->mu);
    size_t W = 0;
    for (size_t i = 0; i < m->npeers; i++) {
        peer *p = &m->peers[i];
        if (!live(p) || p->stopping) continue;
        /* the open model is aiload's: a Locust worker has none, and one not
         * heard from yet gets its share at its first heartbeat */
        if (open && p->kind == PEER_OTHER && !p->open_warned) {
            p->open_warned = 1;
            fprintf(stderr,
                    "aiload master: worker %s runs no open model (--rate/--stage: a Locust "
                    "worker, or aiload with a Python locustfile), so it gets no share of this "
                    "run\n",
                    p->id);
        }
        if (!open || p->kind == PEER_AILOAD) act[W++] = p;
    }
    size_t others = 0;
    for (size_t i = 0; open && !W && i < m->npeers; i++)
        others += live(&m->peers[i]) && m->peers[i].kind == PEER_OTHER;
    if (open && !W && others) {
        fprintf(stderr,
                "aiload master: error: --rate/--stage need aiload workers running an ini "
                "scenario; the %zu connected run the closed model only (Locust workers or "
                "Python locustfiles); stopping the test\n",
                others);
        pthread_mutex_unlock(&m->mu);
        runner_stop(m->r);
        goto out;
    }
    qsort(act, W, sizeof(peer *), cmp_index);
    for (size_t j = 0; j < W; j++) {
        dist_dispatch_share(per_class, m->nc, W, j, want);
        peer *p = act[j];
        int mine = 0;
        for (size_t k = 0; k < m->nc; k++) mine += want[k];
        /* the rate in proportion to the worker's share of the connections */
        os.share = users > 0 ? (double)mine / users : 1.0 / (double)W;
        if (!p->sent_valid || memcmp(p->sent, want, m->nc * sizeof(int)) ||
            (open && fabs(p->sent_share - os.share) > 1e-9) || (!open && p->sent_share >= 0))
            send_spawn(m, p, want, host, open ? &os : NULL);
    }
    pthread_mutex_unlock(&m->mu);
out:
    free(per_class);
    free(want);
    free(act);
}

/* The run went from active to stopping: tell every worker. */
static void send_stops(dist_master *m)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->npeers; i++) {
        peer *p = &m->peers[i];
        p->sent_valid = 0;
        if (!live(p)) continue;
        send_nil(m, "stop", p->id);
        p->stopping = 1;
    }
    pthread_mutex_unlock(&m->mu);
}

/* The users the workers report, and how many still stop, to the runner. */
static void report_remote(dist_master *m, runner_state seen)
{
    memset(m->class_tmp, 0, m->nc * sizeof(int));
    int busy = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->npeers; i++) {
        const peer *p = &m->peers[i];
        if (!live(p)) continue;
        busy += p->stopping;
        for (size_t k = 0; k < m->nc; k++) m->class_tmp[k] += p->users[k];
    }
    pthread_mutex_unlock(&m->mu);
    runner_dist_set_remote(m->r, m->class_tmp, busy, seen);
}

static void *master_main(void *arg)
{
    dist_master *m = arg;
    double next_hb = mono() + 1;
    char host[256];
    for (;;) {
        pthread_mutex_lock(&m->mu);
        int quit = m->quit;
        pthread_mutex_unlock(&m->mu);
        if (quit) break;
        zmq_pollitem_t pi = {.socket = m->sock, .events = ZMQ_POLLIN};
        zmq_poll(&pi, 1, 100);
        drain(m);
        double now = mono();
        if (now >= next_hb) {
            heartbeats(m);
            next_hb = now + 1;
        }
        int users;
        runner_state st = runner_dist_target(m->r, &users, host, sizeof(host));
        int active = st == RUNNER_SPAWNING || st == RUNNER_RUNNING;
        int was = m->last_state == RUNNER_SPAWNING || m->last_state == RUNNER_RUNNING;
        if (active && !was) runner_dist_exceptions_clear(m->r); /* a new test */
        if (active) dispatch(m, users, host);
        if (was && !active) send_stops(m);
        m->last_state = st;
        report_remote(m, st);
    }
    /* quit: every worker, then their last reports; Locust waits 0.5 s, we
     * wait until each said quit (or the stop timeout, at least 2 s, passed),
     * so the final statistics hold every request */
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->npeers; i++)
        if (live(&m->peers[i])) send_nil(m, "quit", m->peers[i].id);
    pthread_mutex_unlock(&m->mu);
    double end = mono() + (m->o.stop_timeout_s > 0 ? m->o.stop_timeout_s : 0) + 2;
    while (mono() < end) {
        zmq_pollitem_t pi = {.socket = m->sock, .events = ZMQ_POLLIN};
        zmq_poll(&pi, 1, 50);
        drain(m);
        pthread_mutex_lock(&m->mu);
        size_t n = 0;
        for (size_t i = 0; i < m->npeers; i++) n += live(&m->peers[i]);
        pthread_mutex_unlock(&m->mu);
        if (!n) break;
    }
    return NULL;
}

dist_master *dist_master_start(runner *r, const scenario *sc, const dist_master_opts *o, char *err,
                               size_t errlen)
{
    dist_master *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->r = r;
    m->sc = sc;
    m->o = *o;
    m->nc = scenario_class_count(sc);
    pthread_mutex_init(&m->mu, NULL);
    dist_pack_init(&m->pk);
    m->peers = calloc(MAX_PEERS, sizeof(peer));
    m->tmp = lg_stats_create(sc->nentries);
    m->class_tmp = calloc(m->nc ? m->nc : 1, sizeof(int));
    m->ctx = zmq_ctx_new();
    m->last_state = RUNNER_READY;
    if (!m->peers || !m->tmp || !m->class_tmp || !m->ctx) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    m->sock = dist_zsock_open(m->ctx, ZMQ_ROUTER, NULL);
    int linger = 500;
    if (m->sock) zmq_setsockopt(m->sock, ZMQ_LINGER, &linger, sizeof(linger));
    char ep[300];
    const char *bh = o->bind_host && *o->bind_host ? o->bind_host : "*";
    int port = o->bind_port == 0 ? DIST_DEFAULT_PORT : o->bind_port < 0 ? 0 : o->bind_port;
    dist_zsock_endpoint(ep, sizeof(ep), bh, port);
    if (!port) snprintf(strrchr(ep, ':'), 3, ":*"); /* zmq's "any free port" */
    if (!m->sock || zmq_bind(m->sock, ep) < 0) {
        snprintf(err, errlen, "--master: cannot bind %s: %s", ep, zmq_strerror(errno));
        goto fail;
    }
    char last[300];
    size_t ll = sizeof(last);
    m->port = port;
    if (!zmq_getsockopt(m->sock, ZMQ_LAST_ENDPOINT, last, &ll) && strrchr(last, ':'))
        m->port = atoi(strrchr(last, ':') + 1);
    if (pthread_create(&m->th, NULL, master_main, m)) {
        snprintf(err, errlen, "cannot start the master thread");
        goto fail;
    }
    m->started = 1;
    return m;
fail:
    dist_master_free(m);
    return NULL;
}

int dist_master_port(const dist_master *m)
{
    return m->port;
}

int dist_master_workers(dist_master *m)
{
    pthread_mutex_lock(&m->mu);
    int n = 0;
    for (size_t i = 0; i < m->npeers; i++) n += live(&m->peers[i]);
    pthread_mutex_unlock(&m->mu);
    return n;
}

int dist_master_await(dist_master *m, int want, double max_wait_s, volatile sig_atomic_t *quit)
{
    double t0 = mono();
    struct timespec nap = {0, 100000000L};
    int n;
    while ((n = dist_master_workers(m)) < want) {
        if (quit && *quit) return -1;
        if (max_wait_s > 0 && mono() - t0 >= max_wait_s) {
            fprintf(stderr,
                    "aiload master: gave up waiting for workers to connect: %d of %d after %g s\n",
                    n, want, max_wait_s);
            return -1;
        }
        nanosleep(&nap, NULL);
    }
    fprintf(stderr, "aiload master: %d workers connected; starting\n", n);
    return 0;
}

void dist_master_workers_json(dist_master *m, buf *out)
{
    buf_printf(out, "[");
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->npeers; i++) {
        const peer *p = &m->peers[i];
        int users = 0;
        for (size_t k = 0; k < m->nc; k++) users += p->users[k];
        buf_printf(out, "%s{\"id\":", i ? "," : "");
        buf_json_str(out, p->id, strlen(p->id));
        buf_printf(out, ",\"index\":%d,\"state\":", p->index);
        buf_json_str(out, p->state, strlen(p->state));
        buf_printf(out, ",\"user_count\":%d,\"cpu_usage\":%.1f,\"memory_usage\":%lld}", users,
                   p->cpu, (long long)p->mem);
    }
    pthread_mutex_unlock(&m->mu);
    buf_printf(out, "]");
}

void dist_master_free(dist_master *m)
{
    if (!m) return;
    if (m->started) {
        pthread_mutex_lock(&m->mu);
        m->quit = 1;
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->th, NULL);
    }
    if (m->sock) zmq_close(m->sock);
    if (m->ctx) zmq_ctx_term(m->ctx);
    for (size_t i = 0; m->peers && i < m->npeers; i++) {
        free(m->peers[i].users);
        free(m->peers[i].sent);
    }
    free(m->peers);
    lg_stats_free(m->tmp);
    free(m->class_tmp);
    dist_pack_free(&m->pk);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
