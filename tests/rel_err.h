/* rel_err.h — the tests' measure of how far a row of logits is from its
 * reference: max |a - b| over the row relative to max |b| of that row.
 * Header-only, for test files (each test binary is one translation unit). */
#ifndef SSM_TEST_REL_ERR_H
#define SSM_TEST_REL_ERR_H

#include <math.h>

static inline double row_rel_err(const float *a, const float *b, int V)
{
    double d = 0.0, s = 0.0;
    for (int v = 0; v < V; v++) {
        d = fmax(d, fabs((double)a[v] - b[v]));
        s = fmax(s, fabs((double)b[v]));
    }
    return d / fmax(s, 1e-30);
}

#endif
