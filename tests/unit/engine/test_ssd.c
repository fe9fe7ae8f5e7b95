/* test_ssd.c — Criterion tests of engine/ssd.c: the chunked SSD scan against
 * its naive recurrent twin (forward, last state and backward, several chunk
 * sizes, lengths that are not a multiple of the chunk, one and several
 * groups), the chunked backward against central differences of the naive
 * forward (and the naive backward against the chunked one), bitwise
 * determinism of the chunked passes for a thread count and across thread
 * counts, and a short work space refused; the recurrent step of
 * generation against its naive twin, and its heads in any split. */
#include <criterion/criterion.h>

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ssd.h"
#include "tests/rng.h"

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    cr_assert(p, "out of memory");
    return p;
}

static float *frand(size_t n, double lo, double hi)
{
    float *p = falloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * rng_unif());
    return p;
}

/* A random problem: x, B, C packed in one (B, L, E + 2GN) buffer as in a
 * Mamba-2 layer (ld_x = ld_bc = Cw), dt in (0.05, 1), A in (-1.5, -0.1) */
typedef struct {
    ssm_ssd_args a;
    float *xbc, *dt, *A, *Dskip, *dy;
    int Cw;
} problem;

static problem problem_make(int B, int L, int H, int P, int G, int N, int Q, uint64_t seed)
{
    rng_seed(seed);
    problem p;
    int E = H * P;
    p.Cw = E + 2 * G * N;
    p.xbc = frand((size_t)B * L * p.Cw, -1, 1);
    p.dt = frand((size_t)B * L * H, 0.05, 1.0);
    p.A = frand(H, -1.5, -0.1);
    p.Dskip = frand(H, -1, 1);
    p.dy = frand((size_t)B * L * E, -1, 1);
    ssm_ssd_args a = {.B = B, .L = L, .H = H, .P = P, .G = G, .N = N, .Q = Q, .x = p.xbc, .ld_x = p.Cw,
                      .Bm = p.xbc + E, .Cm = p.xbc + E + G * N, .ld_bc = p.Cw, .dt = p.dt, .A = p.A,
                      .Dskip = p.Dskip};
    a.states = falloc((size_t)B * H * ssm_ssd_chunks(L, Q) * P * N);
    a.h_last = falloc((size_t)B * H * P * N);
    a.work_n = ssm_ssd_work_size(&a, omp_get_max_threads(), 1);
    a.work = falloc(a.work_n);
    p.a = a;
    return p;
}

static void problem_free(problem *p)
{
    free(p->xbc); free(p->dt); free(p->A); free(p->Dskip); free(p->dy);
    free(p->a.states); free(p->a.h_last); free(p->a.work);
}

static double rel_err(const float *got, const float *want, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)got[i] - want[i]));
        s = fmax(s, fabs((double)want[i]));
    }
    return s > 0 ? d / s : d;
}

typedef struct { float *y, *dxbc, *ddt, *dA, *dD; } grads;

static grads grads_alloc(const problem *p)
{
    const ssm_ssd_args *a = &p->a;
    size_t BL = (size_t)a->B * a->L;
    grads g = {falloc(BL * a->H * a->P), falloc(BL * p->Cw), falloc(BL * a->H), falloc(a->H),
               falloc(a->H)};
    return g;
}

static void grads_free(grads *g) { free(g->y); free(g->dxbc); free(g->ddt); free(g->dA); free(g->dD); }

static void run(problem *p, int naive, grads *g)
{
    ssm_ssd_args *a = &p->a;
    int E = a->H * a->P, GN = a->G * a->N;
    if (naive) {
        ssm_ssd_forward_naive(a, g->y);
        cr_assert_eq(ssm_ssd_backward_naive(a, p->dy, g->dxbc, g->dxbc + E, g->dxbc + E + GN, g->ddt,
                                            g->dA, g->dD), SSM_OK);
    } else {
        cr_assert_eq(ssm_ssd_forward(a, g->y), SSM_OK);
        cr_assert_eq(ssm_ssd_backward(a, p->dy, g->dxbc, g->dxbc + E, g->dxbc + E + GN, g->ddt,
                                      g->dA, g->dD), SSM_OK);
    }
}

static void check_chunked_matches_naive(int B, int L, int H, int P, int G, int N, int Q)
{
    problem p = problem_make(B, L, H, P, G, N, Q, 1000u + L * 31u + Q);
    grads c = grads_alloc(&p), n = grads_alloc(&p);
    size_t BL = (size_t)B * L, hn = (size_t)B * H * P * N;
    run(&p, 0, &c);
    float *h_chunked = malloc(sizeof(float) * hn);
    memcpy(h_chunked, p.a.h_last, sizeof(float) * hn);
    run(&p, 1, &n);
    struct { const char *name; const float *got, *want; size_t n; } t[] = {
        {"y", c.y, n.y, BL * H * P}, {"h_last", h_chunked, p.a.h_last, hn},
        {"dx dB dC", c.dxbc, n.dxbc, BL * p.Cw}, {"ddt", c.ddt, n.ddt, BL * H},
        {"dA", c.dA, n.dA, (size_t)H}, {"dD", c.dD, n.dD, (size_t)H},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        double e = rel_err(t[i].got, t[i].want, t[i].n);
        cr_expect(e < 2e-5, "%s: chunked vs naive rel err %.2e (B %d L %d H %d P %d G %d N %d Q %d)",
                  t[i].name, e, B, L, H, P, G, N, Q);
    }
    free(h_chunked);
    grads_free(&c); grads_free(&n); problem_free(&p);
}

Test(ssd, chunked_matches_naive_odd_length)    { check_chunked_matches_naive(2, 13, 4, 3, 1, 5, 4); }
Test(ssd, chunked_matches_naive_two_groups)    { check_chunked_matches_naive(3, 11, 4, 2, 2, 3, 5); }
Test(ssd, chunked_matches_naive_chunk_of_one)  { check_chunked_matches_naive(1, 7, 2, 4, 2, 4, 1); }
Test(ssd, chunked_matches_naive_one_chunk)     { check_chunked_matches_naive(2, 9, 6, 2, 3, 2, 16); }
Test(ssd, chunked_matches_naive_exact_chunks)  { check_chunked_matches_naive(1, 64, 4, 8, 1, 8, 16); }
Test(ssd, chunked_matches_naive_long_chunks)   { check_chunked_matches_naive(2, 100, 2, 4, 2, 6, 33); }

/* sum(dy * y) as a function of every input, in double over the naive forward */
static double objective(problem *p, float *y)
{
    ssm_ssd_forward_naive(&p->a, y);
    double s = 0;
    size_t n = (size_t)p->a.B * p->a.L * p->a.H * p->a.P;
    for (size_t i = 0; i < n; i++) s += (double)p->dy[i] * y[i];
    return s;
}

/* central difference of objective in element *v, step h */
static double fd(problem *p, float *y, float *v, float h)
{
    float keep = *v;
    *v = keep + h;
    double up = objective(p, y);
    *v = keep - h;
    double down = objective(p, y);
    *v = keep;
    return (up - down) / (2.0 * h);
}

Test(ssd, naive_backward_matches_finite_differences)
{
    problem p = problem_make(1, 6, 2, 2, 2, 3, 4, 77);
    grads g = grads_alloc(&p);
    run(&p, 0, &g);   /* the chunked backward, checked against the naive forward's differences */
    float *y = falloc((size_t)6 * 4);
    const float h = 1e-2f;
    double worst = 0;
    for (int i = 0; i < 6 * p.Cw; i++)
        worst = fmax(worst, fabs(fd(&p, y, &p.xbc[i], h) - g.dxbc[i]));
    for (int i = 0; i < 6 * 2; i++) worst = fmax(worst, fabs(fd(&p, y, &p.dt[i], h) - g.ddt[i]));
    for (int i = 0; i < 2; i++) {
        worst = fmax(worst, fabs(fd(&p, y, &p.A[i], h) - g.dA[i]));
        worst = fmax(worst, fabs(fd(&p, y, &p.Dskip[i], h) - g.dD[i]));
    }
    cr_expect(worst < 2e-3, "max |finite difference - backward| = %.2e", worst);
    /* and the naive backward agrees with the same differences */
    grads n = grads_alloc(&p);
    run(&p, 1, &n);
    cr_expect(rel_err(n.dxbc, g.dxbc, (size_t)6 * p.Cw) < 2e-5, "naive and chunked dx, dB, dC differ");
    free(y);
    grads_free(&g); grads_free(&n); problem_free(&p);
}

/* The same inputs give the same bits: twice on one thread count, and on 1
 * and 2 threads (each (sequence, head) pair is computed by one thread). */
Test(ssd, chunked_passes_are_bitwise_deterministic)
{
    int saved = omp_get_max_threads();
    grads g[3];
    for (int k = 0; k < 3; k++) {
        omp_set_num_threads(k == 2 ? 1 : 2);
        problem p = problem_make(3, 29, 4, 4, 2, 5, 8, 5);
        g[k] = grads_alloc(&p);
        run(&p, 0, &g[k]);
        problem_free(&p);
    }
    omp_set_num_threads(saved);
    size_t BL = 3 * 29, Cw = 16 + 2 * 2 * 5;
    for (int k = 1; k < 3; k++) {
        cr_expect(memcmp(g[0].y, g[k].y, sizeof(float) * BL * 16) == 0, "y differs (run %d)", k);
        cr_expect(memcmp(g[0].dxbc, g[k].dxbc, sizeof(float) * BL * Cw) == 0, "dxbc differs (run %d)", k);
        cr_expect(memcmp(g[0].ddt, g[k].ddt, sizeof(float) * BL * 4) == 0, "ddt differs (run %d)", k);
        cr_expect(memcmp(g[0].dA, g[k].dA, sizeof(float) * 4) == 0, "dA differs (run %d)", k);
    }
    for (int k = 0; k < 3; k++) grads_free(&g[k]);
}

Test(ssd, short_work_space_is_refused)
{
    problem p = problem_make(1, 5, 2, 2, 1, 2, 2, 9);
    grads g = grads_alloc(&p);
    p.a.work_n = 1;
    cr_expect_neq(ssm_ssd_forward(&p.a, g.y), SSM_OK);
    cr_expect_neq(ssm_ssd_backward(&p.a, p.dy, g.dxbc, g.dxbc, g.dxbc, g.ddt, g.dA, g.dD), SSM_OK);
    grads_free(&g); problem_free(&p);
}

/* ------------------------------------------------------------------------ */
/* The recurrent step of generation                                         */

/* L steps of ssm_ssd_step against its naive twin on a (1, L) problem: y
 * within 1e-5 of the largest |y| (bitwise when N is not a multiple of 16,
 * where the twin runs); and the heads stepped in two ranges split at k give
 * the bits of one range over all of them */
static void check_step_matches_naive(int H, int P, int G, int N, int L, int k)
{
    problem pr = problem_make(1, L, H, P, G, N, 4, 77);
    const ssm_ssd_args *a = &pr.a;
    size_t E = (size_t)H * P, HPN = E * N;
    float *h1 = falloc(HPN), *h2 = falloc(HPN), *h3 = falloc(HPN);
    float *y1 = falloc(E), *y2 = falloc(E), *y3 = falloc(E);
    double worst = 0.0, top = 0.0;
    for (int t = 0; t < L; t++) {
        const float *x = a->x + (size_t)t * a->ld_x, *Bt = a->Bm + (size_t)t * a->ld_bc,
                    *Ct = a->Cm + (size_t)t * a->ld_bc, *dt = a->dt + (size_t)t * H;
        ssm_ssd_step_naive(0, H, H, P, G, N, x, Bt, Ct, dt, a->A, a->Dskip, h1, y1);
        ssm_ssd_step(0, H, H, P, G, N, x, Bt, Ct, dt, a->A, a->Dskip, h2, y2);
        ssm_ssd_step(k, H, H, P, G, N, x, Bt, Ct, dt, a->A, a->Dskip, h3, y3);
        ssm_ssd_step(0, k, H, P, G, N, x, Bt, Ct, dt, a->A, a->Dskip, h3, y3);
        for (size_t i = 0; i < E; i++) {
            worst = fmax(worst, fabs(y2[i] - y1[i]));
            top = fmax(top, fabs(y1[i]));
        }
        if (N % 16) cr_expect_arr_eq(y2, y1, sizeof(float) * E, "N %d: the twin's bits at step %d", N, t);
        cr_expect_arr_eq(y3, y2, sizeof(float) * E, "heads split at %d change the bits at step %d", k, t);
    }
    cr_expect_arr_eq(h3, h2, sizeof(float) * HPN, "heads split at %d change the state", k);
    cr_expect_leq(worst, 1e-5 * top, "H %d P %d G %d N %d: step off its twin by %g of %g", H, P, G, N,
                  worst, top);
    free(h1); free(h2); free(h3); free(y1); free(y2); free(y3);
    problem_free(&pr);
}

Test(ssd, step_matches_naive_lanes)      { check_step_matches_naive(4, 8, 2, 16, 9, 1); }
Test(ssd, step_matches_naive_wide_state) { check_step_matches_naive(6, 4, 3, 128, 7, 4); }
Test(ssd, step_matches_naive_odd_state)  { check_step_matches_naive(4, 3, 1, 5, 6, 2); }
