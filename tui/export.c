/* export.c — the export key: the lab's panels as figures (figures/figure.h),
 * SVG and PNG, from the same snapshot the panels draw: the loss curves,
 * the token norms over depth, the hidden attention, the influence with
 * its decay fit, the eigenvalue signs per layer and the history's
 * dynamics.  They go into the run's directory under figures/ when the run
 * has one, else into ./figures/; a loaded checkpoint's directory is never
 * written (the run's out never is it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/checkpoint.h"
#include "engine/recency.h"
#include "figures/figure.h"
#include "scenarios/task_dynamics.h"
#include "tui/app.h"

/* Write page as dir/name.svg and dir/name.png; *files counts them. */
static ssm_status page_write(const char *dir, const char *name, const fig_page *page, int *files)
{
    static const char *const exts[2] = {"svg", "png"};
    for (int i = 0; i < 2; i++) {
        char path[RUN_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s.%s", dir, name, exts[i]);
        ssm_status st = fig_page_write(path, page);
        if (st) return st;
        (*files)++;
    }
    return SSM_OK;
}

static ssm_status one_panel(const char *dir, const char *name, const fig_panel *p, int *files)
{
    fig_page page = {.panels = p, .n_panels = 1};
    return page_write(dir, name, &page, files);
}

/* The loss panel: training and validation loss against the step, the baseline dashed. */
static ssm_status export_loss(const char *dir, const ssm_snapshot *s, int *files)
{
    double tx[SSM_SNAP_HIST], ty[SSM_SNAP_HIST], vx[SSM_SNAP_HIST], vy[SSM_SNAP_HIST];
    for (int i = 0; i < s->n_hist; i++) tx[i] = s->hist_step[i], ty[i] = s->hist_loss[i];
    for (int i = 0; i < s->n_val; i++) vx[i] = s->val_steps[i], vy[i] = s->val_hist[i];
    double last = fmax(1, fmax(s->n_hist ? tx[s->n_hist - 1] : 0, s->step));
    double bx[2] = {0, last}, by[2] = {s->baseline, s->baseline};
    fig_series ser[3] = {
        {.label = "training", .x = tx, .y = ty, .n = s->n_hist, .color = FIG_AUTO, .style = FIG_LINES},
        {.label = "validation", .x = vx, .y = vy, .n = s->n_val, .color = FIG_AUTO, .style = FIG_LINES | FIG_MARKERS},
        {.label = s->images ? "chance, ln C" : "unigram", .x = bx, .y = by, .n = isfinite(s->baseline) ? 2 : 0,
         .color = FIG_GREY, .style = FIG_DASHED}};
    fig_panel p = {.kind = FIG_PANEL_XY, .xy = {.ax = {.title = "loss", .xlabel = "step",
                                                       .ylabel = s->images ? "loss (nats per image)" : "loss (nats per byte)"},
                                                .series = ser, .n_series = 3}};
    return one_panel(dir, "loss", &p, files);
}

/* The depth panel: the selected token's norm and the geometric mean over tokens, per residual row. */
static ssm_status export_norms(const char *dir, const ssm_snapshot *s, int token, int *files)
{
    int L = s->n_layer + 1, T = s->T;
    double x[SSM_SNAP_MAX_LAYER + 1], tok[SSM_SNAP_MAX_LAYER + 1], mean[SSM_SNAP_MAX_LAYER + 1];
    for (int l = 0; l < L && l <= SSM_SNAP_MAX_LAYER; l++) {
        double sum = 0;
        for (int t = 0; t < T; t++) sum += log(fmax(s->norms[l * T + t], 1e-30));
        x[l] = l;
        mean[l] = exp(sum / (T > 0 ? T : 1));
        tok[l] = s->norms[l * T + token];
    }
    char label[64];
    snprintf(label, sizeof label, "token %d", token);
    fig_series ser[2] = {{.label = label, .x = x, .y = tok, .n = L, .color = FIG_AUTO, .style = FIG_LINES | FIG_MARKERS},
                         {.label = "geometric mean over tokens", .x = x, .y = mean, .n = L, .color = FIG_AUTO,
                          .style = FIG_LINES | FIG_DASHED}};
    fig_panel p = {.kind = FIG_PANEL_XY, .xy = {.ax = {.title = "token norms over depth", .xlabel = "residual row l (x_l)",
                                                       .ylabel = "||x_l,t||", .log_y = 1, .x_integer = 1},
                                                .series = ser, .n_series = 2}};
    return one_panel(dir, "norms", &p, files);
}

/* The hidden attention |alpha[t][s]| as the panel shows it, each row scaled to max 1. */
static ssm_status export_attention(const char *dir, const ssm_snapshot *s, int *files)
{
    if (!s->attn_ok) return SSM_OK;
    int T = s->T;
    double *v = malloc(sizeof(double) * T * T);
    if (!v) return ssm_fail(SSM_ERR_NOMEM, "export: out of memory");
    for (int t = 0; t < T; t++)
        for (int u = 0; u < T; u++) v[t * T + u] = u <= t ? s->attn[t * T + u] / 255.0 : NAN;
    char title[96];
    const char *u = s->attn_unit[0] ? s->attn_unit : "channel";
    if (s->attn_channel < 0) snprintf(title, sizeof title, "hidden attention, layer %d, mean |alpha| over %ss",
                                      s->attn_layer, u);
    else snprintf(title, sizeof title, "hidden attention, layer %d, %s %d", s->attn_layer, u, s->attn_channel);
    fig_panel p = {.kind = FIG_PANEL_HEATMAP,
                   .heat = {.ax = {.title = title, .xlabel = "source token s", .ylabel = "query token t"}, .v = v,
                            .rows = T, .cols = T, .rows_down = 1, .vmin = 0, .vmax = 1,
                            .clabel = "|alpha[t][s]| / row max"}};
    ssm_status st = one_panel(dir, "attention", &p, files);
    free(v);
    return st;
}

/* The influence I(t, s) against the distance t - s, with the least-squares
 * line of the decay fit (through the mean of the fitted points). */
static ssm_status export_influence(const char *dir, const ssm_snapshot *s, int *files)
{
    if (!s->infl_ok) return SSM_OK;
    int t = s->infl_token, n = 0, nf = 0;
    double d[SSM_SNAP_MAX_T], I[SSM_SNAP_MAX_T], md = 0, ml = 0;
    for (int u = 0; u <= t; u++) {
        d[n] = t - u;
        I[n] = s->infl[u];
        if (d[n] >= SSM_DECAY_MIN_DIST && I[n] > 0) md += d[n], ml += log(I[n]), nf++;
        n++;
    }
    double fx[2] = {SSM_DECAY_MIN_DIST, t}, fy[2];
    for (int i = 0; i < 2 && nf; i++) fy[i] = exp(ml / nf - s->infl_rate * (fx[i] - md / nf));
    char fit[128], title[64];
    if (!isfinite(s->infl_rate)) snprintf(fit, sizeof fit, "no decay fit");
    else if (!s->infl_exponential)
        snprintf(fit, sizeof fit, "no exponential decay (R2 %.2f < %.1f)", s->infl_r2, TASK_DECAY_MIN_R2);
    else snprintf(fit, sizeof fit, "fit: half-life %.3g tokens, R2 %.2f", s->infl_half_life, s->infl_r2);
    snprintf(title, sizeof title, "influence on token %d", t);
    fig_series ser[2] = {{.label = "I(t, s)", .x = d, .y = I, .n = n, .color = FIG_AUTO, .style = FIG_MARKERS},
                         {.label = fit, .x = fx, .y = fy, .n = nf && isfinite(s->infl_rate) ? 2 : 0, .color = FIG_AUTO,
                          .style = s->infl_exponential ? FIG_LINES : FIG_LINES | FIG_DASHED}};
    fig_panel p = {.kind = FIG_PANEL_XY, .xy = {.ax = {.title = title, .xlabel = "distance t - s (tokens)",
                                                       .ylabel = "||dx_n[t] / dx_0[s]||_F", .log_y = 1, .x_integer = 1},
                                                .series = ser, .n_series = 2}};
    return one_panel(dir, "influence", &p, files);
}

/* The eigenvalue panel: positive, negative and complex eigenvalues per
 * layer (a Mamba-2 layer's summed over its groups). */
static ssm_status export_eigen(const char *dir, const ssm_snapshot *s, int *files)
{
    if (!s->spec_ok) return SSM_OK;
    int G = s->spec_groups > 0 ? s->spec_groups : 1, L = s->spec_rows / G;
    double x[SSM_SNAP_SPEC_ROWS], c[3][SSM_SNAP_SPEC_ROWS] = {{0}};
    for (int r = 0; r < L * G; r++)
        x[r / G] = r / G, c[0][r / G] += s->n_pos[r], c[1][r / G] += s->n_neg[r], c[2][r / G] += s->n_cplx[r];
    static const char *const names[3] = {"positive", "negative", "complex"};
    fig_series ser[3];
    for (int k = 0; k < 3; k++)
        ser[k] = (fig_series){.label = names[k], .x = x, .y = c[k], .n = L, .color = FIG_AUTO,
                              .style = FIG_LINES | FIG_MARKERS};
    const char *title = G > 1 ? "eigenvalues of S_B S_C^T by sign, summed over groups" : "eigenvalues of S_B S_C^T by sign";
    fig_panel p = {.kind = FIG_PANEL_XY, .xy = {.ax = {.title = title, .xlabel = "layer",
                                                       .ylabel = "eigenvalues", .x_integer = 1, .y_integer = 1},
                                                .series = ser, .n_series = 3}};
    return one_panel(dir, "eigenvalues", &p, files);
}

/* The history panel: each dynamics column against the step, one panel each. */
static ssm_status export_history(const char *dir, const ssm_snapshot *s, int *files)
{
    static const char *const titles[SSM_DYN_NCOLS] = {"positive eigenvalues", "negative eigenvalues",
                                                      "residual log-norm slope", "mixer log-norm slope",
                                                      "influence half-life (exponential fits)", "cos_last"};
    if (!s->n_dyn) return SSM_OK;
    double x[SSM_SNAP_DYN], y[SSM_DYN_NCOLS][SSM_SNAP_DYN];
    fig_series ser[SSM_DYN_NCOLS];
    fig_panel p[SSM_DYN_NCOLS];
    for (int c = 0; c < SSM_DYN_NCOLS; c++) {
        for (int i = 0; i < s->n_dyn; i++) x[i] = s->dyn_step[i], y[c][i] = s->dyn[c][i];
        ser[c] = (fig_series){.x = x, .y = y[c], .n = s->n_dyn, .color = c % 2, .style = FIG_LINES | FIG_MARKERS};
        p[c] = (fig_panel){.kind = FIG_PANEL_XY, .xy = {.ax = {.title = titles[c], .xlabel = "step"},
                                                        .series = &ser[c], .n_series = 1}};
    }
    fig_page page = {.title = "dynamics at each validation", .panels = p, .n_panels = SSM_DYN_NCOLS, .cols = 3};
    return page_write(dir, "history", &page, files);
}

/* dir: the run's out/figures when out exists, else ./figures (created). */
static ssm_status export_dir(const ssm_snapshot *s, char *dir, size_t n)
{
    struct stat sb;
    int run = s->out[0] && !stat(s->out, &sb) && S_ISDIR(sb.st_mode) && !ssm_run_dir_same(s->out, s->loaded);
    if (run) snprintf(dir, n, "%s/figures", s->out);
    else snprintf(dir, n, "figures");
    return ssm_dir_create(dir);
}

ssm_status tui_export_figures(const ssm_snapshot *s, int token, char *dir, size_t n, int *files)
{
    *files = 0;
    ssm_status st = export_dir(s, dir, n);
    if (!st) st = export_loss(dir, s, files);
    if (!st && s->T > 0) st = export_norms(dir, s, token < s->T ? token : s->T - 1, files);
    if (!st) st = export_attention(dir, s, files);
    if (!st) st = export_influence(dir, s, files);
    if (!st) st = export_eigen(dir, s, files);
    if (!st) st = export_history(dir, s, files);
    return st;
}
