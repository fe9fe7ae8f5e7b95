/* engine_thread.c — the TUI's engine thread: a command queue (mutex +
 * condition variable), a training loop that runs while started, throttled
 * and cancellable measurements on the inspected text or test image (only
 * the parts a selection change needs are redone; with the user's
 * ablations and pins attached to the probe model, never to training), and
 * snapshots published under the mutex with a byte on the UI's self-pipe as
 * the wake-up. */
#include "lab/engine_thread.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/dynamics.h"
#include "engine/recency.h"
#include "engine/states.h"

#define QUEUE_CAP 64
#define MEASURE_EVERY_S 0.25   /* measurements while training, at most this often, */
#define MEASURE_SHARE 0.25     /* and taking at most about this share of the time */
#define PUBLISH_EVERY_S 0.03   /* snapshots while training, at most this often */
#define INFL_SEED 1            /* the influence probes' seed: the same probes every time */
#define INFL_EVERY_S 2.0       /* influence while training, at most this often */

/* What a measurement redoes (measure_pending bits). */
enum { M_ALL = 1, M_ATTN = 2, M_INFL = 4, M_FLOW = 8, M_LENS = 16 };

static const char default_text[] =
    "The quick brown fox jumps over the lazy dog. A stitch in time saves nine.";

struct ssm_engine {
    pthread_t thread;
    pthread_mutex_t mu;           /* guards queue, sent, cancel_at, shared */
    pthread_cond_t cv;            /* signalled when a command is queued */
    ssm_cmd queue[QUEUE_CAP];
    int qhead, qlen;
    unsigned long sent, popped, cancel_at;
    ssm_snapshot *shared;         /* the published snapshot */
    atomic_int cancel;            /* the user cancels: training pauses, a computation stops */
    atomic_int stop_measure;      /* the running measurement stops: cancelled or superseded */
    int wake_fd;
    /* engine-thread state */
    ssm_snapshot *work;           /* snapshot being built */
    ssm_session s;
    run_config base;
    int weights;                  /* the load command's weight format (ssm_engine_options) */
    int running, measure_pending;     /* M_* bits */
    int tokens[SSM_SNAP_MAX_T];       /* the inspected text's tokens */
    float *inputs;                    /* (L, d_input) the inspected image */
    float *alpha;                     /* (T, T) hidden attention before quantizing */
    int probe_L;                      /* tokens of the inspected input (may exceed SSM_SNAP_MAX_T) */
    int said_too_long;                /* the too-long message was published */
    int train_checked;                /* work->can_train and train_note are the session's */
    double t_measure, t_publish, t_infl, tps;
    double measure_s;                 /* how long the last full measurement took */
    float *horizon;                   /* (d_inner) one layer's memory horizons */
    /* interventions, owned here and attached to the session's probe model */
    int ablated[SSM_IV_MAX][2], pinned[SSM_IV_MAX][2];   /* channels (layer, e) */
    int n_ablated, n_pinned;
    ssm_ablation ablate[SSM_IV_MAX];  /* (n_ablated) every state of each channel */
    ssm_pin *pins;                    /* (n_pinned * state_dim) A = 0 */
    ssm_probe iv;
};


/* ------------------------------------------------------------------------ */
/* Publishing                                                               */

static void msg(ssm_engine *e, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msg(ssm_engine *e, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->work->msg, sizeof e->work->msg, fmt, ap);
    va_end(ap);
    e->work->msg_error = error;
    e->work->msg_seq++;
}

/* For each setting (SSM_RUN_SCENARIO, _POLARIZE, _REORDER), why a model
 * with its next value cannot be built, as the engine's configuration
 * check says (ssm_config_finalize; "" when it can). */
static void settings_check(const ssm_config *mc, char note[SSM_RUN_NSETTINGS][128])
{
    for (int k = 0; k < SSM_RUN_NSETTINGS; k++) {
        ssm_config c = *mc;
        if (k == SSM_RUN_SCENARIO) c.scenario = (c.scenario + 1) % SSM_SCENARIO_COUNT;
        if (k == SSM_RUN_POLARIZE) c.polarize = (c.polarize + 1) % SSM_POLARIZE_COUNT;
        if (k == SSM_RUN_REORDER) c.reorder = (c.reorder + 1) % SSM_REORDER_COUNT;
        snprintf(note[k], 128, "%s", ssm_config_finalize(&c) ? ssm_last_error() : "");
    }
}

static void info_fill(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    const ssm_session *s = &e->s;
    const ssm_config *c = &s->model.cfg;
    snprintf(w->name, sizeof w->name, "%s", s->name);
    snprintf(w->out, sizeof w->out, "%s", s->rc.out);
    snprintf(w->loaded, sizeof w->loaded, "%s", s->loaded);
    w->inspecting = s->inspecting;
    snprintf(w->base_name, sizeof w->base_name, "%s", s->base_name);
    snprintf(w->base_parent, sizeof w->base_parent, "%s", s->base_parent);
    memcpy(w->base_set, s->base_set, sizeof w->base_set);
    w->out_written = s->out_written;
    w->text_ok = ssm_session_text_ok(s);
    w->tokenizer = s->tk.kind == SSM_TOKENIZER_BPE;
    w->vocab_size = c->vocab_size;
    if (!e->train_checked) {   /* once per session: the check leaves a message */
        w->can_train = !ssm_session_can_train(s);
        snprintf(w->train_note, sizeof w->train_note, "%s", w->can_train ? "" : ssm_last_error());
        settings_check(c, w->setting_note);
        const char *unit;
        w->attn_units = ssm_session_attn_units(&s->model, &unit);
        snprintf(w->attn_unit, sizeof w->attn_unit, "%s", unit);
        e->train_checked = 1;
    }
    w->scenario = c->scenario;
    w->polarize = c->polarize;
    w->reorder = c->reorder;
    w->n_layer = c->n_layer;
    w->d_model = c->d_model;
    w->d_inner = c->d_inner;
    w->d_state = c->d_state;
    w->arch = c->arch;
    w->n_heads = c->arch == SSM_ARCH_MAMBA2 ? c->n_heads : 0;
    w->n_groups = c->arch == SSM_ARCH_MAMBA2 ? c->n_groups : 0;
    w->n_classes = c->n_classes;
    w->threads = ssm_threads_get();
    w->num_params = s->model.num_params + s->model.num_bf16;   /* float32 and bf16 weights */
    w->step = s->opt.step;
    w->seed = s->rc.seed;
    w->total_steps = s->rc.opt.total_steps;
    w->running = e->running;
    w->dirty = ssm_session_dirty(s);
    w->baseline = s->baseline;
    w->images = s->images;
    w->n_images = ssm_session_image_count(s);
    w->patch = s->rc.patch > 1 ? s->rc.patch : 1;
    w->tok_per_s = e->tps;
    w->ready = 1;
}

static void publish(ssm_engine *e)
{
    info_fill(e);
    pthread_mutex_lock(&e->mu);
    memcpy(e->shared, e->work, sizeof *e->shared);
    e->shared->seq++;
    e->work->seq = e->shared->seq;
    pthread_mutex_unlock(&e->mu);
    e->t_publish = ssm_now_s();
    ssize_t r = write(e->wake_fd, "s", 1);
    (void)r;   /* a full pipe already holds a wake-up */
}

static void busy(ssm_engine *e, const char *what)
{
    e->work->busy = what != NULL;
    snprintf(e->work->busy_what, sizeof e->work->busy_what, "%s", what ? what : "");
    if (what) publish(e);
}

static void history_reset(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    w->n_hist = w->n_val = w->n_dyn = 0;
    w->hist_file[0] = 0;
    w->loss = NAN;
    w->val_loss = NAN;
    w->acc = NAN;
    w->val_acc = NAN;
    w->val_step = -1;
    w->measured_step = -1;
    e->tps = 0;
}

/* Append (step, v[0..ncols)) to a history of cap points whose columns
 * are cols[c] (each with a row stride of cap), halving it when full. */
static void series_add(long *steps, float *cols, int ncols, int cap, int *n, long step, const float *v)
{
    if (*n == cap) {
        for (int i = 0; i < cap / 2; i++) {
            steps[i] = steps[2 * i + 1];
            for (int c = 0; c < ncols; c++) cols[(size_t)c * cap + i] = cols[(size_t)c * cap + 2 * i + 1];
        }
        *n = cap / 2;
    }
    steps[*n] = step;
    for (int c = 0; c < ncols; c++) cols[(size_t)c * cap + *n] = v[c];
    (*n)++;
}

static void history_add(long *steps, float *vals, int *n, long step, float v)
{
    series_add(steps, vals, 1, SSM_SNAP_HIST, n, step, &v);
}

/* The train.csv columns of SSM_DYN_*. */
static const char *const dyn_columns[SSM_DYN_NCOLS] = {"eig_pos", "eig_neg", "mean_slope", "mix_slope",
                                                       "half_life", "cos_last"};

static void dyn_add(ssm_snapshot *w, long step, const float v[SSM_DYN_NCOLS])
{
    series_add(w->dyn_step, &w->dyn[0][0], SSM_DYN_NCOLS, SSM_SNAP_DYN, &w->n_dyn, step, v);
}

/* A validation's dynamics as the history shows them (the half-life only
 * when the decay is exponential, as train.csv writes it). */
static void dyn_add_measured(ssm_snapshot *w, long step, const task_dynamics *dy)
{
    float v[SSM_DYN_NCOLS] = {(float)dy->pos, (float)dy->neg, dy->mean_slope, dy->mix_slope,
                              (float)task_dynamics_half_life(dy), (float)dy->cos_last};
    dyn_add(w, step, v);
}

/* Row r of h into the snapshot's histories: a training row's loss, a
 * validation row's loss and dynamics. */
static void history_row_show(ssm_snapshot *w, const history *h, int r, const int *col)
{
    long step = (long)history_value(h, r, col[0]);
    double loss = history_value(h, r, col[2]);
    if (!strcmp(history_cell(h, r, col[1]), "train")) {
        history_add(w->hist_step, w->hist_loss, &w->n_hist, step, (float)loss);
        w->loss = loss;
        w->acc = history_value(h, r, col[3]);
        return;
    }
    history_add(w->val_steps, w->val_hist, &w->n_val, step, (float)loss);
    w->val_loss = loss;
    w->val_step = step;
    w->val_acc = history_value(h, r, col[3]);
    float v[SSM_DYN_NCOLS];
    int any = 0;
    for (int c = 0; c < SSM_DYN_NCOLS; c++) any |= isfinite(v[c] = (float)history_value(h, r, col[4 + c]));
    if (any) dyn_add(w, step, v);
}

/* The history the session continues (a loaded checkpoint's train.csv),
 * up to the model's step, into the snapshot. */
static void history_show(ssm_engine *e)
{
    history h;
    ssm_status st = ssm_session_history_load(&e->s, &h);
    if (st) {
        if (st != SSM_ERR_NOINPUT) msg(e, 1, "%s", ssm_last_error());
        return;
    }
    int col[4 + SSM_DYN_NCOLS] = {history_column(&h, "step"), history_column(&h, "split"),
                                  history_column(&h, "loss"), history_column(&h, "acc")};
    for (int c = 0; c < SSM_DYN_NCOLS; c++) col[4 + c] = history_column(&h, dyn_columns[c]);
    for (int r = 0; r < h.n_rows; r++)
        if (history_value(&h, r, col[0]) <= (double)e->s.opt.step) history_row_show(e->work, &h, r, col);
    snprintf(e->work->hist_file, sizeof e->work->hist_file, "%s/%s", e->s.hist_from, HISTORY_FILE);
    history_free(&h);
}

/* ------------------------------------------------------------------------ */
/* Measurements                                                             */

/* Token norms (n_layer+1, T), slopes and verdict of the probe's forward.
 * Kept behind one function so the measurement can be swapped. */
static ssm_status measure_norms(const ssm_model *m, ssm_snapshot *w)
{
    ssm_norms n = {0};
    ssm_status st = ssm_dynamics_norms(m, &n);
    if (st) return st;
    int T = w->T, layers = m->cfg.n_layer + 1;
    if (layers > SSM_SNAP_MAX_LAYER + 1) layers = SSM_SNAP_MAX_LAYER + 1;
    for (int l = 0; l < layers; l++) memcpy(w->norms + (size_t)l * T, n.norms + (size_t)l * T, sizeof(float) * T);
    memcpy(w->slopes, n.slopes, sizeof(float) * T);
    w->mean_slope = n.mean_slope;
    w->r2 = n.r2;
    w->verdict = n.verdict;
    w->mix_slope = n.mix_mean_slope;
    w->mix_r2 = n.mix_r2;
    w->mix_verdict = n.mix_verdict;
    ssm_norms_free(&n);
    return SSM_OK;
}

static ssm_status measure_spectrum(const ssm_model *m, ssm_snapshot *w)
{
    ssm_spectrum sp = {0};
    w->spec_ok = 0;
    ssm_status st = ssm_dynamics_spectrum(m, &sp);
    if (st) return st;
    int N = sp.N < SSM_SNAP_MAX_N ? sp.N : SSM_SNAP_MAX_N, rows = sp.n_layer * sp.n_groups;
    if (rows > SSM_SNAP_SPEC_ROWS) rows = SSM_SNAP_SPEC_ROWS;
    for (int r = 0; r < rows; r++) {   /* row r: layer r / n_groups, group r % n_groups */
        w->n_pos[r] = sp.n_pos[r];
        w->n_neg[r] = sp.n_neg[r];
        w->n_cplx[r] = sp.n_complex[r];
        w->cls[r] = sp.cls[r];
        const double *re = sp.re + (size_t)r * sp.N, *im = sp.im + (size_t)r * sp.N;
        double rho = ssm_dynamics_radius(re, im, sp.N);
        for (int i = 0; i < N; i++) w->signs[r][i] = ssm_dynamics_sign(re[i], im[i], rho);
        w->signs[r][N] = 0;
    }
    w->spec_N = sp.N;
    w->spec_groups = sp.n_groups;
    w->spec_rows = rows;
    w->spec_ok = 1;
    ssm_spectrum_free(&sp);
    return SSM_OK;
}

static void measure_importance(const ssm_model *m, ssm_snapshot *w)
{
    memcpy(w->imp, m->acts.imp_s, sizeof(float) * w->T);
    ssm_dynamics_ranking(w->imp, w->T, w->order);
    w->imp_learned = m->params.imp_k != NULL;
    w->imp_ok = 1;
}

/* |alpha| of the selected layer and channel (Mamba-2: head), each row scaled to max 1
 * and quantized to 0..255 (the panel draws a ramp of a few colours). */
static ssm_status measure_attention(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    int T = w->T, nl = e->s.model.cfg.n_layer;
    if (w->attn_layer < 0) w->attn_layer = 0;
    if (w->attn_layer >= nl) w->attn_layer = nl - 1;
    if (w->attn_channel >= ssm_session_attn_units(&e->s.model, NULL)) w->attn_channel = -1;
    w->attn_ok = 0;
    w->attn_note[0] = 0;
    if (ssm_reorder_slot(&e->s.model.cfg, w->attn_layer) >= 0) {
        snprintf(w->attn_note, sizeof w->attn_note, "layer %d reorders the tokens: see another (j/k)",
                 w->attn_layer);
        return SSM_OK;
    }
    float *alpha = realloc(e->alpha, sizeof(float) * T * T);
    if (!alpha) return ssm_fail(SSM_ERR_NOMEM, "hidden attention: out of memory");
    e->alpha = alpha;
    ssm_status st = ssm_session_hidden_attention(&e->s.probe, w->attn_layer, w->attn_channel,
                                                 &e->stop_measure, alpha);
    if (st) {
        int cancelled = st == SSM_ERR_INTERRUPTED && atomic_load(&e->cancel);
        snprintf(w->attn_note, sizeof w->attn_note, "%s",
                 cancelled ? "cancelled: select a layer or channel to measure it again"
                           : st == SSM_ERR_INTERRUPTED ? "measuring..." : "failed");
        return st;
    }
    ssm_recency_row_normalize(alpha, T, alpha);
    for (size_t i = 0; i < (size_t)T * T; i++) w->attn[i] = (unsigned char)lrintf(255.0f * fabsf(alpha[i]));
    w->attn_ok = 1;
    return SSM_OK;
}

/* The exponential decay of I(t, s) over the distance t - s >= 1: the
 * fit ssmlab inspect reports, on the one target t. */
static void influence_fit(ssm_snapshot *w)
{
    int t = w->infl_token;
    ssm_influence one = {.L = w->T, .n_targets = 1, .n_seq = 1, .targets = &t, .I = w->infl};
    ssm_decay d;
    int ok = !ssm_recency_fit_decay(&one, SSM_DECAY_MIN_DIST, &d);
    w->infl_exponential = ok && task_decay_exponential(&d);
    w->infl_rate = ok ? d.rate : NAN;
    w->infl_half_life = ok ? d.half_life : NAN;
    w->infl_r2 = ok ? d.r2 : NAN;
    w->infl_fit_n = ok ? d.n_points : 0;
}

/* I(t, s) for the selected token t: exact for small d_model, else probes.
 * While training it is redone at most every INFL_EVERY_S unless the
 * selection asked for it (explicit). */
static ssm_status measure_influence(ssm_engine *e, int explicit)
{
    ssm_snapshot *w = e->work;
    int D = e->s.model.cfg.d_model, probes = D <= SSM_INFL_EXACT_MAX_D ? 0 : SSM_INFL_PROBES;
    if (w->infl_ok && e->running && !explicit && ssm_now_s() - e->t_infl < INFL_EVERY_S) return SSM_OK;   /* keep it */
    if (w->infl_token < 0 || w->infl_token >= w->T) w->infl_token = w->T - 1;
    w->infl_ok = 0;
    snprintf(w->infl_note, sizeof w->infl_note, "measuring influence...");
    ssm_status st = ssm_session_influence(&e->s.probe, w->infl_token, probes, INFL_SEED, &e->stop_measure,
                                          w->infl, &w->infl_passes);
    e->t_infl = ssm_now_s();
    if (st == SSM_ERR_INTERRUPTED && atomic_load(&e->cancel))
        snprintf(w->infl_note, sizeof w->infl_note, "influence cancelled: select a token to measure it again");
    if (st) return st;
    w->infl_probes = probes;
    influence_fit(w);
    w->infl_ok = 1;
    return SSM_OK;
}

/* The flow of the selected layer (w->attn_layer) from the probe's x_0:
 * a fixed number of steps, cancellable between them; the probe's forward
 * is kept. */
static ssm_status measure_flow(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    int l = w->attn_layer < 0 ? 0 : w->attn_layer >= e->s.model.cfg.n_layer ? e->s.model.cfg.n_layer - 1 : w->attn_layer;
    ssm_flow f;
    w->flow_ok = 0;
    ssm_status st = ssm_session_flow(&e->s, l, &e->stop_measure, &f);
    if (st) {
        int cancelled = st == SSM_ERR_INTERRUPTED && atomic_load(&e->cancel);
        snprintf(w->flow_note, sizeof w->flow_note, "%s",
                 cancelled ? "cancelled: select a layer to measure it again"
                           : st == SSM_ERR_INTERRUPTED ? "measuring..." : ssm_last_error());
        return st;
    }
    /* (T+1, L) with NaN after an early stop; T = SSM_SNAP_FLOW_T, L = w->T */
    memcpy(w->flow_norms, f.norms, sizeof(float) * (size_t)(f.T + 1) * f.L);
    w->flow_layer = l;
    w->flow_steps = f.steps;
    w->flow_h = f.h;
    w->flow_rate = f.mean_rate;
    w->flow_r2 = f.mean_r2;
    w->flow_verdict = f.verdict;
    w->flow_note[0] = 0;
    w->flow_ok = 1;
    ssm_flow_free(&f);
    return SSM_OK;
}

/* The class the model gives the inspected image. */
static int probe_prediction(const ssm_model *m)
{
    int C = m->cfg.n_classes, best = 0;
    for (int c = 1; c < C; c++)
        if (m->acts.logits[c] > m->acts.logits[best]) best = c;
    return best;
}

/* The probe's forward on the inspected input, then everything read off it. */
static ssm_status measure_probe(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    ssm_status st = ssm_session_probe(&e->s, e->s.images ? NULL : e->tokens, e->s.images ? e->inputs : NULL, w->T);
    if (!st) st = measure_norms(&e->s.probe, w);
    if (st) return st;
    measure_importance(&e->s.probe, w);
    if (e->s.images) {
        w->image_pred = probe_prediction(&e->s.probe);
        const char *name = ssm_session_class_name(&e->s, w->image_pred);
        snprintf(w->pred_name, sizeof w->pred_name, "%s", name ? name : "");
    }
    return measure_spectrum(&e->s.probe, w);
}

/* Token id's label into out: its bytes (cut at a UTF-8 character), or its id. */
static void label_copy(ssm_engine *e, int id, char out[SSM_SNAP_LABEL])
{
    char buf[256];
    int len = ssm_session_token_label(&e->s, id, buf, sizeof buf);
    if (len >= SSM_SNAP_LABEL) {
        len = SSM_SNAP_LABEL - 1;
        while (len > 0 && ((unsigned char)buf[len] & 0xc0) == 0x80) len--;   /* not inside a character */
    }
    memcpy(out, buf, (size_t)len);
    out[len] = 0;
}

/* The memory-horizon bins: below 1 token, powers of 4 up to 16k, infinite. */
int ssm_horizon_bin(float h)
{
    if (isinf(h)) return SSM_SNAP_HZ_BINS - 1;
    int k = 0;
    for (float edge = 1.0f; k < SSM_SNAP_HZ_BINS - 2 && h >= edge; edge *= 4.0f) k++;
    return k;
}

const char *ssm_horizon_bin_label(int k)
{
    static const char *const label[SSM_SNAP_HZ_BINS] = {"<1", "1", "4", "16", "64", "256", "1k", "4k", "16k", "inf"};
    return k >= 0 && k < SSM_SNAP_HZ_BINS ? label[k] : "?";
}

/* The look's hook, right after layer v->layer ran: its state norms over
 * the inspected positions and the histogram of its channels' memory
 * horizons, into the snapshot (the views are gone after the call). */
static void states_hook(void *ctx, const ssm_layer_view *v)
{
    ssm_engine *e = ctx;
    ssm_snapshot *w = e->work;
    if (v->layer >= SSM_SNAP_MAX_LAYER || !v->h) return;
    /* a Mamba-2 state (H, P, N) is Mamba-1's (E, N) layout; its horizon is
     * per head, from dt[h] and the scalar A_h */
    int U = v->H ? v->H : v->E, Na = v->H ? 1 : v->Ns;
    ssm_states_norm(v->h, w->T, v->E, v->Ns, w->st_norm + (size_t)v->layer * w->T);   /* sequence 0 */
    ssm_states_horizon(v->delta, w->T, U, U, v->A, Na, e->horizon);
    int *bins = w->hz_bins[v->layer];
    memset(bins, 0, sizeof w->hz_bins[0]);
    for (int c = 0; c < U; c++) bins[ssm_horizon_bin(e->horizon[c])]++;
}

/* ||h_t|| of every layer and the horizons, from a probed forward with the
 * interventions (ssm_session_look). */
static ssm_status measure_states(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    w->states_ok = 0;
    float *hz = realloc(e->horizon, sizeof(float) * e->s.model.cfg.d_inner);
    if (!hz) return ssm_fail(SSM_ERR_NOMEM, "states: out of memory");
    e->horizon = hz;
    ssm_probe look = {.want_states = 1, .on_layer = states_hook, .ctx = e};
    ssm_status st = ssm_session_look(&e->s, &look);
    snprintf(w->states_note, sizeof w->states_note, "%s", st ? ssm_last_error() : "");
    w->states_ok = !st;
    return st;
}

/* The logit lens at the selected token (the influence's), every residual row. */
static ssm_status measure_lens(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    ssm_lens_stat ls[SSM_SNAP_MAX_LAYER + 1];
    int t = w->infl_token < 0 || w->infl_token >= w->T ? w->T - 1 : w->infl_token;
    w->lens_ok = 0;
    if (e->s.images || e->s.model.cfg.n_layer > SSM_SNAP_MAX_LAYER) {
        snprintf(w->lens_note, sizeof w->lens_note, "%s", e->s.images
                 ? "the logit lens needs a language model: this is an image classifier"
                 : "the lens shows at most 64 layers");
        return SSM_OK;
    }
    ssm_status st = ssm_session_lens(&e->s.probe, t, ls);
    snprintf(w->lens_note, sizeof w->lens_note, "%s", st ? ssm_last_error() : "");
    if (st) return st;
    for (int l = 0; l <= e->s.model.cfg.n_layer; l++) {
        w->lens_top[l] = ls[l].top;
        label_copy(e, ls[l].top, w->lens_label[l]);
        w->lens_prob[l] = (float)ls[l].prob;
        w->lens_entropy[l] = (float)ls[l].entropy;
        w->lens_kl[l] = (float)ls[l].kl;
    }
    w->lens_token = t;
    w->lens_ok = 1;
    return SSM_OK;
}

/* Inputs longer than the snapshot holds are not measured (said once). */
static int too_long(ssm_engine *e)
{
    if (e->probe_L <= SSM_SNAP_MAX_T) return 0;
    if (!e->said_too_long)
        msg(e, 1, "images of %d tokens: the lab measures at most %d (train with a larger patch)", e->probe_L,
            SSM_SNAP_MAX_T);
    e->said_too_long = 1;
    e->work->measured_step = -1;
    return 1;
}

static void measure(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    int asked = e->measure_pending, what = asked;
    e->measure_pending = 0;
    e->t_measure = ssm_now_s();
    w->measured_cmds = w->cmds_done;
    if (too_long(e)) return;
    atomic_store(&e->stop_measure, atomic_load(&e->cancel));   /* a cancel stands; a newer selection stops it */
    if (!e->s.probe.acts_memory || e->s.probe_T != w->T) what |= M_ALL;   /* no probe forward to reuse */
    if (what & M_ALL) what |= M_ATTN | M_INFL | M_FLOW | M_LENS;
    if (!e->running) busy(e, "measuring");
    ssm_status st = SSM_OK;
    if (what & M_ALL) st = measure_probe(e);
    if (!st && (what & M_ALL)) st = measure_states(e);
    if (!st && (what & M_LENS)) st = measure_lens(e);
    if (!st && (what & M_ATTN)) st = measure_attention(e);
    if (!st && (what & M_INFL)) st = measure_influence(e, asked & M_INFL);
    if (!st && (what & M_FLOW)) st = measure_flow(e);
    else if ((what & M_FLOW) && st == SSM_ERR_INTERRUPTED && atomic_load(&e->cancel))
        snprintf(w->flow_note, sizeof w->flow_note, "cancelled: select a layer to measure it again");
    if (!e->running) busy(e, NULL);
    if (what & M_ALL) e->measure_s = ssm_now_s() - e->t_measure;
    w->measured_step = e->s.opt.step;
    if (st == SSM_ERR_INTERRUPTED && !atomic_load(&e->cancel)) e->measure_pending |= what;   /* superseded: again */
    else if (st) msg(e, st != SSM_ERR_INTERRUPTED, "%s", ssm_last_error());
}

/* A new input or model: the flow, attention and influence shown are void. */
static void measures_void(ssm_engine *e)
{
    e->work->attn_ok = e->work->infl_ok = e->work->flow_ok = e->work->states_ok = e->work->lens_ok = 0;
    snprintf(e->work->states_note, sizeof e->work->states_note, "measuring the states...");
    snprintf(e->work->lens_note, sizeof e->work->lens_note, "measuring the lens...");
    snprintf(e->work->flow_note, sizeof e->work->flow_note, "measuring the flow...");
    snprintf(e->work->attn_note, sizeof e->work->attn_note, "measuring...");
    snprintf(e->work->infl_note, sizeof e->work->infl_note, "measuring influence...");
}

/* The inspected tokens ids[0 .. n) (n >= 1), described by input. */
static void tokens_set(ssm_engine *e, const int *ids, int n, const char *input)
{
    ssm_snapshot *w = e->work;
    if (n > SSM_SNAP_MAX_T) n = SSM_SNAP_MAX_T;
    for (int t = 0; t < n; t++) {
        w->ids[t] = e->tokens[t] = ids[t];
        label_copy(e, ids[t], w->label[t]);
    }
    snprintf(w->input, sizeof w->input, "%s", input);
    w->T = e->probe_L = n;
    w->image = -1;
    w->grid_cols = 0;
    e->said_too_long = 0;
    measures_void(e);
}

/* text through the model's tokenizer (or as bytes); an empty text is one
 * space.  SSM_ERR_USAGE when the text cannot fit the model. */
static ssm_status text_set(ssm_engine *e, const char *text)
{
    int *ids, n;
    ssm_status st = ssm_session_tokenize(&e->s, *text ? text : " ", &ids, &n);
    if (st) return st;
    if (n == 0) {
        free(ids);
        return ssm_fail(SSM_ERR_USAGE, "the text is empty after tokenization");
    }
    if (n > SSM_SNAP_MAX_T) msg(e, 0, "the text has %d tokens: the lab inspects the first %d", n, SSM_SNAP_MAX_T);
    tokens_set(e, ids, n, text);
    free(ids);
    return SSM_OK;
}

/* Token ids "1,2,3" or "1 2 3", each in the model's vocabulary. */
static ssm_status ids_set(ssm_engine *e, const char *list)
{
    int ids[SSM_SNAP_MAX_T], n = 0, V = e->s.model.cfg.vocab_size;
    const char *p = list;
    while (*p && n < SSM_SNAP_MAX_T) {
        char *end;
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= V || (*end && *end != ',' && *end != ' '))
            return ssm_fail(SSM_ERR_USAGE, "'%s': token ids are numbers 0..%d separated by commas or spaces",
                            list, V - 1);
        ids[n++] = (int)v;
        p = end;
    }
    if (!n) return ssm_fail(SSM_ERR_USAGE, "no token ids given (0..%d)", V - 1);
    tokens_set(e, ids, n, list);
    return SSM_OK;
}

/* Token ids 0, 1, ... (mod the vocabulary), 16 of them: the input of a
 * model that text does not fit (as ssmlab inspect's default). */
static void ids_default(ssm_engine *e)
{
    char list[128];
    size_t len = 0;
    for (int t = 0; t < 16; t++)
        len += snprintf(list + len, sizeof list - len, "%s%d", t ? "," : "", t % e->s.model.cfg.vocab_size);
    ids_set(e, list);
}

/* The text, or the default input when text is NULL. */
static ssm_status input_set(ssm_engine *e, const char *text)
{
    if (text) return text_set(e, text);
    if (ssm_session_text_ok(&e->s)) return text_set(e, default_text);
    ids_default(e);
    return SSM_OK;
}

/* Test image index of an image classifier as the inspected input; the
 * labels are the tokens' image rows and columns, y<row>x<col>. */
static ssm_status image_set(ssm_engine *e, long index)
{
    ssm_snapshot *w = e->work;
    int L, I, grid, label;
    ssm_session_image_shape(&e->s, &L, &I, &grid);
    float *in = realloc(e->inputs, sizeof(float) * (size_t)L * I);
    if (!in) return ssm_fail(SSM_ERR_NOMEM, "engine: out of memory for an image");
    e->inputs = in;
    ssm_status st = ssm_session_image(&e->s, index, e->inputs, &label);
    if (st) return st;
    if (ssm_session_image_pixels(&e->s, index, w->pixels, SSM_SNAP_PIXELS, &w->img_rows, &w->img_cols))
        w->img_rows = w->img_cols = 0;   /* too large to show: the heatmap still measures it */
    w->image = (int)index;
    w->image_label = label;
    const char *name = ssm_session_class_name(&e->s, label);
    snprintf(w->label_name, sizeof w->label_name, "%s", name ? name : "");
    w->grid_cols = grid > 0 ? grid : 1;
    e->probe_L = L;
    w->T = L < SSM_SNAP_MAX_T ? L : SSM_SNAP_MAX_T;
    for (int t = 0; t < w->T; t++) {
        w->ids[t] = t;
        snprintf(w->label[t], SSM_SNAP_LABEL, "y%dx%d", t / w->grid_cols, t % w->grid_cols);
    }
    snprintf(w->input, sizeof w->input, "%ld", index);
    e->said_too_long = 0;
    measures_void(e);
    return SSM_OK;
}

/* After a new session: image 0 of a classifier, else the text again when
 * it fits (its tokens follow the new tokenizer), else the default input. */
static void inspect_reset(ssm_engine *e, int was_text)
{
    char text[SSM_SNAP_TEXT + 1];
    ssm_status st = SSM_OK;
    snprintf(text, sizeof text, "%s", e->work->input);
    if (e->s.images) st = image_set(e, 0);
    else if (was_text && ssm_session_text_ok(&e->s)) st = text_set(e, text);
    else st = input_set(e, NULL);
    if (st) msg(e, 1, "%s", ssm_last_error());
}

/* ------------------------------------------------------------------------ */
/* Interventions                                                            */

/* The status line's form: ssm_probe_describe of the ablations, then one
 * "pin L:E:*=0" per pinned channel (its state_dim pins of A = 0). */
static void iv_describe(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    ssm_probe ablations = {.ablate = e->ablate, .n_ablate = e->n_ablated};
    size_t len = 0, cap = sizeof w->iv_desc;
    w->iv_desc[0] = 0;
    if (e->n_ablated) ssm_probe_describe(&ablations, w->iv_desc, cap);
    len = strlen(w->iv_desc);
    const char *form = e->s.model.cfg.arch == SSM_ARCH_MAMBA2 ? "%spin %d:%d:0" : "%spin %d:%d:*=0";
    for (int i = 0; i < e->n_pinned && len < cap; i++) {
        int k = snprintf(w->iv_desc + len, cap - len, form, len ? ", " : "", e->pinned[i][0], e->pinned[i][1]);
        len += k > 0 ? (size_t)k : 0;
    }
    w->n_ablated = e->n_ablated;
    w->n_pinned = e->n_pinned;
}

/* The probe's arrays from the channel lists, attached to the session's
 * probe model (detached when there is none). */
static ssm_status iv_apply(ssm_engine *e)
{
    /* a Mamba-2 head has one A_h: one pin (n = 0) per head */
    int Ns = e->s.model.cfg.arch == SSM_ARCH_MAMBA2 ? 1 : e->s.model.cfg.state_dim;
    ssm_pin *pins = realloc(e->pins, sizeof *pins * ((size_t)e->n_pinned * Ns + 1));
    if (!pins) return ssm_fail(SSM_ERR_NOMEM, "interventions: out of memory");
    e->pins = pins;
    for (int i = 0; i < e->n_ablated; i++) e->ablate[i] = (ssm_ablation){e->ablated[i][0], e->ablated[i][1], -1};
    for (int i = 0; i < e->n_pinned; i++)
        for (int n = 0; n < Ns; n++) pins[(size_t)i * Ns + n] = (ssm_pin){e->pinned[i][0], e->pinned[i][1], n, 0.0f};
    e->iv = (ssm_probe){.ablate = e->ablate, .n_ablate = e->n_ablated, .pin = pins, .n_pin = e->n_pinned * Ns};
    iv_describe(e);
    return ssm_session_intervene(&e->s, ssm_probe_intervenes(&e->iv) ? &e->iv : NULL);
}

/* A new model: its channels are not the old ones. */
static void iv_reset(ssm_engine *e)
{
    e->n_ablated = e->n_pinned = 0;
    if (iv_apply(e)) msg(e, 1, "%s", ssm_last_error());
}

/* Add (layer, ch) to a list of *n channels, or take it out when it is
 * there: 1 added, 0 taken out, -1 the list is full. */
static int channel_toggle(int list[SSM_IV_MAX][2], int *n, int layer, int ch)
{
    for (int i = 0; i < *n; i++)
        if (list[i][0] == layer && list[i][1] == ch) {
            memmove(list[i], list[i + 1], sizeof list[0] * (size_t)(*n - i - 1));
            (*n)--;
            return 0;
        }
    if (*n == SSM_IV_MAX) return -1;
    list[*n][0] = layer;
    list[*n][1] = ch;
    (*n)++;
    return 1;
}

/* ABLATE and PIN toggle the channel, CLEAR drops them all; every panel
 * measures again on the model as intervened. */
static int cmd_intervene(ssm_engine *e, const ssm_cmd *c)
{
    const ssm_config *mc = &e->s.model.cfg;
    int pin = c->kind == SSM_CMD_PIN, r = 0;
    const char *what = pin ? "pinned" : "ablated";
    const char *unit;
    int units = ssm_session_attn_units(&e->s.model, &unit);
    if (c->kind != SSM_CMD_CLEAR &&
        (c->layer < 0 || c->layer >= mc->n_layer || c->channel < 0 || c->channel >= units)) {
        msg(e, 1, "select one %s first ([ ] or #: the hidden-attention %s of the selected layer)", unit, unit);
        return 0;
    }
    if (c->kind == SSM_CMD_CLEAR) e->n_ablated = e->n_pinned = 0;
    else r = channel_toggle(pin ? e->pinned : e->ablated, pin ? &e->n_pinned : &e->n_ablated, c->layer, c->channel);
    if (r < 0) {
        msg(e, 1, "at most %d channels %s: clear some first", SSM_IV_MAX, what);
        return 0;
    }
    ssm_status st = iv_apply(e);
    const char *now = e->work->iv_desc[0] ? e->work->iv_desc : "none";
    if (st) msg(e, 1, "%s", ssm_last_error());
    else if (c->kind == SSM_CMD_CLEAR) msg(e, 0, "interventions cleared: the panels measure the model as trained");
    else if (!r) msg(e, 0, "layer %d %s %d no longer %s; interventions: %s", c->layer, unit, c->channel, what, now);
    else if (pin)
        msg(e, 0, "pinned A = 0 in layer %d %s %d (one-polarized, it never forgets; training does not see it): %s",
            c->layer, unit, c->channel, now);
    else
        msg(e, 0, "ablated layer %d %s %d (its states held at zero; training does not see it): %s", c->layer,
            unit, c->channel, now);
    return M_ALL;
}

/* ------------------------------------------------------------------------ */
/* Training and commands                                                    */

/* Validate; a run with a history also measures its dynamics and writes
 * the validation row (ssm_session_validate_logged). */
static void validate(ssm_engine *e, int max_batches)
{
    ssm_snapshot *w = e->work;
    double vloss, acc;
    task_dynamics dy;
    busy(e, "validating");
    ssm_status st = ssm_session_validate_logged(&e->s, max_batches, &e->cancel, &vloss, &acc, &dy);
    busy(e, NULL);
    if (dy.n_layer) dyn_add_measured(w, e->s.opt.step, &dy);
    task_dynamics_free(&dy);
    if (st == SSM_ERR_INTERRUPTED) {   /* Esc stops the validation, not the training around it */
        atomic_store(&e->cancel, 0);
        msg(e, 0, "validation cancelled at step %ld%s", e->s.opt.step, e->running ? "; training goes on" : "");
        return;
    }
    if (st) {
        msg(e, 1, "%s", ssm_last_error());
        return;
    }
    w->val_loss = vloss;
    w->val_acc = acc;
    w->val_step = e->s.opt.step;
    history_add(w->val_steps, w->val_hist, &w->n_val, e->s.opt.step, (float)vloss);
    if (e->s.images) msg(e, 0, "validation loss %.4f, accuracy %.2f%% at step %ld", vloss, 100 * acc, e->s.opt.step);
    else msg(e, 0, "validation loss %.4f (%.4f bits/byte) at step %ld", vloss, vloss / M_LN2, e->s.opt.step);
}

/* Training may start; else a message says why not. */
static int train_allowed(ssm_engine *e)
{
    if (!ssm_session_can_train(&e->s)) return 1;
    msg(e, 1, "%s", ssm_last_error());
    return 0;
}

/* The first step of a loaded checkpoint (from step from) makes it a new run. */
static void train_begun(ssm_engine *e, int was_inspecting, long from)
{
    if (was_inspecting && !e->s.inspecting)
        msg(e, 0, "training from step %ld as the new run %s (%s is left as it is)", from, e->s.rc.out, e->s.loaded);
}

static void train_step(ssm_engine *e)
{
    double loss, acc, t0 = ssm_now_s();
    float lr;
    int was_inspecting = e->s.inspecting;
    long from = e->s.opt.step;
    ssm_status st = ssm_session_step(&e->s, &loss, &acc, &lr);
    if (st) {
        e->running = 0;
        msg(e, 1, "%s", ssm_last_error());
        return;
    }
    train_begun(e, was_inspecting, from);
    snprintf(e->work->hist_file, sizeof e->work->hist_file, "%s", e->s.hist.path);
    double tps = (double)e->s.rc.grad_accum * e->s.data->B * e->s.data->L / fmax(ssm_now_s() - t0, 1e-9);
    e->tps = e->tps > 0 ? 0.8 * e->tps + 0.2 * tps : tps;
    e->work->loss = loss;
    e->work->acc = acc;
    e->work->lr = lr;
    history_add(e->work->hist_step, e->work->hist_loss, &e->work->n_hist, e->s.opt.step, (float)loss);
    long step = e->s.opt.step;
    if (e->s.rc.eval_every && step % e->s.rc.eval_every == 0) validate(e, e->s.rc.eval_batches);
    e->measure_pending |= M_ALL;
}

static void train_tick(ssm_engine *e)
{
    if (atomic_exchange(&e->cancel, 0)) {
        e->running = 0;
        msg(e, 0, "training paused at step %ld", e->s.opt.step);
        measure(e);
        publish(e);
        return;
    }
    train_step(e);
    if (e->running && e->s.opt.step == e->s.rc.opt.total_steps) {
        e->running = 0;
        msg(e, 0, "finished the %d scheduled steps; space trains on at min_lr", e->s.rc.opt.total_steps);
    }
    double t = ssm_now_s(), every = fmax(MEASURE_EVERY_S, e->measure_s / MEASURE_SHARE);
    if (!e->running || t - e->t_measure >= every) measure(e);
    if (!e->running || t - e->t_publish >= PUBLISH_EVERY_S) publish(e);
}

static void session_replace(ssm_engine *e, ssm_session *n)
{
    int was_text = !e->s.images && ssm_session_text_ok(&e->s);
    ssm_session_free(&e->s);
    e->s = *n;
    e->train_checked = 0;
    iv_reset(e);
    history_reset(e);
    history_show(e);
    e->running = 0;
    ssm_threads_set(e->s.rc.threads);
    inspect_reset(e, was_text);
}

static void cmd_new_model(ssm_engine *e, const ssm_cmd *c)
{
    ssm_config mc = e->s.model.cfg;
    mc.scenario = c->scenario;
    mc.polarize = c->polarize;
    mc.reorder = c->reorder;
    ssm_status st = ssm_session_rebuild(&e->s, &mc);
    if (st) {
        msg(e, 1, "%s", ssm_last_error());
        return;
    }
    e->train_checked = 0;
    iv_reset(e);
    history_reset(e);
    measures_void(e);
    msg(e, 0, "new model (scenario %s, polarize %s, reorder %s): the run %s", ssm_scenario_name(mc.scenario),
        ssm_polarize_name(mc.polarize), ssm_reorder_name(mc.reorder), e->s.rc.out);
}

static void cmd_load(ssm_engine *e, const char *dir)
{
    ssm_session n;
    busy(e, "loading");
    ssm_status st = ssm_session_open_checkpoint_as(&n, dir, &e->base, NULL, 0, e->weights);
    busy(e, NULL);
    if (st) {
        msg(e, 1, "%s", ssm_last_error());
        return;
    }
    session_replace(e, &n);
    int can = !ssm_session_can_train(&e->s);
    msg(e, 0, "loaded %s at step %ld to inspect (%s weights)%s%s", dir, e->s.opt.step,
        ssm_weights_name(e->s.model.weights), can ? "; training makes the new run " : "", can ? e->s.rc.out : "");
}

static void cmd_save(ssm_engine *e, const ssm_cmd *c)
{
    busy(e, "saving");
    ssm_status st = c->force ? ssm_session_overwrite(&e->s, c->arg) : ssm_session_save(&e->s, c->arg);
    busy(e, NULL);
    if (st) {
        msg(e, 1, "%s", ssm_last_error());
        return;
    }
    e->work->saves++;
    msg(e, 0, "saved %s at step %ld", e->s.rc.out, e->s.opt.step);
}

static void cmd_run(ssm_engine *e, int run)
{
    if (run == e->running) return;
    if (run && !train_allowed(e)) return;
    e->running = run;
    if (e->running) msg(e, 0, "training from step %ld", e->s.opt.step);
    else msg(e, 0, "paused at step %ld", e->s.opt.step);
}

/* TEXT or TOKENS for a language model, IMAGE for an image classifier. */
static int cmd_inspect(ssm_engine *e, const ssm_cmd *c)
{
    if ((c->kind == SSM_CMD_IMAGE) != e->s.images) {
        msg(e, 1, e->s.images ? "an image classifier inspects test images, not text"
                              : "a language model inspects text, not images");
        return 0;
    }
    ssm_status st = c->kind == SSM_CMD_TEXT ? text_set(e, c->arg)
                  : c->kind == SSM_CMD_TOKENS ? ids_set(e, c->arg) : image_set(e, c->index);
    if (st) {
        msg(e, 1, "%s", ssm_last_error());
        return 0;
    }
    return M_ALL;
}

/* The selection: the flow follows the layer, attention layer and channel,
 * influence the token. */
static int cmd_select(ssm_engine *e, const ssm_cmd *c)
{
    ssm_snapshot *w = e->work;
    int what = (c->layer != w->attn_layer ? M_FLOW : 0) |
               (c->layer != w->attn_layer || c->channel != w->attn_channel ? M_ATTN : 0) |
               (c->token != w->infl_token ? M_INFL | M_LENS : 0);
    w->attn_layer = c->layer;
    w->attn_channel = c->channel;
    w->infl_token = c->token;
    return what;
}

static void handle(ssm_engine *e, const ssm_cmd *c)
{
    switch (c->kind) {
    case SSM_CMD_TOGGLE: cmd_run(e, !e->running); return;
    case SSM_CMD_PAUSE: e->running = 0; return;
    case SSM_CMD_RUN: cmd_run(e, 1); return;
    case SSM_CMD_STEP:
        e->running = 0;
        train_step(e);
        return;
    case SSM_CMD_VALIDATE: validate(e, 0); return;
    case SSM_CMD_NEW_MODEL: cmd_new_model(e, c); break;
    case SSM_CMD_TEXT:
    case SSM_CMD_TOKENS:
    case SSM_CMD_IMAGE: e->measure_pending |= cmd_inspect(e, c); return;
    case SSM_CMD_LOAD: cmd_load(e, c->arg); break;
    case SSM_CMD_SAVE: cmd_save(e, c); return;
    case SSM_CMD_SELECT: e->measure_pending |= cmd_select(e, c); return;
    case SSM_CMD_ABLATE:
    case SSM_CMD_PIN:
    case SSM_CMD_CLEAR: e->measure_pending |= cmd_intervene(e, c); return;
    case SSM_CMD_QUIT: return;
    }
    e->measure_pending |= M_ALL;
}

/* ------------------------------------------------------------------------ */
/* Queue and thread                                                         */

/* Pop a command; wait for one when block is set.  Returns 1 if popped. */
static int queue_pop(ssm_engine *e, ssm_cmd *c, int block)
{
    pthread_mutex_lock(&e->mu);
    while (block && !e->qlen) pthread_cond_wait(&e->cv, &e->mu);
    int got = e->qlen > 0;
    if (got) {
        *c = e->queue[e->qhead];
        e->qhead = (e->qhead + 1) % QUEUE_CAP;
        e->qlen--;
        if (++e->popped > e->cancel_at) atomic_store(&e->cancel, 0);
    }
    int more = e->qlen > 0;
    pthread_mutex_unlock(&e->mu);
    return got ? 1 + more : 0;
}

static void *engine_main(void *arg)
{
    ssm_engine *e = arg;
    ssm_threads_set(e->s.rc.threads);
    measure(e);
    publish(e);
    for (;;) {
        ssm_cmd c;
        int got = queue_pop(e, &c, !e->running && !e->measure_pending);
        if (got) {
            if (c.kind == SSM_CMD_QUIT) break;
            handle(e, &c);
            e->work->cmds_done++;
            if (!e->measure_pending) e->work->measured_cmds = e->work->cmds_done;
            if (got == 1 && e->measure_pending && !e->running) measure(e);
            publish(e);
        } else if (e->running) {
            train_tick(e);
        } else if (e->measure_pending) {
            measure(e);
            publish(e);
        }
    }
    e->work->cmds_done++;
    publish(e);
    return NULL;
}

int ssm_engine_send(ssm_engine *e, const ssm_cmd *c)
{
    int rc = 0;
    pthread_mutex_lock(&e->mu);
    ssm_cmd *last = e->qlen ? &e->queue[(e->qhead + e->qlen - 1) % QUEUE_CAP] : NULL;
    if (c->kind == SSM_CMD_SELECT && last && last->kind == SSM_CMD_SELECT) {
        *last = *c;   /* a newer selection replaces a queued one */
    } else if (e->qlen == QUEUE_CAP) {
        rc = -1;
    } else {
        e->queue[(e->qhead + e->qlen) % QUEUE_CAP] = *c;
        e->qlen++;
        e->sent++;
        pthread_cond_signal(&e->cv);
    }
    if (!rc && c->kind != SSM_CMD_SAVE && c->kind != SSM_CMD_VALIDATE && c->kind != SSM_CMD_PAUSE)
        atomic_store(&e->stop_measure, 1);   /* what is measured now is superseded */
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void ssm_engine_cancel(ssm_engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->cancel_at = e->sent;
    atomic_store(&e->cancel, 1);
    atomic_store(&e->stop_measure, 1);
    pthread_mutex_unlock(&e->mu);
}

void ssm_engine_snapshot(ssm_engine *e, ssm_snapshot *dst)
{
    pthread_mutex_lock(&e->mu);
    if (dst->seq != e->shared->seq) memcpy(dst, e->shared, sizeof *dst);   /* about 1.4 MB */
    pthread_mutex_unlock(&e->mu);
}

unsigned long ssm_engine_sent(ssm_engine *e)
{
    pthread_mutex_lock(&e->mu);
    unsigned long n = e->sent;
    pthread_mutex_unlock(&e->mu);
    return n;
}

static void engine_free(ssm_engine *e)
{
    ssm_session_free(&e->s);
    free(e->inputs);
    free(e->alpha);
    free(e->horizon);
    free(e->pins);
    free(e->shared);
    free(e->work);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

/* Start the thread with the terminal signals blocked, so that they are
 * delivered to the UI thread (OpenMP workers inherit the mask). */
static int thread_start(ssm_engine *e)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGWINCH);
    sigaddset(&block, SIGTSTP);
    sigaddset(&block, SIGCONT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&e->thread, NULL, engine_main, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

ssm_status ssm_engine_start(ssm_engine **out, ssm_session *s, const run_config *base,
                            const ssm_engine_options *o)
{
    ssm_engine *e = calloc(1, sizeof *e);
    if (!e) return ssm_fail(SSM_ERR_NOMEM, "engine: out of memory");
    e->shared = calloc(1, sizeof *e->shared);
    e->work = calloc(1, sizeof *e->work);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    if (!e->shared || !e->work) {
        engine_free(e);
        return ssm_fail(SSM_ERR_NOMEM, "engine: out of memory");
    }
    e->s = *s;
    memset(s, 0, sizeof *s);
    e->base = *base;
    e->weights = o->weights;
    e->wake_fd = o->wake_fd;
    e->running = o->autostart && !ssm_session_can_train(&e->s);
    e->work->attn_layer = 0;
    e->work->attn_channel = -1;
    e->work->infl_token = -1;   /* the last token */
    history_reset(e);
    history_show(e);
    ssm_status st = e->s.images ? image_set(e, o->image > 0 ? o->image : 0) : input_set(e, o->text);
    if (!st && !e->running && ssm_session_can_train(&e->s)) msg(e, 0, "%s", ssm_last_error());
    else if (!st && e->s.inspecting)
        msg(e, 0, "inspecting %s at step %ld (%s weights); training makes the new run %s", e->s.loaded,
            e->s.opt.step, ssm_weights_name(e->s.model.weights), e->s.rc.out);
    if (st) {
        engine_free(e);
        return st;
    }
    if (thread_start(e)) {
        engine_free(e);
        return ssm_fail(SSM_ERR_SOFTWARE, "engine: cannot start the thread: %s", strerror(errno));
    }
    *out = e;
    return SSM_OK;
}

void ssm_engine_stop(ssm_engine *e)
{
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    /* cancel what runs and what is queued (a queued save still saves) */
    e->cancel_at = e->sent + 1;
    atomic_store(&e->cancel, 1);
    atomic_store(&e->stop_measure, 1);
    if (e->qlen == QUEUE_CAP) e->qlen--;
    e->queue[(e->qhead + e->qlen) % QUEUE_CAP] = (ssm_cmd){.kind = SSM_CMD_QUIT};
    e->qlen++;
    e->sent++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    engine_free(e);
}
