/* ref_reduce: reductions and normalisations: the Reduce* family, ArgMax/ArgMin,
 * LogSoftmax, Hardmax, LayerNormalization, InstanceNormalization, LRN,
 * MeanVarianceNormalization, CumSum, GlobalMaxPool. Reductions walk each
 * output element's reduced slice directly, so they need no scratch memory. */
#include "engine/kernels_util.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- Reduce* ------------------------------------------------------------------ */

static int axes_from_input(eg_op op, int opset)
{
    return op == EG_OP_REDUCESUM ? opset >= 13 : opset >= 18;
}

static int red_mask(ek_args *a, int *mask)
{
    const ek_view *x = a->in[0];
    int64_t axes[ENG_MAX_RANK];
    int n = 0;
    if (!axes_from_input(a->node->op, a->opset)) {
        const eg_attr *ax = eg_attr_find(a->node, "axes");
        n = ax ? ax->n : 0;
        if (n > ENG_MAX_RANK)
            return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): too many axes", KNAME(a), KOP(a));
        for (int i = 0; i < n; i++) axes[i] = ax->ints[i];
    } else if (a->nin > 1 && a->in[1]) {
        n = ku_ints(a->in[1], axes, ENG_MAX_RANK);
        if (n < 0)
            return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): axes must be a constant int list",
                         KNAME(a), KOP(a));
    }
    int noop = n == 0 && eg_attr_int(a->node, "noop_with_empty_axes", 0);
    for (int i = 0; i < x->rank; i++) mask[i] = n == 0 && !noop;
    for (int i = 0; i < n; i++) {
        int64_t ax;
        if (ku_axis(axes[i], x->rank, &ax))
            return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): axis %lld out of range", KNAME(a), KOP(a),
                         (long long)axes[i]);
        mask[ax] = 1;
    }
    return 0;
}

static int infer_reduce(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (!x || x->dtype == ENG_BOOL)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): needs a numeric input", KNAME(a),
                     KOP(a));
    int mask[ENG_MAX_RANK];
    int rc = red_mask(a, mask);
    if (rc) return rc;
    int keep = (int)eg_attr_int(a->node, "keepdims", 1);
    ek_view *o = a->out[0];
    memset(o, 0, sizeof(*o));
    o->dtype = x->dtype;
    for (int i = 0; i < x->rank; i++)
        if (!mask[i])
            o->dims[o->rank++] = x->dims[i];
        else if (keep)
            o->dims[o->rank++] = 1;
    return 0;
}

/* Splits x's dims into kept (outer) and reduced (inner) walks with strides. */
typedef struct red_walk {
    int nk, nr;
    int64_t kd[ENG_MAX_RANK], ks[ENG_MAX_RANK], rd[ENG_MAX_RANK], rs[ENG_MAX_RANK];
    int64_t rcount;
} red_walk;

static void walk_init(red_walk *w, const ek_view *x, const int *mask)
{
    int64_t st[ENG_MAX_RANK];
    ek_strides(x, st);
    w->nk = w->nr = 0;
    w->rcount = 1;
    for (int i = 0; i < x->rank; i++) {
        if (mask[i]) {
            w->rd[w->nr] = x->dims[i];
            w->rs[w->nr++] = st[i];
            w->rcount *= x->dims[i];
        } else {
            w->kd[w->nk] = x->dims[i];
            w->ks[w->nk++] = st[i];
        }
    }
}

/* Offset of the j-th element of a walk (dims d, strides s, n of them). */
static int64_t walk_off(int n, const int64_t *d, const int64_t *s, int64_t j)
{
    int64_t off = 0;
    for (int i = n - 1; i >= 0; i--) {
        off += (j % d[i]) * s[i];
        j /= d[i];
    }
    return off;
}

#if defined(__x86_64__)
/* Index of the largest (mx) or smallest value of a float row without NaN, the
 * first of equals (last with `last`), as the scalar loops pick it; -1 when the
 * row holds a NaN (the scalar loops then decide). */
__attribute__((target("avx512f"))) static int64_t row_extreme_512(const float *x, int64_t len,
                                                                  int mx, int last)
{
    __m512 m = _mm512_set1_ps(mx ? -INFINITY : INFINITY);
    __mmask16 nan = 0;
    for (int64_t k = 0; k < len; k += 16) {
        __mmask16 t = len - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (len - k)) - 1);
        __m512 v = _mm512_mask_loadu_ps(m, t, x + k);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m = mx ? _mm512_max_ps(m, v) : _mm512_min_ps(m, v);
    }
    if (nan) return -1;
    float e = mx ? _mm512_reduce_max_ps(m) : _mm512_reduce_min_ps(m);
    if (last) {
        for (int64_t k = len - 1; k >= 0; k--)
            if (x[k] == e) return k;
    } else {
        for (int64_t k = 0; k < len; k++)
            if (x[k] == e) return k;
    }
    return 0;
}
#endif

static int run_reduce(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    eg_op op = a->node->op;
    int mask[ENG_MAX_RANK];
    red_mask(a, mask);
    red_walk w;
    walk_init(&w, x, mask);
    int64_t on = ek_numel(o);
    /* the reduced slice's offsets are the same for every output element */
    int contiguous = w.nr == 1 && w.rs[0] == 1;
    for (int64_t j = 0; j < on; j++) {
        int64_t base = walk_off(w.nk, w.kd, w.ks, j);
        double acc, mx = -INFINITY;
        switch (op) {
        case EG_OP_REDUCEPROD: acc = 1; break;
        case EG_OP_REDUCEMAX: acc = -INFINITY; break;
        case EG_OP_REDUCEMIN: acc = INFINITY; break;
        default: acc = 0; break;
        }
        if (op == EG_OP_REDUCELOGSUMEXP)
            for (int64_t r = 0; r < w.rcount; r++) {
                double v = ku_getd(x, base + (contiguous ? r : walk_off(w.nr, w.rd, w.rs, r)));
                mx = v > mx ? v : mx;
            }
        if (x->dtype == ENG_FLOAT && contiguous && op == EG_OP_REDUCESUM) {
            const float *X = (const float *)x->data + base;
            float s = 0;
            for (int64_t r = 0; r < w.rcount; r++) s += X[r];
            acc = s;
        } else if (x->dtype == ENG_FLOAT && contiguous &&
                   (op == EG_OP_REDUCEMAX || op == EG_OP_REDUCEMIN)) {
            /* a detector's best class score per box: same NaN rule, no dtype switch */
            const float *X = (const float *)x->data + base;
            float m = op == EG_OP_REDUCEMAX ? -INFINITY : INFINITY;
            int64_t at = -1;
#if defined(__x86_64__)
            if (w.rcount > 0 && __builtin_cpu_supports("avx512f"))
                at = row_extreme_512(X, w.rcount, op == EG_OP_REDUCEMAX, 0);
#endif
            if (at >= 0)
                m = X[at];
            else if (op == EG_OP_REDUCEMAX)
                for (int64_t r = 0; r < w.rcount; r++) m = X[r] > m || X[r] != X[r] ? X[r] : m;
            else
                for (int64_t r = 0; r < w.rcount; r++) m = X[r] < m || X[r] != X[r] ? X[r] : m;
            acc = m;
        } else {
            for (int64_t r = 0; r < w.rcount; r++) {
                double v = ku_getd(x, base + (contiguous ? r : walk_off(w.nr, w.rd, w.rs, r)));
                switch (op) {
                case EG_OP_REDUCESUM:
                case EG_OP_REDUCELOGSUM: acc += v; break;
                case EG_OP_REDUCEPROD: acc *= v; break;
                case EG_OP_REDUCEMAX: acc = v > acc || isnan(v) ? v : acc; break;
                case EG_OP_REDUCEMIN: acc = v < acc || isnan(v) ? v : acc; break;
                case EG_OP_REDUCEL1: acc += fabs(v); break;
                case EG_OP_REDUCEL2:
                case EG_OP_REDUCESUMSQUARE: acc += v * v; break;
                case EG_OP_REDUCELOGSUMEXP: acc += exp(v - mx); break;
                default: break;
                }
            }
        }
        switch (op) {
        case EG_OP_REDUCEL2: acc = sqrt(acc); break;
        case EG_OP_REDUCELOGSUM: acc = log(acc); break;
        case EG_OP_REDUCELOGSUMEXP: acc = w.rcount ? mx + log(acc) : -INFINITY; break;
        default: break;
        }
        if (ku_is_int(o->dtype) && (op == EG_OP_REDUCEMAX || op == EG_OP_REDUCEMIN) && !w.rcount)
            acc = op == EG_OP_REDUCEMAX ? (double)(o->dtype == ENG_INT64 ? INT64_MIN : INT32_MIN)
                                        : (double)(o->dtype == ENG_INT64 ? INT64_MAX : INT32_MAX);
        ku_setd(o, j, acc);
    }
    return 0;
}

void ek_row_max_argmax(const float *x, int64_t rows, int64_t len, float *mx, int64_t *arg)
{
    int wide = 0;
#if defined(__x86_64__)
    wide = __builtin_cpu_supports("avx512f");
#endif
    for (int64_t o = 0; o < rows; o++) {
        const float *row = x + o * len;
        int64_t at = -1;
#if defined(__x86_64__)
        if (wide && len > 0) at = row_extreme_512(row, len, 1, 0);
#endif
        (void)wide;
        if (at >= 0) {
            mx[o] = row[at], arg[o] = at;
            continue;
        }
        /* a row with a NaN (or no AVX-512): the two scalar loops, as each op runs them */
        float m = -INFINITY, bv = len > 0 ? row[0] : 0;
        int64_t best = 0;
        for (int64_t k = 0; k < len; k++) m = row[k] > m || row[k] != row[k] ? row[k] : m;
        for (int64_t k = 1; k < len; k++)
            if (row[k] > bv) bv = row[k], best = k;
        mx[o] = m, arg[o] = best;
    }
}

/* ---- ArgMax / ArgMin ---------------------------------------------------------- */

static int infer_arg(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t ax;
    if (!x || x->dtype == ENG_BOOL)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): needs a numeric input", KNAME(a),
                     KOP(a));
    if (ku_axis(eg_attr_int(a->node, "axis", 0), x->rank, &ax))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): axis out of range", KNAME(a), KOP(a));
    int keep = (int)eg_attr_int(a->node, "keepdims", 1);
    ek_view *o = a->out[0];
    memset(o, 0, sizeof(*o));
    o->dtype = ENG_INT64;
    for (int i = 0; i < x->rank; i++)
        if (i != ax)
            o->dims[o->rank++] = x->dims[i];
        else if (keep)
            o->dims[o->rank++] = 1;
    if (x->dims[ax] == 0)
        return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): reduced dimension is empty", KNAME(a), KOP(a));
    return 0;
}

static int run_arg(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t ax = 0;
    ku_axis(eg_attr_int(a->node, "axis", 0), x->rank, &ax);
    int last = (int)eg_attr_int(a->node, "select_last_index", 0);
    int mx = a->node->op == EG_OP_ARGMAX;
    int64_t outer = ku_prod(x->dims, 0, (int)ax), len = x->dims[ax],
            inner = ku_prod(x->dims, (int)ax + 1, x->rank);
    int64_t *Y = a->out[0]->data;
    if (x->dtype == ENG_FLOAT && inner == 1 && len > 0) { /* rows: a detector's best class */
        const float *X = x->data;
        int wide = 0;
#if defined(__x86_64__)
        wide = __builtin_cpu_supports("avx512f");
#endif
        for (int64_t o = 0; o < outer; o++) {
            const float *row = X + o * len;
#if defined(__x86_64__)
            int64_t at = wide ? row_extreme_512(row, len, mx, last) : -1;
            if (at >= 0) {
                Y[o] = at;
                continue;
            }
#endif
            (void)wide;
            float bv = row[0];
            int64_t best = 0;
            for (int64_t k = 1; k < len; k++) {
                float v = row[k];
                int better = mx ? (last ? v >= bv : v > bv) : (last ? v <= bv : v < bv);
                if (better) bv = v, best = k;
            }
            Y[o] = best;
        }
        return 0;
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i, best = 0;
            double bv = ku_getd(x, base);
            for (int64_t k = 1; k < len; k++) {
                double v = ku_getd(x, base + k * inner);
                int better = mx ? (last ? v >= bv : v > bv) : (last ? v <= bv : v < bv);
                if (better) bv = v, best = k;
            }
            Y[o * inner + i] = best;
        }
    return 0;
}

/* ---- LogSoftmax / Hardmax ------------------------------------------------------ */

static int infer_softmaxlike(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (!x || x->dtype != ENG_FLOAT)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): needs float input", KNAME(a), KOP(a));
    int64_t ax = eg_attr_int(a->node, "axis", a->opset < 13 ? 1 : -1), t;
    if (ku_axis(ax, x->rank ? x->rank : 1, &t))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): axis out of range", KNAME(a), KOP(a));
    ku_shape(a->out[0], ENG_FLOAT, x->rank, x->dims);
    return 0;
}

static int run_softmaxlike(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t ax = eg_attr_int(a->node, "axis", a->opset < 13 ? 1 : -1);
    if (ax < 0) ax += x->rank;
    int64_t outer = ku_prod(x->dims, 0, (int)ax), len, inner;
    if (a->opset < 13) {
        len = ku_prod(x->dims, (int)ax, x->rank);
        inner = 1;
    } else {
        len = x->dims[ax];
        inner = ku_prod(x->dims, (int)ax + 1, x->rank);
    }
    const float *X = x->data;
    float *Y = a->out[0]->data;
    int hard = a->node->op == EG_OP_HARDMAX;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xp = X + o * len * inner + i;
            float *yp = Y + o * len * inner + i;
            float m = -INFINITY;
            int64_t arg = 0;
            for (int64_t k = 0; k < len; k++)
                if (xp[k * inner] > m) m = xp[k * inner], arg = k;
            if (hard) {
                for (int64_t k = 0; k < len; k++) yp[k * inner] = k == arg;
                continue;
            }
            double s = 0;
            for (int64_t k = 0; k < len; k++) s += exp((double)xp[k * inner] - m);
            float ls = (float)log(s);
            for (int64_t k = 0; k < len; k++) yp[k * inner] = xp[k * inner] - m - ls;
        }
    return 0;
}

/* ---- LayerNormalization ---------------------------------------------------------- */

static int ln_axis(ek_args *a, int64_t *ax)
{
    const ek_view *x = a->in[0];
    if (ku_axis(eg_attr_int(a->node, "axis", -1), x->rank, ax))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (LayerNormalization): axis out of range", KNAME(a));
    return 0;
}

static int infer_layernorm(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (!x || x->dtype != ENG_FLOAT || !a->in[1] || a->in[1]->dtype != ENG_FLOAT)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (LayerNormalization): needs float X and Scale",
                     KNAME(a));
    int64_t ax;
    int rc = ln_axis(a, &ax);
    if (rc) return rc;
    int64_t norm = ku_prod(x->dims, (int)ax, x->rank);
    for (int k = 1; k < 3 && k < a->nin; k++) {
        const ek_view *p = a->in[k];
        if (!p) continue;
        int64_t n = ek_numel(p);
        if (p->dtype != ENG_FLOAT || (n != norm && n != 1))
            return KFAIL(a, ENG_ESHAPE,
                         "node '%s' (LayerNormalization): input %d has %lld elements, the "
                         "normalised shape %lld",
                         KNAME(a), k, (long long)n, (long long)norm);
    }
    const ek_view *r = a->nin > 3 ? a->in[3] : NULL;
    if (r && (r->dtype != ENG_FLOAT || r->rank != x->rank || r->nhwc != x->nhwc ||
              memcmp(r->dims, x->dims, sizeof(int64_t) * (size_t)x->rank)))
        return KFAIL(a, ENG_ESHAPE,
                     "node '%s' (LayerNormalization): the fused residual's shape differs from "
                     "the input's",
                     KNAME(a));
    ku_shape(a->out[0], ENG_FLOAT, x->rank, x->dims);
    for (int k = 1; k < 3 && k < a->nout; k++) {
        if (!a->out[k]) continue;
        ku_shape(a->out[k], ENG_FLOAT, x->rank, x->dims);
        for (int d = (int)ax; d < x->rank; d++) a->out[k]->dims[d] = 1;
    }
    return 0;
}

#if defined(__x86_64__)
static inline __mmask16 ln_tail(int64_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* One row with AVX-512: y = x (+ r), then mean, variance and the affine map over
 * y in place; float lane sums (the C path below sums in double: ~1e-7 apart). */
__attribute__((target("avx512f"))) static void ln_row_512(const float *x, const float *r, float *y,
                                                          int64_t len, const float *S, int s1,
                                                          const float *B, int b1, float eps,
                                                          float *mean_out, float *rstd_out)
{
    __m512 acc = _mm512_setzero_ps();
    for (int64_t k = 0; k < len; k += 16) {
        __mmask16 m = ln_tail(len - k);
        __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        if (r) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, r + k));
        _mm512_mask_storeu_ps(y + k, m, v);
        acc = _mm512_add_ps(acc, v);
    }
    float mean = _mm512_reduce_add_ps(acc) / (float)len;
    __m512 mv = _mm512_set1_ps(mean), sq = _mm512_setzero_ps();
    for (int64_t k = 0; k < len; k += 16) {
        __mmask16 m = ln_tail(len - k);
        __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, y + k), mv);
        sq = _mm512_fmadd_ps(d, d, sq);
    }
    float rstd = 1.0f / sqrtf(_mm512_reduce_add_ps(sq) / (float)len + eps);
    __m512 rs = _mm512_set1_ps(rstd), s0 = _mm512_set1_ps(S[0]),
           bz = _mm512_set1_ps(B ? B[0] : 0.0f);
    for (int64_t k = 0; k < len; k += 16) {
        __mmask16 m = ln_tail(len - k);
        __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, y + k), mv), rs);
        __m512 sc = s1 ? s0 : _mm512_maskz_loadu_ps(m, S + k);
        __m512 bi = !B || b1 ? bz : _mm512_maskz_loadu_ps(m, B + k);
        _mm512_mask_storeu_ps(y + k, m, _mm512_fmadd_ps(d, sc, bi));
    }
    if (mean_out) *mean_out = mean;
    if (rstd_out) *rstd_out = rstd;
}
#endif

static int run_layernorm(ek_args *a)
{
    const ek_view *x = a->in[0], *s = a->in[1], *b = a->nin > 2 ? a->in[2] : NULL;
    /* a residual Add fused by eg_fuse_add_layernorm: normalise x + r */
    const ek_view *r = a->nin > 3 ? a->in[3] : NULL;
    int64_t ax;
    ln_axis(a, &ax);
    float eps = eg_attr_float(a->node, "epsilon", 1e-5f);
    int64_t outer = ku_prod(x->dims, 0, (int)ax), len = ku_prod(x->dims, (int)ax, x->rank);
    const float *X = x->data, *S = s->data, *B = b ? b->data : NULL, *RS = r ? r->data : NULL;
    int s1 = ek_numel(s) == 1, b1 = b && ek_numel(b) == 1;
    float *Y = a->out[0]->data;
    float *M = a->nout > 1 && a->out[1] ? a->out[1]->data : NULL;
    float *R = a->nout > 2 && a->out[2] ? a->out[2]->data : NULL;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) {
        for (int64_t o = 0; o < outer; o++)
            ln_row_512(X + o * len, RS ? RS + o * len : NULL, Y + o * len, len, S, s1, B, b1, eps,
                       M ? M + o : NULL, R ? R + o : NULL);
        return 0;
    }
#endif
    for (int64_t o = 0; o < outer; o++) {
        const float *xp = X + o * len, *rp = RS ? RS + o * len : NULL;
        float *yp = Y + o * len;
        double sum = 0, sq = 0;
        if (rp) { /* y holds x + r until it is normalised in place */
            for (int64_t k = 0; k < len; k++) yp[k] = xp[k] + rp[k];
            xp = yp;
        }
        for (int64_t k = 0; k < len; k++) sum += xp[k];
        float mean = (float)(sum / (double)len);
        for (int64_t k = 0; k < len; k++) {
            float d = xp[k] - mean;
            sq += (double)d * d;
        }
        float rstd = 1.0f / sqrtf((float)(sq / (double)len) + eps);
        for (int64_t k = 0; k < len; k++) {
            float v = (xp[k] - mean) * rstd * S[s1 ? 0 : k];
            yp[k] = B ? v + B[b1 ? 0 : k] : v;
        }
        if (M) M[o] = mean;
        if (R) R[o] = rstd;
    }
    return 0;
}

/* ---- InstanceNormalization, MeanVarianceNormalization, LRN ------------------------ */

static int infer_same_float(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (!x || x->dtype != ENG_FLOAT)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): needs float input", KNAME(a), KOP(a));
    ku_shape(a->out[0], ENG_FLOAT, x->rank, x->dims);
    return 0;
}

static int infer_instnorm(ek_args *a)
{
    const ek_view *x = a->in[0];
    int rc = infer_same_float(a);
    if (rc) return rc;
    if (x->rank < 2 || ek_numel(a->in[1]) != x->dims[1] || ek_numel(a->in[2]) != x->dims[1] ||
        a->in[1]->dtype != ENG_FLOAT || a->in[2]->dtype != ENG_FLOAT)
        return KFAIL(a, ENG_ESHAPE, "node '%s' (InstanceNormalization): scale/B must have C floats",
                     KNAME(a));
    return 0;
}

static int run_instnorm(ek_args *a)
{
    const ek_view *x = a->in[0];
    const float *X = x->data, *S = a->in[1]->data, *B = a->in[2]->data;
    float *Y = a->out[0]->data;
    float eps = eg_attr_float(a->node, "epsilon", 1e-5f);
    int64_t N = x->dims[0], C = x->dims[1], len = ku_prod(x->dims, 2, x->rank);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            const float *xp = X + (n * C + c) * len;
            float *yp = Y + (n * C + c) * len;
            double sum = 0, sq = 0;
            for (int64_t k = 0; k < len; k++) sum += xp[k];
            double mean = sum / (double)len;
            for (int64_t k = 0; k < len; k++) sq += (xp[k] - mean) * (xp[k] - mean);
            float rstd = (float)(1.0 / sqrt(sq / (double)len + eps));
            for (int64_t k = 0; k < len; k++) yp[k] = (float)(xp[k] - mean) * rstd * S[c] + B[c];
        }
    return 0;
}

static int mvn_mask(ek_args *a, int *mask)
{
    const ek_view *x = a->in[0];
    const eg_attr *ax = eg_attr_find(a->node, "axes");
    int64_t def[3] = {0, 2, 3};
    int n = ax ? ax->n : 3;
    const int64_t *axes = ax ? ax->ints : def;
    for (int i = 0; i < x->rank; i++) mask[i] = 0;
    for (int i = 0; i < n; i++) {
        int64_t t;
        if (ku_axis(axes[i], x->rank, &t))
            return KFAIL(a, ENG_EFORMAT, "node '%s' (MeanVarianceNormalization): bad axis",
                         KNAME(a));
        mask[t] = 1;
    }
    return 0;
}

static int infer_mvn(ek_args *a)
{
    int mask[ENG_MAX_RANK];
    int rc = infer_same_float(a);
    return rc ? rc : mvn_mask(a, mask);
}

static int run_mvn(ek_args *a)
{
    const ek_view *x = a->in[0];
    int mask[ENG_MAX_RANK];
    mvn_mask(a, mask);
    red_walk w;
    walk_init(&w, x, mask);
    int64_t outer = ku_prod(w.kd, 0, w.nk);
    const float *X = x->data;
    float *Y = a->out[0]->data;
    for (int64_t j = 0; j < outer; j++) {
        int64_t base = walk_off(w.nk, w.kd, w.ks, j);
        double s = 0, sq = 0;
        for (int64_t r = 0; r < w.rcount; r++) {
            double v = X[base + walk_off(w.nr, w.rd, w.rs, r)];
            s += v, sq += v * v;
        }
        double mean = s / (double)w.rcount, var = sq / (double)w.rcount - mean * mean;
        double den = sqrt(var > 0 ? var : 0) + 1e-9;
        for (int64_t r = 0; r < w.rcount; r++) {
            int64_t off = base + walk_off(w.nr, w.rd, w.rs, r);
            Y[off] = (float)((X[off] - mean) / den);
        }
    }
    return 0;
}

static int infer_lrn(ek_args *a)
{
    int rc = infer_same_float(a);
    if (rc) return rc;
    if (a->in[0]->rank < 3 || eg_attr_int(a->node, "size", 0) < 1)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (LRN): needs rank >= 3 and size >= 1", KNAME(a));
    return 0;
}

static int run_lrn(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t size = eg_attr_int(a->node, "size", 1);
    float al = eg_attr_float(a->node, "alpha", 1e-4f), be = eg_attr_float(a->node, "beta", 0.75f),
          bias = eg_attr_float(a->node, "bias", 1.0f);
    int64_t N = x->dims[0], C = x->dims[1], S = ku_prod(x->dims, 2, x->rank);
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    const float *X = x->data;
    float *Y = a->out[0]->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++) {
                double sq = 0;
                for (int64_t k = c - lo; k <= c + hi; k++)
                    if (k >= 0 && k < C) {
                        double v = X[(n * C + k) * S + s];
                        sq += v * v;
                    }
                int64_t i = (n * C + c) * S + s;
                Y[i] = (float)(X[i] / pow(bias + al / (double)size * sq, be));
            }
    return 0;
}

/* ---- CumSum --------------------------------------------------------------------- */

static int cumsum_axis(ek_args *a, int64_t *ax)
{
    const ek_view *x = a->in[0], *t = a->nin > 1 ? a->in[1] : NULL;
    int64_t v = 0;
    if (!t || ku_ints(t, &v, 1) != 1 || ku_axis(v, x->rank, ax))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (CumSum): axis must be a constant in range",
                     KNAME(a));
    return 0;
}

static int infer_cumsum(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t ax;
    if (!x || x->dtype == ENG_BOOL)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (CumSum): needs a numeric input", KNAME(a));
    int rc = cumsum_axis(a, &ax);
    if (rc) return rc;
    ku_shape(a->out[0], x->dtype, x->rank, x->dims);
    return 0;
}

static int run_cumsum(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    int64_t ax;
    cumsum_axis(a, &ax);
    int ex = (int)eg_attr_int(a->node, "exclusive", 0),
        rev = (int)eg_attr_int(a->node, "reverse", 0);
    int64_t outer = ku_prod(x->dims, 0, (int)ax), len = x->dims[ax],
            inner = ku_prod(x->dims, (int)ax + 1, x->rank);
    for (int64_t p = 0; p < outer; p++)
        for (int64_t i = 0; i < inner; i++) {
            double acc = 0;
            int64_t iacc = 0;
            for (int64_t k0 = 0; k0 < len; k0++) {
                int64_t k = rev ? len - 1 - k0 : k0, off = (p * len + k) * inner + i;
                double v = ku_getd(x, off);
                int64_t iv = ku_geti(x, off);
                if (ex) {
                    if (ku_is_int(o->dtype))
                        ku_seti(o, off, iacc);
                    else
                        ku_setd(o, off, acc);
                }
                acc += v, iacc += iv;
                if (!ex) {
                    if (ku_is_int(o->dtype))
                        ku_seti(o, off, iacc);
                    else
                        ku_setd(o, off, acc);
                }
            }
        }
    return 0;
}

/* ---- GlobalMaxPool ----------------------------------------------------------------- */

static int infer_gmp(ek_args *a)
{
    const ek_view *x = a->in[0];
    int rc = infer_same_float(a);
    if (rc) return rc;
    if (x->rank < 3)
        return KFAIL(a, ENG_ESHAPE, "node '%s' (GlobalMaxPool): needs rank >= 3", KNAME(a));
    for (int d = 2; d < x->rank; d++) a->out[0]->dims[d] = 1;
    return 0;
}

static int run_gmp(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t NC = x->dims[0] * x->dims[1], S = ku_prod(x->dims, 2, x->rank);
    const float *X = x->data;
    float *Y = a->out[0]->data;
    for (int64_t i = 0; i < NC; i++) {
        float m = -INFINITY;
        for (int64_t s = 0; s < S; s++) m = X[i * S + s] > m ? X[i * S + s] : m;
        Y[i] = m;
    }
    return 0;
}

const ek_op ek_op_reduce = {infer_reduce, run_reduce, 0, 2u};
const ek_op ek_op_arg = {infer_arg, run_arg, 0, 0};
const ek_op ek_op_softmaxlike = {infer_softmaxlike, run_softmaxlike, 0, 0};
const ek_op ek_op_layernorm = {infer_layernorm, run_layernorm, 0, 0};
const ek_op ek_op_instnorm = {infer_instnorm, run_instnorm, 0, 0};
const ek_op ek_op_mvn = {infer_mvn, run_mvn, 0, 0};
const ek_op ek_op_lrn = {infer_lrn, run_lrn, 0, 0};
const ek_op ek_op_cumsum = {infer_cumsum, run_cumsum, 0, 2u};
const ek_op ek_op_gmp = {infer_gmp, run_gmp, 0, 0};
