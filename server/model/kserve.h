/*
 * kserve: the Open Inference Protocol (KServe v2) over REST, wire side only:
 * parse an infer request (JSON tensors, or Triton's binary tensor extension),
 * check it against a model's declared inputs/outputs, and write the response
 * and error bodies. It knows nothing of sockets, engines or batching, so every
 * rule here is unit-tested on byte strings.
 *
 * Status contract: functions that judge client input return 0 or the HTTP
 * status to answer with (400 bad request, 413 over a limit) and write a
 * message naming the problem ("input 'x': shape [1,3] has 3 elements but data
 * has 4") into err. Nothing a client sends can make them allocate more than
 * the limits allow, or crash.
 *
 * Ownership: a parsed request owns the tensors it converted from JSON;
 * binary tensors borrow the body (valid while the body is), possibly
 * unaligned, so read them with memcpy. kserve_request_free releases it.
 */
#ifndef SERVER_MODEL_KSERVE_H
#define SERVER_MODEL_KSERVE_H

#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KSERVE_MAX_TENSORS 16
#define KSERVE_MAX_RANK    8
#define KSERVE_NAME_MAX    128
#define KSERVE_ID_MAX      256
#define KSERVE_ERRLEN      256

typedef enum kserve_dtype {
    KSERVE_INVALID = 0,
    KSERVE_BOOL,
    KSERVE_UINT8,
    KSERVE_UINT16,
    KSERVE_UINT32,
    KSERVE_UINT64,
    KSERVE_INT8,
    KSERVE_INT16,
    KSERVE_INT32,
    KSERVE_INT64,
    KSERVE_FP16,
    KSERVE_FP32,
    KSERVE_FP64,
    KSERVE_BYTES,
} kserve_dtype;

/* "FP32" for KSERVE_FP32; "INVALID" for anything unknown. */
const char *kserve_dtype_name(kserve_dtype t);
/* The dtype spelled s[0..len), or KSERVE_INVALID. */
kserve_dtype kserve_dtype_parse(const char *s, size_t len);
/* Bytes per element; 0 for BYTES and INVALID. */
size_t kserve_dtype_size(kserve_dtype t);

/* A tensor as the client sent it. */
typedef struct kserve_tensor {
    char name[KSERVE_NAME_MAX];
    kserve_dtype dtype;
    int rank;
    int64_t shape[KSERVE_MAX_RANK];
    size_t count;     /* elements: the product of shape */
    size_t nbytes;    /* count * dtype size */
    const void *data; /* little-endian, row-major; see `owned` */
    bool owned;       /* data was converted from JSON and is freed with the request */
    bool binary;      /* data came from the binary part of the body */
} kserve_tensor;

/* A requested output. binary: 1 binary, 0 JSON, -1 not said (request default).
 * classification: Triton's classification extension, "parameters":
 * {"classification": K}: the top K classes instead of the tensor (0: off). */
typedef struct kserve_output_req {
    char name[KSERVE_NAME_MAX];
    int binary;
    int classification;
} kserve_output_req;

typedef struct kserve_request {
    char id[KSERVE_ID_MAX];
    bool has_id;
    bool binary_output;  /* request-level "binary_data_output": true */
    uint64_t timeout_us; /* request-level "timeout" (Triton, microseconds); 0: none */
    int n_inputs;
    kserve_tensor inputs[KSERVE_MAX_TENSORS];
    int n_outputs; /* 0: every output of the model, as JSON unless binary_output */
    kserve_output_req outputs[KSERVE_MAX_TENSORS];
} kserve_request;

typedef struct kserve_limits {
    size_t max_tensor_bytes;  /* per input; 0 = 64 MiB */
    uint32_t max_json_tokens; /* 0 = 4 Mi */
    /* Optional: where each limit comes from, appended to a 413 message in
     * parentheses ("max-batch-size 8 x 16 bytes a sample"). */
    const char *tensor_why, *tokens_why;
} kserve_limits;

/*
 * Parses an infer request. json_len is the value of Inference-Header-Content-
 * Length (the JSON part; the rest of the body is binary tensors), or
 * (size_t)-1 when the header was absent (the whole body is JSON). Returns 0,
 * 400 or 413 (err set). On failure the request holds no memory.
 */
int kserve_request_parse(kserve_request *req, const char *body, size_t len, size_t json_len,
                         const kserve_limits *lim, char *err, size_t errlen);
void kserve_request_free(kserve_request *req);

/* What a model declares for one input or output. shape[i] == -1: any size. */
typedef struct kserve_io {
    const char *name;
    kserve_dtype dtype;
    int rank;
    int64_t shape[KSERVE_MAX_RANK];
} kserve_io;

/*
 * Checks a parsed request against a model: every declared input given exactly
 * once with the declared dtype, rank and fixed dims; no unknown inputs or
 * outputs; all inputs agree on a variable first (batch) dim. Reorders
 * req->inputs into the model's order. Returns 0 or 400 (err set).
 */
int kserve_request_check(kserve_request *req, const kserve_io *in, int n_in, const kserve_io *out,
                         int n_out, char *err, size_t errlen);

/* One computed output tensor, handed to the response writer. */
typedef struct kserve_result {
    const char *name;
    kserve_dtype dtype;
    int rank;
    const int64_t *shape;
    const void *data; /* count elements of dtype */
    size_t count;
    /* Optional, for classification: label i names class i (i < n_labels). */
    const char *const *labels;
    int n_labels;
} kserve_result;

/*
 * Appends the infer response to out: the outputs the request asked for (all
 * when it named none), JSON data or binary as requested, with the request id
 * echoed. An output requested with classification K comes back as Triton
 * sends it: a BYTES tensor shaped [rows, K] (rows: dim 0 when the rank is 2
 * or more, else [K]) of "score:index" or "score:index:label" strings, the
 * highest score first, over each row's remaining elements (binary: each
 * string as a 4-byte little-endian length and its bytes). *json_len receives the JSON part's length
 * when any output is binary (the value for Inference-Header-Content-Length), else 0. 0 or -ENOMEM.
 */
int kserve_response_write(buf *out, size_t *json_len, const char *model, const kserve_request *req,
                          const kserve_result *res, int n_res);

/* {"error": "<msg>"}. 0 or -ENOMEM. */
int kserve_error_write(buf *out, const char *msg);

/* GET /v2/models/{name}: {"name","versions","platform","inputs","outputs"}. */
int kserve_metadata_write(buf *out, const char *model, const kserve_io *in, int n_in,
                          const kserve_io *outs, int n_out);

#endif
