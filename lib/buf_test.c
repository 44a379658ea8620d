#include "buf.h"

#include <criterion/criterion.h>
#include <string.h>

Test(buf, printf_grows_past_the_stack_scratch)
{
    buf b = BUF_INIT;
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(buf_printf(&b, "%s|%d", big, 42), 0);
    cr_assert_eq(b.len, 999 + 3);
    cr_assert_str_eq(b.data + 999, "|42");
    buf_free(&b);
}

Test(buf, json_str_escapes_quotes_controls_and_backslashes)
{
    buf b = BUF_INIT;
    const char in[] = "a\"b\\c\n\x01";
    cr_assert_eq(buf_json_str(&b, in, sizeof(in) - 1), 0);
    cr_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    buf_free(&b);
}

Test(buf, consume_keeps_the_tail)
{
    buf b = BUF_INIT;
    buf_puts(&b, "hello world");
    buf_consume(&b, 6);
    cr_assert_str_eq(b.data, "world");
    buf_consume(&b, 100);
    cr_assert_eq(b.len, 0);
    buf_free(&b);
}
