/* fuzz_idx.c — libFuzzer harness: ssm_images_load_idx (data/images.c) with
 * the input as the images file and then as the labels file (plain or gzip:
 * the reader tells them apart by content).  The other file of the pair is a
 * small valid one whose count matches the input's header when it has one,
 * so inputs that parse run all the way through. */
#include "tests/fuzz/fuzz_file.h"

#include <stdlib.h>

#include "data/images.h"

#define FUZZ_IDX_MAX_N 64

/* The image count the input's header claims (plain IDX), else 1. */
static uint32_t header_count(const uint8_t *data, size_t size)
{
    if (size < 8 || data[0] || data[1] || data[2] != 0x08) return 1;
    uint32_t n = (uint32_t)data[4] << 24 | (uint32_t)data[5] << 16 | (uint32_t)data[6] << 8 | data[7];
    return n <= FUZZ_IDX_MAX_N ? n : 1;
}

/* A valid IDX labels (rank 1) or 2 x 2 images (rank 3) file of n items. */
static const char *write_partner(const char *name, int rank, uint32_t n)
{
    static uint8_t buf[16 + FUZZ_IDX_MAX_N * 4];
    uint8_t *p = buf;
    *p++ = 0, *p++ = 0, *p++ = 0x08, *p++ = (uint8_t)rank;
    for (int d = 0; d < rank; d++) {
        uint32_t v = d == 0 ? n : 2;
        *p++ = (uint8_t)(v >> 24), *p++ = (uint8_t)(v >> 16), *p++ = (uint8_t)(v >> 8), *p++ = (uint8_t)v;
    }
    for (uint32_t i = 0; i < n * (rank == 1 ? 1 : 4); i++) *p++ = (uint8_t)(i % 3);
    return fuzz_write(name, buf, (size_t)(p - buf));
}

static void load(const char *images, const char *labels)
{
    ssm_images im = {0};
    if (ssm_images_load_idx(&im, images, labels) == SSM_OK) {
        ssm_image_seq s;
        if (ssm_images_build_seq(&s, &im, 1, 1) != SSM_OK) abort();
    }
    ssm_images_free(&im);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t n = header_count(data, size);
    const char *in = fuzz_write("in-idx", data, size);
    load(in, write_partner("labels-idx1", 1, n));
    load(write_partner("images-idx3", 3, n), in);
    return 0;
}
