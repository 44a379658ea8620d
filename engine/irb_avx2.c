/* irb_avx2: the fused inverted residual kernel (irb_body.h) for AVX2 + FMA:
 * 8 floats a vector, tiles of up to 6 pixels x 2 vectors (12 of the 16 ymm
 * registers accumulate). Channel counts are multiples of 8 (ef_shape_ok), so
 * every store is a full vector and the mask is unused. */
#if defined(__clang__) /* clang has no GCC target pragma: the same as an attribute */
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif
#include "engine/irb_impl.h"

#include <immintrin.h>
#include <string.h>

#define VL      8
#define MR3_MAX 4
#define MR_MAX  6
typedef __m256 vf;
typedef int vmask;
#define VFULL            1
#define VMASK(n)         ((n) > 0)
#define VLOAD(p)         _mm256_loadu_ps(p)
#define VLOADM(p, m)     ((void)(m), _mm256_loadu_ps(p))
#define VSTORE(p, v)     _mm256_storeu_ps(p, v)
#define VSTOREM(p, v, m) ((void)(m), _mm256_storeu_ps(p, v))
#define VBCAST(x)        _mm256_set1_ps(x)
#define VSET1(x)         _mm256_set1_ps(x)
#define VFMA(a, b, c)    _mm256_fmadd_ps(a, b, c)
#define VMIN(a, b)       _mm256_min_ps(a, b)
#define VMAX(a, b)       _mm256_max_ps(a, b)
#define VADD(a, b)       _mm256_add_ps(a, b)
#define EF_RUN           ef_run_avx2

#include "engine/irb_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
