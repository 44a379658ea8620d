/*
 * worker: the thread, its mailbox, its timer and what its users do.
 *
 * Timing: one timerfd per worker, armed (absolute, CLOCK_MONOTONIC, ns) to the
 * earliest of: the next user wake-up (a min-heap of think-time ends), the next
 * open-model arrival, and the 100 ms timeout sweep. ev's own timers have 1 ms
 * resolution and O(n) cancel; this keeps sub-ms scheduling and O(log n) wakes.
 *
 * Closed model: a user runs its on_start requests, then tasks (weighted pick
 * or sequential), waiting wait_time after each. A user whose request failed
 * waits for its next turn through the heap, so a refusing server cannot send
 * the thread into a recursion.
 *
 * Open model: arrival n of the whole run happens when the integral of the
 * rate reaches n; worker i takes arrivals i, i+T, i+2T, ... Each arrival is
 * sent on an idle connection (opening one up to the cap); when none is free it
 * waits, and its latency still counts from its intended time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "loadgen/worker_int.h"

#define SWEEP_NS 100000000ull

/* ---- timer heap ---- */

static int wake_less(const lg_wake *a, const lg_wake *b)
{
    return a->at < b->at;
}

static void arm(lg_worker *w, uint64_t at)
{
    if (w->armed_at && w->armed_at <= at) return;
    if (at == 0) at = 1;
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(at / 1000000000ull);
    its.it_value.tv_nsec = (long)(at % 1000000000ull);
    timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    w->armed_at = at;
}

static void heap_push(lg_worker *w, lg_conn *c, uint64_t at)
{
    if (w->nheap == w->capheap) {
        size_t cap = w->capheap ? w->capheap * 2 : 256;
        lg_wake *h = realloc(w->heap, cap * sizeof(*h));
        if (!h) return; /* out of memory: this user stays idle until the test ends */
        w->heap = h;
        w->capheap = cap;
    }
    size_t i = w->nheap++;
    w->heap[i] = (lg_wake){.at = at, .slot = c->slot, .gen = c->gen};
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!wake_less(&w->heap[i], &w->heap[p])) break;
        lg_wake t = w->heap[i];
        w->heap[i] = w->heap[p];
        w->heap[p] = t;
        i = p;
    }
    c->waking = 1;
    arm(w, at);
}

static lg_wake heap_pop(lg_worker *w)
{
    lg_wake top = w->heap[0];
    w->heap[0] = w->heap[--w->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->nheap && wake_less(&w->heap[l], &w->heap[m])) m = l;
        if (r < w->nheap && wake_less(&w->heap[r], &w->heap[m])) m = r;
        if (m == i) break;
        lg_wake t = w->heap[i];
        w->heap[i] = w->heap[m];
        w->heap[m] = t;
        i = m;
    }
    return top;
}

/* ---- users ---- */

/* 1 while new requests may start: the test runs and its run time is not up
 * (the workers enforce the end themselves, to the microsecond). */
static int may_send(const lg_worker *w, uint64_t now)
{
    return w->cur.phase == LG_RUN && (!w->cur.end_ns || now < w->cur.end_ns);
}

/* A free slot (reused, from the free stack) or a new one. Slots are never
 * freed during a run: wake-ups in the heap refer to them by index. */
static lg_conn *new_conn(lg_worker *w)
{
    while (w->nfree) {
        lg_conn *c = w->conns[w->free_slots[--w->nfree]];
        if (c->state == CS_FREE) return c;
    }
    if (w->nconns == w->capconns) {
        size_t cap = w->capconns ? w->capconns * 2 : 64;
        lg_conn **n = realloc(w->conns, cap * sizeof(*n));
        if (!n) return NULL;
        w->conns = n;
        uint32_t *f = realloc(w->free_slots, cap * sizeof(*f));
        if (!f) return NULL;
        w->free_slots = f;
        w->capconns = cap;
    }
    lg_conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->w = w;
    c->fd = -1;
    c->slot = (uint32_t)w->nconns;
    w->conns[w->nconns++] = c;
    return c;
}

static void free_conn(lg_conn *c)
{
    buf_free(&c->out);
    buf_free(&c->obody);
    buf_free(&c->body);
    free(c->rbuf);
    lg_tls_session_free(c->sess);
    free(c);
}

/* Ends a user (or an open-model connection) for good. */
static void user_end(lg_worker *w, lg_conn *c)
{
    lg_conn_end_user(w, c);
    if (c->state == CS_FREE) return;
    if (!c->retiring && !w->cur.open_model && w->have[c->cls] > 0) w->have[c->cls]--;
    if (w->cur.open_model) w->open_conns--;
    c->state = CS_FREE;
    c->gen++;
    c->waking = 0;
    c->retiring = 0;
    w->users--;
    w->free_slots[w->nfree++] = c->slot;
}

static double wait_s(const sc_class *k, uint64_t *rng)
{
    if (k->wait == SC_WAIT_BETWEEN) return k->wait_a + sc_rand01(rng) * (k->wait_b - k->wait_a);
    return k->wait_a;
}

static const sc_request *pick_task(const sc_class *k, lg_conn *c, size_t *idx)
{
    if (k->sequential) {
        *idx = c->seq_next;
        c->seq_next = (c->seq_next + 1) % k->ntasks;
        return &k->tasks[*idx];
    }
    double x = sc_rand01(&c->rng) * k->total_weight;
    size_t i = 0;
    for (; i + 1 < k->ntasks; i++) {
        if (x < k->tasks[i].weight) break;
        x -= k->tasks[i].weight;
    }
    *idx = i;
    return &k->tasks[i];
}

/* Starts the user's next request; intended is when it should start. */
static void user_next(lg_worker *w, lg_conn *c, uint64_t intended, uint64_t now)
{
    if (!may_send(w, now) || c->retiring) {
        user_end(w, c);
        return;
    }
    const sc_class *k = &w->sc->classes[c->cls];
    const sc_request *r;
    const lg_pre *pre;
    c->starting = c->on_start_next < k->non_start;
    if (c->starting) {
        pre = &w->pre_start[c->cls][c->on_start_next];
        r = &k->on_start[c->on_start_next++];
    } else {
        size_t i;
        r = pick_task(k, c, &i);
        pre = &w->pre_tasks[c->cls][i];
        if (k->wait == SC_WAIT_PACING) {
            if (!c->pace_next) c->pace_next = intended;
            intended = c->pace_next;
            c->pace_next = intended + (uint64_t)(k->wait_a * 1e9);
        }
    }
    lg_conn_begin(w, c, r, pre, intended, now);
}

static void open_pump(lg_worker *w, uint64_t now);

void lg_worker_request_done(lg_worker *w, lg_conn *c, int failed, uint64_t now)
{
    if (w->cur.open_model) {
        if (!may_send(w, now)) {
            user_end(w, c);
            return;
        }
        if (w->nidle < w->nconns) w->idle[w->nidle++] = c->slot;
        /* a failure may have come synchronously from lg_conn_begin (a refused
         * connect): pump from the timer, not recursively */
        if (failed)
            arm(w, now);
        else
            open_pump(w, now);
        return;
    }
    if (!may_send(w, now) || c->retiring) {
        user_end(w, c);
        return;
    }
    const sc_class *k = &w->sc->classes[c->cls];
    uint64_t at = now;
    if (!c->starting) { /* no think time after on_start requests, as in Locust */
        if (k->wait == SC_WAIT_PACING)
            at = c->pace_next > now ? c->pace_next : now;
        else
            at = now + (uint64_t)(wait_s(k, &c->rng) * 1e9);
    }
    if (at <= now && !failed)
        user_next(w, c, now, now);
    else /* after a failure: a later loop turn, so a synchronous failure cannot spin here */
        heap_push(w, c, at > now ? at : now + 1);
}

static void spawn(lg_worker *w, int cls, uint64_t now)
{
    lg_conn *c = new_conn(w);
    if (!c) return;
    uint32_t slot = c->slot, gen = c->gen;
    memset(c, 0, offsetof(lg_conn, req));
    c->w = w;
    c->slot = slot;
    c->gen = gen + 1;
    c->fd = -1;
    c->cls = cls;
    c->state = CS_IDLE;
    c->user_id = w->cur.user_base + w->spawned * (uint64_t)w->cfg.nworkers + 1;
    c->rng = (w->cfg.seed ^ (c->user_id * 0x9e3779b97f4a7c15ull)) | 1;
    w->spawned++;
    w->have[cls]++;
    w->users++;
    user_next(w, c, now, now);
}

/* Retires n users of class cls, idle ones at once, busy ones after their
 * request (they no longer count as the class's users). */
static void retire(lg_worker *w, int cls, int n)
{
    for (int pass = 0; pass < 2 && n > 0; pass++) {
        for (size_t i = 0; i < w->nconns && n > 0; i++) {
            lg_conn *c = w->conns[i];
            if (c->state == CS_FREE || c->cls != cls || c->retiring) continue;
            if (pass == 0 && c->state != CS_IDLE) continue;
            n--;
            if (c->state == CS_IDLE) {
                user_end(w, c);
            } else {
                c->retiring = 1;
                w->have[cls]--;
            }
        }
    }
}

static void adjust_users(lg_worker *w, uint64_t now)
{
    for (size_t k = 0; k < w->nclasses; k++) {
        while (w->have[k] < w->want[k]) {
            int before = w->have[k];
            spawn(w, (int)k, now);
            if (w->have[k] == before) break;
        }
        if (w->have[k] > w->peak[k]) w->peak[k] = w->have[k];
        if (w->have[k] > w->want[k]) retire(w, (int)k, w->have[k] - w->want[k]);
    }
}

/* ---- open model ---- */

/* Seconds from t0 until the integral of the rate reaches n arrivals; INFINITY
 * if it never does. Stages ramp linearly; after the last the rate holds. */
static double arrival_time(const lg_cmd *cmd, double n)
{
    double t = 0, r0 = cmd->rate, acc = 0;
    for (size_t i = 0; i < cmd->nstages; i++) {
        double d = cmd->stages[i].duration_s, r1 = cmd->stages[i].target;
        double seg = d * (r0 + r1) / 2;
        if (acc + seg >= n && seg > 0) {
            double m = n - acc, a = (r1 - r0) / (2 * d);
            double x = fabs(a) < 1e-12 ? m / r0 : (-r0 + sqrt(r0 * r0 + 4 * a * m)) / (2 * a);
            return t + x;
        }
        acc += seg;
        t += d;
        r0 = r1;
    }
    if (r0 <= 0) return INFINITY;
    return t + (n - acc) / r0;
}

static uint64_t arrival_ns(lg_worker *w, uint64_t k)
{
    double n = (double)k * w->cfg.nworkers + w->cfg.id;
    double s = arrival_time(&w->cur, n);
    if (!isfinite(s) || s > 1e7) return UINT64_MAX;
    return w->cur.t0_ns + (uint64_t)(s * 1e9);
}

static lg_conn *open_take(lg_worker *w)
{
    while (w->nidle) {
        lg_conn *c = w->conns[w->idle[--w->nidle]];
        if (c->state == CS_IDLE) return c;
    }
    if (w->open_conns >= w->cur.max_conns) return NULL;
    lg_conn *c = new_conn(w);
    if (!c) return NULL;
    uint32_t *idle = realloc(w->idle, w->nconns * sizeof(*idle));
    if (!idle) return NULL;
    w->idle = idle;
    uint32_t slot = c->slot, gen = c->gen;
    memset(c, 0, offsetof(lg_conn, req));
    c->w = w;
    c->slot = slot;
    c->gen = gen + 1;
    c->fd = -1;
    c->state = CS_IDLE;
    c->user_id = w->cur.user_base + w->spawned * (uint64_t)w->cfg.nworkers + 1;
    c->rng = (w->cfg.seed ^ (c->user_id * 0x9e3779b97f4a7c15ull)) | 1;
    w->spawned++;
    w->open_conns++;
    w->users++;
    return c;
}

static int pick_class(lg_worker *w, uint64_t *rng)
{
    const scenario *sc = w->sc;
    double total = 0;
    for (size_t i = 0; i < sc->nclasses; i++) total += sc->classes[i].weight;
    double x = sc_rand01(rng) * total;
    for (size_t i = 0; i + 1 < sc->nclasses; i++) {
        if (x < sc->classes[i].weight) return (int)i;
        x -= sc->classes[i].weight;
    }
    return (int)sc->nclasses - 1;
}

/* An open-model connection serves arrivals of every class: one opened for a
 * class of another host (or scheme) cannot carry this one. */
static int same_target(const lg_worker *w, int a, int b)
{
    const lg_target *x = &w->cur.targets[a], *y = &w->cur.targets[b];
    return x->tls == y->tls && x->addrlen == y->addrlen &&
           !memcmp(&x->addr, &y->addr, x->addrlen) && !strcmp(x->authority, y->authority);
}

static void open_pump(lg_worker *w, uint64_t now)
{
    while (may_send(w, w->next_at) && w->next_at <= now) {
        lg_conn *c = open_take(w);
        if (!c) return; /* all busy: the arrival waits, its clock already runs */
        int cls = pick_class(w, &c->rng);
        if (c->fd >= 0 && cls != c->cls && !same_target(w, cls, c->cls)) lg_conn_end_user(w, c);
        c->cls = cls;
        size_t i;
        const sc_request *r = pick_task(&w->sc->classes[c->cls], c, &i);
        uint64_t intended = w->next_at;
        w->next_k++;
        w->next_at = arrival_ns(w, w->next_k);
        lg_conn_begin(w, c, r, &w->pre_tasks[c->cls][i], intended, now);
    }
    if (may_send(w, w->next_at) && w->next_at != UINT64_MAX) arm(w, w->next_at);
}

/* Arrivals due by now that were never sent (counted at stop). */
static void open_count_dropped(lg_worker *w, uint64_t now)
{
    uint64_t n = 0;
    while (w->next_at <= now && n < 100000000ull) {
        n++;
        w->next_k++;
        w->next_at = arrival_ns(w, w->next_k);
    }
    w->st->dropped += n;
}

/* ---- the thread's timer ---- */

static uint64_t next_deadline(lg_worker *w)
{
    uint64_t at = w->sweep_at;
    if (w->nheap && w->heap[0].at < at) at = w->heap[0].at;
    if (w->cur.open_model && w->cur.phase == LG_RUN && w->next_at < at &&
        (w->nidle || w->open_conns < w->cur.max_conns))
        at = w->next_at;
    return at;
}

static void on_timer(ev_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    (void)fd;
    lg_worker *w = data;
    /* No read() of the expiration count: the arm() at the end always sets
     * the timer again (armed_at is 0 by then), and timerfd_settime clears
     * the count and the readiness; a wake-up made stale by a re-arm earlier
     * in the same batch finds nothing due and re-arms. One syscall fewer per
     * wake-up (about one per arrival in the open model at moderate rates). */
    w->armed_at = 0;
    uint64_t now = ev_clock_ns();
    while (w->nheap && w->heap[0].at <= now) {
        lg_wake wk = heap_pop(w);
        lg_conn *c = wk.slot < w->nconns ? w->conns[wk.slot] : NULL;
        if (!c || c->gen != wk.gen || c->state != CS_IDLE || !c->waking) continue;
        c->waking = 0;
        user_next(w, c, wk.at, now);
    }
    if (w->cur.open_model) open_pump(w, now);
    if (now >= w->sweep_at) {
        lg_conn_sweep(w, now);
        w->sweep_at = now + SWEEP_NS;
    }
    arm(w, next_deadline(w));
}

/* ---- commands ---- */

static void free_pre(lg_worker *w)
{
    for (size_t k = 0; k < w->nclasses; k++) {
        const sc_class *cl = &w->sc->classes[k];
        for (size_t i = 0; w->pre_tasks && i < cl->ntasks; i++) free(w->pre_tasks[k][i].head);
        for (size_t i = 0; w->pre_start && i < cl->non_start; i++) free(w->pre_start[k][i].head);
        if (w->pre_tasks) free(w->pre_tasks[k]);
        if (w->pre_start) free(w->pre_start[k]);
    }
    free(w->pre_tasks);
    free(w->pre_start);
    w->pre_tasks = w->pre_start = NULL;
}

static int build_pre(lg_worker *w)
{
    free_pre(w);
    w->pre_tasks = calloc(w->nclasses, sizeof(lg_pre *));
    w->pre_start = calloc(w->nclasses, sizeof(lg_pre *));
    if (!w->pre_tasks || !w->pre_start) return -ENOMEM;
    for (size_t k = 0; k < w->nclasses; k++) {
        const sc_class *cl = &w->sc->classes[k];
        w->pre_tasks[k] = calloc(cl->ntasks + 1, sizeof(lg_pre));
        w->pre_start[k] = calloc(cl->non_start + 1, sizeof(lg_pre));
        if (!w->pre_tasks[k] || !w->pre_start[k]) return -ENOMEM;
        for (size_t i = 0; i < cl->ntasks; i++)
            lg_conn_build_pre(&cl->tasks[i], &w->cur.targets[k], &w->pre_tasks[k][i]);
        for (size_t i = 0; i < cl->non_start; i++)
            lg_conn_build_pre(&cl->on_start[i], &w->cur.targets[k], &w->pre_start[k][i]);
    }
    return 0;
}

static void end_all(lg_worker *w)
{
    for (size_t i = 0; i < w->nconns; i++)
        if (w->conns[i]->state != CS_FREE) user_end(w, w->conns[i]);
    for (size_t k = 0; k < w->nclasses; k++) w->have[k] = 0;
    w->nidle = 0;
    w->nheap = 0;
}

static void apply(lg_worker *w, uint64_t now, uint64_t old_epoch, lg_phase old_phase)
{
    if (w->cur.epoch != old_epoch) {
        end_all(w);
        w->spawned = 0;
        w->next_k = 0;
        memset(w->peak, 0, w->nclasses * sizeof(int));
        if (w->cur.targets) build_pre(w);
        if (w->cur.open_model) w->next_at = arrival_ns(w, 0);
    }
    switch (w->cur.phase) {
    case LG_RUN:
        if (w->cur.open_model)
            open_pump(w, now);
        else
            adjust_users(w, now);
        break;
    case LG_DRAIN:
        if (old_phase == LG_RUN && w->cur.open_model)
            open_count_dropped(w, w->cur.end_ns && w->cur.end_ns < now ? w->cur.end_ns - 1 : now);
        /* idle users end now; busy ones end when their response is recorded */
        for (size_t i = 0; i < w->nconns; i++)
            if (w->conns[i]->state == CS_IDLE) user_end(w, w->conns[i]);
        break;
    case LG_ABORT:
        for (size_t i = 0; i < w->nconns; i++)
            if (w->conns[i]->state >= CS_CONNECTING)
                lg_conn_fail(w, w->conns[i], LG_ERR_ABORTED, 0, now);
        end_all(w);
        break;
    case LG_IDLE: end_all(w); break;
    }
    arm(w, next_deadline(w));
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_async(ev_loop *loop, void *data)
{
    lg_worker *w = data;
    pthread_mutex_lock(&w->mu);
    if (w->quit) {
        pthread_mutex_unlock(&w->mu);
        ev_loop_stop(loop);
        return;
    }
    int pending = w->cmd_pending;
    uint64_t old_epoch = w->cur.epoch;
    lg_phase old_phase = w->cur.phase;
    if (pending) {
        w->cur = w->cmd;
        memcpy(w->want, w->cmd_want, w->nclasses * sizeof(int));
        w->cur.want = w->want;
        w->cmd_pending = 0;
    }
    pthread_mutex_unlock(&w->mu);
    uint64_t now = ev_clock_ns();
    if (pending) apply(w, now, old_epoch, old_phase);

    pthread_mutex_lock(&w->mu);
    if (w->flush_req != w->flush_done) {
        lg_stats_add(w->outbox, w->st);
        double cpu = thread_cpu_s(), wall = (double)now / 1e9;
        double dw = wall - (double)w->wall_prev / 1e9;
        w->info.cpu = w->wall_prev && dw > 0 ? (cpu - (double)w->cpu_prev / 1e9) / dw : 0;
        w->cpu_prev = (uint64_t)(cpu * 1e9);
        w->wall_prev = now;
        w->info.users = w->users;
        w->info.inflight = w->inflight;
        memcpy(w->info_have, w->have, w->nclasses * sizeof(int));
        memcpy(w->info_have + w->nclasses, w->peak, w->nclasses * sizeof(int));
        w->flush_done = w->flush_req;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        lg_stats_reset(w->st);
        return;
    }
    pthread_mutex_unlock(&w->mu);
}

static void *thread_main(void *arg)
{
    lg_worker *w = arg;
    ev_loop_run(w->loop);
    return NULL;
}

lg_worker *lg_worker_create(const lg_worker_cfg *cfg)
{
    lg_worker *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->cfg = *cfg;
    w->sc = cfg->sc;
    w->nclasses = cfg->sc->nclasses;
    w->tfd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->want = calloc(w->nclasses, sizeof(int));
    w->have = calloc(w->nclasses, sizeof(int));
    w->info_have = calloc(w->nclasses * 2, sizeof(int));
    w->peak = calloc(w->nclasses, sizeof(int));
    w->cmd_want = calloc(w->nclasses, sizeof(int));
    w->st = lg_stats_create(cfg->sc->nentries);
    w->outbox = lg_stats_create(cfg->sc->nentries);
    w->loop = ev_loop_new();
    w->scratch = malloc(LG_SCRATCH);
    w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    w->sweep_at = ev_clock_ns() + SWEEP_NS;
    if (!w->want || !w->have || !w->info_have || !w->peak || !w->cmd_want || !w->st || !w->outbox ||
        !w->loop || w->tfd < 0 || !w->scratch ||
        ev_io_add(w->loop, w->tfd, EV_READ, on_timer, w) < 0 ||
        ev_async_init(w->loop, on_async, w) < 0) {
        lg_worker_free(w);
        return NULL;
    }
    arm(w, w->sweep_at);
    if (pthread_create(&w->thread, NULL, thread_main, w)) {
        lg_worker_free(w);
        return NULL;
    }
    w->started = 1;
    return w;
}

void lg_worker_free(lg_worker *w)
{
    if (!w) return;
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->quit = 1;
        pthread_mutex_unlock(&w->mu);
        ev_async_send(w->loop);
        pthread_join(w->thread, NULL);
    }
    for (size_t i = 0; i < w->nconns; i++) {
        lg_conn_close(w, w->conns[i]);
        free_conn(w->conns[i]);
    }
    free(w->conns);
    free(w->free_slots);
    free_pre(w);
    free(w->heap);
    free(w->idle);
    if (w->loop) {
        if (w->tfd >= 0) ev_io_del(w->loop, w->tfd);
        ev_loop_free(w->loop);
    }
    if (w->tfd >= 0) close(w->tfd);
    lg_stats_free(w->st);
    lg_stats_free(w->outbox);
    free(w->scratch);
    free(w->want);
    free(w->have);
    free(w->info_have);
    free(w->peak);
    free(w->cmd_want);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

void lg_worker_command(lg_worker *w, const lg_cmd *cmd, size_t nclasses)
{
    pthread_mutex_lock(&w->mu);
    w->cmd = *cmd;
    if (cmd->want)
        memcpy(w->cmd_want, cmd->want, nclasses * sizeof(int));
    else
        memset(w->cmd_want, 0, nclasses * sizeof(int));
    w->cmd_pending = 1;
    pthread_mutex_unlock(&w->mu);
    ev_async_send(w->loop);
}

int lg_worker_collect(lg_worker *w, lg_stats *dst, lg_worker_info *info, int *class_users,
                      int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    uint64_t want = ++w->flush_req;
    pthread_mutex_unlock(&w->mu);
    ev_async_send(w->loop);
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    while (w->flush_done < want && rc == 0) rc = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
    int ok = w->flush_done >= want;
    /* Whatever was handed over (now or by an earlier late answer) is merged. */
    lg_stats_add(dst, w->outbox);
    lg_stats_reset(w->outbox);
    if (info) *info = w->info;
    for (size_t k = 0; class_users && k < w->nclasses * 2; k++) class_users[k] += w->info_have[k];
    pthread_mutex_unlock(&w->mu);
    return ok ? 0 : -ETIMEDOUT;
}
