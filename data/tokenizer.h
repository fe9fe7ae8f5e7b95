/* tokenizer.h — Hugging Face tokenizer.json byte-level BPE tokenizers (the
 * GPT-2 / GPT-NeoX kind: state-spaces/mamba-130m uses EleutherAI's
 * gpt-neox-20b tokenizer.json), and a plain byte tokenizer (tokens 0..255
 * are the bytes) for models without one.
 *
 * Encoding follows the Hugging Face `tokenizers` pipeline:
 *   1. added tokens with "normalized": false are matched literally in the raw
 *      text (leftmost-longest, honouring single_word, lstrip and rstrip);
 *   2. the rest is normalised (null, NFC, NFD, NFKC, NFKD or a Sequence of
 *      them) and added tokens with "normalized": true are matched in it;
 *   3. each remaining piece gets a leading space if add_prefix_space is set
 *      and it does not start with one, and is split by the GPT-2 pattern
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      (when use_regex is set; \s is Unicode White_Space);
 *   4. each pre-token's bytes become the GPT-2 byte-to-unicode characters
 *      and are merged by BPE, lowest merge rank first (leftmost on ties).
 * Decoding maps the tokens' characters back to bytes (ByteLevel decoder).
 * Ignored: model.dropout (encoding is deterministic), byte_fallback, and the
 * post_processor (no BOS/EOS is added: ByteLevel's adds none).
 *
 * Input need not be valid UTF-8: an invalid byte counts as one character
 * that is neither letter, number nor space, is left alone by normalisation,
 * and still maps through the byte level, so decode(encode(x)) gives back x
 * for any bytes (up to normalisation, and spaces eaten by lstrip / rstrip
 * added tokens). Unicode properties come from libunistring; JSON is parsed
 * with json-c. A loaded tokenizer is read-only: encode and decode may run
 * on several threads at once. */
#ifndef SSM_TOKENIZER_H
#define SSM_TOKENIZER_H

#include <stddef.h>

#include "engine/status.h"

typedef enum {
    SSM_TOKENIZER_NONE = 0,   /* not built */
    SSM_TOKENIZER_BYTES,      /* token b is byte b (vocabulary 256) */
    SSM_TOKENIZER_BPE         /* byte-level BPE from a tokenizer.json */
} ssm_tokenizer_kind;

struct ssm_tokenizer_impl;    /* hash tables, token strings, added tokens */

typedef struct {
    ssm_tokenizer_kind kind;
    int n_vocab;              /* 1 + the largest token id (model and added) */
    int n_merges;             /* BPE merge rules */
    int n_added;              /* added tokens (special or not) */
    int add_prefix_space;     /* ByteLevel pre-tokenizer settings */
    int use_regex;
    char *path;               /* the file it came from, or "bytes" (owned) */
    struct ssm_tokenizer_impl *impl;
} ssm_tokenizer;

/* One pre-token: text[off .. off+len) of the normalised text returned by
 * ssm_tokenizer_pretokenize; added_id is the added token's id, or -1 for a
 * piece that goes through BPE. */
typedef struct {
    size_t off, len;
    int added_id;
} ssm_tokenizer_piece;

/* Load a tokenizer.json. Errors name the file: SSM_ERR_NOINPUT (missing or
 * unreadable), SSM_ERR_DATA (not JSON, a model other than BPE, unsupported
 * normalizer / pre_tokenizer / decoder, a merge whose tokens are not in the
 * vocabulary, bad ids, ...), SSM_ERR_IO, SSM_ERR_NOMEM. On failure *tk is
 * left empty (ssm_tokenizer_free is still safe). */
ssm_status ssm_tokenizer_load(ssm_tokenizer *tk, const char *path);

/* The byte tokenizer: 256 tokens, id b <-> byte b, no normalisation. */
ssm_status ssm_tokenizer_build_bytes(ssm_tokenizer *tk);

void ssm_tokenizer_free(ssm_tokenizer *tk);

/* Encode text[0 .. len) (any bytes). *ids is malloc'ed (free() it; never
 * NULL on success) and holds *n ids. */
ssm_status ssm_tokenizer_encode(const ssm_tokenizer *tk, const char *text, size_t len,
                                int **ids, int *n);

/* Decode ids[0 .. n) into *text (malloc'ed, NUL-terminated, *len bytes
 * without the NUL). The bytes are returned as they are, even when they are
 * not valid UTF-8 (no U+FFFD replacement). Ids with no token (negative, past
 * the vocabulary, or vocabulary padding) decode to nothing, as in Hugging
 * Face; special tokens decode to their text. */
ssm_status ssm_tokenizer_decode(const ssm_tokenizer *tk, const int *ids, int n,
                                char **text, size_t *len);

/* Steps 1-3 of encoding: *norm (malloc'ed, NUL-terminated, *norm_len bytes)
 * is the text after normalisation and prefix spaces, and *pieces (malloc'ed,
 * *n of them) cover it in order. For the byte tokenizer, one piece. */
ssm_status ssm_tokenizer_pretokenize(const ssm_tokenizer *tk, const char *text, size_t len,
                                     char **norm, size_t *norm_len,
                                     ssm_tokenizer_piece **pieces, int *n);

int ssm_tokenizer_vocab_size(const ssm_tokenizer *tk);

/* Token id's string as written in the vocabulary (byte-level characters,
 * e.g. "Ġthe"; an added token's content), *len bytes; NULL if id has no
 * token. Valid until ssm_tokenizer_free. */
const char *ssm_tokenizer_token_str(const ssm_tokenizer *tk, int id, size_t *len);

/* The bytes token id decodes to (e.g. " the"), *len of them; NULL if none. */
const char *ssm_tokenizer_token_bytes(const ssm_tokenizer *tk, int id, size_t *len);

/* The id of a token string (added tokens first, then the vocabulary), or -1. */
int ssm_tokenizer_token_id(const ssm_tokenizer *tk, const char *str, size_t len);

/* 1 if id is an added token marked "special" (e.g. <|endoftext|>). */
int ssm_tokenizer_is_special(const ssm_tokenizer *tk, int id);

#endif
