/* panel_depth.c — the depth curve: log ||x_l|| over layers l = 0..n of the
 * selected token and the geometric mean over tokens; when the view asks
 * for it (the flow key), beside it the flow of the selected layer, log
 * ||x_i(t)|| over flow time t of the same token and the mean.  Below, the
 * three named verdicts of ssmlab inspect's verdicts table: residual, mixer
 * and flow, each with its slope and R^2 (engine/dynamics.h, engine/flow.h). */
#include <math.h>
#include <string.h>

#include "tui/app.h"
#include "engine/dynamics.h"
#include "engine/flow.h"
#include "tui/plot.h"

#define AXIS_W 8
#define NVERDICT 3   /* residual, mixer, flow */
#define CURVE_MAX (SSM_SNAP_FLOW_T > SSM_SNAP_MAX_LAYER ? SSM_SNAP_FLOW_T + 1 : SSM_SNAP_MAX_LAYER + 1)

/* One plot: the selected token's and the mean's log norms against x. */
typedef struct {
    int n;
    double x[CURVE_MAX], tok[CURVE_MAX], mean[CURVE_MAX];
    double lo, hi;
} depth_curve;

/* One named verdict as shown. */
typedef struct {
    const char *who, *unit;   /* "residual", "layer" */
    const char *verdict;      /* NULL: not measured, note says why */
    float slope, r2;
    tui_role role;
    char note[96];
} depth_verdict;

typedef struct {
    int ready, flow_view, layers, token, utf8, flow_layer;
    char name[64];   /* the selected token's name */
    depth_curve depth, flow;
    float slope;     /* the token's residual slope */
    depth_verdict v[NVERDICT];
    tui_canvas canvas, fcanvas;
} depth_state;

static const char *token_verdict(float s)
{
    return s > SSM_VERDICT_TAU ? "diverging" : s < -SSM_VERDICT_TAU ? "converging" : "flat";
}

/* Rows (n, T) of norms, x_k = k dx: the token's and the mean's log norms.
 * A NaN norm (a flow stopped early) leaves its point out. */
static void curve_fill(depth_curve *c, const float *rows, int n, int T, int token, double dx)
{
    c->n = n;
    c->lo = INFINITY;
    c->hi = -INFINITY;
    for (int k = 0; k < n; k++) {
        double sum = 0;
        for (int t = 0; t < T; t++) sum += log(fmax(rows[(size_t)k * T + t], 1e-30));
        c->x[k] = k * dx;
        c->mean[k] = sum / T;
        c->tok[k] = log(fmax(rows[(size_t)k * T + token], 1e-30));
        c->lo = fmin(c->lo, fmin(c->mean[k], c->tok[k]));
        c->hi = fmax(c->hi, fmax(c->mean[k], c->tok[k]));
    }
    if (!(c->hi - c->lo >= 1e-3)) {
        c->lo = isfinite(c->lo) ? c->lo - 0.5 : -0.5;
        c->hi = isfinite(c->hi) ? c->hi + 0.5 : 0.5;
    }
}

static void curve_plot(tui_canvas *cv, const depth_curve *c, int mode, int w, int h)
{
    tui_canvas_init(cv, mode, w, h);
    double xhi = c->n > 1 ? c->x[c->n - 1] : 1;
    tui_canvas_series(cv, c->x, c->mean, c->n, 0, xhi, c->lo, c->hi, 0, 1);
    tui_canvas_series(cv, c->x, c->tok, c->n, 0, xhi, c->lo, c->hi, 1, 1);
}

static tui_role verdict_role(int diverging, int converging)
{
    return diverging ? TUI_C_BAD : converging ? TUI_C_GOOD : TUI_C_NORMAL;
}

static depth_verdict verdict_make(const char *who, const char *unit, const char *verdict, float slope, float r2,
                                  tui_role role)
{
    return (depth_verdict){.who = who, .unit = unit, .verdict = verdict, .slope = slope, .r2 = r2, .role = role};
}

/* The residual, mixer and flow verdicts of the snapshot. */
static void verdicts_set(depth_state *st, const ssm_snapshot *s)
{
    st->v[0] = verdict_make("residual", "layer", ssm_verdict_name(s->verdict), s->mean_slope, s->r2,
                            verdict_role(s->verdict == SSM_VERDICT_DIVERGING, s->verdict == SSM_VERDICT_CONVERGING));
    st->v[1] = verdict_make("mixer", "layer", ssm_verdict_name(s->mix_verdict), s->mix_slope, s->mix_r2,
                            verdict_role(s->mix_verdict == SSM_VERDICT_DIVERGING,
                                         s->mix_verdict == SSM_VERDICT_CONVERGING));
    st->v[2] = verdict_make("flow", "t", s->flow_ok ? ssm_flow_verdict_name(s->flow_verdict) : NULL, s->flow_rate,
                            s->flow_r2, verdict_role(s->flow_verdict == SSM_FLOW_DIVERGING,
                                                     s->flow_verdict == SSM_FLOW_CONVERGING));
    if (!s->flow_ok) {
        st->v[2].role = TUI_C_DIM;
        snprintf(st->v[2].note, sizeof st->v[2].note, "%s", s->flow_note[0] ? s->flow_note : "measuring...");
    }
}

static void depth_update(tui_panel *p, const tui_view *v)
{
    depth_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    st->ready = s->ready && s->measured_step >= 0 && s->T > 0;
    st->utf8 = v->utf8;
    st->flow_view = v->depth_flow;
    if (!st->ready) return;
    st->layers = (s->n_layer < SSM_SNAP_MAX_LAYER ? s->n_layer : SSM_SNAP_MAX_LAYER) + 1;
    st->token = v->token < s->T ? v->token : s->T - 1;
    char vis[48];
    tui_token_visible(s->label[st->token], v->utf8, vis, sizeof vis);
    if (s->images) snprintf(st->name, sizeof st->name, "%s", s->label[st->token]);
    else snprintf(st->name, sizeof st->name, "'%s'", vis);
    st->slope = s->slopes[st->token];
    verdicts_set(st, s);
    st->flow_layer = s->flow_layer;
    curve_fill(&st->depth, s->norms, st->layers, s->T, st->token, 1.0);
    int ch = p->h - 2 - NVERDICT - (p->h >= 9), cw = p->w - AXIS_W;
    if (st->flow_view) cw = (p->w - 2 * AXIS_W) / 2;   /* the flow, or why there is none, on the right */
    if (st->flow_view && s->flow_ok) {
        curve_fill(&st->flow, s->flow_norms, s->flow_steps + 1, s->T, st->token, s->flow_h);
        curve_plot(&st->fcanvas, &st->flow, v->plot_mode, p->w - 2 * AXIS_W - cw, ch);
    }
    curve_plot(&st->canvas, &st->depth, v->plot_mode, cw, ch);
}

/* "residual +0.1234/layer R^2 0.98: diverging", shorter where it does not fit. */
static void verdict_line(tui_panel *p, int y, const depth_verdict *v)
{
    char s[4][112];
    const char *lines[4] = {s[0], s[1], s[2], s[3]};
    if (!v->verdict) {
        snprintf(s[0], sizeof s[0], "%s: %s", v->who, v->note);
        snprintf(s[1], sizeof s[1], "%s: -", v->who);
        tui_draw_first(p->win, y, 0, p->w, tui_attr(v->role), 2, lines);
        return;
    }
    snprintf(s[0], sizeof s[0], "%s %+.4f/%s R^2 %.2f: %s", v->who, v->slope, v->unit, v->r2, v->verdict);
    snprintf(s[1], sizeof s[1], "%s %+.3f R2 %.2f %s", v->who, v->slope, v->r2, v->verdict);
    snprintf(s[2], sizeof s[2], "%s %+.2g %s", v->who, v->slope, v->verdict);
    snprintf(s[3], sizeof s[3], "%s %s", v->who, v->verdict);
    int first = isnan(v->slope) ? 3 : 0;   /* one layer: no mixer slope */
    tui_draw_first(p->win, y, 0, p->w, tui_attr(v->role), 4 - first, lines + first);
}

static void depth_title(tui_panel *p, const depth_state *st, int flow)
{
    const char *nx = st->utf8 ? "\u2016x_l\u2016" : "|x_l|", *nf = st->utf8 ? "\u2016x_i(t)\u2016" : "|x_i(t)|";
    const char *name = st->ready ? st->name : "";
    char t[3][160];
    if (flow) {
        snprintf(t[0], sizeof t[0], " depth %s | flow %s of layer %d: token %d %s and mean ", nx, nf, st->flow_layer,
                 st->token, name);
        snprintf(t[1], sizeof t[1], " depth | flow of layer %d: token %d ", st->flow_layer, st->token);
        snprintf(t[2], sizeof t[2], " depth|flow ");
    } else {
        snprintf(t[0], sizeof t[0], " depth %s: token %d %s and mean ", nx, st->token, name);
        snprintf(t[1], sizeof t[1], " depth: token %d %s ", st->token, name);
        snprintf(t[2], sizeof t[2], " depth ");
    }
    const char *titles[3] = {t[0], t[1], t[2]};
    tui_panel_title(p, 3, titles);
}

/* A curve's canvas at column x with its y range on the left (AXIS_W) and
 * its x labels on row ay. */
static void curve_draw(tui_panel *p, const tui_canvas *cv, const depth_curve *c, int x, int ay,
                       const char *lo, const char *mid, const char *hi)
{
    static const tui_role roles[] = {TUI_C_SERIES2, TUI_C_SERIES1};
    tui_draw_number(p->win, 1, x - AXIS_W, AXIS_W - 1, tui_attr(TUI_C_DIM), exp(c->hi));
    tui_draw_number(p->win, ay - 1, x - AXIS_W, AXIS_W - 1, tui_attr(TUI_C_DIM), exp(c->lo));
    tui_canvas_draw(cv, p->win, 1, x, roles);
    int len = (int)strlen(hi), ml = (int)strlen(mid);
    tui_draw_text(p->win, ay, x, 4, tui_attr(TUI_C_DIM), lo);
    if (cv->w >= (int)strlen(lo) + ml + len + 2)   /* the middle label only with a space either side */
        tui_draw_fit(p->win, ay, x + cv->w / 2 - ml / 2, ml, tui_attr(TUI_C_DIM), mid);
    tui_draw_text(p->win, ay, x + cv->w - len, len, tui_attr(TUI_C_DIM), hi);
}

static void depth_draw(tui_panel *p)
{
    depth_state *st = p->st;
    werase(p->win);
    int flow = st->flow_view && st->v[2].verdict;
    depth_title(p, st, flow);
    if (!st->ready || p->h < 3 + NVERDICT) return;   /* a canvas row at least */
    int token_line = p->h >= 9, ay = p->h - NVERDICT - token_line - 1;
    char hi[16], thi[16];
    snprintf(hi, sizeof hi, "x%d", st->layers - 1);
    curve_draw(p, &st->canvas, &st->depth, AXIS_W, ay, "x0", "layer", hi);
    if (flow) {
        snprintf(thi, sizeof thi, "t%g", st->flow.x[st->flow.n - 1]);
        curve_draw(p, &st->fcanvas, &st->flow, AXIS_W + st->canvas.w + AXIS_W, ay, "t0", "flow", thi);
    } else if (st->flow_view) {
        int x = AXIS_W + st->canvas.w + 1;
        tui_draw_wrap(p->win, 1, x, p->w - x, ay - 1, tui_attr(TUI_C_DIM), st->v[2].note);
    }
    int y = ay + 1;
    if (token_line) {   /* the selected token's residual slope */
        char t[2][64];
        snprintf(t[0], sizeof t[0], "token %+.4f/layer: %s", st->slope, token_verdict(st->slope));
        snprintf(t[1], sizeof t[1], "token %+.3f %s", st->slope, token_verdict(st->slope));
        const char *lines[2] = {t[0], t[1]};
        tui_draw_first(p->win, y++, 0, p->w, tui_attr(TUI_C_SERIES1), 2, lines);
    }
    for (int i = 0; i < NVERDICT; i++) verdict_line(p, y + i, &st->v[i]);
}

const tui_panel_class tui_panel_depth_class = {
    .name = "depth", .state_size = sizeof(depth_state), .update = depth_update, .draw = depth_draw,
};
