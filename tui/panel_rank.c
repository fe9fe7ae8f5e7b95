/* panel_rank.c — the importance ranking of the first layer (ssmlab-math(7) DYNAMICS): the
 * tokens in input order with their scores, and the reordered sequence by
 * increasing score (most important last), each scrolled to the selected
 * token; clicks select a token. */
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

typedef struct {
    int ok, T, sel, learned, reorder, utf8, grid;   /* grid: image tokens per row (0: text) */
    float imp[SSM_SNAP_MAX_T];
    int order[SSM_SNAP_MAX_T], rank[SSM_SNAP_MAX_T];   /* rank[pos] = index in order */
    unsigned char text[SSM_SNAP_MAX_T];
    int first_in, first_re;   /* first rows shown (from the last draw) */
} rank_state;

static void rank_update(tui_panel *p, const tui_view *v)
{
    rank_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ok = s->ready && s->measured_step >= 0;
    st->T = s->T;
    st->sel = v->token;
    st->learned = s->imp_learned;
    st->reorder = s->reorder;
    st->utf8 = v->utf8;
    st->grid = s->images ? s->grid_cols : 0;
    memcpy(st->imp, s->imp, sizeof(float) * s->T);
    memcpy(st->order, s->order, sizeof(int) * s->T);
    memcpy(st->text, s->text, sizeof st->text);
    for (int i = 0; i < s->T; i++)
        if (st->order[i] >= 0 && st->order[i] < s->T) st->rank[st->order[i]] = i;
}

static void rank_row(tui_panel *p, const rank_state *st, int y, int x, int w, int idx, int pos)
{
    attr_t a = pos == st->sel ? tui_attr(TUI_C_SELECT) : A_NORMAL;
    const char *name = st->grid ? tui_token_name(st->text, st->grid, pos, st->utf8)
                                : tui_token_label(st->text[pos], st->utf8);
    tui_draw_fmt(p->win, y, x, w, a, "%3d %3d %9.6f %s", idx, pos, st->imp[pos], name);
}

static void rank_draw(tui_panel *p)
{
    rank_state *st = p->st;
    werase(p->win);
    if (st->learned) tui_draw_title(p->win, " importance s_t = k . (W_dt delta_t + b_dt), layer 1 ");
    else tui_draw_title(p->win, st->utf8 ? " importance s_t = mean_e \u0394_t[e] (proxy), layer 1 "
                                         : " importance s_t = mean_e Delta_t[e] (proxy), layer 1 ");
    if (!st->ok || p->h < 5) return;
    int half = p->w / 2, rows = p->h - 3;
    tui_draw_text(p->win, 1, 0, half, tui_attr(TUI_C_TITLE), "input order");
    tui_draw_text(p->win, 1, half, p->w - half, tui_attr(TUI_C_TITLE),
                  st->reorder ? "reordered, most important last" : "by score (reorder off)");
    tui_draw_text(p->win, 2, 0, half, tui_attr(TUI_C_DIM), "  # pos     score tok");
    tui_draw_text(p->win, 2, half, p->w - half, tui_attr(TUI_C_DIM), "rnk pos     score tok");
    st->first_in = tui_scroll_first(st->sel, rows, st->T);
    st->first_re = tui_scroll_first(st->rank[st->sel], rows, st->T);
    for (int r = 0; r < rows; r++) {
        int i = st->first_in + r, k = st->first_re + r;
        if (i < st->T) rank_row(p, st, 3 + r, 0, half - 1, i, i);
        if (k < st->T) rank_row(p, st, 3 + r, half, p->w - half, k, st->order[k]);
    }
}

static int rank_click(tui_panel *p, int y, int x, int *layer, int *token)
{
    rank_state *st = p->st;
    (void)layer;
    int r = y - 3;
    if (!st->ok || r < 0) return 0;
    int idx = (x < p->w / 2 ? st->first_in : st->first_re) + r;
    if (idx >= st->T) return 0;
    *token = x < p->w / 2 ? idx : st->order[idx];
    return 1;
}

const tui_panel_class tui_panel_rank_class = {
    .name = "ranking", .state_size = sizeof(rank_state), .update = rank_update, .draw = rank_draw, .click = rank_click,
};
