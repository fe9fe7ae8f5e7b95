/* actions.c — what keys do: prompts first, then the help screen, mouse
 * clicks, and the actions of the key table, which move the selection or
 * become engine commands (new models after a confirmation when training
 * would be lost; the inspected text, or an image classifier's test image). */
#include <stdlib.h>
#include <string.h>

#include "tui/app.h"
#include "tui/plot.h"

void tui_app_send(tui_app *app, const ssm_cmd *c)
{
    if (ssm_engine_send(app->eng, c)) tui_app_message(app, 1, "the engine is busy; try again");
}

void tui_app_save_and_stop(tui_app *app)
{
    ssm_cmd pause = {.kind = SSM_CMD_PAUSE}, save = {.kind = SSM_CMD_SAVE};
    ssm_engine_cancel(app->eng);   /* a running validation stops now */
    tui_app_send(app, &pause);     /* no step after the save */
    tui_app_send(app, &save);
}

void tui_app_selection_changed(tui_app *app)
{
    const ssm_snapshot *s = app->snap;
    tui_view *v = &app->view;
    int layer = v->layer < 1 ? 1 : v->layer;
    if (s->ready && (layer != s->attn_layer || v->channel != s->attn_channel || v->token != s->infl_token)) {
        ssm_cmd c = {.kind = SSM_CMD_SELECT, .layer = layer, .channel = v->channel, .token = v->token};
        tui_app_send(app, &c);
    }
    tui_app_panels_update(app);
}

/* ------------------------------------------------------------------------ */
/* Prompts                                                                  */

/* The image index typed at the prompt. */
static void image_accept(tui_app *app, const char *buf)
{
    char *end;
    long i = strtol(buf, &end, 10);
    if (end == buf || *end || i < 0 || i >= app->snap->n_images) {
        tui_app_message(app, 1, "'%s' is not a test image: 0..%d", buf, app->snap->n_images - 1);
        return;
    }
    ssm_cmd c = {.kind = SSM_CMD_IMAGE, .index = i};
    tui_app_send(app, &c);
}

static void prompt_accept(tui_app *app, tui_prompt *p)
{
    ssm_cmd c = {0};
    switch (p->ask) {
    case TUI_ASK_IMAGE: image_accept(app, p->buf); return;
    case TUI_ASK_TEXT: c.kind = SSM_CMD_TEXT; break;
    case TUI_ASK_LOAD: c.kind = SSM_CMD_LOAD; break;
    case TUI_ASK_SAVE: c.kind = SSM_CMD_SAVE; break;
    case TUI_ASK_NEW_MODEL:
        if (p->choice == 'y') tui_app_send(app, &p->cmd);
        return;
    case TUI_ASK_QUIT:
        if (p->choice == 'y') tui_app_save_and_stop(app);
        if (p->choice != 'c') app->quit = 1;
        return;
    }
    snprintf(c.arg, sizeof c.arg, "%s", p->buf);
    if ((c.kind == SSM_CMD_LOAD || c.kind == SSM_CMD_TEXT) && !c.arg[0]) return;
    tui_app_send(app, &c);
}

static void prompt_key(tui_app *app, int key, int is_wide)
{
    tui_prompt_result r = tui_prompt_key(&app->prompt, key, is_wide);
    if (r == TUI_PROMPT_MORE) return;
    tui_prompt p = app->prompt;
    app->prompt.kind = TUI_PROMPT_NONE;
    if (r == TUI_PROMPT_ACCEPT) prompt_accept(app, &p);
    else tui_app_message(app, 0, "cancelled");
}

/* ------------------------------------------------------------------------ */
/* Actions                                                                  */

static void new_model(tui_app *app, int scenario, int polarize, int reorder)
{
    const ssm_snapshot *s = app->snap;
    if (reorder != s->reorder && !s->images) {
        tui_app_message(app, 1, "reorder is for classifiers: a causal language model would see the future "
                                "(the ranking shows the order it would use)");
        return;
    }
    ssm_cmd c = {.kind = SSM_CMD_NEW_MODEL, .scenario = scenario, .polarize = polarize, .reorder = reorder};
    if (!s->dirty) {
        tui_app_send(app, &c);
        return;
    }
    char label[160];
    snprintf(label, sizeof label, "New model (scenario %s, polarize %s, reorder %s)? %ld unsaved steps are lost. [y/n]",
             ssm_scenario_name(scenario), ssm_polarize_name(polarize), ssm_reorder_name(reorder), s->step);
    app->prompt.cmd = c;
    tui_prompt_choice(&app->prompt, TUI_ASK_NEW_MODEL, label, "yn");
}

void tui_model_cycle(tui_action a, int *scenario, int *polarize, int *reorder)
{
    if (a == TUI_ACT_SCENARIO) *scenario = (*scenario + 1) % SSM_SCENARIO_COUNT;
    if (a == TUI_ACT_POLARIZE) *polarize = (*polarize + 1) % SSM_POLARIZE_COUNT;
    if (a == TUI_ACT_REORDER) *reorder = (*reorder + 1) % SSM_REORDER_COUNT;
}

/* The next scenario, polarization or reorder mode: a new model. */
static void model_cycle(tui_app *app, tui_action a)
{
    const ssm_snapshot *s = app->snap;
    int scenario = s->scenario, polarize = s->polarize, reorder = s->reorder;
    tui_model_cycle(a, &scenario, &polarize, &reorder);
    new_model(app, scenario, polarize, reorder);
}

static void ask_quit(tui_app *app)
{
    if (!app->snap->dirty) {
        app->quit = 1;
        return;
    }
    char label[160];
    snprintf(label, sizeof label, "Save the training (step %ld) to %s before quitting? [y]es [n]o [c]ancel",
             app->snap->step, app->snap->out);
    tui_prompt_choice(&app->prompt, TUI_ASK_QUIT, label, "ync");
}

static void sel_move(tui_app *app, int dlayer, int dtoken, int token_to)
{
    tui_view *v = &app->view;
    int T = app->snap->T, nl = app->snap->n_layer;
    v->layer += dlayer;
    v->layer = v->layer < 0 ? 0 : v->layer > nl ? nl : v->layer;
    v->token = token_to == -1 ? 0 : token_to == 1 ? T - 1 : v->token + dtoken;
    v->token = v->token < 0 ? 0 : v->token >= T ? T - 1 : v->token;
    tui_app_selection_changed(app);
}

static void channel_step(tui_app *app, int d)
{
    int E = app->snap->d_inner, c = app->view.channel + d;
    app->view.channel = c >= E ? -1 : c < -1 ? E - 1 : c;
    tui_app_selection_changed(app);
}

static void plot_cycle(tui_app *app)
{
    int m = app->view.plot_mode;
    if (!app->view.utf8) {
        tui_app_message(app, 0, "plots use ASCII: the locale is not UTF-8");
        return;
    }
    app->view.plot_mode = tui_plot_next(m);
    tui_app_message(app, 0, "plot style: %s", tui_plot_name(app->view.plot_mode));
    tui_app_selection_changed(app);
}

/* Edit the text, or pick an image classifier's test image. */
static void inspect_prompt(tui_app *app)
{
    const ssm_snapshot *s = app->snap;
    char buf[SSM_SNAP_MAX_T + 1], label[64];
    if (s->images) {
        snprintf(buf, sizeof buf, "%d", s->image);
        snprintf(label, sizeof label, "Test image (0..%d):", s->n_images - 1);
        tui_prompt_line(&app->prompt, TUI_ASK_IMAGE, label, buf, 0);
        return;
    }
    snprintf(buf, sizeof buf, "%.*s", s->T, (const char *)s->text);
    tui_prompt_line(&app->prompt, TUI_ASK_TEXT, "Inspect text:", buf, 0);
}

static void send_kind(tui_app *app, ssm_cmd_kind k)
{
    ssm_cmd c = {.kind = k};
    tui_app_send(app, &c);
}

static void cancel(tui_app *app)
{
    if (app->snap->running || app->snap->busy || app->snap->cmds_done < ssm_engine_sent(app->eng)) {
        ssm_engine_cancel(app->eng);
        tui_app_message(app, 0, "cancelling...");
    }
}

static void action(tui_app *app, tui_action a)
{
    const ssm_snapshot *s = app->snap;
    switch (a) {
    case TUI_ACT_NONE: return;
    case TUI_ACT_RUN: send_kind(app, SSM_CMD_TOGGLE); return;
    case TUI_ACT_STEP: send_kind(app, SSM_CMD_STEP); return;
    case TUI_ACT_VALIDATE: send_kind(app, SSM_CMD_VALIDATE); return;
    case TUI_ACT_CANCEL: cancel(app); return;
    case TUI_ACT_SCENARIO:
    case TUI_ACT_POLARIZE:
    case TUI_ACT_REORDER: model_cycle(app, a); return;
    case TUI_ACT_TEXT: inspect_prompt(app); return;
    case TUI_ACT_LOAD: tui_prompt_line(&app->prompt, TUI_ASK_LOAD, "Load checkpoint:", s->out, 1); return;
    case TUI_ACT_SAVE: tui_prompt_line(&app->prompt, TUI_ASK_SAVE, "Save checkpoint to:", s->out, 1); return;
    case TUI_ACT_LAYER_UP: sel_move(app, -1, 0, 0); return;
    case TUI_ACT_LAYER_DOWN: sel_move(app, 1, 0, 0); return;
    case TUI_ACT_TOKEN_LEFT: sel_move(app, 0, -1, 0); return;
    case TUI_ACT_TOKEN_RIGHT: sel_move(app, 0, 1, 0); return;
    case TUI_ACT_TOKEN_FIRST: sel_move(app, 0, 0, -1); return;
    case TUI_ACT_TOKEN_LAST: sel_move(app, 0, 0, 1); return;
    case TUI_ACT_CHANNEL_NEXT: channel_step(app, 1); return;
    case TUI_ACT_CHANNEL_PREV: channel_step(app, -1); return;
    case TUI_ACT_PLOT: plot_cycle(app); return;
    case TUI_ACT_REDRAW: clearok(curscr, TRUE); return;
    case TUI_ACT_HELP: app->help_open = 1; return;
    case TUI_ACT_QUIT: ask_quit(app); return;
    case TUI_ACT_COUNT: return;
    }
}

/* ------------------------------------------------------------------------ */
/* Keys and clicks                                                          */

static void mouse(tui_app *app)
{
    MEVENT ev;
    if (getmouse(&ev) != OK || !(ev.bstate & (BUTTON1_PRESSED | BUTTON1_CLICKED))) return;
    for (int i = 0; i < TUI_NPANELS; i++) {
        tui_panel *p = app->panels[i];
        if (!p->win || !p->cls->click || ev.y < p->y || ev.y >= p->y + p->h || ev.x < p->x || ev.x >= p->x + p->w)
            continue;
        int layer = app->view.layer, token = app->view.token;
        if (p->cls->click(p, ev.y - p->y, ev.x - p->x, &layer, &token)) {
            app->view.layer = layer;
            app->view.token = token;
            tui_app_selection_changed(app);
        }
        return;
    }
}

void tui_app_key(tui_app *app, int key, int is_wide)
{
    app->dirty = 1;
    if (app->prompt.kind) {
        prompt_key(app, key, is_wide);
        return;
    }
    if (app->help_open) {
        app->help_open = 0;
        return;
    }
    if (!is_wide && key == KEY_MOUSE) {
        mouse(app);
        return;
    }
    if (is_wide && key >= KEY_MIN) return;   /* non-ASCII text keys are not bound */
    tui_action a = tui_keymap_lookup(&app->km, key);
    if (!app->snap->ready && a != TUI_ACT_QUIT && a != TUI_ACT_HELP) return;
    if (app->too_small && a != TUI_ACT_QUIT && a != TUI_ACT_RUN && a != TUI_ACT_CANCEL && a != TUI_ACT_REDRAW) return;
    action(app, a);
}
