/* test_scan.c — Criterion tests of engine/scan.c: fast scan (every path the
 * CPU runs: avx2, avx512) and conv (plain and fused with the SiLU) against
 * their naive twins (forward and backward, odd shapes), the avx512 scan
 * backward against the avx2 one, finite differences of the naive backwards
 * and of the fast scan backward on every path, token-by-token steps against
 * the full forward, thread-count determinism of the fast backwards (the
 * scan's on every path), and the fast exp (reached through the public
 * kernels) against libm. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/scan.h"
#include "engine/vmath.h"
#include "tests/rng.h"

static float *fill_normal(float *p, size_t n, double mean, double sd)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(mean + sd * rng_normal());
    return p;
}

static float *fill_const(float *p, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        p[i] = v;
    return p;
}

static float *falloc(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    cr_assert(p, "out of memory");
    return p;
}

/* ------------------------------------------------------------------ */
/* comparisons                                                           */

static double rms(const float *p, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)p[i] * p[i];
    return n ? sqrt(s / n) : 0.0;
}

/* max_i |got - ref| / (|ref| + rms(ref)): relative error, with the tensor's
 * scale as the floor for entries near zero. */
static double rel_err(const float *got, const float *ref, size_t n)
{
    const double floor_ = rms(ref, n) + 1e-30;
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - ref[i]) / (fabs(ref[i]) + floor_);
        if (!(d <= worst)) /* NaN counts as the worst */
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

#define EXPECT_CLOSE(got, ref, n, tol, what)                                 \
    do {                                                                     \
        const double e_ = rel_err((got), (ref), (n));                        \
        cr_expect(e_ <= (tol), "%s: relative error %.3g > %.3g", (what),     \
                  e_, (double)(tol));                                        \
    } while (0)

/* ------------------------------------------------------------------ */
/* scan problems                                                         */

/* A scan problem with realistic values; B_t, C_t live inside an xdbl-like
 * buffer [delta_raw (R) | B (N) | C (N)] so ld_bc > N is exercised. */
typedef struct {
    ssm_scan_args a;
    int R, ld;
    float *u;     /* (B, L, E) ~ N(0,1) */
    float *delta; /* (B, L, E) softplus(N(0,1)) in (1e-3, 2) */
    float *xdbl;  /* (B, L, R+2N) ~ N(0,1) */
    float *A;     /* (E, N) -(n+1) with a 10% per-channel jitter */
    float *D;     /* (E) ~ 1 */
    float *dy;    /* (B, L, E) ~ N(0,1) */
} scase;

static void scase_build(scase *c, int B, int L, int E, int N, uint64_t seed)
{
    const size_t BLE = (size_t)B * L * E;
    rng_seed(seed);
    c->R = 3;
    c->ld = c->R + 2 * N;
    c->u = fill_normal(falloc(BLE), BLE, 0.0, 1.0);
    c->delta = falloc(BLE);
    for (size_t i = 0; i < BLE; i++) {
        const double sp = log1p(exp(rng_normal()));
        c->delta[i] = (float)fmin(fmax(sp, 1e-3), 2.0);
    }
    c->xdbl = fill_normal(falloc((size_t)B * L * c->ld), (size_t)B * L * c->ld, 0, 1);
    c->A = falloc((size_t)E * N);
    for (int e = 0; e < E; e++)
        for (int n = 0; n < N; n++)
            c->A[e * N + n] = (float)-exp(log(n + 1.0) + 0.1 * rng_normal());
    c->D = fill_normal(falloc(E), E, 1.0, 0.1);
    c->dy = fill_normal(falloc(BLE), BLE, 0.0, 1.0);
    c->a = (ssm_scan_args){ .B = B, .L = L, .E = E, .N = N, .u = c->u,
                            .delta = c->delta, .Bm = c->xdbl + c->R,
                            .Cm = c->xdbl + c->R + N, .ld_bc = c->ld,
                            .A = c->A, .Dskip = c->D };
}

static void scase_free(scase *c)
{
    free(c->u); free(c->delta); free(c->xdbl); free(c->A); free(c->D); free(c->dy);
}

/* Gradients of one backward call.  dx has xdbl's layout; the R columns get
 * a sentinel that the kernels must leave alone; dA, dD start non-zero to
 * check that they are accumulated. */
typedef struct {
    float *du, *ddelta; /* (B, L, E) */
    float *dx;          /* (B, L, R+2N): dB at column R, dC at R+N */
    float *dA;          /* (E, N) */
    float *dD;          /* (E) */
} sgrads;

static const float SENTINEL = 7.0f;

static void sgrads_build(sgrads *g, const scase *c)
{
    const ssm_scan_args *a = &c->a;
    const size_t BLE = (size_t)a->B * a->L * a->E;
    g->du = fill_const(falloc(BLE), BLE, -1.0f);
    g->ddelta = fill_const(falloc(BLE), BLE, -1.0f);
    g->dx = fill_const(falloc((size_t)a->B * a->L * c->ld), (size_t)a->B * a->L * c->ld, SENTINEL);
    g->dA = fill_const(falloc((size_t)a->E * a->N), (size_t)a->E * a->N, 0.5f);
    g->dD = fill_const(falloc(a->E), a->E, 0.25f);
}

static void sgrads_free(sgrads *g)
{
    free(g->du); free(g->ddelta); free(g->dx); free(g->dA); free(g->dD);
}

static void scan_bwd(const scase *c, sgrads *g, int fast)
{
    const int N = c->a.N;
    ssm_status st = (fast ? ssm_scan_backward : ssm_scan_backward_naive)(
        &c->a, c->dy, g->du, g->ddelta, g->dx + c->R, g->dx + c->R + N,
        g->dA, g->dD);
    cr_assert_eq(st, SSM_OK, "scan backward: %s", ssm_last_error());
}

static int sgrads_equal(const sgrads *x, const sgrads *y, const scase *c)
{
    const ssm_scan_args *a = &c->a;
    const size_t BLE = (size_t)a->B * a->L * a->E, BL = (size_t)a->B * a->L;
    return !memcmp(x->du, y->du, BLE * sizeof(float))
        && !memcmp(x->ddelta, y->ddelta, BLE * sizeof(float))
        && !memcmp(x->dx, y->dx, BL * c->ld * sizeof(float))
        && !memcmp(x->dA, y->dA, (size_t)a->E * a->N * sizeof(float))
        && !memcmp(x->dD, y->dD, (size_t)a->E * sizeof(float));
}

static const int SHAPES[][4] = { /* B, L, E, N */
    {1, 1, 8, 16},  {1, 7, 37, 5},  {3, 33, 37, 12}, {3, 33, 16, 16},
    {1, 33, 37, 16}, {3, 7, 8, 5},  {2, 17, 9, 17},  {3, 1, 37, 12},
    {1, 64, 3, 1},  {2, 5, 11, 256}, {2, 9, 300, 5}, /* E > 256: blocks grouped */
    {2, 15, 47, 16}, {1, 9, 33, 16}, {2, 3, 17, 255}, /* 16-channel blocks with tails */
};

/* The scan paths this CPU runs (ssm_scan_isa_set), each in turn. */
static int scan_paths(ssm_scan_isa out[2])
{
    int n = 0;
    for (int isa = SSM_SCAN_ISA_AVX2; isa <= SSM_SCAN_ISA_AVX512; isa++)
        if (ssm_scan_isa_supported((ssm_scan_isa)isa))
            out[n++] = (ssm_scan_isa)isa;
    return n;
}

static void scan_path_use(ssm_scan_isa isa)
{
    cr_assert_eq(ssm_scan_isa_set(isa), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_scan_isa_get(), isa);
}
#define NSHAPES (sizeof SHAPES / sizeof SHAPES[0])

/* ------------------------------------------------------------------ */
/* scan: fast against naive                                              */

/* Every path against the naive twin, with h_last too. */
Test(scan, forward_fast_matches_naive)
{
    ssm_scan_isa paths[2];
    const int npath = scan_paths(paths);
    for (int p = 0; p < npath; p++)
        for (size_t s = 0; s < NSHAPES; s++) {
            scase c;
            scan_path_use(paths[p]);
            scase_build(&c, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], SHAPES[s][3], 100 + s);
            const size_t BLE = (size_t)c.a.B * c.a.L * c.a.E, BEN = (size_t)c.a.B * c.a.E * c.a.N;
            float *yf = falloc(BLE), *yn = falloc(BLE); /* (B, L, E) */
            float *hf = falloc(BEN), *hn = falloc(BEN); /* (B, E, N) */
            c.a.h_last = hf;
            cr_assert_eq(ssm_scan_forward(&c.a, yf), SSM_OK);
            c.a.h_last = hn;
            cr_assert_eq(ssm_scan_forward_naive(&c.a, yn), SSM_OK);
            char what[80];
            snprintf(what, sizeof what, "%s y B=%d L=%d E=%d N=%d", ssm_scan_isa_name(paths[p]),
                     c.a.B, c.a.L, c.a.E, c.a.N);
            EXPECT_CLOSE(yf, yn, BLE, 1e-5, what);
            EXPECT_CLOSE(hf, hn, BEN, 1e-5, what);
            free(yf); free(yn); free(hf); free(hn);
            scase_free(&c);
        }
}

/* The path API: auto picks the widest the CPU has, get never says auto,
 * and avx2 runs everywhere. */
Test(scan, isa_is_chosen_at_run_time_and_can_be_forced)
{
    __builtin_cpu_init();
    const ssm_scan_isa best = __builtin_cpu_supports("avx512f") ? SSM_SCAN_ISA_AVX512
                                                                 : SSM_SCAN_ISA_AVX2;
    cr_expect_eq(ssm_scan_isa_get(), best, "default path %s", ssm_scan_isa_name(ssm_scan_isa_get()));
    scan_path_use(SSM_SCAN_ISA_AVX2);
    cr_expect_eq(ssm_scan_isa_set(SSM_SCAN_ISA_AUTO), SSM_OK);
    cr_expect_eq(ssm_scan_isa_get(), best);
    cr_expect_eq(ssm_scan_isa_supported(SSM_SCAN_ISA_AVX512), best == SSM_SCAN_ISA_AVX512);
    if (best != SSM_SCAN_ISA_AVX512) {
        cr_expect_eq(ssm_scan_isa_set(SSM_SCAN_ISA_AVX512), SSM_ERR_CONFIG);
        cr_expect_eq(ssm_scan_isa_get(), SSM_SCAN_ISA_AVX2, "a refused path changed the path");
    }
    cr_expect_str_eq(ssm_scan_isa_name(SSM_SCAN_ISA_AVX512), "avx512");
    cr_expect_str_eq(ssm_scan_isa_name(SSM_SCAN_ISA_AVX2), "avx2");
}

static void expect_grads_close(const sgrads *f, const sgrads *n, const scase *c)
{
    const ssm_scan_args *a = &c->a;
    const size_t BLE = (size_t)a->B * a->L * a->E, BL = (size_t)a->B * a->L;
    char w[80];
#define NAMED(t) (snprintf(w, sizeof w, "%s B=%d L=%d E=%d N=%d", (t), a->B, a->L, a->E, a->N), w)
    EXPECT_CLOSE(f->du, n->du, BLE, 1e-5, NAMED("du"));
    EXPECT_CLOSE(f->ddelta, n->ddelta, BLE, 1e-5, NAMED("ddelta"));
    EXPECT_CLOSE(f->dx, n->dx, BL * c->ld, 1e-5, NAMED("dB,dC"));
    EXPECT_CLOSE(f->dA, n->dA, (size_t)a->E * a->N, 1e-5, NAMED("dA"));
    EXPECT_CLOSE(f->dD, n->dD, a->E, 1e-5, NAMED("dD"));
#undef NAMED
    snprintf(w, sizeof w, "B=%d L=%d E=%d N=%d", a->B, a->L, a->E, a->N);
    for (size_t r = 0; r < BL; r++)
        for (int j = 0; j < c->R; j++)
            cr_expect(f->dx[r * c->ld + j] == SENTINEL && n->dx[r * c->ld + j] == SENTINEL,
                      "%s: column %d outside dB/dC was written", w, j);
}

/* Every path against the naive twin. */
Test(scan, backward_fast_matches_naive)
{
    ssm_scan_isa paths[2];
    const int npath = scan_paths(paths);
    for (int p = 0; p < npath; p++)
        for (size_t s = 0; s < NSHAPES; s++) {
            scase c;
            sgrads f, n;
            scan_path_use(paths[p]);
            cr_log_info("backward, path %s", ssm_scan_isa_name(paths[p]));
            scase_build(&c, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], SHAPES[s][3], 200 + s);
            sgrads_build(&f, &c);
            sgrads_build(&n, &c);
            scan_bwd(&c, &f, 1);
            scan_bwd(&c, &n, 0);
            expect_grads_close(&f, &n, &c);
            sgrads_free(&f); sgrads_free(&n);
            scase_free(&c);
        }
}

/* The avx512 backward against the avx2 one (when the CPU has both): the
 * same algorithm, so they agree to float rounding. */
Test(scan, backward_avx512_matches_avx2)
{
    if (!ssm_scan_isa_supported(SSM_SCAN_ISA_AVX512))
        cr_skip_test("this CPU lacks AVX-512F");
    for (size_t s = 0; s < NSHAPES; s++) {
        scase c;
        sgrads w, n;
        scase_build(&c, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], SHAPES[s][3], 250 + s);
        sgrads_build(&w, &c);
        sgrads_build(&n, &c);
        scan_path_use(SSM_SCAN_ISA_AVX512);
        scan_bwd(&c, &w, 1);
        scan_path_use(SSM_SCAN_ISA_AVX2);
        scan_bwd(&c, &n, 1);
        expect_grads_close(&w, &n, &c);
        sgrads_free(&w); sgrads_free(&n);
        scase_free(&c);
    }
    cr_assert_eq(ssm_scan_isa_set(SSM_SCAN_ISA_AUTO), SSM_OK);
}

/* dA and dD are accumulated: a second call adds the same amount again. */
Test(scan, backward_accumulates_dA_dD)
{
    scase c;
    sgrads g;
    scase_build(&c, 2, 9, 13, 5, 7);
    sgrads_build(&g, &c);
    scan_bwd(&c, &g, 1);
    const size_t EN = (size_t)c.a.E * c.a.N;
    float *once = falloc(EN); /* (E, N) dA after one call, minus its start */
    for (size_t i = 0; i < EN; i++)
        once[i] = g.dA[i] - 0.5f;
    scan_bwd(&c, &g, 1);
    for (size_t i = 0; i < EN; i++)
        cr_expect(fabsf(g.dA[i] - 0.5f - 2.0f * once[i]) <= 1e-5f * (1 + fabsf(once[i])),
                  "dA[%zu] not accumulated", i);
    free(once);
    sgrads_free(&g);
    scase_free(&c);
}

/* The naive forward on a hand-worked case, E = N = 1, L = 2. */
Test(scan, naive_forward_by_hand)
{
    const float u[2] = {0.5f, -1.5f}, delta[2] = {0.25f, 0.75f};
    const float bc[2][2] = {{2.0f, 3.0f}, {-1.0f, 0.5f}}; /* (L, [B C]) */
    const float A = -2.0f, D = 0.125f;
    const ssm_scan_args a = { .B = 1, .L = 2, .E = 1, .N = 1, .u = u, .delta = delta,
                              .Bm = &bc[0][0], .Cm = &bc[0][1], .ld_bc = 2,
                              .A = &A, .Dskip = &D };
    float y[2];
    ssm_scan_forward_naive(&a, y);
    const double h0 = 0.25 * 2.0 * 0.5;
    const double h1 = exp(0.75 * -2.0) * h0 + 0.75 * -1.0 * -1.5;
    cr_expect(fabs(y[0] - (3.0 * h0 + 0.125 * 0.5)) < 1e-6, "y0 = %g", y[0]);
    cr_expect(fabs(y[1] - (0.5 * h1 + 0.125 * -1.5)) < 1e-6, "y1 = %g", y[1]);
}

/* ------------------------------------------------------------------ */
/* scan: finite differences of the naive backward                        */

/* loss = sum dy * y, summed in double. */
static double scan_loss(const scase *c, float *y)
{
    const size_t BLE = (size_t)c->a.B * c->a.L * c->a.E;
    ssm_scan_forward_naive(&c->a, y);
    double s = 0.0;
    for (size_t i = 0; i < BLE; i++)
        s += (double)c->dy[i] * y[i];
    return s;
}

/* Central difference of the loss in *p, step h (the step actually taken
 * after rounding to float is used). */
static double central_diff(const scase *c, float *p, double h, float *y)
{
    const float x0 = *p, xp = (float)(x0 + h), xm = (float)(x0 - h);
    *p = xp;
    const double lp = scan_loss(c, y);
    *p = xm;
    const double lm = scan_loss(c, y);
    *p = x0;
    return (lp - lm) / ((double)xp - xm);
}

/* Every entry of n floats at stride 1 from p against grad (stride 1).
 * Returns the worst |fd - grad| / (FD_ATOL + FD_RTOL |grad|). */
#define FD_STEP 1e-2
#define FD_ATOL 2e-3
#define FD_RTOL 2e-3
static double fd_check(const scase *c, float *p, const float *grad, size_t n,
                       size_t stride, size_t count, const char *what)
{
    const size_t BLE = (size_t)c->a.B * c->a.L * c->a.E;
    float *y = falloc(BLE); /* (B, L, E) */
    double worst = 0.0;
    for (size_t r = 0; r < count; r++)
        for (size_t i = 0; i < n; i++) {
            const size_t k = r * stride + i;
            const double fd = central_diff(c, p + k, FD_STEP, y);
            const double err = fabs(fd - grad[k]) / (FD_ATOL + FD_RTOL * fabs(grad[k]));
            cr_expect(err <= 1.0, "%s[%zu]: finite difference %.6g, backward %.6g",
                      what, k, fd, (double)grad[k]);
            worst = fmax(worst, err);
        }
    free(y);
    return worst;
}

/* every gradient of g against finite differences; the worst error */
static double fd_check_all(const scase *c, const sgrads *g)
{
    const size_t BL = (size_t)c->a.B * c->a.L, BLE = BL * c->a.E;
    const int N = c->a.N, R = c->R;
    double w = 0.0;
    w = fmax(w, fd_check(c, c->u, g->du, BLE, 0, 1, "du"));
    w = fmax(w, fd_check(c, c->delta, g->ddelta, BLE, 0, 1, "ddelta"));
    w = fmax(w, fd_check(c, c->xdbl + R, g->dx + R, N, c->ld, BL, "dB"));
    w = fmax(w, fd_check(c, c->xdbl + R + N, g->dx + R + N, N, c->ld, BL, "dC"));
    w = fmax(w, fd_check(c, c->A, g->dA, (size_t)c->a.E * N, 0, 1, "dA"));
    return fmax(w, fd_check(c, c->D, g->dD, c->a.E, 0, 1, "dD"));
}

Test(scan, naive_backward_matches_finite_differences)
{
    scase c;
    sgrads g;
    scase_build(&c, 2, 6, 3, 4, 11);
    sgrads_build(&g, &c);
    fill_const(g.dA, (size_t)c.a.E * c.a.N, 0.0f);
    fill_const(g.dD, c.a.E, 0.0f);
    scan_bwd(&c, &g, 0);
    cr_log_info("finite differences: worst error %.3g of tolerance", fd_check_all(&c, &g));
    sgrads_free(&g);
    scase_free(&c);
}

/* An ablation mask (keep) holds some state channels at zero in the forward
 * and the backward follows it: finite differences again, and the forward
 * output equals the sum over the kept channels of the states it writes. */
Test(scan, keep_mask_backward_matches_finite_differences)
{
    scase c;
    sgrads g;
    scase_build(&c, 2, 6, 3, 4, 12);
    float keep[12] = {1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1};   /* (E, N): channel 1 all off */
    c.a.keep = keep;
    sgrads_build(&g, &c);
    fill_const(g.dA, (size_t)c.a.E * c.a.N, 0.0f);
    fill_const(g.dD, c.a.E, 0.0f);
    scan_bwd(&c, &g, 1);   /* the fast entry point runs the naive scan under a mask */
    cr_log_info("masked finite differences: worst error %.3g of tolerance", fd_check_all(&c, &g));
    const size_t BL = (size_t)c.a.B * c.a.L, BLE = BL * c.a.E;
    const int N = c.a.N, R = c.R;
    float *h = falloc(BLE * N), *y = falloc(BLE);
    c.a.h_out = h;
    cr_assert_eq(ssm_scan_forward(&c.a, y), SSM_OK);
    for (size_t i = 0; i < BL; i++)
        for (int e = 0; e < c.a.E; e++) {
            double s = c.D[e] * c.u[i * c.a.E + e];
            for (int n = 0; n < N; n++) {
                float hv = h[(i * c.a.E + e) * N + n];
                if (keep[e * N + n] == 0.0f) cr_assert_eq(hv, 0.0f);
                s += c.xdbl[i * c.ld + R + N + n] * hv;
            }
            cr_assert_float_eq(y[i * c.a.E + e], s, 1e-5 + 1e-5 * fabs(s));
        }
    free(h);
    free(y);
    sgrads_free(&g);
    scase_free(&c);
}

/* ------------------------------------------------------------------ */
/* scan: step, determinism, exp                                          */

Test(scan, step_matches_forward)
{
    scase c;
    scase_build(&c, 3, 33, 37, 12, 5);
    const ssm_scan_args *a = &c.a;
    const int E = a->E, N = a->N;
    const size_t BLE = (size_t)a->B * a->L * E;
    float *yf = falloc(BLE), *ys = falloc(BLE); /* (B, L, E) */
    float *h = falloc((size_t)E * N);           /* (E, N) */
    ssm_scan_forward(a, yf);
    for (int b = 0; b < a->B; b++) {
        fill_const(h, (size_t)E * N, 0.0f);
        for (int t = 0; t < a->L; t++) {
            const size_t row = (size_t)b * a->L + t;
            ssm_scan_step(E, N, a->u + row * E, a->delta + row * E,
                          a->Bm + row * a->ld_bc, a->Cm + row * a->ld_bc,
                          a->A, a->Dskip, h, ys + row * E);
        }
    }
    EXPECT_CLOSE(ys, yf, BLE, 1e-6, "step vs forward");
    free(yf); free(ys); free(h);
    scase_free(&c);
}

/* The N = 16 step (AVX-512 where the CPU has it) against its naive twin
 * over a whole sequence, and a channel's bits whatever range of channels
 * it is stepped in (E = 37: two groups of sixteen and a tail; split at 5,
 * inside the first group). */
Test(scan, step_n16_matches_naive_and_any_split)
{
    scase c;
    scase_build(&c, 1, 40, 37, 16, 11);
    const ssm_scan_args *a = &c.a;
    const int E = a->E, N = a->N, S = 5;
    float *hf = falloc((size_t)E * N), *hn = falloc((size_t)E * N), *hs = falloc((size_t)E * N);
    float *yf = falloc(E), *yn = falloc(E), *ys = falloc(E);   /* (E) */
    fill_const(hf, (size_t)E * N, 0.0f);
    fill_const(hn, (size_t)E * N, 0.0f);
    fill_const(hs, (size_t)E * N, 0.0f);
    for (int t = 0; t < a->L; t++) {
        const float *u = a->u + (size_t)t * E, *dl = a->delta + (size_t)t * E;
        const float *Bt = a->Bm + (size_t)t * a->ld_bc, *Ct = a->Cm + (size_t)t * a->ld_bc;
        ssm_scan_step(E, N, u, dl, Bt, Ct, a->A, a->Dskip, hf, yf);
        ssm_scan_step_naive(E, N, u, dl, Bt, Ct, a->A, a->Dskip, hn, yn);
        ssm_scan_step(S, N, u, dl, Bt, Ct, a->A, a->Dskip, hs, ys);
        ssm_scan_step(E - S, N, u + S, dl + S, Bt, Ct, a->A + (size_t)S * N, a->Dskip + S,
                      hs + (size_t)S * N, ys + S);
        EXPECT_CLOSE(yf, yn, (size_t)E, 1e-6, "step vs naive twin");
        cr_expect(memcmp(yf, ys, sizeof(float) * E) == 0, "token %d: y depends on the split", t);
        cr_expect(memcmp(hf, hs, sizeof(float) * E * N) == 0, "token %d: h depends on the split", t);
    }
    EXPECT_CLOSE(hf, hn, (size_t)E * N, 1e-6, "state vs naive twin");
    free(hf); free(hn); free(hs); free(yf); free(yn); free(ys);
    scase_free(&c);
}

/* Each path gives the same bits twice and on 1, 2 or 3 threads (N = 16,
 * the register kernel, and N = 12; E = 301: grouped blocks and a tail). */
Test(scan, fast_backward_is_deterministic)
{
    ssm_scan_isa paths[2];
    const int npath = scan_paths(paths);
    for (int p = 0; p < npath; p++)
        for (int N = 12; N <= 16; N += 4) {
            scase c;
            sgrads g1, g2;
            scan_path_use(paths[p]);
            scase_build(&c, 3, 33, 301, N, 9);
            sgrads_build(&g1, &c);
            omp_set_num_threads(2);
            scan_bwd(&c, &g1, 1);
            for (int threads = 1; threads <= 3; threads++) {
                omp_set_num_threads(threads);
                sgrads_build(&g2, &c);
                scan_bwd(&c, &g2, 1);
                cr_expect(sgrads_equal(&g1, &g2, &c), "%s N=%d: 2 and %d threads differ",
                          ssm_scan_isa_name(paths[p]), N, threads);
                sgrads_free(&g2);
            }
            sgrads_free(&g1);
            scase_free(&c);
        }
    omp_set_num_threads(2);
}

/* The fast backward of every path against finite differences of the naive
 * forward (N = 16, the register kernel, and N = 5; E = 19: a tail). */
Test(scan, fast_backward_matches_finite_differences)
{
    ssm_scan_isa paths[2];
    const int npath = scan_paths(paths);
    for (int p = 0; p < npath; p++)
        for (int N = 5; N <= 16; N += 11) {
            scase c;
            sgrads g;
            scan_path_use(paths[p]);
            scase_build(&c, 2, 5, 19, N, 12);
            sgrads_build(&g, &c);
            fill_const(g.dA, (size_t)c.a.E * c.a.N, 0.0f);
            fill_const(g.dD, c.a.E, 0.0f);
            scan_bwd(&c, &g, 1);
            cr_log_info("finite differences (%s, N=%d): worst error %.3g of tolerance",
                        ssm_scan_isa_name(paths[p]), N, fd_check_all(&c, &g));
            sgrads_free(&g);
            scase_free(&c);
        }
}

/* Each path gives the same bits twice and on 1, 2 or 3 threads (N = 16,
 * the register kernel, and N = 12). */
Test(scan, fast_forward_is_deterministic)
{
    ssm_scan_isa paths[2];
    const int npath = scan_paths(paths);
    for (int p = 0; p < npath; p++)
        for (int N = 12; N <= 16; N += 4) {
            scase c;
            scan_path_use(paths[p]);
            scase_build(&c, 3, 33, 37, N, 10);
            const size_t BLE = (size_t)c.a.B * c.a.L * c.a.E;
            float *y1 = falloc(BLE), *y2 = falloc(BLE); /* (B, L, E) */
            omp_set_num_threads(2);
            ssm_scan_forward(&c.a, y1);
            for (int threads = 1; threads <= 3; threads++) {
                omp_set_num_threads(threads);
                fill_const(y2, BLE, NAN);
                ssm_scan_forward(&c.a, y2);
                cr_expect(!memcmp(y1, y2, BLE * sizeof(float)), "%s N=%d: 2 and %d threads differ",
                          ssm_scan_isa_name(paths[p]), N, threads);
            }
            free(y1); free(y2);
            scase_free(&c);
        }
}

/* Arguments for the exp sweep: a grid over [-100, 85] and the extremes. */
static size_t exp_args(float *x, size_t cap)
{
    static const float extreme[] = {-1e4f, -1e3f, -200.0f, -104.0f, -88.0f,
                                    -87.3f, -87.0f, 0.0f, -0.0f, 80.0f, 88.0f};
    size_t n = 0;
    for (size_t i = 0; i < sizeof extreme / sizeof *extreme; i++)
        x[n++] = extreme[i];
    for (double v = -100.0; v <= 85.0 && n < cap; v += 0.00731)
        x[n++] = (float)v;
    return n;
}

/* Relative error against exp() where exp(x) is a normal float, otherwise
 * the result must be a finite value in [0, FLT_MIN]. */
static void expect_exp(float x, float got, double *worst)
{
    const double ref = exp((double)x);
    cr_assert(isfinite(got) && got >= 0.0f, "exp(%g) gave %g", x, got);
    if (ref < FLT_MIN) {
        cr_expect(got <= FLT_MIN, "exp(%g) gave %g, want ~0", x, got);
        return;
    }
    *worst = fmax(*worst, fabs(got - ref) / ref);
}

/* Through ssm_scan_step (vectorised over n): E = 1, delta = 1, u = 0,
 * h = 1, C = 0, so the new state is exactly exp(A[n]). */
Test(scan, fast_exp_in_step)
{
    enum { CAP = 30000 };
    float *x = falloc(CAP), *h = falloc(CAP), *zero = fill_const(falloc(CAP), CAP, 0.0f);
    const size_t n = exp_args(x, CAP);
    const float one = 1.0f, z = 0.0f;
    fill_const(h, n, 1.0f);
    float y;
    ssm_scan_step(1, (int)n, &z, &one, zero, zero, x, &z, h, &y);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        expect_exp(x[i], h[i], &worst);
    cr_expect(worst <= 2e-7, "fast exp: relative error %.3g", worst);
    cr_log_info("fast exp (step): worst relative error %.3g", worst);
    free(x); free(h); free(zero);
}

/* Through ssm_scan_forward (vectorised over channels): N = 1, L = 2,
 * u = (1, 0), delta = 1, B = (1, 0), C = (0, 1), D = 0: y_1[e] = exp(A[e]),
 * which on every path is ssm_expf's, bit for bit. */
Test(scan, fast_exp_in_forward)
{
    enum { CAP = 30000 };
    float *x = falloc(CAP);
    const int E = (int)exp_args(x, CAP);
    float *u = fill_const(falloc(2 * (size_t)E), 2 * (size_t)E, 0.0f);
    float *delta = fill_const(falloc(2 * (size_t)E), 2 * (size_t)E, 1.0f);
    float *D = fill_const(falloc(E), E, 0.0f), *y = falloc(2 * (size_t)E);
    const float bc[2][2] = {{1.0f, 0.0f}, {0.0f, 1.0f}}; /* (L, [B C]) */
    fill_const(u, E, 1.0f);
    const ssm_scan_args a = { .B = 1, .L = 2, .E = E, .N = 1, .u = u, .delta = delta,
                              .Bm = &bc[0][0], .Cm = &bc[0][1], .ld_bc = 2,
                              .A = x, .Dskip = D };
    ssm_scan_isa paths[2];
    const int npath = scan_paths(paths);
    for (int p = 0; p < npath; p++) {
        scan_path_use(paths[p]);
        ssm_scan_forward(&a, y);
        double worst = 0.0;
        int differ = 0;
        for (int e = 0; e < E; e++) {
            expect_exp(x[e], y[E + e], &worst);
            const float want = ssm_expf(x[e]);
            differ += memcmp(&want, &y[E + e], sizeof want) != 0;
        }
        cr_expect(worst <= 2e-7, "fast exp (%s): relative error %.3g", ssm_scan_isa_name(paths[p]), worst);
        cr_expect(differ == 0, "fast exp (%s): %d of %d values are not ssm_expf's bits",
                  ssm_scan_isa_name(paths[p]), differ, E);
        cr_log_info("fast exp (forward, %s): worst relative error %.3g", ssm_scan_isa_name(paths[p]), worst);
    }
    free(x); free(u); free(delta); free(D); free(y);
}

/* ------------------------------------------------------------------ */
/* conv                                                                  */

/* A conv problem: x is the u half of an xz buffer (ldx = 2E) whose z half
 * holds a sentinel. */
typedef struct {
    ssm_conv_args a;
    float *xz;   /* (B, L, 2E) */
    float *w;    /* (E, K) */
    float *bias; /* (E) */
    float *dout; /* (B, L, E) */
} ccase;

static void ccase_build(ccase *c, int B, int L, int E, int K, uint64_t seed)
{
    const size_t BLE = (size_t)B * L * E;
    rng_seed(seed);
    c->xz = fill_normal(falloc(2 * BLE), 2 * BLE, 0.0, 1.0);
    c->w = fill_normal(falloc((size_t)E * K), (size_t)E * K, 0.0, 0.5);
    c->bias = fill_normal(falloc(E), E, 0.0, 0.5);
    c->dout = fill_normal(falloc(BLE), BLE, 0.0, 1.0);
    c->a = (ssm_conv_args){ .B = B, .L = L, .E = E, .K = K, .x = c->xz,
                            .ldx = 2 * E, .w = c->w, .bias = c->bias };
}

static void ccase_free(ccase *c)
{
    free(c->xz); free(c->w); free(c->bias); free(c->dout);
}

/* Gradients of one conv backward; dx has xz's layout, sentinel-filled;
 * dw, dbias start non-zero (accumulated). */
typedef struct {
    float *dx;    /* (B, L, 2E) */
    float *dw;    /* (E, K) */
    float *dbias; /* (E) */
} cgrads;

static void cgrads_build(cgrads *g, const ccase *c)
{
    const size_t n = 2 * (size_t)c->a.B * c->a.L * c->a.E;
    g->dx = fill_const(falloc(n), n, SENTINEL);
    g->dw = fill_const(falloc((size_t)c->a.E * c->a.K), (size_t)c->a.E * c->a.K, 0.5f);
    g->dbias = fill_const(falloc(c->a.E), c->a.E, 0.25f);
}

static void cgrads_free(cgrads *g) { free(g->dx); free(g->dw); free(g->dbias); }

static void conv_bwd(const ccase *c, cgrads *g, int fast)
{
    (fast ? ssm_conv_backward : ssm_conv_backward_naive)(&c->a, c->dout, g->dx,
                                                         g->dw, g->dbias);
}

static const int CSHAPES[][4] = { /* B, L, E, K */
    {1, 1, 37, 4}, {3, 7, 37, 4}, {2, 33, 16, 4}, {3, 33, 37, 3},
    {1, 5, 8, 1},  {2, 3, 20, 4}, {1, 9, 40, 17},
};
#define NCSHAPES (sizeof CSHAPES / sizeof CSHAPES[0])

static void expect_cgrads_close(const cgrads *f, const cgrads *n, const ccase *c)
{
    const ssm_conv_args *a = &c->a;
    const size_t BL = (size_t)a->B * a->L;
    char w[80];
    snprintf(w, sizeof w, "conv B=%d L=%d E=%d K=%d", a->B, a->L, a->E, a->K);
    EXPECT_CLOSE(f->dx, n->dx, 2 * BL * a->E, 1e-5, w);
    EXPECT_CLOSE(f->dw, n->dw, (size_t)a->E * a->K, 1e-5, w);
    EXPECT_CLOSE(f->dbias, n->dbias, a->E, 1e-5, w);
    for (size_t r = 0; r < BL; r++)
        for (int e = a->E; e < 2 * a->E; e++)
            cr_expect(f->dx[r * 2 * a->E + e] == SENTINEL && n->dx[r * 2 * a->E + e] == SENTINEL,
                      "%s: dx column %d (z half) was written", w, e);
}

Test(conv, fast_matches_naive)
{
    for (size_t s = 0; s < NCSHAPES; s++) {
        ccase c;
        cgrads f, n;
        ccase_build(&c, CSHAPES[s][0], CSHAPES[s][1], CSHAPES[s][2], CSHAPES[s][3], 300 + s);
        const size_t BLE = (size_t)c.a.B * c.a.L * c.a.E;
        float *of = falloc(BLE), *on = falloc(BLE); /* (B, L, E) */
        ssm_conv_forward(&c.a, of);
        ssm_conv_forward_naive(&c.a, on);
        EXPECT_CLOSE(of, on, BLE, 1e-5, "conv forward");
        cgrads_build(&f, &c);
        cgrads_build(&n, &c);
        conv_bwd(&c, &f, 1);
        conv_bwd(&c, &n, 0);
        expect_cgrads_close(&f, &n, &c);
        cgrads_free(&f); cgrads_free(&n);
        free(of); free(on);
        ccase_free(&c);
    }
}

/* The fused conv + SiLU against its naive twin, on shapes with channel
 * chunks cut short (E > 256, E not a multiple of 16), odd L, K = 4 (the
 * unrolled taps) and others, L < K; uc is ssm_conv_forward's, bit for bit. */
Test(conv, fused_silu_matches_naive)
{
    static const int shapes[][4] = { /* B, L, E, K */
        {1, 1, 37, 4}, {3, 7, 37, 4}, {2, 33, 300, 4}, {1, 31, 513, 4}, {3, 33, 37, 3},
        {1, 5, 8, 1}, {2, 3, 20, 4}, {1, 9, 40, 17}, {2, 2, 17, 5},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        ccase c;
        ccase_build(&c, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 350 + s);
        const size_t BLE = (size_t)c.a.B * c.a.L * c.a.E;
        float *ucf = falloc(BLE), *uf = falloc(BLE), *ucn = falloc(BLE), *un = falloc(BLE);
        float *plain = falloc(BLE); /* each (B, L, E) */
        ssm_conv_silu_forward(&c.a, ucf, uf);
        ssm_conv_silu_forward_naive(&c.a, ucn, un);
        ssm_conv_forward(&c.a, plain);
        char what[80];
        snprintf(what, sizeof what, "conv+silu B=%d L=%d E=%d K=%d", c.a.B, c.a.L, c.a.E, c.a.K);
        EXPECT_CLOSE(ucf, ucn, BLE, 1e-5, what);
        EXPECT_CLOSE(uf, un, BLE, 1e-5, what);
        cr_expect(!memcmp(ucf, plain, BLE * sizeof(float)), "%s: uc is not the plain conv's", what);
        ssm_conv_forward_naive(&c.a, plain);
        cr_expect(!memcmp(ucn, plain, BLE * sizeof(float)), "%s: naive uc is not the naive conv's", what);
        free(ucf); free(uf); free(ucn); free(un); free(plain);
        ccase_free(&c);
    }
}

/* The fused conv's rows in any split, and on any thread count, give the
 * same bits as one call over all rows; u NULL writes no SiLU. */
Test(conv, fused_silu_rows_are_independent_of_the_split)
{
    ccase c;
    ccase_build(&c, 3, 29, 301, 4, 360);
    const int BL = c.a.B * c.a.L;
    const size_t BLE = (size_t)BL * c.a.E;
    float *uc1 = falloc(BLE), *u1 = falloc(BLE), *uc2 = falloc(BLE), *u2 = falloc(BLE);
    omp_set_num_threads(2);
    ssm_conv_silu_forward(&c.a, uc1, u1);
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        fill_const(uc2, BLE, NAN);
        ssm_conv_silu_forward(&c.a, uc2, u2);
        cr_expect(!memcmp(uc1, uc2, BLE * sizeof(float)) && !memcmp(u1, u2, BLE * sizeof(float)),
                  "conv+silu: 2 and %d threads differ", threads);
    }
    fill_const(uc2, BLE, NAN);
    fill_const(u2, BLE, NAN);
    for (int r0 = 0, step = 1; r0 < BL; r0 += step, step = step % 7 + 2)
        ssm_conv_silu_rows(&c.a, r0, r0 + step < BL ? r0 + step : BL, uc2, u2);
    cr_expect(!memcmp(uc1, uc2, BLE * sizeof(float)) && !memcmp(u1, u2, BLE * sizeof(float)),
              "conv+silu rows in pieces differ from one call");
    fill_const(u2, BLE, NAN);
    ssm_conv_silu_rows(&c.a, 0, BL, uc2, NULL);
    cr_expect(!memcmp(uc1, uc2, BLE * sizeof(float)), "conv rows without SiLU differ");
    for (size_t i = 0; i < BLE; i++)
        cr_assert(isnan(u2[i]), "u NULL wrote u[%zu]", i);
    free(uc1); free(u1); free(uc2); free(u2);
    ccase_free(&c);
}

/* The naive conv forward on a hand-worked case, E = 1, K = 2, L = 3. */
Test(conv, naive_forward_by_hand)
{
    const float x[3][2] = {{1, 9}, {2, 9}, {4, 9}}; /* (L, 2E) */
    const float w[2] = {0.5f, 3.0f}, bias = 0.25f;
    const ssm_conv_args a = { .B = 1, .L = 3, .E = 1, .K = 2, .x = &x[0][0],
                              .ldx = 2, .w = w, .bias = &bias };
    float out[3];
    ssm_conv_forward_naive(&a, out);
    cr_expect(out[0] == 0.25f + 3.0f * 1, "out0 = %g", out[0]);
    cr_expect(out[1] == 0.25f + 0.5f * 1 + 3.0f * 2, "out1 = %g", out[1]);
    cr_expect(out[2] == 0.25f + 0.5f * 2 + 3.0f * 4, "out2 = %g", out[2]);
}

static double conv_loss(const ccase *c, float *out)
{
    const size_t BLE = (size_t)c->a.B * c->a.L * c->a.E;
    ssm_conv_forward_naive(&c->a, out);
    double s = 0.0;
    for (size_t i = 0; i < BLE; i++)
        s += (double)c->dout[i] * out[i];
    return s;
}

/* Central differences of the loss over n entries at p (stride 1 within a
 * row of `count` rows `stride` apart) against grad at the same offsets. */
static void conv_fd(const ccase *c, float *p, const float *grad, size_t n,
                    size_t stride, size_t count, const char *what)
{
    float *out = falloc((size_t)c->a.B * c->a.L * c->a.E); /* (B, L, E) */
    for (size_t r = 0; r < count; r++)
        for (size_t i = 0; i < n; i++) {
            float *q = p + r * stride + i;
            const float x0 = *q, xp = (float)(x0 + FD_STEP), xm = (float)(x0 - FD_STEP);
            *q = xp;
            const double lp = conv_loss(c, out);
            *q = xm;
            const double lm = conv_loss(c, out);
            *q = x0;
            const double fd = (lp - lm) / ((double)xp - xm), an = grad[r * stride + i];
            cr_expect(fabs(fd - an) <= FD_ATOL + FD_RTOL * fabs(an),
                      "%s[%zu]: finite difference %.6g, backward %.6g",
                      what, r * stride + i, fd, an);
        }
    free(out);
}

Test(conv, naive_backward_matches_finite_differences)
{
    ccase c;
    cgrads g;
    ccase_build(&c, 2, 6, 5, 4, 21);
    cgrads_build(&g, &c);
    fill_const(g.dw, (size_t)c.a.E * c.a.K, 0.0f);
    fill_const(g.dbias, c.a.E, 0.0f);
    conv_bwd(&c, &g, 0);
    const size_t BL = (size_t)c.a.B * c.a.L;
    conv_fd(&c, c.xz, g.dx, c.a.E, 2 * (size_t)c.a.E, BL, "dx");
    conv_fd(&c, c.w, g.dw, (size_t)c.a.E * c.a.K, 0, 1, "dw");
    conv_fd(&c, c.bias, g.dbias, c.a.E, 0, 1, "dbias");
    ccase_free(&c);
    cgrads_free(&g);
}

Test(conv, fast_backward_is_deterministic)
{
    ccase c;
    cgrads g1, g2, g3;
    ccase_build(&c, 3, 33, 37, 4, 22);
    cgrads_build(&g1, &c);
    cgrads_build(&g2, &c);
    cgrads_build(&g3, &c);
    const size_t n = 2 * (size_t)c.a.B * c.a.L * c.a.E, EK = (size_t)c.a.E * c.a.K;
    omp_set_num_threads(2);
    conv_bwd(&c, &g1, 1);
    conv_bwd(&c, &g2, 1);
    omp_set_num_threads(1);
    conv_bwd(&c, &g3, 1);
    for (const cgrads *g = &g2; g; g = (g == &g2 ? &g3 : NULL))
        cr_expect(!memcmp(g1.dx, g->dx, n * sizeof(float))
                  && !memcmp(g1.dw, g->dw, EK * sizeof(float))
                  && !memcmp(g1.dbias, g->dbias, c.a.E * sizeof(float)),
                  "conv backward differs between runs or thread counts");
    cgrads_free(&g1); cgrads_free(&g2); cgrads_free(&g3);
    ccase_free(&c);
}

/* ------------------------------------------------------------------ */
/* caller's work space                                                   */

static float *work_alloc(size_t n) /* 64-byte aligned, as the kernels ask */
{
    float *p = aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) / 64 * 64);
    cr_assert(p, "out of memory");
    return p;
}

/* The fast backward on the caller's work space: sized for 2 threads, or
 * for only 1 while 2 run (it then runs on 1), gives the bits of its own;
 * too small a work space is refused. */
Test(scan, backward_on_the_callers_work_space_matches_its_own)
{
    scase c;
    sgrads own, big, one, bad;
    scase_build(&c, 3, 33, 300, 12, 31);
    const ssm_scan_args *a = &c.a;
    const size_t n2 = ssm_scan_work_size(a->B, a->L, a->E, a->N, 2, 1);
    const size_t n1 = ssm_scan_work_size(a->B, a->L, a->E, a->N, 1, 1);
    cr_assert(n2 > n1 && n1 > ssm_scan_work_size(a->B, a->L, a->E, a->N, 1, 0));
    float *work = work_alloc(n2);
    sgrads_build(&own, &c); sgrads_build(&big, &c); sgrads_build(&one, &c); sgrads_build(&bad, &c);
    omp_set_num_threads(2);
    scan_bwd(&c, &own, 1);
    c.a.work = work;
    c.a.work_n = n2;
    scan_bwd(&c, &big, 1);
    c.a.work_n = n1;
    scan_bwd(&c, &one, 1);
    cr_expect(sgrads_equal(&own, &big, &c), "work space for 2 threads changes the gradients");
    cr_expect(sgrads_equal(&own, &one, &c), "work space for 1 thread changes the gradients");
    c.a.work_n = n1 - 1;
    ssm_status st = ssm_scan_backward(&c.a, c.dy, bad.du, bad.ddelta, bad.dx + c.R,
                                      bad.dx + c.R + c.a.N, bad.dA, bad.dD);
    cr_expect_eq(st, SSM_ERR_SOFTWARE, "too small a work space gave status %d", st);
    sgrads_free(&own); sgrads_free(&big); sgrads_free(&one); sgrads_free(&bad);
    free(work);
    scase_free(&c);
}

/* The naive scans (a state wider than 256) on the caller's work space
 * against their own allocations. */
Test(scan, naive_scans_on_the_callers_work_space_match_their_own)
{
    scase c;
    sgrads own, given;
    scase_build(&c, 2, 5, 3, 257, 32);
    const size_t BLE = (size_t)c.a.B * c.a.L * c.a.E;
    const size_t n = ssm_scan_work_size(c.a.B, c.a.L, c.a.E, c.a.N, 2, 1);
    float *work = work_alloc(n), *y1 = falloc(BLE), *y2 = falloc(BLE); /* (B, L, E) */
    sgrads_build(&own, &c); sgrads_build(&given, &c);
    cr_assert_eq(ssm_scan_forward(&c.a, y1), SSM_OK);
    scan_bwd(&c, &own, 1);
    c.a.work = work;
    c.a.work_n = n;
    cr_assert_eq(ssm_scan_forward(&c.a, y2), SSM_OK, "%s", ssm_last_error());
    scan_bwd(&c, &given, 1);
    cr_expect(!memcmp(y1, y2, BLE * sizeof(float)), "the forward differs on the caller's work space");
    cr_expect(sgrads_equal(&own, &given, &c), "the backward differs on the caller's work space");
    sgrads_free(&own); sgrads_free(&given);
    free(work); free(y1); free(y2);
    scase_free(&c);
}

Test(conv, backward_on_the_callers_work_space_matches_its_own)
{
    ccase c;
    cgrads own, given;
    ccase_build(&c, 3, 33, 37, 4, 23);
    const size_t n = ssm_conv_work_size(c.a.B, c.a.E, c.a.K);
    cr_assert(n >= (size_t)c.a.B * c.a.E * (c.a.K + 1));
    cr_assert_eq(ssm_conv_work_size(c.a.B, c.a.E, 17), 0, "the naive conv needs no work space");
    float *work = work_alloc(n);
    cgrads_build(&own, &c); cgrads_build(&given, &c);
    conv_bwd(&c, &own, 1);
    c.a.work = work;
    c.a.work_n = n;
    conv_bwd(&c, &given, 1);
    const size_t nx = 2 * (size_t)c.a.B * c.a.L * c.a.E, EK = (size_t)c.a.E * c.a.K;
    cr_expect(!memcmp(own.dx, given.dx, nx * sizeof(float))
              && !memcmp(own.dw, given.dw, EK * sizeof(float))
              && !memcmp(own.dbias, given.dbias, c.a.E * sizeof(float)),
              "conv backward differs on the caller's work space");
    cgrads_free(&own); cgrads_free(&given);
    free(work);
    ccase_free(&c);
}

/* ------------------------------------------------------------------ */
/* fallbacks to the naive kernels: said once per reason on stderr        */


Test(fallback, a_state_too_wide_for_the_fast_scan_is_told_once, .init = cr_redirect_stderr)
{
    scase c;
    sgrads g;
    scase_build(&c, 1, 3, 2, 300, 41);
    float *y = falloc((size_t)c.a.B * c.a.L * c.a.E); /* (B, L, E) */
    sgrads_build(&g, &c);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(ssm_scan_forward(&c.a, y), SSM_OK);
        scan_bwd(&c, &g, 1);
    }
    fflush(stderr);
    cr_assert_stderr_eq_str("ssmlab: scan: state width 300 > 256: using the naive scan "
                            "(single-threaded, slower)\n");
    free(y);
    sgrads_free(&g);
    scase_free(&c);
}

Test(fallback, a_conv_too_wide_for_the_fast_conv_is_told_once, .init = cr_redirect_stderr)
{
    ccase c;
    cgrads g;
    ccase_build(&c, 2, 5, 8, 20, 42);
    float *out = falloc((size_t)c.a.B * c.a.L * c.a.E); /* (B, L, E) */
    cgrads_build(&g, &c);
    for (int i = 0; i < 2; i++) {
        ssm_conv_forward(&c.a, out);
        conv_bwd(&c, &g, 1);
    }
    fflush(stderr);
    cr_assert_stderr_eq_str("ssmlab: conv: d_conv 20 > 16: using the naive conv "
                            "(single-threaded, slower)\n");
    free(out);
    cgrads_free(&g);
    ccase_free(&c);
}

/* Too small a work space: the naive backward, told once, and the same
 * gradients as the fast one within the fast-vs-naive tolerance. */
Test(fallback, a_conv_backward_without_work_space_is_told_once, .init = cr_redirect_stderr)
{
    ccase c;
    cgrads fast, slow;
    ccase_build(&c, 2, 5, 8, 4, 43);
    cgrads_build(&fast, &c);
    cgrads_build(&slow, &c);
    conv_bwd(&c, &fast, 1);
    float *work = work_alloc(16);
    c.a.work = work;
    c.a.work_n = 16;
    conv_bwd(&c, &slow, 1);
    conv_bwd(&c, &fast, 1);   /* both again: accumulated gradients stay comparable */
    conv_bwd(&c, &slow, 1);
    fflush(stderr);
    char want[160];
    snprintf(want, sizeof want, "ssmlab: conv backward: a work space of 16 floats < %zu: using "
             "the naive conv backward (single-threaded, slower)\n", ssm_conv_work_size(2, 8, 4));
    cr_assert_stderr_eq_str(want);
    c.a.work = NULL;
    expect_cgrads_close(&fast, &slow, &c);
    free(work);
    cgrads_free(&fast);
    cgrads_free(&slow);
    ccase_free(&c);
}

Test(fallback, the_fast_kernels_tell_nothing, .init = cr_redirect_stderr)
{
    scase s;
    sgrads g;
    ccase c;
    cgrads cg;
    scase_build(&s, 2, 5, 9, 256, 44);
    ccase_build(&c, 2, 5, 8, 16, 45);
    float *y = falloc((size_t)2 * 5 * 9); /* (B, L, E) */
    sgrads_build(&g, &s);
    cgrads_build(&cg, &c);
    cr_assert_eq(ssm_scan_forward(&s.a, y), SSM_OK);
    scan_bwd(&s, &g, 1);
    ssm_conv_forward(&c.a, y);
    conv_bwd(&c, &cg, 1);
    fflush(stderr);
    cr_assert_stderr_eq_str("");
    free(y);
    sgrads_free(&g);
    cgrads_free(&cg);
    scase_free(&s);
    ccase_free(&c);
}
