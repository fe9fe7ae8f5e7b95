/* colors.h — colour setup of the TUI: truecolor (direct-colour terminfo),
 * 256, 16 or no colour (NO_COLOR, TERM without colours, or color=none),
 * the named roles panels draw with, and the heat ramp of the heatmaps
 * (background colours, or density characters without colour). */
#ifndef SSM_TUI_COLORS_H
#define SSM_TUI_COLORS_H

#include <curses.h>

enum { TUI_COLOR_AUTO = 0, TUI_COLOR_NONE, TUI_COLOR_16, TUI_COLOR_256, TUI_COLOR_TRUE, TUI_COLOR_COUNT };

typedef enum {
    TUI_C_NORMAL = 0,
    TUI_C_TITLE,     /* panel titles */
    TUI_C_STATUS,    /* the status line */
    TUI_C_SERIES1,   /* first plot series */
    TUI_C_SERIES2,   /* second plot series */
    TUI_C_SERIES3,   /* third plot series (baselines) */
    TUI_C_GOOD,
    TUI_C_BAD,
    TUI_C_SELECT,    /* selected row, column or cell */
    TUI_C_DIM,
    TUI_C_COUNT
} tui_role;

#define TUI_RAMP 10   /* heat ramp steps */

/* After initscr/newterm.  requested is TUI_COLOR_*; NO_COLOR in the
 * environment forces none.  Returns the level in use. */
int tui_colors_setup(int requested);
int tui_colors_level(void);
const char *tui_colors_name(int level);   /* "none", "16", "256", "truecolor" */
int tui_colors_parse(const char *s);      /* -1 if unknown ("auto" is 0) */
int tui_utf8(void);                       /* the locale is UTF-8 (after setlocale) */

/* Attribute (with colour pair) of a role. */
attr_t tui_attr(tui_role r);
short tui_pair(tui_role r);

/* Ramp step i (0 = low) as a cell: a coloured blank, or a density character. */
void tui_ramp_cell(int i, cchar_t *out);

/* Ramp step of v in [lo, hi] (clamped). */
int tui_ramp_index(double v, double lo, double hi);

#endif
