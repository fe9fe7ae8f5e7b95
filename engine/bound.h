/* bound.h — the one rule every file reader follows: what a header claims is
 * checked against the bytes the file holds before anything is allocated, data
 * paths must be regular files, a gzip stream may grow only so far, and the
 * allocations that remain say how much they asked for and what for. */
#ifndef SSM_BOUND_H
#define SSM_BOUND_H

#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

/* A gzip file may decompress to at most SSM_GZIP_RATIO times its size, or
 * SSM_GZIP_FLOOR bytes when that is more (real image data compresses 1 to 5
 * times; the floor admits small all-zero test files). */
#define SSM_GZIP_RATIO 64
#define SSM_GZIP_FLOOR ((uint64_t)16 << 20)

/* The byte size of path, which must be a regular file: SSM_ERR_NOINPUT when
 * it is missing, or is a directory, FIFO, device or socket (which could hang
 * or never end) — "PATH: not a regular file (a FIFO)". */
ssm_status ssm_bound_file(const char *path, uint64_t *size);

/* count * size bytes into *bytes (may be NULL), refusing a product that
 * overflows or exceeds have, the bytes the file holds: SSM_ERR_DATA
 * "PATH: corrupt: header claims N bytes, file has M". */
ssm_status ssm_bound_claim(const char *path, uint64_t count, uint64_t size,
                           uint64_t have, size_t *bytes);

/* The same for an array of ndim dimensions of elem-byte elements. */
ssm_status ssm_bound_dims(const char *path, int ndim, const size_t *dims, uint64_t elem,
                          uint64_t have, size_t *bytes);

/* The most bytes a gzip file of `compressed` bytes may decompress to. */
uint64_t ssm_bound_gzip(uint64_t compressed);

/* SSM_ERR_NOMEM "PATH: out of memory: N bytes for WHAT". */
ssm_status ssm_bound_nomem(const char *path, size_t bytes, const char *what);

/* The bytes of memory available now (MemAvailable of /proc/meminfo, else
 * sysconf(_SC_AVPHYS_PAGES)); 0 if unknown. */
uint64_t ssm_bound_available(void);

/* SSM_ERR_NOMEM "WHAT needs N MB, the machine has M MB available" when bytes
 * exceed the available memory (SSM_OK when that is unknown). */
ssm_status ssm_bound_memory(const char *what, uint64_t bytes);

#endif
