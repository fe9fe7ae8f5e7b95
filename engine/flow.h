/* flow.h — the depth-as-time flow of one selective-scan layer, the system of
 * Vo et al.'s theorem (ssmlab-math(7) DYNAMICS, "The flow of one layer"):
 * tokens x_i in R^D integrated by Euler steps x(t+h) = x(t) + h Mixer_l(x(t))
 * with one layer's mixer and no RMSNorm, the token norms at every step, their
 * log-norm trend over time and a converging/diverging/no-trend verdict. */
#ifndef SSM_FLOW_H
#define SSM_FLOW_H

#include <stdatomic.h>

#include "engine/model.h"
#include "engine/status.h"

enum { SSM_FLOW_CONVERGING = 0, SSM_FLOW_DIVERGING, SSM_FLOW_NO_TREND };

/* What is integrated: the whole mixer (tokens in R^D, the layer's in_proj,
 * conv, gate and out_proj included), or the theorem's S6 map alone (tokens
 * in R^E, ssm_model_s6_forward: scan of x itself, no skip). */
enum { SSM_FLOW_MIXER = 0, SSM_FLOW_S6, SSM_FLOW_SYSTEM_COUNT };

/* The verdict reads the fit of the mean log-norm over time: no trend when
 * its R^2 is below SSM_FLOW_R2_MIN, else converging or diverging by the
 * sign of its slope. */
#define SSM_FLOW_R2_MIN 0.5
/* Norms above this count as blown up: the integration stops there. */
#define SSM_FLOW_NORM_MAX 1e30f
#define SSM_FLOW_STEPS_MAX 1000
/* The flow ssmlab inspect's verdicts table and the lab show: step h and
 * steps T (inspect --flow's defaults too). */
#define SSM_FLOW_STEP_DEFAULT 0.1
#define SSM_FLOW_STEPS_DEFAULT 50

typedef struct {
    int system;        /* SSM_FLOW_MIXER or SSM_FLOW_S6 */
    int L, T, dim;     /* tokens, Euler steps asked for, token width (D or E) */
    int steps;         /* steps done: T, or fewer when a norm blew up */
    float h;           /* step size */
    float *norms;      /* (T+1, L) ||x_i(k h)||_2, k = 0..steps; after an early
                        * stop row steps+1 holds the norm that blew up, later rows NaN */
    float *rates;      /* (L) least-squares slope of ln ||x_i|| against t = k h */
    float *r2;         /* (L) R^2 of that fit */
    float mean_rate;   /* slope of the mean over tokens of ln ||x_i|| against t */
    float mean_r2;     /* R^2 of that fit */
    int verdict;       /* SSM_FLOW_*, from mean_rate and mean_r2 */
} ssm_flow;

/* Integrate T Euler steps of step h from x0 (L, dim) with layer `layer` of
 * m: dim = D and ssm_model_mixer_forward for SSM_FLOW_MIXER, dim = E and
 * ssm_model_s6_forward for SSM_FLOW_S6, on a (1, L, dim) batch (m's
 * activations are reused, so no backward may follow).  out is allocated here, freed by
 * ssm_flow_free.  Stops early (out->steps < T) when a norm is not finite or
 * exceeds SSM_FLOW_NORM_MAX; that run is diverging whatever the fit says.
 * SSM_ERR_INTERRUPTED (out freed) when *cancel becomes nonzero between
 * steps (cancel may be NULL). */
ssm_status ssm_flow_run(ssm_model *m, int layer, int system, const float *x0, int L,
                        float h, int T, atomic_int *cancel, ssm_flow *out);
/* token width of a system: d_model or d_inner */
int ssm_flow_dim(const ssm_config *c, int system);
const char *ssm_flow_system_name(int system);     /* "mixer", "s6" */
int ssm_flow_system_parse(const char *s);         /* -1 if unknown */
void ssm_flow_free(ssm_flow *f);
const char *ssm_flow_verdict_name(int verdict);   /* "converging", "diverging", "no-trend" */

/* Least-squares fit of logy_k against t_k = k h, k = 0..n-1: slope and
 * R^2; R^2 = 0 when the mean squared deviation of logy is at most
 * SSM_FLOW_FLAT (ln-norms constant to rounding: nothing to explain).  n >= 2. */
#define SSM_FLOW_FLAT 1e-12
void ssm_flow_fit(const double *logy, int n, double h, double *slope, double *r2);

#endif
