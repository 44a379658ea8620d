/*
 * cheaper: uWSGI's adaptive worker count, as pure functions of counts.
 *
 * The master samples its workers once a second (`queue`: every 100 ms, with
 * the time since the last sample in it) and asks cheaper_decide how many to
 * add (> 0) or whether to remove one (-1). The
 * state between calls lives in a cheaper_state the master owns; nothing here
 * reads a clock or the scoreboard, so every algorithm is unit-tested on
 * made-up samples (cheaper_test.c).
 */
#ifndef SERVER_CHEAPER_H
#define SERVER_CHEAPER_H

#include <stdint.h>

enum {
    CHEAPER_OFF = 0, /* `cheaper` unset: `processes` workers always run */
    CHEAPER_SPARE,
    CHEAPER_SPARE2,
    CHEAPER_BACKLOG,
    CHEAPER_BUSYNESS,
    CHEAPER_MANUAL,
    CHEAPER_QUEUE, /* aiserve's own: the measured wait for an app thread vs a target */
};

typedef struct cheaper_conf {
    int algo;
    int min, max, initial, step; /* workers: cheaper, processes, cheaper-initial, cheaper-step */
    int overload;                /* cheaper-overload: ticks (spare), queue (backlog), window s */
    int idle;                    /* cheaper-idle (spare2): surplus ticks before cheaping one */
    int busy_min, busy_max;      /* cheaper-busyness-min/max, percent */
    int multiplier, penalty;     /* cheaper-busyness-multiplier/-penalty */
    int backlog_alert, backlog_step; /* cheaper-busyness-backlog-alert/-step */
    int64_t rss_soft, rss_hard;      /* bytes, 0: off */
    int queue_target_ms;             /* queue: cheaper-queue-target-ms */
    int threads;                     /* app threads per worker: the most each may use */
    int threads_initial;             /* queue: cheaper-threads-initial, active at start */
    int ncpu;                        /* cores the workers may use */
} cheaper_conf;

typedef struct cheaper_sample {
    int active;       /* workers running now (not cheaped) */
    int busy;         /* of them, handling at least one request */
    double busy_frac; /* mean fraction of busy app threads over the last second, 0..1 */
    int backlog;      /* requests waiting: listen queue + the workers' FIFOs */
    int64_t rss;      /* total RSS of the workers, bytes */
    double queue_ms;  /* queue: mean wait for an app thread since the last sample; -1: none */
    double cpu;       /* queue: cores' worth of CPU the workers used since the last sample */
    double runq;      /* queue: cores' worth of time their threads waited for a CPU */
    /* queue only (sampled every master tick, 100 ms): */
    double dt;         /* seconds since the last sample; 0: first sample */
    int done;          /* requests whose handler finished since the last sample */
    double service_ms; /* their mean handler time; -1: none finished */
    int running;       /* app threads running a request now */
} cheaper_sample;

typedef struct cheaper_state {
    int overload_count;      /* spare: consecutive all-busy ticks (decays) */
    int cheap_ticks;         /* spare: ticks since the last cheap; spare2: surplus ticks */
    double window_sum;       /* busyness: busy_frac summed over the window */
    int window_n;            /* busyness: ticks in the window */
    int low_windows;         /* busyness: consecutive windows below busy_min */
    int cur_multiplier;      /* busyness: multiplier raised by the penalty */
    int windows_since_cheap; /* busyness: a spawn soon after a cheap earns the penalty */
    /* queue: smoothed inputs and the removal hysteresis */
    double rate;       /* arrivals per second (EWMA) */
    double svc_ms;     /* handler time per request (EWMA); 0: none seen yet */
    double cpu_ms;     /* CPU ms per finished request (EWMA) */
    double want_ms;    /* CPU ms used or waited for (run queue) per request (EWMA) */
    double cpu_cores;  /* cores used (EWMA) */
    int in_system;     /* backlog + running at the last sample; -1: none yet */
    double need;       /* processes the last sample asked for (before rounding) */
    double need_hi;    /* the recent peak of need: removal goes down to it, slowly */
    double hold_s;     /* seconds need has stayed under need_hi */
    double since_rm_s; /* seconds since the last removal */
    int cpu_bound;     /* the handlers compute more than they wait (CPU >= half) */
    int blind_ticks;   /* ticks with requests waiting and no handler time measured yet */
    int threads_hint;  /* threads per worker that `processes` would need for what waits on I/O */
    int threads_now;   /* queue: app threads each worker runs requests on (1..threads); the
                        * master publishes it to the scoreboard after each decision */
} cheaper_state;

/* Parses "spare" ... "manual"; -1 for an unknown name. */
int cheaper_algo_parse(const char *name);
const char *cheaper_algo_name(int algo);
void cheaper_state_init(cheaper_state *st, const cheaper_conf *c);
/* One second's decision (every tick for `queue`, see cheaper_queue_fast):
 * > 0 workers to spawn, -1 to cheap one, 0 nothing. Bounded by min/max and
 * the rss limits. `queue` may also change st->threads_now: handlers that
 * wait get threads (up to `threads`) before processes, and give them back
 * last; handlers that compute keep the threads they have. */
int cheaper_decide(const cheaper_conf *c, cheaper_state *st, const cheaper_sample *s);
/* queue: the processes its inputs call for: the arrival rate times the
 * handler time (Little's law) at 80% utilisation, plus the threads that would
 * clear the backlog within the target, over the threads per process; for
 * handlers that compute the cores that rate keeps busy (a process brings at
 * most one: threads share it), never more than ncpu. Pure: for tests. */
double cheaper_queue_need(const cheaper_conf *c, double rate, double svc_ms, double cpu_ms,
                          int backlog, int computing);

#endif
