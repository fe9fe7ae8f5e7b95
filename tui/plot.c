/* plot.c — the sub-cell pixel canvas: Braille, quadrant-block and ASCII
 * glyphs, Bresenham lines, scaled series, and drawing into a window. */
#include "tui/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *tui_plot_name(int mode)
{
    static const char *const names[TUI_PLOT_COUNT] = {"auto", "braille", "blocks", "ascii"};
    return mode >= 0 && mode < TUI_PLOT_COUNT ? names[mode] : "?";
}

int tui_plot_parse(const char *s)
{
    for (int m = 0; m < TUI_PLOT_COUNT; m++)
        if (!strcmp(s, tui_plot_name(m))) return m;
    return -1;
}

int tui_plot_resolve(int requested, int utf8)
{
    if (!utf8) return TUI_PLOT_ASCII;
    return requested == TUI_PLOT_AUTO ? TUI_PLOT_BRAILLE : requested;
}

int tui_plot_next(int mode)
{
    return mode + 1 < TUI_PLOT_COUNT ? mode + 1 : TUI_PLOT_BRAILLE;
}

void tui_canvas_init(tui_canvas *c, int mode, int w, int h)
{
    c->mode = mode;
    c->sx = mode == TUI_PLOT_ASCII ? 1 : 2;
    c->sy = mode == TUI_PLOT_BRAILLE ? 4 : 2;
    c->w = w < 0 ? 0 : w > TUI_CANVAS_MAX_W ? TUI_CANVAS_MAX_W : w;
    c->h = h < 0 ? 0 : h > TUI_CANVAS_MAX_H ? TUI_CANVAS_MAX_H : h;
    for (int y = 0; y < c->h * c->sy; y++) memset(c->px[y], 0, (size_t)c->w * c->sx);
}

int tui_canvas_pw(const tui_canvas *c) { return c->w * c->sx; }
int tui_canvas_ph(const tui_canvas *c) { return c->h * c->sy; }

void tui_canvas_set(tui_canvas *c, int px, int py, int series)
{
    if (px < 0 || py < 0 || px >= tui_canvas_pw(c) || py >= tui_canvas_ph(c)) return;
    if (c->px[py][px] < series + 1) c->px[py][px] = (unsigned char)(series + 1);
}

void tui_canvas_line(tui_canvas *c, int x0, int y0, int x1, int y1, int series)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (int guard = 0; guard < 4 * (TUI_CANVAS_MAX_W + TUI_CANVAS_MAX_H) * 4; guard++) {
        tui_canvas_set(c, x0, y0, series);
        if (x0 == x1 && y0 == y1) return;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

static int scale(double v, double lo, double hi, int n)
{
    if (!(hi > lo)) return n / 2;
    double f = (v - lo) / (hi - lo);
    int i = (int)lround(f * (n - 1));
    return i < -1 ? -1 : i > n ? n : i;
}

void tui_canvas_series(tui_canvas *c, const double *xs, const double *ys, int n, double xlo,
                       double xhi, double ylo, double yhi, int series, int connect)
{
    int pw = tui_canvas_pw(c), ph = tui_canvas_ph(c), have = 0, px0 = 0, py0 = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(xs[i]) || !isfinite(ys[i])) {
            have = 0;
            continue;
        }
        int px = scale(xs[i], xlo, xhi, pw), py = ph - 1 - scale(ys[i], ylo, yhi, ph);
        if (connect && have) tui_canvas_line(c, px0, py0, px, py, series);
        else tui_canvas_set(c, px, py, series);
        px0 = px;
        py0 = py;
        have = 1;
    }
}

wchar_t tui_canvas_glyph(int mode, unsigned bits)
{
    static const unsigned char braille_bit[8] = {0x01, 0x08, 0x02, 0x10, 0x04, 0x20, 0x40, 0x80};
    static const wchar_t quad[16] = {L' ', L'\u2598', L'\u259D', L'\u2580', L'\u2596', L'\u258C',
                                     L'\u259E', L'\u259B', L'\u2597', L'\u259A', L'\u2590', L'\u259C',
                                     L'\u2584', L'\u2599', L'\u259F', L'\u2588'};
    static const char ascii[4] = {' ', '\'', '.', ':'};
    if (mode == TUI_PLOT_BRAILLE) {
        unsigned v = 0;
        for (int i = 0; i < 8; i++)
            if (bits & (1u << i)) v |= braille_bit[i];
        return v ? (wchar_t)(0x2800 + v) : L' ';
    }
    if (mode == TUI_PLOT_BLOCKS) return quad[bits & 15];
    return (wchar_t)ascii[bits & 3];
}

/* Bits (row-major within the cell) and the top series of cell (cy, cx). */
static unsigned cell_bits(const tui_canvas *c, int cy, int cx, int *series)
{
    unsigned bits = 0;
    int top = 0;
    for (int ry = 0; ry < c->sy; ry++)
        for (int rx = 0; rx < c->sx; rx++) {
            int v = c->px[cy * c->sy + ry][cx * c->sx + rx];
            if (v) bits |= 1u << (ry * c->sx + rx);
            if (v > top) top = v;
        }
    *series = top;
    return bits;
}

void tui_canvas_draw(const tui_canvas *c, WINDOW *win, int y, int x, const tui_role *roles)
{
    for (int cy = 0; cy < c->h; cy++)
        for (int cx = 0; cx < c->w; cx++) {
            int s;
            unsigned bits = cell_bits(c, cy, cx, &s);
            if (!bits) continue;
            wchar_t g[2] = {tui_canvas_glyph(c->mode, bits), 0};
            cchar_t cc;
            tui_role r = roles[s - 1];
            setcchar(&cc, g, tui_attr(r) & ~A_COLOR, tui_pair(r), NULL);
            mvwadd_wch(win, y + cy, x + cx, &cc);
        }
}
