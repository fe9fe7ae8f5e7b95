/* task_dynamics.c — one measurement of a model's token dynamics on its
 * task's first validation batch (see task_dynamics.h): spectrum signs,
 * token-norm verdicts, influence decay and over-smoothing, each computed
 * by its one engine function. */
#include "scenarios/task_dynamics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/dynamics.h"

/* Eigenvalue signs of S_C^T S_B, per layer (a Mamba-2 layer's summed
 * over its groups) and summed. */
static ssm_status measure_spectrum(const ssm_model *m, task_dynamics *out)
{
    ssm_spectrum sp;
    ssm_status st = ssm_dynamics_spectrum(m, &sp);
    if (st) return st;
    for (int r = 0; r < out->n_layer * sp.n_groups; r++) {   /* row r: layer r / G, group r % G */
        int l = r / sp.n_groups;
        out->eig_pos[l] += sp.n_pos[r];
        out->eig_neg[l] += sp.n_neg[r];
        out->eig_complex[l] += sp.n_complex[r];
        out->pos += sp.n_pos[r];
        out->neg += sp.n_neg[r];
        out->complex_total += sp.n_complex[r];
    }
    ssm_spectrum_free(&sp);
    return SSM_OK;
}

/* Token norms over depth on the whole batch: the residual-stream and
 * mixer-output slopes and verdicts. */
static ssm_status measure_norms(ssm_model *m, const ssm_batch *b, task_dynamics *out)
{
    ssm_norms norms;
    ssm_status st = ssm_model_forward(m, b);
    if (st || (st = ssm_dynamics_norms(m, &norms))) return st;
    out->mean_slope = norms.mean_slope;
    out->verdict = norms.verdict;
    out->mix_slope = norms.mix_mean_slope;
    out->mix_verdict = norms.mix_verdict;
    ssm_norms_free(&norms);
    return SSM_OK;
}

/* Influence of x_0[s] on x_n[t] at TASK_DYNAMICS_TARGETS targets and its
 * decay fit (a failed fit leaves the fit NAN, with a note). */
static ssm_status measure_influence(ssm_model *m, const ssm_batch *b, int probes, task_dynamics *out)
{
    int targets[TASK_DYNAMICS_TARGETS];
    int n = ssm_recency_targets(b->L, TASK_DYNAMICS_TARGETS, targets);
    ssm_influence inf;
    ssm_decay fit;
    ssm_status st = ssm_recency_influence(m, b, targets, n, probes, TASK_DYNAMICS_PROBE_SEED, &inf);
    if (st) return st;
    out->probes = inf.probes;
    out->fit_ok = ssm_recency_fit_decay(&inf, SSM_DECAY_MIN_DIST, &fit) == SSM_OK;
    if (out->fit_ok) {
        out->decay_rate = fit.rate;
        out->half_life = fit.half_life;
        out->fit_r2 = fit.r2;
        out->exponential = task_decay_exponential(&fit);
    } else {
        snprintf(out->fit_note, sizeof out->fit_note, "%s", ssm_last_error());
    }
    if (ssm_recency_tail(&inf, SSM_TAIL_MIN_DIST, &out->tail64)) out->tail64 = NAN;   /* L <= 64 */
    ssm_influence_free(&inf);
    return SSM_OK;
}

/* Over-smoothing of the last residual stream x_n, and its deviation
 * relative to the embedded input x_0's. */
static ssm_status measure_smoothing(ssm_model *m, const ssm_batch *b, task_dynamics *out)
{
    int nl = m->cfg.n_layer;
    double *cs = malloc(sizeof(double) * (nl + 1)), *dev = malloc(sizeof(double) * (nl + 1));   /* (nl+1) */
    ssm_status st = cs && dev ? ssm_model_forward(m, b) : ssm_fail(SSM_ERR_NOMEM, "out of memory");
    if (!st) st = ssm_recency_smoothing(m, cs, dev);
    if (!st) {
        out->cos_last = cs[nl];
        out->dev_last = dev[nl];
        out->dev_ratio = dev[0] > 0 ? dev[nl] / dev[0] : NAN;
    }
    free(cs);
    free(dev);
    return st;
}

/* Influence and over-smoothing on the first rows of the batch (of `rows`
 * filled), as many as the budget says. */
static ssm_status measure_recency(ssm_model *m, const ssm_batch *full, int rows, int budget,
                                  task_dynamics *out)
{
    int quick = budget == TASK_DYNAMICS_QUICK;
    int seqs = quick ? TASK_DYNAMICS_QUICK_SEQS : TASK_DYNAMICS_SEQS;
    int probes = !quick ? SSM_INFLUENCE_AUTO
                 : m->cfg.d_model <= TASK_DYNAMICS_QUICK_PROBES ? SSM_INFLUENCE_EXACT : TASK_DYNAMICS_QUICK_PROBES;
    ssm_batch b = *full;
    b.B = out->n_seq = rows < seqs ? rows : seqs;
    ssm_status st = measure_influence(m, &b, probes, out);
    if (!st) st = measure_smoothing(m, &b, out);
    m->last = NULL;   /* b lives on this stack frame */
    return st;
}

/* The file of the validation split, for messages. */
static const char *val_source(const task_data *d)
{
    if (d->task == RUN_TASK_MQAR) return "mqar";
    return d->classify ? d->test.path : d->text.path;
}

ssm_status task_dynamics_measure(task_data *d, ssm_model *m, int budget, task_dynamics *out)
{
    double t0 = ssm_now_s();
    int nl = m->cfg.n_layer;
    *out = (task_dynamics){.n_layer = nl, .mean_slope = NAN, .mix_slope = NAN, .decay_rate = NAN,
                           .half_life = NAN, .fit_r2 = NAN, .tail64 = NAN, .cos_last = NAN, .dev_last = NAN,
                           .dev_ratio = NAN};
    out->eig_pos = calloc((size_t)3 * nl, sizeof(int));   /* (3, nl): pos, neg, complex */
    if (!out->eig_pos) return ssm_fail(SSM_ERR_NOMEM, "out of memory");
    out->eig_neg = out->eig_pos + nl;
    out->eig_complex = out->eig_pos + 2 * nl;
    int rows = task_first_val_batch(d);
    if (!rows) return ssm_fail(SSM_ERR_DATA, "%s: empty validation split", val_source(d));
    ssm_status st = measure_norms(m, d->batch, out);
    if (!st) st = measure_recency(m, d->batch, rows, budget, out);
    if (!st) st = measure_spectrum(m, out);
    out->seconds = ssm_now_s() - t0;
    return st;
}

void task_dynamics_free(task_dynamics *dy)
{
    free(dy->eig_pos);
    dy->eig_pos = dy->eig_neg = dy->eig_complex = NULL;
}

int task_decay_exponential(const ssm_decay *fit) { return fit->r2 >= TASK_DECAY_MIN_R2; }

double task_dynamics_half_life(const task_dynamics *dy) { return dy->exponential ? dy->half_life : NAN; }

const char *task_dynamics_decay_name(const task_dynamics *dy)
{
    return !dy->fit_ok ? NULL : dy->exponential ? "exponential" : "none";
}
