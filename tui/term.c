/* term.c — the real terminal around the TUI: refusing TERM=dumb and
 * non-terminals, signal handlers that only set flags and write to the
 * self-pipe (SIGINT, SIGTERM, SIGHUP, SIGWINCH), the window size, the
 * session log file, and stderr redirected into a pipe (shown on the message
 * line, appended to the log) while curses owns the screen. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "tui/app.h"

static volatile sig_atomic_t sig_taken, sig_resize;
static int sig_wake_fd = -1;
static const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
#define NHANDLED ((int)(sizeof handled / sizeof handled[0]))
static struct sigaction saved[NHANDLED];

int tui_term_check(void)
{
    const char *term = getenv("TERM");
    if (!term || !*term || !strcmp(term, "dumb")) {
        fprintf(stderr, "ssmlab: TERM=%s cannot show the TUI; for a batch run use: ssmlab train CONFIG "
                        "[key=value ...]\n", term && *term ? term : "(unset)");
        return EX_UNAVAILABLE;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "ssmlab: the TUI needs a terminal on standard input and output; for a batch "
                        "run use: ssmlab train CONFIG, or ssmlab tui --script FILE\n");
        return EX_UNAVAILABLE;
    }
    return 0;
}

static void on_signal(int sig)
{
    int saved_errno = errno;
    if (sig == SIGWINCH) sig_resize = 1;
    else sig_taken = sig;
    if (sig_wake_fd >= 0) {
        ssize_t r = write(sig_wake_fd, "!", 1);
        (void)r;
    }
    errno = saved_errno;
}

int tui_term_signals_install(int wake_fd)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sig_wake_fd = wake_fd;
    for (int i = 0; i < NHANDLED; i++)
        if (sigaction(handled[i], &sa, &saved[i])) return -1;
    return 0;
}

void tui_term_signals_restore(void)
{
    for (int i = 0; i < NHANDLED; i++) sigaction(handled[i], &saved[i], NULL);
    sig_wake_fd = -1;
}

int tui_term_signal_take(int *resize)
{
    *resize = sig_resize;
    sig_resize = 0;
    int s = sig_taken;
    sig_taken = 0;
    return s;
}

void tui_term_size(int fd, int *rows, int *cols)
{
    struct winsize ws;
    if (!ioctl(fd, TIOCGWINSZ, &ws) && ws.ws_row && ws.ws_col) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

/* ------------------------------------------------------------------------ */
/* stderr                                                                   */

static void mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
}

FILE *tui_term_log_open(const char *requested)
{
    char path[RUN_PATH_MAX];
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (requested) snprintf(path, sizeof path, "%s", requested);
    else if (xdg && *xdg) snprintf(path, sizeof path, "%s/ssmlab/tui.log", xdg);
    else if (home && *home) snprintf(path, sizeof path, "%s/.local/state/ssmlab/tui.log", home);
    else return NULL;
    mkdirs(path);
    return fopen(path, "a");
}

int tui_term_stderr_capture(tui_app *app)
{
    int p[2];
    app->err_r = app->saved_stderr = -1;
    if (pipe(p)) return -1;
    fflush(stderr);
    app->saved_stderr = dup(STDERR_FILENO);
    if (app->saved_stderr < 0 || dup2(p[1], STDERR_FILENO) < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    app->err_r = p[0];
    return 0;
}

/* One complete stderr line: to the log file and the message line. */
static void stderr_line(tui_app *app, const char *line)
{
    tui_app_log(app, "stderr: %s", line);
    if (app->saved_stderr >= 0) tui_app_message(app, 1, "stderr: %s", line);
}

void tui_term_stderr_pump(tui_app *app)
{
    if (app->err_r < 0) return;
    for (;;) {
        ssize_t n = read(app->err_r, app->errbuf + app->errlen, sizeof app->errbuf - 1 - app->errlen);
        if (n <= 0) break;
        app->errlen += (size_t)n;
        app->errbuf[app->errlen] = 0;
        char *nl;
        while ((nl = strchr(app->errbuf, '\n'))) {
            *nl = 0;
            stderr_line(app, app->errbuf);
            app->errlen -= (size_t)(nl + 1 - app->errbuf);
            memmove(app->errbuf, nl + 1, app->errlen + 1);
        }
        if (app->errlen == sizeof app->errbuf - 1) {   /* an overlong line */
            stderr_line(app, app->errbuf);
            app->errlen = 0;
        }
    }
}

void tui_term_stderr_restore(tui_app *app)
{
    if (app->saved_stderr < 0) return;
    fflush(stderr);
    dup2(app->saved_stderr, STDERR_FILENO);
    close(app->saved_stderr);
    app->saved_stderr = -1;
    tui_term_stderr_pump(app);   /* what is left goes to the log only */
    if (app->errlen) stderr_line(app, app->errbuf);
    close(app->err_r);
    app->err_r = -1;
}
