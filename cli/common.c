/* common.c — error reporting, thread setup, the run header and CSV/JSONL
 * metric rows shared by the ssmlab subcommands. */
#include "cli.h"

#include <cblas.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "model.h"

int cli_report(ssm_status st)
{
    fprintf(stderr, "ssmlab: %s\n", ssm_last_error());
    return ssm_status_exit(st);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ssmlab: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try 'ssmlab -h')\n", stderr);
    va_end(ap);
    return EX_USAGE;
}

int cli_threads_apply(int threads)
{
    if (threads <= 0) threads = omp_get_num_procs();
    ssm_threads_set(threads);
    return threads;
}

void cli_log_header(const char *command, long seed)
{
    fprintf(stderr, "# ssmlab %s %s\n", SSM_VERSION, command);
    fprintf(stderr, "# seed = %ld, omp_threads = %d, blas_threads = %d\n", seed,
            omp_get_max_threads(), openblas_get_num_threads());
    fprintf(stderr, "# openblas = %s (%s)\n", openblas_get_config(), openblas_get_corename());
}

void cli_log_model(const char *dir, const ssm_model *m)
{
    const ssm_config *c = &m->cfg;
    char head[32];
    if (c->n_classes) snprintf(head, sizeof head, "classifier (%d classes)", c->n_classes);
    else snprintf(head, sizeof head, "language model (vocab %d)", c->vocab_size);
    fprintf(stderr, "# model %s: %s, d_model %d, n_layer %d, d_state %d, expand %d, %zu parameters; "
            "scenario %s, polarize %s, reorder %s\n", dir, head, c->d_model, c->n_layer, c->d_state,
            c->expand, m->num_params, ssm_scenario_name(c->scenario), ssm_polarize_name(c->polarize),
            ssm_reorder_name(c->reorder));
}

int cli_format_ok(const char *s) { return !strcmp(s, "csv") || !strcmp(s, "jsonl"); }

void cli_table_begin(cli_table *t, FILE *f, const char *format, const char *const *cols, int ncols)
{
    t->f = f;
    t->jsonl = !strcmp(format, "jsonl");
    t->cols = cols;
    t->ncols = ncols;
    t->header_done = 0;
}

static int is_number(const char *s)
{
    char *end;
    if (!*s) return 0;
    strtod(s, &end);
    return !*end && strcmp(s, "nan") && strcmp(s, "inf") && strcmp(s, "-inf");
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

void cli_table_row(cli_table *t, const char *const *v)
{
    if (t->jsonl) {
        fputc('{', t->f);
        for (int i = 0, first = 1; i < t->ncols; i++) {
            if (!v[i]) continue;
            fprintf(t->f, "%s\"%s\":", first ? "" : ",", t->cols[i]);
            if (is_number(v[i])) fputs(v[i], t->f); else json_string(t->f, v[i]);
            first = 0;
        }
        fputs("}\n", t->f);
    } else {
        if (!t->header_done)
            for (int i = 0; i < t->ncols; i++) fprintf(t->f, "%s%c", t->cols[i], i + 1 < t->ncols ? ',' : '\n');
        for (int i = 0; i < t->ncols; i++) fprintf(t->f, "%s%c", v[i] ? v[i] : "", i + 1 < t->ncols ? ',' : '\n');
    }
    t->header_done = 1;
    fflush(t->f);
}
