/* test_layout.c — unit tests of engine/layout.c: tables size and carve
 * aligned and packed groups, and a large allocation is aligned to 2 MiB
 * and advised for transparent huge pages (its mapping carries the "hg"
 * flag in /proc/self/smaps). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/layout.h"

Test(layout, tables_size_and_carve)
{
    float *a, *b, *c;
    ssm_layout_entry t[3] = {{&a, 3}, {&b, 0}, {&c, 17}};
    cr_assert_eq(ssm_layout_size(t, 3, 0), 20);
    cr_assert_eq(ssm_layout_size(t, 3, 1), 16 + 32);
    float *block = ssm_layout_alloc(ssm_layout_size(t, 3, 1));
    ssm_layout_carve(t, 3, 1, block);
    cr_assert_eq(a, block);
    cr_assert_null(b);
    cr_assert_eq(c, block + 16);
    cr_assert_eq((uintptr_t)c % SSM_LAYOUT_ALIGN, 0);
    free(block);
}

/* the VmFlags line of the mapping that holds p, in flags (cap bytes); 0 if found */
static int vmflags_of(const void *p, char *flags, size_t cap)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int inside = 0, found = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (inside && !strncmp(line, "VmFlags:", 8)) {
            snprintf(flags, cap, "%s", line + 8);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

Test(layout, large_groups_are_advised_for_huge_pages)
{
    size_t n = SSM_LAYOUT_HUGE / sizeof(float) + 5;   /* just over the threshold */
    float *p = ssm_layout_alloc(n);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % SSM_LAYOUT_HUGE_PAGE, 0, "aligned to a huge page");
    memset(p, 0, n * sizeof(float));
    char flags[256];
    if (vmflags_of(p, flags, sizeof flags)) {
        free(p);
        cr_skip_test("no /proc/self/smaps VmFlags here");
    }
    cr_assert(strstr(flags, " hg"), "MADV_HUGEPAGE is set: VmFlags%s", flags);
    free(p);
    float *small = ssm_layout_alloc(1000);
    cr_assert_eq((uintptr_t)small % SSM_LAYOUT_ALIGN, 0);
    free(small);
}
