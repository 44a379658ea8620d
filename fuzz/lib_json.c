/* libFuzzer target: lib/json must reject or accept any bytes without
 * crashing, and every accessor must stay in bounds on what it accepted. */
#include "lib/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy with no terminator: over-reads hit ASan at once. */
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    memcpy(s, data, size);
    json_doc d;
    json_limits lim = {
        .max_depth = 16, .max_tokens = 4096, .allow_nonfinite = size && (data[0] & 1)};
    char err[128];
    if (json_parse(&d, s, size, &lim, err, sizeof(err)) == 0) {
        char out[64];
        for (uint32_t i = 0; i < d.n; i++) {
            double f;
            int64_t v;
            uint64_t u;
            json_num_f64(&d, (int)i, &f);
            float g;
            json_num_f32(&d, (int)i, &g);
            json_num_i64(&d, (int)i, &v);
            json_num_u64(&d, (int)i, &u);
            json_str_copy(&d, (int)i, out, sizeof(out));
            json_str_eq(&d, (int)i, "name");
            if (d.tok[i].next <= i || d.tok[i].next > d.n) abort();
        }
        json_obj_get(&d, 0, "inputs");
        json_doc_free(&d);
    }
    free(s);
    return 0;
}
