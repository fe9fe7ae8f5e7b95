/* optim.c — AdamW over the flat parameter block, with the no-decay mask
 * taken from the model's tensor list, cosine schedule with linear warmup,
 * and global gradient-norm clipping. */
#include "engine/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ssm_adamw_config_default(ssm_adamw_config *c)
{
    c->lr = 1e-3f;
    c->min_lr = 1e-4f;
    c->warmup = 100;
    c->total_steps = 1000;
    c->beta1 = 0.9f;
    c->beta2 = 0.95f;
    c->eps = 1e-8f;
    c->weight_decay = 0.1f;
    c->grad_clip = 1.0f;
}

ssm_status ssm_adamw_build(ssm_adamw *opt, const ssm_model *m, const ssm_adamw_config *c)
{
    memset(opt, 0, sizeof *opt);
    opt->cfg = *c;
    opt->num_params = m->num_params;
    opt->m = calloc(m->num_params, sizeof(float));
    opt->v = calloc(m->num_params, sizeof(float));
    opt->decay_mask = malloc(m->num_params * sizeof(float));
    if (!opt->m || !opt->v || !opt->decay_mask) {
        ssm_adamw_free(opt);
        return ssm_fail(SSM_ERR_NOMEM, "cannot allocate optimizer state for %zu parameters",
                        m->num_params);
    }
    int n = ssm_model_tensors(m, opt->decay_mask, NULL, 0);
    ssm_tensor *t = malloc(sizeof(ssm_tensor) * n);
    if (!t) {
        ssm_adamw_free(opt);
        return ssm_fail(SSM_ERR_NOMEM, "cannot allocate the tensor list");
    }
    ssm_model_tensors(m, opt->decay_mask, t, n);
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < t[i].numel; j++) t[i].data[j] = t[i].no_decay ? 0.0f : 1.0f;
    free(t);
    return SSM_OK;
}

void ssm_adamw_free(ssm_adamw *opt)
{
    free(opt->m);
    free(opt->v);
    free(opt->decay_mask);
    memset(opt, 0, sizeof *opt);
}

float ssm_adamw_lr(const ssm_adamw_config *c, long step)
{
    if (c->warmup > 0 && step < c->warmup) return c->lr * (float)(step + 1) / (float)c->warmup;
    long span = c->total_steps - c->warmup;
    if (span <= 0 || step >= c->total_steps) return c->min_lr;
    double frac = (double)(step - c->warmup) / (double)span;
    return c->min_lr + 0.5f * (c->lr - c->min_lr) * (float)(1.0 + cos(M_PI * frac));
}

static float grad_norm(const float *g, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return (float)sqrt(s);
}

float ssm_adamw_update(ssm_adamw *opt, ssm_model *m)
{
    const ssm_adamw_config *c = &opt->cfg;
    float *p = m->params_memory, *g = m->grads_memory;
    size_t n = opt->num_params;
    float norm = grad_norm(g, n);
    float clip = (c->grad_clip > 0.0f && norm > c->grad_clip) ? c->grad_clip / norm : 1.0f;
    float lr = ssm_adamw_lr(c, opt->step);
    opt->step++;
    float bc1 = 1.0f - powf(c->beta1, (float)opt->step);
    float bc2 = 1.0f - powf(c->beta2, (float)opt->step);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * clip;
        float mi = opt->m[i] = c->beta1 * opt->m[i] + (1.0f - c->beta1) * gi;
        float vi = opt->v[i] = c->beta2 * opt->v[i] + (1.0f - c->beta2) * gi * gi;
        float mhat = mi / bc1, vhat = vi / bc2;
        p[i] -= lr * (mhat / (sqrtf(vhat) + c->eps) + c->weight_decay * opt->decay_mask[i] * p[i]);
    }
    return norm;
}
