/*
 * pyarr: the array bridge of the `aiserve` Python module, free of Python so
 * it can be unit-tested alone. It reads what a buffer exporter (a numpy
 * array, memoryview, array.array) describes with PEP 3118 -- a format string,
 * item size, shape and strides -- and decides whether the engine can use the
 * memory as is (zero-copy: C-contiguous, native little-endian, the model's
 * dtype) or must get a C-contiguous copy (any strides, negative ones
 * included). Byte-swapped (big-endian) data is refused, not converted: the
 * caller says which astype() fixes it.
 */
#ifndef SERVER_WSGI_PYARR_H
#define SERVER_WSGI_PYARR_H

#include "server/model/kserve.h"

#include <stddef.h>
#include <stdint.h>

#define PYARR_ERRLEN 256

/* The dtype a PEP 3118 format (NULL means "B") with itemsize bytes per item
 * describes: KSERVE_FP32 for "f", "<f", "=f"; KSERVE_INT64 for "l"/"q" of 8
 * bytes. 0, -EPROTO for byte-swapped data (">f", "!i"), -ENOTSUP for a
 * format with no tensor dtype (structs, pointers, strings); err says which. */
int pyarr_dtype(const char *format, size_t itemsize, kserve_dtype *out, char *err, size_t errlen);

/* 1 when the strides (bytes; NULL: C order) make a C-contiguous array. */
int pyarr_contiguous(int ndim, const int64_t *shape, const int64_t *strides, size_t itemsize);

/* Copies an array laid out by shape and strides (bytes, may be negative;
 * src points at element [0,...,0]) into dst in C order. */
void pyarr_copy(void *dst, const void *src, int ndim, const int64_t *shape, const int64_t *strides,
                size_t itemsize);

/*
 * Checks one input array against the model's declaration io: rank, every
 * fixed dim, and dim 0 (the batch) in 1..max_batch when it is variable
 * (io->shape[0] < 0), else equal to it. *batch gets dim 0 (1 for rank 0).
 * 0, or -EINVAL with err naming the input, the shape given and the one
 * expected (-E2BIG when only the batch exceeds max_batch).
 */
int pyarr_check_shape(const kserve_io *io, int ndim, const int64_t *shape, int max_batch,
                      int *batch, char *err, size_t errlen);

/* Writes "[1,3,160,160]" (-1 shown as "N") into out. */
void pyarr_shape_str(char *out, size_t len, int ndim, const int64_t *shape);

/* The numpy dtype string of a kserve dtype ("float32"); NULL if none. */
const char *pyarr_numpy_name(kserve_dtype t);

#endif
