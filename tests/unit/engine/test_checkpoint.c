/* test_checkpoint.c — unit tests of checkpoints: bitwise save/load round
 * trips (model, metadata, optimizer state), transformers-named checkpoints,
 * F16/BF16/F64 conversion, state-spaces/mamba-style pytorch_model.bin, one
 * test per kind of bad input (status and a message naming the file and the
 * problem), a short bit-flip/truncation fuzz of both readers, and the
 * commit as one unit: a failure at any file of a save
 * (SSMLAB_TEST_FAIL_WRITE) or a kill -9 leaves a loadable checkpoint of one
 * step, and mixed parts are refused naming both steps. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <json.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/checkpoint.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/safetensors.h"
#include "tests/tmpdir.h"

#define MAX_T 128

TestSuite(checkpoint, .init = tmpdir_make, .fini = tmpdir_remove);

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static unsigned rng = 2024u;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) / 8388608.0 - 1.0);
}


static ssm_config tiny_config(void)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 8;
    c.n_layer = 2;
    c.d_state = 4;
    c.d_conv = 4;
    c.expand = 2;
    c.vocab_size = 10;
    c.pad_vocab_size_multiple = 8;
    return c;
}

static void build_random(ssm_model *m, ssm_config c)
{
    cr_assert_eq(ssm_model_build(m, &c), SSM_OK, "%s", ssm_last_error());
    for (size_t i = 0; i < m->num_params; i++) m->params_memory[i] = ldexpf(frand(), (int)(i % 9) - 4);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

/* A safetensors file from a literal header and data bytes. */
static void write_raw_st(const char *path, const char *header, const void *data, size_t len)
{
    size_t h = strlen(header);
    unsigned char *buf = malloc(8 + h + len + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    if (len) memcpy(buf + 8 + h, data, len);
    write_file(path, buf, 8 + h + len);
    free(buf);
}

static void truncate_file(const char *path, double frac)
{
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(truncate(path, (off_t)(sb.st_size * frac)), 0);
}

/* Assert the last error contains each of the given strings (NULL-ended). */
static void expect_msg(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        cr_expect_not_null(strstr(ssm_last_error(), s), "message \"%s\" lacks \"%s\"",
                           ssm_last_error(), s);
    va_end(ap);
}

#define EXPECT_FAIL(call, status, ...)                                                    \
    do {                                                                                  \
        ssm_status st_ = (call);                                                          \
        cr_assert_eq(st_, status, "status %s, expected %s; message: %s",                  \
                     ssm_status_name(st_), ssm_status_name(status), ssm_last_error());    \
        expect_msg(__VA_ARGS__, NULL);                                                    \
    } while (0)

/* Save a random tiny model into tmpdir; the model stays built in *m. */
static void save_tiny(ssm_model *m)
{
    build_random(m, tiny_config());
    cr_assert_eq(ssm_checkpoint_save(tmpdir, m, NULL, NULL), SSM_OK, "%s", ssm_last_error());
}

/* Load tmpdir into a fresh model and expect failure; frees nothing on success. */
static ssm_status load_dir(void)
{
    ssm_model m2;
    ssm_status s = ssm_checkpoint_load(tmpdir, &m2, NULL);
    if (!s) ssm_model_free(&m2);
    return s;
}

static int list_tensors(const ssm_model *m, ssm_tensor *t)
{
    int n = ssm_model_tensors(m, m->params_memory, t, MAX_T);
    cr_assert_leq(n, MAX_T);
    return n;
}

static int find_tensor(const ssm_tensor *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) return i;
    cr_assert_fail("no tensor %s", name);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                              */

static void assert_same_model(const ssm_model *a, const ssm_model *b)
{
    cr_assert_eq(a->num_params, b->num_params);
    cr_assert_eq(memcmp(a->params_memory, b->params_memory, a->num_params * sizeof(float)), 0,
                 "parameters differ after the round trip");
    cr_assert_eq(memcmp(&a->cfg, &b->cfg, sizeof a->cfg), 0, "config differs after the round trip");
}

Test(checkpoint, round_trip_bitwise)
{
    ssm_model m, m2;
    build_random(&m, tiny_config());
    m.params.A_log[0] = -0.0f;
    m.params.A_log[1] = 1e-40f; /* subnormal */
    ssm_checkpoint_meta meta = {.step = 42, .seed = 12345678901234567ull,
                                .run_config = "lr = 0.001\nscenario = \"mixed\"\n"};
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, NULL, &meta), SSM_OK, "%s", ssm_last_error());
    ssm_checkpoint_meta got = {0};
    cr_assert_eq(ssm_checkpoint_load(tmpdir, &m2, &got), SSM_OK, "%s", ssm_last_error());
    assert_same_model(&m, &m2);
    cr_assert_eq(got.step, 42);
    cr_assert_eq(got.seed, 12345678901234567ull);
    cr_assert_str_eq(got.run_config, meta.run_config);
    ssm_checkpoint_meta_free(&got);
    ssm_model_free(&m);
    ssm_model_free(&m2);
}

Test(checkpoint, files_use_the_mamba_layout)
{
    ssm_model m;
    save_tiny(&m);
    json_object *cfg = json_object_from_file(tmpdir_path("config.json")), *v, *ssm;
    cr_assert_not_null(cfg);
    cr_assert(json_object_object_get_ex(cfg, "d_model", &v) && json_object_get_int(v) == 8);
    cr_assert(json_object_object_get_ex(cfg, "n_layer", &v) && json_object_get_int(v) == 2);
    cr_assert(json_object_object_get_ex(cfg, "vocab_size", &v) && json_object_get_int(v) == 10);
    cr_assert(json_object_object_get_ex(cfg, "ssm_cfg", &ssm));
    cr_assert(json_object_object_get_ex(ssm, "d_state", &v) && json_object_get_int(v) == 4);
    /* a plain language model has no ssmlab extras, so mamba_ssm's
     * MambaConfig(**config) accepts the file as it is */
    cr_assert(!json_object_object_get_ex(cfg, "ssmlab", &v));
    json_object_put(cfg);
    ssm_safetensors st;
    cr_assert_eq(ssm_safetensors_open(&st, tmpdir_path("model.safetensors")), SSM_OK, "%s", ssm_last_error());
    const ssm_st_tensor *t = ssm_safetensors_find(&st, "backbone.layers.1.mixer.conv1d.weight");
    cr_assert_not_null(t);
    cr_assert(t->ndim == 3 && t->shape[0] == 16 && t->shape[1] == 1 && t->shape[2] == 4);
    cr_assert_not_null(ssm_safetensors_find(&st, "backbone.embedding.weight"));
    cr_assert_null(ssm_safetensors_find(&st, "lm_head.weight"));
    cr_assert_str_eq(ssm_safetensors_metadata(&st, "format"), "pt");
    cr_assert_str_eq(ssm_safetensors_metadata(&st, "ssmlab.tensors"), "");
    cr_assert_eq(st.n_tensors, 1 + 2 * 10 + 1);
    ssm_safetensors_close(&st);
    struct stat sb;
    cr_assert_neq(stat(tmpdir_path("optimizer.safetensors"), &sb), 0);
    ssm_model_free(&m);
}

Test(checkpoint, round_trip_classifier_and_untied_head)
{
    ssm_config c = tiny_config();
    c.input_kind = SSM_INPUT_CONTINUOUS;
    c.d_input = 3;
    c.n_classes = 5;
    c.norm_eps = 1e-6f;
    ssm_model m, m2;
    build_random(&m, c);
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_checkpoint_load(tmpdir, &m2, NULL), SSM_OK, "%s", ssm_last_error());
    assert_same_model(&m, &m2);
    ssm_safetensors st;
    cr_assert_eq(ssm_safetensors_open(&st, tmpdir_path("model.safetensors")), SSM_OK);
    cr_assert_str_eq(ssm_safetensors_metadata(&st, "ssmlab.tensors"),
                     "backbone.input_proj.weight,backbone.input_proj.bias,classifier.weight,classifier.bias");
    ssm_safetensors_close(&st);
    ssm_model_free(&m);
    ssm_model_free(&m2);

    c = tiny_config();
    c.tie_embeddings = 0;
    build_random(&m, c);
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_checkpoint_load(tmpdir, &m2, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_not_null(m2.params.lm_head);
    assert_same_model(&m, &m2);
    ssm_model_free(&m);
    ssm_model_free(&m2);
}

/* A 3-layer reordering classifier's config.json with `extra` keys in its
 * "ssmlab" object fails to load with a message holding `msg`. */
static void expect_reorder_refused(const char *extra, const char *msg)
{
    const char *cfg = tmpdir_path("config.json");
    char text[512];
    snprintf(text, sizeof text, "{\"d_model\": 8, \"n_layer\": 3, \"vocab_size\": 0, \"ssmlab\": "
             "{\"input_kind\": \"continuous\", \"d_input\": 3, \"n_classes\": 5, "
             "\"reorder\": \"soft\"%s}}", extra);
    write_text(cfg, text);
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, msg);
}

/* A reordering classifier keeps tau and its layers; a reordering config.json
 * without reorder_layers (an older ssmlab's, which permuted z and the
 * residual stream too) is refused, as are bad values. */
Test(checkpoint, reorder_tau_and_layers_round_trip_and_old_configs_are_refused)
{
    ssm_config c = tiny_config();
    c.input_kind = SSM_INPUT_CONTINUOUS;
    c.d_input = 3;
    c.n_classes = 5;
    c.n_layer = 3;
    c.reorder = SSM_REORDER_SOFT;
    c.reorder_tau = 0.25f;
    c.reorder_layers = 5;   /* layers 0 and 2 */
    ssm_model m, m2;
    build_random(&m, c);
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_checkpoint_load(tmpdir, &m2, NULL), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(m2.cfg.reorder_tau, 0.25f);
    cr_expect_eq(m2.cfg.reorder_layers, 5u);
    cr_expect_eq(m2.cfg.n_reorder, 2);
    assert_same_model(&m, &m2);
    ssm_model_free(&m2);
    expect_reorder_refused("", "older ssmlab whose reordering also permuted z");
    expect_reorder_refused(", \"reorder_layers\": [0, 64]", "ssmlab.reorder_layers must be an array of layer numbers");
    expect_reorder_refused(", \"reorder_layers\": [3]", "reorder_layers names layer 3");
    expect_reorder_refused(", \"reorder_layers\": [0], \"reorder_tau\": 0", "reorder_tau must be a number > 0");
    ssm_model_free(&m);
}

Test(checkpoint, optimizer_round_trip)
{
    ssm_model m;
    ssm_adamw opt, opt2;
    ssm_adamw_config oc;
    ssm_adamw_config_default(&oc);
    build_random(&m, tiny_config());
    cr_assert_eq(ssm_adamw_build(&opt, &m, &oc), SSM_OK);
    for (size_t i = 0; i < opt.num_params; i++) {
        opt.m[i] = frand();
        opt.v[i] = fabsf(frand()) * 1e-3f;
    }
    opt.step = 1234;
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, &opt, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_adamw_build(&opt2, &m, &oc), SSM_OK);
    cr_assert_eq(ssm_checkpoint_load_optimizer(tmpdir, &m, &opt2), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(opt2.step, 1234);
    cr_assert_eq(memcmp(opt.m, opt2.m, opt.num_params * sizeof(float)), 0);
    cr_assert_eq(memcmp(opt.v, opt2.v, opt.num_params * sizeof(float)), 0);

    /* a model-only save removes the now stale optimizer state */
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    EXPECT_FAIL(ssm_checkpoint_load_optimizer(tmpdir, &m, &opt2), SSM_ERR_NOINPUT,
                "optimizer.safetensors");
    cr_assert_eq(opt2.step, 0);
    ssm_adamw_free(&opt);
    ssm_adamw_free(&opt2);
    ssm_model_free(&m);
}

Test(checkpoint, optimizer_bad_inputs)
{
    ssm_model m;
    ssm_adamw opt;
    ssm_adamw_config oc;
    ssm_adamw_config_default(&oc);
    build_random(&m, tiny_config());
    cr_assert_eq(ssm_adamw_build(&opt, &m, &oc), SSM_OK);
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, &opt, NULL), SSM_OK, "%s", ssm_last_error());
    /* same tensors without the step */
    ssm_safetensors st;
    cr_assert_eq(ssm_safetensors_open(&st, tmpdir_path("optimizer.safetensors")), SSM_OK);
    int n = st.n_tensors;
    ssm_safetensors_close(&st);
    ssm_tensor t[2 * MAX_T];
    int k = ssm_model_tensors(&m, opt.m, t, MAX_T);
    cr_assert_eq(2 * k, n);
    for (int i = 0; i < k; i++) {
        t[k + i] = t[i];
        char name[96];
        snprintf(name, sizeof name, "%s", t[i].name);
        snprintf(t[i].name, sizeof t[i].name, "m.%s", name);
        snprintf(t[k + i].name, sizeof t[k + i].name, "v.%s", name);
    }
    cr_assert_eq(ssm_safetensors_write(tmpdir_path("optimizer.safetensors"), t, 2 * k, NULL, 0), SSM_OK);
    EXPECT_FAIL(ssm_checkpoint_load_optimizer(tmpdir, &m, &opt), SSM_ERR_DATA, "optimizer.safetensors", "step");
    /* a moment missing */
    ssm_st_meta kv = {"step", "3"};
    cr_assert_eq(ssm_safetensors_write(tmpdir_path("optimizer.safetensors"), t, 2 * k - 1, &kv, 1), SSM_OK);
    EXPECT_FAIL(ssm_checkpoint_load_optimizer(tmpdir, &m, &opt), SSM_ERR_DATA, "optimizer.safetensors",
                "missing tensor 'v.backbone.norm_f.weight'");
    ssm_adamw_free(&opt);
    ssm_model_free(&m);
}

/* ------------------------------------------------------------------------ */
/* Other layouts and dtypes                                                 */

static const char *hf_config =
    "{\"architectures\": [\"MambaForCausalLM\"], \"model_type\": \"mamba\", \"hidden_size\": 8,"
    " \"num_hidden_layers\": 2, \"state_size\": 4, \"expand\": 2, \"conv_kernel\": 4,"
    " \"intermediate_size\": 16, \"time_step_rank\": \"auto\", \"layer_norm_epsilon\": 1e-05,"
    " \"vocab_size\": 16, \"tie_word_embeddings\": true, \"use_bias\": false,"
    " \"use_conv_bias\": true, \"hidden_act\": \"silu\", \"residual_in_fp32\": true}";

Test(checkpoint, transformers_names_load)
{
    ssm_model ref, m;
    ssm_config c = tiny_config();
    c.vocab_size = 16;
    build_random(&ref, c);
    ssm_tensor t[MAX_T];
    int n = list_tensors(&ref, t);
    snprintf(t[0].name, sizeof t[0].name, "backbone.embeddings.weight");
    int conv = find_tensor(t, n, "backbone.layers.0.mixer.conv1d.weight");
    t[conv].ndim = 2;          /* (E, K), as ssmlab holds it */
    t[conv].shape[1] = t[conv].shape[2];
    write_text(tmpdir_path("config.json"), hf_config);
    cr_assert_eq(ssm_safetensors_write(tmpdir_path("model.safetensors"), t, n, NULL, 0), SSM_OK);
    cr_assert_eq(ssm_checkpoint_load(tmpdir, &m, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(m.cfg.d_model, 8);
    cr_assert_eq(m.cfg.padded_vocab, 16);
    cr_assert_eq(m.cfg.dt_rank, 1);
    cr_assert_eq(m.cfg.d_inner, 16);
    cr_assert_eq(memcmp(ref.params_memory, m.params_memory, ref.num_params * sizeof(float)), 0);
    ssm_model_free(&m);
    ssm_model_free(&ref);
}

Test(checkpoint, half_bfloat_double_conversion)
{
    const uint16_t f16[8] = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x7BFF, 0x7C00, 0x8000, 0x3555};
    const float f16_want[8] = {1.0f, -2.0f, 0x1p-24f, 0x3FFp-24f, 65504.0f, INFINITY, -0.0f,
                               0x1.554p-2f};
    const uint16_t bf16[4] = {0x3F80, 0xC0A0, 0x0001, 0xFF80};
    const float bf16_want[4] = {1.0f, -5.0f, 0x1p-133f, -INFINITY};
    const double f64[3] = {0.1, -1e300, 1e-50};
    const float f64_want[3] = {0.1f, -INFINITY, 0.0f};
    unsigned char data[16 + 8 + 24];
    memcpy(data, f16, 16);
    memcpy(data + 16, bf16, 8);
    memcpy(data + 24, f64, 24);
    write_raw_st(tmpdir_path("x.safetensors"),
                 "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[0,16]},"
                 "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[16,24]},"
                 "\"d\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[24,48]},"
                 "\"i\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[48,48]}}",
                 data, sizeof data);
    ssm_safetensors st;
    float out[8];
    cr_assert_eq(ssm_safetensors_open(&st, tmpdir_path("x.safetensors")), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_safetensors_read_f32(&st, ssm_safetensors_find(&st, "h"), out), SSM_OK);
    for (int i = 0; i < 8; i++) cr_expect_eq(out[i], f16_want[i], "f16[%d] = %a", i, out[i]);
    cr_expect(signbit(out[6]));
    cr_assert_eq(ssm_safetensors_read_f32(&st, ssm_safetensors_find(&st, "b"), out), SSM_OK);
    for (int i = 0; i < 4; i++) cr_expect_eq(out[i], bf16_want[i], "bf16[%d] = %a", i, out[i]);
    cr_assert_eq(ssm_safetensors_read_f32(&st, ssm_safetensors_find(&st, "d"), out), SSM_OK);
    for (int i = 0; i < 3; i++) cr_expect_eq(out[i], f64_want[i], "f64[%d] = %a", i, out[i]);
    EXPECT_FAIL(ssm_safetensors_read_f32(&st, ssm_safetensors_find(&st, "i"), out), SSM_ERR_DATA,
                "x.safetensors", "'i'", "I64");
    ssm_safetensors_close(&st);
}

/* The formula tests/data/make_mamba_tiny_torch.py fills tensors with. */
static float fixture_value(const char *name, size_t j)
{
    unsigned h = 0;
    for (const char *p = name; *p; p++) h += (unsigned char)*p;
    return (float)((long)((j * 7 + (h % 13) * 3) % 29) - 14) / 16.0f;
}

static void check_torch_fixture(const char *path)
{
    ssm_model m;
    cr_assert_eq(ssm_checkpoint_load(path, &m, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(m.cfg.vocab_size, 10);
    cr_assert_eq(m.cfg.padded_vocab, 16);
    ssm_tensor t[MAX_T];
    int n = list_tensors(&m, t);
    cr_assert_eq(n, 22);
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < t[i].numel; j++)
            cr_assert_eq(t[i].data[j], fixture_value(t[i].name, j), "%s[%zu] = %g", t[i].name, j,
                         t[i].data[j]);
    ssm_model_free(&m);
}

Test(checkpoint, pytorch_model_bin_fixture_loads)
{
    char path[512];
    snprintf(path, sizeof path, "tests/data/mamba_tiny_torch");
    check_torch_fixture(path);
}

Test(checkpoint, pytorch_model_bin_from_local_torch)
{
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
        cr_skip_test("/usr/bin/python3 has no torch");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/data/make_mamba_tiny_torch.py %s", tmpdir);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    check_torch_fixture(tmpdir);
}

Test(checkpoint, pytorch_model_bin_bad_inputs)
{
    char src[512];
    snprintf(src, sizeof src, "tests/data/mamba_tiny_torch/");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp %sconfig.json %spytorch_model.bin %s/", src, src, tmpdir);
    cr_assert_eq(system(cmd), 0);
    truncate_file(tmpdir_path("pytorch_model.bin"), 0.6);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("pytorch_model.bin"), "truncated");
    write_file(tmpdir_path("pytorch_model.bin"), "", 0);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("pytorch_model.bin"), "empty");
}

/* ------------------------------------------------------------------------ */
/* Bad safetensors                                                          */

Test(checkpoint, truncated_file)
{
    ssm_model m;
    save_tiny(&m);
    truncate_file(tmpdir_path("model.safetensors"), 0.7);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("model.safetensors"), "truncated");
    truncate_file(tmpdir_path("model.safetensors"), 0.01);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("model.safetensors"), "truncated");
    write_file(tmpdir_path("model.safetensors"), "\x10\0\0", 3);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("model.safetensors"), "truncated");
    ssm_model_free(&m);
}

Test(checkpoint, empty_file)
{
    ssm_model m;
    save_tiny(&m);
    write_file(tmpdir_path("model.safetensors"), "", 0);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("model.safetensors"), "empty file");
    ssm_model_free(&m);
}

Test(checkpoint, header_length_past_eof)
{
    unsigned char buf[16] = {0x00, 0x10, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_file(tmpdir_path("x.safetensors"), buf, 10);
    ssm_safetensors st;
    EXPECT_FAIL(ssm_safetensors_open(&st, tmpdir_path("x.safetensors")), SSM_ERR_DATA,
                tmpdir_path("x.safetensors"), "header length 4096 runs past the end");
    memset(buf, 0xff, 8);
    write_file(tmpdir_path("x.safetensors"), buf, 16);
    EXPECT_FAIL(ssm_safetensors_open(&st, tmpdir_path("x.safetensors")), SSM_ERR_DATA,
                tmpdir_path("x.safetensors"), "runs past the end");
}

Test(checkpoint, header_not_json)
{
    ssm_safetensors st;
    const char *bad[] = {"this is not json", "{\"a\": ", "{\"a\": 1} x", "[1, 2, 3]", "{a: 1}"};
    const char *why[] = {"not JSON", "not JSON", "not JSON", "not a JSON object", "not JSON"};
    for (int i = 0; i < 5; i++) {
        write_raw_st(tmpdir_path("x.safetensors"), bad[i], NULL, 0);
        EXPECT_FAIL(ssm_safetensors_open(&st, tmpdir_path("x.safetensors")), SSM_ERR_DATA,
                    tmpdir_path("x.safetensors"), why[i]);
    }
}

Test(checkpoint, tensor_entry_incomplete)
{
    ssm_safetensors st;
    const char *bad[] = {
        "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
        "{\"a\":5}",
        "{\"__metadata__\":{\"k\":3}}",
    };
    const char *why[] = {"'a': entry has no dtype", "no shape", "no data_offsets", "shape entry 0",
                         "data_offsets is not a [begin, end] pair", "not a JSON object",
                         "__metadata__ value of 'k' is not a string"};
    for (int i = 0; i < 7; i++) {
        write_raw_st(tmpdir_path("x.safetensors"), bad[i], "abcd", 4);
        EXPECT_FAIL(ssm_safetensors_open(&st, tmpdir_path("x.safetensors")), SSM_ERR_DATA,
                    tmpdir_path("x.safetensors"), why[i]);
    }
}

Test(checkpoint, offsets_out_of_range)
{
    ssm_safetensors st;
    float data[4] = {1, 2, 3, 4};
    write_raw_st(tmpdir_path("x.safetensors"),
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1000],\"data_offsets\":[0,4000]}}", data, 16);
    EXPECT_FAIL(ssm_safetensors_open(&st, tmpdir_path("x.safetensors")), SSM_ERR_DATA,
                tmpdir_path("x.safetensors"), "'a'", "out of range");
    write_raw_st(tmpdir_path("x.safetensors"),
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,4]}}", data, 16);
    EXPECT_FAIL(ssm_safetensors_open(&st, tmpdir_path("x.safetensors")), SSM_ERR_DATA, "out of range");
    write_raw_st(tmpdir_path("x.safetensors"),
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", data, 16);
    EXPECT_FAIL(ssm_safetensors_open(&st, tmpdir_path("x.safetensors")), SSM_ERR_DATA,
                tmpdir_path("x.safetensors"), "hold 16 bytes but shape (3) of F32 needs 12");
    write_raw_st(tmpdir_path("x.safetensors"),
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}",
                 data, 16);
    EXPECT_FAIL(ssm_safetensors_open(&st, tmpdir_path("x.safetensors")), SSM_ERR_DATA, "too large");
}

Test(checkpoint, unknown_dtype)
{
    ssm_safetensors st;
    write_raw_st(tmpdir_path("x.safetensors"),
                 "{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd", 4);
    EXPECT_FAIL(ssm_safetensors_open(&st, tmpdir_path("x.safetensors")), SSM_ERR_DATA,
                tmpdir_path("x.safetensors"), "'a'", "unknown dtype \"Q7\"");
}

/* Rewrite tmpdir/model.safetensors from m's tensors after edit(t, &n). */
static void rewrite_weights(ssm_model *m, void (*edit)(ssm_tensor *, int *))
{
    ssm_tensor t[MAX_T];
    int n = list_tensors(m, t);
    edit(t, &n);
    cr_assert_eq(ssm_safetensors_write(tmpdir_path("model.safetensors"), t, n, NULL, 0), SSM_OK,
                 "%s", ssm_last_error());
}

static float nine[9];
static void edit_shape(ssm_tensor *t, int *n)
{
    int i = find_tensor(t, *n, "backbone.norm_f.weight");
    t[i].shape[0] = 9;
    t[i].numel = 9;
    t[i].data = nine;
}

static void edit_drop(ssm_tensor *t, int *n)
{
    int i = find_tensor(t, *n, "backbone.layers.1.mixer.D");
    memmove(&t[i], &t[i + 1], sizeof *t * (size_t)(*n - i - 1));
    (*n)--;
}

static void edit_extra(ssm_tensor *t, int *n)
{
    t[*n] = t[*n - 1];
    snprintf(t[*n].name, sizeof t[*n].name, "backbone.layers.0.mixer.mystery");
    (*n)++;
}

Test(checkpoint, wrong_shape)
{
    ssm_model m;
    save_tiny(&m);
    rewrite_weights(&m, edit_shape);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("model.safetensors"),
                "tensor 'backbone.norm_f.weight' has shape (9), expected (8)");
    ssm_model_free(&m);
}

Test(checkpoint, embedding_disagrees_with_config)
{
    ssm_model m;
    ssm_config c = tiny_config();
    c.d_model = 4;
    build_random(&m, c);
    ssm_tensor t[MAX_T];
    int n = list_tensors(&m, t);
    write_text(tmpdir_path("config.json"), hf_config); /* says hidden_size 8 */
    cr_assert_eq(ssm_safetensors_write(tmpdir_path("model.safetensors"), t, n, NULL, 0), SSM_OK);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("model.safetensors"),
                "'backbone.embedding.weight' has shape (16, 4), expected (16, 8) from config.json");
    ssm_model_free(&m);
}

Test(checkpoint, missing_tensor)
{
    ssm_model m;
    save_tiny(&m);
    rewrite_weights(&m, edit_drop);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("model.safetensors"),
                "missing tensor 'backbone.layers.1.mixer.D'");
    ssm_model_free(&m);
}

Test(checkpoint, unexpected_tensor)
{
    ssm_model m;
    save_tiny(&m);
    rewrite_weights(&m, edit_extra);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("model.safetensors"),
                "unexpected tensor 'backbone.layers.0.mixer.mystery'");
    ssm_model_free(&m);
}

Test(checkpoint, nan_and_inf_weights)
{
    ssm_model m;
    build_random(&m, tiny_config());
    m.params.A_log[3] = NAN;
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, NULL, NULL), SSM_OK);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, tmpdir_path("model.safetensors"),
                "tensor 'backbone.layers.0.mixer.A_log' holds NaN at element 3");
    m.params.A_log[3] = 0;
    m.params.norm_f[1] = -INFINITY;
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &m, NULL, NULL), SSM_OK);
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, "'backbone.norm_f.weight' holds Inf at element 1");
    ssm_model_free(&m);
}

/* ------------------------------------------------------------------------ */
/* Bad config.json and directories                                          */

Test(checkpoint, garbage_config_json)
{
    ssm_model m;
    save_tiny(&m);
    const char *cfg = tmpdir_path("config.json");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": ");
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, cfg, "not JSON");
    write_text(cfg, "\x89PNG\r\n garbage");
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, cfg, "not JSON");
    write_text(cfg, "");
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, cfg, "empty");
    write_text(cfg, "[8, 2]");
    EXPECT_FAIL(load_dir(), SSM_ERR_DATA, cfg, "not a JSON object");
    write_text(cfg, "{\"n_layer\": 2, \"vocab_size\": 10}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "missing d_model");
    write_text(cfg, "{\"d_model\": 8, \"vocab_size\": 10}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "missing n_layer");
    write_text(cfg, "{\"d_model\": \"eight\", \"n_layer\": 2, \"vocab_size\": 10}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "d_model must be an integer (found \"eight\")");
    write_text(cfg, "{\"d_model\": 0, \"n_layer\": 2, \"vocab_size\": 10}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "d_model must be positive");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": -2, \"vocab_size\": 10}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "n_layer must be positive");
    write_text(cfg, "{\"d_model\": 8.5, \"n_layer\": 2, \"vocab_size\": 10}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "d_model must be an integer");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": 2, \"vocab_size\": 10, \"ssm_cfg\": [4]}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "ssm_cfg must be an object");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": 2, \"vocab_size\": 10, \"tie_embeddings\": \"yes\"}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "tie_embeddings must be true or false");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": 2}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "missing vocab_size");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": 2, \"vocab_size\": 10, \"ssm_cfg\": {\"layer\": \"Mamba3\"}}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "layer = \"Mamba3\" is not supported");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": 2, \"vocab_size\": 10, \"ssm_cfg\": {\"layer\": \"Mamba2\", "
               "\"headdim\": 3}}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "head_dim = 3 must divide d_inner");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": 2, \"vocab_size\": 10, \"ssm_cfg\": {\"layer\": \"Mamba2\", "
               "\"headdim\": 4, \"ngroups\": 3}}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "n_groups = 3 must divide the 4 heads");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": 2, \"vocab_size\": 10, \"ssm_cfg\": {\"layer\": \"Mamba2\", "
               "\"headdim\": 4, \"dt_limit\": [0.001, 0.1]}}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "dt_limit must be [0, Infinity]");
    write_text(cfg, "{\"model_type\": \"mamba2\", \"hidden_size\": 8, \"num_hidden_layers\": 2, \"vocab_size\": 16, "
               "\"head_dim\": 4, \"num_heads\": 3}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "num_heads 3 times head_dim 4 is not expand * hidden_size");
    write_text(cfg, "{\"model_type\": \"mamba2\", \"hidden_size\": 8, \"num_hidden_layers\": 2, \"vocab_size\": 16, "
               "\"head_dim\": 4, \"time_step_limit\": [0.0, 1.0]}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "time_step_limit must be [0, Infinity]");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": 2, \"vocab_size\": 10, \"ssm_cfg\": {\"d_state\": 1000}}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "d_state");
    ssm_model_free(&m);
}

Test(checkpoint, inconsistent_config_json)
{
    ssm_model m;
    save_tiny(&m);
    const char *cfg = tmpdir_path("config.json");
    write_text(cfg, "{\"d_model\": 8, \"hidden_size\": 16, \"n_layer\": 2, \"vocab_size\": 10}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "inconsistent: hidden_size is 16 but d_model is 8");
    write_text(cfg, "{\"hidden_size\": 8, \"num_hidden_layers\": 2, \"vocab_size\": 16,"
                    " \"expand\": 2, \"intermediate_size\": 24}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "intermediate_size 24 is not expand * hidden_size");
    write_text(cfg, "{\"d_model\": 8, \"n_layer\": 2, \"vocab_size\": 10,"
                    " \"ssmlab\": {\"input_kind\": \"continuous\", \"d_input\": 3, \"n_classes\": 0}}");
    EXPECT_FAIL(load_dir(), SSM_ERR_CONFIG, cfg, "classification head");
    ssm_model_free(&m);
}

Test(checkpoint, missing_directory_and_files)
{
    ssm_model m;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/does-not-exist", tmpdir);
    EXPECT_FAIL(ssm_checkpoint_load(missing, &m, NULL), SSM_ERR_NOINPUT, missing, "No such file");
    save_tiny(&m);
    cr_assert_eq(unlink(tmpdir_path("model.safetensors")), 0);
    EXPECT_FAIL(load_dir(), SSM_ERR_NOINPUT, tmpdir, "no model.safetensors or pytorch_model.bin");
    cr_assert_eq(unlink(tmpdir_path("config.json")), 0);
    EXPECT_FAIL(load_dir(), SSM_ERR_NOINPUT, tmpdir_path("config.json"));
    ssm_model m2;
    EXPECT_FAIL(ssm_checkpoint_load(tmpdir_path("nothing/deeper"), &m2, NULL), SSM_ERR_NOINPUT, "nothing/deeper");
    ssm_model_free(&m);
}

Test(checkpoint, save_creates_nested_directories)
{
    ssm_model m, m2;
    build_random(&m, tiny_config());
    char nested[400];
    snprintf(nested, sizeof nested, "%s/a/b/c", tmpdir);
    cr_assert_eq(ssm_checkpoint_save(nested, &m, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_checkpoint_load(nested, &m2, NULL), SSM_OK, "%s", ssm_last_error());
    assert_same_model(&m, &m2);
    /* no temporary files are left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s | grep tmp)\"", nested);
    cr_assert_eq(system(cmd), 0);
    ssm_model_free(&m);
    ssm_model_free(&m2);
    /* a file in the way */
    write_text(tmpdir_path("file"), "x");
    EXPECT_FAIL(ssm_checkpoint_save(tmpdir_path("file"), &m, NULL, NULL), SSM_ERR_CANTCREAT, "file");
}

/* ------------------------------------------------------------------------ */
/* Fuzz: bit flips and truncations never crash, and only fail with DATA      */

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len);
    cr_assert_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void fuzz_file(const char *src, const char *dst, int torch, int rounds)
{
    size_t len;
    unsigned char *orig = slurp(src, &len), *buf = malloc(len);
    float *out = malloc(1 << 20);
    for (int r = 0; r < rounds; r++) {
        memcpy(buf, orig, len);
        size_t n = len;
        rng = rng * 1664525u + 1013904223u;
        if (r % 3 == 0) n = (rng >> 4) % len;
        for (int k = 0; k < 1 + r % 4; k++) {
            rng = rng * 1664525u + 1013904223u;
            size_t at = (rng >> 3) % (r % 2 ? len : 600 < len ? 600 : len);
            buf[at] ^= (unsigned char)(1u << (rng >> 29));
        }
        write_file(dst, buf, n);
        ssm_safetensors st;
        ssm_status s = torch ? ssm_safetensors_open_torch(&st, dst) : ssm_safetensors_open(&st, dst);
        cr_assert(s == SSM_OK || s == SSM_ERR_DATA, "round %d: %s", r, ssm_last_error());
        for (int i = 0; !s && i < st.n_tensors; i++)
            if (st.tensors[i].nbytes <= (1 << 20) / 2) ssm_safetensors_read_f32(&st, &st.tensors[i], out);
        if (!s) ssm_safetensors_close(&st);
    }
    free(out);
    free(buf);
    free(orig);
}

Test(checkpoint, fuzz_readers)
{
    ssm_model m;
    save_tiny(&m);
    fuzz_file(tmpdir_path("model.safetensors"), tmpdir_path("fuzz.safetensors"), 0, 400);
    char src[512];
    snprintf(src, sizeof src, "tests/data/mamba_tiny_torch/pytorch_model.bin");
    fuzz_file(src, tmpdir_path("fuzz.bin"), 1, 400);
    ssm_model_free(&m);
}

/* ------------------------------------------------------------------------ */
/* Commits as one unit                                                      */

/* m and opt filled with values of step. */
static void at_step(ssm_model *m, ssm_adamw *opt, long step)
{
    for (size_t i = 0; i < m->num_params; i++) {
        m->params_memory[i] = (float)step + (float)(i % 7) * 0.01f;
        opt->m[i] = (float)step;
        opt->v[i] = (float)step;
    }
    opt->step = step;
}

/* The number of dot files in dir (temporary files, the commit journal). */
static int hidden_files(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void build(ssm_model *m, ssm_adamw *opt)
{
    ssm_config c = tiny_config();
    ssm_adamw_config oc;
    ssm_adamw_config_default(&oc);
    cr_assert_eq(ssm_model_build(m, &c), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_adamw_build(opt, m, &oc), SSM_OK, "%s", ssm_last_error());
}

static ssm_status save_at(const char *dir, ssm_model *m, ssm_adamw *opt, long step)
{
    at_step(m, opt, step);
    ssm_checkpoint_meta meta = {.step = step, .seed = 1};
    return ssm_checkpoint_save(dir, m, opt, &meta);
}

/* dir loads whole, model and optimizer at step. */
static void assert_loads_at(const char *dir, long step)
{
    ssm_model m;
    ssm_adamw opt;
    ssm_adamw_config oc;
    ssm_adamw_config_default(&oc);
    ssm_checkpoint_meta meta;
    cr_assert_eq(ssm_checkpoint_load(dir, &m, &meta), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(meta.step, step);
    cr_assert_eq(m.params_memory[0], (float)step);
    cr_assert_eq(ssm_adamw_build(&opt, &m, &oc), SSM_OK);
    cr_assert_eq(ssm_checkpoint_load_optimizer(dir, &m, &opt), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(opt.step, step);
    cr_assert_eq(opt.m[0], (float)step);
    ssm_checkpoint_meta_free(&meta);
    ssm_adamw_free(&opt);
    ssm_model_free(&m);
}

Test(checkpoint, failed_save_keeps_the_previous_checkpoint)
{
    ssm_model m;
    ssm_adamw opt;
    build(&m, &opt);
    write_file(tmpdir_path("train.csv"), "step\n", 5);
    cr_assert_eq(save_at(tmpdir, &m, &opt, 1), SSM_OK, "%s", ssm_last_error());
    /* the flushes of a save: config.json, model.safetensors,
     * optimizer.safetensors, the journal; the hook counts them only while
     * it is set, so `counted` is what it has seen */
    static const char *part[4] = {"config.json", "model.safetensors", "optimizer.safetensors",
                                  ".ssmlab-commit"};
    int counted = 0;
    for (int p = 1; p <= 4; p++) {
        char v[8];
        snprintf(v, sizeof v, "%d", counted + p);
        setenv("SSMLAB_TEST_FAIL_WRITE", v, 1);
        EXPECT_FAIL(save_at(tmpdir, &m, &opt, 1 + p), SSM_ERR_IO, part[p - 1], "write failed");
        unsetenv("SSMLAB_TEST_FAIL_WRITE");
        counted += p;
        assert_loads_at(tmpdir, 1);
    }
    assert_loads_at(tmpdir, 1);
    cr_assert_eq(hidden_files(tmpdir), 0, "a failed save leaves its temporary files");
    cr_assert_eq(access(tmpdir_path("train.csv"), F_OK), 0, "the run's other files stay");
    cr_assert_eq(save_at(tmpdir, &m, &opt, 3), SSM_OK, "%s", ssm_last_error());
    assert_loads_at(tmpdir, 3);
    ssm_adamw_free(&opt);
    ssm_model_free(&m);
}

Test(checkpoint, mixed_parts_are_refused)
{
    char a[300], b[300], cmd[700];
    snprintf(a, sizeof a, "%s/a", tmpdir);
    snprintf(b, sizeof b, "%s/b", tmpdir);
    ssm_model m;
    ssm_adamw opt;
    build(&m, &opt);
    cr_assert_eq(save_at(a, &m, &opt, 160), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(save_at(b, &m, &opt, 161), SSM_OK, "%s", ssm_last_error());
    snprintf(cmd, sizeof cmd, "cp '%s/model.safetensors' '%s/model.safetensors'", b, a);
    cr_assert_eq(system(cmd), 0);
    ssm_model_free(&m);
    cr_assert_eq(ssm_checkpoint_load(a, &m, NULL), SSM_OK, "%s", ssm_last_error());
    EXPECT_FAIL(ssm_checkpoint_load_optimizer(a, &m, &opt), SSM_ERR_DATA, a,
                "model.safetensors is at step 161", "optimizer.safetensors at step 160");
    ssm_adamw_free(&opt);
    ssm_model_free(&m);
}

/* kill -9 during saves, at various moments: the directory always loads,
 * its parts at one step. */
Test(checkpoint, kill_during_save_leaves_one_step, .timeout = 60)
{
    ssm_model m;
    ssm_adamw opt;
    build(&m, &opt);
    for (int trial = 0; trial < 12; trial++) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/k%d", tmpdir, trial);
        cr_assert_eq(save_at(dir, &m, &opt, 1), SSM_OK, "%s", ssm_last_error());
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            for (long step = 2;; step++) save_at(dir, &m, &opt, step);
        }
        usleep(3000 + 2500 * (useconds_t)trial);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        ssm_model l;
        ssm_checkpoint_meta meta;
        cr_assert_eq(ssm_checkpoint_load(dir, &l, &meta), SSM_OK, "trial %d: %s", trial, ssm_last_error());
        ssm_model_free(&l);
        assert_loads_at(dir, meta.step);
        ssm_checkpoint_meta_free(&meta);
    }
    ssm_adamw_free(&opt);
    ssm_model_free(&m);
}
