/* test_run_config.c — unit tests of the range checks on the optimizer and
 * schedule keys (scenarios/run_config.c): each value that once trained
 * silently wrong or died of NaN is refused with SSM_ERR_CONFIG and one line
 * naming the key, the value and the valid range; the edges of each range
 * are accepted. */
#include <criterion/criterion.h>
#include <string.h>

#include "scenarios/run_config.h"

/* The override kv is refused at parse time or by run_config_check, with a
 * message holding each of the words. */
static void expect_refused(const char *kv, const char *key, const char *value, const char *range)
{
    run_config rc;
    run_config_default(&rc);
    ssm_status st = run_config_set(&rc, kv, "cli");
    if (!st) st = run_config_check(&rc);
    cr_expect_eq(st, SSM_ERR_CONFIG, "%s was accepted", kv);
    const char *msg = ssm_last_error();
    cr_expect(!strchr(msg, '\n'), "%s: message is not one line: '%s'", kv, msg);
    const char *words[] = {key, value, range};
    for (int i = 0; i < 3; i++)
        cr_expect(strstr(msg, words[i]) != NULL, "%s: message '%s' lacks '%s'", kv, msg, words[i]);
}

static void expect_accepted(const char *const *kv, int n)
{
    run_config rc;
    run_config_default(&rc);
    for (int i = 0; i < n; i++) cr_assert_eq(run_config_set(&rc, kv[i], "cli"), SSM_OK, "%s: %s", kv[i], ssm_last_error());
    cr_expect_eq(run_config_check(&rc), SSM_OK, "%s ...: %s", kv[0], ssm_last_error());
}

Test(run_config_ranges, silently_wrong_values_are_refused)
{
    expect_refused("min_lr=-1", "min_lr", "-1", "[0, inf)");
    expect_refused("beta1=2", "beta1", "2", "[0, 1)");
    expect_refused("eps=0", "eps", "0", "(0, inf)");
    expect_refused("eps=-1e-3", "eps", "-0.001", "(0, inf)");
    expect_refused("eps=1e-50", "eps", "0", "(0, inf)");   /* rounds to float 0 */
    expect_refused("grad_clip=nan", "grad_clip", "nan", "[0, inf)");
    expect_refused("grad_clip=-1", "grad_clip", "-1", "[0, inf)");
    expect_refused("min_lr=0.1", "min_lr", "0.1", "lr = 0.003");
}

Test(run_config_ranges, values_that_die_of_nan_are_refused)
{
    expect_refused("lr=inf", "lr", "inf", "(0, inf)");
    expect_refused("lr=1e39", "lr", "inf", "(0, inf)");   /* overflows float */
    expect_refused("lr=nan", "lr", "nan", "(0, inf)");
    expect_refused("lr=0", "lr", "0", "(0, inf)");
    expect_refused("beta2=1", "beta2", "1", "[0, 1)");
    expect_refused("beta2=-0.5", "beta2", "-0.5", "[0, 1)");
    expect_refused("weight_decay=nan", "weight_decay", "nan", "[0, inf)");
    expect_refused("weight_decay=-0.1", "weight_decay", "-0.1", "[0, inf)");
    expect_refused("norm_eps=0", "norm_eps", "0", "(0, inf)");
}

Test(run_config_ranges, the_edges_are_accepted)
{
    const char *edges[] = {"beta1=0", "beta2=0.999999", "grad_clip=0", "weight_decay=0", "min_lr=0", "eps=1e-30"};
    expect_accepted(edges, 6);
    const char *equal[] = {"lr=0.01", "min_lr=0.01"};
    expect_accepted(equal, 2);
}

Test(run_config_ranges, a_config_file_line_names_its_origin)
{
    run_config rc;
    run_config_default(&rc);
    cr_expect_eq(run_config_parse_text(&rc, "lr = 0.01\nbeta1 = 1\n", "x.conf"), SSM_ERR_CONFIG);
    cr_expect(strstr(ssm_last_error(), "x.conf: beta1 = 1 is out of range [0, 1)") != NULL, "%s",
              ssm_last_error());
}
