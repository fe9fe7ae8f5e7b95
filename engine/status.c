/* status.c — the thread-local error message behind ssm_fail(), and the
 * mapping from engine status to sysexits.h exit codes. */
#include "engine/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <sysexits.h>

static _Thread_local char last_error[1024];

ssm_status ssm_fail(ssm_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
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
