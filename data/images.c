/* images.c — IDX (plain or gzip, via zlib) and CIFAR-10 binary loaders with
 * strict validation, and the conversion of images to pixel or patch token
 * sequences with per-channel normalisation. */
#include "data/images.h"
#include "engine/bound.h"
#include "engine/seed.h"

/* salt of this data stream for ssm_seed_derive: the bytes of "imag" */
#define IMAGES_SEED_SALT 0x696d6167ULL

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gsl/gsl_rng.h>
#include <zlib.h>

#define IDX_UBYTE 0x08

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- gzip-transparent reading (zlib reads plain files unchanged) ---- */

/* An open data file and the most bytes it may yield: its size when plain,
 * ssm_bound_gzip() of its size when gzip-compressed (see images.h). */
typedef struct {
    gzFile g;
    uint64_t size, limit;
    int gz;
} data_file;

static ssm_status open_gz(const char *path, data_file *df)
{
    ssm_status st = ssm_bound_file(path, &df->size);
    if (st != SSM_OK)
        return st;
    df->g = gzopen(path, "rb");
    if (!df->g)
        return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "out of memory");
    df->gz = !gzdirect(df->g);
    df->limit = df->gz ? ssm_bound_gzip(df->size) : df->size;
    return SSM_OK;
}

/* ssm_bound_dims against what the file may still yield after `used` bytes,
 * saying so for a gzip file. */
static ssm_status data_claim(const data_file *df, const char *path, int ndim,
                             const size_t *dims, uint64_t used, size_t *bytes)
{
    uint64_t have = df->limit > used ? df->limit - used : 0;
    ssm_status st = ssm_bound_dims(path, ndim, dims, 1, have, bytes);
    if (st == SSM_OK || !df->gz)
        return st;
    char msg[SSM_ERROR_CAP];
    snprintf(msg, sizeof msg, "%s", ssm_last_error());
    return ssm_fail(st, "%s (decompressed; a gzip file may grow to %d times its %" PRIu64
                    " bytes, at least %" PRIu64 ")", msg, SSM_GZIP_RATIO, df->size,
                    (uint64_t)SSM_GZIP_FLOOR);
}

/* Read up to n bytes; *got is how many arrived (fewer at end of file).
 * SSM_ERR_DATA when zlib reports a corrupt or truncated gzip stream. */
static ssm_status gz_read_some(gzFile g, const char *path, void *buf, size_t n,
                               size_t *got)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        size_t want = n - *got;
        unsigned chunk = want > (1u << 30) ? (1u << 30) : (unsigned)want;
        int r = gzread(g, p + *got, chunk);
        int zerr = Z_OK;
        const char *msg = r <= 0 ? gzerror(g, &zerr) : NULL;
        if (r < 0 || (r == 0 && zerr != Z_OK))
            return ssm_fail(SSM_ERR_DATA, "%s: %s gzip data: %s", path,
                            zerr == Z_BUF_ERROR ? "truncated" : "corrupt", msg);
        if (r == 0)
            return SSM_OK;
        *got += (size_t)r;
    }
    return SSM_OK;
}

static ssm_status gz_read_exact(gzFile g, const char *path, void *buf, size_t n,
                                const char *what)
{
    size_t got;
    ssm_status st = gz_read_some(g, path, buf, n, &got);
    if (st != SSM_OK)
        return st;
    if (got != n)
        return ssm_fail(SSM_ERR_DATA, "%s: truncated %s (expected %zu bytes, got %zu)",
                        path, what, n, got);
    return SSM_OK;
}

static ssm_status gz_expect_end(gzFile g, const char *path)
{
    unsigned char c;
    size_t got;
    ssm_status st = gz_read_some(g, path, &c, 1, &got);
    if (st != SSM_OK)
        return st;
    if (got)
        return ssm_fail(SSM_ERR_DATA, "%s: trailing bytes after the data "
                        "(dimensions do not match the file size)", path);
    return SSM_OK;
}

/* ---- IDX ---- */

typedef struct {
    int ndim;
    size_t dims[4];
    size_t numel;
} idx_header;

static ssm_status idx_read_header(const data_file *df, const char *path, idx_header *h)
{
    unsigned char m[4], d[16];
    ssm_status st = gz_read_exact(df->g, path, m, 4, "IDX header");
    if (st != SSM_OK)
        return st;
    if (m[0] != 0 || m[1] != 0 || m[3] < 1 || m[3] > 4)
        return ssm_fail(SSM_ERR_DATA, "%s: bad IDX magic %02x %02x %02x %02x",
                        path, m[0], m[1], m[2], m[3]);
    if (m[2] != IDX_UBYTE)
        return ssm_fail(SSM_ERR_DATA, "%s: IDX element type 0x%02x is not "
                        "unsigned byte (0x08)", path, m[2]);
    h->ndim = m[3];
    st = gz_read_exact(df->g, path, d, 4 * (size_t)h->ndim, "IDX header");
    if (st != SSM_OK)
        return st;
    for (int i = 0; i < h->ndim; i++) {
        const unsigned char *b = d + 4 * i;
        uint32_t v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                     (uint32_t)b[2] << 8 | b[3];
        if (v == 0 || v > INT_MAX)
            return ssm_fail(SSM_ERR_DATA, "%s: IDX dimension %d is %u", path, i, v);
        h->dims[i] = v;
    }
    return data_claim(df, path, h->ndim, h->dims, 4 + 4 * (uint64_t)h->ndim, &h->numel);
}

/* Header, payload (malloc'd, numel bytes) and end-of-file check. */
static ssm_status idx_read_file(const char *path, idx_header *h, uint8_t **data)
{
    data_file df;
    ssm_status st = open_gz(path, &df);
    if (st != SSM_OK)
        return st;
    *data = NULL;
    st = idx_read_header(&df, path, h);
    if (st == SSM_OK) {
        *data = malloc(h->numel);   /* (numel) */
        if (!*data)
            st = ssm_bound_nomem(path, h->numel, "IDX data");
    }
    if (st == SSM_OK)
        st = gz_read_exact(df.g, path, *data, h->numel, "IDX data");
    if (st == SSM_OK)
        st = gz_expect_end(df.g, path);
    gzclose(df.g);
    if (st != SSM_OK) {
        free(*data);
        *data = NULL;
    }
    return st;
}

static ssm_status idx_check_images(const char *path, const idx_header *h)
{
    if (h->ndim != 3 && h->ndim != 4)
        return ssm_fail(SSM_ERR_DATA, "%s: IDX images need 3 or 4 dimensions, "
                        "found %d", path, h->ndim);
    if (h->ndim == 4 && h->dims[3] > SSM_IMAGES_MAX_CHANNELS)
        return ssm_fail(SSM_ERR_DATA, "%s: %zu channels (at most %d)", path,
                        h->dims[3], SSM_IMAGES_MAX_CHANNELS);
    return SSM_OK;
}

static int max_label(const uint8_t *labels, size_t n)
{
    int m = 0;
    for (size_t i = 0; i < n; i++)
        if (labels[i] > m)
            m = labels[i];
    return m;
}

ssm_status ssm_images_load_idx(ssm_images *im, const char *images_path,
                               const char *labels_path)
{
    memset(im, 0, sizeof *im);
    idx_header hi, hl;
    uint8_t *pixels = NULL, *labels = NULL;
    ssm_status st = idx_read_file(images_path, &hi, &pixels);
    if (st == SSM_OK)
        st = idx_check_images(images_path, &hi);
    if (st == SSM_OK)
        st = idx_read_file(labels_path, &hl, &labels);
    if (st == SSM_OK && hl.ndim != 1)
        st = ssm_fail(SSM_ERR_DATA, "%s: IDX labels need 1 dimension, found %d",
                      labels_path, hl.ndim);
    if (st == SSM_OK && hl.dims[0] != hi.dims[0])
        st = ssm_fail(SSM_ERR_DATA, "%s: %zu labels for %zu images in %s",
                      labels_path, hl.dims[0], hi.dims[0], images_path);
    if (st == SSM_OK && !(im->path = dup_string(images_path)))
        st = ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", images_path);
    if (st != SSM_OK) {
        free(pixels);
        free(labels);
        return st;
    }
    im->n = (int)hi.dims[0];
    im->rows = (int)hi.dims[1];
    im->cols = (int)hi.dims[2];
    im->channels = hi.ndim == 4 ? (int)hi.dims[3] : 1;
    im->pixels = pixels;
    im->labels = labels;
    im->n_classes = max_label(labels, (size_t)im->n) + 1;
    return SSM_OK;
}

/* "<dir>/<split>-<kind>-ubyte" with ".gz" if that exists (malloc'd). */
static char *mnist_path(const char *dir, const char *split, const char *kind)
{
    size_t n = strlen(dir) + strlen(split) + strlen(kind) + 16;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/%s-%s-ubyte.gz", dir, split, kind);
    if (!file_exists(p))
        p[strlen(p) - 3] = '\0';
    return p;
}

ssm_status ssm_images_load_mnist(ssm_images *im, const char *dir, const char *split)
{
    memset(im, 0, sizeof *im);
    char *ip = mnist_path(dir, split, "images-idx3");
    char *lp = mnist_path(dir, split, "labels-idx1");
    ssm_status st;
    if (!ip || !lp)
        st = ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", dir);
    else if (!file_exists(ip))
        st = ssm_fail(SSM_ERR_NOINPUT, "%s[.gz]: no such file", ip);
    else if (!file_exists(lp))
        st = ssm_fail(SSM_ERR_NOINPUT, "%s[.gz]: no such file", lp);
    else
        st = ssm_images_load_idx(im, ip, lp);
    free(ip);
    free(lp);
    return st;
}

/* ---- CIFAR-10 ---- */

/* Read a whole (possibly gzipped) file into a malloc'd buffer; a gzip
 * stream that grows past the file's limit is refused as corrupt. */
static ssm_status read_whole(const char *path, uint8_t **out, size_t *n)
{
    data_file df;
    ssm_status st = open_gz(path, &df);
    if (st != SSM_OK)
        return st;
    size_t lim = df.limit < SIZE_MAX - 1 ? (size_t)df.limit + 1 : SIZE_MAX;
    size_t cap = (size_t)SSM_CIFAR_RECORD * 1024, len = 0;
    if (cap > lim)
        cap = lim;
    uint8_t *buf = malloc(cap);   /* (cap) */
    while (st == SSM_OK && buf) {
        size_t got;
        st = gz_read_some(df.g, path, buf + len, cap - len, &got);
        len += got;
        if (st != SSM_OK || len < cap || cap == lim)
            break;
        size_t nc = cap > lim / 2 ? lim : cap * 2;
        uint8_t *nb = realloc(buf, nc);
        if (!nb)
            free(buf);
        buf = nb;
        cap = nc;
    }
    gzclose(df.g);
    if (st == SSM_OK && !buf)
        st = ssm_bound_nomem(path, cap, "the CIFAR-10 file");
    if (st == SSM_OK && len > df.limit)
        st = ssm_fail(SSM_ERR_DATA, "%s: corrupt: gzip data grows past %" PRIu64 " bytes "
                      "(%d times its %" PRIu64 " bytes, at least %" PRIu64 ")", path, df.limit,
                      SSM_GZIP_RATIO, df.size, (uint64_t)SSM_GZIP_FLOOR);
    if (st != SSM_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *n = len;
    return SSM_OK;
}

/* Append the records of one CIFAR file (size already checked) to im,
 * converting planes (C, H, W) to channels-last (H, W, C). */
static ssm_status cifar_append(ssm_images *im, const char *path,
                               const uint8_t *buf, size_t n_rec)
{
    const int side = SSM_CIFAR_SIDE, plane = side * side;
    for (size_t r = 0; r < n_rec; r++) {
        const uint8_t *rec = buf + r * SSM_CIFAR_RECORD;
        if (rec[0] >= SSM_CIFAR_CLASSES)
            return ssm_fail(SSM_ERR_DATA, "%s: record %zu has label %d (CIFAR-10 "
                            "labels are 0..9)", path, r, rec[0]);
        size_t k = (size_t)im->n;
        im->labels[k] = rec[0];
        uint8_t *dst = im->pixels + k * (size_t)plane * 3;
        for (int p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++)
                dst[p * 3 + c] = rec[1 + c * plane + p];
        im->n++;
    }
    return SSM_OK;
}

static ssm_status cifar_grow(ssm_images *im, const char *path, size_t extra)
{
    size_t n = (size_t)im->n + extra;
    if (n > INT_MAX)
        return ssm_fail(SSM_ERR_DATA, "%s: too many images", path);
    uint8_t *px = realloc(im->pixels, n * 3 * SSM_CIFAR_SIDE * SSM_CIFAR_SIDE);
    if (px)
        im->pixels = px;   /* (n, 32, 32, 3) */
    uint8_t *lb = px ? realloc(im->labels, n) : NULL;
    if (lb)
        im->labels = lb;   /* (n) */
    if (!px || !lb)
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", path);
    return SSM_OK;
}

static ssm_status cifar_load_file(ssm_images *im, const char *path)
{
    uint8_t *buf;
    size_t len;
    ssm_status st = read_whole(path, &buf, &len);
    if (st != SSM_OK)
        return st;
    if (len == 0 || len % SSM_CIFAR_RECORD != 0)
        st = ssm_fail(SSM_ERR_DATA, "%s: size %zu is not a whole number of "
                      "%d-byte CIFAR-10 records", path, len, SSM_CIFAR_RECORD);
    size_t n_rec = len / SSM_CIFAR_RECORD;
    if (st == SSM_OK)
        st = cifar_grow(im, path, n_rec);
    if (st == SSM_OK)
        st = cifar_append(im, path, buf, n_rec);
    free(buf);
    return st;
}

ssm_status ssm_images_load_cifar(ssm_images *im, const char *const *paths, int n_paths)
{
    memset(im, 0, sizeof *im);
    if (n_paths < 1)
        return ssm_fail(SSM_ERR_USAGE, "no CIFAR-10 files given");
    ssm_status st = SSM_OK;
    for (int i = 0; i < n_paths && st == SSM_OK; i++)
        st = cifar_load_file(im, paths[i]);
    if (st == SSM_OK && !(im->path = dup_string(paths[0])))
        st = ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", paths[0]);
    if (st != SSM_OK) {
        ssm_images_free(im);
        return st;
    }
    im->rows = im->cols = SSM_CIFAR_SIDE;
    im->channels = 3;
    im->n_classes = SSM_CIFAR_CLASSES;
    return SSM_OK;
}

ssm_status ssm_images_load_cifar_dir(ssm_images *im, const char *dir, int train)
{
    enum { MAXF = 5 };
    char *paths[MAXF] = {0};
    int n = train ? 5 : 1;
    size_t len = strlen(dir) + 32;
    ssm_status st = SSM_OK;
    for (int i = 0; i < n && st == SSM_OK; i++) {
        paths[i] = malloc(len);
        if (!paths[i]) {
            st = ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        if (train)
            snprintf(paths[i], len, "%s/data_batch_%d.bin", dir, i + 1);
        else
            snprintf(paths[i], len, "%s/test_batch.bin", dir);
    }
    if (st == SSM_OK)
        st = ssm_images_load_cifar(im, (const char *const *)paths, n);
    for (int i = 0; i < n; i++)
        free(paths[i]);
    return st;
}

void ssm_images_free(ssm_images *im)
{
    free(im->pixels);
    free(im->labels);
    free(im->path);
    memset(im, 0, sizeof *im);
}

/* ---- sequences ---- */

/* Per-channel mean and std of v/255 over all pixels of im. */
static void channel_stats(const ssm_images *im, float *mean, float *std)
{
    const int C = im->channels;
    double sum[SSM_IMAGES_MAX_CHANNELS] = {0}, sq[SSM_IMAGES_MAX_CHANNELS] = {0};
    size_t npix = (size_t)im->n * (size_t)im->rows * (size_t)im->cols;
    for (size_t p = 0; p < npix; p++)
        for (int c = 0; c < C; c++) {
            double v = im->pixels[p * C + c] / 255.0;
            sum[c] += v;
            sq[c] += v * v;
        }
    for (int c = 0; c < C; c++) {
        double m = sum[c] / (double)npix;
        double var = sq[c] / (double)npix - m * m;
        double sd = var > 0 ? sqrt(var) : 0.0;
        mean[c] = (float)m;
        std[c] = sd > 1e-8 ? (float)sd : 1.0f;
    }
}

ssm_status ssm_images_build_seq(ssm_image_seq *s, const ssm_images *train,
                                int patch, int standardize)
{
    memset(s, 0, sizeof *s);
    if (patch < 1 || train->rows % patch != 0 || train->cols % patch != 0)
        return ssm_fail(SSM_ERR_CONFIG, "%s: patch size %d does not divide "
                        "%d x %d images", train->path ? train->path : "images",
                        patch, train->rows, train->cols);
    int64_t L = (int64_t)(train->rows / patch) * (train->cols / patch);
    int64_t d_input = (int64_t)patch * patch * train->channels;
    if (L > INT_MAX || d_input > INT_MAX)
        return ssm_fail(SSM_ERR_DATA, "%s: %d x %d images are too large: %" PRId64
                        " tokens of %" PRId64 " values (at most %d each)",
                        train->path ? train->path : "images", train->rows, train->cols,
                        L, d_input, INT_MAX);
    s->patch = patch;
    s->rows = train->rows;
    s->cols = train->cols;
    s->channels = train->channels;
    s->L = (int)L;
    s->d_input = (int)d_input;
    s->standardize = standardize;
    for (int c = 0; c < train->channels; c++) {
        s->mean[c] = 0.0f;
        s->std[c] = 1.0f;
    }
    if (standardize && train->n > 0)
        channel_stats(train, s->mean, s->std);
    for (int c = 0; c < train->channels; c++)
        for (int v = 0; v < 256; v++)
            s->lut[c][v] = ((float)v / 255.0f - s->mean[c]) / s->std[c];
    return SSM_OK;
}

ssm_status ssm_images_check_seq(const ssm_image_seq *s, const ssm_images *im)
{
    if (im->rows != s->rows || im->cols != s->cols || im->channels != s->channels)
        return ssm_fail(SSM_ERR_DATA, "%s: %d x %d x %d images, expected %d x %d x %d",
                        im->path ? im->path : "images", im->rows, im->cols,
                        im->channels, s->rows, s->cols, s->channels);
    return SSM_OK;
}

void ssm_images_to_seq(const ssm_images *im, const ssm_image_seq *s,
                       size_t i, float *out)
{
    const int p = s->patch, C = s->channels, W = s->cols;
    const int pw = s->cols / p;
    const uint8_t *img = im->pixels + i * (size_t)s->rows * W * C;   /* (rows, cols, C) */
    for (int t = 0; t < s->L; t++) {
        const int y0 = (t / pw) * p, x0 = (t % pw) * p;
        float *tok = out + (size_t)t * s->d_input;                   /* (d_input) */
        for (int dy = 0; dy < p; dy++)
            for (int dx = 0; dx < p; dx++) {
                const uint8_t *px = img + ((size_t)(y0 + dy) * W + (x0 + dx)) * C;
                for (int c = 0; c < C; c++)
                    tok[(dy * p + dx) * C + c] = s->lut[c][px[c]];
            }
    }
}

ssm_status ssm_images_batch(const ssm_images *im, const ssm_image_seq *s,
                            const int *indices, int B, float *inputs, int *targets)
{
    ssm_status st = ssm_images_check_seq(s, im);
    if (st != SSM_OK)
        return st;
    size_t per = (size_t)s->L * s->d_input;
    for (int b = 0; b < B; b++) {
        if (indices[b] < 0 || indices[b] >= im->n)
            return ssm_fail(SSM_ERR_SOFTWARE, "%s: image index %d out of range 0..%d",
                            im->path ? im->path : "images", indices[b], im->n - 1);
        ssm_images_to_seq(im, s, (size_t)indices[b], inputs + (size_t)b * per);
        targets[b] = im->labels[indices[b]];
    }
    return SSM_OK;
}


ssm_status ssm_images_sample(const ssm_images *im, const ssm_image_seq *s,
                             uint64_t seed, uint64_t step, int index, int B,
                             float *inputs, int *targets)
{
    if (im->n < 1 || B < 1)
        return ssm_fail(SSM_ERR_CONFIG, "%s: cannot sample %d of %d images",
                        im->path ? im->path : "images", B, im->n);
    int *idx = malloc((size_t)B * sizeof *idx);   /* (B) */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!idx || !r) {
        free(idx);
        if (r)
            gsl_rng_free(r);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for a batch of %d", B);
    }
    gsl_rng_set(r, ssm_seed_derive(IMAGES_SEED_SALT, seed, step, (uint64_t)(int64_t)index));
    for (int b = 0; b < B; b++)
        idx[b] = (int)gsl_rng_uniform_int(r, (unsigned long)im->n);
    gsl_rng_free(r);
    ssm_status st = ssm_images_batch(im, s, idx, B, inputs, targets);
    free(idx);
    return st;
}

int ssm_images_range(const ssm_images *im, const ssm_image_seq *s, size_t start,
                     int B, float *inputs, int *targets)
{
    size_t per = (size_t)s->L * s->d_input;
    int filled = 0;
    for (int b = 0; b < B; b++) {
        float *dst = inputs + (size_t)b * per;   /* (L, d_input) */
        size_t i = start + (size_t)b;
        if (i < (size_t)im->n) {
            ssm_images_to_seq(im, s, i, dst);
            targets[b] = im->labels[i];
            filled++;
        } else {
            memset(dst, 0, per * sizeof *dst);
            targets[b] = -1;
        }
    }
    return filled;
}

ssm_status ssm_images_build_block(ssm_image_block *blk, const ssm_image_seq *s, int B)
{
    memset(blk, 0, sizeof *blk);
    if (B < 1)
        return ssm_fail(SSM_ERR_CONFIG, "batch size %d", B);
    blk->inputs = calloc((size_t)B * s->L * s->d_input, sizeof(float)); /* (B, L, I) */
    blk->targets = calloc((size_t)B, sizeof(int));                     /* (B) */
    if (!blk->inputs || !blk->targets) {
        ssm_images_free_block(blk);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for a batch of %d images", B);
    }
    blk->B = B;
    blk->L = s->L;
    blk->d_input = s->d_input;
    blk->batch.B = B;
    blk->batch.L = s->L;
    blk->batch.tokens = NULL;
    blk->batch.inputs = blk->inputs;
    blk->batch.targets = blk->targets;
    return SSM_OK;
}

void ssm_images_free_block(ssm_image_block *blk)
{
    free(blk->inputs);
    free(blk->targets);
    memset(blk, 0, sizeof *blk);
}
