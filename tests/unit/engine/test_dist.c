/* test_dist.c — unit tests of engine/dist.h without a launcher: a process
 * that no mpirun or srun started (or that SSMLAB_NO_MPI marks, as the
 * sweep marks its training children) is rank 0 of 1, and every collective
 * leaves its buffer as it is; the MPI job itself is tested end to end by
 * tests/e2e/mpi_train.sh and mpi_sweep.sh. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "engine/dist.h"

Test(dist, launcher_detected_from_the_environment)
{
    unsetenv("OMPI_COMM_WORLD_RANK");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_RANK");
    unsetenv("SSMLAB_NO_MPI");
    cr_assert_not(ssm_dist_launched());
    setenv("PMI_RANK", "0", 1);
    cr_assert(ssm_dist_launched(), "srun's PMI_RANK names a rank");
    ssm_dist_child_env();
    cr_assert_not(ssm_dist_launched(), "SSMLAB_NO_MPI=1 trains alone");
    setenv("SSMLAB_NO_MPI", "0", 1);
    cr_assert(ssm_dist_launched());
    unsetenv("PMI_RANK");
    unsetenv("SSMLAB_NO_MPI");
}

Test(dist, alone_is_rank_0_of_1)
{
    unsetenv("OMPI_COMM_WORLD_RANK");
    unsetenv("PMIX_RANK");
    unsetenv("PMI_RANK");
    cr_assert_eq(ssm_dist_init(NULL, NULL), SSM_OK);
    cr_assert_eq(ssm_dist_rank(), 0);
    cr_assert_eq(ssm_dist_size(), 1);
    float x[3] = {1.5f, -2.0f, 3.25f};
    double y[2] = {0.125, 7.0};
    long step = 42, got = step;
    cr_assert_eq(ssm_dist_allreduce_sum_f32(x, 3), SSM_OK);
    cr_assert_eq(ssm_dist_allreduce_sum_f64(y, 2), SSM_OK);
    cr_assert_eq(ssm_dist_bcast(&got, sizeof got, 0), SSM_OK);
    cr_assert(x[0] == 1.5f && x[1] == -2.0f && x[2] == 3.25f, "a sum over one rank is the value");
    cr_assert(y[0] == 0.125 && y[1] == 7.0);
    cr_assert_eq(got, step);
    cr_assert_eq(ssm_dist_any(0), 0);
    cr_assert_eq(ssm_dist_any(5), 1);
    int src;
    size_t n;
    cr_assert_not(ssm_dist_poll(1, &src, &n), "no messages without a job");
    cr_assert_neq(ssm_dist_send(1, 1, x, sizeof x), SSM_OK, "no one to send to");
    ssm_dist_finalize();
    cr_assert_eq(ssm_dist_size(), 1);
}
