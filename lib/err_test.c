#include "lib/err.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

Test(err, fmt_writes_and_returns_minus_one)
{
    char e[64] = "x";
    cr_assert_eq(err_fmt(e, sizeof(e), "bad '%s' at %d", "k", 3), -1);
    cr_assert_str_eq(e, "bad 'k' at 3");
}

Test(err, fmt_rc_returns_the_code)
{
    char e[64];
    cr_assert_eq(err_fmt_rc(e, sizeof(e), -EINVAL, "n=%d", 5), -EINVAL);
    cr_assert_str_eq(e, "n=5");
    cr_assert_eq(err_fmt_rc(e, sizeof(e), 415, "type"), 415);
}

Test(err, truncates_and_tolerates_no_buffer)
{
    char e[4] = "zzz";
    cr_assert_eq(err_fmt(e, sizeof(e), "%s", "abcdef"), -1);
    cr_assert_str_eq(e, "abc");
    cr_assert_eq(err_fmt(NULL, 0, "%s", "ignored"), -1);
    cr_assert_eq(err_fmt_rc(e, 0, 7, "%s", "ignored"), 7);
    cr_assert_str_eq(e, "abc"); /* errlen 0: untouched */
}
