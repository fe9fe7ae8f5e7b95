/* progress.h — the one-line progress of ssmlab train and eval on standard
 * error, drawn only when standard error is a terminal (never into a file or
 * a pipe): "LABEL done/total", what the caller adds (loss, tokens/s), the
 * time elapsed and the estimated time left, redrawn in place at most ten
 * times a second and cut to the terminal's width. */
#ifndef SSM_CLI_PROGRESS_H
#define SSM_CLI_PROGRESS_H

#include "scenarios/task.h"

typedef struct {
    int on;          /* standard error is a terminal */
    double t0;       /* when it began */
    long first;      /* done at the start (a resumed run's step): the ETA's rate counts from here */
    double drawn_at; /* when the line was last drawn */
    int width;       /* characters on the terminal now, 0 when the line is blank */
} cli_progress;

/* Start timing; first is how much was done before (0, or a resumed step). */
void cli_progress_begin(cli_progress *p, long first);

/* "LABEL done/total  EXTRA  elapsed M:SS  ETA M:SS" (no ETA before the
 * first unit of work; extra may be NULL).  Skipped when drawn less than
 * 0.1 s ago, unless done == total. */
void cli_progress_draw(cli_progress *p, const char *label, long done, long total, const char *extra);

/* Blank the line, before anything else is written to the terminal. */
void cli_progress_clear(cli_progress *p);

/* Evaluation batches of batch_tokens tokens each. */
typedef struct {
    cli_progress p;
    long batch_tokens;
} cli_batch_progress;

/* A task_progress_fn (scenarios/task.h) for ctx a cli_batch_progress:
 * "batch done/total  loss L  N tok/s  elapsed  ETA". */
void cli_progress_batch(void *ctx, long done, long total, double loss);

/* task_validate with that line, blanked at the end. */
ssm_status cli_progress_validate(task_data *d, ssm_model *m, int max_batches, task_metrics *out);

#endif
