/* images.h — image classification data: IDX files (MNIST, Fashion-MNIST;
 * plain or gzip-compressed) and CIFAR-10 binary batches, turned into token
 * sequences (one token per pixel, or per p x p patch) of normalised values. */
#ifndef SSM_IMAGES_H
#define SSM_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"
#include "engine/model.h"

/* Where Debian's dataset-fashion-mnist package puts its IDX files
 * ({train,t10k}-{images-idx3,labels-idx1}-ubyte.gz). */
#define SSM_IMAGES_FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define SSM_IMAGES_MAX_CHANNELS 4
#define SSM_CIFAR_SIDE 32
#define SSM_CIFAR_CLASSES 10
#define SSM_CIFAR_RECORD (1 + 3 * SSM_CIFAR_SIDE * SSM_CIFAR_SIDE)   /* 3073 bytes */

typedef struct {
    int n;            /* images */
    int rows, cols;   /* image height and width */
    int channels;     /* 1 (MNIST) or 3 (CIFAR), at most SSM_IMAGES_MAX_CHANNELS */
    int n_classes;    /* 1 + the largest label (10 for CIFAR-10) */
    uint8_t *pixels;  /* (n, rows, cols, channels) row-major, channels last */
    uint8_t *labels;  /* (n) */
    char *path;       /* the (first) images file, for messages (owned) */
} ssm_images;

/* Load an IDX image file (unsigned-byte data, 3 dims (n, rows, cols) or 4
 * dims (n, rows, cols, channels)) and its IDX label file (1 dim (n)).  Either
 * may be gzip-compressed (detected from the content, not the name).
 * Errors name the file: SSM_ERR_NOINPUT (missing), SSM_ERR_DATA (bad magic,
 * unsupported element type, wrong rank or dimensions, truncated, trailing
 * bytes, corrupt gzip stream, image/label count mismatch). */
ssm_status ssm_images_load_idx(ssm_images *im, const char *images_path,
                               const char *labels_path);

/* Load "<dir>/<split>-images-idx3-ubyte[.gz]" and
 * "<dir>/<split>-labels-idx1-ubyte[.gz]", split being "train" or "t10k"
 * (the .gz name is tried first). */
ssm_status ssm_images_load_mnist(ssm_images *im, const char *dir, const char *split);

/* Load and concatenate CIFAR-10 binary batches: each file is a whole number
 * of 3073-byte records (label 0..9, then 1024 red, 1024 green, 1024 blue
 * pixel bytes, each plane row-major).  Pixels are stored channels-last. */
ssm_status ssm_images_load_cifar(ssm_images *im, const char *const *paths, int n_paths);

/* data_batch_1.bin .. data_batch_5.bin (train) or test_batch.bin (!train). */
ssm_status ssm_images_load_cifar_dir(ssm_images *im, const char *dir, int train);

void ssm_images_free(ssm_images *im);

/* How images become sequences.  Tokens are p x p patches in row-major patch
 * order (p = 1: one token per pixel); a token's values are ordered
 * (dy, dx, channel) within its patch.  A pixel byte v of channel c becomes
 *   standardize: (v/255 - mean[c]) / std[c]   (mean, std of the set given
 *                to ssm_images_build_seq: pass the training set)
 *   otherwise:   v/255, in [0, 1]. */
typedef struct {
    int patch;        /* p */
    int rows, cols, channels;
    int L;            /* tokens per image: (rows / p) * (cols / p) */
    int d_input;      /* values per token: p * p * channels */
    int standardize;
    float mean[SSM_IMAGES_MAX_CHANNELS];       /* per channel, of v/255 */
    float std[SSM_IMAGES_MAX_CHANNELS];        /* per channel (1 if 0) */
    float lut[SSM_IMAGES_MAX_CHANNELS][256];   /* (channels, 256) byte -> value */
} ssm_image_seq;

/* Set up the sequence layout for train's geometry; p must divide rows and
 * cols (SSM_ERR_CONFIG otherwise). */
ssm_status ssm_images_build_seq(ssm_image_seq *s, const ssm_images *train,
                                int patch, int standardize);

/* SSM_ERR_DATA unless im has the geometry s was built for. */
ssm_status ssm_images_check_seq(const ssm_image_seq *s, const ssm_images *im);

/* Image i as a sequence: out is (L, d_input). */
void ssm_images_to_seq(const ssm_images *im, const ssm_image_seq *s,
                       size_t i, float *out);

/* Images indices[0 .. B) into inputs (B, L, d_input) and targets (B). */
ssm_status ssm_images_batch(const ssm_images *im, const ssm_image_seq *s,
                            const int *indices, int B, float *inputs, int *targets);

/* B images drawn uniformly (with replacement) by a GSL mt19937 generator
 * seeded with a hash of (seed, step, index): deterministic from those alone. */
ssm_status ssm_images_sample(const ssm_images *im, const ssm_image_seq *s,
                             uint64_t seed, uint64_t step, int index, int B,
                             float *inputs, int *targets);

/* Images start, start+1, ... (for evaluation): fills up to B rows and
 * returns how many; rows past the end get zero inputs and target -1. */
int ssm_images_range(const ssm_images *im, const ssm_image_seq *s, size_t start,
                     int B, float *inputs, int *targets);

/* Owned (B, L, d_input) inputs and (B) targets, with an ssm_batch view. */
typedef struct {
    int B, L, d_input;
    float *inputs;    /* (B, L, d_input) */
    int *targets;     /* (B) class labels, -1 = padding row */
    ssm_batch batch;  /* views inputs/targets; tokens NULL */
} ssm_image_block;

ssm_status ssm_images_build_block(ssm_image_block *blk, const ssm_image_seq *s, int B);
void ssm_images_free_block(ssm_image_block *blk);

#endif
