/* app.c — the TUI's application loop: setup (session, engine thread,
 * self-pipe, curses screen), the layout of the panels (one zoomed to the
 * whole screen; a middle row of depth, loss and spectrum, or of the states
 * and the logit lens in the states view; the history's sparklines; an
 * image panel for image classifiers; the message line and the key hint
 * bar at the bottom), one
 * poll() round over the terminal,
 * the self-pipe and captured stderr, drawing, the session log, and the
 * real-terminal run with its orderly exit (save on Ctrl-C/SIGTERM, and a
 * word on stderr about what was saved). */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "tui/app.h"
#include "tui/colors.h"
#include "tui/plot.h"

#define FRAME_S (1.0 / 30)   /* snapshot-driven redraws at most this often */

void tui_options_default(tui_options *o)
{
    memset(o, 0, sizeof *o);
    run_config_default(&o->rc);
    snprintf(o->name, sizeof o->name, "defaults");
    o->width = 120;
    o->height = 40;
    o->bench_keys = 200;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                    */

static int pipe_open(int fds[2])
{
    if (pipe(fds)) return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
}

static int keys_setup(tui_app *app)
{
    char path[RUN_PATH_MAX];
    tui_keymap_default(&app->km);
    if (app->opt.keys_file) snprintf(path, sizeof path, "%s", app->opt.keys_file);
    else tui_keys_default_path(path, sizeof path);
    if (!path[0] || (!app->opt.keys_file && access(path, F_OK))) return 0;
    ssm_status st = tui_keymap_load(&app->km, path);
    if (st) fprintf(stderr, "ssmlab: %s\n", ssm_last_error());
    return st ? ssm_status_exit(st) : 0;
}

static int engine_setup(tui_app *app)
{
    ssm_session s;
    int weights = app->opt.weights ? ssm_weights_parse(app->opt.weights) : -1;   /* -1: bf16 (f32 for Mamba-2) */
    ssm_status st = app->opt.model_dir ? ssm_session_open_checkpoint_as(&s, app->opt.model_dir, &app->opt.rc,
                                                                        app->opt.overrides, app->opt.n_overrides, weights)
                                       : ssm_session_open(&s, &app->opt.rc);
    if (!st) {   /* a loaded checkpoint is inspected: it trains only when asked */
        ssm_engine_options eo = {app->wake_w, !app->opt.paused && !app->opt.model_dir, app->opt.text, app->opt.image,
                                 weights};
        st = ssm_engine_start(&app->eng, &s, &app->opt.rc, &eo);
        if (st) ssm_session_free(&s);
    }
    if (st) fprintf(stderr, "ssmlab: %s\n", ssm_last_error());
    return st ? ssm_status_exit(st) : 0;
}

/* The app's panels from the table of classes; -1 when out of memory (the
 * panels built so far are freed by tui_app_close). */
static int panels_build(tui_app *app)
{
    for (int i = 0; i < TUI_NPANELS; i++)
        if (!(app->panels[i] = tui_panel_new(tui_panel_classes[i]))) return -1;
    return 0;
}

int tui_app_init(tui_app *app, const tui_options *o)
{
    int rc;
    memset(app, 0, sizeof *app);
    app->opt = *o;
    app->err_r = app->saved_stderr = app->wake_r = app->wake_w = -1;
    app->view.channel = -1;
    app->view.hints = app->hints;
    app->focus = TUI_PANEL_HEATMAP;
    if ((rc = keys_setup(app))) return rc;
    int fds[2];
    if (pipe_open(fds)) {
        fprintf(stderr, "ssmlab: cannot create a pipe: %s\n", strerror(errno));
        return EX_OSERR;
    }
    app->wake_r = fds[0];
    app->wake_w = fds[1];
    app->snap = calloc(1, sizeof *app->snap);
    if (!app->snap || panels_build(app)) {
        fprintf(stderr, "ssmlab: out of memory\n");
        return EX_OSERR;
    }
    if ((rc = engine_setup(app))) return rc;
    return 0;
}

int tui_app_screen_open(tui_app *app, const char *term, FILE *out, FILE *in)
{
    app->screen = newterm(term, out, in);
    if (!app->screen) {
        fprintf(stderr, "ssmlab: cannot open the terminal '%s'\n", term ? term : "(TERM)");
        return EX_UNAVAILABLE;
    }
    set_term(app->screen);
    app->tout = out;
    app->tin = in;
    app->in_fd = fileno(in);
    cbreak();
    noecho();
    nonl();
    curs_set(0);
    set_escdelay(25);
    app->inwin = newwin(1, 1, 0, 0);   /* never drawn: reading keys never refreshes */
    keypad(app->inwin, TRUE);
    nodelay(app->inwin, TRUE);
    mousemask(BUTTON1_PRESSED | BUTTON1_CLICKED, NULL);
    mouseinterval(0);
    tui_colors_setup(app->opt.color);
    app->view.utf8 = tui_utf8();
    app->view.plot_mode = tui_plot_resolve(app->opt.plot, app->view.utf8);
    app->layout_dirty = app->dirty = 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Layout, update, draw                                                     */

static void place(tui_panel *p, int y, int x, int h, int w)
{
    if (p->win) delwin(p->win);
    p->win = NULL;
    p->y = y; p->x = x; p->h = h; p->w = w;
    if (h > 0 && w > 0) p->win = newwin(h, w, y, x);
}

/* The bottom row of panels: ranking, the history's sparklines and
 * attention; for an image classifier the image before the attention. */
static void layout_bottom(tui_app *app, int y, int h, int W)
{
    tui_panel **p = app->panels;
    int wr = W * 20 / 100, wh = W * 25 / 100 < 60 ? W * 25 / 100 : 60, wi = 0;
    if (app->snap->images) {
        wr = W * 18 / 100;
        wh = W * 22 / 100 < 56 ? W * 22 / 100 : 56;
        wi = W * 24 / 100;
    }
    place(p[TUI_PANEL_RANK], y, 0, h, wr - 1);
    place(p[TUI_PANEL_HISTORY], y, wr, h, wh - 1);
    place(p[TUI_PANEL_IMAGE], y, wr + wh, wi ? h : 0, wi - 1);
    place(p[TUI_PANEL_ATTN], y, wr + wh + wi, h, W - wr - wh - wi);
}

/* Zoomed: the focused panel takes everything between the status line and the message line. */
static void layout_zoom(tui_app *app, int H, int W)
{
    for (int i = 0; i < TUI_NPANELS; i++)
        if (tui_panel_focusable(i)) place(app->panels[i], 1, 0, i == app->focus ? H - 3 : 0, W);
}

int tui_app_panel_shown(const tui_app *app, int i)
{
    if (i == TUI_PANEL_IMAGE) return app->snap->images;
    if (i == TUI_PANEL_DEPTH || i == TUI_PANEL_LOSS || i == TUI_PANEL_SPECTRUM) return !app->states_view;
    if (i == TUI_PANEL_STATES || i == TUI_PANEL_LENS) return app->states_view;
    return 1;
}

/* The middle row: depth, loss and spectrum, or the states and the lens. */
static void layout_middle(tui_app *app, int y, int h, int W)
{
    tui_panel **p = app->panels;
    int w1 = W * 32 / 100, w2 = W * 30 / 100, ws = W * 62 / 100, on = app->states_view;
    place(p[TUI_PANEL_DEPTH], y, 0, on ? 0 : h, w1 - 1);
    place(p[TUI_PANEL_LOSS], y, w1, on ? 0 : h, w2 - 1);
    place(p[TUI_PANEL_SPECTRUM], y, w1 + w2, on ? 0 : h, W - w1 - w2);
    place(p[TUI_PANEL_STATES], y, 0, on ? h : 0, ws - 1);
    place(p[TUI_PANEL_LENS], y, ws, on ? h : 0, W - ws);
}

static void layout(tui_app *app)
{
    int H = LINES, W = COLS, layers = app->snap->ready ? app->snap->n_layer + 1 : 5;
    app->too_small = H < TUI_MIN_H || W < TUI_MIN_W;
    app->layout_dirty = 0;
    app->clear_gaps = 1;
    if (app->too_small) return;
    if (!tui_app_panel_shown(app, app->focus)) app->focus = TUI_PANEL_HEATMAP;
    tui_panel **p = app->panels;
    for (int i = 0; i < TUI_NPANELS; i++) p[i]->focused = i == app->focus;
    place(p[TUI_PANEL_STATUS], 0, 0, 1, W);
    place(p[TUI_PANEL_MESSAGE], H - 2, 0, 1, W);
    place(p[TUI_PANEL_HINTS], H - 1, 0, 1, W);
    if (app->zoom) {
        layout_zoom(app, H, W);
        return;
    }
    int heat_rows = layers < (H - 3) / 3 ? layers : (H - 3) / 3;
    int heat_h = (heat_rows < 2 ? 2 : heat_rows) + 3 + app->snap->images, rest = H - 3 - heat_h;   /* images: 2 label rows */
    int mid_h = rest / 2, bot_h = rest - mid_h, y = 1 + heat_h;
    place(p[TUI_PANEL_HEATMAP], 1, 0, heat_h, W);
    layout_middle(app, y, mid_h, W);
    layout_bottom(app, y + mid_h, bot_h, W);
}

static void selection_clamp(tui_app *app)
{
    const ssm_snapshot *s = app->snap;
    tui_view *v = &app->view;
    if (v->layer > s->n_layer) v->layer = s->n_layer;
    if (v->layer < 0) v->layer = 0;
    if (v->token >= s->T) v->token = s->T - 1;
    if (v->token < 0) v->token = 0;
    if (v->channel >= s->attn_units) v->channel = -1;
}

/* The key hint bar: what the keys do in the state the screen is in. */
static void hints_update(tui_app *app)
{
    int W = COLS > 0 ? COLS : TUI_MIN_W;
    if (app->prompt.kind == TUI_PROMPT_CHOICE) {
        char keys[16] = "";
        for (const char *c = app->prompt.choices; *c && strlen(keys) + 3 < sizeof keys; c++)
            snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%c", c == app->prompt.choices ? "" : "/", *c);
        snprintf(app->hints, sizeof app->hints, "%s answer  Esc cancel", keys);
    }
    else if (app->prompt.kind)
        snprintf(app->hints, sizeof app->hints, "Enter accept  Esc cancel  C-u erase%s",
                 app->prompt.paths ? "  Tab complete" : "");
    else if (app->help_open) snprintf(app->hints, sizeof app->hints, "Esc close");
    else tui_keymap_hints(&app->km, W - 1, app->hints, sizeof app->hints);
}

void tui_app_panels_update(tui_app *app)
{
    if (!app->snap->ready || app->too_small) return;
    selection_clamp(app);
    hints_update(app);
    app->view.snap = app->snap;
    for (int i = 0; i < TUI_NPANELS; i++)
        if (app->panels[i]->win) app->panels[i]->cls->update(app->panels[i], &app->view);
}

void tui_app_message(tui_app *app, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(app->message, sizeof app->message, fmt, ap);
    va_end(ap);
    app->message_error = error;
    tui_message_panel_set(app->panels[TUI_PANEL_MESSAGE], app->message, error);
    app->dirty = 1;
}

void tui_app_log(tui_app *app, const char *fmt, ...)
{
    if (!app->logf) return;
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
    fprintf(app->logf, "%s ", when);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(app->logf, fmt, ap);
    va_end(ap);
    fputc('\n', app->logf);
    fflush(app->logf);
}

/* The session log's first lines: what runs, and how. */
static void log_start(tui_app *app)
{
    const ssm_snapshot *s = app->snap;
    tui_app_log(app, "session: %s%s%s, run %s, %s, d_model %d, n_layer %d, d_state %d, %zu parameters, "
                "step %ld, seed %ld, %d threads", s->loaded[0] ? "inspecting " : "", s->loaded[0] ? s->loaded : "",
                s->loaded[0] ? "" : s->name, s->out, s->images ? "image classifier" : "language model", s->d_model,
                s->n_layer, s->d_state, s->num_params, s->step, s->seed, s->threads);
}

void tui_app_refresh_snapshot(tui_app *app)
{
    int old_layers = app->snap->n_layer, old_ready = app->snap->ready, old_images = app->snap->images;
    unsigned long old_seq = app->snap->seq;
    ssm_engine_snapshot(app->eng, app->snap);
    if (app->snap->seq == old_seq) return;
    if (!old_ready && app->snap->ready) log_start(app);
    if (app->snap->msg_seq != app->msg_seen) {
        app->msg_seen = app->snap->msg_seq;
        tui_app_message(app, app->snap->msg_error, "%s", app->snap->msg);
        tui_app_log(app, "%s%s", app->snap->msg_error ? "error: " : "", app->snap->msg);
    }
    if (app->prompt.kind) tui_app_prompt_relabel(app);
    if (!old_ready || old_images != app->snap->images) app->view.token = app->snap->T - 1;   /* the read-out token */
    if (!old_ready || old_layers != app->snap->n_layer || old_images != app->snap->images) app->layout_dirty = 1;
    if (app->layout_dirty) layout(app);
    tui_app_panels_update(app);
    app->dirty = 1;
}

static void draw_too_small(void)
{
    char msg[2][64];
    snprintf(msg[0], sizeof msg[0], "terminal too small: %dx%d", COLS, LINES);
    snprintf(msg[1], sizeof msg[1], "ssmlab tui needs %dx%d (q quits)", TUI_MIN_W, TUI_MIN_H);
    werase(stdscr);
    for (int i = 0; i < 2; i++) {
        int len = (int)strlen(msg[i]), x = COLS > len ? (COLS - len) / 2 : 0;
        tui_draw_text(stdscr, LINES / 2 - 1 + i, x, COLS - x, A_BOLD, msg[i]);
    }
    wnoutrefresh(stdscr);
}

void tui_app_draw(tui_app *app)
{
    if (app->layout_dirty) {
        layout(app);
        tui_app_panels_update(app);
    }
    if (app->too_small) {
        draw_too_small();
    } else {
        if (app->clear_gaps) {   /* the columns between panels after a new layout */
            werase(stdscr);
            wnoutrefresh(stdscr);
            app->clear_gaps = 0;
        }
        hints_update(app);
        app->panels[TUI_PANEL_HINTS]->cls->update(app->panels[TUI_PANEL_HINTS], &app->view);
        for (int i = 0; i < TUI_NPANELS; i++) {
            tui_panel *p = app->panels[i];
            if (!p->win) continue;
            if (app->snap->ready || i == TUI_PANEL_MESSAGE || i == TUI_PANEL_HINTS) p->cls->draw(p);
            else werase(p->win);
            wnoutrefresh(p->win);
        }
        tui_panel *m = app->panels[TUI_PANEL_MESSAGE];
        if (app->prompt.kind && m->win) {
            tui_prompt_draw(&app->prompt, m->win);
            wnoutrefresh(m->win);
        }
        if (app->help_open) tui_help_draw(app);
    }
    doupdate();
    app->dirty = 0;
    app->last_draw = ssm_now_s();
    if (app->on_draw) app->on_draw(app);
}

void tui_app_resize(tui_app *app, int rows, int cols)
{
    resizeterm(rows, cols);
    clearok(curscr, TRUE);
    app->layout_dirty = app->dirty = 1;
    layout(app);
    tui_app_panels_update(app);
}

/* ------------------------------------------------------------------------ */
/* One round of the loop                                                    */

static void read_keys(tui_app *app)
{
    wint_t wc;
    int r;
    while (app->inwin && (r = wget_wch(app->inwin, &wc)) != ERR) {
        if (r == KEY_CODE_YES && wc == KEY_RESIZE) {   /* curses has resized already */
            app->layout_dirty = app->dirty = 1;
            continue;
        }
        tui_app_key(app, (int)wc, r != KEY_CODE_YES);
        app->keys_read++;
    }
}

static void drain(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

/* Signals of the real terminal: resize, or Ctrl-C/SIGTERM/SIGHUP. */
static void signals_handle(tui_app *app)
{
    int resize, sig = tui_term_signal_take(&resize);
    if (resize) {
        int rows = LINES, cols = COLS;
        tui_term_size(app->in_fd, &rows, &cols);
        tui_app_resize(app, rows, cols);
    }
    if (sig && !app->interrupted) {
        app->interrupted = sig;
        app->quit = 1;
        if (app->snap->dirty) tui_app_save_and_stop(app);
        tui_app_message(app, 0, "interrupted: saving and quitting");
    }
}

static int pump_timeout(const tui_app *app, int timeout_ms)
{
    if (!app->dirty) return timeout_ms;
    int wait = (int)((app->last_draw + FRAME_S - ssm_now_s()) * 1000) + 1;
    if (wait < 0) wait = 0;
    return timeout_ms < 0 || wait < timeout_ms ? wait : timeout_ms;
}

void tui_app_pump(tui_app *app, int timeout_ms)
{
    struct pollfd fds[3] = {{app->in_fd, POLLIN, 0}, {app->wake_r, POLLIN, 0}, {app->err_r, POLLIN, 0}};
    int n = app->err_r >= 0 ? 3 : 2;
    unsigned long keys_before = app->keys_read;
    int r = poll(fds, n, pump_timeout(app, timeout_ms));
    if (r < 0 && errno != EINTR) return;
    if (r > 0 && (fds[1].revents & POLLIN)) drain(app->wake_r);
    if (!app->virtual_term) signals_handle(app);
    tui_app_refresh_snapshot(app);
    if (n == 3 && (fds[2].revents & POLLIN)) tui_term_stderr_pump(app);
    if (r > 0 && (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) && !app->virtual_term) {
        app->interrupted = SIGHUP;
        app->quit = 1;
    }
    read_keys(app);
    int keyed = app->keys_read != keys_before;
    if (app->dirty && (keyed || ssm_now_s() - app->last_draw >= FRAME_S)) tui_app_draw(app);
}

void tui_app_close(tui_app *app, void (*report)(const tui_app *))
{
    if (app->eng) ssm_engine_stop(app->eng);
    app->eng = NULL;
    if (report) report(app);
    if (app->logf && app->snap)
        tui_app_log(app, "session ends at step %ld%s", app->snap->step, app->snap->dirty ? " with unsaved training" : "");
    if (app->logf) fclose(app->logf);
    app->logf = NULL;
    for (int i = 0; i < TUI_NPANELS; i++) tui_panel_free(app->panels[i]);
    if (app->inwin) delwin(app->inwin);
    app->inwin = NULL;
    if (app->screen) {
        if (!isendwin()) endwin();
        delscreen(app->screen);
    }
    app->screen = NULL;
    free(app->snap);
    if (app->wake_r >= 0) close(app->wake_r);
    if (app->wake_w >= 0) close(app->wake_w);
}

/* ------------------------------------------------------------------------ */
/* The real terminal                                                        */

/* Let the engine finish what was sent (a save before quitting). */
static void wait_engine(tui_app *app, double limit_s)
{
    double t0 = ssm_now_s();
    unsigned long sent = ssm_engine_sent(app->eng);
    while (app->snap->cmds_done < sent && ssm_now_s() - t0 < limit_s) {
        tui_app_pump(app, 100);
        if (app->dirty) tui_app_draw(app);
    }
}

static int run_terminal(tui_app *app)
{
    const char *term = getenv("TERM");
    if (tui_term_signals_install(app->wake_w)) return EX_OSERR;
    app->logf = tui_term_log_open(app->opt.log_path);
    tui_term_stderr_capture(app);
    int rc = tui_app_screen_open(app, term, stdout, stdin);
    if (rc) return rc;
    int rows = LINES, cols = COLS;
    tui_term_size(app->in_fd, &rows, &cols);
    if (rows != LINES || cols != COLS) resizeterm(rows, cols);
    while (!app->quit) tui_app_pump(app, -1);
    wait_engine(app, 120);
    return 0;
}

static void exit_report(const tui_app *app)
{
    const ssm_snapshot *s = app->snap;
    int interrupted = app->interrupted;
    if (!interrupted && app->quit_saved && !s->dirty)
        fprintf(stderr, "ssmlab: saved step %ld in %s (open it: ssmlab tui --model %s)\n", s->step, s->out, s->out);
    else if (!interrupted && app->quit_saved)
        fprintf(stderr, "ssmlab: saving step %ld failed: %s\n", s->step, s->msg);
    else if (interrupted && s->step > 0 && !s->dirty)
        fprintf(stderr, "ssmlab: interrupted at step %ld; the run is saved in %s (resume: ssmlab tui --model %s)\n",
                s->step, s->out, s->out);
    else if (interrupted)
        fprintf(stderr, "ssmlab: interrupted at step %ld%s\n", s->step, s->dirty ? "; saving failed (see the log)" : "");
    else if (s->dirty)
        fprintf(stderr, "ssmlab: quit with %ld unsaved steps\n", s->step);
}

int tui_run(const tui_options *o)
{
    setlocale(LC_ALL, "");
    if (o->bench_latency) return tui_bench_run(o);
    if (o->script) return tui_script_main(o);
    int rc = tui_term_check();
    if (rc) return rc;
    tui_app *app = calloc(1, sizeof *app);
    if (!app) return EX_OSERR;
    rc = tui_app_init(app, o);
    if (!rc) rc = run_terminal(app);
    if (app->screen) endwin();
    tui_term_stderr_restore(app);
    tui_term_signals_restore();
    int interrupted = app->interrupted;
    tui_app_close(app, rc ? NULL : exit_report);
    free(app);
    return rc ? rc : interrupted ? 130 : EX_OK;
}
