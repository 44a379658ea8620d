/* ctx: eng_ctx, one inference stream over a shared model. Plans (primitives,
 * memory layout) are built per batch size on first use and kept; the arena and
 * scratchpad grow to the largest plan built so far. */
#include "engine/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eng_ctx {
    const eng_model *m;
    int threads, max_batch;
    ep_plan **plans; /* [max_batch + 1], NULL until built */
    void *arena, *scratch;
    size_t arena_sz, scratch_sz;
    dnnl_stream_t stream;
    char err[ENG_ERRLEN];
};

eng_ctx *eng_ctx_create(const eng_model *m, const eng_ctx_opts *opts, char *err, size_t errlen)
{
    int threads = opts ? opts->threads : 1, max_batch = opts ? opts->max_batch : 1;
    if (!m) {
        eg_err(err, errlen, ENG_EINVAL, "no model");
        return NULL;
    }
    if (threads < 1 || threads > 1024 || max_batch < 1 || max_batch > 65536) {
        eg_err(err, errlen, ENG_EINVAL,
               "threads must be 1..1024 and max_batch 1..65536 (got %d, %d)", threads, max_batch);
        return NULL;
    }
    if (m->fixed_batch && max_batch != 1) {
        eg_err(err, errlen, ENG_EINVAL,
               "the model has a fixed batch dimension: max_batch must be 1");
        return NULL;
    }
    eng_ctx *c = calloc(1, sizeof(*c));
    if (!c || !(c->plans = calloc((size_t)max_batch + 1, sizeof(ep_plan *)))) {
        free(c);
        eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        return NULL;
    }
    c->m = m;
    c->threads = threads;
    c->max_batch = max_batch;
    if (m->dnn && dnnl_stream_create(&c->stream, m->dnn, dnnl_stream_default_flags)) {
        eg_err(err, errlen, ENG_EBACKEND, "oneDNN stream creation failed");
        free(c->plans);
        free(c);
        return NULL;
    }
    return c;
}

void eng_ctx_free(eng_ctx *c)
{
    if (!c) return;
    for (int b = 0; b <= c->max_batch; b++) ep_plan_free(c->plans[b]);
    free(c->plans);
    free(c->arena);
    free(c->scratch);
    if (c->stream) dnnl_stream_destroy(c->stream);
    free(c);
}

static int grow(void **buf, size_t *cur, size_t need)
{
    if (need <= *cur && *buf) return 0;
    void *n = eg_alloc(need ? need : 64);
    if (!n) return -ENG_ENOMEM;
    free(*buf);
    *buf = n;
    *cur = need;
    return 0;
}

static ep_plan *get_plan(eng_ctx *c, int batch)
{
    if (c->plans[batch]) return c->plans[batch];
    ed_set_threads(c->threads);
    ep_plan *p = ep_plan_build(c->m, batch, c->threads, c->err, sizeof(c->err));
    if (!p) return NULL;
    if (grow(&c->arena, &c->arena_sz, ep_plan_arena(p)) ||
        grow(&c->scratch, &c->scratch_sz, ep_plan_scratch(p))) {
        ep_plan_free(p);
        eg_err(c->err, sizeof(c->err), ENG_ENOMEM, "out of memory for activations");
        return NULL;
    }
    c->plans[batch] = p;
    return p;
}

int eng_ctx_run(eng_ctx *c, int batch, const void *const *inputs, void *const *outputs)
{
    if (!c) return -ENG_EINVAL;
    c->err[0] = 0;
    if (batch < 1 || batch > c->max_batch)
        return eg_err(c->err, sizeof(c->err), ENG_EINVAL, "batch %d outside 1..%d", batch,
                      c->max_batch);
    const eg_graph *g = c->m->g;
    for (int k = 0; k < g->ninputs; k++)
        if (!inputs || !inputs[k])
            return eg_err(c->err, sizeof(c->err), ENG_EINVAL, "input %d is NULL", k);
    for (int k = 0; k < g->noutputs; k++)
        if (!outputs || !outputs[k])
            return eg_err(c->err, sizeof(c->err), ENG_EINVAL, "output %d is NULL", k);
    ep_plan *p = get_plan(c, batch);
    if (!p) return -ENG_EBACKEND;
    ed_set_threads(c->threads);
    return ep_plan_run(p, c->stream, c->arena, c->scratch, inputs, outputs, c->err, sizeof(c->err));
}

int eng_ctx_warmup(eng_ctx *c, const int *batches, int n)
{
    if (!c || (n > 0 && !batches)) return -ENG_EINVAL;
    const eng_model *m = c->m;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        int b = batches[i];
        if (b < 1 || b > c->max_batch)
            return eg_err(c->err, sizeof(c->err), ENG_EINVAL, "warm-up batch %d outside 1..%d", b,
                          c->max_batch);
        void *ins[64] = {0}, *outs[64] = {0};
        if (m->g->ninputs > 64 || m->g->noutputs > 64) return -ENG_EUNSUPPORTED;
        for (int k = 0; k < m->g->ninputs && !rc; k++)
            if (!(ins[k] = eg_alloc((size_t)(m->ins[k].item_count * b) * 8))) rc = -ENG_ENOMEM;
        for (int k = 0; k < m->g->noutputs && !rc; k++)
            if (!(outs[k] = eg_alloc((size_t)(m->outs[k].item_count * b) * 8))) rc = -ENG_ENOMEM;
        if (!rc) rc = eng_ctx_run(c, b, (const void *const *)ins, outs);
        for (int k = 0; k < 64; k++) {
            free(ins[k]);
            free(outs[k]);
        }
    }
    return rc;
}

const char *eng_ctx_error(const eng_ctx *c)
{
    return c ? c->err : "no context";
}

size_t eng_ctx_describe(eng_ctx *c, int batch, char *buf, size_t cap)
{
    if (cap) buf[0] = 0;
    if (!c || batch < 1 || batch > c->max_batch) return 0;
    ep_plan *p = get_plan(c, batch);
    if (!p) return 0;
    size_t n = ep_plan_describe(p, buf, cap);
    int priv = ep_plan_private_weights(p);
    if (priv) {
        char line[96];
        int k = snprintf(line, sizeof(line), "weights in another layout (model cache): %d\n", priv);
        if (n + (size_t)k < cap) memcpy(buf + n, line, (size_t)k + 1);
        n += (size_t)k;
    }
    return n;
}
