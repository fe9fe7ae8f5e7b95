/* attack.c — `ssmlab attack adversarial|target --model DIR --last K[,...]`:
 * recency-bias attacks (ssmlab-math(7) RECENCY) on a sequential image classifier's test
 * images, one row per k and region: FGSM, PGD or N(0,1) noise on k tokens
 * (the last, first or middle k; the first k as the control), or the splice
 * of those tokens of an image of a target class. */
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "engine/attack.h"
#include "cli/attack_eval.h"
#include "engine/checkpoint.h"
#include "cli/cli.h"
#include "data/images.h"
#include "engine/model.h"

#define PATH_CAP 1024

typedef struct {
    const char *model, *data, *last, *format;
    int threads;
    attack_eval_opts e;       /* e.step_size < 0 until parsed: 2.5 eps / steps */
} attack_opts;

/* Where the model's images come from: the checkpoint's run config keys
 * dataset, data, patch and standardize (defaults: Fashion-MNIST pixels). */
typedef struct {
    char dataset[32];
    char data[PATH_CAP];
    int patch, standardize;
} image_source;

/* The loaded splits and their sequence layout. */
typedef struct {
    ssm_images train, test;
    ssm_image_seq seq;
} attack_images;

/* ------------------------------------------------------------------------ */
/* Options                                                                  */

static const cli_opt attack_options[] = {
    CLI_OPT_MODEL(attack_opts, model, 0),
    {"last", 0, CLI_OPT_STRING, .metavar = "K[,K...]",
     .help = "attacked tokens k, one row each (per region): counts, or percentages of L (P%) (required)",
     .offset = offsetof(attack_opts, last)},
    {"data", 0, CLI_OPT_STRING, .metavar = "DIR", .help = "read the images from DIR (default: the run's)",
     .offset = offsetof(attack_opts, data)},
    CLI_OPT_FORMAT(attack_opts, format),
    CLI_OPT_THREADS(attack_opts, threads),
    CLI_OPT_END};

static const cli_command attack_command = {
    "attack", "adversarial|target --model DIR --last K[,K...] [options]",
    "Recency-bias attacks on k tokens (the last, first or middle k) of a sequential image classifier's test "
    "images.", 1, NULL};

/* The one operand: the attack. */
static int parse_mode(attack_opts *o, const cli_args *a)
{
    if (a->nargs < 1) return cli_usage_error("attack: give the attack, 'adversarial' or 'target'");
    if (a->nargs > 1) return cli_usage_error("attack: unexpected argument '%s'", a->args[1]);
    if (!strcmp(a->args[0], "adversarial")) o->e.mode = ATTACK_EVAL_ADVERSARIAL;
    else if (!strcmp(a->args[0], "target")) o->e.mode = ATTACK_EVAL_TARGET;
    else return cli_usage_error("attack: unknown attack '%s' (adversarial or target)", a->args[0]);
    return EX_OK;
}

static int parse_opts(attack_opts *o, int argc, char **argv)
{
    *o = (attack_opts){.format = "csv"};
    attack_eval_defaults(&o->e);
    const cli_opt_group groups[] = {{attack_options, o}, {attack_eval_options(), &o->e}, {NULL, NULL}};
    cli_args a;
    int rc = cli_opts_parse(&attack_command, groups, argc, argv, &a);
    if (rc) return rc;
    rc = parse_mode(o, &a);
    cli_args_free(&a);
    if (rc) return rc;
    if (!o->model) return cli_usage_error("attack: --model DIR is required");
    if (!o->last) return cli_usage_error("attack: --last K[,K2,...] is required");
    return attack_eval_check_opts(&o->e, "attack");
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
    char *key = trim(line), *val = trim(eq + 1);
    if (!strcmp(key, "task") && strcmp(val, "classify"))
        return ssm_fail(SSM_ERR_DATA, "%s: the run config's task is '%s', not an image classifier", model, val);
    if (!strcmp(key, "dataset")) snprintf(src->dataset, sizeof src->dataset, "%s", val);
    if (!strcmp(key, "data")) snprintf(src->data, sizeof src->data, "%s", val);
    if (!strcmp(key, "patch") || !strcmp(key, "standardize")) {
        long v;
        if (cli_parse_long(val, &v) || v < 0 || v > 1024)
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
static ssm_status load_images(attack_images *d, const image_source *src)
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
/* The command                                                              */

static void free_images(attack_images *d)
{
    ssm_images_free(&d->train);
    ssm_images_free(&d->test);
}

/* Load the images, parse --last against their length into the rows,
 * build the evaluation and run its clean pass. */
static ssm_status prepare(ssm_model *m, attack_images *d, attack_eval *a, const attack_opts *o,
                          const char *run_text, attack_eval_row *rows, int *nrows)
{
    image_source src;
    int ks[ATTACK_EVAL_MAX_KS], nk = 0;
    ssm_status st = source_parse(&src, run_text, o);
    if (!st) st = load_images(d, &src);
    if (!st) st = attack_eval_parse_ks("attack", o->last, d->seq.L, ks, &nk);
    if (st) return st;
    *nrows = attack_eval_rows(&o->e, ks, nk, rows);
    int N = o->e.images < d->test.n ? o->e.images : d->test.n;
    fprintf(stderr, "# model = %s, dataset = %s, data = %s, patch = %d, standardize = %d, L = %d, images = %d\n",
            o->model, src.dataset, src.data, src.patch > 1 ? src.patch : 1, src.standardize, d->seq.L, N);
    return attack_eval_build(a, m, &d->test, &d->seq, &o->e, o->model);
}

static ssm_status run(ssm_model *m, const attack_opts *o, const char *run_text)
{
    attack_images d = {0};
    attack_eval a = {0};
    attack_eval_row rows[ATTACK_EVAL_MAX_ROWS];
    int nrows = 0;
    ssm_status st = prepare(m, &d, &a, o, run_text, rows, &nrows);
    cli_table tab;
    cli_table_begin(&tab, stdout, o->format, attack_eval_columns(), ATTACK_EVAL_NCOLS);
    for (int i = 0; !st && i < nrows; i++) {
        ssm_attack_counts t;
        char v[ATTACK_EVAL_NCOLS][32];
        const char *vals[ATTACK_EVAL_NCOLS];
        if ((st = attack_eval_run(&a, m, rows[i], &t))) break;
        attack_eval_cells(&a.o, d.seq.L, rows[i], &t, v, vals);
        cli_table_row(&tab, vals);
    }
    attack_eval_free(&a);
    free_images(&d);
    return st;
}

int cli_attack(int argc, char **argv)
{
    attack_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc) return rc == CLI_OPTS_HELP ? EX_OK : rc;
    cli_threads_apply(o.threads);
    cli_log_header("attack", o.e.seed);
    ssm_model m;
    ssm_checkpoint_meta meta = {0};
    ssm_status st = ssm_checkpoint_load(o.model, &m, &meta);
    if (st) return cli_report(st);
    cli_log_model(o.model, &m);
    st = attack_eval_check_kind(&m, o.model);
    if (!st) st = run(&m, &o, meta.run_config);
    ssm_checkpoint_meta_free(&meta);
    ssm_model_free(&m);
    return st ? cli_report(st) : EX_OK;
}
