/* ssd.h — the SSD scan of a Mamba-2 layer (ssmlab-math(7) MAMBA-2): per head h
 * of group g = h / (H/G), with a scalar A_h,
 *   h_t = exp(dt_t A_h) h_{t-1} + dt_t x_t B_t^T     (P, N)
 *   y_t = h_t C_t + D_h x_t                           (P)
 * in the chunked form (chunks of Q positions: within a chunk GEMMs through
 * the decay-masked C B^T, across chunks a recurrence over chunk states) and
 * its naive recurrent twin, forward and backward.
 *
 * Letters: B batch, L length, H heads, P head_dim, G groups, N d_state,
 * Q chunk_size; E = H P.  Every tensor is row-major, (B, L, ...). */
#ifndef SSM_SSD_H
#define SSM_SSD_H

#include <stddef.h>

#include "engine/status.h"

typedef struct {
    int B, L, H, P, G, N, Q;
    const float *x;      /* (B, L, ld_x): head h's x_t in columns [h P, h P + P) */
    int ld_x;
    const float *Bm;     /* (B, L, ld_bc): group g's B_t in columns [g N, g N + N) */
    const float *Cm;     /* (B, L, ld_bc): group g's C_t, likewise */
    int ld_bc;
    const float *dt;     /* (B, L, H)  dt_t after softplus */
    const float *A;      /* (H)        A_h = -exp(A_log_h) */
    const float *Dskip;  /* (H) */
    float *states;       /* (B, H, nc, P, N) the state entering each chunk
                          * (nc = ssm_ssd_chunks(L, Q)): written by the
                          * chunked forward (and by the naive one when set,
                          * so that the chunked backward can follow it),
                          * read by the chunked backward; may be NULL in
                          * the naive twin */
    float *h_last;       /* (B, H, P, N) the state after position L-1, or NULL */
    /* Probes (ssmlab-inspect(1) STATES and INTERVENTIONS), all NULL in a
     * plain run.  The chunked kernels hold none of them: when one is set,
     * ssm_ssd_forward and ssm_ssd_backward run the naive twin. */
    const float *keep;   /* (H, P, N): after every step h[h,p,n] *= keep, so 0
                          * holds that entry at zero (an ablation); forward
                          * and backward */
    float *h_out;        /* (B, L, H, P, N): the forward writes h_t, the
                          * state after position t, of every position */
    const float *patch_h;/* (B, H, P, N): the forward replaces h_t at t =
                          * patch_t by it before y_t is read; forward only */
    int patch_t;
    float *work;         /* (work_n) work space of ssm_ssd_work_size() floats */
    size_t work_n;
} ssm_ssd_args;

/* Whether a probe field is set, so that the naive twin runs. */
int ssm_ssd_probed(const ssm_ssd_args *a);

/* Chunks of Q positions covering L: ceil(L / Q). */
int ssm_ssd_chunks(int L, int Q);

/* Floats of work space the chunked forward (backward 0) or backward needs
 * on threads threads. */
size_t ssm_ssd_work_size(const ssm_ssd_args *a, int threads, int backward);

/* The chunk a forward with no backward after it takes, for a model's chunk
 * Q: at most SSM_SSD_INFER_Q.  The chunks only group the work (the
 * algebra is exact for any chunk; the outputs differ by rounding), and on
 * a CPU the intra-chunk products of a smaller chunk cost less than they
 * save; a backward reads the states of the model's own chunks. */
#define SSM_SSD_INFER_Q 64
static inline int ssm_ssd_infer_chunk(int Q) { return Q < SSM_SSD_INFER_Q ? Q : SSM_SSD_INFER_Q; }

/* y (B, L, E) = the scan of a, chunked (SSM_ERR_SOFTWARE when the work
 * space is short; the naive twin when a probe field is set) or naive
 * (which needs no work space; SSM_ERR_NOMEM without memory). */
ssm_status ssm_ssd_forward(const ssm_ssd_args *a, float *y);
ssm_status ssm_ssd_forward_naive(const ssm_ssd_args *a, float *y);

/* Gradients given dy (B, L, E): dx (x's layout, ld_x: its E columns
 * overwritten), dB and dC (Bm's layout, ld_bc: their G N columns
 * overwritten), ddt (B, L, H) overwritten, dA and dD (H) accumulated (+=).
 * The chunked backward reads the states its forward kept; with keep set
 * the naive twin runs (it recomputes the states). */
ssm_status ssm_ssd_backward(const ssm_ssd_args *a, const float *dy, float *dx, float *dB,
                            float *dC, float *ddt, float *dA, float *dD);
ssm_status ssm_ssd_backward_naive(const ssm_ssd_args *a, const float *dy, float *dx,
                                  float *dB, float *dC, float *ddt, float *dA, float *dD);

/* One recurrent step for generation, one sequence, of heads [h0, h1) of
 * H: x (H P), Bt and Ct (G N), dt (H) of one position; h (H, P, N)
 * carries the state; y (H P) gets h C + D x on those heads' rows (the
 * arrays are the whole position's, indexed by head).  A head's result
 * depends on that head alone, so the heads may be stepped in any split.
 * For N a multiple of 16 each row's h C is summed in 16 lanes, then a
 * fixed tree (vectorised; equal to the naive twin up to the sum's
 * rounding); otherwise, and in ssm_ssd_step_naive, the twin's arithmetic
 * (the naive forward's: one running sum in order of n). */
void ssm_ssd_step(int h0, int h1, int H, int P, int G, int N, const float *x, const float *Bt,
                  const float *Ct, const float *dt, const float *A, const float *Dskip, float *h,
                  float *y);
void ssm_ssd_step_naive(int h0, int h1, int H, int P, int G, int N, const float *x, const float *Bt,
                        const float *Ct, const float *dt, const float *A, const float *Dskip, float *h,
                        float *y);

#endif
