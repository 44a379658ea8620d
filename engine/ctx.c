/* ctx: eng_ctx, one inference stream over a shared model. Plans (primitives,
 * memory layout) are built per batch size on first use and kept; the arena and
 * scratchpad grow to the largest plan built so far.
 *
 * Thread policy for threads > 1: a batch of at least `threads` items is split
 * into chunks run by 1-thread sub-contexts on our own pthreads, which block on
 * a condition variable between runs (no spinning, no OpenMP pool). A smaller
 * batch runs each layer on `threads` OpenMP threads instead (libgomp spins per
 * OMP_WAIT_POLICY / GOMP_SPINCOUNT).
 *
 * Batch-invariant contexts build only the batch-1 plan, on 1 thread, and run
 * the items of a batch through it one by one from an aligned staging copy of
 * their inputs, so an item meets the same primitive, thread count and input
 * alignment whatever it was batched with; threads > 1 splits a batch of 2 or
 * more over 1-thread batch-invariant sub-contexts. */
#include "engine/model.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTX_SHAPED 8

struct eng_ctx {
    const eng_model *m;
    int threads, max_batch;
    int batch_invariant;
    int plan_threads; /* threads of this context's own plans: 1 when batch-invariant */
    void *stage;      /* batch-invariant: one item of every input, 64-byte aligned */
    size_t stage_sz;
    ep_plan **plans; /* [max_batch + 1], NULL until built */
    void *arena, *scratch;
    size_t arena_sz, scratch_sz;
    dnnl_stream_t stream;
    char err[ENG_ERRLEN];
    /* plans by input shapes (dynamic models), least recently used dropped */
    ep_plan *shaped[CTX_SHAPED];
    int64_t *shaped_key[CTX_SHAPED];
    unsigned shaped_use[CTX_SHAPED], shaped_clock;
    /* batch splitting (threads > 1 and a dynamic batch) */
    int nsub;
    eng_ctx **subs;      /* nsub 1-thread contexts; subs[0] runs on the caller */
    pthread_t *tids;     /* nsub - 1 helpers */
    const void **sub_in; /* [nsub][ninputs] */
    void **sub_out;      /* [nsub][noutputs] */
    int *sub_batch, *sub_rc;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned gen;
    int pending, quit;
};

typedef struct helper_arg {
    eng_ctx *c;
    int k;
} helper_arg;

static void run_sub(eng_ctx *c, int k)
{
    const eng_model *m = c->m;
    c->sub_rc[k] = c->sub_batch[k] ? eng_ctx_run(c->subs[k], c->sub_batch[k],
                                                 c->sub_in + (size_t)k * m->g->ninputs,
                                                 c->sub_out + (size_t)k * m->g->noutputs)
                                   : 0;
}

static void *helper_main(void *p)
{
    helper_arg a = *(helper_arg *)p;
    free(p);
    eng_ctx *c = a.c;
    unsigned seen = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->quit && c->gen == seen) pthread_cond_wait(&c->go, &c->mu);
        if (c->quit) break;
        seen = c->gen;
        pthread_mutex_unlock(&c->mu);
        run_sub(c, a.k);
        pthread_mutex_lock(&c->mu);
        if (--c->pending == 0) pthread_cond_signal(&c->done);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void stop_helpers(eng_ctx *c, int started)
{
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->mu);
    for (int k = 0; k < started; k++) pthread_join(c->tids[k], NULL);
}

/* Sets up nsub 1-thread sub-contexts and nsub - 1 helper threads. */
static int setup_split(eng_ctx *c, char *err, size_t errlen)
{
    const eng_model *m = c->m;
    int n = c->threads, chunk = (c->max_batch + n - 1) / n;
    c->subs = calloc((size_t)n, sizeof(*c->subs));
    c->tids = calloc((size_t)n, sizeof(*c->tids));
    c->sub_in = calloc((size_t)n * (size_t)(m->g->ninputs + 1), sizeof(void *));
    c->sub_out = calloc((size_t)n * (size_t)(m->g->noutputs + 1), sizeof(void *));
    c->sub_batch = calloc((size_t)n, sizeof(int));
    c->sub_rc = calloc((size_t)n, sizeof(int));
    if (!c->subs || !c->tids || !c->sub_in || !c->sub_out || !c->sub_batch || !c->sub_rc)
        return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    eng_ctx_opts so = {.threads = 1, .max_batch = chunk, .batch_invariant = c->batch_invariant};
    for (int k = 0; k < n; k++)
        if (!(c->subs[k] = eng_ctx_create(m, &so, err, errlen))) return -ENG_ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->go, NULL);
    pthread_cond_init(&c->done, NULL);
    c->nsub = n;
    for (int k = 1; k < n; k++) {
        helper_arg *a = malloc(sizeof(*a));
        if (a) *a = (helper_arg){c, k};
        if (!a || pthread_create(&c->tids[k - 1], NULL, helper_main, a)) {
            free(a);
            stop_helpers(c, k - 1);
            c->nsub = 0;
            return eg_err(err, errlen, ENG_ENOMEM, "cannot start helper threads");
        }
    }
    return 0;
}

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
    c->batch_invariant = opts ? opts->batch_invariant != 0 : 0;
    c->plan_threads = c->batch_invariant ? 1 : threads;
    if (m->dnn && dnnl_stream_create(&c->stream, m->dnn, dnnl_stream_default_flags)) {
        eg_err(err, errlen, ENG_EBACKEND, "oneDNN stream creation failed");
        free(c->plans);
        free(c);
        return NULL;
    }
    int split_from = c->batch_invariant ? 2 : threads;
    if (threads > 1 && !m->fixed_batch && max_batch >= split_from && setup_split(c, err, errlen)) {
        eng_ctx_free(c);
        return NULL;
    }
    return c;
}

void eng_ctx_free(eng_ctx *c)
{
    if (!c) return;
    if (c->nsub) {
        stop_helpers(c, c->nsub - 1);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->go);
        pthread_cond_destroy(&c->done);
    }
    for (int k = 0; c->subs && k < c->threads; k++) eng_ctx_free(c->subs[k]);
    free(c->subs);
    free(c->tids);
    free(c->sub_in);
    free(c->sub_out);
    free(c->sub_batch);
    free(c->sub_rc);
    for (int b = 0; b <= c->max_batch; b++) ep_plan_free(c->plans[b]);
    for (int k = 0; k < CTX_SHAPED; k++) {
        ep_plan_free(c->shaped[k]);
        free(c->shaped_key[k]);
    }
    free(c->plans);
    free(c->arena);
    free(c->scratch);
    free(c->stage);
    if (c->stream) dnnl_stream_destroy(c->stream);
    free(c);
}

static int grow(void **buf, size_t *cur, size_t need)
{
    if (need <= *cur && *buf) return 0;
    void *n = eg_alloc_big(need ? need : 64); /* the arena every run streams through */
    if (!n) return -ENG_ENOMEM;
    free(*buf);
    *buf = n;
    *cur = need;
    return 0;
}

static ep_plan *get_plan(eng_ctx *c, int batch)
{
    if (c->plans[batch]) return c->plans[batch];
    ed_set_threads(c->plan_threads);
    ep_plan *p = ep_plan_build(c->m, batch, c->plan_threads, c->err, sizeof(c->err));
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

/* Runs chunks of the batch on the sub-contexts, chunk 0 on the caller. */
static int run_split(eng_ctx *c, int batch, const void *const *inputs, void *const *outputs)
{
    const eng_model *m = c->m;
    int n = c->nsub, ni = m->g->ninputs, no = m->g->noutputs, start = 0;
    for (int k = 0; k < n; k++) {
        c->sub_batch[k] = batch / n + (k < batch % n);
        for (int i = 0; i < ni; i++)
            c->sub_in[k * ni + i] = (const char *)inputs[i] + (size_t)start * m->ins[i].item_count *
                                                                  eg_dtype_size(m->ins[i].dtype);
        for (int i = 0; i < no; i++)
            c->sub_out[k * no + i] = (char *)outputs[i] + (size_t)start * m->outs[i].item_count *
                                                              eg_dtype_size(m->outs[i].dtype);
        start += c->sub_batch[k];
    }
    pthread_mutex_lock(&c->mu);
    c->pending = n - 1;
    c->gen++;
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->mu);
    run_sub(c, 0);
    pthread_mutex_lock(&c->mu);
    while (c->pending) pthread_cond_wait(&c->done, &c->mu);
    pthread_mutex_unlock(&c->mu);
    for (int k = 0; k < n; k++)
        if (c->sub_rc[k]) {
            snprintf(c->err, sizeof(c->err), "%s", eng_ctx_error(c->subs[k]));
            return c->sub_rc[k];
        }
    return 0;
}

/* Batch-invariant run: every item alone through the batch-1 plan, its inputs
 * copied first to the same aligned place (outputs are copied out of the arena
 * by ep_plan_run, so they need no staging). */
static int run_each(eng_ctx *c, int batch, const void *const *inputs, void *const *outputs)
{
    const eng_model *m = c->m;
    int ni = m->g->ninputs, no = m->g->noutputs;
    if (ni > 64 || no > 64)
        return eg_err(c->err, sizeof(c->err), ENG_EUNSUPPORTED, "more than 64 inputs or outputs");
    size_t off[65] = {0};
    for (int k = 0; k < ni; k++)
        off[k + 1] =
            off[k] +
            (((size_t)m->ins[k].item_count * eg_dtype_size(m->ins[k].dtype) + 63) & ~(size_t)63);
    ep_plan *p = get_plan(c, 1);
    if (!p) return -ENG_EBACKEND;
    if (grow(&c->stage, &c->stage_sz, off[ni]))
        return eg_err(c->err, sizeof(c->err), ENG_ENOMEM, "out of memory for inputs");
    const void *in[64];
    void *out[64];
    ed_set_threads(1);
    for (int i = 0; i < batch; i++) {
        for (int k = 0; k < ni; k++) {
            size_t sz = (size_t)m->ins[k].item_count * eg_dtype_size(m->ins[k].dtype);
            memcpy((char *)c->stage + off[k], (const char *)inputs[k] + (size_t)i * sz, sz);
            in[k] = (char *)c->stage + off[k];
        }
        for (int k = 0; k < no; k++)
            out[k] = (char *)outputs[k] +
                     (size_t)i * (size_t)m->outs[k].item_count * eg_dtype_size(m->outs[k].dtype);
        int rc = ep_plan_run(p, c->stream, c->arena, c->scratch, in, out, c->err, sizeof(c->err));
        if (rc) return rc;
    }
    return 0;
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
    if (c->m->dynamic)
        return eg_err(c->err, sizeof(c->err), ENG_EINVAL,
                      "the model has dynamic dimensions beyond the batch: run it with input "
                      "shapes (eng_ctx_run_shapes)");
    if (c->nsub && batch >= (c->batch_invariant ? 2 : c->nsub))
        return run_split(c, batch, inputs, outputs);
    if (c->batch_invariant) return run_each(c, batch, inputs, outputs);
    ep_plan *p = get_plan(c, batch);
    if (!p) return -ENG_EBACKEND;
    ed_set_threads(c->plan_threads);
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
        /* batch-invariant: one item per sub-context builds and warms everything */
        if (c->batch_invariant) b = b < (c->nsub ? c->nsub : 1) ? b : (c->nsub ? c->nsub : 1);
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

/* Plan for explicit input shapes, from the context's small cache. */
static ep_plan *get_shaped(eng_ctx *c, const int64_t *const *shapes)
{
    const eg_graph *g = c->m->g;
    int n = 0;
    for (int k = 0; k < g->ninputs; k++) n += g->values[g->inputs[k]].rank;
    if (es_check_shapes(c->m, shapes, c->err, sizeof(c->err))) return NULL;
    int64_t key[EG_MAX_IN * ENG_MAX_RANK + 1];
    int64_t *kp = n <= (int)(sizeof(key) / sizeof(key[0])) ? key : malloc((size_t)n * 8);
    if (!kp) {
        eg_err(c->err, sizeof(c->err), ENG_ENOMEM, "out of memory");
        return NULL;
    }
    for (int k = 0, i = 0; k < g->ninputs; k++)
        for (int d = 0; d < g->values[g->inputs[k]].rank; d++) kp[i++] = shapes[k][d];
    int slot = 0;
    ep_plan *p = NULL;
    for (int s = 0; s < CTX_SHAPED; s++) {
        if (c->shaped[s] && !memcmp(c->shaped_key[s], kp, (size_t)n * 8)) {
            p = c->shaped[s];
            slot = s;
            break;
        }
        if (!c->shaped[s] || (c->shaped[slot] && c->shaped_use[s] < c->shaped_use[slot])) slot = s;
    }
    if (!p) {
        ed_set_threads(c->threads);
        p = ep_plan_build_shapes(c->m, shapes, c->threads, c->err, sizeof(c->err));
        /* callers size outputs by the model's ranks: a shape that changes one
         * (a Squeeze of a dynamic dim that became 1) is refused */
        for (int k = 0; p && k < g->noutputs; k++) {
            int64_t od[ENG_MAX_RANK];
            int r = ep_plan_output_dims(p, k, od);
            if (r != c->m->outs[k].rank) {
                eg_err(c->err, sizeof(c->err), ENG_ESHAPE,
                       "output '%s' has rank %d for these input shapes, the model's is %d",
                       c->m->outs[k].name, r, c->m->outs[k].rank);
                ep_plan_free(p);
                p = NULL;
            }
        }
        int64_t *kc = p ? malloc((size_t)n * 8 + 8) : NULL;
        if (p && (!kc || grow(&c->arena, &c->arena_sz, ep_plan_arena(p)) ||
                  grow(&c->scratch, &c->scratch_sz, ep_plan_scratch(p)))) {
            ep_plan_free(p);
            free(kc);
            p = NULL;
            eg_err(c->err, sizeof(c->err), ENG_ENOMEM, "out of memory for activations");
        }
        if (p) {
            ep_plan_free(c->shaped[slot]);
            free(c->shaped_key[slot]);
            memcpy(kc, kp, (size_t)n * 8);
            c->shaped[slot] = p;
            c->shaped_key[slot] = kc;
        }
    }
    if (p) c->shaped_use[slot] = ++c->shaped_clock;
    if (kp != key) free(kp);
    return p;
}

int eng_ctx_plan_shapes(eng_ctx *c, const int64_t *const *shapes, int64_t *out_dims)
{
    if (!c) return -ENG_EINVAL;
    c->err[0] = 0;
    ep_plan *p = get_shaped(c, shapes);
    if (!p) return c->err[0] ? -ENG_ESHAPE : -ENG_EBACKEND;
    for (int k = 0; out_dims && k < c->m->g->noutputs; k++)
        ep_plan_output_dims(p, k, out_dims + (size_t)k * ENG_MAX_RANK);
    return 0;
}

int eng_ctx_run_shapes(eng_ctx *c, const int64_t *const *shapes, const void *const *inputs,
                       void *const *outputs)
{
    if (!c) return -ENG_EINVAL;
    c->err[0] = 0;
    const eg_graph *g = c->m->g;
    for (int k = 0; k < g->ninputs; k++)
        if (!inputs || !inputs[k])
            return eg_err(c->err, sizeof(c->err), ENG_EINVAL, "input %d is NULL", k);
    for (int k = 0; k < g->noutputs; k++)
        if (!outputs || !outputs[k])
            return eg_err(c->err, sizeof(c->err), ENG_EINVAL, "output %d is NULL", k);
    ep_plan *p = get_shaped(c, shapes);
    if (!p) return c->err[0] ? -ENG_ESHAPE : -ENG_EBACKEND;
    ed_set_threads(c->threads);
    return ep_plan_run(p, c->stream, c->arena, c->scratch, inputs, outputs, c->err, sizeof(c->err));
}

const char *eng_ctx_error(const eng_ctx *c)
{
    return c ? c->err : "no context";
}

size_t eng_ctx_profile(eng_ctx *c, int batch, int runs, char *buf, size_t cap)
{
    if (cap) buf[0] = 0;
    if (!c || batch < 1 || batch > c->max_batch || runs < 1) return 0;
    if (c->nsub && (c->batch_invariant || batch >= c->nsub)) /* what one thread runs */
        return eng_ctx_profile(c->subs[0], c->batch_invariant ? 1 : (batch + c->nsub - 1) / c->nsub,
                               runs, buf, cap);
    if (c->batch_invariant) batch = 1;
    ep_plan *p = get_plan(c, batch);
    if (!p) return 0;
    const eng_model *m = c->m;
    void *ins[64] = {0}, *outs[64] = {0};
    int rc = m->g->ninputs > 64 || m->g->noutputs > 64 ? -ENG_EUNSUPPORTED : 0;
    for (int k = 0; k < m->g->ninputs && !rc; k++) /* zeros: every dtype's valid value */
        if (!(ins[k] = calloc((size_t)(m->ins[k].item_count * batch) + 1, 8))) rc = -ENG_ENOMEM;
    for (int k = 0; k < m->g->noutputs && !rc; k++)
        if (!(outs[k] = eg_alloc((size_t)(m->outs[k].item_count * batch) * 8 + 8)))
            rc = -ENG_ENOMEM;
    ed_set_threads(c->plan_threads);
    for (int r = -2; r < runs && !rc; r++) { /* two untimed warm-up runs */
        if (r == 0) rc = ep_plan_set_timing(p, 1);
        if (!rc)
            rc = ep_plan_run(p, c->stream, c->arena, c->scratch, (const void *const *)ins, outs,
                             c->err, sizeof(c->err));
    }
    size_t n = rc ? 0 : ep_plan_describe(p, buf, cap);
    if (rc == -ENG_ENOMEM) eg_err(c->err, sizeof(c->err), ENG_ENOMEM, "out of memory");
    ep_plan_set_timing(p, 0);
    for (int k = 0; k < 64; k++) {
        free(ins[k]);
        free(outs[k]);
    }
    return n;
}

size_t eng_ctx_describe(eng_ctx *c, int batch, char *buf, size_t cap)
{
    if (cap) buf[0] = 0;
    if (!c || batch < 1 || batch > c->max_batch) return 0;
    if (c->batch_invariant && batch > 1) {
        int k =
            snprintf(buf, cap,
                     "batch-invariant: each of the %d items runs the batch-1 plan on 1 thread%s:\n",
                     batch, c->nsub ? " (items spread over the threads)" : "");
        size_t used = k > 0 && (size_t)k < cap ? (size_t)k : 0;
        eng_ctx *one = c->nsub ? c->subs[0] : c;
        return used + eng_ctx_describe(one, 1, buf + used, cap - used);
    }
    if (c->nsub && batch >= c->nsub) {
        int k = snprintf(buf, cap, "batch split over %d threads, %d items each at most:\n", c->nsub,
                         (batch + c->nsub - 1) / c->nsub);
        size_t used = k > 0 && (size_t)k < cap ? (size_t)k : 0;
        return used + eng_ctx_describe(c->subs[0], (batch + c->nsub - 1) / c->nsub, buf + used,
                                       cap - used);
    }
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
