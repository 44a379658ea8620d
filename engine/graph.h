/* graph: the engine's internal IR, what the ONNX loader produces and the graph
 * passes, planner and kernels consume. Private to engine/.
 *
 * A graph is an array of values (tensors, by index) and an array of nodes in
 * topological order. A value is a constant when `data` is set (initializers,
 * Constant nodes, folded results); it owns that buffer. Nodes removed by a pass
 * are marked dead rather than moved, so indices stay valid. */
#ifndef ENGINE_GRAPH_H
#define ENGINE_GRAPH_H

#include "engine/engine.h"
#include "engine/ops_ext.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define EG_MAX_IN  16
#define EG_MAX_OUT 4

/* X-macro of every op the engine runs: ONNX name, enum suffix, inputs that
 * must be present (-1: every input, as for variadic Concat). Slice needs 3 from
 * opset 10, which the loader checks on its own. */
#define EG_OPS(X)                                                                                  \
    X("Conv", CONV, 2)                                                                             \
    X("BatchNormalization", BATCHNORM, 5)                                                          \
    X("Relu", RELU, 1)                                                                             \
    X("Clip", CLIP, 1)                                                                             \
    X("LeakyRelu", LEAKYRELU, 1)                                                                   \
    X("Sigmoid", SIGMOID, 1)                                                                       \
    X("HardSigmoid", HARDSIGMOID, 1)                                                               \
    X("HardSwish", HARDSWISH, 1)                                                                   \
    X("Add", ADD, 2)                                                                               \
    X("Sub", SUB, 2)                                                                               \
    X("Mul", MUL, 2)                                                                               \
    X("Div", DIV, 2)                                                                               \
    X("GlobalAveragePool", GAP, 1)                                                                 \
    X("AveragePool", AVGPOOL, 1)                                                                   \
    X("MaxPool", MAXPOOL, 1)                                                                       \
    X("Flatten", FLATTEN, 1)                                                                       \
    X("Reshape", RESHAPE, 2)                                                                       \
    X("Transpose", TRANSPOSE, 1)                                                                   \
    X("Concat", CONCAT, -1)                                                                        \
    X("Gemm", GEMM, 2)                                                                             \
    X("MatMul", MATMUL, 2)                                                                         \
    X("Softmax", SOFTMAX, 1)                                                                       \
    X("ReduceMean", REDUCEMEAN, 1)                                                                 \
    X("Dropout", DROPOUT, 1)                                                                       \
    X("Identity", IDENTITY, 1)                                                                     \
    X("Shape", SHAPE, 1)                                                                           \
    X("Gather", GATHER, 2)                                                                         \
    X("Unsqueeze", UNSQUEEZE, 1)                                                                   \
    X("Squeeze", SQUEEZE, 1)                                                                       \
    X("Split", SPLIT, 1)                                                                           \
    X("Slice", SLICE, 1)                                                                           \
    X("Cast", CAST, 1)                                                                             \
    X("Constant", CONSTANT, 0)                                                                     \
    EG_OPS_EXT(X)

typedef enum eg_op {
#define EG_ENUM(name, id, nreq) EG_OP_##id,
    EG_OPS(EG_ENUM)
#undef EG_ENUM
        EG_OP_COUNT
} eg_op;

const char *eg_op_name(eg_op op);
/* EG_OP_COUNT when the ONNX op type is not one we run. */
eg_op eg_op_lookup(const char *onnx_name);
/* Inputs a node of this op must have (not omitted); -1 means all of them. */
int eg_op_required_inputs(eg_op op);

typedef enum eg_attr_type {
    EG_ATTR_FLOAT = 1,
    EG_ATTR_INT = 2,
    EG_ATTR_STRING = 3,
    EG_ATTR_TENSOR = 4,
    EG_ATTR_FLOATS = 6,
    EG_ATTR_INTS = 7,
    EG_ATTR_STRINGS = 8,
} eg_attr_type;

typedef struct eg_attr {
    char *name;
    eg_attr_type type;
    float f;
    int64_t i;
    char *s;
    int n;         /* element count of ints/floats */
    int64_t *ints; /* owned */
    float *floats; /* owned */
    char **strs;   /* owned, n NUL-terminated strings (EG_ATTR_STRINGS) */
    int tensor;    /* value index for EG_ATTR_TENSOR, else -1 */
    /* EG_ATTR_TENSOR of one element: its dtype, value also in i and f
     * (kernels see nodes, not the graph: ConstantOfShape's value) */
    eng_dtype tdtype;
} eg_attr;

typedef struct eg_value {
    char *name;
    eng_dtype dtype;
    int rank; /* -1 while unknown */
    int64_t dims[ENG_MAX_RANK];
    void *data;   /* constant contents (owned, 64-byte aligned) or NULL */
    int producer; /* node index, or -1 for graph inputs and constants */
    int uses;     /* live consumer count (graph outputs count as one) */
    int is_input, is_output;
} eg_value;

/* Activation fused into a node (Conv), applied to its result in order:
 * act1, then + sum tensor, then act2. */
typedef enum eg_act_kind {
    EG_ACT_NONE = 0,
    EG_ACT_RELU, /* alpha: negative slope (LeakyRelu), 0 for Relu */
    EG_ACT_CLIP, /* alpha = min, beta = max */
    EG_ACT_SIGMOID,
    EG_ACT_HARDSIGMOID, /* max(0, min(1, alpha*x + beta)) */
    EG_ACT_HARDSWISH,
    EG_ACT_GELU,  /* 0.5 x (1 + erf(x / sqrt 2)), fused into MatMul (passes_ext.c) */
    EG_ACT_SWISH, /* x * sigmoid(x): SiLU after a Conv (passes_ext.c) */
} eg_act_kind;

typedef struct eg_act {
    eg_act_kind kind;
    float alpha, beta;
} eg_act;

typedef struct eg_node {
    eg_op op;
    char *name;
    int nin, nout;
    int in[EG_MAX_IN]; /* value indices; -1 for an omitted optional input */
    int out[EG_MAX_OUT];
    int nattr;
    eg_attr *attrs;
    int dead;
    /* fusion results (Conv only) */
    eg_act act1, act2;
    int sum_in; /* value added after act1, or -1 */
    /* op-private tables built once at load (tree ensembles: ek_prepare), one
     * malloc'd block freed with the graph */
    void *priv;
} eg_node;

typedef struct eg_graph {
    int nvalues, cap_values;
    eg_value *values;
    int nnodes, cap_nodes;
    eg_node *nodes;
    int ninputs, noutputs;
    int *inputs, *outputs; /* value indices of graph inputs (non-constant) and outputs */
    int opset;
    /* op histogram as loaded */
    int op_hist[EG_OP_COUNT];
    int64_t params;
} eg_graph;

eg_graph *eg_graph_create(void);
void eg_graph_free(eg_graph *g);
/* Adds a value and returns its index, or -1 on allocation failure. */
int eg_value_add(eg_graph *g, const char *name);
int eg_value_find(const eg_graph *g, const char *name);
/* Adds a node (zeroed, sum_in = -1) and returns its index, or -1. */
int eg_node_add(eg_graph *g, eg_op op, const char *name);

const eg_attr *eg_attr_find(const eg_node *n, const char *name);
int64_t eg_attr_int(const eg_node *n, const char *name, int64_t def);
float eg_attr_float(const eg_node *n, const char *name, float def);
const char *eg_attr_str(const eg_node *n, const char *name, const char *def);

size_t eg_dtype_size(eng_dtype t);
int64_t eg_numel(int rank, const int64_t *dims);
#define EG_MAX_TENSOR_BYTES ((size_t)1 << 30)
/* 64-byte aligned, zeroed; free with free(). NULL beyond EG_MAX_TENSOR_BYTES. */
void *eg_alloc(size_t bytes);
/* eg_alloc for a long-lived buffer every run streams through (packed weights,
 * the activation arena): from EG_BIG_MIN bytes on, 2 MB aligned, rounded up to
 * 2 MB and advised to transparent huge pages (MADV_HUGEPAGE, for THP's madvise
 * mode), so a run's ~20 MB take a few TLB entries instead of ~5000 4 KB pages.
 * AIINFER_HUGEPAGES=0 keeps plain eg_alloc (probes). Free with free(). */
#define EG_BIG_MIN ((size_t)1 << 20)
void *eg_alloc_big(size_t bytes);
/* Element count of a shape, or -1 if a dim is negative or the count exceeds
 * EG_MAX_TENSOR_BYTES / 4 (checked without overflow). */
int64_t eg_numel_checked(int rank, const int64_t *dims);

/* Error reporting into a caller buffer, printf style (lib/err formats it);
 * returns `status` negated: engine errors carry the HTTP status to answer. */
int eg_err(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* onnx.c: parse a serialized ModelProto into a graph. */
eg_graph *eg_onnx_parse(const void *data, size_t len, const eng_load_opts *opts, char *err,
                        size_t errlen);
/* onnx.c: parse a serialized TensorProto into a fresh value of g's shape. Returns
 * 0 or -status; on success *dtype, *rank, dims and *data (owned) are set. */
int eg_onnx_tensor(const void *buf, size_t len, char **name, eng_dtype *dtype, int *rank,
                   int64_t *dims, void **data, char *err, size_t errlen);

/* passes.c: load-time graph passes. */
int eg_fold_constants(eg_graph *g, char *err, size_t errlen);
void eg_remove_identities(eg_graph *g);
void eg_fold_batchnorm(eg_graph *g);
void eg_fuse_activations(eg_graph *g);
void eg_remove_dead(eg_graph *g);
/* passes_ext.c: MatMul by constant [K, N] weights followed by an Add of a
 * constant [N] bias becomes one MatMul with the bias as input 2 (oneDNN's inner
 * product bias, one pass over the activations fewer). */
void eg_fuse_matmul_bias(eg_graph *g);
/* passes_ext.c: the Div/Erf/Add/Mul/Mul form of exact GELU that torch exports,
 * after such a MatMul, becomes the MatMul's act1 (oneDNN gelu_erf post-op). */
void eg_fuse_gelu(eg_graph *g);
/* passes_ext.c: Conv -> Sigmoid + Mul(x, sigmoid) (SiLU, YOLO's activation)
 * becomes the Conv's act1 (oneDNN swish post-op); runs before
 * eg_fuse_activations so a residual Add can still fuse after it. */
void eg_fuse_silu(eg_graph *g);
/* passes_ext.c: MatMul(Q, K^T) -> Div/Mul by a scalar -> Add(mask) -> Softmax(last
 * axis) -> MatMul(., V), with the head Transposes around it, becomes one
 * "aiinfer:FusedAttention" node (ref_attn.c): no score or probability tensor,
 * no transposed copies. Runs after eg_fuse_matmul_bias. */
void eg_fuse_attention(eg_graph *g);
/* passes_ext.c: LayerNormalization of Add(x, r) of two same-shape activations
 * takes r as its fused residual (sum_in): one pass over the rows instead of an
 * Add writing a tensor the norm reads back. */
void eg_fuse_add_layernorm(eg_graph *g);
void eg_recount_uses(eg_graph *g);

#endif
