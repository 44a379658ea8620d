/* libFuzzer target: lib/base64 decodes or refuses any text within the
 * output bound it promises. */
#include "lib/base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    size_t cap = base64_decoded_max(size);
    uint8_t *out = malloc(cap);
    if (s && out) {
        memcpy(s, data, size);
        size_t bad = (size_t)-1;
        ssize_t n = base64_decode(s, size, out, &bad);
        if (n > (ssize_t)cap || (n < 0 && bad >= size) || n < -1000) abort();
    }
    free(s);
    free(out);
    return 0;
}
