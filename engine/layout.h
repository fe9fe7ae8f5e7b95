/* layout.h — buffers laid out from a table, llm.c style: a group of buffers
 * is one allocation, described once by a list of {view, floats} entries;
 * the same list sizes the allocation and carves it into the named views, so
 * adding a buffer to a group is one line of its table.  Used for the model's
 * parameters, activations and scratch, and the scan kernels' work space. */
#ifndef SSM_LAYOUT_H
#define SSM_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* Alignment of an allocation, and of each buffer in an aligned table:
 * one AVX-512 vector (and one cache line). */
#define SSM_LAYOUT_ALIGN 64

/* One buffer of a group: the view that is pointed at it and its size. */
typedef struct {
    float **view;   /* set to the buffer, or to NULL when n is 0 */
    size_t n;       /* floats */
} ssm_layout_entry;

/* Floats the n entries of t take.  aligned: every buffer starts on an
 * SSM_LAYOUT_ALIGN boundary (each is padded to whole lines); packed
 * otherwise. */
size_t ssm_layout_size(const ssm_layout_entry *t, int n, int aligned);

/* Point the views of t into block, in table order; block holds at least
 * ssm_layout_size(t, n, aligned) floats (and is aligned when aligned). */
void ssm_layout_carve(const ssm_layout_entry *t, int n, int aligned, float *block);

/* A group of 16-bit buffers (the bf16 weights of engine/model.h), packed:
 * the same table idea with uint16_t views and sizes in elements. */
typedef struct {
    uint16_t **view;   /* set to the buffer, or to NULL when n is 0 */
    size_t n;          /* elements */
} ssm_layout_entry16;

size_t ssm_layout_size16(const ssm_layout_entry16 *t, int n);
void ssm_layout_carve16(const ssm_layout_entry16 *t, int n, uint16_t *block);

/* n floats (uninitialised) starting on an SSM_LAYOUT_ALIGN boundary, or
 * NULL when memory is short; free() releases them.  A group of
 * SSM_LAYOUT_HUGE bytes or more (parameters, gradients, optimizer state,
 * activations of large models) is aligned to and padded to 2 MiB pages and
 * advised MADV_HUGEPAGE, so the kernel backs it with transparent huge pages
 * where it can: fewer page faults on first touch and fewer TLB misses. */
#define SSM_LAYOUT_HUGE ((size_t)32 << 20)
#define SSM_LAYOUT_HUGE_PAGE ((size_t)2 << 20)
float *ssm_layout_alloc(size_t n);

#endif
