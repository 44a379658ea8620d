/* engine: the aiinfer ONNX inference engine, the one public header.
 *
 * Two handles:
 *   eng_model  a loaded, optimised graph with its weights. Immutable after load:
 *              the weights (already folded, fused and reordered for the backend) are
 *              read-only and shared by every context of the process, and by every
 *              process forked after the load (copy-on-write pages never written).
 *              (One internal, locked cache may add weights in another layout when a
 *              context's thread count or batch makes oneDNN ask for one; it is
 *              shared by all contexts of the process too.)
 *   eng_ctx    what one inference stream needs to run the model: backend primitives
 *              per batch size, an activation arena (it grows to the largest batch
 *              run: about batch x the two largest live activations) and scratchpad.
 *
 * Thread rule: an eng_model may be shared by any number of threads and contexts.
 * An eng_ctx is used by one thread at a time (no internal locking); use one context
 * per thread. Backend primitives are created lazily, on the thread that first runs a
 * given batch size (or calls eng_ctx_warmup), and keep a private scratchpad, so a
 * context may move between threads as long as calls never overlap.
 *
 * Thread policy: a context with threads == 1 never starts a thread of any kind; the
 * calling thread does all the work. With threads > 1 (dynamic-batch models), a
 * batch of at least `threads` items is split into chunks run by 1-thread
 * sub-contexts on threads the context owns, which block on a condition variable
 * between runs (no spinning). A smaller batch (e.g. batch 1) runs each layer on
 * `threads` OpenMP threads owned by the calling thread; libgomp lets those spin
 * between layers (OMP_WAIT_POLICY and GOMP_SPINCOUNT, read at process start),
 * which steals CPU from a server between requests and degrades badly when the
 * cores are shared: prefer N processes or threads with 1-thread contexts.
 *
 * Fork rule: eng_model_load never creates a thread or an OpenMP pool, so a process
 * may load models and then fork; contexts must be created after the fork (in the
 * worker). Forking while a threads > 1 context exists is undefined (its threads do
 * not survive the fork, and libgomp hangs).
 *
 * Errors: functions return 0 or a negative eng_status; loaders return NULL and
 * write a message naming what is wrong (the node and op, the tensor, the file) into
 * the caller's buffer. Bad input never aborts the process.
 */
#ifndef ENGINE_ENGINE_H
#define ENGINE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ENG_MAX_RANK 8
/* Suggested size for the error buffers of the loaders. */
#define ENG_ERRLEN 256

typedef struct eng_model eng_model;
typedef struct eng_ctx eng_ctx;

/* Status codes, returned negated (0 is success). */
typedef enum eng_status {
    ENG_OK = 0,
    ENG_EINVAL = 1,       /* bad argument: NULL, batch out of range, wrong index */
    ENG_ENOMEM = 2,       /* allocation failed */
    ENG_EIO = 3,          /* file could not be opened, read or mapped */
    ENG_EFORMAT = 4,      /* not a valid ONNX model or tensor */
    ENG_EUNSUPPORTED = 5, /* valid ONNX, but an op/attribute/dtype we do not run */
    ENG_ESHAPE = 6,       /* shapes that do not fit together */
    ENG_EBACKEND = 7,     /* oneDNN refused a primitive it should have accepted */
} eng_status;

/* Element types, numbered as ONNX TensorProto.DataType. Compute is float32; int64
 * (and int32/bool) tensors carry shapes, indices and axes. */
typedef enum eng_dtype {
    ENG_DTYPE_UNDEFINED = 0,
    ENG_FLOAT = 1,
    ENG_INT32 = 6,
    ENG_INT64 = 7,
    ENG_BOOL = 9,
    ENG_DOUBLE = 11,
} eng_dtype;

/* One graph input or output. shape[i] == -1 marks a dynamic dimension; only the
 * first (batch) dimension may be dynamic. `name` points into the model and lives
 * as long as it. `item_count` is the number of elements per batch item (product of
 * dims 1..rank-1; for rank 0 it is 1). */
typedef struct eng_tensor_info {
    const char *name;
    eng_dtype dtype;
    int rank;
    int64_t shape[ENG_MAX_RANK];
    int64_t item_count;
} eng_tensor_info;

/* Load options; a NULL pointer means all defaults (zero-initialise to get them). */
typedef struct eng_load_opts {
    /* 1: run every op with the portable C reference kernels (the test oracle).
     * 0: oneDNN where it applies, reference kernels for the rest. */
    int reference_only;
    /* 1: keep the graph as written (no BatchNorm folding or fusion). */
    int no_graph_passes;
    /* Graph inputs to freeze into constants at load, each a serialized ONNX
     * TensorProto matched to the input by its name, or when unnamed by position
     * among the last n_bind inputs (ONNX's node tests pass weights as inputs;
     * frozen, they take the same fast path as initializers). */
    int n_bind;
    const void *const *bind_pb;
    const size_t *bind_len;
} eng_load_opts;

/* Loads a model from a file (mapped, parsed, then unmapped). NULL on failure with
 * a message in err[errlen] (may be NULL). The caller frees with eng_model_free. */
eng_model *eng_model_load_file(const char *path, const eng_load_opts *opts, char *err,
                               size_t errlen);
/* Loads from memory; `data` is not referenced after the call returns. */
eng_model *eng_model_load_memory(const void *data, size_t len, const eng_load_opts *opts, char *err,
                                 size_t errlen);
/* Frees a model. Every context made from it must have been freed first. */
void eng_model_free(eng_model *m);

int eng_model_num_inputs(const eng_model *m);
int eng_model_num_outputs(const eng_model *m);
/* Fills *out for input/output i; -ENG_EINVAL when i is out of range. */
int eng_model_input(const eng_model *m, int i, eng_tensor_info *out);
int eng_model_output(const eng_model *m, int i, eng_tensor_info *out);
/* 0 when dim 0 of the inputs is dynamic: any batch runs, and item_count is per
 * batch item. 1 when all input shapes are fixed: every run is "batch 1" and
 * item_count covers the whole tensor. */
int eng_model_max_batch(const eng_model *m);
/* 1 when inputs have dynamic dimensions beyond the batch (a sequence length) or
 * dim 0 is not a batch (a sequence-first RNN): eng_tensor_info.shape holds -1
 * for every dynamic dim, item_count is 0, and runs go through
 * eng_ctx_run_shapes (eng_ctx_run refuses them). */
int eng_model_dynamic(const eng_model *m);

/* Multiply-accumulates of one forward pass at batch 1 (convs, Gemm, MatMul), and
 * the number of weight parameters (float initializer elements, before folding). */
int64_t eng_model_macs(const eng_model *m);
int64_t eng_model_params(const eng_model *m);
/* Multiply-accumulates of one forward pass on inputs of these shapes (as for
 * eng_ctx_run_shapes; a sequence length counts): eng_model_macs for a model
 * without dynamic dims or with shapes NULL, 0 when the shapes do not fit. */
int64_t eng_model_macs_shapes(const eng_model *m, const int64_t *const *shapes);
/* Op histogram of the model as loaded (before graph passes), for `aiinfer info`:
 * returns the number of distinct op types and fills up to `cap` entries. */
int eng_model_op_counts(const eng_model *m, const char **ops, int *counts, int cap);

/* Op types in a model file that the engine does not run (no kernel for the op,
 * or a domain other than ai.onnx, written "domain:Op"), each with its number of
 * nodes, subgraphs included, in order of first appearance. Works on the files
 * eng_model_load_file refuses (it stops at the first such op), so a tool can
 * list them all. Fills up to cap entries; returns how many it filled, or cap + 1
 * when more distinct ops did not fit, or -eng_status with a message in err when
 * the file cannot be read or parsed as ONNX. The second form reads a buffer. */
#define ENG_OPNAME_LEN 64
int eng_model_file_unsupported_ops(const char *path, char (*names)[ENG_OPNAME_LEN], int *counts,
                                   int cap, char *err, size_t errlen);
int eng_model_unsupported_ops(const void *data, size_t len, char (*names)[ENG_OPNAME_LEN],
                              int *counts, int cap, char *err, size_t errlen);

/* Readiness of a model file, for `aiinfer info`: every op type of the optimised
 * graph with the kernel that runs it ("onednn" or "c"), counted per (op, kernel),
 * in plan order, then every op the engine does not run ("unsupported"). The
 * batch-1 plan is built (oneDNN primitives are created, so its own fallbacks
 * count) but nothing runs; dynamic dims are probed at 1. Nodes folded into
 * constants at load or fused into another node do not appear. When the file
 * has unsupported ops, each such node is stood in by an Identity of its first
 * input so the rest of the graph can still be planned (the stand-ins are not
 * listed; if the graph still does not load, only the unsupported ops are).
 * Fills up to cap entries; returns how many it filled (at most cap), or
 * -eng_status with a message in err when the file cannot be read or parsed. */
typedef struct eng_op_kernel {
    char op[ENG_OPNAME_LEN];
    const char *kernel; /* "onednn", "c" or "unsupported" (static strings) */
    int count;
} eng_op_kernel;
int eng_model_file_kernels(const char *path, const eng_load_opts *opts, eng_op_kernel *out, int cap,
                           char *err, size_t errlen);

/* Opt-in int8: runs the f32 model once per calibration input (n items of the
 * model's one float input, each item_count floats), records the input range
 * of every dense Conv (one group, >= 8 input channels), and from then on plans
 * built by new contexts run those Convs on oneDNN's int8 kernels (u8/s8
 * activations per tensor, s8 weights per channel, f32 between layers).
 * Results then differ from f32 by quantization error: measure top-1 agreement
 * on your data. Call before any context of the model exists (it changes the
 * model). Returns the number of int8 Convs (> 0), or -eng_status with a
 * message. */
int eng_model_calibrate_int8(eng_model *m, int n, const float *const *items, char *err,
                             size_t errlen);

/* Context options; NULL means threads = 1, max_batch = 1, batch_invariant = 0. */
typedef struct eng_ctx_opts {
    int threads;   /* backend threads for each run (>= 1) */
    int max_batch; /* largest batch eng_ctx_run will accept (>= 1) */
    /* 1: an item's outputs are bit-identical whatever batch it runs in and
     * whatever the other items are. Every item runs alone through the batch-1,
     * 1-thread primitives from a 64-byte-aligned copy of its inputs (oneDNN is
     * run-to-run deterministic for one primitive on one machine); threads > 1
     * spreads the items of a batch over 1-thread sub-contexts. Costs whatever
     * batching or intra-op threads would have gained.
     * 0: a batch runs the primitives built for its size, which oneDNN may
     * implement differently (other blocking, other summation order): outputs
     * then differ from the batch-1 ones by float rounding (~1e-7 relative). */
    int batch_invariant;
} eng_ctx_opts;

/* Creates a context; NULL with a message in err on failure. */
eng_ctx *eng_ctx_create(const eng_model *m, const eng_ctx_opts *opts, char *err, size_t errlen);
void eng_ctx_free(eng_ctx *c);

/* Builds the primitives for each listed batch size now (otherwise on first run of
 * that size) and runs each once on zeros, so later runs have steady latency. */
int eng_ctx_warmup(eng_ctx *c, const int *batches, int n);

/* Runs one forward pass over `batch` items (1 <= batch <= max_batch).
 * inputs[i] holds batch * item_count elements of model input i's dtype (float for
 * images), in ONNX (NCHW) order; outputs[i] receives batch * item_count elements of
 * output i. The caller owns both; they may not overlap.
 * Returns 0, or -ENG_EINVAL / -ENG_ESHAPE / -ENG_ENOMEM / -ENG_EBACKEND; on error
 * a message is available from eng_ctx_error. */
int eng_ctx_run(eng_ctx *c, int batch, const void *const *inputs, void *const *outputs);
/* Dynamic models: builds (or finds) the plan for these input shapes (shapes[i]
 * holds input i's rank dims; fixed dims must match, dynamic ones are 1..2^24)
 * and writes output i's dims to out_dims[i * ENG_MAX_RANK ...] when out_dims is
 * not NULL, so the caller can size the outputs. A few plans are cached per
 * context (least recently used dropped). A shape that does not fit the graph
 * (an attention mask shorter than the ids) fails naming the node. */
int eng_ctx_plan_shapes(eng_ctx *c, const int64_t *const *shapes, int64_t *out_dims);
/* The same output dims without a context (shape inference on the model, which
 * stays read-only: any thread, no backend work). Costs a shape inference pass
 * with constant folding each call: a server calls it once per request. */
int eng_model_output_dims(const eng_model *m, const int64_t *const *shapes, int64_t *out_dims,
                          char *err, size_t errlen);
/* Runs a dynamic (or any) model on inputs of the given shapes; outputs[i] must
 * hold output i's elements at the dims eng_ctx_plan_shapes reported. */
int eng_ctx_run_shapes(eng_ctx *c, const int64_t *const *shapes, const void *const *inputs,
                       void *const *outputs);
/* Last error message of this context ("" when none). */
const char *eng_ctx_error(const eng_ctx *c);

/* Implementations the backend picked for a built batch size, one line per
 * step ("NODE Conv: onednn brgconv_1x1:avx512_core", "NODE Flatten: c-kernel",
 * "layout: nchw->nhwc"); `ref:` anywhere means oneDNN chose a slow reference
 * kernel. Builds the plan if needed. Writes at most cap bytes (NUL-terminated),
 * returns the full length. */
size_t eng_ctx_describe(eng_ctx *c, int batch, char *buf, size_t cap);
/* The same lines, each ending with the step's mean time over `runs` timed runs
 * on zero inputs (after two untimed ones) and its share of the run, for the
 * plan one thread runs (a split batch: one sub-context's share). Returns the
 * full length, 0 on error (see eng_ctx_error). */
size_t eng_ctx_profile(eng_ctx *c, int batch, int runs, char *buf, size_t cap);

const char *eng_strerror(int status);

#ifdef __cplusplus
}
#endif
#endif
