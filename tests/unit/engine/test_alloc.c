/* test_alloc.c — a training step allocates nothing: once warmed up, a
 * forward and backward pass take every buffer from the model's preallocated
 * memory.  The allocator functions defined below replace glibc's for this
 * whole test program (they must be non-static to do so) and count the calls
 * made while a step runs; they forward to glibc's own __libc_* entry points.
 * Covered: a language model, a polarized one, a soft-reordering classifier,
 * and models whose state or conv is too wide for the fast kernels (the naive
 * fallbacks).  Calls made by the OpenMP runtime itself are not ours and are
 * left out: Debian's libomp is built with KMP_DEBUG and formats (and frees)
 * a trace string in every worksharing loop.  Skipped under
 * AddressSanitizer, which owns the allocator. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_UNDER_ASAN 1
#endif
#endif
#ifndef ALLOC_UNDER_ASAN
#define ALLOC_UNDER_ASAN 0
#endif

/* ------------------------------------------------------------------------ */
/* Counting allocator                                                       */

#define ALLOC_MAX_SEEN 4096

static atomic_int counting;            /* 1 while a step is watched */
static atomic_long n_seen;             /* calls seen while counting */
static void *seen[ALLOC_MAX_SEEN];     /* (n_seen) the callers' return addresses */

#if !ALLOC_UNDER_ASAN
static void alloc_note(void *caller)
{
    if (!atomic_load_explicit(&counting, memory_order_relaxed))
        return;
    long i = atomic_fetch_add_explicit(&n_seen, 1, memory_order_relaxed);
    if (i < ALLOC_MAX_SEEN)
        seen[i] = caller;
}

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t k, size_t n);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);

void *malloc(size_t n)
{
    alloc_note(__builtin_return_address(0));
    return __libc_malloc(n);
}

void *calloc(size_t k, size_t n)
{
    alloc_note(__builtin_return_address(0));
    return __libc_calloc(k, n);
}

void *realloc(void *p, size_t n)
{
    alloc_note(__builtin_return_address(0));
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    alloc_note(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    alloc_note(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    alloc_note(__builtin_return_address(0));
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
#endif

static void count_begin(void)
{
    atomic_store(&n_seen, 0);
    atomic_store(&counting, 1);
}

/* Base address of the shared object holding addr, or NULL. */
static void *object_of(const void *addr)
{
    Dl_info d;
    return dladdr(addr, &d) ? d.dli_fbase : NULL;
}

/* Calls seen since count_begin, leaving out the OpenMP runtime's own;
 * *n_omp gets those. */
static long count_end(long *n_omp)
{
    atomic_store(&counting, 0);
    long n = atomic_load(&n_seen), ours = 0;
    void *omp = object_of((const void *)omp_get_thread_num);
    cr_assert(n <= ALLOC_MAX_SEEN, "%ld allocations overflow the record", n);
    *n_omp = 0;
    for (long i = 0; i < n; i++) {
        if (omp && object_of(seen[i]) == omp) (*n_omp)++;
        else ours++;
    }
    return ours;
}

static void skip_under_asan(void)
{
    if (ALLOC_UNDER_ASAN)
        cr_skip_test("AddressSanitizer replaces the allocator");
}

/* ------------------------------------------------------------------------ */
/* Steps                                                                    */

typedef struct {
    ssm_model m;
    int *tokens, *targets; /* (B, L) */
    float *inputs;         /* (B, L, I) */
    ssm_batch batch;
} step_fixture;

static void step_build(step_fixture *f, ssm_config c, int B, int L)
{
    memset(f, 0, sizeof *f);
    cr_assert_eq(ssm_model_build(&f->m, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(&f->m, 11);
    cr_assert_eq(ssm_model_alloc_grads(&f->m), SSM_OK);
    const ssm_config *mc = &f->m.cfg;
    f->tokens = calloc((size_t)B * L, sizeof(int));
    f->targets = calloc((size_t)B * L, sizeof(int));
    cr_assert(f->tokens && f->targets);
    if (mc->input_kind == SSM_INPUT_CONTINUOUS) {
        f->inputs = calloc((size_t)B * L * mc->d_input, sizeof(float));
        cr_assert(f->inputs);
        for (int i = 0; i < B * L * mc->d_input; i++) f->inputs[i] = (float)(i % 7) / 7.0f - 0.4f;
        for (int b = 0; b < B; b++) f->targets[b] = b % mc->n_classes;
    } else {
        for (int i = 0; i < B * L; i++) f->tokens[i] = (i * 5 + 3) % mc->vocab_size;
        for (int i = 0; i < B * L; i++) f->targets[i] = (i % L == L - 1) ? -1 : f->tokens[i + 1];
    }
    f->batch = (ssm_batch){B, L, f->inputs ? NULL : f->tokens, f->inputs, f->targets};
}

static void step_free(step_fixture *f)
{
    ssm_model_free(&f->m);
    free(f->tokens);
    free(f->targets);
    free(f->inputs);
}

static void step_run(step_fixture *f)
{
    ssm_model_zero_grad(&f->m);
    cr_assert_eq(ssm_model_forward(&f->m, &f->batch), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_backward(&f->m, 1.0f), SSM_OK, "%s", ssm_last_error());
}

/* One forward + backward with the allocator watched: the calls it made,
 * the OpenMP runtime's left out.  The step must succeed. */
static long step_counted(step_fixture *f)
{
    count_begin();
    ssm_model_zero_grad(&f->m);
    ssm_status fw = ssm_model_forward(&f->m, &f->batch);
    ssm_status bw = fw ? fw : ssm_model_backward(&f->m, 1.0f);
    long n_omp, n = count_end(&n_omp);
    cr_assert_eq(bw, SSM_OK, "%s", ssm_last_error());
    cr_log_info("forward + backward: %ld allocations, and %ld by the OpenMP runtime", n, n_omp);
    return n;
}

/* Allocations made by the third forward + backward on 2 threads (the first
 * two build the model's buffers and warm up OpenMP and OpenBLAS). */
static long step_allocations(ssm_config c, int B, int L)
{
    step_fixture f;
    ssm_threads_set(2);
    step_build(&f, c, B, L);
    step_run(&f);
    step_run(&f);
    long n = step_counted(&f);
    step_free(&f);
    return n;
}

static ssm_config small_lm(void)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 16;
    c.n_layer = 2;
    c.d_state = 8;
    c.vocab_size = 40;
    return c;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */

Test(alloc, the_counter_sees_every_allocator_entry)
{
    skip_under_asan();
    void *volatile p[6];
    count_begin();
    p[0] = malloc(16);
    p[1] = calloc(2, 16);
    p[2] = realloc(NULL, 16);
    p[3] = aligned_alloc(64, 64);
    p[4] = NULL;
    cr_assert_eq(posix_memalign((void **)&p[4], 64, 64), 0);
    p[5] = memalign(64, 64);
    long n_omp, n = count_end(&n_omp);
    for (int i = 0; i < 6; i++) free(p[i]);
    cr_assert_eq(n, 6, "the counter saw %ld of 6 allocations", n);
    cr_assert_eq(n_omp, 0, "%ld allocations were taken for the OpenMP runtime's", n_omp);
}

Test(alloc, a_language_model_step_allocates_nothing)
{
    skip_under_asan();
    long n = step_allocations(small_lm(), 3, 12);
    cr_assert_eq(n, 0, "forward + backward made %ld allocations", n);
}

Test(alloc, a_polarized_step_allocates_nothing)
{
    skip_under_asan();
    ssm_config c = small_lm();
    c.polarize = SSM_POLARIZE_BOTH;
    long n = step_allocations(c, 2, 9);
    cr_assert_eq(n, 0, "forward + backward made %ld allocations", n);
}

Test(alloc, a_soft_reordering_classifier_step_allocates_nothing)
{
    skip_under_asan();
    ssm_config c = small_lm();
    c.input_kind = SSM_INPUT_CONTINUOUS;
    c.d_input = 3;
    c.n_classes = 4;
    c.reorder = SSM_REORDER_SOFT;
    long n = step_allocations(c, 2, 7);
    cr_assert_eq(n, 0, "forward + backward made %ld allocations", n);
}

/* d_state 256 with both pinned channels: a state of 258 > 256, the naive
 * scan; d_conv 20 > 16, the naive conv.  Over three steps, each fallback
 * is told once. */
Test(alloc, a_step_on_the_naive_kernels_allocates_nothing, .init = cr_redirect_stderr)
{
    skip_under_asan();
    ssm_config c = small_lm();
    c.d_model = 4;
    c.n_layer = 1;
    c.d_state = 256;
    c.polarize = SSM_POLARIZE_BOTH;
    c.d_conv = 20;
    long n = step_allocations(c, 2, 5);
    cr_assert_eq(n, 0, "forward + backward made %ld allocations", n);
    fflush(stderr);
    cr_assert_stderr_eq_str("ssmlab: conv: d_conv 20 > 16: using the naive conv (single-threaded, slower)\n"
                            "ssmlab: scan: state width 258 > 256: using the naive scan "
                            "(single-threaded, slower)\n");
}

/* After a larger batch, a smaller one is carved out of the same memory: no
 * allocation, and the loss and gradients of a model that only saw it. */
Test(alloc, a_smaller_batch_reuses_the_memory_of_a_larger_one)
{
    step_fixture big, small;
    ssm_threads_set(2);
    step_build(&big, small_lm(), 3, 12);
    step_build(&small, small_lm(), 2, 7);
    step_run(&big);
    step_run(&small);
    big.batch = small.batch;
    long n = step_counted(&big);
    if (!ALLOC_UNDER_ASAN)
        cr_expect_eq(n, 0, "the smaller batch made %ld allocations", n);
    cr_expect_eq(big.m.loss, small.m.loss, "loss %g, want %g", big.m.loss, small.m.loss);
    cr_expect(!memcmp(big.m.grads_memory, small.m.grads_memory, big.m.num_params * sizeof(float)),
              "the gradients differ from a model that only saw the smaller batch");
    step_free(&big);
    step_free(&small);
}
