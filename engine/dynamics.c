/* dynamics.c — the token-dynamics measurements of ssmlab-math(7) DYNAMICS: eigenvalues of
 * S_B S_C^T per layer (GSL nonsymmetric eigensolver), residual-stream token
 * norms and mixer-output norms with least-squares log-norm slopes over
 * depth (gsl_fit_linear), the R^2 of the mean log-norm's line (the flow's
 * fit, ssm_flow_fit) and a converging/diverging/no-trend verdict for each, and
 * the layer-0 importance ranking.
 * GSL linear algebra only: this file must not include OpenBLAS's cblas.h. */
#include "engine/dynamics.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_eigen.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_fit.h>

#include "engine/bf16.h"
#include "engine/scenario.h"

/* ------------------------------------------------------------------------ */
/* Names                                                                    */

const char *ssm_verdict_name(int verdict)
{
    static const char *const names[] = {"converging", "diverging", "mixed", "none", "no-trend"};
    return verdict >= 0 && verdict <= SSM_VERDICT_NO_TREND ? names[verdict] : "?";
}

const char *ssm_spectrum_class_name(int cls)
{
    static const char *const names[] = {"positive", "negative", "mixed", "complex"};
    return cls >= 0 && cls <= SSM_SPECTRUM_COMPLEX ? names[cls] : "?";
}

/* ------------------------------------------------------------------------ */
/* Token norms                                                              */

/* ||x||_2 of n floats, accumulated in double */
static float vec_norm(const float *x, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    return (float)sqrt(s);
}

ssm_status ssm_dynamics_slopes(const float *norms, int n_layer, int T, float *slopes)
{
    int n = n_layer + 1;
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n);
    if (!x || !y) {
        free(x);
        free(y);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory fitting norm slopes");
    }
    for (int l = 0; l < n; l++) x[l] = l;
    for (int t = 0; t < T; t++) {
        for (int l = 0; l < n; l++) {
            float v = norms[(size_t)l * T + t];
            y[l] = log(v > FLT_MIN ? v : FLT_MIN);
        }
        double c0, c1, cov00, cov01, cov11, sumsq;
        gsl_fit_linear(x, 1, y, 1, n, &c0, &c1, &cov00, &cov01, &cov11, &sumsq);
        slopes[t] = (float)c1;
    }
    free(x);
    free(y);
    return SSM_OK;
}

float ssm_dynamics_r2(const float *norms, int n_layer, int T)
{
    int n = n_layer + 1;
    if (n < 2 || T < 1) return NAN;
    double *y = calloc(n, sizeof(double)), slope, r2;   /* (n) mean ln norm per depth */
    if (!y) return NAN;
    for (int l = 0; l < n; l++)
        for (int t = 0; t < T; t++) {
            float v = norms[(size_t)l * T + t];
            y[l] += log(v > FLT_MIN ? v : FLT_MIN) / T;
        }
    ssm_flow_fit(y, n, 1.0, &slope, &r2);
    free(y);
    return (float)r2;
}

int ssm_dynamics_verdict(const float *slopes, int T, float r2, float *mean_slope)
{
    double sum = 0.0;
    int down = 0, up = 0;
    for (int t = 0; t < T; t++) {
        sum += slopes[t];
        down += slopes[t] < -SSM_VERDICT_TAU;
        up += slopes[t] > SSM_VERDICT_TAU;
    }
    double mean = T > 0 ? sum / T : 0.0;
    if (mean_slope) *mean_slope = (float)mean;
    if (r2 < SSM_FLOW_R2_MIN) return SSM_VERDICT_NO_TREND;
    if (T > 0 && mean < -SSM_VERDICT_TAU && down >= SSM_VERDICT_FRAC * T) return SSM_VERDICT_CONVERGING;
    if (T > 0 && mean > SSM_VERDICT_TAU && up >= SSM_VERDICT_FRAC * T) return SSM_VERDICT_DIVERGING;
    return SSM_VERDICT_MIXED;
}

void ssm_norms_free(ssm_norms *n)
{
    free(n->norms);
    free(n->mix_norms);
    free(n->slopes);
    free(n->mix_slopes);
    memset(n, 0, sizeof *n);
}

/* The mixer-output slopes and verdict: none for a one-layer model. */
static ssm_status mix_verdict(ssm_norms *n, int T)
{
    if (n->n_layer < 2) {
        for (int t = 0; t < T; t++) n->mix_slopes[t] = NAN;
        n->mix_mean_slope = n->mix_r2 = NAN;
        n->mix_verdict = SSM_VERDICT_NONE;
        return SSM_OK;
    }
    ssm_status st = ssm_dynamics_slopes(n->mix_norms, n->n_layer - 1, T, n->mix_slopes);
    if (st) return st;
    n->mix_r2 = ssm_dynamics_r2(n->mix_norms, n->n_layer - 1, T);
    n->mix_verdict = ssm_dynamics_verdict(n->mix_slopes, T, n->mix_r2, &n->mix_mean_slope);
    return st;
}

ssm_status ssm_dynamics_norms(const ssm_model *m, ssm_norms *out)
{
    memset(out, 0, sizeof *out);
    if (!m->acts_memory || !m->last)
        return ssm_fail(SSM_ERR_SOFTWARE, "token norms need a forward pass first");
    int nl = m->cfg.n_layer, D = m->cfg.d_model, Lm = m->act_L;
    int L = ssm_model_input_len(m);   /* the input tokens, without the cls token */
    size_t T = (size_t)m->act_B * L;
    out->n_layer = nl;
    out->B = m->act_B;
    out->L = L;
    out->norms = malloc(sizeof(float) * (nl + 1) * T);
    out->mix_norms = malloc(sizeof(float) * nl * T);
    out->slopes = malloc(sizeof(float) * T);
    out->mix_slopes = malloc(sizeof(float) * T);
    if (!out->norms || !out->mix_norms || !out->slopes || !out->mix_slopes) {
        ssm_norms_free(out);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for token norms");
    }
    for (size_t i = 0; i < (nl + 1) * T; i++)   /* row i / L * Lm + i % L of the stream */
        out->norms[i] = vec_norm(m->acts.resid + (i / L * Lm + i % L) * D, D);
    for (size_t i = 0; i < nl * T; i++)
        out->mix_norms[i] = vec_norm(m->acts.mix + (i / L * Lm + i % L) * D, D);
    ssm_status st = ssm_dynamics_slopes(out->norms, nl, (int)T, out->slopes);
    if (!st) st = mix_verdict(out, (int)T);
    if (st) {
        ssm_norms_free(out);
        return st;
    }
    out->r2 = ssm_dynamics_r2(out->norms, nl, (int)T);
    out->verdict = ssm_dynamics_verdict(out->slopes, (int)T, out->r2, &out->mean_slope);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Spectrum of S_B S_C^T                                                    */

typedef struct { double re, im; } eig;

static int eig_cmp(const void *a, const void *b)
{
    const eig *x = a, *y = b;
    if (x->re != y->re) return x->re < y->re ? 1 : -1;
    return (x->im < y->im) - (x->im > y->im);
}

ssm_status ssm_dynamics_eigen(const double *M, int N, double *re, double *im)
{
    gsl_matrix *A = gsl_matrix_alloc(N, N);
    gsl_vector_complex *ev = gsl_vector_complex_alloc(N);
    gsl_eigen_nonsymm_workspace *w = gsl_eigen_nonsymm_alloc(N);
    eig *e = malloc(sizeof *e * N);
    ssm_status st = SSM_OK;
    if (!A || !ev || !w || !e) {
        st = ssm_fail(SSM_ERR_NOMEM, "out of memory for a %d x %d eigenproblem", N, N);
        goto done;
    }
    memcpy(A->data, M, sizeof(double) * N * N);   /* a fresh matrix: tda == N */
    gsl_eigen_nonsymm_params(0, 1, w);            /* eigenvalues only, balanced */
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int rc = gsl_eigen_nonsymm(A, ev, w);
    gsl_set_error_handler(old);
    if (rc) {
        st = ssm_fail(SSM_ERR_DATA, "eigenvalues of a %d x %d matrix did not converge (%s)",
                      N, N, gsl_strerror(rc));
        goto done;
    }
    for (int i = 0; i < N; i++) {
        gsl_complex z = gsl_vector_complex_get(ev, i);
        e[i] = (eig){GSL_REAL(z), GSL_IMAG(z)};
    }
    qsort(e, N, sizeof *e, eig_cmp);
    for (int i = 0; i < N; i++) {
        re[i] = e[i].re;
        im[i] = e[i].im;
    }
done:
    free(e);
    if (w) gsl_eigen_nonsymm_free(w);
    if (ev) gsl_vector_complex_free(ev);
    if (A) gsl_matrix_free(A);
    return st;
}

double ssm_dynamics_radius(const double *re, const double *im, int N)
{
    double rho = 0.0;
    for (int i = 0; i < N; i++) rho = fmax(rho, hypot(re[i], im[i]));
    return rho;
}

char ssm_dynamics_sign(double re, double im, double rho)
{
    double tol = SSM_SPECTRUM_TOL * rho;
    if (fabs(im) > tol) return '~';
    return re > tol ? '+' : re < -tol ? '-' : '0';
}

int ssm_dynamics_classify(const double *re, const double *im, int N,
                          int *n_pos, int *n_neg, int *n_complex)
{
    double rho = ssm_dynamics_radius(re, im, N);
    int pos = 0, neg = 0, cpx = 0;
    for (int i = 0; i < N; i++) {
        char c = ssm_dynamics_sign(re[i], im[i], rho);
        cpx += c == '~';
        pos += c == '+';
        neg += c == '-';
    }
    if (n_pos) *n_pos = pos;
    if (n_neg) *n_neg = neg;
    if (n_complex) *n_complex = cpx;
    if (cpx) return SSM_SPECTRUM_COMPLEX;
    if (pos && neg) return SSM_SPECTRUM_MIXED;
    return neg ? SSM_SPECTRUM_NEGATIVE : SSM_SPECTRUM_POSITIVE;
}

/* M (N, N) = S_B S_C^T of layer l, from the learned B and C rows of x_proj */
static void layer_product(const ssm_config *c, const float *x_proj, int l, double *M)
{
    int E = c->d_inner, N = c->d_state;
    size_t X = c->dt_rank + 2 * c->state_dim;
    const float *xp = x_proj + (size_t)l * X * E;
    const float *SB = xp + (size_t)(c->dt_rank + c->n_one) * E;
    const float *SC = xp + (size_t)(c->dt_rank + c->state_dim + c->n_one) * E;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int e = 0; e < E; e++) s += (double)SB[(size_t)i * E + e] * SC[(size_t)j * E + e];
            M[(size_t)i * N + j] = s;
        }
}

/* Mamba-2's twin (ssmlab-math(7) MAMBA-2, Per-head measurements): M (N, N)
 * = S_B S_C^T of group g of layer l, S_B and S_C (N, D) the rows of in_proj
 * that make group g's B and C (rows 2E + gN and 2E + GN + gN on). */
static void group_product(const ssm_config *c, const float *in_proj, int l, int g, double *M)
{
    int D = c->d_model, E = c->d_inner, N = c->d_state, GN = c->n_groups * N;
    size_t W = 2 * (size_t)E + 2 * GN + c->n_heads;
    const float *ip = in_proj + (size_t)l * W * D;
    const float *SB = ip + (2 * (size_t)E + (size_t)g * N) * D;
    const float *SC = ip + (2 * (size_t)E + GN + (size_t)g * N) * D;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int d = 0; d < D; d++) s += (double)SB[(size_t)i * D + d] * SC[(size_t)j * D + d];
            M[(size_t)i * N + j] = s;
        }
}

void ssm_spectrum_free(ssm_spectrum *s)
{
    free(s->re);
    free(s->im);
    free(s->n_pos);
    free(s->n_neg);
    free(s->n_complex);
    free(s->cls);
    memset(s, 0, sizeof *s);
}

static ssm_status spectrum_alloc(ssm_spectrum *s, int nl, int G, int N)
{
    memset(s, 0, sizeof *s);
    s->n_layer = nl;
    s->n_groups = G;
    s->N = N;
    size_t rows = (size_t)nl * G;
    s->re = malloc(sizeof(double) * rows * N);
    s->im = malloc(sizeof(double) * rows * N);
    s->n_pos = malloc(sizeof(int) * rows);
    s->n_neg = malloc(sizeof(int) * rows);
    s->n_complex = malloc(sizeof(int) * rows);
    s->cls = malloc(sizeof(int) * rows);
    if (s->re && s->im && s->n_pos && s->n_neg && s->n_complex && s->cls) return SSM_OK;
    ssm_spectrum_free(s);
    return ssm_fail(SSM_ERR_NOMEM, "out of memory for the spectrum");
}

ssm_status ssm_dynamics_spectrum(const ssm_model *m, ssm_spectrum *out)
{
    const ssm_config *c = &m->cfg;
    int m2 = c->arch == SSM_ARCH_MAMBA2, nl = c->n_layer, N = c->d_state, G = m2 ? c->n_groups : 1;
    ssm_params p = m->params;   /* the struct is const, the weights it points to are not */
    if (!m2) ssm_scenario_forward(c, &p);
    ssm_status st = spectrum_alloc(out, nl, G, N);
    if (st) return st;
    size_t XE = ((size_t)c->dt_rank + 2 * c->state_dim) * c->d_inner;
    size_t WD = (2 * (size_t)c->d_inner + 2 * (size_t)G * N + c->n_heads) * c->d_model;
    if (m2) XE = WD;   /* Mamba-2: one layer's in_proj (W, D) */
    const uint16_t *w16 = m2 ? m->wbf.m2_in_proj : m->wbf.x_proj;
    double *M = malloc(sizeof(double) * N * N);
    float *xw = w16 ? malloc(sizeof(float) * XE) : NULL;   /* a bf16 layer widened */
    if (!M || (w16 && !xw)) {
        free(M);
        ssm_spectrum_free(out);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for the spectrum");
    }
    for (int r = 0; r < nl * G && !st; r++) {   /* row r: layer r / G, group r % G */
        if (m2 && xw) {   /* bf16 weights: layer r / G's in_proj widened, exactly */
            if (r % G == 0) ssm_bf16_widen(xw, w16 + (size_t)(r / G) * WD, WD);
            group_product(c, xw, 0, r % G, M);
        } else if (m2) group_product(c, p.m2_in_proj, r / G, r % G, M);
        else if (xw) {   /* bf16 weights: layer r's x_proj widened, exactly */
            ssm_bf16_widen(xw, m->wbf.x_proj + (size_t)r * XE, XE);
            layer_product(c, xw, 0, M);
        } else layer_product(c, p.x_proj, r, M);
        double *re = out->re + (size_t)r * N, *im = out->im + (size_t)r * N;
        st = ssm_dynamics_eigen(M, N, re, im);
        if (st) break;
        out->cls[r] = ssm_dynamics_classify(re, im, N, &out->n_pos[r], &out->n_neg[r],
                                            &out->n_complex[r]);
    }
    free(M);
    free(xw);
    if (st) ssm_spectrum_free(out);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Importance ranking                                                       */

/* increasing score, NaN lowest, ties by position */
static int rank_cmp(const void *a, const void *b, void *ctx)
{
    const float *s = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    int ni = isnan(s[i]), nj = isnan(s[j]);
    if (ni != nj) return nj - ni;
    if (!ni && s[i] != s[j]) return s[i] < s[j] ? -1 : 1;
    return (i > j) - (i < j);
}

void ssm_dynamics_ranking(const float *scores, int L, int *order)
{
    for (int i = 0; i < L; i++) order[i] = i;
    qsort_r(order, L, sizeof *order, rank_cmp, (void *)scores);
}
