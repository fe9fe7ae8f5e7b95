/* test_config_read.c — Criterion tests of reading a run config file: lines
 * of any length (a long comment stays a comment), and paths that are not
 * regular files refused rather than read. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/status.h"
#include "scenarios/run_config.h"
#include "tests/tmpdir.h"

TestSuite(config_read, .init = tmpdir_make, .fini = tmpdir_remove, .timeout = 30);

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot create %s", path);
    fputs(text, f);
    fclose(f);
}

/* A comment longer than the old line buffer (RUN_PATH_MAX + 64 bytes, so
 * fgets took 1087 characters): its tail "lr = 1e+09" used to be applied. */
Test(config_read, a_long_comment_stays_a_comment)
{
    size_t n = RUN_PATH_MAX + 63;
    char *text = malloc(n + 64);
    memset(text, 'c', n);
    text[0] = '#';
    snprintf(text + n, 64, "lr = 1e+09\nseed = 7\n");
    write_text(tmpdir_path("long.conf"), text);
    free(text);
    run_config rc;
    run_config_default(&rc);
    float lr = rc.opt.lr;
    cr_assert_eq(run_config_read(&rc, tmpdir_path("long.conf")), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(rc.opt.lr, lr, "lr became %g", rc.opt.lr);
    cr_assert_eq(rc.seed, 7);
}

/* A value longer than any fixed buffer is read whole, and refused by the
 * key's own rule (here a data path past RUN_PATH_MAX), naming the line. */
Test(config_read, a_long_line_is_read_whole)
{
    size_t n = 3 * RUN_PATH_MAX;
    char *text = malloc(n + 64);
    int k = snprintf(text, n + 64, "seed = 3\ndata = /");
    memset(text + k, 'd', n);
    snprintf(text + k + n, 64, "\n");
    write_text(tmpdir_path("path.conf"), text);
    free(text);
    run_config rc;
    run_config_default(&rc);
    ssm_status st = run_config_read(&rc, tmpdir_path("path.conf"));
    cr_assert_neq(st, SSM_OK);
    cr_assert_not_null(strstr(ssm_last_error(), "path.conf:2"), "%s", ssm_last_error());
}

Test(config_read, fifo_and_devices_are_refused)
{
    const char *fifo = tmpdir_path("fifo.conf");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    run_config rc;
    run_config_default(&rc);
    cr_assert_eq(run_config_read(&rc, fifo), SSM_ERR_NOINPUT);
    cr_assert_not_null(strstr(ssm_last_error(), "fifo.conf: not a regular file (a FIFO)"), "%s",
                       ssm_last_error());
    cr_assert_eq(run_config_read(&rc, "/dev/zero"), SSM_ERR_NOINPUT);
    cr_assert_eq(run_config_read(&rc, tmpdir_path("missing.conf")), SSM_ERR_NOINPUT);
    cr_assert_not_null(strstr(ssm_last_error(), "cannot open config"), "%s", ssm_last_error());
}
