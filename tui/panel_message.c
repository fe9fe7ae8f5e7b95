/* panel_message.c — the bottom line: the latest message (engine news,
 * errors, stderr lines) on the left and a key hint on the right.  The app
 * sets its content; prompts draw over it. */
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

typedef struct {
    char text[256], hint[128];
    int error;
} message_state;

void tui_message_panel_set(tui_panel *p, const char *text, int error, const char *hint)
{
    message_state *st = p->st;
    snprintf(st->text, sizeof st->text, "%s", text);
    snprintf(st->hint, sizeof st->hint, "%s", hint);
    st->error = error;
}

static void message_update(tui_panel *p, const tui_view *v)
{
    (void)p;
    (void)v;
}

static void message_draw(tui_panel *p)
{
    message_state *st = p->st;
    werase(p->win);
    int hw = (int)strlen(st->hint);
    if (hw > p->w / 2) hw = 0;
    tui_draw_text(p->win, 0, 0, p->w - hw - 1, st->error ? tui_attr(TUI_C_BAD) : A_NORMAL, st->text);
    if (hw) tui_draw_text(p->win, 0, p->w - hw, hw, tui_attr(TUI_C_DIM), st->hint);
}

const tui_panel_class tui_panel_message_class = {
    .name = "message", .state_size = sizeof(message_state), .update = message_update, .draw = message_draw,
};
