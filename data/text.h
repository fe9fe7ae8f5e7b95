/* text.h — byte-level language-modelling data: a corpus loaded from a text
 * file or a directory of text files (default: Debian's fortunes), split into
 * train and validation bytes, with deterministic random training batches,
 * fixed validation windows and the unigram baseline. Tokens are bytes 0..255. */
#ifndef SSM_TEXT_H
#define SSM_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"
#include "engine/model.h"

#define SSM_TEXT_VOCAB 256
#define SSM_TEXT_DEFAULT_CORPUS "/usr/share/games/fortunes"
#define SSM_TEXT_DEFAULT_VAL_FRACTION 0.1

typedef struct {
    uint8_t *bytes;   /* (n) the whole corpus: train bytes then validation bytes */
    size_t n;         /* corpus size in bytes */
    size_t n_train;   /* train split = bytes[0 .. n_train) */
    size_t n_val;     /* validation split = bytes[n_train .. n) */
    int n_files;      /* files read */
    char *path;       /* the file or directory it came from (owned) */
} ssm_text;

/* Load path: a regular file, or a directory whose regular, non-hidden files
 * (not symlinks, not *.dat, not *.u8, not subdirectories) are concatenated in
 * name order.  A file with a strfile index beside it ("<file>.dat", i.e. a
 * fortune file) has its "%" separator lines removed.  The last
 * floor(n * val_fraction) bytes are the validation split (0 <= val_fraction
 * < 1; pass SSM_TEXT_DEFAULT_VAL_FRACTION for the default).
 * Errors: SSM_ERR_NOINPUT (missing or unreadable path), SSM_ERR_DATA (empty
 * corpus, a directory with no text files, or a train split under 2 bytes),
 * SSM_ERR_CONFIG (val_fraction out of range), SSM_ERR_IO, SSM_ERR_NOMEM. */
ssm_status ssm_text_load(ssm_text *t, const char *path, double val_fraction);

/* Build from bytes in memory (copied); `name` is used in messages. */
ssm_status ssm_text_build(ssm_text *t, const uint8_t *bytes, size_t n,
                          double val_fraction, const char *name);
void ssm_text_free(ssm_text *t);

/* A training batch: row b is bytes[o_b .. o_b+L) of the train split with
 * targets bytes[o_b+1 .. o_b+L], o_b uniform in [0, n_train - L - 1].
 * The offsets come from a GSL mt19937 generator seeded with a hash of
 * (seed, step, index), so the batch depends on those three numbers alone
 * (index numbers the micro-batches of one step; 0 without accumulation).
 * tokens and targets are (B, L).  SSM_ERR_CONFIG if n_train < L + 1. */
ssm_status ssm_text_batch(const ssm_text *t, uint64_t seed, uint64_t step,
                          int index, int B, int L, int *tokens, int *targets);

/* Owned (B, L) token and target buffers, with an ssm_batch viewing them. */
typedef struct {
    int B, L;
    int *tokens;      /* (B, L) */
    int *targets;     /* (B, L), -1 = ignored */
    ssm_batch batch;  /* views tokens/targets; inputs NULL */
} ssm_text_block;

ssm_status ssm_text_build_block(ssm_text_block *blk, int B, int L);
void ssm_text_free_block(ssm_text_block *blk);

/* Validation windows: window k covers validation bytes [k*L, k*L + L) with
 * targets [k*L + 1, k*L + L]; windows never overlap, and the tail that does
 * not fill a window is left out.  Count = floor((n_val - 1) / L). */
size_t ssm_text_val_count(const ssm_text *t, int L);

typedef struct {
    const ssm_text *text;
    int L;
    size_t next;      /* next window number */
    size_t count;     /* windows in all */
} ssm_text_val_iter;

void ssm_text_val_begin(ssm_text_val_iter *it, const ssm_text *t, int L);

/* Fill up to B rows of (B, L) tokens/targets with the next windows and
 * return how many rows were filled (0 when the split is exhausted).  Rows
 * past that get token 0 and target -1, so a full-size batch can be run and
 * the loss ignores them. */
int ssm_text_val_next(ssm_text_val_iter *it, int B, int *tokens, int *targets);

/* Unigram baseline: cross-entropy of the validation bytes under the train
 * byte frequencies with add-one smoothing,
 *   p(c) = (count_train(c) + 1) / (n_train + 256),
 *   nats = -(1/n_val) sum_{val bytes c} ln p(c),  bits = nats / ln 2.
 * SSM_ERR_DATA when the validation split is empty. */
ssm_status ssm_text_unigram(const ssm_text *t, double *nats, double *bits);

#endif
