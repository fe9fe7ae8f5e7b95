/* tokenizer.c — Hugging Face tokenizer.json byte-level BPE (GPT-2 / GPT-NeoX):
 * loading with json-c, added-token extraction, Unicode normalisation and
 * character classes from libunistring, the GPT-2 pre-tokenisation pattern
 * (hand-coded, no regex engine), priority-queue BPE merges over a hash table
 * of merge ranks, and the ByteLevel decoder; plus the plain byte tokenizer.
 * The pipeline is described in tokenizer.h. */
#include "data/tokenizer.h"
#include "engine/bound.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#define MAX_TOKEN_ID (1 << 24)     /* ids past this are treated as corrupt */
#define MAX_NORMALIZERS 8
#define N_BYTE_CHARS 324           /* byte-level characters are < U+0144 */

/* ---- small containers ---- */

/* A growing byte buffer. */
typedef struct {
    char *p;      /* (cap) */
    size_t n, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra)
{
    if (b->n + extra <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

static int buf_append(buf_t *b, const void *s, size_t n)
{
    if (!buf_reserve(b, n + 1))
        return 0;
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 1;
}

/* Append code point cp (< 0x800) as UTF-8. */
static int buf_append_cp(buf_t *b, unsigned cp)
{
    char u[2];
    if (cp < 0x80) {
        u[0] = (char)cp;
        return buf_append(b, u, 1);
    }
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    return buf_append(b, u, 2);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;          /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static size_t table_capacity(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    return cap;
}

/* String -> id, open addressing; keys are (off, len) in an arena. */
typedef struct {
    size_t off;
    uint32_t len;
    int32_t id;     /* -1: empty slot */
} str_slot;

typedef struct {
    str_slot *slots;   /* (cap) */
    size_t cap;
} str_table;

static int str_table_build(str_table *t, size_t n)
{
    t->cap = table_capacity(n);
    t->slots = malloc(t->cap * sizeof *t->slots);
    if (!t->slots)
        return 0;
    for (size_t i = 0; i < t->cap; i++)
        t->slots[i].id = -1;
    return 1;
}

/* The slot holding s, or the empty slot where it would go. */
static str_slot *str_table_find(const str_table *t, const char *arena, const char *s, size_t n)
{
    size_t i = hash_bytes(s, n) & (t->cap - 1);
    for (;;) {
        str_slot *e = &t->slots[i];
        if (e->id < 0 || (e->len == n && memcmp(arena + e->off, s, n) == 0))
            return e;
        i = (i + 1) & (t->cap - 1);
    }
}

/* (left id, right id) -> (rank, merged id), open addressing. */
typedef struct {
    uint64_t key;      /* UINT64_MAX: empty */
    int32_t rank, new_id;
} merge_slot;

typedef struct {
    merge_slot *slots;  /* (cap) */
    size_t cap;
} merge_table;

static uint64_t pair_key(int a, int b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

static int merge_table_build(merge_table *t, size_t n)
{
    t->cap = table_capacity(n);
    t->slots = malloc(t->cap * sizeof *t->slots);
    if (!t->slots)
        return 0;
    for (size_t i = 0; i < t->cap; i++)
        t->slots[i].key = UINT64_MAX;
    return 1;
}

static merge_slot *merge_table_find(const merge_table *t, uint64_t key)
{
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (t->cap - 1);
    for (;;) {
        merge_slot *e = &t->slots[i];
        if (e->key == key || e->key == UINT64_MAX)
            return e;
        i = (i + 1) & (t->cap - 1);
    }
}

/* ---- the tokenizer's insides ---- */

typedef struct {
    size_t off, len;            /* content in the arena */
    size_t match_off, match_len;/* what is matched: content, normalised if normalized */
    int id;
    int special, normalized, lstrip, rstrip, single_word;
} added_token;

/* Added tokens to match in one text, bucketed by first byte. */
typedef struct {
    int start[257];   /* bucket b is items[start[b] .. start[b+1]) */
    int *items;       /* (n) indices into impl->added */
} match_set;

struct ssm_tokenizer_impl {
    buf_t arena;                 /* every string below */
    str_table vocab;             /* model vocabulary */
    merge_table merges;
    size_t *str_off;             /* (n_vocab) token string, SIZE_MAX if none */
    uint32_t *str_len;           /* (n_vocab) */
    size_t *byte_off;            /* (n_vocab) decoded bytes */
    uint32_t *byte_len;          /* (n_vocab) */
    unsigned char *special;      /* (n_vocab) */
    added_token *added;          /* (n_added) */
    match_set raw_set, norm_set; /* "normalized": false / true added tokens */
    int byte_id[256];            /* vocab id of byte b's character, -1 if none */
    unsigned byte_char[256];     /* GPT-2 byte -> code point */
    int char_byte[N_BYTE_CHARS]; /* code point -> byte, -1 if not a byte char */
    unsigned char ascii_class[128];
    int unk_id, fuse_unk, ignore_merges;
    int n_norm;
    uninorm_t norm[MAX_NORMALIZERS];
};

/* ---- byte level ---- */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the others get U+0100, U+0101, ... in byte order. */
static void build_byte_chars(struct ssm_tokenizer_impl *im)
{
    unsigned next = 256;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        im->byte_char[b] = keep ? (unsigned)b : next++;
    }
    for (int c = 0; c < N_BYTE_CHARS; c++)
        im->char_byte[c] = -1;
    for (int b = 0; b < 256; b++)
        im->char_byte[im->byte_char[b]] = b;
}

/* ---- character classes ---- */

enum { CLS_LETTER, CLS_NUMBER, CLS_SPACE, CLS_OTHER };

static int class_of_cp(ucs4_t uc)
{
    if (uc_is_property_white_space(uc))
        return CLS_SPACE;
    if (uc_is_general_category_withtable(uc, UC_CATEGORY_MASK_L))
        return CLS_LETTER;
    if (uc_is_general_category_withtable(uc, UC_CATEGORY_MASK_N))
        return CLS_NUMBER;
    return CLS_OTHER;
}

static void build_ascii_classes(struct ssm_tokenizer_impl *im)
{
    for (int c = 0; c < 128; c++)
        im->ascii_class[c] = (unsigned char)class_of_cp((ucs4_t)c);
}

/* Decode the character at s[0 .. n) (n > 0): its length in bytes, 1 for an
 * invalid or truncated sequence (then *uc = 0xFFFFFFFF). */
static int next_char(const char *s, size_t n, ucs4_t *uc)
{
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80) {
        *uc = c;
        return 1;
    }
    int k = u8_mbtoucr(uc, (const uint8_t *)s, n);
    if (k < 0) {
        *uc = 0xFFFFFFFFu;
        return 1;
    }
    return k;
}

/* Class and byte length of the character at s[0 .. n), n > 0. */
static int char_class(const struct ssm_tokenizer_impl *im, const char *s, size_t n, int *len)
{
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80) {
        *len = 1;
        return im->ascii_class[c];
    }
    ucs4_t uc;
    *len = next_char(s, n, &uc);
    return uc == 0xFFFFFFFFu ? CLS_OTHER : class_of_cp(uc);
}

/* The code point ending at s[end) (end > 0), or 0xFFFFFFFF if the bytes
 * before end do not end with a valid character; *len its byte length. */
static ucs4_t prev_char(const char *s, size_t end, int *len)
{
    size_t b = end - 1;
    while (b > 0 && end - b < 4 && ((unsigned char)s[b] & 0xC0) == 0x80)
        b--;
    ucs4_t uc;
    int k = next_char(s + b, end - b, &uc);
    if ((size_t)k != end - b) {
        *len = 1;
        return 0xFFFFFFFFu;
    }
    *len = k;
    return uc;
}

/* Rust regex's \w: Alphabetic, marks, decimal digits, connector punctuation,
 * Join_Control. */
static int is_word_cp(ucs4_t uc)
{
    if (uc == 0xFFFFFFFFu)
        return 0;
    return uc_is_property_alphabetic(uc) || uc_is_property_join_control(uc) ||
           uc_is_general_category_withtable(uc, UC_CATEGORY_MASK_M | UC_CATEGORY_MASK_Nd |
                                                    UC_CATEGORY_MASK_Pc);
}

static int is_space_cp(ucs4_t uc)
{
    return uc != 0xFFFFFFFFu && uc_is_property_white_space(uc);
}

/* ---- normalisation ---- */

/* Append nf(s[0 .. n)) to out: valid UTF-8 runs are normalised, invalid
 * bytes copied as they are. */
static int normalize_once(uninorm_t nf, const char *s, size_t n, buf_t *out)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    while (p < end) {
        const uint8_t *bad = u8_check(p, (size_t)(end - p));
        const uint8_t *stop = bad ? bad : end;
        if (stop > p) {
            size_t m = 0;
            uint8_t *r = u8_normalize(nf, p, (size_t)(stop - p), NULL, &m);
            int ok = r && buf_append(out, r, m);
            free(r);
            if (!ok)
                return 0;
        }
        if (bad && !buf_append(out, bad, 1))
            return 0;
        p = bad ? bad + 1 : end;
    }
    return 1;
}

/* Normalise s[0 .. n) through every normalizer into *out (one of a, b);
 * with no normalizer *out points at s itself. */
static int normalize_text(const struct ssm_tokenizer_impl *im, const char *s, size_t n,
                          buf_t *a, buf_t *b, const char **out, size_t *out_n)
{
    *out = s;
    *out_n = n;
    for (int k = 0; k < im->n_norm; k++) {
        buf_t *dst = (k % 2 == 0) ? a : b;
        dst->n = 0;
        if (!buf_reserve(dst, 1) || !normalize_once(im->norm[k], *out, *out_n, dst))
            return 0;
        dst->p[dst->n] = 0;
        *out = dst->p;
        *out_n = dst->n;
    }
    return 1;
}

/* ---- added tokens ---- */

typedef struct {
    size_t start, stop;   /* matched bytes, after lstrip / rstrip */
    int tok;              /* index into impl->added */
} added_match;

/* Longest added token of set matching s at i, or -1. */
static int longest_at(const struct ssm_tokenizer_impl *im, const match_set *set,
                      const char *s, size_t n, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    int best = -1;
    size_t best_len = 0;
    for (int k = set->start[c]; k < set->start[c + 1]; k++) {
        const added_token *t = &im->added[set->items[k]];
        if (t->match_len > best_len && t->match_len <= n - i &&
            memcmp(s + i, im->arena.p + t->match_off, t->match_len) == 0) {
            best = set->items[k];
            best_len = t->match_len;
        }
    }
    return best;
}

/* single_word: no word character right before or right after. */
static int is_single_word(const char *s, size_t n, size_t start, size_t stop)
{
    int len;
    if (start > 0 && is_word_cp(prev_char(s, start, &len)))
        return 0;
    ucs4_t uc;
    return !(stop < n && (next_char(s + stop, n - stop, &uc), is_word_cp(uc)));
}

static size_t skip_space_left(const char *s, size_t start, size_t floor)
{
    int len;
    while (start > floor && is_space_cp(prev_char(s, start, &len)))
        start -= (size_t)len;
    return start < floor ? floor : start;
}

static size_t skip_space_right(const char *s, size_t n, size_t stop)
{
    ucs4_t uc;
    while (stop < n) {
        int len = next_char(s + stop, n - stop, &uc);
        if (!is_space_cp(uc))
            break;
        stop += (size_t)len;
    }
    return stop;
}

/* The next added token in s[*pos .. n), leftmost then longest, with the
 * token's single_word / lstrip / rstrip rules (lstrip never reaches before
 * done, the end of the previous match). Advances *pos past the match and its
 * stripped spaces (Hugging Face resumes right after the token, so a token
 * inside rstrip'ed spaces could overlap there); 0 when none is left. */
static int next_added(const struct ssm_tokenizer_impl *im, const match_set *set,
                      const char *s, size_t n, size_t *pos, size_t done, added_match *m)
{
    if (set->start[256] == 0)
        return 0;
    for (size_t i = *pos; i < n; i++) {
        int tok = longest_at(im, set, s, n, i);
        if (tok < 0)
            continue;
        const added_token *t = &im->added[tok];
        size_t start = i, stop = i + t->match_len;
        *pos = stop;
        if (t->single_word && !is_single_word(s, n, start, stop)) {
            i = stop - 1;
            continue;
        }
        if (t->lstrip)
            start = skip_space_left(s, start, done);
        if (t->rstrip)
            stop = skip_space_right(s, n, stop);
        *pos = stop;
        m->start = start;
        m->stop = stop;
        m->tok = tok;
        return 1;
    }
    *pos = n;
    return 0;
}

/* ---- pre-tokenisation ---- */

typedef struct {
    buf_t norm;                  /* the text after normalisation, pieces cover it */
    ssm_tokenizer_piece *pieces; /* (cap) */
    int n, cap;
    buf_t tmp_a, tmp_b;          /* normalisation scratch */
} pretok;

static void pretok_free(pretok *st)
{
    free(st->norm.p);
    free(st->pieces);
    free(st->tmp_a.p);
    free(st->tmp_b.p);
}

static int add_piece(pretok *st, size_t off, size_t len, int added_id)
{
    if (st->n == st->cap) {
        int cap = st->cap ? 2 * st->cap : 64;
        ssm_tokenizer_piece *p = realloc(st->pieces, (size_t)cap * sizeof *p);
        if (!p)
            return 0;
        st->pieces = p;
        st->cap = cap;
    }
    st->pieces[st->n++] = (ssm_tokenizer_piece){off, len, added_id};
    return 1;
}

/* Length of 's 't 're 've 'm 'll 'd at s[0 .. n) (s[0] == '\''), or 0. */
static size_t contraction_len(const char *s, size_t n)
{
    if (n >= 2 && (s[1] == 's' || s[1] == 't' || s[1] == 'm' || s[1] == 'd'))
        return 2;
    if (n >= 3 && ((s[1] == 'r' && s[2] == 'e') || (s[1] == 'v' && s[2] == 'e') ||
                   (s[1] == 'l' && s[2] == 'l')))
        return 3;
    return 0;
}

/* End of the run of class cls starting at i; *last = start of its last char. */
static size_t run_end(const struct ssm_tokenizer_impl *im, const char *s, size_t n,
                      size_t i, int cls, size_t *last)
{
    int len;
    *last = i;
    while (i < n && char_class(im, s + i, n - i, &len) == cls) {
        *last = i;
        i += (size_t)len;
    }
    return i;
}

/* Bytes matched at s[i] by the GPT-2 pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Every character is in one of its classes, so a match starts at every i. */
static size_t gpt2_match(const struct ssm_tokenizer_impl *im, const char *s, size_t n, size_t i)
{
    size_t k, last, end;
    int len;
    if (s[i] == '\'' && (k = contraction_len(s + i, n - i)) > 0)
        return k;
    if (s[i] == ' ' && i + 1 < n) {
        int c1 = char_class(im, s + i + 1, n - i - 1, &len);
        if (c1 != CLS_SPACE)
            return run_end(im, s, n, i + 1, c1, &last) - i;
    }
    int c0 = char_class(im, s + i, n - i, &len);
    end = run_end(im, s, n, i, c0, &last);
    if (c0 != CLS_SPACE || end == n)
        return end - i;
    return last > i ? last - i : end - i;   /* \s+(?!\S) leaves the last space */
}

/* Pre-tokenise plain text s[0 .. n) into st (prefix space, then the pattern). */
static int emit_plain(const ssm_tokenizer *tk, pretok *st, const char *s, size_t n)
{
    if (n == 0)
        return 1;
    size_t base = st->norm.n;
    if (tk->add_prefix_space && s[0] != ' ' && !buf_append(&st->norm, " ", 1))
        return 0;
    if (!buf_append(&st->norm, s, n))
        return 0;
    const char *t = st->norm.p + base;
    size_t m = st->norm.n - base;
    if (!tk->use_regex)
        return add_piece(st, base, m, -1);
    for (size_t i = 0; i < m;) {
        size_t k = gpt2_match(tk->impl, t, m, i);
        if (!add_piece(st, base + i, k, -1))
            return 0;
        i += k;
    }
    return 1;
}

static int emit_added(const ssm_tokenizer *tk, pretok *st, const char *s, size_t n, int tok)
{
    size_t base = st->norm.n;
    return buf_append(&st->norm, s, n) &&
           add_piece(st, base, n, tk->impl->added[tok].id);
}

/* Stage 2: normalise a piece of raw text, split off normalised added tokens. */
static int split_normalized(const ssm_tokenizer *tk, pretok *st, const char *raw, size_t raw_n)
{
    const struct ssm_tokenizer_impl *im = tk->impl;
    const char *s;
    size_t n, pos = 0, done = 0;
    if (!normalize_text(im, raw, raw_n, &st->tmp_a, &st->tmp_b, &s, &n))
        return 0;
    added_match m;
    while (next_added(im, &im->norm_set, s, n, &pos, done, &m)) {
        if (m.start > done && !emit_plain(tk, st, s + done, m.start - done))
            return 0;
        if (!emit_added(tk, st, s + m.start, m.stop - m.start, m.tok))
            return 0;
        done = m.stop;
    }
    return done >= n || emit_plain(tk, st, s + done, n - done);
}

/* Stage 1: split raw text on the added tokens that match unnormalised. */
static int split_raw(const ssm_tokenizer *tk, pretok *st, const char *s, size_t n)
{
    const struct ssm_tokenizer_impl *im = tk->impl;
    size_t pos = 0, done = 0;
    added_match m;
    while (next_added(im, &im->raw_set, s, n, &pos, done, &m)) {
        if (m.start > done && !split_normalized(tk, st, s + done, m.start - done))
            return 0;
        if (!emit_added(tk, st, s + m.start, m.stop - m.start, m.tok))
            return 0;
        done = m.stop;
    }
    return done >= n || split_normalized(tk, st, s + done, n - done);
}

static ssm_status run_pretokenize(const ssm_tokenizer *tk, const char *text, size_t len,
                                  pretok *st)
{
    memset(st, 0, sizeof *st);
    if (!tk || tk->kind == SSM_TOKENIZER_NONE || !tk->impl)
        return ssm_fail(SSM_ERR_SOFTWARE, "tokenizer: not loaded");
    if (!text && len > 0)
        return ssm_fail(SSM_ERR_SOFTWARE, "tokenizer: NULL text");
    int ok = buf_reserve(&st->norm, len + 1);
    if (ok) {
        st->norm.p[0] = 0;
        if (tk->kind == SSM_TOKENIZER_BYTES)
            ok = buf_append(&st->norm, text, len) && (len == 0 || add_piece(st, 0, len, -1));
        else
            ok = split_raw(tk, st, text ? text : "", len);
    }
    if (!ok) {
        pretok_free(st);
        memset(st, 0, sizeof *st);
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory while encoding", tk->path);
    }
    return SSM_OK;
}

ssm_status ssm_tokenizer_pretokenize(const ssm_tokenizer *tk, const char *text, size_t len,
                                     char **norm, size_t *norm_len,
                                     ssm_tokenizer_piece **pieces, int *n)
{
    pretok st;
    ssm_status s = run_pretokenize(tk, text, len, &st);
    if (s != SSM_OK)
        return s;
    if (!st.pieces && !(st.pieces = malloc(sizeof *st.pieces))) {
        pretok_free(&st);
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", tk->path);
    }
    *norm = st.norm.p;
    *norm_len = st.norm.n;
    *pieces = st.pieces;
    *n = st.n;
    free(st.tmp_a.p);
    free(st.tmp_b.p);
    return SSM_OK;
}

/* ---- BPE ---- */

typedef struct {
    int id;
    int prev, next;   /* neighbours, -1 at the ends */
    int len;          /* bytes covered; 0 once merged into its left neighbour */
} bpe_sym;

typedef struct {
    int rank, pos, new_id;
} bpe_merge;

/* Scratch space for one encode call. */
typedef struct {
    bpe_sym *sym;     /* (cap) */
    bpe_merge *heap;  /* (3 cap) */
    size_t cap;
    int n_heap;
    int *ids;         /* output (ids_cap) */
    size_t n_ids, ids_cap;
    buf_t word;       /* byte-level form of a pre-token (ignore_merges) */
} bpe_work;

static int work_reserve(bpe_work *w, size_t n)
{
    if (n <= w->cap)
        return 1;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n)
        cap *= 2;
    bpe_sym *s = realloc(w->sym, cap * sizeof *s);
    if (s)
        w->sym = s;
    bpe_merge *h = realloc(w->heap, 3 * cap * sizeof *h);
    if (h)
        w->heap = h;
    if (!s || !h)
        return 0;
    w->cap = cap;
    return 1;
}

static int push_id(bpe_work *w, int id)
{
    if (w->n_ids == w->ids_cap) {
        size_t cap = w->ids_cap ? 2 * w->ids_cap : 256;
        int *p = realloc(w->ids, cap * sizeof *p);
        if (!p)
            return 0;
        w->ids = p;
        w->ids_cap = cap;
    }
    w->ids[w->n_ids++] = id;
    return 1;
}

static int merge_less(bpe_merge a, bpe_merge b)
{
    return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos;
}

static void heap_push(bpe_work *w, bpe_merge m)
{
    int i = w->n_heap++;
    while (i > 0 && merge_less(m, w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = m;
}

static bpe_merge heap_pop(bpe_work *w)
{
    bpe_merge top = w->heap[0], last = w->heap[--w->n_heap];
    int i = 0, n = w->n_heap;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && merge_less(w->heap[c + 1], w->heap[c]))
            c++;
        if (!merge_less(w->heap[c], last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    w->heap[i] = last;
    return top;
}

/* Queue the merge of symbol pos with its right neighbour, if there is one. */
static void queue_pair(const struct ssm_tokenizer_impl *im, bpe_work *w, int pos)
{
    if (pos < 0 || w->sym[pos].next < 0)
        return;
    int next = w->sym[pos].next;
    const merge_slot *e = merge_table_find(&im->merges, pair_key(w->sym[pos].id, w->sym[next].id));
    if (e->key != UINT64_MAX)
        heap_push(w, (bpe_merge){e->rank, pos, e->new_id});
}

/* Initial symbols: one per byte (its character's id); bytes whose
 * character is not in the vocabulary become unk (fused if fuse_unk) or are
 * dropped when there is no unk token, as in Hugging Face. */
static int bpe_init(const struct ssm_tokenizer_impl *im, bpe_work *w, const char *s, size_t n)
{
    int m = 0, prev_unknown = 0;
    for (size_t i = 0; i < n; i++) {
        int id = im->byte_id[(unsigned char)s[i]];
        int unknown = id < 0;
        if (unknown && im->unk_id < 0)
            continue;
        if (unknown && im->fuse_unk && prev_unknown) {
            w->sym[m - 1].len++;
            continue;
        }
        w->sym[m] = (bpe_sym){unknown ? im->unk_id : id, m - 1, -1, 1};
        if (m > 0)
            w->sym[m - 1].next = m;
        m++;
        prev_unknown = unknown;
    }
    return m;
}

static void bpe_apply(const struct ssm_tokenizer_impl *im, bpe_work *w, bpe_merge top)
{
    bpe_sym *sym = w->sym;
    int pos = top.pos, right = sym[pos].next;
    sym[pos].id = top.new_id;
    sym[pos].len += sym[right].len;
    sym[pos].next = sym[right].next;
    sym[right].len = 0;
    if (sym[pos].next >= 0)
        sym[sym[pos].next].prev = pos;
    queue_pair(im, w, sym[pos].prev);
    queue_pair(im, w, pos);
}

/* Merge the symbols, lowest rank first (then leftmost). */
static void bpe_merge_all(const struct ssm_tokenizer_impl *im, bpe_work *w, int m)
{
    w->n_heap = 0;
    for (int i = 0; i + 1 < m; i++)
        queue_pair(im, w, i);
    while (w->n_heap > 0) {
        bpe_merge top = heap_pop(w);
        bpe_sym *a = &w->sym[top.pos];
        if (a->len == 0 || a->next < 0)
            continue;
        const merge_slot *e = merge_table_find(&im->merges,
                                               pair_key(a->id, w->sym[a->next].id));
        if (e->key == UINT64_MAX || e->new_id != top.new_id)
            continue;    /* stale entry */
        bpe_apply(im, w, top);
    }
}

/* The vocabulary id of the whole pre-token (ignore_merges), or -1. */
static int whole_word_id(const struct ssm_tokenizer_impl *im, bpe_work *w, const char *s, size_t n)
{
    w->word.n = 0;
    for (size_t i = 0; i < n; i++)
        if (!buf_append_cp(&w->word, im->byte_char[(unsigned char)s[i]]))
            return -1;
    const str_slot *e = str_table_find(&im->vocab, im->arena.p, w->word.p, w->word.n);
    return e->id;
}

static int bpe_word(const struct ssm_tokenizer_impl *im, bpe_work *w, const char *s, size_t n)
{
    if (im->ignore_merges) {
        int id = whole_word_id(im, w, s, n);
        if (id >= 0)
            return push_id(w, id);
    }
    if (!work_reserve(w, n))
        return 0;
    int m = bpe_init(im, w, s, n);
    bpe_merge_all(im, w, m);
    for (int i = 0; i < m; i++)
        if (w->sym[i].len > 0 && !push_id(w, w->sym[i].id))
            return 0;
    return 1;
}

static int encode_pieces(const ssm_tokenizer *tk, const pretok *st, bpe_work *w)
{
    for (int k = 0; k < st->n; k++) {
        const ssm_tokenizer_piece *p = &st->pieces[k];
        const char *s = st->norm.p + p->off;
        int ok;
        if (p->added_id >= 0)
            ok = push_id(w, p->added_id);
        else if (tk->kind == SSM_TOKENIZER_BYTES) {
            ok = 1;
            for (size_t i = 0; ok && i < p->len; i++)
                ok = push_id(w, (unsigned char)s[i]);
        } else
            ok = bpe_word(tk->impl, w, s, p->len);
        if (!ok)
            return 0;
    }
    return 1;
}

ssm_status ssm_tokenizer_encode(const ssm_tokenizer *tk, const char *text, size_t len,
                                int **ids, int *n)
{
    *ids = NULL;
    *n = 0;
    pretok st;
    ssm_status s = run_pretokenize(tk, text, len, &st);
    if (s != SSM_OK)
        return s;
    bpe_work w = {0};
    int ok = encode_pieces(tk, &st, &w);
    if (ok && !w.ids)
        ok = (w.ids = malloc(sizeof *w.ids)) != NULL;
    ok = ok && w.n_ids <= INT32_MAX;
    pretok_free(&st);
    free(w.sym);
    free(w.heap);
    free(w.word.p);
    if (!ok) {
        free(w.ids);
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory while encoding", tk->path);
    }
    *ids = w.ids;
    *n = (int)w.n_ids;
    return SSM_OK;
}

/* ---- decoding and lookups ---- */

static int has_token(const ssm_tokenizer *tk, int id)
{
    return tk && tk->impl && id >= 0 && id < tk->n_vocab && tk->impl->str_off[id] != SIZE_MAX;
}

ssm_status ssm_tokenizer_decode(const ssm_tokenizer *tk, const int *ids, int n,
                                char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    if (!tk || !tk->impl)
        return ssm_fail(SSM_ERR_SOFTWARE, "tokenizer: not loaded");
    buf_t out = {0};
    int ok = buf_reserve(&out, 1);
    for (int i = 0; ok && i < n; i++)
        if (has_token(tk, ids[i]))
            ok = buf_append(&out, tk->impl->arena.p + tk->impl->byte_off[ids[i]],
                            tk->impl->byte_len[ids[i]]);
    if (!ok) {
        free(out.p);
        return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory while decoding", tk->path);
    }
    out.p[out.n] = 0;
    *text = out.p;
    *len = out.n;
    return SSM_OK;
}

int ssm_tokenizer_vocab_size(const ssm_tokenizer *tk) { return tk ? tk->n_vocab : 0; }

const char *ssm_tokenizer_token_str(const ssm_tokenizer *tk, int id, size_t *len)
{
    if (!has_token(tk, id))
        return NULL;
    *len = tk->impl->str_len[id];
    return tk->impl->arena.p + tk->impl->str_off[id];
}

const char *ssm_tokenizer_token_bytes(const ssm_tokenizer *tk, int id, size_t *len)
{
    if (!has_token(tk, id))
        return NULL;
    *len = tk->impl->byte_len[id];
    return tk->impl->arena.p + tk->impl->byte_off[id];
}

int ssm_tokenizer_token_id(const ssm_tokenizer *tk, const char *str, size_t len)
{
    if (!tk || !tk->impl)
        return -1;
    const struct ssm_tokenizer_impl *im = tk->impl;
    for (int k = 0; k < tk->n_added; k++)
        if (im->added[k].len == len && memcmp(im->arena.p + im->added[k].off, str, len) == 0)
            return im->added[k].id;
    return str_table_find(&im->vocab, im->arena.p, str, len)->id;
}

int ssm_tokenizer_is_special(const ssm_tokenizer *tk, int id)
{
    return has_token(tk, id) && tk->impl->special[id];
}

/* ---- freeing ---- */

static void free_impl(struct ssm_tokenizer_impl *im)
{
    if (!im)
        return;
    free(im->arena.p);
    free(im->vocab.slots);
    free(im->merges.slots);
    free(im->str_off);
    free(im->str_len);
    free(im->byte_off);
    free(im->byte_len);
    free(im->special);
    free(im->added);
    free(im->raw_set.items);
    free(im->norm_set.items);
    free(im);
}

void ssm_tokenizer_free(ssm_tokenizer *tk)
{
    if (!tk)
        return;
    free_impl(tk->impl);
    free(tk->path);
    memset(tk, 0, sizeof *tk);
}

/* ---- loading: helpers ---- */

static ssm_status data_error(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static ssm_status data_error(const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ssm_fail(SSM_ERR_DATA, "%s: %s", path, msg);
}

static ssm_status no_memory(const char *path)
{
    return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory while loading the tokenizer", path);
}

/* Append s[0 .. n) and a NUL to the arena; *off is where it starts. */
static int arena_add(struct ssm_tokenizer_impl *im, const char *s, size_t n, size_t *off)
{
    *off = im->arena.n;
    if (!buf_append(&im->arena, s, n) || !buf_append(&im->arena, "", 1))
        return 0;
    return 1;
}

static ssm_status read_file(const char *path, char **data, size_t *n)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return ssm_fail(SSM_ERR_NOINPUT, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return data_error(path, "is a directory, not a tokenizer.json file");
    uint64_t size;
    ssm_status bs = ssm_bound_file(path, &size);   /* no FIFO or device */
    if (bs != SSM_OK)
        return bs;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ssm_fail(SSM_ERR_NOINPUT, "%s: %s", path, strerror(errno));
    buf_t b = {0};
    char chunk[65536];
    size_t k;
    int ok = buf_reserve(&b, (size_t)st.st_size + 1);
    while (ok && (k = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = buf_append(&b, chunk, k);
    int bad = ferror(f);
    fclose(f);
    if (!ok || bad) {
        free(b.p);
        return ok ? ssm_fail(SSM_ERR_IO, "%s: read error", path) : no_memory(path);
    }
    *data = b.p;
    *n = b.n;
    return SSM_OK;
}

static ssm_status parse_json(const char *path, const char *data, size_t n, json_object **root)
{
    *root = NULL;
    if (n > INT32_MAX)
        return data_error(path, "too large for a tokenizer.json");
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return no_memory(path);
    json_object *o = json_tokener_parse_ex(tok, data, (int)n);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    while (o && err == json_tokener_success && end < n && strchr(" \t\r\n", data[end]))
        end++;
    if (!o || err != json_tokener_success || end != n) {
        json_object_put(o);
        return data_error(path, "not valid JSON (%s)",
                          err != json_tokener_success ? json_tokener_error_desc(err)
                                                      : "unexpected end or trailing data");
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return data_error(path, "not a JSON object");
    }
    *root = o;
    return SSM_OK;
}

/* o[key], or NULL when absent or JSON null. */
static json_object *get_key(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

static int get_bool(json_object *o, const char *key, int dflt)
{
    json_object *v = get_key(o, key);
    return v && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : dflt;
}

/* The "type" string of a component object, "" if missing. */
static const char *get_type(json_object *o)
{
    json_object *t = get_key(o, "type");
    return t && json_object_is_type(t, json_type_string) ? json_object_get_string(t) : "";
}

/* A token id: an integer in [0, MAX_TOKEN_ID). */
static int get_id(json_object *v, int *id)
{
    if (!v || !json_object_is_type(v, json_type_int))
        return 0;
    int64_t x = json_object_get_int64(v);
    if (x < 0 || x >= MAX_TOKEN_ID)
        return 0;
    *id = (int)x;
    return 1;
}

static int vocab_lookup(const struct ssm_tokenizer_impl *im, const char *s, size_t n)
{
    return str_table_find(&im->vocab, im->arena.p, s, n)->id;
}

/* ---- loading: the model ---- */

static ssm_status load_vocab(ssm_tokenizer *tk, json_object *model, int *max_id)
{
    struct ssm_tokenizer_impl *im = tk->impl;
    json_object *vocab = get_key(model, "vocab");
    if (!vocab || !json_object_is_type(vocab, json_type_object))
        return data_error(tk->path, "model.vocab is missing or not an object");
    if (!str_table_build(&im->vocab, (size_t)json_object_object_length(vocab)))
        return no_memory(tk->path);
    json_object_object_foreach(vocab, key, val) {
        int id;
        if (!get_id(val, &id))
            return data_error(tk->path, "model.vocab[\"%s\"] is not a token id in [0, %d)",
                              key, MAX_TOKEN_ID);
        size_t n = strlen(key), off;
        str_slot *e = str_table_find(&im->vocab, im->arena.p, key, n);
        if (e->id >= 0)
            continue;
        if (!arena_add(im, key, n, &off))
            return no_memory(tk->path);
        *e = (str_slot){off, (uint32_t)n, id};
        if (id > *max_id)
            *max_id = id;
    }
    return SSM_OK;
}

static ssm_status load_model_options(ssm_tokenizer *tk, json_object *model)
{
    struct ssm_tokenizer_impl *im = tk->impl;
    const char *opts[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        json_object *v = get_key(model, opts[k]);
        if (v && (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > 0))
            return data_error(tk->path, "model.%s is not supported (byte-level BPE has none)",
                              opts[k]);
    }
    json_object *unk = get_key(model, "unk_token");
    im->unk_id = -1;
    if (unk && json_object_is_type(unk, json_type_string))
        im->unk_id = vocab_lookup(im, json_object_get_string(unk),
                                  (size_t)json_object_get_string_len(unk));
    im->fuse_unk = get_bool(model, "fuse_unk", 0);
    im->ignore_merges = get_bool(model, "ignore_merges", 0);
    return SSM_OK;
}

/* Merge k as its two token strings: "a b" (split at the first space) or ["a", "b"]. */
static int merge_parts(json_object *m, const char **a, size_t *na, const char **b, size_t *nb)
{
    if (json_object_is_type(m, json_type_string)) {
        const char *s = json_object_get_string(m);
        size_t n = (size_t)json_object_get_string_len(m);
        const char *sp = memchr(s, ' ', n);
        if (!sp)
            return 0;
        *a = s, *na = (size_t)(sp - s), *b = sp + 1, *nb = n - *na - 1;
        return 1;
    }
    if (!json_object_is_type(m, json_type_array) || json_object_array_length(m) != 2)
        return 0;
    json_object *x = json_object_array_get_idx(m, 0), *y = json_object_array_get_idx(m, 1);
    if (!json_object_is_type(x, json_type_string) || !json_object_is_type(y, json_type_string))
        return 0;
    *a = json_object_get_string(x), *na = (size_t)json_object_get_string_len(x);
    *b = json_object_get_string(y), *nb = (size_t)json_object_get_string_len(y);
    return 1;
}

/* Add merge rank k; a later duplicate of a pair replaces the earlier one,
 * as in Hugging Face. */
static ssm_status add_merge(ssm_tokenizer *tk, json_object *m, int k, buf_t *cat)
{
    struct ssm_tokenizer_impl *im = tk->impl;
    const char *a, *b;
    size_t na, nb;
    if (!merge_parts(m, &a, &na, &b, &nb))
        return data_error(tk->path, "model.merges[%d] is not \"a b\" nor [\"a\", \"b\"]", k);
    int ia = vocab_lookup(im, a, na), ib = vocab_lookup(im, b, nb);
    cat->n = 0;
    if (!buf_append(cat, a, na) || !buf_append(cat, b, nb))
        return no_memory(tk->path);
    int ic = vocab_lookup(im, cat->p, cat->n);
    if (ia < 0 || ib < 0 || ic < 0)
        return data_error(tk->path, "model.merges[%d] (\"%.*s\" \"%.*s\"): token \"%.*s\" is not "
                          "in the vocabulary", k, (int)na, a, (int)nb, b,
                          ia < 0 ? (int)na : ib < 0 ? (int)nb : (int)cat->n,
                          ia < 0 ? a : ib < 0 ? b : cat->p);
    merge_slot *e = merge_table_find(&im->merges, pair_key(ia, ib));
    *e = (merge_slot){pair_key(ia, ib), k, ic};
    return SSM_OK;
}

static ssm_status load_merges(ssm_tokenizer *tk, json_object *model)
{
    json_object *merges = get_key(model, "merges");
    if (!merges || !json_object_is_type(merges, json_type_array))
        return data_error(tk->path, "model.merges is missing or not an array");
    size_t n = json_object_array_length(merges);
    if (n >= MAX_TOKEN_ID)
        return data_error(tk->path, "model.merges has too many entries (%zu)", n);
    if (!merge_table_build(&tk->impl->merges, n))
        return no_memory(tk->path);
    buf_t cat = {0};
    ssm_status s = SSM_OK;
    for (size_t k = 0; k < n && s == SSM_OK; k++)
        s = add_merge(tk, json_object_array_get_idx(merges, k), (int)k, &cat);
    free(cat.p);
    tk->n_merges = (int)n;
    return s;
}

static ssm_status load_model(ssm_tokenizer *tk, json_object *root, int *max_id)
{
    json_object *model = get_key(root, "model");
    if (!model || !json_object_is_type(model, json_type_object))
        return data_error(tk->path, "no \"model\" object");
    const char *type = get_type(model);
    if (strcmp(type, "BPE") != 0 && !(type[0] == 0 && get_key(model, "merges")))
        return data_error(tk->path, "unsupported model type \"%s\" (only BPE is supported)",
                          type);
    ssm_status s = load_vocab(tk, model, max_id);
    if (s == SSM_OK)
        s = load_model_options(tk, model);
    if (s == SSM_OK)
        s = load_merges(tk, model);
    return s;
}

/* ---- loading: added tokens ---- */

static ssm_status load_added_one(ssm_tokenizer *tk, json_object *o, int k, int *max_id)
{
    struct ssm_tokenizer_impl *im = tk->impl;
    json_object *c = get_key(o, "content");
    added_token t = {0};
    if (!json_object_is_type(o, json_type_object) || !get_id(get_key(o, "id"), &t.id) ||
        !c || !json_object_is_type(c, json_type_string))
        return data_error(tk->path, "added_tokens[%d] needs an integer \"id\" in [0, %d) "
                          "and a string \"content\"", k, MAX_TOKEN_ID);
    t.len = (size_t)json_object_get_string_len(c);
    if (t.len == 0)
        return SSM_OK;                              /* ignored, as in Hugging Face */
    if (!arena_add(im, json_object_get_string(c), t.len, &t.off))
        return no_memory(tk->path);
    t.special = get_bool(o, "special", 0);
    t.normalized = get_bool(o, "normalized", !t.special);
    t.lstrip = get_bool(o, "lstrip", 0);
    t.rstrip = get_bool(o, "rstrip", 0);
    t.single_word = get_bool(o, "single_word", 0);
    im->added[tk->n_added++] = t;
    if (t.id > *max_id)
        *max_id = t.id;
    return SSM_OK;
}

static ssm_status load_added(ssm_tokenizer *tk, json_object *root, int *max_id)
{
    json_object *arr = get_key(root, "added_tokens");
    if (!arr)
        return SSM_OK;
    if (!json_object_is_type(arr, json_type_array))
        return data_error(tk->path, "added_tokens is not an array");
    size_t n = json_object_array_length(arr);
    tk->impl->added = calloc(n + 1, sizeof *tk->impl->added);
    if (!tk->impl->added)
        return no_memory(tk->path);
    ssm_status s = SSM_OK;
    for (size_t k = 0; k < n && s == SSM_OK; k++)
        s = load_added_one(tk, json_object_array_get_idx(arr, k), (int)k, max_id);
    return s;
}

/* ---- loading: normalizer, pre-tokenizer, decoder ---- */

static int unicode_normalizer(const char *type, uninorm_t *nf)
{
    if (strcmp(type, "NFC") == 0)
        *nf = UNINORM_NFC;
    else if (strcmp(type, "NFD") == 0)
        *nf = UNINORM_NFD;
    else if (strcmp(type, "NFKC") == 0)
        *nf = UNINORM_NFKC;
    else if (strcmp(type, "NFKD") == 0)
        *nf = UNINORM_NFKD;
    else
        return 0;
    return 1;
}

static ssm_status add_normalizer(ssm_tokenizer *tk, json_object *o)
{
    struct ssm_tokenizer_impl *im = tk->impl;
    const char *type = get_type(o);
    if (im->n_norm == MAX_NORMALIZERS)
        return data_error(tk->path, "more than %d normalizers", MAX_NORMALIZERS);
    if (!unicode_normalizer(type, &im->norm[im->n_norm]))
        return data_error(tk->path, "unsupported normalizer \"%s\" (supported: NFC, NFD, "
                          "NFKC, NFKD, Sequence of those, null)", type);
    im->n_norm++;
    return SSM_OK;
}

static ssm_status load_normalizer(ssm_tokenizer *tk, json_object *root)
{
    json_object *o = get_key(root, "normalizer");
    if (!o)
        return SSM_OK;
    if (strcmp(get_type(o), "Sequence") != 0)
        return add_normalizer(tk, o);
    json_object *list = get_key(o, "normalizers");
    if (!list || !json_object_is_type(list, json_type_array))
        return data_error(tk->path, "normalizer Sequence without a \"normalizers\" array");
    ssm_status s = SSM_OK;
    for (size_t k = 0; k < json_object_array_length(list) && s == SSM_OK; k++)
        s = add_normalizer(tk, json_object_array_get_idx(list, k));
    return s;
}

static ssm_status load_pre_tokenizer(ssm_tokenizer *tk, json_object *root)
{
    json_object *o = get_key(root, "pre_tokenizer");
    if (o && strcmp(get_type(o), "Sequence") == 0) {
        json_object *list = get_key(o, "pretokenizers");
        o = list && json_object_is_type(list, json_type_array) &&
            json_object_array_length(list) == 1 ? json_object_array_get_idx(list, 0) : NULL;
    }
    if (!o || strcmp(get_type(o), "ByteLevel") != 0)
        return data_error(tk->path, "unsupported pre_tokenizer \"%s\" (only ByteLevel is "
                          "supported)", o ? get_type(o) : "null");
    tk->add_prefix_space = get_bool(o, "add_prefix_space", 1);
    tk->use_regex = get_bool(o, "use_regex", 1);
    return SSM_OK;
}

static ssm_status check_decoder(ssm_tokenizer *tk, json_object *root)
{
    json_object *o = get_key(root, "decoder");
    if (o && strcmp(get_type(o), "ByteLevel") != 0)
        return data_error(tk->path, "unsupported decoder \"%s\" (only ByteLevel is supported)",
                          get_type(o));
    return SSM_OK;
}

/* ---- loading: derived tables ---- */

static ssm_status build_id_tables(ssm_tokenizer *tk, int max_id)
{
    struct ssm_tokenizer_impl *im = tk->impl;
    size_t n = (size_t)max_id + 1;
    tk->n_vocab = max_id + 1;
    im->str_off = malloc(n * sizeof *im->str_off);
    im->str_len = calloc(n, sizeof *im->str_len);
    im->byte_off = calloc(n, sizeof *im->byte_off);
    im->byte_len = calloc(n, sizeof *im->byte_len);
    im->special = calloc(n, 1);
    if (!im->str_off || !im->str_len || !im->byte_off || !im->byte_len || !im->special)
        return no_memory(tk->path);
    for (size_t i = 0; i < n; i++)
        im->str_off[i] = SIZE_MAX;
    for (size_t i = 0; i < im->vocab.cap; i++) {
        const str_slot *e = &im->vocab.slots[i];
        if (e->id >= 0 && im->str_off[e->id] == SIZE_MAX)
            im->str_off[e->id] = e->off, im->str_len[e->id] = e->len;
    }
    for (int k = 0; k < tk->n_added; k++) {          /* added tokens take precedence */
        const added_token *t = &im->added[k];
        im->str_off[t->id] = t->off;
        im->str_len[t->id] = (uint32_t)t->len;
        im->special[t->id] = (unsigned char)t->special;
    }
    return SSM_OK;
}

/* The ByteLevel decoder on one token: its characters' bytes, or the token's
 * own UTF-8 if any character is not a byte-level one. */
static int decode_token(const struct ssm_tokenizer_impl *im, const char *s, size_t n, buf_t *out)
{
    out->n = 0;
    for (size_t i = 0; i < n;) {
        ucs4_t uc;
        i += (size_t)next_char(s + i, n - i, &uc);
        if (uc >= N_BYTE_CHARS || im->char_byte[uc] < 0) {
            out->n = 0;
            return buf_append(out, s, n);
        }
        char b = (char)im->char_byte[uc];
        if (!buf_append(out, &b, 1))
            return 0;
    }
    return buf_reserve(out, 1);
}

static ssm_status build_decoded(ssm_tokenizer *tk)
{
    struct ssm_tokenizer_impl *im = tk->impl;
    buf_t tmp = {0}, copy = {0};
    int ok = 1;
    for (int id = 0; ok && id < tk->n_vocab; id++) {
        if (im->str_off[id] == SIZE_MAX)
            continue;
        copy.n = 0;   /* the arena may move while we append to it */
        ok = buf_append(&copy, im->arena.p + im->str_off[id], im->str_len[id]) &&
             decode_token(im, copy.p, copy.n, &tmp) &&
             arena_add(im, tmp.p, tmp.n, &im->byte_off[id]);
        im->byte_len[id] = (uint32_t)tmp.n;
    }
    free(tmp.p);
    free(copy.p);
    return ok ? SSM_OK : no_memory(tk->path);
}

static void build_byte_ids(struct ssm_tokenizer_impl *im)
{
    for (int b = 0; b < 256; b++) {
        buf_t u = {0};
        im->byte_id[b] = buf_append_cp(&u, im->byte_char[b]) ? vocab_lookup(im, u.p, u.n) : -1;
        free(u.p);
    }
}

/* What a normalized added token matches: its content normalised. */
static int set_match_text(struct ssm_tokenizer_impl *im, added_token *t)
{
    t->match_off = t->off;
    t->match_len = t->len;
    if (!t->normalized || im->n_norm == 0)
        return 1;
    buf_t a = {0}, b = {0}, copy = {0};
    const char *s;
    size_t n = 0;
    int ok = buf_append(&copy, im->arena.p + t->off, t->len) &&
             normalize_text(im, copy.p, copy.n, &a, &b, &s, &n) &&
             arena_add(im, s, n, &t->match_off);
    t->match_len = n;
    free(a.p);
    free(b.p);
    free(copy.p);
    return ok;
}

static int build_match_set(struct ssm_tokenizer_impl *im, int n_added, match_set *set,
                           int normalized)
{
    memset(set->start, 0, sizeof set->start);
    set->items = malloc(((size_t)n_added + 1) * sizeof *set->items);
    if (!set->items)
        return 0;
    for (int k = 0; k < n_added; k++)
        if (im->added[k].normalized == normalized && im->added[k].match_len > 0)
            set->start[(unsigned char)im->arena.p[im->added[k].match_off] + 1]++;
    for (int c = 0; c < 256; c++)
        set->start[c + 1] += set->start[c];
    int fill[256];
    memcpy(fill, set->start, sizeof fill);
    for (int k = 0; k < n_added; k++)
        if (im->added[k].normalized == normalized && im->added[k].match_len > 0)
            set->items[fill[(unsigned char)im->arena.p[im->added[k].match_off]]++] = k;
    return 1;
}

static ssm_status build_matching(ssm_tokenizer *tk)
{
    struct ssm_tokenizer_impl *im = tk->impl;
    for (int k = 0; k < tk->n_added; k++)
        if (!set_match_text(im, &im->added[k]))
            return no_memory(tk->path);
    if (!build_match_set(im, tk->n_added, &im->raw_set, 0) ||
        !build_match_set(im, tk->n_added, &im->norm_set, 1))
        return no_memory(tk->path);
    return SSM_OK;
}

/* ---- loading: entry points ---- */

static ssm_status start_tokenizer(ssm_tokenizer *tk, const char *path, ssm_tokenizer_kind kind)
{
    memset(tk, 0, sizeof *tk);
    tk->kind = kind;
    tk->path = strdup(path);
    tk->impl = calloc(1, sizeof *tk->impl);
    if (!tk->path || !tk->impl)
        return no_memory(path);
    build_byte_chars(tk->impl);
    build_ascii_classes(tk->impl);
    tk->impl->unk_id = -1;
    return SSM_OK;
}

/* The tables are indexed by id: an id must be below the file's byte count
 * (a real vocabulary spends several bytes on each of its ids). */
static ssm_status build_from_json(ssm_tokenizer *tk, json_object *root, size_t file_bytes)
{
    int max_id = -1;
    ssm_status s = load_model(tk, root, &max_id);
    if (s == SSM_OK)
        s = load_added(tk, root, &max_id);
    if (s == SSM_OK && max_id < 0)
        s = data_error(tk->path, "the vocabulary is empty");
    if (s == SSM_OK && (size_t)max_id >= file_bytes)
        s = data_error(tk->path, "corrupt: token id %d in a file of %zu bytes", max_id, file_bytes);
    if (s == SSM_OK)
        s = load_normalizer(tk, root);
    if (s == SSM_OK)
        s = load_pre_tokenizer(tk, root);
    if (s == SSM_OK)
        s = check_decoder(tk, root);
    if (s == SSM_OK)
        s = build_id_tables(tk, max_id);
    if (s == SSM_OK)
        s = build_decoded(tk);
    if (s == SSM_OK)
        s = build_matching(tk);
    if (s == SSM_OK)
        build_byte_ids(tk->impl);
    return s;
}

ssm_status ssm_tokenizer_load(ssm_tokenizer *tk, const char *path)
{
    char *data = NULL;
    size_t n = 0;
    json_object *root = NULL;
    ssm_status s = start_tokenizer(tk, path, SSM_TOKENIZER_BPE);
    if (s == SSM_OK)
        s = read_file(path, &data, &n);
    if (s == SSM_OK)
        s = parse_json(path, data, n, &root);
    free(data);
    if (s == SSM_OK)
        s = build_from_json(tk, root, n);
    json_object_put(root);
    if (s != SSM_OK)
        ssm_tokenizer_free(tk);
    return s;
}

static ssm_status add_byte_vocab(ssm_tokenizer *tk)
{
    struct ssm_tokenizer_impl *im = tk->impl;
    if (!str_table_build(&im->vocab, 256))
        return no_memory(tk->path);
    buf_t u = {0};
    int ok = 1;
    for (int b = 0; ok && b < 256; b++) {
        size_t off;
        u.n = 0;
        ok = buf_append_cp(&u, im->byte_char[b]) && arena_add(im, u.p, u.n, &off);
        if (ok)
            *str_table_find(&im->vocab, im->arena.p, u.p, u.n) = (str_slot){off, (uint32_t)u.n, b};
    }
    free(u.p);
    return ok ? SSM_OK : no_memory(tk->path);
}

ssm_status ssm_tokenizer_build_bytes(ssm_tokenizer *tk)
{
    ssm_status s = start_tokenizer(tk, "bytes", SSM_TOKENIZER_BYTES);
    if (s == SSM_OK)
        s = add_byte_vocab(tk);
    if (s == SSM_OK && !merge_table_build(&tk->impl->merges, 0))
        s = no_memory(tk->path);
    if (s == SSM_OK)
        s = build_id_tables(tk, 255);
    if (s == SSM_OK)
        s = build_decoded(tk);
    if (s == SSM_OK)
        s = build_matching(tk);
    if (s == SSM_OK)
        build_byte_ids(tk->impl);
    if (s != SSM_OK)
        ssm_tokenizer_free(tk);
    return s;
}
