/* panel_attn.c — hidden attention of SPEC §3 for the selected layer and
 * channel: |alpha[t][s]| for query tokens t (rows, ending at the selected
 * token) and source tokens s <= t (columns); aggregation (one channel, or
 * the mean of |alpha_e| over channels) and normalisation (each row scaled
 * to its maximum) are stated in the title. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "colors.h"

#define LABEL_W 2

typedef struct {
    int ok, T, sel, layer, channel, d_inner, utf8;
    float attn[SSM_SNAP_MAX_T * SSM_SNAP_MAX_T];
    unsigned char text[SSM_SNAP_MAX_T];
    int t0, s0;   /* first row (query) and column (source) shown */
} attn_state;

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
    st->utf8 = v->utf8;
    memcpy(st->attn, s->attn, sizeof(float) * s->T * s->T);
    memcpy(st->text, s->text, sizeof st->text);
}

static void attn_title(tui_panel *p, const attn_state *st)
{
    char title[160];
    const char *a = st->utf8 ? "\u03b1" : "alpha";
    if (st->channel < 0)
        snprintf(title, sizeof title, " hidden attention %s[t][s], layer %d, mean over channels ", a, st->layer);
    else
        snprintf(title, sizeof title, " hidden attention %s[t][s], layer %d, channel %d ", a, st->layer, st->channel);
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
            tui_ramp_cell(tui_ramp_index(st->attn[(size_t)t * st->T + s], 0.0, 1.0), &cc);
            mvwadd_wch(p->win, 1 + r, LABEL_W + c, &cc);
        }
    }
    for (int c = 0; c < cols && st->s0 + c < st->T; c++) {
        int s = st->s0 + c;
        attr_t a = s == st->sel ? tui_attr(TUI_C_SELECT) : A_NORMAL;
        tui_draw_text(p->win, 1 + rows, LABEL_W + c, 1, a, tui_token_label(st->text[s], st->utf8));
    }
}

static void attn_legend(tui_panel *p, const attn_state *st, int y)
{
    const char *a = st->utf8 ? "\u03b1" : "alpha";
    if (st->channel < 0)
        tui_draw_fmt(p->win, y - 1, 0, p->w, tui_attr(TUI_C_DIM), "mean |%s_e| over %d channels; rows scaled to max 1",
                     a, st->d_inner);
    else
        tui_draw_fmt(p->win, y - 1, 0, p->w, tui_attr(TUI_C_DIM), "|%s_e| of channel %d alone; rows scaled to max 1",
                     a, st->channel);
    tui_draw_text(p->win, y, 0, 2, A_NORMAL, "0 ");
    for (int i = 0; i < TUI_RAMP; i++) {
        cchar_t cc;
        tui_ramp_cell(i, &cc);
        mvwadd_wch(p->win, y, 2 + i, &cc);
    }
    int t = st->sel, best = 0;
    for (int s = 1; s <= t; s++)
        if (st->attn[(size_t)t * st->T + s] > st->attn[(size_t)t * st->T + best]) best = s;
    tui_draw_fmt(p->win, y, 2 + TUI_RAMP, p->w - 2 - TUI_RAMP, tui_attr(TUI_C_SERIES1),
                 " 1  token %d '%s' draws most on %d '%s'", t, tui_token_label(st->text[t], st->utf8), best,
                 tui_token_label(st->text[best], st->utf8));
}

static void attn_draw(tui_panel *p)
{
    attn_state *st = p->st;
    werase(p->win);
    attn_title(p, st);
    if (!st->ok || p->h < 6) {
        tui_draw_text(p->win, 1, 1, p->w - 2, tui_attr(TUI_C_DIM), st->ok ? "" : "measuring...");
        return;
    }
    int rows = p->h - 4, cols = p->w - LABEL_W;
    if (rows > st->T) rows = st->T;
    int t_end = st->sel > rows - 1 ? st->sel : rows - 1;   /* the selected token's row in view */
    st->t0 = t_end - rows + 1;
    st->s0 = st->sel - cols + 1 > 0 ? st->sel - cols + 1 : 0;
    attn_cells(p, st, rows, cols);
    attn_legend(p, st, p->h - 1);
}

static int attn_click(tui_panel *p, int y, int x, int *layer, int *token)
{
    attn_state *st = p->st;
    (void)layer;
    int s = st->s0 + x - LABEL_W;
    if (!st->ok || y < 1 || y > p->h - 3 || x < LABEL_W || s >= st->T) return 0;
    *token = s;
    return 1;
}

tui_panel *tui_panel_attn_new(void)
{
    tui_panel *p = calloc(1, sizeof *p);
    p->name = "attention";
    p->st = calloc(1, sizeof(attn_state));
    p->update = attn_update;
    p->draw = attn_draw;
    p->click = attn_click;
    return p;
}
