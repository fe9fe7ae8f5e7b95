/* text.c — byte-level corpus loading (file or directory, fortune files
 * stripped of "%" lines), train/validation split, deterministic batches
 * from a GSL generator seeded by (seed, step, index), validation windows
 * and the add-one unigram baseline. */
#include "data/text.h"
#include "engine/bound.h"
#include "engine/seed.h"

/* salt of this data stream for ssm_seed_derive: the bytes of "text" */
#define TEXT_SEED_SALT 0x74657874ULL

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gsl/gsl_rng.h>

/* A growing byte buffer. */
typedef struct {
    uint8_t *p;   /* (cap) */
    size_t n, cap;
} bytebuf;

static int bytebuf_reserve(bytebuf *b, size_t extra)
{
    if (b->n + extra <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->n + extra)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* 1 if "<path>.dat" exists: a strfile index marks a fortune file. */
static int is_fortune_file(const char *path)
{
    size_t n = strlen(path);
    char *dat = malloc(n + 5);
    if (!dat)
        return 0;
    memcpy(dat, path, n);
    memcpy(dat + n, ".dat", 5);
    struct stat st;
    int yes = stat(dat, &st) == 0 && S_ISREG(st.st_mode);
    free(dat);
    return yes;
}

/* Remove lines consisting of "%" alone (fortune separators) from
 * p[0 .. n); returns the new length. */
static size_t strip_percent_lines(uint8_t *p, size_t n)
{
    size_t r = 0, w = 0;
    while (r < n) {
        size_t e = r;
        while (e < n && p[e] != '\n')
            e++;
        size_t len = e - r;                     /* line without '\n' */
        int sep = (len == 1 && p[r] == '%') ||
                  (len == 2 && p[r] == '%' && p[r + 1] == '\r');
        size_t next = e < n ? e + 1 : e;
        if (!sep) {
            memmove(p + w, p + r, next - r);
            w += next - r;
        }
        r = next;
    }
    return w;
}

/* Append the file at path to b. */
static ssm_status read_file_into(bytebuf *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open: %s", path, strerror(errno));
    size_t start = b->n;
    for (;;) {
        if (!bytebuf_reserve(b, 65536)) {
            fclose(f);
            return ssm_bound_nomem(path, b->n + 65536, "the text corpus");
        }
        size_t got = fread(b->p + b->n, 1, b->cap - b->n, f);
        b->n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return ssm_fail(SSM_ERR_IO, "%s: read error", path);
    if (is_fortune_file(path))
        b->n = start + strip_percent_lines(b->p + start, b->n - start);
    return SSM_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Full path "dir/name" (malloc'd). */
static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), c = strlen(name);
    char *p = malloc(a + c + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, c + 1);
    return p;
}

/* 1 if dir/name is a plain text file of the corpus. */
static int keep_entry(const char *full, const char *name)
{
    if (name[0] == '.' || has_suffix(name, ".dat") || has_suffix(name, ".u8"))
        return 0;
    struct stat st;
    return lstat(full, &st) == 0 && S_ISREG(st.st_mode);
}

/* The sorted full paths of the corpus files in dir. */
static ssm_status list_dir(const char *dir, char ***out, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open directory: %s",
                        dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *full = join_path(dir, e->d_name);
        if (full && !keep_entry(full, e->d_name)) {
            free(full);
            continue;
        }
        if (full && n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                free(full);
                full = NULL;
            } else {
                names = nn;
            }
        }
        if (!full) {
            closedir(d);
            free_names(names, n);
            return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", dir);
        }
        names[n++] = full;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    *out = names;
    *count = n;
    return SSM_OK;
}

static ssm_status read_dir_into(bytebuf *b, const char *dir, int *n_files)
{
    char **names;
    size_t n;
    ssm_status st = list_dir(dir, &names, &n);
    if (st != SSM_OK)
        return st;
    if (n == 0) {
        free(names);
        return ssm_fail(SSM_ERR_DATA, "%s: no text files in directory", dir);
    }
    for (size_t i = 0; i < n && st == SSM_OK; i++)
        st = read_file_into(b, names[i]);
    free_names(names, n);
    *n_files = (int)n;
    return st;
}

/* Take ownership of bytes (n) and set up the split. */
static ssm_status finish_text(ssm_text *t, uint8_t *bytes, size_t n,
                              double val_fraction, const char *name, int n_files)
{
    if (n == 0) {
        free(bytes);
        return ssm_fail(SSM_ERR_DATA, "%s: empty corpus", name);
    }
    size_t n_val = (size_t)floor((double)n * val_fraction);
    if (n - n_val < 2) {
        free(bytes);
        return ssm_fail(SSM_ERR_DATA, "%s: corpus of %zu bytes leaves a train "
                        "split under 2 bytes", name, n);
    }
    t->path = dup_string(name);
    if (!t->path) {
        free(bytes);
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", name);
    }
    t->bytes = bytes;
    t->n = n;
    t->n_val = n_val;
    t->n_train = n - n_val;
    t->n_files = n_files;
    return SSM_OK;
}

static ssm_status check_fraction(const char *name, double val_fraction)
{
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return ssm_fail(SSM_ERR_CONFIG, "%s: validation fraction %g not in [0, 1)",
                        name, val_fraction);
    return SSM_OK;
}

ssm_status ssm_text_load(ssm_text *t, const char *path, double val_fraction)
{
    memset(t, 0, sizeof *t);
    ssm_status st = check_fraction(path, val_fraction);
    if (st != SSM_OK)
        return st;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return ssm_fail(SSM_ERR_NOINPUT, "%s: %s", path, strerror(errno));
    bytebuf b = {0};
    int n_files = 1;
    uint64_t size;
    if (S_ISDIR(sb.st_mode))
        st = read_dir_into(&b, path, &n_files);
    else if ((st = ssm_bound_file(path, &size)) == SSM_OK)   /* no FIFO or device */
        st = read_file_into(&b, path);
    if (st != SSM_OK) {
        free(b.p);
        return st;
    }
    return finish_text(t, b.p, b.n, val_fraction, path, n_files);
}

ssm_status ssm_text_build(ssm_text *t, const uint8_t *bytes, size_t n,
                          double val_fraction, const char *name)
{
    memset(t, 0, sizeof *t);
    ssm_status st = check_fraction(name, val_fraction);
    if (st != SSM_OK)
        return st;
    uint8_t *copy = malloc(n ? n : 1);   /* (n) */
    if (!copy)
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", name);
    if (n)
        memcpy(copy, bytes, n);
    return finish_text(t, copy, n, val_fraction, name, 0);
}

void ssm_text_free(ssm_text *t)
{
    free(t->bytes);
    free(t->path);
    memset(t, 0, sizeof *t);
}

/* ---- batches ---- */


/* Uniform integer in [0, range), range >= 1 (gsl_rng_uniform_int takes
 * n up to max - min; mt19937 gives full 32-bit words beyond that). */
static uint64_t draw_below(gsl_rng *r, uint64_t range)
{
    if (range <= (uint64_t)(gsl_rng_max(r) - gsl_rng_min(r)))
        return gsl_rng_uniform_int(r, (unsigned long)range);
    uint64_t hi = gsl_rng_get(r), lo = gsl_rng_get(r);
    return ((hi << 32) | lo) % range;
}

ssm_status ssm_text_batch(const ssm_text *t, uint64_t seed, uint64_t step,
                          int index, int B, int L, int *tokens, int *targets)
{
    if (B < 1 || L < 1)
        return ssm_fail(SSM_ERR_CONFIG, "%s: batch shape %d x %d", t->path, B, L);
    if (t->n_train < (size_t)L + 1)
        return ssm_fail(SSM_ERR_CONFIG, "%s: train split has %zu bytes, fewer "
                        "than sequence length + 1 = %d", t->path, t->n_train, L + 1);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r)
        return ssm_fail(SSM_ERR_NOMEM, "%s: cannot allocate generator", t->path);
    gsl_rng_set(r, ssm_seed_derive(TEXT_SEED_SALT, seed, step, (uint64_t)(int64_t)index));
    uint64_t range = t->n_train - (size_t)L;   /* offsets 0 .. n_train-L-1 */
    for (int b = 0; b < B; b++) {
        const uint8_t *src = t->bytes + draw_below(r, range);
        int *tok = tokens + (size_t)b * L, *tgt = targets + (size_t)b * L;
        for (int i = 0; i < L; i++) {
            tok[i] = src[i];
            tgt[i] = src[i + 1];
        }
    }
    gsl_rng_free(r);
    return SSM_OK;
}

ssm_status ssm_text_build_block(ssm_text_block *blk, int B, int L)
{
    memset(blk, 0, sizeof *blk);
    if (B < 1 || L < 1)
        return ssm_fail(SSM_ERR_CONFIG, "batch shape %d x %d", B, L);
    size_t n = (size_t)B * (size_t)L;
    blk->tokens = calloc(n, sizeof(int));    /* (B, L) */
    blk->targets = calloc(n, sizeof(int));   /* (B, L) */
    if (!blk->tokens || !blk->targets) {
        ssm_text_free_block(blk);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for a %d x %d batch", B, L);
    }
    blk->B = B;
    blk->L = L;
    blk->batch.B = B;
    blk->batch.L = L;
    blk->batch.tokens = blk->tokens;
    blk->batch.inputs = NULL;
    blk->batch.targets = blk->targets;
    return SSM_OK;
}

void ssm_text_free_block(ssm_text_block *blk)
{
    free(blk->tokens);
    free(blk->targets);
    memset(blk, 0, sizeof *blk);
}

/* ---- validation ---- */

size_t ssm_text_val_count(const ssm_text *t, int L)
{
    if (L < 1 || t->n_val < 2)
        return 0;
    return (t->n_val - 1) / (size_t)L;
}

void ssm_text_val_begin(ssm_text_val_iter *it, const ssm_text *t, int L)
{
    it->text = t;
    it->L = L;
    it->next = 0;
    it->count = ssm_text_val_count(t, L);
}

int ssm_text_val_next(ssm_text_val_iter *it, int B, int *tokens, int *targets)
{
    const int L = it->L;
    const uint8_t *val = it->text->bytes + it->text->n_train;
    int filled = 0;
    for (int b = 0; b < B; b++) {
        int *tok = tokens + (size_t)b * L, *tgt = targets + (size_t)b * L;
        if (it->next < it->count) {
            const uint8_t *src = val + it->next * (size_t)L;
            for (int i = 0; i < L; i++) {
                tok[i] = src[i];
                tgt[i] = src[i + 1];
            }
            it->next++;
            filled++;
        } else {
            for (int i = 0; i < L; i++) {
                tok[i] = 0;
                tgt[i] = -1;
            }
        }
    }
    return filled;
}

/* ---- unigram baseline ---- */

ssm_status ssm_text_unigram(const ssm_text *t, double *nats, double *bits)
{
    if (t->n_val == 0)
        return ssm_fail(SSM_ERR_DATA, "%s: validation split is empty", t->path);
    size_t count[SSM_TEXT_VOCAB] = {0};   /* (256) train byte counts */
    for (size_t i = 0; i < t->n_train; i++)
        count[t->bytes[i]]++;
    double logp[SSM_TEXT_VOCAB];          /* (256) ln p(c) */
    double denom = (double)t->n_train + SSM_TEXT_VOCAB;
    for (int c = 0; c < SSM_TEXT_VOCAB; c++)
        logp[c] = log(((double)count[c] + 1.0) / denom);
    double sum = 0.0;
    for (size_t i = t->n_train; i < t->n; i++)
        sum -= logp[t->bytes[i]];
    *nats = sum / (double)t->n_val;
    *bits = *nats / log(2.0);
    return SSM_OK;
}
