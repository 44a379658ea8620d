/* ref_ml: the ai.onnx.ml ops scikit-learn exports use (built with skl2onnx or
 * onnx.helper): LinearClassifier, LinearRegressor, TreeEnsembleClassifier,
 * TreeEnsembleRegressor, SVMRegressor, SVMClassifier (binary and one-vs-one),
 * Scaler, Normalizer, Binarizer, Imputer, OneHotEncoder, LabelEncoder (number
 * keys and values), ArrayFeatureExtractor.
 *
 * Labels are int64 (classlabels_ints / classlabels_int64s); string labels and
 * ZipMap's sequence-of-maps output have no tensor type here and are refused at
 * load with the attribute named. Tree ensembles are compiled at load into flat
 * node and leaf-weight tables (node->priv), so a run allocates nothing. */
#include "engine/kernels_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- shared: features, labels, post transforms ----------------------------------------- */

/* Rows and features of an ML input: [N, F], or [F] as one row. */
static int ml_rows(ek_args *a, int64_t *N, int64_t *F)
{
    const ek_view *x = a->in[0];
    if (!x || x->dtype == ENG_BOOL || x->rank < 1 || x->rank > 2)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): needs a numeric [N, F] or [F] input",
                     KNAME(a), KOP(a));
    *N = x->rank == 2 ? x->dims[0] : 1;
    *F = x->dims[x->rank - 1];
    return 0;
}

enum { PT_NONE, PT_SOFTMAX, PT_LOGISTIC, PT_SOFTMAX_ZERO };

static int post_transform(ek_args *a, int *pt)
{
    const char *s = eg_attr_str(a->node, "post_transform", "NONE");
    *pt = !strcmp(s, "NONE")           ? PT_NONE
          : !strcmp(s, "SOFTMAX")      ? PT_SOFTMAX
          : !strcmp(s, "LOGISTIC")     ? PT_LOGISTIC
          : !strcmp(s, "SOFTMAX_ZERO") ? PT_SOFTMAX_ZERO
                                       : -1;
    if (*pt < 0)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): post_transform '%s' not supported",
                     KNAME(a), KOP(a), s);
    return 0;
}

static void apply_pt(int pt, float *z, int64_t n)
{
    if (pt == PT_LOGISTIC) {
        for (int64_t i = 0; i < n; i++) z[i] = 1.0f / (1.0f + expf(-z[i]));
    } else if (pt == PT_SOFTMAX || pt == PT_SOFTMAX_ZERO) {
        float m = -INFINITY;
        double s = 0;
        for (int64_t i = 0; i < n; i++)
            if (pt == PT_SOFTMAX || z[i] != 0) m = z[i] > m ? z[i] : m;
        for (int64_t i = 0; i < n; i++) {
            if (pt == PT_SOFTMAX_ZERO && z[i] == 0) continue;
            z[i] = expf(z[i] - m);
            s += z[i];
        }
        for (int64_t i = 0; i < n; i++) z[i] = s > 0 ? (float)(z[i] / s) : z[i];
    }
}

/* int64 class labels: classlabels_ints (linear, SVM) or classlabels_int64s (trees). */
static const eg_attr *labels(ek_args *a, const char *ints, const char *strs, int64_t *n)
{
    const eg_attr *l = eg_attr_find(a->node, ints);
    *n = l ? l->n : 0;
    if (!l && eg_attr_find(a->node, strs)) *n = -1;
    return l;
}

static int label_err(ek_args *a, const char *strs)
{
    return KFAIL(a, ENG_EUNSUPPORTED,
                 "node '%s' (%s): string class labels (%s) not supported; use integer labels",
                 KNAME(a), KOP(a), strs);
}

/* Label output [N] int64 and score output [N, C]. */
static void classifier_shapes(ek_args *a, int64_t N, int64_t C)
{
    int64_t n1[1] = {N}, n2[2] = {N, C};
    ku_shape(a->out[0], ENG_INT64, 1, n1);
    if (a->nout > 1 && a->out[1]) ku_shape(a->out[1], ENG_FLOAT, 2, n2);
}

/* ---- LinearClassifier / LinearRegressor --------------------------------------------------- */

static int infer_linear(ek_args *a)
{
    int64_t N, F, nl;
    int p;
    int rc = ml_rows(a, &N, &F);
    if (rc || (rc = post_transform(a, &p))) return rc;
    const eg_attr *co = eg_attr_find(a->node, "coefficients"),
                  *ic = eg_attr_find(a->node, "intercepts");
    int cls = a->node->op == EG_OP_ML_LINEARCLASSIFIER;
    int64_t T = cls ? (ic ? ic->n : 0) : eg_attr_int(a->node, "targets", 1);
    if (cls && !ic && co && F) T = co->n / F;
    if (!co || co->type != EG_ATTR_FLOATS || T < 1 || co->n != T * F ||
        (ic && (ic->type != EG_ATTR_FLOATS || ic->n != T)))
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (%s): coefficients must hold %lld x %lld floats and intercepts "
                     "%lld",
                     KNAME(a), KOP(a), (long long)T, (long long)F, (long long)T);
    if (!cls) {
        int64_t d[2] = {N, T};
        ku_shape(a->out[0], ENG_FLOAT, 2, d);
        return 0;
    }
    labels(a, "classlabels_ints", "classlabels_strings", &nl);
    if (nl < 0) return label_err(a, "classlabels_strings");
    if (T > 256 && (a->nout < 2 || !a->out[1]))
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (%s): more than 256 classes need the score "
                     "output",
                     KNAME(a), KOP(a));
    if (nl != T && !(T == 1 && nl == 2))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): %lld labels for %lld score rows", KNAME(a),
                     KOP(a), (long long)nl, (long long)T);
    classifier_shapes(a, N, T);
    return 0;
}

static int run_linear(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t N, F, nl;
    int pt = 0;
    ml_rows(a, &N, &F);
    post_transform(a, &pt);
    const eg_attr *co = eg_attr_find(a->node, "coefficients"),
                  *ic = eg_attr_find(a->node, "intercepts");
    int cls = a->node->op == EG_OP_ML_LINEARCLASSIFIER;
    float *Z = cls ? (a->nout > 1 && a->out[1] ? a->out[1]->data : NULL) : a->out[0]->data;
    int64_t T = co->n / (F ? F : 1);
    const eg_attr *lab = cls ? labels(a, "classlabels_ints", "classlabels_strings", &nl) : NULL;
    float row[256];
    for (int64_t n = 0; n < N; n++) {
        float *zz = Z ? Z + n * T : row;
        int64_t best = 0;
        for (int64_t t = 0; t < T; t++) {
            double acc = ic ? ic->floats[t] : 0;
            for (int64_t f = 0; f < F; f++) acc += co->floats[t * F + f] * ku_getd(x, n * F + f);
            zz[t] = (float)acc;
            if (zz[t] > zz[best]) best = t;
        }
        if (cls) {
            int64_t *Y = a->out[0]->data;
            Y[n] = lab->ints[T == 1 ? (zz[0] > 0 ? 1 : 0) : best];
        }
        apply_pt(pt, zz, T);
    }
    return 0;
}

/* ---- Scaler, Normalizer, Binarizer, Imputer ------------------------------------------------ */

static int per_feature(ek_args *a, const char *name, int64_t F, int required)
{
    const eg_attr *at = eg_attr_find(a->node, name);
    if (!at)
        return required
                   ? KFAIL(a, ENG_EFORMAT, "node '%s' (%s): needs '%s'", KNAME(a), KOP(a), name)
                   : 0;
    if (at->type != EG_ATTR_FLOATS || (at->n != 1 && at->n != F))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): '%s' must hold 1 or %lld floats", KNAME(a),
                     KOP(a), name, (long long)F);
    return 0;
}

static int infer_featwise(ek_args *a)
{
    int64_t N, F;
    int rc = ml_rows(a, &N, &F);
    if (rc) return rc;
    eg_op op = a->node->op;
    if (op == EG_OP_ML_SCALER)
        rc = per_feature(a, "offset", F, 0) ? -1 : per_feature(a, "scale", F, 0);
    else if (op == EG_OP_ML_IMPUTER)
        rc = per_feature(a, "imputed_value_floats", F, 1);
    else if (op == EG_OP_ML_NORMALIZER) {
        const char *m = eg_attr_str(a->node, "norm", "MAX");
        if (strcmp(m, "MAX") && strcmp(m, "L1") && strcmp(m, "L2"))
            rc = KFAIL(a, ENG_EFORMAT, "node '%s' (Normalizer): norm '%s'", KNAME(a), m);
    }
    if (rc) return rc < 0 ? -ENG_EFORMAT : rc;
    const ek_view *x = a->in[0];
    eng_dtype t = op == EG_OP_ML_BINARIZER || op == EG_OP_ML_IMPUTER ? x->dtype : ENG_FLOAT;
    if (op == EG_OP_ML_IMPUTER && x->dtype != ENG_FLOAT)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (Imputer): float input only", KNAME(a));
    ku_shape(a->out[0], t, x->rank, x->dims);
    return 0;
}

static float featv(const eg_attr *at, int64_t f, float def)
{
    return !at ? def : at->floats[at->n == 1 ? 0 : f];
}

static int run_featwise(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    int64_t N, F;
    ml_rows(a, &N, &F);
    eg_op op = a->node->op;
    if (op == EG_OP_ML_SCALER) {
        const eg_attr *off = eg_attr_find(a->node, "offset"), *sc = eg_attr_find(a->node, "scale");
        float *Y = o->data;
        for (int64_t n = 0; n < N; n++)
            for (int64_t f = 0; f < F; f++)
                Y[n * F + f] = ((float)ku_getd(x, n * F + f) - featv(off, f, 0)) * featv(sc, f, 1);
    } else if (op == EG_OP_ML_NORMALIZER) {
        const char *m = eg_attr_str(a->node, "norm", "MAX");
        float *Y = o->data;
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t f = 0; f < F; f++) {
                double v = ku_getd(x, n * F + f);
                if (!strcmp(m, "MAX"))
                    s = f == 0 || v > s ? v : s;
                else
                    s += !strcmp(m, "L1") ? fabs(v) : v * v;
            }
            if (!strcmp(m, "L2")) s = sqrt(s);
            for (int64_t f = 0; f < F; f++) {
                double v = ku_getd(x, n * F + f);
                Y[n * F + f] = (float)(s != 0 ? v / s : v);
            }
        }
    } else if (op == EG_OP_ML_BINARIZER) {
        float th = eg_attr_float(a->node, "threshold", 0);
        for (int64_t i = 0; i < N * F; i++) ku_setd(o, i, ku_getd(x, i) > th ? 1 : 0);
    } else { /* Imputer */
        const eg_attr *iv = eg_attr_find(a->node, "imputed_value_floats");
        float rep = eg_attr_float(a->node, "replaced_value_float", 0);
        const float *X = x->data;
        float *Y = o->data;
        for (int64_t n = 0; n < N; n++)
            for (int64_t f = 0; f < F; f++) {
                float v = X[n * F + f];
                int hit = isnan(rep) ? isnan(v) : v == rep;
                Y[n * F + f] = hit ? featv(iv, f, 0) : v;
            }
    }
    return 0;
}

/* ---- OneHotEncoder, LabelEncoder, ArrayFeatureExtractor ----------------------------------- */

static int infer_ohe(ek_args *a)
{
    const ek_view *x = a->in[0];
    const eg_attr *c = eg_attr_find(a->node, "cats_int64s");
    if (!c || c->type != EG_ATTR_INTS || c->n < 1)
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (OneHotEncoder): needs cats_int64s (string "
                     "categories not supported)",
                     KNAME(a));
    if (x->dtype == ENG_BOOL || x->rank >= ENG_MAX_RANK)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (OneHotEncoder): numeric input needed",
                     KNAME(a));
    ku_shape(a->out[0], ENG_FLOAT, x->rank, x->dims);
    a->out[0]->dims[a->out[0]->rank++] = c->n;
    return 0;
}

static int run_ohe(ek_args *a)
{
    const ek_view *x = a->in[0];
    const eg_attr *c = eg_attr_find(a->node, "cats_int64s");
    int zeros = (int)eg_attr_int(a->node, "zeros", 1);
    int64_t n = ek_numel(x);
    float *Y = a->out[0]->data;
    memset(Y, 0, (size_t)(n * c->n) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (int64_t)ku_getd(x, i), k = 0;
        while (k < c->n && c->ints[k] != v) k++;
        if (k < c->n)
            Y[i * c->n + k] = 1;
        else if (!zeros)
            return KFAIL(a, ENG_EINVAL,
                         "node '%s' (OneHotEncoder): value %lld at index %lld is "
                         "not a category",
                         KNAME(a), (long long)v, (long long)i);
    }
    return 0;
}

static int infer_labelenc(ek_args *a)
{
    const ek_view *x = a->in[0];
    const eg_attr *ki = eg_attr_find(a->node, "keys_int64s"),
                  *kf = eg_attr_find(a->node, "keys_floats"),
                  *vi = eg_attr_find(a->node, "values_int64s"),
                  *vf = eg_attr_find(a->node, "values_floats");
    const eg_attr *k = ki ? ki : kf, *v = vi ? vi : vf;
    if (!k || !v || k->n != v->n || (ki && kf) || (vi && vf))
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (LabelEncoder): needs one of keys_int64s/keys_floats and one of "
                     "values_int64s/values_floats of equal length (string keys/values not "
                     "supported)",
                     KNAME(a));
    if ((ki && !ku_is_int(x->dtype)) || (kf && x->dtype != ENG_FLOAT))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (LabelEncoder): input type does not match the keys",
                     KNAME(a));
    ku_shape(a->out[0], vi ? ENG_INT64 : ENG_FLOAT, x->rank, x->dims);
    return 0;
}

static int run_labelenc(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    const eg_attr *ki = eg_attr_find(a->node, "keys_int64s"),
                  *kf = eg_attr_find(a->node, "keys_floats"),
                  *vi = eg_attr_find(a->node, "values_int64s"),
                  *vf = eg_attr_find(a->node, "values_floats");
    const eg_attr *k = ki ? ki : kf;
    int64_t di = eg_attr_int(a->node, "default_int64", -1);
    float df = eg_attr_float(a->node, "default_float", -0.0f);
    int64_t n = ek_numel(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t j = 0;
        if (ki) {
            int64_t v = ku_geti(x, i);
            while (j < k->n && ki->ints[j] != v) j++;
        } else {
            float v = ((const float *)x->data)[i];
            while (j < k->n && !(kf->floats[j] == v || (isnan(v) && isnan(kf->floats[j])))) j++;
        }
        if (vi)
            ((int64_t *)o->data)[i] = j < k->n ? vi->ints[j] : di;
        else
            ((float *)o->data)[i] = j < k->n ? vf->floats[j] : df;
    }
    return 0;
}

static int infer_afe(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1];
    if (!ku_is_int(idx->dtype) || x->rank < 1)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (ArrayFeatureExtractor): needs int64 indices",
                     KNAME(a));
    ku_shape(a->out[0], x->dtype, x->rank, x->dims);
    a->out[0]->dims[x->rank - 1] = ek_numel(idx);
    if (x->rank == 1) { /* ORT: a 1-D input gives [1, k] */
        a->out[0]->rank = 2;
        a->out[0]->dims[0] = 1;
        a->out[0]->dims[1] = ek_numel(idx);
    }
    return 0;
}

static int run_afe(ek_args *a)
{
    const ek_view *x = a->in[0], *idx = a->in[1];
    int64_t F = x->dims[x->rank - 1], rows = ek_numel(x) / (F ? F : 1), k = ek_numel(idx);
    size_t es = eg_dtype_size(x->dtype);
    for (int64_t j = 0; j < k; j++) {
        int64_t f = ku_geti(idx, j);
        if (f < 0 || f >= F)
            return KFAIL(a, ENG_EINVAL,
                         "node '%s' (ArrayFeatureExtractor): index %lld out of "
                         "range [0, %lld)",
                         KNAME(a), (long long)f, (long long)F);
        for (int64_t r = 0; r < rows; r++)
            memcpy((char *)a->out[0]->data + (size_t)(r * k + j) * es,
                   (const char *)x->data + (size_t)(r * F + f) * es, es);
    }
    return 0;
}

/* ---- tree ensembles ------------------------------------------------------------------------- */

enum { TM_LEAF, TM_LEQ, TM_LT, TM_GTE, TM_GT, TM_EQ, TM_NEQ };

typedef struct tr_node {
    int32_t feat, t, f, wbeg, wcnt;
    uint8_t mode, miss_true;
    float val;
} tr_node;

typedef struct tr_w {
    int32_t cls;
    float w;
} tr_w;

typedef struct tr_table {
    int32_t ntrees, nnodes, nw, ncls, maxfeat;
    int32_t binary; /* classifier: 2 labels, weights for one class id only */
    int32_t allpos;
    int32_t *roots;
    tr_node *nodes;
    tr_w *w;
} tr_table;

typedef struct tr_key {
    int64_t tree, node;
    int32_t idx;
} tr_key;

static int key_cmp(const void *p, const void *q)
{
    const tr_key *a = p, *b = q;
    if (a->tree != b->tree) return a->tree < b->tree ? -1 : 1;
    return (a->node > b->node) - (a->node < b->node);
}

static int32_t key_find(const tr_key *k, int32_t n, int64_t tree, int64_t node)
{
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (k[mid].tree < tree || (k[mid].tree == tree && k[mid].node < node))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && k[lo].tree == tree && k[lo].node == node ? k[lo].idx : -1;
}

static const eg_attr *need_ints(const eg_node *n, const char *name, int len)
{
    const eg_attr *a = eg_attr_find(n, name);
    return a && a->type == EG_ATTR_INTS && (len < 0 || a->n == len) ? a : NULL;
}

static int tree_prepare(eg_node *n, char *err, size_t errlen)
{
    int cls = n->op == EG_OP_ML_TREECLASSIFIER;
    const char *op = eg_op_name(n->op);
    const eg_attr *tid = need_ints(n, "nodes_treeids", -1);
    int nn = tid ? tid->n : -1;
    const eg_attr *nid = need_ints(n, "nodes_nodeids", nn),
                  *fid = need_ints(n, "nodes_featureids", nn),
                  *tt = need_ints(n, "nodes_truenodeids", nn),
                  *ff = need_ints(n, "nodes_falsenodeids", nn),
                  *mt = eg_attr_find(n, "nodes_missing_value_tracks_true"),
                  *md = eg_attr_find(n, "nodes_modes"), *val = eg_attr_find(n, "nodes_values");
    const char *pfx = cls ? "class" : "target";
    char nm[4][32];
    snprintf(nm[0], 32, "%s_treeids", pfx);
    snprintf(nm[1], 32, "%s_nodeids", pfx);
    snprintf(nm[2], 32, "%s_ids", pfx);
    snprintf(nm[3], 32, "%s_weights", pfx);
    const eg_attr *wt = need_ints(n, nm[0], -1);
    int nw = wt ? wt->n : -1;
    const eg_attr *wn = need_ints(n, nm[1], nw), *wc = need_ints(n, nm[2], nw),
                  *ww = eg_attr_find(n, nm[3]);
    if (nn < 1 || !nid || !fid || !tt || !ff || !md || md->type != EG_ATTR_STRINGS || md->n != nn ||
        !val || val->type != EG_ATTR_FLOATS || val->n != nn ||
        (mt && (mt->type != EG_ATTR_INTS || mt->n != nn)) || nw < 1 || !wn || !wc || !ww ||
        ww->type != EG_ATTR_FLOATS || ww->n != nw)
        return eg_err(err, errlen, ENG_EFORMAT,
                      "node '%s' (%s): nodes_* and %s_* attributes missing or of unequal "
                      "lengths (nodes_values_as_tensor and friends not supported)",
                      n->name, op, pfx);
    int64_t ncls;
    if (cls) {
        const eg_attr *l = eg_attr_find(n, "classlabels_int64s");
        if (!l)
            return eg_err(err, errlen, ENG_EUNSUPPORTED,
                          "node '%s' (%s): needs classlabels_int64s (string labels not supported)",
                          n->name, op);
        ncls = l->n;
    } else {
        ncls = eg_attr_int(n, "n_targets", 1);
    }
    if (ncls < 1 || ncls > (1 << 20))
        return eg_err(err, errlen, ENG_EFORMAT, "node '%s' (%s): %lld classes/targets", n->name, op,
                      (long long)ncls);
    size_t bytes = sizeof(tr_table) + (size_t)nn * (sizeof(int32_t) + sizeof(tr_node)) +
                   (size_t)nw * sizeof(tr_w) + 64;
    tr_table *t = calloc(1, bytes);
    tr_key *keys = malloc((size_t)nn * sizeof(tr_key));
    int32_t *fill = calloc((size_t)nn + 1, sizeof(int32_t));
    uint8_t *child = calloc((size_t)nn + 1, 1);
    int rc = 0;
    if (!t || !keys || !fill || !child) {
        rc = eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        goto out;
    }
    t->nodes = (tr_node *)(t + 1);
    t->w = (tr_w *)(t->nodes + nn);
    t->roots = (int32_t *)(t->w + nw);
    t->nnodes = nn;
    t->nw = nw;
    t->ncls = (int32_t)ncls;
    for (int i = 0; i < nn; i++) keys[i] = (tr_key){tid->ints[i], nid->ints[i], i};
    qsort(keys, (size_t)nn, sizeof(tr_key), key_cmp);
    for (int i = 1; i < nn; i++)
        if (!key_cmp(&keys[i - 1], &keys[i])) {
            rc = eg_err(err, errlen, ENG_EFORMAT, "node '%s' (%s): tree %lld node %lld twice",
                        n->name, op, (long long)keys[i].tree, (long long)keys[i].node);
            goto out;
        }
    static const char *const modes[] = {"LEAF",      "BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE",
                                        "BRANCH_GT", "BRANCH_EQ",  "BRANCH_NEQ"};
    for (int i = 0; i < nn; i++) {
        tr_node *d = &t->nodes[i];
        int m = 0;
        while (m < 7 && strcmp(md->strs[i], modes[m])) m++;
        if (m == 7) {
            rc = eg_err(err, errlen, ENG_EFORMAT, "node '%s' (%s): unknown node mode '%s'", n->name,
                        op, md->strs[i]);
            goto out;
        }
        d->mode = (uint8_t)m;
        d->val = val->floats[i];
        d->miss_true = mt ? mt->ints[i] != 0 : 0;
        d->t = d->f = -1;
        if (m != TM_LEAF) {
            if (fid->ints[i] < 0 || fid->ints[i] > (1 << 30)) {
                rc = eg_err(err, errlen, ENG_EFORMAT, "node '%s' (%s): feature id %lld", n->name,
                            op, (long long)fid->ints[i]);
                goto out;
            }
            d->feat = (int32_t)fid->ints[i];
            t->maxfeat = d->feat > t->maxfeat ? d->feat : t->maxfeat;
            d->t = key_find(keys, nn, tid->ints[i], tt->ints[i]);
            d->f = key_find(keys, nn, tid->ints[i], ff->ints[i]);
            if (d->t < 0 || d->f < 0 || d->t == i || d->f == i) {
                rc = eg_err(err, errlen, ENG_EFORMAT,
                            "node '%s' (%s): tree %lld node %lld points to a missing node", n->name,
                            op, (long long)tid->ints[i], (long long)nid->ints[i]);
                goto out;
            }
            child[d->t] = child[d->f] = 1;
        }
    }
    for (int i = 0; i < nn; i++)
        if (!child[i]) t->roots[t->ntrees++] = i;
    /* leaf weights grouped by node */
    int32_t *cnt = calloc((size_t)nn + 1, sizeof(int32_t));
    int32_t *wnode = malloc((size_t)nw * sizeof(int32_t) + 1);
    if (!cnt || !wnode) {
        free(cnt), free(wnode);
        rc = eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        goto out;
    }
    int32_t cls_seen = -1;
    t->binary = cls && ncls == 2;
    t->allpos = 1;
    for (int i = 0; i < nw; i++) {
        int32_t k = key_find(keys, nn, wt->ints[i], wn->ints[i]);
        if (k < 0 || wc->ints[i] < 0 || wc->ints[i] >= ncls) {
            free(cnt), free(wnode);
            rc = eg_err(err, errlen, ENG_EFORMAT,
                        "node '%s' (%s): weight %d names a missing node or class %lld", n->name, op,
                        i, (long long)wc->ints[i]);
            goto out;
        }
        wnode[i] = k;
        cnt[k]++;
        if (cls_seen >= 0 && cls_seen != wc->ints[i]) t->binary = 0;
        cls_seen = (int32_t)wc->ints[i];
        if (ww->floats[i] < 0) t->allpos = 0;
    }
    int32_t pos = 0;
    for (int i = 0; i < nn; i++) {
        t->nodes[i].wbeg = pos;
        t->nodes[i].wcnt = 0;
        pos += cnt[i];
    }
    for (int i = 0; i < nw; i++) {
        tr_node *d = &t->nodes[wnode[i]];
        t->w[d->wbeg + d->wcnt++] = (tr_w){(int32_t)wc->ints[i], ww->floats[i]};
    }
    free(cnt), free(wnode);
    n->priv = t;
    t = NULL;
out:
    free(t);
    free(keys);
    free(fill);
    free(child);
    return rc;
}

int ek_prepare(eg_node *n, char *err, size_t errlen)
{
    if (n->op == EG_OP_ML_TREECLASSIFIER || n->op == EG_OP_ML_TREEREGRESSOR)
        return tree_prepare(n, err, errlen);
    return 0;
}

static int infer_tree(ek_args *a)
{
    const tr_table *t = a->node->priv;
    int64_t N, F;
    int pt;
    int rc = ml_rows(a, &N, &F);
    if (rc || (rc = post_transform(a, &pt))) return rc;
    if (!t) return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): not prepared", KNAME(a), KOP(a));
    if (t->maxfeat >= F)
        return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): a tree reads feature %d of %lld", KNAME(a),
                     KOP(a), t->maxfeat, (long long)F);
    const eg_attr *bv = eg_attr_find(a->node, "base_values");
    if (bv && (bv->type != EG_ATTR_FLOATS || bv->n != t->ncls))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): base_values must hold %d floats", KNAME(a),
                     KOP(a), t->ncls);
    if (a->node->op == EG_OP_ML_TREECLASSIFIER) {
        classifier_shapes(a, N, t->ncls);
    } else {
        const char *ag = eg_attr_str(a->node, "aggregate_function", "SUM");
        if (strcmp(ag, "SUM") && strcmp(ag, "AVERAGE") && strcmp(ag, "MIN") && strcmp(ag, "MAX"))
            return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): aggregate_function '%s'", KNAME(a),
                         KOP(a), ag);
        int64_t d[2] = {N, t->ncls};
        ku_shape(a->out[0], ENG_FLOAT, 2, d);
    }
    return 0;
}

static int32_t tree_leaf(const tr_table *t, int32_t i, const ek_view *x, int64_t row)
{
    for (int steps = 0; t->nodes[i].mode != TM_LEAF && steps <= t->nnodes; steps++) {
        const tr_node *d = &t->nodes[i];
        float v = (float)ku_getd(x, row + d->feat);
        int go;
        if (isnan(v) && d->miss_true)
            go = 1;
        else
            switch (d->mode) {
            case TM_LEQ: go = v <= d->val; break;
            case TM_LT: go = v < d->val; break;
            case TM_GTE: go = v >= d->val; break;
            case TM_GT: go = v > d->val; break;
            case TM_EQ: go = v == d->val; break;
            default: go = v != d->val; break;
            }
        i = go ? d->t : d->f;
    }
    return i;
}

static int run_tree(ek_args *a)
{
    const tr_table *t = a->node->priv;
    const ek_view *x = a->in[0];
    int64_t N, F;
    int pt = 0;
    ml_rows(a, &N, &F);
    post_transform(a, &pt);
    const eg_attr *bv = eg_attr_find(a->node, "base_values");
    int cls = a->node->op == EG_OP_ML_TREECLASSIFIER;
    const char *ag = cls ? "SUM" : eg_attr_str(a->node, "aggregate_function", "SUM");
    int mn = !strcmp(ag, "MIN"), mx = !strcmp(ag, "MAX"), avg = !strcmp(ag, "AVERAGE");
    int64_t C = t->ncls;
    float stack[256];
    float *Z = cls ? (a->nout > 1 && a->out[1] ? a->out[1]->data : NULL) : a->out[0]->data;
    if (!Z && C > 256)
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (%s): more than 256 classes need the score "
                     "output",
                     KNAME(a), KOP(a));
    for (int64_t n = 0; n < N; n++) {
        float *z = Z ? Z + n * C : stack;
        for (int64_t c = 0; c < C; c++) z[c] = mn ? INFINITY : mx ? -INFINITY : 0;
        for (int32_t k = 0; k < t->ntrees; k++) {
            const tr_node *leaf = &t->nodes[tree_leaf(t, t->roots[k], x, n * F)];
            for (int32_t w = 0; w < leaf->wcnt; w++) {
                const tr_w *e = &t->w[leaf->wbeg + w];
                if (mn)
                    z[e->cls] = e->w < z[e->cls] ? e->w : z[e->cls];
                else if (mx)
                    z[e->cls] = e->w > z[e->cls] ? e->w : z[e->cls];
                else
                    z[e->cls] += e->w;
            }
        }
        for (int64_t c = 0; c < C; c++) {
            if (isinf(z[c]) && (mn || mx)) z[c] = 0;
            if (avg && t->ntrees) z[c] /= (float)t->ntrees;
            z[c] += bv ? bv->floats[c] : 0;
        }
        if (cls) {
            const eg_attr *l = eg_attr_find(a->node, "classlabels_int64s");
            int64_t best = 0;
            if (t->binary) {
                /* weights for one class only (ONNX Runtime's binary case) */
                int32_t id = t->nw ? t->w[0].cls : 1;
                float s = z[id];
                if (t->allpos && pt == PT_NONE) {
                    z[1] = s, z[0] = 1 - s;
                    best = s > 0.5f;
                } else {
                    z[1] = s, z[0] = -s;
                    best = s > 0;
                }
            } else {
                for (int64_t c = 1; c < C; c++)
                    if (z[c] > z[best]) best = c;
            }
            ((int64_t *)a->out[0]->data)[n] = l->ints[best];
        }
        apply_pt(pt, z, C);
    }
    return 0;
}

/* ---- SVM ---------------------------------------------------------------------------------- */

enum { KT_LINEAR, KT_POLY, KT_RBF, KT_SIGMOID };

typedef struct svm_cfg {
    int kt;
    float gamma, coef0, degree;
    int64_t nsv, F;
    const float *sv, *coef, *rho;
} svm_cfg;

static int svm_get(ek_args *a, svm_cfg *s, int64_t F)
{
    const char *k = eg_attr_str(a->node, "kernel_type", "LINEAR");
    s->kt = !strcmp(k, "LINEAR")    ? KT_LINEAR
            : !strcmp(k, "POLY")    ? KT_POLY
            : !strcmp(k, "RBF")     ? KT_RBF
            : !strcmp(k, "SIGMOID") ? KT_SIGMOID
                                    : -1;
    const eg_attr *kp = eg_attr_find(a->node, "kernel_params"),
                  *sv = eg_attr_find(a->node, "support_vectors"),
                  *co = eg_attr_find(a->node, "coefficients"), *rho = eg_attr_find(a->node, "rho");
    if (s->kt < 0 || (kp && (kp->type != EG_ATTR_FLOATS || kp->n != 3)) || !co ||
        co->type != EG_ATTR_FLOATS || !rho || rho->type != EG_ATTR_FLOATS ||
        (sv && (sv->type != EG_ATTR_FLOATS || !F || sv->n % F)))
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (%s): kernel_type, kernel_params (3), support_vectors (n x %lld), "
                     "coefficients and rho needed",
                     KNAME(a), KOP(a), (long long)F);
    s->gamma = kp ? kp->floats[0] : 0;
    s->coef0 = kp ? kp->floats[1] : 0;
    s->degree = kp ? kp->floats[2] : 0;
    s->F = F;
    s->nsv = sv ? sv->n / F : 0;
    s->sv = sv ? sv->floats : NULL;
    s->coef = co->floats;
    s->rho = rho->floats;
    return 0;
}

static double svm_kernel(const svm_cfg *s, const ek_view *x, int64_t row, const float *v)
{
    double acc = 0;
    if (s->kt == KT_RBF) {
        for (int64_t f = 0; f < s->F; f++) {
            double d = ku_getd(x, row + f) - v[f];
            acc += d * d;
        }
        return exp(-s->gamma * acc);
    }
    for (int64_t f = 0; f < s->F; f++) acc += ku_getd(x, row + f) * v[f];
    if (s->kt == KT_POLY) return pow(s->gamma * acc + s->coef0, s->degree);
    if (s->kt == KT_SIGMOID) return tanh(s->gamma * acc + s->coef0);
    return acc;
}

static int infer_svm(ek_args *a)
{
    int64_t N, F;
    int pt;
    svm_cfg s;
    int rc = ml_rows(a, &N, &F);
    if (rc || (rc = post_transform(a, &pt)) || (rc = svm_get(a, &s, F))) return rc;
    const eg_attr *co = eg_attr_find(a->node, "coefficients"), *rho = eg_attr_find(a->node, "rho");
    if (a->node->op == EG_OP_ML_SVMREGRESSOR) {
        if (!s.nsv || co->n != s.nsv || rho->n != 1 || eg_attr_int(a->node, "one_class", 0))
            return KFAIL(a, ENG_EUNSUPPORTED,
                         "node '%s' (SVMRegressor): needs support vectors, "
                         "one coefficient each and one rho (one_class not "
                         "supported)",
                         KNAME(a));
        int64_t d[2] = {N, 1};
        ku_shape(a->out[0], ENG_FLOAT, 2, d);
        return 0;
    }
    int64_t nl;
    labels(a, "classlabels_ints", "classlabels_strings", &nl);
    if (nl < 0) return label_err(a, "classlabels_strings");
    const eg_attr *vpc = need_ints(a->node, "vectors_per_class", (int)nl);
    int64_t total = 0;
    for (int i = 0; vpc && i < vpc->n; i++) total += vpc->ints[i];
    if (nl < 2 || !vpc || total != s.nsv || co->n != (nl - 1) * s.nsv ||
        rho->n != nl * (nl - 1) / 2 || eg_attr_find(a->node, "prob_a"))
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (SVMClassifier): needs labels, vectors_per_class, (C-1) x nsv "
                     "coefficients and C(C-1)/2 rho (probability outputs not supported)",
                     KNAME(a));
    /* binary: one decision value (ORT writes [-d, d]); multi-class: the votes */
    classifier_shapes(a, N, nl == 2 ? 2 : nl);
    return 0;
}

static int run_svm(ek_args *a)
{
    const ek_view *x = a->in[0];
    int64_t N, F, nl;
    int pt = 0;
    svm_cfg s;
    ml_rows(a, &N, &F);
    post_transform(a, &pt);
    svm_get(a, &s, F);
    if (a->node->op == EG_OP_ML_SVMREGRESSOR) {
        float *Y = a->out[0]->data;
        for (int64_t n = 0; n < N; n++) {
            double acc = s.rho[0];
            for (int64_t v = 0; v < s.nsv; v++)
                acc += s.coef[v] * svm_kernel(&s, x, n * F, s.sv + v * F);
            Y[n] = (float)acc;
            apply_pt(pt, &Y[n], 1);
        }
        return 0;
    }
    const eg_attr *l = labels(a, "classlabels_ints", "classlabels_strings", &nl);
    const eg_attr *vpc = eg_attr_find(a->node, "vectors_per_class");
    float *Z = a->nout > 1 && a->out[1] ? a->out[1]->data : NULL;
    int64_t *Y = a->out[0]->data;
    for (int64_t n = 0; n < N; n++) {
        /* one-vs-one as libsvm: pair (i, j) sums class i's vectors with
         * coefficient row j-1 and class j's with row i, plus rho */
        float votes[64] = {0};
        int64_t p = 0, si = 0;
        double last = 0;
        for (int64_t i = 0; i < nl && i < 64; i++) {
            int64_t sj = si + vpc->ints[i];
            for (int64_t j = i + 1; j < nl && j < 64; j++, p++) {
                int64_t bj = 0;
                for (int64_t q = 0; q < j; q++) bj += vpc->ints[q];
                double d = s.rho[p];
                for (int64_t v = si; v < si + vpc->ints[i]; v++)
                    d += s.coef[(j - 1) * s.nsv + v] * svm_kernel(&s, x, n * F, s.sv + v * F);
                for (int64_t v = bj; v < bj + vpc->ints[j]; v++)
                    d += s.coef[i * s.nsv + v] * svm_kernel(&s, x, n * F, s.sv + v * F);
                votes[d > 0 ? i : j] += 1;
                last = d;
            }
            si = sj;
        }
        int64_t best = 0;
        for (int64_t c = 1; c < nl && c < 64; c++)
            if (votes[c] > votes[best]) best = c;
        Y[n] = l->ints[best];
        if (Z && nl == 2) {
            Z[n * 2] = (float)-last, Z[n * 2 + 1] = (float)last;
            apply_pt(pt, Z + n * 2, 2);
        } else if (Z) {
            for (int64_t c = 0; c < nl; c++) Z[n * nl + c] = c < 64 ? votes[c] : 0;
        }
    }
    return 0;
}

const ek_op ek_op_ml_linear = {infer_linear, run_linear, 0, 0};
const ek_op ek_op_ml_featwise = {infer_featwise, run_featwise, 0, 0};
const ek_op ek_op_ml_ohe = {infer_ohe, run_ohe, 0, 0};
const ek_op ek_op_ml_labelenc = {infer_labelenc, run_labelenc, 0, 0};
const ek_op ek_op_ml_afe = {infer_afe, run_afe, 0, 0};
const ek_op ek_op_ml_tree = {infer_tree, run_tree, 0, 0};
const ek_op ek_op_ml_svm = {infer_svm, run_svm, 0, 0};
