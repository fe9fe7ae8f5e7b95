/* bench.c — `ssmlab bench`: times the engine on fixed, randomly initialised
 * model shapes and prints one row per case (stdout, CSV or JSONL; messages on
 * stderr), in the columns bench/torch_baseline.py prints for PyTorch:
 *   train-small   forward + backward + AdamW, D 128, 4 layers, B 8, L 256
 *   train-130m    the same on the mamba-130m shape, B 1, L 512
 *   infer-130m    one forward of the mamba-130m shape (all logits), B 1, L 512
 *   prefill-130m  ssm_model_forward_last: the head on the last position only,
 *                 with the GEMMs' own GFLOP/s (engine/gemm_stats.h)
 *   gen-130m      ssm_model_prefill of a 512-token prompt, then --warmup
 *                 untimed and --steps timed ssm_model_step decode steps
 *   gen-130m-bf16 the same with bf16 weights (generate's default)
 *   m2-train-small  train-small's step with Mamba-2 layers (m2-bytes-small's
 *                 heads: head_dim 32, 2 groups, chunk 64)
 *   m2-prefill-130m, m2-gen-130m  prefill-130m and gen-130m on the
 *                 mamba2-130m shape (head_dim 64, d_state 128, 1 group,
 *                 chunk 256), float32
 *   m2-gen-130m-bf16  m2-gen-130m with bf16 weights (generate's default)
 *   m2-ssd-130m   the SSD scan of one mamba2-130m layer at L 512, chunked
 *                 (ssm_ssd_forward) and as the recurrent step generation
 *                 runs (ssm_ssd_step per token, heads over the threads)
 *   sgemm         GFLOP/s of a 2048^3 GEMM and of the 130m layer's shapes
 *                 at M = 512, split over OpenMP row blocks as the model does
 *   stream        copy, triad and read bandwidth over 3 x 256 MiB arrays
 *   scan          the selective-scan kernels alone, naive and fast twins
 * Each case runs `warmup` untimed passes, then `steps` timed ones (wall
 * clock); tokens_per_s counts the tokens of all timed passes,
 * best_tokens_per_s the fastest one's.  value/unit hold each row's own
 * figure (tok/s, GFLOP/s of the fastest pass, GB/s of the fastest pass).
 * peak_mib is the process's peak resident size so far (getrusage), so run
 * one case per process to attribute it. */
#include "cli/bench.h"

#include <cblas.h>
#include <math.h>
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
#include "engine/bf16.h"
#include "engine/clock.h"
#include "engine/gemm_stats.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/scan.h"
#include "engine/split.h"
#include "engine/ssd.h"

/* In OpenBLAS's cblas.h; declared again for builds whose cblas.h lacks them. */
char *openblas_get_config(void);
char *openblas_get_corename(void);
int openblas_get_num_threads(void);

typedef enum { PASS_TRAIN, PASS_INFER, PASS_PREFILL, PASS_GEN } bench_pass;

typedef struct {
    const char *name;
    int d_model, n_layer, vocab;
    int B, L;              /* L: the prompt's length for PASS_GEN */
    bench_pass pass;
    int steps, warmup;     /* defaults; decode steps for PASS_GEN */
    const char *weights;   /* weight format of the generation path ("f32", "bf16") */
    int arch, d_state;     /* SSM_ARCH_*; N */
    int head_dim, n_groups, chunk;   /* Mamba-2 only: P, G, Q */
} bench_case;

#define M1 SSM_ARCH_MAMBA1, 16, 0, 0, 0
#define M2_SMALL SSM_ARCH_MAMBA2, 16, 32, 2, 64    /* scenarios/m2-bytes-small.conf */
#define M2_130M SSM_ARCH_MAMBA2, 128, 64, 1, 256   /* mamba2-130m */
static const bench_case cases[] = {
    {"train-small", 128, 4, 256, 8, 256, PASS_TRAIN, 10, 2, "f32", M1},
    {"train-130m", 768, 24, 50280, 1, 512, PASS_TRAIN, 2, 1, "f32", M1},
    {"infer-130m", 768, 24, 50280, 1, 512, PASS_INFER, 3, 1, "f32", M1},
    {"prefill-130m", 768, 24, 50280, 1, 512, PASS_PREFILL, 3, 1, "f32", M1},
    {"gen-130m", 768, 24, 50280, 1, 512, PASS_GEN, 64, 2, "f32", M1},
    {"gen-130m-bf16", 768, 24, 50280, 1, 512, PASS_GEN, 64, 2, "bf16", M1},
    {"m2-train-small", 128, 4, 256, 8, 256, PASS_TRAIN, 10, 2, "f32", M2_SMALL},
    {"m2-prefill-130m", 768, 24, 50280, 1, 512, PASS_PREFILL, 3, 1, "f32", M2_130M},
    {"m2-gen-130m", 768, 24, 50280, 1, 512, PASS_GEN, 64, 2, "f32", M2_130M},
    {"m2-gen-130m-bf16", 768, 24, 50280, 1, 512, PASS_GEN, 64, 2, "bf16", M2_130M},
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
    long tokens;           /* tokens per timed pass; 0: B * L */
    double seconds;        /* all timed passes */
    double best;           /* fastest timed pass */
    size_t n_params;
    const char *variant;   /* sub-case (sgemm shape, stream kernel), or NULL */
    double value;          /* the row's figure in unit; 0: tokens_per_s in tok/s */
    const char *unit;
    double gemm_gflops;    /* prefill: GFLOP/s inside the GEMMs, best pass */
    const char *weights;   /* generation: weight format */
    double weight_bytes;   /* generation: bytes of weights read per token */
    double read_gbs;       /* generation: the read kernel's GB/s over the weights,
                            * run between the timed steps */
} bench_result;

static const char *const columns[] = {
    "case", "impl", "threads", "tokens_per_s", "peak_mib", "blas_config", "blas_core",
    "omp_threads", "blas_threads", "batch", "seq_len", "steps", "warmup", "seconds",
    "n_params", "best_tokens_per_s", "variant", "value", "unit", "gemm_gflops", "weights",
    "weight_bytes", "read_gbs"};
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
    double tokens = r->tokens ? (double)r->tokens : (double)r->B * r->L;
    double tps = r->seconds > 0 ? tokens * r->steps / r->seconds : 0.0;
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
    snprintf(v[15], 256, "%.1f", r->best > 0 ? tokens / r->best : 0.0);
    if (r->unit) v[3][0] = v[15][0] = '\0';   /* tokens only in model rows */
    snprintf(v[16], 256, "%s", r->variant ? r->variant : "");
    snprintf(v[17], 256, "%.1f", r->unit ? r->value : tps);
    snprintf(v[18], 256, "%s", r->unit ? r->unit : "tok/s");
    snprintf(v[19], 256, "%.1f", r->gemm_gflops);
    snprintf(v[20], 256, "%s", r->weights ? r->weights : "");
    snprintf(v[21], 256, "%.0f", r->weight_bytes);
    snprintf(v[22], 256, "%.1f", r->read_gbs);
    for (int i = 0; i < NCOLS; i++)   /* keep CSV cells plain */
        for (char *p = v[i]; *p; p++)
            if (*p == ',' || *p == '"' || *p == '\n') *p = ' ';
    const char *vals[NCOLS];
    for (int i = 0; i < NCOLS; i++) vals[i] = v[i];
    cli_table_row(t, vals);
}

/* ------------------------------------------------------------------------ */
/* Model cases                                                              */

/* Weights of a bf16 model in the ranges of ssm_model_init (which leaves a
 * bf16 model alone), so that its peak memory is the bf16 model's own:
 * matrices uniform in +-1/sqrt(fan_in), A_log = log(n + 1), D and norms 1,
 * the dt bias softplus^-1(0.01), the conv uniform in +-1/sqrt(d_conv). */
static void bf16_fill(ssm_model *m, uint64_t seed)
{
    int n = ssm_model_tensors(m, m->params_memory, NULL, 0);
    ssm_tensor *t = malloc(sizeof *t * (size_t)n);
    if (!t) return;
    ssm_model_tensors(m, m->params_memory, t, n);
    for (int i = 0; i < n; i++) {
        const char *name = t[i].name;
        int last = t[i].shape[t[i].ndim - 1];
        float a = 1.0f / sqrtf((float)(last > 0 ? last : 1));
        int kind = strstr(name, "A_log") ? 1 : strstr(name, "dt_proj.bias") || strstr(name, "dt_bias") ? 2
                 : strstr(name, "norm") || strstr(name, ".D") ? 3 : 0;
        for (size_t j = 0; j < t[i].numel; j++) {
            float u = 2.0f * rng_uniform(&seed) - 1.0f, v;
            if (kind == 1) v = logf((float)(j % (size_t)last) + 1.0f);
            else if (kind == 2) v = -4.6f;
            else if (kind == 3) v = 1.0f;
            else v = a * u;
            if (t[i].bf16) t[i].bf16[j] = ssm_bf16_from_f32(v);
            else t[i].data[j] = v;
        }
    }
    free(t);
}

static ssm_status case_build(const bench_case *bc, uint64_t seed, ssm_model *m)
{
    ssm_config c;
    ssm_config_default(&c);
    c.d_model = bc->d_model;
    c.n_layer = bc->n_layer;
    c.d_state = bc->d_state;
    c.arch = bc->arch;
    if (bc->arch == SSM_ARCH_MAMBA2) {
        c.head_dim = bc->head_dim;
        c.n_groups = bc->n_groups;
        c.chunk_size = bc->chunk;
    }
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
    if (!strcmp(bc->weights, "bf16")) {   /* built as it runs: no float32 copy on the way */
        if ((st = ssm_model_build_weights(m, &c, SSM_WEIGHTS_BF16))) return st;
        bf16_fill(m, seed);
        return SSM_OK;
    }
    if ((st = ssm_model_build(m, &c))) return st;
    ssm_model_init(m, seed);
    return bc->pass == PASS_TRAIN ? ssm_model_alloc_grads(m) : SSM_OK;
}

/* One timed unit: a training step, a forward, or a prefill's forward. */
static ssm_status case_pass(ssm_model *m, ssm_adamw *opt, const ssm_batch *b, bench_pass pass)
{
    if (pass == PASS_INFER) return ssm_model_forward(m, b);
    if (pass == PASS_PREFILL) return ssm_model_forward_last(m, b);
    ssm_model_zero_grad(m);
    ssm_status st = ssm_model_forward(m, b);
    if (st) return st;
    if ((st = ssm_model_backward(m, 1.0f))) return st;
    ssm_adamw_update(opt, m);
    return SSM_OK;
}

/* The timed passes; the GEMMs are counted in each (gemm_stats.h) and the
 * fastest pass's GEMM GFLOP/s is kept. */
static ssm_status case_loop(ssm_model *m, ssm_adamw *opt, const ssm_batch *b,
                            const bench_case *bc, bench_result *r)
{
    ssm_status st;
    for (int i = 0; i < r->warmup; i++) {
        if ((st = case_pass(m, opt, b, bc->pass))) return st;
        fprintf(stderr, "ssmlab bench %s: warmup %d/%d\n", bc->name, i + 1, r->warmup);
    }
    double t0 = ssm_now_s();
    r->best = 0.0;
    for (int i = 0; i < r->steps; i++) {
        ssm_gemm_stats_enable(1);
        double t1 = ssm_now_s();
        st = case_pass(m, opt, b, bc->pass);
        double dt = ssm_now_s() - t1;
        ssm_gemm_stats g = ssm_gemm_stats_get();
        ssm_gemm_stats_enable(0);
        if (st) return st;
        if (i == 0 || dt < r->best) {
            r->best = dt;
            r->gemm_gflops = g.seconds > 0 ? g.flops / g.seconds * 1e-9 : 0.0;
        }
    }
    r->seconds = ssm_now_s() - t0;
    if (bc->pass == PASS_TRAIN) fprintf(stderr, "ssmlab bench %s: last loss %.4f\n", bc->name, m->loss);
    return SSM_OK;
}

/* The sum of the words [lo, hi) of a: the read kernel.  64 independent
 * sums, so the loop vectorises into four chains of adds, none waiting on
 * another; reads prefetched 4 KiB ahead, as the bf16 matrix-vector product
 * does: the best read rate this machine gives, the decode step's bound.
 * Integer sums, so any bits (a model's weights) read at the same speed. */
static uint32_t read_span(const uint32_t *a, size_t lo, size_t hi)
{
    uint32_t part[64] = {0}, sum = 0;
    size_t i = lo;
    for (; i + 64 <= hi; i += 64) {
        __builtin_prefetch(a + i + 1024);
        __builtin_prefetch(a + i + 1040);
        __builtin_prefetch(a + i + 1056);
        __builtin_prefetch(a + i + 1072);
        for (int j = 0; j < 64; j++) part[j] += a[i + j];
    }
    for (; i < hi; i++) part[0] += a[i];
    for (int j = 0; j < 64; j++) sum += part[j];
    return sum;
}

/* The calling thread's share of read_span over n words */
static uint32_t read_share(const uint32_t *a, size_t n)
{
    size_t t = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
    return read_span(a, n * t / T, n * (t + 1) / T);
}

/* Read every weight of m once by the team (its float32 block, then its
 * bf16 block); returns the bytes read and adds the sum to *sink */
static double weights_read(const ssm_model *m, uint32_t *sink)
{
    size_t n32 = m->num_params, n16 = m->num_bf16 / 2;   /* words */
    uint32_t words = 0;
#pragma omp parallel reduction(+ : words)
    {
        words += read_share((const uint32_t *)m->params_memory, n32);
        if (n16) words += read_share((const uint32_t *)m->wbf_memory, n16);
    }
    *sink += words;
    return 4.0 * n32 + 4.0 * n16;
}

/* Bytes of weights one decode step reads: every parameter once, the
 * embedding as the tied head (an untied model reads one embedding row and
 * the head), at the weight format's bytes per parameter. */
static double gen_weight_bytes(const ssm_model *m, const char *weights)
{
    (void)weights;   /* the model knows its format: float32 block and bf16 block */
    double n32 = (double)m->num_params, n16 = (double)m->num_bf16;
    double emb = (double)m->cfg.padded_vocab * m->cfg.d_model;
    if (m->params.lm_head) n32 -= emb;
    if (m->wbf.lm_head) n16 -= emb;
    return 4.0 * n32 + 2.0 * n16;
}

static int argmax(const float *x, int n)
{
    int k = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[k]) k = i;
    return k;
}

/* gen: the prompt's prefill, then warmup and timed decode steps, each fed
 * the previous step's greedy token.  After each timed step the read kernel
 * reads the weights once, untimed in the step: the host's bandwidth moves
 * by a third within seconds here, so the bound is measured in the same
 * seconds as the steps it bounds. */
static ssm_status gen_loop(ssm_model *m, const int *prompt, const bench_case *bc, bench_result *r)
{
    ssm_gen_state s;
    ssm_status st = ssm_gen_state_build(&s, m);
    float *logits = st ? NULL : malloc(sizeof(float) * s.V);   /* (V) */
    if (!st && !logits) st = ssm_fail(SSM_ERR_NOMEM, "cannot allocate the logits");
    double t0 = ssm_now_s();
    if (!st) st = ssm_model_prefill(m, &s, prompt, bc->L, logits);
    if (!st)
        fprintf(stderr, "ssmlab bench %s: prefill of %d tokens %.3f s\n", bc->name, bc->L,
                ssm_now_s() - t0);
    for (int i = 0; !st && i < r->warmup; i++)
        st = ssm_model_step(m, &s, argmax(logits, s.V), logits);
    double read_s = 0.0, read_bytes = 0.0;
    uint32_t sink = 0;
    r->best = r->seconds = 0.0;
    for (int i = 0; !st && i < r->steps; i++) {
        double t1 = ssm_now_s();
        st = ssm_model_step(m, &s, argmax(logits, s.V), logits);
        double dt = ssm_now_s() - t1;
        if (i == 0 || dt < r->best) r->best = dt;
        r->seconds += dt;
        t1 = ssm_now_s();
        read_bytes += weights_read(m, &sink);
        read_s += ssm_now_s() - t1;
    }
    r->read_gbs = read_s > 0.0 ? read_bytes / read_s * 1e-9 : 0.0;
    fprintf(stderr, "ssmlab bench %s: the weights read between steps at %.1f GB/s (checksum %u)\n",
            bc->name, r->read_gbs, (unsigned)sink);
    r->tokens = 1;
    r->weights = bc->weights;
    r->weight_bytes = gen_weight_bytes(m, bc->weights);
    free(logits);
    ssm_gen_state_free(&s);
    return st;
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
    int train = bc->pass == PASS_TRAIN;
    ssm_batch b = {.B = bc->B, .L = bc->L, .tokens = tokens, .targets = train ? tokens + n : NULL};

    *r = (bench_result){.name = bc->name, .impl = "ssmlab", .B = bc->B, .L = bc->L,
                        .steps = o->steps >= 0 ? o->steps : bc->steps,
                        .warmup = o->warmup >= 0 ? o->warmup : bc->warmup};
    ssm_status st = case_build(bc, o->seed, &m);
    if (!st && train) {
        ssm_adamw_config ac;
        ssm_adamw_config_default(&ac);
        st = ssm_adamw_build(&opt, &m, &ac);
    }
    if (!st) {
        r->n_params = m.num_params;
        st = bc->pass == PASS_GEN ? gen_loop(&m, tokens, bc, r) : case_loop(&m, &opt, &b, bc, r);
    }
    ssm_adamw_free(&opt);
    ssm_model_free(&m);
    free(tokens);
    return st;
}

/* ------------------------------------------------------------------------ */
/* sgemm: the GEMM peak through the model's threading                      */

typedef struct {
    const char *name;
    int M, N, K;   /* out (M, N) = in (M, K) W (N, K)^T */
} sgemm_shape;

static const sgemm_shape sgemm_shapes[] = {
    {"square-2048", 2048, 2048, 2048},
    {"in_proj", 512, 3072, 768},
    {"x_proj", 512, 80, 1536},
    {"dt_proj", 512, 1536, 48},
    {"out_proj", 512, 768, 1536},
    {"lm_head", 512, 50280, 768},
};
#define NSHAPES ((int)(sizeof sgemm_shapes / sizeof sgemm_shapes[0]))

/* out (M, N) = in (M, K) W (N, K)^T through the model's own GEMM, with its
 * threading (OpenMP row blocks, one BLAS thread each, by the threads'
 * speeds as the forward's in_proj) */
static void sgemm_model(float *out, const float *in, const float *W, int M, int N, int K)
{
    static ssm_balance balance; /* zeroed: even, until measured */
    ssm_model_matmul_forward(&balance, out, N, in, K, W, NULL, M, N, K);
}

/* --warmup (default 1) untimed passes, then --steps timed ones or as many
 * as take 0.3 s (at least 3); the value is the fastest pass's GFLOP/s. */
static ssm_status sgemm_run(const bench_opts *o, cli_table *t, int threads)
{
    for (int i = 0; i < NSHAPES; i++) {
        const sgemm_shape *sh = &sgemm_shapes[i];
        size_t a = (size_t)sh->M * sh->K, w = (size_t)sh->N * sh->K, c = (size_t)sh->M * sh->N;
        float *mem = malloc((a + w + c) * sizeof(float));   /* in (M, K), W (N, K), out (M, N) */
        if (!mem) return ssm_fail(SSM_ERR_NOMEM, "cannot allocate the sgemm buffers");
        uint64_t s = o->seed;
        for (size_t j = 0; j < a + w; j++) mem[j] = rng_uniform(&s) - 0.5f;
        int warmup = o->warmup >= 0 ? o->warmup : 1, reps = 0;
        for (int j = 0; j < warmup; j++) sgemm_model(mem + a + w, mem, mem + a, sh->M, sh->N, sh->K);
        double t0 = ssm_now_s(), el, best = 0.0;
        do {
            double t1 = ssm_now_s();
            sgemm_model(mem + a + w, mem, mem + a, sh->M, sh->N, sh->K);
            double dt = ssm_now_s() - t1;
            if (reps++ == 0 || dt < best) best = dt;
            el = ssm_now_s() - t0;
        } while (o->steps >= 0 ? reps < o->steps : reps < 3 || el < 0.3);
        free(mem);
        bench_result r = {.name = "sgemm", .impl = "ssmlab", .B = 1, .L = sh->M, .steps = reps,
                          .warmup = warmup, .seconds = el, .best = best, .variant = sh->name,
                          .value = 2.0 * sh->M * sh->N * sh->K / best * 1e-9, .unit = "GFLOP/s"};
        emit_row(t, &r, threads);
    }
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* stream: memory bandwidth, the bound of a decode step                     */

enum { STREAM_N = 64 << 20 };   /* floats per array: 256 MiB, 8x the LLC */

/* One kernel over the arrays; returns the bytes it moved (STREAM's count:
 * reads plus writes, no write-allocate). */
static double stream_once(int kernel, float *a, float *b, float *c, float *sum)
{
    float acc = 0.0f;
    if (kernel == 0) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < STREAM_N; i++) c[i] = a[i];
        return 2.0 * sizeof(float) * STREAM_N;
    }
    if (kernel == 1) {
#pragma omp parallel for schedule(static)
        for (long i = 0; i < STREAM_N; i++) a[i] = b[i] + 3.0f * c[i];
        return 3.0 * sizeof(float) * STREAM_N;
    }
    uint32_t words = 0;
#pragma omp parallel reduction(+ : words)
    words += read_share((const uint32_t *)a, STREAM_N);
    acc = (float)words;
    *sum += acc;
    return 1.0 * sizeof(float) * STREAM_N;
}

static ssm_status stream_run(const bench_opts *o, cli_table *t, int threads)
{
    static const char *const kernels[] = {"copy", "triad", "read"};
    float *a = malloc(3 * (size_t)STREAM_N * sizeof(float)), sum = 0.0f;
    if (!a) return ssm_fail(SSM_ERR_NOMEM, "cannot allocate the stream arrays");
    float *b = a + STREAM_N, *c = b + STREAM_N;
#pragma omp parallel for schedule(static)   /* first touch by the thread that reads */
    for (long i = 0; i < STREAM_N; i++) a[i] = 1.0f, b[i] = 2.0f, c[i] = 0.5f;
    int warmup = o->warmup >= 0 ? o->warmup : 1, steps = o->steps >= 0 ? o->steps : 10;
    for (int k = 0; k < 3; k++) {
        double bytes = 0.0, best = 0.0;
        for (int j = 0; j < warmup; j++) stream_once(k, a, b, c, &sum);
        double t0 = ssm_now_s();
        for (int j = 0; j < steps; j++) {
            double t1 = ssm_now_s();
            bytes = stream_once(k, a, b, c, &sum);
            double dt = ssm_now_s() - t1;
            if (j == 0 || dt < best) best = dt;
        }
        bench_result r = {.name = "stream", .impl = "ssmlab", .B = 1, .L = 1, .steps = steps,
                          .warmup = warmup, .seconds = ssm_now_s() - t0, .best = best,
                          .variant = kernels[k], .value = bytes / best * 1e-9, .unit = "GB/s"};
        emit_row(t, &r, threads);
    }
    fprintf(stderr, "ssmlab bench stream: checksum %g\n", (double)sum);
    free(a);
    return SSM_OK;
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

/* --warmup untimed calls of each of the n forms fn of a kernel (default 1),
 * then --steps timed passes of every form, or by default as many as take
 * each form at least 0.25 s (and 3 passes), pass by pass in turn, so the
 * forms see the same seconds of a host whose speed moves; r[f].seconds sums
 * form f's passes.  The kernel micro-benchmarks' timing (scan, m2-ssd-130m). */
static void kernel_time_forms(void (*const fn[])(void *), int n, void *ctx, const bench_opts *o,
                              bench_result r[])
{
    int warmup = o->warmup >= 0 ? o->warmup : 1, reps = 0, short_of_time;
    for (int i = 0; i < warmup; i++)
        for (int f = 0; f < n; f++) fn[f](ctx);
    for (int f = 0; f < n; f++) r[f].seconds = r[f].best = 0.0;
    do {
        short_of_time = 0;
        for (int f = 0; f < n; f++) {
            double t1 = ssm_now_s();
            fn[f](ctx);
            double dt = ssm_now_s() - t1;
            if (reps == 0 || dt < r[f].best) r[f].best = dt;
            r[f].seconds += dt;
            short_of_time |= r[f].seconds < 0.25;
        }
        reps++;
    } while (o->steps >= 0 ? reps < o->steps : reps < 3 || short_of_time);
    for (int f = 0; f < n; f++) r[f].steps = reps, r[f].warmup = warmup;
}

/* kernel_time_forms for one form */
static void kernel_time(void (*fn)(void *), void *ctx, const bench_opts *o, bench_result *r)
{
    void (*const one[1])(void *) = {fn};
    kernel_time_forms(one, 1, ctx, o, r);
}

typedef struct { /* one scan kernel for kernel_time */
    scan_bench *sb;
    scan_kernel k;
    int naive;
} scan_call;

static void scan_call_once(void *ctx)
{
    scan_call *c = ctx;
    scan_once(c->sb, c->k, c->naive);
}

static void scan_time(scan_bench *sb, scan_kernel k, int naive, const bench_opts *o, bench_result *r)
{
    scan_call c = {sb, k, naive};
    kernel_time(scan_call_once, &c, o, r);
    r->B = sb->sh.B;
    r->L = sb->sh.L;
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
/* m2-ssd-130m: the SSD scan of one mamba2-130m layer, chunked against the
 * recurrent step of generation, on the same inputs and threads            */

enum { SSD_L = 512, SSD_H = 24, SSD_P = 64, SSD_G = 1, SSD_N = 128, SSD_Q = 256 };

typedef struct {
    ssm_ssd_args a;
    float *mem;
    float *y_chunk, *y_rec;   /* (L, E) each form's output */
    float *h;                 /* (H, P, N) the recurrent form's state */
} ssd_bench;

/* Inputs in the layer's layout (xBC rows [x (E); B (G N); C (G N)]) and
 * ranges: x, B, C uniform in +-1, dt in [0.001, 0.1], A_h in [-16, -1], D 1. */
static ssm_status ssd_build(ssd_bench *sb, uint64_t seed)
{
    size_t E = (size_t)SSD_H * SSD_P, Cw = E + 2 * SSD_G * SSD_N, L = SSD_L;
    ssm_ssd_args a = {.B = 1, .L = SSD_L, .H = SSD_H, .P = SSD_P, .G = SSD_G, .N = SSD_N,
                      .Q = ssm_ssd_infer_chunk(SSD_Q), .ld_x = (int)Cw, .ld_bc = (int)Cw};
    size_t work = ssm_ssd_work_size(&a, omp_get_max_threads(), 0);
    size_t PN = (size_t)SSD_P * SSD_N;
    sb->mem = malloc((L * Cw + L * SSD_H + 2 * SSD_H + 2 * L * E + 2 * SSD_H * PN + work) *
                     sizeof(float));
    if (!sb->mem) return ssm_fail(SSM_ERR_NOMEM, "cannot allocate the ssd bench buffers");
    float *p = sb->mem;
    float *xbc = p;      p += L * Cw;         /* (L, Cw) */
    float *dt = p;       p += L * SSD_H;      /* (L, H) */
    float *A = p;        p += SSD_H;          /* (H) */
    float *D = p;        p += SSD_H;          /* (H) */
    sb->y_chunk = p;     p += L * E;          /* (L, E) */
    sb->y_rec = p;       p += L * E;          /* (L, E) */
    sb->h = p;           p += SSD_H * PN;     /* (H, P, N) */
    float *h_last = p;   p += SSD_H * PN;     /* (H, P, N) the chunked form's last state */
    uint64_t s = seed;
    for (size_t i = 0; i < L * Cw; i++) xbc[i] = 2.0f * rng_uniform(&s) - 1.0f;
    for (size_t i = 0; i < L * SSD_H; i++) dt[i] = 0.001f + 0.099f * rng_uniform(&s);
    for (int h = 0; h < SSD_H; h++) A[h] = -(1.0f + 15.0f * rng_uniform(&s)), D[h] = 1.0f;
    a.x = xbc;
    a.Bm = xbc + E;
    a.Cm = xbc + E + SSD_G * SSD_N;
    a.dt = dt;
    a.A = A;
    a.Dskip = D;
    a.h_last = h_last;   /* a prefill keeps it; the chunk states are training's */
    a.work = p;
    a.work_n = work;
    sb->a = a;
    return SSM_OK;
}

static void ssd_chunked_once(void *ctx)
{
    ssd_bench *sb = ctx;
    ssm_ssd_forward(&sb->a, sb->y_chunk);   /* its work space is sized in ssd_build */
}

/* The recurrence token by token through ssm_ssd_step, generation's step;
 * each thread carries the heads ssm_split_rows gives it. */
static void ssd_recurrent_once(void *ctx)
{
    ssd_bench *sb = ctx;
    const ssm_ssd_args *a = &sb->a;
    int P = a->P, N = a->N, H = a->H, E = H * P;
    memset(sb->h, 0, sizeof(float) * H * P * N);
#pragma omp parallel
    {
        int lo, hi;
        ssm_split_rows(H, &lo, &hi);
        for (int t = 0; t < a->L; t++) {
            size_t r = (size_t)t;
            ssm_ssd_step(lo, hi, H, P, a->G, N, a->x + r * a->ld_x, a->Bm + r * a->ld_bc,
                         a->Cm + r * a->ld_bc, a->dt + r * H, a->A, a->Dskip, sb->h, sb->y_rec + r * E);
        }
    }
}

/* Rows m2-ssd-130m chunked and recurrent (tokens per second over L); the
 * two outputs' largest difference relative to the largest output goes to
 * stderr. */
static ssm_status ssd_run(const bench_opts *o, cli_table *t, int threads)
{
    ssd_bench sb;
    ssm_status st = ssd_build(&sb, (uint64_t)o->seed);
    if (st) return st;
    static const char *const forms[] = {"chunked", "recurrent"};
    void (*const fns[])(void *) = {ssd_chunked_once, ssd_recurrent_once};
    bench_result r[2];
    for (int i = 0; i < 2; i++)
        r[i] = (bench_result){.name = "m2-ssd-130m", .impl = "ssmlab", .B = 1, .L = SSD_L, .variant = forms[i]};
    kernel_time_forms(fns, 2, &sb, o, r);
    for (int i = 0; i < 2; i++) emit_row(t, &r[i], threads);
    double diff = 0.0, top = 0.0;
    for (size_t i = 0; i < (size_t)SSD_L * SSD_H * SSD_P; i++) {
        diff = fmax(diff, fabs((double)sb.y_chunk[i] - sb.y_rec[i]));
        top = fmax(top, fabs((double)sb.y_rec[i]));
    }
    fprintf(stderr, "ssmlab bench m2-ssd-130m: chunked vs recurrent, max |diff| / max |y| = %.3g\n",
            top > 0 ? diff / top : diff);
    free(sb.mem);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Command line                                                             */

static const char *const case_names[] = {"train-small", "train-130m", "infer-130m", "prefill-130m",
                                          "gen-130m", "gen-130m-bf16", "m2-train-small", "m2-prefill-130m",
                                          "m2-gen-130m", "m2-gen-130m-bf16", "m2-ssd-130m", "sgemm",
                                          "stream", "scan", "all", NULL};

static const cli_opt bench_options[] = {
    {"case", 0, CLI_OPT_CHOICE, .metavar = "NAME",
     .help = "train-small, train-130m, infer-130m, prefill-130m, gen-130m, gen-130m-bf16, "
             "m2-train-small, m2-prefill-130m, m2-gen-130m, m2-gen-130m-bf16, m2-ssd-130m, sgemm, "
             "stream, scan or all (default)",
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
    "Training, inference, prefill and decode throughput on fixed Mamba-1 and Mamba-2 shapes, the SSD scan chunked and recurrent, sgemm GFLOP/s and memory bandwidth, in the columns of bench/torch_baseline.py.", 0,
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
    if (all || !strcmp(o.which, "m2-ssd-130m")) {
        ssm_status st = ssd_run(&o, &t, threads);
        if (st) return cli_report(st);
    }
    if (all || !strcmp(o.which, "sgemm")) {
        ssm_status st = sgemm_run(&o, &t, threads);
        if (st) return cli_report(st);
    }
    if (all || !strcmp(o.which, "stream")) {
        ssm_status st = stream_run(&o, &t, threads);
        if (st) return cli_report(st);
    }
    if (all || !strcmp(o.which, "scan")) {
        ssm_status st = scan_run(&o, &t, threads);
        if (st) return cli_report(st);
    }
    return EX_OK;
}
