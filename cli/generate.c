/* generate.c — `ssmlab generate --model DIR`: text (or token ids) from a
 * language model: the prompt through the parallel forward at once, then the
 * recurrent O(1)-per-token step, greedy or sampled
 * (temperature, top-k, top-p).  Generated text goes to stdout as it is
 * produced; settings and speed go to stderr. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <unistr.h>

#include "engine/bf16.h"
#include "engine/clock.h"
#include "engine/checkpoint.h"
#include "cli/cli.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/sample.h"
#include "data/tokenizer.h"

typedef struct {
    const char *model, *prompt, *tokens, *format, *weights;
    int max_tokens, threads;
    long seed;
    ssm_sample_config sample;
} gen_opts;

typedef struct {       /* everything one run holds */
    ssm_model m;
    ssm_tokenizer tk;  /* kind SSM_TOKENIZER_NONE: ids in and out */
    ssm_gen_state st;
    ssm_sampler smp;
    float *logits;     /* (V) next-token logits */
    int *prompt;       /* (n_prompt) prompt token ids */
    int n_prompt;
    int jsonl;
} gen_run;


/* ------------------------------------------------------------------------ */
/* Options                                                                  */

static const char *const gen_formats[] = {"text", "jsonl", NULL};
static const char *const gen_weights[] = {"bf16", "f32", NULL};

static const cli_opt gen_options[] = {
    CLI_OPT_MODEL(gen_opts, model, 'm'),
    {"prompt", 0, CLI_OPT_STRING, .metavar = "TEXT", .help = "the prompt, encoded with the model's tokenizer",
     .offset = offsetof(gen_opts, prompt)},
    {"tokens", 0, CLI_OPT_STRING, .metavar = "IDS", .help = "the prompt as comma-separated token ids",
     .offset = offsetof(gen_opts, tokens)},
    {"max-tokens", 0, CLI_OPT_INT, 0, 1 << 30, .metavar = "N", .help = "generate at most N tokens (default 256)",
     .offset = offsetof(gen_opts, max_tokens)},
    /* the ranges of --temperature and --top-p are checked in check_opts */
    {"temperature", 0, CLI_OPT_FLOAT, -CLI_NO_LIMIT, CLI_NO_LIMIT, .metavar = "T",
     .help = "sample from softmax(logits / T), T >= 0 (0: greedy)", .offset = offsetof(gen_opts, sample.temperature)},
    {"top-p", 0, CLI_OPT_FLOAT, -CLI_NO_LIMIT, CLI_NO_LIMIT, .metavar = "P",
     .help = "keep the most probable tokens up to probability P, in (0, 1]", .offset = offsetof(gen_opts, sample.top_p)},
    {"top-k", 0, CLI_OPT_INT, 0, 1 << 30, .metavar = "K", .help = "keep the K most probable tokens (0: all)",
     .offset = offsetof(gen_opts, sample.top_k)},
    {"greedy", 0, CLI_OPT_FLAG, .help = "take the most probable token every time",
     .offset = offsetof(gen_opts, sample.greedy)},
    {"seed", 0, CLI_OPT_LONG, 0, CLI_NO_LIMIT, .metavar = "S", .help = "seed of the sampler (default 1)",
     .offset = offsetof(gen_opts, seed)},
    CLI_OPT_THREADS(gen_opts, threads),
    {"format", 0, CLI_OPT_CHOICE, .help = "the text as it comes (default), or one JSON line per token",
     .offset = offsetof(gen_opts, format), .choices = gen_formats},
    {"weights", 0, CLI_OPT_CHOICE, .help = "hold the large matrices in bf16 (default, Mamba-1 and "
     "Mamba-2: half the memory and bytes per token) or in f32", .offset = offsetof(gen_opts, weights),
     .choices = gen_weights},
    CLI_OPT_END};

static const cli_command gen_command = {
    "generate", "--model DIR (--prompt TEXT | --tokens IDS) [options]",
    "Text (or token ids) from a language model, greedy or sampled.", 0, NULL};

static int check_opts(const gen_opts *o)
{
    if (!o->model) return cli_usage_error("generate: --model DIR is required");
    if (!o->prompt == !o->tokens) return cli_usage_error("generate: give one of --prompt TEXT or --tokens IDS");
    if (!(o->sample.temperature >= 0.0f && o->sample.temperature < 1e30f))
        return cli_usage_error("generate: --temperature must be >= 0");
    if (!(o->sample.top_p > 0.0f && o->sample.top_p <= 1.0f))
        return cli_usage_error("generate: --top-p must be in (0, 1]");
    return EX_OK;
}

static int parse_opts(gen_opts *o, int argc, char **argv)
{
    *o = (gen_opts){.format = "text", .weights = NULL, .max_tokens = 256, .threads = 0, .seed = 1};
    ssm_sample_config_default(&o->sample);
    const cli_opt_group groups[] = {{gen_options, o}, {NULL, NULL}};
    cli_args a;
    int rc = cli_opts_parse(&gen_command, groups, argc, argv, &a);
    if (rc) return rc;
    cli_args_free(&a);
    return check_opts(o);
}

/* ------------------------------------------------------------------------ */
/* Prompt and tokenizer                                                     */

/* "1,2,3" into ids */
static ssm_status ids_parse(const char *s, int **out, int *n)
{
    int *ids = malloc(sizeof(int) * (strlen(s) / 2 + 1));   /* (at most len/2 + 1) */
    if (!ids) return ssm_fail(SSM_ERR_NOMEM, "out of memory parsing --tokens");
    int k = 0;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 1 << 30 || (*end && *end != ',')) {
            free(ids);
            return ssm_fail(SSM_ERR_USAGE, "--tokens: '%s' is not a comma-separated list of token ids", s);
        }
        ids[k++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!k) { free(ids); return ssm_fail(SSM_ERR_USAGE, "--tokens: no tokens given"); }
    *out = ids;
    *n = k;
    return SSM_OK;
}

/* DIR/tokenizer.json if there is one, else bytes for a 256-token model,
 * else none (ids only). */
static ssm_status tokenizer_open(gen_run *r, const char *dir)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    ssm_status st = SSM_OK;
    if (stat(path, &sb) == 0) st = ssm_tokenizer_load(&r->tk, path);
    else if (r->m.cfg.vocab_size == 256) st = ssm_tokenizer_build_bytes(&r->tk);
    if (st) return st;
    if (r->tk.kind != SSM_TOKENIZER_NONE && r->tk.n_vocab > r->m.cfg.padded_vocab)
        return ssm_fail(SSM_ERR_CONFIG, "%s: the tokenizer has %d tokens, the model only %d",
                        path, r->tk.n_vocab, r->m.cfg.padded_vocab);
    return SSM_OK;
}

static ssm_status prompt_build(gen_run *r, const gen_opts *o)
{
    if (o->tokens) return ids_parse(o->tokens, &r->prompt, &r->n_prompt);
    if (r->tk.kind == SSM_TOKENIZER_NONE)
        return ssm_fail(SSM_ERR_USAGE, "%s has no tokenizer.json and a vocabulary of %d, not bytes: "
                        "give the prompt as --tokens IDS", o->model, r->m.cfg.vocab_size);
    ssm_status st = ssm_tokenizer_encode(&r->tk, o->prompt, strlen(o->prompt), &r->prompt, &r->n_prompt);
    if (!st && r->n_prompt == 0) st = ssm_fail(SSM_ERR_USAGE, "--prompt: the prompt is empty");
    return st;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

/* s[0 .. n) as a JSON string; bytes that are not UTF-8 become U+FFFD */
static void json_bytes(FILE *f, const unsigned char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        ucs4_t c;
        int len = u8_mbtoucr(&c, s + i, n - i);   /* < 0: invalid or cut short */
        if (len < 0) { fputs("\\ufffd", f); i++; continue; }
        if (c == '"' || c == '\\') fprintf(f, "\\%c", (int)c);
        else if (c < 0x20) fprintf(f, "\\u%04x", (unsigned)c);
        else fwrite(s + i, 1, len, f);
        i += len;
    }
    fputc('"', f);
}

static void emit_token(const gen_run *r, int i, int id)
{
    size_t len = 0;
    const char *b = r->tk.kind != SSM_TOKENIZER_NONE ? ssm_tokenizer_token_bytes(&r->tk, id, &len) : NULL;
    if (r->jsonl) {
        printf("{\"i\":%d,\"token\":%d,", i, id);
        if (r->tk.kind != SSM_TOKENIZER_NONE) {
            fputs("\"text\":", stdout);
            json_bytes(stdout, (const unsigned char *)(b ? b : ""), b ? len : 0);
            fputc(',', stdout);
        }
        printf("\"logprob\":%.6g}\n", ssm_sample_logprob(r->logits, r->smp.V, id));
    } else if (r->tk.kind != SSM_TOKENIZER_NONE) {
        if (b) fwrite(b, 1, len, stdout);
    } else {
        printf("%s%d", i ? " " : "", id);
    }
    fflush(stdout);
}

static void log_settings(const gen_run *r, const gen_opts *o)
{
    const ssm_sample_config *s = &o->sample;
    const ssm_config *c = &r->m.cfg;
    fprintf(stderr, "# model = %s: d_model %d, n_layer %d, d_state %d, vocab %d, tokenizer %s\n",
            o->model, c->d_model, c->n_layer, c->d_state, c->vocab_size,
            r->tk.kind == SSM_TOKENIZER_BPE ? r->tk.path : r->tk.kind ? "bytes" : "none (token ids)");
    if (s->greedy || s->temperature == 0.0f)
        fprintf(stderr, "# sampling = greedy, max_tokens = %d\n", o->max_tokens);
    else
        fprintf(stderr, "# sampling = temperature %g, top_p %g, top_k %d, max_tokens = %d\n",
                s->temperature, s->top_p, s->top_k, o->max_tokens);
    const ssm_model *m = &r->m;
    double mb = ((double)m->num_params * sizeof(float) + (double)m->num_bf16 * sizeof(uint16_t)) / 1e6;
    if (m->weights == SSM_WEIGHTS_BF16)
        fprintf(stderr, "# weights = bf16 (%zu bf16 + %zu f32 values, %.1f MB), matvec = %s\n",
                m->num_bf16, m->num_params, mb, ssm_bf16_path_name(ssm_bf16_path_active()));
    else
        fprintf(stderr, "# weights = f32 (%zu values, %.1f MB), matvec = sgemv (OpenBLAS)\n",
                m->num_params, mb);
}

/* ------------------------------------------------------------------------ */
/* Generation                                                               */

/* Prompts up to this many tokens run through the parallel forward at once
 * (its activations grow with the length); longer ones step token by token. */
#define GEN_PREFILL_MAX 8192

static ssm_status run_prompt(gen_run *r)
{
    if (r->n_prompt <= GEN_PREFILL_MAX)
        return ssm_model_prefill(&r->m, &r->st, r->prompt, r->n_prompt, r->logits);
    ssm_status st = SSM_OK;
    for (int i = 0; i < r->n_prompt && !st; i++)
        st = ssm_model_step(&r->m, &r->st, r->prompt[i], r->logits);
    return st;
}

/* Sample, print and feed back up to max tokens; *made gets the count. */
static ssm_status run_generate(gen_run *r, int max, int *made)
{
    ssm_status st = SSM_OK;
    int special = r->tk.kind == SSM_TOKENIZER_BPE;
    for (*made = 0; *made < max && !st; (*made)++) {
        int id = ssm_sampler_next(&r->smp, r->logits);
        if (special && ssm_tokenizer_is_special(&r->tk, id)) {
            fprintf(stderr, "# stopped at special token %d\n", id);
            break;
        }
        emit_token(r, *made, id);
        if (*made + 1 < max) st = ssm_model_step(&r->m, &r->st, id, r->logits);
    }
    return st;
}

static ssm_status run_all(gen_run *r, const gen_opts *o)
{
    ssm_status st;
    double t0 = ssm_now_s();
    if ((st = run_prompt(r))) return st;
    double t1 = ssm_now_s();
    int made = 0;
    st = run_generate(r, o->max_tokens, &made);
    double t2 = ssm_now_s();
    if (!r->jsonl && isatty(STDOUT_FILENO)) putchar('\n');
    fflush(stdout);
    fprintf(stderr, "# prompt: %d tokens in %.3f s (%.1f tokens/s); generated: %d tokens in %.3f s "
            "(%.1f tokens/s)\n", r->n_prompt, t1 - t0, r->n_prompt / (t1 - t0 + 1e-12), made,
            t2 - t1, made / (t2 - t1 + 1e-12));
    return st;
}

/* The weight format: --weights, else bf16 (ssm_checkpoint_default_weights) */
static int run_weights(const gen_opts *o)
{
    return o->weights ? ssm_weights_parse(o->weights) : ssm_checkpoint_default_weights(o->model);
}

/* Load the model, tokenizer, prompt, state and sampler. */
static ssm_status run_open(gen_run *r, const gen_opts *o)
{
    char msg[SSM_ERROR_CAP];
    ssm_status st = ssm_checkpoint_load_as(o->model, &r->m, NULL, run_weights(o));
    if (st) return st;
    cli_log_model(o->model, &r->m);
    if ((st = ssm_gen_state_build(&r->st, &r->m))) {
        snprintf(msg, sizeof msg, "%s", ssm_last_error());
        return ssm_fail(st, "%s: %s", o->model, msg);
    }
    if ((st = tokenizer_open(r, o->model)) || (st = prompt_build(r, o))) return st;
    int V = r->m.cfg.vocab_size;   /* ids a token can be: not padding, not past the tokenizer */
    if (r->tk.kind != SSM_TOKENIZER_NONE && r->tk.n_vocab < V) V = r->tk.n_vocab;
    if ((st = ssm_sampler_build(&r->smp, &o->sample, V, (unsigned long)o->seed))) return st;
    r->logits = malloc(sizeof(float) * r->m.cfg.padded_vocab);
    if (!r->logits) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the logits");
    return SSM_OK;
}

static void run_close(gen_run *r)
{
    free(r->logits);
    free(r->prompt);
    ssm_sampler_free(&r->smp);
    ssm_gen_state_free(&r->st);
    ssm_tokenizer_free(&r->tk);
    ssm_model_free(&r->m);
}

int cli_generate(int argc, char **argv)
{
    gen_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc) return rc == CLI_OPTS_HELP ? EX_OK : rc;
    cli_threads_apply(o.threads);
    cli_log_header("generate", o.seed);
    gen_run r;
    memset(&r, 0, sizeof r);
    r.jsonl = !strcmp(o.format, "jsonl");
    ssm_status st = run_open(&r, &o);
    if (!st) {
        log_settings(&r, &o);
        fprintf(stderr, "# prompt = %d tokens\n", r.n_prompt);
        st = run_all(&r, &o);
    }
    run_close(&r);
    return st ? cli_report(st) : EX_OK;
}
