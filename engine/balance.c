/* balance.c — rows shared among a team by measured speed (balance.h). */
#include "engine/balance.h"

#include <omp.h>

/* Thread t's speed; an unset one (zeroed struct) counts as even. */
static double speed_of(const ssm_balance *b, int t)
{
    return b->speed[t] > 0.0 ? b->speed[t] : 1.0;
}

static int team_of(int T)
{
    return T < SSM_TEAM_MAX ? T : SSM_TEAM_MAX;
}

void ssm_balance_reset(ssm_balance *b)
{
    for (int t = 0; t < SSM_TEAM_MAX; t++) {
        b->speed[t] = 1.0;
        b->busy[t] = b->work[t] = 0.0;
    }
}

/* The bound at fraction f of n, down to a multiple of granule */
static int bound_at(int n, double f, int granule)
{
    int r = (int)(n * f);
    return r - r % granule;
}

void ssm_balance_rows(const ssm_balance *b, int n, int granule, int *lo, int *hi)
{
    int t = omp_get_thread_num(), T = team_of(omp_get_num_threads());
    if (t >= T) {
        *lo = *hi = n;
        return;
    }
    double before = 0.0, total = 0.0;
    for (int i = 0; i < T; i++) {
        if (i == t) before = total;
        total += speed_of(b, i);
    }
    *lo = bound_at(n, before / total, granule);
    *hi = t == T - 1 ? n : bound_at(n, (before + speed_of(b, t)) / total, granule);
}

void ssm_balance_done(ssm_balance *b, double t0, double work)
{
    int t = omp_get_thread_num();
    if (t >= SSM_TEAM_MAX) return;
    b->busy[t] += omp_get_wtime() - t0;
    b->work[t] += work;
}

void ssm_balance_update(ssm_balance *b, int T)
{
    T = team_of(T);
    double *busy = b->busy, *work = b->work;
    if (busy[0] > 0.0 && work[0] > 0.0) {
        double r0 = work[0] / busy[0], s0 = speed_of(b, 0), sum = 0.0;
        for (int t = 0; t < T; t++) {
            double s = speed_of(b, t);
            if (busy[t] > 0.0 && work[t] > 0.0) {   /* one hiccup moves a speed at most 2x */
                double r = (work[t] / busy[t]) / r0 * s0 / s;
                s *= 0.5 + 0.5 * (r < 0.5 ? 0.5 : r > 2.0 ? 2.0 : r);
            }
            b->speed[t] = s;
            sum += s;
        }
        for (int t = 0; t < T; t++) b->speed[t] = b->speed[t] / sum * T;
    }
    for (int t = 0; t < T; t++) busy[t] = work[t] = 0.0;
}
