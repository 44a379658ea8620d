#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_reset(buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

int buf_reserve(buf *b, size_t extra)
{
    if (extra > (size_t)-1 / 2 - b->len) return -ENOMEM;
    size_t need = b->len + extra + 1; /* room for the terminator */
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int buf_append(buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len)) return -ENOMEM;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, cp);
    va_end(cp);
    if (n < 0) return -EINVAL;
    if ((size_t)n < sizeof(tmp)) return buf_append(b, tmp, (size_t)n);
    if (buf_reserve(b, (size_t)n)) return -ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not one
 * (overlong forms, surrogates, code points past U+10FFFF, truncated). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp, min;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len) return 0;
    cp = c & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    return cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0 : len;
}

int buf_json_str(buf *b, const char *s, size_t len)
{
    size_t start = b->len;
    int rc = buf_append(b, "\"", 1);
    for (size_t i = 0; i < len && !rc;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = 1;
        switch (c) {
        case '"': rc = buf_append(b, "\\\"", 2); break;
        case '\\': rc = buf_append(b, "\\\\", 2); break;
        case '\n': rc = buf_append(b, "\\n", 2); break;
        case '\r': rc = buf_append(b, "\\r", 2); break;
        case '\t': rc = buf_append(b, "\\t", 2); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                rc = buf_printf(b, "\\u%04x", c);
            } else if (c < 0x80) {
                rc = buf_append(b, &s[i], 1);
            } else {
                /* Text from files, apps and clients: a byte that does not
                 * start valid UTF-8 becomes U+FFFD, so strict parsers accept
                 * the document. A bad sequence is replaced one byte at a time. */
                n = utf8_seq((const unsigned char *)s + i, len - i);
                rc = n ? buf_append(b, &s[i], n) : buf_append(b, "\xEF\xBF\xBD", 3);
                if (!n) n = 1;
            }
        }
        i += n;
    }
    if (!rc) rc = buf_append(b, "\"", 1);
    if (rc) {
        b->len = start;
        if (b->data) b->data[start] = '\0';
    }
    return rc;
}

int buf_json_cstr(buf *b, const char *s)
{
    return buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

void buf_consume(buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}
