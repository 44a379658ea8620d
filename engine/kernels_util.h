/* kernels_util: small helpers shared by the reference kernel files added for
 * op breadth (ref_elem.c, ref_reduce.c, ref_index.c, ref_resize.c, ref_loss.c,
 * ref_rnn.c, ref_ml.c): dtype-generic element access, axis and constant-list
 * reading, and numpy broadcasting of up to four inputs. Private to engine/. */
#ifndef ENGINE_KERNELS_UTIL_H
#define ENGINE_KERNELS_UTIL_H

#include "engine/kernels.h"

#include <stdint.h>
#include <string.h>

#define KFAIL(a, st, ...) eg_err((a)->err, (a)->errlen, st, __VA_ARGS__)
#define KNAME(a)          ((a)->node->name)
#define KOP(a)            eg_op_name((a)->node->op)

static inline double ku_getd(const ek_view *v, int64_t i)
{
    switch (v->dtype) {
    case ENG_FLOAT: return ((const float *)v->data)[i];
    case ENG_INT64: return (double)((const int64_t *)v->data)[i];
    case ENG_INT32: return ((const int32_t *)v->data)[i];
    case ENG_DOUBLE: return ((const double *)v->data)[i];
    default: return ((const uint8_t *)v->data)[i];
    }
}

static inline int64_t ku_geti(const ek_view *v, int64_t i)
{
    switch (v->dtype) {
    case ENG_FLOAT: return (int64_t)((const float *)v->data)[i];
    case ENG_INT64: return ((const int64_t *)v->data)[i];
    case ENG_INT32: return ((const int32_t *)v->data)[i];
    case ENG_DOUBLE: return (int64_t)((const double *)v->data)[i];
    default: return ((const uint8_t *)v->data)[i];
    }
}

static inline void ku_setd(ek_view *v, int64_t i, double x)
{
    switch (v->dtype) {
    case ENG_FLOAT: ((float *)v->data)[i] = (float)x; break;
    case ENG_INT64: ((int64_t *)v->data)[i] = (int64_t)x; break;
    case ENG_INT32: ((int32_t *)v->data)[i] = (int32_t)x; break;
    case ENG_DOUBLE: ((double *)v->data)[i] = x; break;
    default: ((uint8_t *)v->data)[i] = x != 0; break;
    }
}

static inline void ku_seti(ek_view *v, int64_t i, int64_t x)
{
    switch (v->dtype) {
    case ENG_FLOAT: ((float *)v->data)[i] = (float)x; break;
    case ENG_INT64: ((int64_t *)v->data)[i] = x; break;
    case ENG_INT32: ((int32_t *)v->data)[i] = (int32_t)x; break;
    case ENG_DOUBLE: ((double *)v->data)[i] = (double)x; break;
    default: ((uint8_t *)v->data)[i] = x != 0; break;
    }
}

static inline int ku_is_int(eng_dtype t)
{
    return t == ENG_INT64 || t == ENG_INT32;
}

/* axis in [-rank, rank) -> [0, rank); -1 when out of range. */
static inline int ku_axis(int64_t axis, int rank, int64_t *out)
{
    if (axis < -rank || axis >= rank) return -1;
    *out = axis < 0 ? axis + rank : axis;
    return 0;
}

/* Integer list from a constant int64/int32 view; count or -1. */
static inline int ku_ints(const ek_view *v, int64_t *out, int cap)
{
    if (!v || !v->data || !ku_is_int(v->dtype)) return -1;
    int64_t n = ek_numel(v);
    if (n > cap) return -1;
    for (int64_t i = 0; i < n; i++) out[i] = ku_geti(v, i);
    return (int)n;
}

static inline void ku_shape(ek_view *o, eng_dtype t, int rank, const int64_t *dims)
{
    o->dtype = t;
    o->rank = rank;
    o->nhwc = 0;
    for (int i = 0; i < rank; i++) o->dims[i] = dims[i];
}

/* Product of dims [from, to). */
static inline int64_t ku_prod(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= dims[i];
    return p;
}

/* ---- broadcasting ---------------------------------------------------------- */

#define KU_MAXB 4

typedef struct ku_bcast {
    int rank, n;
    int64_t dims[ENG_MAX_RANK];
    int64_t st[KU_MAXB][ENG_MAX_RANK]; /* 0 where the input is broadcast */
    int64_t cnt[ENG_MAX_RANK], off[KU_MAXB];
} ku_bcast;

/* Output shape of numpy broadcasting over n views; -1 when they do not fit. */
static inline int ku_bcast_shape(ek_view *const *v, int n, int *rank, int64_t *dims)
{
    int r = 0;
    for (int k = 0; k < n; k++) r = v[k]->rank > r ? v[k]->rank : r;
    for (int i = 0; i < r; i++) {
        int64_t d = 1;
        for (int k = 0; k < n; k++) {
            int iv = i - (r - v[k]->rank);
            int64_t dk = iv >= 0 ? v[k]->dims[iv] : 1;
            if (dk == d || dk == 1) continue;
            if (d != 1) return -1;
            d = dk;
        }
        dims[i] = d;
    }
    *rank = r;
    return 0;
}

/* Prepares an iteration over the broadcast output (row-major, no NHWC). */
static inline void ku_bcast_init(ku_bcast *b, ek_view *const *v, int n, int rank,
                                 const int64_t *dims)
{
    memset(b, 0, sizeof(*b));
    b->rank = rank;
    b->n = n;
    memcpy(b->dims, dims, sizeof(int64_t) * (size_t)rank);
    for (int k = 0; k < n; k++) {
        int64_t s = 1;
        for (int i = rank - 1; i >= 0; i--) {
            int iv = i - (rank - v[k]->rank);
            int64_t d = iv >= 0 ? v[k]->dims[iv] : 1;
            b->st[k][i] = d == 1 ? 0 : s;
            s *= d;
        }
    }
}

/* Advances to the next output element, updating b->off. */
static inline void ku_bcast_next(ku_bcast *b)
{
    for (int d = b->rank - 1; d >= 0; d--) {
        for (int k = 0; k < b->n; k++) b->off[k] += b->st[k][d];
        if (++b->cnt[d] < b->dims[d]) return;
        for (int k = 0; k < b->n; k++) b->off[k] -= b->st[k][d] * b->dims[d];
        b->cnt[d] = 0;
    }
}

#endif
