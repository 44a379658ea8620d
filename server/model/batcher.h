/*
 * batcher: dynamic batching for one model in one worker process.
 *
 * Submitters (the worker's event loop) queue jobs; one batcher thread forms
 * batches and runs them through a run callback (the engine, or a fake in the
 * tests). Batch rule, as Triton's dynamic batcher: starting from the oldest
 * queued job, take jobs in arrival order while they have the same shape key
 * (and the same bytes per sample) and the samples fit in max_batch; send at once when the batch is
 * full, when the next job cannot join (other shape), or when delay_us has passed since the OLDEST
 * job was queued; otherwise wait for more. delay_us = 0 never waits (a batch is whatever queued
 * while the previous one ran).
 *
 * Bounded: at most max_queue jobs wait (to be prepared or batched; see
 * batcher_job.prepare); batcher_submit refuses beyond it
 * (answer 503 + Retry-After). A job still queued past its deadline completes
 * with BATCHER_TIMEOUT and never runs.
 *
 * Completion: job->done(job) is called on the batcher thread (or on the
 * prepare thread, for a job its prepare step refused or that it was
 * preparing when the batcher stopped), exactly once for
 * every job batcher_submit accepted (also at shutdown: BATCHER_SHUTDOWN).
 * After done the batcher never touches the job again.
 *
 * Metrics go to a caller-provided batcher_stats (may live in memory shared by
 * all workers); every update is an atomic add, so readers on other threads or
 * processes see consistent counters without locks.
 *
 * Ownership: the caller owns jobs and their input/output buffers until done.
 */
#ifndef SERVER_MODEL_BATCHER_H
#define SERVER_MODEL_BATCHER_H

#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>

#define BATCHER_MAX_IO    16
#define BATCHER_PREP_NICE 5

enum batcher_status {
    BATCHER_OK = 0,
    BATCHER_TIMEOUT,     /* waited in the queue past its deadline */
    BATCHER_BACKEND,     /* the run callback failed; err says why */
    BATCHER_SHUTDOWN,    /* the batcher stopped before running it */
    BATCHER_CANCELLED,   /* job->cancelled said so while it was queued */
    BATCHER_BAD_INPUT,   /* the run callback blamed the inputs (returned > 0); err says why */
    BATCHER_PREP_FAILED, /* job->prepare refused it (the caller kept why) */
};

typedef struct batcher_job batcher_job;
struct batcher_job {
    /* set by the submitter */
    int batch;                          /* samples (dim 0 of every input), >= 1 */
    uint64_t shape_key;                 /* only jobs with equal keys share a batch */
    size_t in_bytes[BATCHER_MAX_IO];    /* bytes per sample of each input */
    size_t out_bytes[BATCHER_MAX_IO];   /* bytes per sample of each output */
    const void *inputs[BATCHER_MAX_IO]; /* batch * in_bytes[i]; any alignment */
    void *outputs[BATCHER_MAX_IO];      /* batch * out_bytes[i], written by the batcher */
    uint64_t deadline_us;               /* ev_clock_us() value; 0 = none */
    void (*done)(batcher_job *job);
    /* Optional, called from the batcher thread (lock held) while the job is
     * queued: non-zero drops it unrun (the client went away). */
    int (*cancelled)(batcher_job *job);
    /* Optional: the request's own work before it can be batched (decoding an
     * image, parsing JSON tensors), run on the batcher's prepare thread so it
     * never stalls the submitter's event loop, under the same max_queue
     * bound. It sets batch, shape_key, the byte counts, inputs and outputs,
     * and returns 0; non-zero completes the job with BATCHER_PREP_FAILED.
     * With a prepare, batch may be 0 at submit. Jobs are prepared one at a
     * time in arrival order, while the batch thread runs earlier batches;
     * the prepare thread runs BATCHER_PREP_NICE nice levels below the
     * others, so decoding yields the CPU to the event loop and to inference. */
    int (*prepare)(batcher_job *job);
    void *data;
    /* set by the batcher before done */
    int status;         /* enum batcher_status */
    char err[256];      /* for BATCHER_BACKEND and BATCHER_BAD_INPUT */
    uint64_t queued_us; /* time spent queued */
    uint64_t run_us;    /* compute time of the batch it ran in */
    int ran_batch;      /* samples in the batch it ran in */
    batcher_job *_next; /* private */
    uint64_t _enqueued; /* private */
};

/* Fixed histogram bounds in microseconds (Prometheus "le"); +Inf implied. */
#define BATCHER_HIST_BUCKETS 16
extern const uint64_t batcher_hist_le[BATCHER_HIST_BUCKETS];

typedef struct batcher_hist {
    uint64_t bucket[BATCHER_HIST_BUCKETS + 1]; /* non-cumulative; last is +Inf */
    uint64_t sum_us;
    uint64_t count;
} batcher_hist;

/* One model's counters in one worker. Zero-initialise. */
typedef struct batcher_stats {
    uint64_t success;         /* requests answered with outputs */
    uint64_t fail_rejected;   /* refused: queue full */
    uint64_t fail_timeout;    /* expired in the queue */
    uint64_t fail_cancelled;  /* client gone while queued */
    uint64_t fail_backend;    /* engine error */
    uint64_t fail_bad_input;  /* counted by the caller: 4xx for this model */
    uint64_t inference_count; /* samples run */
    uint64_t exec_count;      /* batches run: inference_count / exec_count = mean batch */
    int64_t pending;          /* queued, not yet running (gauge) */
    batcher_hist queue;       /* per request: time queued */
    batcher_hist compute;     /* per batch: run time */
} batcher_stats;

/* Adds to a stat from any thread. */
void batcher_stats_add(uint64_t *counter, uint64_t n);
void batcher_hist_record(batcher_hist *h, uint64_t us);
/*
 * Appends the Prometheus text for one model: the sum of n stats slots (one
 * per worker). Metric names are documented in docs/serving.md.
 */
int batcher_stats_render(buf *out, const char *model, const batcher_stats *slots, int n);
/*
 * Appends the same sums as one JSON object in the shape of Triton's
 * statistics extension: {"name","version","inference_count","execution_count",
 * "inference_stats":{"success","fail","queue","compute_infer"}} with
 * {"count","ns"} each (fail: count only).
 */
int batcher_stats_json(buf *out, const char *model, const batcher_stats *slots, int n);

/*
 * Runs one batch of `batch` samples: inputs[i] holds batch * in_bytes[i]
 * bytes (aligned for any type), outputs[i] receives batch * out_bytes[i].
 * Returns 0; a negative value with a message in err when the backend failed
 * (every job: BATCHER_BACKEND); or a positive value with a message when the
 * inputs caused it (an index out of range). Then a batch of several jobs is
 * rerun one job at a time, so only the jobs whose own inputs fail get
 * BATCHER_BAD_INPUT and the others their outputs.
 */
typedef int (*batcher_run_fn)(void *ctx, int batch, const void *const *inputs, void *const *outputs,
                              char *err, size_t errlen);

typedef struct batcher_opts {
    int max_batch;     /* >= 1 */
    uint64_t delay_us; /* see the batch rule above */
    int max_queue;     /* >= 1 */
    int n_inputs;      /* <= BATCHER_MAX_IO */
    int n_outputs;     /* <= BATCHER_MAX_IO */
    /* 1: bucketing for requests of many shapes (a sequence length): a batch
     * gathers every queued job with the oldest job's shape, skipping jobs of
     * other shapes, which keep their order; a job of another shape does not
     * end the wait (0: the rule above, in strict arrival order). */
    int bucket;
    batcher_run_fn run; /* called on the batcher thread only */
    /* Instead of run, when set: also gets the batch's first job, whose shape
     * (by the submitter's shape_key, which every job of the batch shares)
     * a model with dynamic dimensions needs to run the batch. */
    int (*run_shaped)(void *ctx, const batcher_job *first, int batch, const void *const *inputs,
                      void *const *outputs, char *err, size_t errlen);
    void *run_ctx;
    /* Optional, on the batcher thread before any run (create the engine
     * context there); a failure makes every job fail with BATCHER_BACKEND. */
    int (*thread_init)(void *run_ctx, char *err, size_t errlen);
    void (*thread_free)(void *run_ctx);
    batcher_stats *stats; /* required; outlives the batcher */
} batcher_opts;

typedef struct batcher batcher;

/* Starts the batcher thread. NULL with errno set (EINVAL, ENOMEM, EAGAIN). */
batcher *batcher_create(const batcher_opts *opts);
/*
 * Queues a job. 0: accepted (done will be called). -EAGAIN: the queue is
 * full (job untouched, counted as rejected). -EINVAL: batch outside
 * 1..max_batch. -ESHUTDOWN: stopping.
 */
int batcher_submit(batcher *b, batcher_job *job);
/* Stops the thread: queued jobs complete with BATCHER_SHUTDOWN; joins. */
void batcher_free(batcher *b);

#endif
