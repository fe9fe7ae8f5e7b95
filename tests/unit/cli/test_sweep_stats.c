/* test_sweep_stats.c — unit tests of the statistics of `ssmlab sweep
 * --seeds` (cli/sweep_stats.c) against hand-worked values: the mean and
 * 95% interval with t quantiles from a printed table (t_0.975 = 4.303 for
 * df 2, 2.776 for df 4), the paired t-test with the exact two-sided
 * p-value of df 2, 1 - |t| / sqrt(t^2 + 2); one value (no interval), a
 * non-finite value (no mean), unpaired seeds left out, no spread. */
#include <criterion/criterion.h>
#include <math.h>

#include "cli/sweep_stats.h"

Test(sweep_stats, mean_and_interval)
{
    const double x[] = {1, 2, 3, 4, 5};
    sweep_stats_summary s;
    sweep_stats_summarize(x, 5, &s);
    cr_assert_eq(s.n, 5);
    cr_assert_float_eq(s.mean, 3.0, 1e-12);
    cr_assert_float_eq(s.sd, sqrt(2.5), 1e-12);
    cr_assert_float_eq(s.ci95, 2.776 * sqrt(2.5) / sqrt(5.0), 1e-3);   /* df 4 */
    const double y[] = {10, 12, 17};                                       /* sd sqrt(13) */
    sweep_stats_summarize(y, 3, &s);
    cr_assert_float_eq(s.ci95, 4.303 * sqrt(13.0) / sqrt(3.0), 1e-3);      /* df 2 */
}

Test(sweep_stats, one_value_or_a_gap)
{
    const double x[] = {2.5}, y[] = {1, NAN, 3}, z[] = {1, INFINITY};
    sweep_stats_summary s;
    sweep_stats_summarize(x, 1, &s);
    cr_assert_float_eq(s.mean, 2.5, 1e-12);
    cr_assert(isnan(s.ci95) && isnan(s.sd));
    sweep_stats_summarize(y, 3, &s);
    cr_assert(isnan(s.mean) && isnan(s.ci95));
    sweep_stats_summarize(z, 2, &s);
    cr_assert(isnan(s.mean));
    sweep_stats_summarize(x, 0, &s);
    cr_assert(isnan(s.mean));
}

/* differences 1, 2, 2: mean 5/3, sd sqrt(1/3), t = 5 */
Test(sweep_stats, paired_t_test)
{
    const double a[] = {1, NAN, 2, 3}, b[] = {2, 9, 4, 5};
    sweep_stats_paired d;
    sweep_stats_compare(a, b, 4, &d);
    cr_assert_eq(d.n, 3);   /* the seed without a value in a is left out */
    cr_assert_float_eq(d.mean, 5.0 / 3, 1e-12);
    cr_assert_float_eq(d.t, 5.0, 1e-9);
    cr_assert_float_eq(d.ci95, 4.303 * sqrt(1.0 / 3) / sqrt(3.0), 1e-3);
    cr_assert_float_eq(d.p, 1 - 5 / sqrt(27.0), 1e-9);
    sweep_stats_compare(b, a, 4, &d);   /* the other way round: same p, minus t */
    cr_assert_float_eq(d.t, -5.0, 1e-9);
    cr_assert_float_eq(d.p, 1 - 5 / sqrt(27.0), 1e-9);
}

Test(sweep_stats, no_spread_or_too_few)
{
    const double a[] = {1, 2, 3}, b[] = {1, 2, 3}, c[] = {2, 3, 4};
    sweep_stats_paired d;
    sweep_stats_compare(a, b, 3, &d);
    cr_assert(d.mean == 0 && d.p == 1 && isnan(d.t) && d.ci95 == 0);
    sweep_stats_compare(a, c, 3, &d);
    cr_assert(d.mean == 1 && d.p == 0 && isnan(d.t));
    sweep_stats_compare(a, c, 1, &d);
    cr_assert(d.n == 1 && isnan(d.ci95) && isnan(d.p));
}
