/* layout.c — sizing, carving and allocating table-described buffer groups
 * (layout.h). */
#include "engine/layout.h"

#include <stdlib.h>
#include <sys/mman.h>

#define LAYOUT_LINE (SSM_LAYOUT_ALIGN / sizeof(float))  /* floats per aligned line */

/* Floats an entry of n floats takes: whole lines when the group is aligned. */
static size_t layout_span(size_t n, int aligned)
{
    return aligned ? (n + LAYOUT_LINE - 1) / LAYOUT_LINE * LAYOUT_LINE : n;
}

size_t ssm_layout_size(const ssm_layout_entry *t, int n, int aligned)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += layout_span(t[i].n, aligned);
    return total;
}

void ssm_layout_carve(const ssm_layout_entry *t, int n, int aligned, float *block)
{
    for (int i = 0; i < n; i++) {
        *t[i].view = t[i].n ? block : NULL;
        block += layout_span(t[i].n, aligned);
    }
}

size_t ssm_layout_size16(const ssm_layout_entry16 *t, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += t[i].n;
    return total;
}

void ssm_layout_carve16(const ssm_layout_entry16 *t, int n, uint16_t *block)
{
    for (int i = 0; i < n; i++) {
        *t[i].view = t[i].n ? block : NULL;
        block += t[i].n;
    }
}

float *ssm_layout_alloc(size_t n)
{
    size_t bytes = (n ? n : 1) * sizeof(float);
    if (bytes >= SSM_LAYOUT_HUGE) {   /* whole huge pages, asked for */
        bytes = (bytes + SSM_LAYOUT_HUGE_PAGE - 1) / SSM_LAYOUT_HUGE_PAGE * SSM_LAYOUT_HUGE_PAGE;
        float *p = aligned_alloc(SSM_LAYOUT_HUGE_PAGE, bytes);
        if (p) madvise(p, bytes, MADV_HUGEPAGE);   /* advice only: failure changes nothing */
        return p;
    }
    return aligned_alloc(SSM_LAYOUT_ALIGN, (bytes + SSM_LAYOUT_ALIGN - 1) / SSM_LAYOUT_ALIGN * SSM_LAYOUT_ALIGN);
}
