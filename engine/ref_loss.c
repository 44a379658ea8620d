/* ref_loss: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss, the loss
 * heads exported with evaluation graphs. Inference-only: no gradients. A
 * target outside [0, C) that is not ignore_index is -ENG_EINVAL. */
#include "engine/kernels_util.h"

#include <math.h>

static int loss_red(ek_args *a, int *red)
{
    const char *r = eg_attr_str(a->node, "reduction", "mean");
    *red = !strcmp(r, "none") ? 0 : !strcmp(r, "sum") ? 1 : !strcmp(r, "mean") ? 2 : -1;
    if (*red < 0)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): unknown reduction '%s'", KNAME(a), KOP(a), r);
    return 0;
}

static int infer_loss(ek_args *a)
{
    const ek_view *x = a->in[0], *t = a->in[1], *w = a->nin > 2 ? a->in[2] : NULL;
    int red;
    int rc = loss_red(a, &red);
    if (rc) return rc;
    if (x->dtype != ENG_FLOAT || !ku_is_int(t->dtype) || x->rank < 2 || t->rank != x->rank - 1)
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (%s): needs float scores [N, C, ...] and int "
                     "targets [N, ...]",
                     KNAME(a), KOP(a));
    if (t->dims[0] != x->dims[0])
        return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): target dim 0 differs", KNAME(a), KOP(a));
    for (int d = 1; d < t->rank; d++)
        if (t->dims[d] != x->dims[d + 1])
            return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): target dim %d differs", KNAME(a), KOP(a),
                         d);
    if (w && (w->dtype != ENG_FLOAT || ek_numel(w) != x->dims[1]))
        return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): weights must be C floats", KNAME(a), KOP(a));
    if (red)
        ku_shape(a->out[0], ENG_FLOAT, 0, NULL);
    else
        ku_shape(a->out[0], ENG_FLOAT, t->rank, t->dims);
    if (a->nout > 1 && a->out[1]) ku_shape(a->out[1], ENG_FLOAT, x->rank, x->dims);
    return 0;
}

static int run_loss(ek_args *a)
{
    const ek_view *x = a->in[0], *t = a->in[1], *w = a->nin > 2 ? a->in[2] : NULL;
    int red = 2;
    loss_red(a, &red);
    const eg_attr *ig = eg_attr_find(a->node, "ignore_index");
    int64_t N = x->dims[0], C = x->dims[1], D = ku_prod(x->dims, 2, x->rank);
    const float *X = x->data, *W = w ? w->data : NULL;
    float *L = a->out[0]->data;
    const float *P = X; /* log-probabilities */
    if (a->node->op == EG_OP_SCELOSS) {
        /* log_softmax over C, into the log_prob output when asked for, else
         * computed per element below */
        float *LP = a->nout > 1 && a->out[1] ? a->out[1]->data : NULL;
        if (LP) {
            for (int64_t n = 0; n < N; n++)
                for (int64_t d = 0; d < D; d++) {
                    const float *xp = X + n * C * D + d;
                    float m = -INFINITY;
                    double s = 0;
                    for (int64_t c = 0; c < C; c++) m = xp[c * D] > m ? xp[c * D] : m;
                    for (int64_t c = 0; c < C; c++) s += exp((double)xp[c * D] - m);
                    float ls = (float)log(s) + m;
                    for (int64_t c = 0; c < C; c++) LP[n * C * D + c * D + d] = xp[c * D] - ls;
                }
            P = LP;
        }
    }
    int sce_inline = a->node->op == EG_OP_SCELOSS && P == X;
    double sum = 0, wsum = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            int64_t k = ku_geti(t, n * D + d);
            float l = 0, wt = 0;
            if (!(ig && k == ig->i)) {
                if (k < 0 || k >= C)
                    return KFAIL(a, ENG_EINVAL,
                                 "node '%s' (%s): target %lld out of range [0, %lld)", KNAME(a),
                                 KOP(a), (long long)k, (long long)C);
                float lp;
                if (sce_inline) {
                    const float *xp = X + n * C * D + d;
                    float m = -INFINITY;
                    double s = 0;
                    for (int64_t c = 0; c < C; c++) m = xp[c * D] > m ? xp[c * D] : m;
                    for (int64_t c = 0; c < C; c++) s += exp((double)xp[c * D] - m);
                    lp = xp[k * D] - m - (float)log(s);
                } else {
                    lp = P[n * C * D + k * D + d];
                }
                wt = W ? W[k] : 1.0f;
                l = -lp * wt;
            }
            if (!red) L[n * D + d] = l;
            sum += l;
            wsum += wt;
        }
    if (red == 1) L[0] = (float)sum;
    if (red == 2) L[0] = (float)(sum / wsum);
    return 0;
}

const ek_op ek_op_loss = {infer_loss, run_loss, 0, 0};
