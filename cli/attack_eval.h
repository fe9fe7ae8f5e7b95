/* attack_eval.h — one recency-bias attack evaluation (ssmlab-math(7) RECENCY) on a
 * sequence classifier's test images, shared by `ssmlab attack` and
 * `ssmlab sweep --attack`: the --last list of k (token counts or
 * percentages), the --region of the k tokens and its control (the first k
 * tokens), the clean pass, the attacked pass for each (k, region) (FGSM,
 * PGD or N(0,1) noise on those tokens, or the splice of those tokens of an
 * image of the target class), and the table row of each. */
#ifndef SSM_CLI_ATTACK_EVAL_H
#define SSM_CLI_ATTACK_EVAL_H

#include <stddef.h>

#include "cli/opts.h"
#include "engine/attack.h"
#include "data/images.h"
#include "engine/model.h"

#define ATTACK_EVAL_MAX_KS 64
#define ATTACK_EVAL_MAX_ROWS (2 * ATTACK_EVAL_MAX_KS)
#define ATTACK_EVAL_NCOLS 10

enum { ATTACK_EVAL_ADVERSARIAL = 0, ATTACK_EVAL_TARGET };

typedef struct {
    int mode;                 /* ATTACK_EVAL_* */
    int method, steps, random_start, clip;
    const char *method_name;  /* --method as given, or NULL; attack_eval_check_opts sets method */
    int region;               /* SSM_ATTACK_REGION_*: where the k tokens sit */
    const char *region_name;  /* --region as given, or NULL; attack_eval_check_opts sets region */
    int cls;                  /* target class (target mode), else -1 */
    float eps, step_size;     /* step_size: PGD step, already resolved */
    int images, batch_size;   /* test images evaluated (the first ones), rows per pass */
    long seed;                /* random starts and donor choice */
} attack_eval_opts;

/* The test split (borrowed), the buffers, and the clean logits. */
typedef struct {
    const ssm_images *test;
    const ssm_image_seq *seq;
    attack_eval_opts o;
    ssm_image_block blk;      /* (B, L, I) clean inputs and (B) labels */
    float *xadv;              /* (B, L, I) attacked inputs */
    float *donors;            /* (B, L, I) target: donor sequences */
    float *clean;             /* (N, C) clean logits of the evaluated images */
    float *lo, *hi;           /* (I) valid value range of each token value */
    size_t *pool;             /* (npool) target: test images of the class */
    size_t npool;
    int N, C;                 /* images evaluated, classes */
} attack_eval;

/* One output row: k tokens in a region (SSM_ATTACK_REGION_*). */
typedef struct {
    int k, region;
} attack_eval_row;

/* The evaluation's options, shared by `attack` and `sweep`: --method,
 * --region, --eps, --steps, --step-size, --random-start, --no-clip, --class,
 * --images, --batch-size, --seed (a table for an attack_eval_opts). */
const cli_opt *attack_eval_options(void);

/* The defaults of ssmlab-attack(1): FGSM on the last k tokens, eps 0.1, 10 PGD steps of
 * 2.5 eps / steps, 1000 images in passes of 50, seed 0, clipping on, no
 * class.  mode is ATTACK_EVAL_ADVERSARIAL. */
void attack_eval_defaults(attack_eval_opts *o);

/* After the options: --method into method, --region into region; --class goes with the target
 * attack and only with it (EX_USAGE otherwise); resolves the default PGD
 * step size. */
int attack_eval_check_opts(attack_eval_opts *o, const char *who);

/* The column names of attack_eval_cells (ATTACK_EVAL_NCOLS): attack,
 * method, k, k_fraction, eps, images, clean_acc, attacked_acc,
 * success_rate, region. */
const char *const *attack_eval_columns(void);

/* --last "K1,P2%,...": up to ATTACK_EVAL_MAX_KS token counts or
 * percentages of L (rounded, at least 1) into ks; SSM_ERR_USAGE (message
 * prefixed with who, e.g. "attack") for a bad item or k > L.  With L <= 0
 * it checks the grammar only (percentages up to 100; ks undefined). */
ssm_status attack_eval_parse_ks(const char *who, const char *s, int L, int *ks, int *nk);

/* The rows of the k list ks (nk values) into rows (room for
 * ATTACK_EVAL_MAX_ROWS); returns their number.  Per k, in order: o's
 * region, then, unless that is the first region, the first region, the
 * control. */
int attack_eval_rows(const attack_eval_opts *o, const int *ks, int nk, attack_eval_row *rows);

/* SSM_ERR_DATA (naming `model`) unless m is a classifier of continuous
 * inputs: a language model or a token-id model cannot be attacked. */
ssm_status attack_eval_check_kind(const ssm_model *m, const char *model);

/* Check m against the test images, build the buffers (and the donor pool
 * of the target class) and run the clean pass over the first
 * min(o->images, test->n) test images.  Errors name `model`. */
ssm_status attack_eval_build(attack_eval *a, ssm_model *m, const ssm_images *test,
                             const ssm_image_seq *seq, const attack_eval_opts *o, const char *model);
void attack_eval_free(attack_eval *a);

/* Attack the k tokens of row r in every evaluated image; t gets the tallies. */
ssm_status attack_eval_run(attack_eval *a, ssm_model *m, attack_eval_row r, ssm_attack_counts *t);

/* The table row of r for an evaluation with options o on sequences of L
 * tokens: v is (ATTACK_EVAL_NCOLS, 32) storage, vals the ATTACK_EVAL_NCOLS
 * cells (NULL = empty; eps is empty for the splice and for noise). */
void attack_eval_cells(const attack_eval_opts *o, int L, attack_eval_row r, const ssm_attack_counts *t,
                       char v[][32], const char **vals);

#endif
