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
