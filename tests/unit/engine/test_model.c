/* test_model.c — unit tests of the whole model: the gradient of every
 * parameter tensor against central finite differences (language model,
 * untied head, continuous-input classifier, targets on a few positions only),
 * bitwise determinism (also under skewed thread shares), the tensor list, config validation, and that the loss
 * falls on a small task; the classifier's pool last and cls (finite
 * differences, the readout by hand, refused combinations). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dynamics.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/recency.h"
#include "engine/reorder.h"

typedef struct {
    ssm_model m;
    int *tokens, *targets; /* (B, L) or (B) */
    float *inputs;         /* (B, L, I) */
    ssm_batch batch;
} fixture;

static unsigned rng_state = 12345u;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) / 8388608.0 - 1.0);
}

static void fixture_build(fixture *f, ssm_config c, int B, int L)
{
    memset(f, 0, sizeof *f);
    cr_assert_eq(ssm_model_build(&f->m, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(&f->m, 7);
    /* move D, norms, biases and A_log off their init so every path is exercised */
    for (size_t i = 0; i < f->m.num_params; i++) f->m.params_memory[i] += 0.05f * frand();
    /* delta of order 0.3..1 (init gives 1e-3..0.1) so the delta and A paths
     * carry gradients well above float32 noise */
    size_t nb = (size_t)c.n_layer * c.expand * c.d_model;
    for (size_t i = 0; i < nb; i++) f->m.params.dt_proj_b[i] = -0.5f + 0.5f * frand();
    cr_assert_eq(ssm_model_alloc_grads(&f->m), SSM_OK);
    const ssm_config *mc = &f->m.cfg;
    f->tokens = calloc((size_t)B * L, sizeof(int));
    f->targets = calloc((size_t)B * L, sizeof(int));
    if (mc->input_kind == SSM_INPUT_CONTINUOUS) {
        f->inputs = malloc(sizeof(float) * B * L * mc->d_input);
        for (int i = 0; i < B * L * mc->d_input; i++) f->inputs[i] = frand();
        for (int b = 0; b < B; b++) f->targets[b] = b % mc->n_classes;
    } else {
        for (int i = 0; i < B * L; i++) f->tokens[i] = (int)((frand() + 1.0f) * 0.5f * mc->vocab_size);
        for (int i = 0; i < B * L; i++) f->targets[i] = (i % L == L - 1) ? -1 : f->tokens[i + 1];
    }
    f->batch = (ssm_batch){B, L, f->inputs ? NULL : f->tokens, f->inputs, f->targets};
}

static void fixture_free(fixture *f)
{
    ssm_model_free(&f->m);
    free(f->tokens);
    free(f->targets);
    free(f->inputs);
}

static double loss_at(fixture *f)
{
    cr_assert_eq(ssm_model_forward(&f->m, &f->batch), SSM_OK, "%s", ssm_last_error());
    return f->m.loss;
}

/* For each tensor: the directional derivative along a direction inside that
 * tensor, by central differences, against grad . direction.  The direction
 * is the backward gradient plus 30% noise: a strong signal, and a wrong
 * gradient (wrong scale, wrong entries) changes the two sides differently. */
/* Finite differences against backward for every tensor but those skip
 * names (skip may be NULL). */
static void check_gradients_but(fixture *f, double tol, int (*skip)(const char *name));

static void check_gradients(fixture *f, double tol) { check_gradients_but(f, tol, NULL); }

static void check_gradients_but(fixture *f, double tol, int (*skip)(const char *name))
{
    ssm_model_zero_grad(&f->m);
    loss_at(f);
    cr_assert_eq(ssm_model_backward(&f->m, 1.0f), SSM_OK);
    int n = ssm_model_tensors(&f->m, f->m.params_memory, NULL, 0);
    ssm_tensor *p = malloc(sizeof *p * n), *g = malloc(sizeof *g * n);
    ssm_model_tensors(&f->m, f->m.params_memory, p, n);
    ssm_model_tensors(&f->m, f->m.grads_memory, g, n);
    for (int t = 0; t < n; t++) {
        if (skip && skip(p[t].name)) continue;
        float *dir = malloc(sizeof(float) * p[t].numel), *save = malloc(sizeof(float) * p[t].numel);
        double analytic = 0.0, dnorm = 0.0, gnorm = 0.0;
        for (size_t i = 0; i < p[t].numel; i++) gnorm += (double)g[t].data[i] * g[t].data[i];
        double grms = sqrt(gnorm / p[t].numel) + 1e-12;
        for (size_t i = 0; i < p[t].numel; i++) {
            dir[i] = (float)(g[t].data[i] / grms + 0.3 * frand());
            analytic += (double)dir[i] * g[t].data[i];
            dnorm += (double)dir[i] * dir[i];
        }
        /* step so the loss moves by ~3e-4 (well above float32 noise), per-element
         * steps kept within [1e-4, 3e-2] */
        double eps = fmin(fmax(3e-4 / fmax(fabs(analytic), 1e-12), 1e-4), 3e-2) / sqrt(dnorm / p[t].numel);
        memcpy(save, p[t].data, sizeof(float) * p[t].numel);
        for (size_t i = 0; i < p[t].numel; i++) p[t].data[i] = save[i] + (float)(eps * dir[i]);
        double lp = loss_at(f);
        for (size_t i = 0; i < p[t].numel; i++) p[t].data[i] = save[i] - (float)(eps * dir[i]);
        double lm = loss_at(f);
        memcpy(p[t].data, save, sizeof(float) * p[t].numel);
        double numeric = (lp - lm) / (2 * eps);
        /* directional derivatives below 1e-4 are at float32 noise level: compare them absolutely */
        double err = fabs(numeric - analytic) / fmax(fabs(analytic), 1e-4);
        cr_expect(err < tol, "%s: finite difference %.6g, backward %.6g (rel err %.3g)",
                  p[t].name, numeric, analytic, err);
        free(dir);
        free(save);
    }
    free(p);
    free(g);
}

static ssm_config small_lm(void)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 12; c.n_layer = 2; c.d_state = 5; c.d_conv = 3; c.expand = 2;
    c.vocab_size = 19;
    return c;
}

Test(model, lm_gradients_match_finite_differences)
{
    fixture f;
    fixture_build(&f, small_lm(), 2, 7);
    check_gradients(&f, 5e-2);
    fixture_free(&f);
}

Test(model, untied_head_gradients_match_finite_differences)
{
    ssm_config c = small_lm();
    c.tie_embeddings = 0;
    c.n_layer = 1;
    fixture f;
    fixture_build(&f, c, 3, 5);
    cr_assert_not_null(f.m.params.lm_head);
    check_gradients(&f, 5e-2);
    fixture_free(&f);
}

Test(model, classifier_gradients_match_finite_differences)
{
    ssm_config c = small_lm();
    c.input_kind = SSM_INPUT_CONTINUOUS;
    c.d_input = 3;
    c.n_classes = 4;
    fixture f;
    fixture_build(&f, c, 3, 6);
    cr_assert_null(f.m.params.embedding);
    check_gradients(&f, 5e-2);
    fixture_free(&f);
}

Test(model, forward_and_backward_are_bitwise_deterministic)
{
    fixture f;
    fixture_build(&f, small_lm(), 2, 9);
    size_t n = f.m.num_params;
    float *g1 = malloc(sizeof(float) * n);
    ssm_model_zero_grad(&f.m);
    loss_at(&f);
    float l1 = f.m.loss;
    ssm_model_backward(&f.m, 1.0f);
    memcpy(g1, f.m.grads_memory, sizeof(float) * n);
    ssm_model_zero_grad(&f.m);
    loss_at(&f);
    ssm_model_backward(&f.m, 1.0f);
    cr_expect_eq(memcmp(&l1, &f.m.loss, sizeof l1), 0);
    cr_expect_eq(memcmp(g1, f.m.grads_memory, sizeof(float) * n), 0);
    free(g1);
    fixture_free(&f);
}

/* One forward (the loss) and backward of m on two threads with the
 * threads' speeds set to s0 and 2 - s0 first (the passes move them after
 * each balanced region); the loss and the gradients into loss, g. */
static void pass_with_speeds(ssm_model *m, const ssm_batch *b, double s0, float *loss, float *g)
{
    ssm_balance_reset(&m->balance);
    m->balance.speed[0] = s0;
    m->balance.speed[1] = 2.0 - s0;
    ssm_model_zero_grad(m);
    cr_assert_eq(ssm_model_forward(m, b), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_backward(m, 1.0f), SSM_OK, "%s", ssm_last_error());
    *loss = m->loss;
    memcpy(g, m->grads_memory, sizeof(float) * m->num_params);
}

/* The forward's row blocks follow the threads' measured speeds
 * (engine/balance.h) at multiples of sgemm's row height; skewed speeds
 * move rows between the threads but not a bit of the loss or the
 * gradients, Mamba-1 and Mamba-2 alike. */
Test(model, the_threads_shares_move_no_bits)
{
    cr_assert_gt(ssm_model_gemm_granule(), 0, "this sgemm has no row height that keeps the bits");
    for (int arch = SSM_ARCH_MAMBA1; arch <= SSM_ARCH_MAMBA2; arch++) {
        ssm_config c;
        ssm_config_default(&c);
        c.arch = arch;
        c.d_model = 32; c.n_layer = 2; c.d_state = 8; c.d_conv = 4; c.expand = 2;
        c.vocab_size = 37;
        if (arch == SSM_ARCH_MAMBA2) { c.head_dim = 8; c.n_groups = 1; c.chunk_size = 16; }
        ssm_model m;
        cr_assert_eq(ssm_model_build(&m, &c), SSM_OK, "%s", ssm_last_error());
        ssm_model_init(&m, 5);
        cr_assert_eq(ssm_model_alloc_grads(&m), SSM_OK);
        enum { B = 2, L = 61 };
        int tokens[B * L], targets[B * L];
        for (int i = 0; i < B * L; i++) tokens[i] = (i * 17 + 3) % c.vocab_size;
        for (int i = 0; i < B * L; i++) targets[i] = i % L == L - 1 ? -1 : tokens[i + 1];
        ssm_batch b = {B, L, tokens, NULL, targets};
        ssm_threads_set(2);
        size_t n = m.num_params;
        float *even = malloc(sizeof(float) * n), *skew = malloc(sizeof(float) * n), le, ls;
        pass_with_speeds(&m, &b, 1.0, &le, even);
        const double skews[] = {0.13, 1.87, 0.6};
        for (int k = 0; k < 3; k++) {
            pass_with_speeds(&m, &b, skews[k], &ls, skew);
            cr_expect_eq(memcmp(&le, &ls, sizeof le), 0, "arch %d, speeds %g: the loss moved", arch, skews[k]);
            cr_expect_eq(memcmp(even, skew, sizeof(float) * n), 0, "arch %d, speeds %g: the gradients moved",
                         arch, skews[k]);
        }
        free(even); free(skew);
        ssm_model_free(&m);
    }
}

Test(model, tensor_list_covers_the_block_once)
{
    fixture f;
    fixture_build(&f, small_lm(), 1, 3);
    int n = ssm_model_tensors(&f.m, f.m.params_memory, NULL, 0);
    ssm_tensor *t = malloc(sizeof *t * n);
    ssm_model_tensors(&f.m, f.m.params_memory, t, n);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += t[i].numel;
    cr_expect_eq(total, f.m.num_params);
    cr_expect_str_eq(t[0].name, "backbone.embedding.weight");
    cr_expect_eq(t[0].shape[0], 24, "vocabulary 19 pads to 24");
    cr_expect_str_eq(t[n - 1].name, "backbone.norm_f.weight");
    free(t);
    fixture_free(&f);
}

Test(model, bad_configs_are_refused)
{
    ssm_config c = small_lm();
    c.d_state = 0;
    cr_expect_eq(ssm_config_finalize(&c), SSM_ERR_CONFIG);
    cr_expect(strstr(ssm_last_error(), "d_state") != NULL, "%s", ssm_last_error());
    c = small_lm();
    c.input_kind = SSM_INPUT_CONTINUOUS;
    c.n_classes = 0;
    cr_expect_eq(ssm_config_finalize(&c), SSM_ERR_CONFIG);
}

Test(model, out_of_range_tokens_are_refused)
{
    fixture f;
    fixture_build(&f, small_lm(), 1, 4);
    f.tokens[2] = 1000;
    cr_expect_eq(ssm_model_forward(&f.m, &f.batch), SSM_ERR_DATA);
    cr_expect(strstr(ssm_last_error(), "1000") != NULL);
    fixture_free(&f);
}

/* MQAR-style targets: only a few positions scored (-1 elsewhere).  The loss
 * is the mean cross-entropy over those positions alone, its gradients match
 * finite differences, and with no target at all nothing is scored or
 * accumulated. */
Test(model, sparse_targets_score_only_their_positions)
{
    fixture f;
    fixture_build(&f, small_lm(), 2, 8);
    const int pos[3] = {3, 6, 13}, val[3] = {11, 17, 4};
    for (int i = 0; i < 16; i++) f.targets[i] = -1;
    for (int j = 0; j < 3; j++) f.targets[pos[j]] = val[j];
    loss_at(&f);
    cr_expect_eq(f.m.n_targets, 3);
    int V = f.m.cfg.padded_vocab;
    double want = 0.0;
    for (int j = 0; j < 3; j++) {
        const float *row = f.m.acts.logits + (size_t)pos[j] * V;   /* (V) */
        double mx = row[0], s = 0.0;
        for (int v = 1; v < V; v++) mx = fmax(mx, row[v]);
        for (int v = 0; v < V; v++) s += exp(row[v] - mx);
        want += (log(s) + mx - row[val[j]]) / 3.0;
    }
    cr_expect(fabs(f.m.loss - want) < 1e-5 * fmax(1.0, want), "loss %g, want %g", f.m.loss, want);
    check_gradients(&f, 5e-2);
    for (int i = 0; i < 16; i++) f.targets[i] = -1;
    ssm_model_zero_grad(&f.m);
    loss_at(&f);
    cr_expect_eq(f.m.n_targets, 0);
    cr_expect_eq(f.m.loss, 0.0f);
    cr_expect_eq(ssm_model_backward(&f.m, 1.0f), SSM_OK);
    size_t nonzero = 0;
    for (size_t i = 0; i < f.m.num_params; i++) nonzero += f.m.grads_memory[i] != 0.0f;
    cr_expect_eq(nonzero, 0, "%zu gradients accumulated with no targets", nonzero);
    fixture_free(&f);
}

Test(model, loss_falls_on_a_repeating_pattern)
{
    ssm_config c = small_lm();
    c.d_model = 16;
    fixture f;
    fixture_build(&f, c, 2, 16);
    for (int i = 0; i < 32; i++) f.tokens[i] = "the cat sat on a"[i % 16] % 19;
    for (int i = 0; i < 32; i++) f.targets[i] = (i % 16 == 15) ? -1 : f.tokens[i + 1];
    ssm_adamw opt;
    ssm_adamw_config oc;
    ssm_adamw_config_default(&oc);
    oc.lr = 1e-2f; oc.warmup = 5; oc.total_steps = 80;
    cr_assert_eq(ssm_adamw_build(&opt, &f.m, &oc), SSM_OK);
    float first = 0.0f;
    for (int s = 0; s < 80; s++) {
        ssm_model_zero_grad(&f.m);
        loss_at(&f);
        if (s == 0) first = f.m.loss;
        ssm_model_backward(&f.m, 1.0f);
        ssm_adamw_update(&opt, &f.m);
    }
    loss_at(&f);
    cr_expect(f.m.loss < 0.3f * first, "loss went from %g to %g", first, f.m.loss);
    ssm_adamw_free(&opt);
    fixture_free(&f);
}

Test(optim, schedule_warms_up_then_decays_to_min_lr)
{
    ssm_adamw_config c;
    ssm_adamw_config_default(&c);
    c.lr = 1.0f; c.min_lr = 0.1f; c.warmup = 10; c.total_steps = 110;
    cr_expect_float_eq(ssm_adamw_lr(&c, 0), 0.1f, 1e-6);
    cr_expect_float_eq(ssm_adamw_lr(&c, 9), 1.0f, 1e-6);
    cr_expect_float_eq(ssm_adamw_lr(&c, 10), 1.0f, 1e-6);
    cr_expect_float_eq(ssm_adamw_lr(&c, 60), 0.55f, 1e-5);
    cr_expect_float_eq(ssm_adamw_lr(&c, 110), 0.1f, 1e-6);
}

Test(model, scenario_gradients_match_finite_differences)
{
    int scen[] = {SSM_SCENARIO_POSITIVE, SSM_SCENARIO_NEGATIVE, SSM_SCENARIO_MIXED};
    for (int i = 0; i < 3; i++) {
        ssm_config c = small_lm();
        c.scenario = scen[i];
        fixture f;
        fixture_build(&f, c, 2, 6);
        cr_assert_not_null(f.m.params.scen_P);
        check_gradients(&f, 5e-2);
        fixture_free(&f);
    }
}

Test(model, scenario_rows_are_derived_from_P_and_q)
{
    ssm_config c = small_lm();
    c.scenario = SSM_SCENARIO_NEGATIVE;
    fixture f;
    fixture_build(&f, c, 1, 4);
    loss_at(&f);
    const ssm_config *mc = &f.m.cfg;
    int E = mc->d_inner, N = mc->d_state, R = mc->dt_rank;
    const float *xp = f.m.params.x_proj, *P = f.m.params.scen_P, *q = f.m.params.scen_q;
    for (int n = 0; n < N; n++)
        for (int e = 0; e < E; e++) {
            float u = e > n ? P[n * E + e] : e == n ? 1.0f : 0.0f;
            float sigma = -(logf(1.0f + expf(q[n])) + 0.7f);
            cr_expect_float_eq(xp[(R + N + n) * E + e], u, 1e-6, "S_C[%d][%d]", n, e);
            cr_expect_float_eq(xp[(R + n) * E + e], sigma * u, 1e-5, "S_B[%d][%d]", n, e);
        }
    fixture_free(&f);
}

Test(model, polarized_gradients_match_finite_differences)
{
    int pol[] = {SSM_POLARIZE_ZERO, SSM_POLARIZE_ONE, SSM_POLARIZE_BOTH};
    for (int i = 0; i < 3; i++) {
        ssm_config c = small_lm();
        c.polarize = pol[i];
        c.scenario = i == 2 ? SSM_SCENARIO_MIXED : SSM_SCENARIO_DEFAULT;
        fixture f;
        fixture_build(&f, c, 2, 6);
        cr_expect_eq(f.m.cfg.state_dim, c.d_state + (i == 2 ? 2 : 1));
        check_gradients(&f, 5e-2);
        fixture_free(&f);
    }
}

static ssm_config small_classifier(int reorder)
{
    ssm_config c = small_lm();
    c.input_kind = SSM_INPUT_CONTINUOUS;
    c.d_input = 3;
    c.n_classes = 4;
    c.reorder = reorder;
    return c;
}

Test(model, soft_reorder_gradients_match_finite_differences)
{
    fixture f;
    fixture_build(&f, small_classifier(SSM_REORDER_SOFT), 3, 6);
    /* spread the scores so SoftSort is far from uniform */
    for (int e = 0; e < f.m.cfg.d_inner; e++) f.m.params.imp_k[e] *= 8.0f;
    check_gradients(&f, 5e-2);
    fixture_free(&f);
}

/* Tensors upstream of a layer-0 sort: finite differences see the hard
 * sort's piecewise-constant loss, backward the straight-through gradient. */
static int upstream_of_layer0_sort(const char *name)
{
    return strstr(name, "layers.0.") || strstr(name, "input_proj");
}

Test(model, hard_reorder_sorts_tokens_and_passes_a_straight_through_gradient_to_k)
{
    fixture f;
    fixture_build(&f, small_classifier(SSM_REORDER_HARD), 2, 7);
    ssm_model_zero_grad(&f.m);
    loss_at(&f);
    cr_assert_eq(ssm_model_backward(&f.m, 1.0f), SSM_OK);
    int L = 7;
    for (int b = 0; b < 2; b++) {
        const float *s = f.m.acts.imp_s + b * L, *P = f.m.acts.perm + b * L * L;
        float prev = -INFINITY;
        for (int i = 0; i < L; i++) {
            int hot = -1, ones = 0;
            for (int j = 0; j < L; j++)
                if (P[i * L + j] == 1.0f) { hot = j; ones++; }
            cr_assert_eq(ones, 1, "row %d of P-hat is one-hot", i);
            cr_expect(s[hot] >= prev, "new position %d holds a score below the previous one", i);
            prev = s[hot];
        }
    }
    float kmax = 0.0f;
    for (int e = 0; e < f.m.cfg.d_inner; e++) kmax = fmaxf(kmax, fabsf(f.m.grads.imp_k[e]));
    cr_expect_gt(kmax, 1e-6f, "k learns through the straight-through sort");
    check_gradients_but(&f, 5e-2, upstream_of_layer0_sort);
    fixture_free(&f);
}

/* Only u is permuted: z and the residual stream keep input order, so the
 * layer's output is its input plus the mixer output, position by position. */
Test(model, reordering_permutes_the_ssm_input_only)
{
    fixture f;
    fixture_build(&f, small_classifier(SSM_REORDER_SOFT), 2, 6);
    loss_at(&f);
    size_t n = (size_t)2 * 6 * f.m.cfg.d_model;
    const float *x0 = f.m.acts.resid, *x1 = x0 + n, *mix = f.m.acts.mix;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(x1[i], x0[i] + mix[i], "x_1 = x_0 + mix at %zu", i);
    fixture_free(&f);
}

/* reorder_layers picks the layers, each with its own k; tau changes SoftSort. */
Test(model, reorder_layers_and_tau)
{
    ssm_config c = small_classifier(SSM_REORDER_SOFT);
    c.n_layer = 3;
    cr_assert_eq(ssm_reorder_layers_parse("0,1", &c.reorder_layers), 0);
    cr_assert_eq(ssm_config_finalize(&c), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(c.n_reorder, 2);
    cr_expect_eq(ssm_reorder_slot(&c, 0), 0);
    cr_expect_eq(ssm_reorder_slot(&c, 1), 1);
    cr_expect_eq(ssm_reorder_slot(&c, 2), -1);
    fixture f;
    fixture_build(&f, c, 2, 5);
    /* spread the scores so SoftSort is far from uniform and from its kinks */
    for (int e = 0; e < 2 * f.m.cfg.d_inner; e++) f.m.params.imp_k[e] *= 8.0f;
    size_t wdt = (size_t)f.m.cfg.d_inner * f.m.cfg.dt_rank;   /* and W_dt delta against b_dt */
    for (size_t i = 0; i < 3 * wdt; i++) f.m.params.dt_proj_w[i] *= 4.0f;
    ssm_tensor t[64];
    int n = ssm_model_tensors(&f.m, f.m.params_memory, t, 64), ks = 0;
    for (int i = 0; i < n; i++)
        if (strstr(t[i].name, "importance_k"))
            cr_expect(strstr(t[i].name, ks++ ? "layers.1." : "layers.0.") != NULL, "%s", t[i].name);
    cr_expect_eq(ks, 2);
    check_gradients(&f, 5e-2);
    fixture_free(&f);

    char buf[64];
    ssm_reorder_layers_format(5, buf, sizeof buf);
    cr_expect_str_eq(buf, "0,2");
    uint64_t m;
    cr_expect_eq(ssm_reorder_layers_parse("", &m), -1);
    cr_expect_eq(ssm_reorder_layers_parse("1,", &m), -1);
    cr_expect_eq(ssm_reorder_layers_parse("64", &m), -1);
    cr_expect_eq(ssm_reorder_layers_parse("-1", &m), -1);
    c.reorder_layers = 1ULL << 3;
    cr_expect_eq(ssm_config_finalize(&c), SSM_ERR_CONFIG);
    cr_expect(strstr(ssm_last_error(), "layer 3") != NULL, "%s", ssm_last_error());
    c.reorder_layers = 1;
    c.reorder_tau = 0.0f;
    cr_expect_eq(ssm_config_finalize(&c), SSM_ERR_CONFIG);
    cr_expect(strstr(ssm_last_error(), "reorder_tau") != NULL, "%s", ssm_last_error());
}

/* A smaller tau sharpens SoftSort: P-hat moves toward the hard sort. */
Test(model, softsort_sharpens_as_tau_falls)
{
    float s[4] = {0.3f, -1.0f, 2.0f, 0.1f}, soft[16], sharp[16], hard[16];
    ssm_reorder_build(SSM_REORDER_SOFT, 1, 4, s, 1.0f, soft);
    ssm_reorder_build(SSM_REORDER_SOFT, 1, 4, s, 0.05f, sharp);
    ssm_reorder_build(SSM_REORDER_HARD, 1, 4, s, 1.0f, hard);
    double dsoft = 0.0, dsharp = 0.0;
    for (int i = 0; i < 16; i++) {
        dsoft += fabs(soft[i] - hard[i]);
        dsharp += fabs(sharp[i] - hard[i]);
    }
    cr_expect_lt(dsharp, 0.1 * dsoft, "tau 0.05: %g, tau 1: %g", dsharp, dsoft);
}

Test(model, reorder_is_refused_for_language_models)
{
    ssm_config c = small_lm();
    c.reorder = SSM_REORDER_SOFT;
    cr_expect_eq(ssm_config_finalize(&c), SSM_ERR_CONFIG);
    cr_expect(strstr(ssm_last_error(), "language model") != NULL, "%s", ssm_last_error());
}

/* x_n . v for the last forward (v is (B, L, D)) */
static double stream_dot(const ssm_model *m, const float *v)
{
    size_t n = (size_t)m->act_B * m->act_L * m->cfg.d_model;
    const float *xn = m->acts.resid + (size_t)m->cfg.n_layer * n;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)xn[i] * v[i];
    return s;
}

Test(model, input_and_stream_gradients_match_finite_differences)
{
    fixture f;
    fixture_build(&f, small_classifier(SSM_REORDER_OFF), 2, 5);
    const ssm_config *c = &f.m.cfg;
    size_t ni = (size_t)2 * 5 * c->d_input, nd = (size_t)2 * 5 * c->d_model;
    float *dir = malloc(sizeof(float) * ni), *save = malloc(sizeof(float) * ni);
    float *din = malloc(sizeof(float) * ni), *v = malloc(sizeof(float) * nd), *dx0 = malloc(sizeof(float) * nd);
    for (size_t i = 0; i < ni; i++) dir[i] = frand();
    for (size_t i = 0; i < nd; i++) v[i] = frand();
    memcpy(save, f.inputs, sizeof(float) * ni);
    /* the loss with respect to the inputs */
    ssm_model_zero_grad(&f.m);
    loss_at(&f);
    cr_assert_eq(ssm_model_backward(&f.m, 1.0f), SSM_OK);
    cr_assert_eq(ssm_model_input_grad(&f.m, din), SSM_OK);
    double analytic = 0.0, eps = 1e-2;
    for (size_t i = 0; i < ni; i++) analytic += (double)din[i] * dir[i];
    for (size_t i = 0; i < ni; i++) f.inputs[i] = save[i] + (float)(eps * dir[i]);
    double lp = loss_at(&f);
    for (size_t i = 0; i < ni; i++) f.inputs[i] = save[i] - (float)(eps * dir[i]);
    double lm = loss_at(&f);
    memcpy(f.inputs, save, sizeof(float) * ni);
    double numeric = (lp - lm) / (2 * eps);
    cr_expect(fabs(numeric - analytic) < 3e-2 * fabs(analytic) + 1e-4,
              "d loss / d inputs: finite difference %g, backward %g", numeric, analytic);
    /* x_n . v with respect to x_0 = inputs W_in^T + b */
    loss_at(&f);
    cr_assert_eq(ssm_model_backward_stream(&f.m, v, dx0), SSM_OK);
    analytic = 0.0;
    for (size_t i = 0; i < 10; i++)
        for (int k = 0; k < c->d_input; k++) {
            double g = 0.0;
            for (int d = 0; d < c->d_model; d++)
                g += (double)dx0[i * c->d_model + d] * f.m.params.input_w[d * c->d_input + k];
            analytic += g * dir[i * c->d_input + k];
        }
    for (size_t i = 0; i < ni; i++) f.inputs[i] = save[i] + (float)(eps * dir[i]);
    loss_at(&f);
    lp = stream_dot(&f.m, v);
    for (size_t i = 0; i < ni; i++) f.inputs[i] = save[i] - (float)(eps * dir[i]);
    loss_at(&f);
    lm = stream_dot(&f.m, v);
    numeric = (lp - lm) / (2 * eps);
    cr_expect(fabs(numeric - analytic) < 3e-2 * fabs(analytic) + 1e-4,
              "d (x_n . v) / d inputs: finite difference %g, backward %g", numeric, analytic);
    free(dir); free(save); free(din); free(v); free(dx0);
    fixture_free(&f);
}

/* The one A builder: channel order [one-polarized, learned, zero-polarized]
 * with A = 0, -exp(A_log) and -100, written out by hand here. */
Test(model, layer_A_orders_polarized_channels_around_the_learned_ones)
{
    ssm_config c = small_lm();
    c.polarize = SSM_POLARIZE_BOTH;
    fixture f;
    fixture_build(&f, c, 1, 2);
    const ssm_config *mc = &f.m.cfg;
    int E = mc->d_inner, N = mc->d_state, Ns = mc->state_dim;
    cr_assert_eq(Ns, N + 2);
    const float *A_log = f.m.params.A_log + (size_t)E * N;   /* layer 1 */
    float *A = malloc(sizeof(float) * E * Ns);
    ssm_model_layer_A(mc, A_log, A);
    for (int e = 0; e < E; e++) {
        cr_expect_eq(A[e * Ns], 0.0f, "one-polarized channel of e = %d", e);
        for (int n = 0; n < N; n++)
            cr_expect_eq(A[e * Ns + 1 + n], -expf(A_log[e * N + n]), "A[%d][%d]", e, n);
        cr_expect_eq(A[e * Ns + Ns - 1], -100.0f, "zero-polarized channel of e = %d", e);
    }
    free(A);
    fixture_free(&f);
}

/* The classifier's pool (ssmlab-math(7) MODEL): pool last and pool cls
 * against finite differences (the cls token's gradient included), the
 * last-position readout by hand, and the refused combinations. */
static ssm_config pooled_classifier(int pool)
{
    ssm_config c = small_classifier(SSM_REORDER_OFF);
    c.pool = pool;
    return c;
}

Test(model, pool_last_and_cls_gradients_match_finite_differences)
{
    for (int pool = SSM_POOL_LAST; pool <= SSM_POOL_CLS; pool++) {
        fixture f;
        fixture_build(&f, pooled_classifier(pool), 3, 5);
        cr_expect_eq(f.m.params.cls_tok != NULL, pool == SSM_POOL_CLS);
        check_gradients(&f, 5e-2);
        cr_expect_eq(f.m.act_L, 5 + (pool == SSM_POOL_CLS), "cls runs on L+1 positions");
        if (pool == SSM_POOL_CLS) {
            double g = 0.0;
            for (int d = 0; d < f.m.cfg.d_model; d++) g += fabs(f.m.grads.cls_tok[d]);
            cr_expect(g > 1e-6, "the cls token gets a gradient (sum |dcls| = %g)", g);
        }
        fixture_free(&f);
    }
}

Test(model, pool_last_and_cls_read_the_last_position)
{
    for (int pool = SSM_POOL_MEAN; pool <= SSM_POOL_CLS; pool++) {
        fixture f;
        fixture_build(&f, pooled_classifier(pool), 2, 4);
        loss_at(&f);
        const ssm_model *m = &f.m;
        int D = m->cfg.d_model, C = m->cfg.n_classes, L = m->act_L;
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < C; k++) {
                double want = m->params.cls_b[k];
                for (int d = 0; d < D; d++) {
                    double h = 0.0;
                    for (int t = pool == SSM_POOL_MEAN ? 0 : L - 1; t < L; t++)
                        h += m->acts.xf[((size_t)b * L + t) * D + d];
                    want += m->params.cls_w[k * D + d] * h / (pool == SSM_POOL_MEAN ? L : 1);
                }
                cr_expect(fabs(m->acts.logits[b * C + k] - want) < 1e-4 * (1 + fabs(want)),
                          "pool %s, logit (%d, %d): %g, by hand %g", ssm_pool_name(pool), b, k,
                          m->acts.logits[b * C + k], want);
            }
        if (pool == SSM_POOL_CLS)   /* x_0 at position L is the cls token */
            for (int b = 0; b < 2; b++)
                cr_expect_eq(memcmp(m->acts.resid + ((size_t)b * L + L - 1) * D, m->params.cls_tok,
                                    sizeof(float) * D), 0);
        fixture_free(&f);
    }
}

Test(model, pool_is_refused_for_language_models_and_cls_with_reordering)
{
    ssm_config c = small_lm();
    c.pool = SSM_POOL_LAST;
    cr_expect_eq(ssm_config_finalize(&c), SSM_ERR_CONFIG);
    cr_expect(strstr(ssm_last_error(), "language model") != NULL, "%s", ssm_last_error());
    c = pooled_classifier(SSM_POOL_CLS);
    c.reorder = SSM_REORDER_HARD;
    cr_expect_eq(ssm_config_finalize(&c), SSM_ERR_CONFIG);
    cr_expect(strstr(ssm_last_error(), "cls token must stay last") != NULL, "%s", ssm_last_error());
    c = pooled_classifier(SSM_POOL_LAST);
    c.reorder = SSM_REORDER_SOFT;
    cr_expect_eq(ssm_config_finalize(&c), SSM_OK, "pool last combines with reordering");
    cr_expect_eq(ssm_pool_parse("cls"), SSM_POOL_CLS);
    cr_expect_eq(ssm_pool_parse("first"), -1);
}

/* A cls model is a pool-last model given one more input whose projection
 * W_inp v + b_inp is the cls token: the same logits and loss, the same
 * gradients (the last model's dW_inp, db_inp gain dcls v^T, dcls), the
 * same input gradient on the L inputs, and measurements over the L inputs
 * that are the last model's first L rows. */
static double max_rel_diff(const float *a, const float *b, size_t n, int stride_a, int stride_b, int w)
{
    double diff = 0.0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double x = a[i / w * stride_a + i % w], y = b[i / w * stride_b + i % w];
        diff = fmax(diff, fabs(x - y));
        scale = fmax(scale, fabs(y));
    }
    return diff / scale;
}

Test(model, pool_cls_is_pool_last_on_an_input_projected_to_the_token)
{
    int B = 2, L = 5;
    fixture f;
    fixture_build(&f, pooled_classifier(SSM_POOL_CLS), B, L);
    ssm_config cl = pooled_classifier(SSM_POOL_LAST);
    ssm_model g;
    cr_assert_eq(ssm_model_build(&g, &cl), SSM_OK);
    cr_assert_eq(ssm_model_alloc_grads(&g), SSM_OK);
    int D = g.cfg.d_model, I = g.cfg.d_input, C = g.cfg.n_classes;
    cr_assert_eq(g.num_params + D, f.m.num_params, "the cls token is the block's last tensor");
    memcpy(g.params_memory, f.m.params_memory, sizeof(float) * g.num_params);
    float v[3], *x = malloc(sizeof(float) * B * (L + 1) * I);   /* (B, L+1, I) */
    for (int k = 0; k < I; k++) v[k] = frand();
    for (int d = 0; d < D; d++) {
        double y = g.params.input_b[d];
        for (int k = 0; k < I; k++) y += (double)g.params.input_w[d * I + k] * v[k];
        f.m.params.cls_tok[d] = (float)y;
    }
    for (int b = 0; b < B; b++) {
        memcpy(x + (size_t)b * (L + 1) * I, f.inputs + (size_t)b * L * I, sizeof(float) * L * I);
        memcpy(x + ((size_t)b * (L + 1) + L) * I, v, sizeof(float) * I);
    }
    ssm_batch gb = {B, L + 1, NULL, x, f.targets};
    ssm_model_zero_grad(&f.m);
    ssm_model_zero_grad(&g);
    loss_at(&f);
    cr_assert_eq(ssm_model_forward(&g, &gb), SSM_OK);
    cr_expect(max_rel_diff(f.m.acts.logits, g.acts.logits, (size_t)B * C, C, C, C) < 1e-5, "logits");
    cr_expect(fabs(f.m.loss - g.loss) < 1e-5 * fabs(g.loss), "loss %g vs %g", f.m.loss, g.loss);
    /* the measurements: norms, importance and layer-1 attention of the inputs */
    ssm_norms nf, ng;
    cr_assert_eq(ssm_dynamics_norms(&f.m, &nf), SSM_OK);
    cr_assert_eq(ssm_dynamics_norms(&g, &ng), SSM_OK);
    cr_expect_eq(nf.L, L);
    for (int l = 0; l <= g.cfg.n_layer; l++)
        cr_expect(max_rel_diff(nf.norms + (size_t)l * B * L, ng.norms + (size_t)l * B * (L + 1),
                               (size_t)B * L, L, L + 1, L) < 1e-5, "norms of layer %d", l);
    cr_expect(max_rel_diff(f.m.acts.imp_s, g.acts.imp_s, (size_t)B * L, L, L + 1, L) < 1e-5, "importance");
    ssm_norms_free(&nf);
    ssm_norms_free(&ng);
    float *af = malloc(sizeof(float) * L * L), *ag = malloc(sizeof(float) * (L + 1) * (L + 1));
    cr_assert_eq(ssm_recency_attention(&f.m, 1, 1, SSM_ATTN_MEAN, NULL, af), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_recency_attention(&g, 1, 1, SSM_ATTN_MEAN, NULL, ag), SSM_OK);
    cr_expect(max_rel_diff(af, ag, (size_t)L * L, L, L + 1, L) < 1e-5, "hidden attention");
    /* the gradients */
    cr_assert_eq(ssm_model_backward(&f.m, 1.0f), SSM_OK);
    cr_assert_eq(ssm_model_backward(&g, 1.0f), SSM_OK);
    /* the attacks' input gradient: the L inputs' rows, not the cls token's */
    float *dxf = malloc(sizeof(float) * B * L * I), *dxg = malloc(sizeof(float) * B * (L + 1) * I);
    cr_assert_eq(ssm_model_input_grad(&f.m, dxf), SSM_OK);
    cr_assert_eq(ssm_model_input_grad(&g, dxg), SSM_OK);
    cr_expect(max_rel_diff(dxf, dxg, (size_t)B * L * I, L * I, (L + 1) * I, L * I) < 1e-4, "input gradient");
    free(dxf);
    free(dxg);
    for (int d = 0; d < D; d++) {
        f.m.grads.input_b[d] += f.m.grads.cls_tok[d];
        for (int k = 0; k < I; k++) f.m.grads.input_w[d * I + k] += f.m.grads.cls_tok[d] * v[k];
    }
    int n = ssm_model_tensors(&g, g.grads_memory, NULL, 0);
    ssm_tensor *tf = malloc(sizeof *tf * (n + 1)), *tg = malloc(sizeof *tg * n);
    cr_assert_eq(ssm_model_tensors(&f.m, f.m.grads_memory, tf, n + 1), n + 1);
    ssm_model_tensors(&g, g.grads_memory, tg, n);
    for (int t = 0, u = 0; t < n; t++, u++) {
        if (!strcmp(tf[u].name, "backbone.cls_token")) u++;
        cr_assert_str_eq(tf[u].name, tg[t].name);
        cr_expect(max_rel_diff(tf[u].data, tg[t].data, tg[t].numel, 1, 1, 1) < 1e-4,
                  "gradient of %s", tg[t].name);
    }
    free(tf); free(tg); free(af); free(ag); free(x);
    ssm_model_free(&g);
    fixture_free(&f);
}

/* ssm_model_forward_last without gradients runs lean (two residual slots,
 * one mixer output, (B, V) logits, the last layer's gate and out_proj on
 * each sequence's last row only): its logits equal the full forward's at
 * each sequence's last position, and a full forward after it (which lays
 * the activations out again) gives the same numbers as one before it. */
Test(model, lean_last_position_forward_matches_the_full_forward)
{
    ssm_config c = small_lm();
    c.n_layer = 3;   /* odd: the lean pass ends in the second residual slot */
    ssm_model m;
    cr_assert_eq(ssm_config_finalize(&c), SSM_OK);
    cr_assert_eq(ssm_model_build(&m, &c), SSM_OK);
    ssm_model_init(&m, 3);
    int B = 2, L = 9, V = m.cfg.padded_vocab, tokens[18];
    for (int i = 0; i < B * L; i++) tokens[i] = (i * 7 + 3) % m.cfg.vocab_size;
    ssm_batch b = {B, L, tokens, NULL, NULL};
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    float *full = malloc(sizeof(float) * B * L * V), *last = malloc(sizeof(float) * B * V);
    memcpy(full, m.acts.logits, sizeof(float) * B * L * V);
    cr_assert_eq(ssm_model_forward_last(&m, &b), SSM_OK);
    cr_assert(m.act_lean, "a last-position forward without gradients is lean");
    memcpy(last, m.acts.logits, sizeof(float) * B * V);
    for (int s = 0; s < B; s++)
        cr_assert_lt(max_rel_diff(last + (size_t)s * V, full + ((size_t)s * L + L - 1) * V, V, 1, 1, V), 1e-5,
                     "sequence %d", s);
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    cr_assert(!m.act_lean);
    cr_assert_eq(memcmp(full, m.acts.logits, sizeof(float) * B * L * V), 0,
                 "a full forward after a lean one is unchanged");
    free(full);
    free(last);
    ssm_model_free(&m);
}
