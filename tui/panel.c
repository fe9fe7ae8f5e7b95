/* panel.c — panels as a class: the table of the app's panel classes in
 * layout order, and the one constructor (panel and zeroed state, NULL when
 * out of memory) and destructor every panel kind shares. */
#include <stdlib.h>

#include "tui/app.h"

const tui_panel_class *const tui_panel_classes[TUI_NPANELS] = {
    [TUI_PANEL_STATUS] = &tui_panel_status_class,     [TUI_PANEL_HEATMAP] = &tui_panel_heatmap_class,
    [TUI_PANEL_DEPTH] = &tui_panel_depth_class,       [TUI_PANEL_LOSS] = &tui_panel_loss_class,
    [TUI_PANEL_SPECTRUM] = &tui_panel_spectrum_class, [TUI_PANEL_RANK] = &tui_panel_rank_class,
    [TUI_PANEL_ATTN] = &tui_panel_attn_class,         [TUI_PANEL_MESSAGE] = &tui_panel_message_class,
};

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
