/* test_history.c — unit tests of a run's history (scenarios/history.c):
 * rows written and read back by column name, empty cells for NAN and for
 * the dynamics of training rows, the R^2 rule in the decay cells, the
 * resume rule (rows after the resumed step dropped, an older file's
 * columns mapped by name, no file: a new history), series for plots, and
 * one-line errors naming the file and line. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/dynamics.h"
#include "scenarios/history.h"
#include "tests/tmpdir.h"

TestSuite(history, .init = tmpdir_make, .fini = tmpdir_remove);

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* A validation's dynamics for two layers; exponential or not. */
static task_dynamics fake_dynamics(int *counts, int exponential)
{
    return (task_dynamics){.n_layer = 2, .eig_pos = counts, .eig_neg = counts + 2, .eig_complex = counts + 4,
                           .pos = 3, .neg = 1, .complex_total = 0, .mean_slope = 0.25f, .mix_slope = -0.5f,
                           .verdict = SSM_VERDICT_DIVERGING, .mix_verdict = SSM_VERDICT_CONVERGING,
                           .fit_ok = 1, .decay_rate = M_LN2 / 4, .half_life = 4.0, .fit_r2 = exponential ? 0.9 : 0.3,
                           .exponential = exponential, .cos_last = 0.5, .dev_last = 0.75, .dev_ratio = 0.8,
                           .seconds = 0.125};
}

/* Steps 1 .. n: a training row each, a validation row on even steps. */
static void write_run(const char *dir, const char *resume, long resume_step, long first, long n)
{
    history_writer w;
    cr_assert_eq(history_open(&w, dir, resume, resume_step), SSM_OK, "%s", ssm_last_error());
    int counts[6] = {2, 1, 0, 1, 0, 0};
    task_dynamics dy = fake_dynamics(counts, 1);
    for (long s = first; s <= n; s++) {
        history_row r = {.step = s, .loss = 1.0 / s, .acc = NAN, .bpb = 1.0 / s / M_LN2, .lr = 1e-3,
                         .grad_norm = 0.5, .tokens_per_s = 100, .elapsed_s = s};
        cr_assert_eq(history_append(&w, &r), SSM_OK);
        if (s % 2) continue;
        r = (history_row){.step = s, .val = 1, .loss = 2.0 / s, .acc = NAN, .bpb = 2.0 / s / M_LN2, .lr = NAN,
                          .grad_norm = NAN, .tokens_per_s = NAN, .elapsed_s = s, .dyn = &dy};
        cr_assert_eq(history_append(&w, &r), SSM_OK);
    }
    cr_assert_eq(history_close(&w), SSM_OK);
}

Test(history, rows_read_back_by_column_name)
{
    write_run(tmpdir, NULL, 0, 1, 4);
    history h;
    cr_assert_eq(history_load(&h, tmpdir), SSM_OK, "%s", ssm_last_error());
    int n;
    const char *const *cols = history_columns(&n);
    cr_assert_eq(h.n_cols, n);
    for (int i = 0; i < n; i++) cr_expect_str_eq(h.names[i], cols[i]);
    cr_assert_eq(h.n_rows, 6, "4 training rows and 2 validation rows");
    cr_expect_str_eq(history_cell(&h, 0, history_column(&h, "split")), "train");
    cr_expect_str_eq(history_cell(&h, 2, history_column(&h, "split")), "val");
    cr_expect_str_eq(history_cell(&h, 0, history_column(&h, "acc")), "", "NAN is an empty cell");
    cr_expect_str_eq(history_cell(&h, 0, history_column(&h, "verdict")), "", "no dynamics on training rows");
    cr_expect_str_eq(history_cell(&h, 2, history_column(&h, "lr")), "");
    cr_expect_str_eq(history_cell(&h, 2, history_column(&h, "eig_pos_layers")), "2;1");
    cr_expect_str_eq(history_cell(&h, 2, history_column(&h, "eig_neg_layers")), "0;1");
    cr_expect_str_eq(history_cell(&h, 2, history_column(&h, "verdict")), "diverging");
    cr_expect_str_eq(history_cell(&h, 2, history_column(&h, "mix_verdict")), "converging");
    cr_expect_str_eq(history_cell(&h, 2, history_column(&h, "decay")), "exponential");
    cr_expect(history_value(&h, 2, history_column(&h, "eig_pos")) == 3);
    cr_expect(history_value(&h, 2, history_column(&h, "half_life")) == 4.0);
    cr_expect(history_value(&h, 2, history_column(&h, "loss")) == 1.0);
    cr_expect(fabs(history_value(&h, 0, history_column(&h, "bpb")) - 1.0 / M_LN2) < 1e-8);
    cr_expect(isnan(history_value(&h, 0, history_column(&h, "verdict"))));
    cr_expect_eq(history_column(&h, "nope"), -1);
    cr_expect_str_eq(history_cell(&h, 0, -1), "");
    double steps[6], loss[6];
    cr_assert_eq(history_series(&h, "val", "loss", steps, loss), 2);
    cr_expect(steps[0] == 2 && steps[1] == 4 && loss[0] == 1.0 && loss[1] == 0.5);
    cr_expect_eq(history_series(&h, "train", "nope", steps, loss), -1);
    history_free(&h);
}

Test(history, r2_below_the_threshold_has_no_half_life)
{
    history_writer w;
    cr_assert_eq(history_open(&w, tmpdir, NULL, 0), SSM_OK);
    int counts[6] = {0};
    task_dynamics dy = fake_dynamics(counts, 0);
    history_row r = {.step = 1, .val = 1, .loss = 1, .acc = 0.5, .bpb = NAN, .lr = NAN, .grad_norm = NAN,
                     .tokens_per_s = NAN, .elapsed_s = 0, .dyn = &dy};
    cr_assert_eq(history_append(&w, &r), SSM_OK);
    cr_assert_eq(history_close(&w), SSM_OK);
    history h;
    cr_assert_eq(history_load(&h, tmpdir), SSM_OK);
    cr_expect_str_eq(history_cell(&h, 0, history_column(&h, "half_life")), "");
    cr_expect_str_eq(history_cell(&h, 0, history_column(&h, "decay")), "none");
    cr_expect_str_eq(history_cell(&h, 0, history_column(&h, "fit_r2")), "0.3");
    cr_expect_str_eq(history_cell(&h, 0, history_column(&h, "acc")), "0.5");
    history_free(&h);
}

Test(history, resume_drops_the_rows_after_the_resumed_step)
{
    write_run(tmpdir, NULL, 0, 1, 6);          /* a run that went on to step 6 */
    write_run(tmpdir, tmpdir, 4, 5, 8);        /* resumed from a checkpoint at 4, to 8 */
    history h;
    cr_assert_eq(history_load(&h, tmpdir), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(h.n_rows, 12, "8 training rows and 4 validation rows, once each");
    double steps[12], v[12];
    int n = history_series(&h, "train", "step", steps, v);
    cr_assert_eq(n, 8);
    for (int i = 0; i < n; i++) cr_expect(steps[i] == i + 1, "row %d is step %g", i, steps[i]);
    history_free(&h);
}

Test(history, resume_maps_an_older_file_by_column_name)
{
    char old[600], other[600];
    snprintf(old, sizeof old, "%s", tmpdir_path("old"));
    snprintf(other, sizeof other, "%s", tmpdir_path("new"));
    cr_assert_eq(mkdir(old, 0755), 0);
    cr_assert_eq(mkdir(other, 0755), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/train.csv", old);
    write_file(path, "step,split,loss,bpb,lr,grad_norm,tokens_per_s,elapsed_s\n"
                     "1,train,5.5,7.9,0.003,1.2,100.0,0.01\n2,val,5.4,7.8,,,,0.02\n3,train,5.3,7.6,0.002,1.1,99.0,0.03\n");
    history_writer w;
    cr_assert_eq(history_open(&w, other, old, 2), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(history_close(&w), SSM_OK);
    history h;
    cr_assert_eq(history_load(&h, other), SSM_OK, "%s", ssm_last_error());
    int n;
    history_columns(&n);
    cr_assert_eq(h.n_cols, n, "the new columns");
    cr_assert_eq(h.n_rows, 2, "step 3 is after the resumed step");
    cr_expect_str_eq(history_cell(&h, 0, history_column(&h, "bpb")), "7.9");
    cr_expect_str_eq(history_cell(&h, 0, history_column(&h, "lr")), "0.003");
    cr_expect_str_eq(history_cell(&h, 1, history_column(&h, "split")), "val");
    cr_expect_str_eq(history_cell(&h, 1, history_column(&h, "acc")), "");
    history_free(&h);
    cr_assert_eq(history_load(&h, old), SSM_OK);
    cr_expect_eq(h.n_rows, 3, "the source is left alone");
    history_free(&h);

    char none[600];
    snprintf(none, sizeof none, "%s", tmpdir_path("none"));
    cr_assert_eq(mkdir(none, 0755), 0);
    cr_assert_eq(history_open(&w, other, none, 7), SSM_OK, "no history to resume: a new one");
    cr_assert_eq(history_close(&w), SSM_OK);
    cr_assert_eq(history_load(&h, other), SSM_OK);
    cr_expect_eq(h.n_rows, 0);
    history_free(&h);
}

Test(history, errors_name_the_file_and_line)
{
    history h;
    cr_expect_eq(history_load(&h, tmpdir), SSM_ERR_NOINPUT);
    cr_expect(strstr(ssm_last_error(), "train.csv: cannot open") != NULL, "%s", ssm_last_error());
    write_file(tmpdir_path("train.csv"), "step,split,loss\n1,train,2\n\n2,train\n");
    cr_expect_eq(history_load(&h, tmpdir), SSM_ERR_DATA);
    cr_expect(strstr(ssm_last_error(), "train.csv:4: 2 fields, but the header has 3") != NULL, "%s", ssm_last_error());
    write_file(tmpdir_path("train.csv"), "\n");
    cr_expect_eq(history_load(&h, tmpdir), SSM_ERR_DATA);
    history_writer w;
    cr_expect_eq(history_open(&w, tmpdir, tmpdir, 3), SSM_ERR_DATA, "a history that cannot be read is not resumed");
    cr_expect_eq(history_open(&w, tmpdir_path("missing"), NULL, 0), SSM_ERR_CANTCREAT);
    cr_expect(strstr(ssm_last_error(), "missing/train.csv: cannot create") != NULL, "%s", ssm_last_error());
}
