/* test_tui.c — unit tests of the TUI's parts that need no screen: the key
 * table (unique names and keys, key names round trip, rebinding from a keys
 * file and its errors, the man page's list), path completion, plot glyphs
 * and lines, and the heat ramp.  The lab's controller (session and engine
 * thread) is tested in test_lab.c. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
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
