/* intervene.c — ablations, pins and patches from the command line of
 * `ssmlab inspect` and `ssmlab eval` (ssmlab-inspect(1) INTERVENTIONS):
 * the option group and its parsers, the probe (engine/probe.h) checked
 * against the model and the input, the patch source's run, the clean run,
 * and the `intervention` table comparing the clean run with the
 * intervened one. */
#include "cli/intervene.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "data/tokenizer.h"
#include "engine/states.h"
#include "engine/sample.h"
#include "scenarios/task.h"

/* ------------------------------------------------------------------------ */
/* Options                                                                  */

void cli_intervene_defaults(cli_intervene_opts *o) { memset(o, 0, sizeof *o); }

int cli_intervene_any(const cli_intervene_opts *o)
{
    return o->ablate.n || o->pin.n || o->patch.kind != SSM_PATCH_NONE || o->patch_from || o->patch_tokens;
}

/* One spec into slot: 0, or -1 */
typedef int (*spec_parse_fn)(const char *s, void *slot);

static int ablation_one(const char *s, void *slot)
{
    char why[160];
    return ssm_probe_parse_ablation(s, slot, why, sizeof why);
}

static int pin_one(const char *s, void *slot)
{
    char why[160];
    return ssm_probe_parse_pin(s, slot, why, sizeof why);
}

/* A comma-separated list of specs appended to items (*n of them so far,
 * each `size` bytes, at most CLI_INTERVENE_MAX): 0, or -1 for an empty or
 * bad spec or too many. */
static int list_parse(const char *arg, char *items, size_t size, int *n, spec_parse_fn one)
{
    char *copy = strdup(arg);
    if (!copy) return -1;
    int rc = 0;
    for (char *s = copy, *next; s && !rc; s = next) {
        next = strchr(s, ',');
        if (next) *next++ = '\0';
        if (!*s || *n >= CLI_INTERVENE_MAX || one(s, items + (size_t)*n * size)) rc = -1;
        else (*n)++;
    }
    free(copy);
    return rc;
}

static int ablate_parse(const char *arg, void *dst)
{
    cli_ablations *a = dst;
    return list_parse(arg, (char *)a->v, sizeof *a->v, &a->n, ablation_one);
}

static int pin_parse(const char *arg, void *dst)
{
    cli_pins *p = dst;
    return list_parse(arg, (char *)p->v, sizeof *p->v, &p->n, pin_one);
}

static int patch_parse(const char *arg, void *dst)
{
    cli_patch_spec *p = dst;
    char why[160];
    return ssm_probe_parse_patch(arg, &p->layer, &p->pos, &p->kind, why, sizeof why);
}

static const cli_opt options[] = {
    {"ablate", 0, CLI_OPT_CUSTOM, .metavar = "L:E[:N]",
     .help = "hold state channel N (default: all) of channel E (Mamba-2: entry N = p*d_state+n of head E) "
             "in layer L at zero; repeatable, or a,b,...",
     .offset = offsetof(cli_intervene_opts, ablate),
     .what = "LAYER:CHANNEL[:STATE] (numbers from 0), or a comma-separated list of them (at most 64)",
     .parse = ablate_parse},
    {"pin", 0, CLI_OPT_CUSTOM, .metavar = "L:E[:N]:VALUE",
     .help = "replace A[E,N] (default: every N; Mamba-2: A of head E) of layer L by VALUE <= 0; repeatable, or a,b,...",
     .offset = offsetof(cli_intervene_opts, pin),
     .what = "LAYER:CHANNEL[:STATE]:VALUE with a finite VALUE <= 0, or a comma-separated list of them (at most 64)",
     .parse = pin_parse},
    {"patch", 0, CLI_OPT_CUSTOM, .metavar = "L:POS[:KIND]",
     .help = "patch the residual entering layer L (or its state, KIND state) at POS from the patch input",
     .offset = offsetof(cli_intervene_opts, patch), .what = "LAYER:POSITION[:residual|state]",
     .parse = patch_parse},
    {"patch-from", 0, CLI_OPT_STRING, .metavar = "TEXT",
     .help = "with --patch: the patch input as text (through DIR/tokenizer.json if there is one)",
     .offset = offsetof(cli_intervene_opts, patch_from)},
    {"patch-tokens", 0, CLI_OPT_STRING, .metavar = "IDS",
     .help = "with --patch: the patch input as token ids, 1,2,3;4,5,6",
     .offset = offsetof(cli_intervene_opts, patch_tokens)},
    CLI_OPT_END};

const cli_opt *cli_intervene_options(void) { return options; }

int cli_intervene_validate(const cli_intervene_opts *o, const char *cmd, const char *no_patch,
                           const char *none)
{
    int patch = o->patch.kind != SSM_PATCH_NONE, source = o->patch_from || o->patch_tokens;
    if (o->patch_from && o->patch_tokens)
        return cli_usage_error("%s: give --patch-from or --patch-tokens, not both", cmd);
    if (patch && !source)
        return cli_usage_error("%s: --patch needs a patch input: --patch-from TEXT or --patch-tokens IDS", cmd);
    if (source && !patch)
        return cli_usage_error("%s: --%s goes with --patch L:POS[:residual|state]", cmd,
                               o->patch_from ? "patch-from" : "patch-tokens");
    if (none && cli_intervene_any(o)) return cli_usage_error("%s: --ablate, --pin and --patch %s", cmd, none);
    if (patch && no_patch)
        return cli_usage_error("%s: --patch cannot go with %s (a patched forward pass has no backward)", cmd,
                               no_patch);
    return EX_OK;
}

/* ------------------------------------------------------------------------ */
/* The patch input                                                          */

/* "1,2,3;4,5,6" into (B, L) ids (malloc'd), every sequence of one length */
static ssm_status ids_parse(const char *s, int **out, int *B, int *L)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',' || *p == ';';
    int *ids = malloc(sizeof(int) * cap);
    char *copy = strdup(s);
    int rows = 0, len = -1, k = 0, bad = !ids || !copy;
    for (char *row = copy, *next_row; !bad && row; row = next_row, rows++) {
        next_row = strchr(row, ';');
        if (next_row) *next_row++ = '\0';
        int start = k;
        for (char *f = row, *next; !bad && f; f = next) {
            long v;
            next = strchr(f, ',');
            if (next) *next++ = '\0';
            bad = cli_parse_long(f, &v) || v < 0 || v > INT_MAX;
            if (!bad) ids[k++] = (int)v;
        }
        bad = bad || (len >= 0 && k - start != len);
        len = k - start;
    }
    free(copy);
    if (bad) {
        free(ids);
        return ssm_fail(SSM_ERR_USAGE, "--patch-tokens: '%s' is not a list of token ids of sequences of one "
                        "length (e.g. 1,2,3;4,5,6)", s);
    }
    *out = ids;
    *B = rows;
    *L = len;
    return SSM_OK;
}

/* text as one sequence: through DIR/tokenizer.json when there is one, else
 * one token per byte (as inspect --text) */
static ssm_status text_ids(const char *text, const char *dir, int **out, int *L)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    size_t n = strlen(text);
    if (access(path, F_OK)) {
        if (!(*out = malloc(sizeof(int) * (n ? n : 1)))) return ssm_fail(SSM_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) (*out)[i] = (unsigned char)text[i];
        *L = (int)n;
        return SSM_OK;
    }
    ssm_tokenizer tk;
    ssm_status st = ssm_tokenizer_load(&tk, path);
    if (!st) st = ssm_tokenizer_encode(&tk, text, n, out, L);
    ssm_tokenizer_free(&tk);
    return st;
}

/* The patch input's ids, of b's shape and in the model's vocabulary */
static ssm_status source_ids(const cli_intervene_opts *o, const ssm_model *m, const char *dir,
                             const ssm_batch *b, int **ids)
{
    const char *opt = o->patch_from ? "--patch-from" : "--patch-tokens";
    if (m->cfg.input_kind == SSM_INPUT_CONTINUOUS)
        return ssm_fail(SSM_ERR_USAGE, "%s: the model in %s takes continuous input; a patch input is token ids",
                        opt, dir);
    int B = 1, L = 0;
    ssm_status st = o->patch_from ? text_ids(o->patch_from, dir, ids, &L) : ids_parse(o->patch_tokens, ids, &B, &L);
    if (st) return st;
    if (B != b->B || L != b->L)
        st = ssm_fail(SSM_ERR_USAGE, "%s: the patch input is %d x %d tokens, the input %d x %d (sequences x "
                      "length must agree)", opt, B, L, b->B, b->L);
    if (!st) st = task_check_tokens(*ids, B, L, &m->cfg, opt, dir);
    if (st) {
        free(*ids);
        *ids = NULL;
    }
    return st;
}

/* The source run's hook: x entering the patch layer at the patch position
 * (residual), or h after it (state), of every sequence */
static void patch_grab(void *ctx, const ssm_layer_view *v)
{
    cli_intervene *iv = ctx;
    const ssm_probe *p = &iv->probe;
    if (v->layer != p->patch_layer) return;
    int state = p->patch_kind == SSM_PATCH_STATE;
    size_t w = state ? (size_t)v->E * v->Ns : (size_t)v->D;
    const float *src = state ? v->h : v->x;
    for (int b = 0; b < v->B; b++)
        memcpy(iv->patch_value + b * w, src + ((size_t)b * v->L + p->patch_pos) * w, sizeof(float) * w);
}

/* Run the patch input through the model (its ablations and pins applied)
 * and keep the value the patch puts in */
static ssm_status source_run(cli_intervene *iv, const cli_intervene_opts *o, ssm_model *m, const char *dir,
                             const ssm_batch *b)
{
    const ssm_config *c = &m->cfg;
    int *ids = NULL;
    ssm_status st = source_ids(o, m, dir, b, &ids);
    if (st) return st;
    int state = iv->probe.patch_kind == SSM_PATCH_STATE;
    size_t w = state ? (size_t)c->d_inner * c->state_dim : (size_t)c->d_model;
    if (!(iv->patch_value = malloc(sizeof(float) * b->B * w))) {
        free(ids);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for the patch");
    }
    ssm_probe grab = iv->probe;
    grab.patch_kind = SSM_PATCH_NONE;
    grab.on_layer = patch_grab;
    grab.ctx = iv;
    ssm_batch run = {b->B, b->L, ids, NULL, NULL};
    st = ssm_model_set_probe(m, &grab);
    if (!st) st = ssm_model_forward(m, &run);
    ssm_model_set_probe(m, NULL);
    m->last = NULL;
    free(ids);
    iv->probe.patch_value = iv->patch_value;
    return st;
}

/* ------------------------------------------------------------------------ */
/* The clean run                                                            */

/* The clean logits and the targets: the next input token (LM), or the
 * label or the clean top class (classifier) */
static ssm_status clean_run(cli_intervene *iv, ssm_model *m, const ssm_batch *b)
{
    const ssm_config *c = &m->cfg;
    iv->lm = c->n_classes == 0;
    iv->V = iv->lm ? c->padded_vocab : c->n_classes;
    size_t rows = iv->lm ? (size_t)b->B * b->L : (size_t)b->B;
    iv->clean = malloc(sizeof(float) * rows * iv->V);
    iv->targets = malloc(sizeof(int) * rows);
    if (!iv->clean || !iv->targets) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the clean run");
    ssm_batch run = {b->B, b->L, b->tokens, b->inputs, NULL};
    ssm_probe same = {.want_states = 1};   /* the intervened run's kernels, nothing changed */
    ssm_status st = ssm_model_set_probe(m, &same);
    if (!st) st = ssm_model_forward(m, &run);
    ssm_model_set_probe(m, NULL);
    m->last = NULL;
    if (st) return st;
    memcpy(iv->clean, m->acts.logits, sizeof(float) * rows * iv->V);
    for (size_t i = 0; i < rows; i++) {
        if (iv->lm) iv->targets[i] = (int)(i % b->L) == b->L - 1 ? -1 : b->tokens[i + 1];
        else iv->targets[i] = b->targets ? b->targets[i] : ssm_sample_argmax(iv->clean + i * iv->V, iv->V);
    }
    return SSM_OK;
}

ssm_status cli_intervene_begin(cli_intervene *iv, const cli_intervene_opts *o, ssm_model *m,
                               const char *dir, const ssm_batch *b)
{
    memset(iv, 0, sizeof *iv);
    if (!cli_intervene_any(o)) return SSM_OK;
    iv->B = b->B;
    iv->L = b->L;
    /* want_states: every run (patch input, clean, intervened) goes through
     * the naive scans a state patch or an ablation needs, so that the
     * difference between them is the intervention's alone */
    iv->probe = (ssm_probe){.want_states = 1, .ablate = o->ablate.v, .n_ablate = o->ablate.n, .pin = o->pin.v, .n_pin = o->pin.n,
                            .patch_kind = o->patch.kind, .patch_layer = o->patch.layer, .patch_pos = o->patch.pos};
    ssm_status st = ssm_model_probe_check(m, &iv->probe, b->L);
    if (!st && o->patch.kind != SSM_PATCH_NONE) st = source_run(iv, o, m, dir, b);
    if (!st) st = clean_run(iv, m, b);
    if (!st) st = ssm_model_set_probe(m, &iv->probe);
    if (st) {
        cli_intervene_end(iv, m);
        return st;
    }
    iv->on = 1;
    char desc[4096];
    ssm_probe_describe(&iv->probe, desc, sizeof desc);
    fprintf(stderr, "# interventions: %s", desc);
    if (o->patch.kind != SSM_PATCH_NONE)
        fprintf(stderr, " (patch input: --%s '%s')", o->patch_from ? "patch-from" : "patch-tokens",
                o->patch_from ? o->patch_from : o->patch_tokens);
    fprintf(stderr, "\n");
    return SSM_OK;
}

void cli_intervene_end(cli_intervene *iv, ssm_model *m)
{
    if (m && m->probe == &iv->probe) ssm_model_set_probe(m, NULL);
    free(iv->patch_value);
    free(iv->clean);
    free(iv->targets);
    memset(iv, 0, sizeof *iv);
}

/* ------------------------------------------------------------------------ */
/* The table                                                                */

static const char *const cols[] = {"table", "kind", "seq", "pos", "id", "target", "kl",
                                   "clean_logp", "logp", "dlogp", "clean_loss", "loss", "delta_loss"};
static const unsigned char text[] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
enum { NCOLS = sizeof cols / sizeof *cols };

/* KL(p || q) of the softmaxes of logit rows a (clean) and c (intervened),
 * in double; log p and log q of the target (when target >= 0) */
static double row_compare(const float *a, const float *c, int V, int target, double *lp, double *lq)
{
    double za = ssm_log_sum_exp(a, V), zc = ssm_log_sum_exp(c, V);
    double kl = ssm_kl_logits(a, za, c, zc, V);
    if (target >= 0) {
        *lp = a[target] - za;
        *lq = c[target] - zc;
    }
    return kl;
}

/* The sums of the total row */
typedef struct { double kl, clean, loss; long rows, targets; } intervene_sums;

/* one row per sequence (classifier) or position (LM) */
static void rows_emit(const cli_intervene *iv, const float *logits, const ssm_batch *b, cli_table *t,
                      intervene_sums *s)
{
    int rows = iv->lm ? iv->B * iv->L : iv->B;
    for (int i = 0; i < rows; i++) {
        int tg = iv->targets[i];
        double lp = 0.0, lq = 0.0;
        double kl = row_compare(iv->clean + (size_t)i * iv->V, logits + (size_t)i * iv->V, iv->V, tg, &lp, &lq);
        char v[8][40];
        snprintf(v[0], 40, "%d", iv->lm ? i / iv->L : i);
        snprintf(v[1], 40, "%d", i % iv->L);
        snprintf(v[2], 40, "%d", iv->lm ? b->tokens[i] : 0);
        snprintf(v[3], 40, "%d", tg);
        snprintf(v[4], 40, "%.9g", kl);
        snprintf(v[5], 40, "%.9g", lp);
        snprintf(v[6], 40, "%.9g", lq);
        snprintf(v[7], 40, "%.9g", lq - lp);
        int has = tg >= 0;
        const char *row[NCOLS] = {"intervention", iv->lm ? "position" : "sequence", v[0], iv->lm ? v[1] : NULL,
                                  iv->lm ? v[2] : NULL, has ? v[3] : NULL, v[4], has ? v[5] : NULL,
                                  has ? v[6] : NULL, has ? v[7] : NULL};
        cli_table_row(t, row);
        s->kl += kl;
        s->rows++;
        if (!has) continue;
        s->clean -= lp;
        s->loss -= lq;
        s->targets++;
    }
}

/* the mean KL, and the mean loss over the targets clean, intervened and the change */
static void total_emit(const intervene_sums *s, cli_table *t)
{
    char v[4][40];
    double n = s->targets ? (double)s->targets : NAN;
    snprintf(v[0], 40, "%.9g", s->kl / (double)s->rows);
    snprintf(v[1], 40, "%.9g", s->clean / n);
    snprintf(v[2], 40, "%.9g", s->loss / n);
    snprintf(v[3], 40, "%.9g", (s->loss - s->clean) / n);
    int has = s->targets > 0;
    const char *row[NCOLS] = {"intervention", "total", NULL, NULL, NULL, NULL, v[0], NULL, NULL, NULL,
                              has ? v[1] : NULL, has ? v[2] : NULL, has ? v[3] : NULL};
    cli_table_row(t, row);
}

ssm_status cli_intervene_emit(cli_intervene *iv, ssm_model *m, const ssm_batch *b, cli_tables *ts)
{
    if (!iv->on) return SSM_OK;
    ssm_batch run = {b->B, b->L, b->tokens, b->inputs, NULL};
    ssm_status st = ssm_model_forward(m, &run);
    m->last = NULL;
    cli_table t;
    if (st || (st = cli_tables_begin(ts, &t, "intervention", cols, NCOLS))) return st;
    t.text = text;
    intervene_sums s = {0};
    rows_emit(iv, m->acts.logits, b, &t, &s);
    total_emit(&s, &t);
    return cli_tables_end(ts, SSM_OK);
}

ssm_status cli_intervene_emit_after(cli_intervene *iv, ssm_model *m, const ssm_batch *b, const char *format)
{
    cli_tables ts = {.format = format, .tables = 1};
    return cli_tables_end(&ts, cli_intervene_emit(iv, m, b, &ts));
}
