/* run_config.h — the run configuration of a scenario (the presets in
 * scenarios/NAME.conf, `ssmlab train`, sweep and the lab's engine thread): one
 * table of keys (name, type, default, help) drives parsing of config files
 * and key=value overrides, rejection of unknown keys, the echoed resolved
 * config and the man page's key list. */
#ifndef SSM_RUN_CONFIG_H
#define SSM_RUN_CONFIG_H

#include <stdio.h>

#include "engine/model.h"
#include "data/mqar.h"
#include "engine/optim.h"

#define RUN_PATH_MAX 1024

/* What is trained (task) on what (dataset). */
enum { RUN_TASK_LM = 0, RUN_TASK_CLASSIFY, RUN_TASK_MQAR };
enum { RUN_DATA_TEXT = 0, RUN_DATA_FASHION, RUN_DATA_MNIST, RUN_DATA_CIFAR10 };

typedef struct {
    ssm_config model;           /* architecture */
    ssm_adamw_config opt;       /* optimizer and schedule (steps = opt.total_steps) */
    int task;                   /* RUN_TASK_* */
    int dataset;                /* RUN_DATA_* */
    char data[RUN_PATH_MAX];    /* text file or directory, or image directory;
                                 * "" = the dataset's default (filled by check) */
    double val_fraction;        /* text only */
    int patch;                  /* images: p x p patches per token; 0 or 1 = pixels */
    int standardize;            /* images: 1 = per-channel mean/std of the train set */
    int n_classes;              /* images: classes; 0 = from the labels */
    ssm_mqar_config mqar;       /* task mqar: V, T, K, a and filler of the examples */
    int mqar_train_examples;    /* mqar: cycle over this many training examples; 0 = fresh each step */
    int mqar_val_examples;      /* mqar: validation examples (a disjoint stream) */
    int seq_len, batch_size, grad_accum;
    int eval_every, eval_batches, log_every, save_every;
    int stop_at;                /* save and stop after this step (0 = run to steps) */
    long seed;
    int threads;
    char out[RUN_PATH_MAX];     /* checkpoint directory */
    char resume[RUN_PATH_MAX];  /* checkpoint to resume from ("" = none) */
    char format[8];             /* csv | jsonl */
} run_config;

/* Defaults: the small byte-level model on the fortunes corpus. */
void run_config_default(run_config *rc);

/* Read `key = value` lines ('#' starts a comment).  Unknown keys, bad
 * values and unreadable files fail with a message naming file and line. */
ssm_status run_config_read(run_config *rc, const char *path);

/* Apply one `key=value` override (origin names it in messages). */
ssm_status run_config_set(run_config *rc, const char *kv, const char *origin);

/* Apply `key = value` lines from a string, e.g. a checkpoint's recorded
 * run config (origin names it in messages).  Unknown keys are skipped, so
 * checkpoints written by other versions still load. */
ssm_status run_config_parse_text(run_config *rc, const char *text, const char *origin);

/* The run config recorded in checkpoint dir (text: its ssmlab.run_config
 * metadata, or NULL when it has none) over the defaults, with data, when
 * not NULL, replacing the recorded data path; then checked.  SSM_ERR_DATA
 * naming dir when there is no recorded config or its task is not task. */
ssm_status run_config_recorded(run_config *rc, const char *dir, const char *text,
                               const char *data, int task);

/* Check ranges and cross-key consistency (also finalizes a trial model
 * config), and fill an empty data with the dataset's default. */
ssm_status run_config_check(run_config *rc);

/* The model config of a run: rc->model with the input kind and head of the
 * task (continuous input of d_input values and n_classes classes for a
 * classifier, byte tokens otherwise), finalized. */
ssm_status run_config_model(const run_config *rc, int d_input, int n_classes, ssm_config *out);

/* Names of the task and dataset values ("lm", "classify", "mqar"; "text",
 * "fashion-mnist", "mnist", "cifar10"). */
const char *run_task_name(int task);
const char *run_dataset_name(int dataset);

/* Write the resolved config as `key = value` lines, each prefixed by
 * prefix (e.g. "# "). */
void run_config_write(const run_config *rc, FILE *f, const char *prefix);

/* The resolved config as one malloc'd string of `key = value` lines. */
char *run_config_string(const run_config *rc);

/* Print the key table, one `name<TAB>help` line a key (train --list-keys;
 * a test checks that the man page documents each). */
void run_config_write_keys(FILE *f);

#endif
