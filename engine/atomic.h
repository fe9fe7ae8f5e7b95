/* atomic.h — output files that never destroy what they replace.
 *
 * A regular file is replaced atomically: a temporary file ".ssmlab-tmpXXXXXX"
 * in the same directory (a fixed short name, so a legal name never grows
 * past NAME_MAX),
 * written, fsynced, renamed over the target, then the directory fsynced.  A
 * symlink is followed and its final target replaced the same way (the link
 * stays a link).  A device, FIFO, socket or /dev/stdout (anything reached
 * through /proc) is written through directly: no temporary file, no rename.
 * A directory where a file is expected, a missing parent or a directory we
 * cannot write in fail at begin, with one line naming the path.
 *
 * Every temporary file is flock()ed while it is being written.  Beginning a
 * file in a directory first finishes a group commit interrupted there (see
 * below) and then removes the ".ssmlab-tmpXXXXXX" files nobody holds a lock
 * on: the leftovers of a crash (no other name is touched).
 *
 * A group of files (a checkpoint) is committed as one unit: each file is
 * staged (written and fsynced, still locked), then a journal ".ssmlab-commit"
 * listing the renames is written and renamed into the directory (the commit
 * point), the renames done and the journal removed.  A crash before the
 * journal leaves the old files; after it, the next writer or loader of the
 * directory (ssm_atomic_dir_recover) does the renames left.
 *
 * For tests, SSMLAB_TEST_FAIL_WRITE=N makes the Nth file flushed by this
 * process fail with ENOSPC, as a full disk would (unset: inert). */
#ifndef SSM_ATOMIC_H
#define SSM_ATOMIC_H

#include <stdio.h>

#include "engine/status.h"

typedef struct {
    FILE *f;
    char *path;     /* as given, for messages */
    char *target;   /* the file replaced: path with its symlinks resolved */
    char *tmp;      /* the temporary file, or NULL when written through */
} ssm_atomic_file;

/* Open path for writing (see above).  On failure af is released. */
ssm_status ssm_atomic_file_begin(ssm_atomic_file *af, const char *path);

/* Flush, fsync and rename the file into place (or flush and close a file
 * written through).  commit and abort always release af; abort removes the
 * temporary file (what went to a device stays written). */
ssm_status ssm_atomic_file_commit(ssm_atomic_file *af);
void ssm_atomic_file_abort(ssm_atomic_file *af);

/* Flush and fsync af, keeping it open and locked for ssm_atomic_group_commit. */
ssm_status ssm_atomic_file_stage(ssm_atomic_file *af);

/* Commit n staged files and remove the n_remove files named (names in
 * dir), all as one unit, with the journal in dir.  Always releases the n
 * files (aborted on failure before the commit point). */
ssm_status ssm_atomic_group_commit(const char *dir, ssm_atomic_file *af, int n,
                                   const char *const *remove, int n_remove);

/* Finish a group commit interrupted in dir, if any; with clean, also remove
 * the unlocked temporary files.  A directory without a journal is only read. */
ssm_status ssm_atomic_dir_recover(const char *dir, int clean);

#endif
