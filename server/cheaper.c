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
 * Over it (or requests waiting with nothing measured yet), add the processes
 * that would give each waiting request a thread (waiting / threads, at least
 * one), unless the workers already use (nearly) every core: then more
 * processes of a CPU-bound app only share the same cores and the wait cannot
 * fall. Far under it with nothing waiting for `overload` seconds in a row, and
 * the busy threads would fit in one worker fewer at half load, remove one. */
static int queue(const cheaper_conf *c, cheaper_state *st, const cheaper_sample *s)
{
    int threads = c->threads > 0 ? c->threads : 1;
    int over = s->queue_ms > c->queue_target_ms || (s->queue_ms < 0 && s->backlog > 0);
    if (over && s->backlog > 0) {
        st->cheap_ticks = 0;
        if (c->ncpu > 0 && s->cpu >= 0.9 * c->ncpu) return 0; /* CPU-bound: the cores are full */
        int want = (s->backlog + threads - 1) / threads;
        /* Do not grow past what the cores can run when the app is CPU-bound:
         * each worker already uses most of a core per busy thread. */
        if (c->ncpu > 0 && s->busy > 0 && s->cpu / s->busy >= 0.8 && s->active + want > c->ncpu)
            want = c->ncpu - s->active;
        return want > 0 ? want : 0;
    }
    double busy_threads = s->busy_frac * s->active * threads;
    int calm = s->backlog == 0 && (s->queue_ms < 0 || s->queue_ms < c->queue_target_ms / 4.0);
    if (calm && s->active > 1 && busy_threads <= 0.5 * (s->active - 1) * threads) {
        if (++st->cheap_ticks >= c->overload) {
            st->cheap_ticks = 0;
            return -1;
        }
        return 0;
    }
    st->cheap_ticks = 0;
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
