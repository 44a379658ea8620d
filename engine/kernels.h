/* kernels: shape inference and portable C reference kernels, one entry per op.
 * Private to engine/.
 *
 * The reference kernels are the oracle for every test and the fallback when
 * oneDNN does not run a layer. They are plain C, single-threaded, and work on
 * ONNX (NCHW, row-major) layout; the ops flagged EK_NHWC_OK also accept rank-4
 * float tensors in NHWC, which is how oneDNN's layers hand them over. */
#ifndef ENGINE_KERNELS_H
#define ENGINE_KERNELS_H

#include "engine/graph.h"

/* A tensor as a kernel sees it: logical ONNX shape, physical layout, data. */
typedef struct ek_view {
    eng_dtype dtype;
    int rank;
    int64_t dims[ENG_MAX_RANK];
    int nhwc; /* rank 4 only: memory order N,H,W,C */
    void *data;
} ek_view;

typedef struct ek_args {
    const eg_node *node;
    int opset;
    int nin, nout;
    ek_view *in[EG_MAX_IN];   /* NULL for an omitted optional input */
    ek_view *out[EG_MAX_OUT]; /* NULL for an omitted optional output */
    char *err;
    size_t errlen;
} ek_args;

#define EK_NHWC_OK 1u /* accepts NHWC inputs and keeps their layout */

typedef struct ek_op {
    /* Sets out dtype/rank/dims (and nhwc) from inputs; inputs whose values the
     * shape depends on (Reshape's shape, axes, ...) must have data set. */
    int (*infer)(ek_args *a);
    int (*run)(ek_args *a);
    unsigned flags;
    /* bitmask of inputs needed as values at infer time */
    unsigned const_inputs;
} ek_op;

const ek_op *ek_op_get(eg_op op);
/* ops_ext.c: kernels of the ops listed in ops_ext.h, NULL for the others. */
const ek_op *ek_op_get_ext(eg_op op);
/* ref_ml.c: builds node->priv for ops that need load-time tables (tree
 * ensembles); 0 or -status with a message naming the node. */
int ek_prepare(eg_node *n, char *err, size_t errlen);
/* ref_resize.c: ConvTranspose's strides, dilations and pads (per spatial dim)
 * as ONNX defines them, for the oneDNN deconvolution; 0 or -status. */
int ek_convt_geom(const eg_node *n, ek_view *const *in, int nin, int64_t *st, int64_t *dil,
                  int64_t *pl, int64_t *pr, char *err, size_t errlen);
/* Runs op's kernel on a, or does nothing when every output is empty. Every
 * caller goes through this rather than op->run. */
int ek_run(const ek_op *op, ek_args *a);

/* Row-major (or NHWC) element strides of a view. */
void ek_strides(const ek_view *v, int64_t *st);
int64_t ek_numel(const ek_view *v);
size_t ek_bytes(const ek_view *v);

/* Copies the elements of a strided view of src (element strides sst, which may
 * be negative, per dim of dims) into dst in row-major order: Transpose, Slice.
 * Rows whose source stride is 1 go by memcpy, the rest element by element. */
void ek_strided_copy(void *dst, const void *src, int rank, const int64_t *dims, const int64_t *sst,
                     size_t es);
/* ReduceMax and ArgMax (first index) of each of `rows` contiguous float rows in
 * one pass, each exactly as its own kernel computes it (NaN rows included). */
void ek_row_max_argmax(const float *x, int64_t rows, int64_t len, float *mx, int64_t *arg);

/* Applies a fused activation in place over n floats. */
void ek_act_apply(const eg_act *act, float *x, int64_t n);

/* Converts a rank-4 float tensor between NCHW and NHWC. */
void ek_nchw_to_nhwc(const float *src, float *dst, const int64_t *dims);
void ek_nhwc_to_nchw(const float *src, float *dst, const int64_t *dims);

/* Spatial geometry of Conv and pools, shared with the oneDNN backend. */
typedef struct ek_geom {
    int nsp; /* spatial rank 1..3 */
    int64_t in[3], k[3], out[3], stride[3], dil[3], pad_l[3], pad_r[3];
    int64_t pad_re[3]; /* right pad that also covers a ceil_mode overhang */
} ek_geom;
int ek_geom_init(ek_geom *g, const eg_node *n, const int64_t *in_dims, int rank,
                 const int64_t *kernel, int ceil_mode, char *err, size_t errlen);

/* op tables live in ref_nn.c (Conv, pools, BN, Gemm, MatMul, Softmax, Reduce)
 * and ref_tensor.c (elementwise and shape ops). */
extern const ek_op ek_op_conv, ek_op_batchnorm, ek_op_gap, ek_op_avgpool, ek_op_maxpool, ek_op_gemm,
    ek_op_matmul, ek_op_softmax, ek_op_reducemean;
extern const ek_op ek_op_relu, ek_op_clip, ek_op_leakyrelu, ek_op_sigmoid, ek_op_hardsigmoid,
    ek_op_hardswish, ek_op_add, ek_op_sub, ek_op_mul, ek_op_div, ek_op_flatten, ek_op_reshape,
    ek_op_transpose, ek_op_concat, ek_op_dropout, ek_op_identity, ek_op_shape, ek_op_gather,
    ek_op_unsqueeze, ek_op_squeeze, ek_op_split, ek_op_slice, ek_op_cast;

#endif
