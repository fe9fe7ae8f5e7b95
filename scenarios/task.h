/* task.h — the data of a run's task, shared by train, eval, sweep and the
 * lab's engine thread: the byte-level text corpus (task lm), labelled train
 * and test images turned into sequences (task classify) or generated MQAR
 * examples (task mqar), one batch buffer, deterministic training batches,
 * and validation loss (and accuracy) over the held-out split. */
#ifndef SSM_TASK_H
#define SSM_TASK_H

#include <stdatomic.h>

#include "data/images.h"
#include "data/mqar.h"
#include "data/text.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "scenarios/run_config.h"

typedef struct {
    int task;               /* rc->task: RUN_TASK_* */
    int classify;           /* scored by accuracy, no text corpus: task classify or mqar */
    ssm_text text;          /* lm: the corpus and its splits */
    ssm_images train, test; /* classify: the two splits */
    ssm_image_seq seq;      /* classify: image -> sequence layout (train stats) */
    ssm_mqar_config mqar;   /* mqar: the generator */
    uint64_t mqar_train_seed, mqar_val_seed;   /* mqar: the two streams (differ always) */
    long mqar_train_n;      /* mqar: training examples cycled over; 0 = fresh ones */
    long mqar_val_n;        /* mqar: validation examples */
    ssm_text_block tblk;    /* lm: (B, seq_len) tokens and targets */
    ssm_image_block iblk;   /* classify: (B, L, I) inputs and (B) targets */
    ssm_mqar_block mblk;    /* mqar: (B, mqar_len) tokens and targets, -1 off the queries */
    ssm_batch *batch;       /* the block's batch view */
    int B, L;               /* batch shape of the block */
    int shard_rank, shard_size;   /* data parallel (task_data_shard); size 0: one process */
} task_data;

typedef struct {
    double loss;   /* mean cross-entropy (nats) over the counted targets */
    double acc;    /* classify: fraction of rows whose argmax is the label;
                    * mqar: fraction of query positions whose argmax is the value */
    long n;        /* targets counted (tokens for lm, images for classify,
                    * query positions for mqar) */
} task_metrics;

/* Load rc->data as rc->dataset says (or set up the MQAR generator), and
 * build a batch block of B rows (B = rc->batch_size when B is 0).  Errors
 * name the file. */
ssm_status task_data_load(task_data *d, const run_config *rc, int B);
void task_data_free(task_data *d);

/* Data parallel: this process is rank `rank` of `size` (engine/dist.h).
 * task_train_step then trains on the rank's contiguous rows of each
 * micro-batch (the block still holds the whole batch, so the data order is
 * that of one process), scales each rank's gradient by its share of the
 * micro-batch's targets and sums the gradients and the step's loss and
 * accuracy over the ranks before the update; task_validate runs every
 * size-th validation batch and sums the losses and counts over the ranks.
 * Every rank then sees the numbers one process would (to float reduction
 * order).  Collective: all ranks make the same calls. */
void task_data_shard(task_data *d, int rank, int size);

/* The run's model config with the image geometry and classes of the data
 * (rc->n_classes, or 1 + the largest training label). */
ssm_status task_model_config(const task_data *d, const run_config *rc, ssm_config *out);

/* Fill the block with micro-batch k of training step `step` (depends only
 * on rc->seed, step and k). */
ssm_status task_train_batch(task_data *d, const run_config *rc, long step, int k);

typedef struct {
    double loss;      /* mean loss over the step's micro-batches */
    double acc;       /* classify and mqar: accuracy over the scored targets of
                       * those batches; NAN for a language model */
    float lr;         /* learning rate the step used */
    float grad_norm;  /* global gradient norm before clipping */
    long tokens;      /* tokens (sequence positions) the step read */
} task_step_stats;

/* The training step, the one ssmlab train, sweep and the lab all take:
 * rc->grad_accum micro-batches (task_train_batch for step opt->step),
 * forward and backward each, then one AdamW update.  A loss that is not
 * finite stops it with SSM_ERR_DATA before the update, so the weights keep
 * their last finite values. */
ssm_status task_train_step(task_data *d, const run_config *rc, ssm_model *m, ssm_adamw *opt,
                           task_step_stats *out);

/* Whether m, trained for step steps, may be saved into dir: every weight
 * finite (else SSM_ERR_DATA naming the tensor) and the loss of step + 1's
 * training batches (forward only, the check task_train_step would make
 * next) finite (else SSM_ERR_DATA naming step + 1); the message says dir
 * keeps its last good checkpoint.  A save after the loss has left its
 * finite range would replace that checkpoint with weights that only
 * diverge.  Overwrites the batch and the activations. */
ssm_status task_check_saveable(task_data *d, const run_config *rc, ssm_model *m, long step, const char *dir);

/* Mean loss (and accuracy) over the validation split (lm: non-overlapping
 * windows; classify: the test images in order; mqar: the validation
 * stream's examples in order), at most max_batches batches (0 = all).
 * SSM_ERR_INTERRUPTED when *cancel becomes nonzero (checked before every
 * batch; cancel may be NULL). */
ssm_status task_validate(task_data *d, ssm_model *m, int max_batches, atomic_int *cancel,
                         task_metrics *out);

/* Called after each validation batch: batches done, batches in all
 * (task_val_batches), and the mean loss so far. */
typedef void (*task_progress_fn)(void *ctx, long done, long total, double loss);

/* task_validate, calling progress(ctx, ...) after each batch (progress
 * may be NULL). */
ssm_status task_validate_progress(task_data *d, ssm_model *m, int max_batches, atomic_int *cancel,
                                  task_progress_fn progress, void *ctx, task_metrics *out);

/* The batches task_validate runs: those of the validation split, at most
 * max_batches (0 = all). */
long task_val_batches(const task_data *d, int max_batches);

/* Fill the block with the first validation batch; returns the rows filled. */
int task_first_val_batch(task_data *d);

/* Token ids given on the command line (option, e.g. "--tokens") for the
 * model in dir: SSM_ERR_DATA naming the option, the first id outside
 * [0, padded vocabulary) with its sequence and position, and dir.
 * tokens (B, L). */
ssm_status task_check_tokens(const int *tokens, int B, int L, const ssm_config *c, const char *option,
                             const char *dir);

/* Rows b < B with targets[b] >= 0 whose logits (B, C) peak at the target. */
int task_count_correct(const float *logits, const int *targets, int B, int C);

/* After a forward pass of m on the block: correct predictions, and in
 * *counted the targets scored (images of a classifier, query positions of
 * MQAR; both 0 for a language model). */
long task_batch_correct(const task_data *d, const ssm_model *m, long *counted);

#endif
