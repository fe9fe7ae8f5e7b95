/* attack.h — recency-bias attacks on sequential classifiers (ssmlab-math(7) RECENCY): FGSM
 * and PGD confined to the last k tokens of each sequence, the target splice
 * that copies the last k tokens of an image of another class, and the counts
 * and rates reported for them.
 *
 * Letters: B batch, L tokens per sequence, I values per token, C classes,
 * k tokens attacked at the end of each sequence (1 <= k <= L).  Inputs are
 * (B, L, I) row-major in the model's normalised input space. */
#ifndef SSM_ATTACK_H
#define SSM_ATTACK_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model.h"
#include "engine/status.h"

enum { SSM_ATTACK_FGSM = 0, SSM_ATTACK_PGD };

typedef struct {
    int method;         /* SSM_ATTACK_FGSM or SSM_ATTACK_PGD */
    int last_k;         /* k: tokens attacked at the end of each sequence */
    float eps;          /* L-infinity budget per input value (normalised units) */
    float step_size;    /* PGD step alpha (FGSM steps eps once) */
    int steps;          /* PGD iterations */
    int random_start;   /* PGD: start from a uniform draw in the eps box */
    uint64_t seed;      /* random-start draws: row r uses (seed, r) alone */
    const float *lo;    /* (I) smallest valid value of each token value, or NULL */
    const float *hi;    /* (I) largest valid value, or NULL (both or neither) */
} ssm_attack_config;

/* "fgsm" / "pgd" and back (-1 if unknown). */
const char *ssm_attack_method_name(int method);
int ssm_attack_method_parse(const char *s);

/* SSM_ERR_CONFIG unless 1 <= k <= L, eps >= 0, and for PGD steps >= 1 and
 * step_size > 0, each finite. */
ssm_status ssm_attack_config_check(const ssm_attack_config *c, int L);

/* Forward and backward of classifier m on batch b (continuous inputs,
 * targets (B)): dx (B, L, I) = d loss / d inputs, where loss is the mean
 * cross-entropy over the rows with a target >= 0 (also returned in *loss
 * when loss is not NULL).  Allocates m's gradients if needed. */
ssm_status ssm_attack_input_grad(ssm_model *m, const ssm_batch *b, float *dx, float *loss);

/* Zero every value of x (B, L, I) outside the last k tokens of its row. */
void ssm_attack_mask(float *x, int B, int L, int I, int k);

/* Clip xadv (B, L, I) into the box |xadv - x| <= eps on the last k tokens
 * (and into [lo, hi] there when c->lo is set); earlier tokens are reset to
 * x exactly. */
void ssm_attack_project(float *xadv, const float *x, int B, int L, int I,
                        const ssm_attack_config *c);

/* FGSM (xadv = x + eps sign(grad) on the last k tokens) or PGD (random or
 * clean start, then `steps` ascent steps of step_size sign(grad), each
 * projected) maximising m's loss on inputs x (B, L, I) with labels (B)
 * (rows with label -1 are left unchanged).  xadv is (B, L, I); row0 is the
 * number of x's first row in the whole evaluation, so random starts do not
 * depend on how rows are batched.  m's activations are left at the last
 * gradient pass: run a forward on xadv for its logits. */
ssm_status ssm_attack_adversarial(ssm_model *m, const ssm_attack_config *c, int B, int L,
                                  const float *x, const int *labels, uint64_t row0, float *xadv);

/* Target splice: for each row b, tokens L-k .. L-1 of x (B, L, I) become
 * those of donors row b (B, L, I).  Earlier tokens are untouched. */
void ssm_attack_splice(float *x, const float *donors, int B, int L, int I, int k);

/* A deterministic choice in [0, n) (n > 0) from (seed, index) alone: which
 * image of the target class donates its last tokens to image `index`. */
size_t ssm_attack_pick(size_t n, uint64_t seed, uint64_t index);

/* Tallies over the evaluated rows (rows with label < 0 are skipped). */
typedef struct {
    long n;                /* rows counted */
    long clean_correct;    /* argmax of the clean logits is the label */
    long attacked_correct; /* argmax of the attacked logits is the label */
    long flipped;          /* clean correct and attacked wrong */
    long target_pool;      /* rows whose label is not the target class */
    long target_hits;      /* of those, attacked argmax is the target class */
} ssm_attack_counts;

/* Add B rows of clean and attacked logits (B, C) with labels (B); target is
 * the target class, or -1 for an untargeted attack (pool and hits stay 0). */
void ssm_attack_count(ssm_attack_counts *t, const float *clean_logits, const float *adv_logits,
                      const int *labels, int B, int C, int target);

/* clean_acc = clean_correct / n, attacked_acc = attacked_correct / n;
 * success = flipped / clean_correct (untargeted) or target_hits /
 * target_pool (targeted).  An empty denominator gives NAN. */
typedef struct {
    double clean_acc, attacked_acc, success_rate;
} ssm_attack_rates;

void ssm_attack_rates_of(const ssm_attack_counts *t, int targeted, ssm_attack_rates *out);

#endif
