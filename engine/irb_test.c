/* Unit tests of the fused inverted residual block (irb.c): every ISA the CPU
 * (and ONEDNN_MAX_CPU_ISA) allows against the unfused reference on random
 * shapes: stride 1 and 2, with and without the residual, odd rows and columns,
 * channel counts that are 8 mod 16 (the AVX-512 masked tail), batches, and the
 * residual added in place (y is x, as the planner runs it). */
#include "engine/irb.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float urand(unsigned *seed, float lo, float hi)
{
    *seed = *seed * 1103515245u + 12345u;
    return lo + (hi - lo) * (float)((*seed >> 8) & 0xffffff) / (float)0xffffff;
}

static float *rand_buf(unsigned *seed, size_t n, float lo, float hi)
{
    float *p = malloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n; i++) p[i] = urand(seed, lo, hi);
    return p;
}

/* Runs one shape on `isa` and compares with the reference: |diff| <= 1e-4 +
 * 1e-4 |ref| (float sums in another order; the reference sums in double). */
static void check(int isa, ef_shape s, int64_t n, int residual, int inplace, unsigned seed)
{
    int expand = s.cexp > 0;
    if (!expand) s.cexp = s.cin; /* the block without the expand */
    int64_t oh = ef_out_h(&s), ow = ef_out_w(&s);
    size_t nx = (size_t)(n * s.h * s.w * s.cin), ny = (size_t)(n * oh * ow * s.cout);
    float *x = rand_buf(&seed, nx, -1, 1);
    float *we = rand_buf(&seed, (size_t)(s.cexp * s.cin), -0.4f, 0.4f);
    float *be = rand_buf(&seed, (size_t)s.cexp, -0.5f, 0.5f);
    float *wd = rand_buf(&seed, (size_t)s.cexp * 9, -0.5f, 0.5f);
    float *bd = rand_buf(&seed, (size_t)s.cexp, -0.5f, 0.5f);
    float *wp = rand_buf(&seed, (size_t)(s.cout * s.cexp), -0.2f, 0.2f);
    float *bp = rand_buf(&seed, (size_t)s.cout, -0.5f, 0.5f);
    float *ref = malloc(ny * sizeof(float)), *y = malloc(ny * sizeof(float) + 64);
    const float *res = residual ? x : NULL;
    ef_block_reference(&s, n, x, expand ? we : NULL, be, wd, bd, wp, bp, res, ref);
    ef_block *b = ef_block_create(&s, isa, expand ? we : NULL, be, wd, bd, wp, bp);
    cr_assert(b, "create %lldx%lld %lld-%lld-%lld s%d isa %d", (long long)s.h, (long long)s.w,
              (long long)s.cin, (long long)s.cexp, (long long)s.cout, s.stride, isa);
    void *scratch = aligned_alloc(64, (ef_block_scratch(b) + 63) / 64 * 64);
    float *out = y;
    if (inplace) { /* the planner's in-place sum: y is x's slot */
        out = x;
        res = x;
    }
    /* garbage in the scratch: the kernel must not depend on it being zero */
    memset(scratch, 0x7f, ef_block_scratch(b));
    ef_block_run(b, n, x, res, out, scratch);
    double worst = 0;
    for (size_t i = 0; i < ny; i++) {
        double d = fabs((double)out[i] - ref[i]) / (1e-4 + 1e-4 * fabs(ref[i]));
        if (d > worst) worst = d;
    }
    cr_expect(worst <= 1.0,
              "%lldx%lld %lld->%lld->%lld stride %d n %lld res %d inplace %d isa %d: "
              "error %.2f x tolerance",
              (long long)s.h, (long long)s.w, (long long)s.cin, (long long)s.cexp,
              (long long)s.cout, s.stride, (long long)n, residual, inplace, isa, worst);
    ef_block_free(b);
    free(scratch), free(x), free(we), free(be), free(wd), free(bd), free(wp), free(bp);
    free(ref), free(y);
}

static const int isas[] = {EF_ISA_AVX2, EF_ISA_AVX512};

static ef_shape shape(int64_t h, int64_t w, int64_t cin, int64_t cexp, int64_t cout, int stride)
{
    ef_shape s = {h, w, cin, cexp, cout, stride, 0, 6, 0, 6};
    return s;
}

Test(irb, mobilenet_shapes_match_the_reference)
{
    /* MobileNetV2@160's block shapes, a few rows tall to keep the test short */
    struct {
        ef_shape s;
        int res;
    } cases[] = {
        {shape(9, 80, 32, 0, 16, 1), 0},    {shape(9, 80, 16, 96, 24, 2), 0},
        {shape(7, 40, 24, 144, 24, 1), 1},  {shape(8, 40, 24, 144, 32, 2), 0},
        {shape(20, 20, 32, 192, 32, 1), 1}, {shape(10, 10, 64, 384, 64, 1), 1},
        {shape(10, 10, 64, 384, 96, 1), 0}, {shape(10, 10, 96, 576, 160, 2), 0},
        {shape(5, 5, 160, 960, 160, 1), 1}, {shape(5, 5, 160, 960, 320, 1), 0},
    };
    int ran = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (int k = 0; k < 2; k++) {
            if (isas[k] > ef_isa()) continue;
            check(isas[k], cases[i].s, 1, cases[i].res, 0, 17u + (unsigned)i);
            ran++;
        }
    if (!ran) cr_skip_test("no AVX2 on this CPU (or ONEDNN_MAX_CPU_ISA below AVX2)");
}

Test(irb, random_odd_shapes_strides_batches_and_in_place)
{
    if (ef_isa() == EF_ISA_NONE) cr_skip_test("no AVX2 on this CPU (or capped below it)");
    unsigned seed = 12345;
    for (int t = 0; t < 40; t++) {
        int stride = 1 + (int)(urand(&seed, 0, 2) >= 1);
        int64_t cin = 8 * (1 + (int64_t)urand(&seed, 0, 5.99f));
        int64_t cexp = 8 * (1 + (int64_t)urand(&seed, 0, 13.99f));
        int64_t cout = stride == 1 && urand(&seed, 0, 1) < 0.5f
                           ? cin
                           : 8 * (1 + (int64_t)urand(&seed, 0, 5.99f));
        int64_t h = 1 + (int64_t)urand(&seed, 0, 12.99f), w = 1 + (int64_t)urand(&seed, 0, 30.99f);
        int64_t n = 1 + (int64_t)urand(&seed, 0, 2.99f);
        int res = stride == 1 && cout == cin && urand(&seed, 0, 1) < 0.7f;
        int inplace = res && urand(&seed, 0, 1) < 0.5f;
        ef_shape s = shape(h, w, cin, cexp, cout, stride);
        if (t % 5 == 4) s.hi1 = s.hi2 = INFINITY; /* ReLU */
        if (t % 7 == 3) s.cexp = 0;               /* no expand */
        for (int k = 0; k < 2; k++)
            if (isas[k] <= ef_isa()) check(isas[k], s, n, res, inplace, seed + (unsigned)t);
    }
}

Test(irb, refuses_shapes_and_isas_it_does_not_run)
{
    ef_shape s = shape(4, 4, 12, 96, 24, 1); /* 12 channels: not a multiple of 8 */
    cr_expect_not(ef_shape_ok(&s));
    s = shape(4, 4, 16, 96, 24, 3);
    cr_expect_not(ef_shape_ok(&s));
    s = shape(4, 4, 16, 96, 24, 1);
    cr_expect(ef_shape_ok(&s));
    float w[96 * 24] = {0};
    cr_expect_null(ef_block_create(&s, 128, w, NULL, w, NULL, w, NULL));
    if (ef_isa() < EF_ISA_AVX512)
        cr_expect_null(ef_block_create(&s, EF_ISA_AVX512, w, NULL, w, NULL, w, NULL));
}
