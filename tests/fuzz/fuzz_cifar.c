/* fuzz_cifar.c — libFuzzer harness: ssm_images_load_cifar (data/images.c)
 * on any bytes, plain or gzip (told apart by content); a batch that loads is
 * turned into sequences. */
#include "tests/fuzz/fuzz_file.h"

#include <stdlib.h>

#include "data/images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *paths[2] = {fuzz_write("data_batch_1.bin", data, size), NULL};
    paths[1] = paths[0];
    ssm_images im = {0};
    if (ssm_images_load_cifar(&im, paths, 1 + (size & 1)) == SSM_OK) {
        ssm_image_seq s;
        if (ssm_images_build_seq(&s, &im, 4, 1) != SSM_OK) abort();
    }
    ssm_images_free(&im);
    return 0;
}
