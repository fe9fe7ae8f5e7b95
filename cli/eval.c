/* eval.c — `ssmlab eval --model DIR`: loss, perplexity and bits per byte on a
 * text split, or, for an explicit --tokens batch, the loss with optional
 * logits (.npy) and parameter gradients (.safetensors) written out. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "checkpoint.h"
#include "cli.h"
#include "model.h"
#include "npy.h"
#include "safetensors.h"
#include "text.h"

typedef struct {
    const char *model, *data, *split, *tokens, *save_logits, *save_grads, *format;
    int seq_len, batch_size, batches, threads;
} eval_opts;

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

/* Forward (and backward when gradients are wanted) on an explicit batch. */
static ssm_status eval_tokens(ssm_model *m, const eval_opts *o, cli_table *tab)
{
    int *tok = NULL, B, L;
    ssm_status st = tokens_parse(o->tokens, &tok, &B, &L);
    if (st) return st;
    int *tgt = malloc(sizeof(int) * B * L);
    if (!tgt) { free(tok); return ssm_fail(SSM_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < B * L; i++) tgt[i] = (i % L == L - 1) ? -1 : tok[i + 1];
    ssm_batch batch = {B, L, tok, NULL, tgt};
    if (o->save_grads && !(st = ssm_model_alloc_grads(m))) ssm_model_zero_grad(m);
    if (!st) st = ssm_model_forward(m, &batch);
    if (!st && o->save_logits) st = write_logits(m, o->save_logits, B, L);
    if (!st && o->save_grads && L > 1) st = ssm_model_backward(m, 1.0f);
    if (!st && o->save_grads) st = write_grads(m, o->save_grads);
    if (!st) {
        char v[4][32];
        snprintf(v[0], 32, "%d", B);
        snprintf(v[1], 32, "%d", L);
        snprintf(v[2], 32, "%.7g", m->loss);
        snprintf(v[3], 32, "%.7g", exp(m->loss));
        const char *vals[] = {o->model, "tokens", v[0], v[1], v[2], v[3], NULL};
        cli_table_row(tab, vals);
    }
    free(tok);
    free(tgt);
    return st;
}

/* Mean loss over a text split in (batch_size, seq_len) windows. */
static ssm_status eval_text(ssm_model *m, const eval_opts *o, cli_table *tab)
{
    ssm_text text;
    ssm_status st = ssm_text_load(&text, o->data, SSM_TEXT_DEFAULT_VAL_FRACTION);
    if (st) return st;
    ssm_text_block blk;
    if ((st = ssm_text_build_block(&blk, o->batch_size, o->seq_len))) { ssm_text_free(&text); return st; }
    ssm_text_val_iter it;
    ssm_text_val_begin(&it, &text, o->seq_len);
    double total = 0.0;
    long count = 0;
    for (int b = 0; !st && (!o->batches || b < o->batches); b++) {
        if (!ssm_text_val_next(&it, blk.B, blk.tokens, blk.targets)) break;
        if ((st = ssm_model_forward(m, &blk.batch))) break;
        total += (double)m->loss * m->n_targets;
        count += m->n_targets;
    }
    if (!st && !count) st = ssm_fail(SSM_ERR_DATA, "%s: validation split is shorter than seq_len + 1", o->data);
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

static int parse_opts(eval_opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"data", required_argument, 0, 'd'},
        {"tokens", required_argument, 0, 't'}, {"save-logits", required_argument, 0, 'l'},
        {"save-grads", required_argument, 0, 'g'}, {"format", required_argument, 0, 'f'},
        {"seq-len", required_argument, 0, 'L'}, {"batch-size", required_argument, 0, 'B'},
        {"batches", required_argument, 0, 'n'}, {"threads", required_argument, 0, 'j'},
        {0, 0, 0, 0}};
    *o = (eval_opts){.data = SSM_TEXT_DEFAULT_CORPUS, .format = "csv", .seq_len = 128,
                     .batch_size = 16, .batches = 0, .threads = 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'd': o->data = optarg; break;
        case 't': o->tokens = optarg; break;
        case 'l': o->save_logits = optarg; break;
        case 'g': o->save_grads = optarg; break;
        case 'f': o->format = optarg; break;
        case 'L': o->seq_len = atoi(optarg); break;
        case 'B': o->batch_size = atoi(optarg); break;
        case 'n': o->batches = atoi(optarg); break;
        case 'j': o->threads = atoi(optarg); break;
        default: return cli_usage_error("eval: unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("eval: unexpected argument '%s'", argv[optind]);
    if (!o->model) return cli_usage_error("eval: --model DIR is required");
    if (!cli_format_ok(o->format)) return cli_usage_error("eval: --format must be csv or jsonl");
    if (o->seq_len < 2 || o->batch_size < 1 || o->batches < 0)
        return cli_usage_error("eval: --seq-len must be >= 2, --batch-size >= 1, --batches >= 0");
    if (!o->tokens && (o->save_logits || o->save_grads))
        return cli_usage_error("eval: --save-logits and --save-grads need --tokens");
    return EX_OK;
}

int cli_eval(int argc, char **argv)
{
    eval_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc) return rc;
    cli_threads_apply(o.threads);
    cli_log_header("eval", 0);
    ssm_model m;
    ssm_checkpoint_meta meta = {0};
    ssm_status st = ssm_checkpoint_load(o.model, &m, &meta);
    if (st) return cli_report(st);
    free(meta.run_config);
    static const char *const cols[] = {"model", "split", "batch", "seq_len", "loss", "ppl", "bpb"};
    cli_table tab;
    cli_table_begin(&tab, stdout, o.format, cols, 7);
    st = o.tokens ? eval_tokens(&m, &o, &tab) : eval_text(&m, &o, &tab);
    ssm_model_free(&m);
    return st ? cli_report(st) : EX_OK;
}
