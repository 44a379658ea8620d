#include "lib/pct.h"

#include <criterion/criterion.h>
#include <string.h>

static long dec(const char *in, char *out, size_t cap, int flags)
{
    long r = pct_decode(in, strlen(in), out, cap, flags);
    if (r >= 0) out[r] = 0;
    return r;
}

Test(pct, hexval_takes_both_cases_and_nothing_else)
{
    cr_assert_eq(pct_hexval('0'), 0);
    cr_assert_eq(pct_hexval('9'), 9);
    cr_assert_eq(pct_hexval('a'), 10);
    cr_assert_eq(pct_hexval('F'), 15);
    const char *bad = "gG/:@`xX \xff";
    for (const char *p = bad; *p; p++) cr_assert_eq(pct_hexval((unsigned char)*p), -1, "%c", *p);
    cr_assert_eq(pct_hexval(0), -1);
}

Test(pct, decodes_escapes_and_plus_only_when_asked)
{
    char out[64];
    cr_assert_eq(dec("/a%20b%2Fc%2fd+e", out, sizeof(out), 0), 10);
    cr_assert_str_eq(out, "/a b/c/d+e");
    cr_assert_eq(dec("x=a+b%2B", out, sizeof(out), PCT_PLUS), 6);
    cr_assert_str_eq(out, "x=a b+");
    cr_assert_eq(dec("", out, sizeof(out), 0), 0);
}

Test(pct, bad_escapes_are_errors_or_kept_when_lenient)
{
    char out[64];
    const char *bad[] = {"%", "%2", "a%zz", "%g0", "%0g", "ab%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(dec(bad[i], out, sizeof(out), 0), PCT_BAD, "%s", bad[i]);
    cr_assert_eq(dec("a%zz%41%", out, sizeof(out), PCT_LENIENT), 6);
    cr_assert_str_eq(out, "a%zzA%");
    cr_assert_eq(dec("%2", out, sizeof(out), PCT_LENIENT | PCT_PLUS), 2);
    cr_assert_str_eq(out, "%2");
}

Test(pct, nul_is_refused_only_with_no_nul)
{
    char out[64];
    cr_assert_eq(pct_decode("a%00b", 5, out, sizeof(out), 0), 3);
    cr_assert(out[0] == 'a' && out[1] == 0 && out[2] == 'b');
    cr_assert_eq(pct_decode("a%00b", 5, out, sizeof(out), PCT_NO_NUL), PCT_BAD);
    cr_assert_eq(pct_decode("a\0b", 3, out, sizeof(out), PCT_NO_NUL), PCT_BAD, "a raw NUL too");
}

Test(pct, never_writes_past_cap_and_decodes_in_place)
{
    char out[4] = {'x', 'x', 'x', 'x'};
    cr_assert_eq(pct_decode("abcd", 4, out, 3, 0), PCT_TOO_LONG);
    cr_assert_eq(out[3], 'x');
    cr_assert_eq(pct_decode("%41%42%43", 9, out, 3, 0), 3, "escapes count once decoded");
    cr_assert(!memcmp(out, "ABC", 3));
    /* a bad escape is reported before the room runs out, as the web UI wants */
    cr_assert_eq(pct_decode("%zz", 3, out, 0, 0), PCT_BAD);
    char inplace[] = "%7e%2F+x";
    cr_assert_eq(pct_decode(inplace, 8, inplace, 8, PCT_PLUS), 4);
    cr_assert(!memcmp(inplace, "~/ x", 4));
}
