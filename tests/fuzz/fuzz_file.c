/* fuzz_file.c — the scratch directory and file plumbing shared by the
 * harnesses in tests/fuzz/ (see fuzz_file.h). */
#include "tests/fuzz/fuzz_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/bf16.h"
#include "engine/checkpoint.h"

#define FUZZ_MAX_NAMES 16

static char scratch[PATH_MAX];
static char names[FUZZ_MAX_NAMES][64];
static char paths[FUZZ_MAX_NAMES][PATH_MAX];

static void die(const char *what, const char *path)
{
    fprintf(stderr, "fuzz: %s %s failed\n", what, path);
    abort();
}

/* Remove the scratch directory's files and the directory itself. */
static void remove_scratch(void)
{
    DIR *d = opendir(scratch);
    if (!d) return;
    char p[PATH_MAX + 256];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", scratch, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(scratch);
}

const char *fuzz_dir(void)
{
    if (scratch[0]) return scratch;
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/ssmlab-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch)) die("mkdtemp", scratch);
    atexit(remove_scratch);
    return scratch;
}

const char *fuzz_path(const char *name)
{
    int i = 0;
    while (i < FUZZ_MAX_NAMES && names[i][0] && strcmp(names[i], name)) i++;
    if (i == FUZZ_MAX_NAMES || strlen(name) >= sizeof names[i]) die("fuzz_path", name);
    if (!names[i][0]) {
        snprintf(names[i], sizeof names[i], "%s", name);
        snprintf(paths[i], sizeof paths[i], "%s/%s", fuzz_dir(), name);
    }
    return paths[i];
}

const char *fuzz_write(const char *name, const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) die("open", path);
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) die("write", path);
        done += (size_t)n;
    }
    if (close(fd) != 0) die("close", path);
    return path;
}

void fuzz_remove(const char *name)
{
    unlink(fuzz_path(name));
}

uint8_t *fuzz_strip_comments(const uint8_t *data, size_t size, int line_start, size_t *n)
{
    uint8_t *out = malloc(size + 1);   /* (size + 1) */
    if (!out) return NULL;
    int comment = 0, blank = 1;        /* in a comment; nothing but blanks yet on the line */
    *n = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '#' && (blank || !line_start)) comment = 1;
        if (data[i] != ' ' && data[i] != '\t') blank = 0;
        if (data[i] == '\n') comment = 0, blank = 1;
        if (!comment) out[(*n)++] = data[i];
    }
    return out;
}

/* Read every float tensor of st up to limit bytes, as float32 and as bf16:
 * the bf16 read must be the float32 one rounded (NaN payloads aside) */
static void read_tensors(const ssm_safetensors *st, size_t limit)
{
    for (int i = 0; i < st->n_tensors; i++) {
        const ssm_st_tensor *t = &st->tensors[i];
        if (t->dtype == SSM_DTYPE_OTHER || t->numel > limit / sizeof(float)) continue;
        float *out = malloc(t->numel ? t->numel * sizeof(float) : 1);   /* (numel) */
        uint16_t *h = malloc(t->numel ? t->numel * sizeof(uint16_t) : 1);   /* (numel) */
        if (out && h && ssm_safetensors_read_f32(st, t, out) == SSM_OK &&
            ssm_safetensors_read_bf16(st, t, h) == SSM_OK)
            for (size_t j = 0; j < t->numel; j++) {   /* bf16 = the float read, rounded */
                uint16_t r = ssm_bf16_from_f32(out[j]);
                if (r != h[j] && !(isnan(out[j]) && ssm_bf16_nonfinite(h[j]) && (h[j] & 0x7f))) abort();
            }
        free(out);
        free(h);
        if (ssm_safetensors_find(st, t->name) == NULL) abort();
    }
    (void)ssm_safetensors_metadata(st, "format");
}

void fuzz_tensor_file(ssm_status (*open_fn)(ssm_safetensors *, const char *), const char *name,
                      const uint8_t *data, size_t size)
{
    ssm_safetensors st;
    if (open_fn(&st, fuzz_write(name, data, size)) == SSM_OK) read_tensors(&st, 64u << 20);
    ssm_safetensors_close(&st);
}

void fuzz_checkpoint_load(void)
{
    ssm_model m;
    ssm_checkpoint_meta meta = {0};
    if (ssm_checkpoint_load(fuzz_dir(), &m, &meta) == SSM_OK) ssm_model_free(&m);
    ssm_checkpoint_meta_free(&meta);
    /* and into bf16 weights, the loader's other path */
    if (ssm_checkpoint_load_as(fuzz_dir(), &m, &meta, SSM_WEIGHTS_BF16) == SSM_OK) ssm_model_free(&m);
    ssm_checkpoint_meta_free(&meta);
}
