/* test_mamba2.c — Criterion tests of Mamba-2 models as ssm_model
 * (engine/mamba2.c): checkpoints in the state-spaces layout round-trip
 * bitwise (with the optimizer state), a missing or misshapen tensor is
 * refused naming the file and the tensor, forward and backward give the
 * same bits twice on a thread count, AdamW steps lower the loss, the
 * probes (engine/probe.h, per head) see the states and hold their
 * ablations and pins in the backward, the per-head hidden attention is the
 * SSD's kernel, the spectrum is per (layer, group) from that group's
 * in_proj rows, polarized heads decay by exactly 1 and 0, get no A
 * gradient and survive a checkpoint, and the importance is layer 0's mean
 * dt over heads. */
#include <criterion/criterion.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/checkpoint.h"
#include "engine/dynamics.h"
#include "engine/mamba2.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/recency.h"
#include "engine/safetensors.h"
#include "engine/ssd.h"
#include "tests/tmpdir.h"

TestSuite(mamba2, .init = tmpdir_make, .fini = tmpdir_remove);

static ssm_config tiny_mamba2(int groups, int tied)
{
    ssm_config c;
    ssm_config_default(&c);
    c.arch = SSM_ARCH_MAMBA2;
    c.d_model = 8; c.n_layer = 2; c.d_state = 4; c.d_conv = 4; c.expand = 2;
    c.head_dim = 4; c.n_groups = groups; c.chunk_size = 3;
    c.vocab_size = 13; c.tie_embeddings = tied;
    return c;
}

static void build(ssm_model *m, ssm_config c, uint64_t seed)
{
    cr_assert_eq(ssm_model_build(m, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(m, seed);
}

static const int TOKENS[2 * 7] = {1, 5, 2, 9, 12, 0, 3, 7, 7, 4, 11, 2, 8, 6};

static float train_step(ssm_model *m, ssm_adamw *opt)
{
    ssm_batch b = {2, 7, TOKENS, NULL, TOKENS};
    cr_assert_eq(ssm_model_forward(m, &b), SSM_OK, "%s", ssm_last_error());
    float loss = m->loss;
    ssm_model_zero_grad(m);
    cr_assert_eq(ssm_model_backward(m, 1.0f), SSM_OK, "%s", ssm_last_error());
    if (opt) ssm_adamw_update(opt, m);
    return loss;
}

Test(mamba2, checkpoint_round_trip_is_bitwise)
{
    for (int tied = 0; tied < 2; tied++) {
        ssm_model m, back;
        ssm_adamw opt, opt_back;
        ssm_adamw_config oc;
        ssm_adamw_config_default(&oc);
        build(&m, tiny_mamba2(2, tied), 3);
        cr_assert_eq(ssm_model_alloc_grads(&m), SSM_OK);
        cr_assert_eq(ssm_adamw_build(&opt, &m, &oc), SSM_OK);
        train_step(&m, &opt);
        cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, &opt, NULL), SSM_OK, "%s", ssm_last_error());
        cr_assert_eq(ssm_checkpoint_load(tmpdir, &back, NULL), SSM_OK, "%s", ssm_last_error());
        cr_expect_eq(back.cfg.arch, SSM_ARCH_MAMBA2);
        cr_expect_eq(back.cfg.n_groups, 2);
        cr_expect_eq(back.cfg.head_dim, 4);
        cr_expect_eq(back.cfg.chunk_size, 3);
        cr_expect_eq(back.cfg.tie_embeddings, tied);
        cr_assert_eq(back.num_params, m.num_params);
        cr_expect(memcmp(back.params_memory, m.params_memory, sizeof(float) * m.num_params) == 0,
                  "the weights changed on the way");
        cr_assert_eq(ssm_adamw_build(&opt_back, &back, &oc), SSM_OK);
        cr_assert_eq(ssm_checkpoint_load_optimizer(tmpdir, &back, &opt_back), SSM_OK, "%s", ssm_last_error());
        cr_expect(memcmp(opt_back.v, opt.v, sizeof(float) * m.num_params) == 0, "the moments changed");
        ssm_adamw_free(&opt); ssm_adamw_free(&opt_back);
        ssm_model_free(&m); ssm_model_free(&back);
    }
}

/* Rewrite tmpdir/model.safetensors with tensor `drop` left out, or with
 * tensor `narrow` one row short */
static void rewrite_weights(const ssm_model *m, const char *drop, const char *narrow)
{
    int n = ssm_model_tensors(m, m->params_memory, NULL, 0), k = 0;
    ssm_tensor *t = calloc((size_t)n, sizeof *t), *keep = calloc((size_t)n, sizeof *keep);
    ssm_model_tensors(m, m->params_memory, t, n);
    for (int i = 0; i < n; i++) {
        if (drop && !strcmp(t[i].name, drop)) continue;
        keep[k] = t[i];
        if (narrow && !strcmp(t[i].name, narrow)) {
            keep[k].shape[0]--;
            keep[k].numel = keep[k].numel / t[i].shape[0] * keep[k].shape[0];
        }
        k++;
    }
    ssm_st_meta meta[1] = {{"format", "pt"}};
    cr_assert_eq(ssm_safetensors_write(tmpdir_path("model.safetensors"), keep, k, meta, 1), SSM_OK,
                 "%s", ssm_last_error());
    free(t);
    free(keep);
}

static void expect_load_fails(const char *what)
{
    ssm_model back;
    ssm_status st = ssm_checkpoint_load(tmpdir, &back, NULL);
    cr_expect_eq(st, SSM_ERR_DATA, "status %d: %s", st, ssm_last_error());
    cr_expect_not_null(strstr(ssm_last_error(), "model.safetensors"), "no file in \"%s\"", ssm_last_error());
    cr_expect_not_null(strstr(ssm_last_error(), what), "\"%s\" lacks \"%s\"", ssm_last_error(), what);
}

Test(mamba2, missing_or_misshapen_tensors_are_refused)
{
    ssm_model m;
    build(&m, tiny_mamba2(1, 1), 4);
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    rewrite_weights(&m, "backbone.layers.1.mixer.dt_bias", NULL);
    expect_load_fails("missing tensor 'backbone.layers.1.mixer.dt_bias'");
    rewrite_weights(&m, "backbone.layers.0.mixer.norm.weight", NULL);
    expect_load_fails("missing tensor 'backbone.layers.0.mixer.norm.weight'");
    rewrite_weights(&m, NULL, "backbone.layers.0.mixer.in_proj.weight");
    expect_load_fails("tensor 'backbone.layers.0.mixer.in_proj.weight' has shape (43, 8), expected (44, 8)");
    rewrite_weights(&m, NULL, "backbone.layers.1.mixer.conv1d.weight");
    expect_load_fails("tensor 'backbone.layers.1.mixer.conv1d.weight' has shape (23, 1, 4), expected (24, 1, 4)");
    ssm_model_free(&m);
}

Test(mamba2, forward_and_backward_are_bitwise_repeatable)
{
    int saved = omp_get_max_threads();
    omp_set_num_threads(2);
    ssm_model m[2];
    for (int k = 0; k < 2; k++) {
        build(&m[k], tiny_mamba2(2, 0), 5);
        cr_assert_eq(ssm_model_alloc_grads(&m[k]), SSM_OK);
        train_step(&m[k], NULL);
    }
    size_t nlogit = (size_t)2 * 7 * m[0].cfg.padded_vocab;
    cr_expect(memcmp(m[0].acts.logits, m[1].acts.logits, sizeof(float) * nlogit) == 0, "logits differ");
    cr_expect(memcmp(m[0].grads_memory, m[1].grads_memory, sizeof(float) * m[0].num_params) == 0,
              "gradients differ");
    omp_set_num_threads(saved);
    ssm_model_free(&m[0]); ssm_model_free(&m[1]);
}

Test(mamba2, adamw_steps_lower_the_loss)
{
    ssm_model m;
    ssm_adamw opt;
    ssm_adamw_config oc;
    ssm_adamw_config_default(&oc);
    oc.lr = 1e-2f; oc.warmup = 0; oc.total_steps = 30;
    build(&m, tiny_mamba2(2, 1), 6);
    cr_assert_eq(ssm_model_alloc_grads(&m), SSM_OK);
    cr_assert_eq(ssm_adamw_build(&opt, &m, &oc), SSM_OK);
    float first = train_step(&m, &opt), last = first;
    for (int i = 0; i < 29; i++) last = train_step(&m, &opt);
    cr_expect(last < 0.8f * first, "loss %.3f -> %.3f after 30 steps", first, last);
    ssm_adamw_free(&opt);
    ssm_model_free(&m);
}

Test(mamba2, unported_paths_refuse_the_model)
{
    ssm_model m;
    build(&m, tiny_mamba2(1, 1), 7);
    float x[16 * 3] = {0}, out[16 * 3];
    cr_expect_eq(ssm_model_s6_forward(&m, 0, x, 1, 3, out), SSM_ERR_USAGE, "Mamba-2 has no S6 map");
    cr_expect_eq(ssm_model_need_mamba1(&m, "the dynamics"), SSM_ERR_USAGE);
    ssm_model_free(&m);
    ssm_config c = tiny_mamba2(1, 1);
    c.n_classes = 3;
    cr_expect_eq(ssm_model_build(&m, &c), SSM_ERR_CONFIG, "a Mamba-2 classifier must be refused");
}

/* ------------------------------------------------------------------------ */
/* Probes, per head (engine/probe.h)                                        */

enum { PH = 4, PP = 4, PN = 4, PE = 16 };   /* tiny_mamba2's heads, head_dim, d_state, d_inner */

static float loss_at(ssm_model *m, const ssm_batch *b, float *w, float h)
{
    float keep = *w;
    *w += h;
    cr_assert_eq(ssm_model_forward(m, b), SSM_OK, "%s", ssm_last_error());
    *w = keep;
    return m->loss;
}

/* Specs are heads and entries p N + n of a head's state; the ranges are
 * the heads, P N and A_h's one entry */
Test(mamba2, probe_specs_are_checked_per_head)
{
    ssm_model m;
    build(&m, tiny_mamba2(2, 1), 7);
    ssm_ablation ok[2] = {{1, PH - 1, -1}, {0, 0, PP * PN - 1}};
    ssm_probe p = {.want_states = 1, .ablate = ok, .n_ablate = 2};
    cr_expect_eq(ssm_model_set_probe(&m, &p), SSM_OK, "%s", ssm_last_error());
    ssm_ablation head = {0, PH, -1}, entry = {0, 0, PP * PN};
    ssm_pin pin = {0, 1, 1, -1.0f};
    ssm_probe bad[3] = {{.ablate = &head, .n_ablate = 1}, {.ablate = &entry, .n_ablate = 1},
                        {.pin = &pin, .n_pin = 1}};
    const char *why[3] = {"head 4", "state entry p*N+n 16", "scalar A (pin L:H:VALUE) 1"};
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(ssm_model_set_probe(&m, &bad[i]), SSM_ERR_USAGE, "spec %d", i);
        cr_expect_not_null(strstr(ssm_last_error(), why[i]), "%s", ssm_last_error());
    }
    ssm_model_set_probe(&m, NULL);
    ssm_model_free(&m);
}

typedef struct { float *h, *y, *x; int ldu, H; } grab;

static void on_grab(void *ctx, const ssm_layer_view *v)
{
    grab *g = ctx;
    if (v->layer != 1) return;
    memcpy(g->h, v->h, sizeof(float) * v->B * v->L * v->E * v->Ns);
    memcpy(g->y, v->y, sizeof(float) * v->B * v->L * v->E);
    for (int i = 0; i < v->B * v->L; i++) memcpy(g->x + (size_t)i * v->E, v->u + (size_t)i * v->ldu, sizeof(float) * v->E);
    g->ldu = v->ldu;
    g->H = v->H;
}

/* The states of a probed forward (the naive twin) are the chunked run's:
 * the same logits, h_t at the last position is final_h, and an ablated
 * head's states are exactly 0 and its output y is the skip D_h x alone */
Test(mamba2, probe_states_match_the_chunked_run_and_ablations_hold)
{
    ssm_model m;
    build(&m, tiny_mamba2(2, 1), 9);
    enum { B = 2, L = 7, V = 16 };
    ssm_batch b = {B, L, TOKENS, NULL, NULL};
    float *plain = malloc(sizeof(float) * B * L * V), *fin = malloc(sizeof(float) * 2 * B * PE * PN);
    float *h = malloc(sizeof(float) * B * L * PE * PN), *y = malloc(sizeof(float) * 2 * B * L * PE);
    ssm_probe last = {.final_h = fin};
    cr_assert_eq(ssm_model_set_probe(&m, &last), SSM_OK);
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    memcpy(plain, m.acts.logits, sizeof(float) * B * L * V);
    grab g = {h, y, y + B * L * PE, 0, 0};
    ssm_probe st = {.want_states = 1, .on_layer = on_grab, .ctx = &g};
    cr_assert_eq(ssm_model_set_probe(&m, &st), SSM_OK);
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(g.H, PH);
    cr_expect_eq(g.ldu, PE + 2 * 2 * PN);
    for (int i = 0; i < B * L * V; i++)
        cr_expect_float_eq(m.acts.logits[i], plain[i], 1e-5f * (1 + fabsf(plain[i])), "logit %d", i);
    for (int s = 0; s < B; s++)
        for (int i = 0; i < PE * PN; i++) {
            float a = h[((size_t)s * L + L - 1) * PE * PN + i], w = fin[((size_t)B + s) * PE * PN + i];
            cr_expect_float_eq(a, w, 1e-5f * (1 + fabsf(w)), "seq %d entry %d: h_{L-1} vs final_h", s, i);
        }
    ssm_ablation ab = {1, 2, -1};
    ssm_probe cut = {.want_states = 1, .on_layer = on_grab, .ctx = &g, .ablate = &ab, .n_ablate = 1};
    cr_assert_eq(ssm_model_set_probe(&m, &cut), SSM_OK);
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    for (int t = 0; t < B * L; t++) {
        for (int i = 2 * PP * PN; i < 3 * PP * PN; i++) cr_expect_eq(h[(size_t)t * PE * PN + i], 0.0f);
        for (int p = 0; p < PP; p++) {
            size_t i = (size_t)t * PE + 2 * PP + p;
            cr_expect_float_eq(y[i], m.params.m2_D[PH + 2] * g.x[i], 1e-6f, "y of the ablated head");
        }
    }
    ssm_model_set_probe(&m, NULL);
    free(plain); free(fin); free(h); free(y);
    ssm_model_free(&m);
}

/* Ablations (a head, and one (p, n) entry) and a pin of A_h hold in the
 * backward: the gradient of an embedding row matches central differences
 * of the intervened loss, and the pinned head's A_log gets no gradient */
Test(mamba2, ablated_and_pinned_backward_matches_finite_differences)
{
    ssm_model m;
    build(&m, tiny_mamba2(2, 1), 13);
    cr_assert_eq(ssm_model_alloc_grads(&m), SSM_OK);
    int tokens[2 * 7];
    for (int i = 0; i < 14; i++) tokens[i] = i == 0 ? 3 : 5 + i % 7;   /* token 3 once */
    ssm_batch b = {2, 7, tokens, NULL, tokens};
    ssm_ablation ab[2] = {{0, 1, -1}, {1, 2, 5}};
    ssm_pin pin[1] = {{0, 3, -1, -0.05f}};
    ssm_probe p = {.ablate = ab, .n_ablate = 2, .pin = pin, .n_pin = 1};
    cr_assert_eq(ssm_model_set_probe(&m, &p), SSM_OK, "%s", ssm_last_error());
    ssm_model_zero_grad(&m);
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    cr_assert_eq(ssm_model_backward(&m, 1.0f), SSM_OK, "%s", ssm_last_error());
    int D = m.cfg.d_model;
    float grad[8];
    memcpy(grad, m.grads.embedding + 3 * D, sizeof(float) * D);
    cr_expect_eq(m.grads.m2_A_log[3], 0.0f, "a pinned A_h does not depend on A_log");
    cr_expect_neq(m.grads.m2_A_log[2], 0.0f);
    for (int d = 0; d < D; d++) {
        float *w = m.params.embedding + 3 * D + d;
        double fd = (loss_at(&m, &b, w, 3e-3f) - loss_at(&m, &b, w, -3e-3f)) / 6e-3;
        cr_expect_float_eq(grad[d], fd, 2e-4 + 5e-3 * fabs(fd), "d %d: %g vs %g", d, grad[d], fd);
    }
    ssm_model_set_probe(&m, NULL);
    ssm_model_free(&m);
}

/* The per-head hidden attention (engine/recency.c) is the SSD's kernel:
 * sum_{s<=t} alpha_h[t][s] x_s[h] equals the recurrence h_t = exp(dt A) h
 * + dt x B^T, y_t = h C run here in double from the same scan inputs, for
 * every layer, sequence and head (heads 0-1 read group 0, 2-3 group 1);
 * the mean map is (1/H) sum_h |alpha_h|. */
Test(mamba2, per_head_attention_is_the_ssd_kernel)
{
    ssm_model m;
    build(&m, tiny_mamba2(2, 1), 11);
    cr_assert_eq(ssm_model_alloc_grads(&m), SSM_OK, "%s", ssm_last_error());
    ssm_batch b = {2, 7, TOKENS, NULL, NULL};
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK, "%s", ssm_last_error());
    enum { L = 7, H = 4, P = 4, N = 4, G = 2, E = 16, CW = E + 2 * G * N };
    float alpha[L * L], mean[L * L], sum[L * L], A[H];
    for (int l = 0; l < 2; l++)
        for (int s = 0; s < 2; s++) {
            const float *xbc, *dt;
            cr_assert_eq(ssm_mamba2_scan_inputs(&m, l, &xbc, &dt, A), SSM_OK, "%s", ssm_last_error());
            xbc += (size_t)s * L * CW;
            dt += (size_t)s * L * H;
            memset(sum, 0, sizeof sum);
            for (int h = 0; h < H; h++) {
                cr_assert_eq(ssm_recency_attention(&m, l, s, h, NULL, alpha), SSM_OK, "%s", ssm_last_error());
                for (int i = 0; i < L * L; i++) sum[i] += fabsf(alpha[i]) / H;
                int g = h / (H / G);
                double st[P][N] = {{0}}, worst = 0, scale = 0;
                for (int t = 0; t < L; t++) {
                    const float *x = xbc + t * CW + h * P, *B = xbc + t * CW + E + g * N,
                                *C = xbc + t * CW + E + G * N + g * N;
                    double dec = exp((double)dt[t * H + h] * A[h]);
                    for (int p = 0; p < P; p++) {
                        double y = 0, mixed = 0;
                        for (int n = 0; n < N; n++) {
                            st[p][n] = dec * st[p][n] + (double)dt[t * H + h] * x[p] * B[n];
                            y += st[p][n] * C[n];
                        }
                        for (int u = 0; u <= t; u++) mixed += alpha[t * L + u] * xbc[u * CW + h * P + p];
                        worst = fmax(worst, fabs(mixed - y));
                        scale = fmax(scale, fabs(y));
                    }
                }
                cr_expect(worst <= 1e-5 * scale, "layer %d seq %d head %d: |alpha x - y| %.3g of %.3g", l, s, h,
                          worst, scale);
            }
            cr_assert_eq(ssm_recency_attention(&m, l, s, SSM_ATTN_MEAN, NULL, mean), SSM_OK);
            for (int i = 0; i < L * L; i++)
                cr_expect_float_eq(mean[i], sum[i], 1e-6f * (1 + fabsf(sum[i])), "mean map entry %d", i);
        }
    cr_expect_eq(ssm_recency_attention(&m, 0, 0, H, NULL, alpha), SSM_ERR_USAGE, "head H is out of range");
    ssm_model_free(&m);
}

/* The spectrum per (layer, group) reads group g's B and C rows of in_proj:
 * with S_B = (g + 1 + l) [I 0] and S_C = [I 0] every eigenvalue of that
 * group is g + 1 + l (positive, N of them). */
Test(mamba2, group_spectrum_reads_each_groups_rows)
{
    ssm_model m;
    build(&m, tiny_mamba2(2, 1), 5);
    enum { D = 8, E = 16, N = 4, G = 2, W = 2 * E + 2 * G * N + 4 };
    for (int l = 0; l < 2; l++)
        for (int g = 0; g < G; g++)
            for (int n = 0; n < N; n++)
                for (int d = 0; d < D; d++) {
                    float *ip = m.params.m2_in_proj + (size_t)l * W * D;
                    ip[(size_t)(2 * E + g * N + n) * D + d] = n == d ? (float)(g + 1 + l) : 0.0f;
                    ip[(size_t)(2 * E + G * N + g * N + n) * D + d] = n == d ? 1.0f : 0.0f;
                }
    ssm_spectrum s;
    cr_assert_eq(ssm_dynamics_spectrum(&m, &s), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(s.n_layer, 2);
    cr_expect_eq(s.n_groups, G);
    for (int r = 0; r < 2 * G; r++) {
        for (int i = 0; i < N; i++)
            cr_expect(fabs(s.re[r * N + i] - (r % G + 1 + r / G)) < 1e-9 && s.im[r * N + i] == 0,
                      "layer %d group %d eigenvalue %d: %g%+gi", r / G, r % G, i, s.re[r * N + i], s.im[r * N + i]);
        cr_expect_eq(s.n_pos[r], N);
        cr_expect_eq(s.cls[r], SSM_SPECTRUM_POSITIVE);
    }
    ssm_spectrum_free(&s);
    ssm_model_free(&m);
}

/* polarize = both on 4 learned heads of 4 channels in 2 groups: 6 heads,
 * head 0 one-polarized and head 5 zero-polarized; with saturate, head 5's
 * dt_bias is raised so that its decay exp(-100 dt) is 0 in float (and so
 * is its A's gradient, whatever the backward does). */
static void build_polarized(ssm_model *m, int saturate)
{
    ssm_config c = tiny_mamba2(2, 0);
    c.polarize = SSM_POLARIZE_BOTH;
    build(m, c, 13);
    cr_assert_eq(m->cfg.n_heads, 6);
    cr_assert_eq(m->cfg.d_inner, 24);
    for (int l = 0; saturate && l < 2; l++) m->params.m2_dt_bias[l * 6 + 5] = 3.0f;
    cr_assert_eq(ssm_model_alloc_grads(m), SSM_OK, "%s", ssm_last_error());
}

Test(mamba2, polarized_heads_decay_by_one_and_zero)
{
    ssm_model m;
    build_polarized(&m, 1);
    enum { L = 7, H = 6, P = 4, N = 4, G = 2, E = 24, CW = E + 2 * G * N };
    float loss = train_step(&m, NULL);
    cr_expect(isfinite(loss), "loss %g", loss);
    float A[H], alpha[L * L];
    for (int l = 0; l < 2; l++) {
        const float *xbc, *dt;
        cr_assert_eq(ssm_mamba2_scan_inputs(&m, l, &xbc, &dt, A), SSM_OK, "%s", ssm_last_error());
        cr_expect(A[0] == SSM_A_ONE_POLARIZED && A[H - 1] == SSM_A_ZERO_POLARIZED, "layer %d: A %g, %g", l,
                  A[0], A[H - 1]);
        for (int h = 1; h < H - 1; h++) cr_expect(A[h] == -expf(m.params.m2_A_log[l * H + h]));
        for (int i = 0; i < 2 * L; i++) {
            cr_expect(expf(dt[i * H] * A[0]) == 1.0f, "layer %d row %d: head 0 decays", l, i);
            cr_expect(expf(dt[i * H + H - 1] * A[H - 1]) == 0.0f, "layer %d row %d: head %d keeps %g", l, i,
                      H - 1, expf(dt[i * H + H - 1] * A[H - 1]));
        }
        /* the hidden attention: head 5 sees only the current token, and
         * head 0 weighs every past one by C_t . B_s dt_s, undecayed */
        cr_assert_eq(ssm_recency_attention(&m, l, 1, H - 1, NULL, alpha), SSM_OK, "%s", ssm_last_error());
        for (int t = 0; t < L; t++)
            for (int u = 0; u < t; u++) cr_expect(alpha[t * L + u] == 0.0f, "head 5: alpha[%d][%d] = %g", t, u,
                                                  alpha[t * L + u]);
        cr_assert_eq(ssm_recency_attention(&m, l, 1, 0, NULL, alpha), SSM_OK, "%s", ssm_last_error());
        const float *x1 = xbc + (size_t)L * CW, *dt1 = dt + (size_t)L * H;
        for (int t = 0; t < L; t++)
            for (int u = 0; u <= t; u++) {
                double cb = 0;
                for (int n = 0; n < N; n++) cb += (double)x1[t * CW + E + G * N + n] * x1[u * CW + E + n];
                double want = cb * dt1[u * H];
                cr_expect(fabs(alpha[t * L + u] - want) <= 1e-5 * (1 + fabs(want)), "head 0: alpha[%d][%d] %g, "
                          "C.B dt %g", t, u, alpha[t * L + u], want);
            }
        /* a pinned head's A is a constant: exactly no gradient; the learned ones get some */
        cr_expect(m.grads.m2_A_log[l * H] == 0.0f && m.grads.m2_A_log[l * H + H - 1] == 0.0f,
                  "layer %d: pinned dA_log %g, %g", l, m.grads.m2_A_log[l * H], m.grads.m2_A_log[l * H + H - 1]);
        for (int h = 1; h < H - 1; h++) cr_expect(m.grads.m2_A_log[l * H + h] != 0.0f, "head %d: no gradient", h);
    }
    ssm_model_free(&m);
}

/* At the initial dt (where exp(-100 dt) is not 0, so dL/dA of head 5 is
 * not either) the pinned heads' A_log get exactly no gradient and AdamW
 * never moves them; a saved polarized model reloads with its pinned heads:
 * the same configuration and the same logits to the bit; n_groups must
 * divide the heads with the pinned ones. */
Test(mamba2, polarized_model_trains_and_round_trips)
{
    ssm_model m, back;
    ssm_adamw opt;
    ssm_adamw_config oc;
    ssm_adamw_config_default(&oc);
    build_polarized(&m, 0);
    cr_assert_eq(ssm_adamw_build(&opt, &m, &oc), SSM_OK);
    float pinned[4] = {m.params.m2_A_log[0], m.params.m2_A_log[5], m.params.m2_A_log[6], m.params.m2_A_log[11]};
    for (int i = 0; i < 3; i++) {
        train_step(&m, &opt);
        for (int k = 0; k < 4; k++) {
            int j = k / 2 * 6 + k % 2 * 5;
            cr_expect(m.grads.m2_A_log[j] == 0.0f, "step %d: pinned head %d of layer %d has dA_log %g", i,
                      j % 6, j / 6, m.grads.m2_A_log[j]);
        }
    }
    float now[4] = {m.params.m2_A_log[0], m.params.m2_A_log[5], m.params.m2_A_log[6], m.params.m2_A_log[11]};
    cr_expect(memcmp(pinned, now, sizeof pinned) == 0, "a pinned head's A_log moved");
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, &opt, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_checkpoint_load(tmpdir, &back, NULL), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(back.cfg.polarize, SSM_POLARIZE_BOTH);
    cr_expect_eq(back.cfg.n_heads, 6);
    cr_assert_eq(back.num_params, m.num_params);
    ssm_batch b = {2, 7, TOKENS, NULL, NULL};
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    cr_assert_eq(ssm_model_forward(&back, &b), SSM_OK, "%s", ssm_last_error());
    cr_expect(memcmp(m.acts.logits, back.acts.logits, sizeof(float) * 2 * 7 * m.cfg.padded_vocab) == 0,
              "the reloaded model's logits differ");
    ssm_adamw_free(&opt);
    ssm_model_free(&m); ssm_model_free(&back);
    ssm_config c = tiny_mamba2(2, 0);
    c.polarize = SSM_POLARIZE_ZERO;   /* 4 + 1 heads in 2 groups */
    cr_expect_eq(ssm_model_build(&m, &c), SSM_ERR_CONFIG);
    cr_expect_not_null(strstr(ssm_last_error(), "with the polarized ones"), "%s", ssm_last_error());
}

/* The importance proxy of a Mamba-2 model: s_t = (1/H) sum_h dt_t[h] of
 * layer 0, pinned heads included, in m->acts.imp_s (B, L). */
Test(mamba2, importance_is_layer_0s_mean_dt)
{
    ssm_model m;
    build_polarized(&m, 1);
    ssm_batch b = {2, 7, TOKENS, NULL, NULL};
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK, "%s", ssm_last_error());
    const float *xbc, *dt;
    float A[6];
    cr_assert_eq(ssm_mamba2_scan_inputs(&m, 0, &xbc, &dt, A), SSM_OK, "%s", ssm_last_error());
    for (int i = 0; i < 2 * 7; i++) {
        double s = 0;
        for (int h = 0; h < 6; h++) s += dt[i * 6 + h];
        cr_expect(fabs(m.acts.imp_s[i] - s / 6) <= 1e-6 * s, "token %d: score %g, mean dt %g", i,
                  m.acts.imp_s[i], s / 6);
    }
    ssm_model_free(&m);
}

/* A forward with no backward after it runs the SSD in chunks of
 * SSM_SSD_INFER_Q, not the model's: the same logits to rounding as the
 * forward that keeps its activations (the model's chunk of 160, L 150 in
 * three inference chunks, the last short), and the same loss. */
Test(mamba2, inference_chunk_gives_the_models_logits)
{
    ssm_config c = tiny_mamba2(2, 1);
    c.chunk_size = 160;
    ssm_model m[2];
    enum { L = 150 };
    int tok[L];
    for (int i = 0; i < L; i++) tok[i] = (i * 5 + 1) % 13;
    ssm_batch b = {1, L, tok, NULL, tok};
    for (int k = 0; k < 2; k++) {
        build(&m[k], c, 9);
        if (k) cr_assert_eq(ssm_model_keep_acts(&m[k]), SSM_OK);
        cr_assert_eq(ssm_model_forward(&m[k], &b), SSM_OK, "%s", ssm_last_error());
    }
    cr_assert_lt(ssm_ssd_infer_chunk(c.chunk_size), c.chunk_size, "the test needs a smaller inference chunk");
    size_t n = (size_t)L * m[0].cfg.padded_vocab;
    double worst = 0.0, top = 0.0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)m[0].acts.logits[i] - m[1].acts.logits[i]));
        top = fmax(top, fabs((double)m[1].acts.logits[i]));
    }
    cr_expect_leq(worst, 1e-5 * top, "logits differ by %g of %g", worst, top);
    cr_expect(fabs(m[0].loss - m[1].loss) <= 1e-6f * fabs(m[1].loss), "loss %g vs %g", m[0].loss, m[1].loss);
    ssm_model_free(&m[0]); ssm_model_free(&m[1]);
}
