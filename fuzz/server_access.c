/* libFuzzer: the access-control parsers read client bytes (Authorization,
 * X-Request-Id) and operator files (the token file, `rate-limit`). The input
 * goes whole through each: as a token file, an Authorization value, a
 * request id and a rate. Nothing may crash or read out of bounds, and what
 * the parsers accept must hold their own rules. */
#include "server/access.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_token(const char *tok, size_t n, void *ctx)
{
    (void)ctx;
    if (n == 0 || n > ACCESS_TOKEN_MAX) abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)tok[i] <= ' ' || tok[i] == 0x7f) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact-size copies: ASan sees any read past the end */
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    memcpy(s, data, size);
    access_parse_tokens(s, size, check_token, NULL);
    const char *tok;
    size_t n;
    if (access_parse_bearer(s, size, &tok, &n) == 0) {
        if (n == 0 || tok < s || tok + n > s + size) abort();
        if (access_rid_ok(tok, n) && n > ACCESS_RID_MAX) abort();
    }
    access_rid_ok(s, size);
    char *z = malloc(size + 1);
    if (z) {
        memcpy(z, data, size);
        z[size] = 0;
        double rate, burst;
        if (access_parse_rate(z, &rate, &burst) == 0 && (!(rate > 0) || !(burst >= 1))) abort();
        free(z);
    }
    free(s);
    return 0;
}
