/* inspect_figures.h — where the tables of `ssmlab inspect` go (stdout or
 * one file per table with --out) and the figure of each table with
 * --figures DIR: spectrum, norms, importance, attention, influence and
 * smoothing, each DIR/NAME.svg, .png (and .pdf), drawn by figures/ from the
 * numbers the table prints.  What each figure shows is in
 * ssmlab-inspect(1). */
#ifndef SSM_INSPECT_FIGURES_H
#define SSM_INSPECT_FIGURES_H

#include "cli/cli.h"
#include "engine/dynamics.h"
#include "engine/recency.h"
#include "engine/status.h"

#define CLI_LABEL_MAX 64   /* a token's text in the tables, NUL included */

/* The tables and figures of one inspect run. */
typedef struct {
    cli_tables tables;
    cli_figures fig;    /* fig.dir NULL: no figures */
} cli_inspect_out;

/* Eigenvalues in the complex plane, a panel per layer titled with its class. */
ssm_status cli_figures_spectrum(const cli_figures *f, const ssm_spectrum *s);

/* ||x_l,t|| over depth (log scale) beside the mixer-output norms, a line
 * per token for a few tokens, else the geometric mean with a band of one
 * standard deviation of the log-norm; the verdicts in the titles.
 * labels (B * L): each token's text. */
ssm_status cli_figures_norms(const cli_figures *f, const ssm_norms *n, const char (*labels)[CLI_LABEL_MAX]);

/* Layer-0 importance of the first sequence: the score of every position,
 * and the same scores in ranking (scan) order.  scores (L), labels (L). */
ssm_status cli_figures_importance(const cli_figures *f, const float *scores, int L,
                                  const char (*labels)[CLI_LABEL_MAX], const char *method, int B);

/* Row-normalised hidden attention of the first sequence, a heatmap per
 * layer: maps (n_maps, L, L) with NaN above the diagonal, layers (n_maps),
 * channel SSM_ATTN_MEAN or the channel shown (signed: a diverging ramp);
 * unit "channel", or "head" for Mamba-2's per-head maps. */
ssm_status cli_figures_attention(const cli_figures *f, const double *maps, const int *layers, int n_maps,
                                 int L, int channel, const char *unit, int B);

/* I(t, s) against t - s on a log axis, a series per target, with the
 * fitted exponential and its half-life and R^2 (fit NULL: no fit). */
ssm_status cli_figures_influence(const cli_figures *f, const ssm_influence *inf, const ssm_decay *fit,
                                 int min_dist);

/* Mean cosine similarity and relative deviation over depth l = 0..n_layer. */
ssm_status cli_figures_smoothing(const cli_figures *f, const double *cos_mean, const double *deviation,
                                 int n_layer, int n_seq);

#endif
