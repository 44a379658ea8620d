#include "json.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(json_doc *d, const char *s)
{
    char err[128];
    return json_parse(d, s, strlen(s), NULL, err, sizeof(err));
}

Test(json, nested_object_tokens_link_siblings_past_subtrees)
{
    json_doc d;
    const char *s = "{\"a\": [1, [2, 3]], \"b\": {\"c\": null}, \"d\": \"x\"}";
    cr_assert_eq(parse(&d, s), 0);
    cr_assert_eq(d.tok[0].type, JSON_OBJECT);
    cr_assert_eq(d.tok[0].count, 3);
    cr_assert_eq(d.tok[0].next, d.n);
    int a = json_obj_get(&d, 0, "a");
    cr_assert_eq(d.tok[a].type, JSON_ARRAY);
    cr_assert_eq(d.tok[a].count, 2);
    int b = json_obj_get(&d, 0, "b");
    cr_assert_eq(d.tok[b].type, JSON_OBJECT);
    cr_assert_eq(d.tok[json_obj_get(&d, b, "c")].type, JSON_NULL);
    cr_assert(json_str_eq(&d, json_obj_get(&d, 0, "d"), "x"));
    cr_assert_eq(json_obj_get(&d, 0, "zz"), -1);
    json_doc_free(&d);
}

Test(json, rejects_every_non_strict_form)
{
    const char *bad[] = {"",         "[1,]",    "{\"a\":1,}",  "[01]",     "[1.]",  "[.5]",
                         "[1e]",     "NaN",     "[Infinity]",  "{'a':1}",  "[1 2]", "{\"a\" 1}",
                         "\"\x01\"", "\"\\x\"", "\"\\ud800\"", "\"\xff\"", "[1] x", "{\"a\":}",
                         "[",        "{",       "tru",         "-",        "[,1]",  "\"\\u12\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_doc d;
        char err[128];
        cr_assert_eq(json_parse(&d, bad[i], strlen(bad[i]), NULL, err, sizeof(err)), -EINVAL,
                     "accepted %s", bad[i]);
        cr_assert(strstr(err, "at byte") != NULL, "error without position: %s", err);
        cr_assert_null(d.tok);
    }
}

Test(json, accepts_valid_edge_forms)
{
    const char *good[] = {"0",
                          "-0",
                          "1e5",
                          "-1.5E-3",
                          "\"\\ud83d\\ude00\"",
                          "[]",
                          "{}",
                          " [ ] ",
                          "\"\xc3\xa9\"",
                          "[[[]]]",
                          "true",
                          "{\"\":0}",
                          "[null,false,true]"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        json_doc d;
        cr_assert_eq(parse(&d, good[i]), 0, "rejected %s", good[i]);
        json_doc_free(&d);
    }
}

Test(json, depth_limit_fails_with_e2big_not_a_crash)
{
    char s[10001];
    memset(s, '[', 10000);
    s[10000] = '\0';
    json_doc d;
    json_limits lim = {.max_depth = 32};
    cr_assert_eq(json_parse(&d, s, strlen(s), &lim, NULL, 0), -E2BIG);
    cr_assert_eq(json_parse(&d, s, strlen(s), NULL, NULL, 0), -E2BIG);
}

Test(json, token_limit_bounds_memory)
{
    json_doc d;
    json_limits lim = {.max_tokens = 4};
    cr_assert_eq(json_parse(&d, "[1,2,3]", 7, &lim, NULL, 0), 0);
    json_doc_free(&d);
    char err[64];
    cr_assert_eq(json_parse(&d, "[1,2,3,4]", 9, &lim, err, sizeof(err)), -E2BIG);
    cr_assert(strstr(err, "too many") != NULL);
}

Test(json, numbers_convert_exactly_like_strtod)
{
    const char *nums[] = {"0.1",
                          "3.14159265358979",
                          "-2.5e-7",
                          "1e22",
                          "1e23",
                          "123456789012345678",
                          "0.30000000000000004",
                          "-0",
                          "4.9e-324",
                          "1.7976931348623157e308",
                          "0.000001",
                          "12345.6789e-3"};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        json_doc d;
        cr_assert_eq(parse(&d, nums[i]), 0);
        double v;
        cr_assert_eq(json_num_f64(&d, 0, &v), 0);
        double want = strtod(nums[i], NULL);
        cr_assert(memcmp(&v, &want, sizeof(v)) == 0, "%s: %.17g vs %.17g", nums[i], v, want);
        json_doc_free(&d);
    }
    json_doc d;
    cr_assert_eq(parse(&d, "1e999"), 0);
    double v;
    cr_assert_eq(json_num_f64(&d, 0, &v), -ERANGE);
    json_doc_free(&d);
}

Test(json, integers_check_range_and_reject_fractions)
{
    json_doc d;
    cr_assert_eq(parse(&d, "[9223372036854775807,-9223372036854775808,9223372036854775808,1.0,"
                           "18446744073709551615,-1]"),
                 0);
    int64_t i;
    uint64_t u;
    cr_assert_eq(json_num_i64(&d, 1, &i), 0);
    cr_assert_eq(i, INT64_MAX);
    cr_assert_eq(json_num_i64(&d, 2, &i), 0);
    cr_assert_eq(i, INT64_MIN);
    cr_assert_eq(json_num_i64(&d, 3, &i), -ERANGE);
    cr_assert_eq(json_num_i64(&d, 4, &i), -EINVAL);
    cr_assert_eq(json_num_u64(&d, 5, &u), 0);
    cr_assert_eq(u, UINT64_MAX);
    cr_assert_eq(json_num_u64(&d, 6, &u), -ERANGE);
    cr_assert_eq(json_num_i64(&d, 0, &i), -EINVAL); /* the array itself */
    json_doc_free(&d);
}

Test(json, strings_unescape_to_utf8_and_respect_capacity)
{
    json_doc d;
    cr_assert_eq(parse(&d, "\"a\\n\\u00e9\\ud83d\\ude00\\\"\""), 0);
    char out[32];
    int n = json_str_copy(&d, 0, out, sizeof(out));
    cr_assert_eq(n, 1 + 1 + 2 + 4 + 1);
    cr_assert_str_eq(out, "a\n\xc3\xa9\xf0\x9f\x98\x80\"");
    cr_assert_eq(json_str_copy(&d, 0, out, 4), -E2BIG);
    json_doc_free(&d);
    cr_assert_eq(parse(&d, "\"a\\u0000b\""), 0);
    cr_assert_eq(json_str_copy(&d, 0, out, sizeof(out)), -EINVAL);
    json_doc_free(&d);
    cr_assert_eq(parse(&d, "{\"k\\u0065y\":1}"), 0);
    cr_assert_eq(json_obj_get(&d, 0, "key"), 2);
    json_doc_free(&d);
}

Test(json, float_formatting_round_trips_bit_exactly)
{
    unsigned seed = 7;
    for (int k = 0; k < 20000; k++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t bits = seed ^ (seed << 13);
        float f;
        memcpy(&f, &bits, sizeof(f));
        if (!isfinite(f)) continue;
        char s[16];
        int n = json_fmt_f32(s, f);
        cr_assert(n > 0 && n < 16);
        json_doc d;
        cr_assert_eq(json_parse(&d, s, (size_t)n, NULL, NULL, 0), 0, "%s", s);
        double v;
        cr_assert_eq(json_num_f64(&d, 0, &v), 0);
        float back = (float)v;
        cr_assert(memcmp(&back, &f, 4) == 0, "%s", s);
        json_doc_free(&d);
    }
    char s[16];
    json_fmt_f32(s, NAN);
    cr_assert_str_eq(s, "null");
    json_fmt_f32(s, 0.5f);
    cr_assert_str_eq(s, "0.5");
}

Test(json, large_numeric_array_leaves_are_contiguous_tokens)
{
    size_t n = 100000;
    char *s = malloc(n * 12 + 8);
    size_t len = 0;
    s[len++] = '[';
    for (size_t i = 0; i < n; i++) len += (size_t)sprintf(s + len, "%s%zu.25", i ? "," : "", i);
    s[len++] = ']';
    json_doc d;
    cr_assert_eq(json_parse(&d, s, len, NULL, NULL, 0), 0);
    cr_assert_eq(d.tok[0].count, n);
    cr_assert_eq(d.n, n + 1);
    double v;
    cr_assert_eq(json_num_f64(&d, 12346, &v), 0);
    cr_assert_eq(v, 12345.25);
    json_doc_free(&d);
    free(s);
}

Test(json, f32_conversion_equals_strtof_for_printed_floats)
{
    unsigned seed = 99;
    const char *fmts[] = {"%.17g", "%.9g", "%.6g", "%.3e", "%.12f"};
    for (int k = 0; k < 40000; k++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t bits = seed ^ (seed >> 7) << 9;
        float f;
        memcpy(&f, &bits, sizeof(f));
        if (!isfinite(f)) continue;
        char s[64];
        int n = snprintf(s, sizeof(s), fmts[k % 5], (double)f);
        json_doc d;
        cr_assert_eq(json_parse(&d, s, (size_t)n, NULL, NULL, 0), 0, "%s", s);
        float got;
        int rc = json_num_f32(&d, 0, &got);
        float want = strtof(s, NULL);
        if (isinf(want))
            cr_assert_eq(rc, -ERANGE, "%s", s);
        else
            cr_assert(rc == 0 && memcmp(&got, &want, 4) == 0, "%s: %a vs %a", s, got, want);
        json_doc_free(&d);
    }
}

Test(json, nonfinite_literals_only_when_allowed)
{
    const char *s = "[NaN,Infinity,-Infinity,1]";
    json_doc d;
    char err[128];
    cr_assert_eq(json_parse(&d, s, strlen(s), NULL, err, sizeof(err)), -EINVAL,
                 "strict by default");
    json_limits lim = {.allow_nonfinite = 1};
    cr_assert_eq(json_parse(&d, s, strlen(s), &lim, err, sizeof(err)), 0, "%s", err);
    float f;
    double v;
    int64_t i;
    cr_assert_eq(json_num_f32(&d, 1, &f), 0);
    cr_assert(isnan(f));
    cr_assert_eq(json_num_f64(&d, 2, &v), 0);
    cr_assert(v == INFINITY);
    cr_assert_eq(json_num_f32(&d, 3, &f), 0);
    cr_assert(f == -INFINITY);
    cr_assert_eq(json_num_i64(&d, 1, &i), -EINVAL);
    cr_assert(d.tok[1].flags & JSON_TOK_NONFINITE);
    cr_assert(!(d.tok[4].flags & JSON_TOK_NONFINITE));
    json_doc_free(&d);
    static const char *bad[] = {"[nan]", "[NaNa]", "[-Inf]", "[Infinit]", "[+Infinity]"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        cr_assert_eq(json_parse(&d, bad[k], strlen(bad[k]), &lim, err, sizeof(err)), -EINVAL, "%s",
                     bad[k]);
}
