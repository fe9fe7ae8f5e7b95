/* panel_status.c — the status line: model, scenario, reorder and polarize
 * settings, step, loss (and a classifier's validation accuracy), tokens/s,
 * threads, and what the engine is doing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "tui/app.h"
#include "tui/colors.h"

typedef struct {
    char line[512];
    int unsaved;
} status_state;

static void fmt_rate(char *buf, size_t n, double r)
{
    if (r >= 1e6) snprintf(buf, n, "%.1fM", r / 1e6);
    else if (r >= 1e3) snprintf(buf, n, "%.1fk", r / 1e3);
    else snprintf(buf, n, "%.0f", r);
}

static const char *activity(const ssm_snapshot *s, int utf8)
{
    static char buf[64];
    if (!s->ready) return "starting";
    if (s->busy) {
        snprintf(buf, sizeof buf, "%s%s (Esc cancels)", s->busy_what, utf8 ? "\u2026" : "...");
        return buf;
    }
    if (s->running) return utf8 ? "\u25b6 training" : "> training";
    return utf8 ? "\u2016 paused  " : "|| paused  ";
}

static int text_width(const char *s)
{
    wchar_t w[512];
    size_t n = mbstowcs(w, s, 511);
    if (n == (size_t)-1) return (int)strlen(s);
    w[n] = 0;
    int cols = wcswidth(w, n);
    return cols < 0 ? (int)n : cols;
}

static void status_update(tui_panel *p, const tui_view *v)
{
    status_state *st = p->st;
    const ssm_snapshot *s = v->snap;
    const char *sep = v->utf8 ? " \u2502 " : " | ";
    char rate[16], loss[32], val[32], head[160];
    fmt_rate(rate, sizeof rate, s->tok_per_s);
    snprintf(loss, sizeof loss, isfinite(s->loss) ? "%.4f" : "-", s->loss);
    snprintf(val, sizeof val, s->val_step >= 0 ? "%.4f" : "-", s->val_loss);
    if (s->images && s->val_step >= 0) snprintf(val, sizeof val, "%.4f acc %.1f%%", s->val_loss, 100 * s->val_acc);
    snprintf(head, sizeof head, "%s%sscenario %s%sreorder %s%spolarize %s%sstep %ld/%d%s", s->name, sep,
             ssm_scenario_name(s->scenario), sep, ssm_reorder_name(s->reorder), sep, ssm_polarize_name(s->polarize),
             sep, s->step, s->total_steps, s->dirty ? " unsaved" : "");
    snprintf(st->line, sizeof st->line, " %s%s%s%sloss %s%sval %s%s%s tok/s%s%d threads", activity(s, v->utf8),
             sep, head, sep, loss, sep, val, sep, rate, sep, s->threads);
    if (text_width(st->line) > p->w) {   /* the short form: a symbol for the activity, fewer digits */
        const char *sym = s->busy ? activity(s, v->utf8) : s->running ? (v->utf8 ? "\u25b6" : ">")
                                                                      : (v->utf8 ? "\u2016" : "||");
        snprintf(loss, sizeof loss, isfinite(s->loss) ? "%.3f" : "-", s->loss);
        snprintf(val, sizeof val, s->val_step >= 0 ? "%.3f" : "-", s->val_loss);
        snprintf(head, sizeof head, "%s%sscen %s%sreord %s%spolar %s%s%ld/%d%s", s->name, sep,
                 ssm_scenario_name(s->scenario), sep, ssm_reorder_name(s->reorder), sep,
                 ssm_polarize_name(s->polarize), sep, s->step, s->total_steps, s->dirty ? "*" : "");
        snprintf(st->line, sizeof st->line, " %s %s%sloss %s val %s%s%s tok/s%s%d thr", sym, head, sep, loss, val,
                 sep, rate, sep, s->threads);
    }
    st->unsaved = s->dirty;
}

static void status_draw(tui_panel *p)
{
    status_state *st = p->st;
    wbkgdset(p->win, ' ' | tui_attr(TUI_C_STATUS));
    werase(p->win);
    tui_draw_text(p->win, 0, 0, p->w, tui_attr(TUI_C_STATUS), st->line);
}

const tui_panel_class tui_panel_status_class = {
    .name = "status", .state_size = sizeof(status_state), .update = status_update, .draw = status_draw,
};
