/* figure.h — figures a researcher can put in a paper, drawn with Cairo from
 * plain arrays (no model): line plots and scatters with several series (log
 * axes on request), heatmaps with a colour bar, and bar charts with error
 * bars, alone or as a grid of panels (small multiples) on one page.  Every
 * panel has a title, axis labels, a legend when its series are labelled and
 * a colour bar when it is a heatmap.  The path's extension chooses the
 * output (.svg, .png or .pdf), all from the same drawing code; the file is
 * written to a temporary file and renamed over the path.  Colours are safe
 * for colour-blind readers: the Okabe-Ito palette for series and
 * categories, a viridis-like ramp for magnitudes and a blue-white-red ramp
 * for signed values (tables of values in figures/palette.c). */
#ifndef SSM_FIGURE_H
#define SSM_FIGURE_H

#include "engine/status.h"

typedef enum { FIG_SVG = 0, FIG_PNG, FIG_PDF, FIG_NFORMATS } fig_format;

/* The format named by path's extension (.svg, .png, .pdf, any case);
 * SSM_ERR_USAGE naming the path for any other. */
ssm_status fig_format_of(const char *path, fig_format *format);
const char *fig_format_ext(fig_format format);   /* "svg", "png", "pdf" */

/* PNG pixels per point (a 432 x 288 pt figure is 864 x 576 px, 144 dpi). */
#define FIG_PNG_SCALE 2.0

/* ---- colours ----------------------------------------------------------- */

typedef struct {
    double r, g, b;   /* sRGB in [0, 1] */
} fig_rgb;

/* Colour choices of a series or a bar: an Okabe-Ito index >= 0 (taken
 * modulo FIG_PALETTE_N), or one of these. */
enum { FIG_AUTO = -1, FIG_GREY = -2 };
#define FIG_PALETTE_N 8

fig_rgb fig_palette(int index);               /* Okabe-Ito; FIG_GREY: mid grey */
/* t in [0, 1] along the sequential (viridis-like, dark to light) or the
 * diverging (blue, white at 0.5, red) ramp; t outside is clamped. */
fig_rgb fig_ramp(double t, int diverging);

/* ---- axes and series --------------------------------------------------- */

/* The frame of one panel.  Limits apply when min < max, else they come from
 * the data (log axes: its positive values). */
typedef struct {
    const char *title;
    const char *xlabel, *ylabel;   /* with units: "layer l", "time (s)" */
    int log_x, log_y;              /* log10 axes */
    int x_integer, y_integer;      /* ticks on whole numbers only */
    int equal_aspect;              /* a unit is as long on both axes (the complex plane) */
    int zero_lines;                /* dashed lines at x = 0 and y = 0 */
    double xmin, xmax, ymin, ymax;
} fig_axes;

/* fig_series.style bits; 0 means FIG_LINES. */
enum { FIG_LINES = 1, FIG_MARKERS = 2, FIG_DASHED = 4, FIG_THIN = 8 };

/* One series of a line plot or scatter.  A non-finite x or y (or y <= 0 on
 * a log axis) breaks the line there.  A series with a label and n = 0 is a
 * legend entry only (a key to line styles). */
typedef struct {
    const char *label;       /* legend text, or NULL: not in the legend */
    const double *x, *y;     /* (n) */
    const double *lo, *hi;   /* (n) or NULL: a shaded band from lo to hi under a
                                line, whiskers on markers */
    int n;
    int color;               /* FIG_AUTO: the next palette colour, else as above */
    int marker;              /* FIG_AUTO: by the series' order; else 0..4: circle,
                                square, triangle, diamond, inverted triangle */
    int style;               /* FIG_* bits */
} fig_series;

typedef struct {
    fig_axes ax;
    const fig_series *series;
    int n_series;
} fig_xy;

/* Cell (i, j) of a rows x cols matrix is drawn centred on (x, y) = (j, i);
 * with rows_down, row 0 is at the top (a matrix), else at the bottom. */
typedef struct {
    fig_axes ax;             /* log axes and equal_aspect are ignored */
    const double *v;         /* (rows, cols) row-major; NaN: no value, left blank */
    int rows, cols;
    int rows_down;
    double vmin, vmax;       /* colour scale; from the data when vmin >= vmax */
    int diverging;           /* blue-white-red, symmetric about 0 */
    const char *clabel;      /* the colour bar's label, with units */
} fig_heatmap;

/* One bar per category, from 0 to v[i]; a non-finite v[i] draws no bar but
 * "inf" or "n/a" at its place.  lo, hi: whisker ends (e.g. mean +- a
 * confidence interval), absolute values, NaN for none. */
typedef struct {
    fig_axes ax;             /* xlabel names the categories; log_x, x limits ignored */
    const char *const *labels;   /* (n) category names */
    const double *v;         /* (n) */
    const double *lo, *hi;   /* (n) or NULL */
    int n;
    const int *colors;       /* (n) colour choices, or NULL: FIG_AUTO for every bar */
} fig_bars;

typedef enum { FIG_PANEL_XY = 0, FIG_PANEL_HEATMAP, FIG_PANEL_BARS } fig_panel_kind;

typedef struct {
    fig_panel_kind kind;
    union {
        fig_xy xy;
        fig_heatmap heat;
        fig_bars bars;
    };
} fig_panel;

/* A page: panels in a grid of cols columns (0: all in one row), row by
 * row, under an optional title; width and height in points (0: 432 x 288
 * for one panel, 288 x 228 per panel for several). */
typedef struct {
    const char *title;
    const fig_panel *panels;
    int n_panels, cols;
    double width, height;
} fig_page;

/* Draw the page into path (.svg, .png or .pdf).  SSM_ERR_USAGE for another
 * extension or no panel, SSM_ERR_CANTCREAT or SSM_ERR_IO when the file
 * cannot be written, SSM_ERR_SOFTWARE when Cairo fails; every message
 * names the path. */
ssm_status fig_page_write(const char *path, const fig_page *page);

/* Release the caches Cairo and fontconfig keep for the whole process, so
 * that a leak checker at exit finds nothing.  Only when no thread draws;
 * the next figure builds them again. */
void fig_release(void);

/* One panel alone on a page of the default size. */
ssm_status fig_xy_write(const char *path, const fig_xy *plot);
ssm_status fig_heatmap_write(const char *path, const fig_heatmap *map);
ssm_status fig_bars_write(const char *path, const fig_bars *bars);

#endif
