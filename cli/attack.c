/* attack.c — `ssmlab attack adversarial|target --model DIR --last K[,...]`:
 * recency-bias attacks (SPEC §3) on a sequential image classifier's test
 * images, one row per k: FGSM or PGD on the last k tokens, or the splice of
 * the last k tokens of an image of a target class. */
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "attack.h"
#include "checkpoint.h"
#include "cli.h"
#include "images.h"
#include "model.h"

#define MAX_KS 64
#define PATH_CAP 1024

enum { MODE_ADVERSARIAL = 0, MODE_TARGET };

typedef struct {
    int mode;                 /* MODE_* */
    const char *model, *data, *last, *format;
    int method, steps, random_start, clip, cls;
    float eps, step_size;     /* step_size < 0: 2.5 eps / steps */
    int images, batch_size, threads;
    long seed;
} attack_opts;

/* Where the model's images come from: the checkpoint's run config keys
 * dataset, data, patch and standardize (defaults: Fashion-MNIST pixels). */
typedef struct {
    char dataset[32];
    char data[PATH_CAP];
    int patch, standardize;
} image_source;

/* The loaded test split, its sequence layout and the attack's buffers. */
typedef struct {
    ssm_images train, test;
    ssm_image_seq seq;
    ssm_image_block blk;      /* (B, L, I) clean inputs and (B) labels */
    float *xadv;              /* (B, L, I) attacked inputs */
    float *donors;            /* (B, L, I) target: donor sequences */
    float *clean;             /* (N, C) clean logits of the evaluated images */
    float *lo, *hi;           /* (I) valid value range of each token value */
    size_t *pool;             /* (npool) target: test images of the class */
    size_t npool;
    int N, C;                 /* images evaluated, classes */
} attack_data;

static const char *const cols[] = {"attack", "method", "k", "k_fraction", "eps", "images",
                                   "clean_acc", "attacked_acc", "success_rate"};

/* ------------------------------------------------------------------------ */
/* Options                                                                  */

static int parse_mode(attack_opts *o, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return cli_usage_error("attack: give 'adversarial' or 'target' before the options");
    if (!strcmp(argv[1], "adversarial")) o->mode = MODE_ADVERSARIAL;
    else if (!strcmp(argv[1], "target")) o->mode = MODE_TARGET;
    else return cli_usage_error("attack: unknown attack '%s' (adversarial or target)", argv[1]);
    return EX_OK;
}

/* Parse a whole-string number; 0 if s is not one. */
static int num_ok(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && !*end && isfinite(*v);
}

static int parse_opt(attack_opts *o, int c, const char *arg)
{
    double v = 0;
    int ok = arg && num_ok(arg, &v);
    switch (c) {
    case 'm': o->model = arg; return EX_OK;
    case 'd': o->data = arg; return EX_OK;
    case 'k': o->last = arg; return EX_OK;
    case 'f': o->format = arg; return EX_OK;
    case 'M':
        if ((o->method = ssm_attack_method_parse(arg)) < 0)
            return cli_usage_error("attack: --method must be fgsm or pgd, not '%s'", arg);
        return EX_OK;
    case 'e': if (ok && v >= 0) { o->eps = (float)v; return EX_OK; } break;
    case 's': if (ok && v >= 1 && v <= 1e6 && v == floor(v)) { o->steps = (int)v; return EX_OK; } break;
    case 'a': if (ok && v > 0) { o->step_size = (float)v; return EX_OK; } break;
    case 'n': if (ok && v >= 1 && v <= 1e9 && v == floor(v)) { o->images = (int)v; return EX_OK; } break;
    case 'B': if (ok && v >= 1 && v <= 65536 && v == floor(v)) { o->batch_size = (int)v; return EX_OK; } break;
    case 'S': if (ok && v >= 0 && v <= 9e15 && v == floor(v)) { o->seed = (long)v; return EX_OK; } break;
    case 'j': if (ok && v >= 0 && v <= 4096 && v == floor(v)) { o->threads = (int)v; return EX_OK; } break;
    case 'C': if (ok && v >= 0 && v <= 65536 && v == floor(v)) { o->cls = (int)v; return EX_OK; } break;
    case 'r': o->random_start = 1; return EX_OK;
    case 'x': o->clip = 0; return EX_OK;
    default: return cli_usage_error("attack: unknown option");
    }
    return cli_usage_error("attack: bad value '%s' for an option (see ssmlab-attack(1))", arg);
}

static int check_opts(const attack_opts *o)
{
    if (!o->model) return cli_usage_error("attack: --model DIR is required");
    if (!o->last) return cli_usage_error("attack: --last K[,K2,...] is required");
    if (!cli_format_ok(o->format)) return cli_usage_error("attack: --format must be csv or jsonl");
    if (o->mode == MODE_TARGET && o->cls < 0) return cli_usage_error("attack target: --class C is required");
    if (o->mode == MODE_ADVERSARIAL && o->cls >= 0)
        return cli_usage_error("attack adversarial: --class goes with the target attack");
    return EX_OK;
}

static int parse_opts(attack_opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"data", required_argument, 0, 'd'},
        {"last", required_argument, 0, 'k'}, {"format", required_argument, 0, 'f'},
        {"method", required_argument, 0, 'M'}, {"eps", required_argument, 0, 'e'},
        {"steps", required_argument, 0, 's'}, {"step-size", required_argument, 0, 'a'},
        {"images", required_argument, 0, 'n'}, {"batch-size", required_argument, 0, 'B'},
        {"seed", required_argument, 0, 'S'}, {"threads", required_argument, 0, 'j'},
        {"class", required_argument, 0, 'C'}, {"random-start", no_argument, 0, 'r'},
        {"no-clip", no_argument, 0, 'x'}, {0, 0, 0, 0}};
    *o = (attack_opts){.format = "csv", .method = SSM_ATTACK_FGSM, .steps = 10, .clip = 1, .cls = -1,
                       .eps = 0.1f, .step_size = -1.0f, .images = 1000, .batch_size = 50};
    int rc = parse_mode(o, argc, argv), c;
    if (rc) return rc;
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == '?')
            return cli_usage_error("attack: unknown option or missing value in '%s'", argv[optind - 1]);
        if ((rc = parse_opt(o, c, optarg))) return rc;
    }
    if (optind < argc) return cli_usage_error("attack: unexpected argument '%s'", argv[optind]);
    if (o->step_size < 0) o->step_size = 2.5f * o->eps / o->steps;
    return check_opts(o);
}

/* One item of --last: "K" tokens or "P%" of L, into 1 <= *k <= L. */
static ssm_status k_parse(const char *item, int L, int *k)
{
    size_t n = strlen(item);
    double v;
    char buf[64];
    int pct = n > 0 && item[n - 1] == '%';
    snprintf(buf, sizeof buf, "%.*s", (int)(n - pct), item);
    if (n >= sizeof buf || !num_ok(buf, &v) || v <= 0 || (!pct && v != floor(v)))
        return ssm_fail(SSM_ERR_USAGE, "attack: --last: '%s' is not a token count or a percentage", item);
    double kk = pct ? floor(v / 100.0 * L + 0.5) : v;
    if (kk < 1) kk = 1;
    if (kk > L)
        return ssm_fail(SSM_ERR_USAGE, "attack: --last: '%s' is more than the %d tokens of a sequence", item, L);
    *k = (int)kk;
    return SSM_OK;
}

/* --last "K1,K2%,..." into ks (MAX_KS); *nk gets the count. */
static ssm_status ks_parse(const char *s, int L, int *ks, int *nk)
{
    char item[64];
    *nk = 0;
    for (const char *p = s;; p++) {
        size_t n = strcspn(p, ",");
        if (*nk == MAX_KS) return ssm_fail(SSM_ERR_USAGE, "attack: --last: more than %d values", MAX_KS);
        if (!n || n >= sizeof item)
            return ssm_fail(SSM_ERR_USAGE, "attack: --last: '%s' is not a list of counts or percentages", s);
        snprintf(item, sizeof item, "%.*s", (int)n, p);
        ssm_status st = k_parse(item, L, &ks[(*nk)++]);
        if (st) return st;
        p += n;
        if (!*p) return SSM_OK;
    }
}

/* ------------------------------------------------------------------------ */
/* The model's images                                                       */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

/* Apply one "key = value" line of the run config (other keys ignored). */
static ssm_status source_line(image_source *src, char *line, const char *model)
{
    char *eq = strchr(line, '='), *hash = strchr(line, '#');
    if (hash) *hash = 0;
    if (!eq || (hash && hash < eq)) return SSM_OK;
    *eq = 0;
    char *key = trim(line), *val = trim(eq + 1), *end;
    if (!strcmp(key, "task") && strcmp(val, "classify"))
        return ssm_fail(SSM_ERR_DATA, "%s: the run config's task is '%s', not an image classifier", model, val);
    if (!strcmp(key, "dataset")) snprintf(src->dataset, sizeof src->dataset, "%s", val);
    if (!strcmp(key, "data")) snprintf(src->data, sizeof src->data, "%s", val);
    if (!strcmp(key, "patch") || !strcmp(key, "standardize")) {
        long v = strtol(val, &end, 10);
        if (end == val || *end || v < 0 || v > 1024)
            return ssm_fail(SSM_ERR_DATA, "%s: run config %s = '%s' is not a small integer", model, key, val);
        *(!strcmp(key, "patch") ? &src->patch : &src->standardize) = (int)v;
    }
    return SSM_OK;
}

/* The image source from the checkpoint's run config text (may be NULL);
 * --data overrides its data directory. */
static ssm_status source_parse(image_source *src, const char *text, const attack_opts *o)
{
    *src = (image_source){.dataset = "fashion-mnist", .patch = 1, .standardize = 1};
    ssm_status st = SSM_OK;
    char line[PATH_CAP + 64];
    while (!st && text && *text) {
        size_t n = strcspn(text, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), text);
        text += n + (text[n] == '\n');
        st = source_line(src, line, o->model);
    }
    if (st) return st;
    if (o->data) snprintf(src->data, sizeof src->data, "%s", o->data);
    if (strcmp(src->dataset, "fashion-mnist") && strcmp(src->dataset, "mnist") && strcmp(src->dataset, "cifar10"))
        return ssm_fail(SSM_ERR_DATA, "%s: run config dataset '%s' is not an image dataset", o->model, src->dataset);
    if (!src->data[0] && strcmp(src->dataset, "fashion-mnist"))
        return ssm_fail(SSM_ERR_USAGE, "%s: dataset %s has no default location: give --data DIR", o->model,
                        src->dataset);
    if (!src->data[0]) snprintf(src->data, sizeof src->data, "%s", SSM_IMAGES_FASHION_DIR);
    return SSM_OK;
}

/* Load the test split (and the train split for its statistics when the
 * model standardises its inputs) and lay out the sequences. */
static ssm_status load_images(attack_data *d, const image_source *src)
{
    int cifar = !strcmp(src->dataset, "cifar10");
    ssm_status st = cifar ? ssm_images_load_cifar_dir(&d->test, src->data, 0)
                          : ssm_images_load_mnist(&d->test, src->data, "t10k");
    if (st) return st;
    const ssm_images *stats = &d->test;   /* geometry only when not standardising */
    if (src->standardize) {
        st = cifar ? ssm_images_load_cifar_dir(&d->train, src->data, 1)
                   : ssm_images_load_mnist(&d->train, src->data, "train");
        if (st) return st;
        stats = &d->train;
    }
    if ((st = ssm_images_build_seq(&d->seq, stats, src->patch > 1 ? src->patch : 1, src->standardize)))
        return st;
    return ssm_images_check_seq(&d->seq, &d->test);
}

/* ------------------------------------------------------------------------ */
/* Buffers                                                                  */

static void free_data(attack_data *d)
{
    ssm_images_free(&d->train);
    ssm_images_free(&d->test);
    ssm_images_free_block(&d->blk);
    free(d->xadv);
    free(d->donors);
    free(d->clean);
    free(d->lo);
    free(d->pool);
    memset(d, 0, sizeof *d);
}

/* Value bounds: byte 0 and byte 255 of each value's channel. */
static void value_bounds(attack_data *d)
{
    for (int j = 0; j < d->seq.d_input; j++) {
        int c = j % d->seq.channels;
        d->lo[j] = d->seq.lut[c][0];
        d->hi[j] = d->seq.lut[c][255];
    }
}

static ssm_status build_buffers(attack_data *d, int B)
{
    size_t n = (size_t)B * d->seq.L * d->seq.d_input;
    ssm_status st = ssm_images_build_block(&d->blk, &d->seq, B);
    if (st) return st;
    d->xadv = malloc(sizeof(float) * n);
    d->donors = calloc(n, sizeof(float));
    d->clean = malloc(sizeof(float) * (size_t)d->N * d->C);
    d->lo = malloc(sizeof(float) * 2 * d->seq.d_input);
    if (!d->xadv || !d->donors || !d->clean || !d->lo)
        return ssm_fail(SSM_ERR_NOMEM, "attack: out of memory for %d images", d->N);
    d->hi = d->lo + d->seq.d_input;
    value_bounds(d);
    return SSM_OK;
}

/* Target attack: the test images of class C (the donors). */
static ssm_status build_pool(attack_data *d, int C, const char *model)
{
    if (C >= d->C) return ssm_fail(SSM_ERR_USAGE, "attack: --class %d: %s has classes 0 .. %d", C, model, d->C - 1);
    d->pool = malloc(sizeof(size_t) * (d->test.n ? d->test.n : 1));
    if (!d->pool) return ssm_fail(SSM_ERR_NOMEM, "attack: out of memory");
    for (int i = 0; i < d->test.n; i++)
        if (d->test.labels[i] == C) d->pool[d->npool++] = (size_t)i;
    if (!d->npool) return ssm_fail(SSM_ERR_DATA, "%s: no test image of class %d to splice from", d->test.path, C);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Passes                                                                   */

/* Fill the block with images start .. start+B-1; returns the rows filled. */
static int load_batch(attack_data *d, int start)
{
    int B = d->blk.B, want = d->N - start < B ? d->N - start : B;
    int n = ssm_images_range(&d->test, &d->seq, (size_t)start, want, d->blk.inputs, d->blk.targets);
    for (int b = n; b < B; b++) d->blk.targets[b] = -1;   /* rows past N: padding */
    return n;
}

static ssm_status clean_pass(ssm_model *m, attack_data *d)
{
    for (int s = 0; s < d->N; s += d->blk.B) {
        int n = load_batch(d, s);
        ssm_status st = ssm_model_forward(m, &d->blk.batch);
        if (st) return st;
        memcpy(d->clean + (size_t)s * d->C, m->acts.logits, sizeof(float) * n * d->C);
    }
    return SSM_OK;
}

/* xadv <- the block's inputs with the last k tokens of donor images */
static void splice_batch(attack_data *d, int start, int k, uint64_t seed)
{
    size_t row = (size_t)d->seq.L * d->seq.d_input;
    memcpy(d->xadv, d->blk.inputs, sizeof(float) * d->blk.B * row);
    for (int b = 0; b < d->blk.B && start + b < d->N; b++) {
        size_t donor = d->pool[ssm_attack_pick(d->npool, seed, (uint64_t)(start + b))];
        ssm_images_to_seq(&d->test, &d->seq, donor, d->donors + b * row);
    }
    ssm_attack_splice(d->xadv, d->donors, d->blk.B, d->seq.L, d->seq.d_input, k);
}

/* Attack every image with k tokens and tally the results. */
static ssm_status attack_k(ssm_model *m, attack_data *d, const attack_opts *o, int k, ssm_attack_counts *t)
{
    ssm_attack_config ac = {o->method, k, o->eps, o->step_size, o->steps, o->random_start,
                            (uint64_t)o->seed, o->clip ? d->lo : NULL, o->clip ? d->hi : NULL};
    int B = d->blk.B, L = d->seq.L;
    ssm_batch adv = {B, L, NULL, d->xadv, d->blk.targets};
    memset(t, 0, sizeof *t);
    for (int s = 0; s < d->N; s += B) {
        load_batch(d, s);
        ssm_status st = SSM_OK;
        if (o->mode == MODE_TARGET) splice_batch(d, s, k, (uint64_t)o->seed);
        else st = ssm_attack_adversarial(m, &ac, B, L, d->blk.inputs, d->blk.targets, (uint64_t)s, d->xadv);
        if (!st) st = ssm_model_forward(m, &adv);
        if (st) return st;
        ssm_attack_count(t, d->clean + (size_t)s * d->C, m->acts.logits, d->blk.targets, B, d->C,
                         o->mode == MODE_TARGET ? o->cls : -1);
    }
    return SSM_OK;
}

static void write_row(cli_table *tab, const attack_opts *o, int k, int L, const ssm_attack_counts *t)
{
    ssm_attack_rates r;
    ssm_attack_rates_of(t, o->mode == MODE_TARGET, &r);
    char v[6][32];
    snprintf(v[0], 32, "%d", k);
    snprintf(v[1], 32, "%.6g", (double)k / L);
    snprintf(v[2], 32, "%.6g", o->eps);
    snprintf(v[3], 32, "%ld", t->n);
    snprintf(v[4], 32, "%.6g", r.clean_acc);
    snprintf(v[5], 32, "%.6g", r.attacked_acc);
    char sr[32];
    snprintf(sr, 32, "%.6g", r.success_rate);
    int tgt = o->mode == MODE_TARGET;
    const char *vals[] = {tgt ? "target" : "adversarial", tgt ? "splice" : ssm_attack_method_name(o->method),
                          v[0], v[1], tgt ? NULL : v[2], v[3], v[4], v[5], sr};
    cli_table_row(tab, vals);
}

/* ------------------------------------------------------------------------ */
/* The command                                                              */

static ssm_status check_model(const ssm_model *m, const attack_data *d, const char *model)
{
    if (d->seq.d_input != m->cfg.d_input)
        return ssm_fail(SSM_ERR_DATA, "%s: tokens have %d values, the model in %s takes %d", d->test.path,
                        d->seq.d_input, model, m->cfg.d_input);
    if (d->test.n_classes > m->cfg.n_classes)
        return ssm_fail(SSM_ERR_DATA, "%s: labels go up to %d, the model in %s has %d classes", d->test.path,
                        d->test.n_classes - 1, model, m->cfg.n_classes);
    return SSM_OK;
}

static ssm_status prepare(ssm_model *m, attack_data *d, const attack_opts *o, const char *run_text,
                          int *ks, int *nk)
{
    image_source src;
    ssm_status st = source_parse(&src, run_text, o);
    if (!st) st = load_images(d, &src);
    if (!st) st = check_model(m, d, o->model);
    if (!st) st = ks_parse(o->last, d->seq.L, ks, nk);
    if (st) return st;
    d->C = m->cfg.n_classes;
    d->N = o->images < d->test.n ? o->images : d->test.n;
    if (!d->N) return ssm_fail(SSM_ERR_DATA, "%s: the test split has no images", d->test.path);
    fprintf(stderr, "# model = %s, dataset = %s, data = %s, patch = %d, standardize = %d, L = %d, images = %d\n",
            o->model, src.dataset, src.data, src.patch > 1 ? src.patch : 1, src.standardize, d->seq.L, d->N);
    if ((st = build_buffers(d, o->batch_size < d->N ? o->batch_size : d->N))) return st;
    return o->mode == MODE_TARGET ? build_pool(d, o->cls, o->model) : SSM_OK;
}

static ssm_status run(ssm_model *m, const attack_opts *o, const char *run_text)
{
    attack_data d = {0};
    int ks[MAX_KS], nk = 0;
    ssm_status st = prepare(m, &d, o, run_text, ks, &nk);
    if (!st) st = clean_pass(m, &d);
    cli_table tab;
    cli_table_begin(&tab, stdout, o->format, cols, 9);
    for (int i = 0; !st && i < nk; i++) {
        ssm_attack_counts t;
        if (!(st = attack_k(m, &d, o, ks[i], &t))) write_row(&tab, o, ks[i], d.seq.L, &t);
    }
    free_data(&d);
    return st;
}

int cli_attack(int argc, char **argv)
{
    attack_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc) return rc;
    cli_threads_apply(o.threads);
    cli_log_header("attack", o.seed);
    ssm_model m;
    ssm_checkpoint_meta meta = {0};
    ssm_status st = ssm_checkpoint_load(o.model, &m, &meta);
    if (st) return cli_report(st);
    cli_log_model(o.model, &m);
    if (m.cfg.n_classes <= 0)
        st = ssm_fail(SSM_ERR_DATA, "%s is a language model: attacks need an image classifier", o.model);
    else if (m.cfg.input_kind != SSM_INPUT_CONTINUOUS)
        st = ssm_fail(SSM_ERR_DATA, "%s takes token ids: attacks need an image classifier", o.model);
    if (!st) st = run(&m, &o, meta.run_config);
    ssm_checkpoint_meta_free(&meta);
    ssm_model_free(&m);
    return st ? cli_report(st) : EX_OK;
}
