/* test_attack.c — unit tests of the recency-bias attacks (engine/attack.c):
 * the first, last and middle regions of k tokens, only the region changes
 * (FGSM, PGD, noise), FGSM moves it by exactly eps sign(grad), PGD stays
 * inside the eps box and the value bounds, noise is N(0,1) and does not
 * depend on batching, attacks raise the loss of a small random classifier,
 * the target splice copies the right tokens, donor choice is deterministic,
 * and the tallies and rates add up. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/attack.h"
#include "engine/model.h"

enum { B = 4, L = 12, I = 3, C = 4 };
#define N ((size_t)B * L * I)

typedef struct {
    ssm_model m;
    float x[N];      /* (B, L, I) clean inputs */
    float xadv[N];   /* (B, L, I) attacked inputs */
    int labels[B];   /* (B) */
} fixture;

static unsigned rng_state = 2024u;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) / 8388608.0 - 1.0);
}

static void fixture_build(fixture *f)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = 8;
    c.n_layer = 2;
    c.d_state = 4;
    c.expand = 2;
    c.vocab_size = 0;
    c.input_kind = SSM_INPUT_CONTINUOUS;
    c.d_input = I;
    c.n_classes = C;
    cr_assert_eq(ssm_config_finalize(&c), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(ssm_model_build(&f->m, &c), SSM_OK, "%s", ssm_last_error());
    ssm_model_init(&f->m, 11);
    /* a larger head so the logits depend visibly on the inputs */
    for (int i = 0; i < C * c.d_model; i++) f->m.params.cls_w[i] = frand();
    for (size_t i = 0; i < N; i++) f->x[i] = frand();
    for (int b = 0; b < B; b++) f->labels[b] = b % C;
}

static ssm_attack_config fgsm(int k, float eps)
{
    return (ssm_attack_config){.method = SSM_ATTACK_FGSM, .start = L - k, .k = k, .eps = eps};
}

static ssm_attack_config pgd(int k, float eps, float a, int steps, int random_start)
{
    return (ssm_attack_config){.method = SSM_ATTACK_PGD, .start = L - k, .k = k, .eps = eps, .step_size = a,
                               .steps = steps, .random_start = random_start, .seed = 5};
}

static double loss_at(fixture *f, const float *x)
{
    ssm_batch b = {B, L, NULL, x, f->labels};
    cr_assert_eq(ssm_model_forward(&f->m, &b), SSM_OK, "%s", ssm_last_error());
    return f->m.loss;
}

static void attack(fixture *f, const ssm_attack_config *c)
{
    cr_assert_eq(ssm_attack_adversarial(&f->m, c, B, L, f->x, f->labels, 0, f->xadv), SSM_OK, "%s",
                 ssm_last_error());
}

/* tokens outside start .. start+k-1 are bitwise equal; returns how many
 * values inside moved */
static int check_outside_unchanged(const fixture *f, int start, int k)
{
    int moved = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < L; t++)
            for (int i = 0; i < I; i++) {
                size_t j = ((size_t)b * L + t) * I + i;
                if (t < start || t >= start + k)
                    cr_assert_eq(f->xadv[j], f->x[j], "row %d token %d (tokens %d + %d) changed", b, t, start, k);
                else moved += f->xadv[j] != f->x[j];
            }
    return moved;
}

static int check_head_unchanged(const fixture *f, int k) { return check_outside_unchanged(f, L - k, k); }

Test(attack, only_the_last_k_tokens_change)
{
    fixture f;
    fixture_build(&f);
    int ks[] = {1, 3, L};
    for (int n = 0; n < 3; n++) {
        ssm_attack_config cf = fgsm(ks[n], 0.1f), cp = pgd(ks[n], 0.1f, 0.03f, 5, 1);
        attack(&f, &cf);
        cr_assert_gt(check_head_unchanged(&f, ks[n]), 0, "FGSM moved nothing");
        attack(&f, &cp);
        cr_assert_gt(check_head_unchanged(&f, ks[n]), 0, "PGD moved nothing");
    }
    ssm_model_free(&f.m);
}

Test(attack, fgsm_moves_by_eps_times_the_sign_of_the_gradient)
{
    fixture f;
    fixture_build(&f);
    float g[N];   /* (B, L, I) */
    ssm_batch b = {B, L, NULL, f.x, f.labels};
    cr_assert_eq(ssm_attack_input_grad(&f.m, &b, g, NULL), SSM_OK, "%s", ssm_last_error());
    const float eps = 0.25f;
    const int k = 4;
    ssm_attack_config c = fgsm(k, eps);
    attack(&f, &c);
    int nonzero = 0;
    for (int r = 0; r < B; r++)
        for (int t = L - k; t < L; t++)
            for (int i = 0; i < I; i++) {
                size_t j = ((size_t)r * L + t) * I + i;
                float s = g[j] > 0 ? 1.0f : g[j] < 0 ? -1.0f : 0.0f;
                nonzero += s != 0;
                cr_assert_float_eq(f.xadv[j] - f.x[j], eps * s, 1e-6, "value %zu: %g, want %g", j,
                                   f.xadv[j] - f.x[j], eps * s);
            }
    cr_assert_gt(nonzero, B * k * I / 2, "the gradient is mostly zero");
    ssm_model_free(&f.m);
}

Test(attack, pgd_stays_in_the_eps_box_and_the_value_bounds)
{
    fixture f;
    fixture_build(&f);
    const float eps = 0.2f;
    ssm_attack_config c = pgd(5, eps, 0.15f, 8, 1);
    attack(&f, &c);
    int at_edge = 0;
    for (size_t j = 0; j < N; j++) {
        float d = fabsf(f.xadv[j] - f.x[j]);
        cr_assert_leq(d, eps * (1 + 1e-6f) + 1e-7f, "value %zu moved %g > eps", j, d);
        at_edge += d > eps * 0.999f;
    }
    cr_assert_gt(at_edge, 0, "large steps never reached the box edge");
    float lo[I] = {-0.9f, -0.5f, -1.0f}, hi[I] = {0.9f, 0.5f, 0.0f};
    c.lo = lo;
    c.hi = hi;
    attack(&f, &c);
    check_head_unchanged(&f, 5);
    for (int r = 0; r < B; r++)
        for (int t = L - 5; t < L; t++)
            for (int i = 0; i < I; i++) {
                float v = f.xadv[((size_t)r * L + t) * I + i];
                cr_assert(v >= lo[i] && v <= hi[i], "value %g outside [%g, %g]", v, lo[i], hi[i]);
            }
    ssm_model_free(&f.m);
}

Test(attack, attacks_raise_the_loss_of_a_random_classifier)
{
    fixture f;
    fixture_build(&f);
    double clean = loss_at(&f, f.x);
    ssm_attack_config c1 = fgsm(L / 2, 0.05f), c2 = pgd(L / 2, 0.3f, 0.05f, 10, 0);
    attack(&f, &c1);
    double l1 = loss_at(&f, f.xadv);
    attack(&f, &c2);
    double l2 = loss_at(&f, f.xadv);
    cr_assert_gt(l1, clean, "FGSM loss %g <= clean %g", l1, clean);
    cr_assert_gt(l2, l1, "PGD with a larger budget: loss %g <= FGSM's %g", l2, l1);
    ssm_model_free(&f.m);
}

Test(attack, unlabelled_rows_are_left_alone)
{
    fixture f;
    fixture_build(&f);
    f.labels[2] = -1;
    ssm_attack_config c = pgd(L, 0.2f, 0.05f, 3, 1);
    attack(&f, &c);
    size_t row = (size_t)L * I;
    cr_assert_eq(memcmp(f.xadv + 2 * row, f.x + 2 * row, sizeof(float) * row), 0);
    cr_assert_neq(memcmp(f.xadv, f.x, sizeof(float) * row), 0);
    ssm_model_free(&f.m);
}

Test(attack, random_starts_do_not_depend_on_batching)
{
    fixture f;
    fixture_build(&f);
    ssm_attack_config c = pgd(3, 0.2f, 1e-30f, 1, 1);   /* the start, barely stepped */
    attack(&f, &c);
    float first[N];
    memcpy(first, f.xadv, sizeof first);
    size_t row = (size_t)L * I;
    /* rows 2..3 alone, numbered 2 and 3 in the whole evaluation */
    cr_assert_eq(ssm_attack_adversarial(&f.m, &c, 2, L, f.x + 2 * row, f.labels + 2, 2, f.xadv), SSM_OK);
    for (size_t j = 0; j < 2 * row; j++) cr_assert_float_eq(f.xadv[j], first[2 * row + j], 1e-6);
    ssm_model_free(&f.m);
}

Test(attack, splice_copies_the_donors_last_k_tokens)
{
    float x[N], orig[N], donors[N];
    for (size_t j = 0; j < N; j++) {
        x[j] = orig[j] = (float)j;
        donors[j] = -1.0f - (float)j;
    }
    const int k = 5;
    ssm_attack_splice(x, donors, B, L, I, L - k, k);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < L; t++)
            for (int i = 0; i < I; i++) {
                size_t j = ((size_t)b * L + t) * I + i;
                cr_assert_eq(x[j], t < L - k ? orig[j] : donors[j], "row %d token %d value %d", b, t, i);
            }
}

Test(attack, donor_choice_is_deterministic_and_in_range)
{
    int seen[7] = {0};
    for (uint64_t i = 0; i < 200; i++) {
        size_t p = ssm_attack_pick(7, 3, i);
        cr_assert_lt(p, 7);
        cr_assert_eq(p, ssm_attack_pick(7, 3, i));
        seen[p]++;
    }
    for (int v = 0; v < 7; v++) cr_assert_gt(seen[v], 10, "donor %d picked %d times of 200", v, seen[v]);
    int differ = 0;
    for (uint64_t i = 0; i < 50; i++) differ += ssm_attack_pick(1000, 3, i) != ssm_attack_pick(1000, 4, i);
    cr_assert_gt(differ, 40, "the seed hardly matters");
    cr_assert_eq(ssm_attack_pick(1, 9, 9), 0);
}

Test(attack, mask_zeroes_all_but_the_last_k_tokens)
{
    float g[N];
    for (size_t j = 0; j < N; j++) g[j] = 1.0f;
    ssm_attack_mask(g, B, L, I, L - 2, 2);
    for (size_t j = 0; j < N; j++) cr_assert_eq(g[j], (j / I) % L >= L - 2 ? 1.0f : 0.0f);
}

Test(attack, tallies_and_rates_add_up)
{
    /* 6 rows, 3 classes: argmax of clean / attacked logits and labels */
    const int pc[6] = {0, 1, 2, 0, 1, 2}, pa[6] = {0, 2, 2, 2, 2, 0}, lab[6] = {0, 1, 2, 1, 2, -1};
    float clean[18] = {0}, adv[18] = {0};
    for (int b = 0; b < 6; b++) {
        clean[b * 3 + pc[b]] = 1.0f;
        adv[b * 3 + pa[b]] = 2.0f;
    }
    ssm_attack_counts t = {0};
    ssm_attack_count(&t, clean, adv, lab, 6, 3, -1);
    /* labelled rows 0..4: clean correct 0,1,2; attacked correct 0,2,4; flipped 1 */
    cr_assert_eq(t.n, 5);
    cr_assert_eq(t.clean_correct, 3);
    cr_assert_eq(t.attacked_correct, 3);
    cr_assert_eq(t.flipped, 1);
    cr_assert_eq(t.target_pool, 0);
    ssm_attack_rates r;
    ssm_attack_rates_of(&t, 0, &r);
    cr_assert_float_eq(r.clean_acc, 0.6, 1e-12);
    cr_assert_float_eq(r.attacked_acc, 0.6, 1e-12);
    cr_assert_float_eq(r.success_rate, 1.0 / 3.0, 1e-12);
    ssm_attack_counts u = {0};
    ssm_attack_count(&u, clean, adv, lab, 6, 3, 2);
    /* target 2: pool = labels 0,1,1 (rows 0,1,3); hits rows 1 and 3 */
    cr_assert_eq(u.target_pool, 3);
    cr_assert_eq(u.target_hits, 2);
    ssm_attack_rates_of(&u, 1, &r);
    cr_assert_float_eq(r.success_rate, 2.0 / 3.0, 1e-12);
    ssm_attack_counts e = {0};
    ssm_attack_rates_of(&e, 0, &r);
    cr_assert(isnan(r.clean_acc) && isnan(r.success_rate), "empty tallies give NAN");
}

Test(attack, bad_configs_are_refused)
{
    ssm_attack_config c = fgsm(0, 0.1f);
    cr_assert_eq(ssm_attack_config_check(&c, L), SSM_ERR_CONFIG);
    c = fgsm(L + 1, 0.1f);
    cr_assert_eq(ssm_attack_config_check(&c, L), SSM_ERR_CONFIG);
    cr_assert(strstr(ssm_last_error(), "k = 13"), "%s", ssm_last_error());
    c = fgsm(1, -0.1f);
    cr_assert_eq(ssm_attack_config_check(&c, L), SSM_ERR_CONFIG);
    c = fgsm(1, NAN);
    cr_assert_eq(ssm_attack_config_check(&c, L), SSM_ERR_CONFIG);
    c = pgd(1, 0.1f, 0.0f, 3, 0);
    cr_assert_eq(ssm_attack_config_check(&c, L), SSM_ERR_CONFIG);
    c = pgd(1, 0.1f, 0.01f, 0, 0);
    cr_assert_eq(ssm_attack_config_check(&c, L), SSM_ERR_CONFIG);
    c = pgd(1, 0.1f, 0.01f, 3, 0);
    cr_assert_eq(ssm_attack_config_check(&c, L), SSM_OK);
    cr_assert_eq(ssm_attack_method_parse("pgd"), SSM_ATTACK_PGD);
    cr_assert_eq(ssm_attack_method_parse("cw"), -1);
    cr_assert_str_eq(ssm_attack_method_name(SSM_ATTACK_FGSM), "fgsm");
}

Test(attack, regions_start_at_the_first_last_or_middle_token)
{
    /* (region, L, k) -> start */
    const int cases[][4] = {
        {SSM_ATTACK_REGION_FIRST, 12, 3, 0},  {SSM_ATTACK_REGION_LAST, 12, 3, 9},
        {SSM_ATTACK_REGION_MIDDLE, 12, 4, 4}, {SSM_ATTACK_REGION_MIDDLE, 12, 3, 4},   /* (12-3)/2 = 4 */
        {SSM_ATTACK_REGION_MIDDLE, 11, 4, 3}, {SSM_ATTACK_REGION_MIDDLE, 11, 3, 4},   /* odd L */
        {SSM_ATTACK_REGION_FIRST, 7, 7, 0},   {SSM_ATTACK_REGION_LAST, 7, 7, 0},
        {SSM_ATTACK_REGION_MIDDLE, 7, 7, 0},  {SSM_ATTACK_REGION_FIRST, 7, 1, 0},
        {SSM_ATTACK_REGION_LAST, 7, 1, 6},    {SSM_ATTACK_REGION_MIDDLE, 7, 1, 3},
        {SSM_ATTACK_REGION_MIDDLE, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *c = cases[i];
        int s = ssm_attack_region_start(c[0], c[1], c[2]);
        cr_assert_eq(s, c[3], "%s, L = %d, k = %d: start %d, want %d", ssm_attack_region_name(c[0]), c[1], c[2], s,
                     c[3]);
        ssm_attack_config cf = {.method = SSM_ATTACK_FGSM, .start = s, .k = c[2], .eps = 0.1f};
        cr_assert_eq(ssm_attack_config_check(&cf, c[1]), SSM_OK, "%s", ssm_last_error());
    }
    cr_assert_eq(ssm_attack_region_parse("middle"), SSM_ATTACK_REGION_MIDDLE);
    cr_assert_eq(ssm_attack_region_parse("centre"), -1);
    cr_assert_str_eq(ssm_attack_region_name(SSM_ATTACK_REGION_FIRST), "first");
    cr_assert_str_eq(ssm_attack_method_name(SSM_ATTACK_NOISE), "noise");
    cr_assert_eq(ssm_attack_method_parse("noise"), SSM_ATTACK_NOISE);
}

Test(attack, a_region_past_the_sequence_is_refused)
{
    ssm_attack_config c = {.method = SSM_ATTACK_NOISE, .start = L - 2, .k = 3};
    cr_assert_eq(ssm_attack_config_check(&c, L), SSM_ERR_CONFIG);
    cr_assert(strstr(ssm_last_error(), "tokens 10 .. 12"), "%s", ssm_last_error());
    c.start = -1;
    cr_assert_eq(ssm_attack_config_check(&c, L), SSM_ERR_CONFIG);
    c.start = L - 3;
    cr_assert_eq(ssm_attack_config_check(&c, L), SSM_OK, "%s", ssm_last_error());
}

Test(attack, every_method_changes_only_its_region)
{
    fixture f;
    fixture_build(&f);
    const int ks[] = {1, 4, L};
    for (int n = 0; n < 3; n++)
        for (int region = SSM_ATTACK_REGION_FIRST; region <= SSM_ATTACK_REGION_MIDDLE; region++) {
            int k = ks[n], s = ssm_attack_region_start(region, L, k);
            ssm_attack_config c[3] = {fgsm(k, 0.1f), pgd(k, 0.1f, 0.03f, 3, 1),
                                      {.method = SSM_ATTACK_NOISE, .seed = 7}};
            for (int m = 0; m < 3; m++) {
                c[m].start = s;
                c[m].k = k;
                attack(&f, &c[m]);
                int moved = check_outside_unchanged(&f, s, k);
                cr_assert_gt(moved, B * k * I / 2, "%s on the %s %d tokens moved %d values",
                             ssm_attack_method_name(c[m].method), ssm_attack_region_name(region), k, moved);
            }
        }
    ssm_model_free(&f.m);
}

Test(attack, noise_is_standard_normal)
{
    fixture f;
    fixture_build(&f);
    ssm_attack_config c = {.method = SSM_ATTACK_NOISE, .start = 2, .k = 8, .seed = 1};
    double sum = 0, sum2 = 0, inside = 0, n = 0;   /* inside: draws with |z| < 1 */
    for (uint64_t row0 = 0; row0 < 400 * B; row0 += B) {
        cr_assert_eq(ssm_attack_adversarial(&f.m, &c, B, L, f.x, f.labels, row0, f.xadv), SSM_OK);
        for (int b = 0; b < B; b++)
            for (size_t j = (size_t)c.start * I; j < (size_t)(c.start + c.k) * I; j++) {
                double z = f.xadv[(size_t)b * L * I + j];
                sum += z;
                sum2 += z * z;
                inside += fabs(z) < 1;
                n++;
            }
    }
    double mean = sum / n, sd = sqrt(sum2 / n - mean * mean);
    /* 38400 draws: the standard error of the mean is 0.005; uniform(0, 1)
     * would give mean 0.5, sd 0.29 and every draw inside */
    cr_assert_lt(fabs(mean), 0.03, "mean %g", mean);
    cr_assert_lt(fabs(sd - 1), 0.03, "sd %g", sd);
    cr_assert_lt(fabs(inside / n - 0.6827), 0.02, "P(|z| < 1) = %g", inside / n);
    ssm_model_free(&f.m);
}

Test(attack, noise_does_not_depend_on_batching_and_follows_the_seed)
{
    fixture f;
    fixture_build(&f);
    ssm_attack_config c = {.method = SSM_ATTACK_NOISE, .start = 3, .k = 5, .seed = 9};
    attack(&f, &c);
    float whole[N];
    memcpy(whole, f.xadv, sizeof whole);
    size_t row = (size_t)L * I;
    /* rows 0, then 1..3, numbered as in the whole evaluation */
    cr_assert_eq(ssm_attack_adversarial(&f.m, &c, 1, L, f.x, f.labels, 0, f.xadv), SSM_OK);
    cr_assert_eq(ssm_attack_adversarial(&f.m, &c, 3, L, f.x + row, f.labels + 1, 1, f.xadv + row), SSM_OK);
    cr_assert_eq(memcmp(f.xadv, whole, sizeof whole), 0, "noise changed with the batching");
    cr_assert_neq(memcmp(whole, whole + row, sizeof(float) * row), 0, "two rows got the same noise");
    c.seed = 10;
    attack(&f, &c);
    cr_assert_neq(memcmp(f.xadv, whole, sizeof whole), 0, "the seed does not matter");
    f.labels[1] = -1;   /* unlabelled rows are left alone */
    attack(&f, &c);
    cr_assert_eq(memcmp(f.xadv + row, f.x + row, sizeof(float) * row), 0);
    ssm_model_free(&f.m);
}

Test(attack, splice_and_mask_follow_the_region)
{
    float x[N], orig[N], donors[N], g[N];
    for (int region = SSM_ATTACK_REGION_FIRST; region <= SSM_ATTACK_REGION_MIDDLE; region++) {
        const int k = 5, s = ssm_attack_region_start(region, L, k);
        for (size_t j = 0; j < N; j++) {
            x[j] = orig[j] = (float)j;
            donors[j] = -1.0f - (float)j;
            g[j] = 1.0f;
        }
        ssm_attack_splice(x, donors, B, L, I, s, k);
        ssm_attack_mask(g, B, L, I, s, k);
        for (size_t j = 0; j < N; j++) {
            int t = (int)((j / I) % L), in = t >= s && t < s + k;
            cr_assert_eq(x[j], in ? donors[j] : orig[j], "%s: token %d", ssm_attack_region_name(region), t);
            cr_assert_eq(g[j], in ? 1.0f : 0.0f, "%s: mask at token %d", ssm_attack_region_name(region), t);
        }
    }
}
