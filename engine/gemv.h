/* gemv: a batch-1 Gemm with constant weights (the classifier: 1280x1000, 5 MB)
 * as a streaming matrix-vector product. oneDNN's brgemm took 380-425 us for
 * MobileNetV2's classifier at batch 1 (12-13 GB/s of weights); this kernel
 * reads the weights once, in order, from a layout packed at load: blocks of
 * 4 vectors of columns, each block's K rows contiguous. Private to engine/. */
#ifndef ENGINE_GEMV_H
#define ENGINE_GEMV_H

#include <stdint.h>

typedef struct ev_gemv ev_gemv;

/* y[N] = x[K] . B + bias: B is [K][N], or [N][K] with trans_b; bias [N] or
 * NULL. isa: EF_ISA_AVX512 or EF_ISA_AVX2 (irb.h's values). NULL when out of
 * memory or the ISA is not available. */
ev_gemv *ev_gemv_create(int64_t K, int64_t N, const float *B, int trans_b, const float *bias,
                        int isa);
void ev_gemv_free(ev_gemv *g);
int ev_gemv_isa(const ev_gemv *g);
void ev_gemv_run(const ev_gemv *g, const float *x, float *y);

#endif
