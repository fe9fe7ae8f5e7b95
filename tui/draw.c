/* draw.c — small drawing helpers shared by the panels: titles, clipped
 * UTF-8 text, one-column labels for byte tokens, token names for legends
 * (a character, or an image token's row and column), and scrolling that
 * keeps the selection in view. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "tui/app.h"
#include "tui/colors.h"

void tui_draw_title(WINDOW *w, const char *title)
{
    int width = getmaxx(w);
    cchar_t line;
    wchar_t ch[2] = {tui_utf8() ? L'\u2500' : L'-', 0};
    setcchar(&line, ch, tui_attr(TUI_C_DIM) & ~A_COLOR, tui_pair(TUI_C_DIM), NULL);
    mvwhline_set(w, 0, 0, &line, width);
    tui_draw_text(w, 0, 1, width - 2, tui_attr(TUI_C_TITLE), title);
}

void tui_draw_text(WINDOW *w, int y, int x, int maxw, attr_t a, const char *s)
{
    mbstate_t ps;
    memset(&ps, 0, sizeof ps);
    int col = 0, maxx = getmaxx(w);
    if (y < 0 || y >= getmaxy(w)) return;
    if (maxw > maxx - x) maxw = maxx - x;
    wattrset(w, a);
    while (*s && col < maxw) {
        wchar_t wc;
        size_t n = mbrtowc(&wc, s, MB_CUR_MAX, &ps);
        if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
            memset(&ps, 0, sizeof ps);
            wc = L'?';
            n = 1;
        }
        int cw = wcwidth(wc);
        if (cw < 0) { wc = L'?'; cw = 1; }
        if (col + cw > maxw) break;
        mvwaddnwstr(w, y, x + col, &wc, 1);
        col += cw;
        s += n;
    }
    wattrset(w, A_NORMAL);
}

void tui_draw_fmt(WINDOW *w, int y, int x, int maxw, attr_t a, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    tui_draw_text(w, y, x, maxw, a, buf);
}

int tui_scroll_first(int sel, int n, int total)
{
    if (total <= n) return 0;
    int first = sel - n / 2;
    return first < 0 ? 0 : first > total - n ? total - n : first;
}

const char *tui_token_label(unsigned char b, int utf8)
{
    static char one[256][2];
    if (b >= ' ' && b < 127) {
        one[b][0] = (char)b;
        return one[b];
    }
    if (b == '\n') return utf8 ? "\u21b5" : "$";
    if (b == '\t') return utf8 ? "\u2192" : ">";
    return utf8 ? "\u00b7" : ".";
}

const char *tui_token_name(const unsigned char *text, int grid_cols, int t, int utf8)
{
    static char buf[4][24];
    static int k;
    char *b = buf[k++ % 4];
    if (grid_cols > 0) snprintf(b, sizeof buf[0], "y%dx%d", t / grid_cols, t % grid_cols);
    else snprintf(b, sizeof buf[0], "'%s'", tui_token_label(text[t], utf8));
    return b;
}
