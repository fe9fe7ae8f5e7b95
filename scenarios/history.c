/* history.c — writing a run's train.csv row by row (continued on resume
 * without repeated steps) and reading any such file back by column name
 * (see history.h). */
#include "scenarios/history.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bound.h"
#include "engine/dynamics.h"
#include "engine/safetensors.h"

enum { H_STEP, H_SPLIT, H_LOSS, H_ACC, H_LR, H_GRAD_NORM, H_TPS, H_ELAPSED, H_BPB,
       H_EIG_POS, H_EIG_NEG, H_EIG_COMPLEX, H_EIG_POS_LAYERS, H_EIG_NEG_LAYERS, H_EIG_COMPLEX_LAYERS,
       H_SLOPE, H_VERDICT, H_MIX_SLOPE, H_MIX_VERDICT, H_DECAY_RATE, H_HALF_LIFE, H_R2, H_DECAY,
       H_COS_LAST, H_DEV_LAST, H_DEV_RATIO, H_DYN_S, H_NCOLS };

static const char *const columns[H_NCOLS] = {
    "step", "split", "loss", "acc", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "bpb",
    "eig_pos", "eig_neg", "eig_complex", "eig_pos_layers", "eig_neg_layers", "eig_complex_layers",
    "mean_slope", "verdict", "mix_slope", "mix_verdict", "decay_rate", "half_life", "fit_r2", "decay",
    "cos_last", "dev_last", "dev_ratio", "dynamics_s"};

const char *const *history_columns(int *n)
{
    *n = H_NCOLS;
    return columns;
}

#define CELL 32

/* One line of cells (NULL = empty), flushed; SSM_ERR_IO on a failed write. */
static ssm_status write_line(FILE *f, const char *path, const char *const *cells, int n)
{
    for (int i = 0; i < n; i++) {
        if (cells[i]) fputs(cells[i], f);
        fputc(i + 1 < n ? ',' : '\n', f);
    }
    if (fflush(f) || ferror(f)) return ssm_fail(SSM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return SSM_OK;
}

/* cell = v in format f, or empty (NULL) when v is NAN */
static const char *num(char *cell, const char *f, double v)
{
    if (isnan(v)) return NULL;
    snprintf(cell, CELL, f, v);
    return cell;
}

/* "3;0;4": n per-layer counts, into a malloc'd string (NULL: no memory). */
static char *layer_list(const int *v, int n)
{
    char *s = malloc((size_t)n * 12 + 1), *p = s;
    if (!s) return NULL;
    *p = 0;
    for (int l = 0; l < n; l++) p += sprintf(p, "%s%d", l ? ";" : "", v[l]);
    return s;
}

/* The dynamics cells of a validation row; lists[3] are malloc'd. */
static void dynamics_cells(const task_dynamics *dy, char v[][CELL], const char **c, char **lists)
{
    c[H_EIG_POS] = num(v[H_EIG_POS], "%.0f", dy->pos);
    c[H_EIG_NEG] = num(v[H_EIG_NEG], "%.0f", dy->neg);
    c[H_EIG_COMPLEX] = num(v[H_EIG_COMPLEX], "%.0f", dy->complex_total);
    c[H_EIG_POS_LAYERS] = lists[0] = layer_list(dy->eig_pos, dy->n_layer);
    c[H_EIG_NEG_LAYERS] = lists[1] = layer_list(dy->eig_neg, dy->n_layer);
    c[H_EIG_COMPLEX_LAYERS] = lists[2] = layer_list(dy->eig_complex, dy->n_layer);
    c[H_SLOPE] = num(v[H_SLOPE], "%.6g", dy->mean_slope);
    c[H_VERDICT] = ssm_verdict_name(dy->verdict);
    c[H_MIX_SLOPE] = num(v[H_MIX_SLOPE], "%.6g", dy->mix_slope);
    c[H_MIX_VERDICT] = ssm_verdict_name(dy->mix_verdict);
    c[H_DECAY_RATE] = num(v[H_DECAY_RATE], "%.6g", dy->decay_rate);
    c[H_HALF_LIFE] = num(v[H_HALF_LIFE], "%.6g", task_dynamics_half_life(dy));
    c[H_R2] = num(v[H_R2], "%.6g", dy->fit_r2);
    c[H_DECAY] = task_dynamics_decay_name(dy);
    c[H_COS_LAST] = num(v[H_COS_LAST], "%.6g", dy->cos_last);
    c[H_DEV_LAST] = num(v[H_DEV_LAST], "%.6g", dy->dev_last);
    c[H_DEV_RATIO] = num(v[H_DEV_RATIO], "%.6g", dy->dev_ratio);
    c[H_DYN_S] = num(v[H_DYN_S], "%.3f", dy->seconds);
}

ssm_status history_append(history_writer *w, const history_row *r)
{
    char v[H_NCOLS][CELL];
    const char *c[H_NCOLS] = {0};
    char *lists[3] = {0};
    c[H_STEP] = num(v[H_STEP], "%.0f", (double)r->step);
    c[H_SPLIT] = r->val ? "val" : "train";
    c[H_LOSS] = num(v[H_LOSS], "%.9g", r->loss);
    c[H_ACC] = num(v[H_ACC], "%.9g", r->acc);
    c[H_LR] = num(v[H_LR], "%.6g", r->lr);
    c[H_GRAD_NORM] = num(v[H_GRAD_NORM], "%.6g", r->grad_norm);
    c[H_TPS] = num(v[H_TPS], "%.1f", r->tokens_per_s);
    c[H_ELAPSED] = num(v[H_ELAPSED], "%.2f", r->elapsed_s);
    c[H_BPB] = num(v[H_BPB], "%.9g", r->bpb);
    if (r->dyn) dynamics_cells(r->dyn, v, c, lists);
    ssm_status st = r->dyn && (!lists[0] || !lists[1] || !lists[2])
                        ? ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", w->path)
                        : write_line(w->f, w->path, c, H_NCOLS);
    for (int i = 0; i < 3; i++) free(lists[i]);
    return st;
}

/* The header and the rows of `old` (may be NULL) up to resume_step, in
 * this file's columns, written to path atomically (old may have been read
 * from path itself), so a new run never truncates the file it replaces. */
static ssm_status copy_rows(const history *old, const char *path, long resume_step)
{
    int map[H_NCOLS], step = old ? history_column(old, "step") : -1;
    for (int i = 0; i < H_NCOLS; i++) map[i] = old ? history_column(old, columns[i]) : -1;
    ssm_atomic_file af;
    ssm_status st = ssm_atomic_file_begin(&af, path);
    if (!st) st = write_line(af.f, path, columns, H_NCOLS);
    for (int r = 0; !st && old && r < old->n_rows; r++) {
        double s = history_value(old, r, step);
        if (!(s <= (double)resume_step)) continue;   /* later, or no step: dropped */
        const char *c[H_NCOLS];
        for (int i = 0; i < H_NCOLS; i++) c[i] = history_cell(old, r, map[i]);
        st = write_line(af.f, path, c, H_NCOLS);
    }
    if (st) {
        ssm_atomic_file_abort(&af);
        return st;
    }
    return ssm_atomic_file_commit(&af);
}

ssm_status history_open(history_writer *w, const char *out_dir, const char *resume_dir, long resume_step)
{
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s/%s", out_dir, HISTORY_FILE);
    history old;
    ssm_status st = resume_dir && *resume_dir ? history_load(&old, resume_dir) : SSM_ERR_NOINPUT;
    int resumed = st == SSM_OK;
    if (st && st != SSM_ERR_NOINPUT) return st;
    st = copy_rows(resumed ? &old : NULL, w->path, resume_step);
    if (resumed) history_free(&old);
    if (st) return st;
    w->f = fopen(w->path, "a");
    if (!w->f) return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot create: %s", w->path, strerror(errno));
    return SSM_OK;
}

ssm_status history_close(history_writer *w)
{
    if (!w->f) return SSM_OK;
    int bad = fclose(w->f);
    w->f = NULL;
    return bad ? ssm_fail(SSM_ERR_IO, "%s: write failed: %s", w->path, strerror(errno)) : SSM_OK;
}

history_row history_row_make(const task_data *d, long step, int val, double loss, double acc,
                             double elapsed_s)
{
    return (history_row){.step = step, .val = val, .loss = loss, .acc = d->classify ? acc : NAN,
                         .bpb = d->classify ? NAN : loss / M_LN2, .lr = NAN, .grad_norm = NAN,
                         .tokens_per_s = NAN, .elapsed_s = elapsed_s};
}

history_row history_row_train(const task_data *d, long step, const task_step_stats *ts, double seconds,
                              double elapsed_s)
{
    history_row r = history_row_make(d, step, 0, ts->loss, ts->acc, elapsed_s);
    r.lr = ts->lr;
    r.grad_norm = ts->grad_norm;
    r.tokens_per_s = ts->tokens / fmax(seconds, 1e-9);
    return r;
}

/* ---- reading ------------------------------------------------------------ */

/* One RFC 4180 record at *p, split in place into at most max fields of f
 * (quotes removed, doubled quotes undone); *p moves past it.  Returns the
 * number of fields, 0 at the end of the text.  CRLF ends a record too. */
static int csv_record(char **p, char **f, int max)
{
    char *s = *p;
    int n = 0;
    if (!*s) return 0;
    for (;;) {
        char *start = s, *out = s;
        if (*s == '"') {
            for (s++; *s; s++) {
                if (*s == '"' && s[1] != '"') {
                    s++;
                    break;
                }
                if (*s == '"') s++;   /* "" stands for " */
                *out++ = *s;
            }
            while (*s && *s != ',' && *s != '\n' && *s != '\r') s++;   /* text after the closing quote */
        } else {
            while (*s && *s != ',' && *s != '\n' && *s != '\r') s++;
            out = s;
        }
        char end = *s;
        *out = 0;
        if (n < max) f[n++] = start;
        if (end) s++;
        if (end == ',') continue;
        if (end == '\r' && *s == '\n') s++;
        break;
    }
    *p = s;
    return n;
}

/* The whole file, NUL-terminated (free it). */
static ssm_status file_slurp(const char *path, char **text)
{
    uint64_t size;
    ssm_status st = ssm_bound_file(path, &size);   /* no FIFO or device */
    if (st) return st;
    FILE *f = fopen(path, "rb");
    if (!f) return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return ssm_bound_nomem(path, cap, "the history");
    if (bad) {
        free(buf);
        return ssm_fail(SSM_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *text = buf;
    return SSM_OK;
}

/* The next record that is not blank into f (at most HISTORY_MAX_COLS
 * fields); its field count, 0 at the end.  *no counts the records read. */
static int next_record(char **p, char **f, int *no)
{
    int n;
    while ((n = csv_record(p, f, HISTORY_MAX_COLS))) {
        (*no)++;
        if (n > 1 || *f[0]) return n;
    }
    return 0;
}

/* Room for one more row. */
static ssm_status grow(history *h, int *cap)
{
    if (h->n_rows < *cap) return SSM_OK;
    int ncap = *cap ? 2 * *cap : 64;
    char **c = realloc(h->cells, sizeof(char *) * (size_t)ncap * h->n_cols);
    if (!c) return ssm_fail(SSM_ERR_NOMEM, "out of memory reading a history");
    h->cells = c;
    *cap = ncap;
    return SSM_OK;
}

/* The header, then every row of text (path for messages). */
static ssm_status read_rows(history *h, char *text, const char *path, int ragged)
{
    static char empty[] = "";
    char *f[HISTORY_MAX_COLS], *p = text;
    int no = 0, cap = 0, n = next_record(&p, f, &no);
    if (!n) return ssm_fail(SSM_ERR_DATA, "%s: empty, not even a header", path);
    h->n_cols = n;
    h->names = malloc(sizeof(char *) * n);
    if (!h->names) return ssm_fail(SSM_ERR_NOMEM, "out of memory reading %s", path);
    memcpy(h->names, f, sizeof(char *) * n);
    while ((n = next_record(&p, f, &no))) {
        if (n != h->n_cols && !ragged)
            return ssm_fail(SSM_ERR_DATA, "%s:%d: %d fields, but the header has %d", path, no, n, h->n_cols);
        ssm_status st = grow(h, &cap);
        if (st) return st;
        char **row = h->cells + (size_t)h->n_rows++ * h->n_cols;
        for (int i = 0; i < h->n_cols; i++) row[i] = i < n ? f[i] : empty;
    }
    return SSM_OK;
}

ssm_status history_load_file(history *h, const char *path, int ragged)
{
    memset(h, 0, sizeof *h);
    char *text;
    ssm_status st = file_slurp(path, &text);
    if (st) return st;
    h->lines = malloc(sizeof(char *));
    if (!h->lines) {
        free(text);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory reading %s", path);
    }
    h->lines[h->n_lines++] = text;
    if ((st = read_rows(h, text, path, ragged))) history_free(h);
    return st;
}

ssm_status history_load(history *h, const char *dir)
{
    char path[RUN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, HISTORY_FILE);
    return history_load_file(h, path, 0);
}

void history_free(history *h)
{
    for (int i = 0; i < h->n_lines; i++) free(h->lines[i]);
    free(h->lines);
    free(h->cells);
    free(h->names);
    memset(h, 0, sizeof *h);
}

int history_column(const history *h, const char *name)
{
    for (int i = 0; i < h->n_cols; i++)
        if (!strcmp(h->names[i], name)) return i;
    return -1;
}

const char *history_cell(const history *h, int row, int col)
{
    return col < 0 || row < 0 || row >= h->n_rows ? "" : h->cells[(size_t)row * h->n_cols + col];
}

double history_value(const history *h, int row, int col)
{
    const char *s = history_cell(h, row, col);
    char *end;
    double v = strtod(s, &end);
    return *s && !*end ? v : NAN;
}

int history_series(const history *h, const char *split, const char *column, double *steps, double *values)
{
    int cs = history_column(h, "split"), cstep = history_column(h, "step"), c = history_column(h, column);
    if (c < 0) return -1;
    int n = 0;
    for (int r = 0; r < h->n_rows; r++) {
        if (strcmp(history_cell(h, r, cs), split)) continue;
        steps[n] = history_value(h, r, cstep);
        values[n++] = history_value(h, r, c);
    }
    return n;
}
