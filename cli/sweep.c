/* sweep.c — `ssmlab sweep FILE... [--out DIR] [--format csv|jsonl] [--figure-format LIST]
 * [--seeds LIST [--compare A:B ...]] [--attack adversarial|target [--last K,...] [attack options]]
 * [key=value ...]`: trains each preset in turn by running `ssmlab train` as
 * a child process (its history train.csv and log kept in DIR/<preset>/), then loads each
 * trained model and measures on its first validation batch the token-norm
 * verdicts of ssmlab-math(7) DYNAMICS (residual stream and mixer outputs) and the influence
 * decay and over-smoothing of ssmlab-math(7) RECENCY, in one call
 * (scenarios/task_dynamics.h); with --attack it also attacks each
 * classifier's first test images for every k (cli/attack_eval.h).  Writes
 * DIR/results.csv, DIR/results.md and stdout, a bar chart per result column
 * in DIR/figures/, and DIR/attack.csv and DIR/attack.md with --attack.
 * With --seeds each preset runs once per seed (DIR/<preset>/seed-S/):
 * DIR/runs.csv holds the runs, results.csv the mean and 95% interval per
 * preset, compare.csv the paired comparisons (cli/sweep_stats.h); with
 * --attack too, attack_runs.csv the attack rows per seed, attack.csv their
 * means and intervals, attack_compare.csv each region against its
 * first-region control and each --compare pair, paired by seed.
 * Under mpirun or srun with several ranks, the runs go to the ranks as
 * they free up (cli/sweep_dist.h); a run that fails or is killed is marked
 * failed in the tables and the sweep goes on; rank 0 writes the tables. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "engine/clock.h"
#include "cli/attack_eval.h"
#include "engine/checkpoint.h"
#include "engine/dist.h"
#include "cli/cli.h"
#include "scenarios/run_config.h"
#include "engine/dynamics.h"
#include "engine/safetensors.h"
#include "scenarios/history.h"
#include "scenarios/task.h"
#include "scenarios/task_dynamics.h"
#include "cli/sweep_dist.h"
#include "cli/sweep_stats.h"

#define SWEEP_NAME_MAX 128
#define SWEEP_CELL 32
#define SWEEP_ATTACK_IMAGES 500
#define SWEEP_ATTACK_LAST "1,1%,2%,5%,10%"
#define SWEEP_SEEDS_MAX 64
#define SWEEP_PAIRS_MAX 32

/* --seeds: the seeds each preset runs with (n == 0: its own seed, once) */
typedef struct {
    long v[SWEEP_SEEDS_MAX];
    int n;
} sweep_seeds;

/* --compare A:B, as given (names point into argv), then resolved to
 * preset indices a, b (b is compared with a: b - a) */
typedef struct {
    const char *arg[SWEEP_PAIRS_MAX];
    int a[SWEEP_PAIRS_MAX], b[SWEEP_PAIRS_MAX];
    int n;
} sweep_pairs;

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
    sweep_seeds seeds;  /* --seeds */
    sweep_pairs pairs;  /* --compare, resolved by pairs_resolve */
    cli_args args;      /* the operands, which files and overrides point into */
} sweep_opts;

/* One preset: its resolved config and, once trained, its results. */
typedef struct {
    const char *file;
    char name[SWEEP_NAME_MAX];
    char label[SWEEP_NAME_MAX + 32];   /* name, or "name seed S" with --seeds */
    long seed;
    run_config rc;
    int done;
    int failed;         /* a distributed run that did not finish: its exit code */
    long steps;
    size_t params;
    double val_loss, val_acc, unigram, train_s;   /* NAN when not measured */
    float mean_slope, mix_slope;
    int verdict, mix_verdict;
    double decay_rate, half_life, fit_r2;         /* influence decay (NAN: no fit) */
    double tail64;                                /* influence at distance >= 64 / at 1 */
    double cos_last, dev_last, dev_ratio;         /* over-smoothing of x_n; dev_n / dev_0 */
    int attack_L, nrows;                          /* attacked: tokens per image, (k, region) rows */
    attack_eval_row rows[ATTACK_EVAL_MAX_ROWS];
    ssm_attack_counts counts[ATTACK_EVAL_MAX_ROWS];
} sweep_run;

enum { C_PRESET, C_SCENARIO, C_POLARIZE, C_REORDER, C_TASK, C_LAYERS, C_PARAMS, C_STEPS, C_VAL_LOSS,
       C_VAL_PPL, C_VAL_ACC, C_UNIGRAM, C_TRAIN_S, C_SLOPE, C_VERDICT, C_MIX_SLOPE, C_MIX_VERDICT,
       C_DECAY, C_HALF, C_R2, C_TAIL, C_COS, C_DEV, C_DEV_RATIO, NCOLS };

static const char *const columns[NCOLS] = {
    "preset", "scenario", "polarize", "reorder", "task", "n_layer", "params", "steps", "val_loss",
    "val_ppl", "val_acc", "unigram_loss", "train_s", "mean_slope", "verdict", "mix_slope",
    "mix_verdict", "decay_rate", "half_life", "fit_r2", "tail64", "cos_last", "dev_last", "dev_ratio"};
/* left-aligned (text) columns in Markdown */
static const unsigned char text_cols[NCOLS] = {[C_PRESET] = 1, [C_SCENARIO] = 1, [C_POLARIZE] = 1,
                                               [C_REORDER] = 1, [C_TASK] = 1, [C_VERDICT] = 1,
                                               [C_MIX_VERDICT] = 1};

#define A_FIRST 4   /* the attack table: preset, scenario, polarize, reorder, then attack_eval's */
#define A_NCOLS (A_FIRST + ATTACK_EVAL_NCOLS)


/* ---- arguments and presets ------------------------------------------- */

static const char *const attacks[] = {"adversarial", "target", NULL};

/* "1-5", "1,3,7", "1-3,7": seeds 0 and up, no repeats, at most SWEEP_SEEDS_MAX */
static int seeds_parse(const char *arg, void *dst)
{
    sweep_seeds *s = dst;
    char buf[512];
    s->n = 0;
    if (snprintf(buf, sizeof buf, "%s", arg) >= (int)sizeof buf) return -1;
    for (char *tok = buf, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next) *next++ = 0;
        char *dash = strchr(tok, '-');
        if (dash) *dash = 0;
        long lo, hi;
        if (cli_parse_long(tok, &lo) || cli_parse_long(dash ? dash + 1 : tok, &hi) || lo < 0 || hi < lo) return -1;
        for (long v = lo; v <= hi; v++) {
            if (s->n == SWEEP_SEEDS_MAX) return -1;
            for (int i = 0; i < s->n; i++)
                if (s->v[i] == v) return -1;
            s->v[s->n++] = v;
        }
    }
    return 0;
}

/* --compare A:B, repeatable */
static int pair_parse(const char *arg, void *dst)
{
    sweep_pairs *p = dst;
    const char *colon = strchr(arg, ':');
    if (!colon || colon == arg || !colon[1] || strchr(colon + 1, ':') || p->n == SWEEP_PAIRS_MAX) return -1;
    p->arg[p->n++] = arg;
    return 0;
}

static const cli_opt sweep_options[] = {
    {"out", 0, CLI_OPT_STRING, .metavar = "DIR", .help = "where the runs and the results go (default runs/sweep)",
     .offset = offsetof(sweep_opts, out)},
    CLI_OPT_FORMAT(sweep_opts, format),
    CLI_OPT_FIGURE_FORMAT(sweep_opts, figure_formats),
    {"attack", 0, CLI_OPT_CHOICE, .help = "also attack each classifier (the attack options below)",
     .offset = offsetof(sweep_opts, attack_name), .choices = attacks},
    {"last", 0, CLI_OPT_STRING, .metavar = "K[,K...]", .help = "with --attack: attacked tokens (default " SWEEP_ATTACK_LAST ")",
     .offset = offsetof(sweep_opts, last)},
    {"seeds", 0, CLI_OPT_CUSTOM, .metavar = "LIST", .help = "run each preset once per seed: 1-5, 1,3,7 (default: its own seed)",
     .offset = offsetof(sweep_opts, seeds), .parse = seeds_parse,
     .what = "a list of seeds such as 1-5 or 1,3,7 (0 and up, no repeats, at most 64)"},
    {"compare", 0, CLI_OPT_CUSTOM, .metavar = "A:B", .help = "with --seeds: paired comparison of preset B with A (repeatable)",
     .offset = offsetof(sweep_opts, pairs), .parse = pair_parse, .what = "two preset names as A:B"},
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
    if (!rc && o->pairs.n && o->seeds.n < 2)
        rc = cli_usage_error("sweep: --compare goes with --seeds of at least 2 seeds (it pairs the runs by seed)");
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
    char msg[SSM_ERROR_CAP];
    snprintf(msg, sizeof msg, "%s", ssm_last_error());
    return ssm_fail(st, "%s: %s", r->file, msg);
}

/* Read a preset, apply the overrides and out=DIR/<name> (with --seeds,
 * seed=S and out=DIR/<name>/seed-S for the k-th seed), and check it. */
static ssm_status preset_load(sweep_run *r, const sweep_opts *o, const char *file, int k)
{
    memset(r, 0, sizeof *r);
    r->file = file;
    preset_name(file, r->name);
    ssm_status st = cli_config_build(&r->rc, file, o->overrides, o->nover);   /* errors say where */
    if (st) return st;
    int len;
    if (o->seeds.n) {
        r->rc.seed = o->seeds.v[k];
        len = snprintf(r->rc.out, sizeof r->rc.out, "%s/%s/seed-%ld", o->out, r->name, r->rc.seed);
        snprintf(r->label, sizeof r->label, "%s seed %ld", r->name, r->rc.seed);
    } else {
        len = snprintf(r->rc.out, sizeof r->rc.out, "%s/%s", o->out, r->name);
        snprintf(r->label, sizeof r->label, "%s", r->name);
    }
    r->seed = r->rc.seed;
    if (len >= (int)sizeof r->rc.out) return ssm_fail(SSM_ERR_CONFIG, "%s: output path too long", file);
    snprintf(r->rc.format, sizeof r->rc.format, "csv");
    if ((st = run_config_check(&r->rc))) return preset_error(r, st);
    r->val_loss = r->val_acc = r->unigram = r->train_s = NAN;
    r->mean_slope = r->mix_slope = NAN;
    r->decay_rate = r->half_life = r->fit_r2 = r->tail64 = r->cos_last = r->dev_last = r->dev_ratio = NAN;
    return SSM_OK;
}

/* With --attack, before training: the k list against a classifier's
 * sequence length, and --class against its classes. */
static ssm_status preset_check_attack(sweep_run *r, const sweep_opts *o)
{
    if (!o->attack || r->rc.task != RUN_TASK_CLASSIFY) return SSM_OK;
    task_data d;
    ssm_config cfg;
    int ks[ATTACK_EVAL_MAX_KS], nk = 0;
    ssm_status st = task_data_load(&d, &r->rc, 1);
    if (!st) st = attack_eval_parse_ks("sweep", o->last, d.L, ks, &nk);
    r->nrows = attack_eval_rows(&o->ae, ks, nk, r->rows);
    if (!st) st = task_model_config(&d, &r->rc, &cfg);
    if (!st && o->ae.mode == ATTACK_EVAL_TARGET && o->ae.cls >= cfg.n_classes)
        st = ssm_fail(SSM_ERR_USAGE, "sweep: --class %d: the model has classes 0 .. %d", o->ae.cls, cfg.n_classes - 1);
    r->attack_L = d.L;
    task_data_free(&d);
    return st ? preset_error(r, st) : SSM_OK;
}

/* Runs per preset: one per seed, or one. */
static int sweep_nseeds(const sweep_opts *o)
{
    return o->seeds.n ? o->seeds.n : 1;
}

/* --attack attacks classifiers only: a sweep with none is refused before
 * anything is trained (rather than writing an empty attack table), and the
 * other presets are named on stderr. */
static ssm_status presets_check_attack(const sweep_run *runs, const sweep_opts *o)
{
    int n = 0, ns = sweep_nseeds(o);   /* preset i's first run is runs[i * ns] */
    for (int i = 0; o->attack && i < o->nfiles; i++) n += runs[i * ns].rc.task == RUN_TASK_CLASSIFY;
    if (o->attack && !n)
        return ssm_fail(SSM_ERR_USAGE, "%s: sweep: --attack: no preset is a classifier (task = classify), so "
                        "there is nothing to attack; this one is task = %s", runs[0].file,
                        run_task_name(runs[0].rc.task));
    for (int i = 0; o->attack && i < o->nfiles; i++)
        if (runs[i * ns].rc.task != RUN_TASK_CLASSIFY)
            fprintf(stderr, "# sweep: --attack: %s is task = %s, not a classifier: it gets no attack rows\n",
                    runs[i * ns].name, run_task_name(runs[i * ns].rc.task));
    return SSM_OK;
}

/* A seed's run attacks the rows of its preset's first run. */
static void attack_rows_copy(sweep_run *r, const sweep_run *first)
{
    r->attack_L = first->attack_L;
    r->nrows = first->nrows;
    memcpy(r->rows, first->rows, sizeof r->rows);
}

/* runs: (nfiles * nseeds) preset-major, preset i's seed k at i * nseeds + k */
static ssm_status presets_load(sweep_run *runs, const sweep_opts *o)
{
    int ns = sweep_nseeds(o);
    for (int i = 0; i < o->nfiles; i++) {
        for (int k = 0; k < ns; k++) {
            ssm_status st = preset_load(&runs[i * ns + k], o, o->files[i], k);
            if (!st && !k) st = preset_check_attack(&runs[i * ns], o);
            if (st) return st;
            if (k) attack_rows_copy(&runs[i * ns + k], &runs[i * ns]);
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(runs[j * ns].name, runs[i * ns].name))
                return ssm_fail(SSM_ERR_USAGE, "%s and %s: two presets named '%s'", runs[j * ns].file,
                                runs[i * ns].file, runs[i * ns].name);
    }
    return presets_check_attack(runs, o);
}

/* Index of the preset named name (length len), or -1. */
static int preset_find(const sweep_run *runs, const sweep_opts *o, const char *name, size_t len)
{
    for (int i = 0; i < o->nfiles; i++) {
        const char *n = runs[i * sweep_nseeds(o)].name;
        if (strlen(n) == len && !strncmp(n, name, len)) return i;
    }
    return -1;
}

/* --compare A:B to preset indices; without it (and with 2 seeds or more)
 * each preset against the first. */
static ssm_status pairs_resolve(sweep_opts *o, const sweep_run *runs)
{
    sweep_pairs *p = &o->pairs;
    for (int i = 0; i < p->n; i++) {
        const char *arg = p->arg[i], *colon = strchr(arg, ':');
        p->a[i] = preset_find(runs, o, arg, (size_t)(colon - arg));
        p->b[i] = preset_find(runs, o, colon + 1, strlen(colon + 1));
        if (p->a[i] < 0 || p->b[i] < 0)
            return ssm_fail(SSM_ERR_USAGE, "sweep: --compare %s: no preset named '%.*s'", arg,
                            p->a[i] < 0 ? (int)(colon - arg) : (int)strlen(colon + 1),
                            p->a[i] < 0 ? arg : colon + 1);
        if (p->a[i] == p->b[i])
            return ssm_fail(SSM_ERR_USAGE, "sweep: --compare %s: a preset compared with itself", arg);
    }
    for (int i = 1; !p->n && o->seeds.n >= 2 && i < o->nfiles && i <= SWEEP_PAIRS_MAX; i++) {
        p->a[i - 1] = 0;
        p->b[i - 1] = i;
        if (i == o->nfiles - 1 || i == SWEEP_PAIRS_MAX) p->n = i;
    }
    return SSM_OK;
}

/* ---- running `ssmlab train` ------------------------------------------ */

/* In the child: stdout to /dev/null (train writes its rows to
 * OUT/train.csv itself), stderr to log, SIGTERM when the sweep process
 * dies, then exec train.  Never returns;
 * on failure the child exits 127 (_exit, no atexit handlers). */
static void child_exec(const char *self, char **args, const char *log)
{
    FILE *o = freopen("/dev/null", "w", stdout);
    FILE *e = freopen(log, "w", stderr);
    if (o && e) {
        signal(SIGINT, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);   /* the sweep killed: save and stop */
        ssm_dist_child_env();   /* the child trains alone, whatever job this is */
        execv(self, args);
        fprintf(stderr, "ssmlab: %s: cannot run: %s\n", self, strerror(errno));
    }
    _exit(127);
}

/* argv of `ssmlab train FILE overrides... [seed=S] out=DIR/<name> format=csv`;
 * seedkv holds 32 bytes */
static char **train_args(const sweep_run *r, const sweep_opts *o, char *outkv, size_t outlen, char *seedkv)
{
    char **args = calloc((size_t)o->nover + 7, sizeof *args);
    if (!args) return NULL;
    int n = 0;
    args[n++] = "ssmlab";
    args[n++] = "train";
    args[n++] = (char *)r->file;
    for (int i = 0; i < o->nover; i++) args[n++] = o->overrides[i];
    if (o->seeds.n) {
        snprintf(seedkv, 32, "seed=%ld", r->seed);
        args[n++] = seedkv;
    }
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
    char self[PATH_MAX], log[PATH_MAX], outkv[RUN_PATH_MAX + 8], seedkv[32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) return ssm_fail(SSM_ERR_SOFTWARE, "/proc/self/exe: cannot find the ssmlab binary: %s", strerror(errno));
    self[n] = 0;
    snprintf(log, sizeof log, "%s/train.log", r->rc.out);
    char **args = train_args(r, o, outkv, sizeof outkv, seedkv);
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
    r->tail64 = dy->tail64;
    r->cos_last = dy->cos_last;
    r->dev_last = dy->dev_last;
    r->dev_ratio = dy->dev_ratio;
    if (!dy->fit_ok) fprintf(stderr, "# sweep: %s: no influence decay fit: %s\n", r->label, dy->fit_note);
}

/* --attack on a classifier: every (k, region) row on the first test images. */
static ssm_status measure_attack(sweep_run *r, ssm_model *m, const task_data *d, const sweep_opts *o)
{
    attack_eval a;
    ssm_status st = attack_eval_build(&a, m, &d->test, &d->seq, &o->ae, r->rc.out);
    for (int i = 0; !st && i < r->nrows; i++) {
        st = attack_eval_run(&a, m, r->rows[i], &r->counts[i]);
        ssm_attack_rates q;
        ssm_attack_rates_of(&r->counts[i], o->ae.mode == ATTACK_EVAL_TARGET, &q);
        if (!st)
            fprintf(stderr, "# sweep: %s: attack k = %d, %s: clean %.4f, attacked %.4f, success %.4f\n", r->name,
                    r->rows[i].k, ssm_attack_region_name(r->rows[i].region), q.clean_acc, q.attacked_acc,
                    q.success_rate);
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

/* DIR/base.csv, written atomically. */
static ssm_status table_save_csv(const sweep_table *t, const char *dir, const char *base)
{
    char path[PATH_MAX];
    ssm_atomic_file af;
    ssm_status st;
    snprintf(path, sizeof path, "%s/%s.csv", dir, base);
    if ((st = ssm_atomic_file_begin(&af, path))) return st;
    table_write(t, af.f, "csv");
    return ssm_atomic_file_commit(&af);
}

/* DIR/base.md, written atomically: table t, then with cmp (the paired
 * comparisons of --seeds) a section holding that table, and note (or
 * NULL) after the section's legend. */
static ssm_status table_save_md(const sweep_table *t, const sweep_table *cmp, const char *note, const char *dir,
                                const char *base)
{
    char path[PATH_MAX];
    ssm_atomic_file af;
    ssm_status st;
    snprintf(path, sizeof path, "%s/%s.md", dir, base);
    if ((st = ssm_atomic_file_begin(&af, path))) return st;
    table_markdown(t, af.f);
    if (cmp) {
        fprintf(af.f, "\n## Paired comparisons\n\n"
                      "b - a over the seeds both ran: mean difference, 95%% CI half-width, paired t, "
                      "two-sided p; * marks p < 0.05.\n\n");
        if (note) fprintf(af.f, "%s\n\n", note);
        table_markdown(cmp, af.f);
    }
    return ssm_atomic_file_commit(&af);
}

/* DIR/base.csv and DIR/base.md, each written atomically. */
static ssm_status table_save(const sweep_table *t, const char *dir, const char *base)
{
    ssm_status st = table_save_csv(t, dir, base);
    return st ? st : table_save_md(t, NULL, NULL, dir, base);
}

static void fmt(char *buf, const char *f, double v)
{
    if (isnan(v)) buf[0] = 0;
    else snprintf(buf, SWEEP_CELL, f, v);
}

static double run_value(const sweep_run *r, int col);
static const char *col_format(int col);

/* One run's results row: cells v (NCOLS, SWEEP_CELL), vals (NCOLS). */
static void run_cells(const sweep_run *r, char v[][SWEEP_CELL], const char **vals)
{
    snprintf(v[C_LAYERS], SWEEP_CELL, "%d", r->rc.model.n_layer);
    snprintf(v[C_PARAMS], SWEEP_CELL, "%zu", r->params);
    snprintf(v[C_STEPS], SWEEP_CELL, "%ld", r->steps);
    if (r->failed) v[C_PARAMS][0] = v[C_STEPS][0] = 0;
    for (int c = C_VAL_LOSS; c < NCOLS; c++)   /* the numbers, as the statistics print them */
        if (!text_cols[c]) fmt(v[c], col_format(c), run_value(r, c));
    for (int c = 0; c < NCOLS; c++) vals[c] = v[c][0] ? v[c] : NULL;
    vals[C_PRESET] = r->name;
    vals[C_SCENARIO] = ssm_scenario_name(r->rc.model.scenario);
    vals[C_POLARIZE] = ssm_polarize_name(r->rc.model.polarize);
    vals[C_REORDER] = ssm_reorder_name(r->rc.model.reorder);
    vals[C_TASK] = run_task_name(r->rc.task);
    vals[C_VERDICT] = r->failed ? "failed" : ssm_verdict_name(r->verdict);
    vals[C_MIX_VERDICT] = r->failed ? "failed" : ssm_verdict_name(r->mix_verdict);
}

static ssm_status results_table(sweep_table *t, const sweep_run *runs, int n)
{
    ssm_status st = table_build(t, columns, NCOLS, text_cols, n);
    for (int i = 0; !st && i < n; i++) run_cells(&runs[i], t->v + (size_t)i * NCOLS, t->vals + (size_t)i * NCOLS);
    return st;
}

/* A run's preset cells before the attack's: preset, [seed,] scenario, polarize, reorder. */
static void attack_preset_cells(const sweep_run *r, int seeded, char *seed, const char **vals)
{
    vals[0] = r->name;
    if (seeded) {
        snprintf(seed, SWEEP_CELL, "%ld", r->seed);
        vals[1] = seed;
    }
    vals[1 + seeded] = ssm_scenario_name(r->rc.model.scenario);
    vals[2 + seeded] = ssm_polarize_name(r->rc.model.polarize);
    vals[3 + seeded] = ssm_reorder_name(r->rc.model.reorder);
}

/* The attack table: one row per (attacked preset, k, region), or with
 * seeded (attack_runs.csv of --seeds) per (preset, seed, k, region), the
 * seed after the preset. */
static ssm_status attack_table(sweep_table *t, const sweep_run *runs, int n, const attack_eval_opts *ae, int seeded)
{
    static const char *cols[2][A_NCOLS + 1] = {{"preset", "scenario", "polarize", "reorder"},
                                                {"preset", "seed", "scenario", "polarize", "reorder"}};
    static const unsigned char text[2][A_NCOLS + 1] = {{1, 1, 1, 1, 1, 1, [A_NCOLS - 1] = 1},
                                                        {1, 0, 1, 1, 1, 1, 1, [A_NCOLS] = 1}};
    const char *const *ev = attack_eval_columns();
    int first = A_FIRST + seeded, nc = A_NCOLS + seeded;
    for (int c = 0; c < ATTACK_EVAL_NCOLS; c++) cols[seeded][first + c] = ev[c];
    int rows = 0;
    for (int i = 0; i < n; i++) rows += runs[i].rc.task == RUN_TASK_CLASSIFY ? runs[i].nrows : 0;
    ssm_status st = table_build(t, cols[seeded], nc, text[seeded], rows);
    for (int i = 0, row = 0; !st && i < n; i++)
        for (int k = 0; runs[i].rc.task == RUN_TASK_CLASSIFY && k < runs[i].nrows; k++, row++) {
            const char **vals = t->vals + (size_t)row * nc;
            char (*v)[SWEEP_CELL] = t->v + (size_t)row * nc;
            const sweep_run *r = &runs[i];
            attack_eval_cells(ae, r->attack_L, r->rows[k], &r->counts[k], v + first, vals + first);
            attack_preset_cells(r, seeded, v[1], vals);
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
    {C_TAIL, "influence at distance \xe2\x89\xa5 64 / at 1 (ratio)"},
    {C_COS, "mean cosine similarity of x_n (no unit)"},
    {C_DEV, "relative deviation of x_n (no unit)"},
    {C_DEV_RATIO, "deviation of x_n / of x_0 (ratio)"},
};
#define N_FIGURE_COLS ((int)(sizeof figure_cols / sizeof figure_cols[0]))

/* A run's number in result column col (NAN when it has none). */
static double run_value(const sweep_run *r, int col)
{
    int lm = r->rc.task == RUN_TASK_LM;
    if (r->failed) return NAN;
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
    case C_TAIL: return r->tail64;
    case C_COS: return r->cos_last;
    case C_DEV: return r->dev_last;
    case C_DEV_RATIO: return r->dev_ratio;
    }
    return NAN;
}

/* ---- over seeds ------------------------------------------------------- */

/* Presets with at least one run among the first ndone. */
static int presets_done(const sweep_opts *o, int ndone)
{
    int np = 0, ns = sweep_nseeds(o);
    for (int p = 0; p < o->nfiles; p++) np += ndone > p * ns;
    return np;
}

/* Preset p's runs among the first ndone. */
static int group_runs(const sweep_opts *o, int p, int ndone)
{
    int ns = sweep_nseeds(o), m = ndone - p * ns;
    return m < 0 ? 0 : m > ns ? ns : m;
}

/* Preset p's values of column col in x (nseeds), from its runs among the
 * first ndone (NAN for a failed run, so x[k] stays seed k's); returns how
 * many. */
static int group_values(const sweep_run *runs, const sweep_opts *o, int p, int ndone, int col, double *x)
{
    int ns = sweep_nseeds(o), m = group_runs(o, p, ndone);
    for (int k = 0; k < m; k++) x[k] = run_value(&runs[p * ns + k], col);
    return m;
}

/* group_values without the failed runs, for means: a run that failed has
 * no value, not an empty one. */
static int group_finished(const sweep_run *runs, const sweep_opts *o, int p, int ndone, int col, double *x)
{
    int ns = sweep_nseeds(o), m = group_runs(o, p, ndone), n = 0;
    for (int k = 0; k < m; k++)
        if (!runs[p * ns + k].failed) x[n++] = run_value(&runs[p * ns + k], col);
    return n;
}

/* Preset p's first run that did not fail (its first run when all did). */
static const sweep_run *group_first(const sweep_run *runs, const sweep_opts *o, int p, int ndone)
{
    int ns = sweep_nseeds(o), m = group_runs(o, p, ndone);
    for (int k = 0; k < m; k++)
        if (!runs[p * ns + k].failed) return &runs[p * ns + k];
    return &runs[p * ns];
}

/* The printf format of a numeric column's cells. */
static const char *col_format(int col)
{
    switch (col) {
    case C_VAL_PPL: return "%.3f";
    case C_TRAIN_S: return "%.2f";
    case C_SLOPE: case C_MIX_SLOPE: case C_DECAY: return "%.5f";
    case C_HALF: case C_TAIL: return "%.4g";
    case C_R2: return "%.3f";
    }
    return "%.4f";
}

/* runs.csv: today's columns with the seed after the preset, a row per run,
 * the numbers to 9 significant digits (the statistics use them unrounded). */
static ssm_status runs_table(sweep_table *t, const sweep_run *runs, int n)
{
    static const char *cols[NCOLS + 1];
    static unsigned char text[NCOLS + 1];
    cols[0] = columns[0];
    cols[1] = "seed";
    text[0] = 1;
    for (int c = 1; c < NCOLS; c++) {
        cols[c + 1] = columns[c];
        text[c + 1] = text_cols[c];
    }
    ssm_status st = table_build(t, cols, NCOLS + 1, text, n);
    for (int i = 0; !st && i < n; i++) {
        char (*v)[SWEEP_CELL] = t->v + (size_t)i * (NCOLS + 1);
        const char **vals = t->vals + (size_t)i * (NCOLS + 1);
        run_cells(&runs[i], v + 1, vals + 1);   /* the preset lands in slot 1: move it to 0 */
        for (int j = 0; j < N_FIGURE_COLS; j++) {
            int col = figure_cols[j].col;
            fmt(v[1 + col], "%.9g", run_value(&runs[i], col));
            vals[1 + col] = v[1 + col][0] ? v[1 + col] : NULL;
        }
        vals[0] = vals[1];
        snprintf(v[1], SWEEP_CELL, "%ld", runs[i].seed);
        vals[1] = v[1];
    }
    return st;
}

/* The aggregate table: preset .. steps, n, then per numeric column
 * COL_mean, COL_ci95 (CSV) or one "mean +- ci" cell (Markdown). */
#define G_FIRST 9
#define G_NCOLS (G_FIRST + 2 * N_FIGURE_COLS)
static const char *agg_cols[G_NCOLS], *agg_md_cols[G_FIRST + N_FIGURE_COLS];
static const unsigned char agg_text[G_NCOLS] = {1, 1, 1, 1, 1};

static void agg_columns_init(void)
{
    static char names[2 * N_FIGURE_COLS][40];
    for (int c = 0; c < G_FIRST - 1; c++) agg_cols[c] = agg_md_cols[c] = columns[c];
    agg_cols[G_FIRST - 1] = agg_md_cols[G_FIRST - 1] = "n";
    for (int j = 0; j < N_FIGURE_COLS; j++) {
        const char *name = columns[figure_cols[j].col];
        snprintf(names[2 * j], sizeof names[0], "%s_mean", name);
        snprintf(names[2 * j + 1], sizeof names[0], "%s_ci95", name);
        agg_cols[G_FIRST + 2 * j] = names[2 * j];
        agg_cols[G_FIRST + 2 * j + 1] = names[2 * j + 1];
        agg_md_cols[G_FIRST + j] = name;
    }
}

/* A summary's cells in format f: mean and CI in v[0], v[1] (CSV), or one
 * "mean +- ci" cell v[0] (md; just the mean without a CI). */
static void summary_cells(const sweep_stats_summary *s, const char *f, int md, char v[][SWEEP_CELL])
{
    char mean[SWEEP_CELL], ci[SWEEP_CELL];
    fmt(mean, f, s->mean);
    fmt(ci, f, s->ci95);
    if (!md) {
        memcpy(v[0], mean, SWEEP_CELL);
        memcpy(v[1], ci, SWEEP_CELL);
    } else if (ci[0]) {
        snprintf(v[0], SWEEP_CELL, "%s \xc2\xb1 %s", mean, ci);
    } else {
        memcpy(v[0], mean, SWEEP_CELL);
    }
}

/* Preset p's numeric cells: mean and CI in v[0], v[1] (CSV), or both in v[0]. */
static void agg_cells(const sweep_run *runs, const sweep_opts *o, int p, int ndone, int md, char v[][SWEEP_CELL])
{
    double x[SWEEP_SEEDS_MAX];
    for (int j = 0; j < N_FIGURE_COLS; j++) {
        int col = figure_cols[j].col;
        sweep_stats_summary s;
        sweep_stats_summarize(x, group_finished(runs, o, p, ndone, col, x), &s);
        summary_cells(&s, col_format(col), md, md ? v + j : v + 2 * j);
    }
}

/* results.csv (md = 0) or results.md (md = 1) of --seeds: a row per preset
 * with a run among the first ndone. */
static ssm_status agg_table(sweep_table *t, const sweep_run *runs, const sweep_opts *o, int ndone, int md)
{
    int np = presets_done(o, ndone), nc = md ? G_FIRST + N_FIGURE_COLS : G_NCOLS;
    agg_columns_init();
    ssm_status st = table_build(t, md ? agg_md_cols : agg_cols, nc, agg_text, np);
    char base[NCOLS][SWEEP_CELL];
    const char *bv[NCOLS];
    for (int p = 0; !st && p < np; p++) {
        char (*v)[SWEEP_CELL] = t->v + (size_t)p * nc;
        const char **vals = t->vals + (size_t)p * nc;
        const sweep_run *r0 = group_first(runs, o, p, ndone);
        double x[SWEEP_SEEDS_MAX];
        run_cells(r0, base, bv);
        for (int c = 1; c < G_FIRST - 1; c++) snprintf(v[c], SWEEP_CELL, "%s", bv[c] ? bv[c] : "");
        snprintf(v[G_FIRST - 1], SWEEP_CELL, "%d", group_finished(runs, o, p, ndone, C_VAL_LOSS, x));
        agg_cells(runs, o, p, ndone, md, v + G_FIRST);
        for (int c = 0; c < nc; c++) vals[c] = v[c][0] ? v[c] : NULL;
        vals[0] = r0->name;
    }
    return st;
}

/* compare.csv (md = 0) or its Markdown section: a row per pair and numeric
 * column with at least 2 seeds where both presets have a number. */
static const char *const cmp_cols[] = {"a", "b", "column", "n", "a_mean", "b_mean", "diff_mean",
                                       "diff_ci95", "t", "p_value", "significant"};
static const char *const cmp_md_cols[] = {"a", "b", "column", "n", "diff (b - a)", "95% CI", "t", "p"};
#define CMP_NCOLS ((int)(sizeof cmp_cols / sizeof cmp_cols[0]))
#define CMP_MD_NCOLS ((int)(sizeof cmp_md_cols / sizeof cmp_md_cols[0]))
static const unsigned char cmp_text[CMP_NCOLS] = {1, 1, 1};   /* a row's every column (the reader does not stop) */

/* The statistics cells of a paired comparison of xb against xa (ma, mb
 * runs, run k of each from the same seed) into v: n, [a_mean, b_mean,]
 * diff, CI, t, p [, significant] (CSV), or n, diff, CI, t, "p *" (md); 0
 * when fewer than 2 seeds pair up. */
static int paired_cells(const double *xa, int ma, const double *xb, int mb, int md, char v[][SWEEP_CELL])
{
    double pa[SWEEP_SEEDS_MAX], pb[SWEEP_SEEDS_MAX];
    int n = 0;
    for (int k = 0; k < ma && k < mb; k++)
        if (isfinite(xa[k]) && isfinite(xb[k])) {
            pa[n] = xa[k];
            pb[n++] = xb[k];
        }
    sweep_stats_paired d;
    sweep_stats_summary sa, sb;
    sweep_stats_compare(pa, pb, n, &d);
    if (d.n < 2) return 0;
    sweep_stats_summarize(pa, n, &sa);
    sweep_stats_summarize(pb, n, &sb);
    snprintf(v[0], SWEEP_CELL, "%d", d.n);
    char (*w)[SWEEP_CELL] = md ? v + 1 : v + 3;
    if (!md) {
        fmt(v[1], "%.6g", sa.mean);
        fmt(v[2], "%.6g", sb.mean);
    }
    fmt(w[0], "%.6g", d.mean);
    fmt(w[1], "%.6g", d.ci95);
    fmt(w[2], "%.6g", d.t);
    fmt(w[3], md && d.p < 0.05 ? "%.4g *" : "%.4g", d.p);
    if (!md) snprintf(w[4], SWEEP_CELL, "%d", d.p < 0.05);
    return 1;
}

/* One comparison row of pair i on column col into v (its cells); 0 when
 * fewer than 2 seeds pair up. */
static int cmp_cells(const sweep_run *runs, const sweep_opts *o, int i, int ndone, int col, int md,
                     char v[][SWEEP_CELL])
{
    double xa[SWEEP_SEEDS_MAX], xb[SWEEP_SEEDS_MAX];
    int ma = group_values(runs, o, o->pairs.a[i], ndone, col, xa);
    int mb = group_values(runs, o, o->pairs.b[i], ndone, col, xb);
    if (!paired_cells(xa, ma, xb, mb, md, v + 3)) return 0;
    snprintf(v[0], SWEEP_CELL, "%s", runs[o->pairs.a[i] * sweep_nseeds(o)].name);
    snprintf(v[1], SWEEP_CELL, "%s", runs[o->pairs.b[i] * sweep_nseeds(o)].name);
    snprintf(v[2], SWEEP_CELL, "%s", columns[col]);
    return 1;
}

static ssm_status cmp_table(sweep_table *t, const sweep_run *runs, const sweep_opts *o, int ndone, int md)
{
    int nc = md ? CMP_MD_NCOLS : CMP_NCOLS;
    ssm_status st = table_build(t, md ? cmp_md_cols : cmp_cols, nc, cmp_text, o->pairs.n * N_FIGURE_COLS);
    int rows = 0;
    for (int i = 0; !st && i < o->pairs.n; i++)
        for (int j = 0; j < N_FIGURE_COLS; j++) {
            char (*v)[SWEEP_CELL] = t->v + (size_t)rows * nc;
            if (!cmp_cells(runs, o, i, ndone, figure_cols[j].col, md, v)) continue;
            const char **vals = t->vals + (size_t)rows++ * nc;
            for (int c = 0; c < nc; c++) vals[c] = v[c][0] ? v[c] : NULL;
        }
    t->nrows = rows;
    return st;
}

/* With --seeds: runs.csv/.md, results.csv/.md (with the comparisons) and
 * compare.csv of the first ndone runs. */
static ssm_status write_seed_results(const sweep_opts *o, const sweep_run *runs, int ndone)
{
    sweep_table t, m, c, cm;
    ssm_status st = runs_table(&t, runs, ndone);
    if (!st) st = table_save(&t, o->out, "runs");
    table_free(&t);
    if (!st) st = agg_table(&t, runs, o, ndone, 0);
    if (!st) st = table_save_csv(&t, o->out, "results");
    table_free(&t);
    if (st) return st;
    st = agg_table(&m, runs, o, ndone, 1);
    if (!st) st = cmp_table(&c, runs, o, ndone, 0);
    if (!st) st = cmp_table(&cm, runs, o, ndone, 1);
    if (!st && o->pairs.n) st = table_save_csv(&c, o->out, "compare");
    if (!st) st = table_save_md(&m, o->pairs.n ? &cm : NULL, NULL, o->out, "results");
    table_free(&m);
    table_free(&c);
    table_free(&cm);
    return st;
}

/* ---- the attack over seeds ------------------------------------------ */

/* The rates of an attack row that the seeds summarise and compare. */
enum { AR_CLEAN, AR_ATTACKED, AR_SUCCESS, AR_N };
static const char *const attack_rates[AR_N] = {"clean_acc", "attacked_acc", "success_rate"};

/* Run r's rate col (AR_*) in its attack row j. */
static double attack_value(const sweep_run *r, int j, int col, int targeted)
{
    if (r->failed) return NAN;
    ssm_attack_rates q;
    ssm_attack_rates_of(&r->counts[j], targeted, &q);
    return col == AR_CLEAN ? q.clean_acc : col == AR_ATTACKED ? q.attacked_acc : q.success_rate;
}

/* Preset p's rate col in attack row j over its runs among the first
 * ndone, in x (nseeds); returns how many. */
static int attack_group_values(const sweep_run *runs, const sweep_opts *o, int p, int ndone, int j, int col,
                               double *x)
{
    int ns = sweep_nseeds(o), m = group_runs(o, p, ndone);
    for (int k = 0; k < m; k++) x[k] = attack_value(&runs[p * ns + k], j, col, o->ae.mode == ATTACK_EVAL_TARGET);
    return m;
}

/* attack.csv of --seeds: the attack row's cells without the rates, n,
 * then COL_mean, COL_ci95 per rate (CSV) or one "mean +- ci" cell (md). */
#define AG_FIRST 12
#define AG_NCOLS (AG_FIRST + 2 * AR_N)
static const char *const attack_agg_cols[AG_NCOLS] = {
    "preset", "scenario", "polarize", "reorder", "attack", "method", "k", "k_fraction", "eps", "images", "region", "n",
    "clean_acc_mean", "clean_acc_ci95", "attacked_acc_mean", "attacked_acc_ci95", "success_rate_mean",
    "success_rate_ci95"};
static const char *const attack_agg_md_cols[AG_FIRST + AR_N] = {
    "preset", "scenario", "polarize", "reorder", "attack", "method", "k", "k_fraction", "eps", "images", "region", "n",
    "clean_acc", "attacked_acc", "success_rate"};
static const unsigned char attack_agg_text[AG_NCOLS] = {1, 1, 1, 1, 1, 1, [10] = 1};

/* Preset p's mean and CI of each rate in attack row j: v[2c], v[2c+1]
 * (CSV) or v[c] (md). */
static void attack_agg_rates(const sweep_run *runs, const sweep_opts *o, int p, int j, int ndone, int md,
                             char v[][SWEEP_CELL])
{
    double x[SWEEP_SEEDS_MAX];
    for (int c = 0; c < AR_N; c++) {
        sweep_stats_summary s;
        sweep_stats_summarize(x, attack_group_values(runs, o, p, ndone, j, c, x), &s);
        summary_cells(&s, md ? "%.4f" : "%.6g", md, md ? v + c : v + 2 * c);
    }
}

/* Preset p's summary row of attack row j into v and vals. */
static void attack_agg_row(const sweep_run *runs, const sweep_opts *o, int p, int j, int ndone, int md,
                           char v[][SWEEP_CELL], const char **vals)
{
    const sweep_run *r0 = &runs[p * sweep_nseeds(o)];
    char ev[ATTACK_EVAL_NCOLS][32];
    const char *evv[ATTACK_EVAL_NCOLS];
    attack_eval_cells(&o->ae, r0->attack_L, r0->rows[j], &r0->counts[j], ev, evv);
    for (int c = 0; c < 6; c++)   /* attack .. images */
        if (evv[c]) snprintf(v[4 + c], SWEEP_CELL, "%s", evv[c]);
    snprintf(v[10], SWEEP_CELL, "%s", evv[ATTACK_EVAL_NCOLS - 1]);
    snprintf(v[11], SWEEP_CELL, "%d", group_runs(o, p, ndone));
    attack_agg_rates(runs, o, p, j, ndone, md, v + AG_FIRST);
    int nc = md ? AG_FIRST + AR_N : AG_NCOLS;
    for (int c = 0; c < nc; c++) vals[c] = v[c][0] ? v[c] : NULL;
    attack_preset_cells(r0, 0, NULL, vals);
}

/* attack.csv (md = 0) or attack.md (md = 1) of --seeds: a row per
 * (classifier with a run among the first ndone, k, region). */
static ssm_status attack_agg_table(sweep_table *t, const sweep_run *runs, const sweep_opts *o, int ndone, int md)
{
    int np = presets_done(o, ndone), ns = sweep_nseeds(o), nc = md ? AG_FIRST + AR_N : AG_NCOLS, rows = 0;
    for (int p = 0; p < np; p++) rows += runs[p * ns].nrows;
    ssm_status st = table_build(t, md ? attack_agg_md_cols : attack_agg_cols, nc, attack_agg_text, rows);
    for (int p = 0, row = 0; !st && p < np; p++)
        for (int j = 0; j < runs[p * ns].nrows; j++, row++)
            attack_agg_row(runs, o, p, j, ndone, md, t->v + (size_t)row * nc, t->vals + (size_t)row * nc);
    return st;
}

/* One attack comparison: preset pb's row jb (b) against preset pa's row ja (a). */
typedef struct {
    int pa, ja, pb, jb;
} attack_pair;

/* Run r's attack row of k tokens in region, or -1. */
static int attack_row_find(const sweep_run *r, int k, int region)
{
    for (int j = 0; j < r->nrows; j++)
        if (r->rows[j].k == k && r->rows[j].region == region) return j;
    return -1;
}

/* The comparisons into q (room for (nfiles + pairs) * ATTACK_EVAL_MAX_ROWS):
 * first each preset's region rows against their first-region control, then
 * each --compare pair at the same k and region; returns their number. */
static int attack_pairs_list(const sweep_run *runs, const sweep_opts *o, attack_pair *q)
{
    int n = 0, ns = sweep_nseeds(o);
    for (int p = 0; p < o->nfiles; p++) {
        const sweep_run *r = &runs[p * ns];
        for (int j = 0; j < r->nrows; j++) {
            int c = attack_row_find(r, r->rows[j].k, SSM_ATTACK_REGION_FIRST);
            if (r->rows[j].region != SSM_ATTACK_REGION_FIRST && c >= 0) q[n++] = (attack_pair){p, c, p, j};
        }
    }
    for (int i = 0; i < o->pairs.n; i++) {
        const sweep_run *a = &runs[o->pairs.a[i] * ns], *b = &runs[o->pairs.b[i] * ns];
        for (int j = 0; j < a->nrows; j++) {
            int jb = attack_row_find(b, a->rows[j].k, a->rows[j].region);
            if (jb >= 0) q[n++] = (attack_pair){o->pairs.a[i], j, o->pairs.b[i], jb};
        }
    }
    return n;
}

/* attack_compare.csv (md = 0) or its Markdown section: a row per
 * comparison and rate (attacked_acc, success_rate) with 2 seeds paired. */
static const char *const attack_cmp_cols[] = {"a_preset", "a_region", "b_preset", "b_region", "k", "column", "n",
                                              "a_mean", "b_mean", "diff_mean", "diff_ci95", "t", "p_value",
                                              "significant"};
static const char *const attack_cmp_md_cols[] = {"a_preset", "a_region", "b_preset", "b_region", "k", "column", "n",
                                                 "diff (b - a)", "95% CI", "t", "p"};
#define ACMP_NCOLS ((int)(sizeof attack_cmp_cols / sizeof attack_cmp_cols[0]))
#define ACMP_MD_NCOLS ((int)(sizeof attack_cmp_md_cols / sizeof attack_cmp_md_cols[0]))
static const unsigned char attack_cmp_text[ACMP_NCOLS] = {1, 1, 1, 1, 0, 1};

/* Comparison q on rate col into v and vals; 0 when fewer than 2 seeds pair up. */
static int attack_cmp_row(const sweep_run *runs, const sweep_opts *o, int ndone, attack_pair q, int col, int md,
                          char v[][SWEEP_CELL], const char **vals)
{
    double xa[SWEEP_SEEDS_MAX], xb[SWEEP_SEEDS_MAX];
    int ma = attack_group_values(runs, o, q.pa, ndone, q.ja, col, xa);
    int mb = attack_group_values(runs, o, q.pb, ndone, q.jb, col, xb);
    if (!paired_cells(xa, ma, xb, mb, md, v + 6)) return 0;
    const sweep_run *a = &runs[q.pa * sweep_nseeds(o)], *b = &runs[q.pb * sweep_nseeds(o)];
    snprintf(v[4], SWEEP_CELL, "%d", a->rows[q.ja].k);
    for (int c = 0; c < (md ? ACMP_MD_NCOLS : ACMP_NCOLS); c++) vals[c] = v[c][0] ? v[c] : NULL;
    vals[0] = a->name;
    vals[1] = ssm_attack_region_name(a->rows[q.ja].region);
    vals[2] = b->name;
    vals[3] = ssm_attack_region_name(b->rows[q.jb].region);
    vals[5] = attack_rates[col];
    return 1;
}

static ssm_status attack_cmp_table(sweep_table *t, const sweep_run *runs, const sweep_opts *o, int ndone, int md)
{
    int nc = md ? ACMP_MD_NCOLS : ACMP_NCOLS, rows = 0;
    attack_pair *q = malloc(sizeof *q * (size_t)(o->nfiles + o->pairs.n) * ATTACK_EVAL_MAX_ROWS);
    int nq = q ? attack_pairs_list(runs, o, q) : 0;
    ssm_status st = q ? table_build(t, md ? attack_cmp_md_cols : attack_cmp_cols, nc, attack_cmp_text, 2 * nq)
                      : ssm_fail(SSM_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < nq; i++)
        for (int c = AR_ATTACKED; c <= AR_SUCCESS; c++) {
            size_t at = (size_t)rows * nc;
            rows += attack_cmp_row(runs, o, ndone, q[i], c, md, t->v + at, t->vals + at);
        }
    if (!st) t->nrows = rows;
    free(q);
    return st;
}

static const char attack_cmp_note[] =
    "A region row compares the attacked region (b) with the first-region control (a) of the same preset and k; "
    "a preset row compares --compare B with A at the same k and region.";

/* With --seeds and --attack: attack_runs.csv/.md, attack.csv/.md (with the
 * comparisons) and attack_compare.csv of the first ndone runs; no files
 * before a classifier has run. */
static ssm_status write_attack_seed(const sweep_opts *o, const sweep_run *runs, int ndone)
{
    sweep_table t = {0}, m = {0}, c = {0}, cm = {0};
    ssm_status st = attack_table(&t, runs, ndone, &o->ae, 1);
    int any = !st && t.nrows;
    if (any) st = table_save(&t, o->out, "attack_runs");
    table_free(&t);
    if (st || !any) return st;
    st = attack_agg_table(&t, runs, o, ndone, 0);
    if (!st) st = table_save_csv(&t, o->out, "attack");
    table_free(&t);
    if (!st) st = attack_agg_table(&m, runs, o, ndone, 1);
    if (!st) st = attack_cmp_table(&c, runs, o, ndone, 0);
    if (!st) st = attack_cmp_table(&cm, runs, o, ndone, 1);
    if (!st && c.nrows) st = table_save_csv(&c, o->out, "attack_compare");
    if (!st) st = table_save_md(&m, cm.nrows ? &cm : NULL, attack_cmp_note, o->out, "attack");
    table_free(&m);
    table_free(&c);
    table_free(&cm);
    return st;
}

/* One bar: a preset's value (the mean over its seeds), and the ends of its
 * error bar, mean -+ the 95% CI half-width with 2 seeds or more (NAN: none). */
typedef struct {
    double mean, lo, hi;
} sweep_bar;

static void bar_of(const sweep_run *runs, const sweep_opts *o, int p, int ndone, int col, sweep_bar *b)
{
    double x[SWEEP_SEEDS_MAX];
    int m = group_finished(runs, o, p, ndone, col, x);
    sweep_stats_summary s;
    sweep_stats_summarize(x, m, &s);
    *b = (sweep_bar){m == 1 ? x[0] : s.mean, NAN, NAN};   /* one run: its value, inf included */
    if (isfinite(s.ci95)) {
        b->lo = s.mean - s.ci95;
        b->hi = s.mean + s.ci95;
    }
}

/* DIR/figures/COLUMN.svg (.png, ...) for each column with a number: a bar
 * per preset with a run among the first ndone. */
static ssm_status write_figures(const sweep_opts *o, const sweep_run *runs, int ndone)
{
    char dir[PATH_MAX], title[96];
    int n = presets_done(o, ndone);
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
            bar_of(runs, o, i, ndone, figure_cols[c].col, &b);
            v[i] = b.mean;
            v[n + i] = b.lo;
            v[2 * n + i] = b.hi;
            names[i] = runs[i * sweep_nseeds(o)].name;
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
    if (o->seeds.n) {
        ssm_status st = write_seed_results(o, runs, n);
        if (!st) st = write_figures(o, runs, n);
        return st || !o->attack ? st : write_attack_seed(o, runs, n);
    }
    sweep_table t;
    ssm_status st = results_table(&t, runs, n);
    if (!st) st = table_save(&t, o->out, "results");
    if (!st) st = write_figures(o, runs, n);
    table_free(&t);
    if (st || !o->attack) return st;
    st = attack_table(&t, runs, n, &o->ae, 0);
    if (!st && t.nrows) st = table_save(&t, o->out, "attack");   /* no rows yet: no file yet */
    table_free(&t);
    return st;
}

/* ---- the sweep ------------------------------------------------------- */

/* Train and measure run i of n; returns an exit code (EX_OK on success). */
static int sweep_one(sweep_run *r, const sweep_opts *o, int i, int n)
{
    char log[PATH_MAX], msg[1024];
    fprintf(stderr, "# sweep [%d/%d] %s: training (%s)\n", i + 1, n, r->label, r->file);
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
            i + 1, n, r->label, r->val_loss, ssm_verdict_name(r->verdict), r->mean_slope,
            ssm_verdict_name(r->mix_verdict), r->mix_slope, decay, r->cos_last, ssm_now_s() - tm, ssm_now_s() - t);
    return EX_OK;
}

static volatile sig_atomic_t interrupted;
static int sweep_report(const sweep_run *runs, const sweep_opts *o, int total);

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
    int code = EX_OK, done = 0, total = o->nfiles * sweep_nseeds(o);
    for (; done < total && !code; done++) {
        code = sweep_one(&runs[done], o, done, total);
        ssm_status st = code ? SSM_OK : write_results(o, runs, done + 1);
        if (st) code = cli_report(st);
        if (!code && interrupted) {
            fprintf(stderr, "ssmlab: sweep: interrupted after %s: results so far in %s\n", runs[done].file, o->out);
            code = 128 + SIGINT;
        }
    }
    sigaction(SIGINT, &old, NULL);
    return code ? code : sweep_report(runs, o, total);
}

/* The results of all total runs on stdout, and where the files are. */
static int sweep_report(const sweep_run *runs, const sweep_opts *o, int total)
{
    sweep_table t;
    ssm_status st = o->seeds.n ? agg_table(&t, runs, o, total, 0) : results_table(&t, runs, total);
    if (st) return cli_report(st);
    table_write(&t, stdout, o->format);
    table_free(&t);
    fprintf(stderr, "# sweep: results in %s/results.csv and %s/results.md%s%s, charts in %s/figures\n", o->out,
            o->out, !o->attack ? "" : o->seeds.n ? ", attacks in attack.csv and attack.md (runs in attack_runs.csv)"
                                                     : ", attacks in attack.csv and attack.md",
            o->seeds.n ? (o->pairs.n ? ", runs in runs.csv, comparisons in compare.csv" : ", runs in runs.csv") : "",
            o->out);
    return EX_OK;
}

/* ---- over the ranks of an MPI job ---------------------------------------- */

typedef struct {
    sweep_run *runs;
    const sweep_opts *o;
    int total, written;   /* runs; the finished ones before the first unfinished, written */
    int code;             /* the first failed run's exit code */
    ssm_status st;        /* a table that could not be written */
} sweep_dist_ctx;

/* In a forked child: train and measure run i into result. */
static int dist_run(void *ctx, int i, void *result)
{
    const sweep_dist_ctx *c = ctx;
    sweep_run *r = result;
    *r = c->runs[i];
    return sweep_one(r, c->o, i, c->total);
}

/* Rank 0: run i ended on rank; its numbers, or its failure, go into the
 * tables, rewritten for the finished runs before the first unfinished. */
static void dist_done(void *ctx, int i, int code, const void *result, int rank)
{
    sweep_dist_ctx *c = ctx;
    sweep_run *r = &c->runs[i];
    const sweep_run *got = result;
    if (!code && (!got->done || strcmp(got->rc.out, r->rc.out))) code = EX_SOFTWARE;
    if (!code) {
        const char *file = r->file;
        *r = *got;
        r->file = file;
    } else {
        char why[48];
        if (code == SWEEP_DIST_LOST)
            snprintf(why, sizeof why, "the rank stopped answering");
        else
            snprintf(why, sizeof why, code > 128 ? "killed by signal %d" : "exit %d", code > 128 ? code - 128 : code);
        fprintf(stderr, "ssmlab: sweep: %s: the run failed on rank %d (%s); its rows say failed, the sweep goes on\n",
                r->label, rank, why);
        r->failed = code;
        if (!c->code) c->code = code == SWEEP_DIST_LOST ? EX_UNAVAILABLE : code;
    }
    int n = c->written;
    while (n < c->total && (c->runs[n].done || c->runs[n].failed)) n++;
    if (n > c->written && !c->st) c->st = write_results(c->o, c->runs, n);
    c->written = n;
}

/* The sweep over several ranks: rank 0 writes the tables, and exits with
 * the first failed run's code after writing them. */
static int sweep_all_dist(sweep_run *runs, const sweep_opts *o)
{
    sweep_dist_ctx c = {runs, o, o->nfiles * sweep_nseeds(o), 0, 0, SSM_OK};
    if (!ssm_dist_rank()) fprintf(stderr, "# sweep: %d runs over %d ranks\n", c.total, ssm_dist_size());
    int code = sweep_dist_runs(c.total, sizeof *runs, dist_run, dist_done, &c);
    if (ssm_dist_rank()) return code;
    if (c.st) return cli_report(c.st);
    if (code) {
        fprintf(stderr, "ssmlab: sweep: interrupted: results so far in %s\n", o->out);
        return code;
    }
    int failed = 0;
    for (int i = 0; i < c.total; i++) failed += runs[i].failed != 0;
    int rc = sweep_report(runs, o, c.total);
    if (failed) fprintf(stderr, "ssmlab: sweep: %d of %d runs failed (their rows say failed)\n", failed, c.total);
    return rc ? rc : c.code;
}

int cli_sweep(int argc, char **argv)
{
    ssm_status dst = ssm_dist_init(&argc, &argv);
    if (dst) return cli_report(dst);
    sweep_opts o;
    int code = parse_args(&o, argc, argv);
    if (code) {
        ssm_dist_finalize();
        return code == CLI_OPTS_HELP ? EX_OK : code;
    }
    sweep_run *runs = calloc((size_t)o.nfiles * sweep_nseeds(&o), sizeof *runs);
    ssm_status st = runs ? presets_load(runs, &o) : ssm_fail(SSM_ERR_NOMEM, "out of memory");
    if (!st) st = pairs_resolve(&o, runs);
    if (!st) st = ssm_dir_create(o.out);
    if (!st) {
        cli_threads_apply(runs[0].rc.threads);
        cli_log_header("sweep", 0);
    }
    code = st ? cli_report(st) : ssm_dist_size() > 1 ? sweep_all_dist(runs, &o) : sweep_all(runs, &o);
    free(runs);
    cli_args_free(&o.args);
    ssm_dist_finalize();
    return code;
}
