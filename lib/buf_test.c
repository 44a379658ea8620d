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

static void json_is(const char *in, size_t n, const char *want)
{
    buf b = BUF_INIT;
    cr_assert_eq(buf_json_str(&b, in, n), 0);
    cr_assert_str_eq(b.data, want, "input of %zu bytes", n);
    buf_free(&b);
}

#define FFFD "\xEF\xBF\xBD"

Test(buf, json_str_keeps_valid_utf8)
{
    json_is("\xC3\xA9", 2, "\"\xC3\xA9\"");                 /* U+00E9 */
    json_is("\xE2\x82\xAC", 3, "\"\xE2\x82\xAC\"");         /* U+20AC */
    json_is("\xF0\x9F\x98\x80", 4, "\"\xF0\x9F\x98\x80\""); /* U+1F600 */
    json_is("\xF4\x8F\xBF\xBF", 4, "\"\xF4\x8F\xBF\xBF\""); /* U+10FFFF, the last */
    json_is("\xED\x9F\xBF", 3, "\"\xED\x9F\xBF\"");         /* U+D7FF, below the surrogates */
    json_is("a\x7f", 2, "\"a\\u007f\"");
    json_is("x\0y", 3, "\"x\\u0000y\"");
}

Test(buf, json_str_replaces_invalid_utf8_byte_by_byte)
{
    json_is("\xC0\xAF", 2, "\"" FFFD FFFD "\"");                   /* overlong '/' */
    json_is("\xE0\x80\xAF", 3, "\"" FFFD FFFD FFFD "\"");          /* overlong, 3 bytes */
    json_is("\xF0\x80\x80\xAF", 4, "\"" FFFD FFFD FFFD FFFD "\""); /* overlong, 4 bytes */
    json_is("\xED\xA0\x80", 3, "\"" FFFD FFFD FFFD "\"");          /* U+D800, a surrogate */
    json_is("\xED\xBF\xBF", 3, "\"" FFFD FFFD FFFD "\"");          /* U+DFFF */
    json_is("\xF4\x90\x80\x80", 4, "\"" FFFD FFFD FFFD FFFD "\""); /* U+110000 */
    json_is("\xF5\x80", 2, "\"" FFFD FFFD "\"");
    json_is("\xFF", 1, "\"" FFFD "\"");
    json_is("\x80"
            "a",
            2, "\"" FFFD "a\"");                   /* a lone continuation byte */
    json_is("a\xE2\x82", 3, "\"a" FFFD FFFD "\""); /* truncated at the end */
    json_is("\xE2\x82"
            "b",
            3, "\"" FFFD FFFD "b\"");         /* cut short by ASCII */
    json_is("\xC3\"", 2, "\"" FFFD "\\\"\""); /* the quote is not swallowed */
}

Test(buf, json_cstr_stops_at_nul_and_takes_null)
{
    buf b = BUF_INIT;
    cr_assert_eq(buf_json_cstr(&b, "a\xFF"), 0);
    cr_assert_eq(buf_json_cstr(&b, NULL), 0);
    cr_assert_str_eq(b.data, "\"a" FFFD "\"\"\"");
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
