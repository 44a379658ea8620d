/*
 * the model kind's internals, shared by app.c (lifecycle, engine glue),
 * conf.c (options) and http.c (handlers).
 *
 * Memory and processes: the master loads every model (eng_model: weights,
 * read-only) before fork, so workers share one copy of the weights; with
 * lazy-apps each worker loads its own. Per worker, worker_init starts one
 * batcher thread per model; that thread creates the engine context (contexts
 * must be made after fork) and warms it up for batch sizes 1..max-batch-size.
 * The stats slots (one per worker, per model) live in one MAP_SHARED mapping
 * made at load, so any worker can render the sum for /metrics.
 *
 * Request path: the handler on the event loop does only what takes
 * microseconds (route, method, query, content sniffing), builds an mreq,
 * submits its batcher_job and returns APP_PENDING. Work that grows with the
 * body (JSON tensor parsing, image decoding) is the job's prepare step, run
 * by the batcher's prepare thread under the same max-queue bound, so a big body never
 * stalls the loop and excess load is shed with 503. The batcher thread
 * runs the batch and calls mreq_done, which queues the request on the core's
 * completion queue (app_complete_async, the one app threads use); the loop
 * encodes the response and calls app_finish. So all response writing happens on the
 * loop, and the batcher thread only computes.
 */
#ifndef SERVER_MODEL_APP_INT_H
#define SERVER_MODEL_APP_INT_H

#include "engine/engine.h"
#include "lib/buf.h"
#include "server/app.h"
#include "server/model/batcher.h"
#include "server/model/image.h"
#include "server/model/kserve.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define MODEL_MAX 16

typedef struct model_conf {
    char *name, *path;
    int threads;         /* engine threads per worker */
    int max_batch;       /* max-batch-size */
    int64_t delay_us;    /* batch-delay-us */
    int batch_invariant; /* batch-invariant: each sample on the batch-1 kernels */
    int max_queue;       /* max-queue */
    int max_seq;         /* max-sequence: bound of a dynamic dim beyond the batch */
    int64_t timeout_ms;  /* model-timeout-ms: queued longer -> 503 (0: none) */
    char *labels_path;
    char *int8_path;  /* model-int8: calibration inputs (.npy); NULL: f32 */
    int img_w, img_h; /* image-size; 0: from the model's input shape */
    int layout;       /* -1 from the shape, else IMAGE_NCHW / IMAGE_NHWC */
    float mean[3], std[3], scale;
} model_conf;

typedef struct model {
    model_conf c;
    eng_model *em; /* NULL when it failed to load: then err says why */
    char err[ENG_ERRLEN];
    int n_in, n_out;
    kserve_io in[BATCHER_MAX_IO], out[BATCHER_MAX_IO];
    size_t in_item[BATCHER_MAX_IO], out_item[BATCHER_MAX_IO]; /* bytes per sample */
    int batch_dynamic; /* dim 0 is variable: requests may carry 1..max_batch */
    /* dims beyond the batch are dynamic (eng_model_dynamic): in_item/out_item
     * are 0 and every request is sized by model_size_dynamic; jobs batch only
     * with jobs of equal shapes (the batcher's shape_key) */
    int dynamic;
    /* dynamic models: output dims of the last few input shapes (dim 0 at 1),
     * so a request of a known length skips shape inference; any thread */
    pthread_mutex_t dims_mu;
    struct dims_memo *memo; /* DIMS_MEMO entries, round-robin, or NULL */
    int memo_next;
    char **labels; /* n_labels lines of the labels file, or NULL */
    int n_labels;
    image_prep prep;             /* for classify; prep.channels == 0: the model takes no images */
    void *zeros[BATCHER_MAX_IO]; /* one zero sample per input, for model-route */
    /* per worker, after worker_init */
    batcher *b;
    eng_ctx *ctx;         /* owned by the batcher thread */
    int ready;            /* atomic: warm-up done */
    batcher_stats *stats; /* this worker's slot (points into the shared mapping) */
    batcher_stats *slots; /* all slots: nslots of them */
} model;

typedef struct app_model app_model;

typedef struct mroute {
    char *path;
    model *m;
    app_model *app;
} mroute;

/* One request in flight: owns its parsed request and output buffers. */
typedef enum mreq_kind { MREQ_INFER, MREQ_CLASSIFY, MREQ_HELLO } mreq_kind;
typedef struct mreq {
    batcher_job job; /* first: the batcher hands back &job */
    app_model *app;
    app_request *r;
    model *m;
    mreq_kind kind;
    kserve_request kreq;
    int batch;
    int top_k;
    float *image; /* classify input (owned) */
    size_t hlen;  /* infer: Inference-Header-Content-Length, (size_t)-1 when absent */
    uint64_t submitted_us;
    /* set by a prepare step that refused the request (BATCHER_PREP_FAILED) */
    int fail_status;
    char fail_msg[KSERVE_ERRLEN];
    void *outputs[BATCHER_MAX_IO];
    /* dynamic models: this request's input and output dims (dim 0: its batch) */
    int64_t in_dims[BATCHER_MAX_IO][ENG_MAX_RANK];
    int64_t out_dims[BATCHER_MAX_IO][ENG_MAX_RANK];
} mreq;

struct app_model {
    model models[MODEL_MAX];
    int n;
    mroute routes[MODEL_MAX];
    int nroutes;
    int need_app;
    int server_timing; /* `server-timing`: the batch's figures in a Server-Timing header */
    int worker_id;
    int nslots;
    void *shm; /* the stats mapping */
    size_t shm_len;
    image_limits img_lim;
};

/* app_model_conf.c: the kind's options, bound to model_opts */
typedef struct model_opts {
    cfg_list model;
    cfg_list model_threads;
    cfg_list max_batch_size;
    cfg_list batch_delay_us;
    cfg_list batch_invariant;
    cfg_list max_queue;
    cfg_list max_sequence;
    cfg_list model_timeout_ms;
    cfg_list labels;
    cfg_list model_int8;
    cfg_list image_size;
    cfg_list image_mean;
    cfg_list image_std;
    cfg_list image_scale;
    cfg_list image_layout;
    int image_max_side;
    int64_t image_max_pixels;
    cfg_list model_route;
} model_opts;
extern const cfg_option model_options[];
/* Fills app->models[*].c from the config; -1 with err on a bad value. */
int model_conf_read(app_model *app, const cfg *c, char *err, size_t errlen);
void model_conf_free(model_conf *mc);
/* Reads one label per line; -1 with err. */
int model_labels_load(model *m, char *err, size_t errlen);
/* int8.c: model-int8: calibrates m->em on the items of m->c.int8_path (before any
 * context, so before the fork); the number of int8 layers, or -1 with err. */
int model_int8_calibrate(model *m, char *err, size_t errlen);
/* Derives image preprocessing from the model's first input and the options. */
void model_prep_init(model *m);

/* app_model_http.c */
/* Registers the routes; returns how many paths were taken (err names one). */
int model_http_register(app_model *app, app_ctx *ctx, char *err, size_t errlen);
/* Scores of a classifier's output: x itself when it already is a probability
 * vector, else its softmax (any thread). */
void model_scores(const float *x, int n, float *p);
/* Loop: encode and finish a completed request, then free it. */
void mreq_finish(mreq *q);

/* app_model.c */
model *model_find(app_model *app, const char *name, size_t len);
/* Submits a prepared request; on failure answers it and frees it. Returns APP_PENDING or APP_DONE.
 */
int mreq_submit(mreq *q);
void mreq_free(mreq *q);
/* Answers a plain error {"error": msg} with status; counts a bad input for m when 4xx. */
int model_reply_error(app_request *r, model *m, int status, const char *msg);
/* Dynamic models: sizes q from q->in_dims (every dynamic dim checked against
 * max-sequence): bytes per sample in q->job, output dims in q->out_dims.
 * Returns 0, or 400/413 with err naming the inputs or the limit. */
int model_size_dynamic(model *m, mreq *q, char *err, size_t errlen);
/* 1 when a configured model failed to load, naming each in why (app_kind.failed). */
int model_failed(void *state, char *why, size_t len);

#endif
