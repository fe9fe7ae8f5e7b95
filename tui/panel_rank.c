/* panel_rank.c — the importance ranking of the first layer, layer 0
 * (ssmlab-math(7) DYNAMICS): the tokens in input order with their scores,
 * and the reordered sequence by increasing score (most important last),
 * each scrolled to the selected token (a narrow panel shows the second
 * list alone, with fewer columns); clicks select a token.  A model without
 * the ranking (Mamba-2, for now) shows why instead. */
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

typedef struct {
    int ok, T, sel, learned, reorder, utf8;
    float imp[SSM_SNAP_MAX_T];
    int order[SSM_SNAP_MAX_T], rank[SSM_SNAP_MAX_T];   /* rank[pos] = index in order */
    tui_tokens tok;
    int first_in, first_re;   /* first rows shown (from the last draw) */
    int lists, half;          /* lists shown (2: input order and by score; 1: by score), column of the second */
} rank_state;

static void rank_update(tui_panel *p, const tui_view *v)
{
    rank_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ok = s->ready && s->measured_step >= 0 && s->imp_ok;
    st->T = s->T;
    st->sel = v->token;
    st->learned = s->imp_learned;
    st->reorder = s->reorder;
    st->utf8 = v->utf8;
    memcpy(st->imp, s->imp, sizeof(float) * s->T);
    memcpy(st->order, s->order, sizeof(int) * s->T);
    tui_tokens_set(&st->tok, s, v->utf8);
    for (int i = 0; i < s->T; i++)
        if (st->order[i] >= 0 && st->order[i] < s->T) st->rank[st->order[i]] = i;
}

/* Row formats by the width of a list: index, position, score, token. */
static int wide_rows(int w) { return w >= 24; }

static void rank_row(tui_panel *p, const rank_state *st, int y, int x, int w, int idx, int pos)
{
    attr_t a = pos == st->sel ? tui_attr(TUI_C_SELECT) : A_NORMAL;
    const char *name = st->tok.grid ? st->tok.vis[pos] : tui_token_name(&st->tok, pos);
    if (wide_rows(w)) tui_draw_fmt(p->win, y, x, w, a, "%3d %3d %9.6f %s", idx, pos, st->imp[pos], name);
    else tui_draw_fmt(p->win, y, x, w, a, "%3d %6.3f %s", pos, st->imp[pos], name);
}

static void rank_title(tui_panel *p, const rank_state *st)
{
    char t[3][96];
    if (st->learned) snprintf(t[0], sizeof t[0], " importance s_t = k . (W_dt delta_t + b_dt), layer 0 ");
    else snprintf(t[0], sizeof t[0], " importance s_t = mean_e %s_t[e] (proxy), layer 0 ", st->utf8 ? "\u0394" : "Delta");
    snprintf(t[1], sizeof t[1], " importance (%s), layer 0 ", st->learned ? "learned" : "proxy");
    snprintf(t[2], sizeof t[2], " importance ");
    const char *titles[3] = {t[0], t[1], t[2]};
    tui_panel_title(p, 3, titles);
}

/* A list's heading and column names in w columns from x. */
static void list_head(tui_panel *p, int x, int w, int n, const char *const *heads, int numbered)
{
    tui_draw_first(p->win, 1, x, w, tui_attr(TUI_C_TITLE), n, heads);
    const char *cols = !wide_rows(w) ? "pos  score tok" : numbered ? "rnk pos     score tok" : "  # pos     score tok";
    tui_draw_fit(p->win, 2, x, w, tui_attr(TUI_C_DIM), cols);
}

static void rank_draw(tui_panel *p)
{
    rank_state *st = p->st;
    werase(p->win);
    rank_title(p, st);
    if (!st->ok || p->h < 5) return;
    st->lists = p->w >= 30 ? 2 : 1;
    st->half = st->lists == 2 ? p->w / 2 : 0;
    int rows = p->h - 3, wl = st->half - 1, wr = p->w - st->half;
    const char *in_heads[1] = {"input order"};
    const char *re_heads[3] = {st->reorder ? "reordered, most important last" : "by score (reorder off)",
                               st->reorder ? "reordered" : "by score", "sorted"};
    if (st->lists == 2) list_head(p, 0, wl, 1, in_heads, 0);
    list_head(p, st->half, wr, 3, re_heads, 1);
    st->first_in = tui_scroll_first(st->sel, rows, st->T);
    st->first_re = tui_scroll_first(st->rank[st->sel], rows, st->T);
    for (int r = 0; r < rows; r++) {
        int i = st->first_in + r, k = st->first_re + r;
        if (st->lists == 2 && i < st->T) rank_row(p, st, 3 + r, 0, wl, i, i);
        if (k < st->T) rank_row(p, st, 3 + r, st->half, wr, k, st->order[k]);
    }
}

static int rank_click(tui_panel *p, int y, int x, int *layer, int *token)
{
    rank_state *st = p->st;
    (void)layer;
    int r = y - 3, input = x < st->half;
    if (!st->ok || r < 0) return 0;
    int idx = (input ? st->first_in : st->first_re) + r;
    if (idx >= st->T) return 0;
    *token = input ? idx : st->order[idx];
    return 1;
}

const tui_panel_class tui_panel_rank_class = {
    .name = "ranking", .state_size = sizeof(rank_state), .update = rank_update, .draw = rank_draw, .click = rank_click,
};
