/* panel_attn.c — the hidden-attention and influence view (ssmlab-math(7) RECENCY) for the
 * selected layer, channel and token.  Above: |alpha[t][s]| of the selected
 * layer for query tokens t (rows, ending at the selected token) and source
 * tokens s <= t (columns), one channel or the mean of |alpha_e| over
 * channels, each row scaled to its maximum.  Below, on the same columns:
 * the influence I(t,s) = ||dx_n[t]/dx_0[s]||_F of each source on the
 * selected token's last residual stream (the Frobenius norm over all
 * channel pairs), on a log colour scale, with its exponential decay rate
 * and half-life.  Two lines state the aggregation and normalisation. */
#include <math.h>
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

#define LABEL_W 2
#define FOOT_H 5   /* column labels, influence strip, two notes, legend */

typedef struct {
    int ok, T, sel, layer, channel, d_inner, d_model, utf8, grid;
    unsigned char attn[SSM_SNAP_MAX_T * SSM_SNAP_MAX_T];   /* |alpha| / row max, 0..255 */
    unsigned char text[SSM_SNAP_MAX_T];
    char note[96], infl_note[64];      /* why there is no attention, no influence */
    int infl_ok, infl_token, probes;
    float infl[SSM_SNAP_MAX_T];
    double lo, hi;                     /* ln I range over s <= t */
    double rate, half_life, r2;
    int t0, s0;   /* first row (query) and column (source) shown */
} attn_state;

static void infl_update(attn_state *st, const ssm_snapshot *s)
{
    st->infl_ok = s->ready && s->infl_ok && s->infl_token >= 0 && s->infl_token < s->T;
    st->infl_token = s->infl_token;
    snprintf(st->infl_note, sizeof st->infl_note, "%s", s->infl_note);
    st->probes = s->infl_probes;
    st->rate = s->infl_rate;
    st->half_life = s->infl_half_life;
    st->r2 = s->infl_r2;
    memcpy(st->infl, s->infl, sizeof(float) * s->T);
    st->lo = INFINITY;
    st->hi = -INFINITY;
    for (int i = 0; st->infl_ok && i <= st->infl_token; i++)
        if (st->infl[i] > 0) {
            st->lo = fmin(st->lo, log(st->infl[i]));
            st->hi = fmax(st->hi, log(st->infl[i]));
        }
}

static void attn_update(tui_panel *p, const tui_view *v)
{
    attn_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ok = s->ready && s->attn_ok && s->measured_step >= 0;
    st->T = s->T;
    st->sel = v->token < s->T ? v->token : s->T - 1;
    st->layer = s->attn_layer;
    st->channel = s->attn_channel;
    st->d_inner = s->d_inner;
    st->d_model = s->d_model;
    st->utf8 = v->utf8;
    st->grid = s->images ? s->grid_cols : 0;
    snprintf(st->note, sizeof st->note, "%s", s->attn_note);
    memcpy(st->attn, s->attn, (size_t)s->T * s->T);
    memcpy(st->text, s->text, sizeof st->text);
    infl_update(st, s);
}

static const char *name(const attn_state *st, int t)
{
    return tui_token_name(st->text, st->grid, t, st->utf8);
}

static void attn_title(tui_panel *p, const attn_state *st)
{
    char title[160];
    const char *a = st->utf8 ? "\u03b1" : "alpha";
    if (st->channel < 0)
        snprintf(title, sizeof title, " hidden attention %s and influence I: layer %d, all channels ", a, st->layer);
    else
        snprintf(title, sizeof title, " hidden attention %s and influence I: layer %d, channel %d ", a, st->layer,
                 st->channel);
    tui_draw_title(p->win, title);
}

static void attn_cells(tui_panel *p, const attn_state *st, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        int t = st->t0 + r;
        attr_t la = t == st->sel ? tui_attr(TUI_C_SELECT) : tui_attr(TUI_C_DIM);
        tui_draw_text(p->win, 1 + r, 0, 1, la, tui_token_label(st->text[t], st->utf8));
        for (int c = 0; c < cols; c++) {
            int s = st->s0 + c;
            if (s > t) break;
            cchar_t cc;
            tui_ramp_cell(tui_ramp_index(st->attn[(size_t)t * st->T + s], 0.0, 255.0), &cc);
            mvwadd_wch(p->win, 1 + r, LABEL_W + c, &cc);
        }
    }
}

static void column_labels(tui_panel *p, const attn_state *st, int y, int cols)
{
    for (int c = 0; c < cols && st->s0 + c < st->T; c++) {
        int s = st->s0 + c;
        attr_t a = s == st->sel ? tui_attr(TUI_C_SELECT) : A_NORMAL;
        tui_draw_text(p->win, y, LABEL_W + c, 1, a, tui_token_label(st->text[s], st->utf8));
    }
}

/* I(t, s) of the selected token t, log colour scale, on the attention's columns. */
static void infl_strip(tui_panel *p, const attn_state *st, int y, int cols)
{
    tui_draw_text(p->win, y, 0, 1, tui_attr(TUI_C_SERIES1), "I");
    if (!st->infl_ok || st->infl_token != st->sel) {
        const char *why = !st->infl_ok && st->infl_note[0] ? st->infl_note : "measuring influence...";
        tui_draw_text(p->win, y, LABEL_W, cols, tui_attr(TUI_C_DIM), why);
        return;
    }
    for (int c = 0; c < cols && st->s0 + c <= st->infl_token; c++) {
        float v = st->infl[st->s0 + c];
        cchar_t cc;
        tui_ramp_cell(tui_ramp_index(v > 0 ? log(v) : st->lo, st->lo, st->hi), &cc);
        mvwadd_wch(p->win, y, LABEL_W + c, &cc);
    }
}

/* The two lines that say how channels are aggregated and normalised (a
 * short form in a narrow panel). */
static void notes(tui_panel *p, const attn_state *st, int y)
{
    const char *a = st->utf8 ? "\u03b1" : "alpha", *d = st->utf8 ? "\u2202" : "d", *n = st->utf8 ? "\u2016" : "|";
    int wide = p->w >= 64;
    attr_t dim = tui_attr(TUI_C_DIM);
    char how[32];
    if (st->channel < 0 && wide)
        tui_draw_fmt(p->win, y, 0, p->w, dim, "%s: mean over channels of |%s_e| (%d); rows scaled to max 1", a, a,
                     st->d_inner);
    else if (st->channel < 0)
        tui_draw_fmt(p->win, y, 0, p->w, dim, "%s: mean |%s_e| of %d ch; rows max 1", a, a, st->d_inner);
    else
        tui_draw_fmt(p->win, y, 0, p->w, dim, "%s: channel %d alone, |%s_e|; rows %s max 1", a, st->channel, a,
                     wide ? "scaled to" : "");
    if (st->probes) snprintf(how, sizeof how, "%d probes", st->probes);
    else snprintf(how, sizeof how, "exact");
    if (wide)
        tui_draw_fmt(p->win, y + 1, 0, p->w, dim, "I: %s%sx_n[t]/%sx_0[s]%s_F over %dx%d channels, %s; log colours",
                     n, d, d, n, st->d_model, st->d_model, how);
    else
        tui_draw_fmt(p->win, y + 1, 0, p->w, dim, "I: Frobenius, %dx%d ch, %s; log", st->d_model, st->d_model, how);
}

/* The colour ramp, where the selected row's attention peaks, and the
 * influence's decay. */
static void legend(tui_panel *p, const attn_state *st, int y)
{
    tui_draw_text(p->win, y, 0, 2, A_NORMAL, "0 ");
    for (int i = 0; i < TUI_RAMP; i++) {
        cchar_t cc;
        tui_ramp_cell(i, &cc);
        mvwadd_wch(p->win, y, 2 + i, &cc);
    }
    int x = 2 + TUI_RAMP, t = st->sel, best = 0, wide = p->w >= 64;
    tui_draw_text(p->win, y, x, 3, A_NORMAL, " 1 ");
    x += 3;
    if (st->ok) {
        for (int s = 1; s <= t; s++)
            if (st->attn[(size_t)t * st->T + s] > st->attn[(size_t)t * st->T + best]) best = s;
        tui_draw_fmt(p->win, y, x, p->w - x, tui_attr(TUI_C_SERIES1), "%s peaks at %s; ",
                     st->utf8 ? "\u03b1" : "alpha", name(st, best));
        x = getcurx(p->win);
    }
    if (!st->infl_ok || st->infl_token != t) return;
    if (!isfinite(st->rate)) tui_draw_text(p->win, y, x, p->w - x, tui_attr(TUI_C_DIM), "I: no decay fit (t < 2)");
    else if (st->rate <= 0)
        tui_draw_fmt(p->win, y, x, p->w - x, tui_attr(TUI_C_SERIES2), "I grows with distance (rate %.3g/tok, R2 %.2f)",
                     st->rate, st->r2);
    else if (wide)
        tui_draw_fmt(p->win, y, x, p->w - x, tui_attr(TUI_C_SERIES2), "I half-life %.3g tok (rate %.3g/tok, R2 %.2f)",
                     st->half_life, st->rate, st->r2);
    else
        tui_draw_fmt(p->win, y, x, p->w - x, tui_attr(TUI_C_SERIES2), "I half-life %.3g", st->half_life);
}

static void attn_draw(tui_panel *p)
{
    attn_state *st = p->st;
    werase(p->win);
    attn_title(p, st);
    int rows = p->h - 1 - FOOT_H, cols = p->w - LABEL_W;
    if (p->h < FOOT_H + 1 || st->T < 1) return;
    if (rows > st->T) rows = st->T;
    int t_end = st->sel > rows - 1 ? st->sel : rows - 1;   /* the selected token's row in view */
    st->t0 = t_end - rows + 1;
    st->s0 = st->sel - cols + 1 > 0 ? st->sel - cols + 1 : 0;
    if (st->ok) attn_cells(p, st, rows, cols);
    else if (rows > 0)
        tui_draw_text(p->win, 1, LABEL_W, cols, tui_attr(TUI_C_DIM), st->note[0] ? st->note : "measuring...");
    int y = 1 + (rows > 0 ? rows : 0);
    column_labels(p, st, y, cols);
    infl_strip(p, st, y + 1, cols);
    notes(p, st, y + 2);
    legend(p, st, y + 4);
}

static int attn_click(tui_panel *p, int y, int x, int *layer, int *token)
{
    attn_state *st = p->st;
    (void)layer;
    int s = st->s0 + x - LABEL_W;
    if (y < 1 || y > p->h - 4 || x < LABEL_W || s >= st->T) return 0;
    *token = s;
    return 1;
}

const tui_panel_class tui_panel_attn_class = {
    .name = "attention", .state_size = sizeof(attn_state), .update = attn_update, .draw = attn_draw, .click = attn_click,
};
