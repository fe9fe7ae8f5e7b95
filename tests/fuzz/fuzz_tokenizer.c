/* fuzz_tokenizer.c — libFuzzer harness: ssm_tokenizer_load
 * (data/tokenizer.c) on any bytes; a tokenizer that loads encodes and
 * decodes a fixed text. */
#include "tests/fuzz/fuzz_file.h"

#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"

static const char text[] = "Hello, world! It's 2026 -- caf\xc3\xa9 \xe2\x80\x94 <|endoftext|>\n\xff";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ssm_tokenizer tk = {0};
    if (ssm_tokenizer_load(&tk, fuzz_write("tokenizer.json", data, size)) == SSM_OK) {
        int *ids = NULL, n = 0;
        if (ssm_tokenizer_encode(&tk, text, sizeof text - 1, &ids, &n) == SSM_OK) {
            char *out = NULL;
            size_t len = 0;
            if (ssm_tokenizer_decode(&tk, ids, n, &out, &len) == SSM_OK) free(out);
            free(ids);
        }
        int probe[] = {-1, 0, 1, tk.n_vocab - 1, tk.n_vocab};
        char *out = NULL;
        size_t len = 0;
        if (ssm_tokenizer_decode(&tk, probe, 5, &out, &len) == SSM_OK) free(out);
    }
    ssm_tokenizer_free(&tk);
    return 0;
}
