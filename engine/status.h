/* status.h — status codes returned by every engine call, and the one-line
 * error message the failing call leaves behind.  Library code never calls
 * exit(); the CLI maps a status to a sysexits.h code with ssm_status_exit(). */
#ifndef SSM_STATUS_H
#define SSM_STATUS_H

/* The longest message ssm_last_error() returns, with its NUL: room for two
 * PATH_MAX (4096) paths and the reason; a longer one keeps its head and tail. */
#define SSM_ERROR_CAP (2 * 4096 + 1024)

typedef enum {
    SSM_OK = 0,
    SSM_ERR_USAGE,    /* bad command line                     -> EX_USAGE    */
    SSM_ERR_NOINPUT,  /* a file or directory is missing        -> EX_NOINPUT  */
    SSM_ERR_DATA,     /* malformed file contents               -> EX_DATAERR  */
    SSM_ERR_CONFIG,   /* bad or inconsistent configuration     -> EX_CONFIG   */
    SSM_ERR_IO,       /* read/write failure                    -> EX_IOERR    */
    SSM_ERR_CANTCREAT,/* cannot create an output file          -> EX_CANTCREAT*/
    SSM_ERR_NOMEM,    /* allocation failed                     -> EX_OSERR    */
    SSM_ERR_SOFTWARE, /* internal error (a bug)                -> EX_SOFTWARE */
    SSM_ERR_INTERRUPTED /* stopped by a signal or a cancel     -> 130         */
} ssm_status;

/* Record a printf-style message and return st, so callers can write
 *   return ssm_fail(SSM_ERR_DATA, "%s: header is not JSON", path);     */
ssm_status ssm_fail(ssm_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The message of the last failure on this thread ("" if none). */
const char *ssm_last_error(void);

/* The sysexits.h code for a status. */
int ssm_status_exit(ssm_status st);

/* Short name of a status, e.g. "data error". */
const char *ssm_status_name(ssm_status st);

#endif
