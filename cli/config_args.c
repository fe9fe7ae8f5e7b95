/* config_args.c — the run configuration from a command line, shared by
 * `ssmlab train`, `sweep` and `tui`: config files among the operands, then
 * the defaults, one config file and the key=value overrides in order. */
#include <string.h>

#include "cli/cli.h"
#include "scenarios/run_config.h"

int cli_config_split(char **args, int nargs)
{
    int nfiles = 0;
    for (int i = 0; i < nargs; i++) {
        if (strchr(args[i], '=')) continue;
        char *file = args[i];
        memmove(args + nfiles + 1, args + nfiles, sizeof *args * (size_t)(i - nfiles));
        args[nfiles++] = file;
    }
    return nfiles;
}

ssm_status cli_config_build(run_config *rc, const char *file, char *const *kv, int nkv)
{
    run_config_default(rc);
    ssm_status st = file ? run_config_read(rc, file) : SSM_OK;   /* its errors name the file */
    for (int i = 0; !st && i < nkv; i++) st = run_config_set(rc, kv[i], "command line");
    return st;
}
