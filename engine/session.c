/* session.c — a training session for the TUI's engine thread: data, model,
 * optimizer, single steps, cancellable validation, checkpoints, and a probe
 * copy of the model for measurements on one inspected text, including the
 * hidden attention of SPEC §3. */
#include "session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

/* ------------------------------------------------------------------------ */
/* Opening and closing                                                      */

static ssm_status data_load(ssm_session *s)
{
    ssm_status st = ssm_text_load(&s->text, s->rc.data, s->rc.val_fraction);
    if (st) return st;
    double bits;
    if (ssm_text_unigram(&s->text, &s->unigram, &bits)) s->unigram = NAN;
    if (s->text.n_train < (size_t)s->rc.seq_len + 1)
        return ssm_fail(SSM_ERR_DATA, "%s: %zu training bytes, fewer than seq_len + 1 = %d",
                        s->rc.data, s->text.n_train, s->rc.seq_len + 1);
    return SSM_OK;
}

/* Gradients, optimizer and the (B, L) batch for s->model. */
static ssm_status training_setup(ssm_session *s)
{
    ssm_status st;
    if ((st = ssm_model_alloc_grads(&s->model))) return st;
    if ((st = ssm_adamw_build(&s->opt, &s->model, &s->rc.opt))) return st;
    return ssm_text_build_block(&s->blk, s->rc.batch_size, s->rc.seq_len);
}

static void name_set(ssm_session *s, const char *name)
{
    snprintf(s->name, sizeof s->name, "%s", name && *name ? name : "defaults");
}

ssm_status ssm_session_open(ssm_session *s, const run_config *rc, const char *name)
{
    ssm_status st;
    memset(s, 0, sizeof *s);
    s->rc = *rc;
    s->saved_step = -1;
    name_set(s, name);
    if ((st = run_config_check(&s->rc))) return st;
    if ((st = ssm_config_finalize(&s->rc.model))) return st;
    if ((st = data_load(s))) goto fail;
    if ((st = ssm_model_build(&s->model, &s->rc.model))) goto fail;
    ssm_model_init(&s->model, (uint64_t)s->rc.seed);
    if ((st = training_setup(s))) goto fail;
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

static const char *path_base(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *b = path + n;
    while (b > path && b[-1] != '/') b--;
    return b;
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
    snprintf(s->rc.out, sizeof s->rc.out, "%s", dir);
    if (s->model.cfg.n_classes || s->model.cfg.input_kind != SSM_INPUT_TOKENS)
        return ssm_fail(SSM_ERR_CONFIG, "%s: a classifier or continuous-input model; the TUI "
                        "trains and inspects token language models only", dir);
    return run_config_check(&s->rc);
}

ssm_status ssm_session_open_checkpoint(ssm_session *s, const char *dir, const run_config *base,
                                       char *const *overrides, int n)
{
    ssm_status st;
    ssm_checkpoint_meta meta = {0};
    memset(s, 0, sizeof *s);
    char name[64];
    snprintf(name, sizeof name, "%.63s", path_base(dir));
    name_set(s, name);
    if ((st = ssm_checkpoint_load(dir, &s->model, &meta))) return st;
    if ((st = checkpoint_config(s, dir, base, &meta, overrides, n))) goto fail;
    if ((st = data_load(s))) goto fail;
    if ((st = training_setup(s))) goto fail;
    if (ssm_checkpoint_load_optimizer(dir, &s->model, &s->opt)) s->opt.step = meta.step;
    s->opt.cfg = s->rc.opt;
    s->saved_step = s->opt.step;
    ssm_checkpoint_meta_free(&meta);
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
    memset(&n.blk, 0, sizeof n.blk);
    memset(&n.probe, 0, sizeof n.probe);
    if ((st = run_config_check(&n.rc))) return st;
    if ((st = ssm_config_finalize(&n.rc.model))) return st;
    if ((st = ssm_model_build(&n.model, &n.rc.model))) return st;
    ssm_model_init(&n.model, (uint64_t)n.rc.seed);
    if ((st = training_setup(&n))) {
        ssm_text_free_block(&n.blk);
        ssm_adamw_free(&n.opt);
        ssm_model_free(&n.model);
        return st;
    }
    ssm_text_free_block(&s->blk);
    ssm_adamw_free(&s->opt);
    ssm_model_free(&s->model);
    ssm_model_free(&s->probe);
    n.tokens_seen = 0;
    n.saved_step = -1;
    n.probe_T = 0;
    *s = n;
    return SSM_OK;
}

void ssm_session_free(ssm_session *s)
{
    ssm_model_free(&s->probe);
    ssm_text_free_block(&s->blk);
    ssm_adamw_free(&s->opt);
    ssm_model_free(&s->model);
    ssm_text_free(&s->text);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------ */
/* Training, validation, saving                                             */

ssm_status ssm_session_step(ssm_session *s, double *loss, float *lr)
{
    ssm_status st;
    int accum = s->rc.grad_accum;
    *lr = ssm_adamw_lr(&s->opt.cfg, s->opt.step);
    ssm_model_zero_grad(&s->model);
    *loss = 0.0;
    for (int k = 0; k < accum; k++) {
        if ((st = ssm_text_batch(&s->text, (uint64_t)s->rc.seed, (uint64_t)s->opt.step, k,
                                 s->blk.B, s->blk.L, s->blk.tokens, s->blk.targets)))
            return st;
        if ((st = ssm_model_forward(&s->model, &s->blk.batch))) return st;
        if ((st = ssm_model_backward(&s->model, 1.0f / accum))) return st;
        *loss += s->model.loss / accum;
    }
    if (!isfinite(*loss)) return ssm_fail(SSM_ERR_DATA, "loss became %g at step %ld", *loss, s->opt.step);
    ssm_adamw_update(&s->opt, &s->model);
    s->tokens_seen += (long)accum * s->blk.B * s->blk.L;
    return SSM_OK;
}

ssm_status ssm_session_validate(ssm_session *s, int max_batches, atomic_int *cancel, double *loss)
{
    ssm_text_val_iter it;
    ssm_text_val_begin(&it, &s->text, s->rc.seq_len);
    double total = 0.0;
    long count = 0;
    for (int b = 0; !max_batches || b < max_batches; b++) {
        if (cancel && atomic_load(cancel)) return ssm_fail(SSM_ERR_INTERRUPTED, "validation cancelled");
        if (!ssm_text_val_next(&it, s->blk.B, s->blk.tokens, s->blk.targets)) break;
        ssm_status st = ssm_model_forward(&s->model, &s->blk.batch);
        if (st) return st;
        total += (double)s->model.loss * s->model.n_targets;
        count += s->model.n_targets;
    }
    if (!count) return ssm_fail(SSM_ERR_DATA, "%s: validation split is shorter than seq_len + 1", s->rc.data);
    *loss = total / count;
    return SSM_OK;
}

ssm_status ssm_session_save(ssm_session *s, const char *dir)
{
    char *cfg = run_config_string(&s->rc);
    ssm_checkpoint_meta meta = {.step = s->opt.step, .seed = (uint64_t)s->rc.seed, .run_config = cfg};
    ssm_status st = ssm_checkpoint_save(dir, &s->model, &s->opt, &meta);
    free(cfg);
    if (!st) s->saved_step = s->opt.step;
    return st;
}

int ssm_session_dirty(const ssm_session *s)
{
    return s->opt.step > 0 && s->opt.step != s->saved_step;
}

/* ------------------------------------------------------------------------ */
/* Probe and hidden attention                                               */

ssm_status ssm_session_probe(ssm_session *s, const int *tokens, int T)
{
    ssm_status st;
    if (!s->probe.params_memory || s->probe.num_params != s->model.num_params ||
        memcmp(&s->probe.cfg, &s->model.cfg, sizeof s->probe.cfg)) {
        ssm_model_free(&s->probe);
        if ((st = ssm_model_build(&s->probe, &s->model.cfg))) return st;
        /* with gradients allocated the forward keeps every layer's activations */
        if ((st = ssm_model_alloc_grads(&s->probe))) return st;
    }
    memcpy(s->probe.params_memory, s->model.params_memory, sizeof(float) * s->model.num_params);
    ssm_batch b = {.B = 1, .L = T, .tokens = tokens};
    if ((st = ssm_model_forward(&s->probe, &b))) return st;
    s->probe_T = T;
    return SSM_OK;
}

/* A[e, :] over the Ns state channels, in the order [one-pinned A = 0,
 * learned -exp(A_log), zero-pinned A = -100] (SPEC §3, as the model). */
static void channel_A(const ssm_config *c, const float *A_log, int e, float *A)
{
    int N = c->d_state, n1 = c->n_one;
    for (int j = 0; j < c->state_dim; j++) {
        int n = j - n1;
        A[j] = n < 0 ? 0.0f : n >= N ? -100.0f : -expf(A_log[(size_t)e * N + n]);
    }
}

typedef struct {
    int T, E, Ns, ld;            /* ld = R + 2 Ns, the row of xdbl */
    const float *delta;          /* (T, E) */
    const float *Bm, *Cm;        /* rows of xdbl: B_t at Bm + t*ld, C_t at Cm + t*ld */
} attn_view;

/* alpha_e for one channel into a (T, T) buffer; dA is (T, Ns) scratch. */
static void channel_alpha(const attn_view *v, int e, const float *A, float *dA, float *alpha)
{
    int T = v->T, Ns = v->Ns;
    for (int t = 0; t < T; t++)
        for (int n = 0; n < Ns; n++) dA[t * Ns + n] = expf(v->delta[(size_t)t * v->E + e] * A[n]);
#pragma omp parallel for schedule(dynamic, 4)
    for (int s = 0; s < T; s++) {
        float w[512];
        float d = v->delta[(size_t)s * v->E + e];
        for (int n = 0; n < Ns; n++) w[n] = d * v->Bm[(size_t)s * v->ld + n];
        for (int t = s; t < T; t++) {
            if (t > s)
                for (int n = 0; n < Ns; n++) w[n] *= dA[t * Ns + n];
            float a = 0.0f;
            for (int n = 0; n < Ns; n++) a += v->Cm[(size_t)t * v->ld + n] * w[n];
            alpha[(size_t)t * T + s] = a;
        }
    }
}

static ssm_status attn_check(const ssm_model *m, int l, int channel)
{
    const ssm_config *c = &m->cfg;
    if (!m->acts_memory || m->act_B != 1 || !m->grads_memory)
        return ssm_fail(SSM_ERR_USAGE, "hidden attention needs a batch-1 forward of a model with gradients");
    if (l < 0 || l >= c->n_layer || channel >= c->d_inner)
        return ssm_fail(SSM_ERR_USAGE, "hidden attention: layer %d or channel %d out of range", l, channel);
    if (c->state_dim > 512) return ssm_fail(SSM_ERR_CONFIG, "hidden attention: state wider than 512");
    if (c->reorder != SSM_REORDER_OFF && l == 0)
        return ssm_fail(SSM_ERR_CONFIG, "hidden attention of a reordered first layer is not supported");
    return SSM_OK;
}

ssm_status ssm_session_hidden_attention(const ssm_model *m, int l, int channel,
                                        atomic_int *cancel, float *out)
{
    ssm_status st = attn_check(m, l, channel);
    if (st) return st;
    const ssm_config *c = &m->cfg;
    int T = m->act_L, E = c->d_inner, Ns = c->state_dim, R = c->dt_rank;
    size_t BT = (size_t)T;
    const float *xdbl = m->acts.xdbl + (size_t)l * BT * (R + 2 * Ns);
    attn_view v = {T, E, Ns, R + 2 * Ns, m->acts.delta + (size_t)l * BT * E, xdbl + R, xdbl + R + Ns};
    const float *A_log = m->params.A_log + (size_t)l * E * c->d_state;
    float *A = malloc(sizeof(float) * Ns), *dA = malloc(sizeof(float) * T * Ns);
    float *alpha = channel >= 0 ? out : malloc(sizeof(float) * T * T);
    if (!A || !dA || !alpha) st = ssm_fail(SSM_ERR_NOMEM, "hidden attention: out of memory");
    if (!st) memset(out, 0, sizeof(float) * T * T);
    int e0 = channel >= 0 ? channel : 0, e1 = channel >= 0 ? channel + 1 : E;
    for (int e = e0; !st && e < e1; e++) {
        if (cancel && atomic_load(cancel)) st = ssm_fail(SSM_ERR_INTERRUPTED, "hidden attention cancelled");
        if (st) break;
        channel_A(c, A_log, e, A);
        channel_alpha(&v, e, A, dA, alpha);
        if (channel < 0)
            for (int t = 0; t < T; t++)
                for (int s = 0; s <= t; s++) out[(size_t)t * T + s] += fabsf(alpha[(size_t)t * T + s]) / E;
    }
    if (channel < 0) free(alpha);
    free(A);
    free(dA);
    return st;
}
