/* fuzz_safetensors.c — libFuzzer harness: ssm_safetensors_open
 * (engine/safetensors.c) on any bytes, then every tensor converted. */
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_tensor_file(ssm_safetensors_open, "model.safetensors", data, size);
    return 0;
}
