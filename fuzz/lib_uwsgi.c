/* libFuzzer target: arbitrary bytes as a uwsgi request packet. */
#include "lib/uwsgi.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the parser rewrites header names in place: give it its own copy, sized
     * exactly so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    http1_request req;
    http1_header hs[64];
    uwsgi_vars v;
    int n = uwsgi_parse_request(buf, size, &req, hs, 64, &v);
    if (n > 0) {
        if ((size_t)n > size || !req.method || req.num_headers > 64) abort();
        for (size_t i = 0; i < req.num_headers; i++)
            if (!hs[i].name_len || memchr(hs[i].value, '\n', hs[i].value_len)) abort();
    }
    uwsgi_looks_like_http(buf, size);
    free(buf);
    return 0;
}
