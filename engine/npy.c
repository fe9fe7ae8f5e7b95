/* npy.c — float32 NumPy .npy writer (format 1.0, header padded to 64 bytes,
 * written through engine/atomic.h) and a reader for
 * tests and tools. */
#include "engine/npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/atomic.h"
#include "engine/bound.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER (1u << 20)

static int host_is_little(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static void swap_floats(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char *b = (unsigned char *)&x[i], t;
        t = b[0]; b[0] = b[3]; b[3] = t;
        t = b[1]; b[1] = b[2]; b[2] = t;
    }
}

/* Product of the dimensions; 0 on overflow past SIZE_MAX / 4 (sets *ok 0). */
static size_t shape_numel(int ndim, const size_t *shape, int *ok)
{
    size_t n = 1;
    *ok = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] != 0 && n > (SIZE_MAX / 4) / shape[i]) {
            *ok = 0;
            return 0;
        }
        n *= shape[i];
    }
    return n;
}

/* The dict text of a version 1.0 header, padded with spaces and a final
 * newline so that magic + version + length + dict is a multiple of 64. */
static size_t build_header(char *out, size_t cap, int ndim, const size_t *shape)
{
    char dims[SSM_NPY_MAX_DIM * 24 + 8];
    size_t k = 0;
    dims[k++] = '(';
    for (int i = 0; i < ndim; i++)
        k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%zu",
                              i ? ", " : "", shape[i]);
    if (ndim == 1)
        dims[k++] = ',';
    dims[k++] = ')';
    dims[k] = '\0';
    int n = snprintf(out, cap, "{'descr': '%cf4', 'fortran_order': False, "
                     "'shape': %s, }", host_is_little() ? '<' : '>', dims);
    size_t len = (size_t)n;
    size_t total = NPY_MAGIC_LEN + 2 + 2 + len + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(out + len, ' ', pad);
    len += pad;
    out[len++] = '\n';
    out[len] = '\0';
    return len;
}

static ssm_status write_stream(FILE *f, const char *hdr, size_t hlen,
                               const float *data, size_t numel)
{
    unsigned char pre[10];
    memcpy(pre, NPY_MAGIC, NPY_MAGIC_LEN);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    if (fwrite(pre, 1, sizeof pre, f) != sizeof pre ||
        fwrite(hdr, 1, hlen, f) != hlen)
        return SSM_ERR_IO;
    if (numel && fwrite(data, sizeof(float), numel, f) != numel)
        return SSM_ERR_IO;
    return SSM_OK;
}

ssm_status ssm_npy_write(const char *path, const float *data,
                         int ndim, const size_t *shape)
{
    if (ndim < 0 || ndim > SSM_NPY_MAX_DIM)
        return ssm_fail(SSM_ERR_SOFTWARE, "%s: npy rank %d out of range", path, ndim);
    int ok;
    size_t numel = shape_numel(ndim, shape, &ok);
    if (!ok)
        return ssm_fail(SSM_ERR_SOFTWARE, "%s: npy shape too large", path);
    char hdr[SSM_NPY_MAX_DIM * 24 + 192];
    size_t hlen = build_header(hdr, sizeof hdr, ndim, shape);
    ssm_atomic_file af;
    ssm_status st = ssm_atomic_file_begin(&af, path);
    if (st)
        return st;
    if (write_stream(af.f, hdr, hlen, data, numel) != SSM_OK) {
        int e = errno;
        ssm_atomic_file_abort(&af);
        return ssm_fail(SSM_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    return ssm_atomic_file_commit(&af);
}

/* ---- reading ---- */

/* Pointer just past `'key':` (and spaces) in the header dict, or NULL. */
static const char *find_key(const char *hdr, const char *key)
{
    char pat[32];
    const char quotes[2] = {'\'', '"'};
    for (int q = 0; q < 2; q++) {
        snprintf(pat, sizeof pat, "%c%s%c", quotes[q], key, quotes[q]);
        const char *p = strstr(hdr, pat);
        if (!p)
            continue;
        p += strlen(pat);
        while (isspace((unsigned char)*p))
            p++;
        if (*p != ':')
            return NULL;
        p++;
        while (isspace((unsigned char)*p))
            p++;
        return p;
    }
    return NULL;
}

/* Parse "(d0, d1, ...)" into shape; returns the rank or -1. */
static int parse_shape(const char *p, size_t *shape)
{
    if (!p || *p != '(')
        return -1;
    p++;
    int nd = 0;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == ')')
            return nd;
        if (!isdigit((unsigned char)*p) || nd == SSM_NPY_MAX_DIM)
            return -1;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno)
            return -1;
        shape[nd++] = (size_t)v;
        p = end;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == ',')
            p++;
        else if (*p != ')')
            return -1;
    }
}

/* The quoted descr value p ('<f4' or "<f4") into out (at most cap - 1
 * characters); 0 if it is not a quoted string of that length. */
static int descr_value(const char *p, char *out, size_t cap)
{
    if (!p || (*p != '\'' && *p != '"'))
        return 0;
    const char *end = strchr(p + 1, *p);
    if (!end || (size_t)(end - p - 1) >= cap)
        return 0;
    memcpy(out, p + 1, (size_t)(end - p - 1));
    out[end - p - 1] = '\0';
    return 1;
}

/* Check the dict: float32 C order; sets *swap and fills the shape. */
static ssm_status parse_header(const char *path, const char *hdr,
                               int *swap, int *ndim, size_t *shape)
{
    char descr[8];
    if (!descr_value(find_key(hdr, "descr"), descr, sizeof descr))
        return ssm_fail(SSM_ERR_DATA, "%s: npy header has no descr", path);
    char order = descr[0];
    if (strlen(descr) != 3 || strcmp(descr + 1, "f4") != 0 ||
        (order != '<' && order != '>' && order != '='))
        return ssm_fail(SSM_ERR_DATA, "%s: npy dtype is not float32", path);
    *swap = (order == '<' && !host_is_little()) || (order == '>' && host_is_little());
    const char *fo = find_key(hdr, "fortran_order");
    if (!fo || strncmp(fo, "False", 5) != 0)
        return ssm_fail(SSM_ERR_DATA, "%s: npy array is not C order", path);
    *ndim = parse_shape(find_key(hdr, "shape"), shape);
    if (*ndim < 0)
        return ssm_fail(SSM_ERR_DATA, "%s: npy shape unreadable", path);
    return SSM_OK;
}

/* Read the preamble and the header dict (malloc'd, NUL-terminated) of a
 * file of size bytes; *rest is the bytes left after the header. */
static ssm_status read_header(const char *path, FILE *f, uint64_t size, char **hdr,
                              uint64_t *rest)
{
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return ssm_fail(SSM_ERR_DATA, "%s: not a .npy file (bad magic)", path);
    size_t hlen, plen = 10;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2)
            return ssm_fail(SSM_ERR_DATA, "%s: truncated npy header", path);
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
               (size_t)pre[11] << 24;
        plen = 12;
    } else {
        return ssm_fail(SSM_ERR_DATA, "%s: unsupported npy version %d.%d",
                        path, pre[6], pre[7]);
    }
    if (hlen > NPY_MAX_HEADER)
        return ssm_fail(SSM_ERR_DATA, "%s: npy header too long", path);
    ssm_status st = ssm_bound_claim(path, hlen, 1, size > plen ? size - plen : 0, NULL);
    if (st != SSM_OK)
        return st;
    *rest = size - plen - hlen;
    *hdr = malloc(hlen + 1);
    if (!*hdr)
        return ssm_bound_nomem(path, hlen + 1, "the npy header");
    if (fread(*hdr, 1, hlen, f) != hlen) {
        free(*hdr);
        *hdr = NULL;
        return ssm_fail(SSM_ERR_DATA, "%s: truncated npy header", path);
    }
    (*hdr)[hlen] = '\0';
    return SSM_OK;
}

/* The data: the shape must claim no more than the rest bytes of the file. */
static ssm_status read_payload(const char *path, FILE *f, int swap, int ndim,
                               const size_t *shape, uint64_t rest, float **data)
{
    size_t bytes;
    ssm_status st = ssm_bound_dims(path, ndim, shape, sizeof(float), rest, &bytes);
    if (st != SSM_OK)
        return st;
    size_t numel = bytes / sizeof(float);
    float *buf = malloc(numel ? bytes : 1);   /* (numel) */
    if (!buf)
        return ssm_bound_nomem(path, bytes, "the npy data");
    if (fread(buf, sizeof(float), numel, f) != numel) {
        free(buf);
        return ssm_fail(SSM_ERR_DATA, "%s: truncated npy data", path);
    }
    if (fgetc(f) != EOF) {
        free(buf);
        return ssm_fail(SSM_ERR_DATA, "%s: trailing bytes after npy data", path);
    }
    if (swap)
        swap_floats(buf, numel);
    *data = buf;
    return SSM_OK;
}

ssm_status ssm_npy_read(const char *path, float **data, int *ndim, size_t *shape)
{
    *data = NULL;
    *ndim = 0;
    uint64_t size, rest = 0;
    ssm_status st = ssm_bound_file(path, &size);
    if (st != SSM_OK)
        return st;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ssm_fail(errno == ENOENT ? SSM_ERR_NOINPUT : SSM_ERR_IO,
                        "%s: cannot open: %s", path, strerror(errno));
    char *hdr = NULL;
    st = read_header(path, f, size, &hdr, &rest);
    int swap = 0;
    if (st == SSM_OK)
        st = parse_header(path, hdr, &swap, ndim, shape);
    if (st == SSM_OK)
        st = read_payload(path, f, swap, *ndim, shape, rest, data);
    free(hdr);
    fclose(f);
    if (st != SSM_OK)
        *ndim = 0;
    return st;
}
