/* model.c — the Mamba-1 residual model of ssmlab-math(7) MODEL: parameter block and
 * initialisation, activations, forward pass with loss, and backward pass.
 * GEMMs go to OpenBLAS; the scan and the conv go to scan.c; elementwise work
 * is spread with OpenMP.  Every reduction is in a fixed order, so the same
 * inputs and thread count give the same bits. */
#include "engine/model.h"

#include <cblas.h>
#include <ctype.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/bf16.h"
#include "engine/bound.h"
#include "engine/gemm_stats.h"
#include "engine/layout.h"
#include "engine/mamba2.h"
#include "engine/reorder.h"
#include "engine/scan.h"
#include "engine/scenario.h"
#include "engine/split.h"
#include "engine/vmath.h"

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */

void ssm_config_default(ssm_config *c)
{
    memset(c, 0, sizeof *c);
    c->d_model = 64;
    c->n_layer = 2;
    c->d_state = 16;
    c->d_conv = 4;
    c->expand = 2;
    c->dt_rank = 0;
    c->vocab_size = 256;
    c->pad_vocab_size_multiple = 8;
    c->input_kind = SSM_INPUT_TOKENS;
    c->d_input = 1;
    c->n_classes = 0;
    c->tie_embeddings = 1;
    c->norm_eps = 1e-5f;
    c->reorder_tau = 1.0f;
    c->arch = SSM_ARCH_MAMBA1;
    c->head_dim = 64;      /* Mamba-2's, mamba_ssm's defaults */
    c->n_groups = 1;
    c->chunk_size = 256;
}

static ssm_status config_check_range(const char *key, int v, int lo, int hi)
{
    if (v < lo || v > hi)
        return ssm_fail(SSM_ERR_CONFIG, "%s = %d is out of range [%d, %d]", key, v, lo, hi);
    return SSM_OK;
}

/* reorder_layers: layer 0 alone when unset, cleared without reordering;
 * every named layer must exist.  Derives n_reorder. */
static ssm_status config_reorder_layers(ssm_config *c)
{
    if (c->reorder == SSM_REORDER_OFF) c->reorder_layers = 0;
    else if (c->reorder_layers == 0) c->reorder_layers = 1;
    if (c->reorder != SSM_REORDER_OFF && !(c->reorder_tau > 0.0f && isfinite(c->reorder_tau)))
        return ssm_fail(SSM_ERR_CONFIG, "reorder_tau = %g must be a finite number > 0", c->reorder_tau);
    c->n_reorder = 0;
    for (int l = 0; l <= SSM_REORDER_MAX_LAYER; l++) {
        if (!(c->reorder_layers >> l & 1)) continue;
        if (l >= c->n_layer)
            return ssm_fail(SSM_ERR_CONFIG, "reorder_layers names layer %d, but the model's layers "
                            "are 0 to %d", l, c->n_layer - 1);
        c->n_reorder++;
    }
    return SSM_OK;
}

int ssm_reorder_slot(const ssm_config *c, int layer)
{
    if (layer < 0 || layer > SSM_REORDER_MAX_LAYER || !(c->reorder_layers >> layer & 1)) return -1;
    uint64_t below = layer ? c->reorder_layers & (~0ULL >> (64 - layer)) : 0;
    return __builtin_popcountll(below);
}

int ssm_reorder_layers_parse(const char *s, uint64_t *mask)
{
    uint64_t m = 0;
    for (;;) {
        if (!isdigit((unsigned char)*s)) return -1;
        char *end;
        long l = strtol(s, &end, 10);
        if (l > SSM_REORDER_MAX_LAYER) return -1;
        m |= 1ULL << l;
        if (!*end) break;
        if (*end != ',') return -1;
        s = end + 1;
    }
    *mask = m;
    return 0;
}

void ssm_reorder_layers_format(uint64_t mask, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap) buf[0] = 0;
    for (int l = 0; l <= SSM_REORDER_MAX_LAYER; l++)
        if (mask >> l & 1 && n < cap)
            n += snprintf(buf + n, cap - n, "%s%d", n ? "," : "", l);
}

ssm_status ssm_config_finalize(ssm_config *c)
{
    ssm_status st;
    if ((st = config_check_range("d_model", c->d_model, 1, 65536)) ||
        (st = config_check_range("n_layer", c->n_layer, 1, 1024)) ||
        (st = config_check_range("d_state", c->d_state, 1, 256)) ||
        (st = config_check_range("d_conv", c->d_conv, 1, 64)) ||
        (st = config_check_range("expand", c->expand, 1, 64)) ||
        (st = config_check_range("dt_rank", c->dt_rank, 0, 65536)) ||
        (st = config_check_range("n_classes", c->n_classes, 0, 1 << 20)) ||
        (st = config_check_range("pad_vocab_size_multiple", c->pad_vocab_size_multiple, 1, 1 << 16)))
        return st;
    if (c->scenario < 0 || c->scenario > SSM_SCENARIO_MIXED ||
        c->polarize < 0 || c->polarize > SSM_POLARIZE_BOTH ||
        c->reorder < 0 || c->reorder > SSM_REORDER_SOFT || c->pool < 0 || c->pool > SSM_POOL_CLS)
        return ssm_fail(SSM_ERR_CONFIG, "scenario, polarize, reorder or pool has an unknown value");
    if (!(c->norm_eps > 0.0f && c->norm_eps < 1.0f))
        return ssm_fail(SSM_ERR_CONFIG, "norm_eps = %g must be in (0, 1)", c->norm_eps);
    c->d_inner = c->expand * c->d_model;
    if (c->dt_rank == 0) c->dt_rank = (c->d_model + 15) / 16;
    c->n_zero = c->polarize == SSM_POLARIZE_ZERO || c->polarize == SSM_POLARIZE_BOTH;
    c->n_one = c->polarize == SSM_POLARIZE_ONE || c->polarize == SSM_POLARIZE_BOTH;
    c->state_dim = c->n_one + c->d_state + c->n_zero;
    if (c->scenario != SSM_SCENARIO_DEFAULT && c->d_inner < c->d_state)
        return ssm_fail(SSM_ERR_CONFIG, "scenario %s needs d_inner (%d) >= d_state (%d)",
                        ssm_scenario_name(c->scenario), c->d_inner, c->d_state);
    if (c->reorder != SSM_REORDER_OFF && c->n_classes == 0)
        return ssm_fail(SSM_ERR_CONFIG, "reorder = %s is for classifiers: reordering tokens would "
                        "let a causal language model see the future", ssm_reorder_name(c->reorder));
    if (c->pool != SSM_POOL_MEAN && c->n_classes == 0)
        return ssm_fail(SSM_ERR_CONFIG, "pool = %s is a classifier's readout: a language model "
                        "reads every position (set pool = mean)", ssm_pool_name(c->pool));
    if ((st = config_reorder_layers(c))) return st;
    if ((st = ssm_mamba2_config_check(c))) return st;   /* Mamba-2: engine/mamba2.c */
    if (c->pool == SSM_POOL_CLS && c->reorder != SSM_REORDER_OFF)
        return ssm_fail(SSM_ERR_CONFIG, "pool = cls with reorder = %s: the appended cls token must stay "
                        "last, and reordering would move its scan input (use pool = last or reorder = off)",
                        ssm_reorder_name(c->reorder));
    if (c->input_kind == SSM_INPUT_TOKENS) {
        if ((st = config_check_range("vocab_size", c->vocab_size, 1, 1 << 24))) return st;
        int mult = c->pad_vocab_size_multiple;
        c->padded_vocab = (c->vocab_size + mult - 1) / mult * mult;
    } else if (c->input_kind == SSM_INPUT_CONTINUOUS) {
        if ((st = config_check_range("d_input", c->d_input, 1, 1 << 20))) return st;
        if (c->n_classes == 0)
            return ssm_fail(SSM_ERR_CONFIG, "continuous input needs a classification head (n_classes > 0)");
        c->vocab_size = 0;
        c->padded_vocab = 0;
    } else {
        return ssm_fail(SSM_ERR_CONFIG, "input_kind = %d is unknown", c->input_kind);
    }
    return SSM_OK;
}

static const char *const scenario_names[] = {"default", "positive", "negative", "mixed"};
static const char *const polarize_names[] = {"none", "zero", "one", "both"};
static const char *const reorder_names[] = {"off", "hard", "soft"};
static const char *const pool_names[] = {"mean", "last", "cls"};

static const char *name_of(const char *const *names, int n, int v)
{
    return v >= 0 && v < n ? names[v] : "?";
}

static int name_parse(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

const char *ssm_scenario_name(int v) { return name_of(scenario_names, 4, v); }
const char *ssm_polarize_name(int v) { return name_of(polarize_names, 4, v); }
const char *ssm_reorder_name(int v) { return name_of(reorder_names, 3, v); }
int ssm_scenario_parse(const char *s) { return name_parse(scenario_names, 4, s); }
int ssm_polarize_parse(const char *s) { return name_parse(polarize_names, 4, s); }
int ssm_reorder_parse(const char *s) { return name_parse(reorder_names, 3, s); }
const char *ssm_pool_name(int v) { return name_of(pool_names, 3, v); }
int ssm_pool_parse(const char *s) { return name_parse(pool_names, 3, s); }

static const char *const arch_names[] = {"mamba1", "mamba2"};
const char *ssm_arch_name(int v) { return name_of(arch_names, 2, v); }
int ssm_arch_parse(const char *s) { return name_parse(arch_names, 2, s); }

ssm_status ssm_model_need_mamba1(const ssm_model *m, const char *what)
{
    if (m->cfg.arch == SSM_ARCH_MAMBA1) return SSM_OK;
    return ssm_fail(SSM_ERR_USAGE, "%s: not available for %s models yet (Mamba-1 only)", what,
                    ssm_arch_name(m->cfg.arch));
}

/* ------------------------------------------------------------------------ */
/* Parameter block                                                          */
/* Each allocation group (parameters, activations, scratch) is laid out by
 * one table of {view, floats} (engine/layout.h) that both sizes and carves it. */

/* The parameter table, in block order.  Packed (not aligned per tensor):
 * gradients, optimizer moments and checkpoints are blocks of num_params
 * floats laid out by this same table (ssm_model_tensors). */
static void params_table(const ssm_config *c, int weights, ssm_params *p,
                         ssm_layout_entry t[SSM_NUM_PARAM_TENSORS])
{
    size_t D = c->d_model, E = c->d_inner, N = c->d_state, R = c->dt_rank,
           K = c->d_conv, nl = c->n_layer, V = c->padded_vocab,
           C = c->n_classes, In = c->d_input, Ns = c->state_dim;
    int scen = c->scenario != SSM_SCENARIO_DEFAULT;
    int tokens = c->input_kind == SSM_INPUT_TOKENS;
    size_t m1 = c->arch == SSM_ARCH_MAMBA1, m2 = !m1;   /* the mixer's tensors */
    size_t H = c->n_heads, Cw = E + 2 * (size_t)c->n_groups * N, W = E + Cw + H;
    size_t f = weights != SSM_WEIGHTS_BF16;   /* 0: the large matrices are in bf16 */
    size_t fx = f || scen;                     /* x_proj stays float32 under a scenario */
    const ssm_layout_entry list[] = {
        {&p->embedding, f * (tokens ? V * D : 0)},
        {&p->input_w, tokens ? 0 : D * In},
        {&p->input_b, tokens ? 0 : D},
        {&p->norm_w, nl * D},
        {&p->in_proj, m1 * f * nl * 2 * E * D},
        {&p->conv_w, m1 * nl * E * K},
        {&p->conv_b, m1 * nl * E},
        {&p->x_proj, m1 * fx * nl * (R + 2 * Ns) * E},
        {&p->dt_proj_w, m1 * f * nl * E * R},
        {&p->dt_proj_b, m1 * nl * E},
        {&p->A_log, m1 * nl * E * N},
        {&p->Dskip, m1 * nl * E},
        {&p->out_proj, f * nl * D * E},
        {&p->norm_f, D},
        {&p->lm_head, f * ((C == 0 && !c->tie_embeddings) ? V * D : 0)},
        {&p->cls_w, C * D},
        {&p->cls_b, C},
        {&p->scen_P, scen ? nl * N * E : 0},
        {&p->scen_q, scen ? nl * N : 0},
        {&p->imp_k, (size_t)c->n_reorder * E},
        {&p->cls_tok, c->pool == SSM_POOL_CLS ? D : 0},
        {&p->m2_in_proj, m2 * f * nl * W * D},
        {&p->m2_conv_w, m2 * nl * Cw * K},
        {&p->m2_conv_b, m2 * nl * Cw},
        {&p->m2_dt_bias, m2 * nl * H},
        {&p->m2_A_log, m2 * nl * H},
        {&p->m2_D, m2 * nl * H},
        {&p->m2_norm_w, m2 * nl * E},
    };
    _Static_assert(sizeof list / sizeof list[0] == SSM_NUM_PARAM_TENSORS,
                   "one parameter table entry per tensor of ssm_params");
    memcpy(t, list, sizeof list);
}

/* Views of a block laid out like the parameters */
static void params_point(const ssm_config *c, int weights, ssm_params *p, float *block)
{
    ssm_layout_entry t[SSM_NUM_PARAM_TENSORS];
    params_table(c, weights, p, t);
    ssm_layout_carve(t, SSM_NUM_PARAM_TENSORS, 0, block);
}

/* The bf16 table of a SSM_WEIGHTS_BF16 model, in block order: the tensors
 * params_table leaves out of the float32 block, at their full sizes. */
static void bf16_table(const ssm_config *c, ssm_params_bf16 *w, ssm_layout_entry16 t[SSM_NUM_BF16_TENSORS])
{
    size_t D = c->d_model, E = c->d_inner, R = c->dt_rank, nl = c->n_layer,
           V = c->padded_vocab, X = R + 2 * (size_t)c->state_dim;
    int tokens = c->input_kind == SSM_INPUT_TOKENS;
    int scen = c->scenario != SSM_SCENARIO_DEFAULT;
    size_t m1 = c->arch == SSM_ARCH_MAMBA1, m2 = !m1;   /* the mixer's matrices */
    size_t W = 2 * E + 2 * (size_t)c->n_groups * c->d_state + c->n_heads;   /* Mamba-2 in_proj rows */
    const ssm_layout_entry16 list[] = {
        {&w->embedding, tokens ? V * D : 0},
        {&w->in_proj, m1 * nl * 2 * E * D},
        {&w->x_proj, scen ? 0 : m1 * nl * X * E},
        {&w->dt_proj_w, m1 * nl * E * R},
        {&w->out_proj, nl * D * E},
        {&w->lm_head, (c->n_classes == 0 && !c->tie_embeddings) ? V * D : 0},
        {&w->m2_in_proj, m2 * nl * W * D},
    };
    _Static_assert(sizeof list / sizeof list[0] == SSM_NUM_BF16_TENSORS,
                   "one bf16 table entry per tensor of ssm_params_bf16");
    memcpy(t, list, sizeof list);
}

/* p + off, or NULL for an absent (or bf16-held) tensor */
static float *view_at(float *p, size_t off) { return p ? p + off : NULL; }
static uint16_t *view16_at(uint16_t *p, size_t off) { return p ? p + off : NULL; }

static const char *const weights_names[] = {"f32", "bf16"};

static void tensor_set(ssm_tensor *t, const char *name, float *data, uint16_t *bf16, int no_decay,
                       int ndim, int d0, int d1, int d2)
{
    snprintf(t->name, sizeof t->name, "%s", name);
    t->data = data;
    t->bf16 = bf16;
    t->ndim = ndim;
    t->shape[0] = d0; t->shape[1] = d1; t->shape[2] = d2; t->shape[3] = 0;
    t->numel = (size_t)d0 * (ndim > 1 ? d1 : 1) * (ndim > 2 ? d2 : 1);
    t->no_decay = no_decay;
}

int ssm_model_tensors(const ssm_model *m, float *block, ssm_tensor *out, int cap)
{
    const ssm_config *c = &m->cfg;
    ssm_params p;
    params_point(c, m->weights, &p, block);
    ssm_params_bf16 w = m->wbf;   /* all NULL in a float32 model */
    int D = c->d_model, E = c->d_inner, N = c->d_state, R = c->dt_rank,
        K = c->d_conv, V = c->padded_vocab, C = c->n_classes, In = c->d_input,
        X = c->dt_rank + 2 * c->state_dim;
    ssm_tensor tmp;
    int n = 0;
    /* ADD2 names a tensor that may be held in bf16 (its float view NULL) */
#define ADD2(name, ptr, ptr16, nd, ndim, a, b, cc)                                   \
    do {                                                                             \
        tensor_set(n < cap ? &out[n] : &tmp, name, ptr, ptr16, nd, ndim, a, b, cc);  \
        n++;                                                                         \
    } while (0)
#define ADD(name, ptr, nd, ndim, a, b, cc) ADD2(name, ptr, NULL, nd, ndim, a, b, cc)
    if (p.embedding || w.embedding)
        ADD2("backbone.embedding.weight", p.embedding, w.embedding, 0, 2, V, D, 0);
    if (p.input_w) {
        ADD("backbone.input_proj.weight", p.input_w, 0, 2, D, In, 0);
        ADD("backbone.input_proj.bias", p.input_b, 1, 1, D, 0, 0);
    }
    if (p.cls_tok) ADD("backbone.cls_token", p.cls_tok, 0, 1, D, 0, 0);
    for (int l = 0; l < c->n_layer; l++) {
        char name[96];
#define LAYER2(suffix, ptr, ptr16, off, nd, ndim, a, b, cc)                       \
        do {                                                                     \
            snprintf(name, sizeof name, "backbone.layers.%d.%s", l, suffix);     \
            ADD2(name, view_at(ptr, off), view16_at(ptr16, off), nd, ndim, a, b, cc); \
        } while (0)
#define LAYER(suffix, ptr, off, nd, ndim, a, b, cc) LAYER2(suffix, ptr, NULL, off, nd, ndim, a, b, cc)
        size_t l_ = (size_t)l;
        LAYER("norm.weight", p.norm_w, l_ * D, 1, 1, D, 0, 0);
        if (c->arch == SSM_ARCH_MAMBA2) {   /* the state-spaces Mamba2 names */
            int H = c->n_heads, Cw = E + 2 * c->n_groups * N;
            LAYER2("mixer.in_proj.weight", p.m2_in_proj, w.m2_in_proj, l_ * (E + Cw + H) * D, 0, 2,
                   E + Cw + H, D, 0);
            LAYER("mixer.conv1d.weight", p.m2_conv_w, l_ * Cw * K, 0, 3, Cw, 1, K);
            LAYER("mixer.conv1d.bias", p.m2_conv_b, l_ * Cw, 1, 1, Cw, 0, 0);
            LAYER("mixer.dt_bias", p.m2_dt_bias, l_ * H, 1, 1, H, 0, 0);
            LAYER("mixer.A_log", p.m2_A_log, l_ * H, 1, 1, H, 0, 0);
            LAYER("mixer.D", p.m2_D, l_ * H, 1, 1, H, 0, 0);
            LAYER("mixer.norm.weight", p.m2_norm_w, l_ * E, 1, 1, E, 0, 0);
            LAYER2("mixer.out_proj.weight", p.out_proj, w.out_proj, l_ * D * E, 0, 2, D, E, 0);
            continue;
        }
        LAYER2("mixer.in_proj.weight", p.in_proj, w.in_proj, l_ * 2 * E * D, 0, 2, 2 * E, D, 0);
        LAYER("mixer.conv1d.weight", p.conv_w, l_ * E * K, 0, 3, E, 1, K);
        LAYER("mixer.conv1d.bias", p.conv_b, l_ * E, 1, 1, E, 0, 0);
        LAYER2("mixer.x_proj.weight", p.x_proj, w.x_proj, l_ * X * E, 0, 2, X, E, 0);
        LAYER2("mixer.dt_proj.weight", p.dt_proj_w, w.dt_proj_w, l_ * E * R, 0, 2, E, R, 0);
        LAYER("mixer.dt_proj.bias", p.dt_proj_b, l_ * E, 1, 1, E, 0, 0);
        LAYER("mixer.A_log", p.A_log, l_ * E * N, 1, 2, E, N, 0);
        LAYER("mixer.D", p.Dskip, l_ * E, 1, 1, E, 0, 0);
        LAYER2("mixer.out_proj.weight", p.out_proj, w.out_proj, l_ * D * E, 0, 2, D, E, 0);
        if (p.scen_P) {
            LAYER("mixer.scenario_P", p.scen_P, l_ * N * E, 0, 2, N, E, 0);
            LAYER("mixer.scenario_q", p.scen_q, l_ * N, 1, 1, N, 0, 0);
        }
        int r = ssm_reorder_slot(c, l);
        if (r >= 0) LAYER("mixer.importance_k", p.imp_k, (size_t)r * E, 1, 1, E, 0, 0);
#undef LAYER
#undef LAYER2
    }
    ADD("backbone.norm_f.weight", p.norm_f, 1, 1, D, 0, 0);
    if (p.lm_head || w.lm_head) ADD2("lm_head.weight", p.lm_head, w.lm_head, 0, 2, V, D, 0);
    if (p.cls_w) {
        ADD("classifier.weight", p.cls_w, 0, 2, C, D, 0);
        ADD("classifier.bias", p.cls_b, 1, 1, C, 0, 0);
    }
#undef ADD
#undef ADD2
    return n;
}

const char *ssm_weights_name(int v) { return name_of(weights_names, SSM_WEIGHTS_COUNT, v); }
int ssm_weights_parse(const char *s) { return name_parse(weights_names, SSM_WEIGHTS_COUNT, s); }

/* The bf16 block of a SSM_WEIGHTS_BF16 model (zeroed), carved into m->wbf */
static ssm_status bf16_build(ssm_model *m)
{
    ssm_layout_entry16 t[SSM_NUM_BF16_TENSORS];
    bf16_table(&m->cfg, &m->wbf, t);
    m->num_bf16 = ssm_layout_size16(t, SSM_NUM_BF16_TENSORS);
    m->wbf_memory = (uint16_t *)ssm_layout_alloc((m->num_bf16 + 1) / 2);   /* floats hold 2 each */
    if (!m->wbf_memory)
        return ssm_fail(SSM_ERR_NOMEM, "out of memory: %zu bytes for %zu bf16 weights",
                        m->num_bf16 * sizeof(uint16_t), m->num_bf16);
    memset(m->wbf_memory, 0, m->num_bf16 * sizeof(uint16_t));
    ssm_layout_carve16(t, SSM_NUM_BF16_TENSORS, m->wbf_memory);
    return SSM_OK;
}

ssm_status ssm_model_build_weights(ssm_model *m, const ssm_config *c, int weights)
{
    memset(m, 0, sizeof *m);
    if (weights < 0 || weights >= SSM_WEIGHTS_COUNT)
        return ssm_fail(SSM_ERR_USAGE, "weight format %d is unknown", weights);
    m->cfg = *c;
    m->weights = weights;
    ssm_status st = ssm_config_finalize(&m->cfg);
    if (st) return st;
    ssm_layout_entry t[SSM_NUM_PARAM_TENSORS];
    params_table(&m->cfg, weights, &m->params, t);
    m->num_params = ssm_layout_size(t, SSM_NUM_PARAM_TENSORS, 0);
    if (weights == SSM_WEIGHTS_BF16) {
        ssm_layout_entry16 t16[SSM_NUM_BF16_TENSORS];
        ssm_params_bf16 w;
        bf16_table(&m->cfg, &w, t16);
        m->num_bf16 = ssm_layout_size16(t16, SSM_NUM_BF16_TENSORS);
    }
    char what[96];
    snprintf(what, sizeof what, "a model of %zu parameters", m->num_params + m->num_bf16);
    if ((st = ssm_bound_memory(what, (uint64_t)m->num_params * sizeof(float) +
                                     (uint64_t)m->num_bf16 * sizeof(uint16_t))))
        return st;
    m->params_memory = ssm_layout_alloc(m->num_params);
    if (!m->params_memory)
        return ssm_fail(SSM_ERR_NOMEM, "out of memory: %zu bytes for %zu parameters",
                        m->num_params * sizeof(float), m->num_params);
    memset(m->params_memory, 0, m->num_params * sizeof(float));
    ssm_layout_carve(t, SSM_NUM_PARAM_TENSORS, 0, m->params_memory);
    if (weights == SSM_WEIGHTS_BF16 && (st = bf16_build(m))) ssm_model_free(m);
    return st;
}

ssm_status ssm_model_build(ssm_model *m, const ssm_config *c)
{
    return ssm_model_build_weights(m, c, SSM_WEIGHTS_F32);
}

ssm_status ssm_model_share_weights(ssm_model *m, const ssm_model *src)
{
    memset(m, 0, sizeof *m);
    if (!src->params_memory) return ssm_fail(SSM_ERR_USAGE, "a model without weights has none to share");
    m->cfg = src->cfg;
    m->weights = src->weights;
    ssm_layout_entry t[SSM_NUM_PARAM_TENSORS];
    params_table(&m->cfg, m->weights, &m->params, t);
    m->num_params = src->num_params;
    m->params_memory = src->params_memory;
    ssm_layout_carve(t, SSM_NUM_PARAM_TENSORS, 0, m->params_memory);
    if (src->wbf_memory) {
        ssm_layout_entry16 t16[SSM_NUM_BF16_TENSORS];
        bf16_table(&m->cfg, &m->wbf, t16);
        m->num_bf16 = src->num_bf16;
        m->wbf_memory = src->wbf_memory;
        ssm_layout_carve16(t16, SSM_NUM_BF16_TENSORS, m->wbf_memory);
    }
    m->shares_weights = 1;
    return SSM_OK;
}

/* dst (n) = src (n) rounded to bf16 */
static void bf16_round_copy(uint16_t *dst, const float *src, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= ((size_t)1 << 17))
    for (size_t i = 0; i < n; i++) dst[i] = ssm_bf16_from_f32(src[i]);
}

ssm_status ssm_model_to_bf16(ssm_model *dst, const ssm_model *src)
{
    if (src->weights != SSM_WEIGHTS_F32)
        return ssm_fail(SSM_ERR_USAGE, "a bf16 copy is made from a float32 model");
    ssm_status st = ssm_model_build_weights(dst, &src->cfg, SSM_WEIGHTS_BF16);
    if (st) return st;
    int n = ssm_model_tensors(src, src->params_memory, NULL, 0);
    ssm_tensor *a = malloc(sizeof *a * (size_t)n), *b = malloc(sizeof *b * (size_t)n);
    if (!a || !b) {
        free(a); free(b);
        ssm_model_free(dst);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for the tensor lists");
    }
    ssm_model_tensors(src, src->params_memory, a, n);
    ssm_model_tensors(dst, dst->params_memory, b, n);   /* same names in the same order */
    for (int i = 0; i < n; i++) {
        if (b[i].bf16) bf16_round_copy(b[i].bf16, a[i].data, a[i].numel);
        else memcpy(b[i].data, a[i].data, sizeof(float) * a[i].numel);
    }
    free(a);
    free(b);
    return SSM_OK;
}

/* SSM_ERR_USAGE for what (a backward, gradients, a save) on a bf16 model */
static ssm_status bf16_refuse(const ssm_model *m, const char *what)
{
    if (m->weights == SSM_WEIGHTS_F32) return SSM_OK;
    return ssm_fail(SSM_ERR_USAGE, "%s needs float32 weights: this model holds bf16 weights for "
                    "inference only (load it with f32 weights)", what);
}

/* Every layer's activations are kept for a backward: with parameter
 * gradients, or for an input-only backward (ssm_model_keep_acts) */
static int acts_kept(const ssm_model *m) { return m->grads_memory || m->keep_acts; }

int ssm_model_keeps_acts(const ssm_model *m) { return acts_kept(m); }

/* Activations must be laid out again (kept per layer now): rebuilt on the next forward */
static void acts_drop(ssm_model *m)
{
    free(m->acts_memory);
    m->acts_memory = NULL;
    m->acts_cap = 0;
    m->act_B = m->act_L = 0;
}

ssm_status ssm_model_keep_acts(ssm_model *m)
{
    if (acts_kept(m)) return SSM_OK;
    m->keep_acts = 1;
    acts_drop(m);
    return SSM_OK;
}

ssm_status ssm_model_keep_for_backward(ssm_model *m)
{
    return m->weights == SSM_WEIGHTS_BF16 ? ssm_model_keep_acts(m) : ssm_model_alloc_grads(m);
}

ssm_status ssm_model_alloc_grads(ssm_model *m)
{
    if (m->grads_memory) return SSM_OK;
    ssm_status st = bf16_refuse(m, "training (gradients)");
    if (st) return st;
    m->grads_memory = ssm_layout_alloc(m->num_params);
    if (!m->grads_memory)
        return ssm_fail(SSM_ERR_NOMEM, "cannot allocate %zu gradients", m->num_params);
    memset(m->grads_memory, 0, m->num_params * sizeof(float));
    params_point(&m->cfg, m->weights, &m->grads, m->grads_memory);
    acts_drop(m);   /* activations must now be kept per layer */
    return SSM_OK;
}

void ssm_model_zero_grad(ssm_model *m)
{
    if (m->grads_memory) memset(m->grads_memory, 0, m->num_params * sizeof(float));
}

void ssm_model_free(ssm_model *m)
{
    if (!m->shares_weights) {
        free(m->params_memory);
        free(m->wbf_memory);
    }
    free(m->widen);
    free(m->grads_memory);
    free(m->acts_memory);
    free(m->scratch);
    free(m->probe_keep);
    free(m->probe_h);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------------ */
/* Activations                                                              */

/* The activation table, sized for a (B, L) batch.  Per-layer activations
 * are kept for every layer when training, and for a single reused layer in
 * inference; the residual stream and mixer outputs are kept for every layer
 * (the dynamics measurements read them) except in a lean pass (last-position
 * logits without gradients: two residual slots used in turn, one mixer
 * output, (B, V) logits).  dlogits exist only with gradients.  Shapes are
 * in ssm_acts. */
static void acts_table(const ssm_model *m, int B, int L, int lean, ssm_acts *a,
                       ssm_layout_entry t[SSM_NUM_ACT_TENSORS])
{
    const ssm_config *c = &m->cfg;
    size_t BT = (size_t)B * L, D = c->d_model, E = c->d_inner, Ns = c->state_dim,
           X = c->dt_rank + 2 * Ns, nl = c->n_layer, V = c->padded_vocab;
    size_t nk = acts_kept(m) ? nl : 1;               /* layers of kept acts */
    size_t nro = c->n_reorder, nkro = acts_kept(m) ? nro : nro > 0;  /* kept slots */
    size_t ns = nro ? nro : 1, Lin = L - (c->pool == SSM_POOL_CLS);
    size_t nlogit = c->n_classes ? (size_t)B * c->n_classes : (lean ? (size_t)B : BT) * V;
    size_t nres = lean ? 2 : nl + 1, nmix = lean ? 1 : nl, bw = m->grads_memory != NULL;
    size_t m1 = c->arch == SSM_ARCH_MAMBA1;   /* Mamba-2 mixers: one block, a->m2 */
    const ssm_layout_entry list[] = {
        {&a->resid, nres * BT * D},
        {&a->rstd, nk * BT},
        {&a->xn, nk * BT * D},
        {&a->xz, m1 * nk * BT * 2 * E},
        {&a->uc, m1 * nk * BT * E},
        {&a->u, m1 * nk * BT * E},
        {&a->xdbl, m1 * nk * BT * X},
        {&a->dtraw, m1 * nk * BT * E},
        {&a->delta, m1 * nk * BT * E},
        {&a->ys, m1 * nk * BT * E},
        {&a->yg, m1 * nk * BT * E},
        {&a->mix, nmix * BT * D},
        {&a->rstd_f, BT},
        {&a->xf, BT * D},
        {&a->pooled, (size_t)B * D},
        {&a->logits, nlogit},
        {&a->dlogits, bw * nlogit},
        {&a->imp_s, ns * B * Lin},
        {&a->perm, nkro * BT * L},
        {&a->ro_u0, nkro * BT * E},
        {&a->ro_xdbl0, nkro * BT * X},
        {&a->ro_dtraw0, nkro * BT * E},
        {&a->m2, m1 ? 0 : nk * ssm_mamba2_acts_size(c, B, L)},
    };
    _Static_assert(sizeof list / sizeof list[0] == SSM_NUM_ACT_TENSORS,
                   "one activation table entry per tensor of ssm_acts");
    memcpy(t, list, sizeof list);
}

typedef struct { /* scratch of the passes; (BT, ...) buffers are (B*L, ...) */
    float *A;       /* (E, Ns) A of the current layer */
    float *work;    /* (work_n) the scan's and the conv's work space */
    size_t work_n;
    /* backward only */
    float *dresid;  /* (BT, D) gradient of the residual stream */
    float *dxn;     /* (BT, D) */
    float *dxf;     /* (BT, D) */
    float *dxz;     /* (BT, 2E) */
    float *du;      /* (BT, E) */
    float *ddelta;  /* (BT, E) */
    float *dys;     /* (BT, E) */
    float *dyg;     /* (BT, E) */
    float *dxdbl;   /* (BT, R+2Ns) */
    float *dA;      /* (E, Ns) */
    float *dpooled; /* (B, D) */
    /* backward with reordering only */
    float *dperm;   /* (B, L, L) */
    float *psoft;   /* (B, L, L) SoftSort matrix of a hard sort's scores */
    float *tmp;     /* (BT, E) */
    float *ddtraw0; /* (BT, E) */
    float *ddelta0; /* (BT, R) */
    float *ds;      /* (BT) */
    /* input-only backward (no parameter gradients) only */
    float *dsink;   /* (E (K + 2)) the small tensors' gradients the scan and
                     * conv kernels sum anyway (D skip, conv weight and bias),
                     * dropped */
    float *m2;      /* Mamba-2 only: the mixers' scratch (ssm_mamba2_scratch_size) */
} pass_scratch;
#define SCRATCH_ENTRIES 21

/* The scratch table for a (B, L) batch on threads threads: the backward
 * buffers only when the model keeps its activations for a backward, the
 * reordering ones only when it reorders.  The scan and the conv never run at once: one work space. */
static void scratch_table(const ssm_model *m, int B, int L, int threads, pass_scratch *g,
                          ssm_layout_entry t[SCRATCH_ENTRIES])
{
    const ssm_config *c = &m->cfg;
    size_t BT = (size_t)B * L, D = c->d_model, E = c->d_inner, Ns = c->state_dim,
           R = c->dt_rank, X = R + 2 * Ns;
    size_t bw = acts_kept(m), ro = bw && c->reorder != SSM_REORDER_OFF;
    size_t in_only = bw && !m->grads_memory, Kc = c->d_conv;
    size_t hard = ro && c->reorder == SSM_REORDER_HARD;
    size_t conv = bw ? ssm_conv_work_size(B, E, c->d_conv) : 0;
    size_t m1 = c->arch == SSM_ARCH_MAMBA1;   /* Mamba-2 mixers: one block, g->m2 */
    g->work_n = m1 ? ssm_scan_work_size(B, L, E, Ns, threads, bw) : 0;
    if (m1 && conv > g->work_n) g->work_n = conv;
    const ssm_layout_entry list[] = {
        {&g->A, m1 * E * Ns},
        {&g->work, g->work_n},
        {&g->dresid, bw * BT * D},
        {&g->dxn, bw * BT * D},
        {&g->dxf, bw * BT * D},
        {&g->dxz, m1 * bw * BT * 2 * E},
        {&g->du, m1 * bw * BT * E},
        {&g->ddelta, m1 * bw * BT * E},
        {&g->dys, m1 * bw * BT * E},
        {&g->dyg, m1 * bw * BT * E},
        {&g->dxdbl, m1 * bw * BT * X},
        {&g->dA, m1 * bw * E * Ns},
        {&g->dpooled, bw * B * D},
        {&g->dperm, ro * BT * L},
        {&g->psoft, hard * BT * L},
        {&g->tmp, ro * BT * E},
        {&g->ddtraw0, ro * BT * E},
        {&g->ddelta0, ro * BT * R},
        {&g->ds, ro * BT},
        {&g->dsink, m1 * in_only * E * (Kc + 2)},
        {&g->m2, m1 ? 0 : ssm_mamba2_scratch_size(c, B, L, threads, (int)bw)},
    };
    _Static_assert(sizeof list / sizeof list[0] == SCRATCH_ENTRIES,
                   "one scratch table entry per buffer of pass_scratch");
    memcpy(t, list, sizeof list);
}

/* Views of the scratch for the current batch shape */
static pass_scratch scratch_view(const ssm_model *m)
{
    pass_scratch g;
    ssm_layout_entry t[SCRATCH_ENTRIES];
    scratch_table(m, m->act_B, m->act_L, m->act_threads, &g, t);
    ssm_layout_carve(t, SCRATCH_ENTRIES, 1, m->scratch);
    return g;
}

/* *block holds at least n floats: grown (contents lost) when *cap is smaller */
static int mem_reserve(float **block, size_t *cap, size_t n)
{
    if (*block && *cap >= n) return 1;
    free(*block);
    *block = ssm_layout_alloc(n);
    *cap = *block ? n : 0;
    return *block != NULL;
}

/* Activations and scratch for a (B, L) batch on the current thread
 * count.  Each group is one allocation that only grows: a smaller batch is
 * carved out of the memory of the largest seen so far. */
static ssm_status acts_build(ssm_model *m, int B, int L, int lean)
{
    ssm_layout_entry at[SSM_NUM_ACT_TENSORS], st[SCRATCH_ENTRIES];
    pass_scratch g;
    int threads = omp_get_max_threads();
    acts_table(m, B, L, lean, &m->acts, at);
    scratch_table(m, B, L, threads, &g, st);
    if (!mem_reserve(&m->acts_memory, &m->acts_cap, ssm_layout_size(at, SSM_NUM_ACT_TENSORS, 1)) ||
        !mem_reserve(&m->scratch, &m->scratch_cap, ssm_layout_size(st, SCRATCH_ENTRIES, 1))) {
        m->act_B = m->act_L = 0;
        return ssm_fail(SSM_ERR_NOMEM, "cannot allocate activations for batch %d x length %d", B, L);
    }
    ssm_layout_carve(at, SSM_NUM_ACT_TENSORS, 1, m->acts_memory);
    m->act_B = B;
    m->act_L = L;
    m->act_threads = threads;
    m->act_lean = lean;
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Building blocks                                                          */

/* GEMMs run with one OpenBLAS thread each, split into row blocks over the
 * OpenMP threads: no BLAS thread pool competes with the OpenMP one.  The
 * forward's blocks follow the threads' speeds (engine/balance.h), the rest
 * split evenly by the thread count (ssm_split_rows).
 *
 * sgemm's kernel takes out's rows in blocks of a fixed height and the
 * last few rows in a tail kernel that sums in another order, so a row's
 * bits depend on where the calls split M.  Blocks that start at multiples
 * of that height give each row the bits of one call over all M, whatever
 * the split (the tail stays at the end).  ssm_model_gemm_granule finds the
 * height once, from the running library (12 rows for OpenBLAS's Haswell
 * kernel); a library where no height up to GRANULE_MAX holds keeps the
 * forward's blocks even. */
#define GRANULE_MAX 64

/* Whether splitting M at multiples of g gives out the bits of one call:
 * in (M, K) and W (N, K) random, one (M, N) product against three calls */
static int gemm_granule_holds(int g, const float *in, const float *W, float *one, float *split,
                              int M, int N, int K)
{
    int cut[4] = {0, M / 3 / g * g, 2 * M / 3 / g * g, M};
    for (int i = 0; i < 3; i++)
        if (cut[i + 1] > cut[i])
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cut[i + 1] - cut[i], N, K, 1.0f,
                        in + (size_t)cut[i] * K, K, W, K, 0.0f, split + (size_t)cut[i] * N, N);
    return !memcmp(one, split, sizeof(float) * M * N);
}

/* The smallest row height (a divisor-friendly candidate up to GRANULE_MAX)
 * at which sgemm's rows keep their bits across splits, or 0 if none. */
static int gemm_granule_find(void)
{
    enum { M = 3 * GRANULE_MAX + 7, N = 48, K = 384 };   /* above small-matrix paths */
    static const int cand[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
    float *buf = malloc(sizeof(float) * ((size_t)M * K + (size_t)N * K + 2 * (size_t)M * N));
    if (!buf) return 0;
    float *in = buf, *W = in + (size_t)M * K, *one = W + (size_t)N * K, *split = one + (size_t)M * N;
    uint32_t x = 12345u;   /* any fixed values with full mantissas */
    for (size_t i = 0; i < (size_t)M * K + (size_t)N * K; i++) {
        x = x * 1664525u + 1013904223u;
        buf[i] = (float)(x >> 8) / 16777216.0f - 0.5f;
    }
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);   /* as the passes run it (ssm_threads_set) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, in, K, W, K, 0.0f, one, N);
    int g = 0;
    for (size_t i = 0; i < sizeof cand / sizeof cand[0] && !g; i++)
        if (gemm_granule_holds(cand[i], in, W, one, split, M, N, K)) g = cand[i];
    openblas_set_num_threads(blas_threads);
    free(buf);
    return g;
}

static int gemm_granule;   /* ssm_model_gemm_granule's, found once */
static void gemm_granule_init(void) { gemm_granule = gemm_granule_find(); }

int ssm_model_gemm_granule(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, gemm_granule_init);
    return gemm_granule;
}

/* The calling thread's rows of a row-wise region: by bal's speeds at the
 * granule (g > 0), or evenly when bal is NULL or there is none */
static void rows_mine(const ssm_balance *bal, int g, int n, int *lo, int *hi)
{
    if (bal && g > 0) ssm_balance_rows(bal, n, g, lo, hi);
    else ssm_split_rows(n, lo, hi);
}

/* After a thread's rows of a region, begun at t0: its time on them if bal
 * is set, and the team's size into *team (for ssm_balance_update after) */
static void rows_done(ssm_balance *bal, double t0, int lo, int hi, int *team)
{
    if (bal) ssm_balance_done(bal, t0, hi - lo);
    if (omp_get_thread_num() == 0) *team = omp_get_num_threads();
}

/* out (M, N) = in (M, K) · W (N, K)^T [+ bias (N)], the rows by bal's
 * speeds (updated after) or evenly (bal NULL) */
static void matmul_forward(ssm_balance *bal, float *out, int ldo, const float *in, int ldi,
                           const float *W, const float *bias, int M, int N, int K)
{
    double t0 = ssm_gemm_stats_begin();
    int team = 1, g = bal ? ssm_model_gemm_granule() : 0;
#pragma omp parallel
    {
        int lo, hi;
        double tt = omp_get_wtime();
        rows_mine(bal, g, M, &lo, &hi);
        if (hi > lo)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, N, K, 1.0f,
                        in + (size_t)lo * ldi, ldi, W, K, 0.0f, out + (size_t)lo * ldo, ldo);
        for (int i = lo; bias && i < hi; i++)
            for (int j = 0; j < N; j++) out[(size_t)i * ldo + j] += bias[j];
        rows_done(bal, tt, lo, hi, &team);
    }
    if (bal) ssm_balance_update(bal, team);
    ssm_gemm_stats_end(t0, 2.0 * M * N * K);
}

/* acc[j] += sum_i a[i, j] (b[i, j] r[i] when b is set) for lo <= j < hi,
 * a and b (M, ld): each column's sum runs over i in increasing order (the
 * bits of a loop down the column), read by rows a chunk of columns at a
 * time, vectorised over the columns. */
#define COLSUM_CHUNK 256
static void column_sums_add(float *acc, const float *a, int ld, const float *b,
                            const float *r, int M, int lo, int hi)
{
    for (int j0 = lo; j0 < hi; j0 += COLSUM_CHUNK) {
        const int nj = hi - j0 < COLSUM_CHUNK ? hi - j0 : COLSUM_CHUNK;
        float s[COLSUM_CHUNK] = {0}; /* (nj) the chunk's sums */
        for (int i = 0; i < M; i++) {
            const float *ai = a + (size_t)i * ld + j0;
            if (b) {
                const float *bi = b + (size_t)i * ld + j0;
                for (int j = 0; j < nj; j++) s[j] += ai[j] * bi[j] * r[i];
            } else {
                for (int j = 0; j < nj; j++) s[j] += ai[j];
            }
        }
        for (int j = 0; j < nj; j++) acc[j0 + j] += s[j];
    }
}

/* din (M, K) = beta * din + dout (M, N) · W (N, K);  dW (N, K) += dout^T · in;
 * dbias (N) += column sums of dout.  din, dW and dbias may be NULL (an
 * input-only backward has no dW).  din is split over
 * rows of M, dW and dbias over rows of N, so nothing is reduced across threads. */
static void matmul_backward(float *din, int lddi, float beta, float *dW, float *dbias,
                            const float *dout, int ldd, const float *in, int ldi,
                            const float *W, int M, int N, int K)
{
    double t0 = ssm_gemm_stats_begin();
#pragma omp parallel
    {
        int lo, hi;
        ssm_split_rows(M, &lo, &hi);
        if (din && hi > lo)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, K, N, 1.0f,
                        dout + (size_t)lo * ldd, ldd, W, K, beta, din + (size_t)lo * lddi, lddi);
        ssm_split_rows(N, &lo, &hi);
        if (dW && hi > lo)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, K, M, 1.0f,
                        dout + lo, ldd, in, ldi, 1.0f, dW + (size_t)lo * K, K);
        if (dbias && hi > lo)
            column_sums_add(dbias, dout, ldd, NULL, NULL, M, lo, hi);
    }
    ssm_gemm_stats_end(t0, ((din ? 2.0 : 0.0) + (dW ? 2.0 : 0.0)) * M * N * K);
}

/* y (M, D) = x * rstd * w, rstd (M) = 1 / sqrt(mean(x^2) + eps) */
static void rmsnorm_forward(float *y, float *rstd, const float *x, const float *w,
                            int M, int D, float eps)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *xi = x + (size_t)i * D;
        float ss = 0.0f;
        for (int d = 0; d < D; d++) ss += xi[d] * xi[d];
        float r = 1.0f / sqrtf(ss / D + eps);
        rstd[i] = r;
        for (int d = 0; d < D; d++) y[(size_t)i * D + d] = xi[d] * r * w[d];
    }
}

/* dx (M, D) += d/dx; dw (D) += d/dw (dw NULL: not computed), given dy (M, D) */
static void rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x,
                             const float *rstd, const float *w, int M, int D)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        const float *xi = x + (size_t)i * D, *dyi = dy + (size_t)i * D;
        float r = rstd[i], dot = 0.0f;
        for (int d = 0; d < D; d++) dot += dyi[d] * w[d] * xi[d];
        float k = dot * r * r * r / D;
        for (int d = 0; d < D; d++) dx[(size_t)i * D + d] += dyi[d] * w[d] * r - xi[d] * k;
    }
    if (!dw) return;
#pragma omp parallel
    {
        int lo, hi;
        ssm_split_rows(D, &lo, &hi);
        if (hi > lo)
            column_sums_add(dw, dy, D, x, rstd, M, lo, hi);
    }
}


/* ------------------------------------------------------------------------ */
/* Mixer layer                                                              */

typedef struct { /* views of one layer's parameters or gradients */
    float *norm_w, *in_proj, *conv_w, *conv_b, *x_proj, *dt_proj_w, *dt_proj_b,
          *A_log, *Dskip, *out_proj;
} layer_params;

typedef struct { /* views of one layer's activations, each (B, L, ...) */
    float *x, *rstd, *xn, *xz, *uc, *u, *xdbl, *dtraw, *delta, *ys, *yg, *mix, *xout;
    int layer;
} layer_acts;

typedef struct { /* views of one reordering layer (slot r of ssm_reorder_slot) */
    const float *k; /* (E) importance vector */
    float *dk;      /* (E) its gradient, NULL without gradients */
    float *s;       /* (B, L) scores, input order */
    float *perm;    /* (B, L, L) P-hat */
    float *u0;      /* (B, L, E) u in input order */
    float *xdbl0;   /* (B, L, R+2Ns) x_proj of u0 */
    float *dtraw0;  /* (B, L, E) W_dt delta0 + b_dt: the scores' source */
} reorder_view;

static layer_params layer_params_view(const ssm_config *c, const ssm_params *p, int l)
{
    size_t D = c->d_model, E = c->d_inner, N = c->d_state, R = c->dt_rank, K = c->d_conv,
           X = R + 2 * c->state_dim;
    layer_params v = {   /* the matrices of a bf16 model are NULL here (layer_params_run) */
        p->norm_w + l * D, view_at(p->in_proj, l * 2 * E * D), p->conv_w + l * E * K,
        p->conv_b + l * E, view_at(p->x_proj, l * X * E), view_at(p->dt_proj_w, l * E * R),
        p->dt_proj_b + l * E, p->A_log + l * E * N, p->Dskip + l * E,
        view_at(p->out_proj, l * D * E)};
    return v;
}

/* x_l (B, act_L, D) in the residual stream; a lean pass has two slots */
static float *resid_slot(const ssm_model *m, int l)
{
    size_t BTD = (size_t)m->act_B * m->act_L * m->cfg.d_model;
    return m->acts.resid + (size_t)(m->act_lean ? l % 2 : l) * BTD;
}

float *ssm_model_resid(const ssm_model *m, int l) { return resid_slot(m, l); }

float *ssm_model_mix(const ssm_model *m, int l)
{
    size_t BTD = (size_t)m->act_B * m->act_L * m->cfg.d_model;
    return m->acts.mix + (size_t)(m->act_lean ? 0 : l) * BTD;
}

/* Floats of m->widen for a bf16 forward: one layer's bf16 matrices (Mamba-2:
 * in_proj (W, D) and out_proj (D, E), engine/mamba2.c), or HEAD_ROWS rows
 * of the LM head, whichever is larger */
#define HEAD_ROWS 1024
static size_t widen_size(const ssm_config *c)
{
    size_t D = c->d_model, E = c->d_inner, R = c->dt_rank, X = R + 2 * (size_t)c->state_dim;
    size_t W = 2 * E + 2 * (size_t)c->n_groups * c->d_state + c->n_heads;
    size_t layer = c->arch == SSM_ARCH_MAMBA2 ? W * D + D * E : 2 * E * D + X * E + E * R + D * E;
    size_t head = (size_t)HEAD_ROWS * D;
    return layer > head ? layer : head;
}

static ssm_status widen_reserve(ssm_model *m)
{
    size_t n = widen_size(&m->cfg);
    if (m->weights != SSM_WEIGHTS_BF16 || m->widen_cap >= n) return SSM_OK;
    free(m->widen);
    if (!(m->widen = ssm_layout_alloc(n))) {
        m->widen_cap = 0;
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for the widened weights (%zu floats)", n);
    }
    m->widen_cap = n;
    return SSM_OK;
}

/* *dst = the n bf16 values of src (layer l's slice of a stacked tensor)
 * widened into *buf, which moves past them; src NULL: *dst is kept (the
 * tensor is float32) */
static void widen_slice(float **dst, const uint16_t *src, size_t l, size_t n, float **buf)
{
    if (!src) return;
    ssm_bf16_widen(*buf, src + l * n, n);
    *dst = *buf;
    *buf += n;
}

/* Layer l's parameters as the forward runs them: the float32 views, and in
 * a bf16 model its bf16 matrices widened into m->widen (one layer at a time,
 * reused by the next; widen_reserve first) */
static layer_params layer_params_run(const ssm_model *m, int l)
{
    const ssm_config *c = &m->cfg;
    layer_params p = layer_params_view(c, &m->params, l);
    if (m->weights != SSM_WEIGHTS_BF16) return p;
    size_t D = c->d_model, E = c->d_inner, R = c->dt_rank, X = R + 2 * (size_t)c->state_dim;
    float *buf = m->widen;
    widen_slice(&p.in_proj, m->wbf.in_proj, l, 2 * E * D, &buf);
    widen_slice(&p.x_proj, m->wbf.x_proj, l, X * E, &buf);
    widen_slice(&p.dt_proj_w, m->wbf.dt_proj_w, l, E * R, &buf);
    widen_slice(&p.out_proj, m->wbf.out_proj, l, D * E, &buf);
    return p;
}

static layer_acts layer_acts_view(const ssm_model *m, int l)
{
    const ssm_config *c = &m->cfg;
    const ssm_acts *a = &m->acts;
    size_t BT = (size_t)m->act_B * m->act_L, D = c->d_model, E = c->d_inner,
           X = c->dt_rank + 2 * c->state_dim;
    size_t k = acts_kept(m) ? (size_t)l : 0;   /* kept-layer index */
    layer_acts v = {
        resid_slot(m, l), a->rstd + k * BT, a->xn + k * BT * D,
        a->xz + k * BT * 2 * E, a->uc + k * BT * E, a->u + k * BT * E,
        a->xdbl + k * BT * X, a->dtraw + k * BT * E,
        a->delta + k * BT * E, a->ys + k * BT * E, a->yg + k * BT * E,
        ssm_model_mix(m, l), resid_slot(m, l + 1), l};
    return v;
}

static reorder_view reorder_view_of(const ssm_model *m, int r)
{
    const ssm_config *c = &m->cfg;
    const ssm_acts *a = &m->acts;
    size_t L = m->act_L, BT = (size_t)m->act_B * L, E = c->d_inner,
           X = c->dt_rank + 2 * c->state_dim;
    size_t k = acts_kept(m) ? (size_t)r : 0;   /* kept slot */
    reorder_view v = {m->params.imp_k + r * E, m->grads_memory ? m->grads.imp_k + r * E : NULL,
                      a->imp_s + r * BT, a->perm + k * BT * L, a->ro_u0 + k * BT * E,
                      a->ro_xdbl0 + k * BT * X, a->ro_dtraw0 + k * BT * E};
    return v;
}

void ssm_model_layer_A(const ssm_config *c, const float *A_log, float *A)
{
    int E = c->d_inner, N = c->d_state, Ns = c->state_dim, n1 = c->n_one;
    for (int e = 0; e < E; e++)
        for (int j = 0; j < Ns; j++) {
            int n = j - n1;
            A[(size_t)e * Ns + j] = n < 0 ? SSM_A_ONE_POLARIZED
                                  : n >= N ? SSM_A_ZERO_POLARIZED : -expf(A_log[(size_t)e * N + n]);
        }
}

void ssm_model_run_A(const ssm_model *m, int layer, float *A)
{
    const ssm_config *c = &m->cfg;
    ssm_model_layer_A(c, m->params.A_log + (size_t)layer * c->d_inner * c->d_state, A);
    ssm_probe_pin_A(m->probe, layer, c->d_inner, c->state_dim, A);
}

/* dA_log += dA * A over the learned channels only (the pinned ones are
 * fixed); dA_log NULL (an input-only backward): nothing */
static void layer_dA_log(const ssm_config *c, float *dA_log, const float *dA, const float *A)
{
    if (!dA_log) return;
    int E = c->d_inner, N = c->d_state, Ns = c->state_dim, n1 = c->n_one;
    for (int e = 0; e < E; e++)
        for (int n = 0; n < N; n++) dA_log[e * N + n] += dA[e * Ns + n1 + n] * A[e * Ns + n1 + n];
}

static ssm_scan_args layer_scan_args(const ssm_config *c, const layer_acts *a,
                                     const float *Dskip, const pass_scratch *g, int B, int L)
{
    int R = c->dt_rank, Ns = c->state_dim;
    ssm_scan_args s = {.B = B, .L = L, .E = c->d_inner, .N = Ns, .u = a->u, .delta = a->delta,
                       .Bm = a->xdbl + R, .Cm = a->xdbl + R + Ns, .ld_bc = R + 2 * Ns,
                       .A = g->A, .Dskip = Dskip, .work = g->work, .work_n = g->work_n};
    return s;
}

/* The importance score of each token, in input order (ssmlab-math(7) DYNAMICS):
 * s_t = k . v_t with a learned k and v = W_dt delta + b_dt, or with k NULL
 * the proxy mean_e v_t[e] with v = Delta.  v_all is (B, act_L, E), E
 * values per position (Mamba-2's proxy: E = H, v = dt); the
 * scores out (B, L) are the input tokens' (under pool cls the cls token has
 * none). */
static void importance_forward(const ssm_model *m, const float *v_all, int E, const float *k, float *out)
{
    int Lm = m->act_L, L = ssm_model_input_len(m), BT = m->act_B * L;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < BT; i++) {
        const float *v = v_all + ((size_t)(i / L) * Lm + i % L) * E;
        float s = 0.0f;
        for (int e = 0; e < E; e++) s += k ? k[e] * v[e] : v[e];
        out[i] = k ? s : s / E;
    }
}

/* A reordering layer's input: scores from the tokens in input order, then
 * the SSM input u permuted by P-hat (ssmlab-math(7) DYNAMICS).  z and the
 * residual stream keep input order.  On entry a->u holds u in input order;
 * on exit P-hat u. */
static void reorder_forward(ssm_model *m, const layer_params *p, const layer_acts *a,
                            const reorder_view *rv)
{
    const ssm_config *c = &m->cfg;
    int B = m->act_B, L = m->act_L, BT = B * L;
    int E = c->d_inner, R = c->dt_rank, X = R + 2 * c->state_dim;
    memcpy(rv->u0, a->u, sizeof(float) * BT * E);
    matmul_forward(NULL, rv->xdbl0, X, rv->u0, E, p->x_proj, NULL, BT, X, E);
    matmul_forward(NULL, rv->dtraw0, E, rv->xdbl0, X, p->dt_proj_w, p->dt_proj_b, BT, E, R);
    importance_forward(m, rv->dtraw0, c->d_inner, rv->k, rv->s);
    ssm_reorder_build(c->reorder, B, L, rv->s, c->reorder_tau, rv->perm);
    ssm_reorder_apply(B, L, E, rv->perm, rv->u0, E, a->u, E);
}

/* The attached probe's part of layer a->layer's scan: the keep mask of its
 * ablations, and in a whole forward (in_model) the states and the patch.
 * Probed scans allocate their own work space (the naive scans run). */
static void probe_scan_args(ssm_model *m, const layer_acts *a, int in_model, ssm_scan_args *sa)
{
    const ssm_probe *pr = m->probe;
    const ssm_config *c = &m->cfg;
    if (!pr) return;
    if (ssm_probe_keep(pr, a->layer, c->d_inner, c->state_dim, m->probe_keep))
        sa->keep = m->probe_keep;
    if (in_model && pr->want_states) sa->h_out = m->probe_h;
    if (in_model && pr->final_h)
        sa->h_last = pr->final_h + (size_t)a->layer * m->act_B * c->d_inner * c->state_dim;
    if (in_model && pr->patch_kind == SSM_PATCH_STATE && pr->patch_layer == a->layer) {
        sa->patch_h = pr->patch_value;
        sa->patch_t = pr->patch_pos;
    }
    if (ssm_scan_probed(sa)) {
        sa->work = NULL;
        sa->work_n = 0;
    }
}

/* out rows lo..hi-1 (M, N) = in (M, K) . W (N, K)^T on the calling thread:
 * matmul_forward's share of one thread, for a region that runs several
 * steps on the same rows.  The GEMM counter (engine/gemm_stats.h) counts
 * the whole product once, timed by thread 0's share (the rows follow the
 * threads' speeds, so that is about the product's wall time). */
static void gemm_rows(float *out, int ldo, const float *in, int ldi, const float *W,
                      int lo, int hi, int M, int N, int K)
{
    int first = omp_get_thread_num() == 0;
    double t0 = first ? ssm_gemm_stats_begin() : 0.0;
    if (hi > lo)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, N, K, 1.0f,
                    in + (size_t)lo * ldi, ldi, W, K, 0.0f, out + (size_t)lo * ldo, ldo);
    if (first) ssm_gemm_stats_end(t0, 2.0 * M * N * K);
}

/* The S6's inputs on a (B, L) batch, steps 2-3 of ssmlab-math(7) MODEL:
 * with ca, the conv and SiLU of xz into a->uc, a->u first; then x_proj of
 * u into xdbl, dt_proj into dtraw with its bias, and Delta = softplus(dtraw)
 * in the same pass as the bias.  Each thread takes the rows matmul_forward
 * would give it and runs every step on them with no barrier between (a row
 * of each step needs only rows of the step before that the thread has, the
 * conv only xz), so the bits are those of the steps run one by one. */
static void s6_inputs_forward(ssm_model *m, const layer_params *p, const layer_acts *a,
                              const ssm_conv_args *ca)
{
    const ssm_config *c = &m->cfg;
    int BT = m->act_B * m->act_L, E = c->d_inner, R = c->dt_rank, X = R + 2 * c->state_dim, team = 1;
    int g = ssm_model_gemm_granule();
#pragma omp parallel
    {
        int lo, hi;
        double tt = omp_get_wtime();
        rows_mine(&m->balance, g, BT, &lo, &hi);
        if (ca && hi > lo) ssm_conv_silu_rows(ca, lo, hi, a->uc, a->u);
        gemm_rows(a->xdbl, X, a->u, E, p->x_proj, lo, hi, BT, X, E);
        gemm_rows(a->dtraw, E, a->xdbl, X, p->dt_proj_w, lo, hi, BT, E, R);
        for (int r = lo; r < hi; r++) {   /* by rows: no i % E, so it vectorises */
            float *dt = a->dtraw + (size_t)r * E, *dl = a->delta + (size_t)r * E;   /* (E) */
            for (int e = 0; e < E; e++) {
                float v = dt[e] + p->dt_proj_b[e];
                dt[e] = v;
                dl[e] = ssm_softplusf(v);
            }
        }
        rows_done(&m->balance, tt, lo, hi, &team);
    }
    ssm_balance_update(&m->balance, team);
}

/* a->ys = the scan of step 5 on the S6 inputs already in a (with the skip
 * Dskip (E)), A built first */
static ssm_status s6_scan_forward(ssm_model *m, const layer_acts *a, const pass_scratch *g,
                                  const float *Dskip, int in_model)
{
    ssm_model_run_A(m, a->layer, g->A);                     /* (E, Ns) */
    ssm_scan_args sa = layer_scan_args(&m->cfg, a, Dskip, g, m->act_B, m->act_L);
    probe_scan_args(m, a, in_model, &sa);
    return ssm_scan_forward(&sa, a->ys);
}

/* a->ys = S6(a->u) over a (B, L) batch, steps 3-5 of ssmlab-math(7) MODEL
 * (with the skip Dskip (E)): x_proj, dt_proj, softplus, A, the scan */
static ssm_status s6_forward(ssm_model *m, const layer_params *p, const layer_acts *a,
                             const pass_scratch *g, const float *Dskip, int in_model)
{
    s6_inputs_forward(m, p, a, NULL);
    return s6_scan_forward(m, a, g, Dskip, in_model);
}

/* yg = ys * SiLU(z) on rows lo..hi-1 */
static void gate_rows(const layer_acts *a, int E, int lo, int hi)
{
    for (int i = lo; i < hi; i++)
        for (int e = 0; e < E; e++)
            a->yg[(size_t)i * E + e] = a->ys[(size_t)i * E + e] * ssm_siluf(a->xz[(size_t)i * 2 * E + E + e]);
}

/* The gate and out_proj of step 6 on each sequence's last row only, for a
 * last layer whose other rows nothing reads (the lean last-position
 * forward): one product over the B rows at stride L */
static void gate_out_last_rows(const layer_params *p, const layer_acts *a, int B, int L, int D, int E)
{
    for (int b = 0; b < B; b++)
        gate_rows(a, E, b * L + L - 1, b * L + L);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, D, E, 1.0f, a->yg + (size_t)(L - 1) * E,
                L * E, p->out_proj, E, 0.0f, a->mix + (size_t)(L - 1) * D, L * D);
}

/* The gate and out_proj of step 6: yg = ys * SiLU(z), mix = yg W_out^T,
 * each thread on its own rows (those matmul_forward would give it), so
 * one region and no barrier between the two; last_rows: each sequence's
 * last row only (gate_out_last_rows) */
static void gate_out_forward(ssm_model *m, const layer_params *p, const layer_acts *a, int last_rows)
{
    int BT = m->act_B * m->act_L, D = m->cfg.d_model, E = m->cfg.d_inner, team = 1;
    if (last_rows) {
        gate_out_last_rows(p, a, m->act_B, m->act_L, D, E);
        return;
    }
    int g = ssm_model_gemm_granule();
#pragma omp parallel
    {
        int lo, hi;
        double tt = omp_get_wtime();
        rows_mine(&m->balance, g, BT, &lo, &hi);
        gate_rows(a, E, lo, hi);
        gemm_rows(a->mix, D, a->yg, E, p->out_proj, lo, hi, BT, D, E);
        rows_done(&m->balance, tt, lo, hi, &team);
    }
    ssm_balance_update(&m->balance, team);
}

/* a->mix = Mixer(a->xn) over a (B, L) batch, steps 1-6 of ssmlab-math(7)
 * MODEL; in_model: part of a whole forward (the reordering and importance
 * hooks of a->layer run), not a one-layer run.  Without reordering the
 * conv, SiLU, x_proj, dt_proj and softplus run as one parallel region
 * (s6_inputs_forward), the gate and out_proj as another.  last_rows: mix
 * on each sequence's last row only (the rest of a->mix is left as it was). */
static ssm_status mixer_forward(ssm_model *m, const layer_params *p, const layer_acts *a,
                                const pass_scratch *g, int in_model, int last_rows)
{
    const ssm_config *c = &m->cfg;
    int B = m->act_B, L = m->act_L, BT = B * L;
    int D = c->d_model, E = c->d_inner, K = c->d_conv;
    int r = in_model ? ssm_reorder_slot(c, a->layer) : -1;
    int proxy = in_model && a->layer == 0 && c->n_reorder == 0;

    matmul_forward(&m->balance, a->xz, 2 * E, a->xn, D, p->in_proj, NULL, BT, 2 * E, D);
    ssm_conv_args ca = {B, L, E, K, a->xz, 2 * E, p->conv_w, p->conv_b, g->work, g->work_n};
    if (r >= 0) {   /* the scores and P-hat come between u and x_proj */
        reorder_view rv = reorder_view_of(m, r);
        ssm_conv_silu_forward(&ca, a->uc, a->u);
        reorder_forward(m, p, a, &rv);
        s6_inputs_forward(m, p, a, NULL);
    } else {
        s6_inputs_forward(m, p, a, &ca);
    }
    ssm_status st = s6_scan_forward(m, a, g, p->Dskip, in_model);
    if (st) return st;
    if (proxy) importance_forward(m, a->delta, E, NULL, m->acts.imp_s);
    gate_out_forward(m, p, a, last_rows);
    return SSM_OK;
}

void ssm_model_probe_patch_residual(ssm_model *m, int layer)
{
    const ssm_probe *pr = m->probe;
    int D = m->cfg.d_model;
    if (!pr || pr->patch_kind != SSM_PATCH_RESIDUAL || pr->patch_layer != layer) return;
    float *x = ssm_model_resid(m, layer);
    for (int b = 0; b < m->act_B; b++)
        memcpy(x + ((size_t)b * m->act_L + pr->patch_pos) * D, pr->patch_value + (size_t)b * D,
               sizeof(float) * D);
}

/* The probe's hook on layer a->layer, just after it ran */
static void probe_layer_done(const ssm_model *m, const layer_acts *a, const pass_scratch *g)
{
    const ssm_probe *pr = m->probe;
    const ssm_config *c = &m->cfg;
    if (!pr || !pr->on_layer) return;
    int E = c->d_inner, Ns = c->state_dim, R = c->dt_rank;
    ssm_layer_view v = {a->layer, m->act_B, m->act_L, c->d_model, E, Ns,
                        a->x, a->u, a->xz + E, a->xz, 2 * E, a->delta, a->xdbl + R, a->xdbl + R + Ns,
                        R + 2 * Ns, pr->want_states ? m->probe_h : NULL, a->ys, a->mix, g->A, .ldu = E};
    pr->on_layer(pr->ctx, &v);
}

/* x_{l+1} = x_l + Mixer(RMSNorm(x_l)) over a (B, L) batch; last_rows:
 * x_{l+1} on each sequence's last row only, for a last layer whose other
 * rows nothing reads (its state and every earlier layer are whole) */
static ssm_status layer_forward(ssm_model *m, const layer_params *p, const layer_acts *a,
                                const pass_scratch *g, int last_rows)
{
    const ssm_config *c = &m->cfg;
    int B = m->act_B, L = m->act_L, BT = B * L, D = c->d_model;
    ssm_model_probe_patch_residual(m, a->layer);
    rmsnorm_forward(a->xn, a->rstd, a->x, p->norm_w, BT, D, c->norm_eps);
    ssm_status st = mixer_forward(m, p, a, g, 1, last_rows);
    if (st) return st;
    if (last_rows) {
        for (int b = 0; b < B; b++)
            for (size_t i = ((size_t)b * L + L - 1) * D, e = i + D; i < e; i++) a->xout[i] = a->x[i] + a->mix[i];
    } else {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)BT * D; i++) a->xout[i] = a->x[i] + a->mix[i];
    }
    probe_layer_done(m, a, g);
    return SSM_OK;
}

/* s_t = k . dtraw0_t: dk += sum_t ds_t dtraw0_t (dk NULL: not computed),
 * ddtraw0_t = ds_t k */
static void importance_backward(const ssm_model *m, const reorder_view *rv, pass_scratch *g)
{
    int BT = m->act_B * m->act_L, E = m->cfg.d_inner;
    const float *k = rv->k, *v = rv->dtraw0;
    if (rv->dk) {
#pragma omp parallel for schedule(static)
        for (int e = 0; e < E; e++) {
            float s = 0.0f;
            for (int i = 0; i < BT; i++) s += g->ds[i] * v[(size_t)i * E + e];
            rv->dk[e] += s;
        }
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < BT; i++)
        for (int e = 0; e < E; e++) g->ddtraw0[(size_t)i * E + e] = g->ds[i] * k[e];
}

/* Backward of reorder_forward.  g->du comes in with respect to P-hat u and
 * leaves with respect to u in input order.  The gradient through P-hat
 * reaches k, W_dt, b_dt, the delta rows of W_x and u: SoftSort's own, or
 * for a hard sort the straight-through one (SoftSort's, at the same scores). */
static void reorder_backward(ssm_model *m, const layer_params *p, layer_params *dp,
                             const reorder_view *rv, pass_scratch *g)
{
    const ssm_config *c = &m->cfg;
    int B = m->act_B, L = m->act_L, BT = B * L;
    int E = c->d_inner, R = c->dt_rank, X = R + 2 * c->state_dim;
    float tau = c->reorder_tau;
    memset(g->dperm, 0, sizeof(float) * BT * L);
    ssm_reorder_dperm(B, L, E, g->du, E, rv->u0, E, g->dperm);
    ssm_reorder_apply_t(B, L, E, rv->perm, g->du, E, g->tmp, E);
    memcpy(g->du, g->tmp, sizeof(float) * BT * E);
    const float *soft = rv->perm;
    if (c->reorder == SSM_REORDER_HARD) {
        ssm_reorder_build(SSM_REORDER_SOFT, B, L, rv->s, tau, g->psoft);
        soft = g->psoft;
    }
    ssm_reorder_backward_soft(B, L, rv->s, tau, soft, g->dperm, g->ds);
    importance_backward(m, rv, g);
    matmul_backward(g->ddelta0, R, 0.0f, dp->dt_proj_w, dp->dt_proj_b, g->ddtraw0, E,
                    rv->xdbl0, X, p->dt_proj_w, BT, E, R);
    matmul_backward(g->du, E, 1.0f, dp->x_proj, NULL, g->ddelta0, R, rv->u0, E,
                    p->x_proj, BT, R, E);
}

/* Backward of layer_forward: g->dresid holds dL/dx_{l+1} on entry and
 * dL/dx_l on exit; parameter gradients accumulate into dp. */
static ssm_status layer_backward(ssm_model *m, const layer_params *p, layer_params *dp,
                           const layer_acts *a, pass_scratch *g)
{
    const ssm_config *c = &m->cfg;
    int B = m->act_B, L = m->act_L, BT = B * L;
    int D = c->d_model, E = c->d_inner, Ns = c->state_dim, R = c->dt_rank, K = c->d_conv,
        X = R + 2 * Ns;
    float *A = g->A;                                         /* (E, Ns) */

    /* out_proj: dmix = dresid (the residual passes it through unchanged) */
    matmul_backward(g->dyg, E, 0.0f, dp->out_proj, NULL, g->dresid, D, a->yg, E,
                    p->out_proj, BT, D, E);
    /* gate: yg = ys * silu(z) */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < BT; i++)
        for (int e = 0; e < E; e++) {
            size_t ie = (size_t)i * E + e, iz = (size_t)i * 2 * E + E + e;
            float z = a->xz[iz];
            g->dys[ie] = g->dyg[ie] * ssm_siluf(z);
            g->dxz[iz] = g->dyg[ie] * a->ys[ie] * ssm_dsiluf(z);
        }
    /* scan */
    ssm_model_run_A(m, a->layer, A);
    memset(g->dA, 0, sizeof(float) * E * Ns);
    ssm_scan_args sa = layer_scan_args(c, a, p->Dskip, g, B, L);
    probe_scan_args(m, a, 0, &sa);
    ssm_status st = ssm_scan_backward(&sa, g->dys, g->du, g->ddelta, g->dxdbl + R,
                                      g->dxdbl + R + Ns, g->dA, dp->Dskip);
    if (st) return st;
    ssm_probe_unpin_grad(m->probe, a->layer, c->state_dim, g->dA);   /* A pinned does not depend on A_log */
    layer_dA_log(c, dp->A_log, g->dA, A);
    /* delta = softplus(dtraw): reuse ddelta as ddtraw */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < (size_t)BT * E; i++)
        g->ddelta[i] *= a->dtraw[i] > 20.0f ? 1.0f : ssm_sigmoidf(a->dtraw[i]);
    matmul_backward(g->dxdbl, X, 0.0f, dp->dt_proj_w, dp->dt_proj_b, g->ddelta, E,
                    a->xdbl, X, p->dt_proj_w, BT, E, R);
    /* x_proj: du += dxdbl · W_x */
    matmul_backward(g->du, E, 1.0f, dp->x_proj, NULL, g->dxdbl, X, a->u, E,
                    p->x_proj, BT, X, E);
    int r = ssm_reorder_slot(c, a->layer);
    if (r >= 0) {
        reorder_view rv = reorder_view_of(m, r);
        reorder_backward(m, p, dp, &rv, g);
    }
    /* u = silu(uc) */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < (size_t)BT * E; i++) g->du[i] *= ssm_dsiluf(a->uc[i]);
    ssm_conv_args ca = {B, L, E, K, a->xz, 2 * E, p->conv_w, p->conv_b, g->work, g->work_n};
    ssm_conv_backward(&ca, g->du, g->dxz, dp->conv_w, dp->conv_b);
    /* in_proj, then the norm; the residual adds dresid to dx_l */
    matmul_backward(g->dxn, D, 0.0f, dp->in_proj, NULL, g->dxz, 2 * E, a->xn, D,
                    p->in_proj, BT, 2 * E, D);
    rmsnorm_backward(g->dresid, dp->norm_w, g->dxn, a->x, a->rstd, p->norm_w, BT, D);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Embedding, head and loss                                                 */

/* Row of x_0 (B, act_L, D) that holds input token i of the (B, L) batch:
 * under pool cls each sequence has one more row, the cls token's, at its end */
static size_t input_row(const ssm_model *m, int i, int L)
{
    return (size_t)(i / L) * m->act_L + i % L;
}

/* x (D) = the embedding of token t, widened from bf16 in a bf16 model */
static void embed_row(const ssm_model *m, int t, float *x)
{
    size_t D = m->cfg.d_model;
    if (m->wbf.embedding)
        for (size_t d = 0; d < D; d++) x[d] = ssm_bf16_to_f32(m->wbf.embedding[t * D + d]);
    else
        memcpy(x, m->params.embedding + t * D, sizeof(float) * D);
}

/* x_0 = the embedded inputs, and under pool cls the cls token after each sequence */
static ssm_status embed_forward(ssm_model *m, const ssm_batch *b)
{
    const ssm_config *c = &m->cfg;
    int D = c->d_model, BT = b->B * b->L, In = c->d_input, Lm = m->act_L;
    float *x0 = m->acts.resid;                               /* (B, act_L, D) */
    if (c->input_kind == SSM_INPUT_CONTINUOUS) {
        if (Lm == b->L)
            matmul_forward(NULL, x0, D, b->inputs, In, m->params.input_w, m->params.input_b, BT, D, In);
        else
            for (int s = 0; s < b->B; s++)
                matmul_forward(NULL, x0 + (size_t)s * Lm * D, D, b->inputs + (size_t)s * b->L * In, In,
                               m->params.input_w, m->params.input_b, b->L, D, In);
    } else {
        for (int i = 0; i < BT; i++) {
            int t = b->tokens[i];
            if (t < 0 || t >= c->padded_vocab)
                return ssm_fail(SSM_ERR_DATA, "token id %d at position %d is outside the vocabulary [0, %d)",
                                t, i, c->padded_vocab);
            embed_row(m, t, x0 + input_row(m, i, b->L) * D);
        }
    }
    if (c->pool == SSM_POOL_CLS)
        for (int s = 0; s < b->B; s++)
            memcpy(x0 + ((size_t)s * Lm + b->L) * D, m->params.cls_tok, sizeof(float) * D);
    return SSM_OK;
}

/* dx0 (B, act_L, D) = dL/dx_0 -> input projection or embedding gradients,
 * and dcls, summed over the batch's cls rows */
static void embed_backward(ssm_model *m, const float *dx0)
{
    const ssm_config *c = &m->cfg;
    const ssm_batch *b = m->last;
    int D = c->d_model, BT = b->B * b->L, In = c->d_input, Lm = m->act_L;
    if (c->input_kind == SSM_INPUT_CONTINUOUS) {
        if (Lm == b->L)
            matmul_backward(NULL, 0, 0.0f, m->grads.input_w, m->grads.input_b, dx0, D,
                            b->inputs, In, NULL, BT, D, In);
        else
            for (int s = 0; s < b->B; s++)
                matmul_backward(NULL, 0, 0.0f, m->grads.input_w, m->grads.input_b,
                                dx0 + (size_t)s * Lm * D, D, b->inputs + (size_t)s * b->L * In, In,
                                NULL, b->L, D, In);
    } else {
        for (int i = 0; i < BT; i++) {
            float *row = m->grads.embedding + (size_t)b->tokens[i] * D;
            const float *dx = dx0 + input_row(m, i, b->L) * D;
            for (int d = 0; d < D; d++) row[d] += dx[d];
        }
    }
    if (c->pool == SSM_POOL_CLS)
        for (int s = 0; s < b->B; s++)
            for (int d = 0; d < D; d++)
                m->grads.cls_tok[d] += dx0[((size_t)s * Lm + b->L) * D + d];
}

/* Softmax cross-entropy over rows of logits (M, V).  Rows with target < 0
 * are ignored.  Writes softmax - onehot into dlogits (unscaled, zero for
 * ignored rows) unless it is NULL (no gradients), and returns the summed
 * loss; *count gets the rows counted. */
static double softmax_xent(float *dlogits, const float *logits, const int *targets,
                           int M, int V, int *count)
{
    double total = 0.0;
    int n = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, n)
    for (int i = 0; i < M; i++) {
        const float *li = logits + (size_t)i * V;
        float *di = dlogits ? dlogits + (size_t)i * V : NULL;
        int t = targets[i];
        if (t < 0) {
            if (di) memset(di, 0, sizeof(float) * V);
            continue;
        }
        float mx = li[0];
        for (int v = 1; v < V; v++) mx = li[v] > mx ? li[v] : mx;
        double s = 0.0;
        for (int v = 0; v < V; v++) s += exp((double)(li[v] - mx));
        if (di) {
            for (int v = 0; v < V; v++) di[v] = (float)(exp((double)(li[v] - mx)) / s);
            di[t] -= 1.0f;
        }
        total += log(s) + mx - li[t];
        n++;
    }
    *count = n;
    return total;
}

static ssm_status check_targets(const ssm_config *c, const ssm_batch *b)
{
    int M = c->n_classes ? b->B : b->B * b->L;
    int V = c->n_classes ? c->n_classes : c->padded_vocab;
    for (int i = 0; i < M; i++)
        if (b->targets[i] >= V)
            return ssm_fail(SSM_ERR_DATA, "target %d at position %d is outside [0, %d)",
                            b->targets[i], i, V);
    return SSM_OK;
}

/* logits (M, V) = x (M, D) times the LM head, logits rows at stride ldo and
 * x rows at stride ldx.  In a bf16 model a single row is a bf16
 * matrix-vector product; more rows widen the head HEAD_ROWS rows at a time
 * into scratch (HEAD_ROWS * D floats) for the GEMM. */
static void lm_head_forward(const ssm_model *m, float *logits, int ldo, const float *x, int ldx,
                            int M, float *scratch)
{
    const ssm_config *c = &m->cfg;
    int D = c->d_model, V = c->padded_vocab;
    const uint16_t *W16 = m->wbf.lm_head ? m->wbf.lm_head : m->wbf.embedding;
    if (!W16) {
        const float *W = m->params.lm_head ? m->params.lm_head : m->params.embedding;
        if (M == 1)   /* logits^T (V, 1) = W (V, D) . x^T: the V rows split over the threads */
            matmul_forward(NULL, logits, 1, W, D, x, NULL, V, 1, D);
        else
            matmul_forward(NULL, logits, ldo, x, ldx, W, NULL, M, V, D);
        return;
    }
    if (M == 1) {
        ssm_bf16_matvec_par(logits, W16, x, NULL, V, D);
        return;
    }
    for (int v0 = 0; v0 < V; v0 += HEAD_ROWS) {
        int nv = V - v0 < HEAD_ROWS ? V - v0 : HEAD_ROWS;
        ssm_bf16_widen(scratch, W16 + (size_t)v0 * D, (size_t)nv * D);
        matmul_forward(NULL, logits + v0, ldo, x, ldx, scratch, NULL, M, nv, D);
    }
}

static void head_forward(ssm_model *m, int B, int L, int last_only)
{
    const ssm_config *c = &m->cfg;
    ssm_acts *a = &m->acts;
    int D = c->d_model, BT = B * L;
    const float *xn = resid_slot(m, c->n_layer);
    if (c->n_classes == 0 && last_only) {
        for (int b = 0; b < B; b++) {   /* row L-1 of each sequence, at stride L */
            size_t r = (size_t)b * L + L - 1;
            rmsnorm_forward(a->xf + r * D, a->rstd_f + r, xn + r * D, m->params.norm_f, 1, D, c->norm_eps);
            lm_head_forward(m, a->logits + (size_t)b * c->padded_vocab, c->padded_vocab,
                            a->xf + r * D, D, 1, m->widen);
        }
        return;
    }
    rmsnorm_forward(a->xf, a->rstd_f, xn, m->params.norm_f, BT, D, c->norm_eps);
    if (c->n_classes == 0) {
        lm_head_forward(m, a->logits, c->padded_vocab, a->xf, D, BT, m->widen);
        return;
    }
    if (c->pool == SSM_POOL_MEAN)
        for (int b = 0; b < B; b++)
            for (int d = 0; d < D; d++) {
                float s = 0.0f;
                for (int t = 0; t < L; t++) s += a->xf[((size_t)b * L + t) * D + d];
                a->pooled[(size_t)b * D + d] = s / L;
            }
    else   /* last and cls: the last position (the cls token's under cls) */
        for (int b = 0; b < B; b++)
            memcpy(a->pooled + (size_t)b * D, a->xf + ((size_t)b * L + L - 1) * D, sizeof(float) * D);
    matmul_forward(NULL, a->logits, c->n_classes, a->pooled, D, m->params.cls_w, m->params.cls_b,
                   B, c->n_classes, D);
}

/* dlogits (already scaled) -> g->dresid = dL/dx_n; head gradients accumulate */
static void head_backward(ssm_model *m, pass_scratch *g)
{
    const ssm_config *c = &m->cfg;
    ssm_acts *a = &m->acts;
    int B = m->act_B, L = m->act_L, D = c->d_model, BT = B * L;
    if (c->n_classes == 0) {
        int V = c->padded_vocab;
        const float *W = m->params.lm_head ? m->params.lm_head : m->params.embedding;
        float *dW = m->params.lm_head ? m->grads.lm_head : m->grads.embedding;
        matmul_backward(g->dxf, D, 0.0f, dW, NULL, a->dlogits, V, a->xf, D, W, BT, V, D);
    } else {
        int C = c->n_classes;
        matmul_backward(g->dpooled, D, 0.0f, m->grads.cls_w, m->grads.cls_b, a->dlogits, C,
                        a->pooled, D, m->params.cls_w, B, C, D);
        if (c->pool == SSM_POOL_MEAN)
            for (int i = 0; i < BT; i++)
                for (int d = 0; d < D; d++)
                    g->dxf[(size_t)i * D + d] = g->dpooled[(size_t)(i / L) * D + d] / L;
        else
            for (int i = 0; i < BT; i++)
                for (int d = 0; d < D; d++)
                    g->dxf[(size_t)i * D + d] = i % L == L - 1 ? g->dpooled[(size_t)(i / L) * D + d] : 0.0f;
    }
    memset(g->dresid, 0, sizeof(float) * BT * D);
    rmsnorm_backward(g->dresid, m->grads.norm_f, g->dxf,
                     a->resid + (size_t)c->n_layer * BT * D, a->rstd_f, m->params.norm_f, BT, D);
}

/* ------------------------------------------------------------------------ */
/* Passes                                                                   */

/* The probe's buffers for a (B, L) forward: the states of one layer when
 * it wants them; and its patch position checked against L */
static ssm_status probe_prepare(ssm_model *m, int B, int L)
{
    const ssm_probe *pr = m->probe;
    m->probe_patched = pr && pr->patch_kind != SSM_PATCH_NONE;
    if (!pr) return SSM_OK;
    ssm_status st = ssm_model_probe_check(m, pr, L);
    if (st) return st;
    size_t need = pr->want_states ? (size_t)B * L * m->cfg.d_inner * m->cfg.state_dim : 0;
    if (need > m->probe_h_cap) {
        free(m->probe_h);
        if (!(m->probe_h = malloc(sizeof(float) * need))) {
            m->probe_h_cap = 0;
            return ssm_fail(SSM_ERR_NOMEM, "out of memory for the states of %zu floats", need);
        }
        m->probe_h_cap = need;
    }
    return SSM_OK;
}

ssm_status ssm_model_probe_check(const ssm_model *m, const ssm_probe *p, int L)
{
    const ssm_config *c = &m->cfg;
    ssm_probe_shape s = {c->n_layer, c->d_inner, c->state_dim, c->state_dim, "channel", "state channel",
                         "state channel"};
    if (c->arch == SSM_ARCH_MAMBA2)   /* heads, entries (p, n) of a head's state, A_h */
        s = (ssm_probe_shape){c->n_layer, c->n_heads, c->head_dim * c->d_state, 1, "head",
                              "state entry p*N+n", "entry of the head's scalar A (pin L:H:VALUE)"};
    return ssm_probe_check_shape(p, &s, L);
}

ssm_status ssm_model_set_probe(ssm_model *m, const ssm_probe *p)
{
    const ssm_config *c = &m->cfg;
    if (p) {
        ssm_probe q = *p;
        q.patch_kind = SSM_PATCH_NONE;   /* the position is checked per forward */
        ssm_status st = ssm_model_probe_check(m, &q, 1);
        if (st) return st;
        if (!m->probe_keep && !(m->probe_keep = malloc(sizeof(float) * c->d_inner * c->state_dim)))
            return ssm_fail(SSM_ERR_NOMEM, "out of memory for a probe");
    }
    m->probe = p;
    return SSM_OK;
}

ssm_status ssm_model_forward_hooked(ssm_model *m, const ssm_batch *b, const ssm_probe *hook)
{
    const ssm_probe *outer = m->probe;
    ssm_probe p = outer ? *outer : (ssm_probe){0};
    p.on_layer = hook->on_layer;
    p.ctx = hook->ctx;
    p.want_states = p.want_states || hook->want_states;
    if (hook->final_h) p.final_h = hook->final_h;
    ssm_status st = ssm_model_set_probe(m, &p);
    if (!st) st = ssm_model_forward(m, b);
    m->probe = outer;
    return st;
}

ssm_status ssm_model_head_apply(const ssm_model *m, const float *x, int M, float *logits)
{
    const ssm_config *c = &m->cfg;
    int D = c->d_model;
    if (c->n_classes)
        return ssm_fail(SSM_ERR_USAGE, "the logit lens needs a language model, not a classifier");
    size_t head = m->weights == SSM_WEIGHTS_BF16 ? (size_t)HEAD_ROWS * D : 0;
    /* (M, D), then rstd (M), then a bf16 model's block of head rows (HEAD_ROWS, D) */
    float *xf = malloc(sizeof(float) * ((size_t)M * D + M + head));
    if (!xf) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the lens of %d rows", M);
    rmsnorm_forward(xf, xf + (size_t)M * D, x, m->params.norm_f, M, D, c->norm_eps);
    lm_head_forward(m, logits, c->padded_vocab, xf, D, M, xf + (size_t)M * D + M);
    free(xf);
    return SSM_OK;
}

/* The forward; last_only: the LM head on each sequence's last position */
static ssm_status forward_run(ssm_model *m, const ssm_batch *b, int last_only)
{
    const ssm_config *c = &m->cfg;
    ssm_status st;
    if (b->B <= 0 || b->L <= 0)
        return ssm_fail(SSM_ERR_USAGE, "batch shape %d x %d is empty", b->B, b->L);
    int Lm = b->L + (c->pool == SSM_POOL_CLS);   /* the cls token runs as one more */
    int lean = last_only && !acts_kept(m);
    if (b->B != m->act_B || Lm != m->act_L || !m->acts_memory ||
        omp_get_max_threads() != m->act_threads || lean != m->act_lean)
        if ((st = acts_build(m, b->B, Lm, lean))) return st;
    if ((st = probe_prepare(m, b->B, Lm)) || (st = widen_reserve(m))) return st;
    if ((st = embed_forward(m, b))) return st;
    ssm_scenario_forward(c, &m->params);
    pass_scratch g = scratch_view(m);
    for (int l = 0; l < c->n_layer; l++) {
        if (c->arch == SSM_ARCH_MAMBA2) {   /* Mamba-2 layers: engine/mamba2.c */
            if ((st = ssm_mamba2_layer_forward(m, l, g.m2))) return st;
            continue;
        }
        layer_params p = layer_params_run(m, l);
        layer_acts a = layer_acts_view(m, l);
        /* a lean pass reads the last layer's output on the last rows only */
        int last_rows = lean && !m->probe && c->n_classes == 0 && c->n_reorder == 0 && l == c->n_layer - 1;
        if ((st = layer_forward(m, &p, &a, &g, last_rows))) return st;
    }
    head_forward(m, b->B, Lm, last_only);
    m->last = b;
    m->loss = 0.0f;
    m->n_targets = 0;
    if (!b->targets) return SSM_OK;
    if ((st = check_targets(c, b))) return st;
    int M = c->n_classes ? b->B : b->B * b->L;
    int V = c->n_classes ? c->n_classes : c->padded_vocab;
    double total = softmax_xent(m->acts.dlogits, m->acts.logits, b->targets, M, V, &m->n_targets);
    m->loss = m->n_targets ? (float)(total / m->n_targets) : 0.0f;
    return SSM_OK;
}

ssm_status ssm_model_forward(ssm_model *m, const ssm_batch *b)
{
    return forward_run(m, b, 0);
}

ssm_status ssm_model_forward_last(ssm_model *m, const ssm_batch *b)
{
    if (m->cfg.n_classes || b->targets)
        return ssm_fail(SSM_ERR_USAGE, "last-position logits are for a language model without targets");
    return forward_run(m, b, 1);
}

/* Activations for (B, L) and the scenario's S_B, S_C for a one-layer pass;
 * the activations stop belonging to the last forward. */
static ssm_status one_layer_prepare(ssm_model *m, int layer, int B, int L)
{
    const ssm_config *c = &m->cfg;
    ssm_status st;
    if (layer < 0 || layer >= c->n_layer)
        return ssm_fail(SSM_ERR_USAGE, "layer %d is not in [0, %d)", layer, c->n_layer);
    if (B <= 0 || L <= 0)
        return ssm_fail(SSM_ERR_USAGE, "batch shape %d x %d is empty", B, L);
    if (B != m->act_B || L != m->act_L || !m->acts_memory ||
        omp_get_max_threads() != m->act_threads || m->act_lean)
        if ((st = acts_build(m, B, L, 0))) return st;
    if ((st = widen_reserve(m))) return st;
    m->last = NULL;
    ssm_scenario_forward(c, &m->params);
    return SSM_OK;
}

/* One layer on (B, L): the mixer (in, out (B, L, D)) or, with s6, the S6
 * map without skip (in, out (B, L, E)) */
static ssm_status one_layer_run(ssm_model *m, int layer, int s6, const float *in, int B, int L,
                                float *out)
{
    const ssm_config *c = &m->cfg;
    /* Mamba-2 has no S6 map: its SSD's B, C and dt come from in_proj of the
     * normalised residual, not from the SSD's own input x */
    if (s6 && c->arch != SSM_ARCH_MAMBA1)
        return ssm_fail(SSM_ERR_USAGE, "the S6 map alone (--flow-system s6) is Mamba-1's: a %s SSD takes "
                        "B, C and dt from in_proj, not from its input x", ssm_arch_name(c->arch));
    ssm_status st = one_layer_prepare(m, layer, B, L);
    if (st) return st;
    if (c->arch == SSM_ARCH_MAMBA2) {
        pass_scratch g = scratch_view(m);
        return ssm_mamba2_mixer_forward(m, layer, in, out, g.m2);
    }
    float *zero = s6 ? calloc(c->d_inner, sizeof(float)) : NULL;   /* (E) no skip */
    if (s6 && !zero) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the S6 skip");
    pass_scratch g = scratch_view(m);
    layer_params p = layer_params_run(m, layer);
    layer_acts a = layer_acts_view(m, layer);
    size_t n = (size_t)B * L * (s6 ? c->d_inner : c->d_model);
    memcpy(s6 ? a.u : a.xn, in, sizeof(float) * n);
    st = s6 ? s6_forward(m, &p, &a, &g, zero, 0) : mixer_forward(m, &p, &a, &g, 0, 0);
    if (!st) memcpy(out, s6 ? a.ys : a.mix, sizeof(float) * n);
    free(zero);
    return st;
}

ssm_status ssm_model_mixer_forward(ssm_model *m, int layer, const float *x, int B, int L,
                                   float *out)
{
    return one_layer_run(m, layer, 0, x, B, L, out);
}

ssm_status ssm_model_s6_forward(ssm_model *m, int layer, const float *u, int B, int L,
                                float *y)
{
    return one_layer_run(m, layer, 1, u, B, L, y);
}

/* The gradient views of an input-only backward: no dW, dbias, dnorm or
 * dA_log (NULL); the D skip and conv gradients, which the scan and conv
 * kernels sum as they go, land in g->dsink and are dropped */
static layer_params input_only_grads(const ssm_config *c, const pass_scratch *g)
{
    size_t E = c->d_inner, K = c->d_conv;
    layer_params v = {0};
    v.conv_w = g->dsink;           /* (E, K) */
    v.conv_b = g->dsink + E * K;   /* (E) */
    v.Dskip = v.conv_b + E;        /* (E) */
    return v;
}

/* Layers n-1 .. 0 backward, from g->dresid = dL/dx_n to dL/dx_0; parameter
 * gradients accumulate when the model has them.  Each layer runs on the
 * weights the forward ran (layer_params_run: a bf16 model's matrices are
 * widened into m->widen right before the layer's GEMMs). */
static ssm_status layers_backward(ssm_model *m, pass_scratch *g)
{
    const ssm_config *c = &m->cfg;
    for (int l = c->n_layer - 1; l >= 0; l--) {
        if (c->arch == SSM_ARCH_MAMBA2) {   /* Mamba-2 layers: engine/mamba2.c */
            ssm_status st = ssm_mamba2_layer_backward(m, l, g->dresid, g->dxn, g->m2);
            if (st) return st;
            continue;
        }
        layer_params p = layer_params_run(m, l);
        layer_params dp = m->grads_memory ? layer_params_view(c, &m->grads, l) : input_only_grads(c, g);
        layer_acts a = layer_acts_view(m, l);
        ssm_status st = layer_backward(m, &p, &dp, &a, g);
        if (st) return st;
    }
    if (m->grads_memory) ssm_scenario_backward(c, &m->params, &m->grads);
    return SSM_OK;
}

ssm_status ssm_model_backward(ssm_model *m, float loss_scale)
{
    const ssm_config *c = &m->cfg;
    ssm_status bst = bf16_refuse(m, "a backward pass");
    if (bst) return bst;
    if (!m->grads_memory || !m->last || !m->last->targets)
        return ssm_fail(SSM_ERR_SOFTWARE, "backward needs gradients and a forward pass with targets");
    if (m->probe_patched)
        return ssm_fail(SSM_ERR_USAGE, "a patched forward pass has no backward");
    if (m->n_targets == 0) return SSM_OK;
    size_t nlogit = c->n_classes ? (size_t)m->act_B * c->n_classes
                                 : (size_t)m->act_B * m->act_L * c->padded_vocab;
    float k = loss_scale / m->n_targets;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nlogit; i++) m->acts.dlogits[i] *= k;
    pass_scratch g = scratch_view(m);
    head_backward(m, &g);
    ssm_status st = layers_backward(m, &g);
    if (!st) embed_backward(m, g.dresid);
    m->last = NULL;   /* dlogits were consumed */
    return st;
}

ssm_status ssm_model_backward_stream(ssm_model *m, const float *dxn, float *dx0)
{
    if (!acts_kept(m) || !m->last)
        return ssm_fail(SSM_ERR_SOFTWARE, "backward needs a forward pass that kept its activations "
                        "(gradients, or ssm_model_keep_acts)");
    if (m->probe_patched)
        return ssm_fail(SSM_ERR_USAGE, "a patched forward pass has no backward");
    pass_scratch g = scratch_view(m);
    size_t n = (size_t)m->act_B * m->act_L * m->cfg.d_model;
    memcpy(g.dresid, dxn, sizeof(float) * n);
    ssm_status st = layers_backward(m, &g);
    if (!st) memcpy(dx0, g.dresid, sizeof(float) * n);
    return st;
}

int ssm_model_input_len(const ssm_model *m)
{
    return m->act_L - (m->cfg.pool == SSM_POOL_CLS);
}

ssm_status ssm_model_input_grad(const ssm_model *m, float *dinputs)
{
    const ssm_config *c = &m->cfg;
    if (!m->grads_memory || !m->acts_memory)
        return ssm_fail(SSM_ERR_SOFTWARE, "input gradients need a backward pass");
    pass_scratch g = scratch_view(m);
    int B = m->act_B, Lm = m->act_L, L = ssm_model_input_len(m), D = c->d_model,
        In = c->d_input;
    if (L == Lm) { B = 1; L = Lm = m->act_B * m->act_L; }   /* no cls row: one block */
    for (int s = 0; s < B; s++) {   /* the inputs' rows of dx_0, without the cls row */
        const float *dx0 = g.dresid + (size_t)s * Lm * D;
        if (c->input_kind == SSM_INPUT_TOKENS) {
            memcpy(dinputs + (size_t)s * L * D, dx0, sizeof(float) * L * D);
            continue;
        }
        /* x_0 = inputs W_in^T + b: d inputs = dx_0 W_in */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, In, D, 1.0f,
                    dx0, D, m->params.input_w, In, 0.0f, dinputs + (size_t)s * L * In, In);
    }
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Threads                                                                  */

void ssm_threads_set(int n)
{
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(1);   /* see ssm_split_rows(): GEMMs split over OpenMP */
}

int ssm_threads_get(void) { return omp_get_max_threads(); }

/* ------------------------------------------------------------------------ */
/* Building blocks for engine/mamba2.c                                      */

void ssm_model_matmul_forward(ssm_balance *bal, float *out, int ldo, const float *in, int ldi, const float *W,
                              const float *bias, int M, int N, int K)
{
    matmul_forward(bal, out, ldo, in, ldi, W, bias, M, N, K);
}

void ssm_model_matmul_backward(float *din, int lddi, float beta, float *dW, float *dbias,
                               const float *dout, int ldd, const float *in, int ldi,
                               const float *W, int M, int N, int K)
{
    matmul_backward(din, lddi, beta, dW, dbias, dout, ldd, in, ldi, W, M, N, K);
}

void ssm_model_importance_proxy(ssm_model *m, const float *dt, int H)
{
    importance_forward(m, dt, H, NULL, m->acts.imp_s);
}

void ssm_model_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int M, int D,
                               float eps)
{
    rmsnorm_forward(y, rstd, x, w, M, D, eps);
}

void ssm_model_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x,
                                const float *rstd, const float *w, int M, int D)
{
    rmsnorm_backward(dx, dw, dy, x, rstd, w, M, D);
}
