/* test_hostile.c — Criterion tests of the engine's readers against hostile
 * files: headers that claim more bytes than the file holds (npy, the
 * pickle of pytorch_model.bin), a short npy descr, data paths that are
 * FIFOs or devices, models too big for memory, and error messages long
 * enough to be cut (engine/bound.h, engine/status.c). */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/bound.h"
#include "engine/checkpoint.h"
#include "engine/model.h"
#include "engine/npy.h"
#include "engine/safetensors.h"
#include "engine/status.h"
#include "tests/tmpdir.h"

TestSuite(hostile, .init = tmpdir_make, .fini = tmpdir_remove, .timeout = 60);

static void assert_error(ssm_status st, ssm_status want, const char *needle)
{
    cr_assert_eq(st, want, "status %d (%s), want %d; message: %s", st,
                 ssm_status_name(st), want, ssm_last_error());
    cr_assert_not_null(strstr(ssm_last_error(), needle),
                       "message \"%s\" lacks \"%s\"", ssm_last_error(), needle);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* An npy v1.0 file whose header dict is dict (not padded), then n_data
 * zero bytes; returns its path. */
static const char *npy_file(const char *name, const char *dict, size_t n_data)
{
    size_t hlen = strlen(dict), n = 10 + hlen + n_data;
    unsigned char *b = calloc(1, n);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hlen & 0xff);
    b[9] = (unsigned char)(hlen >> 8);
    memcpy(b + 10, dict, hlen);
    const char *p = tmpdir_path(name);
    write_bytes(p, b, n);
    free(b);
    return p;
}

static ssm_status npy_read(const char *path)
{
    float *y = NULL;
    int nd;
    size_t sh[SSM_NPY_MAX_DIM];
    ssm_status st = ssm_npy_read(path, &y, &nd, sh);
    free(y);
    return st;
}

/* ---- npy ---- */

/* A descr that is one quote: the old parser read d[2..4] past the header
 * buffer (ASan: heap-buffer-overflow). */
Test(hostile, npy_short_descr)
{
    assert_error(npy_read(npy_file("d.npy", "{'descr': '", 0)), SSM_ERR_DATA, "descr");
    assert_error(npy_read(npy_file("e.npy", "{'descr': '<", 0)), SSM_ERR_DATA, "descr");
    assert_error(npy_read(npy_file("f.npy", "{'descr': '<f'", 0)), SSM_ERR_DATA, "float32");
}

/* 2^60 elements (4 x 2^60 bytes fits in size_t) and an 80-byte file asking
 * for 4 TB: corrupt headers, not out of memory. */
Test(hostile, npy_shape_claims_more_than_the_file)
{
    const char *p = npy_file("big.npy", "{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (1073741824, 1073741824), }", 8);
    assert_error(npy_read(p), SSM_ERR_DATA, "big.npy: corrupt: header claims 4611686018427387904 "
                 "bytes, file has 8");
    p = npy_file("tb.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", 1);
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert_eq(sb.st_size, 80);
    assert_error(npy_read(p), SSM_ERR_DATA, "tb.npy: corrupt: header claims 4398046511104 bytes, "
                 "file has 1");
    p = npy_file("over.npy", "{'descr': '<f4', 'fortran_order': False, "
                 "'shape': (4294967296, 4294967296, 4294967296), }", 0);
    assert_error(npy_read(p), SSM_ERR_DATA, "over.npy: corrupt: header claims more than");
}

/* ---- pickle of pytorch_model.bin ---- */

static void le_put(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A stored zip holding one entry "archive/data.pkl" with the bytes pkl. */
static size_t zip_one(unsigned char *out, const unsigned char *pkl, size_t n)
{
    const char *name = "archive/data.pkl";
    size_t nl = strlen(name), k = 0;
    unsigned char *lh = out;                      /* local header */
    le_put(lh, 0x04034b50u, 4);
    le_put(lh + 18, n, 4);
    le_put(lh + 22, n, 4);
    le_put(lh + 26, nl, 2);
    memcpy(lh + 30, name, nl);
    memcpy(lh + 30 + nl, pkl, n);
    k = 30 + nl + n;
    unsigned char *cd = out + k;                  /* central directory */
    le_put(cd, 0x02014b50u, 4);
    le_put(cd + 20, n, 4);
    le_put(cd + 24, n, 4);
    le_put(cd + 28, nl, 2);
    le_put(cd + 42, 0, 4);
    memcpy(cd + 46, name, nl);
    size_t cd_off = k, cd_size = 46 + nl;
    k += cd_size;
    unsigned char *eo = out + k;                  /* end of central directory */
    le_put(eo, 0x06054b50u, 4);
    le_put(eo + 8, 1, 2);
    le_put(eo + 10, 1, 2);
    le_put(eo + 12, cd_size, 4);
    le_put(eo + 16, cd_off, 4);
    return k + 22;
}

/* LONG_BINPUT 0xFFFFFF in a 9-byte pickle made a 128 MB memo. */
Test(hostile, torch_memo_index_past_the_pickle)
{
    const unsigned char pkl[] = {0x80, 2, '}', 'r', 0xff, 0xff, 0xff, 0, '.'};
    unsigned char zip[256] = {0};
    size_t n = zip_one(zip, pkl, sizeof pkl);
    const char *p = tmpdir_path("pytorch_model.bin");
    write_bytes(p, zip, n);
    ssm_safetensors st;
    assert_error(ssm_safetensors_open_torch(&st, p), SSM_ERR_DATA, "corrupt: data.pkl memo index 16777215");
    /* the same pickle with memo index 0 is a fine (empty) archive */
    unsigned char ok[] = {0x80, 2, '}', 'r', 0, 0, 0, 0, '.'};
    write_bytes(p, zip, zip_one(zip, ok, sizeof ok));
    cr_assert_eq(ssm_safetensors_open_torch(&st, p), SSM_OK, "%s", ssm_last_error());
    ssm_safetensors_close(&st);
}

/* ---- files that are not regular ---- */

Test(hostile, fifo_and_devices_are_refused)
{
    const char *fifo = tmpdir_path("fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    uint64_t size;
    assert_error(ssm_bound_file(fifo, &size), SSM_ERR_NOINPUT, "fifo: not a regular file (a FIFO)");
    assert_error(ssm_bound_file("/dev/zero", &size), SSM_ERR_NOINPUT, "/dev/zero: not a regular file");
    assert_error(ssm_bound_file(tmpdir, &size), SSM_ERR_NOINPUT, "not a regular file (a directory)");
    assert_error(npy_read(fifo), SSM_ERR_NOINPUT, "a FIFO");
    assert_error(npy_read("/dev/zero"), SSM_ERR_NOINPUT, "character device");
    /* a config.json that is a FIFO would block fopen until a writer came */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkfifo %s/config.json && : >%s/model.safetensors", tmpdir, tmpdir);
    cr_assert_eq(system(cmd), 0);
    ssm_model m;
    assert_error(ssm_checkpoint_load(tmpdir, &m, NULL), SSM_ERR_NOINPUT, "config.json: not a regular file");
}

/* ---- the shared bound ---- */

Test(hostile, bound_claims)
{
    size_t n = 0;
    cr_assert_eq(ssm_bound_claim("f", 10, 4, 40, &n), SSM_OK);
    cr_assert_eq(n, 40);
    assert_error(ssm_bound_claim("f", 10, 4, 39, &n), SSM_ERR_DATA,
                 "f: corrupt: header claims 40 bytes, file has 39");
    assert_error(ssm_bound_claim("f", UINT64_MAX / 2, 3, 100, &n), SSM_ERR_DATA,
                 "f: corrupt: header claims more than");
    const size_t dims[3] = {0x6060, 0x20e9, 0x8e};
    assert_error(ssm_bound_dims("g", 3, dims, 1, 3, &n), SSM_ERR_DATA,
                 "g: corrupt: header claims 29516347200 bytes, file has 3");
    cr_assert_eq(ssm_bound_gzip(1), SSM_GZIP_FLOOR);
    cr_assert_eq(ssm_bound_gzip((uint64_t)1 << 30), (uint64_t)SSM_GZIP_RATIO << 30);
    cr_assert_eq(ssm_bound_gzip(UINT64_MAX / 2), UINT64_MAX);
}

/* ---- models too big for memory ---- */

Test(hostile, model_too_big_is_refused_before_allocating)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 65536; c.n_layer = 1024; c.expand = 64; c.vocab_size = 1 << 24;
    ssm_model m;
    assert_error(ssm_model_build(&m, &c), SSM_ERR_NOMEM, "MB available");
    cr_assert_not_null(strstr(ssm_last_error(), "parameters needs"), "%s", ssm_last_error());
    /* the size of mamba-130m builds (its parameters are 0.5 GB) */
    ssm_config_default(&c);
    c.d_model = 768; c.n_layer = 24; c.d_state = 16; c.vocab_size = 50277;
    cr_assert_eq(ssm_model_build(&m, &c), SSM_OK, "%s", ssm_last_error());
    cr_assert_gt(m.num_params, 100000000);
    ssm_model_free(&m);
}

/* ---- messages ---- */

/* A PATH_MAX path and the reason both survive; a still longer message keeps
 * its tail, where the reason is. */
Test(hostile, long_messages_keep_their_reason)
{
    char *path = malloc(5000);
    memset(path, 'p', 4095);
    path[0] = '/';
    path[4095] = '\0';
    ssm_fail(SSM_ERR_DATA, "%s: corrupt: header claims 99 bytes, file has 3", path);
    cr_assert_eq(strlen(ssm_last_error()), 4095 + strlen(": corrupt: header claims 99 bytes, file has 3"));
    cr_assert_eq(strncmp(ssm_last_error(), path, 4095), 0);
    char *huge = malloc(50000);
    memset(huge, 'q', 49999);
    huge[49999] = '\0';
    ssm_fail(SSM_ERR_DATA, "%s: the reason", huge);
    const char *e = ssm_last_error();
    size_t n = strlen(e);
    cr_assert_lt(n, SSM_ERROR_CAP);
    cr_assert_eq(strcmp(e + n - strlen(": the reason"), ": the reason"), 0, "tail lost: ...%s", e + n - 40);
    cr_assert_not_null(strstr(e, " ... "));
    cr_assert_eq(e[0], 'q');
    free(huge);
    free(path);
}
