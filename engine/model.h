/* model: the eng_model and eng_ctx structs, the oneDNN glue (dnn.c) and the
 * per-batch execution plan (plan.c). Private to engine/. */
#ifndef ENGINE_MODEL_H
#define ENGINE_MODEL_H

#include "engine/engine.h"
#include "engine/graph.h"
#include "engine/infer.h"
#include "engine/kernels.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>

/* A Conv's weights reordered once, at load, into the layout oneDNN's kernel for
 * batch 1 / 1 thread wants. Read-only afterwards and shared by all contexts. */
#define EM_MAX_ALT 4
typedef struct em_conv {
    int ready;
    dnnl_memory_desc_t wmd;
    void *w;   /* in eng_model.wpool, or its own buffer when w_own */
    int w_own; /* the model's weights did not fit one block (prepare_weights) */
    /* Other layouts some thread count or batch asked for, made on first use and
     * shared by every context of the process (guarded by eng_model.lock). */
    int nalt;
    dnnl_memory_desc_t alt_md[EM_MAX_ALT];
    void *alt_w[EM_MAX_ALT];
    /* int8 (eng_model_calibrate_int8, qconv.c): set before any context exists.
     * q_in > 0 runs this Conv (or Gemm) on oneDNN's int8 kernel: its input is
     * quantized as x * q_in (u8 when calibration never saw it negative, else
     * s8), the weights per output channel as w * 127 / q_wmax[oc]. q_w holds
     * them in each layout an int8 primitive asked for (batch sizes and thread
     * counts may differ), made on first use (eng_model.lock). */
    float q_in;
    int q_unsigned;
    float *q_wmax;
    float *q_oscale; /* [OC] q_wmax / (127 q_in): int32 sums back to f32 */
    float *q_bias;   /* [OC] bias / q_oscale: oneDNN 2.6 adds it before scaling */
    int q_nw;
    dnnl_memory_desc_t q_md[EM_MAX_ALT];
    void *q_w[EM_MAX_ALT];
    /* The fused inverted residual block (irb.c) whose project 1x1 is this
     * Conv, made at load (ef_prepack) or by the first plan that fuses it
     * (eng_model.lock), and shared. */
    struct ef_block *irb;
    /* A batch-1 Gemm's weights packed for the streaming kernel (gemv.c), made
     * at load (ef_prepack) or by the first plan that uses it, and shared. */
    struct ev_gemv *gemv;
} em_conv;

struct eng_model {
    eg_graph *g;
    eng_load_opts opts;
    dnnl_engine_t dnn; /* NULL with reference_only */
    em_conv *conv;     /* per node */
    void *wpool;       /* the em_conv.w, one huge-page-advised block (eg_alloc_big) */
    int fixed_batch;   /* 0: dim 0 dynamic */
    int dynamic;       /* dims beyond the batch are dynamic: runs need shapes */
    int64_t macs;
    eng_tensor_info *ins, *outs;
    int hist_ops[EG_OP_COUNT];
    pthread_mutex_t lock; /* guards em_conv alternative layouts, q_w and irb only */
    int no_fuse;          /* calibrating int8: every Conv's input must be a tensor */
};

/* ---- dnn.c: oneDNN primitives for the ops it runs ---------------------------- */

/* What the planner needs to describe one oneDNN layer. */
typedef struct ed_layer {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    int sum_inplace;  /* in: fused residual as an in-place sum (dst holds it) */
    int post_sigmoid; /* in: a logistic post-op last (a later Sigmoid folded in) */
    char impl[96];
} ed_layer;

/* Whether Conv node ni may sum its fused residual in place: the residual is an
 * activation that no later node reads, so the conv may write over it. */
int ed_sum_inplace(const eg_graph *g, int ni);

/* Can this node run on oneDNN (given its input views)? ed_eligible ignores
 * whether the weights were prepared; ed_supports requires it. */
int ed_supports(const eng_model *m, int node, ek_view *const *in, int nin);
int ed_eligible(const eng_model *m, int node, ek_view *const *in, int nin);
/* MatMul of two activations (attention) that oneDNN's matmul runs. */
int ed_act_matmul(const eg_node *n, ek_view *const *in, int nin);
/* Ops whose constant weights are reordered at load (Conv, Gemm, MatMul). */
int ed_has_weights(eg_op op);
/* Creates the primitive for node `node` at the given input/output views (NHWC for
 * rank-4 activations). `wmd` forces a weights layout (shared weights) or NULL.
 * l->sum_inplace is read on entry (set it or zero it), everything else written. */
int ed_create(const eng_model *m, int node, ek_view *const *in, const ek_view *out,
              const dnnl_memory_desc_t *wmd, int threads, ed_layer *l, char *err, size_t errlen);
void ed_layer_free(ed_layer *l);
/* Reorders a Conv's plain OIHW weights w into layout wmd: a fresh buffer in *out. */
int ed_reorder_conv(const eng_model *m, const eg_node *n, const ek_view *w,
                    const dnnl_memory_desc_t *wmd, void **out);
/* The same into dst, which holds dnnl_memory_desc_get_size(wmd) bytes. */
int ed_reorder_conv_to(const eng_model *m, const eg_node *n, const ek_view *w,
                       const dnnl_memory_desc_t *wmd, void *dst);
/* Weights of Conv node ni in layout md: the load-time copy when md matches it,
 * else a copy reordered now and cached in the model for every context of the
 * process. NULL on failure. Thread-safe. */
const void *ed_conv_weights(const eng_model *m, int ni, const ek_view *w,
                            const dnnl_memory_desc_t *md);
/* Index of the residual (binary add) post-op in a fused Conv's chain. */
int ed_sum_index(const eg_node *n);
/* Memory descriptor for a plain view (nhwc honoured). */
void ed_md(const ek_view *v, dnnl_memory_desc_t *md);
/* Sets the OpenMP thread count of the calling thread (no pool is created). */
void ed_set_threads(int n);

/* ---- qconv.c: int8 convolutions (opt-in, after a calibration run) ----------- */

/* Whether Conv node ni is one the int8 path takes (one group, at least 8 input
 * channels, float weights): where oneDNN's VNNI kernels gain; depthwise and a
 * 1- or 3-channel stem measured slower or even in int8, so they stay f32. */
int eq_eligible(const eng_model *m, int ni);
/* The quantizing step in front of an int8 Conv: q = saturate(round(x * scale))
 * as u8 or s8 (round to nearest even), n elements. */
void eq_quantize(const float *x, void *q, int64_t n, float scale, int is_unsigned);
/* The int8 Conv or Gemm primitive (dnn.c): src u8/s8 (NHWC for a Conv), s8
 * weights in the layout oneDNN picks, f32 bias and dst, per-output-channel
 * scales, the node's fused post-ops. 0, or -status (the planner then keeps
 * the f32 primitive). */
int ed_create_int8(const eng_model *m, int node, ek_view *const *in, const ek_view *out,
                   int is_unsigned, const float *oscales, int threads, ed_layer *l, char *err,
                   size_t errlen);
/* Per-output-channel dequantization scales of int8 Conv node ni, and its bias
 * in the int32 domain (oneDNN 2.6 computes dst = scale * (acc + bias)). */
const float *eq_out_scales(const eng_model *m, int ni);
const float *eq_bias(const eng_model *m, int ni);
/* s8 weights of node ni in layout md (made once, shared); NULL on failure. */
const void *eq_weights(const eng_model *m, int ni, const ek_view *w, const dnnl_memory_desc_t *md);

/* ---- irb_match.c: where the fused inverted residual block replaces three Convs */

/* Whether Convs ne (1x1 expand), nd (3x3 depthwise) and np (1x1 project) form
 * a block the fused kernel runs (x: the expand's input view) and that this
 * block's shape is one where it measured faster than oneDNN (or the
 * AIINFER_FUSE_IRB override says so). On 1, the block shared by every plan of
 * the model (made now if needed). */
int ef_match(const eng_model *m, int ne, int nd, int np, const ek_view *x,
             const struct ef_block **out);
void ef_model_free(eng_model *m);
/* At load (before a server forks its workers, so the packed weights stay
 * shared): makes the fused blocks and batch-1 Gemm packs a 1-thread batch-1
 * plan will use, from the batch-1 views. */
void ef_prepack(const eng_model *m, const ek_view *views);

/* ---- gemv.c: a batch-1 Gemm with constant weights of 256 KB or more, 1 thread */
const struct ev_gemv *ev_match(const eng_model *m, int ni, const ek_view *a, int threads);

/* ---- shapes.c: dynamic dimensions beyond the batch -------------------------- */

#define ES_MAX_DIM ((int64_t)1 << 24)
/* A view of g whose graph inputs have dims[k] (or, with dims NULL, every dynamic
 * dim beyond 0 set to probe). Shares nodes and data; free with es_graph_view_free. */
eg_graph *es_graph_view(const eg_graph *g, const int64_t *const *dims, int64_t probe);
void es_graph_view_free(eg_graph *v);
int es_has_dynamic(const eg_graph *g);
/* ei_infer on the probe view. */
ei_views *es_infer(const eg_graph *g, int batch, int64_t probe, char *err, size_t errlen);
/* Checks a run's input shapes against the model: fixed dims equal, dynamic ones
 * in 1..ES_MAX_DIM, sizes within limits; the message names the input. */
int es_check_shapes(const eng_model *m, const int64_t *const *shapes, char *err, size_t errlen);

/* ---- plan.c: the steps of one batch size ------------------------------------ */

typedef struct ep_plan ep_plan;

ep_plan *ep_plan_build(const eng_model *m, int batch, int threads, char *err, size_t errlen);
/* A plan for explicit input shapes (models with dynamic dims). */
ep_plan *ep_plan_build_shapes(const eng_model *m, const int64_t *const *shapes, int threads,
                              char *err, size_t errlen);
/* Rank and dims of graph output k in this plan. */
int ep_plan_output_dims(const ep_plan *p, int k, int64_t *dims);
void ep_plan_free(ep_plan *p);
size_t ep_plan_arena(const ep_plan *p);
size_t ep_plan_scratch(const ep_plan *p);
int ep_plan_batch(const ep_plan *p);
/* Runs the plan; arena/scratch are at least ep_plan_arena/ep_plan_scratch bytes. */
int ep_plan_run(ep_plan *p, dnnl_stream_t stream, void *arena, void *scratch,
                const void *const *inputs, void *const *outputs, char *err, size_t errlen);
size_t ep_plan_describe(const ep_plan *p, char *buf, size_t cap);
/* Profiling: on, each run adds every step's time, and ep_plan_describe ends
 * each line with its mean time and share; off frees that. 0 or -ENG_ENOMEM. */
int ep_plan_set_timing(ep_plan *p, int on);
int ep_plan_private_weights(const ep_plan *p);
/* Calibration: while set, each run records per node the [min, max] of every
 * int8-eligible Conv's input into range[2*node .. 2*node+1]. */
void ep_plan_set_ranges(ep_plan *p, float *range);
/* Name prefix of the Identity nodes that stand in for unsupported ones. */
#define EP_STANDIN "aiinfer-standin:"
/* Adds the steps of the plan to a (op, kernel) histogram of n entries (see
 * eng_model_file_kernels); returns the new n. */
int ep_plan_kernels(const ep_plan *p, eng_op_kernel *out, int n, int cap);

#endif
