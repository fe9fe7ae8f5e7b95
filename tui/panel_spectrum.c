/* panel_spectrum.c — the eigenvalue signs of S_B S_C^T per layer (ssmlab-math(7) DYNAMICS):
 * counts of positive, negative and complex eigenvalues, the layer's class,
 * and one sign character per eigenvalue. */
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"
#include "engine/dynamics.h"

typedef struct {
    int ok, n_layer, N, sel;
    int n_pos[SSM_SNAP_MAX_LAYER], n_neg[SSM_SNAP_MAX_LAYER], n_cplx[SSM_SNAP_MAX_LAYER];
    int cls[SSM_SNAP_MAX_LAYER];
    char signs[SSM_SNAP_MAX_LAYER][SSM_SNAP_MAX_N + 1];
    int utf8;
} spec_state;

static void spec_update(tui_panel *p, const tui_view *v)
{
    spec_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ok = s->ready && s->spec_ok;
    st->n_layer = s->n_layer < SSM_SNAP_MAX_LAYER ? s->n_layer : SSM_SNAP_MAX_LAYER;
    st->N = s->spec_N;
    st->sel = v->layer < 1 ? 1 : v->layer;
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
    tui_draw_title(p->win, st->utf8 ? " eigenvalues of S_B S_C\u1d40 " : " eigenvalues of S_B S_C^T ");
    if (!st->ok) return;
    int rows = p->h - 2, first = 0;
    if (st->n_layer > rows && st->sel > rows) first = st->sel - rows;
    for (int r = 0; r < rows && first + r < st->n_layer; r++) {
        int l = first + r, y = 1 + r;
        attr_t la = l + 1 == st->sel ? tui_attr(TUI_C_SELECT) : A_NORMAL;
        tui_draw_fmt(p->win, y, 0, 4, la, "L%-2d", l + 1);
        tui_draw_fmt(p->win, y, 4, 9, tui_attr(class_role(st->cls[l])), "%-8s", ssm_spectrum_class_name(st->cls[l]));
        tui_draw_fmt(p->win, y, 13, 15, A_NORMAL, "+%d -%d ~%d", st->n_pos[l], st->n_neg[l], st->n_cplx[l]);
        tui_draw_text(p->win, y, 28, p->w - 28, tui_attr(TUI_C_DIM), st->signs[l]);
    }
    tui_draw_text(p->win, p->h - 1, 0, p->w, tui_attr(TUI_C_DIM), "+ pos  - neg  ~ complex  0 zero");
}

const tui_panel_class tui_panel_spectrum_class = {
    .name = "spectrum", .state_size = sizeof(spec_state), .update = spec_update, .draw = spec_draw,
};
