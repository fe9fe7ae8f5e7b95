/* panel.c — panels as a class: the table of the app's panel classes in
 * layout order (which of them take the focus), the one constructor (panel
 * and zeroed state, NULL when out of memory) and destructor every panel
 * kind shares, and the layer a selected residual row belongs to. */
#include <stdlib.h>

#include "tui/app.h"

const tui_panel_class *const tui_panel_classes[TUI_NPANELS] = {
    [TUI_PANEL_STATUS] = &tui_panel_status_class,     [TUI_PANEL_HEATMAP] = &tui_panel_heatmap_class,
    [TUI_PANEL_DEPTH] = &tui_panel_depth_class,       [TUI_PANEL_LOSS] = &tui_panel_loss_class,
    [TUI_PANEL_SPECTRUM] = &tui_panel_spectrum_class, [TUI_PANEL_STATES] = &tui_panel_states_class,
    [TUI_PANEL_LENS] = &tui_panel_lens_class,         [TUI_PANEL_RANK] = &tui_panel_rank_class,
    [TUI_PANEL_HISTORY] = &tui_panel_history_class,   [TUI_PANEL_IMAGE] = &tui_panel_image_class,
    [TUI_PANEL_ATTN] = &tui_panel_attn_class,
    [TUI_PANEL_MESSAGE] = &tui_panel_message_class,   [TUI_PANEL_HINTS] = &tui_panel_hints_class,
};

int tui_panel_focusable(int i)
{
    return i > TUI_PANEL_STATUS && i < TUI_PANEL_MESSAGE;
}

int tui_view_mixer(int row)
{
    return row > 0 ? row - 1 : 0;
}

tui_panel *tui_panel_new(const tui_panel_class *c)
{
    tui_panel *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->cls = c;
    p->st = calloc(1, c->state_size);
    if (!p->st) {
        free(p);
        return NULL;
    }
    return p;
}

void tui_panel_free(tui_panel *p)
{
    if (!p) return;
    if (p->win) delwin(p->win);
    free(p->st);
    free(p);
}
