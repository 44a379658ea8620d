/* ref_index: shape-making and indexing kernels: Size, ConstantOfShape, Range,
 * Expand, Tile, Trilu, EyeLike, GatherElements, GatherND, ScatterElements (and
 * the older Scatter), ScatterND, OneHot, TopK, Pad, DepthToSpace, SpaceToDepth,
 * ReverseSequence, Compress, NonZero, Det.
 *
 * Inputs that decide an output's shape (Range's bounds, ConstantOfShape's
 * shape, Expand's shape, Compress's condition ...) must be known when the plan
 * is built; the error then says "data-dependent shape". Every index read from a
 * tensor is checked: out of range is -ENG_EINVAL naming the node and index. */
#include "engine/kernels_util.h"

#include <math.h>
#include <stdlib.h>

#define NEED_CONST(a, k)                                                                           \
    KFAIL(a, ENG_EUNSUPPORTED,                                                                     \
          "node '%s' (%s): data-dependent shape: input %d must be known when the plan is built",   \
          KNAME(a), KOP(a), k)

static int in_const(const ek_args *a, int k)
{
    return k < a->nin && a->in[k] && a->in[k]->data;
}

static int bad_index(ek_args *a, int64_t idx, int64_t len)
{
    return KFAIL(a, ENG_EINVAL, "node '%s' (%s): index %lld out of range [%lld, %lld)", KNAME(a),
                 KOP(a), (long long)idx, (long long)-len, (long long)len);
}

/* ---- Size, ConstantOfShape, EyeLike -------------------------------------------- */

static int infer_size(ek_args *a)
{
    ku_shape(a->out[0], ENG_INT64, 0, NULL);
    return 0;
}

static int run_size(ek_args *a)
{
    *(int64_t *)a->out[0]->data = ek_numel(a->in[0]);
    return 0;
}

static int infer_cos(ek_args *a)
{
    int64_t dims[ENG_MAX_RANK];
    if (!in_const(a, 0)) return NEED_CONST(a, 0);
    int n = ku_ints(a->in[0], dims, ENG_MAX_RANK);
    if (n < 0 || a->in[0]->rank != 1)
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (ConstantOfShape): shape must be a 1-D int list "
                     "of rank <= %d",
                     KNAME(a), ENG_MAX_RANK);
    for (int i = 0; i < n; i++)
        if (dims[i] < 0)
            return KFAIL(a, ENG_ESHAPE, "node '%s' (ConstantOfShape): negative dim %lld", KNAME(a),
                         (long long)dims[i]);
    const eg_attr *v = eg_attr_find(a->node, "value");
    if (v && (v->type != EG_ATTR_TENSOR || !v->tdtype))
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (ConstantOfShape): value must be a one-element tensor of a "
                     "supported type",
                     KNAME(a));
    ku_shape(a->out[0], v ? v->tdtype : ENG_FLOAT, n, dims);
    return 0;
}

static int run_cos(ek_args *a)
{
    const eg_attr *v = eg_attr_find(a->node, "value");
    ek_view *o = a->out[0];
    int64_t n = ek_numel(o);
    if (!v) {
        memset(o->data, 0, ek_bytes(o));
        return 0;
    }
    for (int64_t i = 0; i < n; i++)
        if (o->dtype == ENG_FLOAT || o->dtype == ENG_DOUBLE)
            ku_setd(o, i, v->f);
        else
            ku_seti(o, i, v->i);
    return 0;
}

static int infer_eyelike(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (x->rank != 2)
        return KFAIL(a, ENG_ESHAPE, "node '%s' (EyeLike): needs a 2-D input", KNAME(a));
    int64_t dt = eg_attr_int(a->node, "dtype", x->dtype);
    if (dt != ENG_FLOAT && dt != ENG_INT64 && dt != ENG_INT32 && dt != ENG_BOOL && dt != ENG_DOUBLE)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (EyeLike): dtype %lld not supported", KNAME(a),
                     (long long)dt);
    ku_shape(a->out[0], (eng_dtype)dt, 2, x->dims);
    return 0;
}

static int run_eyelike(ek_args *a)
{
    ek_view *o = a->out[0];
    int64_t k = eg_attr_int(a->node, "k", 0);
    memset(o->data, 0, ek_bytes(o));
    for (int64_t i = 0; i < o->dims[0]; i++)
        if (i + k >= 0 && i + k < o->dims[1]) ku_seti(o, i * o->dims[1] + i + k, 1);
    return 0;
}

/* ---- Range ----------------------------------------------------------------------- */

static int infer_range(ek_args *a)
{
    for (int k = 0; k < 3; k++) {
        if (!in_const(a, k)) return NEED_CONST(a, k);
        if (ek_numel(a->in[k]) != 1 || a->in[k]->dtype != a->in[0]->dtype ||
            a->in[k]->dtype == ENG_BOOL)
            return KFAIL(a, ENG_EFORMAT,
                         "node '%s' (Range): inputs must be numeric scalars of "
                         "one type",
                         KNAME(a));
    }
    double s = ku_getd(a->in[0], 0), l = ku_getd(a->in[1], 0), d = ku_getd(a->in[2], 0);
    if (d == 0) return KFAIL(a, ENG_EINVAL, "node '%s' (Range): delta is 0", KNAME(a));
    double n = ceil((l - s) / d);
    if (!(n < (double)((int64_t)1 << 31))) /* NaN too */
        return KFAIL(a, ENG_ESHAPE, "node '%s' (Range): %g elements", KNAME(a), n);
    int64_t len = n > 0 ? (int64_t)n : 0;
    ku_shape(a->out[0], a->in[0]->dtype, 1, &len);
    return 0;
}

static int run_range(ek_args *a)
{
    ek_view *o = a->out[0];
    int64_t n = o->dims[0];
    if (ku_is_int(o->dtype)) {
        int64_t s = ku_geti(a->in[0], 0), d = ku_geti(a->in[2], 0);
        for (int64_t i = 0; i < n; i++) ku_seti(o, i, s + i * d);
    } else {
        float s = ((float *)a->in[0]->data)[0], d = ((float *)a->in[2]->data)[0];
        for (int64_t i = 0; i < n; i++) ((float *)o->data)[i] = s + (float)i * d;
    }
    return 0;
}

/* ---- Expand, Tile ------------------------------------------------------------------ */

static int infer_expand(ek_args *a)
{
    int64_t shape[ENG_MAX_RANK];
    if (!in_const(a, 1)) return NEED_CONST(a, 1);
    int n = ku_ints(a->in[1], shape, ENG_MAX_RANK);
    if (n < 0)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (Expand): shape must be an int list of rank <= %d",
                     KNAME(a), ENG_MAX_RANK);
    ek_view sv = {.dtype = ENG_FLOAT, .rank = n};
    for (int i = 0; i < n; i++) {
        if (shape[i] < 0) return KFAIL(a, ENG_ESHAPE, "node '%s' (Expand): negative dim", KNAME(a));
        sv.dims[i] = shape[i];
    }
    ek_view *v[2] = {a->in[0], &sv};
    int r;
    int64_t dims[ENG_MAX_RANK];
    if (ku_bcast_shape(v, 2, &r, dims))
        return KFAIL(a, ENG_ESHAPE, "node '%s' (Expand): shape does not broadcast with the input",
                     KNAME(a));
    ku_shape(a->out[0], a->in[0]->dtype, r, dims);
    return 0;
}

/* Copies x into o where every x dim divides into (or broadcasts to) o's. */
static void tile_copy(const ek_view *x, ek_view *o, int bcast)
{
    ek_view *v[1] = {(ek_view *)x};
    ku_bcast b;
    ek_view xt = *x;
    if (!bcast) { /* Tile: index modulo the input dim; walk output coordinates */
        int64_t n = ek_numel(o), st[ENG_MAX_RANK], cnt[ENG_MAX_RANK] = {0};
        size_t es = eg_dtype_size(o->dtype);
        ek_strides(&xt, st);
        for (int64_t i = 0; i < n; i++) {
            int64_t off = 0;
            for (int d = 0; d < o->rank; d++) off += (cnt[d] % x->dims[d]) * st[d];
            memcpy((char *)o->data + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
            for (int d = o->rank - 1; d >= 0; d--) {
                if (++cnt[d] < o->dims[d]) break;
                cnt[d] = 0;
            }
        }
        return;
    }
    ku_bcast_init(&b, v, 1, o->rank, o->dims);
    int64_t n = ek_numel(o);
    size_t es = eg_dtype_size(o->dtype);
    if (es == 4) {
        const uint32_t *X = x->data;
        uint32_t *O = o->data;
        for (int64_t i = 0; i < n; i++, ku_bcast_next(&b)) O[i] = X[b.off[0]];
        return;
    }
    for (int64_t i = 0; i < n; i++, ku_bcast_next(&b))
        memcpy((char *)o->data + (size_t)i * es, (const char *)x->data + (size_t)b.off[0] * es, es);
}

static int run_expand(ek_args *a)
{
    tile_copy(a->in[0], a->out[0], 1);
    return 0;
}

static int infer_tile(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t rep[ENG_MAX_RANK];
    if (!in_const(a, 1)) return NEED_CONST(a, 1);
    int n = ku_ints(a->in[1], rep, ENG_MAX_RANK);
    if (n != x->rank)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (Tile): repeats must have one int per input dim",
                     KNAME(a));
    ku_shape(a->out[0], x->dtype, x->rank, x->dims);
    for (int i = 0; i < n; i++) {
        if (rep[i] < 0) return KFAIL(a, ENG_ESHAPE, "node '%s' (Tile): negative repeat", KNAME(a));
        a->out[0]->dims[i] *= rep[i];
    }
    return 0;
}

static int run_tile(ek_args *a)
{
    tile_copy(a->in[0], a->out[0], 0);
    return 0;
}

/* ---- Trilu --------------------------------------------------------------------------- */

static int infer_trilu(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (x->rank < 2) return KFAIL(a, ENG_ESHAPE, "node '%s' (Trilu): needs rank >= 2", KNAME(a));
    if (a->nin > 1 && a->in[1] && (!a->in[1]->data || ek_numel(a->in[1]) != 1))
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (Trilu): k must be a constant scalar",
                     KNAME(a));
    ku_shape(a->out[0], x->dtype, x->rank, x->dims);
    return 0;
}

static int run_trilu(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    int64_t k = a->nin > 1 && a->in[1] ? ku_geti(a->in[1], 0) : 0;
    int upper = (int)eg_attr_int(a->node, "upper", 1);
    int64_t R = x->dims[x->rank - 2], C = x->dims[x->rank - 1], B = ek_numel(x) / (R * C);
    size_t es = eg_dtype_size(x->dtype);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) {
                size_t off = (size_t)((b * R + i) * C + j) * es;
                int keep = upper ? j - i >= k : j - i <= k;
                if (keep)
                    memcpy((char *)o->data + off, (const char *)x->data + off, es);
                else
                    memset((char *)o->data + off, 0, es);
            }
    return 0;
}

/* ---- GatherElements, ScatterElements ------------------------------------------------ */

static int infer_gather_el(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1];
    int64_t ax;
    if (!ku_is_int(idx->dtype) || idx->rank != x->rank)
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (GatherElements): indices must be ints of the "
                     "data's rank",
                     KNAME(a));
    if (ku_axis(eg_attr_int(a->node, "axis", 0), x->rank, &ax))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (GatherElements): axis out of range", KNAME(a));
    for (int d = 0; d < x->rank; d++)
        if (d != ax && idx->dims[d] > x->dims[d])
            return KFAIL(a, ENG_ESHAPE,
                         "node '%s' (GatherElements): indices dim %d exceeds the "
                         "data's",
                         KNAME(a), d);
    ku_shape(a->out[0], x->dtype, idx->rank, idx->dims);
    return 0;
}

static int run_gather_el(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1];
    ek_view *o = a->out[0];
    int64_t ax = 0;
    ku_axis(eg_attr_int(a->node, "axis", 0), x->rank, &ax);
    int64_t st[ENG_MAX_RANK], cnt[ENG_MAX_RANK] = {0}, n = ek_numel(idx), len = x->dims[ax];
    ek_strides(x, st);
    size_t es = eg_dtype_size(x->dtype);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = ku_geti(idx, i);
        if (k < -len || k >= len) return bad_index(a, k, len);
        if (k < 0) k += len;
        int64_t off = 0;
        for (int d = 0; d < x->rank; d++) off += (d == ax ? k : cnt[d]) * st[d];
        memcpy((char *)o->data + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
        for (int d = idx->rank - 1; d >= 0; d--) {
            if (++cnt[d] < idx->dims[d]) break;
            cnt[d] = 0;
        }
    }
    return 0;
}

/* reduction attribute of the Scatter ops: 0 none, 1 add, 2 mul, 3 max, 4 min */
static int scatter_red(ek_args *a, int *red)
{
    const char *r = eg_attr_str(a->node, "reduction", "none");
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(r, names[i])) {
            *red = i;
            return 0;
        }
    return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): unknown reduction '%s'", KNAME(a), KOP(a), r);
}

static void scatter_put(ek_view *o, int64_t off, const ek_view *u, int64_t ui, int red)
{
    if (red == 0 || o->dtype == ENG_BOOL) {
        size_t es = eg_dtype_size(o->dtype);
        memcpy((char *)o->data + (size_t)off * es, (const char *)u->data + (size_t)ui * es, es);
        return;
    }
    if (ku_is_int(o->dtype)) {
        int64_t p = ku_geti(o, off), q = ku_geti(u, ui);
        ku_seti(o, off,
                red == 1   ? p + q
                : red == 2 ? p * q
                : red == 3 ? (p > q ? p : q)
                           : (p < q ? p : q));
        return;
    }
    double p = ku_getd(o, off), q = ku_getd(u, ui);
    ku_setd(o, off, red == 1 ? p + q : red == 2 ? p * q : red == 3 ? fmax(p, q) : fmin(p, q));
}

static int infer_scatter_el(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1], *u = a->in[2];
    int64_t ax;
    int red;
    if (!ku_is_int(idx->dtype) || idx->rank != x->rank || u->dtype != x->dtype ||
        u->rank != idx->rank || memcmp(u->dims, idx->dims, sizeof(int64_t) * (size_t)u->rank))
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (%s): indices and updates must match in shape, "
                     "and have the data's rank",
                     KNAME(a), KOP(a));
    if (ku_axis(eg_attr_int(a->node, "axis", 0), x->rank, &ax))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): axis out of range", KNAME(a), KOP(a));
    for (int d = 0; d < x->rank; d++)
        if (d != ax && idx->dims[d] > x->dims[d])
            return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): indices dim %d exceeds the data's",
                         KNAME(a), KOP(a), d);
    int rc = scatter_red(a, &red);
    if (rc) return rc;
    ku_shape(a->out[0], x->dtype, x->rank, x->dims);
    return 0;
}

static int run_scatter_el(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1], *u = a->in[2];
    ek_view *o = a->out[0];
    int64_t ax = 0;
    int red = 0;
    ku_axis(eg_attr_int(a->node, "axis", 0), x->rank, &ax);
    scatter_red(a, &red);
    if (o->data != x->data) memcpy(o->data, x->data, ek_bytes(x));
    int64_t st[ENG_MAX_RANK], cnt[ENG_MAX_RANK] = {0}, n = ek_numel(idx), len = x->dims[ax];
    ek_strides(x, st);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = ku_geti(idx, i);
        if (k < -len || k >= len) return bad_index(a, k, len);
        if (k < 0) k += len;
        int64_t off = 0;
        for (int d = 0; d < x->rank; d++) off += (d == ax ? k : cnt[d]) * st[d];
        scatter_put(o, off, u, i, red);
        for (int d = idx->rank - 1; d >= 0; d--) {
            if (++cnt[d] < idx->dims[d]) break;
            cnt[d] = 0;
        }
    }
    return 0;
}

/* ---- GatherND, ScatterND ---------------------------------------------------------------- */

static int infer_gather_nd(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1];
    int64_t b = eg_attr_int(a->node, "batch_dims", 0);
    if (!ku_is_int(idx->dtype) || idx->rank < 1 || b < 0 || b >= idx->rank || b >= x->rank)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (GatherND): bad indices or batch_dims", KNAME(a));
    int64_t m = idx->dims[idx->rank - 1];
    if (m < 1 || b + m > x->rank)
        return KFAIL(a, ENG_ESHAPE, "node '%s' (GatherND): index tuples of %lld into rank %d",
                     KNAME(a), (long long)m, x->rank);
    for (int d = 0; d < b; d++)
        if (idx->dims[d] != x->dims[d])
            return KFAIL(a, ENG_ESHAPE, "node '%s' (GatherND): batch dims differ", KNAME(a));
    ek_view *o = a->out[0];
    int r = idx->rank - 1 + x->rank - (int)(b + m);
    if (r > ENG_MAX_RANK)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (GatherND): result rank too large", KNAME(a));
    ku_shape(o, x->dtype, idx->rank - 1, idx->dims);
    for (int d = (int)(b + m); d < x->rank; d++) o->dims[o->rank++] = x->dims[d];
    return 0;
}

static int run_gather_nd(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1];
    ek_view *o = a->out[0];
    int64_t b = eg_attr_int(a->node, "batch_dims", 0), m = idx->dims[idx->rank - 1];
    int64_t st[ENG_MAX_RANK];
    ek_strides(x, st);
    int64_t nb = ku_prod(x->dims, 0, (int)b), tuples = ku_prod(idx->dims, (int)b, idx->rank - 1);
    int64_t slice = ku_prod(x->dims, (int)(b + m), x->rank), bstride = b ? st[b - 1] : 0;
    size_t es = eg_dtype_size(x->dtype);
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t t = 0; t < tuples; t++) {
            int64_t off = bi * bstride, ii = (bi * tuples + t) * m;
            for (int64_t j = 0; j < m; j++) {
                int64_t k = ku_geti(idx, ii + j), len = x->dims[b + j];
                if (k < -len || k >= len) return bad_index(a, k, len);
                off += (k < 0 ? k + len : k) * st[b + j];
            }
            memcpy((char *)o->data + (size_t)((bi * tuples + t) * slice) * es,
                   (const char *)x->data + (size_t)off * es, (size_t)slice * es);
        }
    return 0;
}

static int infer_scatter_nd(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1], *u = a->in[2];
    int red;
    if (!ku_is_int(idx->dtype) || idx->rank < 1 || u->dtype != x->dtype)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (ScatterND): bad indices or updates", KNAME(a));
    int64_t m = idx->dims[idx->rank - 1];
    int ok = m >= 1 && m <= x->rank && u->rank == idx->rank - 1 + x->rank - m;
    for (int d = 0; ok && d < u->rank; d++) /* indices.shape[:-1] + data.shape[m:] */
        ok = u->dims[d] == (d < idx->rank - 1 ? idx->dims[d] : x->dims[m + d - (idx->rank - 1)]);
    if (!ok)
        return KFAIL(a, ENG_ESHAPE, "node '%s' (ScatterND): updates shape does not fit", KNAME(a));
    int rc = scatter_red(a, &red);
    if (rc) return rc;
    ku_shape(a->out[0], x->dtype, x->rank, x->dims);
    return 0;
}

static int run_scatter_nd(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1], *u = a->in[2];
    ek_view *o = a->out[0];
    int red = 0;
    scatter_red(a, &red);
    if (o->data != x->data) memcpy(o->data, x->data, ek_bytes(x));
    int64_t m = idx->dims[idx->rank - 1], st[ENG_MAX_RANK];
    ek_strides(x, st);
    int64_t tuples = ku_prod(idx->dims, 0, idx->rank - 1),
            slice = ku_prod(x->dims, (int)m, x->rank);
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off = 0;
        for (int64_t j = 0; j < m; j++) {
            int64_t k = ku_geti(idx, t * m + j), len = x->dims[j];
            if (k < -len || k >= len) return bad_index(a, k, len);
            off += (k < 0 ? k + len : k) * st[j];
        }
        for (int64_t s = 0; s < slice; s++) scatter_put(o, off + s, u, t * slice + s, red);
    }
    return 0;
}

/* ---- OneHot ---------------------------------------------------------------------------------- */

static int infer_onehot(ek_args *a)
{
    const ek_view *idx = a->in[0], *dep = a->in[1], *val = a->in[2];
    int64_t ax;
    if (!in_const(a, 1)) return NEED_CONST(a, 1);
    if (ek_numel(dep) != 1 || dep->dtype == ENG_BOOL || ek_numel(val) != 2 ||
        idx->dtype == ENG_BOOL)
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (OneHot): depth must be a scalar, values two "
                     "elements",
                     KNAME(a));
    double d = ku_getd(dep, 0);
    if (!(d >= 1 && d < (double)((int64_t)1 << 31)))
        return KFAIL(a, ENG_EINVAL, "node '%s' (OneHot): depth %g out of range", KNAME(a), d);
    if (idx->rank + 1 > ENG_MAX_RANK ||
        ku_axis(eg_attr_int(a->node, "axis", -1), idx->rank + 1, &ax))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (OneHot): axis out of range", KNAME(a));
    ek_view *o = a->out[0];
    ku_shape(o, val->dtype, 0, NULL);
    for (int i = 0, k = 0; i <= idx->rank; i++)
        o->dims[o->rank++] = i == ax ? (int64_t)d : idx->dims[k++];
    return 0;
}

static int run_onehot(ek_args *a)
{
    const ek_view *idx = a->in[0], *val = a->in[2];
    ek_view *o = a->out[0];
    int64_t ax = 0, depth = (int64_t)ku_getd(a->in[1], 0);
    ku_axis(eg_attr_int(a->node, "axis", -1), idx->rank + 1, &ax);
    int64_t outer = ku_prod(idx->dims, 0, (int)ax), inner = ku_prod(idx->dims, (int)ax, idx->rank);
    size_t es = eg_dtype_size(o->dtype);
    const char *off = val->data, *on = (const char *)val->data + es;
    for (int64_t p = 0; p < outer; p++)
        for (int64_t i = 0; i < inner; i++) {
            /* values outside [-depth, depth) give an all-off row (ONNX) */
            int64_t k = (int64_t)ku_getd(idx, p * inner + i);
            if (k < 0) k += depth;
            for (int64_t d = 0; d < depth; d++)
                memcpy((char *)o->data + (size_t)((p * depth + d) * inner + i) * es,
                       d == k ? on : off, es);
        }
    return 0;
}

/* ---- TopK ------------------------------------------------------------------------------------ */

static int topk_k(ek_args *a, int64_t *k)
{
    if (a->opset < 10) {
        *k = eg_attr_int(a->node, "k", -1);
    } else {
        if (!in_const(a, 1)) return NEED_CONST(a, 1);
        if (ek_numel(a->in[1]) != 1 || !ku_is_int(a->in[1]->dtype))
            return KFAIL(a, ENG_EFORMAT, "node '%s' (TopK): K must be one integer", KNAME(a));
        *k = ku_geti(a->in[1], 0);
    }
    return 0;
}

static int infer_topk(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t ax, k;
    int rc = topk_k(a, &k);
    if (rc) return rc;
    if (ku_axis(eg_attr_int(a->node, "axis", -1), x->rank, &ax))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (TopK): axis out of range", KNAME(a));
    if (x->dtype == ENG_BOOL || a->nout < 2 || !a->out[1])
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (TopK): needs a numeric input and both outputs", KNAME(a));
    if (k < 0 || k > x->dims[ax])
        return KFAIL(a, ENG_EINVAL, "node '%s' (TopK): K %lld out of range [0, %lld]", KNAME(a),
                     (long long)k, (long long)x->dims[ax]);
    ku_shape(a->out[0], x->dtype, x->rank, x->dims);
    a->out[0]->dims[ax] = k;
    if (a->nout > 1 && a->out[1]) {
        ku_shape(a->out[1], ENG_INT64, x->rank, x->dims);
        a->out[1]->dims[ax] = k;
    }
    return 0;
}

static int run_topk(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0], *oi = a->out[1];
    int64_t ax = 0, k = 0;
    topk_k(a, &k);
    ku_axis(eg_attr_int(a->node, "axis", -1), x->rank, &ax);
    int largest = (int)eg_attr_int(a->node, "largest", 1);
    int64_t outer = ku_prod(x->dims, 0, (int)ax), len = x->dims[ax],
            inner = ku_prod(x->dims, (int)ax + 1, x->rank);
    size_t es = eg_dtype_size(x->dtype);
    int64_t *I = oi->data;
    for (int64_t p = 0; p < outer; p++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = p * len * inner + i, ob = p * k * inner + i, m = 0;
            /* sorted insertion into the k best so far (kept in the indices
             * output): O(len) when most candidates lose, no scratch memory;
             * equal values keep the lower index first */
            for (int64_t c = 0; c < len && k; c++) {
                double v = ku_getd(x, base + c * inner);
                int64_t pos = m;
                while (pos > 0) {
                    double w = ku_getd(x, base + I[ob + (pos - 1) * inner] * inner);
                    if (largest ? v > w : v < w)
                        pos--;
                    else
                        break;
                }
                if (pos >= k) continue;
                int64_t last = m < k ? m : k - 1;
                for (int64_t t = last; t > pos; t--) I[ob + t * inner] = I[ob + (t - 1) * inner];
                I[ob + pos * inner] = c;
                if (m < k) m++;
            }
            for (int64_t j = 0; j < k; j++)
                memcpy((char *)o->data + (size_t)(ob + j * inner) * es,
                       (const char *)x->data + (size_t)(base + I[ob + j * inner] * inner) * es, es);
        }
    return 0;
}

/* ---- Pad ---------------------------------------------------------------------------------------
 */

typedef struct pad_plan {
    int64_t lo[ENG_MAX_RANK];
    int mode; /* 0 constant, 1 reflect, 2 edge, 3 wrap */
    double value;
} pad_plan;

static int pad_get(ek_args *a, pad_plan *p)
{
    const ek_view *x = a->in[0];
    int64_t pads[2 * ENG_MAX_RANK], axes[ENG_MAX_RANK];
    int n, na = x->rank;
    const char *mode = eg_attr_str(a->node, "mode", "constant");
    p->mode = !strcmp(mode, "constant")  ? 0
              : !strcmp(mode, "reflect") ? 1
              : !strcmp(mode, "edge")    ? 2
              : !strcmp(mode, "wrap")    ? 3
                                         : -1;
    if (p->mode < 0)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (Pad): unknown mode '%s'", KNAME(a), mode);
    p->value = 0;
    if (a->opset < 11) {
        const eg_attr *pa = eg_attr_find(a->node, a->opset < 2 ? "paddings" : "pads");
        n = pa && pa->n <= 2 * ENG_MAX_RANK ? pa->n : -1;
        for (int i = 0; i < n; i++) pads[i] = pa->ints[i];
        p->value = eg_attr_float(a->node, "value", 0);
    } else {
        if (!in_const(a, 1)) return NEED_CONST(a, 1);
        n = ku_ints(a->in[1], pads, 2 * ENG_MAX_RANK);
        if (a->nin > 2 && a->in[2]) {
            if (!a->in[2]->data || ek_numel(a->in[2]) != 1)
                return KFAIL(a, ENG_EUNSUPPORTED,
                             "node '%s' (Pad): constant_value must be a "
                             "constant scalar",
                             KNAME(a));
            p->value = ku_getd(a->in[2], 0);
        }
        if (a->nin > 3 && a->in[3]) {
            if (!a->in[3]->data) return NEED_CONST(a, 3);
            na = ku_ints(a->in[3], axes, ENG_MAX_RANK);
        }
    }
    if (n < 0 || na < 0 || n != 2 * na)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (Pad): pads must hold 2 x %d ints", KNAME(a), na);
    int64_t hi[ENG_MAX_RANK] = {0};
    for (int d = 0; d < x->rank; d++) p->lo[d] = 0;
    for (int i = 0; i < na; i++) {
        int64_t ax = i;
        if (na != x->rank || (a->nin > 3 && a->in[3]))
            if (ku_axis(axes[i], x->rank, &ax))
                return KFAIL(a, ENG_EFORMAT, "node '%s' (Pad): axis out of range", KNAME(a));
        p->lo[ax] = pads[i];
        hi[ax] = pads[i + na];
    }
    ek_view *o = a->out[0];
    ku_shape(o, x->dtype, x->rank, x->dims);
    for (int d = 0; d < x->rank; d++) {
        o->dims[d] = x->dims[d] + p->lo[d] + hi[d];
        if (o->dims[d] < 0)
            return KFAIL(a, ENG_ESHAPE, "node '%s' (Pad): negative output dim", KNAME(a));
        if (p->mode && (o->dims[d] > x->dims[d] || p->lo[d]) && x->dims[d] == 0)
            return KFAIL(a, ENG_ESHAPE, "node '%s' (Pad): cannot %s-pad an empty dim", KNAME(a),
                         mode);
    }
    return 0;
}

static int infer_pad(ek_args *a)
{
    pad_plan p;
    return pad_get(a, &p);
}

static int run_pad(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    pad_plan p;
    int rc = pad_get(a, &p);
    if (rc) return rc;
    int64_t st[ENG_MAX_RANK], cnt[ENG_MAX_RANK] = {0}, n = ek_numel(o);
    ek_strides(x, st);
    size_t es = eg_dtype_size(x->dtype);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        int out = 0;
        for (int d = 0; d < x->rank; d++) {
            int64_t c = cnt[d] - p.lo[d], len = x->dims[d];
            if (c < 0 || c >= len) {
                if (p.mode == 0) {
                    out = 1;
                    break;
                }
                if (p.mode == 2) {
                    c = c < 0 ? 0 : len - 1;
                } else if (p.mode == 3) {
                    c = ((c % len) + len) % len;
                } else if (len == 1) {
                    c = 0;
                } else { /* reflect without repeating the edge */
                    int64_t per = 2 * (len - 1);
                    c = ((c % per) + per) % per;
                    if (c >= len) c = per - c;
                }
            }
            off += c * st[d];
        }
        if (out)
            ku_setd(o, i, p.value);
        else
            memcpy((char *)o->data + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
        for (int d = x->rank - 1; d >= 0; d--) {
            if (++cnt[d] < o->dims[d]) break;
            cnt[d] = 0;
        }
    }
    return 0;
}

/* ---- DepthToSpace, SpaceToDepth -------------------------------------------------------------- */

static int infer_d2s(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t b = eg_attr_int(a->node, "blocksize", 0);
    int d2s = a->node->op == EG_OP_DEPTHTOSPACE;
    if (x->rank != 4 || b < 1 || (d2s && x->dims[1] % (b * b)) ||
        (!d2s && (x->dims[2] % b || x->dims[3] % b)))
        return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): needs NCHW input divisible by blocksize",
                     KNAME(a), KOP(a));
    const char *mode = eg_attr_str(a->node, "mode", "DCR");
    if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): unknown mode '%s'", KNAME(a), KOP(a), mode);
    ek_view *o = a->out[0];
    ku_shape(o, x->dtype, 4, x->dims);
    if (d2s) {
        o->dims[1] /= b * b;
        o->dims[2] *= b;
        o->dims[3] *= b;
    } else {
        o->dims[1] *= b * b;
        o->dims[2] /= b;
        o->dims[3] /= b;
    }
    return 0;
}

static int run_d2s(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    int64_t b = eg_attr_int(a->node, "blocksize", 1);
    int d2s = a->node->op == EG_OP_DEPTHTOSPACE,
        crd = !strcmp(eg_attr_str(a->node, "mode", "DCR"), "CRD");
    /* walk the depth-side tensor [N, C*b*b, H, W] and map to the space side */
    const ek_view *deep = d2s ? x : o;
    int64_t N = deep->dims[0], Cb = deep->dims[1], H = deep->dims[2], W = deep->dims[3],
            C = Cb / (b * b);
    size_t es = eg_dtype_size(x->dtype);
    for (int64_t n = 0; n < N; n++)
        for (int64_t cb = 0; cb < Cb; cb++) {
            int64_t c, bi, bj;
            if (crd || !d2s) {
                /* CRD: channel c, then block row/col; SpaceToDepth is DCR-like
                 * with the block outermost */
                if (!d2s) {
                    bi = cb / (b * C), bj = (cb / C) % b, c = cb % C;
                } else {
                    c = cb / (b * b), bi = (cb / b) % b, bj = cb % b;
                }
            } else {
                bi = cb / (b * C), bj = (cb / C) % b, c = cb % C;
            }
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) {
                    int64_t doff = ((n * Cb + cb) * H + h) * W + w;
                    int64_t soff = ((n * C + c) * H * b + h * b + bi) * W * b + w * b + bj;
                    if (d2s)
                        memcpy((char *)o->data + (size_t)soff * es,
                               (const char *)x->data + (size_t)doff * es, es);
                    else
                        memcpy((char *)o->data + (size_t)doff * es,
                               (const char *)x->data + (size_t)soff * es, es);
                }
        }
    return 0;
}

/* ---- ReverseSequence, Compress, NonZero ---------------------------------------------------------
 */

static int infer_revseq(ek_args *a)
{
    const ek_view *x = a->in[0], *l = a->in[1];
    int64_t ba = eg_attr_int(a->node, "batch_axis", 1), ta = eg_attr_int(a->node, "time_axis", 0);
    if (x->rank < 2 || (ba != 0 && ba != 1) || (ta != 0 && ta != 1) || ba == ta ||
        !ku_is_int(l->dtype) || ek_numel(l) != x->dims[ba])
        return KFAIL(a, ENG_EFORMAT, "node '%s' (ReverseSequence): bad axes or sequence_lens",
                     KNAME(a));
    ku_shape(a->out[0], x->dtype, x->rank, x->dims);
    return 0;
}

static int run_revseq(ek_args *a)
{
    const ek_view *x = a->in[0], *l = a->in[1];
    ek_view *o = a->out[0];
    int64_t ba = eg_attr_int(a->node, "batch_axis", 1), ta = 1 - ba;
    int64_t st[ENG_MAX_RANK];
    ek_strides(x, st);
    int64_t B = x->dims[ba], T = x->dims[ta], inner = ku_prod(x->dims, 2, x->rank);
    size_t es = eg_dtype_size(x->dtype);
    for (int64_t b = 0; b < B; b++) {
        int64_t len = ku_geti(l, b);
        if (len < 0 || len > T) return bad_index(a, len, T + 1);
        for (int64_t t = 0; t < T; t++) {
            int64_t src = t < len ? len - 1 - t : t;
            memcpy((char *)o->data + (size_t)(b * st[ba] + t * st[ta]) * es,
                   (const char *)x->data + (size_t)(b * st[ba] + src * st[ta]) * es,
                   (size_t)inner * es);
        }
    }
    return 0;
}

static int infer_compress(ek_args *a)
{
    const ek_view *x = a->in[0], *c = a->in[1];
    if (!in_const(a, 1)) return NEED_CONST(a, 1);
    if (c->dtype != ENG_BOOL || c->rank != 1)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (Compress): condition must be 1-D bool", KNAME(a));
    const eg_attr *axa = eg_attr_find(a->node, "axis");
    int64_t ax = 0, len = axa ? 0 : ek_numel(x), cnt = 0;
    if (axa && ku_axis(axa->i, x->rank, &ax))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (Compress): axis out of range", KNAME(a));
    if (axa) len = x->dims[ax];
    const uint8_t *C = c->data;
    for (int64_t i = 0; i < c->dims[0] && i < len; i++) cnt += C[i] != 0;
    if (axa) {
        ku_shape(a->out[0], x->dtype, x->rank, x->dims);
        a->out[0]->dims[ax] = cnt;
    } else {
        ku_shape(a->out[0], x->dtype, 1, &cnt);
    }
    return 0;
}

static int run_compress(ek_args *a)
{
    const ek_view *x = a->in[0], *c = a->in[1];
    const eg_attr *axa = eg_attr_find(a->node, "axis");
    int64_t ax = 0;
    if (axa) ku_axis(axa->i, x->rank, &ax);
    int64_t outer = axa ? ku_prod(x->dims, 0, (int)ax) : 1, len = axa ? x->dims[ax] : ek_numel(x),
            inner = axa ? ku_prod(x->dims, (int)ax + 1, x->rank) : 1;
    const uint8_t *C = c->data;
    size_t es = eg_dtype_size(x->dtype), row = (size_t)inner * es;
    char *dst = a->out[0]->data;
    for (int64_t p = 0; p < outer; p++)
        for (int64_t i = 0; i < len && i < c->dims[0]; i++)
            if (C[i]) {
                memcpy(dst, (const char *)x->data + (size_t)(p * len + i) * row, row);
                dst += row;
            }
    return 0;
}

static int infer_nonzero(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (!x->data) return NEED_CONST(a, 0);
    int64_t n = ek_numel(x), cnt = 0;
    for (int64_t i = 0; i < n; i++) cnt += ku_getd(x, i) != 0;
    int64_t dims[2] = {x->rank, cnt};
    ku_shape(a->out[0], ENG_INT64, 2, dims);
    return 0;
}

static int run_nonzero(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t n = ek_numel(x), cnt = a->out[0]->dims[1], k = 0, c[ENG_MAX_RANK] = {0};
    int64_t *O = a->out[0]->data;
    for (int64_t i = 0; i < n; i++) {
        if (ku_getd(x, i) != 0) {
            for (int d = 0; d < x->rank; d++) O[d * cnt + k] = c[d];
            k++;
        }
        for (int d = x->rank - 1; d >= 0; d--) {
            if (++c[d] < x->dims[d]) break;
            c[d] = 0;
        }
    }
    return 0;
}

/* ---- Det --------------------------------------------------------------------------------------
 */

static int infer_det(ek_args *a)
{
    const ek_view *x = a->in[0];
    if (x->dtype != ENG_FLOAT || x->rank < 2 || x->dims[x->rank - 1] != x->dims[x->rank - 2] ||
        x->dims[x->rank - 1] > 64)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (Det): needs float square matrices (<= 64)",
                     KNAME(a));
    ku_shape(a->out[0], ENG_FLOAT, x->rank - 2, x->dims);
    return 0;
}

static int run_det(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t n = x->dims[x->rank - 1], B = ek_numel(a->out[0]);
    double m[64 * 64];
    for (int64_t b = 0; b < B; b++) {
        const float *X = (const float *)x->data + b * n * n;
        for (int64_t i = 0; i < n * n; i++) m[i] = X[i];
        double det = 1;
        for (int64_t c = 0; c < n; c++) { /* Gaussian elimination, partial pivoting */
            int64_t p = c;
            for (int64_t r = c + 1; r < n; r++)
                if (fabs(m[r * n + c]) > fabs(m[p * n + c])) p = r;
            if (m[p * n + c] == 0) {
                det = 0;
                break;
            }
            if (p != c) {
                for (int64_t k = 0; k < n; k++) {
                    double t = m[c * n + k];
                    m[c * n + k] = m[p * n + k];
                    m[p * n + k] = t;
                }
                det = -det;
            }
            det *= m[c * n + c];
            for (int64_t r = c + 1; r < n; r++) {
                double f = m[r * n + c] / m[c * n + c];
                for (int64_t k = c; k < n; k++) m[r * n + k] -= f * m[c * n + k];
            }
        }
        ((float *)a->out[0]->data)[b] = (float)det;
    }
    return 0;
}

const ek_op ek_op_size = {infer_size, run_size, EK_NHWC_OK, 0};
const ek_op ek_op_cos = {infer_cos, run_cos, 0, 1u};
const ek_op ek_op_eyelike = {infer_eyelike, run_eyelike, 0, 0};
const ek_op ek_op_range = {infer_range, run_range, 0, 7u};
const ek_op ek_op_expand = {infer_expand, run_expand, 0, 2u};
const ek_op ek_op_tile = {infer_tile, run_tile, 0, 2u};
const ek_op ek_op_trilu = {infer_trilu, run_trilu, 0, 2u};
const ek_op ek_op_gather_el = {infer_gather_el, run_gather_el, 0, 0};
const ek_op ek_op_scatter_el = {infer_scatter_el, run_scatter_el, 0, 0};
const ek_op ek_op_gather_nd = {infer_gather_nd, run_gather_nd, 0, 0};
const ek_op ek_op_scatter_nd = {infer_scatter_nd, run_scatter_nd, 0, 0};
const ek_op ek_op_onehot = {infer_onehot, run_onehot, 0, 2u};
const ek_op ek_op_topk = {infer_topk, run_topk, 0, 2u};
const ek_op ek_op_pad = {infer_pad, run_pad, 0, 14u};
const ek_op ek_op_d2s = {infer_d2s, run_d2s, 0, 0};
const ek_op ek_op_revseq = {infer_revseq, run_revseq, 0, 0};
const ek_op ek_op_compress = {infer_compress, run_compress, 0, 2u};
const ek_op ek_op_nonzero = {infer_nonzero, run_nonzero, 0, 1u};
const ek_op ek_op_det = {infer_det, run_det, 0, 0};
