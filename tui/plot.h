/* plot.h — plot primitives of the TUI: a canvas of sub-cell pixels drawn
 * as Braille (2x4 dots a cell, UTF-8 terminals), quadrant blocks (2x2) or
 * ASCII (1x2), with a few coloured series per canvas. */
#ifndef SSM_TUI_PLOT_H
#define SSM_TUI_PLOT_H

#include <curses.h>

#include "tui/colors.h"

enum { TUI_PLOT_AUTO = 0, TUI_PLOT_BRAILLE, TUI_PLOT_BLOCKS, TUI_PLOT_ASCII, TUI_PLOT_COUNT };

#define TUI_CANVAS_MAX_W 256
#define TUI_CANVAS_MAX_H 64

typedef struct {
    int mode;           /* TUI_PLOT_BRAILLE, _BLOCKS or _ASCII */
    int w, h;           /* cells */
    int sx, sy;         /* pixels per cell */
    unsigned char px[TUI_CANVAS_MAX_H * 4][TUI_CANVAS_MAX_W * 2];  /* series + 1, 0 = empty */
} tui_canvas;

const char *tui_plot_name(int mode);   /* "auto", "braille", "blocks", "ascii" */
int tui_plot_parse(const char *s);     /* -1 if unknown */

/* The mode to use for a requested one: auto is Braille on UTF-8 locales and
 * ASCII otherwise; Braille and blocks need UTF-8. */
int tui_plot_resolve(int requested, int utf8);

/* The resolved mode after mode: Braille, blocks, ASCII, and Braille again. */
int tui_plot_next(int mode);

/* Clear c for w x h cells (clamped to the maximum). */
void tui_canvas_init(tui_canvas *c, int mode, int w, int h);
int tui_canvas_pw(const tui_canvas *c);   /* width in pixels */
int tui_canvas_ph(const tui_canvas *c);   /* height in pixels */

/* Pixel (px, py) of series (0-based), 0,0 top left; out-of-range pixels are ignored. */
void tui_canvas_set(tui_canvas *c, int px, int py, int series);
void tui_canvas_line(tui_canvas *c, int x0, int y0, int x1, int y1, int series);

/* Points (xs[i], ys[i]) scaled from [xlo, xhi] x [ylo, yhi] (y up),
 * joined by lines when connect is set.  Non-finite points are skipped. */
void tui_canvas_series(tui_canvas *c, const double *xs, const double *ys, int n, double xlo,
                       double xhi, double ylo, double yhi, int series, int connect);

/* Draw at (y, x) of win; series s (0-based, the higher on top) uses role roles[s]. */
void tui_canvas_draw(const tui_canvas *c, WINDOW *win, int y, int x, const tui_role *roles);

/* The glyph of one cell from its pixel bits (row-major within the cell). */
wchar_t tui_canvas_glyph(int mode, unsigned bits);

#endif
