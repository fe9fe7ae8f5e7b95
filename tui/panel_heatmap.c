/* panel_heatmap.c — token norms ||x_{l,t}|| of the inspected input as a
 * heatmap: layers as rows, tokens as columns labelled with the text's
 * characters or, for an image, with the patch (or pixel) row and column
 * indices (mod 10, on two lines), a log colour scale with its legend,
 * scrolling to keep the selected cell in view; clicks select a cell. */
#include <math.h>
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

#define LABEL_W 4

typedef struct {
    int ready, T, layers, sel_layer, sel_token, utf8;
    int grid, image, label, pred, patch;   /* images: tokens per row (0: text), the image */
    long step;
    float lognorm[(SSM_SNAP_MAX_LAYER + 1) * SSM_SNAP_MAX_T];   /* (layers, T) */
    float lo, hi;
    unsigned char text[SSM_SNAP_MAX_T];
    int row0, col0;   /* first layer and token shown (from the last draw) */
} heat_state;

static void heat_update(tui_panel *p, const tui_view *v)
{
    heat_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ready = s->ready && s->measured_step >= 0;
    st->T = s->T;
    st->layers = (s->n_layer < SSM_SNAP_MAX_LAYER ? s->n_layer : SSM_SNAP_MAX_LAYER) + 1;
    st->sel_layer = v->layer;
    st->sel_token = v->token;
    st->utf8 = v->utf8;
    st->step = s->measured_step;
    st->grid = s->images ? s->grid_cols : 0;
    st->image = s->image;
    st->label = s->image_label;
    st->pred = s->image_pred;
    st->patch = s->patch;
    memcpy(st->text, s->text, sizeof st->text);
    st->lo = INFINITY;
    st->hi = -INFINITY;
    for (int i = 0; i < st->layers * st->T; i++) {
        float l = logf(fmaxf(s->norms[i], 1e-30f));
        st->lognorm[i] = l;
        st->lo = fminf(st->lo, l);
        st->hi = fmaxf(st->hi, l);
    }
}

static void draw_cells(tui_panel *p, heat_state *st, int rows, int cols)
{
    for (int r = 0; r < rows && st->row0 + r < st->layers; r++) {
        int l = st->row0 + r;
        attr_t la = l == st->sel_layer ? tui_attr(TUI_C_SELECT) : tui_attr(TUI_C_DIM);
        tui_draw_fmt(p->win, 1 + r, 0, LABEL_W - 1, la, "x%-2d", l);
        for (int c = 0; c < cols && st->col0 + c < st->T; c++) {
            int t = st->col0 + c;
            cchar_t cc;
            if (l == st->sel_layer && t == st->sel_token) {
                wchar_t mark[2] = {st->utf8 ? L'\u25c6' : L'#', 0};
                setcchar(&cc, mark, tui_attr(TUI_C_SELECT) & ~A_COLOR, tui_pair(TUI_C_SELECT), NULL);
            } else {
                tui_ramp_cell(tui_ramp_index(st->lognorm[l * st->T + t], st->lo, st->hi), &cc);
            }
            mvwadd_wch(p->win, 1 + r, LABEL_W + c, &cc);
        }
    }
}

/* Image tokens: their grid row (mod 10) on a line of its own. */
static void draw_row_labels(tui_panel *p, heat_state *st, int y, int cols)
{
    tui_draw_text(p->win, y, 0, LABEL_W - 1, tui_attr(TUI_C_DIM), "y");
    for (int c = 0; c < cols && st->col0 + c < st->T; c++) {
        int t = st->col0 + c;
        attr_t a = t == st->sel_token ? tui_attr(TUI_C_SELECT) : t / st->grid % 2 ? tui_attr(TUI_C_DIM) : A_NORMAL;
        tui_draw_fmt(p->win, y, LABEL_W + c, 1, a, "%d", t / st->grid % 10);
    }
}

static void draw_labels(tui_panel *p, heat_state *st, int y, int cols)
{
    if (st->grid) {
        draw_row_labels(p, st, y++, cols);
        tui_draw_text(p->win, y, 0, LABEL_W - 1, tui_attr(TUI_C_DIM), "x");
    }
    for (int c = 0; c < cols && st->col0 + c < st->T; c++) {
        int t = st->col0 + c;
        attr_t a = t == st->sel_token ? tui_attr(TUI_C_SELECT) : A_NORMAL;
        tui_draw_text(p->win, y, LABEL_W + c, 1, a, tui_token_label(st->text[t], st->utf8));
    }
    if (st->col0 > 0) tui_draw_text(p->win, y, LABEL_W - 1, 1, tui_attr(TUI_C_DIM), "<");
    if (st->col0 + cols < st->T) tui_draw_text(p->win, y, LABEL_W + cols, 1, tui_attr(TUI_C_DIM), ">");
}

static void draw_legend(tui_panel *p, heat_state *st, int y)
{
    int x = 0;
    const char *nx = st->utf8 ? "\u2016x\u2016" : "|x|";
    tui_draw_fmt(p->win, y, x, 40, A_NORMAL, "log scale %s %.3g ", nx, expf(st->lo));
    x = getcurx(p->win);
    for (int i = 0; i < TUI_RAMP; i++) {
        cchar_t cc;
        tui_ramp_cell(i, &cc);
        mvwadd_wch(p->win, y, x + i, &cc);
    }
    tui_draw_fmt(p->win, y, x + TUI_RAMP, 20, A_NORMAL, " %.3g", expf(st->hi));
    x = getcurx(p->win) + 3;
    int l = st->sel_layer, t = st->sel_token;
    if (l < st->layers && t < st->T)
        tui_draw_fmt(p->win, y, x, p->w - x, tui_attr(TUI_C_SERIES1), "layer %d token %d %s: %s = %.4g", l, t,
                     tui_token_name(st->text, st->grid, t, st->utf8), nx, expf(st->lognorm[l * st->T + t]));
}

static void heat_title(tui_panel *p, const heat_state *st)
{
    char title[192], what[96] = "";
    const char *nx = st->utf8 ? "\u2016x_{l,t}\u2016" : "|x_{l,t}|";
    if (st->grid)
        snprintf(what, sizeof what, " of test image %d (label %d, predicted %d)", st->image, st->label, st->pred);
    snprintf(title, sizeof title, " token norms %s%s: layers x0..x%d down, %s across (step %ld) ", nx, what,
             st->layers - 1, !st->grid ? "tokens" : st->patch > 1 ? "patches" : "pixels", st->step);
    tui_draw_title(p->win, title);
}

static void heat_draw(tui_panel *p)
{
    heat_state *st = p->st;
    werase(p->win);
    heat_title(p, st);
    if (!st->ready) {
        tui_draw_text(p->win, 1, 1, p->w - 2, tui_attr(TUI_C_DIM), "measuring...");
        return;
    }
    int rows = p->h - 3 - (st->grid > 0), cols = p->w - LABEL_W - 1;
    if (rows < 1 || cols < 1) return;
    if (rows > st->layers) rows = st->layers;
    st->row0 = tui_scroll_first(st->sel_layer, rows, st->layers);
    st->col0 = tui_scroll_first(st->sel_token, cols, st->T);
    draw_cells(p, st, rows, cols);
    draw_labels(p, st, 1 + rows, cols);
    draw_legend(p, st, 2 + rows + (st->grid > 0));
}

static int heat_click(tui_panel *p, int y, int x, int *layer, int *token)
{
    heat_state *st = p->st;
    int fit = p->h - 3 - (st->grid > 0), rows = fit < st->layers ? fit : st->layers;
    int t = st->col0 + x - LABEL_W;
    if (!st->ready || x < LABEL_W || t >= st->T || y < 1 || y > rows + 1 + (st->grid > 0)) return 0;
    *token = t;
    if (y <= rows) *layer = st->row0 + y - 1;
    return 1;
}

const tui_panel_class tui_panel_heatmap_class = {
    .name = "heatmap", .state_size = sizeof(heat_state), .update = heat_update, .draw = heat_draw, .click = heat_click,
};
