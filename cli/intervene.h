/* intervene.h — the causal interventions of `ssmlab inspect` and `ssmlab
 * eval` (ssmlab-inspect(1) INTERVENTIONS): --ablate L:E[:N] and --pin
 * L:E:N:VALUE (repeatable, or comma-separated lists), and --patch
 * L:POS[:residual|state] with its source input --patch-from TEXT or
 * --patch-tokens IDS.  The probe is built and checked against the model and
 * the input, the patch source is run, the clean run's logits kept, and the
 * `intervention` table compares the clean run with the intervened one per
 * sequence and position (KL of the output distribution, the target's log
 * probability, the loss). */
#ifndef SSM_CLI_INTERVENE_H
#define SSM_CLI_INTERVENE_H

#include "cli/cli.h"
#include "cli/opts.h"
#include "engine/model.h"
#include "engine/probe.h"
#include "engine/status.h"

#define CLI_INTERVENE_MAX 64   /* ablations, and pins, on one command line */

typedef struct { ssm_ablation v[CLI_INTERVENE_MAX]; int n; } cli_ablations;
typedef struct { ssm_pin v[CLI_INTERVENE_MAX]; int n; } cli_pins;
typedef struct { int kind, layer, pos; } cli_patch_spec;   /* kind SSM_PATCH_NONE: no --patch */

typedef struct {
    cli_ablations ablate;       /* --ablate */
    cli_pins pin;               /* --pin */
    cli_patch_spec patch;       /* --patch */
    const char *patch_from;     /* --patch-from TEXT */
    const char *patch_tokens;   /* --patch-tokens IDS */
} cli_intervene_opts;

void cli_intervene_defaults(cli_intervene_opts *o);

/* Any intervention asked for? */
int cli_intervene_any(const cli_intervene_opts *o);

/* The options above as a table for a cli_intervene_opts (cli/opts.h). */
const cli_opt *cli_intervene_options(void);

/* After parsing: EX_USAGE after a one-line message naming command cmd when
 * --patch lacks its source or a source lacks --patch, both sources are
 * given, a patch meets no_patch (an option given that needs a backward
 * pass, or NULL), or any intervention meets `none` (why the command takes
 * none here, or NULL). */
int cli_intervene_validate(const cli_intervene_opts *o, const char *cmd, const char *no_patch,
                           const char *none);

/* One command's interventions while they run. */
typedef struct {
    int on;                 /* interventions given: the probe is attached */
    ssm_probe probe;
    float *patch_value;     /* (B, D) or (B, E, Ns): the source run's value */
    float *clean;           /* (B, L, V) LM or (B, C) classifier: the clean logits */
    int *targets;           /* (B, L) next input token, -1 at the end; or (B) class */
    int B, L, V, lm;
} cli_intervene;

/* Before anything else runs: check every spec against the model and the
 * input b (layers, channels, state channels, the patch position, a patch
 * source of b's shape), run the patch source and the clean input, echo the
 * interventions on stderr, and attach the probe to m.  Classifiers' targets
 * are b->targets when set, else the clean top class.  With no
 * interventions iv is left off and nothing runs.  dir: the checkpoint
 * directory (DIR/tokenizer.json encodes --patch-from). */
ssm_status cli_intervene_begin(cli_intervene *iv, const cli_intervene_opts *o, ssm_model *m,
                               const char *dir, const ssm_batch *b);

/* The intervened forward on b and the `intervention` table into ts; nothing
 * when iv is off.  m->last is cleared. */
ssm_status cli_intervene_emit(cli_intervene *iv, ssm_model *m, const ssm_batch *b, cli_tables *ts);

/* The same, as a second table on stdout after a command's first (eval). */
ssm_status cli_intervene_emit_after(cli_intervene *iv, ssm_model *m, const ssm_batch *b,
                                    const char *format);

/* Detach the probe from m and free iv (safe when off or half built). */
void cli_intervene_end(cli_intervene *iv, ssm_model *m);

#endif
