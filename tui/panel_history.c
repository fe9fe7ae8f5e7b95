/* panel_history.c — the run's history of dynamics as sparklines against
 * the step: at each validation of train.csv (a loaded checkpoint's, then
 * the lab's own rows) the eigenvalue sign counts (positive, negative), the
 * log-norm slopes of the residual stream and of the mixer outputs, the
 * influence half-life (a mark where the decay is not exponential, R^2
 * below TASK_DECAY_MIN_R2) and the over-smoothing cos_last, each line
 * scaled to its own range and ending in its last value. */
#include <math.h>
#include <string.h>

#include "scenarios/task_dynamics.h"
#include "tui/app.h"
#include "tui/colors.h"
#include "tui/plot.h"

#define VALUE_W 7   /* the last value, right of each sparkline */

typedef struct {
    int n, utf8, ascii;
    long step[SSM_SNAP_DYN], xmax;
    float v[SSM_DYN_NCOLS][SSM_SNAP_DYN];
    char file[RUN_PATH_MAX + 16];   /* the train.csv shown */
} history_state;

/* One line: its labels (long, short), the value's format, its colour. */
static const struct {
    int col;
    const char *label[2];
    const char *fmt;
    tui_role role;
} lines[SSM_DYN_NCOLS] = {
    {SSM_DYN_POS, {"eig +", "e+"}, "%.0f", TUI_C_SERIES1},
    {SSM_DYN_NEG, {"eig -", "e-"}, "%.0f", TUI_C_SERIES2},
    {SSM_DYN_SLOPE, {"resid slope", "res"}, "%+.3f", TUI_C_SERIES1},
    {SSM_DYN_MIX_SLOPE, {"mixer slope", "mix"}, "%+.3f", TUI_C_SERIES2},
    {SSM_DYN_HALF_LIFE, {"half-life", "t1/2"}, "%.3g", TUI_C_SERIES1},
    {SSM_DYN_COS, {"cos_last", "cos"}, "%.3f", TUI_C_SERIES2},
};

static void history_update(tui_panel *p, const tui_view *v)
{
    history_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->n = s->n_dyn;
    st->utf8 = v->utf8;
    st->ascii = !v->utf8 || v->plot_mode == TUI_PLOT_ASCII;
    memcpy(st->step, s->dyn_step, sizeof(long) * s->n_dyn);
    for (int c = 0; c < SSM_DYN_NCOLS; c++) memcpy(st->v[c], s->dyn[c], sizeof(float) * s->n_dyn);
    snprintf(st->file, sizeof st->file, "%s", s->hist_file);
    st->xmax = s->step > 1 ? s->step : 1;
    if (st->n && st->step[st->n - 1] > st->xmax) st->xmax = st->step[st->n - 1];
}

/* The finite range of series v (n points); 0 when there is none. */
static int series_range(const float *v, int n, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) {
            *lo = fmin(*lo, v[i]);
            *hi = fmax(*hi, v[i]);
        }
    return isfinite(*lo);
}

/* The sparkline of series v over w columns from x: column c shows the
 * last validation at or before its step (blank before the first); a
 * missing value (no exponential decay) is a dim mark. */
static void sparkline(tui_panel *p, const history_state *st, const float *v, int y, int x, int w, tui_role role)
{
    static const char *const blocks[8] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
    static const char ascii[] = "_.-:=+*#";
    double lo, hi;
    int have = series_range(v, st->n, &lo, &hi), i = -1;
    for (int c = 0; c < w; c++) {
        double upto = (double)(c + 1) * st->xmax / w;
        while (i + 1 < st->n && st->step[i + 1] <= upto) i++;
        if (i < 0) continue;
        if (!have || !isfinite(v[i])) {
            tui_draw_text(p->win, y, x + c, 1, tui_attr(TUI_C_DIM), st->ascii ? "x" : "\u00b7");
            continue;
        }
        int k = hi - lo > 1e-12 ? (int)lrint(7.0 * (v[i] - lo) / (hi - lo)) : 3;
        char a[2] = {ascii[k], 0};
        tui_draw_text(p->win, y, x + c, 1, tui_attr(role), st->ascii ? a : blocks[k]);
    }
}

/* A line's last value: a missing half-life is "none" (no exponential decay). */
static void last_value(const history_state *st, int line, char *buf, size_t n)
{
    float v = st->v[lines[line].col][st->n - 1];
    if (isfinite(v)) snprintf(buf, n, lines[line].fmt, v);
    else snprintf(buf, n, "%s", lines[line].col == SSM_DYN_HALF_LIFE ? "none" : "-");
}

/* Where there is room: what a mark means, and the file. */
static void history_notes(tui_panel *p, const history_state *st, int y)
{
    char mark[96];
    snprintf(mark, sizeof mark, "%s half-life: no exponential decay (R2 < %.1f)", st->ascii ? "x" : "\u00b7",
             TASK_DECAY_MIN_R2);
    const char *marks[2] = {mark, NULL};
    tui_draw_first(p->win, y, 0, p->w, tui_attr(TUI_C_DIM), 1, marks);
    if (st->file[0]) tui_draw_fmt_fit(p->win, y + 1, 0, p->w, tui_attr(TUI_C_DIM), "%s", st->file);
}

static void history_draw(tui_panel *p)
{
    history_state *st = p->st;
    werase(p->win);
    char t0[96], t1[64];
    snprintf(t0, sizeof t0, " history: %d validation%s ", st->n, st->n == 1 ? "" : "s");
    snprintf(t1, sizeof t1, " history: %d val ", st->n);
    const char *titles[4] = {t0, t1, " history ", " hist "};
    tui_panel_title(p, 4, titles);
    if (!st->n) {
        const char *why[2] = {"no validations with dynamics yet", "none yet"};
        tui_draw_first(p->win, 1, 0, p->w, tui_attr(TUI_C_DIM), 2, why);
        return;
    }
    int wide = p->w >= 36, label_w = wide ? 12 : 5, spark_w = p->w - label_w - VALUE_W;
    int rows = p->h - 1 < SSM_DYN_NCOLS ? p->h - 1 : SSM_DYN_NCOLS;
    if (spark_w < 4) return;
    for (int l = 0; l < rows; l++) {
        char val[32];
        tui_draw_text(p->win, 1 + l, 0, label_w - 1, A_NORMAL, lines[l].label[!wide]);
        sparkline(p, st, st->v[lines[l].col], 1 + l, label_w, spark_w, lines[l].role);
        last_value(st, l, val, sizeof val);
        tui_draw_fmt(p->win, 1 + l, label_w + spark_w, VALUE_W, tui_attr(TUI_C_DIM), "%*s", VALUE_W, val);
    }
    if (p->h - 1 > SSM_DYN_NCOLS)   /* the step axis */
        tui_draw_fmt(p->win, 1 + SSM_DYN_NCOLS, label_w, spark_w, tui_attr(TUI_C_DIM), "0%*ld", spark_w - 1, st->xmax);
    history_notes(p, st, 2 + SSM_DYN_NCOLS);
}

const tui_panel_class tui_panel_history_class = {
    .name = "history", .state_size = sizeof(history_state), .update = history_update, .draw = history_draw,
};
