/* opts.h — the options of an ssmlab subcommand, each described once in a
 * const table (long name, short letter, kind, range, metavar, help line,
 * where the value goes).  cli_opts_parse builds getopt_long's option array
 * and optstring from the tables, checks every value (numbers strictly: the
 * whole string, no overflow, finite, in range), collects the operands, and
 * answers -h/--help with a usage printed from the same tables.  A bad value
 * or an unknown option is one stderr line naming the subcommand and the
 * option, and EX_USAGE. */
#ifndef SSM_CLI_OPTS_H
#define SSM_CLI_OPTS_H

#include <math.h>
#include <stddef.h>

typedef enum {
    CLI_OPT_FLAG,     /* no value: sets an int to 1 */
    CLI_OPT_UNSET,    /* no value: sets an int to 0 (--no-clip) */
    CLI_OPT_INT,      /* int in [min, max] */
    CLI_OPT_LONG,     /* long in [min, max] */
    CLI_OPT_FLOAT,    /* finite float in [min, max] ((min, max] with min_open) */
    CLI_OPT_STRING,   /* const char *: the argument as given (a path, a text, a list) */
    CLI_OPT_CHOICE,   /* const char *: one of choices */
    CLI_OPT_CUSTOM,   /* parse(arg, where the value goes) */
} cli_opt_kind;

#define CLI_NO_LIMIT INFINITY   /* min = -CLI_NO_LIMIT, max = CLI_NO_LIMIT: unbounded */

typedef struct {
    const char *name;          /* long name, without "--"; NULL ends a table */
    char letter;               /* short letter, or 0 */
    cli_opt_kind kind;
    double min, max;           /* numbers: the range */
    int min_open;              /* numbers: min itself is out of range */
    const char *metavar;       /* the value in the help ("N", "DIR"); NULL for flags */
    const char *help;          /* one line */
    size_t offset;             /* where the value goes: offsetof(the group's struct, field) */
    const char *what;          /* in errors, what the value must be ("an image index");
                                  NULL: "an integer" or "a number"; CUSTOM: required */
    const char *const *choices;                  /* CHOICE: NULL-terminated */
    int (*parse)(const char *arg, void *dst);    /* CUSTOM: 0, or -1 for a bad value */
} cli_opt;

#define CLI_OPT_END {.name = NULL}   /* the row that ends a table */

/* A table and the struct its offsets point into; an array of groups ends
 * with {NULL, NULL}. */
typedef struct {
    const cli_opt *opts;
    void *base;
} cli_opt_group;

typedef struct {
    const char *name;          /* "eval" */
    const char *synopsis;      /* after "usage: ssmlab eval ", e.g. "--model DIR [options]" */
    const char *summary;       /* one line under the usage */
    int operands;              /* operands allowed (else "unexpected argument") */
    const char *footer;        /* printed after the options, or NULL */
} cli_command;

#define CLI_OPTS_MAX 48        /* options of one command, -h/--help included */
#define CLI_OPTS_HELP (-1)     /* cli_opts_parse printed the help: exit EX_OK */

typedef struct {
    const cli_opt_group *groups;
    char **args;               /* (nargs) the operands in order (malloc'd) */
    int nargs;
    unsigned char given[CLI_OPTS_MAX];   /* by option, in the order of the groups */
} cli_args;

/* Parse argv[1 .. argc) (argv[0] names the subcommand) into the groups'
 * structs, which hold the defaults.  Returns EX_OK, EX_USAGE after one
 * line on stderr, or CLI_OPTS_HELP after the help on stdout.  On EX_OK
 * free a with cli_args_free. */
int cli_opts_parse(const cli_command *cmd, const cli_opt_group *groups, int argc, char **argv,
                   cli_args *a);
void cli_args_free(cli_args *a);

/* Was the option of long name `name` on the command line? */
int cli_opts_given(const cli_args *a, const char *name);

/* Set option `name` of the groups to value as the command line would:
 * 1 set, 0 no such option, -1 a bad value (nothing printed). */
int cli_opts_set(const cli_opt_group *groups, const char *name, const char *value);

/* Strict numbers: the whole string (no leading space), base 10 for
 * integers, no overflow, finite.  0, or -1 when s is not one. */
int cli_parse_long(const char *s, long *v);
int cli_parse_double(const char *s, double *v);

#endif
