/* fuzz_keys.c — libFuzzer harness: the lab's keys file reader
 * (tui_keymap_load, tui/keys.c; ~/.config/ssmlab/keys).  Oracle: a line
 * whose first non-blank character is '#' is a comment, so the input with
 * its comment lines emptied must give the same status and key map. */
#include "tests/fuzz/fuzz_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/keys.h"

static ssm_status load(const char *name, const uint8_t *data, size_t size, tui_keymap *km)
{
    tui_keymap_default(km);
    return tui_keymap_load(km, fuzz_write(name, data, size));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tui_keymap a, b;
    ssm_status sa = load("keys", data, size, &a);
    if (memchr(data, 0, size)) return 0;   /* fgets stops at a NUL: not a text file */
    size_t n;
    uint8_t *bare = fuzz_strip_comments(data, size, 1, &n);
    if (!bare) return 0;
    ssm_status sb = load("keys.bare", bare, n, &b);
    free(bare);
    if ((sa == SSM_OK) != (sb == SSM_OK) || (sa == SSM_OK && memcmp(&a, &b, sizeof a))) {
        fprintf(stderr, "fuzz_keys: a comment changed the key map (%d vs %d without comments)\n", sa, sb);
        abort();
    }
    return 0;
}
