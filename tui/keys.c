/* keys.c — the TUI's key table, key names, the keymap with rebinding from
 * a keys file, and the man page's key list generated from the same table. */
#include "tui/keys.h"

#include <curses.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/bound.h"

#define CTRL(c) ((c) & 0x1f)
#define ESC 27

/* action, name, help, brief, hint word and rank, keys */
static const tui_key_entry table[] = {
    {TUI_ACT_RUN, "run", "Start or pause training (a loaded checkpoint trains as a new run beside it).",
     "Start/pause", "run", 3, {' '}},
    {TUI_ACT_STEP, "step", "Take one training step (pauses training).", "One step", "step", 4, {'n'}},
    {TUI_ACT_VALIDATE, "validate", "Validate on the whole validation split now.", "Validate now", NULL, 0, {'v'}},
    {TUI_ACT_CANCEL, "cancel", "Cancel a validation or a long measurement (training goes on), else pause training; close a prompt.",
     "Cancel/pause", NULL, 0, {ESC, CTRL('g')}},
    {TUI_ACT_SCENARIO, "scenario", "Cycle the scenario: default, positive, negative, mixed (a new run named after it; asks first).",
     "Next scenario", NULL, 0, {'s'}},
    {TUI_ACT_POLARIZE, "polarize", "Cycle polarization: none, zero, one, both (a new run named after it; asks first).",
     "Next polarize", NULL, 0, {'p'}},
    {TUI_ACT_REORDER, "reorder", "Cycle token reordering off, hard, soft (image classifiers; a new run named after it; asks first).",
     "Next reorder", NULL, 0, {'r'}},
    {TUI_ACT_TEXT, "text", "Edit the inspected text (token ids when text does not fit the model), or pick the test image of an image classifier.",
     "Edit input", "input", 5, {'e'}},
    {TUI_ACT_LOAD, "load", "Load a checkpoint to inspect it (path prompt, Tab completes; asks first when unsaved training would be lost).",
     "Load, inspect", "load", 10, {'o'}},
    {TUI_ACT_SAVE, "save", "Save a checkpoint (path prompt; asks before replacing a checkpoint this session did not write).",
     "Save", "save", 9, {'w'}},
    {TUI_ACT_EXPORT, "export", "Write the panels as figures, SVG and PNG, into the run's directory under figures/ (./figures/ before the run has one).",
     "Save figures", NULL, 0, {'x'}},
    {TUI_ACT_LAYER_UP, "layer-up", "Select the layer above (its hidden attention).", "Layer up", NULL, 0, {'k', KEY_UP}},
    {TUI_ACT_LAYER_DOWN, "layer-down", "Select the layer below (its hidden attention).", "Layer down", NULL, 0, {'j', KEY_DOWN}},
    {TUI_ACT_TOKEN_LEFT, "token-left", "Select the previous token (its depth curve and influence).", "Prev. token", NULL, 0, {'h', KEY_LEFT}},
    {TUI_ACT_TOKEN_RIGHT, "token-right", "Select the next token (its depth curve and influence).", "Next token", NULL, 0, {'l', KEY_RIGHT}},
    {TUI_ACT_TOKEN_FIRST, "token-first", "Select the first token.", "First token", NULL, 0, {'g', KEY_HOME}},
    {TUI_ACT_TOKEN_LAST, "token-last", "Select the last token.", "Last token", NULL, 0, {'G', KEY_END}},
    {TUI_ACT_CHANNEL_NEXT, "channel-next", "Hidden attention of the next channel, a head of a Mamba-2 model (after the last: their mean).",
     "Next ch./head", NULL, 0, {']'}},
    {TUI_ACT_CHANNEL_PREV, "channel-prev", "Hidden attention of the previous channel (Mamba-2: head).", "Prev. ch/head", NULL, 0, {'['}},
    {TUI_ACT_SEARCH, "search", "Select the next token whose label contains the typed text (an empty line repeats the search).",
     "Search tokens", "search", 6, {'/'}},
    {TUI_ACT_GOTO_LAYER, "goto-layer", "Select a layer by its number as ssmlab inspect counts them, 0 the first (x0 to xN: a residual-stream row).",
     "Go to layer", NULL, 0, {':'}},
    {TUI_ACT_GOTO_CHANNEL, "goto-channel", "Select a hidden-attention channel (Mamba-2: head) by its number, 0 the first (mean: their mean).",
     "Go to ch/head", NULL, 0, {'#'}},
    {TUI_ACT_GOTO_TOKEN, "goto-token", "Select a token by its position, 0 the first.", "Go to token", NULL, 0, {'@'}},
    {TUI_ACT_FOCUS_NEXT, "focus-next", "Move the focus to the next panel.", "Next panel", "panel", 7, {'\t'}},
    {TUI_ACT_FOCUS_PREV, "focus-prev", "Move the focus to the previous panel.", "Prev. panel", NULL, 0, {KEY_BTAB}},
    {TUI_ACT_ZOOM, "zoom", "Zoom the focused panel to the whole screen, or back.", "Zoom panel", "zoom", 8, {'z'}},
    {TUI_ACT_PLOT, "plot", "Cycle the plot style Braille, blocks, ASCII.", "Plot style", NULL, 0, {'m'}},
    {TUI_ACT_FLOW, "flow", "Show in the depth panel the flow of the selected layer (depth as time, ssmlab inspect --flow) beside the depth curve, or the depth curve alone (a model without the flow: why).",
     "Depth/flow", NULL, 0, {'f'}},
    {TUI_ACT_STATES, "states", "Show in the middle row the states (||h_t|| per layer and token, the memory horizons of the selected layer) and the logit lens of the selected token (a model without the states: why), or depth, loss and spectrum again.",
     "States/lens", "states", 11, {'i'}},
    {TUI_ACT_ABLATE, "ablate", "Ablate the selected channel (the hidden-attention channel of the selected layer): its states held at zero in every measurement, never in training; again to let it go (a model without interventions: why).",
     "Ablate chan.", NULL, 0, {'a'}},
    {TUI_ACT_PIN, "pin", "Pin A = 0 for every state of the selected channel (one-polarized: it never forgets) in every measurement, never in training; again to unpin (a model without interventions: why).",
     "Pin A = 0", NULL, 0, {'P'}},
    {TUI_ACT_CLEAR, "clear", "Clear every ablation and pin: the panels measure the model as trained again.",
     "Clear interv.", NULL, 0, {'c'}},
    {TUI_ACT_REDRAW, "redraw", "Redraw the screen.", "Redraw", NULL, 0, {CTRL('l')}},
    {TUI_ACT_HELP, "help", "Show or hide the key help.", "This help", "help", 1, {'?', KEY_F(1)}},
    {TUI_ACT_QUIT, "quit", "Quit (offers to save unsaved training).", "Quit", "quit", 2, {'q'}},
};
#define NTABLE ((int)(sizeof table / sizeof table[0]))

const tui_key_entry *tui_key_table(int *n)
{
    *n = NTABLE;
    return table;
}

void tui_keymap_default(tui_keymap *km)
{
    memset(km, 0, sizeof *km);
    for (int i = 0; i < NTABLE; i++) memcpy(km->keys[table[i].action], table[i].keys, sizeof table[i].keys);
}

/* Enter arrives as '\n' (curses' nl mode), '\r' (C-m, raw or nonl mode)
 * or KEY_ENTER (the keypad's): one key, '\n', in the table and in lookups. */
static int key_norm(int key)
{
    return key == '\r' || key == KEY_ENTER ? '\n' : key;
}

tui_action tui_keymap_lookup(const tui_keymap *km, int key)
{
    key = key_norm(key);
    for (int a = 1; a < TUI_ACT_COUNT; a++)
        for (int i = 0; i < TUI_KEYS_PER_ACTION && km->keys[a][i]; i++)
            if (key_norm(km->keys[a][i]) == key) return (tui_action)a;
    return TUI_ACT_NONE;
}

/* ------------------------------------------------------------------------ */
/* Key names                                                                */

static const struct {
    const char *name;
    int key;
} named[] = {
    {"space", ' '}, {"Enter", '\n'}, {"Tab", '\t'}, {"S-Tab", KEY_BTAB}, {"Esc", ESC}, {"Backspace", KEY_BACKSPACE},
    {"Delete", KEY_DC}, {"Up", KEY_UP}, {"Down", KEY_DOWN}, {"Left", KEY_LEFT},
    {"Right", KEY_RIGHT}, {"Home", KEY_HOME}, {"End", KEY_END}, {"PgUp", KEY_PPAGE},
    {"PgDn", KEY_NPAGE},
};
#define NNAMED ((int)(sizeof named / sizeof named[0]))

int tui_key_parse(const char *s)
{
    for (int i = 0; i < NNAMED; i++)
        if (!strcmp(s, named[i].name)) return named[i].key;
    if (s[0] == 'F' && s[1] >= '1' && s[1] <= '9') {
        char *end;
        long f = strtol(s + 1, &end, 10);
        if (!*end && f >= 1 && f <= 12) return KEY_F((int)f);
    }
    if (s[0] == 'C' && s[1] == '-' && s[2] >= 'a' && s[2] <= 'z' && !s[3]) return key_norm(CTRL(s[2]));
    if (s[0] > ' ' && s[0] < 127 && !s[1]) return s[0];
    return -1;
}

void tui_key_name(int key, char *buf, size_t n)
{
    key = key_norm(key);
    for (int i = 0; i < NNAMED; i++)
        if (named[i].key == key) {
            snprintf(buf, n, "%s", named[i].name);
            return;
        }
    if (key >= KEY_F(1) && key <= KEY_F(12)) snprintf(buf, n, "F%d", key - KEY_F0);
    else if (key >= 1 && key <= 26) snprintf(buf, n, "C-%c", 'a' + key - 1);
    else if (key > ' ' && key < 127) snprintf(buf, n, "%c", key);
    else snprintf(buf, n, "key-%d", key);
}

void tui_keymap_describe(const tui_keymap *km, tui_action a, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < TUI_KEYS_PER_ACTION && km->keys[a][i]; i++) {
        char name[16];
        tui_key_name(km->keys[a][i], name, sizeof name);
        len += snprintf(buf + len, len < n ? n - len : 0, "%s%s", i ? ", " : "", name);
        if (len >= n) return;
    }
    if (!buf[0]) snprintf(buf, n, "(unbound)");
}

/* "KEY word" pieces of the hint entries with rank <= max_rank; their width. */
static int hints_write(const tui_keymap *km, int max_rank, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < NTABLE; i++) {
        const tui_key_entry *e = &table[i];
        if (!e->hint || e->rank > max_rank || !km->keys[e->action][0]) continue;
        char key[16];
        tui_key_name(km->keys[e->action][0], key, sizeof key);
        int k = snprintf(buf + len, len < n ? n - len : 0, "%s%s %s", len ? "  " : "", key, e->hint);
        len += k > 0 ? (size_t)k : 0;
    }
    return (int)len;
}

void tui_keymap_hints(const tui_keymap *km, int width, char *buf, size_t n)
{
    int max_rank = 0;
    for (int i = 0; i < NTABLE; i++)
        if (table[i].hint && table[i].rank > max_rank) max_rank = table[i].rank;
    while (hints_write(km, max_rank, buf, n) > width && max_rank > 0) max_rank--;
    if (max_rank == 0 && n) buf[0] = 0;
}

/* ------------------------------------------------------------------------ */
/* Rebinding                                                                */

static tui_action action_parse(const char *name)
{
    for (int i = 0; i < NTABLE; i++)
        if (!strcmp(table[i].name, name)) return table[i].action;
    return TUI_ACT_NONE;
}

static void key_unbind(tui_keymap *km, int key)
{
    for (int a = 1; a < TUI_ACT_COUNT; a++) {
        int *k = km->keys[a], j = 0;
        for (int i = 0; i < TUI_KEYS_PER_ACTION && k[i]; i++)
            if (key_norm(k[i]) != key_norm(key)) k[j++] = k[i];
        for (; j < TUI_KEYS_PER_ACTION; j++) k[j] = 0;
    }
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
    return s;
}

/* One `action = key [key ...]` line. */
static ssm_status bind_line(tui_keymap *km, char *line, const char *path, int no)
{
    char *eq = strchr(line, '=');
    if (!eq) return ssm_fail(SSM_ERR_CONFIG, "%s:%d: expected 'action = key [key ...]'", path, no);
    *eq = 0;
    char *name = trim(line);
    tui_action a = action_parse(name);
    if (!a) return ssm_fail(SSM_ERR_CONFIG, "%s:%d: unknown action '%s'", path, no, name);
    int keys[TUI_KEYS_PER_ACTION] = {0}, nk = 0;
    char *save = NULL;
    for (char *tok = strtok_r(eq + 1, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
        int k = tui_key_parse(tok);
        if (k < 0) return ssm_fail(SSM_ERR_CONFIG, "%s:%d: unknown key '%s'", path, no, tok);
        if (nk == TUI_KEYS_PER_ACTION)
            return ssm_fail(SSM_ERR_CONFIG, "%s:%d: at most %d keys per action", path, no, TUI_KEYS_PER_ACTION);
        keys[nk++] = k;
    }
    for (int i = 0; i < nk; i++) key_unbind(km, keys[i]);
    memcpy(km->keys[a], keys, sizeof keys);
    return SSM_OK;
}

ssm_status tui_keymap_load(tui_keymap *km, const char *path)
{
    struct stat sb;
    uint64_t size;
    ssm_status st = stat(path, &sb) ? SSM_OK : ssm_bound_file(path, &size);   /* no FIFO or device */
    if (st) return st;
    FILE *f = fopen(path, "r");
    if (!f) return ssm_fail(SSM_ERR_NOINPUT, "%s: cannot open keys file: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    for (int no = 1; !st && getline(&line, &cap, f) >= 0; no++) {   /* any length */
        char *t = trim(line);
        if (*t && *t != '#') st = bind_line(km, t, path, no);   /* '#' lines are comments */
    }
    free(line);
    fclose(f);
    return st;
}

void tui_keys_default_path(char *buf, size_t n)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(buf, n, "%s/ssmlab/keys", xdg);
    else if (home && *home) snprintf(buf, n, "%s/.config/ssmlab/keys", home);
    else if (n) buf[0] = 0;
}

/* ------------------------------------------------------------------------ */
/* The man page's list                                                      */

static void mdoc_key(FILE *f, int key)
{
    char name[16];
    tui_key_name(key, name, sizeof name);
    if (!strcmp(name, "\\")) fputs("\\e", f);
    else if (strlen(name) == 1 && strchr(".,:;()[]?!|-'\"", name[0])) fprintf(f, "\\&%s", name);
    else fputs(name, f);
}

void tui_keys_write_mdoc(FILE *f)
{
    fputs(".Bl -tag -width Ds\n", f);
    for (int i = 0; i < NTABLE; i++) {
        fputs(".It", f);
        for (int k = 0; k < TUI_KEYS_PER_ACTION && table[i].keys[k]; k++) {
            fputs(k ? " , Ic " : " Ic ", f);
            mdoc_key(f, table[i].keys[k]);
        }
        fprintf(f, " Pq Cm %s\n%s\n", table[i].name, table[i].help);
    }
    fputs(".El\n", f);
}
