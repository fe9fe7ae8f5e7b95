/* draw.h — the pieces figures/ builds its panels from (internal to the
 * layer): text with sizes and alignment, data-to-page scales and their
 * ticks, the frame of a panel (margins, grid, tick labels, axis labels,
 * title), the legend and the colour bar. */
#ifndef SSM_FIGURES_DRAW_H
#define SSM_FIGURES_DRAW_H

#include <cairo.h>
#include <stddef.h>

#include "figures/figure.h"

/* Font sizes in points. */
#define FIG_SIZE_TITLE 11.0
#define FIG_SIZE_LABEL 10.0
#define FIG_SIZE_TICK 8.5
#define FIG_SIZE_LEGEND 8.5
#define FIG_PAD 5.0
#define FIG_MAX_TICKS 64

typedef struct {
    double x, y, w, h;
} fig_rect;

/* ---- text ---------------------------------------------------------------- */

/* Text as Cairo may show it: invalid UTF-8 bytes become U+FFFD and control
 * characters "\n", "\t" or "^X", so that Cairo never refuses a string. */
void fig_text_clean(const char *s, char *out, size_t n);

/* Advance width of s at size (bold or not). */
double fig_text_width(cairo_t *cr, const char *s, double size, int bold);

/* s shortened with a trailing ellipsis to fit max_w (the whole of s when it fits). */
void fig_text_fit(cairo_t *cr, const char *s, double size, int bold, double max_w, char *out, size_t n);

/* Show s with its anchor at (x, y): ax 0, 0.5, 1 = left, centre, right of the
 * text; ay 0, 0.5, 1 = top, middle, baseline-bottom; angle in radians
 * (counter-clockwise; -pi/2 reads bottom to top). */
void fig_text(cairo_t *cr, double x, double y, const char *s, double size, int bold, double ax,
              double ay, double angle);

/* A bold title centred on cx with its top at y, in size points or smaller
 * (down to 8) so it fits max_w, cut with an ellipsis when even 8 does not. */
void fig_title(cairo_t *cr, const char *s, double cx, double y, double size, double max_w);

/* Line height of a size: ascent + descent. */
double fig_text_height(cairo_t *cr, double size);

/* ---- scales and ticks ---------------------------------------------------- */

/* A data range [lo, hi] (log10 of the values on a log scale) onto the page
 * interval [p0, p1]. */
typedef struct {
    double lo, hi;
    int log, integer;
    int flip;            /* y scales: lo at the top */
    double p0, p1;
} fig_scale;

double fig_scale_map(const fig_scale *s, double v);   /* NaN for v <= 0 on a log scale */

/* Grow lo..hi of s by frac of its span on each side (a point range by one
 * unit, or a decade when log). */
void fig_scale_pad(fig_scale *s, double frac);

/* Tick values (in data units, not log) of s, at most max_n of them (and
 * at most FIG_MAX_TICKS), on 1, 2, 5 x 10^k steps; on a log scale every
 * d-th decade, or 1, 2 and 5 in each decade when the range holds fewer
 * than two decades (1 .. 9 when that gives fewer than three), or linear
 * steps when it holds fewer than two of those.
 * Returns how many; *step says how to label them: the linear step, -d for
 * decades, 0 for 1-2-5 ticks. */
int fig_scale_ticks(const fig_scale *s, int max_n, double *ticks, double *step);

/* The label of tick v for fig_scale_ticks' step: as few decimals as the
 * step needs, a true minus sign, and 10 with a superscript exponent for
 * decades outside 0.001 .. 10000. */
void fig_tick_label(double v, double step, char *buf, size_t n);

/* Lower and upper finite values of v (n) that a scale can show (positive
 * ones when log); 0 when there are none.  *lo, *hi are widened, not reset. */
int fig_range_grow(const double *v, int n, int log, double *lo, double *hi);

/* ---- legend and colour bar ------------------------------------------------- */

typedef struct {
    const char *label;
    fig_rgb color;
    int marker;          /* < 0: none */
    int style;           /* FIG_* bits */
    int band;            /* a shaded swatch behind the line */
} fig_legend_entry;

/* Size of the legend of n entries laid out in columns no taller than max_h. */
void fig_legend_measure(cairo_t *cr, const fig_legend_entry *e, int n, double max_h, double *w, double *h);
void fig_legend_draw(cairo_t *cr, const fig_legend_entry *e, int n, double x, double y, double max_h);

/* Width of a colour bar with its ticks and label, and the bar itself in r
 * from vmin (bottom) to vmax (top). */
double fig_colorbar_width(cairo_t *cr, double vmin, double vmax, const char *label, double h);
void fig_colorbar_draw(cairo_t *cr, fig_rect r, double vmin, double vmax, int diverging, const char *label);

/* ---- markers and lines ------------------------------------------------------ */

#define FIG_NMARKERS 5
void fig_marker(cairo_t *cr, int marker, double x, double y, double size);

/* Line width and dash of a style; dash_index > 0 picks one of the extra
 * patterns used when colours repeat. */
void fig_line_style(cairo_t *cr, int style, int dash_index);

void fig_set_color(cairo_t *cr, fig_rgb c, double alpha);

/* ---- the frame of a panel -------------------------------------------------- */

typedef struct {
    fig_rect plot;                /* the data area */
    fig_scale sx, sy;
    double xt[FIG_MAX_TICKS], yt[FIG_MAX_TICKS];
    int nxt, nyt;
    double xstep, ystep;
    const char *const *cats;      /* category axis on x (bars): n_cats names at x = 0 .. */
    int n_cats, cat_every;        /* a label every cat_every categories */
    int cats_rotated;             /* category names read bottom to top */
    double cat_len;               /* the longest name's length (longer ones are cut) */
    int no_grid;                  /* no grid lines (heatmaps cover them) */
} fig_frame;

/* Lay out the frame of a panel in r: sx, sy hold the data ranges (lo, hi,
 * log, integer) on entry; right is the width kept at the right for a
 * legend or colour bar.  Places the plot area, maps the scales onto it,
 * honours ax->equal_aspect, and picks ticks that do not overlap. */
void fig_frame_layout(cairo_t *cr, fig_frame *f, const fig_axes *ax, fig_rect r, double right);

/* Title, grid, zero lines, box, ticks, tick labels and axis labels,
 * before the data; the box again after it (fig_frame_box). */
void fig_frame_draw(cairo_t *cr, const fig_frame *f, const fig_axes *ax, fig_rect r);
void fig_frame_box(cairo_t *cr, const fig_frame *f);

/* Clip to the plot area (cairo_save first; cairo_restore ends it). */
void fig_frame_clip(cairo_t *cr, const fig_frame *f);

#endif
