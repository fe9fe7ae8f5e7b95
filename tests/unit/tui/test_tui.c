/* test_tui.c — unit tests of the TUI's parts that need no screen: the key
 * table (unique names and keys, key names round trip, rebinding from a keys
 * file and its errors, the man page's list), path completion, plot glyphs
 * and lines, the heat ramp, the panel classes and their constructor,
 * cycling settings through the enum counts, prompt editing of UTF-8,
 * scrolling, brief help texts and the key hint bar, visible token labels,
 * token columns as wide as their labels, and the layer of a selected row.  The lab's controller (session and engine
 * thread) is tested in test_lab.c. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tui/app.h"
#include "tui/colors.h"
#include "tui/keys.h"
#include "tui/plot.h"
#include "tests/tmpdir.h"



static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

TestSuite(keys, .init = tmpdir_make, .fini = tmpdir_remove);
TestSuite(plot);

/* ------------------------------------------------------------------------ */
/* Key table                                                                */

Test(keys, every_action_has_one_entry_and_keys_are_unique)
{
    int n;
    const tui_key_entry *t = tui_key_table(&n);
    cr_assert_eq(n, TUI_ACT_COUNT - 1);
    int seen[TUI_ACT_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        cr_assert(t[i].action > TUI_ACT_NONE && t[i].action < TUI_ACT_COUNT);
        cr_assert_eq(seen[t[i].action]++, 0, "action %s twice", t[i].name);
        cr_assert(t[i].keys[0], "%s has no default key", t[i].name);
        for (int j = 0; j < i; j++) cr_assert_str_neq(t[i].name, t[j].name);
    }
    tui_keymap km;
    tui_keymap_default(&km);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < TUI_KEYS_PER_ACTION && t[i].keys[k]; k++)
            cr_assert_eq(tui_keymap_lookup(&km, t[i].keys[k]), t[i].action, "key of %s is shared", t[i].name);
}

Test(keys, brief_texts_fit_the_two_column_help_and_the_hint_bar_fits_80_columns)
{
    cr_assert_not_null(setlocale(LC_ALL, "C.UTF-8"));
    int n;
    const tui_key_entry *t = tui_key_table(&n);
    for (int i = 0; i < n; i++) {
        cr_assert(t[i].brief && (int)strlen(t[i].brief) <= TUI_BRIEF_MAX, "%s: brief '%s'", t[i].name, t[i].brief);
        cr_assert(strlen(t[i].help) > strlen(t[i].brief), "%s: the brief text is the shorter", t[i].name);
        cr_assert_eq(t[i].hint != NULL, t[i].rank > 0, "%s: a hint word has a rank", t[i].name);
    }
    tui_keymap km;
    tui_keymap_default(&km);
    char bar[256];
    tui_keymap_hints(&km, 79, bar, sizeof bar);
    cr_assert(strlen(bar) <= 79 && strstr(bar, "? help") && strstr(bar, "q quit") && strstr(bar, "space run"), "%s", bar);
    tui_keymap_hints(&km, 20, bar, sizeof bar);
    cr_assert(strlen(bar) <= 20 && strstr(bar, "? help"), "narrow: the lowest ranks stay: '%s'", bar);
    write_file(tmpdir_path("keys"), "help = h\n");
    cr_assert_eq(tui_keymap_load(&km, tmpdir_path("keys")), SSM_OK);
    tui_keymap_hints(&km, 79, bar, sizeof bar);
    cr_assert(strstr(bar, "h help"), "the bar follows rebinding: %s", bar);
}

Test(keys, names_round_trip)
{
    int n;
    const tui_key_entry *t = tui_key_table(&n);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < TUI_KEYS_PER_ACTION && t[i].keys[k]; k++) {
            char name[16];
            tui_key_name(t[i].keys[k], name, sizeof name);
            cr_assert_eq(tui_key_parse(name), t[i].keys[k], "key name '%s'", name);
        }
    cr_assert_eq(tui_key_parse("C-x"), 24);
    cr_assert_eq(tui_key_parse("F5"), KEY_F(5));
    cr_assert_eq(tui_key_parse("Enter"), '\n');
    cr_assert_eq(tui_key_parse("nonsense"), -1);
    cr_assert_eq(tui_key_parse("F13"), -1);
}

Test(keys, a_keys_file_rebinds_and_takes_keys_from_other_actions)
{
    tui_keymap km;
    tui_keymap_default(&km);
    write_file(tmpdir_path("keys"), "# my keys\nstep = x N\n\nquit = space\n");
    cr_assert_eq(tui_keymap_load(&km, tmpdir_path("keys")), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(tui_keymap_lookup(&km, 'x'), TUI_ACT_STEP);
    cr_assert_eq(tui_keymap_lookup(&km, 'N'), TUI_ACT_STEP);
    cr_assert_eq(tui_keymap_lookup(&km, 'n'), TUI_ACT_NONE);
    cr_assert_eq(tui_keymap_lookup(&km, ' '), TUI_ACT_QUIT);
    cr_assert_eq(tui_keymap_lookup(&km, 'q'), TUI_ACT_NONE);
    char d[64];
    tui_keymap_describe(&km, TUI_ACT_RUN, d, sizeof d);
    cr_assert_str_eq(d, "(unbound)");
}

/* C-m is Enter: bound from a keys file it fires for each way Enter
 * arrives ('\n' in curses' nl mode, '\r' in raw or nonl mode, KEY_ENTER
 * from the keypad); it was stored as '\r' while presses were looked up as
 * '\n', so it never fired. */
Test(keys, c_m_is_enter_and_fires_however_enter_arrives)
{
    cr_assert_eq(tui_key_parse("C-m"), tui_key_parse("Enter"));
    tui_keymap km;
    tui_keymap_default(&km);
    write_file(tmpdir_path("keys"), "validate = C-m\n");
    cr_assert_eq(tui_keymap_load(&km, tmpdir_path("keys")), SSM_OK, "%s", ssm_last_error());
    const int enter[] = {'\n', '\r', KEY_ENTER};
    for (int i = 0; i < 3; i++)
        cr_expect_eq(tui_keymap_lookup(&km, enter[i]), TUI_ACT_VALIDATE, "Enter as key %d", enter[i]);
    cr_expect_eq(tui_keymap_lookup(&km, 'v'), TUI_ACT_NONE);
    char d[64];
    tui_keymap_describe(&km, TUI_ACT_VALIDATE, d, sizeof d);
    cr_expect_str_eq(d, "Enter");
    write_file(tmpdir_path("keys"), "step = Enter\n");   /* Enter taken by another action leaves C-m's */
    cr_assert_eq(tui_keymap_load(&km, tmpdir_path("keys")), SSM_OK, "%s", ssm_last_error());
    cr_expect_eq(tui_keymap_lookup(&km, '\r'), TUI_ACT_STEP);
    tui_keymap_describe(&km, TUI_ACT_VALIDATE, d, sizeof d);
    cr_expect_str_eq(d, "(unbound)");
}

Test(keys, bad_keys_files_name_the_file_and_line)
{
    tui_keymap km;
    tui_keymap_default(&km);
    write_file(tmpdir_path("k1"), "step = n\nfly = f\n");
    cr_assert_eq(tui_keymap_load(&km, tmpdir_path("k1")), SSM_ERR_CONFIG);
    cr_assert(strstr(ssm_last_error(), "k1:2: unknown action 'fly'"), "%s", ssm_last_error());
    write_file(tmpdir_path("k2"), "step = Hyper-n\n");
    cr_assert_eq(tui_keymap_load(&km, tmpdir_path("k2")), SSM_ERR_CONFIG);
    cr_assert(strstr(ssm_last_error(), "k2:1: unknown key 'Hyper-n'"), "%s", ssm_last_error());
    write_file(tmpdir_path("k3"), "step n\n");
    cr_assert_eq(tui_keymap_load(&km, tmpdir_path("k3")), SSM_ERR_CONFIG);
    cr_assert_eq(tui_keymap_load(&km, tmpdir_path("missing")), SSM_ERR_NOINPUT);
}

/* A comment longer than the old 512-byte line buffer stays a comment (its
 * tail used to be read as a binding). */
Test(keys, a_long_comment_stays_a_comment)
{
    tui_keymap km;
    tui_keymap_default(&km);
    char text[3000];
    memset(text, 'c', sizeof text);
    text[0] = '#';
    snprintf(text + 2000, sizeof text - 2000, " quit = x\nstep = N\n");
    write_file(tmpdir_path("long"), text);
    tui_action x = tui_keymap_lookup(&km, 'x');
    cr_assert_eq(tui_keymap_load(&km, tmpdir_path("long")), SSM_OK, "%s", ssm_last_error());
    cr_assert_eq(tui_keymap_lookup(&km, 'x'), x);
    cr_assert_eq(tui_keymap_lookup(&km, 'q'), TUI_ACT_QUIT);
    cr_assert_eq(tui_keymap_lookup(&km, 'N'), TUI_ACT_STEP);
}

Test(keys, the_mdoc_list_has_every_action_and_key)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tui_keys_write_mdoc(f);
    fclose(f);
    int n;
    const tui_key_entry *t = tui_key_table(&n);
    cr_assert(!strncmp(buf, ".Bl -tag", 8));
    for (int i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "Pq Cm %s\n%s\n", t[i].name, t[i].help);
        cr_assert(strstr(buf, want), "missing %s", t[i].name);
    }
    cr_assert(strstr(buf, ".It Ic \\&?"), "punctuation keys are escaped");
    cr_assert(strstr(buf, ".It Ic h , Ic Left Pq Cm token-left"));
    free(buf);
}

Test(keys, path_completion_extends_and_lists_candidates)
{
    mkdir(tmpdir_path("alpha_dir"), 0755);
    write_file(tmpdir_path("alpine.txt"), "x");
    write_file(tmpdir_path("beta"), "x");
    char buf[1024], note[256];
    snprintf(buf, sizeof buf, "%s/al", tmpdir);
    tui_complete_path(buf, sizeof buf, note, sizeof note);
    cr_assert_str_eq(buf, tmpdir_path("alp"));
    cr_assert(strstr(note, "alpha_dir/") && strstr(note, "alpine.txt"), "%s", note);
    snprintf(buf, sizeof buf, "%s/alpha", tmpdir);
    tui_complete_path(buf, sizeof buf, note, sizeof note);
    cr_assert_str_eq(buf, tmpdir_path("alpha_dir/"));
    snprintf(buf, sizeof buf, "%s/zz", tmpdir);
    tui_complete_path(buf, sizeof buf, note, sizeof note);
    cr_assert_str_eq(note, "(no match)");
}

/* ------------------------------------------------------------------------ */
/* Plots and colours                                                        */

Test(plot, glyphs)
{
    cr_assert_eq(tui_canvas_glyph(TUI_PLOT_BRAILLE, 0xff), 0x28FF);
    cr_assert_eq(tui_canvas_glyph(TUI_PLOT_BRAILLE, 1), 0x2801);        /* top left: dot 1 */
    cr_assert_eq(tui_canvas_glyph(TUI_PLOT_BRAILLE, 1u << 7), 0x2880);  /* bottom right: dot 8 */
    cr_assert_eq(tui_canvas_glyph(TUI_PLOT_BRAILLE, 1u << 1), 0x2808);  /* top right: dot 4 */
    cr_assert_eq(tui_canvas_glyph(TUI_PLOT_BRAILLE, 0), L' ');
    cr_assert_eq(tui_canvas_glyph(TUI_PLOT_BLOCKS, 15), 0x2588);
    cr_assert_eq(tui_canvas_glyph(TUI_PLOT_BLOCKS, 3), 0x2580);
    cr_assert_eq(tui_canvas_glyph(TUI_PLOT_ASCII, 3), L':');
    cr_assert_eq(tui_plot_resolve(TUI_PLOT_AUTO, 1), TUI_PLOT_BRAILLE);
    cr_assert_eq(tui_plot_resolve(TUI_PLOT_BLOCKS, 0), TUI_PLOT_ASCII);
}

Test(plot, lines_and_series_land_on_the_right_pixels)
{
    static tui_canvas c;
    tui_canvas_init(&c, TUI_PLOT_BRAILLE, 10, 3);
    cr_assert_eq(tui_canvas_pw(&c), 20);
    cr_assert_eq(tui_canvas_ph(&c), 12);
    tui_canvas_line(&c, 0, 0, 19, 11, 0);
    cr_assert(c.px[0][0] && c.px[11][19], "both ends drawn");
    int count = 0;
    for (int y = 0; y < 12; y++)
        for (int x = 0; x < 20; x++) count += c.px[y][x] != 0;
    cr_assert_eq(count, 20, "one pixel a column for a shallow line");
    tui_canvas_init(&c, TUI_PLOT_ASCII, 4, 2);
    double xs[2] = {0, 1}, ys[2] = {0, 1};
    tui_canvas_series(&c, xs, ys, 2, 0, 1, 0, 1, 1, 0);
    cr_assert_eq(c.px[3][0], 2, "(0,0) is the bottom left, series 1 stored as 2");
    cr_assert_eq(c.px[0][3], 2, "(1,1) is the top right");
    tui_canvas_set(&c, 100, 100, 0);   /* ignored */
}

Test(plot, ramp_index)
{
    cr_assert_eq(tui_ramp_index(0.0, 0.0, 1.0), 0);
    cr_assert_eq(tui_ramp_index(1.0, 0.0, 1.0), TUI_RAMP - 1);
    cr_assert_eq(tui_ramp_index(0.55, 0.0, 1.0), 5);
    cr_assert_eq(tui_ramp_index(-3.0, 0.0, 1.0), 0);
    cr_assert_eq(tui_ramp_index(1.0, 1.0, 1.0), TUI_RAMP / 2);
    cr_assert_eq(tui_colors_parse("truecolor"), TUI_COLOR_TRUE);
    cr_assert_eq(tui_colors_parse("purple"), -1);
}

/* ------------------------------------------------------------------------ */
/* Panel classes, cycling settings, prompt editing, scrolling               */

/* Under AddressSanitizer a failed allocation returns NULL, as it does in a
 * release build, instead of ending the process: the out-of-memory test
 * below runs in both builds. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

TestSuite(panels);
TestSuite(cycle);
TestSuite(prompt);

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

Test(panels, every_class_in_the_table_builds_zeroed_and_frees)
{
    for (int i = 0; i < TUI_NPANELS; i++) {
        const tui_panel_class *c = tui_panel_classes[i];
        cr_assert_not_null(c, "panel %d has no class", i);
        cr_assert(c->name && c->name[0], "panel %d has no name", i);
        for (int j = 0; j < i; j++) cr_assert_neq(tui_panel_classes[j], c, "%s twice in the table", c->name);
        cr_assert(c->state_size > 0 && c->update && c->draw, "%s lacks state, update or draw", c->name);
        tui_panel *p = tui_panel_new(c);
        cr_assert_not_null(p, "%s", c->name);
        cr_assert_eq(p->cls, c);
        cr_assert_null(p->win, "a new panel has no window yet");
        cr_assert_not_null(p->st);
        cr_assert(all_zero(p->st, c->state_size), "%s: state not zeroed", c->name);
        tui_panel_free(p);
    }
    tui_panel_free(NULL);
}

Test(panels, the_table_follows_the_layout_and_clicks_go_to_the_selecting_panels)
{
    cr_assert_eq(tui_panel_classes[TUI_PANEL_STATUS], &tui_panel_status_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_HEATMAP], &tui_panel_heatmap_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_DEPTH], &tui_panel_depth_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_LOSS], &tui_panel_loss_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_SPECTRUM], &tui_panel_spectrum_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_STATES], &tui_panel_states_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_LENS], &tui_panel_lens_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_RANK], &tui_panel_rank_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_IMAGE], &tui_panel_image_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_ATTN], &tui_panel_attn_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_MESSAGE], &tui_panel_message_class);
    cr_assert_eq(tui_panel_classes[TUI_PANEL_HINTS], &tui_panel_hints_class);
    for (int i = 0; i < TUI_NPANELS; i++) {
        int clickable = i == TUI_PANEL_HEATMAP || i == TUI_PANEL_RANK || i == TUI_PANEL_IMAGE || i == TUI_PANEL_ATTN;
        int focusable = i != TUI_PANEL_STATUS && i != TUI_PANEL_MESSAGE && i != TUI_PANEL_HINTS;
        cr_assert_eq(tui_panel_focusable(i), focusable, "%s", tui_panel_classes[i]->name);
        cr_assert_eq(tui_panel_classes[i]->click != NULL, clickable, "%s", tui_panel_classes[i]->name);
    }
}

/* The middle row holds depth, loss and spectrum, or in the states view the
 * states and lens panels; the image panel is there for image classifiers
 * only; the other panels are always there. */
Test(panels, the_states_view_swaps_the_middle_row)
{
    tui_app *app = calloc(1, sizeof *app);
    ssm_snapshot *snap = calloc(1, sizeof *snap);
    cr_assert(app && snap);
    app->snap = snap;
    int middle[] = {TUI_PANEL_DEPTH, TUI_PANEL_LOSS, TUI_PANEL_SPECTRUM}, states[] = {TUI_PANEL_STATES, TUI_PANEL_LENS};
    for (int view = 0; view < 2; view++) {
        app->states_view = view;
        for (int i = 0; i < 3; i++) cr_assert_eq(tui_app_panel_shown(app, middle[i]), !view, "view %d panel %d", view, i);
        for (int i = 0; i < 2; i++) cr_assert_eq(tui_app_panel_shown(app, states[i]), view, "view %d panel %d", view, i);
        cr_assert(tui_app_panel_shown(app, TUI_PANEL_HEATMAP) && tui_app_panel_shown(app, TUI_PANEL_ATTN));
        cr_assert_not(tui_app_panel_shown(app, TUI_PANEL_IMAGE), "a language model has no image panel");
    }
    snap->images = 1;
    cr_assert(tui_app_panel_shown(app, TUI_PANEL_IMAGE));
    free(snap);
    free(app);
}

Test(panels, the_constructor_returns_null_when_out_of_memory)
{
    tui_panel_class huge = tui_panel_status_class;
    huge.state_size = SIZE_MAX / 2 + 1;   /* more than any allocator gives */
    cr_assert_null(tui_panel_new(&huge));
}

/* A snapshot of T tokens and n_layer layers with every measurement present. */
static ssm_snapshot *fake_snapshot(int T, int n_layer)
{
    ssm_snapshot *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    snprintf(s->name, sizeof s->name, "fake");
    s->ready = s->spec_ok = s->attn_ok = s->infl_ok = s->states_ok = s->lens_ok = 1;
    s->T = T;
    s->n_layer = n_layer;
    s->d_model = 16;
    s->d_inner = 32;
    s->spec_N = 4;
    s->total_steps = 100;
    s->step = s->measured_step = 7;
    s->val_step = -1;
    s->loss = 2.5;
    s->baseline = 3.0;
    s->infl_token = T - 1;
    s->infl_rate = 0.5;
    s->infl_half_life = M_LN2 / 0.5;
    int layers = (n_layer < SSM_SNAP_MAX_LAYER ? n_layer : SSM_SNAP_MAX_LAYER) + 1;
    for (int i = 0; i < layers * T; i++) s->norms[i] = 1.0f + (float)(i % 7);
    for (int t = 0; t < T; t++) {
        snprintf(s->label[t], SSM_SNAP_LABEL, "%c", 'a' + t % 26);
        s->order[t] = T - 1 - t;
        s->imp[t] = (float)t;
        s->infl[t] = 1.0f + (float)t;
        s->attn[(size_t)t * T + t] = 255;
    }
    for (int l = 0; l < SSM_SNAP_MAX_LAYER; l++) memset(s->signs[l], '+', 4);
    for (int i = 0; i < (layers - 1) * T; i++) s->st_norm[i] = 0.5f + (float)(i % 5);
    for (int l = 0; l < layers - 1; l++) s->hz_bins[l][l % SSM_SNAP_HZ_BINS] = s->d_inner;
    for (int l = 0; l < layers; l++) {
        snprintf(s->lens_label[l], SSM_SNAP_LABEL, " t%d", l);
        s->lens_prob[l] = 1.0f / (float)(l + 1);
        s->lens_kl[l] = l + 1 < layers ? 0.1f : 0.0f;
    }
    s->lens_token = T - 1;
    snprintf(s->iv_desc, sizeof s->iv_desc, "ablate 0:1, pin 1:2:*=0");
    s->flow_ok = 1;
    s->flow_steps = SSM_SNAP_FLOW_T;
    s->flow_h = 0.1f;
    for (int i = 0; i < (SSM_SNAP_FLOW_T + 1) * T; i++) s->flow_norms[i] = expf(-0.01f * (float)(i / T));
    s->n_hist = 3;
    for (int i = 0; i < 3; i++) {
        s->hist_step[i] = i + 1;
        s->hist_loss[i] = 3.0f - 0.2f * (float)i;
    }
    return s;
}

/* Every class derives its state from small, empty and largest snapshots
 * at small and large panel sizes, the depth panel with and without the
 * flow (memory errors show under ASan). */
Test(panels, every_class_updates_from_small_empty_and_largest_snapshots)
{
    ssm_snapshot *snaps[3] = {fake_snapshot(6, 2), calloc(1, sizeof(ssm_snapshot)),
                              fake_snapshot(SSM_SNAP_MAX_T, SSM_SNAP_MAX_LAYER + 3)};
    cr_assert_not_null(snaps[1]);
    int sizes[2][2] = {{5, 20}, {40, 120}};
    for (int k = 0; k < 3; k++)
        for (int z = 0; z < 2; z++)
            for (int i = 0; i < 2 * TUI_NPANELS; i++) {
                tui_panel *p = tui_panel_new(tui_panel_classes[i % TUI_NPANELS]);
                cr_assert_not_null(p);
                p->h = sizes[z][0];
                p->w = sizes[z][1];
                int T = snaps[k]->T;
                tui_view v = {.snap = snaps[k], .layer = 1, .token = T > 0 ? T - 1 : 0, .channel = -1,
                              .plot_mode = TUI_PLOT_BRAILLE, .utf8 = 1, .depth_flow = i >= TUI_NPANELS};
                p->cls->update(p, &v);
                cr_assert_null(p->win, "%s: update made a window", p->cls->name);
                tui_panel_free(p);
            }
    for (int k = 0; k < 3; k++) free(snaps[k]);
}

/* ------------------------------------------------------------------------ */

/* Cycling a setting count times from 0 visits every value once and comes back. */
static void check_cycle(tui_action a, int which, int count, const char *(*name)(int), int (*parse)(const char *))
{
    int set[3] = {0, 0, 0}, seen[16] = {0};
    cr_assert(count > 1 && count <= 16);
    for (int i = 0; i < count; i++) {
        int v = set[which];
        cr_assert(v >= 0 && v < count, "value %d outside 0..%d", v, count - 1);
        cr_assert_eq(seen[v]++, 0, "value %d twice", v);
        cr_assert_eq(parse(name(v)), v, "value %d has the name '%s'", v, name(v));
        tui_model_cycle(a, &set[0], &set[1], &set[2]);
        for (int j = 0; j < 3; j++)
            if (j != which) cr_assert_eq(set[j], 0, "the action changed another setting");
    }
    cr_assert_eq(set[which], 0, "after %d steps the cycle is back at the first value", count);
    cr_assert_eq(parse(name(count)), -1, "the count %d names no value", count);
}

Test(cycle, model_settings_cover_exactly_the_enum_counts)
{
    check_cycle(TUI_ACT_SCENARIO, 0, SSM_SCENARIO_COUNT, ssm_scenario_name, ssm_scenario_parse);
    check_cycle(TUI_ACT_POLARIZE, 1, SSM_POLARIZE_COUNT, ssm_polarize_name, ssm_polarize_parse);
    check_cycle(TUI_ACT_REORDER, 2, SSM_REORDER_COUNT, ssm_reorder_name, ssm_reorder_parse);
    cr_assert_eq(SSM_SCENARIO_COUNT, SSM_SCENARIO_MIXED + 1);
    cr_assert_eq(SSM_POLARIZE_COUNT, SSM_POLARIZE_BOTH + 1);
    cr_assert_eq(SSM_REORDER_COUNT, SSM_REORDER_SOFT + 1);
    int sc = 3, pol = 2, re = 1;
    tui_model_cycle(TUI_ACT_STEP, &sc, &pol, &re);
    cr_assert(sc == 3 && pol == 2 && re == 1, "other actions keep the settings");
}

Test(cycle, plot_styles_and_colour_names_cover_their_counts)
{
    int m = TUI_PLOT_BRAILLE, seen[TUI_PLOT_COUNT] = {0};
    for (int i = 0; i < TUI_PLOT_COUNT - 1; i++) {
        cr_assert(m > TUI_PLOT_AUTO && m < TUI_PLOT_COUNT, "style %d", m);
        cr_assert_eq(seen[m]++, 0, "style %s twice", tui_plot_name(m));
        m = tui_plot_next(m);
    }
    cr_assert_eq(m, TUI_PLOT_BRAILLE, "Braille, blocks, ASCII, then Braille again");
    for (int i = 0; i < TUI_PLOT_COUNT; i++) cr_assert_eq(tui_plot_parse(tui_plot_name(i)), i);
    cr_assert_str_eq(tui_plot_name(TUI_PLOT_COUNT), "?");
    for (int i = 0; i < TUI_COLOR_COUNT; i++) cr_assert_eq(tui_colors_parse(tui_colors_name(i)), i);
    cr_assert_str_eq(tui_colors_name(TUI_COLOR_COUNT), "?");
}

/* ------------------------------------------------------------------------ */

static void keys_in(tui_prompt *p, const int *keys, int n, int is_wide)
{
    for (int i = 0; i < n; i++) cr_assert_eq(tui_prompt_key(p, keys[i], is_wide), TUI_PROMPT_MORE);
}

Test(prompt, backspace_removes_one_character_of_multibyte_text)
{
    cr_assert_not_null(setlocale(LC_ALL, "C.UTF-8"), "no C.UTF-8 locale");
    tui_prompt p;
    tui_prompt_line(&p, TUI_ASK_TEXT, "Inspect text:", "", 0);
    int typed[] = {'a', 0xE9, 0x1F600, 'b'};   /* a, e acute (2 bytes), an emoji (4 bytes), b */
    keys_in(&p, typed, 4, 1);
    cr_assert_str_eq(p.buf, "a\xC3\xA9\xF0\x9F\x98\x80" "b");
    int bs = KEY_BACKSPACE;
    keys_in(&p, &bs, 1, 0);
    cr_assert_str_eq(p.buf, "a\xC3\xA9\xF0\x9F\x98\x80");
    keys_in(&p, &bs, 1, 0);
    cr_assert_str_eq(p.buf, "a\xC3\xA9", "Backspace takes the whole 4-byte emoji");
    int del = 127;
    keys_in(&p, &del, 1, 1);
    cr_assert_str_eq(p.buf, "a", "Backspace takes the whole 2-byte e acute");
    keys_in(&p, &bs, 1, 0);
    keys_in(&p, &bs, 1, 0);
    cr_assert_str_eq(p.buf, "", "Backspace on an empty line does nothing");
}

Test(prompt, invalid_utf8_goes_a_byte_at_a_time_and_lines_accept_or_cancel)
{
    tui_prompt p;
    tui_prompt_line(&p, TUI_ASK_LOAD, "Load checkpoint:", "ab\xE2\x82", 1);
    int bs = KEY_BACKSPACE;
    keys_in(&p, &bs, 1, 0);
    cr_assert_str_eq(p.buf, "ab\xE2", "a truncated sequence loses one byte");
    keys_in(&p, &bs, 1, 0);
    cr_assert_str_eq(p.buf, "ab");
    int cu = 'u' & 0x1f;
    keys_in(&p, &cu, 1, 0);
    cr_assert_str_eq(p.buf, "", "C-u clears the line");
    cr_assert_eq(tui_prompt_key(&p, '\n', 0), TUI_PROMPT_ACCEPT);
    cr_assert_eq(tui_prompt_key(&p, 27, 0), TUI_PROMPT_CANCEL);
}

Test(prompt, a_choice_keeps_its_command_and_takes_its_keys)
{
    tui_prompt p;
    memset(&p, 0, sizeof p);
    p.cmd = (ssm_cmd){.kind = SSM_CMD_NEW_MODEL, .scenario = SSM_SCENARIO_MIXED};
    tui_prompt_choice(&p, TUI_ASK_NEW_MODEL, "New model? [y/n]", "yn");
    cr_assert_eq(p.kind, TUI_PROMPT_CHOICE);
    cr_assert_eq(p.cmd.kind, SSM_CMD_NEW_MODEL);
    cr_assert_eq(p.cmd.scenario, SSM_SCENARIO_MIXED);
    cr_assert_eq(tui_prompt_key(&p, 'x', 0), TUI_PROMPT_MORE);
    cr_assert_eq(tui_prompt_key(&p, 'Y', 0), TUI_PROMPT_ACCEPT);
    cr_assert_eq(p.choice, 'y');
    tui_prompt_line(&p, TUI_ASK_SAVE, "Save checkpoint to:", "run", 1);
    cr_assert(p.kind == TUI_PROMPT_LINE && p.paths == 1 && !p.choices[0]);
    cr_assert_str_eq(p.buf, "run");
    cr_assert_str_eq(p.label, "Save checkpoint to:");
}

/* ------------------------------------------------------------------------ */

Test(panels, token_labels_show_spaces_and_controls_visibly)
{
    cr_assert_not_null(setlocale(LC_ALL, "C.UTF-8"));
    char out[64];
    cr_assert_eq(tui_token_visible(" the", 1, out, sizeof out), 4);
    cr_assert_str_eq(out, "\u2423the");
    cr_assert_eq(tui_token_visible(" the", 0, out, sizeof out), 4);
    cr_assert_str_eq(out, "_the");
    tui_token_visible("a\nb\tc", 0, out, sizeof out);
    cr_assert_str_eq(out, "a$b>c");
    cr_assert_eq(tui_token_visible("", 1, out, sizeof out), 1, "byte 0: a dot");
    cr_assert_str_eq(out, "\u00b7");
    cr_assert_eq(tui_token_visible("\xc3\xa9t\xc3", 1, out, sizeof out), 3, "a broken character is a dot");
    cr_assert_str_eq(out, "\xc3\xa9t\u00b7");
    tui_token_visible("\xc3\xa9", 0, out, sizeof out);
    cr_assert_str_eq(out, ".", "an ASCII locale shows a character it cannot draw as one dot");
}

Test(panels, token_columns_fit_with_the_selection_in_view)
{
    ssm_snapshot *s = fake_snapshot(10, 2);
    for (int t = 0; t < 10; t++) snprintf(s->label[t], SSM_SNAP_LABEL, "%s", t % 2 ? " the" : "a");
    static tui_tokens k;
    tui_tokens_set(&k, s, 1);
    cr_assert(k.w[0] == 1 && k.w[1] == 4, "columns as wide as the labels");
    int first, n = tui_tokens_fit(&k, 9, 12, 1, &first);
    int used = 0;
    for (int t = first; t < first + n; t++) used += k.w[t];
    cr_assert(first + n - 1 == 9 && used <= 12 && used + k.w[first - 1] > 12, "ends at the selection: %d+%d", first, n);
    n = tui_tokens_fit(&k, 0, 12, 0, &first);
    cr_assert(first == 0 && n >= 4, "from the start");
    cr_assert_eq(tui_tokens_at(&k, 0, n, 0), 0);
    cr_assert_eq(tui_tokens_at(&k, 0, n, 1), 1);
    cr_assert_eq(tui_tokens_at(&k, 0, n, 4), 1);
    cr_assert_eq(tui_tokens_at(&k, 0, n, 5), 2);
    cr_assert_eq(tui_tokens_at(&k, 0, n, 100), -1);
    cr_assert_str_eq(tui_token_name(&k, 1), "'\u2423the'");
    free(s);
}

Test(panels, the_selected_row_belongs_to_the_layer_that_wrote_it)
{
    cr_assert_eq(tui_view_mixer(0), 0, "the embedding row shows layer 0's attention");
    cr_assert_eq(tui_view_mixer(1), 0, "x1 is layer 0's output");
    cr_assert_eq(tui_view_mixer(4), 3);
}

Test(panels, scrolling_keeps_the_selection_in_view)
{
    cr_assert_eq(tui_scroll_first(7, 10, 10), 0, "everything fits");
    cr_assert_eq(tui_scroll_first(50, 10, 100), 45, "centred");
    cr_assert_eq(tui_scroll_first(2, 10, 100), 0, "clamped at the start");
    cr_assert_eq(tui_scroll_first(98, 10, 100), 90, "clamped at the end");
    for (int n = 1; n < 12; n++)
        for (int total = 1; total < 30; total++)
            for (int sel = 0; sel < total; sel++) {
                int f = tui_scroll_first(sel, n, total);
                cr_assert(f >= 0 && sel >= f && sel < f + n, "sel %d of %d in %d rows: first %d", sel, total, n, f);
                cr_assert(total <= n || f + n <= total, "no blank rows at the end");
            }
}
