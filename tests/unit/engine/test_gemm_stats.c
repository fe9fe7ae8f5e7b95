/* test_gemm_stats.c — unit tests of the GEMM counter (engine/gemm_stats.h):
 * off by default, and when on it counts every matrix product of a forward
 * (2 M N K each: in_proj, x_proj, dt_proj and out_proj per layer, the head)
 * and of a backward (twice the forward's: input and weight gradients), with
 * positive time; starting again zeroes it. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "engine/gemm_stats.h"
#include "engine/model.h"

enum { B = 2, L = 7 };

static void build(ssm_model *m)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 12; c.n_layer = 2; c.d_state = 5; c.d_conv = 3; c.expand = 2;
    c.vocab_size = 19;
    cr_assert_eq(ssm_config_finalize(&c), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_build(m, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(m, 5);
    cr_assert_eq(ssm_model_alloc_grads(m), SSM_OK, "%s", ssm_last_error());
}

/* 2 M N K summed over the forward's products, M = B L */
static double forward_flops(const ssm_config *c)
{
    double M = B * L, D = c->d_model, E = c->d_inner, R = c->dt_rank,
           X = R + 2.0 * c->state_dim, V = c->padded_vocab;
    double layer = 2 * M * (2 * E * D + X * E + E * R + D * E);
    return c->n_layer * layer + 2 * M * V * D;
}

Test(gemm_stats, counts_forward_and_backward_products)
{
    ssm_model m;
    build(&m);
    int tok[2 * B * L];   /* (B, L) tokens, then (B, L) targets */
    for (int i = 0; i < 2 * B * L; i++) tok[i] = (i * 7) % 19;
    ssm_batch b = {.B = B, .L = L, .tokens = tok, .targets = tok + B * L};

    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    ssm_gemm_stats s = ssm_gemm_stats_get();
    cr_expect_eq(s.calls, 0, "counting is off by default: %ld calls", s.calls);

    ssm_gemm_stats_enable(1);
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    s = ssm_gemm_stats_get();
    double f = forward_flops(&m.cfg);
    cr_expect_eq(s.calls, 4 * m.cfg.n_layer + 1, "forward calls %ld", s.calls);
    cr_expect_eq(s.flops, f, "forward flops %.0f, expected %.0f", s.flops, f);
    cr_expect_gt(s.seconds, 0.0);

    ssm_gemm_stats_enable(1);   /* starts from zero again */
    cr_assert_eq(ssm_model_backward(&m, 1.0f), SSM_OK);
    s = ssm_gemm_stats_get();
    cr_expect_eq(s.flops, 2 * f, "backward flops %.0f, expected %.0f", s.flops, 2 * f);

    ssm_gemm_stats_enable(0);
    cr_assert_eq(ssm_model_forward(&m, &b), SSM_OK);
    cr_expect_eq(ssm_gemm_stats_get().flops, 2 * f, "stopped counting still counts");
    ssm_model_free(&m);
}
