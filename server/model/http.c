/*
 * server/model/http.c: the model app's HTTP surface.
 *   /v2, /v2/health/{live,ready}, /v2/models, /v2/repository/index,
 *   /v2/models/NAME[/versions/1][/ready|/infer|/classify|/stats]
 *   /predict/NAME            image classification (the short form)
 *   model-route paths        the article's GET / -> forward pass on zeros
 * Handlers run on the event loop and do only microsecond work (route,
 * method, query, sniffing the body), then hand an mreq to the batcher and
 * return APP_PENDING. The work that grows with the body is the mreq's
 * prepare step (infer_prepare, classify_prepare) on the batcher's prepare
 * thread; it validates everything before any allocation a client controls
 * (tensor sizes are bounded by the model's shape x max-batch-size, images
 * by image-max-*). Completions are encoded back on the loop (mreq_finish).
 */
#include "server/model/app_int.h"

#include "lib/base64.h"
#include "lib/json.h"
#include "lib/multipart.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int reply(app_request *r, int status, const char *ctype, const void *body, size_t len)
{
    app_set_status(r, status);
    if (ctype) app_add_header(r, "Content-Type", 12, ctype, strlen(ctype));
    if (len) app_write(r, body, len);
    return APP_DONE;
}

static int method_is(const app_request *r, const char *m)
{
    return http1_method_is(r->method, r->method_len, m);
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

/* Allocates the outputs for batch samples; 0 or -ENOMEM. */
static int mreq_outputs(mreq *q, int batch)
{
    model *m = q->m;
    q->batch = batch;
    q->job.batch = batch;
    for (int i = 0; i < m->n_out; i++) {
        q->outputs[i] = malloc((size_t)batch * q->job.out_bytes[i] + 1);
        if (!q->outputs[i]) return -ENOMEM;
        q->job.outputs[i] = q->outputs[i];
    }
    return 0;
}

/* A request; batch 0: its prepare step (on the prepare thread) sizes it. */
static mreq *mreq_new(app_model *app, app_request *r, model *m, mreq_kind kind, int batch)
{
    mreq *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    q->app = app, q->r = r, q->m = m, q->kind = kind;
    for (int i = 0; i < m->n_in; i++) q->job.in_bytes[i] = m->in_item[i];
    for (int i = 0; i < m->n_out; i++) q->job.out_bytes[i] = m->out_item[i];
    if (batch && mreq_outputs(q, batch)) {
        mreq_free(q);
        return NULL;
    }
    return q;
}

/* Records why a prepare step refused its request; answered on the loop. */
static int prep_fail(mreq *q, int status, const char *msg)
{
    q->fail_status = status;
    snprintf(q->fail_msg, sizeof(q->fail_msg), "%s", msg);
    return -1;
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

/* 1 when the Content-Type header's media type is `type` (case-insensitive prefix up to ';'). */
static bool ctype_is(const app_request *r, const char *type)
{
    const http1_header *h = app_header(r, "Content-Type");
    size_t n = strlen(type);
    return h && h->value_len >= n && !strncasecmp(h->value, type, n) &&
           (h->value_len == n || h->value[n] == ';' || h->value[n] == ' ' || type[n - 1] == '/');
}

/* Prepare thread: parse and check the tensors (a big JSON body takes
 * milliseconds: never on the loop), then size the outputs. */
static int infer_prepare(batcher_job *job)
{
    mreq *q = (mreq *)job;
    model *m = q->m;
    app_request *r = q->r;
    /* Bounds: no tensor beyond the model's sample size x max-batch-size, and
     * no more JSON values than that many elements (plus nesting) can need. */
    size_t max_item = 0, elems = 0;
    for (int i = 0; i < m->n_in; i++) {
        size_t item = m->in_item[i];
        if (m->dynamic) { /* a sample at max-sequence in every dynamic dim */
            item = kserve_dtype_size(m->in[i].dtype);
            for (int d = 1; d < m->in[i].rank; d++)
                item *= (size_t)(m->in[i].shape[d] >= 0 ? m->in[i].shape[d] : m->c.max_seq);
        }
        if (item > max_item) max_item = item;
        elems += item / (kserve_dtype_size(m->in[i].dtype) ? kserve_dtype_size(m->in[i].dtype) : 1);
    }
    char twhy[96], jwhy[128];
    snprintf(twhy, sizeof(twhy), "max-batch-size %d x %zu bytes, the model's largest sample%s",
             m->c.max_batch, max_item, m->dynamic ? " at max-sequence" : "");
    kserve_limits lim = {.max_tensor_bytes = max_item * (size_t)m->c.max_batch,
                         .tensor_why = twhy,
                         .tokens_why = jwhy};
    uint64_t tokens = (uint64_t)elems * (uint64_t)m->c.max_batch * 2 + 4096;
    lim.max_json_tokens = tokens > (1u << 28) ? 1u << 28 : (uint32_t)tokens;
    snprintf(jwhy, sizeof(jwhy),
             "max-batch-size %d x %zu elements a sample%s, 2 values per element + 4096",
             m->c.max_batch, elems, m->dynamic ? " at max-sequence" : "");
    char err[KSERVE_ERRLEN];
    int st = kserve_request_parse(&q->kreq, r->body, r->body_len, q->hlen, &lim, err, sizeof(err));
    if (!st)
        st = kserve_request_check(&q->kreq, m->in, m->n_in, m->out, m->n_out, err, sizeof(err));
    int batch = m->c.max_batch;
    if (!st && m->batch_dynamic && m->in[0].rank > 0) {
        int64_t n = q->kreq.inputs[0].shape[0];
        if (n < 1 || n > m->c.max_batch) {
            st = n < 1 ? 400 : 413;
            snprintf(err, sizeof(err),
                     "batch size %lld is outside 1..%d (max-batch-size %d of model '%s')",
                     (long long)n, m->c.max_batch, m->c.max_batch, m->c.name);
        }
        batch = (int)n;
    } else if (!st && m->batch_dynamic) {
        batch = 1;
    }
    if (!st && m->dynamic) {
        for (int i = 0; i < m->n_in; i++)
            for (int d = 0; d < q->kreq.inputs[i].rank; d++)
                q->in_dims[i][d] = q->kreq.inputs[i].shape[d];
        st = model_size_dynamic(m, q, err, sizeof(err));
    }
    if (st) return prep_fail(q, st, err);
    if (mreq_outputs(q, batch)) return prep_fail(q, 500, "out of memory");
    uint64_t key = 1469598103934665603ull;
    for (int i = 0; i < m->n_in; i++) {
        job->inputs[i] = q->kreq.inputs[i].data;
        for (int d = 1; d < q->kreq.inputs[i].rank; d++)
            key = (key ^ (uint64_t)q->kreq.inputs[i].shape[d]) * 1099511628211ull;
    }
    job->shape_key = key;
    /* The request's own "timeout" may only shorten the model's limit. */
    if (q->kreq.timeout_us) {
        uint64_t d = q->submitted_us + q->kreq.timeout_us;
        if (!job->deadline_us || d < job->deadline_us) job->deadline_us = d;
    }
    return 0;
}

static int infer(app_model *app, app_request *r, model *m)
{
    /* An image (or a form upload) posted here is a common slip: say where it goes. */
    if (image_sniff(r->body, r->body_len) != IMAGE_UNKNOWN || ctype_is(r, "image/") ||
        ctype_is(r, "multipart/form-data")) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "/infer takes KServe v2 tensors (JSON, or Triton's binary extension); to classify "
                 "an image, POST it to /predict/%s (or /v2/models/%s/classify)",
                 m->c.name, m->c.name);
        return model_reply_error(r, m, 415, msg);
    }
    size_t hlen;
    if (parse_header_len(r, &hlen))
        return model_reply_error(r, m, 400, "Inference-Header-Content-Length is not a number");
    mreq *q = mreq_new(app, r, m, MREQ_INFER, 0);
    if (!q) return model_reply_error(r, m, 500, "out of memory");
    q->hlen = hlen;
    q->job.prepare = infer_prepare;
    return mreq_submit(q);
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

/* The image in a multipart/form-data body: the first part that is a JPEG or
 * PNG, else the first file part. 0 or an HTTP status with err. */
static int image_from_form(const app_request *r, const char **data, size_t *len, char *err,
                           size_t errlen)
{
    const http1_header *h = app_header(r, "Content-Type");
    const char *b;
    size_t bl;
    if (multipart_boundary(h->value, h->value_len, &b, &bl))
        return snprintf(err, errlen, "multipart/form-data without a usable boundary parameter"),
               400;
    multipart_part parts[16];
    char perr[128];
    int n = multipart_parse(r->body, r->body_len, b, bl, parts, 16, perr, sizeof(perr));
    if (n < 0) return snprintf(err, errlen, "bad multipart/form-data body: %s", perr), 400;
    int pick = -1;
    for (int i = 0; i < n && pick < 0; i++)
        if (image_sniff(parts[i].data, parts[i].len) != IMAGE_UNKNOWN) pick = i;
    for (int i = 0; i < n && pick < 0; i++)
        if (parts[i].filename) pick = i;
    if (pick < 0)
        return snprintf(err, errlen,
                        "the form has no file part: send the image as a file (curl -F "
                        "image=@photo.jpg, or requests files={'image': f})"),
               400;
    *data = parts[pick].data, *len = parts[pick].len;
    return 0;
}

/* Decodes JSON string token i as base64 into a new buffer (*out, owned). A
 * data URL prefix ("data:image/png;base64,") is skipped. 0 or a status. */
static int b64_token(const json_doc *d, int i, const char *what, uint8_t **out, size_t *len,
                     char *err, size_t errlen)
{
    size_t cap = d->tok[i].len + 1;
    char *s = malloc(cap);
    if (!s) return snprintf(err, errlen, "out of memory"), 500;
    int n = json_str_copy(d, i, s, cap);
    if (n < 0) {
        free(s);
        return snprintf(err, errlen, "%s is not a string", what), 400;
    }
    const char *p = s;
    const char *comma = n > 5 && !strncmp(s, "data:", 5) ? memchr(s, ',', (size_t)n) : NULL;
    if (comma) p = comma + 1;
    size_t plen = (size_t)n - (size_t)(p - s);
    *out = malloc(base64_decoded_max(plen));
    size_t bad = 0;
    ssize_t k = *out ? base64_decode(p, plen, *out, &bad) : -ENOMEM;
    free(s);
    if (k < 0) {
        free(*out);
        *out = NULL;
        if (k == -ENOMEM) return snprintf(err, errlen, "out of memory"), 500;
        return snprintf(err, errlen, "%s is not valid base64 (character %zu)", what, bad), 400;
    }
    *len = (size_t)k;
    return 0;
}

/* The image in a JSON body: {"image": "<base64>"}, {"image": {"b64": "..."}},
 * or a KServe v2 request with one BYTES input holding one base64 element. */
static int image_from_json(mreq *q, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    const app_request *r = q->r;
    json_doc d;
    char jerr[128];
    json_limits jl = {.max_depth = 8, .max_tokens = 256};
    int rc = json_parse(&d, r->body, r->body_len, &jl, jerr, sizeof(jerr));
    if (rc) return snprintf(err, errlen, "invalid JSON body: %s", jerr), rc == -ENOMEM ? 500 : 400;
    int st = 400;
    int img = d.tok[0].type == JSON_OBJECT ? json_obj_get(&d, 0, "image") : -1;
    if (img >= 0 && d.tok[img].type == JSON_OBJECT) img = json_obj_get(&d, img, "b64");
    if (img >= 0) {
        st = b64_token(&d, img, "'image'", out, len, err, errlen);
        goto done;
    }
    int ins = d.tok[0].type == JSON_OBJECT ? json_obj_get(&d, 0, "inputs") : -1;
    if (ins >= 0 && d.tok[ins].type == JSON_ARRAY && d.tok[ins].count == 1) {
        int t = ins + 1;
        int dt = json_obj_get(&d, t, "datatype"), data = json_obj_get(&d, t, "data");
        if (dt < 0 || !json_str_eq(&d, dt, "BYTES") || data < 0) {
            snprintf(err, errlen,
                     "the input must be \"datatype\": \"BYTES\" with \"data\": "
                     "[\"<base64 image>\"]");
            goto done;
        }
        /* the one string leaf of data (flat or nested) */
        int leaf = -1, leaves = 0;
        for (uint32_t k = (uint32_t)data; k < d.tok[data].next; k++)
            if (d.tok[k].type != JSON_ARRAY) leaf = (int)k, leaves++;
        if (leaves != 1) {
            snprintf(err, errlen, "classify takes one image: the BYTES input holds %d elements",
                     leaves);
            goto done;
        }
        st = b64_token(&d, leaf, "the BYTES element", out, len, err, errlen);
        goto done;
    }
    snprintf(err, errlen,
             "a JSON body needs \"image\": \"<base64 JPEG or PNG>\" or one KServe v2 "
             "BYTES input holding it");
done:
    json_doc_free(&d);
    return st;
}

/* Prepare thread: unwrap (form, base64), decode and preprocess the image
 * (a large PNG takes a good part of a second: never on the loop). */
static int classify_prepare(batcher_job *job)
{
    mreq *q = (mreq *)job;
    model *m = q->m;
    app_request *r = q->r;
    image img;
    char err[256];
    const char *data = r->body;
    size_t len = r->body_len;
    uint8_t *owned = NULL;
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    int st = 0;
    if (ctype_is(r, "multipart/form-data"))
        st = image_from_form(r, &data, &len, err, sizeof(err));
    else if (ctype_is(r, "application/json") || (i < len && data[i] == '{'))
        st = image_from_json(q, &owned, &len, err, sizeof(err)), data = (const char *)owned;
    if (st) return prep_fail(q, st, err);
    int rc = image_decode(data, len, m->prep.channels, &q->app->img_lim, &img, err, sizeof(err));
    free(owned);
    if (rc)
        return prep_fail(q,
                         rc == -ENOTSUP  ? 415
                         : rc == -E2BIG  ? 413
                         : rc == -ENOMEM ? 500
                                         : 400,
                         err);
    q->image = malloc(m->in_item[0]);
    rc = !q->image || image_preprocess(&img, &m->prep, q->image) || mreq_outputs(q, 1);
    image_free(&img);
    if (rc) return prep_fail(q, 500, "out of memory");
    job->inputs[0] = q->image;
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
    mreq *q = mreq_new(app, r, m, MREQ_CLASSIFY, 0);
    if (!q) return model_reply_error(r, m, 500, "out of memory");
    q->top_k = top_k;
    q->job.prepare = classify_prepare;
    return mreq_submit(q);
}

/* Scores: the output itself when it already is a probability vector, else its softmax. */
void model_scores(const float *x, int n, float *p)
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
    model_scores(out, n, p);
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
        if (m->dynamic) memcpy(shapes[i], q->out_dims[i], sizeof(q->out_dims[i]));
        if (o->rank > 0 && m->batch_dynamic) shapes[i][0] = q->batch;
        size_t esz = kserve_dtype_size(o->dtype);
        res[i] = (kserve_result){.name = o->name,
                                 .dtype = o->dtype,
                                 .rank = o->rank,
                                 .shape = shapes[i],
                                 .data = q->outputs[i],
                                 .count = (size_t)q->batch * q->job.out_bytes[i] / (esz ? esz : 1),
                                 .labels = (const char *const *)m->labels,
                                 .n_labels = m->n_labels};
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
    char msg[sizeof(q->job.err) + 32];
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
    case BATCHER_BAD_INPUT: model_reply_error(q->r, q->m, 400, q->job.err); break;
    case BATCHER_PREP_FAILED: model_reply_error(q->r, q->m, q->fail_status, q->fail_msg); break;
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

/* The repository index: every configured model with its state. GET /v2/models
 * answers {"models":[{"name","versions","platform","state","reason"}]};
 * POST /v2/repository/index answers Triton's [{"name","version","state","reason"}]
 * ({"ready": true} in the body keeps only the READY ones). */
static int index_reply(app_model *app, app_request *r, bool triton)
{
    bool only_ready = false;
    if (triton && r->body_len) {
        json_doc d;
        char jerr[128];
        json_limits jl = {.max_depth = 4, .max_tokens = 64};
        if (json_parse(&d, r->body, r->body_len, &jl, jerr, sizeof(jerr)) ||
            d.tok[0].type != JSON_OBJECT) {
            if (d.tok) json_doc_free(&d);
            return model_reply_error(r, NULL, 400,
                                     "body must be a JSON object like {\"ready\":true}");
        }
        int k = json_obj_get(&d, 0, "ready");
        bool bad = k >= 0 && d.tok[k].type != JSON_TRUE && d.tok[k].type != JSON_FALSE;
        only_ready = k >= 0 && d.tok[k].type == JSON_TRUE;
        json_doc_free(&d);
        if (bad) return model_reply_error(r, NULL, 400, "'ready' must be a boolean");
    }
    buf b = BUF_INIT;
    int rc = buf_puts(&b, triton ? "[" : "{\"models\":[");
    bool first = true;
    for (int i = 0; i < app->n && !rc; i++) {
        model *m = &app->models[i];
        bool warm = m->b && __atomic_load_n(&m->ready, __ATOMIC_ACQUIRE);
        const char *state = !m->em ? "UNAVAILABLE" : warm ? "READY" : "LOADING";
        if (only_ready && !warm) continue;
        rc = buf_puts(&b, first ? "{\"name\":" : ",{\"name\":");
        first = false;
        if (!rc) rc = buf_json_str(&b, m->c.name, strlen(m->c.name));
        if (!rc)
            rc = buf_printf(&b, "%s,\"state\":\"%s\",\"reason\":",
                            triton ? ",\"version\":\"1\""
                                   : ",\"versions\":[\"1\"],\"platform\":\"onnx_onnxv1\"",
                            state);
        const char *why = m->em ? "" : m->err;
        if (!rc) rc = buf_json_str(&b, why, strlen(why));
        if (!rc) rc = buf_puts(&b, "}");
    }
    if (!rc) rc = buf_puts(&b, triton ? "]" : "]}");
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
        if (p[8] == 'l') return reply(r, 200, NULL, NULL, 0);
        /* Strict readiness: a model that failed to load keeps the server 503, with why. */
        char why[512];
        if (model_failed(app, why, sizeof(why))) return model_reply_error(r, NULL, 503, why);
        return reply(r, server_ready(app) && app_workers_ready(r) ? 200 : 400, NULL, NULL, 0);
    }
    if (!strcmp(p, "/models") || !strcmp(p, "/models/")) {
        if (!want_get(r)) return not_allowed(r, "GET");
        return index_reply(app, r, false);
    }
    if (!strcmp(p, "/repository/index")) {
        if (!method_is(r, "POST")) return not_allowed(r, "POST");
        return index_reply(app, r, true);
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
    mreq *q = mreq_new(app, r, m, MREQ_HELLO, m->dynamic ? 0 : batch);
    if (!q) return model_reply_error(r, m, 500, "out of memory");
    if (m->dynamic) { /* one sample, every dynamic dim at 1 (what m->zeros holds) */
        char err[KSERVE_ERRLEN];
        for (int i = 0; i < m->n_in; i++)
            for (int d = 0; d < m->in[i].rank; d++)
                q->in_dims[i][d] = m->in[i].shape[d] >= 0 ? m->in[i].shape[d] : 1;
        int st = model_size_dynamic(m, q, err, sizeof(err));
        if (st || mreq_outputs(q, 1)) {
            mreq_free(q);
            return model_reply_error(r, m, st ? st : 500, st ? err : "out of memory");
        }
    }
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
        if (app_route_add_exact(ctx, app->routes[i].path, APP_RUN_LOOP, hello_handler,
                                &app->routes[i]))
            failed++, taken = app->routes[i].path;
    }
    if (failed)
        snprintf(err, errlen, "path %s is already taken%s", taken,
                 failed > 1 ? " (and other model paths)" : "");
    return failed;
}
