/* irb_match: finds MobileNetV2's inverted residual blocks in the graph
 * (Conv 1x1 + clip -> depthwise Conv 3x3 + clip -> Conv 1x1 (+ residual)) and
 * decides, per block shape, whether the fused kernel (irb.c) runs it instead
 * of oneDNN's three primitives. The block, with its repacked weights, is made
 * once per model and shared by every plan and context. */
#include "engine/gemv.h"
#include "engine/irb_impl.h"
#include "engine/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The activation as a clip range: none, ReLU or Clip; 0 for anything else. */
static int act_range(const eg_act *a, float *lo, float *hi)
{
    switch (a->kind) {
    case EG_ACT_NONE: *lo = -INFINITY, *hi = INFINITY; return 1;
    case EG_ACT_RELU: *lo = 0, *hi = INFINITY; return a->alpha == 0.0f;
    case EG_ACT_CLIP: *lo = a->alpha, *hi = a->beta; return a->alpha <= a->beta;
    default: return 0;
    }
}

/* A float Conv with constant weights (and bias), group g, kernel k x k, pads p,
 * stride 1 or 2, no dilation; its stride in *stride. */
static int conv_is(const eng_model *m, int ni, int64_t g, int64_t k, int64_t p,
                   const int64_t *xdims, int *stride)
{
    const eg_node *n = &m->g->nodes[ni];
    if (n->op != EG_OP_CONV || n->dead || n->nin < 2 || n->in[1] < 0 || m->conv[ni].q_in > 0)
        return 0;
    const eg_value *w = &m->g->values[n->in[1]];
    if (!w->data || w->dtype != ENG_FLOAT || w->rank != 4 || w->dims[2] != k || w->dims[3] != k ||
        eg_attr_int(n, "group", 1) != g)
        return 0;
    if (n->nin > 2 && n->in[2] >= 0) {
        const eg_value *b = &m->g->values[n->in[2]];
        if (!b->data || b->dtype != ENG_FLOAT || b->rank != 1 || b->dims[0] != w->dims[0]) return 0;
    }
    ek_geom geo;
    int64_t ks[2] = {k, k};
    if (ek_geom_init(&geo, n, xdims, 4, ks, 0, NULL, 0)) return 0;
    for (int d = 1; d <= 2; d++)
        if (geo.dil[d] != 1 || geo.pad_l[d] != p || geo.pad_re[d] != p ||
            geo.stride[d] != geo.stride[1])
            return 0;
    *stride = (int)geo.stride[1];
    return *stride == 1 || *stride == 2;
}

static const float *bias_of(const eng_model *m, int ni)
{
    const eg_node *n = &m->g->nodes[ni];
    return n->nin > 2 && n->in[2] >= 0 ? m->g->values[n->in[2]].data : NULL;
}

/* Whether the fused kernel measured faster than oneDNN's three primitives for
 * this block shape (1 thread, batch 1, MobileNetV2@160 on Zen 4; docs/engine.md
 * has the probes): where the expanded tensor is large, its trips to memory
 * cost more than the fused kernel's less tuned GEMM tiles. AVX-512 (32
 * registers: 12x32 tiles) won from 20x20x192 (300 KB) up, AVX2 (16 registers:
 * 6x16 tiles) from 40x40x144 (900 KB) up; below that oneDNN's brgemm kernels,
 * near the FMA peak on the 576-960-channel blocks, were faster. */
static int measured_faster(const ef_shape *s, int isa)
{
    double bytes = (double)s->h * (double)s->w * (double)s->cexp * 4;
    double min = isa == EF_ISA_AVX512 ? 256e3 : 512e3;
    const char *kb = getenv("AIINFER_FUSE_IRB_KB"); /* probes: another threshold */
    if (kb && *kb) min = atof(kb) * 1e3;
    return bytes >= min;
}

static int same_shape(const ef_shape *a, const ef_shape *b)
{
    return a->h == b->h && a->w == b->w && a->cin == b->cin && a->cexp == b->cexp &&
           a->cout == b->cout && a->stride == b->stride && a->lo1 == b->lo1 && a->hi1 == b->hi1 &&
           a->lo2 == b->lo2 && a->hi2 == b->hi2;
}

int ef_match(const eng_model *m, int ne, int nd, int np, const ek_view *x,
             const struct ef_block **out)
{
    const eg_graph *g = m->g;
    if (m->no_fuse || !m->conv || x->rank != 4 || x->dtype != ENG_FLOAT) return 0;
    const char *env = getenv("AIINFER_FUSE_IRB");
    if (env && !strcmp(env, "0")) return 0;
    /* ne < 0: the block without the expand (the depthwise reads x) */
    const eg_node *e = ne >= 0 ? &g->nodes[ne] : NULL, *d = &g->nodes[nd], *p = &g->nodes[np];
    int s1, s2, s3;
    int64_t cin = x->dims[1];
    if (e &&
        (!conv_is(m, ne, 1, 1, 0, x->dims, &s1) || s1 != 1 || g->values[e->in[1]].dims[1] != cin))
        return 0;
    int64_t cexp = e ? g->values[e->in[1]].dims[0] : cin;
    int64_t ed[4] = {x->dims[0], cexp, x->dims[2], x->dims[3]};
    if (!conv_is(m, nd, cexp, 3, 1, ed, &s2) || g->values[d->in[1]].dims[0] != cexp ||
        g->values[d->in[1]].dims[1] != 1)
        return 0;
    int64_t dd[4] = {x->dims[0], cexp, (x->dims[2] - 1) / s2 + 1, (x->dims[3] - 1) / s2 + 1};
    if (!conv_is(m, np, 1, 1, 0, dd, &s3) || s3 != 1 || g->values[p->in[1]].dims[1] != cexp)
        return 0;
    /* the chain: each tensor read by the next Conv only, and no graph output */
    if ((e && (d->in[0] != e->out[0] || e->sum_in >= 0 || e->act2.kind ||
               g->values[e->out[0]].is_output)) ||
        p->in[0] != d->out[0] || d->sum_in >= 0 || d->act2.kind || p->act1.kind || p->act2.kind ||
        g->values[d->out[0]].is_output)
        return 0;
    int ev = e ? e->out[0] : -1;
    for (int k = 0; k < g->nnodes; k++) {
        const eg_node *r = &g->nodes[k];
        if (r->dead || k == nd || k == np) continue;
        for (int j = 0; j < r->nin; j++)
            if ((ev >= 0 && r->in[j] == ev) || r->in[j] == d->out[0]) return 0;
        if ((ev >= 0 && r->sum_in == ev) || r->sum_in == d->out[0]) return 0;
    }
    ef_shape s = {x->dims[2], x->dims[3], cin, cexp, g->values[p->in[1]].dims[0], s2, 0, 0, 0, 0};
    eg_act none = {EG_ACT_NONE, 0, 0};
    if (!act_range(e ? &e->act1 : &none, &s.lo1, &s.hi1) || !act_range(&d->act1, &s.lo2, &s.hi2) ||
        !ef_shape_ok(&s))
        return 0;
    int isa = ef_isa();
    if (isa == EF_ISA_NONE || (!(env && !strcmp(env, "1")) && !measured_faster(&s, isa))) return 0;
    eng_model *mm = (eng_model *)m; /* the shared cache, under the lock */
    pthread_mutex_lock(&mm->lock);
    em_conv *c = &mm->conv[np];
    if (c->irb && (ef_block_isa(c->irb) != isa || !same_shape(&s, &c->irb->s) ||
                   c->irb->has_expand != (e != NULL))) {
        pthread_mutex_unlock(&mm->lock);
        return 0; /* another shape of the same graph (dynamic dims): oneDNN */
    }
    if (!c->irb)
        c->irb = ef_block_create(&s, isa, e ? g->values[e->in[1]].data : NULL,
                                 e ? bias_of(m, ne) : NULL, g->values[d->in[1]].data,
                                 bias_of(m, nd), g->values[p->in[1]].data, bias_of(m, np));
    *out = c->irb;
    pthread_mutex_unlock(&mm->lock);
    return *out != NULL;
}

/* The live Conv node that produces value v, or -1. */
static int producer_conv(const eg_graph *g, int v)
{
    for (int k = 0; v >= 0 && k < g->nnodes; k++)
        if (!g->nodes[k].dead && g->nodes[k].op == EG_OP_CONV && g->nodes[k].out[0] == v) return k;
    return -1;
}

void ef_prepack(const eng_model *m, const ek_view *views)
{
    const eg_graph *g = m->g;
    if (!m->dnn || m->opts.reference_only || !m->conv) return;
    for (int np = 0; np < g->nnodes; np++) {
        const eg_node *p = &g->nodes[np];
        if (p->dead || p->op != EG_OP_CONV || p->nin < 2) continue;
        int nd = producer_conv(g, p->in[0]);
        int ne = nd >= 0 ? producer_conv(g, g->nodes[nd].in[0]) : -1;
        const struct ef_block *b;
        if (nd < 0 || (ne >= 0 && ef_match(m, ne, nd, np, &views[g->nodes[ne].in[0]], &b)))
            continue;
        ef_match(m, -1, nd, np, &views[g->nodes[nd].in[0]], &b);
    }
    for (int ni = 0; ni < g->nnodes; ni++)
        if (!g->nodes[ni].dead && g->nodes[ni].op == EG_OP_GEMM && g->nodes[ni].in[0] >= 0)
            ev_match(m, ni, &views[g->nodes[ni].in[0]], 1);
}

void ef_model_free(eng_model *m)
{
    for (int i = 0; m->g && m->conv && i < m->g->nnodes; i++) {
        ef_block_free(m->conv[i].irb);
        m->conv[i].irb = NULL;
        ev_gemv_free(m->conv[i].gemv);
        m->conv[i].gemv = NULL;
    }
}
