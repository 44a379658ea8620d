/*
 * server/model/app.c: the model app's lifecycle (load in the master or, with
 * lazy-apps, in each worker; batchers per worker), the engine glue the
 * batcher thread runs, and the completion path back to the event loop.
 */
#include "server/model/model.h"

#include "server/model/app_int.h"
#include "server/model/api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* One line in the server log, in the core's format ("... aiserve[pid]: model: ..."). */
static void model_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void model_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    app_vlog("model: ", fmt, ap);
    va_end(ap);
}

model *model_find(app_model *app, const char *name, size_t len)
{
    for (int i = 0; i < app->n; i++)
        if (strlen(app->models[i].c.name) == len && !memcmp(app->models[i].c.name, name, len))
            return &app->models[i];
    return NULL;
}

static kserve_dtype dtype_of(eng_dtype t)
{
    switch (t) {
    case ENG_FLOAT: return KSERVE_FP32;
    case ENG_INT32: return KSERVE_INT32;
    case ENG_INT64: return KSERVE_INT64;
    case ENG_BOOL: return KSERVE_BOOL;
    default: return KSERVE_INVALID;
    }
}

/* Copies an engine tensor description into the wire one; -1 if unsupported. */
static int io_from(const eng_tensor_info *ti, kserve_io *io, size_t *item_bytes)
{
    io->name = ti->name;
    io->dtype = dtype_of(ti->dtype);
    io->rank = ti->rank;
    for (int d = 0; d < ti->rank && d < KSERVE_MAX_RANK; d++) io->shape[d] = ti->shape[d];
    *item_bytes = (size_t)ti->item_count * kserve_dtype_size(io->dtype);
    return io->dtype == KSERVE_INVALID || ti->rank > KSERVE_MAX_RANK ? -1 : 0;
}

#define DIMS_MEMO 8
struct dims_memo {
    int used;
    int64_t in[BATCHER_MAX_IO][ENG_MAX_RANK];  /* dim 0 set to 1 */
    int64_t out[BATCHER_MAX_IO][ENG_MAX_RANK]; /* dim 0 as inferred at batch 1 */
};

/* Output dims of a dynamic model for inputs of `batch` samples, every dynamic
 * dim beyond the batch at 1; 0 or -1. */
static int probe_dims(model *m, int64_t batch, int64_t (*out)[ENG_MAX_RANK])
{
    int64_t in[BATCHER_MAX_IO][ENG_MAX_RANK];
    const int64_t *shapes[BATCHER_MAX_IO];
    for (int i = 0; i < m->n_in; i++) {
        for (int d = 0; d < m->in[i].rank; d++)
            in[i][d] = m->in[i].shape[d] >= 0 ? m->in[i].shape[d] : d ? 1 : batch;
        shapes[i] = in[i];
    }
    return eng_model_output_dims(m->em, shapes, &out[0][0], NULL, 0) ? -1 : 0;
}

/* Dynamic models: requests are sized one by one (model_size_dynamic). They
 * batch across requests only when dim 0 is a batch: some input has a dynamic
 * dim beyond dim 0 (else the engine called the model dynamic because dim 0 is
 * a sequence, as in a sequence-first RNN) and every output's dim 0 follows the
 * inputs' dim 0. The zeros for model-route hold one sample at length 1. */
static int describe_dynamic(model *m)
{
    int64_t o1[BATCHER_MAX_IO][ENG_MAX_RANK], o2[BATCHER_MAX_IO][ENG_MAX_RANK];
    int beyond = 0;
    for (int i = 0; i < m->n_in; i++)
        for (int d = 1; d < m->in[i].rank; d++) beyond |= m->in[i].shape[d] < 0;
    int ok = beyond && m->batch_dynamic && !probe_dims(m, 1, o1) && !probe_dims(m, 2, o2);
    for (int i = 0; ok && i < m->n_out; i++)
        ok = m->out[i].rank > 0 && o1[i][0] == 1 && o2[i][0] == 2;
    if (!ok) m->c.max_batch = 1;
    pthread_mutex_init(&m->dims_mu, NULL);
    m->memo = calloc(DIMS_MEMO, sizeof(*m->memo)); /* NULL: no memo, still correct */
    for (int i = 0; i < m->n_in; i++) {
        size_t n = kserve_dtype_size(m->in[i].dtype);
        for (int d = 0; d < m->in[i].rank; d++) n *= m->in[i].shape[d] > 0 ? m->in[i].shape[d] : 1;
        m->zeros[i] = calloc(1, n ? n : 1);
        if (!m->zeros[i]) return snprintf(m->err, sizeof(m->err), "out of memory"), -1;
    }
    return 0;
}

/* Output dims for q->in_dims through the memo: 0, or the engine's status. */
static int output_dims(model *m, mreq *q, char *eerr, size_t errlen)
{
    int64_t key[BATCHER_MAX_IO][ENG_MAX_RANK] = {{0}};
    const int64_t *shapes[BATCHER_MAX_IO];
    for (int i = 0; i < m->n_in; i++) {
        memcpy(key[i], q->in_dims[i], sizeof(key[i]));
        if (m->in[i].rank > 0 && m->batch_dynamic && m->c.max_batch > 1) key[i][0] = 1;
        for (int d = m->in[i].rank; d < ENG_MAX_RANK; d++) key[i][d] = 0;
        shapes[i] = key[i];
    }
    int64_t batch = m->in[0].rank > 0 ? q->in_dims[0][0] : 1;
    pthread_mutex_lock(&m->dims_mu);
    for (int e = 0; m->memo && e < DIMS_MEMO; e++)
        if (m->memo[e].used && !memcmp(m->memo[e].in, key, sizeof(key))) {
            memcpy(q->out_dims, m->memo[e].out, sizeof(q->out_dims));
            pthread_mutex_unlock(&m->dims_mu);
            goto batch_dim;
        }
    pthread_mutex_unlock(&m->dims_mu);
    int rc = eng_model_output_dims(m->em, shapes, &q->out_dims[0][0], eerr, errlen);
    if (rc) return rc;
    pthread_mutex_lock(&m->dims_mu);
    if (m->memo) {
        struct dims_memo *e = &m->memo[m->memo_next];
        m->memo_next = (m->memo_next + 1) % DIMS_MEMO;
        e->used = 1;
        memcpy(e->in, key, sizeof(key));
        memcpy(e->out, q->out_dims, sizeof(e->out));
    }
    pthread_mutex_unlock(&m->dims_mu);
batch_dim: /* batched models: outputs' dim 0 follows the inputs' (checked at load) */
    for (int i = 0; key[0][0] == 1 && batch != 1 && i < m->n_out; i++)
        if (m->out[i].rank > 0) q->out_dims[i][0] = batch;
    return 0;
}

int model_size_dynamic(model *m, mreq *q, char *err, size_t errlen)
{
    for (int i = 0; i < m->n_in; i++) {
        const kserve_io *io = &m->in[i];
        size_t bytes = kserve_dtype_size(io->dtype);
        for (int d = 0; d < io->rank; d++) {
            int64_t v = q->in_dims[i][d];
            if (d && io->shape[d] < 0 && (v < 1 || v > m->c.max_seq)) {
                snprintf(err, errlen,
                         "input '%s': dimension %d is %lld, outside 1..%d (max-sequence %d of "
                         "model '%s')",
                         io->name, d, (long long)v, m->c.max_seq, m->c.max_seq, m->c.name);
                return v < 1 ? 400 : 413;
            }
            if (d) bytes *= (size_t)v;
        }
        q->job.in_bytes[i] = bytes;
    }
    char eerr[ENG_ERRLEN] = "";
    if (output_dims(m, q, eerr, sizeof(eerr))) {
        /* Name the inputs whose dynamic dims disagree (ids and mask of other lengths). */
        for (int i = 0; i < m->n_in; i++)
            for (int k = i + 1; k < m->n_in; k++)
                for (int d = 1; d < m->in[i].rank && d < m->in[k].rank; d++)
                    if (m->in[i].shape[d] < 0 && m->in[k].shape[d] < 0 &&
                        q->in_dims[i][d] != q->in_dims[k][d]) {
                        snprintf(err, errlen,
                                 "inputs '%s' and '%s' differ in dimension %d (%lld vs %lld): "
                                 "the model needs them equal (%s)",
                                 m->in[i].name, m->in[k].name, d, (long long)q->in_dims[i][d],
                                 (long long)q->in_dims[k][d], eerr);
                        return 400;
                    }
        snprintf(err, errlen, "the input shapes do not fit the model: %s", eerr);
        return 400;
    }
    for (int i = 0; i < m->n_out; i++) {
        size_t bytes = kserve_dtype_size(m->out[i].dtype);
        for (int d = 1; d < m->out[i].rank; d++) bytes *= (size_t)q->out_dims[i][d];
        if (m->out[i].rank == 0) bytes = kserve_dtype_size(m->out[i].dtype);
        q->job.out_bytes[i] = bytes;
    }
    return 0;
}

static int describe(model *m)
{
    m->n_in = eng_model_num_inputs(m->em);
    m->n_out = eng_model_num_outputs(m->em);
    if (m->n_in < 1 || m->n_in > BATCHER_MAX_IO || m->n_out < 1 || m->n_out > BATCHER_MAX_IO) {
        snprintf(m->err, sizeof(m->err), "%d inputs and %d outputs (1..%d each are served)",
                 m->n_in, m->n_out, BATCHER_MAX_IO);
        return -1;
    }
    m->dynamic = eng_model_dynamic(m->em);
    eng_tensor_info ti;
    for (int i = 0; i < m->n_in; i++) {
        if (eng_model_input(m->em, i, &ti) || io_from(&ti, &m->in[i], &m->in_item[i])) {
            snprintf(m->err, sizeof(m->err), "input %d has a datatype or rank we cannot serve", i);
            return -1;
        }
    }
    for (int i = 0; i < m->n_out; i++) {
        if (eng_model_output(m->em, i, &ti) || io_from(&ti, &m->out[i], &m->out_item[i])) {
            snprintf(m->err, sizeof(m->err), "output %d has a datatype or rank we cannot serve", i);
            return -1;
        }
    }
    int fixed = eng_model_max_batch(m->em);
    m->batch_dynamic = fixed == 0;
    if (fixed > 0) m->c.max_batch = fixed; /* it runs only batch == fixed: no batching */
    if (m->dynamic) return describe_dynamic(m);
    for (int i = 0; i < m->n_in; i++) {
        m->zeros[i] = calloc(fixed > 0 ? (size_t)fixed : 1, m->in_item[i] ? m->in_item[i] : 1);
        if (!m->zeros[i]) return snprintf(m->err, sizeof(m->err), "out of memory"), -1;
    }
    return 0;
}

static int load_one(model *m)
{
    m->em = eng_model_load_file(m->c.path, NULL, m->err, sizeof(m->err));
    if (!m->em) return -1;
    char lerr[256] = "";
    if (describe(m) || model_labels_load(m, lerr, sizeof(lerr))) {
        if (lerr[0]) snprintf(m->err, sizeof(m->err), "%s", lerr);
        eng_model_free(m->em);
        m->em = NULL;
        return -1;
    }
    if (m->c.int8_path) {
        int nq = model_int8_calibrate(m, lerr, sizeof(lerr));
        if (nq < 0) {
            snprintf(m->err, sizeof(m->err), "%s", lerr);
            eng_model_free(m->em);
            m->em = NULL;
            return -1;
        }
        model_log("'%s': int8: %d layers (dense Conv, Gemm) calibrated on %s", m->c.name, nq,
                  m->c.int8_path);
    }
    model_prep_init(m);
    return 0;
}

static int model_configured(const cfg *c)
{
    const model_opts *mo = cfg_values(c, model_options);
    return mo->model.n > 0;
}

/* The stats server's `models` entries: Triton's statistics per model (the
 * same as /v2/models/stats), with the requests queued now. */
static int model_stats_json(void *state, buf *out)
{
    app_model *app = state;
    int rc = 0, first = 1;
    for (int i = 0; i < app->n && !rc; i++) {
        model *x = &app->models[i];
        if (!x->em) continue;
        if (!first) rc = buf_puts(out, ",");
        first = 0;
        if (!rc) rc = batcher_stats_json(out, x->c.name, x->slots, app->nslots);
        int64_t pending = 0;
        for (int k = 0; k < app->nslots; k++)
            pending += __atomic_load_n(&x->slots[k].pending, __ATOMIC_RELAXED);
        /* batcher_stats_json wrote a whole object: add the queue gauge inside it. */
        if (!rc && out->len && out->data[out->len - 1] == '}') {
            out->len--;
            rc = buf_printf(out, ",\"pending\":%lld}", (long long)pending);
        }
    }
    return rc;
}

static void model_free_state(void *state);

static int model_load(app_ctx *ctx, void **state, char *err, size_t errlen)
{
    const cfg *c = app_ctx_cfg(ctx);
    app_model *app = calloc(1, sizeof(*app));
    if (!app) return snprintf(err, errlen, "out of memory"), -1;
    const cfg_core *o = cfg_core_values(c);
    app->need_app = o->need_app;
    app->server_timing = o->server_timing;
    app->worker_id = app_ctx_worker_id(ctx);
    *state = app;
    if (model_conf_read(app, c, err, errlen)) goto fail;
    app->nslots = o->processes + 1;
    app->shm_len = (size_t)app->n * (size_t)app->nslots * sizeof(batcher_stats);
    app->shm = mmap(NULL, app->shm_len ? app->shm_len : 1, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (app->shm == MAP_FAILED) {
        app->shm = NULL;
        snprintf(err, errlen, "cannot map the model statistics: %s", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < app->n; i++) {
        model *m = &app->models[i];
        m->slots = (batcher_stats *)app->shm + (size_t)i * (size_t)app->nslots;
        if (load_one(m) == 0) continue;
        if (app->need_app) {
            snprintf(err, errlen, "model '%s' (%s): %s", m->c.name, m->c.path, m->err);
            goto fail;
        }
        model_log("'%s' (%s) failed to load: %s; it answers 503", m->c.name, m->c.path, m->err);
    }
    char rerr[256];
    if (model_http_register(app, ctx, rerr, sizeof(rerr))) {
        /* Routes that did register point at app: it stays allocated. */
        if (app->need_app) {
            snprintf(err, errlen, "model routes: %s", rerr);
            return -1;
        }
        model_log("routes: %s; serving the others", rerr);
    }
    model_api_register(app); /* for `import aiserve` in WSGI apps of this process */
    return 0;
fail:
    model_free_state(app);
    *state = NULL;
    return -1;
}

/* ---- the batcher thread's side ---- */

static int eng_thread_init(void *arg, char *err, size_t errlen)
{
    model *m = arg;
    eng_ctx_opts o = {.threads = m->c.threads,
                      .max_batch = m->c.max_batch,
                      .batch_invariant = m->c.batch_invariant};
    m->ctx = eng_ctx_create(m->em, &o, err, errlen);
    if (!m->ctx) return -1;
    /* Warm every batch size the batcher can form, so no request pays for
     * building primitives (Triton users hit 50x slower first requests). A
     * size that fails to warm is reported and left to fail per request
     * (500), so one bad shape does not take the whole model down. */
    /* dynamic models: plans are built per shape on first use (a few cached) */
    int first = m->batch_dynamic ? 1 : m->c.max_batch;
    for (int b = first; !m->dynamic && b <= m->c.max_batch; b++) {
        if (eng_ctx_warmup(m->ctx, &b, 1))
            model_log("'%s': warm-up at batch %d failed: %s", m->c.name, b, eng_ctx_error(m->ctx));
    }
    __atomic_store_n(&m->ready, 1, __ATOMIC_RELEASE);
    return 0;
}

static void eng_thread_free(void *arg)
{
    model *m = arg;
    eng_ctx_free(m->ctx);
    m->ctx = NULL;
}

static int eng_run(void *arg, int batch, const void *const *in, void *const *out, char *err,
                   size_t errlen)
{
    model *m = arg;
    int rc = eng_ctx_run(m->ctx, batch, in, out);
    if (!rc) return 0;
    if (rc != -ENG_EINVAL && rc != -ENG_ESHAPE) {
        snprintf(err, errlen, "%s: %s", eng_strerror(rc), eng_ctx_error(m->ctx));
        return rc;
    }
    /* The batcher bounds the batch and every input matched the model's shape,
     * so what is left is data the graph cannot take: an index out of range in
     * a Gather, a shape tensor that does not fit. Name the input when only one
     * can hold such data (the model's one integer input). */
    int culprit = -1, ints = 0;
    for (int i = 0; i < m->n_in; i++)
        if (m->in[i].dtype == KSERVE_INT32 || m->in[i].dtype == KSERVE_INT64) culprit = i, ints++;
    if (ints == 1)
        snprintf(err, errlen, "input '%s' does not fit the model: %s", m->in[culprit].name,
                 eng_ctx_error(m->ctx));
    else
        snprintf(err, errlen, "the inputs do not fit the model: %s", eng_ctx_error(m->ctx));
    return 1;
}

/* batch-invariant for a dynamic model: every sample runs alone at dim 0 = 1,
 * from a 64-byte-aligned copy of its inputs (as eng_ctx does for fixed-shape
 * models), so its outputs never depend on the batch it joined. */
static int run_each(model *m, const batcher_job *first, int batch, int64_t (*dims)[ENG_MAX_RANK],
                    const void *const *in, void *const *out)
{
    const int64_t *shapes[BATCHER_MAX_IO];
    const void *ins[BATCHER_MAX_IO] = {0};
    void *outs[BATCHER_MAX_IO];
    int rc = 0;
    for (int i = 0; i < m->n_in; i++) {
        if (m->in[i].rank > 0) dims[i][0] = 1;
        shapes[i] = dims[i];
        void *p = NULL;
        if (posix_memalign(&p, 64, first->in_bytes[i] ? first->in_bytes[i] : 64)) rc = -ENG_ENOMEM;
        ins[i] = p;
    }
    for (int s = 0; s < batch && !rc; s++) {
        for (int i = 0; i < m->n_in; i++)
            memcpy((void *)ins[i], (const char *)in[i] + (size_t)s * first->in_bytes[i],
                   first->in_bytes[i]);
        for (int i = 0; i < m->n_out; i++)
            outs[i] = (char *)out[i] + (size_t)s * first->out_bytes[i];
        rc = eng_ctx_run_shapes(m->ctx, shapes, ins, outs);
    }
    for (int i = 0; i < m->n_in; i++) free((void *)ins[i]);
    return rc;
}

/* Dynamic models: the batch's shape is its first job's, with dim 0 the
 * batch's samples (the batcher joined only jobs of equal shapes). */
static int eng_run_shaped(void *arg, const batcher_job *first, int batch, const void *const *in,
                          void *const *out, char *err, size_t errlen)
{
    model *m = arg;
    const mreq *q = (const mreq *)first;
    int64_t dims[BATCHER_MAX_IO][ENG_MAX_RANK];
    const int64_t *shapes[BATCHER_MAX_IO];
    for (int i = 0; i < m->n_in; i++) {
        memcpy(dims[i], q->in_dims[i], sizeof(dims[i]));
        if (m->in[i].rank > 0) dims[i][0] = batch;
        shapes[i] = dims[i];
    }
    int rc = m->c.batch_invariant ? run_each(m, first, batch, dims, in, out)
                                  : eng_ctx_run_shapes(m->ctx, shapes, in, out);
    if (!rc) return 0;
    if (rc != -ENG_EINVAL && rc != -ENG_ESHAPE) {
        snprintf(err, errlen, "%s: %s", eng_strerror(rc), eng_ctx_error(m->ctx));
        return rc;
    }
    snprintf(err, errlen, "the inputs do not fit the model: %s", eng_ctx_error(m->ctx));
    return 1;
}

/* Loop (the core's completion queue): encode and finish the request. */
static void mreq_on_loop(app_request *r, void *arg)
{
    (void)r;
    mreq *q = arg;
    if (q->app->server_timing && q->job.status == BATCHER_OK) {
        /* The core's header says queue;dur=0 and app (the whole wait
         * here); this one splits it: the batcher's queue, the batch's
         * compute and its size. */
        char v[160];
        int len = snprintf(v, sizeof(v), "batch-queue;dur=%.3f, compute;dur=%.3f, batch;desc=%d",
                           (double)q->job.queued_us / 1000.0, (double)q->job.run_us / 1000.0,
                           q->job.ran_batch);
        app_add_header(q->r, "Server-Timing", 13, v, (size_t)len);
    }
    mreq_finish(q);
}

/* Batcher or prepare thread: hand the request back to the loop. */
static void mreq_done(batcher_job *job)
{
    mreq *q = (mreq *)job;
    app_complete_async(q->r, mreq_on_loop, q);
}

int model_reply_error(app_request *r, model *m, int status, const char *msg)
{
    buf b = BUF_INIT;
    kserve_error_write(&b, msg);
    app_set_status(r, status);
    app_add_header(r, "Content-Type", 12, "application/json", 16);
    if (status == 503) app_add_header(r, "Retry-After", 11, "1", 1);
    app_write(r, b.data, b.len);
    buf_free(&b);
    if (m && m->stats && status >= 400 && status < 500)
        batcher_stats_add(&m->stats->fail_bad_input, 1);
    return APP_DONE;
}

void mreq_free(mreq *q)
{
    kserve_request_free(&q->kreq);
    for (int i = 0; i < BATCHER_MAX_IO; i++) free(q->outputs[i]);
    free(q->image);
    free(q);
}

/* Batcher thread: a queued request whose client hung up is not worth computing. */
static int mreq_cancelled(batcher_job *job)
{
    return app_client_gone(((mreq *)job)->r);
}

int mreq_submit(mreq *q)
{
    model *m = q->m;
    q->job.done = mreq_done;
    q->job.cancelled = mreq_cancelled;
    /* The model's limit; a request's own "timeout" may only shorten it. */
    uint64_t limit = m->c.timeout_ms > 0 ? (uint64_t)m->c.timeout_ms * 1000 : 0;
    q->submitted_us = ev_clock_us();
    if (limit) q->job.deadline_us = q->submitted_us + limit;
    int rc = batcher_submit(m->b, &q->job);
    if (rc == 0) return APP_PENDING;
    char msg[160];
    if (rc == -EAGAIN)
        snprintf(msg, sizeof(msg), "Exceeds maximum queue size (max-queue %d for model '%s')",
                 m->c.max_queue, m->c.name);
    else
        snprintf(msg, sizeof(msg), "model '%s' is shutting down", m->c.name);
    model_reply_error(q->r, NULL, 503, msg);
    mreq_free(q);
    return APP_DONE;
}

/* ---- lifecycle ---- */

static int model_worker_init(void *state, int worker_id)
{
    app_model *app = state;
    app->worker_id = worker_id;
    int slot = app->nslots > 0 ? worker_id % app->nslots : 0;
    for (int i = 0; i < app->n; i++) {
        model *m = &app->models[i];
        if (!m->em) continue;
        m->stats = &m->slots[slot];
        batcher_opts o = {.max_batch = m->c.max_batch,
                          .delay_us = (uint64_t)m->c.delay_us,
                          .max_queue = m->c.max_queue,
                          .n_inputs = m->n_in,
                          .n_outputs = m->n_out,
                          .run = eng_run,
                          .run_shaped = m->dynamic ? eng_run_shaped : NULL,
                          .bucket = m->dynamic,
                          .run_ctx = m,
                          .thread_init = eng_thread_init,
                          .thread_free = eng_thread_free,
                          .stats = m->stats};
        m->b = batcher_create(&o);
        if (!m->b) return -errno;
    }
    return 0;
}

static int model_ready(void *state)
{
    app_model *app = state;
    for (int i = 0; i < app->n; i++) {
        model *m = &app->models[i];
        if (m->b && !__atomic_load_n(&m->ready, __ATOMIC_ACQUIRE)) return 0;
    }
    return 1;
}

int model_failed(void *state, char *why, size_t len)
{
    app_model *app = state;
    size_t n = 0;
    int failed = 0;
    if (len) why[0] = '\0';
    for (int i = 0; i < app->n; i++) {
        model *m = &app->models[i];
        if (m->em) continue;
        if (n < len)
            n += (size_t)snprintf(why + n, len - n, "%smodel '%s' failed to load: %s",
                                  failed ? "; " : "", m->c.name, m->err);
        failed++;
    }
    return failed > 0;
}

static int model_metrics(void *state, buf *out)
{
    app_model *app = state;
    int rc = buf_puts(out, "# TYPE aiserve_model_loaded gauge\n");
    for (int i = 0; i < app->n && !rc; i++)
        rc = buf_printf(out, "aiserve_model_loaded{model=\"%s\"} %d\n", app->models[i].c.name,
                        app->models[i].em != NULL);
    for (int i = 0; i < app->n && !rc; i++)
        if (app->models[i].em)
            rc =
                batcher_stats_render(out, app->models[i].c.name, app->models[i].slots, app->nslots);
    return rc;
}

static void model_free_state(void *state)
{
    app_model *app = state;
    if (!app) return;
    model_api_close(app); /* in-process callers: no new jobs; queued ones end at batcher_free */
    for (int i = 0; i < app->n; i++) batcher_free(app->models[i].b);
    model_api_drain(app);
    for (int i = 0; i < app->n; i++) {
        model *m = &app->models[i];
        eng_model_free(m->em);
        for (int k = 0; k < m->n_labels; k++) free(m->labels[k]);
        free(m->labels);
        for (int k = 0; k < BATCHER_MAX_IO; k++) free(m->zeros[k]);
        if (m->dynamic && m->em) pthread_mutex_destroy(&m->dims_mu);
        free(m->memo);
        model_conf_free(&m->c);
    }
    for (int i = 0; i < app->nroutes; i++) free(app->routes[i].path);
    if (app->shm) munmap(app->shm, app->shm_len ? app->shm_len : 1);
    free(app);
}

const app_kind app_kind_model = {
    .name = "model",
    .options = model_options,
    .configured = model_configured,
    .load = model_load,
    .worker_init = model_worker_init,
    .ready = model_ready,
    .free = model_free_state,
    .metrics = model_metrics,
    .failed = model_failed,
    .stats_json = model_stats_json,
};
