/* checkpoint.c — checkpoint directories in the Hugging Face Mamba layout:
 * config.json in the mamba_ssm or transformers key sets, weights from
 * model.safetensors or pytorch_model.bin with full validation, ssmlab's
 * metadata, and the AdamW moments in optimizer.safetensors. */
#include "checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

#define CK_PATH_MAX 4096
#define CK_JSON_MAX (16 << 20)

/* ------------------------------------------------------------------------ */
/* Paths and directories                                                    */

static ssm_status path_join(char *buf, const char *dir, const char *name)
{
    int n = snprintf(buf, CK_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= CK_PATH_MAX) return ssm_fail(SSM_ERR_USAGE, "%s: path too long", dir);
    return SSM_OK;
}

static ssm_status dir_check(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open checkpoint directory: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return ssm_fail(SSM_ERR_NOINPUT, "%s: not a directory", dir);
    return SSM_OK;
}

ssm_status ssm_dir_create(const char *dir)
{
    char buf[CK_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return ssm_fail(SSM_ERR_USAGE, "%s: path too long", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot create directory: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: exists and is not a directory", dir);
    return SSM_OK;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ------------------------------------------------------------------------ */
/* JSON files                                                               */

static ssm_status json_slurp(const char *path, char **buf, size_t *len)
{
    struct stat sb;
    FILE *f = fopen(path, "rb");
    if (!f) return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return ssm_fail(SSM_ERR_NOINPUT, "%s: not a regular file", path);
    }
    if (sb.st_size > CK_JSON_MAX) {
        fclose(f);
        return ssm_fail(SSM_ERR_DATA, "%s: larger than 16 MB, not a config", path);
    }
    *buf = malloc((size_t)sb.st_size + 1);
    *len = *buf ? fread(*buf, 1, (size_t)sb.st_size, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!*buf) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", path);
    if (err) return ssm_fail(SSM_ERR_IO, "%s: read error", path);
    if (*len == 0) return ssm_fail(SSM_ERR_DATA, "%s: empty file, not JSON", path);
    return SSM_OK;
}

static int only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return 0;
    return 1;
}

/* Parse path as one JSON object. */
static ssm_status json_read_object(const char *path, json_object **out)
{
    char *buf = NULL;
    size_t len = 0;
    ssm_status s = json_slurp(path, &buf, &len);
    json_tokener *tok = s ? NULL : json_tokener_new();
    if (!s && !tok) s = ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", path);
    if (!s) {
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        *out = json_tokener_parse_ex(tok, buf, (int)len);
        enum json_tokener_error err = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        if (!*out)
            s = ssm_fail(SSM_ERR_DATA, "%s: not JSON (%s)", path,
                         err == json_tokener_continue ? "it ends early" : json_tokener_error_desc(err));
        else if (end > len || !only_space(buf + end, len - end))
            s = ssm_fail(SSM_ERR_DATA, "%s: not JSON (bytes after the JSON value)", path);
        else if (!json_object_is_type(*out, json_type_object))
            s = ssm_fail(SSM_ERR_DATA, "%s: not a JSON object", path);
        if (s) { json_object_put(*out); *out = NULL; }
        json_tokener_free(tok);
    }
    free(buf);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Reading config.json                                                      */

typedef struct {
    const char *path;
    json_object *root;
} cfg_src;

/* A short rendering of a JSON value for messages. */
static const char *json_brief(json_object *v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    if (strlen(buf) == cap - 1 && cap > 4) strcpy(buf + cap - 4, "...");
    return buf;
}

static ssm_status cfg_bad(const cfg_src *cs, const char *key, json_object *v, const char *want)
{
    char b[48];
    return ssm_fail(SSM_ERR_CONFIG, "%s: %s must be %s (found %s)", cs->path, key, want,
                    json_brief(v, b, sizeof b));
}

/* An integer key in [lo, hi]; *out keeps its default when the key is absent
 * (an error if required). */
static ssm_status cfg_int(const cfg_src *cs, json_object *obj, const char *key, int *out, int lo,
                          int hi, int required)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v))
        return required ? ssm_fail(SSM_ERR_CONFIG, "%s: missing %s", cs->path, key) : SSM_OK;
    if (!json_object_is_type(v, json_type_int)) return cfg_bad(cs, key, v, "an integer");
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi) {
        char want[64];
        snprintf(want, sizeof want, lo == 1 ? "positive (at most %d)" : "in [%d, %d]",
                 lo == 1 ? hi : lo, hi);
        return cfg_bad(cs, key, v, want);
    }
    *out = (int)x;
    return SSM_OK;
}

static ssm_status cfg_bool(const cfg_src *cs, json_object *obj, const char *key, int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v)) return SSM_OK;
    if (!json_object_is_type(v, json_type_boolean)) return cfg_bad(cs, key, v, "true or false");
    *out = json_object_get_boolean(v);
    return SSM_OK;
}

static ssm_status cfg_float(const cfg_src *cs, json_object *obj, const char *key, float *out)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v)) return SSM_OK;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return cfg_bad(cs, key, v, "a number");
    double x = json_object_get_double(v);
    if (!(x > 0 && x < 1)) return cfg_bad(cs, key, v, "in (0, 1)");
    *out = (float)x;
    return SSM_OK;
}

/* dt_rank / time_step_rank: "auto" (0) or a positive integer. */
static ssm_status cfg_rank(const cfg_src *cs, json_object *obj, const char *key, int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v)) return SSM_OK;
    if (json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), "auto") == 0) {
        *out = 0;
        return SSM_OK;
    }
    return cfg_int(cs, obj, key, out, 1, 1 << 16, 0);
}

/* A key whose only supported value is `want` (a JSON literal). */
static ssm_status cfg_only(const cfg_src *cs, json_object *obj, const char *key, const char *want)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v)) return SSM_OK;
    const char *got = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    if (strcmp(got, want) == 0) return SSM_OK;
    char b[48];
    return ssm_fail(SSM_ERR_CONFIG, "%s: %s = %s is not supported (only %s)", cs->path, key,
                    json_brief(v, b, sizeof b), want);
}

static ssm_status cfg_read_ssm_cfg(const cfg_src *cs, ssm_config *c)
{
    json_object *o;
    if (!json_object_object_get_ex(cs->root, "ssm_cfg", &o)) return SSM_OK;
    if (!json_object_is_type(o, json_type_object)) return cfg_bad(cs, "ssm_cfg", o, "an object");
    ssm_status s;
    if ((s = cfg_int(cs, o, "d_state", &c->d_state, 1, 1 << 16, 0)) ||
        (s = cfg_int(cs, o, "d_conv", &c->d_conv, 1, 1 << 16, 0)) ||
        (s = cfg_int(cs, o, "expand", &c->expand, 1, 1 << 16, 0)) ||
        (s = cfg_rank(cs, o, "dt_rank", &c->dt_rank)) ||
        (s = cfg_only(cs, o, "layer", "\"Mamba1\"")) || (s = cfg_only(cs, o, "bias", "false")) ||
        (s = cfg_only(cs, o, "conv_bias", "true")))
        return s;
    return SSM_OK;
}

/* The mamba_ssm key set (state-spaces/mamba-*). */
static ssm_status cfg_read_mamba(const cfg_src *cs, ssm_config *c)
{
    json_object *r = cs->root, *v;
    ssm_status s;
    if ((s = cfg_int(cs, r, "d_model", &c->d_model, 1, 1 << 20, 1)) ||
        (s = cfg_int(cs, r, "n_layer", &c->n_layer, 1, 1 << 16, 1)) ||
        (s = cfg_int(cs, r, "vocab_size", &c->vocab_size, 0, 1 << 30, 0)) ||
        (s = cfg_int(cs, r, "pad_vocab_size_multiple", &c->pad_vocab_size_multiple, 1, 1 << 16, 0)) ||
        (s = cfg_bool(cs, r, "tie_embeddings", &c->tie_embeddings)) ||
        (s = cfg_float(cs, r, "norm_epsilon", &c->norm_eps)) ||
        (s = cfg_only(cs, r, "rms_norm", "true")) || (s = cfg_only(cs, r, "d_intermediate", "0")) ||
        (s = cfg_read_ssm_cfg(cs, c)))
        return s;
    if (json_object_object_get_ex(r, "attn_layer_idx", &v) &&
        !(json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0))
        return ssm_fail(SSM_ERR_CONFIG, "%s: attention layers (attn_layer_idx) are not supported", cs->path);
    return SSM_OK;
}

/* The transformers MambaConfig key set; its vocab_size is already padded. */
static ssm_status cfg_read_hf(const cfg_src *cs, ssm_config *c)
{
    json_object *r = cs->root;
    ssm_status s;
    int inter = 0;
    c->pad_vocab_size_multiple = 1;
    if ((s = cfg_int(cs, r, "hidden_size", &c->d_model, 1, 1 << 20, 1)) ||
        (s = cfg_int(cs, r, "num_hidden_layers", &c->n_layer, 1, 1 << 16, 1)) ||
        (s = cfg_int(cs, r, "vocab_size", &c->vocab_size, 0, 1 << 30, 0)) ||
        (s = cfg_int(cs, r, "state_size", &c->d_state, 1, 1 << 16, 0)) ||
        (s = cfg_int(cs, r, "expand", &c->expand, 1, 1 << 16, 0)) ||
        (s = cfg_int(cs, r, "conv_kernel", &c->d_conv, 1, 1 << 16, 0)) ||
        (s = cfg_rank(cs, r, "time_step_rank", &c->dt_rank)) ||
        (s = cfg_float(cs, r, "layer_norm_epsilon", &c->norm_eps)) ||
        (s = cfg_bool(cs, r, "tie_word_embeddings", &c->tie_embeddings)) ||
        (s = cfg_int(cs, r, "intermediate_size", &inter, 1, 1 << 30, 0)) ||
        (s = cfg_only(cs, r, "model_type", "\"mamba\"")) || (s = cfg_only(cs, r, "use_bias", "false")) ||
        (s = cfg_only(cs, r, "use_conv_bias", "true")))
        return s;
    if (inter && inter != c->expand * c->d_model)
        return ssm_fail(SSM_ERR_CONFIG, "%s: intermediate_size %d is not expand * hidden_size = %d * %d",
                        cs->path, inter, c->expand, c->d_model);
    return SSM_OK;
}

/* When a config carries both key sets, they must agree. */
static ssm_status cfg_cross_check(const cfg_src *cs, const ssm_config *c)
{
    static const struct { const char *hf, *ours; size_t off; } pairs[] = {
        {"hidden_size", "d_model", offsetof(ssm_config, d_model)},
        {"num_hidden_layers", "n_layer", offsetof(ssm_config, n_layer)},
        {"state_size", "ssm_cfg.d_state", offsetof(ssm_config, d_state)},
        {"conv_kernel", "ssm_cfg.d_conv", offsetof(ssm_config, d_conv)},
        {"expand", "ssm_cfg.expand", offsetof(ssm_config, expand)},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        int ours = *(const int *)((const char *)c + pairs[i].off), theirs = ours;
        ssm_status s = cfg_int(cs, cs->root, pairs[i].hf, &theirs, 1, 1 << 20, 0);
        if (s) return s;
        if (theirs != ours)
            return ssm_fail(SSM_ERR_CONFIG, "%s: inconsistent: %s is %d but %s is %d", cs->path,
                            pairs[i].hf, theirs, pairs[i].ours, ours);
    }
    return SSM_OK;
}

/* An optional enum given by name, e.g. "scenario": "negative". */
static ssm_status cfg_enum(const cfg_src *cs, json_object *obj, const char *key, int *out,
                           int (*parse)(const char *), const char *want)
{
    json_object *k;
    if (!json_object_object_get_ex(obj, key, &k)) return SSM_OK;
    int v = json_object_is_type(k, json_type_string) ? parse(json_object_get_string(k)) : -1;
    if (v < 0) return cfg_bad(cs, key, k, want);
    *out = v;
    return SSM_OK;
}

/* The "ssmlab" object: input kind, continuous width, classes, epsilon,
 * scenario, polarization and reordering. */
static ssm_status cfg_read_ssmlab(const cfg_src *cs, ssm_config *c)
{
    json_object *o, *k;
    if (!json_object_object_get_ex(cs->root, "ssmlab", &o)) return SSM_OK;
    if (!json_object_is_type(o, json_type_object)) return cfg_bad(cs, "ssmlab", o, "an object");
    if (json_object_object_get_ex(o, "input_kind", &k)) {
        const char *v = json_object_is_type(k, json_type_string) ? json_object_get_string(k) : "";
        if (strcmp(v, "tokens") && strcmp(v, "continuous"))
            return cfg_bad(cs, "ssmlab.input_kind", k, "\"tokens\" or \"continuous\"");
        c->input_kind = strcmp(v, "tokens") ? SSM_INPUT_CONTINUOUS : SSM_INPUT_TOKENS;
    }
    ssm_status s;
    if ((s = cfg_int(cs, o, "d_input", &c->d_input, 1, 1 << 20, 0)) ||
        (s = cfg_int(cs, o, "n_classes", &c->n_classes, 0, 1 << 20, 0)) ||
        (s = cfg_float(cs, o, "norm_eps", &c->norm_eps)) ||
        (s = cfg_enum(cs, o, "scenario", &c->scenario, ssm_scenario_parse,
                      "\"default\", \"positive\", \"negative\" or \"mixed\"")) ||
        (s = cfg_enum(cs, o, "polarize", &c->polarize, ssm_polarize_parse,
                      "\"none\", \"zero\", \"one\" or \"both\"")) ||
        (s = cfg_enum(cs, o, "reorder", &c->reorder, ssm_reorder_parse, "\"off\", \"hard\" or \"soft\"")))
        return s;
    return SSM_OK;
}

/* mamba_ssm's defaults for keys a config may leave out. */
static void cfg_defaults(ssm_config *c)
{
    ssm_config_default(c);
    c->d_model = 0;
    c->n_layer = 0;
    c->d_state = 16;
    c->d_conv = 4;
    c->expand = 2;
    c->dt_rank = 0;
    c->vocab_size = 0;
    c->pad_vocab_size_multiple = 8;
    c->input_kind = SSM_INPUT_TOKENS;
    c->n_classes = 0;
    c->tie_embeddings = 1;
    c->norm_eps = 1e-5f;
}

static ssm_status cfg_finish(const cfg_src *cs, ssm_config *c)
{
    if (c->input_kind == SSM_INPUT_TOKENS && c->vocab_size <= 0)
        return ssm_fail(SSM_ERR_CONFIG, "%s: missing vocab_size (needed for token input)", cs->path);
    ssm_status s = ssm_config_finalize(c);
    if (s) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ssm_last_error());
        return ssm_fail(s, "%s: %s", cs->path, msg);
    }
    return SSM_OK;
}

ssm_status ssm_config_read_json(const char *path, ssm_config *out)
{
    cfg_src cs = {path, NULL};
    ssm_status s = json_read_object(path, &cs.root);
    if (s) return s;
    ssm_config c;
    cfg_defaults(&c);
    json_object *v;
    if (json_object_object_get_ex(cs.root, "d_model", &v))
        s = cfg_read_mamba(&cs, &c);
    else if (json_object_object_get_ex(cs.root, "hidden_size", &v))
        s = cfg_read_hf(&cs, &c);
    else
        s = ssm_fail(SSM_ERR_CONFIG, "%s: missing d_model (or hidden_size)", path);
    if (!s) s = cfg_cross_check(&cs, &c);
    if (!s) s = cfg_read_ssmlab(&cs, &c);
    if (!s) s = cfg_finish(&cs, &c);
    json_object_put(cs.root);
    if (!s) *out = c;
    return s;
}

/* ------------------------------------------------------------------------ */
/* Writing config.json                                                      */

/* The shortest %g rendering of x that reads back as the same float. */
static void float_repr(char *buf, size_t cap, float x)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x) return;
    }
}

static json_object *cfg_ssmlab_json(const ssm_config *c)
{
    char eps[32];
    float_repr(eps, sizeof eps, c->norm_eps);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "format_version", json_object_new_int(1));
    json_object_object_add(o, "input_kind", json_object_new_string(
        c->input_kind == SSM_INPUT_CONTINUOUS ? "continuous" : "tokens"));
    json_object_object_add(o, "d_input", json_object_new_int(c->d_input));
    json_object_object_add(o, "n_classes", json_object_new_int(c->n_classes));
    json_object_object_add(o, "norm_eps", json_object_new_double_s(c->norm_eps, eps));
    json_object_object_add(o, "scenario", json_object_new_string(ssm_scenario_name(c->scenario)));
    json_object_object_add(o, "polarize", json_object_new_string(ssm_polarize_name(c->polarize)));
    json_object_object_add(o, "reorder", json_object_new_string(ssm_reorder_name(c->reorder)));
    return o;
}

/* Does the model need the "ssmlab" object to be rebuilt? */
static int cfg_has_extras(const ssm_config *c)
{
    return c->input_kind != SSM_INPUT_TOKENS || c->n_classes != 0 || c->norm_eps != 1e-5f ||
           c->scenario || c->polarize || c->reorder;
}

static json_object *cfg_json(const ssm_config *c)
{
    json_object *o = json_object_new_object(), *ssm = json_object_new_object();
    json_object_object_add(o, "d_model", json_object_new_int(c->d_model));
    json_object_object_add(o, "n_layer", json_object_new_int(c->n_layer));
    json_object_object_add(o, "vocab_size", json_object_new_int(c->vocab_size));
    json_object_object_add(ssm, "d_state", json_object_new_int(c->d_state));
    json_object_object_add(ssm, "d_conv", json_object_new_int(c->d_conv));
    json_object_object_add(ssm, "expand", json_object_new_int(c->expand));
    json_object_object_add(ssm, "dt_rank", json_object_new_int(c->dt_rank));
    json_object_object_add(o, "ssm_cfg", ssm);
    json_object_object_add(o, "rms_norm", json_object_new_boolean(1));
    json_object_object_add(o, "residual_in_fp32", json_object_new_boolean(1));
    json_object_object_add(o, "fused_add_norm", json_object_new_boolean(1));
    json_object_object_add(o, "pad_vocab_size_multiple", json_object_new_int(c->pad_vocab_size_multiple));
    json_object_object_add(o, "tie_embeddings", json_object_new_boolean(c->tie_embeddings));
    /* mamba_ssm's MambaConfig(**config) rejects unknown keys: a plain
     * language model gets none, so mamba_ssm loads it as it is */
    if (cfg_has_extras(c)) json_object_object_add(o, "ssmlab", cfg_ssmlab_json(c));
    return o;
}

ssm_status ssm_config_write_json(const char *path, const ssm_config *config)
{
    ssm_config c = *config;
    ssm_status s = ssm_config_finalize(&c);
    if (s) return s;
    json_object *o = cfg_json(&c);
    if (!o) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", path);
    const char *text = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    ssm_atomic_file af;
    s = ssm_atomic_file_begin(&af, path);
    if (!s) {
        if (fputs(text, af.f) < 0 || fputc('\n', af.f) == EOF) {
            s = ssm_fail(SSM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
            ssm_atomic_file_abort(&af);
        } else {
            s = ssm_atomic_file_commit(&af);
        }
    }
    json_object_put(o);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Tensor lists                                                             */

/* The named views of block (laid out like m's parameters), malloc'd. */
static ssm_status tensors_list(const ssm_model *m, float *block, ssm_tensor **out, int *n)
{
    *n = ssm_model_tensors(m, block, NULL, 0);
    *out = malloc(sizeof **out * (size_t)(*n > 0 ? *n : 1));
    if (!*out) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the tensor list");
    ssm_model_tensors(m, block, *out, *n);
    return SSM_OK;
}

/* Is name part of the mamba_ssm layout (as opposed to an ssmlab extra)? */
static int name_is_standard(const char *name)
{
    static const char *top[] = {"backbone.embedding.weight", "backbone.norm_f.weight", "lm_head.weight"};
    static const char *layer[] = {"norm.weight", "mixer.in_proj.weight", "mixer.conv1d.weight",
                                  "mixer.conv1d.bias", "mixer.x_proj.weight", "mixer.dt_proj.weight",
                                  "mixer.dt_proj.bias", "mixer.A_log", "mixer.D", "mixer.out_proj.weight"};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (strcmp(name, top[i]) == 0) return 1;
    static const char pre[] = "backbone.layers.";
    if (strncmp(name, pre, sizeof pre - 1) != 0) return 0;
    const char *p = name + sizeof pre - 1;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    for (size_t i = 0; *p == '.' && i < sizeof layer / sizeof layer[0]; i++)
        if (strcmp(p + 1, layer[i]) == 0) return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Loading tensors                                                          */

typedef struct {
    const ssm_safetensors *st;
    unsigned char *used;        /* (st->n_tensors) */
} loader;

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* conv1d.weight is stored (E, 1, K) and may be held (E, K): compare shapes
 * with that middle 1 dropped. */
static int shape_squeeze(const char *name, int ndim, const int64_t *in, int64_t *out)
{
    int conv = ends_with(name, "conv1d.weight") && ndim == 3 && in[1] == 1;
    for (int i = 0, k = 0; i < ndim; i++)
        if (!(conv && i == 1)) out[k++] = in[i];
    return conv ? 2 : ndim;
}

static int shape_matches(const ssm_st_tensor *t, const ssm_tensor *want)
{
    int64_t a[SSM_ST_MAX_DIM], b[SSM_ST_MAX_DIM], w[4];
    for (int i = 0; i < want->ndim; i++) w[i] = want->shape[i];
    int na = shape_squeeze(want->name, t->ndim, t->shape, a);
    int nb = shape_squeeze(want->name, want->ndim, w, b);
    return na == nb && memcmp(a, b, sizeof(int64_t) * (size_t)na) == 0;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, ")");
}

static ssm_status shape_error(const ssm_safetensors *st, const ssm_st_tensor *t, const ssm_tensor *want)
{
    char got[160], exp[160];
    int64_t w[4];
    for (int i = 0; i < want->ndim; i++) w[i] = want->shape[i];
    shape_str(got, sizeof got, t->ndim, t->shape);
    shape_str(exp, sizeof exp, want->ndim, w);
    return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s' has shape %s, expected %s from config.json",
                    st->path, t->name, got, exp);
}

static ssm_status check_finite(const ssm_safetensors *st, const char *name, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return ssm_fail(SSM_ERR_DATA, "%s: tensor '%s' holds %s at element %zu", st->path, name,
                            isnan(x[i]) ? "NaN" : "Inf", i);
    return SSM_OK;
}

/* The file's tensor for name (the transformers embedding name as a fallback). */
static const ssm_st_tensor *loader_find(const loader *ld, const char *name)
{
    const ssm_st_tensor *t = ssm_safetensors_find(ld->st, name);
    if (!t && strcmp(name, "backbone.embedding.weight") == 0)
        t = ssm_safetensors_find(ld->st, "backbone.embeddings.weight");
    return t;
}

static ssm_status load_one(loader *ld, const char *name, const ssm_tensor *want)
{
    const ssm_st_tensor *t = loader_find(ld, name);
    if (!t) return ssm_fail(SSM_ERR_DATA, "%s: missing tensor '%s'", ld->st->path, name);
    ld->used[t - ld->st->tensors] = 1;
    if (!shape_matches(t, want)) return shape_error(ld->st, t, want);
    ssm_status s = ssm_safetensors_read_f32(ld->st, t, want->data);
    return s ? s : check_finite(ld->st, t->name, want->data, want->numel);
}

/* Load every tensor of block (laid out like m's parameters) from names
 * prefix + <param name>. */
static ssm_status load_block(loader *ld, const ssm_model *m, float *block, const char *prefix)
{
    ssm_tensor *t;
    int n;
    ssm_status s = tensors_list(m, block, &t, &n);
    for (int i = 0; !s && i < n; i++) {
        char name[128];
        if (t[i].numel == 0) continue;
        snprintf(name, sizeof name, "%s%s", prefix, t[i].name);
        s = load_one(ld, name, &t[i]);
    }
    free(t);
    return s;
}

/* Every tensor in the file must have been used, except lm_head.weight of a
 * tied model (mamba_ssm state dicts carry the tied copy). */
static ssm_status loader_check_unused(const loader *ld, int tied_head)
{
    for (int i = 0; i < ld->st->n_tensors; i++) {
        const char *name = ld->st->tensors[i].name;
        if (ld->used[i] || (tied_head && strcmp(name, "lm_head.weight") == 0)) continue;
        return ssm_fail(SSM_ERR_DATA, "%s: unexpected tensor '%s' (not part of this model)",
                        ld->st->path, name);
    }
    return SSM_OK;
}

static ssm_status meta_parse_int(const ssm_safetensors *st, const char *key, uint64_t max, uint64_t *out)
{
    const char *v = ssm_safetensors_metadata(st, key);
    if (!v) return SSM_OK;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *v == '-' || *end || errno || x > max)
        return ssm_fail(SSM_ERR_DATA, "%s: __metadata__ %s = \"%s\" is not an integer in [0, %" PRIu64 "]",
                        st->path, key, v, max);
    *out = x;
    return SSM_OK;
}

static ssm_status meta_read(const ssm_safetensors *st, ssm_checkpoint_meta *meta)
{
    uint64_t step = 0, seed = 0;
    ssm_status s;
    if ((s = meta_parse_int(st, "ssmlab.step", LONG_MAX, &step)) ||
        (s = meta_parse_int(st, "ssmlab.seed", UINT64_MAX, &seed)))
        return s;
    if (!meta) return SSM_OK;
    const char *rc = ssm_safetensors_metadata(st, "ssmlab.run_config");
    meta->step = (long)step;
    meta->seed = seed;
    meta->run_config = rc ? strdup(rc) : NULL;
    if (rc && !meta->run_config) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", st->path);
    return SSM_OK;
}

static int path_is_torch(const char *path)
{
    return ends_with(path, ".bin") || ends_with(path, ".pt") || ends_with(path, ".pth");
}

static ssm_status load_weights_from(const ssm_safetensors *st, ssm_model *m)
{
    loader ld = {st, calloc((size_t)st->n_tensors + 1, 1)};
    if (!ld.used) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", st->path);
    ssm_status s = load_block(&ld, m, m->params_memory, "");
    if (!s) s = loader_check_unused(&ld, m->params.lm_head == NULL && m->cfg.n_classes == 0);
    free(ld.used);
    return s;
}

ssm_status ssm_checkpoint_load_weights(const char *path, ssm_model *m, ssm_checkpoint_meta *meta)
{
    ssm_safetensors st;
    ssm_status s = path_is_torch(path) ? ssm_safetensors_open_torch(&st, path)
                                       : ssm_safetensors_open(&st, path);
    if (s) return s;
    ssm_checkpoint_meta tmp = {0};
    s = load_weights_from(&st, m);
    if (!s) s = meta_read(&st, meta ? &tmp : NULL);
    ssm_safetensors_close(&st);
    if (!s && meta) *meta = tmp;
    return s;
}

void ssm_checkpoint_meta_free(ssm_checkpoint_meta *meta)
{
    if (!meta) return;
    free(meta->run_config);
    memset(meta, 0, sizeof *meta);
}

ssm_status ssm_checkpoint_load(const char *dir, ssm_model *m, ssm_checkpoint_meta *meta)
{
    char cfg_path[CK_PATH_MAX], st_path[CK_PATH_MAX], bin_path[CK_PATH_MAX];
    ssm_config c;
    ssm_status s;
    memset(m, 0, sizeof *m);
    if ((s = dir_check(dir)) || (s = path_join(cfg_path, dir, "config.json")) ||
        (s = path_join(st_path, dir, "model.safetensors")) ||
        (s = path_join(bin_path, dir, "pytorch_model.bin")))
        return s;
    if ((s = ssm_config_read_json(cfg_path, &c))) return s;
    const char *weights = file_exists(st_path) ? st_path : file_exists(bin_path) ? bin_path : NULL;
    if (!weights)
        return ssm_fail(SSM_ERR_NOINPUT, "%s: no model.safetensors or pytorch_model.bin", dir);
    if ((s = ssm_model_build(m, &c))) return s;
    if ((s = ssm_checkpoint_load_weights(weights, m, meta))) ssm_model_free(m);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Saving                                                                   */

/* Comma-separated names of the tensors that are not in the mamba_ssm layout. */
static char *extras_list(const ssm_tensor *t, int n)
{
    size_t cap = 1, k = 0;
    for (int i = 0; i < n; i++) cap += strlen(t[i].name) + 1;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = 0;
    for (int i = 0; i < n; i++)
        if (!name_is_standard(t[i].name))
            k += (size_t)snprintf(s + k, cap - k, "%s%s", k ? "," : "", t[i].name);
    return s;
}

static ssm_status save_weights(const char *path, const ssm_model *m, const ssm_checkpoint_meta *meta)
{
    ssm_tensor *t;
    int n;
    ssm_status s = tensors_list(m, m->params_memory, &t, &n);
    if (s) return s;
    char step[32], seed[32], *extras = extras_list(t, n);
    snprintf(step, sizeof step, "%ld", meta ? meta->step : 0L);
    snprintf(seed, sizeof seed, "%" PRIu64, meta ? meta->seed : (uint64_t)0);
    ssm_st_meta kv[6] = {{"format", "pt"}, {"ssmlab.step", step}, {"ssmlab.seed", seed},
                         {"ssmlab.tensors", extras ? extras : ""}};
    int nkv = 4;
#ifdef SSM_VERSION
    kv[nkv++] = (ssm_st_meta){"ssmlab.version", SSM_VERSION};
#endif
    if (meta && meta->run_config) kv[nkv++] = (ssm_st_meta){"ssmlab.run_config", meta->run_config};
    s = extras ? ssm_safetensors_write(path, t, n, kv, nkv) : ssm_fail(SSM_ERR_NOMEM, "out of memory");
    free(extras);
    free(t);
    return s;
}

ssm_status ssm_checkpoint_save(const char *dir, const ssm_model *m, const ssm_adamw *opt,
                               const ssm_checkpoint_meta *meta)
{
    char path[CK_PATH_MAX];
    ssm_status s;
    if ((s = ssm_dir_create(dir)) || (s = path_join(path, dir, "config.json")) ||
        (s = ssm_config_write_json(path, &m->cfg)) || (s = path_join(path, dir, "model.safetensors")) ||
        (s = save_weights(path, m, meta)))
        return s;
    if (opt) return ssm_checkpoint_save_optimizer(dir, m, opt);
    if ((s = path_join(path, dir, "optimizer.safetensors"))) return s;
    if (unlink(path) != 0 && errno != ENOENT)
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot remove stale optimizer state: %s", path,
                        strerror(errno));
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Optimizer state                                                          */

/* The m and v views of opt, named "m.<param>" and "v.<param>". */
static ssm_status opt_tensors(const ssm_model *m, const ssm_adamw *opt, ssm_tensor **out, int *n)
{
    ssm_tensor *tm, *tv;
    int nm, nv;
    ssm_status s = tensors_list(m, opt->m, &tm, &nm);
    if (s) return s;
    if ((s = tensors_list(m, opt->v, &tv, &nv))) { free(tm); return s; }
    ssm_tensor *t = realloc(tm, sizeof *t * (size_t)(nm + nv + 1));
    if (!t) { free(tm); free(tv); return ssm_fail(SSM_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < nm + nv && !s; i++) {
        ssm_tensor *x = &t[i];
        if (i >= nm) *x = tv[i - nm];
        char name[sizeof x->name];
        snprintf(name, sizeof name, "%s", x->name);
        if (snprintf(x->name, sizeof x->name, "%c.%s", i < nm ? 'm' : 'v', name) >= (int)sizeof x->name)
            s = ssm_fail(SSM_ERR_SOFTWARE, "tensor name '%s' too long for the optimizer state", name);
    }
    free(tv);
    *out = t;
    *n = nm + nv;
    return s;
}

ssm_status ssm_checkpoint_save_optimizer(const char *dir, const ssm_model *m, const ssm_adamw *opt)
{
    char path[CK_PATH_MAX], step[32];
    ssm_tensor *t = NULL;
    int n = 0;
    ssm_status s;
    if (opt->num_params != m->num_params)
        return ssm_fail(SSM_ERR_SOFTWARE, "%s: optimizer has %zu parameters, model %zu", dir,
                        opt->num_params, m->num_params);
    if ((s = ssm_dir_create(dir)) || (s = path_join(path, dir, "optimizer.safetensors")) ||
        (s = opt_tensors(m, opt, &t, &n))) {
        free(t);
        return s;
    }
    snprintf(step, sizeof step, "%ld", opt->step);
    ssm_st_meta kv[3] = {{"format", "pt"}, {"ssmlab.kind", "adamw"}, {"step", step}};
    s = ssm_safetensors_write(path, t, n, kv, 3);
    free(t);
    return s;
}

static ssm_status opt_load_from(const ssm_safetensors *st, const ssm_model *m, ssm_adamw *opt)
{
    uint64_t step = 0;
    loader ld = {st, calloc((size_t)st->n_tensors + 1, 1)};
    if (!ld.used) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", st->path);
    ssm_status s = load_block(&ld, m, opt->m, "m.");
    if (!s) s = load_block(&ld, m, opt->v, "v.");
    if (!s) s = loader_check_unused(&ld, 0);
    if (!s && !ssm_safetensors_metadata(st, "step"))
        s = ssm_fail(SSM_ERR_DATA, "%s: __metadata__ has no step", st->path);
    if (!s) s = meta_parse_int(st, "step", LONG_MAX, &step);
    if (!s) opt->step = (long)step;
    free(ld.used);
    return s;
}

ssm_status ssm_checkpoint_load_optimizer(const char *dir, const ssm_model *m, ssm_adamw *opt)
{
    char path[CK_PATH_MAX];
    ssm_safetensors st;
    ssm_status s;
    if (opt->num_params != m->num_params || !opt->m || !opt->v)
        return ssm_fail(SSM_ERR_SOFTWARE, "%s: optimizer is not built for this model", dir);
    if (!(s = dir_check(dir)) && !(s = path_join(path, dir, "optimizer.safetensors")) &&
        !(s = ssm_safetensors_open(&st, path))) {
        s = opt_load_from(&st, m, opt);
        ssm_safetensors_close(&st);
    }
    if (s) {
        memset(opt->m, 0, sizeof(float) * opt->num_params);
        memset(opt->v, 0, sizeof(float) * opt->num_params);
        opt->step = 0;
    }
    return s;
}
