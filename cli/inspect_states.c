/* inspect_states.c — `ssmlab inspect --states / --lens`: the size and
 * effective rank of the state h_t after every token and the memory horizon
 * of every channel (measured in a probe's hook while the forward runs,
 * layer by layer), and the logit lens of the residual stream at every depth
 * (one depth at a time: one head GEMM of B*L rows), as long-format CSV or
 * JSONL tables and, with --figures, their figures (engine/states.h;
 * columns in ssmlab-inspect(1) STATES and LENS). */
#include "cli/inspect_states.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/token_label.h"
#include "engine/probe.h"
#include "engine/states.h"

#define HORIZON_BINS 7   /* < 1, decades 1 .. 10^4, >= 10^4, inf */

void cli_states_defaults(cli_states_opts *o) { *o = (cli_states_opts){0}; }

int cli_states_any(const cli_states_opts *o) { return o->states || o->lens; }

static const cli_opt options[] = {
    {"states", 0, CLI_OPT_FLAG, .help = "print the states table: ||h_t||, effective rank, memory horizon",
     .offset = offsetof(cli_states_opts, states)},
    {"lens", 0, CLI_OPT_FLAG, .help = "print the logit-lens table (language models)",
     .offset = offsetof(cli_states_opts, lens)},
    CLI_OPT_END};

const cli_opt *cli_states_options(void) { return options; }

ssm_status cli_states_check(const cli_states_opts *o, const ssm_config *c)
{
    if (o->lens && c->n_classes)
        return ssm_fail(SSM_ERR_USAGE, "--lens: the logit lens needs a language model; this model is a "
                        "classifier (%d classes)", c->n_classes);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* --states                                                                 */

/* What the hook keeps of every layer: a few numbers per position and
 * channel (Mamba-2: head), never the states themselves. */
typedef struct {
    int n_layer, B, L, E;   /* L: positions run (the cls token included); E
                             * the horizon's units: channels, or heads */
    int heads;              /* Mamba-2: the units are heads */
    float *norm;            /* (n_layer, B, L) ||h_t||_F */
    float *erank;           /* (n_layer, B, L) effective rank of h_t */
    float *horizon;         /* (n_layer, B, E) memory horizon, tokens */
    ssm_status st;          /* the first failure inside the hook */
} states_acc;

static void states_acc_free(states_acc *a)
{
    free(a->norm);
    free(a->erank);
    free(a->horizon);
}

static ssm_status states_acc_alloc(states_acc *a, const ssm_config *c, int B, int L)
{
    int heads = c->arch == SSM_ARCH_MAMBA2, units = heads ? c->n_heads : c->d_inner;
    *a = (states_acc){c->n_layer, B, L, units, heads, NULL, NULL, NULL, SSM_OK};
    size_t pos = (size_t)c->n_layer * B * L;
    a->norm = malloc(sizeof(float) * pos);
    a->erank = malloc(sizeof(float) * pos);
    a->horizon = malloc(sizeof(float) * c->n_layer * B * units);
    if (a->norm && a->erank && a->horizon) return SSM_OK;
    states_acc_free(a);
    return ssm_fail(SSM_ERR_NOMEM, "out of memory for the states table");
}

/* The effective ranks of one layer's B*L states into out (B*L): an SVD
 * each, the most work of the table, so the states are split over the
 * threads (GSL's SVD calls only single-threaded BLAS). */
static ssm_status states_erank(const ssm_layer_view *v, float *out)
{
    int T = v->B * v->L, parts = omp_get_max_threads(), failed = 0;
    size_t per = (size_t)v->E * v->Ns;   /* one h_t (E, Ns) */
#pragma omp parallel for schedule(static) reduction(| : failed)
    for (int k = 0; k < parts; k++) {
        int t0 = (int)((long)k * T / parts), t1 = (int)((long)(k + 1) * T / parts);
        if (t1 > t0) failed |= ssm_states_erank(v->h + t0 * per, t1 - t0, v->E, v->Ns, out + t0) != SSM_OK;
    }
    return failed ? ssm_fail(SSM_ERR_NOMEM, "out of memory for the SVD of a %d x %d state", v->E, v->Ns)
                  : SSM_OK;
}

/* the probe's hook: one layer's states, sequence by sequence.  Mamba-2:
 * h_t (H, P, N) is the (E, N) matrix of its channels' rows, and the
 * horizon is per head, from dt[h] and the scalar A_h */
static void states_hook(void *ctx, const ssm_layer_view *v)
{
    states_acc *a = ctx;
    size_t per = (size_t)v->L * v->E * v->Ns;   /* one sequence's h (L, E, Ns) */
    int U = v->H ? v->H : v->E, Na = v->H ? 1 : v->Ns;   /* the horizon's units, A's entries of one */
    for (int b = 0; b < v->B; b++) {
        size_t i = ((size_t)v->layer * v->B + b) * v->L;
        ssm_states_norm(v->h + b * per, v->L, v->E, v->Ns, a->norm + i);
        ssm_states_horizon(v->delta + (size_t)b * v->L * U, v->L, U, U, v->A, Na,
                           a->horizon + ((size_t)v->layer * v->B + b) * U);
    }
    if (!a->st) a->st = states_erank(v, a->erank + (size_t)v->layer * v->B * v->L);
}

static const char *const states_cols[] = {"table", "kind", "seq", "layer", "pos", "id", "token",
                                          "channel", "value"};
static const char *const states_cols_heads[] = {"table", "kind", "seq", "layer", "pos", "id", "token",
                                                "head", "value"};
static const unsigned char states_text[] = {1, 1, 0, 0, 0, 0, 1, 0, 0};

/* one row: a position's (e < 0) or a channel's (pos < 0); a position past
 * the input (the cls token) has no id or token */
static void states_row(cli_table *t, const char *kind, int seq, int layer, int pos, int e,
                       const cli_states_input *in, double value)
{
    char v[6][40];
    int tok = pos >= 0 && pos < in->L, i = seq * in->L + pos;
    snprintf(v[0], 40, "%d", seq);
    snprintf(v[1], 40, "%d", layer);
    snprintf(v[2], 40, "%d", pos);
    snprintf(v[3], 40, "%d", tok ? in->ids[i] : 0);
    snprintf(v[4], 40, "%d", e);
    snprintf(v[5], 40, "%.9g", value);   /* an infinite horizon prints as inf */
    const char *row[] = {"states", kind, v[0], v[1], pos >= 0 ? v[2] : NULL, tok ? v[3] : NULL,
                         tok ? in->labels[i] : NULL, e >= 0 ? v[4] : NULL, v[5]};
    cli_table_row(t, row);
}

/* A histogram bin of a horizon: < 1 token, a decade 1-10 .. 10^3-10^4,
 * >= 10^4, infinite; -1 for NaN. */
static int horizon_bin(double h)
{
    if (isnan(h)) return -1;
    if (isinf(h)) return HORIZON_BINS - 1;
    if (h < 1) return 0;
    int k = (int)floor(log10(h)) + 1;
    return k > HORIZON_BINS - 2 ? HORIZON_BINS - 2 : k;
}

/* a layer x position heatmap of sequence 0 into a panel */
static void states_heat(fig_panel *p, double *map, const float *v, const states_acc *a, const char *title,
                        const char *clabel)
{
    for (int l = 0; l < a->n_layer; l++)
        for (int t = 0; t < a->L; t++) map[(size_t)l * a->L + t] = v[(size_t)l * a->B * a->L + t];
    *p = (fig_panel){.kind = FIG_PANEL_HEATMAP,
                     .heat = {{.title = title, .xlabel = "position t", .ylabel = "layer l", .x_integer = 1,
                               .y_integer = 1},
                              map, a->n_layer, a->L, 0, 0, 0, 0, clabel}};
}

/* ||h_t|| and the effective rank over layers x positions, and the horizons'
 * histogram, of sequence 0 */
static ssm_status figure_states(const cli_figures *f, const states_acc *a)
{
    static const char *const bins[HORIZON_BINS] = {"<1", "1-10", "10-100", "100-1k", "1k-10k",
                                                   ("\xe2\x89\xa5" "10k"), "inf"};
    size_t cells = (size_t)a->n_layer * a->L;
    static const int colors[HORIZON_BINS] = {2, 2, 2, 2, 2, 2, 5};   /* finite, infinite */
    double *maps = malloc(sizeof(double) * 2 * cells), count[HORIZON_BINS] = {0};
    if (!maps) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the states figure");
    for (int l = 0; l < a->n_layer; l++)
        for (int e = 0; e < a->E; e++) {
            int k = horizon_bin(a->horizon[(size_t)l * a->B * a->E + e]);
            if (k >= 0) count[k]++;
        }
    fig_panel p[3];
    states_heat(&p[0], maps, a->norm, a, "state size", "\xe2\x80\x96h_t\xe2\x80\x96_F");
    states_heat(&p[1], maps + cells, a->erank, a, "effective rank of h_t", "effective rank");
    p[2] = (fig_panel){.kind = FIG_PANEL_BARS,
                       .bars = {{.title = a->heads ? "memory horizon of each head, all layers"
                                           : "memory horizon of each channel, all layers",
                                 .xlabel = "1 / (mean \xce\x94_t \xc2\xb7 min |A|), tokens",
                                 .ylabel = a->heads ? "heads" : "channels",
                                 .y_integer = 1},
                                bins, count, NULL, NULL, HORIZON_BINS, colors}};
    char title[160];
    snprintf(title, sizeof title, "Selective states, sequence 0%s", a->B > 1 ? " of several" : "");
    fig_page page = {title, p, 3, 3, 0, 0};
    ssm_status st = cli_figures_write(f, "states", &page);
    free(maps);
    return st;
}

static ssm_status emit_states(const states_acc *a, const cli_states_input *in, cli_inspect_out *out)
{
    cli_table t;
    ssm_status st = cli_tables_begin(&out->tables, &t, "states", a->heads ? states_cols_heads : states_cols, 9);
    if (st) return st;
    t.text = states_text;
    for (int b = 0; b < a->B; b++) {
        for (int l = 0; l < a->n_layer; l++)
            for (int i = 0; i < a->L; i++)
                states_row(&t, "norm", b, l, i, -1, in, a->norm[((size_t)l * a->B + b) * a->L + i]);
        for (int l = 0; l < a->n_layer; l++)
            for (int i = 0; i < a->L; i++)
                states_row(&t, "erank", b, l, i, -1, in, a->erank[((size_t)l * a->B + b) * a->L + i]);
        for (int l = 0; l < a->n_layer; l++)
            for (int e = 0; e < a->E; e++)
                states_row(&t, "horizon", b, l, -1, e, in, a->horizon[((size_t)l * a->B + b) * a->E + e]);
    }
    st = cli_tables_end(&out->tables, SSM_OK);
    if (!st && out->fig.dir) st = figure_states(&out->fig, a);
    return st;
}

/* ------------------------------------------------------------------------ */
/* --lens                                                                   */

static const char *const lens_cols[] = {"table", "seq", "layer", "pos", "id", "token", "top_id",
                                        "top_token", "prob", "entropy", "kl"};
static const unsigned char lens_text[] = {1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0};

/* Per depth: KL and entropy summed, KL's range, over every position. */
typedef struct {
    double *kl_mean, *kl_lo, *kl_hi, *ent_mean;   /* (n_layer + 1) each */
} lens_summary;

static void lens_row(cli_table *t, int layer, int i, const cli_states_input *in, const ssm_lens_stat *s,
                     const char *top_token)
{
    char v[8][40];
    snprintf(v[0], 40, "%d", i / in->L);
    snprintf(v[1], 40, "%d", layer);
    snprintf(v[2], 40, "%d", i % in->L);
    snprintf(v[3], 40, "%d", in->ids[i]);
    snprintf(v[4], 40, "%d", s->top);
    snprintf(v[5], 40, "%.9g", s->prob);
    snprintf(v[6], 40, "%.9g", s->entropy);
    snprintf(v[7], 40, "%.9g", s->kl);
    const char *row[] = {"lens", v[0], v[1], v[2], v[3], in->labels[i], v[4], top_token, v[5], v[6], v[7]};
    cli_table_row(t, row);
}

/* The lens of depth l (x_l, 0: the embedding) at every position: one head
 * GEMM into lens (M, V), then a row per position. */
static ssm_status lens_depth(const ssm_model *m, int l, const cli_states_input *in, const ssm_tokenizer *tk,
                             float *lens, cli_table *t, lens_summary *sum)
{
    int V = m->cfg.padded_vocab, M = in->B * in->L;
    ssm_status st = ssm_model_head_apply(m, m->acts.resid + (size_t)l * M * m->cfg.d_model, M, lens);
    if (st) return st;
    sum->kl_lo[l] = INFINITY;
    sum->kl_hi[l] = -INFINITY;
    for (int i = 0; i < M; i++) {
        ssm_lens_stat s;
        ssm_lens_row(lens + (size_t)i * V, m->acts.logits + (size_t)i * V, V, &s);
        char top[CLI_LABEL_MAX];
        cli_token_label(tk, &m->cfg, s.top, in->bytes, top);
        lens_row(t, l, i, in, &s, top);
        sum->kl_mean[l] += s.kl / M;
        sum->ent_mean[l] += s.entropy / M;
        sum->kl_lo[l] = fmin(sum->kl_lo[l], s.kl);
        sum->kl_hi[l] = fmax(sum->kl_hi[l], s.kl);
    }
    return SSM_OK;
}

/* mean KL (with its range) and mean entropy over depth */
static ssm_status figure_lens(const cli_figures *f, const lens_summary *s, int n_layer, int B)
{
    double *x = malloc(sizeof(double) * (n_layer + 1));
    if (!x) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the lens figure");
    for (int l = 0; l <= n_layer; l++) x[l] = l;
    fig_series ser[2] = {
        {"KL(final \xe2\x80\x96 lens_l): mean, range", x, s->kl_mean, s->kl_lo, s->kl_hi,
         n_layer + 1, FIG_AUTO, FIG_AUTO, FIG_LINES | FIG_MARKERS},
        {"entropy of lens_l: mean", x, s->ent_mean, NULL, NULL, n_layer + 1, FIG_AUTO, FIG_AUTO,
         FIG_LINES | FIG_MARKERS | FIG_DASHED},
    };
    char title[160];
    snprintf(title, sizeof title, "Logit lens over depth (%d sequence%s)", B, B == 1 ? "" : "s");
    fig_panel panel = {.kind = FIG_PANEL_XY,
                       .xy = {{.title = title, .xlabel = "depth l of x_l (0: the embedding)", .ylabel = "nats",
                               .x_integer = 1},
                              ser, 2}};
    fig_page page = {NULL, &panel, 1, 1, 560, 320};
    ssm_status st = cli_figures_write(f, "lens", &page);
    free(x);
    return st;
}

static ssm_status emit_lens(const ssm_model *m, const cli_states_input *in, cli_inspect_out *out)
{
    int nl = m->cfg.n_layer;
    size_t M = (size_t)in->B * in->L;
    float *lens = malloc(sizeof(float) * M * m->cfg.padded_vocab);   /* (B*L, V) one depth */
    double *acc = calloc(4 * (size_t)(nl + 1), sizeof(double));       /* lens_summary's arrays */
    lens_summary sum = {acc, acc + nl + 1, acc + 2 * (nl + 1), acc + 3 * (nl + 1)};
    ssm_tokenizer tk;
    int have = 0;
    ssm_status st = lens && acc ? cli_tokenizer_open(in->model_dir, &tk, &have)
                                : ssm_fail(SSM_ERR_NOMEM, "out of memory for the lens of %zu positions", M);
    cli_table t;
    if (!st && !(st = cli_tables_begin(&out->tables, &t, "lens", lens_cols, 11))) t.text = lens_text;
    for (int l = 0; l <= nl && !st; l++) st = lens_depth(m, l, in, have ? &tk : NULL, lens, &t, &sum);
    st = cli_tables_end(&out->tables, st);
    if (!st && out->fig.dir) st = figure_lens(&out->fig, &sum, nl, in->B);
    if (have) ssm_tokenizer_free(&tk);
    free(lens);
    free(acc);
    return st;
}

/* ------------------------------------------------------------------------ */

/* The forward pass, with the states hook attached when --states asks */
static ssm_status states_forward(const cli_states_opts *o, ssm_model *m, const ssm_batch *b, states_acc *acc)
{
    if (!o->states) return ssm_model_forward(m, b);
    ssm_status st = states_acc_alloc(acc, &m->cfg, b->B, b->L + (m->cfg.pool == SSM_POOL_CLS));
    ssm_probe hook = {.want_states = 1, .on_layer = states_hook, .ctx = acc};
    if (!st) st = ssm_model_forward_hooked(m, b, &hook);   /* interventions stay */
    return st ? st : acc->st;
}

ssm_status cli_states_emit(const cli_states_opts *o, ssm_model *m, const ssm_batch *b,
                           const cli_states_input *in, cli_inspect_out *out)
{
    states_acc acc = {0};
    ssm_status st = states_forward(o, m, b, &acc);
    if (!st && o->states) st = emit_states(&acc, in, out);
    if (!st && o->lens) st = emit_lens(m, in, out);
    m->last = NULL;   /* b belongs to the caller */
    states_acc_free(&acc);
    return st;
}
