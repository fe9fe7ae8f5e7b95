/* panel_hints.c — the key hint bar on the last line (htop's function-key
 * bar): the keys of the main actions as "KEY word" pairs from the key
 * table (after rebinding), or the keys of an open prompt or the help.
 * Always on the screen, also at 80x24 and before any message. */
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

typedef struct {
    char text[256];
} hints_state;

static void hints_update(tui_panel *p, const tui_view *v)
{
    hints_state *st = p->st;
    snprintf(st->text, sizeof st->text, "%s", v->hints ? v->hints : "");
}

/* The keys reversed, the words plain: "space run  n step ...". */
static void hints_draw(tui_panel *p)
{
    hints_state *st = p->st;
    werase(p->win);
    int x = 0;
    const char *s = st->text;
    while (*s && x < p->w) {
        size_t gap = strspn(s, " "), key = strcspn(s + gap, " ");
        x += (int)gap;
        s += gap;
        char word[64];
        snprintf(word, sizeof word, "%.*s", (int)(key < sizeof word ? key : sizeof word - 1), s);
        int after = tui_draw_fit(p->win, 0, x, p->w - x, tui_attr(TUI_C_STATUS), word);
        if (after < 0) break;
        x = after;
        s += key;
        size_t sp = strspn(s, " "), w = strcspn(s + sp, " ");   /* the word after the key, in plain text */
        if (sp == 1 && w) {
            snprintf(word, sizeof word, " %.*s", (int)(w < sizeof word - 2 ? w : sizeof word - 2), s + 1);
            if ((after = tui_draw_fit(p->win, 0, x, p->w - x, tui_attr(TUI_C_DIM), word)) < 0) break;
            x = after;
            s += 1 + w;
        }
    }
}

const tui_panel_class tui_panel_hints_class = {
    .name = "hints", .state_size = sizeof(hints_state), .update = hints_update, .draw = hints_draw,
};
