/* libFuzzer: the aiserve module's array bridge. A buffer exporter's format
 * string and shape come from Python code, so pyarr_dtype and
 * pyarr_check_shape get arbitrary text and numbers; pyarr_copy gets every
 * layout of a real buffer a view can make (any dim order, reversed dims,
 * dims of 1) and must produce exactly the C-order elements. Input: byte 0
 * itemsize, bytes 1-4 ndim and flags, then dims, then the format text. */
#include "server/wsgi/pyarr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 10) return 0;
    size_t itemsize = (size_t)(data[0] % 9);
    int ndim = 1 + data[1] % 4;
    unsigned flip = data[2], perm_seed = data[3];
    int64_t dims[4];
    for (int d = 0; d < 4; d++) dims[d] = 1 + data[4 + d] % 5;
    char *fmt = malloc(size - 8 + 1);
    if (!fmt) return 0;
    memcpy(fmt, data + 8, size - 8);
    fmt[size - 8] = '\0';
    kserve_dtype t;
    char err[PYARR_ERRLEN];
    pyarr_dtype(fmt, itemsize, &t, err, sizeof(err));
    int64_t shape[4];
    for (int d = 0; d < ndim; d++) shape[d] = (int64_t)(int8_t)data[4 + d]; /* any value */
    kserve_io io = {.name = "x", .dtype = KSERVE_FP32, .rank = 1 + data[8] % 4};
    for (int d = 0; d < io.rank; d++) io.shape[d] = d == 0 && (data[9] & 1) ? -1 : dims[d];
    int batch;
    pyarr_check_shape(&io, ndim, shape, 1 + data[9] % 16, &batch, err, sizeof(err));
    free(fmt);

    /* A 4-byte-item buffer in C order, viewed with permuted and flipped axes. */
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)dims[d];
    int32_t *buf = malloc(n * 4), *out = malloc(n * 4), *want = malloc(n * 4);
    if (!buf || !out || !want) goto done;
    for (size_t i = 0; i < n; i++) buf[i] = (int32_t)i;
    int64_t cstr[4], vshape[4], vstr[4];
    int64_t s = 4;
    for (int d = ndim - 1; d >= 0; d--) cstr[d] = s, s *= dims[d];
    int perm[4] = {0, 1, 2, 3};
    for (int d = ndim - 1; d > 0; d--) { /* Fisher-Yates from the seed */
        int k = (int)(perm_seed % (unsigned)(d + 1));
        perm_seed = perm_seed * 131 + 7;
        int tmp = perm[d];
        perm[d] = perm[k];
        perm[k] = tmp;
    }
    const char *src = (const char *)buf;
    for (int d = 0; d < ndim; d++) {
        vshape[d] = dims[perm[d]];
        vstr[d] = cstr[perm[d]];
        if (flip & (1u << d)) { /* reversed axis: start at its last element */
            src += (vshape[d] - 1) * vstr[d];
            vstr[d] = -vstr[d];
        }
    }
    pyarr_copy(out, src, ndim, vshape, vstr, 4);
    /* the naive walk, element by element */
    for (size_t i = 0; i < n; i++) {
        size_t rem = i;
        const char *p = src;
        for (int d = ndim - 1; d >= 0; d--) {
            p += (int64_t)(rem % (size_t)vshape[d]) * vstr[d];
            rem /= (size_t)vshape[d];
        }
        memcpy(&want[i], p, 4);
    }
    if (memcmp(out, want, n * 4)) abort();
done:
    free(buf);
    free(out);
    free(want);
    return 0;
}
