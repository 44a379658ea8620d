/*
 * buf: a growable byte buffer. The buffer owns its memory; buf_free() releases
 * it. Appends return 0 or -ENOMEM; after a failure the buffer is unchanged.
 */
#ifndef BUF_H
#define BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data; /* NUL-terminated whenever len < cap */
    size_t len;
    size_t cap;
} buf;

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void buf_free(buf *b);
void buf_reset(buf *b); /* len = 0, keeps the memory */
int buf_reserve(buf *b, size_t extra);
int buf_append(buf *b, const void *data, size_t len);
int buf_puts(buf *b, const char *s);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included: '"', '\\' and control
 * characters escaped, bytes that are not valid UTF-8 (overlong, surrogate,
 * past U+10FFFF, truncated) each replaced by U+FFFD. The one JSON string
 * writer of the project. */
int buf_json_str(buf *b, const char *s, size_t len);
/* The same for a NUL-terminated string (NULL writes ""). */
int buf_json_cstr(buf *b, const char *s);
/* Drops the first n bytes (n <= len). */
void buf_consume(buf *b, size_t n);

#endif
