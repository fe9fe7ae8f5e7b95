/* inspect_figures.c — the figures of `ssmlab inspect --figures DIR`, one
 * per table, drawn by figures/ from the numbers the tables print:
 * spectrum (eigenvalues in the complex plane, a panel per layer), norms
 * (token norms over depth, residual stream and mixer outputs), importance
 * (scores by position and in ranking order), attention (row-normalised
 * heatmaps), influence (I(t, s) against distance with the decay fit) and
 * smoothing (cosine similarity and deviation over depth).  Every figure is
 * DIR/NAME.svg and .png by default (cli_figures_write). */
#include "cli/inspect_figures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios/task_dynamics.h"

#define MAX_TOKEN_LINES 8     /* more tokens: their mean and spread */
#define MAX_THIN_LINES 64     /* thin grey lines behind the mean, at most */
#define SCRATCH_MAX 32
#define TITLE_MAX 160

/* Buffers of one figure, freed together. */
typedef struct {
    void *p[SCRATCH_MAX];
    int n, failed;
} scratch;

static void *scratch_get(scratch *s, size_t n, size_t size)
{
    void *p = s->n < SCRATCH_MAX ? calloc(n ? n : 1, size) : NULL;
    if (!p) s->failed = 1;
    else s->p[s->n++] = p;
    return p;
}

static void scratch_free(scratch *s)
{
    for (int i = 0; i < s->n; i++) free(s->p[i]);
    s->n = 0;
}

static ssm_status scratch_nomem(scratch *s, const char *what)
{
    scratch_free(s);
    return ssm_fail(SSM_ERR_NOMEM, "out of memory for the %s figure", what);
}

/* A grid of n panels about as wide as tall, at most 6 columns. */
static int grid_cols(int n)
{
    int c = (int)ceil(sqrt((double)n));
    return n <= 3 ? n : c > 6 ? 6 : c;
}

/* A token's text on an axis: spaces as U+2423 so they show, "#t" when empty. */
static void token_text(const char *label, int pos, char *out, size_t n)
{
    size_t o = 0;
    if (!*label) snprintf(out, n, "#%d", pos);
    for (const char *p = label; *p && o + 4 < n; p++) {
        if (*p == ' ') {
            memcpy(out + o, "\xe2\x90\xa3", 3);
            o += 3;
        } else {
            out[o++] = *p;
        }
    }
    if (*label) out[o] = 0;
}

/* ------------------------------------------------------------------------ */
/* Spectrum                                                                 */

ssm_status cli_figures_spectrum(const cli_figures *f, const ssm_spectrum *s)
{
    scratch sc = {0};
    int G = s->n_groups, nl = s->n_layer * G, N = s->N;   /* a panel per layer (and group) */
    fig_panel *p = scratch_get(&sc, nl, sizeof *p);
    fig_series *ser = scratch_get(&sc, nl, sizeof *ser);
    char (*title)[TITLE_MAX] = scratch_get(&sc, nl, TITLE_MAX);
    if (sc.failed) return scratch_nomem(&sc, "spectrum");
    for (int l = 0; l < nl; l++) {
        const double *re = s->re + (size_t)l * N, *im = s->im + (size_t)l * N;
        double r = ssm_dynamics_radius(re, im, N), lim = r > 0 ? 1.15 * r : 1;
        int k = G > 1 ? snprintf(title[l], TITLE_MAX, "layer %d group %d", l / G, l % G)
                      : snprintf(title[l], TITLE_MAX, "layer %d", l / G);
        k += snprintf(title[l] + k, TITLE_MAX - k, ": %s (%d+, %d\xe2\x88\x92", ssm_spectrum_class_name(s->cls[l]),
                      s->n_pos[l], s->n_neg[l]);
        snprintf(title[l] + k, TITLE_MAX - k, s->n_complex[l] ? ", %d complex)" : ")", s->n_complex[l]);
        ser[l] = (fig_series){NULL, re, im, NULL, NULL, N, s->cls[l], s->cls[l], FIG_MARKERS};
        p[l] = (fig_panel){.kind = FIG_PANEL_XY,
                           .xy = {{.title = title[l], .xlabel = "Re \xce\xbb", .ylabel = "Im \xce\xbb", .equal_aspect = 1,
                                   .zero_lines = 1, .xmin = -lim, .xmax = lim, .ymin = -lim, .ymax = lim},
                                  &ser[l], 1}};
    }
    fig_page page = {G > 1 ? "Eigenvalues \xce\xbb of S_B S_C\xe1\xb5\x80 by layer and group"
                           : "Eigenvalues \xce\xbb of S_B S_C\xe1\xb5\x80 by layer", p, nl, grid_cols(nl), 0, 0};
    ssm_status st = cli_figures_write(f, "spectrum", &page);
    scratch_free(&sc);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Norms                                                                    */

/* One panel of norms over depth: vals (depth, T) for T tokens; a line per
 * token when there are few, else the geometric mean +- one standard
 * deviation of the log-norm over thin lines of some tokens. */
static void depth_panel(scratch *sc, fig_panel *p, const float *vals, int depth, int T, int L,
                        const char (*labels)[CLI_LABEL_MAX], const char *title, const char *xlabel,
                        const char *ylabel)
{
    int few = T <= MAX_TOKEN_LINES, thin = few ? 0 : T < MAX_THIN_LINES ? T : MAX_THIN_LINES;
    int one = depth < 2;   /* one depth: markers and whiskers, no lines */
    int ns = few ? T : thin + 1;
    fig_series *ser = scratch_get(sc, ns, sizeof *ser);
    double *x = scratch_get(sc, depth, sizeof *x), *y = scratch_get(sc, (size_t)ns * depth, sizeof *y);
    double *lo = scratch_get(sc, depth, sizeof *lo), *hi = scratch_get(sc, depth, sizeof *hi);
    char (*lab)[CLI_LABEL_MAX + 32] = scratch_get(sc, ns, CLI_LABEL_MAX + 32);
    if (sc->failed) return;
    for (int l = 0; l < depth; l++) {
        x[l] = l;
        double m = 0, m2 = 0;
        for (int i = 0; i < T; i++) {
            double v = log(fmax(vals[(size_t)l * T + i], 1e-30));
            m += v / T;
            m2 += v * v / T;
        }
        double sd = sqrt(fmax(m2 - m * m, 0));
        lo[l] = exp(m - sd);
        hi[l] = exp(m + sd);
        if (!few) y[(size_t)thin * depth + l] = exp(m);
        for (int k = 0; k < (few ? T : thin); k++) y[(size_t)k * depth + l] = vals[(size_t)l * T + (few ? k : (long)k * T / thin)];
    }
    for (int k = 0; k < (few ? T : thin); k++) {
        int i = few ? k : (int)((long)k * T / thin);
        char tok[CLI_LABEL_MAX + 8];
        token_text(labels[i], i % L, tok, sizeof tok);
        if (T > L) snprintf(lab[k], sizeof lab[k], "seq %d, t = %d: %s", i / L, i % L, tok);
        else snprintf(lab[k], sizeof lab[k], "t = %d: %s", i, tok);
        ser[k] = few ? (fig_series){lab[k], x, y + (size_t)k * depth, NULL, NULL, depth, FIG_AUTO, FIG_AUTO,
                                    FIG_LINES | FIG_MARKERS}
                     : (fig_series){k ? NULL : "tokens", x, y + (size_t)k * depth, NULL, NULL, depth, FIG_GREY, 0,
                                    one ? FIG_MARKERS : FIG_THIN};
    }
    if (!few)
        ser[thin] = (fig_series){"geometric mean \xc2\xb1 1 sd", x, y + (size_t)thin * depth, lo, hi, depth, 0, 0,
                                 one ? FIG_MARKERS : FIG_LINES | FIG_MARKERS};
    *p = (fig_panel){.kind = FIG_PANEL_XY,
                     .xy = {{.title = title, .xlabel = xlabel, .ylabel = ylabel, .log_y = 1, .x_integer = 1}, ser, ns}};
}

/* "residual stream: diverging (slope 0.118 per layer)" */
static void verdict_title(char *buf, const char *what, int verdict, float slope)
{
    if (verdict == SSM_VERDICT_NONE) snprintf(buf, TITLE_MAX, "%s (one layer: no slope)", what);
    else snprintf(buf, TITLE_MAX, "%s: %s (slope %.3g per layer)", what, ssm_verdict_name(verdict), slope);
}

ssm_status cli_figures_norms(const cli_figures *f, const ssm_norms *n, const char (*labels)[CLI_LABEL_MAX])
{
    scratch sc = {0};
    int T = n->B * n->L;
    fig_panel p[2];
    char t0[TITLE_MAX], t1[TITLE_MAX], page_title[TITLE_MAX];
    verdict_title(t0, "residual stream", n->verdict, n->mean_slope);
    verdict_title(t1, "mixer outputs", n->mix_verdict, n->mix_mean_slope);
    depth_panel(&sc, &p[0], n->norms, n->n_layer + 1, T, n->L, labels, t0, "layer l (0: the embedding)",
                "\xe2\x80\x96x_l,t\xe2\x80\x96\xe2\x82\x82 (log scale)");
    depth_panel(&sc, &p[1], n->mix_norms, n->n_layer, T, n->L, labels, t1, "layer l",
                "\xe2\x80\x96mix_l,t\xe2\x80\x96\xe2\x82\x82 (log scale)");
    if (sc.failed) return scratch_nomem(&sc, "norms");
    snprintf(page_title, sizeof page_title, "Token norms over depth: %s (%d sequence%s of %d tokens)",
             ssm_verdict_name(n->verdict), n->B, n->B == 1 ? "" : "s", n->L);
    fig_page page = {page_title, p, 2, 2, 2 * 360, 300};
    ssm_status st = cli_figures_write(f, "norms", &page);
    scratch_free(&sc);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Importance                                                               */

ssm_status cli_figures_importance(const cli_figures *f, const float *scores, int L,
                                  const char (*labels)[CLI_LABEL_MAX], const char *method, int B)
{
    scratch sc = {0};
    double *v = scratch_get(&sc, L, sizeof *v), *vr = scratch_get(&sc, L, sizeof *vr);
    int *order = scratch_get(&sc, L, sizeof *order), *c0 = scratch_get(&sc, L, sizeof *c0);
    int *c1 = scratch_get(&sc, L, sizeof *c1);
    char (*text)[CLI_LABEL_MAX + 8] = scratch_get(&sc, L, CLI_LABEL_MAX + 8);
    const char **by_pos = scratch_get(&sc, L, sizeof *by_pos), **by_rank = scratch_get(&sc, L, sizeof *by_rank);
    if (sc.failed) return scratch_nomem(&sc, "importance");
    ssm_dynamics_ranking(scores, L, order);
    for (int t = 0; t < L; t++) {
        token_text(labels[t], t, text[t], sizeof text[t]);
        by_pos[t] = text[t];
        v[t] = scores[t];
        c0[t] = 0;
        c1[t] = 1;
    }
    for (int r = 0; r < L; r++) {
        by_rank[r] = text[order[r]];
        vr[r] = scores[order[r]];
    }
    int learned = !strcmp(method, "learned");
    const char *ylabel = learned ? "score s_t = k \xc2\xb7 \xce\x94_t" : "mean \xce\x94_t over channels";
    fig_panel p[2] = {
        {.kind = FIG_PANEL_BARS,
         .bars = {{.title = "score by position", .xlabel = "position t (token)", .ylabel = ylabel}, by_pos, v, NULL,
                  NULL, L, c0}},
        {.kind = FIG_PANEL_BARS,
         .bars = {{.title = "ranking: the scan order, most important last", .xlabel = "rank (token)",
                   .ylabel = ylabel},
                  by_rank, vr, NULL, NULL, L, c1}},
    };
    char title[TITLE_MAX];
    snprintf(title, sizeof title, "Layer-0 token importance (%s), sequence 0%s", method,
             B > 1 ? " of several" : "");
    double width = 110 + 14.0 * L;   /* room for every token's text up to ~100 tokens */
    fig_page page = {title, p, 2, 1, width < 576 ? 576 : width > 1600 ? 1600 : width, 560};
    ssm_status st = cli_figures_write(f, "importance", &page);
    scratch_free(&sc);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Attention                                                                */

ssm_status cli_figures_attention(const cli_figures *f, const double *maps, const int *layers, int n_maps,
                                 int L, int channel, const char *unit, int B)
{
    scratch sc = {0};
    fig_panel *p = scratch_get(&sc, n_maps, sizeof *p);
    char (*title)[TITLE_MAX] = scratch_get(&sc, n_maps, TITLE_MAX);
    if (sc.failed) return scratch_nomem(&sc, "attention");
    int signed_map = channel != SSM_ATTN_MEAN, head = !strcmp(unit, "head");
    for (int k = 0; k < n_maps; k++) {
        snprintf(title[k], TITLE_MAX, "layer %d", layers[k]);
        p[k] = (fig_panel){.kind = FIG_PANEL_HEATMAP,
                           .heat = {{.title = title[k], .xlabel = "source position s", .ylabel = "target position t"},
                                    maps + (size_t)k * L * L, L, L, 1, signed_map ? -1 : 0, 1, signed_map,
                                    signed_map ? (head ? "\xce\xb1_h / max_s |\xce\xb1_h| of row t"
                                                       : "\xce\xb1_e / max_s |\xce\xb1_e| of row t")
                                               : "mean |\xce\xb1| / row max"}};
    }
    char page_title[TITLE_MAX], which[48];
    if (signed_map) snprintf(which, sizeof which, "%s %d", unit, channel);
    else snprintf(which, sizeof which, head ? "mean |\xce\xb1_h| over heads" : "mean |\xce\xb1_e| over channels");
    snprintf(page_title, sizeof page_title, "Hidden attention, row-normalised (%s), sequence 0%s", which,
             B > 1 ? " of several" : "");
    int cols = grid_cols(n_maps);
    fig_page page = {page_title, p, n_maps, cols, n_maps == 1 ? 520 : 0, n_maps == 1 ? 400 : 0};
    ssm_status st = cli_figures_write(f, "attention", &page);
    scratch_free(&sc);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Influence                                                                */

ssm_status cli_figures_influence(const cli_figures *f, const ssm_influence *inf, const ssm_decay *fit,
                                 int min_dist)
{
    scratch sc = {0};
    int nt = inf->n_targets, L = inf->L, max_d = 0;
    fig_series *ser = scratch_get(&sc, nt + 1, sizeof *ser);
    double *x = scratch_get(&sc, L, sizeof *x), *y = scratch_get(&sc, (size_t)nt * L, sizeof *y);
    char (*lab)[32] = scratch_get(&sc, nt, 32);
    if (sc.failed) return scratch_nomem(&sc, "influence");
    for (int d = 0; d < L; d++) x[d] = d;
    for (int k = 0; k < nt; k++) {
        int t = inf->targets[k];
        for (int d = 0; d <= t; d++) y[(size_t)k * L + d] = inf->I[(size_t)k * L + t - d];
        if (t > max_d) max_d = t;
        snprintf(lab[k], sizeof lab[k], "target t = %d", t);
        ser[k] = (fig_series){lab[k], x, y + (size_t)k * L, NULL, NULL, t + 1, FIG_AUTO, FIG_AUTO,
                              FIG_LINES | FIG_MARKERS | FIG_THIN};
    }
    double fx[2] = {min_dist, max_d > min_dist ? max_d : min_dist + 1}, fy[2];
    char fit_label[96] = "no decay fit (fewer than two distances)";
    for (int i = 0; fit && i < 2; i++) fy[i] = exp(fit->intercept - fit->rate * fx[i]);
    if (fit && !task_decay_exponential(fit))
        snprintf(fit_label, sizeof fit_label, "fit: no exponential decay, R\xc2\xb2 = %.3f < %.1f", fit->r2,
                 TASK_DECAY_MIN_R2);
    else if (fit && isfinite(fit->half_life))
        snprintf(fit_label, sizeof fit_label, "fit: half-life %.3g tokens, R\xc2\xb2 = %.3f", fit->half_life, fit->r2);
    else if (fit)
        snprintf(fit_label, sizeof fit_label, "fit: no decay (half-life inf), R\xc2\xb2 = %.3f", fit->r2);
    ser[nt] = (fig_series){fit_label, fx, fy, NULL, NULL, fit ? 2 : 0, 6, 0, FIG_DASHED};
    char title[TITLE_MAX];
    snprintf(title, sizeof title, "Influence of token s on position t (%s, %d sequence%s)",
             inf->probes ? "Gaussian probes" : "exact", inf->n_seq, inf->n_seq == 1 ? "" : "s");
    fig_xy xy = {{.title = title, .xlabel = "distance t \xe2\x88\x92 s (tokens)",
                  .ylabel = "I(t, s) = \xe2\x80\x96\xe2\x88\x82x_n[t] / \xe2\x88\x82x_0[s]\xe2\x80\x96_F (log scale)",
                  .log_y = 1, .x_integer = 1},
                 ser, nt + 1};
    fig_panel panel = {.kind = FIG_PANEL_XY, .xy = xy};
    fig_page page = {NULL, &panel, 1, 1, 560, 320};
    ssm_status st = cli_figures_write(f, "influence", &page);
    scratch_free(&sc);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Smoothing                                                                */

ssm_status cli_figures_smoothing(const cli_figures *f, const double *cos_mean, const double *deviation,
                                 int n_layer, int n_seq)
{
    scratch sc = {0};
    double *x = scratch_get(&sc, n_layer + 1, sizeof *x);
    if (sc.failed) return scratch_nomem(&sc, "smoothing");
    for (int l = 0; l <= n_layer; l++) x[l] = l;
    fig_series ser[2] = {
        {"mean cosine similarity of token pairs", x, cos_mean, NULL, NULL, n_layer + 1, FIG_AUTO, FIG_AUTO,
         FIG_LINES | FIG_MARKERS},
        {"relative deviation \xe2\x80\x96X \xe2\x88\x92 1x\xcc\x84\xe1\xb5\x80\xe2\x80\x96_F / \xe2\x80\x96X\xe2\x80\x96_F", x,
         deviation, NULL, NULL, n_layer + 1, FIG_AUTO, FIG_AUTO, FIG_LINES | FIG_MARKERS},
    };
    char title[TITLE_MAX];
    snprintf(title, sizeof title, "Over-smoothing over depth (%d sequence%s)", n_seq, n_seq == 1 ? "" : "s");
    fig_panel panel = {.kind = FIG_PANEL_XY,
                       .xy = {{.title = title, .xlabel = "layer l (0: the embedding)",
                               .ylabel = "similarity, deviation (no unit)", .x_integer = 1},
                              ser, 2}};
    fig_page page = {NULL, &panel, 1, 1, 560, 300};
    ssm_status st = cli_figures_write(f, "smoothing", &page);
    scratch_free(&sc);
    return st;
}
