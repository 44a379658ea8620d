/* ref_detect: detector post-processing: NonMaxSuppression and GridSample.
 *
 * NonMaxSuppression's output length depends on the boxes and scores, so its
 * inputs must be known when the plan is built (a plan has fixed shapes); the
 * load error says so ("data-dependent shape"). Detectors that decode boxes
 * in the graph and leave NMS to the caller run as usual. */
#include "engine/kernels_util.h"

#include <math.h>
#include <stdlib.h>

/* ---- NonMaxSuppression ------------------------------------------------------------------- */

static float iou(const float *a, const float *b, int center)
{
    float ay1, ax1, ay2, ax2, by1, bx1, by2, bx2;
    if (center) {
        ax1 = a[0] - a[2] / 2, ax2 = a[0] + a[2] / 2, ay1 = a[1] - a[3] / 2, ay2 = a[1] + a[3] / 2;
        bx1 = b[0] - b[2] / 2, bx2 = b[0] + b[2] / 2, by1 = b[1] - b[3] / 2, by2 = b[1] + b[3] / 2;
    } else {
        ay1 = fminf(a[0], a[2]), ay2 = fmaxf(a[0], a[2]), ax1 = fminf(a[1], a[3]),
        ax2 = fmaxf(a[1], a[3]);
        by1 = fminf(b[0], b[2]), by2 = fmaxf(b[0], b[2]), bx1 = fminf(b[1], b[3]),
        bx2 = fmaxf(b[1], b[3]);
    }
    float iw = fminf(ax2, bx2) - fmaxf(ax1, bx1), ih = fminf(ay2, by2) - fmaxf(ay1, by1);
    if (iw <= 0 || ih <= 0) return 0;
    float inter = iw * ih, uni = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter;
    return uni > 0 ? inter / uni : 0;
}

/* Sorts idx[0..m) by score descending, index ascending on ties (merge sort,
 * tmp holds m entries). */
static void sort_by_score(int64_t *idx, int64_t *tmp, int64_t m, const float *s)
{
    for (int64_t w = 1; w < m; w *= 2) {
        for (int64_t lo = 0; lo < m; lo += 2 * w) {
            int64_t mid = lo + w < m ? lo + w : m, hi = lo + 2 * w < m ? lo + 2 * w : m;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = s[idx[j]] > s[idx[i]] ? idx[j++] : idx[i++];
            while (i < mid) tmp[k++] = idx[i++];
            while (j < hi) tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, (size_t)m * sizeof(int64_t));
    }
}

/* Runs NMS; writes up to cap triples into out (when not NULL); returns the count. */
static int64_t nms(ek_args *a, int64_t *out, int *err)
{
    const ek_view *bx = a->in[0], *sc = a->in[1];
    int64_t maxo = a->nin > 2 && a->in[2] ? ku_geti(a->in[2], 0) : 0;
    float thr = a->nin > 3 && a->in[3] ? ((const float *)a->in[3]->data)[0] : 0;
    int has_st = a->nin > 4 && a->in[4];
    float st = has_st ? ((const float *)a->in[4]->data)[0] : 0;
    int center = (int)eg_attr_int(a->node, "center_point_box", 0);
    int64_t B = sc->dims[0], C = sc->dims[1], N = sc->dims[2], cnt = 0;
    const float *BX = bx->data, *SC = sc->data;
    int64_t *ord = malloc((size_t)(N + 1) * sizeof(int64_t) * 3);
    if (!ord) {
        *err = 1;
        return 0;
    }
    int64_t *sel = ord + N, *tmp = ord + 2 * N;
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            const float *s = SC + (b * C + c) * N;
            int64_t m = 0, ns = 0;
            for (int64_t i = 0; i < N; i++)
                if (!has_st || s[i] > st) ord[m++] = i;
            sort_by_score(ord, tmp, m, s);
            for (int64_t k = 0; k < m && ns < maxo; k++) {
                const float *bk = BX + (b * N + ord[k]) * 4;
                int keep = 1;
                for (int64_t j = 0; j < ns && keep; j++)
                    if (iou(bk, BX + (b * N + sel[j]) * 4, center) > thr) keep = 0;
                if (!keep) continue;
                sel[ns++] = ord[k];
                if (out) {
                    out[cnt * 3] = b, out[cnt * 3 + 1] = c, out[cnt * 3 + 2] = ord[k];
                }
                cnt++;
            }
        }
    free(ord);
    return cnt;
}

static int infer_nms(ek_args *a)
{
    const ek_view *bx = a->in[0], *sc = a->in[1];
    for (int k = 0; k < a->nin && k < 5; k++)
        if (a->in[k] && !a->in[k]->data)
            return KFAIL(a, ENG_EUNSUPPORTED,
                         "node '%s' (NonMaxSuppression): data-dependent shape: input %d must be "
                         "known when the plan is built",
                         KNAME(a), k);
    if (bx->dtype != ENG_FLOAT || sc->dtype != ENG_FLOAT || bx->rank != 3 || sc->rank != 3 ||
        bx->dims[2] != 4 || bx->dims[0] != sc->dims[0] || bx->dims[1] != sc->dims[2])
        return KFAIL(a, ENG_ESHAPE,
                     "node '%s' (NonMaxSuppression): boxes [B, N, 4] and scores "
                     "[B, C, N] needed",
                     KNAME(a));
    if ((a->nin > 2 && a->in[2] && (!ku_is_int(a->in[2]->dtype) || ek_numel(a->in[2]) != 1)) ||
        (a->nin > 3 && a->in[3] && (a->in[3]->dtype != ENG_FLOAT || ek_numel(a->in[3]) != 1)) ||
        (a->nin > 4 && a->in[4] && (a->in[4]->dtype != ENG_FLOAT || ek_numel(a->in[4]) != 1)))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (NonMaxSuppression): bad scalar inputs", KNAME(a));
    int err = 0;
    int64_t dims[2] = {nms(a, NULL, &err), 3};
    if (err) return KFAIL(a, ENG_ENOMEM, "out of memory");
    ku_shape(a->out[0], ENG_INT64, 2, dims);
    return 0;
}

static int run_nms(ek_args *a)
{
    int err = 0;
    nms(a, a->out[0]->data, &err);
    return err ? KFAIL(a, ENG_ENOMEM, "out of memory") : 0;
}

/* ---- GridSample -------------------------------------------------------------------------- */

static int infer_grid(ek_args *a)
{
    const ek_view *x = a->in[0], *g = a->in[1];
    const char *m = eg_attr_str(a->node, "mode", "bilinear"),
               *p = eg_attr_str(a->node, "padding_mode", "zeros");
    if (x->dtype != ENG_FLOAT || g->dtype != ENG_FLOAT || x->rank != 4 || g->rank != 4 ||
        g->dims[3] != 2 || g->dims[0] != x->dims[0])
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (GridSample): needs float NCHW input and grid "
                     "[N, H, W, 2]",
                     KNAME(a));
    if ((strcmp(m, "bilinear") && strcmp(m, "nearest") && strcmp(m, "bicubic")) ||
        (strcmp(p, "zeros") && strcmp(p, "border") && strcmp(p, "reflection")))
        return KFAIL(a, ENG_EFORMAT, "node '%s' (GridSample): mode '%s' / padding '%s'", KNAME(a),
                     m, p);
    int64_t d[4] = {x->dims[0], x->dims[1], g->dims[1], g->dims[2]};
    ku_shape(a->out[0], ENG_FLOAT, 4, d);
    return 0;
}

static double reflect(double x, double lo, double hi)
{
    double rng = hi - lo;
    if (rng <= 0) return lo;
    if (x < lo) {
        double dx = lo - x;
        int64_t n = (int64_t)(dx / rng);
        double r = dx - (double)n * rng;
        return n % 2 == 0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi;
        int64_t n = (int64_t)(dx / rng);
        double r = dx - (double)n * rng;
        return n % 2 == 0 ? hi - r : lo + r;
    }
    return x;
}

/* Pixel (y, x) of one channel plane with the padding rule; pad 0 zeros, 1 border, 2 reflection. */
static float gs_pixel(const float *pl, int64_t H, int64_t W, int64_t y, int64_t x, int pad,
                      int align)
{
    if (pad == 0) return y < 0 || y >= H || x < 0 || x >= W ? 0.0f : pl[y * W + x];
    if (pad == 1) {
        y = y < 0 ? 0 : (y >= H ? H - 1 : y);
        x = x < 0 ? 0 : (x >= W ? W - 1 : x);
        return pl[y * W + x];
    }
    double yy = align ? reflect((double)y, 0, (double)(H - 1)) : reflect((double)y, -0.5, H - 0.5);
    double xx = align ? reflect((double)x, 0, (double)(W - 1)) : reflect((double)x, -0.5, W - 0.5);
    int64_t yi = (int64_t)floor(yy + 0.5), xi = (int64_t)floor(xx + 0.5);
    yi = yi < 0 ? 0 : (yi >= H ? H - 1 : yi);
    xi = xi < 0 ? 0 : (xi >= W ? W - 1 : xi);
    return pl[yi * W + xi];
}

static void cubic_w(double t, double *w)
{
    const double A = -0.75;
    double t1 = t + 1, t2 = 1 - t, t3 = 2 - t;
    w[0] = ((A * t1 - 5 * A) * t1 + 8 * A) * t1 - 4 * A;
    w[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
    w[2] = ((A + 2) * t2 - (A + 3)) * t2 * t2 + 1;
    w[3] = ((A * t3 - 5 * A) * t3 + 8 * A) * t3 - 4 * A;
}

static int run_grid(ek_args *a)
{
    const ek_view *x = a->in[0], *g = a->in[1];
    const char *m = eg_attr_str(a->node, "mode", "bilinear"),
               *p = eg_attr_str(a->node, "padding_mode", "zeros");
    int mode = !strcmp(m, "nearest") ? 0 : !strcmp(m, "bilinear") ? 1 : 2;
    int pad = !strcmp(p, "zeros") ? 0 : !strcmp(p, "border") ? 1 : 2;
    int align = (int)eg_attr_int(a->node, "align_corners", 0);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], OH = g->dims[1],
            OW = g->dims[2];
    const float *X = x->data, *G = g->data;
    float *Y = a->out[0]->data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < OH * OW; i++) {
            double gx = G[(n * OH * OW + i) * 2], gy = G[(n * OH * OW + i) * 2 + 1];
            double fx = align ? (gx + 1) / 2 * (double)(W - 1) : ((gx + 1) * (double)W - 1) / 2;
            double fy = align ? (gy + 1) / 2 * (double)(H - 1) : ((gy + 1) * (double)H - 1) / 2;
            if (pad == 1 && mode != 2) {
                fx = fx < 0 ? 0 : (fx > W - 1 ? (double)(W - 1) : fx);
                fy = fy < 0 ? 0 : (fy > H - 1 ? (double)(H - 1) : fy);
            } else if (pad == 2 && mode != 2) {
                fx = align ? reflect(fx, 0, (double)(W - 1)) : reflect(fx, -0.5, W - 0.5);
                fy = align ? reflect(fy, 0, (double)(H - 1)) : reflect(fy, -0.5, H - 0.5);
            }
            for (int64_t c = 0; c < C; c++) {
                const float *pl = X + (n * C + c) * H * W;
                double v;
                if (mode == 0) {
                    v = gs_pixel(pl, H, W, (int64_t)nearbyint(fy), (int64_t)nearbyint(fx), pad,
                                 align);
                } else if (mode == 1) {
                    int64_t x0 = (int64_t)floor(fx), y0 = (int64_t)floor(fy);
                    double dx = fx - (double)x0, dy = fy - (double)y0;
                    v = (1 - dy) * ((1 - dx) * gs_pixel(pl, H, W, y0, x0, pad, align) +
                                    dx * gs_pixel(pl, H, W, y0, x0 + 1, pad, align)) +
                        dy * ((1 - dx) * gs_pixel(pl, H, W, y0 + 1, x0, pad, align) +
                              dx * gs_pixel(pl, H, W, y0 + 1, x0 + 1, pad, align));
                } else {
                    int64_t x0 = (int64_t)floor(fx) - 1, y0 = (int64_t)floor(fy) - 1;
                    double wx[4], wy[4];
                    cubic_w(fx - floor(fx), wx);
                    cubic_w(fy - floor(fy), wy);
                    v = 0;
                    for (int r = 0; r < 4; r++)
                        for (int q = 0; q < 4; q++)
                            v += wy[r] * wx[q] * gs_pixel(pl, H, W, y0 + r, x0 + q, pad, align);
                }
                Y[(n * C + c) * OH * OW + i] = (float)v;
            }
        }
    return 0;
}

const ek_op ek_op_nms = {infer_nms, run_nms, 0, 31u};
const ek_op ek_op_grid = {infer_grid, run_grid, 0, 0};

/* ---- RoiAlign --------------------------------------------------------------------------- */

static int infer_roialign(ek_args *a)
{
    const ek_view *x = a->in[0], *r = a->in[1], *bi = a->in[2];
    const char *md = eg_attr_str(a->node, "mode", "avg"),
               *ct = eg_attr_str(a->node, "coordinate_transformation_mode", "half_pixel");
    int64_t oh = eg_attr_int(a->node, "output_height", 1),
            ow = eg_attr_int(a->node, "output_width", 1);
    if (x->dtype != ENG_FLOAT || x->rank != 4 || r->dtype != ENG_FLOAT || r->rank != 2 ||
        r->dims[1] != 4 || !ku_is_int(bi->dtype) || ek_numel(bi) != r->dims[0])
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (RoiAlign): needs float NCHW X, rois [R, 4] and "
                     "R batch indices",
                     KNAME(a));
    if ((strcmp(md, "avg") && strcmp(md, "max")) ||
        (strcmp(ct, "half_pixel") && strcmp(ct, "output_half_pixel")) || oh < 1 || ow < 1 ||
        oh > 4096 || ow > 4096 || eg_attr_int(a->node, "sampling_ratio", 0) < 0)
        return KFAIL(a, ENG_EFORMAT,
                     "node '%s' (RoiAlign): bad mode, coordinate mode or output size", KNAME(a));
    int64_t d[4] = {r->dims[0], x->dims[1], oh, ow};
    ku_shape(a->out[0], ENG_FLOAT, 4, d);
    return 0;
}

/* Bilinear sample of plane p (H x W) at (y, x) as ONNX Runtime / torchvision
 * do: zero outside [-1, H] x [-1, W], edge-clamped inside. Corner weights
 * and values go to w/v for the max mode. */
static void roi_sample(const float *p, int64_t H, int64_t W, double y, double x, double *w,
                       float *v)
{
    for (int k = 0; k < 4; k++) w[k] = 0, v[k] = 0;
    if (y < -1.0 || y > (double)H || x < -1.0 || x > (double)W) return;
    if (y <= 0) y = 0;
    if (x <= 0) x = 0;
    int64_t yl = (int64_t)y, xl = (int64_t)x, yh, xh;
    if (yl >= H - 1)
        yh = yl = H - 1, y = (double)yl;
    else
        yh = yl + 1;
    if (xl >= W - 1)
        xh = xl = W - 1, x = (double)xl;
    else
        xh = xl + 1;
    double ly = y - (double)yl, lx = x - (double)xl, hy = 1 - ly, hx = 1 - lx;
    w[0] = hy * hx, w[1] = hy * lx, w[2] = ly * hx, w[3] = ly * lx;
    v[0] = p[yl * W + xl], v[1] = p[yl * W + xh], v[2] = p[yh * W + xl], v[3] = p[yh * W + xh];
}

static int run_roialign(ek_args *a)
{
    const ek_view *x = a->in[0], *r = a->in[1], *bi = a->in[2];
    int mx = !strcmp(eg_attr_str(a->node, "mode", "avg"), "max");
    int half =
        !strcmp(eg_attr_str(a->node, "coordinate_transformation_mode", "half_pixel"), "half_pixel");
    int64_t oh = eg_attr_int(a->node, "output_height", 1),
            ow = eg_attr_int(a->node, "output_width", 1);
    int64_t sr = eg_attr_int(a->node, "sampling_ratio", 0);
    double sc = eg_attr_float(a->node, "spatial_scale", 1.0f), off = half ? 0.5 : 0.0;
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], R = r->dims[0];
    const float *X = x->data, *B = r->data;
    float *Y = a->out[0]->data;
    for (int64_t n = 0; n < R; n++) {
        int64_t b = ku_geti(bi, n);
        if (b < 0 || b >= N)
            return KFAIL(a, ENG_EINVAL,
                         "node '%s' (RoiAlign): batch index %lld out of range [0, "
                         "%lld)",
                         KNAME(a), (long long)b, (long long)N);
        double x1 = B[n * 4] * sc - off, y1 = B[n * 4 + 1] * sc - off, x2 = B[n * 4 + 2] * sc - off,
               y2 = B[n * 4 + 3] * sc - off;
        double rw = x2 - x1, rh = y2 - y1;
        if (!half) rw = rw > 1 ? rw : 1, rh = rh > 1 ? rh : 1;
        double bh = rh / (double)oh, bw = rw / (double)ow;
        int64_t gh = sr > 0 ? sr : (int64_t)ceil(rh / (double)oh),
                gw = sr > 0 ? sr : (int64_t)ceil(rw / (double)ow);
        if (gh < 0 || gh > 4096) gh = gh < 0 ? 0 : 4096;
        if (gw < 0 || gw > 4096) gw = gw < 0 ? 0 : 4096;
        double cnt = gh * gw > 1 ? (double)(gh * gw) : 1.0;
        for (int64_t c = 0; c < C; c++) {
            const float *p = X + (b * C + c) * H * W;
            for (int64_t ph = 0; ph < oh; ph++)
                for (int64_t pw = 0; pw < ow; pw++) {
                    double acc = 0, best = 0;
                    int first = 1;
                    for (int64_t iy = 0; iy < gh; iy++)
                        for (int64_t ix = 0; ix < gw; ix++) {
                            double yy = y1 + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh,
                                   xx = x1 + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw,
                                   w[4];
                            float v[4];
                            roi_sample(p, H, W, yy, xx, w, v);
                            if (!mx) {
                                acc += w[0] * v[0] + w[1] * v[1] + w[2] * v[2] + w[3] * v[3];
                                continue;
                            }
                            for (int k = 0; k < 4; k++)
                                if (first || w[k] * v[k] > best) best = w[k] * v[k], first = 0;
                        }
                    Y[((n * C + c) * oh + ph) * ow + pw] = (float)(mx ? best : acc / cnt);
                }
        }
    }
    return 0;
}

const ek_op ek_op_roialign = {infer_roialign, run_roialign, 0, 0};
