/* ref_nn: reference kernels for the compute ops: Conv, BatchNormalization,
 * pooling, Gemm, MatMul, Softmax, ReduceMean. 1-D and 3-D convs and pools are run
 * as 3-D with unit leading spatial dims, so one loop nest covers all ranks. */
#include "engine/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(a, st, ...) eg_err((a)->err, (a)->errlen, st, __VA_ARGS__)

static int get_ints(const eg_node *n, const char *name, int64_t *out, int want, int64_t def)
{
    const eg_attr *a = eg_attr_find(n, name);
    for (int i = 0; i < want; i++) out[i] = def;
    if (!a) return 0;
    if (a->type != EG_ATTR_INTS || a->n != want) return -1;
    for (int i = 0; i < want; i++) out[i] = a->ints[i];
    return 0;
}

int ek_geom_init(ek_geom *g, const eg_node *n, const int64_t *in_dims, int rank,
                 const int64_t *kernel, int ceil_mode, char *err, size_t errlen)
{
    int sp = rank - 2;
    if (sp < 1 || sp > 3)
        return eg_err(err, errlen, ENG_EUNSUPPORTED,
                      "node '%s' (%s): %d spatial dims not supported", n->name, eg_op_name(n->op),
                      sp);
    int64_t st[3], dl[3], pads[6];
    if (get_ints(n, "strides", st, sp, 1) || get_ints(n, "dilations", dl, sp, 1) ||
        get_ints(n, "pads", pads, 2 * sp, 0))
        return eg_err(err, errlen, ENG_EFORMAT, "node '%s' (%s): strides/dilations/pads length",
                      n->name, eg_op_name(n->op));
    const char *ap = eg_attr_str(n, "auto_pad", "NOTSET");
    memset(g, 0, sizeof(*g));
    g->nsp = 3;
    int off = 3 - sp; /* leading unit dims */
    for (int i = 0; i < 3; i++) g->in[i] = g->k[i] = g->out[i] = g->stride[i] = g->dil[i] = 1;
    for (int i = 0; i < sp; i++) {
        int j = i + off;
        int64_t in = in_dims[2 + i], k = kernel[i];
        if (st[i] < 1 || dl[i] < 1 || k < 1 || pads[i] < 0 || pads[i + sp] < 0)
            return eg_err(err, errlen, ENG_EFORMAT, "node '%s' (%s): bad kernel/stride/pad",
                          n->name, eg_op_name(n->op));
        int64_t ek = (k - 1) * dl[i] + 1, pl = pads[i], pr = pads[i + sp], out;
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
            out = (in + st[i] - 1) / st[i];
            int64_t total = (out - 1) * st[i] + ek - in;
            if (total < 0) total = 0;
            pl = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
            pr = total - pl;
        } else if (!strcmp(ap, "VALID")) {
            pl = pr = 0;
            out = in >= ek ? (in - ek) / st[i] + 1 : 0;
        } else if (!strcmp(ap, "NOTSET")) {
            int64_t span = in + pl + pr - ek;
            if (span < 0)
                return eg_err(err, errlen, ENG_ESHAPE, "node '%s' (%s): kernel larger than input",
                              n->name, eg_op_name(n->op));
            out = (ceil_mode ? (span + st[i] - 1) / st[i] : span / st[i]) + 1;
            /* the last window must start inside the input or left pad */
            if (ceil_mode && (out - 1) * st[i] >= in + pl) out--;
            int64_t need = (out - 1) * st[i] + ek - in - pl;
            g->pad_re[j] = need > pr ? need : pr;
        } else {
            return eg_err(err, errlen, ENG_EFORMAT, "node '%s': bad auto_pad '%s'", n->name, ap);
        }
        g->in[j] = in;
        g->k[j] = k;
        g->out[j] = out;
        g->stride[j] = st[i];
        g->dil[j] = dl[i];
        g->pad_l[j] = pl;
        g->pad_r[j] = pr;
        if (strcmp(ap, "NOTSET")) g->pad_re[j] = pr;
    }
    return 0;
}

/* ---- Conv ----------------------------------------------------------------- */

static int infer_conv(ek_args *a)
{
    const ek_view *x = a->in[0], *w = a->nin > 1 ? a->in[1] : NULL;
    const eg_node *n = a->node;
    if (!x || !w || x->dtype != ENG_FLOAT || w->dtype != ENG_FLOAT)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (Conv): needs float X and W", n->name);
    if (x->rank != w->rank || x->rank < 3 || x->rank > 5)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (Conv): X rank %d, W rank %d", n->name, x->rank,
                    w->rank);
    int64_t group = eg_attr_int(n, "group", 1);
    if (group < 1 || x->dims[1] % group || w->dims[0] % group || x->dims[1] / group != w->dims[1])
        return FAIL(a, ENG_ESHAPE, "node '%s' (Conv): channels %lld, weights %lldx%lld, group %lld",
                    n->name, (long long)x->dims[1], (long long)w->dims[0], (long long)w->dims[1],
                    (long long)group);
    int64_t ks[3];
    if (get_ints(n, "kernel_shape", ks, x->rank - 2, 0))
        return FAIL(a, ENG_EFORMAT, "node '%s' (Conv): kernel_shape length", n->name);
    for (int i = 0; i < x->rank - 2; i++)
        if (eg_attr_find(n, "kernel_shape") && ks[i] != w->dims[2 + i])
            return FAIL(a, ENG_ESHAPE, "node '%s' (Conv): kernel_shape differs from W", n->name);
    if (a->nin > 2 && a->in[2] && (a->in[2]->rank != 1 || a->in[2]->dims[0] != w->dims[0]))
        return FAIL(a, ENG_ESHAPE, "node '%s' (Conv): bias length differs from M", n->name);
    if (n->sum_in >= 0 && a->nin < 4)
        return FAIL(a, ENG_EINVAL, "node '%s' (Conv): fused sum input missing", n->name);
    ek_geom g;
    int rc = ek_geom_init(&g, n, x->dims, x->rank, w->dims + 2, 0, a->err, a->errlen);
    if (rc) return rc;
    ek_view *o = a->out[0];
    o->dtype = ENG_FLOAT;
    o->rank = x->rank;
    o->nhwc = 0;
    o->dims[0] = x->dims[0];
    o->dims[1] = w->dims[0];
    for (int i = 0; i < x->rank - 2; i++) o->dims[2 + i] = g.out[3 - (x->rank - 2) + i];
    return 0;
}

static int run_conv(ek_args *a)
{
    const ek_view *x = a->in[0], *w = a->in[1];
    const float *bias = a->nin > 2 && a->in[2] ? a->in[2]->data : NULL;
    const eg_node *n = a->node;
    ek_geom g;
    ek_geom_init(&g, n, x->dims, x->rank, w->dims + 2, 0, NULL, 0);
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], G = eg_attr_int(n, "group", 1);
    int64_t cg = C / G, mg = M / G, isz = g.in[0] * g.in[1] * g.in[2];
    int64_t osz = g.out[0] * g.out[1] * g.out[2], ksz = g.k[0] * g.k[1] * g.k[2];
    const float *X = x->data, *W = w->data;
    float *Y = a->out[0]->data;
    for (int64_t b = 0; b < N; b++)
        for (int64_t m = 0; m < M; m++) {
            int64_t gi = m / mg;
            float *y = Y + (b * M + m) * osz;
            for (int64_t od = 0; od < g.out[0]; od++)
                for (int64_t oh = 0; oh < g.out[1]; oh++)
                    for (int64_t ow = 0; ow < g.out[2]; ow++) {
                        double acc = bias ? bias[m] : 0.0;
                        for (int64_t c = 0; c < cg; c++) {
                            const float *xc = X + (b * C + gi * cg + c) * isz;
                            const float *wc = W + (m * cg + c) * ksz;
                            for (int64_t kd = 0; kd < g.k[0]; kd++) {
                                int64_t id = od * g.stride[0] - g.pad_l[0] + kd * g.dil[0];
                                if (id < 0 || id >= g.in[0]) continue;
                                for (int64_t kh = 0; kh < g.k[1]; kh++) {
                                    int64_t ih = oh * g.stride[1] - g.pad_l[1] + kh * g.dil[1];
                                    if (ih < 0 || ih >= g.in[1]) continue;
                                    for (int64_t kw = 0; kw < g.k[2]; kw++) {
                                        int64_t iw = ow * g.stride[2] - g.pad_l[2] + kw * g.dil[2];
                                        if (iw < 0 || iw >= g.in[2]) continue;
                                        acc += (double)xc[(id * g.in[1] + ih) * g.in[2] + iw] *
                                               wc[(kd * g.k[1] + kh) * g.k[2] + kw];
                                    }
                                }
                            }
                        }
                        y[(od * g.out[1] + oh) * g.out[2] + ow] = (float)acc;
                    }
        }
    int64_t total = N * M * osz;
    ek_act_apply(&n->act1, Y, total);
    if (n->sum_in >= 0) {
        const float *s = a->in[3]->data;
        for (int64_t i = 0; i < total; i++) Y[i] += s[i];
    }
    ek_act_apply(&n->act2, Y, total);
    return 0;
}

/* ---- BatchNormalization ---------------------------------------------------- */

static int infer_bn(ek_args *a)
{
    const ek_view *x = a->in[0];
    const eg_node *n = a->node;
    if (a->nin < 5 || !x || x->dtype != ENG_FLOAT || x->rank < 2)
        return FAIL(a, ENG_EFORMAT, "node '%s' (BatchNormalization): needs X, scale, B, mean, var",
                    n->name);
    if (!eg_attr_int(n, "spatial", 1))
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (BatchNormalization): spatial=0 not supported",
                    n->name);
    if (eg_attr_int(n, "training_mode", 0) || a->nout > 1)
        return FAIL(a, ENG_EUNSUPPORTED,
                    "node '%s' (BatchNormalization): training mode not supported", n->name);
    for (int k = 1; k < 5; k++)
        if (!a->in[k] || a->in[k]->dtype != ENG_FLOAT || ek_numel(a->in[k]) != x->dims[1])
            return FAIL(a, ENG_ESHAPE,
                        "node '%s' (BatchNormalization): input %d must have C=%lld values", n->name,
                        k, (long long)x->dims[1]);
    *a->out[0] = *x;
    a->out[0]->data = NULL;
    return 0;
}

static int run_bn(ek_args *a)
{
    const ek_view *x = a->in[0];
    const float *sc = a->in[1]->data, *bi = a->in[2]->data, *mu = a->in[3]->data,
                *var = a->in[4]->data;
    float eps = eg_attr_float(a->node, "epsilon", 1e-5f);
    int64_t N = x->dims[0], C = x->dims[1], inner = ek_numel(x) / (N * C);
    const float *X = x->data;
    float *Y = a->out[0]->data;
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++) {
            float k = sc[c] / sqrtf(var[c] + eps), s = bi[c] - mu[c] * k;
            for (int64_t i = 0; i < inner; i++) {
                /* NHWC: channel is innermost */
                int64_t off = x->nhwc ? (b * inner + i) * C + c : (b * C + c) * inner + i;
                Y[off] = X[off] * k + s;
            }
        }
    return 0;
}

/* ---- pooling --------------------------------------------------------------- */

static int infer_gap(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (!x || x->dtype != ENG_FLOAT || x->rank < 3)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (GlobalAveragePool): needs float N,C,...",
                    a->node->name);
    ek_view *o = a->out[0];
    *o = *x;
    o->data = NULL;
    o->nhwc = 0; /* N,C,1,1 is the same memory in either layout */
    for (int i = 2; i < x->rank; i++) o->dims[i] = 1;
    return 0;
}

static int run_gap(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t N = x->dims[0], C = x->dims[1], S = ek_numel(x) / (N * C);
    const float *X = x->data;
    float *Y = a->out[0]->data;
    for (int64_t b = 0; b < N; b++) {
        float *y = Y + b * C;
        if (x->nhwc) {
            /* 64 channels at a time in a local block: the sums stay in vector
             * registers (y may alias nothing, but the compiler cannot know);
             * the same order of additions as one running sum per channel */
            for (int64_t c0 = 0; c0 < C; c0 += 64) {
                float acc[64] = {0};
                const float *xs = X + b * S * C + c0;
                if (C - c0 >= 64) {
                    for (int64_t s = 0; s < S; s++, xs += C)
                        for (int c = 0; c < 64; c++) acc[c] += xs[c];
                } else {
                    for (int64_t s = 0; s < S; s++, xs += C)
                        for (int64_t c = 0; c < C - c0; c++) acc[c] += xs[c];
                }
                for (int64_t c = 0; c < 64 && c0 + c < C; c++) y[c0 + c] = acc[c];
            }
        } else {
            for (int64_t c = 0; c < C; c++) {
                float acc = 0;
                for (int64_t s = 0; s < S; s++) acc += X[(b * C + c) * S + s];
                y[c] = acc;
            }
        }
        for (int64_t c = 0; c < C; c++) y[c] /= (float)S;
    }
    return 0;
}

static int infer_pool(ek_args *a)
{
    const ek_view *x = a->in[0];
    const eg_node *n = a->node;
    if (!x || x->dtype != ENG_FLOAT || x->rank < 3)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): needs float N,C,...", n->name,
                    eg_op_name(n->op));
    if (a->nout > 1 && a->out[1] && eg_attr_int(n, "storage_order", 0) != 0 &&
        eg_attr_int(n, "storage_order", 0) != 1)
        return FAIL(a, ENG_EFORMAT, "node '%s' (MaxPool): storage_order must be 0 or 1", n->name);
    int64_t ks[3];
    const eg_attr *k = eg_attr_find(n, "kernel_shape");
    if (!k || get_ints(n, "kernel_shape", ks, x->rank - 2, 0))
        return FAIL(a, ENG_EFORMAT, "node '%s' (%s): kernel_shape missing or wrong length", n->name,
                    eg_op_name(n->op));
    if (n->op == EG_OP_AVGPOOL && eg_attr_find(n, "dilations"))
        for (int i = 0; i < k->n; i++)
            if (eg_attr_find(n, "dilations")->ints[i] != 1)
                return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (AveragePool): dilations", n->name);
    ek_geom g;
    int rc = ek_geom_init(&g, n, x->dims, x->rank, ks, (int)eg_attr_int(n, "ceil_mode", 0), a->err,
                          a->errlen);
    if (rc) return rc;
    ek_view *o = a->out[0];
    *o = *x;
    o->data = NULL;
    o->nhwc = 0;
    for (int i = 0; i < x->rank - 2; i++) o->dims[2 + i] = g.out[3 - (x->rank - 2) + i];
    if (a->nout > 1 && a->out[1]) { /* MaxPool's Indices: flat positions in X */
        *a->out[1] = *o;
        a->out[1]->dtype = ENG_INT64;
    }
    return 0;
}

static int run_pool(ek_args *a)
{
    const ek_view *x = a->in[0];
    const eg_node *n = a->node;
    int64_t ks[3];
    get_ints(n, "kernel_shape", ks, x->rank - 2, 0);
    ek_geom g;
    ek_geom_init(&g, n, x->dims, x->rank, ks, (int)eg_attr_int(n, "ceil_mode", 0), NULL, 0);
    int is_max = n->op == EG_OP_MAXPOOL;
    int incl = (int)eg_attr_int(n, "count_include_pad", 0);
    int64_t NC = x->dims[0] * x->dims[1], isz = g.in[0] * g.in[1] * g.in[2];
    int64_t osz = g.out[0] * g.out[1] * g.out[2];
    int64_t *ind = a->nout > 1 && a->out[1] ? a->out[1]->data : NULL;
    int col = eg_attr_int(n, "storage_order", 0) == 1; /* column-major indices */
    for (int64_t p = 0; p < NC; p++) {
        const float *xp = (const float *)x->data + p * isz;
        float *y = (float *)a->out[0]->data + p * osz;
        for (int64_t od = 0; od < g.out[0]; od++)
            for (int64_t oh = 0; oh < g.out[1]; oh++)
                for (int64_t ow = 0; ow < g.out[2]; ow++) {
                    int64_t o3[3] = {od, oh, ow}, lo[3], cnt = 1, valid = 0;
                    float acc = is_max ? -INFINITY : 0;
                    int64_t arg = 0;
                    for (int i = 0; i < 3; i++) {
                        lo[i] = o3[i] * g.stride[i] - g.pad_l[i];
                        /* count_include_pad counts the explicit pads, not ceil overhang */
                        int64_t s = lo[i], e = lo[i] + (g.k[i] - 1) * g.dil[i] + 1;
                        int64_t hi = g.in[i] + g.pad_r[i];
                        cnt *= (e < hi ? e : hi) - s;
                    }
                    for (int64_t kd = 0; kd < g.k[0]; kd++) {
                        int64_t id = lo[0] + kd * g.dil[0];
                        if (id < 0 || id >= g.in[0]) continue;
                        for (int64_t kh = 0; kh < g.k[1]; kh++) {
                            int64_t ih = lo[1] + kh * g.dil[1];
                            if (ih < 0 || ih >= g.in[1]) continue;
                            for (int64_t kw = 0; kw < g.k[2]; kw++) {
                                int64_t iw = lo[2] + kw * g.dil[2];
                                if (iw < 0 || iw >= g.in[2]) continue;
                                float v = xp[(id * g.in[1] + ih) * g.in[2] + iw];
                                if (is_max && (v > acc || !valid))
                                    arg = col ? (iw * g.in[1] + ih) * g.in[0] + id
                                              : (id * g.in[1] + ih) * g.in[2] + iw;
                                acc = is_max ? (v > acc ? v : acc) : acc + v;
                                valid++;
                            }
                        }
                    }
                    if (!is_max) acc /= (float)(incl ? cnt : (valid ? valid : 1));
                    y[(od * g.out[1] + oh) * g.out[2] + ow] = acc;
                    if (ind) ind[p * osz + (od * g.out[1] + oh) * g.out[2] + ow] = p * isz + arg;
                }
    }
    return 0;
}

/* ---- Gemm and MatMul -------------------------------------------------------- */

/* C[M,N] (+)= A[M,K] * B[K,N] with arbitrary element strides (transposes). */
static void gemm_ref(int64_t M, int64_t N, int64_t K, const float *A, int64_t sam, int64_t sak,
                     const float *B, int64_t sbk, int64_t sbn, float *C, float alpha)
{
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * N;
        for (int64_t j = 0; j < N; j++) c[j] = 0;
        for (int64_t k = 0; k < K; k++) {
            float av = A[i * sam + k * sak] * alpha;
            const float *b = B + k * sbk;
            if (sbn == 1)
                for (int64_t j = 0; j < N; j++) c[j] += av * b[j];
            else
                for (int64_t j = 0; j < N; j++) c[j] += av * b[j * sbn];
        }
    }
}

static int infer_gemm(ek_args *a)
{
    const ek_view *A = a->in[0], *B = a->nin > 1 ? a->in[1] : NULL,
                  *C = a->nin > 2 ? a->in[2] : NULL;
    const eg_node *n = a->node;
    if (!A || !B || A->rank != 2 || B->rank != 2 || A->dtype != ENG_FLOAT || B->dtype != ENG_FLOAT)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (Gemm): needs 2-D float A and B", n->name);
    int ta = (int)eg_attr_int(n, "transA", 0), tb = (int)eg_attr_int(n, "transB", 0);
    int64_t M = A->dims[ta], K = A->dims[!ta], K2 = B->dims[tb], N = B->dims[!tb];
    if (K != K2)
        return FAIL(a, ENG_ESHAPE, "node '%s' (Gemm): inner dims %lld vs %lld", n->name,
                    (long long)K, (long long)K2);
    if (C) {
        if (C->rank > 2 || C->dtype != ENG_FLOAT)
            return FAIL(a, ENG_ESHAPE, "node '%s' (Gemm): C must be float, rank <= 2", n->name);
        int64_t cm = C->rank == 2 ? C->dims[0] : 1, cn = C->rank ? C->dims[C->rank - 1] : 1;
        if ((cm != 1 && cm != M) || (cn != 1 && cn != N))
            return FAIL(a, ENG_ESHAPE, "node '%s' (Gemm): C does not broadcast to %lldx%lld",
                        n->name, (long long)M, (long long)N);
    }
    ek_view *o = a->out[0];
    memset(o, 0, sizeof(*o));
    o->dtype = ENG_FLOAT;
    o->rank = 2;
    o->dims[0] = M;
    o->dims[1] = N;
    return 0;
}

static int run_gemm(ek_args *a)
{
    const ek_view *A = a->in[0], *B = a->in[1], *C = a->nin > 2 ? a->in[2] : NULL;
    const eg_node *n = a->node;
    int ta = (int)eg_attr_int(n, "transA", 0), tb = (int)eg_attr_int(n, "transB", 0);
    float alpha = eg_attr_float(n, "alpha", 1.0f), beta = eg_attr_float(n, "beta", 1.0f);
    int64_t M = a->out[0]->dims[0], N = a->out[0]->dims[1], K = A->dims[!ta];
    float *Y = a->out[0]->data;
    gemm_ref(M, N, K, A->data, ta ? 1 : K, ta ? M : 1, B->data, tb ? 1 : N, tb ? K : 1, Y, alpha);
    if (C) {
        int64_t cm = C->rank == 2 ? C->dims[0] : 1, cn = C->rank ? C->dims[C->rank - 1] : 1;
        const float *c = C->data;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                Y[i * N + j] += beta * c[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
    }
    return 0;
}

static int infer_matmul(ek_args *a)
{
    const ek_view *A = a->in[0], *B = a->nin > 1 ? a->in[1] : NULL;
    if (!A || !B || A->dtype != ENG_FLOAT || B->dtype != ENG_FLOAT || A->rank < 1 || B->rank < 1)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (MatMul): needs float tensors", a->node->name);
    int64_t K = A->dims[A->rank - 1], K2 = B->rank == 1 ? B->dims[0] : B->dims[B->rank - 2];
    if (K != K2)
        return FAIL(a, ENG_ESHAPE, "node '%s' (MatMul): inner dims %lld vs %lld", a->node->name,
                    (long long)K, (long long)K2);
    int ba = A->rank > 2 ? A->rank - 2 : 0, bb = B->rank > 2 ? B->rank - 2 : 0;
    int br = ba > bb ? ba : bb;
    ek_view *o = a->out[0];
    memset(o, 0, sizeof(*o));
    o->dtype = ENG_FLOAT;
    for (int i = 0; i < br; i++) {
        int ia = i - (br - ba), ib = i - (br - bb);
        int64_t da = ia >= 0 ? A->dims[ia] : 1, db = ib >= 0 ? B->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return FAIL(a, ENG_ESHAPE, "node '%s' (MatMul): batch dims do not broadcast",
                        a->node->name);
        o->dims[o->rank++] = da == 1 ? db : da;
    }
    if (A->rank > 1) o->dims[o->rank++] = A->dims[A->rank - 2];
    if (B->rank > 1) o->dims[o->rank++] = B->dims[B->rank - 1];
    return 0;
}

static int run_matmul(ek_args *a)
{
    const ek_view *A = a->in[0], *B = a->in[1];
    ek_view *o = a->out[0];
    int64_t M = A->rank > 1 ? A->dims[A->rank - 2] : 1, K = A->dims[A->rank - 1];
    int64_t N = B->rank > 1 ? B->dims[B->rank - 1] : 1;
    int ba = A->rank > 2 ? A->rank - 2 : 0, bb = B->rank > 2 ? B->rank - 2 : 0;
    int br = ba > bb ? ba : bb;
    int64_t nb = eg_numel(br, o->dims), cnt[ENG_MAX_RANK] = {0};
    for (int64_t b = 0; b < nb; b++) {
        int64_t oa = 0, ob = 0, sa = 1, sb = 1;
        for (int i = br - 1; i >= 0; i--) {
            int ia = i - (br - ba), ib = i - (br - bb);
            if (ia >= 0) {
                oa += (A->dims[ia] == 1 ? 0 : cnt[i]) * sa;
                sa *= A->dims[ia];
            }
            if (ib >= 0) {
                ob += (B->dims[ib] == 1 ? 0 : cnt[i]) * sb;
                sb *= B->dims[ib];
            }
        }
        gemm_ref(M, N, K, (const float *)A->data + oa * M * K, K, 1,
                 (const float *)B->data + ob * K * N, N, 1, (float *)o->data + b * M * N, 1.0f);
        if (a->nin > 2 && a->in[2]) { /* fused bias (eg_fuse_matmul_bias) */
            const float *bias = a->in[2]->data;
            float *y = (float *)o->data + b * M * N;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) y[i * N + j] += bias[j];
        }
        ek_act_apply(&a->node->act1, (float *)o->data + b * M * N, M * N); /* fused GELU */
        for (int i = br - 1; i >= 0; i--) {
            if (++cnt[i] < o->dims[i]) break;
            cnt[i] = 0;
        }
    }
    return 0;
}

/* ---- Softmax and ReduceMean ------------------------------------------------ */

static int infer_softmax(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (!x || x->dtype != ENG_FLOAT)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (Softmax): needs float input", a->node->name);
    int64_t ax = eg_attr_int(a->node, "axis", a->opset < 13 ? 1 : -1);
    if (ax < -x->rank || ax >= (x->rank ? x->rank : 1))
        return FAIL(a, ENG_EFORMAT, "node '%s' (Softmax): axis out of range", a->node->name);
    *a->out[0] = *x;
    a->out[0]->data = NULL;
    a->out[0]->nhwc = 0;
    return 0;
}

static int run_softmax(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t ax = eg_attr_int(a->node, "axis", a->opset < 13 ? 1 : -1);
    if (ax < 0) ax += x->rank;
    int64_t outer = eg_numel((int)ax, x->dims), len, inner;
    if (a->opset < 13) { /* coerce to 2-D at axis */
        len = eg_numel(x->rank - (int)ax, x->dims + ax);
        inner = 1;
    } else {
        len = x->dims[ax];
        inner = eg_numel(x->rank - (int)ax - 1, x->dims + ax + 1);
    }
    const float *X = x->data;
    float *Y = a->out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xp = X + o * len * inner + i;
            float *yp = Y + o * len * inner + i;
            float mx = -INFINITY, sum = 0;
            for (int64_t k = 0; k < len; k++) mx = xp[k * inner] > mx ? xp[k * inner] : mx;
            for (int64_t k = 0; k < len; k++) sum += yp[k * inner] = expf(xp[k * inner] - mx);
            for (int64_t k = 0; k < len; k++) yp[k * inner] /= sum;
        }
    return 0;
}

static int reduce_axes(ek_args *a, int *mask)
{
    const ek_view *x = a->in[0];
    int64_t axes[ENG_MAX_RANK];
    int n = 0;
    if (a->opset < 18) {
        const eg_attr *ax = eg_attr_find(a->node, "axes");
        n = ax ? ax->n : 0;
        if (n > ENG_MAX_RANK)
            return FAIL(a, ENG_EFORMAT, "node '%s' (ReduceMean): too many axes", a->node->name);
        for (int i = 0; i < n; i++) axes[i] = ax->ints[i];
    } else if (a->nin > 1 && a->in[1]) {
        const ek_view *v = a->in[1];
        n = (int)ek_numel(v);
        if (!v->data || v->dtype != ENG_INT64 || n > ENG_MAX_RANK)
            return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (ReduceMean): axes must be constant int64",
                        a->node->name);
        memcpy(axes, v->data, (size_t)n * sizeof(int64_t));
    }
    for (int i = 0; i < x->rank; i++)
        mask[i] = n == 0 && !eg_attr_int(a->node, "noop_with_empty_axes", 0);
    for (int i = 0; i < n; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + x->rank : axes[i];
        if (ax < 0 || ax >= x->rank)
            return FAIL(a, ENG_EFORMAT, "node '%s' (ReduceMean): axis %lld out of range",
                        a->node->name, (long long)axes[i]);
        mask[ax] = 1;
    }
    return 0;
}

static int infer_reducemean(ek_args *a)
{
    const ek_view *x = a->in[0];
    int mask[ENG_MAX_RANK];
    if (!x || x->dtype != ENG_FLOAT)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (ReduceMean): needs float input",
                    a->node->name);
    int rc = reduce_axes(a, mask);
    if (rc) return rc;
    int keep = (int)eg_attr_int(a->node, "keepdims", 1);
    ek_view *o = a->out[0];
    memset(o, 0, sizeof(*o));
    o->dtype = ENG_FLOAT;
    for (int i = 0; i < x->rank; i++)
        if (!mask[i])
            o->dims[o->rank++] = x->dims[i];
        else if (keep)
            o->dims[o->rank++] = 1;
    return 0;
}

static int run_reducemean(ek_args *a)
{
    const ek_view *x = a->in[0];
    int mask[ENG_MAX_RANK];
    reduce_axes(a, mask);
    int64_t ost[ENG_MAX_RANK], cnt[ENG_MAX_RANK] = {0}, n = ek_numel(x), s = 1, red = 1;
    for (int i = x->rank - 1; i >= 0; i--) { /* output strides in kept-dims space */
        ost[i] = mask[i] ? 0 : s;
        s *= mask[i] ? 1 : x->dims[i];
        red *= mask[i] ? x->dims[i] : 1;
    }
    float *Y = a->out[0]->data;
    int64_t on = ek_numel(a->out[0]);
    for (int64_t i = 0; i < on; i++) Y[i] = 0;
    const float *X = x->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int k = 0; k < x->rank; k++) off += cnt[k] * ost[k];
        Y[off] += X[i];
        for (int k = x->rank - 1; k >= 0; k--) {
            if (++cnt[k] < x->dims[k]) break;
            cnt[k] = 0;
        }
    }
    for (int64_t i = 0; i < on; i++) Y[i] = red ? Y[i] / (float)red : NAN;
    return 0;
}

const ek_op ek_op_conv = {infer_conv, run_conv, 0, 0};
const ek_op ek_op_batchnorm = {infer_bn, run_bn, EK_NHWC_OK, 0};
const ek_op ek_op_gap = {infer_gap, run_gap, EK_NHWC_OK, 0};
const ek_op ek_op_avgpool = {infer_pool, run_pool, 0, 0};
const ek_op ek_op_maxpool = {infer_pool, run_pool, 0, 0};
const ek_op ek_op_gemm = {infer_gemm, run_gemm, 0, 0};
const ek_op ek_op_matmul = {infer_matmul, run_matmul, 0, 0};
const ek_op ek_op_softmax = {infer_softmax, run_softmax, 0, 0};
const ek_op ek_op_reducemean = {infer_reducemean, run_reducemean, 0, 2u};

const ek_op *ek_op_get(eg_op op)
{
    static const ek_op *const table[EG_OP_COUNT] = {
        [EG_OP_CONV] = &ek_op_conv,
        [EG_OP_BATCHNORM] = &ek_op_batchnorm,
        [EG_OP_RELU] = &ek_op_relu,
        [EG_OP_CLIP] = &ek_op_clip,
        [EG_OP_LEAKYRELU] = &ek_op_leakyrelu,
        [EG_OP_SIGMOID] = &ek_op_sigmoid,
        [EG_OP_HARDSIGMOID] = &ek_op_hardsigmoid,
        [EG_OP_HARDSWISH] = &ek_op_hardswish,
        [EG_OP_ADD] = &ek_op_add,
        [EG_OP_SUB] = &ek_op_sub,
        [EG_OP_MUL] = &ek_op_mul,
        [EG_OP_DIV] = &ek_op_div,
        [EG_OP_GAP] = &ek_op_gap,
        [EG_OP_AVGPOOL] = &ek_op_avgpool,
        [EG_OP_MAXPOOL] = &ek_op_maxpool,
        [EG_OP_FLATTEN] = &ek_op_flatten,
        [EG_OP_RESHAPE] = &ek_op_reshape,
        [EG_OP_TRANSPOSE] = &ek_op_transpose,
        [EG_OP_CONCAT] = &ek_op_concat,
        [EG_OP_GEMM] = &ek_op_gemm,
        [EG_OP_MATMUL] = &ek_op_matmul,
        [EG_OP_SOFTMAX] = &ek_op_softmax,
        [EG_OP_REDUCEMEAN] = &ek_op_reducemean,
        [EG_OP_DROPOUT] = &ek_op_dropout,
        [EG_OP_IDENTITY] = &ek_op_identity,
        [EG_OP_SHAPE] = &ek_op_shape,
        [EG_OP_GATHER] = &ek_op_gather,
        [EG_OP_UNSQUEEZE] = &ek_op_unsqueeze,
        [EG_OP_SQUEEZE] = &ek_op_squeeze,
        [EG_OP_SPLIT] = &ek_op_split,
        [EG_OP_SLICE] = &ek_op_slice,
        [EG_OP_CAST] = &ek_op_cast,
    };
    if (op >= EG_OP_COUNT) return NULL;
    return table[op] ? table[op] : ek_op_get_ext(op);
}
