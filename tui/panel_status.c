/* panel_status.c — the status line: what the engine is doing (training,
 * paused, inspecting a loaded checkpoint, busy), the run's name (the
 * loaded checkpoint's while inspecting), scenario, reorder and polarize
 * settings, step, loss (and a classifier's validation accuracy), tokens/s
 * and threads; shorter forms on narrower terminals.  Ablations and pins,
 * while any are set, follow in their own colour ("ablate 0:3, pin
 * 1:2:*=0"), cut at the right edge rather than left out. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "tui/app.h"
#include "tui/colors.h"

typedef struct {
    char line[512];
    char iv[300];    /* the interventions ("" = none) */
    int line_w;
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
    if (s->inspecting) return utf8 ? "\u25cb inspecting" : "o inspecting";
    return utf8 ? "\u2016 paused  " : "|| paused  ";
}

/* The activity as one symbol, for the shorter forms. */
static const char *activity_symbol(const ssm_snapshot *s, int utf8)
{
    if (s->busy) return activity(s, utf8);
    if (s->running) return utf8 ? "\u25b6" : ">";
    if (s->inspecting) return utf8 ? "\u25cb" : "o";
    return utf8 ? "\u2016" : "||";
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

/* The status line in five forms, longest first; the first that fits is
 * shown (the fifth, name and step alone, only to leave room for the
 * interventions). */
static void status_forms(const ssm_snapshot *s, int utf8, char form[5][512])
{
    const char *sep = utf8 ? " \u2502 " : " | ", *sym = activity_symbol(s, utf8);
    const char *sc = ssm_scenario_name(s->scenario), *re = ssm_reorder_name(s->reorder), *po = ssm_polarize_name(s->polarize);
    char rate[16], loss[32], val[48], l3[16], v3[16];
    fmt_rate(rate, sizeof rate, s->tok_per_s);
    snprintf(loss, sizeof loss, isfinite(s->loss) ? "%.4f" : "-", s->loss);
    snprintf(val, sizeof val, s->val_step >= 0 ? "%.4f" : "-", s->val_loss);
    if (s->images && s->val_step >= 0) snprintf(val, sizeof val, "%.4f acc %.1f%%", s->val_loss, 100 * s->val_acc);
    snprintf(l3, sizeof l3, isfinite(s->loss) ? "%.3f" : "-", s->loss);
    snprintf(v3, sizeof v3, s->val_step >= 0 ? "%.3f" : "-", s->val_loss);
    snprintf(form[0], 512, " %s%s%s%sscenario %s%sreorder %s%spolarize %s%sstep %ld/%d%s%sloss %s%sval %s%s%s tok/s%s%d threads",
             activity(s, utf8), sep, s->name, sep, sc, sep, re, sep, po, sep, s->step, s->total_steps,
             s->dirty ? " unsaved" : "", sep, loss, sep, val, sep, rate, sep, s->threads);
    snprintf(form[1], 512, " %s %s%sscen %s%sreord %s%spolar %s%s%ld/%d%s%sloss %s val %s%s%s tok/s%s%d thr",
             s->inspecting && !s->busy ? activity(s, utf8) : sym,   /* a loaded history's losses leave room for it */
             s->name, sep, sc, sep, re, sep, po, sep, s->step, s->total_steps, s->dirty ? "*" : "", sep, l3, v3, sep,
             rate, sep, s->threads);
    snprintf(form[2], 512, " %s %s%sscen %s reord %s polar %s%s%ld/%d%s%sloss %s val %s", sym, s->name, sep, sc, re,
             po, sep, s->step, s->total_steps, s->dirty ? "*" : "", sep, l3, v3);
    snprintf(form[3], 512, " %s %s%sscen %s reord %s polar %s%s%ld%s", sym, s->name, sep, sc, re, po, sep, s->step,
             s->dirty ? "*" : "");
    snprintf(form[4], 512, " %s %s%s%ld%s", sym, s->name, sep, s->step, s->dirty ? "*" : "");
}

static void status_update(tui_panel *p, const tui_view *v)
{
    status_state *st = p->st;
    char form[5][512];
    status_forms(v->snap, v->utf8, form);
    st->iv[0] = 0;
    if (v->snap->iv_desc[0])
        snprintf(st->iv, sizeof st->iv, "%s%s ", v->utf8 ? " \u2502 intervened: " : " | intervened: ", v->snap->iv_desc);
    int k = 0, ivw = text_width(st->iv);
    while (k < (ivw ? 4 : 3) && text_width(form[k]) + ivw > p->w) k++;
    snprintf(st->line, sizeof st->line, "%s", form[k]);
    st->line_w = text_width(st->line);
    st->unsaved = v->snap->dirty;
}
static void status_draw(tui_panel *p)
{
    status_state *st = p->st;
    wbkgdset(p->win, ' ' | tui_attr(TUI_C_STATUS));
    werase(p->win);
    tui_draw_text(p->win, 0, 0, p->w, tui_attr(TUI_C_STATUS), st->line);
    if (st->iv[0] && st->line_w < p->w)
        tui_draw_text(p->win, 0, st->line_w, p->w - st->line_w, tui_attr(TUI_C_BAD) | A_REVERSE, st->iv);
}

const tui_panel_class tui_panel_status_class = {
    .name = "status", .state_size = sizeof(status_state), .update = status_update, .draw = status_draw,
};
