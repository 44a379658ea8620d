/* aiinfer: command-line front end of the engine.
 *   aiinfer info MODEL
 *   aiinfer run MODEL --input FILE... --output FILE [--shape D,D,..] [--threads N]
 *   aiinfer bench MODEL [--threads N] [--batch B] [--seconds S] [--input FILE...]
 *                [--omp-wait active|passive] [--batch-invariant]
 *   aiinfer check [--reference] DIR...   (ONNX backend-test directories)
 *   aiinfer layers MODEL [--batch B] [--time]  (which kernel runs each layer, its time)
 *   run/bench/layers --int8 CALIB        (dense Convs, Gemm in int8, calibrated on CALIB)
 *   aiinfer share MODEL [--workers N]    (RSS/PSS of workers forked after load) */
#include "engine/conform.h"
#include "engine/engine.h"
#include "engine/peak.h"
#include "engine/tensorio.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_IO 16

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: aiinfer info [--reference] MODEL\n"
        "       aiinfer run MODEL --input FILE [--input FILE...] --output FILE [--output FILE...]\n"
        "                   [--shape D,D,...] [--threads N] [--reference] [--batch-invariant]\n"
        "       aiinfer bench MODEL [--threads N] [--batch B] [--seconds S] [--input FILE...]\n"
        "                   [--omp-wait active|passive]   (how OpenMP threads wait; restarts)\n"
        "                   [--batch-invariant]   (every item alone on the batch-1 primitives)\n"
        "       aiinfer layers MODEL [--batch B] [--threads N] [--batch-invariant] [--time]\n"
        "                   (--time: each step's mean time over 50 runs on zeros, and share)\n"
        "       (run, bench, layers: --int8 CALIB   dense Convs and Gemm in int8, calibrated\n"
        "        on the inputs in CALIB, a batch for the model's one input)\n"
        "       aiinfer check [--reference] [-v] TESTDIR...\n"
        "       aiinfer share MODEL [--workers N] [--seconds S]   (memory of forked workers)\n"
        "       aiinfer --help | --version\n"
        "Tensor files: .npy, ONNX TensorProto .pb, or raw little-endian float32 (needs "
        "--shape).\n");
}

typedef struct cli {
    const char *model;
    const char *in[MAX_IO], *out[MAX_IO];
    int nin, nout;
    int threads, batch, reference, verbose, workers, batch_invariant;
    double seconds;
    int shape_rank;
    int64_t shape[ENG_MAX_RANK];
    const char *dirs[4096];
    int ndirs;
    const char *int8; /* calibration inputs: run the dense Convs and Gemms in int8 */
    int time;         /* layers --time */
} cli;

static int parse_shape(const char *s, cli *c)
{
    c->shape_rank = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || c->shape_rank >= ENG_MAX_RANK) return -1;
        c->shape[c->shape_rank++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return c->shape_rank ? 0 : -1;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* Parses options after the command; returns 0, or 2 after printing an error. */
static int parse_args(int argc, char **argv, cli *c)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--input") && v && c->nin < MAX_IO)
            c->in[c->nin++] = argv[++i];
        else if (!strcmp(a, "--output") && v && c->nout < MAX_IO)
            c->out[c->nout++] = argv[++i];
        else if (!strcmp(a, "--shape") && v)
            bad = parse_shape(argv[++i], c);
        else if (!strcmp(a, "--threads") && v)
            bad = parse_int(argv[++i], 1, 256, &c->threads);
        else if (!strcmp(a, "--workers") && v)
            bad = parse_int(argv[++i], 1, 64, &c->workers);
        else if (!strcmp(a, "--batch") && v)
            bad = parse_int(argv[++i], 1, 4096, &c->batch);
        else if (!strcmp(a, "--seconds") && v) {
            char *end;
            c->seconds = strtod(argv[++i], &end);
            bad = *end || !(c->seconds > 0 && c->seconds <= 3600);
        } else if (!strcmp(a, "--omp-wait") && v) {
            i++;
            bad = strcmp(v, "active") && strcmp(v, "passive");
        } else if (!strcmp(a, "--batch-invariant"))
            c->batch_invariant = 1;
        else if (!strcmp(a, "--reference"))
            c->reference = 1;
        else if (!strcmp(a, "--int8") && v)
            c->int8 = argv[++i];
        else if (!strcmp(a, "--time"))
            c->time = 1;
        else if (!strcmp(a, "-v"))
            c->verbose = 1;
        else if (a[0] == '-') {
            fprintf(stderr, "aiinfer: unknown or incomplete option '%s'\n", a);
            return 2;
        } else if (!c->model)
            c->model = a;
        else if (c->ndirs < 4096)
            c->dirs[c->ndirs++] = a;
        if (bad) {
            fprintf(stderr, "aiinfer: bad value '%s' for %s\n", argv[i], a);
            return 2;
        }
    }
    return 0;
}

/* --int8 FILE: FILE holds calibration inputs for the model's one input, as a
 * batch (N items); returns 0 or 1 after printing the error. */
static int calibrate(eng_model *m, const char *path)
{
    char err[ENG_ERRLEN];
    eng_tensor_info ti;
    et_tensor t = {0};
    int rc = eng_model_num_inputs(m) != 1 || eng_model_input(m, 0, &ti);
    if (rc) snprintf(err, sizeof(err), "--int8 needs a model with one input");
    if (!rc) rc = et_read(path, ET_AUTO, ENG_FLOAT, -1, NULL, &t, err, sizeof(err)) != 0;
    int64_t n = !rc && ti.item_count > 0 ? et_numel(&t) / ti.item_count : 0;
    if (!rc && (t.dtype != ENG_FLOAT || n < 1 || n * ti.item_count != et_numel(&t))) {
        snprintf(err, sizeof(err), "%s: want float32 items of %lld elements for --int8", path,
                 (long long)ti.item_count);
        rc = 1;
    }
    const float **items = rc ? NULL : malloc((size_t)n * sizeof(*items));
    if (!rc && !items) rc = 1, snprintf(err, sizeof(err), "out of memory");
    for (int64_t i = 0; !rc && i < n; i++) items[i] = (const float *)t.data + i * ti.item_count;
    int nq = rc ? 0 : eng_model_calibrate_int8(m, (int)n, items, err, sizeof(err));
    rc = rc || nq < 0;
    if (rc)
        fprintf(stderr, "aiinfer: --int8: %s\n", err);
    else
        fprintf(stderr,
                "aiinfer: int8: %d layers (dense Conv, Gemm), calibrated on %lld input(s) of %s\n",
                nq, (long long)n, path);
    free(items);
    et_tensor_clear(&t);
    return rc;
}

static eng_model *load(const cli *c)
{
    char err[ENG_ERRLEN];
    eng_load_opts o = {.reference_only = c->reference};
    eng_model *m = eng_model_load_file(c->model, &o, err, sizeof(err));
    if (!m) fprintf(stderr, "aiinfer: %s\n", err);
    if (m && c->int8 && calibrate(m, c->int8)) {
        eng_model_free(m);
        return NULL;
    }
    return m;
}

static const char *dtype_name(eng_dtype t)
{
    return t == ENG_FLOAT   ? "float32"
           : t == ENG_INT64 ? "int64"
           : t == ENG_INT32 ? "int32"
                            : "bool";
}

static void print_info(const char *kind, const eng_tensor_info *t)
{
    printf("%s %s %s [", kind, t->name, dtype_name(t->dtype));
    for (int d = 0; d < t->rank; d++) {
        if (t->shape[d] < 0)
            printf("%sN", d ? "," : "");
        else
            printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
    }
    printf("]\n");
}

/* After a failed load: every op of the file the engine does not run, counted
 * (the loader names only the first). */
static void print_unsupported(const char *path)
{
    char names[64][ENG_OPNAME_LEN], err[ENG_ERRLEN];
    int counts[64];
    int n = eng_model_file_unsupported_ops(path, names, counts, 64, err, sizeof(err));
    if (n <= 0) return;
    int nodes = 0, shown = n < 64 ? n : 64;
    for (int i = 0; i < shown; i++) nodes += counts[i];
    printf("unsupported ops: %d type%s, %d node%s%s:", shown, shown > 1 ? "s" : "", nodes,
           nodes > 1 ? "s" : "", n > 64 ? " (and more)" : "");
    for (int i = 0; i < shown; i++) printf(" %s=%d", names[i], counts[i]);
    printf("\n");
}

/* Per-op readiness: which kernel runs each op of the optimised graph (or
 * none), as a table, then a one-line verdict. */
static void print_kernels(const cli *c)
{
    eng_op_kernel k[128];
    char err[ENG_ERRLEN];
    eng_load_opts o = {.reference_only = c->reference};
    int n = eng_model_file_kernels(c->model, &o, k, 128, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "aiinfer: kernels: %s\n", err);
        return;
    }
    int nodes[3] = {0, 0, 0}, types_bad = 0; /* onednn, c, unsupported */
    printf("%-36s %6s  %s\n", "op", "count", "kernel");
    for (int i = 0; i < n; i++) {
        printf("%-36s %6d  %s\n", k[i].op, k[i].count, k[i].kernel);
        int j = !strcmp(k[i].kernel, "onednn") ? 0 : !strcmp(k[i].kernel, "c") ? 1 : 2;
        nodes[j] += k[i].count;
        types_bad += j == 2;
    }
    if (types_bad)
        printf("verdict: NOT READY: %d op type%s (%d node%s) without a kernel; %d node%s would "
               "run on oneDNN, %d in C\n",
               types_bad, types_bad > 1 ? "s" : "", nodes[2], nodes[2] > 1 ? "s" : "", nodes[0],
               nodes[0] == 1 ? "" : "s", nodes[1]);
    else
        printf("verdict: ready: %d node%s, %d on oneDNN, %d in C\n", nodes[0] + nodes[1],
               nodes[0] + nodes[1] == 1 ? "" : "s", nodes[0], nodes[1]);
}

static int cmd_info(const cli *c)
{
    eng_model *m = load(c);
    if (!m) {
        print_unsupported(c->model);
        print_kernels(c);
        return 1;
    }
    eng_tensor_info t;
    for (int i = 0; i < eng_model_num_inputs(m); i++)
        if (!eng_model_input(m, i, &t)) print_info("input", &t);
    for (int i = 0; i < eng_model_num_outputs(m); i++)
        if (!eng_model_output(m, i, &t)) print_info("output", &t);
    const char *ops[64];
    int counts[64];
    int n = eng_model_op_counts(m, ops, counts, 64);
    printf("ops");
    for (int i = 0; i < n && i < 64; i++) printf(" %s=%d", ops[i], counts[i]);
    printf("\nparameters %lld\nmacs %lld (%.1f M per item)\nbatch %s\n",
           (long long)eng_model_params(m), (long long)eng_model_macs(m), eng_model_macs(m) / 1e6,
           eng_model_max_batch(m) ? "fixed" : "dynamic");
    eng_model_free(m);
    print_kernels(c);
    return 0;
}

/* "[N,3,160,160]" (N for a dynamic dim) into buf. */
static const char *shape_str(const int64_t *dims, int rank, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (int d = 0; d < rank && n < cap; d++) {
        int k = dims[d] < 0
                    ? snprintf(buf + n, cap - n, "%sN", d ? "," : "")
                    : snprintf(buf + n, cap - n, "%s%lld", d ? "," : "", (long long)dims[d]);
        n += k > 0 ? (size_t)k : 0;
    }
    return buf;
}

/* Batch of a set of input tensors: dim 0 for dynamic models, 1 for fixed ones.
 * Each tensor must have the model's rank and its fixed dims. */
static int input_batch(const eng_model *m, const et_tensor *ins, int n, char *err, size_t errlen)
{
    int batch = 1;
    for (int i = 0; i < n; i++) {
        eng_tensor_info t;
        eng_model_input(m, i, &t);
        int64_t have = et_numel(&ins[i]);
        if (ins[i].dtype != t.dtype) {
            snprintf(err, errlen, "input '%s': type %s, model wants %s", t.name,
                     ins[i].from_f64 ? "float64 (read as float32)" : dtype_name(ins[i].dtype),
                     dtype_name(t.dtype));
            return -1;
        }
        int bad_dim = ins[i].rank != t.rank ? -1 : t.rank;
        for (int d = 0; d < t.rank && bad_dim == t.rank; d++)
            if (t.shape[d] >= 0 && ins[i].dims[d] != t.shape[d]) bad_dim = d;
        if (bad_dim != t.rank) {
            char got[48], want[48]; /* a longer shape is cut short */
            shape_str(ins[i].dims, ins[i].rank, got, sizeof(got));
            shape_str(t.shape, t.rank, want, sizeof(want));
            /* the message may be cut at errlen; the return value says by how much */
            int k =
                bad_dim < 0
                    ? snprintf(err, errlen, "input '%s': shape [%s] has rank %d, model wants [%s]",
                               t.name, got, ins[i].rank, want)
                    : snprintf(err, errlen,
                               "input '%s': shape [%s], model wants [%s] (dim %d is %lld, not "
                               "%lld)",
                               t.name, got, want, bad_dim, (long long)ins[i].dims[bad_dim],
                               (long long)t.shape[bad_dim]);
            (void)k; /* a cut message is still a message */
            return -1;
        }
        if (!t.item_count || have % t.item_count || (i && have / t.item_count != batch)) {
            snprintf(err, errlen, "input '%s': %lld elements do not fit items of %lld", t.name,
                     (long long)have, (long long)t.item_count);
            return -1;
        }
        batch = (int)(have / t.item_count);
        if (eng_model_max_batch(m) && batch != 1) {
            snprintf(err, errlen, "input '%s': %lld elements, model wants %lld", t.name,
                     (long long)have, (long long)t.item_count);
            return -1;
        }
    }
    return batch < 1 ? (snprintf(err, errlen, "empty input"), -1) : batch;
}

/* infer() for models with dynamic dims beyond the batch: the input files'
 * shapes are the run's shapes, the plan reports the outputs'. */
static int infer_shaped(eng_model *m, et_tensor *ins, int nin, et_tensor *outs, int threads,
                        char *err, size_t errlen)
{
    const int64_t *shapes[MAX_IO];
    int64_t odims[MAX_IO * ENG_MAX_RANK];
    for (int i = 0; i < nin; i++) {
        eng_tensor_info t;
        eng_model_input(m, i, &t);
        if (ins[i].dtype != t.dtype || ins[i].rank != t.rank) {
            snprintf(err, errlen, "input '%s': %s of rank %d, model wants %s of rank %d", t.name,
                     dtype_name(ins[i].dtype), ins[i].rank, dtype_name(t.dtype), t.rank);
            return 1;
        }
        shapes[i] = ins[i].dims;
    }
    eng_ctx_opts co = {.threads = threads, .max_batch = 1};
    eng_ctx *ctx = eng_ctx_create(m, &co, err, errlen);
    if (!ctx) return 1;
    const void *ip[MAX_IO];
    void *op[MAX_IO];
    int nout = eng_model_num_outputs(m), rc = 0;
    if (eng_ctx_plan_shapes(ctx, shapes, odims)) {
        snprintf(err, errlen, "%s", eng_ctx_error(ctx));
        rc = 1;
    }
    for (int i = 0; i < nin; i++) ip[i] = ins[i].data;
    for (int i = 0; !rc && i < nout && i < MAX_IO; i++) {
        eng_tensor_info t;
        eng_model_output(m, i, &t);
        memset(&outs[i], 0, sizeof(outs[i]));
        outs[i].dtype = t.dtype;
        outs[i].rank = t.rank;
        memcpy(outs[i].dims, odims + i * ENG_MAX_RANK, sizeof(outs[i].dims));
        outs[i].data = calloc((size_t)et_numel(&outs[i]) + 1, 8);
        op[i] = outs[i].data;
        if (!op[i]) rc = 1;
    }
    if (!rc && eng_ctx_run_shapes(ctx, shapes, ip, op)) {
        snprintf(err, errlen, "%s", eng_ctx_error(ctx));
        rc = 1;
    }
    eng_ctx_free(ctx);
    return rc;
}

/* Runs m on ins; fills outs (allocated). Returns 0 or prints and returns 1. */
static int infer(eng_model *m, et_tensor *ins, int nin, et_tensor *outs, int threads, int invariant,
                 char *err, size_t errlen)
{
    if (eng_model_dynamic(m)) return infer_shaped(m, ins, nin, outs, threads, err, errlen);
    int batch = input_batch(m, ins, nin, err, errlen);
    if (batch < 0) return 1;
    eng_ctx_opts co = {.threads = threads, .max_batch = batch, .batch_invariant = invariant};
    eng_ctx *ctx = eng_ctx_create(m, &co, err, errlen);
    if (!ctx) return 1;
    const void *ip[MAX_IO];
    void *op[MAX_IO];
    int nout = eng_model_num_outputs(m), rc = 0;
    for (int i = 0; i < nin; i++) ip[i] = ins[i].data;
    for (int i = 0; i < nout && i < MAX_IO; i++) {
        eng_tensor_info t;
        eng_model_output(m, i, &t);
        memset(&outs[i], 0, sizeof(outs[i]));
        outs[i].dtype = t.dtype;
        outs[i].rank = t.rank;
        memcpy(outs[i].dims, t.shape, sizeof(t.shape));
        if (t.rank && t.shape[0] < 0) outs[i].dims[0] = batch;
        outs[i].data = calloc((size_t)et_numel(&outs[i]) + 1, 8);
        op[i] = outs[i].data;
        if (!op[i]) rc = 1;
    }
    if (!rc && eng_ctx_run(ctx, batch, ip, op)) {
        snprintf(err, errlen, "%s", eng_ctx_error(ctx));
        rc = 1;
    }
    eng_ctx_free(ctx);
    return rc;
}

static int cmd_run(const cli *c)
{
    if (!c->nin || !c->nout) {
        fprintf(stderr, "aiinfer run: needs --input and --output\n");
        return 2;
    }
    eng_model *m = load(c);
    if (!m) return 1;
    char err[ENG_ERRLEN] = "";
    et_tensor ins[MAX_IO] = {0}, outs[MAX_IO] = {0};
    int rc = 0, nout = eng_model_num_outputs(m);
    if (c->nin != eng_model_num_inputs(m) || c->nout > nout) {
        snprintf(err, sizeof(err),
                 "model has %d inputs and %d outputs; got %d --input, %d --output",
                 eng_model_num_inputs(m), nout, c->nin, c->nout);
        rc = 1;
    }
    for (int i = 0; !rc && i < c->nin; i++) {
        rc = et_read(c->in[i], ET_AUTO, ENG_FLOAT, c->shape_rank ? c->shape_rank : -1, c->shape,
                     &ins[i], err, sizeof(err)) != 0;
        if (!rc && ins[i].from_f64)
            fprintf(stderr,
                    "aiinfer: note: %s holds float64; converted to float32, which the "
                    "engine computes in\n",
                    c->in[i]);
    }
    if (!rc) rc = infer(m, ins, c->nin, outs, c->threads, c->batch_invariant, err, sizeof(err));
    for (int i = 0; !rc && i < c->nout; i++)
        rc = et_write(c->out[i], ET_AUTO, &outs[i], err, sizeof(err)) != 0;
    if (rc) fprintf(stderr, "aiinfer: %s\n", err);
    for (int i = 0; i < MAX_IO; i++) {
        et_tensor_clear(&ins[i]);
        et_tensor_clear(&outs[i]);
    }
    eng_model_free(m);
    return rc;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Core clock from a chain of dependent adds (one per cycle on any x86 core). */
static double measure_ghz(void)
{
    long n = 200000000;
    double t0 = now();
#if defined(__x86_64__)
    long x = 0;
    __asm__ volatile("1: addq $1, %0\n\tdecq %1\n\tjnz 1b" : "+r"(x), "+r"(n));
#else
    for (volatile long i = 0; i < n; i++)
        ;
#endif
    return 200000000 / (now() - t0) / 1e9;
}

/* Prints the bench results; lat (seconds per run, n runs) is sorted here. */
static void report(const cli *c, int64_t macs, double *lat, size_t n, double elapsed,
                   double t_first)
{
    int batch = c->batch, threads = c->threads;
    qsort(lat, n, sizeof(double), cmp_double);
    double p50 = lat[n / 2], p99 = lat[(size_t)(n * 0.99)], ips = n * batch / elapsed;
    double gflops = 2.0 * (double)macs * ips / 1e9, ghz = measure_ghz();
    /* the ceiling measured on this thread right after the runs, at their clock
     * and load, for the ISA oneDNN ran (engine/peak.h) */
    eng_isa isa = eng_dnn_isa();
    double core = eng_fma_peak(isa, 0.2), peak = core * threads;
    printf("model %s\nthreads %d batch %d%s runs %zu seconds %.2f\n", c->model, threads, batch,
           c->batch_invariant ? " (batch-invariant)" : "", n, elapsed);
    printf("first run (plan + warm-up) %.1f ms\n", t_first * 1e3);
    if (threads > 1)
        printf("omp wait policy %s\n", getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY")
                                                                 : "default (spin, then sleep)");
    printf("latency p50 %.3f ms p99 %.3f ms\n", p50 * 1e3, p99 * 1e3);
    printf("throughput %.1f inferences/s\n", ips);
    char cores[48] = "";
    if (threads > 1) snprintf(cores, sizeof(cores), "%d cores x %.0f GFLOP/s, ", threads, core);
    if (core > 0)
        printf("compute %.1f GFLOP/s = %.0f%% of the measured FMA peak %.0f GFLOP/s (%s%s, "
               "%.1f FLOP/cycle at %.2f GHz)\n",
               gflops, 100 * gflops / peak, peak, cores, eng_isa_name(isa), core / ghz, ghz);
    else
        printf("compute %.1f GFLOP/s (no FMA peak: oneDNN ISA %s; clock %.2f GHz)\n", gflops,
               eng_isa_name(isa), ghz);
    if (c->int8) /* int8 dot products are not FMAs: the share is of f32-equivalent work */
        printf("(--int8: the dense Convs and Gemms ran in int8; GFLOP/s counts their f32 "
               "equivalent)\n");
}

/* bench --input F...: times runs on the given tensors (int64 ids, a sequence
 * length of a dynamic model); the batch is the files' dim 0. */
static int bench_files(const cli *c, eng_model *m)
{
    char err[ENG_ERRLEN] = "";
    et_tensor ins[MAX_IO] = {0}, outs[MAX_IO] = {0};
    int nin = eng_model_num_inputs(m), nout = eng_model_num_outputs(m), rc = 0, dyn;
    const int64_t *shapes[MAX_IO];
    int64_t odims[MAX_IO * ENG_MAX_RANK];
    if (c->nin != nin || nout > MAX_IO)
        rc = 1, snprintf(err, sizeof(err), "model has %d inputs; got %d --input", nin, c->nin);
    for (int i = 0; !rc && i < nin; i++) {
        rc = et_read(c->in[i], ET_AUTO, ENG_FLOAT, c->shape_rank ? c->shape_rank : -1, c->shape,
                     &ins[i], err, sizeof(err)) != 0;
        shapes[i] = ins[i].dims;
    }
    dyn = eng_model_dynamic(m);
    int batch = rc ? 1 : dyn ? 1 : input_batch(m, ins, nin, err, sizeof(err));
    if (batch < 0) rc = 1, batch = 1;
    eng_ctx_opts co = {.threads = c->threads, .max_batch = batch};
    eng_ctx *ctx = rc ? NULL : eng_ctx_create(m, &co, err, sizeof(err));
    if (!rc && !ctx) rc = 1;
    double t_plan = now();
    if (!rc && dyn && eng_ctx_plan_shapes(ctx, shapes, odims))
        rc = 1, snprintf(err, sizeof(err), "%s", eng_ctx_error(ctx));
    const void *ip[MAX_IO];
    void *op[MAX_IO];
    for (int i = 0; i < nin; i++) ip[i] = ins[i].data;
    for (int i = 0; !rc && i < nout; i++) {
        eng_tensor_info t;
        eng_model_output(m, i, &t);
        outs[i].rank = t.rank;
        memcpy(outs[i].dims, dyn ? odims + i * ENG_MAX_RANK : t.shape, sizeof(t.shape));
        if (!dyn && t.rank && t.shape[0] < 0) outs[i].dims[0] = batch;
        if (!(op[i] = outs[i].data = calloc((size_t)et_numel(&outs[i]) + 1, 8))) rc = 1;
    }
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof(double)), t_first = 0, start = now(), end = 0;
    for (int first = 1; !rc && lat; first = 0) {
        double t0 = now();
        if (dyn ? eng_ctx_run_shapes(ctx, shapes, ip, op) : eng_ctx_run(ctx, batch, ip, op)) {
            rc = 1, snprintf(err, sizeof(err), "%s", eng_ctx_error(ctx));
            break;
        }
        double t1 = now();
        if (first) { /* plan build and warm-up, not timed */
            t_first = t1 - (dyn ? t_plan : t0);
            start = t1, end = t1 + c->seconds;
            continue;
        }
        if (n == cap) {
            double *nl = realloc(lat, cap * 2 * sizeof(double));
            if (!nl) break;
            lat = nl, cap *= 2;
        }
        lat[n++] = t1 - t0;
        if (t1 >= end) break;
    }
    cli c2 = *c;
    c2.batch = dyn && ins[0].rank ? (int)ins[0].dims[0] : batch;
    /* a dynamic model's MACs at these shapes (the sequence length counts);
     * the files' batch multiplies ips, so count one item's */
    int64_t macs =
        dyn ? eng_model_macs_shapes(m, shapes) / (c2.batch > 0 ? c2.batch : 1) : eng_model_macs(m);
    if (!rc && n) report(&c2, macs, lat, n, now() - start, t_first);
    if (rc) fprintf(stderr, "aiinfer: %s\n", err);
    free(lat);
    for (int i = 0; i < MAX_IO; i++) et_tensor_clear(&ins[i]), et_tensor_clear(&outs[i]);
    eng_ctx_free(ctx);
    eng_model_free(m);
    return rc;
}

static int cmd_bench(const cli *c)
{
    eng_model *m = load(c);
    if (!m) return 1;
    if (c->nin) return bench_files(c, m);
    char err[ENG_ERRLEN];
    int batch = c->batch, threads = c->threads;
    if (eng_model_max_batch(m) && batch != 1) {
        fprintf(stderr, "aiinfer: the model has a fixed batch; use --batch 1\n");
        eng_model_free(m);
        return 2;
    }
    eng_ctx_opts co = {
        .threads = threads, .max_batch = batch, .batch_invariant = c->batch_invariant};
    eng_ctx *ctx = eng_ctx_create(m, &co, err, sizeof(err));
    void *ins[MAX_IO] = {0}, *outs[MAX_IO] = {0};
    int nin = eng_model_num_inputs(m), nout = eng_model_num_outputs(m), rc = ctx ? 0 : 1;
    if (nin > MAX_IO || nout > MAX_IO)
        rc = 1, snprintf(err, sizeof(err), "too many inputs/outputs");
    srand(42);
    for (int i = 0; !rc && i < nin; i++) {
        eng_tensor_info t;
        eng_model_input(m, i, &t);
        size_t n = (size_t)(t.item_count * batch);
        float *f = malloc(n * 8 + 8);
        for (size_t k = 0; f && k < n * 2; k++)
            f[k] = t.dtype == ENG_FLOAT ? (float)rand() / RAND_MAX - 0.5f : 0.0f;
        ins[i] = f;
    }
    for (int i = 0; !rc && i < nout; i++) {
        eng_tensor_info t;
        eng_model_output(m, i, &t);
        outs[i] = malloc((size_t)(t.item_count * batch) * 8 + 8);
    }
    double t_first = now();
    if (!rc && eng_ctx_warmup(ctx, &batch, 1))
        rc = 1, snprintf(err, sizeof(err), "%s", eng_ctx_error(ctx));
    t_first = now() - t_first;
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof(double));
    double start = now(), end = start + c->seconds;
    while (!rc && lat) {
        double t0 = now();
        if (eng_ctx_run(ctx, batch, (const void *const *)ins, outs)) {
            rc = 1, snprintf(err, sizeof(err), "%s", eng_ctx_error(ctx));
            break;
        }
        double t1 = now();
        if (n == cap) {
            double *nl = realloc(lat, cap * 2 * sizeof(double));
            if (!nl) break;
            lat = nl, cap *= 2;
        }
        lat[n++] = t1 - t0;
        if (t1 >= end) break;
    }
    double elapsed = now() - start;
    if (!rc && n) report(c, eng_model_macs(m), lat, n, elapsed, t_first);
    if (rc) fprintf(stderr, "aiinfer: %s\n", err);
    free(lat);
    for (int i = 0; i < MAX_IO; i++) free(ins[i]), free(outs[i]);
    eng_ctx_free(ctx);
    eng_model_free(m);
    return rc;
}

/* Sums the kB of the named fields of /proc/PID/smaps_rollup. */
static long smaps_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    long total = 0, v;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, fl) && line[fl] == ':' && sscanf(line + fl + 1, "%ld", &v) == 1)
            total += v;
    if (f) fclose(f);
    return total;
}

/* The preforking server's memory model: load once, fork N workers that each
 * make a 1-thread context and run; report what each worker costs. */
static int cmd_share(const cli *c)
{
    eng_model *m = load(c);
    if (!m) return 1;
    int n = c->workers ? c->workers : 2, fds[2];
    pid_t pids[64];
    if (pipe(fds)) {
        eng_model_free(m);
        return 1;
    }
    eng_tensor_info ti;
    if (eng_model_num_inputs(m) > MAX_IO || eng_model_num_outputs(m) > MAX_IO) {
        fprintf(stderr, "aiinfer: too many inputs or outputs\n");
        eng_model_free(m);
        return 1;
    }
    for (int w = 0; w < n; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            alarm((unsigned)c->seconds + 90); /* never outlive a dead parent for long */
            eng_ctx_opts co = {.threads = 1, .max_batch = 1};
            eng_ctx *ctx = eng_ctx_create(m, &co, NULL, 0);
            const void *ip[MAX_IO] = {0};
            void *op[MAX_IO] = {0};
            for (int i = 0; i < eng_model_num_inputs(m) && i < MAX_IO; i++)
                if (!eng_model_input(m, i, &ti)) ip[i] = calloc((size_t)ti.item_count + 1, 8);
            for (int i = 0; i < eng_model_num_outputs(m) && i < MAX_IO; i++)
                if (!eng_model_output(m, i, &ti)) op[i] = calloc((size_t)ti.item_count + 1, 8);
            int runs = 0;
            double end = now() + c->seconds;
            while (ctx && now() < end && !eng_ctx_run(ctx, 1, ip, op)) runs++;
            char ok = runs > 0 ? 'y' : 'n';
            if (write(fds[1], &ok, 1) != 1) _exit(1);
            pause(); /* stay mapped while the parent measures */
            _exit(0);
        }
    }
    /* a hung worker must not hang us, nor outlive us for long */
    alarm((unsigned)c->seconds + 60);
    int ready = 0, rc = 0;
    for (int w = 0; w < n; w++) {
        char ok;
        if (read(fds[0], &ok, 1) == 1 && ok == 'y') ready++;
    }
    printf("process pid rss_kb pss_kb private_kb shared_kb\n");
    for (int w = -1; w < n; w++) {
        pid_t p = w < 0 ? getpid() : pids[w];
        long rss = smaps_kb(p, "Rss"), pss = smaps_kb(p, "Pss");
        long priv = smaps_kb(p, "Private_Clean") + smaps_kb(p, "Private_Dirty");
        long shared = smaps_kb(p, "Shared_Clean") + smaps_kb(p, "Shared_Dirty");
        printf("%s %d %ld %ld %ld %ld\n", w < 0 ? "master" : "worker", (int)p, rss, pss, priv,
               shared);
    }
    if (ready != n) {
        fprintf(stderr, "aiinfer: %d of %d workers failed to run\n", n - ready, n);
        rc = 1;
    }
    for (int w = 0; w < n; w++) {
        kill(pids[w], SIGTERM);
        waitpid(pids[w], NULL, 0);
    }
    close(fds[0]);
    close(fds[1]);
    eng_model_free(m);
    return rc;
}

static int cmd_layers(const cli *c)
{
    eng_model *m = load(c);
    if (!m) return 1;
    char err[ENG_ERRLEN];
    int batch = eng_model_max_batch(m) ? 1 : c->batch;
    eng_ctx_opts co = {
        .threads = c->threads, .max_batch = batch, .batch_invariant = c->batch_invariant};
    eng_ctx *ctx = eng_ctx_create(m, &co, err, sizeof(err));
    int rc = 0;
    if (!ctx) {
        fprintf(stderr, "aiinfer: %s\n", err);
        rc = 1;
    } else {
        size_t cap = 1 << 20;
        char *buf = malloc(cap);
        if (buf && (c->time ? eng_ctx_profile(ctx, batch, 50, buf, cap)
                            : eng_ctx_describe(ctx, batch, buf, cap)))
            fputs(buf, stdout);
        else
            rc = 1, fprintf(stderr, "aiinfer: %s\n", eng_ctx_error(ctx));
        free(buf);
    }
    eng_ctx_free(ctx);
    eng_model_free(m);
    return rc;
}

/* libgomp reads OMP_WAIT_POLICY once, when it is loaded: to change how OpenMP
 * threads wait between layers, set it and start this program again. */
static void apply_omp_wait(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--omp-wait") ||
            (strcmp(argv[i + 1], "active") && strcmp(argv[i + 1], "passive")))
            continue;
        const char *cur = getenv("OMP_WAIT_POLICY");
        if (cur && !strcasecmp(cur, argv[i + 1])) return;
        setenv("OMP_WAIT_POLICY", argv[i + 1], 1);
        execv("/proc/self/exe", argv);
        return; /* exec failed: carry on with the inherited policy */
    }
}

int main(int argc, char **argv)
{
    apply_omp_wait(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("aiinfer %s\n", AISERVE_VERSION);
        return 0;
    }
    cli c = {.threads = 1, .batch = 1, .seconds = 5, .shape_rank = 0};
    int rc = parse_args(argc, argv, &c);
    if (rc) return rc;
    if (!strcmp(cmd, "check")) {
        int fails = 0, passes = 0, skips = 0;
        const char *all[4097];
        int n = 0;
        if (c.model) all[n++] = c.model;
        for (int i = 0; i < c.ndirs; i++) all[n++] = c.dirs[i];
        for (int i = 0; i < n; i++) {
            int r = ec_check_dir(all[i], c.reference, c.verbose);
            passes += r == 0, fails += r == 1, skips += r == 2;
        }
        printf("%d passed, %d failed, %d skipped\n", passes, fails, skips);
        return fails ? 1 : 0;
    }
    if (!strcmp(cmd, "info") || !strcmp(cmd, "run") || !strcmp(cmd, "bench") ||
        !strcmp(cmd, "layers") || !strcmp(cmd, "share")) {
        if (!c.model) {
            fprintf(stderr, "aiinfer %s: needs a MODEL\n", cmd);
            return 2;
        }
        if (!strcmp(cmd, "info")) return cmd_info(&c);
        if (!strcmp(cmd, "run")) return cmd_run(&c);
        if (!strcmp(cmd, "layers")) return cmd_layers(&c);
        if (!strcmp(cmd, "share")) return cmd_share(&c);
        return cmd_bench(&c);
    }
    fprintf(stderr, "aiinfer: unknown command or option '%s'\n", cmd);
    usage(stderr);
    return 2;
}
