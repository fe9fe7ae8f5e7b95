/* vterm.h — a virtual terminal for the display-free modes (--script,
 * --bench-latency): a pseudo-terminal of a given size whose slave side is
 * curses' terminal, with a thread draining the master side; keys can be
 * written into the master; the screen is read back from curses' own copy. */
#ifndef SSM_TUI_VTERM_H
#define SSM_TUI_VTERM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

typedef struct {
    int master, slave;
    FILE *in, *out;          /* the slave, for newterm */
    pthread_t drain;
    int stop[2];             /* pipe that stops the drain thread */
    atomic_long out_bytes;   /* bytes curses wrote */
} tui_vterm;

/* 0 on success; on failure a message on stderr and -1. */
int tui_vterm_open(tui_vterm *v, int cols, int rows);
void tui_vterm_resize(tui_vterm *v, int cols, int rows);
int tui_vterm_write(tui_vterm *v, const char *bytes, size_t n);
void tui_vterm_close(tui_vterm *v);

/* The terminal type to ask curses for: want if its terminfo exists, else
 * xterm-256color, xterm or vt100. */
const char *tui_vterm_term(const char *want);

/* Write the current screen (curses' curscr) to f as UTF-8 lines, trailing
 * blanks removed. */
void tui_vterm_dump(FILE *f);

/* Does the screen contain text (UTF-8)? */
int tui_vterm_contains(const char *text);

#endif
