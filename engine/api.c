/* Temporary implementation of engine.h so that dependants link; replaced by the
 * real loader and executor. */
#include "engine/engine.h"

#include <stdio.h>

eng_model *eng_model_load_file(const char *path, const eng_load_opts *opts, char *err,
                               size_t errlen)
{
    (void)opts;
    if (err && errlen) snprintf(err, errlen, "%s: engine not built yet", path ? path : "(null)");
    return NULL;
}

eng_model *eng_model_load_memory(const void *data, size_t len, const eng_load_opts *opts, char *err,
                                 size_t errlen)
{
    (void)data, (void)len, (void)opts;
    if (err && errlen) snprintf(err, errlen, "engine not built yet");
    return NULL;
}

void eng_model_free(eng_model *m)
{
    (void)m;
}
int eng_model_num_inputs(const eng_model *m)
{
    (void)m;
    return 0;
}
int eng_model_num_outputs(const eng_model *m)
{
    (void)m;
    return 0;
}
int eng_model_input(const eng_model *m, int i, eng_tensor_info *out)
{
    (void)m, (void)i, (void)out;
    return -ENG_EINVAL;
}
int eng_model_output(const eng_model *m, int i, eng_tensor_info *out)
{
    (void)m, (void)i, (void)out;
    return -ENG_EINVAL;
}
int eng_model_max_batch(const eng_model *m)
{
    (void)m;
    return 0;
}
int64_t eng_model_macs(const eng_model *m)
{
    (void)m;
    return 0;
}
int64_t eng_model_params(const eng_model *m)
{
    (void)m;
    return 0;
}
int eng_model_op_counts(const eng_model *m, const char **ops, int *counts, int cap)
{
    (void)m, (void)ops, (void)counts, (void)cap;
    return 0;
}
eng_ctx *eng_ctx_create(const eng_model *m, const eng_ctx_opts *opts, char *err, size_t errlen)
{
    (void)m, (void)opts;
    if (err && errlen) snprintf(err, errlen, "engine not built yet");
    return NULL;
}
void eng_ctx_free(eng_ctx *c)
{
    (void)c;
}
int eng_ctx_warmup(eng_ctx *c, const int *batches, int n)
{
    (void)c, (void)batches, (void)n;
    return -ENG_EINVAL;
}
int eng_ctx_run(eng_ctx *c, int batch, const void *const *inputs, void *const *outputs)
{
    (void)c, (void)batch, (void)inputs, (void)outputs;
    return -ENG_EINVAL;
}
const char *eng_ctx_error(const eng_ctx *c)
{
    (void)c;
    return "engine not built yet";
}
size_t eng_ctx_describe(eng_ctx *c, int batch, char *buf, size_t cap)
{
    (void)c, (void)batch;
    if (cap) buf[0] = 0;
    return 0;
}
const char *eng_strerror(int status)
{
    (void)status;
    return "engine not built yet";
}
