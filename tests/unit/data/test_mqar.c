/* test_mqar.c — unit tests of the MQAR generator (data/mqar.c): the layout
 * invariants of every example, determinism by (seed, index), the gap
 * distribution (uniform for a = 1, zoology's power law for a = 0.01), the
 * refusal of bad parameters, and accuracy over query positions. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/mqar.h"

static ssm_mqar_config cfg(int V, int T, int K, double a, int random_filler)
{
    return (ssm_mqar_config){.vocab = V, .len = T, .pairs = K, .alpha = a, .random_filler = random_filler};
}

/* Every invariant of one example (tokens, targets (T)). */
static void check_example(const ssm_mqar_config *c, const int *tok, const int *tgt)
{
    int K = c->pairs, T = c->len, half = c->vocab / 2, queries = 0;
    for (int i = 0; i < K; i++) {
        int key = tok[2 * i], val = tok[2 * i + 1];
        cr_assert(key >= 1 && key < half, "key %d outside [1, %d)", key, half);
        cr_assert(val >= half && val < c->vocab, "value %d outside [%d, %d)", val, half, c->vocab);
        for (int j = 0; j < i; j++) {
            cr_assert_neq(tok[2 * j], key, "key %d repeated", key);
            cr_assert_neq(tok[2 * j + 1], val, "value %d repeated", val);
        }
        int found = 0;
        for (int t = 0; t < T; t++)
            if (tgt[t] >= 0 && tok[t] == key) {
                found++;
                cr_assert_geq(t, 2 * K, "query of key %d at %d, inside the pairs", key, t);
                cr_assert_eq((t - 2 * K) % 2, 0, "query at odd offset %d", t);
                cr_assert_eq(tgt[t], val, "target at the query of key %d is %d, want %d", key, tgt[t], val);
            }
        cr_assert_eq(found, 1, "key %d queried %d times", key, found);
        if (!c->random_filler) {
            int seen = 0;
            for (int t = 0; t < T; t++) seen += tok[t] == key;
            cr_assert_eq(seen, 2, "key %d appears %d times with zero filler", key, seen);
        }
    }
    for (int t = 0; t < T; t++) {
        cr_assert(tok[t] >= 0 && tok[t] < c->vocab, "token %d out of range", tok[t]);
        cr_assert(tgt[t] >= -1, "target %d", tgt[t]);
        queries += tgt[t] >= 0;
        if (t < 2 * K) cr_assert_eq(tgt[t], -1, "target inside the pairs at %d", t);
        int is_query = tgt[t] >= 0;
        if (!c->random_filler && t >= 2 * K && !is_query) cr_assert_eq(tok[t], 0, "filler %d at %d", tok[t], t);
    }
    cr_assert_eq(queries, K, "%d targets for %d pairs", queries, K);
}

Test(mqar, examples_satisfy_the_invariants)
{
    ssm_mqar_config cs[] = {cfg(64, 32, 4, 0.01, 0), cfg(64, 32, 8, 1.0, 1), cfg(8192, 64, 16, 0.01, 1),
                            cfg(10, 16, 4, 0.5, 0), cfg(6, 4, 1, 0.01, 0)};
    for (int n = 0; n < 5; n++) {
        int T = cs[n].len, tok[64], tgt[64], gaps[16];
        for (uint64_t i = 0; i < 300; i++) {
            cr_assert_eq(ssm_mqar_example(&cs[n], 1, i, tok, tgt, gaps), SSM_OK, "%s", ssm_last_error());
            check_example(&cs[n], tok, tgt);
            for (int k = 0; k < cs[n].pairs; k++) {
                int q = 2 * cs[n].pairs + 2 * (gaps[k] - 1);
                cr_assert(q < T && tok[q] == tok[2 * k] && tgt[q] == tok[2 * k + 1], "gap %d of key %d", gaps[k], k);
            }
        }
    }
}

Test(mqar, examples_depend_on_seed_and_index_alone)
{
    ssm_mqar_config c = cfg(256, 32, 4, 0.01, 1);
    int tok[4][32], tgt[4][32], a[32], b[32];
    cr_assert_eq(ssm_mqar_batch(&c, 9, 10, 4, &tok[0][0], &tgt[0][0]), SSM_OK);
    for (int r = 0; r < 4; r++) {
        cr_assert_eq(ssm_mqar_example(&c, 9, 10 + r, a, b, NULL), SSM_OK);
        cr_assert_eq(memcmp(a, tok[r], sizeof a), 0, "row %d differs from example %d", r, 10 + r);
        cr_assert_eq(memcmp(b, tgt[r], sizeof b), 0);
    }
    cr_assert_neq(memcmp(tok[0], tok[1], sizeof a), 0, "examples 10 and 11 are equal");
    ssm_mqar_example(&c, 10, 10, a, b, NULL);
    cr_assert_neq(memcmp(a, tok[0], sizeof a), 0, "seeds 9 and 10 give the same example");
}

/* Histogram (slots + 1) of the gaps of n examples. */
static void gap_histogram(const ssm_mqar_config *c, int n, long *hist)
{
    int S = ssm_mqar_slots(c), tok[256], tgt[256], gaps[64];
    memset(hist, 0, sizeof(long) * (S + 1));
    for (int i = 0; i < n; i++) {
        cr_assert_eq(ssm_mqar_example(c, 3, (uint64_t)i, tok, tgt, gaps), SSM_OK);
        for (int k = 0; k < c->pairs; k++) {
            cr_assert(gaps[k] >= 1 && gaps[k] <= S, "gap %d outside [1, %d]", gaps[k], S);
            hist[gaps[k]]++;
        }
    }
}

/* One query (K = 1): each slot's count is within 5 sigma of n p(g). */
static void check_single_query_law(double a)
{
    ssm_mqar_config c = cfg(512, 64, 1, a, 0);
    int S = ssm_mqar_slots(&c), n = 20000;
    long hist[64];
    gap_histogram(&c, n, hist);
    double Z = 0;
    for (int g = 1; g <= S; g++) Z += a * pow(g, a - 1);
    for (int g = 1; g <= S; g++) {
        double p = a * pow(g, a - 1) / Z, mean = n * p, sd = sqrt(n * p * (1 - p));
        cr_assert_leq(fabs(hist[g] - mean), 5 * sd + 1, "a = %g, gap %d: %ld, expected %.1f", a, g, hist[g], mean);
    }
}

Test(mqar, one_query_gaps_follow_the_power_law) { check_single_query_law(0.01); }
Test(mqar, one_query_gaps_are_uniform_for_a_one) { check_single_query_law(1.0); }

Test(mqar, many_query_gaps_uniform_for_a_one_short_for_small_a)
{
    ssm_mqar_config u = cfg(512, 128, 8, 1.0, 1), p = cfg(512, 128, 8, 0.01, 1);
    int S = ssm_mqar_slots(&u), n = 3000;   /* 56 slots */
    long hu[128], hp[128], total = (long)n * u.pairs;
    gap_histogram(&u, n, hu);
    gap_histogram(&p, n, hp);
    double expect = (double)total / S;
    long short_u = 0, short_p = 0;
    for (int g = 1; g <= S; g++) {
        cr_assert_leq(fabs(hu[g] - expect), 5 * sqrt(expect), "a = 1, gap %d: %ld, expected %.0f", g, hu[g], expect);
        if (g <= S / 8) { short_u += hu[g]; short_p += hp[g]; }
    }
    /* a = 1: 1/8 of the queries in the first 1/8 of the slots.  a = 0.01:
     * zoology's draw (numpy choice(56, 8, replace=False, p), 20000
     * examples) puts 0.447 of them there. */
    cr_assert_lt(fabs((double)short_u / total - 0.125), 0.015, "a = 1: %ld of %ld short", short_u, total);
    cr_assert_lt(fabs((double)short_p / total - 0.447), 0.015, "a = 0.01: %ld of %ld short", short_p, total);
    cr_assert_gt(hp[1], hp[2], "a = 0.01: gap 1 (%ld) not above gap 2 (%ld)", hp[1], hp[2]);
    cr_assert_gt(hp[2], 2 * hp[S], "a = 0.01: gap 2 (%ld) not well above the last (%ld)", hp[2], hp[S]);
}

static void expect_refused(ssm_mqar_config c, const char *words)
{
    int tok[64], tgt[64];
    cr_assert_eq(ssm_mqar_check(&c), SSM_ERR_CONFIG, "accepted V %d T %d K %d a %g", c.vocab, c.len,
                 c.pairs, c.alpha);
    cr_assert(strstr(ssm_last_error(), words), "message '%s' lacks '%s'", ssm_last_error(), words);
    cr_assert_eq(ssm_mqar_example(&c, 0, 0, tok, tgt, NULL), SSM_ERR_CONFIG);
}

Test(mqar, bad_parameters_are_refused)
{
    expect_refused(cfg(64, 31, 4, 0.01, 0), "length 31 must be even");
    expect_refused(cfg(64, 2, 1, 0.01, 0), "length 2");
    expect_refused(cfg(64, 32, 9, 0.01, 0), "9 pairs");
    expect_refused(cfg(64, 32, 0, 0.01, 0), "0 pairs");
    expect_refused(cfg(8, 32, 4, 0.01, 0), "only 3 distinct keys");
    expect_refused(cfg(2, 32, 1, 0.01, 0), "vocabulary 2");
    expect_refused(cfg(64, 32, 4, 0.0, 0), "a = 0");
    expect_refused(cfg(64, 32, 4, -1.0, 0), "a = -1");
    expect_refused(cfg(64, 32, 4, NAN, 0), "a = nan");
    expect_refused(cfg(64, 32, 4, 0.01, 2), "filler 2");
    ssm_mqar_config ok = cfg(64, 32, 4, 0.01, 0);
    int tok[32], tgt[32];
    cr_assert_eq(ssm_mqar_batch(&ok, 0, 0, 0, tok, tgt), SSM_ERR_CONFIG);
    ssm_mqar_default(&ok);
    cr_assert_eq(ssm_mqar_check(&ok), SSM_OK);
    cr_assert_float_eq(ok.alpha, 0.01, 1e-12);
}

Test(mqar, block_is_a_batch_with_ignored_targets)
{
    ssm_mqar_block blk;
    ssm_mqar_config c = cfg(128, 32, 4, 0.01, 1);
    cr_assert_eq(ssm_mqar_build_block(&blk, 3, 32), SSM_OK);
    cr_assert_eq(ssm_mqar_batch(&c, 1, 0, 3, blk.tokens, blk.targets), SSM_OK);
    cr_assert(blk.batch.B == 3 && blk.batch.L == 32 && blk.batch.tokens == blk.tokens &&
              blk.batch.targets == blk.targets && !blk.batch.inputs);
    for (int r = 0; r < 3; r++) check_example(&c, blk.tokens + r * 32, blk.targets + r * 32);
    ssm_mqar_free_block(&blk);
    cr_assert_null(blk.tokens);
}

Test(mqar, accuracy_counts_query_positions_only)
{
    /* 5 positions, vocabulary 4: targets -1, 2, 3, -1, 0 */
    const int tgt[5] = {-1, 2, 3, -1, 0};
    const float logits[20] = {9, 0, 0, 0,   0, 0, 5, 1,   0, 7, 0, 1,   0, 0, 0, 9,   3, 3, 0, 0};
    long counted = 0;
    /* position 1 right (2), position 2 wrong (1 not 3), position 4 right (first of a tie) */
    cr_assert_eq(ssm_mqar_count_correct(logits, tgt, 5, 4, &counted), 2);
    cr_assert_eq(counted, 3);
    const int none[2] = {-1, -1};
    cr_assert_eq(ssm_mqar_count_correct(logits, none, 2, 4, &counted), 0);
    cr_assert_eq(counted, 0);
}
