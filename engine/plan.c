/* plan: the execution plan of one batch size, built from the optimised graph.
 *
 * Building: shapes and foldable constants come from ei_infer; each remaining
 * node becomes a step, on oneDNN when ed_supports says so (activations in NHWC),
 * else on the reference kernels (which want NCHW unless flagged EK_NHWC_OK);
 * layout conversions are inserted where a tensor crosses between the two and
 * cached so each tensor converts at most once. Then every runtime tensor gets an
 * offset in one arena, reusing the space of tensors whose last reader has run.
 *
 * Running: only pointers are patched (arena, caller's inputs, scratchpad), so a
 * run allocates nothing. */
#include "engine/model.h"

#include "engine/gemv.h"
#include "engine/irb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { VK_NONE, VK_CONST, VK_INPUT, VK_ARENA };
/* ST_QUANT: the int8 input of the next step; ST_VIEW: a Reshape-like node whose
 * output takes over its input's arena slot (same bytes, new dims): nothing runs;
 * ST_PERM: a Transpose of a channel-splitting Reshape of an NHWC tensor, run as
 * one strided gather from the NHWC bytes (no nhwc->nchw conversion first) */
enum {
    ST_REF,
    ST_DNNL,
    ST_TO_NHWC,
    ST_TO_NCHW,
    ST_QUANT,
    ST_VIEW,
    ST_PERM,
    ST_CAT,
    ST_FOLDED,
    ST_BIN2D,
    ST_MAXARG,
    ST_IRB,
    ST_GEMV
};
#define ARG_SCRATCH (-2)
#define ARG_FIXED   (-3)
#define MAX_ARGS    8

typedef struct ep_arg {
    int arg;
    int val; /* plan value, ARG_SCRATCH or ARG_FIXED (handle set at build) */
    dnnl_memory_t mem;
} ep_arg;

typedef struct ep_step {
    int kind;
    int node;
    int nin, nout;
    int in[EG_MAX_IN], out[EG_MAX_OUT]; /* plan values; -1 when omitted */
    ed_layer l;
    int nargs;
    ep_arg args[MAX_ARGS];
    int64_t sst[ENG_MAX_RANK]; /* ST_PERM: source stride of each output dim */
    /* ST_CAT (an NHWC channel Concat): input k gives cnt[k] channels per pixel,
     * from channel coff[k] of its pixels of crow[k] channels (a Split's source) */
    int64_t coff[EG_MAX_IN], crow[EG_MAX_IN], cnt[EG_MAX_IN];
    int32_t *pmap[EG_MAX_IN];   /* ST_CAT: source pixel of each output pixel (a folded
                                   nearest Resize), or NULL: the same pixel */
    const struct ef_block *irb; /* ST_IRB: the fused block (shared by the model) */
    const struct ev_gemv *gemv; /* ST_GEMV: the packed weights (shared by the model) */
} ep_step;

struct ep_plan {
    const eng_model *m;
    int batch;
    int nv, cap;
    ek_view *v;
    int *kind;
    int64_t *off;
    int *input_of; /* plan value -> graph input index, -1 */
    int *alias;    /* plan value -> value whose arena slot it takes over, -1 */
    ei_views *iv;
    int *to_nhwc, *to_nchw; /* graph value -> converted plan value, -1 */
    uint8_t *split_nhwc;    /* graph value: a Reshape view of NHWC bytes (ST_PERM reads it) */
    int *sig_after;         /* Conv node -> the Sigmoid it may apply as a post-op, -1 */
    uint8_t *sig_done;      /* Sigmoid node: its Conv applied it; the node is a view */
    int nsteps, cap_steps;
    ep_step *steps;
    size_t arena, scratch;
    int priv;          /* convs whose weights come from the alternative-layout cache */
    float *range;      /* calibration: [min, max] of int8-eligible Conv inputs */
    double *step_time; /* profiling: seconds per step, summed over timed_runs */
    int timed_runs;
};

static int new_value(ep_plan *p, const ek_view *like, int nhwc)
{
    if (p->nv == p->cap) {
        int cap = p->cap * 2;
        ek_view *v = realloc(p->v, (size_t)cap * sizeof(*v));
        int *k = v ? realloc(p->kind, (size_t)cap * sizeof(int)) : NULL;
        int64_t *o = k ? realloc(p->off, (size_t)cap * sizeof(int64_t)) : NULL;
        int *io = o ? realloc(p->input_of, (size_t)cap * sizeof(int)) : NULL;
        if (v) p->v = v;
        if (k) p->kind = k;
        if (o) p->off = o;
        if (io) p->input_of = io;
        int *al = io ? realloc(p->alias, (size_t)cap * sizeof(int)) : NULL;
        if (!al) return -1;
        p->alias = al;
        p->cap = cap;
    }
    p->v[p->nv] = *like;
    p->v[p->nv].nhwc = nhwc;
    p->v[p->nv].data = NULL;
    p->kind[p->nv] = VK_ARENA;
    p->off[p->nv] = -1;
    p->input_of[p->nv] = -1;
    p->alias[p->nv] = -1;
    return p->nv++;
}

static ep_step *new_step(ep_plan *p, int kind, int node)
{
    if (p->nsteps == p->cap_steps) {
        int cap = p->cap_steps ? p->cap_steps * 2 : 64;
        ep_step *s = realloc(p->steps, (size_t)cap * sizeof(*s));
        if (!s) return NULL;
        p->steps = s;
        p->cap_steps = cap;
    }
    ep_step *s = &p->steps[p->nsteps++];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->node = node;
    return s;
}

/* Plan value holding graph value `val` in the wanted layout (converting once). */
static int in_layout(ep_plan *p, int val, int nhwc)
{
    if (val < 0 || p->v[val].rank != 4 || p->v[val].nhwc == nhwc || p->v[val].dtype != ENG_FLOAT)
        return val;
    int *cache = nhwc ? p->to_nhwc : p->to_nchw;
    if (val < p->iv->n && cache[val] >= 0) return cache[val];
    int t = new_value(p, &p->v[val], nhwc);
    ep_step *s = t < 0 ? NULL : new_step(p, nhwc ? ST_TO_NHWC : ST_TO_NCHW, -1);
    if (!s) return -1;
    s->nin = s->nout = 1;
    s->in[0] = val;
    s->out[0] = t;
    if (val < p->iv->n) cache[val] = t;
    return t;
}

static int add_arg(ep_plan *p, ep_step *s, int arg, int val, const dnnl_memory_desc_t *md,
                   void *fixed)
{
    ep_arg *a = &s->args[s->nargs];
    a->arg = arg;
    a->val = val;
    if (dnnl_memory_create(&a->mem, md, p->m->dnn, fixed ? fixed : DNNL_MEMORY_NONE))
        return -ENG_EBACKEND;
    s->nargs++;
    return 0;
}

static const dnnl_memory_desc_t *qmd(const ed_layer *l, dnnl_query_t q, int idx)
{
    return dnnl_primitive_desc_query_md(l->pd, q, idx);
}

/* Undoes the last new_step: its memory objects and primitive. */
static void drop_step(ep_plan *p)
{
    ep_step *s = &p->steps[--p->nsteps];
    for (int k = 0; k < s->nargs; k++) dnnl_memory_destroy(s->args[k].mem);
    ed_layer_free(&s->l);
}

/* The quantizing step in front of an int8 Conv: returns the plan value of the
 * u8/s8 copy of in0, or -1 (the Conv then stays f32). */
static int quant_step(ep_plan *p, int ni, int in0)
{
    int q = new_value(p, &p->v[in0], 1);
    ep_step *s = q < 0 ? NULL : new_step(p, ST_QUANT, ni);
    if (!s) return -1;
    p->v[q].dtype = ENG_BOOL; /* 1-byte elements: the u8/s8 copy only oneDNN reads */
    s->nin = s->nout = 1;
    s->in[0] = in0;
    s->out[0] = q;
    snprintf(s->l.impl, sizeof(s->l.impl), "quantize %s (c-kernel)",
             p->m->conv[ni].q_unsigned ? "u8" : "s8");
    return q;
}

/* Creates the oneDNN step of node ni; returns 1 when the node must fall back to
 * the reference kernels instead. */
static int dnnl_step(ep_plan *p, int ni, int threads, char *err, size_t errlen)
{
    const eng_model *m = p->m;
    const eg_node *n = &m->g->nodes[ni];
    int is_conv = n->op == EG_OP_CONV || n->op == EG_OP_CONVTRANSPOSE,
        has_w = ed_has_weights(n->op) && n->nin > 1 && p->v[n->in[1]].data,
        act = is_conv || n->op == EG_OP_MAXPOOL || n->op == EG_OP_AVGPOOL;
    int in0 = act ? in_layout(p, n->in[0], 1) : n->in[0];
    int sum = is_conv && n->sum_in >= 0 ? in_layout(p, n->sum_in, 1) : -1;
    int out = n->out[0];
    if (in0 < 0 || (is_conv && n->sum_in >= 0 && sum < 0))
        return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    p->v[out].nhwc = act && p->v[out].rank == 4;
    int q = has_w && m->conv[ni].q_in > 0 && eq_eligible(m, ni) ? quant_step(p, ni, in0) : -1;
    ek_view *in[EG_MAX_IN] = {0};
    for (int k = 0; k < n->nin; k++) in[k] = n->in[k] >= 0 ? &p->v[n->in[k]] : NULL;
    in[0] = &p->v[q >= 0 ? q : in0];
    ep_step *s = new_step(p, ST_DNNL, ni);
    if (!s) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    void *w = NULL;
    int inplace = sum >= 0 && ed_sum_inplace(m->g, ni) && p->kind[sum] == VK_ARENA;
    s->l.sum_inplace = inplace;
    int rc = 1;
    if (q >= 0) { /* int8 (calibrated model): else this Conv stays f32 */
        rc = ed_create_int8(m, ni, in, &p->v[out], m->conv[ni].q_unsigned, eq_out_scales(m, ni),
                            threads, &s->l, err, errlen);
        if (!rc && (strstr(s->l.impl, "ref") ||
                    !(w = (void *)eq_weights(m, ni, in[1], qmd(&s->l, dnnl_query_weights_md, 0)))))
            rc = 1;
        if (rc) {
            drop_step(p); /* the Conv, then its quantizing step */
            drop_step(p);
            q = -1, w = NULL;
            in[0] = &p->v[in0];
            s = new_step(p, ST_DNNL, ni);
            s->l.sum_inplace = inplace;
        }
    }
    s->l.post_sigmoid = q < 0 && p->sig_after[ni] >= 0;
    if (q < 0)
        rc = ed_create(m, ni, in, &p->v[out], has_w ? &m->conv[ni].wmd : NULL, threads, &s->l, err,
                       errlen);
    if (q < 0 && has_w && (rc || strstr(s->l.impl, "ref"))) {
        /* The load-time layout does not suit this batch/thread count: let oneDNN
         * pick, and take that layout from the model's shared cache. */
        int sig = s->l.post_sigmoid;
        ed_layer_free(&s->l);
        s->l.sum_inplace = inplace;
        s->l.post_sigmoid = sig;
        rc = ed_create(m, ni, in, &p->v[out], NULL, threads, &s->l, err, errlen);
        if (!rc &&
            !(w = (void *)ed_conv_weights(m, ni, in[1], qmd(&s->l, dnnl_query_weights_md, 0))))
            rc = eg_err(err, errlen, ENG_EBACKEND, "node '%s': weight reorder failed", n->name);
        p->priv++;
    }
    if (!rc && !has_w && n->op == EG_OP_MATMUL && strstr(s->l.impl, "ref"))
        rc = 1; /* oneDNN's reference matmul: the C kernel is no slower */
    if (rc) {
        ed_layer_free(&s->l);
        p->nsteps--;
        p->v[out].nhwc = 0;
        return 1;
    }
    if (s->l.post_sigmoid) p->sig_done[p->sig_after[ni]] = 1;
    s->nin = 1;
    s->in[0] = q >= 0 ? q : in0;
    s->nout = 1;
    s->out[0] = out;
    rc = add_arg(p, s, DNNL_ARG_SRC, s->in[0], qmd(&s->l, dnnl_query_src_md, 0), NULL);
    rc = rc ? rc : add_arg(p, s, DNNL_ARG_DST, out, qmd(&s->l, dnnl_query_dst_md, 0), NULL);
    if (n->op == EG_OP_MATMUL && !has_w) { /* activation x activation */
        s->in[s->nin++] = n->in[1];
        rc = rc ? rc
                : add_arg(p, s, DNNL_ARG_WEIGHTS, n->in[1], qmd(&s->l, dnnl_query_weights_md, 0),
                          NULL);
    } else if (n->op == EG_OP_CONV || n->op == EG_OP_GEMM || n->op == EG_OP_MATMUL ||
               n->op == EG_OP_CONVTRANSPOSE) {
        void *wd = w ? w : m->conv[ni].w;
        rc = rc ? rc
                : add_arg(p, s, DNNL_ARG_WEIGHTS, ARG_FIXED, qmd(&s->l, dnnl_query_weights_md, 0),
                          wd);
        if (n->nin > 2 && n->in[2] >= 0) /* Gemm's C or a fused MatMul bias */
            rc = rc ? rc
                    : add_arg(p, s, DNNL_ARG_BIAS, ARG_FIXED, qmd(&s->l, dnnl_query_weights_md, 1),
                              q >= 0 ? (void *)eq_bias(m, ni) : p->v[n->in[2]].data);
    }
    if (sum >= 0) {
        int arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(ed_sum_index(n)) | DNNL_ARG_SRC_1;
        s->in[s->nin++] = sum;
        if (inplace)
            p->alias[out] = sum; /* dst is the residual's slot */
        else
            rc = rc ? rc : add_arg(p, s, arg, sum, qmd(&s->l, dnnl_query_exec_arg_md, arg), NULL);
    }
    const dnnl_memory_desc_t *sp = qmd(&s->l, dnnl_query_scratchpad_md, 0);
    size_t sps = sp ? dnnl_memory_desc_get_size(sp) : 0;
    if (sps) {
        rc = rc ? rc : add_arg(p, s, DNNL_ARG_SCRATCHPAD, ARG_SCRATCH, sp, NULL);
        p->scratch = sps > p->scratch ? sps : p->scratch;
    }
    return rc;
}

static int ref_step(ep_plan *p, int ni, char *err, size_t errlen)
{
    const eg_node *n = &p->m->g->nodes[ni];
    const ek_op *op = ek_op_get(n->op);
    int ins[EG_MAX_IN];
    int all_nhwc = 1;
    for (int k = 0; k < n->nin; k++)
        if (n->in[k] >= 0) all_nhwc &= p->v[n->in[k]].nhwc;
    /* Concat stays in NHWC only when every input is NHWC and it joins channels */
    int64_t axis = n->op == EG_OP_CONCAT ? eg_attr_int(n, "axis", p->m->g->opset < 4 ? 1 : 0) : 1;
    int concat_ok = all_nhwc && (axis == 1 || axis == -3);
    int keep = (op->flags & EK_NHWC_OK) && (n->op != EG_OP_CONCAT || concat_ok);
    for (int k = 0; k < n->nin; k++) {
        ins[k] = keep ? n->in[k] : in_layout(p, n->in[k], 0);
        if (n->in[k] >= 0 && ins[k] < 0) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    }
    int sum = n->sum_in >= 0 ? in_layout(p, n->sum_in, 0) : -1;
    ep_step *s = new_step(p, ST_REF, ni);
    if (!s) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    s->nin = n->nin;
    memcpy(s->in, ins, sizeof(int) * (size_t)n->nin);
    if (sum >= 0) {
        for (int k = s->nin; k < 3; k++) s->in[k] = -1;
        s->in[3] = sum;
        s->nin = 4;
    }
    s->nout = n->nout;
    memcpy(s->out, n->out, sizeof(int) * (size_t)n->nout);
    ek_args a;
    memset(&a, 0, sizeof(a));
    a.node = n;
    a.opset = p->m->g->opset;
    a.err = err;
    a.errlen = errlen;
    a.nin = s->nin;
    a.nout = s->nout;
    for (int k = 0; k < s->nin; k++) a.in[k] = s->in[k] >= 0 ? &p->v[s->in[k]] : NULL;
    for (int k = 0; k < s->nout; k++) a.out[k] = s->out[k] >= 0 ? &p->v[s->out[k]] : NULL;
    /* re-infer with the real layouts: decides whether outputs stay NHWC */
    return op->infer(&a);
}

static int nhwc_split_ok(const ep_plan *p, int ni);
static int sole_reader(const ep_plan *p, int v);

/* The detector head: Conv -> Reshape -> Transpose -> Sigmoid, each read only by
 * the next. The Sigmoid is elementwise, so it commutes with the data movement and
 * runs as the Conv's last post-op (when oneDNN takes the Conv); the Sigmoid node
 * then becomes a view. Fills sig_after for every such Conv. */
static void find_head_sigmoids(ep_plan *p)
{
    const eg_graph *g = p->m->g;
    for (int ni = 0; ni < g->nnodes; ni++) {
        const eg_node *n = &g->nodes[ni];
        p->sig_after[ni] = -1;
        if (n->dead || p->iv->folded[ni] || n->op != EG_OP_CONV || n->nout != 1 || n->out[0] < 0 ||
            n->act1.kind || n->act2.kind || n->sum_in >= 0)
            continue;
        int r = sole_reader(p, n->out[0]);
        if (r < 0 || g->nodes[r].op != EG_OP_RESHAPE || g->nodes[r].out[0] < 0) continue;
        int t = sole_reader(p, g->nodes[r].out[0]);
        if (t < 0 || g->nodes[t].op != EG_OP_TRANSPOSE || g->nodes[t].out[0] < 0) continue;
        int sg = sole_reader(p, g->nodes[t].out[0]);
        if (sg >= 0 && g->nodes[sg].op == EG_OP_SIGMOID && g->nodes[sg].nout == 1 &&
            p->v[g->nodes[t].out[0]].dtype == ENG_FLOAT)
            p->sig_after[ni] = sg;
    }
}

/* A Sigmoid its Conv already applied: the output takes over the input's slot. */
static int sig_view_step(ep_plan *p, int ni)
{
    const eg_node *n = &p->m->g->nodes[ni];
    if (!p->sig_done[ni] || p->kind[n->in[0]] != VK_ARENA) return 0;
    ep_step *s = new_step(p, ST_VIEW, ni);
    if (!s) return 0;
    s->nin = s->nout = 1;
    s->in[0] = n->in[0];
    s->out[0] = n->out[0];
    p->v[n->out[0]].nhwc = p->v[n->in[0]].nhwc;
    p->alias[n->out[0]] = n->in[0];
    return 1;
}

/* Reshape, Flatten, Squeeze and Unsqueeze change dims, not bytes: when the input
 * is a plain (not NHWC) arena tensor that nothing else reads, the output is the
 * same slot and the step copies nothing. Returns 1 when it made such a step. */
static int view_step(ep_plan *p, int ni)
{
    const eg_graph *g = p->m->g;
    const eg_node *n = &g->nodes[ni];
    if ((n->op != EG_OP_RESHAPE && n->op != EG_OP_FLATTEN && n->op != EG_OP_SQUEEZE &&
         n->op != EG_OP_UNSQUEEZE) ||
        n->nout != 1 || n->out[0] < 0 || n->nin < 1 || n->in[0] < 0)
        return 0;
    int in = n->in[0], out = n->out[0], readers = 0;
    const eg_value *gv = &g->values[in];
    /* readers that run (a Shape of it was folded when the plan was inferred) */
    for (int k = 0; k < g->nnodes && readers < 2; k++) {
        const eg_node *r = &g->nodes[k];
        if (r->dead || p->iv->folded[k]) continue;
        for (int j = 0; j < r->nin; j++) readers += r->in[j] == in;
        readers += r->sum_in == in;
    }
    if (p->kind[in] != VK_ARENA || gv->is_output || readers != 1 ||
        p->v[out].dtype != p->v[in].dtype || ek_numel(&p->v[out]) != ek_numel(&p->v[in]))
        return 0;
    int split = p->v[in].rank == 4 && p->v[in].nhwc && nhwc_split_ok(p, ni);
    /* an NHWC input (a conv's) is converted once, and the view taken of that,
     * unless the one reader is a Transpose that can gather from NHWC directly */
    if (!split && p->v[in].rank == 4 && p->v[in].nhwc && (in = in_layout(p, in, 0)) < 0) return 0;
    ep_step *s = new_step(p, ST_VIEW, ni);
    if (!s) return 0;
    s->nin = s->nout = 1;
    s->in[0] = in;
    s->out[0] = out;
    p->v[out].nhwc = 0;
    p->alias[out] = in;
    p->split_nhwc[out] = (uint8_t)split;
    return 1;
}

/* The one running reader of value v, or -1 (none, several, or a graph output). */
static int sole_reader(const ep_plan *p, int v)
{
    const eg_graph *g = p->m->g;
    int who = -1;
    if (g->values[v].is_output) return -1;
    for (int k = 0; k < g->nnodes; k++) {
        const eg_node *r = &g->nodes[k];
        if (r->dead || p->iv->folded[k]) continue;
        int hits = r->sum_in == v;
        for (int j = 0; j < r->nin; j++) hits += r->in[j] == v;
        if (hits && (who >= 0 || hits > 1)) return -1;
        if (hits) who = k;
    }
    return who;
}

/* Reshape node ni of an NHWC [N,C,H,W] tensor to [N,C1..Ck,H,W] (C split only),
 * read by one Transpose: the pair folds into one ST_PERM gather. */
static int nhwc_split_ok(const ep_plan *p, int ni)
{
    const eg_node *n = &p->m->g->nodes[ni];
    const ek_view *x = &p->v[n->in[0]], *y = &p->v[n->out[0]];
    if (n->op != EG_OP_RESHAPE || y->rank < 5 || x->dtype != ENG_FLOAT) return 0;
    int64_t c = 1;
    for (int d = 1; d < y->rank - 2; d++) c *= y->dims[d];
    if (y->dims[0] != x->dims[0] || c != x->dims[1] || y->dims[y->rank - 2] != x->dims[2] ||
        y->dims[y->rank - 1] != x->dims[3])
        return 0;
    int r = sole_reader(p, n->out[0]);
    return r >= 0 && p->m->g->nodes[r].op == EG_OP_TRANSPOSE && p->m->g->nodes[r].nin == 1;
}

/* The Transpose of a split_nhwc view: source strides of the NHWC bytes, permuted.
 * Returns 1 when it made the step. */
static int perm_step(ep_plan *p, int ni)
{
    const eg_node *n = &p->m->g->nodes[ni];
    if (n->op != EG_OP_TRANSPOSE || n->nin != 1 || n->in[0] < 0 || n->nout != 1 ||
        !p->split_nhwc[n->in[0]])
        return 0;
    const ek_view *y = &p->v[n->in[0]];
    const eg_attr *pa = eg_attr_find(n, "perm");
    int r = y->rank, seen[ENG_MAX_RANK] = {0};
    int64_t perm[ENG_MAX_RANK], st[ENG_MAX_RANK];
    for (int i = 0; i < r; i++) {
        perm[i] = pa ? (i < pa->n ? pa->ints[i] : -1) : r - 1 - i;
        if (perm[i] < 0 || perm[i] >= r || seen[perm[i]]++) return 0; /* the C kernel reports */
    }
    if (pa && pa->n != r) return 0;
    /* logical [N, C1..Ck, H, W] over memory [N, H, W, C1..Ck] */
    int64_t h = y->dims[r - 2], w = y->dims[r - 1], c = 1;
    st[r - 1] = 1;
    for (int d = r - 3; d >= 1; d--) st[d] = c, c *= y->dims[d];
    st[r - 1] = c, st[r - 2] = w * c, st[0] = h * w * c;
    ep_step *s = new_step(p, ST_PERM, ni);
    if (!s) return 0;
    s->nin = s->nout = 1;
    s->in[0] = n->in[0];
    s->out[0] = n->out[0];
    for (int i = 0; i < r; i++) s->sst[i] = st[perm[i]];
    p->v[n->out[0]].nhwc = 0;
    return 1;
}

/* Whether a fused residual sum names value v (an in-place sum may write over it
 * before a Concat that reads it through a Split gets to it). */
static int summed_into(const ep_plan *p, int v)
{
    const eg_graph *g = p->m->g;
    for (int k = 0; k < g->nnodes; k++)
        if (!g->nodes[k].dead && g->nodes[k].sum_in == v) return 1;
    return 0;
}

/* A nearest Resize (ref step sp, NHWC, N and C kept) as a map from output pixel
 * to source pixel: the kernel itself resamples a tensor holding each pixel's
 * index, so the map follows every coordinate mode it implements. NULL when the
 * Resize is not nearest or the map is not exact. */
static int32_t *resize_map(const ep_plan *p, const ep_step *sp)
{
    const eg_node *n = &p->m->g->nodes[sp->node];
    const ek_view *x = &p->v[sp->in[0]], *y = &p->v[sp->out[0]];
    if (strcmp(eg_attr_str(n, "mode", "nearest"), "nearest") || x->dims[0] != y->dims[0] ||
        x->dims[1] != y->dims[1] || sp->nin > EG_MAX_IN)
        return NULL;
    int64_t N = x->dims[0], C = x->dims[1], hw = x->dims[2] * x->dims[3],
            ohw = y->dims[2] * y->dims[3];
    if (N * hw >= (1 << 24) || N * ohw > INT32_MAX) return NULL;
    float *xi = malloc((size_t)(N * C * hw) * sizeof(float));
    float *yo = malloc((size_t)(N * C * ohw) * sizeof(float));
    int32_t *map = malloc((size_t)(N * ohw) * sizeof(int32_t) + 1);
    ek_view in[EG_MAX_IN], out = *y;
    ek_args a;
    memset(&a, 0, sizeof(a));
    int ok = xi && yo && map;
    for (int64_t i = 0; ok && i < N * C * hw; i++) /* [n][c][pixel] -> n * hw + pixel */
        xi[i] = (float)((i / (C * hw)) * hw + i % hw);
    for (int k = 0; ok && k < sp->nin; k++)
        if (sp->in[k] >= 0) {
            in[k] = p->v[sp->in[k]];
            a.in[k] = &in[k];
            ok = k == 0 || in[k].data; /* scales, sizes, starts...: known at build only */
        }
    if (ok) {
        in[0].nhwc = 0, in[0].data = xi;
        out.nhwc = 0, out.data = yo;
        char err[64];
        a.node = n, a.opset = p->m->g->opset, a.err = err, a.errlen = sizeof(err);
        a.nin = sp->nin, a.nout = 1, a.out[0] = &out;
        ok = !ek_run(ek_op_get(n->op), &a);
    }
    for (int64_t b = 0; ok && b < N; b++)
        for (int64_t i = 0; ok && i < ohw; i++) {
            float v = yo[b * C * ohw + i]; /* channel 0 of image b */
            ok = v >= (float)(b * hw) && v < (float)((b + 1) * hw) && v == (float)(int32_t)v;
            map[b * ohw + i] = ok ? (int32_t)v : 0;
        }
    free(xi), free(yo);
    if (!ok) free(map);
    return ok ? map : NULL;
}

/* The Concat step just made (NHWC, joining channels): inputs that are parts of
 * an NHWC channel Split read by nothing else are read straight from the Split's
 * source, and the Split stops writing them; runs of adjacent channels of one
 * source merge into one copy per pixel. The step becomes ST_CAT. */
static void concat_fold(ep_plan *p)
{
    ep_step *s = &p->steps[p->nsteps - 1];
    const eg_node *n = &p->m->g->nodes[s->node];
    const ek_view *o = &p->v[s->out[0]];
    if (n->op != EG_OP_CONCAT || s->kind != ST_REF || o->rank != 4 || !o->nhwc ||
        o->dtype != ENG_FLOAT || s->nin < 1)
        return;
    int nin = 0;
    int64_t coff[EG_MAX_IN], crow[EG_MAX_IN], cnt[EG_MAX_IN];
    int in[EG_MAX_IN];
    int32_t *pmap[EG_MAX_IN];
    for (int k = 0; k < s->nin; k++) /* all checked before any step changes */
        if (s->in[k] < 0 || !p->v[s->in[k]].nhwc || p->v[s->in[k]].rank != 4) return;
    for (int k = 0; k < s->nin; k++) {
        int v = s->in[k];
        int src = v;
        int64_t off = 0, row = p->v[v].dims[1];
        ep_step *sp = NULL;
        int part = -1;
        for (int t = p->nsteps - 2; t >= 0 && !sp; t--)
            for (int j = 0; j < p->steps[t].nout; j++)
                if (p->steps[t].out[j] == v) sp = &p->steps[t], part = j;
        const eg_node *sn = sp && sp->node >= 0 ? &p->m->g->nodes[sp->node] : NULL;
        if (sn && sp->kind == ST_REF && sn->op == EG_OP_SPLIT && p->v[sp->in[0]].nhwc &&
            p->v[sp->in[0]].rank == 4 && p->kind[sp->in[0]] == VK_ARENA &&
            !summed_into(p, sp->in[0])) {
            int64_t ax = eg_attr_int(sn, "axis", 0);
            int64_t before = 0;
            /* channels before this part: every output keeps its dims in the plan
             * (one this fold stopped writing too) */
            const eg_node *gn = sn;
            for (int j = 0; j < part; j++)
                before = gn->out[j] < 0 || before < 0 ? -1 : before + p->v[gn->out[j]].dims[1];
            if ((ax == 1 || ax == -3) && before >= 0) {
                src = sp->in[0];
                off = before;
                row = p->v[src].dims[1];
                if (sole_reader(p, v) == s->node)
                    sp->out[part] = -1; /* the Split no longer writes this part */
            }
        }
        int32_t *map = NULL;
        if (sn && sp->kind == ST_REF && sn->op == EG_OP_RESIZE && p->v[sp->in[0]].nhwc &&
            p->v[sp->in[0]].rank == 4 && p->v[sp->in[0]].dtype == ENG_FLOAT &&
            p->kind[sp->in[0]] == VK_ARENA && sole_reader(p, v) == s->node &&
            !summed_into(p, sp->in[0]) && (map = resize_map(p, sp))) {
            /* the Concat reads the upsampled pixels from the Resize's source */
            src = sp->in[0];
            row = p->v[src].dims[1];
            sp->kind = ST_FOLDED;
            sp->nin = sp->nout = 0;
        }
        int64_t c = p->v[v].dims[1];
        if (nin && in[nin - 1] == src && coff[nin - 1] + cnt[nin - 1] == off && !map &&
            !pmap[nin - 1]) {
            cnt[nin - 1] += c; /* adjacent channels of one source: one copy */
            continue;
        }
        in[nin] = src, coff[nin] = off, crow[nin] = row, cnt[nin] = c, pmap[nin] = map;
        nin++;
    }
    s->kind = ST_CAT;
    s->nin = nin;
    for (int k = 0; k < nin; k++)
        s->in[k] = in[k], s->coff[k] = coff[k], s->crow[k] = crow[k], s->cnt[k] = cnt[k],
        s->pmap[k] = pmap[k];
}

static void run_cat(const ep_step *s, const ek_view *o, float *dst, const float *const *src)
{
    int64_t pixels = o->dims[0] * o->dims[2] * o->dims[3], c = o->dims[1];
    for (int64_t i = 0; i < pixels; i++) {
        float *d = dst + i * c;
        for (int k = 0; k < s->nin; k++) {
            int64_t at = s->pmap[k] ? s->pmap[k][i] : i;
            memcpy(d, src[k] + at * s->crow[k] + s->coff[k], (size_t)s->cnt[k] * sizeof(float));
            d += s->cnt[k];
        }
    }
}

/* Where the elements of Slice step sp's output sit in its source, when the
 * Slice cuts only a range of the last axis (step 1): the first element's offset,
 * found by running the Slice kernel itself on a tensor of element indices, and
 * every element checked. -1 otherwise. */
static int64_t slice_offset(const ep_plan *p, const ep_step *sp)
{
    const ek_view *x = &p->v[sp->in[0]], *y = &p->v[sp->out[0]];
    int r = x->rank;
    if (r < 1 || y->rank != r || x->nhwc || y->nhwc || ek_numel(x) >= (1 << 24) ||
        sp->nin > EG_MAX_IN)
        return -1;
    for (int d = 0; d < r - 1; d++)
        if (x->dims[d] != y->dims[d]) return -1;
    int64_t nx = ek_numel(x), ny = ek_numel(y), lx = x->dims[r - 1], ly = y->dims[r - 1];
    float *xi = malloc((size_t)nx * sizeof(float) + 4),
          *yo = malloc((size_t)ny * sizeof(float) + 4);
    ek_view in[EG_MAX_IN], out = *y;
    ek_args a;
    memset(&a, 0, sizeof(a));
    int ok = xi && yo && ny > 0;
    for (int64_t i = 0; ok && i < nx; i++) xi[i] = (float)i;
    for (int k = 0; ok && k < sp->nin; k++)
        if (sp->in[k] >= 0) {
            in[k] = p->v[sp->in[k]];
            a.in[k] = &in[k];
            ok = k == 0 || in[k].data; /* scales, sizes, starts...: known at build only */
        }
    if (ok) {
        in[0].dtype = ENG_FLOAT, in[0].data = xi;
        out.dtype = ENG_FLOAT, out.data = yo;
        char err[64];
        a.node = &p->m->g->nodes[sp->node], a.opset = p->m->g->opset;
        a.err = err, a.errlen = sizeof(err), a.nin = sp->nin, a.nout = 1, a.out[0] = &out;
        ok = !ek_run(ek_op_get(EG_OP_SLICE), &a);
    }
    int64_t start = ok ? (int64_t)yo[0] : -1;
    for (int64_t i = 0; ok && i < ny; i++) ok = yo[i] == (float)((i / ly) * lx + start + i % ly);
    free(xi), free(yo);
    return ok ? start : -1;
}

/* The float Add/Sub/Mul/Div step just made, reading Slice outputs that nothing
 * else reads (the decode's y[..., 4:5] * y[..., 5:]): it reads the slices from
 * their source as [rows, cols] with a row stride instead, and the Slices stop
 * running. Every input must be [rows, cols] or [rows, 1] (broadcast along the
 * row) over the output's leading dims. */
static void slice_fold(ep_plan *p)
{
    ep_step *s = &p->steps[p->nsteps - 1];
    const eg_node *n = &p->m->g->nodes[s->node];
    const ek_view *o = &p->v[s->out[0]];
    if ((n->op != EG_OP_ADD && n->op != EG_OP_SUB && n->op != EG_OP_MUL && n->op != EG_OP_DIV) ||
        s->kind != ST_REF || s->nin != 2 || o->dtype != ENG_FLOAT || o->nhwc || o->rank < 1)
        return;
    int r = o->rank, folds = 0;
    int64_t cols = o->dims[r - 1], off[2], row[2], col[2];
    ep_step *sl[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        int v = s->in[k];
        if (v >= 0 && ek_numel(&p->v[v]) == 1 && p->v[v].dtype == ENG_FLOAT && p->v[v].rank <= r) {
            off[k] = row[k] = col[k] = 0; /* a scalar (the decode's `* 2`): every element */
            continue;
        }
        if (v < 0 || p->v[v].rank != r || p->v[v].nhwc || p->v[v].dtype != ENG_FLOAT) return;
        for (int d = 0; d < r - 1; d++)
            if (p->v[v].dims[d] != o->dims[d]) return;
        int64_t lv = p->v[v].dims[r - 1];
        if (lv != cols && lv != 1) return;
        off[k] = 0, row[k] = lv, col[k] = lv == cols ? 1 : 0;
        for (int t = p->nsteps - 2; t >= 0 && !sl[k]; t--)
            if (p->steps[t].nout == 1 && p->steps[t].out[0] == v) sl[k] = &p->steps[t];
        if (sl[k] && (sl[k]->kind != ST_REF || p->m->g->nodes[sl[k]->node].op != EG_OP_SLICE ||
                      sole_reader(p, v) != s->node || (k == 1 && sl[0] == sl[1]) ||
                      summed_into(p, sl[k]->in[0])))
            sl[k] = NULL;
        int64_t start = sl[k] ? slice_offset(p, sl[k]) : -1;
        if (start < 0) {
            sl[k] = NULL;
            continue;
        }
        off[k] = start, row[k] = p->v[sl[k]->in[0]].dims[r - 1];
        folds++;
    }
    if (!folds) return;
    for (int k = 0; k < 2; k++) {
        if (sl[k]) {
            s->in[k] = sl[k]->in[0];
            sl[k]->kind = ST_FOLDED;
            sl[k]->nin = sl[k]->nout = 0;
        }
        s->coff[k] = off[k], s->crow[k] = row[k], s->cnt[k] = col[k];
    }
    s->kind = ST_BIN2D;
}

/* Whether ref step st is a float ReduceMax (rm) or ArgMax (first index) over the
 * last axis of its input only. */
static int last_axis_max(const ep_plan *p, const ep_step *st, int rm)
{
    const eg_node *n = &p->m->g->nodes[st->node];
    const ek_view *x = st->nin > 0 && st->in[0] >= 0 ? &p->v[st->in[0]] : NULL;
    if (st->kind != ST_REF || n->op != (rm ? EG_OP_REDUCEMAX : EG_OP_ARGMAX) || !x ||
        x->dtype != ENG_FLOAT || x->nhwc || x->rank < 1 || x->dims[x->rank - 1] < 1 ||
        st->nout != 1 || st->out[0] < 0)
        return 0;
    int64_t ax;
    if (!rm) {
        ax = eg_attr_int(n, "axis", 0);
        if (eg_attr_int(n, "select_last_index", 0)) return 0;
    } else if (p->m->g->opset < 18) {
        const eg_attr *a = eg_attr_find(n, "axes");
        if (!a || a->n != 1) return 0;
        ax = a->ints[0];
    } else {
        const ek_view *av = st->nin > 1 && st->in[1] >= 0 ? &p->v[st->in[1]] : NULL;
        if (!av || !av->data || av->dtype != ENG_INT64 || ek_numel(av) != 1) return 0;
        ax = *(const int64_t *)av->data;
    }
    return ax == -1 || ax == x->rank - 1;
}

/* ReduceMax and ArgMax of the same rows (the decode's `conf.max(-1)`): the earlier
 * of the two steps computes both in one pass, the later is folded. */
static void maxarg_fold(ep_plan *p)
{
    ep_step *s = &p->steps[p->nsteps - 1];
    int rm = p->m->g->nodes[s->node].op == EG_OP_REDUCEMAX;
    if (s->kind != ST_REF || !last_axis_max(p, s, rm)) return;
    for (int t = p->nsteps - 2; t >= 0; t--) {
        ep_step *e = &p->steps[t];
        if (e->kind != ST_REF || e->nin < 1 || e->in[0] != s->in[0] || !last_axis_max(p, e, !rm))
            continue;
        int mx = rm ? s->out[0] : e->out[0], arg = rm ? e->out[0] : s->out[0];
        e->kind = ST_MAXARG;
        e->nin = 1;
        e->nout = 2;
        e->out[0] = mx, e->out[1] = arg;
        s->kind = ST_FOLDED;
        s->nin = s->nout = 0;
        return;
    }
}

/* The project Conv step just made closes an inverted residual block (expand
 * and depthwise Conv steps right before it, 1 thread): the fused kernel
 * (irb.c) runs the three, the expand and depthwise steps fold, and their
 * tensors are never allocated. ef_match says where it measured faster. */
static void irb_fold(ep_plan *p, int threads)
{
    if (p->nsteps < 2 || threads != 1) return;
    ep_step *sp = &p->steps[p->nsteps - 1], *sd = sp - 1, *se = p->nsteps > 2 ? sp - 2 : NULL;
    if (sp->kind != ST_DNNL || sd->kind != ST_DNNL || p->m->g->nodes[sp->node].op != EG_OP_CONV ||
        sp->in[0] != sd->out[0])
        return;
    const struct ef_block *b = NULL;
    if (se && se->kind == ST_DNNL && sd->in[0] == se->out[0] && p->v[se->in[0]].nhwc &&
        ef_match(p->m, se->node, sd->node, sp->node, &p->v[se->in[0]], &b))
        ; /* the whole block */
    else if (p->v[sd->in[0]].nhwc && ef_match(p->m, -1, sd->node, sp->node, &p->v[sd->in[0]], &b))
        se = sd; /* depthwise + project (no expand) */
    else
        return;
    for (ep_step *f = se; f != sp; f++) {
        for (int k = 0; k < f->nargs; k++) dnnl_memory_destroy(f->args[k].mem);
        f->nargs = 0;
        ed_layer_free(&f->l);
        f->kind = ST_FOLDED;
        f->nin = f->nout = 0;
    }
    for (int k = 0; k < sp->nargs; k++) dnnl_memory_destroy(sp->args[k].mem);
    sp->nargs = 0;
    ed_layer_free(&sp->l);
    sp->kind = ST_IRB;
    sp->irb = b;
    sp->in[0] = se->in[0]; /* sp->in[1]: the residual, when there is one */
    snprintf(sp->l.impl, sizeof(sp->l.impl), "fused inverted residual block (%s c-kernel)",
             ef_block_isa(b) == EF_ISA_AVX512 ? "avx512" : "avx2");
    size_t need = ef_block_scratch(b);
    p->scratch = need > p->scratch ? need : p->scratch;
}

static void run_bin2d(const ep_step *s, eg_op op, const ek_view *o, float *dst,
                      const float *const *src)
{
    int64_t cols = o->dims[o->rank - 1], rows = cols ? ek_numel(o) / cols : 0;
    for (int64_t i = 0; i < rows; i++) {
        const float *x = src[0] + s->coff[0] + i * s->crow[0],
                    *y = src[1] + s->coff[1] + i * s->crow[1];
        float *d = dst + i * cols;
        int64_t sx = s->cnt[0], sy = s->cnt[1];
        switch (op) {
        case EG_OP_ADD:
            for (int64_t j = 0; j < cols; j++) d[j] = x[j * sx] + y[j * sy];
            break;
        case EG_OP_SUB:
            for (int64_t j = 0; j < cols; j++) d[j] = x[j * sx] - y[j * sy];
            break;
        case EG_OP_MUL:
            if (sx == 0 && sy == 1)
                for (int64_t j = 0; j < cols; j++) d[j] = x[0] * y[j];
            else if (sx == 1 && sy == 0)
                for (int64_t j = 0; j < cols; j++) d[j] = x[j] * y[0];
            else
                for (int64_t j = 0; j < cols; j++) d[j] = x[j * sx] * y[j * sy];
            break;
        default:
            for (int64_t j = 0; j < cols; j++) d[j] = x[j * sx] / y[j * sy];
            break;
        }
    }
}

/* Assigns arena offsets: a tensor's space is reused once its last reader ran. */
static int plan_memory(ep_plan *p, const eg_graph *g)
{
    int *last = malloc((size_t)p->nv * sizeof(int));
    int64_t *fsz = malloc((size_t)(p->nv + 1) * sizeof(int64_t));
    int64_t *foff = malloc((size_t)(p->nv + 1) * sizeof(int64_t));
    uint8_t *given = calloc((size_t)p->nv + 1, 1);
    if (!last || !fsz || !foff || !given) {
        free(last), free(fsz), free(foff), free(given);
        return -ENG_ENOMEM;
    }
    for (int i = 0; i < p->nv; i++) last[i] = -1;
    for (int s = 0; s < p->nsteps; s++)
        for (int k = 0; k < p->steps[s].nin; k++)
            if (p->steps[s].in[k] >= 0) last[p->steps[s].in[k]] = s;
    for (int k = 0; k < g->noutputs; k++) last[g->outputs[k]] = p->nsteps;
    int nfree = 0;
    int64_t top = 0;
    for (int s = 0; s < p->nsteps; s++) {
        ep_step *st = &p->steps[s];
        for (int k = 0; k < st->nout; k++) {
            int v = st->out[k];
            if (v < 0 || p->kind[v] != VK_ARENA || p->off[v] >= 0) continue;
            int64_t need = ((int64_t)ek_bytes(&p->v[v]) + 63) & ~(int64_t)63;
            int al = p->alias[v];
            if (al >= 0 && p->off[al] >= 0) {
                p->off[v] = p->off[al];
                given[al] = 1; /* its slot now belongs to v: never freed as al */
                continue;
            }
            int best = -1;
            for (int f = 0; f < nfree; f++)
                if (fsz[f] >= need && (best < 0 || fsz[f] < fsz[best])) best = f;
            if (best >= 0) {
                p->off[v] = foff[best];
                fsz[best] = fsz[--nfree], foff[best] = foff[nfree];
            } else {
                p->off[v] = top;
                top += need ? need : 64;
            }
        }
        for (int k = 0; k < st->nin; k++) {
            int v = st->in[k];
            if (v < 0 || p->kind[v] != VK_ARENA || last[v] != s || p->off[v] < 0 || given[v])
                continue;
            int dup = 0;
            for (int f = 0; f < nfree; f++) dup |= foff[f] == p->off[v];
            if (!dup) {
                foff[nfree] = p->off[v];
                fsz[nfree++] = ((int64_t)ek_bytes(&p->v[v]) + 63) & ~(int64_t)63;
            }
        }
    }
    p->arena = (size_t)top;
    free(last), free(fsz), free(foff), free(given);
    return 0;
}

static int init_values(ep_plan *p, const eg_graph *g)
{
    p->cap = g->nvalues + 64;
    p->nv = g->nvalues;
    p->v = calloc((size_t)p->cap, sizeof(ek_view));
    p->kind = calloc((size_t)p->cap, sizeof(int));
    p->off = calloc((size_t)p->cap, sizeof(int64_t));
    p->input_of = calloc((size_t)p->cap, sizeof(int));
    p->alias = calloc((size_t)p->cap, sizeof(int));
    p->to_nhwc = malloc((size_t)g->nvalues * sizeof(int) + 1);
    p->to_nchw = malloc((size_t)g->nvalues * sizeof(int) + 1);
    p->split_nhwc = calloc((size_t)g->nvalues + 1, 1);
    p->sig_after = malloc((size_t)g->nnodes * sizeof(int) + 1);
    p->sig_done = calloc((size_t)g->nnodes + 1, 1);
    if (!p->split_nhwc || !p->sig_after || !p->sig_done || !p->v || !p->kind || !p->off ||
        !p->input_of || !p->alias || !p->to_nhwc || !p->to_nchw)
        return -ENG_ENOMEM;
    for (int i = 0; i < g->nvalues; i++) {
        p->v[i] = p->iv->view[i];
        p->kind[i] = p->v[i].data ? VK_CONST : VK_ARENA;
        p->off[i] = -1;
        p->input_of[i] = -1;
        p->alias[i] = -1;
        p->to_nhwc[i] = p->to_nchw[i] = -1;
    }
    for (int k = 0; k < g->ninputs; k++) {
        p->kind[g->inputs[k]] = VK_INPUT;
        p->input_of[g->inputs[k]] = k;
    }
    return 0;
}

static ep_plan *build(const eng_model *m, int batch, const int64_t *const *shapes, int threads,
                      char *err, size_t errlen);

ep_plan *ep_plan_build(const eng_model *m, int batch, int threads, char *err, size_t errlen)
{
    return build(m, batch, NULL, threads, err, errlen);
}

ep_plan *ep_plan_build_shapes(const eng_model *m, const int64_t *const *shapes, int threads,
                              char *err, size_t errlen)
{
    return build(m, 1, shapes, threads, err, errlen);
}

int ep_plan_output_dims(const ep_plan *p, int k, int64_t *dims)
{
    const ek_view *v = &p->v[p->m->g->outputs[k]];
    memcpy(dims, v->dims, sizeof(v->dims));
    return v->rank;
}

static ep_plan *build(const eng_model *m, int batch, const int64_t *const *shapes, int threads,
                      char *err, size_t errlen)
{
    const eg_graph *g = m->g;
    ep_plan *p = calloc(1, sizeof(*p));
    if (!p) {
        eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        return NULL;
    }
    p->m = m;
    p->batch = batch;
    int rc = 0;
    if (m->dynamic && !shapes) {
        eg_err(err, errlen, ENG_EINVAL,
               "the model has dynamic dimensions beyond the batch: runs need input shapes");
        goto fail;
    }
    if (shapes) { /* infer on a view of the graph with this run's input dims */
        eg_graph *gv = es_graph_view(g, shapes, 0);
        if (!gv) goto oom;
        p->iv = ei_infer(gv, batch, 1, err, errlen);
        es_graph_view_free(gv);
        if (!p->iv) goto fail;
    } else if (!(p->iv = ei_infer(g, batch, 1, err, errlen))) {
        goto fail;
    }
    if ((rc = init_values(p, g))) goto oom;
    find_head_sigmoids(p);
    for (int ni = 0; ni < g->nnodes; ni++) {
        const eg_node *n = &g->nodes[ni];
        if (n->dead || p->iv->folded[ni]) continue;
        ek_view *in[EG_MAX_IN] = {0};
        for (int k = 0; k < n->nin; k++) in[k] = n->in[k] >= 0 ? &p->v[n->in[k]] : NULL;
        if (view_step(p, ni) || perm_step(p, ni)) continue;
        if (p->sig_done[ni]) {
            if (sig_view_step(p, ni)) continue;
            rc = eg_err(err, errlen, ENG_ENOMEM, "out of memory");
            goto fail;
        }
        if (n->op == EG_OP_GEMM && !p->sig_done[ni]) {
            const struct ev_gemv *gv = ev_match(m, ni, in[0], threads);
            ep_step *s = gv ? new_step(p, ST_GEMV, ni) : NULL;
            if (s) {
                s->gemv = gv;
                s->nin = s->nout = 1;
                s->in[0] = n->in[0];
                s->out[0] = n->out[0];
                snprintf(s->l.impl, sizeof(s->l.impl), "streaming gemv (%s c-kernel)",
                         ev_gemv_isa(gv) == EF_ISA_AVX512 ? "avx512" : "avx2");
                continue;
            }
        }
        rc = 1;
        if (ed_supports(m, ni, in, n->nin)) rc = dnnl_step(p, ni, threads, err, errlen);
        /* --reference keeps every op its own C step: the plain path folds are
         * checked against */
        if (rc == 0 && n->op == EG_OP_CONV) irb_fold(p, threads);
        if (rc == 1 && !(rc = ref_step(p, ni, err, errlen)) && !m->opts.reference_only)
            concat_fold(p), slice_fold(p), maxarg_fold(p);
        if (rc) goto fail;
    }
    if ((rc = plan_memory(p, g))) goto oom;
    return p;
oom:
    eg_err(err, errlen, ENG_ENOMEM, "out of memory");
fail:
    ep_plan_free(p);
    return NULL;
}

void ep_plan_free(ep_plan *p)
{
    if (!p) return;
    for (int s = 0; s < p->nsteps; s++) {
        ep_step *st = &p->steps[s];
        for (int k = 0; k < st->nargs; k++) dnnl_memory_destroy(st->args[k].mem);
        for (int k = 0; st->kind == ST_CAT && k < st->nin; k++) free(st->pmap[k]);
        ed_layer_free(&st->l);
    }
    ei_views_free(p->iv);
    free(p->steps);
    free(p->v);
    free(p->kind);
    free(p->off);
    free(p->input_of);
    free(p->alias);
    free(p->to_nhwc);
    free(p->to_nchw);
    free(p->split_nhwc);
    free(p->sig_after);
    free(p->sig_done);
    free(p->step_time);
    free(p);
}

size_t ep_plan_arena(const ep_plan *p)
{
    return p->arena;
}
size_t ep_plan_scratch(const ep_plan *p)
{
    return p->scratch;
}
int ep_plan_batch(const ep_plan *p)
{
    return p->batch;
}
int ep_plan_private_weights(const ep_plan *p)
{
    return p->priv;
}

static void *value_ptr(const ep_plan *p, int v, char *arena, const void *const *inputs)
{
    switch (p->kind[v]) {
    case VK_CONST: return p->v[v].data;
    case VK_INPUT: return (void *)inputs[p->input_of[v]];
    default: return arena + p->off[v];
    }
}

void ep_plan_set_ranges(ep_plan *p, float *range)
{
    p->range = range;
}

/* Calibration: widens the recorded input range of int8-eligible Conv `node`. */
static void record_range(ep_plan *p, int node, int v, const float *x)
{
    const ek_view *view = &p->v[v];
    if (view->dtype != ENG_FLOAT) return;
    float lo = p->range[2 * node], hi = p->range[2 * node + 1];
    for (int64_t i = 0, n = ek_numel(view); i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    p->range[2 * node] = lo, p->range[2 * node + 1] = hi;
}

static int run_step(ep_plan *p, ep_step *s, dnnl_stream_t stream, char *arena, void *scratch,
                    const void *const *inputs, char *err, size_t errlen)
{
    if (s->kind == ST_VIEW || s->kind == ST_FOLDED) return 0;
    if (s->kind == ST_GEMV) {
        ev_gemv_run(s->gemv, value_ptr(p, s->in[0], arena, inputs),
                    value_ptr(p, s->out[0], arena, inputs));
        return 0;
    }
    if (s->kind == ST_IRB) {
        const ek_view *x = &p->v[s->in[0]];
        ef_block_run(s->irb, x->dims[0], value_ptr(p, s->in[0], arena, inputs),
                     s->nin > 1 ? value_ptr(p, s->in[1], arena, inputs) : NULL,
                     value_ptr(p, s->out[0], arena, inputs), scratch);
        return 0;
    }
    if (s->kind == ST_MAXARG) {
        const ek_view *x = &p->v[s->in[0]];
        int64_t len = x->dims[x->rank - 1];
        ek_row_max_argmax(value_ptr(p, s->in[0], arena, inputs), ek_numel(x) / len, len,
                          value_ptr(p, s->out[0], arena, inputs),
                          value_ptr(p, s->out[1], arena, inputs));
        return 0;
    }
    if (s->kind == ST_BIN2D) {
        const float *src[2] = {value_ptr(p, s->in[0], arena, inputs),
                               value_ptr(p, s->in[1], arena, inputs)};
        run_bin2d(s, p->m->g->nodes[s->node].op, &p->v[s->out[0]],
                  value_ptr(p, s->out[0], arena, inputs), src);
        return 0;
    }
    if (s->kind == ST_CAT) {
        const float *src[EG_MAX_IN];
        for (int k = 0; k < s->nin; k++) src[k] = value_ptr(p, s->in[k], arena, inputs);
        run_cat(s, &p->v[s->out[0]], value_ptr(p, s->out[0], arena, inputs), src);
        return 0;
    }
    if (s->kind == ST_PERM) {
        const ek_view *o = &p->v[s->out[0]];
        ek_strided_copy(value_ptr(p, s->out[0], arena, inputs),
                        value_ptr(p, s->in[0], arena, inputs), o->rank, o->dims, s->sst,
                        eg_dtype_size(o->dtype));
        return 0;
    }
    if (s->kind == ST_TO_NHWC || s->kind == ST_TO_NCHW) {
        const float *src = value_ptr(p, s->in[0], arena, inputs);
        float *dst = value_ptr(p, s->out[0], arena, inputs);
        if (s->kind == ST_TO_NHWC)
            ek_nchw_to_nhwc(src, dst, p->v[s->in[0]].dims);
        else
            ek_nhwc_to_nchw(src, dst, p->v[s->in[0]].dims);
        return 0;
    }
    if (p->range && s->kind == ST_DNNL && eq_eligible(p->m, s->node))
        record_range(p, s->node, s->in[0], value_ptr(p, s->in[0], arena, inputs));
    if (s->kind == ST_QUANT) {
        const em_conv *c = &p->m->conv[s->node];
        eq_quantize(value_ptr(p, s->in[0], arena, inputs), value_ptr(p, s->out[0], arena, inputs),
                    ek_numel(&p->v[s->in[0]]), c->q_in, c->q_unsigned);
        return 0;
    }
    if (s->kind == ST_DNNL) {
        dnnl_exec_arg_t args[MAX_ARGS];
        for (int k = 0; k < s->nargs; k++) {
            ep_arg *a = &s->args[k];
            if (a->val >= 0)
                dnnl_memory_set_data_handle(a->mem, value_ptr(p, a->val, arena, inputs));
            else if (a->val == ARG_SCRATCH)
                dnnl_memory_set_data_handle(a->mem, scratch);
            args[k].arg = a->arg;
            args[k].memory = a->mem;
        }
        if (dnnl_primitive_execute(s->l.prim, stream, s->nargs, args) != dnnl_success)
            return eg_err(err, errlen, ENG_EBACKEND, "node '%s': oneDNN execution failed",
                          p->m->g->nodes[s->node].name);
        return 0;
    }
    ek_view in[EG_MAX_IN], out[EG_MAX_OUT];
    ek_args a;
    memset(&a, 0, sizeof(a));
    a.node = &p->m->g->nodes[s->node];
    a.opset = p->m->g->opset;
    a.err = err;
    a.errlen = errlen;
    a.nin = s->nin;
    a.nout = s->nout;
    for (int k = 0; k < s->nin; k++)
        if (s->in[k] >= 0) {
            in[k] = p->v[s->in[k]];
            in[k].data = value_ptr(p, s->in[k], arena, inputs);
            a.in[k] = &in[k];
        }
    for (int k = 0; k < s->nout; k++)
        if (s->out[k] >= 0) {
            out[k] = p->v[s->out[k]];
            out[k].data = value_ptr(p, s->out[k], arena, inputs);
            a.out[k] = &out[k];
        }
    return ek_run(ek_op_get(a.node->op), &a);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int ep_plan_set_timing(ep_plan *p, int on)
{
    free(p->step_time);
    p->step_time = on ? calloc((size_t)p->nsteps + 1, sizeof(double)) : NULL;
    p->timed_runs = 0;
    return on && !p->step_time ? -ENG_ENOMEM : 0;
}

int ep_plan_run(ep_plan *p, dnnl_stream_t stream, void *arena, void *scratch,
                const void *const *inputs, void *const *outputs, char *err, size_t errlen)
{
    const eg_graph *g = p->m->g;
    for (int s = 0; s < p->nsteps; s++) {
        double t0 = p->step_time ? now() : 0;
        int rc = run_step(p, &p->steps[s], stream, arena, scratch, inputs, err, errlen);
        if (rc) return rc;
        if (p->step_time)
            p->step_time[s] += now() - t0; /* CPU streams run in order, synchronously */
    }
    if (p->step_time) p->timed_runs++;
    if (stream) dnnl_stream_wait(stream);
    for (int k = 0; k < g->noutputs; k++) {
        int v = g->outputs[k];
        const void *src = value_ptr(p, v, arena, inputs);
        if (p->v[v].rank == 4 && p->v[v].nhwc)
            ek_nhwc_to_nchw(src, outputs[k], p->v[v].dims);
        else
            memcpy(outputs[k], src, ek_bytes(&p->v[v]));
    }
    return 0;
}

size_t ep_plan_describe(const ep_plan *p, char *buf, size_t cap)
{
    size_t len = 0;
    double total = 0;
    for (int s = 0; p->timed_runs && s < p->nsteps; s++) total += p->step_time[s];
    for (int s = 0; s < p->nsteps; s++) {
        const ep_step *st = &p->steps[s];
        const char *name = st->node >= 0 ? p->m->g->nodes[st->node].name : "layout";
        const char *op = st->node >= 0 ? eg_op_name(p->m->g->nodes[st->node].op) : "";
        char line[256];
        int n;
        if (st->kind == ST_DNNL)
            n = snprintf(line, sizeof(line), "%s %s: onednn %s\n", name, op, st->l.impl);
        else if (st->kind == ST_IRB || st->kind == ST_GEMV)
            n = snprintf(line, sizeof(line), "%s %s: %s\n", name, op, st->l.impl);
        else if (st->kind == ST_QUANT)
            n = snprintf(line, sizeof(line), "%s %s: %s\n", name, op, st->l.impl);
        else if (st->kind == ST_REF)
            n = snprintf(line, sizeof(line), "%s %s: c-kernel\n", name, op);
        else if (st->kind == ST_VIEW)
            n = snprintf(line, sizeof(line), "%s %s: view of its input (no copy)\n", name, op);
        else if (st->kind == ST_FOLDED)
            n = snprintf(line, sizeof(line), "%s %s: folded into its %s\n", name, op,
                         p->m->g->nodes[st->node].op == EG_OP_CONV ? "fused inverted residual block"
                         : p->m->g->nodes[st->node].op == EG_OP_SLICE  ? "reader (no copy)"
                         : p->m->g->nodes[st->node].op == EG_OP_RESIZE ? "Concat (no copy)"
                                                                       : "pair (one pass)");
        else if (st->kind == ST_MAXARG)
            n = snprintf(line, sizeof(line), "%s %s: c-kernel, ReduceMax and ArgMax in one pass\n",
                         name, op);
        else if (st->kind == ST_BIN2D)
            n = snprintf(line, sizeof(line), "%s %s: c-kernel, reads its Slice inputs in place\n",
                         name, op);
        else if (st->kind == ST_CAT)
            n = snprintf(line, sizeof(line), "%s %s: c-kernel, %d cop%s per pixel%s\n", name, op,
                         st->nin, st->nin == 1 ? "y" : "ies",
                         st->nin < p->m->g->nodes[st->node].nin ? " (reads split parts in place)"
                                                                : "");
        else if (st->kind == ST_PERM)
            n = snprintf(line, sizeof(line), "%s %s: c-kernel gather from nhwc (no layout step)\n",
                         name, op);
        else
            n = snprintf(line, sizeof(line), "%s: %s\n", name,
                         st->kind == ST_TO_NHWC ? "nchw->nhwc" : "nhwc->nchw");
        if (n > 0 && n < (int)sizeof(line) - 40 && p->timed_runs && total > 0)
            /* "...\n" -> "...  12.3 us  4.5%\n" */
            n = snprintf(line + n - 1, sizeof(line) - (size_t)n + 1, "  %.1f us  %.1f%%\n",
                         p->step_time[s] / p->timed_runs * 1e6, 100 * p->step_time[s] / total) +
                n - 1;
        if (n > 0 && len + (size_t)n < cap) memcpy(buf + len, line, (size_t)n + 1);
        len += n > 0 ? (size_t)n : 0;
    }
    if (p->timed_runs) {
        char line[96];
        int n = snprintf(line, sizeof(line), "total %.3f ms per run, mean of %d runs\n",
                         total / p->timed_runs * 1e3, p->timed_runs);
        if (n > 0 && len + (size_t)n < cap) memcpy(buf + len, line, (size_t)n + 1);
        len += n > 0 ? (size_t)n : 0;
    }
    return len;
}

int ep_plan_kernels(const ep_plan *p, eng_op_kernel *out, int n, int cap)
{
    for (int s = 0; s < p->nsteps; s++) {
        const ep_step *st = &p->steps[s];
        if (st->node < 0 || (st->kind != ST_DNNL && st->kind != ST_REF && st->kind != ST_VIEW &&
                             st->kind != ST_PERM && st->kind != ST_CAT && st->kind != ST_FOLDED &&
                             st->kind != ST_BIN2D && st->kind != ST_MAXARG && st->kind != ST_IRB &&
                             st->kind != ST_GEMV))
            continue;
        const eg_node *nd = &p->m->g->nodes[st->node];
        if (nd->name && !strncmp(nd->name, EP_STANDIN, strlen(EP_STANDIN))) continue;
        const char *op = eg_op_name(nd->op);
        const char *kernel = st->kind == ST_DNNL ? "onednn" : "c"; /* a view is C's */
        int i = 0;
        while (i < n && (strcmp(out[i].op, op) || strcmp(out[i].kernel, kernel))) i++;
        if (i < n) {
            out[i].count++;
        } else if (n < cap) {
            snprintf(out[n].op, sizeof(out[n].op), "%s", op);
            out[n].kernel = kernel;
            out[n++].count = 1;
        }
    }
    return n;
}
