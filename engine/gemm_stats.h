/* gemm_stats.h — an off-by-default counter of the model's GEMMs: the wall
 * seconds spent in them and the floating-point operations they did (2 M N K
 * per product), for the GEMM efficiency row of `ssmlab bench`.  Only the
 * calling (non-parallel) thread may touch it; when off it costs one branch
 * per GEMM call. */
#ifndef SSM_GEMM_STATS_H
#define SSM_GEMM_STATS_H

typedef struct {
    double seconds;   /* wall time inside the counted GEMM calls */
    double flops;     /* 2 M N K summed over them */
    long calls;
} ssm_gemm_stats;

/* Start (on != 0) or stop counting; starting zeroes the totals. */
void ssm_gemm_stats_enable(int on);

/* The totals since the last start. */
ssm_gemm_stats ssm_gemm_stats_get(void);

/* Around one GEMM call: begin returns the clock (or 0 when off), end adds
 * the time since t0 and flops when counting is on. */
double ssm_gemm_stats_begin(void);
void ssm_gemm_stats_end(double t0, double flops);

#endif
