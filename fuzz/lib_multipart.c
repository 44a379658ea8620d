/* libFuzzer target: lib/multipart must split or refuse any body without
 * reading outside it, and every part it returns must lie inside the body. */
#include "lib/multipart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first line is a Content-Type value, the rest the body. */
    const uint8_t *nl = memchr(data, '\n', size);
    size_t clen = nl ? (size_t)(nl - data) : size;
    char *ct = malloc(clen ? clen : 1), *body = malloc(size - clen + 1);
    if (!ct || !body) goto out;
    memcpy(ct, data, clen);
    size_t blen = nl ? size - clen - 1 : 0;
    memcpy(body, nl ? (const char *)nl + 1 : "", blen);
    const char *b = "fuzz";
    size_t bl = 4;
    multipart_boundary(ct, clen, &b, &bl);
    multipart_part p[8];
    char err[128];
    int n = multipart_parse(body, blen, b, bl, p, 8, err, sizeof(err));
    for (int i = 0; i < n; i++) {
        if (p[i].data < body || p[i].data + p[i].len > body + blen) abort();
        if (p[i].name && (p[i].name < body || p[i].name + p[i].name_len > body + blen)) abort();
        if (p[i].filename &&
            (p[i].filename < body || p[i].filename + p[i].filename_len > body + blen))
            abort();
    }
out:
    free(ct);
    free(body);
    return 0;
}
