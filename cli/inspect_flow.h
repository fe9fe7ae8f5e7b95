/* inspect_flow.h — `ssmlab inspect --flow`: the depth-as-time flow of one
 * layer (engine/flow.h, ssmlab-math(7) DYNAMICS "The flow of one layer") on
 * a checkpoint's embedded input or, with --scenario, on a freshly
 * initialised model and Gaussian tokens; the flow table's columns are
 * documented in ssmlab-inspect(1). */
#ifndef SSM_INSPECT_FLOW_H
#define SSM_INSPECT_FLOW_H

#include "cli/inspect_figures.h"
#include "engine/flow.h"
#include "engine/model.h"
#include "engine/status.h"

#define CLI_FLOW_TOKENS 8   /* Gaussian tokens of the random mode and of --flow-system s6 */

typedef struct {
    int on;                  /* --flow */
    int layer;               /* --flow-layer */
    int steps;               /* --flow-steps T */
    float step;              /* --flow-step h */
    float scale;             /* --flow-scale: the initial tokens are multiplied by it */
    const char *system;      /* --flow-system mixer|s6 */
    const char *scenario;    /* --scenario: random weights, no checkpoint (NULL: none) */
    long seed;               /* --seed: weights (random mode) and Gaussian tokens */
} cli_flow_opts;

extern const char *const cli_flow_systems[];     /* "mixer", "s6", NULL */
extern const char *const cli_flow_scenarios[];   /* "default", "positive", "negative", "mixed", NULL */

void cli_flow_defaults(cli_flow_opts *o);

/* --flow-layer within the model: SSM_ERR_USAGE naming the option. */
ssm_status cli_flow_check(const cli_flow_opts *o, const ssm_config *c);

/* The random-weights model of --scenario: the run config's defaults, the
 * key=value overrides kv (nkv), the scenario and the seed; a byte-level
 * language model built and initialised as `ssmlab train` builds one. */
ssm_status cli_flow_model(const cli_flow_opts *o, char *const *kv, int nkv, ssm_model *m);

/* Integrate the flow of o's layer, step, steps, system and scale into f
 * (freed with ssm_flow_free).  x0 (L, D): the embedded tokens of the input
 * (NULL: CLI_FLOW_TOKENS Gaussian tokens from the seed; always so for
 * --flow-system s6, whose tokens are E wide).  Uses m's activations (no
 * backward may follow). */
ssm_status cli_flow_run(const cli_flow_opts *o, ssm_model *m, const float *x0, int L, ssm_flow *f);

/* cli_flow_run, then the flow table; ids and labels (L) name the tokens
 * (NULL: positions only).  keep (NULL: none) receives the flow, which the
 * caller then frees. */
ssm_status cli_flow_emit(const cli_flow_opts *o, ssm_model *m, const float *x0, int L,
                         const int *ids, const char (*labels)[CLI_LABEL_MAX], cli_inspect_out *out,
                         ssm_flow *keep);

#endif
