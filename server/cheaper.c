/*
 * cheaper: the algorithms of uWSGI's cheaper subsystem (see cheaper.h and
 * docs/config.md), one call per second. Only the decision lives here; the
 * master spawns and drains.
 */
#include "server/cheaper.h"

#include <string.h>

static const char *const names[] = {"off",      "spare",  "spare2", "backlog",
                                    "busyness", "manual", "queue"};

int cheaper_algo_parse(const char *name)
{
    for (int i = CHEAPER_SPARE; i <= CHEAPER_QUEUE; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *cheaper_algo_name(int algo)
{
    return algo >= 0 && algo <= CHEAPER_QUEUE ? names[algo] : "?";
}

void cheaper_state_init(cheaper_state *st, const cheaper_conf *c)
{
    memset(st, 0, sizeof(*st));
    st->cur_multiplier = c->multiplier > 0 ? c->multiplier : 1;
    st->windows_since_cheap = 1 << 20;
    st->in_system = -1;
    int threads = c->threads > 0 ? c->threads : 1;
    int t0 = c->threads_initial > 0 ? c->threads_initial : threads;
    st->threads_now = t0 < threads ? t0 : threads;
}

static int spare(const cheaper_conf *c, cheaper_state *st, const cheaper_sample *s)
{
    int idle = s->active - s->busy;
    if (idle <= 0) {
        st->cheap_ticks = 0;
        if (++st->overload_count > c->overload) {
            st->overload_count = 0;
            return c->step;
        }
        return 0;
    }
    if (st->overload_count > 0) st->overload_count--;
    if (st->overload_count == 0 && idle > 1) {
        if (++st->cheap_ticks >= c->overload) {
            st->cheap_ticks = 0;
            return -1;
        }
    } else {
        st->cheap_ticks = 0;
    }
    return 0;
}

/* Keeps `min` idle workers: spawns what is missing (at most step), cheaps one
 * after `idle` ticks with more idle than that. */
static int spare2(const cheaper_conf *c, cheaper_state *st, const cheaper_sample *s)
{
    int idle = s->active - s->busy;
    if (idle < c->min) {
        st->cheap_ticks = 0;
        int n = c->min - idle;
        return n < c->step ? n : c->step;
    }
    if (idle > c->min) {
        if (++st->cheap_ticks >= c->idle) {
            st->cheap_ticks = 0;
            return -1;
        }
        return 0;
    }
    st->cheap_ticks = 0;
    return 0;
}

static int backlog(const cheaper_conf *c, const cheaper_sample *s)
{
    if (s->backlog > c->overload) return c->step;
    if (s->backlog < c->overload) return -1;
    return 0;
}

static int busyness(const cheaper_conf *c, cheaper_state *st, const cheaper_sample *s)
{
    /* Emergency: requests pile up whatever the window says. */
    if (c->backlog_alert > 0 && s->backlog > c->backlog_alert) {
        st->window_sum = 0;
        st->window_n = 0;
        st->low_windows = 0;
        return c->backlog_step;
    }
    st->window_sum += s->busy_frac;
    if (++st->window_n < c->overload) return 0;
    double pct = 100.0 * st->window_sum / st->window_n;
    st->window_sum = 0;
    st->window_n = 0;
    st->windows_since_cheap++;
    if (pct > c->busy_max) {
        st->low_windows = 0;
        /* Spawning again soon after a cheap: that cheap was premature, so
         * cheaping gets harder (uWSGI's penalty). */
        if (st->windows_since_cheap <= st->cur_multiplier) st->cur_multiplier += c->penalty;
        return c->step;
    }
    if (pct < c->busy_min) {
        if (++st->low_windows >= st->cur_multiplier) {
            st->low_windows = 0;
            st->windows_since_cheap = 0;
            return -1;
        }
        return 0;
    }
    st->low_windows = 0;
    return 0;
}

/* queue: requests should wait at most queue_target_ms for an app thread.
 * Decided every master tick (100 ms), not once a second: at a step from 20 to
 * 300 requests/s each lost 100 ms queues 30 requests behind the threads there
 * are, and those stay in the worker that read them. So it does not wait for a
 * mean wait to rise (that figure lags by a handler time plus its window); it
 * reads the arrival rate (requests finished + the change in requests held)
 * and the handler time from the scoreboard and asks for what Little's law
 * says (cheaper_queue_need), adding the whole shortfall at once as soon as
 * anything waits. The need counts the threads the rate keeps busy at full
 * use plus those that would clear what waits within the target: the second
 * term is the controller (the more waits, the more it adds), so no margin is
 * kept on the first. Removal follows the recent peak of that need, which
 * holds for Q_HOLD_S and then falls Q_DECAY processes a second: one worker at
 * a time, once the others would be at most Q_KEEP busy (a band against
 * flapping at a need near a whole number), and none while the waits run over
 * half the target. */
#define Q_UTIL        1.0  /* the fraction of the time the rate may keep a thread busy */
#define Q_UTIL_CPU    0.75 /* and a core: a computing request queues for the core itself */
#define Q_KEEP        0.85 /* remove one only if the rest would be at most this busy */
#define Q_HOLD_S      0.5  /* the peak need holds this long before removals start */
#define Q_DECAY       4.0  /* then falls this many processes a second */
#define Q_CPU_BOUND   0.5  /* CPU time / handler time above it: the handler computes */
#define Q_BLIND_TICKS 3    /* ticks of waiting with nothing measured before it adds */

double cheaper_queue_need(const cheaper_conf *c, double rate, double svc_ms, double cpu_ms,
                          int backlog, int computing)
{
    int threads = c->threads > 0 ? c->threads : 1;
    double target = c->queue_target_ms > 0 ? c->queue_target_ms : 1;
    if (svc_ms <= 0) return (double)backlog / threads; /* nothing measured yet */
    if (computing && c->ncpu > 0) {
        /* Computing: a process brings at most a core (threads share it, and
         * Python's GIL), and more processes than cores only share them. */
        double cores = rate * cpu_ms / 1000.0 / Q_UTIL_CPU + backlog * cpu_ms / target;
        return cores < c->ncpu ? cores : c->ncpu;
    }
    double busy = rate * svc_ms / 1000.0 / Q_UTIL + backlog * svc_ms / target;
    return busy / threads;
}

static double ewma(double avg, double x, double a)
{
    return avg + a * (x - avg);
}

static int queue(const cheaper_conf *c, cheaper_state *st, const cheaper_sample *s)
{
    int in_sys = s->backlog + s->running;
    if (s->dt <= 0 || st->in_system < 0) {
        st->in_system = in_sys;
        return 0;
    }
    double dt = s->dt;
    if (s->done > 0 && s->service_ms >= 0) {
        double a = s->done / (s->done + 5.0); /* a few requests say little */
        st->svc_ms = st->svc_ms > 0 ? ewma(st->svc_ms, s->service_ms, a) : s->service_ms;
        double cpu_ms = s->cpu * dt * 1000.0 / s->done;
        st->cpu_ms = st->cpu_ms > 0 ? ewma(st->cpu_ms, cpu_ms, a) : cpu_ms;
        double want_ms = (s->cpu + s->runq) * dt * 1000.0 / s->done;
        st->want_ms = st->want_ms > 0 ? ewma(st->want_ms, want_ms, a) : want_ms;
    }
    st->cpu_cores = ewma(st->cpu_cores, s->cpu, dt / (dt + 0.5));
    int arrived = s->done + in_sys - st->in_system;
    st->in_system = in_sys;
    double inst = (arrived > 0 ? arrived : 0) / dt;
    /* Up fast (a step must show within a tick or two), down slowly. */
    st->rate = ewma(st->rate, inst, inst > st->rate ? 0.5 : dt / (dt + 0.5));
    /* Computing or waiting: the CPU a request used or waited for (on a
     * busy machine a computing handler spends much of its time in the run
     * queue: that is not waiting on I/O) against its handler time. Threads of
     * one process that compute share its core (Python's GIL: the wait for it
     * looks like I/O), so each one's handler time stretches by how many run
     * at once: count per process. */
    if (s->done > 0 && st->svc_ms > 0) {
        double par = s->running > 0 && s->busy > 0 ? (double)s->running / s->busy : 1;
        int threads = c->threads > 0 ? c->threads : 1;
        par = par < 1 ? 1 : par > threads ? threads : par;
        /* Or directly: each busy process uses (or waits for) half a core. */
        double per_proc = s->busy > 0 ? (s->cpu + s->runq) / s->busy : 0;
        st->cpu_bound = st->want_ms * par >= Q_CPU_BOUND * st->svc_ms || per_proc >= Q_CPU_BOUND;
    }
    /* Nothing finished yet: only requests that wait Q_BLIND_TICKS in a row
     * with none finishing (long handlers) say more threads are needed; a
     * burst's first tick says nothing of what kind of app this is. */
    st->blind_ticks = st->svc_ms <= 0 && s->backlog > 0 ? st->blind_ticks + 1 : 0;
    if (st->svc_ms <= 0 && st->blind_ticks < Q_BLIND_TICKS) return 0;
    double need =
        cheaper_queue_need(c, st->rate, st->svc_ms, st->cpu_ms, s->backlog, st->cpu_bound);
    st->need = need;
    int want = (int)need;
    if (want < need) want++;
    /* Threads of a computing process wait for its core inside the handler
     * (the GIL), not in the queue: that wait counts too. */
    double cpu_wait = st->cpu_bound ? st->svc_ms - st->cpu_ms : 0;
    int waiting = s->backlog > 0 || s->queue_ms > c->queue_target_ms / 2.0 ||
                  cpu_wait > c->queue_target_ms / 2.0;
    st->since_rm_s += dt;
    /* What the running workers hold, in processes of `threads`: handlers
     * that wait use the threads each worker runs now; handlers that compute
     * are counted in cores (need), one a process whatever its threads. */
    int threads = c->threads > 0 ? c->threads : 1;
    int tn = st->cpu_bound ? threads : st->threads_now;
    double cap = (double)s->active * tn / threads;
    if (need > cap && waiting) {
        st->need_hi = need > st->need_hi ? need : st->need_hi;
        st->hold_s = 0;
        /* Handlers that wait: threads first, up to `threads` a worker (a
         * thread that waits costs a stack, a process an interpreter and its
         * apps); processes only for what the most threads cannot hold. */
        if (!st->cpu_bound && st->threads_now < threads) {
            double per = need * threads / (s->active > 0 ? s->active : 1);
            int t = (int)per + ((int)per < per);
            if (t <= st->threads_now) t = st->threads_now + 1;
            st->threads_now = t < threads ? t : threads;
            if (need <= (double)s->active * st->threads_now / threads) return 0;
        }
        /* Requests that wait on I/O need threads, not cores: past `processes`
         * more threads per worker would serve them. Worker threads are fixed
         * at the fork, so this is for the operator (the master logs it). */
        if (!st->cpu_bound && want > c->max && c->max > 0) {
            double t = need * threads / c->max;
            st->threads_hint = (int)t + ((int)t < t);
        }
        /* The cores are full: another process only shares them. */
        if (c->ncpu > 0 && st->cpu_cores >= 0.9 * c->ncpu) return 0;
        return want - s->active;
    }
    if (need >= st->need_hi) {
        st->need_hi = need;
        st->hold_s = 0;
    } else if ((st->hold_s += dt) >= Q_HOLD_S) {
        st->need_hi -= Q_DECAY * dt;
        if (st->need_hi < need) st->need_hi = need;
    }
    /* Not on a tick whose requests waited long; a request or two queued is
     * no reason to keep a worker: the need already counts what waits. The
     * reverse of the growth: processes go first (down to `cheaper`), then,
     * for handlers that wait, a thread a worker at a time, on the same
     * terms (the rest at most Q_KEEP busy, at most Q_DECAY steps a second). */
    if (s->queue_ms > c->queue_target_ms / 2.0 || st->since_rm_s < 1.0 / Q_DECAY) return 0;
    if (s->active > c->min) {
        if (st->need_hi <= Q_KEEP * (s->active - 1) * tn / threads) {
            st->since_rm_s = 0;
            return -1;
        }
        return 0;
    }
    if (!st->cpu_bound && st->threads_now > 1 &&
        st->need_hi <= Q_KEEP * s->active * (st->threads_now - 1) / threads) {
        st->since_rm_s = 0;
        st->threads_now--;
    }
    return 0;
}

int cheaper_decide(const cheaper_conf *c, cheaper_state *st, const cheaper_sample *s)
{
    if (c->algo == CHEAPER_OFF) return 0;
    if (c->rss_hard > 0 && s->rss > c->rss_hard) return s->active > c->min ? -1 : 0;
    int d = 0;
    switch (c->algo) {
    case CHEAPER_SPARE: d = spare(c, st, s); break;
    case CHEAPER_SPARE2: d = spare2(c, st, s); break;
    case CHEAPER_BACKLOG: d = backlog(c, s); break;
    case CHEAPER_BUSYNESS: d = busyness(c, st, s); break;
    case CHEAPER_QUEUE: d = queue(c, st, s); break;
    default: return 0; /* manual: the master fifo's + and - only */
    }
    if (d > 0) {
        if (c->rss_soft > 0 && s->rss > c->rss_soft) return 0;
        if (d > c->max - s->active) d = c->max - s->active;
        return d > 0 ? d : 0;
    }
    if (d < 0 && s->active <= c->min) return 0;
    return d;
}
