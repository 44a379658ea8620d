/*
 * pct: hex digits and percent-decoding (RFC 3986 §2.1), for request paths,
 * query strings and form bodies. Each caller states its rules in flags: the
 * path decoders refuse a bad escape and %00, a form reader also takes '+'
 * for a space, a lenient reader keeps a bad escape as the bytes it is.
 */
#ifndef PCT_H
#define PCT_H

#include <stddef.h>

/* The value of the hex digit c (0-9, a-f, A-F), or -1. */
int pct_hexval(int c);

enum {
    PCT_PLUS = 1,    /* '+' decodes to a space (application/x-www-form-urlencoded) */
    PCT_NO_NUL = 2,  /* a NUL byte in the result (%00, or a raw one) is an error */
    PCT_LENIENT = 4, /* a '%' not followed by two hex digits is kept as it is */
};

enum {
    PCT_BAD = -1,     /* a malformed escape (without PCT_LENIENT), or a NUL with PCT_NO_NUL */
    PCT_TOO_LONG = -2 /* the result does not fit in cap bytes */
};

/* Decodes in[0..n) into out[0..cap) (out may be in: the result is never
 * longer than the input) and returns the length of the result, or PCT_BAD /
 * PCT_TOO_LONG (then out holds a prefix). Nothing is NUL-terminated. */
long pct_decode(const char *in, size_t n, char *out, size_t cap, int flags);

#endif
