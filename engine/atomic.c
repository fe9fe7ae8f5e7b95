/* atomic.c — output files that never destroy what they replace: atomic
 * replacement of regular files (through symlinks), direct writes to
 * devices and pipes, removal of a crash's temporary files, and group
 * commits through a journal (engine/atomic.h). */
#include "engine/atomic.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define AT_TMP_PREFIX ".ssmlab-tmp"
#define AT_TMP_LEN 17                   /* the prefix + mkstemp's six characters */
#define AT_JOURNAL ".ssmlab-commit"
#define AT_JOURNAL_MAGIC "ssmlab-commit 1\n"
#define AT_JOURNAL_MAX (1 << 16)
#define AT_MAX_LINKS 40

/* ------------------------------------------------------------------------ */
/* Paths                                                                    */

/* The directory part of path ("." when none) into buf (PATH_MAX bytes). */
static void path_dir(char *buf, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(buf, PATH_MAX, ".");
    else if (slash == path) snprintf(buf, PATH_MAX, "/");
    else snprintf(buf, PATH_MAX, "%.*s", (int)(slash - path), path);
}

static const char *path_base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* A link whose directory is under /proc (/dev/stdout, /dev/fd/N): its
 * target is an open file, written through rather than replaced. */
static int link_in_proc(const char *path)
{
    char dir[PATH_MAX], real[PATH_MAX];
    path_dir(dir, path);
    return realpath(dir, real) && strncmp(real, "/proc/", 6) == 0;
}

/* fsync the directory holding path, so a rename in it is durable (best effort). */
static void fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    path_dir(dir, path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Follow path's symlinks into cur (PATH_MAX bytes); *direct when the chain
 * goes through /proc. */
static ssm_status follow_links(const char *path, char *cur, int *direct)
{
    char link[PATH_MAX], dir[PATH_MAX], next[PATH_MAX];
    struct stat lsb;
    if (snprintf(cur, PATH_MAX, "%s", path) >= PATH_MAX)
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: path too long", path);
    for (int hops = 0; lstat(cur, &lsb) == 0 && S_ISLNK(lsb.st_mode); hops++) {
        if ((*direct = link_in_proc(cur))) return SSM_OK;
        ssize_t k = hops < AT_MAX_LINKS ? readlink(cur, link, sizeof link - 1) : -1;
        if (k < 0)
            return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot follow the link: %s", path,
                            strerror(hops < AT_MAX_LINKS ? errno : ELOOP));
        link[k] = 0;
        path_dir(dir, cur);
        if (snprintf(next, sizeof next, "%s%s%s", link[0] == '/' ? "" : dir, link[0] == '/' ? "" : "/",
                     link) >= (int)sizeof next)
            return ssm_fail(SSM_ERR_CANTCREAT, "%s: link target too long", path);
        memcpy(cur, next, sizeof next);
    }
    return SSM_OK;
}

/* The file to write for path into target (PATH_MAX bytes): a device, FIFO
 * or /proc link as is (*direct), else the real directory plus the name. */
static ssm_status resolve(const char *path, char *target, int *direct, struct stat *sb, int *exists)
{
    char cur[PATH_MAX], dir[PATH_MAX], real[PATH_MAX];
    *direct = *exists = 0;
    ssm_status s = follow_links(path, cur, direct);
    if (s) return s;
    if (stat(cur, sb) == 0) {
        *exists = 1;
        if (S_ISDIR(sb->st_mode)) return ssm_fail(SSM_ERR_CANTCREAT, "%s: is a directory", path);
        if (!S_ISREG(sb->st_mode)) *direct = 1;
    } else if (errno != ENOENT) {
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot write: %s", path, strerror(errno));
    }
    if (*direct) {
        snprintf(target, PATH_MAX, "%s", cur);
        return SSM_OK;
    }
    const char *base = path_base(cur);
    if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: is a directory", path);
    path_dir(dir, cur);
    struct stat dsb;
    int err = !realpath(dir, real) || stat(real, &dsb) != 0 ? errno : S_ISDIR(dsb.st_mode) ? 0 : ENOTDIR;
    if (err) return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot create in %s: %s", path, dir, strerror(err));
    if (snprintf(target, PATH_MAX, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base) >= PATH_MAX)
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: path too long", path);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Temporary files and their cleanup                                        */

static int is_tmp_name(const char *name)
{
    size_t k = strlen(AT_TMP_PREFIX);
    if (strlen(name) != AT_TMP_LEN || strncmp(name, AT_TMP_PREFIX, k) != 0) return 0;
    for (const char *p = name + k; *p; p++)
        if (!isalnum((unsigned char)*p)) return 0;
    return 1;
}

/* fd and name (relative to dfd) are the same file. */
static int same_file(int fd, int dfd, const char *name)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && fstatat(dfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
           a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Remove the temporary files of dir that no writer holds locked. */
static void clean_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_tmp_name(e->d_name)) continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat sb;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            same_file(fd, dirfd(d), e->d_name))
            unlinkat(dirfd(d), e->d_name, 0);
        close(fd);
    }
    closedir(d);
}

/* Create and lock af->tmp in dir; the fd, or -1 with errno. */
static int tmp_create(char *tmp, const char *dir)
{
    for (int tries = 0; tries < 4; tries++) {
        snprintf(tmp, PATH_MAX, "%s/" AT_TMP_PREFIX "XXXXXX", dir);
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) return -1;
        if (flock(fd, LOCK_EX) == 0 && same_file(fd, AT_FDCWD, tmp)) return fd;
        close(fd);   /* a cleaner removed it before we locked it */
    }
    errno = EAGAIN;
    return -1;
}

/* The test hook: the SSMLAB_TEST_FAIL_WRITE'th flush of this process fails. */
static int fault_injected(void)
{
    static atomic_int flushes;
    const char *e = getenv("SSMLAB_TEST_FAIL_WRITE");
    return e && *e && atomic_fetch_add(&flushes, 1) + 1 == atoi(e);
}

/* ------------------------------------------------------------------------ */
/* One file                                                                 */

static ssm_status open_direct(ssm_atomic_file *af, int regular)
{
    int fd = open(af->target, O_WRONLY | O_NOCTTY | O_CLOEXEC | (regular ? O_TRUNC : 0));
    if (fd < 0 || !(af->f = fdopen(fd, "wb"))) {
        int err = errno;
        if (fd >= 0) close(fd);
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot open for writing: %s", af->path, strerror(err));
    }
    return SSM_OK;
}

static ssm_status open_tmp(ssm_atomic_file *af, const struct stat *old)
{
    char dir[PATH_MAX];
    path_dir(dir, af->target);
    ssm_status s = ssm_atomic_dir_recover(dir, 1);
    if (s) return s;
    if (!(af->tmp = malloc(PATH_MAX))) return ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", af->path);
    int fd = tmp_create(af->tmp, dir);
    if (fd < 0 || !(af->f = fdopen(fd, "wb"))) {
        int err = errno;
        if (fd >= 0) { close(fd); unlink(af->tmp); }
        free(af->tmp);
        af->tmp = NULL;
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot create a temporary file in %s: %s", af->path,
                        dir, strerror(err));
    }
    fchmod(fd, old ? old->st_mode & 07777 : 0644);
    return SSM_OK;
}

ssm_status ssm_atomic_file_begin(ssm_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    struct stat sb;
    int direct, exists;
    af->path = strdup(path);
    af->target = malloc(PATH_MAX);
    ssm_status s = !af->path || !af->target ? ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", path)
                                            : resolve(path, af->target, &direct, &sb, &exists);
    if (!s) s = direct ? open_direct(af, exists && S_ISREG(sb.st_mode)) : open_tmp(af, exists ? &sb : NULL);
    if (s) ssm_atomic_file_abort(af);
    return s;
}

void ssm_atomic_file_abort(ssm_atomic_file *af)
{
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    free(af->tmp);
    free(af->target);
    free(af->path);
    memset(af, 0, sizeof *af);
}

ssm_status ssm_atomic_file_stage(ssm_atomic_file *af)
{
    int err = 0;
    errno = 0;
    if (fflush(af->f) != 0 || ferror(af->f)) err = errno ? errno : EIO;
    if (!err && fault_injected()) err = ENOSPC;
    if (!err && af->tmp && fsync(fileno(af->f)) != 0) err = errno;
    return err ? ssm_fail(SSM_ERR_IO, "%s: write failed: %s", af->path, strerror(err)) : SSM_OK;
}

/* Close af->f after its data is in place. */
static ssm_status close_file(ssm_atomic_file *af)
{
    int bad = af->f && fclose(af->f) != 0;
    af->f = NULL;
    return bad ? ssm_fail(SSM_ERR_IO, "%s: write failed: %s", af->path, strerror(errno)) : SSM_OK;
}

/* Rename the staged af into place (still locked, so no cleaner takes it). */
static ssm_status put_in_place(ssm_atomic_file *af)
{
    if (!af->tmp) return SSM_OK;
    if (rename(af->tmp, af->target) != 0 && errno != ENOENT)
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot rename the temporary file into place: %s",
                        af->path, strerror(errno));
    free(af->tmp);
    af->tmp = NULL;
    return SSM_OK;
}

ssm_status ssm_atomic_file_commit(ssm_atomic_file *af)
{
    ssm_status s = ssm_atomic_file_stage(af);
    int renamed = !s && af->tmp;
    if (!s) s = put_in_place(af);
    if (!s) s = close_file(af);
    if (!s && renamed) fsync_dir_of(af->target);
    ssm_atomic_file_abort(af);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Groups and their journal                                                 */

/* Append s and its NUL to buf (cap bytes) at *k; 0 when it does not fit. */
static int put_str(char *buf, size_t cap, size_t *k, const char *s)
{
    size_t n = strlen(s) + 1;
    if (*k + n > cap) return 0;
    memcpy(buf + *k, s, n);
    *k += n;
    return 1;
}

/* path relative to dir when it is a file of dir (so a journal survives
 * moving its directory), else path. */
static const char *in_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && path[n] == '/' && !strchr(path + n + 1, '/') ? path + n + 1 : path;
}

/* The journal of a commit in dir: the magic line, then "R" tmp target or
 * "U" path records. */
static size_t journal_text(char *buf, size_t cap, const char *dir, const ssm_atomic_file *af, int n,
                           const char *const *remove, int n_remove)
{
    size_t k = 0;
    int ok = put_str(buf, cap, &k, AT_JOURNAL_MAGIC);
    for (int i = 0; ok && i < n; i++)
        if (af[i].tmp) ok = put_str(buf, cap, &k, "R") && put_str(buf, cap, &k, in_dir(af[i].tmp, dir)) &&
                            put_str(buf, cap, &k, in_dir(af[i].target, dir));
    for (int i = 0; ok && i < n_remove; i++)
        ok = put_str(buf, cap, &k, "U") && put_str(buf, cap, &k, remove[i]);
    return ok ? k : 0;
}

/* Do the renames and removals of a journal of dir (relative names are in
 * dir); a rename already done (its temporary file gone) is skipped. */
static ssm_status journal_replay(const char *jpath, const char *dir, const char *buf, size_t n)
{
    size_t k = sizeof AT_JOURNAL_MAGIC;
    char a[PATH_MAX], b[PATH_MAX];
    if (n < k || memcmp(buf, AT_JOURNAL_MAGIC, k) || buf[n - 1])
        return ssm_fail(SSM_ERR_DATA, "%s: malformed commit journal", jpath);
    while (k < n) {
        const char *op = buf + k, *ra = op + strlen(op) + 1, *rb = ra < buf + n ? ra + strlen(ra) + 1 : ra;
        int rn = !strcmp(op, "R");
        if ((!rn && strcmp(op, "U")) || ra >= buf + n || (rn && rb >= buf + n))
            return ssm_fail(SSM_ERR_DATA, "%s: malformed commit journal", jpath);
        snprintf(a, sizeof a, "%s%s%s", *ra == '/' ? "" : dir, *ra == '/' ? "" : "/", ra);
        if (rn) snprintf(b, sizeof b, "%s%s%s", *rb == '/' ? "" : dir, *rb == '/' ? "" : "/", rb);
        if (rn ? rename(a, b) != 0 && errno != ENOENT : unlink(a) != 0 && errno != ENOENT)
            return ssm_fail(SSM_ERR_IO, "%s: cannot finish the interrupted commit (%s): %s", jpath,
                            rn ? b : a, strerror(errno));
        if (rn) fsync_dir_of(b);
        k = (size_t)((rn ? rb + strlen(rb) + 1 : ra + strlen(ra) + 1) - buf);
    }
    return SSM_OK;
}

ssm_status ssm_atomic_dir_recover(const char *dir, int clean)
{
    char jpath[PATH_MAX];
    if (snprintf(jpath, sizeof jpath, "%s/" AT_JOURNAL, dir) >= (int)sizeof jpath)
        return ssm_fail(SSM_ERR_CANTCREAT, "%s: path too long", dir);
    int fd = open(jpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (clean) clean_tmp(dir);
        return SSM_OK;
    }
    ssm_status s = SSM_OK;
    char *buf = malloc(AT_JOURNAL_MAX);
    if (!buf) s = ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", jpath);
    /* locked: a commit in progress, which finishes itself */
    if (!s && flock(fd, LOCK_EX | LOCK_NB) == 0 && same_file(fd, AT_FDCWD, jpath)) {
        ssize_t n = read(fd, buf, AT_JOURNAL_MAX);
        s = n < 0 ? ssm_fail(SSM_ERR_IO, "%s: cannot read: %s", jpath, strerror(errno))
                  : journal_replay(jpath, dir, buf, (size_t)n);
        if (!s && unlink(jpath) != 0)
            s = ssm_fail(SSM_ERR_IO, "%s: cannot remove: %s", jpath, strerror(errno));
        if (!s) fsync_dir_of(jpath);
        if (!s && clean) clean_tmp(dir);
    }
    free(buf);
    close(fd);
    return s;
}

/* Write the journal of the group as jf's temporary file, staged. */
static ssm_status journal_write(ssm_atomic_file *jf, const char *jpath, const ssm_atomic_file *af,
                                int n, const char *const *remove, int n_remove)
{
    char *buf = malloc(AT_JOURNAL_MAX), dir[PATH_MAX];
    ssm_status s = buf ? ssm_atomic_file_begin(jf, jpath) : ssm_fail(SSM_ERR_NOMEM, "%s: out of memory", jpath);
    if (!s && !jf->tmp) s = ssm_fail(SSM_ERR_CANTCREAT, "%s: not a regular file", jpath);
    if (!s) path_dir(dir, jf->target);
    size_t k = s ? 0 : journal_text(buf, AT_JOURNAL_MAX, dir, af, n, remove, n_remove);
    if (!s && !k) s = ssm_fail(SSM_ERR_SOFTWARE, "%s: the commit journal does not fit", jpath);
    if (!s && fwrite(buf, 1, k, jf->f) != k)
        s = ssm_fail(SSM_ERR_IO, "%s: write failed: %s", jpath, strerror(errno));
    if (!s) s = ssm_atomic_file_stage(jf);
    free(buf);
    return s;
}

ssm_status ssm_atomic_group_commit(const char *dir, ssm_atomic_file *af, int n,
                                   const char *const *remove, int n_remove)
{
    char jpath[PATH_MAX];
    ssm_atomic_file jf = {0};
    ssm_status s = snprintf(jpath, sizeof jpath, "%s/" AT_JOURNAL, dir) >= (int)sizeof jpath
                       ? ssm_fail(SSM_ERR_CANTCREAT, "%s: path too long", dir)
                       : journal_write(&jf, jpath, af, n, remove, n_remove);
    if (!s && rename(jf.tmp, jf.target) != 0)
        s = ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot rename into place: %s", jpath, strerror(errno));
    if (s) {
        ssm_atomic_file_abort(&jf);
        for (int i = 0; i < n; i++) ssm_atomic_file_abort(&af[i]);
        return s;
    }
    free(jf.tmp);   /* the journal is in place: the commit point */
    jf.tmp = NULL;
    fsync_dir_of(jpath);
    for (int i = 0; i < n; i++) {
        ssm_status r = put_in_place(&af[i]);
        if (!r) r = close_file(&af[i]);
        if (!r) fsync_dir_of(af[i].target);
        if (!s) s = r;
        free(af[i].tmp);   /* past the commit point the journal owns it: kept */
        af[i].tmp = NULL;
        ssm_atomic_file_abort(&af[i]);
    }
    for (int i = 0; !s && i < n_remove; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, remove[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            s = ssm_fail(SSM_ERR_CANTCREAT, "%s: cannot remove: %s", path, strerror(errno));
    }
    if (!s && unlink(jpath) == 0) fsync_dir_of(jpath);   /* else the next writer finishes it */
    ssm_atomic_file_abort(&jf);
    return s;
}
