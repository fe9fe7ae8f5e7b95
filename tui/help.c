/* help.c — the `?` help screen: every action of the key table with its
 * current keys (after rebinding) and its help text (its brief form where
 * the whole does not fit), plus the mouse; in two columns when one does not
 * fit the terminal. */
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"
#include "tui/plot.h"

/* One action in a column of width w at (y, x): keys, name, help. */
static void help_entry(const tui_app *app, WINDOW *win, int y, int x, int w, const tui_key_entry *e)
{
    char keys[64];
    int kw = w < 60 ? 9 : 12, nw = 13;
    tui_keymap_describe(&app->km, e->action, keys, sizeof keys);
    tui_draw_text(win, y, x, kw - 1, tui_attr(TUI_C_SERIES1), keys);
    tui_draw_text(win, y, x + kw, nw - 1, tui_attr(TUI_C_DIM), e->name);
    const char *texts[2] = {e->help, e->brief};
    tui_draw_first(win, y, x + kw + nw, w - kw - nw - 1, A_NORMAL, 2, texts);
}

void tui_help_draw(const tui_app *app)
{
    int n, h = LINES - 2, w = COLS - 4;
    const tui_key_entry *t = tui_key_table(&n);
    if (h < 5 || w < 20) return;
    WINDOW *win = newwin(h, w, 1, 2);
    if (!win) return;
    werase(win);
    box(win, 0, 0);
    tui_draw_text(win, 0, 2, w - 4, tui_attr(TUI_C_TITLE), " keys (any key closes; rebind in ~/.config/ssmlab/keys or keys=FILE) ");
    int rows = h - 4, cols = n <= rows ? 1 : 2, per = (n + cols - 1) / cols, cw = (w - 4) / cols;
    for (int i = 0; i < n && i / per < cols && i % per < rows; i++)
        help_entry(app, win, 1 + i % per, 2 + (i / per) * cw, cw, &t[i]);
    const char *mouse[2] = {"mouse: a click on the heatmap, the ranking, the image or the attention selects that layer and token",
                            "mouse: a click selects a layer and token"};
    tui_draw_first(win, h - 3, 2, w - 4, tui_attr(TUI_C_DIM), 2, mouse);
    tui_draw_fmt(win, h - 2, 2, w - 4, tui_attr(TUI_C_DIM), "colours %s, plots %s, %dx%d", tui_colors_name(tui_colors_level()),
                 tui_plot_name(app->view.plot_mode), COLS, LINES);
    wnoutrefresh(win);
    delwin(win);
}
