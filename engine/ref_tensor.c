/* ref_tensor: reference kernels for elementwise ops (activations, broadcasting
 * arithmetic) and for the data-movement and shape ops (Reshape, Transpose,
 * Concat, Gather, Shape, Squeeze, Split ...). */
#include "engine/kernels.h"
#include "engine/simd_exp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define FAIL(a, st, ...) eg_err((a)->err, (a)->errlen, st, __VA_ARGS__)

void ek_strides(const ek_view *v, int64_t *st)
{
    if (v->rank == 4 && v->nhwc) {
        st[1] = 1;
        st[3] = v->dims[1];
        st[2] = v->dims[3] * v->dims[1];
        st[0] = v->dims[2] * st[2];
        return;
    }
    int64_t s = 1;
    for (int i = v->rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= v->dims[i];
    }
}

int64_t ek_numel(const ek_view *v)
{
    return eg_numel(v->rank, v->dims);
}

size_t ek_bytes(const ek_view *v)
{
    return (size_t)ek_numel(v) * eg_dtype_size(v->dtype);
}

int ek_run(const ek_op *op, ek_args *a)
{
    /* An op whose every output is empty has nothing to compute, and kernels
     * may divide by a zero dimension (N*C, a row length) to find their loop
     * bounds: such graphs are legal ONNX, so skip them here, once. */
    int any = 0;
    for (int k = 0; k < a->nout; k++)
        if (a->out[k] && ek_numel(a->out[k]) > 0) any = 1;
    return any ? op->run(a) : 0;
}

static void copy_shape(ek_view *o, const ek_view *i)
{
    o->dtype = i->dtype;
    o->rank = i->rank;
    memcpy(o->dims, i->dims, sizeof(o->dims));
    o->nhwc = i->nhwc;
}

static int norm_axis(int64_t axis, int rank, int64_t *out)
{
    if (axis < -rank || axis >= rank) return -1;
    *out = axis < 0 ? axis + rank : axis;
    return 0;
}

/* Reads an integer list from a constant int64/int32 tensor. */
static int read_ints(const ek_view *v, int64_t *out, int cap)
{
    int64_t n = ek_numel(v);
    if (n > cap || (v->dtype != ENG_INT64 && v->dtype != ENG_INT32) || !v->data) return -1;
    for (int64_t i = 0; i < n; i++)
        out[i] = v->dtype == ENG_INT64 ? ((int64_t *)v->data)[i] : ((int32_t *)v->data)[i];
    return (int)n;
}

/* ---- activations ---------------------------------------------------------- */

#if defined(__x86_64__)
/* 1 / (1 + e^-x) 16 lanes wide (ek_exp512 clamps to [-87, 88], so the sum
 * never overflows); a detector's decode head runs it over every anchor and class. */
__attribute__((target("avx512f"))) static void sigmoid_512(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(k, x + i), t = _mm512_sub_ps(_mm512_setzero_ps(), xv);
        __m512 y =
            _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), ek_exp512(t)));
        /* NaN stays NaN (the clamps would have made it a number) */
        y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(xv, xv, _CMP_UNORD_Q), xv);
        _mm512_mask_storeu_ps(x + i, k, y);
    }
}
#endif

void ek_act_apply(const eg_act *act, float *x, int64_t n)
{
    float al = act->alpha, be = act->beta;
    switch (act->kind) {
    case EG_ACT_NONE: break;
    case EG_ACT_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] < 0 ? x[i] * al : x[i];
        break;
    case EG_ACT_CLIP:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] < al ? al : (x[i] > be ? be : x[i]);
        break;
    case EG_ACT_SIGMOID:
#if defined(__x86_64__)
        if (__builtin_cpu_supports("avx512f")) {
            sigmoid_512(x, n);
            break;
        }
#endif
        for (int64_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case EG_ACT_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) x[i] = fmaxf(0.0f, fminf(1.0f, al * x[i] + be));
        break;
    case EG_ACT_HARDSWISH:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] * fmaxf(0.0f, fminf(1.0f, x[i] / 6.0f + 0.5f));
        break;
    case EG_ACT_SWISH:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    case EG_ACT_GELU:
        for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678f));
        break;
    }
}

static int infer_unary(ek_args *a)
{
    if (!a->in[0]) return FAIL(a, ENG_EFORMAT, "node '%s': missing input", a->node->name);
    if (a->in[0]->dtype != ENG_FLOAT)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): only float tensors supported",
                    a->node->name, eg_op_name(a->node->op));
    copy_shape(a->out[0], a->in[0]);
    return 0;
}

/* The activation a unary node computes (Clip bounds read at run time). */
static int unary_act(const ek_args *a, eg_act *act)
{
    const eg_node *n = a->node;
    act->alpha = act->beta = 0;
    switch (n->op) {
    case EG_OP_RELU: act->kind = EG_ACT_RELU; return 0;
    case EG_OP_LEAKYRELU:
        act->kind = EG_ACT_RELU;
        act->alpha = eg_attr_float(n, "alpha", 0.01f);
        return 0;
    case EG_OP_SIGMOID: act->kind = EG_ACT_SIGMOID; return 0;
    case EG_OP_HARDSIGMOID:
        act->kind = EG_ACT_HARDSIGMOID;
        act->alpha = eg_attr_float(n, "alpha", 0.2f);
        act->beta = eg_attr_float(n, "beta", 0.5f);
        return 0;
    case EG_OP_HARDSWISH: act->kind = EG_ACT_HARDSWISH; return 0;
    case EG_OP_CLIP:
        act->kind = EG_ACT_CLIP;
        act->alpha = -INFINITY;
        act->beta = INFINITY;
        if (a->opset < 11) {
            act->alpha = eg_attr_float(n, "min", -INFINITY);
            act->beta = eg_attr_float(n, "max", INFINITY);
            return 0;
        }
        for (int k = 1; k < 3 && k < a->nin; k++) {
            const ek_view *b = a->in[k];
            if (!b) continue;
            if (b->dtype != ENG_FLOAT || ek_numel(b) != 1 || !b->data)
                return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (Clip): bound must be a float scalar",
                            n->name);
            *(k == 1 ? &act->alpha : &act->beta) = *(const float *)b->data;
        }
        return 0;
    default: return FAIL(a, ENG_EINVAL, "node '%s': not an activation", n->name);
    }
}

static int run_unary(ek_args *a)
{
    eg_act act;
    int rc = unary_act(a, &act);
    if (rc) return rc;
    int64_t n = ek_numel(a->in[0]);
    if (a->out[0]->data != a->in[0]->data)
        memcpy(a->out[0]->data, a->in[0]->data, (size_t)n * sizeof(float));
    ek_act_apply(&act, a->out[0]->data, n);
    return 0;
}

static int infer_clip(ek_args *a)
{
    int rc = infer_unary(a);
    for (int k = 1; !rc && k < a->nin && k < 3; k++)
        if (a->in[k] && (a->in[k]->dtype != ENG_FLOAT || ek_numel(a->in[k]) != 1))
            rc = FAIL(a, ENG_EUNSUPPORTED, "node '%s' (Clip): bounds must be float scalars",
                      a->node->name);
    return rc;
}

/* ---- broadcasting arithmetic ---------------------------------------------- */

static int infer_binary(ek_args *a)
{
    const ek_view *x = a->in[0], *y = a->nin > 1 ? a->in[1] : NULL;
    if (!x || !y) return FAIL(a, ENG_EFORMAT, "node '%s': needs two inputs", a->node->name);
    if (x->dtype != y->dtype)
        return FAIL(a, ENG_EFORMAT, "node '%s': input types differ", a->node->name);
    if (x->dtype != ENG_FLOAT && x->dtype != ENG_INT64 && x->dtype != ENG_INT32 &&
        x->dtype != ENG_DOUBLE)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): type %d not supported", a->node->name,
                    eg_op_name(a->node->op), x->dtype);
    ek_view *o = a->out[0];
    o->dtype = x->dtype;
    o->rank = x->rank > y->rank ? x->rank : y->rank;
    for (int i = 0; i < o->rank; i++) {
        int ix = i - (o->rank - x->rank), iy = i - (o->rank - y->rank);
        int64_t dx = ix >= 0 ? x->dims[ix] : 1, dy = iy >= 0 ? y->dims[iy] : 1;
        if (dx != dy && dx != 1 && dy != 1)
            return FAIL(a, ENG_ESHAPE,
                        "node '%s' (%s): shapes do not broadcast (dim %d: %lld vs %lld)",
                        a->node->name, eg_op_name(a->node->op), i, (long long)dx, (long long)dy);
        o->dims[i] = dx == 1 ? dy : dx;
    }
    /* Keep NHWC when a full-size input arrives in it: no layout conversion needed. */
    o->nhwc = 0;
    if (o->rank == 4)
        for (int k = 0; k < 2; k++) {
            const ek_view *v = a->in[k];
            if (v->nhwc && v->rank == 4 && !memcmp(v->dims, o->dims, 4 * sizeof(int64_t)))
                o->nhwc = 1;
        }
    return 0;
}

/* Broadcast strides of v against output rank/dims (0 where v is broadcast). */
static void bcast_strides(const ek_view *v, const ek_view *o, int64_t *st)
{
    int64_t own[ENG_MAX_RANK];
    ek_strides(v, own);
    for (int i = 0; i < o->rank; i++) {
        int iv = i - (o->rank - v->rank);
        st[i] = iv < 0 || v->dims[iv] == 1 ? 0 : own[iv];
    }
}

#define BIN_LOOP(T, EXPR)                                                                          \
    do {                                                                                           \
        const T *xa = (const T *)x->data + px, *ya = (const T *)y->data + py;                      \
        T *oa = (T *)o->data + po;                                                                 \
        if (so == 1 && sx == 1 && sy == 1) /* the forms a compiler vectorises */                   \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                T p = xa[i], q = ya[i];                                                            \
                oa[i] = EXPR;                                                                      \
            }                                                                                      \
        else if (so == 1 && sx == 0 && sy == 1)                                                    \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                T p = xa[0], q = ya[i];                                                            \
                oa[i] = EXPR;                                                                      \
            }                                                                                      \
        else if (so == 1 && sx == 1 && sy == 0)                                                    \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                T p = xa[i], q = ya[0];                                                            \
                oa[i] = EXPR;                                                                      \
            }                                                                                      \
        else                                                                                       \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                T p = xa[i * sx], q = ya[i * sy];                                                  \
                oa[i * so] = EXPR;                                                                 \
            }                                                                                      \
    } while (0)

static int run_binary(ek_args *a)
{
    const ek_view *x = a->in[0], *y = a->in[1];
    ek_view *o = a->out[0];
    int r = o->rank;
    if (ek_numel(o) == 0) return 0;
    int64_t stx[ENG_MAX_RANK], sty[ENG_MAX_RANK], sto[ENG_MAX_RANK];
    bcast_strides(x, o, stx);
    bcast_strides(y, o, sty);
    ek_strides(o, sto);
    /* Walk the output in its memory order so the inner loop is contiguous. */
    int ord[ENG_MAX_RANK] = {0};
    for (int i = 0; i < r; i++) ord[i] = i;
    if (r == 4 && o->nhwc) ord[1] = 2, ord[2] = 3, ord[3] = 1;
    /* dims in memory order, adjacent ones merged where all three tensors step
     * through them as one (a [.., 80, 2] * scalar is one loop, not 80-long rows
     * of 2) */
    int64_t md[ENG_MAX_RANK], mx[ENG_MAX_RANK], my[ENG_MAX_RANK], mo[ENG_MAX_RANK];
    int mr = 0;
    for (int i = 0; i < r; i++) {
        int k = ord[i];
        if (mr && mx[mr - 1] == stx[k] * o->dims[k] && my[mr - 1] == sty[k] * o->dims[k] &&
            mo[mr - 1] == sto[k] * o->dims[k]) {
            md[mr - 1] *= o->dims[k];
            mx[mr - 1] = stx[k], my[mr - 1] = sty[k], mo[mr - 1] = sto[k];
            continue;
        }
        md[mr] = o->dims[k], mx[mr] = stx[k], my[mr] = sty[k], mo[mr] = sto[k];
        mr++;
    }
    if (mr == 0) {
        mr = 1;
        md[0] = 1;
        mx[0] = my[0] = mo[0] = 0;
    }
    int64_t inner = md[mr - 1], sx = mx[mr - 1], sy = my[mr - 1], so = mo[mr - 1];
    int64_t cnt[ENG_MAX_RANK] = {0};
    int64_t outer = ek_numel(o) / inner;
    eg_op op = a->node->op;
    for (int64_t it = 0; it < outer; it++) {
        int64_t px = 0, py = 0, po = 0;
        for (int k = 0; k < mr - 1; k++) {
            px += cnt[k] * mx[k];
            py += cnt[k] * my[k];
            po += cnt[k] * mo[k];
        }
        if (o->dtype == ENG_FLOAT) {
            if (op == EG_OP_ADD)
                BIN_LOOP(float, p + q);
            else if (op == EG_OP_SUB)
                BIN_LOOP(float, p - q);
            else if (op == EG_OP_MUL)
                BIN_LOOP(float, p *q);
            else
                BIN_LOOP(float, p / q);
        } else if (o->dtype == ENG_DOUBLE) {
            if (op == EG_OP_ADD)
                BIN_LOOP(double, p + q);
            else if (op == EG_OP_SUB)
                BIN_LOOP(double, p - q);
            else if (op == EG_OP_MUL)
                BIN_LOOP(double, p *q);
            else
                BIN_LOOP(double, p / q);
        } else if (o->dtype == ENG_INT64) {
            if (op == EG_OP_ADD)
                BIN_LOOP(int64_t, (int64_t)((uint64_t)p + (uint64_t)q));
            else if (op == EG_OP_SUB)
                BIN_LOOP(int64_t, (int64_t)((uint64_t)p - (uint64_t)q));
            else if (op == EG_OP_MUL)
                BIN_LOOP(int64_t, (int64_t)((uint64_t)p * (uint64_t)q));
            else
                BIN_LOOP(int64_t, q == 0 || (q == -1 && p == INT64_MIN) ? 0 : p / q);
        } else {
            if (op == EG_OP_ADD)
                BIN_LOOP(int32_t, (int32_t)((uint32_t)p + (uint32_t)q));
            else if (op == EG_OP_SUB)
                BIN_LOOP(int32_t, (int32_t)((uint32_t)p - (uint32_t)q));
            else if (op == EG_OP_MUL)
                BIN_LOOP(int32_t, (int32_t)((uint32_t)p * (uint32_t)q));
            else
                BIN_LOOP(int32_t, q == 0 || (q == -1 && p == INT32_MIN) ? 0 : p / q);
        }
        for (int k = mr - 2; k >= 0; k--) {
            if (++cnt[k] < md[k]) break;
            cnt[k] = 0;
        }
    }
    return 0;
}

/* ---- copies: Identity, Dropout, Flatten, Reshape, Squeeze, Unsqueeze ------ */

static int run_copy(ek_args *a)
{
    if (a->out[0]->data != a->in[0]->data)
        memcpy(a->out[0]->data, a->in[0]->data, ek_bytes(a->in[0]));
    return 0;
}

static int infer_identity(ek_args *a)
{
    if (!a->in[0]) return FAIL(a, ENG_EFORMAT, "node '%s': missing input", a->node->name);
    copy_shape(a->out[0], a->in[0]);
    return 0;
}

static int infer_dropout(ek_args *a)
{
    int rc = infer_identity(a);
    if (rc) return rc;
    if (a->nin > 2 && a->in[2]) {
        const ek_view *t = a->in[2];
        if (!t->data || t->dtype != ENG_BOOL)
            return FAIL(a, ENG_EUNSUPPORTED,
                        "node '%s' (Dropout): training_mode must be a constant", a->node->name);
        if (*(const uint8_t *)t->data)
            return FAIL(a, ENG_EUNSUPPORTED,
                        "node '%s' (Dropout): training mode (random masks) not supported",
                        a->node->name);
    }
    if (a->nout > 1 && a->out[1]) {
        copy_shape(a->out[1], a->in[0]);
        a->out[1]->dtype = ENG_BOOL;
    }
    return 0;
}

static int run_dropout(ek_args *a)
{
    run_copy(a);
    if (a->nout > 1 && a->out[1]) memset(a->out[1]->data, 1, (size_t)ek_numel(a->out[1]));
    return 0;
}

static int infer_flatten(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t axis = eg_attr_int(a->node, "axis", 1), ax;
    if (norm_axis(axis, x->rank + 1, &ax) || (axis < 0 && norm_axis(axis, x->rank, &ax)))
        return FAIL(a, ENG_EFORMAT, "node '%s' (Flatten): axis %lld out of range", a->node->name,
                    (long long)axis);
    ek_view *o = a->out[0];
    o->dtype = x->dtype;
    o->rank = 2;
    o->nhwc = 0;
    o->dims[0] = eg_numel((int)ax, x->dims);
    o->dims[1] = eg_numel(x->rank - (int)ax, x->dims + ax);
    return 0;
}

static int infer_reshape(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t shape[ENG_MAX_RANK];
    int n;
    if (a->opset < 5) {
        const eg_attr *s = eg_attr_find(a->node, "shape");
        n = s ? s->n : -1;
        if (n > ENG_MAX_RANK) n = -1;
        for (int i = 0; i < n; i++) shape[i] = s->ints[i];
    } else {
        if (a->nin < 2 || !a->in[1])
            return FAIL(a, ENG_EFORMAT, "node '%s' (Reshape): needs a shape input", a->node->name);
        n = read_ints(a->in[1], shape, ENG_MAX_RANK);
    }
    if (n < 0)
        return FAIL(a, ENG_EUNSUPPORTED,
                    "node '%s' (Reshape): shape must be a constant int list (rank <= %d)",
                    a->node->name, ENG_MAX_RANK);
    int allowzero = (int)eg_attr_int(a->node, "allowzero", 0);
    int64_t known = 1, total = ek_numel(x);
    int minus = -1;
    ek_view *o = a->out[0];
    for (int i = 0; i < n; i++) {
        int64_t d = shape[i];
        if (d == 0 && !allowzero) {
            if (i >= x->rank)
                return FAIL(a, ENG_ESHAPE, "node '%s' (Reshape): 0 at dim %d beyond input rank",
                            a->node->name, i);
            d = x->dims[i];
        }
        if (d == -1) {
            if (minus >= 0)
                return FAIL(a, ENG_ESHAPE, "node '%s' (Reshape): two -1 dims", a->node->name);
            minus = i;
            d = 1;
        } else if (d < 0) {
            return FAIL(a, ENG_ESHAPE, "node '%s' (Reshape): bad dim %lld", a->node->name,
                        (long long)d);
        }
        o->dims[i] = d;
        known *= d;
    }
    if (minus >= 0) {
        if (known == 0 || total % known)
            return FAIL(a, ENG_ESHAPE, "node '%s' (Reshape): cannot infer -1", a->node->name);
        o->dims[minus] = total / known;
        known *= o->dims[minus];
    }
    if (known != total)
        return FAIL(a, ENG_ESHAPE, "node '%s' (Reshape): %lld elements into shape of %lld",
                    a->node->name, (long long)total, (long long)known);
    o->dtype = x->dtype;
    o->rank = n;
    o->nhwc = 0;
    return 0;
}

/* Squeeze/Unsqueeze axes: attribute before opset 13, input from 13 on. */
static int get_axes(ek_args *a, int64_t *axes, int *n)
{
    if (a->opset < 13 || (a->node->op == EG_OP_REDUCEMEAN && a->opset < 18)) {
        const eg_attr *ax = eg_attr_find(a->node, "axes");
        *n = ax ? ax->n : 0;
        if (*n > ENG_MAX_RANK)
            return FAIL(a, ENG_EUNSUPPORTED, "node '%s': too many axes", a->node->name);
        for (int i = 0; i < *n; i++) axes[i] = ax->ints[i];
        return 0;
    }
    *n = 0;
    if (a->nin < 2 || !a->in[1]) return 0;
    *n = read_ints(a->in[1], axes, ENG_MAX_RANK);
    if (*n < 0)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): axes must be a constant int list",
                    a->node->name, eg_op_name(a->node->op));
    return 0;
}

static int infer_squeeze(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t axes[ENG_MAX_RANK];
    int n, rc = get_axes(a, axes, &n);
    if (rc) return rc;
    int drop[ENG_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        int64_t ax;
        if (norm_axis(axes[i], x->rank, &ax) || x->dims[ax] != 1)
            return FAIL(a, ENG_ESHAPE, "node '%s' (Squeeze): axis %lld is not a dim of size 1",
                        a->node->name, (long long)axes[i]);
        drop[ax] = 1;
    }
    ek_view *o = a->out[0];
    o->dtype = x->dtype;
    o->nhwc = 0;
    o->rank = 0;
    for (int i = 0; i < x->rank; i++)
        if (!(n ? drop[i] : x->dims[i] == 1)) o->dims[o->rank++] = x->dims[i];
    return 0;
}

static int infer_unsqueeze(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t axes[ENG_MAX_RANK];
    int n, rc = get_axes(a, axes, &n);
    if (rc) return rc;
    int r = x->rank + n;
    if (n == 0 || r > ENG_MAX_RANK)
        return FAIL(a, ENG_ESHAPE, "node '%s' (Unsqueeze): bad axes", a->node->name);
    int ins[ENG_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        int64_t ax;
        if (norm_axis(axes[i], r, &ax) || ins[ax])
            return FAIL(a, ENG_ESHAPE, "node '%s' (Unsqueeze): bad axis %lld", a->node->name,
                        (long long)axes[i]);
        ins[ax] = 1;
    }
    ek_view *o = a->out[0];
    o->dtype = x->dtype;
    o->nhwc = 0;
    o->rank = r;
    for (int i = 0, k = 0; i < r; i++) o->dims[i] = ins[i] ? 1 : x->dims[k++];
    return 0;
}

/* ---- Transpose ------------------------------------------------------------- */

static int get_perm(ek_args *a, int64_t *perm)
{
    const ek_view *x = a->in[0];
    const eg_attr *p = eg_attr_find(a->node, "perm");
    int seen[ENG_MAX_RANK] = {0};
    for (int i = 0; i < x->rank; i++) {
        perm[i] = p ? (i < p->n ? p->ints[i] : -1) : x->rank - 1 - i;
        if (perm[i] < 0 || perm[i] >= x->rank || seen[perm[i]]++)
            return FAIL(a, ENG_EFORMAT, "node '%s' (Transpose): bad perm", a->node->name);
    }
    if (p && p->n != x->rank)
        return FAIL(a, ENG_EFORMAT, "node '%s' (Transpose): perm length differs from rank",
                    a->node->name);
    return 0;
}

static int infer_transpose(ek_args *a)
{
    int64_t perm[ENG_MAX_RANK];
    int rc = get_perm(a, perm);
    if (rc) return rc;
    ek_view *o = a->out[0];
    o->dtype = a->in[0]->dtype;
    o->rank = a->in[0]->rank;
    o->nhwc = 0;
    for (int i = 0; i < o->rank; i++) o->dims[i] = a->in[0]->dims[perm[i]];
    return 0;
}

void ek_strided_copy(void *dst, const void *src, int rank, const int64_t *dims, const int64_t *sst,
                     size_t es)
{
    int64_t n = 1, cnt[ENG_MAX_RANK] = {0};
    for (int k = 0; k < rank; k++) n *= dims[k];
    if (n <= 0) return;
    if (rank == 0) {
        memcpy(dst, src, es);
        return;
    }
    int64_t len = dims[rank - 1], is = sst[rank - 1], off = 0;
    char *d = dst;
    const char *s = src;
    for (int64_t done = 0; done < n; done += len) {
        if (is == 1)
            memcpy(d, s + off * (int64_t)es, (size_t)len * es);
        else if (es == 4)
            for (int64_t i = 0; i < len; i++)
                memcpy(d + i * 4, s + (off + i * is) * 4, 4); /* a plain 4-byte move */
        else if (es == 8)
            for (int64_t i = 0; i < len; i++) memcpy(d + i * 8, s + (off + i * is) * 8, 8);
        else
            for (int64_t i = 0; i < len; i++)
                memcpy(d + i * es, s + (off + i * is) * (int64_t)es, es);
        d += (size_t)len * es;
        /* odometer over the outer dims, keeping the source offset incremental */
        for (int k = rank - 2; k >= 0; k--) {
            off += sst[k];
            if (++cnt[k] < dims[k]) break;
            off -= sst[k] * dims[k];
            cnt[k] = 0;
        }
    }
}

static int run_transpose(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    int64_t perm[ENG_MAX_RANK], st[ENG_MAX_RANK], sst[ENG_MAX_RANK];
    get_perm(a, perm);
    ek_strides(x, st);
    for (int k = 0; k < o->rank; k++) sst[k] = st[perm[k]];
    ek_strided_copy(o->data, x->data, o->rank, o->dims, sst, eg_dtype_size(x->dtype));
    return 0;
}

/* ---- Concat and Split ------------------------------------------------------ */

static int infer_concat(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (!x) return FAIL(a, ENG_EFORMAT, "node '%s' (Concat): no inputs", a->node->name);
    int64_t ax = 0;
    if (norm_axis(eg_attr_int(a->node, "axis", a->opset < 4 ? 1 : 0), x->rank, &ax))
        return FAIL(a, ENG_EFORMAT, "node '%s' (Concat): axis out of range", a->node->name);
    ek_view *o = a->out[0];
    copy_shape(o, x);
    o->dims[ax] = 0;
    int all_nhwc = 1;
    for (int k = 0; k < a->nin; k++) {
        const ek_view *v = a->in[k];
        if (!v || v->rank != x->rank || v->dtype != x->dtype)
            return FAIL(a, ENG_ESHAPE, "node '%s' (Concat): input %d rank or type differs",
                        a->node->name, k);
        for (int d = 0; d < x->rank; d++)
            if (d != ax && v->dims[d] != x->dims[d])
                return FAIL(a, ENG_ESHAPE, "node '%s' (Concat): input %d dim %d differs",
                            a->node->name, k, d);
        o->dims[ax] += v->dims[ax];
        all_nhwc &= v->nhwc;
    }
    o->nhwc = all_nhwc && x->rank == 4 && ax == 1;
    return 0;
}

static int run_concat(ek_args *a)
{
    ek_view *o = a->out[0];
    int64_t ax = 0;
    norm_axis(eg_attr_int(a->node, "axis", a->opset < 4 ? 1 : 0), o->rank, &ax);
    if (o->nhwc) /* channels are innermost: concatenate per pixel */
        ax = 3;
    size_t es = eg_dtype_size(o->dtype);
    int64_t outer = 1, inner = 1;
    int64_t pd[4] = {o->dims[0], o->dims[2], o->dims[3], o->dims[1]};
    const int64_t *dims = o->nhwc ? pd : o->dims;
    for (int d = 0; d < ax; d++) outer *= dims[d];
    for (int d = (int)ax + 1; d < o->rank; d++) inner *= dims[d];
    int64_t orow = dims[ax] * inner, pos = 0;
    for (int k = 0; k < a->nin; k++) {
        const ek_view *v = a->in[k];
        int64_t rowk = (o->nhwc ? v->dims[1] : v->dims[ax]) * inner;
        for (int64_t i = 0; i < outer; i++)
            memcpy((char *)o->data + (size_t)(i * orow + pos) * es,
                   (const char *)v->data + (size_t)(i * rowk) * es, (size_t)rowk * es);
        pos += rowk;
    }
    return 0;
}

static int split_sizes(ek_args *a, int64_t ax, int64_t *sz)
{
    const ek_view *x = a->in[0];
    int64_t s[EG_MAX_OUT];
    int n = -1;
    if (a->opset < 13) {
        const eg_attr *sp = eg_attr_find(a->node, "split");
        if (sp && sp->n <= EG_MAX_OUT) {
            n = sp->n;
            memcpy(s, sp->ints, (size_t)n * sizeof(int64_t));
        }
    } else if (a->nin > 1 && a->in[1]) {
        n = read_ints(a->in[1], s, EG_MAX_OUT);
        if (n < 0)
            return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (Split): split must be constant",
                        a->node->name);
    }
    int64_t total = x->dims[ax];
    if (n < 0) {
        int64_t parts = eg_attr_int(a->node, "num_outputs", a->nout);
        if (parts != a->nout || parts <= 0)
            return FAIL(a, ENG_EFORMAT, "node '%s' (Split): bad num_outputs", a->node->name);
        int64_t each = (total + parts - 1) / parts;
        if (a->opset < 18 && total % parts)
            return FAIL(a, ENG_ESHAPE, "node '%s' (Split): %lld not divisible into %lld",
                        a->node->name, (long long)total, (long long)parts);
        for (int i = 0; i < a->nout; i++) {
            sz[i] = total - each * i < each ? total - each * i : each;
            if (sz[i] < 0) sz[i] = 0;
        }
        return 0;
    }
    if (n != a->nout)
        return FAIL(a, ENG_EFORMAT, "node '%s' (Split): %d sizes for %d outputs", a->node->name, n,
                    a->nout);
    int64_t sum = 0;
    for (int i = 0; i < n; i++) sum += sz[i] = s[i];
    if (sum != total)
        return FAIL(a, ENG_ESHAPE, "node '%s' (Split): sizes sum to %lld, dim is %lld",
                    a->node->name, (long long)sum, (long long)total);
    return 0;
}

static int infer_split(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t ax, sz[EG_MAX_OUT];
    if (norm_axis(eg_attr_int(a->node, "axis", 0), x->rank, &ax))
        return FAIL(a, ENG_EFORMAT, "node '%s' (Split): axis out of range", a->node->name);
    int rc = split_sizes(a, ax, sz);
    for (int i = 0; !rc && i < a->nout; i++) {
        if (!a->out[i]) continue;
        copy_shape(a->out[i], x); /* an NHWC input gives NHWC parts (C2f blocks) */
        a->out[i]->dims[ax] = sz[i];
    }
    return rc;
}

static int run_split(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t ax = 0, sz[EG_MAX_OUT], outer = 1, inner = 1;
    norm_axis(eg_attr_int(a->node, "axis", 0), x->rank, &ax);
    split_sizes(a, ax, sz);
    size_t es = eg_dtype_size(x->dtype);
    /* NHWC: split along the physical axis (N, H, W, C order) */
    int64_t pd[4] = {x->dims[0], x->dims[2], x->dims[3], x->dims[1]};
    static const int phys[4] = {0, 3, 1, 2};
    const int64_t *dims = x->nhwc && x->rank == 4 ? pd : x->dims;
    int64_t pax = x->nhwc && x->rank == 4 ? phys[ax] : ax;
    for (int d = 0; d < pax; d++) outer *= dims[d];
    for (int d = (int)pax + 1; d < x->rank; d++) inner *= dims[d];
    int64_t pos = 0, row = dims[pax] * inner;
    for (int k = 0; k < a->nout; k++) {
        int64_t rk = sz[k] * inner;
        for (int64_t i = 0; a->out[k] && i < outer; i++)
            memcpy((char *)a->out[k]->data + (size_t)(i * rk) * es,
                   (const char *)x->data + (size_t)(i * row + pos) * es, (size_t)rk * es);
        pos += rk;
    }
    return 0;
}

/* ---- Shape and Gather ------------------------------------------------------ */

static void shape_range(const ek_args *a, int64_t *s, int64_t *e)
{
    int r = a->in[0]->rank;
    *s = eg_attr_int(a->node, "start", 0);
    *e = eg_attr_int(a->node, "end", r);
    if (*s < 0) *s += r;
    if (*e < 0) *e += r;
    *s = *s < 0 ? 0 : (*s > r ? r : *s);
    *e = *e < 0 ? 0 : (*e > r ? r : *e);
    if (*e < *s) *e = *s;
}

static int infer_shape(ek_args *a)
{
    int64_t s, e;
    shape_range(a, &s, &e);
    ek_view *o = a->out[0];
    o->dtype = ENG_INT64;
    o->rank = 1;
    o->nhwc = 0;
    o->dims[0] = e - s;
    return 0;
}

static int run_shape(ek_args *a)
{
    int64_t s, e;
    shape_range(a, &s, &e);
    for (int64_t i = s; i < e; i++) ((int64_t *)a->out[0]->data)[i - s] = a->in[0]->dims[i];
    return 0;
}

static int infer_gather(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->nin > 1 ? a->in[1] : NULL;
    int64_t ax = 0;
    if (!idx || (idx->dtype != ENG_INT64 && idx->dtype != ENG_INT32))
        return FAIL(a, ENG_EFORMAT, "node '%s' (Gather): needs int indices", a->node->name);
    if (norm_axis(eg_attr_int(a->node, "axis", 0), x->rank, &ax))
        return FAIL(a, ENG_EFORMAT, "node '%s' (Gather): axis out of range", a->node->name);
    ek_view *o = a->out[0];
    o->rank = x->rank - 1 + idx->rank;
    if (o->rank > ENG_MAX_RANK)
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (Gather): result rank too large",
                    a->node->name);
    o->dtype = x->dtype;
    o->nhwc = 0;
    int k = 0;
    for (int d = 0; d < ax; d++) o->dims[k++] = x->dims[d];
    for (int d = 0; d < idx->rank; d++) o->dims[k++] = idx->dims[d];
    for (int d = (int)ax + 1; d < x->rank; d++) o->dims[k++] = x->dims[d];
    return 0;
}

static int run_gather(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1];
    int64_t ax = 0, outer = 1, inner = 1, ni = ek_numel(idx);
    norm_axis(eg_attr_int(a->node, "axis", 0), x->rank, &ax);
    for (int d = 0; d < ax; d++) outer *= x->dims[d];
    for (int d = (int)ax + 1; d < x->rank; d++) inner *= x->dims[d];
    size_t es = eg_dtype_size(x->dtype), row = (size_t)inner * es;
    int64_t len = x->dims[ax];
    for (int64_t j = 0; j < ni; j++) {
        int64_t k = idx->dtype == ENG_INT64 ? ((const int64_t *)idx->data)[j]
                                            : ((const int32_t *)idx->data)[j];
        if (k < -len || k >= len)
            return FAIL(a, ENG_EINVAL, "node '%s' (Gather): index %lld out of range [%lld, %lld)",
                        a->node->name, (long long)k, (long long)-len, (long long)len);
        if (k < 0) k += len;
        for (int64_t i = 0; i < outer; i++)
            memcpy((char *)a->out[0]->data + ((size_t)(i * ni + j)) * row,
                   (const char *)x->data + ((size_t)(i * len + k)) * row, row);
    }
    return 0;
}

const ek_op ek_op_relu = {infer_unary, run_unary, EK_NHWC_OK, 0};
const ek_op ek_op_leakyrelu = {infer_unary, run_unary, EK_NHWC_OK, 0};
const ek_op ek_op_sigmoid = {infer_unary, run_unary, EK_NHWC_OK, 0};
const ek_op ek_op_hardsigmoid = {infer_unary, run_unary, EK_NHWC_OK, 0};
const ek_op ek_op_hardswish = {infer_unary, run_unary, EK_NHWC_OK, 0};
const ek_op ek_op_clip = {infer_clip, run_unary, EK_NHWC_OK, 0};
const ek_op ek_op_add = {infer_binary, run_binary, EK_NHWC_OK, 0};
const ek_op ek_op_sub = {infer_binary, run_binary, EK_NHWC_OK, 0};
const ek_op ek_op_mul = {infer_binary, run_binary, EK_NHWC_OK, 0};
const ek_op ek_op_div = {infer_binary, run_binary, EK_NHWC_OK, 0};
const ek_op ek_op_identity = {infer_identity, run_copy, EK_NHWC_OK, 0};
const ek_op ek_op_dropout = {infer_dropout, run_dropout, EK_NHWC_OK, 4u};
const ek_op ek_op_flatten = {infer_flatten, run_copy, 0, 0};
const ek_op ek_op_reshape = {infer_reshape, run_copy, 0, 2u};
const ek_op ek_op_squeeze = {infer_squeeze, run_copy, 0, 2u};
const ek_op ek_op_unsqueeze = {infer_unsqueeze, run_copy, 0, 2u};
const ek_op ek_op_transpose = {infer_transpose, run_transpose, 0, 0};
const ek_op ek_op_concat = {infer_concat, run_concat, EK_NHWC_OK, 0};
const ek_op ek_op_split = {infer_split, run_split, EK_NHWC_OK, 2u};
const ek_op ek_op_shape = {infer_shape, run_shape, EK_NHWC_OK, 0};
const ek_op ek_op_gather = {infer_gather, run_gather, 0, 0};

void ek_nchw_to_nhwc(const float *src, float *dst, const int64_t *dims)
{
    int64_t N = dims[0], C = dims[1], S = dims[2] * dims[3];
    for (int64_t n = 0; n < N; n++) {
        const float *s = src + n * C * S;
        float *d = dst + n * C * S;
        int64_t i0 = 0;
#if defined(__SSE2__)
        if (C == 3) { /* RGB: 4 pixels from 3 loads, interleaved by 5 shuffles into 3 stores */
            for (; i0 + 4 <= S; i0 += 4) {
                __m128 a = _mm_loadu_ps(s + i0), b = _mm_loadu_ps(s + S + i0);
                __m128 c = _mm_loadu_ps(s + 2 * S + i0);
                __m128 ab_lo = _mm_unpacklo_ps(a, b), ab_hi = _mm_unpackhi_ps(a, b); /* a0b0a1b1 */
                __m128 ca_lo = _mm_unpacklo_ps(c, a), ca_hi = _mm_unpackhi_ps(c, a); /* c0a0c1a1 */
                __m128 bc_lo = _mm_unpacklo_ps(b, c), bc_hi = _mm_unpackhi_ps(b, c); /* b0c0b1c1 */
                float *o = d + i0 * 3;
                _mm_storeu_ps(o, _mm_shuffle_ps(ab_lo, ca_lo, _MM_SHUFFLE(3, 0, 1, 0)));
                _mm_storeu_ps(o + 4, _mm_shuffle_ps(bc_lo, ab_hi, _MM_SHUFFLE(1, 0, 3, 2)));
                _mm_storeu_ps(o + 8, _mm_shuffle_ps(ca_hi, bc_hi, _MM_SHUFFLE(3, 2, 3, 0)));
            }
        }
#endif
        if (C <= 4) { /* image input: write each pixel's channels together */
            for (int64_t i = i0; i < S; i++)
                for (int64_t c = 0; c < C; c++) d[i * C + c] = s[c * S + i];
            continue;
        }
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < S; i++) d[i * C + c] = s[c * S + i];
    }
}

void ek_nhwc_to_nchw(const float *src, float *dst, const int64_t *dims)
{
    int64_t N = dims[0], C = dims[1], S = dims[2] * dims[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < S; i++) {
            const float *s = src + (n * S + i) * C;
            float *d = dst + n * C * S + i;
            for (int64_t c = 0; c < C; c++) d[c * S] = s[c];
        }
}
