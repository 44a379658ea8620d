/* libFuzzer target: the KServe v2 request parser, the model check, the
 * response writer, and (when the first byte is odd) the image decoder. None
 * may crash, leak or read out of bounds on any input. */
#include "server/model/image.h"
#include "server/model/kserve.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const kserve_io in[] = {{"input", KSERVE_FP32, 2, {-1, 4}}, {"mask", KSERVE_INT64, 1, {-1}}};
static const kserve_io out[] = {{"y", KSERVE_FP32, 2, {-1, 2}}};

static void kserve_case(const uint8_t *data, size_t size)
{
    /* byte 1-2: the JSON header length (0xffff: absent) */
    if (size < 3) return;
    size_t hl = (size_t)data[1] << 8 | data[2];
    if (hl == 0xffff) hl = (size_t)-1;
    const char *body = (const char *)data + 3;
    size_t len = size - 3;
    char *copy = malloc(len ? len : 1);
    if (!copy) return;
    memcpy(copy, body, len);
    kserve_request r;
    char err[KSERVE_ERRLEN];
    kserve_limits lim = {.max_tensor_bytes = 1 << 16, .max_json_tokens = 1 << 14};
    if (kserve_request_parse(&r, copy, len, hl, &lim, err, sizeof(err)) == 0) {
        if (kserve_request_check(&r, in, 2, out, 1, err, sizeof(err)) == 0) {
            float y[2 * 64] = {0};
            int64_t shape[2] = {r.inputs[0].shape[0] < 64 ? r.inputs[0].shape[0] : 64, 2};
            kserve_result res = {"y", KSERVE_FP32, 2, shape, y, (size_t)shape[0] * 2, NULL, 0};
            buf b = BUF_INIT;
            size_t jl;
            kserve_response_write(&b, &jl, "m", &r, &res, 1);
            buf_free(&b);
        }
        kserve_request_free(&r);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] & 1) {
        image img;
        char err[128];
        image_limits lim = {.max_side = 512, .max_pixels = 1 << 16};
        if (image_decode(data + 1, size - 1, data[0] & 2 ? 3 : 1, &lim, &img, err, sizeof(err)) ==
            0) {
            float *px = malloc(sizeof(float) * 8 * 8 * 3);
            image_prep p = {
                .width = 8, .height = 8, .channels = img.channels, .scale = 1, .std = {1, 1, 1}};
            if (px) image_preprocess(&img, &p, px);
            free(px);
            image_free(&img);
        }
        return 0;
    }
    kserve_case(data, size);
    return 0;
}
