/* test_probe.c — unit tests of engine/probe.[ch] and the probe hooks of the
 * forward pass: the layer views and states against the scan's formula, an
 * ablation against y = D u, a pin against the same A written into A_log,
 * patches with their own clean values changing nothing to the last bit,
 * the ablated backward against finite differences, and the spec parsers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "engine/probe.h"

enum { TB = 2, TL = 7 };

static unsigned rng_state = 77u;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) / 8388608.0 - 1.0);
}

typedef struct {
    ssm_model m;
    int tokens[TB * TL];
    int targets[TB * TL];
    ssm_batch batch;
} fixture;

static void fixture_build(fixture *f, int polarize, int grads)
{
    memset(f, 0, sizeof *f);
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 8;
    c.n_layer = 3;
    c.d_state = 4;
    c.d_conv = 3;
    c.vocab_size = 16;
    c.polarize = polarize;
    cr_assert_eq(ssm_model_build(&f->m, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(&f->m, 5);
    for (size_t i = 0; i < f->m.num_params; i++) f->m.params_memory[i] += 0.05f * frand();
    if (grads) cr_assert_eq(ssm_model_alloc_grads(&f->m), SSM_OK);
    for (int i = 0; i < TB * TL; i++) {
        f->tokens[i] = (i * 7 + 3) % 16;
        f->targets[i] = (i * 5 + 1) % 16;
    }
    ssm_batch b = {TB, TL, f->tokens, NULL, f->targets};
    f->batch = b;
}

static float *logits_copy(const ssm_model *m)
{
    size_t n = (size_t)TB * TL * m->cfg.padded_vocab;
    float *out = malloc(sizeof(float) * n);
    memcpy(out, m->acts.logits, sizeof(float) * n);
    return out;
}

/* the hook's record: per layer, a copy of y, u, delta, B, C, h */
typedef struct {
    int E, Ns, calls, layers_seen[8];
    float *y, *u, *h, *Bm, *Cm, *delta, *x;   /* of the layer `want` */
    int want;
    const ssm_config *c;
} record;

static void on_layer(void *ctx, const ssm_layer_view *v)
{
    record *r = ctx;
    r->layers_seen[r->calls++] = v->layer;
    if (v->layer != r->want) return;
    size_t BL = (size_t)v->B * v->L, E = v->E, Ns = v->Ns;
    r->y = malloc(sizeof(float) * BL * E);
    r->u = malloc(sizeof(float) * BL * E);
    r->delta = malloc(sizeof(float) * BL * E);
    r->h = malloc(sizeof(float) * BL * E * Ns);
    r->Bm = malloc(sizeof(float) * BL * Ns);
    r->Cm = malloc(sizeof(float) * BL * Ns);
    r->x = malloc(sizeof(float) * BL * v->D);
    memcpy(r->y, v->y, sizeof(float) * BL * E);
    memcpy(r->u, v->u, sizeof(float) * BL * E);
    memcpy(r->delta, v->delta, sizeof(float) * BL * E);
    memcpy(r->x, v->x, sizeof(float) * BL * v->D);
    if (v->h) memcpy(r->h, v->h, sizeof(float) * BL * E * Ns);
    for (size_t i = 0; i < BL; i++) {
        memcpy(r->Bm + i * Ns, v->Bm + i * v->ldbc, sizeof(float) * Ns);
        memcpy(r->Cm + i * Ns, v->Cm + i * v->ldbc, sizeof(float) * Ns);
    }
}

static void record_free(record *r)
{
    free(r->y); free(r->u); free(r->h); free(r->Bm); free(r->Cm); free(r->delta); free(r->x);
}

/* y_t[e] = sum_n C_t[n] h_t[e,n] + D[e] u_t[e] and the recurrence of h */
static void check_states(const record *r, const fixture *f, const float *A, const float *Dskip)
{
    int E = r->E, Ns = r->Ns;
    for (int i = 0; i < TB * TL; i++)
        for (int e = 0; e < E; e++) {
            double y = Dskip[e] * r->u[(size_t)i * E + e];
            for (int n = 0; n < Ns; n++) {
                size_t k = ((size_t)i * E + e) * Ns + n;
                double prev = i % TL ? r->h[k - (size_t)E * Ns] : 0.0;
                double d = r->delta[(size_t)i * E + e];
                double h = exp(d * A[e * Ns + n]) * prev + d * r->Bm[i * Ns + n] * r->u[(size_t)i * E + e];
                cr_assert_float_eq(r->h[k], h, 1e-5 + 1e-4 * fabs(h), "h at %d %d %d", i, e, n);
                y += r->Cm[i * Ns + n] * r->h[k];
            }
            cr_assert_float_eq(r->y[(size_t)i * E + e], y, 1e-5 + 1e-4 * fabs(y));
        }
    (void)f;
}

Test(probe, hook_sees_every_layer_and_states_follow_the_recurrence)
{
    fixture f;
    fixture_build(&f, SSM_POLARIZE_BOTH, 0);
    const ssm_config *c = &f.m.cfg;
    record r = {.E = c->d_inner, .Ns = c->state_dim, .want = 1};
    ssm_probe p = {.want_states = 1, .on_layer = on_layer, .ctx = &r};
    cr_assert_eq(ssm_model_set_probe(&f.m, &p), SSM_OK);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(r.calls, 3);
    for (int l = 0; l < 3; l++) cr_assert_eq(r.layers_seen[l], l);
    float *A = malloc(sizeof(float) * c->d_inner * c->state_dim);
    ssm_model_run_A(&f.m, 1, A);
    check_states(&r, &f, A, f.m.params.Dskip + c->d_inner);
    /* x of layer 1 is the kept residual stream x_1 */
    size_t n = (size_t)TB * TL * c->d_model;
    cr_assert_eq(memcmp(r.x, f.m.acts.resid + n, sizeof(float) * n), 0);
    free(A);
    record_free(&r);
    ssm_model_free(&f.m);
}

Test(probe, ablating_every_state_channel_leaves_the_skip)
{
    fixture f;
    fixture_build(&f, SSM_POLARIZE_NONE, 0);
    const ssm_config *c = &f.m.cfg;
    record r = {.E = c->d_inner, .Ns = c->state_dim, .want = 2};
    ssm_ablation ab[2] = {{2, 5, -1}, {2, 6, 1}};
    ssm_probe p = {.want_states = 1, .on_layer = on_layer, .ctx = &r, .ablate = ab, .n_ablate = 2};
    cr_assert_eq(ssm_model_set_probe(&f.m, &p), SSM_OK);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    const float *Dskip = f.m.params.Dskip + 2 * c->d_inner;
    for (int i = 0; i < TB * TL; i++) {
        size_t k = (size_t)i * r.E + 5;
        cr_assert_eq(r.y[k], (float)((double)Dskip[5] * r.u[k]), "y = D u at row %d", i);
        for (int n = 0; n < r.Ns; n++) cr_assert_eq(r.h[k * r.Ns + n], 0.0f);
        cr_assert_eq(r.h[((size_t)i * r.E + 6) * r.Ns + 1], 0.0f);
        cr_assert_neq(r.h[((size_t)i * r.E + 6) * r.Ns + 2], 0.0f);
    }
    record_free(&r);
    ssm_model_free(&f.m);
}

static double max_rel(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

Test(probe, pin_equals_the_same_A_written_into_the_weights)
{
    fixture f;
    fixture_build(&f, SSM_POLARIZE_NONE, 0);
    const ssm_config *c = &f.m.cfg;
    size_t nl = (size_t)TB * TL * c->padded_vocab;
    ssm_pin pins[2] = {{1, 3, 2, 0.0f}, {0, 0, 0, -7.5f}};
    ssm_probe p = {.pin = pins, .n_pin = 2};
    cr_assert_eq(ssm_model_set_probe(&f.m, &p), SSM_OK);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    float *pinned = logits_copy(&f.m);
    ssm_model_set_probe(&f.m, NULL);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    float *clean = logits_copy(&f.m);
    cr_assert_gt(max_rel(pinned, clean, nl), 1e-4, "the pins change the output");
    f.m.params.A_log[(size_t)1 * c->d_inner * c->d_state + 3 * c->d_state + 2] = -INFINITY;
    f.m.params.A_log[0] = logf(7.5f);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    cr_assert_lt(max_rel(pinned, f.m.acts.logits, nl), 1e-6);
    free(pinned);
    free(clean);
    ssm_model_free(&f.m);
}

/* the clean run's x entering `layer` at pos (residual) or h after pos (state) */
typedef struct { int layer, pos, kind, E, Ns, D; float *val; } grab;

static void on_grab(void *ctx, const ssm_layer_view *v)
{
    grab *g = ctx;
    if (v->layer != g->layer) return;
    for (int b = 0; b < v->B; b++) {
        size_t row = (size_t)b * v->L + g->pos;
        if (g->kind == SSM_PATCH_RESIDUAL)
            memcpy(g->val + (size_t)b * v->D, v->x + row * v->D, sizeof(float) * v->D);
        else
            memcpy(g->val + (size_t)b * v->E * v->Ns, v->h + row * v->E * v->Ns,
                   sizeof(float) * v->E * v->Ns);
    }
}

static void check_self_patch(int kind)
{
    fixture f;
    fixture_build(&f, SSM_POLARIZE_ONE, 0);
    const ssm_config *c = &f.m.cfg;
    size_t nl = (size_t)TB * TL * c->padded_vocab;
    grab g = {1, 4, kind, c->d_inner, c->state_dim, c->d_model, NULL};
    g.val = malloc(sizeof(float) * TB * c->d_inner * c->state_dim);
    ssm_probe clean = {.want_states = kind == SSM_PATCH_STATE, .on_layer = on_grab, .ctx = &g};
    cr_assert_eq(ssm_model_set_probe(&f.m, &clean), SSM_OK);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    float *ref = logits_copy(&f.m);
    ssm_probe patch = {.want_states = kind == SSM_PATCH_STATE, .patch_kind = kind,
                       .patch_layer = 1, .patch_pos = 4, .patch_value = g.val};
    cr_assert_eq(ssm_model_set_probe(&f.m, &patch), SSM_OK);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    cr_assert_eq(memcmp(ref, f.m.acts.logits, sizeof(float) * nl), 0, "bit-identical");
    /* a different value does change the output, from that position on only */
    for (size_t i = 0; i < (size_t)TB * (kind == SSM_PATCH_STATE ? c->d_inner * c->state_dim : c->d_model); i++)
        g.val[i] += 0.5f;
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    size_t V = c->padded_vocab, before = 4 * V;
    cr_assert_eq(memcmp(ref, f.m.acts.logits, sizeof(float) * before), 0, "causal");
    cr_assert_gt(max_rel(f.m.acts.logits + before, ref + before, V), 1e-4);
    free(ref);
    free(g.val);
    ssm_model_free(&f.m);
}

Test(probe, residual_patch_with_its_own_value_changes_nothing) { check_self_patch(SSM_PATCH_RESIDUAL); }
Test(probe, state_patch_with_its_own_value_changes_nothing) { check_self_patch(SSM_PATCH_STATE); }

Test(probe, patched_forward_has_no_backward_and_a_bad_position_is_refused)
{
    fixture f;
    fixture_build(&f, SSM_POLARIZE_NONE, 1);
    float val[TB * 8] = {0};
    ssm_probe p = {.patch_kind = SSM_PATCH_RESIDUAL, .patch_layer = 0, .patch_pos = TL, .patch_value = val};
    cr_assert_eq(ssm_model_set_probe(&f.m, &p), SSM_OK);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_ERR_USAGE);
    cr_assert(strstr(ssm_last_error(), "position 7 is out of range"), "%s", ssm_last_error());
    p.patch_pos = 2;
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    cr_assert_eq(ssm_model_backward(&f.m, 1.0f), SSM_ERR_USAGE);
    ssm_model_free(&f.m);
}

/* loss with the embedding of token 0 of sequence 0 nudged at dim d */
static double loss_at(fixture *f, int d, float h)
{
    int tok = f->tokens[0];
    float *w = f->m.params.embedding + (size_t)tok * f->m.cfg.d_model + d;
    float keep = *w;
    *w += h;
    cr_assert_eq(ssm_model_forward(&f->m, &f->batch), SSM_OK);
    *w = keep;
    return f->m.loss;
}

Test(probe, ablated_and_pinned_backward_matches_finite_differences)
{
    fixture f;
    fixture_build(&f, SSM_POLARIZE_BOTH, 1);
    for (int i = 0; i < TB * TL; i++) f.tokens[i] = i == 0 ? 3 : 5 + i % 9;   /* token 3 once */
    ssm_ablation ab[2] = {{0, 1, -1}, {1, 2, 3}};
    ssm_pin pin[1] = {{0, 4, 2, -0.2f}};
    ssm_probe p = {.ablate = ab, .n_ablate = 2, .pin = pin, .n_pin = 1};
    cr_assert_eq(ssm_model_set_probe(&f.m, &p), SSM_OK);
    ssm_model_zero_grad(&f.m);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    cr_assert_eq(ssm_model_backward(&f.m, 1.0f), SSM_OK, "%s", ssm_last_error());
    int D = f.m.cfg.d_model;
    float *grad = malloc(sizeof(float) * D);
    memcpy(grad, f.m.grads.embedding + 3 * D, sizeof(float) * D);
    for (int d = 0; d < D; d++) {
        double fd = (loss_at(&f, d, 3e-3f) - loss_at(&f, d, -3e-3f)) / 6e-3;
        cr_assert_float_eq(grad[d], fd, 2e-4 + 5e-3 * fabs(fd), "d %d: %g vs %g", d, grad[d], fd);
    }
    /* a pinned entry gets no gradient into A_log */
    ssm_model_zero_grad(&f.m);
    cr_assert_eq(ssm_model_forward(&f.m, &f.batch), SSM_OK);
    cr_assert_eq(ssm_model_backward(&f.m, 1.0f), SSM_OK);
    int n_learned = 2 - f.m.cfg.n_one;   /* state channel 2 is learned channel 1 */
    cr_assert_eq(f.m.grads.A_log[4 * f.m.cfg.d_state + n_learned], 0.0f);
    free(grad);
    ssm_model_free(&f.m);
}

Test(probe, specs_parse_and_bad_ones_are_refused)
{
    char why[128];
    ssm_ablation a;
    ssm_pin p;
    int l, pos, kind;
    cr_assert_eq(ssm_probe_parse_ablation("2:17", &a, why, sizeof why), 0);
    cr_assert(a.layer == 2 && a.e == 17 && a.n == -1);
    cr_assert_eq(ssm_probe_parse_ablation("2:17:3", &a, why, sizeof why), 0);
    cr_assert_eq(a.n, 3);
    const char *bad_ablate[] = {"", "2", "2:", "2:x", "-1:3", "1:2:3:4", "1::2"};
    for (size_t i = 0; i < sizeof bad_ablate / sizeof *bad_ablate; i++)
        cr_assert_eq(ssm_probe_parse_ablation(bad_ablate[i], &a, why, sizeof why), -1, "%s", bad_ablate[i]);
    cr_assert_eq(ssm_probe_parse_pin("0:1:2:-100", &p, why, sizeof why), 0);
    cr_assert(p.layer == 0 && p.e == 1 && p.n == 2 && p.value == -100.0f);
    const char *bad_pin[] = {"0:1:2", "0:1:2:1", "0:1:2:nan", "0:1:2:-inf", "0:1:2:x"};
    for (size_t i = 0; i < sizeof bad_pin / sizeof *bad_pin; i++)
        cr_assert_eq(ssm_probe_parse_pin(bad_pin[i], &p, why, sizeof why), -1, "%s", bad_pin[i]);
    cr_assert_eq(ssm_probe_parse_patch("3:9", &l, &pos, &kind, why, sizeof why), 0);
    cr_assert(l == 3 && pos == 9 && kind == SSM_PATCH_RESIDUAL);
    cr_assert_eq(ssm_probe_parse_patch("3:9:state", &l, &pos, &kind, why, sizeof why), 0);
    cr_assert_eq(kind, SSM_PATCH_STATE);
    cr_assert_eq(ssm_probe_parse_patch("3:9:stat", &l, &pos, &kind, why, sizeof why), -1);
    cr_assert(strstr(why, "LAYER:POSITION"), "%s", why);
}

Test(probe, out_of_range_specs_name_the_range)
{
    fixture f;
    fixture_build(&f, SSM_POLARIZE_BOTH, 0);   /* 3 layers, E 16, Ns 6 */
    ssm_ablation ab = {3, 0, -1};
    ssm_probe p = {.ablate = &ab, .n_ablate = 1};
    cr_assert_eq(ssm_model_set_probe(&f.m, &p), SSM_ERR_USAGE);
    cr_assert(strstr(ssm_last_error(), "--ablate 3:0: layer 3 is out of range (the model has 0 to 2)"),
              "%s", ssm_last_error());
    ssm_pin pin = {0, 16, 0, 0.0f};
    ssm_probe q = {.pin = &pin, .n_pin = 1};
    cr_assert_eq(ssm_model_set_probe(&f.m, &q), SSM_ERR_USAGE);
    cr_assert(strstr(ssm_last_error(), "channel 16"), "%s", ssm_last_error());
    pin.e = 0;
    pin.n = 6;
    cr_assert_eq(ssm_model_set_probe(&f.m, &q), SSM_ERR_USAGE);
    cr_assert(strstr(ssm_last_error(), "state channel 6 is out of range (the model has 0 to 5)"),
              "%s", ssm_last_error());
    cr_assert_eq(f.m.probe, NULL, "a refused probe is not attached");
    char buf[128];
    pin.n = 5;
    ab.layer = 2;
    ssm_probe both = {.ablate = &ab, .n_ablate = 1, .pin = &pin, .n_pin = 1};
    ssm_probe_describe(&both, buf, sizeof buf);
    cr_assert_str_eq(buf, "ablate 2:0, pin 0:0:5=0");
    ssm_probe_describe(NULL, buf, sizeof buf);
    cr_assert_str_eq(buf, "none");
    ssm_model_free(&f.m);
}
