/* fuzz_npy.c — libFuzzer harness: ssm_npy_read (engine/npy.c) on any bytes. */
#include "tests/fuzz/fuzz_file.h"

#include <stdlib.h>

#include "engine/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    float *x = NULL;
    int ndim = 0;
    size_t shape[SSM_NPY_MAX_DIM];
    if (ssm_npy_read(fuzz_write("in.npy", data, size), &x, &ndim, shape) == SSM_OK) free(x);
    return 0;
}
