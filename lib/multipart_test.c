#include "lib/multipart.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

static int parse(const char *body, size_t len, multipart_part *p, int max, char *err)
{
    return multipart_parse(body, len, "XyZ", 3, p, max, err, 128);
}

#define S(s) s, sizeof(s) - 1

Test(multipart, boundary_from_content_type)
{
    const char *b;
    size_t n;
    cr_assert_eq(multipart_boundary(S("multipart/form-data; boundary=abc123"), &b, &n), 0);
    cr_assert_eq(n, 6);
    cr_assert(!memcmp(b, "abc123", 6));
    cr_assert_eq(multipart_boundary(S("Multipart/Form-Data;charset=x; BOUNDARY=\"a b:c\""), &b, &n),
                 0);
    cr_assert_eq(n, 5);
    cr_assert(!memcmp(b, "a b:c", 5));
    cr_assert_eq(multipart_boundary(S("multipart/form-data"), &b, &n), -EINVAL);
    cr_assert_eq(multipart_boundary(S("multipart/mixed; boundary=x"), &b, &n), -EINVAL);
    cr_assert_eq(multipart_boundary(S("multipart/form-dataX; boundary=x"), &b, &n), -EINVAL);
    cr_assert_eq(multipart_boundary(S("multipart/form-data; boundary="), &b, &n), -EINVAL);
    cr_assert_eq(multipart_boundary(S("multipart/form-data; boundary=\"abc"), &b, &n), -EINVAL);
    char longb[128] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'a', 71);
    cr_assert_eq(multipart_boundary(longb, strlen(longb), &b, &n), -EINVAL);
}

Test(multipart, curl_style_body_with_a_field_and_a_binary_file)
{
    static const char body[] =
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"note\"\r\n"
        "\r\n"
        "hello\r\n"
        "--XyZ\r\n"
        "content-disposition: form-data; name=\"image\"; filename=\"a b.png\"\r\n"
        "Content-Type: image/png\r\n"
        "\r\n"
        "\x89PNG\r\n--Xy\x00\r\n\r\n"
        "\r\n--XyZ--\r\n";
    multipart_part p[4];
    char err[128] = "";
    int n = parse(body, sizeof(body) - 1, p, 4, err);
    cr_assert_eq(n, 2, "%s", err);
    cr_assert_eq(p[0].name_len, 4);
    cr_assert(!memcmp(p[0].name, "note", 4));
    cr_assert_null(p[0].filename);
    cr_assert_eq(p[0].len, 5);
    cr_assert(!memcmp(p[0].data, "hello", 5));
    cr_assert_eq(p[1].filename_len, 7);
    cr_assert(!memcmp(p[1].filename, "a b.png", 7));
    cr_assert_eq(p[1].name_len, 5);
    cr_assert(!memcmp(p[1].name, "image", 5));
    cr_assert_eq(p[1].ctype_len, 9);
    cr_assert_eq(p[1].len, 15, "binary content with CRLF, '--' and NUL kept: %zu", p[1].len);
    cr_assert(!memcmp(p[1].data, "\x89PNG\r\n--Xy\x00\r\n\r\n", 15));
}

Test(multipart, preamble_epilogue_and_empty_parts)
{
    static const char body[] = "preamble\r\n--XyZ  \r\n\r\n\r\n--XyZ--\r\nepilogue";
    multipart_part p[2];
    char err[128] = "";
    cr_assert_eq(parse(body, sizeof(body) - 1, p, 2, err), 1, "%s", err);
    cr_assert_eq(p[0].len, 0);
    cr_assert_null(p[0].name);
    cr_assert_eq(parse(S("--XyZ--"), p, 2, err), 0);
}

Test(multipart, broken_bodies_name_the_problem)
{
    static const struct {
        const char *body;
        const char *needle;
    } bad[] = {
        {"just text", "no --boundary"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\ndata", "no closing boundary"},
        {"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\ndata\r\n--XyZ", "end its line"},
        {"--XyZ\r\nContent-Disposition: form-data", "not ended by an empty line"},
        {"--XyZ\r\nno colon here\r\n\r\n\r\n--XyZ--", "without a name"},
        {"--XyZ\r\nContent-Disposition: attachment\r\n\r\n\r\n--XyZ--", "not form-data"},
        {"--XyZjunk\r\n\r\n\r\n--XyZ--", "end its line"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        multipart_part p[4];
        char err[128] = "";
        cr_assert_eq(parse(bad[i].body, strlen(bad[i].body), p, 4, err), -EINVAL, "%s",
                     bad[i].body);
        cr_assert(strstr(err, bad[i].needle), "%s: %s", bad[i].body, err);
    }
    multipart_part p[1];
    char err[128];
    static const char two[] = "--XyZ\r\n\r\na\r\n--XyZ\r\n\r\nb\r\n--XyZ--";
    cr_assert_eq(parse(two, sizeof(two) - 1, p, 1, err), -E2BIG);
}
