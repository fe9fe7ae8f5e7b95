/* scenario.c — S_B = diag(sigma) U(P) and S_C = U(P) for the positive,
 * negative and mixed scenarios, and the chain rule back to P and q. */
#include "engine/scenario.h"

#include "engine/vmath.h"

float ssm_scenario_sigma(int scenario, int n, int N, float q, float *dsigma_dq)
{
    float sp = ssm_softplusf(q), ds = q > 20.0f ? 1.0f : ssm_sigmoidf(q);
    float sign = 1.0f, shift = 0.0f;
    switch (scenario) {
    case SSM_SCENARIO_POSITIVE: shift = 0.7f; break;
    case SSM_SCENARIO_NEGATIVE: shift = 0.7f; sign = -1.0f; break;
    case SSM_SCENARIO_MIXED: sign = n < N / 2 ? 1.0f : -1.0f; break;
    default: break;
    }
    if (dsigma_dq) *dsigma_dq = sign * ds;
    return sign * (sp + shift);
}

/* U(P)[n][e]: P above the diagonal, 1 on it, 0 below */
static inline float upper(const float *P, int E, int n, int e)
{
    return e > n ? P[(size_t)n * E + e] : e == n ? 1.0f : 0.0f;
}

/* rows of S_B and S_C inside one layer's x_proj (R + 2Ns, E) */
static float *rows_B(const ssm_config *c, float *xp) { return xp + (size_t)(c->dt_rank + c->n_one) * c->d_inner; }
static float *rows_C(const ssm_config *c, float *xp)
{
    return xp + (size_t)(c->dt_rank + c->state_dim + c->n_one) * c->d_inner;
}

void ssm_scenario_forward(const ssm_config *c, ssm_params *p)
{
    if (c->scenario == SSM_SCENARIO_DEFAULT) return;
    int E = c->d_inner, N = c->d_state;
    size_t X = c->dt_rank + 2 * c->state_dim;
    for (int l = 0; l < c->n_layer; l++) {
        const float *P = p->scen_P + (size_t)l * N * E, *q = p->scen_q + (size_t)l * N;
        float *xp = p->x_proj + l * X * E, *SB = rows_B(c, xp), *SC = rows_C(c, xp);
        for (int n = 0; n < N; n++) {
            float sigma = ssm_scenario_sigma(c->scenario, n, N, q[n], NULL);
            for (int e = 0; e < E; e++) {
                float u = upper(P, E, n, e);
                SC[(size_t)n * E + e] = u;
                SB[(size_t)n * E + e] = sigma * u;
            }
        }
    }
}

void ssm_scenario_backward(const ssm_config *c, const ssm_params *p, ssm_params *g)
{
    if (c->scenario == SSM_SCENARIO_DEFAULT) return;
    int E = c->d_inner, N = c->d_state;
    size_t X = c->dt_rank + 2 * c->state_dim;
    for (int l = 0; l < c->n_layer; l++) {
        const float *P = p->scen_P + (size_t)l * N * E, *q = p->scen_q + (size_t)l * N;
        float *dP = g->scen_P + (size_t)l * N * E, *dq = g->scen_q + (size_t)l * N;
        float *dxp = g->x_proj + l * X * E, *dSB = rows_B(c, dxp), *dSC = rows_C(c, dxp);
        for (int n = 0; n < N; n++) {
            float dsig, sigma = ssm_scenario_sigma(c->scenario, n, N, q[n], &dsig);
            double dsigma = 0.0;
            for (int e = 0; e < E; e++) {
                size_t i = (size_t)n * E + e;
                dsigma += (double)dSB[i] * upper(P, E, n, e);
                if (e > n) dP[i] += dSC[i] + sigma * dSB[i];
                dSB[i] = dSC[i] = 0.0f;
            }
            dq[n] += (float)dsigma * dsig;
        }
    }
}
