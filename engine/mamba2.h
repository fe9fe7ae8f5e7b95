/* mamba2.h — the Mamba-2 layer of ssmlab-math(7) MAMBA-2 (mamba_ssm's Mamba2
 * block without the MLP split): x_{l+1} = x_l + Mixer(RMSNorm(x_l)) with
 *   [z; xBC; dt] = W_in x,  xBC = SiLU(conv(xBC)),  [x; B; C] = xBC,
 *   dt = softplus(dt + dt_bias),  y = SSD(x, dt, A, B, C) + D x  (engine/ssd.h),
 *   out = W_out RMSNorm_G(y * SiLU(z))   (norm over groups of E / G channels)
 * as one arch of ssm_model (engine/model.h): model.c's passes dispatch each
 * layer here, and the activations and scratch are blocks of model.c's
 * tables (acts.m2, the scratch's m2) that this file carves.
 *
 * Letters: B batch, L length, D d_model, E d_inner = H P, H heads, P head_dim,
 * G n_groups, N d_state, K d_conv, Q chunk_size; W = 2E + 2GN + H the
 * in_proj rows, Cw = E + 2GN the conv channels. */
#ifndef SSM_MAMBA2_H
#define SSM_MAMBA2_H

#include <stddef.h>

#include "engine/model.h"
#include "engine/status.h"

/* For arch = mamba2: check head_dim, n_groups, chunk_size and that the
 * model is a language model on tokens, and derive n_heads and d_inner.
 * Polarization (ssmlab-math(7) MAMBA-2, Polarized heads) adds n_one
 * heads with A = 0 and n_zero heads with A = -100 to the expand * d_model
 * / head_dim learned ones, in head order [one-polarized, learned,
 * zero-polarized], each with its own x, z and dt rows of in_proj, conv
 * channels, dt_bias, D, gated-norm weights and out_proj columns: n_heads
 * counts them all and d_inner = n_heads * head_dim.  Called by
 * ssm_config_finalize; SSM_OK for Mamba-1. */
ssm_status ssm_mamba2_config_check(ssm_config *c);

/* Floats of one layer's activations for a (B, L) batch (model.c keeps
 * n_layer of them when training, one in inference), and of the scratch on
 * threads threads (backward: with the backward's buffers). */
size_t ssm_mamba2_acts_size(const ssm_config *c, int B, int L);
size_t ssm_mamba2_scratch_size(const ssm_config *c, int B, int L, int threads, int backward);

/* Layer l over the model's (act_B, act_L) batch: x_{l+1} from x_l in
 * m->acts.resid, keeping what the backward needs.  scratch is model.c's
 * scratch block m2. */
ssm_status ssm_mamba2_layer_forward(ssm_model *m, int layer, float *scratch);

/* The mixer of layer alone on the model's (act_B, act_L) batch: in (B, L,
 * D) taken as its RMSNorm's output, out (B, L, D) = Mixer(in) (the flow of
 * a mixer, ssmlab-math(7) DYNAMICS); the attached probe's ablations and
 * pins hold, its states and patches do not.  The activations stop
 * belonging to the last forward. */
ssm_status ssm_mamba2_mixer_forward(ssm_model *m, int layer, const float *in, float *out, float *scratch);

/* Its backward: dresid (B, L, D) holds dL/dx_{l+1} on entry and dL/dx_l on
 * exit; dxn (B, L, D) is scratch; parameter gradients accumulate into
 * m->grads, or, after ssm_model_keep_acts (no gradients, bf16 weights
 * too), only the activations' gradients are computed.  A bf16 model's
 * in_proj and out_proj are widened into m->widen for each layer's GEMMs,
 * forward and backward. */
ssm_status ssm_mamba2_layer_backward(ssm_model *m, int layer, float *dresid, float *dxn,
                                     float *scratch);

/* What the per-head measurements of ssmlab-math(7) MAMBA-2 read from the
 * last forward (ssm_model_forward): layer's xBC (act_B, act_L, Cw) after
 * the conv and SiLU, rows [x (E); B (G, N); C (G, N)], its dt (act_B,
 * act_L, H), and A (H) of ssm_mamba2_layer_A with the attached probe's
 * pins.  Every layer is kept only when the model keeps its activations
 * (ssm_model_keep_for_backward before the forward: gradients, or a bf16
 * model's input-only backward), else only the last one: SSM_ERR_SOFTWARE
 * for another, or before a forward. */
ssm_status ssm_mamba2_scan_inputs(const ssm_model *m, int layer, const float **xbc, const float **dt,
                                  float *A);

/* A (H) of one layer from its A_log (H): A_h = -exp(A_log_h) for the
 * learned heads, SSM_A_ONE_POLARIZED and SSM_A_ZERO_POLARIZED
 * (engine/model.h) for the pinned ones, whose A_log entries are unused and
 * get no gradient.  The one place a Mamba-2 A is built: the passes,
 * generation and the measurements call it. */
void ssm_mamba2_layer_A(const ssm_config *c, const float *A_log, float *A);

/* The gated RMSNorm of one position: yz (E) = y SiLU(z), yn (E) = yz
 * over the rms of each group of E/G channels times w (E); rstd (G), when
 * not NULL, gets each group's 1/rms; yn may be y.  The forward's and generation's one implementation. */
void ssm_mamba2_gated_norm(float *yn, float *yz, float *rstd, const float *y, const float *z,
                           const float *w, int E, int G, float eps);

#endif
