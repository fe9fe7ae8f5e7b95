/* panel_message.c — the message line above the key hint bar: the latest
 * message (engine news, errors, stderr lines).  The app sets its content;
 * prompts draw over it. */
#include <string.h>

#include "tui/app.h"
#include "tui/colors.h"

typedef struct {
    char text[256];
    int error;
} message_state;

void tui_message_panel_set(tui_panel *p, const char *text, int error)
{
    message_state *st = p->st;
    snprintf(st->text, sizeof st->text, "%s", text);
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
    tui_draw_text(p->win, 0, 0, p->w, st->error ? tui_attr(TUI_C_BAD) : A_NORMAL, st->text);
}

const tui_panel_class tui_panel_message_class = {
    .name = "message", .state_size = sizeof(message_state), .update = message_update, .draw = message_draw,
};
