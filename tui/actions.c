/* actions.c — what keys do: prompts first, then the help screen, mouse
 * clicks, and the actions of the key table, which move the selection or
 * the focus, search the tokens, or become engine commands.  Nothing drops
 * or overwrites work without asking: a new model or a load asks when
 * unsaved training would be lost (a new model also when it replaces a
 * loaded checkpoint), and a save into a checkpoint this session did not
 * write asks before replacing it.  Training pauses while a prompt is open,
 * so the prompt shows the true step, and runs again when it closes. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tui/app.h"
#include "tui/plot.h"

void tui_app_send(tui_app *app, const ssm_cmd *c)
{
    if (ssm_engine_send(app->eng, c)) tui_app_message(app, 1, "the engine is busy; try again");
}

static void send_kind(tui_app *app, ssm_cmd_kind k)
{
    ssm_cmd c = {.kind = k};
    tui_app_send(app, &c);
}

void tui_app_save_and_stop(tui_app *app)
{
    ssm_engine_cancel(app->eng);   /* a running validation stops now */
    send_kind(app, SSM_CMD_PAUSE);  /* no step after the save */
    send_kind(app, SSM_CMD_SAVE);
}

void tui_app_selection_changed(tui_app *app)
{
    const ssm_snapshot *s = app->snap;
    tui_view *v = &app->view;
    int layer = tui_view_mixer(v->layer);
    if (s->ready && (layer != s->attn_layer || v->channel != s->attn_channel || v->token != s->infl_token)) {
        ssm_cmd c = {.kind = SSM_CMD_SELECT, .layer = layer, .channel = v->channel, .token = v->token};
        tui_app_send(app, &c);
    }
    tui_app_panels_update(app);
}

/* ------------------------------------------------------------------------ */
/* Opening prompts                                                          */

/* A prompt opened: training pauses until it closes. */
static void prompt_opened(tui_app *app)
{
    if (app->snap->running && !app->prompt_paused) {
        send_kind(app, SSM_CMD_PAUSE);
        app->prompt_paused = 1;
    }
    tui_app_prompt_relabel(app);
}

static void open_line(tui_app *app, tui_ask ask, const char *label, const char *init, int paths)
{
    tui_prompt_line(&app->prompt, ask, label, init, paths);
    prompt_opened(app);
}

/* A choice that sends c when accepted; its label comes from the snapshot. */
static void open_choice(tui_app *app, tui_ask ask, const ssm_cmd *c, const char *choices)
{
    app->prompt.cmd = *c;
    tui_prompt_choice(&app->prompt, ask, "", choices);
    prompt_opened(app);
}

/* Where the new model of a NEW_MODEL command goes (the engine names it alike). */
static void new_run_path(const tui_app *app, const ssm_cmd *c, char *out, size_t n)
{
    const ssm_snapshot *s = app->snap;
    int to[SSM_RUN_NSETTINGS] = {c->scenario, c->polarize, c->reorder};
    ssm_run_dir_path(out, n, s->base_parent, s->base_name, s->base_set, to);
}

/* What is lost or kept, after a question: it stays in view when the
 * question is shortened (tui_prompt_draw keeps the text from the last '?'). */
static void lost_note(const ssm_snapshot *s, char *buf, size_t n)
{
    if (s->dirty) snprintf(buf, n, " The unsaved training of %s (step %ld) is lost.", s->name, s->step);
    else if (s->inspecting) snprintf(buf, n, " %s stays as it is.", s->name);
    else buf[0] = 0;
}

void tui_app_prompt_relabel(tui_app *app)
{
    tui_prompt *p = &app->prompt;
    const ssm_snapshot *s = app->snap;
    char lost[160], path[RUN_PATH_MAX];
    if (p->kind != TUI_PROMPT_CHOICE) return;
    lost_note(s, lost, sizeof lost);
    switch (p->ask) {
    case TUI_ASK_NEW_MODEL:
        new_run_path(app, &p->cmd, path, sizeof path);
        snprintf(p->label, sizeof p->label, "New model (scenario %s, polarize %s, reorder %s) as %s?%s [y/n]",
                 ssm_scenario_name(p->cmd.scenario), ssm_polarize_name(p->cmd.polarize),
                 ssm_reorder_name(p->cmd.reorder), path, lost);
        return;
    case TUI_ASK_LOAD_DISCARD:
        snprintf(p->label, sizeof p->label, "Load %s?%s [y/n]", p->cmd.arg, lost);
        return;
    case TUI_ASK_OVERWRITE:
        snprintf(p->label, sizeof p->label, "%s holds a checkpoint this session did not write: replace it with step %ld? [y/n]",
                 p->cmd.arg, s->step);
        return;
    case TUI_ASK_QUIT:
        snprintf(p->label, sizeof p->label, "Save the training (step %ld) to %s before quitting? [y]es [n]o [c]ancel",
                 s->step, s->out);
        return;
    default: return;
    }
}

/* ------------------------------------------------------------------------ */
/* Accepting prompts                                                        */

/* A number typed at a prompt, lo..hi; -1 after a message when it is not. */
static long number_accept(tui_app *app, const char *buf, long lo, long hi, const char *what)
{
    char *end;
    long i = strtol(buf, &end, 10);
    if (end == buf || *end || i < lo || i > hi) {
        tui_app_message(app, 1, "'%s' is not %s: %ld..%ld", buf, what, lo, hi);
        return -1;
    }
    return i;
}

static void image_accept(tui_app *app, const char *buf)
{
    long i = number_accept(app, buf, 0, app->snap->n_images - 1, "a test image");
    ssm_cmd c = {.kind = SSM_CMD_IMAGE, .index = i};
    if (i >= 0) tui_app_send(app, &c);
}

/* "3": layer 3 (its output, row x4); "x3": residual row x3. */
static void layer_accept(tui_app *app, const char *buf)
{
    int nl = app->snap->n_layer;
    long row = buf[0] == 'x' ? number_accept(app, buf + 1, 0, nl, "a residual row x")
                             : number_accept(app, buf, 0, nl - 1, "a layer");
    if (row < 0) return;
    app->view.layer = (int)(buf[0] == 'x' ? row : row + 1);
    tui_app_selection_changed(app);
}

static void channel_accept(tui_app *app, const char *buf)
{
    char what[16];
    snprintf(what, sizeof what, "a %s", app->snap->attn_unit);
    long c = !buf[0] || !strcmp(buf, "mean") ? -1 : number_accept(app, buf, 0, app->snap->attn_units - 1, what);
    if (c < -1 || (c == -1 && buf[0] && strcmp(buf, "mean"))) return;
    app->view.channel = (int)c;
    tui_app_selection_changed(app);
}

static void token_accept(tui_app *app, const char *buf)
{
    long t = number_accept(app, buf, 0, app->snap->T - 1, "a token position");
    if (t < 0) return;
    app->view.token = (int)t;
    tui_app_selection_changed(app);
}

/* Token t's label contains needle (ASCII letters in either case), as
 * stored or as shown. */
static int token_matches(const tui_app *app, int t, const char *needle)
{
    char vis[64];
    tui_token_visible(app->snap->label[t], app->view.utf8, vis, sizeof vis);
    return strcasestr(app->snap->label[t], needle) || strcasestr(vis, needle);
}

/* The next token after the selection (wrapping) whose label contains the text. */
static void search_accept(tui_app *app, const char *buf)
{
    const ssm_snapshot *s = app->snap;
    if (buf[0]) snprintf(app->search, sizeof app->search, "%s", buf);
    if (!app->search[0]) return;
    int n = 0, found = -1;
    for (int t = 0; t < s->T; t++) n += token_matches(app, t, app->search);
    for (int k = 1; k <= s->T && found < 0; k++) {
        int t = (app->view.token + k) % s->T;
        if (token_matches(app, t, app->search)) found = t;
    }
    if (found < 0) {
        tui_app_message(app, 1, "no token contains '%s'", app->search);
        return;
    }
    app->view.token = found;
    tui_app_message(app, 0, "token %d of %d tokens containing '%s' (/ Enter: the next)", found, n, app->search);
    tui_app_selection_changed(app);
}

/* A path to save into: asks first when it holds someone else's checkpoint. */
static void save_accept(tui_app *app, const char *path)
{
    const ssm_snapshot *s = app->snap;
    ssm_cmd c = {.kind = SSM_CMD_SAVE};
    snprintf(c.arg, sizeof c.arg, "%s", path);
    if (path[0] && ssm_run_dir_foreign(path, s->out, s->out_written)) {
        c.force = 1;
        open_choice(app, TUI_ASK_OVERWRITE, &c, "yn");
        return;
    }
    tui_app_send(app, &c);
}

/* A checkpoint to load: asks first when unsaved training would be lost. */
static void load_accept(tui_app *app, const char *path)
{
    ssm_cmd c = {.kind = SSM_CMD_LOAD};
    snprintf(c.arg, sizeof c.arg, "%s", path);
    if (!path[0]) return;
    if (app->snap->dirty) open_choice(app, TUI_ASK_LOAD_DISCARD, &c, "yn");
    else tui_app_send(app, &c);
}

/* Returns 1 when training stays paused after the prompt (a load, a quit). */
static int prompt_accept(tui_app *app, tui_prompt *p)
{
    ssm_cmd c = {.kind = p->ask == TUI_ASK_TOKENS ? SSM_CMD_TOKENS : SSM_CMD_TEXT};
    int yes = p->choice == 'y';
    switch (p->ask) {
    case TUI_ASK_TEXT:
    case TUI_ASK_TOKENS:
        snprintf(c.arg, sizeof c.arg, "%s", p->buf);
        if (p->buf[0]) tui_app_send(app, &c);
        return 0;
    case TUI_ASK_IMAGE: image_accept(app, p->buf); return 0;
    case TUI_ASK_LAYER: layer_accept(app, p->buf); return 0;
    case TUI_ASK_CHANNEL: channel_accept(app, p->buf); return 0;
    case TUI_ASK_TOKEN: token_accept(app, p->buf); return 0;
    case TUI_ASK_SEARCH: search_accept(app, p->buf); return 0;
    case TUI_ASK_SAVE: save_accept(app, p->buf); return 0;
    case TUI_ASK_LOAD: load_accept(app, p->buf); return 1;
    case TUI_ASK_NEW_MODEL:
    case TUI_ASK_OVERWRITE:
        if (yes) tui_app_send(app, &p->cmd);
        return 0;
    case TUI_ASK_LOAD_DISCARD:
        if (yes) tui_app_send(app, &p->cmd);
        return yes;
    case TUI_ASK_QUIT:
        if (yes) tui_app_save_and_stop(app);
        app->quit_saved = yes;
        app->quit = p->choice != 'c';
        return app->quit;
    }
    return 0;
}

static void prompt_key(tui_app *app, int key, int is_wide)
{
    tui_prompt_result r = tui_prompt_key(&app->prompt, key, is_wide);
    if (r == TUI_PROMPT_MORE) return;
    tui_prompt p = app->prompt;
    int resume = app->prompt_paused, stay = 0;
    app->prompt.kind = TUI_PROMPT_NONE;
    app->prompt_paused = 0;
    if (r == TUI_PROMPT_ACCEPT) stay = prompt_accept(app, &p);
    else tui_app_message(app, 0, "cancelled");
    if (app->prompt.kind) app->prompt_paused = resume;   /* a second question: still paused */
    else if (resume && !stay && !app->quit) send_kind(app, SSM_CMD_RUN);
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
    int k = reorder != s->reorder ? SSM_RUN_REORDER : polarize != s->polarize ? SSM_RUN_POLARIZE : SSM_RUN_SCENARIO;
    if (s->setting_note[k][0]) {   /* refused before asking: nothing would be lost */
        tui_app_message(app, 1, "%s", s->setting_note[k]);
        return;
    }
    ssm_cmd c = {.kind = SSM_CMD_NEW_MODEL, .scenario = scenario, .polarize = polarize, .reorder = reorder};
    if (s->dirty || s->inspecting) open_choice(app, TUI_ASK_NEW_MODEL, &c, "yn");
    else tui_app_send(app, &c);
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
    ssm_cmd none = {.kind = SSM_CMD_QUIT};
    if (!app->snap->dirty) app->quit = 1;
    else open_choice(app, TUI_ASK_QUIT, &none, "ync");
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
    int E = app->snap->attn_units, c = app->view.channel + d;
    app->view.channel = c >= E ? -1 : c < -1 ? E - 1 : c;
    tui_app_selection_changed(app);
}

/* The export key: the panels as figures; the message line says where. */
static void export_figures(tui_app *app)
{
    char dir[RUN_PATH_MAX + 16];
    int files;
    if (!app->snap->ready) return;
    ssm_status st = tui_export_figures(app->snap, app->view.token, dir, sizeof dir, &files);
    if (st) tui_app_message(app, 1, "export: %s", ssm_last_error());
    else tui_app_message(app, 0, "wrote %d figures (SVG and PNG) to %s/", files, dir);
    tui_app_log(app, "%s", app->message);
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

static void flow_toggle(tui_app *app)
{
    app->view.depth_flow = !app->view.depth_flow;
    if (app->view.depth_flow)
        tui_app_message(app, 0, "depth panel: the flow of layer %d beside the depth curve",
                        tui_view_mixer(app->view.layer));
    else tui_app_message(app, 0, "depth panel: the depth curve");
    tui_app_panels_update(app);
}

/* The states and lens panels in the middle row, or depth, loss and spectrum. */
static void states_toggle(tui_app *app)
{
    app->states_view = !app->states_view;
    if (!tui_app_panel_shown(app, app->focus)) app->focus = app->states_view ? TUI_PANEL_STATES : TUI_PANEL_DEPTH;
    app->layout_dirty = 1;
    tui_app_message(app, 0, app->states_view ? "states and logit lens (i again: depth, loss and spectrum)"
                                             : "depth, loss and spectrum (i: states and logit lens)");
}

/* Ablate or pin the selected channel, the hidden-attention channel of the
 * selected layer (the engine toggles it), or clear every intervention. */
static void intervene(tui_app *app, ssm_cmd_kind k)
{
    const tui_view *v = &app->view;
    if (k != SSM_CMD_CLEAR && v->channel < 0) {
        tui_app_message(app, 1, "select a channel first: [ ] or # pick the hidden-attention channel of layer %d",
                        tui_view_mixer(v->layer));
        return;
    }
    if (k == SSM_CMD_CLEAR && !app->snap->iv_desc[0]) {
        tui_app_message(app, 0, "no ablations or pins to clear");
        return;
    }
    ssm_cmd c = {.kind = k, .layer = tui_view_mixer(v->layer), .channel = v->channel};
    tui_app_send(app, &c);
}

/* Edit the text (token ids when text does not fit the model), or pick an
 * image classifier's test image. */
static void inspect_prompt(tui_app *app)
{
    const ssm_snapshot *s = app->snap;
    char label[64];
    if (s->images) {
        snprintf(label, sizeof label, "Test image (0..%d):", s->n_images - 1);
        open_line(app, TUI_ASK_IMAGE, label, s->input, 0);
    } else if (s->text_ok) {
        open_line(app, TUI_ASK_TEXT, "Inspect text:", s->input, 0);
    } else {
        snprintf(label, sizeof label, "Token ids (0..%d; text does not fit this model):", s->vocab_size - 1);
        open_line(app, TUI_ASK_TOKENS, label, s->input, 0);
    }
}

/* Prompts that take a number (or a search text). */
static void goto_prompt(tui_app *app, tui_action a)
{
    const ssm_snapshot *s = app->snap;
    char label[96];
    if (a == TUI_ACT_SEARCH) {
        snprintf(label, sizeof label, "Search tokens%s%s%s:", app->search[0] ? " (Enter: '" : "", app->search,
                 app->search[0] ? "' again)" : "");
        open_line(app, TUI_ASK_SEARCH, label, "", 0);
    } else if (a == TUI_ACT_GOTO_LAYER) {
        snprintf(label, sizeof label, "Layer (0..%d; x0..x%d: a residual row):", s->n_layer - 1, s->n_layer);
        open_line(app, TUI_ASK_LAYER, label, "", 0);
    } else if (a == TUI_ACT_GOTO_CHANNEL) {
        const char *u = s->attn_unit[0] ? s->attn_unit : "channel";
        snprintf(label, sizeof label, "%c%s (0..%d, or mean):", toupper((unsigned char)u[0]), u + 1, s->attn_units - 1);
        open_line(app, TUI_ASK_CHANNEL, label, "", 0);
    } else {
        snprintf(label, sizeof label, "Token (0..%d):", s->T - 1);
        open_line(app, TUI_ASK_TOKEN, label, "", 0);
    }
}

/* Tab, S-Tab: the next (d = 1) or previous panel that is on the screen. */
static void focus_move(tui_app *app, int d)
{
    int f = app->focus;
    for (int k = 0; k < TUI_NPANELS; k++) {
        f = (f + d + TUI_NPANELS) % TUI_NPANELS;
        if (tui_panel_focusable(f) && tui_app_panel_shown(app, f)) break;
    }
    app->focus = f;
    app->layout_dirty = 1;
}

static void zoom_toggle(tui_app *app)
{
    app->zoom = !app->zoom;
    app->layout_dirty = 1;
    tui_app_message(app, 0, app->zoom ? "zoomed: %s (z again: all panels)" : "%s", app->zoom
                    ? app->panels[app->focus]->cls->name : "all panels");
}

static void load_prompt(tui_app *app)
{
    char dir[RUN_PATH_MAX + 1];
    ssm_run_dir_parent(dir, sizeof dir - 1, app->snap->loaded[0] ? app->snap->loaded : app->snap->out);
    if (strcmp(dir, "/")) strcat(dir, "/");
    open_line(app, TUI_ASK_LOAD, "Load checkpoint to inspect:", strcmp(dir, "./") ? dir : "", 1);
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
    case TUI_ACT_LOAD: load_prompt(app); return;
    case TUI_ACT_SAVE: open_line(app, TUI_ASK_SAVE, "Save checkpoint to:", app->snap->out, 1); return;
    case TUI_ACT_EXPORT: export_figures(app); return;
    case TUI_ACT_LAYER_UP: sel_move(app, -1, 0, 0); return;
    case TUI_ACT_LAYER_DOWN: sel_move(app, 1, 0, 0); return;
    case TUI_ACT_TOKEN_LEFT: sel_move(app, 0, -1, 0); return;
    case TUI_ACT_TOKEN_RIGHT: sel_move(app, 0, 1, 0); return;
    case TUI_ACT_TOKEN_FIRST: sel_move(app, 0, 0, -1); return;
    case TUI_ACT_TOKEN_LAST: sel_move(app, 0, 0, 1); return;
    case TUI_ACT_CHANNEL_NEXT: channel_step(app, 1); return;
    case TUI_ACT_CHANNEL_PREV: channel_step(app, -1); return;
    case TUI_ACT_SEARCH:
    case TUI_ACT_GOTO_LAYER:
    case TUI_ACT_GOTO_CHANNEL:
    case TUI_ACT_GOTO_TOKEN: goto_prompt(app, a); return;
    case TUI_ACT_FOCUS_NEXT: focus_move(app, 1); return;
    case TUI_ACT_FOCUS_PREV: focus_move(app, -1); return;
    case TUI_ACT_ZOOM: zoom_toggle(app); return;
    case TUI_ACT_PLOT: plot_cycle(app); return;
    case TUI_ACT_FLOW: flow_toggle(app); return;
    case TUI_ACT_STATES: states_toggle(app); return;
    case TUI_ACT_ABLATE: intervene(app, SSM_CMD_ABLATE); return;
    case TUI_ACT_PIN: intervene(app, SSM_CMD_PIN); return;
    case TUI_ACT_CLEAR: intervene(app, SSM_CMD_CLEAR); return;
    case TUI_ACT_REDRAW:
        clearok(curscr, TRUE);
        app->clear_gaps = 1;   /* what an overlay left between the panels goes too */
        return;
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
        app->clear_gaps = 1;   /* the help covered the gaps between panels */
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
