/* irb_avx512: the fused inverted residual kernel (irb_body.h) for AVX-512:
 * 16 floats a vector, tiles of up to 12 pixels x 2 vectors (24 of the 32 zmm
 * registers accumulate), masked stores for a channel count that is 8 mod 16.
 * Built with a target pragma so the rest of the engine keeps the baseline ISA;
 * irb.c calls it only when the CPU (and ONEDNN_MAX_CPU_ISA) allow AVX-512. */
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,fma")
#include "engine/irb_impl.h"

#include <immintrin.h>
#include <string.h>

#define VL     16
#define MR_MAX 12
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
#define EF_TILES                                                                                   \
    EF_TILE_FN(1, 1)                                                                               \
    EF_TILE_FN(2, 1) EF_TILE_FN(3, 1) EF_TILE_FN(4, 1) EF_TILE_FN(5, 1) EF_TILE_FN(6, 1)           \
        EF_TILE_FN(7, 1) EF_TILE_FN(8, 1) EF_TILE_FN(9, 1) EF_TILE_FN(10, 1) EF_TILE_FN(11, 1)     \
            EF_TILE_FN(12, 1) EF_TILE_FN(1, 2) EF_TILE_FN(2, 2) EF_TILE_FN(3, 2) EF_TILE_FN(4, 2)  \
                EF_TILE_FN(5, 2) EF_TILE_FN(6, 2) EF_TILE_FN(7, 2) EF_TILE_FN(8, 2)                \
                    EF_TILE_FN(9, 2) EF_TILE_FN(10, 2) EF_TILE_FN(11, 2)                           \
                        EF_TILE_FN(12, 2) static const ef_tile_fn ef_tiles[2][MR_MAX] = {          \
                            {ef_tile_1_1, ef_tile_2_1, ef_tile_3_1, ef_tile_4_1, ef_tile_5_1,      \
                             ef_tile_6_1, ef_tile_7_1, ef_tile_8_1, ef_tile_9_1, ef_tile_10_1,     \
                             ef_tile_11_1, ef_tile_12_1},                                          \
                            {ef_tile_1_2, ef_tile_2_2, ef_tile_3_2, ef_tile_4_2, ef_tile_5_2,      \
                             ef_tile_6_2, ef_tile_7_2, ef_tile_8_2, ef_tile_9_2, ef_tile_10_2,     \
                             ef_tile_11_2, ef_tile_12_2}};

#include "engine/irb_body.h"
