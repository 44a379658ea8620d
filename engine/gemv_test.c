/* Unit tests of the batch-1 Gemm kernel (gemv.c) against a double-precision
 * loop: odd K, N not a multiple of the column block, B as [K][N] and [N][K],
 * with and without the bias, on each ISA the CPU (and ONEDNN_MAX_CPU_ISA) allows. */
#include "engine/gemv.h"
#include "engine/irb.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffffff) / (float)0xffffff * 2 - 1;
}

Test(gemv, matches_a_double_loop_on_odd_shapes)
{
    static const int64_t shapes[][2] = {{1, 1},   {3, 17},   {1280, 1000}, {257, 64},
                                        {64, 65}, {31, 200}, {2, 129}};
    static const int isas[] = {EF_ISA_AVX2, EF_ISA_AVX512};
    unsigned seed = 99;
    int ran = 0;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        for (int tb = 0; tb < 2; tb++)
            for (int k = 0; k < 2; k++) {
                if (isas[k] > ef_isa()) continue;
                int64_t K = shapes[i][0], N = shapes[i][1];
                float *B = malloc((size_t)(K * N) * sizeof(float)), *x = malloc(K * sizeof(float));
                float *bias = malloc(N * sizeof(float)), *y = malloc((N + 1) * sizeof(float));
                for (int64_t t = 0; t < K * N; t++) B[t] = frand(&seed);
                for (int64_t t = 0; t < K; t++) x[t] = frand(&seed);
                for (int64_t t = 0; t < N; t++) bias[t] = frand(&seed);
                y[N] = 12345.0f; /* a guard: nothing past N is written */
                ev_gemv *g = ev_gemv_create(K, N, B, tb, tb ? bias : NULL, isas[k]);
                cr_assert(g);
                ev_gemv_run(g, x, y);
                for (int64_t j = 0; j < N; j++) {
                    double want = tb ? bias[j] : 0, mag = fabs(want);
                    for (int64_t t = 0; t < K; t++) {
                        double b = tb ? B[j * K + t] : B[t * N + j];
                        want += (double)x[t] * b;
                        mag += fabs((double)x[t] * b);
                    }
                    cr_assert(fabs(y[j] - want) <= 1e-5 * mag + 1e-6,
                              "K %lld N %lld transB %d isa %d col %lld: %g vs %g", (long long)K,
                              (long long)N, tb, isas[k], (long long)j, y[j], want);
                }
                cr_expect_eq(y[N], 12345.0f);
                ev_gemv_free(g);
                free(B), free(x), free(bias), free(y);
                ran++;
            }
    if (!ran) cr_skip_test("no AVX2 on this CPU (or ONEDNN_MAX_CPU_ISA below AVX2)");
}
