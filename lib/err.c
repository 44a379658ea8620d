#include "err.h"

#include <stdio.h>

int err_vfmt_rc(char *err, size_t errlen, int rc, const char *fmt, va_list ap)
{
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    return rc;
}

int err_fmt_rc(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vfmt_rc(err, errlen, rc, fmt, ap);
    va_end(ap);
    return rc;
}

int err_fmt(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vfmt_rc(err, errlen, -1, fmt, ap);
    va_end(ap);
    return -1;
}
