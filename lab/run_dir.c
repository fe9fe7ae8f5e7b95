/* run_dir.c — naming new runs after their settings, telling checkpoint
 * directories apart, finding a free variant of a run path, and comparing
 * directories (see run_dir.h). */
#include "lab/run_dir.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/model.h"

#define PARTS_MAX 32
#define PART_LEN 64

typedef struct {
    char part[PARTS_MAX][PART_LEN];
    int n;
} name_parts;

static const char *setting_value(int k, int v)
{
    return k == SSM_RUN_SCENARIO ? ssm_scenario_name(v) : k == SSM_RUN_POLARIZE ? ssm_polarize_name(v)
                                                                                : ssm_reorder_name(v);
}

/* The parts of a name that hold setting k's value v: the value itself, or
 * for reorder the pair "reorder" "v" (its value part's index). */
static int setting_find(const name_parts *p, int k, int v)
{
    const char *want = setting_value(k, v);
    for (int i = 0; i < p->n; i++) {
        if (strcmp(p->part[i], want)) continue;
        if (k != SSM_RUN_REORDER || (i > 0 && !strcmp(p->part[i - 1], "reorder"))) return i;
    }
    return -1;
}

static void parts_split(name_parts *p, const char *name)
{
    p->n = 0;
    const char *s = name;
    while (p->n < PARTS_MAX) {
        size_t len = strcspn(s, "-");
        snprintf(p->part[p->n++], PART_LEN, "%.*s", (int)len, s);
        if (!s[len]) break;
        s += len + 1;
    }
}

static void parts_append(name_parts *p, const char *a)
{
    if (p->n < PARTS_MAX) snprintf(p->part[p->n++], PART_LEN, "%s", a);
}

void ssm_run_dir_name(char *out, size_t n, const char *base, const int from[SSM_RUN_NSETTINGS],
                      const int to[SSM_RUN_NSETTINGS])
{
    static const char *const prefix[SSM_RUN_NSETTINGS] = {NULL, "polarize", "reorder"};
    name_parts p;
    parts_split(&p, base && *base ? base : "run");
    for (int k = 0; k < SSM_RUN_NSETTINGS; k++) {
        if (from[k] == to[k]) continue;
        int i = setting_find(&p, k, from[k]);
        if (i >= 0) {
            snprintf(p.part[i], PART_LEN, "%s", setting_value(k, to[k]));
            continue;
        }
        if (prefix[k]) parts_append(&p, prefix[k]);
        parts_append(&p, setting_value(k, to[k]));
    }
    size_t len = 0;
    if (n) out[0] = 0;
    for (int i = 0; i < p.n && len < n; i++) len += snprintf(out + len, n - len, "%s%s", i ? "-" : "", p.part[i]);
}

void ssm_run_dir_path(char *out, size_t n, const char *parent, const char *base,
                      const int from[SSM_RUN_NSETTINGS], const int to[SSM_RUN_NSETTINGS])
{
    char name[128], path[4200];
    ssm_run_dir_name(name, sizeof name, base, from, to);
    if (!parent || !*parent || !strcmp(parent, ".")) snprintf(path, sizeof path, "%s", name);
    else snprintf(path, sizeof path, "%s/%s", parent, name);
    ssm_run_dir_unused(out, n, path);
}

int ssm_run_dir_is_checkpoint(const char *dir)
{
    static const char *const files[] = {"config.json", "model.safetensors", "pytorch_model.bin"};
    char path[4200];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (!access(path, F_OK)) return 1;
    }
    return 0;
}

int ssm_run_dir_foreign(const char *dir, const char *own, int own_written)
{
    return ssm_run_dir_is_checkpoint(dir) && !(own_written && own && ssm_run_dir_same(dir, own));
}

/* path without trailing slashes (but "/" stays). */
static void strip_slashes(char *out, size_t n, const char *path)
{
    snprintf(out, n, "%s", path);
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '/') out[--len] = 0;
}

void ssm_run_dir_unused(char *out, size_t n, const char *path)
{
    char p[4096];
    strip_slashes(p, sizeof p, path);
    snprintf(out, n, "%s", p);
    for (int i = 2; ssm_run_dir_is_checkpoint(out) && i < 10000; i++) snprintf(out, n, "%s-%d", p, i);
}

int ssm_run_dir_same(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!stat(a, &sa) && !stat(b, &sb)) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char x[4096], y[4096];
    strip_slashes(x, sizeof x, a);
    strip_slashes(y, sizeof y, b);
    return !strcmp(x, y);
}

void ssm_run_dir_base(char *out, size_t n, const char *path)
{
    char p[4096];
    strip_slashes(p, sizeof p, path);
    const char *b = strrchr(p, '/');
    snprintf(out, n, "%s", b && b[1] ? b + 1 : p);
}

void ssm_run_dir_parent(char *out, size_t n, const char *path)
{
    char p[4096];
    strip_slashes(p, sizeof p, path);
    char *b = strrchr(p, '/');
    if (!b) snprintf(out, n, ".");
    else if (b == p) snprintf(out, n, "/");
    else snprintf(out, n, "%.*s", (int)(b - p), p);
}
