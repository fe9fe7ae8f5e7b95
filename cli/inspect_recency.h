/* inspect_recency.h — the recency and over-smoothing tables of `ssmlab
 * inspect` (ssmlab-math(7) RECENCY): --attention [--layer L] [--channel E|mean],
 * --influence [--targets N] [--probes K] and --smoothing.  The columns are
 * documented in ssmlab-inspect(1). */
#ifndef SSM_INSPECT_RECENCY_H
#define SSM_INSPECT_RECENCY_H

#include "cli/inspect_figures.h"
#include "cli/opts.h"
#include "engine/model.h"
#include "engine/status.h"

typedef struct {
    int attention, influence, smoothing;   /* tables asked for */
    int layer;      /* attention layer, -1: every layer */
    int channel;    /* attention channel, SSM_ATTN_MEAN: mean of |alpha_e| */
    int targets;    /* influence target positions */
    int probes;     /* SSM_INFLUENCE_AUTO, 0 exact, K > 0 Gaussian probes */
} cli_recency_opts;

void cli_recency_defaults(cli_recency_opts *o);

/* Any of the three tables asked for? */
int cli_recency_any(const cli_recency_opts *o);

/* The options above as a table for a cli_recency_opts (cli/opts.h). */
const cli_opt *cli_recency_options(void);

/* After parsing into o (a: the parsed command line): EX_USAGE after a
 * one-line message when a sub-option lacks its table (e.g. --layer without
 * --attention). */
int cli_recency_validate(const cli_recency_opts *o, const cli_args *a);

/* Against the loaded model, before any table is written: layer and channel
 * in range. */
ssm_status cli_recency_check(const cli_recency_opts *o, const ssm_config *c);

/* The tables asked for, on batch b, into out's tables (stdout or one file
 * per table), and their figures when out->fig.dir is set.  Allocates m's
 * gradients (every layer's activations are needed) and runs its own
 * forward passes; m->last is cleared on return. */
ssm_status cli_recency_emit(const cli_recency_opts *o, ssm_model *m, const ssm_batch *b, cli_inspect_out *out);

#endif
