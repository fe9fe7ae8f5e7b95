/* inspect_dump.h — `ssmlab inspect --dump FILE.safetensors [--dump-layers
 * 0,3]`: every intermediate of one forward pass (embeddings; per layer the
 * residual stream, u, z, delta, B, C, the states h, y and the mixer output;
 * norm_f; logits) as float32 safetensors, streamed layer by layer from the
 * engine's probe (engine/probe.h) so the dump needs no more memory than
 * one layer's share of it.  The names, shapes and metadata are documented
 * in ssmlab-inspect(1) DUMP. */
#ifndef SSM_INSPECT_DUMP_H
#define SSM_INSPECT_DUMP_H

#include <stdint.h>

#include "cli/opts.h"
#include "engine/model.h"
#include "engine/status.h"

typedef struct {
    const char *path;   /* --dump FILE, NULL: no dump */
    uint64_t layers;    /* --dump-layers: bit l dumps layer l */
} cli_dump_opts;

void cli_dump_defaults(cli_dump_opts *o);

/* --dump and --dump-layers as a table for a cli_dump_opts (cli/opts.h). */
const cli_opt *cli_dump_options(void);

/* After parsing (a: the parsed command line): EX_USAGE after a one-line
 * message when --dump-layers comes without --dump. */
int cli_dump_validate(const cli_dump_opts *o, const cli_args *a);

/* Against the loaded model, before the forward pass: the layers in range,
 * the file's directory there (SSM_ERR_USAGE naming the problem). */
ssm_status cli_dump_check(const cli_dump_opts *o, const ssm_config *c);

/* What the forward pass ran on, for the file's metadata: kind "tokens"
 * (value NULL: the batch's ids, "1,2,3;4,5,6"), "image" (the index) or
 * "inputs" (the .npy file). */
typedef struct {
    const char *kind, *value;
} cli_dump_input;

/* One forward pass of m on b with the probe attached, its intermediates
 * streamed into o->path (atomically: on failure no file is left); model_dir
 * goes into the metadata.  m->last is cleared on return. */
ssm_status cli_dump_write(const cli_dump_opts *o, ssm_model *m, const ssm_batch *b, const char *model_dir,
                          const cli_dump_input *input);

#endif
