/* task_dynamics.h — the token dynamics of a model on its task's first
 * validation batch, in one call: the signs of the eigenvalues of
 * S_C^T S_B per layer and the token-norm verdicts of the residual stream
 * and of the mixer outputs (ssmlab-math(7) DYNAMICS, engine/dynamics.h),
 * the influence decay with its half-life and R^2, and the over-smoothing
 * of the last layer (ssmlab-math(7) RECENCY, engine/recency.h).
 * ssmlab sweep (once per trained model), ssmlab train (at every
 * validation, into train.csv) and the lab call it, so their numbers agree. */
#ifndef SSM_TASK_DYNAMICS_H
#define SSM_TASK_DYNAMICS_H

#include "engine/model.h"
#include "engine/recency.h"
#include "engine/status.h"
#include "scenarios/task.h"

/* An influence decay fit with R^2 below this is reported as "no
 * exponential decay", without a half-life: a line through ln I(t, s)
 * that explains less than half of its variance does not make a rate
 * worth quoting (ssmlab-math(7) RECENCY).  sweep's table, inspect's fit
 * rows and train.csv all apply it. */
#define TASK_DECAY_MIN_R2 0.5

/* How much is measured.  FULL (ssmlab sweep): the norms on the whole first
 * validation batch, influence and over-smoothing on its first
 * TASK_DYNAMICS_SEQS sequences at TASK_DYNAMICS_TARGETS targets, exact
 * when d_model * targets <= SSM_INFLUENCE_EXACT_MAX backward passes, else
 * SSM_INFLUENCE_PROBES probes.  QUICK (every validation of ssmlab train):
 * the same norms and spectrum, recency on the first
 * TASK_DYNAMICS_QUICK_SEQS sequences with TASK_DYNAMICS_QUICK_PROBES
 * probes per target (exact when d_model is no larger): 16 backward passes
 * of 2 sequences.  For bytes-small (d_model 128, 4 layers, L 128) on 2
 * busy cores that is about 0.5 to 1 s, against 2 to 3 s for the
 * validation loss and 20 to 35 s for FULL's 512 exact passes; its
 * half-life came within 1% of FULL's there. */
enum { TASK_DYNAMICS_FULL = 0, TASK_DYNAMICS_QUICK };
#define TASK_DYNAMICS_SEQS 4
#define TASK_DYNAMICS_TARGETS 4
#define TASK_DYNAMICS_QUICK_SEQS 2
#define TASK_DYNAMICS_QUICK_PROBES 4
#define TASK_DYNAMICS_PROBE_SEED 1   /* fixed: the same model gives the same numbers */

typedef struct {
    int n_layer;
    int *eig_pos, *eig_neg, *eig_complex;   /* (n_layer) eigenvalues of S_C^T S_B by sign
                                             * (Mamba-2: summed over the layer's groups) */
    int pos, neg, complex_total;            /* their sums over the layers */
    float mean_slope, mix_slope;   /* mean log-norm slopes over depth (mix: NaN for one layer) */
    int verdict, mix_verdict;      /* SSM_VERDICT_* of the residual stream, of the mixer outputs */
    int fit_ok;                    /* the decay fit ran (two distances at least) */
    double decay_rate, half_life, fit_r2;   /* the fit as ssm_decay gives it; NAN without a fit */
    int exponential;               /* fit_ok and fit_r2 >= TASK_DECAY_MIN_R2 */
    double tail64;                 /* influence at distances >= 64 over distance 1 (NAN: none) */
    char fit_note[192];            /* why there is no fit, when !fit_ok */
    double cos_last, dev_last;     /* over-smoothing of the last residual stream x_n */
    double dev_ratio;              /* dev_last / the deviation of x_0 (NAN when that is 0) */
    int n_seq, probes;             /* recency: sequences measured; 0 exact, else probes */
    double seconds;                /* wall time the measurement took */
} task_dynamics;

/* Measure m on the first validation batch of d (the block is refilled;
 * m->last is cleared).  Allocates m's gradients if needed; they are zero
 * on return, and m's weights are unchanged.  SSM_ERR_DATA when the
 * validation split is empty.  out is released with task_dynamics_free. */
ssm_status task_dynamics_measure(task_data *d, ssm_model *m, int budget, task_dynamics *out);
void task_dynamics_free(task_dynamics *dy);

/* The rule above on one fit: 1 when its R^2 is at least TASK_DECAY_MIN_R2
 * (0 for a NaN R^2). */
int task_decay_exponential(const ssm_decay *fit);

/* What to show: the half-life when the decay is exponential, else NAN;
 * "exponential" or "none", or NULL when there is no fit. */
double task_dynamics_half_life(const task_dynamics *dy);
const char *task_dynamics_decay_name(const task_dynamics *dy);

#endif
