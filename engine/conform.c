/* conform: the ONNX backend-test runner behind `aiinfer check`. */
#include "engine/conform.h"

#include "engine/engine.h"
#include "engine/tensorio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXT 16

static int compare(const et_tensor *got, const et_tensor *want, char *why, size_t wl)
{
    if (got->dtype != want->dtype || et_numel(got) != et_numel(want)) {
        snprintf(why, wl, "type/size differs (%lld vs %lld elements)", (long long)et_numel(got),
                 (long long)et_numel(want));
        return 1;
    }
    int64_t n = et_numel(got);
    for (int64_t i = 0; i < n; i++) {
        double a, b;
        if (got->dtype == ENG_FLOAT)
            a = ((float *)got->data)[i], b = ((float *)want->data)[i];
        else if (got->dtype == ENG_INT64)
            a = (double)((int64_t *)got->data)[i], b = (double)((int64_t *)want->data)[i];
        else if (got->dtype == ENG_DOUBLE)
            a = ((double *)got->data)[i], b = ((double *)want->data)[i];
        else if (got->dtype == ENG_INT32)
            a = ((int32_t *)got->data)[i], b = ((int32_t *)want->data)[i];
        else
            a = ((uint8_t *)got->data)[i], b = ((uint8_t *)want->data)[i];
        if (isnan(a) && isnan(b)) continue;
        if (!(fabs(a - b) <= 1e-7 + 1e-3 * fabs(b)) && !(isinf(a) && a == b)) {
            snprintf(why, wl, "element %lld: got %g, want %g", (long long)i, a, b);
            return 1;
        }
    }
    return 0;
}

static int read_set(const char *dir, const char *prefix, et_tensor *t, int *n)
{
    char path[4096], err[256];
    *n = 0;
    for (int k = 0; k < MAXT; k++) {
        snprintf(path, sizeof(path), "%s/%s_%d.pb", dir, prefix, k);
        FILE *f = fopen(path, "rb");
        if (!f) break;
        fclose(f);
        if (et_read(path, ET_PB, ENG_FLOAT, 0, NULL, &t[k], err, sizeof(err))) return -1;
        (*n)++;
    }
    return 0;
}

/* Loads the model with inputs 1.. bound, runs input 0, compares all outputs.
 * With bind_all, input 0 is bound too: for tests whose output shape depends on
 * input 0's values (Range, ConstantOfShape, NonZero ...), which a plan built
 * per batch size cannot take at run time; the same kernels then run in the
 * plan-time evaluator. */
static int run_set(const char *dir, const char *set, int reference, int bind_all, char *why,
                   size_t wl)
{
    et_tensor in[MAXT] = {0}, want[MAXT] = {0}, got[MAXT] = {0};
    void *raw[MAXT] = {0};
    size_t rawlen[MAXT] = {0};
    int nin = 0, nwant = 0, rc = 2;
    char sdir[4096], path[4200], err[ENG_ERRLEN];
    eng_model *m = NULL;
    eng_ctx *c = NULL;
    snprintf(sdir, sizeof(sdir), "%s/%s", dir, set);
    if (read_set(sdir, "input", in, &nin) || read_set(sdir, "output", want, &nwant) || !nwant ||
        !nin) {
        snprintf(why, wl, "%s: test data uses an unsupported tensor type", set);
        goto out;
    }
    for (int k = bind_all ? 0 : 1; k < nin; k++) {
        snprintf(path, sizeof(path), "%s/input_%d.pb", sdir, k);
        if (!(raw[k] = et_slurp(path, &rawlen[k], err, sizeof(err)))) goto out;
    }
    eng_load_opts o = {.reference_only = reference,
                       .n_bind = bind_all ? nin : nin - 1,
                       .bind_pb = (const void *const *)raw + (bind_all ? 0 : 1),
                       .bind_len = rawlen + (bind_all ? 0 : 1)};
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    if (!(m = eng_model_load_file(path, &o, err, sizeof(err)))) {
        /* unsupported features skip; anything else is a failure */
        rc = strstr(err, "not supported") || strstr(err, "unsupported") ? 2 : 1;
        if (!bind_all && strstr(err, "data-dependent shape")) {
            eng_model_free(m);
            for (int k = 0; k < MAXT; k++) {
                et_tensor_clear(&in[k]);
                et_tensor_clear(&want[k]);
                free(raw[k]);
            }
            return run_set(dir, set, reference, 1, why, wl);
        }
        snprintf(why, wl, "%s", err);
        goto out;
    }
    rc = 1;
    if (eng_model_num_inputs(m) != !bind_all || eng_model_num_outputs(m) != nwant) {
        snprintf(why, wl, "model has %d runtime inputs, %d outputs; data has %d, %d",
                 eng_model_num_inputs(m), eng_model_num_outputs(m), !bind_all, nwant);
        goto out;
    }
    eng_tensor_info ti = {0};
    if (!bind_all) eng_model_input(m, 0, &ti);
    int batch = bind_all || eng_model_max_batch(m) || !ti.item_count
                    ? 1
                    : (int)(et_numel(&in[0]) / ti.item_count);
    if (!bind_all && (batch < 1 || et_numel(&in[0]) != ti.item_count * batch)) {
        snprintf(why, wl, "input 0 has %lld elements, model wants %lld per item",
                 (long long)et_numel(&in[0]), (long long)ti.item_count);
        goto out;
    }
    eng_ctx_opts co = {.threads = 1, .max_batch = batch};
    if (!(c = eng_ctx_create(m, &co, err, sizeof(err)))) {
        snprintf(why, wl, "%s", err);
        goto out;
    }
    void *op[MAXT];
    for (int k = 0; k < nwant; k++) {
        got[k] = want[k];
        got[k].name = NULL;
        got[k].data = calloc((size_t)et_numel(&want[k]) + 1, 8);
        op[k] = got[k].data;
    }
    const void *ip[1] = {in[0].data};
    if (eng_ctx_run(c, batch, ip, op)) {
        snprintf(why, wl, "run: %s", eng_ctx_error(c));
        goto out;
    }
    rc = 0;
    for (int k = 0; k < nwant && !rc; k++) {
        eng_tensor_info to;
        eng_model_output(m, k, &to);
        got[k].dtype = to.dtype;
        if (compare(&got[k], &want[k], why, wl)) rc = 1;
    }
out:
    eng_ctx_free(c);
    eng_model_free(m);
    for (int k = 0; k < MAXT; k++) {
        et_tensor_clear(&in[k]);
        et_tensor_clear(&want[k]);
        et_tensor_clear(&got[k]);
        free(raw[k]);
    }
    return rc;
}

int ec_check_dir(const char *dir, int reference, int verbose)
{
    char why[512] = "", set[64];
    int rc = 0, sets = 0;
    for (int i = 0; i < 16 && rc == 0; i++) {
        snprintf(set, sizeof(set), "test_data_set_%d", i);
        char p[4200];
        snprintf(p, sizeof(p), "%s/%s/output_0.pb", dir, set);
        FILE *f = fopen(p, "rb");
        if (!f) break;
        fclose(f);
        rc = run_set(dir, set, reference, 0, why, sizeof(why));
        sets++;
    }
    if (!sets) {
        rc = 2;
        snprintf(why, sizeof(why), "no test_data_set_N/output_0.pb");
    }
    const char *name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    if (rc == 1 || verbose)
        printf("%s %s%s%s\n",
               rc == 0   ? "PASS"
               : rc == 1 ? "FAIL"
                         : "SKIP",
               name, *why ? ": " : "", why);
    return rc;
}
