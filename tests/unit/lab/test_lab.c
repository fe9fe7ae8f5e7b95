/* test_lab.c — unit tests of the lab's controller (lab/): the hidden
 * attention against its formula and against the model's own scan, the
 * influence against ssm_recency_influence (exact and probed, cancellable,
 * leaving the activations alone), that the lab and ssmlab inspect compute
 * identical attention and influence tables for one model and input, the
 * training session for language models and image classifiers (steps,
 * accuracy, dirty state, save and load, rebuild, cancelled validation, test
 * images) and the engine thread (commands, snapshots, the self-pipe, the
 * influence and its decay, picking images). */
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
#include "engine/recency.h"
#include "lab/engine_thread.h"
#include "lab/session.h"
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
    cr_assert_eq(ssm_session_open(&s, &rc, "tiny"), SSM_OK, "%s", ssm_last_error());
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

Test(session, bad_checkpoints_and_data_fail_cleanly)
{
    run_config rc;
    tiny_config(&rc);
    ssm_session s;
    cr_assert_eq(ssm_session_open_checkpoint(&s, tmpdir_path("nothing"), &rc, NULL, 0), SSM_ERR_NOINPUT);
    snprintf(rc.data, sizeof rc.data, "%s", tmpdir_path("no-corpus"));
    cr_assert_eq(ssm_session_open(&s, &rc, NULL), SSM_ERR_NOINPUT);
}

/* Wait (at most 30 s) for a snapshot with every sent command handled. */
/* The lab and ssmlab inspect compute one table the same way: the lab's
 * probe (session) and inspect's path (load the checkpoint, forward with
 * gradients, ssm_recency_attention and ssm_recency_influence) give
 * bit-identical hidden attention and influence on a trained model. */
Test(session, the_lab_and_inspect_give_identical_attention_and_influence)
{
    run_config rc;
    tiny_config(&rc);
    rc.model.polarize = SSM_POLARIZE_BOTH;
    ssm_session s;
    cr_assert_eq(ssm_session_open(&s, &rc, "same"), SSM_OK, "%s", ssm_last_error());
    double loss, acc;
    float lr;
    for (int i = 0; i < 3; i++) cr_assert_eq(ssm_session_step(&s, &loss, &acc, &lr), SSM_OK);
    cr_assert_eq(ssm_session_save(&s, tmpdir_path("same")), SSM_OK, "%s", ssm_last_error());
    const char *text = "Pack my box with jugs";
    int T = (int)strlen(text), tokens[32], t = T - 2;
    for (int i = 0; i < T; i++) tokens[i] = (unsigned char)text[i];
    cr_assert_eq(ssm_session_probe(&s, tokens, NULL, T), SSM_OK, "%s", ssm_last_error());

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
    cr_assert_eq(ssm_session_open(&s, &rc, "tiny"), SSM_OK, "%s", ssm_last_error());
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    ssm_engine *e;
    ssm_engine_options o = {fds[1], 0, "Hello, tokens", 0};
    cr_assert_eq(ssm_engine_start(&e, &s, &rc, &o), SSM_OK);
    ssm_snapshot *snap = calloc(1, sizeof *snap);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->T, 13);
    cr_assert_eq(snap->step, 0);
    cr_assert_eq(snap->n_layer, 2);
    for (int i = 0; i < 3 * 13; i++) cr_assert(snap->norms[i] > 0, "norm %d", i);
    cr_assert(snap->spec_ok && snap->attn_ok);

    ssm_cmd step = {.kind = SSM_CMD_STEP};
    for (int i = 0; i < 3; i++) cr_assert_eq(ssm_engine_send(e, &step), 0);
    ssm_cmd sel = {.kind = SSM_CMD_SELECT, .layer = 2, .channel = 5};
    cr_assert_eq(ssm_engine_send(e, &sel), 0);
    wait_done(e, fds[0], snap);
    cr_assert_eq(snap->step, 3);
    cr_assert_eq(snap->measured_step, 3);
    cr_assert_eq(snap->n_hist, 3);
    cr_assert(snap->dirty);
    cr_assert_eq(snap->attn_layer, 2);
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
    cr_assert_eq(access(tmpdir_path("out/model.safetensors"), F_OK), 0);

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
    cr_assert_eq(ssm_session_open(&s, &rc, "cls"), SSM_OK, "%s", ssm_last_error());
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
    cr_assert_eq(ssm_session_open(&s, &rc, "cls"), SSM_OK, "%s", ssm_last_error());
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
    cr_assert_eq(ssm_session_open(&s, &rc, "cls"), SSM_OK, "%s", ssm_last_error());
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    ssm_engine *e;
    ssm_engine_options o = {fds[1], 0, NULL, 2};
    cr_assert_eq(ssm_engine_start(&e, &s, &rc, &o), SSM_OK, "%s", ssm_last_error());
    ssm_snapshot *snap = calloc(1, sizeof *snap);
    wait_done(e, fds[0], snap);
    cr_assert(snap->images && snap->T == 16 && snap->grid_cols == 4 && snap->n_images == 12);
    cr_assert_eq(snap->image, 2);
    cr_assert_eq(snap->image_label, (2 * 7 + 3) % 4);
    cr_assert(snap->image_pred >= 0 && snap->image_pred < 4);
    cr_assert_eq(memcmp(snap->text, "0123012301230123", 16), 0, "columns are labelled x mod 10");
    cr_assert(snap->infl_ok && snap->infl_token == 15 && snap->infl_probes == 0);
    cr_assert_eq(snap->infl_passes, 16);
    for (int t = 0; t < 16; t++) cr_assert(snap->infl[t] > 0, "I(15, %d)", t);
    cr_assert(isfinite(snap->infl_rate) && snap->infl_fit_n == 15, "a decay fit over 15 distances");
    cr_assert(fabs(snap->infl_half_life - M_LN2 / snap->infl_rate) < 1e-9 * fabs(snap->infl_half_life));

    ssm_cmd sel = {.kind = SSM_CMD_SELECT, .layer = 1, .channel = -1, .token = 6};
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
/* Panel classes, cycling settings, prompt editing, scrolling               */
/* (appended: the includes this part needs beyond those above)              */

#include <locale.h>
#include <stdint.h>

/* Under AddressSanitizer a failed allocation returns NULL, as it does in a
 * release build, instead of ending the process: the out-of-memory test
 * below runs in both builds. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

TestSuite(panels);
TestSuite(cycle);
TestSuite(prompt);

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

Test(panels, every_class_in_the_table_builds_zeroed_and_frees)
{
    for (int i = 0; i < TUI_NPANELS; i++) {
        const tui_panel_class *c = tui_panel_classes[i];
        cr_assert_not_null(c, "panel %d has no class", i);
        cr_assert(c->name && c->name[0], "panel %d has no name", i);
        for (int j = 0; j < i; j++) cr_assert_neq(tui_panel_classes[j], c, "%s twice in the table", c->name);
        cr_assert(c->state_size > 0 && c->update && c->draw, "%s lacks state, update or draw", c->name);
        tui_panel *p = tui_panel_new(c);
        cr_assert_not_null(p, "%s", c->name);
        cr_assert_eq(p->cls, c);
        cr_assert_null(p->win, "a new panel has no window yet");
        cr_assert_not_null(p->st);
        cr_assert(all_zero(p->st, c->state_size), "%s: state not zeroed", c->name);
        tui_panel_free(p);
    }
    tui_panel_free(NULL);
}

Test(panels, the_table_follows_the_layout_and_clicks_go_to_the_selecting_panels)
{
    cr_assert_eq(tui_panel_classes[TUI_PANEL_STATUS], &tui_panel_status_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_HEATMAP], &tui_panel_heatmap_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_DEPTH], &tui_panel_depth_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_LOSS], &tui_panel_loss_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_SPECTRUM], &tui_panel_spectrum_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_RANK], &tui_panel_rank_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_ATTN], &tui_panel_attn_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_MESSAGE], &tui_panel_message_class);
    for (int i = 0; i < TUI_NPANELS; i++) {
        int clickable = i == TUI_PANEL_HEATMAP || i == TUI_PANEL_RANK || i == TUI_PANEL_ATTN;
        cr_assert_eq(tui_panel_classes[i]->click != NULL, clickable, "%s", tui_panel_classes[i]->name);
    }
}

Test(panels, the_constructor_returns_null_when_out_of_memory)
{
    tui_panel_class huge = tui_panel_status_class;
    huge.state_size = SIZE_MAX / 2 + 1;   /* more than any allocator gives */
    cr_assert_null(tui_panel_new(&huge));
}

/* A snapshot of T tokens and n_layer layers with every measurement present. */
static ssm_snapshot *fake_snapshot(int T, int n_layer)
{
    ssm_snapshot *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    snprintf(s->name, sizeof s->name, "fake");
    s->ready = s->spec_ok = s->attn_ok = s->infl_ok = 1;
    s->T = T;
    s->n_layer = n_layer;
    s->d_model = 16;
    s->d_inner = 32;
    s->spec_N = 4;
    s->total_steps = 100;
    s->step = s->measured_step = 7;
    s->val_step = -1;
    s->loss = 2.5;
    s->baseline = 3.0;
    s->infl_token = T - 1;
    s->infl_rate = 0.5;
    s->infl_half_life = M_LN2 / 0.5;
    int layers = (n_layer < SSM_SNAP_MAX_LAYER ? n_layer : SSM_SNAP_MAX_LAYER) + 1;
    for (int i = 0; i < layers * T; i++) s->norms[i] = 1.0f + (float)(i % 7);
    for (int t = 0; t < T; t++) {
        s->text[t] = (unsigned char)('a' + t % 26);
        s->order[t] = T - 1 - t;
        s->imp[t] = (float)t;
        s->infl[t] = 1.0f + (float)t;
        s->attn[(size_t)t * T + t] = 255;
    }
    for (int l = 0; l < SSM_SNAP_MAX_LAYER; l++) memset(s->signs[l], '+', 4);
    s->n_hist = 3;
    for (int i = 0; i < 3; i++) {
        s->hist_step[i] = i + 1;
        s->hist_loss[i] = 3.0f - 0.2f * (float)i;
    }
    return s;
}

/* Every class derives its state from small, empty and largest snapshots
 * at small and large panel sizes (memory errors show under ASan). */
Test(panels, every_class_updates_from_small_empty_and_largest_snapshots)
{
    ssm_snapshot *snaps[3] = {fake_snapshot(6, 2), calloc(1, sizeof(ssm_snapshot)),
                              fake_snapshot(SSM_SNAP_MAX_T, SSM_SNAP_MAX_LAYER + 3)};
    cr_assert_not_null(snaps[1]);
    int sizes[2][2] = {{5, 20}, {40, 120}};
    for (int k = 0; k < 3; k++)
        for (int z = 0; z < 2; z++)
            for (int i = 0; i < TUI_NPANELS; i++) {
                tui_panel *p = tui_panel_new(tui_panel_classes[i]);
                cr_assert_not_null(p);
                p->h = sizes[z][0];
                p->w = sizes[z][1];
                int T = snaps[k]->T;
                tui_view v = {.snap = snaps[k], .layer = 1, .token = T > 0 ? T - 1 : 0, .channel = -1,
                              .plot_mode = TUI_PLOT_BRAILLE, .utf8 = 1};
                p->cls->update(p, &v);
                cr_assert_null(p->win, "%s: update made a window", p->cls->name);
                tui_panel_free(p);
            }
    for (int k = 0; k < 3; k++) free(snaps[k]);
}

/* ------------------------------------------------------------------------ */

/* Cycling a setting count times from 0 visits every value once and comes back. */
static void check_cycle(tui_action a, int which, int count, const char *(*name)(int), int (*parse)(const char *))
{
    int set[3] = {0, 0, 0}, seen[16] = {0};
    cr_assert(count > 1 && count <= 16);
    for (int i = 0; i < count; i++) {
        int v = set[which];
        cr_assert(v >= 0 && v < count, "value %d outside 0..%d", v, count - 1);
        cr_assert_eq(seen[v]++, 0, "value %d twice", v);
        cr_assert_eq(parse(name(v)), v, "value %d has the name '%s'", v, name(v));
        tui_model_cycle(a, &set[0], &set[1], &set[2]);
        for (int j = 0; j < 3; j++)
            if (j != which) cr_assert_eq(set[j], 0, "the action changed another setting");
    }
    cr_assert_eq(set[which], 0, "after %d steps the cycle is back at the first value", count);
    cr_assert_eq(parse(name(count)), -1, "the count %d names no value", count);
}

Test(cycle, model_settings_cover_exactly_the_enum_counts)
{
    check_cycle(TUI_ACT_SCENARIO, 0, SSM_SCENARIO_COUNT, ssm_scenario_name, ssm_scenario_parse);
    check_cycle(TUI_ACT_POLARIZE, 1, SSM_POLARIZE_COUNT, ssm_polarize_name, ssm_polarize_parse);
    check_cycle(TUI_ACT_REORDER, 2, SSM_REORDER_COUNT, ssm_reorder_name, ssm_reorder_parse);
    cr_assert_eq(SSM_SCENARIO_COUNT, SSM_SCENARIO_MIXED + 1);
    cr_assert_eq(SSM_POLARIZE_COUNT, SSM_POLARIZE_BOTH + 1);
    cr_assert_eq(SSM_REORDER_COUNT, SSM_REORDER_SOFT + 1);
    int sc = 3, pol = 2, re = 1;
    tui_model_cycle(TUI_ACT_STEP, &sc, &pol, &re);
    cr_assert(sc == 3 && pol == 2 && re == 1, "other actions keep the settings");
}

Test(cycle, plot_styles_and_colour_names_cover_their_counts)
{
    int m = TUI_PLOT_BRAILLE, seen[TUI_PLOT_COUNT] = {0};
    for (int i = 0; i < TUI_PLOT_COUNT - 1; i++) {
        cr_assert(m > TUI_PLOT_AUTO && m < TUI_PLOT_COUNT, "style %d", m);
        cr_assert_eq(seen[m]++, 0, "style %s twice", tui_plot_name(m));
        m = tui_plot_next(m);
    }
    cr_assert_eq(m, TUI_PLOT_BRAILLE, "Braille, blocks, ASCII, then Braille again");
    for (int i = 0; i < TUI_PLOT_COUNT; i++) cr_assert_eq(tui_plot_parse(tui_plot_name(i)), i);
    cr_assert_str_eq(tui_plot_name(TUI_PLOT_COUNT), "?");
    for (int i = 0; i < TUI_COLOR_COUNT; i++) cr_assert_eq(tui_colors_parse(tui_colors_name(i)), i);
    cr_assert_str_eq(tui_colors_name(TUI_COLOR_COUNT), "?");
}

/* ------------------------------------------------------------------------ */

static void keys_in(tui_prompt *p, const int *keys, int n, int is_wide)
{
    for (int i = 0; i < n; i++) cr_assert_eq(tui_prompt_key(p, keys[i], is_wide), TUI_PROMPT_MORE);
}

Test(prompt, backspace_removes_one_character_of_multibyte_text)
{
    cr_assert_not_null(setlocale(LC_ALL, "C.UTF-8"), "no C.UTF-8 locale");
    tui_prompt p;
    tui_prompt_line(&p, TUI_ASK_TEXT, "Inspect text:", "", 0);
    int typed[] = {'a', 0xE9, 0x1F600, 'b'};   /* a, e acute (2 bytes), an emoji (4 bytes), b */
    keys_in(&p, typed, 4, 1);
    cr_assert_str_eq(p.buf, "a\xC3\xA9\xF0\x9F\x98\x80" "b");
    int bs = KEY_BACKSPACE;
    keys_in(&p, &bs, 1, 0);
    cr_assert_str_eq(p.buf, "a\xC3\xA9\xF0\x9F\x98\x80");
    keys_in(&p, &bs, 1, 0);
    cr_assert_str_eq(p.buf, "a\xC3\xA9", "Backspace takes the whole 4-byte emoji");
    int del = 127;
    keys_in(&p, &del, 1, 1);
    cr_assert_str_eq(p.buf, "a", "Backspace takes the whole 2-byte e acute");
    keys_in(&p, &bs, 1, 0);
    keys_in(&p, &bs, 1, 0);
    cr_assert_str_eq(p.buf, "", "Backspace on an empty line does nothing");
}

Test(prompt, invalid_utf8_goes_a_byte_at_a_time_and_lines_accept_or_cancel)
{
    tui_prompt p;
    tui_prompt_line(&p, TUI_ASK_LOAD, "Load checkpoint:", "ab\xE2\x82", 1);
    int bs = KEY_BACKSPACE;
    keys_in(&p, &bs, 1, 0);
    cr_assert_str_eq(p.buf, "ab\xE2", "a truncated sequence loses one byte");
    keys_in(&p, &bs, 1, 0);
    cr_assert_str_eq(p.buf, "ab");
    int cu = 'u' & 0x1f;
    keys_in(&p, &cu, 1, 0);
    cr_assert_str_eq(p.buf, "", "C-u clears the line");
    cr_assert_eq(tui_prompt_key(&p, '\n', 0), TUI_PROMPT_ACCEPT);
    cr_assert_eq(tui_prompt_key(&p, 27, 0), TUI_PROMPT_CANCEL);
}

Test(prompt, a_choice_keeps_its_command_and_takes_its_keys)
{
    tui_prompt p;
    memset(&p, 0, sizeof p);
    p.cmd = (ssm_cmd){.kind = SSM_CMD_NEW_MODEL, .scenario = SSM_SCENARIO_MIXED};
    tui_prompt_choice(&p, TUI_ASK_NEW_MODEL, "New model? [y/n]", "yn");
    cr_assert_eq(p.kind, TUI_PROMPT_CHOICE);
    cr_assert_eq(p.cmd.kind, SSM_CMD_NEW_MODEL);
    cr_assert_eq(p.cmd.scenario, SSM_SCENARIO_MIXED);
    cr_assert_eq(tui_prompt_key(&p, 'x', 0), TUI_PROMPT_MORE);
    cr_assert_eq(tui_prompt_key(&p, 'Y', 0), TUI_PROMPT_ACCEPT);
    cr_assert_eq(p.choice, 'y');
    tui_prompt_line(&p, TUI_ASK_SAVE, "Save checkpoint to:", "run", 1);
    cr_assert(p.kind == TUI_PROMPT_LINE && p.paths == 1 && !p.choices[0]);
    cr_assert_str_eq(p.buf, "run");
    cr_assert_str_eq(p.label, "Save checkpoint to:");
}

/* ------------------------------------------------------------------------ */

Test(panels, scrolling_keeps_the_selection_in_view)
{
    cr_assert_eq(tui_scroll_first(7, 10, 10), 0, "everything fits");
    cr_assert_eq(tui_scroll_first(50, 10, 100), 45, "centred");
    cr_assert_eq(tui_scroll_first(2, 10, 100), 0, "clamped at the start");
    cr_assert_eq(tui_scroll_first(98, 10, 100), 90, "clamped at the end");
    for (int n = 1; n < 12; n++)
        for (int total = 1; total < 30; total++)
            for (int sel = 0; sel < total; sel++) {
                int f = tui_scroll_first(sel, n, total);
                cr_assert(f >= 0 && sel >= f && sel < f + n, "sel %d of %d in %d rows: first %d", sel, total, n, f);
                cr_assert(total <= n || f + n <= total, "no blank rows at the end");
            }
}
