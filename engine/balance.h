/* balance.h — sharing n rows among the threads of an OpenMP team in
 * proportion to their measured speeds.  The two vCPUs of a shared host
 * seldom run at the same rate (one ran 20-40% slower for a whole run,
 * either one), and an even split leaves the faster one waiting at every
 * barrier.  Only for work whose bits do not depend on which thread does a
 * row, so that the speeds move time, never results: a row computed whole
 * by one thread (generate.c's products and channels), or sgemm's rows of
 * tokens split at multiples of the kernel's row block (model.c). */
#ifndef SSM_BALANCE_H
#define SSM_BALANCE_H

/* The largest team whose speeds are kept; threads past it get no rows. */
#define SSM_TEAM_MAX 64

/* A zeroed struct splits evenly (a speed of 0 counts as unset). */
typedef struct {
    double speed[SSM_TEAM_MAX]; /* relative rate of each thread, mean 1 */
    double busy[SSM_TEAM_MAX];  /* seconds at the work since the last update */
    double work[SSM_TEAM_MAX];  /* units of work done since then */
} ssm_balance;

/* Even speeds, nothing measured. */
void ssm_balance_reset(ssm_balance *b);

/* Rows [*lo, *hi) of n for the calling thread, in proportion to the
 * speeds, every bound but n a multiple of granule (>= 1); each thread sums
 * the speeds in the same order, so one thread's hi is the next one's lo,
 * and the last one's is n. */
void ssm_balance_rows(const ssm_balance *b, int n, int granule, int *lo, int *hi);

/* The calling thread spent the seconds since t0 (omp_get_wtime) on work
 * units (rows, rows times columns). */
void ssm_balance_done(ssm_balance *b, double t0, double work);

/* Outside the region, or on one thread after a barrier: each thread's
 * speed moves halfway to its rate since the last update (relative to
 * thread 0, and at most 2x from its speed: one descheduled moment does not
 * starve a thread), then all are kept to a mean of 1 and the sums start
 * again.  A thread that measured nothing keeps its speed. */
void ssm_balance_update(ssm_balance *b, int T);

#endif
