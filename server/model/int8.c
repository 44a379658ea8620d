/*
 * server/model/int8.c: the model-int8 option. The master loads the calibration
 * file and calibrates the model once, before it forks the workers, so every
 * worker's contexts plan the int8 kernels and the quantized weights stay shared
 * copy-on-write like the f32 ones. The file is a batch of the model's one
 * input (.npy, .pb or what et_read reads), float32.
 */
#include "server/model/app_int.h"

#include "engine/tensorio.h"

#include <stdio.h>
#include <stdlib.h>

int model_int8_calibrate(model *m, char *err, size_t errlen)
{
    char eerr[ENG_ERRLEN] = "";
    eng_tensor_info ti;
    et_tensor t = {0};
    const char *path = m->c.int8_path;
    if (eng_model_num_inputs(m->em) != 1 || eng_model_input(m->em, 0, &ti) ||
        ti.dtype != ENG_FLOAT || ti.item_count < 1) {
        snprintf(err, errlen, "model-int8: needs a model with one float input of fixed dims");
        return -1;
    }
    if (et_read(path, ET_AUTO, ENG_FLOAT, -1, NULL, &t, eerr, sizeof(eerr))) {
        snprintf(err, errlen, "model-int8: %s", eerr);
        return -1;
    }
    int64_t n = et_numel(&t) / ti.item_count;
    if (t.dtype != ENG_FLOAT || n < 1 || n > (1 << 20) || n * ti.item_count != et_numel(&t)) {
        snprintf(err, errlen, "model-int8: %s: want float32 items of %lld elements (the input)",
                 path, (long long)ti.item_count);
        et_tensor_clear(&t);
        return -1;
    }
    const float **items = malloc((size_t)n * sizeof(*items));
    int nq = -1;
    if (!items) {
        snprintf(eerr, sizeof(eerr), "out of memory");
    } else {
        for (int64_t i = 0; i < n; i++) items[i] = (const float *)t.data + i * ti.item_count;
        nq = eng_model_calibrate_int8(m->em, (int)n, items, eerr, sizeof(eerr));
    }
    if (nq < 0)
        snprintf(err, errlen, "model-int8: %s: %s", path, eerr);
    else if (nq == 0)
        snprintf(err, errlen, "model-int8: %s: no layer the int8 path runs", path);
    free(items);
    et_tensor_clear(&t);
    return nq > 0 ? nq : -1;
}
