/* attack_eval.c — the passes of one recency-bias attack evaluation (ssmlab-math(7)
 * RECENCY) over a classifier's first test images, for `ssmlab attack` and
 * `ssmlab sweep --attack`: k lists and their rows (region and control),
 * buffers, the clean pass, the attacked pass per row (engine/attack.h) and
 * its table row. */
#include "cli/attack_eval.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"

static const char *const cols[ATTACK_EVAL_NCOLS] = {"attack", "method", "k", "k_fraction", "eps",
                                                    "images", "clean_acc", "attacked_acc", "success_rate",
                                                    "region"};

const char *const *attack_eval_columns(void) { return cols; }

/* ------------------------------------------------------------------------ */
/* Options                                                                  */

static const cli_opt options[] = {
    {"method", 0, CLI_OPT_CHOICE, .help = "the adversarial attack (default fgsm; noise: N(0,1) draws)",
     .offset = offsetof(attack_eval_opts, method_name), .choices = ssm_attack_method_names},
    {"region", 0, CLI_OPT_CHOICE, .help = "which k tokens (default last; the first k also run, the control)",
     .offset = offsetof(attack_eval_opts, region_name), .choices = ssm_attack_region_names},
    {"eps", 0, CLI_OPT_FLOAT, 0, CLI_NO_LIMIT, .metavar = "E", .help = "L-infinity budget, normalised units (default 0.1)",
     .offset = offsetof(attack_eval_opts, eps)},
    {"steps", 0, CLI_OPT_INT, 1, 1e6, .metavar = "S", .help = "PGD iterations (default 10)",
     .offset = offsetof(attack_eval_opts, steps)},
    {"step-size", 0, CLI_OPT_FLOAT, 0, CLI_NO_LIMIT, 1, .metavar = "A", .help = "PGD step (default 2.5 E / S)",
     .offset = offsetof(attack_eval_opts, step_size)},
    {"random-start", 0, CLI_OPT_FLAG, .help = "PGD starts from a uniform draw in the ball",
     .offset = offsetof(attack_eval_opts, random_start)},
    {"no-clip", 0, CLI_OPT_UNSET, .help = "do not clip attacked values to the pixel range",
     .offset = offsetof(attack_eval_opts, clip)},
    {"class", 0, CLI_OPT_INT, 0, 65536, .metavar = "C", .help = "target: the class whose tokens are spliced in",
     .offset = offsetof(attack_eval_opts, cls)},
    {"images", 0, CLI_OPT_INT, 1, 1e9, .metavar = "N", .help = "attack the first N test images",
     .offset = offsetof(attack_eval_opts, images)},
    {"batch-size", 0, CLI_OPT_INT, 1, 65536, .metavar = "B", .help = "images per pass (default 50)",
     .offset = offsetof(attack_eval_opts, batch_size)},
    {"seed", 0, CLI_OPT_LONG, 0, 9e15, .metavar = "S", .help = "seed of the random starts and donor choices (default 0)",
     .offset = offsetof(attack_eval_opts, seed)},
    CLI_OPT_END};

const cli_opt *attack_eval_options(void) { return options; }

void attack_eval_defaults(attack_eval_opts *o)
{
    *o = (attack_eval_opts){.method = SSM_ATTACK_FGSM, .region = SSM_ATTACK_REGION_LAST, .steps = 10, .clip = 1, .cls = -1, .eps = 0.1f,
                            .step_size = -1.0f, .images = 1000, .batch_size = 50};
}

int attack_eval_check_opts(attack_eval_opts *o, const char *who)
{
    if (o->method_name) o->method = ssm_attack_method_parse(o->method_name);
    if (o->region_name) o->region = ssm_attack_region_parse(o->region_name);
    if (o->mode == ATTACK_EVAL_TARGET && o->cls < 0) return cli_usage_error("%s target: --class C is required", who);
    if (o->mode == ATTACK_EVAL_ADVERSARIAL && o->cls >= 0)
        return cli_usage_error("%s adversarial: --class goes with the target attack", who);
    if (o->step_size < 0) o->step_size = 2.5f * o->eps / o->steps;
    return EX_OK;
}

/* ------------------------------------------------------------------------ */
/* The list of k                                                            */

/* One item: "K" tokens or "P%" of L, into 1 <= *k <= L (L <= 0: any
 * count, percentages up to 100). */
static ssm_status k_parse(const char *who, const char *item, int L, int *k)
{
    size_t n = strlen(item);
    double v;
    char buf[64];
    int pct = n > 0 && item[n - 1] == '%';
    snprintf(buf, sizeof buf, "%.*s", (int)(n - pct), item);
    if (n >= sizeof buf || cli_parse_double(buf, &v) || v <= 0 || (!pct && v != floor(v)))
        return ssm_fail(SSM_ERR_USAGE, "%s: --last: '%s' is not a token count or a percentage", who, item);
    if (L <= 0 && pct && v > 100)
        return ssm_fail(SSM_ERR_USAGE, "%s: --last: '%s' is more than the whole sequence", who, item);
    if (L <= 0) L = v > INT_MAX ? INT_MAX : (int)v;   /* grammar only */
    double kk = pct ? floor(v / 100.0 * L + 0.5) : v;
    if (kk < 1) kk = 1;
    if (kk > L)
        return ssm_fail(SSM_ERR_USAGE, "%s: --last: '%s' is more than the %d tokens of a sequence", who, item, L);
    *k = (int)kk;
    return SSM_OK;
}

ssm_status attack_eval_parse_ks(const char *who, const char *s, int L, int *ks, int *nk)
{
    char item[64];
    *nk = 0;
    for (const char *p = s;; p++) {
        size_t n = strcspn(p, ",");
        if (*nk == ATTACK_EVAL_MAX_KS)
            return ssm_fail(SSM_ERR_USAGE, "%s: --last: more than %d values", who, ATTACK_EVAL_MAX_KS);
        if (!n || n >= sizeof item)
            return ssm_fail(SSM_ERR_USAGE, "%s: --last: '%s' is not a list of counts or percentages", who, s);
        snprintf(item, sizeof item, "%.*s", (int)n, p);
        ssm_status st = k_parse(who, item, L, &ks[(*nk)++]);
        if (st) return st;
        p += n;
        if (!*p) return SSM_OK;
    }
}

int attack_eval_rows(const attack_eval_opts *o, const int *ks, int nk, attack_eval_row *rows)
{
    int n = 0;
    for (int i = 0; i < nk; i++) {
        rows[n++] = (attack_eval_row){ks[i], o->region};
        if (o->region != SSM_ATTACK_REGION_FIRST) rows[n++] = (attack_eval_row){ks[i], SSM_ATTACK_REGION_FIRST};
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Buffers                                                                  */

void attack_eval_free(attack_eval *a)
{
    ssm_images_free_block(&a->blk);
    free(a->xadv);
    free(a->donors);
    free(a->clean);
    free(a->lo);
    free(a->pool);
    memset(a, 0, sizeof *a);
}

/* Value bounds: byte 0 and byte 255 of each value's channel. */
static void value_bounds(attack_eval *a)
{
    for (int j = 0; j < a->seq->d_input; j++) {
        int c = j % a->seq->channels;
        a->lo[j] = a->seq->lut[c][0];
        a->hi[j] = a->seq->lut[c][255];
    }
}

static ssm_status build_buffers(attack_eval *a, int B)
{
    size_t n = (size_t)B * a->seq->L * a->seq->d_input;
    ssm_status st = ssm_images_build_block(&a->blk, a->seq, B);
    if (st) return st;
    a->xadv = malloc(sizeof(float) * n);
    a->donors = calloc(n, sizeof(float));
    a->clean = malloc(sizeof(float) * (size_t)a->N * a->C);
    a->lo = malloc(sizeof(float) * 2 * a->seq->d_input);
    if (!a->xadv || !a->donors || !a->clean || !a->lo)
        return ssm_fail(SSM_ERR_NOMEM, "attack: out of memory for %d images", a->N);
    a->hi = a->lo + a->seq->d_input;
    value_bounds(a);
    return SSM_OK;
}

/* Target attack: the test images of class C (the donors). */
static ssm_status build_pool(attack_eval *a, int C, const char *model)
{
    if (C >= a->C) return ssm_fail(SSM_ERR_USAGE, "attack: --class %d: %s has classes 0 .. %d", C, model, a->C - 1);
    a->pool = malloc(sizeof(size_t) * (a->test->n ? a->test->n : 1));
    if (!a->pool) return ssm_fail(SSM_ERR_NOMEM, "attack: out of memory");
    for (int i = 0; i < a->test->n; i++)
        if (a->test->labels[i] == C) a->pool[a->npool++] = (size_t)i;
    if (!a->npool) return ssm_fail(SSM_ERR_DATA, "%s: no test image of class %d to splice from", a->test->path, C);
    return SSM_OK;
}

ssm_status attack_eval_check_kind(const ssm_model *m, const char *model)
{
    if (m->cfg.n_classes <= 0)
        return ssm_fail(SSM_ERR_DATA, "%s is a language model: attacks need an image classifier", model);
    if (m->cfg.input_kind != SSM_INPUT_CONTINUOUS)
        return ssm_fail(SSM_ERR_DATA, "%s takes token ids: attacks need an image classifier", model);
    return SSM_OK;
}

static ssm_status check_model(const ssm_model *m, const attack_eval *a, const char *model)
{
    ssm_status st = attack_eval_check_kind(m, model);
    if (st) return st;
    if (a->seq->d_input != m->cfg.d_input)
        return ssm_fail(SSM_ERR_DATA, "%s: tokens have %d values, the model in %s takes %d", a->test->path,
                        a->seq->d_input, model, m->cfg.d_input);
    if (a->test->n_classes > m->cfg.n_classes)
        return ssm_fail(SSM_ERR_DATA, "%s: labels go up to %d, the model in %s has %d classes", a->test->path,
                        a->test->n_classes - 1, model, m->cfg.n_classes);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Passes                                                                   */

/* Fill the block with images start .. start+B-1; returns the rows filled. */
static int load_batch(attack_eval *a, int start)
{
    int B = a->blk.B, want = a->N - start < B ? a->N - start : B;
    int n = ssm_images_range(a->test, a->seq, (size_t)start, want, a->blk.inputs, a->blk.targets);
    for (int b = n; b < B; b++) a->blk.targets[b] = -1;   /* rows past N: padding */
    return n;
}

static ssm_status clean_pass(attack_eval *a, ssm_model *m)
{
    for (int s = 0; s < a->N; s += a->blk.B) {
        int n = load_batch(a, s);
        ssm_status st = ssm_model_forward(m, &a->blk.batch);
        if (st) return st;
        memcpy(a->clean + (size_t)s * a->C, m->acts.logits, sizeof(float) * n * a->C);
    }
    return SSM_OK;
}

ssm_status attack_eval_build(attack_eval *a, ssm_model *m, const ssm_images *test,
                             const ssm_image_seq *seq, const attack_eval_opts *o, const char *model)
{
    *a = (attack_eval){.test = test, .seq = seq, .o = *o, .C = m->cfg.n_classes};
    a->N = o->images < test->n ? o->images : test->n;
    ssm_status st = check_model(m, a, model);
    if (st) return st;
    if (!a->N) return ssm_fail(SSM_ERR_DATA, "%s: the test split has no images", test->path);
    if ((st = build_buffers(a, o->batch_size < a->N ? o->batch_size : a->N))) return st;
    if (o->mode == ATTACK_EVAL_TARGET && (st = build_pool(a, o->cls, model))) return st;
    return clean_pass(a, m);
}

/* xadv <- the block's inputs (images from `start`) with tokens
 * first .. first+k-1 of donor images */
static void splice_batch(attack_eval *a, int start, int first, int k)
{
    size_t row = (size_t)a->seq->L * a->seq->d_input;
    memcpy(a->xadv, a->blk.inputs, sizeof(float) * a->blk.B * row);
    for (int b = 0; b < a->blk.B && start + b < a->N; b++) {
        size_t donor = a->pool[ssm_attack_pick(a->npool, (uint64_t)a->o.seed, (uint64_t)(start + b))];
        ssm_images_to_seq(a->test, a->seq, donor, a->donors + b * row);
    }
    ssm_attack_splice(a->xadv, a->donors, a->blk.B, a->seq->L, a->seq->d_input, first, k);
}

ssm_status attack_eval_run(attack_eval *a, ssm_model *m, attack_eval_row r, ssm_attack_counts *t)
{
    const attack_eval_opts *o = &a->o;
    int B = a->blk.B, L = a->seq->L, tgt = o->mode == ATTACK_EVAL_TARGET;
    int first = ssm_attack_region_start(r.region, L, r.k);
    ssm_attack_config ac = {o->method, first, r.k, o->eps, o->step_size, o->steps, o->random_start,
                            (uint64_t)o->seed, o->clip ? a->lo : NULL, o->clip ? a->hi : NULL};
    ssm_batch adv = {B, L, NULL, a->xadv, a->blk.targets};
    memset(t, 0, sizeof *t);
    for (int s = 0; s < a->N; s += B) {
        load_batch(a, s);
        ssm_status st = SSM_OK;
        if (tgt) splice_batch(a, s, first, r.k);
        else st = ssm_attack_adversarial(m, &ac, B, L, a->blk.inputs, a->blk.targets, (uint64_t)s, a->xadv);
        if (!st) st = ssm_model_forward(m, &adv);
        if (st) return st;
        ssm_attack_count(t, a->clean + (size_t)s * a->C, m->acts.logits, a->blk.targets, B, a->C,
                         tgt ? o->cls : -1);
    }
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Rows                                                                     */

void attack_eval_cells(const attack_eval_opts *o, int L, attack_eval_row r, const ssm_attack_counts *t,
                       char v[][32], const char **vals)
{
    int k = r.k;
    ssm_attack_rates q;
    int tgt = o->mode == ATTACK_EVAL_TARGET;
    ssm_attack_rates_of(t, tgt, &q);
    snprintf(v[2], 32, "%d", k);
    snprintf(v[3], 32, "%.6g", (double)k / L);
    snprintf(v[4], 32, "%.6g", o->eps);
    snprintf(v[5], 32, "%ld", t->n);
    snprintf(v[6], 32, "%.6g", q.clean_acc);
    snprintf(v[7], 32, "%.6g", q.attacked_acc);
    snprintf(v[8], 32, "%.6g", q.success_rate);
    vals[0] = tgt ? "target" : "adversarial";
    vals[1] = tgt ? "splice" : ssm_attack_method_name(o->method);
    for (int c = 2; c < ATTACK_EVAL_NCOLS - 1; c++) vals[c] = v[c];
    vals[9] = ssm_attack_region_name(r.region);
    if (tgt || o->method == SSM_ATTACK_NOISE) vals[4] = NULL;
}
