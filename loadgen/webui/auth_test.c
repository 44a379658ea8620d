#include <criterion/criterion.h>
#include <string.h>

#include "loadgen/webui/auth.h"

static int check(const webui_auth *a, const char *v)
{
    return webui_auth_check(a, v, v ? strlen(v) : 0);
}

Test(webui_auth, only_the_exact_credentials_pass)
{
    webui_auth a;
    char err[128];
    cr_assert_eq(webui_auth_init(&a, "admin:s3cret!", err, sizeof(err)), 0);
    cr_assert(check(&a, "Basic YWRtaW46czNjcmV0IQ=="));    /* admin:s3cret! */
    cr_assert(check(&a, "basic   YWRtaW46czNjcmV0IQ== ")); /* scheme is case-insensitive */
    cr_assert_not(check(&a, NULL));
    cr_assert_not(check(&a, ""));
    cr_assert_not(check(&a, "Basic"));
    cr_assert_not(check(&a, "Basic YWRtaW46czNjcmV0"));     /* admin:s3cret */
    cr_assert_not(check(&a, "Basic YWRtaW46czNjcmV0IXg=")); /* admin:s3cret!x */
    cr_assert_not(check(&a, "Bearer YWRtaW46czNjcmV0IQ=="));
    cr_assert_not(check(&a, "BasicYWRtaW46czNjcmV0IQ=="));
    cr_assert_not(check(&a, "Basic YWRtaW46czNjcmV0IQ"));    /* no padding */
    cr_assert_not(check(&a, "Basic YWRtaW46czNjcmV0IQ=a=")); /* data after padding */
}

Test(webui_auth, off_lets_everything_through_and_bad_specs_are_refused)
{
    webui_auth a;
    char err[128];
    cr_assert_eq(webui_auth_init(&a, NULL, err, sizeof(err)), 0);
    cr_assert(check(&a, NULL));
    cr_assert_eq(webui_auth_init(&a, "nocolon", err, sizeof(err)), -1);
    cr_assert(strstr(err, "username:password"), "%s", err);
    cr_assert_eq(webui_auth_init(&a, "a:b:c", err, sizeof(err)), -1);
    cr_assert_eq(webui_auth_init(&a, ":", err, sizeof(err)), 0);
    cr_assert(check(&a, "Basic Og==")); /* ":" */
}

Test(webui_auth, base64_is_strict_and_bounded)
{
    unsigned char out[8];
    cr_assert_eq(webui_base64_decode("", 0, out, sizeof(out)), 0);
    cr_assert_eq(webui_base64_decode("YQ==", 4, out, sizeof(out)), 1);
    cr_assert_eq(out[0], 'a');
    cr_assert_eq(webui_base64_decode("YWI=", 4, out, sizeof(out)), 2);
    cr_assert_eq(webui_base64_decode("YWJj", 4, out, sizeof(out)), 3);
    cr_assert_eq(webui_base64_decode("Y===", 4, out, sizeof(out)), -1);
    cr_assert_eq(webui_base64_decode("YQ==YQ==", 8, out, sizeof(out)), -1);
    cr_assert_eq(webui_base64_decode("YWJj YWJj", 9, out, sizeof(out)), -1);
    cr_assert_eq(webui_base64_decode("YWJjYWJjYWJj", 12, out, sizeof(out)), -1); /* 9 > 8 */
}
