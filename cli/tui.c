/* tui.c — `ssmlab tui [CONFIG | --model DIR] [key=value ...] [options]`:
 * parses the command line into the TUI's options and a run configuration
 * (the TUI's own keys keys=, color=, plot=, text=, image=, log= are taken
 * out before the rest goes to the run configuration), then runs the TUI. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tui/colors.h"
#include "scenarios/run_config.h"
#include "tui/keys.h"
#include "tui/plot.h"
#include "tui/tui.h"

#define DEFAULT_CONFIG "scenarios/bytes-small.conf"

/* Options tui_options has no field for. */
typedef struct {
    int width, height;
} tui_size;

typedef struct {
    tui_size size;       /* --size COLSxROWS */
    int keys_mdoc;       /* --keys-mdoc */
} tui_cli;

static int color_parse(const char *s, void *dst)
{
    int c = tui_colors_parse(s);
    if (c < 0) return -1;
    *(int *)dst = c;
    return 0;
}

static int plot_parse(const char *s, void *dst)
{
    int p = tui_plot_parse(s);
    if (p < 0) return -1;
    *(int *)dst = p;
    return 0;
}

/* "COLSxROWS" into a tui_size */
static int size_parse(const char *s, void *dst)
{
    char cols[16];
    long w, h;
    size_t n = strcspn(s, "x");
    if (!s[n] || n >= sizeof cols) return -1;
    snprintf(cols, sizeof cols, "%.*s", (int)n, s);
    if (cli_parse_long(cols, &w) || cli_parse_long(s + n + 1, &h) || w < 10 || h < 5 || w > 1000 || h > 500)
        return -1;
    *(tui_size *)dst = (tui_size){(int)w, (int)h};
    return 0;
}

static const char *const tui_weights[] = {"bf16", "f32", NULL};

static const cli_opt tui_table[] = {
    {"model", 0, CLI_OPT_STRING, .metavar = "DIR", .help = "open a checkpoint to inspect it (training makes a new run)",
     .offset = offsetof(tui_options, model_dir)},
    {"weights", 0, CLI_OPT_CHOICE, .help = "inspect checkpoints with the large matrices in bf16 (default: "
     "half the memory; f32 for Mamba-2 models) or f32; training reloads f32", .offset = offsetof(tui_options, weights),
     .choices = tui_weights},
    {"paused", 0, CLI_OPT_FLAG, .help = "do not start training at once", .offset = offsetof(tui_options, paused)},
    {"keys", 0, CLI_OPT_STRING, .metavar = "FILE", .help = "key bindings (default ~/.config/ssmlab/keys)",
     .offset = offsetof(tui_options, keys_file)},
    {"color", 0, CLI_OPT_CUSTOM, .metavar = "MODE", .help = "auto, none, 16, 256 or truecolor",
     .offset = offsetof(tui_options, color), .what = "auto, none, 16, 256 or truecolor", .parse = color_parse},
    {"plot", 0, CLI_OPT_CUSTOM, .metavar = "MODE", .help = "auto, braille, blocks or ascii",
     .offset = offsetof(tui_options, plot), .what = "auto, braille, blocks or ascii", .parse = plot_parse},
    {"text", 0, CLI_OPT_STRING, .metavar = "TEXT", .help = "the inspected text (language models)",
     .offset = offsetof(tui_options, text)},
    {"image", 0, CLI_OPT_LONG, 0, CLI_NO_LIMIT, .metavar = "N", .help = "the inspected test image (image classifiers)",
     .offset = offsetof(tui_options, image), .what = "an image index"},
    {"log", 0, CLI_OPT_STRING, .metavar = "FILE", .help = "where standard error goes while the screen is up",
     .offset = offsetof(tui_options, log_path)},
    {"script", 0, CLI_OPT_STRING, .metavar = "FILE", .help = "run display-free on a virtual terminal, driven by FILE",
     .offset = offsetof(tui_options, script)},
    {"term", 0, CLI_OPT_STRING, .metavar = "NAME", .help = "virtual terminal type (default xterm-256color)",
     .offset = offsetof(tui_options, term)},
    {"bench-latency", 0, CLI_OPT_FLAG, .help = "measure key-to-redraw latency while training (CSV)",
     .offset = offsetof(tui_options, bench_latency)},
    {"bench-keys", 0, CLI_OPT_INT, 1, CLI_NO_LIMIT, .metavar = "N",
     .help = "keys the latency measurement sends (default 200)", .offset = offsetof(tui_options, bench_keys)},
    CLI_OPT_END};

static const cli_opt tui_cli_table[] = {
    {"size", 0, CLI_OPT_CUSTOM, .metavar = "COLSxROWS", .help = "virtual terminal size (default 120x40)",
     .offset = offsetof(tui_cli, size), .what = "a size from 10x5 to 1000x500", .parse = size_parse},
    {"keys-mdoc", 0, CLI_OPT_FLAG, .help = "print the key list of ssmlab-tui(1) and exit",
     .offset = offsetof(tui_cli, keys_mdoc)},
    CLI_OPT_END};

static const cli_command tui_command = {
    "tui", "[CONFIG | --model DIR] [key=value ...] [options]",
    "The ncurses lab: train and watch a model (plain ssmlab on a terminal).", 1,
    "TUI keys as key=value: keys=FILE color=MODE plot=MODE text=TEXT image=N log=FILE\n"
    "See ssmlab-tui(1)."};

static void name_from_config(tui_options *o, const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".conf")) n -= 5;
    snprintf(o->name, sizeof o->name, "%.*s", (int)(n < 63 ? n : 63), b);
}

/* keys=, color=, plot=, text=, image=, log= (the options of the same
 * names): 1 if taken, 0 if not one of them, -1 on a bad value. */
static int tui_key(const cli_opt_group *groups, const char *kv)
{
    static const char *const keys[] = {"keys", "color", "plot", "text", "image", "log"};
    const char *v = strchr(kv, '=') + 1;
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        if (strlen(keys[k]) == (size_t)(v - kv - 1) && !strncmp(kv, keys[k], v - kv - 1))
            return cli_opts_set(groups, keys[k], v);
    return 0;
}

/* The config file (or the default one), then the key=value overrides in order. */
static int config_apply(tui_options *o, const char *config, char **kv, int nkv)
{
    if (!config && !o->model_dir && !access(DEFAULT_CONFIG, R_OK)) config = DEFAULT_CONFIG;
    ssm_status st = cli_config_build(&o->rc, config, kv, nkv);
    if (st) return cli_report(st);
    if (config) name_from_config(o, config);
    return 0;
}

/* The operands: one CONFIG, the TUI's keys, and the run's overrides (kept
 * in o: they live as long as the process, as argv does). */
static int operands(tui_options *o, const cli_opt_group *groups, char **args, int nargs)
{
    int nfiles = cli_config_split(args, nargs), nkv = 0, r;
    char **kv = args + nfiles;
    if (nfiles > 1) return cli_usage_error("tui: '%s': only one config file", args[1]);
    for (int i = nfiles; i < nargs; i++) {
        if ((r = tui_key(groups, args[i])) < 0) return cli_usage_error("tui: bad value in '%s'", args[i]);
        if (!r) kv[nkv++] = args[i];
    }
    if (o->model_dir && nfiles) return cli_usage_error("tui: give a CONFIG or --model DIR, not both");
    o->overrides = kv;
    o->n_overrides = nkv;
    return config_apply(o, nfiles ? args[0] : NULL, kv, nkv);
}

/* CLI_OPTS_HELP after the help or the key list, else EX_OK or an exit code. */
static int args_parse(tui_options *o, int argc, char **argv)
{
    tui_cli c = {{o->width, o->height}, 0};
    const cli_opt_group groups[] = {{tui_table, o}, {tui_cli_table, &c}, {NULL, NULL}};
    cli_args a;
    int rc = cli_opts_parse(&tui_command, groups, argc, argv, &a);
    if (rc) return rc;
    o->width = c.size.width;
    o->height = c.size.height;
    if (c.keys_mdoc) {
        tui_keys_write_mdoc(stdout);
        cli_args_free(&a);
        return CLI_OPTS_HELP;
    }
    rc = operands(o, groups, a.args, a.nargs);   /* a.args is kept: o->overrides points into it */
    if (rc) cli_args_free(&a);
    return rc;
}

int cli_tui(int argc, char **argv)
{
    static tui_options o;
    tui_options_default(&o);
    int rc = args_parse(&o, argc, argv);
    if (rc) return rc == CLI_OPTS_HELP ? EX_OK : rc;
    ssm_status st = run_config_check(&o.rc);
    if (st) return cli_report(st);
    o.rc.threads = cli_threads_apply(o.rc.threads);
    return tui_run(&o);
}
