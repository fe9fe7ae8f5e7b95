/* config_args.c — the run configuration from a command line, shared by
 * `ssmlab train`, `sweep` and `tui`: config files among the operands. */
#include <string.h>

#include "cli/cli.h"

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
