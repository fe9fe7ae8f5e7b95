/* sample.c — next-token choice for generation: argmax, temperature,
 * top-k and top-p (nucleus), drawn with GSL's MT19937.  This file must not
 * include cblas.h: GSL's gsl_cblas.h (pulled in by some GSL headers)
 * clashes with OpenBLAS's. */
#include "engine/sample.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ssm_sample_config_default(ssm_sample_config *c)
{
    c->greedy = 0;
    c->temperature = 1.0f;
    c->top_p = 1.0f;
    c->top_k = 0;
}

static ssm_status config_check(const ssm_sample_config *c, int V)
{
    if (V < 1) return ssm_fail(SSM_ERR_USAGE, "sampling needs a vocabulary, got %d tokens", V);
    if (!(c->temperature >= 0.0f) || isinf(c->temperature))
        return ssm_fail(SSM_ERR_USAGE, "temperature %g must be finite and >= 0", c->temperature);
    if (!(c->top_p > 0.0f && c->top_p <= 1.0f))
        return ssm_fail(SSM_ERR_USAGE, "top-p %g must be in (0, 1]", c->top_p);
    if (c->top_k < 0) return ssm_fail(SSM_ERR_USAGE, "top-k %d must be >= 0", c->top_k);
    return SSM_OK;
}

ssm_status ssm_sampler_build(ssm_sampler *s, const ssm_sample_config *cfg, int V,
                             unsigned long seed)
{
    memset(s, 0, sizeof *s);
    ssm_status st = config_check(cfg, V);
    if (st) return st;
    s->cfg = *cfg;
    if (s->cfg.temperature == 0.0f) s->cfg.greedy = 1;
    s->V = V;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    s->rng = r;
    s->probs = malloc(sizeof(float) * V);
    s->order = malloc(sizeof(int) * V);
    if (!r || !s->probs || !s->order) {
        ssm_sampler_free(s);
        return ssm_fail(SSM_ERR_NOMEM, "cannot allocate the sampler for %d tokens", V);
    }
    gsl_rng_set(r, seed);
    return SSM_OK;
}

void ssm_sampler_free(ssm_sampler *s)
{
    if (s->rng) gsl_rng_free(s->rng);
    free(s->probs);
    free(s->order);
    memset(s, 0, sizeof *s);
}

int ssm_sample_argmax(const float *x, int V)
{
    int best = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

void ssm_sample_softmax(float *probs, const float *logits, int V, float temperature)
{
    float mx = logits[ssm_sample_argmax(logits, V)];
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        probs[i] = expf((logits[i] - mx) / temperature);
        sum += probs[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < V; i++) probs[i] *= inv;
}

double ssm_sample_logprob(const float *logits, int V, int id)
{
    float mx = logits[ssm_sample_argmax(logits, V)];
    double sum = 0.0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[id] - mx - log(sum);
}

/* qsort_r order: decreasing probability, then increasing id */
static int by_prob_desc(const void *a, const void *b, void *probs)
{
    int i = *(const int *)a, j = *(const int *)b;
    float pi = ((const float *)probs)[i], pj = ((const float *)probs)[j];
    if (pi != pj) return pi > pj ? -1 : 1;
    return (i > j) - (i < j);
}

/* order[0 .. n) = the ids with probs >= thr, sorted; returns n */
static int gather_sorted(const float *probs, int V, float thr, int *order)
{
    int n = 0;
    for (int i = 0; i < V; i++)
        if (probs[i] >= thr) order[n++] = i;
    qsort_r(order, n, sizeof *order, by_prob_desc, (void *)probs);
    return n;
}

/* The shortest prefix of order[0 .. keep) holding top_p of mass. */
static int nucleus(const float *probs, const int *order, int keep, double mass, float top_p)
{
    double cum = 0.0;
    for (int i = 0; i < keep; i++) {
        cum += probs[order[i]];
        if (cum >= top_p * mass) return i + 1;
    }
    return keep;
}

static double mass_of(const float *probs, const int *ids, int n)
{
    double m = 0.0;
    for (int i = 0; i < n; i++) m += ids ? probs[ids[i]] : probs[i];
    return m;
}

int ssm_sample_filter(const float *probs, int V, int top_k, float top_p, int *order)
{
    int kk = top_k > 0 && top_k < V ? top_k : V;   /* top-k keeps kk */
    if (kk == V && top_p >= 1.0f) {
        for (int i = 0; i < V; i++) order[i] = i;
        return V;
    }
    /* Tokens below (1 - p) / (V - 1) are rarely in the nucleus: sort the
     * others first, and all of them when that prefix is too short to hold
     * the top-k or the nucleus. */
    float thr = top_p < 1.0f && V > 1 ? (1.0f - top_p) / (V - 1) : 0.0f;
    int n = gather_sorted(probs, V, thr, order);
    double mass = kk < V ? 0.0 : mass_of(probs, NULL, V);   /* what top-k keeps */
    int full = n < kk && (kk < V || mass_of(probs, order, n) < top_p * mass);
    if (full && thr > 0.0f) n = gather_sorted(probs, V, 0.0f, order);
    if (kk < V) mass = mass_of(probs, order, kk);
    if (top_p >= 1.0f) return kk;
    return nucleus(probs, order, kk < n ? kk : n, mass, top_p);
}

int ssm_sampler_next(ssm_sampler *s, const float *logits)
{
    if (s->cfg.greedy) return ssm_sample_argmax(logits, s->V);
    ssm_sample_softmax(s->probs, logits, s->V, s->cfg.temperature);
    int keep = ssm_sample_filter(s->probs, s->V, s->cfg.top_k, s->cfg.top_p, s->order);
    double mass = 0.0;
    for (int i = 0; i < keep; i++) mass += s->probs[s->order[i]];
    double u = gsl_rng_uniform(s->rng) * mass, cum = 0.0;
    for (int i = 0; i < keep; i++) {
        cum += s->probs[s->order[i]];
        if (u < cum) return s->order[i];
    }
    return s->order[keep - 1];
}
