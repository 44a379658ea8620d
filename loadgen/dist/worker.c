/*
 * dist/worker: see worker.h. States and timings follow Locust 2.12's
 * WorkerRunner: HEARTBEAT_INTERVAL 1 s, WORKER_REPORT_INTERVAL 3 s,
 * CONNECT_TIMEOUT 5 s, CONNECT_RETRY_COUNT 60.
 */
#define _GNU_SOURCE
#include "loadgen/dist/worker.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "loadgen/dist/msg.h"
#include "loadgen/dist/wire.h"
#include "loadgen/dist/zsock.h"
#include "loadgen/scenario_int.h"

/* The longest tag filter kept for comparing the master's with the current one. */
#define WK_TAGKEY  2048
#define WK_MAXTAGS 64

typedef struct wk {
    runner *r;
    const scenario *sc;
    runner **rp; /* the caller's: a refilter replaces them */
    scenario **scp;
    char tagkey[WK_TAGKEY]; /* the tag filter r runs: "T\tweb\tE\tslow" */
    const dist_worker_opts *o;
    void *ctx, *sock;
    char id[160];
    char endpoint[300];
    dist_pack pk;
    runner_delta *spare;
    size_t nc;
    int *users; /* per class, as last dispatched */
    int user_count;
    const char *state; /* Locust's worker_state: ready, spawning, running, stopped */
    int acked;
    double last_spawn_ts;
    double start_time;
    int stop_pending, quit;
    double cpu_t, cpu_wall, cpu_pct;
} wk;

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

static void send_packed(wk *w, const char *type)
{
    if (zmq_send(w->sock, w->pk.sb.data, w->pk.sb.size, ZMQ_DONTWAIT) < 0)
        fprintf(stderr, "aiload worker: cannot send %s to the master: %s\n", type,
                zmq_strerror(errno));
}

/* A message whose data is None. */
static void send_nil(wk *w, const char *type)
{
    dist_pack_begin(&w->pk, type);
    msgpack_pack_nil(&w->pk.pk);
    dist_pack_end(&w->pk, w->id);
    send_packed(w, type);
}

static void send_ready(wk *w)
{
    dist_pack_begin(&w->pk, "client_ready");
    dist_pack_str(&w->pk, DIST_LOCUST_VERSION);
    dist_pack_end(&w->pk, w->id);
    send_packed(w, "client_ready");
}

static void send_exception(wk *w, const char *text)
{
    fprintf(stderr, "aiload worker: %s\n", text);
    dist_pack_begin(&w->pk, "exception");
    msgpack_pack_map(&w->pk.pk, 2);
    dist_pack_str(&w->pk, "msg");
    dist_pack_str(&w->pk, text);
    dist_pack_str(&w->pk, "traceback");
    dist_pack_str(&w->pk, "");
    dist_pack_end(&w->pk, w->id);
    send_packed(w, "exception");
}

/* The CPU figure Locust's master watches (it warns above 90 %): a Locust
 * worker is one thread, so while a test runs aiload reports its busiest load
 * thread over the last second; otherwise the process's CPU over the last
 * interval, in percent of one core. */
static void sample_cpu(wk *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, now = mono();
    if (w->cpu_wall > 0 && now > w->cpu_wall)
        w->cpu_pct = 100.0 * (t - w->cpu_t) / (now - w->cpu_wall);
    w->cpu_t = t;
    w->cpu_wall = now;
    runner_snapshot *s = runner_snapshot_take(w->r);
    if (s && (s->state == RUNNER_SPAWNING || s->state == RUNNER_RUNNING))
        w->cpu_pct = s->cpu_percent;
    runner_snapshot_free(s);
}

static int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return (int64_t)res * sysconf(_SC_PAGESIZE);
}

static void send_heartbeat(wk *w)
{
    sample_cpu(w);
    dist_pack_begin(&w->pk, "heartbeat");
    msgpack_pack_map(&w->pk.pk, 4);
    dist_pack_str(&w->pk, "aiload"); /* tells an aiload master it runs the open model */
    msgpack_pack_int64(&w->pk.pk, 1);
    dist_pack_str(&w->pk, "state");
    dist_pack_str(&w->pk, w->state);
    dist_pack_str(&w->pk, "current_cpu_usage");
    msgpack_pack_double(&w->pk.pk, w->cpu_pct);
    dist_pack_str(&w->pk, "current_memory_usage");
    msgpack_pack_int64(&w->pk.pk, rss_bytes());
    dist_pack_end(&w->pk, w->id);
    send_packed(w, "heartbeat");
}

static void send_stats(wk *w)
{
    /* w->spare now belongs to r (NULL only after an allocation failed) */
    runner_delta *d = w->spare ? runner_dist_take(w->r, w->spare) : NULL;
    w->spare = NULL;
    dist_pack_begin(&w->pk, "stats");
    int rc = dist_pack_report(&w->pk, w->sc, d, w->start_time, w->users, w->user_count);
    dist_pack_end(&w->pk, w->id);
    if (!rc)
        send_packed(w, "stats");
    else
        fprintf(stderr, "aiload worker: out of memory packing a report\n");
    /* the delta just sent is the next spare */
    w->spare = d ? d : runner_delta_create(w->sc->nentries);
}

static void send_spawning_complete(wk *w)
{
    dist_pack_begin(&w->pk, "spawning_complete");
    msgpack_pack_map(&w->pk.pk, 2);
    dist_pack_str(&w->pk, "user_classes_count");
    dist_pack_class_counts(&w->pk, w->sc, w->users);
    dist_pack_str(&w->pk, "user_count");
    msgpack_pack_int64(&w->pk.pk, w->user_count);
    dist_pack_end(&w->pk, w->id);
    send_packed(w, "spawning_complete");
}

/* An aiload master's open model: {"rate", "stages": [[duration, target], ...],
 * "elapsed"}, this worker's share of the rate at the master's point in time. */
static int set_open(wk *w, const msgpack_object *o, int conns, const char *host, char *err,
                    size_t errlen)
{
    runner_stage st[DIST_OPEN_MAX_STAGES];
    double rate = 0, elapsed = 0;
    size_t n = 0;
    if (dist_parse_open(o, &rate, st, &n, &elapsed, err, errlen)) return -EINVAL;
    return runner_dist_set_open(w->r, conns, rate, st, n, elapsed, host, err, errlen);
}

/* Points tags[] at copies in store of list (a msgpack array of strings, or
 * nil). Returns the count, or -1 when it is not a list of strings or does not
 * fit. */
static int tag_list(const msgpack_object *list, char *store, size_t storelen, size_t *used,
                    const char **tags)
{
    if (!list || list->type == MSGPACK_OBJECT_NIL) return 0;
    if (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > WK_MAXTAGS) return -1;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *t = &list->via.array.ptr[i];
        if (t->type != MSGPACK_OBJECT_STR || *used + t->via.str.size + 1 > storelen) return -1;
        memcpy(store + *used, t->via.str.ptr, t->via.str.size);
        store[*used + t->via.str.size] = '\0';
        tags[i] = store + *used;
        *used += t->via.str.size + 1;
    }
    return (int)list->via.array.size;
}

/* The filter as one comparable string, "T\tweb\tE\tslow"; -1 when it does
 * not fit in len. */
static int tag_key(char *key, size_t len, const char *const *tags, size_t ntags,
                   const char *const *ex, size_t nex)
{
    size_t k = (size_t)snprintf(key, len, "T");
    for (size_t i = 0; i < ntags && k < len; i++)
        k += (size_t)snprintf(key + k, len - k, "\t%s", tags[i]);
    if (k < len) k += (size_t)snprintf(key + k, len - k, "\tE");
    for (size_t i = 0; i < nex && k < len; i++)
        k += (size_t)snprintf(key + k, len - k, "\t%s", ex[i]);
    return k < len ? 0 : -1;
}

/* A new test: the master's tags and exclude_tags (in parsed_options, as
 * Locust's master sends them) replace the worker's own, as on a Locust worker,
 * and the scenario is filtered again when they differ from the current ones.
 * Returns 0, or -1 after telling the master why the test can not start here. */
static int take_master_tags(wk *w, const msgpack_object *data)
{
    const msgpack_object *po = dist_map_get(data, "parsed_options");
    if (!w->o->refilter || !po || po->type != MSGPACK_OBJECT_MAP) return 0;
    const msgpack_object *t = dist_map_get(po, "tags"), *e = dist_map_get(po, "exclude_tags");
    if (!t && !e) return 0;
    char key[WK_TAGKEY], store[WK_TAGKEY];
    const char *tags[WK_MAXTAGS], *ex[WK_MAXTAGS];
    size_t used = 0;
    int nt = tag_list(t, store, sizeof(store), &used, tags);
    int ne = nt < 0 ? -1 : tag_list(e, store, sizeof(store), &used, ex);
    if (nt < 0 || ne < 0 || tag_key(key, sizeof(key), tags, (size_t)nt, ex, (size_t)ne)) {
        send_exception(w, "the master's tags or exclude_tags are not a list of strings (or too "
                          "long); this worker keeps its own");
        return 0;
    }
    if (!strcmp(key, w->tagkey)) return 0;
    char err[512];
    scenario *sc = *w->scp;
    if (w->o->refilter(w->o->refilter_ctx, tags, (size_t)nt, ex, (size_t)ne, w->rp, &sc, err,
                       sizeof(err))) {
        char text[700];
        snprintf(text, sizeof(text), "the master's tags leave nothing to run here: %s", err);
        send_exception(w, text);
        return -1;
    }
    /* a new runner and scenario: the per-class arrays and the delta follow them */
    int *users = calloc(scenario_class_count(sc) ? scenario_class_count(sc) : 1, sizeof(int));
    runner_delta *spare = runner_delta_create(sc->nentries);
    runner_delta_free(w->spare);
    free(w->users);
    *w->scp = sc;
    w->sc = sc;
    w->r = *w->rp;
    w->nc = scenario_class_count(sc);
    w->users = users;
    w->spare = spare;
    if (spare) { /* turns the delta on; the first take hands back none */
        runner_dist_take(w->r, spare);
        w->spare = runner_delta_create(sc->nentries);
    }
    snprintf(w->tagkey, sizeof(w->tagkey), "%s", key);
    char say[WK_TAGKEY + 16];
    size_t k = 0;
    for (int i = 0; i < nt && k < sizeof(say); i++)
        k += (size_t)snprintf(say + k, sizeof(say) - k, "%s%s", i ? " " : "-T ", tags[i]);
    for (int i = 0; i < ne && k < sizeof(say); i++)
        k += (size_t)snprintf(say + k, sizeof(say) - k, "%s%s",
                              i   ? " "
                              : k ? " -E "
                                  : "-E ",
                              ex[i]);
    fprintf(stderr, "aiload worker: %s filtered by the master's tags (%s)\n", scenario_source(sc),
            k ? say : "none");
    if (!users || !w->spare) {
        send_exception(w, "out of memory");
        return -1;
    }
    return 0;
}

static void on_spawn(wk *w, const msgpack_object *data)
{
    send_nil(w, "spawning");
    double ts = 0;
    if (dist_obj_num(dist_map_get(data, "timestamp"), &ts)) {
        fprintf(stderr, "aiload worker: spawn message without a timestamp; dropped\n");
        return;
    }
    if (ts <= w->last_spawn_ts) {
        fprintf(stderr, "aiload worker: discarding a spawn message older than the last one\n");
        return;
    }
    const msgpack_object *ucc = dist_map_get(data, "user_classes_count");
    if (!ucc || ucc->type != MSGPACK_OBJECT_MAP) {
        fprintf(stderr, "aiload worker: spawn message without user_classes_count; dropped\n");
        return;
    }
    w->last_spawn_ts = ts;
    runner_state st = runner_get_state(w->r);
    int fresh = st != RUNNER_SPAWNING && st != RUNNER_RUNNING;
    if (fresh && take_master_tags(w, data)) return;
    /* the master's stop_timeout (None: keep --stop-timeout), as a Locust worker */
    double stop_timeout;
    if (!dist_obj_num(dist_map_get(data, "stop_timeout"), &stop_timeout) && stop_timeout > 0)
        runner_dist_set_stop_timeout(w->r, stop_timeout);
    int *want = calloc(w->nc ? w->nc : 1, sizeof(int));
    if (!want) return;
    for (uint32_t i = 0; i < ucc->via.map.size; i++) {
        const msgpack_object *k = &ucc->via.map.ptr[i].key;
        int64_t n;
        size_t c = 0;
        while (c < w->nc && !dist_obj_streq(k, scenario_class_name(w->sc, c))) c++;
        if (dist_obj_int(&ucc->via.map.ptr[i].val, &n) || n < 0 || n > 1000000) {
            send_exception(w, "spawn message with a bad user count; dropped");
            free(want);
            return;
        }
        if (c == w->nc) {
            if (n > 0) {
                char name[128] = "?", text[400];
                dist_obj_str(k, name, sizeof(name));
                snprintf(text, sizeof(text),
                         "the master asked for %lld users of class '%s', which %s does not "
                         "define; they are not started",
                         (long long)n, name, scenario_source(w->sc));
                send_exception(w, text);
            }
            continue;
        }
        want[c] = (int)n;
    }
    char host[512] = "";
    if (w->o->host && *w->o->host)
        snprintf(host, sizeof(host), "%s", w->o->host);
    else
        dist_obj_str(dist_map_get(data, "host"), host, sizeof(host));
    if (fresh) {
        w->start_time = wall();
        /* drop what the last test left (reported at its stop) */
        runner_delta *old = w->spare ? runner_dist_take(w->r, w->spare) : NULL;
        w->spare = old ? old : runner_delta_create(w->sc->nentries);
    }
    char err[512];
    int total = 0;
    for (size_t c = 0; c < w->nc; c++) total += want[c];
    const msgpack_object *open = dist_map_get(data, "aiload_open");
    int rc = open && total > 0
                 ? set_open(w, open, total, *host ? host : NULL, err, sizeof(err))
                 : runner_dist_set_users(w->r, want, *host ? host : NULL, err, sizeof(err));
    if (rc) {
        send_exception(w, err);
        free(want);
        return;
    }
    memcpy(w->users, want, w->nc * sizeof(int));
    w->user_count = 0;
    for (size_t c = 0; c < w->nc; c++) w->user_count += want[c];
    free(want);
    w->state = "running";
    fprintf(stderr, "aiload worker: running %d users\n", w->user_count);
    send_spawning_complete(w);
}

static int open_socket(wk *w)
{
    w->sock = dist_zsock_open(w->ctx, ZMQ_DEALER, w->id);
    if (!w->sock || zmq_connect(w->sock, w->endpoint) < 0) {
        fprintf(stderr, "aiload worker: cannot connect to %s: %s\n", w->endpoint,
                zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static void handle(wk *w, const void *data, size_t len)
{
    dist_msg m;
    char err[256];
    if (dist_msg_decode(data, len, &m, err, sizeof(err))) {
        fprintf(stderr, "aiload worker: dropped a message from the master: %s\n", err);
        return;
    }
    if (!strcmp(m.type, "ack")) {
        int64_t idx;
        if (!w->acked) {
            if (!dist_obj_int(dist_map_get(&m.data, "index"), &idx))
                fprintf(stderr, "aiload worker: connected to the master as worker %lld (%s)\n",
                        (long long)idx, w->id);
            else
                fprintf(stderr, "aiload worker: connected to the master (%s)\n", w->id);
        }
        if (!w->acked) send_heartbeat(w); /* at once: the master learns it is aiload */
        w->acked = 1;
    } else if (!strcmp(m.type, "spawn")) {
        if (w->stop_pending) { /* a new test before the old one drained: finish the stop first */
            while (!runner_wait(w->r, 1000)) send_heartbeat(w); /* still alive meanwhile */
            w->stop_pending = 0;
        }
        on_spawn(w, &m.data);
    } else if (!strcmp(m.type, "stop")) {
        runner_stop(w->r);
        w->stop_pending = 1;
        w->state = "stopped";
    } else if (!strcmp(m.type, "quit")) {
        fprintf(stderr, "aiload worker: the master said quit; shutting down\n");
        w->quit = 1;
    } else if (!strcmp(m.type, "reconnect")) {
        fprintf(stderr, "aiload worker: the master asked to reconnect; resetting the connection\n");
        zmq_close(w->sock);
        if (open_socket(w)) w->quit = 1;
    } else {
        /* custom messages (runner.register_message on a Locust master): aiload
         * scenarios have no handlers for them */
        fprintf(stderr, "aiload worker: ignoring message '%s' from the master\n", m.type);
    }
    dist_msg_free(&m);
}

/* Receives everything queued, without waiting. */
static void drain(wk *w)
{
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, w->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        int more = zmq_msg_more(&msg);
        if (more)
            fprintf(stderr, "aiload worker: dropped a multi-part message from the master\n");
        else
            handle(w, zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
        while (more) { /* the rest of a multi-part message */
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, w->sock, ZMQ_DONTWAIT) < 0)
                more = 0;
            else
                more = zmq_msg_more(&msg);
            zmq_msg_close(&msg);
        }
        if (w->quit) return;
    }
}

int dist_worker_run(runner **rp, scenario **scp, const dist_worker_opts *o)
{
    runner *r = *rp;
    scenario *sc = *scp;
    wk w = {.r = r, .sc = sc, .rp = rp, .scp = scp, .o = o, .state = "ready"};
    /* cut short, it matches no master's key: the worst is one needless refilter */
    (void)tag_key(w.tagkey, sizeof(w.tagkey), o->tags, o->ntags, o->exclude_tags, o->nexclude_tags);
    w.nc = scenario_class_count(sc);
    w.users = calloc(w.nc ? w.nc : 1, sizeof(int));
    w.spare = runner_delta_create(sc->nentries);
    char hn[64] = "aiload";
    gethostname(hn, sizeof(hn) - 1);
    hn[sizeof(hn) - 1] = 0;
    dist_random_hex(w.id + snprintf(w.id, sizeof(w.id), "%s_", hn), 32);
    dist_zsock_endpoint(w.endpoint, sizeof(w.endpoint),
                        o->master_host ? o->master_host : "127.0.0.1",
                        o->master_port ? o->master_port : DIST_DEFAULT_PORT);
    dist_pack_init(&w.pk);
    w.ctx = zmq_ctx_new();
    int code = 1;
    if (!w.users || !w.spare || !w.ctx || open_socket(&w)) goto out;
    runner_dist_take(r, w.spare); /* turns the delta on; the first take hands back none */
    w.spare = runner_delta_create(sc->nentries);
    if (!w.spare) goto out;

    double report_s = o->report_s > 0 ? o->report_s : 3.0;
    int retries = o->connect_retries > 0 ? o->connect_retries : 60, tries = 1;
    double now = mono(), ready_at = now, next_hb = now + 1, next_report = now + report_s;
    send_ready(&w);
    sample_cpu(&w);
    while (!w.quit && !(o->quit_flag && *o->quit_flag)) {
        zmq_pollitem_t pi = {.socket = w.sock, .events = ZMQ_POLLIN};
        zmq_poll(&pi, 1, 100);
        drain(&w);
        now = mono();
        if (!w.acked && now - ready_at >= 5) {
            if (tries >= retries) {
                fprintf(stderr,
                        "aiload worker: no answer from the master at %s after %d attempts; is it "
                        "a Locust 2.x or aiload master?\n",
                        w.endpoint, tries);
                goto out;
            }
            if (tries >= 3)
                fprintf(stderr,
                        "aiload worker: failed to connect to the master at %s, retry %d/%d\n",
                        w.endpoint, tries, retries);
            send_ready(&w);
            tries++;
            ready_at = now;
        }
        if (now >= next_hb) {
            send_heartbeat(&w);
            next_hb = now + 1;
        }
        if (now >= next_report) {
            send_stats(&w);
            next_report = now + report_s;
        }
        if (w.stop_pending && runner_wait(w.r, 0)) {
            /* Locust's order: the last stats, client_stopped, then ready again */
            memset(w.users, 0, w.nc * sizeof(int));
            w.user_count = 0;
            send_stats(&w);
            send_nil(&w, "client_stopped");
            send_ready(&w);
            w.state = "ready";
            w.stop_pending = 0;
        }
    }
    /* a Locust master waits only 0.5 s for the last reports after quit: send
     * what each stopping tick merged, then the rest once in-flight requests ended */
    runner_stop(w.r);
    while (!runner_wait(w.r, 150)) send_stats(&w);
    memset(w.users, 0, w.nc * sizeof(int));
    w.user_count = 0;
    send_stats(&w);
    send_nil(&w, "quit");
    code = 0;
out:
    if (w.sock) zmq_close(w.sock); /* lingers up to 2 s to deliver the last messages */
    if (w.ctx) zmq_ctx_term(w.ctx);
    dist_pack_free(&w.pk);
    runner_delta_free(w.spare);
    free(w.users);
    return code;
}
