/* test_flow.c — unit tests of the one-layer depth-as-time flow
 * (engine/flow.h, ssmlab-math(7) DYNAMICS "The flow of one layer"): the
 * theorem's signs on random scenario weights, the Euler integration against
 * a naive double-precision one written here, the mixer-alone and S6-alone
 * passes against the model's own forward, the fit and the verdict rule, and
 * bad arguments.
 *
 * The setting where the theorem's signs hold (measured, ssmlab-math(7)):
 * the S6 system (tokens in R^E, scan of the tokens themselves, no skip),
 * d_model 8 (E = 16), d_state 4, one layer at mamba_ssm init (Delta from
 * softplus of dt_bias, about 0.001..0.1), L = 8 Gaussian tokens of
 * per-coordinate scale 0.3 or 1, h = 0.1, T = 50, seeds 1..4: negative
 * converges (mean rate about -0.01 at scale 0.3, -0.03..-0.05 at 1,
 * R^2 >= 0.9), positive diverges (about +0.01..+0.03 at 0.3 with R^2 > 0.9,
 * blow-up within 10..25 steps at 1).  The whole mixer does not follow the
 * scenario's sign (test mixer_ignores_scenario_sign). */
#include <criterion/criterion.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/flow.h"
#include "engine/model.h"
#include "engine/scenario.h"

static void build(ssm_model *m, int D, int N, int scenario, uint64_t seed)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = D;
    c.n_layer = 1;
    c.d_state = N;
    c.vocab_size = 16;
    c.scenario = scenario;
    cr_assert_eq(ssm_config_finalize(&c), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_build(m, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(m, seed);
}

static float *gaussian(int n, double scale, uint64_t seed)   /* (n) */
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    float *x = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) x[i] = (float)(scale * gsl_ran_gaussian(r, 1.0));
    gsl_rng_free(r);
    return x;
}

static ssm_flow s6_flow(int scenario, uint64_t seed, double scale)
{
    ssm_model m;
    build(&m, 8, 4, scenario, seed);
    int L = 8, E = m.cfg.d_inner;
    float *x = gaussian(L * E, scale, 100 + seed);
    ssm_flow f;
    cr_assert_eq(ssm_flow_run(&m, 0, SSM_FLOW_S6, x, L, 0.1f, 50, NULL, &f), SSM_OK, "%s", ssm_last_error());
    free(x);
    ssm_model_free(&m);
    return f;
}

/* negative converges, positive diverges: every token, every seed, both scales */
static void check_sign(int scenario)
{
    const double scales[] = {0.3, 1.0};
    int neg = scenario == SSM_SCENARIO_NEGATIVE;
    for (int s = 0; s < 2; s++)
        for (uint64_t seed = 1; seed <= 4; seed++) {
            ssm_flow f = s6_flow(scenario, seed, scales[s]);
            cr_assert_eq(f.verdict, neg ? SSM_FLOW_CONVERGING : SSM_FLOW_DIVERGING,
                         "scale %g seed %d: %s rate %g R2 %g", scales[s], (int)seed,
                         ssm_flow_verdict_name(f.verdict), f.mean_rate, f.mean_r2);
            if (neg) cr_assert_eq(f.steps, 50);
            /* at scale 0.3 a real trend, not only a blow-up */
            if (s == 0) cr_assert_geq(f.mean_r2, SSM_FLOW_R2_MIN);
            for (int i = 0; i < f.L; i++) {
                float end = f.norms[f.steps * f.L + i], start = f.norms[i];
                cr_assert(neg ? end < start : end > start, "token %d: %g -> %g", i, start, end);
            }
            ssm_flow_free(&f);
        }
}

Test(flow, s6_negative_converges) { check_sign(SSM_SCENARIO_NEGATIVE); }
Test(flow, s6_positive_diverges) { check_sign(SSM_SCENARIO_POSITIVE); }

/* The whole mixer: same weights but for the sign of sigma give nearly the
 * same rate, because the skip, the gate and the projections, not the
 * scan's quadratic form, set the direction of the update. */
Test(flow, mixer_ignores_scenario_sign)
{
    float rate[2];
    for (int k = 0; k < 2; k++) {
        ssm_model m;
        build(&m, 8, 4, k ? SSM_SCENARIO_NEGATIVE : SSM_SCENARIO_POSITIVE, 1);
        float *x = gaussian(8 * 8, 1.0, 101);
        ssm_flow f;
        cr_assert_eq(ssm_flow_run(&m, 0, SSM_FLOW_MIXER, x, 8, 0.1f, 50, NULL, &f), SSM_OK);
        rate[k] = f.mean_rate;
        ssm_flow_free(&f);
        free(x);
        ssm_model_free(&m);
    }
    cr_assert(fabsf(rate[0] - rate[1]) < 0.01f, "positive %g negative %g", rate[0], rate[1]);
}

/* ---- naive double-precision Euler integration ------------------------- */

static double dsilu(double v) { return v / (1.0 + exp(-v)); }
static double dsoftplus(double v) { return v > 20.0 ? v : log1p(exp(v)); }

/* y (L, E) = S6(u) (L, E) of layer 0 plus skip * D u (ssmlab-math(7) MODEL steps 3-5) */
static void naive_s6(const ssm_model *m, const double *u, int L, int skip, double *y)
{
    const ssm_config *c = &m->cfg;
    const ssm_params *p = &m->params;
    int E = c->d_inner, N = c->d_state, R = c->dt_rank, X = R + 2 * N;
    double *h = calloc((size_t)E * N, sizeof(double)), *xd = malloc(sizeof(double) * X);
    for (int t = 0; t < L; t++) {
        for (int j = 0; j < X; j++) {
            xd[j] = 0;
            for (int e = 0; e < E; e++) xd[j] += p->x_proj[j * E + e] * u[t * E + e];
        }
        for (int e = 0; e < E; e++) {
            double dr = p->dt_proj_b[e];
            for (int r = 0; r < R; r++) dr += p->dt_proj_w[e * R + r] * xd[r];
            double dl = dsoftplus(dr), acc = 0;
            for (int n = 0; n < N; n++) {
                double A = -exp(p->A_log[e * N + n]);
                h[e * N + n] = exp(dl * A) * h[e * N + n] + dl * xd[R + n] * u[t * E + e];
                acc += xd[R + N + n] * h[e * N + n];
            }
            y[t * E + e] = acc + (skip ? p->Dskip[e] * u[t * E + e] : 0.0);
        }
    }
    free(h);
    free(xd);
}

/* out (L, D) = Mixer(x) (L, D) of layer 0, steps 1-6 */
static void naive_mixer(const ssm_model *m, const double *x, int L, double *out)
{
    const ssm_config *c = &m->cfg;
    const ssm_params *p = &m->params;
    int D = c->d_model, E = c->d_inner, K = c->d_conv;
    double *xz = calloc((size_t)L * 2 * E, sizeof(double)), *u = malloc(sizeof(double) * L * E),
           *y = malloc(sizeof(double) * L * E);
    for (int t = 0; t < L; t++)
        for (int j = 0; j < 2 * E; j++)
            for (int d = 0; d < D; d++) xz[t * 2 * E + j] += p->in_proj[j * D + d] * x[t * D + d];
    for (int t = 0; t < L; t++)
        for (int e = 0; e < E; e++) {
            double v = p->conv_b[e];
            for (int k = 0; k < K; k++) {
                int s = t - K + 1 + k;
                if (s >= 0) v += p->conv_w[e * K + k] * xz[s * 2 * E + e];
            }
            u[t * E + e] = dsilu(v);
        }
    naive_s6(m, u, L, 1, y);
    for (int t = 0; t < L; t++)
        for (int d = 0; d < D; d++) {
            double acc = 0;
            for (int e = 0; e < E; e++)
                acc += p->out_proj[d * E + e] * y[t * E + e] * dsilu(xz[t * 2 * E + E + e]);
            out[t * D + d] = acc;
        }
    free(xz);
    free(u);
    free(y);
}

static void check_against_naive(int system, int scenario)
{
    ssm_model m;
    build(&m, 4, 3, scenario, 7);
    ssm_scenario_forward(&m.cfg, &m.params);
    int L = 5, T = 20, W = ssm_flow_dim(&m.cfg, system);
    float h = 0.5f, *x0 = gaussian(L * W, 2.0, 11);
    ssm_flow f;
    cr_assert_eq(ssm_flow_run(&m, 0, system, x0, L, h, T, NULL, &f), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(f.steps, T);
    double *x = malloc(sizeof(double) * L * W), *v = malloc(sizeof(double) * L * W);
    for (int i = 0; i < L * W; i++) x[i] = x0[i];
    double moved = 0;
    for (int k = 0; k <= T; k++) {
        for (int i = 0; i < L; i++) {
            double s = 0;
            for (int d = 0; d < W; d++) s += x[i * W + d] * x[i * W + d];
            double want = sqrt(s), got = f.norms[k * L + i];
            cr_assert(fabs(got - want) <= 1e-4 * want, "%s step %d token %d: %g vs %g",
                      ssm_flow_system_name(system), k, i, got, want);
            if (k == T) moved += fabs(log(want / f.norms[i])) / L;
        }
        if (system == SSM_FLOW_S6) naive_s6(&m, x, L, 0, v);
        else naive_mixer(&m, x, L, v);
        for (int i = 0; i < L * W; i++) x[i] += h * v[i];
    }
    cr_assert_gt(moved, 0.01, "the flow barely moved (%g): a weak check", moved);
    free(x);
    free(v);
    free(x0);
    ssm_flow_free(&f);
    ssm_model_free(&m);
}

Test(flow, mixer_matches_naive_euler) { check_against_naive(SSM_FLOW_MIXER, SSM_SCENARIO_DEFAULT); }
Test(flow, s6_matches_naive_euler) { check_against_naive(SSM_FLOW_S6, SSM_SCENARIO_NEGATIVE); }

/* The mixer alone on RMSNorm(x_0) gives the full forward's mixer output. */
Test(flow, mixer_alone_is_the_forwards_mixer)
{
    ssm_model m;
    build(&m, 8, 4, SSM_SCENARIO_POSITIVE, 3);
    int tokens[6] = {1, 5, 2, 9, 3, 3}, L = 6, D = 8;
    ssm_batch b = {1, L, tokens, NULL, NULL};
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    float xn[48], mix[48], out[48];
    memcpy(xn, m.acts.xn, sizeof xn);
    memcpy(mix, m.acts.mix, sizeof mix);
    cr_assert_eq(ssm_model_mixer_forward(&m, 0, xn, 1, L, out), SSM_OK);
    for (int i = 0; i < L * D; i++) cr_assert_eq(out[i], mix[i], "element %d", i);
    ssm_model_free(&m);
}

Test(flow, fit_and_verdict)
{
    double y[11], s, r2;
    for (int k = 0; k <= 10; k++) y[k] = 2.0 - 0.3 * k * 0.1;
    ssm_flow_fit(y, 11, 0.1, &s, &r2);
    cr_assert(fabs(s + 0.3) < 1e-9 && fabs(r2 - 1.0) < 1e-9, "slope %g R2 %g", s, r2);
    for (int k = 0; k <= 10; k++) y[k] = (k % 2) ? 1.0 : -1.0;   /* no trend */
    ssm_flow_fit(y, 11, 0.1, &s, &r2);
    cr_assert_lt(r2, SSM_FLOW_R2_MIN);
    /* a zero out_proj: the mixer is 0, the norms constant, R^2 0: no trend */
    ssm_model m;
    build(&m, 8, 4, SSM_SCENARIO_DEFAULT, 1);
    memset(m.params.out_proj, 0, sizeof(float) * 8 * 16);
    float *x = gaussian(4 * 8, 1.0, 5);
    ssm_flow f;
    cr_assert_eq(ssm_flow_run(&m, 0, SSM_FLOW_MIXER, x, 4, 0.1f, 10, NULL, &f), SSM_OK);
    cr_assert_eq(f.verdict, SSM_FLOW_NO_TREND, "%s", ssm_flow_verdict_name(f.verdict));
    cr_assert_str_eq(ssm_flow_verdict_name(f.verdict), "no-trend");
    ssm_flow_free(&f);
    free(x);
    ssm_model_free(&m);
}

Test(flow, bad_arguments)
{
    ssm_model m;
    build(&m, 8, 4, SSM_SCENARIO_DEFAULT, 1);
    float x[64] = {0};
    ssm_flow f;
    cr_assert_eq(ssm_flow_run(&m, 0, SSM_FLOW_MIXER, x, 8, 0.1f, 0, NULL, &f), SSM_ERR_USAGE);
    cr_assert_eq(ssm_flow_run(&m, 0, SSM_FLOW_MIXER, x, 8, 0.0f, 5, NULL, &f), SSM_ERR_USAGE);
    cr_assert_eq(ssm_flow_run(&m, 0, SSM_FLOW_MIXER, x, 8, 0.1f, SSM_FLOW_STEPS_MAX + 1, NULL, &f), SSM_ERR_USAGE);
    cr_assert_eq(ssm_flow_run(&m, 1, SSM_FLOW_MIXER, x, 8, 0.1f, 5, NULL, &f), SSM_ERR_USAGE);
    cr_assert_eq(ssm_flow_run(&m, 0, 7, x, 8, 0.1f, 5, NULL, &f), SSM_ERR_USAGE);
    cr_assert_eq(ssm_flow_system_parse("s6"), SSM_FLOW_S6);
    cr_assert_eq(ssm_flow_system_parse("nope"), -1);
    ssm_model_free(&m);
}

/* A set cancel flag stops the integration before its first step. */
Test(flow, cancelled)
{
    ssm_model m;
    build(&m, 8, 4, SSM_SCENARIO_DEFAULT, 1);
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = 0.1f * (float)(i % 7) - 0.3f;
    ssm_flow f;
    atomic_int cancel = 1;
    cr_assert_eq(ssm_flow_run(&m, 0, SSM_FLOW_MIXER, x, 8, 0.1f, 5, &cancel, &f), SSM_ERR_INTERRUPTED);
    cr_assert_null(f.norms, "freed");
    atomic_store(&cancel, 0);
    cr_assert_eq(ssm_flow_run(&m, 0, SSM_FLOW_MIXER, x, 8, 0.1f, 5, &cancel, &f), SSM_OK);
    cr_expect_eq(f.steps, 5);
    ssm_flow_free(&f);
    ssm_model_free(&m);
}
