/* test_tokenizer.c — Criterion tests of the tokenizer.json byte-level BPE
 * (data/tokenizer.c): hand-checked merges on tiny tokenizers, pre-tokenisation
 * and encoding against the Python reference tests/ref/bpe_ref.py on the
 * fixture tests/data/tokenizer_fortunes.json and variants of it, round trips
 * for arbitrary and invalid UTF-8, added and special tokens, the byte
 * tokenizer, malformed files, and encoding speed. Run from the repository
 * root (tests/run.sh does). */
#include <criterion/criterion.h>

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/tokenizer.h"
#include "engine/status.h"
#include "tests/tmpdir.h"

#define FIXTURE "tests/data/tokenizer_fortunes.json"
#define REF_SCRIPT "tests/ref/bpe_ref.py"
#define CORPUS_FILE "/usr/share/games/fortunes/science"
#define FIXTURE_VOCAB 1263
#define FIXTURE_MERGES 1000
#define ID_ENDOFTEXT 0
#define ID_TWO_SPACES 1258

/* ---- fixtures ---- */


TestSuite(tiny, .init = tmpdir_make, .fini = tmpdir_remove);
TestSuite(fixture, .init = tmpdir_make, .fini = tmpdir_remove);
TestSuite(ref, .init = tmpdir_make, .fini = tmpdir_remove);
TestSuite(errors, .init = tmpdir_make, .fini = tmpdir_remove);
TestSuite(bytes);

/* tmpdir/name (static buffer, one live result per slot). */
static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, name);
    return buf[slot];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static const char *python(void)
{
    const char *p = getenv("PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

static void load_ok(ssm_tokenizer *tk, const char *path)
{
    ssm_status st = ssm_tokenizer_load(tk, path);
    cr_assert_eq(st, SSM_OK, "load %s: %s", path, ssm_last_error());
}

static void assert_error(ssm_status st, ssm_status want, const char *needle)
{
    cr_assert_eq(st, want, "status %d (%s), want %d; message: %s", st,
                 ssm_status_name(st), want, ssm_last_error());
    cr_assert_not_null(strstr(ssm_last_error(), needle),
                       "message \"%s\" lacks \"%s\"", ssm_last_error(), needle);
}

/* ---- text blobs (inputs that may hold any bytes) ---- */

typedef struct {
    char *p;
    size_t n;
} blob;

typedef struct {
    blob *v;
    int n, cap;
} blobs;

static void blobs_add(blobs *b, const char *p, size_t n)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->v = realloc(b->v, (size_t)b->cap * sizeof *b->v);
        cr_assert_not_null(b->v);
    }
    char *c = malloc(n + 1);
    cr_assert_not_null(c);
    memcpy(c, p, n);
    c[n] = 0;
    b->v[b->n++] = (blob){c, n};
}

static void blobs_free(blobs *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->v[i].p);
    free(b->v);
    memset(b, 0, sizeof *b);
}

#define S(lit) {lit, sizeof(lit) - 1}
typedef struct {
    const char *s;
    size_t n;
} snippet;

/* Pieces of text the random inputs are made of: ASCII words and
 * contractions, spaces, tabs and newlines in runs, digits, accents (composed
 * and decomposed), CJK, emoji, Unicode spaces, letters of unusual categories,
 * added-token look-alikes, and invalid UTF-8. */
static const snippet SNIPPETS[] = {
    S("Hello"), S(" world"), S("the"), S(" quick"), S("don't"), S("I'm"), S("we've"),
    S("they'll"), S("she'd"), S("'s"), S("'re"), S("'S"), S("'"), S("''"), S(" "), S("  "),
    S("   "), S("        "), S("\t"), S("\t\t"), S("\n"), S("\n\n"), S("\r\n"), S(" \t "),
    S(" \n"), S("12345"), S(" 42"), S("3.14"), S("1,000"), S("\xc2\xbd"), S("\xc2\xb2"),
    S("\xe2\x85\xab"), S("caf\xc3\xa9"), S("cafe\xcc\x81"), S("na\xc3\xafve"),
    S("Stra\xc3\x9f" "e"), S("\xe6\x9d\xb1\xe4\xba\xac"), S("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"),
    S("\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4"), S("\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd"),
    S("\xf0\x9f\x99\x82"), S("\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80"),
    S("\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd"), S("\xe2\x80\x94"), S("\xe2\x80\xa6"),
    S("\xe2\x80\x9cquotes\xe2\x80\x9d"), S("\xc2\xa0"), S("\xe3\x80\x80"), S("\xe2\x80\xa8"),
    S("\xe2\x80\x8b"), S("\x1c"), S("\x00"), S("\x7f"), S("$%^&*"), S("!!"), S("?!"), S(" ?"),
    S("<|endoftext|>"), S("<|endof"), S("<|padding|>"), S("ony"), S(" ony"), S("Tony"),
    S("<mask>"), S(" <mask> "), S("[RAW]"), S("[RAW]  x"), S("\xff"), S("\xc3"),
    S("\xe2\x82"), S("\xed\xa0\x80"), S("\xc0\xaf"), S("\xf4\x90\x80\x80"), S("\x80"),
    S("\xef\xac\x81"), S("\xe2\x84\xab"), S("x\xcc\x81\xcc\xa3"), S("\xef\xbc\xa1\xef\xbc\xa2"),
    S("\xc7\x85"), S("\xca\xb0"), S("\xd9\xa1\xd9\xa2"), S("a_b"), S("e\xcc\x81"),
    S("\xe1\x84\x80\xe1\x85\xa1"), S("\xe2\x80\x80"), S("\xe1\x9a\x80"),
};
#define N_SNIPPETS ((int)(sizeof SNIPPETS / sizeof *SNIPPETS))

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* count inputs of 1..max_parts random snippets. */
static void add_random_inputs(blobs *b, uint32_t seed, int count, int max_parts)
{
    char buf[4096];
    for (int i = 0; i < count; i++) {
        size_t n = 0;
        int parts = 1 + (int)(lcg(&seed) % (uint32_t)max_parts);
        for (int k = 0; k < parts; k++) {
            const snippet *s = &SNIPPETS[lcg(&seed) % N_SNIPPETS];
            memcpy(buf + n, s->s, s->n);
            n += s->n;
        }
        blobs_add(b, buf, n);
    }
}

/* Every snippet alone, and a few fixed cases. */
static void add_fixed_inputs(blobs *b)
{
    for (int i = 0; i < N_SNIPPETS; i++)
        blobs_add(b, SNIPPETS[i].s, SNIPPETS[i].n);
    const char *fixed[] = {"", "Hello there       dear", "Hello there\nHello there",
                           "  leading", "trailing  ", "a  \n  b", "x\t\ty", "It's 5 o'clock",
                           "<|endoftext|><|endoftext|>", "A<|endoftext|>B"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        blobs_add(b, fixed[i], strlen(fixed[i]));
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)sz + 1);
    cr_assert_not_null(p);
    cr_assert_eq(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    p[sz] = 0;
    *n = (size_t)sz;
    return p;
}

/* Copy file from to file to, with the first occurrence of old replaced. */
static void copy_replacing(const char *from, const char *to, const char *old, const char *new)
{
    size_t n;
    char *j = read_all(from, &n);
    char *at = strstr(j, old);
    cr_assert_not_null(at, "%s lacks %s", from, old);
    FILE *f = fopen(to, "wb");
    cr_assert_not_null(f);
    fwrite(j, 1, (size_t)(at - j), f);
    fputs(new, f);
    fputs(at + strlen(old), f);
    fclose(f);
    free(j);
}

/* count windows of real text from the fortunes corpus. */
static void add_corpus_inputs(blobs *b, uint32_t seed, int count, size_t width)
{
    size_t n;
    char *text = read_all(CORPUS_FILE, &n);
    cr_assert_gt(n, width);
    for (int i = 0; i < count; i++)
        blobs_add(b, text + lcg(&seed) % (n - width), width);
    free(text);
}

static void default_inputs(blobs *b, uint32_t seed)
{
    add_fixed_inputs(b);
    add_random_inputs(b, seed, 160, 10);
    add_corpus_inputs(b, seed, 12, 400);
}

/* ---- the Python reference ---- */

static void hex_append(char **out, size_t *n, size_t *cap, const char *p, size_t len)
{
    static const char H[] = "0123456789abcdef";
    if (*n + 2 * len + 32 > *cap) {
        *cap = 2 * (*n + 2 * len + 32);
        *out = realloc(*out, *cap);
        cr_assert_not_null(*out);
    }
    for (size_t i = 0; i < len; i++) {
        (*out)[(*n)++] = H[(unsigned char)p[i] >> 4];
        (*out)[(*n)++] = H[(unsigned char)p[i] & 15];
    }
    (*out)[*n] = 0;
}

static void str_append(char **out, size_t *n, size_t *cap, const char *s)
{
    size_t len = strlen(s);
    if (*n + len + 1 > *cap) {
        *cap = 2 * (*n + len + 1);
        *out = realloc(*out, *cap);
        cr_assert_not_null(*out);
    }
    memcpy(*out + *n, s, len + 1);
    *n += len;
}

static void write_inputs(const char *path, const blobs *in)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < in->n; i++) {
        char *h = NULL;
        size_t n = 0, cap = 0;
        hex_append(&h, &n, &cap, in->v[i].p, in->v[i].n);
        fprintf(f, "%s\n", h ? h : "");
        free(h);
    }
    fclose(f);
}

/* Run `bpe_ref.py args` and return its output lines (newlines stripped). */
static char **run_ref(const char *args, int *n_lines)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s %s", python(), REF_SCRIPT, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    char **lines = NULL, *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0;
    while ((len = getline(&line, &cap, p)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[len - 1] = 0;
        lines = realloc(lines, (size_t)(n + 1) * sizeof *lines);
        lines[n++] = strdup(line);
    }
    free(line);
    int rc = pclose(p);
    cr_assert_eq(rc, 0, "%s failed (status %d)", cmd, rc);
    *n_lines = n;
    return lines;
}

static void free_lines(char **lines, int n)
{
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

/* A variant of the fixture, written by bpe_ref.py with options opts. */
static const char *make_variant(const char *name, const char *opts)
{
    const char *out = tpath(name);
    char args[1024];
    int n;
    snprintf(args, sizeof args, "variant %s %s %s", FIXTURE, out, opts);
    char **lines = run_ref(args, &n);
    free_lines(lines, n);
    return out;
}

/* The C side in the reference's format: hex pieces ("@id" for added). */
static char *format_pieces(const ssm_tokenizer *tk, const blob *in)
{
    char *norm;
    size_t norm_len, n = 0, cap = 0;
    ssm_tokenizer_piece *pieces;
    int np;
    cr_assert_eq(ssm_tokenizer_pretokenize(tk, in->p, in->n, &norm, &norm_len, &pieces, &np),
                 SSM_OK, "%s", ssm_last_error());
    char *out = NULL;
    str_append(&out, &n, &cap, "");
    for (int k = 0; k < np; k++) {
        char id[32] = "";
        if (pieces[k].added_id >= 0)
            snprintf(id, sizeof id, "@%d", pieces[k].added_id);
        if (k > 0)
            str_append(&out, &n, &cap, " ");
        hex_append(&out, &n, &cap, norm + pieces[k].off, pieces[k].len);
        str_append(&out, &n, &cap, id);
    }
    free(norm);
    free(pieces);
    return out;
}

static char *format_ids(const ssm_tokenizer *tk, const blob *in)
{
    int *ids, n_ids;
    cr_assert_eq(ssm_tokenizer_encode(tk, in->p, in->n, &ids, &n_ids), SSM_OK, "%s",
                 ssm_last_error());
    char *out = NULL, num[32];
    size_t n = 0, cap = 0;
    str_append(&out, &n, &cap, "");
    for (int k = 0; k < n_ids; k++) {
        snprintf(num, sizeof num, k > 0 ? " %d" : "%d", ids[k]);
        str_append(&out, &n, &cap, num);
    }
    free(ids);
    return out;
}

/* Compare pre-tokenisation ("pretok") or ids ("encode") with the reference
 * on every input; report the first few mismatches. */
static void compare_with_ref(const char *file, const blobs *in, const char *what)
{
    ssm_tokenizer tk;
    load_ok(&tk, file);
    const char *inputs = tpath("inputs.hex");
    write_inputs(inputs, in);
    char args[1024];
    snprintf(args, sizeof args, "%s %s %s", what, file, inputs);
    int n_lines, bad = 0;
    char **lines = run_ref(args, &n_lines);
    cr_assert_eq(n_lines, in->n, "reference gave %d lines for %d inputs", n_lines, in->n);
    for (int i = 0; i < in->n; i++) {
        int pre = strcmp(what, "pretok") == 0;
        char *mine = pre ? format_pieces(&tk, &in->v[i]) : format_ids(&tk, &in->v[i]);
        if (strcmp(mine, lines[i]) != 0 && bad++ < 5) {
            char *h = NULL;
            size_t n = 0, cap = 0;
            hex_append(&h, &n, &cap, in->v[i].p, in->v[i].n);
            cr_log_error("%s %s input %d (hex %s):\n  C:   %s\n  ref: %s", file, what, i,
                         h ? h : "", mine, lines[i]);
            free(h);
        }
        free(mine);
    }
    cr_expect_eq(bad, 0, "%s: %d of %d inputs differ from the reference (%s)", file, bad,
                 in->n, what);
    free_lines(lines, n_lines);
    ssm_tokenizer_free(&tk);
}

static void compare_both(const char *file, uint32_t seed)
{
    blobs in = {0};
    default_inputs(&in, seed);
    compare_with_ref(file, &in, "pretok");
    compare_with_ref(file, &in, "encode");
    blobs_free(&in);
}

/* ---- tiny hand-made tokenizers ---- */

/* GPT-2's byte -> code point, re-derived here for the tiny files. */
static unsigned byte_cp(int b)
{
    unsigned next = 256;
    for (int c = 0; c < 256; c++) {
        int keep = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        if (c == b)
            return keep ? (unsigned)c : next;
        next += !keep;
    }
    return 0;
}

/* A tokenizer.json whose ids 0..255 are the byte characters in byte order,
 * then one token per merge ("a b" -> "ab", ids 256, 257, ...), then extra
 * raw JSON (added tokens, normalizer, ...) in the top-level object. */
static void write_tiny(const char *path, const char *const *merges, int n_merges,
                       const char *extra)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{%s\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false},\n"
               "\"decoder\": {\"type\": \"ByteLevel\"},\n"
               "\"model\": {\"type\": \"BPE\", \"vocab\": {", extra);
    for (int b = 0; b < 256; b++) {
        unsigned cp = byte_cp(b);
        if (cp == '"' || cp == '\\')
            fprintf(f, "\"\\%c\": %d, ", (char)cp, b);
        else if (cp < 0x80)
            fprintf(f, "\"%c\": %d, ", (char)cp, b);
        else
            fprintf(f, "\"%c%c\": %d, ", 0xC0 | (cp >> 6), 0x80 | (cp & 0x3F), b);
    }
    for (int k = 0; k < n_merges; k++) {
        const char *sp = strchr(merges[k], ' ');
        fprintf(f, "\"%.*s%s\": %d, ", (int)(sp - merges[k]), merges[k], sp + 1, 256 + k);
    }
    fprintf(f, "\"<unused>\": %d}, \"merges\": [", 256 + n_merges);
    for (int k = 0; k < n_merges; k++)
        fprintf(f, "%s\"%s\"", k ? ", " : "", merges[k]);
    fprintf(f, "]}}\n");
    fclose(f);
}

static void expect_ids(const ssm_tokenizer *tk, const char *text, const int *want, int n_want)
{
    int *ids, n;
    cr_assert_eq(ssm_tokenizer_encode(tk, text, strlen(text), &ids, &n), SSM_OK, "%s",
                 ssm_last_error());
    int same = n == n_want;
    for (int i = 0; same && i < n; i++)
        same = ids[i] == want[i];
    char got[512] = "";
    for (int i = 0; i < n && strlen(got) < 480; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), " %d", ids[i]);
    cr_expect(same, "encode(\"%s\") gave [%s ]", text, got);
    free(ids);
}

#define EXPECT_IDS(tk, text, ...)                                               \
    do {                                                                        \
        const int want_[] = {__VA_ARGS__};                                      \
        expect_ids(tk, text, want_, (int)(sizeof want_ / sizeof *want_));       \
    } while (0)

/* ---- tiny: BPE by hand ---- */

Test(tiny, merges_by_rank)
{
    const char *merges[] = {"h e", "l l", "he ll", "\xc4\xa0 hell"};
    write_tiny(tpath("t.json"), merges, 4, "");
    ssm_tokenizer tk;
    load_ok(&tk, tpath("t.json"));
    cr_assert_eq(ssm_tokenizer_vocab_size(&tk), 261);
    cr_assert_eq(tk.n_merges, 4);
    EXPECT_IDS(&tk, "hello", 258, 'o');                    /* hell o */
    EXPECT_IDS(&tk, "hello hello", 258, 'o', 259, 'o');    /* Ġhell merges last */
    EXPECT_IDS(&tk, "lll", 257, 'l');                      /* leftmost first */
    EXPECT_IDS(&tk, "llll", 257, 257);
    EXPECT_IDS(&tk, "ehe", 'e', 256);
    ssm_tokenizer_free(&tk);
}

Test(tiny, lower_rank_wins)
{
    const char *ab_first[] = {"a b", "b c"}, *bc_first[] = {"b c", "a b"};
    ssm_tokenizer tk;
    write_tiny(tpath("ab.json"), ab_first, 2, "");
    load_ok(&tk, tpath("ab.json"));
    EXPECT_IDS(&tk, "abc", 256, 'c');
    ssm_tokenizer_free(&tk);
    write_tiny(tpath("bc.json"), bc_first, 2, "");
    load_ok(&tk, tpath("bc.json"));
    EXPECT_IDS(&tk, "abc", 'a', 256);
    ssm_tokenizer_free(&tk);
}

Test(tiny, pretokenizer_splits)
{
    const char *merges[] = {"\xc4\xa0 \xc4\xa0"};   /* ĠĠ = 256 */
    write_tiny(tpath("t.json"), merges, 1, "");
    ssm_tokenizer tk;
    load_ok(&tk, tpath("t.json"));
    /* "a   b": "a", "ĠĠ" (\s+(?!\S) leaves one space), "Ġb" */
    EXPECT_IDS(&tk, "a   b", 'a', 256, 0x20 + 0, 'b');
    EXPECT_IDS(&tk, "a\t\tb", 'a', '\t', '\t', 'b');
    EXPECT_IDS(&tk, "x  ", 'x', 256);                       /* trailing run kept whole */
    EXPECT_IDS(&tk, "it's", 'i', 't', '\'', 's');
    ssm_tokenizer_free(&tk);
}

Test(tiny, prefix_space_and_no_regex)
{
    ssm_tokenizer tk;
    const char *merges[] = {"\xc4\xa0 h", "\xc4\xa0h i"};   /* Ġh = 256, Ġhi = 257 */
    write_tiny(tpath("t.json"), merges, 2, "");
    copy_replacing(tpath("t.json"), tpath("p.json"), "\"add_prefix_space\": false",
                   "\"add_prefix_space\": true");
    load_ok(&tk, tpath("p.json"));
    cr_assert_eq(tk.add_prefix_space, 1);
    EXPECT_IDS(&tk, "hi", 257);
    EXPECT_IDS(&tk, " hi", 257);
    char *out;
    size_t len;
    int ids[] = {257};
    cr_assert_eq(ssm_tokenizer_decode(&tk, ids, 1, &out, &len), SSM_OK);
    cr_expect_str_eq(out, " hi");
    free(out);
    ssm_tokenizer_free(&tk);
}

Test(tiny, added_token_options)
{
    const char *extra =
        "\"added_tokens\": ["
        "{\"id\": 300, \"content\": \"<m>\", \"special\": true, \"lstrip\": true, \"rstrip\": true},"
        "{\"id\": 301, \"content\": \"ab\", \"special\": false, \"single_word\": true},"
        "{\"id\": 302, \"content\": \"<m><m>\", \"special\": true}],\n";
    write_tiny(tpath("a.json"), NULL, 0, extra);
    ssm_tokenizer tk;
    load_ok(&tk, tpath("a.json"));
    cr_assert_eq(ssm_tokenizer_vocab_size(&tk), 303);
    cr_assert(ssm_tokenizer_is_special(&tk, 300));
    cr_assert(!ssm_tokenizer_is_special(&tk, 301));
    cr_assert_eq(ssm_tokenizer_token_id(&tk, "<m>", 3), 300);
    EXPECT_IDS(&tk, "x <m>  y", 'x', 300, 'y');            /* spaces stripped both sides */
    EXPECT_IDS(&tk, "<m><m>", 302);                        /* longest match */
    EXPECT_IDS(&tk, "ab", 301);
    EXPECT_IDS(&tk, "x ab.", 'x', 0x20 + 0, 301, '.');     /* "x Ġ" then ab then "." */
    EXPECT_IDS(&tk, "cab", 'c', 'a', 'b');                 /* not a single word */
    EXPECT_IDS(&tk, "abc", 'a', 'b', 'c');
    ssm_tokenizer_free(&tk);
}

Test(tiny, unknown_bytes)
{
    /* byte 'z' gets no token: dropped without unk_token, unk (fused) with one */
    const char *merges[] = {"a a"};
    write_tiny(tpath("u.json"), merges, 1, "");
    copy_replacing(tpath("u.json"), tpath("drop.json"), "\"z\": 122", "\"Z0\": 122");
    copy_replacing(tpath("drop.json"), tpath("unk.json"), "\"model\": {",
                   "\"model\": {\"unk_token\": \"a\", \"fuse_unk\": true, ");
    ssm_tokenizer tk;
    load_ok(&tk, tpath("drop.json"));
    EXPECT_IDS(&tk, "bzzb", 'b', 'b');
    ssm_tokenizer_free(&tk);
    load_ok(&tk, tpath("unk.json"));
    EXPECT_IDS(&tk, "bzzb", 'b', 'a', 'b');
    EXPECT_IDS(&tk, "azz", 256);                          /* unk ("a") merges like "a" */
    ssm_tokenizer_free(&tk);
}

/* ---- the fixture ---- */

Test(fixture, loads)
{
    ssm_tokenizer tk;
    load_ok(&tk, FIXTURE);
    cr_assert_eq(tk.kind, SSM_TOKENIZER_BPE);
    cr_assert_eq(ssm_tokenizer_vocab_size(&tk), FIXTURE_VOCAB);
    cr_assert_eq(tk.n_merges, FIXTURE_MERGES);
    cr_assert_eq(tk.n_added, 7);
    cr_assert_eq(tk.add_prefix_space, 0);
    cr_assert_eq(tk.use_regex, 1);
    cr_assert_eq(ssm_tokenizer_token_id(&tk, "<|endoftext|>", 13), ID_ENDOFTEXT);
    cr_assert(ssm_tokenizer_is_special(&tk, ID_ENDOFTEXT));
    cr_assert(!ssm_tokenizer_is_special(&tk, ID_TWO_SPACES));
    int the = ssm_tokenizer_token_id(&tk, "\xc4\xa0the", 5);
    cr_assert_geq(the, 258);
    size_t len;
    const char *b = ssm_tokenizer_token_bytes(&tk, the, &len);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(b, " the", 4), 0);
    const char *s = ssm_tokenizer_token_str(&tk, the, &len);
    cr_assert_str_eq(s, "\xc4\xa0the");
    cr_assert_null(ssm_tokenizer_token_str(&tk, FIXTURE_VOCAB, &len));
    cr_assert_null(ssm_tokenizer_token_str(&tk, -1, &len));
    ssm_tokenizer_free(&tk);
    ssm_tokenizer_free(&tk);                                 /* twice is fine */
}

Test(fixture, special_and_space_tokens)
{
    ssm_tokenizer tk;
    load_ok(&tk, FIXTURE);
    int the = ssm_tokenizer_token_id(&tk, "\xc4\xa0the", 5);
    int *ids, n;
    const char *text = "<|endoftext|>  the";
    cr_assert_eq(ssm_tokenizer_encode(&tk, text, strlen(text), &ids, &n), SSM_OK);
    /* "<|endoftext|>", then "  the" -> the "  " added token matches first,
     * then "the" alone */
    cr_assert_geq(n, 3);
    cr_expect_eq(ids[0], ID_ENDOFTEXT);
    cr_expect_eq(ids[1], ID_TWO_SPACES);
    cr_expect_neq(ids[2], the);
    char *out;
    size_t len;
    cr_assert_eq(ssm_tokenizer_decode(&tk, ids, n, &out, &len), SSM_OK);
    cr_expect_str_eq(out, text);
    cr_expect_eq(len, strlen(text));
    free(out);
    free(ids);
    int odd[] = {ID_ENDOFTEXT, -5, FIXTURE_VOCAB, 1 << 30, ID_TWO_SPACES};
    cr_assert_eq(ssm_tokenizer_decode(&tk, odd, 5, &out, &len), SSM_OK);
    cr_expect_str_eq(out, "<|endoftext|>  ");              /* ids with no token skipped */
    free(out);
    ssm_tokenizer_free(&tk);
}

Test(fixture, empty_text)
{
    ssm_tokenizer tk;
    load_ok(&tk, FIXTURE);
    int *ids, n = -1;
    cr_assert_eq(ssm_tokenizer_encode(&tk, "", 0, &ids, &n), SSM_OK);
    cr_assert_eq(n, 0);
    cr_assert_not_null(ids);
    free(ids);
    char *out;
    size_t len = 9;
    cr_assert_eq(ssm_tokenizer_decode(&tk, NULL, 0, &out, &len), SSM_OK);
    cr_assert_eq(len, 0);
    cr_assert_str_eq(out, "");
    free(out);
    ssm_tokenizer_free(&tk);
}

/* decode(encode(x)) == x, for normalisation-free tokenizers and any bytes. */
static void check_round_trip(const ssm_tokenizer *tk, const blobs *in)
{
    for (int i = 0; i < in->n; i++) {
        int *ids, n;
        char *out;
        size_t len;
        cr_assert_eq(ssm_tokenizer_encode(tk, in->v[i].p, in->v[i].n, &ids, &n), SSM_OK);
        cr_assert_eq(ssm_tokenizer_decode(tk, ids, n, &out, &len), SSM_OK);
        cr_expect(len == in->v[i].n && memcmp(out, in->v[i].p, len) == 0,
                  "round trip of input %d (%zu bytes) gave %zu bytes", i, in->v[i].n, len);
        free(out);
        free(ids);
    }
}

static void add_random_bytes(blobs *b, uint32_t seed, int count)
{
    char buf[256];
    for (int i = 0; i < count; i++) {
        size_t n = lcg(&seed) % sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = (char)(lcg(&seed) & 0xFF);
        blobs_add(b, buf, n);
    }
}

Test(ref, round_trip_any_bytes)
{
    const char *file = make_variant("plain.json", "--normalizer none");
    ssm_tokenizer tk;
    load_ok(&tk, file);
    blobs in = {0};
    default_inputs(&in, 11);
    add_random_bytes(&in, 12, 200);
    check_round_trip(&tk, &in);
    blobs_free(&in);
    ssm_tokenizer_free(&tk);
}

/* With NFC, decode(encode(x)) is the normalised text that pretokenize shows. */
Test(fixture, round_trip_nfc)
{
    ssm_tokenizer tk;
    load_ok(&tk, FIXTURE);
    blobs in = {0};
    default_inputs(&in, 21);
    add_random_bytes(&in, 22, 100);
    for (int i = 0; i < in.n; i++) {
        int *ids, n, np;
        char *out, *norm;
        size_t len, norm_len;
        ssm_tokenizer_piece *pieces;
        cr_assert_eq(ssm_tokenizer_encode(&tk, in.v[i].p, in.v[i].n, &ids, &n), SSM_OK);
        cr_assert_eq(ssm_tokenizer_decode(&tk, ids, n, &out, &len), SSM_OK);
        cr_assert_eq(ssm_tokenizer_pretokenize(&tk, in.v[i].p, in.v[i].n, &norm, &norm_len,
                                               &pieces, &np), SSM_OK);
        cr_expect(len == norm_len && memcmp(out, norm, len) == 0, "input %d", i);
        free(out), free(norm), free(pieces), free(ids);
    }
    const char *decomposed = "cafe\xcc\x81";
    int *ids, n;
    char *out;
    size_t len;
    cr_assert_eq(ssm_tokenizer_encode(&tk, decomposed, strlen(decomposed), &ids, &n), SSM_OK);
    cr_assert_eq(ssm_tokenizer_decode(&tk, ids, n, &out, &len), SSM_OK);
    cr_expect_str_eq(out, "caf\xc3\xa9");
    free(out), free(ids);
    blobs_free(&in);
    ssm_tokenizer_free(&tk);
}

/* ---- against the Python reference ---- */

Test(ref, fixture)
{
    compare_both(FIXTURE, 1);
}

Test(ref, ascii_corpus)
{
    blobs in = {0};
    add_corpus_inputs(&in, 5, 40, 1000);
    compare_with_ref(FIXTURE, &in, "pretok");
    compare_with_ref(FIXTURE, &in, "encode");
    blobs_free(&in);
}

Test(ref, pairs_prefix_extra_added_ascii)
{
    compare_both(make_variant("v1.json", "--pairs --prefix-space --extra-added --ascii"), 2);
}

Test(ref, no_normalizer_extra_added)
{
    compare_both(make_variant("v2.json", "--normalizer none --extra-added"), 3);
}

Test(ref, nfkc_and_sequence)
{
    compare_both(make_variant("v3.json", "--normalizer NFKC --extra-added"), 4);
    compare_both(make_variant("v4.json", "--normalizer seq"), 5);
}

Test(ref, ignore_merges_and_no_regex)
{
    compare_both(make_variant("v5.json", "--ignore-merges"), 6);
    compare_both(make_variant("v6.json", "--no-regex --prefix-space"), 7);
}

Test(ref, missing_byte_tokens)
{
    compare_both(make_variant("v7.json", "--drop-bytes drop"), 8);
    compare_both(make_variant("v8.json", "--drop-bytes unk --normalizer none"), 9);
}

/* ---- the byte tokenizer ---- */

Test(bytes, identity)
{
    ssm_tokenizer tk;
    cr_assert_eq(ssm_tokenizer_build_bytes(&tk), SSM_OK);
    cr_assert_eq(tk.kind, SSM_TOKENIZER_BYTES);
    cr_assert_eq(ssm_tokenizer_vocab_size(&tk), 256);
    char all[256];
    for (int b = 0; b < 256; b++)
        all[b] = (char)b;
    int *ids, n;
    cr_assert_eq(ssm_tokenizer_encode(&tk, all, 256, &ids, &n), SSM_OK);
    cr_assert_eq(n, 256);
    for (int b = 0; b < 256; b++)
        cr_assert_eq(ids[b], b);
    char *out;
    size_t len;
    cr_assert_eq(ssm_tokenizer_decode(&tk, ids, n, &out, &len), SSM_OK);
    cr_assert_eq(len, 256);
    cr_assert_eq(memcmp(out, all, 256), 0);
    free(out);
    free(ids);
    const char *decomposed = "e\xcc\x81";                  /* not normalised */
    cr_assert_eq(ssm_tokenizer_encode(&tk, decomposed, 3, &ids, &n), SSM_OK);
    cr_assert_eq(n, 3);
    free(ids);
    const char *s = ssm_tokenizer_token_str(&tk, ' ', &len);
    cr_assert_str_eq(s, "\xc4\xa0");
    cr_assert_eq(ssm_tokenizer_token_id(&tk, "\xc4\xa0", 2), ' ');
    s = ssm_tokenizer_token_bytes(&tk, 0xE9, &len);
    cr_assert_eq(len, 1);
    cr_assert_eq((unsigned char)s[0], 0xE9);
    ssm_tokenizer_free(&tk);
}

/* ---- malformed files ---- */

static void expect_load_error(const char *name, const char *json, ssm_status want,
                              const char *needle)
{
    const char *path = tpath(name);
    write_text(path, json);
    ssm_tokenizer tk;
    ssm_status st = ssm_tokenizer_load(&tk, path);
    assert_error(st, want, needle);
    cr_assert_not_null(strstr(ssm_last_error(), path), "message \"%s\" lacks the file name",
                       ssm_last_error());
    cr_assert_null(tk.impl);
    ssm_tokenizer_free(&tk);
}

#define PRE "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}, "
#define MODEL(vocab, merges) "\"model\": {\"type\": \"BPE\", \"vocab\": " vocab \
                             ", \"merges\": " merges "}"

Test(errors, missing_and_directory)
{
    ssm_tokenizer tk;
    assert_error(ssm_tokenizer_load(&tk, tpath("nope.json")), SSM_ERR_NOINPUT, "nope.json");
    ssm_tokenizer_free(&tk);
    assert_error(ssm_tokenizer_load(&tk, tmpdir), SSM_ERR_DATA, "directory");
}

Test(errors, not_json)
{
    expect_load_error("empty.json", "", SSM_ERR_DATA, "not valid JSON");
    expect_load_error("trunc.json", "{\"model\": {", SSM_ERR_DATA, "not valid JSON");
    expect_load_error("garbage.json", "{} x", SSM_ERR_DATA, "not valid JSON");
    expect_load_error("array.json", "[1, 2]", SSM_ERR_DATA, "not a JSON object");
}

Test(errors, model)
{
    expect_load_error("nomodel.json", "{" PRE "\"x\": 1}", SSM_ERR_DATA, "no \"model\"");
    expect_load_error("wp.json", "{" PRE "\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}",
                      SSM_ERR_DATA, "unsupported model type \"WordPiece\"");
    expect_load_error("novocab.json", "{" PRE "\"model\": {\"type\": \"BPE\", \"merges\": []}}",
                      SSM_ERR_DATA, "model.vocab");
    expect_load_error("negid.json", "{" PRE MODEL("{\"a\": -1}", "[]") "}", SSM_ERR_DATA,
                      "model.vocab[\"a\"]");
    expect_load_error("strid.json", "{" PRE MODEL("{\"a\": \"0\"}", "[]") "}", SSM_ERR_DATA,
                      "model.vocab[\"a\"]");
    expect_load_error("empty_vocab.json", "{" PRE MODEL("{}", "[]") "}", SSM_ERR_DATA,
                      "vocabulary is empty");
    expect_load_error("prefix.json", "{" PRE "\"model\": {\"type\": \"BPE\", \"vocab\": "
                      "{\"a\": 0}, \"merges\": [], \"continuing_subword_prefix\": \"##\"}}",
                      SSM_ERR_DATA, "continuing_subword_prefix");
}

Test(errors, merges)
{
    expect_load_error("nomerges.json", "{" PRE "\"model\": {\"type\": \"BPE\", \"vocab\": "
                      "{\"a\": 0}}}", SSM_ERR_DATA, "model.merges");
    expect_load_error("unknown.json", "{" PRE MODEL("{\"a\": 0, \"b\": 1, \"ab\": 2}",
                      "[\"a b\", \"a c\"]") "}", SSM_ERR_DATA, "merges[1]");
    expect_load_error("nocat.json", "{" PRE MODEL("{\"a\": 0, \"b\": 1}", "[\"a b\"]") "}",
                      SSM_ERR_DATA, "token \"ab\" is not in the vocabulary");
    expect_load_error("nospace.json", "{" PRE MODEL("{\"a\": 0, \"ab\": 1}", "[\"ab\"]") "}",
                      SSM_ERR_DATA, "merges[0]");
    expect_load_error("triple.json", "{" PRE MODEL("{\"a\": 0, \"aa\": 1}",
                      "[[\"a\", \"a\", \"a\"]]") "}", SSM_ERR_DATA, "merges[0]");
    expect_load_error("notarray.json", "{" PRE MODEL("{\"a\": 0}", "{}") "}", SSM_ERR_DATA,
                      "model.merges");
}

Test(errors, components)
{
    expect_load_error("norm.json", "{\"normalizer\": {\"type\": \"Lowercase\"}, " PRE
                      MODEL("{\"a\": 0}", "[]") "}", SSM_ERR_DATA, "normalizer \"Lowercase\"");
    expect_load_error("pre.json", "{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, "
                      MODEL("{\"a\": 0}", "[]") "}", SSM_ERR_DATA, "pre_tokenizer \"Metaspace\"");
    expect_load_error("nopre.json", "{" MODEL("{\"a\": 0}", "[]") "}", SSM_ERR_DATA,
                      "pre_tokenizer \"null\"");
    expect_load_error("dec.json", "{\"decoder\": {\"type\": \"WordPiece\"}, " PRE
                      MODEL("{\"a\": 0}", "[]") "}", SSM_ERR_DATA, "decoder \"WordPiece\"");
    expect_load_error("added.json", "{\"added_tokens\": [{\"id\": 3}], " PRE
                      MODEL("{\"a\": 0}", "[]") "}", SSM_ERR_DATA, "added_tokens[0]");
    expect_load_error("added2.json", "{\"added_tokens\": {}, " PRE
                      MODEL("{\"a\": 0}", "[]") "}", SSM_ERR_DATA, "added_tokens");
}

Test(errors, minimal_file_loads)
{
    const char *path = tpath("ok.json");
    write_text(path, "{" PRE MODEL("{\"a\": 0, \"b\": 5}", "[]") "}");
    ssm_tokenizer tk;
    load_ok(&tk, path);
    cr_assert_eq(ssm_tokenizer_vocab_size(&tk), 6);        /* holes are allowed */
    EXPECT_IDS(&tk, "abc", 0, 5);                           /* 'c' has no token: dropped */
    ssm_tokenizer_free(&tk);
}

/* One id 16777215 in a file of about 100 bytes made 138 MB of id tables:
 * an id must be below the file's byte count.  A FIFO is refused, not read. */
Test(errors, ids_bounded_by_the_file, .timeout = 30)
{
    expect_load_error("bigid.json", "{" PRE MODEL("{\"a\": 16777215}", "[]") "}", SSM_ERR_DATA,
                      "corrupt: token id 16777215 in a file of");
    const char *fifo = tpath("fifo.json");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    ssm_tokenizer tk;
    assert_error(ssm_tokenizer_load(&tk, fifo), SSM_ERR_NOINPUT, "not a regular file (a FIFO)");
}

/* ---- speed ---- */

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

Test(fixture, encodes_100k_fast)
{
    ssm_tokenizer tk;
    load_ok(&tk, FIXTURE);
    size_t n;
    char *text = read_all(CORPUS_FILE, &n);
    cr_assert_geq(n, 100000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int *ids, n_ids;
    cr_assert_eq(ssm_tokenizer_encode(&tk, text, 100000, &ids, &n_ids), SSM_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_log_info("encoded 100000 bytes into %d tokens in %.3f s", n_ids, sec);
    cr_expect_lt(sec, SANITIZED ? 10.0 : 0.5, "encoding 100 KB took %.3f s", sec);
    cr_expect_lt(n_ids, 60000);                               /* merges do compress */
    char *out;
    size_t len;
    cr_assert_eq(ssm_tokenizer_decode(&tk, ids, n_ids, &out, &len), SSM_OK);
    cr_expect(len == 100000 && memcmp(out, text, len) == 0);
    free(out);
    free(ids);
    free(text);
    ssm_tokenizer_free(&tk);
}
