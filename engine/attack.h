/* attack.h — recency-bias attacks on sequential classifiers (ssmlab-math(7) RECENCY): FGSM,
 * PGD and N(0,1) noise confined to a region of k tokens of each sequence
 * (the first, the last or the middle k), the target splice that copies
 * that region of an image of another class, and the counts and rates
 * reported for them.
 *
 * Letters: B batch, L tokens per sequence, I values per token, C classes,
 * k tokens attacked, tokens start .. start+k-1 of each sequence
 * (0 <= start, 1 <= k, start + k <= L).  Inputs are (B, L, I) row-major in
 * the model's normalised input space. */
#ifndef SSM_ATTACK_H
#define SSM_ATTACK_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model.h"
#include "engine/status.h"

enum { SSM_ATTACK_FGSM = 0, SSM_ATTACK_PGD, SSM_ATTACK_NOISE };

/* Where the k attacked tokens sit: the first k, the last k, or the k in
 * the middle (from (L-k)/2, rounded down). */
enum { SSM_ATTACK_REGION_FIRST = 0, SSM_ATTACK_REGION_LAST, SSM_ATTACK_REGION_MIDDLE };

typedef struct {
    int method;         /* SSM_ATTACK_FGSM, SSM_ATTACK_PGD or SSM_ATTACK_NOISE */
    int start, k;       /* the attacked tokens: start .. start+k-1 of each sequence */
    float eps;          /* L-infinity budget per input value (normalised units); not noise's */
    float step_size;    /* PGD step alpha (FGSM steps eps once) */
    int steps;          /* PGD iterations */
    int random_start;   /* PGD: start from a uniform draw in the eps box */
    uint64_t seed;      /* random-start and noise draws: row r uses (seed, r) alone */
    const float *lo;    /* (I) smallest valid value of each token value, or NULL (not for noise) */
    const float *hi;    /* (I) largest valid value, or NULL (both or neither) */
} ssm_attack_config;

/* "fgsm" / "pgd" / "noise" and back (-1 if unknown). */
extern const char *const ssm_attack_method_names[];   /* in method order, NULL-terminated */
const char *ssm_attack_method_name(int method);
int ssm_attack_method_parse(const char *s);

/* "first" / "last" / "middle" and back (-1 if unknown). */
extern const char *const ssm_attack_region_names[];   /* in region order, NULL-terminated */
const char *ssm_attack_region_name(int region);
int ssm_attack_region_parse(const char *s);

/* The first attacked token of a region of k of L tokens (1 <= k <= L):
 * 0, L-k, or (L-k)/2 rounded down. */
int ssm_attack_region_start(int region, int L, int k);

/* SSM_ERR_CONFIG unless start >= 0, 1 <= k, start + k <= L, eps >= 0, and
 * for PGD steps >= 1 and step_size > 0, each finite. */
ssm_status ssm_attack_config_check(const ssm_attack_config *c, int L);

/* Forward and backward of classifier m on batch b (continuous inputs,
 * targets (B)): dx (B, L, I) = d loss / d inputs, where loss is the mean
 * cross-entropy over the rows with a target >= 0 (also returned in *loss
 * when loss is not NULL).  Allocates m's gradients if needed. */
ssm_status ssm_attack_input_grad(ssm_model *m, const ssm_batch *b, float *dx, float *loss);

/* Zero every value of x (B, L, I) outside tokens start .. start+k-1 of its row. */
void ssm_attack_mask(float *x, int B, int L, int I, int start, int k);

/* Clip xadv (B, L, I) into the box |xadv - x| <= eps on the attacked tokens
 * (and into [lo, hi] there when c->lo is set); the other tokens are reset
 * to x exactly. */
void ssm_attack_project(float *xadv, const float *x, int B, int L, int I,
                        const ssm_attack_config *c);

/* FGSM (xadv = x + eps sign(grad) on the attacked tokens) or PGD (random
 * or clean start, then `steps` ascent steps of step_size sign(grad), each
 * projected) maximising m's loss on inputs x (B, L, I) with labels (B); or
 * noise: the attacked tokens' values replaced by independent N(0,1) draws
 * (no gradient, no budget, no clipping).  Rows with label -1 are left
 * unchanged.  xadv is (B, L, I); row0 is the number of x's first row in the
 * whole evaluation: random starts and noise come from (seed, row) alone,
 * whatever the batching.  m's activations are left at the last gradient
 * pass (untouched by noise): run a forward on xadv for its logits. */
ssm_status ssm_attack_adversarial(ssm_model *m, const ssm_attack_config *c, int B, int L,
                                  const float *x, const int *labels, uint64_t row0, float *xadv);

/* Target splice: for each row b, tokens start .. start+k-1 of x (B, L, I)
 * become those of donors row b (B, L, I).  Other tokens are untouched. */
void ssm_attack_splice(float *x, const float *donors, int B, int L, int I, int start, int k);

/* A deterministic choice in [0, n) (n > 0) from (seed, index) alone: which
 * image of the target class donates its tokens to image `index`. */
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
