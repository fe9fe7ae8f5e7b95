/* panel_heatmap.c — token norms ||x_{l,t}|| of the inspected input as a
 * heatmap: residual rows x0..xn as rows, tokens as columns as wide as
 * their labels (the text's characters, a tokenizer's token strings with
 * visible spaces, token ids) or, for an image, the patch (or pixel) row
 * and column indices (mod 10, on two lines); a log colour scale with its
 * legend, scrolling to keep the selected cell in view; clicks select a
 * cell. */
#include <math.h>
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

#define LABEL_W 4

typedef struct {
    int ready, layers, sel_layer, sel_token, utf8;
    tui_image_info img;   /* images: the test image */
    long step;
    float lognorm[(SSM_SNAP_MAX_LAYER + 1) * SSM_SNAP_MAX_T];   /* (layers, T) */
    float lo, hi;
    tui_tokens tok;
    int row0, col0, ncols;   /* first layer and token shown, tokens shown (from the last draw) */
} heat_state;

static void heat_update(tui_panel *p, const tui_view *v)
{
    heat_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ready = s->ready && s->measured_step >= 0;
    st->layers = (s->n_layer < SSM_SNAP_MAX_LAYER ? s->n_layer : SSM_SNAP_MAX_LAYER) + 1;
    st->sel_layer = v->layer;
    st->sel_token = v->token;
    st->utf8 = v->utf8;
    st->step = s->measured_step;
    tui_image_info_set(&st->img, s);
    tui_tokens_set(&st->tok, s, v->utf8);
    st->lo = INFINITY;
    st->hi = -INFINITY;
    for (int i = 0; i < st->layers * st->tok.T; i++) {
        float l = logf(fmaxf(s->norms[i], 1e-30f));
        st->lognorm[i] = l;
        st->lo = fminf(st->lo, l);
        st->hi = fmaxf(st->hi, l);
    }
}

static void draw_cells(tui_panel *p, heat_state *st, int rows)
{
    for (int r = 0; r < rows && st->row0 + r < st->layers; r++) {
        int l = st->row0 + r, x = LABEL_W;
        attr_t la = l == st->sel_layer ? tui_attr(TUI_C_SELECT) : tui_attr(TUI_C_DIM);
        tui_draw_fmt(p->win, 1 + r, 0, LABEL_W - 1, la, "x%-2d", l);
        for (int t = st->col0; t < st->col0 + st->ncols; x += st->tok.w[t++]) {
            cchar_t cc, mark;
            tui_ramp_cell(tui_ramp_index(st->lognorm[l * st->tok.T + t], st->lo, st->hi), &cc);
            wchar_t m[2] = {st->utf8 ? L'\u25c6' : L'#', 0};
            setcchar(&mark, m, tui_attr(TUI_C_SELECT) & ~A_COLOR, tui_pair(TUI_C_SELECT), NULL);
            for (int k = 0; k < st->tok.w[t]; k++)
                mvwadd_wch(p->win, 1 + r, x + k, l == st->sel_layer && t == st->sel_token && !k ? &mark : &cc);
        }
    }
}

/* Image tokens: their grid row and column (mod 10) on two lines. */
static void draw_grid_labels(tui_panel *p, heat_state *st, int y)
{
    int g = st->tok.grid;
    tui_draw_text(p->win, y, 0, LABEL_W - 1, tui_attr(TUI_C_DIM), "y");
    tui_draw_text(p->win, y + 1, 0, LABEL_W - 1, tui_attr(TUI_C_DIM), "x");
    for (int c = 0; c < st->ncols; c++) {
        int t = st->col0 + c;
        attr_t a = t == st->sel_token ? tui_attr(TUI_C_SELECT) : t / g % 2 ? tui_attr(TUI_C_DIM) : A_NORMAL;
        tui_draw_fmt(p->win, y, LABEL_W + c, 1, a, "%d", t / g % 10);
        tui_draw_fmt(p->win, y + 1, LABEL_W + c, 1, t == st->sel_token ? a : A_NORMAL, "%d", t % g % 10);
    }
}

static void draw_scroll_marks(tui_panel *p, heat_state *st, int y, int cols)
{
    if (st->col0 > 0) tui_draw_text(p->win, y, LABEL_W - 1, 1, tui_attr(TUI_C_DIM), "<");
    if (st->col0 + st->ncols < st->tok.T) tui_draw_text(p->win, y, LABEL_W + cols, 1, tui_attr(TUI_C_DIM), ">");
}

static void draw_legend(tui_panel *p, heat_state *st, int y)
{
    const char *nx = st->utf8 ? "\u2016x\u2016" : "|x|";
    char lo[48], hi[24], sel[160];
    snprintf(lo, sizeof lo, "log scale %s %.3g ", nx, expf(st->lo));
    snprintf(hi, sizeof hi, " %.3g", expf(st->hi));
    int x = tui_draw_fit(p->win, y, 0, p->w, A_NORMAL, lo);
    if (x < 0) x = 0;
    for (int i = 0; i < TUI_RAMP && x + i < p->w; i++) {
        cchar_t cc;
        tui_ramp_cell(i, &cc);
        mvwadd_wch(p->win, y, x + i, &cc);
    }
    x = tui_draw_fit(p->win, y, x + TUI_RAMP, p->w, A_NORMAL, hi);
    int l = st->sel_layer, t = st->sel_token;
    if (x < 0 || l >= st->layers || t >= st->tok.T) return;
    snprintf(sel, sizeof sel, "x%d token %d %s: %s = %.4g", l, t, tui_token_name(&st->tok, t), nx,
             expf(st->lognorm[l * st->tok.T + t]));
    tui_draw_fit(p->win, y, x + 3, p->w - x - 3, tui_attr(TUI_C_SERIES1), sel);
}

static void heat_title(tui_panel *p, const heat_state *st)
{
    char t[3][256], what[2][128] = {"", ""};
    const char *nx = st->utf8 ? "\u2016x_{l,t}\u2016" : "|x_{l,t}|", *across = !st->tok.grid ? "tokens"
                                                                          : st->img.patch > 1 ? "patches" : "pixels";
    const tui_image_info *im = &st->img;
    if (st->tok.grid) {
        snprintf(what[0], sizeof what[0], " of test image %d (label %d%s%s, predicted %d%s%s)", im->index, im->label,
                 im->label_name[0] ? " " : "", im->label_name, im->pred, im->pred_name[0] ? " " : "", im->pred_name);
        if (im->label_name[0] && im->pred_name[0])
            snprintf(what[1], sizeof what[1], " of image %d (%s, predicted %s)", im->index, im->label_name, im->pred_name);
        else snprintf(what[1], sizeof what[1], " of image %d (label %d, predicted %d)", im->index, im->label, im->pred);
    }
    snprintf(t[0], sizeof t[0], " token norms %s%s: layers x0..x%d down, %s across (step %ld) ", nx, what[0],
             st->layers - 1, across, st->step);
    snprintf(t[1], sizeof t[1], " token norms %s%s: x0..x%d down (step %ld) ", nx, what[1], st->layers - 1, st->step);
    snprintf(t[2], sizeof t[2], " token norms%s ", what[1]);
    const char *titles[3] = {t[0], t[1], t[2]};
    tui_panel_title(p, 3, titles);
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
    int grid = st->tok.grid > 0, rows = p->h - 3 - grid, cols = p->w - LABEL_W - 1;
    if (rows < 1 || cols < 1) return;
    if (rows > st->layers) rows = st->layers;
    st->row0 = tui_scroll_first(st->sel_layer, rows, st->layers);
    st->ncols = tui_tokens_fit(&st->tok, st->sel_token, cols, 0, &st->col0);
    draw_cells(p, st, rows);
    if (grid) draw_grid_labels(p, st, 1 + rows);
    else tui_tokens_draw(p->win, 1 + rows, LABEL_W, &st->tok, st->col0, st->ncols, st->sel_token);
    draw_scroll_marks(p, st, 1 + rows + grid, cols);
    draw_legend(p, st, 2 + rows + grid);
}

static int heat_click(tui_panel *p, int y, int x, int *layer, int *token)
{
    heat_state *st = p->st;
    int grid = st->tok.grid > 0, fit = p->h - 3 - grid, rows = fit < st->layers ? fit : st->layers;
    int t = tui_tokens_at(&st->tok, st->col0, st->ncols, x - LABEL_W);
    if (!st->ready || x < LABEL_W || t < 0 || y < 1 || y > rows + 1 + grid) return 0;
    *token = t;
    if (y <= rows) *layer = st->row0 + y - 1;
    return 1;
}

const tui_panel_class tui_panel_heatmap_class = {
    .name = "heatmap", .state_size = sizeof(heat_state), .update = heat_update, .draw = heat_draw, .click = heat_click,
};
