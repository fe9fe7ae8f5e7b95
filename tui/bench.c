/* bench.c — the tui-latency measurement (`ssmlab tui --bench-latency`):
 * the real UI loop runs on a virtual terminal while the engine trains; a
 * thread types keys into the terminal at irregular 10-40 ms intervals, and
 * each key's latency is the time from its write to the end of the screen
 * update that handled it.  Prints one CSV row: p50, p99 and max in ms. */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "tui/app.h"
#include "tui/vterm.h"

#define BENCH_LIMIT_S 300.0

typedef struct {
    tui_vterm vt;
    int n;
    _Atomic double *t_inject;   /* (n) write times */
    double *lat;                /* (n) latencies, seconds */
    unsigned long measured;
    atomic_int go, stop;
    pthread_t thread;
    long step0, step1;
    double t0, t1;
} bench_state;

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void *injector_main(void *arg)
{
    bench_state *b = arg;
    unsigned rng = 12345;
    while (!atomic_load(&b->go) && !atomic_load(&b->stop)) sleep_s(0.005);
    for (int k = 0; k < b->n && !atomic_load(&b->stop); k++) {
        rng = rng * 1103515245u + 12345u;
        sleep_s(0.010 + 0.030 * ((rng >> 16) & 1023) / 1023.0);
        atomic_store(&b->t_inject[k], ssm_now_s());
        const char *key = (k / 8) % 2 ? "h" : "l";
        tui_vterm_write(&b->vt, key, 1);
    }
    return NULL;
}

static void on_draw(tui_app *app)
{
    bench_state *b = app->bench;
    double now = ssm_now_s();
    for (; b->measured < app->keys_read && b->measured < (unsigned long)b->n; b->measured++)
        b->lat[b->measured] = now - atomic_load(&b->t_inject[b->measured]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const bench_state *b, int threads)
{
    int n = (int)b->measured;
    double *s = malloc(sizeof(double) * (n ? n : 1)), mean = 0;
    for (int i = 0; i < n; i++) mean += (s[i] = b->lat[i] * 1e3) / n;
    qsort(s, n, sizeof *s, cmp_double);
    double p50 = n ? s[n / 2] : NAN, p99 = n ? s[(int)ceil(0.99 * n) - 1] : NAN, mx = n ? s[n - 1] : NAN;
    long steps = b->step1 - b->step0;
    printf("case,keys,p50_ms,p99_ms,max_ms,mean_ms,train_steps,step_ms,threads\n");
    printf("tui-latency,%d,%.3f,%.3f,%.3f,%.3f,%ld,%.1f,%d\n", n, p50, p99, mx, mean, steps,
           steps ? (b->t1 - b->t0) * 1e3 / steps : NAN, threads);
    fflush(stdout);
    free(s);
}

/* Pump until training is under way, then until every key was measured. */
static int bench_loop(tui_app *app, bench_state *b)
{
    double t0 = ssm_now_s();
    while (app->snap->step < 2 && ssm_now_s() - t0 < BENCH_LIMIT_S) tui_app_pump(app, 20);
    if (app->snap->step < 2 || !app->snap->running) {
        fprintf(stderr, "ssmlab: bench-latency: training did not start: %s\n", app->snap->msg);
        return EX_SOFTWARE;
    }
    b->step0 = app->snap->step;
    b->t0 = ssm_now_s();
    atomic_store(&b->go, 1);
    while (b->measured < (unsigned long)b->n && ssm_now_s() - t0 < BENCH_LIMIT_S) tui_app_pump(app, -1);
    b->step1 = app->snap->step;
    b->t1 = ssm_now_s();
    return b->measured == (unsigned long)b->n ? 0 : EX_SOFTWARE;
}

int tui_bench_run(const tui_options *o)
{
    bench_state *b = calloc(1, sizeof *b);
    tui_app *app = calloc(1, sizeof *app);
    tui_options opt = *o;
    opt.paused = 0;
    b->n = o->bench_keys > 0 ? o->bench_keys : 200;
    b->t_inject = calloc(b->n, sizeof *b->t_inject);
    b->lat = calloc(b->n, sizeof *b->lat);
    int rc = tui_app_init(app, &opt), started = 0;
    if (!rc && tui_vterm_open(&b->vt, o->width, o->height)) rc = EX_OSERR;
    if (!rc) {
        app->virtual_term = 1;
        app->bench = b;
        app->on_draw = on_draw;
        rc = tui_app_screen_open(app, tui_vterm_term(o->term), b->vt.out, b->vt.in);
    }
    if (!rc) {
        tui_app_resize(app, o->height, o->width);
        started = !pthread_create(&b->thread, NULL, injector_main, b);
        rc = started ? bench_loop(app, b) : EX_OSERR;
    }
    atomic_store(&b->stop, 1);
    if (started) pthread_join(b->thread, NULL);
    int threads = app->snap ? app->snap->threads : 0;
    tui_app_close(app, NULL);
    if (b->vt.out) tui_vterm_close(&b->vt);
    if (!rc || b->measured) report(b, threads);
    free(b->t_inject);
    free(b->lat);
    free(b);
    free(app);
    return rc;
}
