/* sweep_stats.c — mean and 95% t interval over seeds, and the paired
 * t-test of two presets, for `ssmlab sweep --seeds` (cli/sweep_stats.h). */
#include <math.h>
#include <stdlib.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>

#include "cli/sweep_stats.h"

/* t_{0.975, n-1} sd / sqrt(n) for n >= 2 values of sample sd */
static double stats_ci_half(double sd, int n)
{
    return gsl_cdf_tdist_Pinv(0.975, n - 1) * sd / sqrt((double)n);
}

void sweep_stats_summarize(const double *x, int n, sweep_stats_summary *s)
{
    *s = (sweep_stats_summary){n, NAN, NAN, NAN};
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return;
    if (n < 1) return;
    s->mean = gsl_stats_mean(x, 1, (size_t)n);
    if (n < 2) return;
    s->sd = gsl_stats_sd(x, 1, (size_t)n);
    s->ci95 = stats_ci_half(s->sd, n);
}

void sweep_stats_compare(const double *a, const double *b, int n, sweep_stats_paired *s)
{
    *s = (sweep_stats_paired){0, NAN, NAN, NAN, NAN};
    double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);   /* (n) b - a of the finite pairs */
    if (!d) return;
    for (int i = 0; i < n; i++)
        if (isfinite(a[i]) && isfinite(b[i])) d[s->n++] = b[i] - a[i];
    if (s->n >= 1) s->mean = gsl_stats_mean(d, 1, (size_t)s->n);
    if (s->n >= 2) {
        double sd = gsl_stats_sd(d, 1, (size_t)s->n);
        s->ci95 = stats_ci_half(sd, s->n);
        if (sd > 0) {
            s->t = s->mean / (sd / sqrt((double)s->n));
            s->p = 2 * gsl_cdf_tdist_Q(fabs(s->t), s->n - 1);
        } else {
            s->p = s->mean == 0 ? 1 : 0;
        }
    }
    free(d);
}
