/* tmpdir.h — a fresh temporary directory for the Criterion suites that
 * write files: tmpdir_make() as a suite's .init, tmpdir_remove() as its
 * .fini, the path in tmpdir, and tmpdir_path(name) for a file in it.  Header-only, for test files (each test
 * binary is one translation unit). */
#ifndef SSM_TEST_TMPDIR_H
#define SSM_TEST_TMPDIR_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static char tmpdir[256];

static int tmpdir_rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void tmpdir_make(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ssmlab_test.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void tmpdir_remove(void)
{
    nftw(tmpdir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmpdir/name, in one of 8 rotating buffers (so a few may be live at once) */
static inline const char *tmpdir_path(const char *name)
{
    static char buf[8][512];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

#endif
