/* shapes: models whose inputs have dynamic dimensions beyond the batch (a
 * sequence length, an image size).
 *
 * The graph keeps -1 for such dims. Shape inference (ei_infer) wants concrete
 * dims, so it runs on a view of the graph: a shallow copy whose values array is
 * copied and whose graph inputs carry the dims of one run (or a probe value at
 * load time). Nodes, names and constant data stay shared with the model. */
#include "engine/model.h"

#include <stdlib.h>
#include <string.h>

eg_graph *es_graph_view(const eg_graph *g, const int64_t *const *dims, int64_t probe)
{
    eg_graph *v = malloc(sizeof(*v));
    eg_value *vals = v ? malloc((size_t)(g->nvalues + 1) * sizeof(eg_value)) : NULL;
    if (!vals) {
        free(v);
        return NULL;
    }
    *v = *g;
    memcpy(vals, g->values, (size_t)g->nvalues * sizeof(eg_value));
    v->values = vals;
    for (int k = 0; k < g->ninputs; k++) {
        eg_value *x = &vals[g->inputs[k]];
        for (int d = 0; d < x->rank; d++)
            if (dims)
                x->dims[d] = dims[k][d];
            else if (d > 0 && x->dims[d] < 0)
                x->dims[d] = probe;
    }
    return v;
}

void es_graph_view_free(eg_graph *v)
{
    if (!v) return;
    free(v->values);
    free(v);
}

int es_has_dynamic(const eg_graph *g)
{
    for (int k = 0; k < g->ninputs; k++) {
        const eg_value *x = &g->values[g->inputs[k]];
        for (int d = 1; d < x->rank; d++)
            if (x->dims[d] < 0) return 1;
    }
    return 0;
}

ei_views *es_infer(const eg_graph *g, int batch, int64_t probe, char *err, size_t errlen)
{
    eg_graph *v = es_graph_view(g, NULL, probe);
    if (!v) {
        eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        return NULL;
    }
    ei_views *r = ei_infer(v, batch, 1, err, errlen);
    es_graph_view_free(v);
    return r;
}

int es_check_shapes(const eng_model *m, const int64_t *const *shapes, char *err, size_t errlen)
{
    const eg_graph *g = m->g;
    if (!shapes) return eg_err(err, errlen, ENG_EINVAL, "no input shapes");
    for (int k = 0; k < g->ninputs; k++) {
        const eg_value *x = &g->values[g->inputs[k]];
        if (!shapes[k]) return eg_err(err, errlen, ENG_EINVAL, "input '%s': no shape", x->name);
        for (int d = 0; d < x->rank; d++) {
            int64_t s = shapes[k][d];
            if (x->dims[d] >= 0 && s != x->dims[d])
                return eg_err(err, errlen, ENG_ESHAPE,
                              "input '%s': dimension %d is %lld, the model fixes it at %lld",
                              x->name, d, (long long)s, (long long)x->dims[d]);
            if (s < 1 || s > ES_MAX_DIM)
                return eg_err(err, errlen, ENG_ESHAPE,
                              "input '%s': dimension %d is %lld (dynamic dims run 1..%lld)",
                              x->name, d, (long long)s, (long long)ES_MAX_DIM);
        }
        if (eg_numel_checked(x->rank, shapes[k]) < 0)
            return eg_err(err, errlen, ENG_ESHAPE, "input '%s': too many elements", x->name);
    }
    return 0;
}

int eng_model_output_dims(const eng_model *m, const int64_t *const *shapes, int64_t *out_dims,
                          char *err, size_t errlen)
{
    if (!m || !out_dims) return eg_err(err, errlen, ENG_EINVAL, "bad arguments");
    int rc = es_check_shapes(m, shapes, err, errlen);
    if (rc) return rc;
    eg_graph *gv = es_graph_view(m->g, shapes, 0);
    if (!gv) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    ei_views *v = ei_infer(gv, 1, 1, err, errlen);
    es_graph_view_free(gv);
    if (!v) return -ENG_ESHAPE;
    for (int k = 0; k < m->g->noutputs; k++) {
        const ek_view *o = &v->view[m->g->outputs[k]];
        memcpy(out_dims + (size_t)k * ENG_MAX_RANK, o->dims, sizeof(o->dims));
    }
    ei_views_free(v);
    return 0;
}
