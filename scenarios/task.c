/* task.c — loading a run's text or image data (or setting up the MQAR
 * generator), training batches, the one training step, and validation
 * loss/accuracy for train, eval, sweep and the lab (see task.h). */
#include "scenarios/task.h"

#include "engine/dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ssm_status load_images(task_data *d, const run_config *rc)
{
    ssm_status st;
    if (rc->dataset == RUN_DATA_CIFAR10) {
        if ((st = ssm_images_load_cifar_dir(&d->train, rc->data, 1))) return st;
        if ((st = ssm_images_load_cifar_dir(&d->test, rc->data, 0))) return st;
    } else {
        if ((st = ssm_images_load_mnist(&d->train, rc->data, "train"))) return st;
        if ((st = ssm_images_load_mnist(&d->test, rc->data, "t10k"))) return st;
    }
    if ((st = ssm_images_build_seq(&d->seq, &d->train, rc->patch > 1 ? rc->patch : 1, rc->standardize)))
        return st;
    return ssm_images_check_seq(&d->seq, &d->test);
}

/* MQAR: the generator, its two streams (training 2 seed, validation
 * 2 seed + 1, so they never share a seed) and a (B, T) block. */
static ssm_status load_mqar(task_data *d, const run_config *rc)
{
    d->mqar = rc->mqar;
    d->mqar_train_seed = 2 * (uint64_t)rc->seed;
    d->mqar_val_seed = 2 * (uint64_t)rc->seed + 1;
    d->mqar_train_n = rc->mqar_train_examples;
    d->mqar_val_n = rc->mqar_val_examples;
    ssm_status st = ssm_mqar_check(&d->mqar);
    if (!st) st = ssm_mqar_build_block(&d->mblk, d->B, d->mqar.len);
    if (st) return st;
    d->batch = &d->mblk.batch;
    d->L = d->mqar.len;
    return SSM_OK;
}

ssm_status task_data_load(task_data *d, const run_config *rc, int B)
{
    memset(d, 0, sizeof *d);
    d->task = rc->task;
    d->classify = rc->task != RUN_TASK_LM;
    d->B = B > 0 ? B : rc->batch_size;
    ssm_status st;
    if (d->task == RUN_TASK_MQAR) return load_mqar(d, rc);
    if (!d->classify) {
        if ((st = ssm_text_load(&d->text, rc->data, rc->val_fraction))) return st;
        if ((st = ssm_text_build_block(&d->tblk, d->B, rc->seq_len))) return st;
        d->batch = &d->tblk.batch;
        d->L = rc->seq_len;
        return SSM_OK;
    }
    if ((st = load_images(d, rc))) return st;
    if ((st = ssm_images_build_block(&d->iblk, &d->seq, d->B))) return st;
    d->batch = &d->iblk.batch;
    d->L = d->seq.L;
    return SSM_OK;
}

void task_data_free(task_data *d)
{
    ssm_text_free_block(&d->tblk);
    ssm_images_free_block(&d->iblk);
    ssm_mqar_free_block(&d->mblk);
    ssm_text_free(&d->text);
    ssm_images_free(&d->train);
    ssm_images_free(&d->test);
    memset(d, 0, sizeof *d);
}

ssm_status task_model_config(const task_data *d, const run_config *rc, ssm_config *out)
{
    if (d->task != RUN_TASK_CLASSIFY) return run_config_model(rc, 0, 0, out);
    int C = rc->n_classes ? rc->n_classes : d->train.n_classes;
    if (C < d->train.n_classes || C < d->test.n_classes)
        return ssm_fail(SSM_ERR_CONFIG, "%s: labels go up to %d but n_classes = %d", rc->data,
                        (d->train.n_classes > d->test.n_classes ? d->train.n_classes : d->test.n_classes) - 1, C);
    return run_config_model(rc, d->seq.d_input, C, out);
}

/* MQAR micro-batch k of step `step`: examples (step A + k) B + b of the
 * training stream (A = grad_accum), wrapping at mqar_train_n when set. */
static ssm_status mqar_train_batch(task_data *d, int grad_accum, long step, int k)
{
    uint64_t first = ((uint64_t)step * (uint64_t)grad_accum + (uint64_t)k) * (uint64_t)d->B;
    uint64_t N = (uint64_t)d->mqar_train_n;
    size_t T = (size_t)d->L;
    for (int done = 0; done < d->B;) {
        uint64_t idx = first + (uint64_t)done, n = (uint64_t)(d->B - done);
        if (N) {
            idx %= N;
            if (n > N - idx) n = N - idx;
        }
        ssm_status st = ssm_mqar_batch(&d->mqar, d->mqar_train_seed, idx, (int)n,
                                       d->mblk.tokens + done * T, d->mblk.targets + done * T);
        if (st) return st;
        done += (int)n;
    }
    return SSM_OK;
}

ssm_status task_train_batch(task_data *d, const run_config *rc, long step, int k)
{
    if (d->task == RUN_TASK_MQAR) return mqar_train_batch(d, rc->grad_accum, step, k);
    if (!d->classify)
        return ssm_text_batch(&d->text, (uint64_t)rc->seed, (uint64_t)step, k, d->B, d->L,
                              d->tblk.tokens, d->tblk.targets);
    return ssm_images_sample(&d->train, &d->seq, (uint64_t)rc->seed, (uint64_t)step, k, d->B,
                             d->iblk.inputs, d->iblk.targets);
}

ssm_status task_check_tokens(const int *tokens, int B, int L, const ssm_config *c, const char *option,
                             const char *dir)
{
    for (long i = 0; i < (long)B * L; i++)
        if (tokens[i] < 0 || tokens[i] >= c->padded_vocab)
            return ssm_fail(SSM_ERR_DATA, "%s: token id %d (sequence %ld, position %ld) is outside the "
                            "vocabulary [0, %d) of the model in %s", option, tokens[i], i / L, i % L,
                            c->padded_vocab, dir);
    return SSM_OK;
}

int task_count_correct(const float *logits, const int *targets, int B, int C)
{
    int correct = 0;
    for (int b = 0; b < B; b++) {
        if (targets[b] < 0) continue;
        const float *row = logits + (size_t)b * C;   /* (C) */
        int best = 0;
        for (int c = 1; c < C; c++)
            if (row[c] > row[best]) best = c;
        correct += best == targets[b];
    }
    return correct;
}

/* task_batch_correct after a forward pass on rows [lo, hi) of the block. */
static long rows_correct(const task_data *d, const ssm_model *m, int lo, int hi, long *counted)
{
    *counted = 0;
    size_t L = (size_t)d->L;
    if (d->task == RUN_TASK_MQAR)
        return ssm_mqar_count_correct(m->acts.logits, d->mblk.targets + lo * L, (long)(hi - lo) * d->L,
                                      m->cfg.padded_vocab, counted);
    if (d->task != RUN_TASK_CLASSIFY) return 0;
    for (int b = lo; b < hi; b++) *counted += d->iblk.targets[b] >= 0;
    return task_count_correct(m->acts.logits, d->iblk.targets + lo, hi - lo, m->cfg.n_classes);
}

long task_batch_correct(const task_data *d, const ssm_model *m, long *counted)
{
    return rows_correct(d, m, 0, d->B, counted);
}

void task_data_shard(task_data *d, int rank, int size)
{
    d->shard_rank = size > 1 ? rank : 0;
    d->shard_size = size > 1 ? size : 0;
}

/* This rank's rows [lo, hi) of a training batch: B split into contiguous
 * slices, the first B % size ranks one row more (empty when B < size). */
static void shard_rows(const task_data *d, int *lo, int *hi)
{
    int P = d->shard_size > 1 ? d->shard_size : 1, r = d->shard_rank;
    int q = d->B / P, extra = d->B % P;
    *lo = r * q + (r < extra ? r : extra);
    *hi = *lo + q + (r < extra);
}

/* The view of rows [lo, hi) of the block's batch. */
static ssm_batch batch_rows(const task_data *d, int lo, int hi)
{
    ssm_batch b = *d->batch;
    size_t L = (size_t)d->L;
    b.B = hi - lo;
    if (b.tokens) b.tokens += lo * L;
    if (b.inputs) b.inputs += lo * L * (size_t)d->iblk.d_input;
    if (b.targets) b.targets += d->task == RUN_TASK_CLASSIFY ? (size_t)lo : lo * L;
    return b;
}

/* Targets the whole block's batch scores (the loss's denominator). */
static long batch_targets(const task_data *d)
{
    const ssm_batch *b = d->batch;
    long M = d->task == RUN_TASK_CLASSIFY ? b->B : (long)b->B * b->L, n = 0;
    for (long i = 0; i < M; i++) n += b->targets[i] >= 0;
    return n;
}

/* Next MQAR validation batch: examples *next .. of the validation stream;
 * rows past the stream's end get no targets.  *rows gets the rows filled,
 * 0 at the end. */
static ssm_status mqar_val_next(task_data *d, size_t *next, int *rows)
{
    long left = d->mqar_val_n - (long)*next;
    *rows = 0;
    if (left <= 0) return SSM_OK;
    int n = left < d->B ? (int)left : d->B;
    ssm_status st = ssm_mqar_batch(&d->mqar, d->mqar_val_seed, *next, d->B, d->mblk.tokens, d->mblk.targets);
    if (st) return st;
    for (size_t i = (size_t)n * d->L; i < (size_t)d->B * d->L; i++) d->mblk.targets[i] = -1;
    *next += (size_t)n;
    *rows = n;
    return SSM_OK;
}

/* Next validation batch into the block: *rows gets the rows filled, 0 at
 * the end.  next counts images (classify) or examples (mqar). */
static ssm_status val_next(task_data *d, ssm_text_val_iter *it, size_t *next, int *rows)
{
    if (d->task == RUN_TASK_MQAR) return mqar_val_next(d, next, rows);
    if (!d->classify) {
        *rows = ssm_text_val_next(it, d->B, d->tblk.tokens, d->tblk.targets);
        return SSM_OK;
    }
    *rows = ssm_images_range(&d->test, &d->seq, *next, d->B, d->iblk.inputs, d->iblk.targets);
    *next += (size_t)*rows;
    return SSM_OK;
}

int task_first_val_batch(task_data *d)
{
    ssm_text_val_iter it;
    size_t next = 0;
    if (d->task == RUN_TASK_LM) ssm_text_val_begin(&it, &d->text, d->L);
    int rows;
    return val_next(d, &it, &next, &rows) ? 0 : rows;
}

/* Forward and backward of micro-batch k on this rank's rows [lo, hi):
 * adds its part of the step's mean loss to sums[0] and its correct and
 * scored targets to sums[1], sums[2].  A rank holding the whole batch
 * takes the loss as it is; a slice is weighted by its share of the
 * batch's targets, so the parts add up to the batch's mean over the ranks. */
static ssm_status micro_step(task_data *d, ssm_model *m, int accum, int lo, int hi, double *sums)
{
    if (hi == lo) return SSM_OK;
    int whole = hi - lo == d->B;
    long N = whole ? 0 : batch_targets(d), counted;
    ssm_batch b = batch_rows(d, lo, hi);
    ssm_status st = ssm_model_forward(m, &b);
    if (st) return st;
    sums[1] += (double)rows_correct(d, m, lo, hi, &counted);
    sums[2] += (double)counted;
    float scale = 1.0f / accum;
    double part = m->loss / accum;
    if (!whole) {
        double share = N ? (double)m->n_targets / ((double)N * accum) : 0.0;
        scale = (float)share;
        part = (double)m->loss * share;
    }
    if ((st = ssm_model_backward(m, scale))) return st;
    sums[0] += part;
    return SSM_OK;
}

ssm_status task_train_step(task_data *d, const run_config *rc, ssm_model *m, ssm_adamw *opt,
                           task_step_stats *out)
{
    ssm_status st;
    int accum = rc->grad_accum, lo, hi;
    double sums[3] = {0.0, 0.0, 0.0};   /* mean loss, correct, scored */
    *out = (task_step_stats){.lr = ssm_adamw_lr(&opt->cfg, opt->step)};
    shard_rows(d, &lo, &hi);
    ssm_model_zero_grad(m);
    for (int k = 0; k < accum; k++) {
        if ((st = task_train_batch(d, rc, opt->step, k))) return st;
        if ((st = micro_step(d, m, accum, lo, hi, sums))) return st;
    }
    if (d->shard_size > 1) {   /* one fused gradient buffer, then the three numbers */
        if ((st = ssm_dist_allreduce_sum_f32(m->grads_memory, m->num_params))) return st;
        if ((st = ssm_dist_allreduce_sum_f64(sums, 3))) return st;
    }
    out->loss = sums[0];
    if (!isfinite(out->loss))
        return ssm_fail(SSM_ERR_DATA, "loss became %g at step %ld", out->loss, opt->step + 1);
    out->acc = d->classify && sums[2] > 0 ? sums[1] / sums[2] : NAN;
    out->grad_norm = ssm_adamw_update(opt, m);
    out->tokens = (long)accum * d->B * d->L;
    return SSM_OK;
}

/* The first parameter tensor of m holding a value that is not finite, as
 * SSM_ERR_DATA naming it and the step. */
static ssm_status params_finite(const ssm_model *m, long step)
{
    int n = ssm_model_tensors(m, m->params_memory, NULL, 0);
    ssm_tensor *t = malloc(sizeof *t * (size_t)n);
    if (!t) return ssm_fail(SSM_ERR_NOMEM, "out of memory checking the weights");
    ssm_model_tensors(m, m->params_memory, t, n);
    ssm_status st = SSM_OK;
    for (int i = 0; i < n && !st; i++)
        for (size_t j = 0; j < t[i].numel && !st; j++)
            if (!isfinite(t[i].data[j]))
                st = ssm_fail(SSM_ERR_DATA, "weights became %s at step %ld (tensor '%s', element %zu)",
                              isnan(t[i].data[j]) ? "NaN" : "Inf", step, t[i].name, j);
    free(t);
    return st;
}

ssm_status task_check_saveable(task_data *d, const run_config *rc, ssm_model *m, long step, const char *dir)
{
    ssm_status st = params_finite(m, step);
    double loss = 0.0;
    for (int k = 0; !st && k < rc->grad_accum; k++) {
        if ((st = task_train_batch(d, rc, step, k))) break;
        if ((st = ssm_model_forward(m, d->batch))) break;
        loss += m->loss / rc->grad_accum;
    }
    if (!st && !isfinite(loss))
        st = ssm_fail(SSM_ERR_DATA, "loss became %g at step %ld (the weights of step %ld on step %ld's "
                      "batches)", loss, step + 1, step, step + 1);
    if (st != SSM_ERR_DATA) return st;
    char why[512];
    snprintf(why, sizeof why, "%s", ssm_last_error());
    return ssm_fail(st, "%s: step %ld not saved, so %s keeps its last good checkpoint", why, step, dir);
}

long task_val_batches(const task_data *d, int max_batches)
{
    long n = d->task == RUN_TASK_MQAR ? d->mqar_val_n
             : d->classify            ? (long)d->test.n
                                      : (long)ssm_text_val_count(&d->text, d->L);
    long batches = (n + d->B - 1) / d->B;
    return max_batches && max_batches < batches ? max_batches : batches;
}

ssm_status task_validate(task_data *d, ssm_model *m, int max_batches, atomic_int *cancel,
                         task_metrics *out)
{
    return task_validate_progress(d, m, max_batches, cancel, NULL, NULL, out);
}

ssm_status task_validate_progress(task_data *d, ssm_model *m, int max_batches, atomic_int *cancel,
                                  task_progress_fn progress, void *ctx, task_metrics *out)
{
    long total = progress ? task_val_batches(d, max_batches) : 0;
    ssm_text_val_iter it;
    size_t next = 0;
    if (d->task == RUN_TASK_LM) ssm_text_val_begin(&it, &d->text, d->L);
    double sum = 0.0;
    long count = 0, correct = 0, counted;
    for (int b = 0; !max_batches || b < max_batches; b++) {
        if (cancel && atomic_load(cancel)) return ssm_fail(SSM_ERR_INTERRUPTED, "validation cancelled");
        int rows;
        ssm_status st = val_next(d, &it, &next, &rows);
        if (st) return st;
        if (!rows) break;
        if (d->shard_size > 1 && b % d->shard_size != d->shard_rank) continue;   /* another rank's */
        if ((st = ssm_model_forward(m, d->batch))) return st;
        sum += (double)m->loss * m->n_targets;
        count += m->n_targets;
        correct += task_batch_correct(d, m, &counted);
        if (progress) progress(ctx, b + 1, total, count ? sum / count : NAN);
    }
    if (d->shard_size > 1) {
        double t[3] = {sum, (double)count, (double)correct};
        ssm_status st = ssm_dist_allreduce_sum_f64(t, 3);
        if (st) return st;
        sum = t[0];
        count = (long)t[1];
        correct = (long)t[2];
    }
    if (!count && !d->classify)
        return ssm_fail(SSM_ERR_DATA, "%s: validation split is shorter than seq_len + 1", d->text.path);
    if (!count && d->task == RUN_TASK_MQAR) return ssm_fail(SSM_ERR_DATA, "mqar: no validation queries");
    if (!count) return ssm_fail(SSM_ERR_DATA, "%s: the test split has no images", d->test.path);
    *out = (task_metrics){sum / count, d->classify ? (double)correct / count : 0.0, count};
    return SSM_OK;
}
