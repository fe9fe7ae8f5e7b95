/* inspect_recency.c — `ssmlab inspect --attention / --influence /
 * --smoothing`: hidden attention, influence with its decay fit, and
 * residual-stream over-smoothing (ssmlab-math(7) RECENCY, engine/recency.h) as long-format
 * CSV or JSONL tables (stdout, or files with --out) and, with --figures,
 * their figures.  Columns in ssmlab-inspect(1). */
#include "cli/inspect_recency.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "cli/inspect_figures.h"
#include "engine/recency.h"
#include "scenarios/task_dynamics.h"

#define RECENCY_DEFAULT_TARGETS 4
#define RECENCY_PROBE_SEED 1       /* fixed: the same input gives the same table */

void cli_recency_defaults(cli_recency_opts *o)
{
    *o = (cli_recency_opts){.layer = -1, .channel = SSM_ATTN_MEAN,
                            .targets = RECENCY_DEFAULT_TARGETS, .probes = SSM_INFLUENCE_AUTO};
}

int cli_recency_any(const cli_recency_opts *o) { return o->attention || o->influence || o->smoothing; }

/* --channel: a channel number or "mean" */
static int channel_parse(const char *s, void *dst)
{
    long v;
    if (!strcmp(s, "mean")) v = SSM_ATTN_MEAN;
    else if (cli_parse_long(s, &v) || v < 0 || v > 1 << 20) return -1;
    *(int *)dst = (int)v;
    return 0;
}

static const cli_opt options[] = {
    {"attention", 0, CLI_OPT_FLAG, .help = "print the hidden attention table",
     .offset = offsetof(cli_recency_opts, attention)},
    {"layer", 0, CLI_OPT_INT, 0, 1 << 20, .metavar = "L", .help = "with --attention: only layer L (default: every layer)",
     .offset = offsetof(cli_recency_opts, layer)},
    {"channel", 0, CLI_OPT_CUSTOM, .metavar = "E|mean",
     .help = "with --attention: channel E (head for Mamba-2), or the mean of |alpha| (default)",
     .offset = offsetof(cli_recency_opts, channel), .what = "a channel number or 'mean'", .parse = channel_parse},
    {"influence", 0, CLI_OPT_FLAG, .help = "print the influence table and its decay fit",
     .offset = offsetof(cli_recency_opts, influence)},
    {"targets", 0, CLI_OPT_INT, 1, CLI_NO_LIMIT, .metavar = "N", .help = "with --influence: N target positions (default 4)",
     .offset = offsetof(cli_recency_opts, targets), .what = "a count"},
    {"probes", 0, CLI_OPT_INT, 0, 1 << 20, .metavar = "K",
     .help = "with --influence: 0 exact, K > 0 Gaussian probes (default: by size)",
     .offset = offsetof(cli_recency_opts, probes)},
    {"smoothing", 0, CLI_OPT_FLAG, .help = "print the over-smoothing table",
     .offset = offsetof(cli_recency_opts, smoothing)},
    CLI_OPT_END};

const cli_opt *cli_recency_options(void) { return options; }

int cli_recency_validate(const cli_recency_opts *o, const cli_args *a)
{
    if ((cli_opts_given(a, "layer") || cli_opts_given(a, "channel")) && !o->attention)
        return cli_usage_error("inspect: --layer and --channel go with --attention");
    if ((cli_opts_given(a, "targets") || cli_opts_given(a, "probes")) && !o->influence)
        return cli_usage_error("inspect: --targets and --probes go with --influence");
    return EX_OK;
}

ssm_status cli_recency_check(const cli_recency_opts *o, const ssm_config *c)
{
    if (o->attention && o->layer >= c->n_layer)
        return ssm_fail(SSM_ERR_USAGE, "--layer %d: the model has layers 0..%d", o->layer, c->n_layer - 1);
    if (o->attention && c->arch == SSM_ARCH_MAMBA2 && o->channel >= c->n_heads)
        return ssm_fail(SSM_ERR_USAGE, "--channel %d: a Mamba-2 model's attention is per head, "
                        "and it has heads 0..%d", o->channel, c->n_heads - 1);
    if (o->attention && o->channel >= c->d_inner)
        return ssm_fail(SSM_ERR_USAGE, "--channel %d: the model has channels 0..%d (d_inner)",
                        o->channel, c->d_inner - 1);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* --attention                                                              */

/* rows s <= t of one (layer, seq) map: raw and row-normalised; unit
 * "channel", or "head" for Mamba-2 */
static void attention_rows(cli_table *t, int layer, int seq, int channel, const char *unit,
                           const float *raw, const float *rn, int L)
{
    char v[6][40];
    snprintf(v[0], 40, "%d", layer);
    snprintf(v[1], 40, "%d", seq);
    snprintf(v[2], 40, "%d", channel);
    for (int i = 0; i < L; i++)
        for (int s = 0; s <= i; s++) {
            snprintf(v[3], 40, "%d", i);
            snprintf(v[4], 40, "%d", s);
            snprintf(v[5], 40, "%.9g", raw[(size_t)i * L + s]);
            char nv[40];
            snprintf(nv, 40, "%.9g", rn[(size_t)i * L + s]);
            const char *row[] = {"attention", v[0], v[1], v[3], v[4],
                                 channel < 0 ? "mean_abs" : unit, channel < 0 ? NULL : v[2],
                                 v[5], nv};
            cli_table_row(t, row);
        }
}

/* The row-normalised map of one sequence into map (L, L) for the figure,
 * NaN above the diagonal (no attention there). */
static void attention_keep(const float *rn, int L, double *map)
{
    for (int t = 0; t < L; t++)
        for (int s = 0; s < L; s++) map[(size_t)t * L + s] = s <= t ? rn[(size_t)t * L + s] : NAN;
}

static ssm_status emit_attention(const cli_recency_opts *o, const ssm_model *m, cli_inspect_out *out)
{
    const char *unit = m->cfg.arch == SSM_ARCH_MAMBA2 ? "head" : "channel";
    const char *const cols[] = {"table", "layer", "seq", "t", "s", "aggregation", unit, "raw",
                                "row_normalized"};
    int L = ssm_model_input_len(m), l0 = o->layer < 0 ? 0 : o->layer;
    int l1 = o->layer < 0 ? m->cfg.n_layer : o->layer + 1, nl = l1 - l0;
    float *raw = malloc(sizeof(float) * L * L), *rn = malloc(sizeof(float) * L * L);   /* (L, L) */
    double *maps = out->fig.dir ? malloc(sizeof(double) * nl * L * L) : NULL;   /* (nl, L, L) sequence 0 */
    int *layers = out->fig.dir ? malloc(sizeof(int) * nl) : NULL;              /* (nl) */
    ssm_status st = raw && rn && (!out->fig.dir || (maps && layers))
                        ? SSM_OK : ssm_fail(SSM_ERR_NOMEM, "out of memory for a %d x %d map", L, L);
    cli_table t;
    if (!st) st = cli_tables_begin(&out->tables, &t, "attention", cols, 9);
    for (int l = l0; l < l1 && !st; l++)
        for (int b = 0; b < m->act_B && !st; b++) {
            st = ssm_recency_attention(m, l, b, o->channel, NULL, raw);
            if (st) break;
            ssm_recency_row_normalize(raw, L, rn);
            attention_rows(&t, l, b, o->channel, unit, raw, rn, L);
            if (maps && b == 0) attention_keep(rn, L, maps + (size_t)(l - l0) * L * L);
            if (layers) layers[l - l0] = l;
        }
    st = cli_tables_end(&out->tables, st);
    if (!st && maps) st = cli_figures_attention(&out->fig, maps, layers, nl, L, o->channel, unit, m->act_B);
    free(raw);
    free(rn);
    free(maps);
    free(layers);
    return st;
}

/* ------------------------------------------------------------------------ */
/* --influence                                                              */

static const char *const influence_cols[] = {"table", "kind", "t", "s", "distance", "value",
                                             "method", "probes", "n_seq"};

typedef struct {
    cli_table t;
    char method[16], probes[16], n_seq[16];
} influence_out;

/* one row; t < 0 leaves t, s and distance empty */
static void influence_row(influence_out *out, const char *kind, int t, int s, const char *value)
{
    char v[3][24];
    snprintf(v[0], 24, "%d", t);
    snprintf(v[1], 24, "%d", s);
    snprintf(v[2], 24, "%d", t - s);
    const char *row[] = {"influence", kind, t >= 0 ? v[0] : NULL, t >= 0 ? v[1] : NULL,
                         t >= 0 ? v[2] : NULL, value, out->method, out->probes, out->n_seq};
    cli_table_row(&out->t, row);
}

/* the fit rows; values empty (and a note on stderr) when the fit fails;
 * no half-life, and decay "none", when R^2 < TASK_DECAY_MIN_R2; returns
 * whether the fit succeeded */
static int influence_fit_rows(influence_out *out, const ssm_influence *inf, ssm_decay *fit_out)
{
    ssm_decay fit;
    int ok = ssm_recency_fit_decay(inf, SSM_DECAY_MIN_DIST, &fit) == SSM_OK;
    int exponential = ok && task_decay_exponential(&fit);
    if (!ok) fprintf(stderr, "ssmlab: inspect: %s\n", ssm_last_error());
    *fit_out = fit;
    char v[5][40];
    snprintf(v[0], 40, "%.9g", fit.rate);
    snprintf(v[1], 40, "%.9g", fit.half_life);
    snprintf(v[2], 40, "%.9g", fit.r2);
    snprintf(v[3], 40, "%d", fit.n_points);
    snprintf(v[4], 40, "%d", SSM_DECAY_MIN_DIST);
    influence_row(out, "decay_rate", -1, 0, ok ? v[0] : NULL);
    influence_row(out, "half_life", -1, 0, exponential ? v[1] : NULL);
    influence_row(out, "decay", -1, 0, !ok ? NULL : exponential ? "exponential" : "none");
    influence_row(out, "r2", -1, 0, ok ? v[2] : NULL);
    influence_row(out, "fit_points", -1, 0, ok ? v[3] : NULL);
    influence_row(out, "fit_min_distance", -1, 0, v[4]);
    return ok;
}

static ssm_status emit_influence(const cli_recency_opts *o, ssm_model *m, const ssm_batch *b,
                                 cli_inspect_out *co)
{
    int *targets = malloc(sizeof(int) * (b->L < o->targets ? b->L : o->targets));
    if (!targets) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the targets");
    int n = ssm_recency_targets(b->L, o->targets, targets);
    ssm_influence inf;
    ssm_status st = ssm_recency_influence(m, b, targets, n, o->probes, RECENCY_PROBE_SEED, &inf);
    free(targets);
    if (st) return st;
    influence_out out;
    snprintf(out.method, 16, "%s", inf.probes ? "probes" : "exact");
    snprintf(out.probes, 16, "%d", inf.probes);
    snprintf(out.n_seq, 16, "%d", inf.n_seq);
    if ((st = cli_tables_begin(&co->tables, &out.t, "influence", influence_cols, 9))) {
        ssm_influence_free(&inf);
        return st;
    }
    for (int k = 0; k < inf.n_targets; k++)
        for (int s = 0; s <= inf.targets[k]; s++) {
            char v[40];
            snprintf(v, 40, "%.9g", inf.I[(size_t)k * inf.L + s]);
            influence_row(&out, "influence", inf.targets[k], s, v);
        }
    ssm_decay fit;
    int fitted = influence_fit_rows(&out, &inf, &fit);
    st = cli_tables_end(&co->tables, SSM_OK);
    if (!st && co->fig.dir) st = cli_figures_influence(&co->fig, &inf, fitted ? &fit : NULL, SSM_DECAY_MIN_DIST);
    ssm_influence_free(&inf);
    return st;
}

/* ------------------------------------------------------------------------ */
/* --smoothing                                                              */

static ssm_status emit_smoothing(const ssm_model *m, cli_inspect_out *out)
{
    static const char *const cols[] = {"table", "kind", "layer", "value", "n_seq"};
    int nl = m->cfg.n_layer;
    double *cs = malloc(sizeof(double) * (nl + 1)), *dev = malloc(sizeof(double) * (nl + 1));
    ssm_status st = cs && dev ? ssm_recency_smoothing(m, cs, dev)
                              : ssm_fail(SSM_ERR_NOMEM, "out of memory for over-smoothing");
    if (!st) {
        cli_table t;
        st = cli_tables_begin(&out->tables, &t, "smoothing", cols, 5);
        char v[3][40];
        snprintf(v[2], 40, "%d", m->act_B);
        for (int l = 0; l <= nl && !st; l++) {
            snprintf(v[0], 40, "%d", l);
            snprintf(v[1], 40, "%.9g", cs[l]);
            cli_table_row(&t, (const char *const[]){"smoothing", "cos_mean", v[0], v[1], v[2]});
            snprintf(v[1], 40, "%.9g", dev[l]);
            cli_table_row(&t, (const char *const[]){"smoothing", "deviation", v[0], v[1], v[2]});
        }
        st = cli_tables_end(&out->tables, st);
        if (!st && out->fig.dir) st = cli_figures_smoothing(&out->fig, cs, dev, nl, m->act_B);
    }
    free(cs);
    free(dev);
    return st;
}

ssm_status cli_recency_emit(const cli_recency_opts *o, ssm_model *m, const ssm_batch *b, cli_inspect_out *out)
{
    ssm_status st = SSM_OK;
    if (o->attention || o->smoothing) {
        if ((st = ssm_model_keep_for_backward(m)) || (st = ssm_model_forward(m, b))) return st;
        if (o->attention) st = emit_attention(o, m, out);
    }
    if (!st && o->influence) st = emit_influence(o, m, b, out);
    if (!st && o->smoothing) st = emit_smoothing(m, out);
    m->last = NULL;   /* b belongs to the caller */
    return st;
}
