/* Unit tests of batch-invariant contexts (eng_ctx_opts.batch_invariant): an
 * item's outputs are bit-identical whatever batch it runs in, whatever the
 * other items are, whatever the alignment of the caller's buffer, and whatever
 * the context's thread count. These compare bytes because the code guarantees
 * bytes: every item runs alone through the same batch-1, 1-thread primitives
 * from an aligned copy of its inputs. */
#include "engine/engine.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MNV2   "models/mobilenetv2-160.onnx"
#define DIGITS "models/digits.onnx"

static eng_model *load(const char *path)
{
    char err[ENG_ERRLEN] = "";
    eng_model *m = eng_model_load_file(path, NULL, err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    return m;
}

static eng_ctx *ctx(eng_model *m, int threads, int max_batch, int invariant)
{
    char err[ENG_ERRLEN] = "";
    eng_ctx_opts o = {.threads = threads, .max_batch = max_batch, .batch_invariant = invariant};
    eng_ctx *c = eng_ctx_create(m, &o, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    return c;
}

/* n items of a model with one float input and one float output. */
typedef struct items {
    int64_t in_n, out_n;
    float *x;
} items;

static items make_items(const eng_model *m, int n, unsigned seed)
{
    eng_tensor_info ti, to;
    cr_assert_eq(eng_model_input(m, 0, &ti), 0);
    cr_assert_eq(eng_model_output(m, 0, &to), 0);
    items it = {ti.item_count, to.item_count, malloc(sizeof(float) * (size_t)(ti.item_count * n))};
    cr_assert_not_null(it.x);
    uint32_t s = seed;
    for (int64_t i = 0; i < ti.item_count * n; i++) {
        s = s * 1664525u + 1013904223u;
        it.x[i] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
    }
    return it;
}

static void run(eng_ctx *c, int batch, const float *x, float *y)
{
    const void *in[1] = {x};
    void *out[1] = {y};
    cr_assert_eq(eng_ctx_run(c, batch, in, out), 0, "%s", eng_ctx_error(c));
}

/* Every item of a batch of `max` equals the item run alone from a buffer at an
 * odd 4-byte offset, and the item placed last in a batch of other items. */
static void check_invariant(const char *path, int threads, int max)
{
    eng_model *m = load(path);
    eng_ctx *c = ctx(m, threads, max, 1);
    items it = make_items(m, max, 7);
    size_t ob = sizeof(float) * (size_t)it.out_n, ib = sizeof(float) * (size_t)it.in_n;
    float *yb = malloc(ob * (size_t)max), *y1 = malloc(ob), *y2 = malloc(ob * (size_t)max);
    char *odd = malloc(ib + 64);
    float *xr = malloc(ib * (size_t)max);
    cr_assert(yb && y1 && y2 && odd && xr);
    run(c, max, it.x, yb);
    for (int b = 0; b < max; b++) {
        float *x1 = (float *)(odd + 4); /* not 64-byte aligned, unlike a batch's first item */
        memcpy(x1, it.x + b * it.in_n, ib);
        run(c, 1, x1, y1);
        cr_expect_eq(memcmp(y1, yb + b * it.out_n, ob), 0, "%s item %d: alone != in batch %d", path,
                     b, max);
        /* the same item last in a smaller batch whose other items are item 0.. */
        int nb = b + 1 < max ? b + 2 : max;
        for (int k = 0; k < nb - 1; k++)
            memcpy(xr + k * it.in_n, it.x + ((b + 1 + k) % max) * it.in_n, ib);
        memcpy(xr + (nb - 1) * it.in_n, it.x + b * it.in_n, ib);
        run(c, nb, xr, y2);
        cr_expect_eq(memcmp(y2 + (nb - 1) * it.out_n, yb + b * it.out_n, ob), 0,
                     "%s item %d: last of a batch of %d != in batch %d", path, b, nb, max);
    }
    free(yb);
    free(y1);
    free(y2);
    free(odd);
    free(xr);
    free(it.x);
    eng_ctx_free(c);
    eng_model_free(m);
}

Test(ctx, batch_invariant_items_are_bit_identical_in_any_batch_mobilenet)
{
    check_invariant(MNV2, 1, 5);
}

Test(ctx, batch_invariant_items_are_bit_identical_in_any_batch_digits)
{
    check_invariant(DIGITS, 1, 9);
}

Test(ctx, batch_invariant_items_are_bit_identical_with_two_threads)
{
    check_invariant(DIGITS, 2, 9);
}

/* The thread count does not change the bits either: 1 and 2 threads agree. */
Test(ctx, batch_invariant_results_do_not_depend_on_the_thread_count)
{
    eng_model *m = load(MNV2);
    eng_ctx *one = ctx(m, 1, 4, 1), *two = ctx(m, 2, 4, 1);
    items it = make_items(m, 4, 3);
    float *a = malloc(sizeof(float) * 4000), *b = malloc(sizeof(float) * 4000);
    for (int n = 1; n <= 4; n += 3) {
        run(one, n, it.x, a);
        run(two, n, it.x, b);
        cr_expect_eq(memcmp(a, b, sizeof(float) * 1000 * (size_t)n), 0, "batch %d", n);
    }
    char buf[1 << 16];
    cr_assert_gt(eng_ctx_describe(two, 4, buf, sizeof(buf)), 0);
    cr_expect_neq(strstr(buf, "batch-invariant"), NULL, "%s", buf);
    cr_expect_null(strstr(buf, "ref:"), "%s", buf);
    int sizes[] = {1, 2, 3, 4};
    cr_expect_eq(eng_ctx_warmup(two, sizes, 4), 0, "%s", eng_ctx_error(two));
    free(a);
    free(b);
    free(it.x);
    eng_ctx_free(one);
    eng_ctx_free(two);
    eng_model_free(m);
}

/* Without the option a batch runs the primitives built for its size: oneDNN may
 * block and sum differently there, so results agree within float rounding, not
 * bit for bit. The bound: 1e-5 of the largest output magnitude (measured ~1e-7
 * on AVX-512 and with ONEDNN_MAX_CPU_ISA=AVX2 or SSE41). */
Test(ctx, without_the_option_batches_agree_within_float_rounding)
{
    eng_model *m = load(MNV2);
    eng_ctx *c = ctx(m, 1, 8, 0);
    items it = make_items(m, 8, 5);
    float *yb = malloc(sizeof(float) * 8000), y1[1000];
    run(c, 8, it.x, yb);
    for (int b = 0; b < 8; b++) {
        run(c, 1, it.x + b * it.in_n, y1);
        double md = 0, mx = 0;
        for (int i = 0; i < 1000; i++) {
            md = fmax(md, fabs(y1[i] - (double)yb[b * 1000 + i]));
            mx = fmax(mx, fabs((double)y1[i]));
        }
        cr_expect_leq(md, 1e-5 * mx, "item %d: max difference %g, largest output %g", b, md, mx);
    }
    free(yb);
    free(it.x);
    eng_ctx_free(c);
    eng_model_free(m);
}
