/* test_lab.c — unit tests of the lab's controller (lab/): the hidden
 * attention against its formula and against the model's own scan, the
 * influence against ssm_recency_influence (exact and probed, cancellable,
 * leaving the activations alone), that the lab and ssmlab inspect compute
 * identical attention and influence tables for one model and input, the
 * training session for language models and image classifiers (steps,
 * accuracy, dirty state, save and load, rebuild, cancelled validation, test
 * images) and the engine thread (commands, snapshots, the self-pipe, the
 * influence and its decay, picking images); the runs and checkpoints rules
 * (new runs named after their settings, a loaded checkpoint inspected and
 * never written without confirmation, a run never taking a checkpoint
 * directory), the checkpoint's tokenizer.json, text refused where the
 * vocabulary cannot fit it, and a cancelled validation that leaves training
 * running; the run's train.csv (header and rows as history_load reads
 * them, a loaded run continued in the new run's directory only); a Mamba-2
 * session and its snapshot (heads to select, a spectrum per group, the
 * engine's refusals in place of the views it lacks, training going on). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/checkpoint.h"
#include "engine/dynamics.h"
#include "engine/recency.h"
#include "engine/states.h"
#include "lab/engine_thread.h"
#include "lab/session.h"
#include "tests/rel_err.h"
#include "tests/tmpdir.h"

TestSuite(attention);
TestSuite(influence);
TestSuite(session, .init = tmpdir_make, .fini = tmpdir_remove);
TestSuite(engine, .init = tmpdir_make, .fini = tmpdir_remove);

/* ------------------------------------------------------------------------ */
/* Hidden attention                                                         */

static void tiny_model(ssm_model *m, int polarize, int T, int *tokens)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 8;
    c.n_layer = 2;
    c.d_state = 4;
    c.vocab_size = 256;
    c.polarize = polarize;
    cr_assert_eq(ssm_config_finalize(&c), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_build(m, &c), SSM_OK);
    cr_assert_eq(ssm_model_alloc_grads(m), SSM_OK);   /* keeps every layer's activations */
    ssm_model_init(m, 3);
    for (int l = 0; l < c.n_layer * c.d_inner; l++) m->params.dt_proj_b[l] = -0.3f + 0.05f * (l % 7);
    for (int t = 0; t < T; t++) tokens[t] = (37 * t + 11) % 256;
    ssm_batch b = {.B = 1, .L = T, .tokens = tokens};
    cr_assert_eq(ssm_model_forward(m, &b), SSM_OK);
}

/* alpha_e[t][s] straight from ssmlab-math(7) RECENCY, in double. */
static double naive_alpha(const ssm_model *m, int l, int e, int t, int s)
{
    const ssm_config *c = &m->cfg;
    int T = m->act_L, E = c->d_inner, Ns = c->state_dim, R = c->dt_rank, N = c->d_state;
    const float *delta = m->acts.delta + (size_t)l * T * E, *x = m->acts.xdbl + (size_t)l * T * (R + 2 * Ns);
    double a = 0;
    for (int j = 0; j < Ns; j++) {
        int n = j - c->n_one;
        double A = n < 0 ? 0.0 : n >= N ? -100.0 : -exp(m->params.A_log[((size_t)l * E + e) * N + n]);
        double sum = 0;
        for (int k = s + 1; k <= t; k++) sum += delta[k * E + e] * A;
        a += x[t * (R + 2 * Ns) + R + Ns + j] * exp(sum) * delta[s * E + e] * x[s * (R + 2 * Ns) + R + j];
    }
    return a;
}

Test(attention, matches_the_formula_with_pinned_channels)
{
    ssm_model m = {0};
    int T = 9, tokens[9];
    tiny_model(&m, SSM_POLARIZE_BOTH, T, tokens);
    float *out = calloc(T * T, sizeof(float)), *mean = calloc(T * T, sizeof(float));
    int E = m.cfg.d_inner;
    for (int l = 0; l < 2; l++) {
        cr_assert_eq(ssm_session_hidden_attention(&m, l, -1, NULL, mean), SSM_OK, "%s", ssm_last_error());
        double acc[81] = {0};
        for (int e = 0; e < E; e++) {
            cr_assert_eq(ssm_session_hidden_attention(&m, l, e, NULL, out), SSM_OK);
            for (int t = 0; t < T; t++)
                for (int s = 0; s < T; s++) {
                    double want = s <= t ? naive_alpha(&m, l, e, t, s) : 0.0;
                    cr_assert(fabs(out[t * T + s] - want) <= 1e-5 * (1 + fabs(want)),
                              "layer %d channel %d [%d][%d]: %g vs %g", l, e, t, s, out[t * T + s], want);
                    acc[t * T + s] += fabs(want) / E;
                }
        }
        for (int i = 0; i < T * T; i++)
            cr_assert(fabs(mean[i] - acc[i]) <= 1e-5 * (1 + acc[i]), "mean |alpha| [%d]", i);
    }
    free(out);
    free(mean);
    ssm_model_free(&m);
}

/* The scan output is y_t[e] = sum_{s<=t} alpha_e[t][s] u_s[e] + D[e] u_t[e]. */
Test(attention, reproduces_the_scan_output)
{
    ssm_model m = {0};
    int T = 12, tokens[12];
    tiny_model(&m, SSM_POLARIZE_NONE, T, tokens);
    int E = m.cfg.d_inner;
    float *alpha = calloc(T * T, sizeof(float));
    for (int l = 0; l < 2; l++)
        for (int e = 0; e < E; e++) {
            cr_assert_eq(ssm_session_hidden_attention(&m, l, e, NULL, alpha), SSM_OK);
            const float *u = m.acts.u + (size_t)l * T * E, *ys = m.acts.ys + (size_t)l * T * E;
            for (int t = 0; t < T; t++) {
                double y = m.params.Dskip[l * E + e] * u[t * E + e];
                for (int s = 0; s <= t; s++) y += alpha[t * T + s] * u[s * E + e];
                cr_assert(fabs(y - ys[t * E + e]) <= 1e-4 * (1 + fabs(y)), "layer %d channel %d t %d: %g vs %g", l, e,
                          t, y, ys[t * E + e]);
            }
        }
    free(alpha);
    ssm_model_free(&m);
}

Test(attention, refuses_bad_arguments)
{
    ssm_model m = {0};
    int tokens[4];
    tiny_model(&m, SSM_POLARIZE_NONE, 4, tokens);
    float out[16];
    cr_assert_eq(ssm_session_hidden_attention(&m, 2, -1, NULL, out), SSM_ERR_USAGE);
    cr_assert_eq(ssm_session_hidden_attention(&m, 0, m.cfg.d_inner, NULL, out), SSM_ERR_USAGE);
    atomic_int cancel = 1;
    cr_assert_eq(ssm_session_hidden_attention(&m, 0, -1, &cancel, out), SSM_ERR_INTERRUPTED);
    ssm_model_free(&m);
}

/* ------------------------------------------------------------------------ */
/* Influence                                                                */

static void influence_check(int polarize, int probes)
{
    ssm_model m = {0}, ref = {0};
    int T = 10, tokens[10], t = 7;
    tiny_model(&m, polarize, T, tokens);
    tiny_model(&ref, polarize, T, tokens);
    float I[10];
    long passes;
    cr_assert_eq(ssm_session_influence(&m, t, probes, 5, NULL, I, &passes), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(passes, probes ? probes : m.cfg.d_model);
    ssm_batch b = {.B = 1, .L = T, .tokens = tokens};
    ssm_influence want;
    cr_assert_eq(ssm_recency_influence(&ref, &b, &t, 1, probes, 5, &want), SSM_OK, "%s", ssm_last_error());
    for (int s = 0; s < T; s++) {
        cr_assert(fabsf(I[s] - want.I[s]) <= 1e-5f * (1 + want.I[s]), "I[%d]: %g vs %g", s, I[s], want.I[s]);
        if (s > t) cr_assert_eq(I[s], 0.0f, "causal: nothing flows back from %d", s);
        else cr_assert(I[s] > 0, "I[%d] = %g", s, I[s]);
    }
    for (size_t i = 0; i < m.num_params; i++) cr_assert_eq(m.grads_memory[i], 0.0f, "gradients are zeroed");
    ssm_influence_free(&want);
    ssm_model_free(&ref);
    ssm_model_free(&m);
}

Test(influence, exact_matches_ssm_recency_influence) { influence_check(SSM_POLARIZE_BOTH, 0); }
Test(influence, probes_match_ssm_recency_influence) { influence_check(SSM_POLARIZE_NONE, 6); }

Test(influence, keeps_the_activations_and_can_be_cancelled)
{
    ssm_model m = {0};
    int T = 8, tokens[8];
    tiny_model(&m, SSM_POLARIZE_NONE, T, tokens);
    float before[64], after[64], I[8];
    long passes;
    cr_assert_eq(ssm_session_hidden_attention(&m, 1, -1, NULL, before), SSM_OK);
    cr_assert_eq(ssm_session_influence(&m, T - 1, 0, 1, NULL, I, &passes), SSM_OK);
    cr_assert_eq(ssm_session_hidden_attention(&m, 1, -1, NULL, after), SSM_OK);
    cr_assert_eq(memcmp(before, after, sizeof before), 0, "the attention reads the same activations");
    atomic_int cancel = 1;
    cr_assert_eq(ssm_session_influence(&m, T - 1, 0, 1, &cancel, I, &passes), SSM_ERR_INTERRUPTED);
    cr_assert_eq(passes, 0);
    cr_assert_eq(ssm_session_influence(&m, T, 0, 1, NULL, I, &passes), SSM_ERR_USAGE);
    cr_assert_eq(ssm_session_influence(&m, 0, -1, 1, NULL, I, &passes), SSM_ERR_USAGE);
    ssm_model_free(&m);
}

/* ------------------------------------------------------------------------ */
/* Session and engine                                                       */

static void tiny_config(run_config *rc)
{
    FILE *f = fopen(tmpdir_path("corpus.txt"), "w");
    for (int i = 0; i < 80; i++) fprintf(f, "The quick brown fox %d jumps over the lazy dog.\n", i);
    fclose(f);
    run_config_default(rc);
    rc->model.d_model = 16;
    rc->model.n_layer = 2;
    rc->model.d_state = 4;
    rc->seq_len = 16;
    rc->batch_size = 2;
    rc->opt.total_steps = 50;
    rc->opt.warmup = 1;
    rc->eval_every = 0;
    rc->eval_batches = 2;
    rc->threads = 1;
    snprintf(rc->data, sizeof rc->data, "%s", tmpdir_path("corpus.txt"));
    snprintf(rc->out, sizeof rc->out, "%s", tmpdir_path("out"));
}

Test(session, steps_save_load_and_rebuild)
{
    run_config rc;
    tiny_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_dirty(&s), 0);
    double loss, acc;
    float lr;
    for (int i = 0; i < 3; i++) cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK);
    cr_assert(isfinite(loss) && loss > 0 && loss < 7);
    cr_assert(isnan(acc), "a language model has no accuracy");
    cr_assert_eq(s.images, 0);
    cr_assert_eq(ssm_session_image_count(&s), 0);
    cr_assert_eq(s.opt.step, 3);
    cr_assert(ssm_session_dirty(&s));
    cr_assert_eq(ssm_session_save(&s, rc.out), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_dirty(&s), 0);

    ssm_session t;
    char *over[] = {"eval_batches=1"};
    cr_assert_eq(ssm_session_open_checkpoint(&t, rc.out, &rc, over, 1), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(t.opt.step, 3);
    cr_assert_eq(t.rc.eval_batches, 1);
    cr_assert_str_eq(t.name, "out");
    cr_assert_eq(memcmp(t.model.params_memory, s.model.params_memory, sizeof(float) * s.model.num_params), 0);
    cr_assert_eq(ssm_session_dirty(&t), 0);

    ssm_config mc = s.model.cfg;
    mc.scenario = SSM_SCENARIO_NEGATIVE;
    cr_assert_eq(ssm_session_rebuild(&s, &mc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(s.opt.step, 0);
    cr_assert_eq(s.model.cfg.scenario, SSM_SCENARIO_NEGATIVE);
    mc.reorder = SSM_REORDER_HARD;   /* refused for a language model; the session is unchanged */
    cr_assert_eq(ssm_session_rebuild(&s, &mc), SSM_ERR_CONFIG);
    cr_assert_eq(s.model.cfg.reorder, SSM_REORDER_OFF);
    cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK);

    atomic_int cancel = 1;
    cr_assert_eq(ssm_session_validate(&s, 0, &cancel, &loss, &acc), SSM_ERR_INTERRUPTED);
    cancel = 0;
    cr_assert_eq(ssm_session_validate(&s, 0, &cancel, &loss, &acc), SSM_OK);
    cr_assert(isfinite(loss));
    int tokens[5] = {72, 101, 108, 108, 111};
    cr_assert_eq(ssm_session_probe(&s, tokens, NULL, 5), SSM_OK);
    cr_assert_eq(s.probe.act_L, 5);
    cr_assert_eq(s.model.act_L, rc.seq_len, "the training activations are not resized");
    ssm_session_free(&t);
    ssm_session_free(&s);
}

/* A session holds no training buffers until it trains: a new run and a
 * float32 checkpoint are inspected (validated, probed) without gradients or
 * AdamW moments, the probe on the model's own weights; the first step
 * allocates them (and the probe copies the weights from then on), and the
 * steps are the bits of a model that had them from the start (task.h's
 * step on the same data), and of the run that saved the checkpoint. */
Test(session, training_buffers_come_with_the_first_step)
{
    run_config rc;
    tiny_config(&rc);
    ssm_session s, t;
    double loss, acc;
    float lr;
    int tokens[5] = {72, 101, 108, 108, 111};
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_validate(&s, 1, NULL, &loss, &acc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_probe(&s, tokens, NULL, 5), SSM_OK, "%s", ssm_last_error());
    cr_expect(!s.model.grads_memory && !s.opt.m && !s.opt.v, "a new run inspected: no training buffers");
    cr_expect(s.probe.shares_weights && s.probe.params_memory == s.model.params_memory, "one copy of the weights");

    ssm_model r;   /* the same model with gradients and moments from the start */
    ssm_adamw ro = {0};
    task_step_stats ts;
    cr_assert_eq(ssm_model_build(&r, &s.model.cfg), SSM_OK);
    ssm_model_init(&r, (uint64_t)rc.seed);
    cr_assert_eq(ssm_model_alloc_grads(&r), SSM_OK);
    cr_assert_eq(ssm_adamw_build(&ro, &r, &s.rc.opt), SSM_OK);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK, "%s", ssm_last_error());
        cr_assert_eq(task_train_step(s.data, &s.rc, &r, &ro, &ts), SSM_OK, "%s", ssm_last_error());
    }
    cr_expect(s.model.grads_memory && s.opt.m && s.opt.v, "trained: gradients and moments");
    cr_expect_eq(memcmp(s.model.params_memory, r.params_memory, sizeof(float) * r.num_params), 0,
                 "three steps, the bits of a model that had its buffers from the start");
    cr_expect_eq(memcmp(s.opt.v, ro.v, sizeof(float) * r.num_params), 0, "the same second moments");
    ssm_adamw_free(&ro);
    ssm_model_free(&r);
    cr_assert_eq(ssm_session_probe(&s, tokens, NULL, 5), SSM_OK, "%s", ssm_last_error());
    cr_expect(!s.probe.shares_weights && s.probe.params_memory != s.model.params_memory,
              "a training model's probe holds a copy");

    char dir[512];
    snprintf(dir, sizeof dir, "%s", tmpdir_path("late"));
    cr_assert_eq(ssm_session_save(&s, dir), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_open_checkpoint(&t, dir, &rc, NULL, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_probe(&t, tokens, NULL, 5), SSM_OK, "%s", ssm_last_error());
    cr_expect(!t.model.grads_memory && !t.opt.m && t.opt.step == 3, "a float32 checkpoint inspected: no training buffers");
    cr_expect(t.probe.shares_weights, "inspected: the probe on the model's weights");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK, "%s", ssm_last_error());
        cr_assert_eq(ssm_session_step(&t, &loss, &acc, &lr), SSM_OK, "%s", ssm_last_error());
    }
    cr_expect_eq(memcmp(t.model.params_memory, s.model.params_memory, sizeof(float) * s.model.num_params), 0,
                 "trained from the checkpoint's moments, loaded at the first step: the saving run's bits");
    ssm_session_free(&t);

    /* the checkpoint moves on before the inspected one trains: refused, nothing changes */
    cr_assert_eq(ssm_session_open_checkpoint(&t, dir, &rc, NULL, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_save(&s, dir), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_step(&t, &loss, &acc, &lr), SSM_ERR_DATA);
    cr_expect(strstr(ssm_last_error(), "at step 5 now, 3 when it was loaded"), "%s", ssm_last_error());
    cr_expect(!t.model.grads_memory && !t.opt.m && t.opt.step == 3);
    ssm_session_free(&t);
    ssm_session_free(&s);
}

/* The lab opens a checkpoint without optimizer state (a download) with
 * fresh moments, and refuses one whose parts belong to different steps. */
Test(session, checkpoint_parts_of_different_steps_are_refused)
{
    run_config rc;
    tiny_config(&rc);
    ssm_session s, t;
    double loss, acc;
    float lr;
    char a[512], b[512], cmd[1200];
    snprintf(a, sizeof a, "%s", tmpdir_path("steps-a"));
    snprintf(b, sizeof b, "%s", tmpdir_path("steps-b"));
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK);
    cr_assert_eq(ssm_session_save(&s, a), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK);
    cr_assert_eq(ssm_session_save(&s, b), SSM_OK, "%s", ssm_last_error());
    ssm_session_free(&s);
    snprintf(cmd, sizeof cmd, "cp '%s/model.safetensors' '%s/' && rm '%s/optimizer.safetensors'", b, a, b);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(ssm_session_open_checkpoint(&t, a, &rc, NULL, 0), SSM_ERR_DATA);
    cr_assert(strstr(ssm_last_error(), "model.safetensors is at step 2"), "%s", ssm_last_error());
    /* bf16 only looks: inspected, and refused at its first step, which needs the moments */
    cr_assert_eq(ssm_session_open_checkpoint_as(&t, a, &rc, NULL, 0, SSM_WEIGHTS_BF16), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_step(&t, &loss, &acc, &lr), SSM_ERR_DATA);
    cr_assert(strstr(ssm_last_error(), "model.safetensors is at step 2"), "%s", ssm_last_error());
    cr_assert_eq(t.model.weights, SSM_WEIGHTS_F32, "its float32 weights were loaded");
    cr_assert(!t.opt.m && !t.model.grads_memory && t.opt.step == 2, "no training buffers, the step it had");
    ssm_session_free(&t);
    cr_assert_eq(ssm_session_open_checkpoint(&t, b, &rc, NULL, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(t.opt.step, 2);
    ssm_session_free(&t);
}

Test(session, bad_checkpoints_and_data_fail_cleanly)
{
    run_config rc;
    tiny_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open_checkpoint(&s, tmpdir_path("nothing"), &rc, NULL, 0), SSM_ERR_NOINPUT);
    snprintf(rc.data, sizeof rc.data, "%s", tmpdir_path("no-corpus"));
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_ERR_NOINPUT);
}

/* A session whose weights hold NaN, or are finite but give a NaN loss on
 * the next step's batches, refuses to save: the directory keeps the last
 * good checkpoint, which still loads. */
Test(session, diverged_weights_are_never_saved)
{
    run_config rc;
    tiny_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    double loss, acc;
    float lr;
    cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK);
    cr_assert_eq(ssm_session_save(&s, rc.out), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK);
    float keep = s.model.params_memory[7];
    s.model.params_memory[7] = NAN;
    cr_expect_eq(ssm_session_overwrite(&s, rc.out), SSM_ERR_DATA);
    cr_expect(strstr(ssm_last_error(), "weights became NaN at step 2 (tensor '") != NULL, "%s", ssm_last_error());
    cr_expect(strstr(ssm_last_error(), "keeps its last good checkpoint") != NULL, "%s", ssm_last_error());
    s.model.params_memory[7] = keep;
    for (size_t i = 0; i < s.model.num_params; i++) s.model.params_memory[i] *= 1e30f;   /* finite, but the loss is not */
    cr_expect_eq(ssm_session_overwrite(&s, rc.out), SSM_ERR_DATA);
    cr_expect(strstr(ssm_last_error(), "at step 3") != NULL, "%s", ssm_last_error());
    ssm_model m = {0};
    ssm_checkpoint_meta meta = {0};
    cr_assert_eq(ssm_checkpoint_load(rc.out, &m, &meta), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(meta.step, 1, "the good checkpoint of step 1 is kept");
    free(meta.run_config);
    ssm_model_free(&m);
    ssm_session_free(&s);
}

/* A tiny session trained `steps` steps, saved into tmpdir/dir, and its
 * probe run on text (bytes into tokens); returns the text's length. */
static int trained_probe(ssm_session *s, int polarize, int steps, const char *dir, const char *text, int *tokens)
{
    run_config rc;
    tiny_config(&rc);
    rc.model.polarize = polarize;
    cr_assert_eq(ssm_session_open(s, &rc), SSM_OK, "%s", ssm_last_error());
    double loss, acc;
    float lr;
    for (int i = 0; i < steps; i++) cr_assert_eq(ssm_session_step(s, &loss, &acc, &lr), SSM_OK);
    cr_assert_eq(ssm_session_save(s, tmpdir_path(dir)), SSM_OK, "%s", ssm_last_error());
    int T = (int)strlen(text);
    for (int i = 0; i < T; i++) tokens[i] = (unsigned char)text[i];
    cr_assert_eq(ssm_session_probe(s, tokens, NULL, T), SSM_OK, "%s", ssm_last_error());
    return T;
}

/* The lab and ssmlab inspect compute one table the same way: the lab's
 * probe (session) and inspect's path (load the checkpoint, forward with
 * gradients, ssm_recency_attention and ssm_recency_influence) give
 * bit-identical hidden attention and influence on a trained model. */
Test(session, the_lab_and_inspect_give_identical_attention_and_influence)
{
    ssm_session s;
    int tokens[32], T = trained_probe(&s, SSM_POLARIZE_BOTH, 3, "same", "Pack my box with jugs", tokens), t = T - 2;

    ssm_model m = {0};
    ssm_checkpoint_meta meta = {0};
    cr_assert_eq(ssm_checkpoint_load(tmpdir_path("same"), &m, &meta), SSM_OK, "%s", ssm_last_error());
    free(meta.run_config);
    ssm_batch b = {.B = 1, .L = T, .tokens = tokens};
    cr_assert_eq(ssm_model_alloc_grads(&m), SSM_OK);
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);

    float *lab = calloc((size_t)T * T, sizeof(float)), *cli = calloc((size_t)T * T, sizeof(float));
    int channels[] = {SSM_ATTN_MEAN, 0, m.cfg.d_inner - 1};
    for (int l = 0; l < m.cfg.n_layer; l++)
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(ssm_session_hidden_attention(&s.probe, l, channels[k], NULL, lab), SSM_OK);
            cr_assert_eq(ssm_recency_attention(&m, l, 0, channels[k], NULL, cli), SSM_OK);
            cr_assert_eq(memcmp(lab, cli, sizeof(float) * T * T), 0, "attention of layer %d channel %d",
                         l, channels[k]);
        }
    int probes[] = {0, 5};
    for (int k = 0; k < 2; k++) {
        float I[32];
        long passes;
        ssm_influence want;
        cr_assert_eq(ssm_session_influence(&s.probe, t, probes[k], 9, NULL, I, &passes), SSM_OK);
        cr_assert_eq(ssm_recency_influence(&m, &b, &t, 1, probes[k], 9, &want), SSM_OK);
        cr_assert_eq(memcmp(I, want.I, sizeof(float) * T), 0, "influence with probes %d", probes[k]);
        ssm_influence_free(&want);
    }
    free(lab);
    free(cli);
    ssm_model_free(&m);
    ssm_session_free(&s);
}

/* A checkpoint inspected with bf16 weights: the lab's measurements (token
 * norms, hidden attention of every layer, exact and Gaussian-probe
 * influence, spectrum) within 1e-2 relative (max |a - b| / max |b| over a
 * table) of the same checkpoint inspected in float32; the bf16 session
 * holds no gradients, optimizer state or float32 copy of the matrices.  A
 * training step reloads the float32 weights and optimizer state first, so
 * it is the float32 session's step, bit for bit. */
#define LAB_BF16_TOL 1e-2
static void expect_close(const float *a, const float *b, int n, const char *what)
{
    double err = row_rel_err(a, b, n);
    cr_expect_leq(err, LAB_BF16_TOL, "%s: bf16 off float32 by %g", what, err);
    cr_expect_gt(err, 0.0, "%s: bf16 rounds something", what);
}

Test(session, a_checkpoint_inspected_in_bf16_measures_as_in_f32_and_trains_from_f32)
{
    ssm_session t, s, h;
    int tokens[32], T = trained_probe(&t, SSM_POLARIZE_BOTH, 4, "bf", "Pack my box with five jugs", tokens);
    ssm_session_free(&t);
    run_config rc;
    tiny_config(&rc);
    cr_assert_eq(ssm_session_open_checkpoint_as(&s, tmpdir_path("bf"), &rc, NULL, 0, SSM_WEIGHTS_F32), SSM_OK,
                 "%s", ssm_last_error());
    cr_assert_eq(ssm_session_open_checkpoint_as(&h, tmpdir_path("bf"), &rc, NULL, 0, SSM_WEIGHTS_BF16), SSM_OK,
                 "%s", ssm_last_error());
    cr_expect_eq(h.model.weights, SSM_WEIGHTS_BF16);
    cr_expect(!h.model.grads_memory && !h.opt.m && !h.model.params.in_proj, "inspected only");
    cr_expect_eq(h.opt.step, s.opt.step);
    cr_assert_eq(ssm_session_probe(&s, tokens, NULL, T), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_probe(&h, tokens, NULL, T), SSM_OK, "%s", ssm_last_error());
    cr_expect(!h.probe.grads_memory && h.probe.weights == SSM_WEIGHTS_BF16, "an input-only probe");

    ssm_norms nf = {0}, nh = {0};
    cr_assert_eq(ssm_dynamics_norms(&s.probe, &nf), SSM_OK);
    cr_assert_eq(ssm_dynamics_norms(&h.probe, &nh), SSM_OK, "%s", ssm_last_error());
    expect_close(nh.norms, nf.norms, (nf.n_layer + 1) * T, "token norms");
    expect_close(nh.mix_norms, nf.mix_norms, nf.n_layer * T, "mixer output norms");
    ssm_norms_free(&nf);
    ssm_norms_free(&nh);
    float *af = calloc((size_t)T * T, sizeof(float)), *ah = calloc((size_t)T * T, sizeof(float));
    int channels[] = {SSM_ATTN_MEAN, 0};
    for (int l = 0; l < s.model.cfg.n_layer; l++)
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(ssm_session_hidden_attention(&s.probe, l, channels[k], NULL, af), SSM_OK);
            cr_assert_eq(ssm_session_hidden_attention(&h.probe, l, channels[k], NULL, ah), SSM_OK, "%s",
                         ssm_last_error());
            expect_close(ah, af, T * T, "hidden attention");
        }
    for (int probes = 0; probes <= 5; probes += 5) {
        float If[32], Ih[32];
        long pf, ph;
        cr_assert_eq(ssm_session_influence(&s.probe, T - 2, probes, 9, NULL, If, &pf), SSM_OK);
        cr_assert_eq(ssm_session_influence(&h.probe, T - 2, probes, 9, NULL, Ih, &ph), SSM_OK, "%s",
                     ssm_last_error());
        cr_expect_eq(ph, pf);
        expect_close(Ih, If, T, probes ? "influence, 5 probes" : "influence, exact");
    }
    ssm_spectrum pf = {0}, ph = {0};
    cr_assert_eq(ssm_dynamics_spectrum(&s.probe, &pf), SSM_OK);
    cr_assert_eq(ssm_dynamics_spectrum(&h.probe, &ph), SSM_OK, "%s", ssm_last_error());
    float ef[64], eh[64];
    int ne = pf.n_layer * pf.N;
    for (int i = 0; i < ne; i++) ef[i] = (float)pf.re[i], eh[i] = (float)ph.re[i];
    expect_close(eh, ef, ne, "spectrum (real parts)");
    ssm_spectrum_free(&pf);
    ssm_spectrum_free(&ph);
    free(af);
    free(ah);

    double lf, lh, acc;
    float lr;
    cr_assert_eq(ssm_session_step(&s, &lf, &acc, &lr), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_step(&h, &lh, &acc, &lr), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(h.model.weights, SSM_WEIGHTS_F32, "trained in float32");
    cr_expect(lh == lf, "the first step's loss %g, float32 session %g", lh, lf);
    cr_expect_eq(memcmp(h.model.params_memory, s.model.params_memory, sizeof(float) * s.model.num_params), 0,
                 "the step starts from the checkpoint's float32 weights and moments");
    cr_expect_eq(h.opt.step, s.opt.step);
    ssm_session_free(&s);
    ssm_session_free(&h);
}

/* A checkpoint inspected in bf16 that was overwritten meanwhile (another
 * step saved into it) is not trained from: the reload names the steps. */
Test(session, a_bf16_inspected_checkpoint_that_changed_is_not_trained)
{
    ssm_session t, h;
    int tokens[16];
    trained_probe(&t, SSM_POLARIZE_NONE, 2, "chg", "Pack my box", tokens);
    run_config rc;
    tiny_config(&rc);
    cr_assert_eq(ssm_session_open_checkpoint_as(&h, tmpdir_path("chg"), &rc, NULL, 0, -1), SSM_OK, "%s",
                 ssm_last_error());
    cr_expect_eq(h.model.weights, SSM_WEIGHTS_BF16, "bf16 by default");
    double loss, acc;
    float lr;
    cr_assert_eq(ssm_session_step(&t, &loss, &acc, &lr), SSM_OK);
    cr_assert_eq(ssm_session_overwrite(&t, tmpdir_path("chg")), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(ssm_session_step(&h, &loss, &acc, &lr), SSM_ERR_DATA);
    cr_expect_not_null(strstr(ssm_last_error(), "step 3 now, 2 when it was loaded"), "%s", ssm_last_error());
    cr_expect_eq(h.model.weights, SSM_WEIGHTS_BF16, "still inspected");
    ssm_session_free(&t);
    ssm_session_free(&h);
}

/* The lab's flow (ssm_session_flow on the probe) is inspect's: the flow
 * of the checkpoint's x_0 with the default step and steps, bit for bit;
 * afterwards the probe's activations are its forward's again. */
Test(session, the_lab_and_inspect_give_identical_flows)
{
    ssm_session s;
    int tokens[16], T = trained_probe(&s, SSM_POLARIZE_NONE, 2, "flow", "Pack my box", tokens);
    size_t na = (size_t)(s.probe.cfg.n_layer + 1) * T * s.probe.cfg.d_model;
    float *resid = malloc(sizeof(float) * na);   /* (n_layer+1, T, D) the probe's stream */
    memcpy(resid, s.probe.acts.resid, sizeof(float) * na);

    ssm_model m = {0};
    ssm_checkpoint_meta meta = {0};
    cr_assert_eq(ssm_checkpoint_load(tmpdir_path("flow"), &m, &meta), SSM_OK, "%s", ssm_last_error());
    free(meta.run_config);
    ssm_batch b = {.B = 1, .L = T, .tokens = tokens};
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    float *x0 = malloc(sizeof(float) * T * m.cfg.d_model);
    memcpy(x0, m.acts.resid, sizeof(float) * T * m.cfg.d_model);
    for (int l = 0; l < m.cfg.n_layer; l++) {
        ssm_flow lab, cli;
        cr_assert_eq(ssm_session_flow(&s, l, NULL, &lab), SSM_OK, "%s", ssm_last_error());
        cr_assert_eq(ssm_flow_run(&m, l, SSM_FLOW_MIXER, x0, T, (float)SSM_FLOW_STEP_DEFAULT,
                                  SSM_FLOW_STEPS_DEFAULT, NULL, &cli), SSM_OK);
        cr_expect_eq(lab.steps, cli.steps);
        cr_expect_eq(lab.verdict, cli.verdict, "layer %d", l);
        cr_expect_eq(memcmp(lab.norms, cli.norms, sizeof(float) * (lab.steps + 1) * T), 0, "flow of layer %d", l);
        cr_expect(lab.mean_rate == cli.mean_rate && lab.mean_r2 == cli.mean_r2);
        ssm_flow_free(&lab);
        ssm_flow_free(&cli);
        cr_expect_eq(memcmp(resid, s.probe.acts.resid, sizeof(float) * na), 0, "the probe's stream is kept");
    }
    free(x0);
    free(resid);
    ssm_model_free(&m);
    ssm_session_free(&s);
}

/* Wait (at most 30 s) for a snapshot with every sent command handled. */
static void wait_done(ssm_engine *e, int wake, ssm_snapshot *snap)
{
    for (int i = 0; i < 3000; i++) {
        struct pollfd p = {wake, POLLIN, 0};
        poll(&p, 1, 10);
        char buf[64];
        while (read(wake, buf, sizeof buf) > 0) {
        }
        ssm_engine_snapshot(e, snap);
        unsigned long sent = ssm_engine_sent(e);
        if (snap->ready && snap->cmds_done >= sent && snap->measured_cmds >= sent && !snap->busy) return;
    }
    cr_assert_fail("the engine did not finish its commands");
}

Test(engine, commands_snapshots_and_the_self_pipe)
{
    run_config rc;
    tiny_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    ssm_engine *e;
    ssm_engine_options o = {fds[1], 0, "Hello, tokens", 0, SSM_WEIGHTS_F32};
    cr_assert_eq(ssm_engine_start(&e, &s, &rc, &o), SSM_OK);
    ssm_snapshot *snap = calloc(1, sizeof *snap);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->T, 13);
    cr_assert_eq(snap->step, 0);
    cr_assert_eq(snap->n_layer, 2);
    for (int i = 0; i < 3 * 13; i++) cr_assert(snap->norms[i] > 0, "norm %d", i);
    cr_assert(snap->spec_ok && snap->attn_ok);
    cr_assert(snap->flow_ok && snap->flow_layer == 0 && snap->flow_steps >= 1, "%s", snap->flow_note);
    cr_expect(snap->r2 >= 0 && snap->r2 <= 1 && snap->mix_r2 >= 0 && snap->mix_r2 <= 1);

    ssm_cmd step = {.kind = SSM_CMD_STEP};
    for (int i = 0; i < 3; i++) cr_assert_eq(ssm_engine_send(e, &step), 0);
    ssm_cmd sel = {.kind = SSM_CMD_SELECT, .layer = 1, .channel = 5};   /* layers count from 0, as in ssmlab inspect */
    cr_assert_eq(ssm_engine_send(e, &sel), 0);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->step, 3);
    cr_assert_eq(snap->measured_step, 3);
    cr_assert_eq(snap->n_hist, 3);
    cr_assert(snap->dirty);
    cr_assert_eq(snap->attn_layer, 1);
    cr_assert(snap->flow_ok && snap->flow_layer == 1, "the flow follows the selected layer");
    cr_assert_eq(snap->attn_channel, 5);

    ssm_cmd nm = {.kind = SSM_CMD_NEW_MODEL, .scenario = SSM_SCENARIO_POSITIVE};
    cr_assert_eq(ssm_engine_send(e, &nm), 0);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->step, 0);
    cr_assert_eq(snap->scenario, SSM_SCENARIO_POSITIVE);
    for (int l = 0; l < 2; l++) cr_assert_eq(snap->cls[l], 0 /* SSM_SPECTRUM_POSITIVE */);

    ssm_cmd save = {.kind = SSM_CMD_SAVE};
    cr_assert_eq(ssm_engine_send(e, &step), 0);
    cr_assert_eq(ssm_engine_send(e, &save), 0);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->dirty, 0);
    cr_assert(strstr(snap->msg, "saved"), "%s", snap->msg);
    cr_assert_eq(access(tmpdir_path("out-positive/model.safetensors"), F_OK), 0, "the new model is the run out-positive");
    cr_assert_str_eq(snap->out, tmpdir_path("out-positive"));

    ssm_cmd run = {.kind = SSM_CMD_TOGGLE};
    cr_assert_eq(ssm_engine_send(e, &run), 0);
    for (int i = 0; i < 3000 && snap->step < 5; i++) {
        usleep(10000);
        ssm_engine_snapshot(e, snap);
    }
    cr_assert_geq(snap->step, 5, "training runs");
    ssm_engine_cancel(e);
    for (int i = 0; i < 3000 && snap->running; i++) {
        usleep(10000);
        ssm_engine_snapshot(e, snap);
    }
    cr_assert_eq(snap->running, 0, "cancel pauses training");
    ssm_engine_stop(e);
    free(snap);
    close(fds[0]);
    close(fds[1]);
}

/* The states of a direct probed forward: ||h_t|| per layer (n_layer, T)
 * and the horizon histograms, with the interventions p (NULL: none). */
typedef struct {
    int T;
    float norm[2 * 64];
    int bins[2][SSM_SNAP_HZ_BINS];
} direct_states;

static void direct_hook(void *ctx, const ssm_layer_view *v)
{
    direct_states *d = ctx;
    float hz[64];
    cr_assert(v->E <= 64 && v->layer < 2);
    ssm_states_norm(v->h, d->T, v->E, v->Ns, d->norm + v->layer * d->T);
    ssm_states_horizon(v->delta, d->T, v->E, v->E, v->A, v->Ns, hz);
    memset(d->bins[v->layer], 0, sizeof d->bins[0]);
    for (int e = 0; e < v->E; e++) d->bins[v->layer][ssm_horizon_bin(hz[e])]++;
}

static void direct_forward(ssm_model *m, const int *tokens, int T, const ssm_probe *iv, direct_states *d)
{
    ssm_probe p = iv ? *iv : (ssm_probe){0};
    p.want_states = 1;
    p.on_layer = direct_hook;
    p.ctx = d;
    d->T = T;
    ssm_batch b = {.B = 1, .L = T, .tokens = tokens};
    cr_assert_eq(ssm_model_set_probe(m, &p), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_forward(m, &b), SSM_OK);
    cr_assert_eq(ssm_model_set_probe(m, NULL), SSM_OK);
}

static void expect_states(const ssm_snapshot *snap, const direct_states *d, const char *what)
{
    cr_assert(snap->states_ok, "%s: %s", what, snap->states_note);
    cr_assert_eq(memcmp(snap->st_norm, d->norm, sizeof(float) * 2 * d->T), 0, "%s: ||h_t|| bit for bit", what);
    cr_assert_eq(memcmp(snap->hz_bins, d->bins, sizeof d->bins), 0, "%s: the horizon histograms", what);
}

/* The engine's states and lens are a direct probed forward's; an ablation
 * or a pin changes them as the same probe does, the status text says so,
 * and clearing restores them bit for bit.  The trained model never sees
 * the interventions: a step with them set trains as without. */
Test(engine, states_lens_and_interventions)
{
    run_config rc;
    tiny_config(&rc);
    ssm_session s, ref;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_open(&ref, &rc), SSM_OK, "%s", ssm_last_error());   /* the same seed: the same weights */
    cr_assert_eq(ssm_model_alloc_grads(&ref.model), SSM_OK);
    ssm_threads_set(rc.threads);   /* the engine's thread count: the same sums */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    const char *text = "Hello, tokens";
    int tokens[13], T = 13;
    for (int t = 0; t < T; t++) tokens[t] = (unsigned char)text[t];
    ssm_engine *e;
    ssm_engine_options o = {fds[1], 0, text, 0, SSM_WEIGHTS_F32};
    cr_assert_eq(ssm_engine_start(&e, &s, &rc, &o), SSM_OK);
    ssm_snapshot *snap = calloc(1, sizeof *snap);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->T, T);

    direct_states plain, d;
    direct_forward(&ref.model, tokens, T, NULL, &plain);
    expect_states(snap, &plain, "no intervention");
    float before[2 * 13];
    memcpy(before, snap->st_norm, sizeof before);
    cr_assert_str_eq(snap->iv_desc, "");

    /* the lens at the last token: the final row is the model's own output */
    ssm_lens_stat ls[3];
    cr_assert_eq(ssm_model_forward(&ref.model, &(ssm_batch){.B = 1, .L = T, .tokens = tokens}), SSM_OK);
    cr_assert_eq(ssm_session_lens(&ref.model, T - 1, ls), SSM_OK, "%s", ssm_last_error());
    cr_assert(snap->lens_ok && snap->lens_token == T - 1, "%s", snap->lens_note);
    for (int l = 0; l < 3; l++) {
        cr_assert_eq(snap->lens_top[l], ls[l].top, "row x%d's top-1", l);
        cr_assert_eq(snap->lens_kl[l], (float)ls[l].kl);
        cr_assert_eq(snap->lens_entropy[l], (float)ls[l].entropy);
    }
    cr_assert_lt(snap->lens_kl[2], 1e-5, "the last row's lens is the final distribution");
    cr_assert_gt(snap->lens_kl[0], 1e-4, "the embedding's lens is not");
    ssm_cmd sel = {.kind = SSM_CMD_SELECT, .layer = 0, .channel = -1, .token = 4};
    cr_assert_eq(ssm_engine_send(e, &sel), 0);
    wait_done(e, fds[0], snap);
    cr_assert(snap->lens_ok && snap->lens_token == 4, "the lens follows the selected token");
    float stream[3 * 13];   /* (n_layer+1, T) token norms of the plain model */
    memcpy(stream, snap->norms, sizeof stream);

    /* ablate layer 1 channel 2: every state of it held at zero */
    ssm_cmd ab = {.kind = SSM_CMD_ABLATE, .layer = 1, .channel = 2};
    cr_assert_eq(ssm_engine_send(e, &ab), 0);
    wait_done(e, fds[0], snap);
    cr_assert_str_eq(snap->iv_desc, "ablate 1:2");
    cr_assert_eq(snap->n_ablated, 1);
    ssm_ablation one = {1, 2, -1};
    ssm_probe iv = {.ablate = &one, .n_ablate = 1};
    direct_forward(&ref.model, tokens, T, &iv, &d);
    expect_states(snap, &d, "ablated");
    cr_assert_neq(memcmp(snap->st_norm + T, before + T, sizeof(float) * T), 0, "the ablation changes layer 1's states");
    cr_assert_eq(memcmp(snap->st_norm, before, sizeof(float) * T), 0, "and not layer 0's");
    cr_assert_neq(memcmp(snap->norms + 2 * T, stream + 2 * T, sizeof(float) * T), 0,
                  "the token norms are measured on the ablated model too");
    cr_assert_eq(ssm_model_set_probe(&ref.model, &iv), SSM_OK);
    cr_assert_eq(ssm_model_forward(&ref.model, &(ssm_batch){.B = 1, .L = T, .tokens = tokens}), SSM_OK);
    cr_assert_eq(ssm_session_lens(&ref.model, 4, ls), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_set_probe(&ref.model, NULL), SSM_OK);
    for (int l = 0; l < 3; l++) cr_assert_eq(snap->lens_kl[l], (float)ls[l].kl, "the lens of the ablated model, x%d", l);

    /* pin A = 0 in layer 0 channel 0 too: a channel that never forgets */
    ssm_cmd pin = {.kind = SSM_CMD_PIN, .layer = 0, .channel = 0};
    cr_assert_eq(ssm_engine_send(e, &pin), 0);
    wait_done(e, fds[0], snap);
    cr_assert_str_eq(snap->iv_desc, "ablate 1:2, pin 0:0:*=0");
    cr_assert_eq(snap->hz_bins[0][SSM_SNAP_HZ_BINS - 1], plain.bins[0][SSM_SNAP_HZ_BINS - 1] + 1,
                 "the pinned channel's horizon is infinite");
    cr_assert(strstr(snap->msg, "pinned A = 0 in layer 0 channel 0"), "%s", snap->msg);

    /* a step trains the model as without interventions */
    ssm_cmd step = {.kind = SSM_CMD_STEP};
    cr_assert_eq(ssm_engine_send(e, &step), 0);
    wait_done(e, fds[0], snap);
    double loss, acc;
    float lr;
    cr_assert_eq(ssm_session_step(&ref, &loss, &acc, &lr), SSM_OK);
    cr_assert_eq((float)loss, (float)snap->loss, "the step's loss is the plain model's");
    direct_forward(&ref.model, tokens, T, NULL, &plain);   /* after the step */
    memcpy(before, plain.norm, sizeof before);

    /* the same key again lets the channel go; clear drops the rest */
    cr_assert_eq(ssm_engine_send(e, &ab), 0);
    wait_done(e, fds[0], snap);
    cr_assert_str_eq(snap->iv_desc, "pin 0:0:*=0");
    ssm_cmd clear = {.kind = SSM_CMD_CLEAR};
    cr_assert_eq(ssm_engine_send(e, &clear), 0);
    wait_done(e, fds[0], snap);
    cr_assert_str_eq(snap->iv_desc, "");
    cr_assert(snap->n_ablated == 0 && snap->n_pinned == 0);
    cr_assert_eq(memcmp(snap->st_norm, before, sizeof before), 0, "cleared: the states are the plain model's, bit for bit");

    ssm_cmd bad = {.kind = SSM_CMD_ABLATE, .layer = 0, .channel = -1};
    cr_assert_eq(ssm_engine_send(e, &bad), 0);
    wait_done(e, fds[0], snap);
    cr_assert(snap->msg_error && strstr(snap->msg, "select one channel"), "%s", snap->msg);
    cr_assert_str_eq(snap->iv_desc, "");

    ssm_engine_stop(e);
    ssm_session_free(&ref);
    free(snap);
    close(fds[0]);
    close(fds[1]);
}

/* ------------------------------------------------------------------------ */
/* Image classifiers                                                        */

static void be32(FILE *f, unsigned v)
{
    unsigned char b[4] = {v >> 24, v >> 16 & 255, v >> 8 & 255, v & 255};
    fwrite(b, 1, 4, f);
}

/* An IDX split of n 8 x 8 images in 4 classes: class c lights quadrant c. */
static void idx_split(const char *split, int n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", tmpdir, split);
    FILE *im = fopen(path, "wb");
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", tmpdir, split);
    FILE *lb = fopen(path, "wb");
    cr_assert(im && lb);
    be32(im, 0x803), be32(im, n), be32(im, 8), be32(im, 8);
    be32(lb, 0x801), be32(lb, n);
    for (int i = 0; i < n; i++) {
        int c = (i * 7 + 3) % 4;
        fputc(c, lb);
        for (int p = 0; p < 64; p++) fputc((p / 32) * 2 + (p % 8) / 4 == c ? 200 : 20 + (i + p) % 17, im);
    }
    fclose(im);
    fclose(lb);
}

static void image_config(run_config *rc)
{
    idx_split("train", 48);
    idx_split("t10k", 12);
    run_config_default(rc);
    const char *kv[] = {"task=classify", "dataset=mnist", "patch=2", "d_model=16", "n_layer=2", "d_state=4",
                        "batch_size=4", "steps=50", "warmup=1", "eval_every=0", "eval_batches=0", "threads=1"};
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) cr_assert_eq(run_config_set(rc, kv[i], "test"), SSM_OK, "%s", kv[i]);
    snprintf(rc->data, sizeof rc->data, "%s", tmpdir);
    snprintf(rc->out, sizeof rc->out, "%s", tmpdir_path("cls"));
}

Test(session, image_classifiers_train_validate_and_show_test_images)
{
    run_config rc;
    image_config(&rc);
    ssm_session s, t;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(s.images, 1);
    cr_assert_eq(s.model.cfg.input_kind, SSM_INPUT_CONTINUOUS);
    cr_assert_eq(s.model.cfg.n_classes, 4);
    cr_assert(fabs(s.baseline - log(4)) < 1e-12, "chance is ln 4");
    int L, I, grid, label;
    ssm_session_image_shape(&s, &L, &I, &grid);
    cr_assert(L == 16 && I == 4 && grid == 4, "16 patches of 4 values, 4 per row: %d %d %d", L, I, grid);
    cr_assert_eq(ssm_session_image_count(&s), 12);
    double loss, acc;
    float lr, in[64];
    for (int i = 0; i < 3; i++) cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK, "%s", ssm_last_error());
    cr_assert(isfinite(loss) && acc >= 0 && acc <= 1);
    atomic_int cancel = 0;
    cr_assert_eq(ssm_session_validate(&s, 0, &cancel, &loss, &acc), SSM_OK, "%s", ssm_last_error());
    cr_assert(isfinite(loss) && acc >= 0 && acc <= 1);
    cr_assert_eq(ssm_session_image(&s, 5, in, &label), SSM_OK);
    cr_assert_eq(label, (5 * 7 + 3) % 4);
    cr_assert_eq(ssm_session_image(&s, 12, in, &label), SSM_ERR_USAGE);
    cr_assert_eq(ssm_session_probe(&s, NULL, in, L), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(s.probe.act_L, 16);

    cr_assert_eq(ssm_session_save(&s, rc.out), SSM_OK, "%s", ssm_last_error());
    run_config base;
    run_config_default(&base);   /* the checkpoint's own run config names the images */
    cr_assert_eq(ssm_session_open_checkpoint(&t, rc.out, &base, NULL, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(t.images, 1);
    cr_assert_eq(t.opt.step, 3);
    cr_assert_eq(ssm_session_image_count(&t), 12);

    ssm_config mc = s.model.cfg;
    mc.reorder = SSM_REORDER_HARD;   /* a classifier may reorder */
    cr_assert_eq(ssm_session_rebuild(&s, &mc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(s.model.cfg.reorder, SSM_REORDER_HARD);
    cr_assert_eq(s.model.cfg.n_classes, 4);
    cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK, "%s", ssm_last_error());
    ssm_session_free(&t);
    ssm_session_free(&s);
}

Test(session, a_classifier_checkpoint_needs_a_matching_task)
{
    run_config rc, lm;
    image_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_save(&s, rc.out), SSM_OK);
    ssm_session_free(&s);
    tiny_config(&lm);
    char data_kv[600];
    snprintf(data_kv, sizeof data_kv, "data=%s", lm.data);
    char *over[] = {"task=lm", data_kv};
    cr_assert_eq(ssm_session_open_checkpoint(&s, rc.out, &lm, over, 2), SSM_ERR_CONFIG);
    cr_assert(strstr(ssm_last_error(), "classifier"), "%s", ssm_last_error());
}

/* Wait until the message says what (or a finished command) and return it. */
static void wait_msg(ssm_engine *e, int wake, ssm_snapshot *snap, const char *what)
{
    wait_done(e, wake, snap);
    cr_assert(strstr(snap->msg, what), "message '%s' lacks '%s'", snap->msg, what);
}

Test(engine, image_classifiers_influence_and_picking_images)
{
    run_config rc;
    image_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    ssm_engine *e;
    ssm_engine_options o = {fds[1], 0, NULL, 2, SSM_WEIGHTS_F32};
    cr_assert_eq(ssm_engine_start(&e, &s, &rc, &o), SSM_OK, "%s", ssm_last_error());
    ssm_snapshot *snap = calloc(1, sizeof *snap);
    wait_done(e, fds[0], snap);
    cr_assert(snap->images && snap->T == 16 && snap->grid_cols == 4 && snap->n_images == 12);
    cr_assert_eq(snap->image, 2);
    cr_assert_eq(snap->image_label, (2 * 7 + 3) % 4);
    cr_assert(snap->image_pred >= 0 && snap->image_pred < 4);
    cr_assert_str_eq(snap->label[5], "y1x1", "tokens are named by their patch row and column");
    cr_assert(snap->infl_ok && snap->infl_token == 15 && snap->infl_probes == 0);
    cr_assert(snap->states_ok && !snap->lens_ok && strstr(snap->lens_note, "needs a language model"), "%s",
              snap->lens_note);
    cr_assert_eq(snap->infl_passes, 16);
    for (int t = 0; t < 16; t++) cr_assert(snap->infl[t] > 0, "I(15, %d)", t);
    cr_assert(isfinite(snap->infl_rate) && snap->infl_fit_n == 15, "a decay fit over 15 distances");
    cr_assert(fabs(snap->infl_half_life - M_LN2 / snap->infl_rate) < 1e-9 * fabs(snap->infl_half_life));

    ssm_cmd sel = {.kind = SSM_CMD_SELECT, .layer = 0, .channel = -1, .token = 6};
    cr_assert_eq(ssm_engine_send(e, &sel), 0);
    wait_done(e, fds[0], snap);
    cr_assert(snap->infl_ok && snap->infl_token == 6);
    for (int t = 7; t < 16; t++) cr_assert_eq(snap->infl[t], 0.0f, "causal");
    ssm_cmd img = {.kind = SSM_CMD_IMAGE, .index = 7};
    cr_assert_eq(ssm_engine_send(e, &img), 0);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->image, 7);
    cr_assert_eq(snap->image_label, (7 * 7 + 3) % 4);
    img.index = 12;
    cr_assert_eq(ssm_engine_send(e, &img), 0);
    wait_msg(e, fds[0], snap, "12 test images");
    cr_assert_eq(snap->image, 7);
    ssm_cmd text = {.kind = SSM_CMD_TEXT, .arg = "hello"};
    cr_assert_eq(ssm_engine_send(e, &text), 0);
    wait_msg(e, fds[0], snap, "inspects test images");
    ssm_cmd val = {.kind = SSM_CMD_VALIDATE};
    cr_assert_eq(ssm_engine_send(e, &val), 0);
    wait_msg(e, fds[0], snap, "accuracy");
    cr_assert(snap->val_acc >= 0 && snap->val_acc <= 1);
    ssm_cmd nm = {.kind = SSM_CMD_NEW_MODEL, .reorder = SSM_REORDER_HARD};
    cr_assert_eq(ssm_engine_send(e, &nm), 0);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->reorder, SSM_REORDER_HARD);
    cr_assert(!snap->attn_ok && strstr(snap->attn_note, "reorders"), "%s", snap->attn_note);
    ssm_engine_stop(e);
    free(snap);
    close(fds[0]);
    close(fds[1]);
}

/* ------------------------------------------------------------------------ */
/* Runs and checkpoints: nothing is overwritten without confirmation         */

TestSuite(runs, .init = tmpdir_make, .fini = tmpdir_remove);

static void name_is(const char *base, int s0, int p0, int r0, int s1, int p1, int r1, const char *want)
{
    int from[SSM_RUN_NSETTINGS] = {s0, p0, r0}, to[SSM_RUN_NSETTINGS] = {s1, p1, r1};
    char out[128];
    ssm_run_dir_name(out, sizeof out, base, from, to);
    cr_assert_str_eq(out, want, "%s", base);
}

Test(runs, new_runs_are_named_after_their_settings)
{
    name_is("bytes-small", 0, 0, 0, SSM_SCENARIO_NEGATIVE, 0, 0, "bytes-small-negative");
    name_is("bytes-small", SSM_SCENARIO_POSITIVE, 0, 0, SSM_SCENARIO_NEGATIVE, 0, 0, "bytes-small-negative");
    name_is("lm-positive", SSM_SCENARIO_POSITIVE, 0, 0, SSM_SCENARIO_NEGATIVE, 0, 0, "lm-negative");
    name_is("fmnist-reorder-off", 0, 0, SSM_REORDER_OFF, 0, 0, SSM_REORDER_HARD, "fmnist-reorder-hard");
    name_is("mqar-d1-none", 0, SSM_POLARIZE_NONE, 0, 0, SSM_POLARIZE_ZERO, 0, "mqar-d1-zero");
    name_is("b7", 0, 0, 0, 0, SSM_POLARIZE_BOTH, SSM_REORDER_SOFT, "b7-polarize-both-reorder-soft");
    name_is("b7-polarize-zero", 0, SSM_POLARIZE_ZERO, 0, 0, SSM_POLARIZE_ONE, 0, "b7-polarize-one");
    name_is("b7", 0, 0, 0, 0, 0, 0, "b7");
}

Test(runs, a_checkpoint_directory_is_never_taken_by_a_new_run)
{
    char out[600];
    ssm_run_dir_unused(out, sizeof out, tmpdir_path("b7/"));
    cr_assert_str_eq(out, tmpdir_path("b7"), "nothing there: the path itself");
    mkdir(tmpdir_path("b7"), 0755);
    cr_assert_eq(ssm_run_dir_is_checkpoint(tmpdir_path("b7")), 0, "an empty directory is no checkpoint");
    FILE *f = fopen(tmpdir_path("b7/config.json"), "w");
    fclose(f);
    cr_assert(ssm_run_dir_is_checkpoint(tmpdir_path("b7")));
    ssm_run_dir_unused(out, sizeof out, tmpdir_path("b7"));
    cr_assert_str_eq(out, tmpdir_path("b7-2"));
    cr_assert(ssm_run_dir_foreign(tmpdir_path("b7"), tmpdir_path("b7-2"), 1));
    cr_assert(ssm_run_dir_foreign(tmpdir_path("b7"), tmpdir_path("b7"), 0), "not written by this session");
    cr_assert_eq(ssm_run_dir_foreign(tmpdir_path("b7/"), tmpdir_path("b7"), 1), 0, "the run's own directory");
    cr_assert_eq(ssm_run_dir_foreign(tmpdir_path("new"), tmpdir_path("b7"), 0), 0, "no checkpoint there");
    ssm_run_dir_parent(out, sizeof out, "runs/b7/");
    cr_assert_str_eq(out, "runs");
    ssm_run_dir_parent(out, sizeof out, "b7");
    cr_assert_str_eq(out, ".");
}

/* Every file of dir, concatenated (to compare before and after). */
static char *dir_bytes(const char *dir, size_t *n)
{
    static const char *const files[] = {"config.json", "model.safetensors", "optimizer.safetensors"};
    char *all = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&all, &len);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        int c;
        while ((c = fgetc(f)) != EOF) fputc(c, m);
        fclose(f);
    }
    fclose(m);
    *n = len;
    return all;
}

/* A checkpoint of 3 steps in tmpdir/name, written as ssmlab train writes it. */
static void trained_checkpoint(run_config *rc, const char *name)
{
    ssm_session s;
    double loss, acc;
    float lr;
    tiny_config(rc);
    cr_assert_eq(ssm_session_open(&s, rc), SSM_OK, "%s", ssm_last_error());
    for (int i = 0; i < 3; i++) cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK);
    cr_assert_eq(ssm_session_save(&s, tmpdir_path(name)), SSM_OK, "%s", ssm_last_error());
    ssm_session_free(&s);
}

Test(runs, a_loaded_checkpoint_is_inspected_and_trains_as_a_new_run)
{
    run_config rc;
    trained_checkpoint(&rc, "b7");
    size_t n0, n1;
    char *before = dir_bytes(tmpdir_path("b7"), &n0);
    ssm_session s;
    cr_assert_eq(ssm_session_open_checkpoint(&s, tmpdir_path("b7"), &rc, NULL, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert(s.inspecting);
    cr_assert_str_eq(s.name, "b7");
    cr_assert_str_eq(s.rc.out, tmpdir_path("b7-2"), "training goes beside the checkpoint");
    double loss, acc;
    float lr;
    cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK);
    cr_assert_eq(s.inspecting, 0);
    cr_assert_str_eq(s.name, "b7-2");
    cr_assert_eq(ssm_session_save(&s, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(access(tmpdir_path("b7-2/model.safetensors"), F_OK), 0);
    cr_assert_eq(ssm_session_save(&s, tmpdir_path("b7")), SSM_ERR_CANTCREAT, "the loaded checkpoint is not written");
    cr_assert(strstr(ssm_last_error(), "did not write"), "%s", ssm_last_error());
    char *after = dir_bytes(tmpdir_path("b7"), &n1);
    cr_assert(n0 == n1 && !memcmp(before, after, n0), "b7 is byte-identical");
    free(after);

    ssm_config mc = s.model.cfg;   /* a toggle: a new run named after it, never b7 */
    mc.scenario = SSM_SCENARIO_POSITIVE;
    cr_assert_eq(ssm_session_rebuild(&s, &mc), SSM_OK, "%s", ssm_last_error());
    cr_assert_str_eq(s.rc.out, tmpdir_path("b7-positive"));
    cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK);
    cr_assert_eq(ssm_session_save(&s, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_save(&s, NULL), SSM_OK, "its own run it writes again");
    cr_assert_eq(ssm_session_overwrite(&s, tmpdir_path("b7")), SSM_OK, "the user typed b7 and confirmed");
    after = dir_bytes(tmpdir_path("b7"), &n1);
    cr_assert(n0 != n1 || memcmp(before, after, n0), "confirmed, b7 is replaced");
    free(after);
    free(before);
    ssm_session_free(&s);
}

Test(runs, a_run_whose_directory_holds_a_checkpoint_goes_beside_it)
{
    run_config rc;
    trained_checkpoint(&rc, "out");   /* tiny_config's out */
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_str_eq(s.rc.out, tmpdir_path("out-2"));
    cr_assert_str_eq(s.name, "out-2");
    ssm_session_free(&s);
}

/* The checkpoint's tokenizer.json tokenizes the text, as in ssmlab inspect. */
Test(runs, the_tokenizer_json_tokenizes_and_names_tokens)
{
    run_config rc;
    tiny_config(&rc);
    rc.model.vocab_size = 1264;   /* the fixture's 1263 tokens */
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_save(&s, tmpdir_path("bpe")), SSM_OK, "%s", ssm_last_error());
    ssm_session_free(&s);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp tests/data/tokenizer_fortunes.json %s", tmpdir_path("bpe/tokenizer.json"));
    cr_assert_eq(system(cmd), 0, "run from the repository root");
    cr_assert_eq(ssm_session_open_checkpoint(&s, tmpdir_path("bpe"), &rc, NULL, 0), SSM_OK, "%s", ssm_last_error());
    const char *text = "The quick brown fox";
    int *ids, n, *want, nw;
    ssm_tokenizer tk;
    cr_assert_eq(ssm_tokenizer_load(&tk, "tests/data/tokenizer_fortunes.json"), SSM_OK);
    cr_assert_eq(ssm_tokenizer_encode(&tk, text, strlen(text), &want, &nw), SSM_OK);
    cr_assert_eq(ssm_session_tokenize(&s, text, &ids, &n), SSM_OK, "%s", ssm_last_error());
    cr_assert(n == nw && n < (int)strlen(text), "%d tokens, not one a byte", n);
    cr_assert_eq(memcmp(ids, want, sizeof(int) * n), 0);
    char label[64];
    ssm_session_token_label(&s, ids[1], label, sizeof label);
    size_t len;
    const char *b = ssm_tokenizer_token_bytes(&tk, ids[1], &len);
    cr_assert(strlen(label) == len && !memcmp(label, b, len), "'%s' is the token's text", label);
    cr_assert_eq(ssm_session_can_train(&s), SSM_ERR_USAGE, "byte training would not fit its tokens");
    free(ids);
    free(want);
    ssm_tokenizer_free(&tk);
    ssm_session_free(&s);
}

/* A vocabulary of 10 without tokenizer: text is refused with the reason. */
Test(runs, text_that_the_vocabulary_cannot_fit_is_refused)
{
    run_config rc;
    tiny_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open_checkpoint(&s, "tests/data/mamba_tiny_torch", &rc, NULL, 0), SSM_OK, "%s",
                 ssm_last_error());
    cr_assert_eq(s.model.cfg.vocab_size, 10);
    cr_assert_eq(ssm_session_text_ok(&s), 0);
    int *ids, n;
    cr_assert_eq(ssm_session_tokenize(&s, "hello", &ids, &n), SSM_ERR_USAGE);
    cr_assert(strstr(ssm_last_error(), "vocabulary of 10") && strstr(ssm_last_error(), "does not fit"), "%s",
              ssm_last_error());
    cr_assert_eq(ssm_session_can_train(&s), SSM_ERR_USAGE);
    double loss, acc;
    float lr;
    cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_ERR_USAGE, "no out-of-vocabulary byte tokens");
    char label[16];
    ssm_session_token_label(&s, 7, label, sizeof label);
    cr_assert_str_eq(label, "7", "tokens are named by their ids");
    ssm_session_free(&s);
}

static ssm_engine *engine_on(ssm_session *s, const run_config *rc, int fds[2], int autostart, const char *text)
{
    cr_assert_eq(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    ssm_engine *e;
    ssm_engine_options o = {fds[1], autostart, text, 0, SSM_WEIGHTS_F32};
    cr_assert_eq(ssm_engine_start(&e, s, rc, &o), SSM_OK, "%s", ssm_last_error());
    return e;
}

static void engine_off(ssm_engine *e, int fds[2], ssm_snapshot *snap)
{
    ssm_engine_stop(e);
    free(snap);
    close(fds[0]);
    close(fds[1]);
}

/* The engine: a checkpoint opens to be inspected (no autostart), tokens
 * through its tokenizer, token ids where text does not fit, and a save
 * into someone else's checkpoint only with force. */
Test(runs, the_engine_inspects_checkpoints_and_saves_only_where_allowed)
{
    run_config rc;
    tiny_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open_checkpoint(&s, "tests/data/mamba_tiny_torch", &rc, NULL, 0), SSM_OK);
    int fds[2];
    cr_assert_eq(ssm_engine_start(&(ssm_engine *){0}, &s, &rc, &(ssm_engine_options){-1, 0, "hi", 0, SSM_WEIGHTS_F32}), SSM_ERR_USAGE,
                 "text that does not fit is refused");
    cr_assert(strstr(ssm_last_error(), "does not fit"), "%s", ssm_last_error());
    cr_assert_eq(ssm_session_open_checkpoint(&s, "tests/data/mamba_tiny_torch", &rc, NULL, 0), SSM_OK);
    ssm_engine *e = engine_on(&s, &rc, fds, 1, NULL);
    ssm_snapshot *snap = calloc(1, sizeof *snap);
    wait_done(e, fds[0], snap);
    cr_assert(snap->inspecting && !snap->running && !snap->can_train, "inspected, not trained");
    cr_assert(snap->T == 16 && !snap->text_ok && snap->ids[12] == 2, "token ids 0..9, 0..5");
    cr_assert_str_eq(snap->label[12], "2");
    ssm_cmd ids = {.kind = SSM_CMD_TOKENS, .arg = "1, 2 3"};
    cr_assert_eq(ssm_engine_send(e, &ids), 0);
    wait_done(e, fds[0], snap);
    cr_assert(snap->T == 3 && snap->ids[2] == 3);
    ssm_cmd bad = {.kind = SSM_CMD_TOKENS, .arg = "1,12"};
    cr_assert_eq(ssm_engine_send(e, &bad), 0);
    wait_msg(e, fds[0], snap, "0..9");
    ssm_cmd run = {.kind = SSM_CMD_RUN};
    cr_assert_eq(ssm_engine_send(e, &run), 0);
    wait_msg(e, fds[0], snap, "not trained");
    cr_assert_eq(snap->running, 0);
    ssm_cmd save = {.kind = SSM_CMD_SAVE};
    snprintf(save.arg, sizeof save.arg, "%s", tmpdir_path("b7"));
    cr_assert_eq(ssm_engine_send(e, &save), 0);
    wait_msg(e, fds[0], snap, "saved");
    snprintf(save.arg, sizeof save.arg, "%s", "tests/data/mamba_tiny_torch");
    cr_assert_eq(ssm_engine_send(e, &save), 0);
    wait_msg(e, fds[0], snap, "did not write");
    engine_off(e, fds, snap);
}

/* Esc during a validation stops the validation, and training goes on. */
Test(runs, cancelling_a_validation_does_not_pause_training)
{
    run_config rc;
    tiny_config(&rc);
    FILE *f = fopen(tmpdir_path("big.txt"), "w");
    for (int i = 0; i < 6000; i++) fprintf(f, "Line %d of a corpus whose validation takes a while.\n", i);
    fclose(f);
    snprintf(rc.data, sizeof rc.data, "%s", tmpdir_path("big.txt"));
    rc.seq_len = 64;
    rc.model.d_model = 32;
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    int fds[2];
    ssm_engine *e = engine_on(&s, &rc, fds, 1, NULL);
    ssm_snapshot *snap = calloc(1, sizeof *snap);
    ssm_cmd val = {.kind = SSM_CMD_VALIDATE};
    cr_assert_eq(ssm_engine_send(e, &val), 0);
    for (int i = 0; i < 3000 && !(snap->busy && !strcmp(snap->busy_what, "validating")); i++) {
        usleep(1000);
        ssm_engine_snapshot(e, snap);
    }
    cr_assert(snap->busy, "validating");
    ssm_engine_cancel(e);
    for (int i = 0; i < 3000 && !strstr(snap->msg, "validation cancelled"); i++) {
        usleep(1000);
        ssm_engine_snapshot(e, snap);
    }
    cr_assert(strstr(snap->msg, "training goes on"), "%s", snap->msg);
    long step = snap->step;
    for (int i = 0; i < 3000 && snap->step < step + 2; i++) {
        usleep(1000);
        ssm_engine_snapshot(e, snap);
    }
    cr_assert(snap->running && snap->step >= step + 2, "training goes on after the cancel");
    engine_off(e, fds, snap);
}

/* ------------------------------------------------------------------------ */
/* The run's history, train.csv                                             */

static char *file_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *all = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&all, &len);
    int c;
    while ((c = fgetc(f)) != EOF) fputc(c, m);
    fclose(f);
    fclose(m);
    *n = len;
    return all;
}

/* Row r of h: its step, split and whether its eig_pos cell is filled. */
static void row_is(const history *h, int r, long step, const char *split, int dynamics)
{
    cr_assert_eq((long)history_value(h, r, history_column(h, "step")), step, "row %d", r);
    cr_assert_str_eq(history_cell(h, r, history_column(h, "split")), split, "row %d", r);
    cr_assert(isfinite(history_value(h, r, history_column(h, "loss"))), "row %d has a loss", r);
    cr_assert_eq(history_cell(h, r, history_column(h, "eig_pos"))[0] != 0, dynamics, "row %d dynamics", r);
}

Test(runs, the_lab_writes_a_train_csv_that_history_load_reads)
{
    run_config rc;
    tiny_config(&rc);
    rc.log_every = 2;
    ssm_session s;
    double loss, acc;
    float lr;
    task_dynamics dy;
    history h;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_validate_logged(&s, 1, NULL, &loss, &acc, &dy), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(dy.n_layer, 0, "an untrained run has no history to measure into");
    cr_assert_eq(history_load(&h, rc.out), SSM_ERR_NOINPUT, "nothing is written before the first step");
    for (int i = 0; i < 5; i++) cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK, "%s", ssm_last_error());
    atomic_int cancel = 0;
    cr_assert_eq(ssm_session_validate_logged(&s, 1, &cancel, &loss, &acc, &dy), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(dy.n_layer, 2, "the validation measured the dynamics");
    cr_assert_eq(dy.pos + dy.neg + dy.complex_total, 2 * s.model.cfg.state_dim);
    task_dynamics_free(&dy);
    cr_assert_eq(history_load(&h, rc.out), SSM_OK, "%s", ssm_last_error());
    int ncols;
    const char *const *cols = history_columns(&ncols);
    cr_assert_eq(h.n_cols, ncols);
    for (int c = 0; c < ncols; c++) cr_assert_str_eq(h.names[c], cols[c], "the header is ssmlab train's");
    cr_assert_eq(h.n_rows, 3, "steps 2 and 4 (log_every 2), then the validation at 5");
    row_is(&h, 0, 2, "train", 0);
    row_is(&h, 1, 4, "train", 0);
    row_is(&h, 2, 5, "val", 1);
    cr_assert(isfinite(history_value(&h, 2, history_column(&h, "bpb"))));
    history_free(&h);
    ssm_session_free(&s);
}

Test(runs, continuing_a_loaded_run_writes_its_history_in_the_new_run_only)
{
    run_config rc;
    trained_checkpoint(&rc, "b7");   /* 3 steps, log_every 10: no rows yet */
    ssm_session s;
    double loss, acc;
    float lr;
    task_dynamics dy;
    history h;
    cr_assert_eq(ssm_session_open_checkpoint(&s, tmpdir_path("b7"), &rc, NULL, 0), SSM_OK, "%s", ssm_last_error());
    s.rc.log_every = 1;
    for (int i = 0; i < 2; i++) cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_validate_logged(&s, 1, NULL, &loss, &acc, &dy), SSM_OK, "%s", ssm_last_error());
    task_dynamics_free(&dy);
    cr_assert_eq(ssm_session_save(&s, NULL), SSM_OK, "%s", ssm_last_error());
    ssm_session_free(&s);
    size_t n0, n1;
    char *before = file_bytes(tmpdir_path("b7-2/train.csv"), &n0);

    /* b7-2 at step 5 with rows 4, 5 and a validation at 5: continued as b7-2-2 */
    cr_assert_eq(ssm_session_open_checkpoint(&s, tmpdir_path("b7-2"), &rc, NULL, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_history_load(&s, &h), SSM_OK, "the loaded run's history is there to show");
    cr_assert_eq(h.n_rows, 3);
    history_free(&h);
    s.rc.log_every = 1;
    cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK, "%s", ssm_last_error());
    cr_assert_str_eq(s.rc.out, tmpdir_path("b7-2-2"));
    cr_assert_eq(ssm_session_validate_logged(&s, 1, NULL, &loss, &acc, &dy), SSM_OK, "%s", ssm_last_error());
    task_dynamics_free(&dy);
    cr_assert_eq(history_load(&h, tmpdir_path("b7-2-2")), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(h.n_rows, 5, "the loaded history, then step 6 and its validation");
    row_is(&h, 0, 4, "train", 0);
    row_is(&h, 1, 5, "train", 0);
    row_is(&h, 2, 5, "val", 1);
    row_is(&h, 3, 6, "train", 0);
    row_is(&h, 4, 6, "val", 1);
    history_free(&h);
    ssm_session_free(&s);
    char *after = file_bytes(tmpdir_path("b7-2/train.csv"), &n1);
    cr_assert(n0 == n1 && !memcmp(before, after, n0), "the loaded train.csv is byte-identical");
    free(before);
    free(after);
}

/* ------------------------------------------------------------------------ */
/* Mamba-2 in the lab                                                       */

/* tiny_config with Mamba-2 layers: d_inner 32 = 4 heads of 8 in 2 groups. */
static void tiny_mamba2_config(run_config *rc)
{
    tiny_config(rc);
    rc->model.arch = SSM_ARCH_MAMBA2;
    rc->model.head_dim = 8;
    rc->model.n_groups = 2;
    rc->model.chunk_size = 8;
}

/* A Mamba-2 session trains, saves and reloads; its hidden attention is
 * per head (the lab's and inspect's the same bits), and a head's ablation
 * attaches to the probe (a head out of range is refused, the probe
 * untouched); Mamba-1's units are channels. */
Test(session, mamba2_trains_with_heads)
{
    run_config rc;
    tiny_mamba2_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    const char *unit;
    cr_assert_eq(ssm_session_attn_units(&s.model, &unit), 4);
    cr_assert_str_eq(unit, "head");
    double loss[3], acc;
    float lr;
    for (int i = 0; i < 3; i++) cr_assert_eq(ssm_session_step(&s, &loss[i], &acc, &lr), SSM_OK, "%s", ssm_last_error());
    cr_assert(isfinite(loss[2]) && loss[2] != loss[0], "the loss moves: %g -> %g", loss[0], loss[2]);
    ssm_ablation bad = {0, 4, -1};   /* 4 heads: 0..3 */
    ssm_probe iv = {.ablate = &bad, .n_ablate = 1};
    cr_assert_eq(ssm_session_intervene(&s, &iv), SSM_ERR_USAGE);
    cr_assert(strstr(ssm_last_error(), "head"), "%s", ssm_last_error());
    cr_assert_null(s.iv);
    ssm_ablation ab = {0, 3, -1};
    iv.ablate = &ab;
    cr_assert_eq(ssm_session_intervene(&s, &iv), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(s.iv, &iv);
    cr_assert_eq(ssm_session_intervene(&s, NULL), SSM_OK);
    cr_assert_eq(ssm_session_save(&s, tmpdir_path("m2")), SSM_OK, "%s", ssm_last_error());

    int tokens[16] = {80, 97, 99, 107, 32, 109, 121, 32, 98, 111, 120, 32, 119, 105, 116, 104}, T = 16;
    cr_assert_eq(ssm_session_probe(&s, tokens, NULL, T), SSM_OK, "%s", ssm_last_error());
    ssm_model m = {0};
    ssm_checkpoint_meta meta = {0};
    cr_assert_eq(ssm_checkpoint_load(tmpdir_path("m2"), &m, &meta), SSM_OK, "%s", ssm_last_error());
    free(meta.run_config);
    ssm_batch b = {.B = 1, .L = T, .tokens = tokens};
    cr_assert_eq(ssm_model_alloc_grads(&m), SSM_OK);
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    float lab[16 * 16], cli[16 * 16];
    int heads[] = {SSM_ATTN_MEAN, 0, 3};
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(ssm_session_hidden_attention(&s.probe, l, heads[k], NULL, lab), SSM_OK, "%s", ssm_last_error());
            cr_assert_eq(ssm_recency_attention(&m, l, 0, heads[k], NULL, cli), SSM_OK);
            cr_assert_eq(memcmp(lab, cli, sizeof lab), 0, "attention of layer %d head %d", l, heads[k]);
        }
    cr_assert_eq(ssm_session_hidden_attention(&s.probe, 0, 4, NULL, lab), SSM_ERR_USAGE, "there are 4 heads");
    ssm_model_free(&m);

    ssm_session t;
    cr_assert_eq(ssm_session_open_checkpoint(&t, tmpdir_path("m2"), &rc, NULL, 0), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(t.opt.step, 3);
    cr_assert_eq(t.model.cfg.arch, SSM_ARCH_MAMBA2);
    cr_assert_eq(ssm_session_step(&t, &loss[0], &acc, &lr), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(t.opt.step, 4);
    ssm_config mc = t.model.cfg;
    mc.scenario = SSM_SCENARIO_POSITIVE;   /* Mamba-2 has none: refused, the session unchanged */
    cr_assert_eq(ssm_session_rebuild(&t, &mc), SSM_ERR_CONFIG);
    cr_assert_eq(t.opt.step, 4);
    ssm_session_free(&t);
    ssm_session_free(&s);

    tiny_config(&rc);
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_session_attn_units(&s.model, &unit), s.model.cfg.d_inner);
    cr_assert_str_eq(unit, "channel");
    ssm_session_free(&s);
}

/* The engine on a Mamba-2 session: a spectrum row per group, heads to
 * select, every view measured (norms, importance, attention, influence,
 * lens, states per head, flow), and a head's ablation changing what the
 * panels measure. */
Test(engine, mamba2_snapshot_per_group_and_per_head)
{
    run_config rc;
    tiny_mamba2_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc), SSM_OK, "%s", ssm_last_error());
    int fds[2];
    ssm_engine *e = engine_on(&s, &rc, fds, 0, "Hello, heads");
    ssm_snapshot *snap = calloc(1, sizeof *snap);
    ssm_cmd sel = {.kind = SSM_CMD_SELECT, .layer = 1, .channel = 2, .token = 5};
    ssm_engine_send(e, &sel);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->arch, SSM_ARCH_MAMBA2);
    cr_assert_eq(snap->n_heads, 4);
    cr_assert_eq(snap->n_groups, 2);
    cr_assert_eq(snap->attn_units, 4);
    cr_assert_str_eq(snap->attn_unit, "head");
    cr_assert(snap->spec_ok);
    cr_assert_eq(snap->spec_groups, 2);
    cr_assert_eq(snap->spec_rows, 4, "two layers of two groups");
    for (int r = 0; r < 4; r++)
        cr_assert_eq(snap->n_pos[r] + snap->n_neg[r] + snap->n_cplx[r] <= snap->spec_N, 1, "row %d", r);
    cr_assert(snap->attn_ok && snap->attn_layer == 1 && snap->attn_channel == 2, "%s", snap->attn_note);
    cr_assert(snap->infl_ok && snap->infl_token == 5, "%s", snap->infl_note);
    cr_assert(snap->lens_ok, "%s", snap->lens_note);
    for (int i = 0; i < 3 * 12; i++) cr_assert(snap->norms[i] > 0, "norm %d", i);
    cr_assert(snap->imp_ok);
    cr_assert(snap->states_ok, "%s", snap->states_note);
    cr_assert(snap->setting_note[SSM_RUN_SCENARIO][0], "Mamba-2 has no eigenvalue scenario");
    /* polarize zero adds a fifth head, which 2 groups do not divide */
    cr_assert(strstr(snap->setting_note[SSM_RUN_POLARIZE], "must divide the 5 heads"), "%s",
              snap->setting_note[SSM_RUN_POLARIZE]);
    cr_assert(!snap->msg_error, "%s", snap->msg);
    float before = snap->norms[2 * 12 + 11];
    ssm_cmd ab = {.kind = SSM_CMD_ABLATE, .layer = 0, .channel = 1};
    ssm_engine_send(e, &ab);
    wait_done(e, fds[0], snap);
    cr_assert(!snap->msg_error, "%s", snap->msg);
    cr_assert(strstr(snap->msg, "layer 0 head 1"), "%s", snap->msg);
    cr_assert_eq(snap->n_ablated, 1);
    cr_assert_neq(snap->norms[2 * 12 + 11], before, "the ablated head changes the last token's norm");
    ssm_cmd step = {.kind = SSM_CMD_STEP};
    ssm_engine_send(e, &step);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->step, 1);
    cr_assert(isfinite(snap->loss));
    cr_assert_eq(snap->n_ablated, 1);
    cr_assert(snap->spec_ok && snap->attn_ok);
    engine_off(e, fds, snap);
}
