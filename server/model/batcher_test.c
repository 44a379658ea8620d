#include "server/model/batcher.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The fake model: y = 2x per float; records batch sizes; optional stall and failure. */
typedef struct fake {
    int batches[64];
    int n_batches;
    int sleep_us;
    int fail_next;
    int init_fail;
} fake;

static int fake_run(void *ctx, int batch, const void *const *in, void *const *out, char *err,
                    size_t errlen)
{
    fake *f = ctx;
    if (f->n_batches < 64) {
        f->batches[f->n_batches] = batch;
        __atomic_store_n(&f->n_batches, f->n_batches + 1, __ATOMIC_RELEASE);
    }
    if (f->sleep_us) usleep((useconds_t)f->sleep_us);
    if (f->fail_next) {
        f->fail_next = 0;
        snprintf(err, errlen, "kaboom");
        return -1;
    }
    const float *x = in[0];
    float *y = out[0];
    for (int i = 0; i < batch * 4; i++) {
        if (x[i] < 0) { /* the fake's "index out of range": the input's fault */
            snprintf(err, errlen, "negative value %g", (double)x[i]);
            return 1;
        }
        y[i] = 2 * x[i];
    }
    return 0;
}

static int fake_init(void *ctx, char *err, size_t errlen)
{
    fake *f = ctx;
    if (f->init_fail) snprintf(err, errlen, "no context");
    return f->init_fail ? -1 : 0;
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} waiter;

static waiter W = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void on_done(batcher_job *j)
{
    (void)j;
    pthread_mutex_lock(&W.mu);
    W.done++;
    pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mu);
}

static void wait_done(int n)
{
    pthread_mutex_lock(&W.mu);
    while (W.done < n) pthread_cond_wait(&W.cv, &W.mu);
    pthread_mutex_unlock(&W.mu);
}

typedef struct req {
    batcher_job job;
    float in[4 * 4];
    float out[4 * 4];
} req;

static void make(req *r, int batch, float base, uint64_t key)
{
    memset(r, 0, sizeof(*r));
    r->job.batch = batch;
    r->job.shape_key = key;
    r->job.in_bytes[0] = 4 * sizeof(float);
    r->job.out_bytes[0] = 4 * sizeof(float);
    r->job.inputs[0] = r->in;
    r->job.outputs[0] = r->out;
    r->job.done = on_done;
    for (int i = 0; i < batch * 4; i++) r->in[i] = base + (float)i;
}

/* A job of `prepare` only: the batcher's thread fills it (like decoding a body). */
static void make_prepared(req *r, int (*prepare)(batcher_job *))
{
    memset(r, 0, sizeof(*r));
    r->job.done = on_done;
    r->job.prepare = prepare;
}

static batcher *start_b(fake *f, batcher_stats *s, int max_batch, uint64_t delay, int max_queue,
                        int bucket)
{
    W.done = 0;
    batcher_opts o = {.max_batch = max_batch,
                      .delay_us = delay,
                      .max_queue = max_queue,
                      .n_inputs = 1,
                      .n_outputs = 1,
                      .bucket = bucket,
                      .run = fake_run,
                      .run_ctx = f,
                      .thread_init = fake_init,
                      .stats = s};
    batcher *b = batcher_create(&o);
    cr_assert_not_null(b);
    return b;
}

static batcher *start(fake *f, batcher_stats *s, int max_batch, uint64_t delay, int max_queue)
{
    return start_b(f, s, max_batch, delay, max_queue, 0);
}

/* Submits n jobs of one sample each, job k with inputs from base * k and
 * shape key k % keys; every submit must be taken. */
static void submit_n(batcher *b, req *r, int n, float base, int keys)
{
    for (int k = 0; k < n; k++) {
        make(&r[k], 1, (float)k * base, (uint64_t)(k % keys));
        cr_assert_eq(batcher_submit(b, &r[k].job), 0);
    }
}

/* Job r ran and holds 2x its first nf inputs. */
static void assert_doubled(const req *r, int nf)
{
    cr_assert_eq(r->job.status, BATCHER_OK);
    for (int i = 0; i < nf; i++) cr_assert_eq(r->out[i], 2 * r->in[i]);
}

Test(batcher, requests_within_the_delay_run_as_one_batch_with_correct_outputs)
{
    fake f = {0};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 16, 200000, 64);
    req r[5];
    for (int k = 0; k < 5; k++) {
        make(&r[k], k % 2 + 1, (float)k * 100, 7);
        cr_assert_eq(batcher_submit(b, &r[k].job), 0);
    }
    wait_done(5);
    cr_assert_eq(f.n_batches, 1, "ran %d batches", f.n_batches);
    cr_assert_eq(f.batches[0], 1 + 2 + 1 + 2 + 1);
    for (int k = 0; k < 5; k++) {
        assert_doubled(&r[k], r[k].job.batch * 4);
        cr_assert_eq(r[k].job.ran_batch, 7);
    }
    cr_assert_eq(s.inference_count, 7);
    cr_assert_eq(s.exec_count, 1);
    cr_assert_eq(s.success, 5);
    cr_assert_eq(s.pending, 0);
    batcher_free(b);
}

Test(batcher, max_batch_caps_a_batch_and_the_rest_follows)
{
    fake f = {0};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 3, 200000, 64);
    req r[7];
    submit_n(b, r, 7, 1, 1);
    wait_done(7);
    int total = 0;
    for (int i = 0; i < f.n_batches; i++) {
        cr_assert_leq(f.batches[i], 3);
        total += f.batches[i];
    }
    cr_assert_eq(total, 7);
    cr_assert_geq(f.n_batches, 3);
    batcher_free(b);
}

Test(batcher, different_shapes_never_share_a_batch)
{
    fake f = {0};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 16, 100000, 64);
    req r[4];
    submit_n(b, r, 4, 1, 2);
    wait_done(4);
    cr_assert_eq(f.n_batches, 4, "alternating shapes must run alone, got %d batches", f.n_batches);
    for (int k = 0; k < 4; k++) assert_doubled(&r[k], 1);
    batcher_free(b);
}

Test(batcher, bucketing_gathers_each_shape_past_jobs_of_other_shapes)
{
    fake f = {0};
    batcher_stats s = {0};
    batcher *b = start_b(&f, &s, 16, 200000, 64, 1);
    req r[6]; /* shapes 0 1 2 0 1 2: three batches of two, in order of first arrival */
    submit_n(b, r, 6, 10, 3);
    wait_done(6);
    cr_assert_eq(f.n_batches, 3, "ran %d batches", f.n_batches);
    for (int i = 0; i < 3; i++) cr_assert_eq(f.batches[i], 2);
    for (int k = 0; k < 6; k++) {
        assert_doubled(&r[k], 4);
        cr_assert_eq(r[k].job.ran_batch, 2);
    }
    cr_assert_eq(s.pending, 0);
    batcher_free(b);
}

Test(batcher, zero_delay_does_not_wait_for_company)
{
    fake f = {0};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 16, 0, 64);
    req r;
    make(&r, 1, 1, 1);
    cr_assert_eq(batcher_submit(b, &r.job), 0);
    wait_done(1);
    cr_assert_eq(r.job.status, BATCHER_OK);
    cr_assert_lt(r.job.queued_us, 100000);
    batcher_free(b);
}

Test(batcher, full_queue_rejects_and_counts)
{
    fake f = {.sleep_us = 100000};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 1, 0, 2);
    req r[6];
    int accepted = 0, rejected = 0;
    for (int k = 0; k < 6; k++) {
        make(&r[k], 1, 0, 1);
        int rc = batcher_submit(b, &r[k].job);
        cr_assert(rc == 0 || rc == -EAGAIN);
        rc ? rejected++ : accepted++;
    }
    cr_assert_geq(rejected, 3, "queue of 2 (+1 running) took %d of 6", accepted);
    wait_done(accepted);
    cr_assert_eq(s.fail_rejected, (uint64_t)rejected);
    batcher_free(b);
}

Test(batcher, queued_past_deadline_times_out_without_running)
{
    fake f = {.sleep_us = 150000};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 1, 0, 8);
    req slow, late;
    make(&slow, 1, 0, 1);
    make(&late, 1, 0, 1);
    cr_assert_eq(batcher_submit(b, &slow.job), 0);
    late.job.deadline_us = 1; /* already past */
    cr_assert_eq(batcher_submit(b, &late.job), 0);
    wait_done(2);
    cr_assert_eq(slow.job.status, BATCHER_OK);
    cr_assert_eq(late.job.status, BATCHER_TIMEOUT);
    cr_assert_eq(s.fail_timeout, 1);
    cr_assert_eq(f.n_batches, 1);
    batcher_free(b);
}

Test(batcher, backend_error_fails_that_batch_and_the_next_succeeds)
{
    fake f = {.fail_next = 1};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 4, 0, 8);
    req a, c;
    make(&a, 1, 0, 1);
    make(&c, 1, 5, 1);
    cr_assert_eq(batcher_submit(b, &a.job), 0);
    wait_done(1);
    cr_assert_eq(a.job.status, BATCHER_BACKEND);
    cr_assert_str_eq(a.job.err, "kaboom");
    cr_assert_eq(batcher_submit(b, &c.job), 0);
    wait_done(2);
    cr_assert_eq(c.job.status, BATCHER_OK);
    cr_assert_eq(c.out[0], 10.0f);
    cr_assert_eq(s.fail_backend, 1);
    cr_assert_eq(s.success, 1);
    batcher_free(b);
}

Test(batcher, failed_thread_init_fails_jobs_with_its_reason)
{
    fake f = {.init_fail = 1};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 4, 0, 8);
    req a;
    make(&a, 1, 0, 1);
    cr_assert_eq(batcher_submit(b, &a.job), 0);
    wait_done(1);
    cr_assert_eq(a.job.status, BATCHER_BACKEND);
    cr_assert_str_eq(a.job.err, "no context");
    batcher_free(b);
}

Test(batcher, shutdown_completes_every_queued_job)
{
    fake f = {.sleep_us = 50000};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 1, 0, 8);
    req r[4];
    submit_n(b, r, 4, 0, 1);
    batcher_free(b);
    cr_assert_eq(W.done, 4);
    int shut = 0;
    for (int k = 0; k < 4; k++) shut += r[k].job.status == BATCHER_SHUTDOWN;
    cr_assert_geq(shut, 2);
    cr_assert_eq(s.pending, 0);
}

Test(batcher, bad_batch_sizes_are_refused)
{
    fake f = {0};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 4, 0, 8);
    req r;
    make(&r, 4, 0, 1);
    r.job.batch = 5;
    cr_assert_eq(batcher_submit(b, &r.job), -EINVAL);
    r.job.batch = 0;
    cr_assert_eq(batcher_submit(b, &r.job), -EINVAL);
    batcher_free(b);
}

Test(batcher, metrics_render_sums_workers_as_prometheus_text)
{
    batcher_stats s[2] = {0};
    s[0].success = 3, s[1].success = 4;
    s[0].inference_count = 10, s[1].exec_count = 5;
    s[1].fail_rejected = 2;
    batcher_hist_record(&s[0].queue, 50);
    batcher_hist_record(&s[1].queue, 3000);
    buf b = BUF_INIT;
    cr_assert_eq(batcher_stats_render(&b, "m", s, 2), 0);
    cr_assert(strstr(b.data, "aiserve_model_request_success_total{model=\"m\"} 7\n"));
    cr_assert(
        strstr(b.data, "aiserve_model_request_failure_total{model=\"m\",reason=\"REJECTED\"} 2\n"));
    cr_assert(strstr(b.data, "aiserve_model_execution_count_total{model=\"m\"} 5\n"));
    cr_assert(strstr(b.data, "aiserve_model_queue_duration_us_bucket{model=\"m\",le=\"100\"} 1\n"));
    cr_assert(
        strstr(b.data, "aiserve_model_queue_duration_us_bucket{model=\"m\",le=\"5000\"} 2\n"));
    cr_assert(strstr(b.data, "aiserve_model_queue_duration_us_sum{model=\"m\"} 3050\n"));
    buf_free(&b);
}

static int always_gone(batcher_job *j)
{
    (void)j;
    return 1;
}

Test(batcher, cancelled_jobs_are_dropped_unrun)
{
    fake f = {0};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 8, 100000, 8);
    req a;
    make(&a, 1, 0, 1);
    a.job.cancelled = always_gone;
    cr_assert_eq(batcher_submit(b, &a.job), 0);
    wait_done(1);
    cr_assert_eq(a.job.status, BATCHER_CANCELLED);
    cr_assert_eq(f.n_batches, 0);
    cr_assert_eq(s.fail_cancelled, 1);
    cr_assert_eq(s.pending, 0);
    batcher_free(b);
}

Test(batcher, an_input_error_in_a_batch_fails_only_the_job_that_caused_it)
{
    fake f = {0};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 16, 200000, 64);
    req r[3];
    for (int k = 0; k < 3; k++) {
        make(&r[k], 1, (float)k * 10, 7);
        if (k == 1) r[k].in[2] = -5;
        cr_assert_eq(batcher_submit(b, &r[k].job), 0);
    }
    wait_done(3);
    cr_assert_eq(f.batches[0], 3, "the three jobs were tried as one batch first");
    cr_assert_eq(f.n_batches, 4, "then each alone: %d runs", f.n_batches);
    cr_assert_eq(r[1].job.status, BATCHER_BAD_INPUT);
    cr_assert_str_eq(r[1].job.err, "negative value -5");
    for (int k = 0; k < 3; k += 2) assert_doubled(&r[k], 4);
    cr_assert_eq(s.success, 2);
    cr_assert_eq(s.fail_backend, 0);
    batcher_free(b);
}

/* prepare: doubles the job's declared base into its input (like decoding a body). */
static int prep_ok(batcher_job *job)
{
    req *r = (req *)job;
    r->job.batch = 2;
    r->job.shape_key = 3;
    r->job.in_bytes[0] = r->job.out_bytes[0] = 4 * sizeof(float);
    for (int i = 0; i < 8; i++) r->in[i] = (float)i;
    r->job.inputs[0] = r->in;
    r->job.outputs[0] = r->out;
    return 0;
}

static int prep_fail(batcher_job *job)
{
    (void)job;
    return -1;
}

static int prep_slow(batcher_job *job)
{
    usleep(300000); /* far longer than the six submits take, even on a loaded machine */
    return prep_ok(job);
}

Test(batcher, prepared_jobs_run_off_the_submitter_and_failed_ones_never_run)
{
    fake f = {0};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 8, 0, 64);
    req r[3];
    for (int k = 0; k < 3; k++) {
        make_prepared(&r[k], k == 1 ? prep_fail : prep_ok);
        cr_assert_eq(batcher_submit(b, &r[k].job), 0, "batch 0 is fine with a prepare");
    }
    wait_done(3);
    cr_assert_eq(r[1].job.status, BATCHER_PREP_FAILED);
    for (int k = 0; k < 3; k += 2) {
        assert_doubled(&r[k], 8);
        cr_assert_eq(r[k].out[7], 14.0f);
    }
    cr_assert_eq(s.inference_count, 4);
    cr_assert_eq(s.pending, 0);
    batcher_free(b);
}

Test(batcher, jobs_waiting_to_be_prepared_count_toward_the_queue_bound)
{
    fake f = {0};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 8, 0, 2);
    req r[6];
    int accepted = 0;
    for (int k = 0; k < 6; k++) {
        make_prepared(&r[k], prep_slow);
        int rc = batcher_submit(b, &r[k].job);
        cr_assert(rc == 0 || rc == -EAGAIN);
        accepted += rc == 0;
    }
    /* one being prepared + 2 queued at most */
    cr_assert_leq(accepted, 3, "took %d of 6", accepted);
    wait_done(accepted);
    cr_assert_eq(s.fail_rejected, (uint64_t)(6 - accepted));
    batcher_free(b);
}

Test(batcher, jobs_prepared_while_a_batch_ran_still_share_the_next_batch)
{
    fake f = {.sleep_us = 300000};
    batcher_stats s = {0};
    batcher *b = start(&f, &s, 8, 0, 64);
    req first, r[4];
    make(&first, 1, 0, 3);
    cr_assert_eq(batcher_submit(b, &first.job), 0);
    while (!__atomic_load_n(&f.n_batches, __ATOMIC_ACQUIRE)) usleep(1000); /* it is running */
    for (int k = 0; k < 4; k++) {
        make_prepared(&r[k], prep_ok); /* 2 samples each */
        cr_assert_eq(batcher_submit(b, &r[k].job), 0);
    }
    wait_done(5);
    cr_assert_eq(f.n_batches, 2, "%d batches", f.n_batches);
    cr_assert_eq(f.batches[1], 8);
    batcher_free(b);
}
