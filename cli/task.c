/* task.c — loading a run's text or image data, training batches and
 * validation loss/accuracy for train, eval and sweep (see task.h). */
#include "task.h"

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

ssm_status task_data_load(task_data *d, const run_config *rc, int B)
{
    memset(d, 0, sizeof *d);
    d->classify = rc->task == RUN_TASK_CLASSIFY;
    d->B = B > 0 ? B : rc->batch_size;
    ssm_status st;
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
    ssm_text_free(&d->text);
    ssm_images_free(&d->train);
    ssm_images_free(&d->test);
    memset(d, 0, sizeof *d);
}

ssm_status task_model_config(const task_data *d, const run_config *rc, ssm_config *out)
{
    if (!d->classify) return run_config_model(rc, 0, 0, out);
    int C = rc->n_classes ? rc->n_classes : d->train.n_classes;
    if (C < d->train.n_classes || C < d->test.n_classes)
        return ssm_fail(SSM_ERR_CONFIG, "%s: labels go up to %d but n_classes = %d", rc->data,
                        (d->train.n_classes > d->test.n_classes ? d->train.n_classes : d->test.n_classes) - 1, C);
    return run_config_model(rc, d->seq.d_input, C, out);
}

ssm_status task_train_batch(task_data *d, const run_config *rc, long step, int k)
{
    if (!d->classify)
        return ssm_text_batch(&d->text, (uint64_t)rc->seed, (uint64_t)step, k, d->B, d->L,
                              d->tblk.tokens, d->tblk.targets);
    return ssm_images_sample(&d->train, &d->seq, (uint64_t)rc->seed, (uint64_t)step, k, d->B,
                             d->iblk.inputs, d->iblk.targets);
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

/* Next validation batch into the block: rows filled, 0 at the end. */
static int val_next(task_data *d, ssm_text_val_iter *it, size_t *next_image)
{
    if (!d->classify) return ssm_text_val_next(it, d->B, d->tblk.tokens, d->tblk.targets);
    int n = ssm_images_range(&d->test, &d->seq, *next_image, d->B, d->iblk.inputs, d->iblk.targets);
    *next_image += (size_t)n;
    return n;
}

int task_first_val_batch(task_data *d)
{
    ssm_text_val_iter it;
    size_t next = 0;
    if (!d->classify) ssm_text_val_begin(&it, &d->text, d->L);
    return val_next(d, &it, &next);
}

ssm_status task_validate(task_data *d, ssm_model *m, int max_batches, task_metrics *out)
{
    ssm_text_val_iter it;
    size_t next = 0;
    if (!d->classify) ssm_text_val_begin(&it, &d->text, d->L);
    double total = 0.0;
    long count = 0, correct = 0;
    for (int b = 0; !max_batches || b < max_batches; b++) {
        if (!val_next(d, &it, &next)) break;
        ssm_status st = ssm_model_forward(m, d->batch);
        if (st) return st;
        total += (double)m->loss * m->n_targets;
        count += m->n_targets;
        if (d->classify)
            correct += task_count_correct(m->acts.logits, d->iblk.targets, d->B, m->cfg.n_classes);
    }
    if (!count && !d->classify)
        return ssm_fail(SSM_ERR_DATA, "%s: validation split is shorter than seq_len + 1", d->text.path);
    if (!count) return ssm_fail(SSM_ERR_DATA, "%s: the test split has no images", d->test.path);
    *out = (task_metrics){total / count, d->classify ? (double)correct / count : 0.0, count};
    return SSM_OK;
}
