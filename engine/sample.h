/* sample.h — choosing the next token from logits: greedy (argmax), or a
 * draw from softmax(logits / temperature) restricted to the top-k most
 * probable tokens and then to the nucleus (top-p).  Draws come from GSL's
 * MT19937 seeded once, so a seed gives the same tokens for the same logits.
 *
 * Filtering order: top-k keeps the k most probable tokens; top-p then keeps
 * the smallest prefix of them (most probable first, ties to the lower id)
 * whose mass is at least p times the mass the top-k kept; the draw is from
 * the kept tokens renormalised. */
#ifndef SSM_SAMPLE_H
#define SSM_SAMPLE_H

#include "engine/status.h"

typedef struct {
    int greedy;          /* 1: argmax, no draw */
    float temperature;   /* > 0; 0 means greedy */
    float top_p;         /* in (0, 1]; 1 = off */
    int top_k;           /* >= 0; 0 = off */
} ssm_sample_config;

typedef struct {
    ssm_sample_config cfg;
    int V;               /* candidates are ids [0, V) */
    void *rng;           /* gsl_rng * (kept opaque: see sample.c) */
    float *probs;        /* (V) softmax(logits / temperature) */
    int *order;          /* (V) candidate ids, most probable first */
} ssm_sampler;

/* Defaults: temperature 1, top-p 1, top-k 0 (plain sampling). */
void ssm_sample_config_default(ssm_sample_config *c);

/* SSM_ERR_USAGE for a bad setting (negative temperature, top-p outside
 * (0, 1], negative top-k, V < 1), SSM_ERR_NOMEM.  On failure *s is empty. */
ssm_status ssm_sampler_build(ssm_sampler *s, const ssm_sample_config *cfg, int V,
                             unsigned long seed);
void ssm_sampler_free(ssm_sampler *s);

/* Next token from logits[0 .. V) (entries past V, e.g. vocabulary padding,
 * are never chosen).  One uniform draw per call unless greedy. */
int ssm_sampler_next(ssm_sampler *s, const float *logits);

/* Index of the largest of x[0 .. V) (the lowest one on ties). */
int ssm_sample_argmax(const float *x, int V);

/* probs (V) = softmax(logits / temperature), temperature > 0. */
void ssm_sample_softmax(float *probs, const float *logits, int V, float temperature);

/* Fill order (V) with candidate ids, most probable first (ties to the lower
 * id), and return how many top-k and top-p keep.  Only the kept prefix of
 * order is defined.  With top_k 0 and top_p 1 all V are kept, in id order
 * (no sort). */
int ssm_sample_filter(const float *probs, int V, int top_k, float top_p, int *order);

/* log softmax(logits)[id] over [0, V), at temperature 1. */
double ssm_sample_logprob(const float *logits, int V, int id);

#endif
