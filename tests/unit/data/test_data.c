/* test_data.c — Criterion tests of the data layer (text corpus, IDX and
 * CIFAR-10 loaders, image sequences) and the .npy writer/reader, on small
 * fixtures each test writes into its own temporary directory. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/images.h"
#include "data/text.h"
#include "engine/npy.h"
#include "engine/status.h"
#include "tests/tmpdir.h"

/* ---- fixtures ---- */


TestSuite(text, .init = tmpdir_make, .fini = tmpdir_remove);
TestSuite(images, .init = tmpdir_make, .fini = tmpdir_remove);
TestSuite(npy, .init = tmpdir_make, .fini = tmpdir_remove);

/* tmpdir/name (static buffer, one live result per slot). */
static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, name);
    return buf[slot];
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    cr_assert_not_null(g);
    cr_assert_eq(gzwrite(g, data, (unsigned)n), (int)n);
    gzclose(g);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void assert_error(ssm_status st, ssm_status want, const char *needle)
{
    cr_assert_eq(st, want, "status %d (%s), want %d; message: %s", st,
                 ssm_status_name(st), want, ssm_last_error());
    cr_assert_not_null(strstr(ssm_last_error(), needle),
                       "message \"%s\" lacks \"%s\"", ssm_last_error(), needle);
}

/* Deterministic pseudo-random bytes in [lo, lo + span). */
static void fill_bytes(uint8_t *p, size_t n, unsigned lo, unsigned span, uint32_t s)
{
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (uint8_t)(lo + (s >> 16) % span);
    }
}

/* ---- text ---- */

Test(text, split_sizes)
{
    uint8_t buf[1000];   /* (1000) */
    fill_bytes(buf, sizeof buf, 0, 256, 1);
    ssm_text t;
    cr_assert_eq(ssm_text_build(&t, buf, 1000, 0.1, "mem"), SSM_OK);
    cr_assert_eq(t.n, 1000);
    cr_assert_eq(t.n_train, 900);
    cr_assert_eq(t.n_val, 100);
    cr_assert_eq(memcmp(t.bytes, buf, 1000), 0);
    ssm_text_free(&t);

    cr_assert_eq(ssm_text_build(&t, buf, 10, 0.25, "mem"), SSM_OK);
    cr_assert_eq(t.n_val, 2);      /* floor(2.5) */
    cr_assert_eq(t.n_train, 8);
    ssm_text_free(&t);

    cr_assert_eq(ssm_text_build(&t, buf, 10, 0.0, "mem"), SSM_OK);
    cr_assert_eq(t.n_val, 0);
    ssm_text_free(&t);

    write_bytes(tpath("corpus.txt"), buf, 1000);
    cr_assert_eq(ssm_text_load(&t, tpath("corpus.txt"), SSM_TEXT_DEFAULT_VAL_FRACTION), SSM_OK);
    cr_assert_eq(t.n_train, 900);
    cr_assert_eq(t.n_files, 1);
    cr_assert_eq(memcmp(t.bytes, buf, 1000), 0);
    ssm_text_free(&t);
}

Test(text, bad_fraction)
{
    uint8_t buf[10] = {0};
    ssm_text t;
    assert_error(ssm_text_build(&t, buf, 10, 1.0, "mem"), SSM_ERR_CONFIG, "mem");
    assert_error(ssm_text_build(&t, buf, 10, -0.1, "mem"), SSM_ERR_CONFIG, "mem");
    assert_error(ssm_text_build(&t, buf, 2, 0.5, "tiny"), SSM_ERR_DATA, "tiny");
}

Test(text, directory_of_fortunes)
{
    const char *a = "one\n%\ntwo\n%\n%x\n";   /* fortune file: "%" lines go */
    const char *b = "plain\n%\n";            /* no .dat beside it: kept whole */
    write_bytes(tpath("a"), a, strlen(a));
    write_bytes(tpath("a.dat"), "idx", 3);
    write_bytes(tpath("b"), b, strlen(b));
    write_bytes(tpath("c.u8"), "SKIP", 4);
    write_bytes(tpath(".hidden"), "SKIP", 4);
    cr_assert_eq(symlink("a", tpath("d")), 0);
    cr_assert_eq(mkdir(tpath("off"), 0755), 0);
    write_bytes(tpath("off/e"), "SKIP", 4);

    ssm_text t;
    cr_assert_eq(ssm_text_load(&t, tmpdir, 0.0), SSM_OK, "%s", ssm_last_error());
    const char *want = "one\ntwo\n%x\nplain\n%\n";
    cr_assert_eq(t.n, strlen(want));
    cr_assert_eq(memcmp(t.bytes, want, t.n), 0, "got \"%.*s\"", (int)t.n, t.bytes);
    cr_assert_eq(t.n_files, 2);
    ssm_text_free(&t);

    /* A single fortune file loaded directly is stripped too. */
    cr_assert_eq(ssm_text_load(&t, tpath("a"), 0.0), SSM_OK);
    cr_assert_eq(t.n, strlen("one\ntwo\n%x\n"));
    ssm_text_free(&t);
}

Test(text, missing_and_empty)
{
    ssm_text t;
    const char *missing = tpath("no-such-file");
    assert_error(ssm_text_load(&t, missing, 0.1), SSM_ERR_NOINPUT, missing);

    write_bytes(tpath("empty"), "", 0);
    assert_error(ssm_text_load(&t, tpath("empty"), 0.1), SSM_ERR_DATA, "empty corpus");

    const char *fortune = "%\n%\n";   /* only separators: empty after stripping */
    write_bytes(tpath("f"), fortune, strlen(fortune));
    write_bytes(tpath("f.dat"), "", 0);
    assert_error(ssm_text_load(&t, tpath("f"), 0.1), SSM_ERR_DATA, tpath("f"));

    cr_assert_eq(mkdir(tpath("sub"), 0755), 0);
    assert_error(ssm_text_load(&t, tpath("sub"), 0.1), SSM_ERR_DATA, tpath("sub"));
    write_bytes(tpath("sub/x.dat"), "abc", 3);
    assert_error(ssm_text_load(&t, tpath("sub"), 0.1), SSM_ERR_DATA, "no text files");
}

/* 1 if row (tokens, targets) is train[o .. o+L) / train[o+1 .. o+L] for
 * some o with o + L < n_train. */
static int row_in_train(const ssm_text *t, const int *tok, const int *tgt, int L)
{
    for (size_t o = 0; o + (size_t)L < t->n_train; o++) {
        int ok = 1;
        for (int i = 0; i < L && ok; i++)
            ok = tok[i] == t->bytes[o + i] && tgt[i] == t->bytes[o + i + 1];
        if (ok)
            return 1;
    }
    return 0;
}

Test(text, batches_deterministic)
{
    enum { N = 2000, B = 8, L = 16 };
    uint8_t buf[N];   /* (N): train bytes < 128, validation bytes >= 200 */
    fill_bytes(buf, 1800, 0, 128, 7);
    fill_bytes(buf + 1800, 200, 200, 56, 9);
    ssm_text t;
    cr_assert_eq(ssm_text_build(&t, buf, N, 0.1, "mem"), SSM_OK);
    cr_assert_eq(t.n_train, 1800);

    int tok1[B * L], tgt1[B * L], tok2[B * L], tgt2[B * L];   /* (B, L) each */
    cr_assert_eq(ssm_text_batch(&t, 42, 5, 0, B, L, tok1, tgt1), SSM_OK);
    cr_assert_eq(ssm_text_batch(&t, 42, 5, 0, B, L, tok2, tgt2), SSM_OK);
    cr_assert_eq(memcmp(tok1, tok2, sizeof tok1), 0);
    cr_assert_eq(memcmp(tgt1, tgt2, sizeof tgt1), 0);

    for (int b = 0; b < B; b++) {
        const int *tk = tok1 + b * L, *tg = tgt1 + b * L;
        for (int i = 0; i + 1 < L; i++)
            cr_assert_eq(tg[i], tk[i + 1], "target is not the next byte");
        for (int i = 0; i < L; i++)
            cr_assert(tk[i] < 128 && tg[i] < 128, "batch reached the validation split");
        cr_assert(row_in_train(&t, tk, tg, L), "row %d is not a train window", b);
    }

    /* A different step, seed or micro-batch index gives a different batch. */
    cr_assert_eq(ssm_text_batch(&t, 42, 6, 0, B, L, tok2, tgt2), SSM_OK);
    cr_assert_neq(memcmp(tok1, tok2, sizeof tok1), 0);
    cr_assert_eq(ssm_text_batch(&t, 43, 5, 0, B, L, tok2, tgt2), SSM_OK);
    cr_assert_neq(memcmp(tok1, tok2, sizeof tok1), 0);
    cr_assert_eq(ssm_text_batch(&t, 42, 5, 1, B, L, tok2, tgt2), SSM_OK);
    cr_assert_neq(memcmp(tok1, tok2, sizeof tok1), 0);

    /* Over many steps no window reaches into the validation split. */
    for (uint64_t step = 0; step < 200; step++) {
        cr_assert_eq(ssm_text_batch(&t, 42, step, 0, B, L, tok2, tgt2), SSM_OK);
        for (int i = 0; i < B * L; i++)
            cr_assert(tok2[i] < 128 && tgt2[i] < 128, "step %d reached validation",
                      (int)step);
    }

    /* Going back to (42, 5) after other draws reproduces it (resume). */
    cr_assert_eq(ssm_text_batch(&t, 42, 5, 0, B, L, tok2, tgt2), SSM_OK);
    cr_assert_eq(memcmp(tok1, tok2, sizeof tok1), 0);
    ssm_text_free(&t);
}

Test(text, batch_edge_sizes)
{
    uint8_t buf[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    ssm_text t;
    cr_assert_eq(ssm_text_build(&t, buf, 10, 0.0, "edge"), SSM_OK);
    int tok[3 * 9], tgt[3 * 9];   /* (3, 9) */
    cr_assert_eq(ssm_text_batch(&t, 1, 1, 0, 3, 9, tok, tgt), SSM_OK);
    for (int b = 0; b < 3; b++)      /* only offset 0 fits */
        for (int i = 0; i < 9; i++) {
            cr_assert_eq(tok[b * 9 + i], i + 1);
            cr_assert_eq(tgt[b * 9 + i], i + 2);
        }
    assert_error(ssm_text_batch(&t, 1, 1, 0, 3, 10, tok, tgt), SSM_ERR_CONFIG, "edge");

    ssm_text_block blk;
    cr_assert_eq(ssm_text_build_block(&blk, 2, 4), SSM_OK);
    cr_assert_eq(ssm_text_batch(&t, 3, 0, 0, 2, 4, blk.tokens, blk.targets), SSM_OK);
    cr_assert_eq(blk.batch.tokens, blk.tokens);
    cr_assert_eq(blk.batch.targets, blk.targets);
    cr_assert_null(blk.batch.inputs);
    cr_assert_eq(blk.batch.B * blk.batch.L, 8);
    ssm_text_free_block(&blk);
    ssm_text_free(&t);
}

Test(text, validation_windows)
{
    enum { L = 4, B = 4 };
    uint8_t buf[100];   /* (100): byte i = i */
    for (int i = 0; i < 100; i++)
        buf[i] = (uint8_t)i;
    ssm_text t;
    cr_assert_eq(ssm_text_build(&t, buf, 100, 0.25, "val"), SSM_OK);
    cr_assert_eq(t.n_val, 25);
    cr_assert_eq(ssm_text_val_count(&t, L), 6);   /* floor(24 / 4) */

    ssm_text_val_iter it;
    ssm_text_val_begin(&it, &t, L);
    int tok[B * L], tgt[B * L];   /* (B, L) */
    int seen = 0;
    for (int call = 0; call < 3; call++) {
        int got = ssm_text_val_next(&it, B, tok, tgt);
        cr_assert_eq(got, call == 0 ? 4 : call == 1 ? 2 : 0);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < L; i++) {
                if (b < got) {
                    cr_assert_eq(tok[b * L + i], 75 + (seen + b) * L + i);
                    cr_assert_eq(tgt[b * L + i], 75 + (seen + b) * L + i + 1);
                } else {
                    cr_assert_eq(tgt[b * L + i], -1);
                }
            }
        seen += got;
    }
    cr_assert_eq(seen, 6);
    ssm_text_free(&t);
}

Test(text, unigram_baseline)
{
    /* train "aaaaab", validation "ab": p(a) = 6/262, p(b) = 2/262. */
    const char *s = "aaaaabab";
    ssm_text t;
    cr_assert_eq(ssm_text_build(&t, (const uint8_t *)s, 8, 0.25, "uni"), SSM_OK);
    cr_assert_eq(t.n_train, 6);
    double nats, bits;
    cr_assert_eq(ssm_text_unigram(&t, &nats, &bits), SSM_OK);
    double want = -(log(6.0 / 262.0) + log(2.0 / 262.0)) / 2.0;
    cr_assert_float_eq(nats, want, 1e-12);
    cr_assert_float_eq(nats, 4.325891178867097, 1e-12);
    cr_assert_float_eq(bits, 6.240941751176872, 1e-12);
    ssm_text_free(&t);

    cr_assert_eq(ssm_text_build(&t, (const uint8_t *)s, 8, 0.0, "noval"), SSM_OK);
    assert_error(ssm_text_unigram(&t, &nats, &bits), SSM_ERR_DATA, "noval");
    ssm_text_free(&t);
}

Test(text, default_corpus)
{
    struct stat st;
    if (stat(SSM_TEXT_DEFAULT_CORPUS, &st) != 0)
        cr_skip_test("%s not installed", SSM_TEXT_DEFAULT_CORPUS);
    ssm_text t;
    cr_assert_eq(ssm_text_load(&t, SSM_TEXT_DEFAULT_CORPUS, 0.1), SSM_OK, "%s",
                 ssm_last_error());
    cr_assert_gt(t.n, 100000);
    cr_assert_gt(t.n_files, 10);
    for (size_t i = 0; i + 1 < t.n; i++)
        cr_assert(!(t.bytes[i] == '%' && t.bytes[i + 1] == '\n' &&
                    (i == 0 || t.bytes[i - 1] == '\n')), "separator at %zu", i);
    double nats, bits;
    cr_assert_eq(ssm_text_unigram(&t, &nats, &bits), SSM_OK);
    cr_assert(bits > 3.0 && bits < 6.0, "unigram %g bits per byte", bits);
    ssm_text_free(&t);
}

/* ---- IDX ---- */

enum { IMG_N = 3, IMG_R = 2, IMG_C = 3 };

/* An IDX header: magic 00 00 type ndim, then big-endian dims. */
static size_t idx_header(uint8_t *out, int type, int ndim, const uint32_t *dims)
{
    out[0] = 0; out[1] = 0; out[2] = (uint8_t)type; out[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        out[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        out[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        out[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        out[7 + 4 * i] = (uint8_t)dims[i];
    }
    return 4 + 4 * (size_t)ndim;
}

static uint8_t idx_pixel(int i) { return (uint8_t)(i * 37 + 11); }
static const uint8_t idx_labels[IMG_N] = {2, 0, 5};

/* The fixture image file (3 images of 2 x 3) into buf; returns its size. */
static size_t idx_images_fixture(uint8_t *buf)
{
    const uint32_t dims[3] = {IMG_N, IMG_R, IMG_C};
    size_t h = idx_header(buf, 0x08, 3, dims);
    for (int i = 0; i < IMG_N * IMG_R * IMG_C; i++)
        buf[h + i] = idx_pixel(i);
    return h + IMG_N * IMG_R * IMG_C;
}

static size_t idx_labels_fixture(uint8_t *buf, int n)
{
    const uint32_t dims[1] = {(uint32_t)n};
    size_t h = idx_header(buf, 0x08, 1, dims);
    for (int i = 0; i < n; i++)
        buf[h + i] = idx_labels[i % IMG_N];
    return h + (size_t)n;
}

static void check_fixture_images(const ssm_images *im)
{
    cr_assert_eq(im->n, IMG_N);
    cr_assert_eq(im->rows, IMG_R);
    cr_assert_eq(im->cols, IMG_C);
    cr_assert_eq(im->channels, 1);
    cr_assert_eq(im->n_classes, 6);
    for (int i = 0; i < IMG_N * IMG_R * IMG_C; i++)
        cr_assert_eq(im->pixels[i], idx_pixel(i));
    for (int i = 0; i < IMG_N; i++)
        cr_assert_eq(im->labels[i], idx_labels[i]);
}

Test(images, idx_plain_and_gzip)
{
    uint8_t img[64], lab[32];
    size_t ni = idx_images_fixture(img), nl = idx_labels_fixture(lab, IMG_N);
    write_bytes(tpath("img"), img, ni);
    write_bytes(tpath("lab"), lab, nl);
    write_gz(tpath("img.gz"), img, ni);
    write_gz(tpath("lab.gz"), lab, nl);

    ssm_images im;
    cr_assert_eq(ssm_images_load_idx(&im, tpath("img"), tpath("lab")), SSM_OK,
                 "%s", ssm_last_error());
    check_fixture_images(&im);
    ssm_images_free(&im);
    cr_assert_eq(ssm_images_load_idx(&im, tpath("img.gz"), tpath("lab.gz")), SSM_OK,
                 "%s", ssm_last_error());
    check_fixture_images(&im);
    ssm_images_free(&im);

    /* The MNIST naming convention, .gz preferred, plain accepted. */
    write_gz(tpath("train-images-idx3-ubyte.gz"), img, ni);
    write_bytes(tpath("train-labels-idx1-ubyte"), lab, nl);
    cr_assert_eq(ssm_images_load_mnist(&im, tmpdir, "train"), SSM_OK, "%s",
                 ssm_last_error());
    check_fixture_images(&im);
    ssm_images_free(&im);
    assert_error(ssm_images_load_mnist(&im, tmpdir, "t10k"), SSM_ERR_NOINPUT,
                 "t10k-images-idx3-ubyte");
}

Test(images, idx_malformed)
{
    uint8_t img[64], lab[32], bad[64];
    size_t ni = idx_images_fixture(img), nl = idx_labels_fixture(lab, IMG_N);
    write_bytes(tpath("lab"), lab, nl);
    ssm_images im;

    assert_error(ssm_images_load_idx(&im, tpath("none"), tpath("lab")),
                 SSM_ERR_NOINPUT, tpath("none"));

    memcpy(bad, img, ni);
    bad[0] = 0x1f; bad[1] = 0x00;   /* not gzip either */
    write_bytes(tpath("magic"), bad, ni);
    assert_error(ssm_images_load_idx(&im, tpath("magic"), tpath("lab")),
                 SSM_ERR_DATA, "magic");

    memcpy(bad, img, ni);
    bad[2] = 0x0D;                  /* float elements */
    write_bytes(tpath("type"), bad, ni);
    assert_error(ssm_images_load_idx(&im, tpath("type"), tpath("lab")),
                 SSM_ERR_DATA, "element type");

    write_bytes(tpath("short"), img, ni - 1);
    assert_error(ssm_images_load_idx(&im, tpath("short"), tpath("lab")),
                 SSM_ERR_DATA, "short: corrupt: header claims 18 bytes, file has 17");
    write_bytes(tpath("hdr"), img, 9);
    assert_error(ssm_images_load_idx(&im, tpath("hdr"), tpath("lab")),
                 SSM_ERR_DATA, tpath("hdr"));

    memcpy(bad, img, ni);
    bad[ni] = 0;
    write_bytes(tpath("long"), bad, ni + 1);
    assert_error(ssm_images_load_idx(&im, tpath("long"), tpath("lab")),
                 SSM_ERR_DATA, "trailing");

    /* Labels file given as images: wrong rank. */
    assert_error(ssm_images_load_idx(&im, tpath("lab"), tpath("lab")),
                 SSM_ERR_DATA, "3 or 4 dimensions");

    const uint32_t zero[3] = {0, 2, 3};
    size_t hz = idx_header(bad, 0x08, 3, zero);
    write_bytes(tpath("zero"), bad, hz);
    assert_error(ssm_images_load_idx(&im, tpath("zero"), tpath("lab")),
                 SSM_ERR_DATA, "dimension 0");

    write_bytes(tpath("img"), img, ni);
    assert_error(ssm_images_load_idx(&im, tpath("img"), tpath("img")),
                 SSM_ERR_DATA, "1 dimension");
    uint8_t lab4[32];
    size_t nl4 = idx_labels_fixture(lab4, 4);
    write_bytes(tpath("lab4"), lab4, nl4);
    assert_error(ssm_images_load_idx(&im, tpath("img"), tpath("lab4")),
                 SSM_ERR_DATA, "4 labels for 3 images");
}

Test(images, gzip_corrupt_and_truncated)
{
    uint8_t img[64], lab[32];
    size_t ni = idx_images_fixture(img), nl = idx_labels_fixture(lab, IMG_N);
    write_bytes(tpath("lab"), lab, nl);
    write_gz(tpath("img.gz"), img, ni);
    long n = file_size(tpath("img.gz"));
    cr_assert_gt(n, 20);

    uint8_t gz[256];
    FILE *f = fopen(tpath("img.gz"), "rb");
    cr_assert_eq(fread(gz, 1, (size_t)n, f), (size_t)n);
    fclose(f);

    ssm_images im;
    write_bytes(tpath("cut.gz"), gz, (size_t)n - 12);   /* lose the trailer and more */
    assert_error(ssm_images_load_idx(&im, tpath("cut.gz"), tpath("lab")),
                 SSM_ERR_DATA, tpath("cut.gz"));

    gz[n - 6] ^= 0xff;                                  /* bad CRC/length */
    write_bytes(tpath("crc.gz"), gz, (size_t)n);
    assert_error(ssm_images_load_idx(&im, tpath("crc.gz"), tpath("lab")),
                 SSM_ERR_DATA, "gzip");
}

/* ---- CIFAR-10 ---- */

static uint8_t cifar_pixel(int rec, int c, int p) { return (uint8_t)(rec * 29 + c * 7 + p * 3); }

static void cifar_record(uint8_t *out, int rec, int label)
{
    out[0] = (uint8_t)label;
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 1024; p++)
            out[1 + c * 1024 + p] = cifar_pixel(rec, c, p);
}

Test(images, cifar_parse)
{
    static uint8_t buf[3 * SSM_CIFAR_RECORD];   /* (3, 3073) */
    cifar_record(buf, 0, 3);
    cifar_record(buf + SSM_CIFAR_RECORD, 1, 9);
    cifar_record(buf + 2 * SSM_CIFAR_RECORD, 2, 0);
    write_bytes(tpath("data_batch_1.bin"), buf, 2 * SSM_CIFAR_RECORD);
    write_bytes(tpath("data_batch_2.bin"), buf + 2 * SSM_CIFAR_RECORD, SSM_CIFAR_RECORD);

    const char *paths[2] = {tpath("data_batch_1.bin"), tpath("data_batch_2.bin")};
    ssm_images im;
    cr_assert_eq(ssm_images_load_cifar(&im, paths, 2), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(im.n, 3);
    cr_assert_eq(im.rows, 32);
    cr_assert_eq(im.cols, 32);
    cr_assert_eq(im.channels, 3);
    cr_assert_eq(im.n_classes, 10);
    cr_assert_eq(im.labels[0], 3);
    cr_assert_eq(im.labels[1], 9);
    cr_assert_eq(im.labels[2], 0);
    for (int r = 0; r < 3; r++)
        for (int y = 0; y < 32; y += 5)
            for (int x = 0; x < 32; x += 3)
                for (int c = 0; c < 3; c++)
                    cr_assert_eq(im.pixels[(((size_t)r * 32 + y) * 32 + x) * 3 + c],
                                 cifar_pixel(r, c, y * 32 + x));
    ssm_images_free(&im);

    assert_error(ssm_images_load_cifar_dir(&im, tmpdir, 1), SSM_ERR_NOINPUT,
                 "data_batch_3.bin");
}

Test(images, cifar_malformed)
{
    static uint8_t buf[2 * SSM_CIFAR_RECORD];   /* (2, 3073) */
    cifar_record(buf, 0, 1);
    cifar_record(buf + SSM_CIFAR_RECORD, 1, 2);
    ssm_images im;

    write_bytes(tpath("short.bin"), buf, 2 * SSM_CIFAR_RECORD - 5);
    const char *p1[1] = {tpath("short.bin")};
    assert_error(ssm_images_load_cifar(&im, p1, 1), SSM_ERR_DATA, "3073-byte");

    buf[SSM_CIFAR_RECORD] = 10;
    write_bytes(tpath("label.bin"), buf, 2 * SSM_CIFAR_RECORD);
    const char *p2[1] = {tpath("label.bin")};
    assert_error(ssm_images_load_cifar(&im, p2, 1), SSM_ERR_DATA, "record 1 has label 10");

    write_bytes(tpath("empty.bin"), buf, 0);
    const char *p3[1] = {tpath("empty.bin")};
    assert_error(ssm_images_load_cifar(&im, p3, 1), SSM_ERR_DATA, tpath("empty.bin"));

    const char *p4[1] = {tpath("missing.bin")};
    assert_error(ssm_images_load_cifar(&im, p4, 1), SSM_ERR_NOINPUT, tpath("missing.bin"));
}

/* ---- sequences ---- */

/* A 4 x 4 image with 2 channels: pixel (y, x, c) = 16y + 4x + c. */
static void tiny_image(ssm_images *im, uint8_t *pixels, uint8_t *label)
{
    memset(im, 0, sizeof *im);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 2; c++)
                pixels[(y * 4 + x) * 2 + c] = (uint8_t)(16 * y + 4 * x + c);
    *label = 7;
    im->n = 1;
    im->rows = im->cols = 4;
    im->channels = 2;
    im->n_classes = 8;
    im->pixels = pixels;
    im->labels = label;
}

Test(images, patch_extraction)
{
    uint8_t pixels[32], label;   /* (1, 4, 4, 2), (1) */
    ssm_images im;
    tiny_image(&im, pixels, &label);

    ssm_image_seq s;
    cr_assert_eq(ssm_images_build_seq(&s, &im, 2, 0), SSM_OK);
    cr_assert_eq(s.L, 4);
    cr_assert_eq(s.d_input, 8);
    float out[4 * 8];   /* (L, d_input) */
    ssm_images_to_seq(&im, &s, 0, out);
    for (int t = 0; t < 4; t++) {
        int y0 = (t / 2) * 2, x0 = (t % 2) * 2;
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++)
                for (int c = 0; c < 2; c++) {
                    float want = (float)(16 * (y0 + dy) + 4 * (x0 + dx) + c) / 255.0f;
                    cr_assert_float_eq(out[t * 8 + (dy * 2 + dx) * 2 + c], want, 1e-7,
                                       "token %d dy %d dx %d c %d", t, dy, dx, c);
                }
    }
    /* Token 1 is the top-right patch: pixels (0,2), (0,3), (1,2), (1,3). */
    cr_assert_float_eq(out[8] * 255.0f, 8.0f, 1e-4);
    cr_assert_float_eq(out[8 + 2] * 255.0f, 12.0f, 1e-4);
    cr_assert_float_eq(out[8 + 4] * 255.0f, 24.0f, 1e-4);

    cr_assert_eq(ssm_images_build_seq(&s, &im, 1, 0), SSM_OK);
    cr_assert_eq(s.L, 16);
    cr_assert_eq(s.d_input, 2);
    float px[16 * 2];   /* (L, d_input) */
    ssm_images_to_seq(&im, &s, 0, px);
    for (int i = 0; i < 32; i++)
        cr_assert_float_eq(px[i] * 255.0f, (float)pixels[i], 1e-4);

    assert_error(ssm_images_build_seq(&s, &im, 3, 0), SSM_ERR_CONFIG, "patch size 3");
}

Test(images, standardize_and_batches)
{
    uint8_t pixels[2 * 2 * 2];   /* (2 images, 2, 2, 1 channel) */
    uint8_t labels[2] = {1, 4};
    const uint8_t v[8] = {0, 255, 0, 255, 255, 0, 255, 0};
    memcpy(pixels, v, 8);
    ssm_images im = {.n = 2, .rows = 2, .cols = 2, .channels = 1, .n_classes = 5,
                     .pixels = pixels, .labels = labels};
    ssm_image_seq s;
    cr_assert_eq(ssm_images_build_seq(&s, &im, 1, 1), SSM_OK);
    cr_assert_float_eq(s.mean[0], 0.5f, 1e-6);
    cr_assert_float_eq(s.std[0], 0.5f, 1e-6);

    ssm_image_block blk;
    cr_assert_eq(ssm_images_build_block(&blk, &s, 3), SSM_OK);
    cr_assert_eq(blk.batch.inputs, blk.inputs);
    cr_assert_null(blk.batch.tokens);
    const int idx[3] = {1, 0, 1};
    cr_assert_eq(ssm_images_batch(&im, &s, idx, 3, blk.inputs, blk.targets), SSM_OK);
    cr_assert_eq(blk.targets[0], 4);
    cr_assert_eq(blk.targets[1], 1);
    cr_assert_float_eq(blk.inputs[0], 1.0f, 1e-6);    /* image 1, pixel 0 = 255 */
    cr_assert_float_eq(blk.inputs[4], -1.0f, 1e-6);   /* image 0, pixel 0 = 0 */

    cr_assert_eq(ssm_images_range(&im, &s, 1, 3, blk.inputs, blk.targets), 1);
    cr_assert_eq(blk.targets[0], 4);
    cr_assert_eq(blk.targets[1], -1);
    cr_assert_eq(blk.targets[2], -1);
    cr_assert_float_eq(blk.inputs[4], 0.0f, 1e-9);

    float a[3 * 4], b[3 * 4];   /* (B, L, d_input) */
    int ta[3], tb[3];
    cr_assert_eq(ssm_images_sample(&im, &s, 9, 3, 0, 3, a, ta), SSM_OK);
    cr_assert_eq(ssm_images_sample(&im, &s, 9, 3, 0, 3, b, tb), SSM_OK);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_eq(memcmp(ta, tb, sizeof ta), 0);

    uint8_t other_px[9] = {0}, other_lab[1] = {0};
    ssm_images other = {.n = 1, .rows = 3, .cols = 3, .channels = 1,
                        .pixels = other_px, .labels = other_lab, .path = "other"};
    assert_error(ssm_images_batch(&other, &s, idx, 1, blk.inputs, blk.targets),
                 SSM_ERR_DATA, "other");
    ssm_images_free_block(&blk);
}

Test(images, fashion_mnist_installed)
{
    char p[512];
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", SSM_IMAGES_FASHION_DIR);
    struct stat st;
    if (stat(p, &st) != 0)
        cr_skip_test("dataset-fashion-mnist not installed");
    ssm_images im;
    cr_assert_eq(ssm_images_load_mnist(&im, SSM_IMAGES_FASHION_DIR, "t10k"), SSM_OK,
                 "%s", ssm_last_error());
    cr_assert_eq(im.n, 10000);
    cr_assert_eq(im.rows, 28);
    cr_assert_eq(im.cols, 28);
    cr_assert_eq(im.channels, 1);
    cr_assert_eq(im.n_classes, 10);
    ssm_image_seq s;
    cr_assert_eq(ssm_images_build_seq(&s, &im, 4, 1), SSM_OK);
    cr_assert_eq(s.L, 49);
    cr_assert_eq(s.d_input, 16);
    cr_assert(s.mean[0] > 0.2f && s.mean[0] < 0.4f, "mean %g", s.mean[0]);
    ssm_images_free(&im);
}

/* ---- npy ---- */

static void fill_floats(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)i * 0.25f - 3.0f + (i % 3 ? 1e-3f : -7.5f);
}

Test(npy, round_trip)
{
    float x[2 * 3 * 4];   /* (2, 3, 4) */
    fill_floats(x, 24);
    const size_t shape[3] = {2, 3, 4};
    const char *p = tpath("x.npy");
    cr_assert_eq(ssm_npy_write(p, x, 3, shape), SSM_OK, "%s", ssm_last_error());

    /* Header padded so the data starts on a 64-byte boundary. */
    long size = file_size(p);
    cr_assert_eq((size - 24 * 4) % 64, 0, "file size %ld", size);
    uint8_t head[10];
    FILE *f = fopen(p, "rb");
    cr_assert_eq(fread(head, 1, 10, f), 10);
    fclose(f);
    cr_assert_eq(memcmp(head, "\x93NUMPY\x01\x00", 8), 0);
    cr_assert_eq((10 + head[8] + 256 * head[9]) % 64, 0);

    float *y;
    int nd;
    size_t sh[SSM_NPY_MAX_DIM];
    cr_assert_eq(ssm_npy_read(p, &y, &nd, sh), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(nd, 3);
    cr_assert(sh[0] == 2 && sh[1] == 3 && sh[2] == 4);
    cr_assert_eq(memcmp(x, y, sizeof x), 0);
    free(y);

    /* 1-d, 0-d and empty arrays. */
    const size_t s1[1] = {5}, s0[1] = {0}, s2[2] = {0, 3};
    cr_assert_eq(ssm_npy_write(p, x, 1, s1), SSM_OK);
    cr_assert_eq(ssm_npy_read(p, &y, &nd, sh), SSM_OK);
    cr_assert(nd == 1 && sh[0] == 5 && y[4] == x[4]);
    free(y);
    char text[128] = {0};
    f = fopen(p, "rb");
    cr_assert_gt(fread(text, 1, sizeof text - 1, f), 64);
    fclose(f);
    cr_assert_not_null(strstr(text + 10, "'shape': (5,)"), "1-d shape must be a tuple");
    cr_assert_eq(ssm_npy_write(p, x, 0, s0), SSM_OK);
    cr_assert_eq(ssm_npy_read(p, &y, &nd, sh), SSM_OK);
    cr_assert(nd == 0 && y[0] == x[0]);
    free(y);
    cr_assert_eq(ssm_npy_write(p, x, 2, s2), SSM_OK);
    cr_assert_eq(ssm_npy_read(p, &y, &nd, sh), SSM_OK);
    cr_assert(nd == 2 && sh[0] == 0 && sh[1] == 3);
    free(y);

    /* No temporary file is left behind. */
    DIR *d = opendir(tmpdir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        cr_assert_null(strstr(e->d_name, ".ssmlab-tmp"), "left behind: %s", e->d_name);
    closedir(d);
}

Test(npy, errors)
{
    float *y;
    int nd;
    size_t sh[SSM_NPY_MAX_DIM];
    assert_error(ssm_npy_read(tpath("none.npy"), &y, &nd, sh), SSM_ERR_NOINPUT, "none.npy");
    write_bytes(tpath("bad.npy"), "NOTNUMPYAT ALL", 14);
    assert_error(ssm_npy_read(tpath("bad.npy"), &y, &nd, sh), SSM_ERR_DATA, "magic");

    float x[6] = {1, 2, 3, 4, 5, 6};   /* (2, 3) */
    const size_t shape[2] = {2, 3};
    cr_assert_eq(ssm_npy_write(tpath("x.npy"), x, 2, shape), SSM_OK);
    long n = file_size(tpath("x.npy"));
    uint8_t buf[256];
    FILE *f = fopen(tpath("x.npy"), "rb");
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    write_bytes(tpath("cut.npy"), buf, (size_t)n - 3);
    assert_error(ssm_npy_read(tpath("cut.npy"), &y, &nd, sh), SSM_ERR_DATA,
                 "cut.npy: corrupt: header claims 24 bytes, file has 21");
    char *descr = memmem(buf, (size_t)n, "<f4", 3);
    cr_assert_not_null(descr);
    memcpy(descr, "<f8", 3);
    write_bytes(tpath("f8.npy"), buf, (size_t)n);
    assert_error(ssm_npy_read(tpath("f8.npy"), &y, &nd, sh), SSM_ERR_DATA, "float32");

    assert_error(ssm_npy_write(tpath("no/such/dir.npy"), x, 2, shape),
                 SSM_ERR_CANTCREAT, "no/such/dir.npy");
}

static int python_has_numpy(void)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        return 0;
    return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

Test(npy, numpy_loads_it)
{
    if (!python_has_numpy())
        cr_skip_test("/usr/bin/python3 has no numpy");
    float x[3 * 5 * 2];   /* (3, 5, 2) */
    fill_floats(x, 30);
    const size_t shape[3] = {3, 5, 2};
    cr_assert_eq(ssm_npy_write(tpath("x.npy"), x, 3, shape), SSM_OK);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c '\n"
             "import numpy as np, sys\n"
             "a = np.load(\"%s\")\n"
             "i = np.arange(30, dtype=np.float32)\n"
             "w = (i * np.float32(0.25) - np.float32(3)"
             " + np.where(i %% 3 != 0, np.float32(1e-3), np.float32(-7.5))).astype(np.float32)\n"
             "ok = a.shape == (3, 5, 2) and a.dtype == np.float32 and "
             "a.flags.c_contiguous and np.array_equal(a.ravel(), w)\n"
             "sys.exit(0 if ok else 1)'",
             tpath("x.npy"));
    cr_assert_eq(system(cmd), 0, "numpy.load disagreed");

    /* And a file numpy wrote reads back here. */
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import numpy as np; "
             "np.save(\"%s\", np.arange(12, dtype=np.float32).reshape(3, 4) / 8)'",
             tpath("np.npy"));
    cr_assert_eq(system(cmd), 0);
    float *y;
    int nd;
    size_t sh[SSM_NPY_MAX_DIM];
    cr_assert_eq(ssm_npy_read(tpath("np.npy"), &y, &nd, sh), SSM_OK, "%s", ssm_last_error());
    cr_assert(nd == 2 && sh[0] == 3 && sh[1] == 4);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(y[i], (float)i / 8.0f);
    free(y);
}

/* ---- hostile inputs: headers that claim more than the file holds ---- */

/* A 16-byte IDX header asking for 27.5 GiB, with 3 data bytes, is corrupt
 * (it used to be "out of memory"); gzip'd, its claim is held against the
 * decompressed-size limit of engine/bound.h. */
Test(images, idx_header_claims_more_than_the_file)
{
    uint8_t buf[32], lab[16];
    const uint32_t dims[3] = {0x6060, 0x20e9, 0x8e};
    size_t h = idx_header(buf, 0x08, 3, dims);
    buf[h] = buf[h + 1] = buf[h + 2] = 7;
    write_bytes(tpath("img"), buf, h + 3);
    const uint32_t ld[1] = {0x6060};
    write_bytes(tpath("lab"), lab, idx_header(lab, 0x08, 1, ld));
    ssm_images im;
    assert_error(ssm_images_load_idx(&im, tpath("img"), tpath("lab")), SSM_ERR_DATA,
                 "img: corrupt: header claims 29516347200 bytes, file has 3");
    write_gz(tpath("img.gz"), buf, h + 3);
    assert_error(ssm_images_load_idx(&im, tpath("img.gz"), tpath("lab")), SSM_ERR_DATA,
                 "img.gz: corrupt: header claims 29516347200 bytes");
    cr_assert_not_null(strstr(ssm_last_error(), "gzip"), "%s", ssm_last_error());
}

/* 46341 x 46341 pixels are more tokens than an int holds: refused, where
 * (rows / p) * (cols / p) used to overflow (UBSan). */
Test(images, image_size_arithmetic_does_not_overflow)
{
    ssm_images im = {.n = 1, .rows = 46341, .cols = 46341, .channels = 1, .path = "huge"};
    ssm_image_seq s;
    assert_error(ssm_images_build_seq(&s, &im, 1, 0), SSM_ERR_DATA, "huge: 46341 x 46341 images");
    assert_error(ssm_images_build_seq(&s, &im, 46341, 0), SSM_ERR_DATA, "too large");
    im.rows = im.cols = 28;
    cr_assert_eq(ssm_images_build_seq(&s, &im, 1, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(s.L, 784);
}

/* A small gzip of zeros that would decompress far past its limit (a 299 KB
 * file used to peak at 607 MB) is refused while it is read. */
Test(images, cifar_gzip_bomb_is_refused)
{
    size_t n = (size_t)SSM_CIFAR_RECORD * 8000;   /* 24.6 MB of zeros */
    uint8_t *zeros = calloc(n, 1);
    cr_assert_not_null(zeros);
    write_gz(tpath("bomb.bin"), zeros, n);
    free(zeros);
    cr_assert_lt(file_size(tpath("bomb.bin")), 100000);
    ssm_images im;
    const char *paths[1] = {tpath("bomb.bin")};
    assert_error(ssm_images_load_cifar(&im, paths, 1), SSM_ERR_DATA,
                 "bomb.bin: corrupt: gzip data grows past 16777216 bytes");
}

/* Data paths that are not regular files are refused, not read forever. */
Test(text, fifo_and_devices_are_refused, .timeout = 30)
{
    ssm_text t;
    assert_error(ssm_text_load(&t, "/dev/zero", 0.1), SSM_ERR_NOINPUT,
                 "/dev/zero: not a regular file (a character device)");
    const char *fifo = tpath("fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    assert_error(ssm_text_load(&t, fifo, 0.1), SSM_ERR_NOINPUT, "fifo: not a regular file (a FIFO)");
    ssm_images im;
    const char *paths[1] = {fifo};
    assert_error(ssm_images_load_cifar(&im, paths, 1), SSM_ERR_NOINPUT, "a FIFO");
    assert_error(ssm_images_load_idx(&im, "/dev/zero", fifo), SSM_ERR_NOINPUT, "character device");
}
