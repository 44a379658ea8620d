/* ab_probe: A/B timing of two engine configurations in one process, for the
 * shared machine where separate runs minutes apart are not comparable. The
 * model is loaded twice and a context made of each, each right after setting
 * its environment (AIINFER_FUSE_IRB, AIINFER_GEMV: read when a plan is built;
 * AIINFER_HUGEPAGES: when the model and the arena are allocated), then run on the
 * same input alternately, ROUNDS times each (the order flips every round), so
 * both see the same load and clock. Prints each one's median and minimum run
 * time and the median of the per-round ratios B/A. A probe, not a benchmark.
 *
 *   cc -O2 -I. -o build/ab_probe tools/ab_probe.c build/libengine.a build/liblib.a \
 *       $(pkg-config --libs libprotobuf-c) -ldnnl -lgomp -lpthread -lm
 *   build/ab_probe MODEL ROUNDS "AIINFER_FUSE_IRB=0" "AIINFER_FUSE_IRB=1" */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void apply_env(const char *spec)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *kv = strtok(buf, ","); kv; kv = strtok(NULL, ",")) {
        char *eq = strchr(kv, '=');
        if (!eq) continue;
        *eq = 0;
        setenv(kv, eq + 1, 1);
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: ab_probe MODEL ROUNDS ENV_A ENV_B\n");
        return 2;
    }
    char err[512];
    eng_model *m[2] = {NULL, NULL};
    int rounds = atoi(argv[2]);
    eng_tensor_info in, out;
    apply_env(argv[3]);
    if (!(m[0] = eng_model_load_file(argv[1], NULL, err, sizeof(err)))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    eng_model_input(m[0], 0, &in);
    eng_model_output(m[0], 0, &out);
    float *x = calloc((size_t)in.item_count, sizeof(float));
    float *y = calloc((size_t)out.item_count, sizeof(float));
    for (int64_t i = 0; i < in.item_count; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    eng_ctx *c[2];
    int one = 1;
    for (int k = 0; k < 2; k++) {
        apply_env(argv[3 + k]);
        if (k && !(m[k] = eng_model_load_file(argv[1], NULL, err, sizeof(err)))) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (!(c[k] = eng_ctx_create(m[k], NULL, err, sizeof(err))) ||
            eng_ctx_warmup(c[k], &one, 1)) {
            fprintf(stderr, "context %d: %s\n", k, c[k] ? "warmup failed" : err);
            return 1;
        }
    }
    double *t[2] = {malloc(rounds * sizeof(double)), malloc(rounds * sizeof(double))};
    double *ratio = malloc(rounds * sizeof(double));
    const void *ins[1] = {x};
    void *outs[1] = {y};
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < 2; j++) {
            int k = (r + j) % 2;
            double t0 = now();
            eng_ctx_run(c[k], 1, ins, outs);
            t[k][r] = now() - t0;
        }
        ratio[r] = t[1][r] / t[0][r];
    }
    qsort(t[0], rounds, sizeof(double), cmp);
    qsort(t[1], rounds, sizeof(double), cmp);
    qsort(ratio, rounds, sizeof(double), cmp);
    printf("%s: A [%s] median %.1f us min %.1f | B [%s] median %.1f us min %.1f | B/A median "
           "%.3f (A/B speedup %.2fx)\n",
           argv[1], argv[3], t[0][rounds / 2] * 1e6, t[0][0] * 1e6, argv[4], t[1][rounds / 2] * 1e6,
           t[1][0] * 1e6, ratio[rounds / 2], 1 / ratio[rounds / 2]);
    eng_ctx_free(c[0]);
    eng_ctx_free(c[1]);
    eng_model_free(m[0]);
    eng_model_free(m[1]);
    return 0;
}
