/* fuzz_config.c — libFuzzer harness: config.json through the checkpoint
 * loader (ssm_checkpoint_load, engine/checkpoint.c): the input is the
 * directory's config.json, beside the tiny fixture model's weights
 * (tests/data/mamba_tiny_torch/pytorch_model.bin), so a config that parses
 * also builds a model and loads (or rejects) the weights. */
#include "tests/fuzz/fuzz_file.h"

#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_FIXTURES
#define FUZZ_FIXTURES "tests/data"
#endif

/* Copy the fixture weights into the scratch directory once. */
static void copy_weights(void)
{
    static int done;
    if (done) return;
    FILE *f = fopen(FUZZ_FIXTURES "/mamba_tiny_torch/pytorch_model.bin", "rb");
    if (!f) abort();
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n == 0 || n == sizeof buf) abort();
    fuzz_write("pytorch_model.bin", buf, n);
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    copy_weights();
    fuzz_write("config.json", data, size);
    fuzz_checkpoint_load();
    return 0;
}
