/* sweep.c — `ssmlab sweep FILE... [--out DIR] [--format csv|jsonl] [--figure-format LIST]
 * [--attack adversarial|target [--last K,...] [attack options]]
 * [key=value ...]`: trains each preset in turn by running `ssmlab train` as
 * a child process (its history train.csv and log kept in DIR/<preset>/), then loads each
 * trained model and measures on its first validation batch the token-norm
 * verdicts of ssmlab-math(7) DYNAMICS (residual stream and mixer outputs) and the influence
 * decay and over-smoothing of ssmlab-math(7) RECENCY, in one call
 * (scenarios/task_dynamics.h); with --attack it also attacks each
 * classifier's first test images for every k (cli/attack_eval.h).  Writes
 * DIR/results.csv, DIR/results.md and stdout, a bar chart per result column
 * in DIR/figures/, and DIR/attack.csv and DIR/attack.md with --attack. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "engine/clock.h"
#include "cli/attack_eval.h"
#include "engine/checkpoint.h"
#include "cli/cli.h"
#include "scenarios/run_config.h"
#include "engine/dynamics.h"
#include "engine/safetensors.h"
#include "scenarios/history.h"
#include "scenarios/task.h"
#include "scenarios/task_dynamics.h"

#define SWEEP_NAME_MAX 128
#define SWEEP_CELL 32
#define SWEEP_ATTACK_IMAGES 500
#define SWEEP_ATTACK_LAST "1,1%,2%,5%,10%"

typedef struct {
    const char *out, *format;
    unsigned figure_formats;   /* --figure-format: of DIR/figures/COLUMN.* */
    char **files;       /* (nfiles) preset files, in order */
    int nfiles;
    char **overrides;   /* (nover) key=value arguments, in order */
    int nover;
    const char *attack_name;  /* --attack adversarial|target, or NULL */
    int attack;         /* --attack given */
    const char *last;   /* --last list of k */
    attack_eval_opts ae;
    cli_args args;      /* the operands, which files and overrides point into */
} sweep_opts;

/* One preset: its resolved config and, once trained, its results. */
typedef struct {
    const char *file;
    char name[SWEEP_NAME_MAX];
    run_config rc;
    int done;
    long steps;
    size_t params;
    double val_loss, val_acc, unigram, train_s;   /* NAN when not measured */
    float mean_slope, mix_slope;
    int verdict, mix_verdict;
    double decay_rate, half_life, fit_r2;         /* influence decay (NAN: no fit) */
    double cos_last, dev_last, dev_ratio;         /* over-smoothing of x_n; dev_n / dev_0 */
    int attack_L, nk;                             /* attacked: tokens per image, k values */
    int ks[ATTACK_EVAL_MAX_KS];
    ssm_attack_counts counts[ATTACK_EVAL_MAX_KS];
} sweep_run;

enum { C_PRESET, C_SCENARIO, C_POLARIZE, C_REORDER, C_TASK, C_LAYERS, C_PARAMS, C_STEPS, C_VAL_LOSS,
       C_VAL_PPL, C_VAL_ACC, C_UNIGRAM, C_TRAIN_S, C_SLOPE, C_VERDICT, C_MIX_SLOPE, C_MIX_VERDICT,
       C_DECAY, C_HALF, C_R2, C_COS, C_DEV, C_DEV_RATIO, NCOLS };

static const char *const columns[NCOLS] = {
    "preset", "scenario", "polarize", "reorder", "task", "n_layer", "params", "steps", "val_loss",
    "val_ppl", "val_acc", "unigram_loss", "train_s", "mean_slope", "verdict", "mix_slope",
    "mix_verdict", "decay_rate", "half_life", "fit_r2", "cos_last", "dev_last", "dev_ratio"};
/* left-aligned (text) columns in Markdown */
static const unsigned char text_cols[NCOLS] = {[C_PRESET] = 1, [C_SCENARIO] = 1, [C_POLARIZE] = 1,
                                               [C_REORDER] = 1, [C_TASK] = 1, [C_VERDICT] = 1,
                                               [C_MIX_VERDICT] = 1};

#define A_FIRST 4   /* the attack table: preset, scenario, polarize, reorder, then attack_eval's */
#define A_NCOLS (A_FIRST + ATTACK_EVAL_NCOLS)


/* ---- arguments and presets ------------------------------------------- */

static const char *const attacks[] = {"adversarial", "target", NULL};

static const cli_opt sweep_options[] = {
    {"out", 0, CLI_OPT_STRING, .metavar = "DIR", .help = "where the runs and the results go (default runs/sweep)",
     .offset = offsetof(sweep_opts, out)},
    CLI_OPT_FORMAT(sweep_opts, format),
    CLI_OPT_FIGURE_FORMAT(sweep_opts, figure_formats),
    {"attack", 0, CLI_OPT_CHOICE, .help = "also attack each classifier (the attack options below)",
     .offset = offsetof(sweep_opts, attack_name), .choices = attacks},
    {"last", 0, CLI_OPT_STRING, .metavar = "K[,K...]", .help = "with --attack: attacked tokens (default " SWEEP_ATTACK_LAST ")",
     .offset = offsetof(sweep_opts, last)},
    CLI_OPT_END};

static const cli_command sweep_command = {
    "sweep", "FILE... [key=value ...] [options]",
    "Train each preset FILE, measure its dynamics and recency, and write one results table.", 1,
    "The key=value overrides apply to every preset; the sweep sets out and format itself."};

/* The operands: preset files and key=value overrides. */
static int operands(sweep_opts *o)
{
    o->nfiles = cli_config_split(o->args.args, o->args.nargs);
    o->files = o->args.args;
    o->overrides = o->args.args + o->nfiles;
    o->nover = o->args.nargs - o->nfiles;
    for (int i = 0; i < o->nover; i++)
        if (!strncmp(o->overrides[i], "out=", 4) || !strncmp(o->overrides[i], "format=", 7))
            return cli_usage_error("sweep: '%s': the sweep sets out and format (use --out, --format)",
                                   o->overrides[i]);
    return o->nfiles ? EX_OK : cli_usage_error("sweep: no preset files given");
}

/* The attack options go with --attack; the k list's grammar is checked
 * here, its values against each preset's length in presets_load. */
static int check_attack_opts(sweep_opts *o)
{
    const cli_opt *ev = attack_eval_options();
    const char *seen = o->last ? "last" : NULL;
    for (int j = 0; !seen && ev[j].name; j++)
        if (cli_opts_given(&o->args, ev[j].name)) seen = ev[j].name;
    o->attack = o->attack_name != NULL;
    if (!o->attack && seen) return cli_usage_error("sweep: --%s goes with --attack adversarial|target", seen);
    if (!o->attack) return EX_OK;
    o->ae.mode = !strcmp(o->attack_name, "target") ? ATTACK_EVAL_TARGET : ATTACK_EVAL_ADVERSARIAL;
    if (!o->last) o->last = SWEEP_ATTACK_LAST;
    int ks[ATTACK_EVAL_MAX_KS], nk;
    ssm_status st = attack_eval_parse_ks("sweep", o->last, 0, ks, &nk);
    if (st) return cli_report(st);
    return attack_eval_check_opts(&o->ae, "sweep");
}

/* On EX_OK, o->args holds the operands (cli_args_free). */
static int parse_args(sweep_opts *o, int argc, char **argv)
{
    *o = (sweep_opts){.out = "runs/sweep", .format = "csv", .figure_formats = CLI_FIGURE_FORMATS_DEFAULT};
    attack_eval_defaults(&o->ae);
    o->ae.images = SWEEP_ATTACK_IMAGES;
    const cli_opt_group groups[] = {{sweep_options, o}, {attack_eval_options(), &o->ae}, {NULL, NULL}};
    int rc = cli_opts_parse(&sweep_command, groups, argc, argv, &o->args);
    if (rc) return rc;
    rc = operands(o);
    if (!rc && !*o->out) rc = cli_usage_error("sweep: --out must not be empty");
    if (!rc) rc = check_attack_opts(o);
    if (rc) cli_args_free(&o->args);
    return rc;
}

/* "scenarios/lm-default.conf" -> "lm-default" */
static void preset_name(const char *file, char *name)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    snprintf(name, SWEEP_NAME_MAX, "%s", base);
    size_t n = strlen(name);
    if (n > 5 && !strcmp(name + n - 5, ".conf")) name[n - 5] = 0;
}

/* "file: message" for an error about preset r */
static ssm_status preset_error(const sweep_run *r, ssm_status st)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ssm_last_error());
    return ssm_fail(st, "%s: %s", r->file, msg);
}

/* Read a preset, apply the overrides and out=DIR/<name>, and check it. */
static ssm_status preset_load(sweep_run *r, const sweep_opts *o, const char *file)
{
    memset(r, 0, sizeof *r);
    r->file = file;
    preset_name(file, r->name);
    ssm_status st = cli_config_build(&r->rc, file, o->overrides, o->nover);   /* errors say where */
    if (st) return st;
    if (snprintf(r->rc.out, sizeof r->rc.out, "%s/%s", o->out, r->name) >= (int)sizeof r->rc.out)
        return ssm_fail(SSM_ERR_CONFIG, "%s: output path too long", file);
    snprintf(r->rc.format, sizeof r->rc.format, "csv");
    if ((st = run_config_check(&r->rc))) return preset_error(r, st);
    r->val_loss = r->val_acc = r->unigram = r->train_s = NAN;
    r->mean_slope = r->mix_slope = NAN;
    r->decay_rate = r->half_life = r->fit_r2 = r->cos_last = r->dev_last = r->dev_ratio = NAN;
    return SSM_OK;
}

/* With --attack, before training: the k list against a classifier's
 * sequence length, and --class against its classes. */
static ssm_status preset_check_attack(sweep_run *r, const sweep_opts *o)
{
    if (!o->attack || r->rc.task != RUN_TASK_CLASSIFY) return SSM_OK;
    task_data d;
    ssm_config cfg;
    ssm_status st = task_data_load(&d, &r->rc, 1);
    if (!st) st = attack_eval_parse_ks("sweep", o->last, d.L, r->ks, &r->nk);
    if (!st) st = task_model_config(&d, &r->rc, &cfg);
    if (!st && o->ae.mode == ATTACK_EVAL_TARGET && o->ae.cls >= cfg.n_classes)
        st = ssm_fail(SSM_ERR_USAGE, "sweep: --class %d: the model has classes 0 .. %d", o->ae.cls, cfg.n_classes - 1);
    r->attack_L = d.L;
    task_data_free(&d);
    return st ? preset_error(r, st) : SSM_OK;
}

/* --attack attacks classifiers only: a sweep with none is refused before
 * anything is trained (rather than writing an empty attack table), and the
 * other presets are named on stderr. */
static ssm_status presets_check_attack(const sweep_run *runs, const sweep_opts *o)
{
    int n = 0;
    for (int i = 0; o->attack && i < o->nfiles; i++) n += runs[i].rc.task == RUN_TASK_CLASSIFY;
    if (o->attack && !n)
        return ssm_fail(SSM_ERR_USAGE, "%s: sweep: --attack: no preset is a classifier (task = classify), so "
                        "there is nothing to attack; this one is task = %s", runs[0].file,
                        run_task_name(runs[0].rc.task));
    for (int i = 0; o->attack && i < o->nfiles; i++)
        if (runs[i].rc.task != RUN_TASK_CLASSIFY)
            fprintf(stderr, "# sweep: --attack: %s is task = %s, not a classifier: it gets no attack rows\n",
                    runs[i].name, run_task_name(runs[i].rc.task));
    return SSM_OK;
}

static ssm_status presets_load(sweep_run *runs, const sweep_opts *o)
{
    for (int i = 0; i < o->nfiles; i++) {
        ssm_status st = preset_load(&runs[i], o, o->files[i]);
        if (!st) st = preset_check_attack(&runs[i], o);
        if (st) return st;
        for (int j = 0; j < i; j++)
            if (!strcmp(runs[j].name, runs[i].name))
                return ssm_fail(SSM_ERR_USAGE, "%s and %s: two presets named '%s'", runs[j].file,
                                runs[i].file, runs[i].name);
    }
    return presets_check_attack(runs, o);
}

/* ---- running `ssmlab train` ------------------------------------------ */

/* In the child: stdout to /dev/null (train writes its rows to
 * OUT/train.csv itself), stderr to log, then exec train.  Never returns;
 * on failure the child exits 127 (_exit, no atexit handlers). */
static void child_exec(const char *self, char **args, const char *log)
{
    FILE *o = freopen("/dev/null", "w", stdout);
    FILE *e = freopen(log, "w", stderr);
    if (o && e) {
        signal(SIGINT, SIG_DFL);
        execv(self, args);
        fprintf(stderr, "ssmlab: %s: cannot run: %s\n", self, strerror(errno));
    }
    _exit(127);
}

/* argv of `ssmlab train FILE overrides... out=DIR/<name> format=csv` */
static char **train_args(const sweep_run *r, const sweep_opts *o, char *outkv, size_t outlen)
{
    char **args = calloc((size_t)o->nover + 6, sizeof *args);
    if (!args) return NULL;
    int n = 0;
    args[n++] = "ssmlab";
    args[n++] = "train";
    args[n++] = (char *)r->file;
    for (int i = 0; i < o->nover; i++) args[n++] = o->overrides[i];
    snprintf(outkv, outlen, "out=%s", r->rc.out);
    args[n++] = outkv;
    args[n++] = "format=csv";
    return args;
}

/* The last "ssmlab: ..." line of a child's log, for the error message. */
static void last_error_line(const char *log, char *line, size_t n)
{
    char buf[1024];
    FILE *f = fopen(log, "r");
    snprintf(line, n, "see %s", log);
    if (!f) return;
    while (fgets(buf, sizeof buf, f))
        if (!strncmp(buf, "ssmlab: ", 8)) {
            buf[strcspn(buf, "\n")] = 0;
            snprintf(line, n, "%s", buf + 8);
        }
    fclose(f);
}

/* Fork and exec the training run; *code gets its exit status. */
static ssm_status train_child(const sweep_run *r, const sweep_opts *o, int *code)
{
    char self[PATH_MAX], log[PATH_MAX], outkv[RUN_PATH_MAX + 8];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) return ssm_fail(SSM_ERR_SOFTWARE, "/proc/self/exe: cannot find the ssmlab binary: %s", strerror(errno));
    self[n] = 0;
    snprintf(log, sizeof log, "%s/train.log", r->rc.out);
    char **args = train_args(r, o, outkv, sizeof outkv);
    if (!args) return ssm_fail(SSM_ERR_NOMEM, "out of memory");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) child_exec(self, args, log);
    free(args);
    if (pid < 0) return ssm_fail(SSM_ERR_SOFTWARE, "cannot fork: %s", strerror(errno));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return ssm_fail(SSM_ERR_SOFTWARE, "waitpid: %s", strerror(errno));
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return SSM_OK;
}

/* ---- reading the run's history ---------------------------------------- */

/* Last val row's loss (and acc), last train row's elapsed_s, from the
 * run's train.csv (scenarios/history.h). */
static ssm_status read_train_csv(sweep_run *r)
{
    history h;
    ssm_status st = history_load(&h, r->rc.out);
    if (st) return st;
    int split = history_column(&h, "split"), loss = history_column(&h, "loss");
    int acc = history_column(&h, "acc"), elapsed = history_column(&h, "elapsed_s");
    for (int i = 0; i < h.n_rows; i++) {
        if (!strcmp(history_cell(&h, i, split), "val")) {
            r->val_loss = history_value(&h, i, loss);
            r->val_acc = history_value(&h, i, acc);
        }
        if (!strcmp(history_cell(&h, i, split), "train")) r->train_s = history_value(&h, i, elapsed);
    }
    history_free(&h);
    if (isnan(r->val_loss))
        return ssm_fail(SSM_ERR_DATA, "%s/%s: no validation row in the training history", r->rc.out, HISTORY_FILE);
    return SSM_OK;
}

/* ---- measuring the trained model --------------------------------------- */

/* The dynamics the table shows, from task_dynamics_measure. */
static void dynamics_copy(sweep_run *r, const task_dynamics *dy)
{
    r->mean_slope = dy->mean_slope;
    r->verdict = dy->verdict;
    r->mix_slope = dy->mix_slope;
    r->mix_verdict = dy->mix_verdict;
    r->decay_rate = dy->decay_rate;
    r->half_life = task_dynamics_half_life(dy);   /* NAN: no exponential decay (R^2 rule) */
    r->fit_r2 = dy->fit_r2;
    r->cos_last = dy->cos_last;
    r->dev_last = dy->dev_last;
    r->dev_ratio = dy->dev_ratio;
    if (!dy->fit_ok) fprintf(stderr, "# sweep: %s: no influence decay fit: %s\n", r->name, dy->fit_note);
}

/* --attack on a classifier: every k of the list on the first test images. */
static ssm_status measure_attack(sweep_run *r, ssm_model *m, const task_data *d, const sweep_opts *o)
{
    attack_eval a;
    ssm_status st = attack_eval_build(&a, m, &d->test, &d->seq, &o->ae, r->rc.out);
    for (int i = 0; !st && i < r->nk; i++) {
        st = attack_eval_run(&a, m, r->ks[i], &r->counts[i]);
        ssm_attack_rates q;
        ssm_attack_rates_of(&r->counts[i], o->ae.mode == ATTACK_EVAL_TARGET, &q);
        if (!st)
            fprintf(stderr, "# sweep: %s: attack k = %d: clean %.4f, attacked %.4f, success %.4f\n", r->name,
                    r->ks[i], q.clean_acc, q.attacked_acc, q.success_rate);
    }
    attack_eval_free(&a);
    return st;
}

/* Parameters, steps, unigram baseline (lm), then the measurements above. */
static ssm_status measure(sweep_run *r, const sweep_opts *o)
{
    ssm_model m;
    ssm_checkpoint_meta meta = {0};
    task_data d;
    cli_threads_apply(r->rc.threads);
    ssm_status st = ssm_checkpoint_load(r->rc.out, &m, &meta);
    if (st) return st;
    r->steps = meta.step;
    r->params = m.num_params;
    ssm_checkpoint_meta_free(&meta);
    st = task_data_load(&d, &r->rc, 0);
    double nats = NAN, bits;
    if (!st && r->rc.task == RUN_TASK_LM) st = ssm_text_unigram(&d.text, &nats, &bits);
    r->unigram = nats;
    task_dynamics dy = {0};
    if (!st) st = task_dynamics_measure(&d, &m, TASK_DYNAMICS_FULL, &dy);
    if (!st) dynamics_copy(r, &dy);
    task_dynamics_free(&dy);
    if (!st && o->attack && r->rc.task == RUN_TASK_CLASSIFY) st = measure_attack(r, &m, &d, o);
    task_data_free(&d);
    ssm_model_free(&m);
    return st;
}

/* ---- the tables -------------------------------------------------------- */

/* Rows of text cells, built for one write. */
typedef struct {
    const char *const *cols;
    int ncols, nrows;
    const unsigned char *text;   /* (ncols) left-aligned in Markdown, or NULL */
    char (*v)[SWEEP_CELL];       /* (nrows * ncols) cell storage */
    const char **vals;           /* (nrows * ncols) cells, NULL = empty */
} sweep_table;

static ssm_status table_build(sweep_table *t, const char *const *cols, int ncols, const unsigned char *text,
                              int nrows)
{
    size_t n = (size_t)(nrows ? nrows : 1) * ncols;
    *t = (sweep_table){cols, ncols, nrows, text, calloc(n, SWEEP_CELL), calloc(n, sizeof(char *))};
    return t->v && t->vals ? SSM_OK : ssm_fail(SSM_ERR_NOMEM, "out of memory for the results table");
}

static void table_free(sweep_table *t)
{
    free(t->v);
    free(t->vals);
}

static void table_write(const sweep_table *t, FILE *f, const char *format)
{
    cli_table ct;
    cli_table_begin(&ct, f, format, t->cols, t->ncols);
    ct.text = t->text;   /* a preset named "1" stays a string */
    for (int i = 0; i < t->nrows; i++) cli_table_row(&ct, t->vals + (size_t)i * t->ncols);
}

static void table_markdown(const sweep_table *t, FILE *f)
{
    for (int c = 0; c < t->ncols; c++) fprintf(f, "| %s ", t->cols[c]);
    fprintf(f, "|\n");
    for (int c = 0; c < t->ncols; c++) fprintf(f, "|%s", t->text && t->text[c] ? "---" : "--:");
    fprintf(f, "|\n");
    for (int i = 0; i < t->nrows; i++) {
        const char **row = t->vals + (size_t)i * t->ncols;
        for (int c = 0; c < t->ncols; c++) fprintf(f, "| %s ", row[c] ? row[c] : "-");
        fprintf(f, "|\n");
    }
}

/* DIR/base.csv and DIR/base.md, each written atomically. */
static ssm_status table_save(const sweep_table *t, const char *dir, const char *base)
{
    char path[PATH_MAX];
    ssm_atomic_file af;
    ssm_status st;
    snprintf(path, sizeof path, "%s/%s.csv", dir, base);
    if ((st = ssm_atomic_file_begin(&af, path))) return st;
    table_write(t, af.f, "csv");
    if ((st = ssm_atomic_file_commit(&af))) return st;
    snprintf(path, sizeof path, "%s/%s.md", dir, base);
    if ((st = ssm_atomic_file_begin(&af, path))) return st;
    table_markdown(t, af.f);
    return ssm_atomic_file_commit(&af);
}

static void fmt(char *buf, const char *f, double v)
{
    if (isnan(v)) buf[0] = 0;
    else snprintf(buf, SWEEP_CELL, f, v);
}

/* One run's results row: cells v (NCOLS, SWEEP_CELL), vals (NCOLS). */
static void run_cells(const sweep_run *r, char v[][SWEEP_CELL], const char **vals)
{
    int lm = r->rc.task == RUN_TASK_LM;
    snprintf(v[C_LAYERS], SWEEP_CELL, "%d", r->rc.model.n_layer);
    snprintf(v[C_PARAMS], SWEEP_CELL, "%zu", r->params);
    snprintf(v[C_STEPS], SWEEP_CELL, "%ld", r->steps);
    fmt(v[C_VAL_LOSS], "%.4f", r->val_loss);
    fmt(v[C_VAL_PPL], "%.3f", lm ? exp(r->val_loss) : NAN);
    fmt(v[C_VAL_ACC], "%.4f", lm ? NAN : r->val_acc);
    fmt(v[C_UNIGRAM], "%.4f", r->unigram);
    fmt(v[C_TRAIN_S], "%.2f", r->train_s);
    fmt(v[C_SLOPE], "%.5f", r->mean_slope);
    fmt(v[C_MIX_SLOPE], "%.5f", r->mix_slope);
    fmt(v[C_DECAY], "%.5f", r->decay_rate);
    fmt(v[C_HALF], "%.4g", r->half_life);
    fmt(v[C_R2], "%.3f", r->fit_r2);
    fmt(v[C_COS], "%.4f", r->cos_last);
    fmt(v[C_DEV], "%.4f", r->dev_last);
    fmt(v[C_DEV_RATIO], "%.4f", r->dev_ratio);
    for (int c = 0; c < NCOLS; c++) vals[c] = v[c][0] ? v[c] : NULL;
    vals[C_PRESET] = r->name;
    vals[C_SCENARIO] = ssm_scenario_name(r->rc.model.scenario);
    vals[C_POLARIZE] = ssm_polarize_name(r->rc.model.polarize);
    vals[C_REORDER] = ssm_reorder_name(r->rc.model.reorder);
    vals[C_TASK] = run_task_name(r->rc.task);
    vals[C_VERDICT] = ssm_verdict_name(r->verdict);
    vals[C_MIX_VERDICT] = ssm_verdict_name(r->mix_verdict);
}

static ssm_status results_table(sweep_table *t, const sweep_run *runs, int n)
{
    ssm_status st = table_build(t, columns, NCOLS, text_cols, n);
    for (int i = 0; !st && i < n; i++) run_cells(&runs[i], t->v + (size_t)i * NCOLS, t->vals + (size_t)i * NCOLS);
    return st;
}

/* The attack table: one row per (attacked preset, k). */
static ssm_status attack_table(sweep_table *t, const sweep_run *runs, int n, const attack_eval_opts *ae)
{
    static const char *cols[A_NCOLS] = {"preset", "scenario", "polarize", "reorder"};
    static const unsigned char text[A_NCOLS] = {1, 1, 1, 1, 1, 1};
    const char *const *ev = attack_eval_columns();
    for (int c = 0; c < ATTACK_EVAL_NCOLS; c++) cols[A_FIRST + c] = ev[c];
    int rows = 0;
    for (int i = 0; i < n; i++) rows += runs[i].rc.task == RUN_TASK_CLASSIFY ? runs[i].nk : 0;
    ssm_status st = table_build(t, cols, A_NCOLS, text, rows);
    for (int i = 0, row = 0; !st && i < n; i++)
        for (int k = 0; runs[i].rc.task == RUN_TASK_CLASSIFY && k < runs[i].nk; k++, row++) {
            const char **vals = t->vals + (size_t)row * A_NCOLS;
            const sweep_run *r = &runs[i];
            attack_eval_cells(ae, r->attack_L, r->ks[k], &r->counts[k], t->v + (size_t)row * A_NCOLS + A_FIRST,
                              vals + A_FIRST);
            vals[0] = r->name;
            vals[1] = ssm_scenario_name(r->rc.model.scenario);
            vals[2] = ssm_polarize_name(r->rc.model.polarize);
            vals[3] = ssm_reorder_name(r->rc.model.reorder);
        }
    return st;
}

/* ---- figures ---------------------------------------------------------- */

/* The result columns drawn, one bar chart each, with the axis label. */
static const struct {
    int col;
    const char *label;
} figure_cols[] = {
    {C_VAL_LOSS, "validation loss (nats)"},
    {C_VAL_PPL, "validation perplexity (per byte)"},
    {C_VAL_ACC, "validation accuracy (fraction)"},
    {C_UNIGRAM, "unigram baseline loss (nats per byte)"},
    {C_TRAIN_S, "training time (s)"},
    {C_SLOPE, "mean slope of ln \xe2\x80\x96x_l\xe2\x80\x96 (per layer)"},
    {C_MIX_SLOPE, "mean slope of ln \xe2\x80\x96mix_l\xe2\x80\x96 (per layer)"},
    {C_DECAY, "influence decay rate (per token)"},
    {C_HALF, "influence half-life (tokens)"},
    {C_R2, "R\xc2\xb2 of the decay fit (no unit)"},
    {C_COS, "mean cosine similarity of x_n (no unit)"},
    {C_DEV, "relative deviation of x_n (no unit)"},
    {C_DEV_RATIO, "deviation of x_n / of x_0 (ratio)"},
};
#define N_FIGURE_COLS ((int)(sizeof figure_cols / sizeof figure_cols[0]))

/* A run's number in result column col (NAN when it has none). */
static double run_value(const sweep_run *r, int col)
{
    int lm = r->rc.task == RUN_TASK_LM;
    switch (col) {
    case C_VAL_LOSS: return r->val_loss;
    case C_VAL_PPL: return lm ? exp(r->val_loss) : NAN;
    case C_VAL_ACC: return lm ? NAN : r->val_acc;
    case C_UNIGRAM: return r->unigram;
    case C_TRAIN_S: return r->train_s;
    case C_SLOPE: return r->mean_slope;
    case C_MIX_SLOPE: return r->mix_slope;
    case C_DECAY: return r->decay_rate;
    case C_HALF: return r->half_life;
    case C_R2: return r->fit_r2;
    case C_COS: return r->cos_last;
    case C_DEV: return r->dev_last;
    case C_DEV_RATIO: return r->dev_ratio;
    }
    return NAN;
}

/* One bar: a preset's value, and the ends of its error bar (NAN: none).
 * A sweep runs each preset once, so there is no spread yet; when presets
 * run with several seeds, this is where their mean and confidence interval
 * go, and the charts draw the error bars. */
typedef struct {
    double mean, lo, hi;
} sweep_bar;

static void bar_of(const sweep_run *r, int col, sweep_bar *b)
{
    *b = (sweep_bar){run_value(r, col), NAN, NAN};
}

/* DIR/figures/COLUMN.svg (.png, ...) for each column with a number. */
static ssm_status write_figures(const sweep_opts *o, const sweep_run *runs, int n)
{
    char dir[PATH_MAX], title[96];
    snprintf(dir, sizeof dir, "%s/figures", o->out);
    const char **names = calloc((size_t)n, sizeof *names);
    double *v = calloc((size_t)n * 3, sizeof *v);
    int *colors = calloc((size_t)n, sizeof *colors);
    ssm_status st = names && v && colors ? ssm_dir_create(dir) : ssm_fail(SSM_ERR_NOMEM, "out of memory");
    cli_figures f = {dir, o->figure_formats};
    for (int c = 0; !st && c < N_FIGURE_COLS; c++) {
        int any = 0, spread = 0;
        for (int i = 0; i < n; i++) {
            sweep_bar b;
            bar_of(&runs[i], figure_cols[c].col, &b);
            v[i] = b.mean;
            v[n + i] = b.lo;
            v[2 * n + i] = b.hi;
            names[i] = runs[i].name;
            colors[i] = i;
            any |= !isnan(b.mean);
            spread |= !isnan(b.lo) || !isnan(b.hi);
        }
        if (!any) continue;
        snprintf(title, sizeof title, "%s across presets", columns[figure_cols[c].col]);
        fig_panel p = {.kind = FIG_PANEL_BARS,
                       .bars = {{.title = title, .xlabel = "preset", .ylabel = figure_cols[c].label}, names, v,
                                spread ? v + n : NULL, spread ? v + 2 * n : NULL, n, colors}};
        fig_page page = {NULL, &p, 1, 1, n > 8 ? 432 + 24 * (n - 8) : 0, 0};
        st = cli_figures_write(&f, columns[figure_cols[c].col], &page);
    }
    free(names);
    free(v);
    free(colors);
    return st;
}

/* results.csv/.md (and attack.csv/.md) of the first n runs, and the figures. */
static ssm_status write_results(const sweep_opts *o, const sweep_run *runs, int n)
{
    sweep_table t;
    ssm_status st = results_table(&t, runs, n);
    if (!st) st = table_save(&t, o->out, "results");
    if (!st) st = write_figures(o, runs, n);
    table_free(&t);
    if (st || !o->attack) return st;
    st = attack_table(&t, runs, n, &o->ae);
    if (!st && t.nrows) st = table_save(&t, o->out, "attack");   /* no rows yet: no file yet */
    table_free(&t);
    return st;
}

/* ---- the sweep ------------------------------------------------------- */

/* Train and measure run i of n; returns an exit code (EX_OK on success). */
static int sweep_one(sweep_run *r, const sweep_opts *o, int i, int n)
{
    char log[PATH_MAX], msg[1024];
    fprintf(stderr, "# sweep [%d/%d] %s: training (%s)\n", i + 1, n, r->name, r->file);
    double t = ssm_now_s();
    int code = 0;
    ssm_status st = ssm_dir_create(r->rc.out);
    if (!st) st = train_child(r, o, &code);
    if (st) return cli_report(st);
    snprintf(log, sizeof log, "%s/train.log", r->rc.out);
    if (code) {
        last_error_line(log, msg, sizeof msg);
        fprintf(stderr, "ssmlab: sweep: %s: training failed (exit %d): %s\n", r->file, code, msg);
        return code;
    }
    if ((st = read_train_csv(r))) return cli_report(st);
    double tm = ssm_now_s();
    if ((st = measure(r, o))) return cli_report(preset_error(r, st));
    r->done = 1;
    char decay[64];
    if (isnan(r->half_life)) snprintf(decay, sizeof decay, "no exponential decay (R^2 %.2f)", r->fit_r2);
    else snprintf(decay, sizeof decay, "half-life %.4g tokens", r->half_life);
    fprintf(stderr,
            "# sweep [%d/%d] %s: val loss %.4f, stream %s (slope %.5f), mixer %s (slope %.5f), "
            "%s, cos_last %.4f; measured in %.1f s, %.1f s in all\n",
            i + 1, n, r->name, r->val_loss, ssm_verdict_name(r->verdict), r->mean_slope,
            ssm_verdict_name(r->mix_verdict), r->mix_slope, decay, r->cos_last, ssm_now_s() - tm, ssm_now_s() - t);
    return EX_OK;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* SIGINT reaches the child (same process group), which saves and exits
 * 130; the sweep notes it and stops after that run, or, when it comes
 * while a model is being measured, after that measurement. */
static int sweep_all(sweep_run *runs, const sweep_opts *o)
{
    struct sigaction on = {.sa_handler = on_sigint, .sa_flags = SA_RESTART}, old;
    sigaction(SIGINT, &on, &old);
    int code = EX_OK, done = 0;
    for (; done < o->nfiles && !code; done++) {
        code = sweep_one(&runs[done], o, done, o->nfiles);
        ssm_status st = code ? SSM_OK : write_results(o, runs, done + 1);
        if (st) code = cli_report(st);
        if (!code && interrupted) {
            fprintf(stderr, "ssmlab: sweep: interrupted after %s: results so far in %s\n", runs[done].file, o->out);
            code = 128 + SIGINT;
        }
    }
    sigaction(SIGINT, &old, NULL);
    sweep_table t;
    ssm_status st = code ? SSM_OK : results_table(&t, runs, o->nfiles);
    if (st) return cli_report(st);
    if (code) return code;
    table_write(&t, stdout, o->format);
    table_free(&t);
    fprintf(stderr, "# sweep: results in %s/results.csv and %s/results.md%s, charts in %s/figures\n", o->out,
            o->out, o->attack ? ", attacks in attack.csv and attack.md" : "", o->out);
    return EX_OK;
}

int cli_sweep(int argc, char **argv)
{
    sweep_opts o;
    int code = parse_args(&o, argc, argv);
    if (code) return code == CLI_OPTS_HELP ? EX_OK : code;
    sweep_run *runs = calloc((size_t)o.nfiles, sizeof *runs);
    ssm_status st = runs ? presets_load(runs, &o) : ssm_fail(SSM_ERR_NOMEM, "out of memory");
    if (!st) st = ssm_dir_create(o.out);
    if (!st) {
        cli_threads_apply(runs[0].rc.threads);
        cli_log_header("sweep", 0);
    }
    code = st ? cli_report(st) : sweep_all(runs, &o);
    free(runs);
    cli_args_free(&o.args);
    return code;
}
