/* libFuzzer: `aiserve top` draws whatever a stats address sends back (any
 * server may answer there). top_render takes the bytes as a JSON document or
 * an HTTP response carrying one; each input is rendered twice (the second
 * computes rates against the first). Nothing may crash, leak or read out of
 * bounds. */
#include "server/top.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static top_prev prev;
    memset(&prev, 0, sizeof(prev));
    buf out = BUF_INIT;
    top_render((const char *)data, size, &prev, 1.0, &out);
    buf_reset(&out);
    top_render((const char *)data, size, &prev, 2.0, &out);
    buf_free(&out);
    return 0;
}
