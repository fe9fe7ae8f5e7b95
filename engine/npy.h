/* npy.h — write and read float32, C-order NumPy .npy files (format 1.0),
 * so measurements can be picked up with numpy.load(). */
#ifndef SSM_NPY_H
#define SSM_NPY_H

#include <stddef.h>

#include "engine/status.h"

#define SSM_NPY_MAX_DIM 8

/* Write data (prod(shape) floats, row-major) as a .npy array of the given
 * shape (ndim 0..SSM_NPY_MAX_DIM; ndim 0 is a scalar).  The file is written
 * through engine/atomic.h (a temporary file beside path, fsynced and renamed
 * over it; a device or FIFO written through), so readers never see a
 * half-written file. */
ssm_status ssm_npy_write(const char *path, const float *data,
                         int ndim, const size_t *shape);

/* Read a float32 .npy file (versions 1.0 to 3.0, either byte order, C order).
 * On success *data is a malloc'd (prod(shape)) buffer the caller frees with
 * free(), *ndim and shape[0 .. *ndim) are filled (shape has room for
 * SSM_NPY_MAX_DIM entries). */
ssm_status ssm_npy_read(const char *path, float **data,
                        int *ndim, size_t *shape);

#endif
