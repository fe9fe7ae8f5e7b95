/* test_task_dynamics.c — unit tests of task_dynamics_measure
 * (scenarios/task_dynamics.c): on a tiny MQAR task its numbers are those
 * of the engine's measurements called one by one on the first validation
 * batch (norms on the whole batch, recency on its first sequences, the
 * spectrum's sign counts); the quick budget measures fewer sequences with
 * probes; measuring leaves the weights as they were and the gradients
 * zero, so training after it is unchanged; and the R^2 rule. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dynamics.h"
#include "engine/model.h"
#include "engine/recency.h"
#include "scenarios/run_config.h"
#include "scenarios/task.h"
#include "scenarios/task_dynamics.h"

/* A tiny MQAR task (no files), its model of width D (initialised) and one
 * measurement of it. */
typedef struct {
    run_config rc;
    task_data d;
    ssm_model m;
    task_dynamics dy;
} fixture;

static void fixture_build(fixture *f, int D)
{
    char width[32];
    snprintf(width, sizeof width, "d_model=%d", D);
    const char *kv[] = {"task=mqar", "vocab_size=32", "mqar_vocab=32", "mqar_len=16", "mqar_pairs=2",
                        "batch_size=6", width, "n_layer=2", "d_state=4", "threads=1", "mqar_val_examples=12"};
    run_config_default(&f->rc);
    for (int i = 0; i < 11; i++) cr_assert_eq(run_config_set(&f->rc, kv[i], "test"), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(run_config_check(&f->rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(task_data_load(&f->d, &f->rc, 0), SSM_OK, "%s", ssm_last_error());
    ssm_config mc;
    cr_assert_eq(task_model_config(&f->d, &f->rc, &mc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_build(&f->m, &mc), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(&f->m, 3);
}

static void fixture_measure(fixture *f, int budget)
{
    cr_assert_eq(task_dynamics_measure(&f->d, &f->m, budget, &f->dy), SSM_OK, "%s", ssm_last_error());
}

static void fixture_free(fixture *f)
{
    task_dynamics_free(&f->dy);
    ssm_model_free(&f->m);
    task_data_free(&f->d);
}

Test(task_dynamics, full_budget_is_the_engine_measurements_on_the_first_batch)
{
    fixture f;
    fixture_build(&f, 8);
    fixture_measure(&f, TASK_DYNAMICS_FULL);
    const task_dynamics *dy = &f.dy;
    ssm_model *m = &f.m;

    cr_assert_eq(task_first_val_batch(&f.d), 6);
    ssm_norms norms;
    cr_assert_eq(ssm_model_forward(m, f.d.batch), SSM_OK);
    cr_assert_eq(ssm_dynamics_norms(m, &norms), SSM_OK);
    cr_expect(dy->mean_slope == norms.mean_slope && dy->verdict == norms.verdict);
    cr_expect(dy->mix_slope == norms.mix_mean_slope && dy->mix_verdict == norms.mix_verdict);
    ssm_norms_free(&norms);

    ssm_batch b = *f.d.batch;
    b.B = TASK_DYNAMICS_SEQS;
    int targets[TASK_DYNAMICS_TARGETS];
    int n = ssm_recency_targets(b.L, TASK_DYNAMICS_TARGETS, targets);
    ssm_influence inf;
    ssm_decay fit;
    cr_assert_eq(ssm_recency_influence(m, &b, targets, n, SSM_INFLUENCE_AUTO, TASK_DYNAMICS_PROBE_SEED, &inf), SSM_OK);
    cr_assert_eq(ssm_recency_fit_decay(&inf, SSM_DECAY_MIN_DIST, &fit), SSM_OK);
    cr_expect(dy->fit_ok && dy->decay_rate == fit.rate && dy->half_life == fit.half_life && dy->fit_r2 == fit.r2);
    cr_expect(dy->n_seq == TASK_DYNAMICS_SEQS && dy->probes == 0 && inf.probes == 0, "d_model 8: exact");
    ssm_influence_free(&inf);

    double cs[3], dev[3];
    cr_assert_eq(ssm_model_forward(m, &b), SSM_OK);
    cr_assert_eq(ssm_recency_smoothing(m, cs, dev), SSM_OK);
    cr_expect(dy->cos_last == cs[2] && dy->dev_last == dev[2] && dy->dev_ratio == dev[2] / dev[0]);
    m->last = NULL;

    ssm_spectrum sp;
    cr_assert_eq(ssm_dynamics_spectrum(m, &sp), SSM_OK);
    cr_assert_eq(dy->n_layer, 2);
    int total = 0;
    for (int l = 0; l < 2; l++) {
        cr_expect(dy->eig_pos[l] == sp.n_pos[l] && dy->eig_neg[l] == sp.n_neg[l] &&
                  dy->eig_complex[l] == sp.n_complex[l], "layer %d", l);
        total += sp.n_pos[l] + sp.n_neg[l] + sp.n_complex[l];
    }
    cr_expect_eq(dy->pos + dy->neg + dy->complex_total, total);
    cr_expect(dy->seconds >= 0);
    ssm_spectrum_free(&sp);
    fixture_free(&f);
}

Test(task_dynamics, quick_budget_takes_fewer_sequences_and_probes)
{
    fixture f;
    fixture_build(&f, 16);
    fixture_measure(&f, TASK_DYNAMICS_QUICK);
    cr_expect_eq(f.dy.n_seq, TASK_DYNAMICS_QUICK_SEQS);
    cr_expect_eq(f.dy.probes, TASK_DYNAMICS_QUICK_PROBES, "d_model 16 > %d: probes", TASK_DYNAMICS_QUICK_PROBES);
    cr_expect(isfinite(f.dy.mean_slope) && isfinite(f.dy.cos_last) && f.dy.fit_ok);
    task_dynamics_free(&f.dy);
    fixture_measure(&f, TASK_DYNAMICS_FULL);
    cr_expect(f.dy.n_seq == TASK_DYNAMICS_SEQS && f.dy.probes == 0, "16 x 4 targets <= 1024: exact");
    fixture_free(&f);
}

Test(task_dynamics, leaves_weights_alone_and_gradients_zero)
{
    fixture f;
    fixture_build(&f, 16);
    cr_assert_eq(ssm_model_alloc_grads(&f.m), SSM_OK);
    size_t bytes = f.m.num_params * sizeof(float);
    float *before = malloc(bytes);
    memcpy(before, f.m.params_memory, bytes);
    fixture_measure(&f, TASK_DYNAMICS_QUICK);
    cr_expect_eq(memcmp(before, f.m.params_memory, bytes), 0, "weights changed");
    size_t nonzero = 0;
    for (size_t i = 0; i < f.m.num_params; i++) nonzero += f.m.grads_memory[i] != 0.0f;
    cr_expect_eq(nonzero, 0, "%zu gradients left nonzero", nonzero);
    cr_expect_null(f.m.last);
    free(before);
    fixture_free(&f);
}

/* The R^2 rule: at least TASK_DECAY_MIN_R2 is an exponential decay with a
 * half-life; below it, or NaN, is "none" with no half-life; no fit, no name. */
Test(task_dynamics, r2_below_the_threshold_is_no_exponential_decay)
{
    ssm_decay fit = {.rate = 0.5, .half_life = M_LN2 / 0.5, .r2 = TASK_DECAY_MIN_R2};
    cr_expect(task_decay_exponential(&fit));
    fit.r2 = nextafter(TASK_DECAY_MIN_R2, 0.0);
    cr_expect(!task_decay_exponential(&fit));
    fit.r2 = NAN;
    cr_expect(!task_decay_exponential(&fit));
    task_dynamics dy = {.fit_ok = 1, .half_life = 2.0, .fit_r2 = 0.9, .exponential = 1};
    cr_expect(task_dynamics_half_life(&dy) == 2.0);
    cr_expect_str_eq(task_dynamics_decay_name(&dy), "exponential");
    dy.exponential = 0;
    cr_expect(isnan(task_dynamics_half_life(&dy)));
    cr_expect_str_eq(task_dynamics_decay_name(&dy), "none");
    dy.fit_ok = 0;
    cr_expect_null(task_dynamics_decay_name(&dy));
}
