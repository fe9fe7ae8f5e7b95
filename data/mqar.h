/* mqar.h — multi-query associative recall (ssmlab-math(7) RECENCY), generated as zoology's
 * multiquery_ar does: K key-value pairs open the sequence, each key comes
 * back once as a query at a power-law distributed gap, and the target at a
 * query is that key's value (every other target is -1, ignored by the
 * loss).  Examples depend on (seed, index) alone.
 *
 * Letters: V vocabulary, T sequence length (even), K pairs, B batch. */
#ifndef SSM_MQAR_H
#define SSM_MQAR_H

#include <stdint.h>

#include "engine/model.h"
#include "engine/status.h"

#define SSM_MQAR_DEFAULT_ALPHA 0.01

typedef struct {
    int vocab;          /* V: keys are 1 .. V/2 - 1, values V/2 .. V - 1 */
    int len;            /* T: even, >= 4K */
    int pairs;          /* K: key-value pairs, each queried once */
    double alpha;       /* a > 0: p(gap g) ∝ a g^(a-1), g = 1 .. (T - 2K)/2;
                           a = 1 is uniform, small a favours short gaps */
    int random_filler;  /* 0: non-query positions after the pairs hold 0;
                           1: uniform tokens in [0, V) (zoology's default) */
} ssm_mqar_config;

/* V 8192, T 64, K 4, a = 0.01, random filler (zoology's defaults). */
void ssm_mqar_default(ssm_mqar_config *c);

/* SSM_ERR_CONFIG with a message naming the bad parameter unless T >= 4 is
 * even, 1 <= K, 4K <= T, K <= V/2 - 1 (distinct keys) and K <= V - V/2
 * (distinct values), V <= 2^24, a > 0 and finite, filler 0 or 1. */
ssm_status ssm_mqar_check(const ssm_mqar_config *c);

/* Query slots: (T - 2K)/2; slot g = 1 .. slots is position 2K + 2(g - 1). */
int ssm_mqar_slots(const ssm_mqar_config *c);

/* Example `index` of the stream `seed`: tokens (T) and targets (T).
 * Layout: positions 0 .. 2K-1 hold k_1 v_1 .. k_K v_K (keys distinct,
 * values distinct); key i is queried at slot g_i, the g_i drawn without
 * replacement with weights a g^(a-1) (in key order); targets[q] = v_i at
 * the query position q of key i and -1 elsewhere; every other position is
 * filler.  If gaps is not NULL it receives g_1 .. g_K (K).  Checks c. */
ssm_status ssm_mqar_example(const ssm_mqar_config *c, uint64_t seed, uint64_t index,
                            int *tokens, int *targets, int *gaps);

/* Examples first .. first+B-1 into tokens (B, T) and targets (B, T). */
ssm_status ssm_mqar_batch(const ssm_mqar_config *c, uint64_t seed, uint64_t first, int B,
                          int *tokens, int *targets);

/* Owned (B, T) buffers with an ssm_batch view (inputs NULL). */
typedef struct {
    int B, T;
    int *tokens;      /* (B, T) */
    int *targets;     /* (B, T), -1 = not a query */
    ssm_batch batch;  /* views tokens/targets */
} ssm_mqar_block;

ssm_status ssm_mqar_build_block(ssm_mqar_block *blk, int B, int T);
void ssm_mqar_free_block(ssm_mqar_block *blk);

/* Accuracy over query positions: of the n rows of logits (n, V) (V the
 * logits' row width, e.g. the padded vocabulary) whose target (n) is >= 0,
 * how many peak (argmax, first on ties) at the target.  *counted gets the
 * number of such rows when not NULL. */
long ssm_mqar_count_correct(const float *logits, const int *targets, long n, int V, long *counted);

#endif
