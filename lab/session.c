/* session.c — a training session for the TUI's engine thread: the task's
 * data (text or images), model, optimizer, single steps, cancellable
 * validation, checkpoints (inspected when loaded, new runs named after their
 * settings, no writing into someone else's checkpoint), the checkpoint's
 * tokenizer, test images as inputs, and a probe copy of the model for
 * measurements on one inspected input, including the hidden attention and
 * the influence of ssmlab-math(7) RECENCY; and the run's history,
 * rc.out/train.csv, as ssmlab train writes it. */
#include "lab/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/checkpoint.h"
#include "engine/clock.h"
#include "engine/recency.h"

/* ------------------------------------------------------------------------ */
/* Opening and closing                                                      */

static ssm_status task_supported(const run_config *rc, const char *where)
{
    if (rc->task == RUN_TASK_LM || rc->task == RUN_TASK_CLASSIFY) return SSM_OK;
    return ssm_fail(SSM_ERR_CONFIG, "%s: task = %s: the TUI trains language models (lm) and image "
                    "classifiers (classify); use ssmlab train", where, run_task_name(rc->task));
}

/* Text: unigram baseline of the validation split; images: ln C. */
static void baseline_set(ssm_session *s, int n_classes)
{
    double bits;
    if (s->images) s->baseline = log(n_classes > 1 ? n_classes : 1);
    else if (ssm_text_unigram(&s->data->text, &s->baseline, &bits)) s->baseline = NAN;
}

static ssm_status data_load(ssm_session *s)
{
    ssm_status st = task_supported(&s->rc, "the run configuration");
    if (st) return st;
    /* on the heap: task_data points into itself, and sessions are moved */
    if (!(s->data = calloc(1, sizeof *s->data))) return ssm_fail(SSM_ERR_NOMEM, "session: out of memory");
    if ((st = task_data_load(s->data, &s->rc, 0))) return st;
    s->images = s->rc.task == RUN_TASK_CLASSIFY;
    if (!s->images && s->data->text.n_train < (size_t)s->rc.seq_len + 1)
        return ssm_fail(SSM_ERR_DATA, "%s: %zu training bytes, fewer than seq_len + 1 = %d",
                        s->rc.data, s->data->text.n_train, s->rc.seq_len + 1);
    return SSM_OK;
}

/* The probe is built again at the next ssm_session_probe: the model was
 * replaced, or starts training (its weights move from now on). */
static void probe_drop(ssm_session *s)
{
    ssm_model_free(&s->probe);
    s->probe_T = 0;
}

/* The AdamW moments at s->opt.step, built when the run first needs them
 * (its first training step, or a save): fresh ones, or those waiting in
 * s->opt_from (the loaded checkpoint's, when it had any).  They must still
 * be there at the loaded step: an error naming the directory when it
 * changed on disk meanwhile.  On failure the session is unchanged. */
static ssm_status optimizer_ensure(ssm_session *s)
{
    if (s->opt.m) return SSM_OK;
    ssm_adamw n = {0};
    long step = s->opt.step;
    ssm_status st = ssm_adamw_build(&n, &s->model, &s->rc.opt);
    if (!st && s->opt_from[0]) {
        st = ssm_checkpoint_load_optimizer(s->opt_from, &s->model, &n);
        if (!st && n.step != step)
            st = ssm_fail(SSM_ERR_DATA, "%s: the checkpoint is at step %ld now, %ld when it was loaded: "
                          "load it again to train it", s->opt_from, n.step, step);
    }
    if (st) {
        ssm_adamw_free(&n);
        return st;
    }
    n.step = step;
    n.cfg = s->rc.opt;
    s->opt = n;
    s->opt_from[0] = 0;
    return SSM_OK;
}

/* A model inspected in bf16 before it trains or is saved: the loaded
 * checkpoint's float32 weights (the same model, or an error naming the
 * directory when it changed on disk meanwhile). */
static ssm_status float32_ensure(ssm_session *s)
{
    if (s->model.weights == SSM_WEIGHTS_F32) return SSM_OK;
    ssm_model n;
    ssm_checkpoint_meta meta = {0};
    ssm_status st = ssm_checkpoint_load_as(s->loaded, &n, &meta, SSM_WEIGHTS_F32);
    if (!st && memcmp(&n.cfg, &s->model.cfg, sizeof n.cfg))
        st = ssm_fail(SSM_ERR_DATA, "%s: the checkpoint changed since it was loaded: load it again to "
                      "train it", s->loaded);
    if (!st && meta.step != s->opt.step)
        st = ssm_fail(SSM_ERR_DATA, "%s: the checkpoint is at step %ld now, %ld when it was loaded: "
                      "load it again to train it", s->loaded, meta.step, s->opt.step);
    ssm_checkpoint_meta_free(&meta);
    if (st) {
        ssm_model_free(&n);
        return st;
    }
    probe_drop(s);
    ssm_model_free(&s->model);
    s->model = n;
    return SSM_OK;
}

/* What a training step needs and an inspecting session does not hold:
 * float32 weights, gradients and the AdamW moments, allocated at the run's
 * first step and kept from then on (the moments are the run's state). */
static ssm_status training_ensure(ssm_session *s)
{
    ssm_status st = float32_ensure(s);
    if (!st) st = optimizer_ensure(s);
    if (st || s->model.grads_memory) return st;
    if ((st = ssm_model_alloc_grads(&s->model))) return st;
    probe_drop(s);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Run names and directories                                                */

static void settings_get(const ssm_config *c, int set[SSM_RUN_NSETTINGS])
{
    set[SSM_RUN_SCENARIO] = c->scenario;
    set[SSM_RUN_POLARIZE] = c->polarize;
    set[SSM_RUN_REORDER] = c->reorder;
}

/* The shown name: the loaded checkpoint's while it is inspected, else the run's. */
static void name_update(ssm_session *s)
{
    ssm_run_dir_base(s->name, sizeof s->name, s->inspecting ? s->loaded : s->rc.out);
}

/* New runs are named after path (a run directory) and the model's settings now. */
static void base_set(ssm_session *s, const char *path)
{
    ssm_run_dir_base(s->base_name, sizeof s->base_name, path);
    ssm_run_dir_parent(s->base_parent, sizeof s->base_parent, path);
    settings_get(&s->model.cfg, s->base_set);
}

/* rc.out for the model now: the base run's name with the settings that
 * differ, in a directory that holds no checkpoint; not yet written. */
static void out_set(ssm_session *s)
{
    int set[SSM_RUN_NSETTINGS];
    settings_get(&s->model.cfg, set);
    ssm_run_dir_path(s->rc.out, sizeof s->rc.out, s->base_parent, s->base_name, s->base_set, set);
    s->out_written = 0;
    name_update(s);
}

ssm_status ssm_session_open(ssm_session *s, const run_config *rc)
{
    ssm_status st;
    memset(s, 0, sizeof *s);
    s->rc = *rc;
    s->saved_step = -1;
    if ((st = run_config_check(&s->rc))) return st;
    if ((st = data_load(s))) goto fail;
    if ((st = task_model_config(s->data, &s->rc, &s->rc.model))) goto fail;
    if ((st = ssm_model_build(&s->model, &s->rc.model))) goto fail;
    ssm_model_init(&s->model, (uint64_t)s->rc.seed);
    s->opt.cfg = s->rc.opt;   /* step 0; gradients and moments come with the first step */
    baseline_set(s, s->model.cfg.n_classes);
    base_set(s, s->rc.out);
    out_set(s);
    return SSM_OK;
fail:
    ssm_session_free(s);
    return st;
}

/* Apply the `key = value` lines of a stored run configuration; lines that
 * do not apply (renamed keys, bad values) are skipped. */
static void config_apply_text(run_config *rc, const char *text)
{
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[RUN_PATH_MAX + 64];
        if (n < sizeof line && memchr(p, '=', n)) {
            memcpy(line, p, n);
            line[n] = 0;
            run_config_set(rc, line, "checkpoint");
        }
        p = nl ? nl + 1 : NULL;
    }
}

/* The checkpoint's model against its task: a classifier needs its stored
 * run configuration to find its images. */
static ssm_status checkpoint_task_check(const ssm_session *s, const char *dir, int has_config)
{
    const ssm_config *c = &s->model.cfg;
    int classifier = c->n_classes > 0 || c->input_kind != SSM_INPUT_TOKENS;
    if (classifier && !has_config)
        return ssm_fail(SSM_ERR_DATA, "%s/model.safetensors: a classifier without ssmlab.run_config "
                        "metadata: cannot tell which images it was trained on", dir);
    if (classifier != (s->rc.task == RUN_TASK_CLASSIFY))
        return ssm_fail(SSM_ERR_CONFIG, "%s: the model is %s but the run configuration says task = %s", dir,
                        classifier ? "a classifier" : "a language model", run_task_name(s->rc.task));
    return task_supported(&s->rc, dir);
}

static ssm_status checkpoint_config(ssm_session *s, const char *dir, const run_config *base,
                                    const ssm_checkpoint_meta *meta, char *const *overrides, int n)
{
    ssm_status st;
    s->rc = *base;
    if (meta->run_config) config_apply_text(&s->rc, meta->run_config);
    for (int i = 0; i < n; i++)
        if ((st = run_config_set(&s->rc, overrides[i], "command line"))) return st;
    s->rc.model = s->model.cfg;
    s->rc.resume[0] = 0;
    if ((st = checkpoint_task_check(s, dir, meta->run_config != NULL))) return st;
    return run_config_check(&s->rc);
}

/* The loaded data fits the loaded model. */
static ssm_status checkpoint_data_check(const ssm_session *s, const char *dir)
{
    const ssm_config *c = &s->model.cfg;
    if (!s->images) return SSM_OK;
    const task_data *d = s->data;
    int classes = d->train.n_classes > d->test.n_classes ? d->train.n_classes : d->test.n_classes;
    if (d->seq.d_input != c->d_input)
        return ssm_fail(SSM_ERR_DATA, "%s: tokens have %d values, the model in %s takes %d", d->test.path,
                        d->seq.d_input, dir, c->d_input);
    if (classes > c->n_classes)
        return ssm_fail(SSM_ERR_DATA, "%s: labels go up to %d, the model in %s has %d classes", d->test.path,
                        classes - 1, dir, c->n_classes);
    return SSM_OK;
}

/* dir/tokenizer.json when there is one: it must fit the model. */
static ssm_status tokenizer_open(ssm_session *s, const char *dir)
{
    char path[RUN_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (access(path, F_OK)) return SSM_OK;
    ssm_status st = ssm_tokenizer_load(&s->tk, path);
    if (st) return st;
    if (s->images) return ssm_fail(SSM_ERR_DATA, "%s: an image classifier takes no tokens", path);
    if (s->tk.n_vocab > s->model.cfg.padded_vocab)
        return ssm_fail(SSM_ERR_DATA, "%s: the tokenizer has %d tokens, the model in %s only %d", path,
                        s->tk.n_vocab, dir, s->model.cfg.padded_vocab);
    return SSM_OK;
}

ssm_status ssm_session_open_checkpoint(ssm_session *s, const char *dir, const run_config *base,
                                       char *const *overrides, int n)
{
    return ssm_session_open_checkpoint_as(s, dir, base, overrides, n, SSM_WEIGHTS_F32);
}

ssm_status ssm_session_open_checkpoint_as(ssm_session *s, const char *dir, const run_config *base,
                                          char *const *overrides, int n, int weights)
{
    ssm_status st;
    ssm_checkpoint_meta meta = {0};
    memset(s, 0, sizeof *s);
    if (weights < 0) weights = ssm_checkpoint_default_weights(dir);
    if ((st = ssm_checkpoint_load_as(dir, &s->model, &meta, weights))) return st;
    if ((st = checkpoint_config(s, dir, base, &meta, overrides, n))) goto fail;
    if ((st = data_load(s))) goto fail;
    if ((st = checkpoint_data_check(s, dir))) goto fail;
    if ((st = tokenizer_open(s, dir))) goto fail;
    /* inspected: the float32 weights (bf16), gradients and moments come with
     * the first step (training_ensure).  The moments' step is checked now:
     * parts of different steps are refused in float32, and in bf16 (which
     * only looks) at that first step, as its float32 weights are */
    st = ssm_checkpoint_check_optimizer(dir);
    if (st && st != SSM_ERR_NOINPUT && weights == SSM_WEIGHTS_F32) goto fail;
    if (st != SSM_ERR_NOINPUT) snprintf(s->opt_from, sizeof s->opt_from, "%s", dir);   /* else a download: fresh moments */
    s->opt.step = meta.step;
    s->opt.cfg = s->rc.opt;
    s->saved_step = s->opt.step;
    baseline_set(s, s->model.cfg.n_classes);
    ssm_checkpoint_meta_free(&meta);
    snprintf(s->loaded, sizeof s->loaded, "%s", dir);
    snprintf(s->hist_from, sizeof s->hist_from, "%s", dir);
    s->inspecting = 1;
    base_set(s, dir);
    out_set(s);
    return SSM_OK;
fail:
    ssm_checkpoint_meta_free(&meta);
    ssm_session_free(s);
    return st;
}

ssm_status ssm_session_rebuild(ssm_session *s, const ssm_config *mc)
{
    ssm_session n = *s;
    ssm_status st;
    n.rc.model = *mc;
    memset(&n.model, 0, sizeof n.model);
    memset(&n.opt, 0, sizeof n.opt);
    memset(&n.probe, 0, sizeof n.probe);
    if ((st = run_config_check(&n.rc))) return st;
    if ((st = task_model_config(n.data, &n.rc, &n.rc.model))) return st;
    if ((st = ssm_model_build(&n.model, &n.rc.model))) return st;
    ssm_model_init(&n.model, (uint64_t)n.rc.seed);
    n.opt.cfg = n.rc.opt;   /* step 0; gradients and moments come with the first step */
    n.opt_from[0] = 0;
    ssm_adamw_free(&s->opt);
    ssm_model_free(&s->model);
    ssm_model_free(&s->probe);
    history_close(&s->hist);   /* a new model starts a new history */
    memset(&n.hist, 0, sizeof n.hist);
    n.hist_dir[0] = n.hist_from[0] = 0;
    n.tokens_seen = 0;
    n.saved_step = -1;
    n.probe_T = 0;
    n.inspecting = 0;
    *s = n;
    out_set(s);
    return SSM_OK;
}

void ssm_session_free(ssm_session *s)
{
    history_close(&s->hist);
    ssm_tokenizer_free(&s->tk);
    ssm_model_free(&s->probe);
    ssm_adamw_free(&s->opt);
    ssm_model_free(&s->model);
    if (s->data) task_data_free(s->data);
    free(s->data);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------ */
/* The run's history                                                        */

/* The history open in rc.out: opened (rc.out created) at the run's first
 * step, continuing the history it had so far (the open file's, or the
 * loaded checkpoint's) up to the step now; moved along when rc.out moves. */
static ssm_status history_ensure(ssm_session *s)
{
    if (s->hist.f && ssm_run_dir_same(s->hist_dir, s->rc.out)) return SSM_OK;
    char from[RUN_PATH_MAX];
    snprintf(from, sizeof from, "%s", s->hist.f ? s->hist_dir : s->hist_from);
    if (!s->hist.f) s->hist_t0 = ssm_now_s();
    ssm_status st = history_close(&s->hist);
    s->hist_dir[0] = 0;
    if (!st) st = ssm_dir_create(s->rc.out);
    if (!st) st = history_open(&s->hist, s->rc.out, from, s->opt.step);
    if (st) return st;
    snprintf(s->hist_dir, sizeof s->hist_dir, "%s", s->rc.out);
    return SSM_OK;
}

/* dir holds a train.csv. */
static int history_exists(const char *dir)
{
    char path[RUN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, HISTORY_FILE);
    return *dir && !access(path, F_OK);
}

/* The training row of the step just taken, when ssmlab train logs it. */
static ssm_status history_step(ssm_session *s, const task_step_stats *ts, double seconds)
{
    long step = s->opt.step;
    if (step % s->rc.log_every && step != s->rc.opt.total_steps) return SSM_OK;
    history_row r = history_row_train(s->data, step, ts, seconds, ssm_now_s() - s->hist_t0);
    return history_append(&s->hist, &r);
}

ssm_status ssm_session_validate_logged(ssm_session *s, int max_batches, atomic_int *cancel, double *loss,
                                       double *acc, task_dynamics *dy)
{
    memset(dy, 0, sizeof *dy);
    ssm_status st = ssm_session_validate(s, max_batches, cancel, loss, acc);
    if (st || !s->hist.f || (cancel && atomic_load(cancel))) return st;
    if (task_dynamics_measure(s->data, &s->model, TASK_DYNAMICS_QUICK, dy)) {
        task_dynamics_free(dy);
        memset(dy, 0, sizeof *dy);
    }
    history_row r = history_row_make(s->data, s->opt.step, 1, *loss, *acc, ssm_now_s() - s->hist_t0);
    r.dyn = dy->n_layer ? dy : NULL;
    return history_append(&s->hist, &r);
}

ssm_status ssm_session_history_load(const ssm_session *s, history *h)
{
    const char *dir = s->hist.f ? s->hist_dir : s->hist_from;
    if (!*dir) return ssm_fail(SSM_ERR_NOINPUT, "%s: no history", s->name);
    return history_load(h, dir);
}

/* ------------------------------------------------------------------------ */
/* Training, validation, saving                                             */

ssm_status ssm_session_can_train(const ssm_session *s)
{
    if (s->images) return SSM_OK;
    if (s->tk.kind == SSM_TOKENIZER_BPE)
        return ssm_fail(SSM_ERR_USAGE, "the model reads tokenizer.json tokens and the lab trains on bytes: "
                        "it is inspected, not trained");
    if (s->model.cfg.vocab_size < 256)
        return ssm_fail(SSM_ERR_USAGE, "a vocabulary of %d tokens, not the 256 bytes the lab trains on: "
                        "the model is inspected, not trained", s->model.cfg.vocab_size);
    return SSM_OK;
}

ssm_status ssm_session_step(ssm_session *s, double *loss, double *acc, float *lr)
{
    task_step_stats ts;
    ssm_status st = ssm_session_can_train(s);
    if (!st) st = training_ensure(s);
    if (!st) st = history_ensure(s);
    if (st) return st;
    double t0 = ssm_now_s();
    if ((st = task_train_step(s->data, &s->rc, &s->model, &s->opt, &ts))) return st;
    if ((st = history_step(s, &ts, ssm_now_s() - t0))) return st;
    if (s->inspecting) {   /* trained now: the run (rc.out) is shown, not the loaded checkpoint */
        s->inspecting = 0;
        name_update(s);
    }
    s->tokens_seen += ts.tokens;
    *loss = ts.loss;
    *acc = ts.acc;
    *lr = ts.lr;
    return SSM_OK;
}

ssm_status ssm_session_validate(ssm_session *s, int max_batches, atomic_int *cancel, double *loss,
                                double *acc)
{
    task_metrics v;
    ssm_status st = task_validate(s->data, &s->model, max_batches, cancel, &v);
    if (st) return st;
    *loss = v.loss;
    *acc = s->images ? v.acc : NAN;
    return SSM_OK;
}

/* Save into dir, which becomes the run's directory (its run configuration
 * says out = dir); refused while the weights, or the loss they give on
 * the next step's batches, are not finite (task_check_saveable). */
static ssm_status save_into(ssm_session *s, const char *dir)
{
    ssm_status st = float32_ensure(s);
    if (!st) st = optimizer_ensure(s);   /* saved beside the weights */
    if (st) return st;
    st = s->data ? task_check_saveable(s->data, &s->rc, &s->model, s->opt.step, dir) : SSM_OK;
    if (st) return st;
    run_config rc = s->rc;
    snprintf(rc.out, sizeof rc.out, "%s", dir);
    char *cfg = run_config_string(&rc);
    if (!cfg) return ssm_fail(SSM_ERR_NOMEM, "save: out of memory");
    ssm_checkpoint_meta meta = {.step = s->opt.step, .seed = (uint64_t)s->rc.seed, .run_config = cfg};
    st = ssm_checkpoint_save(dir, &s->model, &s->opt, &meta);
    free(cfg);
    if (st) return st;
    memcpy(s->rc.out, rc.out, sizeof s->rc.out);
    s->saved_step = s->opt.step;
    s->out_written = 1;
    s->inspecting = 0;
    name_update(s);
    return s->hist.f || history_exists(s->hist_from) ? history_ensure(s) : SSM_OK;   /* the history goes along */
}

ssm_status ssm_session_save(ssm_session *s, const char *dir)
{
    char out[RUN_PATH_MAX];
    if (!dir || !*dir) {   /* the run's directory; a checkpoint that appeared there meanwhile stays */
        if (s->out_written || !ssm_run_dir_is_checkpoint(s->rc.out)) return save_into(s, s->rc.out);
        ssm_run_dir_unused(out, sizeof out, s->rc.out);
        return save_into(s, out);
    }
    if (ssm_run_dir_foreign(dir, s->rc.out, s->out_written))
        return ssm_fail(SSM_ERR_CANTCREAT, "%s holds a checkpoint that this session did not write: "
                        "not overwritten (type the path and confirm to replace it)", dir);
    return save_into(s, dir);
}

ssm_status ssm_session_overwrite(ssm_session *s, const char *dir)
{
    return save_into(s, dir && *dir ? dir : s->rc.out);
}

int ssm_session_dirty(const ssm_session *s)
{
    return s->opt.step > 0 && s->opt.step != s->saved_step;
}

/* ------------------------------------------------------------------------ */
/* Text and tokens                                                          */

int ssm_session_text_ok(const ssm_session *s)
{
    return !s->images && (s->tk.kind != SSM_TOKENIZER_NONE || s->model.cfg.vocab_size >= 256);
}

ssm_status ssm_session_tokenize(const ssm_session *s, const char *text, int **ids, int *n)
{
    size_t len = strlen(text);
    *ids = NULL;
    *n = 0;
    if (s->tk.kind != SSM_TOKENIZER_NONE) return ssm_tokenizer_encode(&s->tk, text, len, ids, n);
    if (!ssm_session_text_ok(s))
        return ssm_fail(SSM_ERR_USAGE, "%s has no tokenizer.json and a vocabulary of %d tokens: text "
                        "(bytes 0..255) does not fit; give token ids", s->loaded[0] ? s->loaded : "the model",
                        s->model.cfg.vocab_size);
    if (!(*ids = malloc(sizeof(int) * (len ? len : 1)))) return ssm_fail(SSM_ERR_NOMEM, "tokens: out of memory");
    for (size_t i = 0; i < len; i++) (*ids)[i] = (unsigned char)text[i];
    *n = (int)len;
    return SSM_OK;
}

int ssm_session_token_label(const ssm_session *s, int id, char *buf, size_t n)
{
    size_t len = 0;
    const char *b = s->tk.kind != SSM_TOKENIZER_NONE ? ssm_tokenizer_token_bytes(&s->tk, id, &len) : NULL;
    if (b && len < n) {
        memcpy(buf, b, len);
        buf[len] = 0;
        return (int)len;
    }
    if (!b && s->tk.kind == SSM_TOKENIZER_NONE && s->model.cfg.vocab_size >= 256 && id >= 0 && id < 256 && n > 1) {
        buf[0] = (char)id;
        buf[1] = 0;
        return 1;
    }
    int k = snprintf(buf, n, "%d", id);
    return k < (int)n ? k : (int)n - 1;
}

/* ------------------------------------------------------------------------ */
/* Test images                                                              */

const char *ssm_session_class_name(const ssm_session *s, int k)
{
    static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    static const char *const cifar[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                          "dog", "frog", "horse", "ship", "truck"};
    if (!s->images || k < 0 || k >= 10) return NULL;
    if (s->rc.dataset == RUN_DATA_FASHION) return fashion[k];
    if (s->rc.dataset == RUN_DATA_CIFAR10) return cifar[k];
    return NULL;
}

ssm_status ssm_session_image_pixels(const ssm_session *s, long index, unsigned char *gray, int max,
                                    int *rows, int *cols)
{
    if (!s->images) return ssm_fail(SSM_ERR_USAGE, "a language model has no images");
    const ssm_images *im = &s->data->test;
    if (index < 0 || index >= im->n || im->rows * im->cols > max)
        return ssm_fail(SSM_ERR_USAGE, "image %ld of %s: no such image, or more than %d pixels", index, im->path, max);
    int C = im->channels, P = im->rows * im->cols;
    const uint8_t *px = im->pixels + (size_t)index * P * C;   /* (rows, cols, C) */
    for (int i = 0; i < P; i++) {
        int sum = 0;
        for (int c = 0; c < C; c++) sum += px[(size_t)i * C + c];
        gray[i] = (unsigned char)(sum / C);
    }
    *rows = im->rows;
    *cols = im->cols;
    return SSM_OK;
}

int ssm_session_image_count(const ssm_session *s)
{
    return s->images ? s->data->test.n : 0;
}

void ssm_session_image_shape(const ssm_session *s, int *L, int *d_input, int *grid_cols)
{
    const ssm_image_seq *q = &s->data->seq;
    *L = s->images ? q->L : 0;
    *d_input = s->images ? q->d_input : 0;
    *grid_cols = s->images ? q->cols / (q->patch > 0 ? q->patch : 1) : 0;
}

ssm_status ssm_session_image(const ssm_session *s, long index, float *inputs, int *label)
{
    const ssm_images *im = &s->data->test;
    if (!s->images) return ssm_fail(SSM_ERR_USAGE, "a language model has no images");
    if (index < 0 || index >= im->n)
        return ssm_fail(SSM_ERR_USAGE, "image %ld: %s has %d test images (0..%d)", index, im->path, im->n, im->n - 1);
    ssm_images_to_seq(im, &s->data->seq, (size_t)index, inputs);
    *label = im->labels[index];
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Probe and hidden attention                                               */

/* The probe model for s->model: on its weights while it does not train (no
 * gradients: inspecting, bf16 always), so they are held once; a copy,
 * taken at each probe, once it trains (the probe's activations and the
 * weights its measurements read must be those of its forward, and steps
 * move the model's).  Built again when the model is replaced or starts
 * training (probe_drop). */
static ssm_status probe_build(ssm_session *s)
{
    int share = !s->model.grads_memory;
    ssm_status st = share ? ssm_model_share_weights(&s->probe, &s->model)
                          : ssm_model_build_weights(&s->probe, &s->model.cfg, s->model.weights);
    /* the forward keeps every layer's activations for the measurements'
     * backward, the input-only one (no parameter gradients; either
     * architecture, either weight format) */
    if (!st) st = ssm_model_keep_acts(&s->probe);
    if (!st) st = ssm_model_set_probe(&s->probe, s->iv);
    if (st) ssm_model_free(&s->probe);
    return st;
}

ssm_status ssm_session_probe(ssm_session *s, const int *tokens, const float *inputs, int T)
{
    ssm_status st;
    if (!s->probe.params_memory && (st = probe_build(s))) return st;
    if (!s->probe.shares_weights) {
        memcpy(s->probe.params_memory, s->model.params_memory, sizeof(float) * s->model.num_params);
        if (s->model.num_bf16)
            memcpy(s->probe.wbf_memory, s->model.wbf_memory, sizeof(uint16_t) * s->model.num_bf16);
    }
    s->probe_batch = (ssm_batch){.B = 1, .L = T, .tokens = tokens, .inputs = inputs};
    if ((st = ssm_model_forward(&s->probe, &s->probe_batch))) return st;
    s->probe_T = T;
    return SSM_OK;
}

ssm_status ssm_session_intervene(ssm_session *s, const ssm_probe *iv)
{
    ssm_status st = iv ? ssm_model_probe_check(&s->model, iv, 1) : SSM_OK;
    if (!st && s->probe.params_memory) st = ssm_model_set_probe(&s->probe, iv);
    if (!st) s->iv = iv;
    return st;
}

ssm_status ssm_session_look(ssm_session *s, const ssm_probe *look)
{
    if (!s->probe.acts_memory || s->probe_T <= 0)
        return ssm_fail(SSM_ERR_SOFTWARE, "the states need a probe forward first");
    ssm_status st = ssm_model_forward_hooked(&s->probe, &s->probe_batch, look);   /* with s->iv */
    ssm_status back = ssm_model_forward(&s->probe, &s->probe_batch);   /* the probe's activations back */
    return st ? st : back;
}

ssm_status ssm_session_lens(const ssm_model *m, int t, ssm_lens_stat *out)
{
    const ssm_config *c = &m->cfg;
    int rows = c->n_layer + 1, D = c->d_model, V = c->padded_vocab;
    if (c->n_classes) return ssm_fail(SSM_ERR_USAGE, "the logit lens needs a language model, not a classifier");
    if (!m->acts_memory || m->act_B != 1 || t < 0 || t >= m->act_L)
        return ssm_fail(SSM_ERR_USAGE, "the lens needs a batch-1 probe forward and a token in it (got %d)", t);
    float *x = malloc(sizeof(float) * ((size_t)rows * D + (size_t)rows * V));   /* (rows, D), then logits (rows, V) */
    if (!x) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the logit lens");
    float *logits = x + (size_t)rows * D;
    for (int l = 0; l < rows; l++)   /* x_l[t]: the stream is (n_layer+1, 1, act_L, D) */
        memcpy(x + (size_t)l * D, m->acts.resid + ((size_t)l * m->act_L + t) * D, sizeof(float) * D);
    ssm_status st = ssm_model_head_apply(m, x, rows, logits);
    for (int l = 0; !st && l < rows; l++)
        ssm_lens_row(logits + (size_t)l * V, m->acts.logits + (size_t)t * V, c->vocab_size, &out[l]);
    free(x);
    return st;
}

/* The lab does not show a reordering layer: its scan runs over the sorted
 * positions, and the panel labels them with the input's tokens. */
static ssm_status attn_check(const ssm_model *m, int l)
{
    if (!m->acts_memory || m->act_B != 1 || !ssm_model_keeps_acts(m))
        return ssm_fail(SSM_ERR_USAGE, "hidden attention needs a batch-1 forward that kept every layer");
    if (ssm_reorder_slot(&m->cfg, l) >= 0)
        return ssm_fail(SSM_ERR_CONFIG, "hidden attention of a layer that reorders its SSM input is not supported");
    return SSM_OK;
}

ssm_status ssm_session_hidden_attention(const ssm_model *m, int l, int channel,
                                        atomic_int *cancel, float *out)
{
    ssm_status st = attn_check(m, l);
    if (st) return st;
    return ssm_recency_attention(m, l, 0, channel, cancel, out);
}

/* ------------------------------------------------------------------------ */
/* Influence                                                                */

ssm_status ssm_session_influence(ssm_model *m, int t, int probes, uint64_t seed, atomic_int *cancel,
                                 float *I, long *passes)
{
    *passes = 0;
    if (!ssm_model_keeps_acts(m) || !m->last || m->act_B != 1)
        return ssm_fail(SSM_ERR_USAGE, "influence needs a batch-1 forward that kept every layer");
    if (probes < 0) return ssm_fail(SSM_ERR_USAGE, "influence: probes %d < 0", probes);
    ssm_influence inf;
    ssm_status st = ssm_recency_influence_kept(m, &t, 1, probes, seed, cancel, &inf);
    if (st) return st;
    memcpy(I, inf.I, sizeof(float) * inf.L);
    *passes = inf.passes;
    ssm_influence_free(&inf);
    return SSM_OK;
}

ssm_status ssm_session_flow(ssm_session *s, int l, atomic_int *cancel, ssm_flow *out)
{
    if (!s->probe.acts_memory || s->probe_T <= 0 || s->probe.act_B != 1)
        return ssm_fail(SSM_ERR_USAGE, "the flow needs a batch-1 probe forward");
    size_t n = (size_t)s->probe_T * s->probe.cfg.d_model;
    float *x0 = malloc(sizeof(float) * n);   /* (T, D) the embedded tokens, row 0 of the stream */
    if (!x0) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the flow's tokens");
    memcpy(x0, s->probe.acts.resid, sizeof(float) * n);
    ssm_status st = ssm_flow_run(&s->probe, l, SSM_FLOW_MIXER, x0, s->probe_T, (float)SSM_FLOW_STEP_DEFAULT,
                                 SSM_FLOW_STEPS_DEFAULT, cancel, out);
    free(x0);
    ssm_status again = ssm_model_forward(&s->probe, &s->probe_batch);   /* the probe's activations back */
    if (!st && again) ssm_flow_free(out);
    return st ? st : again;
}

/* ------------------------------------------------------------------------ */
/* What each architecture has                                               */

int ssm_session_attn_units(const ssm_model *m, const char **unit)
{
    int m2 = m->cfg.arch == SSM_ARCH_MAMBA2;
    if (unit) *unit = m2 ? "head" : "channel";
    return m2 ? m->cfg.n_heads : m->cfg.d_inner;
}
