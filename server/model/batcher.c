/*
 * batcher.c: mutex-protected FIFOs and two threads: the batch thread, and
 * the prepare thread for jobs with a prepare step (decoding, parsing), which
 * it queues for the batch thread once done. Each holds the lock only to pick jobs; running a batch,
 * copying tensors and calling done happen unlocked, so submitters (the event loop) never wait
 * behind the engine.
 *
 * Buffers: inputs are always copied into one contiguous batch buffer per
 * input (the submitter's may be unaligned slices of a request body); outputs
 * go straight to the job when it runs alone, otherwise through a batch buffer
 * that is split afterwards. Batch buffers are sized for max_batch of the
 * largest sample seen and reused.
 */
#include "server/model/batcher.h"

#include "lib/ev.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

const uint64_t batcher_hist_le[BATCHER_HIST_BUCKETS] = {
    100,   250,   500,    1000,   2500,   5000,    10000,   25000,
    50000, 75000, 100000, 250000, 500000, 1000000, 2500000, 10000000};

struct batcher {
    batcher_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    batcher_job *head, *tail;           /* ready to batch */
    batcher_job *prep_head, *prep_tail; /* waiting for job->prepare */
    int queued;                         /* both lists */
    pthread_cond_t prep_cv;             /* wakes the prepare thread */
    pthread_t prep_thread;
    int stopping;
    /* owned by the thread */
    void *in_buf[BATCHER_MAX_IO];
    size_t in_cap[BATCHER_MAX_IO];
    void *out_buf[BATCHER_MAX_IO];
    size_t out_cap[BATCHER_MAX_IO];
    int init_failed;
    char init_err[160];
};

void batcher_stats_add(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

void batcher_hist_record(batcher_hist *h, uint64_t us)
{
    int i = 0;
    while (i < BATCHER_HIST_BUCKETS && us > batcher_hist_le[i]) i++;
    __atomic_fetch_add(&h->bucket[i], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->sum_us, us, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
}

static void pending_add(batcher *b, int64_t d)
{
    __atomic_fetch_add(&b->o.stats->pending, d, __ATOMIC_RELAXED);
}

/* ---- the thread ---- */

static void complete(batcher *b, batcher_job *j, int status, uint64_t now)
{
    j->status = status;
    j->queued_us = now > j->_enqueued ? now - j->_enqueued : 0;
    batcher_stats *s = b->o.stats;
    if (status == BATCHER_OK)
        batcher_stats_add(&s->success, 1);
    else if (status == BATCHER_TIMEOUT)
        batcher_stats_add(&s->fail_timeout, 1);
    else if (status == BATCHER_BACKEND)
        batcher_stats_add(&s->fail_backend, 1);
    else if (status == BATCHER_CANCELLED)
        batcher_stats_add(&s->fail_cancelled, 1);
    if (status == BATCHER_OK || status == BATCHER_BACKEND)
        batcher_hist_record(&s->queue, j->queued_us);
    j->done(j);
}

/* Grows a reusable batch buffer; 0 or -ENOMEM. 64-byte aligned for SIMD. */
static int ensure(void **p, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    void *n = NULL;
    if (posix_memalign(&n, 64, need ? need : 64)) return -ENOMEM;
    free(*p);
    *p = n;
    *cap = need;
    return 0;
}

/* Runs the jobs of one batch (a list linked by _next) and completes them. */
static void run_batch(batcher *b, batcher_job *first, int samples)
{
    const batcher_opts *o = &b->o;
    int rc = 0;
    char err[sizeof(first->err)] = "";
    if (b->init_failed) {
        rc = -1;
        snprintf(err, sizeof(err), "%s", b->init_err);
    }
    bool alone = first->_next == NULL;
    const void *ins[BATCHER_MAX_IO];
    void *outs[BATCHER_MAX_IO];
    for (int i = 0; i < o->n_inputs && !rc; i++) {
        rc = ensure(&b->in_buf[i], &b->in_cap[i], (size_t)o->max_batch * first->in_bytes[i]);
        size_t off = 0;
        for (batcher_job *j = first; j && !rc; j = j->_next) {
            size_t n = (size_t)j->batch * j->in_bytes[i];
            memcpy((char *)b->in_buf[i] + off, j->inputs[i], n);
            off += n;
        }
        ins[i] = b->in_buf[i];
    }
    for (int i = 0; i < o->n_outputs && !rc; i++) {
        if (!alone)
            rc = ensure(&b->out_buf[i], &b->out_cap[i], (size_t)o->max_batch * first->out_bytes[i]);
        outs[i] = alone ? first->outputs[i] : b->out_buf[i];
    }
    if (rc && !err[0]) snprintf(err, sizeof(err), "out of memory for a batch of %d", samples);
    uint64_t t0 = ev_clock_us();
    if (!rc && o->run_shaped)
        rc = o->run_shaped(o->run_ctx, first, samples, ins, outs, err, sizeof(err));
    else if (!rc)
        rc = o->run(o->run_ctx, samples, ins, outs, err, sizeof(err));
    uint64_t t1 = ev_clock_us();
    if (rc > 0 && !alone) {
        /* Some job's inputs broke the batch: find out whose by running each alone. */
        for (batcher_job *j = first, *next; j; j = next) {
            next = j->_next;
            j->_next = NULL;
            run_batch(b, j, j->batch);
        }
        return;
    }
    if (!rc) {
        batcher_stats_add(&o->stats->inference_count, (uint64_t)samples);
        batcher_stats_add(&o->stats->exec_count, 1);
        batcher_hist_record(&o->stats->compute, t1 - t0);
    }
    size_t off[BATCHER_MAX_IO] = {0};
    for (batcher_job *j = first, *next; j; j = next) {
        next = j->_next;
        j->run_us = t1 - t0;
        j->ran_batch = samples;
        for (int i = 0; i < o->n_outputs && !rc && !alone; i++) {
            size_t n = (size_t)j->batch * j->out_bytes[i];
            memcpy(j->outputs[i], (char *)b->out_buf[i] + off[i], n);
            off[i] += n;
        }
        if (rc) snprintf(j->err, sizeof(j->err), "%s", err[0] ? err : "inference failed");
        complete(b, j, rc > 0 ? BATCHER_BAD_INPUT : rc ? BATCHER_BACKEND : BATCHER_OK, t0);
    }
}

/* Removes and returns expired and cancelled jobs (locked); their status is
 * set here, completion happens unlocked. Only the jobs that could join the
 * next batch are asked whether they are cancelled (a syscall each): the rest
 * are asked when they get there, before any compute is spent on them. */
static batcher_job *take_expired_from(batcher *b, batcher_job **head, batcher_job **tail,
                                      uint64_t now, batcher_job *expired)
{
    batcher_job **pp = head, *prev = NULL;
    int ahead = 0; /* samples (or, unprepared, jobs) of the kept jobs so far */
    while (*pp) {
        batcher_job *j = *pp;
        bool late = j->deadline_us && j->deadline_us <= now;
        bool ask = ahead < b->o.max_batch && j->cancelled;
        if (late || (ask && j->cancelled(j))) {
            j->status = late ? BATCHER_TIMEOUT : BATCHER_CANCELLED;
            *pp = j->_next;
            j->_next = expired;
            expired = j;
            b->queued--;
            pending_add(b, -1);
        } else {
            ahead += j->batch > 0 ? j->batch : 1;
            prev = j;
            pp = &j->_next;
        }
    }
    *tail = prev;
    return expired;
}

static batcher_job *take_expired(batcher *b, uint64_t now)
{
    batcher_job *expired = take_expired_from(b, &b->head, &b->tail, now, NULL);
    return take_expired_from(b, &b->prep_head, &b->prep_tail, now, expired);
}

static batcher_job *pop_prep(batcher *b)
{
    batcher_job *j = b->prep_head;
    b->prep_head = j->_next;
    if (!b->prep_head) b->prep_tail = NULL;
    j->_next = NULL;
    b->queued--;
    pending_add(b, -1);
    return j;
}

/* Lowers the calling thread's priority by n nice levels (Linux: per thread). */
static void nice_thread(int n)
{
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)tid);
    if (errno == 0) setpriority(PRIO_PROCESS, (id_t)tid, cur + n);
}

/*
 * The prepare thread: takes jobs in arrival order, runs job->prepare
 * unlocked, then queues the job for batching (waking the batch thread) or
 * completes it. It runs at a lower priority than the worker's event loop and
 * the batch thread, so a flood of uploads to decode yields the CPU to the
 * requests already decoded and to the loop; the queue bound sheds the rest.
 */
static void *prep_main(void *arg)
{
    batcher *b = arg;
    nice_thread(BATCHER_PREP_NICE);
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->stopping && !b->prep_head) pthread_cond_wait(&b->prep_cv, &b->mu);
        if (b->stopping) break; /* the batch thread completes what is left */
        batcher_job *j = pop_prep(b);
        pthread_mutex_unlock(&b->mu);
        int rc = j->prepare(j);
        if (!rc && (j->batch < 1 || j->batch > b->o.max_batch)) rc = -EINVAL;
        if (rc) {
            complete(b, j, BATCHER_PREP_FAILED, ev_clock_us());
            pthread_mutex_lock(&b->mu);
            continue;
        }
        pthread_mutex_lock(&b->mu);
        if (b->stopping) {
            pthread_mutex_unlock(&b->mu);
            complete(b, j, BATCHER_SHUTDOWN, ev_clock_us());
            pthread_mutex_lock(&b->mu);
            break;
        }
        if (b->tail)
            b->tail->_next = j;
        else
            b->head = j;
        b->tail = j;
        b->queued++;
        pending_add(b, 1);
        pthread_cond_signal(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/*
 * Decides on the next batch (locked). Returns the batch's jobs unlinked from
 * the queue, or NULL with *wait_until set (0: wait for a submit).
 */
/* Equal shape keys should mean equal sample sizes; a hash collision must not
 * overrun the batch buffers (they are sized from the first job). */
static bool same_sizes(const batcher_job *a, const batcher_job *b, const batcher_opts *o)
{
    for (int i = 0; i < o->n_inputs; i++)
        if (a->in_bytes[i] != b->in_bytes[i]) return false;
    for (int i = 0; i < o->n_outputs; i++)
        if (a->out_bytes[i] != b->out_bytes[i]) return false;
    return true;
}

/* pick with opts.bucket: the head's batch takes every queued job of its shape
 * that fits, skipping jobs of other shapes (they keep their order and wait
 * for their own turn at the head); only a full batch or the head's delay
 * sends it. */
static batcher_job *pick_bucket(batcher *b, uint64_t now, int *samples, uint64_t *wait_until)
{
    batcher_job *h = b->head;
    int n = h->batch;
    bool full = n >= b->o.max_batch;
    for (batcher_job *j = h->_next; j && !full; j = j->_next) {
        if (j->shape_key != h->shape_key || !same_sizes(j, h, &b->o)) continue;
        if (n + j->batch > b->o.max_batch)
            full = true;
        else
            n += j->batch;
    }
    uint64_t due = h->_enqueued + b->o.delay_us;
    if (!(n >= b->o.max_batch || full || b->o.delay_us == 0 || now >= due)) {
        *wait_until = due;
        return NULL;
    }
    /* unlink the same jobs again: the head, then matching ones while they fit */
    batcher_job *last = h, *prev = NULL;
    int taken = h->batch, count = 1;
    b->head = h->_next;
    batcher_job **pp = &b->head;
    while (*pp) {
        batcher_job *j = *pp;
        if (j->shape_key == h->shape_key && same_sizes(j, h, &b->o) &&
            taken + j->batch <= b->o.max_batch && taken < n) {
            *pp = j->_next;
            last->_next = j;
            last = j;
            taken += j->batch;
            count++;
        } else {
            prev = j;
            pp = &j->_next;
        }
    }
    b->tail = prev;
    last->_next = NULL;
    b->queued -= count;
    pending_add(b, -count);
    *samples = taken;
    return h;
}

static batcher_job *pick(batcher *b, uint64_t now, int *samples, uint64_t *wait_until)
{
    *wait_until = 0;
    if (!b->head) return NULL;
    if (b->o.bucket) return pick_bucket(b, now, samples, wait_until);
    batcher_job *last = b->head;
    int n = b->head->batch, count = 1;
    bool blocked = false; /* the next job cannot join: send now */
    for (batcher_job *j = b->head->_next; j; j = j->_next) {
        if (j->shape_key != b->head->shape_key || !same_sizes(j, b->head, &b->o) ||
            n + j->batch > b->o.max_batch) {
            blocked = true;
            break;
        }
        n += j->batch;
        count++;
        last = j;
    }
    uint64_t due = b->head->_enqueued + b->o.delay_us;
    if (!(n >= b->o.max_batch || blocked || b->o.delay_us == 0 || now >= due)) {
        *wait_until = due;
        return NULL;
    }
    batcher_job *first = b->head;
    b->head = last->_next;
    if (!b->head) b->tail = NULL;
    last->_next = NULL;
    b->queued -= count;
    pending_add(b, -count);
    *samples = n;
    return first;
}

static void wait_until_us(batcher *b, uint64_t until)
{
    if (!until) {
        pthread_cond_wait(&b->cv, &b->mu);
        return;
    }
    uint64_t now = ev_clock_us();
    if (until <= now) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (until - now) * 1000;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&b->cv, &b->mu, &ts);
}

static void *thread_main(void *arg)
{
    batcher *b = arg;
    if (b->o.thread_init && b->o.thread_init(b->o.run_ctx, b->init_err, sizeof(b->init_err)))
        b->init_failed = 1;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        uint64_t now = ev_clock_us();
        batcher_job *expired = take_expired(b, now);
        int samples = 0;
        uint64_t until = 0;
        batcher_job *batch = b->stopping ? NULL : pick(b, now, &samples, &until);
        if (expired || batch) {
            pthread_mutex_unlock(&b->mu);
            for (batcher_job *j = expired, *next; j; j = next) {
                next = j->_next;
                complete(b, j, j->status, now);
            }
            if (batch) run_batch(b, batch, samples);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        if (b->stopping) break;
        /* Wake for the batch deadline or the nearest job deadline. */
        for (batcher_job *j = b->head; j; j = j->_next)
            if (j->deadline_us && (!until || j->deadline_us < until)) until = j->deadline_us;
        for (batcher_job *j = b->prep_head; j; j = j->_next)
            if (j->deadline_us && (!until || j->deadline_us < until)) until = j->deadline_us;
        wait_until_us(b, until);
    }
    batcher_job *rest = b->head;
    if (b->tail)
        b->tail->_next = b->prep_head;
    else
        rest = b->prep_head;
    b->head = b->tail = b->prep_head = b->prep_tail = NULL;
    pending_add(b, -b->queued);
    b->queued = 0;
    pthread_mutex_unlock(&b->mu);
    for (batcher_job *j = rest, *next; j; j = next) {
        next = j->_next;
        complete(b, j, BATCHER_SHUTDOWN, ev_clock_us());
    }
    if (b->o.thread_free) b->o.thread_free(b->o.run_ctx);
    return NULL;
}

/* ---- the submitter side ---- */

batcher *batcher_create(const batcher_opts *opts)
{
    if (!opts || opts->max_batch < 1 || opts->max_queue < 1 || opts->n_inputs < 1 ||
        opts->n_inputs > BATCHER_MAX_IO || opts->n_outputs < 1 ||
        opts->n_outputs > BATCHER_MAX_IO || (!opts->run && !opts->run_shaped) || !opts->stats) {
        errno = EINVAL;
        return NULL;
    }
    batcher *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->o = *opts;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, &ca);
    pthread_cond_init(&b->prep_cv, NULL);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&b->prep_thread, NULL, prep_main, b);
    if (!rc) {
        rc = pthread_create(&b->thread, NULL, thread_main, b);
        if (rc) {
            pthread_mutex_lock(&b->mu);
            b->stopping = 1;
            pthread_cond_signal(&b->prep_cv);
            pthread_mutex_unlock(&b->mu);
            pthread_join(b->prep_thread, NULL);
        }
    }
    if (rc) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
        pthread_cond_destroy(&b->prep_cv);
        free(b);
        errno = rc;
        return NULL;
    }
    return b;
}

int batcher_submit(batcher *b, batcher_job *job)
{
    if ((!job->prepare && (job->batch < 1 || job->batch > b->o.max_batch)) || !job->done)
        return -EINVAL;
    pthread_mutex_lock(&b->mu);
    if (b->stopping) {
        pthread_mutex_unlock(&b->mu);
        return -ESHUTDOWN;
    }
    if (b->queued >= b->o.max_queue) {
        pthread_mutex_unlock(&b->mu);
        batcher_stats_add(&b->o.stats->fail_rejected, 1);
        return -EAGAIN;
    }
    job->_next = NULL;
    job->_enqueued = ev_clock_us();
    job->status = BATCHER_OK;
    job->err[0] = '\0';
    batcher_job **head = job->prepare ? &b->prep_head : &b->head;
    batcher_job **tail = job->prepare ? &b->prep_tail : &b->tail;
    if (*tail)
        (*tail)->_next = job;
    else
        *head = job;
    *tail = job;
    b->queued++;
    pending_add(b, 1);
    /* the batch thread also wakes for a job to prepare: it watches its deadline */
    pthread_cond_signal(&b->cv);
    if (job->prepare) pthread_cond_signal(&b->prep_cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void batcher_free(batcher *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->stopping = 1;
    pthread_cond_signal(&b->cv);
    pthread_cond_signal(&b->prep_cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->prep_thread, NULL);
    pthread_join(b->thread, NULL);
    for (int i = 0; i < BATCHER_MAX_IO; i++) free(b->in_buf[i]), free(b->out_buf[i]);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    pthread_cond_destroy(&b->prep_cv);
    free(b);
}

/* ---- Prometheus text ---- */

static uint64_t ld(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static int render_hist(buf *out, const char *name, const char *model, const batcher_stats *s, int n,
                       size_t field)
{
    int rc = buf_printf(out, "# TYPE %s histogram\n", name);
    uint64_t cum = 0, sum = 0, count = 0;
    for (int k = 0; k <= BATCHER_HIST_BUCKETS && !rc; k++) {
        for (int w = 0; w < n; w++) {
            const batcher_hist *h = (const batcher_hist *)((const char *)&s[w] + field);
            cum += ld(&h->bucket[k]);
            if (k == 0) sum += ld(&h->sum_us), count += ld(&h->count);
        }
        if (k < BATCHER_HIST_BUCKETS)
            rc = buf_printf(out, "%s_bucket{model=\"%s\",le=\"%llu\"} %llu\n", name, model,
                            (unsigned long long)batcher_hist_le[k], (unsigned long long)cum);
        else
            rc = buf_printf(out, "%s_bucket{model=\"%s\",le=\"+Inf\"} %llu\n", name, model,
                            (unsigned long long)cum);
    }
    if (!rc)
        rc = buf_printf(out, "%s_sum{model=\"%s\"} %llu\n%s_count{model=\"%s\"} %llu\n", name,
                        model, (unsigned long long)sum, name, model, (unsigned long long)count);
    return rc;
}

#define SUM(field)                                                                                 \
    ({                                                                                             \
        uint64_t t_ = 0;                                                                           \
        for (int w_ = 0; w_ < n; w_++) t_ += ld(&slots[w_].field);                                 \
        t_;                                                                                        \
    })

int batcher_stats_render(buf *out, const char *model, const batcher_stats *slots, int n)
{
    int64_t pending = 0;
    for (int w = 0; w < n; w++) pending += __atomic_load_n(&slots[w].pending, __ATOMIC_RELAXED);
    static const char *reasons[] = {"REJECTED", "TIMEOUT", "CANCELED", "BACKEND", "BAD_INPUT"};
    uint64_t fails[] = {SUM(fail_rejected), SUM(fail_timeout), SUM(fail_cancelled),
                        SUM(fail_backend), SUM(fail_bad_input)};
    int rc = buf_printf(out,
                        "# TYPE aiserve_model_request_success_total counter\n"
                        "aiserve_model_request_success_total{model=\"%s\"} %llu\n"
                        "# TYPE aiserve_model_request_failure_total counter\n",
                        model, (unsigned long long)SUM(success));
    for (int r = 0; r < 5 && !rc; r++)
        rc = buf_printf(out,
                        "aiserve_model_request_failure_total{model=\"%s\",reason=\"%s\"} %llu\n",
                        model, reasons[r], (unsigned long long)fails[r]);
    if (!rc)
        rc = buf_printf(out,
                        "# TYPE aiserve_model_inference_count_total counter\n"
                        "aiserve_model_inference_count_total{model=\"%s\"} %llu\n"
                        "# TYPE aiserve_model_execution_count_total counter\n"
                        "aiserve_model_execution_count_total{model=\"%s\"} %llu\n"
                        "# TYPE aiserve_model_pending_requests gauge\n"
                        "aiserve_model_pending_requests{model=\"%s\"} %lld\n",
                        model, (unsigned long long)SUM(inference_count), model,
                        (unsigned long long)SUM(exec_count), model, (long long)pending);
    if (!rc)
        rc = render_hist(out, "aiserve_model_queue_duration_us", model, slots, n,
                         offsetof(batcher_stats, queue));
    if (!rc)
        rc = render_hist(out, "aiserve_model_compute_duration_us", model, slots, n,
                         offsetof(batcher_stats, compute));
    return rc;
}

int batcher_stats_json(buf *out, const char *model, const batcher_stats *slots, int n)
{
    uint64_t fail = SUM(fail_rejected) + SUM(fail_timeout) + SUM(fail_cancelled) +
                    SUM(fail_backend) + SUM(fail_bad_input);
    int rc = buf_puts(out, "{\"name\":");
    if (!rc) rc = buf_json_str(out, model, strlen(model));
    if (!rc)
        rc = buf_printf(
            out,
            ",\"version\":\"1\",\"inference_count\":%llu,\"execution_count\":%llu,"
            "\"inference_stats\":{\"success\":{\"count\":%llu},\"fail\":{\"count\":%llu},"
            "\"queue\":{\"count\":%llu,\"ns\":%llu},"
            "\"compute_infer\":{\"count\":%llu,\"ns\":%llu}}}",
            (unsigned long long)SUM(inference_count), (unsigned long long)SUM(exec_count),
            (unsigned long long)SUM(success), (unsigned long long)fail,
            (unsigned long long)SUM(queue.count), (unsigned long long)SUM(queue.sum_us) * 1000,
            (unsigned long long)SUM(compute.count), (unsigned long long)SUM(compute.sum_us) * 1000);
    return rc;
}
