/* Unit tests of the engine's public contract: results against PyTorch's, kernel
 * choice, weight sharing, batching, errors on bad models and arguments, and the
 * fork rule. They read the committed models under models/. */
#include "engine/engine.h"
#include "engine/tensorio.h"

#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MNV2   "models/mobilenetv2-160.onnx"
#define DIGITS "models/digits.onnx"

static et_tensor read_npy(const char *path)
{
    et_tensor t;
    char err[ENG_ERRLEN];
    int rc = et_read(path, ET_NPY, ENG_FLOAT, 0, NULL, &t, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    return t;
}

static eng_model *load(const char *path, int reference)
{
    char err[ENG_ERRLEN] = "";
    eng_load_opts o = {.reference_only = reference};
    eng_model *m = eng_model_load_file(path, &o, err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    return m;
}

static eng_ctx *ctx(eng_model *m, int threads, int max_batch)
{
    char err[ENG_ERRLEN] = "";
    eng_ctx_opts o = {.threads = threads, .max_batch = max_batch};
    eng_ctx *c = eng_ctx_create(m, &o, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    return c;
}

static double rel_diff(const float *a, const float *b, int64_t n)
{
    double md = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)b[i]));
    }
    return md / (mx > 0 ? mx : 1);
}

static void check_mnv2(int reference, int threads)
{
    eng_model *m = load(MNV2, reference);
    et_tensor x = read_npy("models/mobilenetv2-160-input.npy");
    et_tensor y = read_npy("models/mobilenetv2-160-output.npy");
    eng_ctx *c = ctx(m, threads, 1);
    float out[1000];
    const void *in[1] = {x.data};
    void *o[1] = {out};
    cr_assert_eq(eng_ctx_run(c, 1, in, o), 0, "%s", eng_ctx_error(c));
    double d = rel_diff(out, y.data, 1000);
    cr_expect_lt(d, 1e-4, "relative difference %g", d);
    eng_ctx_free(c);
    eng_model_free(m);
    et_tensor_clear(&x);
    et_tensor_clear(&y);
}

Test(engine, mobilenetv2_matches_pytorch_on_onednn)
{
    check_mnv2(0, 1);
}

Test(engine, mobilenetv2_matches_pytorch_on_reference_kernels)
{
    check_mnv2(1, 1);
}

Test(engine, mobilenetv2_matches_pytorch_with_two_threads)
{
    check_mnv2(0, 2);
}

Test(engine, info_reports_shapes_macs_and_params)
{
    eng_model *m = load(MNV2, 0);
    eng_tensor_info t;
    cr_assert_eq(eng_model_num_inputs(m), 1);
    cr_assert_eq(eng_model_input(m, 0, &t), 0);
    cr_expect_str_eq(t.name, "input");
    cr_expect_eq(t.rank, 4);
    cr_expect_eq(t.shape[0], -1);
    cr_expect_eq(t.item_count, 3 * 160 * 160);
    cr_assert_eq(eng_model_output(m, 0, &t), 0);
    cr_expect_eq(t.item_count, 1000);
    cr_expect_eq(eng_model_max_batch(m), 0);
    cr_expect_eq(eng_model_macs(m), 154083200);
    cr_expect_gt(eng_model_params(m), 3400000);
    cr_expect_eq(eng_model_input(m, 1, &t), -ENG_EINVAL);
    const char *ops[16];
    int counts[16], n = eng_model_op_counts(m, ops, counts, 16);
    int convs = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(ops[i], "Conv")) convs = counts[i];
    cr_expect_eq(convs, 52);
    eng_model_free(m);
}

/* oneDNN silently falls back to slow reference kernels ("ref:") when layouts
 * do not line up; every layer of MobileNetV2 must get a JIT kernel. */
Test(engine, no_layer_runs_a_onednn_reference_kernel)
{
    eng_model *m = load(MNV2, 0);
    int threads[] = {1, 2}, batches[] = {1, 8};
    static char buf[1 << 16];
    for (int t = 0; t < 2; t++) {
        eng_ctx *c = ctx(m, threads[t], 8);
        for (int b = 0; b < 2; b++) {
            size_t n = eng_ctx_describe(c, batches[b], buf, sizeof(buf));
            cr_assert_gt(n, 0, "%s", eng_ctx_error(c));
            cr_expect_null(strstr(buf, "ref:"), "a reference kernel was chosen:\n%s", buf);
            cr_expect_null(strstr(buf, "ref_"), "a reference kernel was chosen:\n%s", buf);
            cr_expect_null(strstr(buf, "Conv: c-kernel"), "a conv ran in C:\n%s", buf);
            if (threads[t] == 1)
                cr_expect_null(strstr(buf, "another layout"), "weights were copied:\n%s", buf);
            int convs = 0, fused = 0, folded = 0;
            for (const char *p = buf; (p = strstr(p, "Conv: onednn")); p++) convs++;
            /* a 1-thread plan runs the early inverted residual blocks fused (irb.c):
             * the project Conv's step runs the block, the others fold into it */
            for (const char *p = buf; (p = strstr(p, "fused inverted residual block (")); p++)
                fused++;
            for (const char *p = buf; (p = strstr(p, "folded into its fused")); p++) folded++;
            cr_expect_eq(convs + fused + folded, 52);
            if (threads[t] > 1 && batches[b] == 1) cr_expect_eq(fused, 0);
        }
        eng_ctx_free(c);
    }
    eng_model_free(m);
}

Test(engine, a_batch_gives_the_same_results_as_single_runs)
{
    eng_model *m = load(MNV2, 0);
    eng_ctx *c = ctx(m, 1, 4);
    enum { N = 4, IN = 3 * 160 * 160 };
    float *x = malloc(sizeof(float) * N * IN), *yb = malloc(sizeof(float) * N * 1000);
    float y1[1000];
    for (int i = 0; i < N * IN; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    const void *in[1] = {x};
    void *out[1] = {yb};
    cr_assert_eq(eng_ctx_run(c, N, in, out), 0, "%s", eng_ctx_error(c));
    for (int b = 0; b < N; b++) {
        const void *i1[1] = {x + b * IN};
        void *o1[1] = {y1};
        cr_assert_eq(eng_ctx_run(c, 1, i1, o1), 0);
        cr_expect_lt(rel_diff(y1, yb + b * 1000, 1000), 1e-5, "item %d", b);
    }
    free(x);
    free(yb);
    eng_ctx_free(c);
    eng_model_free(m);
}

Test(engine, run_rejects_bad_batch_and_null_buffers)
{
    eng_model *m = load(DIGITS, 0);
    eng_ctx *c = ctx(m, 1, 2);
    float x[3 * 64] = {0}, y[3 * 10];
    const void *in[1] = {x};
    void *out[1] = {y};
    cr_expect_eq(eng_ctx_run(c, 3, in, out), -ENG_EINVAL);
    cr_expect_neq(strstr(eng_ctx_error(c), "batch 3"), NULL, "%s", eng_ctx_error(c));
    cr_expect_eq(eng_ctx_run(c, 0, in, out), -ENG_EINVAL);
    const void *nin[1] = {NULL};
    cr_expect_eq(eng_ctx_run(c, 1, nin, out), -ENG_EINVAL);
    cr_expect_eq(eng_ctx_run(NULL, 1, in, out), -ENG_EINVAL);
    cr_expect_eq(eng_ctx_run(c, 2, in, out), 0);
    eng_ctx_free(c);
    char err[ENG_ERRLEN];
    eng_ctx_opts bad = {.threads = 0, .max_batch = 1};
    cr_expect_null(eng_ctx_create(m, &bad, err, sizeof(err)));
    cr_expect_neq(strstr(err, "threads"), NULL);
    eng_model_free(m);
}

Test(engine, digits_model_is_at_least_97_percent_accurate)
{
    eng_model *m = load(DIGITS, 0);
    et_tensor x = read_npy("models/digits-test-x.npy");
    et_tensor y;
    char err[ENG_ERRLEN];
    cr_assert_eq(
        et_read("models/digits-test-y.npy", ET_NPY, ENG_INT64, 0, NULL, &y, err, sizeof(err)), 0,
        "%s", err);
    int n = (int)x.dims[0];
    eng_ctx *c = ctx(m, 1, n);
    float *logits = malloc(sizeof(float) * 10 * (size_t)n);
    const void *in[1] = {x.data};
    void *out[1] = {logits};
    cr_assert_eq(eng_ctx_run(c, n, in, out), 0, "%s", eng_ctx_error(c));
    int right = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (logits[i * 10 + k] > logits[i * 10 + best]) best = k;
        right += best == ((int64_t *)y.data)[i];
    }
    cr_expect_geq(right * 100, 97 * n, "accuracy %d/%d", right, n);
    free(logits);
    eng_ctx_free(c);
    eng_model_free(m);
    et_tensor_clear(&x);
    et_tensor_clear(&y);
}

/* Every prefix of a valid model is a truncated file: each must give an error
 * (or, for a prefix protobuf can parse, a model), never a crash. */
Test(engine, truncated_models_fail_cleanly)
{
    size_t len;
    char err[ENG_ERRLEN];
    unsigned char *buf = et_slurp(DIGITS, &len, err, sizeof(err));
    cr_assert_not_null(buf);
    int failures = 0;
    for (size_t cut = 0; cut < len; cut += cut < 512 ? 7 : 997) {
        err[0] = 0;
        eng_model *m = eng_model_load_memory(buf, cut, NULL, err, sizeof(err));
        if (!m) {
            failures++;
            cr_expect_neq(err[0], 0, "no message at %zu bytes", cut);
        }
        eng_model_free(m);
    }
    cr_expect_gt(failures, 50);
    free(buf);
}

Test(engine, garbage_and_missing_files_name_the_problem)
{
    char err[ENG_ERRLEN];
    cr_expect_null(eng_model_load_file("/nonexistent/model.onnx", NULL, err, sizeof(err)));
    cr_expect_neq(strstr(err, "/nonexistent/model.onnx"), NULL, "%s", err);
    cr_expect_null(eng_model_load_file("/", NULL, err, sizeof(err)));
    const char junk[] = "this is not an onnx model at all, just text\n";
    cr_expect_null(eng_model_load_memory(junk, sizeof(junk), NULL, err, sizeof(err)));
    cr_expect_neq(strstr(err, "ONNX"), NULL, "%s", err);
    cr_expect_null(eng_model_load_memory(NULL, 0, NULL, err, sizeof(err)));
}

/* Flips single bytes all over a real model: any outcome but a crash is fine. */
Test(engine, corrupted_bytes_never_crash_the_loader)
{
    size_t len;
    char err[ENG_ERRLEN];
    unsigned char *buf = et_slurp(DIGITS, &len, err, sizeof(err));
    cr_assert_not_null(buf);
    eng_load_opts o = {.reference_only = 1};
    for (size_t i = 0; i < len; i += 101) {
        unsigned char save = buf[i];
        buf[i] ^= 0x5a;
        eng_model *m = eng_model_load_memory(buf, len, &o, err, sizeof(err));
        eng_model_free(m);
        buf[i] = save;
    }
    free(buf);
}

/* The master loads, then forks workers that create 2-thread contexts: no
 * OpenMP pool may exist at the fork or the child hangs. */
Test(engine, a_child_forked_after_load_runs_with_two_threads, .timeout = 60)
{
    eng_model *m = load(MNV2, 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        alarm(30);
        eng_ctx_opts o = {.threads = 2, .max_batch = 1};
        eng_ctx *c = eng_ctx_create(m, &o, NULL, 0);
        static float x[3 * 160 * 160], y[1000];
        const void *in[1] = {x};
        void *out[1] = {y};
        int rc = c ? eng_ctx_run(c, 1, in, out) : -1;
        _exit(rc == 0 ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    eng_model_free(m);
}

Test(engine, warmup_builds_each_batch_and_rejects_bad_sizes)
{
    eng_model *m = load(DIGITS, 0);
    eng_ctx *c = ctx(m, 1, 8);
    int ok[] = {1, 4, 8}, bad[] = {9};
    cr_expect_eq(eng_ctx_warmup(c, ok, 3), 0, "%s", eng_ctx_error(c));
    cr_expect_eq(eng_ctx_warmup(c, bad, 1), -ENG_EINVAL);
    eng_ctx_free(c);
    eng_model_free(m);
}

Test(engine, strerror_names_every_status)
{
    for (int s = 0; s <= ENG_EBACKEND; s++) cr_expect_str_neq(eng_strerror(-s), "unknown error");
    cr_expect_str_eq(eng_strerror(-99), "unknown error");
}

/* threads > 1 splits a batch over 1-thread sub-contexts on blocking pthreads:
 * results must equal the 1-thread context's, for even and odd batches. The
 * chunks run other batch sizes, hence maybe other oneDNN kernels (AVX2, SSE4.1):
 * equal within 1e-5 of the largest logit, as batches are (docs/serving.md). */
Test(engine, a_two_thread_context_gives_the_same_results_on_split_batches)
{
    eng_model *m = load(DIGITS, 0);
    eng_ctx *one = ctx(m, 1, 9), *two = ctx(m, 2, 9);
    float x[9 * 64], y1[90], y2[90];
    for (int i = 0; i < 9 * 64; i++) x[i] = (float)((i * 7919) % 17) / 16.0f;
    const void *in[1] = {x};
    for (int b = 1; b <= 9; b += 2) {
        void *o1[1] = {y1}, *o2[1] = {y2};
        cr_assert_eq(eng_ctx_run(one, b, in, o1), 0);
        cr_assert_eq(eng_ctx_run(two, b, in, o2), 0, "%s", eng_ctx_error(two));
        double d = rel_diff(y2, y1, b * 10);
        cr_expect_leq(d, 1e-5, "batch %d: difference %g of the largest logit", b, d);
    }
    char buf[4096];
    eng_ctx_describe(two, 8, buf, sizeof(buf));
    cr_expect_neq(strstr(buf, "split over 2 threads"), NULL, "%s", buf);
    eng_ctx_free(one);
    eng_ctx_free(two);
    eng_model_free(m);
}

typedef struct thread_job {
    eng_model *m;
    const float *x;
    float y[1000];
    int rc;
} thread_job;

static void *thread_run(void *p)
{
    thread_job *j = p;
    eng_ctx_opts o = {.threads = 1, .max_batch = 1};
    eng_ctx *c = eng_ctx_create(j->m, &o, NULL, 0);
    const void *in[1] = {j->x};
    void *out[1] = {j->y};
    j->rc = c ? 0 : -1;
    for (int i = 0; i < 5 && !j->rc; i++) j->rc = eng_ctx_run(c, 1, in, out);
    eng_ctx_free(c);
    return NULL;
}

/* The documented rule: one model, one context per thread, all at once. */
Test(engine, threads_with_their_own_contexts_share_one_model)
{
    eng_model *m = load(MNV2, 0);
    et_tensor x = read_npy("models/mobilenetv2-160-input.npy");
    et_tensor y = read_npy("models/mobilenetv2-160-output.npy");
    static thread_job jobs[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        jobs[i].m = m;
        jobs[i].x = x.data;
        cr_assert_eq(pthread_create(&t[i], NULL, thread_run, &jobs[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(jobs[i].rc, 0);
        cr_expect_lt(rel_diff(jobs[i].y, y.data, 1000), 1e-4);
    }
    eng_model_free(m);
    et_tensor_clear(&x);
    et_tensor_clear(&y);
}
