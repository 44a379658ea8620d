/* irb: MobileNetV2's inverted residual block (1x1 expand + clip, depthwise 3x3
 * + clip, linear 1x1 project, optional residual add) as one fused CPU kernel.
 *
 * oneDNN runs the three convolutions one after the other, so the expanded
 * tensor (6x the block's channels, at full resolution in the early blocks) is
 * written by the expand, read and written by the depthwise and read again by
 * the project. Here each output row is computed from a ring of three expanded
 * input rows and one depthwise row, all in cache: the 6x tensor never goes to
 * memory. Activations are NHWC (the engine's layout); the weights are repacked
 * once into channel-padded panels for the chosen ISA. Private to engine/. */
#ifndef ENGINE_IRB_H
#define ENGINE_IRB_H

#include <stddef.h>
#include <stdint.h>

enum { EF_ISA_NONE = 0, EF_ISA_AVX2 = 256, EF_ISA_AVX512 = 512 };

typedef struct ef_shape {
    int64_t h, w; /* input rows and columns */
    int64_t cin, cexp, cout;
    int stride;     /* of the depthwise conv: 1 or 2 (pads 1, 3x3) */
    float lo1, hi1; /* clip after the expand (ReLU6: 0, 6) */
    float lo2, hi2; /* clip after the depthwise */
} ef_shape;

typedef struct ef_block ef_block;

/* Whether the shape is one the kernel runs: channels multiples of 8, stride
 * 1 or 2, at least one row and column. */
int ef_shape_ok(const ef_shape *s);
/* The ISA the fused kernel would use now: the CPU's, capped like oneDNN's
 * (ONEDNN_MAX_CPU_ISA) through eng_dnn_isa(); EF_ISA_NONE below AVX2. */
int ef_isa(void);
/* Repacks the weights (ONNX layouts: we [cexp][cin], wd [cexp][3][3],
 * wp [cout][cexp]; biases may be NULL) for `isa`. we NULL: a block without
 * the expand (cexp == cin; MobileNetV2's first), the depthwise reads x. NULL when out of memory,
 * the shape is not ok or the ISA is not available. */
ef_block *ef_block_create(const ef_shape *s, int isa, const float *we, const float *be,
                          const float *wd, const float *bd, const float *wp, const float *bp);
void ef_block_free(ef_block *b);
/* Output rows/columns, and the scratch bytes one run needs (64-byte aligned). */
int64_t ef_out_h(const ef_shape *s);
int64_t ef_out_w(const ef_shape *s);
size_t ef_block_scratch(const ef_block *b);
int ef_block_isa(const ef_block *b);
/* y = project(dw(expand(x))) (+ res), n items of NHWC x [h][w][cin] -> y
 * [oh][ow][cout]; res (NHWC like y, or NULL) may be y itself (in place), or x
 * when y is x (stride 1, cin == cout): each output row is written only after
 * every input row it needs was expanded. */
void ef_block_run(const ef_block *b, int64_t n, const float *x, const float *res, float *y,
                  void *scratch);
/* The reference: the same three convolutions unfused, in plain C (tests). */
void ef_block_reference(const ef_shape *s, int64_t n, const float *x, const float *we,
                        const float *be, const float *wd, const float *bd, const float *wp,
                        const float *bp, const float *res, float *y);

#endif
