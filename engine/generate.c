/* generate.c — the recurrent step of ssmlab-math(7) MODEL for generation: one token
 * through every layer (RMSNorm, in_proj, conv over a window of past inputs,
 * SiLU, x_proj, dt_proj + softplus, one scan step, D skip, gate, out_proj,
 * residual), the final norm and the LM head, with matrix-vector products.
 * One OpenMP team runs the whole token: every product, the conv and the
 * scan step are split into row blocks with barriers between phases.  Each
 * row, channel or Mamba-2 head is computed whole by one thread, so the bits
 * do not depend on the split (bf16 products and Mamba-2's heads follow the
 * threads' speeds, float32 products and the rest split evenly), and a
 * thread count always gives the same bits.  A model with bf16 weights
 * (engine/model.h; Mamba-1 or Mamba-2) multiplies by them directly
 * (engine/bf16.h). */
#include "engine/generate.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/balance.h"
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


/* rows [r0, r1) of y (M) = W (M, K) x (K) [+ bias (M)], W float32 (a
 * single-threaded sgemv) or bf16; then, if add_to, add_to[r0, r1) += y */
static void matvec_range(float *y, step_weight W, const float *x, const float *bias, float *add_to,
                         int r0, int r1, int K)
{
    if (r1 <= r0) return;
    if (W.h) {
        ssm_bf16_matvec(SSM_BF16_AUTO, y + r0, W.h + (size_t)r0 * K, x, r1 - r0, K);
        for (int i = r0; bias && i < r1; i++) y[i] += bias[i];
    } else {
        if (bias) memcpy(y + r0, bias + r0, sizeof(float) * (r1 - r0));
        cblas_sgemv(CblasRowMajor, CblasNoTrans, r1 - r0, K, 1.0f, W.f + (size_t)r0 * K, K, x, 1,
                    bias ? 1.0f : 0.0f, y + r0, 1);
    }
    for (int i = r0; add_to && i < r1; i++) add_to[i] += y[i];
}

/* The calling thread's rows of the product by ssm_split_rows: for a phase
 * whose next step keeps the same split. */
static void matvec_rows(float *y, step_weight W, const float *x, const float *bias, int M, int K)
{
    int lo, hi;
    ssm_split_rows(M, &lo, &hi);
    matvec_range(y, W, x, bias, NULL, lo, hi, K);
}

/* A bf16 product's tail: its last eighth of rows, claimed TAIL_CHUNK bytes
 * of W at a time by whichever thread is free, so a thread the host slowed
 * within the product does not hold the others at its barrier. */
#define TAIL_CHUNK 32768

/* s->claim's slots: each layer's in_proj and out_proj, then the head */
#define SLOT_IN(l) (2 * (l))
#define SLOT_OUT(l) (2 * (l) + 1)
#define SLOT_HEAD(n_layer) (2 * (n_layer))

/* The calling thread's share of y (M) = W (M, K) x (K), then add_to += y on
 * those rows if add_to.  bf16 products split their head by speed, then the
 * threads claim the tail's chunks from s->claim[slot], and time themselves;
 * float32 ones split evenly, since sgemv's sums may depend on the block. */
static void matvec_share(ssm_gen_state *s, int phase, int slot, float *y, step_weight W, const float *x,
                         float *add_to, int M, int K)
{
    int lo, hi;
    if (!W.h) {
        ssm_split_rows(M, &lo, &hi);
        matvec_range(y, W, x, NULL, add_to, lo, hi, K);
        return;
    }
    int chunk = TAIL_CHUNK / (2 * K) > 0 ? TAIL_CHUNK / (2 * K) : 1, head = M - M / 8, rows;
    ssm_balance_rows(&s->balance[phase], head, 1, &lo, &hi);
    double t0 = omp_get_wtime();
    matvec_range(y, W, x, NULL, add_to, lo, hi, K);
    rows = hi - lo;
    for (;;) {
        int r0 = head + __atomic_fetch_add(&s->claim[slot], chunk, __ATOMIC_RELAXED);
        if (r0 >= M) break;
        int r1 = r0 + chunk < M ? r0 + chunk : M;
        matvec_range(y, W, x, NULL, add_to, r0, r1, K);
        rows += r1 - r0;
    }
    ssm_balance_done(&s->balance[phase], t0, (double)rows * K);
}

/* y (D) = x / sqrt(mean(x^2) + eps) * w, summed in model.c's order */
static void rmsnorm_step(float *y, const float *x, const float *w, int D, float eps)
{
    float ss = 0.0f;
    for (int d = 0; d < D; d++) ss += x[d] * x[d];
    float r = 1.0f / sqrtf(ss / D + eps);
    for (int d = 0; d < D; d++) y[d] = x[d] * r * w[d];
}

/* The RMSNorm of the residual x into the calling thread's own row of xn:
 * every thread of the team computes the same row in the same order, so no
 * thread waits for another's (x is whole after the previous barrier). */
static const float *norm_mine(ssm_gen_state *s, const float *w, float eps)
{
    float *xn = s->xn + (size_t)omp_get_thread_num() * s->D;
    rmsnorm_step(xn, s->x, w, s->D, eps);
    return xn;
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

/* x <- x + Mixer(RMSNorm(x)) for layer l, one token, by the threads of the
 * calling team (one thread outside a region).  Each phase splits its rows
 * or channels (in_proj and out_proj by matvec_share, the rest by
 * ssm_split_rows) and ends at a barrier where the next needs all of them;
 * dt_proj, softplus, the scan step and the gate share the channel split
 * and run without one. */
static void layer_step(const ssm_config *c, const step_params *p, ssm_gen_state *s, int l)
{
    int D = s->D, E = s->E, R = s->R, K = s->K, X = R + 2 * s->Ns, lo, hi;
    size_t EN = (size_t)E * s->Ns;
    const float *xn = norm_mine(s, p->norm_w, c->norm_eps);
    matvec_share(s, SSM_GEN_IN_PROJ, SLOT_IN(l), s->xz, p->in_proj, xn, NULL, 2 * E, D);
#pragma omp barrier
    ssm_split_rows(E, &lo, &hi);
    conv_step(s->u + lo, s->conv + ((size_t)l * E + lo) * (K - 1), s->xz + lo,
              p->conv_w + (size_t)lo * K, p->conv_b + lo, hi - lo, K);
    silu_inplace(s->u + lo, hi - lo);
#pragma omp barrier
    matvec_rows(s->xdbl, p->x_proj, s->u, NULL, X, E);
#pragma omp barrier
    const float *Bt = s->xdbl + R, *Ct = Bt + s->Ns;
    double t0 = omp_get_wtime();
    if (p->dt_proj_w.h) ssm_balance_rows(&s->balance[SSM_GEN_CHANNELS], E, 1, &lo, &hi);
    matvec_range(s->delta, p->dt_proj_w, s->xdbl, p->dt_proj_b, NULL, lo, hi, R);
    softplus_inplace(s->delta + lo, hi - lo);
    ssm_scan_step(hi - lo, s->Ns, s->u + lo, s->delta + lo, Bt, Ct, s->A + l * EN + (size_t)lo * s->Ns,
                  p->Dskip + lo, s->h + l * EN + (size_t)lo * s->Ns, s->y + lo);
    gate(s->y + lo, s->xz + E + lo, hi - lo);
    ssm_balance_done(&s->balance[SSM_GEN_CHANNELS], t0, hi - lo);
#pragma omp barrier
    matvec_share(s, SSM_GEN_OUT_PROJ, SLOT_OUT(l), s->mix, p->out_proj, s->y, s->x, D, E);
#pragma omp barrier
}

/* One Mamba-2 layer's parameter views (in_proj and out_proj in bf16 in a
 * bf16 model, as Mamba-1's matrices) */
typedef struct {
    const float *norm_w, *conv_w, *conv_b, *dt_bias, *Dskip, *gnorm_w;
    step_weight in_proj, out_proj;
} step_params_m2;

static step_params_m2 step_params_mamba2(const ssm_model *m, int l)
{
    const ssm_config *c = &m->cfg;
    const ssm_params *p = &m->params;
    size_t D = c->d_model, E = c->d_inner, H = c->n_heads, K = c->d_conv,
           Cw = E + 2 * (size_t)c->n_groups * c->d_state, W = E + Cw + H;
    step_params_m2 v = {
        p->norm_w + l * D, p->m2_conv_w + l * Cw * K, p->m2_conv_b + l * Cw, p->m2_dt_bias + l * H,
        p->m2_D + l * H, p->m2_norm_w + l * E,
        weight_at(p->m2_in_proj, m->wbf.m2_in_proj, l, W * D),
        weight_at(p->out_proj, m->wbf.out_proj, l, D * E)};
    return v;
}

/* x <- x + Mixer(RMSNorm(x)) for Mamba-2 layer l, one token
 * (ssmlab-math(7) MAMBA-2): the SSD recurrence one step per head.  The
 * team shares in_proj and out_proj (matvec_share), the conv's channels
 * (ssm_split_rows), the heads (dt, softplus, the SSD step and the gate
 * y SiLU(z) of each head, split by the threads' speeds) and the gated
 * norm's groups; each channel, head and group is computed whole by one
 * thread, so the bits do not depend on the split. */
static void layer_step_mamba2(const ssm_config *c, const step_params_m2 *p, ssm_gen_state *s, int l)
{
    int D = s->D, E = s->E, K = s->K, Cw = s->Cw, W = s->Wz, H = c->n_heads, P = c->head_dim,
        G = c->n_groups, N = c->d_state, GN = G * N, Gs = E / G, lo, hi;
    size_t EN = (size_t)E * s->Ns;
    float *xbc = s->u, *dt = s->delta, *yz = s->delta;   /* (Cw); (H), then (E) */
    const float *xn = norm_mine(s, p->norm_w, c->norm_eps);
    matvec_share(s, SSM_GEN_IN_PROJ, SLOT_IN(l), s->xz, p->in_proj, xn, NULL, W, D);
#pragma omp barrier
    ssm_split_rows(Cw, &lo, &hi);
    conv_step(xbc + lo, s->conv + ((size_t)l * Cw + lo) * (K - 1), s->xz + E + lo,
              p->conv_w + (size_t)lo * K, p->conv_b + lo, hi - lo, K);
    silu_inplace(xbc + lo, hi - lo);
#pragma omp barrier
    double t0 = omp_get_wtime();
    ssm_balance_rows(&s->balance[SSM_GEN_CHANNELS], H, 1, &lo, &hi);
    for (int h = lo; h < hi; h++) dt[h] = s->xz[E + Cw + h] + p->dt_bias[h];
    softplus_inplace(dt + lo, hi - lo);
    ssm_ssd_step(lo, hi, H, P, G, N, xbc, xbc + E, xbc + E + GN, dt, s->A + l * EN, p->Dskip,
                 s->h + l * EN, s->y);
    ssm_balance_done(&s->balance[SSM_GEN_CHANNELS], t0, hi - lo);
#pragma omp barrier
    /* the gated norm, a group per call: yz is the dt buffer, free now */
    ssm_split_rows(G, &lo, &hi);
    if (hi > lo)
        ssm_mamba2_gated_norm(s->y + (size_t)lo * Gs, yz + (size_t)lo * Gs, NULL, s->y + (size_t)lo * Gs,
                              s->xz + (size_t)lo * Gs, p->gnorm_w + (size_t)lo * Gs, (hi - lo) * Gs,
                              hi - lo, c->norm_eps);
#pragma omp barrier
    matvec_share(s, SSM_GEN_OUT_PROJ, SLOT_OUT(l), s->mix, p->out_proj, s->y, s->x, D, E);
#pragma omp barrier
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
    s->xn = p;    p += SSM_GEN_TEAM_MAX * D;
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
    size_t total = nl * s->Cw * (s->K - 1) + 2 * nl * EN + (1 + SSM_GEN_TEAM_MAX) * (size_t)s->D + s->Wz +
                   s->Cw + (size_t)s->R + 2 * s->Ns + 2 * E + s->D;
    s->memory = malloc(sizeof(float) * total);
    s->claim = malloc(sizeof(int) * (SLOT_HEAD(nl) + 1));
    if (!s->memory || !s->claim) {
        free(s->memory);
        free(s->claim);
        memset(s, 0, sizeof *s);
        return ssm_fail(SSM_ERR_NOMEM, "cannot allocate the generation state (%zu floats)", total);
    }
    state_views(s);
    for (int ph = 0; ph < SSM_GEN_PHASES; ph++)
        ssm_balance_reset(&s->balance[ph]);
    ssm_scenario_forward(c, &m->params);
    state_fill_A(s, c, &m->params);
    ssm_gen_state_reset(s);
    return SSM_OK;
}

void ssm_gen_state_free(ssm_gen_state *s)
{
    free(s->memory);
    free(s->claim);
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
    ssm_status st = ssm_model_set_probe(m, &p);
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
    step_weight head = m->params.lm_head || m->wbf.lm_head
                     ? weight_at(m->params.lm_head, m->wbf.lm_head, 0, 0)
                     : weight_at(m->params.embedding, m->wbf.embedding, 0, 0);
    /* one team for the whole token: a barrier between phases costs less
     * than a region per product */
    memset(s->claim, 0, sizeof(int) * (SLOT_HEAD((size_t)s->n_layer) + 1));
    int team = omp_get_max_threads() < SSM_GEN_TEAM_MAX ? omp_get_max_threads() : SSM_GEN_TEAM_MAX;
#pragma omp parallel num_threads(team) if (team > 1 && (long)s->D * s->E >= SSM_SPLIT_MIN_WORK)
    {
        for (int l = 0; l < c->n_layer; l++) {
            if (c->arch == SSM_ARCH_MAMBA2) {
                step_params_m2 p = step_params_mamba2(m, l);
                layer_step_mamba2(c, &p, s, l);
                continue;
            }
            step_params p = step_params_view(m, l);
            layer_step(c, &p, s, l);
        }
        const float *xn = norm_mine(s, m->params.norm_f, c->norm_eps);
        matvec_share(s, SSM_GEN_HEAD, SLOT_HEAD(c->n_layer), logits, head, xn, NULL, s->V, s->D);
#pragma omp barrier
#pragma omp single
        for (int ph = 0; ph < SSM_GEN_PHASES; ph++)   /* after a token */
            ssm_balance_update(&s->balance[ph], omp_get_num_threads());
    }
    s->pos++;
    return SSM_OK;
}
