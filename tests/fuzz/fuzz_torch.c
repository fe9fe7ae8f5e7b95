/* fuzz_torch.c — libFuzzer harness: ssm_safetensors_open_torch
 * (engine/safetensors.c: zip + pickle, as torch.save writes
 * pytorch_model.bin) on any bytes, then every tensor converted. */
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_tensor_file(ssm_safetensors_open_torch, "pytorch_model.bin", data, size);
    return 0;
}
