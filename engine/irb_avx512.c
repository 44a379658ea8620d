/* irb_avx512: the fused inverted residual kernel (irb_body.h) for AVX-512:
 * 16 floats a vector, tiles of up to 12 pixels x 2 vectors (24 of the 32 zmm
 * registers accumulate), masked stores for a channel count that is 8 mod 16.
 * Built with a target pragma so the rest of the engine keeps the baseline ISA;
 * irb.c calls it only when the CPU (and ONEDNN_MAX_CPU_ISA) allow AVX-512. */
#if defined(__clang__) /* clang has no GCC target pragma: the same as an attribute */
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma"))),    \
                             apply_to = function)
#else
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,fma")
#endif
#include "engine/irb_impl.h"

#include <immintrin.h>
#include <string.h>

#define VL      16
#define MR3_MAX 8
#define MR_MAX  12
typedef __m512 vf;
typedef __mmask16 vmask;
#define VFULL            ((vmask)0xffff)
#define VMASK(n)         ((vmask)((n) >= 16 ? 0xffff : (1u << (n)) - 1))
#define VLOAD(p)         _mm512_loadu_ps(p)
#define VLOADM(p, m)     _mm512_maskz_loadu_ps(m, p)
#define VSTORE(p, v)     _mm512_storeu_ps(p, v)
#define VSTOREM(p, v, m) _mm512_mask_storeu_ps(p, m, v)
#define VBCAST(x)        _mm512_set1_ps(x)
#define VSET1(x)         _mm512_set1_ps(x)
#define VFMA(a, b, c)    _mm512_fmadd_ps(a, b, c)
#define VMIN(a, b)       _mm512_min_ps(a, b)
#define VMAX(a, b)       _mm512_max_ps(a, b)
#define VADD(a, b)       _mm512_add_ps(a, b)
#define EF_RUN           ef_run_avx512

#include "engine/irb_body.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
