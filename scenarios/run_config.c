/* run_config.c — the table of run-configuration keys and the parser for config
 * files and key=value overrides built on it. */
#include "scenarios/run_config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/images.h"
#include "engine/bound.h"
#include "data/text.h"

static const char *const task_names[] = {"lm", "classify", "mqar"};
static const char *const dataset_names[] = {"text", "fashion-mnist", "mnist", "cifar10"};
static const char *const filler_names[] = {"zero", "random"};   /* index = random_filler */
#define NTASKS 3
#define NDATASETS 4
#define NFILLERS 2
#define MQAR_MAX_EXAMPLES 100000000

const char *run_task_name(int v) { return v >= 0 && v < NTASKS ? task_names[v] : "?"; }
const char *run_dataset_name(int v) { return v >= 0 && v < NDATASETS ? dataset_names[v] : "?"; }

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

static int task_parse(const char *s) { return name_index(task_names, NTASKS, s); }
static int dataset_parse(const char *s) { return name_index(dataset_names, NDATASETS, s); }
static int filler_parse(const char *s) { return name_index(filler_names, NFILLERS, s); }
static const char *filler_name(int v) { return v >= 0 && v < NFILLERS ? filler_names[v] : "?"; }

typedef enum { K_INT, K_LONG, K_FLOAT, K_DOUBLE, K_STR, K_ENUM, K_LAYERS } key_type;

typedef struct {
    const char *name;
    key_type type;
    size_t offset;
    size_t size;       /* for K_STR: buffer size */
    const char *help;
    int (*parse)(const char *);     /* K_ENUM: name -> value, -1 if unknown */
    const char *(*enum_name)(int);  /* K_ENUM: value -> name */
    const char *range;              /* K_FLOAT, K_DOUBLE: valid values, "[lo, hi)" etc. ("inf" bounds); NULL: any */
} key_spec;

#define M(f) offsetof(run_config, model.f)
#define O(f) offsetof(run_config, opt.f)
#define R(f) offsetof(run_config, f)
#define Q(f) offsetof(run_config, mqar.f)
static const key_spec keys[] = {
    {"d_model", K_INT, M(d_model), 0, "model width D", NULL, NULL, NULL},
    {"n_layer", K_INT, M(n_layer), 0, "number of Mamba layers", NULL, NULL, NULL},
    {"d_state", K_INT, M(d_state), 0, "SSM state size N", NULL, NULL, NULL},
    {"d_conv", K_INT, M(d_conv), 0, "causal convolution width K", NULL, NULL, NULL},
    {"expand", K_INT, M(expand), 0, "inner width factor (E = expand * D)", NULL, NULL, NULL},
    {"dt_rank", K_INT, M(dt_rank), 0, "rank R of the delta projection; 0 = ceil(D/16)", NULL, NULL, NULL},
    {"arch", K_ENUM, M(arch), 0, "the layers: mamba1 (S6) or mamba2 (SSD; language models)",
     ssm_arch_parse, ssm_arch_name, NULL},
    {"head_dim", K_INT, M(head_dim), 0, "mamba2: channels P per head; heads H = E / P", NULL, NULL, NULL},
    {"n_groups", K_INT, M(n_groups), 0, "mamba2: groups G of heads sharing B and C; divides H", NULL, NULL, NULL},
    {"chunk_size", K_INT, M(chunk_size), 0, "mamba2: positions Q per chunk of the SSD scan", NULL, NULL, NULL},
    {"vocab_size", K_INT, M(vocab_size), 0, "vocabulary size (256 for bytes)", NULL, NULL, NULL},
    {"pad_vocab_size_multiple", K_INT, M(pad_vocab_size_multiple), 0, "round the vocabulary up to a multiple of this", NULL, NULL, NULL},
    {"tie_embeddings", K_INT, M(tie_embeddings), 0, "1: the LM head is the embedding", NULL, NULL, NULL},
    {"norm_eps", K_FLOAT, M(norm_eps), 0, "RMSNorm epsilon", NULL, NULL, "(0, inf)"},
    {"scenario", K_ENUM, M(scenario), 0, "S_B, S_C parameterisation: default, positive, negative or mixed",
     ssm_scenario_parse, ssm_scenario_name, NULL},
    {"polarize", K_ENUM, M(polarize), 0, "pinned state channels (mamba2: heads): none, zero, one or both",
     ssm_polarize_parse, ssm_polarize_name, NULL},
    {"reorder", K_ENUM, M(reorder), 0, "token reordering of the SSM input for classifiers: off, soft (SoftSort) or hard (straight-through)",
     ssm_reorder_parse, ssm_reorder_name, NULL},
    {"reorder_tau", K_FLOAT, M(reorder_tau), 0, "SoftSort temperature tau > 0 of reorder soft and hard", NULL, NULL, NULL},
    {"reorder_layers", K_LAYERS, M(reorder_layers), 0, "layers that reorder their SSM input, e.g. 0 or 0,2", NULL, NULL, NULL},
    {"pool", K_ENUM, M(pool), 0, "classifier readout: mean over tokens, last token, or cls (a learned token appended last)",
     ssm_pool_parse, ssm_pool_name, NULL},
    {"lr", K_FLOAT, O(lr), 0, "peak learning rate", NULL, NULL, "(0, inf)"},
    {"min_lr", K_FLOAT, O(min_lr), 0, "final learning rate of the cosine schedule, at most lr", NULL, NULL, "[0, inf)"},
    {"warmup", K_INT, O(warmup), 0, "linear warmup steps", NULL, NULL, NULL},
    {"steps", K_INT, O(total_steps), 0, "optimizer steps in all", NULL, NULL, NULL},
    {"beta1", K_FLOAT, O(beta1), 0, "AdamW beta1", NULL, NULL, "[0, 1)"},
    {"beta2", K_FLOAT, O(beta2), 0, "AdamW beta2", NULL, NULL, "[0, 1)"},
    {"eps", K_FLOAT, O(eps), 0, "AdamW epsilon", NULL, NULL, "(0, inf)"},
    {"weight_decay", K_FLOAT, O(weight_decay), 0, "AdamW weight decay (not on A_log, D, biases, norms)", NULL, NULL, "[0, inf)"},
    {"grad_clip", K_FLOAT, O(grad_clip), 0, "clip the global gradient norm to this; 0 = off", NULL, NULL, "[0, inf)"},
    {"task", K_ENUM, R(task), 0, "what is trained: lm (next byte), classify (image label) or mqar (associative recall)",
     task_parse, run_task_name, NULL},
    {"dataset", K_ENUM, R(dataset), 0, "text, fashion-mnist, mnist or cifar10",
     dataset_parse, run_dataset_name, NULL},
    {"data", K_STR, R(data), RUN_PATH_MAX, "text file or directory, or image directory; empty = the dataset's default", NULL, NULL, NULL},
    {"val_fraction", K_DOUBLE, R(val_fraction), 0, "fraction of the corpus held out for validation (text)", NULL, NULL, NULL},
    {"patch", K_INT, R(patch), 0, "images: p x p pixel patches per token; 0 or 1 = one token per pixel", NULL, NULL, NULL},
    {"standardize", K_INT, R(standardize), 0, "images: 1 = per-channel mean/std of the training set, 0 = v/255", NULL, NULL, NULL},
    {"n_classes", K_INT, R(n_classes), 0, "images: number of classes; 0 = 1 + the largest training label", NULL, NULL, NULL},
    {"mqar_vocab", K_INT, Q(vocab), 0, "mqar: vocabulary V (keys 1 .. V/2-1, values V/2 .. V-1); more than mqar_len, at most vocab_size", NULL, NULL, NULL},
    {"mqar_len", K_INT, Q(len), 0, "mqar: sequence length T, even", NULL, NULL, NULL},
    {"mqar_pairs", K_INT, Q(pairs), 0, "mqar: key-value pairs K, each queried once; 4K <= T", NULL, NULL, NULL},
    {"mqar_alpha", K_DOUBLE, Q(alpha), 0, "mqar: query gaps g drawn with p(g) ~ a g^(a-1); 1 = uniform", NULL, NULL, NULL},
    {"mqar_filler", K_ENUM, Q(random_filler), 0, "mqar: tokens between the queries: random or zero",
     filler_parse, filler_name, NULL},
    {"mqar_train_examples", K_INT, R(mqar_train_examples), 0, "mqar: cycle over this many training examples; 0 = fresh ones every step", NULL, NULL, NULL},
    {"mqar_val_examples", K_INT, R(mqar_val_examples), 0, "mqar: validation examples, from a stream disjoint from training", NULL, NULL, NULL},
    {"seq_len", K_INT, R(seq_len), 0, "training sequence length L (text; images: set by patch; mqar: by mqar_len)", NULL, NULL, NULL},
    {"batch_size", K_INT, R(batch_size), 0, "sequences per micro-batch B", NULL, NULL, NULL},
    {"grad_accum", K_INT, R(grad_accum), 0, "micro-batches accumulated per step", NULL, NULL, NULL},
    {"eval_every", K_INT, R(eval_every), 0, "validate every this many steps; 0 = only at the end", NULL, NULL, NULL},
    {"eval_batches", K_INT, R(eval_batches), 0, "validation batches per evaluation; 0 = the whole split", NULL, NULL, NULL},
    {"log_every", K_INT, R(log_every), 0, "write a training row every this many steps", NULL, NULL, NULL},
    {"save_every", K_INT, R(save_every), 0, "save a checkpoint every this many steps; 0 = only at the end", NULL, NULL, NULL},
    {"stop_at", K_INT, R(stop_at), 0, "save a resumable checkpoint and stop after this step; 0 = run all steps", NULL, NULL, NULL},
    {"seed", K_LONG, R(seed), 0, "random seed for initialisation and batches", NULL, NULL, NULL},
    {"threads", K_INT, R(threads), 0, "OpenMP and BLAS threads; 0 = all cores", NULL, NULL, NULL},
    {"out", K_STR, R(out), RUN_PATH_MAX, "checkpoint directory to write", NULL, NULL, NULL},
    {"resume", K_STR, R(resume), RUN_PATH_MAX, "checkpoint directory to resume from", NULL, NULL, NULL},
    {"format", K_STR, R(format), 8, "metrics format on stdout: csv or jsonl", NULL, NULL, NULL},
};
#undef M
#undef O
#undef R
#undef Q
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

void run_config_default(run_config *rc)
{
    memset(rc, 0, sizeof *rc);
    ssm_config_default(&rc->model);
    rc->model.d_model = 128;
    rc->model.n_layer = 4;
    rc->model.reorder_layers = 1;   /* layer 0, when reorder is on */
    ssm_adamw_config_default(&rc->opt);
    rc->opt.total_steps = 600;
    rc->opt.warmup = 50;
    rc->opt.lr = 3e-3f;
    rc->opt.min_lr = 3e-4f;
    rc->task = RUN_TASK_LM;
    rc->dataset = RUN_DATA_TEXT;
    rc->data[0] = 0;
    rc->patch = 0;
    rc->standardize = 1;
    rc->n_classes = 0;
    rc->val_fraction = SSM_TEXT_DEFAULT_VAL_FRACTION;
    ssm_mqar_default(&rc->mqar);
    rc->mqar.vocab = 256;   /* the default vocab_size */
    rc->mqar_train_examples = 0;
    rc->mqar_val_examples = 1000;
    rc->seq_len = 128;
    rc->batch_size = 16;
    rc->grad_accum = 1;
    rc->eval_every = 100;
    rc->eval_batches = 20;
    rc->log_every = 10;
    rc->save_every = 0;
    rc->seed = 1;
    rc->threads = 0;
    snprintf(rc->out, sizeof rc->out, "runs/latest");
    snprintf(rc->format, sizeof rc->format, "csv");
}

static const key_spec *key_find(const char *name)
{
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name)) return &keys[i];
    return NULL;
}

/* Whether v lies in range ("[lo, hi]" with ( or ) for an open end; lo
 * and hi are numbers or inf): NaN never does, infinities only inside a
 * closed "inf" end.  A malformed range holds nothing. */
static int range_holds(const char *range, double v)
{
    char open, close;
    char lo_s[32], hi_s[32];
    if (sscanf(range, "%c%31[^,], %31[^])]%c", &open, lo_s, hi_s, &close) != 4) return 0;
    double lo = strtod(lo_s, NULL), hi = strtod(hi_s, NULL);
    int above = open == '[' ? v >= lo : v > lo;
    int below = close == ']' ? v <= hi : v < hi;
    return above && below;
}

/* The value of a ranged key in rc (as stored: a float key's value after
 * rounding to float) against its range; origin names where it was set. */
static ssm_status key_range_check(const run_config *rc, const key_spec *k, const char *origin)
{
    if (!k->range) return SSM_OK;
    const void *src = (const char *)rc + k->offset;
    double v = k->type == K_FLOAT ? *(const float *)src : *(const double *)src;
    if (range_holds(k->range, v)) return SSM_OK;
    return ssm_fail(SSM_ERR_CONFIG, "%s%s%s = %g is out of range %s (%s)", origin ? origin : "",
                    origin ? ": " : "", k->name, v, k->range, k->help);
}

static ssm_status key_parse(run_config *rc, const key_spec *k, const char *val, const char *origin)
{
    char *end = NULL;
    void *dst = (char *)rc + k->offset;
    errno = 0;
    switch (k->type) {
    case K_INT: {
        long v = strtol(val, &end, 10);
        if (*val && !*end && !errno && v >= INT_MIN && v <= INT_MAX) { *(int *)dst = (int)v; return SSM_OK; }
        break;
    }
    case K_LONG: {
        long v = strtol(val, &end, 10);
        if (*val && !*end && !errno) { *(long *)dst = v; return SSM_OK; }
        break;
    }
    case K_FLOAT:
    case K_DOUBLE: {
        double v = strtod(val, &end);
        if (*val && !*end && !errno) {
            if (k->type == K_FLOAT) *(float *)dst = (float)v; else *(double *)dst = v;
            return key_range_check(rc, k, origin);
        }
        break;
    }
    case K_STR:
        if (strlen(val) < k->size) { snprintf(dst, k->size, "%s", val); return SSM_OK; }
        return ssm_fail(SSM_ERR_CONFIG, "%s: value of '%s' is too long", origin, k->name);
    case K_LAYERS:
        if (!ssm_reorder_layers_parse(val, (uint64_t *)dst)) return SSM_OK;
        return ssm_fail(SSM_ERR_CONFIG, "%s: '%s' for key '%s' is not a list of layer numbers 0 to %d "
                        "separated by commas", origin, val, k->name, SSM_REORDER_MAX_LAYER);
    case K_ENUM: {
        int v = k->parse(val);
        if (v >= 0) { *(int *)dst = v; return SSM_OK; }
        return ssm_fail(SSM_ERR_CONFIG, "%s: '%s' is not a valid %s (%s)", origin, val, k->name, k->help);
    }
    }
    return ssm_fail(SSM_ERR_CONFIG, "%s: '%s' for key '%s' is not a valid %s", origin, val, k->name,
                    k->type == K_INT || k->type == K_LONG ? "integer" : "number");
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
    return s;
}

/* Split "key = value" (text is modified) and apply it; unknown keys are
 * an error unless skip_unknown. */
static ssm_status apply_line(run_config *rc, char *line, const char *origin, int skip_unknown)
{
    char *eq = strchr(line, '=');
    if (!eq) return ssm_fail(SSM_ERR_CONFIG, "%s: expected 'key = value', got '%s'", origin, trim(line));
    *eq = 0;
    char *key = trim(line), *val = trim(eq + 1);
    const key_spec *k = key_find(key);
    if (!k && skip_unknown) return SSM_OK;
    if (!k) return ssm_fail(SSM_ERR_CONFIG, "%s: unknown key '%s' (see ssmlab(1) for the keys)", origin, key);
    return key_parse(rc, k, val, origin);
}

ssm_status run_config_set(run_config *rc, const char *kv, const char *origin)
{
    char buf[RUN_PATH_MAX + 64];
    if (strlen(kv) >= sizeof buf) return ssm_fail(SSM_ERR_CONFIG, "%s: override too long", origin);
    snprintf(buf, sizeof buf, "%s", kv);
    return apply_line(rc, buf, origin, 0);
}

/* Lines of any length (getline), so a long comment stays a comment. */
ssm_status run_config_read(run_config *rc, const char *path)
{
    uint64_t size;
    struct stat sb;
    FILE *f = NULL;
    ssm_status st = stat(path, &sb) ? SSM_OK : ssm_bound_file(path, &size);   /* no FIFO or device */
    if (st) return st;
    if (!(f = fopen(path, "r")))
        return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open config: %s", path, strerror(errno));
    char *line = NULL, origin[RUN_PATH_MAX + 32];
    size_t cap = 0;
    for (int no = 1; !st && getline(&line, &cap, f) >= 0; no++) {
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        if (!*trim(line)) continue;
        snprintf(origin, sizeof origin, "%s:%d", path, no);
        st = apply_line(rc, line, origin, 0);
    }
    if (!st && ferror(f)) st = ssm_fail(SSM_ERR_IO, "%s: read error", path);
    free(line);
    fclose(f);
    return st;
}

ssm_status run_config_recorded(run_config *rc, const char *dir, const char *text,
                               const char *data, int task)
{
    run_config_default(rc);
    if (!text)
        return ssm_fail(SSM_ERR_DATA, "%s/model.safetensors: no ssmlab.run_config metadata, so the "
                        "data the model was trained on is unknown", dir);
    ssm_status st = run_config_parse_text(rc, text, dir);
    if (!st && data) snprintf(rc->data, sizeof rc->data, "%s", data);
    if (!st && rc->task != task)
        st = ssm_fail(SSM_ERR_DATA, "%s/model.safetensors: the recorded run config is a task = %s "
                      "run's, not task = %s", dir, run_task_name(rc->task), run_task_name(task));
    return st ? st : run_config_check(rc);
}

ssm_status run_config_parse_text(run_config *rc, const char *text, const char *origin)
{
    char line[RUN_PATH_MAX + 64];
    ssm_status st = SSM_OK;
    while (!st && *text) {
        size_t n = strcspn(text, "\n");
        if (n >= sizeof line) return ssm_fail(SSM_ERR_DATA, "%s: run config line too long", origin);
        memcpy(line, text, n);
        line[n] = 0;
        text += n + (text[n] == '\n');
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        if (*trim(line)) st = apply_line(rc, line, origin, 1);
    }
    return st;
}

ssm_status run_config_model(const run_config *rc, int d_input, int n_classes, ssm_config *out)
{
    *out = rc->model;
    if (rc->task == RUN_TASK_CLASSIFY) {
        out->input_kind = SSM_INPUT_CONTINUOUS;
        out->d_input = d_input;
        out->n_classes = n_classes;
    } else {
        out->input_kind = SSM_INPUT_TOKENS;
        out->n_classes = 0;
    }
    return ssm_config_finalize(out);
}

/* task = mqar: the generator's parameters, named by their keys, and no
 * data file or reordering. */
static ssm_status check_mqar(const run_config *rc)
{
    const ssm_mqar_config *q = &rc->mqar;
    if (rc->data[0])
        return ssm_fail(SSM_ERR_CONFIG, "data = '%s' is not used by task = mqar, whose examples are generated",
                        rc->data);
    if (q->len < 4 || q->len % 2)
        return ssm_fail(SSM_ERR_CONFIG, "mqar_len = %d must be even and at least 4", q->len);
    if (q->pairs < 1 || 4L * q->pairs > q->len)
        return ssm_fail(SSM_ERR_CONFIG, "mqar_pairs = %d must be between 1 and mqar_len / 4 = %d",
                        q->pairs, q->len / 4);
    if (q->vocab < 4 || q->vocab > rc->model.vocab_size)
        return ssm_fail(SSM_ERR_CONFIG, "mqar_vocab = %d must be between 4 and vocab_size = %d",
                        q->vocab, rc->model.vocab_size);
    if (q->pairs > q->vocab / 2 - 1)
        return ssm_fail(SSM_ERR_CONFIG, "mqar_pairs = %d is more than the %d distinct keys of mqar_vocab = %d",
                        q->pairs, q->vocab / 2 - 1, q->vocab);
    if (q->vocab <= q->len)
        return ssm_fail(SSM_ERR_CONFIG, "mqar_vocab = %d must be greater than mqar_len = %d, "
                        "as zoology's MQAR requires (vocabulary larger than the sequence)", q->vocab, q->len);
    if (!isfinite(q->alpha) || q->alpha <= 0.0)
        return ssm_fail(SSM_ERR_CONFIG, "mqar_alpha = %g must be finite and positive", q->alpha);
    if (rc->model.reorder != SSM_REORDER_OFF)
        return ssm_fail(SSM_ERR_CONFIG, "reorder = %s is for classifiers: task = mqar is causal (set reorder = off)",
                        ssm_reorder_name(rc->model.reorder));
    if (rc->mqar_train_examples < 0 || rc->mqar_train_examples > MQAR_MAX_EXAMPLES)
        return ssm_fail(SSM_ERR_CONFIG, "mqar_train_examples = %d is out of range [0, %d]",
                        rc->mqar_train_examples, MQAR_MAX_EXAMPLES);
    if (rc->mqar_val_examples < 1 || rc->mqar_val_examples > MQAR_MAX_EXAMPLES)
        return ssm_fail(SSM_ERR_CONFIG, "mqar_val_examples = %d is out of range [1, %d]",
                        rc->mqar_val_examples, MQAR_MAX_EXAMPLES);
    return ssm_mqar_check(q);
}

/* task, dataset, data, patch, standardize, n_classes agree; fill data. */
static ssm_status check_data(run_config *rc)
{
    const char *ds = run_dataset_name(rc->dataset);
    if (rc->dataset == RUN_DATA_TEXT && rc->task == RUN_TASK_CLASSIFY)
        return ssm_fail(SSM_ERR_CONFIG, "task = %s needs an image dataset (fashion-mnist, mnist or cifar10)",
                        run_task_name(rc->task));
    if (rc->dataset != RUN_DATA_TEXT && rc->task != RUN_TASK_CLASSIFY)
        return ssm_fail(SSM_ERR_CONFIG, "dataset = %s holds labelled images: set task = classify", ds);
    if (rc->patch < 0 || rc->patch > 1024)
        return ssm_fail(SSM_ERR_CONFIG, "patch = %d is out of range [0, 1024]", rc->patch);
    if (rc->standardize != 0 && rc->standardize != 1)
        return ssm_fail(SSM_ERR_CONFIG, "standardize = %d must be 0 or 1", rc->standardize);
    if (rc->n_classes < 0 || rc->n_classes > 65536)
        return ssm_fail(SSM_ERR_CONFIG, "n_classes = %d is out of range [0, 65536]", rc->n_classes);
    if (rc->task == RUN_TASK_MQAR) return check_mqar(rc);
    if (rc->data[0]) return SSM_OK;
    if (rc->dataset == RUN_DATA_TEXT) snprintf(rc->data, sizeof rc->data, "%s", SSM_TEXT_DEFAULT_CORPUS);
    else if (rc->dataset == RUN_DATA_FASHION) snprintf(rc->data, sizeof rc->data, "%s", SSM_IMAGES_FASHION_DIR);
    else return ssm_fail(SSM_ERR_CONFIG, "dataset = %s has no default location: set data = DIR", ds);
    return SSM_OK;
}

/* The optimizer's keys: each in its range, and min_lr <= lr. */
static ssm_status check_optimizer(const run_config *rc)
{
    for (int i = 0; i < NKEYS; i++) {
        ssm_status st = key_range_check(rc, &keys[i], NULL);
        if (st) return st;
    }
    if (rc->opt.min_lr > rc->opt.lr)
        return ssm_fail(SSM_ERR_CONFIG, "min_lr = %g is out of range [0, lr = %g] (%s)", rc->opt.min_lr,
                        rc->opt.lr, key_find("min_lr")->help);
    return SSM_OK;
}

ssm_status run_config_check(run_config *rc)
{
    ssm_status st = check_data(rc);
    if (!st) st = check_optimizer(rc);
    if (st) return st;
    if (rc->task == RUN_TASK_LM && rc->seq_len < 2)
        return ssm_fail(SSM_ERR_CONFIG, "seq_len = %d must be at least 2", rc->seq_len);
    if (rc->batch_size < 1) return ssm_fail(SSM_ERR_CONFIG, "batch_size = %d must be positive", rc->batch_size);
    if (rc->grad_accum < 1) return ssm_fail(SSM_ERR_CONFIG, "grad_accum = %d must be positive", rc->grad_accum);
    if (rc->opt.total_steps < 1) return ssm_fail(SSM_ERR_CONFIG, "steps = %d must be positive", rc->opt.total_steps);
    if (rc->opt.warmup < 0) return ssm_fail(SSM_ERR_CONFIG, "warmup = %d must not be negative", rc->opt.warmup);
    if (rc->eval_every < 0 || rc->eval_batches < 0 || rc->log_every < 1 || rc->save_every < 0)
        return ssm_fail(SSM_ERR_CONFIG, "eval_every, eval_batches and save_every must be >= 0, log_every >= 1");
    if (rc->stop_at < 0) return ssm_fail(SSM_ERR_CONFIG, "stop_at = %d must not be negative", rc->stop_at);
    if (rc->threads < 0) return ssm_fail(SSM_ERR_CONFIG, "threads = %d must not be negative", rc->threads);
    if (strcmp(rc->format, "csv") && strcmp(rc->format, "jsonl"))
        return ssm_fail(SSM_ERR_CONFIG, "format = '%s' must be csv or jsonl", rc->format);
    if (rc->model.pool != SSM_POOL_MEAN && rc->task != RUN_TASK_CLASSIFY)
        return ssm_fail(SSM_ERR_CONFIG, "pool = %s is a classifier's read-out (task = classify); "
                        "task = %s reads every position (set pool = mean)",
                        ssm_pool_name(rc->model.pool), run_task_name(rc->task));
    ssm_config c;   /* a trial: the image geometry is known once the data is loaded */
    return run_config_model(rc, 1, rc->n_classes ? rc->n_classes : 10, &c);
}

/* v as the shortest %.Ng, N = 6 .. 9 for a float (17 for a double), that
 * key_parse reads back as the same value: 3e-3f prints as 0.003, not as
 * the 0.00300000003 that %.9g gives, and still round-trips exactly. */
static void shortest_number(char *buf, size_t n, double v, int is_float)
{
    for (int p = 6; p <= (is_float ? 9 : 17); p++) {
        snprintf(buf, n, "%.*g", p, v);
        double back = strtod(buf, NULL);
        if (is_float ? (float)back == (float)v : back == v) return;
    }
}

static void key_write(const run_config *rc, const key_spec *k, FILE *f, const char *prefix)
{
    const void *src = (const char *)rc + k->offset;
    char num[32];
    fprintf(f, "%s%s = ", prefix, k->name);
    switch (k->type) {
    case K_INT: fprintf(f, "%d\n", *(const int *)src); break;
    case K_LONG: fprintf(f, "%ld\n", *(const long *)src); break;
    case K_FLOAT:
        shortest_number(num, sizeof num, *(const float *)src, 1);
        fprintf(f, "%s\n", num);
        break;
    case K_DOUBLE:
        shortest_number(num, sizeof num, *(const double *)src, 0);
        fprintf(f, "%s\n", num);
        break;
    case K_STR: fprintf(f, "%s\n", (const char *)src); break;
    case K_ENUM: fprintf(f, "%s\n", k->enum_name(*(const int *)src)); break;
    case K_LAYERS: {
        char list[256];
        ssm_reorder_layers_format(*(const uint64_t *)src, list, sizeof list);
        fprintf(f, "%s\n", list);
        break;
    }
    }
}

void run_config_write(const run_config *rc, FILE *f, const char *prefix)
{
    for (int i = 0; i < NKEYS; i++) key_write(rc, &keys[i], f, prefix);
}

char *run_config_string(const run_config *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    run_config_write(rc, f, "");
    fclose(f);
    return buf;
}

void run_config_write_keys(FILE *f)
{
    for (int i = 0; i < NKEYS; i++) fprintf(f, "%s\t%s\n", keys[i].name, keys[i].help);
}
