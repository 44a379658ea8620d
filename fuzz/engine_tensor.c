/* libFuzzer target: arbitrary bytes as a .npy file and as a TensorProto. */
#include "engine/tensorio.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ENG_ERRLEN];
    et_tensor t;
    int64_t dims[2] = {2, 2};
    for (int f = ET_NPY; f <= ET_RAW; f++) {
        err[0] = 0;
        if (et_parse(data, size, (et_format)f, ENG_FLOAT, 2, dims, &t, err, sizeof(err)) == 0)
            et_tensor_clear(&t);
        else if (!err[0])
            abort();
    }
    return 0;
}
