/* fuzz_checkpoint.c — libFuzzer harness: a checkpoint directory whose
 * model.safetensors is the input, beside a fixed tiny config.json, through
 * ssm_checkpoint_load (engine/checkpoint.c): the safetensors reader plus the
 * loader's name mapping, shape checks and metadata. */
#include "tests/fuzz/fuzz_file.h"

#include <string.h>

static const char config[] =
    "{\"d_model\": 8, \"n_layer\": 2, \"vocab_size\": 10, \"ssm_cfg\": {\"d_state\": 4},"
    " \"pad_vocab_size_multiple\": 8}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write("config.json", (const uint8_t *)config, strlen(config));
    fuzz_write("model.safetensors", data, size);
    fuzz_checkpoint_load();
    return 0;
}
