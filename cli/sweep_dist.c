/* sweep_dist.c — rank 0's dispatch and the ranks' forked runs of a
 * distributed sweep (see sweep_dist.h).  Protocol, tag SWEEP_TAG_ASK: a
 * rank sends {run it finished or -1, its exit code, stop} and the result
 * bytes; rank 0 answers, tag SWEEP_TAG_RUN, with the next run or -1.
 * While a run goes on its rank sends a heartbeat (tag SWEEP_TAG_BEAT)
 * every second; a rank silent for the timeout is taken for dead. */
#include "cli/sweep_dist.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "engine/dist.h"

enum { SWEEP_TAG_ASK = 7101, SWEEP_TAG_RUN = 7102, SWEEP_TAG_BEAT = 7103 };

typedef struct {
    int run;    /* the run just finished, -1: none */
    int code;   /* its exit code */
    int stop;   /* the rank was signalled: it takes no more runs */
} ask_head;

/* One rank's run in progress: the child, its run, the shared result. */
typedef struct {
    pid_t pid;    /* 0: idle */
    int run;
    void *result; /* (result_size) shared with the child */
} slot;

static volatile sig_atomic_t dist_signal;

static void on_signal(int sig)
{
    dist_signal = sig;
}

/* Start run i in a child; the child dies with SIGTERM when its rank does
 * (its training child likewise), and must not speak MPI: _exit, no
 * atexit handlers. */
static int slot_start(slot *s, int i, size_t size, sweep_dist_run_fn run, void *ctx)
{
    memset(s->result, 0, size);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        ssm_dist_child_env();
        int code = run(ctx, i, s->result);
        fflush(NULL);
        _exit(code);
    }
    s->pid = pid;
    s->run = i;
    return 0;
}

/* Whether the slot's child has ended (block: wait for it); *code gets its
 * exit code, 128 + the signal that killed it. */
static int slot_ended(slot *s, int block, int *code)
{
    int status;
    if (!s->pid) return 0;
    if (dist_signal) kill(s->pid, SIGTERM);   /* again if need be: the child saves and stops */
    pid_t r;
    while ((r = waitpid(s->pid, &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR)
        if (dist_signal) kill(s->pid, SIGTERM);
    if (r <= 0) return 0;
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    s->pid = 0;
    return 1;
}

static void nap(void)
{
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Seconds of silence after which rank 0 takes a rank running a run for
 * dead: SSMLAB_SWEEP_TIMEOUT, 60 by default. */
static double lost_after(void)
{
    const char *v = getenv("SSMLAB_SWEEP_TIMEOUT");
    double t = v ? atof(v) : 0.0;
    return t > 0.0 ? t : 60.0;
}

/* Wait for the slot's run to end, telling rank 0 every second that this
 * rank is alive. */
static void worker_wait(slot *s, int *code)
{
    double beat = now_s();
    while (!slot_ended(s, 0, code)) {
        if (now_s() - beat >= 1.0) {
            beat = now_s();
            if (ssm_dist_send(0, SWEEP_TAG_BEAT, &s->run, sizeof s->run)) {}   /* rank 0 gone: the run goes on */
        }
        nap();
    }
}

/* The other ranks: ask, run, report, until rank 0 says -1. */
static int worker(size_t size, sweep_dist_run_fn run, void *ctx, slot *s)
{
    char *msg = malloc(sizeof(ask_head) + size);
    if (!msg) return EX_OSERR;
    ask_head h = {-1, 0, 0};
    for (;;) {
        h.stop = dist_signal != 0;
        memcpy(msg, &h, sizeof h);
        memcpy(msg + sizeof h, s->result, size);
        int next = -1;
        if (ssm_dist_send(0, SWEEP_TAG_ASK, msg, sizeof h + size) || ssm_dist_recv(0, SWEEP_TAG_RUN, &next, sizeof next))
            break;
        if (next < 0) break;
        h = (ask_head){next, EX_OSERR, 0};
        if (slot_start(s, next, size, run, ctx)) continue;
        worker_wait(s, &h.code);
    }
    free(msg);
    return dist_signal ? 128 + dist_signal : EX_OK;
}

typedef struct {
    int n, next, finished, workers;   /* runs, next to hand out, ended, ranks still asking */
    size_t size;
    sweep_dist_done_fn done;
    void *ctx;
    char *msg;                        /* (sizeof ask_head + size) */
    int *run_of;                      /* (ranks) the run a rank has, -1: none */
    char *dead;                       /* (ranks) taken for dead: ignored */
    double *heard;                    /* (ranks) when it last spoke */
    double timeout;                   /* seconds of silence that make a rank dead */
} dispatch;

/* Heartbeats: each one says its rank is alive. */
static void dispatch_beats(dispatch *d)
{
    int src, run;
    size_t len;
    while (ssm_dist_poll(SWEEP_TAG_BEAT, &src, &len))
        if (ssm_dist_recv(src, SWEEP_TAG_BEAT, &run, len == sizeof run ? sizeof run : 0) == SSM_OK)
            d->heard[src] = now_s();
}

/* A rank silent for the timeout while it had a run is dead: its run
 * failed (SWEEP_DIST_LOST), and it gets no more. */
static void dispatch_reap(dispatch *d)
{
    double t = now_s();
    for (int r = 1; r < ssm_dist_size(); r++) {
        if (d->dead[r] || d->run_of[r] < 0 || t - d->heard[r] < d->timeout) continue;
        d->dead[r] = 1;
        d->workers--;
        ssm_dist_lost();   /* MPI_Finalize would wait for it */
        d->done(d->ctx, d->run_of[r], SWEEP_DIST_LOST, d->msg + sizeof(ask_head), r);
        d->finished++;
        d->run_of[r] = -1;
    }
}

/* Rank 0: answer one waiting rank, if any; 1 when one was answered. */
static int dispatch_answer(dispatch *d)
{
    int src;
    size_t len;
    if (!ssm_dist_poll(SWEEP_TAG_ASK, &src, &len)) return 0;
    if (len != sizeof(ask_head) + d->size || ssm_dist_recv(src, SWEEP_TAG_ASK, d->msg, len)) {
        d->workers--;   /* not one of ours: it gets nothing more */
        return 1;
    }
    ask_head h;
    memcpy(&h, d->msg, sizeof h);
    d->heard[src] = now_s();
    if (d->dead[src]) {   /* reported lost already: its late result is not counted */
        int none = -1;
        if (ssm_dist_send(src, SWEEP_TAG_RUN, &none, sizeof none)) {}
        return 1;
    }
    if (h.run >= 0) {
        d->done(d->ctx, h.run, h.code, d->msg + sizeof h, src);
        d->finished++;
    }
    int next = !h.stop && !dist_signal && d->next < d->n ? d->next++ : -1;
    d->run_of[src] = next;
    if (next < 0) d->workers--;
    if (ssm_dist_send(src, SWEEP_TAG_RUN, &next, sizeof next)) d->workers--;
    return 1;
}

static int dispatcher(dispatch *d, sweep_dist_run_fn run, slot *s)
{
    while (d->workers > 0 || s->pid || (!dist_signal && d->next < d->n)) {
        dispatch_beats(d);
        dispatch_reap(d);
        int busy = dispatch_answer(d), code;
        if (slot_ended(s, 0, &code)) {
            d->done(d->ctx, s->run, code, s->result, 0);
            d->finished++;
            busy = 1;
        }
        if (!s->pid && !dist_signal && d->next < d->n) {
            int i = d->next++;
            if (slot_start(s, i, d->size, run, d->ctx)) {
                d->done(d->ctx, i, EX_OSERR, s->result, 0);
                d->finished++;
            }
            busy = 1;
        }
        if (!busy) nap();
    }
    return dist_signal ? 128 + dist_signal : EX_OK;
}

int sweep_dist_runs(int n, size_t result_size, sweep_dist_run_fn run, sweep_dist_done_fn done, void *ctx)
{
    slot s = {0, -1, mmap(NULL, result_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)};
    if (s.result == MAP_FAILED) return EX_OSERR;
    struct sigaction on = {.sa_handler = on_signal}, old_int, old_term;
    sigaction(SIGINT, &on, &old_int);
    sigaction(SIGTERM, &on, &old_term);
    int code;
    if (ssm_dist_rank()) {
        code = worker(result_size, run, ctx, &s);
    } else {
        int P = ssm_dist_size();
        dispatch d = {n, 0, 0, P - 1, result_size, done, ctx, calloc(1, sizeof(ask_head) + result_size),
                      malloc(sizeof(int) * P), calloc(P, 1), malloc(sizeof(double) * P), lost_after()};
        for (int r = 0; d.run_of && d.heard && r < P; r++) d.run_of[r] = -1, d.heard[r] = now_s();
        code = d.msg && d.run_of && d.dead && d.heard ? dispatcher(&d, run, &s) : EX_OSERR;
        free(d.msg);
        free(d.run_of);
        free(d.dead);
        free(d.heard);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    munmap(s.result, result_size);
    return code;
}
