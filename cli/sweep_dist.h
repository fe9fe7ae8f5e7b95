/* sweep_dist.h — the runs of `ssmlab sweep` over the ranks of an MPI job
 * (engine/dist.h): rank 0 hands out run indices as ranks free up and runs
 * some itself; every run is a forked child process (which trains through
 * its own `ssmlab train` child), so a run that crashes or is killed, even
 * with SIGKILL, loses only itself: rank 0 hears of it as a failed run and
 * the sweep goes on.  A rank that dies (its process killed, its machine
 * gone) loses only the run it had, when the job runs under `mpirun
 * --enable-recovery`: rank 0 hears nothing from it for the timeout, marks
 * that run failed and gives it no more.  A signal on a rank stops it handing out (rank 0) or
 * taking (the others) new runs; the child running gets SIGTERM, which its
 * training child turns into a resumable checkpoint. */
#ifndef SSM_CLI_SWEEP_DIST_H
#define SSM_CLI_SWEEP_DIST_H

#include <stddef.h>

/* Run i in the forked child: fill result (result_size bytes, zeroed) and
 * return an exit code, EX_OK when result holds the run's numbers. */
typedef int (*sweep_dist_run_fn)(void *ctx, int i, void *result);

/* On rank 0, as each run ends: code is its exit code (128 + the signal
 * when killed, SWEEP_DIST_LOST when its rank died: silent for
 * SSMLAB_SWEEP_TIMEOUT seconds, 60 by default, under `mpirun
 * --enable-recovery`, without which Open MPI ends the job), result its
 * bytes (meaningful when code is 0), rank the rank that ran it. */
#define SWEEP_DIST_LOST 256   /* no exit code: the sweep exits EX_UNAVAILABLE for it */
typedef void (*sweep_dist_done_fn)(void *ctx, int i, int code, const void *result, int rank);

/* Runs 0 .. n-1 over the ranks; every rank calls it with the same n and
 * result_size.  Returns on rank 0 when every run has ended (or, after a
 * signal, every started one): EX_OK, or 128 + the signal; on the other
 * ranks when rank 0 has no more runs for them. */
int sweep_dist_runs(int n, size_t result_size, sweep_dist_run_fn run, sweep_dist_done_fn done, void *ctx);

#endif
