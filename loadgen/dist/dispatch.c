/*
 * dist/dispatch: see dispatch.h.
 */
#include "loadgen/dist/dispatch.h"

void dist_dispatch_share(const int *per_class, size_t nc, size_t nworkers, size_t j, int *want)
{
    size_t W = nworkers ? nworkers : 1, offset = 0;
    for (size_t k = 0; k < nc; k++) {
        int c = per_class[k] > 0 ? per_class[k] : 0;
        /* worker (offset + i) % W takes the i-th extra user of this class */
        size_t slot = (j + W - offset % W) % W;
        want[k] = c / (int)W + ((int)slot < c % (int)W ? 1 : 0);
        offset += (size_t)(c % (int)W);
    }
}
