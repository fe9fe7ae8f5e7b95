/* fuzz_file.h — what every libFuzzer harness in tests/fuzz/ shares: the
 * entry point's prototype, a per-process scratch directory that the readers
 * (which all take a path) get their input from, and the calls the tensor
 * file and checkpoint harnesses make alike. */
#ifndef SSM_FUZZ_FILE_H
#define SSM_FUZZ_FILE_H
#include <stddef.h>
#include <stdint.h>

#include "engine/safetensors.h"

/* The libFuzzer entry point each harness defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The per-process scratch directory, made on first use under $TMPDIR (or
 * /tmp) and removed with its files at exit. */
const char *fuzz_dir(void);

/* fuzz_dir()/name: the path, valid for the life of the process (one buffer
 * per name, reused by every input). */
const char *fuzz_path(const char *name);

/* Write data[0 .. size) to fuzz_path(name), replacing it; returns the path.
 * Aborts when the file cannot be written (the harness, not the reader, is
 * broken then). */
const char *fuzz_write(const char *name, const uint8_t *data, size_t size);

/* Remove fuzz_path(name) if it exists. */
void fuzz_remove(const char *name);

/* data without its comments, malloc'd (NULL when out of memory), *n bytes:
 * a comment runs from '#' to the end of its line; with line_start, only a
 * '#' that is the first non-blank character of its line starts one. */
uint8_t *fuzz_strip_comments(const uint8_t *data, size_t size, int line_start, size_t *n);

/* Write data to fuzz_path(name), open it with open_fn
 * (ssm_safetensors_open or ssm_safetensors_open_torch), convert every float
 * tensor of up to 64 MB of float32 and look up a metadata key, as a loader
 * would; then close it. */
void fuzz_tensor_file(ssm_status (*open_fn)(ssm_safetensors *, const char *), const char *name,
                      const uint8_t *data, size_t size);

/* ssm_checkpoint_load of fuzz_dir() (its config.json and weights written by
 * the caller), with float32 and then bf16 weights, everything freed
 * afterwards. */
void fuzz_checkpoint_load(void);

#endif
