/* test_generate.c — unit tests of generation: the recurrent step's logits
 * against the full forward at every position (odd d_state, d_conv 1, 3 and
 * 4, untied head, scenarios, polarization, threaded products), state reset
 * and refusals, and the sampler: greedy is argmax, seeded draws repeat and
 * follow the distribution, top-k and top-p keep the right sets. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/generate.h"
#include "engine/model.h"
#include "engine/sample.h"
#include "tests/rel_err.h"

static unsigned rng_state = 4242u;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) / 8388608.0 - 1.0);
}

static ssm_config small_lm(void)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 12; c.n_layer = 2; c.d_state = 5; c.d_conv = 3; c.expand = 2;
    c.vocab_size = 19;
    return c;
}

/* Build, init and move every parameter off its init (as test_model.c). */
static void model_build(ssm_model *m, ssm_config c)
{
    cr_assert_eq(ssm_model_build(m, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(m, 11);
    for (size_t i = 0; i < m->num_params; i++) m->params_memory[i] += 0.05f * frand();
    size_t nb = (size_t)m->cfg.n_layer * m->cfg.d_inner;
    for (size_t i = 0; m->params.dt_proj_b && i < nb; i++) m->params.dt_proj_b[i] = -0.5f + 0.5f * frand();
}

/* A Mamba-2 language model: E 24, 4 heads of 6 in 2 groups, chunks of 4 */
static ssm_config small_mamba2(void)
{
    ssm_config c = small_lm();
    c.arch = SSM_ARCH_MAMBA2;
    c.head_dim = 6; c.n_groups = 2; c.chunk_size = 4;
    return c;
}

/* Forward on B sequences of length L, then the step through each sequence
 * (reset in between): logits must agree at every position. */
static void check_step_matches_forward(ssm_config c, int B, int L, const char *what)
{
    ssm_model m;
    model_build(&m, c);
    int V = m.cfg.padded_vocab;
    int *tok = malloc(sizeof(int) * B * L);   /* (B, L) */
    for (int i = 0; i < B * L; i++) tok[i] = (int)((frand() + 1.0f) * 0.5f * m.cfg.vocab_size);
    ssm_batch batch = {B, L, tok, NULL, NULL};
    cr_assert_eq(ssm_model_forward(&m, &batch), SSM_OK, "%s", ssm_last_error());
    ssm_gen_state st;
    cr_assert_eq(ssm_gen_state_build(&st, &m), SSM_OK, "%s", ssm_last_error());
    float *logits = malloc(sizeof(float) * V);   /* (V) */
    double worst = 0.0;
    for (int b = 0; b < B; b++) {
        ssm_gen_state_reset(&st);
        for (int t = 0; t < L; t++) {
            cr_assert_eq(ssm_model_step(&m, &st, tok[b * L + t], logits), SSM_OK, "%s", ssm_last_error());
            double e = row_rel_err(logits, m.acts.logits + ((size_t)b * L + t) * V, V);
            worst = fmax(worst, e);
            cr_expect(e < 1e-5, "%s: sequence %d position %d: step vs forward rel err %.3g", what, b, t, e);
        }
        cr_expect_eq(st.pos, L);
    }
    cr_log_info("%s: worst relative error %.3g", what, worst);
    free(logits);
    free(tok);
    ssm_gen_state_free(&st);
    ssm_model_free(&m);
}

Test(generate, step_matches_forward_odd_state_conv3)
{
    check_step_matches_forward(small_lm(), 2, 23, "d_state 5, d_conv 3");
}

Test(generate, step_matches_forward_conv4_three_layers)
{
    ssm_config c = small_lm();
    c.d_conv = 4; c.d_state = 7; c.n_layer = 3; c.d_model = 16;
    check_step_matches_forward(c, 2, 19, "d_state 7, d_conv 4");
}

Test(generate, step_matches_forward_conv1)
{
    ssm_config c = small_lm();
    c.d_conv = 1;
    check_step_matches_forward(c, 1, 9, "d_conv 1");
}

Test(generate, step_matches_forward_untied_head)
{
    ssm_config c = small_lm();
    c.tie_embeddings = 0;
    c.d_conv = 4;
    check_step_matches_forward(c, 2, 17, "untied head");
}

Test(generate, step_matches_forward_scenario_negative)
{
    ssm_config c = small_lm();
    c.scenario = SSM_SCENARIO_NEGATIVE;
    check_step_matches_forward(c, 2, 17, "scenario negative");
}

Test(generate, step_matches_forward_polarize_both)
{
    ssm_config c = small_lm();
    c.polarize = SSM_POLARIZE_BOTH;
    c.d_conv = 4;
    check_step_matches_forward(c, 2, 17, "polarize both");
    c.scenario = SSM_SCENARIO_MIXED;
    check_step_matches_forward(c, 1, 11, "polarize both, scenario mixed");
}

/* Products and the scan large enough to be split over threads. */
Test(generate, step_matches_forward_threaded)
{
    ssm_config c = small_lm();
    c.d_model = 512; c.n_layer = 1; c.d_state = 64; c.d_conv = 4; c.expand = 4; c.vocab_size = 1000;
    ssm_threads_set(3);
    check_step_matches_forward(c, 1, 6, "threaded (E 2048, Ns 64, V 1000)");
    ssm_threads_set(1);
}

/* A Mamba-2 step in a team: in_proj and out_proj split by rows, the conv
 * by channels, the heads by the threads' speeds, the gated norm by groups. */
Test(generate, mamba2_step_matches_forward_threaded)
{
    ssm_config c = small_mamba2();
    c.d_model = 256; c.d_state = 32; c.head_dim = 64; c.n_groups = 2; c.chunk_size = 8;
    c.vocab_size = 300;
    ssm_threads_set(3);
    check_step_matches_forward(c, 1, 11, "mamba2 threaded (E 512, 8 heads, 2 groups)");
    ssm_threads_set(1);
}

/* The same thread count gives the same bits, token after token. */
Test(generate, threaded_step_is_deterministic)
{
    ssm_config c = small_lm();
    c.d_model = 256; c.n_layer = 2; c.d_state = 16; c.d_conv = 4; c.vocab_size = 500;
    ssm_model m;
    model_build(&m, c);
    int V = m.cfg.padded_vocab;
    ssm_threads_set(2);
    ssm_gen_state a, b;
    cr_assert_eq(ssm_gen_state_build(&a, &m), SSM_OK);
    cr_assert_eq(ssm_gen_state_build(&b, &m), SSM_OK);
    float *la = malloc(sizeof(float) * V), *lb = malloc(sizeof(float) * V);
    for (int t = 0; t < 7; t++) {
        int tok = (t * 37 + 5) % c.vocab_size;
        cr_assert_eq(ssm_model_step(&m, &a, tok, la), SSM_OK);
        cr_assert_eq(ssm_model_step(&m, &b, tok, lb), SSM_OK);
        cr_expect(memcmp(la, lb, sizeof(float) * V) == 0, "token %d: two runs differ", t);
    }
    ssm_threads_set(1);
    free(la); free(lb);
    ssm_gen_state_free(&a);
    ssm_gen_state_free(&b);
    ssm_model_free(&m);
}

/* A prefill of the first n tokens, then steps through the rest: the
 * logits after the prompt and after every later token match stepping
 * through the whole sequence, for prompts shorter and longer than the
 * conv window. */
static void check_prefill_then_step(ssm_config c, int n, int L)
{
    ssm_model m;
    model_build(&m, c);
    int V = m.cfg.padded_vocab;
    int tok[32];
    for (int i = 0; i < L; i++) tok[i] = (int)((frand() + 1.0f) * 0.5f * m.cfg.vocab_size);
    ssm_gen_state ref, st;
    cr_assert_eq(ssm_gen_state_build(&ref, &m), SSM_OK);
    cr_assert_eq(ssm_gen_state_build(&st, &m), SSM_OK);
    float *want = malloc(sizeof(float) * V), *got = malloc(sizeof(float) * V);
    for (int t = 0; t < n; t++) cr_assert_eq(ssm_model_step(&m, &ref, tok[t], want), SSM_OK);
    cr_assert_eq(ssm_model_prefill(&m, &st, tok, n, got), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(st.pos, n);
    cr_expect(row_rel_err(got, want, V) < 1e-5, "prefill %d: %.3g", n, row_rel_err(got, want, V));
    for (int t = n; t < L; t++) {
        cr_assert_eq(ssm_model_step(&m, &ref, tok[t], want), SSM_OK);
        cr_assert_eq(ssm_model_step(&m, &st, tok[t], got), SSM_OK);
        cr_expect(row_rel_err(got, want, V) < 1e-5, "prefill %d, step %d: %.3g", n, t,
                  row_rel_err(got, want, V));
    }
    cr_assert_eq(ssm_model_prefill(&m, &st, tok, n, got), SSM_ERR_USAGE, "only at position 0");
    ssm_gen_state_reset(&st);
    int bad[2] = {0, V};
    cr_assert_eq(ssm_model_prefill(&m, &st, bad, 2, got), SSM_ERR_DATA);
    free(want);
    free(got);
    ssm_gen_state_free(&ref);
    ssm_gen_state_free(&st);
    ssm_model_free(&m);
}

Test(generate, prefill_then_step_matches_stepping)
{
    ssm_config c = small_lm();
    check_prefill_then_step(c, 1, 6);    /* shorter than the conv window */
    check_prefill_then_step(c, 9, 14);
    c.d_conv = 4;
    c.polarize = SSM_POLARIZE_BOTH;
    c.n_layer = 3;
    check_prefill_then_step(c, 2, 5);
    check_prefill_then_step(c, 17, 21);
}

Test(generate, mamba2_step_matches_forward)
{
    ssm_config c = small_mamba2();
    check_step_matches_forward(c, 2, 11, "mamba2 G 2 Q 4");
    c.n_groups = 1; c.chunk_size = 3; c.d_conv = 4; c.n_layer = 3;
    check_step_matches_forward(c, 1, 13, "mamba2 G 1 Q 3");
}

/* Polarized Mamba-2 (pinned heads A = 0 first, A = -100 last): the step
 * reads the same A as the forward */
Test(generate, polarized_mamba2_step_matches_forward)
{
    ssm_config c = small_mamba2();
    c.polarize = SSM_POLARIZE_BOTH;   /* 4 + 2 heads in 2 groups */
    check_step_matches_forward(c, 2, 11, "mamba2 polarize both");
    c.polarize = SSM_POLARIZE_ZERO; c.n_groups = 1;
    check_step_matches_forward(c, 1, 9, "mamba2 polarize zero");
    c.polarize = SSM_POLARIZE_ONE;
    check_prefill_then_step(c, 9, 14);
}

Test(generate, mamba2_prefill_then_step_matches_stepping)
{
    ssm_config c = small_mamba2();
    check_prefill_then_step(c, 1, 6);    /* shorter than the conv window */
    check_prefill_then_step(c, 9, 14);   /* 2 chunks and a bit */
    c.chunk_size = 16;
    check_prefill_then_step(c, 17, 21);
}

Test(generate, reset_forgets_and_bad_input_is_refused)
{
    ssm_model m;
    model_build(&m, small_lm());
    int V = m.cfg.padded_vocab;
    ssm_gen_state st;
    cr_assert_eq(ssm_gen_state_build(&st, &m), SSM_OK);
    float a[24], b[24];   /* (V) */
    cr_assert_leq(V, 24);
    ssm_model_step(&m, &st, 3, a);
    ssm_model_step(&m, &st, 5, b);
    ssm_gen_state_reset(&st);
    cr_expect_eq(st.pos, 0);
    ssm_model_step(&m, &st, 3, b);
    cr_expect_eq(memcmp(a, b, sizeof(float) * V), 0, "after reset the first step repeats");
    cr_expect_eq(ssm_model_step(&m, &st, V, a), SSM_ERR_DATA);
    cr_expect_eq(ssm_model_step(&m, &st, -1, a), SSM_ERR_DATA);
    cr_expect(strstr(ssm_last_error(), "outside the vocabulary") != NULL, "%s", ssm_last_error());
    ssm_gen_state_free(&st);
    ssm_gen_state_free(&st);   /* safe twice */
    cr_expect_eq(ssm_model_step(&m, &st, 3, a), SSM_ERR_USAGE);
    ssm_model_free(&m);
}

Test(generate, classifiers_are_refused)
{
    ssm_config c = small_lm();
    c.input_kind = SSM_INPUT_CONTINUOUS;
    c.d_input = 3;
    c.n_classes = 4;
    ssm_model m;
    model_build(&m, c);
    ssm_gen_state st;
    cr_expect_eq(ssm_gen_state_build(&st, &m), SSM_ERR_CONFIG);
    cr_expect(strstr(ssm_last_error(), "classifier") != NULL, "%s", ssm_last_error());
    cr_expect_null(st.memory);
    ssm_gen_state_free(&st);
    ssm_model_free(&m);
}

/* Greedy decoding from the step: each token is the argmax of the full
 * forward's logits at the position before it. */
Test(generate, greedy_decoding_is_argmax_of_the_forward)
{
    ssm_model m;
    model_build(&m, small_lm());
    int V = m.cfg.padded_vocab, n = 16, p = 3;
    int seq[16] = {4, 9, 1};                  /* (n) prompt, then generated */
    float logits[24];                         /* (V) */
    ssm_gen_state st;
    ssm_sampler smp;
    ssm_sample_config sc;
    ssm_sample_config_default(&sc);
    sc.greedy = 1;
    cr_assert_eq(ssm_gen_state_build(&st, &m), SSM_OK);
    cr_assert_eq(ssm_sampler_build(&smp, &sc, m.cfg.vocab_size, 5), SSM_OK);
    for (int t = 0; t < n - 1; t++) {
        ssm_model_step(&m, &st, seq[t], logits);
        if (t + 1 >= p) seq[t + 1] = ssm_sampler_next(&smp, logits);
    }
    ssm_batch batch = {1, n, seq, NULL, NULL};
    cr_assert_eq(ssm_model_forward(&m, &batch), SSM_OK);
    for (int t = p - 1; t < n - 1; t++)
        cr_expect_eq(seq[t + 1], ssm_sample_argmax(m.acts.logits + (size_t)t * V, m.cfg.vocab_size),
                     "position %d", t + 1);
    ssm_sampler_free(&smp);
    ssm_gen_state_free(&st);
    ssm_model_free(&m);
}

/* ------------------------------------------------------------------------ */
/* Sampler                                                                  */

static void draws(ssm_sample_config sc, unsigned long seed, const float *logits, int V,
                  int n, int *out)
{
    ssm_sampler s;
    cr_assert_eq(ssm_sampler_build(&s, &sc, V, seed), SSM_OK, "%s", ssm_last_error());
    for (int i = 0; i < n; i++) out[i] = ssm_sampler_next(&s, logits);
    ssm_sampler_free(&s);
}

Test(sample, argmax_takes_the_first_largest)
{
    float x[] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
    cr_expect_eq(ssm_sample_argmax(x, 5), 1);
    cr_expect_eq(ssm_sample_argmax(x, 1), 0);
}

Test(sample, greedy_and_temperature_zero_are_argmax)
{
    float logits[50];
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < 50; i++) logits[i] = 3.0f * frand();
        int want = ssm_sample_argmax(logits, 50), got[4];
        ssm_sample_config sc;
        ssm_sample_config_default(&sc);
        sc.greedy = 1;
        sc.top_p = 0.3f;
        draws(sc, trial, logits, 50, 2, got);
        sc.greedy = 0;
        sc.temperature = 0.0f;
        draws(sc, trial, logits, 50, 2, got + 2);
        for (int i = 0; i < 4; i++) cr_expect_eq(got[i], want, "trial %d draw %d", trial, i);
    }
}

Test(sample, padding_past_V_is_never_chosen)
{
    float logits[8] = {0, 0, 0, 0, 0, 100, 100, 100};   /* ids 5.. are padding */
    int got[200];
    ssm_sample_config sc;
    ssm_sample_config_default(&sc);
    draws(sc, 3, logits, 5, 200, got);
    for (int i = 0; i < 200; i++) cr_expect_lt(got[i], 5);
    sc.greedy = 1;
    draws(sc, 3, logits, 5, 1, got);
    cr_expect_eq(got[0], 0);
}

Test(sample, a_seed_repeats_its_draws)
{
    float logits[30];
    for (int i = 0; i < 30; i++) logits[i] = frand();
    int a[300], b[300], c[300];
    ssm_sample_config sc;
    ssm_sample_config_default(&sc);
    sc.temperature = 0.8f;
    sc.top_p = 0.9f;
    sc.top_k = 20;
    draws(sc, 77, logits, 30, 300, a);
    draws(sc, 77, logits, 30, 300, b);
    draws(sc, 78, logits, 30, 300, c);
    cr_expect_eq(memcmp(a, b, sizeof a), 0, "same seed, same tokens");
    cr_expect_neq(memcmp(a, c, sizeof a), 0, "another seed, other tokens");
}

/* Frequencies of 40000 draws within 0.01 of the probabilities. */
Test(sample, draws_follow_the_tempered_distribution)
{
    float logits[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    static int got[40000];
    ssm_sample_config sc;
    ssm_sample_config_default(&sc);
    sc.temperature = 2.0f;
    draws(sc, 9, logits, 4, 40000, got);
    float want[4], count[4] = {0};
    ssm_sample_softmax(want, logits, 4, 2.0f);
    for (int i = 0; i < 40000; i++) count[got[i]] += 1.0f;
    const double base[4] = {0.5, 0.3, 0.15, 0.05};   /* at temperature 2: p ~ sqrt(base) */
    double norm = sqrt(0.5) + sqrt(0.3) + sqrt(0.15) + sqrt(0.05);
    for (int i = 0; i < 4; i++) {
        cr_expect_float_eq(want[i], sqrt(base[i]) / norm, 1e-6, "softmax(logits / 2) of token %d", i);
        cr_expect(fabs(count[i] / 40000.0 - want[i]) < 0.01, "token %d: frequency %.4f, probability %.4f",
                  i, count[i] / 40000.0, want[i]);
    }
}

/* (When nothing is filtered out, ssm_sample_filter leaves the ids in id
 * order: only filtered sets are compared in order.) */

/* The brute-force nucleus: sort all, keep top-k, then the shortest prefix
 * holding top_p of their mass. */
static int nucleus_ref(const float *probs, int V, int top_k, float top_p, int *order)
{
    for (int i = 0; i < V; i++) order[i] = i;
    for (int i = 1; i < V; i++)   /* insertion sort: prob desc, id asc */
        for (int j = i; j > 0 && probs[order[j]] > probs[order[j - 1]]; j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    int keep = top_k > 0 && top_k < V ? top_k : V;
    double mass = 0.0, cum = 0.0;
    for (int i = 0; i < keep; i++) mass += probs[order[i]];
    for (int i = 0; i < keep && top_p < 1.0f; i++) {
        cum += probs[order[i]];
        if (cum >= top_p * mass) return i + 1;
    }
    return keep;
}

Test(sample, top_p_keeps_the_smallest_set_with_mass_p)
{
    float probs[5] = {0.1f, 0.45f, 0.05f, 0.25f, 0.15f};
    int order[5];
    cr_expect_eq(ssm_sample_filter(probs, 5, 0, 0.4f, order), 1);
    cr_expect_eq(order[0], 1);
    cr_expect_eq(ssm_sample_filter(probs, 5, 0, 0.6f, order), 2);
    cr_expect_eq(order[1], 3);
    cr_expect_eq(ssm_sample_filter(probs, 5, 0, 0.8f, order), 3);
    cr_expect_eq(order[2], 4);
    cr_expect_eq(ssm_sample_filter(probs, 5, 0, 0.92f, order), 4);
    cr_expect_eq(ssm_sample_filter(probs, 5, 0, 0.99f, order), 5);
    cr_expect_eq(ssm_sample_filter(probs, 5, 0, 1.0f, order), 5);
    /* top-k first, then top-p of what top-k kept: {0.45, 0.25} -> 0.45/0.7 < 0.7 */
    cr_expect_eq(ssm_sample_filter(probs, 5, 2, 0.7f, order), 2);
    cr_expect_eq(ssm_sample_filter(probs, 5, 2, 0.6f, order), 1);
    cr_expect_eq(ssm_sample_filter(probs, 5, 3, 1.0f, order), 3);
}

Test(sample, filter_matches_brute_force)
{
    enum { V = 300 };
    float probs[V];
    int got[V], want[V];
    for (int trial = 0; trial < 200; trial++) {
        double sum = 0.0;
        float sharp = 1.0f + 6.0f * (frand() + 1.0f);
        for (int i = 0; i < V; i++) sum += probs[i] = expf(sharp * frand());
        for (int i = 0; i < V; i++) probs[i] = (float)(probs[i] / sum);
        if (trial % 7 == 0) probs[trial % V] = probs[(trial + 1) % V];   /* a tie */
        float top_p = trial % 5 == 0 ? 1.0f : 0.02f + 0.98f * 0.5f * (frand() + 1.0f);
        int top_k = trial % 3 == 0 ? 0 : 1 + (int)(0.5f * (frand() + 1.0f) * 400);
        int n = ssm_sample_filter(probs, V, top_k, top_p, got);
        int m = nucleus_ref(probs, V, top_k, top_p, want);
        cr_assert_eq(n, m, "trial %d (top_k %d, top_p %g): kept %d, want %d", trial, top_k, top_p, n, m);
        if (n < V) cr_expect_eq(memcmp(got, want, sizeof(int) * n), 0, "trial %d: kept set", trial);
    }
    /* p below 1/V: nothing reaches the threshold and all are sorted */
    for (int i = 0; i < V; i++) probs[i] = 1.0f / V;
    cr_expect_eq(ssm_sample_filter(probs, V, 0, 0.001f, got), 1);
    cr_expect_eq(got[0], 0);
}

Test(sample, top_p_draws_stay_in_the_nucleus)
{
    float logits[6] = {2.0f, 1.5f, 1.0f, 0.0f, -1.0f, -2.0f};
    int got[3000];
    ssm_sample_config sc;
    ssm_sample_config_default(&sc);
    sc.top_p = 0.5f;
    draws(sc, 1, logits, 6, 3000, got);
    float probs[6];
    int order[6], seen[6] = {0};
    ssm_sample_softmax(probs, logits, 6, 1.0f);
    int keep = ssm_sample_filter(probs, 6, 0, 0.5f, order);
    cr_assert_eq(keep, 2, "p(0) = %.3f, p(1) = %.3f", probs[0], probs[1]);
    for (int i = 0; i < 3000; i++) seen[got[i]]++;
    cr_expect_gt(seen[0], 0);
    cr_expect_gt(seen[1], 0);
    for (int i = 2; i < 6; i++) cr_expect_eq(seen[i], 0, "token %d outside the nucleus was drawn", i);
}

Test(sample, low_temperature_concentrates_high_spreads)
{
    float logits[4] = {1.0f, 0.5f, 0.0f, -0.5f}, p[4];
    ssm_sample_softmax(p, logits, 4, 0.05f);
    cr_expect_gt(p[0], 0.99f);
    ssm_sample_softmax(p, logits, 4, 100.0f);
    for (int i = 0; i < 4; i++) cr_expect(fabsf(p[i] - 0.25f) < 0.01f, "p[%d] = %g", i, p[i]);
}

Test(sample, bad_settings_are_refused)
{
    ssm_sampler s;
    ssm_sample_config sc;
    float bad_p[] = {0.0f, -0.1f, 1.5f, NAN};
    for (int i = 0; i < 4; i++) {
        ssm_sample_config_default(&sc);
        sc.top_p = bad_p[i];
        cr_expect_eq(ssm_sampler_build(&s, &sc, 10, 1), SSM_ERR_USAGE, "top_p %g", bad_p[i]);
    }
    ssm_sample_config_default(&sc);
    sc.temperature = -1.0f;
    cr_expect_eq(ssm_sampler_build(&s, &sc, 10, 1), SSM_ERR_USAGE);
    ssm_sample_config_default(&sc);
    sc.top_k = -2;
    cr_expect_eq(ssm_sampler_build(&s, &sc, 10, 1), SSM_ERR_USAGE);
    ssm_sample_config_default(&sc);
    cr_expect_eq(ssm_sampler_build(&s, &sc, 0, 1), SSM_ERR_USAGE);
    ssm_sampler_free(&s);
}
