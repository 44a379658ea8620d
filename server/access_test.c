#include "server/access.h"

#include <criterion/criterion.h>
#include <string.h>

static char seen[8][64];
static int nseen;

static void collect(const char *tok, size_t n, void *ctx)
{
    (void)ctx;
    if (nseen < 8 && n < 64) {
        memcpy(seen[nseen], tok, n);
        seen[nseen][n] = 0;
    }
    nseen++;
}

Test(access, token_file_lines)
{
    static const char f[] = "# comment\n\n  alpha  \r\nbeta/2==\n\t#not a token either\nlast";
    nseen = 0;
    cr_assert_eq(access_parse_tokens(f, sizeof(f) - 1, collect, NULL), 3);
    cr_assert_str_eq(seen[0], "alpha");
    cr_assert_str_eq(seen[1], "beta/2==");
    cr_assert_str_eq(seen[2], "last");
    cr_assert_eq(access_parse_tokens("ok\ntwo words\n", 13, NULL, NULL), -2);
    cr_assert_eq(access_parse_tokens("a\x01b", 3, NULL, NULL), -1);
    cr_assert_eq(access_parse_tokens("\n# only\n", 8, NULL, NULL), 0);
}

Test(access, bearer)
{
    const char *t;
    size_t n;
    cr_assert_eq(access_parse_bearer("Bearer abc.DEF-1~+/==", 21, &t, &n), 0);
    cr_assert_eq(n, 14);
    cr_assert_eq(memcmp(t, "abc.DEF-1~+/==", 14), 0);
    cr_assert_eq(access_parse_bearer("  bearer \t tok  ", 16, &t, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(access_parse_bearer("Basic YTpi", 10, &t, &n), -1);
    cr_assert_eq(access_parse_bearer("Bearer", 6, &t, &n), -1);
    cr_assert_eq(access_parse_bearer("Bearer ", 7, &t, &n), -1);
    cr_assert_eq(access_parse_bearer("Bearerabc", 9, &t, &n), -1);
    cr_assert_eq(access_parse_bearer("Bearer a b", 10, &t, &n), -1);
    cr_assert_eq(access_parse_bearer("Bearer a=b", 10, &t, &n), -1); /* '=' only at the end */
    cr_assert_eq(access_parse_bearer("Bearer =ab", 10, &t, &n), -1);
}

Test(access, request_id)
{
    cr_assert(access_rid_ok("abc-123.XYZ:_+/=", 16));
    cr_assert(!access_rid_ok("", 0));
    cr_assert(!access_rid_ok("a b", 3));
    cr_assert(!access_rid_ok("a\"b", 3));
    char big[65];
    memset(big, 'a', sizeof(big));
    cr_assert(access_rid_ok(big, 64));
    cr_assert(!access_rid_ok(big, 65));
}

Test(access, rate)
{
    double r, b;
    cr_assert_eq(access_parse_rate("10/s", &r, &b), 0);
    cr_assert_float_eq(r, 10.0, 1e-9);
    cr_assert_float_eq(b, 10.0, 1e-9);
    cr_assert_eq(access_parse_rate("120/m,burst=5", &r, &b), 0);
    cr_assert_float_eq(r, 2.0, 1e-9);
    cr_assert_float_eq(b, 5.0, 1e-9);
    cr_assert_eq(access_parse_rate("0.5/s", &r, &b), 0);
    cr_assert_float_eq(b, 1.0, 1e-9); /* at least one request fits */
    cr_assert_eq(access_parse_rate("10", &r, &b), -1);
    cr_assert_eq(access_parse_rate("10/h", &r, &b), -1);
    cr_assert_eq(access_parse_rate("0/s", &r, &b), -1);
    cr_assert_eq(access_parse_rate("10/s,burst=0", &r, &b), -1);
    cr_assert_eq(access_parse_rate("10/s,", &r, &b), -1);
    cr_assert_eq(access_parse_rate("10/sx", &r, &b), -1);
    cr_assert_eq(access_parse_rate("nan/s", &r, &b), -1);
}
