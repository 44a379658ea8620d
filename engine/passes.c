/* passes: load-time graph rewrites. Order (see model.c): fold constants, drop
 * Identity/Dropout, fold BatchNorm into the Conv before it, fuse activations and
 * residual Adds into Convs, remove dead nodes. Each pass keeps node order (the
 * graph stays topologically sorted) and only marks nodes dead. */
#include "engine/graph.h"
#include "engine/infer.h"
#include "engine/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void eg_recount_uses(eg_graph *g)
{
    for (int i = 0; i < g->nvalues; i++) g->values[i].uses = g->values[i].is_output;
    for (int ni = 0; ni < g->nnodes; ni++) {
        const eg_node *n = &g->nodes[ni];
        if (n->dead) continue;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0) g->values[n->in[k]].uses++;
        if (n->sum_in >= 0) g->values[n->sum_in].uses++;
    }
}

static void view_of(const eg_value *v, ek_view *w)
{
    memset(w, 0, sizeof(*w));
    w->dtype = v->dtype;
    w->rank = v->rank;
    memcpy(w->dims, v->dims, sizeof(w->dims));
    w->data = v->data;
}

int eg_fold_constants(eg_graph *g, char *err, size_t errlen)
{
    for (int ni = 0; ni < g->nnodes; ni++) {
        eg_node *n = &g->nodes[ni];
        int ok = !n->dead;
        for (int k = 0; ok && k < n->nin; k++)
            ok = n->in[k] < 0 || g->values[n->in[k]].data != NULL;
        if (!ok) continue;
        ek_view in[EG_MAX_IN], out[EG_MAX_OUT];
        ek_args a;
        memset(&a, 0, sizeof(a));
        a.node = n;
        a.opset = g->opset;
        a.err = err;
        a.errlen = errlen;
        a.nin = n->nin;
        a.nout = n->nout;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0) {
                view_of(&g->values[n->in[k]], &in[k]);
                a.in[k] = &in[k];
            }
        for (int k = 0; k < n->nout; k++) {
            memset(&out[k], 0, sizeof(out[k]));
            a.out[k] = n->out[k] >= 0 ? &out[k] : NULL;
        }
        const ek_op *op = ek_op_get(n->op);
        int rc = op->infer(&a);
        for (int k = 0; !rc && k < n->nout; k++)
            if (a.out[k] && eg_numel_checked(out[k].rank, out[k].dims) < 0)
                rc = eg_err(err, errlen, ENG_ESHAPE, "node '%s': result too large", n->name);
        for (int k = 0; !rc && k < n->nout; k++)
            if (a.out[k] && !(out[k].data = eg_alloc(ek_bytes(&out[k]))))
                rc = eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        if (!rc) rc = ek_run(op, &a);
        if (rc) {
            for (int k = 0; k < n->nout; k++) free(a.out[k] ? out[k].data : NULL);
            return rc;
        }
        for (int k = 0; k < n->nout; k++) {
            if (!a.out[k]) continue;
            eg_value *v = &g->values[n->out[k]];
            v->dtype = out[k].dtype;
            v->rank = out[k].rank;
            memcpy(v->dims, out[k].dims, sizeof(v->dims));
            v->data = out[k].data;
            v->producer = -1;
        }
        n->dead = 1;
    }
    return 0;
}

/* Rewrites every reader of value `from` to read `to`. */
static void replace_uses(eg_graph *g, int from, int to)
{
    for (int ni = 0; ni < g->nnodes; ni++) {
        eg_node *n = &g->nodes[ni];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == from) n->in[k] = to;
        if (n->sum_in == from) n->sum_in = to;
    }
}

void eg_remove_identities(eg_graph *g)
{
    for (int ni = 0; ni < g->nnodes; ni++) {
        eg_node *n = &g->nodes[ni];
        if (n->dead || (n->op != EG_OP_IDENTITY && n->op != EG_OP_DROPOUT)) continue;
        if (n->nin < 1 || n->in[0] < 0 || n->out[0] < 0 || g->values[n->out[0]].is_output) continue;
        if (n->op == EG_OP_DROPOUT &&
            ((n->nout > 1 && n->out[1] >= 0) || (n->nin > 2 && n->in[2] >= 0)))
            continue; /* mask wanted, or training_mode given: keep the checks */
        replace_uses(g, n->out[0], n->in[0]);
        n->dead = 1;
    }
}

/* The Conv that produces value v, if it is live and v's only reader is `reader`. */
static eg_node *sole_conv(eg_graph *g, int v)
{
    if (v < 0 || g->values[v].producer < 0 || g->values[v].uses != 1 || g->values[v].is_output)
        return NULL;
    eg_node *c = &g->nodes[g->values[v].producer];
    return !c->dead && c->op == EG_OP_CONV ? c : NULL;
}

static int const_floats(const eg_graph *g, int v, int64_t n)
{
    return v >= 0 && g->values[v].data && g->values[v].dtype == ENG_FLOAT &&
           eg_numel(g->values[v].rank, g->values[v].dims) == n;
}

void eg_fold_batchnorm(eg_graph *g)
{
    eg_recount_uses(g);
    for (int ni = 0; ni < g->nnodes; ni++) {
        eg_node *bn = &g->nodes[ni];
        if (bn->dead || bn->op != EG_OP_BATCHNORM || bn->nin < 5 || bn->nout != 1) continue;
        eg_node *c = sole_conv(g, bn->in[0]);
        if (!c || c->act1.kind || c->sum_in >= 0 || c->nin < 2) continue;
        eg_value *w = &g->values[c->in[1]];
        if (!w->data || w->dtype != ENG_FLOAT || w->uses != 1 || w->rank < 3) continue;
        int64_t M = w->dims[0], per = eg_numel(w->rank, w->dims) / M;
        int ok = 1;
        for (int k = 1; k < 5; k++) ok &= const_floats(g, bn->in[k], M);
        int has_b = c->nin > 2 && c->in[2] >= 0;
        if (!ok || (has_b && !const_floats(g, c->in[2], M))) continue;
        if (has_b && g->values[c->in[2]].uses != 1) continue;
        int bi = has_b ? c->in[2] : eg_value_add(g, "");
        if (bi < 0) return;
        c = &g->nodes[g->values[bn->in[0]].producer]; /* values may have moved, nodes not */
        w = &g->values[c->in[1]];
        eg_value *b = &g->values[bi];
        if (!has_b) {
            b->dtype = ENG_FLOAT;
            b->rank = 1;
            b->dims[0] = M;
            if (!(b->data = eg_alloc((size_t)M * sizeof(float)))) return;
        }
        const float *sc = g->values[bn->in[1]].data, *be = g->values[bn->in[2]].data,
                    *mu = g->values[bn->in[3]].data, *var = g->values[bn->in[4]].data;
        float eps = eg_attr_float(bn, "epsilon", 1e-5f);
        float *W = w->data, *B = b->data;
        for (int64_t m = 0; m < M; m++) {
            float k = sc[m] / sqrtf(var[m] + eps);
            for (int64_t i = 0; i < per; i++) W[m * per + i] *= k;
            B[m] = (B[m] - mu[m]) * k + be[m];
        }
        c->in[2] = bi;
        if (c->nin < 3) c->nin = 3;
        /* the conv now produces the BN's output */
        int out = bn->out[0];
        g->values[out].producer = (int)(c - g->nodes);
        c->out[0] = out;
        bn->dead = 1;
        eg_recount_uses(g);
    }
}

/* The fused form of a standalone activation node, or 0 if it has none. */
static int act_of(const eg_graph *g, const eg_node *n, eg_act *act)
{
    memset(act, 0, sizeof(*act));
    switch (n->op) {
    case EG_OP_RELU: act->kind = EG_ACT_RELU; return 1;
    case EG_OP_LEAKYRELU:
        act->kind = EG_ACT_RELU;
        act->alpha = eg_attr_float(n, "alpha", 0.01f);
        return 1;
    case EG_OP_SIGMOID: act->kind = EG_ACT_SIGMOID; return 1;
    case EG_OP_HARDSWISH: act->kind = EG_ACT_HARDSWISH; return 1;
    case EG_OP_HARDSIGMOID:
        act->kind = EG_ACT_HARDSIGMOID;
        act->alpha = eg_attr_float(n, "alpha", 0.2f);
        act->beta = eg_attr_float(n, "beta", 0.5f);
        return 1;
    case EG_OP_CLIP:
        act->kind = EG_ACT_CLIP;
        act->alpha = -INFINITY;
        act->beta = INFINITY;
        if (g->opset < 11) {
            act->alpha = eg_attr_float(n, "min", -INFINITY);
            act->beta = eg_attr_float(n, "max", INFINITY);
            return 1;
        }
        for (int k = 1; k < 3 && k < n->nin; k++) {
            if (n->in[k] < 0) continue;
            const eg_value *v = &g->values[n->in[k]];
            if (!v->data || v->dtype != ENG_FLOAT || eg_numel(v->rank, v->dims) != 1) return 0;
            *(k == 1 ? &act->alpha : &act->beta) = *(const float *)v->data;
        }
        return 1;
    default: return 0;
    }
}

static int same_shape(const eg_value *a, const eg_value *b)
{
    return a->rank == b->rank && a->rank >= 0 && !memcmp(a->dims, b->dims, (size_t)a->rank * 8);
}

void eg_fuse_activations(eg_graph *g)
{
    eg_recount_uses(g);
    for (int ni = 0; ni < g->nnodes; ni++) {
        eg_node *n = &g->nodes[ni];
        eg_node *c = NULL;
        if (n->dead || n->nin < 1) continue;
        eg_act act;
        if (act_of(g, n, &act)) {
            c = sole_conv(g, n->in[0]);
            if (!c || (c->sum_in < 0 ? c->act1.kind : c->act2.kind)) continue;
            *(c->sum_in < 0 ? &c->act1 : &c->act2) = act;
        } else if (n->op == EG_OP_ADD && n->nin == 2) {
            /* Conv + Add: the other operand must be a runtime tensor of the same
             * shape (no broadcast), produced before the conv runs. */
            int side = sole_conv(g, n->in[0]) ? 0 : (sole_conv(g, n->in[1]) ? 1 : -1);
            if (side < 0) continue;
            c = sole_conv(g, n->in[side]);
            int other = n->in[!side];
            const eg_value *ov = &g->values[other];
            if (c->sum_in >= 0 || c->act2.kind || ov->data || other == c->out[0] ||
                !same_shape(ov, &g->values[c->out[0]]) || ov->dtype != ENG_FLOAT ||
                ov->producer > (int)(c - g->nodes))
                continue;
            c->sum_in = other;
        } else {
            continue;
        }
        int out = n->out[0];
        g->values[out].producer = (int)(c - g->nodes);
        c->out[0] = out;
        n->dead = 1;
        eg_recount_uses(g);
    }
}

void eg_remove_dead(eg_graph *g)
{
    /* Backwards: a node is dead when none of its outputs is read. */
    eg_recount_uses(g);
    for (int ni = g->nnodes - 1; ni >= 0; ni--) {
        eg_node *n = &g->nodes[ni];
        if (n->dead) continue;
        int used = 0;
        for (int k = 0; k < n->nout; k++) used |= n->out[k] >= 0 && g->values[n->out[k]].uses > 0;
        if (used) continue;
        n->dead = 1;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0) g->values[n->in[k]].uses--;
        if (n->sum_in >= 0) g->values[n->sum_in].uses--;
    }
}
