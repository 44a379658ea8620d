/*
 * base64.c: a table decoder. Four characters give three bytes; the tail
 * (2 or 3 characters, padded or not) gives one or two.
 */
#include "lib/base64.h"

#include <errno.h>
#include <stdbool.h>

/* 0..63: the value; 64: whitespace (skipped); 65: '='; 255: invalid. */
static uint8_t class_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return (uint8_t)(c - 'A');
    if (c >= 'a' && c <= 'z') return (uint8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9') return (uint8_t)(c - '0' + 52);
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') return 64;
    if (c == '=') return 65;
    return 255;
}

size_t base64_decoded_max(size_t n)
{
    return n / 4 * 3 + 3;
}

static ssize_t fail(size_t *bad_at, size_t i)
{
    if (bad_at) *bad_at = i;
    return -EINVAL;
}

ssize_t base64_decode(const char *in, size_t n, uint8_t *out, size_t *bad_at)
{
    size_t o = 0, last = 0;
    uint32_t acc = 0;
    int k = 0;   /* characters in acc */
    int pad = 0; /* '=' seen */
    for (size_t i = 0; i < n; i++) {
        uint8_t v = class_of((unsigned char)in[i]);
        if (v == 64) continue;
        if (v == 255) return fail(bad_at, i);
        if (v == 65) {
            /* padding completes a group of 2 or 3 characters, and nothing follows it */
            if (k < 2 || k + pad >= 4) return fail(bad_at, i);
            pad++;
            last = i;
            continue;
        }
        if (pad) return fail(bad_at, i);
        acc = acc << 6 | v;
        last = i;
        if (++k == 4) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
            k = 0;
        }
    }
    if (pad && k + pad != 4) return fail(bad_at, last);
    if (k == 1) return fail(bad_at, last);
    if (k == 2) {
        out[o++] = (uint8_t)(acc >> 4);
    } else if (k == 3) {
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    return (ssize_t)o;
}
