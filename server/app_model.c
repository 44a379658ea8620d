/*
 * app_model.c: the model app's lifecycle (load in the master or, with
 * lazy-apps, in each worker; batchers per worker), the engine glue the
 * batcher thread runs, and the completion path back to the event loop.
 */
#include "server/app_model.h"

#include "server/app_model_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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

static int describe(model *m)
{
    m->n_in = eng_model_num_inputs(m->em);
    m->n_out = eng_model_num_outputs(m->em);
    if (m->n_in < 1 || m->n_in > BATCHER_MAX_IO || m->n_out < 1 || m->n_out > BATCHER_MAX_IO) {
        snprintf(m->err, sizeof(m->err), "%d inputs and %d outputs (1..%d each are served)",
                 m->n_in, m->n_out, BATCHER_MAX_IO);
        return -1;
    }
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
    model_prep_init(m);
    return 0;
}

static int model_configured(const cfg *c)
{
    size_t n = 0;
    cfg_list(c, "model", &n);
    return n > 0;
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
    app->efd = -1;
    pthread_mutex_init(&app->done_mu, NULL);
    app->need_app = cfg_bool(c, "need-app");
    app->server_timing = cfg_bool(c, "server-timing");
    app->worker_id = app_ctx_worker_id(ctx);
    *state = app;
    if (model_conf_read(app, c, err, errlen)) goto fail;
    app->nslots = (int)cfg_int(c, "processes") + 1;
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
    int first = m->batch_dynamic ? 1 : m->c.max_batch;
    for (int b = first; b <= m->c.max_batch; b++) {
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

/* Batcher or prepare thread: hand the request back to the loop. */
static void mreq_done(batcher_job *job)
{
    mreq *q = (mreq *)job;
    app_model *app = q->app;
    pthread_mutex_lock(&app->done_mu);
    q->next_done = app->done_head;
    app->done_head = q;
    pthread_mutex_unlock(&app->done_mu);
    uint64_t one = 1;
    ssize_t w = write(app->efd, &one, sizeof(one));
    (void)w; /* EAGAIN means the counter is already non-zero: the loop will wake */
}

/* Loop: finish every completed request (oldest first). */
static void on_done(ev_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop, (void)events;
    app_model *app = data;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof(v));
    (void)r;
    pthread_mutex_lock(&app->done_mu);
    mreq *list = app->done_head;
    app->done_head = NULL;
    pthread_mutex_unlock(&app->done_mu);
    mreq *rev = NULL;
    while (list) {
        mreq *n = list->next_done;
        list->next_done = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        mreq *n = rev->next_done;
        if (app->server_timing && rev->job.status == BATCHER_OK) {
            /* The core's header says queue;dur=0 and app (the whole wait
             * here); this one splits it: the batcher's queue, the batch's
             * compute and its size. */
            char v[160];
            int len =
                snprintf(v, sizeof(v), "batch-queue;dur=%.3f, compute;dur=%.3f, batch;desc=%d",
                         (double)rev->job.queued_us / 1000.0, (double)rev->job.run_us / 1000.0,
                         rev->job.ran_batch);
            app_add_header(rev->r, "Server-Timing", 13, v, (size_t)len);
        }
        mreq_finish(rev);
        rev = n;
    }
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
    app_model *app = q->app;
    model *m = q->m;
    if (!app->loop) {
        if (app->efd < 0 || ev_io_add(q->r->loop, app->efd, EV_READ, on_done, app)) {
            model_reply_error(q->r, m, 500, "cannot set up the completion path");
            mreq_free(q);
            return APP_DONE;
        }
        app->loop = q->r->loop;
    }
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
    app->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (app->efd < 0) return -errno;
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
    for (int i = 0; i < app->n; i++) batcher_free(app->models[i].b);
    /* Jobs the batchers completed at shutdown wait on the done list. */
    for (mreq *q = app->done_head, *n; q; q = n) {
        n = q->next_done;
        mreq_free(q);
    }
    if (app->loop && app->efd >= 0) ev_io_del(app->loop, app->efd);
    if (app->efd >= 0) close(app->efd);
    for (int i = 0; i < app->n; i++) {
        model *m = &app->models[i];
        eng_model_free(m->em);
        for (int k = 0; k < m->n_labels; k++) free(m->labels[k]);
        free(m->labels);
        for (int k = 0; k < BATCHER_MAX_IO; k++) free(m->zeros[k]);
        model_conf_free(&m->c);
    }
    for (int i = 0; i < app->nroutes; i++) free(app->routes[i].path);
    if (app->shm) munmap(app->shm, app->shm_len ? app->shm_len : 1);
    pthread_mutex_destroy(&app->done_mu);
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
