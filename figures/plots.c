/* plots.c — the three kinds of panel of figures/: line plots and scatters
 * (series with bands, markers and whiskers), heatmaps with their colour
 * bar, and bar charts with error bars, each in a rectangle of the page. */
#include "figures/plots.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define MARKER_SIZE 5.5
#define HEAT_MAX_CELLS (256 * 256)   /* more cells are drawn as an image */
#define BAR_WIDTH 0.7

/* ------------------------------------------------------------------------ */
/* Ranges                                                                   */

/* The axis range of a scale: explicit limits when lo < hi, else the data's
 * (lo..hi, +-inf when there is none) padded by pad. */
static void scale_set(fig_scale *s, double lo, double hi, double amin, double amax, double pad)
{
    if (amin < amax) {
        lo = amin;
        hi = amax;
        pad = 0;
    }
    if (!(lo <= hi)) {   /* no data */
        lo = s->log ? 1 : 0;
        hi = s->log ? 10 : 1;
    }
    s->lo = s->log ? log10(lo) : lo;
    s->hi = s->log ? log10(hi) : hi;
    fig_scale_pad(s, pad);
}

/* ------------------------------------------------------------------------ */
/* Line plots and scatters                                                  */

/* The colour choice and dash of series i, counting FIG_AUTO series in order. */
static void series_look(const fig_xy *p, int i, fig_rgb *c, int *dash, int *marker)
{
    int auto_i = 0;
    for (int k = 0; k < i; k++) auto_i += p->series[k].color == FIG_AUTO;
    const fig_series *s = &p->series[i];
    *c = fig_palette(s->color == FIG_AUTO ? auto_i : s->color);
    *dash = s->color == FIG_AUTO ? auto_i / FIG_PALETTE_N : 0;
    *marker = s->marker == FIG_AUTO ? i % FIG_NMARKERS : s->marker;
}

/* The style bits, FIG_LINES added when neither lines nor markers are asked for. */
static int style_of(const fig_series *s)
{
    return s->style & (FIG_LINES | FIG_MARKERS | FIG_DASHED) ? s->style : s->style | FIG_LINES;
}

/* A band under a line; whiskers on markers alone. */
static int has_band(const fig_series *s) { return s->lo && s->hi && style_of(s) & (FIG_LINES | FIG_DASHED); }

static int usable(const fig_frame *f, double x, double y)
{
    return isfinite(fig_scale_map(&f->sx, x)) && isfinite(fig_scale_map(&f->sy, y));
}

/* The band lo..hi under a line, one polygon per unbroken run. */
static void series_band(cairo_t *cr, const fig_frame *f, const fig_series *s, fig_rgb c)
{
    fig_set_color(cr, c, 0.2);
    for (int i = 0; i < s->n;) {
        int j = i;
        while (j < s->n && usable(f, s->x[j], s->lo[j]) && usable(f, s->x[j], s->hi[j])) j++;
        if (j - i >= 2) {
            for (int k = i; k < j; k++) cairo_line_to(cr, fig_scale_map(&f->sx, s->x[k]), fig_scale_map(&f->sy, s->hi[k]));
            for (int k = j - 1; k >= i; k--) cairo_line_to(cr, fig_scale_map(&f->sx, s->x[k]), fig_scale_map(&f->sy, s->lo[k]));
            cairo_close_path(cr);
            cairo_fill(cr);
        }
        cairo_new_path(cr);
        i = j + 1;
    }
}

static void series_line(cairo_t *cr, const fig_frame *f, const fig_series *s, fig_rgb c, int dash)
{
    fig_set_color(cr, c, 1);
    fig_line_style(cr, style_of(s), dash);
    int pen = 0;
    for (int i = 0; i < s->n; i++) {
        if (!usable(f, s->x[i], s->y[i])) {
            pen = 0;
            continue;
        }
        double x = fig_scale_map(&f->sx, s->x[i]), y = fig_scale_map(&f->sy, s->y[i]);
        if (pen) cairo_line_to(cr, x, y);
        else cairo_move_to(cr, x, y);
        pen = 1;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
}

static void series_markers(cairo_t *cr, const fig_frame *f, const fig_series *s, fig_rgb c, int marker)
{
    cairo_set_line_width(cr, 0.9);
    for (int i = 0; i < s->n; i++) {
        if (!usable(f, s->x[i], s->y[i])) continue;
        double x = fig_scale_map(&f->sx, s->x[i]);
        if (!has_band(s) && s->lo && s->hi && usable(f, s->x[i], s->lo[i]) && usable(f, s->x[i], s->hi[i])) {
            fig_set_color(cr, c, 1);
            cairo_move_to(cr, x, fig_scale_map(&f->sy, s->lo[i]));
            cairo_line_to(cr, x, fig_scale_map(&f->sy, s->hi[i]));
            cairo_stroke(cr);
        }
        fig_marker(cr, marker, x, fig_scale_map(&f->sy, s->y[i]), MARKER_SIZE);
        fig_set_color(cr, c, 0.9);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_set_line_width(cr, 0.5);
        cairo_stroke(cr);
    }
}

static void xy_ranges(const fig_xy *p, fig_frame *f)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < p->n_series; i++) {
        const fig_series *s = &p->series[i];
        fig_range_grow(s->x, s->n, p->ax.log_x, &xlo, &xhi);
        fig_range_grow(s->y, s->n, p->ax.log_y, &ylo, &yhi);
        if (s->lo) fig_range_grow(s->lo, s->n, p->ax.log_y, &ylo, &yhi);
        if (s->hi) fig_range_grow(s->hi, s->n, p->ax.log_y, &ylo, &yhi);
    }
    f->sx = (fig_scale){.log = p->ax.log_x, .integer = p->ax.x_integer};
    f->sy = (fig_scale){.log = p->ax.log_y, .integer = p->ax.y_integer};
    scale_set(&f->sx, xlo, xhi, p->ax.xmin, p->ax.xmax, 0.03);
    scale_set(&f->sy, ylo, yhi, p->ax.ymin, p->ax.ymax, 0.05);
}

/* The labelled series as legend entries (entries holds n_series). */
static int xy_legend(const fig_xy *p, fig_legend_entry *e)
{
    int n = 0;
    for (int i = 0; i < p->n_series; i++) {
        const fig_series *s = &p->series[i];
        if (!s->label) continue;
        int dash, marker;
        fig_rgb c;
        series_look(p, i, &c, &dash, &marker);
        int st = style_of(s);
        e[n++] = (fig_legend_entry){s->label, c, st & FIG_MARKERS ? marker : -1, st, has_band(s)};
    }
    return n;
}

/* Whether the segment from (x0, y0) to (x1, y1), page points, comes within
 * 3 points of box (sampled every 2 points along it). */
static int segment_in(double x0, double y0, double x1, double y1, fig_rect box)
{
    if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1)) return 0;
    int steps = (int)ceil(hypot(x1 - x0, y1 - y0) / 2);
    if (steps > 2000) steps = 2000;
    for (int q = 0; q <= steps; q++) {
        double a = steps ? (double)q / steps : 0, x = x0 + a * (x1 - x0), y = y0 + a * (y1 - y0);
        if (x >= box.x - 3 && x <= box.x + box.w + 3 && y >= box.y - 3 && y <= box.y + box.h + 3) return 1;
    }
    return 0;
}

/* Whether any series (its points, its lines, the edges of its band) meets box. */
static int data_in(const fig_frame *f, const fig_xy *p, fig_rect box)
{
    for (int i = 0; i < p->n_series; i++) {
        const fig_series *s = &p->series[i];
        int lines = style_of(s) & (FIG_LINES | FIG_DASHED);
        for (int w = 0; w < (has_band(s) ? 3 : 1); w++) {
            const double *y = w == 0 ? s->y : w == 1 ? s->lo : s->hi;
            for (int j = 0; j < s->n; j++) {
                int k = lines && j + 1 < s->n ? j + 1 : j;
                if (segment_in(fig_scale_map(&f->sx, s->x[j]), fig_scale_map(&f->sy, y[j]),
                               fig_scale_map(&f->sx, s->x[k]), fig_scale_map(&f->sy, y[k]), box))
                    return 1;
            }
        }
    }
    return 0;
}

/* Lay out the frame and place a legend of n entries: inside the plot, in
 * the first corner it hides no data in, else to the right of the plot.
 * *at gets its top left corner, *max_h the height it was measured in. */
static void frame_with_legend(cairo_t *cr, fig_frame *f, const fig_xy *p, fig_rect r, const fig_legend_entry *e,
                              int n, double at[2], double *max_h)
{
    double lw, lh;
    fig_frame base = *f;   /* the data ranges, before a layout changes them */
    fig_frame_layout(cr, f, &p->ax, r, 0);
    if (!n) return;
    *max_h = f->plot.h - 2 * FIG_PAD;
    fig_legend_measure(cr, e, n, *max_h, &lw, &lh);
    for (int c = 0; c < 4 && lw < 0.6 * f->plot.w && lh < 0.7 * f->plot.h; c++) {
        fig_rect box = {c % 2 ? f->plot.x + FIG_PAD : f->plot.x + f->plot.w - FIG_PAD - lw,
                        c < 2 ? f->plot.y + FIG_PAD : f->plot.y + f->plot.h - FIG_PAD - lh, lw, lh};
        if (!data_in(f, p, box)) {
            at[0] = box.x;
            at[1] = box.y;
            return;
        }
    }
    *max_h = f->plot.h;
    fig_legend_measure(cr, e, n, *max_h, &lw, &lh);
    *f = base;
    fig_frame_layout(cr, f, &p->ax, r, lw + FIG_PAD);
    at[0] = f->plot.x + f->plot.w + FIG_PAD;
    at[1] = f->plot.y;
}

void fig_xy_draw(cairo_t *cr, const fig_xy *p, fig_rect r)
{
    fig_frame f = {0};
    fig_legend_entry *e = calloc((size_t)p->n_series + 1, sizeof *e);
    int ne = e ? xy_legend(p, e) : 0;
    double at[2], max_h = 0;
    xy_ranges(p, &f);
    frame_with_legend(cr, &f, p, r, e, ne, at, &max_h);
    fig_frame_draw(cr, &f, &p->ax, r);
    fig_frame_clip(cr, &f);
    for (int pass = 0; pass < 3; pass++)   /* bands under lines under markers */
        for (int i = 0; i < p->n_series; i++) {
            const fig_series *s = &p->series[i];
            int dash, marker, st = style_of(s);
            fig_rgb c;
            series_look(p, i, &c, &dash, &marker);
            if (pass == 0 && has_band(s)) series_band(cr, &f, s, c);
            if (pass == 1 && st & (FIG_LINES | FIG_DASHED)) series_line(cr, &f, s, c, dash);
            if (pass == 2 && st & FIG_MARKERS) series_markers(cr, &f, s, c, marker);
        }
    cairo_restore(cr);
    fig_frame_box(cr, &f);
    fig_legend_draw(cr, e, ne, at[0], at[1], max_h);
    free(e);
}

/* ------------------------------------------------------------------------ */
/* Heatmaps                                                                 */

/* The colour scale: the data's range unless given; symmetric about 0 when
 * diverging; never empty. */
static void heat_range(const fig_heatmap *p, double *vmin, double *vmax)
{
    double lo = INFINITY, hi = -INFINITY;
    if (p->vmin < p->vmax) lo = p->vmin, hi = p->vmax;
    else fig_range_grow(p->v, p->rows * p->cols, 0, &lo, &hi);
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (p->diverging) {
        double m = fmax(fabs(lo), fabs(hi));
        lo = -m;
        hi = m;
    }
    if (lo == hi) lo -= 0.5, hi += 0.5;
    *vmin = lo;
    *vmax = hi;
}

static fig_rgb heat_color(const fig_heatmap *p, double v, double vmin, double vmax)
{
    return fig_ramp((v - vmin) / (vmax - vmin), p->diverging);
}

/* Cells as rectangles (crisp in SVG and PDF), overlapping a hair so no
 * seam shows between them. */
static void heat_rects(cairo_t *cr, const fig_frame *f, const fig_heatmap *p, double vmin, double vmax)
{
    for (int i = 0; i < p->rows; i++)
        for (int j = 0; j < p->cols; j++) {
            double v = p->v[(size_t)i * p->cols + j];
            if (!isfinite(v)) continue;
            double x0 = fig_scale_map(&f->sx, j - 0.5), x1 = fig_scale_map(&f->sx, j + 0.5);
            double y0 = fig_scale_map(&f->sy, i - 0.5), y1 = fig_scale_map(&f->sy, i + 0.5);
            fig_set_color(cr, heat_color(p, v, vmin, vmax), 1);
            cairo_rectangle(cr, x0 - 0.2, fmin(y0, y1) - 0.2, x1 - x0 + 0.4, fabs(y1 - y0) + 0.4);
            cairo_fill(cr);
        }
}

/* Large maps as one image of a pixel per cell, scaled without smoothing. */
static void heat_image(cairo_t *cr, const fig_frame *f, const fig_heatmap *p, double vmin, double vmax)
{
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, p->cols, p->rows);
    if (cairo_surface_status(img)) return;
    cairo_surface_flush(img);
    unsigned char *data = cairo_image_surface_get_data(img);
    int stride = cairo_image_surface_get_stride(img);
    for (int i = 0; i < p->rows; i++)
        for (int j = 0; j < p->cols; j++) {
            double v = p->v[(size_t)i * p->cols + j];
            fig_rgb c = heat_color(p, v, vmin, vmax);
            uint32_t px = !isfinite(v) ? 0
                          : 0xff000000u | (uint32_t)lround(c.r * 255) << 16 | (uint32_t)lround(c.g * 255) << 8 |
                                (uint32_t)lround(c.b * 255);
            ((uint32_t *)(data + (size_t)i * stride))[j] = px;
        }
    cairo_surface_mark_dirty(img);
    double x0 = fig_scale_map(&f->sx, -0.5), y0 = fig_scale_map(&f->sy, -0.5);
    double sx = (fig_scale_map(&f->sx, p->cols - 0.5) - x0) / p->cols;
    double sy = (fig_scale_map(&f->sy, p->rows - 0.5) - y0) / p->rows;
    cairo_save(cr);
    cairo_translate(cr, x0, y0);
    cairo_scale(cr, sx, sy);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(img);
}

void fig_heatmap_draw(cairo_t *cr, const fig_heatmap *p, fig_rect r)
{
    fig_frame f = {0};
    fig_axes ax = p->ax;
    double vmin, vmax;
    ax.log_x = ax.log_y = ax.equal_aspect = 0;
    ax.x_integer = ax.y_integer = 1;
    heat_range(p, &vmin, &vmax);
    f.sx = (fig_scale){.lo = -0.5, .hi = p->cols - 0.5, .integer = 1};
    f.sy = (fig_scale){.lo = -0.5, .hi = p->rows - 0.5, .integer = 1, .flip = p->rows_down};
    f.no_grid = 1;
    double cw = fig_colorbar_width(cr, vmin, vmax, p->clabel, r.h * 0.6);
    fig_frame_layout(cr, &f, &ax, r, cw);
    fig_frame_draw(cr, &f, &ax, r);
    fig_frame_clip(cr, &f);
    if ((long)p->rows * p->cols > HEAT_MAX_CELLS) heat_image(cr, &f, p, vmin, vmax);
    else heat_rects(cr, &f, p, vmin, vmax);
    cairo_restore(cr);
    fig_frame_box(cr, &f);
    fig_rect bar = {f.plot.x + f.plot.w + FIG_PAD, f.plot.y, cw, f.plot.h};
    fig_colorbar_draw(cr, bar, vmin, vmax, p->diverging, p->clabel);
}

/* ------------------------------------------------------------------------ */
/* Bar charts                                                               */

static void bars_ranges(const fig_bars *p, fig_frame *f)
{
    int log = p->ax.log_y;
    double lo = log ? INFINITY : 0, hi = log ? -INFINITY : 0;
    fig_range_grow(p->v, p->n, log, &lo, &hi);
    if (p->lo) fig_range_grow(p->lo, p->n, log, &lo, &hi);
    if (p->hi) fig_range_grow(p->hi, p->n, log, &lo, &hi);
    f->sx = (fig_scale){.lo = -0.6, .hi = p->n - 0.4, .integer = 1};
    f->sy = (fig_scale){.log = log, .integer = p->ax.y_integer};
    scale_set(&f->sy, lo, hi, p->ax.ymin, p->ax.ymax, 0.06);
    if (!log && lo == 0 && !(p->ax.ymin < p->ax.ymax)) f->sy.lo = 0;   /* bars stand on the frame */
    f->cats = p->labels;
    f->n_cats = p->n;
}

static void bar_one(cairo_t *cr, const fig_frame *f, const fig_bars *p, int i)
{
    double x0 = fig_scale_map(&f->sx, i - BAR_WIDTH / 2), x1 = fig_scale_map(&f->sx, i + BAR_WIDTH / 2);
    double base = f->sy.log ? f->plot.y + f->plot.h : fig_scale_map(&f->sy, 0), v = p->v[i];
    double y = fig_scale_map(&f->sy, v);
    if (!isfinite(y)) {   /* inf, NaN, or not positive on a log axis */
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
        fig_text(cr, (x0 + x1) / 2, f->plot.y + f->plot.h - 3, isinf(v) ? (v > 0 ? "inf" : "-inf") : "n/a",
                 FIG_SIZE_TICK, 0, 0.5, 1, 0);
        return;
    }
    fig_set_color(cr, fig_palette(p->colors && p->colors[i] != FIG_AUTO ? p->colors[i] : i), 1);
    cairo_rectangle(cr, x0, fmin(y, base), x1 - x0, fabs(base - y));
    cairo_fill(cr);
    if (!p->lo || !p->hi) return;
    double a = fig_scale_map(&f->sy, p->lo[i]), b = fig_scale_map(&f->sy, p->hi[i]);
    if (!isfinite(a) || !isfinite(b)) return;
    double xm = (x0 + x1) / 2, cap = (x1 - x0) / 4;
    cairo_move_to(cr, xm, a);
    cairo_line_to(cr, xm, b);
    cairo_move_to(cr, xm - cap, a);
    cairo_line_to(cr, xm + cap, a);
    cairo_move_to(cr, xm - cap, b);
    cairo_line_to(cr, xm + cap, b);
    cairo_set_source_rgb(cr, 1, 1, 1);   /* a white edge: visible on a dark bar too */
    cairo_set_line_width(cr, 2.6);
    cairo_stroke_preserve(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
}

void fig_bars_draw(cairo_t *cr, const fig_bars *p, fig_rect r)
{
    fig_frame f = {0};
    fig_axes ax = p->ax;
    ax.log_x = ax.equal_aspect = 0;
    bars_ranges(p, &f);
    fig_frame_layout(cr, &f, &ax, r, 0);
    fig_frame_draw(cr, &f, &ax, r);
    fig_frame_clip(cr, &f);
    for (int i = 0; i < p->n; i++) bar_one(cr, &f, p, i);
    if (!f.sy.log && f.sy.lo < 0) {   /* the zero line under signed bars */
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        cairo_set_line_width(cr, 0.8);
        cairo_move_to(cr, f.plot.x, fig_scale_map(&f.sy, 0));
        cairo_line_to(cr, f.plot.x + f.plot.w, fig_scale_map(&f.sy, 0));
        cairo_stroke(cr);
    }
    cairo_restore(cr);
    fig_frame_box(cr, &f);
}
