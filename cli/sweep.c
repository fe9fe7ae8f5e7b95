/* sweep.c — `ssmlab sweep FILE... [--out DIR] [--format csv|jsonl]
 * [key=value ...]`: trains each preset in turn by running `ssmlab train` as
 * a child process (its CSV and log kept in DIR/<preset>/), then loads each
 * trained model, measures the token-norm verdict of SPEC §2 on its first
 * validation batch, and writes one results table to DIR/results.csv,
 * DIR/results.md and stdout. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "cli.h"
#include "config.h"
#include "dynamics.h"
#include "safetensors.h"
#include "task.h"

#define SWEEP_MAX_PRESETS 256
#define SWEEP_NAME_MAX 128

typedef struct {
    const char *out, *format;
    const char *files[SWEEP_MAX_PRESETS];
    int nfiles;
    char **overrides;   /* (nover) key=value arguments, in order */
    int nover;
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
    float mean_slope;
    int verdict;
} sweep_run;

static const char *const columns[] = {"preset", "scenario", "polarize", "reorder", "task",
                                      "params", "steps", "val_loss", "val_ppl", "val_acc",
                                      "unigram_loss", "train_s", "mean_slope", "verdict"};
#define NCOLS ((int)(sizeof columns / sizeof columns[0]))

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- arguments and presets ------------------------------------------- */

static int parse_args(sweep_opts *o, int argc, char **argv)
{
    *o = (sweep_opts){.out = "runs/sweep", .format = "csv", .overrides = argv, .nover = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--out") || !strcmp(a, "--format")) {
            if (i + 1 >= argc) return cli_usage_error("sweep: %s needs a value", a);
            *(!strcmp(a, "--out") ? &o->out : &o->format) = argv[++i];
        } else if (!strncmp(a, "--out=", 6)) {
            o->out = a + 6;
        } else if (!strncmp(a, "--format=", 9)) {
            o->format = a + 9;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("sweep: unknown option '%s'", a);
        } else if (strchr(a, '=')) {
            if (!strncmp(a, "out=", 4) || !strncmp(a, "format=", 7))
                return cli_usage_error("sweep: '%s': the sweep sets out and format (use --out, --format)", a);
            o->overrides[o->nover++] = argv[i];   /* compacts argv in place: nover <= i */
        } else {
            if (o->nfiles == SWEEP_MAX_PRESETS) return cli_usage_error("sweep: more than %d presets", SWEEP_MAX_PRESETS);
            o->files[o->nfiles++] = a;
        }
    }
    if (!o->nfiles) return cli_usage_error("sweep: no preset files given");
    if (!cli_format_ok(o->format)) return cli_usage_error("sweep: --format must be csv or jsonl");
    if (!*o->out) return cli_usage_error("sweep: --out must not be empty");
    return EX_OK;
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

/* Read a preset, apply the overrides and out=DIR/<name>, and check it. */
static ssm_status preset_load(sweep_run *r, const sweep_opts *o, const char *file)
{
    memset(r, 0, sizeof *r);
    r->file = file;
    preset_name(file, r->name);
    run_config_default(&r->rc);
    ssm_status st = run_config_read(&r->rc, file);   /* its errors name the file */
    if (st) return st;
    for (int i = 0; !st && i < o->nover; i++) st = run_config_set(&r->rc, o->overrides[i], "command line");
    if (snprintf(r->rc.out, sizeof r->rc.out, "%s/%s", o->out, r->name) >= (int)sizeof r->rc.out)
        return ssm_fail(SSM_ERR_CONFIG, "%s: output path too long", file);
    snprintf(r->rc.format, sizeof r->rc.format, "csv");
    if (!st) st = run_config_check(&r->rc);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ssm_last_error());
        return ssm_fail(st, "%s: %s", file, msg);
    }
    r->val_loss = r->val_acc = r->unigram = r->train_s = NAN;
    return SSM_OK;
}

static ssm_status presets_load(sweep_run *runs, const sweep_opts *o)
{
    for (int i = 0; i < o->nfiles; i++) {
        ssm_status st = preset_load(&runs[i], o, o->files[i]);
        if (st) return st;
        for (int j = 0; j < i; j++)
            if (!strcmp(runs[j].name, runs[i].name))
                return ssm_fail(SSM_ERR_USAGE, "%s and %s: two presets named '%s'", runs[j].file,
                                runs[i].file, runs[i].name);
    }
    return SSM_OK;
}

/* ---- running `ssmlab train` ------------------------------------------ */

static ssm_status mkdir_p(const char *dir)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: path too long", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST)
            return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST)
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot create: %s", buf, strerror(errno));
    return SSM_OK;
}

/* In the child: stdout to csv, stderr to log, then exec train.  Never
 * returns; on failure the child exits 127 (_exit, no atexit handlers). */
static void child_exec(const char *self, char **args, const char *csv, const char *log)
{
    FILE *o = freopen(csv, "w", stdout);
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
    char self[PATH_MAX], csv[PATH_MAX], log[PATH_MAX], outkv[RUN_PATH_MAX + 8];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) return ssm_fail(SSM_ERR_SOFTWARE, "/proc/self/exe: cannot find the ssmlab binary: %s", strerror(errno));
    self[n] = 0;
    snprintf(csv, sizeof csv, "%s/train.csv", r->rc.out);
    snprintf(log, sizeof log, "%s/train.log", r->rc.out);
    char **args = train_args(r, o, outkv, sizeof outkv);
    if (!args) return ssm_fail(SSM_ERR_NOMEM, "out of memory");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) child_exec(self, args, csv, log);
    free(args);
    if (pid < 0) return ssm_fail(SSM_ERR_SOFTWARE, "cannot fork: %s", strerror(errno));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return ssm_fail(SSM_ERR_SOFTWARE, "waitpid: %s", strerror(errno));
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return SSM_OK;
}

/* ---- reading the run's CSV ------------------------------------------- */

/* Index of column name in a CSV header line, or -1. */
static int csv_col(const char *header, const char *name)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", header);
    buf[strcspn(buf, "\r\n")] = 0;
    int i = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save), i++)
        if (!strcmp(t, name)) return i;
    return -1;
}

/* Field i of a CSV line (no quoting: ssmlab's rows have none), as a number. */
static double csv_num(const char *line, int i)
{
    if (i < 0) return NAN;
    for (; i > 0 && line; i--) line = strchr(line, ',') ? strchr(line, ',') + 1 : NULL;
    if (!line || *line == ',' || *line == '\n' || !*line) return NAN;
    return strtod(line, NULL);
}

/* Last val row's loss (and acc), last train row's elapsed_s. */
static ssm_status read_train_csv(sweep_run *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open: %s", path, strerror(errno));
    char line[1024];
    int cl = -1, ca = -1, ce = -1, cs = -1;
    if (fgets(line, sizeof line, f)) {
        cl = csv_col(line, "loss"); ca = csv_col(line, "acc");
        ce = csv_col(line, "elapsed_s"); cs = csv_col(line, "split");
    }
    while (cl >= 0 && cs == 1 && fgets(line, sizeof line, f)) {
        const char *split = strchr(line, ',');
        if (split && !strncmp(split, ",val,", 5)) { r->val_loss = csv_num(line, cl); r->val_acc = csv_num(line, ca); }
        if (split && !strncmp(split, ",train,", 7)) r->train_s = csv_num(line, ce);
    }
    fclose(f);
    if (cl < 0 || cs != 1 || isnan(r->val_loss))
        return ssm_fail(SSM_ERR_DATA, "%s: no validation row in the training CSV", path);
    return SSM_OK;
}

/* ---- measuring the trained model --------------------------------------- */

/* Parameters, steps, unigram baseline (lm), and the token-norm verdict on
 * the first validation batch. */
static ssm_status measure(sweep_run *r)
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
    if (!st && !d.classify) st = ssm_text_unigram(&d.text, &nats, &bits);
    r->unigram = nats;
    if (!st && !task_first_val_batch(&d)) st = ssm_fail(SSM_ERR_DATA, "%s: empty validation split", r->rc.data);
    if (!st) st = ssm_model_forward(&m, d.batch);
    ssm_norms norms;
    if (!st && !(st = ssm_dynamics_norms(&m, &norms))) {
        r->mean_slope = norms.mean_slope;
        r->verdict = norms.verdict;
        ssm_norms_free(&norms);
    }
    task_data_free(&d);
    ssm_model_free(&m);
    return st;
}

/* ---- the results table ----------------------------------------------- */

static void fmt(char *buf, const char *f, double v)
{
    if (isnan(v)) buf[0] = 0;
    else snprintf(buf, 32, f, v);
}

/* One run's cells; v is (NCOLS, 32) storage, vals the row (NULL = empty). */
static void run_cells(const sweep_run *r, char v[][32], const char **vals)
{
    int cls = r->rc.task == RUN_TASK_CLASSIFY;
    snprintf(v[5], 32, "%zu", r->params);
    snprintf(v[6], 32, "%ld", r->steps);
    fmt(v[7], "%.4f", r->val_loss);
    fmt(v[8], "%.3f", cls ? NAN : exp(r->val_loss));
    fmt(v[9], "%.4f", cls ? r->val_acc : NAN);
    fmt(v[10], "%.4f", r->unigram);
    fmt(v[11], "%.2f", r->train_s);
    fmt(v[12], "%.5f", r->mean_slope);
    const char *text[] = {r->name, ssm_scenario_name(r->rc.model.scenario), ssm_polarize_name(r->rc.model.polarize),
                          ssm_reorder_name(r->rc.model.reorder), run_task_name(r->rc.task)};
    for (int c = 0; c < NCOLS; c++) vals[c] = c < 5 ? text[c] : v[c][0] ? v[c] : NULL;
    vals[13] = ssm_verdict_name(r->verdict);
}

static void write_table(FILE *f, const char *format, const sweep_run *runs, int n)
{
    cli_table t;
    cli_table_begin(&t, f, format, columns, NCOLS);
    char v[NCOLS][32];
    const char *vals[NCOLS];
    for (int i = 0; i < n; i++) {
        run_cells(&runs[i], v, vals);
        cli_table_row(&t, vals);
    }
}

static void write_markdown(FILE *f, const sweep_run *runs, int n)
{
    for (int c = 0; c < NCOLS; c++) fprintf(f, "| %s ", columns[c]);
    fprintf(f, "|\n");
    for (int c = 0; c < NCOLS; c++) fprintf(f, "|%s", c < 5 || c == 13 ? "---" : "--:");
    fprintf(f, "|\n");
    char v[NCOLS][32];
    const char *vals[NCOLS];
    for (int i = 0; i < n; i++) {
        run_cells(&runs[i], v, vals);
        for (int c = 0; c < NCOLS; c++) fprintf(f, "| %s ", vals[c] ? vals[c] : "-");
        fprintf(f, "|\n");
    }
}

/* DIR/results.csv and DIR/results.md, each written atomically. */
static ssm_status write_results(const char *dir, const sweep_run *runs, int n)
{
    char path[PATH_MAX];
    ssm_atomic_file af;
    ssm_status st;
    snprintf(path, sizeof path, "%s/results.csv", dir);
    if ((st = ssm_atomic_file_begin(&af, path))) return st;
    write_table(af.f, "csv", runs, n);
    if ((st = ssm_atomic_file_commit(&af))) return st;
    snprintf(path, sizeof path, "%s/results.md", dir);
    if ((st = ssm_atomic_file_begin(&af, path))) return st;
    write_markdown(af.f, runs, n);
    return ssm_atomic_file_commit(&af);
}

/* ---- the sweep ------------------------------------------------------- */

/* Train and measure run i of n; returns an exit code (EX_OK on success). */
static int sweep_one(sweep_run *r, const sweep_opts *o, int i, int n)
{
    char csv[PATH_MAX], log[PATH_MAX], msg[1024];
    fprintf(stderr, "# sweep [%d/%d] %s: training (%s)\n", i + 1, n, r->name, r->file);
    double t = now_s();
    int code = 0;
    ssm_status st = mkdir_p(r->rc.out);
    if (!st) st = train_child(r, o, &code);
    if (st) return cli_report(st);
    snprintf(log, sizeof log, "%s/train.log", r->rc.out);
    if (code) {
        last_error_line(log, msg, sizeof msg);
        fprintf(stderr, "ssmlab: sweep: %s: training failed (exit %d): %s\n", r->file, code, msg);
        return code;
    }
    snprintf(csv, sizeof csv, "%s/train.csv", r->rc.out);
    if ((st = read_train_csv(r, csv)) || (st = measure(r))) return cli_report(st);
    r->done = 1;
    fprintf(stderr, "# sweep [%d/%d] %s: val loss %.4f, %s (mean log-norm slope %.5f), %.1f s\n", i + 1, n,
            r->name, r->val_loss, ssm_verdict_name(r->verdict), r->mean_slope, now_s() - t);
    return EX_OK;
}

/* SIGINT reaches the child (same process group), which saves and exits
 * 130; the sweep itself ignores it and stops after that run. */
static int sweep_all(sweep_run *runs, const sweep_opts *o)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGINT, &ign, &old);
    int code = EX_OK, done = 0;
    for (; done < o->nfiles && !code; done++) {
        code = sweep_one(&runs[done], o, done, o->nfiles);
        if (!code) {
            ssm_status st = write_results(o->out, runs, done + 1);
            if (st) code = cli_report(st);
        }
    }
    sigaction(SIGINT, &old, NULL);
    if (!code) write_table(stdout, o->format, runs, o->nfiles);
    if (!code) fprintf(stderr, "# sweep: results in %s/results.csv and %s/results.md\n", o->out, o->out);
    return code;
}

int cli_sweep(int argc, char **argv)
{
    sweep_opts o;
    int code = parse_args(&o, argc, argv);
    if (code) return code;
    sweep_run *runs = calloc((size_t)o.nfiles, sizeof *runs);
    if (!runs) return cli_report(ssm_fail(SSM_ERR_NOMEM, "out of memory"));
    ssm_status st = presets_load(runs, &o);
    if (!st) st = mkdir_p(o.out);
    if (st) {
        free(runs);
        return cli_report(st);
    }
    cli_threads_apply(runs[0].rc.threads);
    cli_log_header("sweep", 0);
    code = sweep_all(runs, &o);
    free(runs);
    return code;
}
