/* dist.c — the Open MPI calls behind engine/dist.h, or their
 * single-process stand-ins when built without SSMLAB_MPI or run without
 * a launcher. */
#include "engine/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef SSMLAB_MPI
#include <mpi.h>
#endif

static int joined;          /* MPI_Init done by ssm_dist_init */
static int dist_rank, dist_size = 1;

int ssm_dist_launched(void)
{
    const char *off = getenv("SSMLAB_NO_MPI");
    if (off && *off && strcmp(off, "0")) return 0;
    return getenv("OMPI_COMM_WORLD_RANK") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

void ssm_dist_child_env(void)
{
    setenv("SSMLAB_NO_MPI", "1", 1);
}

int ssm_dist_rank(void)
{
    return dist_rank;
}

int ssm_dist_size(void)
{
    return dist_size;
}

#ifdef SSMLAB_MPI

ssm_status ssm_dist_init(int *argc, char ***argv)
{
    if (joined || !ssm_dist_launched()) return SSM_OK;
    int already = 0;
    MPI_Initialized(&already);
    if (!already && MPI_Init(argc, argv) != MPI_SUCCESS)
        return ssm_fail(SSM_ERR_SOFTWARE, "MPI_Init failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &dist_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dist_size);
    joined = 1;
    return SSM_OK;
}

static int lost;             /* a rank is dead: MPI_Finalize would hang */

void ssm_dist_lost(void)
{
    lost = 1;
}

void ssm_dist_finalize(void)
{
    if (!joined) return;
    if (!lost) MPI_Finalize();
    joined = 0;
    dist_rank = 0;
    dist_size = 1;
}

void ssm_dist_abort(int code)
{
    if (joined) MPI_Abort(MPI_COMM_WORLD, code);
}

/* MPI counts are int: large buffers go in chunks of at most INT_MAX / 2. */
#define DIST_CHUNK ((size_t)INT_MAX / 2)

static ssm_status allreduce(void *x, size_t n, size_t elem, MPI_Datatype type, const char *what)
{
    if (!joined || dist_size == 1) return SSM_OK;
    for (size_t off = 0; off < n; off += DIST_CHUNK) {
        int cnt = (int)(n - off < DIST_CHUNK ? n - off : DIST_CHUNK);
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)x + off * elem, cnt, type, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return ssm_fail(SSM_ERR_SOFTWARE, "MPI_Allreduce of %zu %s failed", n, what);
    }
    return SSM_OK;
}

ssm_status ssm_dist_allreduce_sum_f32(float *x, size_t n)
{
    return allreduce(x, n, sizeof *x, MPI_FLOAT, "floats");
}

ssm_status ssm_dist_allreduce_sum_f64(double *x, size_t n)
{
    return allreduce(x, n, sizeof *x, MPI_DOUBLE, "doubles");
}

int ssm_dist_any(int flag)
{
    if (!joined || dist_size == 1) return flag != 0;
    int in = flag != 0, out = in;
    if (MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return 1;
    return out;
}

ssm_status ssm_dist_bcast(void *buf, size_t n, int root)
{
    if (!joined || dist_size == 1) return SSM_OK;
    for (size_t off = 0; off < n; off += DIST_CHUNK) {
        int cnt = (int)(n - off < DIST_CHUNK ? n - off : DIST_CHUNK);
        if (MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS)
            return ssm_fail(SSM_ERR_SOFTWARE, "MPI_Bcast of %zu bytes failed", n);
    }
    return SSM_OK;
}

ssm_status ssm_dist_send(int dst, int tag, const void *buf, size_t n)
{
    if (!joined || n > (size_t)INT_MAX) return ssm_fail(SSM_ERR_SOFTWARE, "send to rank %d: no MPI job", dst);
    if (MPI_Send(buf, (int)n, MPI_BYTE, dst, tag, MPI_COMM_WORLD) != MPI_SUCCESS)
        return ssm_fail(SSM_ERR_SOFTWARE, "MPI_Send to rank %d failed", dst);
    return SSM_OK;
}

int ssm_dist_poll(int tag, int *src, size_t *n)
{
    if (!joined) return 0;
    int flag = 0, cnt = 0;
    MPI_Status s;
    if (MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &flag, &s) != MPI_SUCCESS || !flag) return 0;
    MPI_Get_count(&s, MPI_BYTE, &cnt);
    *src = s.MPI_SOURCE;
    *n = (size_t)cnt;
    return 1;
}

ssm_status ssm_dist_recv(int src, int tag, void *buf, size_t n)
{
    if (!joined || n > (size_t)INT_MAX) return ssm_fail(SSM_ERR_SOFTWARE, "receive from rank %d: no MPI job", src);
    if (MPI_Recv(buf, (int)n, MPI_BYTE, src, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return ssm_fail(SSM_ERR_SOFTWARE, "MPI_Recv from rank %d failed", src);
    return SSM_OK;
}

#else /* single process */

ssm_status ssm_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (ssm_dist_launched() && !joined) {
        const char *r = getenv("OMPI_COMM_WORLD_SIZE");
        if (r && strcmp(r, "1"))
            return ssm_fail(SSM_ERR_SOFTWARE, "started by a launcher as one of %s ranks, but this ssmlab was "
                            "built without MPI (install libopenmpi-dev and rebuild)", r);
    }
    joined = 0;
    return SSM_OK;
}

void ssm_dist_finalize(void) {}

void ssm_dist_lost(void) {}

void ssm_dist_abort(int code)
{
    (void)code;
}

ssm_status ssm_dist_allreduce_sum_f32(float *x, size_t n)
{
    (void)x;
    (void)n;
    return SSM_OK;
}

ssm_status ssm_dist_allreduce_sum_f64(double *x, size_t n)
{
    (void)x;
    (void)n;
    return SSM_OK;
}

int ssm_dist_any(int flag)
{
    return flag != 0;
}

ssm_status ssm_dist_bcast(void *buf, size_t n, int root)
{
    (void)buf;
    (void)n;
    (void)root;
    return SSM_OK;
}

ssm_status ssm_dist_send(int dst, int tag, const void *buf, size_t n)
{
    (void)tag;
    (void)buf;
    (void)n;
    return ssm_fail(SSM_ERR_SOFTWARE, "send to rank %d: built without MPI", dst);
}

int ssm_dist_poll(int tag, int *src, size_t *n)
{
    (void)tag;
    (void)src;
    (void)n;
    return 0;
}

ssm_status ssm_dist_recv(int src, int tag, void *buf, size_t n)
{
    (void)tag;
    (void)buf;
    (void)n;
    return ssm_fail(SSM_ERR_SOFTWARE, "receive from rank %d: built without MPI", src);
}

#endif
