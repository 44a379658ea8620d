/* ref_elem: elementwise reference kernels beyond the CNN set: float math
 * (Exp, Log, Sqrt, Tanh, Erf, trigonometry, Elu/Selu/Celu, Softplus ...), the
 * predicates (IsNaN, IsInf, Not), broadcasting Pow/Mod/PRelu, comparisons and
 * logic to bool, the variadic Max/Min/Sum/Mean and Where. Float paths run on
 * plain loops; other dtypes go through the generic element accessors. */
#include "engine/kernels_util.h"

#include <math.h>
#include <stdlib.h>

/* ---- unary ------------------------------------------------------------------ */

static int unary_int_ok(eg_op op)
{
    return op == EG_OP_NEG || op == EG_OP_ABS || op == EG_OP_SIGN;
}

static int infer_math(ek_args *a)
{
    const ek_view *x = a->in[0];
    eg_op op = a->node->op;
    if (!x) return KFAIL(a, ENG_EFORMAT, "node '%s': missing input", KNAME(a));
    int ok = x->dtype == ENG_FLOAT || (unary_int_ok(op) && ku_is_int(x->dtype)) ||
             (op == EG_OP_NOT && x->dtype == ENG_BOOL) ||
             ((op == EG_OP_ISNAN || op == EG_OP_ISINF) && x->dtype == ENG_FLOAT);
    if (op == EG_OP_NOT && x->dtype != ENG_BOOL) ok = 0;
    if (!ok)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): input type %d not supported", KNAME(a),
                     KOP(a), x->dtype);
    *a->out[0] = *x;
    a->out[0]->data = NULL;
    if (op == EG_OP_ISNAN || op == EG_OP_ISINF) a->out[0]->dtype = ENG_BOOL;
    return 0;
}

static float f_erf(float x, float p, float q)
{
    (void)p, (void)q;
    return erff(x);
}

static float math1(eg_op op, float x, float al, float be, float ga)
{
    switch (op) {
    case EG_OP_EXP: return expf(x);
    case EG_OP_LOG: return logf(x);
    case EG_OP_NEG: return -x;
    case EG_OP_SQRT: return sqrtf(x);
    case EG_OP_RECIPROCAL: return 1.0f / x;
    case EG_OP_ABS: return fabsf(x);
    case EG_OP_CEIL: return ceilf(x);
    case EG_OP_FLOOR: return floorf(x);
    case EG_OP_ROUND: return rintf(x); /* half to even in the default rounding mode */
    case EG_OP_SIGN: return x > 0 ? 1.0f : (x < 0 ? -1.0f : x);
    case EG_OP_TANH: return tanhf(x);
    case EG_OP_ERF: return f_erf(x, al, be);
    case EG_OP_SIN: return sinf(x);
    case EG_OP_COS: return cosf(x);
    case EG_OP_TAN: return tanf(x);
    case EG_OP_ASIN: return asinf(x);
    case EG_OP_ACOS: return acosf(x);
    case EG_OP_ATAN: return atanf(x);
    case EG_OP_SINH: return sinhf(x);
    case EG_OP_COSH: return coshf(x);
    case EG_OP_ASINH: return asinhf(x);
    case EG_OP_ACOSH: return acoshf(x);
    case EG_OP_ATANH: return atanhf(x);
    case EG_OP_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));
    case EG_OP_SOFTSIGN: return x / (1.0f + fabsf(x));
    case EG_OP_ELU: return x < 0 ? al * expm1f(x) : x;
    case EG_OP_SELU: return x <= 0 ? ga * (al * expf(x) - al) : ga * x;
    case EG_OP_CELU: return fmaxf(0.0f, x) + fminf(0.0f, al * expm1f(x / al));
    case EG_OP_THRESHOLDEDRELU: return x > al ? x : 0.0f;
    case EG_OP_SHRINK: return x < -al ? x + be : (x > al ? x - be : 0.0f);
    case EG_OP_MISH: return x * tanhf(x > 20.0f ? x : log1pf(expf(x)));
    case EG_OP_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    default: return x;
    }
}

static int run_math(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    eg_op op = a->node->op;
    int64_t n = ek_numel(x);
    if (op == EG_OP_ISNAN || op == EG_OP_ISINF) {
        const float *X = x->data;
        uint8_t *Y = o->data;
        int neg = (int)eg_attr_int(a->node, "detect_negative", 1),
            pos = (int)eg_attr_int(a->node, "detect_positive", 1);
        for (int64_t i = 0; i < n; i++)
            Y[i] = op == EG_OP_ISNAN ? isnan(X[i]) != 0
                                     : (isinf(X[i]) && ((X[i] > 0 && pos) || (X[i] < 0 && neg)));
        return 0;
    }
    if (op == EG_OP_NOT) {
        const uint8_t *X = x->data;
        uint8_t *Y = o->data;
        for (int64_t i = 0; i < n; i++) Y[i] = !X[i];
        return 0;
    }
    if (x->dtype != ENG_FLOAT) { /* Neg, Abs, Sign on integers */
        for (int64_t i = 0; i < n; i++) {
            int64_t v = ku_geti(x, i);
            ku_seti(o, i,
                    op == EG_OP_NEG   ? (int64_t)(0 - (uint64_t)v)
                    : op == EG_OP_ABS ? (v < 0 ? (int64_t)(0 - (uint64_t)v) : v)
                                      : (v > 0) - (v < 0));
        }
        return 0;
    }
    float al = 0, be = 0, ga = 0;
    switch (op) {
    case EG_OP_ELU:
    case EG_OP_CELU:
    case EG_OP_THRESHOLDEDRELU: al = eg_attr_float(a->node, "alpha", 1.0f); break;
    case EG_OP_SELU:
        al = eg_attr_float(a->node, "alpha", 1.67326319217681884765625f);
        ga = eg_attr_float(a->node, "gamma", 1.05070102214813232421875f);
        break;
    case EG_OP_SHRINK:
        al = eg_attr_float(a->node, "lambd", 0.5f);
        be = eg_attr_float(a->node, "bias", 0.0f);
        break;
    default: break;
    }
    const float *X = x->data;
    float *Y = o->data;
    if (op == EG_OP_ERF) {
        for (int64_t i = 0; i < n; i++) Y[i] = erff(X[i]);
    } else if (op == EG_OP_TANH) {
        for (int64_t i = 0; i < n; i++) Y[i] = tanhf(X[i]);
    } else if (op == EG_OP_SQRT) {
        for (int64_t i = 0; i < n; i++) Y[i] = sqrtf(X[i]);
    } else {
        for (int64_t i = 0; i < n; i++) Y[i] = math1(op, X[i], al, be, ga);
    }
    return 0;
}

/* ---- broadcasting binary and variadic ---------------------------------------- */

static int is_cmp(eg_op op)
{
    return op == EG_OP_EQUAL || op == EG_OP_LESS || op == EG_OP_GREATER ||
           op == EG_OP_LESSOREQUAL || op == EG_OP_GREATEROREQUAL;
}

static int is_logic(eg_op op)
{
    return op == EG_OP_AND || op == EG_OP_OR || op == EG_OP_XOR;
}

/* PRelu before opset 7 applies a [C] slope along the channel axis. */
static void legacy_slope(const ek_args *a, ek_view **v, ek_view *tmp)
{
    const ek_view *x = v[0], *s = v[1];
    if (a->node->op != EG_OP_PRELU || a->opset >= 7 || s->rank != 1 || x->rank < 2 ||
        s->dims[0] != x->dims[1] || s->dims[0] == x->dims[x->rank - 1])
        return;
    *tmp = *s;
    tmp->rank = x->rank - 1;
    for (int d = 1; d < tmp->rank; d++) tmp->dims[d] = 1;
    v[1] = tmp;
}

static int infer_nary(ek_args *a)
{
    eg_op op = a->node->op;
    ek_view *v[KU_MAXB], tmp;
    int n = a->nin;
    if (n < 1 || n > KU_MAXB)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): %d inputs (1 to %d supported)", KNAME(a),
                     KOP(a), n, KU_MAXB);
    for (int k = 0; k < n; k++) {
        if (!a->in[k])
            return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): input %d missing", KNAME(a), KOP(a), k);
        v[k] = a->in[k];
    }
    eng_dtype t = v[0]->dtype;
    if (op == EG_OP_WHERE) {
        if (n != 3 || v[0]->dtype != ENG_BOOL || v[1]->dtype != v[2]->dtype)
            return KFAIL(a, ENG_EFORMAT,
                         "node '%s' (Where): needs bool condition and two inputs "
                         "of one type",
                         KNAME(a));
        t = v[1]->dtype;
    } else if (op == EG_OP_POW) {
        if (n != 2 || v[0]->dtype == ENG_BOOL || v[1]->dtype == ENG_BOOL)
            return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (Pow): numeric inputs needed", KNAME(a));
    } else {
        for (int k = 1; k < n; k++)
            if (v[k]->dtype != t)
                return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): input types differ", KNAME(a),
                             KOP(a));
        if (is_logic(op) && t != ENG_BOOL)
            return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): needs bool inputs", KNAME(a), KOP(a));
        if (!is_logic(op) && op != EG_OP_EQUAL && t == ENG_BOOL)
            return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): bool inputs not supported", KNAME(a),
                         KOP(a));
        if (op == EG_OP_PRELU && t != ENG_FLOAT)
            return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (PRelu): needs float", KNAME(a));
    }
    if (n == 2) legacy_slope(a, v, &tmp);
    ek_view *o = a->out[0];
    int r;
    int64_t dims[ENG_MAX_RANK];
    if (ku_bcast_shape(v, n, &r, dims))
        return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): input shapes do not broadcast", KNAME(a),
                     KOP(a));
    ku_shape(o, is_cmp(op) ? ENG_BOOL : t, r, dims);
    return 0;
}

static double binop(eg_op op, double p, double q, int fmod_, int isint)
{
    switch (op) {
    case EG_OP_POW: return pow(p, q);
    case EG_OP_MOD:
        if (fmod_ || !isint) return fmod(p, q);
        if (q == 0) return 0;
        {
            double m = fmod(p, q);
            return m != 0 && ((m < 0) != (q < 0)) ? m + q : m;
        }
    case EG_OP_PRELU: return p < 0 ? p * q : p;
    case EG_OP_AND: return p != 0 && q != 0;
    case EG_OP_OR: return p != 0 || q != 0;
    case EG_OP_XOR: return (p != 0) != (q != 0);
    case EG_OP_EQUAL: return p == q;
    case EG_OP_LESS: return p < q;
    case EG_OP_GREATER: return p > q;
    case EG_OP_LESSOREQUAL: return p <= q;
    case EG_OP_GREATEROREQUAL: return p >= q;
    case EG_OP_MAX: return isnan(p) || p > q ? p : q;
    case EG_OP_MIN: return isnan(p) || p < q ? p : q;
    case EG_OP_SUM:
    case EG_OP_MEAN: return p + q;
    default: return p;
    }
}

static int run_nary(ek_args *a)
{
    eg_op op = a->node->op;
    ek_view *v[KU_MAXB], tmp;
    int n = a->nin;
    for (int k = 0; k < n; k++) v[k] = a->in[k];
    if (n == 2) legacy_slope(a, v, &tmp);
    ek_view *o = a->out[0];
    ku_bcast b;
    ku_bcast_init(&b, v, n, o->rank, o->dims);
    int64_t total = ek_numel(o);
    if (op == EG_OP_WHERE) {
        const uint8_t *C = v[0]->data;
        size_t es = eg_dtype_size(o->dtype);
        if (es == 4) {
            const uint32_t *X = v[1]->data, *Y = v[2]->data;
            uint32_t *O = o->data;
            for (int64_t i = 0; i < total; i++, ku_bcast_next(&b))
                O[i] = C[b.off[0]] ? X[b.off[1]] : Y[b.off[2]];
        } else {
            for (int64_t i = 0; i < total; i++, ku_bcast_next(&b))
                memcpy((char *)o->data + (size_t)i * es,
                       C[b.off[0]] ? (const char *)v[1]->data + (size_t)b.off[1] * es
                                   : (const char *)v[2]->data + (size_t)b.off[2] * es,
                       es);
        }
        return 0;
    }
    if (op == EG_OP_POW && o->dtype == ENG_FLOAT && v[1]->dtype == ENG_FLOAT) {
        const float *X = v[0]->data, *Y = v[1]->data;
        float *O = o->data;
        if (ek_numel(v[1]) == 1 && Y[0] == 2.0f) { /* LayerNorm decomposition: x^2 */
            if (ek_numel(v[0]) == total)           /* x is the output's shape: no index walk */
                for (int64_t i = 0; i < total; i++) O[i] = X[i] * X[i];
            else
                for (int64_t i = 0; i < total; i++, ku_bcast_next(&b))
                    O[i] = X[b.off[0]] * X[b.off[0]];
            return 0;
        }
        for (int64_t i = 0; i < total; i++, ku_bcast_next(&b))
            O[i] = powf(X[b.off[0]], Y[b.off[1]]);
        return 0;
    }
    int fm = (int)eg_attr_int(a->node, "fmod", 0);
    int isint = ku_is_int(v[0]->dtype);
    if (isint && op != EG_OP_POW && !is_cmp(op)) {
        /* exact integer arithmetic: int64 does not fit a double */
        for (int64_t i = 0; i < total; i++, ku_bcast_next(&b)) {
            int64_t acc = ku_geti(v[0], b.off[0]);
            for (int k = 1; k < n; k++) {
                int64_t q = ku_geti(v[k], b.off[k]);
                switch (op) {
                case EG_OP_MOD:
                    if (q == 0 || (q == -1)) {
                        acc = 0;
                    } else {
                        int64_t m = acc % q;
                        if (!fm && m != 0 && ((m < 0) != (q < 0))) m += q;
                        acc = m;
                    }
                    break;
                case EG_OP_MAX: acc = q > acc ? q : acc; break;
                case EG_OP_MIN: acc = q < acc ? q : acc; break;
                default: acc = (int64_t)((uint64_t)acc + (uint64_t)q); break;
                }
            }
            if (op == EG_OP_MEAN) acc /= n;
            ku_seti(o, i, acc);
        }
        return 0;
    }
    if (isint && is_cmp(op)) {
        uint8_t *O = o->data;
        for (int64_t i = 0; i < total; i++, ku_bcast_next(&b)) {
            int64_t p = ku_geti(v[0], b.off[0]), q = ku_geti(v[1], b.off[1]);
            O[i] = op == EG_OP_EQUAL         ? p == q
                   : op == EG_OP_LESS        ? p < q
                   : op == EG_OP_GREATER     ? p > q
                   : op == EG_OP_LESSOREQUAL ? p <= q
                                             : p >= q;
        }
        return 0;
    }
    for (int64_t i = 0; i < total; i++, ku_bcast_next(&b)) {
        double acc = ku_getd(v[0], b.off[0]);
        for (int k = 1; k < n; k++) acc = binop(op, acc, ku_getd(v[k], b.off[k]), fm, isint);
        if (op == EG_OP_MEAN) acc /= n;
        if (op == EG_OP_POW && ku_is_int(o->dtype)) acc = (double)(int64_t)acc;
        ku_setd(o, i, acc);
    }
    return 0;
}

const ek_op ek_op_math = {infer_math, run_math, EK_NHWC_OK, 0};
const ek_op ek_op_nary = {infer_nary, run_nary, 0, 0};
