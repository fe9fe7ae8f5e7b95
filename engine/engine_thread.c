/* engine_thread.c — the TUI's engine thread: a command queue (mutex +
 * condition variable), a training loop that runs while started, throttled
 * measurements on the inspected text, and snapshots published under the
 * mutex with a byte on the UI's self-pipe as the wake-up. */
#include "engine_thread.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dynamics.h"

#define QUEUE_CAP 64
#define MEASURE_EVERY_S 0.25   /* measurements while training, at most this often */
#define PUBLISH_EVERY_S 0.03   /* snapshots while training, at most this often */

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
    atomic_int cancel;
    int wake_fd;
    /* engine-thread state */
    ssm_snapshot *work;           /* snapshot being built */
    ssm_session s;
    run_config base;
    int running, measure_pending;
    int tokens[SSM_SNAP_MAX_T];
    double t_measure, t_publish, tps;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

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

static void info_fill(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    const ssm_session *s = &e->s;
    const ssm_config *c = &s->model.cfg;
    snprintf(w->name, sizeof w->name, "%s", s->name);
    snprintf(w->out, sizeof w->out, "%s", s->rc.out);
    w->scenario = c->scenario;
    w->polarize = c->polarize;
    w->reorder = c->reorder;
    w->n_layer = c->n_layer;
    w->d_model = c->d_model;
    w->d_inner = c->d_inner;
    w->d_state = c->d_state;
    w->n_classes = c->n_classes;
    w->threads = ssm_threads_get();
    w->num_params = s->model.num_params;
    w->step = s->opt.step;
    w->total_steps = s->rc.opt.total_steps;
    w->running = e->running;
    w->dirty = ssm_session_dirty(s);
    w->unigram = s->unigram;
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
    e->t_publish = now_s();
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
    w->n_hist = w->n_val = 0;
    w->loss = NAN;
    w->val_loss = NAN;
    w->val_step = -1;
    w->measured_step = -1;
    e->tps = 0;
}

/* Append (step, v) to a history, halving it when full. */
static void history_add(long *steps, float *vals, int *n, long step, float v)
{
    if (*n == SSM_SNAP_HIST) {
        for (int i = 0; i < SSM_SNAP_HIST / 2; i++) {
            steps[i] = steps[2 * i + 1];
            vals[i] = vals[2 * i + 1];
        }
        *n = SSM_SNAP_HIST / 2;
    }
    steps[*n] = step;
    vals[*n] = v;
    (*n)++;
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
    w->verdict = n.verdict;
    ssm_norms_free(&n);
    return SSM_OK;
}

static char eigen_sign(double re, double im, double rho)
{
    double tol = SSM_SPECTRUM_TOL * rho;
    if (fabs(im) > tol) return '~';
    return re > tol ? '+' : re < -tol ? '-' : '0';
}

static ssm_status measure_spectrum(const ssm_model *m, ssm_snapshot *w)
{
    ssm_spectrum sp = {0};
    w->spec_ok = 0;
    ssm_status st = ssm_dynamics_spectrum(m, &sp);
    if (st) return st;
    int N = sp.N < SSM_SNAP_MAX_N ? sp.N : SSM_SNAP_MAX_N;
    for (int l = 0; l < sp.n_layer && l < SSM_SNAP_MAX_LAYER; l++) {
        w->n_pos[l] = sp.n_pos[l];
        w->n_neg[l] = sp.n_neg[l];
        w->n_cplx[l] = sp.n_complex[l];
        w->cls[l] = sp.cls[l];
        double rho = 0;
        for (int i = 0; i < sp.N; i++) rho = fmax(rho, hypot(sp.re[l * sp.N + i], sp.im[l * sp.N + i]));
        for (int i = 0; i < N; i++) w->signs[l][i] = eigen_sign(sp.re[l * sp.N + i], sp.im[l * sp.N + i], rho);
        w->signs[l][N] = 0;
    }
    w->spec_N = sp.N;
    w->spec_ok = 1;
    ssm_spectrum_free(&sp);
    return SSM_OK;
}

static void measure_importance(const ssm_model *m, ssm_snapshot *w)
{
    memcpy(w->imp, m->acts.imp_s, sizeof(float) * w->T);
    ssm_dynamics_ranking(w->imp, w->T, w->order);
    w->imp_learned = m->params.imp_k != NULL;
}

/* |alpha| of the selected layer and channel, each row scaled to max 1. */
static ssm_status measure_attention(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    int T = w->T, nl = e->s.model.cfg.n_layer;
    if (w->attn_layer < 1) w->attn_layer = 1;
    if (w->attn_layer > nl) w->attn_layer = nl;
    if (w->attn_channel >= e->s.model.cfg.d_inner) w->attn_channel = -1;
    w->attn_ok = 0;
    ssm_status st = ssm_session_hidden_attention(&e->s.probe, w->attn_layer - 1, w->attn_channel,
                                                 &e->cancel, w->attn);
    if (st) return st;
    for (int t = 0; t < T; t++) {
        float *row = w->attn + (size_t)t * T, mx = 0;
        for (int s = 0; s <= t; s++) mx = fmaxf(mx, row[s] = fabsf(row[s]));
        for (int s = 0; s <= t && mx > 0; s++) row[s] /= mx;
    }
    w->attn_ok = 1;
    return SSM_OK;
}

static void measure(ssm_engine *e)
{
    ssm_snapshot *w = e->work;
    ssm_status st = ssm_session_probe(&e->s, e->tokens, w->T);
    if (!st) st = measure_norms(&e->s.probe, w);
    if (!st) {
        measure_importance(&e->s.probe, w);
        st = measure_spectrum(&e->s.probe, w);
    }
    if (!st) st = measure_attention(e);
    if (st) msg(e, st != SSM_ERR_INTERRUPTED, "%s", ssm_last_error());
    w->measured_step = e->s.opt.step;
    w->measured_cmds = w->cmds_done;
    e->measure_pending = 0;
    e->t_measure = now_s();
}

static void text_set(ssm_engine *e, const char *text)
{
    int V = e->s.model.cfg.padded_vocab, T = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && T < SSM_SNAP_MAX_T; p++, T++) {
        e->work->text[T] = *p;
        e->tokens[T] = V > 0 ? *p % V : *p;
    }
    if (T == 0) {
        e->work->text[0] = ' ';
        e->tokens[0] = ' ';
        T = 1;
    }
    e->work->T = T;
}

/* ------------------------------------------------------------------------ */
/* Training and commands                                                    */

static void validate(ssm_engine *e, int max_batches)
{
    double vloss;
    busy(e, "validating");
    ssm_status st = ssm_session_validate(&e->s, max_batches, &e->cancel, &vloss);
    busy(e, NULL);
    if (st) {
        msg(e, st != SSM_ERR_INTERRUPTED, "%s", ssm_last_error());
        return;
    }
    e->work->val_loss = vloss;
    e->work->val_step = e->s.opt.step;
    history_add(e->work->val_steps, e->work->val_hist, &e->work->n_val, e->s.opt.step, (float)vloss);
    msg(e, 0, "validation loss %.4f (%.4f bits/byte) at step %ld", vloss, vloss / M_LN2, e->s.opt.step);
}

static void train_step(ssm_engine *e)
{
    double loss, t0 = now_s();
    float lr;
    ssm_status st = ssm_session_step(&e->s, &loss, &lr);
    if (st) {
        e->running = 0;
        msg(e, 1, "%s", ssm_last_error());
        return;
    }
    double tps = (double)e->s.rc.grad_accum * e->s.blk.B * e->s.blk.L / fmax(now_s() - t0, 1e-9);
    e->tps = e->tps > 0 ? 0.8 * e->tps + 0.2 * tps : tps;
    e->work->loss = loss;
    e->work->lr = lr;
    history_add(e->work->hist_step, e->work->hist_loss, &e->work->n_hist, e->s.opt.step, (float)loss);
    long step = e->s.opt.step;
    if (e->s.rc.eval_every && step % e->s.rc.eval_every == 0) validate(e, e->s.rc.eval_batches);
    e->measure_pending = 1;
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
    double t = now_s();
    if (!e->running || t - e->t_measure >= MEASURE_EVERY_S) measure(e);
    if (!e->running || t - e->t_publish >= PUBLISH_EVERY_S) publish(e);
}

static void session_replace(ssm_engine *e, ssm_session *n)
{
    ssm_session_free(&e->s);
    e->s = *n;
    history_reset(e);
    e->running = 0;
    ssm_threads_set(e->s.rc.threads);
}

static void cmd_new_model(ssm_engine *e, const ssm_cmd *c)
{
    ssm_config mc = e->s.rc.model;
    mc.scenario = c->scenario;
    mc.polarize = c->polarize;
    mc.reorder = c->reorder;
    ssm_status st = ssm_session_rebuild(&e->s, &mc);
    if (st) {
        msg(e, 1, "%s", ssm_last_error());
        return;
    }
    history_reset(e);
    msg(e, 0, "new model: scenario %s, polarize %s, reorder %s", ssm_scenario_name(mc.scenario),
        ssm_polarize_name(mc.polarize), ssm_reorder_name(mc.reorder));
}

static void cmd_load(ssm_engine *e, const char *dir)
{
    ssm_session n;
    busy(e, "loading");
    ssm_status st = ssm_session_open_checkpoint(&n, dir, &e->base, NULL, 0);
    busy(e, NULL);
    if (st) {
        msg(e, 1, "%s", ssm_last_error());
        return;
    }
    session_replace(e, &n);
    msg(e, 0, "loaded %s at step %ld", dir, e->s.opt.step);
}

static void cmd_save(ssm_engine *e, const char *arg)
{
    char dir[RUN_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", *arg ? arg : e->s.rc.out);
    busy(e, "saving");
    ssm_status st = ssm_session_save(&e->s, dir);
    busy(e, NULL);
    if (st) msg(e, 1, "%s", ssm_last_error());
    else msg(e, 0, "saved %s at step %ld", dir, e->s.opt.step);
}

static void cmd_toggle(ssm_engine *e)
{
    e->running = !e->running;
    if (e->running) msg(e, 0, "training from step %ld", e->s.opt.step);
    else msg(e, 0, "paused at step %ld", e->s.opt.step);
}

static void handle(ssm_engine *e, const ssm_cmd *c)
{
    switch (c->kind) {
    case SSM_CMD_TOGGLE: cmd_toggle(e); return;
    case SSM_CMD_PAUSE: e->running = 0; return;
    case SSM_CMD_STEP:
        e->running = 0;
        train_step(e);
        return;
    case SSM_CMD_VALIDATE: validate(e, 0); return;
    case SSM_CMD_NEW_MODEL: cmd_new_model(e, c); break;
    case SSM_CMD_TEXT: text_set(e, c->arg); break;
    case SSM_CMD_LOAD: cmd_load(e, c->arg); break;
    case SSM_CMD_SAVE: cmd_save(e, c->arg); return;
    case SSM_CMD_SELECT:
        e->work->attn_layer = c->layer;
        e->work->attn_channel = c->channel;
        break;
    case SSM_CMD_QUIT: return;
    }
    e->measure_pending = 1;
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
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void ssm_engine_cancel(ssm_engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->cancel_at = e->sent;
    atomic_store(&e->cancel, 1);
    pthread_mutex_unlock(&e->mu);
}

void ssm_engine_snapshot(ssm_engine *e, ssm_snapshot *dst)
{
    pthread_mutex_lock(&e->mu);
    memcpy(dst, e->shared, sizeof *dst);
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
    e->wake_fd = o->wake_fd;
    e->running = o->autostart;
    e->work->attn_layer = 1;
    e->work->attn_channel = -1;
    history_reset(e);
    text_set(e, o->text ? o->text : default_text);
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
    if (e->qlen == QUEUE_CAP) e->qlen--;
    e->queue[(e->qhead + e->qlen) % QUEUE_CAP] = (ssm_cmd){.kind = SSM_CMD_QUIT};
    e->qlen++;
    e->sent++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    engine_free(e);
}
