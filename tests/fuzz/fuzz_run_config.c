/* fuzz_run_config.c — libFuzzer harness: the run configuration parser
 * (scenarios/run_config.c).  run_config_read on the input as a file, then
 * run_config_check, and run_config_parse_text on the same text.  Oracle:
 * '#' starts a comment to the end of its line, so the input with every
 * comment cut out must give the same result (status and configuration) as
 * the input itself; a comment that changes the configuration aborts. */
#include "tests/fuzz/fuzz_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenarios/run_config.h"

/* run_config_read of data as a file: the status, and the configuration
 * text in *text when it read (NULL otherwise). */
static ssm_status read_file(const char *name, const uint8_t *data, size_t size, char **text)
{
    run_config rc;
    run_config_default(&rc);
    ssm_status st = run_config_read(&rc, fuzz_write(name, data, size));
    *text = st == SSM_OK ? run_config_string(&rc) : NULL;
    if (st == SSM_OK) run_config_check(&rc);
    return st;
}

static void check_comments(const uint8_t *data, size_t size)
{
    if (memchr(data, 0, size)) return;   /* fgets stops at a NUL: not a text file */
    size_t n;
    uint8_t *bare = fuzz_strip_comments(data, size, 0, &n);
    if (!bare) return;
    char *a = NULL, *b = NULL;
    ssm_status sa = read_file("run.conf", data, size, &a);
    ssm_status sb = read_file("bare.conf", bare, n, &b);
    if ((sa == SSM_OK) != (sb == SSM_OK) || (a && b && strcmp(a, b))) {
        fprintf(stderr, "fuzz_run_config: a comment changed the configuration (%d vs %d without "
                "comments)\n", sa, sb);
        abort();
    }
    free(a);
    free(b);
    free(bare);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_comments(data, size);
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    run_config rc;
    run_config_default(&rc);
    if (run_config_parse_text(&rc, text, "fuzz") == SSM_OK) run_config_check(&rc);
    free(text);
    return 0;
}
