/* test_states.c — unit tests of engine/states.c: state norms, the memory
 * horizon (finite and infinite), the effective rank of matrices whose
 * singular values are known, and the logit lens's statistics against
 * direct sums. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "engine/states.h"

Test(states, norm_is_frobenius)
{
    float h[2 * 2 * 3] = {1, 2, 2, 0, 0, 0, /* t = 0: 3 */ 0, 0, 0, 0, 3, 4 /* t = 1: 5 */};
    float out[2];
    ssm_states_norm(h, 2, 2, 3, out);
    cr_assert_float_eq(out[0], 3.0f, 1e-6);
    cr_assert_float_eq(out[1], 5.0f, 1e-6);
}

Test(states, horizon_uses_the_slowest_channel_and_mean_delta)
{
    float delta[3 * 4] = {0.5f, 1, 9, 9, 1.5f, 1, 9, 9, 1.0f, 1, 9, 9};   /* (L 3, ld 4), E = 2 */
    float A[2 * 3] = {-2, -0.5f, -8, 0, -1, -3};   /* e = 1 has A = 0: infinite */
    float out[2];
    ssm_states_horizon(delta, 3, 2, 4, A, 3, out);
    cr_assert_float_eq(out[0], 1.0f / (1.0f * 0.5f), 1e-6);
    cr_assert(isinf(out[1]));
}

Test(states, effective_rank_of_known_spectra)
{
    enum { E = 5, N = 3 };
    float h[3 * E * N];
    memset(h, 0, sizeof h);
    for (int e = 0; e < E; e++)   /* t = 0: rank one, u v^T */
        for (int n = 0; n < N; n++) h[e * N + n] = (e + 1.0f) * (n - 1.5f);
    for (int n = 0; n < N; n++) h[E * N + n * N + n] = 2.0f;   /* t = 1: 2 I on 3 rows: rank 3 */
    h[2 * E * N + 0] = 3.0f;                                    /* t = 2: singular values 3, 1 */
    h[2 * E * N + 1 * N + 1] = 1.0f;
    float out[3];
    cr_assert_eq(ssm_states_erank(h, 3, E, N, out), SSM_OK);
    cr_assert_float_eq(out[0], 1.0f, 1e-5);
    cr_assert_float_eq(out[1], 3.0f, 1e-5);
    double p = 0.75, q = 0.25;
    cr_assert_float_eq(out[2], exp(-(p * log(p) + q * log(q))), 1e-5);
    float wide[N * E];   /* E < Ns: the transpose is decomposed */
    for (int i = 0; i < N * E; i++) wide[i] = i == 0 ? 1.0f : 0.0f;
    cr_assert_eq(ssm_states_erank(wide, 1, N, E, out), SSM_OK);
    cr_assert_float_eq(out[0], 1.0f, 1e-6);
    memset(wide, 0, sizeof wide);
    cr_assert_eq(ssm_states_erank(wide, 1, N, E, out), SSM_OK);
    cr_assert_eq(out[0], 0.0f);
}

Test(states, lens_statistics_match_direct_sums)
{
    float lens[4] = {1.0f, 3.0f, 0.5f, 3.0f}, fin[4] = {0.0f, 2.0f, 1.0f, -1.0f};
    ssm_lens_stat s;
    ssm_lens_row(lens, fin, 4, &s);
    cr_assert_eq(s.top, 1, "the lowest id wins a tie");
    double zl = 0, zf = 0;
    for (int i = 0; i < 4; i++) { zl += exp(lens[i]); zf += exp(fin[i]); }
    double H = 0, kl = 0;
    for (int i = 0; i < 4; i++) {
        double p = exp(lens[i]) / zl, q = exp(fin[i]) / zf;
        H -= p * log(p);
        kl += q * log(q / p);
    }
    cr_assert_float_eq(s.prob, exp(3.0) / zl, 1e-9);
    cr_assert_float_eq(s.entropy, H, 1e-9);
    cr_assert_float_eq(s.kl, kl, 1e-9);
    ssm_lens_row(fin, fin, 4, &s);
    cr_assert_float_eq(s.kl, 0.0, 1e-12);
}
