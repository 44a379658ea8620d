/* ref_resize: Resize (nearest, linear, cubic over any axes; every ONNX
 * coordinate transformation mode but half_pixel_symmetric), the older Upsample,
 * and ConvTranspose (1-3 spatial dims, groups, dilations, output_padding,
 * output_shape, auto_pad).
 *
 * Resize follows the ONNX reference's separable definition: per axis an output
 * coordinate maps back to an input coordinate, which takes 1 (nearest), 2
 * (linear) or 4 (cubic) neighbours clamped to the edge; the N-D value is the
 * tensor product over axes. Axes whose size and scale do not change are
 * copied through. */
#include "engine/kernels_util.h"

#include <math.h>
#include <stdlib.h>

enum { CT_HALF, CT_PYTORCH, CT_ALIGN, CT_ASYM, CT_TFNN, CT_TFCROP };
enum { NM_RPF, NM_RPC, NM_FLOOR, NM_CEIL };
enum { MD_NEAREST, MD_LINEAR, MD_CUBIC };

typedef struct rs_plan {
    int mode, ct, nm, excl;
    float a, extrap;
    double scale[ENG_MAX_RANK];
    float roi[2 * ENG_MAX_RANK];
    int has_roi;
} rs_plan;

static int lookup(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* Reads attributes and scales/sizes; sets the output shape in o. */
static int rs_get(ek_args *a, rs_plan *p, ek_view *o)
{
    const ek_view *x = a->in[0];
    int up = a->node->op == EG_OP_UPSAMPLE;
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const cts[] = {"half_pixel", "pytorch_half_pixel",   "align_corners",
                                      "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    const char *m = eg_attr_str(a->node, "mode", "nearest");
    p->mode = lookup(m, modes, 3);
    if (up && !strcmp(m, "bilinear")) p->mode = MD_LINEAR;
    const char *c = eg_attr_str(a->node, "coordinate_transformation_mode", "half_pixel");
    p->ct = up || a->opset < 11 ? CT_ASYM : lookup(c, cts, 6);
    const char *nm = eg_attr_str(a->node, "nearest_mode", "round_prefer_floor");
    p->nm = up || a->opset < 11 ? NM_FLOOR : lookup(nm, nms, 4);
    if (p->mode < 0 || p->ct < 0 || p->nm < 0 || (up && p->mode == MD_CUBIC))
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (%s): mode '%s', coordinate_transformation_mode '%s' or "
                     "nearest_mode '%s' not supported",
                     KNAME(a), KOP(a), m, c, nm);
    if (eg_attr_int(a->node, "antialias", 0) || eg_attr_find(a->node, "axes") ||
        strcmp(eg_attr_str(a->node, "keep_aspect_ratio_policy", "stretch"), "stretch"))
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (%s): antialias, axes and keep_aspect_ratio_policy not supported",
                     KNAME(a), KOP(a));
    p->excl = (int)eg_attr_int(a->node, "exclude_outside", 0);
    p->a = eg_attr_float(a->node, "cubic_coeff_a", -0.75f);
    p->extrap = eg_attr_float(a->node, "extrapolation_value", 0.0f);
    if (x->dtype != ENG_FLOAT)
        return KFAIL(a, ENG_EUNSUPPORTED, "node '%s' (%s): needs float input", KNAME(a), KOP(a));
    /* scales and sizes */
    const ek_view *sc = NULL, *sz = NULL, *roi = NULL;
    const eg_attr *sa = NULL;
    if (up && a->opset < 9)
        sa = eg_attr_find(a->node, "scales");
    else if (up || a->opset < 11)
        sc = a->nin > 1 ? a->in[1] : NULL;
    else {
        roi = a->nin > 1 ? a->in[1] : NULL;
        sc = a->nin > 2 ? a->in[2] : NULL;
        sz = a->nin > 3 ? a->in[3] : NULL;
    }
    if (sc && !ek_numel(sc)) sc = NULL;
    if (sz && !ek_numel(sz)) sz = NULL;
    if (roi && !ek_numel(roi)) roi = NULL;
    if ((sc && !sc->data) || (sz && !sz->data) || (roi && !roi->data))
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (%s): data-dependent shape: scales/sizes/roi must be known when "
                     "the plan is built",
                     KNAME(a), KOP(a));
    if (!sa && !sc == !sz)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (%s): needs exactly one of scales and sizes",
                     KNAME(a), KOP(a));
    int r = x->rank;
    if ((sa && sa->n != r) || (sc && (ek_numel(sc) != r || sc->dtype != ENG_FLOAT)) ||
        (sz && (ek_numel(sz) != r || !ku_is_int(sz->dtype))) ||
        (roi && (ek_numel(roi) != 2 * r || roi->dtype != ENG_FLOAT)))
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (%s): scales/sizes/roi must have one entry per "
                     "dim (roi two)",
                     KNAME(a), KOP(a));
    ku_shape(o, ENG_FLOAT, r, x->dims);
    p->has_roi = roi != NULL;
    for (int d = 0; d < r; d++) {
        if (roi) {
            p->roi[d] = ((const float *)roi->data)[d];
            p->roi[d + r] = ((const float *)roi->data)[d + r];
        } else {
            p->roi[d] = 0, p->roi[d + r] = 1;
        }
        if (sz) {
            int64_t v = ku_geti(sz, d);
            if (v < 0 || v > ((int64_t)1 << 31))
                return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): size %lld out of range", KNAME(a),
                             KOP(a), (long long)v);
            o->dims[d] = v;
            p->scale[d] = x->dims[d] ? (double)v / (double)x->dims[d] : 1.0;
        } else {
            double s = sa ? sa->floats[d] : ((const float *)sc->data)[d];
            if (!(s > 0) || s * (double)x->dims[d] > (double)((int64_t)1 << 31))
                return KFAIL(a, ENG_ESHAPE, "node '%s' (%s): scale %g out of range", KNAME(a),
                             KOP(a), s);
            p->scale[d] = s;
            double lenf = (double)x->dims[d] * s;
            if (p->ct == CT_TFCROP) lenf *= p->roi[d + r] - p->roi[d];
            o->dims[d] = (int64_t)floor(lenf + 1e-9);
        }
    }
    return 0;
}

static int infer_resize(ek_args *a)
{
    rs_plan p;
    int rc = rs_get(a, &p, a->out[0]);
    /* NHWC in, NHWC out: a detector's upsampling stays between oneDNN convs */
    if (!rc && a->in[0]->rank == 4) a->out[0]->nhwc = a->in[0]->nhwc;
    return rc;
}

/* Input coordinate of output index i on axis d; *out set when outside (tf_crop). */
static double rs_coord(const rs_plan *p, int d, int r, int64_t i, int64_t lin, int *outside)
{
    /* the reference uses the unrounded resized length in*scale */
    double s = p->scale[d], x = (double)i, c, lout = (double)lin * s;
    *outside = 0;
    switch (p->ct) {
    case CT_PYTORCH: c = lout > 1 ? (x + 0.5) / s - 0.5 : 0; break;
    case CT_ALIGN: c = lout == 1 ? 0 : x * (double)(lin - 1) / (lout - 1); break;
    case CT_ASYM: c = x / s; break;
    case CT_TFNN: c = (x + 0.5) / s; break;
    case CT_TFCROP: {
        double st = p->roi[d], en = p->roi[d + r];
        c = lout > 1 ? st * (double)(lin - 1) + x * (en - st) * (double)(lin - 1) / (lout - 1)
                     : 0.5 * (st + en) * (double)(lin - 1);
        if (c < 0 || c > (double)(lin - 1)) *outside = 1;
        break;
    }
    default: c = (x + 0.5) / s - 0.5; break;
    }
    return c;
}

static int64_t clampi(int64_t v, int64_t len)
{
    return v < 0 ? 0 : (v >= len ? len - 1 : v);
}

/* Neighbours and weights of coordinate c on an axis of length len: count returned. */
static int rs_taps(const rs_plan *p, double c, int64_t len, int64_t *idx, double *w)
{
    if (p->mode == MD_NEAREST) {
        double f = floor(c), fr = c - f;
        int64_t k;
        switch (p->nm) {
        case NM_FLOOR: k = (int64_t)f; break;
        case NM_CEIL: k = (int64_t)ceil(c); break;
        case NM_RPC: k = fr >= 0.5 ? (int64_t)f + 1 : (int64_t)f; break;
        default: k = fr > 0.5 ? (int64_t)f + 1 : (int64_t)f; break;
        }
        idx[0] = clampi(k, len);
        w[0] = 1;
        return 1;
    }
    int64_t x0 = (int64_t)floor(c);
    double r = c - (double)x0;
    int n;
    if (p->mode == MD_LINEAR) {
        idx[0] = x0, idx[1] = x0 + 1;
        w[0] = 1 - r, w[1] = r;
        n = 2;
    } else {
        double A = p->a, s = 1 - r;
        idx[0] = x0 - 1, idx[1] = x0, idx[2] = x0 + 1, idx[3] = x0 + 2;
        w[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
        w[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
        w[2] = ((A + 2) * s - (A + 3)) * s * s + 1;
        w[3] = ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A;
        n = 4;
    }
    if (p->excl) {
        double sum = 0;
        for (int k = 0; k < n; k++) {
            if (idx[k] < 0 || idx[k] >= len) w[k] = 0;
            sum += w[k];
        }
        for (int k = 0; k < n && sum != 0; k++) w[k] /= sum;
    }
    for (int k = 0; k < n; k++) idx[k] = clampi(idx[k], len);
    return n;
}

/* Nearest Resize of a rank-4 tensor (a detector's upsampling, NHWC between
 * oneDNN convs): per-axis index tables, then whole rows copied when the
 * innermost axis (C in NHWC) is not resampled, else one gather per row.
 * Same mapping as the general loop below; returns 0 when it does not apply. */
#define RS_FAST_MAX 2048
static int resize_nearest_fast(const rs_plan *p, const ek_view *x, ek_view *o)
{
    if (p->mode != MD_NEAREST || p->ct == CT_TFCROP || x->rank != 4 || o->rank != 4 ||
        x->nhwc != o->nhwc)
        return 0;
    static const int nchw_order[4] = {0, 1, 2, 3}, nhwc_order[4] = {0, 2, 3, 1};
    const int *ord = x->nhwc ? nhwc_order : nchw_order; /* physical -> logical axis */
    int64_t tab[4][RS_FAST_MAX], st[ENG_MAX_RANK], ost[ENG_MAX_RANK];
    for (int d = 0; d < 4; d++) {
        if (o->dims[d] > RS_FAST_MAX || x->dims[d] < 1) return 0;
        for (int64_t i = 0; i < o->dims[d]; i++) {
            int out;
            int64_t k;
            double w, c = rs_coord(p, d, 4, i, x->dims[d], &out);
            rs_taps(p, c, x->dims[d], &k, &w);
            tab[d][i] = k;
        }
    }
    ek_strides(x, st);
    ek_strides(o, ost);
    int a0 = ord[0], a1 = ord[1], a2 = ord[2], in = ord[3];
    int64_t len = o->dims[in];
    int same = len == x->dims[in];
    for (int64_t i = 0; same && i < len; i++) same = tab[in][i] == i;
    const float *X = x->data;
    float *Y = o->data;
    for (int64_t i0 = 0; i0 < o->dims[a0]; i0++)
        for (int64_t i1 = 0; i1 < o->dims[a1]; i1++)
            for (int64_t i2 = 0; i2 < o->dims[a2]; i2++) {
                const float *src =
                    X + tab[a0][i0] * st[a0] + tab[a1][i1] * st[a1] + tab[a2][i2] * st[a2];
                float *dst = Y + i0 * ost[a0] + i1 * ost[a1] + i2 * ost[a2];
                if (same)
                    memcpy(dst, src, (size_t)len * sizeof(float));
                else
                    for (int64_t i = 0; i < len; i++) dst[i] = src[tab[in][i]];
            }
    return 1;
}

static int run_resize(ek_args *a)
{
    const ek_view *x = a->in[0];
    ek_view *o = a->out[0];
    rs_plan p;
    ek_view tmp;
    int rc = rs_get(a, &p, &tmp);
    if (rc) return rc;
    int r = x->rank;
    int64_t st[ENG_MAX_RANK], ost[ENG_MAX_RANK], cnt[ENG_MAX_RANK] = {0}, n = ek_numel(o);
    ek_strides(x, st);
    ek_strides(o, ost);
    /* axes that resample (the rest map index to index) */
    int ax[ENG_MAX_RANK], na = 0;
    for (int d = 0; d < r; d++)
        if (o->dims[d] != x->dims[d] || p.scale[d] != 1.0 || p.ct == CT_TFCROP) ax[na++] = d;
    const float *X = x->data;
    float *Y = o->data;
    if (ek_numel(x) == 0) {
        memset(Y, 0, ek_bytes(o));
        return 0;
    }
    if (resize_nearest_fast(&p, x, o)) return 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t base = 0, oi = 0;
        for (int d = 0; d < r; d++) base += cnt[d] * st[d], oi += cnt[d] * ost[d];
        int64_t idx[ENG_MAX_RANK][4];
        double w[ENG_MAX_RANK][4];
        int nt[ENG_MAX_RANK], outside = 0, ntot = 1;
        for (int k = 0; k < na; k++) {
            int d = ax[k], out;
            base -= cnt[d] * st[d];
            double c = rs_coord(&p, d, r, cnt[d], x->dims[d], &out);
            outside |= out;
            nt[k] = rs_taps(&p, c, x->dims[d], idx[k], w[k]);
            ntot *= nt[k];
        }
        if (outside) {
            Y[oi] = p.extrap;
        } else {
            double acc = 0;
            for (int t = 0; t < ntot; t++) {
                int64_t off = base, tt = t;
                double wt = 1;
                for (int k = na - 1; k >= 0; k--) {
                    int j = (int)(tt % nt[k]);
                    tt /= nt[k];
                    off += idx[k][j] * st[ax[k]];
                    wt *= w[k][j];
                }
                acc += wt * X[off];
            }
            Y[oi] = (float)acc;
        }
        for (int d = r - 1; d >= 0; d--) {
            if (++cnt[d] < o->dims[d]) break;
            cnt[d] = 0;
        }
    }
    return 0;
}

/* ---- ConvTranspose -------------------------------------------------------------------------- */

typedef struct ct_geom {
    int sp;
    int64_t in[3], k[3], out[3], st[3], dil[3], pl[3];
} ct_geom;

static int attr_list(const eg_node *n, const char *name, int64_t *out, int cnt, int64_t def)
{
    const eg_attr *at = eg_attr_find(n, name);
    for (int i = 0; i < cnt; i++) out[i] = def;
    if (!at) return 0;
    if (at->n != cnt) return -1;
    for (int i = 0; i < cnt; i++) out[i] = at->ints[i];
    return 0;
}

static int ct_get(ek_args *a, ct_geom *g)
{
    const ek_view *x = a->in[0], *w = a->in[1];
    const eg_node *n = a->node;
    int sp = x->rank - 2;
    int64_t G = eg_attr_int(n, "group", 1);
    if (sp < 1 || sp > 3 || w->rank != x->rank || x->dtype != ENG_FLOAT || w->dtype != ENG_FLOAT)
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (ConvTranspose): needs float 1-3 D input "
                     "and weights of its rank",
                     KNAME(a));
    if (G < 1 || x->dims[1] % G || w->dims[0] != x->dims[1])
        return KFAIL(a, ENG_ESHAPE,
                     "node '%s' (ConvTranspose): channels %lld, weights %lld, group "
                     "%lld",
                     KNAME(a), (long long)x->dims[1], (long long)w->dims[0], (long long)G);
    if (a->nin > 2 && a->in[2] && ek_numel(a->in[2]) != w->dims[1] * G)
        return KFAIL(a, ENG_ESHAPE, "node '%s' (ConvTranspose): bias size", KNAME(a));
    int64_t ks[3], pads[6], op[3], os[3];
    g->sp = sp;
    if (attr_list(n, "strides", g->st, sp, 1) || attr_list(n, "dilations", g->dil, sp, 1) ||
        attr_list(n, "pads", pads, 2 * sp, 0) || attr_list(n, "output_padding", op, sp, 0) ||
        attr_list(n, "kernel_shape", ks, sp, 0))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (ConvTranspose): attribute list lengths", KNAME(a));
    const eg_attr *osa = eg_attr_find(n, "output_shape");
    if (osa && osa->n != sp && osa->n != sp + 2)
        return KFAIL(a, ENG_EFORMAT, "node '%s' (ConvTranspose): output_shape length", KNAME(a));
    const char *ap = eg_attr_str(n, "auto_pad", "NOTSET");
    int same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    if (!same && strcmp(ap, "NOTSET") && strcmp(ap, "VALID"))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (ConvTranspose): bad auto_pad '%s'", KNAME(a), ap);
    for (int i = 0; i < sp; i++) {
        g->in[i] = x->dims[2 + i];
        g->k[i] = w->dims[2 + i];
        if ((ks[i] && ks[i] != g->k[i]) || g->st[i] < 1 || g->dil[i] < 1 || op[i] < 0 ||
            pads[i] < 0 || pads[i + sp] < 0)
            return KFAIL(a, ENG_EFORMAT, "node '%s' (ConvTranspose): bad kernel/stride/pad",
                         KNAME(a));
        int64_t natural = g->st[i] * (g->in[i] - 1) + op[i] + (g->k[i] - 1) * g->dil[i] + 1;
        if (osa || same) {
            os[i] = osa ? osa->ints[osa->n - sp + i] : g->in[i] * g->st[i];
            int64_t total = natural - os[i];
            /* floor division: a negative total (output_shape past the natural
             * size) extends the end */
            int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
            g->pl[i] = !strcmp(ap, "SAME_UPPER") ? half : total - half;
            g->out[i] = os[i];
        } else {
            int64_t pl = !strcmp(ap, "VALID") ? 0 : pads[i],
                    pr = !strcmp(ap, "VALID") ? 0 : pads[i + sp];
            g->pl[i] = pl;
            g->out[i] = natural - pl - pr;
        }
        if (g->out[i] < 0)
            return KFAIL(a, ENG_ESHAPE, "node '%s' (ConvTranspose): negative output size",
                         KNAME(a));
    }
    return 0;
}

static int infer_convt(ek_args *a)
{
    ct_geom g;
    int rc = ct_get(a, &g);
    if (rc) return rc;
    ek_view *o = a->out[0];
    int64_t G = eg_attr_int(a->node, "group", 1);
    ku_shape(o, ENG_FLOAT, a->in[0]->rank, a->in[0]->dims);
    o->dims[1] = a->in[1]->dims[1] * G;
    for (int i = 0; i < g.sp; i++) o->dims[2 + i] = g.out[i];
    return 0;
}

static int run_convt(ek_args *a)
{
    const ek_view *x = a->in[0], *w = a->in[1];
    const float *B = a->nin > 2 && a->in[2] ? a->in[2]->data : NULL;
    ct_geom g;
    ct_get(a, &g);
    int64_t G = eg_attr_int(a->node, "group", 1);
    int64_t N = x->dims[0], C = x->dims[1], cg = C / G, M = w->dims[1] * G, mg = w->dims[1];
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, out[3] = {1, 1, 1}, st[3] = {1, 1, 1},
            dl[3] = {1, 1, 1}, pl[3] = {0, 0, 0};
    for (int i = 0; i < g.sp; i++) {
        int j = 3 - g.sp + i;
        in[j] = g.in[i], k[j] = g.k[i], out[j] = g.out[i], st[j] = g.st[i], dl[j] = g.dil[i],
        pl[j] = g.pl[i];
    }
    int64_t isz = in[0] * in[1] * in[2], osz = out[0] * out[1] * out[2], ksz = k[0] * k[1] * k[2];
    const float *X = x->data, *W = w->data;
    float *Y = a->out[0]->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            float *y = Y + (n * M + m) * osz;
            for (int64_t i = 0; i < osz; i++) y[i] = B ? B[m] : 0.0f;
            int64_t gi = m / mg, mo = m % mg;
            for (int64_t c = gi * cg; c < (gi + 1) * cg; c++) {
                const float *xc = X + (n * C + c) * isz, *wc = W + (c * mg + mo) * ksz;
                for (int64_t i0 = 0; i0 < in[0]; i0++)
                    for (int64_t i1 = 0; i1 < in[1]; i1++)
                        for (int64_t i2 = 0; i2 < in[2]; i2++) {
                            float v = xc[(i0 * in[1] + i1) * in[2] + i2];
                            if (v == 0) continue;
                            for (int64_t k0 = 0; k0 < k[0]; k0++) {
                                int64_t o0 = i0 * st[0] + k0 * dl[0] - pl[0];
                                if (o0 < 0 || o0 >= out[0]) continue;
                                for (int64_t k1 = 0; k1 < k[1]; k1++) {
                                    int64_t o1 = i1 * st[1] + k1 * dl[1] - pl[1];
                                    if (o1 < 0 || o1 >= out[1]) continue;
                                    const float *wk = wc + (k0 * k[1] + k1) * k[2];
                                    float *yr = y + (o0 * out[1] + o1) * out[2];
                                    for (int64_t k2 = 0; k2 < k[2]; k2++) {
                                        int64_t o2 = i2 * st[2] + k2 * dl[2] - pl[2];
                                        if (o2 >= 0 && o2 < out[2]) yr[o2] += v * wk[k2];
                                    }
                                }
                            }
                        }
            }
        }
    return 0;
}

int ek_convt_geom(const eg_node *n, ek_view *const *in, int nin, int64_t *st, int64_t *dil,
                  int64_t *pl, int64_t *pr, char *err, size_t errlen)
{
    ek_args a;
    memset(&a, 0, sizeof(a));
    a.node = n;
    a.nin = nin;
    for (int k = 0; k < nin && k < EG_MAX_IN; k++) a.in[k] = in[k];
    a.err = err;
    a.errlen = errlen;
    ct_geom g;
    int rc = ct_get(&a, &g);
    if (rc) return rc;
    for (int i = 0; i < g.sp; i++) {
        st[i] = g.st[i], dil[i] = g.dil[i], pl[i] = g.pl[i];
        /* the right pad that makes (in-1)*s + (k-1)*d + 1 - pl - pr the output */
        pr[i] = g.st[i] * (g.in[i] - 1) + (g.k[i] - 1) * g.dil[i] + 1 - g.pl[i] - g.out[i];
    }
    return 0;
}

const ek_op ek_op_resize = {infer_resize, run_resize, EK_NHWC_OK, 14u};
const ek_op ek_op_convt = {infer_convt, run_convt, 0, 0};
