/* help.c — the `?` help screen: every action of the key table with its
 * current keys (after rebinding) and its help text, plus the mouse. */
#include <string.h>

#include "app.h"
#include "colors.h"
#include "plot.h"

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
    int rows = h - 4;
    for (int i = 0; i < n && i < rows; i++) {
        char keys[64];
        tui_keymap_describe(&app->km, t[i].action, keys, sizeof keys);
        tui_draw_text(win, 1 + i, 2, 12, tui_attr(TUI_C_SERIES1), keys);
        tui_draw_text(win, 1 + i, 14, 13, tui_attr(TUI_C_DIM), t[i].name);
        tui_draw_text(win, 1 + i, 27, w - 29, A_NORMAL, t[i].help);
    }
    tui_draw_text(win, h - 3, 2, w - 4, tui_attr(TUI_C_DIM),
                  "mouse: a click on the heatmap, the ranking or the attention selects that layer and token");
    tui_draw_fmt(win, h - 2, 2, w - 4, tui_attr(TUI_C_DIM), "colours %s, plots %s, %dx%d", tui_colors_name(tui_colors_level()),
                 tui_plot_name(app->view.plot_mode), COLS, LINES);
    wnoutrefresh(win);
    delwin(win);
}
