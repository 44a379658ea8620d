/* irb: the fused inverted residual block (irb.h): shapes, ISA choice, weight
 * repacking, dispatch to the per-ISA kernels, and the unfused reference. */
#include "engine/irb_impl.h"

#include "engine/graph.h"
#include "engine/peak.h"

#include <stdlib.h>
#include <string.h>

int ef_shape_ok(const ef_shape *s)
{
    return s->h >= 1 && s->w >= 1 && s->cin >= 8 && s->cexp >= 8 && s->cout >= 8 &&
           s->cin % 8 == 0 && s->cexp % 8 == 0 && s->cout % 8 == 0 && s->cin <= 4096 &&
           s->cexp <= 8192 && s->cout <= 4096 && s->w <= 4096 && s->h <= 65536 &&
           (s->stride == 1 || s->stride == 2) && s->lo1 <= 0 && s->hi1 >= 0 && s->lo2 <= s->hi2;
}

int ef_isa(void)
{
#if defined(__x86_64__)
    switch (eng_dnn_isa()) {
    case ENG_ISA_AVX512: return EF_ISA_AVX512;
    case ENG_ISA_AVX2: return EF_ISA_AVX2;
    default: return EF_ISA_NONE;
    }
#else
    return EF_ISA_NONE;
#endif
}

int64_t ef_out_h(const ef_shape *s)
{
    return (s->h - 1) / s->stride + 1; /* pads 1, kernel 3 */
}

int64_t ef_out_w(const ef_shape *s)
{
    return (s->w - 1) / s->stride + 1;
}

static int64_t round_up(int64_t x, int64_t to)
{
    return (x + to - 1) / to * to;
}

ef_block *ef_block_create(const ef_shape *s, int isa, const float *we, const float *be,
                          const float *wd, const float *bd, const float *wp, const float *bp)
{
    if (!ef_shape_ok(s) || (isa != EF_ISA_AVX2 && isa != EF_ISA_AVX512) || isa > ef_isa() ||
        (!we && s->cin != s->cexp))
        return NULL;
    ef_block *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->s = *s;
    b->isa = isa;
    b->has_expand = we != NULL;
    b->vl = isa == EF_ISA_AVX512 ? 16 : 8;
    b->cexp_p = round_up(s->cexp, b->vl);
    b->cout_p = round_up(s->cout, b->vl);
    b->oh = ef_out_h(s);
    b->ow = ef_out_w(s);
    const int64_t C = b->cexp_p, O = b->cout_p;
    size_t n = (size_t)(s->cin * C + C + 9 * C + C + C * O + O);
    float *w = eg_alloc(n * sizeof(float));
    if (!w) {
        free(b);
        return NULL;
    }
    b->we = w, b->be = b->we + s->cin * C, b->wd = b->be + C, b->bd = b->wd + 9 * C;
    b->wp = b->bd + C, b->bp = b->wp + C * O;
    for (int64_t e = 0; e < s->cexp; e++) {
        for (int64_t k = 0; we && k < s->cin; k++) b->we[k * C + e] = we[e * s->cin + k];
        for (int t = 0; t < 9; t++) b->wd[t * C + e] = wd[e * 9 + t];
        b->be[e] = be ? be[e] : 0;
        b->bd[e] = bd ? bd[e] : 0;
        for (int64_t o = 0; o < s->cout; o++) b->wp[e * O + o] = wp[o * s->cexp + e];
    }
    for (int64_t o = 0; o < s->cout; o++) b->bp[o] = bp ? bp[o] : 0;
    b->ring_row = (size_t)round_up((s->w + 2) * C, 16);
    /* the depthwise row, plus a tile's overhang the GEMM never reads */
    b->dw_row = (size_t)round_up(b->ow * C, 16);
    b->scratch = (4 * b->ring_row + b->dw_row) * sizeof(float);
    return b;
}

void ef_block_free(ef_block *b)
{
    if (!b) return;
    free(b->we);
    free(b);
}

size_t ef_block_scratch(const ef_block *b)
{
    return b->scratch;
}

int ef_block_isa(const ef_block *b)
{
    return b->isa;
}

void ef_block_run(const ef_block *b, int64_t n, const float *x, const float *res, float *y,
                  void *scratch)
{
    if (b->isa == EF_ISA_AVX512)
        ef_run_avx512(b, n, x, res, y, scratch);
    else
        ef_run_avx2(b, n, x, res, y, scratch);
}

static float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

void ef_block_reference(const ef_shape *s, int64_t n, const float *x, const float *we,
                        const float *be, const float *wd, const float *bd, const float *wp,
                        const float *bp, const float *res, float *y)
{
    const int64_t H = s->h, W = s->w, E = s->cexp, OH = ef_out_h(s), OW = ef_out_w(s);
    float *e = malloc((size_t)(H * W * E) * sizeof(float));
    float *d = malloc((size_t)(OH * OW * E) * sizeof(float));
    if (!e || !d) {
        free(e), free(d);
        return;
    }
    for (int64_t item = 0; item < n; item++) {
        const float *xi = x + item * H * W * s->cin;
        for (int64_t p = 0; p < H * W; p++)
            for (int64_t c = 0; c < E; c++) {
                if (!we) { /* no expand: the depthwise reads x */
                    e[p * E + c] = xi[p * s->cin + c];
                    continue;
                }
                double acc = be ? be[c] : 0;
                for (int64_t k = 0; k < s->cin; k++)
                    acc += (double)xi[p * s->cin + k] * we[c * s->cin + k];
                e[p * E + c] = clampf((float)acc, s->lo1, s->hi1);
            }
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                for (int64_t c = 0; c < E; c++) {
                    double acc = bd ? bd[c] : 0;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int64_t iy = oy * s->stride - 1 + ky, ix = ox * s->stride - 1 + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            acc += (double)e[(iy * W + ix) * E + c] * wd[c * 9 + ky * 3 + kx];
                        }
                    d[(oy * OW + ox) * E + c] = clampf((float)acc, s->lo2, s->hi2);
                }
        float *yi = y + item * OH * OW * s->cout;
        const float *ri = res ? res + item * OH * OW * s->cout : NULL;
        for (int64_t p = 0; p < OH * OW; p++)
            for (int64_t o = 0; o < s->cout; o++) {
                double acc = bp ? bp[o] : 0;
                for (int64_t c = 0; c < E; c++) acc += (double)d[p * E + c] * wp[o * E + c];
                yi[p * s->cout + o] = (float)acc + (ri ? ri[p * s->cout + o] : 0.0f);
            }
    }
    free(e), free(d);
}
