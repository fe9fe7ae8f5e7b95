/* states.c — the state and logit-lens measurements of states.h: norms and
 * effective ranks of h_t (GSL's one-sided Jacobi SVD), memory horizons,
 * and softmax statistics in double. */
#include "engine/states.h"

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>
#include <math.h>
#include <stddef.h>

void ssm_states_norm(const float *h, int L, int E, int Ns, float *out)
{
    size_t n = (size_t)E * Ns;
    for (int t = 0; t < L; t++) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += (double)h[t * n + i] * h[t * n + i];
        out[t] = (float)sqrt(s);
    }
}

void ssm_states_horizon(const float *delta, int L, int E, int ld, const float *A, int Ns,
                        float *out)
{
    for (int e = 0; e < E; e++) {
        double mean = 0.0, amin = INFINITY;
        for (int t = 0; t < L; t++) mean += delta[(size_t)t * ld + e];
        mean /= L;
        for (int n = 0; n < Ns; n++) amin = fmin(amin, fabs((double)A[(size_t)e * Ns + n]));
        out[e] = amin == 0.0 || mean == 0.0 ? INFINITY : (float)(1.0 / (mean * amin));
    }
}

/* exp(entropy of s / sum s) over k singular values; 0 when all are 0 */
static double erank_of(const gsl_vector *s, size_t k)
{
    double sum = 0.0, H = 0.0;
    for (size_t i = 0; i < k; i++) sum += gsl_vector_get(s, i);
    if (sum <= 0.0) return 0.0;
    for (size_t i = 0; i < k; i++) {
        double p = gsl_vector_get(s, i) / sum;
        if (p > 0.0) H -= p * log(p);
    }
    return exp(H);
}

ssm_status ssm_states_erank(const float *h, int L, int E, int Ns, float *out)
{
    /* GSL wants rows >= columns: the E x Ns state, or its transpose */
    size_t rows = E >= Ns ? (size_t)E : (size_t)Ns, cols = E >= Ns ? (size_t)Ns : (size_t)E;
    gsl_matrix *M = gsl_matrix_alloc(rows, cols), *V = gsl_matrix_alloc(cols, cols);
    gsl_vector *S = gsl_vector_alloc(cols);
    if (!M || !V || !S) {
        if (M) gsl_matrix_free(M);
        if (V) gsl_matrix_free(V);
        if (S) gsl_vector_free(S);
        return ssm_fail(SSM_ERR_NOMEM, "out of memory for the SVD of a %d x %d state", E, Ns);
    }
    for (int t = 0; t < L; t++) {
        const float *ht = h + (size_t)t * E * Ns;
        for (int e = 0; e < E; e++)
            for (int n = 0; n < Ns; n++) {
                double v = ht[(size_t)e * Ns + n];
                if (E >= Ns) gsl_matrix_set(M, e, n, v);
                else gsl_matrix_set(M, n, e, v);
            }
        gsl_linalg_SV_decomp_jacobi(M, V, S);
        out[t] = (float)erank_of(S, cols);
    }
    gsl_matrix_free(M);
    gsl_matrix_free(V);
    gsl_vector_free(S);
    return SSM_OK;
}

double ssm_log_sum_exp(const float *x, int V)
{
    double mx = -INFINITY, s = 0.0;
    for (int i = 0; i < V; i++) mx = fmax(mx, x[i]);
    for (int i = 0; i < V; i++) s += exp(x[i] - mx);
    return mx + log(s);
}

double ssm_kl_logits(const float *p, double zp, const float *q, double zq, int V)
{
    double kl = 0.0;
    for (int i = 0; i < V; i++) {
        double lp = p[i] - zp, lq = q[i] - zq;
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}

void ssm_lens_row(const float *lens, const float *final, int V, ssm_lens_stat *out)
{
    double zl = ssm_log_sum_exp(lens, V), zf = ssm_log_sum_exp(final, V), H = 0.0;
    int top = 0;
    for (int i = 0; i < V; i++) {
        double lp = lens[i] - zl;
        if (lens[i] > lens[top]) top = i;
        H -= exp(lp) * lp;
    }
    double kl = ssm_kl_logits(final, zf, lens, zl, V);
    out->top = top;
    out->prob = exp(lens[top] - zl);
    out->entropy = H;
    out->kl = kl > 0.0 ? kl : 0.0;
}
