/* mamba2.c — the Mamba-2 layer of ssmlab-math(7) MAMBA-2, forward and
 * backward, with its parameter, activation and scratch views (llm.c style:
 * tables of {view, floats} carved out of model.c's blocks).  GEMMs through
 * model.c's building blocks, the conv through engine/scan.c, the SSD scan
 * through engine/ssd.c; elementwise work spread with OpenMP over rows in a
 * fixed order, so the same thread count gives the same bits. */
#include "engine/mamba2.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "engine/bf16.h"
#include "engine/layout.h"
#include "engine/scan.h"
#include "engine/ssd.h"
#include "engine/vmath.h"

ssm_status ssm_mamba2_config_check(ssm_config *c)
{
    if (c->arch < 0 || c->arch >= SSM_ARCH_COUNT)
        return ssm_fail(SSM_ERR_CONFIG, "arch = %d is unknown (mamba1 or mamba2)", c->arch);
    if (c->arch != SSM_ARCH_MAMBA2) return SSM_OK;
    int E = c->d_inner;
    if (c->head_dim < 1 || c->head_dim > E || E % c->head_dim)
        return ssm_fail(SSM_ERR_CONFIG, "head_dim = %d must divide d_inner = expand * d_model = %d",
                        c->head_dim, E);
    /* polarization: pinned heads on top of the E / P learned ones */
    c->n_heads = E / c->head_dim + c->n_one + c->n_zero;
    c->d_inner = c->n_heads * c->head_dim;
    c->state_dim = c->d_state;   /* the pinned ones are heads, not state channels */
    if (c->n_groups < 1 || c->n_heads % c->n_groups)
        return ssm_fail(SSM_ERR_CONFIG, "n_groups = %d must divide the %d heads (d_inner / head_dim%s)",
                        c->n_groups, c->n_heads, c->polarize ? ", with the polarized ones" : "");
    if (c->chunk_size < 1 || c->chunk_size > 4096)
        return ssm_fail(SSM_ERR_CONFIG, "chunk_size = %d is out of range [1, 4096]", c->chunk_size);
    if (c->input_kind != SSM_INPUT_TOKENS || c->n_classes || c->scenario || c->reorder)
        return ssm_fail(SSM_ERR_CONFIG, "arch mamba2 is a language model on tokens: no continuous "
                        "input, classifier head, scenario or reordering");
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Views                                                                    */

typedef struct { /* sizes of one layer */
    int B, L, BT, D, E, H, P, G, N, K, W, Cw;
} dims;

static dims dims_of(const ssm_config *c, int B, int L)
{
    int E = c->d_inner, GN = c->n_groups * c->d_state;
    dims d = {B, L, B * L, c->d_model, E, c->n_heads, c->head_dim, c->n_groups, c->d_state,
              c->d_conv, 2 * E + 2 * GN + c->n_heads, E + 2 * GN};
    return d;
}

typedef struct { /* one layer's parameters or gradients */
    float *norm_w;   /* (D)     pre-mixer RMSNorm */
    float *in_proj;  /* (W, D) */
    float *conv_w;   /* (Cw, K) */
    float *conv_b;   /* (Cw) */
    float *dt_bias;  /* (H) */
    float *A_log;    /* (H) */
    float *Dskip;    /* (H) */
    float *gnorm_w;  /* (E)     gated RMSNorm */
    float *out_proj; /* (D, E) */
} layer_params;

/* p + off, or NULL for a tensor held in bf16 */
static float *view_at(float *p, size_t off) { return p ? p + off : NULL; }

static layer_params params_view(const dims *d, const ssm_params *p, int l)
{
    size_t D = d->D, E = d->E, H = d->H;
    layer_params v = {p->norm_w + l * D, view_at(p->m2_in_proj, l * (size_t)d->W * D),
                      p->m2_conv_w + l * (size_t)d->Cw * d->K, p->m2_conv_b + l * (size_t)d->Cw,
                      p->m2_dt_bias + l * H, p->m2_A_log + l * H, p->m2_D + l * H,
                      p->m2_norm_w + l * E, view_at(p->out_proj, l * D * E)};
    return v;
}

/* A bf16 model's (SSM_WEIGHTS_BF16) in_proj and out_proj of layer l
 * widened into m->widen (model.c reserves it before a pass: W D + D E
 * floats), reused by the next layer; the forward and the input-only
 * backward run the usual GEMMs on them, as Mamba-1's layers do */
static void params_widen(const ssm_model *m, const dims *d, int l, layer_params *v)
{
    if (m->weights != SSM_WEIGHTS_BF16) return;
    size_t nin = (size_t)d->W * d->D, nout = (size_t)d->D * d->E;
    ssm_bf16_widen(m->widen, m->wbf.m2_in_proj + l * nin, nin);
    ssm_bf16_widen(m->widen + nin, m->wbf.out_proj + l * nout, nout);
    v->in_proj = m->widen;
    v->out_proj = m->widen + nin;
}

typedef struct { /* one layer's activations, (B, L, ...) unless said */
    float *zx;      /* (BT, W)  in_proj output [z; xBC; dt_raw - dt_bias] */
    float *xbc_c;   /* (BT, Cw) conv output before SiLU */
    float *xbc;     /* (BT, Cw) SiLU(conv): [x; B; C] */
    float *dt;      /* (BT, H)  softplus(dt_raw) */
    float *y;       /* (BT, E)  SSD output incl. D x */
    float *yz;      /* (BT, E)  y * SiLU(z) */
    float *rstd_g;  /* (BT, G)  the gated norm's 1/rms of each group */
    float *yn;      /* (BT, E)  gated norm output (out_proj input) */
    float *states;  /* (B, H, nc, P, N) the state entering each SSD chunk */
} layer_acts;
#define ACT_ENTRIES 9

static void acts_table(const ssm_config *c, const dims *d, layer_acts *a, ssm_layout_entry t[ACT_ENTRIES])
{
    size_t BT = d->BT, nc = ssm_ssd_chunks(d->L, c->chunk_size);
    const ssm_layout_entry list[] = {
        {&a->zx, BT * d->W},   {&a->xbc_c, BT * d->Cw}, {&a->xbc, BT * d->Cw},
        {&a->dt, BT * d->H},   {&a->y, BT * d->E},      {&a->yz, BT * d->E},
        {&a->rstd_g, BT * d->G}, {&a->yn, BT * d->E},
        {&a->states, (size_t)d->B * d->H * nc * d->P * d->N},
    };
    _Static_assert(sizeof list / sizeof list[0] == ACT_ENTRIES, "one entry per activation");
    memcpy(t, list, sizeof list);
}

size_t ssm_mamba2_acts_size(const ssm_config *c, int B, int L)
{
    dims d = dims_of(c, B, L);
    layer_acts a;
    ssm_layout_entry t[ACT_ENTRIES];
    acts_table(c, &d, &a, t);
    return ssm_layout_size(t, ACT_ENTRIES, 1);
}

typedef struct { /* the mixers' scratch */
    float *A;       /* (H)  A of the current layer */
    float *dA;      /* (H) */
    float *work;    /* (work_n) the SSD's and the conv backward's work space */
    size_t work_n;
    /* backward only */
    float *dzx;     /* (BT, W) */
    float *dxbc;    /* (BT, Cw) */
    float *dy;      /* (BT, E) */
    float *dyz;     /* (BT, E) */
    float *ddt;     /* (BT, H) */
    float *sink;    /* (H + Cw (K + 1)) an input-only backward's dD, dconv_w and
                     * dconv_b, which the kernels sum as they go: dropped */
} layer_scratch;
#define SCRATCH_ENTRIES 9

static ssm_ssd_args ssd_shape(const ssm_config *c, const dims *d)
{
    ssm_ssd_args s = {.B = d->B, .L = d->L, .H = d->H, .P = d->P, .G = d->G, .N = d->N,
                      .Q = c->chunk_size};
    return s;
}

static void scratch_table(const ssm_config *c, const dims *d, int threads, int bw, layer_scratch *g,
                          ssm_layout_entry t[SCRATCH_ENTRIES])
{
    size_t BT = d->BT, b = bw != 0;
    ssm_ssd_args sa = ssd_shape(c, d);
    size_t conv = bw ? ssm_conv_work_size(d->B, d->Cw, d->K) : 0;
    g->work_n = ssm_ssd_work_size(&sa, threads, bw);
    if (conv > g->work_n) g->work_n = conv;
    const ssm_layout_entry list[] = {
        {&g->A, d->H}, {&g->dA, d->H}, {&g->work, g->work_n},
        {&g->dzx, b * BT * d->W}, {&g->dxbc, b * BT * d->Cw}, {&g->dy, b * BT * d->E},
        {&g->dyz, b * BT * d->E}, {&g->ddt, b * BT * d->H},
        {&g->sink, b * (d->H + (size_t)d->Cw * (d->K + 1))},
    };
    _Static_assert(sizeof list / sizeof list[0] == SCRATCH_ENTRIES, "one entry per scratch buffer");
    memcpy(t, list, sizeof list);
}

size_t ssm_mamba2_scratch_size(const ssm_config *c, int B, int L, int threads, int backward)
{
    dims d = dims_of(c, B, L);
    layer_scratch g;
    ssm_layout_entry t[SCRATCH_ENTRIES];
    scratch_table(c, &d, threads, backward, &g, t);
    return ssm_layout_size(t, SCRATCH_ENTRIES, 1);
}

typedef struct { /* everything a layer's pass works on */
    dims d;
    layer_params p, dp;     /* dp: gradients (NULL views without) */
    layer_acts a;
    layer_scratch g;
    float *x, *rstd, *xn, *mix, *xout;   /* model.c's (B, L, D) rows and (B, L) rstd */
    float *final_h;   /* (B, H, P, N) the attached probe's state after the last token, or NULL */
    int layer;
    const ssm_probe *probe;   /* the attached probe, or NULL */
} layer_run;

static layer_run run_view(ssm_model *m, int l, float *scratch)
{
    const ssm_config *c = &m->cfg;
    layer_run r;
    memset(&r, 0, sizeof r);
    r.d = dims_of(c, m->act_B, m->act_L);
    int kept = ssm_model_keeps_acts(m);   /* gradients, or an input-only backward */
    size_t BT = r.d.BT, D = r.d.D, k = kept ? (size_t)l : 0;   /* kept layer */
    r.p = params_view(&r.d, &m->params, l);
    params_widen(m, &r.d, l, &r.p);
    if (m->grads_memory) r.dp = params_view(&r.d, &m->grads, l);
    ssm_layout_entry at[ACT_ENTRIES], st[SCRATCH_ENTRIES];
    acts_table(c, &r.d, &r.a, at);
    ssm_layout_carve(at, ACT_ENTRIES, 1, m->acts.m2 + k * ssm_mamba2_acts_size(c, r.d.B, r.d.L));
    scratch_table(c, &r.d, m->act_threads, kept, &r.g, st);
    ssm_layout_carve(st, SCRATCH_ENTRIES, 1, scratch);
    if (kept && !m->grads_memory) {   /* input-only: the kernels' sums land in the sink */
        r.dp.Dskip = r.g.sink;
        r.dp.conv_w = r.g.sink + r.d.H;
        r.dp.conv_b = r.dp.conv_w + (size_t)r.d.Cw * r.d.K;
    }
    r.x = ssm_model_resid(m, l);
    r.xout = ssm_model_resid(m, l + 1);
    r.rstd = m->acts.rstd + k * BT;
    r.xn = m->acts.xn + k * BT * D;
    r.mix = ssm_model_mix(m, l);
    if (m->probe && m->probe->final_h)
        r.final_h = m->probe->final_h + (size_t)l * r.d.B * r.d.E * r.d.N;
    r.layer = l;
    r.probe = m->probe;
    return r;
}

static ssm_ssd_args ssd_args(const ssm_config *c, const layer_run *r)
{
    const dims *d = &r->d;
    ssm_ssd_args s = ssd_shape(c, d);
    s.x = r->a.xbc;
    s.ld_x = d->Cw;
    s.Bm = r->a.xbc + d->E;
    s.Cm = r->a.xbc + d->E + d->G * d->N;
    s.ld_bc = d->Cw;
    s.dt = r->a.dt;
    s.A = r->g.A;
    s.Dskip = r->p.Dskip;
    s.states = r->a.states;
    s.work = r->g.work;
    s.work_n = r->g.work_n;
    return s;
}

static ssm_conv_args conv_args(const layer_run *r)
{
    const dims *d = &r->d;
    ssm_conv_args ca = {d->B, d->L, d->Cw, d->K, r->a.zx + d->E, d->W, r->p.conv_w, r->p.conv_b,
                        r->g.work, r->g.work_n};
    return ca;
}

/* ------------------------------------------------------------------------ */
/* Forward                                                                  */

void ssm_mamba2_layer_A(const ssm_config *c, const float *A_log, float *A)
{
    int H = c->n_heads;
    for (int h = 0; h < H; h++)
        A[h] = h < c->n_one ? SSM_A_ONE_POLARIZED
             : h >= H - c->n_zero ? SSM_A_ZERO_POLARIZED : -expf(A_log[h]);
}

static int head_pinned(const ssm_config *c, int h) { return h < c->n_one || h >= c->n_heads - c->n_zero; }

/* the layer's A (H) as run: the polarized heads' constants, then the
 * attached probe's pins replace A_h */
static void layer_A(const ssm_config *c, const layer_run *r)
{
    ssm_mamba2_layer_A(c, r->p.A_log, r->g.A);
    ssm_probe_pin_A(r->probe, r->layer, r->d.H, 1, r->g.A);
}
/* The attached probe's part of the layer's SSD: the keep mask of its
 * ablations, and in a whole forward the states and the state patch.  Any of
 * them makes engine/ssd.c run the naive recurrent twin for this layer
 * (ablations: forward and backward). */
static void probe_ssd_args(ssm_model *m, const layer_run *r, int in_model, ssm_ssd_args *sa)
{
    const ssm_probe *pr = m->probe;
    if (!pr) return;
    if (ssm_probe_keep(pr, r->layer, r->d.H, r->d.P * r->d.N, m->probe_keep)) sa->keep = m->probe_keep;
    if (!in_model) return;
    if (pr->want_states) sa->h_out = m->probe_h;
    if (pr->patch_kind == SSM_PATCH_STATE && pr->patch_layer == r->layer) {
        sa->patch_h = pr->patch_value;
        sa->patch_t = pr->patch_pos;
    }
}

ssm_status ssm_mamba2_scan_inputs(const ssm_model *m, int layer, const float **xbc, const float **dt,
                                  float *A)
{
    const ssm_config *c = &m->cfg;
    if (c->arch != SSM_ARCH_MAMBA2 || !m->acts_memory || !m->acts.m2 || m->act_B < 1)
        return ssm_fail(SSM_ERR_SOFTWARE, "the Mamba-2 scan inputs need a Mamba-2 forward first");
    if (layer < 0 || layer >= c->n_layer)
        return ssm_fail(SSM_ERR_USAGE, "layer %d is outside [0, %d)", layer, c->n_layer);
    int kept = ssm_model_keeps_acts(m);
    if (!kept && layer != c->n_layer - 1)
        return ssm_fail(SSM_ERR_SOFTWARE, "activations of layer %d are not kept: call "
                        "ssm_model_keep_for_backward before the forward", layer);
    dims d = dims_of(c, m->act_B, m->act_L);
    size_t k = kept ? (size_t)layer : 0;   /* kept layer */
    layer_acts a;
    ssm_layout_entry at[ACT_ENTRIES];
    acts_table(c, &d, &a, at);
    ssm_layout_carve(at, ACT_ENTRIES, 1, m->acts.m2 + k * ssm_mamba2_acts_size(c, d.B, d.L));
    *xbc = a.xbc;
    *dt = a.dt;
    ssm_mamba2_layer_A(c, m->params.m2_A_log + (size_t)layer * d.H, A);
    ssm_probe_pin_A(m->probe, layer, d.H, 1, A);
    return SSM_OK;
}

void ssm_mamba2_gated_norm(float *yn, float *yz, float *rstd, const float *y, const float *z,
                           const float *w, int E, int G, float eps)
{
    int Gs = E / G;
    for (int e = 0; e < E; e++) yz[e] = y[e] * ssm_siluf(z[e]);
    for (int g = 0; g < G; g++) {
        float ss = 0.0f;
        for (int e = g * Gs; e < (g + 1) * Gs; e++) ss += yz[e] * yz[e];
        float rs = 1.0f / sqrtf(ss / Gs + eps);
        if (rstd) rstd[g] = rs;
        for (int e = g * Gs; e < (g + 1) * Gs; e++) yn[e] = yz[e] * rs * w[e];
    }
}

/* yz = y SiLU(z); yn = yz / rms over each group of E/G channels * w */
static void gated_norm_forward(const layer_run *r, float eps)
{
    const dims *d = &r->d;
    int E = d->E;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < d->BT; i++)
        ssm_mamba2_gated_norm(r->a.yn + (size_t)i * E, r->a.yz + (size_t)i * E,
                              r->a.rstd_g + (size_t)i * d->G, r->a.y + (size_t)i * E,
                              r->a.zx + (size_t)i * d->W, r->p.gnorm_w, E, d->G, eps);
}

/* r->mix = Mixer(r->xn), steps 1-6 of ssmlab-math(7) MAMBA-2; in_model:
 * a pass of the whole model (the probe's states, patch and final_h),
 * else a one-layer run (only its ablations and pins) */
static ssm_status mixer_forward(ssm_model *m, const ssm_config *c, const layer_run *r, int in_model)
{
    const dims *d = &r->d;
    int BT = d->BT, E = d->E, H = d->H, Cw = d->Cw;
    ssm_model_matmul_forward(&m->balance, r->a.zx, d->W, r->xn, d->D, r->p.in_proj, NULL, BT, d->W, d->D);
    ssm_conv_args ca = conv_args(r);
    ssm_conv_forward(&ca, r->a.xbc_c);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < BT; i++) {
        for (int j = 0; j < Cw; j++)
            r->a.xbc[(size_t)i * Cw + j] = ssm_siluf(r->a.xbc_c[(size_t)i * Cw + j]);
        for (int h = 0; h < H; h++)
            r->a.dt[(size_t)i * H + h] = ssm_softplusf(r->a.zx[(size_t)i * d->W + E + Cw + h] + r->p.dt_bias[h]);
    }
    layer_A(c, r);
    ssm_ssd_args sa = ssd_args(c, r);
    if (in_model) sa.h_last = r->final_h;
    probe_ssd_args(m, r, in_model, &sa);
    if (!ssm_model_keeps_acts(m)) {   /* no backward follows: no chunk states, the smaller chunk */
        ssm_ssd_args small = sa;
        small.Q = ssm_ssd_infer_chunk(sa.Q);
        small.states = NULL;
        if (ssm_ssd_work_size(&small, omp_get_max_threads(), 0) <= sa.work_n) sa = small;
    }
    ssm_status st = ssm_ssd_forward(&sa, r->a.y);
    if (st) return st;
    gated_norm_forward(r, c->norm_eps);
    ssm_model_matmul_forward(&m->balance, r->mix, d->D, r->a.yn, E, r->p.out_proj, NULL, BT, d->D, E);
    return SSM_OK;
}

/* The attached probe's hook after layer l: the Mamba-2 shapes of
 * engine/probe.h's ssm_layer_view */
static void probe_layer_done(const ssm_model *m, const layer_run *r, int l)
{
    const ssm_probe *pr = m->probe;
    if (!pr || !pr->on_layer) return;
    const dims *d = &r->d;
    ssm_layer_view v = {.layer = l, .B = d->B, .L = d->L, .D = d->D, .E = d->E, .Ns = d->N,
                        .x = r->x, .u = r->a.xbc, .ldu = d->Cw, .z = r->a.zx,
                        .conv_in = r->a.zx + d->E, .ldz = d->W, .delta = r->a.dt,
                        .Bm = r->a.xbc + d->E, .Cm = r->a.xbc + d->E + d->G * d->N, .ldbc = d->Cw,
                        .h = pr->want_states ? m->probe_h : NULL, .y = r->a.y, .out = r->mix,
                        .A = r->g.A, .H = d->H, .P = d->P, .G = d->G};
    pr->on_layer(pr->ctx, &v);
}

ssm_status ssm_mamba2_layer_forward(ssm_model *m, int layer, float *scratch)
{
    const ssm_config *c = &m->cfg;
    layer_run r = run_view(m, layer, scratch);
    size_t n = (size_t)r.d.BT * r.d.D;
    ssm_model_probe_patch_residual(m, layer);
    ssm_model_rmsnorm_forward(r.xn, r.rstd, r.x, r.p.norm_w, r.d.BT, r.d.D, c->norm_eps);
    ssm_status st = mixer_forward(m, c, &r, 1);
    if (st) return st;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) r.xout[i] = r.x[i] + r.mix[i];
    if (layer == 0) ssm_model_importance_proxy(m, r.a.dt, r.d.H);   /* ssmlab-math(7) MAMBA-2 */
    probe_layer_done(m, &r, layer);
    return SSM_OK;
}

ssm_status ssm_mamba2_mixer_forward(ssm_model *m, int layer, const float *in, float *out, float *scratch)
{
    layer_run r = run_view(m, layer, scratch);
    size_t n = (size_t)r.d.BT * r.d.D;
    memcpy(r.xn, in, sizeof(float) * n);
    ssm_status st = mixer_forward(m, &m->cfg, &r, 0);
    if (!st) memcpy(out, r.mix, sizeof(float) * n);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Backward                                                                 */

/* Backward of gated_norm_forward: g.dyz holds dL/dyn on entry; on exit
 * g.dy = dL/dy and the z columns of g.dzx = dL/dz; dgnorm_w accumulates */
static void gated_norm_backward(const layer_run *r)
{
    const dims *d = &r->d;
    int E = d->E, Gs = E / d->G;
    const float *w = r->p.gnorm_w;
    if (r->dp.gnorm_w) {   /* NULL in an input-only backward */
#pragma omp parallel for schedule(static)
        for (int e = 0; e < E; e++) {
            float s = 0.0f;
            for (int i = 0; i < d->BT; i++)
                s += r->g.dyz[(size_t)i * E + e] * r->a.yz[(size_t)i * E + e] *
                     r->a.rstd_g[(size_t)i * d->G + e / Gs];
            r->dp.gnorm_w[e] += s;
        }
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < d->BT; i++) {
        float *dyn = r->g.dyz + (size_t)i * E;   /* becomes dL/dyz in place */
        const float *yz = r->a.yz + (size_t)i * E, *y = r->a.y + (size_t)i * E,
                    *z = r->a.zx + (size_t)i * d->W;
        for (int g = 0; g < d->G; g++) {
            float rs = r->a.rstd_g[(size_t)i * d->G + g], dot = 0.0f;
            for (int e = g * Gs; e < (g + 1) * Gs; e++) dot += dyn[e] * w[e] * yz[e];
            float k = dot * rs * rs * rs / Gs;
            for (int e = g * Gs; e < (g + 1) * Gs; e++) dyn[e] = dyn[e] * w[e] * rs - yz[e] * k;
        }
        for (int e = 0; e < E; e++) {
            r->g.dy[(size_t)i * E + e] = dyn[e] * ssm_siluf(z[e]);
            r->g.dzx[(size_t)i * d->W + e] = dyn[e] * y[e] * ssm_dsiluf(z[e]);
        }
    }
}

/* dt = softplus(dt_raw + dt_bias): the dt columns of g.dzx and ddt_bias;
 * xbc = SiLU(xbc_c): g.dxbc becomes dL/dxbc_c */
static void pointwise_backward(const layer_run *r)
{
    const dims *d = &r->d;
    int BT = d->BT, E = d->E, H = d->H, Cw = d->Cw, W = d->W;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < BT; i++) {
        for (int h = 0; h < H; h++) {
            float raw = r->a.zx[(size_t)i * W + E + Cw + h] + r->p.dt_bias[h];
            r->g.ddt[(size_t)i * H + h] *= raw > 20.0f ? 1.0f : ssm_sigmoidf(raw);
            r->g.dzx[(size_t)i * W + E + Cw + h] = r->g.ddt[(size_t)i * H + h];
        }
        for (int j = 0; j < Cw; j++) r->g.dxbc[(size_t)i * Cw + j] *= ssm_dsiluf(r->a.xbc_c[(size_t)i * Cw + j]);
    }
    for (int h = 0; h < H && r->dp.dt_bias; h++) {
        float s = 0.0f;
        for (int i = 0; i < BT; i++) s += r->g.ddt[(size_t)i * H + h];
        r->dp.dt_bias[h] += s;
    }
}

ssm_status ssm_mamba2_layer_backward(ssm_model *m, int layer, float *dresid, float *dxn,
                                     float *scratch)
{
    const ssm_config *c = &m->cfg;
    layer_run r = run_view(m, layer, scratch);
    const dims *d = &r.d;
    int BT = d->BT, D = d->D, E = d->E, H = d->H;
    /* out_proj: dmix = dresid (the residual passes it through unchanged) */
    ssm_model_matmul_backward(r.g.dyz, E, 0.0f, r.dp.out_proj, NULL, dresid, D, r.a.yn, E,
                              r.p.out_proj, BT, D, E);
    gated_norm_backward(&r);
    /* SSD */
    layer_A(c, &r);
    memset(r.g.dA, 0, sizeof(float) * H);
    ssm_ssd_args sa = ssd_args(c, &r);
    probe_ssd_args(m, &r, 0, &sa);
    ssm_status st = ssm_ssd_backward(&sa, r.g.dy, r.g.dxbc, r.g.dxbc + E, r.g.dxbc + E + d->G * d->N,
                                     r.g.ddt, r.g.dA, r.dp.Dskip);
    if (st) return st;
    ssm_probe_unpin_grad(m->probe, layer, 1, r.g.dA);   /* a pinned A_h does not depend on A_log */
    for (int h = 0; h < H && r.dp.A_log; h++)   /* nor does a polarized head's constant A */
        if (!head_pinned(c, h)) r.dp.A_log[h] += r.g.dA[h] * r.g.A[h];
    pointwise_backward(&r);
    ssm_conv_args ca = conv_args(&r);
    ssm_conv_backward(&ca, r.g.dxbc, r.g.dzx + E, r.dp.conv_w, r.dp.conv_b);
    /* in_proj, then the norm; the residual adds dresid to dx_l */
    ssm_model_matmul_backward(dxn, D, 0.0f, r.dp.in_proj, NULL, r.g.dzx, d->W, r.xn, D,
                              r.p.in_proj, BT, d->W, D);
    ssm_model_rmsnorm_backward(dresid, r.dp.norm_w, dxn, r.x, r.rstd, r.p.norm_w, BT, D);
    return SSM_OK;
}
