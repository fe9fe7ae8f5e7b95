/* cli.h — what the ssmlab subcommands share: the entry point of each
 * subcommand, error reporting with sysexits codes, the run header every
 * command logs, rows of metrics as CSV or JSONL on stdout or in one file
 * per table, and figures written in several formats. */
#ifndef SSM_CLI_H
#define SSM_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "cli/opts.h"
#include "engine/model.h"
#include "engine/safetensors.h"
#include "engine/status.h"
#include "figures/figure.h"
#include "scenarios/run_config.h"

/* Subcommands: each returns a sysexits.h code. */
int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_tui(int argc, char **argv);
int cli_generate(int argc, char **argv);
int cli_sweep(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_attack(int argc, char **argv);
int cli_plot(int argc, char **argv);

/* Print "ssmlab: <last error>" to stderr and return the exit code of st. */
int cli_report(ssm_status st);

/* Print "ssmlab: <message>" to stderr and return EX_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Resolve a thread count (0 = all cores), apply it, and return it. */
int cli_threads_apply(int threads);

/* Log version, seed and thread counts and the BLAS build to stderr. */
void cli_log_header(const char *command, long seed);

/* Describe a loaded model on stderr: head, shape, parameter count, and its
 * scenario, polarize and reorder settings. */
void cli_log_model(const char *dir, const ssm_model *m);

/* Metrics rows.  Columns are fixed at begin; each row gives one value per
 * column as text (NULL = empty).  CSV writes a header before the first row
 * and quotes a field holding a comma, a quote, CR or LF as RFC 4180 says
 * (in double quotes, quotes doubled).  JSONL writes one object per row,
 * without the empty fields: JSON numbers bare, other text as JSON strings
 * (quote, backslash and control characters escaped).  A column marked in
 * text is always a string (a token "7" stays "7"). */
typedef struct {
    FILE *f;
    int jsonl;
    int ncols;
    const char *const *cols;
    const unsigned char *text;   /* (ncols) 1: a text column; NULL (begin's default): none */
    int header_done;
} cli_table;

void cli_table_begin(cli_table *t, FILE *f, const char *format, const char *const *cols, int ncols);
void cli_table_row(cli_table *t, const char *const *values);

/* Several named tables in a row: on stdout (in CSV an empty line between
 * two tables), or, with dir, each in its own file DIR/NAME.csv (.jsonl for
 * JSONL), written to a temporary file and renamed when the table ends. */
typedef struct {
    const char *format;   /* "csv" or "jsonl" */
    const char *dir;      /* NULL: stdout */
    int tables;           /* tables begun */
    int open;             /* a file of dir is being written (af) */
    ssm_atomic_file af;
} cli_tables;

/* End the table before (cli_tables_end) and begin table name with its
 * columns in t. */
ssm_status cli_tables_begin(cli_tables *ts, cli_table *t, const char *name, const char *const *cols, int ncols);

/* With st == SSM_OK, put the open file in place; otherwise remove it.
 * Returns st, or the error of putting the file in place. */
ssm_status cli_tables_end(cli_tables *ts, ssm_status st);

/* Read a continuous-input model's batch from X.npy (--inputs of eval and
 * inspect): float32 (B, L, I), or (L, I) for one sequence, I = m's d_input.
 * *x is malloc'd (B * L * I floats); SSM_ERR_DATA naming the file when the
 * shape does not fit. */
ssm_status cli_inputs_read(const ssm_model *m, const char *path, float **x, int *B, int *L);

/* Create directory dir (and its parents) for option ("--figures"):
 * SSM_ERR_CANTCREAT naming the option, dir and the reason when it cannot. */
ssm_status cli_dir_prepare(const char *option, const char *dir);

/* Figures of a command: each is written as DIR/NAME.EXT in every format of
 * formats (bit 1 << fig_format). */
typedef struct {
    const char *dir;      /* NULL: no figures */
    unsigned formats;
} cli_figures;

#define CLI_FIGURE_FORMATS_DEFAULT ((1u << FIG_SVG) | (1u << FIG_PNG))

ssm_status cli_figures_write(const cli_figures *f, const char *name, const fig_page *page);

/* --figure-format svg,png,pdf: a comma-separated list into an unsigned
 * set of formats (a CLI_OPT_CUSTOM parser). */
int cli_figure_formats_parse(const char *arg, void *dst);

/* The choices of --format for the commands that write tables. */
extern const char *const cli_table_formats[];   /* "csv", "jsonl", NULL */

/* Options several commands share, as cli_opt table rows for the field of
 * struct `type`: --model DIR (a const char *, short letter `letter` or
 * 0), --threads N (an int, 0 = all cores) and --format csv|jsonl (a const
 * char *). */
#define CLI_OPT_MODEL(type, field, letter)                                                      \
    {"model", letter, CLI_OPT_STRING, .metavar = "DIR", .help = "the checkpoint directory (required)", \
     .offset = offsetof(type, field)}
#define CLI_OPT_THREADS(type, field)                                                            \
    {"threads", 0, CLI_OPT_INT, 0, 4096, .metavar = "N", .help = "threads (0: all cores)",      \
     .offset = offsetof(type, field)}
#define CLI_OPT_FORMAT(type, field)                                                             \
    {"format", 0, CLI_OPT_CHOICE, .help = "rows as CSV (default) or JSON lines",                \
     .offset = offsetof(type, field), .choices = cli_table_formats}
/* --figure-format LIST into an unsigned (set CLI_FIGURE_FORMATS_DEFAULT first). */
#define CLI_OPT_FIGURE_FORMAT(type, field)                                                      \
    {"figure-format", 0, CLI_OPT_CUSTOM, .metavar = "LIST",                                     \
     .help = "figure files: svg, png, pdf, comma-separated (default svg,png)",                  \
     .offset = offsetof(type, field), .what = "a list of svg, png and pdf",                     \
     .parse = cli_figure_formats_parse}

/* Operands of train, sweep and tui: moves those without '=' (config files)
 * before the key=value overrides, keeping the order of each; returns how
 * many files there are. */
int cli_config_split(char **args, int nargs);

/* The run configuration of train, sweep and tui: the defaults, then the
 * config file (NULL: none), then the key=value overrides in order.  Not
 * checked (run_config_check): the caller may set more keys first. */
ssm_status cli_config_build(run_config *rc, const char *file, char *const *kv, int nkv);

#endif
