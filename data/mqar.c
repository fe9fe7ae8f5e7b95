/* mqar.c — the MQAR generator (see mqar.h): distinct keys and values drawn
 * without replacement, power-law query gaps drawn without replacement by
 * sequential weighted draws, and accuracy over query positions.  Random
 * numbers: GSL mt19937 seeded by ssm_seed_derive(salt, seed, 0, index). */
#include "data/mqar.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/seed.h"

/* salt of this data stream for ssm_seed_derive: the bytes of "mqar" */
#define MQAR_SEED_SALT 0x6d716172ULL
#define MQAR_MAX_VOCAB (1 << 24)

void ssm_mqar_default(ssm_mqar_config *c)
{
    *c = (ssm_mqar_config){.vocab = 8192, .len = 64, .pairs = 4,
                           .alpha = SSM_MQAR_DEFAULT_ALPHA, .random_filler = 1};
}

ssm_status ssm_mqar_check(const ssm_mqar_config *c)
{
    if (c->len < 4 || c->len % 2)
        return ssm_fail(SSM_ERR_CONFIG, "mqar: sequence length %d must be even and >= 4", c->len);
    if (c->pairs < 1 || 4L * c->pairs > c->len)
        return ssm_fail(SSM_ERR_CONFIG, "mqar: %d pairs do not fit: need 1 <= pairs and 4 * pairs <= length %d",
                        c->pairs, c->len);
    if (c->vocab < 4 || c->vocab > MQAR_MAX_VOCAB)
        return ssm_fail(SSM_ERR_CONFIG, "mqar: vocabulary %d is outside [4, %d]", c->vocab, MQAR_MAX_VOCAB);
    if (c->pairs > c->vocab / 2 - 1)
        return ssm_fail(SSM_ERR_CONFIG, "mqar: vocabulary %d has only %d distinct keys (1 .. V/2-1) for %d pairs",
                        c->vocab, c->vocab / 2 - 1, c->pairs);
    if (!isfinite(c->alpha) || c->alpha <= 0)
        return ssm_fail(SSM_ERR_CONFIG, "mqar: power-law parameter a = %g must be finite and > 0", c->alpha);
    if (c->random_filler != 0 && c->random_filler != 1)
        return ssm_fail(SSM_ERR_CONFIG, "mqar: filler %d must be 0 (zeros) or 1 (random tokens)", c->random_filler);
    return SSM_OK;
}

int ssm_mqar_slots(const ssm_mqar_config *c) { return (c->len - 2 * c->pairs) / 2; }

/* K distinct draws from [lo, lo + n) into out (K), in draw order: a partial
 * Fisher-Yates shuffle of the range (pool is (n) scratch). */
static void draw_distinct(gsl_rng *r, int lo, int n, int K, int *pool, int *out)
{
    for (int i = 0; i < n; i++) pool[i] = lo + i;
    for (int i = 0; i < K; i++) {
        int j = i + (int)gsl_rng_uniform_int(r, (unsigned long)(n - i));
        int t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
        out[i] = pool[i];
    }
}

/* K distinct gaps g in 1 .. S, drawn one after another with weights
 * w (S) = a g^(a-1) over the gaps not yet taken (w is consumed). */
static void draw_gaps(gsl_rng *r, double *w, int S, int K, int *gaps)
{
    double total = 0.0;
    for (int g = 0; g < S; g++) total += w[g];
    for (int i = 0; i < K; i++) {
        double u = gsl_rng_uniform(r) * total, cum = 0.0;
        int pick = -1;
        for (int g = 0; g < S; g++) {
            if (w[g] <= 0.0) continue;
            pick = g;
            cum += w[g];
            if (u < cum) break;
        }
        gaps[i] = pick + 1;
        total -= w[pick];
        w[pick] = 0.0;
    }
}

/* The generator's scratch: keys, values, gaps (K each), a value pool
 * (V - V/2) and the gap weights (slots). */
typedef struct {
    int *keys, *values, *gaps, *pool;
    double *w;
} mqar_scratch;

static ssm_status build_scratch(mqar_scratch *s, const ssm_mqar_config *c)
{
    int K = c->pairs, S = ssm_mqar_slots(c), nv = c->vocab - c->vocab / 2;
    s->keys = malloc(sizeof(int) * (3 * (size_t)K + (size_t)nv));
    s->w = malloc(sizeof(double) * S);
    if (!s->keys || !s->w) {
        free(s->keys);
        free(s->w);
        return ssm_fail(SSM_ERR_NOMEM, "mqar: out of memory for the generator");
    }
    s->values = s->keys + K;
    s->gaps = s->values + K;
    s->pool = s->gaps + K;
    return SSM_OK;
}

static void free_scratch(mqar_scratch *s)
{
    free(s->keys);
    free(s->w);
}

/* One example with scratch s and generator r already seeded. */
static void generate(const ssm_mqar_config *c, gsl_rng *r, mqar_scratch *s, int *tokens, int *targets)
{
    int K = c->pairs, T = c->len, S = ssm_mqar_slots(c), half = c->vocab / 2;
    draw_distinct(r, 1, half - 1, K, s->pool, s->keys);
    draw_distinct(r, half, c->vocab - half, K, s->pool, s->values);
    for (int g = 0; g < S; g++) s->w[g] = c->alpha * pow(g + 1.0, c->alpha - 1.0);
    draw_gaps(r, s->w, S, K, s->gaps);
    for (int t = 0; t < T; t++) {
        tokens[t] = c->random_filler ? (int)gsl_rng_uniform_int(r, (unsigned long)c->vocab) : 0;
        targets[t] = -1;
    }
    for (int i = 0; i < K; i++) {
        int q = 2 * K + 2 * (s->gaps[i] - 1);
        tokens[2 * i] = s->keys[i];
        tokens[2 * i + 1] = s->values[i];
        tokens[q] = s->keys[i];
        targets[q] = s->values[i];
    }
}

/* Examples first .. first+B-1 with one scratch and one generator. */
static ssm_status generate_rows(const ssm_mqar_config *c, uint64_t seed, uint64_t first, int B,
                                int *tokens, int *targets, int *gaps)
{
    ssm_status st = ssm_mqar_check(c);
    if (st) return st;
    mqar_scratch s;
    if ((st = build_scratch(&s, c))) return st;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) {
        free_scratch(&s);
        return ssm_fail(SSM_ERR_NOMEM, "mqar: out of memory for the generator");
    }
    for (int b = 0; b < B; b++) {
        gsl_rng_set(r, ssm_seed_derive(MQAR_SEED_SALT, seed, 0, first + (uint64_t)b));
        generate(c, r, &s, tokens + (size_t)b * c->len, targets + (size_t)b * c->len);
    }
    if (gaps) memcpy(gaps, s.gaps, sizeof(int) * c->pairs);
    gsl_rng_free(r);
    free_scratch(&s);
    return SSM_OK;
}

ssm_status ssm_mqar_example(const ssm_mqar_config *c, uint64_t seed, uint64_t index,
                            int *tokens, int *targets, int *gaps)
{
    return generate_rows(c, seed, index, 1, tokens, targets, gaps);
}

ssm_status ssm_mqar_batch(const ssm_mqar_config *c, uint64_t seed, uint64_t first, int B,
                          int *tokens, int *targets)
{
    if (B < 1) return ssm_fail(SSM_ERR_CONFIG, "mqar: batch size %d must be >= 1", B);
    return generate_rows(c, seed, first, B, tokens, targets, NULL);
}

ssm_status ssm_mqar_build_block(ssm_mqar_block *blk, int B, int T)
{
    memset(blk, 0, sizeof *blk);
    if (B < 1 || T < 1) return ssm_fail(SSM_ERR_CONFIG, "mqar: batch shape %d x %d is empty", B, T);
    blk->tokens = malloc(sizeof(int) * (size_t)B * T);
    blk->targets = malloc(sizeof(int) * (size_t)B * T);
    if (!blk->tokens || !blk->targets) {
        ssm_mqar_free_block(blk);
        return ssm_fail(SSM_ERR_NOMEM, "mqar: out of memory for a %d x %d batch", B, T);
    }
    blk->B = B;
    blk->T = T;
    blk->batch = (ssm_batch){B, T, blk->tokens, NULL, blk->targets};
    return SSM_OK;
}

void ssm_mqar_free_block(ssm_mqar_block *blk)
{
    free(blk->tokens);
    free(blk->targets);
    memset(blk, 0, sizeof *blk);
}

long ssm_mqar_count_correct(const float *logits, const int *targets, long n, int V, long *counted)
{
    long correct = 0, count = 0;
    for (long i = 0; i < n; i++) {
        if (targets[i] < 0) continue;
        const float *row = logits + (size_t)i * V;   /* (V) */
        int best = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        correct += best == targets[i];
        count++;
    }
    if (counted) *counted = count;
    return correct;
}
