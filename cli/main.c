/* main.c — the ssmlab command: dispatches to the subcommands and answers
 * --version and -h. */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *synopsis;
} command;

static const command commands[] = {
    {"train", cli_train, "train CONFIG [key=value ...]    train a model"},
    {"eval", cli_eval, "eval --model DIR [options]      loss, perplexity, logits, gradients"},
    {"generate", cli_generate, "generate --model DIR [options]  text from a language model"},
    {"sweep", cli_sweep, "sweep FILE... [options]         train presets, one results table"},
    {"inspect", cli_inspect, "inspect --model DIR [options]   spectra, token norms, importance"},
    {"attack", cli_attack, "attack TYPE --model DIR [...]   recency-bias attacks on classifiers"},
    {"tui", cli_tui, "tui [CONFIG | --model DIR]      the ncurses lab (plain ssmlab on a terminal)"},
    {"bench", cli_bench, "bench [--case NAME] [options]   speed against the PyTorch baseline"},
};
#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: ssmlab [-h | --version] COMMAND [ARGS]\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  ssmlab %s\n", commands[i].synopsis);
    fprintf(f, "\nSee ssmlab(1) for the options and configuration keys.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) return cli_tui(argc, argv);
        usage(stderr);
        return EX_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EX_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("ssmlab %s\n", SSM_VERSION);
        return EX_OK;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    return cli_usage_error("unknown command '%s'", argv[1]);
}
