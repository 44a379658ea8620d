/* ref_slice: Slice and Cast, the last two ops that exported shape subgraphs
 * (ShuffleNetV2's channel split and shuffle) need. */
#include "engine/kernels.h"

#include <string.h>

#define FAIL(a, st, ...) eg_err((a)->err, (a)->errlen, st, __VA_ARGS__)

typedef struct slice_plan {
    int64_t start[ENG_MAX_RANK], step[ENG_MAX_RANK], len[ENG_MAX_RANK];
} slice_plan;

static int read_list(const ek_args *a, int k, const char *attr, int64_t *out, int *n)
{
    if (a->opset < 10) {
        const eg_attr *at = eg_attr_find(a->node, attr);
        *n = at ? at->n : -1;
        if (*n > ENG_MAX_RANK) return -1;
        for (int i = 0; i < *n; i++) out[i] = at->ints[i];
        return 0;
    }
    const ek_view *v = k < a->nin ? a->in[k] : NULL;
    if (!v) {
        *n = -1;
        return 0;
    }
    int64_t cnt = ek_numel(v);
    if (!v->data || cnt > ENG_MAX_RANK || (v->dtype != ENG_INT64 && v->dtype != ENG_INT32))
        return -1;
    for (int64_t i = 0; i < cnt; i++)
        out[i] = v->dtype == ENG_INT64 ? ((int64_t *)v->data)[i] : ((int32_t *)v->data)[i];
    *n = (int)cnt;
    return 0;
}

static int plan_slice(ek_args *a, slice_plan *p)
{
    const ek_view *x = a->in[0];
    int64_t st[ENG_MAX_RANK], en[ENG_MAX_RANK], ax[ENG_MAX_RANK], sp[ENG_MAX_RANK];
    int ns, ne, na, nsp;
    if (read_list(a, 1, "starts", st, &ns) || read_list(a, 2, "ends", en, &ne) ||
        read_list(a, 3, "axes", ax, &na) || read_list(a, 4, "steps", sp, &nsp) || ns < 0 ||
        ns != ne || (na >= 0 && na != ns) || (nsp >= 0 && nsp != ns))
        return FAIL(
            a, ENG_EUNSUPPORTED,
            "node '%s' (Slice): starts/ends/axes/steps must be constant int lists of one length",
            a->node->name);
    for (int d = 0; d < x->rank; d++) {
        p->start[d] = 0;
        p->step[d] = 1;
        p->len[d] = x->dims[d];
    }
    int seen[ENG_MAX_RANK] = {0};
    for (int i = 0; i < ns; i++) {
        int64_t axis = na >= 0 ? ax[i] : i, step = nsp >= 0 ? sp[i] : 1;
        if (axis < 0) axis += x->rank;
        if (axis < 0 || axis >= x->rank || seen[axis]++ || step == 0)
            return FAIL(a, ENG_EFORMAT, "node '%s' (Slice): bad axis or zero step", a->node->name);
        int64_t dim = x->dims[axis], s = st[i], e = en[i];
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (step > 0) {
            s = s < 0 ? 0 : (s > dim ? dim : s);
            e = e < 0 ? 0 : (e > dim ? dim : e);
        } else {
            s = s < 0 ? -1 : (s > dim - 1 ? dim - 1 : s);
            e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
        }
        /* a step longer than the axis takes at most one element; clamping it
         * keeps the arithmetic below from overflowing (INT64_MIN steps) */
        if (step > dim + 1) step = dim + 1;
        if (step < -dim - 1) step = -dim - 1;
        int64_t len = step > 0 ? (e - s + step - 1) / step : (s - e + (-step) - 1) / (-step);
        p->start[axis] = s;
        p->step[axis] = step;
        p->len[axis] = len > 0 ? len : 0;
    }
    return 0;
}

static int infer_slice(ek_args *a)
{
    slice_plan p;
    if (!a->in[0]) return FAIL(a, ENG_EFORMAT, "node '%s' (Slice): no data", a->node->name);
    int rc = plan_slice(a, &p);
    if (rc) return rc;
    ek_view *o = a->out[0];
    *o = *a->in[0];
    o->data = NULL;
    o->nhwc = 0;
    memcpy(o->dims, p.len, sizeof(int64_t) * (size_t)o->rank);
    return 0;
}

static int run_slice(ek_args *a)
{
    slice_plan p;
    plan_slice(a, &p);
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    int64_t st[ENG_MAX_RANK], sst[ENG_MAX_RANK], base = 0;
    ek_strides(x, st);
    for (int k = 0; k < x->rank; k++) base += p.start[k] * st[k], sst[k] = p.step[k] * st[k];
    size_t es = eg_dtype_size(x->dtype);
    if (ek_numel(o) > 0)
        ek_strided_copy(o->data, (const char *)x->data + base * (int64_t)es, o->rank, o->dims, sst,
                        es);
    return 0;
}

static int infer_cast(ek_args *a)
{
    int64_t to = eg_attr_int(a->node, "to", 0);
    if (!a->in[0]) return FAIL(a, ENG_EFORMAT, "node '%s' (Cast): no input", a->node->name);
    if (!eg_dtype_size((eng_dtype)to) || !eg_dtype_size(a->in[0]->dtype))
        return FAIL(a, ENG_EUNSUPPORTED, "node '%s' (Cast): type %lld not supported", a->node->name,
                    (long long)to);
    *a->out[0] = *a->in[0];
    a->out[0]->data = NULL;
    a->out[0]->dtype = (eng_dtype)to;
    return 0;
}

static double get(const ek_view *v, int64_t i)
{
    switch (v->dtype) {
    case ENG_FLOAT: return ((const float *)v->data)[i];
    case ENG_INT64: return (double)((const int64_t *)v->data)[i];
    case ENG_INT32: return ((const int32_t *)v->data)[i];
    case ENG_DOUBLE: return ((const double *)v->data)[i];
    default: return ((const uint8_t *)v->data)[i];
    }
}

static int run_cast(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    int64_t n = ek_numel(x);
    for (int64_t i = 0; i < n; i++) {
        if (x->dtype == ENG_INT64 && o->dtype == ENG_INT64) { /* exact, no double detour */
            ((int64_t *)o->data)[i] = ((const int64_t *)x->data)[i];
            continue;
        }
        double v = get(x, i);
        switch (o->dtype) {
        case ENG_FLOAT: ((float *)o->data)[i] = (float)v; break;
        case ENG_DOUBLE: ((double *)o->data)[i] = v; break;
        case ENG_INT64:
            ((int64_t *)o->data)[i] = v != v || v > 9.2e18 || v < -9.2e18 ? 0 : (int64_t)v;
            break;
        case ENG_INT32:
            ((int32_t *)o->data)[i] = v != v || v > 2.1e9 || v < -2.1e9 ? 0 : (int32_t)v;
            break;
        default: ((uint8_t *)o->data)[i] = v != 0;
        }
    }
    return 0;
}

const ek_op ek_op_slice = {infer_slice, run_slice, 0, 0x1eu};
const ek_op ek_op_cast = {infer_cast, run_cast, EK_NHWC_OK, 0};
