/* test_dynamics.c — unit tests of the token-dynamics measurements (ssmlab-math(7) DYNAMICS):
 * spectra of hand-set S_B, S_C with known eigenvalues (incl. the pinned
 * polarization rows around them), the scenario models' promised signs,
 * log-norm slopes on synthetic residual streams and mixer outputs, the
 * verdict rule and the importance ranking. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dynamics.h"
#include "engine/model.h"

static ssm_config small_config(int N, int polarize, int scenario)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 8;
    c.n_layer = 2;
    c.d_state = N;
    c.polarize = polarize;
    c.scenario = scenario;
    c.vocab_size = 16;
    return c;
}

/* S_B row n and S_C row n of layer l inside x_proj */
static float *row_B(ssm_model *m, int l, int n)
{
    const ssm_config *c = &m->cfg;
    size_t X = c->dt_rank + 2 * c->state_dim;
    return m->params.x_proj + ((size_t)l * X + c->dt_rank + c->n_one + n) * c->d_inner;
}

static float *row_C(ssm_model *m, int l, int n)
{
    const ssm_config *c = &m->cfg;
    size_t X = c->dt_rank + 2 * c->state_dim;
    return m->params.x_proj + ((size_t)l * X + c->dt_rank + c->state_dim + c->n_one + n) * c->d_inner;
}

/* Every x_proj entry 7 (so a wrong row offset shows), then S_B = diag(lam)
 * on the first N columns and S_C = I: S_B S_C^T = diag(lam). */
static void set_diagonal(ssm_model *m, int l, const float *lam)
{
    const ssm_config *c = &m->cfg;
    size_t X = c->dt_rank + 2 * c->state_dim;
    for (size_t i = 0; i < X * c->d_inner; i++) m->params.x_proj[l * X * c->d_inner + i] = 7.0f;
    for (int n = 0; n < c->d_state; n++) {
        memset(row_B(m, l, n), 0, sizeof(float) * c->d_inner);
        memset(row_C(m, l, n), 0, sizeof(float) * c->d_inner);
        row_B(m, l, n)[n] = lam[n];
        row_C(m, l, n)[n] = 1.0f;
    }
}

Test(spectrum, diagonal_known_eigenvalues)
{
    for (int pol = SSM_POLARIZE_NONE; pol <= SSM_POLARIZE_BOTH; pol++) {
        ssm_model m;
        ssm_config c = small_config(4, pol, SSM_SCENARIO_DEFAULT);
        cr_assert_eq(ssm_model_build(&m, &c), SSM_OK, "%s", ssm_last_error());
        const float lam0[4] = {3.0f, -2.0f, 0.5f, -1.0f}, lam1[4] = {1.0f, 2.0f, 4.0f, 0.25f};
        set_diagonal(&m, 0, lam0);
        set_diagonal(&m, 1, lam1);
        ssm_spectrum s;
        cr_assert_eq(ssm_dynamics_spectrum(&m, &s), SSM_OK, "%s", ssm_last_error());
        const double want0[4] = {3, 0.5, -1, -2}, want1[4] = {4, 2, 1, 0.25};
        for (int i = 0; i < 4; i++) {
            cr_expect_float_eq(s.re[i], want0[i], 1e-12, "pol %d layer 0 eig %d: %g", pol, i, s.re[i]);
            cr_expect_float_eq(s.re[4 + i], want1[i], 1e-12, "pol %d layer 1 eig %d", pol, i);
            cr_expect_eq(s.im[i], 0.0);
        }
        cr_expect_eq(s.n_pos[0], 2);
        cr_expect_eq(s.n_neg[0], 2);
        cr_expect_eq(s.n_complex[0], 0);
        cr_expect_eq(s.cls[0], SSM_SPECTRUM_MIXED);
        cr_expect_eq(s.n_pos[1], 4);
        cr_expect_eq(s.cls[1], SSM_SPECTRUM_POSITIVE);
        ssm_spectrum_free(&s);
        ssm_model_free(&m);
    }
}

Test(spectrum, rotation_is_complex)
{
    ssm_model m;
    ssm_config c = small_config(3, SSM_POLARIZE_ONE, SSM_SCENARIO_DEFAULT);
    cr_assert_eq(ssm_model_build(&m, &c), SSM_OK);
    const float lam[3] = {-1.0f, -1.0f, -5.0f};
    set_diagonal(&m, 0, lam);
    set_diagonal(&m, 1, lam);
    /* layer 1: S_B S_C^T = [[0,-2,0],[2,0,0],[0,0,-5]]: eigenvalues +-2i, -5 */
    float *b0 = row_B(&m, 1, 0), *b1 = row_B(&m, 1, 1);
    b0[0] = 0.0f; b0[1] = -2.0f;
    b1[0] = 2.0f; b1[1] = 0.0f;
    ssm_spectrum s;
    cr_assert_eq(ssm_dynamics_spectrum(&m, &s), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(s.cls[0], SSM_SPECTRUM_NEGATIVE);
    cr_expect_eq(s.n_neg[0], 3);
    cr_expect_eq(s.cls[1], SSM_SPECTRUM_COMPLEX);
    cr_expect_eq(s.n_complex[1], 2);
    cr_expect_eq(s.n_neg[1], 1);
    cr_expect_float_eq(s.re[3], 0.0, 1e-12);
    cr_expect_float_eq(fabs(s.im[3]), 2.0, 1e-12);
    cr_expect_float_eq(s.re[5], -5.0, 1e-12);
    ssm_spectrum_free(&s);
    ssm_model_free(&m);
}

Test(spectrum, classify_rule)
{
    int p, n, x;
    const double re1[3] = {1, 1e-9, -1e-9}, im0[3] = {0, 0, 0};
    cr_expect_eq(ssm_dynamics_classify(re1, im0, 3, &p, &n, &x), SSM_SPECTRUM_POSITIVE);
    cr_expect(p == 1 && n == 0 && x == 0, "near-zero eigenvalues count as neither sign");
    const double re2[2] = {-3, -1};
    cr_expect_eq(ssm_dynamics_classify(re2, im0, 2, &p, &n, &x), SSM_SPECTRUM_NEGATIVE);
    const double re3[2] = {2, -1};
    cr_expect_eq(ssm_dynamics_classify(re3, im0, 2, &p, &n, &x), SSM_SPECTRUM_MIXED);
    const double re4[3] = {2, 0.5, 0.5}, im4[3] = {0, 1e-3, -1e-3};
    cr_expect_eq(ssm_dynamics_classify(re4, im4, 3, &p, &n, &x), SSM_SPECTRUM_COMPLEX);
    cr_expect(p == 1 && x == 2);
    const double z[2] = {0, 0};
    cr_expect_eq(ssm_dynamics_classify(z, z, 2, &p, &n, &x), SSM_SPECTRUM_POSITIVE);
    cr_expect(p == 0 && n == 0 && x == 0);
    cr_expect_str_eq(ssm_spectrum_class_name(SSM_SPECTRUM_MIXED), "mixed");
    cr_expect_str_eq(ssm_spectrum_class_name(SSM_SPECTRUM_COMPLEX), "complex");
}

/* After init the scenario models' spectra have the promised signs. */
static void check_scenario(int scenario, int N, int polarize, int d_model, uint64_t seed)
{
    ssm_model m;
    ssm_config c = small_config(N, polarize, scenario);
    c.d_model = d_model;
    c.n_layer = 3;
    cr_assert_eq(ssm_model_build(&m, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(&m, seed);
    ssm_spectrum s;
    cr_assert_eq(ssm_dynamics_spectrum(&m, &s), SSM_OK, "%s", ssm_last_error());
    int want_pos = scenario == SSM_SCENARIO_POSITIVE ? N : scenario == SSM_SCENARIO_NEGATIVE ? 0 : N / 2;
    int want_cls = scenario == SSM_SCENARIO_POSITIVE ? SSM_SPECTRUM_POSITIVE
                 : scenario == SSM_SCENARIO_NEGATIVE ? SSM_SPECTRUM_NEGATIVE : SSM_SPECTRUM_MIXED;
    for (int l = 0; l < 3; l++) {
        cr_expect_eq(s.n_complex[l], 0, "%s N=%d layer %d: %d complex", ssm_scenario_name(scenario), N, l, s.n_complex[l]);
        cr_expect_eq(s.n_pos[l], want_pos, "%s N=%d layer %d: %d positive", ssm_scenario_name(scenario), N, l, s.n_pos[l]);
        cr_expect_eq(s.n_neg[l], N - want_pos, "%s N=%d layer %d: %d negative", ssm_scenario_name(scenario), N, l, s.n_neg[l]);
        cr_expect_eq(s.cls[l], want_cls, "%s N=%d layer %d: class %s", ssm_scenario_name(scenario), N, l,
                     ssm_spectrum_class_name(s.cls[l]));
    }
    ssm_spectrum_free(&s);
    ssm_model_free(&m);
}

Test(spectrum, scenarios_keep_their_promise)
{
    const int Ns[] = {2, 5, 16};
    for (int sc = SSM_SCENARIO_POSITIVE; sc <= SSM_SCENARIO_MIXED; sc++)
        for (int i = 0; i < 3; i++)
            for (int pol = SSM_POLARIZE_NONE; pol <= SSM_POLARIZE_BOTH; pol += 3)
                check_scenario(sc, Ns[i], pol, 16, 11 + i);
    check_scenario(SSM_SCENARIO_MIXED, 16, SSM_POLARIZE_NONE, 64, 3);
}

/* After init a default model's x_proj is free: its spectrum is whatever it
 * is, but the counts add up and the class follows them. */
Test(spectrum, default_model_counts_add_up)
{
    ssm_model m;
    ssm_config c = small_config(16, SSM_POLARIZE_BOTH, SSM_SCENARIO_DEFAULT);
    cr_assert_eq(ssm_model_build(&m, &c), SSM_OK);
    ssm_model_init(&m, 5);
    ssm_spectrum s;
    cr_assert_eq(ssm_dynamics_spectrum(&m, &s), SSM_OK);
    for (int l = 0; l < c.n_layer; l++) {
        cr_expect_leq(s.n_pos[l] + s.n_neg[l] + s.n_complex[l], 16);
        cr_expect_eq(s.n_complex[l] % 2, 0, "complex eigenvalues come in pairs");
        for (int i = 1; i < 16; i++) cr_expect_geq(s.re[l * 16 + i - 1], s.re[l * 16 + i], "sorted");
    }
    ssm_spectrum_free(&s);
    ssm_model_free(&m);
}

/* ------------------------------------------------------------------------ */

Test(norms, slopes_of_exponential_norms)
{
    enum { NL = 5, T = 3 };
    const double slope[T] = {-0.3, 0.0, 0.7}, a[T] = {1.0, -2.0, 0.5};
    float norms[(NL + 1) * T], got[T];
    for (int l = 0; l <= NL; l++)
        for (int t = 0; t < T; t++) norms[l * T + t] = (float)exp(a[t] + slope[t] * l);
    cr_assert_eq(ssm_dynamics_slopes(norms, NL, T, got), SSM_OK);
    for (int t = 0; t < T; t++) cr_expect_float_eq(got[t], slope[t], 1e-5, "token %d: %g", t, got[t]);
}

Test(norms, least_squares_not_endpoints)
{
    /* log norms 0, 1, 0, 1: the least-squares slope is 0.2, the endpoint slope 1/3 */
    float norms[4] = {1.0f, (float)M_E, 1.0f, (float)M_E}, got;
    cr_assert_eq(ssm_dynamics_slopes(norms, 3, 1, &got), SSM_OK);
    cr_expect_float_eq(got, 0.2, 1e-6, "%g", got);
    float zero[3] = {1.0f, 0.0f, 0.0f};
    cr_assert_eq(ssm_dynamics_slopes(zero, 2, 1, &got), SSM_OK);
    cr_expect(isfinite(got) && got < -10.0f, "a zero norm gives a large finite negative slope");
}

Test(norms, verdict_rule)
{
    float mean;
    const float down[4] = {-0.1f, -0.2f, -0.05f, -0.3f};
    cr_expect_eq(ssm_dynamics_verdict(down, 4, NAN, &mean), SSM_VERDICT_CONVERGING);
    cr_expect_float_eq(mean, -0.1625, 1e-6);
    const float up[3] = {0.5f, 0.02f, 0.3f};
    cr_expect_eq(ssm_dynamics_verdict(up, 3, NAN, &mean), SSM_VERDICT_DIVERGING);
    const float flat[3] = {0.005f, -0.009f, 0.0f};
    cr_expect_eq(ssm_dynamics_verdict(flat, 3, NAN, &mean), SSM_VERDICT_MIXED);
    /* mean -0.1 but only one token in four shrinks: mixed */
    const float one_big[4] = {-1.0f, 0.2f, 0.2f, 0.2f};
    cr_expect_eq(ssm_dynamics_verdict(one_big, 4, NAN, &mean), SSM_VERDICT_MIXED);
    cr_expect_float_eq(mean, -0.1, 1e-6);
    /* half the tokens shrink, mean negative: converging (at least half) */
    const float half[4] = {-1.0f, -1.0f, 0.2f, 0.2f};
    cr_expect_eq(ssm_dynamics_verdict(half, 4, NAN, &mean), SSM_VERDICT_CONVERGING);
    const float most_up[4] = {1.0f, 1.0f, 1.0f, -0.005f};
    cr_expect_eq(ssm_dynamics_verdict(most_up, 4, NAN, &mean), SSM_VERDICT_DIVERGING);
    cr_expect_eq(ssm_dynamics_verdict(NULL, 0, NAN, &mean), SSM_VERDICT_MIXED);
    cr_expect_str_eq(ssm_verdict_name(SSM_VERDICT_CONVERGING), "converging");
    cr_expect_str_eq(ssm_verdict_name(SSM_VERDICT_DIVERGING), "diverging");
    cr_expect_str_eq(ssm_verdict_name(SSM_VERDICT_MIXED), "mixed");
    cr_expect_str_eq(ssm_verdict_name(SSM_VERDICT_NO_TREND), "no-trend");
    /* a poor fit wins over any slope; a good one leaves the slope rule */
    cr_expect_eq(ssm_dynamics_verdict(up, 3, 0.49f, &mean), SSM_VERDICT_NO_TREND);
    cr_expect_eq(ssm_dynamics_verdict(up, 3, 0.5f, &mean), SSM_VERDICT_DIVERGING);
    cr_expect_eq(ssm_dynamics_verdict(down, 4, 0.99f, &mean), SSM_VERDICT_CONVERGING);
}

/* R^2 by hand: ln norms 0, 1, 0, 1 at l = 0..3 (one token).  The line is
 * 0.2 + 0.2 l, residuals -0.2, 0.6, -0.6, 0.2: SS_res = 0.8, SS_tot = 1,
 * R^2 = 0.2.  Two tokens e^{+-0.1} apart average to the same curve. */
Test(norms, r2_hand_checked)
{
    float one[4] = {1.0f, (float)M_E, 1.0f, (float)M_E};
    cr_expect_float_eq(ssm_dynamics_r2(one, 3, 1), 0.2, 1e-6, "%g", ssm_dynamics_r2(one, 3, 1));
    float two[8];
    for (int l = 0; l < 4; l++) {
        two[2 * l] = one[l] * expf(0.1f);
        two[2 * l + 1] = one[l] * expf(-0.1f);
    }
    cr_expect_float_eq(ssm_dynamics_r2(two, 3, 2), 0.2, 1e-5);
    float line[3] = {1.0f, expf(-0.5f), expf(-1.0f)};   /* an exact line: R^2 = 1 */
    cr_expect_float_eq(ssm_dynamics_r2(line, 2, 1), 1.0, 1e-6);
    float flat[3] = {2.0f, 2.0f, 2.0f};                 /* nothing to explain: R^2 = 0 */
    cr_expect_float_eq(ssm_dynamics_r2(flat, 2, 1), 0.0, 1e-12);
    cr_expect(isnan(ssm_dynamics_r2(flat, 0, 1)), "one depth: no fit");
}

/* The verdict of a flat, noisy log-norm curve is no-trend; a clean slope
 * with the same noise keeps its side. */
static int curve_verdict(float slope, float *r2)
{
    enum { N = 9, T = 4 };
    static const float noise[N] = {0.3f, -0.25f, 0.1f, 0.35f, -0.3f, -0.05f, 0.28f, -0.2f, 0.0f};
    float norms[N * T], slopes[T], mean;
    for (int l = 0; l < N; l++)
        for (int t = 0; t < T; t++) norms[l * T + t] = expf(slope * l + noise[(l + t) % N] * (t % 2 ? 1 : 0.8f));
    cr_assert_eq(ssm_dynamics_slopes(norms, N - 1, T, slopes), SSM_OK);
    *r2 = ssm_dynamics_r2(norms, N - 1, T);
    return ssm_dynamics_verdict(slopes, T, *r2, &mean);
}

Test(norms, no_trend_on_noise)
{
    float r2;
    int v = curve_verdict(0.0f, &r2);
    cr_expect_eq(v, SSM_VERDICT_NO_TREND, "flat noise: %s (R^2 %g)", ssm_verdict_name(v), r2);
    cr_expect_lt(r2, SSM_FLOW_R2_MIN);
    v = curve_verdict(0.3f, &r2);
    cr_expect_eq(v, SSM_VERDICT_DIVERGING, "rising: %s (R^2 %g)", ssm_verdict_name(v), r2);
    cr_expect_gt(r2, 0.9);
    v = curve_verdict(-0.3f, &r2);
    cr_expect_eq(v, SSM_VERDICT_CONVERGING, "falling: %s (R^2 %g)", ssm_verdict_name(v), r2);
    float flat[3 * 2] = {1, 2, 1, 2, 1, 2}, s[2], mean;   /* constant norms: no-trend, not mixed */
    cr_assert_eq(ssm_dynamics_slopes(flat, 2, 2, s), SSM_OK);
    cr_expect_eq(ssm_dynamics_verdict(s, 2, ssm_dynamics_r2(flat, 2, 2), &mean), SSM_VERDICT_NO_TREND);
}

static void forward_tokens(ssm_model *m, ssm_batch *b, int *tok, int B, int L)
{
    for (int i = 0; i < B * L; i++) tok[i] = (i * 7 + 3) % m->cfg.vocab_size;
    *b = (ssm_batch){B, L, tok, NULL, NULL};
    cr_assert_eq(ssm_model_forward(m, b), SSM_OK, "%s", ssm_last_error());
}

/* A default model of n_layer layers (init seed) after a forward of B x L tokens. */
static void build_forward(ssm_model *m, int n_layer, uint64_t seed, ssm_batch *b, int *tok, int B, int L)
{
    ssm_config c = small_config(4, 0, 0);
    c.n_layer = n_layer;
    cr_assert_eq(ssm_model_build(m, &c), SSM_OK);
    ssm_model_init(m, seed);
    forward_tokens(m, b, tok, B, L);
}

Test(norms, before_forward_is_an_error)
{
    ssm_model m;
    ssm_config c = small_config(4, 0, 0);
    cr_assert_eq(ssm_model_build(&m, &c), SSM_OK);
    ssm_norms n;
    cr_expect_eq(ssm_dynamics_norms(&m, &n), SSM_ERR_SOFTWARE);
    cr_expect_null(n.norms);
    ssm_model_free(&m);
}

/* A forward allocates the activations; then a synthetic residual stream
 * x_{l,b,t} = g_{b,t}^l v_{b,t} has the known slope log g_{b,t}. */
Test(norms, synthetic_residual_stream)
{
    enum { B = 2, L = 3 };
    ssm_model m;
    int tok[B * L];
    ssm_batch b;
    build_forward(&m, 4, 1, &b, tok, B, L);
    const ssm_config c = m.cfg;
    const float g[B * L] = {0.5f, 0.9f, 1.0f, 1.1f, 2.0f, 0.8f};
    int D = c.d_model;
    for (int l = 0; l <= c.n_layer; l++)
        for (int i = 0; i < B * L; i++)
            for (int d = 0; d < D; d++)
                m.acts.resid[((size_t)l * B * L + i) * D + d] = powf(g[i], l) * (d % 2 ? -0.5f : 1.0f + i);
    ssm_norms n;
    cr_assert_eq(ssm_dynamics_norms(&m, &n), SSM_OK, "%s", ssm_last_error());
    cr_expect(n.n_layer == 4 && n.B == B && n.L == L);
    double mean = 0.0;
    for (int i = 0; i < B * L; i++) {
        cr_expect_float_eq(n.slopes[i], logf(g[i]), 1e-5, "token %d: %g", i, n.slopes[i]);
        mean += log(g[i]) / (B * L);
        double v0 = sqrt(D / 2 * (1.0 + i) * (1.0 + i) + D / 2 * 0.25);
        cr_expect_float_eq(n.norms[i], v0, 1e-5 * v0);
    }
    cr_expect_float_eq(n.mean_slope, mean, 1e-5);
    cr_expect_eq(n.verdict, ssm_dynamics_verdict(n.slopes, B * L, n.r2, NULL));
    ssm_norms_free(&n);
    ssm_model_free(&m);
}

/* Issue 3's case: a pre-norm residual stream x_{l+1} = x_l + mix_l whose
 * updates halve with depth.  The stream's norm still grows (diverging),
 * while the mixer-output verdict sees the updates settle (converging, slope
 * ln 1/2 for every token). */
Test(norms, mixer_outputs_shrink_while_stream_grows)
{
    enum { B = 2, L = 3 };
    ssm_model m;
    ssm_batch b;
    int tok[B * L];
    build_forward(&m, 4, 1, &b, tok, B, L);
    const ssm_config c = m.cfg;
    int D = c.d_model;
    for (int i = 0; i < B * L; i++)
        for (int d = 0; d < D; d++) {
            float v = (d % 3 ? 1.0f : -2.0f) * (1.0f + 0.1f * i), x = v;
            for (int l = 0; l < c.n_layer; l++) {
                float y = ldexpf(v, -l);   /* mix_l = v / 2^l */
                m.acts.resid[((size_t)l * B * L + i) * D + d] = x;
                m.acts.mix[((size_t)l * B * L + i) * D + d] = y;
                x += y;
            }
            m.acts.resid[((size_t)c.n_layer * B * L + i) * D + d] = x;
        }
    ssm_norms n;
    cr_assert_eq(ssm_dynamics_norms(&m, &n), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(n.verdict, SSM_VERDICT_DIVERGING, "stream: %s", ssm_verdict_name(n.verdict));
    cr_expect_eq(n.mix_verdict, SSM_VERDICT_CONVERGING, "updates: %s", ssm_verdict_name(n.mix_verdict));
    for (int i = 0; i < B * L; i++) cr_expect_float_eq(n.mix_slopes[i], -logf(2.0f), 1e-5, "token %d", i);
    cr_expect_float_eq(n.mix_mean_slope, -log(2.0), 1e-5);
    cr_expect_float_eq(n.mix_r2, 1.0, 1e-5, "an exact line: %g", n.mix_r2);
    cr_expect(n.r2 >= SSM_FLOW_R2_MIN && n.r2 <= 1.0f, "stream R^2 %g", n.r2);
    ssm_norms_free(&n);
    ssm_model_free(&m);
}

/* Growing updates give a diverging mixer verdict; one layer gives none. */
Test(norms, mixer_verdict_growing_and_single_layer)
{
    enum { B = 1, L = 4 };
    ssm_model m;
    ssm_batch b;
    int tok[B * L];
    build_forward(&m, 3, 3, &b, tok, B, L);
    int D = m.cfg.d_model;
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < B * L * D; i++) m.acts.mix[(size_t)l * B * L * D + i] = expf(0.3f * l) * (1 + i % 5);
    ssm_norms n;
    cr_assert_eq(ssm_dynamics_norms(&m, &n), SSM_OK);
    cr_expect_eq(n.mix_verdict, SSM_VERDICT_DIVERGING);
    cr_expect_float_eq(n.mix_mean_slope, 0.3, 1e-5);
    ssm_norms_free(&n);
    ssm_model_free(&m);
    build_forward(&m, 1, 3, &b, tok, B, L);
    cr_assert_eq(ssm_dynamics_norms(&m, &n), SSM_OK);
    cr_expect_eq(n.mix_verdict, SSM_VERDICT_NONE);
    cr_expect(isnan(n.mix_mean_slope) && isnan(n.mix_slopes[0]) && isnan(n.mix_r2));
    cr_expect(n.verdict != SSM_VERDICT_NONE, "the stream still has two depths");
    cr_expect_str_eq(ssm_verdict_name(SSM_VERDICT_NONE), "none");
    ssm_norms_free(&n);
    ssm_model_free(&m);
}

/* On a real forward the norms are those of resid and mix, layer by layer. */
Test(norms, real_forward_matches_activations)
{
    enum { B = 2, L = 5 };
    ssm_model m;
    ssm_config c = small_config(4, SSM_POLARIZE_BOTH, SSM_SCENARIO_NEGATIVE);
    c.n_layer = 3;
    cr_assert_eq(ssm_model_build(&m, &c), SSM_OK);
    ssm_model_init(&m, 2);
    int tok[B * L];
    ssm_batch b;
    forward_tokens(&m, &b, tok, B, L);
    ssm_norms n;
    cr_assert_eq(ssm_dynamics_norms(&m, &n), SSM_OK);
    int D = c.d_model;
    for (int l = 0; l <= 3; l++)
        for (int i = 0; i < B * L; i++) {
            const float *x = m.acts.resid + ((size_t)l * B * L + i) * D;
            double s = 0.0;
            for (int d = 0; d < D; d++) s += x[d] * x[d];
            cr_expect_float_eq(n.norms[l * B * L + i], sqrt(s), 1e-6 * sqrt(s));
            if (l == 3) continue;
            const float *y = m.acts.mix + ((size_t)l * B * L + i) * D;
            s = 0.0;
            for (int d = 0; d < D; d++) s += y[d] * y[d];
            cr_expect_float_eq(n.mix_norms[l * B * L + i], sqrt(s), 1e-6 * sqrt(s) + 1e-30);
        }
    ssm_norms_free(&n);
    ssm_model_free(&m);
}

/* ------------------------------------------------------------------------ */

Test(ranking, increasing_score_most_important_last)
{
    const float s[6] = {0.5f, -1.0f, 2.0f, 0.5f, NAN, -3.0f};
    int order[6];
    ssm_dynamics_ranking(s, 6, order);
    const int want[6] = {4, 5, 1, 0, 3, 2};
    for (int i = 0; i < 6; i++) cr_expect_eq(order[i], want[i], "rank %d: %d, want %d", i, order[i], want[i]);
}

Test(ranking, of_a_forward_pass)
{
    enum { L = 9 };
    ssm_model m;
    ssm_config c = small_config(4, 0, 0);
    cr_assert_eq(ssm_model_build(&m, &c), SSM_OK);
    ssm_model_init(&m, 4);
    int tok[L];
    ssm_batch b;
    forward_tokens(&m, &b, tok, 1, L);
    int order[L], seen[L] = {0};
    ssm_dynamics_ranking(m.acts.imp_s, L, order);
    for (int i = 0; i < L; i++) {
        cr_assert(order[i] >= 0 && order[i] < L);
        seen[order[i]]++;
        if (i) cr_expect_leq(m.acts.imp_s[order[i - 1]], m.acts.imp_s[order[i]]);
    }
    for (int i = 0; i < L; i++) cr_expect_eq(seen[i], 1, "a permutation");
    ssm_model_free(&m);
}
