/* split.h — the one rule for sharing n rows among the threads of an OpenMP
 * region: thread t of T takes rows [n t / T, n (t + 1) / T).  The split
 * depends only on the thread count, so results that are summed per row
 * block are the same run after run (model.c's GEMMs, generate.c's and
 * bf16.c's matrix-vector products). */
#ifndef SSM_SPLIT_H
#define SSM_SPLIT_H

#include <omp.h>

/* Work (multiply-adds, or state entries for a scan step) below which a
 * product runs on the calling thread: an OpenMP region costs more. */
#define SSM_SPLIT_MIN_WORK (1L << 17)

/* rows [*lo, *hi) of n for the calling OpenMP thread */
static inline void ssm_split_rows(int n, int *lo, int *hi)
{
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    *lo = (int)((long)n * t / T);
    *hi = (int)((long)n * (t + 1) / T);
}

/* The next index of a counter the threads of a region share, starting at
 * 0: tasks whose bits do not depend on the thread go to whichever thread is
 * free.  Not schedule(dynamic): Debian's libomp is built with KMP_DEBUG, and
 * its dynamic loops format a trace string through libc at every start. */
static inline int ssm_split_claim(int *next)
{
    return __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
}

#endif
