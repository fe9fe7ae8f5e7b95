/* inspect_states.h — the state and logit-lens tables of `ssmlab inspect`
 * (ssmlab-inspect(1) STATES and LENS, engine/states.h): --states prints
 * ||h_t||_F and the effective rank of the state after every token and the
 * memory horizon of every channel, layer by layer; --lens the logit lens,
 * the final norm and head applied to the residual stream x_l of every depth
 * l.  The columns are documented in ssmlab-inspect(1). */
#ifndef SSM_INSPECT_STATES_H
#define SSM_INSPECT_STATES_H

#include "cli/inspect_figures.h"
#include "cli/opts.h"
#include "engine/model.h"
#include "engine/status.h"

typedef struct {
    int states, lens;   /* tables asked for */
} cli_states_opts;

void cli_states_defaults(cli_states_opts *o);

/* Either table asked for? */
int cli_states_any(const cli_states_opts *o);

/* The options above as a table for a cli_states_opts (cli/opts.h). */
const cli_opt *cli_states_options(void);

/* Against the loaded model, before any table is written: --lens needs a
 * language model (SSM_ERR_USAGE on a classifier). */
ssm_status cli_states_check(const cli_states_opts *o, const ssm_config *c);

/* The input the tables label their rows with. */
typedef struct {
    int B, L;                              /* the input's shape (no cls token) */
    const int *ids;                        /* (B, L) id column */
    const char (*labels)[CLI_LABEL_MAX];   /* (B, L) token column */
    const char *model_dir;                 /* DIR/tokenizer.json labels the lens's top-1 */
    int bytes;                             /* without a tokenizer, ids are bytes */
} cli_states_input;

/* The tables asked for, on batch b, into out's tables and, when
 * out->fig.dir is set, their figures.  Runs one forward pass with a probe
 * attached (and detached on return); m->last is cleared on return. */
ssm_status cli_states_emit(const cli_states_opts *o, ssm_model *m, const ssm_batch *b,
                           const cli_states_input *in, cli_inspect_out *out);

#endif
