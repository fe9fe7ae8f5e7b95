/* plot.c — `ssmlab plot RUN_DIR... --out DIR`: the training curves of one
 * or more runs on shared axes.  Reads RUN_DIR/train.csv (or a CSV file
 * given directly): columns found by name in the header (step, split, loss,
 * and acc or bpb when present; others ignored), RFC 4180 quoting, empty
 * cells left out, through the history reader of scenarios/history.h.  Draws DIR/loss (training loss solid, validation loss
 * dashed, one colour per run) and DIR/acc and DIR/bpb when a run has those
 * numbers, as SVG and PNG (see ssmlab-plot(1)). */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "scenarios/history.h"

#define PLOT_NAME_MAX 128

enum { M_LOSS, M_ACC, M_BPB, N_METRICS };
enum { S_TRAIN, S_VAL, N_SPLITS };

static const char *const metric_cols[N_METRICS] = {"loss", "acc", "bpb"};
static const char *const split_names[N_SPLITS] = {"train", "val"};

/* The rows of one split: the step and each metric (NAN: empty cell). */
typedef struct {
    double *step, *v[N_METRICS];
    int n, cap;
} plot_curve;

typedef struct {
    char name[PLOT_NAME_MAX];    /* the legend entry */
    char path[PATH_MAX];         /* the CSV read */
    plot_curve split[N_SPLITS];
    int has[N_METRICS];          /* a number in the column */
} plot_run;

typedef struct {
    const char *out;
    unsigned figure_formats;
    int log_y;
    cli_args args;               /* the run directories */
} plot_opts;

/* ------------------------------------------------------------------------ */
/* Reading train.csv                                                        */

static void curve_free(plot_curve *c)
{
    free(c->step);
    for (int m = 0; m < N_METRICS; m++) free(c->v[m]);
    memset(c, 0, sizeof *c);
}

static ssm_status curve_push(plot_curve *c, double step, const double *v)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 256;
        double *s = realloc(c->step, sizeof(double) * cap);
        if (!s) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the curves");
        c->step = s;
        for (int m = 0; m < N_METRICS; m++) {
            double *x = realloc(c->v[m], sizeof(double) * cap);
            if (!x) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the curves");
            c->v[m] = x;
        }
        c->cap = cap;
    }
    c->step[c->n] = step;
    for (int m = 0; m < N_METRICS; m++) c->v[m][c->n] = v[m];
    c->n++;
    return SSM_OK;
}

/* Column indices of the history: step, split, and each metric (-1: absent). */
static ssm_status header_read(const plot_run *r, const history *h, int *c_step, int *c_split, int *c_metric)
{
    *c_step = history_column(h, "step");
    *c_split = history_column(h, "split");
    for (int m = 0; m < N_METRICS; m++) c_metric[m] = history_column(h, metric_cols[m]);
    if (*c_step < 0 || c_metric[M_LOSS] < 0)
        return ssm_fail(SSM_ERR_DATA, "%s: the header has no '%s' column (it needs step and loss)", r->path,
                        *c_step < 0 ? "step" : "loss");
    return SSM_OK;
}

/* A cell as a number: NAN when empty or not finite ("nan", "inf"), -1 when
 * it is not a number at all. */
static int cell_number(const char *s, double *v)
{
    if (!*s) {
        *v = NAN;
        return 0;
    }
    char *end;
    *v = strtod(s, &end);
    if (*end || end == s) return -1;
    if (!isfinite(*v)) *v = NAN;
    return 0;
}

/* Data row `row` into its split's curve; rows of other splits are skipped.
 * Messages count the header as row 1. */
static ssm_status row_read(plot_run *r, const history *h, int row, int c_step, int c_split, const int *c_metric)
{
    int split = S_TRAIN;
    if (c_split >= 0) {
        const char *name = history_cell(h, row, c_split);
        for (split = 0; split < N_SPLITS && strcmp(name, split_names[split]); split++) {}
        if (split == N_SPLITS) return SSM_OK;
    }
    double step, v[N_METRICS];
    const char *cell = history_cell(h, row, c_step);
    if (cell_number(cell, &step) || isnan(step))
        return ssm_fail(SSM_ERR_DATA, "%s: row %d: step '%s' is not a number", r->path, row + 2, cell);
    for (int m = 0; m < N_METRICS; m++) {
        cell = history_cell(h, row, c_metric[m]);
        if (cell_number(cell, &v[m]))
            return ssm_fail(SSM_ERR_DATA, "%s: row %d: %s '%s' is not a number", r->path, row + 2,
                            metric_cols[m], cell);
        r->has[m] |= !isnan(v[m]);
    }
    return curve_push(&r->split[split], step, v);
}

/* The curves of the history in r->path (read by history_load_file, rows
 * shorter or longer than the header allowed). */
static ssm_status run_parse(plot_run *r)
{
    history h;
    ssm_status st = history_load_file(&h, r->path, 1);
    if (st) return st;
    int c_step, c_split, c_metric[N_METRICS];
    st = header_read(r, &h, &c_step, &c_split, c_metric);
    for (int row = 0; !st && row < h.n_rows; row++) st = row_read(r, &h, row, c_step, c_split, c_metric);
    history_free(&h);
    if (!st && !r->split[S_TRAIN].n && !r->split[S_VAL].n)
        st = ssm_fail(SSM_ERR_DATA, "%s: no train or val rows", r->path);
    return st;
}

/* The name of directory dir for the legend: the last component of its
 * real path ("." becomes the working directory's name). */
static void dir_name(const char *dir, char *out, size_t n)
{
    char real[PATH_MAX];
    const char *p = realpath(dir, real) ? real : dir;
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && p[start - 1] != '/') start--;
    snprintf(out, n, "%.*s", (int)(len - start), p + start);
}

/* RUN_DIR/train.csv, or arg itself when it is a file (named after its directory). */
static ssm_status run_load(plot_run *r, const char *arg)
{
    struct stat sb;
    memset(r, 0, sizeof *r);
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", arg) >= (int)sizeof dir) return ssm_fail(SSM_ERR_USAGE, "%s: path too long", arg);
    if (stat(arg, &sb) == 0 && S_ISREG(sb.st_mode)) {
        snprintf(r->path, sizeof r->path, "%s", arg);
        char *slash = strrchr(dir, '/');
        if (slash) slash[slash == dir] = 0;   /* "/x.csv": the root */
        else snprintf(dir, sizeof dir, ".");
    } else if (snprintf(r->path, sizeof r->path, "%s/train.csv", arg) >= (int)sizeof r->path) {
        return ssm_fail(SSM_ERR_USAGE, "%s: path too long", arg);
    }
    dir_name(dir, r->name, sizeof r->name);
    return run_parse(r);
}

static void runs_free(plot_run *runs, int n)
{
    for (int i = 0; runs && i < n; i++)
        for (int s = 0; s < N_SPLITS; s++) curve_free(&runs[i].split[s]);
    free(runs);
}

/* Runs that share a name are all named by their paths as given. */
static ssm_status names_unique(plot_run *runs, int n, char **args)
{
    unsigned char *dup = calloc((size_t)n, 1);
    if (!dup) return ssm_fail(SSM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(runs[i].name, runs[j].name)) dup[i] = dup[j] = 1;
    for (int i = 0; i < n; i++)
        if (dup[i]) snprintf(runs[i].name, sizeof runs[i].name, "%s", args[i]);
    free(dup);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Figures                                                                  */

typedef struct {
    const char *name, *title, *ylabel;
} metric_figure;

static const metric_figure metric_figures[N_METRICS] = {
    {"loss", "Training and validation loss", "loss (nats, cross-entropy)"},
    {"acc", "Training and validation accuracy", "accuracy (fraction)"},
    {"bpb", "Training and validation bits per byte", "bits per byte"},
};

/* One figure of metric m: per run with numbers in it, the training curve
 * (solid) and the validation points (dashed, with markers) in the run's
 * colour; a key to the two styles when there are validation rows. */
static ssm_status metric_draw(const plot_opts *o, const plot_run *runs, int n, int m)
{
    fig_series *s = calloc((size_t)2 * n + 2, sizeof *s);
    if (!s) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the figure");
    int k = 0, any_val = 0;
    for (int i = 0; i < n; i++) {
        const plot_curve *tr = &runs[i].split[S_TRAIN], *va = &runs[i].split[S_VAL];
        if (!runs[i].has[m]) continue;
        if (tr->n) s[k++] = (fig_series){runs[i].name, tr->step, tr->v[m], NULL, NULL, tr->n, i, i, FIG_LINES};
        if (va->n)
            s[k++] = (fig_series){tr->n ? NULL : runs[i].name, va->step, va->v[m], NULL, NULL, va->n, i, i,
                                  FIG_DASHED | FIG_MARKERS};
        any_val |= va->n > 0;
    }
    if (any_val) {
        s[k++] = (fig_series){"training", NULL, NULL, NULL, NULL, 0, FIG_GREY, 0, FIG_LINES};
        s[k++] = (fig_series){"validation", NULL, NULL, NULL, NULL, 0, FIG_GREY, 0, FIG_DASHED | FIG_MARKERS};
    }
    const metric_figure *mf = &metric_figures[m];
    fig_panel p = {.kind = FIG_PANEL_XY,
                   .xy = {{.title = mf->title, .xlabel = "step", .ylabel = mf->ylabel,
                           .log_y = o->log_y && m != M_ACC},
                          s, k}};
    fig_page page = {NULL, &p, 1, 1, 560, 340};
    cli_figures f = {o->out, o->figure_formats};
    ssm_status st = cli_figures_write(&f, mf->name, &page);
    free(s);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Command                                                                  */

static const cli_opt plot_options[] = {
    {"out", 'o', CLI_OPT_STRING, .metavar = "DIR", .help = "where the figures go (required)",
     .offset = offsetof(plot_opts, out)},
    {"log-y", 0, CLI_OPT_FLAG, .help = "loss and bits per byte on a log axis", .offset = offsetof(plot_opts, log_y)},
    CLI_OPT_FIGURE_FORMAT(plot_opts, figure_formats),
    CLI_OPT_END};

static const cli_command plot_command = {
    "plot", "RUN_DIR... --out DIR [options]",
    "Training curves of runs (RUN_DIR/train.csv) on shared axes: loss, and accuracy or bits per byte.", 1,
    "A RUN_DIR may also be a CSV file with train.csv's columns (step, split, loss, acc or bpb)."};

static int parse_opts(plot_opts *o, int argc, char **argv)
{
    *o = (plot_opts){.figure_formats = CLI_FIGURE_FORMATS_DEFAULT};
    const cli_opt_group groups[] = {{plot_options, o}, {NULL, NULL}};
    int rc = cli_opts_parse(&plot_command, groups, argc, argv, &o->args);
    if (rc) return rc;
    if (!o->args.nargs) rc = cli_usage_error("plot: no run directories given");
    else if (!o->out) rc = cli_usage_error("plot: --out DIR is required");
    if (rc) cli_args_free(&o->args);
    return rc;
}

static ssm_status plot_all(const plot_opts *o, plot_run *runs, int n)
{
    ssm_status st = SSM_OK;
    for (int i = 0; !st && i < n; i++) st = run_load(&runs[i], o->args.args[i]);
    if (!st) st = names_unique(runs, n, o->args.args);
    if (!st) st = cli_dir_prepare("--out", o->out);
    for (int m = 0; !st && m < N_METRICS; m++) {
        int any = 0;
        for (int i = 0; i < n; i++) any |= runs[i].has[m];
        if (any) {
            st = metric_draw(o, runs, n, m);
            if (!st) fprintf(stderr, "# plot: %s/%s\n", o->out, metric_figures[m].name);
        }
    }
    return st;
}

int cli_plot(int argc, char **argv)
{
    plot_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc) return rc == CLI_OPTS_HELP ? EX_OK : rc;
    int n = o.args.nargs;
    plot_run *runs = calloc((size_t)n, sizeof *runs);
    ssm_status st = runs ? plot_all(&o, runs, n) : ssm_fail(SSM_ERR_NOMEM, "out of memory");
    runs_free(runs, n);
    cli_args_free(&o.args);
    return st ? cli_report(st) : EX_OK;
}
