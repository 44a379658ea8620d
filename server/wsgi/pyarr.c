#include "server/wsgi/pyarr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The host is little-endian (x86-64, aarch64): '=' and '@' are '<'. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "pyarr assumes a little-endian host");

int pyarr_dtype(const char *format, size_t itemsize, kserve_dtype *out, char *err, size_t errlen)
{
    const char *f = format ? format : "B";
    char order = '@';
    if (*f && strchr("@=<>!", *f)) order = *f++;
    *out = KSERVE_INVALID;
    if (!f[0] || f[1]) {
        snprintf(err, errlen, "arrays of '%s' (a structured or multi-field type) are not tensors",
                 format);
        return -ENOTSUP;
    }
    char c = f[0];
    kserve_dtype t = KSERVE_INVALID;
    if (c == '?' && itemsize == 1)
        t = KSERVE_BOOL;
    else if (strchr("bhilq", c))
        t = itemsize == 1   ? KSERVE_INT8
            : itemsize == 2 ? KSERVE_INT16
            : itemsize == 4 ? KSERVE_INT32
            : itemsize == 8 ? KSERVE_INT64
                            : KSERVE_INVALID;
    else if (strchr("BHILQ", c))
        t = itemsize == 1   ? KSERVE_UINT8
            : itemsize == 2 ? KSERVE_UINT16
            : itemsize == 4 ? KSERVE_UINT32
            : itemsize == 8 ? KSERVE_UINT64
                            : KSERVE_INVALID;
    else if (c == 'e' && itemsize == 2)
        t = KSERVE_FP16;
    else if (c == 'f' && itemsize == 4)
        t = KSERVE_FP32;
    else if (c == 'd' && itemsize == 8)
        t = KSERVE_FP64;
    if (t == KSERVE_INVALID) {
        snprintf(err, errlen, "arrays of '%s' (%zu bytes an item) have no tensor datatype", format,
                 itemsize);
        return -ENOTSUP;
    }
    if ((order == '>' || order == '!') && itemsize > 1) {
        snprintf(err, errlen,
                 "big-endian %s arrays are refused (convert with .astype('<%c%zu') or "
                 ".byteswap().view(...newbyteorder()))",
                 kserve_dtype_name(t),
                 t == KSERVE_FP16 || t == KSERVE_FP32 || t == KSERVE_FP64 ? 'f'
                 : strchr("BHILQ", c)                                     ? 'u'
                                                                          : 'i',
                 itemsize);
        return -EPROTO;
    }
    *out = t;
    return 0;
}

int pyarr_contiguous(int ndim, const int64_t *shape, const int64_t *strides, size_t itemsize)
{
    if (!strides) return 1;
    int64_t want = (int64_t)itemsize;
    for (int d = ndim - 1; d >= 0; d--) {
        if (shape[d] == 0) return 1; /* empty: nothing to lay out */
        if (shape[d] != 1 && strides[d] != want) return 0;
        want *= shape[d];
    }
    return 1;
}

static char *copy_dim(char *dst, const char *src, int d, int ndim, const int64_t *shape,
                      const int64_t *strides, size_t itemsize)
{
    if (d == ndim) {
        memcpy(dst, src, itemsize);
        return dst + itemsize;
    }
    if (d == ndim - 1 && strides[d] == (int64_t)itemsize) {
        size_t n = (size_t)shape[d] * itemsize;
        memcpy(dst, src, n);
        return dst + n;
    }
    for (int64_t i = 0; i < shape[d]; i++)
        dst = copy_dim(dst, src + i * strides[d], d + 1, ndim, shape, strides, itemsize);
    return dst;
}

void pyarr_copy(void *dst, const void *src, int ndim, const int64_t *shape, const int64_t *strides,
                size_t itemsize)
{
    size_t n = itemsize;
    for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
    if (!n) return;
    if (pyarr_contiguous(ndim, shape, strides, itemsize)) {
        memcpy(dst, src, n);
        return;
    }
    copy_dim(dst, src, 0, ndim, shape, strides, itemsize);
}

void pyarr_shape_str(char *out, size_t len, int ndim, const int64_t *shape)
{
    size_t k = 0;
    if (!len) return;
    out[0] = '\0';
    k += (size_t)snprintf(out, len, "[");
    for (int d = 0; d < ndim && k < len; d++) {
        if (shape[d] < 0)
            k += (size_t)snprintf(out + k, len - k, "%sN", d ? "," : "");
        else
            k += (size_t)snprintf(out + k, len - k, "%s%lld", d ? "," : "", (long long)shape[d]);
    }
    if (k < len) snprintf(out + k, len - k, "]");
}

int pyarr_check_shape(const kserve_io *io, int ndim, const int64_t *shape, int max_batch,
                      int *batch, char *err, size_t errlen)
{
    char got[128], want[128];
    pyarr_shape_str(got, sizeof(got), ndim, shape);
    pyarr_shape_str(want, sizeof(want), io->rank, io->shape);
    *batch =
        io->rank > 0 && ndim > 0 ? (int)(shape[0] > 0 && shape[0] < 1 << 30 ? shape[0] : 0) : 1;
    int bad = ndim != io->rank;
    for (int d = 1; d < ndim && !bad; d++) bad = io->shape[d] >= 0 && shape[d] != io->shape[d];
    if (!bad && io->rank > 0 && io->shape[0] >= 0 && shape[0] != io->shape[0]) bad = 1;
    if (bad) {
        snprintf(err, errlen, "input '%s' has shape %s; the model takes %s", io->name, got, want);
        return -EINVAL;
    }
    if (io->rank > 0 && io->shape[0] < 0 && (shape[0] < 1 || shape[0] > max_batch)) {
        snprintf(err, errlen,
                 "input '%s' has shape %s: batch size %lld is outside 1..%d (max-batch-size)",
                 io->name, got, (long long)shape[0], max_batch);
        return shape[0] < 1 ? -EINVAL : -E2BIG;
    }
    return 0;
}

const char *pyarr_numpy_name(kserve_dtype t)
{
    switch (t) {
    case KSERVE_BOOL: return "bool";
    case KSERVE_UINT8: return "uint8";
    case KSERVE_UINT16: return "uint16";
    case KSERVE_UINT32: return "uint32";
    case KSERVE_UINT64: return "uint64";
    case KSERVE_INT8: return "int8";
    case KSERVE_INT16: return "int16";
    case KSERVE_INT32: return "int32";
    case KSERVE_INT64: return "int64";
    case KSERVE_FP16: return "float16";
    case KSERVE_FP32: return "float32";
    case KSERVE_FP64: return "float64";
    default: return NULL;
    }
}
