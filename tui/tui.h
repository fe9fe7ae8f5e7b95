/* tui.h — the entry point of the ncurses lab (`ssmlab tui`): options, and
 * tui_run, which opens the terminal (or a virtual one for --script and
 * --bench-latency), starts the engine thread and runs the UI loop. */
#ifndef SSM_TUI_H
#define SSM_TUI_H

#include "scenarios/run_config.h"

typedef struct {
    run_config rc;            /* resolved run configuration */
    char name[64];            /* the config's name (the lab names a run after its out directory) */
    const char *model_dir;    /* --model DIR: load this checkpoint */
    const char *weights;      /* --weights bf16|f32: the format checkpoints are inspected in
                               * (NULL: bf16, f32 for a Mamba-2 model) */
    char **overrides;         /* the key=value arguments (applied over a checkpoint's config) */
    int n_overrides;
    const char *script;       /* --script FILE: display-free scripted run */
    int width, height;        /* virtual terminal size (script, bench) */
    const char *term;         /* virtual terminal type (script, bench) */
    int bench_latency;        /* --bench-latency: measure key-to-redraw time */
    int bench_keys;           /* keys the benchmark sends */
    int paused;               /* do not start training at once */
    const char *keys_file;    /* keys=FILE (NULL: the default keys file if present) */
    const char *text;         /* text=...: inspected text */
    long image;               /* image=N: inspected test image of an image classifier */
    int color;                /* TUI_COLOR_* */
    int plot;                 /* TUI_PLOT_* */
    const char *log_path;     /* log=FILE: where stderr goes while curses is up */
} tui_options;

void tui_options_default(tui_options *o);

/* Run the TUI; returns a sysexits.h code (130 after Ctrl-C or SIGTERM). */
int tui_run(const tui_options *o);

#endif
