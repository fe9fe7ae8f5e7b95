/* train.c — `ssmlab train CONFIG [key=value ...]`: byte-level language-model,
 * image-classifier or MQAR training with AdamW, periodic validation with the
 * model's dynamics, metric rows on stdout and in OUT/train.csv (the run's
 * history, scenarios/history.h), checkpoints, resume, and a resumable
 * checkpoint on Ctrl-C or SIGTERM.  Under mpirun or srun it trains data
 * parallel (scenarios/task.h task_data_shard): every rank takes a slice of
 * each batch, rank 0 alone writes the rows, train.csv and checkpoints, and a
 * stop on any rank is agreed by all at the next step. */
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/checkpoint.h"
#include "engine/dist.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "scenarios/run_config.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/dynamics.h"
#include "scenarios/history.h"
#include "scenarios/task.h"
#include "scenarios/task_dynamics.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}


typedef struct {
    run_config rc;
    task_data data;
    ssm_model model;
    ssm_adamw opt;
    cli_table table;
    history_writer hist;   /* OUT/train.csv */
    cli_progress prog;     /* the progress line (a terminal's stderr only) */
    double t0;
    long tokens_seen;
} train_state;

/* The metrics columns: a language model reports bits per byte, a classifier
 * (or MQAR, over query positions) its accuracy, in the fourth column. */
static const char *const lm_columns[] = {"step", "split", "loss", "bpb", "lr", "grad_norm",
                                         "tokens_per_s", "elapsed_s"};
static const char *const cls_columns[] = {"step", "split", "loss", "acc", "lr", "grad_norm",
                                          "tokens_per_s", "elapsed_s"};

/* One metrics row: to stdout in its columns (acc or bpb fourth, the
 * training columns empty on validation rows) and to train.csv. */
static ssm_status emit_row(train_state *s, const history_row *r)
{
    if (ssm_dist_rank()) return SSM_OK;
    char v[8][32];
    cli_progress_clear(&s->prog);
    snprintf(v[0], 32, "%ld", r->step);
    snprintf(v[2], 32, "%.9g", r->loss);
    snprintf(v[3], 32, "%.9g", s->data.classify ? r->acc : r->bpb);
    snprintf(v[4], 32, "%.6g", r->lr);
    snprintf(v[5], 32, "%.6g", r->grad_norm);
    snprintf(v[6], 32, "%.1f", r->tokens_per_s);
    snprintf(v[7], 32, "%.2f", r->elapsed_s);
    const char *vals[8] = {v[0], r->val ? "val" : "train", v[2], v[3], r->val ? NULL : v[4],
                           r->val ? NULL : v[5], r->val ? NULL : v[6], v[7]};
    cli_table_row(&s->table, vals);
    return history_append(&s->hist, r);
}

/* Save OUT at the current step, unless the weights or the loss they give
 * next are not finite: then OUT keeps its last good checkpoint. */
static ssm_status save(train_state *s)
{
    if (ssm_dist_rank()) return SSM_OK;   /* rank 0 saves for all */
    cli_progress_clear(&s->prog);
    ssm_status st = task_check_saveable(&s->data, &s->rc, &s->model, s->opt.step, s->rc.out);
    if (st) return st;
    char *cfg = run_config_string(&s->rc);
    ssm_checkpoint_meta meta = {.step = s->opt.step, .seed = (uint64_t)s->rc.seed, .run_config = cfg};
    st = ssm_checkpoint_save(s->rc.out, &s->model, &s->opt, &meta);
    free(cfg);
    if (!st) fprintf(stderr, "# saved %s at step %ld\n", s->rc.out, s->opt.step);
    return st;
}

static int same_arch(const ssm_config *a, const ssm_config *b)
{
    return a->d_model == b->d_model && a->n_layer == b->n_layer && a->d_state == b->d_state &&
           a->d_conv == b->d_conv && a->expand == b->expand && a->dt_rank == b->dt_rank &&
           a->padded_vocab == b->padded_vocab && a->n_classes == b->n_classes &&
           a->input_kind == b->input_kind && a->d_input == b->d_input &&
           a->scenario == b->scenario && a->polarize == b->polarize && a->reorder == b->reorder &&
           a->arch == b->arch;
}

/* Data parallel: every rank starts from rank 0's weights and optimizer
 * state (the same seed gives the same weights, but not on every libm). */
static ssm_status replicas_sync(train_state *s)
{
    if (ssm_dist_size() == 1) return SSM_OK;
    size_t bytes = s->model.num_params * sizeof(float);
    ssm_status st = ssm_dist_bcast(s->model.params_memory, bytes, 0);
    if (!st) st = ssm_dist_bcast(s->opt.m, bytes, 0);
    if (!st) st = ssm_dist_bcast(s->opt.v, bytes, 0);
    if (!st) st = ssm_dist_bcast(&s->opt.step, sizeof s->opt.step, 0);
    return st;
}

static ssm_status model_setup(train_state *s)
{
    ssm_config want;
    ssm_status st = task_model_config(&s->data, &s->rc, &want);
    if (st) return st;
    if (!s->rc.resume[0]) {
        if ((st = ssm_model_build(&s->model, &want))) return st;
        ssm_model_init(&s->model, (uint64_t)s->rc.seed);
    } else {
        ssm_checkpoint_meta meta = {0};
        if ((st = ssm_checkpoint_load(s->rc.resume, &s->model, &meta))) return st;
        free(meta.run_config);
        if (!same_arch(&want, &s->model.cfg))
            return ssm_fail(SSM_ERR_CONFIG, "%s: checkpoint architecture differs from the config", s->rc.resume);
    }
    if ((st = ssm_model_alloc_grads(&s->model))) return st;
    if ((st = ssm_adamw_build(&s->opt, &s->model, &s->rc.opt))) return st;
    if (s->rc.resume[0]) {
        if ((st = ssm_checkpoint_load_optimizer(s->rc.resume, &s->model, &s->opt))) return st;
        s->opt.cfg = s->rc.opt;
        fprintf(stderr, "# resumed %s at step %ld\n", s->rc.resume, s->opt.step);
    }
    return replicas_sync(s);
}

/* The progress line: step of the run's last step (stop_at or steps). */
static void progress(train_state *s, double loss)
{
    char extra[64];
    long end = s->rc.stop_at && s->rc.stop_at < s->rc.opt.total_steps ? s->rc.stop_at : s->rc.opt.total_steps;
    double spent = ssm_now_s() - s->t0;
    snprintf(extra, sizeof extra, "loss %.4f  %.0f tok/s", loss, spent > 0 ? s->tokens_seen / spent : 0.0);
    cli_progress_draw(&s->prog, "step", s->opt.step, end, extra);
}

/* One line on stderr: what the validation's dynamics say. */
static void dynamics_note(long step, const task_dynamics *dy)
{
    char decay[64];
    if (!dy->fit_ok) snprintf(decay, sizeof decay, "no decay fit");
    else if (!dy->exponential) snprintf(decay, sizeof decay, "no exponential decay (R^2 %.2f)", dy->fit_r2);
    else snprintf(decay, sizeof decay, "half-life %.3g tokens (R^2 %.2f)", dy->half_life, dy->fit_r2);
    fprintf(stderr, "# step %ld: eigenvalues %d+ %d- %d complex; stream %s, mixer %s; %s; cos_last %.3f; "
            "measured in %.2f s\n", step, dy->pos, dy->neg, dy->complex_total, ssm_verdict_name(dy->verdict),
            ssm_verdict_name(dy->mix_verdict), decay, dy->cos_last, dy->seconds);
}

/* Validation loss, then the dynamics on the first validation batch
 * (task_dynamics_measure, the quick budget); a failed measurement leaves
 * its cells empty, with a note, and training goes on. */
static ssm_status eval_and_log(train_state *s)
{
    task_metrics v;
    cli_progress_clear(&s->prog);
    ssm_status st = cli_progress_validate(&s->data, &s->model, s->rc.eval_batches, &v);
    if (st) return st;
    if (!isfinite(v.loss))
        return ssm_fail(SSM_ERR_DATA, "validation loss became %g at step %ld", v.loss, s->opt.step);
    if (ssm_dist_rank()) return SSM_OK;   /* the dynamics and the row: rank 0's */
    task_dynamics dy;
    int measured = task_dynamics_measure(&s->data, &s->model, TASK_DYNAMICS_QUICK, &dy) == SSM_OK;
    if (measured) dynamics_note(s->opt.step, &dy);
    else fprintf(stderr, "# step %ld: dynamics not measured: %s\n", s->opt.step, ssm_last_error());
    history_row r = history_row_make(&s->data, s->opt.step, 1, v.loss, v.acc, ssm_now_s() - s->t0);
    r.dyn = measured ? &dy : NULL;
    st = emit_row(s, &r);
    task_dynamics_free(&dy);
    return st;
}

static ssm_status train_loop(train_state *s)
{
    ssm_status st;
    int steps = s->rc.opt.total_steps;
    while (s->opt.step < steps) {
        if (ssm_dist_any(stop_requested)) {   /* any rank's signal stops every rank */
            cli_progress_clear(&s->prog);
            fprintf(stderr, "# interrupted at step %ld: saving a resumable checkpoint\n", s->opt.step);
            st = save(s);
            if (ssm_dist_any(st != SSM_OK) && !st)   /* every rank waits for rank 0's checkpoint */
                return ssm_fail(SSM_ERR_IO, "interrupted at step %ld: rank 0 could not save", s->opt.step);
            if (st) return st;
            return ssm_fail(SSM_ERR_INTERRUPTED, "interrupted at step %ld; resume with resume=%s",
                            s->opt.step, s->rc.out);
        }
        double t = ssm_now_s();
        task_step_stats ts;
        if ((st = task_train_step(&s->data, &s->rc, &s->model, &s->opt, &ts))) return st;
        s->tokens_seen += ts.tokens;
        long step = s->opt.step;
        if (step % s->rc.log_every == 0 || step == steps) {
            double now = ssm_now_s();
            history_row r = history_row_train(&s->data, step, &ts, now - t, now - s->t0);
            if ((st = emit_row(s, &r))) return st;
        }
        progress(s, ts.loss);
        if (s->rc.eval_every && step % s->rc.eval_every == 0 && step != steps)
            if ((st = eval_and_log(s))) return st;
        if (s->rc.save_every && step % s->rc.save_every == 0 && step != steps)
            if ((st = save(s))) return st;
        if (s->rc.stop_at && step >= s->rc.stop_at && step != steps) {
            cli_progress_clear(&s->prog);
            fprintf(stderr, "# stopping at step %ld (stop_at)\n", step);
            return save(s);
        }
    }
    if ((st = eval_and_log(s))) return st;
    return save(s);
}

/* The operands: at most one config file, then key=value overrides. */
static ssm_status config_from_args(run_config *rc, char **args, int nargs)
{
    int nfiles = cli_config_split(args, nargs);
    if (nfiles > 1)
        return ssm_fail(SSM_ERR_USAGE, "train: '%s': only one config file (the other operands are key=value)",
                        args[1]);
    ssm_status st = cli_config_build(rc, nfiles ? args[0] : NULL, args + nfiles, nargs - nfiles);
    return st ? st : run_config_check(rc);
}

static void state_free(train_state *s)
{
    ssm_adamw_free(&s->opt);
    ssm_model_free(&s->model);
    task_data_free(&s->data);
}

/* Describe the MQAR examples on stderr, with the accuracy of guessing one
 * value of the vocabulary (1 / (V - V/2)) and one value of the context (1 / K). */
static void mqar_describe(const task_data *d)
{
    const ssm_mqar_config *q = &d->mqar;
    char train[64];
    if (d->mqar_train_n) snprintf(train, sizeof train, "%ld training examples, cycled", d->mqar_train_n);
    else snprintf(train, sizeof train, "fresh training examples");
    fprintf(stderr, "# data = mqar: V %d, T %d, K %d pairs, a = %g, %s filler; %s (stream seed %llu), "
            "%ld validation examples (stream seed %llu); chance %.4f (any value), %.4f (a value in "
            "context)\n", q->vocab, q->len, q->pairs, q->alpha, q->random_filler ? "random" : "zero",
            train, (unsigned long long)d->mqar_train_seed, d->mqar_val_n,
            (unsigned long long)d->mqar_val_seed, 1.0 / (q->vocab - q->vocab / 2), 1.0 / q->pairs);
}

/* Load the data and describe it on stderr. */
static ssm_status data_setup(train_state *s)
{
    ssm_status st = task_data_load(&s->data, &s->rc, 0);
    if (st) return st;
    const task_data *d = &s->data;
    if (d->task == RUN_TASK_MQAR) {
        mqar_describe(d);
        return SSM_OK;
    }
    if (d->classify) {
        fprintf(stderr, "# data = %s (%s): %d train and %d test images of %d x %d x %d, %d classes; "
                "%d tokens of %d values (patch %d), standardize = %d\n", s->rc.data,
                run_dataset_name(s->rc.dataset), d->train.n, d->test.n, d->seq.rows, d->seq.cols,
                d->seq.channels, d->train.n_classes, d->seq.L, d->seq.d_input, d->seq.patch,
                d->seq.standardize);
        return SSM_OK;
    }
    double nats, bits;
    if ((st = ssm_text_unigram(&d->text, &nats, &bits))) return st;
    fprintf(stderr, "# data = %s: %zu train bytes, %zu validation bytes, unigram baseline %.4f nats (%.4f bits/byte)\n",
            s->rc.data, d->text.n_train, d->text.n_val, nats, bits);
    return SSM_OK;
}

static ssm_status run(train_state *s)
{
    ssm_status st;
    /* from the start: a SIGTERM during setup (a sweep killed just after it
     * started this run) stops at the first step with a checkpoint, where
     * the default action killed the process without a word */
    signals_install();
    if ((st = data_setup(s))) return st;
    task_data_shard(&s->data, ssm_dist_rank(), ssm_dist_size());
    if ((st = model_setup(s))) return st;
    fprintf(stderr, "# model: %zu parameters\n", s->model.num_params);
    if (ssm_dist_size() > 1)
        fprintf(stderr, "# data parallel: %d ranks, global batch %d split into slices of %d or %d rows\n",
                ssm_dist_size(), s->data.B, s->data.B / ssm_dist_size(),
                (s->data.B + ssm_dist_size() - 1) / ssm_dist_size());
    if (!ssm_dist_rank()) {
        if ((st = ssm_dir_create(s->rc.out))) return st;
        if ((st = history_open(&s->hist, s->rc.out, s->rc.resume, s->opt.step))) return st;
        fprintf(stderr, "# history: %s\n", s->hist.path);
    }
    cli_table_begin(&s->table, stdout, s->rc.format, s->data.classify ? cls_columns : lm_columns, 8);
    s->t0 = ssm_now_s();
    cli_progress_begin(&s->prog, s->opt.step);
    return train_loop(s);
}

typedef struct {
    int list_keys;
} train_opts;

static const cli_opt train_options[] = {
    {"list-keys", 0, CLI_OPT_FLAG, .help = "print the configuration keys with their defaults and exit",
     .offset = offsetof(train_opts, list_keys)},
    CLI_OPT_END};

static const cli_command train_command = {
    "train", "[CONFIG] [key=value ...] [options]",
    "Train a model: the defaults, then CONFIG (key = value lines), then the key=value overrides.", 1,
    "The keys: ssmlab train --list-keys, and ssmlab(1)."};

/* Ranks other than 0 write nothing: stdout and stderr go to /dev/null,
 * and *err keeps stderr for an error message (-1: nothing moved). */
static void rank_quiet(int *err)
{
    *err = -1;
    if (!ssm_dist_rank()) return;
    int null = open("/dev/null", O_WRONLY);
    if (null < 0) return;
    fflush(NULL);
    *err = dup(STDERR_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    close(null);
}

/* The exit code of st; on a failure in a job of several ranks that the
 * others did not share (anything but an agreed stop), the whole job ends,
 * or the others would wait for this rank forever. */
static int train_exit(ssm_status st, int err)
{
    if (err >= 0 && st != SSM_ERR_INTERRUPTED) {   /* rank 0 tells of an agreed stop */
        fflush(NULL);
        dup2(err, STDERR_FILENO);
        close(err);
    }
    int code = st ? cli_report(st) : EX_OK;
    if (st && st != SSM_ERR_INTERRUPTED && ssm_dist_size() > 1) ssm_dist_abort(code);
    ssm_dist_finalize();
    return code;
}

int cli_train(int argc, char **argv)
{
    static train_state s;
    memset(&s, 0, sizeof s);
    ssm_status dst = ssm_dist_init(&argc, &argv);
    if (dst) return cli_report(dst);
    int err;
    rank_quiet(&err);
    train_opts o = {0};
    const cli_opt_group groups[] = {{train_options, &o}, {NULL, NULL}};
    cli_args a;
    int rc = cli_opts_parse(&train_command, groups, argc, argv, &a);
    if (rc) {
        train_exit(SSM_OK, err);
        return rc == CLI_OPTS_HELP ? EX_OK : rc;
    }
    if (o.list_keys) run_config_write_keys(stdout);
    ssm_status st = o.list_keys ? SSM_OK : config_from_args(&s.rc, a.args, a.nargs);
    cli_args_free(&a);
    if (st || o.list_keys) return train_exit(st, err);
    s.rc.threads = cli_threads_apply(s.rc.threads);
    cli_log_header("train", s.rc.seed);
    fprintf(stderr, "# resolved config:\n");
    run_config_write(&s.rc, stderr, "#   ");
    st = run(&s);
    cli_progress_clear(&s.prog);
    ssm_status closed = history_close(&s.hist);
    if (!st) st = closed;
    state_free(&s);
    return train_exit(st, err);
}
