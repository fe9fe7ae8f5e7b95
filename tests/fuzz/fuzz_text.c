/* fuzz_text.c — libFuzzer harness: ssm_text_load (data/text.c) on the input
 * as a plain text file, then as a fortune file (a strfile "corpus.dat"
 * beside it, so its "%" lines are stripped) in a directory. */
#include "tests/fuzz/fuzz_file.h"

#include "data/text.h"

static void load(const char *path)
{
    ssm_text t = {0};
    if (ssm_text_load(&t, path, SSM_TEXT_DEFAULT_VAL_FRACTION) == SSM_OK) {
        double nats, bits;
        ssm_text_unigram(&t, &nats, &bits);
    }
    ssm_text_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load(fuzz_write("corpus", data, size));
    fuzz_write("corpus.dat", (const uint8_t *)"", 0);
    load(fuzz_dir());
    fuzz_remove("corpus.dat");
    return 0;
}
