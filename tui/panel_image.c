/* panel_image.c — an image classifier's inspected test image as a 2-D
 * picture (grey levels on the heat ramp, two pixel rows per terminal row,
 * scaled to the panel), its label and the predicted class by name
 * (Fashion-MNIST, CIFAR-10; the class number otherwise), the selected
 * token's patch marked; beside it, when there is room, the token norms of
 * the selected residual row on the patch grid.  Clicks on either select
 * the token under them. */
#include <math.h>
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

typedef struct {
    int ok, utf8, rows, cols, grid, T, sel, layer;
    tui_image_info img;
    unsigned char pixels[SSM_SNAP_PIXELS];   /* (rows, cols) grey levels */
    float lognorm[SSM_SNAP_MAX_T];           /* the selected row's log norms */
    float lo, hi;
    double f;                                /* image pixels per cell column (two rows: 2f) */
    int ncol, nrow, gx;                      /* the picture's cells, the grid's column (0: none) */
} image_state;

static void image_update(tui_panel *p, const tui_view *v)
{
    image_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ok = s->ready && s->images && s->img_rows > 0 && s->measured_step >= 0 && s->grid_cols > 0;
    st->utf8 = v->utf8;
    if (!st->ok) return;
    st->rows = s->img_rows;
    st->cols = s->img_cols;
    st->grid = s->grid_cols;
    st->T = s->T;
    st->sel = v->token;
    st->layer = v->layer;
    tui_image_info_set(&st->img, s);
    memcpy(st->pixels, s->pixels, (size_t)st->rows * st->cols);
    st->lo = INFINITY;
    st->hi = -INFINITY;
    for (int t = 0; t < st->T; t++) {
        float l = logf(fmaxf(s->norms[(size_t)st->layer * s->T + t], 1e-30f));
        st->lognorm[t] = l;
        st->lo = fminf(st->lo, l);
        st->hi = fmaxf(st->hi, l);
    }
}

/* The token whose patch holds pixel (py, px). */
static int pixel_token(const image_state *st, int py, int px)
{
    int t = py / st->img.patch * st->grid + px / st->img.patch;
    return t < st->T ? t : st->T - 1;
}

/* The mean grey level of cell (r, c); *token the token at its centre. */
static int cell_grey(const image_state *st, int r, int c, int *token)
{
    int y0 = (int)(r * 2 * st->f), y1 = (int)((r + 1) * 2 * st->f), x0 = (int)(c * st->f), x1 = (int)((c + 1) * st->f);
    if (y1 <= y0) y1 = y0 + 1;
    if (x1 <= x0) x1 = x0 + 1;
    int sum = 0, n = 0;
    for (int y = y0; y < y1 && y < st->rows; y++)
        for (int x = x0; x < x1 && x < st->cols; x++, n++) sum += st->pixels[y * st->cols + x];
    *token = pixel_token(st, (y0 + y1) / 2 < st->rows ? (y0 + y1) / 2 : st->rows - 1,
                         (x0 + x1) / 2 < st->cols ? (x0 + x1) / 2 : st->cols - 1);
    return n ? sum / n : 0;
}

static void mark_cell(const image_state *st, cchar_t *cc)
{
    wchar_t m[2] = {st->utf8 ? L'\u2592' : L'#', 0};
    setcchar(cc, m, tui_attr(TUI_C_SELECT) & ~A_COLOR, tui_pair(TUI_C_SELECT), NULL);
}

static void draw_picture(tui_panel *p, const image_state *st)
{
    for (int r = 0; r < st->nrow; r++)
        for (int c = 0; c < st->ncol; c++) {
            int t, g = cell_grey(st, r, c, &t);
            cchar_t cc;
            if (t == st->sel) mark_cell(st, &cc);
            else tui_ramp_cell(tui_ramp_index(g, 0, 255), &cc);
            mvwadd_wch(p->win, 1 + r, c, &cc);
        }
}

/* The selected row's norms, two columns a token, on the patch grid. */
static void draw_grid(tui_panel *p, const image_state *st)
{
    int grows = (st->T + st->grid - 1) / st->grid;
    for (int t = 0; t < st->T && 1 + t / st->grid < p->h - 1; t++) {
        cchar_t cc;
        if (t == st->sel) mark_cell(st, &cc);
        else tui_ramp_cell(tui_ramp_index(st->lognorm[t], st->lo, st->hi), &cc);
        for (int k = 0; k < 2; k++) mvwadd_wch(p->win, 1 + t / st->grid, st->gx + 2 * (t % st->grid) + k, &cc);
    }
    char what[32];
    snprintf(what, sizeof what, "%sx%d%s", st->utf8 ? "\u2016" : "|", st->layer, st->utf8 ? "\u2016" : "|");
    if (1 + grows < p->h - 1) tui_draw_fit(p->win, 1 + grows, st->gx, p->w - st->gx, tui_attr(TUI_C_DIM), what);
}

static void layout_picture(tui_panel *p, image_state *st)
{
    int R = p->h - 2, gw = 2 * st->grid + 2, C = p->w - gw >= 8 ? p->w - gw : p->w;
    st->gx = C < p->w ? C + 2 : 0;
    st->f = fmax(fmax((double)st->cols / C, st->rows / (2.0 * R)), 0.25);   /* at most 4 cells a pixel */
    st->ncol = (int)(st->cols / st->f);
    st->nrow = (int)(st->rows / (2 * st->f));
    if (st->gx) st->gx = st->ncol + 2;
}

static void image_draw(tui_panel *p)
{
    image_state *st = p->st;
    werase(p->win);
    char t[2][96], cap[3][96];
    snprintf(t[0], sizeof t[0], " test image %d ", st->img.index);
    snprintf(t[1], sizeof t[1], " image ");
    const char *titles[2] = {t[0], t[1]};
    tui_panel_title(p, 2, titles);
    if (!st->ok || p->h < 4 || p->w < 4) return;
    layout_picture(p, st);
    draw_picture(p, st);
    if (st->gx) draw_grid(p, st);
    const tui_image_info *im = &st->img;
    const char *ln = im->label_name, *pn = im->pred_name, *arrow = st->utf8 ? "\u2192" : "->";
    snprintf(cap[0], sizeof cap[0], "label %d%s%s, predicted %d%s%s", im->label, ln[0] ? " " : "", ln, im->pred,
             pn[0] ? " " : "", pn);
    snprintf(cap[1], sizeof cap[1], "%s %s %s", ln, arrow, pn);
    snprintf(cap[2], sizeof cap[2], "%d %s %d", im->label, arrow, im->pred);
    const char *caps[3] = {cap[0], ln[0] && pn[0] ? cap[1] : NULL, cap[2]};
    tui_draw_first(p->win, p->h - 1, 0, p->w, im->label == im->pred ? tui_attr(TUI_C_GOOD) : tui_attr(TUI_C_BAD), 3, caps);
}

static int image_click(tui_panel *p, int y, int x, int *layer, int *token)
{
    image_state *st = p->st;
    (void)layer;
    if (!st->ok || y < 1) return 0;
    if (x < st->ncol && y - 1 < st->nrow) {
        int t;
        cell_grey(st, y - 1, x, &t);
        *token = t;
        return 1;
    }
    int t = (y - 1) * st->grid + (x - st->gx) / 2;
    if (!st->gx || x < st->gx || (x - st->gx) / 2 >= st->grid || t >= st->T) return 0;
    *token = t;
    (void)p;
    return 1;
}

const tui_panel_class tui_panel_image_class = {
    .name = "image", .state_size = sizeof(image_state), .update = image_update, .draw = image_draw, .click = image_click,
};
