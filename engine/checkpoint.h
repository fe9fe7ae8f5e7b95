/* checkpoint.h — checkpoints in the Hugging Face Mamba layout (ssmlab-math(7) MODEL): a
 * directory with config.json and model.safetensors (ssmlab's own saves),
 * also loading the transformers MambaForCausalLM names and keys and the
 * pytorch_model.bin of state-spaces/mamba-*; Mamba-2 models (ssmlab-math(7)
 * MAMBA-2) in the state-spaces/mamba2 layout (ssm_cfg.layer "Mamba2", which
 * save writes) and the transformers Mamba2ForCausalLM one; plus
 * optimizer.safetensors with the AdamW moments for resuming.
 *
 * config.json holds the mamba_ssm keys (d_model, n_layer, vocab_size,
 * ssm_cfg{d_state, d_conv, expand, dt_rank}, pad_vocab_size_multiple,
 * tie_embeddings) and an "ssmlab" object with ssmlab's extras (input_kind,
 * d_input, n_classes, norm_eps).  model.safetensors' __metadata__ holds
 * "format": "pt", "ssmlab.step", "ssmlab.seed", "ssmlab.run_config" and
 * "ssmlab.tensors" (comma-separated names of tensors that are not part of
 * the mamba_ssm layout, e.g. classifier.weight).
 *
 * Status: SSM_ERR_NOINPUT for a missing directory or file, SSM_ERR_DATA for
 * malformed files and weights (missing, unexpected or misshaped tensors,
 * NaN/Inf), SSM_ERR_CONFIG for a config.json with missing, mistyped,
 * out-of-range, inconsistent or unsupported values.  Every message names the
 * file and the problem. */
#ifndef SSM_CHECKPOINT_H
#define SSM_CHECKPOINT_H

#include <stdint.h>

#include "engine/model.h"
#include "engine/optim.h"
#include "engine/status.h"

typedef struct {
    long step;          /* training step of the saved weights */
    uint64_t seed;      /* seed of the run */
    char *run_config;   /* ssmlab run configuration text, or NULL; malloc'd
                           by the loaders, free with ssm_checkpoint_meta_free */
} ssm_checkpoint_meta;

void ssm_checkpoint_meta_free(ssm_checkpoint_meta *meta);

/* Read config.json in either key set (mamba_ssm or transformers) into *c,
 * finalized (ssm_config_finalize).  *c is untouched on failure. */
ssm_status ssm_config_read_json(const char *path, ssm_config *c);

/* Write c as config.json (mamba_ssm keys + "ssmlab" object), atomically. */
ssm_status ssm_config_write_json(const char *path, const ssm_config *c);

/* Save m (and opt's moments when opt is not NULL) into dir, creating it if
 * needed; float32 models only (SSM_ERR_USAGE for bf16 weights).  The files are committed as one unit (ssm_atomic_group_commit):
 * each is written to a temporary file, and only when all are written are
 * they renamed into place, so a failure leaves the previous checkpoint
 * whole; other files in dir are left alone.  With opt NULL a stale
 * optimizer.safetensors in dir is removed.  meta may be NULL (the step of
 * opt or 0, seed 0, no run config). */
ssm_status ssm_checkpoint_save(const char *dir, const ssm_model *m, const ssm_adamw *opt,
                               const ssm_checkpoint_meta *meta);

/* Read dir/config.json, build *m (ssm_model_build) and load its weights from
 * dir/model.safetensors, or dir/pytorch_model.bin when there is none.
 * meta may be NULL.  On failure *m is freed (and zeroed). */
ssm_status ssm_checkpoint_load(const char *dir, ssm_model *m, ssm_checkpoint_meta *meta);

/* The same with a weight format (SSM_WEIGHTS_*, engine/model.h): with
 * SSM_WEIGHTS_BF16 the large matrices are converted straight from the
 * file's F32, BF16, F16 (or F64) into the model's bf16 block, 1 Mi
 * elements at a time, never as a whole float32 tensor; the same checks and
 * messages as float32 (a value beyond bf16's range is Inf). */
ssm_status ssm_checkpoint_load_as(const char *dir, ssm_model *m, ssm_checkpoint_meta *meta, int weights);

/* The weight format inference loads dir in by default (generate, the lab's
 * inspect mode): SSM_WEIGHTS_BF16, for Mamba-1 and Mamba-2 models alike
 * (one place to change should a checkpoint ever need float32 to run). */
int ssm_checkpoint_default_weights(const char *dir);

/* Load every parameter of an already built m (float32 or bf16 weights) from
 * one weight file (a safetensors file, or a torch.save archive when path
 * ends in .bin, .pt or .pth).  Unknown, missing or misshaped tensors and NaN/Inf are errors; a
 * tied model ignores lm_head.weight.  meta may be NULL. */
ssm_status ssm_checkpoint_load_weights(const char *path, ssm_model *m, ssm_checkpoint_meta *meta);

/* dir/optimizer.safetensors: tensors "m.<param name>" and "v.<param name>"
 * and "step" in __metadata__.  load needs opt built for m (ssm_adamw_build);
 * it refuses (SSM_ERR_DATA, naming both steps) a state whose step is not
 * the ssmlab.step of dir/model.safetensors.  On failure opt's moments are
 * zeroed and its step is 0.  Loaders first finish a commit interrupted in
 * dir (ssm_atomic_dir_recover). */
ssm_status ssm_checkpoint_save_optimizer(const char *dir, const ssm_model *m, const ssm_adamw *opt);
ssm_status ssm_checkpoint_load_optimizer(const char *dir, const ssm_model *m, ssm_adamw *opt);
/* What load checks, from dir/optimizer.safetensors' header alone (its
 * moments are not read): SSM_ERR_NOINPUT when there is none, SSM_ERR_DATA
 * when its step is not model.safetensors' or it has none.  For a caller
 * that loads the moments later (the lab, at a run's first step). */
ssm_status ssm_checkpoint_check_optimizer(const char *dir);

/* mkdir -p dir, for checkpoint and run directories: SSM_ERR_CANTCREAT
 * naming the directory that cannot be made, or dir when it exists and is
 * not a directory. */
ssm_status ssm_dir_create(const char *dir);

#endif
