/* bound.c — regular-file checks, header claims against file sizes, the gzip
 * growth limit and the memory checks of bound.h, shared by every reader. */
#include "engine/bound.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a plain file";
}

ssm_status ssm_bound_file(const char *path, uint64_t *size)
{
    struct stat sb;
    *size = 0;
    if (stat(path, &sb) != 0)
        return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return ssm_fail(SSM_ERR_NOINPUT, "%s: not a regular file (%s)", path, file_kind(sb.st_mode));
    *size = (uint64_t)sb.st_size;
    return SSM_OK;
}

ssm_status ssm_bound_dims(const char *path, int ndim, const size_t *dims, uint64_t elem,
                          uint64_t have, size_t *bytes)
{
    uint64_t n = elem;
    int over = 0;
    for (int i = 0; i < ndim; i++)
        over |= __builtin_mul_overflow(n, (uint64_t)dims[i], &n);
    if (over || n > SIZE_MAX)
        return ssm_fail(SSM_ERR_DATA, "%s: corrupt: header claims more than %ju bytes, file has %"
                        PRIu64, path, (uintmax_t)SIZE_MAX, have);
    if (n > have)
        return ssm_fail(SSM_ERR_DATA, "%s: corrupt: header claims %" PRIu64 " bytes, file has %"
                        PRIu64, path, n, have);
    if (bytes) *bytes = (size_t)n;
    return SSM_OK;
}

ssm_status ssm_bound_claim(const char *path, uint64_t count, uint64_t size,
                           uint64_t have, size_t *bytes)
{
    size_t dims[1] = {(size_t)count};
    return ssm_bound_dims(path, 1, dims, size, have, bytes);
}

uint64_t ssm_bound_gzip(uint64_t compressed)
{
    uint64_t n;
    if (__builtin_mul_overflow(compressed, (uint64_t)SSM_GZIP_RATIO, &n)) return UINT64_MAX;
    return n > SSM_GZIP_FLOOR ? n : SSM_GZIP_FLOOR;
}

ssm_status ssm_bound_nomem(const char *path, size_t bytes, const char *what)
{
    return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory: %zu bytes for %s", path, bytes, what);
}

/* MemAvailable from /proc/meminfo in bytes, or 0. */
static uint64_t meminfo_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    uint64_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

uint64_t ssm_bound_available(void)
{
    uint64_t n = meminfo_available();
    if (n) return n;
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

ssm_status ssm_bound_memory(const char *what, uint64_t bytes)
{
    uint64_t avail = ssm_bound_available();
    if (!avail || bytes <= avail) return SSM_OK;
    return ssm_fail(SSM_ERR_NOMEM, "%s needs %" PRIu64 " MB, the machine has %" PRIu64
                    " MB available", what, (bytes + (1u << 20) - 1) >> 20, avail >> 20);
}
