/* inspect.c — `ssmlab inspect --model DIR`: the token-dynamics measurements
 * of ssmlab-math(7) DYNAMICS on one input (text, through DIR/tokenizer.json when there is
 * one; token ids; or a test image): the spectrum of S_B S_C^T per layer,
 * residual-stream token norms with log-norm slopes and the
 * converging/diverging verdict, the layer-0 importance ranking, and the
 * recency tables of ssmlab-math(7) RECENCY (hidden attention, influence, over-smoothing;
 * cli/inspect_recency.c), as long-format CSV or JSONL tables on stdout or,
 * with --out DIR, one file per table, and with --figures DIR a figure per
 * table (cli/inspect_figures.c; see ssmlab-inspect(1)); with --flow the
 * depth-as-time flow of one layer (cli/inspect_flow.c), also on a fresh
 * model under --scenario without a checkpoint; with --states and --lens the
 * selective states and the logit lens (cli/inspect_states.c); with --dump
 * FILE every intermediate of the forward pass as safetensors
 * (cli/inspect_dump.c). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "engine/checkpoint.h"
#include "cli/cli.h"
#include "scenarios/run_config.h"
#include "engine/dynamics.h"
#include "engine/flow.h"
#include "data/images.h"
#include "cli/inspect_figures.h"
#include "cli/inspect_dump.h"
#include "cli/inspect_flow.h"
#include "cli/inspect_recency.h"
#include "cli/inspect_states.h"
#include "cli/token_label.h"
#include "cli/intervene.h"
#include "engine/model.h"
#include "scenarios/task.h"
#include "data/tokenizer.h"

#define INSPECT_DEFAULT_TEXT "The quick brown fox jumps over the lazy dog."
#define INSPECT_DEFAULT_LEN 16
#define LABEL_MAX CLI_LABEL_MAX

typedef struct {
    const char *model, *text, *tokens, *inputs, *format, *data;
    const char *weights;         /* --weights: f32 (default) or bf16 */
    const char *out, *figures;   /* --out DIR: a file per table; --figures DIR */
    unsigned figure_formats;     /* --figure-format */
    long image;          /* -1: none */
    int spectrum, norms, importance, threads;
    int default_tables;     /* no table asked for: spectrum, norms, importance */
    cli_recency_opts rec;   /* --attention, --influence, --smoothing */
    cli_states_opts states; /* --states, --lens */
    cli_flow_opts flow;     /* --flow and its options, --scenario, --seed */
    cli_dump_opts dump;     /* --dump FILE, --dump-layers */
    cli_intervene_opts iv;  /* --ablate, --pin, --patch (cli/intervene.h) */
    char **kv;              /* (nkv) key=value operands: the --scenario model's keys */
    int nkv;
} inspect_opts;

/* The one batch inspected, with a display label per token. */
typedef struct {
    int B, L;
    int *tokens;          /* (B, L) token ids, token-input models */
    float *inputs;        /* (B, L, I) values, continuous-input models */
    int *ids;             /* (B, L) id column: token id, or patch index */
    char (*labels)[LABEL_MAX];   /* (B, L) token text, or patch "yRxC" */
} inspect_input;

static void input_free(inspect_input *in)
{
    free(in->tokens);
    free(in->inputs);
    free(in->ids);
    free(in->labels);
    memset(in, 0, sizeof *in);
}

static ssm_status input_alloc(inspect_input *in, int B, int L, int d_input)
{
    memset(in, 0, sizeof *in);
    in->B = B;
    in->L = L;
    size_t n = (size_t)B * L;
    in->ids = malloc(sizeof(int) * n);
    in->labels = calloc(n, LABEL_MAX);
    if (d_input) in->inputs = malloc(sizeof(float) * n * d_input);
    else in->tokens = malloc(sizeof(int) * n);
    if (in->ids && in->labels && (in->inputs || in->tokens)) return SSM_OK;
    input_free(in);
    return ssm_fail(SSM_ERR_NOMEM, "out of memory for a %d x %d input", B, L);
}

/* ------------------------------------------------------------------------ */
/* Token labels                                                             */

/* With a tokenizer (tk not NULL), a token shows the bytes it decodes to.
 * Without one, ids are shown as bytes when they are bytes: for --text, and
 * for byte-level models (vocab_size 256); else no label. */
static void label_tokens(inspect_input *in, const ssm_config *c, const ssm_tokenizer *tk, int bytes)
{
    for (int i = 0; i < in->B * in->L; i++)
        cli_token_label(tk, c, in->ids[i] = in->tokens[i], bytes, in->labels[i]);
}

/* ------------------------------------------------------------------------ */
/* Inputs                                                                   */

/* Parse "1,2,3;4,5,6" into (B, L) ids; all sequences of one length. */
static ssm_status tokens_count(const char *s, int *B, int *L)
{
    int rows = 1, n = 0, len = -1;
    for (const char *p = s;; p++) {
        if (*p == ',' || *p == ';' || !*p) n++;
        if (*p != ';' && *p) continue;
        if (len >= 0 && n != len)
            return ssm_fail(SSM_ERR_USAGE, "--tokens: sequences differ in length (%d and %d)", len, n);
        len = n;
        n = 0;
        if (!*p) break;
        rows++;
    }
    *B = rows;
    *L = len;
    return SSM_OK;
}

static ssm_status tokens_parse(const char *s, inspect_input *in, const ssm_config *c,
                               const ssm_tokenizer *tk)
{
    int B, L;
    ssm_status st = tokens_count(s, &B, &L);
    if (st || (st = input_alloc(in, B, L, 0))) return st;
    const char *p = s;
    for (int i = 0; i < B * L; i++) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || isspace((unsigned char)*p) || errno || v < 0 || v > 1 << 30 ||
            (*end && *end != ',' && *end != ';')) {
            input_free(in);
            return ssm_fail(SSM_ERR_USAGE, "--tokens: '%s' is not a list of token ids (e.g. 1,2,3;4,5,6)", s);
        }
        in->tokens[i] = (int)v;
        p = *end ? end + 1 : end;
    }
    label_tokens(in, c, tk, 0);
    return SSM_OK;
}

/* text as one sequence: encoded by tk when given, else one token per byte */
static ssm_status text_encode(const char *text, inspect_input *in, const ssm_config *c,
                              const ssm_tokenizer *tk)
{
    int *ids = NULL, L = (int)strlen(text);
    ssm_status st = tk ? ssm_tokenizer_encode(tk, text, strlen(text), &ids, &L) : SSM_OK;
    if (!st && L == 0) st = ssm_fail(SSM_ERR_USAGE, "--text: the text is empty%s", tk ? " after tokenization" : "");
    if (!st) st = input_alloc(in, 1, L, 0);
    for (int t = 0; !st && t < L; t++) in->tokens[t] = ids ? ids[t] : (unsigned char)text[t];
    if (!st) label_tokens(in, c, tk, 1);
    free(ids);
    return st;
}

/* ---- images: the test split named by the checkpoint's run config ---- */

/* The recorded run config, which must be an image classifier's, with --data
 * applied. */
static ssm_status recorded_config(const inspect_opts *o, const char *text, run_config *rc)
{
    ssm_status st = run_config_recorded(rc, o->model, text, o->data, RUN_TASK_CLASSIFY);
    if (!st && rc->dataset == RUN_DATA_TEXT)
        st = ssm_fail(SSM_ERR_DATA, "%s/model.safetensors: the recorded run config is not an "
                      "image classifier's (dataset = text)", o->model);
    return st;
}

static ssm_status image_fill(const task_data *d, long index, const ssm_config *c,
                             inspect_input *in, const char *dir)
{
    const ssm_image_seq *seq = &d->seq;
    const ssm_images *im = &d->test;
    if (seq->d_input != c->d_input)
        return ssm_fail(SSM_ERR_DATA, "%s: tokens have %d values, the model in %s takes %d",
                        im->path, seq->d_input, dir, c->d_input);
    if (index >= im->n)
        return ssm_fail(SSM_ERR_USAGE, "--image %ld: %s has %d test images", index, im->path, im->n);
    ssm_status st = input_alloc(in, 1, seq->L, seq->d_input);
    if (st) return st;
    ssm_images_to_seq(im, seq, (size_t)index, in->inputs);
    int cols = seq->cols / seq->patch;
    for (int t = 0; t < seq->L; t++) {
        in->ids[t] = t;
        snprintf(in->labels[t], LABEL_MAX, "y%dx%d", t / cols, t % cols);
    }
    fprintf(stderr, "# image %ld of %s: label %d, %d tokens of %d values\n", index, im->path,
            im->labels[index], seq->L, seq->d_input);
    return SSM_OK;
}

/* Test image `index` as the run that trained the model made its sequences
 * (task_data_load: the train split's statistics when it standardized). */
static ssm_status image_input(const inspect_opts *o, long index, const char *run_text,
                              const ssm_config *c, inspect_input *in)
{
    if (c->input_kind != SSM_INPUT_CONTINUOUS)
        return ssm_fail(SSM_ERR_USAGE, "--image: the model in %s takes token ids; --image is for "
                        "image classifiers (use --text or --tokens)", o->model);
    run_config rc;
    ssm_status st = recorded_config(o, run_text, &rc);
    if (st) return st;
    task_data d;
    st = task_data_load(&d, &rc, 1);
    if (!st) st = image_fill(&d, index, c, in, o->model);
    task_data_free(&d);
    return st;
}

/* --inputs X.npy: a continuous-input model's batch, B from the file */
static ssm_status npy_input(const inspect_opts *o, const ssm_model *m, inspect_input *in)
{
    if (m->cfg.input_kind != SSM_INPUT_CONTINUOUS)
        return ssm_fail(SSM_ERR_USAGE, "--inputs: the model in %s takes token ids (use --text or --tokens)", o->model);
    float *x;
    int B, L;
    ssm_status st = cli_inputs_read(m, o->inputs, &x, &B, &L);
    if (st) return st;
    if (!(st = input_alloc(in, B, L, m->cfg.d_input))) {
        memcpy(in->inputs, x, sizeof(float) * B * L * m->cfg.d_input);
        for (int i = 0; i < B * L; i++) snprintf(in->labels[i], LABEL_MAX, "t%d", in->ids[i] = i % L);
    }
    free(x);
    return st;
}

/* Token ids 0, 1, ... (mod the vocabulary), INSPECT_DEFAULT_LEN of them:
 * the default input of a model whose vocabulary does not cover the bytes. */
static ssm_status default_tokens(inspect_input *in, const ssm_config *c, const ssm_tokenizer *tk)
{
    ssm_status st = input_alloc(in, 1, INSPECT_DEFAULT_LEN, 0);
    if (st) return st;
    for (int t = 0; t < INSPECT_DEFAULT_LEN; t++) in->tokens[t] = t % c->vocab_size;
    label_tokens(in, c, tk, 0);
    return SSM_OK;
}

/* Token input: --tokens, or --text (encoded with DIR/tokenizer.json when
 * there is one, else as bytes); with neither, INSPECT_DEFAULT_TEXT when there
 * is a tokenizer or the vocabulary holds the 256 bytes, else default_tokens. */
static ssm_status token_input(const inspect_opts *o, const ssm_config *c, inspect_input *in)
{
    ssm_tokenizer tk;
    int have;
    ssm_status st = cli_tokenizer_open(o->model, &tk, &have);
    if (st) return st;
    const ssm_tokenizer *t = have ? &tk : NULL;
    if (o->tokens) st = tokens_parse(o->tokens, in, c, t);
    else if (o->text || t || c->vocab_size >= 256)
        st = text_encode(o->text ? o->text : INSPECT_DEFAULT_TEXT, in, c, t);
    else st = default_tokens(in, c, t);
    if (have) ssm_tokenizer_free(&tk);
    if (!st && (st = task_check_tokens(in->tokens, in->B, in->L, c, o->tokens ? "--tokens" : "--text", o->model)))
        input_free(in);
    return st;
}

/* The input named by the options; with none, test image 0 for image
 * classifiers and token_input's default for token models. */
static ssm_status input_build(const inspect_opts *o, const ssm_model *m, const char *run_config,
                              inspect_input *in)
{
    const ssm_config *c = &m->cfg;
    int continuous = c->input_kind == SSM_INPUT_CONTINUOUS;
    if (o->inputs) return npy_input(o, m, in);
    if (o->image >= 0 || (continuous && !o->text && !o->tokens))
        return image_input(o, o->image >= 0 ? o->image : 0, run_config, c, in);
    if (continuous)
        return ssm_fail(SSM_ERR_USAGE, "%s: the model in %s takes continuous input: use --image N",
                        o->text ? "--text" : "--tokens", o->model);
    return token_input(o, c, in);
}

/* ------------------------------------------------------------------------ */
/* Tables                                                                   */

/* One eigenvalue row and one class row per layer, or for Mamba-2 per
 * (layer, group) with a group column. */
static void spectrum_rows(cli_table *t, const ssm_spectrum *s, int with_group)
{
    char v[5][40];
    for (int r = 0; r < s->n_layer * s->n_groups; r++) {
        snprintf(v[0], 40, "%d", r / s->n_groups);
        snprintf(v[4], 40, "%d", r % s->n_groups);
        const char *g = with_group ? v[4] : NULL;
        for (int i = 0; i < s->N; i++) {
            snprintf(v[1], 40, "%d", i);
            snprintf(v[2], 40, "%.12g", s->re[(size_t)r * s->N + i]);
            snprintf(v[3], 40, "%.12g", s->im[(size_t)r * s->N + i]);
            const char *row[] = {"spectrum", "eigenvalue", v[0], v[1], v[2], v[3], NULL, NULL, NULL, NULL, g};
            cli_table_row(t, row);
        }
        snprintf(v[1], 40, "%d", s->n_pos[r]);
        snprintf(v[2], 40, "%d", s->n_neg[r]);
        snprintf(v[3], 40, "%d", s->n_complex[r]);
        const char *row[] = {"spectrum", with_group ? "group" : "layer", v[0], NULL, NULL, NULL, v[1], v[2], v[3],
                             ssm_spectrum_class_name(s->cls[r]), g};
        cli_table_row(t, row);
    }
}

static ssm_status emit_spectrum(const ssm_model *m, cli_inspect_out *out)
{
    ssm_spectrum s;
    ssm_status st = ssm_dynamics_spectrum(m, &s);
    if (st) return st;
    static const char *const cols[] = {"table", "kind", "layer", "index", "re", "im",
                                       "n_pos", "n_neg", "n_complex", "class", "group"};
    int m2 = m->cfg.arch == SSM_ARCH_MAMBA2;
    cli_table t;
    if ((st = cli_tables_begin(&out->tables, &t, "spectrum", cols, m2 ? 11 : 10))) {
        ssm_spectrum_free(&s);
        return st;
    }
    spectrum_rows(&t, &s, m2);
    st = cli_tables_end(&out->tables, SSM_OK);
    if (!st && out->fig.dir) st = cli_figures_spectrum(&out->fig, &s);
    ssm_spectrum_free(&s);
    return st;
}

static const char *const norm_cols[] = {"table", "kind", "seq", "layer", "pos", "id", "token", "value"};
static const unsigned char norm_text[] = {1, 1, 0, 0, 0, 0, 1, 0};   /* JSON strings even when numeric */

/* one norms-table row; layer < 0 leaves it empty, tok < 0 leaves seq..token empty */
static void norm_row(cli_table *t, const char *kind, int layer, const inspect_input *in, int tok,
                     const char *value)
{
    char v[4][24];
    snprintf(v[0], 24, "%d", tok / (in->L ? in->L : 1));
    snprintf(v[1], 24, "%d", layer);
    snprintf(v[2], 24, "%d", tok % (in->L ? in->L : 1));
    snprintf(v[3], 24, "%d", tok >= 0 ? in->ids[tok] : 0);
    int has = tok >= 0;
    const char *row[] = {"norms", kind, has ? v[0] : NULL, layer >= 0 ? v[1] : NULL,
                         has ? v[2] : NULL, has ? v[3] : NULL, has ? in->labels[tok] : NULL, value};
    cli_table_row(t, row);
}

/* The two norm verdicts, kept for the verdicts table. */
typedef struct {
    float slope, r2, mix_slope, mix_r2;
    int verdict, mix_verdict;
} inspect_trends;

static ssm_status emit_norms(const ssm_model *m, const inspect_input *in, cli_inspect_out *out,
                             inspect_trends *tr)
{
    ssm_norms n;
    ssm_status st = ssm_dynamics_norms(m, &n);
    if (st) return st;
    cli_table t;
    if ((st = cli_tables_begin(&out->tables, &t, "norms", norm_cols, 8))) {
        ssm_norms_free(&n);
        return st;
    }
    t.text = norm_text;
    int T = n.B * n.L;
    char v[40];
    for (int b = 0; b < n.B; b++) {
        for (int l = 0; l <= n.n_layer; l++)
            for (int i = b * n.L; i < (b + 1) * n.L; i++) {
                snprintf(v, sizeof v, "%.9g", n.norms[(size_t)l * T + i]);
                norm_row(&t, "norm", l, in, i, v);
            }
        for (int l = 0; l < n.n_layer; l++)
            for (int i = b * n.L; i < (b + 1) * n.L; i++) {
                snprintf(v, sizeof v, "%.9g", n.mix_norms[(size_t)l * T + i]);
                norm_row(&t, "mix_norm", l, in, i, v);
            }
        for (int i = b * n.L; i < (b + 1) * n.L; i++) {
            snprintf(v, sizeof v, "%.9g", n.slopes[i]);
            norm_row(&t, "slope", -1, in, i, v);
        }
    }
    snprintf(v, sizeof v, "%.9g", n.mean_slope);
    norm_row(&t, "mean_slope", -1, in, -1, v);
    snprintf(v, sizeof v, "%.9g", n.r2);
    norm_row(&t, "r2", -1, in, -1, v);
    norm_row(&t, "verdict", -1, in, -1, ssm_verdict_name(n.verdict));
    *tr = (inspect_trends){n.mean_slope, n.r2, n.mix_mean_slope, n.mix_r2, n.verdict, n.mix_verdict};
    st = cli_tables_end(&out->tables, SSM_OK);
    if (!st && out->fig.dir) st = cli_figures_norms(&out->fig, &n, (const char(*)[LABEL_MAX])in->labels);
    ssm_norms_free(&n);
    return st;
}

/* one verdicts-table row; a NaN slope or R^2 is left empty */
static void verdict_row(cli_table *t, const char *name, const char *quantity, int layer,
                        const char *verdict, float slope, float r2)
{
    char v[3][40];
    snprintf(v[0], 40, "%d", layer);
    snprintf(v[1], 40, "%.9g", slope);
    snprintf(v[2], 40, "%.9g", r2);
    const char *row[] = {"verdicts", name, quantity, layer >= 0 ? v[0] : NULL, verdict,
                         isnan(slope) ? NULL : v[1], isnan(r2) ? NULL : v[2]};
    cli_table_row(t, row);
}

/* The three verdicts side by side: residual stream and mixer outputs over
 * depth (per layer), and the flow of one layer over flow time (per unit t). */
static ssm_status emit_verdicts(const inspect_trends *tr, const ssm_flow *f, int flow_layer,
                                cli_inspect_out *out)
{
    static const char *const cols[] = {"table", "name", "quantity", "layer", "verdict", "slope", "r2"};
    static const unsigned char text[] = {1, 1, 1, 0, 1, 0, 0};
    cli_table t;
    ssm_status st = cli_tables_begin(&out->tables, &t, "verdicts", cols, 7);
    if (st) return st;
    t.text = text;
    verdict_row(&t, "residual", "ln ||x_l|| over depth", -1, ssm_verdict_name(tr->verdict), tr->slope, tr->r2);
    verdict_row(&t, "mixer", "ln ||mix_l|| over depth", -1, ssm_verdict_name(tr->mix_verdict), tr->mix_slope,
                tr->mix_r2);
    verdict_row(&t, "flow", "ln ||x_i(t)|| over flow time", flow_layer, ssm_flow_verdict_name(f->verdict),
                f->mean_rate, f->mean_r2);
    return cli_tables_end(&out->tables, SSM_OK);
}

static ssm_status emit_importance(const ssm_model *m, const inspect_input *in, cli_inspect_out *out)
{
    static const char *const cols[] = {"table", "seq", "rank", "pos", "score", "method", "id", "token"};
    static const unsigned char text[] = {1, 0, 0, 0, 0, 1, 0, 1};
    int *order = malloc(sizeof(int) * in->L);
    if (!order) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the ranking");
    cli_table t;
    ssm_status st = cli_tables_begin(&out->tables, &t, "importance", cols, 8);
    if (st) {
        free(order);
        return st;
    }
    t.text = text;
    const char *method = m->params.imp_k ? "learned" : "proxy";
    char v[4][40];
    for (int b = 0; b < in->B; b++) {
        const float *s = m->acts.imp_s + (size_t)b * in->L;
        ssm_dynamics_ranking(s, in->L, order);
        snprintf(v[0], 40, "%d", b);
        for (int r = 0; r < in->L; r++) {
            int i = b * in->L + order[r];
            snprintf(v[1], 40, "%d", r);
            snprintf(v[2], 40, "%d", order[r]);
            snprintf(v[3], 40, "%.9g", s[order[r]]);
            char id[24];
            snprintf(id, sizeof id, "%d", in->ids[i]);
            const char *row[] = {"importance", v[0], v[1], v[2], v[3], method, id, in->labels[i]};
            cli_table_row(&t, row);
        }
    }
    free(order);
    st = cli_tables_end(&out->tables, SSM_OK);
    if (!st && out->fig.dir)
        st = cli_figures_importance(&out->fig, m->acts.imp_s, in->L, (const char(*)[LABEL_MAX])in->labels, method, in->B);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Command                                                                  */

static const char *const inspect_weights[] = {"f32", "bf16", NULL};

static const cli_opt inspect_options[] = {
    CLI_OPT_MODEL(inspect_opts, model, 'm'),
    {"text", 0, CLI_OPT_STRING, .metavar = "TEXT", .help = "inspect TEXT (through DIR/tokenizer.json if there is one)",
     .offset = offsetof(inspect_opts, text)},
    {"tokens", 0, CLI_OPT_STRING, .metavar = "IDS", .help = "inspect token ids: 1,2,3;4,5,6",
     .offset = offsetof(inspect_opts, tokens)},
    {"image", 0, CLI_OPT_LONG, 0, CLI_NO_LIMIT, .metavar = "N", .help = "image classifiers: inspect test image N",
     .offset = offsetof(inspect_opts, image), .what = "an image index"},
    {"inputs", 0, CLI_OPT_STRING, .metavar = "X.npy", .help = "continuous-input models: inspect a batch, float32 (B, L, I)",
     .offset = offsetof(inspect_opts, inputs)},
    {"data", 0, CLI_OPT_STRING, .metavar = "DIR", .help = "with --image: read the images from DIR",
     .offset = offsetof(inspect_opts, data)},
    {"weights", 0, CLI_OPT_CHOICE, .help = "hold the large matrices in f32 (default: the reference numbers) "
     "or bf16 (half the memory; tables within 1e-2)", .offset = offsetof(inspect_opts, weights),
     .choices = inspect_weights},
    {"spectrum", 0, CLI_OPT_FLAG, .help = "print the spectrum table", .offset = offsetof(inspect_opts, spectrum)},
    {"norms", 0, CLI_OPT_FLAG, .help = "print the norms table", .offset = offsetof(inspect_opts, norms)},
    {"importance", 0, CLI_OPT_FLAG, .help = "print the importance table", .offset = offsetof(inspect_opts, importance)},
    {"flow", 0, CLI_OPT_FLAG, .help = "print the flow table: Euler steps of one layer, depth as time",
     .offset = offsetof(inspect_opts, flow.on)},
    {"flow-layer", 0, CLI_OPT_INT, 0, 1023, .metavar = "L", .help = "with --flow: the layer (default 0)",
     .offset = offsetof(inspect_opts, flow.layer), .what = "a layer index"},
    {"flow-step", 0, CLI_OPT_FLOAT, 0, 100, 1, .metavar = "H", .help = "with --flow: the Euler step (default 0.1)",
     .offset = offsetof(inspect_opts, flow.step)},
    {"flow-steps", 0, CLI_OPT_INT, 1, SSM_FLOW_STEPS_MAX, .metavar = "T",
     .help = "with --flow: the steps (default 50)", .offset = offsetof(inspect_opts, flow.steps)},
    {"flow-system", 0, CLI_OPT_CHOICE, .help = "with --flow: the whole mixer (default) or the S6 map alone",
     .offset = offsetof(inspect_opts, flow.system), .choices = cli_flow_systems},
    {"flow-scale", 0, CLI_OPT_FLOAT, 0, 1e6, 1, .metavar = "X",
     .help = "with --flow: multiply the initial tokens by X (default 1)", .offset = offsetof(inspect_opts, flow.scale)},
    {"scenario", 0, CLI_OPT_CHOICE, .help = "with --flow: random weights under this scenario, no --model",
     .offset = offsetof(inspect_opts, flow.scenario), .choices = cli_flow_scenarios},
    {"seed", 0, CLI_OPT_LONG, 0, 4294967295.0, .metavar = "S",
     .help = "with --flow: seed of the Gaussian tokens and of --scenario's weights (default 1)",
     .offset = offsetof(inspect_opts, flow.seed), .what = "a seed"},
    CLI_OPT_FORMAT(inspect_opts, format),
    {"out", 0, CLI_OPT_STRING, .metavar = "DIR", .help = "write each table to DIR/TABLE.csv (.jsonl), not stdout",
     .offset = offsetof(inspect_opts, out)},
    {"figures", 0, CLI_OPT_STRING, .metavar = "DIR", .help = "also draw each table as DIR/TABLE.svg and .png",
     .offset = offsetof(inspect_opts, figures)},
    CLI_OPT_FIGURE_FORMAT(inspect_opts, figure_formats),
    CLI_OPT_THREADS(inspect_opts, threads),
    CLI_OPT_END};

static const cli_command inspect_command = {
    "inspect", "--model DIR [options] | --flow --scenario NAME [options] [key=value ...]",
    "Token dynamics of a checkpoint: spectra, token norms, importance, recency (default: the first three).", 1,
    NULL};

/* Whether any table or the dump was asked for (else the default tables run). */
static int tables_chosen(const inspect_opts *o)
{
    return o->spectrum || o->norms || o->importance || cli_recency_any(&o->rec) || o->flow.on ||
           cli_states_any(&o->states) || o->dump.path || cli_intervene_any(&o->iv);
}

/* --flow's rules: its options need it; --scenario (no --model) allows only
 * the flow and the spectrum, and key=value operands only with it. */
static int flow_validate(const inspect_opts *o, const cli_args *a)
{
    static const char *const sub[] = {"flow-layer", "flow-step", "flow-steps", "flow-system",
                                      "flow-scale", "scenario", "seed"};
    int norms = o->norms || !tables_chosen(o);
    for (size_t i = 0; i < sizeof sub / sizeof *sub; i++)   /* flow-*: also the verdicts table's flow */
        if (cli_opts_given(a, sub[i]) && !o->flow.on && (i >= 5 || !norms))
            return cli_usage_error("inspect: --%s goes with --flow%s", sub[i], i >= 5 ? "" : " or the norms");
    for (int i = 0; i < o->nkv; i++)
        if (!o->flow.scenario || !strchr(o->kv[i], '='))
            return cli_usage_error("inspect: unexpected argument '%s' (key=value model keys go with "
                                   "--flow --scenario NAME)", o->kv[i]);
    if (!o->flow.scenario) return o->model ? EX_OK : cli_usage_error("inspect: --model DIR is required");
    if (o->model) return cli_usage_error("inspect: give --model DIR or --scenario NAME, not both");
    if (o->text || o->tokens || o->image >= 0 || o->inputs || o->dump.path || o->norms || o->importance ||
        cli_recency_any(&o->rec) || cli_states_any(&o->states))
        return cli_usage_error("inspect: --scenario inspects random weights on Gaussian tokens: "
                               "only --flow and --spectrum go with it");
    return EX_OK;
}

static int parse_opts(inspect_opts *o, int argc, char **argv)
{
    *o = (inspect_opts){.format = "csv", .image = -1, .figure_formats = CLI_FIGURE_FORMATS_DEFAULT};
    cli_recency_defaults(&o->rec);
    cli_states_defaults(&o->states);
    cli_flow_defaults(&o->flow);
    cli_dump_defaults(&o->dump);
    cli_intervene_defaults(&o->iv);
    const cli_opt_group groups[] = {{inspect_options, o}, {cli_recency_options(), &o->rec},
                                    {cli_states_options(), &o->states}, {cli_dump_options(), &o->dump},
                                    {cli_intervene_options(), &o->iv}, {NULL, NULL}};
    cli_args a;
    int rc = cli_opts_parse(&inspect_command, groups, argc, argv, &a);
    if (rc) return rc;
    o->kv = a.args;   /* kept for --scenario's model */
    o->nkv = a.nargs;
    a.args = NULL;
    cli_args_free(&a);
    if ((rc = flow_validate(o, &a))) return rc;
    if (!!o->text + !!o->tokens + (o->image >= 0) + !!o->inputs > 1)
        return cli_usage_error("inspect: give at most one of --text, --tokens, --image and --inputs");
    if ((rc = cli_recency_validate(&o->rec, &a))) return rc;
    if ((rc = cli_dump_validate(&o->dump, &a))) return rc;
    if ((rc = cli_intervene_validate(&o->iv, "inspect", o->rec.influence ? "--influence" : NULL,
                                     o->flow.scenario ? "do not go with --scenario" : NULL)))
        return rc;
    if (cli_opts_given(&a, "figure-format") && !o->figures)
        return cli_usage_error("inspect: --figure-format goes with --figures DIR");
    if (!tables_chosen(o))   /* with --dump alone, only the dump */
        o->spectrum = o->norms = o->importance = o->default_tables = 1;
    return EX_OK;
}

/* The flow from the first sequence's embedded tokens x_0 (the residual
 * stream before layer 0), run again here since recency's passes reuse the
 * activations: into f, and with --flow its table too. */
static ssm_status inspect_flow(const inspect_opts *o, ssm_model *m, const inspect_input *in,
                               cli_inspect_out *out, ssm_flow *f)
{
    ssm_batch first = {1, in->L, in->tokens, in->inputs, NULL};
    ssm_status st = ssm_model_forward(m, &first);
    m->last = NULL;
    if (st) return st;
    size_t n = (size_t)in->L * m->cfg.d_model;
    float *x0 = malloc(sizeof(float) * n);   /* (L, D) */
    if (!x0) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the flow's tokens");
    memcpy(x0, m->acts.resid, sizeof(float) * n);
    st = o->flow.on ? cli_flow_emit(&o->flow, m, x0, in->L, in->ids, (const char(*)[LABEL_MAX])in->labels, out, f)
                    : cli_flow_run(&o->flow, m, x0, in->L, f);
    free(x0);
    return st;
}

/* The forward pass on the input, then the norms, importance, recency and
 * flow tables, and with the norms the verdicts table (which needs the flow). */
static ssm_status inspect_forward(const inspect_opts *o, ssm_model *m, const inspect_input *in,
                                  cli_inspect_out *out)
{
    ssm_batch batch = {in->B, in->L, in->tokens, in->inputs, NULL};
    ssm_status st = o->norms || o->importance || o->flow.on ? ssm_model_forward(m, &batch) : SSM_OK;
    inspect_trends tr = {0};
    ssm_flow f = {0};
    if (!st && o->norms) st = emit_norms(m, in, out, &tr);
    if (!st && o->importance) st = emit_importance(m, in, out);
    m->last = NULL;   /* batch goes out of scope */
    if (!st && cli_recency_any(&o->rec))
        st = cli_recency_emit(&o->rec, m, &batch, out);
    if (!st && cli_states_any(&o->states)) {
        cli_states_input si = {in->B, in->L, in->ids, (const char(*)[LABEL_MAX])in->labels, o->model, !o->tokens};
        st = cli_states_emit(&o->states, m, &batch, &si, out);
    }
    if (!st && (o->flow.on || o->norms)) st = inspect_flow(o, m, in, out, &f);
    if (!st && o->norms) st = emit_verdicts(&tr, &f, o->flow.layer, out);
    ssm_flow_free(&f);
    return st;
}

/* --dump: the forward pass on the input again, streamed into the file */
static ssm_status inspect_dump(const inspect_opts *o, ssm_model *m, const inspect_input *in)
{
    ssm_batch batch = {in->B, in->L, in->tokens, in->inputs, NULL};
    char image[24];
    snprintf(image, sizeof image, "%ld", o->image >= 0 ? o->image : 0);
    cli_dump_input what = {"tokens", NULL};
    if (o->inputs) what = (cli_dump_input){"inputs", o->inputs};
    else if (in->inputs) what = (cli_dump_input){"image", image};
    return cli_dump_write(&o->dump, m, &batch, o->model, &what);
}

/* Input errors come first, and the directories are made, before any table
 * is written. */
static ssm_status inspect_run(const inspect_opts *o, ssm_model *m, const char *run_config)
{
    inspect_input in = {0};
    cli_intervene iv = {0};
    int tables = o->norms || o->importance || cli_recency_any(&o->rec) || cli_states_any(&o->states) || o->flow.on;
    int need_input = tables || o->text || o->tokens || o->image >= 0 || o->inputs || o->dump.path ||
                     cli_intervene_any(&o->iv);
    ssm_status st = cli_recency_check(&o->rec, &m->cfg);
    if (!st) st = cli_states_check(&o->states, &m->cfg);
    if (!st) st = cli_dump_check(&o->dump, &m->cfg);
    if (!st && (o->flow.on || o->norms)) st = cli_flow_check(&o->flow, &m->cfg);
    if (!st && need_input) st = input_build(o, m, run_config, &in);
    ssm_batch batch = {in.B, in.L, in.tokens, in.inputs, NULL};
    if (!st && need_input) st = cli_intervene_begin(&iv, &o->iv, m, o->model, &batch);   /* the probe stays on */
    if (!st && o->out) st = cli_dir_prepare("--out", o->out);
    if (!st && o->figures) st = cli_dir_prepare("--figures", o->figures);
    if (st) {
        cli_intervene_end(&iv, m);
        input_free(&in);
        return st;
    }
    cli_inspect_out out = {{.format = o->format, .dir = o->out}, {o->figures, o->figure_formats}};
    if (o->spectrum) st = emit_spectrum(m, &out);
    if (!st && tables) st = inspect_forward(o, m, &in, &out);
    if (!st) st = cli_intervene_emit(&iv, m, &batch, &out.tables);
    st = cli_tables_end(&out.tables, st);
    if (!st && o->dump.path) st = inspect_dump(o, m, &in);
    cli_intervene_end(&iv, m);
    input_free(&in);
    if (!st && o->out) fprintf(stderr, "# inspect: %d table%s in %s\n", out.tables.tables, out.tables.tables == 1 ? "" : "s", o->out);
    if (!st && o->figures) fprintf(stderr, "# inspect: figures in %s\n", o->figures);
    return st;
}

/* --scenario: a fresh model and Gaussian tokens, the flow (and spectrum) */
static int inspect_random(const inspect_opts *o)
{
    cli_log_header("inspect", o->flow.seed);
    ssm_model m;
    ssm_status st = cli_flow_model(&o->flow, o->kv, o->nkv, &m);
    if (st) return cli_report(st);
    cli_log_model("(random weights)", &m);
    st = cli_flow_check(&o->flow, &m.cfg);
    if (!st && o->out) st = cli_dir_prepare("--out", o->out);
    if (!st && o->figures) st = cli_dir_prepare("--figures", o->figures);
    cli_inspect_out out = {{.format = o->format, .dir = o->out}, {o->figures, o->figure_formats}};
    if (!st && o->spectrum) st = emit_spectrum(&m, &out);
    if (!st) st = cli_flow_emit(&o->flow, &m, NULL, 0, NULL, NULL, &out, NULL);
    st = cli_tables_end(&out.tables, st);
    ssm_model_free(&m);
    return st ? cli_report(st) : EX_OK;
}

int cli_inspect(int argc, char **argv)
{
    inspect_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc) {
        free(o.kv);
        return rc == CLI_OPTS_HELP ? EX_OK : rc;
    }
    cli_threads_apply(o.threads);
    if (o.flow.scenario) {
        rc = inspect_random(&o);
        free(o.kv);
        return rc;
    }
    free(o.kv);
    cli_log_header("inspect", 0);
    ssm_model m;
    ssm_checkpoint_meta meta = {0};
    int weights = o.weights ? ssm_weights_parse(o.weights) : SSM_WEIGHTS_F32;
    ssm_status st = ssm_checkpoint_load_as(o.model, &m, &meta, weights);
    if (st) return cli_report(st);
    cli_log_model(o.model, &m);
    st = inspect_run(&o, &m, meta.run_config);
    ssm_checkpoint_meta_free(&meta);
    ssm_model_free(&m);
    return st ? cli_report(st) : EX_OK;
}
