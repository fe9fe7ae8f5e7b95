/* safetensors.c — tensor files: the safetensors reader and writer, the
 * torch.save() zip + pickle reader behind the same interface.  Files are
 * written through engine/atomic.h.  Every byte read from a file is bounds-checked; any problem
 * becomes a one-line ssm_fail() message naming the file. */
#include "engine/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <json.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/bf16.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER ((uint64_t)100 << 20)   /* safetensors' own limit */

/* ------------------------------------------------------------------------ */
/* Dtypes                                                                   */

static const struct {
    const char *name;
    ssm_dtype dtype;
    size_t size;
} dtypes[] = {
    {"F32", SSM_DTYPE_F32, 4},    {"F16", SSM_DTYPE_F16, 2},
    {"BF16", SSM_DTYPE_BF16, 2},  {"F64", SSM_DTYPE_F64, 8},
    {"BOOL", SSM_DTYPE_OTHER, 1}, {"U8", SSM_DTYPE_OTHER, 1},
    {"I8", SSM_DTYPE_OTHER, 1},   {"F8_E4M3", SSM_DTYPE_OTHER, 1},
    {"F8_E5M2", SSM_DTYPE_OTHER, 1}, {"I16", SSM_DTYPE_OTHER, 2},
    {"U16", SSM_DTYPE_OTHER, 2},  {"I32", SSM_DTYPE_OTHER, 4},
    {"U32", SSM_DTYPE_OTHER, 4},  {"I64", SSM_DTYPE_OTHER, 8},
    {"U64", SSM_DTYPE_OTHER, 8},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

static int dtype_lookup(const char *name)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(dtypes[i].name, name) == 0) return i;
    return -1;
}

/* Fill t's dtype, shape, numel and nbytes; 0, or -1 when numel * size overflows. */
static int tensor_describe(ssm_st_tensor *t, int dt, int ndim, const int64_t *shape)
{
    size_t numel = 1;
    t->dtype = dtypes[dt].dtype;
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtypes[dt].name);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        if (__builtin_mul_overflow(numel, (size_t)shape[i], &numel)) return -1;
    }
    t->numel = numel;
    return __builtin_mul_overflow(numel, dtypes[dt].size, &t->nbytes) ? -1 : 0;
}

static void shape_format(char *buf, size_t cap, const int64_t *shape, int ndim)
{
    size_t k = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, ")");
}

static uint64_t le_read(const unsigned char *p, int nbytes)
{
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int in_range(size_t off, size_t len, size_t size)
{
    return off <= size && len <= size - off;
}

/* ------------------------------------------------------------------------ */
/* Mapping and closing                                                      */

static ssm_status map_file(ssm_safetensors *st, const char *path)
{
    memset(st, 0, sizeof *st);
    if (!(st->path = strdup(path))) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    ssm_status s = SSM_OK;
    if (fstat(fd, &sb) != 0)
        s = ssm_fail(SSM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        s = ssm_fail(SSM_ERR_NOINPUT, "%s: not a regular file", path);
    else if ((st->size = (size_t)sb.st_size) > 0) {
        void *m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            s = ssm_fail(SSM_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        else
            st->map = m;
    }
    close(fd);
    return s;
}

void ssm_safetensors_close(ssm_safetensors *st)
{
    if (st->map) munmap((void *)st->map, st->size);
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    for (int i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
    free(st->tensors);
    free(st->meta);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const ssm_st_tensor *ssm_safetensors_find(const ssm_safetensors *st, const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

const char *ssm_safetensors_metadata(const ssm_safetensors *st, const char *key)
{
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Conversion to float32                                                    */

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    uint32_t bits;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (e != 0) {
        bits = sign | ((e + 112u) << 23) | (man << 13);
    } else {
        float f = ldexpf((float)man, -24);   /* zero or subnormal */
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float f64_to_float(double d)
{
    if (isfinite(d) && fabs(d) > FLT_MAX) return d > 0 ? INFINITY : -INFINITY;
    return (float)d;
}

/* Drop the mapped pages that lie wholly inside [p, p + n) once their bytes
 * have been converted, so a tensor being read does not count twice in the
 * resident memory (the file's pages and the copy) and a checkpoint loads
 * in about its own size.  The mapping is private and read-only: a later
 * read of the same bytes pages them in again from the file. */
static void map_release(const unsigned char *p, size_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = (uintptr_t)p, hi = lo + n;
    lo = (lo + page - 1) / page * page;
    hi = hi / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* n elements of src in dtype to float */
static void convert_range(ssm_dtype dtype, const unsigned char *src, float *out, size_t n)
{
    uint16_t h;
    double d;
    switch (dtype) {
    case SSM_DTYPE_F32:
        memcpy(out, src, n * sizeof(float));
        return;
    case SSM_DTYPE_F16:
    case SSM_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            memcpy(&h, src + 2 * i, 2);
            out[i] = dtype == SSM_DTYPE_F16 ? half_to_float(h) : ssm_bf16_to_f32(h);
        }
        return;
    default:   /* F64 */
        for (size_t i = 0; i < n; i++) {
            memcpy(&d, src + 8 * i, 8);
            out[i] = f64_to_float(d);
        }
    }
}

/* n elements of src in dtype to bf16: BF16 copied, the others through
 * float (rounded to nearest even), BF16_STAGE elements at a time */
#define BF16_STAGE 4096
static void convert_range_bf16(ssm_dtype dtype, const unsigned char *src, uint16_t *out, size_t n)
{
    if (dtype == SSM_DTYPE_BF16) {
        memcpy(out, src, n * sizeof(uint16_t));
        return;
    }
    float stage[BF16_STAGE];
    size_t esize = dtype == SSM_DTYPE_F32 ? 4 : dtype == SSM_DTYPE_F16 ? 2 : 8;
    for (size_t j0 = 0; j0 < n; j0 += BF16_STAGE) {
        size_t k = n - j0 < BF16_STAGE ? n - j0 : BF16_STAGE;
        convert_range(dtype, src + j0 * esize, stage, k);
        for (size_t j = 0; j < k; j++) out[j0 + j] = ssm_bf16_from_f32(stage[j]);
    }
}

#define READ_CHUNK_ELEMS ((size_t)1 << 20)   /* converted, then released, at a time */

static ssm_status check_float_dtype(const ssm_safetensors *st, const ssm_st_tensor *t)
{
    if (t->dtype != SSM_DTYPE_OTHER) return SSM_OK;
    return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s' has dtype %s, which cannot be read as float",
                    st->path, t->name, t->dtype_name);
}

/* t's data into out (t->numel elements of float, or of bf16 with bf16 set),
 * READ_CHUNK_ELEMS at a time, each chunk's mapped pages dropped once read */
static ssm_status read_chunked(const ssm_safetensors *st, const ssm_st_tensor *t, void *out, int bf16)
{
    ssm_status s = check_float_dtype(st, t);
    if (s) return s;
    const unsigned char *src = st->map + t->offset;
    size_t esize = t->numel ? t->nbytes / t->numel : 0;
    for (size_t i0 = 0; i0 < t->numel; i0 += READ_CHUNK_ELEMS) {
        size_t n = t->numel - i0 < READ_CHUNK_ELEMS ? t->numel - i0 : READ_CHUNK_ELEMS;
        if (bf16) convert_range_bf16(t->dtype, src + i0 * esize, (uint16_t *)out + i0, n);
        else convert_range(t->dtype, src + i0 * esize, (float *)out + i0, n);
        map_release(src + i0 * esize, n * esize);
    }
    return SSM_OK;
}

ssm_status ssm_safetensors_read_f32(const ssm_safetensors *st, const ssm_st_tensor *t,
                                    float *out)
{
    return read_chunked(st, t, out, 0);
}

ssm_status ssm_safetensors_read_bf16(const ssm_safetensors *st, const ssm_st_tensor *t,
                                     uint16_t *out)
{
    return read_chunked(st, t, out, 1);
}

/* ------------------------------------------------------------------------ */
/* Safetensors reader                                                       */

static int all_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return 0;
    return 1;
}

/* Parse the JSON header h (hlen bytes) into a JSON object. */
static ssm_status st_header_parse(const char *path, const char *h, size_t hlen, json_object **out)
{
    json_tokener *tok = json_tokener_new();
    if (!tok) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", path);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, h, (int)hlen);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root)
        return ssm_fail(SSM_ERR_DATA, "%s: header is not JSON (%s)", path,
                        err == json_tokener_continue ? "it ends early"
                                                     : json_tokener_error_desc(err));
    *out = root;
    if (end > hlen || !all_space(h + end, hlen - end))
        return ssm_fail(SSM_ERR_DATA, "%s: header is not JSON (bytes after the JSON value)", path);
    if (!json_object_is_type(root, json_type_object))
        return ssm_fail(SSM_ERR_DATA, "%s: header is not a JSON object", path);
    return SSM_OK;
}

static ssm_status st_metadata(ssm_safetensors *st, json_object *obj)
{
    if (!json_object_is_type(obj, json_type_object))
        return ssm_fail(SSM_ERR_DATA, "%s: __metadata__ is not a JSON object", st->path);
    size_t n = (size_t)json_object_object_length(obj);
    if (!(st->meta = calloc(2 * n + 1, sizeof *st->meta)))
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", st->path);
    json_object_object_foreach(obj, key, val) {
        if (!json_object_is_type(val, json_type_string))
            return ssm_fail(SSM_ERR_DATA, "%s: __metadata__ value of '%s' is not a string",
                            st->path, key);
        char **kv = st->meta + 2 * st->n_meta;
        kv[0] = strdup(key);
        kv[1] = strdup(json_object_get_string(val));
        st->n_meta++;
        if (!kv[0] || !kv[1]) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", st->path);
    }
    return SSM_OK;
}

/* A JSON integer >= 0, or -1. */
static int64_t json_uint(json_object *o)
{
    if (!json_object_is_type(o, json_type_int)) return -1;
    int64_t v = json_object_get_int64(o);
    return v < 0 || v == INT64_MAX ? -1 : v;
}

static ssm_status st_entry_shape(const ssm_safetensors *st, const char *name, json_object *a,
                                 int64_t *shape, int *ndim)
{
    if (!json_object_is_type(a, json_type_array))
        return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s': shape is not an array", st->path, name);
    size_t n = json_object_array_length(a);
    if (n > SSM_ST_MAX_DIM)
        return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s': shape has %zu dimensions (at most %d)",
                        st->path, name, n, SSM_ST_MAX_DIM);
    for (size_t i = 0; i < n; i++)
        if ((shape[i] = json_uint(json_object_array_get_idx(a, i))) < 0)
            return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s': shape entry %zu is not an integer >= 0",
                            st->path, name, i);
    *ndim = (int)n;
    return SSM_OK;
}

static ssm_status st_entry_offsets(const ssm_safetensors *st, const char *name, json_object *a,
                                   int64_t off[2])
{
    if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) != 2)
        return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s': data_offsets is not a [begin, end] pair",
                        st->path, name);
    for (int i = 0; i < 2; i++)
        if ((off[i] = json_uint(json_object_array_get_idx(a, (size_t)i))) < 0)
            return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s': data_offsets are not integers >= 0",
                            st->path, name);
    return SSM_OK;
}

/* The fields dtype, shape, data_offsets of entry val, which must all be present. */
static ssm_status st_entry_fields(const ssm_safetensors *st, const char *name, json_object *val,
                                  json_object **f)
{
    static const char *keys[3] = {"dtype", "shape", "data_offsets"};
    if (!json_object_is_type(val, json_type_object))
        return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s': entry is not a JSON object", st->path, name);
    for (int i = 0; i < 3; i++)
        if (!json_object_object_get_ex(val, keys[i], &f[i]))
            return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s': entry has no %s", st->path, name, keys[i]);
    if (!json_object_is_type(f[0], json_type_string))
        return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s': dtype is not a string", st->path, name);
    return SSM_OK;
}

static ssm_status st_entry(ssm_safetensors *st, const char *name, json_object *val,
                           size_t data_start)
{
    json_object *f[3];
    int64_t shape[SSM_ST_MAX_DIM], off[2];
    int ndim = 0;
    ssm_status s;
    if ((s = st_entry_fields(st, name, val, f)) || (s = st_entry_shape(st, name, f[1], shape, &ndim)) ||
        (s = st_entry_offsets(st, name, f[2], off)))
        return s;
    int dt = dtype_lookup(json_object_get_string(f[0]));
    if (dt < 0)
        return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s' has unknown dtype \"%s\"", st->path, name,
                        json_object_get_string(f[0]));
    ssm_st_tensor *t = &st->tensors[st->n_tensors];
    if (tensor_describe(t, dt, ndim, shape))
        return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s': shape is too large", st->path, name);
    size_t data_size = st->size - data_start;
    if (off[1] < off[0] || (uint64_t)off[1] > data_size)
        return ssm_fail(SSM_ERR_DATA,
                        "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] out of range "
                        "(data section is %zu bytes; truncated?)",
                        st->path, name, off[0], off[1], data_size);
    if ((uint64_t)(off[1] - off[0]) != t->nbytes) {
        char sh[160];
        shape_format(sh, sizeof sh, shape, ndim);
        return ssm_fail(SSM_ERR_DATA,
                        "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] hold %" PRId64
                        " bytes but shape %s of %s needs %zu",
                        st->path, name, off[0], off[1], off[1] - off[0], sh, t->dtype_name, t->nbytes);
    }
    t->offset = data_start + (size_t)off[0];
    if (!(t->name = strdup(name))) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", st->path);
    st->n_tensors++;
    return SSM_OK;
}

static ssm_status st_index(ssm_safetensors *st, json_object *root, size_t data_start)
{
    size_t n = (size_t)json_object_object_length(root);
    if (!(st->tensors = calloc(n + 1, sizeof *st->tensors)))
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", st->path);
    json_object_object_foreach(root, key, val) {
        ssm_status s = strcmp(key, "__metadata__") == 0 ? st_metadata(st, val)
                                                        : st_entry(st, key, val, data_start);
        if (s) return s;
    }
    return SSM_OK;
}

static ssm_status st_parse(ssm_safetensors *st)
{
    const char *p = st->path;
    if (st->size == 0) return ssm_fail(SSM_ERR_DATA, "%s: empty file, not safetensors", p);
    if (st->size < 8)
        return ssm_fail(SSM_ERR_DATA, "%s: truncated: %zu bytes, too short for the header length",
                        p, st->size);
    uint64_t hlen = le_read(st->map, 8);
    if (hlen > st->size - 8)
        return ssm_fail(SSM_ERR_DATA,
                        "%s: header length %" PRIu64 " runs past the end of the file "
                        "(%zu bytes; truncated or not safetensors)", p, hlen, st->size);
    if (hlen > ST_MAX_HEADER)
        return ssm_fail(SSM_ERR_DATA, "%s: header length %" PRIu64 " exceeds 100 MB", p, hlen);
    json_object *root = NULL;
    ssm_status s = st_header_parse(p, (const char *)st->map + 8, (size_t)hlen, &root);
    if (!s) s = st_index(st, root, 8 + (size_t)hlen);
    json_object_put(root);
    return s;
}

ssm_status ssm_safetensors_open(ssm_safetensors *st, const char *path)
{
    ssm_status s = map_file(st, path);
    if (!s) s = st_parse(st);
    if (s) ssm_safetensors_close(st);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Safetensors writer: streamed tensor by tensor; ssm_safetensors_write is   */
/* the stream of n tensors held in memory                                    */

static size_t spec_numel(const ssm_st_spec *sp)
{
    size_t numel = 1;
    for (int d = 0; d < sp->ndim; d++) numel *= (size_t)sp->shape[d];
    return numel;
}

static ssm_status wr_check_spec(const char *path, const ssm_st_spec *sp)
{
    if (sp->ndim < 0 || sp->ndim > SSM_ST_MAX_DIM || !sp->name || !sp->name[0])
        return ssm_fail(SSM_ERR_SOFTWARE, "%s: tensor '%s' has a bad name or ndim %d", path,
                        sp->name ? sp->name : "", sp->ndim);
    for (int d = 0; d < sp->ndim; d++)
        if (sp->shape[d] < 0)
            return ssm_fail(SSM_ERR_SOFTWARE, "%s: tensor '%s' has a negative dimension", path, sp->name);
    return SSM_OK;
}

static json_object *wr_entry(const ssm_st_spec *sp, size_t begin)
{
    json_object *e = json_object_new_object(), *shape = json_object_new_array(),
                *off = json_object_new_array();
    for (int d = 0; d < sp->ndim; d++) json_object_array_add(shape, json_object_new_int64(sp->shape[d]));
    json_object_array_add(off, json_object_new_int64((int64_t)begin));
    json_object_array_add(off, json_object_new_int64((int64_t)(begin + spec_numel(sp) * sizeof(float))));
    json_object_object_add(e, "dtype", json_object_new_string("F32"));
    json_object_object_add(e, "shape", shape);
    json_object_object_add(e, "data_offsets", off);
    return e;
}

/* The length of the valid UTF-8 sequence at s (1 to 4), or 0. */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
          : s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;   /* overlong, a surrogate, or past U+10FFFF */
    return n;
}

/* A JSON string of s with every byte that is not valid UTF-8 written as
 * the four characters \xNN, so the header stays valid UTF-8. */
static json_object *wr_string(const char *s)
{
    size_t n = strlen(s), k = 0;
    char *buf = malloc(4 * n + 1);
    if (!buf) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int len = utf8_len(p);
        if (len) memcpy(buf + k, p, (size_t)len);
        else snprintf(buf + k, 5, "\\x%02x", *p);
        k += len ? (size_t)len : 4;
        p += len ? len : 1;
    }
    buf[k] = 0;
    json_object *o = json_object_new_string(buf);
    free(buf);
    return o;
}

/* The JSON header of n float32 tensors laid out in order, and the metadata
 * (keys and values escaped to UTF-8: wr_string) */
static ssm_status wr_header(const char *path, const ssm_st_spec *sp, int n, const ssm_st_meta *meta,
                            int n_meta, json_object *root)
{
    if (n_meta > 0) {
        json_object *m = json_object_new_object();
        json_object_object_add(root, "__metadata__", m);
        for (int i = 0; i < n_meta; i++) {
            json_object *k = wr_string(meta[i].key);
            if (!k) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", path);
            json_object_object_add(m, json_object_get_string(k), wr_string(meta[i].value));
            json_object_put(k);
        }
    }
    size_t begin = 0;
    for (int i = 0; i < n; i++) {
        ssm_status s = wr_check_spec(path, &sp[i]);
        if (s) return s;
        if (json_object_object_get_ex(root, sp[i].name, NULL))
            return ssm_fail(SSM_ERR_SOFTWARE, "%s: tensor name '%s' is used twice", path, sp[i].name);
        json_object_object_add(root, sp[i].name, wr_entry(&sp[i], begin));
        begin += spec_numel(&sp[i]) * sizeof(float);
    }
    return SSM_OK;
}

/* The length prefix and the header, padded with spaces to 8 bytes */
static int wr_prefix(FILE *f, const char *hdr)
{
    size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    return ok;
}

static ssm_status wr_failed(ssm_safetensors_stream *w)
{
    ssm_status s = ssm_fail(SSM_ERR_IO, "%s: write failed: %s", w->af.path, strerror(errno ? errno : EIO));
    w->failed = s;
    return s;
}

ssm_status ssm_safetensors_stream_begin(ssm_safetensors_stream *w, const char *path,
                                        const ssm_st_spec *specs, int n, const ssm_st_meta *meta,
                                        int n_meta)
{
    memset(w, 0, sizeof *w);
    json_object *root = json_object_new_object();
    if (!root) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", path);
    ssm_status s = wr_header(path, specs, n, meta, n_meta, root);
    if (!s) s = ssm_atomic_file_begin(&w->af, path);
    if (!s) {
        w->specs = specs;
        w->n = n;
        w->left = n ? spec_numel(&specs[0]) : 0;
        const char *hdr = json_object_to_json_string_ext(
            root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!wr_prefix(w->af.f, hdr)) {
            s = wr_failed(w);
            ssm_safetensors_stream_abort(w);
        }
    }
    json_object_put(root);
    return s;
}

/* Move past the tensors that are complete (empty ones included) */
static void stream_advance(ssm_safetensors_stream *w)
{
    while (w->cur < w->n && w->left == 0)
        if (++w->cur < w->n) w->left = spec_numel(&w->specs[w->cur]);
}

ssm_status ssm_safetensors_stream_put(ssm_safetensors_stream *w, int index, size_t rows, size_t cols,
                                      const float *src, size_t ld)
{
    if (w->failed) return w->failed;
    stream_advance(w);
    const char *path = w->af.path;
    if (index != w->cur || index >= w->n) {
        w->failed = ssm_fail(SSM_ERR_SOFTWARE, "%s: tensor %d written out of order (the file is at %s)",
                             path, index, w->cur < w->n ? w->specs[w->cur].name : "its end");
        return w->failed;
    }
    if (rows * cols > w->left || (rows > 1 && ld < cols)) {
        w->failed = ssm_fail(SSM_ERR_SOFTWARE, "%s: tensor '%s': %zu x %zu values (stride %zu) do not fit "
                             "the %zu left", path, w->specs[index].name, rows, cols, ld, w->left);
        return w->failed;
    }
    if (ld == cols || rows == 1) {   /* contiguous: one write */
        cols *= rows;
        rows = 1;
    }
    for (size_t r = 0; r < rows; r++)
        if (fwrite(src + r * ld, sizeof(float), cols, w->af.f) != cols) return wr_failed(w);
    w->left -= rows * cols;
    return SSM_OK;
}

/* Finish the stream: commit it, or with staged, stage it and hand the
 * file over to *staged (for a group commit). */
static ssm_status stream_end(ssm_safetensors_stream *w, ssm_atomic_file *staged)
{
    ssm_status s = w->failed;
    if (!s) {
        stream_advance(w);
        if (w->cur < w->n)
            s = ssm_fail(SSM_ERR_SOFTWARE, "%s: tensor '%s' is incomplete (%zu values missing)",
                         w->af.path, w->specs[w->cur].name, w->left);
    }
    if (s) {
        ssm_safetensors_stream_abort(w);
        return s;
    }
    if (!staged) {
        s = ssm_atomic_file_commit(&w->af);
    } else if ((s = ssm_atomic_file_stage(&w->af))) {
        ssm_atomic_file_abort(&w->af);
    } else {
        *staged = w->af;
    }
    memset(w, 0, sizeof *w);
    return s;
}

ssm_status ssm_safetensors_stream_commit(ssm_safetensors_stream *w)
{
    return stream_end(w, NULL);
}

void ssm_safetensors_stream_abort(ssm_safetensors_stream *w)
{
    ssm_atomic_file_abort(&w->af);
    memset(w, 0, sizeof *w);
}

/* t[i] as a stream spec, once its numel and data agree with its shape */
static ssm_status wr_spec_of(const char *path, const ssm_tensor *t, ssm_st_spec *sp)
{
    *sp = (ssm_st_spec){t->name, t->ndim > 4 ? -1 : t->ndim, {0}};
    for (int d = 0; d < t->ndim && d < 4; d++) sp->shape[d] = t->shape[d] > 0 ? t->shape[d] : 0;
    ssm_status s = wr_check_spec(path, sp);
    if (!s && (spec_numel(sp) != t->numel || (t->numel && !t->data)))
        s = ssm_fail(SSM_ERR_SOFTWARE, "%s: tensor '%s': numel %zu does not match its shape", path,
                     t->name, t->numel);
    return s;
}

ssm_status ssm_safetensors_write_staged(const char *path, const ssm_tensor *t, int n,
                                        const ssm_st_meta *meta, int n_meta, ssm_atomic_file *staged)
{
    ssm_st_spec *sp = malloc(sizeof *sp * (n > 0 ? n : 1));
    if (!sp) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", path);
    ssm_status s = SSM_OK;
    for (int i = 0; !s && i < n; i++) s = wr_spec_of(path, &t[i], &sp[i]);
    ssm_safetensors_stream w = {0};
    if (!s) s = ssm_safetensors_stream_begin(&w, path, sp, n, meta, n_meta);
    for (int i = 0; !s && i < n; i++)
        if (t[i].numel) s = ssm_safetensors_stream_put(&w, i, 1, t[i].numel, t[i].data, t[i].numel);
    if (!s) s = stream_end(&w, staged);
    else ssm_safetensors_stream_abort(&w);
    free(sp);
    return s;
}

ssm_status ssm_safetensors_write(const char *path, const ssm_tensor *t, int n,
                                 const ssm_st_meta *meta, int n_meta)
{
    return ssm_safetensors_write_staged(path, t, n, meta, n_meta, NULL);
}

/* ------------------------------------------------------------------------ */
/* Zip archives (stored entries only, as torch.save writes them)            */

typedef struct {
    const char *name;   /* not NUL-terminated */
    size_t name_len;
    size_t offset;      /* absolute offset of the data */
    size_t size;
} zip_entry;

typedef struct {
    zip_entry *e;
    size_t n;
} zip_dir;

typedef struct {
    uint64_t count, cd_size, cd_off;
} zip_eocd;

static ssm_status zip_fail(const ssm_safetensors *st, const char *what)
{
    return ssm_fail(SSM_ERR_DATA, "%s: not a valid torch.save zip archive: %s", st->path, what);
}

/* The end-of-central-directory record, with the zip64 one if present. */
static ssm_status zip_eocd_read(const ssm_safetensors *st, zip_eocd *z)
{
    const unsigned char *m = st->map;
    size_t lo = st->size > 22 + 65535 ? st->size - 22 - 65535 : 0, pos = st->size - 22;
    if (st->size < 22) return zip_fail(st, "too short (truncated?)");
    while (le_read(m + pos, 4) != 0x06054b50u) {
        if (pos == lo) return zip_fail(st, "no end-of-central-directory record (truncated?)");
        pos--;
    }
    z->count = le_read(m + pos + 10, 2);
    z->cd_size = le_read(m + pos + 12, 4);
    z->cd_off = le_read(m + pos + 16, 4);
    if (z->count != 0xffff && z->cd_size != 0xffffffffu && z->cd_off != 0xffffffffu) return SSM_OK;
    if (pos < 20 || le_read(m + pos - 20, 4) != 0x07064b50u)
        return zip_fail(st, "zip64 locator missing");
    uint64_t off64 = le_read(m + pos - 12, 8);
    if (!in_range(off64, 56, st->size) || le_read(m + off64, 4) != 0x06064b50u)
        return zip_fail(st, "zip64 end record out of range");
    z->count = le_read(m + off64 + 32, 8);
    z->cd_size = le_read(m + off64 + 40, 8);
    z->cd_off = le_read(m + off64 + 48, 8);
    return SSM_OK;
}

/* Apply a zip64 extra field to the sizes and offset that were saturated. */
static void zip_extra64(const unsigned char *x, size_t len, uint64_t *usize, uint64_t *csize,
                        uint64_t *lho)
{
    for (size_t p = 0; p + 4 <= len;) {
        size_t id = le_read(x + p, 2), sz = le_read(x + p + 2, 2), q = p + 4;
        if (p + 4 + sz > len) return;
        if (id == 1) {
            uint64_t *f[3] = {usize, csize, lho};
            for (int i = 0; i < 3; i++)
                if (*f[i] == 0xffffffffu && q + 8 <= p + 4 + sz) { *f[i] = le_read(x + q, 8); q += 8; }
        }
        p += 4 + sz;
    }
}

/* Parse one central-directory entry at *pos into e; *pos moves past it. */
static ssm_status zip_entry_read(const ssm_safetensors *st, size_t *pos, size_t cd_end, zip_entry *e)
{
    const unsigned char *m = st->map, *c = m + *pos;
    if (!in_range(*pos, 46, cd_end) || le_read(c, 4) != 0x02014b50u)
        return zip_fail(st, "bad central directory entry");
    size_t nlen = le_read(c + 28, 2), xlen = le_read(c + 30, 2), clen = le_read(c + 32, 2);
    if (!in_range(*pos + 46, nlen + xlen + clen, cd_end)) return zip_fail(st, "central directory truncated");
    uint64_t method = le_read(c + 10, 2), csize = le_read(c + 20, 4), usize = le_read(c + 24, 4),
             lho = le_read(c + 42, 4);
    zip_extra64(c + 46 + nlen, xlen, &usize, &csize, &lho);
    if (method != 0 || csize != usize) return zip_fail(st, "compressed entries are not supported");
    if (!in_range(lho, 30, st->size) || le_read(m + lho, 4) != 0x04034b50u)
        return zip_fail(st, "local header out of range (truncated?)");
    uint64_t data = lho + 30 + le_read(m + lho + 26, 2) + le_read(m + lho + 28, 2);
    if (!in_range(data, usize, st->size)) return zip_fail(st, "entry data runs past the end (truncated?)");
    e->name = (const char *)c + 46;
    e->name_len = nlen;
    e->offset = data;
    e->size = usize;
    *pos += 46 + nlen + xlen + clen;
    return SSM_OK;
}

static ssm_status zip_read(const ssm_safetensors *st, zip_dir *z)
{
    zip_eocd eo;
    ssm_status s = zip_eocd_read(st, &eo);
    if (s) return s;
    if (!in_range(eo.cd_off, eo.cd_size, st->size) || eo.count > eo.cd_size / 46)
        return zip_fail(st, "central directory out of range");
    if (!(z->e = calloc(eo.count + 1, sizeof *z->e)))
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", st->path);
    size_t pos = eo.cd_off;
    for (z->n = 0; z->n < eo.count; z->n++)
        if ((s = zip_entry_read(st, &pos, eo.cd_off + eo.cd_size, &z->e[z->n]))) return s;
    return SSM_OK;
}

static const zip_entry *zip_find(const zip_dir *z, const char *prefix, size_t plen, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < z->n; i++) {
        const zip_entry *e = &z->e[i];
        if (e->name_len == plen + nlen && memcmp(e->name, prefix, plen) == 0 &&
            memcmp(e->name + plen, name, nlen) == 0)
            return e;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Pickle: the subset torch.save emits for a dict of tensors                */

enum { PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT,
       PK_GLOBAL, PK_STORAGE, PK_TENSOR };

typedef struct pk_obj {
    int kind;
    int64_t i;                  /* INT, BOOL; STORAGE: numel; TENSOR: element offset */
    char *s;                    /* STR; GLOBAL: "module.name" */
    struct pk_obj **items;      /* TUPLE, LIST, DICT (key, value, key, value...) */
    size_t n, cap;
    int dt;                     /* STORAGE, TENSOR: index into dtypes[] */
    const zip_entry *data;      /* STORAGE */
    struct pk_obj *storage;     /* TENSOR */
    int ndim;
    int64_t shape[SSM_ST_MAX_DIM];
} pk_obj;

typedef struct {
    const char *path;
    const unsigned char *p;
    size_t n, pos;
    const zip_dir *zip;
    const char *prefix;         /* "archive/" */
    size_t prefix_len;
    pk_obj **stack, **memo, **all;
    size_t sp, scap, nmemo, mcap, nall, acap;
    size_t *marks;
    size_t nmarks, kcap;
} pk_vm;

static ssm_status pk_err(const pk_vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ssm_status pk_err(const pk_vm *vm, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ssm_fail(SSM_ERR_DATA, "%s: data.pkl: %s (at byte %zu)", vm->path, msg, vm->pos);
}

/* Make room for need elements of size el in *arr (capacity *cap); 0 on success. */
static int pk_grow(void *arr, size_t *cap, size_t need, size_t el)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *p = realloc(*(void **)arr, nc * el);
    if (!p) return -1;
    memset((char *)p + *cap * el, 0, (nc - *cap) * el);
    *(void **)arr = p;
    *cap = nc;
    return 0;
}

static pk_obj *pk_new(pk_vm *vm, int kind)
{
    if (pk_grow(&vm->all, &vm->acap, vm->nall + 1, sizeof *vm->all)) return NULL;
    pk_obj *o = calloc(1, sizeof *o);
    if (o) {
        o->kind = kind;
        vm->all[vm->nall++] = o;
    }
    return o;
}

static void pk_free(pk_vm *vm)
{
    for (size_t i = 0; i < vm->nall; i++) {
        free(vm->all[i]->s);
        free(vm->all[i]->items);
        free(vm->all[i]);
    }
    free(vm->all);
    free(vm->stack);
    free(vm->memo);
    free(vm->marks);
}

static ssm_status pk_push(pk_vm *vm, pk_obj *o)
{
    if (!o || pk_grow(&vm->stack, &vm->scap, vm->sp + 1, sizeof *vm->stack))
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", vm->path);
    vm->stack[vm->sp++] = o;
    return SSM_OK;
}

static size_t pk_base(const pk_vm *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }

static ssm_status pk_pop(pk_vm *vm, pk_obj **o)
{
    if (vm->sp <= pk_base(vm)) return pk_err(vm, "stack underflow");
    *o = vm->stack[--vm->sp];
    return SSM_OK;
}

static ssm_status pk_top(pk_vm *vm, pk_obj **o)
{
    if (vm->sp <= pk_base(vm)) return pk_err(vm, "stack underflow");
    *o = vm->stack[vm->sp - 1];
    return SSM_OK;
}

static ssm_status pk_bytes(pk_vm *vm, size_t k, const unsigned char **out)
{
    if (k > vm->n - vm->pos) return pk_err(vm, "truncated pickle");
    *out = vm->p + vm->pos;
    vm->pos += k;
    return SSM_OK;
}

static ssm_status pk_add(pk_vm *vm, pk_obj *c, pk_obj *item)
{
    if (pk_grow(&c->items, &c->cap, c->n + 1, sizeof *c->items))
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", vm->path);
    c->items[c->n++] = item;
    return SSM_OK;
}

static ssm_status pk_mark(pk_vm *vm)
{
    if (pk_grow(&vm->marks, &vm->kcap, vm->nmarks + 1, sizeof *vm->marks))
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", vm->path);
    vm->marks[vm->nmarks++] = vm->sp;
    return SSM_OK;
}

/* Pop everything above the last mark into container c (or discard if NULL). */
static ssm_status pk_pop_mark(pk_vm *vm, pk_obj *c)
{
    if (!vm->nmarks) return pk_err(vm, "no MARK on the stack");
    size_t base = vm->marks[--vm->nmarks];
    for (size_t i = base; c && i < vm->sp; i++) {
        ssm_status s = pk_add(vm, c, vm->stack[i]);
        if (s) return s;
    }
    vm->sp = base;
    return SSM_OK;
}

/* TUPLE, LIST, DICT: a new container from the items above the mark. */
static ssm_status pk_from_mark(pk_vm *vm, int kind)
{
    pk_obj *c = pk_new(vm, kind);
    if (!c) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", vm->path);
    ssm_status s = pk_pop_mark(vm, c);
    if (!s && kind == PK_DICT && c->n % 2) return pk_err(vm, "DICT with an odd number of items");
    return s ? s : pk_push(vm, c);
}

static ssm_status pk_tuple_n(pk_vm *vm, size_t n)
{
    pk_obj *t = pk_new(vm, PK_TUPLE), *items[3];
    if (!t) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", vm->path);
    for (size_t i = n; i-- > 0;) {
        ssm_status s = pk_pop(vm, &items[i]);
        if (s) return s;
    }
    for (size_t i = 0; i < n; i++) {
        ssm_status s = pk_add(vm, t, items[i]);
        if (s) return s;
    }
    return pk_push(vm, t);
}

static ssm_status pk_push_int(pk_vm *vm, int kind, int64_t v)
{
    pk_obj *o = pk_new(vm, kind);
    if (o) o->i = v;
    return pk_push(vm, o);
}

static ssm_status pk_int(pk_vm *vm, int op)
{
    const unsigned char *b;
    ssm_status s;
    if (op == 'K') return (s = pk_bytes(vm, 1, &b)) ? s : pk_push_int(vm, PK_INT, b[0]);
    if (op == 'M') return (s = pk_bytes(vm, 2, &b)) ? s : pk_push_int(vm, PK_INT, (int64_t)le_read(b, 2));
    if (op == 'J')
        return (s = pk_bytes(vm, 4, &b)) ? s : pk_push_int(vm, PK_INT, (int32_t)(uint32_t)le_read(b, 4));
    if ((s = pk_bytes(vm, 1, &b))) return s;             /* LONG1 */
    size_t n = b[0];
    if (n > 8) return pk_err(vm, "integer of %zu bytes is too large", n);
    if ((s = pk_bytes(vm, n, &b))) return s;
    uint64_t v = n ? le_read(b, (int)n) : 0;
    if (n && n < 8 && (b[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);   /* sign-extend */
    return pk_push_int(vm, PK_INT, (int64_t)v);
}

static ssm_status pk_binfloat(pk_vm *vm)
{
    const unsigned char *b;
    ssm_status s = pk_bytes(vm, 8, &b);
    if (s) return s;
    return pk_push_int(vm, PK_FLOAT, 0);   /* value unused by state dicts */
}

static ssm_status pk_push_str(pk_vm *vm, int kind, const void *data, size_t len)
{
    pk_obj *o = pk_new(vm, kind);
    if (!o || !(o->s = malloc(len + 1))) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", vm->path);
    memcpy(o->s, data, len);
    o->s[len] = 0;
    o->i = (int64_t)len;
    return pk_push(vm, o);
}

/* BINUNICODE and friends: a length prefix of w bytes, then the bytes. */
static ssm_status pk_string(pk_vm *vm, int op)
{
    int w = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
    const unsigned char *b;
    ssm_status s = pk_bytes(vm, (size_t)w, &b);
    if (s) return s;
    uint64_t len = le_read(b, w);
    if (len > vm->n - vm->pos) return pk_err(vm, "string runs past the end of the pickle");
    if ((s = pk_bytes(vm, (size_t)len, &b))) return s;
    return pk_push_str(vm, PK_STR, b, (size_t)len);
}

/* GLOBAL: "module\nname\n" becomes "module.name". */
static ssm_status pk_global(pk_vm *vm)
{
    const unsigned char *start = vm->p + vm->pos, *end = vm->p + vm->n;
    const unsigned char *nl1 = memchr(start, '\n', (size_t)(end - start));
    const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
    if (!nl2) return pk_err(vm, "truncated GLOBAL");
    size_t len = (size_t)(nl2 - start);
    ssm_status s = pk_push_str(vm, PK_GLOBAL, start, len);
    if (!s) vm->stack[vm->sp - 1]->s[nl1 - start] = '.';
    vm->pos += len + 1;
    return s;
}

static ssm_status pk_stack_global(pk_vm *vm)
{
    pk_obj *name, *mod;
    ssm_status s;
    if ((s = pk_pop(vm, &name)) || (s = pk_pop(vm, &mod))) return s;
    if (name->kind != PK_STR || mod->kind != PK_STR) return pk_err(vm, "STACK_GLOBAL needs two strings");
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s.%s", mod->s, name->s);
    return pk_push_str(vm, PK_GLOBAL, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* torch.FloatStorage etc. to a dtypes[] index, or -1. */
static int pk_storage_dtype(const char *global)
{
    static const struct { const char *g, *dt; } map[] = {
        {"torch.FloatStorage", "F32"},  {"torch.HalfStorage", "F16"},
        {"torch.BFloat16Storage", "BF16"}, {"torch.DoubleStorage", "F64"},
        {"torch.LongStorage", "I64"},   {"torch.IntStorage", "I32"},
        {"torch.ShortStorage", "I16"},  {"torch.CharStorage", "I8"},
        {"torch.ByteStorage", "U8"},    {"torch.BoolStorage", "BOOL"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].g, global) == 0) return dtype_lookup(map[i].dt);
    return -1;
}

/* BINPERSID: ("storage", torch.XStorage, key, location, numel) -> storage. */
static ssm_status pk_persid(pk_vm *vm)
{
    pk_obj *pid, **it;
    ssm_status s = pk_pop(vm, &pid);
    if (s) return s;
    it = pid->items;
    if (pid->kind != PK_TUPLE || pid->n < 5 || it[0]->kind != PK_STR || strcmp(it[0]->s, "storage") ||
        it[1]->kind != PK_GLOBAL || it[2]->kind != PK_STR || it[4]->kind != PK_INT || it[4]->i < 0)
        return pk_err(vm, "unsupported persistent id (not a torch storage)");
    int dt = pk_storage_dtype(it[1]->s);
    if (dt < 0) return pk_err(vm, "unknown storage type %s", it[1]->s);
    char name[300];
    snprintf(name, sizeof name, "data/%s", it[2]->s);
    const zip_entry *e = zip_find(vm->zip, vm->prefix, vm->prefix_len, name);
    if (!e) return pk_err(vm, "storage %s is not in the archive", name);
    size_t need;
    if (__builtin_mul_overflow((size_t)it[4]->i, dtypes[dt].size, &need) || need > e->size)
        return pk_err(vm, "storage %s holds %zu bytes, fewer than its %" PRId64 " elements need",
                      name, e->size, it[4]->i);
    pk_obj *o = pk_new(vm, PK_STORAGE);
    if (o) { o->dt = dt; o->data = e; o->i = it[4]->i; }
    return pk_push(vm, o);
}

/* Read a tuple of non-negative ints into v (at most SSM_ST_MAX_DIM). */
static int pk_int_tuple(const pk_obj *t, int64_t *v)
{
    if (t->kind != PK_TUPLE || t->n > SSM_ST_MAX_DIM) return -1;
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->kind != PK_INT || t->items[i]->i < 0) return -1;
        v[i] = t->items[i]->i;
    }
    return (int)t->n;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, meta]). */
static ssm_status pk_rebuild_tensor(pk_vm *vm, const pk_obj *args)
{
    int64_t size[SSM_ST_MAX_DIM], stride[SSM_ST_MAX_DIM];
    pk_obj **a = args->items;
    if (args->n < 4 || a[0]->kind != PK_STORAGE || a[1]->kind != PK_INT || a[1]->i < 0)
        return pk_err(vm, "bad _rebuild_tensor_v2 arguments");
    int nd = pk_int_tuple(a[2], size), ns = pk_int_tuple(a[3], stride);
    if (nd < 0 || ns != nd) return pk_err(vm, "bad tensor size or stride");
    uint64_t numel = 1, expect = 1;
    for (int d = 0; d < nd; d++)
        if (__builtin_mul_overflow(numel, (uint64_t)size[d], &numel)) return pk_err(vm, "tensor too large");
    for (int d = nd - 1; d >= 0 && numel; d--) {
        if (size[d] != 1 && stride[d] != (int64_t)expect) return pk_err(vm, "tensor is not contiguous");
        expect *= (uint64_t)size[d];
    }
    if ((uint64_t)a[1]->i > (uint64_t)a[0]->i || numel > (uint64_t)(a[0]->i - a[1]->i))
        return pk_err(vm, "tensor runs past the end of its storage");
    pk_obj *t = pk_new(vm, PK_TENSOR);
    if (t) {
        t->storage = a[0]; t->dt = a[0]->dt; t->i = a[1]->i; t->ndim = nd;
        memcpy(t->shape, size, sizeof size);
    }
    return pk_push(vm, t);
}

static ssm_status pk_reduce(pk_vm *vm)
{
    pk_obj *args, *fn;
    ssm_status s;
    if ((s = pk_pop(vm, &args)) || (s = pk_pop(vm, &fn))) return s;
    if (fn->kind != PK_GLOBAL || args->kind != PK_TUPLE) return pk_err(vm, "REDUCE of a non-callable");
    if (strcmp(fn->s, "collections.OrderedDict") == 0 && args->n == 0) return pk_push(vm, pk_new(vm, PK_DICT));
    if (strcmp(fn->s, "torch._utils._rebuild_tensor_v2") == 0) return pk_rebuild_tensor(vm, args);
    if (strcmp(fn->s, "torch._utils._rebuild_parameter") == 0 && args->n >= 1 &&
        args->items[0]->kind == PK_TENSOR)
        return pk_push(vm, args->items[0]);
    return pk_err(vm, "unsupported callable %s", fn->s);
}

/* SETITEM (one pair) and SETITEMS (pairs above the mark) into the dict below. */
static ssm_status pk_setitems(pk_vm *vm, int many)
{
    pk_obj *tmp = pk_new(vm, PK_LIST), *d;
    ssm_status s = tmp ? SSM_OK : ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", vm->path);
    if (!s && many) s = pk_pop_mark(vm, tmp);
    if (!s && !many) s = pk_tuple_n(vm, 2);
    if (!s && !many) { pk_obj *t; s = pk_pop(vm, &t); if (!s) tmp = t; }
    if (!s) s = pk_top(vm, &d);
    if (s) return s;
    if (d->kind != PK_DICT || tmp->n % 2) return pk_err(vm, "SETITEMS on a non-dict");
    for (size_t i = 0; i < tmp->n && !s; i++) s = pk_add(vm, d, tmp->items[i]);
    return s;
}

static ssm_status pk_appends(pk_vm *vm, int many)
{
    pk_obj *tmp = pk_new(vm, PK_LIST), *l;
    ssm_status s = tmp ? SSM_OK : ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", vm->path);
    if (!s && many) s = pk_pop_mark(vm, tmp);
    if (!s && !many) { pk_obj *v; s = pk_pop(vm, &v); if (!s) s = pk_add(vm, tmp, v); }
    if (!s) s = pk_top(vm, &l);
    if (s) return s;
    if (l->kind != PK_LIST) return pk_err(vm, "APPENDS on a non-list");
    for (size_t i = 0; i < tmp->n && !s; i++) s = pk_add(vm, l, tmp->items[i]);
    return s;
}

/* BINPUT, LONG_BINPUT, MEMOIZE. */
static ssm_status pk_put(pk_vm *vm, int op)
{
    const unsigned char *b;
    ssm_status s = SSM_OK;
    size_t idx = vm->nmemo;
    if (op == 'q' && !(s = pk_bytes(vm, 1, &b))) idx = b[0];
    if (op == 'r' && !(s = pk_bytes(vm, 4, &b))) idx = (size_t)le_read(b, 4);
    if (s) return s;
    if (idx >= vm->n)   /* each memo entry takes a PUT opcode of the pickle */
        return ssm_fail(SSM_ERR_DATA, "%s: corrupt: data.pkl memo index %zu, the pickle has %zu bytes",
                        vm->path, idx, vm->n);
    pk_obj *top;
    if ((s = pk_top(vm, &top))) return s;
    if (pk_grow(&vm->memo, &vm->mcap, idx + 1, sizeof *vm->memo))
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", vm->path);
    vm->memo[idx] = top;
    if (idx >= vm->nmemo) vm->nmemo = idx + 1;
    return SSM_OK;
}

static ssm_status pk_get(pk_vm *vm, int op)
{
    const unsigned char *b;
    ssm_status s = pk_bytes(vm, op == 'h' ? 1 : 4, &b);
    if (s) return s;
    size_t idx = op == 'h' ? b[0] : (size_t)le_read(b, 4);
    if (idx >= vm->nmemo || !vm->memo[idx]) return pk_err(vm, "memo index %zu is empty", idx);
    return pk_push(vm, vm->memo[idx]);
}

static ssm_status pk_discard(pk_vm *vm, int n)
{
    pk_obj *o;
    ssm_status s = SSM_OK;
    for (int i = 0; i < n && !s; i++) s = pk_pop(vm, &o);
    return s;
}

static ssm_status pk_step_data(pk_vm *vm, int op)
{
    const unsigned char *b;
    pk_obj *o;
    ssm_status s;
    switch (op) {
    case 0x80: return pk_bytes(vm, 1, &b);                            /* PROTO */
    case 0x95: return pk_bytes(vm, 8, &b);                            /* FRAME */
    case '(': return pk_mark(vm);                                     /* MARK */
    case '}': return pk_push(vm, pk_new(vm, PK_DICT));                /* EMPTY_DICT */
    case ']': return pk_push(vm, pk_new(vm, PK_LIST));                /* EMPTY_LIST */
    case ')': return pk_push(vm, pk_new(vm, PK_TUPLE));               /* EMPTY_TUPLE */
    case 't': return pk_from_mark(vm, PK_TUPLE);
    case 'l': return pk_from_mark(vm, PK_LIST);
    case 'd': return pk_from_mark(vm, PK_DICT);
    case 0x85: case 0x86: case 0x87: return pk_tuple_n(vm, (size_t)(op - 0x84));
    case 'N': return pk_push(vm, pk_new(vm, PK_NONE));
    case 0x88: case 0x89: return pk_push_int(vm, PK_BOOL, op == 0x88); /* NEWTRUE/FALSE */
    case 'J': case 'K': case 'M': case 0x8a: return pk_int(vm, op);
    case 'G': return pk_binfloat(vm);
    case 'X': case 0x8c: case 0x8d: case 'U': case 'T': case 'C': case 'B': case 0x8e:
        return pk_string(vm, op);
    case '2': return (s = pk_top(vm, &o)) ? s : pk_push(vm, o);      /* DUP */
    default: return pk_err(vm, "unsupported pickle opcode 0x%02x", (unsigned)op);
    }
}

static ssm_status pk_step(pk_vm *vm, int op)
{
    pk_obj *o;
    switch (op) {
    case 'c': return pk_global(vm);
    case 0x93: return pk_stack_global(vm);
    case 'Q': return pk_persid(vm);
    case 'R': return pk_reduce(vm);
    case 'b': return pk_discard(vm, 1);                      /* BUILD: state ignored */
    case 's': return pk_setitems(vm, 0);
    case 'u': return pk_setitems(vm, 1);
    case 'a': return pk_appends(vm, 0);
    case 'e': return pk_appends(vm, 1);
    case 'q': case 'r': case 0x94: return pk_put(vm, op);
    case 'h': case 'j': return pk_get(vm, op);
    case '0': return pk_pop(vm, &o);                          /* POP */
    case '1': return pk_pop_mark(vm, NULL);                   /* POP_MARK */
    default: return pk_step_data(vm, op);
    }
}

static ssm_status pk_run(pk_vm *vm, pk_obj **result)
{
    while (vm->pos < vm->n) {
        int op = vm->p[vm->pos++];
        if (op == '.') return pk_pop(vm, result);            /* STOP */
        ssm_status s = pk_step(vm, op);
        if (s) return s;
        if (vm->sp > (1u << 24)) return pk_err(vm, "stack too deep");
    }
    return pk_err(vm, "pickle ends without STOP (truncated?)");
}

/* Turn the unpickled dict {name: tensor} into st's index. */
static ssm_status torch_index(ssm_safetensors *st, const pk_obj *d)
{
    if (d->kind != PK_DICT)
        return ssm_fail(SSM_ERR_DATA, "%s: data.pkl does not hold a dict of tensors", st->path);
    if (!(st->tensors = calloc(d->n / 2 + 1, sizeof *st->tensors)))
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", st->path);
    for (size_t i = 0; i + 1 < d->n; i += 2) {
        const pk_obj *k = d->items[i], *v = d->items[i + 1];
        if (k->kind != PK_STR || v->kind != PK_TENSOR)
            return ssm_fail(SSM_ERR_DATA, "%s: data.pkl entry %zu is not a named tensor", st->path, i / 2);
        ssm_st_tensor *t = &st->tensors[st->n_tensors];
        tensor_describe(t, v->dt, v->ndim, v->shape);   /* fits: checked against the storage */
        t->offset = v->storage->data->offset + (size_t)v->i * dtypes[v->dt].size;
        if (!(t->name = strdup(k->s))) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", st->path);
        st->n_tensors++;
    }
    return SSM_OK;
}

/* The "<prefix>/data.pkl" entry; sets the prefix (up to and including '/'). */
static const zip_entry *torch_find_pickle(const zip_dir *z, size_t *plen)
{
    for (size_t i = 0; i < z->n; i++) {
        const zip_entry *e = &z->e[i];
        const char *slash = memchr(e->name, '/', e->name_len);
        if (slash && e->name_len - (size_t)(slash + 1 - e->name) == 8 && memcmp(slash + 1, "data.pkl", 8) == 0) {
            *plen = (size_t)(slash + 1 - e->name);
            return e;
        }
    }
    return NULL;
}

static ssm_status torch_parse(ssm_safetensors *st)
{
    if (st->size == 0) return ssm_fail(SSM_ERR_DATA, "%s: empty file, not a torch.save archive", st->path);
    zip_dir z = {0};
    size_t plen = 0;
    ssm_status s = zip_read(st, &z);
    const zip_entry *pkl = s ? NULL : torch_find_pickle(&z, &plen);
    if (!s && !pkl) s = zip_fail(st, "no data.pkl entry");
    const zip_entry *bo = s ? NULL : zip_find(&z, pkl->name, plen, "byteorder");
    if (bo && !(bo->size == 6 && memcmp(st->map + bo->offset, "little", 6) == 0))
        s = ssm_fail(SSM_ERR_DATA, "%s: big-endian torch archives are not supported", st->path);
    if (!s) {
        pk_vm vm = {.path = st->path, .p = st->map + pkl->offset, .n = pkl->size, .zip = &z,
                    .prefix = pkl->name, .prefix_len = plen};
        pk_obj *result = NULL;
        s = pk_run(&vm, &result);
        if (!s) s = torch_index(st, result);
        pk_free(&vm);
    }
    free(z.e);
    return s;
}

ssm_status ssm_safetensors_open_torch(ssm_safetensors *st, const char *path)
{
    ssm_status s = map_file(st, path);
    if (!s) s = torch_parse(st);
    if (s) ssm_safetensors_close(st);
    return s;
}
