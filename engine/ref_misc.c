/* ref_misc: the window generators (HannWindow, HammingWindow, BlackmanWindow),
 * Unique and MaxUnpool. Windows and Unique have data-dependent output shapes,
 * so their deciding inputs must be known when the plan is built. */
#include "engine/kernels_util.h"

#include <math.h>
#include <stdlib.h>

/* ---- windows ------------------------------------------------------------------------- */

static int win_size(ek_args *a, int64_t *n)
{
    const ek_view *s = a->in[0];
    if (!s->data)
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (%s): data-dependent shape: input 0 must be known when the plan is "
                     "built",
                     KNAME(a), KOP(a));
    if (!ku_is_int(s->dtype) || ek_numel(s) != 1)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): size must be one integer", KNAME(a), KOP(a));
    *n = ku_geti(s, 0);
    if (*n < 0 || *n > ((int64_t)1 << 28))
        return KFAIL(a, ENG_EINVAL, "node '%s' (%s): size %lld out of range", KNAME(a), KOP(a),
                     (long long)*n);
    return 0;
}

static int infer_window(ek_args *a)
{
    int64_t n = 0;
    int rc = win_size(a, &n);
    if (rc) return rc;
    int64_t dt = eg_attr_int(a->node, "output_datatype", ENG_FLOAT);
    if (dt != ENG_FLOAT && dt != ENG_INT64 && dt != ENG_INT32)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): output_datatype %lld", KNAME(a), KOP(a),
                     (long long)dt);
    ku_shape(a->out[0], (eng_dtype)dt, 1, &n);
    return 0;
}

static int run_window(ek_args *a)
{
    int64_t n = a->out[0]->dims[0];
    int periodic = (int)eg_attr_int(a->node, "periodic", 1);
    double N1 = periodic ? (double)n : (double)(n - 1);
    eg_op op = a->node->op;
    double a0 = op == EG_OP_HANNWINDOW ? 0.5 : op == EG_OP_HAMMINGWINDOW ? 25.0 / 46.0 : 0.42;
    double a1 = op == EG_OP_BLACKMANWINDOW ? 0.5 : 1.0 - a0,
           a2 = op == EG_OP_BLACKMANWINDOW ? 0.08 : 0;
    for (int64_t i = 0; i < n; i++) {
        double x = N1 > 0 ? 2 * M_PI * (double)i / N1 : 0;
        ku_setd(a->out[0], i, a0 - a1 * cos(x) + a2 * cos(2 * x));
    }
    return 0;
}

/* ---- Unique ---------------------------------------------------------------------------- */

typedef struct uq_geom {
    int64_t outer, len, inner; /* slices along the axis: [outer, len, inner] */
    int axis;                  /* -1: flattened */
} uq_geom;

static int uq_get(ek_args *a, uq_geom *g)
{
    const ek_view *x = a->in[0];
    const eg_attr *ax = eg_attr_find(a->node, "axis");
    if (!x->data)
        return KFAIL(
            a, ENG_EUNSUPPORTED,
            "node '%s' (Unique): data-dependent shape: input 0 must be known when the plan "
            "is built",
            KNAME(a));
    if (x->dtype == ENG_BOOL)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (Unique): numeric input needed", KNAME(a));
    if (!ax) {
        g->axis = -1, g->outer = 1, g->len = ek_numel(x), g->inner = 1;
        return 0;
    }
    int64_t t;
    if (ku_axis(ax->i, x->rank, &t))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (Unique): axis out of range", KNAME(a));
    g->axis = (int)t;
    g->outer = ku_prod(x->dims, 0, (int)t);
    g->len = x->dims[t];
    g->inner = ku_prod(x->dims, (int)t + 1, x->rank);
    return 0;
}

/* Compares slices i and j along the axis (lexicographic over outer, inner). */
static int uq_cmp(const ek_view *x, const uq_geom *g, int64_t i, int64_t j)
{
    for (int64_t o = 0; o < g->outer; o++)
        for (int64_t k = 0; k < g->inner; k++) {
            double p = ku_getd(x, (o * g->len + i) * g->inner + k),
                   q = ku_getd(x, (o * g->len + j) * g->inner + k);
            if (p != q) return p < q ? -1 : 1;
        }
    return 0;
}

/* first[u] = index of the u-th unique slice (sorted or by first occurrence);
 * inv[i] = its unique index; count returned. Scratch: order has len entries. */
static int64_t uq_run(const ek_view *x, const uq_geom *g, int sorted, int64_t *first, int64_t *inv,
                      int64_t *cnt)
{
    int64_t nu = 0;
    for (int64_t i = 0; i < g->len; i++) {
        int64_t u = 0;
        while (u < nu && uq_cmp(x, g, first[u], i)) u++;
        if (u == nu) first[nu++] = i, cnt[u] = 0;
        inv[i] = u;
        cnt[u]++;
    }
    if (!sorted) return nu;
    /* insertion sort of the uniques, then remap inv */
    int64_t *perm = malloc((size_t)(nu + 1) * sizeof(int64_t) * 3);
    if (!perm) return -1;
    int64_t *rank = perm + nu + 1, *c2 = rank + nu + 1;
    for (int64_t u = 0; u < nu; u++) perm[u] = u;
    for (int64_t u = 1; u < nu; u++)
        for (int64_t v = u; v > 0 && uq_cmp(x, g, first[perm[v]], first[perm[v - 1]]) < 0; v--) {
            int64_t t = perm[v];
            perm[v] = perm[v - 1];
            perm[v - 1] = t;
        }
    for (int64_t u = 0; u < nu; u++) rank[perm[u]] = u;
    int64_t *f2 = malloc((size_t)(nu + 1) * sizeof(int64_t));
    if (!f2) {
        free(perm);
        return -1;
    }
    for (int64_t u = 0; u < nu; u++) f2[u] = first[perm[u]], c2[u] = cnt[perm[u]];
    for (int64_t u = 0; u < nu; u++) first[u] = f2[u], cnt[u] = c2[u];
    for (int64_t i = 0; i < g->len; i++) inv[i] = rank[inv[i]];
    free(f2);
    free(perm);
    return nu;
}

static int infer_unique(ek_args *a)
{
    const ek_view *x = a->in[0];
    uq_geom g;
    int rc = uq_get(a, &g);
    if (rc) return rc;
    int64_t *buf = malloc((size_t)(g.len + 1) * sizeof(int64_t) * 3);
    if (!buf) return KFAIL(a, ENG_ENOMEM, "out of memory");
    int64_t nu = uq_run(x, &g, (int)eg_attr_int(a->node, "sorted", 1), buf, buf + g.len + 1,
                        buf + 2 * (g.len + 1));
    free(buf);
    if (nu < 0) return KFAIL(a, ENG_ENOMEM, "out of memory");
    if (g.axis < 0) {
        ku_shape(a->out[0], x->dtype, 1, &nu);
    } else {
        ku_shape(a->out[0], x->dtype, x->rank, x->dims);
        a->out[0]->dims[g.axis] = nu;
    }
    for (int k = 1; k < a->nout && k < 4; k++)
        if (a->out[k]) ku_shape(a->out[k], ENG_INT64, 1, k == 2 ? &g.len : &nu);
    return 0;
}

static int run_unique(ek_args *a)
{
    const ek_view *x = a->in[0];
    uq_geom g;
    uq_get(a, &g);
    int64_t *buf = malloc((size_t)(g.len + 1) * sizeof(int64_t) * 3);
    if (!buf) return KFAIL(a, ENG_ENOMEM, "out of memory");
    int64_t *first = buf, *inv = buf + g.len + 1, *cnt = buf + 2 * (g.len + 1);
    int64_t nu = uq_run(x, &g, (int)eg_attr_int(a->node, "sorted", 1), first, inv, cnt);
    size_t es = eg_dtype_size(x->dtype);
    for (int64_t o = 0; nu > 0 && o < g.outer; o++)
        for (int64_t u = 0; u < nu; u++)
            memcpy((char *)a->out[0]->data + (size_t)((o * nu + u) * g.inner) * es,
                   (const char *)x->data + (size_t)((o * g.len + first[u]) * g.inner) * es,
                   (size_t)g.inner * es);
    int64_t *outs[3] = {first, inv, cnt};
    for (int k = 1; k < a->nout && k < 4; k++)
        if (a->out[k])
            memcpy(a->out[k]->data, outs[k - 1], (size_t)(k == 2 ? g.len : nu) * sizeof(int64_t));
    free(buf);
    return nu < 0 ? KFAIL(a, ENG_ENOMEM, "out of memory") : 0;
}

/* ---- MaxUnpool --------------------------------------------------------------------------------
 */

static int infer_unpool(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1];
    const eg_attr *ks = eg_attr_find(a->node, "kernel_shape"),
                  *st = eg_attr_find(a->node, "strides"), *pd = eg_attr_find(a->node, "pads");
    int sp = x->rank - 2;
    if (x->dtype != ENG_FLOAT || !ku_is_int(idx->dtype) || sp < 1 || !ks || ks->n != sp ||
        (st && st->n != sp) || (pd && pd->n != 2 * sp) || ek_numel(idx) != ek_numel(x))
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (MaxUnpool): needs float X, int indices of its "
                     "size and kernel_shape/strides/pads per spatial dim",
                     KNAME(a));
    ek_view *o = a->out[0];
    ku_shape(o, ENG_FLOAT, x->rank, x->dims);
    if (a->nin > 2 && a->in[2]) {
        int64_t os[ENG_MAX_RANK];
        if (!a->in[2]->data)
            return KFAIL(a, ENG_EUNSUPPORTED,
                         "node '%s' (MaxUnpool): output_shape must be known "
                         "when the plan is built",
                         KNAME(a));
        if (ku_ints(a->in[2], os, ENG_MAX_RANK) != x->rank)
            return KFAIL(a, ENG_EFORMAT, "node '%s' (MaxUnpool): output_shape rank", KNAME(a));
        for (int d = 0; d < x->rank; d++) o->dims[d] = os[d];
    } else {
        for (int i = 0; i < sp; i++) {
            int64_t s = st ? st->ints[i] : 1, pb = pd ? pd->ints[i] : 0,
                    pe = pd ? pd->ints[i + sp] : 0;
            o->dims[2 + i] = (x->dims[2 + i] - 1) * s + ks->ints[i] - pb - pe;
            if (o->dims[2 + i] < 0)
                return KFAIL(a, ENG_ESHAPE, "node '%s' (MaxUnpool): negative output", KNAME(a));
        }
    }
    return 0;
}

static int run_unpool(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1];
    ek_view *o = a->out[0];
    const eg_attr *ks = eg_attr_find(a->node, "kernel_shape"),
                  *st = eg_attr_find(a->node, "strides"), *pd = eg_attr_find(a->node, "pads");
    int sp = x->rank - 2;
    /* indices address the default output shape; an output_shape pads its end */
    ek_view def = *o;
    for (int i = 0; i < sp; i++) {
        int64_t s = st ? st->ints[i] : 1, pb = pd ? pd->ints[i] : 0, pe = pd ? pd->ints[i + sp] : 0;
        def.dims[2 + i] = (x->dims[2 + i] - 1) * s + ks->ints[i] - pb - pe;
    }
    int64_t n = ek_numel(x), dn = ek_numel(&def), ost[ENG_MAX_RANK];
    ek_strides(o, ost);
    float *Y = o->data;
    const float *X = x->data;
    memset(Y, 0, ek_bytes(o));
    for (int64_t i = 0; i < n; i++) {
        int64_t k = ku_geti(idx, i), off = 0, r = k;
        if (k < 0 || k >= dn)
            return KFAIL(a, ENG_EINVAL, "node '%s' (MaxUnpool): index %lld out of range [0, %lld)",
                         KNAME(a), (long long)k, (long long)dn);
        int inside = 1;
        for (int d = x->rank - 1; d >= 0; d--) {
            int64_t c = r % def.dims[d];
            r /= def.dims[d];
            inside &= c < o->dims[d];
            off += c * ost[d];
        }
        if (inside) Y[off] = X[i];
    }
    return 0;
}

const ek_op ek_op_window = {infer_window, run_window, 0, 1u};
const ek_op ek_op_unique = {infer_unique, run_unique, 0, 1u};
const ek_op ek_op_unpool = {infer_unpool, run_unpool, 0, 4u};

/* ---- CastLike ------------------------------------------------------------------------------ */

static int infer_castlike(ek_args *a)
{
    const ek_view *x = a->in[0], *t = a->in[1];
    if (!eg_dtype_size(x->dtype) || !eg_dtype_size(t->dtype))
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (CastLike): type not supported", KNAME(a));
    ku_shape(a->out[0], t->dtype, x->rank, x->dims);
    return 0;
}

static int run_castlike(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    int64_t n = ek_numel(x);
    for (int64_t i = 0; i < n; i++) {
        if (ku_is_int(x->dtype) && ku_is_int(o->dtype)) { /* exact */
            ku_seti(o, i, ku_geti(x, i));
            continue;
        }
        double v = ku_getd(x, i);
        if (ku_is_int(o->dtype) && (v != v || v > 9.2e18 || v < -9.2e18)) v = 0;
        ku_setd(o, i, v);
    }
    return 0;
}

const ek_op ek_op_castlike = {infer_castlike, run_castlike, 0, 0};

/* ---- Einsum ----------------------------------------------------------------------------- */

#define ES_LABELS 64 /* 52 letters + up to 8 ellipsis dims + spare */

typedef struct es_plan {
    int nin, nout_l, ncon;
    int term[KU_MAXB][ENG_MAX_RANK]; /* label of each input dim */
    int out[ENG_MAX_RANK];           /* labels of the output dims */
    int con[ES_LABELS];              /* contracted labels */
    int64_t dim[ES_LABELS];
} es_plan;

static int es_label(char c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' : c >= 'A' && c <= 'Z' ? 26 + c - 'A' : -1;
}

/* Parses one term for a tensor of rank r (r < 0: the output, ell = ellipsis
 * rank); writes labels, returns the count or -1. */
static int es_term(const char *s, const char *e, int r, int *ell, int *lab)
{
    int letters = 0, has_ell = 0;
    for (const char *p = s; p < e; p++)
        if (*p == '.') {
            if (p + 2 >= e + 0 || p[1] != '.' || p[2] != '.' || has_ell) return -1;
            has_ell = 1;
            p += 2;
        } else if (es_label(*p) >= 0) {
            letters++;
        } else {
            return -1;
        }
    int ne = has_ell ? (r >= 0 ? r - letters : *ell) : 0;
    if (ne < 0 || ne > 8 || (r >= 0 && !has_ell && letters != r)) return -1;
    if (r >= 0 && ne > *ell) *ell = ne;
    int n = 0;
    for (const char *p = s; p < e; p++) {
        if (*p == '.') {
            /* ellipsis dims align from the right: label 52 + (8 - ne) + k */
            for (int k = 0; k < ne; k++) lab[n++] = 52 + 8 - ne + k;
            p += 2;
        } else {
            lab[n++] = es_label(*p);
        }
        if (n > ENG_MAX_RANK) return -1;
    }
    return n;
}

static int es_get(ek_args *a, es_plan *p)
{
    const char *eq = eg_attr_str(a->node, "equation", "");
    char buf[256];
    int n = 0;
    for (const char *c = eq; *c && n < 255; c++)
        if (*c != ' ') buf[n++] = *c;
    buf[n] = 0;
    memset(p, 0, sizeof(*p));
    p->nin = a->nin;
    if (a->nin < 1 || a->nin > KU_MAXB)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (Einsum): 1..%d inputs", KNAME(a), KU_MAXB);
    const char *arrow = strstr(buf, "->"), *end = arrow ? arrow : buf + n, *s = buf;
    int ell = 0, seen[ES_LABELS] = {0};
    for (int k = 0; k < p->nin; k++) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *te = comma && k < p->nin - 1 ? comma : end;
        const ek_view *x = a->in[k];
        if (!x || x->dtype != a->in[0]->dtype || x->dtype == ENG_BOOL ||
            es_term(s, te, x->rank, &ell, p->term[k]) != x->rank)
            return KFAIL(a, ENG_EFORMAT, "node '%s' (Einsum): equation '%s' does not fit input %d",
                         KNAME(a), eq, k);
        for (int d = 0; d < x->rank; d++) {
            int l = p->term[k][d];
            int64_t dd = x->dims[d];
            if (seen[l] && p->dim[l] != dd && dd != 1 && p->dim[l] != 1)
                return KFAIL(a, ENG_ESHAPE, "node '%s' (Einsum): label dims differ", KNAME(a));
            if (!seen[l] || p->dim[l] == 1) p->dim[l] = dd;
            seen[l]++;
        }
        s = te + 1;
        if (k < p->nin - 1 && te == end)
            return KFAIL(a, ENG_EFORMAT, "node '%s' (Einsum): equation has too few terms",
                         KNAME(a));
    }
    int inout[ES_LABELS] = {0};
    if (arrow) {
        int r = es_term(arrow + 2, buf + n, -1, &ell, p->out);
        if (r < 0)
            return KFAIL(a, ENG_EFORMAT, "node '%s' (Einsum): bad output term in '%s'", KNAME(a),
                         eq);
        p->nout_l = r;
    } else { /* implicit: ellipsis, then letters seen once, alphabetically */
        for (int k = 0; k < ell; k++) p->out[p->nout_l++] = 52 + 8 - ell + k;
        for (int l = 0; l < 52; l++)
            if (seen[l] == 1) p->out[p->nout_l++] = l;
    }
    for (int d = 0; d < p->nout_l; d++) {
        if (!seen[p->out[d]] || inout[p->out[d]]++)
            return KFAIL(a, ENG_EFORMAT, "node '%s' (Einsum): bad output label", KNAME(a));
    }
    for (int l = 0; l < ES_LABELS; l++)
        if (seen[l] && !inout[l]) p->con[p->ncon++] = l;
    return 0;
}

static int infer_einsum(ek_args *a)
{
    es_plan p;
    int rc = es_get(a, &p);
    if (rc) return rc;
    ek_view *o = a->out[0];
    ku_shape(o, a->in[0]->dtype, 0, NULL);
    o->rank = p.nout_l;
    for (int d = 0; d < p.nout_l; d++) o->dims[d] = p.dim[p.out[d]];
    return 0;
}

static int run_einsum(ek_args *a)
{
    es_plan p;
    es_get(a, &p);
    ek_view *o = a->out[0];
    int64_t st[KU_MAXB][ENG_MAX_RANK], idx[ES_LABELS] = {0};
    for (int k = 0; k < p.nin; k++) ek_strides(a->in[k], st[k]);
    int64_t on = ek_numel(o), cn = 1;
    for (int c = 0; c < p.ncon; c++) cn *= p.dim[p.con[c]];
    for (int64_t i = 0; i < on; i++) {
        int64_t r = i;
        for (int d = p.nout_l - 1; d >= 0; d--) {
            idx[p.out[d]] = r % o->dims[d];
            r /= o->dims[d];
        }
        double acc = 0;
        for (int64_t j = 0; j < cn; j++) {
            int64_t q = j;
            for (int c = p.ncon - 1; c >= 0; c--) {
                idx[p.con[c]] = q % p.dim[p.con[c]];
                q /= p.dim[p.con[c]];
            }
            double prod = 1;
            for (int k = 0; k < p.nin; k++) {
                const ek_view *x = a->in[k];
                int64_t off = 0;
                for (int d = 0; d < x->rank; d++)
                    off += (x->dims[d] == 1 ? 0 : idx[p.term[k][d]]) * st[k][d];
                prod *= ku_getd(x, off);
            }
            acc += prod;
        }
        ku_setd(o, i, acc);
    }
    return 0;
}

const ek_op ek_op_einsum = {infer_einsum, run_einsum, 0, 0};

/* ---- TfIdfVectorizer (integer pools) ---------------------------------------------------- */

static int tfidf_get(ek_args *a, const eg_attr **pool, const eg_attr **cnt, const eg_attr **idx,
                     int64_t *size)
{
    const ek_view *x = a->in[0];
    *pool = eg_attr_find(a->node, "pool_int64s");
    *cnt = eg_attr_find(a->node, "ngram_counts");
    *idx = eg_attr_find(a->node, "ngram_indexes");
    int64_t mn = eg_attr_int(a->node, "min_gram_length", 0),
            mx = eg_attr_int(a->node, "max_gram_length", 0);
    const char *mode = eg_attr_str(a->node, "mode", "");
    if (!*pool || (*pool)->type != EG_ATTR_INTS || !*cnt || (*cnt)->type != EG_ATTR_INTS || !*idx ||
        (*idx)->type != EG_ATTR_INTS)
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (TfIdfVectorizer): needs pool_int64s, ngram_counts and "
                     "ngram_indexes (string pools not supported)",
                     KNAME(a));
    if (!ku_is_int(x->dtype) || x->rank < 1 || x->rank > 2 || mn < 1 || mx < mn || mx > (*cnt)->n ||
        (strcmp(mode, "TF") && strcmp(mode, "IDF") && strcmp(mode, "TFIDF")))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (TfIdfVectorizer): bad input or attributes",
                     KNAME(a));
    /* ngram_counts[i]: where the (i+1)-grams start in the pool, ascending */
    int64_t total = 0, prev = 0;
    for (int i = 0; i < (*cnt)->n; i++) {
        int64_t s = (*cnt)->ints[i], e = i + 1 < (*cnt)->n ? (*cnt)->ints[i + 1] : (*pool)->n;
        if (s < prev || e < s || e > (*pool)->n || (e - s) % (i + 1))
            return KFAIL(a, ENG_EFORMAT,
                         "node '%s' (TfIdfVectorizer): ngram_counts do not fit "
                         "the pool",
                         KNAME(a));
        total += (e - s) / (i + 1);
        prev = s;
    }
    if ((*idx)->n != total)
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (TfIdfVectorizer): %d ngram_indexes for %lld "
                     "n-grams",
                     KNAME(a), (*idx)->n, (long long)total);
    *size = 0;
    for (int i = 0; i < (*idx)->n; i++) {
        if ((*idx)->ints[i] < 0 || (*idx)->ints[i] > (1 << 24))
            return KFAIL(a, ENG_EFORMAT, "node '%s' (TfIdfVectorizer): bad ngram index", KNAME(a));
        if ((*idx)->ints[i] + 1 > *size) *size = (*idx)->ints[i] + 1;
    }
    const eg_attr *w = eg_attr_find(a->node, "weights");
    if (w && (w->type != EG_ATTR_FLOATS || w->n < *size))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (TfIdfVectorizer): weights too short", KNAME(a));
    return 0;
}

static int infer_tfidf(ek_args *a)
{
    const eg_attr *pool, *cnt, *idx;
    int64_t size;
    int rc = tfidf_get(a, &pool, &cnt, &idx, &size);
    if (rc) return rc;
    const ek_view *x = a->in[0];
    int64_t d[2] = {x->dims[0], size};
    if (x->rank == 1)
        ku_shape(a->out[0], ENG_FLOAT, 1, &size);
    else
        ku_shape(a->out[0], ENG_FLOAT, 2, d);
    return 0;
}

static int run_tfidf(ek_args *a)
{
    const eg_attr *pool, *cnt, *idx;
    int64_t size;
    tfidf_get(a, &pool, &cnt, &idx, &size);
    const ek_view *x = a->in[0];
    int64_t rows = x->rank == 2 ? x->dims[0] : 1, len = x->dims[x->rank - 1];
    int64_t mn = eg_attr_int(a->node, "min_gram_length", 1),
            mx = eg_attr_int(a->node, "max_gram_length", 1),
            skip = eg_attr_int(a->node, "max_skip_count", 0);
    const char *mode = eg_attr_str(a->node, "mode", "TF");
    const eg_attr *w = eg_attr_find(a->node, "weights");
    if (skip > len) skip = len; /* a longer skip forms no n-gram: no point looping */
    float *Y = a->out[0]->data;
    memset(Y, 0, (size_t)(rows * size) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        float *y = Y + r * size;
        int64_t base = 0; /* ngram ordinal of the first n-gram of length n */
        for (int64_t n = 1; n <= mx; n++) {
            int64_t s = cnt->ints[n - 1], e = n < cnt->n ? cnt->ints[n] : pool->n, k = (e - s) / n;
            if (n >= mn)
                for (int64_t sk = 0; sk <= (n == 1 ? 0 : skip); sk++) /* unigrams once */
                    for (int64_t i = 0; i + (n - 1) * (sk + 1) < len; i++)
                        for (int64_t g = 0; g < k; g++) {
                            int64_t t = 0;
                            while (t < n && pool->ints[s + g * n + t] ==
                                                ku_geti(x, r * len + i + t * (sk + 1)))
                                t++;
                            if (t == n) y[idx->ints[base + g]] += 1;
                        }
            base += k;
        }
        for (int64_t j = 0; j < size; j++) {
            float wt = w ? w->floats[j] : 1.0f;
            if (!strcmp(mode, "IDF"))
                y[j] = y[j] > 0 ? wt : 0;
            else if (!strcmp(mode, "TFIDF"))
                y[j] *= wt;
        }
    }
    return 0;
}

const ek_op ek_op_tfidf = {infer_tfidf, run_tfidf, 0, 0};
