/* bench.c — `ssmlab bench`: times the engine on fixed, randomly initialised
 * model shapes and prints one row per case (stdout, CSV or JSONL; messages on
 * stderr), in the columns bench/torch_baseline.py prints for PyTorch:
 *   train-small  forward + backward + AdamW, D 128, 4 layers, B 8, L 256
 *   infer-130m   one forward of the mamba-130m shape, B 1, L 512
 *   scan         the selective-scan kernels alone, naive and fast twins
 * Each case runs `warmup` untimed passes, then `steps` timed ones (wall
 * clock); tokens_per_s counts B*L tokens per pass over all timed passes,
 * best_tokens_per_s over the fastest one.  peak_mib is the process's
 * peak resident size so far (getrusage), so run one case per process to
 * attribute it. */
#include "engine/clock.h"
#include "cli/bench.h"

#include <cblas.h>
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <time.h>

#include "cli/cli.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/scan.h"

/* In OpenBLAS's cblas.h; declared again for builds whose cblas.h lacks them. */
char *openblas_get_config(void);
char *openblas_get_corename(void);
int openblas_get_num_threads(void);

typedef struct {
    const char *name;
    int d_model, n_layer, vocab;
    int B, L;
    int train;             /* forward + backward + AdamW, else forward only */
    int steps, warmup;     /* defaults */
} bench_case;

static const bench_case cases[] = {
    {"train-small", 128, 4, 256, 8, 256, 1, 10, 2},
    {"infer-130m", 768, 24, 50280, 1, 512, 0, 3, 1},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

typedef struct {
    const char *which;     /* case name or "all" */
    int threads;           /* 0: all cores */
    int steps, warmup;     /* -1: the case's default */
    const char *format;
    long seed;
} bench_opts;

typedef struct {
    const char *name, *impl;
    int B, L, steps, warmup;
    double seconds;        /* all timed passes */
    double best;           /* fastest timed pass */
    size_t n_params;
} bench_result;

static const char *const columns[] = {
    "case", "impl", "threads", "tokens_per_s", "peak_mib", "blas_config", "blas_core",
    "omp_threads", "blas_threads", "batch", "seq_len", "steps", "warmup", "seconds",
    "n_params", "best_tokens_per_s"};
#define NCOLS ((int)(sizeof columns / sizeof columns[0]))


static double peak_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return ru.ru_maxrss / 1024.0;   /* ru_maxrss is in KiB on Linux */
}

static uint64_t rng_next(uint64_t *s)   /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_uniform(uint64_t *s) { return (rng_next(s) >> 40) * (1.0f / 16777216.0f); }

static void emit_row(cli_table *t, const bench_result *r, int threads)
{
    char v[NCOLS][256];
    double tps = r->seconds > 0 ? (double)r->B * r->L * r->steps / r->seconds : 0.0;
    snprintf(v[0], 256, "%s", r->name);
    snprintf(v[1], 256, "%s", r->impl);
    snprintf(v[2], 256, "%d", threads);
    snprintf(v[3], 256, "%.1f", tps);
    snprintf(v[4], 256, "%.1f", peak_mib());
    snprintf(v[5], 256, "%s", openblas_get_config());
    snprintf(v[6], 256, "%s", openblas_get_corename());
    snprintf(v[7], 256, "%d", omp_get_max_threads());
    snprintf(v[8], 256, "%d", openblas_get_num_threads());
    snprintf(v[9], 256, "%d", r->B);
    snprintf(v[10], 256, "%d", r->L);
    snprintf(v[11], 256, "%d", r->steps);
    snprintf(v[12], 256, "%d", r->warmup);
    snprintf(v[13], 256, "%.6g", r->seconds);
    snprintf(v[14], 256, "%zu", r->n_params);
    snprintf(v[15], 256, "%.1f", r->best > 0 ? (double)r->B * r->L / r->best : 0.0);
    for (int i = 0; i < NCOLS; i++)   /* keep CSV cells plain */
        for (char *p = v[i]; *p; p++)
            if (*p == ',' || *p == '"' || *p == '\n') *p = ' ';
    const char *vals[NCOLS];
    for (int i = 0; i < NCOLS; i++) vals[i] = v[i];
    cli_table_row(t, vals);
}

/* ------------------------------------------------------------------------ */
/* Model cases                                                              */

static ssm_status case_build(const bench_case *bc, uint64_t seed, ssm_model *m)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = bc->d_model;
    c.n_layer = bc->n_layer;
    c.d_state = 16;
    c.expand = 2;
    c.d_conv = 4;
    c.dt_rank = 0;
    c.vocab_size = bc->vocab;
    c.pad_vocab_size_multiple = 8;
    c.input_kind = SSM_INPUT_TOKENS;
    c.n_classes = 0;
    c.tie_embeddings = 1;
    ssm_status st = ssm_config_finalize(&c);
    if (st) return st;
    if ((st = ssm_model_build(m, &c))) return st;
    ssm_model_init(m, seed);
    return bc->train ? ssm_model_alloc_grads(m) : SSM_OK;
}

/* One timed unit: a training step or an inference forward. */
static ssm_status case_pass(ssm_model *m, ssm_adamw *opt, const ssm_batch *b, int train)
{
    if (!train) return ssm_model_forward(m, b);
    ssm_model_zero_grad(m);
    ssm_status st = ssm_model_forward(m, b);
    if (st) return st;
    if ((st = ssm_model_backward(m, 1.0f))) return st;
    ssm_adamw_update(opt, m);
    return SSM_OK;
}

static ssm_status case_loop(ssm_model *m, ssm_adamw *opt, const ssm_batch *b,
                            const bench_case *bc, bench_result *r)
{
    ssm_status st;
    for (int i = 0; i < r->warmup; i++) {
        if ((st = case_pass(m, opt, b, bc->train))) return st;
        fprintf(stderr, "ssmlab bench %s: warmup %d/%d\n", bc->name, i + 1, r->warmup);
    }
    double t0 = ssm_now_s();
    r->best = 0.0;
    for (int i = 0; i < r->steps; i++) {
        double t1 = ssm_now_s();
        if ((st = case_pass(m, opt, b, bc->train))) return st;
        double dt = ssm_now_s() - t1;
        if (i == 0 || dt < r->best) r->best = dt;
    }
    r->seconds = ssm_now_s() - t0;
    if (bc->train) fprintf(stderr, "ssmlab bench %s: last loss %.4f\n", bc->name, m->loss);
    return SSM_OK;
}

static ssm_status case_run(const bench_case *bc, const bench_opts *o, bench_result *r)
{
    ssm_model m;
    ssm_adamw opt;
    memset(&m, 0, sizeof m);
    memset(&opt, 0, sizeof opt);
    size_t n = (size_t)bc->B * bc->L;
    int *tokens = malloc(2 * n * sizeof(int));   /* (B, L) tokens then (B, L) targets */
    if (!tokens) return ssm_fail(SSM_ERR_NOMEM, "cannot allocate the bench batch");
    uint64_t s = o->seed;
    for (size_t i = 0; i < 2 * n; i++) tokens[i] = (int)(rng_next(&s) % (uint64_t)bc->vocab);
    ssm_batch b = {.B = bc->B, .L = bc->L, .tokens = tokens,
                   .targets = bc->train ? tokens + n : NULL};

    *r = (bench_result){.name = bc->name, .impl = "ssmlab", .B = bc->B, .L = bc->L,
                        .steps = o->steps >= 0 ? o->steps : bc->steps,
                        .warmup = o->warmup >= 0 ? o->warmup : bc->warmup};
    ssm_status st = case_build(bc, o->seed, &m);
    if (!st && bc->train) {
        ssm_adamw_config ac;
        ssm_adamw_config_default(&ac);
        st = ssm_adamw_build(&opt, &m, &ac);
    }
    if (!st) {
        r->n_params = m.num_params;
        st = case_loop(&m, &opt, &b, bc, r);
    }
    ssm_adamw_free(&opt);
    ssm_model_free(&m);
    free(tokens);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Scan micro-benchmark: one layer of the train-small shape (every scan
 * path, forward and backward), one layer of the mamba-130m shape (the fast
 * scan paths, and the conv naive, fast and fused with the SiLU)            */

enum { SCAN_N = 16, SCAN_R = 8, SCAN_K = 4 };

typedef struct {
    const char *name;      /* row name prefix: "scan" or "scan-130m" */
    int B, L, E;
} scan_shape;

static const scan_shape scan_shapes[] = {{"scan", 8, 256, 256}, {"scan-130m", 1, 512, 1536}};

typedef struct {
    scan_shape sh;
    ssm_scan_args a;
    ssm_conv_args c;
    float *mem;
    float *y, *dy, *du, *ddelta, *dbc, *dA, *dD;   /* outputs and gradients */
    float *u2;                                     /* (B, L, E) the fused conv's SiLU */
} scan_bench;

/* What one timed kernel is: a scan direction and path, or a conv. */
typedef enum { K_SCAN_FWD, K_SCAN_BWD, K_CONV, K_CONV_SILU } scan_kernel;

static ssm_status scan_build(scan_bench *sb, const scan_shape *sh, uint64_t seed)
{
    size_t ble = (size_t)sh->B * sh->L * sh->E;
    size_t bc = (size_t)sh->B * sh->L * (SCAN_R + 2 * SCAN_N);
    size_t en = (size_t)sh->E * SCAN_N, ek = (size_t)sh->E * SCAN_K;
    sb->sh = *sh;
    sb->mem = malloc((10 * ble + 2 * bc + 2 * en + ek + 3 * (size_t)sh->E) * sizeof(float));
    if (!sb->mem) return ssm_fail(SSM_ERR_NOMEM, "cannot allocate the scan bench buffers");
    float *p = sb->mem;
    float *u = p;        p += ble;   /* (B, L, E) */
    float *delta = p;    p += ble;   /* (B, L, E) */
    float *xdbl = p;     p += bc;    /* (B, L, R+2N) */
    float *A = p;        p += en;    /* (E, N) */
    float *D = p;        p += sh->E;
    float *xz = p;       p += 2 * ble; /* (B, L, 2E) the conv's input */
    float *cw = p;       p += ek;    /* (E, K) */
    float *cb = p;       p += sh->E;
    sb->y = p;           p += ble;
    sb->dy = p;          p += ble;
    sb->du = p;          p += ble;
    sb->ddelta = p;      p += ble;
    sb->u2 = p;          p += ble;
    sb->dbc = p;         p += bc;
    sb->dA = p;          p += en;
    sb->dD = p;
    uint64_t s = seed;
    for (size_t i = 0; i < ble; i++) {
        u[i] = 2.0f * rng_uniform(&s) - 1.0f;
        delta[i] = 0.001f + 0.1f * rng_uniform(&s);
        sb->dy[i] = 2.0f * rng_uniform(&s) - 1.0f;
    }
    for (size_t i = 0; i < 2 * ble; i++) xz[i] = 2.0f * rng_uniform(&s) - 1.0f;
    for (size_t i = 0; i < ek; i++) cw[i] = rng_uniform(&s) - 0.5f;
    for (size_t i = 0; i < bc; i++) xdbl[i] = 2.0f * rng_uniform(&s) - 1.0f;
    for (size_t i = 0; i < en; i++) A[i] = -(float)(i % SCAN_N + 1);
    for (int e = 0; e < sh->E; e++) D[e] = 1.0f, cb[e] = 0.1f;
    sb->a = (ssm_scan_args){.B = sh->B, .L = sh->L, .E = sh->E, .N = SCAN_N, .u = u,
                            .delta = delta, .Bm = xdbl + SCAN_R, .Cm = xdbl + SCAN_R + SCAN_N,
                            .ld_bc = SCAN_R + 2 * SCAN_N, .A = A, .Dskip = D};
    sb->c = (ssm_conv_args){.B = sh->B, .L = sh->L, .E = sh->E, .K = SCAN_K, .x = xz,
                            .ldx = 2 * sh->E, .w = cw, .bias = cb};
    return SSM_OK;
}

static void scan_once(scan_bench *sb, scan_kernel k, int naive)
{
    const ssm_scan_args *a = &sb->a;
    float *dB = sb->dbc + SCAN_R, *dC = sb->dbc + SCAN_R + SCAN_N;
    switch (k) {
    case K_SCAN_FWD:
        if (naive) ssm_scan_forward_naive(a, sb->y);
        else ssm_scan_forward(a, sb->y);
        break;
    case K_SCAN_BWD:
        if (naive) ssm_scan_backward_naive(a, sb->dy, sb->du, sb->ddelta, dB, dC, sb->dA, sb->dD);
        else ssm_scan_backward(a, sb->dy, sb->du, sb->ddelta, dB, dC, sb->dA, sb->dD);
        break;
    case K_CONV:
        if (naive) ssm_conv_forward_naive(&sb->c, sb->y);
        else ssm_conv_forward(&sb->c, sb->y);
        break;
    case K_CONV_SILU:
        if (naive) ssm_conv_silu_forward_naive(&sb->c, sb->y, sb->u2);
        else ssm_conv_silu_forward(&sb->c, sb->y, sb->u2);
        break;
    }
}

/* --warmup untimed passes (default 1), then --steps timed ones, or by
 * default as many as take at least 0.25 s (and 3 passes). */
static void scan_time(scan_bench *sb, scan_kernel k, int naive, const bench_opts *o, bench_result *r)
{
    int warmup = o->warmup >= 0 ? o->warmup : 1;
    for (int i = 0; i < warmup; i++) scan_once(sb, k, naive);
    int reps = 0;
    double t0 = ssm_now_s(), t, best = 0.0;
    do {
        double t1 = ssm_now_s();
        scan_once(sb, k, naive);
        double dt = ssm_now_s() - t1;
        if (reps == 0 || dt < best) best = dt;
        reps++;
        t = ssm_now_s() - t0;
    } while (o->steps >= 0 ? reps < o->steps : reps < 3 || t < 0.25);
    r->B = sb->sh.B;
    r->L = sb->sh.L;
    r->steps = reps;
    r->warmup = warmup;
    r->seconds = t;
    r->best = best;
}

/* The conv's rates over the fastest pass, on stderr (the table's columns
 * are shared by every case): FLOPs 2K per output, bytes the input once and
 * every output written once. */
static void conv_tell(const scan_bench *sb, const bench_result *r, int outputs)
{
    double n = (double)sb->sh.B * sb->sh.L * sb->sh.E;
    fprintf(stderr, "ssmlab bench %s %s: %.2f ms, %.2f GFLOP/s, %.2f GB/s (fastest pass)\n",
            r->name, r->impl, 1e3 * r->best, 2.0 * SCAN_K * n / r->best * 1e-9,
            4.0 * n * (1 + outputs) / r->best * 1e-9);
}

static void scan_row(scan_bench *sb, scan_kernel k, int naive, const char *name,
                     const char *impl, const bench_opts *o, cli_table *t, int threads)
{
    char full[64];
    snprintf(full, sizeof full, "%s-%s", sb->sh.name, name);
    bench_result r = {.name = full, .impl = impl};
    scan_time(sb, k, naive, o, &r);
    emit_row(t, &r, threads);
    if (k == K_CONV || k == K_CONV_SILU) conv_tell(sb, &r, k == K_CONV_SILU ? 2 : 1);
}

/* The forward rows of every scan path this CPU runs; the path is restored. */
static void scan_paths(scan_bench *sb, int naive, const bench_opts *o, cli_table *t, int threads)
{
    ssm_scan_isa was = ssm_scan_isa_get();
    if (naive) scan_row(sb, K_SCAN_FWD, 1, "fwd", "naive", o, t, threads);
    for (int isa = SSM_SCAN_ISA_AVX2; isa <= SSM_SCAN_ISA_AVX512; isa++)
        if (ssm_scan_isa_set((ssm_scan_isa)isa) == SSM_OK)
            scan_row(sb, K_SCAN_FWD, 0, "fwd", ssm_scan_isa_name((ssm_scan_isa)isa), o, t, threads);
    ssm_scan_isa_set(was);
}

static ssm_status scan_run(const bench_opts *o, cli_table *t, int threads)
{
    for (int i = 0; i < 2; i++) {
        scan_bench sb;
        ssm_status st = scan_build(&sb, &scan_shapes[i], o->seed);
        if (st) return st;
        scan_paths(&sb, i == 0, o, t, threads);
        if (i == 0) {
            scan_row(&sb, K_SCAN_BWD, 1, "bwd", "naive", o, t, threads);
            scan_row(&sb, K_SCAN_BWD, 0, "bwd", "fast", o, t, threads);
        } else {
            scan_row(&sb, K_CONV, 1, "conv", "naive", o, t, threads);
            scan_row(&sb, K_CONV, 0, "conv", "fast", o, t, threads);
            scan_row(&sb, K_CONV_SILU, 1, "conv-silu", "naive", o, t, threads);
            scan_row(&sb, K_CONV_SILU, 0, "conv-silu", "fast", o, t, threads);
        }
        free(sb.mem);
    }
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Command line                                                             */

static const char *const case_names[] = {"train-small", "infer-130m", "scan", "all", NULL};

static const cli_opt bench_options[] = {
    {"case", 0, CLI_OPT_CHOICE, .metavar = "NAME", .help = "train-small, infer-130m, scan or all (default)",
     .offset = offsetof(bench_opts, which), .choices = case_names},
    CLI_OPT_THREADS(bench_opts, threads),
    {"steps", 0, CLI_OPT_INT, 1, 1000000, .metavar = "N", .help = "timed passes (default: the case's)",
     .offset = offsetof(bench_opts, steps)},
    {"warmup", 0, CLI_OPT_INT, 0, 1000000, .metavar = "N", .help = "untimed passes first (default: the case's)",
     .offset = offsetof(bench_opts, warmup)},
    {"seed", 0, CLI_OPT_LONG, 0, 1000000, .metavar = "N", .help = "seed of the weights and tokens (default 1234)",
     .offset = offsetof(bench_opts, seed)},
    CLI_OPT_FORMAT(bench_opts, format),
    CLI_OPT_END};

static const cli_command bench_command = {
    "bench", "[--case NAME] [options]",
    "Training and inference throughput on fixed model shapes, in the columns of bench/torch_baseline.py.", 0,
    NULL};

static int bench_parse(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.which = "all", .threads = 0, .steps = -1, .warmup = -1,
                      .format = "csv", .seed = 1234};
    const cli_opt_group groups[] = {{bench_options, o}, {NULL, NULL}};
    cli_args a;
    int rc = cli_opts_parse(&bench_command, groups, argc, argv, &a);
    if (!rc) cli_args_free(&a);
    return rc;
}

int cli_bench(int argc, char **argv)
{
    bench_opts o;
    int rc = bench_parse(argc, argv, &o);
    if (rc) return rc == CLI_OPTS_HELP ? EX_OK : rc;
    int threads = cli_threads_apply(o.threads);
    cli_log_header("bench", (long)o.seed);

    cli_table t;
    cli_table_begin(&t, stdout, o.format, columns, NCOLS);
    int all = !strcmp(o.which, "all");
    for (int i = 0; i < NCASES; i++) {
        if (!all && strcmp(o.which, cases[i].name)) continue;
        bench_result r;
        ssm_status st = case_run(&cases[i], &o, &r);
        if (st) return cli_report(st);
        emit_row(&t, &r, threads);
    }
    if (all || !strcmp(o.which, "scan")) {
        ssm_status st = scan_run(&o, &t, threads);
        if (st) return cli_report(st);
    }
    return EX_OK;
}
