/* attack.c — FGSM, PGD and N(0,1) noise on a region of k tokens, the
 * target splice and the attack tallies of ssmlab-math(7) RECENCY (see attack.h).  Includes
 * no cblas.h: GSL's generators give the random starts, noise and donor choices. */
#include "engine/attack.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/seed.h"

/* salt of the attack streams for ssm_seed_derive: the bytes of "attack" */
#define ATTACK_SEED_SALT 0x61747461636bULL
/* sub-streams: random starts, donor choices and noise never share draws */
enum { STREAM_START = 1, STREAM_DONOR = 2, STREAM_NOISE = 3 };

const char *const ssm_attack_method_names[] = {"fgsm", "pgd", "noise", NULL};
const char *const ssm_attack_region_names[] = {"first", "last", "middle", NULL};

/* index of s in the NULL-terminated names, or -1 */
static int name_index(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

const char *ssm_attack_method_name(int method)
{
    return method >= SSM_ATTACK_FGSM && method <= SSM_ATTACK_NOISE ? ssm_attack_method_names[method] : "?";
}

int ssm_attack_method_parse(const char *s) { return name_index(ssm_attack_method_names, s); }

const char *ssm_attack_region_name(int region)
{
    int known = region >= SSM_ATTACK_REGION_FIRST && region <= SSM_ATTACK_REGION_MIDDLE;
    return known ? ssm_attack_region_names[region] : "?";
}

int ssm_attack_region_parse(const char *s) { return name_index(ssm_attack_region_names, s); }

int ssm_attack_region_start(int region, int L, int k)
{
    return region == SSM_ATTACK_REGION_LAST ? L - k : region == SSM_ATTACK_REGION_MIDDLE ? (L - k) / 2 : 0;
}

ssm_status ssm_attack_config_check(const ssm_attack_config *c, int L)
{
    if (c->k < 1 || c->k > L)
        return ssm_fail(SSM_ERR_CONFIG, "attack: k = %d tokens is outside [1, %d]", c->k, L);
    if (c->start < 0 || c->start > L - c->k)
        return ssm_fail(SSM_ERR_CONFIG, "attack: tokens %d .. %d are outside 0 .. %d", c->start,
                        c->start + c->k - 1, L - 1);
    if (!isfinite(c->eps) || c->eps < 0)
        return ssm_fail(SSM_ERR_CONFIG, "attack: eps = %g must be finite and >= 0", c->eps);
    if (c->method < SSM_ATTACK_FGSM || c->method > SSM_ATTACK_NOISE)
        return ssm_fail(SSM_ERR_CONFIG, "attack: unknown method %d", c->method);
    if (c->method == SSM_ATTACK_PGD && (c->steps < 1 || !isfinite(c->step_size) || c->step_size <= 0))
        return ssm_fail(SSM_ERR_CONFIG, "attack: PGD needs steps >= 1 (got %d) and a step size > 0 (got %g)",
                        c->steps, c->step_size);
    if (!c->lo != !c->hi) return ssm_fail(SSM_ERR_CONFIG, "attack: give both value bounds or neither");
    return SSM_OK;
}

ssm_status ssm_attack_input_grad(ssm_model *m, const ssm_batch *b, float *dx, float *loss)
{
    if (m->cfg.n_classes <= 0 || m->cfg.input_kind != SSM_INPUT_CONTINUOUS)
        return ssm_fail(SSM_ERR_CONFIG, "attack: the model is not a classifier of continuous inputs");
    if (!b->targets) return ssm_fail(SSM_ERR_SOFTWARE, "attack: input gradients need targets");
    ssm_status st = m->grads_memory ? SSM_OK : ssm_model_alloc_grads(m);
    if (st) return st;
    ssm_model_zero_grad(m);
    if ((st = ssm_model_forward(m, b))) return st;
    if (loss) *loss = m->loss;
    if (!m->n_targets) {   /* no labelled row: the loss is constant */
        memset(dx, 0, sizeof(float) * b->B * b->L * m->cfg.d_input);
        return SSM_OK;
    }
    if ((st = ssm_model_backward(m, 1.0f))) return st;
    return ssm_model_input_grad(m, dx);
}

void ssm_attack_mask(float *x, int B, int L, int I, int start, int k)
{
    size_t row = (size_t)L * I, lo = (size_t)start * I, hi = (size_t)(start + k) * I;   /* region [lo, hi) */
    for (int b = 0; b < B; b++) {
        memset(x + b * row, 0, sizeof(float) * lo);
        memset(x + b * row + hi, 0, sizeof(float) * (row - hi));
    }
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

void ssm_attack_project(float *xadv, const float *x, int B, int L, int I, const ssm_attack_config *c)
{
    size_t row = (size_t)L * I, lo = (size_t)c->start * I, hi = (size_t)(c->start + c->k) * I;
    for (int b = 0; b < B; b++) {
        float *xa = xadv + b * row;          /* (L, I) */
        const float *x0 = x + b * row;       /* (L, I) */
        memcpy(xa, x0, sizeof(float) * lo);
        memcpy(xa + hi, x0 + hi, sizeof(float) * (row - hi));
        for (size_t j = lo; j < hi; j++) {
            float v = clampf(xa[j], x0[j] - c->eps, x0[j] + c->eps);
            xa[j] = c->lo ? clampf(v, c->lo[j % I], c->hi[j % I]) : v;
        }
    }
}

static float signf(float g) { return g > 0.0f ? 1.0f : g < 0.0f ? -1.0f : 0.0f; }

/* xadv += a * sign(g) over the whole block (g is already masked) */
static void sign_step(float *xadv, const float *g, size_t n, float a)
{
    for (size_t j = 0; j < n; j++) xadv[j] += a * signf(g[j]);
}

/* Random draws on the attacked tokens of each labelled row, from a
 * generator seeded by (seed, stream, row0 + b) alone: STREAM_START adds
 * PGD's uniform start in [-eps, eps], STREAM_NOISE replaces each value by
 * an N(0,1) draw. */
static ssm_status draw_region(float *xadv, int B, int L, int I, const int *labels,
                              const ssm_attack_config *c, uint64_t row0, int stream)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) return ssm_fail(SSM_ERR_NOMEM, "attack: out of memory for a generator");
    size_t row = (size_t)L * I, lo = (size_t)c->start * I, hi = (size_t)(c->start + c->k) * I;
    for (int b = 0; b < B; b++) {
        if (labels[b] < 0) continue;
        gsl_rng_set(r, ssm_seed_derive(ATTACK_SEED_SALT, c->seed, (uint64_t)stream, row0 + (uint64_t)b));
        float *xa = xadv + b * row;   /* (L, I) */
        for (size_t j = lo; j < hi; j++)
            xa[j] = stream == STREAM_NOISE ? (float)gsl_ran_gaussian(r, 1.0)
                                           : xa[j] + c->eps * (float)(2.0 * gsl_rng_uniform(r) - 1.0);
    }
    gsl_rng_free(r);
    return SSM_OK;
}

/* One ascent step at xadv: gradient, mask to the attacked tokens, signed step
 * of size a, projection. g is (B, L, I) scratch. */
static ssm_status ascent_step(ssm_model *m, const ssm_attack_config *c, ssm_batch *bt,
                              const float *x, float *xadv, float *g, float a)
{
    int B = bt->B, L = bt->L, I = m->cfg.d_input;
    bt->inputs = xadv;
    ssm_status st = ssm_attack_input_grad(m, bt, g, NULL);
    if (st) return st;
    ssm_attack_mask(g, B, L, I, c->start, c->k);
    sign_step(xadv, g, (size_t)B * L * I, a);
    ssm_attack_project(xadv, x, B, L, I, c);
    return SSM_OK;
}

ssm_status ssm_attack_adversarial(ssm_model *m, const ssm_attack_config *c, int B, int L,
                                  const float *x, const int *labels, uint64_t row0, float *xadv)
{
    ssm_status st = ssm_attack_config_check(c, L);
    if (st) return st;
    int I = m->cfg.d_input;
    size_t n = (size_t)B * L * I;
    if (c->method == SSM_ATTACK_NOISE) {
        memcpy(xadv, x, sizeof(float) * n);
        return draw_region(xadv, B, L, I, labels, c, row0, STREAM_NOISE);
    }
    float *g = malloc(sizeof(float) * n);   /* (B, L, I) input gradient */
    if (!g) return ssm_fail(SSM_ERR_NOMEM, "attack: out of memory for %d x %d x %d gradients", B, L, I);
    memcpy(xadv, x, sizeof(float) * n);
    ssm_batch bt = {B, L, NULL, xadv, labels};
    if (c->method == SSM_ATTACK_FGSM) {
        st = ascent_step(m, c, &bt, x, xadv, g, c->eps);
    } else {
        if (c->random_start && !(st = draw_region(xadv, B, L, I, labels, c, row0, STREAM_START)))
            ssm_attack_project(xadv, x, B, L, I, c);
        for (int s = 0; !st && s < c->steps; s++) st = ascent_step(m, c, &bt, x, xadv, g, c->step_size);
    }
    free(g);
    return st;
}

void ssm_attack_splice(float *x, const float *donors, int B, int L, int I, int start, int k)
{
    size_t row = (size_t)L * I, lo = (size_t)start * I;
    for (int b = 0; b < B; b++) memcpy(x + b * row + lo, donors + b * row + lo, sizeof(float) * k * I);
}

size_t ssm_attack_pick(size_t n, uint64_t seed, uint64_t index)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) return 0;
    gsl_rng_set(r, ssm_seed_derive(ATTACK_SEED_SALT, seed, STREAM_DONOR, index));
    size_t pick = (size_t)gsl_rng_uniform_int(r, (unsigned long)n);
    gsl_rng_free(r);
    return pick;
}

/* index of the largest of v[0 .. C) (the first on ties) */
static int argmax(const float *v, int C)
{
    int best = 0;
    for (int i = 1; i < C; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

void ssm_attack_count(ssm_attack_counts *t, const float *clean_logits, const float *adv_logits,
                      const int *labels, int B, int C, int target)
{
    for (int b = 0; b < B; b++) {
        if (labels[b] < 0) continue;
        int pc = argmax(clean_logits + (size_t)b * C, C);
        int pa = argmax(adv_logits + (size_t)b * C, C);
        t->n++;
        t->clean_correct += pc == labels[b];
        t->attacked_correct += pa == labels[b];
        t->flipped += pc == labels[b] && pa != labels[b];
        if (target >= 0 && labels[b] != target) {
            t->target_pool++;
            t->target_hits += pa == target;
        }
    }
}

static double ratio(long a, long b) { return b > 0 ? (double)a / (double)b : NAN; }

void ssm_attack_rates_of(const ssm_attack_counts *t, int targeted, ssm_attack_rates *out)
{
    out->clean_acc = ratio(t->clean_correct, t->n);
    out->attacked_acc = ratio(t->attacked_correct, t->n);
    out->success_rate = targeted ? ratio(t->target_hits, t->target_pool) : ratio(t->flipped, t->clean_correct);
}
