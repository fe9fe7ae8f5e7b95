/* panel_attn.c — the hidden-attention and influence view (ssmlab-math(7) RECENCY) for the
 * selected layer (0-based, as ssmlab inspect counts), channel and token.  Above: |alpha[t][s]| of the selected
 * layer for query tokens t (rows, ending at the selected token) and source
 * tokens s <= t (columns), one channel or the mean of |alpha_e| over
 * channels, each row scaled to its maximum; a Mamba-2 model's units are
 * its heads (alpha_h, ssmlab-math(7) MAMBA-2), named so.  Below, on the same columns:
 * the influence I(t,s) = ||dx_n[t]/dx_0[s]||_F of each source on the
 * selected token's last residual stream (the Frobenius norm over all
 * channel pairs), on a log colour scale, with its exponential decay rate
 * and half-life, or "no exponential decay" when the fit's R^2 is below
 * TASK_DECAY_MIN_R2.  Two lines state the aggregation and normalisation. */
#include <math.h>
#include <string.h>

#include "tui/app.h"
#include "scenarios/task_dynamics.h"
#include "tui/colors.h"

#define LABEL_W 2
#define FOOT_H 5   /* column labels, influence strip, two notes, legend */

typedef struct {
    int ok, T, sel, layer, channel, units, d_model, utf8;
    char unit[8];                      /* "channel" or "head" */
    unsigned char attn[SSM_SNAP_MAX_T * SSM_SNAP_MAX_T];   /* |alpha| / row max, 0..255 */
    tui_tokens tok;
    char note[96], infl_note[64];      /* why there is no attention, no influence */
    int infl_ok, infl_token, probes;
    float infl[SSM_SNAP_MAX_T];
    double lo, hi;                     /* ln I range over s <= t */
    double rate, half_life, r2;
    int exponential;                   /* R^2 >= TASK_DECAY_MIN_R2 */
    int t0, s0, ns;   /* first row (query) and column (source) shown, sources shown */
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
    st->exponential = s->infl_exponential;
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
    st->units = s->attn_units;
    snprintf(st->unit, sizeof st->unit, "%s", s->attn_unit[0] ? s->attn_unit : "channel");
    st->d_model = s->d_model;
    st->utf8 = v->utf8;
    snprintf(st->note, sizeof st->note, "%s", s->attn_note);
    memcpy(st->attn, s->attn, (size_t)s->T * s->T);
    tui_tokens_set(&st->tok, s, v->utf8);
    infl_update(st, s);
}

static void attn_title(tui_panel *p, const attn_state *st)
{
    char t[3][160], ch[32];
    const char *a = st->utf8 ? "\u03b1" : "alpha";
    if (st->channel < 0) snprintf(ch, sizeof ch, "all %ss", st->unit);
    else snprintf(ch, sizeof ch, "%s %d", st->unit, st->channel);
    snprintf(t[0], sizeof t[0], " hidden attention %s and influence I: layer %d, %s ", a, st->layer, ch);
    snprintf(t[1], sizeof t[1], " %s and I: layer %d, %s ", a, st->layer, ch);
    snprintf(t[2], sizeof t[2], " %s, I: layer %d ", a, st->layer);
    const char *titles[3] = {t[0], t[1], t[2]};
    tui_panel_title(p, 3, titles);
}

/* Cells of source s from x, as wide as its column; NULL cell: stop there. */
static void cell_run(tui_panel *p, const attn_state *st, int y, int s, int x, const cchar_t *cc)
{
    for (int k = 0; k < st->tok.w[s] && x + k < p->w; k++) mvwadd_wch(p->win, y, x + k, cc);
}

static void attn_cells(tui_panel *p, const attn_state *st, int rows)
{
    for (int r = 0; r < rows; r++) {
        int t = st->t0 + r, x = LABEL_W;
        attr_t la = t == st->sel ? tui_attr(TUI_C_SELECT) : tui_attr(TUI_C_DIM);
        if (st->tok.grid) tui_draw_fmt(p->win, 1 + r, 0, 1, la, "%d", t % st->tok.grid % 10);
        else tui_draw_text(p->win, 1 + r, 0, 1, la, st->tok.vis[t]);
        for (int s = st->s0; s < st->s0 + st->ns && s <= t; x += st->tok.w[s++]) {
            cchar_t cc;
            tui_ramp_cell(tui_ramp_index(st->attn[(size_t)t * st->T + s], 0.0, 255.0), &cc);
            cell_run(p, st, 1 + r, s, x, &cc);
        }
    }
}

static void column_labels(tui_panel *p, const attn_state *st, int y)
{
    int x = LABEL_W;
    for (int s = st->s0; s < st->s0 + st->ns; x += st->tok.w[s++]) {
        attr_t a = s == st->sel ? tui_attr(TUI_C_SELECT) : st->tok.w[s] > 1 && s % 2 ? tui_attr(TUI_C_DIM) : A_NORMAL;
        tui_draw_text(p->win, y, x, st->tok.w[s], a, st->tok.grid ? "" : st->tok.vis[s]);
        if (st->tok.grid) tui_draw_fmt(p->win, y, x, 1, a, "%d", s % st->tok.grid % 10);
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
    int x = LABEL_W;
    for (int s = st->s0; s < st->s0 + st->ns && s <= st->infl_token; x += st->tok.w[s++]) {
        float v = st->infl[s];
        cchar_t cc;
        tui_ramp_cell(tui_ramp_index(v > 0 ? log(v) : st->lo, st->lo, st->hi), &cc);
        cell_run(p, st, y, s, x, &cc);
    }
}

/* The two lines that say how channels are aggregated and normalised (a
 * shorter form in a narrower panel). */
static void notes(tui_panel *p, const attn_state *st, int y)
{
    const char *a = st->utf8 ? "\u03b1" : "alpha", *d = st->utf8 ? "\u2202" : "d", *n = st->utf8 ? "\u2016" : "|";
    attr_t dim = tui_attr(TUI_C_DIM);
    char l[3][160], how[32];
    const char *u = st->unit, *e = strcmp(u, "head") ? "e" : "h", *ab = strcmp(u, "head") ? "ch" : "heads";
    if (st->channel < 0) {
        snprintf(l[0], sizeof l[0], "%s: mean over %ss of |%s_%s| (%d); rows scaled to max 1", a, u, a, e, st->units);
        snprintf(l[1], sizeof l[1], "%s: mean |%s_%s| of %d %s; rows max 1", a, a, e, st->units, ab);
    } else {
        snprintf(l[0], sizeof l[0], "%s: %s %d alone, |%s_%s|; rows scaled to max 1", a, u, st->channel, a, e);
        snprintf(l[1], sizeof l[1], "%s: %s %d, |%s_%s|; rows max 1", a, u, st->channel, a, e);
    }
    snprintf(l[2], sizeof l[2], "%s: rows max 1", a);
    const char *lines[3] = {l[0], l[1], l[2]};
    tui_draw_first(p->win, y, 0, p->w, dim, 3, lines);
    if (st->probes) snprintf(how, sizeof how, "%d probes", st->probes);
    else snprintf(how, sizeof how, "exact");
    snprintf(l[0], sizeof l[0], "I: %s%sx_n[t]/%sx_0[s]%s_F over %dx%d channels, %s; log colours", n, d, d, n,
             st->d_model, st->d_model, how);
    snprintf(l[1], sizeof l[1], "I: Frobenius, %dx%d ch, %s; log", st->d_model, st->d_model, how);
    snprintf(l[2], sizeof l[2], "I: %s; log", how);
    tui_draw_first(p->win, y + 1, 0, p->w, dim, 3, lines);
}

/* The colour ramp, where the selected row's attention peaks, and the
 * influence's decay: each piece shown whole or, shortened, not at all. */
static void legend(tui_panel *p, const attn_state *st, int y)
{
    tui_draw_text(p->win, y, 0, 2, A_NORMAL, "0 ");
    for (int i = 0; i < TUI_RAMP; i++) {
        cchar_t cc;
        tui_ramp_cell(i, &cc);
        mvwadd_wch(p->win, y, 2 + i, &cc);
    }
    int x = 2 + TUI_RAMP, t = st->sel, best = 0;
    tui_draw_text(p->win, y, x, 3, A_NORMAL, " 1 ");
    x += 3;
    char peak[96], half[3][128];
    if (st->ok && t < st->T) {
        for (int s = 1; s <= t; s++)
            if (st->attn[(size_t)t * st->T + s] > st->attn[(size_t)t * st->T + best]) best = s;
        snprintf(peak, sizeof peak, "%s peaks at %s; ", st->utf8 ? "\u03b1" : "alpha", tui_token_name(&st->tok, best));
        int after = tui_draw_fit(p->win, y, x, p->w - x, tui_attr(TUI_C_SERIES1), peak);
        if (after > 0) x = after;
    }
    if (!st->infl_ok || st->infl_token != t) return;
    if (!isfinite(st->rate)) {
        tui_draw_fit(p->win, y, x, p->w - x, tui_attr(TUI_C_DIM), "I: no decay fit (t < 2)");
        return;
    }
    if (!st->exponential) {
        snprintf(half[0], sizeof half[0], "I: no exponential decay (R2 %.2f < %.1f)", st->r2, TASK_DECAY_MIN_R2);
        snprintf(half[1], sizeof half[1], "I: no exponential decay");
        snprintf(half[2], sizeof half[2], "I: no exp");
    } else if (st->rate <= 0) {
        snprintf(half[0], sizeof half[0], "I grows with distance (rate %.3g/tok, R2 %.2f)", st->rate, st->r2);
        snprintf(half[1], sizeof half[1], "I grows (rate %.2g)", st->rate);
        snprintf(half[2], sizeof half[2], "I grows");
    } else {
        snprintf(half[0], sizeof half[0], "I half-life %.3g tok (rate %.3g/tok, R2 %.2f)", st->half_life, st->rate,
                 st->r2);
        snprintf(half[1], sizeof half[1], "I half-life %.3g tok", st->half_life);
        snprintf(half[2], sizeof half[2], "I %s %.3g", st->utf8 ? "t\u00bd" : "t1/2", st->half_life);
    }
    const char *pieces[3] = {half[0], half[1], half[2]};
    tui_draw_first(p->win, y, x, p->w - x, tui_attr(TUI_C_SERIES2), 3, pieces);
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
    st->ns = tui_tokens_fit(&st->tok, st->sel, cols, 1, &st->s0);
    if (st->ok) attn_cells(p, st, rows);
    else if (rows > 0)
        tui_draw_text(p->win, 1, LABEL_W, cols, tui_attr(TUI_C_DIM), st->note[0] ? st->note : "measuring...");
    int y = 1 + (rows > 0 ? rows : 0);
    column_labels(p, st, y);
    infl_strip(p, st, y + 1, cols);
    notes(p, st, y + 2);
    legend(p, st, y + 4);
}

static int attn_click(tui_panel *p, int y, int x, int *layer, int *token)
{
    attn_state *st = p->st;
    (void)layer;
    int s = tui_tokens_at(&st->tok, st->s0, st->ns, x - LABEL_W);
    if (y < 1 || y > p->h - 4 || x < LABEL_W || s < 0) return 0;
    *token = s;
    return 1;
}

const tui_panel_class tui_panel_attn_class = {
    .name = "attention", .state_size = sizeof(attn_state), .update = attn_update, .draw = attn_draw, .click = attn_click,
};
