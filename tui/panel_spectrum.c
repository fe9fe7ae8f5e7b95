/* panel_spectrum.c — the eigenvalue signs of S_B S_C^T per layer (ssmlab-math(7) DYNAMICS),
 * layers L0.. counted as ssmlab inspect counts them: counts of positive,
 * negative and complex eigenvalues, the layer's class, and one sign
 * character per eigenvalue (an ellipsis where they do not all fit). */
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
    const char *titles[2] = {st->utf8 ? " eigenvalues of S_B S_C\u1d40 " : " eigenvalues of S_B S_C^T ", " eigenvalues "};
    tui_panel_title(p, 2, titles);
    if (!st->ok) return;
    int rows = p->h - 2, first = tui_scroll_first(st->sel, rows, st->n_layer);
    for (int r = 0; r < rows && first + r < st->n_layer; r++) {
        int l = first + r, y = 1 + r;
        attr_t la = l == st->sel ? tui_attr(TUI_C_SELECT) : A_NORMAL;
        tui_draw_fmt(p->win, y, 0, 4, la, "L%-2d", l);
        tui_draw_fmt(p->win, y, 4, 9, tui_attr(class_role(st->cls[l])), "%-8s", ssm_spectrum_class_name(st->cls[l]));
        int x = tui_draw_fmt_fit(p->win, y, 13, p->w - 13, A_NORMAL, "+%d -%d ~%d ", st->n_pos[l], st->n_neg[l],
                                 st->n_cplx[l]);
        if (x < 0) continue;
        if (x < 28 && p->w >= 28 + (int)strlen(st->signs[l])) x = 28;   /* aligned when there is room */
        if ((int)strlen(st->signs[l]) <= p->w - x) tui_draw_text(p->win, y, x, p->w - x, tui_attr(TUI_C_DIM), st->signs[l]);
        else tui_draw_fmt(p->win, y, x, p->w - x, tui_attr(TUI_C_DIM), "%.*s%s", p->w - x - 1 > 0 ? p->w - x - 1 : 0,
                          st->signs[l], st->utf8 ? "\u2026" : ">");
    }
    const char *keys[2] = {"+ pos  - neg  ~ complex  0 zero", "+pos -neg ~cplx 0zero"};
    tui_draw_first(p->win, p->h - 1, 0, p->w, tui_attr(TUI_C_DIM), 2, keys);
}

const tui_panel_class tui_panel_spectrum_class = {
    .name = "spectrum", .state_size = sizeof(spec_state), .update = spec_update, .draw = spec_draw,
};
