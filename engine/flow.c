/* flow.c — Euler integration of one layer's mixer as a depth-as-time flow
 * (ssmlab-math(7) DYNAMICS, "The flow of one layer"), the token norms along
 * it and their log-norm fits (gsl_fit_linear) with R^2. */
#include "engine/flow.h"

#include <float.h>
#include <gsl/gsl_fit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const flow_names[] = {"converging", "diverging", "no-trend"};
static const char *const system_names[] = {"mixer", "s6"};

const char *ssm_flow_system_name(int system)
{
    return system >= 0 && system < SSM_FLOW_SYSTEM_COUNT ? system_names[system] : "?";
}

int ssm_flow_system_parse(const char *s)
{
    for (int i = 0; i < SSM_FLOW_SYSTEM_COUNT; i++)
        if (!strcmp(s, system_names[i])) return i;
    return -1;
}

int ssm_flow_dim(const ssm_config *c, int system)
{
    return system == SSM_FLOW_S6 ? c->d_inner : c->d_model;
}

const char *ssm_flow_verdict_name(int verdict)
{
    return verdict >= 0 && verdict <= SSM_FLOW_NO_TREND ? flow_names[verdict] : "?";
}

void ssm_flow_free(ssm_flow *f)
{
    free(f->norms);
    free(f->rates);
    free(f->r2);
    memset(f, 0, sizeof *f);
}

void ssm_flow_fit(const double *logy, int n, double h, double *slope, double *r2)
{
    double *t = malloc(sizeof(double) * n);
    double c0 = 0, c1 = 0, cov00, cov01, cov11, sumsq = 0, mean = 0, tot = 0;
    if (!t) { *slope = NAN; *r2 = NAN; return; }
    for (int k = 0; k < n; k++) t[k] = k * h;
    gsl_fit_linear(t, 1, logy, 1, n, &c0, &c1, &cov00, &cov01, &cov11, &sumsq);
    for (int k = 0; k < n; k++) mean += logy[k] / n;
    for (int k = 0; k < n; k++) tot += (logy[k] - mean) * (logy[k] - mean);
    *slope = c1;
    *r2 = tot > SSM_FLOW_FLAT * n ? 1.0 - sumsq / tot : 0.0;
    free(t);
}

static double log_norm(float v) { return log(v > FLT_MIN ? v : FLT_MIN); }

/* norms (L) of x (L, D); returns 0 if one is not finite or too large */
static int flow_norms(const float *x, int L, int D, float *norms)
{
    int ok = 1;
    for (int i = 0; i < L; i++) {
        double s = 0.0;
        for (int d = 0; d < D; d++) s += (double)x[(size_t)i * D + d] * x[(size_t)i * D + d];
        norms[i] = (float)sqrt(s);
        ok &= isfinite(norms[i]) && norms[i] <= SSM_FLOW_NORM_MAX;
    }
    return ok;
}

/* per-token and mean fits over the first n = steps + 1 rows of f->norms */
static ssm_status flow_fits(ssm_flow *f, int n)
{
    double *y = malloc(sizeof(double) * n), *ym = calloc(n, sizeof(double)), s, r;
    if (!y || !ym) {
        free(y);
        free(ym);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory fitting the flow's norms");
    }
    for (int i = 0; i < f->L; i++) {
        for (int k = 0; k < n; k++) {
            y[k] = log_norm(f->norms[(size_t)k * f->L + i]);
            ym[k] += y[k] / f->L;
        }
        ssm_flow_fit(y, n, f->h, &s, &r);
        f->rates[i] = (float)s;
        f->r2[i] = (float)r;
    }
    ssm_flow_fit(ym, n, f->h, &s, &r);
    f->mean_rate = (float)s;
    f->mean_r2 = (float)r;
    f->verdict = f->steps < f->T ? SSM_FLOW_DIVERGING
               : r < SSM_FLOW_R2_MIN ? SSM_FLOW_NO_TREND
               : s < 0 ? SSM_FLOW_CONVERGING : SSM_FLOW_DIVERGING;
    free(y);
    free(ym);
    return SSM_OK;
}

static ssm_status flow_alloc(ssm_flow *f, int L, int T, float h)
{
    memset(f, 0, sizeof *f);
    f->L = L;
    f->T = T;
    f->h = h;
    f->norms = malloc(sizeof(float) * (size_t)(T + 1) * L);
    f->rates = malloc(sizeof(float) * L);
    f->r2 = malloc(sizeof(float) * L);
    if (!f->norms || !f->rates || !f->r2) {
        ssm_flow_free(f);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for a flow of %d steps x %d tokens", T, L);
    }
    for (size_t i = 0; i < (size_t)(T + 1) * L; i++) f->norms[i] = NAN;
    return SSM_OK;
}

ssm_status ssm_flow_run(ssm_model *m, int layer, int system, const float *x0, int L,
                        float h, int T, atomic_int *cancel, ssm_flow *out)
{
    if (system < 0 || system >= SSM_FLOW_SYSTEM_COUNT)
        return ssm_fail(SSM_ERR_USAGE, "flow system %d is unknown", system);
    int D = ssm_flow_dim(&m->cfg, system);
    if (L <= 0 || T < 1 || T > SSM_FLOW_STEPS_MAX || !(h > 0.0f) || !isfinite(h))
        return ssm_fail(SSM_ERR_USAGE, "flow needs tokens, 1 <= steps <= %d and a step > 0 "
                        "(got L = %d, steps = %d, step = %g)", SSM_FLOW_STEPS_MAX, L, T, h);
    ssm_status st = flow_alloc(out, L, T, h);
    if (st) return st;
    out->system = system;
    out->dim = D;
    size_t n = (size_t)L * D;
    float *x = malloc(sizeof(float) * n), *v = malloc(sizeof(float) * n);   /* (1, L, D) each */
    if (!x || !v) st = ssm_fail(SSM_ERR_NOMEM, "out of memory for the flow's tokens");
    if (!st) memcpy(x, x0, sizeof(float) * n);
    int ok = !st && flow_norms(x, L, D, out->norms);
    for (int k = 0; ok && k < T; k++) {
        if (cancel && atomic_load(cancel)) {
            st = ssm_fail(SSM_ERR_INTERRUPTED, "flow cancelled");
            break;
        }
        st = system == SSM_FLOW_S6 ? ssm_model_s6_forward(m, layer, x, 1, L, v)
                                   : ssm_model_mixer_forward(m, layer, x, 1, L, v);
        if (st) break;
        for (size_t i = 0; i < n; i++) x[i] += h * v[i];
        ok = flow_norms(x, L, D, out->norms + (size_t)(k + 1) * L);
        out->steps = k + 1 - !ok;
    }
    free(x);
    free(v);
    if (!st) st = flow_fits(out, out->steps + 1);
    if (st) ssm_flow_free(out);
    return st;
}
