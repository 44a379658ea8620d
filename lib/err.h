/*
 * err: the one message formatter behind the project's error convention
 * (docs/ARCHITECTURE.md, "Errors"): a function that fails because of a system
 * call returns -errno; one that refuses its input (parse or validation) writes
 * a message into the caller's buffer and returns -1, or the code its callers
 * need (an HTTP status, -EINVAL) where the signature says so.
 */
#ifndef ERR_H
#define ERR_H

#include <stdarg.h>
#include <stddef.h>

/* Formats the message into err[0..errlen) (NUL-terminated, truncated to fit;
 * err may be NULL or errlen 0 to drop it) and returns -1. */
int err_fmt(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The same, returning rc: for callers whose errors carry a code. */
int err_fmt_rc(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The va_list form of err_fmt_rc, for wrappers that add their own context. */
int err_vfmt_rc(char *err, size_t errlen, int rc, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
