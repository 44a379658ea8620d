#include "pct.h"

int pct_hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long pct_decode(const char *in, size_t n, char *out, size_t cap, int flags)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)in[i];
        if (ch == '+' && (flags & PCT_PLUS)) {
            ch = ' ';
        } else if (ch == '%') {
            int hi = i + 2 < n ? pct_hexval((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < n ? pct_hexval((unsigned char)in[i + 2]) : -1;
            if (hi >= 0 && lo >= 0) {
                ch = hi * 16 + lo;
                i += 2;
            } else if (!(flags & PCT_LENIENT)) {
                return PCT_BAD;
            }
        }
        if (ch == 0 && (flags & PCT_NO_NUL)) return PCT_BAD;
        if (o >= cap) return PCT_TOO_LONG;
        out[o++] = (char)ch;
    }
    return (long)o;
}
