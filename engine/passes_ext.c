/* passes_ext: graph passes for the transformer families. */
#include "engine/graph.h"

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
