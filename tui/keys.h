/* keys.h — the one key table of the TUI: every action with its name, its
 * help text and its default keys.  It drives the keymap (with rebinding
 * from a keys file), the `?` help screen and the man page's key list
 * (`ssmlab tui --keys-mdoc`). */
#ifndef SSM_TUI_KEYS_H
#define SSM_TUI_KEYS_H

#include <stddef.h>
#include <stdio.h>

#include "engine/status.h"

typedef enum {
    TUI_ACT_NONE = 0,
    TUI_ACT_RUN,
    TUI_ACT_STEP,
    TUI_ACT_VALIDATE,
    TUI_ACT_CANCEL,
    TUI_ACT_SCENARIO,
    TUI_ACT_POLARIZE,
    TUI_ACT_REORDER,
    TUI_ACT_TEXT,
    TUI_ACT_LOAD,
    TUI_ACT_SAVE,
    TUI_ACT_EXPORT,
    TUI_ACT_LAYER_UP,
    TUI_ACT_LAYER_DOWN,
    TUI_ACT_TOKEN_LEFT,
    TUI_ACT_TOKEN_RIGHT,
    TUI_ACT_TOKEN_FIRST,
    TUI_ACT_TOKEN_LAST,
    TUI_ACT_CHANNEL_NEXT,
    TUI_ACT_CHANNEL_PREV,
    TUI_ACT_SEARCH,
    TUI_ACT_GOTO_LAYER,
    TUI_ACT_GOTO_CHANNEL,
    TUI_ACT_GOTO_TOKEN,
    TUI_ACT_FOCUS_NEXT,
    TUI_ACT_FOCUS_PREV,
    TUI_ACT_ZOOM,
    TUI_ACT_PLOT,
    TUI_ACT_FLOW,
    TUI_ACT_STATES,
    TUI_ACT_ABLATE,
    TUI_ACT_PIN,
    TUI_ACT_CLEAR,
    TUI_ACT_REDRAW,
    TUI_ACT_HELP,
    TUI_ACT_QUIT,
    TUI_ACT_COUNT
} tui_action;

#define TUI_KEYS_PER_ACTION 4

#define TUI_BRIEF_MAX 13   /* columns of a brief help text: the help screen's two columns at 80x24 */

typedef struct {
    tui_action action;
    const char *name;   /* used in keys files: `name = key [key ...]` */
    const char *help;   /* one sentence, for the help screen and the man page */
    const char *brief;  /* at most TUI_BRIEF_MAX columns: the help screen where help does not fit */
    const char *hint;   /* its word in the key hint bar (NULL: not there) ... */
    int rank;           /* ... where the bar keeps lower ranks longest */
    int keys[TUI_KEYS_PER_ACTION];   /* defaults, 0-terminated */
} tui_key_entry;

typedef struct {
    int keys[TUI_ACT_COUNT][TUI_KEYS_PER_ACTION];   /* 0-terminated per action */
} tui_keymap;

/* The table (n entries, in help order). */
const tui_key_entry *tui_key_table(int *n);

void tui_keymap_default(tui_keymap *km);

/* Apply a keys file: lines `action = key [key ...]` ('#' comments).  The
 * listed keys replace the action's keys and are taken from any other
 * action.  Errors name the file and line (SSM_ERR_CONFIG, SSM_ERR_NOINPUT). */
ssm_status tui_keymap_load(tui_keymap *km, const char *path);

/* The default keys file, $XDG_CONFIG_HOME/ssmlab/keys or
 * ~/.config/ssmlab/keys, into buf ("" when neither is known). */
void tui_keys_default_path(char *buf, size_t n);

tui_action tui_keymap_lookup(const tui_keymap *km, int key);

/* Key names: printable characters as themselves, "space", "Enter", "Tab",
 * "S-Tab", "Esc", "Backspace", "Delete", "Up", "Down", "Left", "Right",
 * "Home", "End", "PgUp", "PgDn", "F1".."F12", "C-a".."C-z".  parse returns -1 for
 * an unknown name. */
int tui_key_parse(const char *name);
void tui_key_name(int key, char *buf, size_t n);

/* "h, Left" for an action in km. */
void tui_keymap_describe(const tui_keymap *km, tui_action a, char *buf, size_t n);

/* The key hint bar for width columns: "KEY word" for the table's hint
 * entries in table order with their first key in km, leaving out the
 * highest ranks until it fits. */
void tui_keymap_hints(const tui_keymap *km, int width, char *buf, size_t n);

/* The key list of the man page: an mdoc .Bl/.El list of the default table. */
void tui_keys_write_mdoc(FILE *f);

#endif
