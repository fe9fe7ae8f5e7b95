/* tui.c — `ssmlab tui [CONFIG | --model DIR] [key=value ...] [options]`:
 * parses the command line into the TUI's options and a run configuration
 * (the TUI's own keys keys=, color=, plot=, text=, image=, log= are taken
 * out before the rest goes to the run configuration), then runs the TUI. */
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

static void usage(FILE *f)
{
    fprintf(f, "usage: ssmlab tui [CONFIG | --model DIR] [key=value ...] [options]\n"
               "options:\n"
               "  --model DIR          open a checkpoint to inspect it (training makes a new run)\n"
               "  --paused             do not start training at once\n"
               "  --keys FILE          key bindings (default ~/.config/ssmlab/keys)\n"
               "  --color MODE         auto, none, 16, 256 or truecolor\n"
               "  --plot MODE          auto, braille, blocks or ascii\n"
               "  --text TEXT          the inspected text (language models)\n"
               "  --image N            the inspected test image (image classifiers)\n"
               "  --log FILE           where standard error goes while the screen is up\n"
               "  --script FILE        run display-free on a virtual terminal, driven by FILE\n"
               "  --size COLSxROWS     virtual terminal size (default 120x40)\n"
               "  --term NAME          virtual terminal type (default xterm-256color)\n"
               "  --bench-latency      measure key-to-redraw latency while training (CSV)\n"
               "  --bench-keys N       keys the latency measurement sends (default 200)\n"
               "  --keys-mdoc          print the key list of ssmlab-tui(1) and exit\n"
               "TUI keys as key=value: keys=FILE color=MODE plot=MODE text=TEXT image=N log=FILE\n"
               "See ssmlab-tui(1).\n");
}

static void name_from_config(tui_options *o, const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".conf")) n -= 5;
    snprintf(o->name, sizeof o->name, "%.*s", (int)(n < 63 ? n : 63), b);
}

/* A test image index: 0 or more. */
static int image_parse(tui_options *o, const char *v)
{
    char *end;
    long i = strtol(v, &end, 10);
    if (end == v || *end || i < 0) return -1;
    o->image = i;
    return 1;
}

/* keys=, color=, plot=, text=, image=, log=: 1 if taken, -1 on a bad value. */
static int tui_key(tui_options *o, const char *kv)
{
    const char *v = strchr(kv, '=') + 1;
    size_t k = (size_t)(v - kv - 1);
    if (k == 4 && !strncmp(kv, "keys", 4)) o->keys_file = v;
    else if (k == 4 && !strncmp(kv, "text", 4)) o->text = v;
    else if (k == 3 && !strncmp(kv, "log", 3)) o->log_path = v;
    else if (k == 5 && !strncmp(kv, "color", 5)) return (o->color = tui_colors_parse(v)) < 0 ? -1 : 1;
    else if (k == 4 && !strncmp(kv, "plot", 4)) return (o->plot = tui_plot_parse(v)) < 0 ? -1 : 1;
    else if (k == 5 && !strncmp(kv, "image", 5)) return image_parse(o, v);
    else return 0;
    return 1;
}

static int size_parse(tui_options *o, const char *s)
{
    int w, h;
    char x;
    if (sscanf(s, "%d%c%d", &w, &x, &h) != 3 || x != 'x' || w < 10 || h < 5 || w > 1000 || h > 500) return -1;
    o->width = w;
    o->height = h;
    return 0;
}

/* --flag VALUE options; returns 1 if taken, 0 if not an option, <0 on error. */
static int option(tui_options *o, const char *a, const char *next, int *i)
{
    static const char *const with_value[] = {"--model", "--script", "--size", "--term", "--bench-keys",
                                             "--keys", "--color", "--plot", "--text", "--image", "--log"};
    if (!strcmp(a, "--paused")) return o->paused = 1;
    if (!strcmp(a, "--bench-latency")) return o->bench_latency = 1;
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(a, with_value[k]);
    if (!known) return 0;
    if (!next) return -1;
    ++*i;
    if (!strcmp(a, "--model")) o->model_dir = next;
    else if (!strcmp(a, "--script")) o->script = next;
    else if (!strcmp(a, "--term")) o->term = next;
    else if (!strcmp(a, "--keys")) o->keys_file = next;
    else if (!strcmp(a, "--text")) o->text = next;
    else if (!strcmp(a, "--log")) o->log_path = next;
    else if (!strcmp(a, "--size")) return size_parse(o, next) ? -2 : 1;
    else if (!strcmp(a, "--bench-keys")) return (o->bench_keys = atoi(next)) > 0 ? 1 : -2;
    else if (!strcmp(a, "--image")) return image_parse(o, next) < 0 ? -2 : 1;
    else if (!strcmp(a, "--color")) return (o->color = tui_colors_parse(next)) < 0 ? -2 : 1;
    else if (!strcmp(a, "--plot")) return (o->plot = tui_plot_parse(next)) < 0 ? -2 : 1;
    return 1;
}

/* The config file (or the default one), then the key=value overrides in order. */
static int config_apply(tui_options *o, const char *config, char **kv, int nkv)
{
    ssm_status st;
    if (!config && !o->model_dir && !access(DEFAULT_CONFIG, R_OK)) config = DEFAULT_CONFIG;
    if (config) {
        if ((st = run_config_read(&o->rc, config))) return cli_report(st);
        name_from_config(o, config);
    }
    for (int i = 0; i < nkv; i++)
        if ((st = run_config_set(&o->rc, kv[i], "command line"))) return cli_report(st);
    return 0;
}

static int args_parse(tui_options *o, int argc, char **argv, const char **config)
{
    char **kv = calloc(argc, sizeof *kv);
    int nkv = 0, rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        int r = option(o, a, i + 1 < argc ? argv[i + 1] : NULL, &i);
        if (r == -1) rc = cli_usage_error("%s needs a value", a);
        else if (r < 0) rc = cli_usage_error("bad value '%s' for %s", argv[i], a);
        else if (r) continue;
        else if (a[0] == '-' && a[1]) rc = cli_usage_error("unknown option '%s'", a);
        else if (!strchr(a, '=') && *config) rc = cli_usage_error("'%s': only one config file", a);
        else if (!strchr(a, '=')) *config = a;
        else if ((r = tui_key(o, a)) < 0) rc = cli_usage_error("bad value in '%s'", a);
        else if (!r) kv[nkv++] = argv[i];
    }
    if (!rc && o->model_dir && *config) rc = cli_usage_error("give a CONFIG or --model DIR, not both");
    if (!rc) rc = config_apply(o, *config, kv, nkv);
    o->overrides = kv;   /* argv strings: they live as long as the process */
    o->n_overrides = nkv;
    return rc;
}

int cli_tui(int argc, char **argv)
{
    static tui_options o;
    tui_options_default(&o);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return EX_OK;
        }
        if (!strcmp(argv[i], "--keys-mdoc")) {
            tui_keys_write_mdoc(stdout);
            return EX_OK;
        }
    }
    const char *config = NULL;
    int rc = args_parse(&o, argc, argv, &config);
    if (rc) return rc;
    ssm_status st = run_config_check(&o.rc);
    if (st) return cli_report(st);
    o.rc.threads = cli_threads_apply(o.rc.threads);
    return tui_run(&o);
}
