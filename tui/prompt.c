/* prompt.c — modal prompts on the bottom line: a line editor (UTF-8,
 * Backspace, C-u, Tab path completion) and one-key choices such as
 * "save before quitting? [y/n/c]". */
#include <curses.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistr.h>
#include <wchar.h>

#include "tui/app.h"
#include "tui/colors.h"

#define CTRL(c) ((c) & 0x1f)

/* A fresh prompt of a kind; the command a confirmation sends is kept. */
static void prompt_open(tui_prompt *p, tui_prompt_kind kind, tui_ask ask, const char *label)
{
    ssm_cmd keep = p->cmd;
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->ask = ask;
    p->cmd = keep;
    snprintf(p->label, sizeof p->label, "%s", label);
}

void tui_prompt_line(tui_prompt *p, tui_ask ask, const char *label, const char *init, int paths)
{
    prompt_open(p, TUI_PROMPT_LINE, ask, label);
    p->paths = paths;
    snprintf(p->buf, sizeof p->buf, "%s", init ? init : "");
}

void tui_prompt_choice(tui_prompt *p, tui_ask ask, const char *label, const char *choices)
{
    prompt_open(p, TUI_PROMPT_CHOICE, ask, label);
    snprintf(p->choices, sizeof p->choices, "%s", choices);
}

/* Where the character before end starts (buf <= end): one byte back in
 * invalid UTF-8, end itself at buf. */
static const char *char_before(const char *buf, const char *end)
{
    ucs4_t uc;
    const uint8_t *p = u8_prev(&uc, (const uint8_t *)end, (const uint8_t *)buf);
    return p ? (const char *)p : end > buf ? end - 1 : end;
}

static void backspace(char *buf)
{
    char *end = buf + strlen(buf);
    end[char_before(buf, end) - end] = 0;
}

/* The longest tail of s of whole characters within room bytes. */
static const char *tail_within(const char *s, size_t room)
{
    const char *end = s + strlen(s), *t = end;
    while (t > s) {
        const char *prev = char_before(s, t);
        if ((size_t)(end - prev) > room) break;
        t = prev;
    }
    return t;
}

static void append_wide(char *buf, size_t cap, int wc)
{
    char mb[8];
    mbstate_t ps;
    memset(&ps, 0, sizeof ps);
    size_t n = wcrtomb(mb, (wchar_t)wc, &ps);
    size_t len = strlen(buf);
    if (n == (size_t)-1 || len + n + 1 > cap) return;
    memcpy(buf + len, mb, n);
    buf[len + n] = 0;
}

static tui_prompt_result choice_key(tui_prompt *p, int key)
{
    if (key == 27 || key == CTRL('g') || key == '\n' || key == '\r' || key == KEY_ENTER) return TUI_PROMPT_CANCEL;
    if (key > 0 && key < 128) {
        int k = key >= 'A' && key <= 'Z' ? key - 'A' + 'a' : key;
        if (strchr(p->choices, k)) {
            p->choice = k;
            return TUI_PROMPT_ACCEPT;
        }
    }
    return TUI_PROMPT_MORE;
}

tui_prompt_result tui_prompt_key(tui_prompt *p, int key, int is_wide)
{
    if (p->kind == TUI_PROMPT_CHOICE) return choice_key(p, key);
    p->note[0] = 0;
    if (key == '\n' || key == '\r' || key == KEY_ENTER) return TUI_PROMPT_ACCEPT;
    if (key == 27 || key == CTRL('g')) return TUI_PROMPT_CANCEL;
    if (key == KEY_BACKSPACE || key == 127 || key == 8) backspace(p->buf);
    else if (key == CTRL('u')) p->buf[0] = 0;
    else if (key == '\t' && p->paths) tui_complete_path(p->buf, sizeof p->buf, p->note, sizeof p->note);
    else if (is_wide && key >= ' ' && key != 127) append_wide(p->buf, sizeof p->buf, key);
    return TUI_PROMPT_MORE;
}

/* A question that does not fit loses the middle of its text, never its
 * end (from the last '?': the question mark and the answers). */
static void choice_label_draw(const tui_prompt *p, WINDOW *w, int width)
{
    const char *q = strrchr(p->label, '?');
    if (tui_draw_fit(w, 0, 0, width, tui_attr(TUI_C_TITLE), p->label) >= 0 || !q) {
        if (!q) tui_draw_text(w, 0, 0, width, tui_attr(TUI_C_TITLE), p->label);
        return;
    }
    int tail = (int)strlen(q) + 1, head = width - tail;
    tui_draw_text(w, 0, 0, head > 0 ? head : 0, tui_attr(TUI_C_TITLE), p->label);
    tui_draw_text(w, 0, getcurx(w), width, tui_attr(TUI_C_TITLE), tui_utf8() ? "\u2026" : "~");
    tui_draw_text(w, 0, getcurx(w), width, tui_attr(TUI_C_TITLE), q);
}

void tui_prompt_draw(const tui_prompt *p, WINDOW *w)
{
    int width = getmaxx(w);
    werase(w);
    if (p->kind == TUI_PROMPT_CHOICE) {
        choice_label_draw(p, w, width);
        return;
    }
    tui_draw_text(w, 0, 0, width, tui_attr(TUI_C_TITLE), p->label);
    int x = getcurx(w) + 1;
    /* show the end of a long buffer */
    const char *s = tail_within(p->buf, width > x + 2 ? (size_t)(width - x - 2) : 0);
    tui_draw_text(w, 0, x, width - x - 1, A_NORMAL, s);
    int cx = getcurx(w);
    tui_draw_text(w, 0, cx, 1, A_REVERSE, " ");
    if (p->note[0]) tui_draw_text(w, 0, cx + 2, width - cx - 2, tui_attr(TUI_C_DIM), p->note);
}

/* ------------------------------------------------------------------------ */
/* Path completion                                                          */

static int is_dir(const char *dir, const char *name)
{
    char path[RUN_PATH_MAX * 2];
    struct stat sb;
    snprintf(path, sizeof path, "%s%s", dir, name);
    return !stat(path, &sb) && S_ISDIR(sb.st_mode);
}

static size_t common_prefix(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    return i;
}

static void expand_home(char *buf, size_t cap)
{
    const char *home = getenv("HOME");
    if (buf[0] != '~' || (buf[1] && buf[1] != '/') || !home) return;
    char tmp[RUN_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s%s", home, buf + 1);
    snprintf(buf, cap, "%s", tmp);
}

void tui_complete_path(char *buf, size_t cap, char *note, size_t ncap)
{
    expand_home(buf, cap);
    char dir[RUN_PATH_MAX], best[256] = "";
    const char *slash = strrchr(buf, '/'), *base = slash ? slash + 1 : buf;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - buf + 1) : 0, buf);
    DIR *d = opendir(*dir ? dir : ".");
    if (!d) { snprintf(note, ncap, "(no such directory)"); return; }
    size_t nb = strlen(base), nlen = 0;
    int matches = 0;
    note[0] = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, base, nb) || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (e->d_name[0] == '.' && base[0] != '.') continue;
        if (!matches++) snprintf(best, sizeof best, "%s", e->d_name);
        else best[common_prefix(best, e->d_name)] = 0;
        if (nlen + strlen(e->d_name) + 2 < ncap)
            nlen += snprintf(note + nlen, ncap - nlen, "%s%s ", e->d_name, is_dir(*dir ? dir : "./", e->d_name) ? "/" : "");
    }
    closedir(d);
    if (!matches) { snprintf(note, ncap, "(no match)"); return; }
    size_t dl = strlen(dir);
    snprintf(buf + dl, cap - dl, "%s", best);
    if (matches == 1) {
        if (is_dir(*dir ? dir : "./", best) && strlen(buf) + 1 < cap) strcat(buf, "/");
        note[0] = 0;
    }
}
