/* generate.c — the recurrent step of ssmlab-math(7) MODEL for generation: one token
 * through every layer (RMSNorm, in_proj, conv over a window of past inputs,
 * SiLU, x_proj, dt_proj + softplus, one scan step, D skip, gate, out_proj,
 * residual), the final norm and the LM head, with matrix-vector products.
 * Large products and the scan are split over OpenMP threads in fixed
 * blocks, so a thread count always gives the same bits.  A model with bf16
 * weights (engine/model.h) multiplies by them directly (engine/bf16.h). */
#include "engine/generate.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bf16.h"
#include "engine/mamba2.h"
#include "engine/scan.h"
#include "engine/scenario.h"
#include "engine/split.h"
#include "engine/ssd.h"
#include "engine/vmath.h"

/* A weight matrix of the step: float32 (f) or bf16 (h), the other NULL */
typedef struct {
    const float *f;
    const uint16_t *h;
} step_weight;

/* One layer's parameter views. */
typedef struct {
    const float *norm_w, *conv_w, *conv_b, *dt_proj_b, *Dskip;
    step_weight in_proj, x_proj, dt_proj_w, out_proj;
} step_params;

/* rows [l * n, (l + 1) * n) of a stacked matrix held in f or in h */
static step_weight weight_at(const float *f, const uint16_t *h, size_t l, size_t n)
{
    step_weight w = {f ? f + l * n : NULL, h ? h + l * n : NULL};
    return w;
}

static step_params step_params_view(const ssm_model *m, int l)
{
    const ssm_config *c = &m->cfg;
    const ssm_params *p = &m->params;
    const ssm_params_bf16 *h = &m->wbf;
    size_t D = c->d_model, E = c->d_inner, R = c->dt_rank, K = c->d_conv,
           X = R + 2 * c->state_dim;
    step_params v = {
        p->norm_w + l * D, p->conv_w + l * E * K, p->conv_b + l * E, p->dt_proj_b + l * E,
        p->Dskip + l * E, weight_at(p->in_proj, h->in_proj, l, 2 * E * D),
        weight_at(p->x_proj, h->x_proj, l, X * E), weight_at(p->dt_proj_w, h->dt_proj_w, l, E * R),
        weight_at(p->out_proj, h->out_proj, l, D * E)};
    return v;
}


/* y (M) = W (M, K) x (K) [+ bias (M)] */
static void matvec(float *y, const float *W, const float *x, const float *bias, int M, int K)
{
    float beta = bias ? 1.0f : 0.0f;
    if (bias) memcpy(y, bias, sizeof(float) * M);
    if ((long)M * K < SSM_SPLIT_MIN_WORK || omp_get_max_threads() == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, M, K, 1.0f, W, K, x, 1, beta, y, 1);
        return;
    }
#pragma omp parallel
    {
        int lo, hi;
        ssm_split_rows(M, &lo, &hi);
        if (hi > lo)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, hi - lo, K, 1.0f, W + (size_t)lo * K, K,
                        x, 1, beta, y + lo, 1);
    }
}

/* y (M) = W (M, K) x (K) [+ bias (M)], W float32 or bf16 */
static void matvec_w(float *y, step_weight W, const float *x, const float *bias, int M, int K)
{
    if (W.h) ssm_bf16_matvec_par(y, W.h, x, bias, M, K);
    else matvec(y, W.f, x, bias, M, K);
}

/* y (D) = x / sqrt(mean(x^2) + eps) * w, summed in model.c's order */
static void rmsnorm_step(float *y, const float *x, const float *w, int D, float eps)
{
    float ss = 0.0f;
    for (int d = 0; d < D; d++) ss += x[d] * x[d];
    float r = 1.0f / sqrtf(ss / D + eps);
    for (int d = 0; d < D; d++) y[d] = x[d] * r * w[d];
}

/* conv_step for K = 4 (the mamba default), unrolled; same sum order */
static void conv_step4(float *restrict uc, float *restrict win, const float *restrict x,
                       const float *restrict w, const float *restrict b, int E)
{
    for (int e = 0; e < E; e++) {
        float *we = win + (size_t)e * 3;         /* (3) oldest first */
        const float *wk = w + (size_t)e * 4;     /* (4) */
        float w0 = we[0], w1 = we[1], w2 = we[2], xe = x[e];
        float acc = b[e];
        acc += wk[0] * w0;
        acc += wk[1] * w1;
        acc += wk[2] * w2;
        acc += wk[3] * xe;
        we[0] = w1;
        we[1] = w2;
        we[2] = xe;
        uc[e] = acc;
    }
}

/* uc (E) = b + sum_k w[k] window[k] + w[K-1] x; then x joins the window */
static void conv_step(float *restrict uc, float *restrict win, const float *restrict x,
                      const float *restrict w, const float *restrict b, int E, int K)
{
    if (K == 4) {
        conv_step4(uc, win, x, w, b, E);
        return;
    }
    for (int e = 0; e < E; e++) {
        float *we = win + (size_t)e * (K - 1);   /* (K-1) oldest first */
        const float *wk = w + (size_t)e * K;     /* (K) */
        float acc = b[e];
        for (int k = 0; k < K - 1; k++) acc += wk[k] * we[k];
        acc += wk[K - 1] * x[e];
        for (int k = 0; k + 1 < K - 1; k++) we[k] = we[k + 1];
        if (K > 1) we[K - 2] = x[e];
        uc[e] = acc;
    }
}

/* Elementwise loops on separate arrays, so clang vectorises them. */
static void silu_inplace(float *restrict x, int n)
{
    for (int i = 0; i < n; i++) x[i] = ssm_siluf(x[i]);
}

static void softplus_inplace(float *restrict x, int n)
{
    for (int i = 0; i < n; i++) x[i] = ssm_softplusf(x[i]);
}

/* y (n) *= SiLU(z) */
static void gate(float *restrict y, const float *restrict z, int n)
{
    for (int i = 0; i < n; i++) y[i] *= ssm_siluf(z[i]);
}

static void add_inplace(float *restrict x, const float *restrict y, int n)
{
    for (int i = 0; i < n; i++) x[i] += y[i];
}

/* ssm_scan_step over channel blocks, threaded when the state is large */
static void scan_step(const ssm_gen_state *s, const float *A, const float *Dskip, float *h)
{
    int E = s->E, Ns = s->Ns;
    const float *Bt = s->xdbl + s->R, *Ct = Bt + Ns;
    if ((long)E * Ns < SSM_SPLIT_MIN_WORK || omp_get_max_threads() == 1) {
        ssm_scan_step(E, Ns, s->u, s->delta, Bt, Ct, A, Dskip, h, s->y);
        return;
    }
#pragma omp parallel
    {
        int lo, hi;
        ssm_split_rows(E, &lo, &hi);
        if (hi > lo)
            ssm_scan_step(hi - lo, Ns, s->u + lo, s->delta + lo, Bt, Ct, A + (size_t)lo * Ns,
                          Dskip + lo, h + (size_t)lo * Ns, s->y + lo);
    }
}

/* x <- x + Mixer(RMSNorm(x)) for layer l, one token */
static void layer_step(const ssm_config *c, const step_params *p, ssm_gen_state *s, int l)
{
    int D = s->D, E = s->E, R = s->R, K = s->K, X = R + 2 * s->Ns;
    size_t EN = (size_t)E * s->Ns;
    rmsnorm_step(s->xn, s->x, p->norm_w, D, c->norm_eps);
    matvec_w(s->xz, p->in_proj, s->xn, NULL, 2 * E, D);
    conv_step(s->u, s->conv + (size_t)l * E * (K - 1), s->xz, p->conv_w, p->conv_b, E, K);
    silu_inplace(s->u, E);
    matvec_w(s->xdbl, p->x_proj, s->u, NULL, X, E);
    matvec_w(s->delta, p->dt_proj_w, s->xdbl, p->dt_proj_b, E, R);
    softplus_inplace(s->delta, E);
    scan_step(s, s->A + l * EN, p->Dskip, s->h + l * EN);
    gate(s->y, s->xz + E, E);
    matvec_w(s->mix, p->out_proj, s->y, NULL, D, E);
    add_inplace(s->x, s->mix, D);
}

/* x <- x + Mixer(RMSNorm(x)) for Mamba-2 layer l, one token
 * (ssmlab-math(7) MAMBA-2): the SSD recurrence one step per head */
static void layer_step_mamba2(const ssm_config *c, const ssm_params *pm, ssm_gen_state *s, int l)
{
    size_t D = s->D, E = s->E, K = s->K, Cw = s->Cw, W = s->Wz, H = c->n_heads,
           GN = (size_t)c->n_groups * c->d_state, EN = E * s->Ns;
    float *xbc = s->u, *dt = s->delta, *yz = s->delta;   /* (Cw), (H), then (E) */
    rmsnorm_step(s->xn, s->x, pm->norm_w + l * D, (int)D, c->norm_eps);
    matvec(s->xz, pm->m2_in_proj + l * W * D, s->xn, NULL, (int)W, (int)D);
    conv_step(xbc, s->conv + l * Cw * (K - 1), s->xz + E, pm->m2_conv_w + l * Cw * K,
              pm->m2_conv_b + l * Cw, (int)Cw, (int)K);
    silu_inplace(xbc, (int)Cw);
    for (size_t h = 0; h < H; h++) dt[h] = s->xz[E + Cw + h] + pm->m2_dt_bias[l * H + h];
    softplus_inplace(dt, (int)H);
    ssm_ssd_step((int)H, c->head_dim, c->n_groups, c->d_state, xbc, xbc + E, xbc + E + GN, dt,
                 s->A + l * EN, pm->m2_D + l * H, s->h + l * EN, s->y);
    ssm_mamba2_gated_norm(s->y, yz, NULL, s->y, s->xz, pm->m2_norm_w + l * E, (int)E,
                          c->n_groups, c->norm_eps);
    matvec(s->mix, pm->out_proj + l * D * E, s->y, NULL, (int)D, (int)E);
    add_inplace(s->x, s->mix, (int)D);
}

/* A (n_layer, E, Ns), layer by layer through ssm_model_layer_A; for
 * Mamba-2 the first H entries of each layer, through ssm_mamba2_layer_A */
static void state_fill_A(ssm_gen_state *s, const ssm_config *c, const ssm_params *p)
{
    size_t EN = (size_t)c->d_inner * c->d_state, ENs = (size_t)c->d_inner * c->state_dim;
    for (int l = 0; l < c->n_layer; l++) {
        if (c->arch != SSM_ARCH_MAMBA2) {
            ssm_model_layer_A(c, p->A_log + l * EN, s->A + l * ENs);
            continue;
        }
        ssm_mamba2_layer_A(c, p->m2_A_log + (size_t)l * c->n_heads, s->A + l * ENs);
    }
}

/* carve s->memory into the named buffers */
static void state_views(ssm_gen_state *s)
{
    size_t nl = s->n_layer, E = s->E, D = s->D, EN = E * s->Ns;
    float *p = s->memory;
    s->conv = p;  p += nl * s->Cw * (s->K - 1);
    s->h = p;     p += nl * EN;
    s->A = p;     p += nl * EN;
    s->x = p;     p += D;
    s->xn = p;    p += D;
    s->xz = p;    p += s->Wz;
    s->u = p;     p += s->Cw;
    s->xdbl = p;  p += s->R + 2 * s->Ns;
    s->delta = p; p += E;
    s->y = p;     p += E;
    s->mix = p;
}

ssm_status ssm_gen_state_build(ssm_gen_state *s, ssm_model *m)
{
    const ssm_config *c = &m->cfg;
    memset(s, 0, sizeof *s);
    if (c->n_classes > 0 || c->input_kind != SSM_INPUT_TOKENS)
        return ssm_fail(SSM_ERR_CONFIG, "generation needs a language model; this one is a "
                        "classifier with %d classes", c->n_classes);
    s->n_layer = c->n_layer; s->D = c->d_model; s->E = c->d_inner; s->Ns = c->state_dim;
    s->R = c->dt_rank; s->K = c->d_conv; s->V = c->padded_vocab;
    s->arch = c->arch;
    s->Cw = c->d_inner + (c->arch == SSM_ARCH_MAMBA2) * 2 * c->n_groups * c->d_state;
    s->Wz = c->d_inner + s->Cw + (c->arch == SSM_ARCH_MAMBA2) * c->n_heads;
    size_t nl = s->n_layer, E = s->E, EN = E * s->Ns;
    size_t total = nl * s->Cw * (s->K - 1) + 2 * nl * EN + 2 * (size_t)s->D + s->Wz + s->Cw +
                   (size_t)s->R + 2 * s->Ns + 2 * E + s->D;
    s->memory = malloc(sizeof(float) * total);
    if (!s->memory) {
        memset(s, 0, sizeof *s);
        return ssm_fail(SSM_ERR_NOMEM, "cannot allocate the generation state (%zu floats)", total);
    }
    state_views(s);
    ssm_scenario_forward(c, &m->params);
    state_fill_A(s, c, &m->params);
    ssm_gen_state_reset(s);
    return SSM_OK;
}

void ssm_gen_state_free(ssm_gen_state *s)
{
    free(s->memory);
    memset(s, 0, sizeof *s);
}

void ssm_gen_state_reset(ssm_gen_state *s)
{
    if (!s->memory) return;
    size_t nl = s->n_layer, E = s->E;
    memset(s->conv, 0, sizeof(float) * nl * s->Cw * (s->K - 1));
    memset(s->h, 0, sizeof(float) * nl * E * s->Ns);
    s->pos = 0;
}

static int state_matches(const ssm_config *c, const ssm_gen_state *s)
{
    return s->memory && s->arch == c->arch && s->n_layer == c->n_layer && s->D == c->d_model &&
           s->E == c->d_inner &&
           s->Ns == c->state_dim && s->R == c->dt_rank && s->K == c->d_conv &&
           s->V == c->padded_vocab;
}

/* The prefill's hook: layer v->layer's conv window, the last K-1 conv
 * inputs of the prompt (zeros before its start), oldest first */
static void prefill_window(void *ctx, const ssm_layer_view *v)
{
    ssm_gen_state *s = ctx;
    int K1 = s->K - 1;
    float *win = s->conv + (size_t)v->layer * s->Cw * K1;
    for (int e = 0; e < s->Cw; e++)
        for (int k = 0; k < K1; k++) {
            int t = v->L - K1 + k;
            win[(size_t)e * K1 + k] = t >= 0 ? v->conv_in[(size_t)t * v->ldz + e] : 0.0f;
        }
}

ssm_status ssm_model_prefill(ssm_model *m, ssm_gen_state *s, const int *tokens, int n, float *logits)
{
    const ssm_config *c = &m->cfg;
    if (!state_matches(c, s))
        return ssm_fail(SSM_ERR_USAGE, "generation state was not built for this model");
    if (s->pos != 0 || n < 1)
        return ssm_fail(SSM_ERR_USAGE, "a prefill starts a sequence: position %ld, %d tokens", s->pos, n);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->V)
            return ssm_fail(SSM_ERR_DATA, "token id %d at position %d is outside the vocabulary [0, %d)",
                            tokens[i], i, s->V);
    const ssm_probe *outer = m->probe;
    ssm_probe p = {.on_layer = prefill_window, .ctx = s, .final_h = s->h};
    /* a Mamba-2 layer honours only a probe's on_layer and final_h, and
     * ssm_model_set_probe refuses Mamba-2 probes until the measurements
     * cover it: this one is attached directly */
    ssm_status st = c->arch == SSM_ARCH_MAMBA2 ? SSM_OK : ssm_model_set_probe(m, &p);
    if (c->arch == SSM_ARCH_MAMBA2) m->probe = &p;
    ssm_batch b = {1, n, tokens, NULL, NULL};
    if (!st) st = ssm_model_forward_last(m, &b);   /* the head on the last position */
    m->last = NULL;   /* the batch goes out of scope */
    m->probe = outer;   /* generation runs the model as it is: no interventions */
    if (st) {
        ssm_gen_state_reset(s);
        return st;
    }
    memcpy(logits, m->acts.logits, sizeof(float) * s->V);
    s->pos = n;
    return SSM_OK;
}

ssm_status ssm_model_step(const ssm_model *m, ssm_gen_state *s, int token, float *logits)
{
    const ssm_config *c = &m->cfg;
    if (!state_matches(c, s))
        return ssm_fail(SSM_ERR_USAGE, "generation state was not built for this model");
    if (token < 0 || token >= s->V)
        return ssm_fail(SSM_ERR_DATA, "token id %d at position %ld is outside the vocabulary [0, %d)",
                        token, s->pos, s->V);
    step_weight emb = weight_at(m->params.embedding, m->wbf.embedding, (size_t)token, s->D);
    if (emb.h) for (int d = 0; d < s->D; d++) s->x[d] = ssm_bf16_to_f32(emb.h[d]);
    else memcpy(s->x, emb.f, sizeof(float) * s->D);
    for (int l = 0; l < c->n_layer; l++) {
        if (c->arch == SSM_ARCH_MAMBA2) {   /* Mamba-2 layers */
            layer_step_mamba2(c, &m->params, s, l);
            continue;
        }
        step_params p = step_params_view(m, l);
        layer_step(c, &p, s, l);
    }
    rmsnorm_step(s->xn, s->x, m->params.norm_f, s->D, c->norm_eps);
    step_weight head = m->params.lm_head || m->wbf.lm_head
                     ? weight_at(m->params.lm_head, m->wbf.lm_head, 0, 0)
                     : weight_at(m->params.embedding, m->wbf.embedding, 0, 0);
    matvec_w(logits, head, s->xn, NULL, s->V, s->D);
    s->pos++;
    return SSM_OK;
}
