/* draw.c — small drawing helpers shared by the panels: titles (marked
 * when the panel has the focus), clipped UTF-8 text and text drawn only
 * when it fits whole, token labels as shown (visible spaces, newlines and
 * tabs; tokenizer tokens of several characters), token names for legends
 * (a token's text, or an image token's row and column), token columns of
 * their labels' widths, and scrolling that keeps the selection in view. */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>
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

/* Columns of the n bytes at s (UTF-8; what cannot be decoded counts 1). */
static int text_cols(const char *s, size_t n)
{
    wchar_t wbuf[512];
    char buf[512];
    if (n >= sizeof buf) n = sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    size_t k = mbstowcs(wbuf, buf, 511);
    int cols = k == (size_t)-1 ? -1 : wcswidth(wbuf, k);
    return cols < 0 ? (int)n : cols;
}

int tui_draw_wrap(WINDOW *w, int y, int x, int maxw, int maxh, attr_t a, const char *s)
{
    int lines = 0;
    while (*s && lines < maxh && maxw > 0) {
        while (*s == ' ') s++;
        size_t end = 0, fit = 0;   /* bytes of the line: up to the last space that fits */
        while (s[end]) {
            size_t next = end;
            while (s[next] == ' ') next++;
            while (s[next] && s[next] != ' ') next++;
            if (text_cols(s, next) > maxw) break;
            fit = end = next;
        }
        if (!fit) {   /* one word wider than the line: cut */
            tui_draw_text(w, y + lines++, x, maxw, a, s);
            while (*s && *s != ' ') s++;
            continue;
        }
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)fit, s);
        tui_draw_text(w, y + lines++, x, maxw, a, line);
        s += fit;
    }
    return lines;
}

int tui_draw_first(WINDOW *w, int y, int x, int maxw, attr_t a, int n, const char *const *texts)
{
    for (int i = 0; i < n; i++) {
        int after = texts[i] ? tui_draw_fit(w, y, x, maxw, a, texts[i]) : -1;
        if (after >= 0) return after;
    }
    return -1;
}

/* fmt drawn clipped (fit 0, returns 0) or only whole (fit 1, as tui_draw_fit). */
static int draw_vfmt(WINDOW *w, int y, int x, int maxw, attr_t a, int fit, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    if (fit) return tui_draw_fit(w, y, x, maxw, a, buf);
    tui_draw_text(w, y, x, maxw, a, buf);
    return 0;
}

void tui_draw_fmt(WINDOW *w, int y, int x, int maxw, attr_t a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    draw_vfmt(w, y, x, maxw, a, 0, fmt, ap);
    va_end(ap);
}

int tui_draw_fmt_fit(WINDOW *w, int y, int x, int maxw, attr_t a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = draw_vfmt(w, y, x, maxw, a, 1, fmt, ap);
    va_end(ap);
    return r;
}

void tui_draw_number(WINDOW *w, int y, int x, int width, attr_t a, double v)
{
    char buf[48];
    for (int prec = 3; prec >= 1; prec--) {
        snprintf(buf, sizeof buf, "%*.*g", width, prec, v);
        if ((int)strlen(buf) <= width) break;
    }
    tui_draw_text(w, y, x, width, a, buf);
}

int tui_scroll_first(int sel, int n, int total)
{
    if (total <= n) return 0;
    int first = sel - n / 2;
    return first < 0 ? 0 : first > total - n ? total - n : first;
}

/* One character of a token as shown: space, newline and tab as visible
 * marks, other controls and invalid bytes as a dot; *adv gets the bytes
 * it took.  Returns its columns. */
static int visible_char(const char *s, size_t left, int utf8, char *out, size_t *adv)
{
    unsigned char b = (unsigned char)*s;
    static const struct { unsigned char byte; const char *u, *a; } marks[] = {
        {' ', "\u2423", "_"}, {'\n', "\u21b5", "$"}, {'\t', "\u2192", ">"}};
    *adv = 1;
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++)
        if (b == marks[i].byte) return snprintf(out, 8, "%s", utf8 ? marks[i].u : marks[i].a) > 0;
    if (b > ' ' && b < 127) return snprintf(out, 8, "%c", b);
    ucs4_t uc;
    int n = b >= 0x80 ? u8_mbtoucr(&uc, (const uint8_t *)s, left) : -1;
    int cw = n > 0 ? wcwidth((wchar_t)uc) : -1;
    if (utf8 && n > 0 && cw > 0) {
        *adv = (size_t)n;
        memcpy(out, s, (size_t)n);
        out[n] = 0;
        return cw;
    }
    if (n > 0) *adv = (size_t)n;   /* one mark for a whole character the locale cannot show */
    snprintf(out, 8, "%s", utf8 ? "\u00b7" : ".");
    return 1;
}

int tui_token_visible(const char *raw, int utf8, char *out, size_t n)
{
    size_t len = strlen(raw), used = 0;
    int cols = 0;
    out[0] = 0;
    if (!len) raw = "\x01", len = 1;   /* byte 0 (an empty label): a dot */
    for (size_t i = 0; i < len;) {
        char ch[8];
        size_t adv;
        int cw = visible_char(raw + i, len - i, utf8, ch, &adv);
        size_t k = strlen(ch);
        if (used + k + 1 > n) break;
        memcpy(out + used, ch, k + 1);
        used += k;
        cols += cw;
        i += adv;
    }
    return cols;
}

void tui_image_info_set(tui_image_info *i, const ssm_snapshot *s)
{
    i->index = s->image;
    i->label = s->image_label;
    i->pred = s->image_pred;
    i->patch = s->patch;
    snprintf(i->label_name, sizeof i->label_name, "%s", s->label_name);
    snprintf(i->pred_name, sizeof i->pred_name, "%s", s->pred_name);
}

void tui_tokens_set(tui_tokens *k, const ssm_snapshot *s, int utf8)
{
    k->T = s->T < SSM_SNAP_MAX_T ? s->T : SSM_SNAP_MAX_T;
    k->grid = s->images ? s->grid_cols : 0;
    for (int t = 0; t < k->T; t++) {
        int cols = k->grid ? 1 : tui_token_visible(s->label[t], utf8, k->vis[t], sizeof k->vis[t]);
        if (k->grid) snprintf(k->vis[t], sizeof k->vis[t], "%s", s->label[t]);
        k->w[t] = (unsigned char)(cols < 1 ? 1 : cols > TUI_TOKEN_COLS ? TUI_TOKEN_COLS : cols);
    }
}

const char *tui_token_name(const tui_tokens *k, int t)
{
    static char buf[4][64];
    static int next;
    char *b = buf[next++ % 4];
    if (t < 0 || t >= k->T) snprintf(b, sizeof buf[0], "-");
    else if (k->grid) snprintf(b, sizeof buf[0], "%s", k->vis[t]);
    else snprintf(b, sizeof buf[0], "'%s'", k->vis[t]);
    return b;
}

int tui_tokens_fit(const tui_tokens *k, int sel, int avail, int end_at_sel, int *first)
{
    if (k->T < 1 || avail < 1) {
        *first = 0;
        return 0;
    }
    sel = sel < 0 ? 0 : sel >= k->T ? k->T - 1 : sel;
    int lo = sel, hi = sel, used = k->w[sel];   /* tokens lo..hi fit in used columns */
    int left_share = end_at_sel ? avail : avail / 2;
    while (lo > 0 && used + k->w[lo - 1] <= left_share) used += k->w[--lo];
    while (!end_at_sel && hi + 1 < k->T && used + k->w[hi + 1] <= avail) used += k->w[++hi];
    while (lo > 0 && used + k->w[lo - 1] <= avail) used += k->w[--lo];   /* the end reached: fill leftwards */
    *first = lo;
    return hi - lo + 1;
}

void tui_tokens_draw(WINDOW *w, int y, int x, const tui_tokens *k, int first, int n, int sel)
{
    int wide = 0;
    for (int t = first; t < first + n; t++) wide |= k->w[t] > 1;
    for (int t = first; t < first + n; x += k->w[t++]) {
        attr_t a = t == sel ? tui_attr(TUI_C_SELECT) : wide && t % 2 ? tui_attr(TUI_C_DIM) : A_NORMAL;
        tui_draw_text(w, y, x, k->w[t], a, k->vis[t]);
    }
}

int tui_tokens_at(const tui_tokens *k, int first, int n, int x)
{
    for (int t = first; t < first + n && t < k->T; x -= k->w[t++])
        if (x < k->w[t]) return x >= 0 ? t : -1;
    return -1;
}

void tui_panel_title(tui_panel *p, int n, const char *const *titles)
{
    tui_draw_title(p->win, "");
    if (tui_draw_first(p->win, 0, 1, p->w - 2, tui_attr(TUI_C_TITLE), n, titles) < 0 && n > 0)
        tui_draw_text(p->win, 0, 1, p->w - 2, tui_attr(TUI_C_TITLE), titles[n - 1]);   /* the shortest, cut */
    if (p->focused) tui_draw_text(p->win, 0, 0, 1, tui_attr(TUI_C_SELECT), tui_utf8() ? "\u25b6" : ">");
}

int tui_draw_fit(WINDOW *w, int y, int x, int maxw, attr_t a, const char *s)
{
    wchar_t wbuf[512];
    size_t n = mbstowcs(wbuf, s, 511);
    int cols = n == (size_t)-1 ? (int)strlen(s) : wcswidth(wbuf, n);
    if (cols < 0) cols = (int)strlen(s);
    if (cols > maxw || x + cols > getmaxx(w)) return -1;
    tui_draw_text(w, y, x, cols, a, s);
    return x + cols;
}
