/* eval.c — `ssmlab eval --model DIR`: loss, perplexity and bits per byte on a
 * text split, a classifier's loss and accuracy on its test images, or an
 * MQAR model's loss and accuracy over the query positions of its validation
 * stream; for an explicit batch (--tokens, or --inputs and --labels for a
 * classifier), the loss with optional logits (.npy) and parameter gradients
 * (.safetensors) written out.  On a terminal, a progress line over the
 * split's batches (cli/progress.h). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "engine/checkpoint.h"
#include "cli/cli.h"
#include "cli/intervene.h"
#include "cli/progress.h"
#include "scenarios/run_config.h"
#include "engine/model.h"
#include "engine/npy.h"
#include "engine/safetensors.h"
#include "scenarios/task.h"
#include "data/text.h"

typedef struct {
    const char *model, *data, *tokens, *inputs, *labels, *save_logits, *save_grads, *format;
    int seq_len, batch_size, batches, threads;
    cli_intervene_opts iv;   /* --ablate, --pin, --patch (cli/intervene.h) */
} eval_opts;

/* Columns of a language model's rows and of a classifier's. */
static const char *const lm_cols[] = {"model", "split", "batch", "seq_len", "loss", "ppl", "bpb"};
static const char *const cls_cols[] = {"model", "split", "n", "seq_len", "loss", "acc"};

/* Parse "1,2,3;4,5,6" into a (B, L) array; all sequences the same length. */
static ssm_status tokens_parse(const char *s, int **out, int *B, int *L)
{
    size_t cap = strlen(s) / 2 + 2;
    int *tok = malloc(cap * sizeof(int));
    if (!tok) return ssm_fail(SSM_ERR_NOMEM, "out of memory parsing --tokens");
    int n = 0, rows = 1, len = -1, in_row = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 1 << 30) {
            free(tok);
            return ssm_fail(SSM_ERR_USAGE, "--tokens: '%s' is not a list of token ids", s);
        }
        tok[n++] = (int)v;
        in_row++;
        p = end;
        if (*p == ',') p++;
        else if (*p == ';' || !*p) {
            if (len >= 0 && in_row != len) {
                free(tok);
                return ssm_fail(SSM_ERR_USAGE, "--tokens: sequences differ in length (%d and %d)", len, in_row);
            }
            len = in_row;
            in_row = 0;
            if (*p == ';') { p++; rows++; }
        } else {
            free(tok);
            return ssm_fail(SSM_ERR_USAGE, "--tokens: unexpected '%c' in '%s'", *p, s);
        }
    }
    if (len < 1) { free(tok); return ssm_fail(SSM_ERR_USAGE, "--tokens: no tokens given"); }
    *out = tok; *B = rows; *L = len;
    return SSM_OK;
}

static ssm_status write_logits(const ssm_model *m, const char *path, int B, int L)
{
    if (m->cfg.n_classes) {
        size_t shape2[2] = {(size_t)B, (size_t)m->cfg.n_classes};
        return ssm_npy_write(path, m->acts.logits, 2, shape2);
    }
    size_t V = m->cfg.padded_vocab;
    size_t shape3[3] = {(size_t)B, (size_t)L, V};
    if (B == 1) return ssm_npy_write(path, m->acts.logits, 2, shape3 + 1);
    return ssm_npy_write(path, m->acts.logits, 3, shape3);
}

static ssm_status write_grads(ssm_model *m, const char *path)
{
    int n = ssm_model_tensors(m, m->grads_memory, NULL, 0);
    ssm_tensor *t = malloc(sizeof *t * n);
    if (!t) return ssm_fail(SSM_ERR_NOMEM, "out of memory listing gradients");
    ssm_model_tensors(m, m->grads_memory, t, n);
    ssm_status st = ssm_safetensors_write(path, t, n, NULL, 0);
    free(t);
    return st;
}

/* A loss that is not finite is no measurement: SSM_ERR_DATA naming the
 * model and the split, rather than a row of NaN and exit status 0. */
static ssm_status loss_finite(double loss, const char *model, const char *split)
{
    if (isfinite(loss)) return SSM_OK;
    return ssm_fail(SSM_ERR_DATA, "%s: the loss on %s is %g: the weights overflow on this data", model, split,
                    loss);
}

/* Forward (and backward when gradients are wanted) on an explicit batch. */
static ssm_status eval_tokens(ssm_model *m, const eval_opts *o, cli_table *tab)
{
    int *tok = NULL, B, L;
    ssm_status st = tokens_parse(o->tokens, &tok, &B, &L);
    if (!st && (st = task_check_tokens(tok, B, L, &m->cfg, "--tokens", o->model))) free(tok);
    if (st) return st;
    int *tgt = malloc(sizeof(int) * B * L);
    if (!tgt) { free(tok); return ssm_fail(SSM_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < B * L; i++) tgt[i] = (i % L == L - 1) ? -1 : tok[i + 1];
    ssm_batch batch = {B, L, tok, NULL, tgt};
    cli_intervene iv;
    st = cli_intervene_begin(&iv, &o->iv, m, o->model, &batch);   /* the probe stays on */
    if (!st && o->save_grads && !(st = ssm_model_alloc_grads(m))) ssm_model_zero_grad(m);
    if (!st) st = ssm_model_forward(m, &batch);
    if (!st && o->save_logits) st = write_logits(m, o->save_logits, B, L);
    if (!st && o->save_grads && L > 1) st = ssm_model_backward(m, 1.0f);
    if (!st && o->save_grads) st = write_grads(m, o->save_grads);
    if (!st) st = loss_finite(m->loss, o->model, "--tokens");
    if (!st) {
        char v[4][32];
        snprintf(v[0], 32, "%d", B);
        snprintf(v[1], 32, "%d", L);
        snprintf(v[2], 32, "%.7g", m->loss);
        snprintf(v[3], 32, "%.7g", exp(m->loss));
        const char *vals[] = {o->model, "tokens", v[0], v[1], v[2], v[3], NULL};
        cli_table_row(tab, vals);
    }
    if (!st) st = cli_intervene_emit_after(&iv, m, &batch, o->format);
    cli_intervene_end(&iv, m);
    free(tok);
    free(tgt);
    return st;
}

/* Mean loss over a text split in (batch_size, seq_len) windows. */
static ssm_status eval_text(ssm_model *m, const eval_opts *o, cli_table *tab)
{
    ssm_text text;
    const char *data = o->data ? o->data : SSM_TEXT_DEFAULT_CORPUS;
    ssm_status st = ssm_text_load(&text, data, SSM_TEXT_DEFAULT_VAL_FRACTION);
    if (st) return st;
    ssm_text_block blk;
    if ((st = ssm_text_build_block(&blk, o->batch_size, o->seq_len))) { ssm_text_free(&text); return st; }
    ssm_text_val_iter it;
    ssm_text_val_begin(&it, &text, o->seq_len);
    long batches = ((long)it.count + blk.B - 1) / blk.B;
    if (o->batches && o->batches < batches) batches = o->batches;
    cli_batch_progress bp = {.batch_tokens = (long)blk.B * o->seq_len};
    cli_progress_begin(&bp.p, 0);
    double total = 0.0;
    long count = 0;
    for (int b = 0; !st && (!o->batches || b < o->batches); b++) {
        if (!ssm_text_val_next(&it, blk.B, blk.tokens, blk.targets)) break;
        if ((st = ssm_model_forward(m, &blk.batch))) break;
        total += (double)m->loss * m->n_targets;
        count += m->n_targets;
        cli_progress_batch(&bp, b + 1, batches, total / count);
    }
    cli_progress_clear(&bp.p);
    if (!st && !count) st = ssm_fail(SSM_ERR_DATA, "%s: validation split is shorter than seq_len + 1", data);
    if (!st) st = loss_finite(total / count, o->model, "the validation split");
    if (!st) {
        char v[5][32];
        double loss = total / count;
        snprintf(v[0], 32, "%d", o->batch_size);
        snprintf(v[1], 32, "%d", o->seq_len);
        snprintf(v[2], 32, "%.7g", loss);
        snprintf(v[3], 32, "%.7g", exp(loss));
        snprintf(v[4], 32, "%.7g", loss / M_LN2);
        const char *vals[] = {o->model, "val", v[0], v[1], v[2], v[3], v[4]};
        cli_table_row(tab, vals);
    }
    ssm_text_free_block(&blk);
    ssm_text_free(&text);
    return st;
}

/* One classifier row: n rows, sequence length L, loss and accuracy (NAN:
 * no labels, empty cells). */
static void cls_row(cli_table *tab, const char *model, const char *split, long n, int L,
                    double loss, double acc)
{
    char v[4][32];
    snprintf(v[0], 32, "%ld", n);
    snprintf(v[1], 32, "%d", L);
    snprintf(v[2], 32, "%.7g", loss);
    snprintf(v[3], 32, "%.7g", acc);
    int has = !isnan(loss);
    const char *vals[] = {model, split, v[0], v[1], has ? v[2] : NULL, has ? v[3] : NULL};
    cli_table_row(tab, vals);
}

/* Parse "3,1,4" into exactly B class labels below C. */
static ssm_status labels_parse(const char *s, const char *inputs, int B, int C, int **out)
{
    int *lab = malloc(sizeof(int) * (B + 1));
    if (!lab) return ssm_fail(SSM_ERR_NOMEM, "out of memory parsing --labels");
    int n = 0;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 1 << 20 || (*end && *end != ',') || (*end == ',' && !end[1])) {
            free(lab);
            return ssm_fail(SSM_ERR_USAGE, "--labels: '%s' is not a list of class labels", s);
        }
        if (v >= C) {
            free(lab);
            return ssm_fail(SSM_ERR_DATA, "--labels: label %ld is outside the model's %d classes", v, C);
        }
        if (n < B + 1) lab[n] = (int)v;
        n++;
        p = *end ? end + 1 : end;
    }
    if (n != B) {
        free(lab);
        return ssm_fail(SSM_ERR_USAGE, "--labels: %d labels for %d sequences in %s", n, B, inputs);
    }
    *out = lab;
    return SSM_OK;
}

/* Forward (and backward for --save-grads) of a classifier on --inputs. */
static ssm_status eval_inputs(ssm_model *m, const eval_opts *o, cli_table *tab)
{
    float *x = NULL;
    int *lab = NULL, B, L;
    ssm_status st = cli_inputs_read(m, o->inputs, &x, &B, &L);
    if (st) return st;
    if (o->labels && (st = labels_parse(o->labels, o->inputs, B, m->cfg.n_classes, &lab))) {
        free(x);
        return st;
    }
    ssm_batch batch = {B, L, NULL, x, lab};
    cli_intervene iv;
    st = cli_intervene_begin(&iv, &o->iv, m, o->model, &batch);   /* the probe stays on */
    if (!st && o->save_grads && !(st = ssm_model_alloc_grads(m))) ssm_model_zero_grad(m);
    if (!st) st = ssm_model_forward(m, &batch);
    if (!st && o->save_logits) st = write_logits(m, o->save_logits, B, L);
    if (!st && o->save_grads) st = ssm_model_backward(m, 1.0f);
    if (!st && o->save_grads) st = write_grads(m, o->save_grads);
    if (!st && lab) st = loss_finite(m->loss, o->model, "--inputs");
    if (!st) {
        double acc = lab ? (double)task_count_correct(m->acts.logits, lab, B, m->cfg.n_classes) / B : NAN;
        cls_row(tab, o->model, "inputs", B, L, lab ? m->loss : NAN, acc);
    }
    if (!st) st = cli_intervene_emit_after(&iv, m, &batch, o->format);
    cli_intervene_end(&iv, m);
    free(x);
    free(lab);
    return st;
}

/* Is the checkpoint's recorded run config (if any) a task = mqar run? */
static int recorded_mqar(const char *text)
{
    run_config rc;
    run_config_default(&rc);
    return text && !run_config_parse_text(&rc, text, "checkpoint") && rc.task == RUN_TASK_MQAR;
}

/* Loss and accuracy over the test split of the checkpoint's dataset. */
static ssm_status eval_images(ssm_model *m, const eval_opts *o, const char *run_text, cli_table *tab)
{
    run_config rc;
    task_data d;
    ssm_status st = run_config_recorded(&rc, o->model, run_text, o->data, RUN_TASK_CLASSIFY);
    if (st) return st;
    if ((st = task_data_load(&d, &rc, o->batch_size))) { task_data_free(&d); return st; }
    task_metrics v;
    if (d.seq.d_input != m->cfg.d_input)
        st = ssm_fail(SSM_ERR_DATA, "%s: tokens have %d values, the model in %s takes %d", d.test.path,
                      d.seq.d_input, o->model, m->cfg.d_input);
    if (!st) st = cli_progress_validate(&d, m, o->batches, &v);
    if (!st) st = loss_finite(v.loss, o->model, "the test split");
    if (!st) cls_row(tab, o->model, "test", v.n, d.L, v.loss, v.acc);
    task_data_free(&d);
    return st;
}

/* Loss and accuracy over the query positions of an MQAR model's validation
 * stream (the recorded run's generator and seed). */
static ssm_status eval_mqar(ssm_model *m, const eval_opts *o, const char *run_text, cli_table *tab)
{
    run_config rc;
    task_data d;
    if (o->data)
        return ssm_fail(SSM_ERR_USAGE, "%s: an MQAR model's examples are generated: give no --data", o->model);
    ssm_status st = run_config_recorded(&rc, o->model, run_text, NULL, RUN_TASK_MQAR);
    if (st) return st;
    if (rc.mqar.vocab > m->cfg.padded_vocab)
        return ssm_fail(SSM_ERR_DATA, "%s: mqar_vocab = %d is larger than the model's vocabulary %d", o->model,
                        rc.mqar.vocab, m->cfg.padded_vocab);
    if ((st = task_data_load(&d, &rc, o->batch_size))) { task_data_free(&d); return st; }
    task_metrics v;
    if (!(st = cli_progress_validate(&d, m, o->batches, &v)) && !(st = loss_finite(v.loss, o->model, "the validation stream")))
        cls_row(tab, o->model, "val", v.n, d.L, v.loss, v.acc);
    task_data_free(&d);
    return st;
}

static const cli_opt eval_options[] = {
    CLI_OPT_MODEL(eval_opts, model, 'm'),
    {"data", 0, CLI_OPT_STRING, .metavar = "PATH", .help = "text file, or image directory of a classifier",
     .offset = offsetof(eval_opts, data)},
    {"tokens", 0, CLI_OPT_STRING, .metavar = "IDS", .help = "one batch of token ids: 1,2,3;4,5,6",
     .offset = offsetof(eval_opts, tokens)},
    {"inputs", 0, CLI_OPT_STRING, .metavar = "X.npy", .help = "a classifier's batch: float32 (B, L, I)",
     .offset = offsetof(eval_opts, inputs)},
    {"labels", 0, CLI_OPT_STRING, .metavar = "CLASSES", .help = "with --inputs: one class per sequence, 3,1,4",
     .offset = offsetof(eval_opts, labels)},
    {"save-logits", 0, CLI_OPT_STRING, .metavar = "FILE.npy", .help = "with --tokens or --inputs: write the logits",
     .offset = offsetof(eval_opts, save_logits)},
    {"save-grads", 0, CLI_OPT_STRING, .metavar = "FILE.safetensors",
     .help = "with --tokens or --inputs: write the parameter gradients", .offset = offsetof(eval_opts, save_grads)},
    {"seq-len", 0, CLI_OPT_INT, 2, CLI_NO_LIMIT, .metavar = "L", .help = "text: tokens per window (default 128)",
     .offset = offsetof(eval_opts, seq_len)},
    {"batch-size", 0, CLI_OPT_INT, 1, CLI_NO_LIMIT, .metavar = "B", .help = "sequences per forward pass (default 16)",
     .offset = offsetof(eval_opts, batch_size)},
    {"batches", 0, CLI_OPT_INT, 0, CLI_NO_LIMIT, .metavar = "N", .help = "at most N batches (default 0: all)",
     .offset = offsetof(eval_opts, batches)},
    CLI_OPT_FORMAT(eval_opts, format),
    CLI_OPT_THREADS(eval_opts, threads),
    CLI_OPT_END};

static const cli_command eval_command = {
    "eval", "--model DIR [options]",
    "Loss, perplexity and bits per byte (accuracy for a classifier or MQAR) of a checkpoint.", 0, NULL};

/* What the options ask for must fit together. */
static int check_opts(const eval_opts *o)
{
    if (!o->model) return cli_usage_error("eval: --model DIR is required");
    if (o->tokens && o->inputs) return cli_usage_error("eval: give --tokens or --inputs, not both");
    if (!o->tokens && !o->inputs && (o->save_logits || o->save_grads))
        return cli_usage_error("eval: --save-logits and --save-grads need --tokens or --inputs");
    if (o->labels && !o->inputs) return cli_usage_error("eval: --labels goes with --inputs");
    if (o->inputs && o->save_grads && !o->labels)
        return cli_usage_error("eval: --save-grads needs --labels for the loss");
    return EX_OK;
}

static int parse_opts(eval_opts *o, int argc, char **argv)
{
    *o = (eval_opts){.data = NULL, .format = "csv", .seq_len = 128,
                     .batch_size = 16, .batches = 0, .threads = 0};
    cli_intervene_defaults(&o->iv);
    const cli_opt_group groups[] = {{eval_options, o}, {cli_intervene_options(), &o->iv}, {NULL, NULL}};
    cli_args a;
    int rc = cli_opts_parse(&eval_command, groups, argc, argv, &a);
    if (rc) return rc;
    cli_args_free(&a);
    if ((rc = check_opts(o))) return rc;
    return cli_intervene_validate(&o->iv, "eval", o->save_grads ? "--save-grads" : NULL,
                                  o->tokens || o->inputs ? NULL : "go with --tokens or --inputs");
}

/* Language model: --tokens or a text split (an MQAR model: its validation
 * stream); classifier: --inputs or the test split of its dataset. */
static ssm_status eval_dispatch(ssm_model *m, const eval_opts *o, const char *run_text)
{
    cli_table tab;
    int cls = m->cfg.n_classes > 0;
    if (!cls && !o->tokens && recorded_mqar(run_text)) {
        cli_table_begin(&tab, stdout, o->format, cls_cols, 6);
        return eval_mqar(m, o, run_text, &tab);
    }
    if (cls && o->tokens)
        return ssm_fail(SSM_ERR_USAGE, "%s is a classifier: give it --inputs X.npy, not --tokens", o->model);
    if (!cls && o->inputs)
        return ssm_fail(SSM_ERR_USAGE, "%s is a language model: --inputs is for classifiers", o->model);
    cli_table_begin(&tab, stdout, o->format, cls ? cls_cols : lm_cols, cls ? 6 : 7);
    if (cls) return o->inputs ? eval_inputs(m, o, &tab) : eval_images(m, o, run_text, &tab);
    return o->tokens ? eval_tokens(m, o, &tab) : eval_text(m, o, &tab);
}

int cli_eval(int argc, char **argv)
{
    eval_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc) return rc == CLI_OPTS_HELP ? EX_OK : rc;
    cli_threads_apply(o.threads);
    cli_log_header("eval", 0);
    ssm_model m;
    ssm_checkpoint_meta meta = {0};
    ssm_status st = ssm_checkpoint_load(o.model, &m, &meta);
    if (st) return cli_report(st);
    st = eval_dispatch(&m, &o, meta.run_config);
    ssm_checkpoint_meta_free(&meta);
    ssm_model_free(&m);
    return st ? cli_report(st) : EX_OK;
}
