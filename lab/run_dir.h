/* run_dir.h — the lab's run directories: the name of a new run after its
 * settings (runs/bytes-small + scenario negative = runs/bytes-small-negative),
 * whether a directory holds a checkpoint, the first free variant of a path
 * (runs/b7-2, runs/b7-3, ...), and whether two paths are one directory.  The
 * lab never writes into a checkpoint it did not write itself unless the user
 * typed the path and confirmed; these are the tests it decides by. */
#ifndef SSM_RUN_DIR_H
#define SSM_RUN_DIR_H

#include <stddef.h>

/* The settings a lab toggle changes, in this order. */
enum { SSM_RUN_SCENARIO = 0, SSM_RUN_POLARIZE, SSM_RUN_REORDER, SSM_RUN_NSETTINGS };

/* The name of a run derived from base (a run name such as "bytes-small" or
 * "fmnist-reorder-off") whose settings were from[] and are to[]: each
 * setting that differs replaces its old value in base when base names it
 * (a '-'-separated part "positive", "zero", or "reorder-off"), and is
 * appended otherwise ("-negative", "-polarize-zero", "-reorder-hard").  With
 * no difference the name is base itself. */
void ssm_run_dir_name(char *out, size_t n, const char *base, const int from[SSM_RUN_NSETTINGS],
                      const int to[SSM_RUN_NSETTINGS]);

/* The directory of a new run: parent/ssm_run_dir_name(base, from, to)
 * ("name" alone when parent is "."), or its first variant that holds no
 * checkpoint (ssm_run_dir_unused). */
void ssm_run_dir_path(char *out, size_t n, const char *parent, const char *base,
                      const int from[SSM_RUN_NSETTINGS], const int to[SSM_RUN_NSETTINGS]);

/* dir holds a checkpoint: config.json, model.safetensors or pytorch_model.bin. */
int ssm_run_dir_is_checkpoint(const char *dir);

/* Saving into dir needs the user's confirmation: dir holds a checkpoint,
 * and it is not own (the run's directory) or own was not written by this
 * session (own_written 0). */
int ssm_run_dir_foreign(const char *dir, const char *own, int own_written);

/* path itself when no checkpoint is there, else the first of path-2,
 * path-3, ... that holds none (trailing slashes dropped). */
void ssm_run_dir_unused(char *out, size_t n, const char *path);

/* a and b name the same directory (both exist and are one inode), or are
 * the same string once trailing slashes are dropped. */
int ssm_run_dir_same(const char *a, const char *b);

/* The last component of path ("runs/b7/" -> "b7"), into out. */
void ssm_run_dir_base(char *out, size_t n, const char *path);

/* The directory part of path ("runs/b7" -> "runs", "b7" -> "."). */
void ssm_run_dir_parent(char *out, size_t n, const char *path);

#endif
