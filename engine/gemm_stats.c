/* gemm_stats.c — the GEMM counter of gemm_stats.h (a static total, off by default). */
#include "engine/gemm_stats.h"

#include "engine/clock.h"

static int counting;
static ssm_gemm_stats totals;

void ssm_gemm_stats_enable(int on)
{
    counting = on != 0;
    if (counting) totals = (ssm_gemm_stats){0};
}

ssm_gemm_stats ssm_gemm_stats_get(void) { return totals; }

double ssm_gemm_stats_begin(void) { return counting ? ssm_now_s() : 0.0; }

void ssm_gemm_stats_end(double t0, double flops)
{
    if (!counting) return;
    totals.seconds += ssm_now_s() - t0;
    totals.flops += flops;
    totals.calls++;
}
