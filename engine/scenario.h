/* scenario.h — the S_B, S_C parameterisation of ssmlab-math(7) DYNAMICS (Vo et al.): raw P
 * (N, E) and q (N) per layer give S_C = U(P) and S_B = diag(sigma(q)) U(P),
 * whose product S_C^T S_B has eigenvalues of the signs of sigma.  The model
 * keeps x_proj's learned B and C rows equal to S_B and S_C, so everything
 * that reads x_proj (forward, spectra, checkpoints) sees the effective W_x. */
#ifndef SSM_SCENARIO_H
#define SSM_SCENARIO_H

#include "engine/model.h"

/* sigma_n(q) for row n of N in a scenario, and d sigma_n / d q. */
float ssm_scenario_sigma(int scenario, int n, int N, float q, float *dsigma_dq);

/* Write S_B and S_C of every layer into the learned B and C rows of x_proj. */
void ssm_scenario_forward(const ssm_config *c, ssm_params *p);

/* Move the gradients of x_proj's learned B and C rows into dP and dq (chain
 * rule through U and sigma; the strict lower triangle of P gets none) and
 * zero those rows of dx_proj, which are not free parameters. */
void ssm_scenario_backward(const ssm_config *c, const ssm_params *p, ssm_params *g);

#endif
