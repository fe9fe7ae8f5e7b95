/* test_bf16.c — unit tests of bf16 inference weights (engine/bf16.h and
 * SSM_WEIGHTS_BF16 of engine/model.h): rounding to bf16; every matvec path
 * this CPU has against the naive twin and against a float32 product of the
 * widened weights, at sizes that are not multiples of 4, 8, 16 or 32; the
 * threaded product; bf16 logits against float32 ones (prefill, steps,
 * ssm_model_forward_last, ssm_model_forward) on random models and on
 * tests/data/mamba_tiny_torch; the memory split; the refusals; and bad
 * checkpoints giving the float32 loader's messages.  Mamba-2 models the
 * same way: logits, the team's shares, the split, the input-only backward
 * and a checkpoint loaded in bf16.
 *
 * Logit agreement is measured per row as max |a - b| / max |b| (a: bf16,
 * b: float32) and must stay below 1e-2. */
#include <cblas.h>
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/bf16.h"
#include "engine/checkpoint.h"
#include "engine/dynamics.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "tests/rel_err.h"
#include "tests/tmpdir.h"

#define LOGIT_TOL 1e-2

static unsigned rng_state = 777u;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) / 8388608.0 - 1.0);
}

/* max |a - b| over a row relative to max |b| of that row */
/* ------------------------------------------------------------------------ */
/* Rounding                                                                 */

static uint16_t bits_of(float f)
{
    return ssm_bf16_from_f32(f);
}

Test(bf16, rounds_to_nearest_even)
{
    cr_expect_eq(bits_of(1.0f), 0x3f80);
    cr_expect_eq(bits_of(-2.0f), 0xc000);
    cr_expect_eq(bits_of(1.0f + 0x1p-8f), 0x3f80, "halfway, down to even");
    cr_expect_eq(bits_of(1.0f + 3 * 0x1p-8f), 0x3f82, "halfway, up to even");
    cr_expect_eq(bits_of(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81, "past halfway rounds up");
    cr_expect_eq(bits_of(-0.0f), 0x8000);
    cr_expect(ssm_bf16_nonfinite(bits_of(FLT_MAX)), "FLT_MAX is beyond bf16: Inf");
    cr_expect_eq(bits_of(FLT_MAX) & 0x7f, 0, "... Inf, not NaN");
    uint16_t n = bits_of(nanf(""));
    cr_expect(ssm_bf16_nonfinite(n) && (n & 0x7f), "NaN stays NaN: %#x", n);
    uint32_t low_nan_bits = 0x7f800001u;   /* payload in the low half only */
    float low_nan;
    memcpy(&low_nan, &low_nan_bits, 4);
    cr_expect(bits_of(low_nan) & 0x7f, "a NaN whose payload is dropped stays NaN, not Inf");
    for (int i = 0; i < 1000; i++) {   /* widening is exact, rounding is within half a unit */
        float f = frand() * 100.0f;
        float back = ssm_bf16_to_f32(bits_of(f));
        cr_expect_leq(fabsf(back - f), fabsf(f) * 0x1p-8f, "%g -> %g", f, back);
    }
}

/* ------------------------------------------------------------------------ */
/* Matrix-vector products                                                   */

typedef struct {
    int M, K;
    uint16_t *W;   /* (M, K) */
    float *Wf;     /* (M, K) W widened */
    float *x;      /* (K) */
    double *scale; /* (M) sum_k |W x| of each row: the sums' error scale */
} mv_case;

static mv_case mv_make(int M, int K)
{
    mv_case c = {M, K, malloc(sizeof(uint16_t) * ((size_t)M * K + 1)),
                 malloc(sizeof(float) * ((size_t)M * K + 1)), malloc(sizeof(float) * (K + 1)),
                 malloc(sizeof(double) * (M + 1))};
    for (size_t i = 0; i < (size_t)M * K; i++) {
        c.W[i] = ssm_bf16_from_f32(frand());
        c.Wf[i] = ssm_bf16_to_f32(c.W[i]);
    }
    for (int k = 0; k < K; k++) c.x[k] = frand() * 3.0f;
    for (int i = 0; i < M; i++) {
        c.scale[i] = 1e-30;
        for (int k = 0; k < K; k++) c.scale[i] += fabs((double)c.Wf[(size_t)i * K + k] * c.x[k]);
    }
    return c;
}

static void mv_free(mv_case *c)
{
    free(c->W); free(c->Wf); free(c->x); free(c->scale);
}

/* worst |a - b| / scale over the rows */
static double mv_err(const mv_case *c, const float *a, const float *b)
{
    double w = 0.0;
    for (int i = 0; i < c->M; i++) w = fmax(w, fabs((double)a[i] - b[i]) / c->scale[i]);
    return w;
}

static const int mv_sizes[][2] = {{1, 1}, {1, 31}, {3, 7}, {5, 17}, {4, 32}, {6, 33}, {13, 47},
                                   {9, 64}, {37, 100}, {2, 255}, {11, 768}, {7, 1031}, {66, 48}, {5, 9000},
                                   {3, 128}, {37, 48}, {40, 96}, {4, 200}, {2, 1536}, {3, 4096 + 200}};

/* Each path against the naive twin and against OpenBLAS on the widened
 * weights, to float rounding of the sum (relative to sum_k |W x|: 1e-5;
 * 3e-5 for dpbf16, whose x is kept to 2^-17) */
static void check_path(ssm_bf16_path p)
{
    if (!ssm_bf16_path_available(p)) {
        cr_log_warn("this CPU has no %s path: not tested", ssm_bf16_path_name(p));
        return;
    }
    double tol = p == SSM_BF16_DPBF16 ? 3e-5 : 1e-5;
    for (size_t s = 0; s < sizeof mv_sizes / sizeof mv_sizes[0]; s++) {
        mv_case c = mv_make(mv_sizes[s][0], mv_sizes[s][1]);
        float *y = malloc(sizeof(float) * c.M), *yn = malloc(sizeof(float) * c.M),
              *yb = malloc(sizeof(float) * c.M);
        for (int i = 0; i < c.M; i++) y[i] = NAN;
        ssm_bf16_matvec(p, y, c.W, c.x, c.M, c.K);
        ssm_bf16_matvec(SSM_BF16_NAIVE, yn, c.W, c.x, c.M, c.K);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, c.M, c.K, 1.0f, c.Wf, c.K, c.x, 1, 0.0f, yb, 1);
        double e_twin = mv_err(&c, y, yn), e_blas = mv_err(&c, y, yb);
        int r = c.M / 3;   /* a row's sum does not depend on the rows around it (the decode splits rows freely) */
        ssm_bf16_matvec(p, yn, c.W, c.x, r, c.K);
        ssm_bf16_matvec(p, yn + r, c.W + (size_t)r * c.K, c.x, c.M - r, c.K);
        cr_expect(memcmp(y, yn, sizeof(float) * c.M) == 0, "%s %d x %d: rows split at %d changed bits",
                  ssm_bf16_path_name(p), c.M, c.K, r);
        cr_expect(e_twin < tol, "%s %d x %d: vs naive twin %.3g", ssm_bf16_path_name(p), c.M, c.K, e_twin);
        cr_expect(e_blas < tol, "%s %d x %d: vs sgemv of the widened weights %.3g",
                  ssm_bf16_path_name(p), c.M, c.K, e_blas);
        free(y); free(yn); free(yb);
        mv_free(&c);
    }
}

Test(bf16, naive_twin_matches_sgemv) { check_path(SSM_BF16_NAIVE); }
Test(bf16, avx2_matches_twin) { check_path(SSM_BF16_AVX2); }
Test(bf16, avx512_matches_twin) { check_path(SSM_BF16_AVX512); }
Test(bf16, dpbf16_matches_twin) { check_path(SSM_BF16_DPBF16); }

/* The row split over threads changes nothing (each row has its own sums),
 * the bias is added, and forcing a path reaches the threaded product. */
Test(bf16, threaded_product_is_the_single_thread_one)
{
    mv_case c = mv_make(1037, 263);   /* above the threading threshold */
    float *bias = malloc(sizeof(float) * c.M), *y1 = malloc(sizeof(float) * c.M),
          *y2 = malloc(sizeof(float) * c.M);
    for (int i = 0; i < c.M; i++) bias[i] = frand();
    for (ssm_bf16_path p = SSM_BF16_NAIVE; p < SSM_BF16_PATH_COUNT; p++) {
        if (!ssm_bf16_path_available(p)) continue;
        cr_assert_eq(ssm_bf16_path_force(p), SSM_OK, "%s", ssm_last_error());
        cr_expect_eq(ssm_bf16_path_active(), p);
        ssm_threads_set(1);
        ssm_bf16_matvec_par(y1, c.W, c.x, bias, c.M, c.K);
        ssm_threads_set(3);
        ssm_bf16_matvec_par(y2, c.W, c.x, bias, c.M, c.K);
        cr_expect_arr_eq(y1, y2, sizeof(float) * c.M, "%s: 1 and 3 threads differ", ssm_bf16_path_name(p));
        float r0;
        ssm_bf16_matvec(p, &r0, c.W, c.x, 1, c.K);
        cr_expect_eq(y1[0], r0 + bias[0], "%s: bias", ssm_bf16_path_name(p));
    }
    cr_expect_eq(ssm_bf16_path_force(SSM_BF16_AUTO), SSM_OK);
    cr_expect_neq(ssm_bf16_path_active(), SSM_BF16_AUTO, "auto resolves to a path");
    cr_expect_eq(ssm_bf16_path_force((ssm_bf16_path)99), SSM_ERR_USAGE);
    ssm_threads_set(2);
    free(bias); free(y1); free(y2);
    mv_free(&c);
}

/* ------------------------------------------------------------------------ */
/* Models                                                                   */

static ssm_config small_lm(void)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 40; c.n_layer = 2; c.d_state = 5; c.d_conv = 4; c.expand = 2;
    c.vocab_size = 67;
    return c;
}

/* A float32 model with every parameter off its init, and its bf16 copy */
static void build_pair(ssm_model *f, ssm_model *h, ssm_config c)
{
    cr_assert_eq(ssm_model_build(f, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(f, 5);
    for (size_t i = 0; i < f->num_params; i++) f->params_memory[i] += 0.05f * frand();
    for (size_t i = 0; f->params.dt_proj_b && i < (size_t)f->cfg.n_layer * f->cfg.d_inner; i++)
        f->params.dt_proj_b[i] = -0.5f + 0.5f * frand();
    cr_assert_eq(ssm_model_to_bf16(h, f), SSM_OK, "%s", ssm_last_error());
}

/* r = a float32 copy of f whose tensors held in bf16 by h are rounded to
 * bf16: the float32 model that h computes exactly, up to float rounding */
static void build_rounded(ssm_model *r, const ssm_model *f, const ssm_model *h)
{
    cr_assert_eq(ssm_model_build(r, &f->cfg), SSM_OK, "%s", ssm_last_error());
    memcpy(r->params_memory, f->params_memory, sizeof(float) * f->num_params);
    ssm_tensor tr[64], th[64];
    int n = ssm_model_tensors(r, r->params_memory, tr, 64);
    cr_assert_eq(ssm_model_tensors(h, h->params_memory, th, 64), n);
    for (int i = 0; i < n; i++)
        for (size_t j = 0; th[i].bf16 && j < tr[i].numel; j++)
            tr[i].data[j] = ssm_bf16_to_f32(ssm_bf16_from_f32(tr[i].data[j]));
}

/* Prefill n_prompt tokens and step the rest in both models; every logit
 * row and the forward_last and forward logits agree to LOGIT_TOL; and h's
 * own prefill and steps agree with h's forward to 1e-4 (a step error the
 * float32 model shares shows there) */
static double check_logits_tol(ssm_model *f, ssm_model *h, int L, int n_prompt, double tol,
                               const char *what)
{
    int V = f->cfg.padded_vocab;
    float *hrows = malloc(sizeof(float) * (size_t)L * V);   /* (L, V) h's prefill and step rows */
    int *tok = malloc(sizeof(int) * L);
    for (int t = 0; t < L; t++) tok[t] = (int)((frand() + 1.0f) * 0.5f * f->cfg.vocab_size);
    ssm_gen_state sf, sh;
    cr_assert_eq(ssm_gen_state_build(&sf, f), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_gen_state_build(&sh, h), SSM_OK, "%s", ssm_last_error());
    float *lf = malloc(sizeof(float) * V), *lh = malloc(sizeof(float) * V);
    cr_assert_eq(ssm_model_prefill(f, &sf, tok, n_prompt, lf), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_prefill(h, &sh, tok, n_prompt, lh), SSM_OK, "%s", ssm_last_error());
    double worst = row_rel_err(lh, lf, V);
    cr_expect(worst < tol, "%s: prefill logits rel err %.3g", what, worst);
    memcpy(hrows + (size_t)(n_prompt - 1) * V, lh, sizeof(float) * V);
    for (int t = n_prompt; t < L; t++) {
        cr_assert_eq(ssm_model_step(f, &sf, tok[t], lf), SSM_OK, "%s", ssm_last_error());
        cr_assert_eq(ssm_model_step(h, &sh, tok[t], lh), SSM_OK, "%s", ssm_last_error());
        double e = row_rel_err(lh, lf, V);
        cr_expect(e < tol, "%s: step %d logits rel err %.3g", what, t, e);
        worst = fmax(worst, e);
        memcpy(hrows + (size_t)t * V, lh, sizeof(float) * V);
    }
    ssm_batch b = {1, L, tok, NULL, NULL};
    cr_assert_eq(ssm_model_forward_last(f, &b), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_forward_last(h, &b), SSM_OK, "%s", ssm_last_error());
    double e = row_rel_err(h->acts.logits, f->acts.logits, V);
    cr_expect(e < tol, "%s: forward_last rel err %.3g", what, e);
    worst = fmax(worst, e);
    cr_assert_eq(ssm_model_forward(f, &b), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_forward(h, &b), SSM_OK, "%s", ssm_last_error());
    for (int t = 0; t < L; t++) {
        e = row_rel_err(h->acts.logits + (size_t)t * V, f->acts.logits + (size_t)t * V, V);
        cr_expect(e < tol, "%s: forward position %d rel err %.3g", what, t, e);
        worst = fmax(worst, e);
    }
    for (int t = n_prompt - 1; t < L; t++) {
        e = row_rel_err(hrows + (size_t)t * V, h->acts.logits + (size_t)t * V, V);
        cr_expect(e < 1e-4, "%s: position %d, the bf16 step off the bf16 forward by %.3g", what, t, e);
    }
    free(lf); free(lh); free(tok); free(hrows);
    ssm_gen_state_free(&sf);
    ssm_gen_state_free(&sh);
    return worst;
}

static void check_logits(ssm_model *f, ssm_model *h, int L, int n_prompt, const char *what)
{
    double e = check_logits_tol(f, h, L, n_prompt, LOGIT_TOL, what);
    cr_log_info("%s (matvec %s): worst logit rel err %.3g", what,
                ssm_bf16_path_name(ssm_bf16_path_active()), e);
}

/* h against f (LOGIT_TOL), and against f's weights rounded to bf16 in
 * float32, which it must match far more closely (1e-4): a kernel or
 * view error cannot hide in the rounding's 1e-2 */
static void check_logits_both(ssm_model *f, ssm_model *h, int L, int n_prompt, const char *what)
{
    ssm_model r;
    build_rounded(&r, f, h);
    check_logits(f, h, L, n_prompt, what);
    double e = check_logits_tol(&r, h, L, n_prompt, 1e-4, what);
    cr_log_info("%s (matvec %s): against the rounded float32 weights %.3g", what,
                ssm_bf16_path_name(ssm_bf16_path_active()), e);
    ssm_model_free(&r);
}

/* every path this CPU has, then back to auto */
static void check_logits_all_paths(ssm_config c, int L, int n_prompt, const char *what)
{
    ssm_model f, h;
    build_pair(&f, &h, c);
    for (ssm_bf16_path p = SSM_BF16_NAIVE; p < SSM_BF16_PATH_COUNT; p++) {
        if (!ssm_bf16_path_available(p)) continue;
        cr_assert_eq(ssm_bf16_path_force(p), SSM_OK);
        check_logits_both(&f, &h, L, n_prompt, what);
    }
    ssm_bf16_path_force(SSM_BF16_AUTO);
    ssm_model_free(&f);
    ssm_model_free(&h);
}

Test(bf16_model, logits_match_f32_tied)
{
    check_logits_all_paths(small_lm(), 12, 5, "tied head");
}

Test(bf16_model, logits_match_f32_untied_odd_sizes)
{
    ssm_config c = small_lm();
    c.d_model = 37; c.d_state = 3; c.d_conv = 3; c.vocab_size = 101; c.tie_embeddings = 0;
    check_logits_all_paths(c, 9, 1, "untied head, odd sizes");
}

Test(bf16_model, logits_match_f32_scenario_keeps_x_proj_f32)
{
    ssm_config c = small_lm();
    c.scenario = SSM_SCENARIO_NEGATIVE;
    c.polarize = SSM_POLARIZE_BOTH;
    ssm_model f, h;
    build_pair(&f, &h, c);
    cr_expect_null(h.wbf.x_proj, "under a scenario x_proj is float32");
    cr_expect_not_null(h.params.x_proj);
    check_logits_both(&f, &h, 10, 4, "scenario negative, polarize both");
    ssm_model_free(&f);
    ssm_model_free(&h);
}

Test(bf16_model, threaded_logits_match_f32)
{
    ssm_config c = small_lm();
    /* products above the threading threshold; the forward's head widens
     * 1024 rows at a time: two blocks and a part */
    c.d_model = 256; c.vocab_size = 2100;
    ssm_threads_set(2);
    check_logits_all_paths(c, 6, 3, "threaded");
}

/* The team's shares of a bf16 product (and Mamba-2's heads) follow the
 * threads' speeds; skewed speeds move rows between threads but not a bit
 * of the logits, and a second run at even speeds repeats the first. */
static void check_skewed_shares(ssm_config c, int bf16, const char *what)
{
    ssm_model f, h;
    build_pair(&f, &h, c);
    ssm_model *m = bf16 ? &h : &f;
    ssm_threads_set(2);
    int V = m->cfg.padded_vocab;
    float *even = malloc(sizeof(float) * V), *skew = malloc(sizeof(float) * V),
          *again = malloc(sizeof(float) * V);
    ssm_gen_state a, b, r;
    cr_assert_eq(ssm_gen_state_build(&a, m), SSM_OK);
    cr_assert_eq(ssm_gen_state_build(&b, m), SSM_OK);
    cr_assert_eq(ssm_gen_state_build(&r, m), SSM_OK);
    for (int t = 0; t < 5; t++) {
        int tok = (t * 131 + 7) % c.vocab_size;
        for (int ph = 0; ph < SSM_GEN_PHASES; ph++) {
            ssm_balance_reset(&a.balance[ph]);                                 /* even */
            ssm_balance_reset(&r.balance[ph]);
            b.balance[ph].speed[0] = (t + ph) % 2 ? 0.13 : 1.87;               /* far off even */
            b.balance[ph].speed[1] = 2.0 - b.balance[ph].speed[0];
        }
        cr_assert_eq(ssm_model_step(m, &a, tok, even), SSM_OK);
        cr_assert_eq(ssm_model_step(m, &b, tok, skew), SSM_OK);
        cr_assert_eq(ssm_model_step(m, &r, tok, again), SSM_OK);
        cr_expect(memcmp(even, skew, sizeof(float) * V) == 0, "%s, token %d: skewed shares changed the logits",
                  what, t);
        cr_expect(memcmp(even, again, sizeof(float) * V) == 0, "%s, token %d: two even runs differ", what, t);
    }
    ssm_gen_state_free(&a);
    ssm_gen_state_free(&b);
    ssm_gen_state_free(&r);
    free(even); free(skew); free(again);
    ssm_model_free(&f);
    ssm_model_free(&h);
}

Test(bf16_model, skewed_team_shares_give_the_same_bits)
{
    ssm_config c = small_lm();
    c.d_model = 256; c.vocab_size = 700;
    check_skewed_shares(c, 1, "mamba1 bf16");
}

/* The large matrices leave the float32 block for the bf16 one: the counts
 * add up, the float32 block keeps only the small tensors, every tensor has
 * one view, and n16 of them (per_layer a layer and the two heads) are bf16 */
static void check_split(const ssm_model *f, const ssm_model *h, int per_layer)
{
    cr_expect_eq(h->weights, SSM_WEIGHTS_BF16);
    cr_expect_eq(h->num_params + h->num_bf16, f->num_params);
    cr_expect_lt(h->num_params * 10, f->num_params, "float32 block %zu of %zu", h->num_params, f->num_params);
    ssm_tensor t[64];
    int n = ssm_model_tensors(h, h->params_memory, t, 64), n16 = 0;
    for (int i = 0; i < n; i++) {
        cr_expect(!t[i].data != !t[i].bf16, "%s: one view", t[i].name);
        n16 += t[i].bf16 != NULL;
    }
    cr_expect_eq(n16, 2 + per_layer * h->cfg.n_layer, "embedding, lm_head and %d matrices per layer", per_layer);
}

Test(bf16_model, memory_is_split)
{
    ssm_config c = small_lm();
    c.tie_embeddings = 0;
    ssm_model f, h;
    build_pair(&f, &h, c);
    check_split(&f, &h, 4);
    cr_expect_null(h.params.embedding);
    cr_expect_null(h.params.in_proj);
    cr_expect_null(h.params.x_proj);
    cr_expect_null(h.params.dt_proj_w);
    cr_expect_null(h.params.out_proj);
    cr_expect_null(h.params.lm_head);
    cr_expect_not_null(h.wbf.lm_head);
    cr_expect_not_null(h.params.A_log);
    cr_expect_eq(ssm_weights_parse("bf16"), SSM_WEIGHTS_BF16);
    cr_expect_eq(ssm_weights_parse("f16"), -1);
    cr_expect_str_eq(ssm_weights_name(SSM_WEIGHTS_F32), "f32");
    ssm_model_free(&f);
    ssm_model_free(&h);
}

Test(bf16_model, training_and_saving_are_refused, .init = tmpdir_make, .fini = tmpdir_remove)
{
    ssm_model f, h;
    build_pair(&f, &h, small_lm());
    cr_expect_eq(ssm_model_alloc_grads(&h), SSM_ERR_USAGE);
    cr_expect_not_null(strstr(ssm_last_error(), "bf16"), "%s", ssm_last_error());
    cr_expect_null(h.grads_memory);
    int tok[4] = {1, 2, 3, 4}, tgt[4] = {2, 3, 4, 5};
    ssm_batch b = {1, 4, tok, NULL, tgt};
    cr_assert_eq(ssm_model_forward(&h, &b), SSM_OK, "%s", ssm_last_error());
    cr_expect(isfinite(h.loss) && h.loss > 0.0f);
    cr_expect_eq(ssm_model_backward(&h, 1.0f), SSM_ERR_USAGE);
    cr_expect_not_null(strstr(ssm_last_error(), "float32 weights"), "%s", ssm_last_error());
    cr_expect_eq(ssm_model_backward_stream(&h, NULL, NULL), SSM_ERR_SOFTWARE, "no kept activations");
    cr_expect_eq(ssm_checkpoint_save(tmpdir, &h, NULL, NULL), SSM_ERR_USAGE);
    cr_expect_eq(access(tmpdir_path("model.safetensors"), F_OK), -1, "nothing written");
    ssm_model g;
    cr_expect_eq(ssm_model_build_weights(&g, &f.cfg, 7), SSM_ERR_USAGE);
    ssm_model_free(&g);
    ssm_model_free(&f);
    ssm_model_free(&h);
}

/* ------------------------------------------------------------------------ */
/* Input-only backward                                                      */

/* dx0 (B, L, D) = the backward of m from dxn after a forward on b */
static void stream_backward(ssm_model *m, const ssm_batch *b, const float *dxn, float *dx0)
{
    cr_assert_eq(ssm_model_forward(m, b), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_backward_stream(m, dxn, dx0), SSM_OK, "%s", ssm_last_error());
}

/* The input-only backward of the bf16 copy h equals the full backward
 * (with parameter gradients) of r, the float32 model on h's weights
 * rounded to bf16, to 1e-5 of the largest |dx0| (it is the same floats
 * through the same GEMMs: bitwise here); and a float32 input-only
 * backward equals r's full one bit for bit */
static void check_input_only(ssm_config c, int B, int L, const char *what)
{
    ssm_model f, h, r, q;
    build_pair(&f, &h, c);
    build_rounded(&r, &f, &h);
    build_rounded(&q, &f, &h);
    size_t n = (size_t)B * L * f.cfg.d_model;
    size_t nin = (size_t)B * L * (c.d_input > 0 ? c.d_input : 1);
    int *tok = malloc(sizeof(int) * B * L);
    float *dxn = malloc(sizeof(float) * (n * 4 + nin)), *dr = dxn + n, *dh = dr + n, *dq = dh + n,
          *in = dq + n;
    cr_assert(tok && dxn);
    for (int i = 0; i < B * L; i++) tok[i] = (i * 7 + 3) % c.vocab_size;
    for (size_t i = 0; i < nin; i++) in[i] = frand();
    for (size_t i = 0; i < n; i++) dxn[i] = frand();
    int tokens = c.input_kind == SSM_INPUT_TOKENS;
    ssm_batch b = {B, L, tokens ? tok : NULL, tokens ? NULL : in, NULL};
    cr_assert_eq(ssm_model_alloc_grads(&r), SSM_OK);
    cr_assert_eq(ssm_model_keep_acts(&h), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_keep_acts(&q), SSM_OK);
    stream_backward(&r, &b, dxn, dr);
    stream_backward(&h, &b, dxn, dh);
    stream_backward(&q, &b, dxn, dq);
    cr_expect_null(h.grads_memory, "%s: no parameter gradients", what);
    double err = row_rel_err(dh, dr, (int)n);
    cr_expect_leq(err, 1e-5, "%s: bf16 input-only backward off the rounded float32 one by %g", what, err);
    cr_expect_eq(memcmp(dq, dr, sizeof(float) * n), 0, "%s: float32 input-only = full backward", what);
    double any = 0.0;
    for (size_t i = 0; i < n; i++) any = fmax(any, fabs(dr[i] - dxn[i]));
    cr_expect_gt(any, 1e-3, "%s: the layers change the gradient", what);
    free(tok); free(dxn);
    ssm_model_free(&f); ssm_model_free(&h); ssm_model_free(&r); ssm_model_free(&q);
}

Test(bf16_model, input_only_backward_equals_f32_on_rounded_weights)
{
    ssm_config c = small_lm();
    check_input_only(c, 1, 9, "tied, batch 1");
    c.tie_embeddings = 0;
    check_input_only(c, 2, 7, "untied, batch 2");
    c.scenario = SSM_SCENARIO_NEGATIVE;
    c.polarize = SSM_POLARIZE_BOTH;
    check_input_only(c, 1, 6, "scenario negative, polarize both");
    c = small_lm();
    c.input_kind = SSM_INPUT_CONTINUOUS;
    c.d_input = 3;
    c.n_classes = 4;
    check_input_only(c, 2, 8, "classifier");
    c.reorder = SSM_REORDER_SOFT;
    check_input_only(c, 2, 8, "classifier, soft reordering");
    c.reorder = SSM_REORDER_HARD;
    check_input_only(c, 1, 8, "classifier, hard reordering");
    ssm_threads_set(2);
    check_input_only(small_lm(), 2, 12, "2 threads");
    ssm_threads_set(1);
}

/* ------------------------------------------------------------------------ */
/* Mamba-2                                                                  */

/* A Mamba-2 language model: E 80, 10 heads of 8 in 2 groups, chunks of 4 */
static ssm_config small_mamba2(void)
{
    ssm_config c = small_lm();
    c.arch = SSM_ARCH_MAMBA2;
    c.head_dim = 8; c.n_groups = 2; c.chunk_size = 4;
    return c;
}

/* prefill, steps, forward_last and forward, on every path this CPU has.
 * d_model 128: at small_mamba2's 40 the weights' rounding alone moved a
 * logit by up to 1.13e-2 of the row (at steps 8-10, against 1e-6 from the
 * float32 model on the rounded weights); at 128 and 256 it stays under
 * 9e-3, as Mamba-1's tests do at 40 */
Test(bf16_mamba2, logits_match_f32)
{
    ssm_config c = small_mamba2();
    c.d_model = 128; c.head_dim = 16;
    check_logits_all_paths(c, 12, 5, "mamba2 tied, 2 groups");
    c.tie_embeddings = 0; c.n_groups = 1; c.d_conv = 3; c.n_layer = 3; c.vocab_size = 101;
    check_logits_all_paths(c, 11, 6, "mamba2 untied, 1 group");
    c.polarize = SSM_POLARIZE_BOTH;   /* 10 + 2 heads */
    check_logits_all_paths(c, 9, 4, "mamba2 polarize both");
}

/* a team of 2: in_proj, out_proj and the head split by speed, the heads
 * too, the conv by channels and the gated norm by groups */
Test(bf16_mamba2, threaded_logits_match_f32)
{
    ssm_config c = small_mamba2();
    c.d_model = 256; c.vocab_size = 2100; c.d_state = 16; c.head_dim = 32; c.n_groups = 4;
    ssm_threads_set(2);
    check_logits_all_paths(c, 6, 3, "mamba2 threaded");
    ssm_threads_set(1);
}

Test(bf16_mamba2, skewed_team_shares_give_the_same_bits)
{
    ssm_config c = small_mamba2();
    c.d_model = 256; c.vocab_size = 700; c.d_state = 16; c.head_dim = 32; c.n_groups = 4;
    check_skewed_shares(c, 1, "mamba2 bf16, 4 groups");
    check_skewed_shares(c, 0, "mamba2 f32, 4 groups");
    c.n_groups = 1;
    check_skewed_shares(c, 1, "mamba2 bf16, 1 group");
}

/* in_proj, out_proj, the embedding and the head go to bf16; the mixer's
 * small tensors stay float32 */
Test(bf16_mamba2, memory_is_split)
{
    ssm_config c = small_mamba2();
    c.tie_embeddings = 0;
    ssm_model f, h;
    build_pair(&f, &h, c);
    check_split(&f, &h, 2);
    cr_expect_null(h.params.m2_in_proj);
    cr_expect_null(h.params.out_proj);
    cr_expect_null(h.params.embedding);
    cr_expect_null(h.params.lm_head);
    cr_expect_null(h.wbf.in_proj, "Mamba-1's matrices are absent");
    cr_expect_null(h.wbf.x_proj);
    cr_expect_null(h.wbf.dt_proj_w);
    cr_expect_not_null(h.params.m2_conv_w);
    cr_expect_not_null(h.params.m2_norm_w);
    ssm_model_free(&f);
    ssm_model_free(&h);
}

/* The measurements' backward: input-only, on the widened matrices */
Test(bf16_mamba2, input_only_backward_equals_f32_on_rounded_weights)
{
    ssm_config c = small_mamba2();
    check_input_only(c, 1, 9, "mamba2 tied, batch 1");
    c.tie_embeddings = 0; c.n_groups = 1; c.polarize = SSM_POLARIZE_BOTH;
    check_input_only(c, 2, 7, "mamba2 untied, polarized, batch 2");
    ssm_threads_set(2);
    check_input_only(small_mamba2(), 2, 12, "mamba2 2 threads");
    ssm_threads_set(1);
}

/* The per-group spectrum reads in_proj's B and C rows: in a bf16 model
 * widened, so it is the rounded float32 model's, bit for bit */
Test(bf16_mamba2, spectrum_is_the_rounded_models)
{
    ssm_config c = small_mamba2();
    c.n_groups = 2; c.n_layer = 3;
    ssm_model f, h, r;
    build_pair(&f, &h, c);
    build_rounded(&r, &f, &h);
    ssm_spectrum sh, sr;
    cr_assert_eq(ssm_dynamics_spectrum(&h, &sh), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_dynamics_spectrum(&r, &sr), SSM_OK, "%s", ssm_last_error());
    size_t n = (size_t)c.n_layer * c.n_groups * c.d_state;
    cr_expect_arr_eq(sh.re, sr.re, sizeof(double) * n);
    cr_expect_arr_eq(sh.im, sr.im, sizeof(double) * n);
    ssm_spectrum_free(&sh);
    ssm_spectrum_free(&sr);
    ssm_model_free(&f); ssm_model_free(&h); ssm_model_free(&r);
}

/* A saved float32 Mamba-2 checkpoint loads into bf16 as the rounded
 * weights, straight into the bf16 block */
Test(bf16_mamba2, checkpoint_loads_like_the_copy, .init = tmpdir_make, .fini = tmpdir_remove)
{
    ssm_config c = small_mamba2();
    c.tie_embeddings = 0;
    ssm_model f, h, g;
    build_pair(&f, &h, c);
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &f, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_checkpoint_load_as(tmpdir, &g, NULL, SSM_WEIGHTS_BF16), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(ssm_checkpoint_default_weights(tmpdir), SSM_WEIGHTS_BF16, "bf16 by default");
    cr_assert_eq(g.num_bf16, h.num_bf16);
    cr_expect_arr_eq(g.wbf_memory, h.wbf_memory, sizeof(uint16_t) * h.num_bf16);
    cr_expect_arr_eq(g.params_memory, h.params_memory, sizeof(float) * h.num_params);
    check_logits(&f, &g, 10, 4, "mamba2 checkpoint in bf16");
    cr_expect_eq(ssm_checkpoint_save(tmpdir, &g, NULL, NULL), SSM_ERR_USAGE, "bf16 is not saved");
    cr_expect_eq(ssm_model_alloc_grads(&g), SSM_ERR_USAGE, "nor trained");
    ssm_model_free(&f);
    ssm_model_free(&h);
    ssm_model_free(&g);
}

/* A model on another's weights (ssm_model_share_weights), float32 and bf16,
 * under a scenario (the forward rewrites x_proj's B and C rows in the
 * shared block): the owner's logits bit for bit, the input-only backward
 * of its own activations, its own gradients when asked; freeing it leaves
 * the owner's weights (ASan's build would see a double free). */
Test(bf16_model, a_model_on_shared_weights_computes_the_owners_bits)
{
    ssm_config c = small_lm();
    c.scenario = SSM_SCENARIO_NEGATIVE;
    ssm_model f, h;
    build_pair(&f, &h, c);
    int T = 9, tokens[9];
    for (int t = 0; t < T; t++) tokens[t] = (t * 7 + 3) % c.vocab_size;
    ssm_batch b = {.B = 1, .L = T, .tokens = tokens};
    ssm_model *owners[2] = {&f, &h};
    for (int k = 0; k < 2; k++) {
        ssm_model *o = owners[k], s;
        cr_assert_eq(ssm_model_share_weights(&s, o), SSM_OK, "%s", ssm_last_error());
        cr_expect(s.shares_weights && s.params_memory == o->params_memory && s.wbf_memory == o->wbf_memory);
        cr_expect_eq(s.num_params, o->num_params);
        cr_assert_eq(ssm_model_keep_acts(&s), SSM_OK, "%s", ssm_last_error());
        if (k == 0) cr_assert_eq(ssm_model_alloc_grads(&s), SSM_OK, "float32: its own gradients");
        cr_assert_eq(ssm_model_forward(&s, &b), SSM_OK, "%s", ssm_last_error());
        cr_assert_eq(ssm_model_forward(o, &b), SSM_OK, "%s", ssm_last_error());
        size_t nl = (size_t)T * o->cfg.padded_vocab;
        cr_expect_arr_eq(s.acts.logits, o->acts.logits, sizeof(float) * nl, "%s: the owner's logits",
                         ssm_weights_name(o->weights));
        float *dxn = calloc((size_t)T * c.d_model, sizeof(float)), *dx0 = calloc((size_t)T * c.d_model, sizeof(float));
        for (int i = 0; i < T * c.d_model; i++) dxn[i] = frand();
        cr_expect_eq(ssm_model_backward_stream(&s, dxn, dx0), SSM_OK, "%s", ssm_last_error());
        free(dxn);
        free(dx0);
        ssm_model_free(&s);
        cr_assert_eq(ssm_model_forward(o, &b), SSM_OK, "the owner runs on after its sharer is freed");
    }
    cr_expect_eq(ssm_model_share_weights(&(ssm_model){0}, &(ssm_model){0}), SSM_ERR_USAGE, "no weights to share");
    ssm_model_free(&f);
    ssm_model_free(&h);
}

/* ------------------------------------------------------------------------ */
/* Checkpoints                                                              */

/* The fixture, a mamba_ssm pytorch_model.bin: bf16 against float32 */
Test(bf16_checkpoint, fixture_logits_match_f32)
{
    ssm_model f, h;
    const char *dir = "tests/data/mamba_tiny_torch";
    cr_assert_eq(ssm_checkpoint_load_as(dir, &f, NULL, SSM_WEIGHTS_F32), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_checkpoint_load_as(dir, &h, NULL, SSM_WEIGHTS_BF16), SSM_OK, "%s", ssm_last_error());
    cr_expect_gt(h.num_bf16, 0);
    for (ssm_bf16_path p = SSM_BF16_NAIVE; p < SSM_BF16_PATH_COUNT; p++) {
        if (!ssm_bf16_path_available(p)) continue;
        cr_assert_eq(ssm_bf16_path_force(p), SSM_OK);
        check_logits(&f, &h, 16, 7, "mamba_tiny_torch");
    }
    ssm_bf16_path_force(SSM_BF16_AUTO);
    ssm_model_free(&f);
    ssm_model_free(&h);
}

/* A saved float32 checkpoint loads into bf16 as the rounded weights */
Test(bf16_checkpoint, load_rounds_like_the_copy, .init = tmpdir_make, .fini = tmpdir_remove)
{
    ssm_model f, h, g;
    build_pair(&f, &h, small_lm());
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &f, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_checkpoint_load_as(tmpdir, &g, NULL, SSM_WEIGHTS_BF16), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(g.num_bf16, h.num_bf16);
    cr_expect_arr_eq(g.wbf_memory, h.wbf_memory, sizeof(uint16_t) * h.num_bf16);
    cr_expect_arr_eq(g.params_memory, h.params_memory, sizeof(float) * h.num_params);
    ssm_model_free(&f);
    ssm_model_free(&h);
    ssm_model_free(&g);
}

/* Load tmpdir in both formats: both fail with the same status and message */
static void expect_same_failure(const char *what, const char *needle)
{
    ssm_model m;
    ssm_status s32 = ssm_checkpoint_load_as(tmpdir, &m, NULL, SSM_WEIGHTS_F32);
    char msg32[SSM_ERROR_CAP];
    snprintf(msg32, sizeof msg32, "%s", ssm_last_error());
    ssm_status s16 = ssm_checkpoint_load_as(tmpdir, &m, NULL, SSM_WEIGHTS_BF16);
    cr_expect_neq(s16, SSM_OK, "%s: bf16 load succeeded", what);
    cr_expect_eq(s16, s32, "%s: status %s (bf16) vs %s (f32)", what, ssm_status_name(s16),
                 ssm_status_name(s32));
    cr_expect_str_eq(ssm_last_error(), msg32, "%s", what);
    cr_expect_not_null(strstr(msg32, needle), "%s: \"%s\" lacks \"%s\"", what, msg32, needle);
    cr_log_info("%s: %s", what, msg32);
}

Test(bf16_checkpoint, bad_checkpoints_give_the_f32_messages, .init = tmpdir_make, .fini = tmpdir_remove)
{
    ssm_model f, h;
    build_pair(&f, &h, small_lm());
    ssm_model_free(&h);
    /* a misshapen tensor: config.json says d_model 48 */
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &f, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    ssm_config c = f.cfg;
    c.d_model = 48;
    c.dt_rank = 0;
    cr_assert_eq(ssm_config_write_json(tmpdir_path("config.json"), &c), SSM_OK, "%s", ssm_last_error());
    expect_same_failure("misshapen", "has shape");
    /* a truncated file */
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &f, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    struct stat sb;
    cr_assert_eq(stat(tmpdir_path("model.safetensors"), &sb), 0);
    cr_assert_eq(truncate(tmpdir_path("model.safetensors"), sb.st_size - 100), 0);
    expect_same_failure("truncated", "model.safetensors");
    /* NaN in a matrix that goes to bf16 */
    f.params.in_proj[3] = NAN;
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &f, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    ssm_model m;
    cr_expect_eq(ssm_checkpoint_load_as(tmpdir, &m, NULL, SSM_WEIGHTS_BF16), SSM_ERR_DATA);
    cr_expect_not_null(strstr(ssm_last_error(), "'backbone.layers.0.mixer.in_proj.weight' holds NaN at element 3"),
                       "%s", ssm_last_error());
    /* a float32 value beyond bf16's range: fine in float32, Inf in bf16 */
    f.params.in_proj[3] = FLT_MAX;
    cr_assert_eq(ssm_checkpoint_save(tmpdir, &f, NULL, NULL), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_checkpoint_load_as(tmpdir, &m, NULL, SSM_WEIGHTS_F32), SSM_OK, "%s", ssm_last_error());
    ssm_model_free(&m);
    cr_expect_eq(ssm_checkpoint_load_as(tmpdir, &m, NULL, SSM_WEIGHTS_BF16), SSM_ERR_DATA);
    cr_expect_not_null(strstr(ssm_last_error(), "holds Inf at element 3 (read as bf16)"), "%s", ssm_last_error());
    ssm_model_free(&f);
}
