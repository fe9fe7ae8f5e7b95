/* status.c — the thread-local error message behind ssm_fail(), and the
 * mapping from engine status to sysexits.h exit codes. */
#include "engine/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

/* A longer message keeps its head and its tail (where the reason is)
 * around " ... ". */
#define ERR_CAP SSM_ERROR_CAP
#define ERR_MARK " ... "

static _Thread_local char last_error[ERR_CAP];

/* Cut msg (n bytes) to its first and last bytes into last_error. */
static void keep_head_and_tail(const char *msg, size_t n)
{
    size_t mark = sizeof ERR_MARK - 1, head = ERR_CAP / 4, tail = ERR_CAP - 1 - head - mark;
    memcpy(last_error, msg, head);
    memcpy(last_error + head, ERR_MARK, mark);
    memcpy(last_error + head + mark, msg + n - tail, tail);
    last_error[ERR_CAP - 1] = '\0';
}

ssm_status ssm_fail(ssm_status st, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
    if (n >= (int)sizeof last_error) {
        char *full = malloc((size_t)n + 1);
        if (full) {
            vsnprintf(full, (size_t)n + 1, fmt, again);
            keep_head_and_tail(full, (size_t)n);
            free(full);
        }
    }
    va_end(again);
    va_end(ap);
    return st;
}

const char *ssm_last_error(void) { return last_error; }

int ssm_status_exit(ssm_status st)
{
    switch (st) {
    case SSM_OK:              return EX_OK;
    case SSM_ERR_USAGE:       return EX_USAGE;
    case SSM_ERR_NOINPUT:     return EX_NOINPUT;
    case SSM_ERR_DATA:        return EX_DATAERR;
    case SSM_ERR_CONFIG:      return EX_CONFIG;
    case SSM_ERR_IO:          return EX_IOERR;
    case SSM_ERR_CANTCREAT:   return EX_CANTCREAT;
    case SSM_ERR_NOMEM:       return EX_OSERR;
    case SSM_ERR_SOFTWARE:    return EX_SOFTWARE;
    case SSM_ERR_INTERRUPTED: return 130;
    }
    return EX_SOFTWARE;
}

const char *ssm_status_name(ssm_status st)
{
    switch (st) {
    case SSM_OK:              return "ok";
    case SSM_ERR_USAGE:       return "usage error";
    case SSM_ERR_NOINPUT:     return "missing input";
    case SSM_ERR_DATA:        return "data error";
    case SSM_ERR_CONFIG:      return "configuration error";
    case SSM_ERR_IO:          return "i/o error";
    case SSM_ERR_CANTCREAT:   return "cannot create output";
    case SSM_ERR_NOMEM:       return "out of memory";
    case SSM_ERR_SOFTWARE:    return "internal error";
    case SSM_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}
