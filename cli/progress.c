/* progress.c — the progress line of train and eval on a terminal's
 * standard error (see progress.h). */
#include "cli/progress.h"

#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "engine/clock.h"

#define PROGRESS_EVERY_S 0.1
#define PROGRESS_MAX 200

void cli_progress_begin(cli_progress *p, long first)
{
    *p = (cli_progress){.on = isatty(STDERR_FILENO), .t0 = ssm_now_s(), .first = first, .drawn_at = -1.0};
}

/* "1:02:03" or "2:05" */
static void clock_text(char *buf, size_t n, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* The terminal's width less one (so the cursor never wraps), at most
 * PROGRESS_MAX - 1. */
static int line_room(void)
{
    struct winsize ws;
    int cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 ? ws.ws_col - 1 : 79;
    return cols < PROGRESS_MAX - 1 ? cols : PROGRESS_MAX - 1;
}

void cli_progress_draw(cli_progress *p, const char *label, long done, long total, const char *extra)
{
    double now = ssm_now_s();
    if (!p->on || (done != total && now - p->drawn_at < PROGRESS_EVERY_S)) return;
    p->drawn_at = now;
    char line[PROGRESS_MAX], elapsed[24], eta[24] = "";
    double spent = now - p->t0;
    clock_text(elapsed, sizeof elapsed, spent);
    if (done > p->first && total >= done) {
        char left[24];
        clock_text(left, sizeof left, spent / (double)(done - p->first) * (double)(total - done));
        snprintf(eta, sizeof eta, "  ETA %s", left);
    }
    int n = snprintf(line, sizeof line, "%s %ld/%ld%s%s  elapsed %s%s", label, done, total, extra ? "  " : "",
                     extra ? extra : "", elapsed, eta);
    int room = line_room();
    if (n > room) n = room;
    if (n < 0) n = 0;
    fprintf(stderr, "\r%.*s%*s", n, line, p->width > n ? p->width - n : 0, "");
    if (p->width > n) fprintf(stderr, "\r%.*s", n, line);   /* the cursor back at the end of the text */
    p->width = n;
    fflush(stderr);
}

void cli_progress_clear(cli_progress *p)
{
    if (!p->on || !p->width) return;
    fprintf(stderr, "\r%*s\r", p->width, "");
    fflush(stderr);
    p->width = 0;
}

void cli_progress_batch(void *ctx, long done, long total, double loss)
{
    cli_batch_progress *b = ctx;
    char extra[64];
    double spent = ssm_now_s() - b->p.t0;
    snprintf(extra, sizeof extra, "loss %.4f  %.0f tok/s", loss, spent > 0 ? done * b->batch_tokens / spent : 0.0);
    cli_progress_draw(&b->p, "batch", done, total, extra);
}

ssm_status cli_progress_validate(task_data *d, ssm_model *m, int max_batches, task_metrics *out)
{
    cli_batch_progress bp = {.batch_tokens = (long)d->B * d->L};
    cli_progress_begin(&bp.p, 0);
    ssm_status st = task_validate_progress(d, m, max_batches, NULL, cli_progress_batch, &bp, out);
    cli_progress_clear(&bp.p);
    return st;
}
