/*
 * model_api: a synchronous, thread-safe entry into the model app for code in
 * the same process (the `aiserve` Python module). A call submits one job to
 * the calling worker's batcher for the model -- the same queue, bounds,
 * timeouts, batching and metrics as HTTP requests -- and blocks the calling
 * thread until the job completes. Callers release the GIL around it.
 *
 * The model app registers its state when it loads (in the master before
 * fork, or in each worker with lazy-apps) and unregisters when it is freed;
 * that one pointer per process is part of the process model. Models exist in
 * every process after load, but batchers only in workers (after
 * worker_init): in the master, model_api_infer fails with -ESRCH.
 *
 * Shutdown: model_api_close (the model app's free) refuses new calls, lets
 * the batchers complete queued jobs with BATCHER_SHUTDOWN, and waits until
 * every caller has left before the models are freed.
 */
#ifndef SERVER_MODEL_API_H
#define SERVER_MODEL_API_H

#include "server/model/batcher.h"
#include "server/model/kserve.h"

#include <stddef.h>

#define MODEL_API_ERRLEN 320

typedef struct model_api_info {
    const char *name; /* valid while the model app is loaded */
    int n_in, n_out;
    const kserve_io *in, *out;        /* shape[0] < 0: variable batch */
    const size_t *in_item, *out_item; /* bytes per sample */
    int max_batch;
    int ready;         /* this process's batcher is warm */
    int takes_image;   /* classify works */
    const char *error; /* why it failed to load, or NULL */
} model_api_info;

/* Keeps the registered model app alive for the calling thread (the pointers
 * model_api_info_get hands out stay valid) until model_api_release; calls
 * nest. 0, or -ENOENT when no model app is registered or it is stopping. */
int model_api_hold(void);
void model_api_release(void);

/* Models registered in this process (0 when none). */
int model_api_count(void);
/* Describes model i (0..count-1), or the model named name when i < 0. 0 or
 * -ENOENT. */
int model_api_info_get(int i, const char *name, model_api_info *out);

/*
 * Runs one request of `batch` samples: inputs[i] holds batch * in_item[i]
 * bytes in the model's dtype, outputs[i] room for batch * out_item[i].
 * Blocks until done. 0, or:
 *   -ENOENT   no such model        -ESRCH   no batcher here (master, or load failed)
 *   -EAGAIN   queue full (max-queue)   -ETIMEDOUT  model-timeout-ms passed in the queue
 *   -EINVAL   the inputs do not fit the model (the engine said so)
 *   -EIO      the engine failed     -ESHUTDOWN  the worker is stopping
 * with err set for each.
 */
int model_api_infer(const char *name, int batch, const void *const *inputs, void *const *outputs,
                    char *err, size_t errlen);

/* One classification: decodes a JPEG/PNG and preprocesses it with the model's
 * image pipeline (as /predict), runs it, and writes the model's first output
 * turned into scores (softmax unless it already is a probability vector) into
 * scores (out_item[0] / 4 floats). Errors as model_api_infer; a bad image is
 * -EINVAL (corrupt), -ENOTSUP (not JPEG/PNG) or -E2BIG (over image-max-*). */
int model_api_classify(const char *name, const void *image, size_t len, float *scores, char *err,
                       size_t errlen);
/* The label of class k, or NULL when the model has no labels file. */
const char *model_api_label(const char *name, int k);

/* Counts a request refused for its inputs before submitting (fail BAD_INPUT). */
void model_api_count_bad_input(const char *name);

/* The model app's side. */
struct app_model;
void model_api_register(struct app_model *app);
/* Refuses new calls; returns once the caller may free the batchers. */
void model_api_close(struct app_model *app);
/* After the batchers are freed: waits for the callers still inside. */
void model_api_drain(struct app_model *app);

#endif
