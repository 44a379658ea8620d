/* tensorio: tensors in files, for the aiinfer CLI and the tests: NumPy .npy
 * (version 1-3, little-endian, C order), ONNX TensorProto .pb, and raw
 * little-endian bytes with a caller-given shape. */
#ifndef ENGINE_TENSORIO_H
#define ENGINE_TENSORIO_H

#include "engine/engine.h"

#include <stddef.h>
#include <stdint.h>

typedef struct et_tensor {
    eng_dtype dtype;
    int rank;
    int64_t dims[ENG_MAX_RANK];
    void *data; /* owned; free with et_tensor_clear */
    char *name; /* TensorProto name, or NULL */
    /* 1: the file held float64 (.npy '<f8'), converted to float32 here, each
     * value rounded to nearest (beyond float32's range: +-inf). The engine
     * computes in float32, and float64 is numpy's default, so such files are
     * common; callers should say that they were converted. */
    int from_f64;
} et_tensor;

typedef enum et_format { ET_AUTO, ET_NPY, ET_PB, ET_RAW } et_format;

/* Format from the file name: .npy, .pb, anything else raw. */
et_format et_format_of(const char *path);
/* Parses a buffer. For ET_RAW, `raw_dtype`/`raw_rank`/`raw_dims` give the shape
 * and the size must match. Returns 0 or -eng_status with a message in err. */
int et_parse(const void *buf, size_t len, et_format f, eng_dtype raw_dtype, int raw_rank,
             const int64_t *raw_dims, et_tensor *t, char *err, size_t errlen);
int et_read(const char *path, et_format f, eng_dtype raw_dtype, int raw_rank,
            const int64_t *raw_dims, et_tensor *t, char *err, size_t errlen);
int et_write(const char *path, et_format f, const et_tensor *t, char *err, size_t errlen);
/* Reads a whole file into a malloc'd buffer (NUL-terminated); NULL on error. */
void *et_slurp(const char *path, size_t *len, char *err, size_t errlen);
int64_t et_numel(const et_tensor *t);
void et_tensor_clear(et_tensor *t);

#endif
