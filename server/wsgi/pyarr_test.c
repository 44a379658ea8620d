#include "server/wsgi/pyarr.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

static kserve_dtype dt(const char *fmt, size_t size)
{
    kserve_dtype t;
    char err[PYARR_ERRLEN];
    int rc = pyarr_dtype(fmt, size, &t, err, sizeof(err));
    return rc ? KSERVE_INVALID : t;
}

Test(pyarr, dtypes_from_numpy_formats)
{
    cr_expect_eq(dt("f", 4), KSERVE_FP32);
    cr_expect_eq(dt("<f", 4), KSERVE_FP32);
    cr_expect_eq(dt("=f", 4), KSERVE_FP32);
    cr_expect_eq(dt("d", 8), KSERVE_FP64);
    cr_expect_eq(dt("e", 2), KSERVE_FP16);
    cr_expect_eq(dt("i", 4), KSERVE_INT32);
    cr_expect_eq(dt("l", 8), KSERVE_INT64); /* numpy's int64 on LP64 */
    cr_expect_eq(dt("q", 8), KSERVE_INT64);
    cr_expect_eq(dt("<l", 4), KSERVE_INT32); /* standard size: 'l' is 4 bytes */
    cr_expect_eq(dt("?", 1), KSERVE_BOOL);
    cr_expect_eq(dt("B", 1), KSERVE_UINT8);
    cr_expect_eq(dt(NULL, 1), KSERVE_UINT8); /* bytes, memoryview of bytes */
    cr_expect_eq(dt("b", 1), KSERVE_INT8);
}

Test(pyarr, big_endian_refused_with_the_fix)
{
    kserve_dtype t;
    char err[PYARR_ERRLEN];
    cr_assert_eq(pyarr_dtype(">f", 4, &t, err, sizeof(err)), -EPROTO);
    cr_expect(strstr(err, "big-endian") && strstr(err, "astype('<f4')"), "%s", err);
    cr_assert_eq(pyarr_dtype("!i", 4, &t, err, sizeof(err)), -EPROTO);
    cr_expect(strstr(err, "<i4"), "%s", err);
    /* one byte has no order */
    cr_expect_eq(pyarr_dtype(">B", 1, &t, err, sizeof(err)), 0);
    cr_expect_eq(t, KSERVE_UINT8);
}

Test(pyarr, non_tensor_formats_refused)
{
    kserve_dtype t;
    char err[PYARR_ERRLEN];
    cr_expect_eq(pyarr_dtype("T{f:x:i:y:}", 8, &t, err, sizeof(err)), -ENOTSUP);
    cr_expect_eq(pyarr_dtype("ff", 8, &t, err, sizeof(err)), -ENOTSUP);
    cr_expect_eq(pyarr_dtype("O", 8, &t, err, sizeof(err)), -ENOTSUP);
    cr_expect_eq(pyarr_dtype("f", 8, &t, err, sizeof(err)), -ENOTSUP);  /* size disagrees */
    cr_expect_eq(pyarr_dtype("Zf", 8, &t, err, sizeof(err)), -ENOTSUP); /* complex */
}

Test(pyarr, contiguity)
{
    int64_t shape[] = {2, 3, 4};
    int64_t c[] = {48, 16, 4};
    int64_t f[] = {4, 8, 24};       /* Fortran order */
    int64_t sl[] = {96, 16, 4};     /* every other row of dim 0 */
    int64_t one[] = {12345, 16, 4}; /* a dim of 1 may have any stride */
    int64_t shape1[] = {1, 3, 4};
    cr_expect(pyarr_contiguous(3, shape, NULL, 4));
    cr_expect(pyarr_contiguous(3, shape, c, 4));
    cr_expect(!pyarr_contiguous(3, shape, f, 4));
    cr_expect(!pyarr_contiguous(3, shape, sl, 4));
    cr_expect(pyarr_contiguous(3, shape1, one, 4));
}

Test(pyarr, strided_copies)
{
    /* a 4x6 int32 matrix; take the transpose, a column slice and a reversal */
    int32_t m[4][6];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++) m[i][j] = i * 10 + j;
    int32_t out[24];
    int64_t tshape[] = {6, 4}, tstr[] = {4, 24};
    pyarr_copy(out, m, 2, tshape, tstr, 4);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++) cr_expect_eq(out[i * 4 + j], j * 10 + i);
    int64_t sshape[] = {4, 3}, sstr[] = {24, 8}; /* m[:, ::2] */
    pyarr_copy(out, m, 2, sshape, sstr, 4);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) cr_expect_eq(out[i * 3 + j], i * 10 + 2 * j);
    int64_t rshape[] = {4, 6}, rstr[] = {-24, 4}; /* m[::-1], src at the last row */
    pyarr_copy(out, &m[3][0], 2, rshape, rstr, 4);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++) cr_expect_eq(out[i * 6 + j], (3 - i) * 10 + j);
    int64_t cshape[] = {4, 6}, cstr[] = {24, 4}; /* contiguous: one memcpy */
    pyarr_copy(out, m, 2, cshape, cstr, 4);
    cr_expect_eq(memcmp(out, m, sizeof(m)), 0);
}

Test(pyarr, shapes_against_the_model)
{
    kserve_io io = {.name = "input", .dtype = KSERVE_FP32, .rank = 4, .shape = {-1, 3, 160, 160}};
    char err[PYARR_ERRLEN];
    int b = 0;
    int64_t ok[] = {3, 3, 160, 160};
    cr_expect_eq(pyarr_check_shape(&io, 4, ok, 8, &b, err, sizeof(err)), 0);
    cr_expect_eq(b, 3);
    int64_t hwc[] = {1, 160, 160, 3};
    cr_expect_eq(pyarr_check_shape(&io, 4, hwc, 8, &b, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "[1,160,160,3]") && strstr(err, "[N,3,160,160]"), "%s", err);
    int64_t rank3[] = {3, 160, 160};
    cr_expect_eq(pyarr_check_shape(&io, 3, rank3, 8, &b, err, sizeof(err)), -EINVAL);
    int64_t big[] = {9, 3, 160, 160};
    cr_expect_eq(pyarr_check_shape(&io, 4, big, 8, &b, err, sizeof(err)), -E2BIG);
    cr_expect(strstr(err, "max-batch-size"), "%s", err);
    int64_t zero[] = {0, 3, 160, 160};
    cr_expect_eq(pyarr_check_shape(&io, 4, zero, 8, &b, err, sizeof(err)), -EINVAL);
    /* a fixed batch: exactly that */
    kserve_io fixed = {.name = "x", .dtype = KSERVE_FP32, .rank = 2, .shape = {2, 4}};
    int64_t two[] = {2, 4}, one[] = {1, 4};
    cr_expect_eq(pyarr_check_shape(&fixed, 2, two, 2, &b, err, sizeof(err)), 0);
    cr_expect_eq(b, 2);
    cr_expect_eq(pyarr_check_shape(&fixed, 2, one, 2, &b, err, sizeof(err)), -EINVAL);
}
