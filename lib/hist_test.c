#include "hist.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#define HOUR_US 3600000000LL

Test(hist, rejects_bad_configurations)
{
    cr_assert_null(hist_create(0, 100, 3));
    cr_assert_null(hist_create(10, 15, 3));
    cr_assert_null(hist_create(1, 100, 0));
    cr_assert_null(hist_create(1, 100, 6));
    cr_assert_eq(errno, EINVAL);
}

Test(hist, one_us_to_one_hour_at_3_digits_uses_23552_slots)
{
    hist *h = hist_create(1, HOUR_US, 3);
    cr_assert_not_null(h);
    cr_assert_eq(hist_slots(h), 23552);
    hist_free(h);
}

Test(hist, every_value_is_kept_within_one_part_in_a_thousand)
{
    hist *h = hist_create(1, HOUR_US, 3);
    for (int64_t v = 1; v < HOUR_US; v = v * 3 / 2 + 7) {
        int64_t lo = hist_lowest_equivalent(h, v), hi = hist_highest_equivalent(h, v);
        cr_assert(lo <= v && v <= hi, "v=%lld not in [%lld,%lld]", (long long)v, (long long)lo,
                  (long long)hi);
        cr_assert((double)(hi - lo) <= (double)v / 1000.0 + 1.0, "range too wide at %lld",
                  (long long)v);
    }
    hist_free(h);
}

Test(hist, values_below_2048_are_exact)
{
    hist *h = hist_create(1, HOUR_US, 3);
    for (int64_t v = 0; v < 2048; v++) {
        cr_assert_eq(hist_lowest_equivalent(h, v), v);
        cr_assert_eq(hist_highest_equivalent(h, v), v);
    }
    hist_free(h);
}

Test(hist, counts_min_max_and_mean_are_exact)
{
    hist *h = hist_create(1, HOUR_US, 3);
    for (int i = 1; i <= 1000; i++) hist_record(h, i * 1000);
    cr_assert_eq(hist_count(h), 1000);
    cr_assert_eq(hist_min(h), 1000);
    cr_assert_eq(hist_max(h), 1000000);
    cr_assert_float_eq(hist_mean(h), 500500.0, 1e-6);
    hist_free(h);
}

Test(hist, percentiles_of_a_uniform_ramp_are_within_precision)
{
    hist *h = hist_create(1, HOUR_US, 3);
    for (int i = 1; i <= 100000; i++) hist_record(h, i);
    double ps[] = {50, 90, 99, 99.9, 99.99};
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        double want = ps[k] * 1000.0;
        double got = (double)hist_percentile(h, ps[k]);
        cr_assert(got >= want && got <= want * 1.001 + 1, "p%g: got %g want %g", ps[k], got, want);
    }
    cr_assert_eq(hist_percentile(h, 100), 100000);
    cr_assert_eq(hist_percentile(h, 0), 1);
    hist_free(h);
}

Test(hist, percentile_never_exceeds_the_max)
{
    hist *h = hist_create(1, HOUR_US, 3);
    hist_record(h, 123457);
    cr_assert_eq(hist_percentile(h, 99), 123457);
    cr_assert_eq(hist_percentile(h, 50), 123457);
    hist_free(h);
}

Test(hist, values_above_highest_are_clamped_and_counted)
{
    hist *h = hist_create(1, 1000000, 3);
    hist_record(h, 5000000);
    hist_record(h, -5);
    cr_assert_eq(hist_count(h), 2);
    cr_assert_eq(hist_max(h), 1000000);
    cr_assert_eq(hist_min(h), 0);
    hist_free(h);
}

Test(hist, merge_equals_recording_everything_in_one)
{
    hist *a = hist_create(1, HOUR_US, 3), *b = hist_create(1, HOUR_US, 3);
    hist *all = hist_create(1, HOUR_US, 3);
    srand(7);
    for (int i = 0; i < 20000; i++) {
        int64_t v = rand() % 5000000;
        hist_record(i % 2 ? a : b, v);
        hist_record(all, v);
    }
    hist_add(a, b);
    cr_assert_eq(hist_count(a), hist_count(all));
    cr_assert_eq(hist_min(a), hist_min(all));
    cr_assert_eq(hist_max(a), hist_max(all));
    for (double p = 1; p < 100; p += 1.5)
        cr_assert_eq(hist_percentile(a, p), hist_percentile(all, p), "p%g", p);
    hist_free(a);
    hist_free(b);
    hist_free(all);
}

Test(hist, merge_across_configurations_keeps_counts)
{
    hist *fine = hist_create(1, HOUR_US, 3), *coarse = hist_create(1, HOUR_US, 2);
    for (int i = 1; i <= 1000; i++) hist_record(fine, i * 100);
    hist_add(coarse, fine);
    cr_assert_eq(hist_count(coarse), 1000);
    double p50 = (double)hist_percentile(coarse, 50);
    cr_assert(p50 > 50000 * 0.98 && p50 < 50000 * 1.02, "p50 %g", p50);
    hist_free(fine);
    hist_free(coarse);
}

Test(hist, subtract_gives_the_window_between_two_totals)
{
    hist *total = hist_create(1, HOUR_US, 3), *then = hist_create(1, HOUR_US, 3);
    for (int i = 0; i < 100; i++) hist_record(total, 10);
    hist_add(then, total);
    for (int i = 0; i < 50; i++) hist_record(total, 5000);
    hist_sub(total, then);
    cr_assert_eq(hist_count(total), 50);
    cr_assert_eq(hist_percentile(total, 50), 5000);
    hist_free(total);
    hist_free(then);
}

Test(hist, reset_empties_and_allows_reuse)
{
    hist *h = hist_create(1, HOUR_US, 3);
    hist_record(h, 77);
    hist_reset(h);
    cr_assert_eq(hist_count(h), 0);
    cr_assert_eq(hist_percentile(h, 50), 0);
    hist_record(h, 9);
    cr_assert_eq(hist_percentile(h, 50), 9);
    cr_assert_eq(hist_min(h), 9);
    hist_free(h);
}
