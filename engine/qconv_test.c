/* Unit tests of the int8 path (qconv.c): the quantizing kernel against its
 * definition (round to nearest even, saturate, NaN to the low end) at every
 * tail length, and eng_model_calibrate_int8 end to end on the digits CNN. */
#include "engine/model.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DIGITS "models/digits.onnx"

static int expect(float x, float scale, int is_unsigned)
{
    float lo = is_unsigned ? 0.0f : -128.0f, hi = is_unsigned ? 255.0f : 127.0f;
    float v = x * scale;
    if (isnan(v) || v < lo) return (int)lo;
    if (v > hi) return (int)hi;
    return (int)rintf(v); /* default rounding: nearest, ties to even */
}

Test(qconv, quantize_rounds_half_to_even_and_saturates_at_every_length)
{
    enum { N = 131 };
    float x[N];
    uint8_t q[N + 1];
    static const float special[] = {0.5f,  1.5f,   2.5f,  -0.5f,    -1.5f,     -2.5f,  127.5f,
                                    300.f, -300.f, NAN,   INFINITY, -INFINITY, 254.5f, -128.5f,
                                    3e9f,  -3e9f,  0.49f, 126.51f,  1e-30f,    -0.0f};
    for (int i = 0; i < N; i++)
        x[i] = i < (int)(sizeof(special) / sizeof(*special)) ? special[i]
                                                             : (float)((i * 37) % 200) - 90.25f;
    for (int uns = 0; uns < 2; uns++)
        for (int n = 0; n <= N; n++) { /* the vector body and every tail */
            memset(q, 0xAB, sizeof(q));
            eq_quantize(x, q, n, 1.0f, uns);
            for (int i = 0; i < n; i++) {
                int got = uns ? q[i] : (int8_t)q[i];
                cr_assert_eq(got, expect(x[i], 1.0f, uns), "n %d i %d x %g unsigned %d: %d", n, i,
                             x[i], uns, got);
            }
            cr_assert_eq(q[n], 0xAB, "wrote past n = %d", n);
        }
    eq_quantize(x, q, 8, 2.0f, 0); /* the scale applies before rounding */
    cr_assert_eq((int8_t)q[0], 1);
    cr_assert_eq((int8_t)q[1], 3);
    cr_assert_eq((int8_t)q[2], 5);
}

static void run(eng_model *m, const float *x, float *y)
{
    char err[ENG_ERRLEN] = "";
    eng_ctx *c = eng_ctx_create(m, NULL, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    const void *in[1] = {x};
    void *out[1] = {y};
    cr_assert_eq(eng_ctx_run(c, 1, in, out), 0, "%s", eng_ctx_error(c));
    eng_ctx_free(c);
}

Test(qconv, calibrated_digits_model_runs_int8_close_to_f32)
{
    char err[ENG_ERRLEN] = "";
    eng_model *m = eng_model_load_file(DIGITS, NULL, err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    float x[3][64], f[10], q[10];
    for (int k = 0; k < 3; k++) /* a blurred "1" shape and two ramps: 0..16 like the data */
        for (int i = 0; i < 64; i++)
            x[k][i] =
                k == 0 ? ((i % 8 == 3 || i % 8 == 4) ? 16.0f : 0.0f) : (float)((i * (k + 3)) % 17);
    run(m, x[0], f);
    const float *items[2] = {x[1], x[2]};
    cr_assert_lt(eng_model_calibrate_int8(m, 0, items, err, sizeof(err)), 0);
    cr_assert(strstr(err, "at least one"), "%s", err);
    cr_assert_eq(eng_model_calibrate_int8(m, 2, items, err, sizeof(err)), 3, "%s",
                 err); /* 2 Convs, Gemm */
    run(m, x[0], q);
    float amax = 0, diff = 0;
    int af = 0, aq = 0;
    for (int i = 0; i < 10; i++) {
        amax = fmaxf(amax, fabsf(f[i]));
        diff = fmaxf(diff, fabsf(f[i] - q[i]));
        af = f[i] > f[af] ? i : af;
        aq = q[i] > q[aq] ? i : aq;
    }
    cr_assert_gt(diff, 0.0f, "int8 did not run");
    cr_assert_lt(diff, 0.1f * amax, "diff %g of %g", diff, amax);
    cr_assert_eq(af, aq);
    eng_model_free(m);
}

Test(qconv, every_batch_size_of_a_context_runs_int8)
{
    /* batch 1 and batch 4 plans may ask for different int8 weight layouts:
     * both must get int8 kernels, and the same item gives the same classes */
    char err[ENG_ERRLEN] = "";
    eng_model *m = eng_model_load_file(DIGITS, NULL, err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    float x[4][64], y1[10], y4[40];
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 64; i++) x[k][i] = (float)((i * 7 + 3) % 17);
    const float *items[1] = {x[0]};
    cr_assert_gt(eng_model_calibrate_int8(m, 1, items, err, sizeof(err)), 0, "%s", err);
    eng_ctx_opts o = {.threads = 1, .max_batch = 4};
    eng_ctx *c = eng_ctx_create(m, &o, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    const void *in[1] = {x};
    void *o1[1] = {y1}, *o4[1] = {y4};
    cr_assert_eq(eng_ctx_run(c, 1, in, o1), 0, "%s", eng_ctx_error(c));
    cr_assert_eq(eng_ctx_run(c, 4, in, o4), 0, "%s", eng_ctx_error(c));
    char desc[8192];
    for (int b = 1; b <= 4; b += 3) {
        eng_ctx_describe(c, b, desc, sizeof(desc));
        cr_assert(strstr(desc, "quantize"), "batch %d:\n%s", b, desc);
    }
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 10; i++)
            cr_assert_float_eq(y4[k * 10 + i], y1[i], 1e-4f * (1 + fabsf(y1[i])), "item %d", k);
    eng_ctx_free(c);
    eng_model_free(m);
}
