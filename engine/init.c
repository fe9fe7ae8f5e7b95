/* init.c — parameter initialisation with mamba_ssm's defaults (ssmlab-math(7) MODEL;
 * Mamba-2 layers as mamba_ssm's Mamba2, ssmlab-math(7) MAMBA-2):
 * A_log = log(n+1), D = 1, dt drawn log-uniformly in [1e-3, 1e-1] and stored
 * as its inverse softplus, PyTorch's default uniform bounds for linear and
 * conv weights, N(0, 0.02) embeddings and cls token, out_proj scaled by 1/sqrt(n_layer).
 * Kept apart from model.c because GSL's CBLAS header clashes with OpenBLAS's. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>

#include "engine/model.h"


static void fill_uniform(gsl_rng *r, float *x, size_t n, double bound)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)gsl_ran_flat(r, -bound, bound);
}

static void fill_normal(gsl_rng *r, float *x, size_t n, double sd)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)gsl_ran_gaussian(r, sd);
}

static void fill_const(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) x[i] = v;
}

static void init_layer(gsl_rng *r, const ssm_config *c, ssm_params *p, int l)
{
    size_t D = c->d_model, E = c->d_inner, N = c->d_state, R = c->dt_rank, K = c->d_conv,
           X = R + 2 * c->state_dim;
    fill_const(p->norm_w + l * D, D, 1.0f);
    fill_uniform(r, p->in_proj + l * 2 * E * D, 2 * E * D, 1.0 / sqrt((double)D));
    fill_uniform(r, p->conv_w + l * E * K, E * K, 1.0 / sqrt((double)K));
    fill_uniform(r, p->conv_b + l * E, E, 1.0 / sqrt((double)K));
    fill_uniform(r, p->x_proj + l * X * E, X * E, 1.0 / sqrt((double)E));
    fill_uniform(r, p->dt_proj_w + l * E * R, E * R, 1.0 / sqrt((double)R));
    for (size_t e = 0; e < E; e++) {
        double dt = exp(gsl_ran_flat(r, log(1e-3), log(1e-1)));
        if (dt < 1e-4) dt = 1e-4;
        p->dt_proj_b[l * E + e] = (float)(dt + log(-expm1(-dt)));
        for (size_t n = 0; n < N; n++) p->A_log[(l * E + e) * N + n] = (float)log((double)(n + 1));
    }
    fill_const(p->Dskip + l * E, E, 1.0f);
    fill_uniform(r, p->out_proj + l * D * E, D * E,
                 1.0 / sqrt((double)E) / sqrt((double)c->n_layer));
    if (p->scen_P) { /* P like the C rows it replaces, q = 0 (softplus(0) = ln 2) */
        fill_uniform(r, p->scen_P + l * N * E, N * E, 1.0 / sqrt((double)E));
        fill_const(p->scen_q + l * N, N, 0.0f);
    }
}

/* A Mamba-2 layer as mamba_ssm's Mamba2: dt drawn log-uniformly in [1e-3,
 * 1e-1] into dt_bias through the inverse softplus, A_log = log(uniform[1,
 * 16]), D = 1, gated norm 1, conv and linear layers as Mamba-1's */
static void init_layer_mamba2(gsl_rng *r, const ssm_config *c, ssm_params *p, int l)
{
    size_t D = c->d_model, E = c->d_inner, H = c->n_heads, K = c->d_conv,
           Cw = E + 2 * (size_t)c->n_groups * c->d_state, W = E + Cw + H;
    fill_const(p->norm_w + l * D, D, 1.0f);
    fill_uniform(r, p->m2_in_proj + l * W * D, W * D, 1.0 / sqrt((double)D));
    fill_uniform(r, p->m2_conv_w + l * Cw * K, Cw * K, 1.0 / sqrt((double)K));
    fill_uniform(r, p->m2_conv_b + l * Cw, Cw, 1.0 / sqrt((double)K));
    for (size_t h = 0; h < H; h++) {
        double dt = exp(gsl_ran_flat(r, log(1e-3), log(1e-1)));
        if (dt < 1e-4) dt = 1e-4;
        p->m2_dt_bias[l * H + h] = (float)(dt + log(-expm1(-dt)));
        p->m2_A_log[l * H + h] = (float)log(gsl_ran_flat(r, 1.0, 16.0));
    }
    fill_const(p->m2_D + l * H, H, 1.0f);
    fill_const(p->m2_norm_w + l * E, E, 1.0f);
    fill_uniform(r, p->out_proj + l * D * E, D * E,
                 1.0 / sqrt((double)E) / sqrt((double)c->n_layer));
}

void ssm_model_init(ssm_model *m, uint64_t seed)
{
    const ssm_config *c = &m->cfg;
    ssm_params *p = &m->params;
    size_t D = c->d_model;
    if (m->weights != SSM_WEIGHTS_F32) return;   /* bf16 weights come from float32 ones */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, (unsigned long)seed);
    if (p->embedding) fill_normal(r, p->embedding, (size_t)c->padded_vocab * D, 0.02);
    if (p->input_w) {
        fill_uniform(r, p->input_w, D * c->d_input, 1.0 / sqrt((double)c->d_input));
        fill_uniform(r, p->input_b, D, 1.0 / sqrt((double)c->d_input));
    }
    for (int l = 0; l < c->n_layer; l++) {
        if (c->arch == SSM_ARCH_MAMBA2) init_layer_mamba2(r, c, p, l);
        else init_layer(r, c, p, l);
    }
    fill_const(p->norm_f, D, 1.0f);
    if (p->lm_head) fill_normal(r, p->lm_head, (size_t)c->padded_vocab * D, 0.02);
    if (p->cls_w) {
        fill_uniform(r, p->cls_w, (size_t)c->n_classes * D, 1.0 / sqrt((double)D));
        fill_const(p->cls_b, c->n_classes, 0.0f);
    }
    if (p->imp_k) fill_uniform(r, p->imp_k, (size_t)c->n_reorder * c->d_inner, 1.0 / sqrt((double)c->d_inner));
    if (p->cls_tok) fill_normal(r, p->cls_tok, D, 0.02);   /* like the embedding */
    gsl_rng_free(r);
}

