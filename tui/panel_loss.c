/* panel_loss.c — training loss and validation loss against steps, with a
 * baseline as a reference line: the unigram loss of a language model's
 * validation split, or chance (ln C) for a classifier, whose training and
 * validation accuracies are shown too. */
#include <math.h>
#include <string.h>

#include "tui/app.h"
#include "tui/plot.h"

#define AXIS_W 7

typedef struct {
    int n, n_val, images;
    long last_step, val_step;
    double loss, val, baseline, lo, hi, acc, val_acc;
    tui_canvas canvas;
} loss_state;

static void loss_range(loss_state *st, const ssm_snapshot *s)
{
    st->lo = INFINITY;
    st->hi = -INFINITY;
    for (int i = 0; i < s->n_hist; i++) {
        st->lo = fmin(st->lo, s->hist_loss[i]);
        st->hi = fmax(st->hi, s->hist_loss[i]);
    }
    for (int i = 0; i < s->n_val; i++) {
        st->lo = fmin(st->lo, s->val_hist[i]);
        st->hi = fmax(st->hi, s->val_hist[i]);
    }
    if (isfinite(s->baseline)) {
        st->lo = fmin(st->lo, s->baseline);
        st->hi = fmax(st->hi, s->baseline);
    }
    if (!(st->hi - st->lo > 1e-6)) {
        st->lo -= 0.5;
        st->hi += 0.5;
    }
}

static void loss_plot(loss_state *st, const ssm_snapshot *s, double xhi)
{
    double xs[SSM_SNAP_HIST], ys[SSM_SNAP_HIST];
    if (isfinite(s->baseline)) {
        double ux[2] = {0, xhi}, uy[2] = {s->baseline, s->baseline};
        tui_canvas_series(&st->canvas, ux, uy, 2, 0, xhi, st->lo, st->hi, 0, 1);
    }
    for (int i = 0; i < s->n_hist; i++) {
        xs[i] = s->hist_step[i];
        ys[i] = s->hist_loss[i];
    }
    tui_canvas_series(&st->canvas, xs, ys, s->n_hist, 0, xhi, st->lo, st->hi, 1, 1);
    for (int i = 0; i < s->n_val; i++) {
        xs[i] = s->val_steps[i];
        ys[i] = s->val_hist[i];
    }
    tui_canvas_series(&st->canvas, xs, ys, s->n_val, 0, xhi, st->lo, st->hi, 2, 1);
}

static void loss_update(tui_panel *p, const tui_view *v)
{
    loss_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->n = s->n_hist;
    st->n_val = s->n_val;
    st->last_step = s->n_hist ? s->hist_step[s->n_hist - 1] : 0;
    st->loss = s->loss;
    st->val = s->val_loss;
    st->val_step = s->val_step;
    st->baseline = s->baseline;
    st->images = s->images;
    st->acc = s->acc;
    st->val_acc = s->val_acc;
    loss_range(st, s);
    double xhi = fmax(st->last_step, s->total_steps);
    tui_canvas_init(&st->canvas, v->plot_mode, p->w - AXIS_W, p->h - 3);
    loss_plot(st, s, xhi > 1 ? xhi : 1);
    st->last_step = (long)xhi;
}

/* "train 2.345 12%  val 2.456 10%  unigram 3.100": each piece whole (the
 * longer or the shorter form) or not at all, all three where they fit. */
static void loss_legend(tui_panel *p, const loss_state *st, int y)
{
    char tr[2][48], va[2][48], base[2][48];
    snprintf(tr[0], sizeof tr[0], isfinite(st->loss) ? "train %.3f" : "train -", st->loss);
    if (st->images && isfinite(st->acc)) snprintf(tr[0] + strlen(tr[0]), 16, " %.0f%%", 100 * st->acc);
    snprintf(tr[1], sizeof tr[1], isfinite(st->loss) ? "tr %.3f" : "tr -", st->loss);
    snprintf(va[0], sizeof va[0], st->val_step >= 0 ? "val %.3f" : "val -", st->val);
    if (st->images && st->val_step >= 0) snprintf(va[0] + strlen(va[0]), 16, " %.1f%%", 100 * st->val_acc);
    snprintf(va[1], sizeof va[1], st->val_step >= 0 ? "val %.3f" : "val -", st->val);
    snprintf(base[0], sizeof base[0], st->images ? "chance %.3f" : "unigram %.3f", st->baseline);
    snprintf(base[1], sizeof base[1], st->images ? "ch %.2f" : "uni %.2f", st->baseline);
    const char *pieces[3][2] = {{tr[0], tr[1]}, {va[0], va[1]}, {base[0], base[1]}};
    static const tui_role roles[3] = {TUI_C_SERIES1, TUI_C_SERIES2, TUI_C_SERIES3};
    /* the longest forms that fit together (the validation's accuracy kept
     * longest, the baseline shortest first), else each piece the first form
     * that fits */
    static const int levels[4][3] = {{0, 0, 0}, {0, 0, 1}, {1, 0, 1}, {1, 1, 1}};
    int lv = 0;
    while (lv < 4 && (int)(strlen(pieces[0][levels[lv][0]]) + strlen(pieces[1][levels[lv][1]]) +
                           strlen(pieces[2][levels[lv][2]]) + 4) > p->w)
        lv++;
    int x = 0;
    for (int i = 0; i < 3; i++) {
        const char *forms[2] = {lv < 4 ? pieces[i][levels[lv][i]] : pieces[i][0], pieces[i][1]};
        int after = tui_draw_first(p->win, y, x, p->w - x, tui_attr(roles[i]), 2, forms);
        if (after < 0) return;
        x = after + 2;
    }
}

static void loss_draw(tui_panel *p)
{
    loss_state *st = p->st;
    werase(p->win);
    const char *titles[2][2] = {{" loss, nats per byte ", " loss "}, {" loss (nats) and accuracy ", " loss, acc "}};
    tui_panel_title(p, 2, titles[st->images]);
    if (p->h < 5) return;
    static const tui_role roles[] = {TUI_C_SERIES3, TUI_C_SERIES1, TUI_C_SERIES2};
    tui_draw_number(p->win, 1, 0, AXIS_W - 1, tui_attr(TUI_C_DIM), st->hi);
    tui_draw_number(p->win, p->h - 3, 0, AXIS_W - 1, tui_attr(TUI_C_DIM), st->lo);
    tui_canvas_draw(&st->canvas, p->win, 1, AXIS_W, roles);
    tui_draw_fmt(p->win, p->h - 2, AXIS_W, p->w - AXIS_W, tui_attr(TUI_C_DIM), "0%*ld", p->w - AXIS_W - 1,
                 st->last_step);
    loss_legend(p, st, p->h - 1);
}

const tui_panel_class tui_panel_loss_class = {
    .name = "loss", .state_size = sizeof(loss_state), .update = loss_update, .draw = loss_draw,
};
