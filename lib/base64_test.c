#include "lib/base64.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static ssize_t dec(const char *s, uint8_t *out, size_t *bad)
{
    return base64_decode(s, strlen(s), out, bad);
}

Test(base64, rfc4648_vectors_padded_and_unpadded)
{
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *padded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *bare[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        uint8_t out[16];
        ssize_t n = dec(padded[i], out, NULL);
        cr_assert_eq(n, (ssize_t)strlen(plain[i]), "%s", padded[i]);
        cr_assert(!memcmp(out, plain[i], (size_t)n));
        n = dec(bare[i], out, NULL);
        cr_assert_eq(n, (ssize_t)strlen(plain[i]), "%s", bare[i]);
        cr_assert(!memcmp(out, plain[i], (size_t)n));
    }
}

Test(base64, every_byte_value_round_trips_in_both_alphabets_with_line_breaks)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t raw[256];
    for (int i = 0; i < 256; i++) raw[i] = (uint8_t)i;
    char enc[400], url[400];
    size_t e = 0;
    for (int i = 0; i < 256; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (i + 1 < 256 ? raw[i + 1] : 0) << 8 |
                     (i + 2 < 256 ? raw[i + 2] : 0);
        enc[e++] = std[v >> 18 & 63];
        enc[e++] = std[v >> 12 & 63];
        enc[e++] = i + 1 < 256 ? std[v >> 6 & 63] : '=';
        enc[e++] = i + 2 < 256 ? std[v & 63] : '=';
        if (e % 77 == 76) enc[e++] = '\n'; /* MIME-style line breaks */
    }
    enc[e] = 0;
    for (size_t i = 0; i <= e; i++) url[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
    uint8_t out[300];
    cr_assert_eq(dec(enc, out, NULL), 256);
    cr_assert(!memcmp(out, raw, 256));
    cr_assert_eq(dec(url, out, NULL), 256);
    cr_assert(!memcmp(out, raw, 256));
    cr_assert_leq(256, base64_decoded_max(e));
}

Test(base64, bad_input_is_refused_at_the_offending_character)
{
    static const struct {
        const char *s;
        size_t at;
    } bad[] = {
        {"Zm9v!", 4}, {"Zm9vY", 4},    {"Zg=", 2},     {"Zg===", 4}, {"Zm9v=", 4},
        {"Z===", 1},  {"Zg==Zg==", 4}, {"Zm\x80v", 2}, {"Zm9\"", 3},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t out[16];
        size_t at = 999;
        cr_assert_eq(dec(bad[i].s, out, &at), -EINVAL, "%s", bad[i].s);
        cr_assert_eq(at, bad[i].at, "%s: at %zu", bad[i].s, at);
    }
}
