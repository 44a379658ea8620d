/* libFuzzer target for lib/pct: pct_decode never writes past cap, never
 * returns more than it was given, decodes in place as it does into another
 * buffer, keeps its flags' promises (no NUL under PCT_NO_NUL, no PCT_BAD
 * under PCT_LENIENT alone), and undoes a full %XX encoding of its result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/pct.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int flags = data[0] & 7;
    size_t n = size - 2, cap = data[1] % 4 == 0 ? n / 2 : n;
    const char *in = (const char *)data + 2;
    /* Exactly cap bytes of room: ASan flags any write past it. */
    char *out = malloc(cap ? cap : 1), *inplace = malloc(n ? n : 1);
    char *enc = malloc(3 * n + 1), *back = malloc(n ? n : 1);
    if (!out || !inplace || !enc || !back) goto done;
    long r = pct_decode(in, n, out, cap, flags);
    if (r < PCT_TOO_LONG || r > (long)cap || r > (long)n) abort();
    if (r == PCT_BAD && (flags & PCT_LENIENT) && !(flags & PCT_NO_NUL)) abort();
    if (r == PCT_TOO_LONG && cap >= n) abort();
    memcpy(inplace, in, n);
    long r2 = pct_decode(inplace, n, inplace, n, flags);
    if (r >= 0 && (r2 != r || memcmp(out, inplace, (size_t)r))) abort();
    if (r >= 0) {
        if ((flags & PCT_NO_NUL) && memchr(out, 0, (size_t)r)) abort();
        static const char hex[] = "0123456789aBcDeF";
        for (long i = 0; i < r; i++) {
            unsigned char c = (unsigned char)out[i];
            enc[3 * i] = '%';
            enc[3 * i + 1] = hex[c >> 4];
            enc[3 * i + 2] = hex[c & 15];
        }
        long r3 = pct_decode(enc, 3 * (size_t)r, back, n, 0);
        if (r3 != r || memcmp(back, out, (size_t)r)) abort();
    }
    for (int c = 0; c < 256; c++) {
        int v = pct_hexval(c);
        if (v < -1 || v > 15) abort();
    }
done:
    free(out);
    free(inplace);
    free(enc);
    free(back);
    return 0;
}
