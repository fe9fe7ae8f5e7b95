/* dist.h — the one door to Open MPI: ranks of a data-parallel training
 * run or a distributed sweep, gradient sums, broadcasts and the sweep's
 * point-to-point messages.  Built with SSMLAB_MPI (the Makefile defines it
 * when pkg-config finds ompi-c) it calls MPI, and only when a launcher
 * started the process (mpirun, srun: ssm_dist_launched); otherwise, and
 * without SSMLAB_MPI, every call is the single-process no-op (rank 0 of
 * 1).  No other file includes mpi.h. */
#ifndef SSM_DIST_H
#define SSM_DIST_H

#include <stddef.h>

#include "engine/status.h"

/* Whether a launcher started this process as one rank of a job (its
 * environment names a rank: OMPI_COMM_WORLD_RANK, PMIX_RANK or PMI_RANK),
 * and SSMLAB_NO_MPI is unset.  A child process the sweep runs gets
 * SSMLAB_NO_MPI=1 (ssm_dist_child_env), so it trains alone. */
int ssm_dist_launched(void);

/* Join the job when launched (MPI_Init), else stay rank 0 of 1.  Safe to
 * call more than once; SSM_ERR_SOFTWARE when launched but built without
 * MPI (a job of P copies that would each train alone). */
ssm_status ssm_dist_init(int *argc, char ***argv);
/* Leave the job (MPI_Finalize); a no-op when not joined.  After
 * ssm_dist_lost it leaves without MPI_Finalize, which would wait for the
 * dead rank forever. */
void ssm_dist_finalize(void);
/* A rank of the job is known dead (under `mpirun --enable-recovery`). */
void ssm_dist_lost(void);
/* End every rank of the job with exit code code (MPI_Abort): for an error
 * on one rank that the others would wait on forever.  Without a job,
 * returns. */
void ssm_dist_abort(int code);

int ssm_dist_rank(void);   /* 0 .. size-1 */
int ssm_dist_size(void);   /* 1 when not joined */

/* Element-wise sums over the ranks, in place, the same result on every
 * rank: x (n).  Collective: every rank calls them in the same order. */
ssm_status ssm_dist_allreduce_sum_f32(float *x, size_t n);
ssm_status ssm_dist_allreduce_sum_f64(double *x, size_t n);
/* Whether flag is nonzero on any rank (collective). */
int ssm_dist_any(int flag);
/* Copy root's n bytes at buf to every rank (collective). */
ssm_status ssm_dist_bcast(void *buf, size_t n, int root);

/* Point-to-point messages of the sweep: n bytes to rank dst with tag. */
ssm_status ssm_dist_send(int dst, int tag, const void *buf, size_t n);
/* Without blocking: whether a message with tag waits from any rank; *src
 * and *n get its sender and size. */
int ssm_dist_poll(int tag, int *src, size_t *n);
/* Receive the message with tag from src (blocking) into buf (n bytes). */
ssm_status ssm_dist_recv(int src, int tag, void *buf, size_t n);

/* In a forked child about to exec ssmlab: SSMLAB_NO_MPI=1, so the child
 * does not take itself for a rank of its parent's job. */
void ssm_dist_child_env(void);

#endif
