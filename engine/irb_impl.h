/* irb_impl: the fused block's private struct, shared by irb.c and the ISA
 * files (irb_avx512.c, irb_avx2.c) that include irb_body.h. */
#ifndef ENGINE_IRB_IMPL_H
#define ENGINE_IRB_IMPL_H

#include "engine/irb.h"

struct ef_block {
    ef_shape s;
    int isa, vl;
    int has_expand;
    int64_t cexp_p, cout_p; /* channels padded to the vector length */
    int64_t oh, ow;
    /* packed weights, zero in the padding: we [cin][cexp_p], wd [9][cexp_p],
     * wp [cexp_p][cout_p]; biases [cexp_p], [cexp_p], [cout_p] */
    float *we, *be, *wd, *bd, *wp, *bp;
    size_t ring_row; /* floats per ring row: (w + 2) * cexp_p, 64-byte multiple */
    size_t dw_row;   /* floats of the depthwise output row */
    size_t scratch;
};

void ef_run_avx512(const ef_block *b, int64_t n, const float *x, const float *res, float *y,
                   float *scratch);
void ef_run_avx2(const ef_block *b, int64_t n, const float *x, const float *res, float *y,
                 float *scratch);

#endif
