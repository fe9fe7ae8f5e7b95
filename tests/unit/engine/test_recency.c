/* test_recency.c — unit tests of engine/recency.c (ssmlab-math(7) RECENCY): hidden attention
 * against its explicit-product definition and against the scan output
 * (y_t - D u_t = sum_s alpha[t][s] u_s), plain and polarized; influence
 * against central finite differences on x_0 (exact and probes); the
 * over-smoothing measures on hand-made tokens; the decay fit on synthetic
 * exponentials. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/recency.h"

static unsigned rng_state = 2024u;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) / 8388608.0 - 1.0);
}

typedef struct {
    ssm_model m;
    int *tokens;     /* (B, L) */
    float *inputs;   /* (B, L, I) */
    ssm_batch batch;
} fixture;

static ssm_config small_lm(int polarize)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 8;
    c.n_layer = 2;
    c.d_state = 4;
    c.d_conv = 3;
    c.expand = 2;
    c.vocab_size = 16;
    c.polarize = polarize;
    return c;
}

/* continuous input with d_input = D, W_in = identity, b = 0: x_0 = inputs */
static ssm_config small_identity_input(int polarize)
{
    ssm_config c = small_lm(polarize);
    c.input_kind = SSM_INPUT_CONTINUOUS;
    c.d_input = c.d_model;
    c.n_classes = 2;
    return c;
}

/* Build, init, push delta to 0.3..1 so the decay matters, run a forward. */
static void fixture_build(fixture *f, ssm_config c, int B, int L, int grads)
{
    memset(f, 0, sizeof *f);
    cr_assert_eq(ssm_model_build(&f->m, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(&f->m, 11);
    for (size_t i = 0; i < f->m.num_params; i++) f->m.params_memory[i] += 0.05f * frand();
    const ssm_config *mc = &f->m.cfg;
    for (int i = 0; i < mc->n_layer * mc->d_inner; i++) f->m.params.dt_proj_b[i] = -0.5f + 0.5f * frand();
    if (grads) cr_assert_eq(ssm_model_alloc_grads(&f->m), SSM_OK);
    if (mc->input_kind == SSM_INPUT_CONTINUOUS) {
        int D = mc->d_model;
        memset(f->m.params.input_w, 0, sizeof(float) * D * D);
        for (int d = 0; d < D; d++) f->m.params.input_w[d * D + d] = 1.0f;
        memset(f->m.params.input_b, 0, sizeof(float) * D);
        f->inputs = malloc(sizeof(float) * B * L * D);
        for (int i = 0; i < B * L * D; i++) f->inputs[i] = frand();
    } else {
        f->tokens = malloc(sizeof(int) * B * L);
        for (int i = 0; i < B * L; i++) f->tokens[i] = (int)((frand() + 1.0f) * 0.5f * mc->vocab_size);
    }
    f->batch = (ssm_batch){B, L, f->tokens, f->inputs, NULL};
    cr_assert_eq(ssm_model_forward(&f->m, &f->batch), SSM_OK, "%s", ssm_last_error());
}

static void fixture_free(fixture *f)
{
    ssm_model_free(&f->m);
    free(f->tokens);
    free(f->inputs);
}

/* ---- hidden attention ---------------------------------------------------- */

/* alpha_e[t][s] by the definition, products recomputed from scratch */
static double alpha_direct(const ssm_model *m, int l, int b, int e, int t, int s, const float *A)
{
    const ssm_config *c = &m->cfg;
    int E = c->d_inner, Ns = c->state_dim, R = c->dt_rank, X = R + 2 * Ns, L = m->act_L;
    size_t row = ((size_t)l * m->act_B + b) * L;
    const float *delta = m->acts.delta + row * E, *xdbl = m->acts.xdbl + row * X;
    double sum = 0.0;
    for (int j = 0; j < Ns; j++) {
        double p = 1.0;
        for (int k = s + 1; k <= t; k++) p *= exp((double)delta[k * E + e] * A[e * Ns + j]);
        sum += xdbl[t * X + R + Ns + j] * p * delta[s * E + e] * xdbl[s * X + R + j];
    }
    return sum;
}

static void check_alpha_definition(fixture *f, int l, int b)
{
    const ssm_config *c = &f->m.cfg;
    int L = f->m.act_L, E = c->d_inner;
    float *A = malloc(sizeof(float) * E * c->state_dim), *al = malloc(sizeof(float) * L * L);
    float *mean = malloc(sizeof(float) * L * L);
    double *acc = calloc((size_t)L * L, sizeof(double));
    ssm_model_layer_A(c, f->m.params.A_log + (size_t)l * E * c->d_state, A);
    for (int e = 0; e < E; e++) {
        cr_assert_eq(ssm_recency_attention(&f->m, l, b, e, NULL, al), SSM_OK, "%s", ssm_last_error());
        for (int t = 0; t < L; t++)
            for (int s = 0; s < L; s++) {
                double want = s <= t ? alpha_direct(&f->m, l, b, e, t, s, A) : 0.0;
                acc[t * L + s] += fabs(want) / E;
                cr_assert(fabs(al[t * L + s] - want) <= 1e-5 + 1e-4 * fabs(want),
                          "layer %d e %d alpha[%d][%d] = %g, definition %g", l, e, t, s, al[t * L + s], want);
            }
    }
    cr_assert_eq(ssm_recency_attention(&f->m, l, b, SSM_ATTN_MEAN, NULL, mean), SSM_OK);
    for (int i = 0; i < L * L; i++)
        cr_assert(fabs(mean[i] - acc[i]) <= 1e-5 + 1e-4 * acc[i], "mean |alpha| entry %d: %g vs %g",
                  i, mean[i], acc[i]);
    free(A); free(al); free(mean); free(acc);
}

/* y_t[e] - D[e] u_t[e] = sum_{s<=t} alpha_e[t][s] u_s[e], y from the scan */
static void check_alpha_scan(fixture *f, int l, int b)
{
    const ssm_config *c = &f->m.cfg;
    int L = f->m.act_L, E = c->d_inner;
    size_t kept = f->m.grads_memory ? (size_t)l : 0;   /* without grads: one slot, layer n-1 */
    size_t row = (kept * f->m.act_B + b) * L;
    const float *u = f->m.acts.u + row * E, *ys = f->m.acts.ys + row * E;
    const float *Dk = f->m.params.Dskip + (size_t)l * E;
    float *al = malloc(sizeof(float) * L * L);
    for (int e = 0; e < E; e++) {
        cr_assert_eq(ssm_recency_attention(&f->m, l, b, e, NULL, al), SSM_OK);
        for (int t = 0; t < L; t++) {
            double sum = 0.0, scale = 0.0;
            for (int s = 0; s <= t; s++) {
                sum += (double)al[t * L + s] * u[s * E + e];
                scale += fabs((double)al[t * L + s] * u[s * E + e]);
            }
            double want = ys[t * E + e] - (double)Dk[e] * u[t * E + e];
            cr_assert(fabs(sum - want) <= 1e-5 + 1e-4 * scale,
                      "layer %d e %d t %d: sum alpha u = %g, scan %g", l, e, t, sum, want);
        }
    }
    free(al);
}

Test(recency, attention_matches_definition_and_scan)
{
    fixture f;
    fixture_build(&f, small_lm(SSM_POLARIZE_NONE), 2, 9, 1);
    for (int l = 0; l < 2; l++) {
        check_alpha_definition(&f, l, 1);
        check_alpha_scan(&f, l, 0);
        check_alpha_scan(&f, l, 1);
    }
    fixture_free(&f);
}

/* Under ablations and pins the attention is still the scan's: it drops the
 * ablated state channels and uses the pinned A. */
Test(recency, intervened_attention_matches_the_intervened_scan)
{
    fixture f;
    fixture_build(&f, small_lm(SSM_POLARIZE_BOTH), 2, 9, 1);
    ssm_ablation ab[2] = {{0, 1, -1}, {1, 3, 2}};
    ssm_pin pin[1] = {{1, 3, 4, 0.0f}};
    ssm_probe p = {.ablate = ab, .n_ablate = 2, .pin = pin, .n_pin = 1};
    cr_assert_eq(ssm_model_set_probe(&f.m, &p), SSM_OK);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    for (int l = 0; l < 2; l++) check_alpha_scan(&f, l, 1);
    ssm_model_set_probe(&f.m, NULL);
    fixture_free(&f);
}

Test(recency, polarized_attention_matches_definition_and_scan)
{
    const int pol[] = {SSM_POLARIZE_ZERO, SSM_POLARIZE_ONE, SSM_POLARIZE_BOTH};
    for (int i = 0; i < 3; i++) {
        fixture f;
        fixture_build(&f, small_lm(pol[i]), 2, 8, 1);
        cr_assert_eq(f.m.cfg.state_dim, 4 + (i != 1) + (i != 0));
        for (int l = 0; l < 2; l++) {
            check_alpha_definition(&f, l, 0);
            check_alpha_scan(&f, l, 1);
        }
        fixture_free(&f);
    }
}

Test(recency, attention_without_grads_reads_the_last_layer_only)
{
    fixture f;
    fixture_build(&f, small_lm(SSM_POLARIZE_NONE), 1, 6, 0);
    float al[36];
    cr_expect_eq(ssm_recency_attention(&f.m, 0, 0, SSM_ATTN_MEAN, NULL, al), SSM_ERR_SOFTWARE);
    cr_expect(strstr(ssm_last_error(), "ssm_model_alloc_grads") != NULL, "%s", ssm_last_error());
    cr_expect_eq(ssm_recency_attention(&f.m, 1, 0, SSM_ATTN_MEAN, NULL, al), SSM_OK);
    check_alpha_scan(&f, 1, 0);   /* the kept slot holds layer n-1 */
    cr_expect_eq(ssm_recency_attention(&f.m, 2, 0, 0, NULL, al), SSM_ERR_USAGE);
    cr_expect_eq(ssm_recency_attention(&f.m, 1, 1, 0, NULL, al), SSM_ERR_USAGE);
    cr_expect_eq(ssm_recency_attention(&f.m, 1, 0, f.m.cfg.d_inner, NULL, al), SSM_ERR_USAGE);
    fixture_free(&f);
}

Test(recency, row_normalize)
{
    const float a[9] = {2, 0, 0, -4, 1, 0, 0, 0, 0};
    float o[9];
    ssm_recency_row_normalize(a, 3, o);
    const float want[9] = {1, 0, 0, -1, 0.25f, 0, 0, 0, 0};
    for (int i = 0; i < 9; i++) cr_expect_float_eq(o[i], want[i], 1e-7, "entry %d", i);
}

/* ---- influence ----------------------------------------------------------- */

static void stream_row(const ssm_model *m, int b, int t, double *out)
{
    int D = m->cfg.d_model, B = m->act_B, L = m->act_L;
    const float *x = m->acts.resid + (((size_t)m->cfg.n_layer * B + b) * L + t) * D;
    for (int d = 0; d < D; d++) out[d] = x[d];
}

/* I(t, s) by central differences on x_0 = inputs, Jacobian columns one by one */
static void influence_fd(fixture *f, const int *targets, int nt, double *I /* (nt, L) */)
{
    int B = f->batch.B, L = f->batch.L, D = f->m.cfg.d_model;
    double eps = 1e-2, *sq = calloc((size_t)B * nt * L, sizeof(double)), yp[64], ym[64];
    for (int b = 0; b < B; b++)
        for (int s = 0; s < L; s++)
            for (int d = 0; d < D; d++) {
                float *x = f->inputs + ((size_t)b * L + s) * D + d, save = *x;
                for (int k = 0; k < nt; k++) {
                    *x = save + (float)eps;
                    ssm_model_forward(&f->m, &f->batch);
                    stream_row(&f->m, b, targets[k], yp);
                    *x = save - (float)eps;
                    ssm_model_forward(&f->m, &f->batch);
                    stream_row(&f->m, b, targets[k], ym);
                    for (int i = 0; i < D; i++) {
                        double g = (yp[i] - ym[i]) / (2 * eps);
                        sq[((size_t)b * nt + k) * L + s] += g * g;
                    }
                }
                *x = save;
            }
    for (int k = 0; k < nt; k++)
        for (int s = 0; s < L; s++) {
            I[k * L + s] = 0.0;
            for (int b = 0; b < B; b++) I[k * L + s] += sqrt(sq[((size_t)b * nt + k) * L + s]) / B;
        }
    free(sq);
}

static void check_influence_fd(int polarize)
{
    fixture f;
    fixture_build(&f, small_identity_input(polarize), 2, 6, 0);
    int targets[2] = {5, 2}, L = 6;
    ssm_influence inf;
    cr_assert_eq(ssm_recency_influence(&f.m, &f.batch, targets, 2, SSM_INFLUENCE_AUTO, 1, &inf),
                 SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(inf.probes, 0, "auto picks exact for D * targets = 16");
    cr_expect_eq(inf.passes, 16);
    cr_expect_eq(inf.n_seq, 2);
    double fd[12];
    influence_fd(&f, targets, 2, fd);
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < L; s++) {
            double got = inf.I[k * L + s], want = fd[k * L + s];
            cr_expect(fabs(got - want) <= 1e-4 + 1e-3 * want,
                      "polarize %d I(%d, %d) = %g, finite differences %g", polarize, targets[k], s, got, want);
            if (s > targets[k]) cr_expect_eq(got, 0.0f, "causal: I(%d, %d) = %g", targets[k], s, got);
        }
    for (size_t i = 0; i < f.m.num_params; i++)
        cr_assert_eq(f.m.grads_memory[i], 0.0f, "parameter gradients are zeroed on return");
    ssm_influence_free(&inf);
    fixture_free(&f);
}

Test(recency, influence_matches_finite_differences) { check_influence_fd(SSM_POLARIZE_NONE); }
Test(recency, polarized_influence_matches_finite_differences) { check_influence_fd(SSM_POLARIZE_BOTH); }

Test(recency, influence_probes_estimate_the_exact_norm)
{
    fixture f;
    fixture_build(&f, small_lm(SSM_POLARIZE_NONE), 3, 10, 1);
    int targets[2] = {9, 4}, L = 10;
    ssm_influence ex, pr, pr2;
    cr_assert_eq(ssm_recency_influence(&f.m, &f.batch, targets, 2, SSM_INFLUENCE_EXACT, 0, &ex), SSM_OK);
    cr_assert_eq(ssm_recency_influence(&f.m, &f.batch, targets, 2, 3000, 5, &pr), SSM_OK);
    cr_assert_eq(ssm_recency_influence(&f.m, &f.batch, targets, 2, 3000, 5, &pr2), SSM_OK);
    cr_expect_eq(pr.probes, 3000);
    cr_expect_eq(pr.passes, 6000);
    for (int i = 0; i < 2 * L; i++) {
        cr_expect(fabs(pr.I[i] - ex.I[i]) <= 0.06 * ex.I[i] + 1e-7, "entry %d: probes %g, exact %g",
                  i, pr.I[i], ex.I[i]);
        cr_expect_eq(pr.I[i], pr2.I[i], "same seed, same estimate");
    }
    ssm_influence_free(&ex);
    ssm_influence_free(&pr);
    ssm_influence_free(&pr2);
    fixture_free(&f);
}

Test(recency, influence_rejects_bad_targets)
{
    fixture f;
    fixture_build(&f, small_lm(SSM_POLARIZE_NONE), 1, 5, 0);
    int t = 5;
    ssm_influence inf;
    cr_expect_eq(ssm_recency_influence(&f.m, &f.batch, &t, 1, 0, 0, &inf), SSM_ERR_USAGE);
    cr_expect_eq(inf.I, NULL);
    fixture_free(&f);
}

Test(recency, targets_are_evenly_spaced_and_end_at_the_last_position)
{
    int t[8];
    cr_expect_eq(ssm_recency_targets(64, 4, t), 4);
    cr_expect(t[0] == 15 && t[1] == 31 && t[2] == 47 && t[3] == 63);
    cr_expect_eq(ssm_recency_targets(5, 1, t), 1);
    cr_expect_eq(t[0], 4);
    cr_expect_eq(ssm_recency_targets(3, 8, t), 3);
    cr_expect(t[0] == 0 && t[1] == 1 && t[2] == 2);
}

/* ---- decay fit --------------------------------------------------------- */

Test(recency, fit_recovers_a_known_rate)
{
    double d[20], I[20];
    for (int i = 0; i < 20; i++) {
        d[i] = i + 1;
        I[i] = 3.0 * exp(-0.2 * d[i]);
    }
    ssm_decay fit;
    cr_assert_eq(ssm_recency_fit_points(d, I, 20, &fit), SSM_OK);
    cr_expect(fabs(fit.rate - 0.2) < 1e-9, "rate %g", fit.rate);
    cr_expect(fabs(fit.half_life - log(2.0) / 0.2) < 1e-7, "half-life %g", fit.half_life);
    cr_expect(fabs(fit.intercept - log(3.0)) < 1e-9);
    cr_expect(fabs(fit.r2 - 1.0) < 1e-12, "r2 %g", fit.r2);
    cr_expect_eq(fit.n_points, 20);
    /* noise lowers R^2; zero and NaN points are skipped */
    for (int i = 0; i < 20; i++) I[i] *= exp(0.3 * frand());
    I[3] = 0.0;
    I[7] = NAN;
    cr_assert_eq(ssm_recency_fit_points(d, I, 20, &fit), SSM_OK);
    cr_expect_eq(fit.n_points, 18);
    cr_expect(fit.r2 < 1.0 && fit.r2 > 0.8, "r2 %g", fit.r2);
    cr_expect(fabs(fit.rate - 0.2) < 0.03, "noisy rate %g", fit.rate);
}

Test(recency, fit_flat_and_degenerate)
{
    double d[4] = {1, 2, 3, 4}, I[4] = {2, 2, 2, 2};
    ssm_decay fit;
    cr_assert_eq(ssm_recency_fit_points(d, I, 4, &fit), SSM_OK);
    cr_expect(fabs(fit.rate) < 1e-12);
    cr_expect(isinf(fit.half_life) || fit.half_life > 1e10, "half-life %g", fit.half_life);
    double growing[4] = {1, 2, 4, 8};
    cr_assert_eq(ssm_recency_fit_points(d, growing, 4, &fit), SSM_OK);
    cr_expect(fit.rate < 0 && isinf(fit.half_life));
    double same[3] = {5, 5, 5};
    cr_expect_eq(ssm_recency_fit_points(same, I, 3, &fit), SSM_ERR_DATA);
    cr_expect_eq(ssm_recency_fit_points(d, I, 1, &fit), SSM_ERR_DATA);
}

Test(recency, fit_decay_uses_pairs_below_the_diagonal)
{
    int L = 12, targets[2] = {11, 7};
    float I[24];
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < L; s++)
            I[k * L + s] = s > targets[k] ? 0.0f : s == targets[k] ? 100.0f : expf(-0.5f * (targets[k] - s));
    ssm_influence inf = {L, 2, 1, targets, I, 0, 0};
    ssm_decay fit;
    cr_assert_eq(ssm_recency_fit_decay(&inf, SSM_DECAY_MIN_DIST, &fit), SSM_OK);
    cr_expect_eq(fit.n_points, 11 + 7);
    cr_expect(fabs(fit.rate - 0.5) < 1e-5, "rate %g", fit.rate);
    cr_expect(fabs(fit.r2 - 1.0) < 1e-6);
    cr_assert_eq(ssm_recency_fit_decay(&inf, 0, &fit), SSM_OK);
    cr_expect_eq(fit.n_points, 12 + 8);
    cr_expect(fit.r2 < 0.99, "the distance-0 outliers spoil the fit: r2 %g", fit.r2);
}

/* ---- over-smoothing ------------------------------------------------------ */

Test(recency, smoothing_identical_tokens)
{
    float X[5 * 3];
    for (int i = 0; i < 5; i++) {
        X[i * 3] = 1.0f;
        X[i * 3 + 1] = -2.0f;
        X[i * 3 + 2] = 0.5f;
    }
    double c, v;
    cr_assert_eq(ssm_recency_smoothing_one(X, 5, 3, &c, &v), SSM_OK);
    cr_expect(fabs(c - 1.0) < 1e-12, "cos %g", c);
    cr_expect(fabs(v) < 1e-7, "deviation %g", v);
}

Test(recency, smoothing_orthogonal_and_opposite_tokens)
{
    int T = 4;
    float X[16] = {0};
    for (int i = 0; i < T; i++) X[i * T + i] = (float)(i + 1);   /* orthogonal, unequal norms */
    double c, v;
    cr_assert_eq(ssm_recency_smoothing_one(X, T, T, &c, &v), SSM_OK);
    cr_expect(fabs(c) < 1e-12, "cos %g", c);
    /* mean (1,2,3,4)/4: ||X - 1 xbar^T||^2 = sum_i i^2 (1 - 1/T) */
    cr_expect(fabs(v - sqrt(1.0 - 1.0 / T)) < 1e-7, "deviation %g", v);
    float Y[4] = {1, 2, -1, -2};
    cr_assert_eq(ssm_recency_smoothing_one(Y, 2, 2, &c, &v), SSM_OK);
    cr_expect(fabs(c + 1.0) < 1e-12);
    cr_expect(fabs(v - 1.0) < 1e-7);
    ssm_recency_smoothing_one(Y, 1, 2, &c, &v);
    cr_expect(isnan(c), "one token has no pairs");
}

Test(recency, smoothing_matches_pairwise_loop)
{
    int T = 7, D = 5;
    float X[35];
    for (int i = 0; i < T * D; i++) X[i] = frand();
    for (int d = 0; d < D; d++) X[3 * D + d] = 0.0f;   /* a zero token counts cos 0 */
    double want = 0.0, c, v;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            double dot = 0, ni = 0, nj = 0;
            for (int d = 0; d < D; d++) {
                dot += X[i * D + d] * X[j * D + d];
                ni += X[i * D + d] * X[i * D + d];
                nj += X[j * D + d] * X[j * D + d];
            }
            if (i != j && ni > 0 && nj > 0) want += dot / sqrt(ni * nj) / (T * (T - 1));
        }
    cr_assert_eq(ssm_recency_smoothing_one(X, T, D, &c, &v), SSM_OK);
    cr_expect(fabs(c - want) < 1e-6, "cos %g, pairwise loop %g", c, want);
}

Test(recency, smoothing_of_a_model_averages_sequences)
{
    const int pol[] = {SSM_POLARIZE_NONE, SSM_POLARIZE_BOTH};
    for (int p = 0; p < 2; p++) {
        fixture f;
        fixture_build(&f, small_lm(pol[p]), 3, 6, 0);
        int nl = f.m.cfg.n_layer, D = f.m.cfg.d_model;
        double c[3], v[3];
        cr_assert_eq(ssm_recency_smoothing(&f.m, c, v), SSM_OK);
        for (int l = 0; l <= nl; l++) {
            double cw = 0, vw = 0;
            for (int b = 0; b < 3; b++) {
                double cb, vb;
                ssm_recency_smoothing_one(f.m.acts.resid + ((size_t)l * 3 + b) * 6 * D, 6, D, &cb, &vb);
                cw += cb / 3;
                vw += vb / 3;
            }
            cr_expect(fabs(c[l] - cw) < 1e-12 && fabs(v[l] - vw) < 1e-12, "layer %d", l);
            cr_expect(c[l] >= -1.0 && c[l] <= 1.0 && v[l] >= 0.0 && v[l] <= 1.0 + 1e-9,
                      "layer %d: cos %g deviation %g", l, c[l], v[l]);
        }
        fixture_free(&f);
    }
}

/* The tail ratio: mean I over distances >= min_dist over mean I at distance 1,
 * on a hand-made influence (two targets, L = 6). */
Test(recency, tail_is_far_influence_over_distance_one)
{
    int targets[2] = {4, 5};
    float I[12] = {/* t = 4: s = 0..5 */ 1, 2, 3, 4, 8, 0, /* t = 5 */ 5, 1, 1, 2, 6, 9};
    ssm_influence inf = {.L = 6, .n_targets = 2, .n_seq = 1, .targets = targets, .I = I};
    double r = 0.0;
    cr_assert_eq(ssm_recency_tail(&inf, 3, &r), SSM_OK, "%s", ssm_last_error());
    /* distance 1: I(4,3) = 4, I(5,4) = 6 -> 5; distance >= 3: I(4,0), I(4,1),
     * I(5,0), I(5,1), I(5,2) = 1, 2, 5, 1, 1 -> 2 */
    cr_expect_float_eq(r, 2.0 / 5.0, 1e-12);
    cr_expect_eq(ssm_recency_tail(&inf, 6, &r), SSM_ERR_DATA, "no pair is 6 apart");
}
