/* panel_depth.c — the depth curve: log ||x_l|| over layers l = 0..n of the
 * selected token and the geometric mean over tokens, with the log-norm
 * slopes and the converging/diverging verdict (engine/dynamics.h rule). */
#include <math.h>
#include <string.h>

#include "tui/app.h"
#include "engine/dynamics.h"
#include "tui/plot.h"

#define AXIS_W 8

typedef struct {
    int ready, layers, token, utf8;
    char name[64];   /* the selected token's name */
    double tok[SSM_SNAP_MAX_LAYER + 1], mean[SSM_SNAP_MAX_LAYER + 1];   /* log norms */
    double lo, hi;
    float slope, mean_slope;
    int verdict;
    tui_canvas canvas;
} depth_state;

static const char *token_verdict(float s)
{
    return s > SSM_VERDICT_TAU ? "diverging" : s < -SSM_VERDICT_TAU ? "converging" : "flat";
}

static void depth_series(depth_state *st, const ssm_snapshot *s)
{
    int T = s->T;
    st->lo = INFINITY;
    st->hi = -INFINITY;
    for (int l = 0; l < st->layers; l++) {
        double sum = 0;
        for (int t = 0; t < T; t++) sum += log(fmax(s->norms[l * T + t], 1e-30));
        st->mean[l] = sum / T;
        st->tok[l] = log(fmax(s->norms[l * T + st->token], 1e-30));
        st->lo = fmin(st->lo, fmin(st->mean[l], st->tok[l]));
        st->hi = fmax(st->hi, fmax(st->mean[l], st->tok[l]));
    }
    if (st->hi - st->lo < 1e-3) {
        st->lo -= 0.5;
        st->hi += 0.5;
    }
}

static void depth_update(tui_panel *p, const tui_view *v)
{
    depth_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ready = s->ready && s->measured_step >= 0 && s->T > 0;
    st->utf8 = v->utf8;
    if (!st->ready) return;
    st->layers = (s->n_layer < SSM_SNAP_MAX_LAYER ? s->n_layer : SSM_SNAP_MAX_LAYER) + 1;
    st->token = v->token < s->T ? v->token : s->T - 1;
    char vis[48];
    tui_token_visible(s->label[st->token], v->utf8, vis, sizeof vis);
    if (s->images) snprintf(st->name, sizeof st->name, "%s", s->label[st->token]);
    else snprintf(st->name, sizeof st->name, "'%s'", vis);
    st->slope = s->slopes[st->token];
    st->mean_slope = s->mean_slope;
    st->verdict = s->verdict;
    depth_series(st, s);
    tui_canvas_init(&st->canvas, v->plot_mode, p->w - AXIS_W, p->h - 4);
    double xs[SSM_SNAP_MAX_LAYER + 1];
    for (int l = 0; l < st->layers; l++) xs[l] = l;
    double xhi = st->layers > 1 ? st->layers - 1 : 1;
    tui_canvas_series(&st->canvas, xs, st->mean, st->layers, 0, xhi, st->lo, st->hi, 0, 1);
    tui_canvas_series(&st->canvas, xs, st->tok, st->layers, 0, xhi, st->lo, st->hi, 1, 1);
}

/* "token +0.1234/layer: converging", shorter where it does not fit. */
static void verdict_line(tui_panel *p, int y, attr_t a, const char *who, float slope, const char *verdict)
{
    char v[3][96];
    snprintf(v[0], sizeof v[0], "%s %+.4f/layer: %s", who, slope, verdict);
    snprintf(v[1], sizeof v[1], "%s %+.3f %s", who, slope, verdict);
    snprintf(v[2], sizeof v[2], "%+.3f %s", slope, verdict);
    const char *lines[3] = {v[0], v[1], v[2]};
    tui_draw_first(p->win, y, 0, p->w, a, 3, lines);
}

static void depth_draw(tui_panel *p)
{
    depth_state *st = p->st;
    werase(p->win);
    const char *nx = st->utf8 ? "\u2016x_l\u2016" : "|x_l|";
    char t[3][128];
    snprintf(t[0], sizeof t[0], " depth %s: token %d %s and mean ", nx, st->token, st->ready ? st->name : "");
    snprintf(t[1], sizeof t[1], " depth: token %d %s ", st->token, st->ready ? st->name : "");
    snprintf(t[2], sizeof t[2], " depth ");
    const char *titles[3] = {t[0], t[1], t[2]};
    tui_panel_title(p, 3, titles);
    if (!st->ready || p->h < 6) return;
    static const tui_role roles[] = {TUI_C_SERIES2, TUI_C_SERIES1};
    int bottom = p->h - 4, cw = p->w - AXIS_W;
    tui_draw_number(p->win, 1, 0, AXIS_W - 1, tui_attr(TUI_C_DIM), exp(st->hi));
    tui_draw_number(p->win, bottom, 0, AXIS_W - 1, tui_attr(TUI_C_DIM), exp(st->lo));
    tui_canvas_draw(&st->canvas, p->win, 1, AXIS_W, roles);
    tui_draw_text(p->win, p->h - 3, AXIS_W, 3, tui_attr(TUI_C_DIM), "x0");
    tui_draw_text(p->win, p->h - 3, AXIS_W + cw / 2 - 2, 5, tui_attr(TUI_C_DIM), "layer");
    tui_draw_fmt(p->win, p->h - 3, p->w - 3, 3, tui_attr(TUI_C_DIM), "x%d", st->layers - 1);
    tui_role vr = st->verdict == SSM_VERDICT_DIVERGING ? TUI_C_BAD
                : st->verdict == SSM_VERDICT_CONVERGING ? TUI_C_GOOD : TUI_C_NORMAL;
    verdict_line(p, p->h - 2, tui_attr(TUI_C_SERIES1), "token", st->slope, token_verdict(st->slope));
    verdict_line(p, p->h - 1, tui_attr(vr), "mean ", st->mean_slope, ssm_verdict_name(st->verdict));
}

const tui_panel_class tui_panel_depth_class = {
    .name = "depth", .state_size = sizeof(depth_state), .update = depth_update, .draw = depth_draw,
};
