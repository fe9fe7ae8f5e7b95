/* dynamics.h — the token-dynamics measurements of ssmlab-math(7) DYNAMICS (Vo et al.):
 * the spectrum of S_B S_C^T per layer, the residual-stream token norms over
 * depth with their log-norm slopes and a converging/diverging verdict, and
 * the importance ranking of the first layer. */
#ifndef SSM_DYNAMICS_H
#define SSM_DYNAMICS_H

#include "engine/flow.h"
#include "engine/model.h"
#include "engine/status.h"

/* ---- token norms over depth ------------------------------------------- */

enum { SSM_VERDICT_CONVERGING = 0, SSM_VERDICT_DIVERGING, SSM_VERDICT_MIXED, SSM_VERDICT_NONE,
       SSM_VERDICT_NO_TREND };

/* Verdict rule (documented in ssmlab-inspect(1) too).  First the trend:
 * the least-squares line through the mean over tokens of ln ||.|| against
 * depth (ssm_flow_fit, the flow's fit); when its R^2 is below
 * SSM_FLOW_R2_MIN (the flow verdict's threshold, one constant for both)
 * the verdict is
 *   no-trend    (SSM_VERDICT_NO_TREND; a flat curve has R^2 = 0).
 * Otherwise, with tau = SSM_VERDICT_TAU and the per-token slopes s_t
 * (natural log of the norm per layer):
 *   converging  when mean slope < -tau and at least SSM_VERDICT_FRAC of the
 *               tokens have s_t < -tau;
 *   diverging   when mean slope > +tau and at least SSM_VERDICT_FRAC of the
 *               tokens have s_t > +tau;
 *   mixed       otherwise (tokens disagree, or a slope within tau).
 * The name is "no-trend", one word as the flow's, so the verdict columns
 * of train.csv, sweep tables and inspect need no quoting.
 * SSM_VERDICT_NONE ("none") is the mixer-output verdict of a one-layer
 * model: one depth, nothing to fit.
 *
 * Two verdicts come out of one forward.  The residual-stream verdict reads
 * ||x_{l,t}||, l = 0..n_layer; in a pre-norm residual network x_{l+1} =
 * x_l + mix_l(RMSNorm(x_l)) the stream accumulates every update, so its
 * norm nearly always grows and this verdict is nearly always diverging.
 * The mixer-output verdict reads ||mix_{l,t}||, l = 0..n_layer-1, the size
 * of each layer's update (the velocity of the depth-as-time ODE of ssmlab-math(7)
 * DYNAMICS): converging when the updates shrink with depth (the tokens settle),
 * diverging when they grow. */
#define SSM_VERDICT_TAU 0.01
#define SSM_VERDICT_FRAC 0.5

typedef struct {
    int n_layer, B, L;
    float *norms;      /* (n_layer+1, B, L) ||x_{l,t}||_2 of the residual stream */
    float *mix_norms;  /* (n_layer, B, L)   mixer output norms */
    float *slopes;     /* (B, L) least-squares slope of log-norm over depth l = 0..n_layer */
    float mean_slope;  /* mean of slopes over the B*L tokens */
    float r2;          /* R^2 of the line through the mean log-norm over l = 0..n_layer */
    int verdict;       /* SSM_VERDICT_* */
    float *mix_slopes; /* (B, L) slope of log mixer-output norm over l = 0..n_layer-1
                        * (NaN when n_layer = 1) */
    float mix_mean_slope;  /* mean of mix_slopes (NaN when n_layer = 1) */
    float mix_r2;      /* R^2 of the mean log mixer-output norm's line (NaN when n_layer = 1) */
    int mix_verdict;   /* SSM_VERDICT_*, SSM_VERDICT_NONE when n_layer = 1 */
} ssm_norms;

/* After ssm_model_forward: reads m->acts.resid and m->acts.mix for the
 * batch shape of that forward (m->act_B, m->act_L); SSM_ERR_SOFTWARE if no
 * forward has run.  out is filled (allocated) here and released with
 * ssm_norms_free; token index i = b * L + t in every (.., B, L) array.
 * L is the batch's length: under pool cls the appended cls token is left out. */
ssm_status ssm_dynamics_norms(const ssm_model *m, ssm_norms *out);
void ssm_norms_free(ssm_norms *n);
/* "converging", "diverging", "mixed", "none", "no-trend" */
const char *ssm_verdict_name(int verdict);

/* Lower-level pieces, usable on synthetic data.
 * norms: (n_layer+1, T) for T tokens; writes slopes (T): the gsl_fit_linear
 * slope of (l, log norm_l), l = 0..n_layer (norms below FLT_MIN are clamped
 * to FLT_MIN, so a zero norm gives a large finite slope, never NaN).  With
 * n_layer + 1 = 1 point the slope is NaN. */
ssm_status ssm_dynamics_slopes(const float *norms, int n_layer, int T, float *slopes);
/* R^2 of the least-squares line through the mean over the T tokens of
 * ln norm_l against l = 0..n_layer (norms as for ssm_dynamics_slopes);
 * NaN with one point, 0 for a flat mean curve. */
float ssm_dynamics_r2(const float *norms, int n_layer, int T);
/* mean of slopes (T) and the verdict of the rule above; r2 from
 * ssm_dynamics_r2 (a NaN r2 skips the no-trend test) */
int ssm_dynamics_verdict(const float *slopes, int T, float r2, float *mean_slope);

/* ---- spectrum of S_B S_C^T (per group for Mamba-2) ------------------- */

enum { SSM_SPECTRUM_POSITIVE = 0, SSM_SPECTRUM_NEGATIVE, SSM_SPECTRUM_MIXED, SSM_SPECTRUM_COMPLEX };

/* An eigenvalue is complex when |im| > SSM_SPECTRUM_TOL * rho (rho the
 * layer's spectral radius); a real one is positive when re > tol * rho,
 * negative when re < -tol * rho, and zero (counted in neither) otherwise.
 * Layer class: complex if any complex eigenvalue; else mixed if both
 * positive and negative; else negative if any negative; else positive (this
 * includes the all-zero spectrum).  The product is formed and solved in
 * double from float32 weights, so rounding moves eigenvalues by ~1e-8 rho
 * (scenario models at init: |im| = 0 and every |re| > 1e-2 rho, checked for
 * N up to 64): 1e-6 leaves a wide margin on both sides. */
#define SSM_SPECTRUM_TOL 1e-6

typedef struct {
    int n_layer, n_groups, N;   /* n_groups: 1 for Mamba-1 */
    double *re, *im;   /* (n_layer, n_groups, N) eigenvalues, sorted by decreasing re */
    int *n_pos, *n_neg, *n_complex;  /* (n_layer, n_groups) */
    int *cls;          /* (n_layer, n_groups) SSM_SPECTRUM_* */
} ssm_spectrum;

/* The N learned channels only (the pinned polarization channels are not
 * part of S_B, S_C).  For scenario models it first calls
 * ssm_scenario_forward (idempotent), which rewrites the learned B and C rows
 * of m's x_proj from P and q: the model struct is const, its weights not. */
ssm_status ssm_dynamics_spectrum(const ssm_model *m, ssm_spectrum *out);
/* Mamba-2: one spectrum per layer and group g, of S_B S_C^T with S_B and
 * S_C (N, D) the rows of in_proj that make group g's B and C
 * (ssmlab-math(7) MAMBA-2); row l * n_groups + g of every array. */
void ssm_spectrum_free(ssm_spectrum *s);
const char *ssm_spectrum_class_name(int cls);  /* "positive", "negative", "mixed", "complex" */

/* Eigenvalues of one N x N row-major matrix M (double) into re, im (N),
 * sorted by decreasing real part. */
ssm_status ssm_dynamics_eigen(const double *M, int N, double *re, double *im);
/* The spectral radius max_i |lambda_i| of N eigenvalues. */
double ssm_dynamics_radius(const double *re, const double *im, int N);

/* One eigenvalue's sign against the tolerance SSM_SPECTRUM_TOL * rho:
 * '~' complex, '+' positive, '-' negative, '0' zero. */
char ssm_dynamics_sign(double re, double im, double rho);

/* Counts and class of N eigenvalues under the rule above. */
int ssm_dynamics_classify(const double *re, const double *im, int N,
                          int *n_pos, int *n_neg, int *n_complex);

/* ---- importance ranking ----------------------------------------------- */

/* scores (L): one sequence's m->acts.imp_s row.  order (L) receives the
 * token positions by increasing score (ties by position, NaN lowest) = the
 * reordered sequence, most important last.  Thread-safe (qsort_r). */
void ssm_dynamics_ranking(const float *scores, int L, int *order);

#endif
