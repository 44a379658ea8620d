/*
 * app_model_http.c: the model app's HTTP surface, all on the event loop.
 *   /v2, /v2/health/{live,ready}, /v2/models/NAME[/versions/1][/ready|/infer|/classify]
 *   /predict/NAME            image classification (the short form)
 *   model-route paths        the article's GET / -> forward pass on zeros
 * Handlers validate everything before any allocation that a client controls
 * (tensor sizes are bounded by the model's shape x max-batch-size, images by
 * image-max-*), then hand an mreq to the batcher and return APP_PENDING.
 */
#include "server/app_model_int.h"

#include "lib/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reply(app_request *r, int status, const char *ctype, const void *body, size_t len)
{
    app_set_status(r, status);
    if (ctype) app_add_header(r, "Content-Type", 12, ctype, strlen(ctype));
    if (len) app_write(r, body, len);
    return APP_DONE;
}

static int method_is(const app_request *r, const char *m)
{
    return r->method_len == strlen(m) && !memcmp(r->method, m, r->method_len);
}

static int not_allowed(app_request *r, const char *allow)
{
    app_add_header(r, "Allow", 5, allow, strlen(allow));
    char msg[64];
    snprintf(msg, sizeof(msg), "method not allowed (use %s)", allow);
    return model_reply_error(r, NULL, 405, msg);
}

static bool want_get(app_request *r)
{
    return method_is(r, "GET") || method_is(r, "HEAD");
}

static mreq *mreq_new(app_model *app, app_request *r, model *m, mreq_kind kind, int batch)
{
    mreq *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    q->app = app, q->r = r, q->m = m, q->kind = kind, q->batch = batch;
    q->job.batch = batch;
    for (int i = 0; i < m->n_in; i++) q->job.in_bytes[i] = m->in_item[i];
    for (int i = 0; i < m->n_out; i++) {
        q->job.out_bytes[i] = m->out_item[i];
        q->outputs[i] = malloc((size_t)batch * m->out_item[i] + 1);
        if (!q->outputs[i]) {
            mreq_free(q);
            return NULL;
        }
        q->job.outputs[i] = q->outputs[i];
    }
    return q;
}

/* ---- infer ---- */

static int parse_header_len(app_request *r, size_t *out)
{
    const http1_header *h = app_header(r, "Inference-Header-Content-Length");
    *out = (size_t)-1;
    if (!h) return 0;
    size_t v = 0;
    if (h->value_len == 0 || h->value_len > 15) return -1;
    for (size_t i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9') return -1;
        v = v * 10 + (size_t)(h->value[i] - '0');
    }
    *out = v;
    return 0;
}

static int infer(app_model *app, app_request *r, model *m)
{
    size_t hlen;
    if (parse_header_len(r, &hlen))
        return model_reply_error(r, m, 400, "Inference-Header-Content-Length is not a number");
    /* Bounds: no tensor beyond the model's sample size x max-batch-size, and
     * no more JSON values than that many elements (plus nesting) can need. */
    size_t max_item = 0, elems = 0;
    for (int i = 0; i < m->n_in; i++) {
        if (m->in_item[i] > max_item) max_item = m->in_item[i];
        elems += m->in_item[i] /
                 (kserve_dtype_size(m->in[i].dtype) ? kserve_dtype_size(m->in[i].dtype) : 1);
    }
    kserve_limits lim = {.max_tensor_bytes = max_item * (size_t)m->c.max_batch};
    uint64_t tokens = (uint64_t)elems * (uint64_t)m->c.max_batch * 2 + 4096;
    lim.max_json_tokens = tokens > (1u << 28) ? 1u << 28 : (uint32_t)tokens;
    mreq *q = calloc(1, sizeof(*q));
    if (!q) return model_reply_error(r, m, 500, "out of memory");
    char err[KSERVE_ERRLEN];
    int st = kserve_request_parse(&q->kreq, r->body, r->body_len, hlen, &lim, err, sizeof(err));
    if (!st)
        st = kserve_request_check(&q->kreq, m->in, m->n_in, m->out, m->n_out, err, sizeof(err));
    int batch = m->c.max_batch;
    if (!st && m->batch_dynamic && m->in[0].rank > 0) {
        int64_t n = q->kreq.inputs[0].shape[0];
        if (n < 1 || n > m->c.max_batch) {
            st = n < 1 ? 400 : 413;
            snprintf(err, sizeof(err), "batch size %lld is outside 1..%d (max-batch-size)",
                     (long long)n, m->c.max_batch);
        }
        batch = (int)n;
    } else if (!st && m->batch_dynamic) {
        batch = 1;
    }
    if (st) {
        mreq_free(q);
        return model_reply_error(r, m, st, err);
    }
    mreq *full = mreq_new(app, r, m, MREQ_INFER, batch);
    if (!full) {
        mreq_free(q);
        return model_reply_error(r, m, 500, "out of memory");
    }
    full->kreq = q->kreq; /* moves ownership of the converted tensors */
    free(q);
    uint64_t key = 1469598103934665603ull;
    for (int i = 0; i < m->n_in; i++) {
        full->job.inputs[i] = full->kreq.inputs[i].data;
        for (int d = 1; d < full->kreq.inputs[i].rank; d++)
            key = (key ^ (uint64_t)full->kreq.inputs[i].shape[d]) * 1099511628211ull;
    }
    full->job.shape_key = key;
    return mreq_submit(full);
}

/* ---- classify ---- */

static int parse_top_k(app_request *r, int *k)
{
    *k = 5;
    const char *q = r->query, *end = r->query + r->query_len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        if (!amp) amp = end;
        if (amp - q > 6 && !memcmp(q, "top_k=", 6)) {
            int v = 0;
            const char *p = q + 6;
            if (p == amp) return -1;
            for (; p < amp; p++) {
                if (*p < '0' || *p > '9' || v > 100000) return -1;
                v = v * 10 + (*p - '0');
            }
            if (v < 1) return -1;
            *k = v;
        }
        q = amp + 1;
    }
    return 0;
}

static int classify(app_model *app, app_request *r, model *m)
{
    if (!m->prep.channels || m->n_in != 1 || m->out[0].dtype != KSERVE_FP32 ||
        (!m->batch_dynamic && m->c.max_batch != 1))
        return model_reply_error(r, m, 400,
                                 "this model does not take an image (classify needs one FP32 "
                                 "input shaped [N,C,H,W], [N,H,W,C] or [N,K] with image-size)");
    int top_k;
    if (parse_top_k(r, &top_k))
        return model_reply_error(r, m, 400, "top_k must be a positive integer");
    if (r->body_len == 0)
        return model_reply_error(r, m, 400, "empty body: send a JPEG or PNG image");
    image img;
    char err[256];
    int rc =
        image_decode(r->body, r->body_len, m->prep.channels, &app->img_lim, &img, err, sizeof(err));
    if (rc)
        return model_reply_error(r, m,
                                 rc == -ENOTSUP  ? 415
                                 : rc == -E2BIG  ? 413
                                 : rc == -ENOMEM ? 500
                                                 : 400,
                                 err);
    mreq *q = mreq_new(app, r, m, MREQ_CLASSIFY, 1);
    if (q) q->image = malloc(m->in_item[0]);
    if (!q || !q->image || image_preprocess(&img, &m->prep, q->image)) {
        image_free(&img);
        if (q) mreq_free(q);
        return model_reply_error(r, m, 500, "out of memory");
    }
    image_free(&img);
    q->top_k = top_k;
    q->job.inputs[0] = q->image;
    return mreq_submit(q);
}

/* Scores: the output itself when it already is a probability vector, else its softmax. */
static void scores(const float *x, int n, float *p)
{
    double sum = 0;
    bool probs = true;
    for (int i = 0; i < n; i++) {
        if (!(x[i] >= 0 && x[i] <= 1)) probs = false;
        sum += x[i];
    }
    if (probs && fabs(sum - 1) < 1e-3) {
        memcpy(p, x, (size_t)n * sizeof(float));
        return;
    }
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    sum = 0;
    for (int i = 0; i < n; i++) sum += p[i] = expf(x[i] - mx);
    for (int i = 0; i < n; i++) p[i] = (float)(p[i] / sum);
}

static int write_top_k(buf *b, model *m, const float *out, int n, int k)
{
    float *p = malloc((size_t)n * sizeof(float));
    if (!p) return -ENOMEM;
    scores(out, n, p);
    if (k > n) k = n;
    int rc = buf_puts(b, "{\"model_name\":");
    if (!rc) rc = buf_json_str(b, m->c.name, strlen(m->c.name));
    if (!rc) rc = buf_puts(b, ",\"predictions\":[");
    for (int j = 0; j < k && !rc; j++) {
        int best = -1; /* selection: k is small next to n */
        for (int i = 0; i < n; i++)
            if (p[i] >= 0 && (best < 0 || p[i] > p[best])) best = i;
        if (best < 0) break; /* the rest are NaN: a broken model, not a crash */
        char label[32], score[16];
        const char *l = best < m->n_labels ? m->labels[best] : label;
        snprintf(label, sizeof(label), "%d", best);
        json_fmt_f32(score, p[best]);
        rc = buf_printf(b, "%s{\"label\":", j ? "," : "");
        if (!rc) rc = buf_json_str(b, l, strlen(l));
        if (!rc) rc = buf_printf(b, ",\"index\":%d,\"score\":%s}", best, score);
        p[best] = -1;
    }
    free(p);
    return rc ? rc : buf_puts(b, "]}");
}

/* ---- completion (loop) ---- */

static void finish_ok(mreq *q, buf *b)
{
    app_request *r = q->r;
    model *m = q->m;
    if (q->kind == MREQ_HELLO) {
        reply(r, 200, "text/plain", "Hello, World!", 13);
        return;
    }
    if (q->kind == MREQ_CLASSIFY) {
        int n = (int)(m->out_item[0] / sizeof(float));
        if (write_top_k(b, m, q->outputs[0], n, q->top_k)) {
            model_reply_error(r, NULL, 500, "out of memory");
            return;
        }
        reply(r, 200, "application/json", b->data, b->len);
        return;
    }
    kserve_result res[BATCHER_MAX_IO];
    int64_t shapes[BATCHER_MAX_IO][KSERVE_MAX_RANK];
    for (int i = 0; i < m->n_out; i++) {
        const kserve_io *o = &m->out[i];
        memcpy(shapes[i], o->shape, sizeof(shapes[i]));
        if (o->rank > 0 && m->batch_dynamic) shapes[i][0] = q->batch;
        size_t esz = kserve_dtype_size(o->dtype);
        res[i] = (kserve_result){
            o->name,   o->dtype,      o->rank,
            shapes[i], q->outputs[i], (size_t)q->batch * m->out_item[i] / (esz ? esz : 1)};
    }
    size_t jlen = 0;
    if (kserve_response_write(b, &jlen, m->c.name, &q->kreq, res, m->n_out)) {
        model_reply_error(r, NULL, 500, "out of memory");
        return;
    }
    if (jlen) {
        char v[32];
        int n = snprintf(v, sizeof(v), "%zu", jlen);
        app_add_header(r, "Inference-Header-Content-Length", 31, v, (size_t)n);
    }
    reply(r, 200, jlen ? "application/octet-stream" : "application/json", b->data, b->len);
}

void mreq_finish(mreq *q)
{
    buf b = BUF_INIT;
    char msg[256];
    switch (q->job.status) {
    case BATCHER_OK: finish_ok(q, &b); break;
    case BATCHER_TIMEOUT:
        snprintf(msg, sizeof(msg), "Request timeout expired (model-timeout-ms %lld)",
                 (long long)q->m->c.timeout_ms);
        model_reply_error(q->r, NULL, 503, msg);
        break;
    case BATCHER_BACKEND:
        snprintf(msg, sizeof(msg), "inference failed: %s", q->job.err);
        /* -ENG_EINVAL from a run is the request's data (an index out of
         * range, named with its node): the client's error, not ours */
        model_reply_error(q->r, NULL, !strncmp(q->job.err, "invalid argument: ", 18) ? 400 : 500,
                          msg);
        break;
    case BATCHER_CANCELLED: /* nobody to answer: the core closes the connection */
        model_reply_error(q->r, NULL, 503, "client went away");
        break;
    default: model_reply_error(q->r, NULL, 503, "the worker is shutting down"); break;
    }
    buf_free(&b);
    app_finish(q->r);
    mreq_free(q);
}

/* ---- routing ---- */

/* Resolves a model for a request; answers 404/503 itself and returns NULL. */
static model *usable(app_model *app, app_request *r, const char *name, size_t len)
{
    model *m = model_find(app, name, len);
    char msg[ENG_ERRLEN + 128];
    if (!m) {
        snprintf(msg, sizeof(msg), "unknown model '%.*s'", (int)(len > 64 ? 64 : len), name);
        model_reply_error(r, NULL, 404, msg);
        return NULL;
    }
    if (!m->em || !m->b) {
        snprintf(msg, sizeof(msg), "model '%s' is not available: %s", m->c.name,
                 m->em ? "not started in this worker" : m->err);
        model_reply_error(r, NULL, 503, msg);
        return NULL;
    }
    return m;
}

static int metadata(app_request *r, model *m)
{
    buf b = BUF_INIT;
    kserve_metadata_write(&b, m->c.name, m->in, m->n_in, m->out, m->n_out);
    reply(r, 200, "application/json", b.data, b.len);
    buf_free(&b);
    return APP_DONE;
}

static int server_ready(app_model *app)
{
    for (int i = 0; i < app->n; i++)
        if (app->models[i].b && !__atomic_load_n(&app->models[i].ready, __ATOMIC_ACQUIRE)) return 0;
    return 1;
}

/* GET /v2/models[/NAME]/stats: Triton's statistics extension; m NULL: all loaded models. */
static int stats_reply(app_model *app, app_request *r, model *m)
{
    buf b = BUF_INIT;
    int rc = buf_puts(&b, "{\"model_stats\":[");
    bool first = true;
    for (int i = 0; i < app->n && !rc; i++) {
        model *x = &app->models[i];
        if ((m && x != m) || !x->em) continue;
        if (!first) rc = buf_puts(&b, ",");
        first = false;
        if (!rc) rc = batcher_stats_json(&b, x->c.name, x->slots, app->nslots);
    }
    if (!rc) rc = buf_puts(&b, "]}");
    if (rc)
        model_reply_error(r, NULL, 500, "out of memory");
    else
        reply(r, 200, "application/json", b.data, b.len);
    buf_free(&b);
    return APP_DONE;
}

/* /v2/models/NAME[/versions/1][/ACTION] */
static int models_route(app_model *app, app_request *r, const char *p)
{
    const char *slash = strchr(p, '/');
    size_t nlen = slash ? (size_t)(slash - p) : strlen(p);
    const char *action = slash ? slash : "";
    if (!strncmp(action, "/versions/", 10)) {
        const char *v = action + 10, *e = strchr(v, '/');
        if (strncmp(v, "1", e ? (size_t)(e - v) : strlen(v)) || (e ? e - v : (long)strlen(v)) != 1)
            return model_reply_error(r, NULL, 404, "unknown model version (only version 1 exists)");
        action = e ? e : "";
    }
    if (!strcmp(action, "/stats")) {
        if (!want_get(r)) return not_allowed(r, "GET");
        model *m = usable(app, r, p, nlen);
        return m ? stats_reply(app, r, m) : APP_DONE;
    }
    if (!strcmp(action, "/ready")) {
        if (!want_get(r)) return not_allowed(r, "GET");
        model *m = model_find(app, p, nlen);
        if (!m) return model_reply_error(r, NULL, 404, "unknown model");
        bool ok = m->b && __atomic_load_n(&m->ready, __ATOMIC_ACQUIRE);
        return reply(r, ok ? 200 : 400, NULL, NULL, 0);
    }
    bool post = !strcmp(action, "/infer") || !strcmp(action, "/classify");
    if (!post && action[0]) return model_reply_error(r, NULL, 404, "unknown endpoint");
    if (post && !method_is(r, "POST")) return not_allowed(r, "POST");
    if (!post && !want_get(r)) return not_allowed(r, "GET");
    model *m = usable(app, r, p, nlen);
    if (!m) return APP_DONE;
    if (!post) return metadata(r, m);
    return !strcmp(action, "/infer") ? infer(app, r, m) : classify(app, r, m);
}

static int v2_handler(app_request *r, void *data)
{
    app_model *app = data;
    const char *p = r->path_info;
    if (!strcmp(p, "") || !strcmp(p, "/")) {
        if (!want_get(r)) return not_allowed(r, "GET");
        static const char meta[] =
            "{\"name\":\"aiserve\",\"version\":\"" AISERVE_VERSION
            "\",\"extensions\":[\"binary_tensor_data\",\"classification\",\"statistics\"]}";
        return reply(r, 200, "application/json", meta, sizeof(meta) - 1);
    }
    if (!strcmp(p, "/health/live") || !strcmp(p, "/health/ready")) {
        if (!want_get(r)) return not_allowed(r, "GET");
        bool ok = p[8] == 'l' || server_ready(app);
        return reply(r, ok ? 200 : 400, NULL, NULL, 0);
    }
    if (!strcmp(p, "/models/stats")) {
        if (!want_get(r)) return not_allowed(r, "GET");
        return stats_reply(app, r, NULL);
    }
    if (!strncmp(p, "/models/", 8) && p[8]) return models_route(app, r, p + 8);
    return model_reply_error(r, NULL, 404, "unknown endpoint");
}

static int predict_handler(app_request *r, void *data)
{
    app_model *app = data;
    const char *p = r->path_info;
    if (p[0] != '/' || !p[1] || strchr(p + 1, '/'))
        return model_reply_error(r, NULL, 404, "use POST /predict/MODEL with an image body");
    if (!method_is(r, "POST")) return not_allowed(r, "POST");
    model *m = usable(app, r, p + 1, strlen(p + 1));
    return m ? classify(app, r, m) : APP_DONE;
}

static int hello_handler(app_request *r, void *data)
{
    mroute *rt = data;
    if (strcmp(r->path_info, "") && strcmp(r->path_info, "/"))
        return model_reply_error(r, NULL, 404, "not found");
    if (!want_get(r)) return not_allowed(r, "GET");
    app_model *app = rt->app;
    model *m = usable(app, r, rt->m->c.name, strlen(rt->m->c.name));
    if (!m) return APP_DONE;
    /* zeros hold one sample, or the fixed batch of a model that runs only that */
    int batch = m->batch_dynamic ? 1 : m->c.max_batch;
    mreq *q = mreq_new(app, r, m, MREQ_HELLO, batch);
    if (!q) return model_reply_error(r, m, 500, "out of memory");
    for (int i = 0; i < m->n_in; i++) q->job.inputs[i] = m->zeros[i];
    return mreq_submit(q);
}

/* Registers every route it can. A path another app already took is named in
 * err; the routes that did register stay (the core keeps them), so the
 * caller must keep the state alive either way. Returns the failures. */
int model_http_register(app_model *app, app_ctx *ctx, char *err, size_t errlen)
{
    int failed = 0;
    const char *taken = NULL;
    if (app_route_add(ctx, "/v2", APP_RUN_LOOP, v2_handler, app)) failed++, taken = "/v2";
    if (app_route_add(ctx, "/predict", APP_RUN_LOOP, predict_handler, app))
        failed++, taken = "/predict";
    for (int i = 0; i < app->nroutes; i++) {
        app->routes[i].app = app;
        if (app_route_add(ctx, app->routes[i].path, APP_RUN_LOOP, hello_handler, &app->routes[i]))
            failed++, taken = app->routes[i].path;
    }
    if (failed)
        snprintf(err, errlen, "path %s is already taken%s", taken,
                 failed > 1 ? " (and other model paths)" : "");
    return failed;
}
