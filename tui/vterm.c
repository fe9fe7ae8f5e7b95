/* vterm.c — the pseudo-terminal behind --script and --bench-latency:
 * posix_openpt with a window size, a drain thread for curses' output, key
 * injection, and screen dumps read back from curscr. */
#include "tui/vterm.h"

#include <curses.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <term.h>
#include <unistd.h>
#include <wchar.h>

static void *drain_main(void *arg)
{
    tui_vterm *v = arg;
    char buf[4096];
    for (;;) {
        struct pollfd fds[2] = {{v->master, POLLIN, 0}, {v->stop[0], POLLIN, 0}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
        if (fds[1].revents) break;
        if (fds[0].revents & POLLIN) {
            ssize_t n = read(v->master, buf, sizeof buf);
            if (n > 0) atomic_fetch_add(&v->out_bytes, n);
            else if (n < 0 && errno != EAGAIN && errno != EINTR) break;
        } else if (fds[0].revents) {
            break;
        }
    }
    return NULL;
}

static int pty_open(tui_vterm *v)
{
    v->master = posix_openpt(O_RDWR | O_NOCTTY);
    if (v->master < 0 || grantpt(v->master) || unlockpt(v->master)) return -1;
    const char *name = ptsname(v->master);
    v->slave = name ? open(name, O_RDWR | O_NOCTTY) : -1;
    if (v->slave < 0) return -1;
    fcntl(v->master, F_SETFD, FD_CLOEXEC);
    fcntl(v->slave, F_SETFD, FD_CLOEXEC);
    v->in = fdopen(v->slave, "r");
    v->out = fdopen(dup(v->slave), "w");
    return v->in && v->out ? 0 : -1;
}

int tui_vterm_open(tui_vterm *v, int cols, int rows)
{
    memset(v, 0, sizeof *v);
    v->master = v->slave = v->stop[0] = v->stop[1] = -1;
    if (pty_open(v) || pipe(v->stop)) {
        fprintf(stderr, "ssmlab: cannot open a pseudo-terminal: %s\n", strerror(errno));
        return -1;
    }
    tui_vterm_resize(v, cols, rows);
    sigset_t block, old;
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&v->drain, NULL, drain_main, v);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        fprintf(stderr, "ssmlab: cannot start the terminal thread\n");
        return -1;
    }
    return 0;
}

void tui_vterm_resize(tui_vterm *v, int cols, int rows)
{
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    ioctl(v->master, TIOCSWINSZ, &ws);
}

int tui_vterm_write(tui_vterm *v, const char *bytes, size_t n)
{
    return write(v->master, bytes, n) == (ssize_t)n ? 0 : -1;
}

void tui_vterm_close(tui_vterm *v)
{
    if (v->stop[1] >= 0) {
        ssize_t r = write(v->stop[1], "x", 1);
        (void)r;
        pthread_join(v->drain, NULL);
    }
    if (v->in) fclose(v->in);
    if (v->out) fclose(v->out);
    if (v->master >= 0) close(v->master);
    for (int i = 0; i < 2; i++)
        if (v->stop[i] >= 0) close(v->stop[i]);
    memset(v, 0, sizeof *v);
}

const char *tui_vterm_term(const char *want)
{
    static const char *const fallbacks[] = {"xterm-256color", "xterm", "vt100"};
    int err;
    if (want && setupterm(want, -1, &err) == OK) return want;
    for (int i = 0; i < 3; i++)
        if (setupterm(fallbacks[i], -1, &err) == OK) return fallbacks[i];
    return want;
}

/* The Unicode line-drawing character of a VT100 alternate-charset one. */
static wchar_t acs_char(wchar_t c)
{
    static const char from[] = "qxlkmjtuvwn";
    static const wchar_t to[] = L"\u2500\u2502\u250c\u2510\u2514\u2518\u251c\u2524\u2534\u252c\u253c";
    const char *p = c < 128 ? strchr(from, (int)c) : NULL;
    return p && *p ? to[p - from] : c;
}

/* Row y of curscr as UTF-8 into buf, trailing blanks removed. */
static void screen_row(int y, char *buf, size_t cap)
{
    size_t len = 0;
    int cols = getmaxx(curscr);
    mbstate_t ps;
    memset(&ps, 0, sizeof ps);
    for (int x = 0; x < cols && len + MB_LEN_MAX + 1 < cap; x++) {
        cchar_t cc;
        wchar_t wch[CCHARW_MAX + 1];
        attr_t a;
        short pair;
        if (mvwin_wch(curscr, y, x, &cc) == ERR) break;
        if (getcchar(&cc, wch, &a, &pair, NULL) == ERR || !wch[0]) continue;   /* wide-char tail */
        if (a & A_ALTCHARSET) wch[0] = acs_char(wch[0]);
        size_t n = wcrtomb(buf + len, wch[0], &ps);
        if (n == (size_t)-1) buf[len++] = '?';
        else len += n;
    }
    while (len > 0 && buf[len - 1] == ' ') len--;
    buf[len] = 0;
}

/* The rows of curscr in turn: each written to f (unless NULL); returns 1 at
 * the first that contains text (unless NULL), else 0. */
static int screen_scan(FILE *f, const char *text)
{
    char line[4096];
    int rows = getmaxy(curscr);
    for (int y = 0; y < rows; y++) {
        screen_row(y, line, sizeof line);
        if (f) fprintf(f, "%s\n", line);
        if (text && strstr(line, text)) return 1;
    }
    return 0;
}

void tui_vterm_dump(FILE *f) { screen_scan(f, NULL); }

int tui_vterm_contains(const char *text) { return screen_scan(NULL, text); }
