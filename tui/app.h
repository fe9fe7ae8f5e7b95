/* app.h — what the TUI's files share: the application state (one per
 * process, used by the UI thread only), the panel classes (operations
 * that update from a snapshot and draw into a window, and the one
 * constructor), the prompt, and the functions each tui file offers the
 * others. */
#ifndef SSM_TUI_APP_H
#define SSM_TUI_APP_H

#include <curses.h>
#include <stdatomic.h>
#include <stdio.h>

#include "engine/clock.h"
#include "lab/engine_thread.h"
#include "tui/keys.h"
#include "tui/tui.h"

#define TUI_MIN_W 80
#define TUI_MIN_H 24

typedef struct tui_app tui_app;

/* What panels read in update: the snapshot and the UI's selection. */
typedef struct {
    const ssm_snapshot *snap;
    int layer;      /* selected residual-stream row x_0..x_n_layer (x_l is the output of layer l-1) */
    int token;      /* selected token 0..T-1 */
    int channel;    /* hidden-attention channel (Mamba-2: head), -1 = the mean */
    int plot_mode;  /* TUI_PLOT_BRAILLE, _BLOCKS, _ASCII */
    int depth_flow; /* the depth panel shows the flow of the selected layer beside the depth curve */
    int utf8;
    const char *hints;   /* the key hint bar's text (NULL: none) */
} tui_view;

/* The layer (0-based, as ssmlab inspect counts them) whose output is
 * residual row x_row: row - 1, and layer 0 for the embedding row x_0. */
int tui_view_mixer(int row);

typedef struct tui_panel tui_panel;

/* A panel kind: its operations, one const instance per kind (tui/panel_*.c). */
typedef struct {
    const char *name;
    size_t state_size;   /* the panel's own state, zeroed at construction */
    /* derive the state from a view (no curses calls) */
    void (*update)(tui_panel *p, const tui_view *v);
    /* render the state into p->win */
    void (*draw)(tui_panel *p);
    /* a click at window coordinates (y, x): returns 1 and sets the selection (NULL: not clickable) */
    int (*click)(tui_panel *p, int y, int x, int *layer, int *token);
} tui_panel_class;

struct tui_panel {
    const tui_panel_class *cls;
    WINDOW *win;
    int y, x, h, w;
    int focused;   /* Tab moved the focus here (its title is marked) */
    void *st;      /* the panel's own state, cls->state_size bytes */
};

enum {
    TUI_PANEL_STATUS = 0, TUI_PANEL_HEATMAP, TUI_PANEL_DEPTH, TUI_PANEL_LOSS, TUI_PANEL_SPECTRUM,
    TUI_PANEL_STATES, TUI_PANEL_LENS, TUI_PANEL_RANK, TUI_PANEL_HISTORY, TUI_PANEL_IMAGE, TUI_PANEL_ATTN, TUI_PANEL_MESSAGE, TUI_PANEL_HINTS,
    TUI_NPANELS
};

extern const tui_panel_class tui_panel_status_class, tui_panel_heatmap_class, tui_panel_depth_class,
    tui_panel_loss_class, tui_panel_spectrum_class, tui_panel_rank_class, tui_panel_image_class,
    tui_panel_attn_class, tui_panel_message_class, tui_panel_hints_class, tui_panel_history_class,
    tui_panel_states_class, tui_panel_lens_class;

/* Panels Tab moves the focus between (and z zooms): every one but the
 * status, message and hint lines. */
int tui_panel_focusable(int i);

/* Whether panel i is on the screen of app (as laid out unzoomed): the
 * image only for image classifiers; the middle row holds depth, loss and
 * spectrum, or with the states view the states and lens panels. */
int tui_app_panel_shown(const tui_app *app, int i);

/* The class of each panel of the app, indexed by TUI_PANEL_* (tui/panel.c). */
extern const tui_panel_class *const tui_panel_classes[TUI_NPANELS];

/* A panel of class c with zeroed state and no window; NULL when out of memory. */
tui_panel *tui_panel_new(const tui_panel_class *c);
void tui_panel_free(tui_panel *p);   /* NULL is fine */

/* Shared drawing helpers (tui/draw.c). */
void tui_draw_title(WINDOW *w, const char *title);
void tui_draw_text(WINDOW *w, int y, int x, int maxw, attr_t a, const char *s);   /* UTF-8, clipped */
void tui_draw_fmt(WINDOW *w, int y, int x, int maxw, attr_t a, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Draw s at (y, x) only when all of it fits in maxw columns and the
 * window: returns the column after it, or -1 (nothing drawn). */
int tui_draw_fit(WINDOW *w, int y, int x, int maxw, attr_t a, const char *s);
int tui_draw_fmt_fit(WINDOW *w, int y, int x, int maxw, attr_t a, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* v right-aligned in width columns, with as many digits (3 at most) as fit. */
void tui_draw_number(WINDOW *w, int y, int x, int width, attr_t a, double v);
/* The first of the n texts (NULL ones skipped) that fits whole, drawn as
 * tui_draw_fit draws it: labels shorten, they are never cut. */
int tui_draw_first(WINDOW *w, int y, int x, int maxw, attr_t a, int n, const char *const *texts);
/* s word-wrapped into at most maxh lines of maxw columns from (y, x) (a
 * word longer than a line is cut); returns the lines drawn.  For notes
 * that say why a view is empty. */
int tui_draw_wrap(WINDOW *w, int y, int x, int maxw, int maxh, attr_t a, const char *s);
/* The panel's title: the first of n titles (longest first) that fits,
 * marked when the panel has the focus. */
void tui_panel_title(tui_panel *p, int n, const char *const *titles);

/* A token label as shown, into out: a space as U+2423 (or '_'), a newline
 * as U+21B5 ('$'), a tab as U+2192 ('>'), other control bytes, invalid
 * UTF-8 and characters an ASCII locale cannot show as a dot; an empty
 * label (byte 0) as a dot.  Returns its columns. */
int tui_token_visible(const char *raw, int utf8, char *out, size_t n);

#define TUI_TOKEN_COLS 8   /* columns a token takes at most in the token views */

/* The inspected tokens as the panels show them. */
typedef struct {
    int T, grid;                           /* grid: image tokens per row (0: text) */
    char vis[SSM_SNAP_MAX_T][48];          /* visible labels (images: y<row>x<col>) */
    unsigned char w[SSM_SNAP_MAX_T];       /* columns 1..TUI_TOKEN_COLS */
} tui_tokens;

void tui_tokens_set(tui_tokens *k, const ssm_snapshot *s, int utf8);

/* The inspected test image of an image classifier, as panels name it. */
typedef struct {
    int index, label, pred, patch;   /* patch: pixels per patch side */
    char label_name[24], pred_name[24];   /* class names ("" = none) */
} tui_image_info;

void tui_image_info_set(tui_image_info *i, const ssm_snapshot *s);
/* Token t's name in legends: 'text' or y<row>x<col>.  One of four static buffers. */
const char *tui_token_name(const tui_tokens *k, int t);
/* The tokens shown in avail columns with sel in view: returns how many,
 * from *first; centred on sel, or ending at sel when end_at_sel. */
int tui_tokens_fit(const tui_tokens *k, int sel, int avail, int end_at_sel, int *first);
/* Text tokens first .. first+n-1 labelled from (y, x) as wide as their
 * columns, sel marked, every other one dimmed where some are wider than one. */
void tui_tokens_draw(WINDOW *w, int y, int x, const tui_tokens *k, int first, int n, int sel);
/* The token at column x of n tokens drawn from first, or -1. */
int tui_tokens_at(const tui_tokens *k, int first, int n, int x);
/* The first of n rows (or columns) shown out of total that keeps sel in
 * view, centred where it can be. */
int tui_scroll_first(int sel, int n, int total);

/* The message panel's content, set by the app. */
void tui_message_panel_set(tui_panel *p, const char *text, int error);

/* Prompts (tui/prompt.c): a line editor with path completion, or a choice. */
typedef enum { TUI_PROMPT_NONE = 0, TUI_PROMPT_LINE, TUI_PROMPT_CHOICE } tui_prompt_kind;
typedef enum {
    TUI_ASK_TEXT = 1, TUI_ASK_TOKENS, TUI_ASK_IMAGE, TUI_ASK_LOAD, TUI_ASK_SAVE, TUI_ASK_SEARCH, TUI_ASK_LAYER,
    TUI_ASK_CHANNEL, TUI_ASK_TOKEN,   /* lines */
    TUI_ASK_NEW_MODEL, TUI_ASK_LOAD_DISCARD, TUI_ASK_OVERWRITE, TUI_ASK_QUIT   /* choices, labelled from the snapshot */
} tui_ask;
typedef enum { TUI_PROMPT_MORE = 0, TUI_PROMPT_ACCEPT, TUI_PROMPT_CANCEL } tui_prompt_result;

typedef struct {
    tui_prompt_kind kind;
    tui_ask ask;
    char label[512];
    char buf[RUN_PATH_MAX];
    int paths;            /* Tab completes paths */
    char choices[8];      /* TUI_PROMPT_CHOICE: accepted keys, e.g. "yn" */
    int choice;           /* the accepted key */
    ssm_cmd cmd;          /* the command a confirmation sends */
    char note[160];       /* completion candidates */
} tui_prompt;

void tui_prompt_line(tui_prompt *p, tui_ask ask, const char *label, const char *init, int paths);
void tui_prompt_choice(tui_prompt *p, tui_ask ask, const char *label, const char *choices);
tui_prompt_result tui_prompt_key(tui_prompt *p, int key, int is_wide);
void tui_prompt_draw(const tui_prompt *p, WINDOW *w);

/* Path completion of buf in place; note gets the candidates when ambiguous. */
void tui_complete_path(char *buf, size_t cap, char *note, size_t ncap);

struct tui_app {
    tui_options opt;
    SCREEN *screen;
    FILE *tin, *tout;
    int in_fd;
    WINDOW *inwin;                 /* keys are read here: a window never drawn */
    int virtual_term;              /* script or bench: no signals, no stderr capture */
    ssm_engine *eng;
    ssm_snapshot *snap;            /* the UI's copy */
    unsigned long msg_seen;
    tui_view view;
    tui_keymap km;
    tui_panel *panels[TUI_NPANELS];
    int wake_r, wake_w;            /* self-pipe: engine snapshots and signals */
    int err_r, saved_stderr;       /* stderr captured into a pipe while curses is up */
    FILE *logf;
    char errbuf[512];
    size_t errlen;
    int too_small, help_open, dirty, layout_dirty, clear_gaps, quit, interrupted;
    int focus, zoom;               /* the focused panel (TUI_PANEL_*); zoomed to the whole screen */
    int states_view;               /* the middle row shows the states and lens panels */
    tui_prompt prompt;
    int prompt_paused;             /* a prompt paused training: it runs again when the prompt closes */
    int quit_saved;                /* quitting saves the run */
    char search[128];              /* the last token search */
    char hints[256];               /* the key hint bar */
    char message[256];
    int message_error;
    double last_draw;
    unsigned long keys_read;       /* keys handled (for the latency benchmark) */
    void (*on_draw)(tui_app *app); /* called after each screen update */
    void *bench;
};

/* tui/app.c */
int tui_app_init(tui_app *app, const tui_options *o);   /* sysexits code */
/* Stop the engine (report, if given, sees the app with its last snapshot), close the screen. */
void tui_app_close(tui_app *app, void (*report)(const tui_app *));
/* A line in the session log (when there is one), with the time. */
void tui_app_log(tui_app *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tui_app_pump(tui_app *app, int timeout_ms);        /* one poll round */
void tui_app_draw(tui_app *app);
void tui_app_refresh_snapshot(tui_app *app);
/* Clamp the selection to the snapshot and update the panels that have a
 * window (once the engine is ready and the terminal is large enough). */
void tui_app_panels_update(tui_app *app);
void tui_app_message(tui_app *app, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int tui_app_screen_open(tui_app *app, const char *term, FILE *out, FILE *in);
void tui_app_resize(tui_app *app, int rows, int cols);

/* tui/actions.c */
void tui_app_key(tui_app *app, int key, int is_wide);
/* An open choice prompt's label from the snapshot now (the step it shows is the true one). */
void tui_app_prompt_relabel(tui_app *app);
void tui_app_send(tui_app *app, const ssm_cmd *c);
void tui_app_save_and_stop(tui_app *app);   /* cancel, pause, save into the run's out */
void tui_app_selection_changed(tui_app *app);
/* The model settings after the action that cycles one of them (TUI_ACT_SCENARIO,
 * _POLARIZE, _REORDER: the next value, after the last the first); other actions keep them. */
void tui_model_cycle(tui_action a, int *scenario, int *polarize, int *reorder);

/* tui/export.c: the panels of snapshot s (token: the selected one) as
 * figures, SVG and PNG, into dir: the run's out/figures when the run's
 * directory exists, else ./figures (created); *files counts them. */
ssm_status tui_export_figures(const ssm_snapshot *s, int token, char *dir, size_t n, int *files);

/* tui/help.c */
void tui_help_draw(const tui_app *app);

/* tui/term.c: the real terminal */
int tui_term_check(void);            /* 0, or a sysexits code after a message */
int tui_term_signals_install(int wake_fd);
int tui_term_signal_take(int *resize);   /* SIGINT/SIGTERM/SIGHUP number taken, or 0 */
void tui_term_signals_restore(void);
int tui_term_stderr_capture(tui_app *app);
void tui_term_stderr_pump(tui_app *app);
void tui_term_stderr_restore(tui_app *app);
void tui_term_size(int fd, int *rows, int *cols);
/* The session log: requested, or $XDG_STATE_HOME/ssmlab/tui.log, or
 * ~/.local/state/ssmlab/tui.log, opened for appending (NULL: none). */
FILE *tui_term_log_open(const char *requested);

/* tui/script.c and tui/bench.c: runs on a virtual terminal */
int tui_script_main(const tui_options *o);
int tui_bench_run(const tui_options *o);

#endif
