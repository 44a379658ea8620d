/*
 * Fuzzes the Server-Timing parser (loadgen/servertiming.c): any header value
 * gives durations >= 0 and only the found bits, never a read past its end
 * (the value is copied to an exact-size allocation so ASan sees overreads).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/servertiming.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = malloc(size ? size : 1);
    if (!v) return 0;
    memcpy(v, data, size);
    int64_t q = 0, a = 0;
    int found = lg_st_parse(v, size, &q, &a);
    if (found & ~(LG_ST_HAVE_QUEUE | LG_ST_HAVE_APP)) abort();
    if (q < 0 || a < 0) abort();
    if (!(found & LG_ST_HAVE_QUEUE) && q) abort();
    if (!(found & LG_ST_HAVE_APP) && a) abort();
    free(v);
    return 0;
}
