/* test_balance.c — unit tests of engine/balance.c: the rows of a team cover
 * n once, in order, in proportion to the speeds and at multiples of the
 * granule; a zeroed balance splits evenly; an update moves each speed
 * halfway to its measured rate, at most 2x, and keeps the mean at 1. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "engine/balance.h"

/* Each thread of a team of T runs ssm_balance_rows; lo, hi (T) get them. */
static void team_rows(const ssm_balance *b, int T, int n, int granule, int *lo, int *hi)
{
#pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num();
        cr_assert_eq(omp_get_num_threads(), T, "the team was not granted");
        ssm_balance_rows(b, n, granule, &lo[t], &hi[t]);
    }
}

Test(balance, rows_cover_n_in_order_at_the_granule)
{
    ssm_balance b;
    ssm_balance_reset(&b);
    const double speed[3] = {0.5, 1.7, 0.8};
    for (int t = 0; t < 3; t++) b.speed[t] = speed[t];
    int lo[3], hi[3];
    team_rows(&b, 3, 1007, 12, lo, hi);
    cr_expect_eq(lo[0], 0);
    cr_expect_eq(hi[2], 1007);
    for (int t = 0; t < 3; t++) {
        if (t > 0) cr_expect_eq(lo[t], hi[t - 1], "thread %d starts where %d ends", t, t - 1);
        cr_expect_eq(lo[t] % 12, 0, "thread %d starts at %d", t, lo[t]);
        double want = 1007 * speed[t] / 3.0;
        cr_expect(fabs((hi[t] - lo[t]) - want) <= 24, "thread %d: %d rows, want about %.0f", t,
                  hi[t] - lo[t], want);
    }
}

Test(balance, a_zeroed_balance_splits_evenly)
{
    ssm_balance b;
    memset(&b, 0, sizeof b);
    int lo[2], hi[2];
    team_rows(&b, 2, 100, 1, lo, hi);
    cr_expect_eq(lo[0], 0);
    cr_expect_eq(hi[0], 50);
    cr_expect_eq(lo[1], 50);
    cr_expect_eq(hi[1], 100);
}

Test(balance, update_moves_halfway_at_most_2x_and_keeps_the_mean)
{
    ssm_balance b;
    ssm_balance_reset(&b);
    /* thread 1 ran at 3/4 of thread 0's rate: halfway is 1 : 0.875 */
    b.busy[0] = 1.0; b.work[0] = 100.0;
    b.busy[1] = 1.0; b.work[1] = 75.0;
    ssm_balance_update(&b, 2);
    cr_expect_float_eq(b.speed[1] / b.speed[0], 0.875, 1e-12);
    cr_expect_float_eq(b.speed[0] + b.speed[1], 2.0, 1e-12);
    cr_expect_eq(b.busy[0], 0.0, "the sums start again");
    /* thread 1 stalled (a tenth of the rate): its speed falls by 1/4 (halfway to 0.5x) */
    double before = b.speed[1] / b.speed[0];
    b.busy[0] = 1.0; b.work[0] = 100.0;
    b.busy[1] = 1.0; b.work[1] = 100.0 * before / 10.0;
    ssm_balance_update(&b, 2);
    cr_expect_float_eq(b.speed[1] / b.speed[0], before * 0.75, 1e-12);
    /* a thread that measured nothing keeps its relative speed */
    before = b.speed[1] / b.speed[0];
    b.busy[0] = 1.0; b.work[0] = 100.0;
    ssm_balance_update(&b, 2);
    cr_expect_float_eq(b.speed[1] / b.speed[0], before, 1e-12);
}
