/* history.h — a run's history, the file OUT/train.csv that stays with the
 * checkpoint: one CSV row per logged training step and per validation,
 * validation rows carrying the model's dynamics (task_dynamics.h), each
 * row appended and flushed as it happens; a resumed run continues the file
 * without the rows of the steps it redoes.  And the reader that loads a
 * history into columns by name, for ssmlab sweep, the lab and plots.
 * The columns are documented in ssmlab(1) FILES. */
#ifndef SSM_HISTORY_H
#define SSM_HISTORY_H

#include <stdio.h>

#include "engine/status.h"
#include "scenarios/run_config.h"
#include "scenarios/task_dynamics.h"

#define HISTORY_FILE "train.csv"

/* The columns, in order: step, split, loss, acc, lr, grad_norm,
 * tokens_per_s, elapsed_s, bpb, then the dynamics of validation rows
 * (eig_pos, eig_neg, eig_complex, their per-layer lists, mean_slope,
 * verdict, mix_slope, mix_verdict, decay_rate, half_life, fit_r2, decay,
 * cos_last, dev_last, dev_ratio, dynamics_s).  *n gets their number. */
const char *const *history_columns(int *n);

/* One row.  A NAN number is an empty cell. */
typedef struct {
    long step;
    int val;                 /* 0: a training row, 1: a validation row */
    double loss;             /* mean cross-entropy, nats */
    double acc;              /* classifier or MQAR accuracy; NAN for a language model */
    double bpb;              /* language model: loss / ln 2; NAN for the others */
    double lr, grad_norm, tokens_per_s;   /* training rows; NAN on validation rows */
    double elapsed_s;        /* seconds since the process started training */
    const task_dynamics *dyn;   /* validation rows: the dynamics; NULL leaves them empty */
} history_row;

/* The row of step `step` for a run on d: loss, accuracy for a classifier
 * or MQAR (else NAN), bits per byte for a language model (else NAN), the
 * seconds since training started; the training columns NAN. */
history_row history_row_make(const task_data *d, long step, int val, double loss, double acc,
                             double elapsed_s);

/* A training row of step `step` from task_train_step's stats, with the
 * tokens per second of a step that took `seconds`. */
history_row history_row_train(const task_data *d, long step, const task_step_stats *ts, double seconds,
                              double elapsed_s);

typedef struct {
    FILE *f;
    char path[RUN_PATH_MAX + 16];
} history_writer;

/* Open out_dir/train.csv (out_dir must exist) and write its header.  With
 * resume_dir (not NULL or ""), first copy the rows of resume_dir/train.csv
 * (which may be the same file) whose step is at most resume_step, column
 * by column by name, so a resumed run's history has each step once; no
 * such file starts a new history.  Errors name the file. */
ssm_status history_open(history_writer *w, const char *out_dir, const char *resume_dir, long resume_step);

/* Append one row and flush it. */
ssm_status history_append(history_writer *w, const history_row *r);

/* Close the file (w may be unopened). */
ssm_status history_close(history_writer *w);

/* ---- reading ------------------------------------------------------------ */

/* A CSV history as text cells.  Any header is read: the columns are found
 * by name, so files with fewer or more columns load too. */
typedef struct {
    int n_rows, n_cols;
    char **names;    /* (n_cols) the header's column names */
    char **cells;    /* (n_rows * n_cols) cell text, "" when empty */
    char **lines;    /* (n_lines) the text read, which names and cells point into */
    int n_lines;
} history;

/* Load dir/train.csv.  SSM_ERR_NOINPUT when there is none; SSM_ERR_DATA,
 * naming the file and line, for a row whose field count is not the
 * header's. */
ssm_status history_load(history *h, const char *dir);

/* Load any CSV file with a header, RFC 4180 quoting and CRLF or LF line
 * ends (the one reader: history_load and ssmlab plot use it); blank lines
 * are skipped.  ragged 0: a row with another field count than the header
 * is SSM_ERR_DATA; ragged 1: missing fields are empty cells and extra
 * ones are ignored.  At most HISTORY_MAX_COLS fields a record. */
#define HISTORY_MAX_COLS 256
ssm_status history_load_file(history *h, const char *path, int ragged);
void history_free(history *h);

/* The column's index, or -1 when the header lacks it. */
int history_column(const history *h, const char *name);

/* Row `row`, column `col`: its text ("" when col < 0), and as a number
 * (NAN when empty or not a number; "inf" is a number). */
const char *history_cell(const history *h, int row, int col);
double history_value(const history *h, int row, int col);

/* The curve of one column over the rows of one split ("train" or "val"):
 * steps and values (n_rows each, or fewer) get the rows' step and value,
 * in file order.  Returns how many, or -1 when there is no such column. */
int history_series(const history *h, const char *split, const char *column, double *steps, double *values);

#endif
