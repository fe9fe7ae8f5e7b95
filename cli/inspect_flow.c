/* inspect_flow.c — the flow table of `ssmlab inspect --flow`: Euler steps
 * of one layer's mixer (or S6 map) with depth as time (engine/flow.h,
 * ssmlab-math(7) DYNAMICS), from a checkpoint's embedded input or from
 * Gaussian tokens on a model freshly built under a scenario. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/inspect_flow.h"
#include "engine/flow.h"
#include "scenarios/run_config.h"

const char *const cli_flow_systems[] = {"mixer", "s6", NULL};
const char *const cli_flow_scenarios[] = {"default", "positive", "negative", "mixed", NULL};

void cli_flow_defaults(cli_flow_opts *o)
{
    *o = (cli_flow_opts){.layer = 0, .steps = SSM_FLOW_STEPS_DEFAULT, .step = SSM_FLOW_STEP_DEFAULT,
                         .scale = 1.0, .system = "mixer",
                         .seed = 1};
}

ssm_status cli_flow_check(const cli_flow_opts *o, const ssm_config *c)
{
    if (o->layer < c->n_layer) return SSM_OK;
    return ssm_fail(SSM_ERR_USAGE, "--flow-layer %d: the model has %d layer%s", o->layer,
                    c->n_layer, c->n_layer == 1 ? "" : "s");
}

ssm_status cli_flow_model(const cli_flow_opts *o, char *const *kv, int nkv, ssm_model *m)
{
    run_config rc;
    ssm_config c;
    ssm_status st = cli_config_build(&rc, NULL, kv, nkv);
    if (st) return st;
    rc.model.scenario = ssm_scenario_parse(o->scenario);
    rc.seed = o->seed;
    if ((st = run_config_model(&rc, 0, 0, &c)) || (st = ssm_model_build(m, &c))) return st;
    ssm_model_init(m, (uint64_t)o->seed);
    return SSM_OK;
}

/* (L, W) Gaussian values of standard deviation 1 from the seed */
static float *flow_gaussian(long seed, int L, int W)
{
    float *x = malloc(sizeof(float) * (size_t)L * W);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (x && r) {
        gsl_rng_set(r, (unsigned long)seed);
        for (size_t i = 0; i < (size_t)L * W; i++) x[i] = (float)gsl_ran_gaussian(r, 1.0);
    }
    if (r) gsl_rng_free(r);
    return x;
}

static const char *const flow_cols[] = {"table", "kind", "step", "t", "pos", "id", "token", "value"};
static const unsigned char flow_text[] = {1, 1, 0, 0, 0, 0, 1, 0};

/* one row; step < 0 leaves step and t empty, pos < 0 leaves pos..token empty */
static void flow_row(cli_table *t, const ssm_flow *f, const char *kind, int step, int pos,
                     const int *ids, const char (*labels)[CLI_LABEL_MAX], const char *value)
{
    char v[4][32];
    snprintf(v[0], 32, "%d", step);
    snprintf(v[1], 32, "%.9g", step * (double)f->h);
    snprintf(v[2], 32, "%d", pos);
    snprintf(v[3], 32, "%d", pos >= 0 && ids ? ids[pos] : pos);
    const char *row[] = {"flow", kind, step >= 0 ? v[0] : NULL, step >= 0 ? v[1] : NULL,
                         pos >= 0 ? v[2] : NULL, pos >= 0 ? v[3] : NULL,
                         pos >= 0 && labels ? labels[pos] : NULL, value};
    cli_table_row(t, row);
}

static ssm_status flow_table(const ssm_flow *f, const int *ids, const char (*labels)[CLI_LABEL_MAX],
                             cli_inspect_out *out)
{
    cli_table t;
    ssm_status st = cli_tables_begin(&out->tables, &t, "flow", flow_cols, 8);
    if (st) return st;
    t.text = flow_text;
    char v[40];
    for (int k = 0; k <= f->steps; k++)
        for (int i = 0; i < f->L; i++) {
            snprintf(v, sizeof v, "%.9g", f->norms[(size_t)k * f->L + i]);
            flow_row(&t, f, "norm", k, i, ids, labels, v);
        }
    for (int i = 0; i < f->L; i++) {
        snprintf(v, sizeof v, "%.9g", f->rates[i]);
        flow_row(&t, f, "rate", -1, i, ids, labels, v);
        snprintf(v, sizeof v, "%.9g", f->r2[i]);
        flow_row(&t, f, "r2", -1, i, ids, labels, v);
    }
    snprintf(v, sizeof v, "%.9g", f->mean_rate);
    flow_row(&t, f, "mean_rate", -1, -1, NULL, NULL, v);
    snprintf(v, sizeof v, "%.9g", f->mean_r2);
    flow_row(&t, f, "mean_r2", -1, -1, NULL, NULL, v);
    snprintf(v, sizeof v, "%d", f->steps);
    flow_row(&t, f, "steps_done", -1, -1, NULL, NULL, v);
    flow_row(&t, f, "verdict", -1, -1, NULL, NULL, ssm_flow_verdict_name(f->verdict));
    return cli_tables_end(&out->tables, SSM_OK);
}

ssm_status cli_flow_run(const cli_flow_opts *o, ssm_model *m, const float *x0, int L, ssm_flow *f)
{
    int system = ssm_flow_system_parse(o->system);
    ssm_status st = cli_flow_check(o, &m->cfg);
    if (st) return st;
    int W = ssm_flow_dim(&m->cfg, system);
    int gauss = !x0 || system == SSM_FLOW_S6;
    if (gauss) L = CLI_FLOW_TOKENS;
    float *x = gauss ? flow_gaussian(o->seed, L, W) : malloc(sizeof(float) * (size_t)L * W);
    if (!x) return ssm_fail(SSM_ERR_NOMEM, "out of memory for the flow's tokens");
    for (size_t i = 0; i < (size_t)L * W; i++) x[i] = (float)o->scale * (gauss ? x[i] : x0[i]);
    fprintf(stderr, "# flow: %s of layer %d, %d %s tokens of width %d x %g, step %g, %d steps\n",
            o->system, o->layer, L, gauss ? "Gaussian" : "embedded", W, o->scale, o->step, o->steps);
    st = ssm_flow_run(m, o->layer, system, x, L, (float)o->step, o->steps, NULL, f);
    free(x);
    return st;
}

ssm_status cli_flow_emit(const cli_flow_opts *o, ssm_model *m, const float *x0, int L,
                         const int *ids, const char (*labels)[CLI_LABEL_MAX], cli_inspect_out *out,
                         ssm_flow *keep)
{
    ssm_flow f;
    ssm_status st = cli_flow_run(o, m, x0, L, &f);
    if (st) return st;
    int gauss = !x0 || f.system == SSM_FLOW_S6;
    st = flow_table(&f, gauss ? NULL : ids, gauss ? NULL : labels, out);
    if (keep && !st) *keep = f;
    else ssm_flow_free(&f);
    return st;
}
