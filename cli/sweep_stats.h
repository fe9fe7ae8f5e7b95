/* sweep_stats.h — the statistics of `ssmlab sweep --seeds`: the mean of a
 * column over a preset's seeds with its 95% confidence interval (Student t,
 * n - 1 degrees of freedom), and the paired comparison of two presets over
 * the seeds both ran (mean difference, its 95% interval, two-sided paired
 * t-test).  GSL gives the t quantiles and tail probabilities. */
#ifndef SSM_CLI_SWEEP_STATS_H
#define SSM_CLI_SWEEP_STATS_H

typedef struct {
    int n;          /* values summarised */
    double mean;    /* NAN when n == 0 or a value is not finite */
    double sd;      /* sample standard deviation (n - 1), NAN when n < 2 */
    double ci95;    /* t_{0.975, n-1} sd / sqrt(n), NAN when n < 2 */
} sweep_stats_summary;

typedef struct {
    int n;          /* pairs where both values are finite */
    double mean;    /* mean of b - a, NAN when n == 0 */
    double ci95;    /* half-width of its 95% interval, NAN when n < 2 */
    double t;       /* mean / (sd / sqrt(n)), NAN when n < 2 or sd == 0 */
    double p;       /* two-sided p-value, 2 Q_t(|t|, n - 1); sd == 0: 1 if mean == 0 else 0 */
} sweep_stats_paired;

/* Mean and 95% CI of x[0 .. n); every value must be finite, else mean,
 * sd and ci95 are NAN (a column a run leaves empty has no mean). */
void sweep_stats_summarize(const double *x, int n, sweep_stats_summary *s);

/* Paired comparison of b against a, a[i] and b[i] from the same seed;
 * pairs with a non-finite value are left out. */
void sweep_stats_compare(const double *a, const double *b, int n, sweep_stats_paired *s);

#endif
