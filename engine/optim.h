/* optim.h — AdamW with mamba_ssm's no-decay rules, the cosine learning-rate
 * schedule with linear warmup, and gradient-norm clipping. */
#ifndef SSM_OPTIM_H
#define SSM_OPTIM_H

#include "engine/model.h"

typedef struct {
    float lr, min_lr;          /* peak and final learning rate */
    int warmup, total_steps;   /* linear warmup, then cosine to min_lr */
    float beta1, beta2, eps;
    float weight_decay;        /* skipped for tensors with no_decay */
    float grad_clip;           /* max global L2 norm; 0 disables */
} ssm_adamw_config;

typedef struct {
    ssm_adamw_config cfg;
    float *m;           /* (num_params) first moment, laid out like the params */
    float *v;           /* (num_params) second moment */
    float *decay_mask;  /* (num_params) 1 where weight decay applies */
    size_t num_params;
    long step;          /* optimizer steps taken */
} ssm_adamw;

void ssm_adamw_config_default(ssm_adamw_config *c);
ssm_status ssm_adamw_build(ssm_adamw *opt, const ssm_model *m, const ssm_adamw_config *c);
void ssm_adamw_free(ssm_adamw *opt);

/* Learning rate at a step (0-based). */
float ssm_adamw_lr(const ssm_adamw_config *c, long step);

/* Clip m->grads to cfg.grad_clip, apply one AdamW update, step++.
 * Returns the gradient norm before clipping. */
float ssm_adamw_update(ssm_adamw *opt, ssm_model *m);

#endif
