#include "loadgen/dist/dispatch.h"

#include <criterion/criterion.h>
#include <stdlib.h>

/* Every split: class totals kept, each class and each worker's total within
 * one of the others. */
Test(dist_dispatch, balanced_for_many_shapes)
{
    int per_class[4];
    for (size_t nc = 1; nc <= 4; nc++)
        for (size_t W = 1; W <= 7; W++)
            for (int seed = 0; seed < 40; seed++) {
                for (size_t k = 0; k < nc; k++) per_class[k] = (seed * 7 + (int)k * 13) % 23;
                int want[8][4], tot[8] = {0};
                for (size_t j = 0; j < W; j++) dist_dispatch_share(per_class, nc, W, j, want[j]);
                for (size_t k = 0; k < nc; k++) {
                    int sum = 0, lo = 1 << 30, hi = -1;
                    for (size_t j = 0; j < W; j++) {
                        sum += want[j][k];
                        lo = want[j][k] < lo ? want[j][k] : lo;
                        hi = want[j][k] > hi ? want[j][k] : hi;
                        tot[j] += want[j][k];
                    }
                    cr_assert_eq(sum, per_class[k]);
                    cr_assert_leq(hi - lo, 1);
                }
                int lo = 1 << 30, hi = -1;
                for (size_t j = 0; j < W; j++) {
                    lo = tot[j] < lo ? tot[j] : lo;
                    hi = tot[j] > hi ? tot[j] : hi;
                }
                cr_assert_leq(hi - lo, 1, "nc %zu W %zu seed %d", nc, W, seed);
            }
}

/* Locust's UsersDispatcher, 3 workers, A and B of equal weight, 7 users:
 * A 4, B 3 in total, worker totals 3, 2, 2 (Locust: {A2 B1, A1 B1, A1 B1}). */
Test(dist_dispatch, locust_totals)
{
    int per_class[2] = {4, 3}, want[3][2];
    for (size_t j = 0; j < 3; j++) dist_dispatch_share(per_class, 2, 3, j, want[j]);
    cr_assert_eq(want[0][0] + want[0][1], 3);
    cr_assert_eq(want[1][0] + want[1][1], 2);
    cr_assert_eq(want[2][0] + want[2][1], 2);
    cr_assert_eq(want[0][0], 2);
}
