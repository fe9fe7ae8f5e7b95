/* draw.c — text, scales, ticks, markers, legends, colour bars and the frame
 * of a panel for figures/ (see figures/draw.h). */
#include "figures/draw.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistr.h>

#define FONT "DejaVu Sans"
#define TICK_LEN 3.5
#define TEXT_MAX 512
#define LEGEND_SWATCH 24.0
#define LEGEND_TEXT_MAX 200.0
#define COLORBAR_W 12.0
#define COLORBAR_SLICES 128

/* ------------------------------------------------------------------------ */
/* Text                                                                     */

void fig_text_clean(const char *s, char *out, size_t n)
{
    size_t o = 0, len = strlen(s);
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < len && o + 5 < n;) {
        ucs4_t c;
        int k = u8_mbtoucr(&c, u + i, len - i);
        if (k < 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);   /* U+FFFD */
            o += 3;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, n - o, c == '\n' ? "\\n" : c == '\t' ? "\\t" : "^%c", (char)(c ^ 0x40));
            i++;
        } else {
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        }
    }
    out[o] = 0;
}

static void font_set(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double fig_text_width(cairo_t *cr, const char *s, double size, int bold)
{
    char buf[TEXT_MAX];
    cairo_text_extents_t e;
    fig_text_clean(s, buf, sizeof buf);
    font_set(cr, size, bold);
    cairo_text_extents(cr, buf, &e);
    return e.x_advance;
}

double fig_text_height(cairo_t *cr, double size)
{
    cairo_font_extents_t fe;
    font_set(cr, size, 0);
    cairo_font_extents(cr, &fe);
    return fe.ascent + fe.descent;
}

void fig_text_fit(cairo_t *cr, const char *s, double size, int bold, double max_w, char *out, size_t n)
{
    fig_text_clean(s, out, n);
    if (fig_text_width(cr, out, size, bold) <= max_w) return;
    size_t len = strlen(out);
    while (len > 0) {
        do len--; while (len > 0 && ((unsigned char)out[len] & 0xc0) == 0x80);   /* one character back */
        char tmp[TEXT_MAX];
        snprintf(tmp, sizeof tmp, "%.*s\xe2\x80\xa6", (int)len, out);   /* U+2026 */
        if (fig_text_width(cr, tmp, size, bold) <= max_w || len == 0) {
            snprintf(out, n, "%s", tmp);
            return;
        }
    }
}

void fig_title(cairo_t *cr, const char *s, double cx, double y, double size, double max_w)
{
    char buf[TEXT_MAX];
    while (size > 8 && fig_text_width(cr, s, size, 1) > max_w) size -= 0.5;
    fig_text_fit(cr, s, size, 1, max_w, buf, sizeof buf);
    fig_text(cr, cx, y, buf, size, 1, 0.5, 0, 0);
}

void fig_text(cairo_t *cr, double x, double y, const char *s, double size, int bold, double ax,
              double ay, double angle)
{
    char buf[TEXT_MAX];
    cairo_text_extents_t e;
    cairo_font_extents_t fe;
    fig_text_clean(s, buf, sizeof buf);
    font_set(cr, size, bold);
    cairo_text_extents(cr, buf, &e);
    cairo_font_extents(cr, &fe);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ax * e.x_advance, fe.ascent - ay * (fe.ascent + fe.descent));
    cairo_show_text(cr, buf);
    cairo_restore(cr);
}

/* ------------------------------------------------------------------------ */
/* Scales and ticks                                                         */

double fig_scale_map(const fig_scale *s, double v)
{
    if (s->log) {
        if (!(v > 0)) return NAN;
        v = log10(v);
    }
    return s->p0 + (v - s->lo) / (s->hi - s->lo) * (s->p1 - s->p0);
}

void fig_scale_pad(fig_scale *s, double frac)
{
    double span = s->hi - s->lo;
    if (span > 0) {
        s->lo -= frac * span;
        s->hi += frac * span;
        return;
    }
    double d = s->log ? 0.5 : s->integer ? 1 : s->lo != 0 ? 0.1 * fabs(s->lo) : 1;
    s->lo -= d;
    s->hi += d;
}

int fig_range_grow(const double *v, int n, int log, double *lo, double *hi)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i]) || (log && !(v[i] > 0))) continue;
        if (v[i] < *lo) *lo = v[i];
        if (v[i] > *hi) *hi = v[i];
        k++;
    }
    return k;
}

/* 1, 2 or 5 x 10^k, the smallest at least raw */
static double nice_step(double raw)
{
    double mag = pow(10, floor(log10(raw)));
    double m = raw / mag;
    return (m <= 1 + 1e-9 ? 1 : m <= 2 + 1e-9 ? 2 : m <= 5 + 1e-9 ? 5 : 10) * mag;
}

/* multiples of a nice step in [lo, hi] */
static int linear_ticks(double lo, double hi, int integer, int max_n, double *ticks, double *step)
{
    double st = nice_step((hi - lo) / max_n);
    if (integer && st < 1) st = 1;
    int n = 0;
    for (double k = ceil(lo / st - 1e-9); k <= floor(hi / st + 1e-9) && n < FIG_MAX_TICKS; k++)
        ticks[n++] = k == 0 ? 0 : k * st;
    *step = st;
    return n;
}

/* the values m[j] x 10^k inside the range of s */
static int decade_multiples(const fig_scale *s, const double *m, int nm, double *ticks)
{
    int n = 0;
    for (int k = (int)floor(s->lo); k <= (int)ceil(s->hi) && n < FIG_MAX_TICKS; k++)
        for (int j = 0; j < nm && n < FIG_MAX_TICKS; j++) {
            double v = m[j] * pow(10, k), e = log10(v);
            if (e >= s->lo - 1e-9 && e <= s->hi + 1e-9) ticks[n++] = v;
        }
    return n;
}

static int log_ticks(const fig_scale *s, int max_n, double *ticks, double *step)
{
    int k0 = (int)ceil(s->lo - 1e-9), k1 = (int)floor(s->hi + 1e-9), n = 0;
    if (k1 - k0 + 1 >= 2) {   /* decades: every d-th */
        int d = (k1 - k0 + max_n) / max_n;
        for (int k = (int)ceil((double)k0 / d) * d; k <= k1 && n < FIG_MAX_TICKS; k += d) ticks[n++] = pow(10, k);
        *step = -d;
        return n;
    }
    static const double m125[] = {1, 2, 5}, m1to9[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    *step = 0;
    n = decade_multiples(s, m125, 3, ticks);   /* 1, 2, 5; 1 .. 9 when that gives fewer than 3 */
    if (n >= 3 && n <= max_n) return n;
    n = decade_multiples(s, m1to9, 9, ticks);
    if (n >= 2 && n <= max_n) return n;
    n = decade_multiples(s, m125, 3, ticks);
    if (n >= 2 && n <= max_n) return n;
    return linear_ticks(pow(10, s->lo), pow(10, s->hi), 0, max_n, ticks, step);
}

int fig_scale_ticks(const fig_scale *s, int max_n, double *ticks, double *step)
{
    if (max_n < 2) max_n = 2;
    if (max_n > FIG_MAX_TICKS - 1) max_n = FIG_MAX_TICKS - 1;
    if (!(s->hi > s->lo)) return 0;
    return s->log ? log_ticks(s, max_n, ticks, step) : linear_ticks(s->lo, s->hi, s->integer, max_n, ticks, step);
}

/* "-" to U+2212 in place (the label has room: n >= 32) */
static void true_minus(char *buf, size_t n)
{
    if (buf[0] != '-' || strlen(buf) + 3 >= n) return;
    memmove(buf + 3, buf + 1, strlen(buf));
    memcpy(buf, "\xe2\x88\x92", 3);
}

/* 10 and the exponent e in superscript digits */
static void decade_label(int e, char *buf, size_t n)
{
    static const char *const sup[] = {"\xe2\x81\xb0", "\xc2\xb9", "\xc2\xb2", "\xc2\xb3", "\xe2\x81\xb4",
                                      "\xe2\x81\xb5", "\xe2\x81\xb6", "\xe2\x81\xb7", "\xe2\x81\xb8", "\xe2\x81\xb9"};
    char digits[16];
    size_t o = (size_t)snprintf(buf, n, "10%s", e < 0 ? "\xe2\x81\xbb" : "");   /* superscript minus */
    snprintf(digits, sizeof digits, "%d", e < 0 ? -e : e);
    for (const char *d = digits; *d && o + 4 < n; d++) o += (size_t)snprintf(buf + o, n - o, "%s", sup[*d - '0']);
}

void fig_tick_label(double v, double step, char *buf, size_t n)
{
    if (step < 0) {
        int e = (int)lround(log10(v));
        if (e < -3 || e > 4) decade_label(e, buf, n);
        else snprintf(buf, n, "%.*f", e < 0 ? -e : 0, v);
        return;
    }
    if (step == 0 || fabs(v) >= 1e6 || step < 1e-4) snprintf(buf, n, "%.3g", v);
    else {
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        if (fabs(step * pow(10, dec) - round(step * pow(10, dec))) > 1e-6) dec++;   /* 2.5 steps */
        snprintf(buf, n, "%.*f", dec, v);
    }
    true_minus(buf, n);
}

/* ------------------------------------------------------------------------ */
/* Colours, markers, lines                                                  */

void fig_set_color(cairo_t *cr, fig_rgb c, double alpha)
{
    cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

void fig_marker(cairo_t *cr, int marker, double x, double y, double size)
{
    double r = size / 2;
    switch (((marker % FIG_NMARKERS) + FIG_NMARKERS) % FIG_NMARKERS) {
    case 0: cairo_new_sub_path(cr); cairo_arc(cr, x, y, r, 0, 2 * M_PI); break;
    case 1: cairo_rectangle(cr, x - 0.85 * r, y - 0.85 * r, 1.7 * r, 1.7 * r); break;
    case 2:
        cairo_move_to(cr, x, y - 1.15 * r);
        cairo_line_to(cr, x + r, y + 0.75 * r);
        cairo_line_to(cr, x - r, y + 0.75 * r);
        cairo_close_path(cr);
        break;
    case 3:
        cairo_move_to(cr, x, y - 1.2 * r);
        cairo_line_to(cr, x + r, y);
        cairo_line_to(cr, x, y + 1.2 * r);
        cairo_line_to(cr, x - r, y);
        cairo_close_path(cr);
        break;
    default:
        cairo_move_to(cr, x, y + 1.15 * r);
        cairo_line_to(cr, x + r, y - 0.75 * r);
        cairo_line_to(cr, x - r, y - 0.75 * r);
        cairo_close_path(cr);
        break;
    }
}

void fig_line_style(cairo_t *cr, int style, int dash_index)
{
    static const double dashed[] = {5, 3}, extra[3][4] = {{7, 2.5}, {1.5, 2}, {7, 2, 1.5, 2}};
    static const int extra_n[3] = {2, 2, 4};
    cairo_set_line_width(cr, style & FIG_THIN ? 0.7 : 1.6);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
    if (style & FIG_DASHED) cairo_set_dash(cr, dashed, 2, 0);
    else if (dash_index > 0) cairo_set_dash(cr, extra[(dash_index - 1) % 3], extra_n[(dash_index - 1) % 3], 0);
    else cairo_set_dash(cr, NULL, 0, 0);
}

/* ------------------------------------------------------------------------ */
/* Legend                                                                   */

typedef struct {
    double row_h, text_w, col_w;
    int rows, cols;
} legend_layout;

static void legend_plan(cairo_t *cr, const fig_legend_entry *e, int n, double max_h, legend_layout *l)
{
    l->row_h = 1.45 * fig_text_height(cr, FIG_SIZE_LEGEND);
    l->text_w = 0;
    for (int i = 0; i < n; i++) {
        double w = fig_text_width(cr, e[i].label, FIG_SIZE_LEGEND, 0);
        if (w > l->text_w) l->text_w = w;
    }
    if (l->text_w > LEGEND_TEXT_MAX) l->text_w = LEGEND_TEXT_MAX;
    l->rows = (int)((max_h - 2 * FIG_PAD) / l->row_h);
    if (l->rows < 1) l->rows = 1;
    if (l->rows > n) l->rows = n;
    l->cols = n ? (n + l->rows - 1) / l->rows : 0;
    l->col_w = LEGEND_SWATCH + 5 + l->text_w;
}

void fig_legend_measure(cairo_t *cr, const fig_legend_entry *e, int n, double max_h, double *w, double *h)
{
    legend_layout l;
    legend_plan(cr, e, n, max_h, &l);
    *w = n ? l.cols * l.col_w + (l.cols - 1) * 10 + 2 * FIG_PAD : 0;
    *h = n ? l.rows * l.row_h + 2 * FIG_PAD : 0;
}

static void legend_swatch(cairo_t *cr, const fig_legend_entry *e, double x, double y)
{
    if (e->band) {
        fig_set_color(cr, e->color, 0.22);
        cairo_rectangle(cr, x, y - 4, LEGEND_SWATCH, 8);
        cairo_fill(cr);
    }
    if (e->style & (FIG_LINES | FIG_DASHED) || !(e->style & FIG_MARKERS)) {
        fig_set_color(cr, e->color, 1);
        fig_line_style(cr, e->style, 0);
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x + LEGEND_SWATCH, y);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
    }
    if (e->marker >= 0) {
        fig_set_color(cr, e->color, 1);
        fig_marker(cr, e->marker, x + LEGEND_SWATCH / 2, y, 5.5);
        cairo_fill(cr);
    }
}

void fig_legend_draw(cairo_t *cr, const fig_legend_entry *e, int n, double x, double y, double max_h)
{
    if (!n) return;
    legend_layout l;
    double w, h;
    legend_plan(cr, e, n, max_h, &l);
    fig_legend_measure(cr, e, n, max_h, &w, &h);
    cairo_rectangle(cr, x + 0.5, y + 0.5, w - 1, h - 1);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
    cairo_set_line_width(cr, 0.6);
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
        double cx = x + FIG_PAD + (i / l.rows) * (l.col_w + 10);
        double cy = y + FIG_PAD + (i % l.rows + 0.5) * l.row_h;
        char text[TEXT_MAX];
        legend_swatch(cr, &e[i], cx, cy);
        fig_text_fit(cr, e[i].label, FIG_SIZE_LEGEND, 0, LEGEND_TEXT_MAX, text, sizeof text);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        fig_text(cr, cx + LEGEND_SWATCH + 5, cy, text, FIG_SIZE_LEGEND, 0, 0, 0.5, 0);
    }
}

/* ------------------------------------------------------------------------ */
/* Colour bar                                                               */

static int colorbar_ticks(double vmin, double vmax, double h, double *t, double *step)
{
    fig_scale s = {.lo = vmin, .hi = vmax};
    return fig_scale_ticks(&s, (int)(h / 30), t, step);
}

double fig_colorbar_width(cairo_t *cr, double vmin, double vmax, const char *label, double h)
{
    double t[FIG_MAX_TICKS], step, tw = 0;
    int n = colorbar_ticks(vmin, vmax, h, t, &step);
    for (int i = 0; i < n; i++) {
        char buf[64];
        fig_tick_label(t[i], step, buf, sizeof buf);
        double w = fig_text_width(cr, buf, FIG_SIZE_TICK, 0);
        if (w > tw) tw = w;
    }
    return FIG_PAD + COLORBAR_W + TICK_LEN + 2 + tw + (label ? 6 + fig_text_height(cr, FIG_SIZE_LABEL) : 0) + FIG_PAD;
}

void fig_colorbar_draw(cairo_t *cr, fig_rect r, double vmin, double vmax, int diverging, const char *label)
{
    double x = r.x + FIG_PAD, slice = r.h / COLORBAR_SLICES;
    for (int i = 0; i < COLORBAR_SLICES; i++) {
        fig_set_color(cr, fig_ramp((i + 0.5) / COLORBAR_SLICES, diverging), 1);
        cairo_rectangle(cr, x, r.y + r.h - (i + 1) * slice - 0.3, COLORBAR_W, slice + 0.6);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    cairo_set_line_width(cr, 0.6);
    cairo_rectangle(cr, x, r.y, COLORBAR_W, r.h);
    cairo_stroke(cr);
    double t[FIG_MAX_TICKS], step, tw = 0;
    int n = colorbar_ticks(vmin, vmax, r.h, t, &step);
    for (int i = 0; i < n; i++) {
        char buf[64];
        double y = r.y + r.h - (t[i] - vmin) / (vmax - vmin) * r.h;
        cairo_move_to(cr, x + COLORBAR_W, y);
        cairo_line_to(cr, x + COLORBAR_W + TICK_LEN, y);
        cairo_stroke(cr);
        fig_tick_label(t[i], step, buf, sizeof buf);
        fig_text(cr, x + COLORBAR_W + TICK_LEN + 2, y, buf, FIG_SIZE_TICK, 0, 0, 0.5, 0);
        double w = fig_text_width(cr, buf, FIG_SIZE_TICK, 0);
        if (w > tw) tw = w;
    }
    if (label) {
        char fit[TEXT_MAX];
        fig_text_fit(cr, label, FIG_SIZE_LABEL, 0, r.h, fit, sizeof fit);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        fig_text(cr, x + COLORBAR_W + TICK_LEN + 2 + tw + 6, r.y + r.h / 2, fit, FIG_SIZE_LABEL, 0, 0.5, 0, -M_PI / 2);
    }
}

/* ------------------------------------------------------------------------ */
/* Frame                                                                    */

/* Widest label of n ticks. */
static double ticks_width(cairo_t *cr, const double *t, int n, double step)
{
    double w = 0;
    for (int i = 0; i < n; i++) {
        char buf[64];
        fig_tick_label(t[i], step, buf, sizeof buf);
        double x = fig_text_width(cr, buf, FIG_SIZE_TICK, 0);
        if (x > w) w = x;
    }
    return w;
}

/* Ticks of s whose labels keep at least gap points apart along an axis of
 * length len (along_x: label widths count, else the label height). */
static int spaced_ticks(cairo_t *cr, fig_scale *s, double len, int along_x, double *t, double *step)
{
    int max_n = (int)(len / (along_x ? 45 : 30)) + 1, n = 0;
    for (; max_n >= 2; max_n--) {
        n = fig_scale_ticks(s, max_n, t, step);
        double size = along_x ? ticks_width(cr, t, n, *step) + 10 : 1.6 * fig_text_height(cr, FIG_SIZE_TICK);
        if (n < 2 || size * (n - 1) <= fabs(fig_scale_map(s, t[n - 1]) - fig_scale_map(s, t[0]))) break;
    }
    return n;
}

/* Categories: labels upright when they fit side by side, else read bottom
 * to top; every cat_every-th when even that crowds them (short labels stay
 * upright and are thinned out).  Returns the height they take below the
 * axis. */
static double category_layout(cairo_t *cr, fig_frame *f, double width, double max_h)
{
    double gap = width / (f->n_cats ? f->n_cats : 1), w = 0;
    for (int i = 0; i < f->n_cats; i++) {
        double x = fig_text_width(cr, f->cats[i] ? f->cats[i] : "", FIG_SIZE_TICK, 0);
        if (x > w) w = x;
    }
    double th = fig_text_height(cr, FIG_SIZE_TICK);
    int short_labels = w <= 1.5 * th;
    f->cats_rotated = w + 4 > gap && !short_labels;
    f->cat_every = (int)ceil((f->cats_rotated ? th : w + 4) / gap);
    if (f->cat_every < 1) f->cat_every = 1;
    f->cat_len = w < max_h ? w : max_h;
    return f->cats_rotated ? f->cat_len : th;
}

/* Expand the range of the axis with more room per unit so one unit is as
 * long on both. */
static void equal_aspect(fig_frame *f)
{
    double ux = (f->sx.hi - f->sx.lo) / f->plot.w, uy = (f->sy.hi - f->sy.lo) / f->plot.h;
    fig_scale *s = ux < uy ? &f->sx : &f->sy;
    double u = ux < uy ? uy : ux, len = ux < uy ? f->plot.w : f->plot.h, mid = (s->lo + s->hi) / 2;
    s->lo = mid - u * len / 2;
    s->hi = mid + u * len / 2;
}

void fig_frame_layout(cairo_t *cr, fig_frame *f, const fig_axes *ax, fig_rect r, double right)
{
    fig_scale sx0 = f->sx, sy0 = f->sy;
    double lh = fig_text_height(cr, FIG_SIZE_LABEL), th = fig_text_height(cr, FIG_SIZE_TICK);
    double top = FIG_PAD + (ax->title ? fig_text_height(cr, FIG_SIZE_TITLE) + FIG_PAD : 0);
    double bottom = FIG_PAD + (ax->xlabel ? lh + 4 : 0) + th + TICK_LEN + 3;
    for (int pass = 0; pass < 3; pass++) {
        f->sx = sx0;
        f->sy = sy0;
        f->plot.y = r.y + top;
        f->plot.h = r.h - top - bottom;
        double left = FIG_PAD + (ax->ylabel ? lh + 6 : 0) + TICK_LEN + 3;
        if (pass) left += ticks_width(cr, f->yt, f->nyt, f->ystep);
        f->plot.x = r.x + left;
        f->plot.w = r.w - left - right - FIG_PAD;
        if (f->plot.w < 10) f->plot.w = 10;
        if (f->plot.h < 10) f->plot.h = 10;
        if (ax->equal_aspect) equal_aspect(f);
        f->sx.p0 = f->plot.x;
        f->sx.p1 = f->plot.x + f->plot.w;
        f->sy.p0 = f->sy.flip ? f->plot.y : f->plot.y + f->plot.h;
        f->sy.p1 = f->sy.flip ? f->plot.y + f->plot.h : f->plot.y;
        f->nyt = spaced_ticks(cr, &f->sy, f->plot.h, 0, f->yt, &f->ystep);
        double below = f->cats ? category_layout(cr, f, f->plot.w, 0.3 * r.h)
                               : (f->nxt = spaced_ticks(cr, &f->sx, f->plot.w, 1, f->xt, &f->xstep), th);
        bottom = FIG_PAD + (ax->xlabel ? lh + 4 : 0) + below + TICK_LEN + 3;
    }
}

void fig_frame_clip(cairo_t *cr, const fig_frame *f)
{
    cairo_save(cr);
    cairo_rectangle(cr, f->plot.x, f->plot.y, f->plot.w, f->plot.h);
    cairo_clip(cr);
}

static void zero_lines(cairo_t *cr, const fig_frame *f)
{
    static const double dash[] = {3, 3};
    cairo_set_source_rgb(cr, 0.55, 0.55, 0.55);
    cairo_set_line_width(cr, 0.7);
    cairo_set_dash(cr, dash, 2, 0);
    if (!f->sx.log && f->sx.lo < 0 && f->sx.hi > 0) {
        double x = fig_scale_map(&f->sx, 0);
        cairo_move_to(cr, x, f->plot.y);
        cairo_line_to(cr, x, f->plot.y + f->plot.h);
    }
    if (!f->sy.log && f->sy.lo < 0 && f->sy.hi > 0) {
        double y = fig_scale_map(&f->sy, 0);
        cairo_move_to(cr, f->plot.x, y);
        cairo_line_to(cr, f->plot.x + f->plot.w, y);
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
}

static void grid(cairo_t *cr, const fig_frame *f)
{
    cairo_set_source_rgb(cr, 0.91, 0.91, 0.91);
    cairo_set_line_width(cr, 0.6);
    if (f->no_grid) return;
    for (int i = 0; i < f->nxt && !f->cats; i++) {
        double x = fig_scale_map(&f->sx, f->xt[i]);
        cairo_move_to(cr, x, f->plot.y);
        cairo_line_to(cr, x, f->plot.y + f->plot.h);
    }
    for (int i = 0; i < f->nyt; i++) {
        double y = fig_scale_map(&f->sy, f->yt[i]);
        cairo_move_to(cr, f->plot.x, y);
        cairo_line_to(cr, f->plot.x + f->plot.w, y);
    }
    cairo_stroke(cr);
}

static void x_tick_labels(cairo_t *cr, const fig_frame *f, double y)
{
    char buf[TEXT_MAX];
    for (int i = 0; i < (f->cats ? f->n_cats : f->nxt); i++) {
        double x = fig_scale_map(&f->sx, f->cats ? i : f->xt[i]);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        cairo_move_to(cr, x, y - TICK_LEN);
        cairo_line_to(cr, x, y);
        cairo_stroke(cr);
        if (f->cats && i % f->cat_every) continue;
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        if (!f->cats) {
            fig_tick_label(f->xt[i], f->xstep, buf, sizeof buf);
            fig_text(cr, x, y + 2, buf, FIG_SIZE_TICK, 0, 0.5, 0, 0);
        } else if (f->cats_rotated) {
            fig_text_fit(cr, f->cats[i] ? f->cats[i] : "", FIG_SIZE_TICK, 0, f->cat_len, buf, sizeof buf);
            fig_text(cr, x, y + 2, buf, FIG_SIZE_TICK, 0, 1, 0.5, -M_PI / 2);
        } else {
            fig_text(cr, x, y + 2, f->cats[i] ? f->cats[i] : "", FIG_SIZE_TICK, 0, 0.5, 0, 0);
        }
    }
}

static void y_tick_labels(cairo_t *cr, const fig_frame *f)
{
    char buf[64];
    for (int i = 0; i < f->nyt; i++) {
        double y = fig_scale_map(&f->sy, f->yt[i]);
        cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
        cairo_move_to(cr, f->plot.x - TICK_LEN, y);
        cairo_line_to(cr, f->plot.x, y);
        cairo_stroke(cr);
        fig_tick_label(f->yt[i], f->ystep, buf, sizeof buf);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        fig_text(cr, f->plot.x - TICK_LEN - 2, y, buf, FIG_SIZE_TICK, 0, 1, 0.5, 0);
    }
}

static void title_and_labels(cairo_t *cr, const fig_frame *f, const fig_axes *ax, fig_rect r)
{
    char buf[TEXT_MAX];
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (ax->title) fig_title(cr, ax->title, r.x + r.w / 2, r.y + FIG_PAD, FIG_SIZE_TITLE, r.w - 2 * FIG_PAD);
    if (ax->xlabel) {
        fig_text_fit(cr, ax->xlabel, FIG_SIZE_LABEL, 0, r.w - 2 * FIG_PAD, buf, sizeof buf);
        fig_text(cr, f->plot.x + f->plot.w / 2, r.y + r.h - FIG_PAD, buf, FIG_SIZE_LABEL, 0, 0.5, 1, 0);
    }
    if (ax->ylabel) {
        fig_text_fit(cr, ax->ylabel, FIG_SIZE_LABEL, 0, f->plot.h + 20, buf, sizeof buf);
        fig_text(cr, r.x + FIG_PAD, f->plot.y + f->plot.h / 2, buf, FIG_SIZE_LABEL, 0, 0.5, 0, -M_PI / 2);
    }
}

void fig_frame_box(cairo_t *cr, const fig_frame *f)
{
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    cairo_set_line_width(cr, 0.8);
    cairo_rectangle(cr, f->plot.x, f->plot.y, f->plot.w, f->plot.h);
    cairo_stroke(cr);
}

void fig_frame_draw(cairo_t *cr, const fig_frame *f, const fig_axes *ax, fig_rect r)
{
    grid(cr, f);
    if (ax->zero_lines) zero_lines(cr, f);
    fig_frame_box(cr, f);
    x_tick_labels(cr, f, f->plot.y + f->plot.h + TICK_LEN);
    y_tick_labels(cr, f);
    title_and_labels(cr, f, ax, r);
}
