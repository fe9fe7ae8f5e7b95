/* colors.c — colour levels (truecolor, 256, 16, none), the role pairs and
 * the heat ramp (viridis stops, mapped to the xterm cube for 256 colours,
 * to blended background pairs for 16, to density characters for none). */
#include "tui/colors.h"

#include <langinfo.h>
#include <stdlib.h>
#include <string.h>

#define RAMP_PAIR0 32

static int level = TUI_COLOR_NONE;

static const unsigned char viridis[TUI_RAMP][3] = {
    {68, 1, 84},    {72, 40, 120},  {62, 74, 137},  {49, 104, 142}, {38, 130, 142},
    {31, 158, 137}, {53, 183, 121}, {109, 205, 89}, {180, 222, 44}, {253, 231, 37},
};
static const char density[TUI_RAMP + 1] = " .:-=+*#%@";
static const short ramp16[TUI_RAMP / 2] = {COLOR_BLUE, COLOR_CYAN, COLOR_GREEN, COLOR_YELLOW, COLOR_WHITE};

const char *tui_colors_name(int l)
{
    static const char *const names[TUI_COLOR_COUNT] = {"auto", "none", "16", "256", "truecolor"};
    return l >= 0 && l < TUI_COLOR_COUNT ? names[l] : "?";
}

int tui_colors_parse(const char *s)
{
    for (int l = 0; l < TUI_COLOR_COUNT; l++)
        if (!strcmp(s, tui_colors_name(l))) return l;
    return -1;
}

int tui_colors_level(void) { return level; }

static int detect(int requested)
{
    const char *nc = getenv("NO_COLOR");
    if ((nc && *nc) || requested == TUI_COLOR_NONE || !has_colors()) return TUI_COLOR_NONE;
    if (start_color() == ERR) return TUI_COLOR_NONE;
    int best = COLORS >= 0x1000000 ? TUI_COLOR_TRUE : COLORS >= 256 ? TUI_COLOR_256
             : COLORS >= 8 ? TUI_COLOR_16 : TUI_COLOR_NONE;
    return requested == TUI_COLOR_AUTO || requested > best ? best : requested;
}

/* A colour number for an RGB triple at the current level. */
static int rgb_color(const unsigned char c[3])
{
    if (level == TUI_COLOR_TRUE) return c[0] << 16 | c[1] << 8 | c[2];
    int r = (c[0] * 5 + 127) / 255, g = (c[1] * 5 + 127) / 255, b = (c[2] * 5 + 127) / 255;
    return 16 + 36 * r + 6 * g + b;
}

/* A basic colour (COLOR_*) at the current level: direct-colour terminals
 * take RGB values, not palette indices. */
static int basic_color(int c)
{
    static const int rgb[8] = {0x000000, 0xd75f5f, 0x5fd75f, 0xd7d75f, 0x5f87d7, 0xd75fd7, 0x5fd7d7, 0xd0d0d0};
    if (c < 0 || level != TUI_COLOR_TRUE) return c;
    return rgb[c & 7];
}

static void roles_setup(void)
{
    static const short fg[TUI_C_COUNT] = {-1, COLOR_CYAN, COLOR_BLACK, COLOR_YELLOW, COLOR_CYAN,
                                          COLOR_MAGENTA, COLOR_GREEN, COLOR_RED, COLOR_BLACK, COLOR_BLUE};
    static const short bg[TUI_C_COUNT] = {-1, -1, COLOR_CYAN, -1, -1, -1, -1, -1, COLOR_YELLOW, -1};
    for (int r = 1; r < TUI_C_COUNT; r++) init_extended_pair(r, basic_color(fg[r]), basic_color(bg[r]));
}

static void ramp_setup(void)
{
    for (int i = 0; i < TUI_RAMP; i++) {
        if (level == TUI_COLOR_16) {
            short lo = ramp16[i / 2], hi = ramp16[i / 2 + (i / 2 + 1 < TUI_RAMP / 2)];
            init_pair((short)(RAMP_PAIR0 + i), hi, lo);
        } else {
            int c = rgb_color(viridis[i]);
            init_extended_pair(RAMP_PAIR0 + i, c, c);
        }
    }
}

int tui_colors_setup(int requested)
{
    level = detect(requested);
    if (level == TUI_COLOR_NONE) return level;
    use_default_colors();
    roles_setup();
    ramp_setup();
    return level;
}

short tui_pair(tui_role r) { return level == TUI_COLOR_NONE ? 0 : (short)r; }

attr_t tui_attr(tui_role r)
{
    static const attr_t mono[TUI_C_COUNT] = {A_NORMAL, A_BOLD, A_REVERSE, A_BOLD, A_NORMAL,
                                             A_DIM, A_BOLD, A_BOLD | A_UNDERLINE, A_REVERSE, A_DIM};
    static const attr_t extra[TUI_C_COUNT] = {0, A_BOLD, 0, A_BOLD, 0, 0, A_BOLD, A_BOLD, 0, 0};
    if (level == TUI_COLOR_NONE) return mono[r];
    return extra[r] | COLOR_PAIR(r);
}

int tui_ramp_index(double v, double lo, double hi)
{
    if (!(hi > lo)) return TUI_RAMP / 2;
    int i = (int)((v - lo) / (hi - lo) * TUI_RAMP);
    return i < 0 ? 0 : i >= TUI_RAMP ? TUI_RAMP - 1 : i;
}

int tui_utf8(void)
{
    static int utf8 = -1;
    if (utf8 < 0) utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
    return utf8;
}

void tui_ramp_cell(int i, cchar_t *out)
{
    wchar_t ch[2] = {L' ', 0};
    if (i < 0) i = 0;
    if (i >= TUI_RAMP) i = TUI_RAMP - 1;
    if (level == TUI_COLOR_NONE) {
        ch[0] = (wchar_t)density[i];
        setcchar(out, ch, A_NORMAL, 0, NULL);
        return;
    }
    if (level == TUI_COLOR_16 && i % 2) ch[0] = tui_utf8() ? L'\u2592' : L':';
    int pair = RAMP_PAIR0 + i;
    setcchar(out, ch, A_NORMAL, (short)pair, &pair);
}
