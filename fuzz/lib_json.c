/* libFuzzer target: lib/json must reject or accept any bytes without
 * crashing, and every accessor must stay in bounds on what it accepted. Any
 * bytes written by buf_json_str (lib/buf, the one JSON string writer) parse
 * back as one string, equal to the input when that was ASCII without NUL. */
#include "lib/json.h"

#include "lib/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_writer(const char *s, size_t size)
{
    buf b = BUF_INIT;
    if (buf_json_str(&b, s, size)) return;
    json_doc d;
    json_limits lim = {.max_depth = 4, .max_tokens = 4};
    if (json_parse(&d, b.data, b.len, &lim, NULL, 0) || d.n != 1) abort();
    int plain = 1;
    for (size_t i = 0; i < size; i++)
        if (!s[i] || (unsigned char)s[i] >= 0x80) plain = 0;
    /* json_str_copy wants room for the escaped length: give it that */
    char *back = malloc(b.len + 1);
    if (back && plain &&
        (json_str_copy(&d, 0, back, b.len + 1) != (int)size || memcmp(back, s, size)))
        abort();
    free(back);
    json_doc_free(&d);
    buf_free(&b);
}

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
    check_writer(s, size);
    free(s);
    return 0;
}
