/* test_outputs.c — unit tests of the output rules of engine/atomic.h through
 * the npy, safetensors and checkpoint writers: a device is written through
 * (/dev/full fails with ENOSPC and stays a device), a symlink is followed
 * and stays a link, a FIFO is written through, a 254-character name works,
 * a directory, a missing parent or an unwritable directory fail naming the
 * path, a crash's temporary files are removed, metadata headers stay valid
 * UTF-8, and a group commit interrupted after its commit point is
 * finished by the next writer in the directory, even once the directory
 * has moved.  (The checkpoint's commit as one unit is tested in
 * test_checkpoint.c.) */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/npy.h"
#include "engine/safetensors.h"
#include "tests/tmpdir.h"

TestSuite(outputs, .init = tmpdir_make, .fini = tmpdir_remove);

static const float vals[6] = {1, 2, 3, 4, 5, 6};
static const size_t shape[2] = {2, 3};

static ssm_status write_npy(const char *path)
{
    return ssm_npy_write(path, vals, 2, shape);
}

/* path holds the npy of vals. */
static void assert_npy(const char *path)
{
    float *data;
    int ndim;
    size_t sh[SSM_NPY_MAX_DIM];
    cr_assert_eq(ssm_npy_read(path, &data, &ndim, sh), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ndim, 2);
    cr_assert_eq(memcmp(data, vals, sizeof vals), 0);
    free(data);
}

/* The number of files in dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void expect_fail(ssm_status got, ssm_status want, const char *needle)
{
    cr_assert_eq(got, want, "status %d, wanted %d: %s", got, want, ssm_last_error());
    cr_assert(strstr(ssm_last_error(), needle), "'%s' lacks '%s'", ssm_last_error(), needle);
    cr_assert_null(strchr(ssm_last_error(), '\n'), "one line: %s", ssm_last_error());
}

/* ------------------------------------------------------------------------ */
/* Devices, links, FIFOs, names                                             */

/* /dev/full's device in a node of our own when we may make one (as root,
 * a writer that replaces devices would replace the real /dev/full), else
 * /dev/full itself (which a non-root writer cannot replace). */
Test(outputs, dev_full_is_written_through)
{
    struct stat sb;
    const char *full = tmpdir_path("full");
    if (mknod(full, S_IFCHR | 0666, makedev(1, 7)) != 0) full = "/dev/full";
    if (stat(full, &sb) != 0 || !S_ISCHR(sb.st_mode)) cr_skip_test("no /dev/full here");
    expect_fail(write_npy(full), SSM_ERR_IO, "write failed: No space left on device");
    cr_assert(strstr(ssm_last_error(), full), "%s", ssm_last_error());
    ssm_tensor t = {.name = "x", .ndim = 1, .shape = {6}, .numel = 6, .data = (float *)vals};
    expect_fail(ssm_safetensors_write(full, &t, 1, NULL, 0), SSM_ERR_IO, "No space left");
    cr_assert_eq(stat(full, &sb), 0);
    cr_assert(S_ISCHR(sb.st_mode), "%s is no longer a character device", full);
}

Test(outputs, symlink_target_is_replaced)
{
    char sub[300], target[300], link[300], link2[300];
    snprintf(sub, sizeof sub, "%s/sub", tmpdir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    snprintf(target, sizeof target, "%s/sub/t.npy", tmpdir);
    snprintf(link, sizeof link, "%s/l.npy", tmpdir);
    snprintf(link2, sizeof link2, "%s/l2.npy", tmpdir);
    FILE *f = fopen(target, "w");
    fputs("old", f);
    fclose(f);
    cr_assert_eq(symlink("sub/t.npy", link), 0);   /* relative to the link's directory */
    cr_assert_eq(symlink("l.npy", link2), 0);      /* a chain */
    cr_assert_eq(write_npy(link2), SSM_OK, "%s", ssm_last_error());
    struct stat sb;
    cr_assert_eq(lstat(link, &sb), 0);
    cr_assert(S_ISLNK(sb.st_mode), "the link was replaced");
    cr_assert_eq(lstat(link2, &sb), 0);
    cr_assert(S_ISLNK(sb.st_mode), "the link was replaced");
    assert_npy(target);
    cr_assert_eq(count_prefixed(sub, ".ssmlab") + count_prefixed(tmpdir, ".ssmlab"), 0);

    /* a dangling link: the file is created at its target */
    cr_assert_eq(symlink("sub/new.npy", tmpdir_path("d.npy")), 0);
    cr_assert_eq(write_npy(tmpdir_path("d.npy")), SSM_OK, "%s", ssm_last_error());
    assert_npy(tmpdir_path("sub/new.npy"));
}

Test(outputs, fifo_is_written_through)
{
    const char *fifo = tmpdir_path("pipe.npy");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {   /* the reader: the npy magic and some bytes */
        FILE *f = fopen(fifo, "rb");
        char buf[4096];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        _exit(n > 64 && memcmp(buf, "\x93NUMPY", 6) == 0 ? 0 : 1);
    }
    cr_assert_eq(write_npy(fifo), SSM_OK, "%s", ssm_last_error());
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader did not get the npy");
    struct stat sb;
    cr_assert_eq(lstat(fifo, &sb), 0);
    cr_assert(S_ISFIFO(sb.st_mode), "the FIFO was replaced");
}

Test(outputs, longest_name_works)
{
    char name[256], path[600];
    memset(name, 'a', 250);
    snprintf(name + 250, 6, ".npy");
    cr_assert_eq(strlen(name), 254);
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    cr_assert_eq(write_npy(path), SSM_OK, "%s", ssm_last_error());
    assert_npy(path);
    cr_assert_eq(write_npy(path), SSM_OK, "replacing it: %s", ssm_last_error());
}

Test(outputs, bad_targets_name_the_path)
{
    cr_assert_eq(mkdir(tmpdir_path("d.npy"), 0755), 0);
    expect_fail(write_npy(tmpdir_path("d.npy")), SSM_ERR_CANTCREAT, "d.npy: is a directory");
    struct stat sb;
    cr_assert(stat(tmpdir_path("d.npy"), &sb) == 0 && S_ISDIR(sb.st_mode));
    expect_fail(write_npy(tmpdir_path("missing/x.npy")), SSM_ERR_CANTCREAT,
                "missing/x.npy: cannot create in");
    expect_fail(write_npy(tmpdir_path("d.npy/")), SSM_ERR_CANTCREAT, "d.npy/: is a directory");
    cr_assert_eq(count_prefixed(tmpdir, ".ssmlab"), 0);
}

Test(outputs, unwritable_directory_names_the_path)
{
    char path[300];
    if (geteuid() != 0) {
        snprintf(path, sizeof path, "%s/ro", tmpdir);
        cr_assert_eq(mkdir(path, 0555), 0);
        snprintf(path, sizeof path, "%s/ro/x.npy", tmpdir);
    } else {
        /* root ignores permissions: /sys refuses new files even to root */
        struct stat sb;
        if (stat("/sys", &sb) != 0) cr_skip_test("running as root and no /sys: no unwritable directory");
        cr_log_info("running as root (permissions ignored): testing /sys/x.npy");
        snprintf(path, sizeof path, "/sys/x.npy");
    }
    expect_fail(write_npy(path), SSM_ERR_CANTCREAT, path);
    cr_assert_eq(access(path, F_OK), -1);
}

/* ------------------------------------------------------------------------ */
/* Temporary files                                                          */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void touch(const char *path)
{
    write_text(path, "x");
}

Test(outputs, crash_leftovers_are_removed)
{
    touch(tmpdir_path(".ssmlab-tmpAbC123"));   /* a crash's */
    touch(tmpdir_path(".ssmlab-tmpLocked"));   /* a writer's, still open */
    touch(tmpdir_path(".ssmlab-tmpx"));        /* not the pattern */
    touch(tmpdir_path(".tmpAbC123"));          /* another program's */
    touch(tmpdir_path("keep.tmp"));
    int fd = open(tmpdir_path(".ssmlab-tmpLocked"), O_RDONLY);
    cr_assert_eq(flock(fd, LOCK_EX), 0);
    cr_assert_eq(write_npy(tmpdir_path("a.npy")), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(access(tmpdir_path(".ssmlab-tmpAbC123"), F_OK), -1, "the leftover is still there");
    cr_assert_eq(access(tmpdir_path(".ssmlab-tmpLocked"), F_OK), 0, "a locked temporary file was removed");
    cr_assert_eq(access(tmpdir_path(".ssmlab-tmpx"), F_OK), 0);
    cr_assert_eq(access(tmpdir_path(".tmpAbC123"), F_OK), 0, "another program's file was removed");
    cr_assert_eq(access(tmpdir_path("keep.tmp"), F_OK), 0);
    close(fd);
}

/* ------------------------------------------------------------------------ */
/* Metadata                                                                 */

/* The JSON header of a safetensors file, checked by json-c as UTF-8. */
static json_object *header_parse(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char len8[8];
    cr_assert_eq(fread(len8, 1, 8, f), 8);
    size_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
    char *h = malloc(n + 1);
    cr_assert_eq(fread(h, 1, n, f), n);
    fclose(f);
    h[n] = 0;
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, h, (int)n);
    cr_assert_not_null(o, "header is not valid JSON/UTF-8: %s", json_tokener_error_desc(json_tokener_get_error(tok)));
    json_tokener_free(tok);
    free(h);
    return o;
}

Test(outputs, metadata_is_valid_utf8)
{
    ssm_tensor t = {.name = "x", .ndim = 1, .shape = {6}, .numel = 6, .data = (float *)vals};
    ssm_st_meta meta[] = {{"path", "/runs/caf\xe9/r\xc3\xa9sum\xc3\xa9\xed\xa0\x80\xc3"},
                          {"k\xff", "ok \xe2\x82\xac"}};
    const char *path = tmpdir_path("m.safetensors");
    cr_assert_eq(ssm_safetensors_write(path, &t, 1, meta, 2), SSM_OK, "%s", ssm_last_error());
    json_object_put(header_parse(path));
    ssm_safetensors st;
    cr_assert_eq(ssm_safetensors_open(&st, path), SSM_OK, "%s", ssm_last_error());
    const char *v = ssm_safetensors_metadata(&st, "path");
    cr_assert_str_eq(v, "/runs/caf\\xe9/r\xc3\xa9sum\xc3\xa9\\xed\\xa0\\x80\\xc3");
    cr_assert_str_eq(ssm_safetensors_metadata(&st, "k\\xff"), "ok \xe2\x82\xac");
    ssm_safetensors_close(&st);
}

/* ------------------------------------------------------------------------ */
/* Group commits                                                            */

static void file_is(const char *path, const char *want)
{
    char buf[64] = {0};
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s is missing", path);
    cr_assert_gt(fread(buf, 1, sizeof buf - 1, f), 0);
    fclose(f);
    cr_assert_str_eq(buf, want, "%s", path);
}

static void stage(ssm_atomic_file *af, const char *path, const char *text)
{
    cr_assert_eq(ssm_atomic_file_begin(af, path), SSM_OK, "%s", ssm_last_error());
    fputs(text, af->f);
    cr_assert_eq(ssm_atomic_file_stage(af), SSM_OK, "%s", ssm_last_error());
}

Test(outputs, interrupted_group_commit_is_finished)
{
    cr_assert_eq(mkdir(tmpdir_path("g"), 0755), 0);
    write_text(tmpdir_path("g/a.txt"), "old a");
    write_text(tmpdir_path("g/b.txt"), "old b");
    ssm_atomic_file af[2];
    stage(&af[0], tmpdir_path("g/a.txt"), "new a");
    stage(&af[1], tmpdir_path("g/b.txt"), "new b");
    /* b.txt turns into a non-empty directory: its rename fails after the
     * commit point, as if the process had died there */
    cr_assert_eq(unlink(tmpdir_path("g/b.txt")), 0);
    cr_assert_eq(mkdir(tmpdir_path("g/b.txt"), 0755), 0);
    write_text(tmpdir_path("g/b.txt/x"), "x");
    cr_assert_neq(ssm_atomic_group_commit(tmpdir_path("g"), af, 2, NULL, 0), SSM_OK);
    file_is(tmpdir_path("g/a.txt"), "new a");
    cr_assert_eq(access(tmpdir_path("g/.ssmlab-commit"), F_OK), 0, "the journal is gone");
    cr_assert_eq(count_prefixed(tmpdir_path("g"), ".ssmlab-tmp"), 1, "b's staged file is gone");

    /* the directory moves, b.txt is freed, and the next writer finishes */
    cr_assert_eq(rename(tmpdir_path("g"), tmpdir_path("moved")), 0);
    cr_assert_eq(unlink(tmpdir_path("moved/b.txt/x")), 0);
    cr_assert_eq(rmdir(tmpdir_path("moved/b.txt")), 0);
    cr_assert_eq(write_npy(tmpdir_path("moved/c.npy")), SSM_OK, "%s", ssm_last_error());
    file_is(tmpdir_path("moved/b.txt"), "new b");
    file_is(tmpdir_path("moved/a.txt"), "new a");
    cr_assert_eq(count_prefixed(tmpdir_path("moved"), "."), 2, "only . and .. are left");
}
