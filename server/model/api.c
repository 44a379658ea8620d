/*
 * server/model/api.c: the registry of this process's model app and the blocking
 * calls. A call is a batcher_job on the caller's stack with a mutex and a
 * condition variable beside it; the batcher's done callback signals it under
 * the mutex, so the caller cannot return (and drop the job) before the
 * batcher thread has let go of it.
 */
#include "server/model/api.h"

#include "lib/err.h"

#include "lib/ev.h"
#include "server/model/app_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The process's model app (one per process: part of the process model).
 * sub_mu is held while a caller submits, so model_api_close (taking it for
 * writing) knows nobody is about to touch a batcher it is going to free;
 * inside counts callers that hold pointers into the app. */
static pthread_rwlock_t sub_mu = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cv = PTHREAD_COND_INITIALIZER;
static app_model *registered;
static int closing, inside;

void model_api_register(app_model *app)
{
    pthread_mutex_lock(&reg_mu);
    registered = app;
    closing = 0;
    pthread_mutex_unlock(&reg_mu);
}

void model_api_close(app_model *app)
{
    pthread_rwlock_wrlock(&sub_mu);
    pthread_mutex_lock(&reg_mu);
    if (registered == app) closing = 1;
    pthread_mutex_unlock(&reg_mu);
    pthread_rwlock_unlock(&sub_mu);
}

void model_api_drain(app_model *app)
{
    pthread_mutex_lock(&reg_mu);
    if (registered == app) {
        while (inside > 0) pthread_cond_wait(&reg_cv, &reg_mu);
        registered = NULL;
        closing = 0;
    }
    pthread_mutex_unlock(&reg_mu);
}

/* Enters the app; NULL when none is registered (or it is closing). */
static app_model *enter(void)
{
    pthread_mutex_lock(&reg_mu);
    app_model *app = closing ? NULL : registered;
    if (app) inside++;
    pthread_mutex_unlock(&reg_mu);
    return app;
}

static void leave(void)
{
    pthread_mutex_lock(&reg_mu);
    if (--inside == 0) pthread_cond_broadcast(&reg_cv);
    pthread_mutex_unlock(&reg_mu);
}

int model_api_hold(void)
{
    return enter() ? 0 : -ENOENT;
}

void model_api_release(void)
{
    leave();
}

int model_api_count(void)
{
    app_model *app = enter();
    if (!app) return 0;
    int n = app->n;
    leave();
    return n;
}

static void fill_info(model *m, model_api_info *out)
{
    *out = (model_api_info){
        .name = m->c.name,
        .n_in = m->n_in,
        .n_out = m->n_out,
        .in = m->in,
        .out = m->out,
        .in_item = m->in_item,
        .out_item = m->out_item,
        .max_batch = m->c.max_batch,
        .ready = m->b && __atomic_load_n(&m->ready, __ATOMIC_ACQUIRE),
        .takes_image = m->em && m->prep.channels && m->n_in == 1 &&
                       m->out[0].dtype == KSERVE_FP32 && (m->batch_dynamic || m->c.max_batch == 1),
        .error = m->em ? NULL : m->err,
    };
}

int model_api_info_get(int i, const char *name, model_api_info *out)
{
    app_model *app = enter();
    if (!app) return -ENOENT;
    model *m = i >= 0 ? (i < app->n ? &app->models[i] : NULL) : model_find(app, name, strlen(name));
    if (m) fill_info(m, out);
    leave();
    return m ? 0 : -ENOENT;
}

const char *model_api_label(const char *name, int k)
{
    app_model *app = enter();
    if (!app) return NULL;
    model *m = model_find(app, name, strlen(name));
    const char *l = m && k >= 0 && k < m->n_labels ? m->labels[k] : NULL;
    leave();
    return l;
}

void model_api_count_bad_input(const char *name)
{
    app_model *app = enter();
    if (!app) return;
    model *m = model_find(app, name, strlen(name));
    if (m && m->stats) batcher_stats_add(&m->stats->fail_bad_input, 1);
    leave();
}

typedef struct call {
    batcher_job job; /* first: done gets &job */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished;
} call;

static void call_done(batcher_job *job)
{
    call *c = (call *)job;
    pthread_mutex_lock(&c->mu);
    c->finished = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Looks the model up and checks it can run here; the caller is inside. */
static model *runnable(app_model *app, const char *name, char *err, size_t errlen, int *rc)
{
    model *m = model_find(app, name, strlen(name));
    if (!m) {
        *rc = err_fmt_rc(err, errlen, -ENOENT,
                         "unknown model '%.64s' (configure model = %.64s=PATH.onnx)", name, name);
        return NULL;
    }
    if (!m->em) {
        *rc = err_fmt_rc(err, errlen, -ESRCH, "model '%s' is not available: %s", m->c.name, m->err);
        return NULL;
    }
    if (m->dynamic) { /* requests are sized per shape: only the HTTP endpoints do that */
        *rc = err_fmt_rc(err, errlen, -ENOTSUP,
                         "model '%s' has dynamic dimensions beyond the batch: call it over HTTP "
                         "(/v2/models/%s/infer), not from Python",
                         m->c.name, m->c.name);
        return NULL;
    }
    if (!m->b) {
        *rc =
            err_fmt_rc(err, errlen, -ESRCH,
                       "model '%s' runs in the workers: call it while serving a request (or from a "
                       "thread of a worker), not at import time in the master",
                       m->c.name);
        return NULL;
    }
    return m;
}

/* Submits c->job (inputs, outputs, batch set) to m and waits. The caller is inside. */
static int run_job(model *m, call *c, char *err, size_t errlen)
{
    c->job.done = call_done;
    c->job.shape_key = 0;
    for (int i = 0; i < m->n_in; i++) c->job.in_bytes[i] = m->in_item[i];
    for (int i = 0; i < m->n_out; i++) c->job.out_bytes[i] = m->out_item[i];
    if (m->c.timeout_ms > 0) c->job.deadline_us = ev_clock_us() + (uint64_t)m->c.timeout_ms * 1000;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_rwlock_rdlock(&sub_mu);
    int rc = closing ? -ESHUTDOWN : batcher_submit(m->b, &c->job);
    pthread_rwlock_unlock(&sub_mu);
    if (rc == 0) {
        pthread_mutex_lock(&c->mu);
        while (!c->finished) pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    if (rc == -EAGAIN)
        return err_fmt_rc(err, errlen, -EAGAIN,
                          "Exceeds maximum queue size (max-queue %d for model '%s')",
                          m->c.max_queue, m->c.name);
    if (rc == -EINVAL)
        return err_fmt_rc(err, errlen, -EINVAL, "batch size %d is outside 1..%d (max-batch-size)",
                          c->job.batch, m->c.max_batch);
    if (rc) return err_fmt_rc(err, errlen, -ESHUTDOWN, "model '%s' is shutting down", m->c.name);
    switch (c->job.status) {
    case BATCHER_OK: return 0;
    case BATCHER_TIMEOUT:
        return err_fmt_rc(err, errlen, -ETIMEDOUT,
                          "Request timeout expired (model-timeout-ms %lld)",
                          (long long)m->c.timeout_ms);
    case BATCHER_BAD_INPUT:
        batcher_stats_add(&m->stats->fail_bad_input, 1);
        return err_fmt_rc(err, errlen, -EINVAL, "%s", c->job.err);
    case BATCHER_BACKEND: return err_fmt_rc(err, errlen, -EIO, "inference failed: %s", c->job.err);
    default: return err_fmt_rc(err, errlen, -ESHUTDOWN, "the worker is shutting down");
    }
}

int model_api_infer(const char *name, int batch, const void *const *inputs, void *const *outputs,
                    char *err, size_t errlen)
{
    app_model *app = enter();
    if (!app)
        return err_fmt_rc(err, errlen, -ENOENT,
                          "no model is configured in this server (add model = NAME=PATH.onnx)");
    int rc = 0;
    model *m = runnable(app, name, err, errlen, &rc);
    if (m) {
        call c = {0};
        c.job.batch = batch;
        for (int i = 0; i < m->n_in; i++) c.job.inputs[i] = inputs[i];
        for (int i = 0; i < m->n_out; i++) c.job.outputs[i] = outputs[i];
        rc = run_job(m, &c, err, errlen);
    }
    leave();
    return rc;
}

int model_api_classify(const char *name, const void *data, size_t len, float *scores, char *err,
                       size_t errlen)
{
    app_model *app = enter();
    if (!app)
        return err_fmt_rc(err, errlen, -ENOENT,
                          "no model is configured in this server (add model = NAME=PATH.onnx)");
    int rc = 0;
    model *m = runnable(app, name, err, errlen, &rc);
    model_api_info info;
    if (m) fill_info(m, &info);
    if (m && !info.takes_image) {
        batcher_stats_add(&m->stats->fail_bad_input, 1);
        rc = err_fmt_rc(err, errlen, -EINVAL,
                        "model '%s' does not take an image (classify needs one FP32 input shaped "
                        "[N,C,H,W], [N,H,W,C] or [N,K] with image-size)",
                        m->c.name);
        m = NULL;
    }
    image img;
    float *in = NULL;
    void *outs[BATCHER_MAX_IO] = {0};
    if (m) {
        /* Decoded on the calling thread (the GIL is released): app threads
         * decode in parallel, and the same code and limits as /predict apply. */
        char ierr[256];
        int d = image_decode(data, len, m->prep.channels, &app->img_lim, &img, ierr, sizeof(ierr));
        if (d) {
            batcher_stats_add(&m->stats->fail_bad_input, 1);
            rc = err_fmt_rc(err, errlen, d == -ENOMEM ? -ENOMEM : d, "%s", ierr);
            m = NULL;
        }
    }
    if (m) {
        in = malloc(m->in_item[0]);
        int ok = in != NULL;
        for (int i = 0; i < m->n_out && ok; i++)
            ok = (outs[i] = malloc(m->out_item[i] + 1)) != NULL;
        if (!ok || image_preprocess(&img, &m->prep, in))
            rc = err_fmt_rc(err, errlen, -ENOMEM, "out of memory");
        image_free(&img);
        if (!rc) {
            call c = {0};
            c.job.batch = 1;
            c.job.inputs[0] = in;
            for (int i = 0; i < m->n_out; i++) c.job.outputs[i] = outs[i];
            rc = run_job(m, &c, err, errlen);
        }
        if (!rc) model_scores(outs[0], (int)(m->out_item[0] / sizeof(float)), scores);
    }
    free(in);
    for (int i = 0; i < BATCHER_MAX_IO; i++) free(outs[i]);
    leave();
    return rc;
}
