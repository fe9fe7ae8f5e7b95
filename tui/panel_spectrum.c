/* panel_spectrum.c — the eigenvalue signs of S_B S_C^T per layer (ssmlab-math(7) DYNAMICS),
 * layers L0.. counted as ssmlab inspect counts them, and for a Mamba-2
 * model one row per group of each layer, L0g0.. (ssmlab-math(7) MAMBA-2):
 * counts of positive, negative and complex eigenvalues, the row's class,
 * and one sign character per eigenvalue (an ellipsis where they do not all
 * fit). */
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"
#include "engine/dynamics.h"

typedef struct {
    int ok, rows, groups, N, sel, utf8;   /* row r: layer r / groups, group r % groups; sel: a layer */
    int n_pos[SSM_SNAP_SPEC_ROWS], n_neg[SSM_SNAP_SPEC_ROWS], n_cplx[SSM_SNAP_SPEC_ROWS];
    int cls[SSM_SNAP_SPEC_ROWS];
    char signs[SSM_SNAP_SPEC_ROWS][SSM_SNAP_MAX_N + 1];
} spec_state;

static void spec_update(tui_panel *p, const tui_view *v)
{
    spec_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ok = s->ready && s->spec_ok;
    st->rows = s->spec_rows;
    st->groups = s->spec_groups > 0 ? s->spec_groups : 1;
    st->N = s->spec_N;
    st->sel = tui_view_mixer(v->layer);
    st->utf8 = v->utf8;
    memcpy(st->n_pos, s->n_pos, sizeof st->n_pos);
    memcpy(st->n_neg, s->n_neg, sizeof st->n_neg);
    memcpy(st->n_cplx, s->n_cplx, sizeof st->n_cplx);
    memcpy(st->cls, s->cls, sizeof st->cls);
    memcpy(st->signs, s->signs, sizeof st->signs);
}

static tui_role class_role(int cls)
{
    return cls == SSM_SPECTRUM_POSITIVE ? TUI_C_BAD : cls == SSM_SPECTRUM_NEGATIVE ? TUI_C_GOOD
         : cls == SSM_SPECTRUM_MIXED ? TUI_C_SERIES1 : TUI_C_SERIES2;
}

static void spec_draw(tui_panel *p)
{
    spec_state *st = p->st;
    werase(p->win);
    int G = st->groups, lw = G > 1 ? 7 : 4;   /* "L12g3 " or "L12 " */
    const char *titles[3] = {st->utf8 ? " eigenvalues of S_B S_C\u1d40 " : " eigenvalues of S_B S_C^T ", " eigenvalues ", NULL};
    if (G > 1) {
        titles[0] = st->utf8 ? " eigenvalues of S_B S_C\u1d40 per group " : " eigenvalues of S_B S_C^T per group ";
        titles[1] = " eigenvalues per group ";
        titles[2] = " eigenvalues ";
    }
    tui_panel_title(p, G > 1 ? 3 : 2, titles);
    if (!st->ok) return;
    int rows = p->h - 2, first = tui_scroll_first(st->sel * G, rows, st->rows);
    if (G > 1 && st->sel * G + G - 1 >= first + rows) first = st->sel * G + G - rows;   /* the layer's groups in view */
    if (first < 0) first = 0;
    for (int r = 0; r < rows && first + r < st->rows; r++) {
        int row = first + r, l = row / G, y = 1 + r, x0 = lw + 9;
        attr_t la = l == st->sel ? tui_attr(TUI_C_SELECT) : A_NORMAL;
        if (G > 1) tui_draw_fmt(p->win, y, 0, lw, la, "L%dg%d", l, row % G);
        else tui_draw_fmt(p->win, y, 0, lw, la, "L%-2d", l);
        tui_draw_fmt(p->win, y, lw, 9, tui_attr(class_role(st->cls[row])), "%-8s", ssm_spectrum_class_name(st->cls[row]));
        int x = tui_draw_fmt_fit(p->win, y, x0, p->w - x0, A_NORMAL, "+%d -%d ~%d ", st->n_pos[row], st->n_neg[row],
                                 st->n_cplx[row]);
        if (x < 0) continue;
        int sw = (int)strlen(st->signs[row]);
        if (x < x0 + 15 && p->w >= x0 + 15 + sw) x = x0 + 15;   /* aligned when there is room */
        if (sw <= p->w - x) tui_draw_text(p->win, y, x, p->w - x, tui_attr(TUI_C_DIM), st->signs[row]);
        else tui_draw_fmt(p->win, y, x, p->w - x, tui_attr(TUI_C_DIM), "%.*s%s", p->w - x - 1 > 0 ? p->w - x - 1 : 0,
                          st->signs[row], st->utf8 ? "\u2026" : ">");
    }
    const char *keys[2] = {"+ pos  - neg  ~ complex  0 zero", "+pos -neg ~cplx 0zero"};
    tui_draw_first(p->win, p->h - 1, 0, p->w, tui_attr(TUI_C_DIM), 2, keys);
}

const tui_panel_class tui_panel_spectrum_class = {
    .name = "spectrum", .state_size = sizeof(spec_state), .update = spec_update, .draw = spec_draw,
};
