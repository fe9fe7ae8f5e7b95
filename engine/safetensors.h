/* safetensors.h — tensor files: read and write the safetensors format
 * (8-byte little-endian header length, JSON header, raw data), read the
 * zip + pickle archives torch.save() writes (pytorch_model.bin) through the
 * same interface; files are written through engine/atomic.h (atomic
 * replacement, devices written through).  Metadata keys and values are
 * written as valid UTF-8: a byte that is not is written as \xNN.  Readers validate everything and convert F32, F16, BF16 and F64
 * to float32. */
#ifndef SSM_SAFETENSORS_H
#define SSM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/atomic.h"
#include "engine/model.h"
#include "engine/status.h"

#define SSM_ST_MAX_DIM 8

typedef enum {
    SSM_DTYPE_F32 = 0,
    SSM_DTYPE_F16,
    SSM_DTYPE_BF16,
    SSM_DTYPE_F64,
    SSM_DTYPE_OTHER   /* a valid dtype that is not a float (I64, BOOL, F8...) */
} ssm_dtype;

/* One tensor of an open file. */
typedef struct {
    char *name;
    ssm_dtype dtype;
    char dtype_name[16];            /* as the file spells it, e.g. "BF16" */
    int ndim;
    int64_t shape[SSM_ST_MAX_DIM];
    size_t numel;
    size_t offset;                  /* absolute byte offset of the data */
    size_t nbytes;                  /* numel * element size */
} ssm_st_tensor;

/* An open tensor file: the whole file mapped read-only, plus its index. */
typedef struct {
    char *path;
    const unsigned char *map;       /* (size) bytes */
    size_t size;
    ssm_st_tensor *tensors;         /* (n_tensors) in header order */
    int n_tensors;
    char **meta;                    /* (2 * n_meta): key, value, key, value... */
    int n_meta;
} ssm_safetensors;

/* A string __metadata__ entry to write. */
typedef struct {
    const char *key;
    const char *value;
} ssm_st_meta;

/* Open a safetensors file.  Fails with SSM_ERR_NOINPUT when it is missing
 * and SSM_ERR_DATA, naming the file and the problem, when anything is
 * malformed.  On failure *st is left closed (safe to close again). */
ssm_status ssm_safetensors_open(ssm_safetensors *st, const char *path);

/* Open a torch.save() archive (zip of data.pkl + data/N storages, as in
 * state-spaces/mamba-*'s pytorch_model.bin) holding a dict of contiguous
 * tensors.  Same interface as a safetensors file; it has no metadata. */
ssm_status ssm_safetensors_open_torch(ssm_safetensors *st, const char *path);

/* The tensor called name, or NULL. */
const ssm_st_tensor *ssm_safetensors_find(const ssm_safetensors *st, const char *name);

/* Convert t's data to float32 into out (t->numel floats). */
ssm_status ssm_safetensors_read_f32(const ssm_safetensors *st, const ssm_st_tensor *t,
                                    float *out);

/* Convert t's data to bfloat16 into out (t->numel values): BF16 copied, F32,
 * F16 and F64 through float32 rounded to nearest even (NaN stays NaN, a
 * finite value beyond bf16's range becomes Inf), without a float32 copy of
 * the tensor: 1 Mi elements at a time, each range's mapped pages dropped
 * once converted, as in ssm_safetensors_read_f32. */
ssm_status ssm_safetensors_read_bf16(const ssm_safetensors *st, const ssm_st_tensor *t,
                                     uint16_t *out);

/* The __metadata__ value for key, or NULL. */
const char *ssm_safetensors_metadata(const ssm_safetensors *st, const char *key);

void ssm_safetensors_close(ssm_safetensors *st);

/* Write n float32 tensors (name, shape, data of each) and the metadata
 * entries as a safetensors file, atomically (a stream of the n tensors). */
ssm_status ssm_safetensors_write(const char *path, const ssm_tensor *t, int n,
                                 const ssm_st_meta *meta, int n_meta);

/* The same, staged for ssm_atomic_group_commit rather than committed: on
 * success *staged holds the written, fsynced, still unrenamed file; with
 * staged NULL, ssm_safetensors_write. */
ssm_status ssm_safetensors_write_staged(const char *path, const ssm_tensor *t, int n,
                                        const ssm_st_meta *meta, int n_meta, ssm_atomic_file *staged);

/* A float32 tensor of a streamed file: its name and shape. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[SSM_ST_MAX_DIM];
} ssm_st_spec;

/* A safetensors file written tensor by tensor, so the data never needs to
 * be in memory at once: begin writes the header of every tensor (the shapes
 * are known up front), put appends values to the tensors in header order,
 * commit checks that every tensor is complete and renames the file into
 * place (ssm_atomic_file), abort removes it. */
typedef struct {
    ssm_atomic_file af;
    const ssm_st_spec *specs;   /* (n), the caller's, alive until commit or abort */
    int n;
    int cur;                    /* the tensor being written */
    size_t left;                /* its values still to come */
    ssm_status failed;          /* the first failure of put, else SSM_OK */
} ssm_safetensors_stream;

/* Begin the file: every spec is checked (name, ndim, no name twice) and the
 * header written.  On failure nothing is left behind. */
ssm_status ssm_safetensors_stream_begin(ssm_safetensors_stream *w, const char *path,
                                        const ssm_st_spec *specs, int n, const ssm_st_meta *meta,
                                        int n_meta);

/* Append rows x cols values of tensor `index`, row r at src + r * ld.  A
 * tensor may take several puts; index must be the first tensor not yet
 * complete (empty tensors need none), else SSM_ERR_SOFTWARE; more values
 * than the tensor holds too.  After a failure every put returns it and
 * commit aborts. */
ssm_status ssm_safetensors_stream_put(ssm_safetensors_stream *w, int index, size_t rows, size_t cols,
                                      const float *src, size_t ld);

/* Finish the file; an incomplete tensor or an earlier failure aborts it.
 * commit and abort always release the stream. */
ssm_status ssm_safetensors_stream_commit(ssm_safetensors_stream *w);
void ssm_safetensors_stream_abort(ssm_safetensors_stream *w);

#endif
