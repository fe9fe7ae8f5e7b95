/* panel_states.c — the states view (ssmlab-inspect(1) STATES) of the
 * inspected input: ||h_t||_F of every layer's state after each token as a
 * heatmap (layers L0.. down, as ssmlab inspect counts them; tokens across
 * as wide as their labels; a log colour scale; scrolling keeps the
 * selected layer and token in view), and below it the histogram of the
 * selected layer's memory horizons 1/(mean_t delta_t[e] min_n |A[e,n]|)
 * over its channels, in bins of powers of 4 tokens, the infinite horizons
 * of never-forgetting channels (some A = 0) in a bin of their own.  It
 * shows the model as intervened when ablations or pins are set.  On a
 * short panel the heatmap keeps the selected layer and the histogram
 * shrinks to one row of bars, then to its one-line summary; a tall one
 * gives the bars the rows the heatmap leaves. */
#include <math.h>
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

#define LABEL_W 4
#define BIN_W 4        /* columns of a histogram bin: a 3-column bar and a gap */

typedef struct {
    int ok, n_layer, sel, sel_token, utf8, iv;
    char note[96];
    char unit[16];   /* what a horizon belongs to: "channel", or Mamba-2's "head" */
    float lognorm[SSM_SNAP_MAX_LAYER * SSM_SNAP_MAX_T];   /* (n_layer, T) ln ||h_t|| */
    float lo, hi;
    int bins[SSM_SNAP_MAX_LAYER][SSM_SNAP_HZ_BINS];
    tui_tokens tok;
    int row0, col0, ncols;   /* first layer and token shown, tokens shown */
} states_state;

static void states_update(tui_panel *p, const tui_view *v)
{
    states_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ok = s->ready && s->states_ok && s->measured_step >= 0;
    st->n_layer = s->n_layer < SSM_SNAP_MAX_LAYER ? s->n_layer : SSM_SNAP_MAX_LAYER;
    st->sel = tui_view_mixer(v->layer);
    st->sel_token = v->token;
    st->utf8 = v->utf8;
    st->iv = s->iv_desc[0] != 0;
    snprintf(st->unit, sizeof st->unit, "%s", s->attn_unit[0] ? s->attn_unit : "channel");
    snprintf(st->note, sizeof st->note, "%s", s->states_note[0] ? s->states_note : "measuring the states...");
    tui_tokens_set(&st->tok, s, v->utf8);
    memcpy(st->bins, s->hz_bins, sizeof st->bins);
    st->lo = INFINITY;
    st->hi = -INFINITY;
    for (int i = 0; i < st->n_layer * st->tok.T; i++) {
        float n = s->st_norm[i];
        st->lognorm[i] = n > 0 ? logf(n) : -INFINITY;
        if (n > 0) st->lo = fminf(st->lo, st->lognorm[i]);
        if (n > 0) st->hi = fmaxf(st->hi, st->lognorm[i]);
    }
}

static void states_title(tui_panel *p, const states_state *st)
{
    char t[3][160];
    const char *h = st->utf8 ? "\u2016h_t\u2016" : "|h_t|", *iv = st->iv ? " (intervened)" : "";
    snprintf(t[0], sizeof t[0], " states %s%s: layers L0..L%d down, tokens across; horizons of L%d ", h, iv,
             st->n_layer - 1, st->sel);
    snprintf(t[1], sizeof t[1], " states %s%s; horizons of L%d ", h, iv, st->sel);
    snprintf(t[2], sizeof t[2], " states%s ", iv);
    const char *titles[3] = {t[0], t[1], t[2]};
    tui_panel_title(p, 3, titles);
}

/* Heatmap rows r = 0..rows-1 from layer row0, the selected cell marked. */
static void heat_rows(tui_panel *p, const states_state *st, int rows)
{
    cchar_t mark;
    wchar_t m[2] = {st->utf8 ? L'\u25c6' : L'#', 0};
    setcchar(&mark, m, tui_attr(TUI_C_SELECT) & ~A_COLOR, tui_pair(TUI_C_SELECT), NULL);
    for (int r = 0; r < rows; r++) {
        int l = st->row0 + r, x = LABEL_W;
        tui_draw_fmt(p->win, 1 + r, 0, LABEL_W - 1, l == st->sel ? tui_attr(TUI_C_SELECT) : tui_attr(TUI_C_DIM), "L%-2d",
                     l);
        for (int t = st->col0; t < st->col0 + st->ncols; x += st->tok.w[t++]) {
            cchar_t cc;
            float v = st->lognorm[l * st->tok.T + t];
            tui_ramp_cell(tui_ramp_index(isfinite(v) ? v : st->lo, st->lo, st->hi), &cc);
            for (int k = 0; k < st->tok.w[t]; k++)
                mvwadd_wch(p->win, 1 + r, x + k, l == st->sel && t == st->sel_token && !k ? &mark : &cc);
        }
    }
}

/* Bars of the selected layer's bins, rows high, their bottom at y. */
static void hist_bars(tui_panel *p, const states_state *st, int y, int rows)
{
    static const wchar_t eighths[] = L" \u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588";
    const int *b = st->bins[st->sel];
    int most = 1;
    for (int k = 0; k < SSM_SNAP_HZ_BINS; k++) most = b[k] > most ? b[k] : most;
    for (int k = 0; k < SSM_SNAP_HZ_BINS; k++) {
        int units = (int)lrint(8.0 * rows * b[k] / most), x = LABEL_W + k * BIN_W;
        if (b[k] > 0 && units == 0) units = 1;   /* a channel is never invisible */
        tui_role role = k == SSM_SNAP_HZ_BINS - 1 ? TUI_C_SERIES2 : TUI_C_SERIES1;
        for (int r = 0; r < rows; r++) {
            int u = units - 8 * r;
            wchar_t c[2] = {u <= 0 ? L' ' : !st->utf8 ? L'#' : eighths[u >= 8 ? 8 : u], 0};
            for (int i = 0; i < BIN_W - 1; i++) {
                cchar_t cc;
                setcchar(&cc, c, tui_attr(role) & ~A_COLOR, tui_pair(role), NULL);
                mvwadd_wch(p->win, y - r, x + i, &cc);
            }
        }
    }
}

/* The bins' lower edges, or their counts. */
static void hist_labels(tui_panel *p, const states_state *st, int y, int counts)
{
    tui_draw_text(p->win, y, 0, LABEL_W - 1, tui_attr(TUI_C_DIM), counts ? (st->unit[0] == 'h' ? "hd" : "ch") : "tok");
    for (int k = 0; k < SSM_SNAP_HZ_BINS; k++) {
        attr_t a = counts ? A_NORMAL : tui_attr(TUI_C_DIM);
        if (counts) tui_draw_fmt(p->win, y, LABEL_W + k * BIN_W, BIN_W - 1, a, "%3d", st->bins[st->sel][k]);
        else tui_draw_fmt(p->win, y, LABEL_W + k * BIN_W, BIN_W - 1, a, "%3s", ssm_horizon_bin_label(k));
    }
}

/* The last line: the colour scale and the selected layer's horizons in words. */
static void summary(tui_panel *p, const states_state *st, int y)
{
    const int *b = st->bins[st->sel];
    int n = 0, half = 0, med = 0;
    for (int k = 0; k < SSM_SNAP_HZ_BINS; k++) n += b[k];
    for (int k = 0; k < SSM_SNAP_HZ_BINS && half * 2 < n; k++) half += b[med = k];
    char l[3][192];
    const char *h = st->utf8 ? "\u2016h\u2016" : "|h|";
    snprintf(l[0], sizeof l[0], "log %s %.3g..%.3g; L%d horizons: median bin %s tok, %d of %d %ss never forget",
             h, exp(st->lo), exp(st->hi), st->sel, ssm_horizon_bin_label(med), b[SSM_SNAP_HZ_BINS - 1], n, st->unit);
    snprintf(l[1], sizeof l[1], "L%d horizon median %s tok, %d/%d inf", st->sel, ssm_horizon_bin_label(med),
             b[SSM_SNAP_HZ_BINS - 1], n);
    snprintf(l[2], sizeof l[2], "L%d %s, %d inf", st->sel, ssm_horizon_bin_label(med), b[SSM_SNAP_HZ_BINS - 1]);
    const char *lines[3] = {l[0], l[1], l[2]};
    tui_draw_first(p->win, y, 0, p->w, tui_attr(TUI_C_DIM), 3, lines);
}

static void states_draw(tui_panel *p)
{
    states_state *st = p->st;
    werase(p->win);
    states_title(p, st);
    if (!st->ok || st->n_layer < 1 || st->tok.T < 1) {
        tui_draw_wrap(p->win, 1, 1, p->w - 2, p->h - 1, tui_attr(TUI_C_DIM), st->note);
        return;
    }
    int avail = p->h - 1, cols = p->w - LABEL_W - 1, hist = p->w >= LABEL_W + SSM_SNAP_HZ_BINS * BIN_W;
    if (avail < 3 || cols < 1) return;
    /* the heatmap and its token row; the summary line; what is left: bars, bin labels, counts */
    int rows = avail - 2 - (hist ? 2 : 0) < st->n_layer ? avail - 2 - (hist ? 2 : 0) : st->n_layer;
    if (rows < 1) rows = 1, hist = 0;
    int left = avail - rows - 2, bars = hist ? left - 1 - (left >= 4) : 0;
    st->row0 = tui_scroll_first(st->sel, rows, st->n_layer);
    st->ncols = tui_tokens_fit(&st->tok, st->sel_token, cols, 0, &st->col0);
    heat_rows(p, st, rows);
    int y = 1 + rows;
    if (!st->tok.grid) tui_tokens_draw(p->win, y, LABEL_W, &st->tok, st->col0, st->ncols, st->sel_token);
    else tui_draw_fmt(p->win, y, LABEL_W, cols, tui_attr(TUI_C_DIM), "tokens %d..%d", st->col0,
                      st->col0 + st->ncols - 1);
    if (bars >= 1) {
        hist_bars(p, st, y + bars, bars);
        hist_labels(p, st, y + bars + 1, 0);
        if (left >= 4) hist_labels(p, st, y + bars + 2, 1);
    }
    summary(p, st, p->h - 1);
}

const tui_panel_class tui_panel_states_class = {
    .name = "states", .state_size = sizeof(states_state), .update = states_update, .draw = states_draw,
};
