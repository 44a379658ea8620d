/* passes_ext: graph passes for the transformer families. */
#include "engine/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bias of an Add that adds a constant [N] (or [1,..,1,N]) vector; -1 if not. */
static int bias_of(const eg_graph *g, const eg_node *add, int v, int64_t n)
{
    if (add->op != EG_OP_ADD || add->nin != 2 || add->dead) return -1;
    int b = add->in[0] == v ? add->in[1] : add->in[1] == v ? add->in[0] : -1;
    if (b < 0 || b == v) return -1;
    const eg_value *bv = &g->values[b];
    if (!bv->data || bv->dtype != ENG_FLOAT || bv->rank < 1 || bv->dims[bv->rank - 1] != n ||
        eg_numel(bv->rank, bv->dims) != n)
        return -1;
    return b;
}

void eg_fuse_matmul_bias(eg_graph *g)
{
    for (int ni = 0; ni < g->nnodes; ni++) {
        eg_node *n = &g->nodes[ni];
        if (n->dead || n->op != EG_OP_MATMUL || n->nin != 2 || n->nout != 1 || n->out[0] < 0)
            continue;
        const eg_value *w = &g->values[n->in[1]];
        int v = n->out[0];
        if (!w->data || w->dtype != ENG_FLOAT || w->rank != 2 || g->values[v].is_output) continue;
        /* the product must have exactly one reader, the Add */
        int reader = -1, readers = 0;
        for (int k = ni + 1; k < g->nnodes; k++) {
            const eg_node *c = &g->nodes[k];
            if (c->dead) continue;
            for (int j = 0; j < c->nin; j++)
                if (c->in[j] == v) reader = k, readers++;
            if (c->sum_in == v) readers += 2;
        }
        if (readers != 1) continue;
        eg_node *add = &g->nodes[reader];
        int b = bias_of(g, add, v, w->dims[1]);
        if (b < 0 || add->nout != 1 || add->out[0] < 0) continue;
        n->in[2] = b;
        n->nin = 3;
        n->out[0] = add->out[0];
        g->values[add->out[0]].producer = ni;
        add->dead = 1;
    }
    eg_recount_uses(g);
}

/* The single live reader of value v (-1 when none or several). */
static int only_reader(const eg_graph *g, int from, int v)
{
    int r = -1, n = 0;
    if (g->values[v].is_output) return -1;
    for (int k = from; k < g->nnodes; k++) {
        const eg_node *c = &g->nodes[k];
        if (c->dead) continue;
        for (int j = 0; j < c->nin; j++)
            if (c->in[j] == v) r = k, n++;
        if (c->sum_in == v) n += 2;
    }
    return n == 1 ? r : -1;
}

/* The other input of a binary node c reading v, if it is a float scalar
 * constant; sets *val. */
static int scalar_other(const eg_graph *g, const eg_node *c, int v, float *val)
{
    if (c->nin != 2 || c->nout != 1 || c->out[0] < 0) return 0;
    int o = c->in[0] == v ? c->in[1] : c->in[1] == v ? c->in[0] : -1;
    if (o < 0 || o == v) return 0;
    const eg_value *ov = &g->values[o];
    if (!ov->data || ov->dtype != ENG_FLOAT || eg_numel(ov->rank, ov->dims) != 1) return 0;
    *val = *(const float *)ov->data;
    return 1;
}

static int near(float a, float b)
{
    return a > b - 1e-4f * b && a < b + 1e-4f * b;
}

void eg_fuse_gelu(eg_graph *g)
{
    for (int ni = 0; ni < g->nnodes; ni++) {
        eg_node *n = &g->nodes[ni];
        if (n->dead || n->op != EG_OP_MATMUL || n->act1.kind || n->nout != 1 || n->out[0] < 0 ||
            !g->values[n->in[1]].data || g->values[n->out[0]].is_output)
            continue;
        int x = n->out[0];
        /* x feeds exactly Div(x, sqrt2) (or Mul(x, 1/sqrt2)) and Mul(x, .) */
        int dv = -1, mu = -1, cnt = 0;
        for (int k = ni + 1; k < g->nnodes; k++) {
            const eg_node *c = &g->nodes[k];
            if (c->dead) continue;
            for (int j = 0; j < c->nin; j++)
                if (c->in[j] == x) {
                    cnt++;
                    float s;
                    if ((c->op == EG_OP_DIV && c->in[0] == x && scalar_other(g, c, x, &s) &&
                         near(s, 1.41421356f)) ||
                        (c->op == EG_OP_MUL && scalar_other(g, c, x, &s) && near(s, 0.70710678f)))
                        dv = k;
                    else if (c->op == EG_OP_MUL)
                        mu = k;
                }
            if (c->sum_in == x) cnt += 2;
        }
        if (cnt != 2 || dv < 0 || mu < 0) continue;
        int erf = only_reader(g, dv + 1, g->nodes[dv].out[0]);
        if (erf < 0 || g->nodes[erf].op != EG_OP_ERF || g->nodes[erf].nout != 1) continue;
        int add = only_reader(g, erf + 1, g->nodes[erf].out[0]);
        float one, half;
        if (add < 0 || g->nodes[add].op != EG_OP_ADD ||
            !scalar_other(g, &g->nodes[add], g->nodes[erf].out[0], &one) || one != 1.0f)
            continue;
        /* Mul(x, 1 + erf) then Mul(., 0.5) */
        const eg_node *m1 = &g->nodes[mu];
        if (m1->nin != 2 || m1->nout != 1 || m1->out[0] < 0 ||
            !((m1->in[0] == x && m1->in[1] == g->nodes[add].out[0]) ||
              (m1->in[1] == x && m1->in[0] == g->nodes[add].out[0])))
            continue;
        int m2 = only_reader(g, mu + 1, m1->out[0]);
        if (m2 < 0 || g->nodes[m2].op != EG_OP_MUL ||
            !scalar_other(g, &g->nodes[m2], m1->out[0], &half) || half != 0.5f ||
            only_reader(g, add + 1, g->nodes[add].out[0]) != mu)
            continue;
        n->act1.kind = EG_ACT_GELU;
        n->out[0] = g->nodes[m2].out[0];
        g->values[n->out[0]].producer = ni;
        g->nodes[dv].dead = g->nodes[erf].dead = g->nodes[add].dead = 1;
        g->nodes[mu].dead = g->nodes[m2].dead = 1;
    }
    eg_recount_uses(g);
}

void eg_fuse_silu(eg_graph *g)
{
    for (int ni = 0; ni < g->nnodes; ni++) {
        eg_node *n = &g->nodes[ni];
        if (n->dead || n->op != EG_OP_CONV || n->act1.kind || n->sum_in >= 0 || n->nout != 1 ||
            n->out[0] < 0 || g->values[n->out[0]].is_output)
            continue;
        int x = n->out[0], sg = -1, mu = -1, cnt = 0;
        for (int k = ni + 1; k < g->nnodes; k++) {
            const eg_node *c = &g->nodes[k];
            if (c->dead) continue;
            for (int j = 0; j < c->nin; j++)
                if (c->in[j] == x) {
                    cnt++;
                    if (c->op == EG_OP_SIGMOID)
                        sg = k;
                    else if (c->op == EG_OP_MUL)
                        mu = k;
                }
            if (c->sum_in == x) cnt += 2;
        }
        if (cnt != 2 || sg < 0 || mu < 0 || g->nodes[sg].nout != 1 || g->nodes[sg].out[0] < 0)
            continue;
        const eg_node *m = &g->nodes[mu];
        int s = g->nodes[sg].out[0];
        if (m->nin != 2 || m->nout != 1 || m->out[0] < 0 ||
            !((m->in[0] == x && m->in[1] == s) || (m->in[1] == x && m->in[0] == s)) ||
            only_reader(g, sg + 1, s) != mu)
            continue;
        n->act1.kind = EG_ACT_SWISH;
        n->out[0] = m->out[0];
        g->values[n->out[0]].producer = ni;
        g->nodes[sg].dead = g->nodes[mu].dead = 1;
    }
    eg_recount_uses(g);
}

/* The producer of v when it is a live `op` node whose output v only `reader`
 * reads; -1 otherwise. */
static int sole_producer(const eg_graph *g, int v, eg_op op, int reader)
{
    int p = v >= 0 ? g->values[v].producer : -1;
    if (p < 0 || g->nodes[p].dead || g->nodes[p].op != op || g->nodes[p].nout != 1 ||
        g->nodes[p].out[0] != v || only_reader(g, p + 1, v) != reader)
        return -1;
    return p;
}

static int is_perm(const eg_node *t, int a, int b, int c, int d)
{
    const eg_attr *p = eg_attr_find(t, "perm");
    return p && p->type == EG_ATTR_INTS && p->n == 4 && p->ints[0] == a && p->ints[1] == b &&
           p->ints[2] == c && p->ints[3] == d;
}

/* A head Transpose of `perm` feeding `reader` only, from a rank-4 activation:
 * its node, else -1. */
static int head_transpose(const eg_graph *g, int v, int reader, int a, int b, int c, int d)
{
    int t = sole_producer(g, v, EG_OP_TRANSPOSE, reader);
    return t >= 0 && is_perm(&g->nodes[t], a, b, c, d) && g->values[g->nodes[t].in[0]].rank == 4
               ? t
               : -1;
}

static int set_attrs(eg_node *n, float scale, const int *flags)
{
    static const char *names[] = {"q_bshd", "k_bshd", "v_bshd", "o_bshd"};
    eg_attr *at = calloc(5, sizeof(eg_attr));
    if (!at) return -1;
    for (int i = 0; i < 5; i++) {
        at[i].name = strdup(i ? names[i - 1] : "scale");
        at[i].tensor = -1;
        at[i].type = i ? EG_ATTR_INT : EG_ATTR_FLOAT;
        if (i) at[i].i = flags[i - 1];
        at[i].f = scale;
        if (!at[i].name) {
            for (int k = 0; k <= i; k++) free(at[k].name);
            free(at);
            return -1;
        }
    }
    free(n->attrs); /* the loader's empty array (nattr is 0: checked by the caller) */
    n->attrs = at;
    n->nattr = 5;
    return 0;
}

/* Q.K^T MatMul behind value x (read by `reader` only), through an optional
 * Div or Mul by a scalar constant (*scale, node in *scl); the MatMul or -1. */
static int match_qk(const eg_graph *g, int x, int reader, float *scale, int *scl)
{
    float c = 1.0f;
    int d = sole_producer(g, x, EG_OP_DIV, reader), m = sole_producer(g, x, EG_OP_MUL, reader);
    *scl = -1;
    if (d >= 0) {
        const eg_node *n = &g->nodes[d];
        if (n->nin != 2 || g->values[n->in[0]].data || !scalar_other(g, n, n->in[0], &c) ||
            c == 0.0f)
            return -1;
        *scl = d, *scale = 1.0f / c, x = n->in[0], reader = d;
    } else if (m >= 0) {
        const eg_node *n = &g->nodes[m];
        if (n->nin != 2) return -1;
        int v = g->values[n->in[0]].data ? n->in[1] : n->in[0];
        if (g->values[v].data || !scalar_other(g, n, v, &c)) return -1;
        *scl = m, *scale = c, x = v, reader = m;
    } else {
        *scale = 1.0f;
    }
    return sole_producer(g, x, EG_OP_MATMUL, reader);
}

void eg_fuse_attention(eg_graph *g)
{
    for (int ni = 0; ni < g->nnodes; ni++) {
        eg_node *pv = &g->nodes[ni];
        if (pv->dead || pv->op != EG_OP_MATMUL || pv->nin != 2 || pv->nout != 1 || pv->out[0] < 0 ||
            pv->act1.kind || pv->nattr || g->values[pv->in[1]].data ||
            g->values[pv->in[1]].rank != 4)
            continue;
        int sm = sole_producer(g, pv->in[0], EG_OP_SOFTMAX, ni);
        if (sm < 0) continue;
        const eg_node *s = &g->nodes[sm];
        int64_t axis = eg_attr_int(s, "axis", g->opset >= 13 ? -1 : 1);
        if (axis != -1 && axis != 3) continue;
        /* optional + mask, optional scale, then Q.K^T */
        int x = s->in[0], add = -1, mask = -1, scl = -1, mm = -1;
        float scale = 1.0f;
        int p = sole_producer(g, x, EG_OP_ADD, sm);
        if (p >= 0 && g->nodes[p].nin == 2) {
            for (int k = 0; k < 2 && mm < 0; k++) {
                int other = g->nodes[p].in[1 - k];
                if (other < 0 || g->values[other].dtype != ENG_FLOAT || g->values[other].rank > 4)
                    continue;
                mm = match_qk(g, g->nodes[p].in[k], p, &scale, &scl);
                if (mm >= 0) add = p, mask = other;
            }
        } else {
            mm = match_qk(g, x, sm, &scale, &scl);
        }
        if (mm < 0) continue;
        const eg_node *qk = &g->nodes[mm];
        if (qk->nin != 2 || qk->act1.kind || g->values[qk->in[0]].data ||
            g->values[qk->in[1]].data || g->values[qk->in[0]].rank != 4 ||
            g->values[qk->in[1]].rank != 4)
            continue;
        int q = qk->in[0], k = qk->in[1], v = pv->in[1], out = pv->out[0];
        /* the kernel wants one K and V per (batch, head): no broadcasting MatMul */
        const int64_t *qd = g->values[q].dims, *kd = g->values[k].dims, *vd = g->values[v].dims;
        if (qd[0] != kd[0] || qd[0] != vd[0] || qd[1] != kd[1] || qd[1] != vd[1]) continue;
        int flags[4] = {0, 0, 0, 0}, tq, tk, tv, to;
        if ((tq = head_transpose(g, q, mm, 0, 2, 1, 3)) >= 0) q = g->nodes[tq].in[0], flags[0] = 1;
        if ((tk = head_transpose(g, k, mm, 0, 2, 3, 1)) >= 0) k = g->nodes[tk].in[0], flags[1] = 1;
        if ((tv = head_transpose(g, v, ni, 0, 2, 1, 3)) >= 0) v = g->nodes[tv].in[0], flags[2] = 1;
        to = only_reader(g, ni + 1, out);
        if (to >= 0 && g->nodes[to].op == EG_OP_TRANSPOSE && g->nodes[to].nout == 1 &&
            g->nodes[to].out[0] >= 0 && is_perm(&g->nodes[to], 0, 2, 1, 3))
            flags[3] = 1;
        else
            to = -1;
        char name[256];
        snprintf(name, sizeof(name), "%s/attention-scratch", pv->name ? pv->name : "");
        int sv = eg_value_add(g, name);
        pv = &g->nodes[ni];
        if (sv < 0 || set_attrs(pv, scale, flags)) continue;
        g->values[sv].dtype = ENG_FLOAT;
        g->values[sv].rank = -1;
        g->values[sv].producer = ni;
        pv->op = EG_OP_ATTENTION;
        pv->in[0] = q, pv->in[1] = k, pv->in[2] = v, pv->in[3] = mask;
        pv->nin = mask >= 0 ? 4 : 3;
        if (to >= 0) {
            out = g->nodes[to].out[0];
            g->nodes[to].dead = 1;
        }
        pv->out[0] = out, pv->out[1] = sv, pv->nout = 2;
        g->values[out].producer = ni;
        g->nodes[mm].dead = g->nodes[sm].dead = 1;
        if (add >= 0) g->nodes[add].dead = 1;
        if (scl >= 0) g->nodes[scl].dead = 1;
        if (tq >= 0) g->nodes[tq].dead = 1;
        if (tk >= 0) g->nodes[tk].dead = 1;
        if (tv >= 0) g->nodes[tv].dead = 1;
    }
    eg_recount_uses(g);
}

static int same_shape(const eg_value *a, const eg_value *b)
{
    if (a->rank < 1 || a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

void eg_fuse_add_layernorm(eg_graph *g)
{
    for (int ni = 0; ni < g->nnodes; ni++) {
        eg_node *ln = &g->nodes[ni];
        if (ln->dead || ln->op != EG_OP_LAYERNORM || ln->sum_in >= 0 || ln->nin < 2 ||
            ln->in[0] < 0)
            continue;
        int add = sole_producer(g, ln->in[0], EG_OP_ADD, ni);
        if (add < 0 || g->nodes[add].nin != 2) continue;
        const eg_node *an = &g->nodes[add];
        int a = an->in[0], b = an->in[1];
        /* both activations of one shape (no broadcast to undo): the kernel adds
         * the residual row by row; dynamic dims are checked again at plan time */
        if (a < 0 || b < 0 || a == b || g->values[a].data || g->values[b].data ||
            g->values[a].dtype != ENG_FLOAT || g->values[b].dtype != ENG_FLOAT ||
            !same_shape(&g->values[a], &g->values[b]) ||
            !same_shape(&g->values[a], &g->values[ln->in[0]]))
            continue;
        ln->in[0] = a;
        ln->sum_in = b;
        g->nodes[add].dead = 1;
    }
    eg_recount_uses(g);
}
