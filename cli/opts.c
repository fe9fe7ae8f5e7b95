/* opts.c — option tables into getopt_long: the option array and optstring
 * built from the tables, strict values, operands, one-line errors and the
 * -h/--help text (see cli/opts.h). */
#include "cli/opts.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#define CODE_BASE 256   /* getopt code of option i without a short letter: CODE_BASE + i */
#define HELP_COLUMN 26  /* widest option column of the help; a wider one puts its help below */

static const cli_opt help_opt = {"help", 'h', CLI_OPT_FLAG, .help = "print this help and exit"};

/* The options of every group in order, -h/--help last. */
typedef struct {
    const cli_opt *e[CLI_OPTS_MAX];
    void *base[CLI_OPTS_MAX];
    int n;
} opt_list;

static int list_build(const cli_opt_group *groups, opt_list *l)
{
    l->n = 0;
    for (const cli_opt_group *g = groups; g->opts; g++)
        for (const cli_opt *e = g->opts; e->name; e++) {
            if (l->n == CLI_OPTS_MAX - 1) return -1;
            l->e[l->n] = e;
            l->base[l->n++] = g->base;
        }
    l->e[l->n] = &help_opt;
    l->base[l->n++] = NULL;
    return 0;
}

static int list_find(const opt_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->e[i]->name, name)) return i;
    return -1;
}

static int takes_value(const cli_opt *e) { return e->kind != CLI_OPT_FLAG && e->kind != CLI_OPT_UNSET; }

/* ------------------------------------------------------------------------ */
/* Values                                                                   */

int cli_parse_long(const char *s, long *v)
{
    char *end;
    if (!*s || isspace((unsigned char)*s)) return -1;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (*end || errno == ERANGE) return -1;
    *v = x;
    return 0;
}

int cli_parse_double(const char *s, double *v)
{
    char *end;
    if (!*s || isspace((unsigned char)*s)) return -1;
    double x = strtod(s, &end);
    if (*end || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

/* The range of a number option, with an int's and a long's own limits. */
static void range_of(const cli_opt *e, double *lo, double *hi)
{
    double kmin = e->kind == CLI_OPT_INT ? INT_MIN : e->kind == CLI_OPT_LONG ? (double)LONG_MIN : -FLT_MAX;
    double kmax = e->kind == CLI_OPT_INT ? INT_MAX : e->kind == CLI_OPT_LONG ? (double)LONG_MAX : FLT_MAX;
    *lo = e->min > kmin ? e->min : kmin;
    *hi = e->max < kmax ? e->max : kmax;
}

static int in_range(const cli_opt *e, double v)
{
    double lo, hi;
    range_of(e, &lo, &hi);
    return v >= lo && v <= hi && !(e->min_open && v == e->min);
}

static int choice_set(const cli_opt *e, const char *arg, void *dst)
{
    for (const char *const *c = e->choices; *c; c++)
        if (!strcmp(*c, arg)) {
            *(const char **)dst = *c;
            return 0;
        }
    return -1;
}

/* Store arg as option e's value at dst; 0, or -1 for a bad value. */
static int value_set(const cli_opt *e, const char *arg, void *dst)
{
    long l;
    double d;
    switch (e->kind) {
    case CLI_OPT_FLAG: *(int *)dst = 1; return 0;
    case CLI_OPT_UNSET: *(int *)dst = 0; return 0;
    case CLI_OPT_STRING: *(const char **)dst = arg; return 0;
    case CLI_OPT_CHOICE: return choice_set(e, arg, dst);
    case CLI_OPT_CUSTOM: return e->parse(arg, dst);
    case CLI_OPT_INT:
    case CLI_OPT_LONG:
        if (cli_parse_long(arg, &l) || !in_range(e, (double)l)) return -1;
        if (e->kind == CLI_OPT_INT) *(int *)dst = (int)l;
        else *(long *)dst = l;
        return 0;
    case CLI_OPT_FLOAT:
        if (cli_parse_double(arg, &d) || !in_range(e, d)) return -1;
        *(float *)dst = (float)d;
        return 0;
    }
    return -1;
}

int cli_opts_set(const cli_opt_group *groups, const char *name, const char *value)
{
    opt_list l;
    if (list_build(groups, &l)) return -1;
    int i = list_find(&l, name);
    if (i < 0 || !l.base[i]) return 0;
    return value_set(l.e[i], value, (char *)l.base[i] + l.e[i]->offset) ? -1 : 1;
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */

/* " >= 0", " from 1 to 64", " in (0, 1]" or "" */
static void range_text(const cli_opt *e, char *s, size_t n)
{
    double lo, hi, kmin, kmax;
    range_of(e, &lo, &hi);
    cli_opt whole = {.kind = e->kind, .min = -CLI_NO_LIMIT, .max = CLI_NO_LIMIT};
    range_of(&whole, &kmin, &kmax);
    const char *ge = e->min_open ? ">" : ">=";
    if (lo <= kmin && hi >= kmax) snprintf(s, n, "%s", "");
    else if (hi >= kmax) snprintf(s, n, " %s %.15g", ge, lo);
    else if (lo <= kmin) snprintf(s, n, " <= %.15g", hi);
    else if (e->kind == CLI_OPT_FLOAT) snprintf(s, n, " in %c%.15g, %.15g]", e->min_open ? '(' : '[', lo, hi);
    else snprintf(s, n, " from %.15g to %.15g", lo, hi);
}

/* What a value of e must be: "an integer >= 0", "csv or jsonl", e->what... */
static void describe(const cli_opt *e, char *s, size_t n)
{
    size_t k = 0;
    s[0] = 0;
    if (e->kind == CLI_OPT_CHOICE) {
        for (const char *const *c = e->choices; *c && k < n; c++)
            k += snprintf(s + k, n - k, "%s%s", c == e->choices ? "" : c[1] ? ", " : " or ", *c);
        return;
    }
    if (e->kind == CLI_OPT_CUSTOM || e->kind == CLI_OPT_STRING) {
        snprintf(s, n, "%s", e->what ? e->what : "a value");
        return;
    }
    char range[96];
    range_text(e, range, sizeof range);
    snprintf(s, n, "%s%s", e->what ? e->what : e->kind == CLI_OPT_FLOAT ? "a number" : "an integer", range);
}

/* One line: "ssmlab: SUB: --OPT: 'VALUE' is not WHAT". */
static void say_bad_value(const cli_command *cmd, const cli_opt *e, const char *arg)
{
    char what[256];
    describe(e, what, sizeof what);
    if (e->kind == CLI_OPT_CHOICE)
        fprintf(stderr, "ssmlab: %s: --%s must be %s, not '%s'\n", cmd->name, e->name, what, arg);
    else
        fprintf(stderr, "ssmlab: %s: --%s: '%s' is not %s\n", cmd->name, e->name, arg, what);
}

/* getopt's '?' or ':' for the argument before optind. */
static void say_getopt_error(const cli_command *cmd, const opt_list *l, int c, char **argv)
{
    const char *arg = argv[optind - 1];
    int i = -1;
    for (int k = 0; optopt && k < l->n; k++)
        if (optopt == (l->e[k]->letter ? l->e[k]->letter : CODE_BASE + k)) i = k;
    if (c == ':') fprintf(stderr, "ssmlab: %s: %s needs a value\n", cmd->name, arg);
    else if (i >= 0 && !strncmp(arg, "--", 2)) fprintf(stderr, "ssmlab: %s: %s: takes no value\n", cmd->name, arg);
    else if (optopt && optopt < CODE_BASE)
        fprintf(stderr, "ssmlab: %s: unknown option '-%c' (see 'ssmlab %s -h')\n", cmd->name, optopt, cmd->name);
    else fprintf(stderr, "ssmlab: %s: unknown option '%s' (see 'ssmlab %s -h')\n", cmd->name, arg, cmd->name);
}

/* ------------------------------------------------------------------------ */
/* Help                                                                     */

/* "  -m, --model DIR" or "      --data FILE" */
static void help_left(const cli_opt *e, char *s, size_t n)
{
    char meta[128] = "";
    if (e->metavar) snprintf(meta, sizeof meta, " %s", e->metavar);
    else if (e->kind == CLI_OPT_CHOICE)
        for (const char *const *c = e->choices; *c; c++)
            snprintf(meta + strlen(meta), sizeof meta - strlen(meta), "%c%s", c == e->choices ? ' ' : '|', *c);
    else if (takes_value(e)) snprintf(meta, sizeof meta, " VALUE");
    if (e->letter) snprintf(s, n, "  -%c, --%s%s", e->letter, e->name, meta);
    else snprintf(s, n, "      --%s%s", e->name, meta);
}

static void help_print(const cli_command *cmd, const opt_list *l)
{
    char left[192];
    int w = 0;
    for (int i = 0; i < l->n; i++) {
        help_left(l->e[i], left, sizeof left);
        if ((int)strlen(left) > w) w = (int)strlen(left);
    }
    if (w > HELP_COLUMN) w = HELP_COLUMN;
    printf("usage: ssmlab %s %s\n", cmd->name, cmd->synopsis);
    if (cmd->summary) printf("%s\n", cmd->summary);
    printf("\noptions:\n");
    for (int i = 0; i < l->n; i++) {
        help_left(l->e[i], left, sizeof left);
        if ((int)strlen(left) > w) printf("%s\n%*s  %s\n", left, w, "", l->e[i]->help);
        else printf("%-*s  %s\n", w, left, l->e[i]->help);
    }
    if (cmd->footer) printf("\n%s\n", cmd->footer);
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */

/* getopt_long's table and optstring ("-:" first: operands come back in
 * order as code 1, and a missing value as ':'). */
static void getopt_build(const opt_list *l, struct option *lo, char *optstring)
{
    char *p = optstring;
    *p++ = '-';
    *p++ = ':';
    for (int i = 0; i < l->n; i++) {
        const cli_opt *e = l->e[i];
        lo[i] = (struct option){e->name, takes_value(e) ? required_argument : no_argument, NULL,
                                e->letter ? e->letter : CODE_BASE + i};
        if (e->letter) {
            *p++ = e->letter;
            if (takes_value(e)) *p++ = ':';
        }
    }
    lo[l->n] = (struct option){0, 0, 0, 0};
    *p = 0;
}

static int code_index(const opt_list *l, int c)
{
    if (c >= CODE_BASE) return c - CODE_BASE;
    for (int i = 0; i < l->n; i++)
        if (l->e[i]->letter == c) return i;
    return -1;
}

static int operand_add(const cli_command *cmd, cli_args *a, char *arg)
{
    if (!cmd->operands) {
        fprintf(stderr, "ssmlab: %s: unexpected argument '%s' (see 'ssmlab %s -h')\n", cmd->name, arg, cmd->name);
        return EX_USAGE;
    }
    a->args[a->nargs++] = arg;
    return EX_OK;
}

/* One getopt code: an operand, an option, -h, or an error. */
static int code_apply(const cli_command *cmd, const opt_list *l, cli_args *a, int c, char **argv)
{
    if (c == 1) return operand_add(cmd, a, optarg);
    int i = c == '?' || c == ':' ? -1 : code_index(l, c);
    if (i < 0) {
        say_getopt_error(cmd, l, c, argv);
        return EX_USAGE;
    }
    if (l->e[i] == &help_opt) {
        help_print(cmd, l);
        return CLI_OPTS_HELP;
    }
    a->given[i] = 1;
    if (value_set(l->e[i], optarg, (char *)l->base[i] + l->e[i]->offset)) {
        say_bad_value(cmd, l->e[i], optarg);
        return EX_USAGE;
    }
    return EX_OK;
}

int cli_opts_parse(const cli_command *cmd, const cli_opt_group *groups, int argc, char **argv,
                   cli_args *a)
{
    opt_list l;
    struct option lo[CLI_OPTS_MAX + 1];
    char optstring[3 * CLI_OPTS_MAX + 3];
    memset(a, 0, sizeof *a);
    a->groups = groups;
    if (list_build(groups, &l)) {
        fprintf(stderr, "ssmlab: %s: more than %d options\n", cmd->name, CLI_OPTS_MAX - 1);
        return EX_SOFTWARE;
    }
    getopt_build(&l, lo, optstring);
    a->args = malloc(sizeof(char *) * (argc > 0 ? argc : 1));
    if (!a->args) {
        fprintf(stderr, "ssmlab: %s: out of memory\n", cmd->name);
        return EX_OSERR;
    }
    int c, rc = EX_OK;
    optind = 0;   /* glibc: start afresh */
    opterr = 0;
    while (!rc && (c = getopt_long(argc, argv, optstring, lo, NULL)) != -1) rc = code_apply(cmd, &l, a, c, argv);
    while (!rc && optind < argc) rc = operand_add(cmd, a, argv[optind++]);   /* after "--" */
    if (rc) cli_args_free(a);
    return rc;
}

void cli_args_free(cli_args *a)
{
    free(a->args);
    a->args = NULL;
    a->nargs = 0;
}

int cli_opts_given(const cli_args *a, const char *name)
{
    opt_list l;
    if (list_build(a->groups, &l)) return 0;
    int i = list_find(&l, name);
    return i >= 0 && a->given[i];
}
