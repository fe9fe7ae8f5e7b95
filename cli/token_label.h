/* token_label.h — the text `ssmlab inspect` shows for a token id in its
 * tables: the bytes the model's tokenizer (DIR/tokenizer.json) decodes it
 * to, or the byte itself for byte-level input, escaped so that a C string
 * holds it and the bytes can be told back. */
#ifndef SSM_TOKEN_LABEL_H
#define SSM_TOKEN_LABEL_H

#include <stddef.h>

#include "cli/inspect_figures.h"
#include "data/tokenizer.h"
#include "engine/model.h"
#include "engine/status.h"

/* n bytes of s into out (CLI_LABEL_MAX bytes): valid UTF-8 (control
 * characters included) as it is; NUL, bytes that are not UTF-8 and the
 * backslash itself as \xNN.  cli_table quotes the rest for CSV and JSON. */
void cli_label_escape(char *out, const unsigned char *s, size_t n);

/* The label of token id into out (CLI_LABEL_MAX bytes): with a tokenizer
 * (tk not NULL), the bytes it decodes to; without one, the byte itself
 * when bytes is set (text read as bytes) or the vocabulary is the 256
 * bytes, and id < 256; else empty. */
void cli_token_label(const ssm_tokenizer *tk, const ssm_config *c, int id, int bytes, char *out);

/* DIR/tokenizer.json into tk when the file exists; *have says whether. */
ssm_status cli_tokenizer_open(const char *dir, ssm_tokenizer *tk, int *have);

#endif
