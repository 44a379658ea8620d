/* libFuzzer target: arbitrary bytes as an ONNX model. Loading must either fail
 * with a message or give a model; a small model is then run once on zeros with
 * the reference kernels, so shape inference, folding and the kernels see the
 * fuzzed graphs too. The unsupported-op census parses the bytes as well. Dynamic
 * models also check eng_model_output_dims against the plan's output dims. */
#include "engine/engine.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Dynamic models run once with every dynamic dim set to 2, through the shapes
 * API (plan, output dims, run); shape errors must say why. */
static void run_dynamic(eng_model *m, int nin, int nout)
{
    if (nin > 8 || nout > 8 || eng_model_macs(m) >= (1 << 20)) return;
    int64_t dims[8][ENG_MAX_RANK], od[8 * ENG_MAX_RANK], total = 0;
    const int64_t *shapes[8];
    eng_tensor_info t;
    for (int i = 0; i < nin; i++) {
        eng_model_input(m, i, &t);
        int64_t n = 1;
        for (int d = 0; d < t.rank; d++) {
            dims[i][d] = t.shape[d] < 0 ? 2 : t.shape[d];
            n *= dims[i][d];
        }
        shapes[i] = dims[i];
        total += n;
    }
    if (total >= (1 << 16)) return;
    char err[ENG_ERRLEN];
    eng_ctx *c = eng_ctx_create(m, NULL, err, sizeof(err));
    if (!c) return;
    void *in[8] = {0}, *out[8] = {0};
    int ok = !eng_ctx_plan_shapes(c, shapes, od);
    if (!ok && !eng_ctx_error(c)[0]) abort();
    if (ok) { /* the context-free query agrees with the plan */
        int64_t od2[8 * ENG_MAX_RANK];
        if (eng_model_output_dims(m, shapes, od2, err, sizeof(err))) abort();
        for (int i = 0; i < nout; i++) {
            eng_model_output(m, i, &t);
            if (memcmp(od + i * ENG_MAX_RANK, od2 + i * ENG_MAX_RANK, (size_t)t.rank * 8)) abort();
        }
    }
    for (int i = 0; ok && i < nout; i++) {
        int64_t n = 1;
        eng_model_output(m, i, &t);
        for (int d = 0; d < t.rank; d++) n *= od[i * ENG_MAX_RANK + d];
        if (n > (1 << 20)) ok = 0;
        out[i] = ok ? calloc((size_t)n + 1, 8) : NULL;
    }
    for (int i = 0; ok && i < nin; i++) {
        int64_t n = 1;
        eng_model_input(m, i, &t);
        for (int d = 0; d < t.rank; d++) n *= dims[i][d];
        in[i] = calloc((size_t)n + 1, 8);
    }
    if (ok && eng_ctx_run_shapes(c, shapes, (const void *const *)in, out) && !eng_ctx_error(c)[0])
        abort();
    for (int i = 0; i < 8; i++) {
        free(in[i]);
        free(out[i]);
    }
    eng_ctx_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ENG_ERRLEN];
    /* the census of unsupported ops (aiinfer info) parses the same bytes */
    char names[4][ENG_OPNAME_LEN];
    int counts[4];
    err[0] = 0;
    int nu = eng_model_unsupported_ops(data, size, names, counts, 4, err, sizeof(err));
    if ((nu < 0 && !err[0]) || nu > 5) abort();
    for (int i = 0; i < nu && i < 4; i++)
        if (counts[i] < 1 || !memchr(names[i], 0, ENG_OPNAME_LEN)) abort();
    eng_load_opts o = {.reference_only = 1};
    eng_model *m = eng_model_load_memory(data, size, &o, err, sizeof(err));
    if (!m) {
        if (!err[0]) abort(); /* every failure must say why */
        return 0;
    }
    int nin = eng_model_num_inputs(m), nout = eng_model_num_outputs(m);
    if (eng_model_dynamic(m)) {
        run_dynamic(m, nin, nout);
        eng_model_free(m);
        return 0;
    }
    int64_t total = 0;
    eng_tensor_info t;
    for (int i = 0; i < nin; i++)
        if (!eng_model_input(m, i, &t)) total += t.item_count;
    for (int i = 0; i < nout; i++)
        if (!eng_model_output(m, i, &t)) total += t.item_count;
    /* keep each run short: big tensors or many MACs only test the loader */
    if (nin <= 8 && nout <= 8 && total < (1 << 16) && eng_model_macs(m) < (1 << 20)) {
        eng_ctx_opts co = {.threads = 1, .max_batch = 1};
        eng_ctx *c = eng_ctx_create(m, &co, err, sizeof(err));
        void *in[8] = {0}, *out[8] = {0};
        for (int i = 0; i < nin; i++) {
            eng_model_input(m, i, &t);
            in[i] = calloc((size_t)t.item_count + 1, 8);
        }
        for (int i = 0; i < nout; i++) {
            eng_model_output(m, i, &t);
            out[i] = calloc((size_t)t.item_count + 1, 8);
        }
        if (c && eng_ctx_run(c, 1, (const void *const *)in, out) && !eng_ctx_error(c)[0]) abort();
        for (int i = 0; i < 8; i++) {
            free(in[i]);
            free(out[i]);
        }
        eng_ctx_free(c);
    }
    eng_model_free(m);
    return 0;
}
