/* scan.h — the selective scan and the causal depthwise convolution of one
 * Mamba layer (ssmlab-math(7) MODEL steps 2 and 5), forward and backward.  Each kernel has
 * a fast version (OpenMP over batch x channel blocks, state kept in registers,
 * vectorised over channels; the scan at the CPU's widest vectors, chosen at
 * run time) and a naive twin that follows the formula literally; tests hold
 * the two together.
 *
 * All tensors are float32, row-major.  Fast kernels are deterministic for a
 * fixed thread count. */
#ifndef SSM_SCAN_H
#define SSM_SCAN_H

#include <stddef.h>

#include "engine/status.h"

/* The scan of ssmlab-math(7) MODEL step 5, for every b, t, e:
 *   h_t[e,n] = exp(delta_t[e] A[e,n]) h_{t-1}[e,n] + delta_t[e] B_t[n] u_t[e]
 *   y_t[e]   = sum_n C_t[n] h_t[e,n] + Dskip[e] u_t[e]                      */
typedef struct {
    int B, L, E, N;
    const float *u;      /* (B, L, E) */
    const float *delta;  /* (B, L, E) */
    const float *Bm;     /* (B, L, ld_bc): B_t[n] at Bm[(b*L + t)*ld_bc + n] */
    const float *Cm;     /* (B, L, ld_bc): C_t[n] likewise */
    int ld_bc;           /* row stride of Bm and Cm (R + 2N inside xdbl) */
    const float *A;      /* (E, N), already negative */
    const float *Dskip;  /* (E) */
    float *work;         /* (work_n) the caller's work space, 64-byte aligned,
                          * of ssm_scan_work_size() floats; NULL: each call
                          * allocates its own */
    size_t work_n;
    /* Probes (ssmlab-inspect(1) STATES and INTERVENTIONS), all NULL in a
     * plain run.  The fast kernels hold none of them: when one is set, the
     * naive scans run. */
    const float *keep;   /* (E, N): after every step h[e,n] *= keep[e,n], so
                          * 0 holds channel (e, n) at zero (an ablation);
                          * forward and backward */
    float *h_out;        /* (B, L, E, N): the forward writes h_t, the state
                          * after token t, of every position.  With h_out or
                          * patch_h the naive forward carries h_t rounded to
                          * float (as the fast kernels do), so that a patch
                          * of a recorded h_t changes nothing to the last bit */
    const float *patch_h;/* (B, E, N): the forward replaces h_t at t = patch_t
                          * by it before y_t is read; forward only */
    int patch_t;
    /* Not a probe: every forward kernel writes it when set. */
    float *h_last;       /* (B, E, N): the state after the last token of each
                          * sequence (to continue it with ssm_scan_step) */
} ssm_scan_args;

/* Whether a probe field is set, so that the naive scans must run. */
int ssm_scan_probed(const ssm_scan_args *a);

/* Floats of work space the scans of a (B, L, E, N) problem need, run on up
 * to threads OpenMP threads: the forward's only, or the forward's and the
 * backward's (backward set).  Work space of it, handed in through
 * ssm_scan_args, makes the scans allocate nothing.  With fewer threads'
 * worth, the fast backward runs on as many threads as it holds. */
size_t ssm_scan_work_size(int B, int L, int E, int N, int threads, int backward);

/* The path the fast scans take, chosen once at run time from the CPU
 * (cpuid), whatever -march the build used:
 *   avx2    8 channels a block, the loops vectorised by the compiler for
 *           the build's -march (AVX2 under the Makefile's default on an
 *           AVX2 machine); runs everywhere, backward and forward.
 *   avx512  16 channels a block in AVX-512F intrinsics, compiled by target
 *           attributes, the state (and in the backward's reverse sweep
 *           its gradient) held in registers over the whole sequence
 *           (N = 16) or in a stack array (other N); forward and
 *           backward, only on a CPU with AVX-512F.
 * auto picks avx512 when the CPU has it, else avx2.  Each path is
 * deterministic for a fixed thread count; the two differ from each other
 * by float rounding only (the tests hold each one to the naive twins).
 * ssm_scan_isa_set fails (SSM_ERR_CONFIG) for a path the CPU lacks;
 * ssm_scan_isa_get returns the path in use, never auto.  Tests and
 * `ssmlab bench --case scan` force a path with them. */
typedef enum { SSM_SCAN_ISA_AUTO = 0, SSM_SCAN_ISA_AVX2, SSM_SCAN_ISA_AVX512 } ssm_scan_isa;
int ssm_scan_isa_supported(ssm_scan_isa isa);
ssm_status ssm_scan_isa_set(ssm_scan_isa isa);
ssm_scan_isa ssm_scan_isa_get(void);
const char *ssm_scan_isa_name(ssm_scan_isa isa);

/* The scans return SSM_OK, or SSM_ERR_NOMEM when their work space cannot
 * be allocated, or SSM_ERR_SOFTWARE when the caller's is too small (the
 * outputs are then undefined).  A state wider than the fast kernels hold
 * (N > 256) falls back to the naive scans, saying so once on stderr. */
ssm_status ssm_scan_forward(const ssm_scan_args *a, float *y /* (B, L, E) */);
ssm_status ssm_scan_forward_naive(const ssm_scan_args *a, float *y);

/* Backward of the scan given dy (B, L, E).
 * du, ddelta (B, L, E) are overwritten.
 * dBm, dCm use the layout of Bm, Cm (ld_bc) and only their N columns are
 * overwritten.  dA (E, N) and dD (E) are accumulated into (+=). */
ssm_status ssm_scan_backward(const ssm_scan_args *a, const float *dy,
                             float *du, float *ddelta, float *dBm, float *dCm,
                             float *dA, float *dD);
ssm_status ssm_scan_backward_naive(const ssm_scan_args *a, const float *dy,
                                   float *du, float *ddelta, float *dBm, float *dCm,
                                   float *dA, float *dD);

/* Causal depthwise conv of ssmlab-math(7) MODEL step 2 (zero left padding), no SiLU:
 *   out[b,t,e] = bias[e] + sum_k w[e,k] x[b, t-K+1+k, e]
 * x is read with row stride ldx (the u half of xz: ldx = 2E). */
typedef struct {
    int B, L, E, K;
    const float *x; int ldx; /* (B, L, ldx), first E columns used */
    const float *w;          /* (E, K) */
    const float *bias;       /* (E) */
    float *work;             /* (work_n) the caller's work space, 64-byte
                              * aligned, of ssm_conv_work_size() floats;
                              * NULL: the backward allocates its own */
    size_t work_n;
} ssm_conv_args;

/* Floats of work space the conv backward needs for B sequences of E
 * channels and K taps (the forward needs none). */
size_t ssm_conv_work_size(int B, int E, int K);

/* A kernel wider than the fast conv holds (K > 16), or no work space for
 * the backward, falls back to the naive conv, saying so once on stderr.
 *
 * The fast forward is a memory-bound pass: tasks of rows of (B*L), each
 * row in chunks of 256 channels with the chunk's taps transposed on the
 * stack, vectorised over channels (the taps unrolled for K = 4).  Every
 * output is the same sum in the same order (bias, then taps k = 0..K-1)
 * however the rows are split, so any thread count gives the same bits. */
void ssm_conv_forward(const ssm_conv_args *a, float *out /* (B, L, E) */);
void ssm_conv_forward_naive(const ssm_conv_args *a, float *out);

/* The conv and the SiLU of MODEL step 2 in one pass: uc = conv(x) as
 * ssm_conv_forward writes it (the backward needs it), u = SiLU(uc), both
 * (B, L, E).  The naive twin takes the SiLU in double. */
void ssm_conv_silu_forward(const ssm_conv_args *a, float *uc, float *u);
void ssm_conv_silu_forward_naive(const ssm_conv_args *a, float *uc, float *u);

/* The rows r0 <= r < r1 of (B*L) of ssm_conv_silu_forward (u NULL: no
 * SiLU), on the calling thread only: for a caller that spreads rows over
 * its own OpenMP region (the mixer runs the conv and the GEMMs after it on
 * the same rows, without a barrier between). */
void ssm_conv_silu_rows(const ssm_conv_args *a, int r0, int r1, float *uc, float *u);

/* dx uses x's layout (ldx) and only its first E columns are overwritten;
 * dw (E, K) and dbias (E) are accumulated into (+=). */
void ssm_conv_backward(const ssm_conv_args *a, const float *dout,
                       float *dx, float *dw, float *dbias);
void ssm_conv_backward_naive(const ssm_conv_args *a, const float *dout,
                             float *dx, float *dw, float *dbias);

/* One recurrent step for generation, for one sequence (B = 1): u, delta,
 * y are (E), Bt and Ct are (N), and h (E, N) carries the state.  N = 16 on
 * the AVX-512 path (ssm_scan_isa_get) runs a channel's states as one
 * vector and sums C h in a tree; otherwise the naive twin, which sums in
 * order of n.  A channel's result does not depend on E or on the other
 * channels, so a range of channels may be stepped in any split. */
void ssm_scan_step(int E, int N, const float *u, const float *delta,
                   const float *Bt, const float *Ct, const float *A,
                   const float *Dskip, float *h, float *y);
void ssm_scan_step_naive(int E, int N, const float *u, const float *delta,
                         const float *Bt, const float *Ct, const float *A,
                         const float *Dskip, float *h, float *y);

#endif
