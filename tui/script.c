/* script.c — the display-free scripted mode (`ssmlab tui --script FILE`):
 * the TUI runs on a virtual terminal and a script drives it line by line
 * with keys, typed text, waits on the engine, resizes and screen dumps that
 * tests assert on.  Commands:
 *   key NAME...          keys by name (as in keys files: j, space, Enter, C-l)
 *   type TEXT            the characters of TEXT
 *   click ROW COL        a mouse click
 *   wait-idle [S]        until the engine has handled every command and measured
 *   wait-step N [S]      until training reached step N and was measured there
 *   wait-text TEXT       until the screen shows TEXT (60 s at most)
 *   sleep MS
 *   resize COLS ROWS
 *   dump-screen [FILE]   the screen between "--- screen" and "--- end" lines
 *   expect TEXT          fail (exit 1) unless the screen shows TEXT
 *   expect-not TEXT      fail unless the screen does not show TEXT
 * Blank lines and lines starting with '#' are ignored. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>
#include <wchar.h>

#include "tui/app.h"
#include "tui/vterm.h"

#define WAIT_DEFAULT_S 60.0

typedef struct {
    tui_app *app;
    tui_vterm vt;
    const char *path;
    int line;
    int cols, rows;
} script_ctx;

static int script_error(const script_ctx *c, int code, const char *msg, const char *arg)
{
    fprintf(stderr, "ssmlab: %s:%d: %s%s%s\n", c->path, c->line, msg, arg ? " " : "", arg ? arg : "");
    return code;
}

static void settle(tui_app *app)
{
    tui_app_pump(app, 0);
    if (app->dirty) tui_app_draw(app);
}

/* Pump until cond holds or limit seconds pass; returns 1 if it held. */
static int wait_for(script_ctx *c, int (*cond)(script_ctx *, long), long arg, double limit)
{
    double t0 = ssm_now_s();
    while (!cond(c, arg)) {
        if (ssm_now_s() - t0 > limit) return 0;
        tui_app_pump(c->app, 20);
    }
    settle(c->app);
    return 1;
}

static int is_idle(script_ctx *c, long unused)
{
    (void)unused;
    const ssm_snapshot *s = c->app->snap;
    unsigned long sent = ssm_engine_sent(c->app->eng);
    return s->ready && s->cmds_done >= sent && s->measured_cmds >= sent && !s->busy;
}

static int at_step(script_ctx *c, long n)
{
    const ssm_snapshot *s = c->app->snap;
    return s->step >= n && s->measured_step >= n;
}

static const char *wait_text;
static int shows_text(script_ctx *c, long unused)
{
    (void)c;
    (void)unused;
    return tui_vterm_contains(wait_text);
}

static int cmd_key(script_ctx *c, char *args)
{
    char *save = NULL;
    for (char *tok = strtok_r(args, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        int k = tui_key_parse(tok);
        if (k < 0) return script_error(c, EX_DATAERR, "unknown key", tok);
        tui_app_key(c->app, k, k < KEY_MIN);
        settle(c->app);
    }
    return 0;
}

static int cmd_type(script_ctx *c, const char *text)
{
    mbstate_t ps;
    memset(&ps, 0, sizeof ps);
    while (*text) {
        wchar_t wc;
        size_t n = mbrtowc(&wc, text, strlen(text), &ps);
        if (n == (size_t)-1 || n == (size_t)-2 || n == 0) return script_error(c, EX_DATAERR, "bad UTF-8 in", text);
        tui_app_key(c->app, (int)wc, 1);
        text += n;
    }
    settle(c->app);
    return 0;
}

static int cmd_click(script_ctx *c, const char *args)
{
    int y, x;
    if (sscanf(args, "%d %d", &y, &x) != 2) return script_error(c, EX_DATAERR, "click needs ROW COL", NULL);
    MEVENT ev = {.y = y, .x = x, .bstate = BUTTON1_CLICKED};
    ungetmouse(&ev);
    tui_app_key(c->app, KEY_MOUSE, 0);
    settle(c->app);
    return 0;
}

static int cmd_dump(script_ctx *c, const char *file)
{
    FILE *f = *file ? fopen(file, "a") : stdout;
    if (!f) return script_error(c, EX_CANTCREAT, "cannot open", file);
    settle(c->app);
    fprintf(f, "--- screen %dx%d (line %d) ---\n", COLS, LINES, c->line);
    tui_vterm_dump(f);
    fprintf(f, "--- end ---\n");
    if (f != stdout) fclose(f);
    else fflush(f);
    return 0;
}

/* A number >= 0 that fills s up to blanks (s empty: *v untouched).  0, or
 * -1 for anything else ("2s", "lots", "-1", "nan"). */
static int number_arg(const char *s, double *v)
{
    if (!*s) return 0;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == s || *end || errno || !isfinite(x) || x < 0) return -1;
    *v = x;
    return 0;
}

static int cmd_wait(script_ctx *c, const char *cmd, const char *args)
{
    double limit = WAIT_DEFAULT_S;
    if (!strcmp(cmd, "wait-idle")) {
        if (number_arg(args, &limit)) return script_error(c, EX_DATAERR, "wait-idle takes seconds, not", args);
        return wait_for(c, is_idle, 0, limit) ? 0 : script_error(c, 1, "timed out waiting for the engine", NULL);
    }
    if (!strcmp(cmd, "wait-step")) {
        char *rest;
        errno = 0;
        long n = strtol(args, &rest, 10);
        if (rest == args || errno || n < 0 || (*rest && *rest != ' ' && *rest != '\t') || number_arg(rest, &limit))
            return script_error(c, EX_DATAERR, "wait-step needs N [SECONDS], not", args);
        return wait_for(c, at_step, n, limit) ? 0 : script_error(c, 1, "timed out waiting for step", args);
    }
    wait_text = args;
    return wait_for(c, shows_text, 0, limit) ? 0 : script_error(c, 1, "timed out waiting for", args);
}

static int cmd_resize(script_ctx *c, const char *args)
{
    int cols, rows;
    if (sscanf(args, "%d %d", &cols, &rows) != 2 || cols < 1 || rows < 1 || cols > 1000 || rows > 500)
        return script_error(c, EX_DATAERR, "resize needs COLS ROWS", NULL);
    tui_vterm_resize(&c->vt, cols, rows);
    tui_app_resize(c->app, rows, cols);
    settle(c->app);
    return 0;
}

static int run_line(script_ctx *c, char *line)
{
    line[strcspn(line, "\r\n")] = 0;
    while (*line == ' ' || *line == '\t') line++;
    if (!*line || *line == '#') return 0;
    char *args = line + strcspn(line, " \t");
    if (*args) *args++ = 0;
    while (*args == ' ' || *args == '\t') args++;
    if (!strcmp(line, "key")) return cmd_key(c, args);
    if (!strcmp(line, "type")) return cmd_type(c, args);
    if (!strcmp(line, "click")) return cmd_click(c, args);
    if (!strncmp(line, "wait-", 5) && (!strcmp(line, "wait-idle") || !strcmp(line, "wait-step") || !strcmp(line, "wait-text")))
        return cmd_wait(c, line, args);
    if (!strcmp(line, "sleep")) {
        double t0 = ssm_now_s(), ms = -1;
        if (!*args || number_arg(args, &ms)) return script_error(c, EX_DATAERR, "sleep takes milliseconds, not", args);
        while ((ssm_now_s() - t0) * 1000 < ms) tui_app_pump(c->app, 10);
        return 0;
    }
    if (!strcmp(line, "resize")) return cmd_resize(c, args);
    if (!strcmp(line, "dump-screen")) return cmd_dump(c, args);
    if (!strcmp(line, "expect") || !strcmp(line, "expect-not")) {
        settle(c->app);
        int want = !strcmp(line, "expect");
        if (tui_vterm_contains(args) != want)
            return script_error(c, 1, want ? "the screen does not show" : "the screen shows", args);
        return 0;
    }
    return script_error(c, EX_DATAERR, "unknown command", line);
}

static int script_loop(script_ctx *c, FILE *f)
{
    char line[4096];
    wait_text = "";
    if (!wait_for(c, is_idle, 0, WAIT_DEFAULT_S)) return script_error(c, 1, "the engine did not start", NULL);
    int rc = 0;
    while (!rc && !c->app->quit && fgets(line, sizeof line, f)) {
        c->line++;
        rc = run_line(c, line);
    }
    return rc;
}

int tui_script_main(const tui_options *o)
{
    script_ctx c = {.path = o->script, .cols = o->width, .rows = o->height};
    FILE *f = fopen(o->script, "r");
    if (!f) {
        fprintf(stderr, "ssmlab: %s: cannot open the script\n", o->script);
        return EX_NOINPUT;
    }
    tui_options opt = *o;
    opt.paused = 1;
    c.app = calloc(1, sizeof *c.app);
    int rc = c.app ? tui_app_init(c.app, &opt) : EX_OSERR;
    if (!rc && tui_vterm_open(&c.vt, o->width, o->height)) rc = EX_OSERR;
    if (!rc) {
        c.app->virtual_term = 1;
        if (o->log_path) c.app->logf = tui_term_log_open(o->log_path);
        rc = tui_app_screen_open(c.app, tui_vterm_term(o->term), c.vt.out, c.vt.in);
    }
    if (!rc) {
        tui_app_resize(c.app, o->height, o->width);
        rc = script_loop(&c, f);
    }
    fclose(f);
    if (c.app) tui_app_close(c.app, NULL);
    free(c.app);
    if (c.vt.out) tui_vterm_close(&c.vt);
    return rc;
}
