/* infer: shape propagation and constant evaluation for one batch size.
 *
 * Every value gets a concrete shape. A node whose inputs are all known values
 * (initializers, Constant outputs, results of such nodes) or that only reads a
 * shape (Shape) is evaluated here with the reference kernels: this is how the
 * Shape -> Gather -> Unsqueeze -> Concat -> Reshape subgraphs of exported models
 * fold away, once per batch size, leaving only the real layers to run. */
#include "engine/infer.h"

#include <stdlib.h>
#include <string.h>

void ei_views_free(ei_views *v)
{
    if (!v) return;
    for (int i = 0; i < v->n; i++)
        if (v->owned[i]) free(v->view[i].data);
    free(v->view);
    free(v->owned);
    free(v->folded);
    free(v);
}

int ei_args(const eg_graph *g, const eg_node *n, ek_view *views, ek_args *a, char *err,
            size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->node = n;
    a->opset = g->opset;
    a->err = err;
    a->errlen = errlen;
    a->nin = n->nin;
    a->nout = n->nout;
    for (int k = 0; k < n->nin; k++) a->in[k] = n->in[k] >= 0 ? &views[n->in[k]] : NULL;
    if (n->sum_in >= 0) { /* fused residual travels as an extra input */
        for (int k = a->nin; k < 3; k++) a->in[k] = NULL;
        a->in[3] = &views[n->sum_in];
        a->nin = 4;
    }
    for (int k = 0; k < n->nout; k++) a->out[k] = n->out[k] >= 0 ? &views[n->out[k]] : NULL;
    return 0;
}

static int foldable(const eg_node *n, const ek_view *views)
{
    if (n->op == EG_OP_SHAPE) return 1;
    for (int k = 0; k < n->nin; k++)
        if (n->in[k] >= 0 && !views[n->in[k]].data) return 0;
    return n->sum_in < 0 || views[n->sum_in].data != NULL;
}

ei_views *ei_infer(const eg_graph *g, int batch, int fold, char *err, size_t errlen)
{
    ei_views *v = calloc(1, sizeof(*v));
    if (!v) return NULL;
    v->n = g->nvalues;
    v->view = calloc((size_t)v->n + 1, sizeof(ek_view));
    v->owned = calloc((size_t)v->n + 1, 1);
    v->folded = calloc((size_t)g->nnodes + 1, 1);
    if (!v->view || !v->owned || !v->folded) {
        eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        ei_views_free(v);
        return NULL;
    }
    for (int i = 0; i < g->nvalues; i++) {
        const eg_value *gv = &g->values[i];
        ek_view *w = &v->view[i];
        w->rank = -1;
        if (!gv->data && !gv->is_input) continue;
        w->dtype = gv->dtype;
        w->rank = gv->rank;
        memcpy(w->dims, gv->dims, sizeof(w->dims));
        if (gv->is_input && gv->rank > 0 && gv->dims[0] < 0) w->dims[0] = batch;
        w->data = gv->data; /* borrowed */
    }
    for (int ni = 0; ni < g->nnodes; ni++) {
        const eg_node *n = &g->nodes[ni];
        if (n->dead) continue;
        const ek_op *op = ek_op_get(n->op);
        if (!op) {
            eg_err(err, errlen, ENG_EUNSUPPORTED, "node '%s': op not supported", n->name);
            goto fail;
        }
        ek_args a;
        ei_args(g, n, v->view, &a, err, errlen);
        for (int k = 0; k < a.nin; k++)
            if (a.in[k] && a.in[k]->rank < 0) {
                eg_err(err, errlen, ENG_EFORMAT, "node '%s' (%s): input %d has no value", n->name,
                       eg_op_name(n->op), k);
                goto fail;
            }
        int rc = op->infer(&a);
        if (rc) goto fail;
        for (int k = 0; k < n->nout; k++)
            if (a.out[k] && eg_numel_checked(a.out[k]->rank, a.out[k]->dims) < 0) {
                eg_err(err, errlen, ENG_ESHAPE,
                       "node '%s' (%s): output %d is too large or malformed", n->name,
                       eg_op_name(n->op), k);
                goto fail;
            }
        if (!fold || !foldable(n, v->view)) continue;
        for (int k = 0; k < n->nout; k++) {
            if (!a.out[k]) continue;
            a.out[k]->nhwc = 0;
            a.out[k]->data = eg_alloc(ek_bytes(a.out[k]));
            if (!a.out[k]->data) {
                eg_err(err, errlen, ENG_ENOMEM, "out of memory");
                goto fail;
            }
            v->owned[n->out[k]] = 1;
        }
        if ((rc = ek_run(op, &a))) goto fail;
        v->folded[ni] = 1;
    }
    return v;
fail:
    ei_views_free(v);
    return NULL;
}
