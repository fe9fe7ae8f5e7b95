/* config.h — the run configuration of `ssmlab train`: one table of keys
 * (name, type, default, help) drives parsing of config files and key=value
 * overrides, rejection of unknown keys, the echoed resolved config and the
 * man page's key list. */
#ifndef SSM_CLI_CONFIG_H
#define SSM_CLI_CONFIG_H

#include <stdio.h>

#include "model.h"
#include "optim.h"

#define RUN_PATH_MAX 1024

typedef struct {
    ssm_config model;           /* architecture */
    ssm_adamw_config opt;       /* optimizer and schedule (steps = opt.total_steps) */
    char data[RUN_PATH_MAX];    /* text file or directory */
    double val_fraction;
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

/* Check ranges and cross-key consistency (also finalizes the model config). */
ssm_status run_config_check(run_config *rc);

/* Write the resolved config as `key = value` lines, each prefixed by
 * prefix (e.g. "# "). */
void run_config_write(const run_config *rc, FILE *f, const char *prefix);

/* The resolved config as one malloc'd string of `key = value` lines. */
char *run_config_string(const run_config *rc);

/* Print the key table, one `name<TAB>help` line a key (train --list-keys;
 * a test checks that the man page documents each). */
void run_config_write_keys(FILE *f);

#endif
