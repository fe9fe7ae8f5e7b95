/* test_task.c — unit tests of task = mqar in the run configuration and the
 * task data (scenarios/run_config.c, scenarios/task.c): the mqar_* keys and the refusal of
 * nonsense, training batches that depend on (seed, step, micro-batch) alone
 * and cycle over mqar_train_examples, a validation stream disjoint from
 * training, validation loss and accuracy over query positions only, with
 * a progress callback per batch; and the resolved config's numbers in the
 * fewest digits that round-trip. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios/run_config.h"
#include "engine/model.h"
#include "data/mqar.h"
#include "scenarios/task.h"

/* Defaults, then each key=value override; asserts they parse. */
static run_config mqar_config(const char *const *kv, int n)
{
    run_config rc;
    run_config_default(&rc);
    const char *base[] = {"task=mqar", "vocab_size=32", "mqar_vocab=32", "mqar_len=16", "mqar_pairs=2",
                          "batch_size=4", "d_model=8", "n_layer=1", "d_state=4", "threads=1"};
    for (int i = 0; i < 10; i++) cr_assert_eq(run_config_set(&rc, base[i], "test"), SSM_OK, "%s", ssm_last_error());
    for (int i = 0; i < n; i++) cr_assert_eq(run_config_set(&rc, kv[i], "test"), SSM_OK, "%s", ssm_last_error());
    return rc;
}

/* The check of one override fails with SSM_ERR_CONFIG naming `word`. */
static void expect_refused(const char *kv, const char *word)
{
    run_config rc = mqar_config(&kv, 1);
    cr_expect_eq(run_config_check(&rc), SSM_ERR_CONFIG, "%s was accepted", kv);
    cr_expect(strstr(ssm_last_error(), word) != NULL, "%s: message '%s' lacks '%s'", kv, ssm_last_error(), word);
}

Test(task_mqar, keys_parse_and_nonsense_is_refused)
{
    const char *kv[] = {"mqar_alpha=0.5", "mqar_filler=zero", "mqar_train_examples=7", "mqar_val_examples=9"};
    run_config rc = mqar_config(kv, 4);
    cr_assert_eq(run_config_check(&rc), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(rc.task, RUN_TASK_MQAR);
    cr_expect_eq(rc.mqar.random_filler, 0);
    cr_expect_eq(rc.mqar.alpha, 0.5);
    cr_expect_eq(rc.mqar_train_examples, 7);
    cr_expect_str_eq(rc.data, "", "no corpus is filled in for mqar");
    char *text = run_config_string(&rc);   /* round trip through a checkpoint's record */
    run_config back;
    run_config_default(&back);
    cr_assert_eq(run_config_parse_text(&back, text, "record"), SSM_OK);
    cr_expect(back.task == RUN_TASK_MQAR && back.mqar.len == 16 && back.mqar.pairs == 2 &&
              back.mqar.random_filler == 0 && back.mqar_val_examples == 9);
    free(text);
    cr_expect_eq(run_config_set(&rc, "mqar_filler=some", "test"), SSM_ERR_CONFIG);
    cr_expect_eq(run_config_set(&rc, "mqar_pair=2", "test"), SSM_ERR_CONFIG);
    expect_refused("mqar_len=15", "mqar_len");
    expect_refused("mqar_pairs=5", "mqar_pairs");
    expect_refused("mqar_pairs=0", "mqar_pairs");
    expect_refused("mqar_vocab=64", "vocab_size");
    expect_refused("mqar_alpha=0", "mqar_alpha");
    expect_refused("reorder=hard", "reorder");
    expect_refused("data=/tmp/corpus.txt", "data");
    expect_refused("mqar_val_examples=0", "mqar_val_examples");
    expect_refused("dataset=mnist", "classify");
}

Test(task_mqar, keys_refuse_too_many_pairs_for_the_vocabulary)
{
    const char *kv[] = {"mqar_vocab=8", "mqar_len=32", "mqar_pairs=4"};
    run_config rc = mqar_config(kv, 3);
    cr_expect_eq(run_config_check(&rc), SSM_ERR_CONFIG);
    cr_expect(strstr(ssm_last_error(), "distinct keys") != NULL, "%s", ssm_last_error());
}

/* Rows b of the block against examples idx[b] of the stream `seed`. */
static void expect_rows(const task_data *d, uint64_t seed, const uint64_t *idx)
{
    int T = d->L, tok[64], tgt[64];
    for (int b = 0; b < d->B; b++) {
        cr_assert_eq(ssm_mqar_example(&d->mqar, seed, idx[b], tok, tgt, NULL), SSM_OK);
        cr_expect_eq(memcmp(tok, d->mblk.tokens + b * T, sizeof(int) * T), 0, "row %d tokens", b);
        cr_expect_eq(memcmp(tgt, d->mblk.targets + b * T, sizeof(int) * T), 0, "row %d targets", b);
    }
}

Test(task_mqar, training_batches_follow_step_and_micro_batch)
{
    const char *kv[] = {"grad_accum=2", "seed=5"};
    run_config rc = mqar_config(kv, 2);
    cr_assert_eq(run_config_check(&rc), SSM_OK, "%s", ssm_last_error());
    task_data d;
    cr_assert_eq(task_data_load(&d, &rc, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert(d.B == 4 && d.L == 16 && d.batch == &d.mblk.batch);
    cr_expect_neq(d.mqar_train_seed, d.mqar_val_seed);
    cr_assert_eq(task_train_batch(&d, &rc, 3, 1), SSM_OK, "%s", ssm_last_error());
    const uint64_t want[4] = {28, 29, 30, 31};   /* (3 * 2 + 1) * 4 + b */
    expect_rows(&d, d.mqar_train_seed, want);
    task_data_free(&d);
}

Test(task_mqar, training_examples_cycle_when_bounded)
{
    const char *kv[] = {"mqar_train_examples=5"};
    run_config rc = mqar_config(kv, 1);
    cr_assert_eq(run_config_check(&rc), SSM_OK, "%s", ssm_last_error());
    task_data d;
    cr_assert_eq(task_data_load(&d, &rc, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(task_train_batch(&d, &rc, 1, 0), SSM_OK, "%s", ssm_last_error());
    const uint64_t want[4] = {4, 0, 1, 2};   /* examples 4 .. 7 of a cycle of 5 */
    expect_rows(&d, d.mqar_train_seed, want);
    task_data_free(&d);
}

/* A task_progress_fn that records: calls, last done, last total, last
 * loss * 1e6. */
static void count_calls(void *ctx, long done, long total, double loss)
{
    long *seen = ctx;
    seen[0]++;
    seen[1] = done;
    seen[2] = total;
    seen[3] = lround(loss * 1e6);
}

Test(task_mqar, validation_is_a_disjoint_stream_scored_on_queries)
{
    const char *kv[] = {"mqar_val_examples=10"};
    run_config rc = mqar_config(kv, 1);
    cr_assert_eq(run_config_check(&rc), SSM_OK, "%s", ssm_last_error());
    task_data d;
    cr_assert_eq(task_data_load(&d, &rc, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(task_first_val_batch(&d), 4);
    const uint64_t first[4] = {0, 1, 2, 3};
    expect_rows(&d, d.mqar_val_seed, first);
    int *val = malloc(sizeof(int) * 4 * 16);
    memcpy(val, d.mblk.tokens, sizeof(int) * 4 * 16);
    cr_assert_eq(task_train_batch(&d, &rc, 0, 0), SSM_OK);
    cr_expect_neq(memcmp(val, d.mblk.tokens, sizeof(int) * 4 * 16), 0, "training step 0 repeats validation");
    free(val);

    ssm_config mc;
    ssm_model m;
    cr_assert_eq(task_model_config(&d, &rc, &mc), SSM_OK, "%s", ssm_last_error());
    cr_expect(mc.input_kind == SSM_INPUT_TOKENS && mc.n_classes == 0);
    cr_assert_eq(ssm_model_build(&m, &mc), SSM_OK);
    ssm_model_init(&m, 1);
    task_metrics v;
    cr_assert_eq(task_validate(&d, &m, 0, NULL, &v), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(v.n, 10 * 2, "10 examples of 2 queries, the last batch part-filled: %ld", v.n);
    cr_expect(v.acc >= 0.0 && v.acc <= 1.0 && v.loss > 0.0, "acc %g loss %g", v.acc, v.loss);
    cr_assert_eq(task_validate(&d, &m, 1, NULL, &v), SSM_OK);
    cr_expect_eq(v.n, 4 * 2, "one batch of 4 examples");
    long counted;
    long correct = task_batch_correct(&d, &m, &counted);
    cr_expect_eq(counted, 4 * 2);
    cr_expect_eq(correct, (long)lround(v.acc * counted));

    /* with a progress callback: one call per batch, the batches in all,
     * the running mean loss ending at the result; capped by max_batches */
    cr_expect_eq(task_val_batches(&d, 0), 3, "10 examples in batches of 4");
    cr_expect_eq(task_val_batches(&d, 2), 2);
    long seen[4] = {0};
    cr_assert_eq(task_validate_progress(&d, &m, 0, NULL, count_calls, seen, &v), SSM_OK, "%s", ssm_last_error());
    cr_expect(seen[0] == 3 && seen[1] == 3 && seen[2] == 3, "%ld calls, last %ld/%ld", seen[0], seen[1], seen[2]);
    cr_expect_eq(seen[3], lround(v.loss * 1e6), "the last running loss is the result");
    memset(seen, 0, sizeof seen);
    cr_assert_eq(task_validate_progress(&d, &m, 1, NULL, count_calls, seen, &v), SSM_OK);
    cr_expect(seen[0] == 1 && seen[2] == 1);
    ssm_model_free(&m);
    task_data_free(&d);
}

/* The resolved config echoes each float with the fewest digits that read
 * back as the same value: lr = 0.003, not %.9g's 0.00300000003; a float
 * that needs all nine digits keeps them; every value round-trips. */
Test(run_config, floats_print_shortest_and_round_trip)
{
    run_config rc;
    run_config_default(&rc);
    const char *kv[] = {"lr=3e-3", "min_lr=0.0003", "beta1=0.9", "norm_eps=1e-5", "val_fraction=0.1",
                        "mqar_alpha=0.01", "grad_clip=10.1583605"};
    for (int i = 0; i < 7; i++) cr_assert_eq(run_config_set(&rc, kv[i], "test"), SSM_OK, "%s", ssm_last_error());
    char *text = run_config_string(&rc);
    const char *want[] = {"\nlr = 0.003\n", "\nmin_lr = 0.0003\n", "\nbeta1 = 0.9\n", "\nnorm_eps = 1e-05\n",
                          "\nval_fraction = 0.1\n", "\nmqar_alpha = 0.01\n", "\ngrad_clip = 10.1583605\n"};
    for (int i = 0; i < 7; i++) cr_expect(strstr(text, want[i]) != NULL, "no '%s' in:\n%s", want[i] + 1, text);
    run_config back;
    run_config_default(&back);
    cr_assert_eq(run_config_parse_text(&back, text, "record"), SSM_OK, "%s", ssm_last_error());
    cr_expect(back.opt.lr == rc.opt.lr && back.opt.min_lr == rc.opt.min_lr && back.opt.beta1 == rc.opt.beta1 &&
              back.opt.grad_clip == rc.opt.grad_clip && back.model.norm_eps == rc.model.norm_eps &&
              back.val_fraction == rc.val_fraction && back.mqar.alpha == rc.mqar.alpha);
    free(text);
}
