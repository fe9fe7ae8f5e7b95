/* recency.c — the recency and over-smoothing measurements of ssmlab-math(7) RECENCY: hidden
 * attention from one layer's scan inputs (running products, O(L^2 Ns) per
 * channel), influence of the embedded inputs on the last residual stream
 * through ssm_model_backward_stream (exact Jacobian norms or Gaussian
 * probes) with its exponential decay fit (gsl_fit_linear), and the
 * residual-stream over-smoothing measures.  Uses GSL's fit and random
 * number headers: this file must not include OpenBLAS's cblas.h. */
#include "engine/recency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_fit.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "engine/mamba2.h"

/* ------------------------------------------------------------------------ */
/* Hidden attention                                                         */

/* dec (L, Ns): exp(Delta_t[e] A[e, j]) of channel e */
static void channel_decay(const ssm_attn_args *a, int e, double *dec)
{
    for (int t = 0; t < a->L; t++) {
        double dt = a->delta[(size_t)t * a->E + e];
        for (int j = 0; j < a->Ns; j++)
            dec[(size_t)t * a->Ns + j] = exp(dt * a->A[(size_t)e * a->Ns + j]);
    }
}

/* Column s of alpha_e, rows t = s..L-1: v = Delta_s B_s, then v *= dec_t
 * for each later t, alpha[t][s] = C_t . v.  w = 0 stores the signed value;
 * w > 0 adds w |value| (channel mean). */
static void channel_column(const ssm_attn_args *a, int e, int s, const double *dec,
                           float *alpha, float w)
{
    int L = a->L, Ns = a->Ns;
    double v[SSM_ATTN_MAX_NS];                     /* (Ns) running state of token s */
    double ds = a->delta[(size_t)s * a->E + e];
    for (int j = 0; j < Ns; j++)
        v[j] = ds * a->Bm[(size_t)s * a->ld_bc + j] * (a->keep ? a->keep[(size_t)e * Ns + j] : 1.0f);
    for (int t = s; t < L; t++) {
        const float *C = a->Cm + (size_t)t * a->ld_bc;
        double dot = 0.0;
        if (t > s)
            for (int j = 0; j < Ns; j++) v[j] *= dec[(size_t)t * Ns + j];
        for (int j = 0; j < Ns; j++) dot += C[j] * v[j];
        float *out = alpha + (size_t)t * L + s;
        if (w > 0.0f) *out += w * (float)fabs(dot);
        else *out = (float)dot;
    }
}

ssm_status ssm_recency_alpha(const ssm_attn_args *a, int channel, atomic_int *cancel, float *alpha)
{
    if (a->L < 1 || a->E < 1 || a->Ns < 1 || a->Ns > SSM_ATTN_MAX_NS)
        return ssm_fail(SSM_ERR_USAGE, "hidden attention: shape L %d, E %d, Ns %d is unsupported",
                        a->L, a->E, a->Ns);
    if (channel < SSM_ATTN_MEAN || channel >= a->E)
        return ssm_fail(SSM_ERR_USAGE, "hidden attention: channel %d is outside [0, %d)", channel, a->E);
    int L = a->L;
    double *dec = malloc(sizeof(double) * L * a->Ns);     /* (L, Ns) */
    if (!dec) return ssm_fail(SSM_ERR_NOMEM, "out of memory for hidden attention (L = %d)", L);
    memset(alpha, 0, sizeof(float) * L * L);
    int e0 = channel < 0 ? 0 : channel, e1 = channel < 0 ? a->E : channel + 1;
    float w = channel < 0 ? 1.0f / a->E : 0.0f;
    ssm_status st = SSM_OK;
    for (int e = e0; e < e1; e++) {
        if (cancel && atomic_load(cancel)) {
            st = ssm_fail(SSM_ERR_INTERRUPTED, "hidden attention cancelled");
            break;
        }
        channel_decay(a, e, dec);
#pragma omp parallel for schedule(dynamic, 8)
        for (int s = 0; s < L; s++) channel_column(a, e, s, dec, alpha, w);
    }
    free(dec);
    return st;
}

static ssm_status attention_check(const ssm_model *m, int layer, int b)
{
    const ssm_config *c = &m->cfg;
    if (!m->acts_memory || m->act_B < 1)
        return ssm_fail(SSM_ERR_SOFTWARE, "hidden attention needs a forward pass first");
    if (layer < 0 || layer >= c->n_layer)
        return ssm_fail(SSM_ERR_USAGE, "layer %d is outside [0, %d)", layer, c->n_layer);
    if (b < 0 || b >= m->act_B)
        return ssm_fail(SSM_ERR_USAGE, "sequence %d is outside [0, %d)", b, m->act_B);
    if (!ssm_model_keeps_acts(m) && layer != c->n_layer - 1)
        return ssm_fail(SSM_ERR_SOFTWARE, "activations of layer %d are not kept: call "
                        "ssm_model_alloc_grads or ssm_model_keep_acts before the forward", layer);
    return SSM_OK;
}

/* Mamba-2's twin (ssmlab-math(7) MAMBA-2, Per-head measurements): head h
 * is one channel of ssm_recency_alpha with delta = dt[., h], B and C of
 * its group g(h) and A[h] (pins applied) on every state column; the mean
 * over heads adds (1/H) |alpha_h|.  The attached probe's ablations drop a
 * state column n of head h when they hold every p of it (a whole head, or
 * each (p, n) entry): the map has no p, so an ablation of some p only does
 * not show in it. */
static ssm_status attention_heads(const ssm_model *m, int layer, int b, int head, atomic_int *cancel,
                                  float *alpha)
{
    const ssm_config *c = &m->cfg;
    int H = c->n_heads, N = c->d_state, G = c->n_groups, E = c->d_inner, L = m->act_L,
        Cw = E + 2 * G * N, P = c->head_dim;
    if (head < SSM_ATTN_MEAN || head >= H)
        return ssm_fail(SSM_ERR_USAGE, "hidden attention: head %d is outside [0, %d)", head, H);
    const float *xbc, *dt;
    /* (H, N) A, (H) A_h, (L, L) one map, (H, P, N) the probe's keep, (H, N) its columns */
    float *A = malloc(sizeof(float) * ((size_t)H * N + H + (size_t)L * L + (size_t)H * P * N + (size_t)H * N));
    if (!A) return ssm_fail(SSM_ERR_NOMEM, "out of memory for hidden attention (L = %d)", L);
    float *Ah = A + (size_t)H * N, *one = Ah + H, *keep = one + (size_t)L * L, *cols = keep + (size_t)H * P * N;
    ssm_status st = ssm_mamba2_scan_inputs(m, layer, &xbc, &dt, Ah);
    int ablated = ssm_probe_keep(m->probe, layer, H, P * N, keep);
    for (int h = 0; h < H; h++)
        for (int j = 0; j < N; j++) {
            A[(size_t)h * N + j] = Ah[h];
            float k = 0.0f;
            for (int p = 0; p < P; p++) k = fmaxf(k, keep[((size_t)h * P + p) * N + j]);
            cols[(size_t)h * N + j] = k;
        }
    xbc += (size_t)b * L * Cw;
    int h0 = head < 0 ? 0 : head, h1 = head < 0 ? H : head + 1;
    if (head < 0) memset(alpha, 0, sizeof(float) * L * L);
    for (int h = h0; h < h1 && !st; h++) {
        int g = h / (H / G);
        ssm_attn_args a = {L, H, N, dt + (size_t)b * L * H, xbc + E + (size_t)g * N,
                           xbc + E + (size_t)(G + g) * N, Cw, A, ablated ? cols : NULL};
        st = ssm_recency_alpha(&a, h, cancel, head < 0 ? one : alpha);
        if (!st && head < 0)
            for (size_t i = 0; i < (size_t)L * L; i++) alpha[i] += fabsf(one[i]) / H;
    }
    free(A);
    return st;
}

ssm_status ssm_recency_attention(const ssm_model *m, int layer, int b, int channel, atomic_int *cancel,
                                 float *alpha)
{
    ssm_status st = attention_check(m, layer, b);
    if (st) return st;
    if (m->cfg.arch == SSM_ARCH_MAMBA2) return attention_heads(m, layer, b, channel, cancel, alpha);
    const ssm_config *c = &m->cfg;
    int E = c->d_inner, Ns = c->state_dim, R = c->dt_rank, X = R + 2 * Ns, Lm = m->act_L,
        L = ssm_model_input_len(m);                           /* causal: the cls row is not needed */
    size_t k = ssm_model_keeps_acts(m) ? (size_t)layer : 0;  /* kept-layer index */
    size_t row = k * m->act_B * Lm + (size_t)b * Lm;          /* first token's row */
    float *A = malloc(sizeof(float) * 2 * E * Ns);            /* (E, Ns) A, then (E, Ns) keep */
    if (!A) return ssm_fail(SSM_ERR_NOMEM, "out of memory for A");
    ssm_model_run_A(m, layer, A);                              /* pins included */
    float *keep = A + (size_t)E * Ns;
    const float *xdbl = m->acts.xdbl + row * X;               /* (L, R+2Ns) */
    ssm_attn_args a = {L, E, Ns, m->acts.delta + row * E, xdbl + R, xdbl + R + Ns, X, A,
                       ssm_probe_keep(m->probe, layer, E, Ns, keep) ? keep : NULL};
    st = ssm_recency_alpha(&a, channel, cancel, alpha);
    free(A);
    return st;
}

void ssm_recency_row_normalize(const float *alpha, int L, float *out)
{
    for (int t = 0; t < L; t++) {
        const float *r = alpha + (size_t)t * L;
        float mx = 0.0f;
        for (int s = 0; s <= t; s++) mx = fabsf(r[s]) > mx ? fabsf(r[s]) : mx;
        for (int s = 0; s < L; s++) out[(size_t)t * L + s] = mx > 0.0f ? r[s] / mx : r[s];
    }
}

/* ------------------------------------------------------------------------ */
/* Influence                                                                */

typedef struct {
    ssm_model *m;
    int B, L, D;
    int Lm;         /* rows per sequence of the stream: L, or L+1 under pool cls */
    float *dxn;     /* (B, Lm, D) dL/dx_n, nonzero at the target row only */
    float *dx0;     /* (B, Lm, D) dL/dx_0 of the last pass */
    double *sq;     /* (B, L) accumulated ||J_ts||_F^2 estimate per sequence */
    gsl_rng *rng;
    atomic_int *cancel; /* stop between passes when nonzero (may be NULL) */
} influence_work;

static void work_free(influence_work *w)
{
    free(w->dxn);
    free(w->dx0);
    free(w->sq);
    if (w->rng) gsl_rng_free(w->rng);
}

static ssm_status work_build(influence_work *w, ssm_model *m, int B, int L, uint64_t seed,
                             atomic_int *cancel)
{
    size_t n = (size_t)B * m->act_L * m->cfg.d_model;
    *w = (influence_work){m, B, L, m->cfg.d_model, m->act_L, calloc(n, sizeof(float)),
                          malloc(sizeof(float) * n), calloc((size_t)B * L, sizeof(double)),
                          gsl_rng_alloc(gsl_rng_mt19937), cancel};
    if (!w->dxn || !w->dx0 || !w->sq || !w->rng) {
        work_free(w);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for influence (%d x %d)", B, L);
    }
    gsl_rng_set(w->rng, (unsigned long)seed);
    return SSM_OK;
}

/* One backward pass from w->dxn; sq[b, s] += weight ||dx0[b, s, :]||^2 */
static ssm_status influence_pass(influence_work *w, double weight)
{
    if (w->cancel && atomic_load(w->cancel)) return ssm_fail(SSM_ERR_INTERRUPTED, "influence cancelled");
    ssm_status st = ssm_model_backward_stream(w->m, w->dxn, w->dx0);
    if (st) return st;
    for (size_t i = 0; i < (size_t)w->B * w->L; i++) {
        const float *g = w->dx0 + (i / w->L * w->Lm + i % w->L) * w->D;
        double s = 0.0;
        for (int d = 0; d < w->D; d++) s += (double)g[d] * g[d];
        w->sq[i] += weight * s;
    }
    return SSM_OK;
}

/* dxn[b, t, :] = 0 for every sequence */
static void target_clear(influence_work *w, int t)
{
    for (int b = 0; b < w->B; b++)
        memset(w->dxn + ((size_t)b * w->Lm + t) * w->D, 0, sizeof(float) * w->D);
}

/* Exact: one pass per unit vector e_d at position t; every sequence at once */
static ssm_status target_exact(influence_work *w, int t)
{
    ssm_status st = SSM_OK;
    for (int d = 0; d < w->D && !st; d++) {
        target_clear(w, t);
        for (int b = 0; b < w->B; b++) w->dxn[((size_t)b * w->Lm + t) * w->D + d] = 1.0f;
        st = influence_pass(w, 1.0);
    }
    target_clear(w, t);
    return st;
}

/* K probes v ~ N(0, I_D) at position t, one per sequence and pass */
static ssm_status target_probes(influence_work *w, int t, int K)
{
    ssm_status st = SSM_OK;
    for (int k = 0; k < K && !st; k++) {
        for (int b = 0; b < w->B; b++)
            for (int d = 0; d < w->D; d++)
                w->dxn[((size_t)b * w->Lm + t) * w->D + d] = (float)gsl_ran_gaussian(w->rng, 1.0);
        st = influence_pass(w, 1.0 / K);
    }
    target_clear(w, t);
    return st;
}

/* row (L) = mean over sequences of sqrt(sq[b, :]); sq is reset */
static void target_collect(influence_work *w, float *row)
{
    for (int s = 0; s < w->L; s++) {
        double acc = 0.0;
        for (int b = 0; b < w->B; b++) acc += sqrt(w->sq[(size_t)b * w->L + s]);
        row[s] = (float)(acc / w->B);
    }
    memset(w->sq, 0, sizeof(double) * w->B * w->L);
}

static ssm_status influence_alloc(ssm_influence *o, int L, int B, const int *targets, int n,
                                  int probes)
{
    memset(o, 0, sizeof *o);
    for (int k = 0; k < n; k++)
        if (targets[k] < 0 || targets[k] >= L)
            return ssm_fail(SSM_ERR_USAGE, "influence target %d is outside [0, %d)", targets[k], L);
    *o = (ssm_influence){L, n, B, malloc(sizeof(int) * n), calloc((size_t)n * L, sizeof(float)),
                         probes, 0};
    if (!o->targets || !o->I) {
        ssm_influence_free(o);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for influence");
    }
    memcpy(o->targets, targets, sizeof(int) * n);
    return SSM_OK;
}

static int probes_resolve(int probes, int D, int n_targets)
{
    if (probes != SSM_INFLUENCE_AUTO) return probes;
    return (long)D * n_targets <= SSM_INFLUENCE_EXACT_MAX ? SSM_INFLUENCE_EXACT : SSM_INFLUENCE_PROBES;
}

static ssm_status influence_targets(influence_work *w, ssm_influence *o)
{
    ssm_status st = SSM_OK;
    for (int k = 0; k < o->n_targets && !st; k++) {
        int t = o->targets[k];
        st = o->probes ? target_probes(w, t, o->probes) : target_exact(w, t);
        target_collect(w, o->I + (size_t)k * o->L);
        o->passes += o->probes ? o->probes : w->D;
    }
    return st;
}

ssm_status ssm_recency_influence_kept(ssm_model *m, const int *targets, int n_targets, int probes,
                                      uint64_t seed, atomic_int *cancel, ssm_influence *out)
{
    memset(out, 0, sizeof *out);
    if (n_targets < 1 || probes < SSM_INFLUENCE_AUTO)
        return ssm_fail(SSM_ERR_USAGE, "influence needs >= 1 target and probes >= 0 (got %d, %d)",
                        n_targets, probes);
    if (!ssm_model_keeps_acts(m) || !m->last || !m->acts_memory || m->act_B < 1)
        return ssm_fail(SSM_ERR_SOFTWARE, "influence needs a forward pass that kept its activations");
    probes = probes_resolve(probes, m->cfg.d_model, n_targets);
    int L = ssm_model_input_len(m);   /* the input tokens: targets and sources */
    ssm_status st = influence_alloc(out, L, m->act_B, targets, n_targets, probes);
    if (st) return st;
    influence_work w;
    if ((st = work_build(&w, m, m->act_B, L, seed, cancel))) {
        ssm_influence_free(out);
        return st;
    }
    st = influence_targets(&w, out);
    work_free(&w);
    ssm_model_zero_grad(m);
    if (st) ssm_influence_free(out);
    return st;
}

ssm_status ssm_recency_influence(ssm_model *m, const ssm_batch *b, const int *targets,
                                 int n_targets, int probes, uint64_t seed, ssm_influence *out)
{
    memset(out, 0, sizeof *out);
    ssm_status st;
    if ((st = ssm_model_keep_for_backward(m)) || (st = ssm_model_forward(m, b))) return st;
    return ssm_recency_influence_kept(m, targets, n_targets, probes, seed, NULL, out);
}

void ssm_influence_free(ssm_influence *inf)
{
    free(inf->targets);
    free(inf->I);
    memset(inf, 0, sizeof *inf);
}

int ssm_recency_targets(int L, int n, int *targets)
{
    n = n < 1 ? 1 : n > L ? L : n;
    for (int k = 0; k < n; k++) targets[k] = (int)((long)(k + 1) * L / n - 1);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Decay fit                                                                */

/* Keep the points with I > 0 and finite: x = dist, y = ln I.  Returns the count. */
static int fit_collect(const double *dist, const double *I, int n, double *x, double *y)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (I[i] > 0.0 && isfinite(I[i]) && isfinite(dist[i])) {
            x[k] = dist[i];
            y[k++] = log(I[i]);
        }
    return k;
}

static int fit_distinct(const double *x, int n)
{
    for (int i = 1; i < n; i++)
        if (x[i] != x[0]) return 1;
    return 0;
}

ssm_status ssm_recency_fit_points(const double *dist, const double *I, int n, ssm_decay *out)
{
    memset(out, 0, sizeof *out);
    double *x = malloc(sizeof(double) * (n > 0 ? n : 1)), *y = malloc(sizeof(double) * (n > 0 ? n : 1));
    if (!x || !y) {
        free(x);
        free(y);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for the decay fit");
    }
    int k = fit_collect(dist, I, n, x, y);
    ssm_status st = SSM_OK;
    if (k < 2 || !fit_distinct(x, k)) {
        st = ssm_fail(SSM_ERR_DATA, "decay fit: %d usable points, fewer than two distinct "
                      "distances (sequence too short?)", k);
    } else {
        double c0, c1, cov00, cov01, cov11, sumsq, mean = 0.0, sstot = 0.0;
        gsl_fit_linear(x, 1, y, 1, k, &c0, &c1, &cov00, &cov01, &cov11, &sumsq);
        for (int i = 0; i < k; i++) mean += y[i] / k;
        for (int i = 0; i < k; i++) sstot += (y[i] - mean) * (y[i] - mean);
        *out = (ssm_decay){-c1, -c1 > 0.0 ? log(2.0) / -c1 : INFINITY, c0,
                           sstot > 0.0 ? 1.0 - sumsq / sstot : NAN, k};
    }
    free(x);
    free(y);
    return st;
}

ssm_status ssm_recency_fit_decay(const ssm_influence *inf, int min_dist, ssm_decay *out)
{
    size_t cap = (size_t)inf->n_targets * inf->L;
    double *dist = malloc(sizeof(double) * (cap ? cap : 1)), *I = malloc(sizeof(double) * (cap ? cap : 1));
    if (!dist || !I) {
        free(dist);
        free(I);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for the decay fit");
    }
    int n = 0;
    for (int k = 0; k < inf->n_targets; k++)
        for (int s = 0; s <= inf->targets[k] - min_dist; s++) {
            dist[n] = inf->targets[k] - s;
            I[n++] = inf->I[(size_t)k * inf->L + s];
        }
    ssm_status st = ssm_recency_fit_points(dist, I, n, out);
    free(dist);
    free(I);
    return st;
}

ssm_status ssm_recency_tail(const ssm_influence *inf, int min_dist, double *ratio)
{
    double far = 0.0, near = 0.0;
    long nfar = 0, nnear = 0;
    for (int k = 0; k < inf->n_targets; k++)
        for (int s = 0; s <= inf->targets[k]; s++) {
            int d = inf->targets[k] - s;
            double I = inf->I[(size_t)k * inf->L + s];
            if (d == 1) { near += I; nnear++; }
            if (d >= min_dist) { far += I; nfar++; }
        }
    if (!nfar || !nnear || !(near > 0.0))
        return ssm_fail(SSM_ERR_DATA, "no influence at distance 1 and at distances >= %d to compare", min_dist);
    *ratio = (far / nfar) / (near / nnear);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Over-smoothing                                                           */

ssm_status ssm_recency_smoothing_one(const float *X, int T, int D, double *cos_mean,
                                     double *deviation)
{
    double *sum_u = calloc(D, sizeof(double)), *mean = calloc(D, sizeof(double));   /* (D) */
    if (!sum_u || !mean) {
        free(sum_u);
        free(mean);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for over-smoothing");
    }
    double total = 0.0, n_unit = 0.0, su2 = 0.0, dev = 0.0;
    for (int i = 0; i < T; i++) {
        const float *x = X + (size_t)i * D;
        double n2 = 0.0;
        for (int d = 0; d < D; d++) n2 += (double)x[d] * x[d];
        total += n2;
        double inv = n2 > 0.0 ? 1.0 / sqrt(n2) : 0.0;
        n_unit += n2 > 0.0;
        for (int d = 0; d < D; d++) {
            sum_u[d] += x[d] * inv;
            mean[d] += (double)x[d] / T;
        }
    }
    for (int d = 0; d < D; d++) su2 += sum_u[d] * sum_u[d];
    for (size_t i = 0; i < (size_t)T * D; i++) {
        double r = X[i] - mean[i % D];
        dev += r * r;
    }
    /* sum_{i != j} u_i . u_j = ||sum_i u_i||^2 - sum_i ||u_i||^2 */
    *cos_mean = T >= 2 ? (su2 - n_unit) / ((double)T * (T - 1)) : NAN;
    *deviation = total > 0.0 ? sqrt(dev / total) : NAN;
    free(sum_u);
    free(mean);
    return SSM_OK;
}

ssm_status ssm_recency_smoothing(const ssm_model *m, double *cos_mean, double *deviation)
{
    if (!m->acts_memory || m->act_B < 1)
        return ssm_fail(SSM_ERR_SOFTWARE, "over-smoothing needs a forward pass first");
    int B = m->act_B, Lm = m->act_L, L = ssm_model_input_len(m), D = m->cfg.d_model;
    for (int l = 0; l <= m->cfg.n_layer; l++) {
        cos_mean[l] = deviation[l] = 0.0;
        for (int b = 0; b < B; b++) {
            const float *X = m->acts.resid + ((size_t)l * B + b) * Lm * D;  /* (L, D) inputs */
            double c, v;
            ssm_status st = ssm_recency_smoothing_one(X, L, D, &c, &v);
            if (st) return st;
            cos_mean[l] += c / B;
            deviation[l] += v / B;
        }
    }
    return SSM_OK;
}
